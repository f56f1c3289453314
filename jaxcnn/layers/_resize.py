"""Resizing layers: ``upsample`` (PyTorch's ``nn.Upsample``) and pixel (un)shuffle."""

from __future__ import annotations

import functools

from jaxcnn import ops
from jaxcnn._checks import check_resize_args, fail, is_int
from jaxcnn.layers._base import stateless


def upsample(size=None, scale_factor=None, mode="nearest", align_corners=False):
    """Resizes the spatial axes (PyTorch's ``nn.Upsample``); see :func:`jaxcnn.ops.upsample`.

    Example:
      >>> import jax
      >>> from jaxcnn import upsample
      >>> upsample(scale_factor=2, mode="linear").init(jax.random.key(0), (7, 7, 3))[0]
      (14, 14, 3)
    """
    check_resize_args("upsample", size, scale_factor, mode, align_corners)
    return stateless("upsample", functools.partial(
        ops.upsample, size=size, scale_factor=scale_factor, mode=mode,
        align_corners=align_corners))


def _check_factor(where, what, factor):
    seq = factor if isinstance(factor, (tuple, list)) else (factor,)
    if not seq or not all(is_int(f) for f in seq):
        fail(where, what, "an int or a tuple of ints", factor, exc=TypeError)
    if any(f < 1 for f in seq):
        fail(where, what, ">= 1", factor)


def pixel_shuffle(upscale_factor):
    """Channels to space, ``(*S, C * r^n) -> (*(S * r), C)``; see
    :func:`jaxcnn.ops.pixel_shuffle`.

    Example:
      >>> import jax
      >>> from jaxcnn import pixel_shuffle
      >>> pixel_shuffle(2).init(jax.random.key(0), (7, 7, 12))[0]
      (14, 14, 3)
    """
    _check_factor("pixel_shuffle", "upscale_factor", upscale_factor)
    return stateless("pixel_shuffle", functools.partial(ops.pixel_shuffle,
                                                        upscale_factor=upscale_factor))


def pixel_unshuffle(downscale_factor):
    """Space to channels, ``(*(S * r), C) -> (*S, C * r^n)``; see
    :func:`jaxcnn.ops.pixel_unshuffle`.

    Example:
      >>> import jax
      >>> from jaxcnn import pixel_unshuffle
      >>> pixel_unshuffle(2).init(jax.random.key(0), (8, 8, 3))[0]
      (4, 4, 12)
    """
    _check_factor("pixel_unshuffle", "downscale_factor", downscale_factor)
    return stateless("pixel_unshuffle", functools.partial(ops.pixel_unshuffle,
                                                          downscale_factor=downscale_factor))
