"""Window arithmetic: how the arguments of a window op (convolution, pooling, their
transposes) map to sizes, paddings and slices. Ops, layers and :mod:`jaxcnn.summary` take
it from here; :mod:`jaxcnn.geometry` is its public face.

Along one spatial axis of size :math:`W`, a window of size :math:`K`, stride :math:`S`,
dilation :math:`D` and padding :math:`(P_{lo}, P_{hi})` gives

.. math::
   out = \\left\\lfloor \\frac{W + P_{lo} + P_{hi} - D (K - 1) - 1}{S} \\right\\rfloor + 1

outputs (``ceil`` instead of ``floor`` with ``ceil_mode``, where the last window must
start inside the input or the low padding, as in PyTorch's pooling). Padding arguments
are PyTorch's numbers (an int, one per axis, or ``(low, high)`` pairs) or ``lax``'s
strings; :func:`normalize_padding` checks them, :func:`resolve_padding` makes them pairs.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
from jax import lax

from jaxcnn._checks import fail, is_int, to_tuple

PADDING_STRINGS = ("SAME", "VALID", "CAUSAL")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")  # of a convolution
PAD_MODES = ("zeros", "constant", "reflect", "replicate", "circular")  # of ops.pad
POOL_PADDING_STRINGS = ("SAME", "VALID")

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"),
                      3: ("NDHWC", "DHWIO", "NDHWC")}


def dimension_numbers(n: int):
    """``lax`` dimension numbers for an ``n``-d channels-last input and spatial-first kernel."""
    return _DIMENSION_NUMBERS[n]


# ----------------------------------------------------------------------------- sizes


def output_size(size, kernel_size, stride, pads, dilation, ceil_mode=False) -> int:
    """Outputs along one axis (the formula above); ``pads`` is ``(low, high)``. Less than
    one when the padded input is shorter than the dilated window: callers refuse that."""
    lo, hi = pads
    span = size + lo + hi - dilation * (kernel_size - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + lo:
        out -= 1
    return out


def output_sizes(spatial, kernel_size, stride, pads, dilation, ceil_mode=False):
    """:func:`output_size` along every axis."""
    return tuple(output_size(*args, ceil_mode) for args
                 in zip(spatial, kernel_size, stride, pads, dilation))


def transpose_output_size(size, kernel_size, stride, pads, dilation, output_padding=0) -> int:
    """Outputs along one axis of the transpose of a window op with ``(low, high)`` padding
    ``pads``: ``(size - 1) * stride - low - high + dilation * (kernel_size - 1) +
    output_padding + 1``, the largest input size the window op maps to ``size`` when
    ``output_padding`` is 0."""
    lo, hi = pads
    return (size - 1) * stride - lo - hi + dilation * (kernel_size - 1) + output_padding + 1


def same_padding(size, kernel_size, stride=1, dilation=1):
    """The ``(low, high)`` padding giving ``ceil(size / stride)`` outputs (``"SAME"``);
    the extra element, if any, goes at the end, as in TensorFlow and ``lax``."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - size, 0)
    return (total // 2, total - total // 2)


def receptive_step(field, kernel_size, stride, low, dilation):
    """One window applied to ``field = (r, j, start)``: each output sees ``r`` inputs,
    neighbouring outputs are ``j`` inputs apart, the first window is centred at input
    coordinate ``start``.

    .. math::
       r' = r + d (k - 1) j, \\quad j' = j s, \\quad
       start' = start + \\left(\\tfrac{d (k - 1)}{2} - p_{lo}\\right) j
    """
    r, j, start = field
    reach = dilation * (kernel_size - 1)
    return r + reach * j, j * stride, start + (reach / 2 - low) * j


# ----------------------------------------------------------------------------- padding


def normalize_padding(where: str, padding, n: int, *, strings=PADDING_STRINGS, what="padding"):
    """Returns an upper-case string from ``strings`` or ``n`` ``(low, high)`` int pairs.

    Accepted: an int, ``n`` ints, ``n`` ``(low, high)`` pairs, or a string. Errors name the
    argument ``what``.
    """
    if isinstance(padding, str):
        if padding.upper() not in strings:
            fail(where, what, "an int, a tuple, (low, high) pairs"
                 + (" or one of " + ", ".join(repr(s) for s in strings) if strings else ""),
                 padding)
        return padding.upper()
    if is_int(padding):
        pairs = ((int(padding), int(padding)),) * n
    elif isinstance(padding, Sequence) and len(padding) == n:
        pairs = tuple(_padding_pair(where, what, p, padding, n) for p in padding)
    else:
        fail(where, what, f"an int, {n} ints, {n} (low, high) pairs"
             + (" or a string" if strings else ""), padding,
             exc=TypeError if not isinstance(padding, Sequence) else ValueError)
    if any(v < 0 for pair in pairs for v in pair):
        fail(where, what, "non-negative", padding)
    return pairs


def _padding_pair(where, what, p, padding, n):
    if is_int(p):
        return (int(p), int(p))
    if (isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2
            and all(is_int(q) for q in p)):
        return (int(p[0]), int(p[1]))
    fail(where, what, f"{n} ints or {n} (low, high) pairs", padding, exc=TypeError)


def resolve_padding(padding, spatial: Sequence[int], kernel_size, stride, dilation):
    """Explicit ``(low, high)`` pairs for a normalised padding and static sizes."""
    if not isinstance(padding, str):
        return tuple(padding)
    if padding == "VALID":
        return ((0, 0),) * len(spatial)
    if padding == "CAUSAL":
        return tuple((d * (k - 1), 0) for k, d in zip(kernel_size, dilation))
    return tuple(same_padding(*args) for args in zip(spatial, kernel_size, stride, dilation))


def check_window_fits(where: str, spatial, pads, kernel_size, dilation, what="kernel"):
    """Refuses a padded input shorter than the dilated window along some axis."""
    for i, (size, (lo, hi), k, d) in enumerate(zip(spatial, pads, kernel_size, dilation)):
        eff = d * (k - 1) + 1
        if size + lo + hi < eff:
            fail(where, f"padded input size along spatial axis {i}",
                 f">= the dilated {what} size {eff}", size + lo + hi,
                 "The input is too small for this window: pad it or use a smaller window")


def pad_spatial(x, pads, fill=0):
    """``x`` with ``(low, high)`` padding of ``fill`` on its spatial axes (``lax.pad``: a
    negative side crops)."""
    return lax.pad(x, np.array(fill, x.dtype),
                   ((0, 0, 0),) + tuple((lo, hi, 0) for lo, hi in pads) + ((0, 0, 0),))


def window_slices(xp, kernel_size, stride, dilation, out, first_axis=1):
    """``(offset, slice)`` for every kernel offset in row-major order: the strided slice of
    the padded ``xp`` that this offset of every window reads, ``xp[s * o + d * j]`` for the
    ``out`` output positions ``o`` along the axes from ``first_axis`` on."""
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        start, limit, step = [0] * xp.ndim, list(xp.shape), [1] * xp.ndim
        for axis, j, s, d, o in zip(itertools.count(first_axis), offset, stride, dilation, out):
            start[axis], limit[axis], step[axis] = j * d, j * d + s * (o - 1) + 1, s
        yield offset, lax.slice(xp, start, limit, step)


# ----------------------------------------------------------------------------- arguments


def window_rank(where, **arguments):
    """The spatial rank the tuples among the window ``arguments`` fix (their common
    length), or ``None`` when each is an int or a string (the op then serves any rank).
    Tuples of other lengths than 1, 2 or 3, or of different lengths, are refused."""
    for what, value in arguments.items():
        if isinstance(value, (tuple, list)) and len(value) not in (1, 2, 3):
            entries = "(low, high) pairs or ints" if what == "padding" else "ints"
            fail(where, what, f"an int or a tuple of 1, 2 or 3 {entries}", value)
    ranks = {len(v) for v in arguments.values() if isinstance(v, (tuple, list))}
    if len(ranks) > 1:
        names = list(arguments)
        fail(where, ", ".join(names[:-1]) + " and " + names[-1],
             "of one length (one entry per spatial dimension)", tuple(arguments.values()))
    return ranks.pop() if ranks else None


def window_args(where, n, kernel_size, stride=None, padding=0, dilation=1,
                strings=POOL_PADDING_STRINGS, pooling=True):
    """Checked ``(kernel_size, stride, padding, dilation)`` of an ``n``-d window: int
    tuples and :func:`normalize_padding`'s padding.

    ``stride=None`` means the kernel size. For ``pooling``, numeric padding is at most
    half the kernel on each side, as PyTorch requires.
    """
    ks = to_tuple(where, "kernel_size", kernel_size, n)
    st = ks if stride is None else to_tuple(where, "stride", stride, n)
    dl = to_tuple(where, "dilation", dilation, n)
    pad = normalize_padding(where, padding, n, strings=strings)
    if pooling and not isinstance(pad, str):
        for i, ((lo, hi), k) in enumerate(zip(pad, ks)):
            if max(lo, hi) > k // 2:
                fail(where, f"padding along spatial axis {i}",
                     f"at most half the kernel size ({k // 2})", (lo, hi),
                     "PyTorch's rule: larger padding makes windows of padding alone")
    return ks, st, pad, dl


def adaptive_output_size(where, output_size, n, spatial=None):
    """``n`` positive ints (``None`` entries keep ``spatial``'s size when given)."""
    if is_int(output_size) or output_size is None:
        sizes = (output_size,) * n
    elif isinstance(output_size, (tuple, list)) and all(
            o is None or is_int(o) for o in output_size):
        sizes = tuple(output_size)
        if len(sizes) != n:
            fail(where, "output_size", f"an int or a sequence of {n} ints or None "
                 "(one per spatial dimension)", output_size)
    else:
        fail(where, "output_size", "an int or a sequence of ints or None", output_size,
             exc=TypeError)
    if any(o is not None and o < 1 for o in sizes):
        fail(where, "output_size", "positive (or None to keep a size)", output_size)
    if spatial is None:
        return sizes
    return tuple(int(s if o is None else o) for o, s in zip(sizes, spatial))


def check_window(where, kernel_size, stride=None, padding=0, dilation=1, *,
                 strings=POOL_PADDING_STRINGS, pooling=True, **more):
    """Checks a layer factory's window arguments as its op will, before any shape is known,
    and returns the rank they fix (:func:`window_rank`; ``None``: any). ``more`` are further
    per-axis arguments (``output_padding``) whose lengths must agree."""
    rank = window_rank(where, kernel_size=kernel_size, stride=stride, padding=padding, **more,
                       dilation=dilation)
    window_args(where, rank or 1, kernel_size, stride, padding, dilation, strings, pooling)
    return rank
