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
  kernel gradient ``"native_rows"``: for 1-d, stride-1, same-length convolutions, oneDNN
  matrix products over the rows of the whole batch, one per kernel tap (``_native.py``);
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

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxcnn._window import dimension_numbers, output_size, output_sizes, pad_spatial, window_slices
from jaxcnn.ops._matmul import acc_dtype, matmul


class ConvPlan(NamedTuple):
    """Every lowering decision of one convolution, taken once from the rule table.

    ``forward`` and ``kernel_grad`` in {"lax", "native", "patches", "fold", "fold_out",
    "direct"} (``kernel_grad`` also ``"native_rows"``), ``input_grad`` in {"lax", "native",
    "interior", "interior_patches", "patches", "fold", "fold_out", "direct"} (``"fold"``,
    ``"fold_out"``: 3-d only; a gradient named after a forward lowering is that lowering's
    transpose). ``forward`` runs when the convolution is differentiated, ``inference``
    (``None``: as ``forward``) when it is not: a forward lowering can pay only together with
    its kernel gradient.
    ``input_once`` and ``cotangent_once``: the input (for the kernel gradient) and the
    output cotangent (for the gradients) are computed once into a buffer
    (:func:`input_computed_once`, :func:`cotangent_computed_once`) instead of recomputed
    inside each ``lax`` pass that reads them. ``bias_grad``: ``"matmul"`` sums the bias
    gradient by matrix products (:func:`jaxcnn.ops._matmul.add_bias`), ``"lax"`` by
    autodiff of ``+``."""
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


def _lax_conv(x, w, stride, pads, dilation):
    return lax.conv_general_dilated(x, w, stride, pads, rhs_dilation=dilation,
                                    dimension_numbers=dimension_numbers(x.ndim - 2))


def patches(x, ksize, stride, pads, dilation):
    """``(N, *out, K * C)``: the kernel windows of the zero-padded ``x``, offsets in row-major
    order, then channels (the order of ``kernel.reshape(K * C, C_out)``)."""
    n = x.ndim - 2
    out = output_sizes(x.shape[1:-1], ksize, stride, pads, dilation)
    parts = [p for _, p in window_slices(pad_spatial(x, pads), ksize, stride, dilation, out)]
    p = parts[0] if len(parts) == 1 else jnp.stack(parts, axis=n + 1)
    return p.reshape((x.shape[0],) + out + (math.prod(ksize) * x.shape[-1],))


def patches_conv(x, w, stride, pads, dilation):
    """The convolution as patches @ kernel."""
    ksize = w.shape[:-2]
    p = patches(x, ksize, stride, pads, dilation)
    return matmul(p, w.reshape(-1, w.shape[-1]), x.dtype)


def patches_kernel_grad(x, w_shape, g, stride, pads, dilation):
    """``dw`` as ``patches(x)^T @ dY``."""
    p = patches(x, w_shape[:-2], stride, pads, dilation)
    p = p.reshape(-1, p.shape[-1])
    dw = lax.dot_general(p, g.reshape(-1, g.shape[-1]), (((0,), (0,)), ((), ())),
                         preferred_element_type=acc_dtype(x.dtype))
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
    out = output_sizes(x.shape[1:-1], ksize, stride, pads, dilation)
    acc = acc_dtype(x.dtype)
    y = None
    for offset, part in window_slices(pad_spatial(x, pads), ksize, stride, dilation, out):
        part = part.astype(acc)
        for c in range(x.shape[-1]):
            term = part[..., c:c + 1] * w[offset + (c,)].astype(acc).reshape(
                (1,) * (x.ndim - 1) + (-1,))
            y = term if y is None else y + term
    return y.astype(x.dtype)


def _depth_slices(a, kd, sd, dd, od):
    """The ``k_d`` depth-shifted, strided slices (axis 1) that the output depths read."""
    return [p for _, p in window_slices(a, (kd,), (sd,), (dd,), (od,))]


def fold_conv(x, w, stride, pads, dilation):
    """A 3-d convolution as one 2-d convolution: the ``k_d`` depth-shifted slices of the
    padded input are stacked on the channel axis, the output depth folded into the batch."""
    n = x.ndim - 2
    kd, sd, dd = w.shape[0], stride[0], dilation[0]
    od = output_size(x.shape[1], kd, sd, pads[0], dd)
    xp = pad_spatial(x, pads[:1] + ((0, 0),) * (n - 1))
    parts = _depth_slices(xp, kd, sd, dd, od)
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
    kd, sd, dd = w.shape[0], stride[0], dilation[0]
    od = output_size(x.shape[1], kd, sd, pads[0], dd)
    xp = pad_spatial(x, pads[:1] + ((0, 0),) * (n - 1))
    batch, depth = xp.shape[:2]
    c_out = w.shape[-1]
    w2 = jnp.moveaxis(w, 0, -2).reshape(w.shape[1:n] + (w.shape[-2], kd * c_out))
    z = _lax_conv(xp.reshape((batch * depth,) + xp.shape[2:]), w2, stride[1:], pads[1:],
                  dilation[1:])
    z = z.reshape((batch, depth) + z.shape[1:-1] + (kd, c_out))
    parts = [p[..., j, :] for j, p in enumerate(_depth_slices(z, kd, sd, dd, od))]
    return sum(parts[1:], parts[0])


FORWARD = {"lax": _lax_conv, "patches": patches_conv, "fold": fold_conv,
           "fold_out": fold_out_conv, "direct": direct_conv}


@jax.custom_jvp
def input_computed_once(x):
    """``x``; under differentiation ``x`` goes through ``lax.optimization_barrier`` (the
    identity, exact for every value), which XLA's fusion does not see through. The kernel
    gradient of a ``lax`` convolution transposes its input; when that input is an
    elementwise chain (batch norm, ReLU, residual adds), XLA fused the whole chain into the
    transpose and recomputed it there. Behind the barrier the transpose reads the input
    the forward pass wrote."""
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
    recomputed it there."""
    return y


@cotangent_computed_once.defjvp
def _cotangent_computed_once_jvp(primals, tangents):
    (y,), (t,) = primals, tangents
    return y, lax.optimization_barrier(t)


__all__ = ["ConvPlan", "LAX_PLAN", "FORWARD", "cotangent_computed_once", "input_computed_once",
           "interior_input_grad", "is_lax", "patches", "patches_conv", "patches_kernel_grad",
           "fold_conv", "fold_out_conv", "direct_conv"]
