"""Data-parallel step throughput on 1, 2 and 8 host devices, and a model of N GPUs.

Command (``benchmarks/results/scaling.md`` and ``.json`` came from it)::

    nice -n 10 python benchmarks/scaling.py

Measured part. Each device count runs in its own process (the count is fixed when JAX
starts: ``--xla_force_host_platform_device_count``): the train step of
:func:`jaxcnn.train.make_train_step` compiled with ``jax.jit``, the train state replicated
and a global batch of ``--batch`` examples split over a :func:`jaxcnn.distributed.data_mesh`
of D devices, exactly as ``fit(mesh=...)`` runs it. "1, no mesh" is the plain
single-device step, and "1, lax" the same with every op forced to its ``lax`` lowering
(``JAXCNN_LOWERING=lax``): programs sharded over several devices use the ``lax``
convolutions (the native oneDNN ones run only in single-device programs), so "1, lax" is
the like-for-like baseline of the sharded rows. Host devices of one CPU share its cores:
splitting the batch adds no arithmetic units, so at best D devices match one; they add
the all-reduce of the gradients, smaller per-device convolutions that use the cores less
well, and D programs competing for the same cores. The measurement shows what the
sharding machinery costs, not a speed-up. The timed loop dispatches steps without waiting
for them, so with D > 1 it needs XLA:CPU's thread pool of 2 D threads that ``import jaxcnn``
asks for (``$PJRT_NPROC``, jaxcnn/_host_threads.py): with XLA's default of one thread per
core it stops in the all-reduce.

Model part. For every zoo model at its usual input size: parameters ``P`` and forward
FLOPs per example ``F`` from :func:`jaxcnn.summary`. Data parallelism with a fixed batch
per GPU ``b`` (weak scaling): per step each GPU computes ``3 F b`` FLOPs (the backward pass
costs about twice the forward) at a sustained rate ``R`` (but no less than a measured
per-step floor), and the float32 gradients are
all-reduced: a ring moves ``2 (N - 1) / N * 4 P`` bytes in and out of each GPU, at a
bus bandwidth ``W`` per GPU, plus ``2 (N - 1)`` latencies ``a``. Across nodes of 8 GPUs
the all-reduce is hierarchical: within each node over NVLink, then across the ``M`` nodes
``2 (M - 1) / M * 4 P`` bytes through each node's network link. Efficiency
``E = compute / (compute + all-reduce)`` assumes no overlap (a lower bound; XLA overlaps
the all-reduce of early layers' gradients with the rest of the backward pass), and the
speed-up is ``N E``. The assumptions are printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import _meta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEASURED = {"lenet5": (28, 28, 1), "resnet20": (32, 32, 3)}

# the scaling model's assumptions (stated in the results file)
BATCH_PER_GPU = 128
# sustained FLOP/s of one GPU on these small convnets: ResNet-20's train step on one H200,
# 48,380 images/s at batch 128 (benchmarks/results/gpu/train_step.md) x 3 x its forward
# FLOPs; large ImageNet models run faster per FLOP, which makes communication matter more
H200_RESNET20_IMAGES_PER_S = 48380.0
# the per-step floor (kernel launches, optimizer update) that FLOPs do not show: LeNet-5's
# train step on one H200, 277,588 images/s at batch 128 (the same file)
H200_LENET5_STEP_S = 128 / 277588.0
NVLINK = dict(name="NVLink (8 GPUs in a node)", bandwidth=300e9, latency=5e-6)
NETWORK = dict(name="100 Gb/s Ethernet between nodes", bandwidth=12.5e9, latency=20e-6)

ZOO = [  # name, factory keyword arguments, input shape (no batch axis)
    ("lenet5", {}, (28, 28, 1)),
    ("digits_cnn", {}, (28, 28, 1)),
    ("small_cnn", {}, (32, 32, 3)),
    ("resnet20", {}, (32, 32, 3)),
    ("resnet56", {}, (32, 32, 3)),
    ("resnet18", {}, (32, 32, 3)),
    ("vgg16", {}, (32, 32, 3)),
    ("resnet50", dict(num_classes=1000, small_input=False), (224, 224, 3)),
    ("mobilenet_v2", {}, (224, 224, 3)),
    ("shufflenet_v2", {}, (224, 224, 3)),
    ("squeezenet", {}, (224, 224, 3)),
    ("alexnet", {}, (224, 224, 3)),
    ("densenet121", {}, (224, 224, 3)),
    ("googlenet", {}, (224, 224, 3)),
    ("fcn", dict(num_classes=10), (512, 1)),
    ("resnet1d", dict(num_classes=10), (512, 1)),
    ("tcn", dict(num_classes=10), (512, 1)),
    ("voxnet", {}, (32, 32, 32, 1)),
    ("small_cnn3d", {}, (32, 32, 32, 1)),
    ("unet", {}, (128, 128, 1)),
]


# ---------------------------------------------------------------- measured: one process each
def child(devices, mesh, models, batch, seconds, repeats):
    """One device count: prints one JSON line ``{model: [images/s of each repeat]}``."""
    import jax
    import numpy as np
    import optax

    from jaxcnn import distributed
    from jaxcnn.models import get_model
    from jaxcnn.train import create_train_state, make_train_step

    assert jax.device_count() == devices, (jax.device_count(), devices)
    out = {}
    for name in models:
        in_shape = MEASURED[name]
        net, opt = get_model(name, num_classes=10), optax.sgd(0.01, momentum=0.9)
        rng = np.random.default_rng(0)
        batch_np = {"x": rng.normal(size=(batch,) + in_shape).astype(np.float32),
                    "y": rng.integers(0, 10, batch).astype(np.int32)}
        ts = create_train_state(net, opt, jax.random.key(0), in_shape)
        if mesh:
            m = distributed.data_mesh()
            ts, data = distributed.replicate(ts, m), distributed.shard_batch(batch_np, m)
        else:
            ts, data = jax.device_put(ts), jax.device_put(batch_np)
        step = jax.jit(make_train_step(net, opt), donate_argnums=0)
        key = jax.random.key(1)
        ts, metrics = step(ts, data, key)  # compile
        jax.block_until_ready(metrics)
        rates = []
        for _ in range(repeats):
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                ts, metrics = step(ts, data, key)
                n += 1
            jax.block_until_ready((ts, metrics))
            rates.append(n * batch / (time.perf_counter() - start))
        out[name] = rates
    print("RESULT " + json.dumps(out), flush=True)


CONFIGS = [  # label, devices, mesh, extra environment
    ("1, no mesh", 1, False, {}),
    ("1, lax", 1, False, {"JAXCNN_LOWERING": "lax"}),
    ("1, mesh", 1, True, {}),
    ("2, mesh", 2, True, {}),
    ("8, mesh", 8, True, {}),
]


CRASHES = []  # configurations whose process failed after printing its result


def measure(args):
    """Rounds over the configurations (alternating their order); medians per config."""
    rates = {label: {m: [] for m in args.models} for label, *_ in CONFIGS}
    for r in range(args.rounds):
        for label, devices, mesh, extra in (CONFIGS if r % 2 == 0 else CONFIGS[::-1]):
            flags = f"--xla_force_host_platform_device_count={devices}"
            env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu", **extra,
                       PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
            code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
                    f"from scaling import child; child({devices}, {mesh}, {args.models!r}, "
                    f"{args.batch}, {args.seconds}, {args.repeats})")
            proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                  text=True, timeout=900)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                raise RuntimeError(f"{label}: exit {proc.returncode}: {proc.stderr[-3000:]}")
            if proc.returncode != 0:  # measured, then failed on the way out: count it
                CRASHES.append(f"{label} (exit {proc.returncode} after its result)")
            for m, values in json.loads(line[0][7:]).items():
                rates[label][m].extend(values)
            print(label, {m: round(statistics.median(v)) for m, v in rates[label].items()},
                  flush=True)
    return {label: {m: dict(median=statistics.median(v), min=min(v), max=max(v))
                    for m, v in per.items()} for label, per in rates.items()}


# ---------------------------------------------------------------- model: N GPUs
def allreduce_s(param_bytes, gpus, link=NVLINK, network=NETWORK, per_node=8):
    """Seconds to all-reduce ``param_bytes`` of gradients over ``gpus`` GPUs (ring within a
    node over ``link``; hierarchical across nodes of ``per_node`` over ``network``)."""
    if gpus <= 1:
        return 0.0
    inside = min(gpus, per_node)
    t = (2 * (inside - 1) / inside * param_bytes / link["bandwidth"]
         + 2 * (inside - 1) * link["latency"])
    nodes = -(-gpus // per_node)
    if nodes > 1:
        t += (2 * (nodes - 1) / nodes * param_bytes / network["bandwidth"]
              + 2 * (nodes - 1) * network["latency"])
    return t


def model_rows(gpu_counts):
    from jaxcnn import summary
    from jaxcnn.models import get_model

    resnet20_flops = summary(get_model("resnet20"), (32, 32, 3)).flops
    rate = 3 * resnet20_flops * H200_RESNET20_IMAGES_PER_S
    rows = []
    for name, kw, in_shape in ZOO:
        s = summary(get_model(name, **kw), in_shape)
        grad_bytes = 4 * s.total_params
        compute = max(3 * s.flops * BATCH_PER_GPU / rate, H200_LENET5_STEP_S)
        row = dict(model=name, in_shape=in_shape, params=s.total_params, grad_mb=grad_bytes / 1e6,
                   gflops=s.flops / 1e9, compute_ms=compute * 1e3, gpus={})
        for n in gpu_counts:
            comm = allreduce_s(grad_bytes, n)
            eff = compute / (compute + comm)
            row["gpus"][n] = dict(allreduce_ms=comm * 1e3, efficiency=eff, speedup=n * eff)
        rows.append(row)
    return rows, rate


# ---------------------------------------------------------------- report
def machine():
    import jax
    return _meta.machine(jax=jax.__version__)


def markdown(measured, rows, rate, gpu_counts, meta, args):
    lines = ["# Data-parallel scaling: measured on host devices, modelled on N GPUs", "",
             f"Command: `{meta['command']}`", "",
             "## Measured: one CPU split into 1, 2 and 8 XLA host devices", "",
             f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores), jax "
             f"{meta['jax']}; load average {meta['load_start']:.2f} at start, "
             f"{meta['load_end']:.2f} at end. Train step (SGD with momentum), global batch "
             f"{args.batch}; images/s, median [min-max] over {args.rounds} rounds x "
             f"{args.repeats} repeats of {args.seconds} s, each configuration in its own "
             "process, rounds alternating the order.", "",
             "| devices | " + " | ".join(args.models) + " |",
             "|---|" + "---|" * len(args.models)]
    if not measured:
        lines.append("| (not measured in this file: it was written with --model-only) |"
                     + " |" * len(args.models))
    for label, per in measured.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{per[m]['median']:.0f} [{per[m]['min']:.0f}-{per[m]['max']:.0f}]"
            for m in args.models) + " |")
    if CRASHES:
        lines += ["", "Processes that failed after their result: " + ", ".join(CRASHES) + "."]
    lines += ["", "Little gain is possible here: host devices split the same 2 cores, so "
              "the arithmetic per step is the same while the sharded program adds the "
              "gradient all-reduce, smaller per-device convolutions and D programs "
              "competing for the cores, and it uses the lax convolutions (the native "
              "oneDNN ones run only in single-device programs): compare the mesh rows with "
              "'1, lax'. The D-device rows run with XLA:CPU thread pools of 2 D threads "
              "($PJRT_NPROC, set by import jaxcnn: jaxcnn/_host_threads.py; with one thread "
              "per core the unsynchronised timing loop stops in the all-reduce).", "",
              "## Modelled: the same step on N GPUs", "",
              f"Weak scaling, {BATCH_PER_GPU} examples per GPU. Compute per step "
              f"= max(3 x forward FLOPs (jaxcnn.summary) x {BATCH_PER_GPU} / R, "
              f"{H200_LENET5_STEP_S * 1e3:.2f} ms), with R = "
              f"{rate / 1e12:.1f} TFLOP/s: ResNet-20's measured train step on one H200 "
              f"({H200_RESNET20_IMAGES_PER_S:,.0f} images/s at batch 128, "
              "benchmarks/results/gpu/train_step.md) times 3 x its forward FLOPs, and the "
              "floor LeNet-5's measured step there (kernel launches and the update cost "
              "time that FLOPs do not show); larger "
              "models reach higher rates, which shortens compute and makes the all-reduce "
              "weigh more. All-reduce of the float32 gradients (4 bytes x params): ring "
              f"within a node of 8 over {NVLINK['name'].split(' (')[0]} at "
              f"{NVLINK['bandwidth'] / 1e9:.0f} GB/s bus bandwidth per GPU "
              f"({NVLINK['latency'] * 1e6:.0f} us per hop), hierarchical across nodes over "
              f"{NETWORK['name'].split(' between')[0]} ({NETWORK['bandwidth'] / 1e9:.1f} GB/s "
              f"per node, {NETWORK['latency'] * 1e6:.0f} us per hop). Efficiency E = compute "
              "/ (compute + all-reduce), no overlap (a lower bound); speed-up = N x E.", "",
              "| model | input | params | gradients (MB) | forward GFLOP/example | compute "
              "ms/step | " + " | ".join(f"all-reduce ms, N={n} | E, N={n}" for n in gpu_counts)
              + " |", "|---|---|---|---|---|---|" + "---|---|" * len(gpu_counts)]
    for r in rows:
        lines.append(
            f"| {r['model']} | {'x'.join(map(str, r['in_shape']))} | {r['params']:,} | "
            f"{r['grad_mb']:.2f} | {r['gflops']:.3g} | {r['compute_ms']:.2f} | " + " | ".join(
                f"{r['gpus'][n]['allreduce_ms']:.3f} | {r['gpus'][n]['efficiency']:.2f}"
                for n in gpu_counts) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lenet5,resnet20")
    ap.add_argument("--batch", type=int, default=128, help="global batch (measured part)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--gpus", default="8,16,64", help="GPU counts of the model")
    ap.add_argument("--model-only", action="store_true", help="skip the measured part")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args(argv)
    args.models = args.models.split(",")
    gpu_counts = [int(n) for n in args.gpus.split(",")]
    meta = machine()
    measured = {} if args.model_only else measure(args)
    rows, rate = model_rows(gpu_counts)
    meta["load_end"] = os.getloadavg()[0]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "scaling.json"), "w") as f:
        json.dump({"meta": meta, "args": vars(args), "measured": measured, "model": rows,
                   "rate_flops": rate}, f, indent=1)
    table = markdown(measured, rows, rate, gpu_counts, meta, args)
    with open(os.path.join(args.out, "scaling.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
