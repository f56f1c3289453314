"""Argument normalisation and the one error format every part of jaxcnn uses.

Messages read ``"<where>: <what> must be <expected>, got <actual>"``, optionally
followed by the likely fix. Every check takes its arguments in that order: ``where`` first,
then ``what`` when the check names the argument, then the value, then the check's own
parameters (``to_tuple(where, "stride", stride, n)``, ``check_choice(where, "mode", mode,
MODES)``). Checks run on Python values and static shapes only,
so they cost nothing under ``jax.jit``. A check that an op and its layer factory both run
(dtypes, ``eps``, ``momentum``, axes, resize arguments) lives here, so that layers need
nothing private from :mod:`jaxcnn.ops`; window arguments live in ``jaxcnn/_window.py``.
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


def is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def to_tuple(where: str, what: str, value, n: int, *, minimum: int = 1) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints, each ``>= minimum``, as a tuple."""
    if is_int(value):
        out = (int(value),) * n
    elif (isinstance(value, Sequence) and not isinstance(value, str)
          and all(is_int(v) for v in value)):
        out = tuple(int(v) for v in value)
        if len(out) != n:
            fail(where, what, f"an int or a sequence of {n} ints (one per spatial dimension)",
                 value)
    else:
        fail(where, what, f"an int or a sequence of {n} ints", value, exc=TypeError)
    if any(v < minimum for v in out):
        fail(where, what, f">= {minimum}", value)
    return out


def check_positive_int(where: str, what: str, value, expected: str = "a positive int") -> int:
    """``value`` as an int when it is an int (not a bool) of at least 1."""
    if not is_int(value) or value < 1:
        fail(where, what, expected, value)
    return int(value)


def spatial_rank(where: str, x, *, what: str = "input rank") -> int:
    """Spatial rank of a batched channels-last array ``x`` (refused by :func:`check_array`
    unless it is one); jaxcnn supports 1, 2 and 3."""
    x_ndim = check_array(where, "x", x).ndim
    n = x_ndim - 2
    if n not in (1, 2, 3):
        fail(where, what, "3, 4 or 5 (batched, channels-last: NWC, NHWC or NDHWC)", x_ndim,
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
    if not is_real(value):
        fail(where, what, "a real number", value, exc=TypeError)
    if not math.isfinite(value):
        fail(where, what, "finite", value)
    return float(value)


def check_rate(where: str, rate) -> float:
    if not is_real(rate):
        fail(where, "rate", "a float in [0, 1)", rate, exc=TypeError)
    if not 0.0 <= rate < 1.0:
        fail(where, "rate", "in [0, 1) (the probability of dropping)", rate)
    return float(rate)


def check_choice(where: str, what: str, value, choices):
    if value not in choices:
        fail(where, what, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_float(where: str, what: str, a, integers: bool = False):
    """Refuses an array whose dtype is not floating (nor integer, with ``integers``)."""
    dtype = jax.numpy.result_type(a)
    if not (jax.numpy.issubdtype(dtype, jax.numpy.floating)
            or (integers and jax.numpy.issubdtype(dtype, jax.numpy.integer))):
        fail(where, f"{what} dtype",
             "a floating or integer dtype" if integers else "a floating dtype", str(dtype),
             f"Cast it first, e.g. {what}.astype(jnp.float32)", exc=TypeError)


def check_eps(where: str, eps) -> float:
    """A non-negative real number (a normalisation's ``eps``) as a float."""
    if not is_real(eps) or not eps >= 0:
        fail(where, "eps", "a non-negative float", eps)
    return float(eps)


def check_norm_type(where: str, norm_type):
    """The ``p`` of a p-norm: a positive finite real number."""
    if not is_real(norm_type) or not 0 < norm_type < math.inf:
        fail(where, "norm_type", "a positive finite number (the p of the p-norm)", norm_type)


def check_axis_name(where: str, axis_name):
    """``None``, a str or a non-empty tuple of strs (JAX's mapped-axis names)."""
    if not (axis_name is None or isinstance(axis_name, str) or (
            isinstance(axis_name, tuple) and axis_name
            and all(isinstance(a, str) for a in axis_name))):
        fail(where, "axis_name", "None, a str or a tuple of strs (the name given to "
             "jax.vmap/pmap/shard_map)", axis_name, exc=TypeError)
    return axis_name


def normalize_axes(where: str, axes, ndim: int):
    """Sorted non-negative axes of a batched array; ``None`` means all but the batch axis."""
    if axes is None:
        return tuple(range(1, ndim))
    seq = (axes,) if is_int(axes) else axes
    if not isinstance(seq, (tuple, list)) or not seq or not all(is_int(a) for a in seq):
        fail(where, "axes", "an int, a non-empty tuple of ints or None", axes, exc=TypeError)
    out = []
    for a in seq:
        if not -ndim <= a < ndim:
            fail(where, "axes", f"in [-{ndim}, {ndim}) for an input of rank {ndim}", axes)
        out.append(a % ndim)
    if 0 in out:
        fail(where, "axes", "axes of x other than the batch axis 0", axes,
             "Axes count on the batched x; use negative axes such as -1 or (-3, -2, -1)")
    if len(set(out)) != len(out):
        fail(where, "axes", "distinct", axes)
    return tuple(sorted(out))


RESIZE_MODES = ("nearest", "linear", "cubic")


def check_resize_args(where: str, size, scale_factor, mode, align_corners):
    """Rank-free checks of ``upsample``'s arguments (run by the op and the layer factory)."""
    if (size is None) == (scale_factor is None):
        fail(where, "size and scale_factor", "exactly one given",
             "both" if size is not None else "neither",
             "Pass size=(out sizes) or scale_factor=(a factor per axis), not both")
    if size is not None:
        seq = size if isinstance(size, (tuple, list)) else (size,)
        if not seq or not all(is_int(s) for s in seq):
            fail(where, "size", "an int or a tuple of ints", size, exc=TypeError)
        if any(s < 1 for s in seq):
            fail(where, "size", "positive", size)
    if scale_factor is not None:
        seq = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor,)
        if not seq or not all(is_real(s) for s in seq):
            fail(where, "scale_factor", "a number or a tuple of numbers", scale_factor,
                 exc=TypeError)
        if not all(s > 0 and math.isfinite(s) for s in seq):
            fail(where, "scale_factor", "positive and finite", scale_factor)
    check_choice(where, "mode", mode, RESIZE_MODES)
    align_corners = check_bool(where, "align_corners", align_corners)
    if align_corners and mode == "nearest":
        fail(where, "align_corners", "False for mode='nearest'", align_corners,
             "align_corners only applies to mode='linear' and mode='cubic' (as in PyTorch)")


def check_momentum(where: str, momentum) -> float:
    """A batch norm's ``momentum`` in [0, 1], the weight of the old running statistics."""
    if not is_real(momentum) or not 0.0 <= momentum <= 1.0:
        fail(where, "momentum", "a float in [0, 1] (the weight of the old running statistics: "
             "new = momentum * old + (1 - momentum) * batch)", momentum,
             "PyTorch's momentum=0.1 is momentum=0.9 here")
    return float(momentum)
