"""The ``pad`` and ``crop`` ops (padding arguments are read by :mod:`jaxcnn._window`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import check_choice, fail, is_real, spatial_rank
from jaxcnn._window import PAD_MODES, normalize_padding

_NUMPY_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect",
               "replicate": "edge", "circular": "wrap"}


def pad(x, padding, mode: str = "zeros", value=0.0):
    """Pads the spatial axes of a channels-last batch ``(N, *spatial, C)``.

    Args:
      x: array of rank 3, 4 or 5.
      padding: an int, one int per spatial axis, or one ``(low, high)`` pair per axis.
      mode: ``"zeros"`` (or ``"constant"`` with ``value``), ``"reflect"`` (mirror without
        repeating the edge, as PyTorch), ``"replicate"`` (repeat the edge) or ``"circular"``.
      value: fill value for ``"constant"``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.pad(jnp.arange(3.0).reshape(1, 3, 1), 2, "reflect")[0, :, 0]
      Array([2., 1., 0., 1., 2., 1., 0.], dtype=float32)
    """
    n = spatial_rank("pad", x)
    check_choice("pad", "mode", mode, PAD_MODES)
    pairs = normalize_padding("pad", padding, n, strings=())
    if not (is_real(value)
            or (isinstance(value, (jax.Array, np.ndarray)) and jnp.ndim(value) == 0)):
        fail("pad", "value", "a real number (or a 0-d array)", value, exc=TypeError)
    return _pad_pairs(x, pairs, mode, value, "pad")


def _pad_pairs(x, pairs, mode, value=0.0, where="pad"):
    spatial = x.shape[1:-1]
    if mode == "reflect":
        for i, (size, (lo, hi)) in enumerate(zip(spatial, pairs)):
            if max(lo, hi) >= size:
                fail(where, f"reflect padding along spatial axis {i}",
                     f"smaller than the input size {size}", (lo, hi))
    if mode == "circular":
        for i, (size, (lo, hi)) in enumerate(zip(spatial, pairs)):
            if max(lo, hi) > size:
                fail(where, f"circular padding along spatial axis {i}",
                     f"at most the input size {size}", (lo, hi))
    if all(lo == 0 and hi == 0 for lo, hi in pairs):
        return x
    widths = ((0, 0),) + tuple(pairs) + ((0, 0),)
    np_mode = _NUMPY_MODE[mode]
    if np_mode == "constant":
        return jnp.pad(x, widths, mode="constant", constant_values=jnp.asarray(value, x.dtype))
    return jnp.pad(x, widths, mode=np_mode)


def crop(x, cropping):
    """Removes ``cropping`` elements from the spatial axes (the inverse of ``pad``).

    ``cropping`` is an int, one int per spatial axis, or one ``(low, high)`` pair per axis.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.crop(jnp.zeros((2, 8, 8, 3)), ((1, 2), 0)).shape
      (2, 5, 8, 3)
    """
    n = spatial_rank("crop", x)
    pairs = normalize_padding("crop", cropping, n, strings=(), what="cropping")
    index = [slice(None)]
    for i, (size, (lo, hi)) in enumerate(zip(x.shape[1:-1], pairs)):
        if lo + hi >= size:
            fail("crop", f"cropping along spatial axis {i}", f"less than the size {size} in total",
                 (lo, hi))
        index.append(slice(lo, size - hi))
    return x[tuple(index) + (slice(None),)]


__all__ = ["pad", "crop"]
