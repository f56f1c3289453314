"""On-device data augmentation: pure functions ``(key, batch) -> batch``.

Each factory checks its arguments and returns a function of a PRNG key and a batch
``(N, *spatial, C)`` that draws one random transformation per example, so it runs inside
the jitted training step (``fit(..., augment=...)``) on whole batches, with no host
round trip. :func:`compose` chains them.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jaxcnn.data import augment
  >>> aug = augment.compose(augment.random_crop(4), augment.random_flip())
  >>> aug(jax.random.key(0), jnp.ones((8, 32, 32, 3))).shape
  (8, 32, 32, 3)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy import ndimage

from jaxcnn._checks import check_choice, check_real, fail, is_int

PAD_MODES = ("reflect", "constant", "edge")
SAMPLE_MODES = ("constant", "nearest", "reflect", "mirror", "wrap")


def _check_batch(where, x, ranks=(1, 2, 3)):
    if x.ndim - 2 not in ranks:
        fail(where, "batch rank", " or ".join(str(r + 2) for r in ranks)
             + " (batched, channels-last)", x.ndim, "Augmentations take whole batches (N, ..., C)")


def compose(*fns):
    """Applies augmentations in order, each with its own key (``fold_in(key, i)``)."""
    for i, f in enumerate(fns):
        if not callable(f):
            fail("compose", f"argument {i}", "a function (key, batch) -> batch", f, exc=TypeError)

    def apply(key, x):
        for i, f in enumerate(fns):
            x = f(jax.random.fold_in(key, i), x)
        return x

    return apply


def random_crop(padding: int = 4, mode: str = "reflect"):
    """Pads each spatial side by ``padding`` and crops a random window of the original size.

    Every example gets its own offset, uniform over the ``(2 * padding + 1)^n`` windows:
    a random translation by up to ``padding`` pixels with the border filled by ``mode``
    (``"reflect"`` as ``numpy.pad``/PyTorch, ``"constant"`` zeros, ``"edge"`` repeats
    the border). The standard CIFAR augmentation is ``random_crop(4)``. Works in 1, 2
    and 3 spatial dimensions.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn.data.augment import random_crop
      >>> x = jnp.arange(8.0).reshape(2, 4, 1)  # two 1-d signals of length 4
      >>> random_crop(1)(jax.random.key(0), x).shape
      (2, 4, 1)
    """
    where = "random_crop"
    if not is_int(padding) or padding < 0:
        fail(where, "padding", "a non-negative int", padding)
    check_choice(where, "mode", mode, PAD_MODES)

    def apply(key, x):
        _check_batch(where, x)
        if padding == 0:
            return x
        n = x.ndim - 2
        if mode == "reflect" and min(x.shape[1:-1]) <= padding:
            fail(where, "padding", f"< the smallest spatial size {min(x.shape[1:-1])} for "
                 "reflect padding", padding, "Use mode='edge' or 'constant'")
        pad = [(0, 0)] + [(padding, padding)] * n + [(0, 0)]
        xp = jnp.pad(x, pad, mode=mode)
        offsets = jax.random.randint(key, (x.shape[0], n), 0, 2 * padding + 1)

        def crop(xi, off):
            start = tuple(off[i] for i in range(n)) + (jnp.zeros((), off.dtype),)
            return jax.lax.dynamic_slice(xi, start, x.shape[1:])

        return jax.vmap(crop)(xp, offsets)

    return apply


def random_shift(max_shift: int = 2, mode: str = "edge"):
    """Translates each example by up to ``max_shift`` pixels along every spatial axis.

    The same as ``random_crop(max_shift, mode)``; the default ``"edge"`` fill suits
    MNIST-like images whose border is background, whatever their normalisation.
    """
    if not is_int(max_shift) or max_shift < 0:
        fail("random_shift", "max_shift", "a non-negative int", max_shift)
    return random_crop(max_shift, mode)


def random_flip(p: float = 0.5, axis: str = "horizontal"):
    """Mirrors each example with probability ``p``: ``"horizontal"`` reverses the last
    spatial axis (width), ``"vertical"`` the one before (height).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn.data.augment import random_flip
      >>> x = jnp.arange(3.0).reshape(1, 1, 3, 1)
      >>> random_flip(p=1.0)(jax.random.key(0), x)[0, 0, :, 0]
      Array([2., 1., 0.], dtype=float32)
    """
    where = "random_flip"
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        fail(where, "p", "a probability in [0, 1]", p)
    check_choice(where, "axis", axis, ("horizontal", "vertical"))

    def apply(key, x):
        _check_batch(where, x, (2, 3) if axis == "vertical" else (1, 2, 3))
        ax = x.ndim - 2 if axis == "horizontal" else x.ndim - 3
        flip = jax.random.bernoulli(key, p, (x.shape[0],))
        return jnp.where(flip.reshape((-1,) + (1,) * (x.ndim - 1)), jnp.flip(x, ax), x)

    return apply


def affine(x, angle, shift, scale, *, mode: str = "nearest", cval: float = 0.0):
    """Rotates, scales and translates each image of a batch about its centre (bilinear).

    .. math::

       \\text{out}(p) = x\\big(c + S^{-1} R_{-\\theta}\\,(p - c - t)\\big)

    where :math:`c` is the image centre, :math:`\\theta` = ``angle`` (degrees,
    counter-clockwise as displayed with row 0 at the top), :math:`t` = ``shift``
    (pixels, ``(dy, dx)``) and :math:`S` = ``scale``; points that fall outside are filled
    by ``mode`` (as ``scipy.ndimage``; ``"constant"`` uses ``cval``).

    Args:
      x: ``(N, H, W, C)`` floating batch.
      angle: ``(N,)`` degrees. shift: ``(N, 2)`` pixels. scale: ``(N,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.data.augment import affine
      >>> x = jnp.arange(9.0).reshape(1, 3, 3, 1)
      >>> affine(x, jnp.array([90.0]), jnp.zeros((1, 2)), jnp.ones(1))[0, :, :, 0].round(4)
      Array([[2., 5., 8.],
             [1., 4., 7.],
             [0., 3., 6.]], dtype=float32)
    """
    where = "affine"
    _check_batch(where, x, (2,))
    check_choice(where, "mode", mode, SAMPLE_MODES)
    cval = check_real(where, "cval", cval)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        fail(where, "x.dtype", "floating (convert images to float first)", x.dtype, exc=TypeError)
    h, w = x.shape[1:3]
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=x.dtype), jnp.arange(w, dtype=x.dtype),
                              indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2

    def one(xi, a, t, s):
        theta = a.astype(x.dtype) * (math.pi / 180)
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        dy = rows - cy - t[0].astype(x.dtype)
        dx = cols - cx - t[1].astype(x.dtype)
        # inverse map: rotate the output offset back by theta (y axis points down)
        src_y = (cos * dy + sin * dx) / s.astype(x.dtype) + cy
        src_x = (cos * dx - sin * dy) / s.astype(x.dtype) + cx
        sample = lambda ch: ndimage.map_coordinates(ch, [src_y, src_x], order=1, mode=mode,
                                                    cval=cval)
        return jax.vmap(sample, in_axes=-1, out_axes=-1)(xi)

    return jax.vmap(one)(x, angle, shift, scale)


def random_affine(degrees: float = 0.0, translate: float = 0.0, scale=(1.0, 1.0), *,
                  mode: str = "nearest", cval: float = 0.0):
    """Random rotation in ``[-degrees, degrees]``, translation in ``[-translate, translate]``
    pixels per axis and scale in ``[scale[0], scale[1]]``, one draw per example, applied
    with :func:`affine` (bilinear, 2-d images). The MNIST augmentation in the experiment
    is ``random_affine(10, 2)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn.data.augment import random_affine
      >>> random_affine(10, 2)(jax.random.key(0), jnp.ones((4, 28, 28, 1))).shape
      (4, 28, 28, 1)
    """
    where = "random_affine"
    for name, v in (("degrees", degrees), ("translate", translate)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
            fail(where, name, "a non-negative number", v)
    if (not isinstance(scale, (tuple, list)) or len(scale) != 2 or not 0 < scale[0] <= scale[1]):
        fail(where, "scale", "a pair (low, high) with 0 < low <= high", scale)
    check_choice(where, "mode", mode, SAMPLE_MODES)
    cval = check_real(where, "cval", cval)

    def apply(key, x):
        _check_batch(where, x, (2,))
        n = x.shape[0]
        ka, kt, ks = jax.random.split(key, 3)
        angle = jax.random.uniform(ka, (n,), minval=-degrees, maxval=degrees)
        shift = jax.random.uniform(kt, (n, 2), minval=-translate, maxval=translate)
        s = jax.random.uniform(ks, (n,), minval=scale[0], maxval=scale[1])
        return affine(x, angle, shift, s, mode=mode, cval=cval)

    return apply


def random_rotation(degrees: float = 10.0, *, mode: str = "nearest", cval: float = 0.0):
    """Rotates each image by a uniform angle in ``[-degrees, degrees]`` (bilinear)."""
    return random_affine(degrees, 0.0, mode=mode, cval=cval)
