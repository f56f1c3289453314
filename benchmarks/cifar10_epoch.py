"""CIFAR-10 time per epoch: jaxcnn's experiment against the same training in PyTorch eager.

Run: ``python benchmarks/cifar10_epoch.py --data ../shared/data/cifar10-jpeg.tar.gz
[--epochs 2] [--rounds 2] [--train-limit N] [--out benchmarks/results]``

Each framework runs in its own process, the processes alternated (jaxcnn, torch, jaxcnn,
torch, ...), as users run them:

* jaxcnn: ``experiments/image_classification.py --dataset cifar10`` with its defaults
  (ResNet-20, batch 128, SGD with Nesterov momentum 0.9 and weight decay 5e-4 on a
  one-cycle cosine schedule, reflect-padded 4-pixel crops and horizontal flips applied on
  the device to whole batches), ``--epochs`` epochs; the epoch times come from the run
  folder's ``metrics.jsonl``.
* PyTorch: :func:`torch_worker`, the same ResNet-20 (``benchmarks/train_step.py``'s
  ``torch_model``), the same data (loaded and standardised by the same jaxcnn code), the
  same optimiser, schedule and augmentation written with torch tensor ops on whole
  batches, channels-last tensors, PyTorch's default threads.

An epoch's time covers shuffling, batching, augmentation and the steps (the data are in
memory in both); the first epoch includes jaxcnn's compilation, so the later epochs are
the steady state. Decoding the JPEGs is reported apart (``load_s``). Results go to
``<out>/cifar10_epoch.md`` and ``.json`` with the date, CPU, versions, load and command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _meta

ROOT = Path(__file__).resolve().parents[1]


def torch_worker(data, epochs, train_limit, seed=0):
    """Trains ResNet-20 in PyTorch as the jaxcnn experiment does; returns the timings."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "experiments"))
    from image_classification import Config, load, resolve
    from train_step import torch_model

    t0 = time.perf_counter()
    cfg = resolve(Config(dataset="cifar10", data=data, epochs=epochs, seed=seed,
                         train_limit=train_limit))
    (x_train, y_train), _, _, _ = load(cfg)
    load_s = time.perf_counter() - t0
    torch.manual_seed(seed)
    x = torch.from_numpy(x_train).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(y_train.astype(np.int64))
    model = torch_model("resnet20").to(memory_format=torch.channels_last)
    steps_per_epoch = len(x) // cfg.batch_size
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    # optax.cosine_onecycle_schedule: warm-up over 30 %, lr / 25 at the start, lr / 25e4 at
    # the end, cosine in both phases
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.lr, total_steps=max(cfg.epochs * steps_per_epoch, 1), pct_start=0.3,
        anneal_strategy="cos", div_factor=25.0, final_div_factor=1e4, cycle_momentum=False)
    pad = 4
    idx = torch.arange(32)
    epoch_s = []
    for _ in range(cfg.epochs):
        t = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x))
        for s in range(steps_per_epoch):
            b = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            xb = torch.nn.functional.pad(x[b], (pad,) * 4, mode="reflect")
            n = len(b)
            oy, ox = torch.randint(0, 2 * pad + 1, (2, n))
            rows = (oy[:, None] + idx)[:, None, :, None].expand(n, 3, 32, 32 + 2 * pad)
            xb = torch.gather(xb, 2, rows)
            cols = (ox[:, None] + idx)[:, None, None, :].expand(n, 3, 32, 32)
            xb = torch.gather(xb, 3, cols)
            flip = torch.rand(n) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            xb = xb.contiguous(memory_format=torch.channels_last)
            loss = torch.nn.functional.cross_entropy(model(xb), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        epoch_s.append(time.perf_counter() - t)
    return {"load_s": load_s, "epoch_s": epoch_s, "images": steps_per_epoch * cfg.batch_size,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def run_jaxcnn(data, epochs, train_limit):
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, str(ROOT / "experiments" / "image_classification.py"),
               "--dataset", "cifar10", "--data", data, "--epochs", str(epochs),
               "--workdir", d, "--no-plots", "--no-progress", "--no-compile-cache"]
        if train_limit:
            cmd += ["--train-limit", str(train_limit)]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in Path(d, "metrics.jsonl").read_text().splitlines()]
    epochs_ = [r for r in rows if r.get("kind") == "epoch"]
    return {"epoch_s": [r["epoch_time"] for r in epochs_], "wall_s": wall,
            "images": round(epochs_[-1]["examples_per_s"] * epochs_[-1]["epoch_time"])}


def run_torch(data, epochs, train_limit):
    cmd = [sys.executable, __file__, "--worker", "--data", data, "--epochs", str(epochs)]
    if train_limit:
        cmd += ["--train-limit", str(train_limit)]
    t0 = time.perf_counter()
    # as PyTorch users run it: without jaxcnn's malloc parameters (jaxcnn/_host_memory.py),
    # which the worker's `import jaxcnn` (the data loader) would set
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT),
                              "JAXCNN_HOST_MALLOC": "0"}).stdout
    return {**json.loads(out.strip().splitlines()[-1]), "wall_s": time.perf_counter() - t0}


def markdown(meta, runs):
    steady = {lib: [s for r in runs[lib] for s in r["epoch_s"][1:]] for lib in runs}
    med = {lib: statistics.median(v) if v else float("nan") for lib, v in steady.items()}
    lines = [f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores), "
             f"jax {meta['jax']}, torch {meta['torch']}; load average {meta['load_start']:.1f} "
             f"at start, {meta['load_end']:.1f} at end.", "",
             f"Command: `{meta['command']}`", "",
             "| library | epoch times (s), per process | steady epoch (median of epochs "
             "after the first, s) | images / s | process wall (s) |", "|---|---|---|---|---|"]
    for lib, rs in runs.items():
        times = "; ".join(", ".join(f"{t:.1f}" for t in r["epoch_s"]) for r in rs)
        walls = ", ".join(f"{r['wall_s']:.0f}" for r in rs)
        lines.append(f"| {lib} | {times} | {med[lib]:.1f} | "
                     f"{rs[0]['images'] / med[lib]:.0f} | {walls} |")
    lines += ["", f"jaxcnn / PyTorch speed (steady epochs): **{med['torch'] / med['jaxcnn']:.2f}**"]
    return "\n".join(lines) + "\n", med


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="CIFAR-10 folder or .tar.gz (image folder)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="process pairs, alternated")
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(torch_worker(args.data, args.epochs, args.train_limit)))
        return None
    import jax
    import torch

    meta = _meta.machine(jax=jax.__version__, torch=torch.__version__,
                         command="python benchmarks/cifar10_epoch.py "
                         + " ".join(argv or sys.argv[1:]))
    runs = {"jaxcnn": [], "torch": []}
    for _ in range(args.rounds):
        runs["jaxcnn"].append(run_jaxcnn(args.data, args.epochs, args.train_limit))
        runs["torch"].append(run_torch(args.data, args.epochs, args.train_limit))
        print(json.dumps({k: v[-1] for k, v in runs.items()}), flush=True)
    meta["load_end"] = os.getloadavg()[0]
    text, med = markdown(meta, runs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cifar10_epoch.md").write_text("# CIFAR-10 ResNet-20, time per epoch\n\n" + text)
    (out / "cifar10_epoch.json").write_text(json.dumps({"meta": meta, "runs": runs,
                                                        "steady_epoch_s": med}, indent=1))
    print(text)
    return med


if __name__ == "__main__":
    main()
