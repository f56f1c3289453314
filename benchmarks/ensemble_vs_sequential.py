"""K models trained in one compiled ensemble step vs the same K models trained one by one.

Commands (``strategy="auto"`` of :func:`jaxcnn.train.make_ensemble_train_step` follows what
they measure)::

    python benchmarks/ensemble_vs_sequential.py               # small conv net
    python benchmarks/ensemble_vs_sequential.py --model mlp   # dense layers only

Each repeat times, after compilation and excluding initialisation, (a) K sequential runs
of ``--steps`` steps, each with the jitted single-model step of
:func:`jaxcnn.train.make_train_step`, and (b) one run of ``--steps`` ensemble steps of
:func:`jaxcnn.train.make_ensemble_train_step` for each strategy (``vmap``, ``unroll``).
All runs see the same batches, already on the device. The modes are interleaved within a
repeat, so load from other processes hits them alike; the table gives the median and the
minimum over repeats and the ratio sequential / ensemble of the medians (> 1: the
ensemble is faster). ``--model mlp`` runs a net of dense layers only, where ``vmap``
turns K matrix products into one batched product."""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcnn import conv, dense, flatten, relu, serial
from jaxcnn.train import (create_ensemble_state, create_train_state, jit_train_step,
                          make_ensemble_train_step, make_train_step)


def small_cnn(num_classes=10):
    return serial(conv(8, 3, padding=1), relu(), conv(16, 3, stride=2, padding=1), relu(),
                  conv(16, 3, stride=2, padding=1), relu(), flatten(), dense(num_classes))


def mlp(num_classes=10):
    return serial(flatten(), dense(128), relu(), dense(128), relu(), dense(num_classes))


def timed(fn):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--size", type=int, default=16, help="input height and width")
    ap.add_argument("--model", choices=("cnn", "mlp"), default="cnn")
    args = ap.parse_args(argv)
    k, in_shape = args.members, (args.size, args.size, 1)
    model = small_cnn() if args.model == "cnn" else mlp()
    opt = optax.adam(1e-3)
    rng = np.random.default_rng(0)
    batches = [{"x": jnp.asarray(rng.normal(size=(args.batch_size,) + in_shape), jnp.float32),
                "y": jnp.asarray(rng.integers(0, 10, args.batch_size), jnp.int32)}
               for _ in range(args.steps)]
    run_key = jax.random.key(1)
    init_keys = jax.random.split(jax.random.key(0), k)
    member_keys = jax.random.split(run_key, k)

    single = jit_train_step(make_train_step(model, opt))
    ens_steps = {s: jit_train_step(make_ensemble_train_step(model, opt, strategy=s))
                 for s in ("vmap", "unroll")}

    def sequential(states):
        out = []
        for i, ts in enumerate(states):
            for batch in batches:
                ts, metrics = single(ts, batch, member_keys[i])
            out.append(metrics["loss"])
        return out

    def ensemble(step, ens):
        for batch in batches:
            ens, metrics = step(ens, batch, run_key)
        return metrics["loss"]

    # fresh initial states for every run (the steps donate them), made outside the timing
    new_states = lambda: [create_train_state(model, opt, key, in_shape) for key in init_keys]  # noqa
    new_ens = lambda: create_ensemble_state(model, opt, init_keys, in_shape)  # noqa
    modes = {"sequential": (sequential, new_states)}
    modes.update({f"ensemble ({s})": (lambda ens, st=st: ensemble(st, ens), new_ens)
                  for s, st in ens_steps.items()})
    for fn, init in modes.values():  # compile (and warm up) everything first
        jax.block_until_ready(fn(init()))
    times = {name: [] for name in modes}
    for _ in range(args.repeats):
        for name, (fn, init) in modes.items():
            states = jax.block_until_ready(init())
            times[name].append(timed(lambda: fn(states)))
    seq = np.median(times["sequential"])
    print(f"jax {jax.__version__}, {jax.default_backend()} ({platform.processor() or 'cpu'}), "
          f"{jax.device_count()} device(s); model {args.model}, K={k}, batch {args.batch_size}, "
          f"{args.size}x{args.size}x1, {args.steps} steps, median of {args.repeats}")
    print(f"{'mode':<20} {'median s':>9} {'min s':>8} {'seq/mode':>9}")
    for name, ts in times.items():
        med = np.median(ts)
        print(f"{name:<20} {med:9.3f} {np.min(ts):8.3f} {seq / med:9.2f}")


if __name__ == "__main__":
    main()
