"""Padding arguments (PyTorch numbers, lax strings) and the ``pad``/``crop`` ops."""

from __future__ import annotations

import numbers
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn._checks import fail, is_int, spatial_rank

PADDING_STRINGS = ("SAME", "VALID", "CAUSAL")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NUMPY_MODE = {"zeros": "constant", "constant": "constant", "reflect": "reflect",
               "replicate": "edge", "circular": "wrap"}


def normalize_padding(padding, n: int, where: str, strings=PADDING_STRINGS):
    """Returns an upper-case string from ``strings`` or ``n`` ``(low, high)`` int pairs.

    Accepted: an int, ``n`` ints, ``n`` ``(low, high)`` pairs, or a string.
    """
    if isinstance(padding, str):
        if padding.upper() not in strings:
            fail(where, "padding", "an int, a tuple, (low, high) pairs"
                 + (" or one of " + ", ".join(repr(s) for s in strings) if strings else ""),
                 padding)
        return padding.upper()
    if is_int(padding):
        pairs = ((int(padding), int(padding)),) * n
    elif isinstance(padding, Sequence) and len(padding) == n:
        pairs = []
        for p in padding:
            if is_int(p):
                pairs.append((int(p), int(p)))
            elif (isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2
                  and all(is_int(q) for q in p)):
                pairs.append((int(p[0]), int(p[1])))
            else:
                fail(where, "padding", f"{n} ints or {n} (low, high) pairs", padding, exc=TypeError)
        pairs = tuple(pairs)
    else:
        fail(where, "padding", f"an int, {n} ints, {n} (low, high) pairs"
             + (" or a string" if strings else ""), padding,
             exc=TypeError if not isinstance(padding, Sequence) else ValueError)
    if any(v < 0 for pair in pairs for v in pair):
        fail(where, "padding", "non-negative", padding)
    return pairs


def resolve_padding(padding, spatial: Sequence[int], kernel_size, stride, dilation):
    """Explicit ``(low, high)`` pairs for a normalised padding and static sizes."""
    if not isinstance(padding, str):
        return tuple(padding)
    eff = [d * (k - 1) + 1 for k, d in zip(kernel_size, dilation)]
    if padding == "CAUSAL":
        return tuple((e - 1, 0) for e in eff)
    return tuple(lax.padtype_to_pads(tuple(spatial), eff, tuple(stride), padding))


def check_window_fits(where: str, spatial, pads, kernel_size, dilation, what="kernel"):
    for i, (size, (lo, hi), k, d) in enumerate(zip(spatial, pads, kernel_size, dilation)):
        eff = d * (k - 1) + 1
        if size + lo + hi < eff:
            fail(where, f"padded input size along spatial axis {i}", f">= the dilated {what} size {eff}",
                 size + lo + hi, "The input is too small for this window: pad it or use a smaller window")


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
    n = spatial_rank(x, "pad")
    if mode not in _NUMPY_MODE:
        fail("pad", "mode", "one of 'zeros', 'constant', 'reflect', 'replicate', 'circular'", mode)
    pairs = normalize_padding(padding, n, "pad", strings=())
    if not ((isinstance(value, numbers.Real) and not isinstance(value, bool))
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
    n = spatial_rank(x, "crop")
    pairs = normalize_padding(cropping, n, "crop", strings=())
    index = [slice(None)]
    for i, (size, (lo, hi)) in enumerate(zip(x.shape[1:-1], pairs)):
        if lo + hi >= size:
            fail("crop", f"cropping along spatial axis {i}", f"less than the size {size} in total",
                 (lo, hi))
        index.append(slice(lo, size - hi))
    return x[tuple(index) + (slice(None),)]


__all__ = ["pad", "crop"]
