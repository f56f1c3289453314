"""Pooling layers: stateless wrappers of :mod:`jaxcnn.ops` pooling, rank taken from the input.

Arguments are checked when the factory is called (for the rank the tuples imply, or 1
when every argument is an int, which the same checks then cover for any rank).
"""

from __future__ import annotations

import functools

from jaxcnn import ops
from jaxcnn._checks import check_bool, check_norm_type, fail, is_int
from jaxcnn._window import adaptive_output_size, check_window
from jaxcnn.layers._base import stateless


def _check_pool_args(where, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    check_window(where, kernel_size, stride, padding, dilation)
    check_bool(where, "ceil_mode", ceil_mode)


def max_pool(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d max pooling layer; see :func:`jaxcnn.ops.max_pool`.

    Example:
      >>> import jax
      >>> from jaxcnn import max_pool
      >>> max_pool(2).init(jax.random.key(0), (28, 28, 6))[0]
      (14, 14, 6)
    """
    _check_pool_args("max_pool", kernel_size, stride, padding, dilation, ceil_mode)
    return stateless("max_pool", functools.partial(
        ops.max_pool, kernel_size=kernel_size, stride=stride, padding=padding,
        dilation=dilation, ceil_mode=ceil_mode))


def min_pool(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d min pooling layer; see :func:`jaxcnn.ops.min_pool`.

    Example:
      >>> import jax
      >>> from jaxcnn import min_pool
      >>> min_pool(3, 1, padding=1).init(jax.random.key(0), (10, 4))[0]
      (10, 4)
    """
    _check_pool_args("min_pool", kernel_size, stride, padding, dilation, ceil_mode)
    return stateless("min_pool", functools.partial(
        ops.min_pool, kernel_size=kernel_size, stride=stride, padding=padding,
        dilation=dilation, ceil_mode=ceil_mode))


def sum_pool(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d sum pooling layer; see :func:`jaxcnn.ops.sum_pool`.

    Example:
      >>> import jax
      >>> from jaxcnn import sum_pool
      >>> sum_pool(2).init(jax.random.key(0), (8, 8, 8, 2))[0]
      (4, 4, 4, 2)
    """
    _check_pool_args("sum_pool", kernel_size, stride, padding, dilation, ceil_mode)
    return stateless("sum_pool", functools.partial(
        ops.sum_pool, kernel_size=kernel_size, stride=stride, padding=padding,
        dilation=dilation, ceil_mode=ceil_mode))


def avg_pool(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
    """N-d average pooling layer; see :func:`jaxcnn.ops.avg_pool`.

    Example:
      >>> import jax
      >>> from jaxcnn import avg_pool
      >>> avg_pool(3, 2, padding=1).init(jax.random.key(0), (32, 32, 3))[0]
      (16, 16, 3)
    """
    where = "avg_pool"
    _check_pool_args(where, kernel_size, stride, padding, 1, ceil_mode)
    check_bool(where, "count_include_pad", count_include_pad)
    if divisor_override is not None and (not is_int(divisor_override) or divisor_override < 1):
        fail(where, "divisor_override", "None or a positive int", divisor_override)
    return stateless(where, functools.partial(
        ops.avg_pool, kernel_size=kernel_size, stride=stride, padding=padding,
        ceil_mode=ceil_mode, count_include_pad=count_include_pad,
        divisor_override=divisor_override))


def lp_pool(norm_type, kernel_size, stride=None, ceil_mode=False):
    """N-d power-average pooling layer; see :func:`jaxcnn.ops.lp_pool`.

    Example:
      >>> import jax
      >>> from jaxcnn import lp_pool
      >>> lp_pool(2, 3, 2, ceil_mode=True).init(jax.random.key(0), (8, 8, 3))[0]
      (4, 4, 3)
    """
    where = "lp_pool"
    _check_pool_args(where, kernel_size, stride, 0, 1, ceil_mode)
    check_norm_type(where, norm_type)
    return stateless(where, functools.partial(ops.lp_pool, norm_type=norm_type,
                                              kernel_size=kernel_size, stride=stride,
                                              ceil_mode=ceil_mode))


def global_avg_pool():
    """Mean over the spatial axes: ``(*spatial, C) -> (C,)``.

    Example:
      >>> import jax
      >>> from jaxcnn import global_avg_pool
      >>> global_avg_pool().init(jax.random.key(0), (8, 8, 64))[0]
      (64,)
    """
    return stateless("global_avg_pool", ops.global_avg_pool)


def global_max_pool():
    """Max over the spatial axes: ``(*spatial, C) -> (C,)``.

    Example:
      >>> import jax
      >>> from jaxcnn import global_max_pool
      >>> global_max_pool().init(jax.random.key(0), (100, 32))[0]
      (32,)
    """
    return stateless("global_max_pool", ops.global_max_pool)


def _check_output_size(where, output_size):
    n = len(output_size) if isinstance(output_size, (tuple, list)) else 1
    if n not in (1, 2, 3):
        fail(where, "output_size", "an int or a tuple of 1, 2 or 3 ints or None", output_size)
    adaptive_output_size(where, output_size, n)


def adaptive_avg_pool(output_size):
    """Average pooling to a fixed spatial size; see :func:`jaxcnn.ops.adaptive_avg_pool`.

    Example:
      >>> import jax
      >>> from jaxcnn import adaptive_avg_pool
      >>> adaptive_avg_pool((7, None)).init(jax.random.key(0), (30, 20, 16))[0]
      (7, 20, 16)
    """
    _check_output_size("adaptive_avg_pool", output_size)
    return stateless("adaptive_avg_pool",
                     functools.partial(ops.adaptive_avg_pool, output_size=output_size))


def adaptive_max_pool(output_size):
    """Max pooling to a fixed spatial size; see :func:`jaxcnn.ops.adaptive_max_pool`.

    Example:
      >>> import jax
      >>> from jaxcnn import adaptive_max_pool
      >>> adaptive_max_pool(1).init(jax.random.key(0), (9, 9, 9, 4))[0]
      (1, 1, 1, 4)
    """
    _check_output_size("adaptive_max_pool", output_size)
    return stateless("adaptive_max_pool",
                     functools.partial(ops.adaptive_max_pool, output_size=output_size))
