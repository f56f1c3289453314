"""Argument normalisation and the one error format every part of jaxcnn uses.

Messages read ``"<where>: <what> must be <expected>, got <actual>"``, optionally
followed by the likely fix. Checks run on Python values and static shapes only,
so they cost nothing under ``jax.jit``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import jax
import numpy as np


def fail(where: str, what: str, expected: str, got: Any, fix: str = "", *, exc=ValueError):
    """Raises ``exc`` with jaxcnn's standard message."""
    msg = f"{where}: {what} must be {expected}, got {got!r}"
    if fix:
        msg += f". {fix}"
    raise exc(msg)


def is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def to_tuple(value, n: int, where: str, what: str, *, minimum: int = 1) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints, each ``>= minimum``, as a tuple."""
    if is_int(value):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str) and all(is_int(v) for v in value):
        out = tuple(int(v) for v in value)
        if len(out) != n:
            fail(where, what, f"an int or a sequence of {n} ints (one per spatial dimension)", value)
    else:
        fail(where, what, f"an int or a sequence of {n} ints", value, exc=TypeError)
    if any(v < minimum for v in out):
        fail(where, what, f">= {minimum}", value)
    return out


def spatial_rank(x, where: str, what: str = "input rank") -> int:
    """Spatial rank of a batched channels-last array ``x`` (refused by :func:`check_array`
    unless it is one); jaxcnn supports 1, 2 and 3."""
    x_ndim = check_array(where, "x", x).ndim
    n = x_ndim - 2
    if n not in (1, 2, 3):
        fail(where, what,
                  "3, 4 or 5 (batched, channels-last: NWC, NHWC or NDHWC)", x_ndim,
                  "Add a batch axis with x[None] if you passed a single example")
    check_nonempty(where, x)
    return n


def check_nonempty(where: str, x):
    """Refuses an array with an empty axis other than the batch: an empty batch is a
    batch, an empty image or channel axis is a bug upstream (a mean over it is NaN)."""
    if 0 in x.shape[1:]:
        fail(where, "the non-batch axes of x", "non-empty (only the batch may be empty)",
             tuple(x.shape))


def check_bool(where: str, what: str, value, expected: str = "a bool", *,
               python_only: bool = False) -> bool:
    """``value`` as a Python bool. Python's and numpy's bools pass (only Python's with
    ``python_only``, as for the layer protocol's ``train``); ``1``, ``0``, ``"yes"`` and
    arrays are refused, since ``1 == True`` would otherwise slip through."""
    if not isinstance(value, bool if python_only else (bool, np.bool_)):
        fail(where, what, expected, value, exc=TypeError)
    return bool(value)


def check_array(where: str, what: str, a):
    """``a`` when it is a JAX array (tracers included) or a numpy array; lists, scalars
    and strings are refused here instead of failing later with a message about dtypes or
    ranks."""
    if not isinstance(a, (jax.Array, np.ndarray)):
        fix = (f"Convert it first: jnp.asarray({what})" if isinstance(a, (list, tuple)) else "")
        fail(where, what, "a jax or numpy array", type(a), fix, exc=TypeError)
    return a


def as_numeric(where: str, what: str, a):
    """``a`` as a JAX array: arrays, Python numbers and (nested) lists or tuples of
    numbers pass; ``None``, strings and other objects are refused with ``where``'s name
    (JAX's own message would not say which argument)."""
    if isinstance(a, jax.Array) or (isinstance(a, np.ndarray) and a.dtype.kind in "biuf"):
        return jax.numpy.asarray(a)
    if isinstance(a, (numbers.Number, list, tuple)):
        try:
            out = np.asarray(a)
        except ValueError:  # ragged
            out = None
        if out is not None and out.dtype.kind in "biuf":
            return jax.numpy.asarray(a)
    fail(where, what, "an array (or a list of numbers)", a if isinstance(a, (str, type(None)))
         else type(a), exc=TypeError)


def check_key(where: str, what: str, key):
    """One ``jax.random`` key: typed (``jax.random.key``, shape ``()``) or raw
    (``jax.random.PRNGKey``, ``uint32`` of shape ``(2,)``)."""
    if isinstance(key, (jax.Array, np.ndarray)):
        typed = jax.numpy.issubdtype(key.dtype, jax.dtypes.prng_key)
        if (typed and key.shape == ()) or (not typed and key.dtype == np.uint32
                                           and key.shape == (2,)):
            return key
        got = f"{key.dtype} array of shape {key.shape}"
    else:
        got = type(key)
    fail(where, what, "one jax.random key (jax.random.key(0) or jax.random.PRNGKey(0))", got,
         exc=TypeError)


def check_callable(where: str, what: str, value, expected: str = "a callable", fix: str = ""):
    if not callable(value):
        fail(where, what, expected, value, fix, exc=TypeError)
    return value


def check_real(where: str, what: str, value) -> float:
    """A finite real number (not a bool) as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        fail(where, what, "a real number", value, exc=TypeError)
    if not math.isfinite(value):
        fail(where, what, "finite", value)
    return float(value)


def check_rate(rate, where: str) -> float:
    if not isinstance(rate, numbers.Real) or isinstance(rate, bool):
        fail(where, "rate", "a float in [0, 1)", rate, exc=TypeError)
    if not 0.0 <= rate < 1.0:
        fail(where, "rate", "in [0, 1) (the probability of dropping)", rate)
    return float(rate)


def check_choice(value, choices, where: str, what: str):
    if value not in choices:
        fail(where, what, "one of " + ", ".join(repr(c) for c in choices), value)
    return value
