"""Procedural 3-d shapes as occupancy grids, vectorised in numpy (no per-voxel loops).

Each shape is a signed distance function ``f`` (negative inside) in the object's own
frame, where it fits in the unit ball. A sample draws a rotation ``R`` (uniform over
:math:`SO(3)`), a scale ``s``, a centre ``t``, and either a solid body or a shell of random
thickness; voxel centres ``c`` are mapped into the object frame and kept when

.. math::
   -\\tau < s\\, f\\!\\left(R^\\top (c - t) / s\\right) + \\epsilon(c) \\le 0

with shell thickness :math:`\\tau` (``inf`` for a solid) and surface noise
:math:`\\epsilon \\sim \\mathcal{N}(0, \\sigma^2)` per voxel; then a fraction (up to
``noise``) of all voxels is flipped.
"""

from __future__ import annotations

import numpy as np

from jaxcnn._checks import check_choice, fail, is_int

SHAPE_CLASSES = ("sphere", "cube", "cylinder", "cone", "torus", "pyramid", "ellipsoid",
                 "capsule")
EXTRA_SHAPES = ("octahedron",)
_CHUNK = 64


def _radial(p):
    return np.sqrt(p[..., 1] ** 2 + p[..., 2] ** 2)


def _sphere(rng, n):
    del rng, n
    return lambda p: np.linalg.norm(p, axis=-1) - 1.0


def _cube(rng, n):
    b = rng.uniform(0.55, 0.62, (n, 1, 1)).astype(np.float32)

    def f(p, b):
        q = np.abs(p) - b
        return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(-1), 0)

    return f, b


def _cylinder(rng, n):
    r, h = rng.uniform((0.38, 0.75), (0.5, 0.88), (n, 2)).T  # elongated: h / r >= 1.5

    def f(p, r, h):
        d0, d1 = _radial(p) - r, np.abs(p[..., 0]) - h
        return (np.minimum(np.maximum(d0, d1), 0)
                + np.sqrt(np.maximum(d0, 0) ** 2 + np.maximum(d1, 0) ** 2))

    return f, r, h


def _cone(rng, n):
    r, h = rng.uniform((0.6, 0.65), (0.8, 0.85), (n, 2)).T

    def f(p, r, h):
        side = (2 * h * _radial(p) + r * p[..., 0] - r * h) / np.sqrt(4 * h * h + r * r)
        return np.maximum(side, -p[..., 0] - h)

    return f, r, h


def _pyramid(rng, n):
    b, h = rng.uniform((0.55, 0.65), (0.68, 0.85), (n, 2)).T

    def f(p, b, h):
        norm = np.sqrt(4 * h * h + b * b)
        sx = (2 * h * np.abs(p[..., 2]) + b * p[..., 0] - b * h) / norm
        sy = (2 * h * np.abs(p[..., 1]) + b * p[..., 0] - b * h) / norm
        return np.maximum(np.maximum(sx, sy), -p[..., 0] - h)

    return f, b, h


def _torus(rng, n):
    big, small = rng.uniform((0.6, 0.2), (0.75, 0.3), (n, 2)).T

    def f(p, big, small):
        return np.sqrt((_radial(p) - big) ** 2 + p[..., 0] ** 2) - small

    return f, big, small


def _ellipsoid(rng, n):
    b, c = rng.uniform((0.6, 0.3), (0.8, 0.42), (n, 2)).T  # three distinct radii

    def f(p, b, c):
        radii = np.stack([np.ones_like(b), b, c], -1)  # (m, 1, 3)
        k0 = np.linalg.norm(p / radii, axis=-1)
        k1 = np.linalg.norm(p / radii ** 2, axis=-1)
        return k0 * (k0 - 1) / np.maximum(k1, 1e-6)

    return f, b, c


def _capsule(rng, n):
    r, h = rng.uniform((0.32, 0.5), (0.42, 0.6), (n, 2)).T

    def f(p, r, h):
        q0 = p[..., 0] - np.clip(p[..., 0], -h, h)
        return np.sqrt(q0 ** 2 + p[..., 1] ** 2 + p[..., 2] ** 2) - r

    return f, r, h


def _octahedron(rng, n):
    del rng, n
    return lambda p: (np.abs(p).sum(-1) - 1.0) * np.float32(1 / np.sqrt(3))


_SHAPES = {"sphere": _sphere, "cube": _cube, "cylinder": _cylinder, "cone": _cone,
           "torus": _torus, "pyramid": _pyramid, "ellipsoid": _ellipsoid, "capsule": _capsule,
           "octahedron": _octahedron}


def _rotations(rng, n, rotation):
    """``n`` rotation matrices: uniform on SO(3) (normalised Gaussian quaternions), about
    the vertical axis 0 only, or identities."""
    if rotation == "none":
        return np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    if rotation == "vertical":
        a = rng.uniform(0, 2 * np.pi, n)
        c, s, z, o = np.cos(a), np.sin(a), np.zeros(n), np.ones(n)
        return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1),
                         np.stack([z, s, c], -1)], -2)
    w, x, y, z = (rng.standard_normal((4, n)))
    norm = np.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def _check_range(where, what, value, low, high):
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
          and low <= value[0] <= value[1] <= high)
    if not ok:
        fail(where, what, f"a pair (min, max) with {low} <= min <= max <= {high}", value)
    return tuple(float(v) for v in value)


def _render(name, rng, n, grid, centres, scale, thickness, hollow, surface_noise, noise,
            rotation):
    """Occupancy ``(n, grid, grid, grid)`` uint8 of ``n`` samples of one class."""
    # All random numbers are drawn up front, in a fixed order, so chunking cannot change them.
    shape = _SHAPES[name](rng, n)
    f, params = (shape, ()) if callable(shape) else (shape[0], shape[1:])
    params = [np.asarray(a, np.float32).reshape(n, 1) for a in params]
    params = [a.reshape(n, 1, 1) if name == "cube" else a for a in params]
    rot = _rotations(rng, n, rotation).astype(np.float32)
    s = rng.uniform(*scale, n).astype(np.float32)
    margin = np.maximum(0.95 - s, 0.0)
    t = (rng.uniform(-1, 1, (n, 3)) * margin[:, None]).astype(np.float32)
    voxel = 2.0 / grid
    tau = np.where(rng.uniform(size=n) < hollow, rng.uniform(*thickness, n) * voxel,
                   np.inf).astype(np.float32)
    flip_p = rng.uniform(0, noise, n).astype(np.float32)
    seeds = rng.integers(0, 2 ** 63, n)
    out = np.empty((n, grid ** 3), np.uint8)
    for lo in range(0, n, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        m = len(rot[sl])
        local = (centres[None] - t[sl, None, :]) @ rot[sl]          # rows: R^T (c - t)
        local /= s[sl, None, None]
        dist = f(local, *(a[sl] for a in params)) * s[sl, None]
        noise_rng = np.random.default_rng(seeds[sl])
        dist += noise_rng.standard_normal(dist.shape, np.float32) * np.float32(
            surface_noise * voxel)
        occ = (dist <= 0) & (dist > -tau[sl, None])
        occ ^= noise_rng.random(dist.shape, np.float32) < flip_p[sl, None]
        out[sl] = occ.reshape(m, -1)
    return out.reshape(n, grid, grid, grid)


def make_shapes(num_per_class: int, *, grid: int = 32, seed=0, classes=SHAPE_CLASSES,
                scale=(0.6, 0.9), thickness=(1.5, 3.5), hollow: float = 0.5,
                surface_noise: float = 0.3, noise: float = 0.002, rotation: str = "full"):
    """Balanced, shuffled, labelled procedural shapes: ``(x, y)`` numpy arrays.

    Every class gets ``num_per_class`` samples with a random pose (``rotation``), scale,
    position, solidity and noise; the result depends only on the arguments (``seed``
    may be an int or a tuple of ints).

    Args:
      num_per_class: samples per class.
      grid: the grid size; ``x`` is ``(K * num_per_class, grid, grid, grid, 1)``.
      classes: names from ``SHAPE_CLASSES`` (and ``EXTRA_SHAPES``); label ``i`` is
        ``classes[i]``.
      scale: range of the radius of the bounding ball, as a fraction of the half-grid.
      thickness: range of the shell thickness in voxels, for hollow samples.
      hollow: probability that a sample is a shell rather than a solid.
      surface_noise: standard deviation (in voxels) of the jitter of the surface.
      noise: maximum per-sample probability of flipping a voxel (salt and pepper).
      rotation: ``"full"`` (uniform over SO(3)), ``"vertical"`` (about axis 0) or ``"none"``.

    Returns:
      ``x`` ``uint8`` occupancy ``{0, 1}`` of shape ``(N, grid, grid, grid, 1)`` and ``y``
      ``int32`` labels ``(N,)``.

    Example:
      >>> from jaxcnn.data.voxels import make_shapes
      >>> x, y = make_shapes(3, grid=8, classes=("sphere", "cube"), seed=1)
      >>> x.shape, sorted(y.tolist())
      ((6, 8, 8, 8, 1), [0, 0, 0, 1, 1, 1])
    """
    where = "make_shapes"
    if not is_int(num_per_class) or num_per_class < 0:
        fail(where, "num_per_class", "a non-negative int", num_per_class)
    if not is_int(grid) or grid < 4:
        fail(where, "grid", "an int >= 4", grid)
    if isinstance(classes, str) or not classes:
        fail(where, "classes", "a non-empty sequence of shape names", classes, exc=TypeError)
    for c in classes:
        check_choice(where, "each class", c, SHAPE_CLASSES + EXTRA_SHAPES)
    check_choice(where, "rotation", rotation, ("full", "vertical", "none"))
    scale = _check_range(where, "scale", scale, 0.05, 1.0)
    thickness = _check_range(where, "thickness", thickness, 0.0, float(grid))
    for what, v in (("hollow", hollow), ("noise", noise)):
        if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            fail(where, what, "a probability in [0, 1]", v)
    if not isinstance(surface_noise, (int, float)) or surface_noise < 0:
        fail(where, "surface_noise", "a non-negative number of voxels", surface_noise)
    rng = np.random.default_rng(seed)
    axis = (np.arange(grid, dtype=np.float32) + 0.5) * (2.0 / grid) - 1.0
    centres = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    k = len(classes)
    y = np.repeat(np.arange(k, dtype=np.int32), num_per_class)
    x = np.empty((k * num_per_class, grid, grid, grid, 1), np.uint8)
    for label, name in enumerate(classes):
        x[label * num_per_class:(label + 1) * num_per_class, ..., 0] = _render(
            name, rng, num_per_class, grid, centres, scale, thickness, hollow, surface_noise,
            noise, rotation)
    order = rng.permutation(len(y))
    return x[order], y[order]
