"""The layer protocol: a ``NamedTuple`` of two pure functions, as optax's transforms.

.. code-block:: python

   init(key, in_shape) -> (out_shape, params, state)
   apply(params, state, x, *, train, key=None) -> (y, state)

``in_shape``/``out_shape`` exclude the batch axis. A leaf layer is written as two
plain functions, ``init_params(key, in_shape) -> (params, state)`` and
``forward(params, state, x, train, key) -> (y, state)``, handed to :func:`layer`,
which works out the output shape with ``jax.eval_shape`` on ``forward`` (shapes are
written once, in the forward pass) and checks ``train`` and ``in_shape`` for every
layer in one place.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxcnn._checks import check_bool, check_callable, fail, is_int


class Layer(NamedTuple):
    """A layer: ``init(key, in_shape) -> (out_shape, params, state)`` and
    ``apply(params, state, x, *, train, key=None) -> (y, state)``.

    ``name`` is used for readable parameter paths in combinators (``"conv_0"``); it
    defaults to ``"layer"`` so ``Layer(init, apply)`` works for hand-written layers.
    """

    init: Callable[..., Any]
    apply: Callable[..., Any]
    name: str = "layer"


class _NotGiven:
    def __repr__(self):
        return "<not given>"


NOT_GIVEN = _NotGiven()


def check_train(where: str, train) -> bool:
    """``train`` must be a Python bool: jaxcnn never guesses the mode."""
    if train is NOT_GIVEN:
        raise TypeError(
            f"{where}: apply needs the keyword argument train=True or train=False (no default, "
            "so dropout and batch norm never run in the wrong mode by accident)")
    return check_bool(where, "train", train, "a Python bool (it is static: not a traced array)",
                      python_only=True)


def is_multi(shape) -> bool:
    """Whether ``shape`` describes several inputs (a tuple of shapes)."""
    return isinstance(shape, (tuple, list)) and len(shape) > 0 and all(
        isinstance(s, (tuple, list)) for s in shape)


def check_shape(where: str, in_shape):
    """``in_shape`` as a tuple of positive ints (or a tuple of such tuples)."""
    if is_multi(in_shape):
        return tuple(check_shape(where, s) for s in in_shape)
    if not isinstance(in_shape, (tuple, list)) or not all(is_int(d) for d in in_shape):
        fail(where, "in_shape", "a tuple of ints without the batch axis, e.g. (28, 28, 1)",
             in_shape, exc=TypeError)
    if any(d < 1 for d in in_shape):
        fail(where, "in_shape", "made of positive sizes", tuple(in_shape))
    return tuple(int(d) for d in in_shape)


_LAYOUTS = {1: "(L, C)", 2: "(H, W, C)", 3: "(D, H, W, C)"}


def check_spatial_shape(where: str, in_shape, rank: int | None = None) -> int:
    """The spatial rank (1, 2 or 3) of a channels-last shape without batch; with ``rank``,
    a shape of another rank is refused with a reminder that ``in_shape`` has no batch axis
    (``(4, 28, 28, 1)`` for a 2-d net would otherwise build a 3-d one)."""
    if rank is not None and not is_multi(in_shape) and len(in_shape) != rank + 1:
        fix = ("in_shape excludes the batch axis: pass x.shape[1:] (one example's shape, "
               "channels last)")
        if len(in_shape) == rank:
            fix += f"; a single-channel example keeps its channel axis: {tuple(in_shape) + (1,)}"
        fail(where, "in_shape", f"{_LAYOUTS[rank]} for this {rank}-d network", tuple(in_shape),
             fix)
    if is_multi(in_shape) or len(in_shape) not in (2, 3, 4):
        fail(where, "in_shape", "(*spatial, channels) with 1, 2 or 3 spatial axes (no batch axis)",
             in_shape)
    return len(in_shape) - 1


def check_batched(where: str, x, rank: int):
    """Refuses an input ``x`` that is not a batch of ``rank``-d channels-last examples
    (an unbatched example is the usual mistake), from its static rank."""
    ndim = getattr(x, "ndim", None)
    if ndim is not None and ndim != rank + 2:
        fix = ("Add the batch axis: x[None] for a single example" if ndim == rank + 1
               else "Inputs are batched and channels-last")
        fail(where, "the input's shape", f"(N, {_LAYOUTS[rank][1:]}: a batch of {rank}-d "
             "examples, channels last", tuple(x.shape), fix)
    return x


def check_x(where: str, x):
    """Refuses ``apply(params, x, train=...)``: the state was left out, so ``x`` is missing."""
    if x is NOT_GIVEN:
        raise TypeError(
            f"{where}: apply takes (params, state, x, *, train, key=None), got two positional "
            "arguments (params, x?). Pass the state that init returned (an empty dict for "
            "nets without batch norm): y, state = net.apply(params, state, x, train=False)")
    return x


def with_rank(model: Layer, rank: int, where: str) -> Layer:
    """``model`` refusing, at ``init``, an ``in_shape`` that is not ``rank``-d (the batch
    axis passed along is the usual cause) and, at ``apply``, an input that is not a batch
    of ``rank``-d examples. Every model of :mod:`jaxcnn.models` is wrapped this way.

    Example:
      >>> import jax
      >>> from jaxcnn import serial, conv, with_rank
      >>> net = with_rank(serial(conv(4, 3)), 2, "my_net")
      >>> net.init(jax.random.key(0), (4, 8, 8, 1))  # doctest: +ELLIPSIS
      Traceback (most recent call last):
      ...
      ValueError: my_net: in_shape must be (H, W, C) for this 2-d network, got (4, 8, 8, 1). ...
    """
    check_model("with_rank", model)
    if rank not in (1, 2, 3):
        fail("with_rank", "rank", "1, 2 or 3", rank)

    def init(key, in_shape):
        check_spatial_shape(where, check_shape(where, in_shape), rank)
        return model.init(key, in_shape)

    def apply(params, state, x=NOT_GIVEN, *, train=NOT_GIVEN, key=None):
        check_batched(where, check_x(where, x), rank)
        return model.apply(params, state, x, train=train, key=key)

    return Layer(init, apply, model.name)


def _struct(shape, dtype=jnp.float32):
    if is_multi(shape):
        return tuple(_struct(s, dtype) for s in shape)
    return jax.ShapeDtypeStruct((1,) + tuple(shape), dtype)


def _unbatched(tree):
    if isinstance(tree, (tuple, list)):
        return tuple(_unbatched(t) for t in tree)
    return tuple(tree.shape[1:])


def output_shape(forward, params, state, in_shape):
    """Output shape (without batch) of ``forward`` in eval mode, from shapes alone."""
    out = jax.eval_shape(lambda p, s, x: forward(p, s, x, False, None)[0], params, state,
                         _struct(in_shape))
    return _unbatched(out)


def layer(name: str, init_params: Callable, forward: Callable) -> Layer:
    """Builds a :class:`Layer` from its parameter initialiser and its forward pass.

    Args:
      name: the layer's name, used in error messages and parameter paths.
      init_params: ``(key, in_shape) -> (params, state)``; checks ``in_shape``.
      forward: ``(params, state, x, train, key) -> (y, state)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn import layer
      >>> double = layer("double", lambda key, s: ({}, {}),
      ...                lambda p, s, x, train, key: (2 * x, s))
      >>> out_shape, params, state = double.init(jax.random.key(0), (4, 3))
      >>> out_shape
      (4, 3)
      >>> double.apply(params, state, jnp.ones((1, 4, 3)), train=False)[0].sum()
      Array(24., dtype=float32)
    """

    if not isinstance(name, str):
        fail("layer", "name", "a str", name, exc=TypeError)
    check_callable(name, "init_params", init_params,
                   "a callable (key, in_shape) -> (params, state)")
    check_callable(name, "forward", forward,
                   "a callable (params, state, x, train, key) -> (y, state)")

    def init(key, in_shape):
        in_shape = check_shape(name, in_shape)
        params, state = init_params(key, in_shape)
        return output_shape(forward, params, state, in_shape), params, state

    def apply(params, state, x=NOT_GIVEN, *, train=NOT_GIVEN, key=None):
        return forward(params, state, check_x(name, x), check_train(name, train), key)

    return Layer(init, apply, name)


def stateless(name: str, fn: Callable) -> Layer:
    """A layer without parameters or state: ``y = fn(x)``."""
    if not isinstance(name, str):
        fail("stateless", "name", "a str", name, exc=TypeError)
    check_callable(name, "fn", fn, "a callable x -> y")
    return layer(name, lambda key, in_shape: ({}, {}),
                 lambda params, state, x, train, key: (fn(x), state))


def check_initializer(where: str, what: str, init, default):
    """``init`` (``default`` when ``None``), refused when it is not callable."""
    if init is None:
        return default
    return check_callable(where, what, init,
                          "an initializer: a callable (key, shape, dtype) -> array",
                          "e.g. jaxcnn.initializers.he_normal() or jax.nn.initializers.zeros")


def initialize(where: str, what: str, init, key, shape):
    """``init(key, shape)``, refused unless it is an array of ``shape``: catches, at
    ``init``, an initializer factory passed uncalled (``he_normal`` for ``he_normal()``)."""
    shape = tuple(shape)
    value = init(key, shape)
    got = tuple(value.shape) if hasattr(value, "shape") else type(value).__name__
    if got != shape:
        fail(where, f"{what}(key, {shape})", f"an array of shape {shape}", got,
             "Initializer factories are called first: he_normal(), not he_normal",
             exc=TypeError)
    return value


def check_model(where: str, model) -> Layer:
    """``model`` when it is a :class:`Layer`; a factory passed uncalled gets a hint."""
    if not isinstance(model, Layer):
        hint = "Factories are always called: write lenet5(), not lenet5" if callable(model) else ""
        fail(where, "model", "a jaxcnn Layer (init, apply)", type(model).__name__, hint,
             exc=TypeError)
    return model
