"""The plots of the time-series experiments (MNIST-1D, UCR), drawn with :mod:`jaxcnn.viz`:
``series.png`` (a few training series per class), ``filters.png`` (first-layer filters),
``cam.png`` (class activation along time for one test series) and ``curves.png``."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxcnn.data.timeseries import TimeSeriesData
from jaxcnn.models import get_model


def first_kernel(params):
    """The first convolution kernel ``(k, C_in, C_out)`` in the model's feature part."""
    leaves = jax.tree_util.tree_flatten_with_path(params["features_0"])[0]
    kernels = [v for p, v in leaves if getattr(p[-1], "key", None) == "kernel" and v.ndim == 3]
    return np.asarray(kernels[0])


def class_activation(model_name, params, state, x):
    """CAM of every class along time ``(L', K)`` for one series ``x`` ``(L, C)``:
    the features before global average pooling times the head's kernel."""
    features = get_model(model_name, num_classes=None)
    a, _ = features.apply(params["features_0"], state["features_0"], x[None], train=False)
    return np.asarray(a[0]) @ np.asarray(params["head_2"]["kernel"])


def save_plots(title: str, model_name: str, data: TimeSeriesData, params, state, history,
               workdir: Path, ensemble: int = 1):
    """The four plots of a trained classifier (of the first member of an ensemble)."""
    from jaxcnn import viz

    if ensemble > 1:
        params, state = jax.tree_util.tree_map(lambda a: a[0], (params, state))
    picks = [i for k in range(min(len(data.class_names), 8))
             for i in np.flatnonzero(data.y_train == k)[:3]]
    viz.plot_images(data.x_train[picks], [f"class {data.class_names[data.y_train[i]]}"
                                          for i in picks], workdir / "series.png",
                    title=f"{title}: training series with their class", max_cols=6)
    kernel = first_kernel(params)
    viz.plot_filters(kernel, workdir / "filters.png",
                     title=f"first-layer filters (size {kernel.shape[0]})")
    x = data.x_test[0]
    cam = class_activation(model_name, params, state, x)
    pred = int((cam.mean(0) + np.asarray(params["head_2"]["bias"])).argmax())
    viz.plot_heatmap(x, cam[:, pred], workdir / "cam.png",
                     title=f"CAM of the predicted class {data.class_names[pred]} "
                           f"(true {data.class_names[data.y_test[0]]})")
    viz.plot_history(history, workdir / "curves.png", title="loss and accuracy")
