"""Ensembles: K models trained side by side in one compiled step, as one stacked pytree.

An ensemble state is a :class:`~jaxcnn.train.TrainState` whose every leaf has a leading
member axis of size K (``step`` is ``(K,)``). :func:`make_ensemble_train_step` runs
:func:`jaxcnn.train.make_train_step`'s step for all members at once, so the members
differ only in what the stacked state and keys hold: initialisation seeds, dropout keys
and, through ``optax.inject_hyperparams``, hyperparameters such as the learning rate
(:func:`hyperparam_sweep`). Metrics come back per member (``(K,)`` arrays);
:func:`best_member` and :func:`select_member` pick one out.

Two ways to run the members, chosen by ``strategy``:

- ``"vmap"``: ``jax.vmap`` of the step over the member axis. On accelerators this turns K
  small convolutions into one grouped convolution, K matrix products into one batched one.
- ``"unroll"``: the same step written out K times inside the one compiled function
  (members indexed out of, and stacked back into, the same stacked state). Its compile
  time grows with K.

``strategy="auto"`` picks ``"unroll"`` on CPU and ``"vmap"`` elsewhere. The reason is
XLA:CPU's lowering of ``vmap`` over a convolution whose kernel differs per member: a
grouped convolution (``feature_group_count = K``), which it runs several times slower than
K ordinary convolutions, so a vmapped conv-net ensemble on CPU loses to training the
members one after another while the unrolled one keeps pace (dense nets gain from ``vmap``
on any backend). ``python benchmarks/ensemble_vs_sequential.py`` (``--model mlp``)
measures both strategies against sequential runs.

With several devices, ``make_ensemble_train_step(..., mesh=member_mesh())`` splits the
members over them (``jax.shard_map`` over the ``"members"`` axis, the state placed with
:func:`jaxcnn.distributed.shard_members`): each device runs its own members with
``strategy``, and the devices never communicate. On a CPU split into XLA host devices each
device is a thread, so the members also run side by side on the cores, and no convolution
becomes a grouped one; ``python benchmarks/ensemble_sharded.py`` measures it against
``"vmap"``, ``"unroll"`` and sequential runs (``benchmarks/results/ensemble_sharded.md``).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn._checks import check_bool, check_choice, fail, is_int
from jaxcnn.layers._base import check_model
from jaxcnn.train._evaluate import evaluate
from jaxcnn.train._state import TrainState, create_train_state
from jaxcnn.train._step import make_train_step

STRATEGIES = ("auto", "vmap", "unroll")
MEASURED_DEFAULT = {"cpu": "unroll"}
_INJECT_STATES = tuple(getattr(optax, n) for n in
                       ("InjectHyperparamsState", "InjectStatefulHyperparamsState")
                       if hasattr(optax, n))


def _is_typed_key(key):
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def _key_batch_shape(key, where, what="key"):
    """The shape of ``key`` without the key's own data axis (raw ``uint32`` keys)."""
    if not hasattr(key, "dtype"):
        fail(where, what, "a jax.random key array", type(key).__name__, exc=TypeError)
    if _is_typed_key(key):
        return key.shape
    if key.dtype != jnp.uint32 or key.ndim < 1 or key.shape[-1] != 2:
        fail(where, what, "a jax.random key array (jax.random.key or PRNGKey)",
             f"{key.dtype} array of shape {key.shape}", exc=TypeError)
    return key.shape[:-1]


def num_members(ens_state, where="num_members") -> int:
    """The number of members K of an ensemble state (the length of ``ens_state.step``)."""
    step = getattr(ens_state, "step", None)
    if step is None or getattr(step, "ndim", 0) != 1:
        fail(where, "ens_state.step shape", "(members,) (a stacked TrainState)",
             getattr(step, "shape", None),
             "Build it with create_ensemble_state, not create_train_state")
    return int(step.shape[0])


def _check_values(where, name, values, k, dtype):
    values = np.asarray(values)
    if values.ndim == 0:
        values = np.broadcast_to(values, (k,))
    if values.shape != (k,):
        fail(where, f"hyperparams[{name!r}]", f"a scalar or {k} values (one per member)",
             values.shape)
    return jnp.asarray(values.astype(dtype))


def set_hyperparams(opt_state, hyperparams, k, where="set_hyperparams"):
    """``opt_state`` (stacked over ``k`` members) with the named hyperparameters of its
    ``optax.inject_hyperparams`` state set to one value per member."""
    is_inject = lambda s: isinstance(s, _INJECT_STATES)  # noqa: E731
    states = [s for s in jax.tree.leaves(opt_state, is_leaf=is_inject) if is_inject(s)]
    known = sorted(n for s in states for n in s.hyperparams)
    for name in hyperparams:
        holders = sum(name in s.hyperparams for s in states)
        if holders == 0:
            fail(where, "hyperparams key", f"one of the injected hyperparameters {known}", name,
                 "Build the optimizer with optax.inject_hyperparams(optax.adam)(learning_rate="
                 "...) or with hyperparam_sweep")
        if holders > 1:
            fail(where, f"hyperparams[{name!r}]", "held by one inject_hyperparams state",
                 f"{holders} states", "Set it in the opt_state by hand")

    def update(s):
        if not isinstance(s, _INJECT_STATES):
            return s
        new = dict(s.hyperparams)
        for name, values in hyperparams.items():
            if name in new:
                new[name] = _check_values(where, name, values, k, new[name].dtype)
        return s._replace(hyperparams=new)

    return jax.tree.map(update, opt_state, is_leaf=is_inject)


def create_ensemble_state(model, optimizer, keys, in_shape, hyperparams=None) -> TrainState:
    """K train states stacked along a leading member axis, one per key.

    Member ``i`` equals ``create_train_state(model, optimizer, keys[i], in_shape)``,
    with its injected hyperparameters set to ``hyperparams[name][i]``.

    Args:
      model: a :class:`jaxcnn.Layer`.
      optimizer: an ``optax.GradientTransformation``; to give members different
        hyperparameters build it with ``optax.inject_hyperparams`` (see
        :func:`hyperparam_sweep`).
      keys: K ``jax.random`` keys (``jax.random.split(key, K)``), one per member.
      in_shape: the shape of one example, without the batch axis.
      hyperparams: optional dict ``name -> K values`` (or a scalar for all members) of
        hyperparameters injected with ``optax.inject_hyperparams``. Only constant
        hyperparameters: a schedule given to ``inject_hyperparams`` overwrites them.

    Returns:
      A :class:`~jaxcnn.train.TrainState` whose leaves have a leading axis of size K.

    Example:
      >>> import jax, optax
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import create_ensemble_state
      >>> net = serial(flatten(), dense(3))
      >>> keys = jax.random.split(jax.random.key(0), 3)
      >>> ens = create_ensemble_state(net, optax.sgd(0.1), keys, (4,))
      >>> ens.step.shape, ens.params["dense_1"]["kernel"].shape
      ((3,), (3, 4, 3))
    """
    where = "create_ensemble_state"
    check_model(where, model)
    shape = _key_batch_shape(keys, where, "keys")
    if len(shape) != 1:
        fail(where, "keys", "a 1-D array of K keys, e.g. jax.random.split(key, K)",
             f"key array of shape {shape}")
    if hyperparams is not None and not isinstance(hyperparams, dict):
        fail(where, "hyperparams", "None or a dict name -> per-member values",
             type(hyperparams).__name__, exc=TypeError)
    ens = jax.vmap(lambda key: create_train_state(model, optimizer, key, in_shape))(keys)
    if hyperparams:
        ens = ens._replace(opt_state=set_hyperparams(ens.opt_state, hyperparams, shape[0], where))
    return ens


def hyperparam_sweep(optimizer_factory, **hyperparams):
    """An injectable optimizer and the per-member values of the swept hyperparameters.

    A sequence of values sweeps that hyperparameter (one value per member); a scalar is
    shared. Pass the two results to :func:`create_ensemble_state`.

    Args:
      optimizer_factory: an optax optimizer factory, e.g. ``optax.adam``.
      **hyperparams: its numeric arguments, scalars or sequences of K values.

    Returns:
      ``(optimizer, per_member)``: ``optax.inject_hyperparams(optimizer_factory)(...)``
      (built with the first value of each sweep) and a dict ``name -> (K,) float32``.

    Example:
      >>> import optax
      >>> from jaxcnn.train import hyperparam_sweep
      >>> opt, per_member = hyperparam_sweep(optax.adam, learning_rate=[1e-3, 1e-2], b1=0.8)
      >>> per_member
      {'learning_rate': array([0.001, 0.01 ], dtype=float32)}
    """
    where = "hyperparam_sweep"
    if not callable(optimizer_factory):
        fail(where, "optimizer_factory", "an optax optimizer factory such as optax.adam",
             optimizer_factory, exc=TypeError)
    fixed, swept = {}, {}
    for name, value in hyperparams.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            fixed[name] = value
            continue
        values = np.asarray(value, np.float32) if not isinstance(value, str) else None
        if values is None or values.ndim != 1 or len(values) == 0:
            fail(where, name, "a number or a non-empty sequence of numbers", value)
        swept[name] = values
    sizes = {name: len(v) for name, v in swept.items()}
    if len(set(sizes.values())) > 1:
        fail(where, "swept hyperparameters", "sequences of one length (one value per member)",
             sizes)
    optimizer = optax.inject_hyperparams(optimizer_factory)(
        **fixed, **{name: float(v[0]) for name, v in swept.items()})
    return optimizer, swept


def resolve_strategy(strategy, where="make_ensemble_train_step"):
    check_choice(where, "strategy", strategy, STRATEGIES)
    if strategy == "auto":
        return MEASURED_DEFAULT.get(jax.default_backend(), "vmap")
    return strategy


def _member(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def member_keys(key, k, where="ensemble_step"):
    """K member keys: ``jax.random.split(key, k)`` for one key, or ``key`` itself when it
    already holds K keys (as :func:`jaxcnn.train.fit` splits its run key)."""
    shape = _key_batch_shape(key, where)
    if shape == ():
        return jax.random.split(key, k)
    if shape != (k,):
        fail(where, "key", f"one key or {k} keys (one per member)", f"key array of shape {shape}")
    return key


def _split_over(run, mesh, per_member_batches, where):
    """``run`` on each device's own members: ``jax.shard_map`` over the ``"members"`` axis
    of ``mesh`` (state, keys and metrics split; the batch replicated, or split with
    ``per_member_batches``). Members never communicate, so neither do the devices, and
    there is no cross-device value whose replication needs checking (``check_vma=False``:
    jaxcnn's convolution primitives carry no varying-axes types through their transposes)."""
    from jaxcnn.distributed import MEMBER_AXIS, check_mesh

    check_mesh(where, mesh, MEMBER_AXIS)
    split, whole = jax.sharding.PartitionSpec(MEMBER_AXIS), jax.sharding.PartitionSpec()
    return jax.shard_map(run, mesh=mesh, in_specs=(split, split if per_member_batches else whole,
                                                   split), out_specs=(split, split),
                         check_vma=False)


def make_ensemble_train_step(model, optimizer, loss=None, *, per_member_batches=False,
                             strategy="auto", mesh=None, **step_options):
    """``ensemble_step(ens_state, batch, key) -> (ens_state, metrics)`` for K members.

    Member ``i`` takes exactly the step :func:`jaxcnn.train.make_train_step` would take
    for it alone, with the run key ``jax.random.split(key, K)[i]`` (or ``key[i]`` when
    ``key`` holds K keys), so a member trained in an ensemble equals the same model
    trained alone with that key.

    Args:
      model, optimizer, loss: as for :func:`jaxcnn.train.make_train_step`; the optimizer
        is the one given to :func:`create_ensemble_state`.
      per_member_batches: ``False``: every member sees the same ``batch`` (``x`` of shape
        ``(N, ...)``); ``True``: ``batch`` leaves have a leading member axis (``x`` of
        shape ``(K, N, ...)``), e.g. a different data order per member (bagging).
      strategy: ``"vmap"``, ``"unroll"`` or ``"auto"`` (the faster measured on this
        backend; see the module docstring).
      mesh: ``None``, or a mesh with a ``"members"`` axis
        (:func:`jaxcnn.distributed.member_mesh`): the members are split over its devices
        (K a multiple of their number), each device running its own with ``strategy``; put
        the state there with :func:`jaxcnn.distributed.shard_members`.
      **step_options: the keyword options of :func:`jaxcnn.train.make_train_step`
        (``task``, ``label_smoothing``, ``class_weights``, ``compute_dtype``, ``augment``).

    Returns:
      ``ensemble_step``; its metrics are ``(K,)`` arrays (one value per member). Jit it
      with :func:`jaxcnn.train.jit_train_step`.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import (create_ensemble_state, make_ensemble_train_step,
      ...                           jit_train_step)
      >>> net, opt = serial(flatten(), dense(3)), optax.sgd(0.1)
      >>> ens = create_ensemble_state(net, opt, jax.random.split(jax.random.key(0), 3), (4,))
      >>> step = jit_train_step(make_ensemble_train_step(net, opt))
      >>> batch = {"x": jnp.ones((5, 4)), "y": jnp.zeros((5,), jnp.int32)}
      >>> ens, metrics = step(ens, batch, jax.random.key(1))
      >>> ens.step.tolist(), metrics["loss"].shape
      ([1, 1, 1], (3,))
    """
    where = "make_ensemble_train_step"
    per_member_batches = check_bool(where, "per_member_batches", per_member_batches)
    strategy = resolve_strategy(strategy, where)
    train_step = make_train_step(model, optimizer, loss, **step_options)
    batch_axis = 0 if per_member_batches else None
    vstep = jax.vmap(train_step, in_axes=(0, batch_axis, 0))

    def unrolled(ens_state, batch, keys):
        outs = [train_step(_member(ens_state, i), _member(batch, i) if per_member_batches
                           else batch, keys[i]) for i in range(keys.shape[0])]
        return _stack(outs)

    run = vstep if strategy == "vmap" else unrolled
    if mesh is not None:
        run = _split_over(run, mesh, per_member_batches, where)
        devices = mesh.shape["members"]

    def ensemble_step(ens_state, batch, key):
        k = num_members(ens_state, "ensemble_step")
        if mesh is not None and k % devices:
            fail("ensemble_step", "the number of members", f"a multiple of the mesh's "
                 f"'members' axis ({devices})", k, "Use a member count divisible by it")
        if per_member_batches:
            sizes = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in jax.tree.leaves(batch)}
            if sizes != {k}:
                fail("ensemble_step", "batch leading axes", f"{k} (one batch per member) "
                     "with per_member_batches=True", sorted(sizes, key=str))
        return run(ens_state, batch, member_keys(key, k, "ensemble_step"))

    return ensemble_step


def select_member(ens_state, i) -> TrainState:
    """Member ``i`` of an ensemble state, as a plain :class:`~jaxcnn.train.TrainState`.

    Example:
      >>> import jax, optax
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import create_ensemble_state, select_member
      >>> net = serial(flatten(), dense(3))
      >>> ens = create_ensemble_state(net, optax.sgd(0.1),
      ...                             jax.random.split(jax.random.key(0), 3), (4,))
      >>> select_member(ens, 2).params["dense_1"]["kernel"].shape
      (4, 3)
    """
    k = num_members(ens_state, "select_member")
    if not is_int(i) or not -k <= i < k:
        fail("select_member", "i", f"an int in [0, {k})", i)
    return _member(ens_state, int(i))


def best_member(values, mode="max") -> int:
    """The index of the best member by per-member ``values`` (NaNs never win).

    ``values``: e.g. ``evaluate_ensemble(...)["member_accuracy"]`` (``mode="max"``) or
    the ``(K,)`` ``metrics["loss"]`` of an ensemble step (``mode="min"``).

    Example:
      >>> from jaxcnn.train import best_member
      >>> best_member([0.91, 0.95, float("nan")]), best_member([0.3, 0.2, 0.4], mode="min")
      (1, 1)
    """
    where = "best_member"
    check_choice(where, "mode", mode, ("max", "min"))
    v = np.asarray(jax.device_get(values), np.float64)
    if v.ndim != 1 or v.size == 0:
        fail(where, "values", "a non-empty sequence of one number per member", v.shape)
    if np.isnan(v).all():
        fail(where, "values", "not all NaN", v.tolist(), "Every member diverged")
    return int(np.nanargmax(v) if mode == "max" else np.nanargmin(v))


def ensemble_predict(model, ens_state, x):
    """The ensemble's mean probabilities for one batch ``x``: the mean over members of the
    softmax of the logits (or of the sigmoid for one logit per example).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import create_ensemble_state, ensemble_predict
      >>> net = serial(flatten(), dense(3))
      >>> ens = create_ensemble_state(net, optax.sgd(0.1),
      ...                             jax.random.split(jax.random.key(0), 3), (4,))
      >>> p = ensemble_predict(net, ens, jnp.ones((5, 4)))
      >>> p.shape, bool(jnp.allclose(p.sum(-1), 1.0))
      ((5, 3), True)
    """
    num_members(ens_state, "ensemble_predict")
    apply = lambda p, s: model.apply(p, s, x, train=False)[0].astype(jnp.float32)  # noqa
    logits = jax.vmap(apply)(ens_state.params, ens_state.state)
    if logits.ndim >= 3 and logits.shape[-1] >= 2:
        return jax.nn.softmax(logits, axis=-1).mean(axis=0)
    return jax.nn.sigmoid(logits).mean(axis=0)


def evaluate_ensemble(model, ens_state, x, y, batch_size, **options):
    """:func:`jaxcnn.train.evaluate` of an ensemble: metrics of the mean prediction plus
    ``member_loss``, ``member_accuracy`` (and ``member_auc``) lists, one per member.

    ``options`` are those of :func:`jaxcnn.train.evaluate` (``task``, ``loss``, ...).

    Example:
      >>> import jax, numpy as np, optax
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import create_ensemble_state, evaluate_ensemble
      >>> net = serial(flatten(), dense(3))
      >>> ens = create_ensemble_state(net, optax.sgd(0.1),
      ...                             jax.random.split(jax.random.key(0), 3), (4,))
      >>> x, y = np.ones((5, 4), np.float32), np.zeros((5,), np.int32)
      >>> len(evaluate_ensemble(net, ens, x, y, batch_size=4)["member_accuracy"])
      3
    """
    num_members(ens_state, "evaluate_ensemble")
    return evaluate(model, ens_state.params, ens_state.state, x, y, batch_size, members=True,
                    **options)
