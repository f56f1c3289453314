"""The containers the loaders return (``Dataset``, ``VoxelData``), the checks every loader
shares (a checked ``.npz`` reader, label counts and values), and a stratified split."""

from __future__ import annotations

import math
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from jaxcnn._checks import fail


class Dataset(NamedTuple):
    """Train and test arrays of a classification set, as numpy arrays.

    ``x_*``: ``(N, *spatial, C)`` channels-last, ``uint8`` (raw pixels) or ``float32``;
    ``y_*``: ``int32`` labels ``(N,)`` in ``[0, len(classes))``; ``class_names``: class names.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple


class VoxelData(NamedTuple):
    """Train/test (and optional validation) voxel grids with their labels.

    ``x_*``: ``(N, D, H, W, 1)`` occupancy in ``[0, 1]`` (``uint8`` or ``float32``);
    ``y_*``: ``(N,)`` ``int32`` indices into ``class_names``. ``x_val``/``y_val`` are
    ``None`` when the source has no validation split.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


def check_pair(where: str, x, y, what: str = "images"):
    """Image and label counts must agree: one label per image."""
    if len(x) != len(y):
        fail(where, f"the number of labels ({what})", f"the number of images, {len(x)}", len(y),
             "The image and label files do not belong together")


def check_labels(where: str, y, what: str):
    """Class labels as ``int32``: integers (any integer dtype, or floats holding whole
    numbers) and non-negative. A label ``2.5`` or ``-1`` would otherwise be cut or wrap
    around silently."""
    y = np.asarray(y)
    if y.dtype.kind not in "iuf" and y.dtype != np.bool_:
        fail(where, what, "integer class labels", f"dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            fail(where, what, "whole numbers (class indices)",
                 f"{y.ravel()[i]} at index {i} ({int(bad.sum())} such)")
    if y.size and y.min() < 0:
        fail(where, what, "non-negative class indices",
             f"{y.min()} ({int((y < 0).sum())} negative)")
    return y.astype(np.int32)


NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def read_npz(where: str, path, required, optional=(), layout: str = "") -> dict:
    """The arrays ``required`` (all of them) and ``optional`` (those present) of an
    ``.npz`` file, read without pickle. Each problem is a ``ValueError`` naming the file
    and, where there is one, the key: not an npz (a truncated or corrupt zip, an ``.npy``),
    missing keys, object arrays (they need pickle: never loaded), non-numeric arrays.
    """
    with open(path, "rb") as fh:  # ours to close, whatever np.load raises
        try:
            f = np.load(fh, allow_pickle=False)
        except NPZ_READ_ERRORS as e:
            fail(where, str(path), "a readable .npz file", f"unreadable ({e})",
                 "The file is truncated or corrupt, or not an .npz")
        if not isinstance(f, np.lib.npyio.NpzFile):
            fail(where, str(path), "an .npz archive of named arrays", "a single .npy array",
                 "Save the arrays with np.savez(path, "
                 + ", ".join(f"{k}=..." for k in required) + ")")
        with f:
            missing = [k for k in required if k not in f.files]
            if missing:
                fail(where, f"the arrays in {path}",
                     ", ".join(required) + (f" ({layout})" if layout else ""), sorted(f.files),
                     f"Missing: {missing}")
            out = {}
            for k in tuple(required) + tuple(k for k in optional if k in f.files):
                try:
                    a = f[k]
                except NPZ_READ_ERRORS as e:
                    what = ("an object array (it would need pickle)" if "allow_pickle" in str(e)
                            else f"unreadable ({e})")
                    fail(where, f"the array {k!r} in {path}", "a numeric array", what)
                if a.dtype.kind not in "biuf":
                    fail(where, f"the array {k!r} in {path}", "a numeric array",
                         f"dtype {a.dtype}")
                out[k] = a
    return out


def stratified_split(y, test_fraction: float = 0.2, seed: int = 0):
    """Indices ``(train, test)`` with each class split in the same proportion.

    The test set has ``ceil(test_fraction * N)`` examples (as scikit-learn's
    ``train_test_split``), shared out among the classes in proportion to their sizes
    (largest remainders first); each class's share is drawn by a seeded permutation.
    Both index arrays come back sorted.

    Example:
      >>> import numpy as np
      >>> from jaxcnn.data import stratified_split
      >>> tr, te = stratified_split(np.array([0] * 10 + [1] * 5), 0.2)
      >>> len(tr), len(te), np.bincount(np.array([0] * 10 + [1] * 5)[te]).tolist()
      (12, 3, [2, 1])
    """
    if not 0.0 < test_fraction < 1.0:
        fail("stratified_split", "test_fraction", "in (0, 1)", test_fraction)
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    n_test = math.ceil(test_fraction * len(y))
    exact = test_fraction * counts * (n_test / (test_fraction * len(y)))
    share = np.floor(exact).astype(int)
    order = np.argsort(-(exact - share), kind="stable")
    share[order[:n_test - share.sum()]] += 1
    rng = np.random.default_rng(seed)
    test = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, share)]
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test
