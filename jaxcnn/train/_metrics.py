r"""Classification metrics in JAX, each with an optional ``mask`` (1 = real example).

All are jittable: shapes are static and no Python loop touches the data.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxcnn._checks import as_numeric, check_positive_int, fail


def example_mask(where, mask, shape):
    """The mask as float32 of ``shape`` (any shape of that size: ``(N, 1)`` for ``(N,)``)."""
    if mask is None:
        return jnp.ones(shape, jnp.float32)
    mask = as_numeric(where, "mask", mask)
    if mask.size != math.prod(shape):
        fail(where, "mask shape", f"{tuple(shape)} (one entry per example)", mask.shape)
    return mask.astype(jnp.float32).reshape(shape)


def _labels_like(where, labels, shape):
    """``labels`` as an array of ``shape`` (the predictions' shape)."""
    labels = as_numeric(where, "labels", labels)
    if labels.shape != tuple(shape):
        fail(where, "labels shape", f"{tuple(shape)} (one label per prediction)", labels.shape)
    return labels


def _mean(values, mask):
    total = mask.sum()
    return jnp.where(total > 0, (values * mask).sum() / jnp.maximum(total, 1.0), 0.0)


def binary_scores(logits):
    """One score per example for a binary task: the logit itself, or for two output units
    ``logits[..., 1] - logits[..., 0]`` (the logit of class 1 under a softmax)."""
    logits = as_numeric("binary_scores", "logits", logits).astype(jnp.float32)
    if logits.ndim >= 2 and logits.shape[-1] == 2:
        return logits[..., 1] - logits[..., 0]
    if logits.ndim >= 2 and logits.shape[-1] == 1:
        return logits[..., 0]
    return logits


def predictions(logits, task="multiclass"):
    """Predicted classes: the argmax, or ``score > 0`` for a binary task."""
    if task == "binary":
        return (binary_scores(logits) > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def accuracy(logits, labels, *, task="multiclass", mask=None):
    """Fraction of (unmasked) examples whose prediction equals the label.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import accuracy
      >>> accuracy(jnp.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), jnp.array([0, 1, 1]))
      Array(0.6666667, dtype=float32)
    """
    where = "accuracy"
    logits = as_numeric(where, "logits", logits)
    if task != "binary" and logits.ndim < 1:
        fail(where, "logits rank", ">= 1 (..., num_classes)", logits.ndim)
    pred = predictions(logits, task)
    labels = _labels_like(where, labels, pred.shape)
    correct = (pred == labels.astype(jnp.int32)).astype(jnp.float32)
    return _mean(correct, example_mask(where, mask, labels.shape))


def top_k_correct(logits, labels, k):
    """1.0 where the label is among the ``k`` largest logits (ties count in its favour)."""
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    true = jnp.take_along_axis(logits, labels[..., None].astype(jnp.int32), axis=-1)
    rank = (logits > true).sum(axis=-1)
    return (rank < k).astype(jnp.float32)


def top_k_accuracy(logits, labels, k, *, mask=None):
    """Fraction of examples whose label is among the ``k`` largest logits.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import top_k_accuracy
      >>> top_k_accuracy(jnp.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]]), jnp.array([1, 2]), 2)
      Array(0.5, dtype=float32)
    """
    where = "top_k_accuracy"
    check_positive_int(where, "k", k)
    logits = as_numeric(where, "logits", logits)
    if logits.ndim < 1:
        fail(where, "logits rank", ">= 1 (..., num_classes)", logits.ndim)
    labels = _labels_like(where, labels, logits.shape[:-1])
    return _mean(top_k_correct(logits, labels, k), example_mask(where, mask, labels.shape))


def confusion_matrix(labels, preds, num_classes, *, mask=None):
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class
    (scikit-learn's convention). Masked examples are not counted.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import confusion_matrix
      >>> confusion_matrix(jnp.array([0, 1, 1]), jnp.array([0, 0, 1]), 2)
      Array([[1, 0],
             [1, 1]], dtype=int32)
    """
    check_positive_int("confusion_matrix", "num_classes", num_classes)
    where = "confusion_matrix"
    preds = as_numeric(where, "preds", preds)
    labels = _labels_like(where, labels, preds.shape).astype(jnp.int32).reshape(-1)
    preds = preds.astype(jnp.int32).reshape(-1)
    m = example_mask(where, mask, labels.shape).astype(jnp.int32)
    return jnp.zeros((num_classes, num_classes), jnp.int32).at[labels, preds].add(m)


def roc_auc(scores, labels, *, mask=None):
    r"""Area under the ROC curve of a binary task, by the Mann-Whitney statistic.

    .. math::

       \mathrm{AUC} = \frac{1}{n_+ n_-} \sum_{i: y_i = 1} \left(
           \#\{j: y_j = 0,\ s_j < s_i\} + \tfrac12 \#\{j: y_j = 0,\ s_j = s_i\}\right)

    over unmasked examples, where :math:`s` is ``scores`` (logits or probabilities: any
    increasing function gives the same value) and :math:`y \in \{0, 1\}` ``labels``.
    Ties count one half, as in scikit-learn's ``roc_auc_score``. NaN when one class is
    absent. Cost: a sort and a binary search, :math:`O(N \log N)`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import roc_auc
      >>> roc_auc(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
      Array(0.75, dtype=float32)
    """
    scores = binary_scores(as_numeric("roc_auc", "scores", scores)).reshape(-1)
    labels = as_numeric("roc_auc", "labels", labels).reshape(-1)
    if scores.shape != labels.shape:
        fail("roc_auc", "scores shape", f"one score per label ({labels.shape[0]})", scores.shape)
    m = example_mask("roc_auc", mask, labels.shape) > 0
    pos = m & (labels > 0)
    neg = m & ~(labels > 0)
    n_neg = neg.sum()
    # Negatives sorted first; everything else is pushed to +inf and clipped away below.
    neg_sorted = jnp.sort(jnp.where(neg, scores, jnp.inf))
    less = jnp.searchsorted(neg_sorted, scores, side="left")
    less_equal = jnp.minimum(jnp.searchsorted(neg_sorted, scores, side="right"), n_neg)
    wins = jnp.where(pos, (less + less_equal).astype(jnp.float32) * 0.5, 0.0)
    denom = pos.sum().astype(jnp.float32) * n_neg.astype(jnp.float32)
    return jnp.where(denom > 0, wins.sum() / jnp.maximum(denom, 1.0), jnp.nan)
