"""Convolution ops on ``lax.conv_general_dilated`` with PyTorch's argument semantics.

Inputs are channels-last ``(N, *spatial, C)``; kernels spatial-first
``(*kernel_size, C_in // groups, C_out)``. The spatial rank (1, 2 or 3) comes from ``x``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxcnn._checks import (check_array, check_choice, check_float, check_positive_int, fail,
                            spatial_rank, to_tuple)
from jaxcnn._window import (PADDING_MODES, check_window_fits, dimension_numbers,
                            normalize_padding, resolve_padding, transpose_output_size)
from jaxcnn.ops._conv_passes import ConvConfig, input_grad, planned_conv
from jaxcnn.ops._fast_conv import is_lax
from jaxcnn.ops._lowering import conv_plan
from jaxcnn.ops._padding import _pad_pairs


def _check_kernel(where, x, kernel, n, groups, transpose=False):
    check_array(where, "kernel", kernel)
    check_float(where, "x", x)
    check_float(where, "kernel", kernel)
    if jnp.ndim(kernel) != n + 2:
        fail(where, "kernel rank", f"{n + 2} (*kernel_size, in, out) for a {n}-d input",
             jnp.ndim(kernel))
    check_positive_int(where, "groups", groups)
    c_in = x.shape[-1]
    if c_in % groups:
        fail(where, "input channels", f"divisible by groups={groups}", c_in)
    in_axis_channels = c_in if transpose else c_in // groups
    if kernel.shape[-2] != in_axis_channels:
        fail(where, "kernel.shape[-2] (input channels of the kernel)",
             f"{in_axis_channels} for an input with {c_in} channels and groups={groups}",
             kernel.shape[-2], "Check the input's channel count (channels-last: (N, *spatial, C))")


def _check_bias(where, bias, c_out):
    if bias is not None:
        check_array(where, "bias", bias)
        if jnp.shape(bias) != (c_out,):
            fail(where, "bias shape", f"({c_out},)", jnp.shape(bias))
    return bias


def conv(x, kernel, bias=None, *, stride=1, padding=0, dilation=1, groups=1,
         padding_mode="zeros", precision=None):
    """N-d convolution (cross-correlation, as in every deep learning library).

    .. math::
       y[n, o, c'] = b[c'] + \\sum_{k, c} x_{pad}[n, s \\cdot o + d \\cdot k, c]\\, w[k, c, c']

    with stride :math:`s` (``stride``), dilation :math:`d` (``dilation``), the sum over
    the kernel window :math:`k` and over the input channels :math:`c` of the group of
    output channel :math:`c'`.

    Args:
      x: input ``(N, *spatial, C_in)`` with 1, 2 or 3 spatial axes.
      kernel: ``(*kernel_size, C_in // groups, C_out)``. A PyTorch weight
        ``(C_out, C_in // groups, *k)`` becomes this with ``jnp.moveaxis(w, (0, 1), (-1, -2))``.
      bias: optional ``(C_out,)``.
      stride, dilation: an int or one int per spatial axis.
      padding: an int, one int per axis, one ``(low, high)`` pair per axis (PyTorch's
        numbers), ``"SAME"``/``"VALID"`` (as in ``lax``), or ``"CAUSAL"`` (left only).
      groups: ``C_in`` and ``C_out`` are split into this many groups; ``groups=C_in`` is
        a depthwise convolution.
      padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
      precision: passed to ``lax.conv_general_dilated``.

    Returns:
      ``(N, *out_spatial, C_out)`` with ``out = floor((in + lo + hi - d * (k - 1) - 1) / s) + 1``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.conv(jnp.ones((1, 5, 5, 1)), jnp.ones((3, 3, 1, 1)), padding=1)[0, :, :, 0]
      Array([[4., 6., 6., 6., 4.],
             [6., 9., 9., 9., 6.],
             [6., 9., 9., 9., 6.],
             [6., 9., 9., 9., 6.],
             [4., 6., 6., 6., 4.]], dtype=float32)
    """
    where = "conv"
    n = spatial_rank(where, x, what="x rank")
    _check_kernel(where, x, kernel, n, groups)
    if kernel.shape[-1] % groups:
        fail(where, "output channels (kernel.shape[-1])", f"divisible by groups={groups}",
             kernel.shape[-1])
    check_choice(where, "padding_mode", padding_mode, PADDING_MODES)
    kernel_size = kernel.shape[:n]
    stride = to_tuple(where, "stride", stride, n)
    dilation = to_tuple(where, "dilation", dilation, n)
    pads = resolve_padding(normalize_padding(where, padding, n), x.shape[1:-1], kernel_size,
                           stride, dilation)
    if padding_mode != "zeros":
        x = _pad_pairs(x, pads, padding_mode, where=where)
        pads = ((0, 0),) * n
    check_window_fits(where, x.shape[1:-1], pads, kernel_size, dilation)
    bias = _check_bias(where, bias, kernel.shape[-1])
    plan = conv_plan(x.shape, kernel.shape, stride, pads, dilation, groups, x.dtype, precision)
    return planned_conv(x, kernel.astype(x.dtype), bias, plan, stride, pads, dilation, groups,
                        precision)


def conv_transpose(x, kernel, bias=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                   groups=1, precision=None):
    """N-d transposed convolution with PyTorch's ``ConvTransposeNd`` semantics.

    It is the gradient of ``conv`` with respect to its input: ``padding`` is the padding
    of that forward convolution, and the output size along each axis is

    .. math::
       out = (in - 1) s - 2p + d (k - 1) + op + 1

    with stride :math:`s`, padding :math:`p` (``lo + hi`` when given as a pair),
    dilation :math:`d`, kernel size :math:`k` and ``output_padding`` :math:`op < \\max(s, d)`,
    which picks one of the input sizes a strided forward convolution maps to the same size.

    Args:
      x: input ``(N, *spatial, C_in)``.
      kernel: ``(*kernel_size, C_in, C_out // groups)``; a PyTorch weight
        ``(C_in, C_out // groups, *k)`` becomes this with ``jnp.moveaxis(w, (0, 1), (-2, -1))``.
      bias: optional ``(C_out,)``.
      stride, dilation, output_padding: an int or one int per axis.
      padding: an int, one int per axis or ``(low, high)`` pairs, or ``"VALID"`` (zero).
      groups: grouped transposed convolution; ``C_in`` must be divisible by it.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.conv_transpose(jnp.ones((1, 4, 4, 8)), jnp.ones((3, 3, 8, 2)), stride=2,
      ...                    padding=1, output_padding=1).shape
      (1, 8, 8, 2)
    """
    where = "conv_transpose"
    n = spatial_rank(where, x, what="x rank")
    _check_kernel(where, x, kernel, n, groups, transpose=True)
    kernel_size = kernel.shape[:n]
    stride = to_tuple(where, "stride", stride, n)
    dilation = to_tuple(where, "dilation", dilation, n)
    output_padding = to_tuple(where, "output_padding", output_padding, n, minimum=0)
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            fail(where, "output_padding", f"smaller than stride or dilation ({max(s, d)})",
                 output_padding, "output_padding only resolves sizes a strided conv merges")
    pads = normalize_padding(where, padding, n, strings=("VALID",))
    if pads == "VALID":
        pads = ((0, 0),) * n
    # Padding of the dilated input; negative where ``padding`` exceeds d * (k - 1) (lax crops).
    full = [(d * (k - 1) - lo, d * (k - 1) - hi + op)
            for (lo, hi), k, d, op in zip(pads, kernel_size, dilation, output_padding)]
    out = tuple(transpose_output_size(*args) for args in zip(
        x.shape[1:-1], kernel_size, stride, pads, dilation, output_padding))
    for i, size in enumerate(out):
        if size < 1:
            fail(where, f"output size along spatial axis {i}", "positive", size,
                 "The padding removes more than the transposed convolution adds")
    bias = _check_bias(where, bias, kernel.shape[-1] * groups)
    y = _transpose_by_input_grad(x, kernel, out, stride, pads, dilation, output_padding,
                                 groups, precision)
    if y is not None:
        return _plus_bias(y, bias)
    # (*k, C_in, C_out/g) -> (*k, C_in/g, C_out): per group, swap the in/out roles.
    c_in, c_out_g = kernel.shape[-2:]
    w = kernel.reshape(kernel_size + (groups, c_in // groups, c_out_g))
    w = jnp.moveaxis(w, n, n + 1).reshape(kernel_size + (c_in // groups, groups * c_out_g))
    w = jnp.flip(w, axis=tuple(range(n)))
    y = lax.conv_general_dilated(
        x, w.astype(x.dtype), window_strides=(1,) * n, padding=tuple(full), lhs_dilation=stride,
        rhs_dilation=dilation, dimension_numbers=dimension_numbers(n), feature_group_count=groups,
        precision=precision)
    return _plus_bias(y, bias)


def _plus_bias(y, bias):
    if bias is None:
        return y
    return y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))


def _transpose_by_input_grad(x, kernel, out, stride, pads, dilation, output_padding, groups,
                             precision):
    """The transposed convolution as the input gradient of the convolution it transposes
    (forward kernel ``(*k, C_out / g, C_in)``: the last two axes swapped), when that
    convolution's plan has a non-``lax`` input gradient (``out``: its spatial output size);
    else ``None``."""
    if any(op >= s for op, s in zip(output_padding, stride)):
        return None
    w = jnp.swapaxes(kernel, -1, -2).astype(x.dtype)
    y_shape = (x.shape[0],) + out + (w.shape[-2] * groups,)
    plan = conv_plan(y_shape, w.shape, stride, pads, dilation, groups, x.dtype, precision)
    if plan.input_grad in ("lax", None) or is_lax(plan):
        return None
    return input_grad(x, w, ConvConfig(stride, tuple(pads), dilation, groups, plan), out)


def separable_conv(x, depthwise_kernel, pointwise_kernel, bias=None, *, stride=1, padding=0,
                   dilation=1, padding_mode="zeros", precision=None):
    """Depthwise convolution (``groups = C_in``) followed by a 1x1 pointwise convolution.

    Args:
      x: input ``(N, *spatial, C_in)``.
      depthwise_kernel: ``(*kernel_size, 1, C_in * multiplier)``.
      pointwise_kernel: ``(*(1,) * n, C_in * multiplier, C_out)``.
      bias: optional ``(C_out,)``, added after the pointwise step.
      stride, padding, dilation, padding_mode: as in :func:`conv`, for the depthwise step.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.separable_conv(jnp.ones((2, 9, 9, 4)), jnp.ones((3, 3, 1, 8)),
      ...                    jnp.ones((1, 1, 8, 16)), padding=1).shape
      (2, 9, 9, 16)
    """
    for what, a in (("x", x), ("depthwise_kernel", depthwise_kernel),
                    ("pointwise_kernel", pointwise_kernel)):
        check_array("separable_conv", what, a)
    c_in = x.shape[-1]
    y = conv(x, depthwise_kernel, stride=stride, padding=padding, dilation=dilation,
             groups=c_in, padding_mode=padding_mode, precision=precision)
    return conv(y, pointwise_kernel, bias, precision=precision)


__all__ = ["conv", "conv_transpose", "separable_conv"]
