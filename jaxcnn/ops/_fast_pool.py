"""Pooling lowerings for non-overlapping windows (``stride == kernel_size``, no dilation).

The input is padded (or its unused tail cut off) to a whole number of windows, reshaped
to ``(N, o_1, k_1, o_2, k_2, ..., C)`` and reduced over the ``k`` axes. Max and min get a
custom JVP whose tangent (so whose gradient) is each window's *first* extreme element in
row-major window order, the element ``lax.reduce_window``'s own gradient
(``select_and_scatter``) picks, so both lowerings give the same numbers, ties included,
in forward and reverse mode. Only differentiated calls use the reshape; an
undifferentiated max or min (inference) runs ``lax.reduce_window``, which is faster
there. On CPU this replaces XLA's ``select_and_scatter``, the slowest part of a LeNet-5
train step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn._window import output_size, pad_spatial


def non_overlapping(window, strides, dilation):
    """True when the windows tile the input: ``stride == kernel_size`` and no dilation."""
    return tuple(window) == tuple(strides) and all(d == 1 for d in dilation)


def _to_blocks(x, window, pads, fill):
    """``x`` padded with ``fill`` (tail cut to whole windows), as ``(N, o1, k1, ..., C)``."""
    spatial = x.shape[1:-1]
    out = [output_size(size, k, k, p, 1) for size, k, p in zip(spatial, window, pads)]
    # Pad exactly to out * k: high padding may be negative (lax.pad crops).
    exact = [(lo, o * k - size - lo) for size, (lo, _), k, o in zip(spatial, pads, window, out)]
    if any(lo or hi for lo, hi in exact):
        x = pad_spatial(x, exact, fill)
    shape = (x.shape[0],) + tuple(d for o, k in zip(out, window) for d in (o, k)) + (x.shape[-1],)
    return x.reshape(shape)


def _window_axes(n):
    return tuple(range(2, 2 * n + 1, 2))


def _lax_extreme(x, window, pads, largest):
    """The same window reduction by ``lax.reduce_window`` (the undifferentiated path)."""
    full = (1,) + tuple(window) + (1,)
    init = np.array(_identity(x.dtype, largest), x.dtype)
    return lax.reduce_window(x, init, lax.max if largest else lax.min, full, full,
                             ((0, 0),) + tuple(pads) + ((0, 0),))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def _extreme(x, window, pads, largest):
    # Not differentiated: reduce_window, faster in inference; max and min are exact, so
    # both lowerings agree bit for bit.
    return _lax_extreme(x, window, pads, largest)


@_extreme.defjvp
def _extreme_jvp(window, pads, largest, primals, tangents):
    """Differentiated: the reshape, and the tangent of each window's first extreme element
    (a select and a sum, linear in the tangent, so reverse mode transposes it to a scatter
    into the windows by reshape instead of XLA's ``select_and_scatter``)."""
    (x,), (t,) = primals, tangents
    xb = _to_blocks(x, window, pads, _identity(x.dtype, largest))
    axes = _window_axes(x.ndim - 2)
    y = jnp.max(xb, axis=axes) if largest else jnp.min(xb, axis=axes)
    # Row-major offset of each element inside its window, broadcastable to xb.
    offset = np.arange(int(np.prod(window)), dtype=np.int32).reshape(window)
    bshape = [1] * xb.ndim
    for a, k in zip(axes, window):
        bshape[a] = k
    offset = offset.reshape(bshape)
    hit = xb == jnp.expand_dims(y, axes)
    big = np.int32(np.iinfo(np.int32).max)
    first = jnp.min(jnp.where(hit, offset, big), axis=axes, keepdims=True)
    tb = _to_blocks(t, window, pads, 0)
    ty = jnp.sum(jnp.where(offset == first, tb, jnp.zeros((), tb.dtype)), axis=axes)
    return y, ty


def lowest(dtype):
    """The identity of max: ``-inf`` for floats, the dtype's minimum for ints."""
    return -np.inf if jnp.issubdtype(dtype, jnp.floating) else np.iinfo(dtype).min


def highest(dtype):
    """The identity of min: ``+inf`` for floats, the dtype's maximum for ints."""
    return np.inf if jnp.issubdtype(dtype, jnp.floating) else np.iinfo(dtype).max


def _identity(dtype, largest):
    return lowest(dtype) if largest else highest(dtype)


def _reshape_extreme(x, window, pads, largest):
    if not jnp.issubdtype(x.dtype, jnp.floating):
        reduce = jnp.max if largest else jnp.min
        return reduce(_to_blocks(x, window, pads, _identity(x.dtype, largest)),
                      axis=_window_axes(x.ndim - 2))
    return _extreme(x, tuple(window), tuple(tuple(p) for p in pads), largest)


def reshape_max(x, window, strides, pads, dilation):
    """Max over non-overlapping windows by reshape; gradient to the first maximum."""
    del strides, dilation
    return _reshape_extreme(x, window, pads, True)


def reshape_min(x, window, strides, pads, dilation):
    """Min over non-overlapping windows by reshape; gradient to the first minimum."""
    del strides, dilation
    return _reshape_extreme(x, window, pads, False)


def reshape_sum(x, window, strides, pads, dilation):
    """Sum over non-overlapping windows by reshape (padding counts as zero)."""
    del strides, dilation
    xb = _to_blocks(x, window, pads, 0)
    return jnp.sum(xb, axis=_window_axes(x.ndim - 2))


__all__ = ["non_overlapping", "reshape_max", "reshape_min", "reshape_sum"]
