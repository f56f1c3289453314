"""Normalisation layers: batch norm (with running statistics as state), group, layer
and instance norm. Params ``{"scale", "bias"}`` (float32); batch-norm state
``{"mean", "var"}``."""

from __future__ import annotations

import jax

from jaxcnn import initializers as inits
from jaxcnn import ops
from jaxcnn._checks import (check_axis_name, check_bool, check_eps, check_momentum,
                            check_positive_int, fail, is_int, normalize_axes)
from jaxcnn.layers._base import check_initializer, check_spatial_shape, initialize, layer


def _affine_params(where, key, shape, use_scale, use_bias, scale_init=inits.ones,
                   bias_init=inits.zeros):
    s_key, b_key = jax.random.split(key)
    params = {}
    if use_scale:
        params["scale"] = initialize(where, "scale_init", scale_init, s_key, shape)
    if use_bias:
        params["bias"] = initialize(where, "bias_init", bias_init, b_key, shape)
    return params


def batch_norm(momentum=0.9, eps=1e-5, use_scale=True, use_bias=True, axis_name=None,
               scale_init=None, bias_init=None):
    """Batch normalisation over every axis but the channels; see :func:`jaxcnn.ops.batch_norm`.

    ``momentum`` weighs the old running statistics:
    ``new = momentum * old + (1 - momentum) * batch`` (PyTorch's default ``momentum=0.1``
    is ``0.9`` here); the running variance is updated with the unbiased batch variance.

    Params: ``scale`` ``(C,)`` (``scale_init``, default ones) when ``use_scale``,
    ``bias`` ``(C,)`` (``bias_init``, default zeros) when ``use_bias``. State: ``mean``
    (zeros) and ``var`` (ones). ``apply(..., train=True)`` normalises with the batch
    statistics and returns the updated state; ``train=False`` normalises with the running
    statistics and returns the state unchanged. Under ``jax.vmap`` over a leading axis
    (an ensemble) each member keeps its own statistics; give ``axis_name`` to average the
    batch statistics over a data-parallel mapped axis instead.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn import batch_norm
      >>> bn = batch_norm()
      >>> out_shape, params, state = bn.init(jax.random.key(0), (4, 4, 3))
      >>> sorted(params), sorted(state), out_shape
      (['bias', 'scale'], ['mean', 'var'], (4, 4, 3))
      >>> y, state = bn.apply(params, state, jnp.ones((2, 4, 4, 3)), train=True)
      >>> state["mean"]
      Array([0.1, 0.1, 0.1], dtype=float32)
    """
    where = "batch_norm"
    check_momentum(where, momentum)
    check_eps(where, eps)
    check_axis_name(where, axis_name)
    check_bool(where, "use_scale", use_scale)
    check_bool(where, "use_bias", use_bias)
    scale_init = check_initializer(where, "scale_init", scale_init, inits.ones)
    bias_init = check_initializer(where, "bias_init", bias_init, inits.zeros)

    def init_params(key, in_shape):
        c = in_shape[-1]
        params = _affine_params(where, key, (c,), use_scale, use_bias, scale_init, bias_init)
        return params, {"mean": inits.zeros(key, (c,)), "var": inits.ones(key, (c,))}

    def forward(params, state, x, train, key):
        y, mean, var = ops.batch_norm(x, params.get("scale"), params.get("bias"), state["mean"],
                                      state["var"], train=train, momentum=momentum, eps=eps,
                                      axis_name=axis_name)
        return y, ({"mean": mean, "var": var} if train else state)

    return layer(where, init_params, forward)


def group_norm(num_groups, eps=1e-5, affine=True):
    """Group normalisation (PyTorch's ``GroupNorm``); see :func:`jaxcnn.ops.group_norm`.

    Params (when ``affine``): ``scale`` (ones) and ``bias`` (zeros), ``(C,)``. The
    number of channels must be divisible by ``num_groups``.

    Example:
      >>> import jax
      >>> from jaxcnn import group_norm
      >>> group_norm(4).init(jax.random.key(0), (8, 8, 16))[1]["scale"].shape
      (16,)
    """
    where = "group_norm"
    check_positive_int(where, "num_groups", num_groups)
    check_eps(where, eps)
    check_bool(where, "affine", affine)

    def init_params(key, in_shape):
        if in_shape[-1] % num_groups:
            fail(where, "number of channels (in_shape[-1])",
                 f"divisible by num_groups={num_groups}", in_shape[-1])
        return _affine_params(where, key, (in_shape[-1],), affine, affine), {}

    def forward(params, state, x, train, key):
        return ops.group_norm(x, num_groups, params.get("scale"), params.get("bias"), eps), state

    return layer(where, init_params, forward)


def layer_norm(eps=1e-5, axes=-1, affine=True):
    """Layer normalisation over ``axes``; see :func:`jaxcnn.ops.layer_norm`.

    ``axes`` count on the *batched* input, as numpy does (``-1``: the channels, as in
    transformers; ``(-3, -2, -1)``: ``(H, W, C)`` of an image, PyTorch's
    ``LayerNorm([C, H, W])``; ``None``: every axis but the batch). Params (when
    ``affine``): ``scale`` (ones) and ``bias`` (zeros) of the shape of the normalised axes.

    Example:
      >>> import jax
      >>> from jaxcnn import layer_norm
      >>> layer_norm(axes=(-3, -2, -1)).init(jax.random.key(0), (8, 8, 16))[1]["scale"].shape
      (8, 8, 16)
    """
    where = "layer_norm"
    check_eps(where, eps)
    check_bool(where, "affine", affine)
    if axes is not None and not is_int(axes) and not (
            isinstance(axes, (tuple, list)) and axes and all(is_int(a) for a in axes)):
        fail(where, "axes", "an int, a non-empty tuple of ints or None", axes, exc=TypeError)

    def init_params(key, in_shape):
        shape = (1,) + in_shape
        norm = normalize_axes(where, axes, len(shape))
        return _affine_params(where, key, tuple(shape[a] for a in norm), affine, affine), {}

    def forward(params, state, x, train, key):
        return ops.layer_norm(x, params.get("scale"), params.get("bias"), eps, axes), state

    return layer(where, init_params, forward)


def instance_norm(eps=1e-5, affine=True):
    """Instance normalisation (per example and channel, over the spatial axes); see
    :func:`jaxcnn.ops.instance_norm`. No running statistics.

    Params (when ``affine``): ``scale`` (ones) and ``bias`` (zeros), ``(C,)``.

    Example:
      >>> import jax
      >>> from jaxcnn import instance_norm
      >>> instance_norm().init(jax.random.key(0), (32, 3))[0]
      (32, 3)
    """
    where = "instance_norm"
    check_eps(where, eps)
    check_bool(where, "affine", affine)

    def init_params(key, in_shape):
        check_spatial_shape(where, in_shape)
        return _affine_params(where, key, (in_shape[-1],), affine, affine), {}

    def forward(params, state, x, train, key):
        return ops.instance_norm(x, params.get("scale"), params.get("bias"), eps), state

    return layer(where, init_params, forward)
