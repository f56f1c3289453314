r"""Losses, computed in float32 whatever the compute dtype, each a masked mean over examples.

Every loss takes an optional ``mask`` (1 for a real example, 0 for padding) so a padded
final batch counts each real example once. The engine (:func:`resolve_loss`) turns a
name or a callable into ``loss(logits, labels, mask) -> scalar``.
"""

from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import as_numeric, fail
from jaxcnn.train._metrics import example_mask

LOSSES = ("cross_entropy", "binary_cross_entropy", "mse")
TASKS = ("multiclass", "binary", "regression")
DEFAULT_LOSS = {"multiclass": "cross_entropy", "binary": "binary_cross_entropy",
                "regression": "mse"}


def _weighted_mean(values, weights):
    total = weights.sum()
    return jnp.where(total > 0, (values * weights).sum() / jnp.maximum(total, 1e-30), 0.0)


def _class_weights(where, class_weights, num_classes):
    try:
        w = np.asarray(class_weights, np.float32)
    except (TypeError, ValueError):
        fail(where, "class_weights", f"a sequence of {num_classes} weights (one per class)",
             class_weights, exc=TypeError)
    if w.shape != (num_classes,):
        fail(where, "class_weights", f"a sequence of {num_classes} weights (one per class)",
             tuple(w.shape) if w.ndim else class_weights)
    return jnp.asarray(w)


def _check_smoothing(where, label_smoothing):
    if (not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool)
            or not 0.0 <= label_smoothing < 1.0):
        fail(where, "label_smoothing", "a float in [0, 1)", label_smoothing)
    return float(label_smoothing)


def _check_labels(where, logits, labels):
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        fail(where, "labels", "integer class indices", str(labels.dtype),
             "Use optax.softmax_cross_entropy for one-hot or soft targets", exc=TypeError)
    if labels.shape != logits.shape[:-1]:
        fail(where, "labels shape", f"logits.shape[:-1] = {logits.shape[:-1]}", labels.shape)


def softmax_cross_entropy(logits, labels, *, label_smoothing=0.0, class_weights=None, mask=None):
    r"""Mean softmax cross-entropy of integer labels, with label smoothing and class weights.

    .. math::

       q_{ic} = (1 - \varepsilon)\,[c = y_i] + \varepsilon / C, \qquad
       \ell_i = -\sum_c q_{ic} \log \operatorname{softmax}(z_i)_c, \qquad
       L = \frac{\sum_i m_i w_{y_i} \ell_i}{\sum_i m_i w_{y_i}}

    where :math:`z` is ``logits`` ``(N, ..., C)``, :math:`y` ``labels`` ``(N, ...)``,
    :math:`\varepsilon` ``label_smoothing``, :math:`w` ``class_weights`` (default all
    ones) and :math:`m` ``mask`` (default all ones). With :math:`\varepsilon = 0` this is
    PyTorch's ``CrossEntropyLoss(weight=w)``; every example is weighted by the weight of
    its true class. An all-zero mask gives 0.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import softmax_cross_entropy
      >>> logits = jnp.array([[0.0, 0.0], [0.0, 0.0]])
      >>> softmax_cross_entropy(logits, jnp.array([0, 1]))  # log 2
      Array(0.6931472, dtype=float32)
    """
    where = "softmax_cross_entropy"
    logits = as_numeric(where, "logits", logits).astype(jnp.float32)
    labels = as_numeric(where, "labels", labels)
    if logits.ndim < 1:
        fail(where, "logits rank", ">= 1 (..., num_classes)", logits.ndim)
    _check_labels(where, logits, labels)
    eps = _check_smoothing(where, label_smoothing)
    num_classes = logits.shape[-1]
    log_p = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    loss = nll if eps == 0.0 else (1.0 - eps) * nll - eps * log_p.mean(axis=-1)
    weights = example_mask(where, mask, labels.shape)
    if class_weights is not None:
        weights = weights * _class_weights(where, class_weights, num_classes)[labels]
    return _weighted_mean(loss, weights)


def _binary_logits(logits, labels, where):
    logits = as_numeric(where, "logits", logits).astype(jnp.float32)
    labels = as_numeric(where, "labels", labels)
    if logits.shape == labels.shape + (1,):
        logits = logits[..., 0]
    if logits.shape != labels.shape:
        hint = ("For two output units use loss='cross_entropy'; binary cross-entropy wants one "
                "logit per example, e.g. dense(1)") if logits.shape == labels.shape + (2,) else ""
        fail(where, "logits shape", f"labels.shape {labels.shape} or {labels.shape + (1,)}",
             logits.shape, hint)
    return logits, labels


def binary_cross_entropy(logits, labels, *, label_smoothing=0.0, class_weights=None, mask=None):
    r"""Mean binary cross-entropy on logits (sigmoid inside, numerically stable).

    .. math::

       t_i = (1 - \varepsilon)\, y_i + \varepsilon / 2, \qquad
       \ell_i = \max(z_i, 0) - z_i t_i + \log(1 + e^{-|z_i|}), \qquad
       L = \frac{\sum_i m_i w_{y_i} \ell_i}{\sum_i m_i w_{y_i}}

    where :math:`z` is ``logits`` (shape of ``labels``, or with a trailing axis of 1),
    :math:`y \in \{0, 1\}` ``labels``, :math:`\varepsilon` ``label_smoothing``, :math:`w`
    ``class_weights`` ``(w_0, w_1)`` and :math:`m` ``mask``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import binary_cross_entropy
      >>> binary_cross_entropy(jnp.array([0.0, 0.0]), jnp.array([0, 1]))  # log 2
      Array(0.6931472, dtype=float32)
    """
    where = "binary_cross_entropy"
    logits, labels = _binary_logits(logits, labels, where)
    eps = _check_smoothing(where, label_smoothing)
    t = labels.astype(jnp.float32)
    t = t if eps == 0.0 else (1.0 - eps) * t + 0.5 * eps
    loss = jnp.maximum(logits, 0.0) - logits * t + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    weights = example_mask(where, mask, labels.shape)
    if class_weights is not None:
        weights = weights * _class_weights(where, class_weights, 2)[labels.astype(jnp.int32)]
    return _weighted_mean(loss, weights)


def mse(predictions, targets, *, mask=None):
    r"""Mean squared error: per example the mean over its elements, then a masked mean.

    .. math::

       L = \frac{\sum_i m_i \operatorname{mean}_j (p_{ij} - t_{ij})^2}{\sum_i m_i}

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import mse
      >>> mse(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 0.0]]))
      Array(2.5, dtype=float32)
    """
    p = as_numeric("mse", "predictions", predictions).astype(jnp.float32)
    t = as_numeric("mse", "targets", targets).astype(jnp.float32)
    if p.shape != t.shape:
        if p.shape == t.shape + (1,):
            p = p[..., 0]
        else:
            fail("mse", "predictions shape", f"the targets shape {t.shape}", p.shape)
    n = p.shape[0] if p.ndim else 1
    per_example = ((p - t) ** 2).reshape(n, -1).mean(axis=1)
    return _weighted_mean(per_example, example_mask("mse", mask, (n,)))


def resolve_loss(loss, task, label_smoothing=0.0, class_weights=None, *, where="make_train_step"):
    """``(train_loss, eval_loss)``, each ``(logits, labels, mask) -> scalar``.

    ``loss`` is a name in :data:`LOSSES`, ``None`` (the task's default) or a callable
    ``loss(logits, labels, mask) -> scalar`` (a masked mean). The evaluation loss of a
    named loss is the plain per-example mean (no smoothing, no class weights), so
    validation losses of runs with different options compare.
    """
    if task not in TASKS:
        fail(where, "task", "one of " + ", ".join(repr(t) for t in TASKS), task)
    if loss is None:
        loss = DEFAULT_LOSS[task]
    if callable(loss):
        if label_smoothing or class_weights is not None:
            fail(where, "label_smoothing and class_weights", "unset with a callable loss",
                 (label_smoothing, class_weights), "Apply them inside your loss function")
        return loss, loss
    if loss not in LOSSES:
        fail(where, "loss", "a callable or one of " + ", ".join(repr(n) for n in LOSSES), loss)
    if loss == "mse":
        if label_smoothing or class_weights is not None:
            fail(where, "label_smoothing and class_weights", "unset with loss='mse'",
                 (label_smoothing, class_weights))
        fn = lambda z, y, m: mse(z, y, mask=m)  # noqa: E731
        return fn, fn
    base = softmax_cross_entropy if loss == "cross_entropy" else binary_cross_entropy
    _check_smoothing(where, label_smoothing)
    train = functools.partial(base, label_smoothing=label_smoothing, class_weights=class_weights)
    return (lambda z, y, m: train(z, y, mask=m)), (lambda z, y, m: base(z, y, mask=m))
