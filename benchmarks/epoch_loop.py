"""Python loop over a jitted train step vs one compiled ``lax.scan`` over an epoch.

Run: ``python benchmarks/epoch_loop.py [--steps 100 --batch-size 128 --repeats 3]``

Both variants run the same pure step (``jaxcnn.train.make_train_step``) on data already
on the device, gathering each batch inside the compiled function, so the only difference
is who drives the steps. Prints milliseconds per step (median over ``--repeats`` epochs,
after one warm-up epoch that compiles) and the ratio; ``epoch_loop="auto"``
(``jaxcnn/train/_epoch.py``) follows what it measures on each backend.

The net is LeNet-5-like (two 5x5 convolutions, subsampling by stride-2 convolutions
instead of pooling, three dense layers) on 28x28x1 inputs, trained with SGD + momentum.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np
import optax

import jaxcnn as jc
from jaxcnn.train import create_train_state, make_train_step
from jaxcnn.train._epoch import indexed_step, scan_steps


def lenet_like():
    return jc.serial(jc.conv(6, 5, padding=2), jc.relu(), jc.conv(6, 2, stride=2), jc.relu(),
                     jc.conv(16, 5), jc.relu(), jc.conv(16, 2, stride=2), jc.relu(),
                     jc.flatten(), jc.dense(120), jc.relu(), jc.dense(84), jc.relu(),
                     jc.dense(10))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    model, opt = lenet_like(), optax.sgd(0.01, momentum=0.9)
    n = args.steps * args.batch_size
    rng = np.random.default_rng(0)
    data = {"x": jax.device_put(rng.normal(size=(n, 28, 28, 1)).astype(np.float32)),
            "y": jax.device_put(rng.integers(0, 10, n).astype(np.int32))}
    idx = rng.permutation(n).reshape(args.steps, args.batch_size).astype(np.int32)
    key = jax.random.key(1)
    step = indexed_step(make_train_step(model, opt))
    py_step = jax.jit(step, donate_argnums=0)
    scan = jax.jit(scan_steps(step), donate_argnums=0)

    def run_python(ts):
        for row in idx:
            ts, m = py_step(ts, data, row, key)
        return jax.block_until_ready(ts)

    def run_scan(ts):
        ts, m = scan(ts, data, idx, key)
        return jax.block_until_ready(ts)

    results = {}
    for name, run in (("python", run_python), ("scan", run_scan)):
        ts = create_train_state(model, opt, jax.random.key(0), (28, 28, 1))
        ts = run(ts)  # compile + warm up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ts = run(ts)
            times.append(time.perf_counter() - t0)
        results[name] = 1e3 * statistics.median(times) / args.steps
    device = jax.devices()[0]
    kind = getattr(device, "device_kind", device)
    print(f"jax {jax.__version__}, {jax.default_backend()} ({kind}), batch {args.batch_size}, "
          f"{args.steps} steps")
    print(f"python loop: {results['python']:.2f} ms/step")
    print(f"lax.scan:    {results['scan']:.2f} ms/step")
    print(f"scan/loop:   {results['scan'] / results['python']:.2f}x")


if __name__ == "__main__":
    main()
