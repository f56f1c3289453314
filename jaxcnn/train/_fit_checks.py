"""The argument checks of :func:`jaxcnn.train.fit`, all made before anything is trained or
written: data splits and their layout, counts, labels against the model's outputs."""

from __future__ import annotations

import jax
import numpy as np

from jaxcnn._checks import check_positive_int, fail, is_int
from jaxcnn.distributed import Placement
from jaxcnn.layers._base import check_model
from jaxcnn.train._state import check_optimizer


def check_arguments(where, model, optimizer, train, val, test, o):
    """Checks ``fit``'s arguments (``o``: its keyword options); returns the splits as numpy
    pairs, the monitored metric and the :class:`~jaxcnn.distributed.Placement`."""
    check_model(where, model)
    check_optimizer(where, optimizer)
    train = _check_split(train, "train", where)
    val, test = _check_split(val, "val", where), _check_split(test, "test", where)
    for name in ("epochs", "batch_size", "ensemble", "keep_checkpoints", "log_every"):
        _check_positive(where, name, getattr(o, name))
    for name in ("checkpoint_every", "early_stopping", "eval_batch_size"):
        _check_positive(where, name, getattr(o, name), allow_none=True)
    if not is_int(o.seed):
        fail(where, "seed", "an int", o.seed, exc=TypeError)
    if o.early_stopping is not None and val is None and not str(o.monitor).startswith("train_"):
        fail(where, "early_stopping", "None without a validation set", o.early_stopping,
             "Pass val=(x_val, y_val), or monitor a training metric such as 'train_loss'")
    if o.resume and o.workdir is None:
        fail(where, "workdir", "a folder when resume=True", None)
    if o.callback is not None and not callable(o.callback):
        fail(where, "callback", "None or a function callback(row)", o.callback, exc=TypeError)
    if o.progress is not None and not isinstance(o.progress, bool):
        fail(where, "progress", "None (a bar on a terminal), True or False", o.progress,
             exc=TypeError)
    place = Placement(o.mesh, o.batch_size, where)
    if len(train[0]) // o.batch_size == 0:
        fail(where, "batch_size", f"at most the number of training examples ({len(train[0])})",
             o.batch_size)
    if o.monitor is not None and o.monitor.startswith("val_") and val is None:
        fail(where, "monitor", "a train_* metric when no val set is given", o.monitor,
             "Pass val=(x, y), or monitor a training metric such as 'train_loss'")
    monitor = o.monitor or {"regression": "val_loss", "binary": "val_auc"}.get(o.task,
                                                                              "val_accuracy")
    return train, val, test, monitor, place


def _check_split(split, name, where):
    if split is None:
        return None
    if not (isinstance(split, (tuple, list)) and len(split) == 2):
        fail(where, name, "a pair (x, y) of arrays", type(split).__name__, exc=TypeError)
    x, y = np.asarray(split[0]), np.asarray(split[1])
    if len(x) != len(y) or len(x) == 0:
        fail(where, f"{name} sizes", "equal and non-zero: len(x) == len(y) > 0", (len(x), len(y)))
    return x, y


def _check_positive(where, name, value, allow_none=False):
    if allow_none and value is None:
        return None
    return check_positive_int(where, name, value,
                              "a positive int" + (" or None" if allow_none else ""))


def check_layout(where, x):
    """Refuses a batch of images or volumes that looks channels-first (NCHW, NCDHW): a
    small second axis and large spatial ones (e.g. ``(N, 1, 28, 28)``)."""
    if x.ndim in (4, 5) and x.shape[1] <= 4 and all(d > 4 for d in x.shape[2:]):
        layout = "(N, H, W, C)" if x.ndim == 4 else "(N, D, H, W, C)"
        fail(where, "the training inputs' layout", f"channels-last {layout}", x.shape,
             "It looks channels-first (channels on axis 1); move them last: "
             "x = np.moveaxis(x, 1, -1)")


def num_classes(model, in_shape, task):
    """The number of classes the model's output encodes (2 for one binary logit)."""
    if task == "binary":
        return 2
    shapes = []

    def init(key):
        out_shape, params, state = model.init(key, in_shape)
        shapes.append(out_shape)
        return params

    jax.eval_shape(init, jax.random.key(0))
    return shapes[0][-1] if shapes[0] else 1


def check_labels(y, num_classes, name, where):
    """Refuses integer labels outside ``[0, num_classes)`` before training starts (they
    would show up only as a non-finite or meaningless loss), naming a value and the count."""
    y = np.asarray(y)
    if y.dtype.kind not in "iub":
        return
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        values = ", ".join(str(v) for v in np.unique(y[bad])[:5])
        raise ValueError(
            f"{where}: the {name} labels must be in [0, {num_classes}) for a model with "
            f"{num_classes} outputs, got {int(bad.sum())} of {y.size} outside it (values "
            f"{values}{', ...' if len(np.unique(y[bad])) > 5 else ''}). Labels count from 0 "
            "(1-based labels: use y - 1), or build the model with num_classes=max(y) + 1")
