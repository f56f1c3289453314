"""Evaluation over a whole dataset: every example counted exactly once.

The data is padded once to a multiple of the batch size and put on the device; one
jitted function evaluates batch ``i`` (a traced index, so it compiles once) and adds its
masked sums to running totals on the device; the host reads the totals once at the end.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import check_positive_int, fail
from jaxcnn._jit import jit
from jaxcnn.train._losses import resolve_loss
from jaxcnn.train._metrics import binary_scores, roc_auc
from jaxcnn.train._step import check_compute_dtype, check_top_k, make_eval_fn, sums_from_logits


def pad_to_batches(a, batch_size):
    """``a`` (host numpy) padded with zeros along axis 0 to a multiple of ``batch_size``."""
    a = np.asarray(a)
    n_pad = -len(a) % batch_size
    if n_pad:
        a = np.concatenate([a, np.zeros((n_pad,) + a.shape[1:], a.dtype)])
    return a


def combine_members(logits):
    """Ensemble prediction from member logits ``(K, N, ...)``: the log of the mean
    probability (softmax over the last axis, or sigmoid for one logit per example)."""
    k = logits.shape[0]
    if logits.ndim >= 3 and logits.shape[-1] >= 2:
        return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1), axis=0) - math.log(k)
    z = logits
    log_p = jax.nn.logsumexp(jax.nn.log_sigmoid(z), axis=0)
    log_q = jax.nn.logsumexp(jax.nn.log_sigmoid(-z), axis=0)
    return log_p - log_q


def _check_data(where, x, y, batch_size):
    check_positive_int(where, "batch_size", batch_size)
    if len(x) != len(y):
        fail(where, "len(y)", f"len(x) = {len(x)}", len(y))
    if len(x) == 0:
        fail(where, "x", "a non-empty array of examples", np.shape(x))


def make_evaluator(model, x, y, batch_size, *, task="multiclass", loss=None, top_k=(5,),
                   compute_dtype=None, members=False, where="evaluate"):
    """``evaluator(params, state) -> metrics`` for a fixed dataset (padded and put on the
    device once; reused every epoch by :func:`jaxcnn.train.fit`).

    With ``members=True`` the params and state carry a leading ensemble axis; metrics are
    those of the ensemble's mean probability plus ``member_<name>`` lists.
    """
    _check_data(where, x, y, batch_size)
    resolve_loss(loss, task, where=where)
    check_compute_dtype(where, compute_dtype)
    top_k = check_top_k(where, top_k)
    n = len(x)
    batch_size = min(batch_size, n)
    xs = jax.device_put(pad_to_batches(x, batch_size))
    ys = jax.device_put(pad_to_batches(y, batch_size))
    mask = jax.device_put(pad_to_batches(np.ones((n,), np.float32), batch_size))
    num_batches = len(mask) // batch_size
    eval_fn = make_eval_fn(model, loss, task=task, top_k=top_k, compute_dtype=compute_dtype,
                           where=where)
    _, eval_loss = resolve_loss(loss, task, where=where)

    def batch_sums(params, state, batch):
        if not members:
            sums, logits = eval_fn(params, state, batch)
            return sums, logits
        member_sums, logits = jax.vmap(eval_fn, in_axes=(0, 0, None))(params, state, batch)
        sums = sums_from_logits(combine_members(logits), batch["y"], batch["mask"], task,
                                eval_loss, top_k)
        sums["members"] = member_sums
        return sums, logits

    def add_batch(params, state, i, totals):
        take = lambda a: jax.lax.dynamic_slice_in_dim(a, i * batch_size, batch_size)  # noqa
        batch = {"x": take(xs), "y": take(ys), "mask": take(mask)}
        sums, logits = batch_sums(params, state, batch)
        scores = binary_scores(logits) if task == "binary" else None
        if totals is None:
            totals = jax.tree.map(jnp.zeros_like, sums)
            if scores is not None:
                totals["scores"] = jnp.zeros(scores.shape[:-1] + (len(mask),), jnp.float32)
        out = {k: jax.tree.map(jnp.add, totals[k], v) for k, v in sums.items()}
        if scores is not None:
            out["scores"] = jax.lax.dynamic_update_slice_in_dim(
                totals["scores"], scores, i * batch_size, axis=-1)
        return out

    step = jit(add_batch, donate_argnums=3)

    def evaluator(params, state):
        shapes = jax.eval_shape(lambda p, s: add_batch(p, s, 0, None), params, state)
        totals = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes)
        for i in range(num_batches):
            totals = step(params, state, jnp.int32(i), totals)
        return _finish(totals, ys, mask, task)

    return evaluator


def _means(sums):
    count = float(sums["count"])
    out = {"count": int(round(count)), "loss": float(sums["loss"]) / count}
    if "correct" in sums:
        out["accuracy"] = float(sums["correct"]) / count
        out["confusion_matrix"] = np.asarray(sums["confusion"]).tolist()
    for name, value in sums.items():
        if name.startswith("top") and name.endswith("_correct"):
            out[name[:-len("_correct")] + "_accuracy"] = float(value) / count
    return out


def _finish(totals, ys, mask, task):
    scores = totals.pop("scores", None)
    members = totals.pop("members", None)
    totals = jax.device_get(totals)
    out = _means(totals)
    if members is not None:
        members = jax.device_get(members)
        k = len(members["count"])
        per = [_means(jax.tree.map(lambda v: v[i], members)) for i in range(k)]
        for name in ("loss", "accuracy"):
            if name in per[0]:
                out[f"member_{name}"] = [m[name] for m in per]
    if scores is not None:
        if members is not None:
            member_auc = jax.vmap(lambda s: roc_auc(s, ys, mask=mask))(scores)
            out["member_auc"] = [float(a) for a in np.asarray(member_auc)]
            probs = jax.nn.sigmoid(scores).mean(axis=0)
            out["auc"] = float(roc_auc(probs, ys, mask=mask))
        else:
            out["auc"] = float(roc_auc(scores, ys, mask=mask))
    return out


def evaluate(model, params, state, x, y, batch_size, *, task="multiclass", loss=None,
             top_k=(5,), compute_dtype=None, members=False):
    """Metrics of a model over a whole dataset, every example counted exactly once.

    The final partial batch is padded and masked, never dropped.

    Args:
      model: a :class:`jaxcnn.Layer`.
      params, state: the model's parameters and state (with a leading ensemble axis when
        ``members=True``).
      x, y: examples ``(N, ...)`` and labels ``(N,)`` (numpy or JAX arrays).
      batch_size: examples per forward pass.
      task: ``"multiclass"``, ``"binary"`` or ``"regression"``.
      loss: as for :func:`jaxcnn.train.make_train_step`.
      top_k: report ``top{k}_accuracy`` for these ``k`` (when below the class count).
      compute_dtype: ``None``, ``"float32"`` or ``"bfloat16"``.
      members: evaluate an ensemble (leading axis on params and state).

    Returns:
      A dict of Python numbers: ``count``, ``loss``, and for classification ``accuracy``,
      ``top{k}_accuracy``, ``confusion_matrix`` (nested lists, row = true class) and for
      binary tasks ``auc``.

    Example:
      >>> import jax, numpy as np
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import evaluate
      >>> net = serial(flatten(), dense(2))
      >>> _, params, state = net.init(jax.random.key(0), (3,))
      >>> x, y = np.ones((5, 3), np.float32), np.zeros((5,), np.int32)
      >>> evaluate(net, params, state, x, y, batch_size=2)["count"]  # 2 + 2 + 1 (padded)
      5
    """
    return make_evaluator(model, x, y, batch_size, task=task, loss=loss, top_k=top_k,
                          compute_dtype=compute_dtype, members=members)(params, state)
