"""Where :func:`jaxcnn.train.fit`'s metric rows go besides ``metrics.jsonl``: two CSV tables
in the run folder (always written with it) and TensorBoard event files (when asked).

``metrics.jsonl`` stays the run's record (a resumed run truncates it to its checkpoint);
the CSV tables are rewritten from it at the end of every epoch and when ``fit`` ends, so
they always agree with it: ``epochs.csv`` (one row per epoch: ``epoch``, ``step``,
``train_loss``, ``val_accuracy``...) and ``steps.csv`` (one row per logged window of steps).
"""

from __future__ import annotations

import csv
import numbers
import os
from pathlib import Path

from jaxcnn._checks import fail
from jaxcnn.train._run import is_primary, read_jsonl

CSV_FILES = {"epoch": "epochs.csv", "step": "steps.csv"}


def _flat(row):
    """A row without its ``kind``, lists (one value per ensemble member) spread over
    ``name_0``, ``name_1``..."""
    out = {}
    for key, value in row.items():
        if key == "kind":
            continue
        if isinstance(value, (list, tuple)):
            out.update({f"{key}_{i}": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out


def write_csv(jsonl_path):
    """Rewrites ``epochs.csv`` and ``steps.csv`` beside ``jsonl_path`` from its rows.

    Columns are ``epoch`` and ``step``, then the union of the rows' other keys in the order
    they first appear (sorted in ``metrics.jsonl``); a row without a value leaves its cell
    empty. Each file is replaced atomically; a kind with no rows yet has no file.

    Example:
      >>> import json, tempfile, pathlib
      >>> from jaxcnn.train._loggers import write_csv
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> rows = [{"kind": "step", "step": 4, "loss": 0.5},
      ...         {"kind": "epoch", "epoch": 1, "step": 4, "val_member_loss": [0.7, 0.6]}]
      >>> _ = (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
      >>> write_csv(d / "metrics.jsonl")
      >>> print((d / "epochs.csv").read_text(), end="")
      epoch,step,val_member_loss_0,val_member_loss_1
      1,4,0.7,0.6
    """
    rows = read_jsonl(jsonl_path)
    folder = Path(jsonl_path).parent
    for kind, name in CSV_FILES.items():
        table = [_flat(r) for r in rows if r.get("kind") == kind]
        if not table:
            (folder / name).unlink(missing_ok=True)
            continue
        seen = list(dict.fromkeys(key for r in table for key in r))
        columns = [c for c in ("epoch", "step") if c in seen] + [c for c in seen
                                                               if c not in ("epoch", "step")]
        tmp = folder / (name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(table)
        os.replace(tmp, folder / name)


class TensorBoardLogger:
    """Writes ``fit``'s rows as TensorBoard scalars against the global step.

    As Keras lays them out: two runs under ``logdir``, ``train`` and ``val``, with the same
    tags, so each chart overlays a metric's training and validation curves; tags
    ``epoch/<metric>`` for epoch rows (``epoch/loss``, ``epoch/accuracy``,
    ``epoch/epoch_time``...) and ``step/<metric>`` for logged steps (``step/loss``,
    ``step/grad_norm``...); one value per ensemble member as ``<metric>/<member>``. A run's
    first row purges what an earlier process logged under ``logdir`` from that step on
    (TensorBoard's ``purge_step``), so a resumed run's replayed steps are not drawn twice.

    Needs tensorboardX (``pip install 'jaxcnn[tensorboard]'``); view with
    ``tensorboard --logdir LOGDIR``.

    Example (not run as a doctest: tensorboardX is optional)::

        fit(model, optimizer, train, val, epochs=10, batch_size=128,
            loggers=[TensorBoardLogger("runs/tensorboard/lenet5-seed0")])
        # with a workdir, loggers=["tensorboard"] writes to workdir/tensorboard
    """

    def __init__(self, logdir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError("TensorBoardLogger needs tensorboardX: pip install "
                              "'jaxcnn[tensorboard]' (or pip install tensorboardX)") from None
        if not isinstance(logdir, (str, os.PathLike)):
            fail("TensorBoardLogger", "logdir", "a folder path (str or os.PathLike)", logdir,
                 exc=TypeError)
        self.logdir = Path(logdir)
        self._summary_writer = SummaryWriter
        self._writers = {}

    def _writer(self, run, step):
        if run not in self._writers:
            self._writers[run] = self._summary_writer(str(self.logdir / run), purge_step=step)
        return self._writers[run]

    def __call__(self, row):
        kind, step = row.get("kind"), row.get("step")
        if kind not in ("epoch", "step") or step is None:
            return
        for key, value in row.items():
            if key in ("kind", "epoch", "step"):
                continue
            run, metric = ("train", key) if kind == "step" else _run_and_metric(key)
            for tag, number in _scalars(f"{kind}/{metric}", value):
                self._writer(run, step).add_scalar(tag, number, step)
        if kind == "epoch":
            for writer in self._writers.values():
                writer.flush()

    def close(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _run_and_metric(key):
    for run in ("train", "val"):
        if key.startswith(run + "_"):
            return run, key[len(run) + 1:]
    return "train", key


def _scalars(tag, value):
    if isinstance(value, (list, tuple)):
        return [(f"{tag}/{i}", float(v)) for i, v in enumerate(value)
                if isinstance(v, numbers.Real)]
    if isinstance(value, numbers.Real):
        return [(tag, float(value))]
    return []


def open_loggers(loggers, workdir, where):
    """The loggers of ``fit(..., loggers=...)``: ``"tensorboard"`` becomes a
    :class:`TensorBoardLogger` of ``workdir/tensorboard`` (on process 0 alone); functions
    are kept as given (they run on every process, as the callback does)."""
    if not isinstance(loggers, (list, tuple)):
        fail(where, "loggers", "a list or tuple (of 'tensorboard' or functions logger(row))",
             loggers, exc=TypeError)
    out = []
    for logger in loggers:
        if isinstance(logger, str):
            if logger != "tensorboard":
                fail(where, "a logger name", "'tensorboard'", logger,
                     "Pass a function logger(row) for anything else")
            if workdir is None:
                fail(where, "workdir", "a folder for loggers=['tensorboard']", None,
                     "Pass workdir=..., or TensorBoardLogger(logdir) in loggers")
            if not is_primary():  # process 0 of a multi-process run writes the events
                continue
            logger = TensorBoardLogger(Path(workdir) / "tensorboard")
        elif not callable(logger):
            fail(where, "each logger", "'tensorboard' or a function logger(row)",
                 type(logger).__name__, exc=TypeError)
        out.append(logger)
    return out
