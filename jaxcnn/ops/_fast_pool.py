"""Pooling lowerings for non-overlapping windows (``stride == kernel_size``, no dilation).

The input is padded (or its unused tail cut off) to a whole number of windows, reshaped
to ``(N, o_1, k_1, o_2, k_2, ..., C)`` and reduced over the ``k`` axes. Max and min get a
custom JVP whose tangent (so whose gradient) is each window's *first* extreme element in
row-major window order, the element ``lax.reduce_window``'s own gradient
(``select_and_scatter``) picks, so both lowerings give the same numbers, ties included,
in forward and reverse mode. Only differentiated calls use the reshape; an
undifferentiated max or min (inference) runs ``lax.reduce_window``, which is faster
there. On CPU this replaces XLA's ``select_and_scatter``, the slowest part of a LeNet-5
train step. The differentiated passes are the primitives of :mod:`._pool_passes`;
``native_max`` and ``native_min`` lower them to the native FFI handlers.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn.ops import _pool_passes
from jaxcnn.ops._pool_passes import identity, to_blocks, window_axes


def non_overlapping(window, strides, dilation):
    """True when the windows tile the input: ``stride == kernel_size`` and no dilation."""
    return tuple(window) == tuple(strides) and all(d == 1 for d in dilation)


def _lax_extreme(x, window, pads, largest):
    """The same window reduction by ``lax.reduce_window`` (the undifferentiated path)."""
    full = (1,) + tuple(window) + (1,)
    init = np.array(identity(x.dtype, largest), x.dtype)
    return lax.reduce_window(x, init, lax.max if largest else lax.min, full, full,
                             ((0, 0),) + tuple(pads) + ((0, 0),))


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3, 4))
def _extreme(x, window, pads, largest, impl):
    # Not differentiated: reduce_window, faster in inference; max and min are exact, so
    # every lowering agrees bit for bit.
    del impl
    return _lax_extreme(x, window, pads, largest)


@_extreme.defjvp
def _extreme_jvp(window, pads, largest, impl, primals, tangents):
    """Differentiated: each window's extreme and the offset of its first extreme element
    (``_pool_passes.arg_extreme``), and the tangent of that element (a select, linear in the
    tangent, so reverse mode transposes it to a scatter into the windows instead of XLA's
    ``select_and_scatter``)."""
    (x,), (t,) = primals, tangents
    y, offsets = _pool_passes.arg_extreme(x, window, pads, largest, impl)
    return y, _pool_passes.window_select(t, offsets, window, pads, impl)


def _window_extreme(x, window, pads, largest, impl):
    if not jnp.issubdtype(x.dtype, jnp.floating):
        reduce = jnp.max if largest else jnp.min
        return reduce(to_blocks(x, window, pads, identity(x.dtype, largest)),
                      axis=window_axes(x.ndim - 2))
    return _extreme(x, tuple(window), tuple(tuple(p) for p in pads), largest, impl)


def _window_lowering(largest, impl, doc):
    def lowering(x, window, strides, pads, dilation):
        del strides, dilation
        return _window_extreme(x, window, pads, largest, impl)

    lowering.__doc__ = doc
    return lowering


reshape_max = _window_lowering(
    True, "reshape", "Max over non-overlapping windows by reshape; gradient to the first maximum.")
reshape_min = _window_lowering(
    False, "reshape", "Min over non-overlapping windows by reshape; gradient to the first minimum.")
native_max = _window_lowering(
    True, "native", ":func:`reshape_max` with its training passes on the native FFI handlers.")
native_min = _window_lowering(
    False, "native", ":func:`reshape_min` with its training passes on the native FFI handlers.")


def reshape_sum(x, window, strides, pads, dilation):
    """Sum over non-overlapping windows by reshape (padding counts as zero)."""
    del strides, dilation
    xb = to_blocks(x, window, pads, 0)
    return jnp.sum(xb, axis=window_axes(x.ndim - 2))


__all__ = ["native_max", "native_min", "non_overlapping", "reshape_max", "reshape_min",
           "reshape_sum"]
