"""Normalisation ops: batch, group, layer and instance norm on channels-last inputs.

Statistics are computed in float32 (float64 for float64 inputs) whatever the input
dtype, with the two-pass (biased) variance; the output is cast back to ``x.dtype``.
``scale`` and ``bias`` are optional everywhere (``None`` skips the affine step).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax._src import dispatch
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxcnn._checks import (check_array, check_axis_name, check_bool, check_eps, check_float,
                            check_momentum, check_nonempty, check_positive_int, fail,
                            normalize_axes, spatial_rank)
from jaxcnn.ops import _native
from jaxcnn.ops._lowering import decide
from jaxcnn.ops._norm_passes import dual_sums, moments


def stat_dtype(dtype):
    """The dtype statistics are computed in: float64 for float64, else float32."""
    return jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32


def _check_x(where, x, min_ndim=2):
    check_array(where, "x", x)
    check_float(where, "x", x)
    if jnp.ndim(x) < min_ndim:
        fail(where, "x rank", f">= {min_ndim} (batched, channels-last: (N, ..., C))", jnp.ndim(x),
             "Add a batch axis with x[None] if you passed a single example")
    check_nonempty(where, x)


def _param(where, name, p, shape, bshape, dtype):
    """``p`` checked to have ``shape``, cast to ``dtype`` and reshaped to ``bshape``."""
    if p is None:
        return None
    if tuple(jnp.shape(p)) != tuple(shape):
        fail(where, f"{name} shape", f"{tuple(shape)}", tuple(jnp.shape(p)))
    return jnp.asarray(p).astype(dtype).reshape(bshape)


def _channel_shape(x):
    return (1,) * (x.ndim - 1) + (x.shape[-1],)


def _moments(xs, axes):
    """Mean and biased variance (two-pass) over ``axes``, keeping dims."""
    mean = jnp.mean(xs, axis=axes, keepdims=True)
    return mean, jnp.mean(jnp.square(xs - mean), axis=axes, keepdims=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _batch_norm_train(xs, scale, bias, eps, impl):
    """Training batch norm whose statistics are :mod:`~jaxcnn.ops._norm_passes` sums
    (``impl``: ``"matmul"`` or ``"native"``): ``(y, mean, biased var)``, the statistics of
    shape ``(1, ..., 1, C)``.

    Its JVP computes the output tangent with :data:`tangent_p`, a primitive linear in the
    tangents whose transpose rule is the textbook gradient with the same sums, so forward
    mode (any order) and reverse mode both apply. Only ``x`` and the ``C``-vectors are kept
    for the gradient: ``x - mean`` is recomputed inside the elementwise passes, not
    stored."""
    return _batch_norm_train_primal(xs, scale, bias, eps, impl)[0]


def _batch_norm_train_primal(xs, scale, bias, eps, impl):
    """``((y, mean, var), (mean, rsqrt(var + eps)))``, the last two ``(C,)``, for the JVP."""
    bshape = _channel_shape(xs)
    m, v = moments(xs, impl)
    inv = lax.rsqrt(v + eps)
    y = (xs - m.reshape(bshape)) * (inv * scale).reshape(bshape) + bias.reshape(bshape)
    return (y, m.reshape(bshape), v.reshape(bshape)), (m, inv)


@_batch_norm_train.defjvp
def _batch_norm_train_jvp(eps, impl, primals, tangents):
    xs, scale, bias = primals
    dx, dscale, dbias = tangents
    out, (m, inv) = _batch_norm_train_primal(xs, scale, bias, eps, impl)
    axes = tuple(range(xs.ndim - 1))
    n = xs.size // xs.shape[-1]
    bshape = _channel_shape(xs)
    dm = jnp.sum(dx, axis=axes) / n
    dv = jnp.sum((xs - m.reshape(bshape)) * dx, axis=axes) * (2.0 / n)  # sum(x - mean) = 0
    dy = tangent_p.bind(dx, dscale, dbias, xs, m, inv, scale, impl=impl)
    return out, (dy, dm.reshape(bshape), dv.reshape(bshape))


def _tangent(dx, dscale, dbias, x, mean, inv, scale, impl=None):
    """The tangent of ``y = (x - mean) * inv * scale + bias`` (``C``-vectors ``mean``,
    ``inv = rsqrt(var + eps)`` and ``scale``) for tangents ``dx``, ``dscale``, ``dbias``:
    ``(dx - dm) a + xc (dinv scale + inv dscale) + dbias`` with ``xc = x - mean``,
    ``a = inv scale``, ``dm = mean(dx)`` and ``dinv = -inv^3 mean(xc dx)``; linear in the
    tangents."""
    del impl
    axes = tuple(range(x.ndim - 1))
    n = x.size // x.shape[-1]
    bshape = _channel_shape(x)
    xc = x - mean.reshape(bshape)
    dm = jnp.sum(dx, axis=axes) / n
    dinv = -(inv * inv * inv) * (jnp.sum(xc * dx, axis=axes) / n)
    a = inv * scale
    return (dx * a.reshape(bshape) + xc * (dinv * scale + inv * dscale).reshape(bshape)
            + (dbias - a * dm).reshape(bshape))


def _tangent_transpose(g, dx, dscale, dbias, x, mean, inv, scale, *, impl):
    """The textbook batch-norm gradient: the cotangent ``g`` summed by
    :func:`~jaxcnn.ops._norm_passes.dual_sums`, then one elementwise pass for the input's
    gradient."""
    n = x.size // x.shape[-1]
    bshape = _channel_shape(x)
    sum_g, sum_gx = dual_sums(g, x, mean, impl)
    xc = x - mean.reshape(bshape)
    grads = (((inv * scale).reshape(bshape)
              * (g - (sum_g.reshape(bshape) + xc * (inv * inv * sum_gx).reshape(bshape)) / n)),
             inv * sum_gx, sum_g)
    return [grad.astype(arg.aval.dtype) if ad.is_undefined_primal(arg) else None
            for grad, arg in zip(grads, (dx, dscale, dbias))] + [None] * 4


tangent_p = Primitive("jaxcnn_batch_norm_tangent")
"""``_tangent(dx, dscale, dbias, x, mean, inv, scale)`` as a primitive, linear in its first
three operands, whose transpose is :func:`_tangent_transpose`. JAX's own transpose of the
formula sums the cotangent with XLA's reductions; with its broadcasts written as matrix
products it gives the same sums, but XLA then fuses the cotangent's producers (ReLU and
pooling gradients) into each of the cotangent's three readers and computes them three
times (``benchmarks/batch_norm.py``). Its JVP and batching rules apply JAX's to
:func:`_tangent`."""
tangent_p.def_abstract_eval(lambda dx, *_, impl: jax.core.ShapedArray(dx.shape, dx.dtype))
tangent_p.def_impl(functools.partial(dispatch.apply_primitive, tangent_p))
mlir.register_lowering(tangent_p, mlir.lower_fun(_tangent, multiple_results=False))
ad.primitive_jvps[tangent_p] = lambda primals, tangents, impl: jax.jvp(
    _tangent, tuple(primals), tuple(ad.instantiate_zeros(t) for t in tangents))
ad.primitive_transposes[tangent_p] = _tangent_transpose
batching.primitive_batchers[tangent_p] = lambda args, dims, impl: (
    jax.vmap(_tangent, in_axes=dims)(*args), 0)


def _affine(y, scale, bias):
    if scale is not None:
        y = y * scale
    if bias is not None:
        y = y + bias
    return y


def batch_norm(x, scale=None, bias=None, mean=None, var=None, *, train, momentum=0.9, eps=1e-5,
               axis_name=None):
    """Batch normalisation (Ioffe & Szegedy, 2015) over all axes but the channels.

    .. math::
       y = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}\\, \\gamma + \\beta, \\qquad
       \\hat\\mu \\leftarrow m\\, \\hat\\mu + (1 - m)\\, \\mu, \\qquad
       \\hat\\sigma^2 \\leftarrow m\\, \\hat\\sigma^2 + (1 - m)\\, \\frac{n}{n - 1}\\sigma^2

    with scale :math:`\\gamma` (``scale``), bias :math:`\\beta` (``bias``), ``eps``
    :math:`\\epsilon` and ``momentum`` :math:`m`. With ``train=True``, :math:`\\mu` and
    :math:`\\sigma^2` are the mean and biased variance of the batch over its
    :math:`n` values per channel, and the running statistics :math:`\\hat\\mu`
    (``mean``) and :math:`\\hat\\sigma^2` (``var``) are updated with the unbiased
    variance, as PyTorch does. ``momentum`` weighs the *old* value:
    ``new = momentum * old + (1 - momentum) * batch``, so PyTorch's ``momentum=0.1`` is
    ``momentum=0.9`` here. With ``train=False`` the running statistics normalise and are
    returned unchanged.

    Args:
      x: ``(N, ..., C)``, channels last (``(N, C)`` for features).
      scale, bias: ``(C,)`` or ``None``.
      mean, var: running statistics ``(C,)``; required when ``train=False``. When
        ``train=True`` and they are ``None``, ``None`` is returned in their place.
      train: Python bool, keyword-only and required.
      momentum: in ``[0, 1]``; the weight of the old running statistics.
      eps: added to the variance.
      axis_name: a mapped axis name (or tuple of names) of ``jax.vmap``/``pmap``/
        ``shard_map``; the batch statistics are averaged over it with ``lax.pmean``, so
        data-parallel shards of equal size normalise with the statistics of the whole
        batch.

    Returns:
      ``(y, new_mean, new_var)``: ``y`` in ``x.dtype``; the statistics in the dtype of
      ``mean``/``var``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> x = jnp.array([[1.0], [3.0]])
      >>> y, m, v = ops.batch_norm(x, mean=jnp.zeros(1), var=jnp.ones(1), train=True, eps=0.0)
      >>> y[:, 0], m, v
      (Array([-1.,  1.], dtype=float32), Array([0.2], dtype=float32), Array([1.1], dtype=float32))
    """
    where = "batch_norm"
    _check_x(where, x)
    check_axis_name(where, axis_name)
    train = check_bool(where, "train", train, "a Python bool (it is static: not a traced array)",
                       python_only=True)
    check_momentum(where, momentum)
    eps = check_eps(where, eps)
    sd = stat_dtype(x.dtype)
    c = x.shape[-1]
    bshape = _channel_shape(x)
    scale = _param(where, "scale", scale, (c,), bshape, sd)
    bias = _param(where, "bias", bias, (c,), bshape, sd)
    xs = x.astype(sd)
    axes = tuple(range(x.ndim - 1))
    if not train:
        if mean is None or var is None:
            fail(where, "mean and var", "arrays of shape (C,) when train=False",
                 (None if mean is None else "array", None if var is None else "array"),
                 "Pass the running statistics (the layer's state)")
        m = _param(where, "mean", mean, (c,), bshape, sd)
        v = _param(where, "var", var, (c,), bshape, sd)
        y = (xs - m) * (lax.rsqrt(v + eps) * (1.0 if scale is None else scale))
        return _affine(y, None, bias).astype(x.dtype), mean, var
    n = math.prod(x.shape[:-1]) * (1 if axis_name is None else lax.axis_size(axis_name))
    if n < 2:
        fail(where, "number of values per channel", "more than 1 when train=True", n,
             "Use a batch of at least 2 examples (or train=False)")
    impl = decide("norm.batch", x.dtype, native=_native.available()) if axis_name is None \
        else "lax"
    if impl != "lax":
        y, m, v = _batch_norm_train(xs, jnp.ones((c,), sd) if scale is None else scale.reshape(c),
                                    jnp.zeros((c,), sd) if bias is None else bias.reshape(c),
                                    eps, impl)
        y = y.astype(x.dtype)
    else:
        m = jnp.mean(xs, axis=axes, keepdims=True)
        if axis_name is not None:
            m = lax.pmean(m, axis_name)
        v = jnp.mean(jnp.square(xs - m), axis=axes, keepdims=True)
        if axis_name is not None:
            v = lax.pmean(v, axis_name)
        y = (xs - m) * (lax.rsqrt(v + eps) * (1.0 if scale is None else scale))
        y = _affine(y, None, bias).astype(x.dtype)
    if mean is None or var is None:
        return y, None, None
    old_m = _param(where, "mean", mean, (c,), (c,), sd)
    old_v = _param(where, "var", var, (c,), (c,), sd)
    batch_m = lax.stop_gradient(m.reshape(c))
    batch_v = lax.stop_gradient(v.reshape(c)) * (n / (n - 1))
    new_m = momentum * old_m + (1.0 - momentum) * batch_m
    new_v = momentum * old_v + (1.0 - momentum) * batch_v
    return y, new_m.astype(jnp.result_type(mean)), new_v.astype(jnp.result_type(var))


def group_norm(x, num_groups, scale=None, bias=None, eps=1e-5):
    """Group normalisation (Wu & He, 2018): per example, over the spatial axes and the
    channels of each of ``num_groups`` contiguous channel groups (PyTorch's ``GroupNorm``).

    .. math::
       y = \\frac{x - \\mu_{n,g}}{\\sqrt{\\sigma^2_{n,g} + \\epsilon}}\\, \\gamma_c + \\beta_c

    where channel :math:`c` is in group :math:`g = \\lfloor c / (C / G) \\rfloor`,
    :math:`G` is ``num_groups``, :math:`\\gamma` is ``scale`` and :math:`\\beta` ``bias``.
    ``num_groups=1`` normalises each example over everything (a layer norm over
    ``(*spatial, C)``); ``num_groups=C`` is an instance norm.

    Args:
      x: ``(N, ..., C)``.
      num_groups: a positive int dividing ``C``.
      scale, bias: ``(C,)`` or ``None``.
      eps: added to the variance.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> x = jnp.array([[[0.0, 2.0, 4.0, 8.0]]])  # (N=1, L=1, C=4), groups (0, 2) and (4, 8)
      >>> ops.group_norm(x, 2, eps=0.0)
      Array([[[-1.,  1., -1.,  1.]]], dtype=float32)
    """
    where = "group_norm"
    _check_x(where, x)
    eps = check_eps(where, eps)
    c = x.shape[-1]
    check_positive_int(where, "num_groups", num_groups)
    if c % num_groups:
        fail(where, "number of channels (x.shape[-1])", f"divisible by num_groups={num_groups}", c)
    sd = stat_dtype(x.dtype)
    xs = x.astype(sd).reshape(x.shape[:-1] + (num_groups, c // num_groups))
    axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)
    mean, var = _moments(xs, axes)
    y = ((xs - mean) * lax.rsqrt(var + eps)).reshape(x.shape)
    bshape = _channel_shape(x)
    y = _affine(y, _param(where, "scale", scale, (c,), bshape, sd),
                _param(where, "bias", bias, (c,), bshape, sd))
    return y.astype(x.dtype)


def layer_norm(x, scale=None, bias=None, eps=1e-5, axes=-1):
    """Layer normalisation (Ba et al., 2016): per example, over ``axes``.

    .. math::
       y = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}}\\, \\gamma + \\beta

    with mean :math:`\\mu` and biased variance :math:`\\sigma^2` over ``axes``,
    :math:`\\gamma` ``scale`` and :math:`\\beta` ``bias``.

    Args:
      x: ``(N, ...)``.
      scale, bias: ``None`` or arrays of the shape of the normalised axes,
        ``tuple(x.shape[a] for a in sorted(axes))``, e.g. ``(C,)`` for ``axes=-1`` (as
        in transformers) or ``(H, W, C)`` for ``axes=(-3, -2, -1)`` (PyTorch's
        ``LayerNorm([C, H, W])`` in channels-last order).
      eps: added to the variance.
      axes: an int or a tuple of ints counted on the *batched* ``x`` as in numpy
        (negative axes count from the end, ``-1`` is the channels); the batch axis 0
        cannot be normalised over. ``None`` means every axis but the batch.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.layer_norm(jnp.array([[1.0, 3.0], [0.0, 10.0]]), eps=0.0)
      Array([[-1.,  1.],
             [-1.,  1.]], dtype=float32)
    """
    where = "layer_norm"
    _check_x(where, x)
    eps = check_eps(where, eps)
    axes = normalize_axes(where, axes, x.ndim)
    sd = stat_dtype(x.dtype)
    mean, var = _moments(x.astype(sd), axes)
    y = (x.astype(sd) - mean) * lax.rsqrt(var + eps)
    shape = tuple(x.shape[a] for a in axes)
    bshape = tuple(x.shape[a] if a in axes else 1 for a in range(x.ndim))
    y = _affine(y, _param(where, "scale", scale, shape, bshape, sd),
                _param(where, "bias", bias, shape, bshape, sd))
    return y.astype(x.dtype)


def instance_norm(x, scale=None, bias=None, eps=1e-5):
    """Instance normalisation (Ulyanov et al., 2016): per example and channel, over the
    spatial axes (PyTorch's ``InstanceNormNd`` without running statistics).

    .. math::
       y = \\frac{x - \\mu_{n,c}}{\\sqrt{\\sigma^2_{n,c} + \\epsilon}}\\, \\gamma_c + \\beta_c

    Args:
      x: ``(N, *spatial, C)`` with 1, 2 or 3 spatial axes.
      scale, bias: ``(C,)`` or ``None``.
      eps: added to the variance.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> ops.instance_norm(jnp.array([[[1.0, 5.0], [3.0, 9.0]]]), eps=0.0)
      Array([[[-1., -1.],
              [ 1.,  1.]]], dtype=float32)
    """
    where = "instance_norm"
    check_array(where, "x", x)
    check_float(where, "x", x)
    spatial_rank(where, x, what="x rank")
    eps = check_eps(where, eps)
    sd = stat_dtype(x.dtype)
    mean, var = _moments(x.astype(sd), tuple(range(1, x.ndim - 1)))
    y = (x.astype(sd) - mean) * lax.rsqrt(var + eps)
    c, bshape = x.shape[-1], _channel_shape(x)
    y = _affine(y, _param(where, "scale", scale, (c,), bshape, sd),
                _param(where, "bias", bias, (c,), bshape, sd))
    return y.astype(x.dtype)


__all__ = ["batch_norm", "group_norm", "layer_norm", "instance_norm"]
