"""The containers the loaders return (``Dataset``, ``VoxelData``), and a stratified split."""

from __future__ import annotations

import math
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
