"""Train-step and inference throughput: jaxcnn vs flax.linen vs PyTorch eager, side by side.

Run: ``python benchmarks/train_step.py [--rounds 7] [--models lenet5,resnet20,cnn1d,cnn3d]
[--with-lax] [--no-memory] [--device auto|cpu|gpu] [--out benchmarks/results]``

The same four architectures are written in jaxcnn, flax.linen and PyTorch (the PyTorch
column is skipped when torch is not installed):

* ``lenet5``: :func:`jaxcnn.models.lenet5` (28x28x1; conv 6@5x5 pad 2, max pool 2, conv
  16@5x5, max pool 2, dense 120, 84, 10, ReLU);
* ``resnet20``: :func:`jaxcnn.models.resnet20` (32x32x3, option-A shortcuts, batch norm);
* ``cnn1d``: length 1024, 1 channel: three blocks conv (32@7, 64@5, 64@3, ``same``
  padding, no bias) - batch norm - ReLU - max pool 2, then global average pooling and a
  dense layer to 10 classes;
* ``cnn3d``: VoxNet-like on 32^3x1: conv 32@5^3 stride 2 - ReLU - conv 32@3^3 - ReLU -
  max pool 2 - dense 128 - ReLU - dense 10 (batch ``--batch-3d``, 32 by default, as
  XLA's CPU 3-d convolutions make larger batches slow to measure).

All train with Adam (lr 1e-3) on softmax cross-entropy, batch ``--batch`` (128), random
data already in memory; PyTorch uses channels-last tensors and its default threads. Each
round runs every (library, model) column for about ``--seconds`` in turn, so machine load
affects them alike; reported are images/s (median, min, max over ``--rounds``), the
ratios jaxcnn/torch and jaxcnn/flax of the medians, the time to the first step (jit
compilation for JAX) and, unless ``--no-memory``, the peak resident memory of one process
running a few steps of that column alone. ``--with-lax`` adds a jaxcnn column with every
op forced to its plain ``lax`` lowering (``jaxcnn.ops.lowering("lax")``), the reference
for the fast paths. Results go to ``<out>/train_step.json`` and ``<out>/train_step.md``
(rewritten after each model, so an interrupted run keeps what it measured).

``--device gpu`` (``auto``: the GPU when JAX has one) runs the JAX columns on JAX's GPU and
PyTorch on CUDA (when ``torch.cuda.is_available()``; otherwise the torch column is
skipped), with ``torch.backends.cudnn.benchmark`` on and channels-last tensors as PyTorch's
performance guide recommends for convolutional networks; every timed loop ends with
``jax.block_until_ready`` / ``torch.cuda.synchronize``. The peak-memory column is CPU RSS
only (off on a GPU). ``benchmarks/gpu/run_bench.sh`` is the GPU run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxcnn as jc
from jaxcnn import ops
from jaxcnn.models import lenet5, resnet20
from jaxcnn.train import create_train_state, jit_train_step, make_train_step  # noqa: F401

try:
    import torch
except ImportError:  # the torch column is skipped
    torch = None

SHAPES = {"lenet5": (28, 28, 1), "resnet20": (32, 32, 3), "cnn1d": (1024, 1),
          "cnn3d": (32, 32, 32, 1)}
LR = 1e-3


# ----------------------------------------------------------------------------- jaxcnn

def jaxcnn_model(name):
    if name == "lenet5":
        return lenet5()
    if name == "resnet20":
        return resnet20()
    if name == "cnn1d":
        blocks = []
        for c, k in ((32, 7), (64, 5), (64, 3)):
            blocks += [jc.conv(c, k, padding=k // 2, use_bias=False), jc.batch_norm(), jc.relu(),
                       jc.max_pool(2)]
        return jc.serial(*blocks, jc.global_avg_pool(), jc.dense(10))
    return jc.serial(jc.conv(32, 5, stride=2), jc.relu(), jc.conv(32, 3), jc.relu(),
                     jc.max_pool(2), jc.flatten(), jc.dense(128), jc.relu(), jc.dense(10))


def jaxcnn_runner(name, x, y, lowering="auto", jit=jax.jit):
    """The README's way: the train step compiled with plain ``jax.jit`` (``jit``)."""
    model, opt = jaxcnn_model(name), optax.adam(LR)
    ts = create_train_state(model, opt, jax.random.key(0), x.shape[1:])
    step = jit(make_train_step(model, opt), donate_argnums=0)
    infer = jit(lambda p, s, x: model.apply(p, s, x, train=False)[0])
    batch, key = {"x": x, "y": y}, jax.random.key(1)
    box = [ts]

    def train(n):
        with ops.lowering(lowering):  # the lowering is chosen when the step is traced
            for _ in range(n):
                box[0], metrics = step(box[0], batch, key)
            jax.block_until_ready(metrics)

    def predict(n):
        with ops.lowering(lowering):
            for _ in range(n):
                out = infer(box[0].params, box[0].state, x)
            jax.block_until_ready(out)

    return train, predict


# ----------------------------------------------------------------------------- flax

def flax_runner(name, x, y, options=None):
    """``options``: XLA compiler options for flax's jits (``flax[xla]``: jaxcnn's)."""
    import flax.linen as nn

    class BasicBlock(nn.Module):
        width: int
        stride: int

        @nn.compact
        def __call__(self, x, train):
            bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9,  # noqa
                                      epsilon=1e-5)
            h = nn.Conv(self.width, (3, 3), self.stride, padding=1, use_bias=False)(x)
            h = nn.relu(bn()(h))
            h = bn()(nn.Conv(self.width, (3, 3), padding=1, use_bias=False)(h))
            if self.stride != 1 or x.shape[-1] != self.width:
                x = x[:, ::self.stride, ::self.stride, :]
                extra = self.width - x.shape[-1]
                x = jnp.pad(x, ((0, 0),) * 3 + ((extra // 2, extra - extra // 2),))
            return nn.relu(h + x)

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9,  # noqa
                                      epsilon=1e-5)
            if name == "lenet5":
                x = nn.max_pool(nn.relu(nn.Conv(6, (5, 5), padding=2)(x)), (2, 2), (2, 2))
                x = nn.max_pool(nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x)), (2, 2), (2, 2))
                x = x.reshape(x.shape[0], -1)
                x = nn.relu(nn.Dense(84)(nn.relu(nn.Dense(120)(x))))
            elif name == "resnet20":
                x = nn.relu(bn()(nn.Conv(16, (3, 3), padding=1, use_bias=False)(x)))
                for width, stride in ((16, 1), (32, 2), (64, 2)):
                    for i in range(3):
                        x = BasicBlock(width, stride if i == 0 else 1)(x, train)
                x = x.mean(axis=(1, 2))
            elif name == "cnn1d":
                for c, k in ((32, 7), (64, 5), (64, 3)):
                    x = nn.relu(bn()(nn.Conv(c, (k,), padding=k // 2, use_bias=False)(x)))
                    x = nn.max_pool(x, (2,), (2,))
                x = x.mean(axis=1)
            else:
                x = nn.relu(nn.Conv(32, (5, 5, 5), 2, padding="VALID")(x))
                x = nn.relu(nn.Conv(32, (3, 3, 3), padding="VALID")(x))
                x = nn.max_pool(x, (2, 2, 2), (2, 2, 2)).reshape(x.shape[0], -1)
                x = nn.relu(nn.Dense(128)(x))
            return nn.Dense(10)(x)

    net, opt = Net(), optax.adam(LR)
    variables = net.init(jax.random.key(0), x[:1], train=False)
    params, stats = variables["params"], variables.get("batch_stats", {})
    carry = [(params, stats, opt.init(params))]

    def predict_fn(params, stats, x):
        return net.apply({"params": params, "batch_stats": stats}, x, train=False)

    predict_fn = jax.jit(predict_fn, compiler_options=options)

    def step(carry, x, y):
        params, stats, opt_state = carry

        def loss_fn(p):
            logits, upd = net.apply({"params": p, "batch_stats": stats}, x, train=True,
                                    mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, upd.get("batch_stats", stats)

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), loss

    step = jax.jit(step, donate_argnums=0, compiler_options=options)

    def train(n):
        with jax.numpy_dtype_promotion("standard"):
            for _ in range(n):
                carry[0], loss = step(carry[0], x, y)
            jax.block_until_ready(loss)

    def predict(n):
        for _ in range(n):
            out = predict_fn(carry[0][0], carry[0][1], x)
        jax.block_until_ready(out)

    return train, predict


# ----------------------------------------------------------------------------- torch

def torch_model(name):
    nn = torch.nn
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                             nn.Linear(84, 10))
    if name == "cnn1d":
        layers, c_in = [], 1
        for c, k in ((32, 7), (64, 5), (64, 3)):
            layers += [nn.Conv1d(c_in, c, k, padding=k // 2, bias=False), nn.BatchNorm1d(c),
                       nn.ReLU(), nn.MaxPool1d(2)]
            c_in = c
        return nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(64, 10))
    if name == "cnn3d":
        return nn.Sequential(nn.Conv3d(1, 32, 5, stride=2), nn.ReLU(), nn.Conv3d(32, 32, 3),
                             nn.ReLU(), nn.MaxPool3d(2), nn.Flatten(), nn.Linear(32 * 6 ** 3, 128),
                             nn.ReLU(), nn.Linear(128, 10))

    class Block(nn.Module):
        def __init__(self, c_in, width, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(c_in, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width),
                nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
            self.stride, self.extra = stride, width - c_in

        def forward(self, x):
            s = x
            if self.stride != 1 or self.extra:
                s = torch.nn.functional.pad(x[:, :, ::self.stride, ::self.stride],
                                            (0, 0, 0, 0, self.extra // 2,
                                             self.extra - self.extra // 2))
            return torch.relu(self.body(x) + s)

    layers, c_in = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(c_in, width, stride if i == 0 else 1))
            c_in = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def torch_device(device):
    """``"cuda"`` for ``device == "gpu"`` when torch has CUDA, ``"cpu"`` for ``"cpu"``,
    ``None`` (skip the column) otherwise."""
    if device == "cpu":
        return "cpu"
    return "cuda" if torch.cuda.is_available() else None


def torch_runner(name, x, y, device="cpu"):
    torch.manual_seed(0)
    dev = torch_device(device)
    model = torch_model(name).to(dev)
    xt = torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy()).to(dev)
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(xt.ndim)
    if fmt is not None:
        model, xt = model.to(memory_format=fmt), xt.contiguous(memory_format=fmt)
    yt = torch.from_numpy(np.asarray(y).astype(np.int64)).to(dev)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train(n):
        model.train()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt), yt)
            loss.backward()
            opt.step()
        sync()

    def predict(n):
        model.eval()
        with torch.inference_mode():
            for _ in range(n):
                model(xt)
        sync()

    return train, predict


# ----------------------------------------------------------------------------- driver

def make_data(name, batch):
    """Random inputs and labels on JAX's default device."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch,) + SHAPES[name]).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    return jax.device_put(x), jax.device_put(y)


def select_device(device):
    """Make ``device`` (``"auto"``, ``"cpu"`` or ``"gpu"``) JAX's default device; returns
    ``"cpu"`` or ``"gpu"``."""
    if device == "auto":
        device = "gpu" if jax.default_backend() == "gpu" else "cpu"
    try:
        jax.config.update("jax_default_device", jax.devices(device)[0])
    except RuntimeError as err:
        raise SystemExit(f"--device {device}: JAX has no such device ({err})") from None
    return device


def warm_up(libs):
    """One tiny step per library, so that no column's first step pays the process's
    one-time start-up (the first ``create_train_state`` in a process takes ~15 s here)."""
    x, y = jnp.zeros((2, 8, 8, 1)), jnp.zeros((2,), jnp.int32)
    model, opt = jc.serial(jc.conv(2, 3), jc.flatten(), jc.dense(10)), optax.adam(LR)
    ts = create_train_state(model, opt, jax.random.key(0), x.shape[1:])
    jax.block_until_ready(jit_train_step(make_train_step(model, opt))(
        ts, {"x": x, "y": y}, jax.random.key(1)))
    if "flax" in libs:
        import flax.linen as nn
        nn.Dense(2).init(jax.random.key(0), x.reshape(2, -1))
    if "torch" in libs:
        dev = torch_device(DEVICE[0])
        torch.nn.Conv2d(1, 2, 3).to(dev)(torch.zeros(2, 1, 8, 8, device=dev)).sum().backward()


DEVICE = ["cpu"]  # set by main(): "cpu" or "gpu"


def make_runner(lib, name, x, y):
    if lib in ("jaxcnn", "jaxcnn[glibc]"):  # [glibc]: run with $JAXCNN_HOST_MALLOC=0
        return jaxcnn_runner(name, x, y)
    if lib == "jaxcnn[lax]":
        return jaxcnn_runner(name, x, y, lowering="lax")
    if lib == "jaxcnn[jaxcnn.jit]":
        return jaxcnn_runner(name, x, y, jit=jc.jit)
    if lib == "flax":
        return flax_runner(name, x, y)
    if lib == "flax[xla]":
        return flax_runner(name, x, y, jc.compiler_options() or None)
    return torch_runner(name, x, y, DEVICE[0])


def _vm(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_growth(fn):
    """Peak RSS growth (MB) while ``fn()`` runs: the kernel's high-water mark is reset
    first (``/proc/self/clear_refs``), so earlier peaks (imports) do not count."""
    base = _vm("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    fn()
    return _vm("VmHWM") - base


def peak_memory(lib, name, batch):
    """Peak RSS growth (MB) of a fresh process that builds one column and runs 3 train
    steps, over its RSS after imports and data (Linux only)."""
    code = ("import sys; sys.argv=['x']; import benchmarks.train_step as b; "
            "b.select_device('cpu'); "
            f"x, y = b.make_data({name!r}, {batch}); "
            f"print(b.peak_growth(lambda: b.make_runner({lib!r}, {name!r}, x, y)[0](3)))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=root, timeout=1800)
        return float(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError, OSError, subprocess.SubprocessError):
        return None


def calibrate(fn, seconds):
    t0 = time.perf_counter()
    fn(1)
    dt = time.perf_counter() - t0
    return max(1, int(seconds / max(dt, 1e-6)))


def bench_model(name, libs, args):
    batch = args.batch_3d if name == "cnn3d" else args.batch
    x, y = make_data(name, batch)
    runners, first, steps = {}, {}, {}
    for lib in libs:
        t0 = time.perf_counter()
        train, predict = make_runner(lib, name, x, y)
        train(1)
        first[lib] = time.perf_counter() - t0
        predict(1)
        runners[lib] = (train, predict)
        steps[lib] = (calibrate(train, args.seconds), calibrate(predict, args.seconds))
    rates = {lib: {"train": [], "infer": []} for lib in libs}
    for r in range(args.rounds):
        order = libs if r % 2 == 0 else libs[::-1]
        for lib in order:
            for kind, fn, n in (("train", runners[lib][0], steps[lib][0]),
                                ("infer", runners[lib][1], steps[lib][1])):
                t0 = time.perf_counter()
                fn(n)
                rates[lib][kind].append(n * batch / (time.perf_counter() - t0))
    res = {"batch": batch, "libs": {}}
    for lib in libs:
        entry = {"first_step_s": first[lib]}
        for kind in ("train", "infer"):
            v = rates[lib][kind]
            entry[kind] = {"median": statistics.median(v), "min": min(v), "max": max(v),
                           "all": v}
        if args.memory:
            entry["peak_rss_mb"] = peak_memory(lib, name, batch)
        res["libs"][lib] = entry
        print(f"  {name:9s} {lib:12s} train {entry['train']['median']:9.1f} img/s  "
              f"infer {entry['infer']['median']:9.1f} img/s  first step {first[lib]:6.1f} s"
              + (f"  peak +{entry['peak_rss_mb']:.0f} MB" if entry.get("peak_rss_mb") else ""),
              flush=True)
    return res


def ratio(res, kind, a, b):
    if a not in res["libs"] or b not in res["libs"]:
        return None
    return res["libs"][a][kind]["median"] / res["libs"][b][kind]["median"]


def markdown(results, meta):
    where = (f"{meta['gpu']} (host {meta['cpu']})" if meta.get("gpu") else
             f"{meta['cpu']} ({meta['cores']} cores)")
    lines = [f"Measured {meta['date']} on {where}, jax "
             f"{meta['jax']}, torch {meta['torch']}, load average at start "
             f"{meta['load_start']:.2f}, at end {meta['load_end']:.2f}; images/s, median "
             f"[min-max] of {meta['rounds']} alternating rounds.", "",
             "| model | batch | mode | library | img/s median [min-max] | vs torch | vs flax "
             "| first step (s) | peak RSS growth (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        for kind in ("train", "infer"):
            for lib, e in res["libs"].items():
                s = e[kind]
                vt = ratio(res, kind, lib, "torch")
                vf = ratio(res, kind, lib, "flax")
                mem = e.get("peak_rss_mb")
                lines.append(
                    f"| {name} | {res['batch']} | {kind} | {lib} | {s['median']:.1f} "
                    f"[{s['min']:.1f}-{s['max']:.1f}] | {'' if vt is None else f'{vt:.2f}'} | "
                    f"{'' if vf is None else f'{vf:.2f}'} | "
                    f"{e['first_step_s']:.1f} | {'' if mem is None else f'{mem:.0f}'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,resnet20,cnn1d,cnn3d")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batch-3d", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="per column per round")
    parser.add_argument("--with-lax", action="store_true")
    parser.add_argument("--with-flax-xla", action="store_true",
                        help="add flax compiled with jaxcnn's XLA options (jaxcnn.compiler_options)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-memory", dest="memory", action="store_false")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    DEVICE[0] = select_device(args.device)
    libs = (["jaxcnn"] + (["jaxcnn[lax]"] if args.with_lax else []) + ["flax"]
            + (["flax[xla]"] if args.with_flax_xla else []))
    if torch is not None and not args.no_torch and torch_device(DEVICE[0]) is not None:
        libs.append("torch")
    if DEVICE[0] == "gpu":
        args.memory = False  # the RSS column measures host memory only
        if torch is not None:
            torch.backends.cudnn.benchmark = True
    import _meta  # the folder of this script is on the path when it runs as one

    meta = _meta.machine(jax=jax.__version__, torch=getattr(torch, "__version__", None),
                         rounds=args.rounds, xla_flags=os.environ.get("XLA_FLAGS", ""),
                         lowering_env=os.environ.get("JAXCNN_LOWERING", ""),
                         compiler_options=jc.compiler_options(), device=DEVICE[0],
                         jax_device=str(jax.devices(DEVICE[0])[0].device_kind))
    if DEVICE[0] == "gpu":
        meta["gpu"] = meta["jax_device"]
        if "torch" in libs:
            meta["torch_device"] = torch.cuda.get_device_name(0)
    print(f"libraries {libs}; load average {meta['load_start']:.1f}", flush=True)
    warm_up(libs)
    results = {}
    for name in args.models.split(","):
        results[name] = bench_model(name, libs, args)
        table = write_results(args.out, results, meta)
    print(table)


def write_results(out, results, meta):
    """Write ``train_step.json`` and ``train_step.md`` under ``out``; returns the table."""
    meta["load_end"] = os.getloadavg()[0]
    meta["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "train_step.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    table = markdown(results, meta)
    with open(os.path.join(out, "train_step.md"), "w") as f:
        f.write(table)
    return table


if __name__ == "__main__":
    main()
