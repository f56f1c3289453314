"""The train state: one pytree holding everything a training step reads and writes."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxcnn._checks import check_key, fail
from jaxcnn.layers._base import Layer, check_model


class TrainState(NamedTuple):
    """Everything that changes during training, as one pytree.

    Attributes:
      step: int32 scalar array, the number of optimizer updates applied so far.
      params: the model's trainable parameters (what ``jax.grad`` and optax see).
      state: the model's non-trainable state (batch-norm running statistics).
      opt_state: the optax optimizer state.
    """

    step: Any
    params: Any
    state: Any
    opt_state: Any


def check_optimizer(where: str, optimizer):
    if not (callable(getattr(optimizer, "init", None))
            and callable(getattr(optimizer, "update", None))):
        fail(where, "optimizer", "an optax.GradientTransformation (with init and update)",
             type(optimizer).__name__, "e.g. optax.sgd(0.1, momentum=0.9)", exc=TypeError)
    return optimizer


def create_train_state(model: Layer, optimizer, key, in_shape) -> TrainState:
    """Initialises a model and its optimizer into a :class:`TrainState` with ``step = 0``.

    Args:
      model: a :class:`jaxcnn.Layer`.
      optimizer: an ``optax.GradientTransformation``.
      key: a ``jax.random`` key for the parameter initialisation.
      in_shape: the shape of one example, without the batch axis, e.g. ``(28, 28, 1)``.

    Example:
      >>> import jax, optax
      >>> from jaxcnn import serial, conv, relu, flatten, dense
      >>> from jaxcnn.train import create_train_state
      >>> net = serial(conv(4, 3), relu(), flatten(), dense(10))
      >>> ts = create_train_state(net, optax.adam(1e-3), jax.random.key(0), (8, 8, 1))
      >>> int(ts.step), ts.params["dense_3"]["kernel"].shape
      (0, (144, 10))
    """
    where = "create_train_state"
    check_model(where, model)
    check_optimizer(where, optimizer)
    check_key(where, "key", key)
    # Eager on purpose: eager init compiles one small program per distinct kernel shape and
    # caches it, while jax.jit(model.init) compiles every kernel of the model again (slower
    # for deep nets, whose layers repeat a few shapes).
    _, params, state = model.init(key, in_shape)
    with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
        opt_state = optimizer.init(params)
    return TrainState(jnp.zeros((), jnp.int32), params, state, opt_state)


def num_params(params) -> int:
    """The number of scalars in a parameter pytree."""
    leaves = jax.tree.leaves(params)
    for leaf in leaves:
        if not hasattr(leaf, "size"):
            fail("num_params", "params", "a pytree of arrays", type(leaf), exc=TypeError)
    return int(sum(leaf.size for leaf in leaves))
