r"""Per-example gradients (``vmap`` of ``grad``) and differentially private SGD.

A per-example gradient is the gradient of the loss of one example, computed for every
example of a batch at once by ``jax.vmap(jax.grad(loss_of_one_example))``. DP-SGD (Abadi
et al. 2016) clips each of them to an L2 norm of at most :math:`C`, sums them, adds
Gaussian noise and divides by the batch size:

.. math::

   g_i = \nabla_\theta\, \ell(\theta; x_i, y_i), \qquad
   \bar g_i = \frac{g_i}{\max\left(1, \lVert g_i \rVert_2 / C\right)}, \qquad
   \tilde g = \frac{1}{B} \Big( \sum_{i=1}^{B} m_i\, \bar g_i
              + \mathcal{N}\!\left(0, \sigma^2 C^2 I\right) \Big)

where :math:`C` is ``l2_norm_clip``, :math:`\sigma` is ``noise_multiplier``, :math:`B`
the number of rows of the batch (padded rows included: a count of real examples would
depend on the data) and :math:`m_i` the batch's ``mask``. The norm
:math:`\lVert g_i \rVert_2` is over all parameters together. :math:`\tilde g` then goes
to any optax optimizer (SGD as in the paper, or Adam).

This module gives the mechanism only. The privacy guarantee :math:`(\varepsilon, \delta)`
follows from :math:`\sigma`, the sampling rate and the number of steps through a privacy
accountant (e.g. the moments accountant of the paper), which assumes Poisson or uniform
sampling of batches. Models must treat examples independently: batch norm in training
mode mixes examples (use ``group_norm`` or ``layer_norm``), so :func:`make_dp_train_step`
refuses models with state.

Reference:
  M. Abadi, A. Chu, I. Goodfellow, H. B. McMahan, I. Mironov, K. Talwar, L. Zhang.
  Deep Learning with Differential Privacy. ACM CCS 2016. https://arxiv.org/abs/1607.00133
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from jaxcnn._checks import fail
from jaxcnn.layers._base import check_model
from jaxcnn.train._losses import resolve_loss
from jaxcnn.train._state import check_optimizer
from jaxcnn.train._step import (apply_gradients, cast_input, check_batch, check_compute_dtype,
                                global_norm, masked_accuracy, masked_mean)


def _per_example(model, loss_fn, params, state, x, y, mask, keys, train):
    """``(losses, logits, grads)``, each with a leading example axis."""

    def one(params, x_i, y_i, m_i, key_i):
        logits, _ = model.apply(params, state, x_i[None], train=train, key=key_i)
        logits = logits.astype(jnp.float32)
        return loss_fn(logits, y_i[None], m_i[None]), logits[0]

    grad_fn = jax.value_and_grad(one, has_aux=True)
    if keys is None:
        fn = lambda x_i, y_i, m_i: grad_fn(params, x_i, y_i, m_i, None)  # noqa: E731
        (losses, logits), grads = jax.vmap(fn)(x, y, mask)
    else:
        (losses, logits), grads = jax.vmap(grad_fn, in_axes=(None, 0, 0, 0, 0))(
            params, x, y, mask, keys)
    return losses, logits, grads


def per_example_grads(model, params, state, batch, loss=None, *, task="multiclass", train=True,
                      key=None):
    """The gradient of each example's loss, stacked: ``jax.vmap(jax.grad(...))``.

    Each example goes through ``model.apply`` as a batch of one (so batch norm in
    training mode would see one example; the model state that comes back is dropped).

    Args:
      model: a :class:`jaxcnn.Layer`.
      params, state: the model's parameters and state.
      batch: ``{"x": (B, ...), "y": (B, ...)}`` and optionally ``"mask"`` ``(B,)``
        (a masked example gets a zero gradient).
      loss: as for :func:`jaxcnn.train.make_train_step` (a name or
        ``loss(logits, labels, mask) -> scalar``), applied to one example at a time.
      task: ``"multiclass"``, ``"binary"`` or ``"regression"`` (picks the default loss).
      train: the mode of ``model.apply``.
      key: for dropout when ``train=True``; example ``i`` gets ``jax.random.split(key, B)[i]``.

    Returns:
      ``(grads, losses)``: ``grads`` is a pytree like ``params`` whose leaves have a
      leading axis of size ``B``; ``losses`` is ``(B,)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import per_example_grads
      >>> net = serial(flatten(), dense(3))
      >>> _, params, state = net.init(jax.random.key(0), (4,))
      >>> batch = {"x": jnp.ones((5, 4)), "y": jnp.zeros((5,), jnp.int32)}
      >>> grads, losses = per_example_grads(net, params, state, batch)
      >>> grads["dense_1"]["kernel"].shape, losses.shape
      ((5, 4, 3), (5,))
    """
    where = "per_example_grads"
    check_model(where, model)
    loss_fn, _ = resolve_loss(loss, task, where=where)
    mask = check_batch(where, batch)
    keys = None if key is None else jax.random.split(key, batch["x"].shape[0])
    losses, _, grads = _per_example(model, loss_fn, params, state, batch["x"], batch["y"], mask,
                                    keys, train)
    return grads, losses


def per_example_norms(grads):
    """The L2 norm of each example's gradient over all parameters: ``(B,)`` float32."""
    leaves = jax.tree.leaves(grads)
    return jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32)).reshape(g.shape[0], -1),
                                axis=1) for g in leaves))


def _check_nonnegative(where, name, value, positive=False):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        fail(where, name, "a float", value, exc=TypeError)
    if value < 0 or (positive and value == 0):
        fail(where, name, "> 0" if positive else ">= 0", value)
    return float(value)


def clip_per_example(grads, l2_norm_clip):
    r"""Scales each example's gradient to an L2 norm of at most ``l2_norm_clip``.

    .. math:: \bar g_i = g_i / \max(1, \lVert g_i \rVert_2 / C)

    Returns:
      ``(clipped, norms)``: the clipped per-example gradients and the norms before
      clipping, ``(B,)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train import clip_per_example
      >>> clipped, norms = clip_per_example({"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}, 1.0)
      >>> clipped["w"]
      Array([[0.6, 0.8],
             [0.3, 0.4]], dtype=float32)
      >>> norms
      Array([5. , 0.5], dtype=float32)
    """
    c = _check_nonnegative("clip_per_example", "l2_norm_clip", l2_norm_clip, positive=True)
    norms = per_example_norms(grads)
    scale = 1.0 / jnp.maximum(1.0, norms / c)
    clipped = jax.tree.map(
        lambda g: g * scale.astype(g.dtype).reshape((-1,) + (1,) * (g.ndim - 1)), grads)
    return clipped, norms


def dp_aggregate(grads, key, *, l2_norm_clip, noise_multiplier, mask=None):
    r"""The private gradient :math:`\tilde g` of the module docstring from per-example
    gradients: clip, sum (masked), add :math:`\mathcal N(0, \sigma^2 C^2)` noise, divide
    by the number of rows.

    Returns:
      ``(private_grads, norms)``: a pytree like one example's gradient, and the
      per-example norms before clipping.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxcnn.train import dp_aggregate
      >>> grads = {"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])}
      >>> g, _ = dp_aggregate(grads, jax.random.key(0), l2_norm_clip=1.0, noise_multiplier=0.0)
      >>> g["w"]  # ((0.6, 0.8) + (0.3, 0.4)) / 2
      Array([0.45000002, 0.6       ], dtype=float32)
    """
    where = "dp_aggregate"
    sigma = _check_nonnegative(where, "noise_multiplier", noise_multiplier)
    clipped, norms = clip_per_example(grads, l2_norm_clip)
    leaves, treedef = jax.tree.flatten(clipped)
    rows = leaves[0].shape[0]
    m = jnp.ones((rows,), jnp.float32) if mask is None else mask.astype(jnp.float32)
    noise_keys = jax.random.split(key, len(leaves))
    out = []
    for g, k in zip(leaves, noise_keys):
        total = jnp.tensordot(m.astype(g.dtype), g, axes=1)
        if sigma > 0:
            total = total + (sigma * l2_norm_clip) * jax.random.normal(k, total.shape, g.dtype)
        out.append(total / rows)
    return jax.tree.unflatten(treedef, out), norms


def make_dp_train_step(model, optimizer, loss=None, *, l2_norm_clip, noise_multiplier,
                       task="multiclass", label_smoothing=0.0, compute_dtype=None):
    """A DP-SGD step ``dp_step(train_state, batch, key) -> (train_state, metrics)``.

    Same contract as :func:`jaxcnn.train.make_train_step` (a drop-in for it, jit it with
    :func:`jaxcnn.train.jit_train_step`), but the gradient is :func:`dp_aggregate` of the
    per-example gradients (see the module docstring for the math). Keys per step:
    ``fold_in(key, step)`` split into the dropout key and the noise key.

    Args:
      model: a :class:`jaxcnn.Layer` without state (no batch norm).
      optimizer: an ``optax.GradientTransformation`` fed the private gradient.
      loss, task, label_smoothing, compute_dtype: as for ``make_train_step``.
      l2_norm_clip: :math:`C`, the bound on each example's gradient norm (> 0).
      noise_multiplier: :math:`\\sigma`; the noise std on the sum is :math:`\\sigma C`.

    Returns:
      ``dp_step``; metrics ``loss``, ``accuracy`` (classification), ``grad_norm`` (of
      the private gradient), ``mean_example_norm`` and ``clipped_fraction`` (share of
      real examples whose gradient was clipped).

    Example:
      >>> import jax, jax.numpy as jnp, optax
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import create_train_state, make_dp_train_step, jit_train_step
      >>> net, opt = serial(flatten(), dense(3)), optax.sgd(0.1)
      >>> ts = create_train_state(net, opt, jax.random.key(0), (4,))
      >>> step = jit_train_step(make_dp_train_step(net, opt, l2_norm_clip=1.0,
      ...                                          noise_multiplier=1.1))
      >>> batch = {"x": jnp.ones((5, 4)), "y": jnp.zeros((5,), jnp.int32)}
      >>> ts, metrics = step(ts, batch, jax.random.key(1))
      >>> int(ts.step), sorted(metrics)
      (1, ['accuracy', 'clipped_fraction', 'grad_norm', 'loss', 'mean_example_norm'])
    """
    where = "make_dp_train_step"
    check_model(where, model)
    check_optimizer(where, optimizer)
    clip = _check_nonnegative(where, "l2_norm_clip", l2_norm_clip, positive=True)
    sigma = _check_nonnegative(where, "noise_multiplier", noise_multiplier)
    loss_fn, _ = resolve_loss(loss, task, label_smoothing, where=where)
    dtype = check_compute_dtype(where, compute_dtype)

    def dp_step(train_state, batch, key):
        mask = check_batch("dp_step", batch)
        if jax.tree.leaves(train_state.state):
            fail("dp_step", "the model state", "empty (a model without batch norm)",
                 jax.tree.structure(train_state.state),
                 "Batch norm mixes examples, which per-example clipping cannot bound; "
                 "use group_norm or layer_norm")
        step_key = jax.random.fold_in(key, train_state.step)
        model_key, noise_key = jax.random.split(step_key)
        x = cast_input(batch["x"], dtype)
        keys = jax.random.split(model_key, x.shape[0])
        losses, logits, grads = _per_example(model, loss_fn, train_state.params,
                                             train_state.state, x, batch["y"], mask, keys, True)
        grads, norms = dp_aggregate(grads, noise_key, l2_norm_clip=clip, noise_multiplier=sigma,
                                    mask=mask)
        metrics = {"loss": masked_mean(losses, mask), "grad_norm": global_norm(grads),
                   "mean_example_norm": masked_mean(norms, mask),
                   "clipped_fraction": masked_mean((norms > clip).astype(jnp.float32), mask)}
        if task != "regression":
            metrics["accuracy"] = masked_accuracy(logits, batch["y"], mask, task)
        return apply_gradients(train_state, grads, optimizer), metrics

    return dp_step
