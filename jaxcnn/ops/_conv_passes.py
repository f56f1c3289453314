"""The three passes of a convolution as JAX primitives, each lowered its own way.

``y = F(x, w)`` (forward), ``dx = D(dy, w)`` (input gradient) and ``dw = W(x, dy)``
(kernel gradient) are the three partial derivatives of the trilinear form
``<F(x, w), dy>``, so each is bilinear and the transpose of each with respect to either
operand is one of the other two, as for ``lax.conv_general_dilated`` itself:

* ``F`` transposes to ``D`` (in ``x``) and ``W`` (in ``w``);
* ``D(g, w)`` to ``F`` (in ``g``) and ``W(., g)`` (in ``w``);
* ``W(x, g)`` to ``D(g, .)`` (in ``x``) and ``F(x, .)`` (in ``g``).

Every JAX transformation therefore works on them (``jit``, ``grad``, ``vjp``, ``jvp``,
``jacfwd``, Hessians, ``linearize``, ``vmap``, ``checkpoint``, ``eval_shape``), at every
order, while each pass is lowered by the implementation its
:class:`~jaxcnn.ops._fast_conv.ConvPlan` names: ``"native"`` (the oneDNN FFI handlers of
:mod:`jaxcnn.ops._native`, on CPU, float32 and bfloat16) or one of the ``lax`` formulations
of :mod:`jaxcnn.ops._fast_conv`. A pass planned ``"native"`` is lowered with ``lax``
instead where the FFI call cannot run: off CPU, without the library, in bfloat16 without
the CPU's bfloat16 instructions, and inside a program partitioned over several devices (XLA
does not partition custom calls; the ``lax`` convolution partitions along the batch like
any other op).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import numpy as np
from jax import lax
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxcnn._window import dimension_numbers, output_sizes
from jaxcnn.ops import _fast_conv, _native
from jaxcnn.ops._fast_conv import ConvPlan
from jaxcnn.ops._matmul import add_bias


class ConvConfig(NamedTuple):
    """Static facts of one convolution: geometry and the plan of its passes."""
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int
    plan: ConvPlan


def _lax_forward(x, w, cfg):
    return lax.conv_general_dilated(x, w, cfg.stride, cfg.pads, rhs_dilation=cfg.dilation,
                                    dimension_numbers=dimension_numbers(x.ndim - 2),
                                    feature_group_count=cfg.groups)


def _forward_fn(impl):
    if impl in ("lax", "native"):
        return _lax_forward
    f = _fast_conv.FORWARD[impl]
    return lambda x, w, cfg: f(x, w, cfg.stride, cfg.pads, cfg.dilation)


def _x_aval(g, w, cfg, in_spatial):
    return jax.ShapeDtypeStruct((g.shape[0],) + tuple(in_spatial) + (w.shape[-2] * cfg.groups,),
                                g.dtype)


def _w_aval(x, g, cfg, kernel_size):
    return jax.ShapeDtypeStruct(tuple(kernel_size) + (x.shape[-1] // cfg.groups, g.shape[-1]),
                                x.dtype)


def _input_grad_impl(impl, g, w, cfg, in_spatial):
    x_aval = _x_aval(g, w, cfg, in_spatial)
    if impl in ("interior", "interior_patches"):
        conv = _fast_conv.patches_conv if impl == "interior_patches" else None
        return _fast_conv.interior_input_grad(x_aval.shape, w, g, cfg.stride, cfg.pads,
                                              cfg.dilation, conv)
    f = _forward_fn(impl)
    return jax.linear_transpose(lambda x: f(x, w, cfg), x_aval)(g)[0]


def _kernel_grad_impl(impl, x, g, cfg, kernel_size):
    w_aval = _w_aval(x, g, cfg, kernel_size)
    if impl == "patches":
        return _fast_conv.patches_kernel_grad(x, w_aval.shape, g, cfg.stride, cfg.pads,
                                              cfg.dilation)
    f = _forward_fn(impl)
    return jax.linear_transpose(lambda w: f(x, w, cfg), w_aval)(g)[0]


# --------------------------------------------------------------------------- primitives

forward_p = Primitive("jaxcnn_conv_forward")
input_grad_p = Primitive("jaxcnn_conv_input_grad")
kernel_grad_p = Primitive("jaxcnn_conv_kernel_grad")


def forward(x, w, cfg, impl=None):
    """``F(x, w)``, lowered by ``impl`` (default: the plan's training forward)."""
    return forward_p.bind(x, w, cfg=cfg, impl=impl or cfg.plan.forward)


def input_grad(g, w, cfg, in_spatial):
    """``D(g, w)``: the gradient of ``<F(x, w), g>`` in ``x`` (spatial size ``in_spatial``)."""
    return input_grad_p.bind(g, w, cfg=cfg, in_spatial=tuple(in_spatial))


def kernel_grad(x, g, cfg, kernel_size):
    """``W(x, g)``: the gradient of ``<F(x, w), g>`` in ``w`` (spatial ``kernel_size``)."""
    return kernel_grad_p.bind(x, g, cfg=cfg, kernel_size=tuple(kernel_size))


def _forward_abstract(x, w, *, cfg, impl):
    del impl
    out = output_sizes(x.shape[1:-1], w.shape[:-2], cfg.stride, cfg.pads, cfg.dilation)
    return jax.core.ShapedArray((x.shape[0],) + out + (w.shape[-1],), x.dtype)


def _input_grad_abstract(g, w, *, cfg, in_spatial):
    a = _x_aval(g, w, cfg, in_spatial)
    return jax.core.ShapedArray(a.shape, a.dtype)


def _kernel_grad_abstract(x, g, *, cfg, kernel_size):
    a = _w_aval(x, g, cfg, kernel_size)
    return jax.core.ShapedArray(a.shape, a.dtype)


forward_p.def_abstract_eval(_forward_abstract)
input_grad_p.def_abstract_eval(_input_grad_abstract)
kernel_grad_p.def_abstract_eval(_kernel_grad_abstract)
for _p in (forward_p, input_grad_p, kernel_grad_p):
    _p.def_impl(functools.partial(dispatch.apply_primitive, _p))


# --------------------------------------------------------------------------- autodiff

def _shape(operand):
    """The shape of a transpose rule's operand: an array, or the undefined one's aval."""
    return tuple(operand.aval.shape if hasattr(operand, "aval") and not hasattr(
        operand, "shape") else operand.shape)


def _spatial(operand):
    return _shape(operand)[1:-1]


def _kernel_size(operand):
    return _shape(operand)[:-2]


ad.defbilinear(forward_p,
               lambda ct, x, w, *, cfg, impl: input_grad(ct, w, cfg, _spatial(x)),
               lambda ct, x, w, *, cfg, impl: kernel_grad(x, ct, cfg, _kernel_size(w)))
ad.defbilinear(input_grad_p,
               lambda ct, g, w, *, cfg, in_spatial: forward(ct, w, cfg),
               lambda ct, g, w, *, cfg, in_spatial: kernel_grad(ct, g, cfg, _kernel_size(w)))
ad.defbilinear(kernel_grad_p,
               lambda ct, x, g, *, cfg, kernel_size: input_grad(g, ct, cfg, _spatial(x)),
               lambda ct, x, g, *, cfg, kernel_size: forward(x, ct, cfg))


def _forward_jvp(primals, tangents, *, cfg, impl):
    """Differentiated, the forward pass runs the plan's training lowering (``impl`` is the
    inference one); the tangent is bilinear."""
    del impl
    (x, w), (tx, tw) = primals, tangents
    y = forward(x, w, cfg)
    terms = [forward(tx, w, cfg) if type(tx) is not ad.Zero else None,
             forward(x, tw, cfg) if type(tw) is not ad.Zero else None]
    terms = [t for t in terms if t is not None]
    if not terms:
        return y, ad.Zero(jax.typeof(y).to_tangent_aval())
    return y, terms[0] if len(terms) == 1 else terms[0] + terms[1]


ad.primitive_jvps[forward_p] = _forward_jvp


# --------------------------------------------------------------------------- vmap

def _batch_rule(prim, batch_operand):
    """``vmap``: a batch of the operand that carries the convolution's batch axis alone is
    folded into that axis; anything else maps the primitive over the batch (one call per
    member, as ``vmap_method="sequential"``)."""

    def rule(args, dims, **params):
        size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
        if batch_operand is not None and all(
                d is None for i, d in enumerate(dims) if i != batch_operand):
            a = jax.numpy.moveaxis(args[batch_operand], dims[batch_operand], 0)
            folded = a.reshape((size * a.shape[1],) + a.shape[2:])
            ops = list(args)
            ops[batch_operand] = folded
            out = prim.bind(*ops, **params)
            return out.reshape((size, a.shape[1]) + out.shape[1:]), 0
        moved = [jax.numpy.moveaxis(a, d, 0) if d is not None else None
                 for a, d in zip(args, dims)]

        def one(members):
            full = [m if m is not None else a for m, a in zip(members, args)]
            return prim.bind(*full, **params)

        return lax.map(one, moved), 0

    return rule


batching.primitive_batchers[forward_p] = _batch_rule(forward_p, 0)
batching.primitive_batchers[input_grad_p] = _batch_rule(input_grad_p, 0)
batching.primitive_batchers[kernel_grad_p] = _batch_rule(kernel_grad_p, None)


# --------------------------------------------------------------------------- lowering

def _native_dtype(avals):
    """Operands and result all float32, or all bfloat16 where oneDNN has bfloat16 kernels."""
    dtypes = {np.dtype(a.dtype) for a in avals}
    if dtypes == {np.dtype(np.float32)}:
        return True
    return dtypes == {np.dtype(jax.numpy.bfloat16)} and _native.bf16_available()


def _native_runs_here(ctx, cfg):
    """The FFI call can run (:func:`_native.call_runs_in`) on these operands: float32 (or
    bfloat16 with bfloat16 instructions), non-negative padding."""
    return (min(min(p) for p in cfg.pads) >= 0
            and _native_dtype((*ctx.avals_in, *ctx.avals_out)) and _native.call_runs_in(ctx))


def _ffi_attrs(cfg):
    return dict(stride=np.asarray(cfg.stride, np.int64),
                pad_lo=np.asarray([lo for lo, _ in cfg.pads], np.int64),
                pad_hi=np.asarray([hi for _, hi in cfg.pads], np.int64),
                dilation=np.asarray(cfg.dilation, np.int64), groups=np.int64(cfg.groups))


def rows_kernel_grad_applies(x_shape, y_shape, stride, groups):
    """The ``"native_rows"`` kernel gradient computes it: 1-d, stride 1, ungrouped, the
    output as long as the input (float32 and non-negative padding are checked with it)."""
    return (len(x_shape) == 3 and tuple(stride) == (1,) and groups == 1
            and x_shape[1] == y_shape[1])


def _lowering(pass_name, impl_of, lax_impl):
    target = _native.TARGETS[pass_name]

    def rule(ctx, a, b, **params):
        cfg = params["cfg"]
        impl = impl_of(params)
        if impl == "native_rows" and _native_runs_here(ctx, cfg) and all(
                np.dtype(v.dtype) == np.float32 for v in (*ctx.avals_in, *ctx.avals_out)) \
                and rows_kernel_grad_applies(ctx.avals_in[0].shape, ctx.avals_in[1].shape,
                                             cfg.stride, cfg.groups):
            return jax.ffi.ffi_lowering(_native.ROWS_TARGET)(
                ctx, a, b, pad_lo=np.asarray([lo for lo, _ in cfg.pads], np.int64),
                dilation=np.asarray(cfg.dilation, np.int64))
        if impl in ("native", "native_rows") and _native_runs_here(ctx, cfg):
            return jax.ffi.ffi_lowering(target)(ctx, a, b, **_ffi_attrs(cfg))
        extra = {k: v for k, v in params.items() if k not in ("cfg", "impl")}
        fn = functools.partial(lax_impl, "lax" if impl.startswith("native") else impl, cfg=cfg,
                               **extra)
        return mlir.lower_fun(fn, multiple_results=False)(ctx, a, b)

    return rule


mlir.register_lowering(forward_p, _lowering(
    "forward", lambda p: p["impl"], lambda impl, x, w, cfg: _forward_fn(impl)(x, w, cfg)))
mlir.register_lowering(input_grad_p, _lowering(
    "input_grad", lambda p: p["cfg"].plan.input_grad,
    lambda impl, g, w, cfg, in_spatial: _input_grad_impl(impl, g, w, cfg, in_spatial)))
mlir.register_lowering(kernel_grad_p, _lowering(
    "kernel_grad", lambda p: p["cfg"].plan.kernel_grad,
    lambda impl, x, g, cfg, kernel_size: _kernel_grad_impl(impl, x, g, cfg, kernel_size)))


def planned_conv(x, w, bias, plan, stride, pads, dilation, groups=1, precision=None):
    """``conv(x, w) + bias`` lowered as ``plan`` says: the one place a convolution's plan
    becomes code. ``w`` is already ``x.dtype``; ``bias`` is ``None`` or checked ``(C_out,)``;
    ``pads`` are ``(low, high)`` pairs."""
    stride, dilation = tuple(stride), tuple(dilation)
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    if plan.input_once:
        x = _fast_conv.input_computed_once(x)
    if _fast_conv.is_lax(plan):
        y = lax.conv_general_dilated(
            x, w, stride, pads, rhs_dilation=dilation,
            dimension_numbers=dimension_numbers(x.ndim - 2),
            feature_group_count=groups, precision=precision)
    else:
        cfg = ConvConfig(stride, pads, dilation, groups, plan)
        y = forward(x, w, cfg, plan.inference or plan.forward)
    if bias is not None:
        bias = bias.astype(y.dtype)
        if plan.bias_grad == "matmul":
            y = add_bias(y, bias)
        else:
            y = y + bias.reshape((1,) * (y.ndim - 1) + (-1,))
    if plan.cotangent_once:
        y = _fast_conv.cotangent_computed_once(y)
    return y


__all__ = ["ConvConfig", "planned_conv", "forward", "forward_p", "input_grad", "input_grad_p",
           "kernel_grad", "kernel_grad_p"]
