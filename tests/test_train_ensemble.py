"""Ensembles: K members trained in one step equal the same models trained one by one."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn import conv, dense, dropout, flatten, relu, serial
from jaxcnn.train import (best_member, create_ensemble_state, create_train_state,
                          ensemble_predict, evaluate_ensemble, hyperparam_sweep,
                          make_ensemble_train_step, make_train_step, select_member)
from jaxcnn.train._ensemble import member_keys

K, STEPS, IN_SHAPE = 3, 3, (6, 6, 1)
TOL = dict(rtol=2e-5, atol=2e-6)
NET = serial(conv(4, 3), relu(), flatten(), dropout(0.25), dense(3))
# One optimizer (learning rate injected, default 1e-2) and one set of jitted steps shared by
# every test, so each compiles once.
OPT = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2)
INIT_KEYS = jax.random.split(jax.random.key(0), K)
RUN_KEY = jax.random.key(7)


@functools.cache
def _single_step():
    return jax.jit(make_train_step(NET, OPT))


@functools.cache
def _ensemble_step(strategy="vmap", per_member_batches=False):
    """The jitted ensemble step; the tests cover "vmap" with a shared batch and "unroll"
    with per-member batches (each compiles once)."""
    return jax.jit(make_ensemble_train_step(NET, OPT, strategy=strategy,
                                            per_member_batches=per_member_batches))


def _batches(n=STEPS, lead=()):
    rng = np.random.default_rng(0)
    return [{"x": jnp.asarray(rng.normal(size=lead + (8,) + IN_SHAPE), jnp.float32),
             "y": jnp.asarray(rng.integers(0, 3, lead + (8,)), jnp.int32)} for _ in range(n)]


def _alone(i, batches, lr=None):
    """Member ``i`` trained by itself: the reference, with the keys the ensemble step
    documents (``split(run_key, K)[i]``) and its learning rate set by hand."""
    ts = create_train_state(NET, OPT, INIT_KEYS[i], IN_SHAPE)
    if lr is not None:
        ts.opt_state.hyperparams["learning_rate"] = jnp.float32(lr)
    losses = []
    for batch in batches:
        ts, metrics = _single_step()(ts, batch, jax.random.split(RUN_KEY, K)[i])
        losses.append(metrics["loss"])
    return ts, np.array(losses)


def _ensemble(batches, hyperparams=None, **kw):
    ens = create_ensemble_state(NET, OPT, INIT_KEYS, IN_SHAPE, hyperparams=hyperparams)
    losses = []
    for batch in batches:
        ens, metrics = _ensemble_step(**kw)(ens, batch, RUN_KEY)
        losses.append(metrics["loss"])
    return ens, np.stack(losses)


def _assert_member_equal(ens, i, ts, tol=TOL):
    member = select_member(ens, i)
    assert int(member.step) == int(ts.step)
    for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(ts)):
        np.testing.assert_allclose(a, b, **tol)


def test_members_with_different_seeds_equal_models_trained_alone():
    batches = _batches()
    ens, ens_losses = _ensemble(batches)  # "vmap"; the per-member-batch test covers "unroll"
    assert ens_losses.shape == (STEPS, K) and ens.step.tolist() == [STEPS] * K
    for i in range(K):
        ts, losses = _alone(i, batches)
        _assert_member_equal(ens, i, ts)
        np.testing.assert_allclose(ens_losses[:, i], losses, **TOL)


def test_members_with_different_learning_rates_equal_models_trained_alone():
    lrs = [1e-3, 1e-2, 1e-1]
    opt, per_member = hyperparam_sweep(optax.adam, learning_rate=lrs)
    assert opt.init({"w": jnp.ones(2)}).hyperparams["learning_rate"] == np.float32(lrs[0])
    batches = _batches()
    ens, ens_losses = _ensemble(batches, hyperparams=per_member)
    np.testing.assert_allclose(ens.opt_state.hyperparams["learning_rate"], lrs, rtol=1e-7)
    for i, lr in enumerate(lrs):
        ts, losses = _alone(i, batches, lr)
        # Adam divides by sqrt(v): float32 rounding in a near-zero gradient moves a
        # parameter by up to ~lr * 1e-4, hence atol 1e-5 at lr = 0.1.
        _assert_member_equal(ens, i, ts, dict(rtol=2e-5, atol=1e-5))
        np.testing.assert_allclose(ens_losses[:, i], losses, **TOL)


def test_per_member_batches_and_explicit_member_keys():
    batches = _batches(2, lead=(K,))
    ens = create_ensemble_state(NET, OPT, INIT_KEYS, IN_SHAPE)
    keys = jax.random.split(RUN_KEY, K)
    for batch in batches:  # K keys given: used as they are (as split(RUN_KEY, K) would be)
        ens, _ = _ensemble_step("unroll", per_member_batches=True)(ens, batch, keys)
    for i in range(K):
        ts, _ = _alone(i, [{n: v[i] for n, v in b.items()} for b in batches])
        _assert_member_equal(ens, i, ts)


def test_raw_uint32_keys_work_like_typed_keys():
    raw = jax.random.split(jax.random.PRNGKey(0), K)
    a = create_ensemble_state(NET, OPT, raw, IN_SHAPE)
    b = create_ensemble_state(NET, OPT, jax.random.wrap_key_data(raw), IN_SHAPE)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(
        member_keys(jax.random.PRNGKey(3), K), jax.random.split(jax.random.PRNGKey(3), K))
    assert member_keys(raw, K) is raw


def test_best_member_select_member_and_predictions():
    ens = create_ensemble_state(NET, OPT, INIT_KEYS, IN_SHAPE)
    assert best_member([0.2, 0.9, 0.5]) == 1
    assert best_member(jnp.array([0.2, 0.1, float("nan")]), mode="min") == 1
    assert best_member([float("nan"), 0.3]) == 1
    x = _batches(1)[0]["x"]
    probs = np.asarray(jax.jit(lambda e, x: ensemble_predict(NET, e, x))(ens, x))
    member_probs = []
    for i in range(K):
        m = select_member(ens, i)
        logits = np.asarray(NET.apply(m.params, m.state, x, train=False)[0], np.float64)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        member_probs.append(e / e.sum(-1, keepdims=True))
    np.testing.assert_allclose(probs, np.mean(member_probs, 0), rtol=1e-5, atol=1e-6)
    y = np.arange(8) % 3
    metrics = evaluate_ensemble(NET, ens, np.asarray(x), y, batch_size=3)
    expected = [float((p.argmax(-1) == y).mean()) for p in member_probs]
    np.testing.assert_allclose(metrics["member_accuracy"], expected)
    assert metrics["accuracy"] == pytest.approx(float((probs.argmax(-1) == y).mean()))
    assert select_member(ens, -1).params["dense_4"]["kernel"].shape == (64, 3)


def test_binary_ensemble_predict_is_mean_sigmoid():
    net = serial(flatten(), dense(1))
    ens = create_ensemble_state(net, OPT, INIT_KEYS, (4,))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 4)), jnp.float32)
    members = [select_member(ens, i) for i in range(K)]
    logits = np.stack([np.asarray(net.apply(m.params, m.state, x, train=False)[0])
                       for m in members])
    np.testing.assert_allclose(ensemble_predict(net, ens, x), (1 / (1 + np.exp(-logits))).mean(0),
                               rtol=1e-5)


def test_hyperparam_sweep_shares_scalars():
    opt, per_member = hyperparam_sweep(optax.adam, learning_rate=(0.1, 0.2, 0.3), b1=0.8)
    assert list(per_member) == ["learning_rate"]
    ens = create_ensemble_state(NET, opt, INIT_KEYS, IN_SHAPE, hyperparams=per_member)
    np.testing.assert_allclose(ens.opt_state.hyperparams["b1"], [0.8] * K, rtol=1e-7)
    ens = create_ensemble_state(NET, opt, INIT_KEYS, IN_SHAPE,
                                hyperparams={"b2": 0.5})  # a scalar broadcasts
    np.testing.assert_allclose(ens.opt_state.hyperparams["b2"], [0.5] * K)


# ---- errors -------------------------------------------------------------------------------

def test_create_ensemble_state_errors():
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    with pytest.raises(ValueError, match=r"keys must be a 1-D array of K keys"):
        create_ensemble_state(NET, opt, jax.random.key(0), IN_SHAPE)
    with pytest.raises(TypeError, match=r"keys must be a jax.random key array"):
        create_ensemble_state(NET, opt, jnp.zeros((3, 2)), IN_SHAPE)
    with pytest.raises(TypeError, match=r"keys must be a jax.random key array, got 'list'"):
        create_ensemble_state(NET, opt, [1, 2], IN_SHAPE)
    with pytest.raises(TypeError, match=r"hyperparams must be None or a dict"):
        create_ensemble_state(NET, opt, INIT_KEYS, IN_SHAPE, hyperparams=[0.1])
    with pytest.raises(ValueError, match=r"hyperparams key must be one of the injected "
                       r"hyperparameters \['b1', .*'learning_rate'\], got 'lr'"):
        create_ensemble_state(NET, opt, INIT_KEYS, IN_SHAPE, hyperparams={"lr": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"hyperparameters \[\], got 'learning_rate'. Build "
                       r"the optimizer with optax.inject_hyperparams"):
        create_ensemble_state(NET, optax.adam(0.1), INIT_KEYS, IN_SHAPE,
                              hyperparams={"learning_rate": [1, 2, 3]})
    twice = optax.chain(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1),
                        optax.inject_hyperparams(optax.sgd)(learning_rate=0.1))
    with pytest.raises(ValueError, match=r"must be held by one inject_hyperparams state, "
                       r"got '2 states'"):
        create_ensemble_state(NET, twice, INIT_KEYS, IN_SHAPE,
                              hyperparams={"learning_rate": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"a scalar or 3 values \(one per member\), got \(2,\)"):
        create_ensemble_state(NET, opt, INIT_KEYS, IN_SHAPE,
                              hyperparams={"learning_rate": [0.1, 0.2]})


def test_hyperparam_sweep_errors():
    with pytest.raises(ValueError, match=r"sequences of one length"):
        hyperparam_sweep(optax.sgd, learning_rate=[0.1, 0.2], momentum=[0.9])
    with pytest.raises(TypeError, match=r"optimizer_factory must be an optax optimizer factory"):
        hyperparam_sweep("adam", learning_rate=0.1)
    with pytest.raises(ValueError, match=r"learning_rate must be a number or a non-empty seq"):
        hyperparam_sweep(optax.sgd, learning_rate=[])


def test_ensemble_step_errors():
    opt = OPT
    with pytest.raises(ValueError, match=r"strategy must be one of 'auto', 'vmap', 'unroll'"):
        make_ensemble_train_step(NET, opt, strategy="pmap")
    with pytest.raises(TypeError, match=r"per_member_batches must be a bool"):
        make_ensemble_train_step(NET, opt, per_member_batches=1)
    step = make_ensemble_train_step(NET, opt)
    batch = _batches(1)[0]
    single = create_train_state(NET, opt, INIT_KEYS[0], IN_SHAPE)
    with pytest.raises(ValueError, match=r"ens_state.step shape must be \(members,\)"):
        step(single, batch, RUN_KEY)
    ens = create_ensemble_state(NET, opt, INIT_KEYS, IN_SHAPE)
    with pytest.raises(ValueError, match=r"key must be one key or 3 keys"):
        step(ens, batch, jax.random.split(RUN_KEY, 2))
    per = make_ensemble_train_step(NET, opt, per_member_batches=True)
    with pytest.raises(ValueError, match=r"batch leading axes must be 3"):
        per(ens, batch, RUN_KEY)


def test_select_and_best_member_errors():
    ens = create_ensemble_state(NET, OPT, INIT_KEYS, IN_SHAPE)
    with pytest.raises(ValueError, match=r"i must be an int in \[0, 3\), got 3"):
        select_member(ens, 3)
    with pytest.raises(ValueError, match=r"mode must be one of 'max', 'min'"):
        best_member([1.0], mode="best")
    with pytest.raises(ValueError, match=r"values must be a non-empty sequence"):
        best_member([])
    with pytest.raises(ValueError, match=r"values must be not all NaN.*Every member diverged"):
        best_member([float("nan")] * 2)
