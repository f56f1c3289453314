"""Convolution lowerings that beat ``lax.conv_general_dilated``'s on some CPU shapes.

A plan names one lowering per pass of an ungrouped convolution
``y = conv(x, w; stride, pads, dilation)``:

* forward: ``"lax"`` or ``"patches"`` (the ``prod(kernel_size)`` shifted, strided slices of
  the padded input stacked into ``(M, K * C_in)`` patches, then one matmul with the kernel
  reshaped to ``(K * C_in, C_out)``; fast when ``C_in`` is small, e.g. a first layer);
* input gradient: ``"lax"`` (JAX's transpose rule, a convolution with ``lhs_dilation``) or
  ``"interior"`` (``dY`` dilated by explicit interior padding, then a stride-1
  convolution with the flipped kernel; much faster for strided convolutions on CPU), or
  ``"interior_patches"`` (the same, with that convolution done by patches and one matmul);
* kernel gradient: ``"lax"`` or ``"patches"`` (``patches^T @ dY``);
* forward (or inference) ``"direct"``: the sum of ``K * C_in`` scaled shifted slices, one
  elementwise loop (first layers: a matmul with a handful of columns runs far below peak);
* ``"native"`` for any pass: oneDNN's convolution through the XLA FFI (``_native.py``);
* for 3-d convolutions, any pass may also be ``"fold"``: the depth offsets stacked on the
  channel axis and the output depth folded into the batch, i.e. one 2-d convolution
  (XLA's CPU 2-d convolutions are much faster than its 3-d ones), differentiated by JAX;
  or ``"fold_out"``: the depth offsets on the output channels instead (one 2-d
  convolution per input depth slice, then a sum of shifted slices).

All lowerings compute the same sums in a different order, so results agree to float
rounding. When ``x`` is not differentiated (a first layer) the input gradient is dead code
and XLA removes it.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"),
                      3: ("NDHWC", "DHWIO", "NDHWC")}


def dimension_numbers(n: int):
    """``lax`` dimension numbers for channels-last input and spatial-first kernel."""
    return _DIMENSION_NUMBERS[n]


class ConvPlan(NamedTuple):
    """Every lowering decision of one convolution, taken once from the rule table.

    ``forward`` and ``kernel_grad`` in {"lax", "native", "patches", "fold", "fold_out",
    "direct"}, ``input_grad`` in {"lax", "native", "interior", "interior_patches",
    "patches", "fold", "fold_out", "direct"} (``"fold"``, ``"fold_out"``: 3-d only; a
    gradient named after a forward lowering is that lowering's transpose). ``forward`` runs
    when the convolution is differentiated, ``inference`` (``None``: as ``forward``) when
    it is not: a forward lowering can pay only together with its kernel gradient.
    ``input_once`` and ``cotangent_once``: the input (for the kernel gradient) and the
    output cotangent (for the gradients) are computed once into a buffer
    (:func:`input_computed_once`, :func:`cotangent_computed_once`) instead of recomputed
    inside each ``lax`` pass that reads them. ``bias_grad``: ``"matmul"`` sums the bias
    gradient by :func:`channel_sum` (:func:`add_bias`), ``"lax"`` by autodiff of ``+``."""
    forward: str = "lax"
    input_grad: str = "lax"
    kernel_grad: str = "lax"
    inference: Optional[str] = None
    input_once: bool = False
    cotangent_once: bool = False
    bias_grad: str = "lax"


LAX_PLAN = ConvPlan()


def is_lax(plan):
    """True when every pass of ``plan`` is the plain ``lax`` convolution (the other
    decisions aside)."""
    return all(p in ("lax", None) for p in plan[:4])


def _acc_dtype(dtype):
    """Accumulate low-precision floats in float32."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def _lax_conv(x, w, stride, pads, dilation):
    n = x.ndim - 2
    return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation,
                                    dimension_numbers=_DIMENSION_NUMBERS[n])


def out_sizes(spatial, ksize, stride, pads, dilation):
    return tuple((size + lo + hi - d * (k - 1) - 1) // s + 1
                 for size, k, s, (lo, hi), d in zip(spatial, ksize, stride, pads, dilation))


def patches(x, ksize, stride, pads, dilation):
    """``(N, *out, K * C)``: the kernel windows of the zero-padded ``x``, offsets in row-major
    order, then channels (the order of ``kernel.reshape(K * C, C_out)``)."""
    n = x.ndim - 2
    out = out_sizes(x.shape[1:-1], ksize, stride, pads, dilation)
    xp = lax.pad(x, np.array(0, x.dtype), ((0, 0, 0),) + tuple((lo, hi, 0) for lo, hi in pads)
                 + ((0, 0, 0),))
    parts = []
    for offset in itertools.product(*(range(k) for k in ksize)):
        start = (0,) + tuple(j * d for j, d in zip(offset, dilation)) + (0,)
        ends = tuple(b + s * (o - 1) + 1 for b, s, o in zip(start[1:], stride, out))
        limit = (x.shape[0],) + ends + (x.shape[-1],)
        parts.append(lax.slice(xp, start, limit, (1,) + tuple(stride) + (1,)))
    p = parts[0] if len(parts) == 1 else jnp.stack(parts, axis=n + 1)
    return p.reshape((x.shape[0],) + out + (math.prod(ksize) * x.shape[-1],))


def _matmul(a, b, dtype):
    acc = _acc_dtype(dtype)
    y = lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())), preferred_element_type=acc)
    return y.astype(dtype)


def patches_conv(x, w, stride, pads, dilation):
    """The convolution as patches @ kernel."""
    ksize = w.shape[:-2]
    p = patches(x, ksize, stride, pads, dilation)
    return _matmul(p, w.reshape(-1, w.shape[-1]), x.dtype)


def patches_kernel_grad(x, w_shape, g, stride, pads, dilation):
    """``dw`` as ``patches(x)^T @ dY``."""
    p = patches(x, w_shape[:-2], stride, pads, dilation)
    p = p.reshape(-1, p.shape[-1])
    dw = lax.dot_general(p, g.reshape(-1, g.shape[-1]), (((0,), (0,)), ((), ())),
                         preferred_element_type=_acc_dtype(x.dtype))
    return dw.astype(x.dtype).reshape(w_shape)


def interior_input_grad(x_shape, w, g, stride, pads, dilation, conv=None):
    """``dx``: ``g`` dilated by ``stride - 1`` zeros (interior padding), padded, then a
    stride-1 convolution with the spatially flipped, in/out-swapped kernel."""
    n = len(x_shape) - 2
    ksize = w.shape[:n]
    config = [(0, 0, 0)]
    for size, k, s, (lo, _), d, o in zip(x_shape[1:-1], ksize, stride, pads, dilation,
                                         g.shape[1:-1]):
        eff = d * (k - 1) + 1
        config.append((eff - 1 - lo, size + lo - 1 - (o - 1) * s, s - 1))
    config.append((0, 0, 0))
    gp = lax.pad(g, np.array(0, g.dtype), config)
    wt = jnp.flip(jnp.swapaxes(w, -1, -2), axis=tuple(range(n)))
    return (conv or _lax_conv)(gp, wt, (1,) * n, ((0, 0),) * n, dilation)


def direct_conv(x, w, stride, pads, dilation):
    """The convolution as a sum of ``K * C_in`` scaled shifted slices of the padded input
    (one elementwise loop, no patches in memory): for first layers with one to four input
    channels, where a matrix product with ``C_out`` columns runs far below peak."""
    ksize = w.shape[:-2]
    out = out_sizes(x.shape[1:-1], ksize, stride, pads, dilation)
    xp = lax.pad(x, np.array(0, x.dtype), ((0, 0, 0),) + tuple((lo, hi, 0) for lo, hi in pads)
                 + ((0, 0, 0),))
    acc = _acc_dtype(x.dtype)
    y = None
    for offset in itertools.product(*(range(k) for k in ksize)):
        start = (0,) + tuple(j * d for j, d in zip(offset, dilation)) + (0,)
        ends = tuple(b + s * (o - 1) + 1 for b, s, o in zip(start[1:], stride, out))
        part = lax.slice(xp, start, (x.shape[0],) + ends + (x.shape[-1],),
                         (1,) + tuple(stride) + (1,)).astype(acc)
        for c in range(x.shape[-1]):
            term = part[..., c:c + 1] * w[offset + (c,)].astype(acc).reshape(
                (1,) * (x.ndim - 1) + (-1,))
            y = term if y is None else y + term
    return y.astype(x.dtype)


def fold_conv(x, w, stride, pads, dilation):
    """A 3-d convolution as one 2-d convolution: the ``k_d`` depth-shifted slices of the
    padded input are stacked on the channel axis, the output depth folded into the batch."""
    n = x.ndim - 2
    (lo, hi), kd, sd, dd = pads[0], w.shape[0], stride[0], dilation[0]
    od = out_sizes(x.shape[1:2], (kd,), (sd,), (pads[0],), (dd,))[0]
    xp = lax.pad(x, np.array(0, x.dtype), ((0, 0, 0), (lo, hi, 0)) + ((0, 0, 0),) * n)
    parts = [lax.slice_in_dim(xp, j * dd, j * dd + sd * (od - 1) + 1, sd, axis=1)
             for j in range(kd)]
    xs = jnp.concatenate(parts, axis=-1) if kd > 1 else parts[0]  # (N, od, H, W, kd * C)
    xs = xs.reshape((-1,) + xs.shape[2:])
    w2 = jnp.moveaxis(w, 0, n - 1).reshape(w.shape[1:n] + (kd * w.shape[-2], w.shape[-1]))
    y = _lax_conv(xs, w2, stride[1:], pads[1:], dilation[1:])
    return y.reshape((x.shape[0], od) + y.shape[1:])


def fold_out_conv(x, w, stride, pads, dilation):
    """A 3-d convolution as one 2-d convolution with the depth offsets on the *output*
    channels: every depth slice of the padded input is convolved (2-d) with the ``k_d``
    kernel slices at once (``C_out * k_d`` output channels), then output depth ``d`` sums
    slice ``d * s_d + j * d_d``'s block ``j`` over ``j``. Computes ``(D + pads) / od``
    times the useful products (1.17x for 14 -> 12), in a shape XLA runs faster."""
    n = x.ndim - 2
    (lo, hi), kd, sd, dd = pads[0], w.shape[0], stride[0], dilation[0]
    od = out_sizes(x.shape[1:2], (kd,), (sd,), (pads[0],), (dd,))[0]
    xp = lax.pad(x, np.array(0, x.dtype), ((0, 0, 0), (lo, hi, 0)) + ((0, 0, 0),) * n)
    batch, depth = xp.shape[:2]
    c_out = w.shape[-1]
    w2 = jnp.moveaxis(w, 0, -2).reshape(w.shape[1:n] + (w.shape[-2], kd * c_out))
    z = _lax_conv(xp.reshape((batch * depth,) + xp.shape[2:]), w2, stride[1:], pads[1:],
                  dilation[1:])
    z = z.reshape((batch, depth) + z.shape[1:-1] + (kd, c_out))
    y = None
    for j in range(kd):
        part = lax.slice_in_dim(z, j * dd, j * dd + sd * (od - 1) + 1, sd, axis=1)[..., j, :]
        y = part if y is None else y + part
    return y


FORWARD = {"lax": _lax_conv, "patches": patches_conv, "fold": fold_conv,
            "fold_out": fold_out_conv, "direct": direct_conv}


_SUM_BLOCK = 64


def channel_sum(a):
    """``a.sum(axis=all but the last)`` by matrix products (accumulated in float32 at
    least). On CPU, under :func:`jaxcnn.compiler_options`, XLA lowers a large reduction over
    the leading axis to a slow loop (or a reduce-window that recomputes its producers), and
    even the product ``ones @ a`` of a tall ``(R, C)`` matrix runs near 1 GB/s. So the rows
    are first summed in ``b`` (up to 64) contiguous blocks by one wide product
    ``ones(b) @ a.reshape(b, R/b * C)``, then the ``R/b`` partial rows by ``ones @ p``
    (a 128x512x64 sum: 7.8 ms as ``ones @ a``, 1.8 ms blocked; 128x32x32x16: 1.9 vs 0.8).
    """
    a2 = a.reshape(-1, a.shape[-1])
    acc = _acc_dtype(a.dtype)
    b = math.gcd(a2.shape[0], _SUM_BLOCK)
    if 1 < b < a2.shape[0]:
        a2 = lax.dot_general(jnp.ones((b,), a.dtype), a2.reshape(b, -1),
                             (((0,), (0,)), ((), ())), preferred_element_type=acc)
        a2 = a2.reshape(-1, a.shape[-1])
    return lax.dot_general(jnp.ones((a2.shape[0],), a2.dtype), a2, (((0,), (0,)), ((), ())),
                           preferred_element_type=acc)


def _broadcast_by_matmul(b, rows):
    """``b`` (C,) repeated on ``rows`` rows, as the products whose transpose is
    :func:`channel_sum`'s blocked sum."""
    blocks = math.gcd(rows, _SUM_BLOCK)
    if not 1 < blocks < rows:
        blocks = 1
    outer = lambda ones, v: lax.dot_general(ones, v, (((), ()), ((), ())))  # noqa: E731
    inner = outer(jnp.ones((rows // blocks,), b.dtype), b).reshape(-1)
    return outer(jnp.ones((blocks,), b.dtype), inner).reshape(rows, -1)


@jax.custom_jvp
def add_bias(y, b):
    """``y + b`` over the last axis, whose bias gradient (the transpose of the tangent) is
    :func:`channel_sum` of the cotangent (VoxNet: XLA fused the bias gradient's reduction
    with a recomputation of the folded convolution and the pooling gradient, 170 ms of a
    300 ms step)."""
    return y + b.reshape((1,) * (y.ndim - 1) + (-1,))


@add_bias.defjvp
def _add_bias_jvp(primals, tangents):
    (y, b), (ty, tb) = primals, tangents
    rows = math.prod(y.shape[:-1])
    tb = _broadcast_by_matmul(tb.astype(y.dtype), rows).reshape(y.shape)
    return add_bias(y, b), ty + tb


@jax.custom_jvp
def input_computed_once(x):
    """``x``; under differentiation ``x`` goes through ``lax.optimization_barrier`` (the
    identity, exact for every value), which XLA's fusion does not see through. The kernel
    gradient of a ``lax`` convolution transposes its input; when that input is an
    elementwise chain (batch norm, ReLU, residual adds), XLA fused the whole chain into the
    transpose and recomputed it there (ResNet-20: 14 such transposes, 180+ ms of an 870 ms
    step). Behind the barrier the transpose reads the input the forward pass wrote."""
    return x


@input_computed_once.defjvp
def _input_computed_once_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return lax.optimization_barrier(x), t


@jax.custom_jvp
def cotangent_computed_once(y):
    """``y``; under differentiation its tangent (so, in reverse mode, its cotangent) goes
    through ``lax.optimization_barrier`` (the identity, exact). A convolution's backward
    pass reads its output cotangent two or three times (the kernel gradient, the input
    gradient, the bias gradient); when that cotangent is an elementwise chain (the ReLU,
    pooling and batch-norm gradients), XLA fused the chain into each ``lax`` reader and
    recomputed it there (VoxNet: 52 ms of the step's profile)."""
    return y


@cotangent_computed_once.defjvp
def _cotangent_computed_once_jvp(primals, tangents):
    (y,), (t,) = primals, tangents
    return y, lax.optimization_barrier(t)


__all__ = ["ConvPlan", "LAX_PLAN", "FORWARD", "add_bias", "channel_sum",
           "cotangent_computed_once", "dimension_numbers", "input_computed_once",
           "interior_input_grad", "is_lax", "out_sizes", "patches", "patches_conv",
           "patches_kernel_grad", "fold_conv", "fold_out_conv"]
