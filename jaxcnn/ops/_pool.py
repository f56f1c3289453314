"""Window pooling ops on ``lax.reduce_window`` with PyTorch's argument semantics.

Inputs are channels-last ``(N, *spatial, C)``; the spatial rank (1, 2 or 3) comes from
``x``. Each op checks and resolves its arguments into explicit ``(low, high)`` pads
(``ceil_mode`` becomes extra high padding), then reduces the windows with
:func:`_reduce_pool`: ``lax.reduce_window``, or a lowering the rule table of
``_lowering.py`` picks.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn._checks import (check_bool, check_float, check_norm_type, fail, is_int, spatial_rank,
                            to_tuple)
from jaxcnn._window import (output_size, output_sizes, pad_spatial, resolve_padding,
                            transpose_output_size, window_args, window_slices)
from jaxcnn.ops._pool_passes import highest, lowest
from jaxcnn.ops._lowering import pool_lowering


# ----------------------------------------------------------------------------- lowerings


def _full(t, fill):
    return (fill,) + tuple(t) + (fill,)


def _reduce(x, init, op, window, strides, pads, dilation):
    return lax.reduce_window(x, np.array(init, x.dtype), op, _full(window, 1), _full(strides, 1),
                             ((0, 0),) + tuple(pads) + ((0, 0),),
                             window_dilation=_full(dilation, 1))


def _reduce_sliced(x, init, op, window, strides, pads, dilation):
    """The same reduction, one axis at a time over ``k`` strided slices: ``reduce_window``'s
    max/min have no VJP with window dilation, slices do (ties share the gradient)."""
    x = pad_spatial(x, pads, init)
    for axis, (k, s, d) in enumerate(zip(window, strides, dilation), start=1):
        o = output_size(x.shape[axis], k, s, (0, 0), d)
        parts = [p for _, p in window_slices(x, (k,), (s,), (d,), (o,), first_axis=axis)]
        x = functools.reduce(op, parts)
    return x


_REDUCTIONS = {"max": (lowest, lax.max), "min": (highest, lax.min),
               "sum": (lambda dtype: 0, lax.add)}


def _reduce_pool(kind, x, window, strides, pads, dilation):
    """The window reduction ``kind`` (a key of :data:`_REDUCTIONS`), padding counting as its
    identity (``-inf`` or the dtype's minimum for max, ``+inf`` or its maximum for min,
    zero for sum), by the lowering the rule table picks for it, else ``lax``."""
    fast = pool_lowering(kind, x.shape, window, strides, pads, dilation, x.dtype)
    if fast is not None:
        return fast(x, window, strides, pads, dilation)
    identity, op = _REDUCTIONS[kind]
    reduce = _reduce_sliced if kind != "sum" and max(dilation) > 1 else _reduce
    return reduce(x, identity(x.dtype), op, window, strides, pads, dilation)


def _argmax_pair(a, b):
    """PyTorch's choice within a window: the largest value, its first occurrence (smallest
    flat index); NaN beats everything and the last NaN wins. A total order, so associative."""
    va, ia = a
    vb, ib = b
    a_nan, b_nan = va != va, vb != vb
    pick_a = ((va > vb) | (a_nan & ~b_nan) | ((va == vb) & (ia < ib))
              | (a_nan & b_nan & (ia > ib)))
    return lax.select(pick_a, va, vb), lax.select(pick_a, ia, ib)


def _reduce_argmax(x, window, strides, pads, dilation):
    """Flat indices (into the unpadded spatial axes) of each window's maximum, int32."""
    spatial = x.shape[1:-1]
    flat = np.arange(math.prod(spatial), dtype=np.int32).reshape((1,) + spatial + (1,))
    index = jnp.broadcast_to(flat, x.shape)
    init = (np.array(lowest(x.dtype), x.dtype), np.array(np.iinfo(np.int32).max, np.int32))
    _, idx = lax.reduce_window((lax.stop_gradient(x), index), init, _argmax_pair,
                               _full(window, 1), _full(strides, 1),
                               ((0, 0),) + tuple(pads) + ((0, 0),),
                               window_dilation=_full(dilation, 1))
    return idx


# ----------------------------------------------------------------------------- arguments


def resolve(where, x, ks, st, pad, dl, ceil_mode):
    """Explicit pads (with ``ceil_mode``'s extra high padding) and the output sizes."""
    spatial = x.shape[1:-1]
    pads = resolve_padding(pad, spatial, ks, st, dl)
    out = output_sizes(spatial, ks, st, pads, dl, ceil_mode)
    full = []
    for i, (size, (lo, hi), k, s, d, o) in enumerate(zip(spatial, pads, ks, st, dl, out)):
        eff = d * (k - 1) + 1
        if o < 1:
            need = f"the dilated kernel size {eff}" + (f" minus stride - 1 ({eff - s + 1})"
                                                      if ceil_mode else "")
            fail(where, f"padded input size along spatial axis {i}", f">= {need}",
                 size + lo + hi, "The input is too small for this window: pad it or use a "
                 "smaller window")
        full.append((lo, hi + max(0, (o - 1) * s + eff - (size + lo + hi))))
    return tuple(full), tuple(pads), out


def _avg_divisor(spatial, pads, ks, st, out, count_include_pad):
    """PyTorch's divisor per output position: the window's part inside the explicitly padded
    input (``count_include_pad``) or inside the input; ``ceil_mode``'s region never counts."""
    counts = []
    for size, (lo, hi), k, s, o in zip(spatial, pads, ks, st, out):
        start = np.arange(o) * s - lo
        if count_include_pad:
            c = np.minimum(start + k, size + hi) - start
        else:
            c = np.minimum(start + k, size) - np.maximum(start, 0)
        counts.append(c)
    div = counts[0]
    for c in counts[1:]:
        div = np.multiply.outer(div, c)
    return div.reshape((1,) + tuple(out) + (1,))


# ----------------------------------------------------------------------------- ops


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False):
    """N-d max pooling with PyTorch's ``MaxPoolNd`` semantics.

    .. math::
       y[n, o, c] = \\max_{k} x_{pad}[n, s \\cdot o + d \\cdot k, c]

    with stride :math:`s` (``stride``), dilation :math:`d` (``dilation``) and the window
    offset :math:`k < ` ``kernel_size``; padding counts as :math:`-\\infty`.

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial axes, floating or integer.
      kernel_size, dilation: an int or one int per spatial axis.
      stride: as ``kernel_size``; ``None`` (default) means ``kernel_size``.
      padding: an int, one int per axis or ``(low, high)`` pairs, each at most half the
        kernel size; or ``"SAME"``/``"VALID"`` as in ``lax``.
      ceil_mode: round the output size up (as PyTorch: the last window must start inside
        the input or the low padding).
      return_indices: also return, per output, the flat index of its maximum in the
        unpadded spatial axes of its ``(n, c)`` slice (int32), for :func:`max_unpool`.

    Returns:
      ``(N, *out, C)`` with ``out = floor((in + lo + hi - d * (k - 1) - 1) / s) + 1``
      (``ceil`` in ``ceil_mode``), and the indices when ``return_indices``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
      >>> ops.max_pool(x, 2)[0, :, :, 0]
      Array([[ 5.,  7.],
             [13., 15.]], dtype=float32)
    """
    where = "max_pool"
    n = spatial_rank(where, x, what="x rank")
    check_float(where, "x", x, integers=True)
    ceil_mode = check_bool(where, "ceil_mode", ceil_mode)
    return_indices = check_bool(where, "return_indices", return_indices)
    ks, st, pad, dl = window_args(where, n, kernel_size, stride, padding, dilation)
    pads, _, _ = resolve(where, x, ks, st, pad, dl, ceil_mode)
    y = _reduce_pool("max", x, ks, st, pads, dl)
    if return_indices:
        return y, _reduce_argmax(x, ks, st, pads, dl)
    return y


def min_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d min pooling, the mirror of :func:`max_pool` (padding counts as :math:`+\\infty`).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.min_pool(jnp.arange(6.0).reshape(1, 6, 1), 3)[0, :, 0]
      Array([0., 3.], dtype=float32)
    """
    where = "min_pool"
    n = spatial_rank(where, x, what="x rank")
    check_float(where, "x", x, integers=True)
    ceil_mode = check_bool(where, "ceil_mode", ceil_mode)
    ks, st, pad, dl = window_args(where, n, kernel_size, stride, padding, dilation)
    pads, _, _ = resolve(where, x, ks, st, pad, dl, ceil_mode)
    return _reduce_pool("min", x, ks, st, pads, dl)


def sum_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d sum pooling: :func:`max_pool`'s windows, summed (padding counts as zero).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.sum_pool(jnp.ones((1, 4, 4, 1)), 2, padding=1)[0, :, :, 0]
      Array([[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]], dtype=float32)
    """
    where = "sum_pool"
    n = spatial_rank(where, x, what="x rank")
    check_float(where, "x", x)
    ceil_mode = check_bool(where, "ceil_mode", ceil_mode)
    ks, st, pad, dl = window_args(where, n, kernel_size, stride, padding, dilation)
    pads, _, _ = resolve(where, x, ks, st, pad, dl, ceil_mode)
    return _reduce_pool("sum", x, ks, st, pads, dl)


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
    """N-d average pooling with PyTorch's ``AvgPoolNd`` semantics.

    .. math::
       y[n, o, c] = \\frac{1}{|W_o|} \\sum_{k} x_{pad}[n, s \\cdot o + k, c]

    with stride :math:`s` and the divisor :math:`|W_o|`: ``divisor_override`` if given;
    else the number of window positions inside the (explicitly) padded input when
    ``count_include_pad``, or inside the input otherwise. Positions that only
    ``ceil_mode`` adds are never counted, as in PyTorch.

    Args:
      x: ``(N, *spatial, C)``, floating.
      kernel_size, stride, padding, ceil_mode: as in :func:`max_pool` (no dilation).
      count_include_pad: count the zero padding in the divisor.
      divisor_override: a positive int used as the divisor of every window.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> x = jnp.arange(1.0, 6.0).reshape(1, 5, 1)
      >>> ops.avg_pool(x, 3, 2, padding=1, count_include_pad=False)[0, :, 0]
      Array([1.5, 3. , 4.5], dtype=float32)
    """
    where = "avg_pool"
    n = spatial_rank(where, x, what="x rank")
    check_float(where, "x", x)
    ceil_mode = check_bool(where, "ceil_mode", ceil_mode)
    count_include_pad = check_bool(where, "count_include_pad", count_include_pad)
    if divisor_override is not None and (not is_int(divisor_override) or divisor_override < 1):
        fail(where, "divisor_override", "None or a positive int", divisor_override)
    ks, st, pad, dl = window_args(where, n, kernel_size, stride, padding)
    pads, explicit, out = resolve(where, x, ks, st, pad, dl, ceil_mode)
    total = _reduce_pool("sum", x, ks, st, pads, dl)
    if divisor_override is not None:
        return total / np.array(divisor_override, x.dtype)
    div = _avg_divisor(x.shape[1:-1], explicit, ks, st, out, count_include_pad)
    return total / div.astype(x.dtype)


def lp_pool(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """N-d power-average pooling with PyTorch's ``LPPoolNd`` semantics (no padding).

    .. math::
       y[n, o, c] = \\Big(\\sum_{k} x[n, s \\cdot o + k, c]^p\\Big)^{1/p}

    with :math:`p` = ``norm_type``. As in PyTorch, a window cut short by ``ceil_mode``
    gets its mean scaled by the full kernel volume.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.lp_pool(jnp.array([3.0, 4.0]).reshape(1, 2, 1), 2, 2)[0, 0, 0]
      Array(5., dtype=float32)
    """
    where = "lp_pool"
    check_norm_type(where, norm_type)
    n = spatial_rank(where, x, what="x rank")
    check_float(where, "x", x)
    ceil_mode = check_bool(where, "ceil_mode", ceil_mode)
    ks, st, pad, dl = window_args(where, n, kernel_size, stride, 0)
    pads, explicit, out = resolve(where, x, ks, st, pad, dl, ceil_mode)
    p = float(norm_type)
    total = _reduce_pool("sum", x ** p, ks, st, pads, dl)
    if ceil_mode:
        div = _avg_divisor(x.shape[1:-1], explicit, ks, st, out, True)
        total = total * (math.prod(ks) / div).astype(x.dtype)
    return total ** (1.0 / p)


def max_unpool(x, indices, kernel_size=None, stride=None, padding=0, output_size=None):
    """Partial inverse of :func:`max_pool` (PyTorch's ``MaxUnpoolNd``): zeros everywhere but
    at ``indices``, which receive the values of ``x``.

    Args:
      x: pooled values ``(N, *spatial, C)``.
      indices: the same shape, integer: flat indices into the output's spatial axes per
        ``(n, c)``, as :func:`max_pool` returns with ``return_indices=True``. Indices
        outside the output (negative ones too) are dropped.
      kernel_size, stride, padding: of the pooling being inverted; they give the output
        size ``(in - 1) * stride - 2 * padding + kernel_size`` (stride ``None`` means
        ``kernel_size``).
      output_size: the spatial output size (``n`` ints, or a full ``(N, *spatial, C)``
        shape), e.g. the pooled input's, to undo the rounding of a pooling. Needed when
        ``kernel_size`` is not given; otherwise it must be within ``stride`` of the default.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> x = jnp.array([1.0, 3.0, 2.0, 0.0]).reshape(1, 4, 1)
      >>> y, idx = ops.max_pool(x, 2, return_indices=True)
      >>> ops.max_unpool(y, idx, 2)[0, :, 0]
      Array([0., 3., 2., 0.], dtype=float32)
    """
    where = "max_unpool"
    n = spatial_rank(where, x, what="x rank")
    if jnp.shape(indices) != jnp.shape(x):
        fail(where, "indices shape", f"x's shape {jnp.shape(x)}", jnp.shape(indices))
    if not jnp.issubdtype(jnp.result_type(indices), jnp.integer):
        fail(where, "indices dtype", "an integer dtype", str(jnp.result_type(indices)),
             exc=TypeError)
    default = None
    if kernel_size is not None:
        ks, st, pad, _ = window_args(where, n, kernel_size, stride, padding, strings=())
        default = tuple(transpose_output_size(i, k, s, p, 1)
                        for i, k, s, p in zip(x.shape[1:-1], ks, st, pad))
    if output_size is None:
        if default is None:
            fail(where, "kernel_size or output_size", "given", None,
                 "Pass the pooling's kernel_size (and stride, padding) or the output size")
        size = default
    else:
        if isinstance(output_size, (tuple, list)) and len(output_size) == n + 2:
            output_size = tuple(output_size)[1:-1]
        size = to_tuple(where, "output_size", output_size, n)
        if default is not None:
            for i, (o, dflt, s) in enumerate(zip(size, default, st)):
                if not dflt - s < o < dflt + s:
                    fail(where, f"output_size along spatial axis {i}",
                         f"strictly between {dflt - s} and {dflt + s} for this pooling", o)
    if any(o < 1 for o in size):
        fail(where, "output size", "positive along every spatial axis", size)
    batch, channels = x.shape[0], x.shape[-1]
    flat_x = x.reshape(batch, -1, channels)
    flat_i = indices.reshape(batch, -1, channels)
    b = np.arange(batch).reshape(batch, 1, 1)
    c = np.arange(channels).reshape(1, 1, channels)
    out = jnp.zeros((batch, math.prod(size), channels), x.dtype)
    out = out.at[b, flat_i, c].set(flat_x, mode="drop", wrap_negative_indices=False)
    return out.reshape((batch,) + tuple(size) + (channels,))


__all__ = ["max_pool", "min_pool", "sum_pool", "avg_pool", "lp_pool", "max_unpool"]
