"""bfloat16 train steps: oneDNN's bfloat16 convolutions against the ``lax`` lowerings, with
float32 and PyTorch's bfloat16 autocast beside them, all alternated in one process.

Run: ``python benchmarks/bf16_step.py [--models resnet20,cnn3d] [--rounds 5]
[--seconds 1.5] [--passes] [--no-torch] [--out benchmarks/results]``

The models and data are those of ``benchmarks/train_step.py``. Columns:

* ``f32``: jaxcnn's step on float32 (the default rule table: oneDNN float32 convolutions);
* ``bf16 lax``: ``make_train_step(..., compute_dtype="bfloat16")`` with bfloat16
  convolutions on their ``lax``-side lowerings (the rule table without bfloat16 ``native``);
* ``bf16 native``: the same step with every bfloat16 convolution pass on oneDNN;
* with ``--passes``, ``bf16 native -P``: every pass native except ``P`` (forward,
  input_grad, kernel_grad), to decide the rule per pass;
* ``torch f32`` and ``torch bf16``: PyTorch eager, channels-last, the second under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (parameters and optimizer float32).

Every round runs each column for about ``--seconds``, in turn (the order reversed every
other round); reported are images/s (median, min, max over ``--rounds``). Results go to
``<out>/bf16_step.{md,json}`` with the date, CPU, its bfloat16 flags, versions, the load
average and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax
import numpy as np
import optax

from jaxcnn import ops
from jaxcnn.ops import _lowering, _native
from jaxcnn.train import create_train_state, make_train_step

import _meta
import train_step as bench

PASSES = {"forward": ("conv.forward", "conv.inference"), "input_grad": ("conv.input_grad",),
          "kernel_grad": ("conv.kernel_grad",)}


def rules(bf16_native_decisions):
    """The rule table with the ``native`` rules applying to bfloat16 for exactly the given
    decisions (float32 unchanged)."""
    out = []
    for r in _lowering.RULES:
        if r.choice == "native":
            def applies(f, decision=r.decision):
                if f["dtype"] == "bfloat16":
                    return decision in bf16_native_decisions and _lowering._native_runs(f)
                return _lowering._native_runs(f)
            r = r._replace(applies=applies, prefer=_lowering._always)
        out.append(r)
    return tuple(out)


def jaxcnn_runner(name, x, y, compute_dtype, table):
    model, opt = bench.jaxcnn_model(name), optax.adam(bench.LR)
    ts = create_train_state(model, opt, jax.random.key(0), x.shape[1:])
    step = jax.jit(make_train_step(model, opt, compute_dtype=compute_dtype), donate_argnums=0)
    batch, key = {"x": x, "y": y}, jax.random.key(1)
    box = [ts]
    with ops.lowering("auto", rules=table):  # traced and compiled here, with this table
        for _ in range(2):  # the second call sees the step's own output state
            box[0], metrics = step(box[0], batch, key)
        jax.block_until_ready(metrics)
        calls = step.lower(box[0], batch, key).as_text().count("@jaxcnn_dnnl_conv")

    def train(n):
        for _ in range(n):
            box[0], metrics = step(box[0], batch, key)
        jax.block_until_ready(metrics)

    train.native_calls = calls
    return train


def torch_runner(name, x, y, autocast):
    import torch
    torch.manual_seed(0)
    model = bench.torch_model(name)
    xt = torch.from_numpy(np.moveaxis(np.asarray(x), -1, 1).copy())
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(xt.ndim)
    if fmt is not None:
        model, xt = model.to(memory_format=fmt), xt.contiguous(memory_format=fmt)
    yt = torch.from_numpy(np.asarray(y).astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=bench.LR)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train(n):
        model.train()
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(model(xt), yt)
            loss.backward()
            opt.step()

    return train


def columns(args):
    cols = {"f32": ("jaxcnn", "float32", rules(())),
            "bf16 lax": ("jaxcnn", "bfloat16", rules(())),
            "bf16 native": ("jaxcnn", "bfloat16", rules(sum(PASSES.values(), ())))}
    if args.passes:
        for p in PASSES:
            keep = sum((d for q, d in PASSES.items() if q != p), ())
            cols[f"bf16 native -{p}"] = ("jaxcnn", "bfloat16", rules(keep))
    if not args.no_torch:
        cols["torch f32"] = ("torch", False, None)
        cols["torch bf16"] = ("torch", True, None)
    return cols


def bench_model(name, args):
    batch = args.batch_3d if name == "cnn3d" else args.batch
    x, y = bench.make_data(name, batch)
    runs, first, steps = {}, {}, {}
    for col, (lib, kind, table) in columns(args).items():
        t0 = time.perf_counter()
        if lib == "jaxcnn":
            runs[col] = jaxcnn_runner(name, x, y, kind, table)
        else:
            runs[col] = torch_runner(name, x, y, kind)
            runs[col](1)
        first[col] = time.perf_counter() - t0
        steps[col] = bench.calibrate(runs[col], args.seconds)
        print(f"  {name} {col}: first step {first[col]:.1f} s, oneDNN calls in the step: "
              f"{getattr(runs[col], 'native_calls', '-')}", flush=True)
    rates = {col: [] for col in runs}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for col in order:
            t0 = time.perf_counter()
            runs[col](steps[col])
            rates[col].append(steps[col] * batch / (time.perf_counter() - t0))
    res = {"batch": batch, "columns": {}}
    for col, v in rates.items():
        res["columns"][col] = {"median": statistics.median(v), "min": min(v), "max": max(v),
                               "all": v, "first_step_s": first[col],
                               "native_calls": getattr(runs[col], "native_calls", None)}
        print(f"  {name:9s} {col:26s} {statistics.median(v):8.1f} img/s "
              f"[{min(v):.1f}-{max(v):.1f}]", flush=True)
    return res


def markdown(results, meta):
    lines = [f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores; bfloat16 "
             f"flags: {meta['cpu_bf16_flags']}; oneDNN bfloat16: {meta['onednn_bf16']}), jax "
             f"{meta['jax']}, torch {meta['torch']}; `uptime` at start: {meta['uptime_start']}"
             f"; at end: {meta['uptime_end']}. Command: `{meta['command']}`. Train steps in "
             f"images/s, median [min-max] of {meta['rounds']} rounds, columns alternated in "
             "one process.", "",
             "| model | batch | column | oneDNN calls | img/s median [min-max] | vs bf16 lax "
             "| vs f32 | vs torch bf16 |", "|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        cols = res["columns"]
        for col, s in cols.items():
            def vs(other):
                return f"{s['median'] / cols[other]['median']:.2f}" if other in cols else ""
            calls = "" if s["native_calls"] is None else s["native_calls"]
            lines.append(f"| {name} | {res['batch']} | {col} | {calls} | {s['median']:.1f} "
                         f"[{s['min']:.1f}-{s['max']:.1f}] | {vs('bf16 lax')} | {vs('f32')} "
                         f"| {vs('torch bf16')} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,cnn3d")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batch-3d", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="per column per round")
    parser.add_argument("--passes", action="store_true",
                        help="add one column per pass with that pass on lax")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if not _native.bf16_available():
        raise SystemExit("oneDNN's bfloat16 convolutions are not available here "
                         "(no native library, or no bfloat16 instructions)")
    torch_version = None
    if not args.no_torch:
        try:
            import torch
            torch_version = torch.__version__
        except ImportError:
            args.no_torch = True
    flags = _native._cpu_flags()
    meta = _meta.machine(
        jax=jax.__version__, torch=torch_version, rounds=args.rounds,
        cpu_bf16_flags=" ".join(sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"}))
        or "none", onednn_bf16=_native.bf16_available(), uptime_start=_meta.load_text())
    results = {}
    for name in args.models.split(","):
        results[name] = bench_model(name, args)
        meta["uptime_end"] = _meta.load_text()
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bf16_step.json"), "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
        with open(os.path.join(args.out, "bf16_step.md"), "w") as f:
            f.write(markdown(results, meta))
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
