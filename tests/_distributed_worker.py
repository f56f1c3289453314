"""One process of a multi-process data-parallel run (started by tests/test_distributed.py).

``python _distributed_worker.py PORT NUM_PROCESSES PROCESS_ID OUT MODE`` joins the run on
127.0.0.1:PORT, trains a small batch-norm CNN for a few steps on a mesh over every device
of every process, each process loading only its rows of each global batch, and saves its
parameters to ``OUT/params_<id>.npz``. ``MODE == "die"``: process 1 exits abruptly after
the first step while the others keep stepping (they must stop with an error).
"""

import os
import sys

port, num_processes, process_id, out, mode = sys.argv[1:6]
num_processes, process_id = int(num_processes), int(process_id)

from jaxcnn import distributed  # noqa: E402  (imports jax, touches no backend)

distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id,
                    bind_address=f"127.0.0.1:{port}", heartbeat_timeout_s=4,
                    initialization_timeout_s=60)

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from _distributed_common import STEPS, batches, model_and_optimizer  # noqa: E402

from jaxcnn.train import create_train_state, make_train_step  # noqa: E402

net, opt = model_and_optimizer()
mesh = distributed.data_mesh()
ts = distributed.replicate(create_train_state(net, opt, jax.random.key(0), (6, 6, 1)), mesh)
step = jax.jit(make_train_step(net, opt), donate_argnums=0)
key = jax.random.key(1)
for i, batch in enumerate(batches()):
    rows = distributed.local_rows(len(batch["y"]), mesh)
    local = {k: v[rows] for k, v in batch.items()}
    ts, metrics = step(ts, distributed.shard_local_batch(local, mesh), key)
    if mode == "die" and process_id == 1 and i == 0:
        jax.block_until_ready(ts)
        os._exit(3)
    if mode == "die" and i == STEPS - 1:  # the survivors keep synchronising
        jax.block_until_ready(ts)
        import time
        for _ in range(60):
            ts, metrics = step(ts, distributed.shard_local_batch(local, mesh), key)
            jax.block_until_ready(ts)
            time.sleep(0.5)
flat = jax.tree_util.tree_flatten_with_path(distributed.to_host((ts.params, ts.state)))[0]
np.savez(os.path.join(out, f"params_{process_id}.npz"),
         **{jax.tree_util.keystr(path): leaf for path, leaf in flat})
print(f"process {process_id}: devices {jax.device_count()}, local {jax.local_device_count()}, "
      f"loss {float(metrics['loss']):.6f}")
