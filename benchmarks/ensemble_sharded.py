"""K ensemble members split over devices vs one device (vmap, unroll) vs K sequential runs.

Command (the table in ``benchmarks/results/ensemble_sharded.md`` came from it)::

    nice -n 10 python benchmarks/ensemble_sharded.py            # small conv net and MLP

The process starts with 8 host devices (``--xla_force_host_platform_device_count``, set
here before JAX starts). Each repeat times, after compilation and excluding
initialisation, ``--steps`` steps of K = ``--members`` models trained

- one after another with the single-model step (``sequential``, device 0);
- in one ensemble step on device 0 (``vmap``, ``unroll``: see
  :mod:`jaxcnn.train._ensemble`);
- in one ensemble step with the members split over D devices (``sharded D``:
  ``make_ensemble_train_step(..., mesh=member_mesh(devices[:D]))``, state placed with
  ``shard_members``; each device runs its K / D members unrolled).

All modes see the same batches, already placed. Modes are interleaved within a repeat so
that load from other processes hits them alike; the table gives the median and minimum
over repeats and the ratio sequential / mode of the medians (> 1: faster than sequential).
Results go to ``<out>/ensemble_sharded.md`` and ``.json`` (date, hardware, versions,
command).
"""

from __future__ import annotations

import os
import sys

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=8").strip()

import argparse  # noqa: E402
import json  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _meta  # noqa: E402
from ensemble_vs_sequential import mlp, small_cnn, timed  # noqa: E402

from jaxcnn import distributed  # noqa: E402
from jaxcnn.train import (create_ensemble_state, create_train_state, jit_train_step,  # noqa: E402
                          make_ensemble_train_step, make_train_step)


def machine():
    return _meta.machine(jax=jax.__version__,
                         jaxlib=getattr(jax.lib, "__version__", None) or jax.__version__,
                         optax=optax.__version__, devices=jax.device_count(),
                         backend=jax.default_backend(),
                         xla_flags=os.environ.get("XLA_FLAGS", ""))


def bench(model_name, args):
    k, in_shape = args.members, (args.size, args.size, 1)
    model = small_cnn() if model_name == "cnn" else mlp()
    opt = optax.adam(1e-3)
    rng = np.random.default_rng(0)
    host = [{"x": rng.normal(size=(args.batch_size,) + in_shape).astype(np.float32),
             "y": rng.integers(0, 10, args.batch_size).astype(np.int32)}
            for _ in range(args.steps)]
    batches = [jax.device_put(b) for b in host]
    run_key = jax.random.key(1)
    init_keys = jax.random.split(jax.random.key(0), k)
    member_keys = jax.random.split(run_key, k)

    single = jit_train_step(make_train_step(model, opt))

    def sequential(states):
        out = []
        for i, ts in enumerate(states):
            for batch in batches:
                ts, metrics = single(ts, batch, member_keys[i])
            out.append(metrics["loss"])
        return out

    def run_ensemble(step, placed):
        def go(ens):
            for batch in placed:
                ens, metrics = step(ens, batch, run_key)
            return metrics["loss"]
        return go

    new_ens = lambda: create_ensemble_state(model, opt, init_keys, in_shape)  # noqa: E731
    modes = {"sequential": (sequential, lambda: [create_train_state(model, opt, key, in_shape)
                                                 for key in init_keys])}
    for strategy in ("vmap", "unroll"):
        step = jit_train_step(make_ensemble_train_step(model, opt, strategy=strategy))
        modes[strategy] = (run_ensemble(step, batches), new_ens)
    for d in args.devices:
        mesh = distributed.member_mesh(jax.devices()[:d])
        step = jit_train_step(make_ensemble_train_step(model, opt, strategy="unroll", mesh=mesh))
        placed = [distributed.replicate(b, mesh) for b in host]
        modes[f"sharded {d}"] = (run_ensemble(step, placed),
                                 lambda mesh=mesh: distributed.shard_members(new_ens(), mesh))
    for fn, init in modes.values():  # compile and warm up everything first
        jax.block_until_ready(fn(init()))
    times = {name: [] for name in modes}
    for _ in range(args.repeats):
        for name, (fn, init) in modes.items():
            states = jax.block_until_ready(init())
            times[name].append(timed(lambda: fn(states)))
    return {name: {"median": float(np.median(t)), "min": float(np.min(t))}
            for name, t in times.items()}


def markdown(results, meta, args):
    lines = [f"# {args.members} ensemble members: sharded over host devices, vmap, unroll, "
             "sequential", "",
             f"Command: `{meta['command']}`", "",
             f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores, "
             f"{meta['devices']} XLA host devices), jax {meta['jax']}, optax {meta['optax']}; "
             f"load average {meta['load_start']:.2f} at start, {meta['load_end']:.2f} at end. "
             f"K = {args.members}, batch {args.batch_size} of {args.size}x{args.size}x1, "
             f"{args.steps} Adam steps per run, after compilation, {args.repeats} interleaved "
             "repeats. seq/mode: sequential median / mode median (> 1: faster than training "
             "the members one after another).", "",
             "| model | mode | median s | min s | seq/mode |", "|---|---|---|---|---|"]
    for model_name, res in results.items():
        seq = res["sequential"]["median"]
        for name, r in res.items():
            lines.append(f"| {model_name} | {name} | {r['median']:.3f} | {r['min']:.3f} | "
                         f"{seq / r['median']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--size", type=int, default=16, help="input height and width")
    ap.add_argument("--models", default="cnn,mlp")
    ap.add_argument("--devices", default="2,8", help="device counts of the sharded modes")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args(argv)
    args.devices = [int(d) for d in args.devices.split(",")]
    meta = machine()
    results = {}
    for name in args.models.split(","):
        results[name] = bench(name, args)
        print(name, json.dumps(results[name]), flush=True)
    meta["load_end"] = os.getloadavg()[0]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ensemble_sharded.json"), "w") as f:
        json.dump({"meta": meta, "args": vars(args), "results": results}, f, indent=1)
    table = markdown(results, meta, args)
    with open(os.path.join(args.out, "ensemble_sharded.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
