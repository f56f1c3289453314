"""PNG plots for experiment run folders (matplotlib, Agg backend: no display needed).

Shared by the image, time-series and voxel experiments. Every function takes plain numpy
arrays or lists and a path, writes one PNG and returns the path.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_curves(history, path, x_key="epoch"):
    """Loss (left) and accuracy (right) against ``x_key`` for every metric in ``history``.

    ``history`` is a list of dicts (one per epoch, e.g. ``metrics.jsonl`` rows); keys
    containing ``"loss"`` go left, keys containing ``"acc"`` right; missing values skip.
    """
    keys = sorted({k for row in history for k, v in row.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, word, title in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        for k in (k for k in keys if word in k):
            pts = [(row.get(x_key, i + 1), row[k]) for i, row in enumerate(history)
                   if isinstance(row.get(k), (int, float))]
            if pts:
                ax.plot(*zip(*pts), marker="o" if len(pts) < 30 else None, ms=3, label=k)
        ax.set_xlabel(x_key)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if axes[0].lines and all(np.min(l.get_ydata()) > 0 for l in axes[0].lines):
        axes[0].set_yscale("log")
    return _save(fig, path)


def _grid(n):
    cols = min(n, 8)
    return math.ceil(n / cols), cols


def _normalise(a):
    a = np.asarray(a, np.float64)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def plot_filters(kernel, path, title="first-layer filters"):
    """The filters of a 2-d convolution kernel ``(kh, kw, C_in, C_out)``, one tile each:
    in colour when ``C_in == 3``, else the mean over input channels (gray)."""
    k = np.asarray(kernel)
    if k.ndim != 4:
        raise ValueError("plot_filters: kernel must have rank 4 (kh, kw, C_in, C_out), "
                         f"got {k.shape}")
    n = k.shape[-1]
    rows, cols = _grid(n)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            f = k[..., i]
            if f.shape[-1] == 3:
                ax.imshow(_normalise(f), interpolation="nearest")
            else:
                ax.imshow(f.mean(-1), cmap="gray", interpolation="nearest")
    fig.suptitle(title)
    return _save(fig, path)


def plot_feature_maps(image, maps, path, max_channels=8, title=None):
    """One test image and its feature maps: a row per layer (``maps``: list of
    ``(name, array (H, W, C))``), the first ``max_channels`` channels."""
    rows = len(maps) + 1
    fig, axes = plt.subplots(rows, max_channels, figsize=(1.3 * max_channels, 1.4 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    img = np.asarray(image, np.float64)
    axes[0, 0].imshow(_normalise(img) if img.shape[-1] == 3 else img[..., 0], cmap="gray")
    axes[0, 0].set_title(title or "input", fontsize=8)
    for r, (name, a) in enumerate(maps, start=1):
        a = np.asarray(a)
        for c in range(min(max_channels, a.shape[-1])):
            axes[r, c].imshow(a[..., c], cmap="viridis", interpolation="nearest")
        axes[r, 0].set_title(f"{name} {a.shape[0]}x{a.shape[1]}x{a.shape[-1]}", fontsize=7,
                             loc="left")
    return _save(fig, path)


def plot_confusion(cm, class_names, path, title="confusion matrix (test)"):
    """A confusion matrix ``cm[true, predicted]`` with counts written in the cells."""
    cm = np.asarray(cm)
    n = len(cm)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        top = cm.max() if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > top / 2 else "black")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}: accuracy {acc:.2%}")
    return _save(fig, path)
