"""Plots of training curves, filters, feature maps, activation histograms, saliency and
Grad-CAM (matplotlib, an optional dependency: ``pip install jaxcnn[experiments]``).

Every function returns a ``matplotlib.figure.Figure`` (built without pyplot, so no
display is needed) and writes a PNG when ``path`` is given. 1-d inputs are drawn as
curves along time, 2-d as images (RGB when there are 3 input channels), 3-d as three
orthogonal max projections or depth slices. Images of values (filters, feature maps, heat
maps) carry a colour bar; plots of one example say its true and predicted label when given
``true_label`` and ``predicted_label``.
"""

from __future__ import annotations

import math

import numpy as np

from jaxcnn._checks import fail


def _new_figure(figsize):
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised only without matplotlib
        raise ImportError("jaxcnn.viz needs matplotlib: pip install 'jaxcnn[experiments]'") from e
    return Figure(figsize=figsize, layout="constrained")


def _figure(rows, cols, size=1.6):
    """A grid of axes without ticks (for images)."""
    fig = _new_figure((max(cols * size, 3), max(rows * size, 2)))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _finish(fig, path, title=None, true_label=None, predicted_label=None):
    labels = []
    if true_label is not None:
        labels.append(f"true: {true_label}")
    if predicted_label is not None:
        labels.append(f"predicted: {predicted_label}")
    title = " | ".join(([title] if title else []) + labels)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=80)
    return fig


def _colorbar(fig, image, axes, label=None):
    lo, hi = image.get_clim()
    if not hi > lo:  # a constant map: a scale of width 1 around its value
        image.set_clim(lo - 0.5, lo + 0.5)
    bar = fig.colorbar(image, ax=list(np.ravel(axes)), shrink=0.9, pad=0.02)
    bar.ax.tick_params(labelsize=6)
    if label:
        bar.set_label(label, fontsize=7)
    return bar


def _grid(n, max_cols=8):
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _norm(a):
    a = np.asarray(a, np.float64)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _symmetric(a):
    """``(vmin, vmax)`` centred on 0 and covering every value of ``a``."""
    m = float(np.abs(a).max()) if np.size(a) else 0.0
    m = m or 1.0
    return -m, m


def projections(volume):
    """Three orthogonal max projections ``(D, H, W) -> [(H, W), (D, W), (D, H)]``."""
    v = np.asarray(volume)
    if v.ndim != 3:
        fail("projections", "volume rank", "3 (D, H, W)", v.ndim)
    return [v.max(axis=0), v.max(axis=1), v.max(axis=2)]


def plot_filters(kernel, path=None, *, max_filters=32, title=None):
    """First-layer filters as a grid: images for 2-d kernels ``(kh, kw, C_in, C_out)``
    (the mean over input channels on one colour scale centred on 0, with a colour bar of
    the weights; RGB, each filter scaled to [0, 1], when ``C_in = 3``), curves on one
    shared weight axis for 1-d kernels ``(k, C_in, C_out)``, depth slices on one colour
    scale for 3-d kernels ``(kd, kh, kw, C_in, C_out)``."""
    k = np.asarray(kernel, np.float64)
    if k.ndim not in (3, 4, 5):
        fail("plot_filters", "kernel rank", "3, 4 or 5 (*kernel_size, C_in, C_out)", k.ndim)
    n = min(k.shape[-1], max_filters)
    if k.ndim == 5:
        depth = k.shape[0]
        maps = k[..., :n].mean(axis=-2)
        vmin, vmax = _symmetric(maps)
        fig, axes = _figure(n, depth, 1.0)
        for i in range(n):
            for d in range(depth):
                image = axes[i, d].imshow(maps[d, ..., i], cmap="RdBu_r", vmin=vmin, vmax=vmax)
            axes[i, 0].set_ylabel(f"filter {i}", fontsize=7)
        _colorbar(fig, image, axes, "weight")
        return _finish(fig, path, title)
    rows, cols = _grid(n)
    fig, axes = _figure(rows, cols)
    if k.ndim == 3:
        lo, hi = k[..., :n].min(), k[..., :n].max()
        for i, ax in enumerate(list(axes.flat)[:n]):
            ax.plot(k[..., i])
            ax.set_ylim(lo - 0.05 * (hi - lo + 1e-12), hi + 0.05 * (hi - lo + 1e-12))
            if i % cols == 0:
                ax.tick_params(labelsize=6)
                ax.set_yticks(np.linspace(lo, hi, 3).round(3))
    elif k.shape[-2] == 3:
        for i, ax in enumerate(list(axes.flat)[:n]):
            ax.imshow(_norm(k[..., i]))
    else:
        maps = k[..., :n].mean(axis=-2)
        vmin, vmax = _symmetric(maps)
        for i, ax in enumerate(list(axes.flat)[:n]):
            image = ax.imshow(maps[..., i], cmap="RdBu_r", vmin=vmin, vmax=vmax)
        _colorbar(fig, image, axes, "weight (mean over input channels)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return _finish(fig, path, title)


def plot_feature_maps(acts, path=None, *, max_channels=8, title=None, image=None,
                      true_label=None, predicted_label=None):
    """Feature maps of one input through the layers: ``acts`` maps a layer path to its
    output ``(1, *spatial, C)`` (see :func:`jaxcnn.interpret.activations`). One row per
    layer, its channels on one colour scale with a colour bar; images for 2-d, channel
    curves along time for 1-d, depth max projections for 3-d. ``image`` (the input,
    ``(*spatial, C)``), when given, is drawn first in a row of its own; ``true_label`` and
    ``predicted_label`` go into the title."""
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
        a = a[..., :max_channels]
        shown = a.max(axis=0) if a.ndim == 4 else a  # 3-d: max projection along depth
        vmin, vmax = float(shown.min()), float(shown.max())
        drawn = None
        for c in range(max_channels):
            ax = axes[r, c]
            if c >= a.shape[-1]:
                ax.axis("off")
            elif a.ndim == 2:
                ax.plot(a[..., c])
                ax.set_ylim(vmin, vmax if vmax > vmin else vmin + 1)
            else:
                drawn = ax.imshow(shown[..., c], cmap="viridis", vmin=vmin, vmax=vmax)
        axes[r, 0].set_ylabel(name, fontsize=7)
        if drawn is not None:
            _colorbar(fig, drawn, axes[r])
    return _finish(fig, path, title, true_label, predicted_label)


def plot_activation_histograms(acts, path=None, *, bins=50, title=None):
    """One histogram of activation values per layer (value against count)."""
    items = list(acts.items())
    rows, cols = _grid(len(items), 4)
    fig, axes = _figure(rows, cols, 2.2)
    for ax, (name, a) in zip(axes.flat, items):
        ax.hist(np.asarray(a, np.float64).ravel(), bins=bins)
        ax.set_title(name, fontsize=7)
        ax.tick_params(labelsize=6)
        ax.locator_params(nbins=4)
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


def plot_heatmap(x, heat, path=None, *, title=None, true_label=None, predicted_label=None):
    """An input ``(*spatial, C)`` next to a heat map (saliency or Grad-CAM) over it, with
    a colour bar of the map's values; the map is resized (nearest) to the input's spatial
    size. ``true_label`` and ``predicted_label`` go into the title."""
    x, heat = np.asarray(x), np.asarray(heat)
    if heat.ndim == x.ndim:  # saliency with channels: take the largest magnitude
        heat = np.abs(heat).max(axis=-1)
    heat = _resize_to(heat, x.shape[:-1])
    fig, axes = _figure(1, 2, 2.5)
    _show_input(axes[0, 0], x)
    axes[0, 0].set_title("input", fontsize=8)
    if heat.ndim == 1:
        axes[0, 1].plot(x)
        drawn = axes[0, 1].imshow(heat[None], aspect="auto", cmap="jet", alpha=0.5,
                                  extent=(0, len(heat), x.min(), x.max()))
    else:
        _show_input(axes[0, 1], x)
        drawn = axes[0, 1].imshow(heat if heat.ndim == 2 else heat.max(axis=0), cmap="jet",
                                  alpha=0.5)
    axes[0, 1].set_title("heat map", fontsize=8)
    _colorbar(fig, drawn, axes[0, 1])
    return _finish(fig, path, title, true_label, predicted_label)


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


def plot_images(images, labels=None, path=None, *, title=None, max_cols=8, predictions=None):
    """A grid of images ``(N, H, W, C)`` or series ``(N, L, C)`` with optional labels;
    with ``predictions`` each title says ``true`` and ``predicted``, in red where they
    differ."""
    images = np.asarray(images)
    rows, cols = _grid(len(images), max_cols)
    fig, axes = _figure(rows, cols)
    for i, ax in enumerate(axes.flat):
        if i >= len(images):
            ax.axis("off")
            continue
        _show_input(ax, images[i])
        if predictions is not None:
            true = "?" if labels is None else labels[i]
            wrong = labels is not None and str(true) != str(predictions[i])
            ax.set_title(f"true {true}\npredicted {predictions[i]}", fontsize=7,
                         color="red" if wrong else "black")
        elif labels is not None:
            ax.set_title(str(labels[i]), fontsize=7)
    return _finish(fig, path, title)


def plot_history(history, path=None, *, test=None, title=None):
    """Training curves: loss and accuracy (when there is any) against the epoch, one
    panel each, with labelled axes. ``history`` is a list of per-epoch dicts as
    :func:`jaxcnn.train.fit` returns (keys ``train_loss``, ``val_loss``,
    ``train_accuracy``, ``val_accuracy``, ``test_*``); ``test`` (e.g.
    ``FitResult.test_metrics``: ``loss``, ``accuracy``) adds the final test value as a
    dashed line."""
    test = test or {}
    metrics = [m for m in ("loss", "accuracy")
               if m in test or any(f"{p}_{m}" in h for h in history
                                   for p in ("train", "val", "test"))] or ["loss"]
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure((4.0 * len(metrics) + 0.5, 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False)[0])
    names = {"train": "train", "val": "validation", "test": "test"}
    for ax, metric in zip(axes, metrics):
        for prefix, name in names.items():
            key = f"{prefix}_{metric}"
            pts = [(h.get("epoch", i + 1), h[key]) for i, h in enumerate(history)
                   if h.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o" if len(pts) <= 30 else None, markersize=3,
                        label=name)
        if test.get(metric) is not None:
            ax.axhline(test[metric], color="C2", linestyle="--",
                       label=f"test ({test[metric]:.4g})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:  # a regression history has no accuracy curves
            ax.legend(fontsize=8)
    return _finish(fig, path, title)


def plot_confusion_matrix(matrix, class_names=None, path=None, *, title=None):
    """A confusion matrix (rows: true class, columns: predicted) with counts and a colour
    bar."""
    m = np.asarray(matrix)
    fig, axes = _figure(1, 1, max(3.0, 0.45 * len(m)))
    ax = axes[0, 0]
    drawn = ax.imshow(m, cmap="Blues")
    names = class_names if class_names is not None else list(range(len(m)))
    ax.set_xticks(range(len(m)), [str(n) for n in names], fontsize=7, rotation=90)
    ax.set_yticks(range(len(m)), [str(n) for n in names], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                color="white" if v > m.max() / 2 else "black")
    _colorbar(fig, drawn, ax, "count")
    return _finish(fig, path, title)
