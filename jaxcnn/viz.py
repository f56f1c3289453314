"""Plots of filters, feature maps, activation histograms, saliency and Grad-CAM
(matplotlib, an optional dependency: ``pip install jaxcnn[experiments]``).

Every function returns a ``matplotlib.figure.Figure`` (built without pyplot, so no
display is needed) and writes a PNG when ``path`` is given. 1-d inputs are drawn as
curves along time, 2-d as images (RGB when there are 3 input channels), 3-d as three
orthogonal max projections or depth slices.
"""

from __future__ import annotations

import math

import numpy as np

from jaxcnn._checks import fail


def _figure(rows, cols, size=1.6):
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("jaxcnn.viz needs matplotlib: pip install 'jaxcnn[experiments]'") from e
    fig = Figure(figsize=(max(cols * size, 3), max(rows * size, 2)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _finish(fig, path, title=None):
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=80)
    return fig


def _grid(n, max_cols=8):
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _norm(a):
    a = np.asarray(a, np.float64)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def projections(volume):
    """Three orthogonal max projections ``(D, H, W) -> [(H, W), (D, W), (D, H)]``."""
    v = np.asarray(volume)
    if v.ndim != 3:
        fail("projections", "volume rank", "3 (D, H, W)", v.ndim)
    return [v.max(axis=0), v.max(axis=1), v.max(axis=2)]


def plot_filters(kernel, path=None, *, max_filters=32, title=None):
    """First-layer filters as a grid: images for 2-d kernels ``(kh, kw, C_in, C_out)``
    (RGB when ``C_in = 3``, else the mean over input channels), curves for 1-d kernels
    ``(k, C_in, C_out)``, depth slices for 3-d kernels ``(kd, kh, kw, C_in, C_out)``."""
    k = np.asarray(kernel)
    if k.ndim not in (3, 4, 5):
        fail("plot_filters", "kernel rank", "3, 4 or 5 (*kernel_size, C_in, C_out)", k.ndim)
    n = min(k.shape[-1], max_filters)
    if k.ndim == 5:
        depth = k.shape[0]
        fig, axes = _figure(n, depth, 1.0)
        for i in range(n):
            f = _norm(k[..., i].mean(axis=-1))
            for d in range(depth):
                axes[i, d].imshow(f[d], cmap="gray", vmin=0, vmax=1)
        return _finish(fig, path, title)
    rows, cols = _grid(n)
    fig, axes = _figure(rows, cols)
    for i in range(n):
        ax = axes.flat[i]
        f = k[..., i]
        if k.ndim == 3:
            ax.plot(f)
            ax.set_yticks([])
        elif f.shape[-1] == 3:
            ax.imshow(_norm(f))
        else:
            ax.imshow(_norm(f.mean(axis=-1)), cmap="gray", vmin=0, vmax=1)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _finish(fig, path, title)


def plot_feature_maps(acts, path=None, *, max_channels=8, title=None, image=None):
    """Feature maps of one input through the layers: ``acts`` maps a layer path to its
    output ``(1, *spatial, C)`` (see :func:`jaxcnn.interpret.activations`). One row per
    layer; images for 2-d, channel curves along time for 1-d, depth max projections for 3-d.
    ``image`` (the input, ``(*spatial, C)``), when given, is drawn first in a row of its own."""
    items = [(p, np.asarray(a)[0]) for p, a in acts.items() if np.ndim(a) >= 3]
    if not items:
        fail("plot_feature_maps", "acts", "a dict of spatial activations (1, *spatial, C)",
             list(acts))
    first = 0 if image is None else 1
    fig, axes = _figure(len(items) + first, max_channels)
    if image is not None:
        _show_input(axes[0, 0], image)
        axes[0, 0].set_ylabel("input", fontsize=7)
        for ax in axes[0, 1:]:
            ax.axis("off")
    for r, (name, a) in enumerate(items, start=first):
        for c in range(max_channels):
            ax = axes[r, c]
            if c >= a.shape[-1]:
                ax.axis("off")
                continue
            ch = a[..., c]
            if ch.ndim == 1:
                ax.plot(ch)
            elif ch.ndim == 2:
                ax.imshow(ch, cmap="viridis")
            else:
                ax.imshow(ch.max(axis=0), cmap="viridis")
        axes[r, 0].set_ylabel(name, fontsize=7)
    return _finish(fig, path, title)


def plot_activation_histograms(acts, path=None, *, bins=50, title=None):
    """One histogram of activation values per layer."""
    items = list(acts.items())
    rows, cols = _grid(len(items), 4)
    fig, axes = _figure(rows, cols, 2.2)
    for ax, (name, a) in zip(axes.flat, items):
        ax.hist(np.asarray(a, np.float64).ravel(), bins=bins)
        ax.set_title(name, fontsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    return _finish(fig, path, title)


def _show_input(ax, x):
    x = np.asarray(x)
    if x.ndim == 2:  # (L, C): curves
        ax.plot(x)
    elif x.shape[-1] == 3 and x.ndim == 3:
        ax.imshow(_norm(x))
    elif x.ndim == 3:
        ax.imshow(x.mean(axis=-1), cmap="gray")
    else:
        ax.imshow(x.mean(axis=-1).max(axis=0), cmap="gray")


def _resize_to(m, shape):
    idx = np.ix_(*[np.minimum((np.arange(s) * m.shape[i]) // s, m.shape[i] - 1)
                   for i, s in enumerate(shape)])
    return m[idx]


def plot_heatmap(x, heat, path=None, *, title=None):
    """An input ``(*spatial, C)`` next to a heat map (saliency or Grad-CAM) over it;
    the map is resized (nearest) to the input's spatial size."""
    x, heat = np.asarray(x), np.asarray(heat)
    if heat.ndim == x.ndim:  # saliency with channels: take the largest magnitude
        heat = np.abs(heat).max(axis=-1)
    heat = _resize_to(heat, x.shape[:-1])
    fig, axes = _figure(1, 2, 2.5)
    _show_input(axes[0, 0], x)
    if heat.ndim == 1:
        axes[0, 1].plot(x)
        axes[0, 1].imshow(heat[None], aspect="auto", cmap="jet", alpha=0.5,
                          extent=(0, len(heat), x.min(), x.max()))
    else:
        _show_input(axes[0, 1], x)
        axes[0, 1].imshow(heat if heat.ndim == 2 else heat.max(axis=0), cmap="jet", alpha=0.5)
    return _finish(fig, path, title)


def plot_voxels(volumes, labels=None, path=None, *, title=None):
    """Each voxel grid ``(D, H, W)`` (or ``(D, H, W, 1)``) as three max projections,
    one row per grid, with an optional label per row."""
    fig, axes = _figure(len(volumes), 3)
    for r, v in enumerate(volumes):
        v = np.asarray(v)
        for c, proj in enumerate(projections(v[..., 0] if v.ndim == 4 else v)):
            axes[r, c].imshow(proj, cmap="gray")
        if labels is not None:
            axes[r, 0].set_ylabel(str(labels[r]), fontsize=7)
    return _finish(fig, path, title)


def plot_images(images, labels=None, path=None, *, title=None, max_cols=8):
    """A grid of images ``(N, H, W, C)`` or series ``(N, L, C)`` with optional labels."""
    images = np.asarray(images)
    rows, cols = _grid(len(images), max_cols)
    fig, axes = _figure(rows, cols)
    for i, ax in enumerate(axes.flat):
        if i >= len(images):
            ax.axis("off")
            continue
        _show_input(ax, images[i])
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=7)
    return _finish(fig, path, title)


def plot_history(history, path=None, *, title=None):
    """Loss and accuracy curves from a list of per-epoch dicts (keys such as
    ``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy``)."""
    fig, axes = _figure(1, 2, 3.0)
    for ax, metric in zip(axes.flat, ("loss", "accuracy")):
        for prefix in ("train", "val", "test"):
            key = f"{prefix}_{metric}"
            pts = [(h.get("epoch", i + 1), h[key]) for i, h in enumerate(history) if key in h]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=prefix)
        ax.set_title(metric)
        ax.set_xticks(range(1, len(history) + 1)) if len(history) < 12 else None
        if ax.lines:  # a regression history has no accuracy curves
            ax.legend(fontsize=7)
    return _finish(fig, path, title)


def plot_confusion_matrix(matrix, class_names=None, path=None, *, title=None):
    """A confusion matrix (rows: true class, columns: predicted) with counts."""
    m = np.asarray(matrix)
    fig, axes = _figure(1, 1, max(3.0, 0.45 * len(m)))
    ax = axes[0, 0]
    ax.imshow(m, cmap="Blues")
    names = class_names if class_names is not None else list(range(len(m)))
    ax.set_xticks(range(len(m)), [str(n) for n in names], fontsize=7, rotation=90)
    ax.set_yticks(range(len(m)), [str(n) for n in names], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                color="white" if v > m.max() / 2 else "black")
    return _finish(fig, path, title)
