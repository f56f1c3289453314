"""Step logging for :func:`jaxcnn.train.fit`: metrics stay on the device until a log
point, then are read in one transfer, checked for NaN/inf, written to ``metrics.jsonl``,
shown in the progress bar and passed to the callback."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

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


class StepLog:
    """Pending step metrics, the epoch's running sums and the progress bar."""

    def __init__(self, workdir, log_every, batch_size, progress, callback, ckpts):
        # process 0 of a multi-process run writes the log; the callback runs on every one
        self.path = None if workdir is None or not is_primary() else workdir / "metrics.jsonl"
        self.log_every, self.batch_size = log_every, batch_size
        self.progress, self.callback, self.ckpts = progress, callback, ckpts
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
        if self.bar is not None:
            shown = {k: f"{v:.4g}" for k, v in row.items()
                     if isinstance(v, float) and not k.startswith("member")}
            self.bar.write(f"epoch {row['epoch']}: " + " ".join(f"{k}={v}" for k, v in
                                                                 shown.items()))
            self.bar.close()
            self.bar = None

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

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
        self.close()
        if self.path is not None:
            append_jsonl(self.path, {"kind": "error", "step": step, "error": f"{what} not finite"})
        raise FloatingPointError(
            f"fit: {what} at step {step} (epoch {self.epoch + 1}) must be finite, got NaN or "
            f"inf. Training stopped; {self._last_good()}. {_FIX}")

    def fail_params(self, step):
        self.fail(step, "the parameters after the update")
