"""Resizing ops with PyTorch's semantics: ``upsample`` (``F.interpolate``) and
``pixel_shuffle``/``pixel_unshuffle``, on channels-last inputs of any spatial rank.

``upsample`` is separable: along each spatial axis, every output index reads 1, 2 or
4 input indices with fixed weights. Indices and weights depend on static sizes only,
so they are computed once in numpy at trace time (with PyTorch's float32 arithmetic
where a floor depends on it) and the op is a few gathers and multiply-adds.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import check_resize_args, fail, spatial_rank, to_tuple

_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) bicubic constant


def _per_axis(where, what, value, n):
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            fail(where, what, f"a single value or {n} values (one per spatial axis)", value)
        return tuple(value)
    return (value,) * n


def _target_sizes(where, in_sizes, size, scale_factor):
    """Output sizes and the scale factor passed to the kernels (``None`` when ``size``)."""
    n = len(in_sizes)
    if size is not None:
        return to_tuple(where, "size", size, n), (None,) * n
    scales = tuple(float(s) for s in _per_axis(where, "scale_factor", scale_factor, n))
    out = tuple(math.floor(float(i) * s) for i, s in zip(in_sizes, scales))
    if any(o < 1 for o in out):
        fail(where, "output size (floor(input size * scale_factor))", "positive", out,
             f"The input's spatial sizes {tuple(in_sizes)} are too small for this scale_factor")
    return out, scales


def _ratio(in_size, out_size, align_corners, scale):
    """PyTorch's ``area_pixel_compute_scale``: input step per output step."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else in_size / out_size


def _nearest(in_size, out_size, scale):
    """PyTorch's legacy ``nearest_idx`` (float32 arithmetic, as its CPU kernel)."""
    dst = np.arange(out_size)
    s = (np.float32(1.0 / scale) if scale is not None and scale > 0
         else np.float32(in_size) / np.float32(out_size))
    idx = np.floor(dst.astype(np.float32) * s).astype(np.int64)
    return np.minimum(idx, in_size - 1)[:, None], None


def _source(in_size, out_size, align_corners, scale, cubic):
    """Fractional source coordinates and their integer floor, clamped as PyTorch does."""
    dst = np.arange(out_size, dtype=np.float64)
    ratio = _ratio(in_size, out_size, align_corners, scale)
    real = ratio * dst if align_corners else ratio * (dst + 0.5) - 0.5
    if not cubic:
        real = np.maximum(real, 0.0)
    idx = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    return idx, np.clip(real - idx, 0.0, 1.0)


def _linear(in_size, out_size, align_corners, scale):
    if out_size == in_size:
        return np.arange(out_size)[:, None], None
    i0, t = _source(in_size, out_size, align_corners, scale, cubic=False)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return np.stack([i0, i1], 1), np.stack([1.0 - t, t], 1)


def _cubic_weights(t):
    a = _CUBIC_A

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], 1)


def _cubic(in_size, out_size, align_corners, scale):
    i, t = _source(in_size, out_size, align_corners, scale, cubic=True)
    idx = np.clip(i[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
    return idx, _cubic_weights(t)


def _interp_axis(x, axis, idx, w):
    """``y[..., o, ...] = sum_t w[o, t] * x[..., idx[o, t], ...]`` along ``axis``."""
    in_size, out_size = x.shape[axis], idx.shape[0]
    if w is None:
        col = idx[:, 0]
        if np.array_equal(col, np.arange(in_size)):
            return x
        k = out_size // in_size
        if out_size % in_size == 0 and np.array_equal(col, np.arange(out_size) // k):
            return jnp.repeat(x, k, axis=axis)  # a broadcast, no gather
        return jnp.take(x, col, axis=axis, mode="clip")
    bshape = [1] * x.ndim
    bshape[axis] = out_size
    y = None
    for t in range(idx.shape[1]):
        term = jnp.take(x, idx[:, t], axis=axis, mode="clip") * jnp.asarray(
            w[:, t], dtype=x.dtype).reshape(bshape)
        y = term if y is None else y + term
    return y


def upsample(x, size=None, scale_factor=None, mode="nearest", align_corners=False):
    """Resizes the spatial axes as PyTorch's ``F.interpolate`` (without antialiasing).

    Along each axis, output index :math:`o` reads the source coordinate

    .. math::
       s(o) = \\begin{cases} o \\cdot \\frac{in - 1}{out - 1} & \\text{align\\_corners} \\\\
       \\max\\left(0, (o + \\tfrac12)\\, r - \\tfrac12\\right) & \\text{otherwise (linear)}
       \\end{cases}

    where :math:`r` is ``1 / scale_factor`` when ``scale_factor`` is given and
    :math:`in / out` when ``size`` is (PyTorch's default ``recompute_scale_factor=None``;
    for ``cubic`` :math:`s` is not clamped at 0). ``"nearest"`` takes
    :math:`x[\\min(\\lfloor o\\, r \\rfloor, in - 1)]` (PyTorch's legacy ``"nearest"``,
    not ``"nearest-exact"``), ``"linear"`` interpolates between the two neighbours of
    :math:`s` (bilinear in 2-d, trilinear in 3-d), ``"cubic"`` uses the four
    neighbours with Keys' cubic kernel, :math:`A = -0.75`, indices clamped at the
    border (PyTorch's ``bicubic``, applied along every axis).

    One PyTorch quirk is not copied: its CPU kernel for 2-d ``"nearest"`` turns an
    output size equal to the input size (or twice it) into a copy (or ``o // 2``) even
    when a ``scale_factor`` such as 1.2 (or 2.1) gives another rounding by the formula;
    its 1-d and 3-d kernels follow the formula, and so does jaxcnn.

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial axes.
      size: output spatial sizes: an int or one per axis.
      scale_factor: a number or one per axis; the output size is
        ``floor(in * scale_factor)``. Exactly one of ``size`` and ``scale_factor``.
      mode: ``"nearest"``, ``"linear"`` or ``"cubic"``.
      align_corners: for ``"linear"``/``"cubic"``: map the corner pixels' centres onto
        each other (and ignore ``scale_factor`` in the coordinates, as PyTorch).

    Returns:
      ``(N, *out_spatial, C)`` in ``x.dtype`` (computed in float32 for 16-bit floats).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> x = jnp.array([1.0, 2.0]).reshape(1, 2, 1)
      >>> ops.upsample(x, scale_factor=2, mode="linear")[0, :, 0]
      Array([1.  , 1.25, 1.75, 2.  ], dtype=float32)
      >>> ops.upsample(x, size=3)[0, :, 0]
      Array([1., 1., 2.], dtype=float32)
    """
    where = "upsample"
    spatial_rank(where, x, what="x rank")
    check_resize_args(where, size, scale_factor, mode, align_corners)
    if mode != "nearest" and not jnp.issubdtype(x.dtype, jnp.floating):
        fail(where, "x dtype", f"a floating dtype for mode={mode!r}", str(x.dtype),
             "Cast it first, e.g. x.astype(jnp.float32), or use mode='nearest'", exc=TypeError)
    out_sizes, scales = _target_sizes(where, x.shape[1:-1], size, scale_factor)
    dtype = x.dtype
    if mode != "nearest" and jnp.finfo(dtype).bits < 32:
        x = x.astype(jnp.float32)
    for i, (in_size, out_size, scale) in enumerate(zip(x.shape[1:-1], out_sizes, scales)):
        if mode == "nearest":
            idx, w = _nearest(in_size, out_size, scale)
        elif mode == "linear":
            idx, w = _linear(in_size, out_size, align_corners, scale)
        else:
            idx, w = _cubic(in_size, out_size, align_corners, scale)
        x = _interp_axis(x, i + 1, idx, w)
    return x.astype(dtype)


def _check_factor(where, x, factor, what):
    n = spatial_rank(where, x, what="x rank")
    return n, to_tuple(where, what, factor, n)


def pixel_shuffle(x, upscale_factor):
    """Moves channels into space (sub-pixel convolution, Shi et al. 2016), as PyTorch.

    ``(N, *S, C * r^n) -> (N, *(S * r), C)``. Input channel
    ``c * r^n + k`` goes to output channel ``c`` at sub-position ``k`` (row-major over
    the ``n`` axes): in 2-d, channel ``c * r * r + i * r + j`` becomes
    ``y[:, h * r + i, w * r + j, c]``, which is PyTorch's ordering moved to channels-last.

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial axes; ``C`` divisible by the
        product of the factors.
      upscale_factor: an int ``r``, or one int per spatial axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.pixel_shuffle(jnp.arange(4.0).reshape(1, 1, 1, 4), 2)[0, :, :, 0]
      Array([[0., 1.],
             [2., 3.]], dtype=float32)
    """
    where = "pixel_shuffle"
    n, r = _check_factor(where, x, upscale_factor, "upscale_factor")
    c_in, spatial = x.shape[-1], x.shape[1:-1]
    if c_in % math.prod(r):
        fail(where, "number of channels (x.shape[-1])",
             f"divisible by the product of upscale_factor {math.prod(r)}", c_in)
    c = c_in // math.prod(r)
    y = x.reshape((x.shape[0],) + spatial + (c,) + r)
    perm = (0,) + sum(((1 + i, 2 + n + i) for i in range(n)), ()) + (1 + n,)
    big = tuple(s * f for s, f in zip(spatial, r))
    return y.transpose(perm).reshape((x.shape[0],) + big + (c,))


def pixel_unshuffle(x, downscale_factor):
    """The inverse of :func:`pixel_shuffle`: ``(N, *(S * r), C) -> (N, *S, C * r^n)``,
    with PyTorch's channel ordering (output channel ``c * r^n + k`` holds input channel
    ``c`` at sub-position ``k``).

    Args:
      x: ``(N, *spatial, C)``; each spatial size divisible by its factor.
      downscale_factor: an int ``r``, or one int per spatial axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.pixel_unshuffle(jnp.arange(4.0).reshape(1, 2, 2, 1), 2)[0, 0, 0]
      Array([0., 1., 2., 3.], dtype=float32)
    """
    where = "pixel_unshuffle"
    n, r = _check_factor(where, x, downscale_factor, "downscale_factor")
    spatial, c = x.shape[1:-1], x.shape[-1]
    if any(s % f for s, f in zip(spatial, r)):
        fail(where, "spatial sizes (x.shape[1:-1])", f"divisible by downscale_factor {r}",
             tuple(spatial))
    small = tuple(s // f for s, f in zip(spatial, r))
    y = x.reshape((x.shape[0],) + sum(((s, f) for s, f in zip(small, r)), ()) + (c,))
    perm = (0,) + tuple(1 + 2 * i for i in range(n)) + (1 + 2 * n,) + tuple(
        2 + 2 * i for i in range(n))
    return y.transpose(perm).reshape((x.shape[0],) + small + (c * math.prod(r),))


__all__ = ["upsample", "pixel_shuffle", "pixel_unshuffle"]
