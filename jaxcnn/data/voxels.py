"""3-d voxel classification data: procedural shapes, MedMNIST-style ``.npz`` files, and
ModelNet-style ``.off`` meshes voxelised into occupancy grids.

Grids are channels-last ``(N, D, H, W, 1)``; axis 0 of a grid (depth, ``z``) is the
vertical axis, the one :mod:`jaxcnn.data.augment3d` rotates about. Occupancy lies in
``[0, 1]``: ``uint8`` when a grid holds only 0 and 1, ``float32`` otherwise (after
mean-downsampling, or for grey-valued volumes).

Example:
  >>> from jaxcnn.data.voxels import make_shapes
  >>> x, y = make_shapes(2, grid=16, seed=0)
  >>> x.shape, x.dtype, y.tolist()[:4]
  ((16, 16, 16, 16, 1), dtype('uint8'), [1, 7, 4, 5])
"""

from __future__ import annotations

import numpy as np

from jaxcnn._checks import check_choice, check_positive_int, fail
from jaxcnn.data._dataset import VoxelData  # noqa: F401  (public here)
from jaxcnn.data._dataset import check_labels, check_pair, read_npz
from jaxcnn.data._voxel_mesh import load_off_folder, read_off, voxelize_mesh  # noqa: F401
from jaxcnn.data._voxel_shapes import SHAPE_CLASSES, make_shapes  # noqa: F401


def load_shapes(grid: int = 32, *, train_per_class: int = 200, val_per_class: int = 50,
                test_per_class: int = 100, seed: int = 0, classes=SHAPE_CLASSES,
                **kwargs) -> VoxelData:
    """Procedural shapes (:func:`make_shapes`), with independent train/val/test draws.

    The three splits come from the seeds ``(seed, 0)``, ``(seed, 1)``, ``(seed, 2)``, so no
    object occurs twice and each split is balanced. ``kwargs`` go to :func:`make_shapes`.

    Example:
      >>> from jaxcnn.data.voxels import load_shapes
      >>> d = load_shapes(12, train_per_class=2, val_per_class=1, test_per_class=1)
      >>> d.x_train.shape, d.x_val.shape, d.x_test.shape, len(d.class_names)
      ((16, 12, 12, 12, 1), (8, 12, 12, 12, 1), (8, 12, 12, 12, 1), 8)
    """
    splits = [make_shapes(n, grid=grid, seed=(seed, i), classes=classes, **kwargs)
              for i, n in enumerate((train_per_class, val_per_class, test_per_class))]
    (xtr, ytr), (xva, yva), (xte, yte) = splits
    return VoxelData(xtr, ytr, xte, yte, tuple(classes), xva, yva)


def downsample(x, factor: int, mode: str = "mean") -> np.ndarray:
    """Shrinks the spatial axes of ``(N, D, H, W[, C])`` grids by an integer ``factor``.

    ``"mean"`` averages each ``factor^3`` block (the fraction of occupied voxels, as
    ``float32``); ``"max"`` keeps a block occupied if any voxel is (same dtype as ``x``).
    Works in chunks, so a large ``uint8`` set never exists in ``float32`` at full size.

    Example:
      >>> import numpy as np
      >>> from jaxcnn.data.voxels import downsample
      >>> x = np.zeros((1, 4, 4, 4), np.uint8); x[0, 0, 0, 0] = 1
      >>> downsample(x, 2)[0, 0, 0, 0], downsample(x, 2, "max")[0, 0, 0, 0]
      (np.float32(0.125), np.uint8(1))
    """
    where = "downsample"
    check_choice(where, "mode", mode, ("mean", "max"))
    check_positive_int(where, "factor", factor)
    x = np.asarray(x)
    if x.ndim not in (4, 5):
        fail(where, "x rank", "4 (N, D, H, W) or 5 (N, D, H, W, C)", x.ndim)
    spatial = x.shape[1:4]
    if any(s % factor for s in spatial):
        fail(where, "factor", f"a divisor of every spatial size {spatial}", factor,
             "Choose a grid size that divides the stored one (e.g. 64 -> 32 or 16)")
    if factor == 1:
        return x
    d, h, w = (s // factor for s in spatial)
    rest = x.shape[4:]
    out = np.empty((len(x), d, h, w) + rest, np.float32 if mode == "mean" else x.dtype)
    for i in range(0, len(x), 64):
        blocks = x[i:i + 64].reshape((-1, d, factor, h, factor, w, factor) + rest)
        if mode == "mean":
            out[i:i + 64] = blocks.mean(axis=(2, 4, 6), dtype=np.float32)
        else:
            out[i:i + 64] = blocks.max(axis=(2, 4, 6))
    return out


def _normalise(x):
    """Occupancy in [0, 1]: uint8 {0, 1} for binary grids, else float32."""
    if x.dtype == np.uint8:
        top = x.max(initial=0)
        if np.isin(np.unique(x), (0, top)).all():
            return (x > 0).astype(np.uint8)
        return x.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    fail("load_voxel_npz", "images dtype", "uint8 or floating", str(x.dtype), exc=TypeError)


def load_voxel_npz(path, *, grid: int | None = None, mode: str = "mean") -> VoxelData:
    """A MedMNIST-layout ``.npz`` of 3-d volumes: ``{train,val,test}_{images,labels}``.

    Images are ``(N, D, H, W)`` (a channel axis is added) ``uint8``; labels ``(N, 1)`` or
    ``(N,)``. The ``val`` split is optional. Binary volumes (values ``0`` and one other)
    become ``uint8`` occupancy ``{0, 1}``; others are scaled to ``[0, 1]`` ``float32``.

    Args:
      path: the ``.npz`` file.
      grid: downsample to this size with :func:`downsample` (it must divide the stored
        size); ``None`` keeps the stored size.
      mode: ``"mean"`` or ``"max"`` downsampling.
    """
    where = "load_voxel_npz"
    arrays = read_npz(where, path, ("train_images", "train_labels", "test_images", "test_labels"),
                      ("val_images", "val_labels"), "the MedMNIST layout; val_ optional")
    splits = ("train", "val", "test") if "val_images" in arrays else ("train", "test")
    if ("val_images" in arrays) != ("val_labels" in arrays):
        fail(where, f"the val arrays in {path}", "both val_images and val_labels, or neither",
             sorted(k for k in arrays if k.startswith("val_")))
    raw = {s: (arrays[f"{s}_images"], arrays[f"{s}_labels"]) for s in splits}
    out = {}
    for split, (x, y) in raw.items():
        if x.ndim == 5 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 4:
            fail(where, f"{split}_images rank", "4 (N, D, H, W) or 5 with one channel", x.ndim)
        y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1:
            fail(where, f"{split}_labels shape", "(N,) or (N, 1)", y.shape)
        check_pair(where, x, y, f"{split}_labels")
        x = _normalise(x)
        if grid is not None:
            check_positive_int(where, "grid", grid, "a positive int or None")
            factor = x.shape[1] // grid
            if factor * grid != x.shape[1]:
                fail(where, "grid", f"a divisor of the stored size {x.shape[1]}", grid)
            x = downsample(x, factor, mode)
        out[split] = (x[..., None], check_labels(where, y, f"{split}_labels in {path}"))
    n = 1 + max(int(y.max(initial=0)) for _, y in out.values())
    val = out.get("val", (None, None))
    return VoxelData(*out["train"], *out["test"], tuple(str(i) for i in range(n)), *val)
