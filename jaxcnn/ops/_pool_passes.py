"""Max and min pooling over non-overlapping windows as three JAX primitives, for training.

* ``arg_extreme(x)``: the pooled ``y`` and, for each element of ``y``, the row-major offset
  inside its window of the window's *first* extreme element (int32; ``-1`` where the window
  holds a NaN, so ``y`` is NaN and no gradient flows) — the element ``lax.reduce_window``'s
  own gradient (``select_and_scatter``) picks;
* ``window_select(t, offsets)``: ``t``'s chosen element of each window (the tangent of
  ``y``), linear in ``t``;
* ``window_scatter(g, offsets)``: ``g`` sent back to the chosen elements, zero elsewhere
  (the gradient), linear in ``g``; ``window_select`` and ``window_scatter`` are each
  other's transposes.

Each is lowered as its ``impl`` says: ``"reshape"``, the ``lax`` formulation (the input
reshaped to ``(N, o_1, k_1, ..., C)`` and reduced over the ``k`` axes), or ``"native"``,
the FFI handlers of ``jaxcnn/ops/native/pool.cc`` (float32 on CPU, split over XLA's
intra-op threads, where XLA runs the reshape's fusions on one). Both give the same numbers
bit for bit, but for windows holding a NaN: natively NaN and no gradient, as in PyTorch,
where XLA's vectorised max and min reductions may skip the NaN. ``"native"`` falls back to
``"reshape"`` where the call cannot run (off CPU, without the library, inside a program
partitioned over several devices). ``window_select``
is always lowered with ``lax``: reverse mode never runs it, only forward mode does.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxcnn._window import output_size, pad_spatial
from jaxcnn.ops import _native

NO_OFFSET = -1  # a window holding a NaN: no element is chosen


def _out_spatial(spatial, window, pads):
    return tuple(output_size(s, k, k, p, 1) for s, k, p in zip(spatial, window, pads))


def _exact_pads(spatial, window, pads, out):
    """Padding to exactly ``out * k`` per axis (the high side may be negative: a crop)."""
    return tuple((lo, o * k - s - lo) for s, (lo, _), k, o in zip(spatial, pads, window, out))


def to_blocks(x, window, pads, fill):
    """``x`` padded with ``fill`` (tail cut to whole windows), as ``(N, o1, k1, ..., C)``."""
    spatial = x.shape[1:-1]
    out = _out_spatial(spatial, window, pads)
    exact = _exact_pads(spatial, window, pads, out)
    if any(lo or hi for lo, hi in exact):
        x = pad_spatial(x, exact, fill)
    shape = (x.shape[0],) + tuple(d for o, k in zip(out, window) for d in (o, k)) + (x.shape[-1],)
    return x.reshape(shape)


def window_axes(n):
    """The ``k`` axes of :func:`to_blocks`' result for ``n`` spatial dimensions."""
    return tuple(range(2, 2 * n + 1, 2))


def _offsets(window, ndim):
    """Each element's row-major offset inside its window, broadcastable to the blocks."""
    axes = window_axes(len(window))
    bshape = [1] * ndim
    for a, k in zip(axes, window):
        bshape[a] = k
    return np.arange(int(np.prod(window)), dtype=np.int32).reshape(bshape)


def lowest(dtype):
    """The identity of max: ``-inf`` for floats, the dtype's minimum for ints."""
    return -np.inf if jnp.issubdtype(dtype, jnp.floating) else np.iinfo(dtype).min


def highest(dtype):
    """The identity of min: ``+inf`` for floats, the dtype's maximum for ints."""
    return np.inf if jnp.issubdtype(dtype, jnp.floating) else np.iinfo(dtype).max


def identity(dtype, largest):
    """The identity of max (``largest``) or min for ``dtype``."""
    return lowest(dtype) if largest else highest(dtype)


# ----------------------------------------------------------------------- lax formulations

def _reshape_arg_extreme(x, window, pads, largest):
    xb = to_blocks(x, window, pads, identity(x.dtype, largest))
    axes = window_axes(x.ndim - 2)
    y = jnp.max(xb, axis=axes) if largest else jnp.min(xb, axis=axes)
    hit = xb == jnp.expand_dims(y, axes)
    big = np.int32(np.iinfo(np.int32).max)
    first = jnp.min(jnp.where(hit, _offsets(window, xb.ndim), big), axis=axes)
    return y, jnp.where(first == big, np.int32(NO_OFFSET), first)


def _chosen(offsets, window, ndim):
    """True at each window's chosen element, as blocks."""
    return _offsets(window, ndim) == jnp.expand_dims(offsets, window_axes(len(window)))


def _reshape_select(t, offsets, window, pads):
    tb = to_blocks(t, window, pads, 0)
    picked = jnp.where(_chosen(offsets, window, tb.ndim), tb, jnp.zeros((), tb.dtype))
    return jnp.sum(picked, axis=window_axes(t.ndim - 2))


def _reshape_scatter(g, offsets, window, pads, spatial):
    n = len(window)
    bshape = (g.shape[0],) + tuple(d for o, k in zip(g.shape[1:-1], window) for d in (o, k)) \
        + (g.shape[-1],)
    gb = jnp.broadcast_to(jnp.expand_dims(g, window_axes(n)), bshape)
    blocks = jnp.where(_chosen(offsets, window, len(bshape)), gb, jnp.zeros((), g.dtype))
    padded = blocks.reshape((g.shape[0],) + tuple(o * k for o, k in zip(g.shape[1:-1], window))
                            + (g.shape[-1],))
    # Undo to_blocks' padding (negative) and crop (positive: the cut tail gets zeros).
    exact = _exact_pads(spatial, window, pads, g.shape[1:-1])
    return pad_spatial(padded, [(-lo, -hi) for lo, hi in exact], 0)


# --------------------------------------------------------------------------- primitives

arg_extreme_p = Primitive("jaxcnn_pool_arg_extreme")
arg_extreme_p.multiple_results = True
window_select_p = Primitive("jaxcnn_pool_select")
window_scatter_p = Primitive("jaxcnn_pool_scatter")


def arg_extreme(x, window, pads, largest, impl):
    """``(y, offsets)``: each window's max (``largest``) or min and its first position."""
    return arg_extreme_p.bind(x, window=tuple(window), pads=tuple(pads), largest=largest,
                              impl=impl)


def window_select(t, offsets, window, pads, impl):
    """Each window's chosen element of ``t`` (linear in ``t``); ``impl`` is its
    transpose's, :func:`window_scatter`'s."""
    return window_select_p.bind(t, offsets, window=tuple(window), pads=tuple(pads), impl=impl)


def window_scatter(g, offsets, window, pads, spatial, impl):
    """``g`` sent to each window's chosen element of an input of spatial size ``spatial``."""
    return window_scatter_p.bind(g, offsets, window=tuple(window), pads=tuple(pads),
                                 spatial=tuple(spatial), impl=impl)


def _arg_extreme_abstract(x, *, window, pads, largest, impl):
    del largest, impl
    out = (x.shape[0],) + _out_spatial(x.shape[1:-1], window, pads) + (x.shape[-1],)
    return [jax.core.ShapedArray(out, x.dtype), jax.core.ShapedArray(out, jnp.int32)]


def _select_abstract(t, offsets, *, window, pads, impl):
    del window, pads, impl
    return jax.core.ShapedArray(offsets.shape, t.dtype)


def _scatter_abstract(g, offsets, *, window, pads, spatial, impl):
    del offsets, window, pads, impl
    return jax.core.ShapedArray((g.shape[0],) + tuple(spatial) + (g.shape[-1],), g.dtype)


arg_extreme_p.def_abstract_eval(_arg_extreme_abstract)
window_select_p.def_abstract_eval(_select_abstract)
window_scatter_p.def_abstract_eval(_scatter_abstract)
for _p in (arg_extreme_p, window_select_p, window_scatter_p):
    _p.def_impl(functools.partial(dispatch.apply_primitive, _p))


# --------------------------------------------------------------------------- autodiff

def _zero_tangent(value):
    return ad.Zero(jax.typeof(value).to_tangent_aval())


def _arg_extreme_jvp(primals, tangents, *, window, pads, largest, impl):
    (x,), (t,) = primals, tangents
    y, offsets = arg_extreme(x, window, pads, largest, impl)
    ty = (_zero_tangent(y) if type(t) is ad.Zero
          else window_select(t, offsets, window, pads, impl))
    return (y, offsets), (ty, _zero_tangent(offsets))


ad.primitive_jvps[arg_extreme_p] = _arg_extreme_jvp


def _select_transpose(ct, t, offsets, *, window, pads, impl):
    if type(ct) is ad.Zero:
        return ad.Zero(t.aval), None
    return window_scatter(ct, offsets, window, pads, t.aval.shape[1:-1], impl), None


def _scatter_transpose(ct, g, offsets, *, window, pads, spatial, impl):
    del spatial
    if type(ct) is ad.Zero:
        return ad.Zero(g.aval), None
    return window_select(ct, offsets, window, pads, impl), None


ad.defjvp(window_select_p, lambda tt, t, offsets, **p: window_select_p.bind(tt, offsets, **p),
          None)
ad.defjvp(window_scatter_p, lambda tg, g, offsets, **p: window_scatter_p.bind(tg, offsets, **p),
          None)
ad.primitive_transposes[window_select_p] = _select_transpose
ad.primitive_transposes[window_scatter_p] = _scatter_transpose


# --------------------------------------------------------------------------- vmap

def _folded(args, dims):
    """Every operand with the vmapped axis first (broadcast where unbatched) and folded into
    the batch axis; returns the operands and the vmapped size."""
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    out = []
    for a, d in zip(args, dims):
        a = (jnp.moveaxis(a, d, 0) if d is not None
             else jnp.broadcast_to(a, (size,) + a.shape))
        out.append(a.reshape((size * a.shape[1],) + a.shape[2:]))
    return out, size


def _unfold(y, size):
    return y.reshape((size, y.shape[0] // size) + y.shape[1:])


def _batch(prim):
    def rule(args, dims, **params):
        ops, size = _folded(args, dims)
        out = prim.bind(*ops, **params)
        if prim.multiple_results:
            return [_unfold(o, size) for o in out], [0] * len(out)
        return _unfold(out, size), 0

    return rule


for _p in (arg_extreme_p, window_select_p, window_scatter_p):
    batching.primitive_batchers[_p] = _batch(_p)


# --------------------------------------------------------------------------- lowering

def _native_runs_here(ctx):
    """The FFI call can run (:func:`_native.call_runs_in`) on float32 operands."""
    return np.dtype(ctx.avals_in[0].dtype) == np.dtype(np.float32) and _native.call_runs_in(ctx)


def native_applies(dtype, window, strides, dilation):
    """The native lowering can compute this pool: float32, non-overlapping windows."""
    return (np.dtype(dtype) == np.dtype(np.float32) and tuple(window) == tuple(strides)
            and all(d == 1 for d in dilation))


def _pad_lo(pads):
    return np.asarray([lo for lo, _ in pads], np.int64)


def _arg_extreme_lowering(ctx, x, *, window, pads, largest, impl):
    if impl == "native" and _native_runs_here(ctx):
        return jax.ffi.ffi_lowering(_native.POOL_TARGETS["arg_extreme"])(
            ctx, x, window=np.asarray(window, np.int64), pad_lo=_pad_lo(pads),
            largest=np.int64(largest))
    fn = functools.partial(_reshape_arg_extreme, window=window, pads=pads, largest=largest)
    return mlir.lower_fun(fn, multiple_results=True)(ctx, x)


def _scatter_lowering(ctx, g, offsets, *, window, pads, spatial, impl):
    if impl == "native" and _native_runs_here(ctx):
        return jax.ffi.ffi_lowering(_native.POOL_TARGETS["scatter"])(
            ctx, g, offsets, window=np.asarray(window, np.int64), pad_lo=_pad_lo(pads))
    fn = functools.partial(_reshape_scatter, window=window, pads=pads, spatial=spatial)
    return mlir.lower_fun(fn, multiple_results=False)(ctx, g, offsets)


mlir.register_lowering(arg_extreme_p, _arg_extreme_lowering)
mlir.register_lowering(window_scatter_p, _scatter_lowering)
mlir.register_lowering(window_select_p, mlir.lower_fun(
    lambda t, offsets, window, pads, impl: _reshape_select(t, offsets, window, pads),
    multiple_results=False))


__all__ = ["NO_OFFSET", "arg_extreme", "arg_extreme_p", "highest", "identity", "lowest",
           "native_applies",
           "to_blocks", "window_axes", "window_scatter", "window_select"]
