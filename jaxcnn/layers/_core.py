"""Dense, shape, activation and dropout layers."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxcnn import initializers as inits
from jaxcnn._checks import check_bool, check_positive_int, check_rate, check_real, fail, is_int
from jaxcnn.layers._base import check_initializer, initialize, is_multi, layer, stateless


def dense(out_features, use_bias=True, kernel_init=None, bias_init=None):
    """Fully connected layer on the last axis: ``y = x @ kernel + bias``.

    Params: ``kernel`` ``(in_features, out_features)`` (default He normal), ``bias``.

    Example:
      >>> import jax
      >>> from jaxcnn import dense
      >>> dense(10).init(jax.random.key(0), (84,))[0]
      (10,)
    """
    where = "dense"
    check_positive_int(where, "out_features", out_features)
    use_bias = check_bool(where, "use_bias", use_bias)
    kernel_init = check_initializer(where, "kernel_init", kernel_init, inits.he_normal())
    bias_init = check_initializer(where, "bias_init", bias_init, inits.zeros)

    def init_params(key, in_shape):
        if is_multi(in_shape):
            fail(where, "in_shape", "one shape (a single input)", in_shape,
                 "Merge branches first, e.g. with fan_in_concat()")
        k_key, b_key = jax.random.split(key)
        params = {"kernel": initialize(where, "kernel_init", kernel_init, k_key,
                                       (in_shape[-1], out_features))}
        if use_bias:
            params["bias"] = initialize(where, "bias_init", bias_init, b_key, (out_features,))
        return params, {}

    def forward(params, state, x, train, key):
        kernel = params["kernel"]
        if x.shape[-1] != kernel.shape[0]:
            fail(where, "input features (x.shape[-1])", f"{kernel.shape[0]} as at init",
                 x.shape[-1], "Did you forget flatten() before dense?" if x.ndim > 2 else "")
        y = jnp.dot(x, kernel.astype(x.dtype))
        if "bias" in params:
            y = y + params["bias"].astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
        return y, state

    return layer(where, init_params, forward)


def flatten(channels_first=False):
    """Flattens everything but the batch axis: ``(N, *rest) -> (N, prod(rest))``.

    ``channels_first=True`` flattens ``(N, *spatial, C)`` in PyTorch's ``(C, *spatial)``
    order (moving the channels first), so a ported ``Linear`` weight needs no permutation;
    the layer is then named ``flatten_channels_first``. (:func:`jaxcnn.from_torch`
    permutes the weights for either order.)

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import flatten
      >>> x = jnp.arange(6.0).reshape(1, 3, 2)  # (N, L, C)
      >>> flatten().apply({}, {}, x, train=False)[0][0].tolist()
      [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
      >>> flatten(channels_first=True).apply({}, {}, x, train=False)[0][0].tolist()
      [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    """
    # sizes from the static shape, not -1: reshape cannot infer -1 for an empty batch
    if check_bool("flatten", "channels_first", channels_first):
        return stateless("flatten_channels_first", lambda x: jnp.moveaxis(x, -1, 1).reshape(
            x.shape[0], math.prod(x.shape[1:])))
    return stateless("flatten", lambda x: x.reshape(x.shape[0], math.prod(x.shape[1:])))


def reshape(shape):
    """Reshapes everything but the batch axis to ``shape`` (may hold one ``-1``)."""
    if not isinstance(shape, (tuple, list)) or not all(is_int(d) for d in shape):
        fail("reshape", "shape", "a tuple of ints without the batch axis", shape, exc=TypeError)
    shape = tuple(shape)
    if any(d < 1 and d != -1 for d in shape):
        fail("reshape", "shape", "made of positive sizes and at most one -1", shape)

    def init_params(key, in_shape):
        known = math.prod(d for d in shape if d != -1)
        size = math.prod(in_shape)
        if shape.count(-1) > 1 or (size % known if -1 in shape else size != known):
            fail("reshape", "shape", f"compatible with in_shape {in_shape} ({size} elements)",
                 shape)
        return {}, {}

    def forward(params, state, x, train, key):  # -1 resolved here: an empty batch has no size
        size = math.prod(x.shape[1:]) // math.prod(d for d in shape if d != -1)
        return x.reshape((x.shape[0],) + tuple(size if d == -1 else d for d in shape)), state

    return layer("reshape", init_params, forward)


def identity():
    """Returns its input."""
    return stateless("identity", lambda x: x)


def activation(fn, name=None):
    """An elementwise (or last-axis) function as a layer, e.g. ``activation(jnp.sin)``."""
    if name is not None and not isinstance(name, str):
        fail("activation", "name", "a str or None", name, exc=TypeError)
    return stateless(name or getattr(fn, "__name__", "activation"), fn)


def relu():
    return stateless("relu", jax.nn.relu)


def relu6():
    return stateless("relu6", jax.nn.relu6)


def gelu(approximate: bool = False):
    """GELU; exact (erf) by default as PyTorch, ``approximate=True`` for the tanh form."""
    approximate = check_bool("gelu", "approximate", approximate)
    return stateless("gelu", functools.partial(jax.nn.gelu, approximate=approximate))


def silu():
    return stateless("silu", jax.nn.silu)


def tanh():
    return stateless("tanh", jnp.tanh)


def sigmoid():
    return stateless("sigmoid", jax.nn.sigmoid)


def elu(alpha: float = 1.0):
    alpha = check_real("elu", "alpha", alpha)
    return stateless("elu", functools.partial(jax.nn.elu, alpha=alpha))


def softplus():
    return stateless("softplus", jax.nn.softplus)


def hard_swish():
    return stateless("hard_swish", jax.nn.hard_swish)


def leaky_relu(negative_slope: float = 0.01):
    """Leaky ReLU with PyTorch's default slope 0.01."""
    negative_slope = check_real("leaky_relu", "negative_slope", negative_slope)
    return stateless("leaky_relu", functools.partial(jax.nn.leaky_relu,
                                                     negative_slope=negative_slope))


def _check_axis(where, axis):
    """An int or a tuple of ints; ranges are checked at ``init`` against the input's rank."""
    if not (is_int(axis) or (isinstance(axis, tuple) and axis and all(is_int(a) for a in axis))):
        fail(where, "axis", "an int or a non-empty tuple of ints", axis, exc=TypeError)
    return axis


def _over_axis(where, fn, axis):
    """A stateless layer ``fn(x, axis=axis)``; ``axis`` counts the batch axis, as in JAX."""
    axis = _check_axis(where, axis)

    def init_params(key, in_shape):
        rank = len(in_shape) + 1
        axes = (axis,) if is_int(axis) else axis
        if any(not -rank <= a < rank for a in axes) or len({a % rank for a in axes}) < len(axes):
            fail(where, "axis", f"distinct axes in [-{rank}, {rank}) for a batched input of rank "
                 f"{rank}", axis)
        return {}, {}

    return layer(where, init_params, lambda p, s, x, train, key: (fn(x, axis=axis), s))


def softmax(axis: int = -1):
    return _over_axis("softmax", jax.nn.softmax, axis)


def log_softmax(axis: int = -1):
    return _over_axis("log_softmax", jax.nn.log_softmax, axis)


def _dropout(name, rate, mask_shape):
    rate = check_rate(name, rate)

    def forward(params, state, x, train, key):
        if not train or rate == 0.0:
            return x, state
        if key is None:
            raise ValueError(
                f"{name}: key must be a jax.random key when train=True, got None. "
                "Pass apply(..., train=True, key=key); serial() splits it between layers")
        keep = jax.random.bernoulli(key, 1.0 - rate, mask_shape(x.shape))
        return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype)), state

    def init_params(key, in_shape):
        mask_shape((1,) + in_shape)  # rank checks at init, not first in training
        return {}, {}

    return layer(name, init_params, forward)


def dropout(rate: float):
    """Zeroes each element with probability ``rate`` and scales the rest by ``1 / (1 - rate)``
    when ``train=True`` (inverted dropout, as PyTorch); the identity when ``train=False``.

    ``rate`` is the probability of *dropping* (stax's ``Dropout`` took the keep rate).
    """
    return _dropout("dropout", rate, lambda shape: shape)


def spatial_dropout(rate: float):
    """Drops whole channels (PyTorch's ``Dropout1d/2d/3d``, Keras's ``SpatialDropout``):
    one mask entry per example and channel, shared over the spatial axes."""

    def mask_shape(shape):
        if len(shape) not in (3, 4, 5):
            fail("spatial_dropout", "input rank", "3, 4 or 5 (N, *spatial, C)", len(shape))
        return (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)

    return _dropout("spatial_dropout", rate, mask_shape)
