"""``fit``: shuffle, batch, train, evaluate every epoch, log, checkpoint, resume.

A run is a pure function of its seed: the data order of epoch ``e`` is a permutation
seeded by ``(seed, epoch)`` and step ``s`` draws its randomness from ``fold_in(key, s)``,
so a run killed at any point and resumed from its last checkpoint ends with parameters
bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxcnn._checks import fail, is_int
from jaxcnn._jit import jit
from jaxcnn.layers._base import check_model
from jaxcnn.distributed import Placement
from jaxcnn.train._checkpoint import Checkpoints
from jaxcnn.train._epoch import epoch_order, indexed_step, resolve_epoch_loop, scan_steps, segments
from jaxcnn.train._evaluate import make_evaluator
from jaxcnn.train._logging import StepLog, nonfinite_params
from jaxcnn.train._run import (check_same_settings, check_workdir, prepare_workdir, to_jsonable,
                               truncate_jsonl, write_json)
from jaxcnn.train._state import check_optimizer, create_train_state
from jaxcnn.train._step import make_train_step


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      train_state: the final :class:`TrainState`, or that of the best epoch by ``monitor``
        when ``keep_best=True`` (the one ``test_metrics`` describe).
      history: one dict per epoch (``epoch``, ``step``, ``train_loss``, ``val_accuracy``...).
      test_metrics: :func:`evaluate` on ``test`` (empty without ``test``).
      workdir: the run folder, or ``None``.
    """

    train_state: Any
    history: list
    test_metrics: dict
    workdir: Path | None


def _check_split(split, name, where):
    if split is None:
        return None
    if not (isinstance(split, (tuple, list)) and len(split) == 2):
        fail(where, name, "a pair (x, y) of arrays", type(split).__name__, exc=TypeError)
    x, y = np.asarray(split[0]), np.asarray(split[1])
    if len(x) != len(y) or len(x) == 0:
        fail(where, f"{name} sizes", "equal and non-zero: len(x) == len(y) > 0", (len(x), len(y)))
    return x, y


def _check_positive(value, name, where, allow_none=False):
    if allow_none and value is None:
        return None
    if not is_int(value) or value < 1:
        fail(where, name, "a positive int" + (" or None" if allow_none else ""), value)
    return value


def _check_layout(x, where):
    """Refuses a batch of images or volumes that looks channels-first (NCHW, NCDHW): a
    small second axis and large spatial ones (e.g. ``(N, 1, 28, 28)``)."""
    if x.ndim in (4, 5) and x.shape[1] <= 4 and all(d > 4 for d in x.shape[2:]):
        layout = "(N, H, W, C)" if x.ndim == 4 else "(N, D, H, W, C)"
        fail(where, "the training inputs' layout", f"channels-last {layout}", x.shape,
             "It looks channels-first (channels on axis 1); move them last: "
             "x = np.moveaxis(x, 1, -1)")


def _num_classes(model, in_shape, task):
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


def _ensemble_fns(model, optimizer, members, loss, step_options):
    """``(init(key, in_shape), step)`` for ``members`` models trained side by side
    (:mod:`jaxcnn.train._ensemble`: member ``i`` gets ``split(key, members)[i]``)."""
    from jaxcnn.train._ensemble import create_ensemble_state, make_ensemble_train_step

    def init(key, in_shape):
        return create_ensemble_state(model, optimizer, jax.random.split(key, members), in_shape)

    return init, make_ensemble_train_step(model, optimizer, loss, **step_options)


def fit(model, optimizer, train, val=None, test=None, *, epochs, batch_size, seed=0,
        workdir=None, resume=False, config=None, augment=None, task="multiclass", loss=None,
        label_smoothing=0.0, class_weights=None, compute_dtype=None, early_stopping=None,
        monitor=None, keep_best=True, ensemble=1, progress=None, eval_batch_size=None,
        checkpoint_every=None, keep_checkpoints=3, log_every=50, epoch_loop="auto",
        callback=None, top_k=(5,), mesh=None):
    """Trains ``model`` with ``optimizer``; evaluates every epoch; logs, checkpoints, resumes.

    Each epoch shuffles the training set with a permutation seeded by ``(seed, epoch)``
    and drops the final partial batch (so every step has the same shape and the step
    compiles once); evaluation counts every example. The whole training set is put on the
    device once and batches are gathered inside the compiled step.

    Args:
      model, optimizer: a :class:`jaxcnn.Layer` and an ``optax.GradientTransformation``.
      train, val, test: ``(x, y)`` numpy arrays (``val`` and ``test`` optional).
      epochs, batch_size, seed: the schedule and the run's seed (init, data order, dropout).
      workdir: run folder (``config.json``, ``run.json`` with the git commit,
        ``metrics.jsonl``, ``result.json``, ``checkpoints/``, ``best/``); ``None`` writes
        nothing.
      resume: continue from the latest checkpoint in ``workdir`` (start fresh when there is
        none). Without it a ``workdir`` that already holds checkpoints is refused.
      config: a dict (or dataclass) saved in ``config.json``.
      augment: pure ``augment(key, x) -> x`` run on the device inside the step.
      task, loss, label_smoothing, class_weights, compute_dtype: see
        :func:`make_train_step` (``compute_dtype="bfloat16"``: mixed precision).
      early_stopping: stop after this many epochs without improving ``monitor``.
      monitor: a key of the history; default ``"val_accuracy"`` (``"val_auc"`` for
        ``task="binary"``, ``"val_loss"`` for regression); improvement means lower for names
        ending in ``loss``, higher otherwise.
      keep_best: test (and return) the train state of the epoch with the best
        ``monitor``: a ``val_*`` monitor needs ``val``; a ``train_*`` monitor (e.g.
        ``"train_loss"``, the protocol of the UCR papers) needs none.
      ensemble: train this many members (different initialisations and dropout keys,
        the same batches) in one vmapped step; metrics of the mean prediction, plus
        ``member_*`` lists.
      progress: tqdm progress bar; ``None`` shows it when stderr is a terminal.
      eval_batch_size: default ``batch_size``.
      checkpoint_every: also checkpoint every this many steps (epochs always end with one).
      keep_checkpoints: how many recent checkpoints to keep.
      log_every: log (``metrics.jsonl``, progress bar, non-finite check) every this many steps.
      epoch_loop: ``"python"``, ``"scan"`` or ``"auto"`` (per backend, from measurements in
        :mod:`jaxcnn.train._epoch`).
      callback: called as ``callback(row)`` with each dict written to ``metrics.jsonl``.
      top_k: report ``top{k}_accuracy`` for these ``k``.
      mesh: train data-parallel over this ``jax.sharding.Mesh``
        (:func:`jaxcnn.distributed.data_mesh`; for several processes see
        :mod:`jaxcnn.distributed`): the train state and the training set are replicated on
        its devices and each batch is split along its ``"data"`` axis (``batch_size`` must
        be a multiple of its size); evaluation runs on each process's default device.

    Returns:
      A :class:`FitResult`.

    Raises:
      FloatingPointError: the loss (or the parameters) became NaN or infinite; the message
        names the step; checkpoints written before it are kept.

    Example:
      >>> import numpy as np, optax
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import fit
      >>> rng = np.random.default_rng(0)
      >>> x = rng.normal(size=(64, 4)).astype(np.float32)
      >>> y = (x[:, 0] > 0).astype(np.int32)
      >>> result = fit(serial(flatten(), dense(2)), optax.adam(0.1), (x, y), test=(x, y),
      ...              epochs=3, batch_size=16, progress=False)
      >>> result.test_metrics["accuracy"] > 0.9, len(result.history)
      (True, 3)
    """
    where = "fit"
    check_model(model, where)
    check_optimizer(optimizer, where)
    train = _check_split(train, "train", where)
    val, test = _check_split(val, "val", where), _check_split(test, "test", where)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("ensemble", ensemble),
                        ("keep_checkpoints", keep_checkpoints), ("log_every", log_every)):
        _check_positive(value, name, where)
    _check_positive(checkpoint_every, "checkpoint_every", where, allow_none=True)
    _check_positive(early_stopping, "early_stopping", where, allow_none=True)
    _check_positive(eval_batch_size, "eval_batch_size", where, allow_none=True)
    if not is_int(seed):
        fail(where, "seed", "an int", seed, exc=TypeError)
    if early_stopping is not None and val is None and not str(monitor).startswith("train_"):
        fail(where, "early_stopping", "None without a validation set", early_stopping,
             "Pass val=(x_val, y_val), or monitor a training metric such as 'train_loss'")
    if resume and workdir is None:
        fail(where, "workdir", "a folder when resume=True", None)
    if callback is not None and not callable(callback):
        fail(where, "callback", "None or a function callback(row)", callback, exc=TypeError)
    place = Placement(mesh, batch_size, where)
    x, y = train
    steps_per_epoch = len(x) // batch_size
    if steps_per_epoch == 0:
        fail(where, "batch_size", f"at most the number of training examples ({len(x)})",
             batch_size)
    if monitor is not None and monitor.startswith("val_") and val is None:
        fail(where, "monitor", "a train_* metric when no val set is given", monitor,
             "Pass val=(x, y), or monitor a training metric such as 'train_loss'")
    monitor = monitor or {"regression": "val_loss", "binary": "val_auc"}.get(task, "val_accuracy")
    loop = resolve_epoch_loop(epoch_loop, where)
    if progress is None:
        progress = sys.stderr.isatty()

    step_options = dict(task=task, label_smoothing=label_smoothing, class_weights=class_weights,
                        compute_dtype=compute_dtype, augment=augment)
    train_step = make_train_step(model, optimizer, loss, **step_options)
    init = lambda key, in_shape: create_train_state(model, optimizer, key, in_shape)  # noqa
    if ensemble > 1:
        init, train_step = _ensemble_fns(model, optimizer, ensemble, loss, step_options)
    key = jax.random.key(seed)
    run_key = jax.random.fold_in(key, 1)
    _check_layout(x, where)
    ts = place.state(init(jax.random.fold_in(key, 0), x.shape[1:]))
    if task != "regression" and loss is None:
        for name, split in (("train", train), ("val", val), ("test", test)):
            if split is not None:
                check_labels(split[1], _num_classes(model, x.shape[1:], task), name, where)
    eval_kw = dict(task=task, loss=loss, top_k=top_k, compute_dtype=compute_dtype,
                   members=ensemble > 1)
    eval_bs = eval_batch_size or batch_size
    val_eval = make_evaluator(model, *val, eval_bs, where=where, **eval_kw) if val else None

    settings = dict(epochs=epochs, batch_size=batch_size, seed=seed, task=task,
                    loss=loss if isinstance(loss, (str, type(None))) else repr(loss),
                    label_smoothing=label_smoothing, class_weights=class_weights,
                    compute_dtype=compute_dtype, early_stopping=early_stopping, monitor=monitor,
                    ensemble=ensemble, checkpoint_every=checkpoint_every, epoch_loop=loop,
                    steps_per_epoch=steps_per_epoch, train_size=len(x),
                    in_shape=x.shape[1:], in_dtype=str(x.dtype))
    pos = {"epoch": 0, "step_in_epoch": 0, "history": [], "best": None, "best_epoch": None,
           "stopped": False, "epoch_sums": None, "seed": seed, "batch_size": batch_size,
           "ensemble": ensemble}
    ckpts = best_ckpts = None
    best_state = None
    if workdir is not None:
        workdir = Path(workdir)
        state_bytes = sum(a.nbytes for a in jax.tree.leaves(ts))
        check_workdir(workdir, state_bytes, keep_checkpoints + 2, where)  # + best, + in flight
        ckpts = Checkpoints(workdir / "checkpoints", keep_checkpoints)
        best_ckpts = Checkpoints(workdir / "best", 1)
        if ckpts.latest_step() is not None:
            if not resume:
                fail(where, "workdir", "a new folder (or resume=True)",
                     str(workdir), "It already holds checkpoints; pass resume=True (--resume) "
                     "to continue that run, or choose another workdir")
            ts, pos = _restore(ckpts, ts, run_key, pos, where)
            check_same_settings(workdir, settings, _SAME_ON_RESUME, where)
            if best_ckpts.latest_step() is not None:
                best_state = best_ckpts.restore({"train_state": ts})[0]["train_state"]
                best_state = jax.device_get(best_state)
            truncate_jsonl(workdir / "metrics.jsonl", _count(ts))
        else:  # a fresh run: nothing left from one that died before its first checkpoint
            best_ckpts.clear()
            (workdir / "metrics.jsonl").unlink(missing_ok=True)
        prepare_workdir(workdir, {**to_jsonable(config or {}), "fit": settings})

    data = place.data({"x": x, "y": y})
    step = indexed_step(train_step)
    run_steps = (jit(step, donate_argnums=0) if loop == "python"
                 else jit(scan_steps(step), donate_argnums=0))
    log = StepLog(workdir, log_every, batch_size, progress, callback, ckpts)

    def save(ckpt_pos):
        log.flush()
        if nonfinite_params(ts):
            log.fail_params(_count(ts))
        if ckpts is not None:
            ckpts.save(_count(ts), {"train_state": ts, "key": jax.random.key_data(run_key)},
                       to_jsonable({**pos, **ckpt_pos}))

    try:
        for epoch in range(pos["epoch"], epochs):
            if pos["stopped"]:
                break
            order = epoch_order(seed, epoch, len(x), batch_size)
            start = pos["step_in_epoch"] if epoch == pos["epoch"] else 0
            log.start_epoch(epoch, epochs, steps_per_epoch, start, pos["epoch_sums"],
                            _count(ts))
            for begin, end in segments(start, steps_per_epoch, _count(ts), checkpoint_every):
                if loop == "python":
                    for s in range(begin, end):
                        ts, metrics = run_steps(ts, data, place.rows(order[s]), run_key)
                        log.add(metrics, 1)
                else:
                    ts, metrics = run_steps(ts, data, place.rows(order[begin:end]), run_key)
                    log.add(metrics, end - begin)
                if end < steps_per_epoch and checkpoint_every and log.step % checkpoint_every == 0:
                    save({"epoch": epoch, "step_in_epoch": end, "epoch_sums": log.epoch_sums})
            row = log.end_epoch()
            if val_eval is not None:
                params, state = place.local((ts.params, ts.state))
                row.update({f"val_{k}": v for k, v in val_eval(params, state).items()
                            if k != "confusion_matrix"})
            pos["history"].append(row)
            improved = _improved(row.get(monitor), pos["best"], monitor)
            if improved:
                pos["best"], pos["best_epoch"] = row[monitor], row["epoch"]
                if keep_best:
                    best_state = jax.device_get(ts)
                    if best_ckpts is not None:
                        best_ckpts.save(_count(ts), {"train_state": ts}, {"epoch": row["epoch"]})
            if early_stopping and row["epoch"] - (pos["best_epoch"] or 0) >= early_stopping:
                pos["stopped"] = True
                row["early_stopped"] = True
            log.write_epoch(row)
            save({"epoch": epoch + 1, "step_in_epoch": 0, "epoch_sums": None})
    finally:
        log.close()
        for manager in (ckpts, best_ckpts):
            if manager is not None:
                manager.close()

    final = ts
    if keep_best and best_state is not None:
        final = place.state(best_state)
    test_metrics = {}
    if test is not None:
        test_metrics = make_evaluator(model, *test, eval_bs, where=where, **eval_kw)(
            *place.local((final.params, final.state)))
    if workdir is not None:
        result = {f"test_{k}": v for k, v in test_metrics.items()}
        result.update(step=_count(ts), epochs_run=len(pos["history"]),
                      best_epoch=pos["best_epoch"], monitor=monitor, best=pos["best"])
        write_json(workdir / "result.json", result)
    return FitResult(final, pos["history"], test_metrics, workdir)


# fit settings a resumed run must share with the run it continues (seed, batch size and
# ensemble size are checked against the checkpoint itself)
_SAME_ON_RESUME = ("task", "loss", "label_smoothing", "class_weights", "compute_dtype",
                   "train_size", "in_shape", "in_dtype")


def _count(train_state):
    """The step count on the host (members of an ensemble share it)."""
    return int(np.asarray(jax.device_get(train_state.step)).reshape(-1)[0])


def _improved(value, best, monitor):
    if value is None or not np.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if monitor.endswith("loss") else value > best


def _restore(ckpts, ts, run_key, pos, where):
    meta = ckpts.read_meta()
    for name in ("seed", "batch_size", "ensemble"):
        if meta.get(name) != pos[name]:
            fail(where, name, f"{meta.get(name)!r} as in the checkpoint being resumed", pos[name],
                 "A resumed run must keep the seed, batch size and ensemble size")
    template = {"train_state": ts, "key": jax.random.key_data(run_key)}
    difference = ckpts.difference(template)
    if difference:
        raise ValueError(f"{where}: the model and optimizer must be those of the run being "
                         f"resumed, got arrays that differ from those in {ckpts.directory}: "
                         f"{difference}. "
                         "Resume with the same model and optimizer, or start a new workdir")
    try:
        tree, meta = ckpts.restore(template)
    except ValueError as err:  # checkpoints written before signatures were recorded
        fail(where, "the model and optimizer", "those of the run being resumed",
             "another parameter or optimizer-state structure",
             f"orbax says: {str(err).splitlines()[0]}")
    return tree["train_state"], {**pos, **meta}
