r"""Dense-prediction losses: per-pixel (per-voxel) cross-entropy with an ignore label, soft
Dice, and binary cross-entropy for reconstructions.

Each takes the model's logits ``(N, *spatial, C)`` and an optional per-example ``mask``
``(N,)`` (1 = a real example, 0 = padding), so it plugs into :func:`jaxcnn.train.fit` as
``loss=lambda z, y, m: pixel_cross_entropy(z, y, mask=m)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcnn._checks import as_numeric, check_real, fail, is_int
from jaxcnn.train._losses import _class_weights
from jaxcnn.train._metrics import example_mask


def _dense_labels(where, logits, labels):
    logits = as_numeric(where, "logits", logits).astype(jnp.float32)
    labels = as_numeric(where, "labels", labels)
    if logits.ndim < 2:
        fail(where, "logits rank", ">= 2 (N, *spatial, num_classes)", logits.ndim)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        fail(where, "labels", "integer class indices per pixel", str(labels.dtype), exc=TypeError)
    if labels.shape != logits.shape[:-1]:
        fail(where, "labels shape", f"logits.shape[:-1] = {logits.shape[:-1]}", labels.shape,
             "Masks are (N, *spatial) integer class maps, logits (N, *spatial, num_classes)")
    return logits, labels


def _pixel_weights(where, labels, mask, ignore_index):
    """Float weights ``labels.shape``: the example's mask, 0 where ``labels == ignore_index``."""
    if ignore_index is not None and not is_int(ignore_index):
        fail(where, "ignore_index", "None or an int", ignore_index, exc=TypeError)
    n = labels.shape[0]
    w = example_mask(where, mask, (n,)).reshape((n,) + (1,) * (labels.ndim - 1))
    w = jnp.broadcast_to(w, labels.shape)
    if ignore_index is not None:
        w = w * (labels != ignore_index).astype(jnp.float32)
    return w


def pixel_cross_entropy(logits, labels, *, ignore_index=None, class_weights=None, mask=None):
    r"""Softmax cross-entropy averaged over every pixel (voxel) that counts.

    .. math::

       L = \frac{\sum_{i,p} m_i v_{ip} w_{y_{ip}} (-\log \mathrm{softmax}(z_{ip})_{y_{ip}})}
                {\sum_{i,p} m_i v_{ip} w_{y_{ip}}}

    where :math:`z` is ``logits`` ``(N, *spatial, C)``, :math:`y` ``labels``
    ``(N, *spatial)``, :math:`v_{ip} = [y_{ip} \ne` ``ignore_index`` :math:`]`, :math:`w`
    ``class_weights`` (default ones) and :math:`m` ``mask``. This is PyTorch's
    ``CrossEntropyLoss(weight=w, ignore_index=...)`` with ``reduction="mean"``. No pixel
    counting gives 0.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import pixel_cross_entropy
      >>> logits = jnp.zeros((1, 2, 2, 3))
      >>> labels = jnp.array([[[0, 1], [2, 255]]])
      >>> pixel_cross_entropy(logits, labels, ignore_index=255)  # log 3 over 3 pixels
      Array(1.0986123, dtype=float32)
    """
    where = "pixel_cross_entropy"
    logits, labels = _dense_labels(where, logits, labels)
    weights = _pixel_weights(where, labels, mask, ignore_index)
    safe = jnp.clip(labels, 0, logits.shape[-1] - 1)  # ignored labels may be out of range
    nll = -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), safe[..., None],
                               axis=-1)[..., 0]
    if class_weights is not None:
        weights = weights * _class_weights(where, class_weights, logits.shape[-1])[safe]
    total = weights.sum()
    return jnp.where(total > 0, (nll * weights).sum() / jnp.maximum(total, 1e-30), 0.0)


def soft_dice_loss(logits, labels, *, ignore_index=None, mask=None, smooth=1.0):
    r"""One minus the mean over classes of the soft Dice coefficient of the batch.

    .. math::

       D_c = \frac{2 \sum_{i,p} u_{ip} P_{ipc} T_{ipc} + s}
                  {\sum_{i,p} u_{ip} (P_{ipc} + T_{ipc}) + s}, \qquad
       L = 1 - \frac{1}{C} \sum_c D_c

    with :math:`P = \operatorname{softmax}(` ``logits`` :math:`)`, :math:`T` the one-hot
    ``labels``, :math:`u` the example ``mask`` times :math:`[y \ne` ``ignore_index``
    :math:`]` and :math:`s` ``smooth`` (Milletari et al. 2016's V-Net loss with the
    squares dropped, summed over the whole batch). A class absent from both the labels and
    the prediction scores :math:`D_c = s / s = 1`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import soft_dice_loss
      >>> labels = jnp.array([[0, 1, 1]])
      >>> perfect = 100.0 * jnp.eye(2)[labels]
      >>> round(float(soft_dice_loss(perfect, labels, smooth=0.0)), 6)
      0.0
    """
    where = "soft_dice_loss"
    logits, labels = _dense_labels(where, logits, labels)
    smooth = check_real(where, "smooth", smooth)
    if smooth < 0:
        fail(where, "smooth", ">= 0", smooth)
    weights = _pixel_weights(where, labels, mask, ignore_index)[..., None]
    num_classes = logits.shape[-1]
    probs = jax.nn.softmax(logits, axis=-1)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    axes = tuple(range(labels.ndim))
    inter = (weights * probs * onehot).sum(axes)
    denom = (weights * (probs + onehot)).sum(axes)
    dice = (2.0 * inter + smooth) / jnp.maximum(denom + smooth, 1e-30)
    return 1.0 - dice.mean()


def pixel_binary_cross_entropy(logits, targets, *, mask=None):
    r"""Binary cross-entropy of reconstruction logits against targets in ``[0, 1]``:
    per example the mean over its elements, then a masked mean over examples.

    .. math::

       \ell_{ij} = \max(z_{ij}, 0) - z_{ij} t_{ij} + \log(1 + e^{-|z_{ij}|}), \qquad
       L = \frac{\sum_i m_i \operatorname{mean}_j \ell_{ij}}{\sum_i m_i}

    with :math:`z` ``logits`` (the targets' shape), :math:`t` ``targets`` (grey levels,
    not only 0 and 1: the Keras autoencoder tutorial's loss) and :math:`m` ``mask``. The
    reconstruction is ``sigmoid(logits)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import pixel_binary_cross_entropy
      >>> pixel_binary_cross_entropy(jnp.zeros((2, 3, 3, 1)), jnp.full((2, 3, 3, 1), 0.5))
      Array(0.6931472, dtype=float32)
    """
    where = "pixel_binary_cross_entropy"
    z = as_numeric(where, "logits", logits).astype(jnp.float32)
    t = as_numeric(where, "targets", targets).astype(jnp.float32)
    if z.shape != t.shape or z.ndim < 1:
        fail(where, "logits shape", f"the targets' shape {t.shape}", z.shape)
    loss = jnp.maximum(z, 0.0) - z * t + jnp.log1p(jnp.exp(-jnp.abs(z)))
    n = z.shape[0]
    per_example = loss.reshape(n, -1).mean(axis=1)
    m = example_mask(where, mask, (n,))
    total = m.sum()
    return jnp.where(total > 0, (per_example * m).sum() / jnp.maximum(total, 1e-30), 0.0)
