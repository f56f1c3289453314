"""Convolution layers: one N-d factory each, the rank taken from ``in_shape``."""

from __future__ import annotations

import jax

from jaxcnn import initializers as inits
from jaxcnn import ops
from jaxcnn._checks import check_bool, check_choice, fail, is_int, to_tuple
from jaxcnn.layers._base import (check_batched, check_initializer, check_spatial_shape,
                                 initialize, layer)
from jaxcnn.ops._padding import PADDING_MODES, normalize_padding


def _rank_hint(*args):
    for a in args:
        if isinstance(a, (tuple, list)):
            return len(a)
    return 1


def fixed_rank(*args):
    """The spatial rank the tuples among ``args`` fix (their length), or ``None`` when every
    argument is an int or a string (the layer then serves any rank)."""
    for a in args:
        if isinstance(a, (tuple, list)) and len(a) in (1, 2, 3):
            return len(a)
    return None


def check_geometry(where, kernel_size, stride=1, dilation=1, padding=0, strings=None):
    """Early, shape-free checks of the usual window arguments (in the factory)."""
    for what, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if isinstance(value, (tuple, list)) and len(value) not in (1, 2, 3):
            fail(where, what, "an int or a tuple of 1, 2 or 3 ints", value)
    n = _rank_hint(kernel_size, stride, dilation)
    to_tuple(kernel_size, n, where, "kernel_size")
    to_tuple(stride, n, where, "stride")
    to_tuple(dilation, n, where, "dilation")
    if strings is None:
        normalize_padding(padding, _rank_hint(padding) if not isinstance(padding, str) else n, where)
    else:
        normalize_padding(padding, _rank_hint(padding) if not isinstance(padding, str) else n,
                          where, strings=strings)


def _check_channels(where, out_channels, groups):
    if not is_int(out_channels) or out_channels < 1:
        fail(where, "out_channels", "a positive int", out_channels)
    if not is_int(groups) or groups < 1:
        fail(where, "groups", "a positive int", groups)
    if out_channels % groups:
        fail(where, "out_channels", f"divisible by groups={groups}", out_channels)


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
    use_bias = check_bool(where, "use_bias", use_bias)
    check_geometry(where, kernel_size, stride, dilation, padding)
    rank = fixed_rank(kernel_size, stride, dilation, padding)
    check_choice(padding_mode, PADDING_MODES, where, "padding_mode")
    kernel_init = check_initializer(where, "kernel_init", kernel_init, inits.he_normal())
    bias_init = check_initializer(where, "bias_init", bias_init, inits.zeros)

    def init_params(key, in_shape):
        n = check_spatial_shape(in_shape, where, rank)
        _check_in_channels(where, in_shape, groups)
        ks = to_tuple(kernel_size, n, where, "kernel_size")
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
    use_bias = check_bool(where, "use_bias", use_bias)
    check_geometry(where, kernel_size, stride, dilation, padding, strings=("VALID",))
    rank = fixed_rank(kernel_size, stride, dilation, padding, output_padding)
    kernel_init = check_initializer(where, "kernel_init", kernel_init, inits.he_normal())
    bias_init = check_initializer(where, "bias_init", bias_init, inits.zeros)

    def init_params(key, in_shape):
        n = check_spatial_shape(in_shape, where, rank)
        _check_in_channels(where, in_shape, groups)
        ks = to_tuple(kernel_size, n, where, "kernel_size")
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
    _check_channels(where, out_channels, 1)
    use_bias = check_bool(where, "use_bias", use_bias)
    if not is_int(depth_multiplier) or depth_multiplier < 1:
        fail(where, "depth_multiplier", "a positive int", depth_multiplier)
    check_geometry(where, kernel_size, stride, dilation, padding)
    rank = fixed_rank(kernel_size, stride, dilation, padding)
    check_choice(padding_mode, PADDING_MODES, where, "padding_mode")
    kernel_init = check_initializer(where, "kernel_init", kernel_init, inits.he_normal())
    bias_init = check_initializer(where, "bias_init", bias_init, inits.zeros)

    def init_params(key, in_shape):
        n = check_spatial_shape(in_shape, where, rank)
        ks = to_tuple(kernel_size, n, where, "kernel_size")
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
    use_bias = check_bool(where, "use_bias", use_bias)
    if not is_int(depth_multiplier) or depth_multiplier < 1:
        fail(where, "depth_multiplier", "a positive int", depth_multiplier)
    check_geometry(where, kernel_size, stride, dilation, padding)
    rank = fixed_rank(kernel_size, stride, dilation, padding)
    check_choice(padding_mode, PADDING_MODES, where, "padding_mode")
    kernel_init = check_initializer(where, "kernel_init", kernel_init, inits.he_normal())
    bias_init = check_initializer(where, "bias_init", bias_init, inits.zeros)

    def init_params(key, in_shape):
        n = check_spatial_shape(in_shape, where, rank)
        ks = to_tuple(kernel_size, n, where, "kernel_size")
        c_out = in_shape[-1] * depth_multiplier
        return _kernel_and_bias(where, key, ks + (1, c_out), use_bias, kernel_init, bias_init)

    def forward(params, state, x, train, key):
        check_batched(where, x, params["kernel"].ndim - 2)
        return ops.conv(x, params["kernel"], params.get("bias"), stride=stride, padding=padding,
                        dilation=dilation, groups=x.shape[-1], padding_mode=padding_mode), state

    return layer(where, init_params, forward)
