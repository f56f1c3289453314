"""conv_autoencoder and unet: shapes in 1-d, 2-d and 3-d (odd sizes too), parameter counts
against hand-written formulas, the max-unpool route, fan_in_mul, and every error message."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn.models import conv_autoencoder, conv_block, get_model, pad_to_multiple, unet
from jaxcnn.train import num_params

KEY = jax.random.key(0)


def count(net, shape):
    """Parameter count from shapes alone (no initialiser runs)."""
    return num_params(jax.eval_shape(lambda k: net.init(k, shape)[1], KEY))


def unet_count(c_in, classes, depth, base, n, norm="batch", up="transpose", skip=True):
    """Parameter count of a U-Net written out from the architecture."""
    k = 3 ** n
    bias = 0 if norm != "none" else 1
    normp = 2 if norm != "none" else 0

    def block(cin, w):
        return k * cin * w + bias * w + normp * w + k * w * w + bias * w + normp * w

    total, cin = 0, c_in
    for d in range(depth + 1):  # encoder blocks, the bottom one included
        w = base * 2 ** d
        total += block(cin, w)
        cin = w
    for d in range(depth):  # up-step and decoder block of level d
        w, below = base * 2 ** d, base * 2 ** (d + 1)
        total += (2 ** n * below * w + w) if up == "transpose" else (k * below * w + w)
        total += block(w * (2 if skip else 1), w)
    return total + base * classes + classes


@pytest.mark.parametrize("shape", [(30, 2), (30, 27, 1), (10, 9, 7, 1)])
@pytest.mark.parametrize("up", ["transpose", "upsample"])
def test_unet_shapes_and_counts_any_rank_and_odd_sizes(shape, up):
    net = unet(3, depth=2, base_width=8, up=up)
    params, state = jax.eval_shape(lambda k: net.init(k, shape)[1:], KEY)
    assert num_params(params) == unet_count(shape[-1], 3, 2, 8, len(shape) - 1, up=up)
    y, _ = jax.eval_shape(lambda p, s, x: net.apply(p, s, x, train=True), params, state,
                          jax.ShapeDtypeStruct((2,) + shape, jnp.float32))
    assert y.shape == (2,) + shape[:-1] + (3,)


def test_unet_documented_counts_group_norm_and_no_skip():
    assert count(unet(), (64, 64, 1)) == 482_466 == unet_count(1, 2, 3, 16, 2)
    assert count(unet(), (16, 16, 16, 1)) == 1_401_282 == unet_count(1, 2, 3, 16, 3)
    for kw in (dict(norm="group", groups=4), dict(norm="none"), dict(skip=False)):
        assert count(unet(2, depth=2, base_width=8, **kw), (16, 16, 1)) == unet_count(
            1, 2, 2, 8, 2, **{k: v for k, v in kw.items() if k != "groups"})
    assert get_model("unet", num_classes=5).init(KEY, (16, 16, 1))[0] == (16, 16, 5)


def test_unet_skip_connections_feed_the_decoder():
    """With skips the decoder block of a level reads the encoder's features concatenated
    to the up-sampled ones (2w input channels); without, only the up-sampled ones (w)."""
    for skip in (True, False):
        net = unet(2, depth=1, base_width=4, norm="none", skip=skip)
        _, params, state = net.init(KEY, (8, 8, 1))
        top = params["serial_0"]
        assert ("concat_1" in top) == skip
        assert top["serial_2"]["conv_0"]["kernel"].shape == (3, 3, 8 if skip else 4, 4)
        y, _ = net.apply(params, state, jnp.ones((2, 8, 8, 1)), train=False)
        assert y.shape == (2, 8, 8, 2)


def ae_count(shape, k, widths, up):
    c = shape[-1]
    s = np.prod([d // 2 ** len(widths) for d in shape[:-1]])
    total, cin = 0, c
    for w in widths:
        total += 9 * cin * w + w
        cin = w
    flat = s * widths[-1]
    total += flat * k + k + (k + 1) * flat
    outs = (c,) + tuple(widths[:-1])
    for w, o in zip(widths, outs):
        total += 9 * w * o + o + (4 * w * w + w if up == "transpose" else 0)
    return total


@pytest.mark.parametrize("up", ["transpose", "upsample", "unpool"])
def test_autoencoder_shapes_counts_and_odd_sizes(up):
    ae = conv_autoencoder(16, up=up)
    assert ae.init(KEY, (28, 28, 1))[0] == (28, 28, 1)
    assert count(ae, (28, 28, 1)) == ae_count((28, 28, 1), 16, (16, 32), up)
    odd = conv_autoencoder(2, widths=(4,), up=up)
    _, p, s = odd.init(KEY, (7, 9, 1))
    y, _ = odd.apply(p, s, jnp.ones((3, 7, 9, 1)), train=False)
    assert y.shape == (3, 7, 9, 1)
    _, p, s = conv_autoencoder(4, widths=(4, 8), up=up).init(KEY, (12, 2))  # 1-d
    assert num_params(p) == sum(a.size for a in jax.tree.leaves(p))


def test_documented_autoencoder_counts():
    assert count(conv_autoencoder(32, up="unpool"), (28, 28, 1)) == 111_521
    assert count(conv_autoencoder(32), (28, 28, 1)) == 116_689


def test_unpool_route_puts_values_back_at_the_maxima():
    """The unpool decoder reads the encoder's argmax positions: a net of widths (1,) with
    all-one kernels feeds the pooled maxima back to exactly those positions."""
    from jaxcnn.models.image2image import _max_pool_indices, _max_unpool
    net = jc.serial(_max_pool_indices(), jc.parallel(jc.identity(), jc.identity()),
                    _max_unpool())
    assert net.init(KEY, (4, 4, 2))[0] == (4, 4, 2)
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype(np.float32)
    _, params, state = net.init(KEY, (4, 4, 2))
    y, _ = net.apply(params, state, jnp.asarray(x), train=False)
    ref = np.zeros_like(x)
    for n in range(2):
        for c in range(2):
            for i in range(0, 4, 2):
                for j in range(0, 4, 2):
                    w = x[n, i:i + 2, j:j + 2, c]
                    a, b = np.unravel_index(np.argmax(w), (2, 2))
                    ref[n, i + a, j + b, c] = w[a, b]
    np.testing.assert_array_equal(np.asarray(y), ref)


def test_pad_to_multiple_crops_back():
    net = pad_to_multiple(jc.serial(jc.max_pool(4), jc.upsample(scale_factor=4)), 4, "p")
    x = jnp.arange(2 * 6 * 5 * 1, dtype=jnp.float32).reshape(2, 6, 5, 1)
    y, _ = net.apply({"max_pool_0": {}, "upsample_1": {}}, {"max_pool_0": {}, "upsample_1": {}},
                     x, train=False)
    assert y.shape == x.shape
    with pytest.raises(ValueError, match="p: multiple must be a positive int"):
        pad_to_multiple(jc.identity(), 0, "p")


def test_fan_in_mul_broadcasts_like_numpy():
    a = np.random.default_rng(1).normal(size=(2, 3, 4, 5)).astype(np.float32)
    g = np.random.default_rng(2).normal(size=(2, 5)).astype(np.float32)
    m = jc.fan_in_mul()
    assert m.init(KEY, ((3, 4, 5), (5,)))[0] == (3, 4, 5)
    assert m.init(KEY, ((3, 4, 5), (1, 1, 5), (3, 4, 1)))[0] == (3, 4, 5)
    y, _ = m.apply({}, {}, (jnp.asarray(a), jnp.asarray(g)), train=False)
    np.testing.assert_allclose(np.asarray(y), a * g[:, None, None, :], rtol=1e-6)
    with pytest.raises(ValueError, match="fan_in_mul: the branch shapes must be broadcastable"):
        m.init(KEY, ((3, 4, 5), (4,)))
    with pytest.raises(ValueError, match="fan_in_mul: in_shape must be a tuple of shapes"):
        m.init(KEY, (3, 4))


@pytest.mark.parametrize("build, message", [
    (lambda: unet(0), "unet: num_classes must be a positive int"),
    (lambda: unet(2, depth=0), "unet: depth must be a positive int"),
    (lambda: unet(2, up="bilinear"), "unet: up must be one of 'transpose', 'upsample'"),
    (lambda: unet(2, skip=1), "unet: skip must be a bool"),
    (lambda: unet(2, ndim=4), "unet: ndim must be 1, 2, 3 or None, got 4"),
    (lambda: unet(2, norm="layer"), "conv_block: norm must be one of 'batch'"),
    (lambda: unet(2, base_width=12, norm="group"), "conv_block: width must be divisible by"),
    (lambda: conv_block(0), "conv_block: width must be a positive int"),
    (lambda: conv_autoencoder(0), "conv_autoencoder: code_size must be a positive int"),
    (lambda: conv_autoencoder(8, out_channels=0), "conv_autoencoder: out_channels must be"),
    (lambda: conv_autoencoder(8, widths=()), "conv_autoencoder: widths must be a non-empty"),
    (lambda: conv_autoencoder(8, up="pixel"), "conv_autoencoder: up must be one of"),
])
def test_errors(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_shape_errors():
    from jaxcnn.models.image2image import _max_unpool
    with pytest.raises(ValueError, match="max_unpool: the \\(values, indices\\) shapes must be"):
        _max_unpool().init(KEY, ((2, 2, 3), (2, 2, 4)))
    with pytest.raises(ValueError, match="unet: in_shape must be \\(\\*spatial, channels\\)"):
        unet(2).init(KEY, (5,))
