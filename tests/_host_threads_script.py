"""Data parallelism over 2 host devices with many steps in flight (run by test_distributed.py).

``python _host_threads_script.py`` with ``--xla_force_host_platform_device_count=2`` prints
one JSON line. XLA:CPU aborts such a run after 40 s when its thread pool is too small for
the all-reduces of the queued steps (jaxcnn/_host_threads.py); ``import jaxcnn`` sizes it:

- ``steps``: 40 sharded steps of the batch-norm CNN dispatched without waiting (more than
  the 32 XLA queues per device), against the same steps on one device;
- ``fit``: ``fit(mesh=...)`` over 40 steps in one epoch with no log row before its end,
  against ``fit`` on one device, run with the wait every 16 steps that ``fit`` adds when the
  pool is small (``$PJRT_NPROC`` is changed to 2 after the backend started, so that
  ``run_ahead_limit`` reports a small pool while the real one stays large).
"""

import json
import sys
from pathlib import Path

import jaxcnn  # noqa: F401  (first: before the CPU backend starts)
from jaxcnn import _host_threads, distributed

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _distributed_common import model_and_optimizer  # noqa: E402

import os  # noqa: E402

from jaxcnn.train import create_train_state, fit, make_train_step  # noqa: E402

STEPS = 40


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def steps():
    net, opt = model_and_optimizer()
    mesh = distributed.data_mesh()
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(8, 6, 6, 1)).astype(np.float32),
             "y": rng.integers(0, 3, 8).astype(np.int32)}
    ts1 = create_train_state(net, opt, jax.random.key(0), (6, 6, 1))
    ts2 = distributed.replicate(ts1, mesh)
    step1, step2 = jax.jit(make_train_step(net, opt)), jax.jit(make_train_step(net, opt))
    sharded, key = distributed.shard_batch(batch, mesh), jax.random.key(1)
    for _ in range(STEPS):  # nothing waits for a result until the end
        ts2, m2 = step2(ts2, sharded, key)
    for _ in range(STEPS):
        ts1, m1 = step1(ts1, batch, key)
    return dict(loss=abs(float(m1["loss"]) - float(m2["loss"])),
                params=max_diff(ts1.params, ts2.params), state=max_diff(ts1.state, ts2.state),
                steps=int(ts2.step))


def fitted():
    net, opt = model_and_optimizer()
    mesh = distributed.data_mesh()
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(8 * STEPS, 6, 6, 1)).astype(np.float32),
            rng.integers(0, 3, 8 * STEPS).astype(np.int32))
    os.environ["PJRT_NPROC"] = "2"  # read by run_ahead_limit; XLA read it at start
    kw = dict(epochs=1, batch_size=8, progress=False, log_every=10 * STEPS,
              epoch_loop="python", keep_best=False)
    ref, got = fit(net, opt, data, **kw), fit(net, opt, data, mesh=mesh, **kw)
    placement = distributed.Placement(mesh, 8, "test")
    return dict(params=max_diff(ref.train_state.params, got.train_state.params),
                loss=abs(ref.history[0]["train_loss"] - got.history[0]["train_loss"]),
                steps=got.history[0]["step"], run_ahead=placement.run_ahead)


if __name__ == "__main__":
    out = dict(devices=jax.device_count(), status=list(_host_threads.status()))
    out.update(steps=steps(), fit=fitted())
    print(json.dumps(out), flush=True)
