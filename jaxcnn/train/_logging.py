"""Step logging for :func:`jaxcnn.train.fit`: metrics stay on the device until a log
point, then are read in one transfer, checked for NaN/inf, written to ``metrics.jsonl``
(and the CSV tables of :mod:`jaxcnn.train._loggers`), passed to the callback and the
loggers, and shown: a tqdm bar on a terminal, one line per epoch in every case."""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.train._loggers import write_csv
from jaxcnn.train._run import append_jsonl, is_primary

_FIX = ("Lower the learning rate, clip gradients (optax.clip_by_global_norm) or check the "
        "inputs for NaN")


@jax.jit
def _all_finite(tree):
    flags = [jnp.isfinite(p).all() for p in jax.tree.leaves(tree)]
    return jnp.stack(flags).all() if flags else jnp.array(True)


def nonfinite_params(train_state) -> bool:
    """Whether any parameter of ``train_state`` is NaN or infinite (one compiled check)."""
    return not bool(_all_finite(train_state.params))


def _progress_bar(enabled, **kwargs):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional (the experiments extra)
        return None
    return tqdm(**kwargs)


def epoch_line(row):
    """The line that ends an epoch: ``epoch 3: train_loss=0.4123 val_accuracy=0.91 ...``
    (the float metrics of its row)."""
    shown = " ".join(f"{k}={v:.4g}" if abs(v) < 1e4 else f"{k}={v:.0f}" for k, v in row.items()
                     if isinstance(v, float))
    return f"epoch {row['epoch']}: {shown}"


class StepLog:
    """Pending step metrics, the epoch's running sums, the progress bar and the loggers.

    ``progress``: ``None`` draws the bar when stderr is a terminal, ``True`` always,
    ``False`` never; the line that ends each epoch goes to stderr whichever it is."""

    def __init__(self, workdir, log_every, batch_size, progress, callback, ckpts, loggers=()):
        # process 0 of a multi-process run writes the log; the callback runs on every one
        self.path = None if workdir is None or not is_primary() else workdir / "metrics.jsonl"
        self.log_every, self.batch_size = log_every, batch_size
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.callback, self.ckpts, self.loggers = callback, ckpts, list(loggers)
        self.pending, self.step, self.bar, self.epoch = [], None, None, 0
        self.epoch_sums = None

    # -- epochs ------------------------------------------------------------------------
    def start_epoch(self, epoch, epochs, steps_per_epoch, start, epoch_sums, global_step):
        self.epoch, self.step = epoch, global_step
        self.epoch_sums = dict(epoch_sums or {"loss": 0.0, "accuracy": 0.0, "steps": 0,
                                              "time": 0.0})
        self.t_last = time.perf_counter()
        self.bar = _progress_bar(self.progress, total=steps_per_epoch, initial=start,
                                 desc=f"epoch {epoch + 1}/{epochs}", leave=False, unit="step",
                                 dynamic_ncols=True)

    def end_epoch(self):
        self.flush()
        sums = self.epoch_sums
        steps = max(sums["steps"], 1)
        row = {"kind": "epoch", "epoch": self.epoch + 1, "step": self.step,
               "train_loss": sums["loss"] / steps, "epoch_time": sums["time"],
               "examples_per_s": sums["steps"] * self.batch_size / max(sums["time"], 1e-9)}
        if sums["accuracy"] is not None:
            row["train_accuracy"] = sums["accuracy"] / steps
        return row

    def write_epoch(self, row):
        self._write(row)
        if self.path is not None:
            write_csv(self.path)
        line = epoch_line(row)
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            self.bar.close()
            self.bar = None
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self):
        """Closes the bar and the loggers; brings the CSV tables up to date."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.path is not None and self.path.exists():
            write_csv(self.path)
        for logger in self.loggers:
            if hasattr(logger, "close"):
                logger.close()

    # -- steps -------------------------------------------------------------------------
    def add(self, metrics, num_steps):
        """Records ``num_steps`` steps' metrics (device arrays; not read yet)."""
        first = self.step + 1
        self.step += num_steps
        self.pending.append((first, num_steps, metrics))
        if self.step // self.log_every > (first - 1) // self.log_every:
            self.flush()

    def flush(self):
        """Reads pending metrics, checks them, writes one row for the window."""
        if not self.pending:
            return
        fetched = jax.device_get([m for _, _, m in self.pending])
        steps = np.concatenate([np.arange(f, f + n) for f, n, _ in self.pending])
        values = {name: np.concatenate([np.asarray(m[name], np.float64).reshape(n, -1)
                                        for (_, n, _), m in zip(self.pending, fetched)])
                  for name in fetched[0]}
        self.pending = []
        finite = np.isfinite(values["loss"]).all(axis=1) & np.isfinite(
            values["grad_norm"]).all(axis=1)
        if not finite.all():
            bad = int(steps[np.argmin(finite)])
            self.fail(bad, "the training loss" if not np.isfinite(
                values["loss"][np.argmin(finite)]).all() else "the gradient norm")
        now = time.perf_counter()
        elapsed, self.t_last = now - self.t_last, now
        means = {name: float(v.mean()) for name, v in values.items()}
        self.epoch_sums["loss"] += float(values["loss"].mean(axis=1).sum())
        if "accuracy" in values:
            self.epoch_sums["accuracy"] += float(values["accuracy"].mean(axis=1).sum())
        else:
            self.epoch_sums["accuracy"] = None
        self.epoch_sums["steps"] += len(steps)
        self.epoch_sums["time"] += elapsed
        row = {"kind": "step", "epoch": self.epoch + 1, "step": int(steps[-1]), **means,
               "examples_per_s": len(steps) * self.batch_size / max(elapsed, 1e-9)}
        self._write(row)
        if self.bar is not None:
            self.bar.update(len(steps))
            self.bar.set_postfix({k: f"{row[k]:.4g}" for k in ("loss", "accuracy",
                                                                "examples_per_s") if k in row})

    def _write(self, row):
        if self.path is not None:
            append_jsonl(self.path, row)
        if self.callback is not None:
            self.callback(row)
        for logger in self.loggers:
            logger(row)

    # -- failures ----------------------------------------------------------------------
    def _last_good(self):
        if self.ckpts is None:
            return "no checkpoints were written (workdir=None)"
        last = self.ckpts.latest_step()
        if last is None:
            return f"no checkpoint was written yet in {self.ckpts.directory}"
        return (f"the last good checkpoint is step {last} in {self.ckpts.directory} "
                "(resume=True continues from it)")

    def fail(self, step, what):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.path is not None:
            append_jsonl(self.path, {"kind": "error", "step": step, "error": f"{what} not finite"})
        raise FloatingPointError(
            f"fit: {what} at step {step} (epoch {self.epoch + 1}) must be finite, got NaN or "
            f"inf. Training stopped; {self._last_good()}. {_FIX}")

    def fail_params(self, step):
        self.fail(step, "the parameters after the update")
