"""Pure train and eval steps: the product users ``jax.jit``, ``vmap`` and read.

``train_step(train_state, batch, key) -> (train_state, metrics)`` and
``eval_step(params, state, batch) -> metric sums``; ``batch`` is a dict with ``"x"``,
``"y"`` and optionally ``"mask"`` (float, 1 for a real example, 0 for padding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxcnn._checks import fail, is_int
from jaxcnn._jit import jit
from jaxcnn.layers._base import check_model
from jaxcnn.train._losses import resolve_loss
from jaxcnn.train._metrics import binary_scores, predictions, top_k_correct
from jaxcnn.train._state import TrainState, check_optimizer

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


def check_compute_dtype(where, compute_dtype):
    """``None`` (follow the input) or a float dtype name/type, returned as a ``jnp.dtype``."""
    if compute_dtype is None:
        return None
    try:
        name = jnp.dtype(compute_dtype).name
    except TypeError:
        name = repr(compute_dtype)
    if name not in COMPUTE_DTYPES:
        fail(where, "compute_dtype", "None or one of " + ", ".join(COMPUTE_DTYPES), compute_dtype)
    return jnp.dtype(name)


def check_batch(where, batch):
    if not isinstance(batch, dict) or "x" not in batch or "y" not in batch:
        got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        fail(where, "batch", "a dict with keys 'x', 'y' and optionally 'mask'", got,
             exc=TypeError)
    n = batch["x"].shape[0]
    mask = batch.get("mask")
    if mask is None:
        return jnp.ones((n,), jnp.float32)
    if mask.shape != (n,):
        fail(where, "batch['mask'] shape", f"(batch size,) = {(n,)}", mask.shape)
    return mask.astype(jnp.float32)


def cast_input(x, compute_dtype):
    return x if compute_dtype is None else x.astype(compute_dtype)


def correct(logits, y, task):
    if task == "regression":
        return jnp.zeros(y.shape[:1], jnp.float32)
    return (predictions(logits, task) == y.astype(jnp.int32)).astype(jnp.float32)


def global_norm(tree):
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in leaves))


def masked_mean(values, mask):
    return (values * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def masked_accuracy(logits, y, mask, task):
    """The share of real (``mask == 1``) examples whose prediction equals the label."""
    return masked_mean(correct(logits, y, task), mask)


def apply_gradients(train_state, grads, optimizer, *, state=None):
    """One optax update of a :class:`TrainState`: the step every training step ends with.

    ``optimizer.update`` runs under standard dtype promotion (optax is not clean under
    strict promotion), the updates are added with ``optax.apply_updates`` and the step
    counter goes up by one. The model state becomes ``state`` (the batch-norm statistics
    the forward pass returned), or stays as it was when ``state`` is ``None``.

    Args:
      train_state: the :class:`jaxcnn.train.TrainState` the gradient was taken at.
      grads: a pytree like ``train_state.params``.
      optimizer: the ``optax.GradientTransformation`` that made ``train_state.opt_state``.
      state: the new model state, or ``None`` to keep ``train_state.state``.

    Returns:
      The next :class:`jaxcnn.train.TrainState`.

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jaxcnn.train import TrainState, apply_gradients
      >>> opt = optax.sgd(0.5)
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> ts = TrainState(jnp.zeros((), jnp.int32), params, {}, opt.init(params))
      >>> ts = apply_gradients(ts, {"w": jnp.array([2.0, -2.0])}, opt)
      >>> int(ts.step), ts.params["w"]
      (1, Array([0., 3.], dtype=float32))
    """
    check_optimizer("apply_gradients", optimizer)
    with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
        updates, opt_state = optimizer.update(grads, train_state.opt_state, train_state.params)
        params = optax.apply_updates(train_state.params, updates)
    state = train_state.state if state is None else state
    return TrainState(train_state.step + 1, params, state, opt_state)


def make_train_step(model, optimizer, loss=None, *, task="multiclass", label_smoothing=0.0,
                    class_weights=None, compute_dtype=None, augment=None):
    """A pure training step ``train_step(train_state, batch, key) -> (train_state, metrics)``.

    The step draws its randomness from ``fold_in(key, train_state.step)`` (``key`` is the
    run's key, the same at every step), so a run is a pure function of its seed and a
    resumed run replays the same keys. Mixed precision: with ``compute_dtype=bfloat16``
    the input is cast to bfloat16 (layers cast the float32 params to the input's dtype;
    norms keep their statistics in float32) and the logits back to float32 for the loss;
    gradients and the optimizer stay float32.

    Args:
      model: a :class:`jaxcnn.Layer`.
      optimizer: an ``optax.GradientTransformation`` (schedules, weight decay and
        clipping come from optax, e.g. ``optax.chain(optax.clip_by_global_norm(1.0),
        optax.adamw(optax.cosine_decay_schedule(1e-3, 1000)))``).
      loss: ``"cross_entropy"``, ``"binary_cross_entropy"``, ``"mse"``, a callable
        ``loss(logits, labels, mask) -> scalar`` or ``None`` for the task's default.
      task: ``"multiclass"``, ``"binary"`` or ``"regression"`` (for the accuracy metric).
      label_smoothing: for the named cross-entropies.
      class_weights: one weight per class, for the named cross-entropies.
      compute_dtype: ``None`` (the input's dtype), ``"float32"`` or ``"bfloat16"``.
      augment: optional pure ``augment(key, x) -> x`` applied to the batch inside the step.

    Returns:
      ``train_step``; metrics are float32 scalars ``loss``, ``accuracy`` (classification)
      and ``grad_norm``. Jit it with :func:`jit_train_step` (donates the train state).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jaxcnn import serial, conv, relu, flatten, dense
      >>> from jaxcnn.train import create_train_state, make_train_step, jit_train_step
      >>> net = serial(conv(4, 3), relu(), flatten(), dense(3))
      >>> opt = optax.sgd(0.1)
      >>> ts = create_train_state(net, opt, jax.random.key(0), (6, 6, 1))
      >>> step = jit_train_step(make_train_step(net, opt))
      >>> batch = {"x": jnp.ones((8, 6, 6, 1)), "y": jnp.zeros((8,), jnp.int32)}
      >>> ts, metrics = step(ts, batch, jax.random.key(1))
      >>> int(ts.step), sorted(metrics)
      (1, ['accuracy', 'grad_norm', 'loss'])
    """
    where = "make_train_step"
    check_model(where, model)
    check_optimizer(where, optimizer)
    train_loss, _ = resolve_loss(loss, task, label_smoothing, class_weights, where=where)
    dtype = check_compute_dtype(where, compute_dtype)
    if augment is not None and not callable(augment):
        fail(where, "augment", "None or a function (key, x) -> x", augment, exc=TypeError)

    def train_step(train_state, batch, key):
        mask = check_batch("train_step", batch)
        step_key = jax.random.fold_in(key, train_state.step)
        model_key, augment_key = jax.random.split(step_key)
        x = batch["x"] if augment is None else augment(augment_key, batch["x"])
        x = cast_input(x, dtype)

        def objective(params):
            logits, state = model.apply(params, train_state.state, x, train=True, key=model_key)
            logits = logits.astype(jnp.float32)
            return train_loss(logits, batch["y"], mask), (logits, state)

        (value, (logits, state)), grads = jax.value_and_grad(objective, has_aux=True)(
            train_state.params)
        metrics = {"loss": value, "grad_norm": global_norm(grads)}
        if task != "regression":
            metrics["accuracy"] = masked_accuracy(logits, batch["y"], mask, task)
        return apply_gradients(train_state, grads, optimizer, state=state), metrics

    return train_step


def jit_train_step(train_step):
    """``jaxcnn.jit(train_step, donate_argnums=0)``: the old train state's buffers are
    reused for the new one, so do not read a train state after passing it to the step."""
    return jit(train_step, donate_argnums=0)


def check_top_k(where, top_k):
    if isinstance(top_k, int):
        top_k = (top_k,)
    if not isinstance(top_k, (tuple, list)) or not all(is_int(k) and k >= 1 for k in top_k):
        fail(where, "top_k", "a tuple of positive ints", top_k)
    return tuple(top_k)


def make_eval_fn(model, loss=None, *, task="multiclass", top_k=(5,), compute_dtype=None,
                 where="make_eval_fn"):
    """``eval_fn(params, state, batch) -> (sums, logits)``: :func:`make_eval_step` that also
    returns the float32 logits (for ROC AUC and ensembles); errors name ``where``."""
    check_model(where, model)
    _, eval_loss = resolve_loss(loss, task, where=where)
    dtype = check_compute_dtype(where, compute_dtype)
    top_k = check_top_k(where, top_k)

    def eval_fn(params, state, batch):
        mask = check_batch("eval_step", batch)
        logits, _ = model.apply(params, state, cast_input(batch["x"], dtype), train=False)
        logits = logits.astype(jnp.float32)
        return sums_from_logits(logits, batch["y"], mask, task, eval_loss, top_k), logits

    return eval_fn


def sums_from_logits(logits, y, mask, task, eval_loss, top_k=()):
    """Masked sums (additive over batches) of the evaluation metrics of ``logits``."""
    count = mask.sum()
    sums = {"count": count, "loss": eval_loss(logits, y, mask) * count}
    if task == "regression":
        return sums
    sums["correct"] = (correct(logits, y, task) * mask).sum()
    num_classes = 2 if task == "binary" else logits.shape[-1]
    if task == "multiclass":
        for k in top_k:
            if k < num_classes:
                sums[f"top{k}_correct"] = (top_k_correct(logits, y, k) * mask).sum()
    labels = y.astype(jnp.int32).reshape(-1)
    preds = predictions(logits, task).reshape(-1)
    sums["confusion"] = jnp.zeros((num_classes, num_classes), jnp.int32).at[labels, preds].add(
        mask.astype(jnp.int32))
    if task == "binary":
        sums["score_sum"] = (binary_scores(logits) * mask).sum()
    return sums


def make_eval_step(model, loss=None, *, task="multiclass", top_k=(5,), compute_dtype=None):
    """A pure evaluation step ``eval_step(params, state, batch) -> sums``.

    The sums are masked and additive over batches, so a padded final batch counts each
    real example once: ``count``, ``loss`` (the per-example loss summed; for named losses
    without smoothing or class weights), ``correct``, ``top{k}_correct`` for each ``k`` in
    ``top_k`` below the number of classes, and ``confusion`` (row = true, column =
    predicted). :func:`jaxcnn.train.evaluate` turns them into means and adds ROC AUC.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import make_eval_step
      >>> net = serial(flatten(), dense(3))
      >>> _, params, state = net.init(jax.random.key(0), (4,))
      >>> batch = {"x": jnp.ones((5, 4)), "y": jnp.zeros((5,), jnp.int32),
      ...          "mask": jnp.array([1.0, 1.0, 1.0, 0.0, 0.0])}
      >>> sums = jax.jit(make_eval_step(net))(params, state, batch)
      >>> float(sums["count"]), int(sums["confusion"].sum())
      (3.0, 3)
    """
    eval_fn = make_eval_fn(model, loss, task=task, top_k=top_k, compute_dtype=compute_dtype,
                           where="make_eval_step")
    return lambda params, state, batch: eval_fn(params, state, batch)[0]
