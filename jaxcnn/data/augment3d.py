"""On-device augmentation of voxel batches ``(N, D, H, W, C)``: pure ``(key, batch) -> batch``.

Axis ``D`` (grid axis 0) is vertical, as :mod:`jaxcnn.data.voxels` lays grids out, so
upright objects (ModelNet) stay upright: rotations turn the ``(H, W)`` plane, flips
mirror ``H`` and/or ``W``. Chain them with :func:`jaxcnn.data.augment.compose`.

Example:
  >>> import jax, jax.numpy as jnp
  >>> from jaxcnn.data import augment, augment3d
  >>> aug = augment.compose(augment3d.random_rotation_vertical(), augment3d.random_flip3d(),
  ...                       augment3d.random_shift3d(2))
  >>> aug(jax.random.key(0), jnp.ones((4, 8, 8, 8, 1))).shape
  (4, 8, 8, 8, 1)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxcnn._checks import check_bool, check_choice, fail, is_int
from jaxcnn.data.augment import random_crop


def _check_voxels(where, x):
    if x.ndim != 5:
        fail(where, "batch rank", "5 (N, D, H, W, C)", x.ndim,
             "Voxel augmentations take whole channels-last batches; add axes with x[..., None]")


def rotate_vertical(x, angle, *, order: int = 1, cval: float = 0.0):
    """Rotates each grid of ``x`` ``(N, D, H, W, C)`` by ``angle[i]`` radians about the
    vertical axis (through the grid centre), resampling every ``D`` slice.

    Output voxel :math:`(h, w)` (centred coordinates :math:`u, v`) reads the input at

    .. math::
       \\begin{pmatrix} u' \\\\ v' \\end{pmatrix} =
       \\begin{pmatrix} \\cos\\theta & \\sin\\theta \\\\ -\\sin\\theta & \\cos\\theta
       \\end{pmatrix} \\begin{pmatrix} u \\\\ v \\end{pmatrix}

    so :math:`\\theta = \\pi / 2` equals ``np.rot90(x, 1, axes=(2, 3))`` on a square grid;
    ``order`` 0 is nearest, 1 linear; outside points read ``cval``.

    Example:
      >>> import jax.numpy as jnp, numpy as np
      >>> from jaxcnn.data.augment3d import rotate_vertical
      >>> x = jnp.arange(8.0).reshape(1, 2, 2, 2, 1)
      >>> y = rotate_vertical(x, jnp.full((1,), np.pi / 2), order=0)
      >>> bool((y == np.rot90(x, 1, axes=(2, 3))).all())
      True
    """
    where = "rotate_vertical"
    _check_voxels(where, x)
    check_choice(where, "order", order, (0, 1))
    _, _, h, w, _ = x.shape
    uu, vv = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2,
                          jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2, indexing="ij")

    def read(xi, i, j):  # xi (D, H, W, C) at integer (i, j) planes, cval outside
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        v = xi[:, jnp.clip(i, 0, h - 1), jnp.clip(j, 0, w - 1), :]
        return jnp.where(inside[None, :, :, None], v, jnp.asarray(cval, xi.dtype))

    def one(xi, theta):
        c, s = jnp.cos(theta), jnp.sin(theta)
        si, sj = c * uu + s * vv + (h - 1) / 2, -s * uu + c * vv + (w - 1) / 2
        if order == 0:
            return read(xi, jnp.round(si).astype(jnp.int32), jnp.round(sj).astype(jnp.int32))
        i0, j0 = jnp.floor(si), jnp.floor(sj)
        fi, fj = (si - i0)[None, :, :, None], (sj - j0)[None, :, :, None]
        i0, j0 = i0.astype(jnp.int32), j0.astype(jnp.int32)
        top = read(xi, i0, j0) * (1 - fj) + read(xi, i0, j0 + 1) * fj
        bottom = read(xi, i0 + 1, j0) * (1 - fj) + read(xi, i0 + 1, j0 + 1) * fj
        return (top * (1 - fi) + bottom * fi).astype(xi.dtype)

    return jax.vmap(one)(x, jnp.asarray(angle, jnp.float32))


def random_rotation_vertical(degrees: float = 180.0, *, order: int = 1, quarter_turns=False):
    """Rotates each example about the vertical axis by an angle uniform in
    ``[-degrees, degrees]`` (:func:`rotate_vertical`), or, with ``quarter_turns=True``,
    by a random multiple of 90 degrees (exact, no resampling).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn.data.augment3d import random_rotation_vertical
      >>> random_rotation_vertical(30.0)(jax.random.key(0), jnp.ones((2, 6, 6, 6, 1))).shape
      (2, 6, 6, 6, 1)
    """
    where = "random_rotation_vertical"
    if not isinstance(degrees, (int, float)) or isinstance(degrees, bool) or not (
            0 <= degrees <= 180):
        fail(where, "degrees", "a number in [0, 180]", degrees)
    check_choice(where, "order", order, (0, 1))
    quarter_turns = check_bool(where, "quarter_turns", quarter_turns)

    def apply(key, x):
        _check_voxels(where, x)
        if quarter_turns:
            if x.shape[2] != x.shape[3]:
                fail(where, "the grid's (H, W)", "square for quarter turns", x.shape[2:4])
            k = jax.random.randint(key, (x.shape[0],), 0, 4)
            turns = [jnp.rot90(x, i, axes=(2, 3)) for i in range(4)]
            return jnp.choose(k.reshape((-1,) + (1,) * 4), turns, mode="clip")
        angle = jax.random.uniform(key, (x.shape[0],), jnp.float32, -1.0, 1.0)
        return rotate_vertical(x, angle * (degrees * math.pi / 180), order=order)

    return apply


def random_flip3d(axes=(1, 2), p: float = 0.5):
    """Mirrors each example along each of the spatial ``axes`` (0 = ``D``, vertical;
    1 = ``H``; 2 = ``W``) independently with probability ``p``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn.data.augment3d import random_flip3d
      >>> x = jnp.arange(4.0).reshape(1, 1, 1, 4, 1)
      >>> random_flip3d(axes=(2,), p=1.0)(jax.random.key(0), x)[0, 0, 0, :, 0]
      Array([3., 2., 1., 0.], dtype=float32)
    """
    where = "random_flip3d"
    if (not isinstance(axes, (tuple, list)) or not axes
            or not all(is_int(a) and 0 <= a <= 2 for a in axes)):
        fail(where, "axes", "a non-empty tuple of spatial axes in {0, 1, 2}", axes)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        fail(where, "p", "a probability in [0, 1]", p)
    axes = tuple(sorted(set(axes)))

    def apply(key, x):
        _check_voxels(where, x)
        flips = jax.random.bernoulli(key, p, (len(axes), x.shape[0]))
        for i, a in enumerate(axes):
            x = jnp.where(flips[i].reshape((-1, 1, 1, 1, 1)), jnp.flip(x, a + 1), x)
        return x

    return apply


def random_shift3d(max_shift: int = 2, mode: str = "constant"):
    """Translates each example by up to ``max_shift`` voxels along every spatial axis
    (uniform integer offsets), filling with zeros (``"constant"``: empty space) or as
    :func:`jaxcnn.data.augment.random_crop` does for other ``mode``\\ s."""
    if not is_int(max_shift) or max_shift < 0:
        fail("random_shift3d", "max_shift", "a non-negative int", max_shift)
    crop = random_crop(max_shift, mode)

    def apply(key, x):
        _check_voxels("random_shift3d", x)
        return crop(key, x)

    return apply


def default_augment(rotation: str = "vertical", max_shift: int = 2):
    """The voxel experiments' augmentation: rotation about the vertical axis
    (``"vertical"`` any angle, ``"quarter"`` multiples of 90 degrees, ``"none"``), random
    flips of the two horizontal axes, shifts by up to ``max_shift`` voxels."""
    from jaxcnn.data.augment import compose

    check_choice("default_augment", "rotation", rotation, ("vertical", "quarter", "none"))
    parts = []
    if rotation != "none":
        parts.append(random_rotation_vertical(quarter_turns=rotation == "quarter"))
    parts += [random_flip3d((1, 2))] + ([random_shift3d(max_shift)] if max_shift else [])
    return compose(*parts)
