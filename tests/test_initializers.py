"""Default initialisers (statistics of real layer kernels), classic kernels, fixed()."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn import initializers as inits
from jaxcnn import ops

KEY = jax.random.key(0)


@pytest.mark.parametrize("layer,in_shape,fan_in", [
    (jc.conv(64, 3), (8, 8, 32), 3 * 3 * 32),
    (jc.depthwise_conv(3, depth_multiplier=64), (6, 6, 16), 3 * 3 * 1),  # groups = C_in
])
def test_default_kernel_init_is_he_normal_on_fan_in(layer, in_shape, fan_in):
    _, p, _ = layer.init(KEY, in_shape)
    w = np.asarray(p["kernel"], np.float64)
    assert w.size > 9000 and p["kernel"].dtype == jnp.float32
    # sample variance of ~10^4 draws: relative std sqrt(2 / n) ~ 1.4%
    np.testing.assert_allclose(w.var(), 2.0 / fan_in, rtol=0.06)
    assert abs(w.mean()) < 4 * np.sqrt(2.0 / fan_in / w.size)
    np.testing.assert_array_equal(p["bias"], 0.0)


def test_torch_default_is_uniform_on_fan_in():
    w = np.asarray(inits.torch_default()(KEY, (3, 3, 32, 64)), np.float64)
    bound = 1 / np.sqrt(3 * 3 * 32)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    np.testing.assert_allclose(w.var(), bound ** 2 / 3, rtol=0.06)


def test_classic_kernel_shapes_and_values():
    for name, k in inits.KERNELS.items():
        size = 5 if name == "gaussian_blur" else 3
        assert inits.classic_kernel(name).shape == (size, size, 1, 1)
        assert k.dtype == np.float32
    k3 = inits.classic_kernel("sobel_y", channels=3)
    assert k3.shape == (3, 3, 1, 3)
    for c in range(3):
        np.testing.assert_array_equal(k3[:, :, 0, c], inits.KERNELS["sobel_y"])
    np.testing.assert_allclose(inits.KERNELS["gaussian_blur"].sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(inits.KERNELS["box_blur"].sum(), 1.0, rtol=1e-6)
    g = inits.KERNELS["gaussian_blur"]
    np.testing.assert_allclose(g, g.T, rtol=1e-7)
    np.testing.assert_allclose(g, g[::-1, ::-1], rtol=1e-7)
    assert g[2, 2] == g.max()
    assert inits.KERNELS["edge"].sum() == 0 and inits.KERNELS["laplacian"].sum() == 0
    assert inits.KERNELS["sharpen"].sum() == 1


def test_classic_kernels_on_a_horizontal_ramp():
    """x[h, w, c] = (c + 1) * w: d/dw = c + 1, so sobel_x (weights 1, 2, 1 over rows, a
    central difference over 2 columns) gives 8 (c + 1); sobel_y and the laplacian give 0."""
    ramp = np.arange(6.0)[None, None, :, None] * np.arange(1.0, 4.0)  # (1, 1, 6, 3)
    x = jnp.asarray(np.broadcast_to(ramp, (1, 5, 6, 3)), jnp.float32)
    expected = {"sobel_x": 8.0, "sobel_y": 0.0, "laplacian": 0.0, "edge": 0.0}
    for name, value in expected.items():
        y = ops.conv(x, inits.classic_kernel(name, 3), groups=3)
        assert y.shape == (1, 3, 4, 3)
        np.testing.assert_allclose(y, np.broadcast_to(value * np.arange(1.0, 4.0), y.shape),
                                   atol=1e-5)
    # identity and blurs leave a linear ramp unchanged in the interior
    for name in ("identity", "box_blur", "gaussian_blur", "sharpen"):
        k = inits.classic_kernel(name, 3)
        m = (k.shape[0] - 1) // 2
        y = ops.conv(x, k, groups=3)
        np.testing.assert_allclose(y, x[:, m:x.shape[1] - m, m:x.shape[2] - m], atol=1e-5)


def test_fixed_initialiser():
    value = np.arange(6.0).reshape(1, 2, 3)
    init = inits.fixed(value)
    out = init(KEY, (1, 2, 3))
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, value)
    assert init(None, [1, 2, 3], jnp.bfloat16).dtype == jnp.bfloat16
    # as a layer's kernel
    _, p, _ = jc.conv(1, 3, kernel_init=inits.fixed(inits.classic_kernel("sobel_x"))).init(
        KEY, (5, 5, 1))
    np.testing.assert_array_equal(p["kernel"], inits.classic_kernel("sobel_x"))


def test_reexports():
    for name in ["constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
                 "lecun_normal", "lecun_uniform", "normal", "ones", "orthogonal",
                 "truncated_normal", "uniform", "variance_scaling", "zeros"]:
        assert getattr(inits, name) is getattr(jax.nn.initializers, name)
    assert inits.zeros(KEY, (2, 3)).shape == (2, 3)


@pytest.mark.parametrize("call,match", [
    (lambda: inits.classic_kernel("prewitt"),
     r"classic_kernel: name must be one of box_blur, edge, emboss, gaussian_blur, identity, "
     r"laplacian, sharpen, sobel_x, sobel_y, got 'prewitt'"),
    (lambda: inits.fixed(np.zeros((3, 3, 1, 1)))(KEY, (3, 3, 2, 1)),
     r"fixed: the requested kernel shape must be the fixed value's shape \(3, 3, 1, 1\), got "
     r"\(3, 3, 2, 1\)\. Set kernel_size and channels to match the fixed kernel"),
    (lambda: jc.conv(1, 5, kernel_init=inits.fixed(inits.classic_kernel("sobel_x"))).init(
        KEY, (8, 8, 1)), r"fixed: the requested kernel shape must be"),
])
def test_error_messages(call, match):
    with pytest.raises(ValueError, match=match):
        call()
