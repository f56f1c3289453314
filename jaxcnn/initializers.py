"""Initialisers: ``jax.nn.initializers`` re-exported with documented defaults, plus
classic fixed kernels (Sobel, Laplacian, blur, sharpen, ...) as constants and initialisers.

Defaults in jaxcnn: convolution and dense kernels use :func:`he_normal` (fan-in,
variance ``2 / fan_in``, He et al. 2015: right for ReLU networks); biases are zeros; norm
scales ones. For a kernel ``(*kernel_size, C_in // groups, C_out)`` the fan-in is
``prod(kernel_size) * C_in // groups`` (``jax.nn.initializers`` reads the last two axes as
in/out and the rest as the receptive field).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.nn.initializers import (constant, glorot_normal, glorot_uniform, he_normal, he_uniform,
                                 lecun_normal, lecun_uniform, normal, ones, orthogonal,
                                 truncated_normal, uniform, variance_scaling, zeros)

from jaxcnn._checks import fail


def torch_default():
    """PyTorch's default conv/linear weight init, ``kaiming_uniform(a=sqrt(5))``:
    uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``."""
    return variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _gaussian(size: int = 5, sigma: float = 1.0):
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return g / g.sum()


KERNELS = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float32),
    "edge": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32),
    "box_blur": np.full((3, 3), 1 / 9, np.float32),
    "gaussian_blur": _gaussian(5, 1.0).astype(np.float32),
    "sobel_x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32),
    "sobel_y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], np.float32),
    "laplacian": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32),
    "emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32),
}


def classic_kernel(name: str, channels: int = 1):
    """A classic 2-d image kernel as an ``HWIO`` array applied to each channel alone.

    ``name`` is one of ``KERNELS``. The result ``(kh, kw, 1, channels)`` is a depthwise
    kernel: use it with ``ops.conv(x, k, groups=channels)``.

    Example:
      >>> from jaxcnn.initializers import classic_kernel
      >>> classic_kernel("sobel_x").shape
      (3, 3, 1, 1)
    """
    if name not in KERNELS:
        fail("classic_kernel", "name", "one of " + ", ".join(sorted(KERNELS)), name)
    k = KERNELS[name]
    return jnp.asarray(np.tile(k[:, :, None, None], (1, 1, 1, channels)))


def fixed(value):
    """An initialiser that returns ``value`` (checked against the requested shape)."""
    value = jnp.asarray(value)

    def init(key, shape, dtype=jnp.float32):
        del key
        if tuple(shape) != value.shape:
            fail("fixed", "the requested kernel shape", f"the fixed value's shape {value.shape}",
                 tuple(shape), "Set kernel_size and channels to match the fixed kernel")
        return value.astype(dtype)

    return init


__all__ = ["constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
           "lecun_normal", "lecun_uniform", "normal", "ones", "orthogonal", "truncated_normal",
           "uniform", "variance_scaling", "zeros", "torch_default", "KERNELS", "classic_kernel",
           "fixed"]
