"""Time-series models: shapes, parameter counts worked out by hand, causality of the TCN
(by gradients), the class-activation-map identity, and argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.models.timeseries import fcn, mnist1d_cnn, resnet1d, tcn


def count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(tree))


def abstract_init(model, in_shape):
    """Shapes of ``(params, state)`` without running (or compiling) the initialisers."""
    return jax.eval_shape(lambda k: model.init(k, in_shape)[1:], jax.random.key(0))


def init(model, in_shape):
    """``(params, state)``; the initialisers compiled as one program (cheaper than eager)."""
    return jax.jit(lambda k: model.init(k, in_shape)[1:])(jax.random.key(0))


def run(model, x, train=False, key=None):
    params, state = init(model, x.shape[1:])
    apply = jax.jit(lambda p, s, x: model.apply(p, s, x, train=train, key=key)[0])
    return apply(params, state, x), params, state


@pytest.mark.parametrize("factory,in_shape,out", [
    (lambda: fcn(3), (24, 1), (3,)),
    (lambda: fcn(None), (30, 6), (30, 128)),
    (lambda: resnet1d(4), (17, 2), (4,)),
    (lambda: resnet1d(None), (17, 2), (17, 128)),
    (lambda: tcn(5, channels=8, dilations=(1, 2)), (20, 3), (5,)),
    (lambda: tcn(5, channels=8, pool="last"), (20, 3), (5,)),
    (lambda: mnist1d_cnn(), (40, 1), (10,)),
    (lambda: mnist1d_cnn(None), (40, 1), (10, 256)),
])
def test_output_shapes(factory, in_shape, out):
    model = factory()

    def forward(key, x):
        out_shape, params, state = model.init(key, in_shape)
        assert out_shape == out
        return model.apply(params, state, x, train=False)[0]

    y = jax.eval_shape(forward, jax.random.key(1), jax.ShapeDtypeStruct((2,) + in_shape,
                                                                        jnp.float32))
    assert y.shape == (2,) + out and y.dtype == jnp.float32


def test_param_counts_by_hand():
    # FCN, convs without bias (batch norm's bias replaces it), bn = scale + bias per channel.
    m = fcn(3, channels=(4, 6, 5), kernel_sizes=(3, 2, 1))
    p, s = abstract_init(m, (10, 2))
    assert count(p) == (3 * 2 * 4 + 8) + (2 * 4 * 6 + 12) + (1 * 6 * 5 + 10) + (5 * 3 + 3)
    assert count(s) == 2 * (4 + 6 + 5)  # running mean and var
    # Wang et al.'s FCN on a univariate series with 2 classes.
    p, _ = abstract_init(fcn(2), (50, 1))
    assert count(p) == 8 * 128 + 256 + 5 * 128 * 256 + 512 + 3 * 256 * 128 + 256 + 128 * 2 + 2
    # ResNet1D: block 1 and 2 have conv+bn shortcuts (channels change), block 3 bn alone.
    m = resnet1d(3, channels=(4, 6, 6), kernel_sizes=(3, 2, 1))
    p, _ = abstract_init(m, (9, 2))
    b1 = (3 * 2 * 4 + 8) + (2 * 4 * 4 + 8) + (1 * 4 * 4 + 8) + (1 * 2 * 4 + 8)
    b2 = (3 * 4 * 6 + 12) + (2 * 6 * 6 + 12) + (1 * 6 * 6 + 12) + (1 * 4 * 6 + 12)
    b3 = (3 * 6 * 6 + 12) + (2 * 6 * 6 + 12) + (1 * 6 * 6 + 12) + 12
    assert count(p) == b1 + b2 + b3 + (6 * 3 + 3)
    # TCN: convs with bias, layer norm scale + bias, a 1-wide shortcut conv in block 1 only.
    m = tcn(3, channels=4, kernel_size=3, dilations=(1, 2), rate=0.0)
    p, _ = abstract_init(m, (12, 2))
    blk1 = (3 * 2 * 4 + 4) + 8 + (3 * 4 * 4 + 4) + 8 + (2 * 4 + 4)
    blk2 = 2 * ((3 * 4 * 4 + 4) + 8)
    assert count(p) == blk1 + blk2 + (4 * 3 + 3)
    m = mnist1d_cnn(10, channels=(4, 8), rate=0.0)
    p, _ = abstract_init(m, (40, 1))
    assert count(p) == (3 * 4 + 8) + (3 * 4 * 4 + 8) + (3 * 4 * 8 + 16) + (3 * 8 * 8 + 16) + 90


def test_tcn_is_causal_by_gradient(norm="layer", train=True):
    # (batch norm in eval mode is a per-channel affine map: causal whenever this is.)
    # k = 3, dilations (1, 2): receptive field 1 + 2 * (3 - 1) * (1 + 2) = 13 steps.
    model = tcn(None, channels=4, kernel_size=3, dilations=(1, 2), rate=0.0, norm=norm)
    length = 20
    params, state = init(model, (length, 2))
    x = jax.random.normal(jax.random.key(1), (3, length, 2))

    def out_at(x, t):
        return model.apply(params, state, x, train=train)[0][1, t].sum()

    grads = jax.jit(jax.vmap(jax.grad(out_at), in_axes=(None, 0)))(x, jnp.arange(length))
    g = np.abs(np.asarray(grads)[:, 1]).sum(-1)  # (t, input time) for example 1
    assert np.all(np.asarray(grads)[:, [0, 2]] == 0)  # no mixing across the batch
    for t in range(length):
        assert np.all(g[t, t + 1:] == 0), f"output {t} depends on a later input"
        assert g[t, t] > 0
        assert np.all(g[t, :max(0, t - 12)] == 0)  # nothing beyond the receptive field
    assert np.any(g[np.arange(12, length), np.arange(length - 12)] > 0)  # its far edge counts


def test_fcn_class_activation_map_averages_to_logits():
    model = fcn(4, channels=(8, 16, 8))
    x = jax.random.normal(jax.random.key(2), (2, 30, 1))
    logits, params, state = run(model, x)
    features = fcn(None, channels=(8, 16, 8))
    a, _ = features.apply(params["features_0"], state["features_0"], x, train=False)
    w, b = params["head_2"]["kernel"], params["head_2"]["bias"]
    cam = np.einsum("ntc,ck->ntk", np.asarray(a, np.float64), np.asarray(w, np.float64))
    np.testing.assert_allclose(cam.mean(1) + np.asarray(b), logits, rtol=1e-4, atol=1e-5)


def test_tcn_last_step_head():
    model = tcn(3, channels=4, dilations=(1,), pool="last", rate=0.0)
    x = jax.random.normal(jax.random.key(3), (2, 9, 1))
    logits, params, state = run(model, x)
    a, _ = tcn(None, channels=4, dilations=(1,), rate=0.0).apply(
        params["features_0"], state["features_0"], x, train=False)
    w, b = params["head_2"]["kernel"], params["head_2"]["bias"]
    np.testing.assert_allclose(np.asarray(a)[:, -1] @ np.asarray(w) + np.asarray(b), logits,
                               rtol=1e-5, atol=1e-5)


def test_train_mode_updates_batch_norm_state_and_needs_key_for_dropout():
    model = mnist1d_cnn(10, channels=(4, 8), rate=0.5)
    x = jax.random.normal(jax.random.key(4), (4, 40, 1))
    params, state = init(model, (40, 1))
    _, new = jax.jit(lambda p, s, x, k: model.apply(p, s, x, train=True, key=k))(
        params, state, x, jax.random.key(5))
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), state, new)
    assert all(jax.tree_util.tree_leaves(changed))
    with pytest.raises(ValueError, match="key"):
        model.apply(params, state, x, train=True)


@pytest.mark.parametrize("make,match", [
    (lambda: fcn(3, channels=(8, 8), kernel_sizes=(3, 3, 3)), r"len\(kernel_sizes\) must be"),
    (lambda: fcn(3, channels=()), "channels must be a non-empty tuple"),
    (lambda: fcn(0), "num_classes must be a positive int"),
    (lambda: resnet1d(3, kernel_sizes=(8, 0)), "kernel_sizes must be a non-empty tuple"),
    (lambda: tcn(3, channels=0), "channels must be a positive int"),
    (lambda: tcn(3, kernel_size=0), "kernel_size must be a positive int"),
    (lambda: tcn(3, dilations=(1, -2)), "dilations must be"),
    (lambda: tcn(3, norm="group"), "norm must be one of 'layer', 'batch', 'none'"),
    (lambda: tcn(3, pool="max"), "pool must be one of 'avg', 'last'"),
    (lambda: tcn(3, rate=1.0), "rate must be in"),
    (lambda: mnist1d_cnn(10, channels=[16, 2.0]), "channels must be"),
])
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("factory,pad", [
    (lambda m: fcn(2, channels=(3,), kernel_sizes=(3,), bn_momentum=m), (1, 1)),
    (lambda m: resnet1d(2, channels=(3,), kernel_sizes=(3,), bn_momentum=m), (1, 1)),
    (lambda m: tcn(2, channels=3, dilations=(1,), norm="batch", rate=0.0, bn_momentum=m), (2, 0)),
    (lambda m: mnist1d_cnn(2, channels=(3,), rate=0.0, bn_momentum=m), (1, 1)),
])
def test_bn_momentum_zero_keeps_the_batch_statistics(factory, pad):
    # momentum 0: the first batch norm's running mean becomes the batch mean of the first
    # convolution (naive numpy, "SAME" or causal padding), what the time-series experiment
    # uses to recompute the statistics on a whole training set.
    x = np.random.default_rng(0).normal(size=(4, 8, 1)).astype(np.float32)
    model = factory(0.0)
    params, state = init(model, (8, 1))
    _, new = model.apply(params, state, jnp.asarray(x), train=True, key=jax.random.key(0))

    def first(tree, name):
        return np.asarray([v for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]
                           if getattr(p[-1], "key", None) == name][0])

    kernel = first(params, "kernel")[:, 0]  # (3, 3); only the TCN's conv has a bias
    bias = 0.0 if pad != (2, 0) else np.asarray(
        params["features_0"]["serial_0"]["residual_0"]["block"]["conv_0"]["bias"])
    xp = np.pad(x[..., 0], ((0, 0), pad))
    conv = np.stack([xp[:, t:t + 3] @ kernel for t in range(8)], axis=1) + bias
    np.testing.assert_allclose(first(new, "mean"), conv.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)
