"""``fit``: shuffle, batch, train, evaluate every epoch, log, checkpoint, resume.

A run is a pure function of its seed: the data order of epoch ``e`` is a permutation
seeded by ``(seed, epoch)`` and step ``s`` draws its randomness from ``fold_in(key, s)``,
so a run killed at any point and resumed from its last checkpoint ends with parameters
bit-identical to an uninterrupted run.

``fit`` reads in four parts, as flax's ``train_and_evaluate`` does: :func:`_open_run`
(check the arguments, build the step, start or resume the run folder), :func:`_run_epoch`
(the steps of one epoch and the checkpoints inside it), :func:`_end_epoch` (evaluate, keep
the best state, stop early, checkpoint) and :func:`_finish` (test, ``result.json``). What
passes from one to the next is the train state and a :class:`RunPosition`, the immutable
record each checkpoint stores.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxcnn._checks import fail
from jaxcnn._jit import jit
from jaxcnn.distributed import Placement
from jaxcnn.train._checkpoint import Checkpoints
from jaxcnn.train._epoch import epoch_order, indexed_step, resolve_epoch_loop, scan_steps, segments
from jaxcnn.train._evaluate import make_evaluator
from jaxcnn.train._fit_checks import check_arguments, check_labels, check_layout, num_classes
from jaxcnn.train._loggers import CSV_FILES, open_loggers, write_csv
from jaxcnn.train._logging import StepLog, nonfinite_params
from jaxcnn.train._run import (check_same_settings, check_workdir, is_primary, prepare_workdir,
                               to_jsonable, truncate_jsonl, write_json)
from jaxcnn.train._state import create_train_state
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


class RunPosition(NamedTuple):
    """Where a run stands: written into every checkpoint, read back on resume.

    Attributes:
      epoch: the epoch in progress (counted from 0), or the next one between epochs.
      step_in_epoch: how many steps of ``epoch`` are done.
      epoch_sums: running sums of ``epoch``'s training metrics (``None`` between epochs).
      history: one row per finished epoch.
      best, best_epoch: the best ``monitor`` value so far and its epoch (counted from 1).
      stopped: early stopping ended the run.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    epoch_sums: dict | None = None
    history: tuple = ()
    best: float | None = None
    best_epoch: int | None = None
    stopped: bool = False

    @classmethod
    def from_meta(cls, meta):
        """The position stored in a checkpoint's JSON part."""
        fields = {name: meta[name] for name in cls._fields if name in meta}
        return cls(**{**fields, "history": tuple(meta.get("history", ()))})


@dataclasses.dataclass(frozen=True)
class _Options:
    """``fit``'s keyword arguments, as given (defaults live in ``fit``'s signature)."""

    epochs: int
    batch_size: int
    seed: int
    workdir: Any
    resume: bool
    config: Any
    augment: Any
    task: str
    loss: Any
    label_smoothing: float
    class_weights: Any
    compute_dtype: Any
    early_stopping: int | None
    monitor: str | None
    keep_best: bool
    ensemble: int
    progress: Any
    eval_batch_size: int | None
    checkpoint_every: int | None
    keep_checkpoints: int
    log_every: int
    epoch_loop: str
    callback: Any
    top_k: Any
    mesh: Any
    loggers: Any


@dataclasses.dataclass(frozen=True)
class _Run:
    """What stays fixed while the epochs run: the options, the compiled steps, the training
    set on the device, the evaluators, the log and the checkpoint folders."""

    options: _Options
    monitor: str
    loop: str
    steps_per_epoch: int
    train_size: int
    place: Placement
    data: Any
    run_steps: Callable
    run_key: Any
    evaluator: Callable  # evaluator(x, y) -> evaluator(params, state) -> metrics
    val_eval: Callable | None
    test: tuple | None
    log: StepLog
    workdir: Path | None
    ckpts: Checkpoints | None
    best_ckpts: Checkpoints | None

    def close(self):
        self.log.close()
        for manager in (self.ckpts, self.best_ckpts):
            if manager is not None:
                manager.close()


def fit(model, optimizer, train, val=None, test=None, *, epochs, batch_size, seed=0,
        workdir=None, resume=False, config=None, augment=None, task="multiclass", loss=None,
        label_smoothing=0.0, class_weights=None, compute_dtype=None, early_stopping=None,
        monitor=None, keep_best=True, ensemble=1, progress=None, eval_batch_size=None,
        checkpoint_every=None, keep_checkpoints=3, log_every=50, epoch_loop="auto",
        callback=None, top_k=(5,), mesh=None, loggers=()):
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
        ``metrics.jsonl``, ``epochs.csv``, ``steps.csv``, ``result.json``,
        ``checkpoints/``, ``best/``, ``tensorboard/``); ``None`` writes nothing.
      resume: continue from the latest checkpoint in ``workdir`` (start fresh when there is
        none). Without it a ``workdir`` that already holds checkpoints is refused. The
        data, task, loss and loss options must be those of the run being resumed; a
        callable loss is compared by its module and qualified name only (so any lambda of
        the same module passes), not by its code.
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
      progress: a tqdm progress bar on stderr: ``None`` draws it when stderr is a terminal,
        ``True`` always (e.g. in a notebook), ``False`` never. Each epoch ends with one
        line of its metrics on stderr in every case, so a log file gets one line per epoch.
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
        be a multiple of its size); evaluation runs on each process's default device. With
        several processes, ``workdir`` is one folder they all see: process 0 writes the
        JSON files, each process its part of the checkpoints.
      loggers: more places for the rows of ``metrics.jsonl``: ``"tensorboard"`` (event
        files in ``workdir/tensorboard``; needs ``pip install 'jaxcnn[tensorboard]'``), a
        :class:`TensorBoardLogger` for another folder, or any function ``logger(row)``
        (one with a ``close()`` method is closed when ``fit`` ends).

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
    options = _Options(**{name: value for name, value in locals().items()
                          if name in _Options.__dataclass_fields__})
    run, ts, pos, best_state = _open_run(model, optimizer, train, val, test, options)
    try:
        while pos.epoch < epochs and not pos.stopped:
            ts, pos = _run_epoch(run, ts, pos)
            pos, best_state = _end_epoch(run, ts, pos, best_state)
    finally:
        run.close()
    return _finish(run, ts, pos, best_state)


# ---------------------------------------------------------------- open or resume the run

def _open_run(model, optimizer, train, val, test, o):
    """Checks the arguments, builds the step and starts (or resumes) the run folder:
    ``(run, train_state, position, best_state)``."""
    where = "fit"
    train, val, test, monitor, place = check_arguments(where, model, optimizer, train, val, test,
                                                       o)
    loop = resolve_epoch_loop(o.epoch_loop, where)
    loggers = open_loggers(o.loggers, o.workdir, where)
    x, y = train
    init, train_step = _make_step(model, optimizer, o)
    key = jax.random.key(o.seed)
    run_key = jax.random.fold_in(key, 1)
    check_layout(where, x)
    ts = place.state(init(jax.random.fold_in(key, 0), x.shape[1:]))
    if o.task != "regression" and o.loss is None:
        classes = num_classes(model, x.shape[1:], o.task)
        for name, split in (("train", train), ("val", val), ("test", test)):
            if split is not None:
                check_labels(split[1], classes, name, where)
    evaluator = functools.partial(
        make_evaluator, model, batch_size=o.eval_batch_size or o.batch_size, where=where,
        task=o.task, loss=o.loss, top_k=o.top_k, compute_dtype=o.compute_dtype,
        members=o.ensemble > 1)
    val_eval = evaluator(*val) if val else None

    settings = _settings(o, monitor, loop, x)
    pos, best_state, ckpts, best_ckpts = RunPosition(), None, None, None
    workdir = None if o.workdir is None else Path(o.workdir)
    if workdir is not None:
        key_data = place.state(jax.random.key_data(run_key))  # placed as the state
        ts, pos, best_state, ckpts, best_ckpts = _open_workdir(workdir, ts, key_data, settings,
                                                               o, where)
    step = indexed_step(train_step)
    run_steps = (jit(step, donate_argnums=0) if loop == "python"
                 else jit(scan_steps(step), donate_argnums=0))
    log = StepLog(workdir, o.log_every, o.batch_size, o.progress, o.callback, ckpts, loggers)
    run = _Run(o, monitor, loop, settings["steps_per_epoch"], len(x), place,
               place.data({"x": x, "y": y}), run_steps, run_key, evaluator, val_eval, test, log,
               workdir, ckpts, best_ckpts)
    return run, ts, pos, best_state


def _make_step(model, optimizer, o):
    """``(init(key, in_shape), train_step)`` for one model or an ensemble of them
    (:mod:`jaxcnn.train._ensemble`: member ``i`` gets ``split(key, members)[i]``)."""
    step_options = dict(task=o.task, label_smoothing=o.label_smoothing,
                        class_weights=o.class_weights, compute_dtype=o.compute_dtype,
                        augment=o.augment)
    if o.ensemble == 1:
        return (lambda key, in_shape: create_train_state(model, optimizer, key, in_shape),
                make_train_step(model, optimizer, o.loss, **step_options))
    from jaxcnn.train._ensemble import create_ensemble_state, make_ensemble_train_step

    def init(key, in_shape):
        return create_ensemble_state(model, optimizer, jax.random.split(key, o.ensemble),
                                     in_shape)

    return init, make_ensemble_train_step(model, optimizer, o.loss, **step_options)


def _settings(o, monitor, loop, x):
    """The ``fit`` part of ``config.json`` (a resumed run must share some of it)."""
    return dict(epochs=o.epochs, batch_size=o.batch_size, seed=o.seed, task=o.task,
                loss=loss_name(o.loss), label_smoothing=o.label_smoothing,
                class_weights=o.class_weights, compute_dtype=o.compute_dtype,
                early_stopping=o.early_stopping,
                monitor=monitor, ensemble=o.ensemble, checkpoint_every=o.checkpoint_every,
                epoch_loop=loop, steps_per_epoch=len(x) // o.batch_size, train_size=len(x),
                in_shape=x.shape[1:], in_dtype=str(x.dtype))


def loss_name(loss):
    """How ``config.json`` records ``fit``'s loss, and a resumed run compares it: a name (or
    ``None``) as given; a callable by its module and qualified name (a ``functools.partial``
    by its function's, an object by its class's), e.g. ``"mylib.losses.focal"`` or
    ``"__main__.<lambda>"``. Its code and a partial's arguments are not compared."""
    if loss is None or isinstance(loss, str):
        return loss
    while isinstance(loss, functools.partial):
        loss = loss.func
    named = loss if hasattr(loss, "__qualname__") else type(loss)
    return f"{getattr(named, '__module__', None) or '?'}.{named.__qualname__}"


# fit settings a resumed run must share with the run it continues (seed, batch size and
# ensemble size are checked against the checkpoint itself)
_SAME_ON_RESUME = ("task", "loss", "label_smoothing", "class_weights", "compute_dtype",
                   "train_size", "in_shape", "in_dtype")


def _open_workdir(workdir, ts, key_data, settings, o, where):
    """Starts the run folder, or resumes the run in it: ``(train_state, position,
    best_state, checkpoints, best_checkpoints)``."""
    state_bytes = sum(a.nbytes for a in jax.tree.leaves(ts))
    check_workdir(where, workdir, state_bytes, o.keep_checkpoints + 2)  # + best, + in flight
    ckpts = Checkpoints(workdir / "checkpoints", o.keep_checkpoints)
    best_ckpts = Checkpoints(workdir / "best", 1)
    pos, best_state = RunPosition(), None
    if ckpts.latest_step() is not None:
        if not o.resume:
            fail(where, "workdir", "a new folder (or resume=True)", str(workdir),
                 "It already holds checkpoints; pass resume=True (--resume) to continue that "
                 "run, or choose another workdir")
        ts, pos = _restore(ckpts, ts, key_data, o, where)
        check_same_settings(where, workdir, settings, _SAME_ON_RESUME)
        if best_ckpts.latest_step() is not None:
            best_state = best_ckpts.restore({"train_state": ts})[0]["train_state"]
            best_state = jax.device_get(best_state)
        if is_primary():
            truncate_jsonl(workdir / "metrics.jsonl", _count(ts))
            write_csv(workdir / "metrics.jsonl")
    else:  # a fresh run: nothing left from one that died before its first checkpoint
        best_ckpts.clear()
        if is_primary():
            for name in ("metrics.jsonl", *CSV_FILES.values()):
                (workdir / name).unlink(missing_ok=True)
    prepare_workdir(workdir, {**to_jsonable(o.config or {}), "fit": settings})
    return ts, pos, best_state, ckpts, best_ckpts


def _restore(ckpts, ts, key_data, o, where):
    """The train state and position of the latest checkpoint, after checking that it
    belongs to a run with this seed, batch size, model and optimizer."""
    meta = ckpts.read_meta()
    for name in ("seed", "batch_size", "ensemble"):
        if meta.get(name) != getattr(o, name):
            fail(where, name, f"{meta.get(name)!r} as in the checkpoint being resumed",
                 getattr(o, name), "A resumed run must keep the seed, batch size and ensemble "
                 "size")
    template = {"train_state": ts, "key": key_data}
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
    return tree["train_state"], RunPosition.from_meta(meta)


# ------------------------------------------------------------------------ one epoch

def _run_epoch(run, ts, pos):
    """Runs epoch ``pos.epoch`` from step ``pos.step_in_epoch`` to its end, checkpointing
    at every multiple of ``checkpoint_every`` global steps inside it."""
    o, log = run.options, run.log
    order = epoch_order(o.seed, pos.epoch, run.train_size, o.batch_size)
    log.start_epoch(pos.epoch, o.epochs, run.steps_per_epoch, pos.step_in_epoch,
                    pos.epoch_sums, _count(ts))
    for begin, end in segments(pos.step_in_epoch, run.steps_per_epoch, _count(ts),
                               o.checkpoint_every):
        if run.loop == "python":
            for s in range(begin, end):
                ts, metrics = run.run_steps(ts, run.data, run.place.rows(order[s]), run.run_key)
                log.add(metrics, 1)
                if run.place.run_ahead and (s + 1 - begin) % run.place.run_ahead == 0:
                    jax.block_until_ready(metrics)  # see jaxcnn/_host_threads.py
        else:
            ts, metrics = run.run_steps(ts, run.data, run.place.rows(order[begin:end]),
                                        run.run_key)
            log.add(metrics, end - begin)
        if end < run.steps_per_epoch and o.checkpoint_every and log.step % o.checkpoint_every == 0:
            pos = pos._replace(step_in_epoch=end, epoch_sums=dict(log.epoch_sums))
            _save(run, ts, pos)
    return ts, pos


def _end_epoch(run, ts, pos, best_state):
    """Ends epoch ``pos.epoch``: its row (training means, validation metrics), the best
    state by ``monitor``, early stopping, the epoch's log line and its checkpoint."""
    o = run.options
    row = run.log.end_epoch()
    if run.val_eval is not None:
        params, state = run.place.local((ts.params, ts.state))
        row.update({f"val_{k}": v for k, v in run.val_eval(params, state).items()
                    if k != "confusion_matrix"})
    best, best_epoch = pos.best, pos.best_epoch
    if _improved(row.get(run.monitor), best, run.monitor):
        best, best_epoch = row[run.monitor], row["epoch"]
        if o.keep_best:
            best_state = jax.device_get(ts)
            if run.best_ckpts is not None:
                run.best_ckpts.save(_count(ts), {"train_state": ts}, {"epoch": row["epoch"]})
    stopped = bool(o.early_stopping) and row["epoch"] - (best_epoch or 0) >= o.early_stopping
    if stopped:
        row["early_stopped"] = True
    run.log.write_epoch(row)
    pos = RunPosition(epoch=pos.epoch + 1, history=pos.history + (row,), best=best,
                      best_epoch=best_epoch, stopped=stopped)
    _save(run, ts, pos)
    return pos, best_state


def _save(run, ts, pos):
    """Checkpoints the train state and ``pos`` (after checking the parameters are finite:
    NaN parameters are never saved)."""
    run.log.flush()
    if nonfinite_params(ts):
        run.log.fail_params(_count(ts))
    if run.ckpts is not None:
        o = run.options
        meta = {**pos._asdict(), "seed": o.seed, "batch_size": o.batch_size,
                "ensemble": o.ensemble}
        key_data = run.place.state(jax.random.key_data(run.run_key))  # placed as the state
        run.ckpts.save(_count(ts), {"train_state": ts, "key": key_data}, to_jsonable(meta))


# ------------------------------------------------------------------------------ finish

def _finish(run, ts, pos, best_state):
    """Tests the kept train state (the best by ``monitor`` or the last) and writes
    ``result.json``."""
    final = ts
    if run.options.keep_best and best_state is not None:
        final = run.place.state(best_state)
    test_metrics = {}
    if run.test is not None:
        test_metrics = run.evaluator(*run.test)(*run.place.local((final.params, final.state)))
    if run.workdir is not None and is_primary():
        result = {f"test_{k}": v for k, v in test_metrics.items()}
        result.update(step=_count(ts), epochs_run=len(pos.history), best_epoch=pos.best_epoch,
                      monitor=run.monitor, best=pos.best)
        write_json(run.workdir / "result.json", result)
    return FitResult(final, list(pos.history), test_metrics, run.workdir)


def _count(train_state):
    """The step count on the host (members of an ensemble share it)."""
    return int(np.asarray(jax.device_get(train_state.step)).reshape(-1)[0])


def _improved(value, best, monitor):
    if value is None or not np.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if monitor.endswith("loss") else value > best
