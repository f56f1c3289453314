"""3-d models: output shapes and parameter counts worked out by hand, one forward pass each,
the registry, and argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.models import get_model, resnet3d_small, small_cnn3d, voxnet


def count(tree):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


def shapes_of(model, in_shape):
    """``(out_shape, params, state)`` from shapes alone (no initialiser is compiled)."""
    out = []

    def init(key):
        o, p, s = model.init(key, in_shape)
        out.append(o)
        return p, s

    params, state = jax.eval_shape(init, jax.random.key(0))
    return out[0], params, state


def conv_params(k, c_in, c_out, bias=True):
    return k ** 3 * c_in * c_out + (c_out if bias else 0)


@pytest.mark.parametrize("grid, k", [(32, 10), (16, 3)])
def test_voxnet_counts(grid, k):
    # 32: conv 5/2 -> 14, conv 3 -> 12, pool -> 6; 16: 6, 4, 2
    side = ((grid - 5) // 2 + 1 - 2) // 2
    expected = (conv_params(5, 1, 32) + conv_params(3, 32, 32)
                + side ** 3 * 32 * 128 + 128 + 128 * k + k)
    out, params, state = shapes_of(voxnet(k), (grid,) * 3 + (1,))
    assert out == (k,) and count(params) == expected and count(state) == 0
    if grid == 32:
        assert expected == 4032 + 27680 + 884864 + 1290 == 917866  # Maturana & Scherer's ~0.9M


def bn(c):
    return 2 * c


def test_resnet3d_small_counts():
    w1, w2, k = 4, 6, 3
    expected = (conv_params(5, 1, w1, False) + bn(w1)                        # stem
                + 2 * (conv_params(3, w1, w1, False) + bn(w1))               # block 1, identity
                + conv_params(3, w1, w2, False) + bn(w2) + conv_params(3, w2, w2, False) + bn(w2)
                + conv_params(1, w1, w2, False) + bn(w2)                     # block 2, projection
                + w2 * k + k)
    model = resnet3d_small(k, widths=(w1, w2), blocks=(1, 1))
    out, params, state = shapes_of(model, (8, 8, 8, 1))
    assert out == (k,) and count(params) == expected
    assert count(state) == 2 * (w1 + w1 + w1 + w2 + w2 + w2)  # mean and var of each norm
    params, state = jax.tree.map(lambda a: jnp.full(a.shape, 0.1, a.dtype), (params, state))
    x = jnp.asarray(np.random.default_rng(0).random((2, 8, 8, 8, 1)), jnp.float32)
    y, new_state = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))(params, state, x)
    assert y.shape == (2, k) and bool(jnp.isfinite(y).all())
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_small_cnn3d_counts_and_forward():
    w1, w2, k = 3, 5, 4
    expected = (conv_params(5, 1, w1, False) + bn(w1)
                + 2 * (conv_params(3, w1, w1, False) + bn(w1))
                + conv_params(3, w1, w2, False) + bn(w2) + conv_params(3, w2, w2, False) + bn(w2)
                + w2 * k + k)
    model = small_cnn3d(k, widths=(w1, w2), rate=0.1)
    out, params, state = shapes_of(model, (8, 8, 8, 1))
    assert out == (k,) and count(params) == expected
    y = jax.eval_shape(lambda p, s, x: model.apply(p, s, x, train=True, key=jax.random.key(0)),
                       params, state, jax.ShapeDtypeStruct((2, 8, 8, 8, 1), jnp.float32))
    assert y[0].shape == (2, k)


def test_registry():
    for name in ("voxnet", "resnet3d_small", "small_cnn3d"):
        assert shapes_of(get_model(name, num_classes=5), (16, 16, 16, 1))[0] == (5,)


@pytest.mark.parametrize("build, match", [
    (lambda: voxnet(0), "voxnet: num_classes must be a positive int"),
    (lambda: voxnet(rates=(0.1, 0.2)), "voxnet: rates must be three dropout rates"),
    (lambda: resnet3d_small(widths=()), "resnet3d_small: widths must be a non-empty tuple"),
    (lambda: resnet3d_small(blocks=(1, 1)), "resnet3d_small: blocks must be 3 positive ints"),
    (lambda: resnet3d_small(stem_stride=0), "stem_stride must be a positive int"),
    (lambda: small_cnn3d(rate=1.0), r"small_cnn3d: rate must be in \[0, 1\)"),
    (lambda: small_cnn3d(stem_stride=0), "small_cnn3d: stem_stride must be a positive int"),
])
def test_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()
