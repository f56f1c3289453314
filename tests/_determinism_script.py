"""A short seeded ``fit`` for tests/test_determinism.py, in this process or another one.

python tests/_determinism_script.py OUT.npz [--cpus K] [--seed S] [--size small|large]

``--cpus K`` pins the process to its first ``K`` CPUs before JAX starts, which sets the
size of XLA's host thread pool and of the OpenMP team oneDNN uses (both follow the
affinity mask). OUT.npz gets the final train state (``leaf_<i>``: step, parameters,
batch-norm state, optimizer state) and the history without its timings (``history``,
JSON). ``$JAXCNN_NATIVE=0`` runs without oneDNN.
"""

import json
import os
import sys

TIMINGS = ("epoch_time", "examples_per_s")


def _pin(cpus):
    mine = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(mine[:cpus]))


def run(seed=0, size="small"):
    """``(history without timings, leaves of the final train state)`` of a short run: conv
    (oneDNN where built), batch norm, dropout, max pool and dense, Adam, 2 epochs."""
    import jax
    import numpy as np
    import optax

    import jaxcnn as jc
    from jaxcnn.train import fit

    hw, width, n = (8, 4, 64) if size == "small" else (28, 32, 512)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, hw, hw, 1)).astype(np.float32)
    y = (x[:, : hw // 2].mean(axis=(1, 2, 3)) > 0).astype(np.int32)
    net = jc.serial(jc.conv(width, 3, padding=1, use_bias=False), jc.batch_norm(), jc.relu(),
                    jc.max_pool(2),
                    jc.conv(2 * width, 3), jc.relu(), jc.flatten(), jc.dropout(0.2),
                    jc.dense(2))
    result = fit(net, optax.adam(1e-2), (x, y), val=(x[:32], y[:32]), epochs=2, batch_size=16,
                 seed=seed, keep_best=False, progress=False)
    history = [{k: v for k, v in row.items() if k not in TIMINGS} for row in result.history]
    leaves = [np.asarray(a) for a in jax.tree.leaves(jax.device_get(result.train_state))]
    return history, leaves


def main(argv):
    out, args = argv[0], dict(zip(argv[1::2], argv[2::2]))
    if "--cpus" in args:
        _pin(int(args["--cpus"]))
    import numpy as np

    history, leaves = run(int(args.get("--seed", 0)), args.get("--size", "small"))
    np.savez(out, history=np.array(json.dumps(history)),
             **{f"leaf_{i}": a for i, a in enumerate(leaves)})


if __name__ == "__main__":
    main(sys.argv[1:])
