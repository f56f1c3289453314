"""One process of a multi-process data-parallel run (started by tests/test_distributed.py).

``python _distributed_worker.py PORT NUM_PROCESSES PROCESS_ID OUT MODE CACHE`` joins the run
on 127.0.0.1:PORT (a mesh over every device of every process; ``CACHE`` a compilation-cache
folder, which the resuming processes find filled) and then:

- ``MODE == "train"``: trains the small batch-norm CNN for a few steps, each process loading
  only its rows of each global batch, and saves its parameters to ``OUT/params_<id>.npz``;
  runs ``fit`` uninterrupted in ``OUT/whole`` (``OUT/whole_<id>.json``: its history, test
  metrics and final parameters); then starts the same ``fit`` in ``OUT/killed``, where
  process 1 kills itself with SIGKILL after step ``KILL_AT`` (before that step's
  checkpoint) while the others must stop with an error once its heartbeats are missed.
- ``MODE == "resume"``: resumes the run in ``OUT/killed`` (``OUT/resumed_<id>.json``).
"""

import json
import os
import signal
import sys

port, num_processes, process_id, out, mode, cache = sys.argv[1:7]
num_processes, process_id = int(num_processes), int(process_id)

from jaxcnn import distributed  # noqa: E402  (imports jax, touches no backend)

distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id,
                       bind_address=f"127.0.0.1:{port}", heartbeat_timeout_s=4,
                       initialization_timeout_s=60)

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxcnn  # noqa: E402

jaxcnn.enable_compilation_cache(cache)

sys.path.insert(0, os.path.dirname(__file__))
from _distributed_common import (KILL_AT, batches, fit_data, fit_options,  # noqa: E402
                                 model_and_optimizer)

from jaxcnn.train import create_train_state, fit, make_train_step  # noqa: E402

net, opt = model_and_optimizer()
mesh = distributed.data_mesh()


def flat(tree):
    leaves = jax.tree_util.tree_flatten_with_path(distributed.to_host(tree))[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def train_steps():
    ts = distributed.replicate(create_train_state(net, opt, jax.random.key(0), (6, 6, 1)), mesh)
    step = jax.jit(make_train_step(net, opt), donate_argnums=0)
    for batch in batches():
        rows = distributed.local_rows(len(batch["y"]), mesh)
        local = {k: v[rows] for k, v in batch.items()}
        ts, metrics = step(ts, distributed.shard_local_batch(local, mesh), jax.random.key(1))
    np.savez(os.path.join(out, f"params_{process_id}.npz"), **flat((ts.params, ts.state)))
    print(f"process {process_id}: devices {jax.device_count()}, local "
          f"{jax.local_device_count()}, loss {float(metrics['loss']):.6f}", flush=True)


def run_fit(folder, name, **kw):
    train, test = fit_data()
    result = fit(net, opt, train, test=test, workdir=os.path.join(out, folder), mesh=mesh,
                 **fit_options(), **kw)
    record = {"history": result.history, "test": result.test_metrics,
              "params": {k: v.tolist() for k, v in flat(result.train_state.params).items()}}
    with open(os.path.join(out, f"{name}_{process_id}.json"), "w") as f:
        json.dump(record, f)


def kill_at(row):
    if process_id == 1 and row.get("step") == KILL_AT and row["kind"] == "step":
        print(f"process {process_id}: SIGKILL after step {KILL_AT}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


if mode == "train":
    train_steps()
    run_fit("whole", "whole")
    run_fit("killed", "killed", callback=kill_at)
    print(f"process {process_id}: the killed run finished", flush=True)
else:
    run_fit("killed", "resumed", resume=True)
