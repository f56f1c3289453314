"""Batch norm's per-channel sums as two JAX primitives, for training.

* ``moments(x)``: the mean and biased variance of ``x`` (``(..., C)``) per channel;
* ``dual_sums(g, x, mean)``: ``sum(g)`` and ``sum(g * (x - mean))`` per channel, the two sums
  of batch norm's gradient.

Each is lowered as its ``impl`` says: ``"matmul"``, the formulas with
:func:`~jaxcnn.ops._matmul.channel_sum` (matrix products, which XLA cannot fuse with their
operands: ``x - mean`` and its square are written to memory and read back), or
``"native"``, the FFI handlers of ``jaxcnn/ops/native/norm.cc`` (float32 on CPU; each
operand read once, split over XLA's intra-op threads). The two agree to rounding: the
native variance merges cache-sized blocks' two-pass sums in double. ``"native"`` falls back
to ``"matmul"`` where the call cannot run (off CPU, without the library, inside a program
partitioned over several devices). Derivatives and ``vmap`` apply JAX's to the formulas.
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxcnn.ops import _native
from jaxcnn.ops._matmul import channel_sum


def _count(x):
    return math.prod(x.shape[:-1])


def _by_channel(v, x):
    return v.reshape((1,) * (x.ndim - 1) + (-1,))


def _moments(x):
    n = _count(x)
    m = channel_sum(x) / n
    xc = x - _by_channel(m, x)
    return m, channel_sum(xc * xc) / n


def _dual_sums(g, x, mean):
    return channel_sum(g), channel_sum(g * (x - _by_channel(mean, x)))


moments_p = Primitive("jaxcnn_norm_moments")
dual_sums_p = Primitive("jaxcnn_norm_dual_sums")


def moments(x, impl):
    """``(mean, var)`` of ``x`` over all axes but the last, each ``(C,)``."""
    return moments_p.bind(x, impl=impl)


def dual_sums(g, x, mean, impl):
    """``(sum(g), sum(g * (x - mean)))`` over all axes but the last, each ``(C,)``."""
    return dual_sums_p.bind(g, x, mean, impl=impl)


def _channel_avals(x):
    aval = jax.core.ShapedArray((x.shape[-1],), x.dtype)
    return [aval, aval]


_FORMULAS = {moments_p: _moments, dual_sums_p: _dual_sums}
_TARGETS = {moments_p: "moments", dual_sums_p: "dual_sums"}
moments_p.def_abstract_eval(lambda x, *, impl: _channel_avals(x))
dual_sums_p.def_abstract_eval(lambda g, x, mean, *, impl: _channel_avals(g))


def _jvp(fn, primals, tangents, **params):
    del params
    return jax.jvp(fn, tuple(primals), tuple(ad.instantiate_zeros(t) for t in tangents))


def _batch(fn, args, dims, **params):
    del params
    return jax.vmap(fn, in_axes=tuple(dims))(*args), (0, 0)


def _lowering(prim, ctx, *args, impl):
    if (impl == "native" and all(np.dtype(a.dtype) == np.dtype(np.float32) for a in ctx.avals_in)
            and _native.call_runs_in(ctx)):
        return jax.ffi.ffi_lowering(_native.NORM_TARGETS[_TARGETS[prim]])(ctx, *args)
    return mlir.lower_fun(_FORMULAS[prim], multiple_results=True)(ctx, *args)


for _p, _fn in _FORMULAS.items():
    _p.multiple_results = True
    _p.def_impl(functools.partial(dispatch.apply_primitive, _p))
    ad.primitive_jvps[_p] = functools.partial(_jvp, _fn)
    batching.primitive_batchers[_p] = functools.partial(_batch, _fn)
    mlir.register_lowering(_p, functools.partial(_lowering, _p))


__all__ = ["dual_sums", "dual_sums_p", "moments", "moments_p"]
