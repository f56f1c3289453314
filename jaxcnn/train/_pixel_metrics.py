r"""Dense-prediction metrics: a pixel confusion matrix accumulated over a whole dataset,
and the scores read from it (pixel accuracy, per-class IoU and Dice, their means); MSE and
PSNR of reconstructions from accumulated sums.

Scores over a test set come from counts summed over every batch (never a mean of
per-batch ratios), so they do not depend on the batch size.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import as_numeric, check_positive_int, check_real, fail
from jaxcnn._jit import jit
from jaxcnn.layers._base import check_model
from jaxcnn.train._evaluate import pad_to_batches
from jaxcnn.train._pixel_losses import _pixel_weights


def segmentation_confusion(labels, preds, num_classes, *, ignore_index=None, mask=None):
    """The ``(num_classes, num_classes)`` int32 pixel confusion matrix (row = true class,
    column = predicted) of integer maps ``labels`` and ``preds`` ``(N, *spatial)``; pixels
    labelled ``ignore_index`` and examples with ``mask == 0`` are not counted. Jittable and
    additive over batches.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import segmentation_confusion
      >>> segmentation_confusion(jnp.array([[0, 1, 1, 9]]), jnp.array([[0, 1, 0, 1]]), 2,
      ...                        ignore_index=9).tolist()
      [[1, 0], [1, 1]]
    """
    where = "segmentation_confusion"
    labels = as_numeric(where, "labels", labels)
    preds = as_numeric(where, "preds", preds)
    check_positive_int(where, "num_classes", num_classes)
    if labels.shape != preds.shape or labels.ndim < 1:
        fail(where, "preds shape", f"the labels' shape {labels.shape}", preds.shape,
             "Pass class maps: preds = argmax(logits, axis=-1)")
    w = _pixel_weights(where, labels, mask, ignore_index).astype(jnp.int32)
    t = jnp.clip(labels, 0, num_classes - 1).reshape(-1).astype(jnp.int32)
    p = preds.reshape(-1).astype(jnp.int32)
    return jnp.zeros((num_classes, num_classes), jnp.int32).at[t, p].add(w.reshape(-1))


def segmentation_scores(confusion) -> dict:
    r"""Scores of a pixel confusion matrix (row = true class), as Python numbers.

    .. math::

       \mathrm{IoU}_c = \frac{M_{cc}}{\sum_j M_{cj} + \sum_i M_{ic} - M_{cc}}, \qquad
       \mathrm{Dice}_c = \frac{2 M_{cc}}{\sum_j M_{cj} + \sum_i M_{ic}}

    Returns ``pixel_accuracy`` (trace over total), ``iou`` and ``dice`` (one per class;
    ``None`` for a class absent from both the labels and the predictions) and ``mean_iou``,
    ``mean_dice`` over the classes that are not ``None``.

    Example:
      >>> from jaxcnn.train import segmentation_scores
      >>> s = segmentation_scores([[3, 1], [0, 4]])
      >>> s["pixel_accuracy"], s["iou"], s["mean_iou"]
      (0.875, [0.75, 0.8], 0.775)
    """
    m = np.asarray(confusion, np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        fail("segmentation_scores", "confusion", "a square matrix", m.shape)
    tp = np.diag(m)
    support = m.sum(1) + m.sum(0)
    present = support > 0
    iou = np.where(present, tp / np.maximum(support - tp, 1e-300), np.nan)
    dice = np.where(present, 2 * tp / np.maximum(support, 1e-300), np.nan)
    as_list = lambda a: [None if math.isnan(v) else float(v) for v in a]  # noqa: E731
    total = m.sum()
    return {"pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
            "iou": as_list(iou), "mean_iou": float(np.nanmean(iou)) if present.any() else
            float("nan"), "dice": as_list(dice),
            "mean_dice": float(np.nanmean(dice)) if present.any() else float("nan")}


def psnr(predictions, targets, *, max_value=1.0, mask=None):
    r"""Peak signal-to-noise ratio in dB of the whole batch, from its mean squared error.

    .. math::

       \mathrm{PSNR} = 10 \log_{10} \frac{\mathrm{MAX}^2}{\mathrm{MSE}}

    with MAX ``max_value`` (1 for images in ``[0, 1]``, 255 for bytes) and MSE the mean
    over every element of the examples with ``mask == 1``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import psnr
      >>> psnr(jnp.full((1, 4, 4, 1), 0.1), jnp.zeros((1, 4, 4, 1)))  # MSE 0.01: 20 dB
      Array(20., dtype=float32)
    """
    where = "psnr"
    p = as_numeric(where, "predictions", predictions).astype(jnp.float32)
    t = as_numeric(where, "targets", targets).astype(jnp.float32)
    if p.shape != t.shape or p.ndim < 1:
        fail(where, "predictions shape", f"the targets' shape {t.shape}", p.shape)
    peak = check_real(where, "max_value", max_value)
    if peak <= 0:
        fail(where, "max_value", "> 0", peak)
    n = p.shape[0]
    m = _pixel_weights(where, jnp.zeros(p.shape, jnp.int32), mask, None)
    mse = ((p - t) ** 2 * m).sum() / jnp.maximum(m.sum(), 1.0)
    return 10.0 * jnp.log10(peak ** 2 / mse) if n else jnp.float32(jnp.nan)


def _accumulate(where, model, params, state, arrays, batch_size, sums_fn):
    """Sums of ``sums_fn(output, *batch_arrays, mask)`` over ``arrays`` (equal lengths) in
    padded batches, every example counted once."""
    check_model(where, model)
    check_positive_int(where, "batch_size", batch_size)
    n = len(arrays[0])
    if n == 0 or any(len(a) != n for a in arrays):
        fail(where, "the array lengths", "equal and non-zero", [len(a) for a in arrays])
    batch_size = min(batch_size, n)
    padded = [jax.device_put(pad_to_batches(np.asarray(a), batch_size)) for a in arrays]
    mask = jax.device_put(pad_to_batches(np.ones((n,), np.float32), batch_size))

    def add(params, state, totals, i):
        take = lambda a: jax.lax.dynamic_slice_in_dim(a, i * batch_size, batch_size)  # noqa
        out, _ = model.apply(params, state, take(padded[0]), train=False)
        sums = sums_fn(out.astype(jnp.float32), *[take(a) for a in padded[1:]], take(mask))
        return jax.tree.map(jnp.add, totals, sums)

    shapes = jax.eval_shape(lambda p, s: sums_fn(
        model.apply(p, s, padded[0][:batch_size], train=False)[0].astype(jnp.float32),
        *[a[:batch_size] for a in padded[1:]], mask[:batch_size]), params, state)
    totals = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
    step = jit(add, donate_argnums=2)
    for i in range(len(mask) // batch_size):
        totals = step(params, state, totals, jnp.int32(i))
    return jax.device_get(totals)


def evaluate_segmentation(model, params, state, x, y, batch_size, *, num_classes,
                          ignore_index=None) -> dict:
    """Pixel accuracy, per-class and mean IoU and Dice of ``model`` on ``(x, y)``, from one
    confusion matrix summed over every batch (see :func:`segmentation_scores`), plus the
    matrix itself (``confusion_matrix``, nested lists) and ``count`` (examples).

    Example:
      >>> import jax, numpy as np
      >>> from jaxcnn import conv
      >>> from jaxcnn.train import evaluate_segmentation
      >>> net = conv(2, 1)
      >>> _, params, state = net.init(jax.random.key(0), (4, 4, 1))
      >>> x, y = np.ones((3, 4, 4, 1), np.float32), np.zeros((3, 4, 4), np.int32)
      >>> r = evaluate_segmentation(net, params, state, x, y, 2, num_classes=2)
      >>> r["count"], int(np.sum(r["confusion_matrix"]))
      (3, 48)
    """
    where = "evaluate_segmentation"
    if np.shape(y) != np.shape(x)[:-1]:
        fail(where, "y shape", f"x.shape[:-1] = {np.shape(x)[:-1]} (one label per pixel)",
             np.shape(y))

    def sums(logits, labels, mask):
        preds = jnp.argmax(logits, axis=-1)
        return {"confusion": segmentation_confusion(labels, preds, num_classes,
                                                    ignore_index=ignore_index, mask=mask),
                "count": mask.sum()}

    totals = _accumulate(where, model, params, state, (x, y), batch_size, sums)
    out = segmentation_scores(totals["confusion"])
    out.update(confusion_matrix=np.asarray(totals["confusion"]).tolist(),
               count=int(round(float(totals["count"]))))
    return out


def evaluate_reconstruction(model, params, state, x, targets=None, batch_size=64, *,
                            output="sigmoid", max_value=1.0) -> dict:
    """MSE (mean over every element) and PSNR (from that MSE) of ``model``'s
    reconstructions of ``targets`` (default ``x``) over the whole set, and ``count``.

    ``output`` says what the model returns: ``"sigmoid"`` logits (the reconstruction is
    their sigmoid) or ``"identity"`` (the reconstruction itself).

    Example:
      >>> import jax, numpy as np
      >>> from jaxcnn import identity
      >>> from jaxcnn.train import evaluate_reconstruction
      >>> x = np.full((5, 4, 4, 1), 0.5, np.float32)
      >>> r = evaluate_reconstruction(identity(), {}, {}, x, x + 0.1, 2, output="identity")
      >>> round(r["mse"], 6), round(r["psnr"], 3), r["count"]
      (0.01, 20.0, 5)
    """
    where = "evaluate_reconstruction"
    if output not in ("sigmoid", "identity"):
        fail(where, "output", "'sigmoid' or 'identity'", output)
    targets = x if targets is None else targets
    peak = check_real(where, "max_value", max_value)

    def sums(out, t, mask):
        rec = jax.nn.sigmoid(out) if output == "sigmoid" else out
        if rec.shape[1:] != t.shape[1:]:
            fail(where, "targets shape", f"(N, *the model's output shape) = (N, "
                 f"*{rec.shape[1:]})", np.shape(targets))
        w = mask.reshape((-1,) + (1,) * (t.ndim - 1))
        return {"sq": (((rec - t.astype(jnp.float32)) ** 2) * w).sum(),
                "elements": w.sum() * math.prod(t.shape[1:]), "count": mask.sum()}

    totals = _accumulate(where, model, params, state, (x, targets), batch_size, sums)
    mse = float(totals["sq"]) / float(totals["elements"])
    return {"mse": mse, "psnr": 10.0 * math.log10(peak ** 2 / mse) if mse > 0 else float("inf"),
            "count": int(round(float(totals["count"])))}

