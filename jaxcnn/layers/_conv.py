"""Convolution layers: one N-d factory each, the rank taken from ``in_shape``."""

from __future__ import annotations

import jax

from jaxcnn import initializers as inits
from jaxcnn import ops
from jaxcnn._checks import check_bool, check_choice, check_positive_int, fail, to_tuple
from jaxcnn._window import PADDING_MODES, PADDING_STRINGS, check_window
from jaxcnn.layers._base import (check_batched, check_initializer, check_spatial_shape,
                                 initialize, layer)


def _check_channels(where, out_channels, groups):
    check_positive_int(where, "out_channels", out_channels)
    check_positive_int(where, "groups", groups)
    if out_channels % groups:
        fail(where, "out_channels", f"divisible by groups={groups}", out_channels)


def _check_conv_args(where, kernel_size, stride, padding, dilation, padding_mode, use_bias,
                     kernel_init, bias_init, strings=PADDING_STRINGS, **more):
    """The factory checks every convolution layer shares: the window, ``padding_mode``
    (``None``: none taken), ``use_bias`` and the initialisers. Returns the rank the window
    fixes (``None``: any), ``use_bias`` and the initialisers (default He normal kernel,
    zero bias)."""
    rank = check_window(where, kernel_size, stride, padding, dilation, strings=strings,
                        pooling=False, **more)
    if padding_mode is not None:
        check_choice(where, "padding_mode", padding_mode, PADDING_MODES)
    return (rank, check_bool(where, "use_bias", use_bias),
            check_initializer(where, "kernel_init", kernel_init, inits.he_normal()),
            check_initializer(where, "bias_init", bias_init, inits.zeros))


def _kernel_size(where, in_shape, rank, kernel_size):
    """The spatial rank of ``in_shape`` (checked against ``rank``) and the kernel size."""
    n = check_spatial_shape(where, in_shape, rank)
    return n, to_tuple(where, "kernel_size", kernel_size, n)


def _check_in_channels(where, in_shape, groups):
    if in_shape[-1] % groups:
        fail(where, "input channels (in_shape[-1])", f"divisible by groups={groups}", in_shape[-1])


def _kernel_and_bias(where, key, kernel_shape, use_bias, kernel_init, bias_init):
    """``({"kernel", "bias"}, {})`` for a kernel of ``kernel_shape`` (bias: its last axis)."""
    k_key, b_key = jax.random.split(key)
    params = {"kernel": initialize(where, "kernel_init", kernel_init, k_key, kernel_shape)}
    if use_bias:
        params["bias"] = initialize(where, "bias_init", bias_init, b_key, kernel_shape[-1:])
    return params, {}


def conv(out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
         padding_mode="zeros", use_bias=True, kernel_init=None, bias_init=None):
    """N-d convolution layer; see :func:`jaxcnn.ops.conv` for the arithmetic.

    Params: ``kernel`` ``(*kernel_size, C_in // groups, out_channels)`` initialised with
    ``kernel_init`` (default :func:`jaxcnn.initializers.he_normal`), ``bias``
    ``(out_channels,)`` (default zeros) when ``use_bias``.

    Example:
      >>> import jax
      >>> from jaxcnn import conv
      >>> out_shape, params, state = conv(16, 3, padding=1).init(jax.random.key(0), (28, 28, 1))
      >>> out_shape, params["kernel"].shape
      ((28, 28, 16), (3, 3, 1, 16))
    """
    where = "conv"
    _check_channels(where, out_channels, groups)
    rank, use_bias, kernel_init, bias_init = _check_conv_args(
        where, kernel_size, stride, padding, dilation, padding_mode, use_bias, kernel_init,
        bias_init)

    def init_params(key, in_shape):
        _, ks = _kernel_size(where, in_shape, rank, kernel_size)
        _check_in_channels(where, in_shape, groups)
        return _kernel_and_bias(where, key, ks + (in_shape[-1] // groups, out_channels), use_bias,
                                kernel_init, bias_init)

    def forward(params, state, x, train, key):
        check_batched(where, x, params["kernel"].ndim - 2)
        return ops.conv(x, params["kernel"], params.get("bias"), stride=stride, padding=padding,
                        dilation=dilation, groups=groups, padding_mode=padding_mode), state

    return layer(where, init_params, forward)


def conv_transpose(out_channels, kernel_size, stride=1, padding=0, output_padding=0, dilation=1,
                   groups=1, use_bias=True, kernel_init=None, bias_init=None):
    """N-d transposed convolution layer (PyTorch's ``ConvTransposeNd`` semantics).

    Params: ``kernel`` ``(*kernel_size, C_in, out_channels // groups)``, ``bias``.

    Example:
      >>> import jax
      >>> from jaxcnn import conv_transpose
      >>> conv_transpose(8, 4, stride=2, padding=1).init(jax.random.key(0), (7, 7, 16))[0]
      (14, 14, 8)
    """
    where = "conv_transpose"
    _check_channels(where, out_channels, groups)
    rank, use_bias, kernel_init, bias_init = _check_conv_args(
        where, kernel_size, stride, padding, dilation, None, use_bias, kernel_init, bias_init,
        ("VALID",), output_padding=output_padding)

    def init_params(key, in_shape):
        _, ks = _kernel_size(where, in_shape, rank, kernel_size)
        _check_in_channels(where, in_shape, groups)
        params, state = _kernel_and_bias(where, key, ks + (in_shape[-1], out_channels // groups),
                                         False, kernel_init, bias_init)
        if use_bias:  # the bias has all out_channels, the kernel's last axis one group's
            params["bias"] = initialize(where, "bias_init", bias_init, jax.random.split(key)[1],
                                        (out_channels,))
        return params, state

    def forward(params, state, x, train, key):
        check_batched(where, x, params["kernel"].ndim - 2)
        return ops.conv_transpose(x, params["kernel"], params.get("bias"), stride=stride,
                                  padding=padding, output_padding=output_padding,
                                  dilation=dilation, groups=groups), state

    return layer(where, init_params, forward)


def separable_conv(out_channels, kernel_size, stride=1, padding=0, dilation=1,
                   depth_multiplier=1, padding_mode="zeros", use_bias=True, kernel_init=None,
                   bias_init=None):
    """Depthwise-separable convolution (Xception/MobileNet): depthwise then pointwise.

    Params: ``depthwise_kernel`` ``(*kernel_size, 1, C_in * depth_multiplier)``,
    ``pointwise_kernel`` ``(1, ..., C_in * depth_multiplier, out_channels)``, ``bias``.
    """
    where = "separable_conv"
    check_positive_int(where, "out_channels", out_channels)
    check_positive_int(where, "depth_multiplier", depth_multiplier)
    rank, use_bias, kernel_init, bias_init = _check_conv_args(
        where, kernel_size, stride, padding, dilation, padding_mode, use_bias, kernel_init,
        bias_init)

    def init_params(key, in_shape):
        n, ks = _kernel_size(where, in_shape, rank, kernel_size)
        mid = in_shape[-1] * depth_multiplier
        d_key, p_key, b_key = jax.random.split(key, 3)
        params = {"depthwise_kernel": initialize(where, "kernel_init", kernel_init, d_key,
                                                 ks + (1, mid)),
                  "pointwise_kernel": initialize(where, "kernel_init", kernel_init, p_key,
                                                 (1,) * n + (mid, out_channels))}
        if use_bias:
            params["bias"] = initialize(where, "bias_init", bias_init, b_key, (out_channels,))
        return params, {}

    def forward(params, state, x, train, key):
        check_batched(where, x, params["depthwise_kernel"].ndim - 2)
        return ops.separable_conv(x, params["depthwise_kernel"], params["pointwise_kernel"],
                                  params.get("bias"), stride=stride, padding=padding,
                                  dilation=dilation, padding_mode=padding_mode), state

    return layer(where, init_params, forward)


def depthwise_conv(kernel_size, stride=1, padding=0, dilation=1, depth_multiplier=1,
                   padding_mode="zeros", use_bias=True, kernel_init=None, bias_init=None):
    """Depthwise convolution: each input channel convolved with its own
    ``depth_multiplier`` filters (``conv`` with ``groups = C_in``).

    Params: ``kernel`` ``(*kernel_size, 1, C_in * depth_multiplier)``, ``bias``.
    """
    where = "depthwise_conv"
    check_positive_int(where, "depth_multiplier", depth_multiplier)
    rank, use_bias, kernel_init, bias_init = _check_conv_args(
        where, kernel_size, stride, padding, dilation, padding_mode, use_bias, kernel_init,
        bias_init)

    def init_params(key, in_shape):
        n, ks = _kernel_size(where, in_shape, rank, kernel_size)
        c_out = in_shape[-1] * depth_multiplier
        return _kernel_and_bias(where, key, ks + (1, c_out), use_bias, kernel_init, bias_init)

    def forward(params, state, x, train, key):
        check_batched(where, x, params["kernel"].ndim - 2)
        return ops.conv(x, params["kernel"], params.get("bias"), stride=stride, padding=padding,
                        dilation=dilation, groups=x.shape[-1], padding_mode=padding_mode), state

    return layer(where, init_params, forward)
