"""Global and adaptive pooling ops (PyTorch's ``AdaptiveAvgPoolNd``/``AdaptiveMaxPoolNd`` bins).

Bins over a product of intervals are reduced one spatial axis at a time (the mean of
per-axis means over a box is the box mean, and likewise for the max), each axis with a
static gather of its bins, or a reshape when the bins tile the axis evenly.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import check_float, spatial_rank
from jaxcnn._window import adaptive_output_size


def global_avg_pool(x):
    """Mean over all spatial axes: ``(N, *spatial, C) -> (N, C)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.global_avg_pool(jnp.ones((2, 5, 5, 3))).shape
      (2, 3)
    """
    n = spatial_rank("global_avg_pool", x, what="x rank")
    check_float("global_avg_pool", "x", x)
    return jnp.mean(x, axis=tuple(range(1, n + 1)))


def global_max_pool(x):
    """Max over all spatial axes: ``(N, *spatial, C) -> (N, C)`` (floating or integer).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.global_max_pool(jnp.arange(8.0).reshape(1, 2, 2, 2))
      Array([[6., 7.]], dtype=float32)
    """
    n = spatial_rank("global_max_pool", x, what="x rank")
    check_float("global_max_pool", "x", x, integers=True)
    return jnp.max(x, axis=tuple(range(1, n + 1)))


def _bins(size, out):
    """PyTorch's bins: ``[floor(i * size / out), ceil((i + 1) * size / out))``."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _pool_axis(x, axis, out, kind):
    size = x.shape[axis]
    if size == out:
        return x
    reduce = jnp.mean if kind == "avg" else jnp.max
    if size % out == 0:
        shape = x.shape[:axis] + (out, size // out) + x.shape[axis + 1:]
        return reduce(x.reshape(shape), axis=axis + 1)
    start, end = _bins(size, out)
    width = int((end - start).max())
    offset = np.arange(width)
    # Pad each bin to the widest by repeating its last element (harmless for the max;
    # weighted out of the mean).
    idx = np.minimum(start[:, None] + offset[None, :], end[:, None] - 1)
    g = jnp.take(x, idx.reshape(-1), axis=axis)
    g = g.reshape(x.shape[:axis] + (out, width) + x.shape[axis + 1:])
    if kind == "max":
        return jnp.max(g, axis=axis + 1)
    w = (offset[None, :] < (end - start)[:, None]) / (end - start)[:, None]
    w = w.reshape((1,) * axis + (out, width) + (1,) * (x.ndim - axis - 1)).astype(x.dtype)
    return jnp.sum(g * w, axis=axis + 1)


def _adaptive(x, output_size, kind, where):
    n = spatial_rank(where, x, what="x rank")
    check_float(where, "x", x, integers=kind == "max")
    sizes = adaptive_output_size(where, output_size, n, x.shape[1:-1])
    for axis, out in enumerate(sizes, start=1):
        x = _pool_axis(x, axis, out, kind)
    return x


def adaptive_avg_pool(x, output_size):
    """Average pooling to a fixed output size, with PyTorch's bins.

    .. math::
       y[n, i, c] = \\operatorname{mean}_{\\lfloor i L / O \\rfloor \\le j
       < \\lceil (i + 1) L / O \\rceil} x[n, j, c]

    per spatial axis, with input size :math:`L` and output size :math:`O`
    (``output_size``).

    Args:
      x: ``(N, *spatial, C)``, floating.
      output_size: an int or one int per spatial axis; ``None`` keeps that axis' size.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.adaptive_avg_pool(jnp.arange(5.0).reshape(1, 5, 1), 3)[0, :, 0]
      Array([0.5, 2. , 3.5], dtype=float32)
    """
    return _adaptive(x, output_size, "avg", "adaptive_avg_pool")


def adaptive_max_pool(x, output_size):
    """Max pooling to a fixed output size, with :func:`adaptive_avg_pool`'s bins.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.adaptive_max_pool(jnp.arange(5.0).reshape(1, 5, 1), 3)[0, :, 0]
      Array([1., 3., 4.], dtype=float32)
    """
    return _adaptive(x, output_size, "max", "adaptive_max_pool")


__all__ = ["global_avg_pool", "global_max_pool", "adaptive_avg_pool", "adaptive_max_pool"]
