"""ModelNet-style ``.off`` meshes: a checked reader and a vectorised voxeliser.

The voxeliser scales the mesh's bounding box (its longest side) to the grid less a
border, centres it, and marks

* ``"surface"``: every voxel that a point sampled on a triangle falls in (triangles are
  sampled on a barycentric lattice finer than half a voxel);
* ``"solid"``: the surface voxels plus every voxel centre inside the mesh, by ray parity
  (the number of crossings of a ray from below, counted per column) along each of the
  three axes, with a majority vote so a small hole in a mesh does not leak.

Meshes use ``(x, y, z)`` with ``z`` up, as ModelNet; grid axes are ``(z, y, x)``, so axis
0 is vertical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxcnn._checks import check_choice, fail, is_int
from jaxcnn.data._dataset import VoxelData

_SAMPLE_STEP = 0.4   # lattice spacing on triangles, in voxels
_RAY_OFFSET = (1.234567e-4, 7.654321e-5)   # keeps rays off shared triangle edges


def _tokens(path):
    """``(line_number, tokens)`` of the non-empty, non-comment lines of a text file."""
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            toks = line.split("#", 1)[0].split()
            if toks:
                yield lineno, toks


def _ints(where, lineno, toks, what):
    try:
        return [int(t) for t in toks]
    except ValueError:
        fail(where, f"line {lineno} ({what})", "integers", " ".join(toks))


def read_off(path):
    """Reads an ``.off`` mesh: ``(vertices (V, 3) float32, triangles (T, 3) int32)``.

    Polygons with more than three corners are split into fans. The ModelNet quirk of the
    counts on the header line (``OFF490 518 0``) is accepted. A malformed file raises a
    ``ValueError`` that names the file and the line.

    Example:
      >>> import pathlib, tempfile
      >>> from jaxcnn.data.voxels import read_off
      >>> p = pathlib.Path(tempfile.mkdtemp()) / "tri.off"
      >>> _ = p.write_text("OFF\\n3 1 0\\n0 0 0\\n1 0 0\\n0 1 0\\n3 0 1 2\\n")
      >>> v, t = read_off(p)
      >>> v.shape, t.tolist()
      ((3, 3), [[0, 1, 2]])
    """
    path = Path(path)
    where = f"read_off({path.name})"
    lines = _tokens(path)
    lineno, toks = next(lines, (1, [""]))
    if not toks[0].upper().startswith("OFF"):
        fail(where, f"line {lineno} (the header)", "'OFF'", " ".join(toks),
             "This is not an OFF mesh")
    rest = toks[0][3:]
    counts = ([rest] if rest else []) + toks[1:]
    if not counts:
        lineno, counts = next(lines, (lineno + 1, []))
    counts = _ints(where, lineno, counts, "the counts")
    if len(counts) < 2 or min(counts[:2]) < 0:
        fail(where, f"line {lineno} (the counts)", "'num_vertices num_faces [num_edges]'",
             " ".join(map(str, counts)))
    nv, nf = counts[:2]
    verts = np.empty((nv, 3), np.float32)
    for i in range(nv):
        lineno, toks = next(lines, (None, None))
        if toks is None:
            fail(where, "the number of vertex lines", f"{nv} (from the header)", i,
                 "The file is truncated")
        try:
            verts[i] = [float(t) for t in toks[:3]]
        except ValueError:
            fail(where, f"line {lineno} (vertex {i})", "three numbers x y z", " ".join(toks))
        if len(toks) < 3:
            fail(where, f"line {lineno} (vertex {i})", "three numbers x y z", " ".join(toks))
    tris = []
    for i in range(nf):
        lineno, toks = next(lines, (None, None))
        if toks is None:
            fail(where, "the number of face lines", f"{nf} (from the header)", i,
                 "The file is truncated")
        face = _ints(where, lineno, toks, f"face {i}")
        k = face[0]
        if k < 3 or len(face) < k + 1:
            fail(where, f"line {lineno} (face {i})", "'n i_1 ... i_n' with n >= 3",
                 " ".join(toks))
        idx = face[1:k + 1]
        if min(idx) < 0 or max(idx) >= nv:
            fail(where, f"line {lineno} (face {i}) vertex indices", f"in [0, {nv})", idx)
        tris += [(idx[0], idx[j], idx[j + 1]) for j in range(1, k - 1)]
    return verts, np.asarray(tris, np.int32).reshape(-1, 3)


def _fit(vertices, grid, padding):
    """Vertices in voxel units (grid axes z, y, x): bounding box centred, longest side
    ``grid - 2 * padding`` (less a hair, so flat faces miss the voxel boundaries)."""
    v = np.asarray(vertices, np.float64)[:, ::-1]
    lo, hi = v.min(0), v.max(0)
    extent = float((hi - lo).max())
    scale = (grid - 2 * padding - 1e-3) / extent if extent > 0 else 1.0
    return (v - (lo + hi) / 2) * scale + grid / 2


def _surface(tri, grid):
    """Voxels hit by points on a barycentric lattice over each triangle ``(T, 3, 3)``."""
    occ = np.zeros((grid,) * 3, bool)
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=-1).max(-1)
    steps = np.maximum(np.ceil(edges / _SAMPLE_STEP), 1).astype(int)
    for k in np.unique(steps):
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = i + j <= k
        bary = np.stack([i[keep], j[keep], k - i[keep] - j[keep]], -1) / k  # (P, 3)
        pts = np.einsum("pa,tad->tpd", bary, tri[steps == k]).reshape(-1, 3)
        idx = np.clip(np.floor(pts).astype(int), 0, grid - 1)
        occ[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return occ


def _parity(tri, grid, axis):
    """Voxel centres inside the mesh by crossings of rays along ``axis`` (bool grid)."""
    a, b = [d for d in range(3) if d != axis]
    centres = np.arange(grid) + 0.5
    ca, cb = np.meshgrid(centres + _RAY_OFFSET[0], centres + _RAY_OFFSET[1], indexing="ij")
    ca, cb = ca.ravel(), cb.ravel()                                # (G*G,) ray positions
    below = np.zeros((grid + 1, grid * grid), np.int32)
    for lo in range(0, len(tri), 256):
        t = tri[lo:lo + 256]
        p0, p1, p2 = t[:, 0], t[:, 1], t[:, 2]
        det = (p1[:, a] - p0[:, a]) * (p2[:, b] - p0[:, b]) - (p2[:, a] - p0[:, a]) * (
            p1[:, b] - p0[:, b])
        ok = np.abs(det) > 1e-12
        det = np.where(ok, det, 1.0)[:, None]
        da, db = ca[None] - p0[:, a, None], cb[None] - p0[:, b, None]
        u = (da * (p2[:, b, None] - p0[:, b, None]) - db * (p2[:, a, None] - p0[:, a, None])) / det
        v = (db * (p1[:, a, None] - p0[:, a, None]) - da * (p1[:, b, None] - p0[:, b, None])) / det
        hit = ok[:, None] & (u >= 0) & (v >= 0) & (u + v <= 1)
        tri_i, ray = np.nonzero(hit)
        depth = (p0[tri_i, axis] + u[tri_i, ray] * (p1[tri_i, axis] - p0[tri_i, axis])
                 + v[tri_i, ray] * (p2[tri_i, axis] - p0[tri_i, axis]))
        # the first voxel whose centre lies above the crossing
        first = np.clip(np.floor(depth - 0.5) + 1, 0, grid).astype(int)
        np.add.at(below, (first, ray), 1)
    inside = (np.cumsum(below, axis=0)[:grid] % 2).astype(bool)    # (G, G*G)
    inside = inside.reshape(grid, grid, grid)                      # (axis, a, b)
    return np.moveaxis(inside, 0, axis)


def voxelize_mesh(vertices, triangles, grid: int = 32, *, mode: str = "solid",
                  padding: int = 1) -> np.ndarray:
    """An occupancy grid ``(grid, grid, grid)`` ``uint8`` ``{0, 1}`` of a triangle mesh.

    Args:
      vertices: ``(V, 3)`` ``(x, y, z)``, ``z`` up.
      triangles: ``(T, 3)`` vertex indices (as :func:`read_off` returns).
      grid: the grid size.
      mode: ``"surface"`` (a shell) or ``"solid"`` (filled; needs a closed mesh).
      padding: empty voxels kept on each side of the longest axis.

    Example:
      >>> import numpy as np
      >>> from jaxcnn.data.voxels import voxelize_mesh
      >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
      >>> t = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
      >>> int(voxelize_mesh(v, t, 8, mode="solid", padding=0).sum())  # about 512 / 6
      120
    """
    where = "voxelize_mesh"
    check_choice(where, "mode", mode, ("surface", "solid"))
    if not is_int(grid) or grid < 2:
        fail(where, "grid", "an int >= 2", grid)
    if not is_int(padding) or not 0 <= 2 * padding < grid:
        fail(where, "padding", f"an int in [0, {(grid - 1) // 2}]", padding)
    vertices, triangles = np.asarray(vertices), np.asarray(triangles)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        fail(where, "vertices shape", "(V, 3) with V >= 1", vertices.shape)
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        fail(where, "triangles shape", "(T, 3)", triangles.shape)
    if triangles.size and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        fail(where, "triangle vertex indices", f"in [0, {len(vertices)})",
             (int(triangles.min()), int(triangles.max())))
    tri = _fit(vertices, grid, padding)[triangles]                     # (T, 3, 3)
    occ = _surface(tri, grid) if len(tri) else np.zeros((grid,) * 3, bool)
    if mode == "solid" and len(tri):
        votes = sum(_parity(tri, grid, axis).astype(np.int8) for axis in range(3))
        occ |= votes >= 2
    return occ.astype(np.uint8)


def load_off_folder(root, grid: int = 32, *, mode: str = "solid", padding: int = 1,
                    classes=None):
    """A ModelNet folder ``root/<class>/{train,test}/*.off`` as a ``VoxelData``.

    Classes are the sub-folders in sorted order (or ``classes``); files are read in
    sorted order. Voxelising a mesh takes milliseconds at ``32^3``; cache the result
    (``np.savez``) for the full ModelNet.
    """
    root = Path(root)
    where = "load_off_folder"
    if not root.is_dir():
        fail(where, "root", "an existing folder <root>/<class>/{train,test}/*.off", str(root))
    classes = tuple(classes or sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not classes:
        fail(where, f"the sub-folders of {root}", "one folder per class", "none")
    out = []
    for split in ("train", "test"):
        xs, ys = [], []
        for label, name in enumerate(classes):
            for f in sorted((root / name / split).glob("*.off")):
                xs.append(voxelize_mesh(*read_off(f), grid, mode=mode, padding=padding))
                ys.append(label)
        if not xs:
            fail(where, f"the {split} meshes", f"present as {root}/<class>/{split}/*.off",
                 "none found")
        out += [np.stack(xs)[..., None], np.asarray(ys, np.int32)]
    return VoxelData(*out, classes)
