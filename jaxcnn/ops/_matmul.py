"""Sums and products as matrix products, accumulated in float32 at least.

On CPU, XLA lowers a large reduction over the leading axes to a slow loop (or to a
reduce-window that recomputes its producers), and fuses a bias gradient's reduction
with whatever produced the cotangent; a matrix product is neither. Batch norm's
statistics and the convolution's bias gradient are computed here.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

_SUM_BLOCK = 64


def acc_dtype(dtype):
    """The dtype to accumulate ``dtype`` in: float32 for low-precision floats."""
    return jnp.float32 if jnp.dtype(dtype).itemsize < 4 else dtype


def matmul(a, b, dtype):
    """``a @ b`` (the last axis of ``a`` with the first of ``b``), accumulated in
    :func:`acc_dtype` and returned as ``dtype``."""
    y = lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())),
                        preferred_element_type=acc_dtype(dtype))
    return y.astype(dtype)


def channel_sum(a):
    """``a.sum(axis=all but the last)`` by matrix products, in :func:`acc_dtype`.

    A tall ``ones @ a`` runs far below the memory bandwidth on CPU, so the rows are first
    summed in ``b`` (up to 64) contiguous blocks by one wide product
    ``ones(b) @ a.reshape(b, R/b * C)``, then the ``R/b`` partial rows by ``ones @ p``.
    """
    a2 = a.reshape(-1, a.shape[-1])
    acc = acc_dtype(a.dtype)
    b = math.gcd(a2.shape[0], _SUM_BLOCK)
    if 1 < b < a2.shape[0]:
        a2 = lax.dot_general(jnp.ones((b,), a.dtype), a2.reshape(b, -1),
                             (((0,), (0,)), ((), ())), preferred_element_type=acc)
        a2 = a2.reshape(-1, a.shape[-1])
    return lax.dot_general(jnp.ones((a2.shape[0],), a2.dtype), a2, (((0,), (0,)), ((), ())),
                           preferred_element_type=acc)


def _broadcast_by_matmul(b, rows):
    """``b`` (C,) repeated on ``rows`` rows, as the products whose transpose is
    :func:`channel_sum`'s blocked sum."""
    blocks = math.gcd(rows, _SUM_BLOCK)
    if not 1 < blocks < rows:
        blocks = 1
    outer = lambda ones, v: lax.dot_general(ones, v, (((), ()), ((), ())))  # noqa: E731
    inner = outer(jnp.ones((rows // blocks,), b.dtype), b).reshape(-1)
    return outer(jnp.ones((blocks,), b.dtype), inner).reshape(rows, -1)


@jax.custom_jvp
def add_bias(y, b):
    """``y + b`` over the last axis, whose bias gradient (the transpose of the tangent) is
    :func:`channel_sum` of the cotangent, which XLA cannot fuse with the cotangent's
    producers and recompute them."""
    return y + b.reshape((1,) * (y.ndim - 1) + (-1,))


@add_bias.defjvp
def _add_bias_jvp(primals, tangents):
    (y, b), (ty, tb) = primals, tangents
    rows = math.prod(y.shape[:-1])
    tb = _broadcast_by_matmul(tb.astype(y.dtype), rows).reshape(y.shape)
    return add_bias(y, b), ty + tb


__all__ = ["acc_dtype", "add_bias", "channel_sum", "matmul"]
