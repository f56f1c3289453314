"""Per-example gradients and DP-SGD against loops of single-example gradients and optax."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcnn import conv, dense, dropout, flatten, layer, relu, serial
from jaxcnn.train import (clip_per_example, create_train_state, dp_aggregate,
                          make_dp_train_step, make_train_step, per_example_grads,
                          per_example_norms)

IN_SHAPE, B = (6, 6, 1), 6
TOL = dict(rtol=2e-5, atol=2e-6)
NET = serial(conv(4, 3), relu(), flatten(), dense(3))


@functools.cache
def _setup():
    rng = np.random.default_rng(0)
    batch = {"x": jnp.asarray(rng.normal(size=(B,) + IN_SHAPE), jnp.float32),
             "y": jnp.asarray(rng.integers(0, 3, B), jnp.int32)}
    _, params, state = NET.init(jax.random.key(0), IN_SHAPE)
    return params, state, batch


@functools.partial(jax.jit, static_argnums=0)
def _single_grad(net, params, state, x, y, key=None):
    """The reference: jax.grad of one example's loss, written with optax's cross-entropy."""
    def loss(p):
        logits, _ = net.apply(p, state, x[None], train=True, key=key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[None]).mean()
    return jax.grad(loss)(params)


# jitted once each: eager ops would compile one by one
_aggregate = jax.jit(dp_aggregate, static_argnames=("l2_norm_clip", "noise_multiplier"))
_clip = jax.jit(clip_per_example, static_argnums=1)


@functools.cache
def _grads():
    params, state, batch = _setup()
    return jax.jit(lambda p, s, b: per_example_grads(NET, p, s, b))(params, state, batch)


def _tree_norm(tree):
    return np.sqrt(sum(np.sum(np.square(np.asarray(g, np.float64))) for g in jax.tree.leaves(tree)))


def test_per_example_grads_equal_a_loop_of_single_example_grads():
    params, state, batch = _setup()
    grads, losses = _grads()
    assert losses.shape == (B,)
    for i in range(B):
        ref = _single_grad(NET, params, state, batch["x"][i], batch["y"][i])
        for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
            np.testing.assert_allclose(g[i], r, **TOL)
    # the mean of per-example gradients is the batch gradient
    mean = jax.tree.map(lambda g: g.mean(0), grads)
    full = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
        NET.apply(p, state, batch["x"], train=True)[0], batch["y"]).mean())(params)
    for g, r in zip(jax.tree.leaves(mean), jax.tree.leaves(full)):
        np.testing.assert_allclose(g, r, **TOL)


def test_per_example_grads_with_dropout_keys_and_mask():
    net = serial(conv(4, 3), relu(), flatten(), dropout(0.5), dense(3))
    _, params, state = net.init(jax.random.key(1), IN_SHAPE)
    _, _, batch = _setup()
    batch = dict(batch, mask=jnp.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0]))
    key = jax.random.key(3)
    grads, losses = jax.jit(lambda p, b, k: per_example_grads(net, p, state, b, key=k))(
        params, batch, key)
    keys = jax.random.split(key, B)
    for i in range(B):
        ref = _single_grad(net, params, state, batch["x"][i], batch["y"][i], keys[i])
        scale = float(batch["mask"][i])  # masked examples get zero gradients and losses
        for g, r in zip(jax.tree.leaves(grads), jax.tree.leaves(ref)):
            np.testing.assert_allclose(g[i], scale * np.asarray(r), **TOL)
        assert (losses[i] == 0) == (scale == 0)


def test_clip_per_example_bounds_each_norm_and_keeps_directions():
    rng = np.random.default_rng(2)
    grads = {"a": jnp.asarray(rng.normal(size=(5, 3, 2)), jnp.float32),
             "b": {"c": jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)}}
    grads["a"] = grads["a"].at[1].multiply(0.01)  # one example below the bound
    clip = 1.5
    clipped, norms = _clip(grads, clip)
    ref_norms = np.array([_tree_norm(jax.tree.map(lambda g: g[i], grads)) for i in range(5)])
    np.testing.assert_allclose(norms, ref_norms, rtol=1e-5)
    np.testing.assert_allclose(per_example_norms(grads), ref_norms, rtol=1e-5)
    for i in range(5):
        clipped_i = jax.tree.map(lambda g: g[i], clipped)
        assert _tree_norm(clipped_i) <= clip * (1 + 1e-6)
        factor = min(1.0, clip / ref_norms[i])
        for g, c in zip(jax.tree.leaves(grads), jax.tree.leaves(clipped)):
            np.testing.assert_allclose(c[i], factor * np.asarray(g[i], np.float64), rtol=1e-5,
                                       atol=1e-7)
    assert ref_norms[1] < clip  # unchanged
    np.testing.assert_array_equal(clipped["a"][1], grads["a"][1])


def test_dp_aggregate_without_noise_matches_optax_contrib():
    params, _, _ = _setup()
    grads, _ = _grads()
    ours, _ = _aggregate(grads, jax.random.key(0), l2_norm_clip=0.05, noise_multiplier=0.0)
    agg = optax.contrib.differentially_private_aggregate(0.05, 0.0, key=jax.random.key(0))
    with jax.numpy_dtype_promotion("standard"):
        ref = jax.jit(lambda g: agg.update(g, agg.init(params))[0])(grads)
    for a, r in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, r, **TOL)


def test_dp_aggregate_masks_rows_and_divides_by_all_rows():
    g = {"w": jnp.array([[3.0, 4.0], [30.0, 40.0], [0.3, 0.4]])}
    out, norms = _aggregate(g, jax.random.key(0), l2_norm_clip=1.0, noise_multiplier=0.0,
                            mask=jnp.array([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(out["w"], (np.array([0.6, 0.8]) + [0.3, 0.4]) / 3, rtol=1e-6)
    np.testing.assert_allclose(norms, [5.0, 50.0, 0.5], rtol=1e-6)


def test_dp_noise_std_is_noise_multiplier_times_clip_over_batch():
    rng = np.random.default_rng(4)
    rows, sigma, clip = 8, 1.3, 0.7
    grads = {"a": jnp.asarray(rng.normal(size=(rows, 100, 50)), jnp.float32),
             "b": jnp.asarray(rng.normal(size=(rows, 10_000)), jnp.float32)}
    key = jax.random.key(11)
    noisy, _ = _aggregate(grads, key, l2_norm_clip=clip, noise_multiplier=sigma)
    clean, _ = _aggregate(grads, key, l2_norm_clip=clip, noise_multiplier=0.0)
    noise = np.concatenate([np.ravel(np.asarray(n, np.float64) - np.asarray(c))
                            for n, c in zip(jax.tree.leaves(noisy), jax.tree.leaves(clean))])
    expected = sigma * clip / rows
    assert noise.size == 15_000
    # std of a sample std of n normals ~ std / sqrt(2 n) = 0.6%; of the mean ~ std / sqrt(n)
    assert abs(noise.std() / expected - 1) < 0.03
    assert abs(noise.mean()) < 4 * expected / np.sqrt(noise.size)
    # each leaf gets its own draw
    assert abs(np.corrcoef(noise[:5000], noise[5000:10_000])[0, 1]) < 0.05


@functools.cache
def _dp_step(clip, sigma):
    return jax.jit(make_dp_train_step(NET, optax.sgd(0.5), l2_norm_clip=clip,
                                      noise_multiplier=sigma))


def test_dp_step_without_noise_and_with_a_large_clip_is_the_mean_gradient_step():
    params, state, batch = _setup()
    opt = optax.sgd(0.5)
    ts = create_train_state(NET, opt, jax.random.key(0), IN_SHAPE)
    ref_step = jax.jit(make_train_step(NET, opt))
    dp, ref = ts, ts
    for _ in range(2):
        dp, m = _dp_step(1e6, 0.0)(dp, batch, jax.random.key(1))
        ref, m_ref = ref_step(ref, batch, jax.random.key(1))
        np.testing.assert_allclose(m["loss"], m_ref["loss"], **TOL)
        np.testing.assert_allclose(m["accuracy"], m_ref["accuracy"])
        np.testing.assert_allclose(m["grad_norm"], m_ref["grad_norm"], rtol=1e-5)
        assert float(m["clipped_fraction"]) == 0.0
    for a, r in zip(jax.tree.leaves(dp), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, r, **TOL)


def test_dp_step_update_is_clipped_mean_plus_noise():
    params, state, batch = _setup()
    ts = create_train_state(NET, optax.sgd(0.5), jax.random.key(0), IN_SHAPE)
    clip, sigma = 0.05, 2.0
    new, m = _dp_step(clip, sigma)(ts, batch, jax.random.key(1))
    assert float(m["clipped_fraction"]) == 1.0  # every example's norm is above 0.05
    # the update without noise: -lr * mean of clipped per-example grads (numpy reference)
    grads = [_single_grad(NET, ts.params, state, batch["x"][i], batch["y"][i]) for i in range(B)]
    norms = np.array([_tree_norm(g) for g in grads])
    np.testing.assert_allclose(m["mean_example_norm"], norms.mean(), rtol=1e-5)
    noise = []
    for leaf, (p_new, p_old) in enumerate(zip(jax.tree.leaves(new.params),
                                              jax.tree.leaves(ts.params))):
        clipped_mean = np.mean([np.asarray(jax.tree.leaves(g)[leaf]) * min(1, clip / n)
                                for g, n in zip(grads, norms)], axis=0)
        private = (np.asarray(p_old, np.float64) - np.asarray(p_new)) / 0.5
        noise.append(np.ravel(private - clipped_mean))
    noise = np.concatenate(noise)
    assert abs(noise.std() / (sigma * clip / B) - 1) < 0.15  # 235 parameters
    assert abs(noise.mean()) < 4 * sigma * clip / B / np.sqrt(noise.size)


def test_dp_errors():
    opt = optax.sgd(0.1)
    with pytest.raises(ValueError, match=r"l2_norm_clip must be > 0, got 0"):
        make_dp_train_step(NET, opt, l2_norm_clip=0, noise_multiplier=1.0)
    with pytest.raises(ValueError, match=r"noise_multiplier must be >= 0, got -1.0"):
        make_dp_train_step(NET, opt, l2_norm_clip=1.0, noise_multiplier=-1.0)
    with pytest.raises(TypeError, match=r"noise_multiplier must be a float, got None"):
        make_dp_train_step(NET, opt, l2_norm_clip=1.0, noise_multiplier=None)
    with pytest.raises(ValueError, match=r"l2_norm_clip must be > 0"):
        clip_per_example({"w": jnp.ones((2, 3))}, -1.0)
    counter = layer("counter", lambda key, s: ({}, {"n": jnp.zeros(())}),
                    lambda p, s, x, train, key: (x, {"n": s["n"] + 1}))
    net = serial(counter, flatten(), dense(3))
    ts = create_train_state(net, opt, jax.random.key(0), IN_SHAPE)
    step = make_dp_train_step(net, opt, l2_norm_clip=1.0, noise_multiplier=1.0)
    with pytest.raises(ValueError, match=r"the model state must be empty .*use group_norm"):
        step(ts, _setup()[2], jax.random.key(0))
    with pytest.raises(TypeError, match=r"batch must be a dict with keys 'x', 'y'"):
        per_example_grads(NET, *_setup()[:2], (1, 2))
