"""The pure train step: learning, one compile, per-step keys, mixed precision, state, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn as jc
from jaxcnn.train import (TrainState, apply_gradients, create_train_state, jit_train_step,
                          make_eval_step, make_train_step)


def counter():
    """A state-carrying test layer: counts the training calls, records the input dtype."""

    def init_params(key, in_shape):
        return {}, {"calls": jnp.zeros((), jnp.int32)}

    def forward(params, state, x, train, key):
        return x, {"calls": state["calls"] + (1 if train else 0)}

    return jc.layer("counter", init_params, forward)


def tiny_task(n=320, seed=0):
    """Is the upper half of an 6x6 image brighter than the lower half?"""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 6, 1)).astype(np.float32)
    y = (x[:, :3].mean(axis=(1, 2, 3)) > x[:, 3:].mean(axis=(1, 2, 3))).astype(np.int32)
    return x, y


NET = jc.serial(counter(), jc.conv(4, 3, padding=1), jc.relu(), jc.flatten(), jc.dropout(0.2),
                jc.dense(2))
OPT = optax.sgd(0.1, momentum=0.9)
TRACES = []


def counting_loss(logits, labels, mask):
    TRACES.append(1)  # runs once per trace, not per call
    logp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]
    return (nll * mask).sum() / mask.sum()


@pytest.fixture(scope="module")
def trained():
    """80 steps of the tiny conv net; shared by the tests below."""
    x, y = tiny_task()
    step = jit_train_step(make_train_step(NET, OPT, counting_loss))
    ts = create_train_state(NET, OPT, jax.random.key(0), (6, 6, 1))
    key = jax.random.key(1)
    TRACES.clear()
    losses = []
    for i in range(80):
        idx = np.arange(i * 16, i * 16 + 16) % len(x)
        ts, metrics = step(ts, {"x": x[idx], "y": y[idx]}, key)
        losses.append(float(metrics["loss"]))
    return ts, step, losses, len(TRACES)


def test_train_step_learns_and_compiles_once(trained):
    ts, step, losses, traces = trained
    assert traces == 1  # the second and later calls did not retrace
    assert step._cache_size() == 1  # ... nor recompile
    assert int(ts.step) == 80
    assert int(ts.state["counter_0"]["calls"]) == 80  # model state threads through the step
    x, y = tiny_task(128, seed=1)
    sums = jax.jit(make_eval_step(NET))(ts.params, ts.state, {"x": x, "y": y})
    assert float(sums["correct"]) / 128 >= 0.85
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_train_step_is_pure_and_keys_fold_in_the_step():
    x, y = tiny_task(16)
    batch = {"x": x, "y": y}
    step = make_train_step(NET, optax.sgd(0.0))  # lr 0: params stay, only dropout changes
    ts = create_train_state(NET, optax.sgd(0.0), jax.random.key(0), (6, 6, 1))
    key = jax.random.key(3)
    step = jax.jit(step)
    _, m1 = step(ts, batch, key)
    _, m2 = step(ts, batch, key)
    assert float(m1["loss"]) == float(m2["loss"])  # same state, same key: same result
    _, m3 = step(ts._replace(step=ts.step + 1), batch, key)
    assert float(m1["loss"]) != float(m3["loss"])  # another step: another dropout mask


def test_sgd_update_matches_manual_gradient():
    net = jc.serial(jc.flatten(), jc.dense(3))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0], np.int32)
    ts = create_train_state(net, optax.sgd(0.5), jax.random.key(0), (4,))
    w, b = ts.params["dense_1"]["kernel"], ts.params["dense_1"]["bias"]

    def loss(w, b):
        z = x @ w + b.reshape(1, -1)
        return -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1).mean()

    gw, gb = jax.grad(loss, argnums=(0, 1))(w, b)
    step = jax.jit(make_train_step(net, optax.sgd(0.5)))
    new, metrics = step(ts, {"x": x, "y": y}, jax.random.key(1))
    np.testing.assert_allclose(new.params["dense_1"]["kernel"], w - 0.5 * gw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], loss(w, b), rtol=1e-6)
    np.testing.assert_allclose(metrics["grad_norm"], np.sqrt((gw ** 2).sum() + (gb ** 2).sum()),
                               rtol=1e-5)


def test_mixed_precision_bfloat16_keeps_float32_params_and_loss():
    seen = []

    def record(x):
        seen.append(x.dtype)
        return x

    net = jc.serial(jc.activation(record, "record"), jc.conv(4, 3), jc.relu(), jc.flatten(),
                    jc.dense(2))
    x, y = tiny_task(16)
    ts = create_train_state(net, OPT, jax.random.key(0), (6, 6, 1))
    step32 = jax.jit(make_train_step(net, OPT))
    step16 = jax.jit(make_train_step(net, OPT, compute_dtype="bfloat16"))
    _, m32 = step32(ts, {"x": x, "y": y}, jax.random.key(1))
    new, m16 = step16(ts, {"x": x, "y": y}, jax.random.key(1))
    assert seen[-1] == jnp.bfloat16
    assert m16["loss"].dtype == jnp.float32
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(new.params))
    np.testing.assert_allclose(m16["loss"], m32["loss"], rtol=3e-2)


def test_batch_mask_removes_padded_examples_from_the_loss():
    x, y = tiny_task(8)
    net = jc.serial(jc.flatten(), jc.dense(2))
    ts = create_train_state(net, optax.sgd(0.1), jax.random.key(0), (6, 6, 1))
    step = jax.jit(make_train_step(net, optax.sgd(0.1)))
    _, real = step(ts, {"x": x[:5], "y": y[:5]}, jax.random.key(0))
    xp = np.concatenate([x[:5], 100 * x[5:]])
    _, padded = step(ts, {"x": xp, "y": y, "mask": np.array([1.0] * 5 + [0.0] * 3, np.float32)},
                     jax.random.key(0))
    np.testing.assert_allclose(padded["loss"], real["loss"], rtol=1e-6)
    np.testing.assert_allclose(padded["grad_norm"], real["grad_norm"], rtol=1e-5)


def test_train_step_errors():
    with pytest.raises(TypeError, match="create_train_state: model must be a jaxcnn Layer "
                                        r"\(init, apply\), got 'function'. Factories are always"):
        create_train_state(jc.relu, OPT, jax.random.key(0), (2,))
    with pytest.raises(TypeError, match=r"make_train_step: optimizer must be an "
                                        r"optax.GradientTransformation \(with init and update\), "
                                        r"got 'float'. e.g. optax.sgd"):
        make_train_step(NET, 0.1)
    with pytest.raises(ValueError, match="make_train_step: compute_dtype must be None or one of "
                                         "float32, bfloat16, float16, got 'int8'"):
        make_train_step(NET, OPT, compute_dtype="int8")
    with pytest.raises(ValueError, match="compute_dtype must be None or one of .*got 'fp8x'"):
        make_train_step(NET, OPT, compute_dtype="fp8x")
    with pytest.raises(TypeError, match=r"make_train_step: augment must be None or a function "
                                        r"\(key, x\) -> x, got 3"):
        make_train_step(NET, OPT, augment=3)
    ts = create_train_state(NET, OPT, jax.random.key(0), (6, 6, 1))
    step = make_train_step(NET, OPT)
    with pytest.raises(TypeError, match=r"train_step: batch must be a dict with keys 'x', 'y' "
                                        r"and optionally 'mask', got \['x'\]"):
        step(ts, {"x": jnp.ones((2, 6, 6, 1))}, jax.random.key(0))


def test_apply_gradients_is_one_adam_update_and_threads_the_model_state():
    # adam mixes its int32 count with float32 moments: needs the standard-promotion scope
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array([0.5])}
    grads = {"w": jnp.array([0.1, -0.4, 2.0]), "b": jnp.array([-1.0])}
    opt = optax.adam(0.1, b1=0.9, b2=0.999, eps=1e-8)
    ts = TrainState(jnp.zeros((), jnp.int32), params, {"n": jnp.zeros(())}, opt.init(params))
    new = apply_gradients(ts, grads, opt)
    newer = apply_gradients(new, grads, opt, state={"n": jnp.ones(())})
    for name in params:  # adam by hand (numpy, float64), two steps with the same gradient
        p, g = np.asarray(params[name], np.float64), np.asarray(grads[name], np.float64)
        m = v = 0.0
        for t, got in ((1, new), (2, newer)):
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g ** 2
            p = p - 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
            np.testing.assert_allclose(got.params[name], p, rtol=1e-5, atol=1e-6)
    assert int(new.step) == 1 and int(newer.step) == 2
    assert float(new.state["n"]) == 0.0 and float(newer.state["n"]) == 1.0  # kept, replaced
    with pytest.raises(TypeError, match=r"apply_gradients: optimizer must be an "
                                        r"optax.GradientTransformation \(with init and update\), "
                                        r"got 'str'"):
        apply_gradients(ts, grads, "adam")
