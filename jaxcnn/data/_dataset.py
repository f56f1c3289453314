"""The container every loader returns, and a stratified split."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxcnn._checks import fail


class Dataset(NamedTuple):
    """Train and test arrays of a classification set, as numpy arrays.

    ``x_*``: ``(N, *spatial, C)`` channels-last, ``uint8`` (raw pixels) or ``float32``;
    ``y_*``: ``int32`` labels ``(N,)`` in ``[0, len(classes))``; ``classes``: class names.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple


def check_pair(where: str, x, y, what: str = "images"):
    """Image and label counts must agree: one label per image."""
    if len(x) != len(y):
        fail(where, f"the number of labels ({what})", f"the number of images, {len(x)}", len(y),
             "The image and label files do not belong together")


def stratified_split(y, test_fraction: float = 0.2, seed: int = 0):
    """Indices ``(train, test)`` with each class split in the same proportion.

    Each class gives ``round(test_fraction * n_class)`` examples to the test set, chosen
    by a seeded permutation; both index arrays come back sorted.

    Example:
      >>> import numpy as np
      >>> from jaxcnn.data import stratified_split
      >>> tr, te = stratified_split(np.array([0] * 10 + [1] * 5), 0.2)
      >>> len(tr), len(te)
      (12, 3)
    """
    if not 0.0 < test_fraction < 1.0:
        fail("stratified_split", "test_fraction", "in (0, 1)", test_fraction)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:int(round(test_fraction * len(idx)))])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test
