"""Epoch execution: the data order, and the two ways to run an epoch's steps.

Both take the whole training set already on the device and a matrix of example indices,
one row per step, and gather each batch inside the compiled function:

- ``"python"``: a Python loop over one jitted step (``jax.jit(..., donate_argnums=0)``).
- ``"scan"``: the steps inside one compiled ``lax.scan``.

``epoch_loop="auto"`` takes the faster of the two per backend: the Python loop on CPU,
where the scan ran slower for every model measured, and the scan on GPU, where it saves the
dispatch of each step (``benchmarks/results/gpu/epoch_loop.md``). Other backends take the
Python loop, which asynchronous dispatch keeps busy. ``python benchmarks/epoch_loop.py``
measures both on the backend at hand.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxcnn._checks import check_choice

EPOCH_LOOPS = ("auto", "python", "scan")
MEASURED_DEFAULT = {"cpu": "python", "gpu": "scan"}


def resolve_epoch_loop(epoch_loop, where="fit"):
    check_choice(where, "epoch_loop", epoch_loop, EPOCH_LOOPS)
    if epoch_loop == "auto":
        return MEASURED_DEFAULT.get(jax.default_backend(), "python")
    return epoch_loop


def epoch_order(seed, epoch, n, batch_size):
    """Example indices ``(n // batch_size, batch_size)`` of one epoch: a permutation that is
    a pure function of ``(seed, epoch)`` (the final partial batch of a training epoch is
    dropped, a different one each epoch)."""
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    steps = n // batch_size
    return perm[: steps * batch_size].reshape(steps, batch_size).astype(np.int32)


def indexed_step(train_step):
    """``step(train_state, data, idx, key)``: gathers ``data[idx]`` and runs ``train_step``."""

    def step(train_state, data, idx, key):
        batch = {"x": data["x"][idx], "y": data["y"][idx]}
        return train_step(train_state, batch, key)

    return step


def scan_steps(step):
    """``steps(train_state, data, idx_rows, key)``: ``step`` over each row of ``idx_rows``
    inside one ``lax.scan``; metrics come back stacked along a leading axis."""

    def steps(train_state, data, idx_rows, key):
        return jax.lax.scan(lambda ts, idx: step(ts, data, idx, key), train_state, idx_rows)

    return steps


def segments(start, stop, global_start, every):
    """Splits steps ``[start, stop)`` of an epoch at checkpoint boundaries (global step
    counts divisible by ``every``): a list of ``(begin, end)`` pairs."""
    cuts, s = [], start
    while s < stop:
        end = stop
        if every:
            done = global_start + (s - start)
            end = min(stop, s + every - done % every)
        cuts.append((s, end))
        s = end
    return cuts
