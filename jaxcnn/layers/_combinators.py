"""Combinators: build networks out of layers, threading shapes, params, state and keys.

Parameters of children live in dicts keyed ``"<name>_<index>"`` (``"conv_0"``,
``"relu_1"``), so paths read like ``params["block"]["conv_0"]["kernel"]`` in summaries,
checkpoints and optax masks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import check_positive_int, fail, is_int
from jaxcnn.layers._base import NOT_GIVEN, Layer, check_shape, check_train, check_x, is_multi
from jaxcnn.layers._core import identity
from jaxcnn.layers._scope import child, record


def _check_layers(where, layers):
    for i, l in enumerate(layers):
        if not isinstance(l, Layer):
            hint = "Factories are always called: write relu(), not relu" if callable(l) else ""
            fail(where, f"argument {i}", "a Layer", l, hint, exc=TypeError)


def _keys(layers):
    return [f"{l.name}_{i}" for i, l in enumerate(layers)]


def _child_key(key, i):
    return None if key is None else jax.random.fold_in(key, i)


def _run(name, l, params, state, x, train, key):
    """Applies child ``l`` under its path ``name`` (named scope + activation taps)."""
    with child(name, l.name):
        y, new_state = l.apply(params, state, x, train=train, key=key)
        y = record(y)
    return y, new_state


def named(name: str, layer: Layer) -> Layer:
    """The same layer under another name (its path in the params of a combinator)."""
    if not isinstance(name, str):
        fail("named", "name", "a str", name, exc=TypeError)
    _check_layers("named", (layer,))
    return layer._replace(name=name)


def serial(*layers: Layer) -> Layer:
    """Composes layers in order; the output shape of each is the input shape of the next.

    ``apply`` gives child ``i`` the key ``fold_in(key, i)``.

    Example:
      >>> import jax
      >>> from jaxcnn import serial, conv, relu, flatten, dense
      >>> net = serial(conv(8, 3), relu(), flatten(), dense(10))
      >>> out_shape, params, state = net.init(jax.random.key(0), (8, 8, 1))
      >>> out_shape, sorted(params)
      ((10,), ['conv_0', 'dense_3', 'flatten_2', 'relu_1'])
    """
    where = "serial"
    _check_layers(where, layers)
    names = _keys(layers)

    def init(key, in_shape):
        shape = check_shape(where, in_shape)
        params, state = {}, {}
        for i, (name, l) in enumerate(zip(names, layers)):
            shape, params[name], state[name] = l.init(jax.random.fold_in(key, i), shape)
        return shape, params, state

    def apply(params, state, x=NOT_GIVEN, *, train=NOT_GIVEN, key=None):
        check_x(where, x)
        check_train(where, train)
        new_state = {}
        for i, (name, l) in enumerate(zip(names, layers)):
            x, new_state[name] = _run(name, l, params[name], state[name], x, train,
                                      _child_key(key, i))
        return x, new_state

    return Layer(init, apply, "serial")


def parallel(*layers: Layer) -> Layer:
    """Applies layer ``i`` to input ``i`` of a tuple; returns the tuple of outputs."""
    where = "parallel"
    _check_layers(where, layers)
    names = _keys(layers)

    def init(key, in_shape):
        if not is_multi(in_shape) or len(in_shape) != len(layers):
            fail(where, "in_shape", f"a tuple of {len(layers)} shapes (one per branch)", in_shape,
                 "Put fan_out(n) before parallel to feed one input to every branch")
        params, state, shapes = {}, {}, []
        for i, (name, l, s) in enumerate(zip(names, layers, in_shape)):
            out, params[name], state[name] = l.init(jax.random.fold_in(key, i), s)
            shapes.append(out)
        return tuple(shapes), params, state

    def apply(params, state, xs=NOT_GIVEN, *, train=NOT_GIVEN, key=None):
        check_x(where, xs)
        check_train(where, train)
        if not isinstance(xs, (tuple, list)) or len(xs) != len(layers):
            fail(where, "input", f"a tuple of {len(layers)} arrays", type(xs).__name__,
                 exc=TypeError)
        ys, new_state = [], {}
        for i, (name, l, x) in enumerate(zip(names, layers, xs)):
            y, new_state[name] = _run(name, l, params[name], state[name], x, train,
                                      _child_key(key, i))
            ys.append(y)
        return tuple(ys), new_state

    return Layer(init, apply, "parallel")


def fan_out(num: int) -> Layer:
    """Copies the input into a tuple of ``num`` inputs."""
    check_positive_int("fan_out", "num", num)

    def init(key, in_shape):
        return (check_shape("fan_out", in_shape),) * num, {}, {}

    def apply(params, state, x=NOT_GIVEN, *, train=NOT_GIVEN, key=None):
        check_x("fan_out", x)
        check_train("fan_out", train)
        return (x,) * num, state

    return Layer(init, apply, "fan_out")


def _fan_in(name, merge, merge_shapes):
    def init(key, in_shape):
        if not is_multi(in_shape):
            fail(name, "in_shape", "a tuple of shapes (the outputs of parallel branches)",
                 in_shape)
        return merge_shapes(check_shape(name, in_shape)), {}, {}

    def apply(params, state, xs=NOT_GIVEN, *, train=NOT_GIVEN, key=None):
        check_x(name, xs)
        check_train(name, train)
        return merge(xs), state

    return Layer(init, apply, name)


def fan_in_sum() -> Layer:
    """Sums a tuple of same-shaped inputs."""

    def shapes(in_shape):
        if any(s != in_shape[0] for s in in_shape):
            fail("fan_in_sum", "the branch shapes", "all equal", in_shape)
        return in_shape[0]

    return _fan_in("fan_in_sum", lambda xs: sum(xs[1:], xs[0]), shapes)


def fan_in_mul() -> Layer:
    """Multiplies a tuple of inputs elementwise, with numpy broadcasting of the per-example
    shapes (the batch axis excluded): a gate ``(C,)`` or ``(1, 1, C)`` scales every pixel of
    a feature map ``(H, W, C)``, as in squeeze-and-excitation or attention gates.

    Example:
      >>> import jax
      >>> from jaxcnn import (dense, fan_in_mul, fan_out, global_avg_pool, identity,
      ...                     parallel, relu, serial, sigmoid)
      >>> se = serial(fan_out(2), parallel(identity(), serial(
      ...     global_avg_pool(), dense(4), relu(), dense(16), sigmoid())), fan_in_mul())
      >>> se.init(jax.random.key(0), (8, 8, 16))[0]
      (8, 8, 16)
    """
    where = "fan_in_mul"

    def shapes(in_shape):
        try:
            return tuple(int(d) for d in np.broadcast_shapes(*in_shape))
        except ValueError:
            fail(where, "the branch shapes", "broadcastable against each other (numpy rules, "
                 "batch axis excluded)", in_shape,
                 "A gate for (H, W, C) features has shape (C,) or (1, 1, C)")

    def merge(xs):
        rank = max(x.ndim for x in xs)  # align the per-example axes on the right
        xs = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out

    return _fan_in(where, merge, shapes)


def fan_in_concat(axis: int = -1) -> Layer:
    """Concatenates a tuple of inputs along ``axis`` (default: channels), as Inception."""
    if not is_int(axis):
        fail("fan_in_concat", "axis", "an int", axis, exc=TypeError)

    def shapes(in_shape):
        rank = len(in_shape[0])
        ax = axis % rank if -rank <= axis < rank else None
        if ax is None:
            fail("fan_in_concat", "axis", f"in [-{rank}, {rank}) (no batch axis counted)", axis)
        rest = [s[:ax] + s[ax + 1:] for s in in_shape]
        if any(len(s) != rank for s in in_shape) or any(r != rest[0] for r in rest):
            fail("fan_in_concat", "the branch shapes", f"equal except along axis {axis}", in_shape)
        out = list(in_shape[0])
        out[ax] = sum(s[ax] for s in in_shape)
        return tuple(out)

    # axis counts without the batch axis; in apply the arrays carry it.
    def merge(xs):
        rank = xs[0].ndim - 1
        return jnp.concatenate(xs, axis=(axis % rank) + 1)

    return _fan_in("fan_in_concat", merge, shapes)


def concat(*branches: Layer, axis: int = -1) -> Layer:
    """Applies every branch to the same input and concatenates the outputs along ``axis``.

    It is ``serial(fan_out(k), parallel(*branches), fan_in_concat(axis))``, so its params
    (and state) are ``{"fan_out_0": {}, "parallel_1": {"<name>_<i>": branch i's params},
    "fan_in_concat_2": {}}``, branch ``i`` under its layer name and index; the output's
    channels are branch 0's, then branch 1's, and so on.

    Example:
      >>> import jax
      >>> from jaxcnn import concat, conv, max_pool, serial, relu
      >>> net = concat(conv(4, 1), serial(conv(2, 3, padding=1), relu()),
      ...              max_pool(3, stride=1, padding=1))
      >>> out_shape, params, _ = net.init(jax.random.key(0), (8, 8, 3))
      >>> out_shape, list(params["parallel_1"])
      ((8, 8, 9), ['conv_0', 'serial_1', 'max_pool_2'])
      >>> params["parallel_1"]["serial_1"]["conv_0"]["kernel"].shape
      (3, 3, 3, 2)
    """
    _check_layers("concat", branches)
    return serial(fan_out(len(branches)), parallel(*branches), fan_in_concat(axis))._replace(
        name="concat")


def residual(block: Layer, shortcut: Layer | None = None) -> Layer:
    """``y = block(x) + shortcut(x)``, with the identity as the default shortcut.

    Params: ``{"block": ..., "shortcut": ...}``.

    Example:
      >>> import jax
      >>> from jaxcnn import residual, serial, conv, relu
      >>> block = residual(serial(conv(16, 3, padding=1), relu(), conv(16, 3, padding=1)))
      >>> block.init(jax.random.key(0), (8, 8, 16))[0]
      (8, 8, 16)
    """
    _check_layers("residual", [block] + ([shortcut] if shortcut is not None else []))
    shortcut = shortcut if shortcut is not None else identity()

    def init(key, in_shape):
        in_shape = check_shape("residual", in_shape)
        b_key, s_key = jax.random.split(key)
        out, pb, sb = block.init(b_key, in_shape)
        out_s, ps, ss = shortcut.init(s_key, in_shape)
        if out != out_s:
            fail("residual", "the block's output shape", f"the shortcut's output shape {out_s}",
                 out, f"Pass a projection shortcut, e.g. shortcut=conv({out[-1]}, 1, stride=...)")
        return out, {"block": pb, "shortcut": ps}, {"block": sb, "shortcut": ss}

    def apply(params, state, x=NOT_GIVEN, *, train=NOT_GIVEN, key=None):
        check_x("residual", x)
        check_train("residual", train)
        y, sb = _run("block", block, params["block"], state["block"], x, train,
                     _child_key(key, 0))
        s, ss = _run("shortcut", shortcut, params["shortcut"], state["shortcut"], x, train,
                     _child_key(key, 1))
        return y + s, {"block": sb, "shortcut": ss}

    return Layer(init, apply, "residual")
