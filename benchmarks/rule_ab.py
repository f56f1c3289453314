"""Whole-train-step A/B of one rule-table decision: the model's jaxcnn step traced with the
full rule table and with every rule of ``--decision`` (of ``--choice`` only, if given)
removed, timed in alternation. ``--decision native.prefer_jit_avx2`` instead compares the
native library's kernel choice (:func:`jaxcnn.ops._native.set_prefer_jit_avx2` on and off).

Run: ``python benchmarks/rule_ab.py --model resnet20 --decision norm.batch``

The models and data are those of ``benchmarks/train_step.py``; prints the median and min
milliseconds per step of each variant over ``--rounds`` rounds of ``--steps`` steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

from jaxcnn import ops
from jaxcnn.ops import _lowering, _native

import train_step as bench


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20", choices=sorted(bench.SHAPES))
    parser.add_argument("--decision", required=True,
                        help="e.g. conv.input_once, norm.batch, conv.bias_grad, pool.max, "
                             "or native.prefer_jit_avx2")
    parser.add_argument("--choice", default=None,
                        help="remove only the rules of --decision with this choice (e.g. direct)")
    parser.add_argument("--infer", action="store_true", help="time inference, not training")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if args.decision == SWITCH:
        return switch_ab(args)
    drop = lambda r: (r.decision == args.decision  # noqa: E731
                      and args.choice in (None, r.choice))
    if not any(drop(r) for r in _lowering.RULES):
        parser.error(f"no rule decides {args.decision!r}"
                     + (f" as {args.choice!r}" if args.choice else ""))
    label = args.decision + (f"={args.choice}" if args.choice else "")
    variants = {"all rules": _lowering.RULES,
                f"without {label}": tuple(r for r in _lowering.RULES if not drop(r))}
    runs = {}
    for name, rules in variants.items():
        run = make_run(args)
        with ops.lowering("auto", rules=rules):  # traced (and compiled) here
            run(2)
        runs[name] = run
    report(args, {name: (lambda: None, run) for name, run in runs.items()},
           f"without {label}")


SWITCH = "native.prefer_jit_avx2"


def switch_ab(args):
    """The native library's jit:avx2 preference on and off (primitives are cached per
    setting, so both stay compiled; the setting is made before each timed run)."""
    if _native.set_prefer_jit_avx2(True) is None:
        raise SystemExit("the native library is not loaded")
    run = make_run(args)
    variants = {f"{SWITCH} on": (lambda: _native.set_prefer_jit_avx2(True), run),
                f"{SWITCH} off": (lambda: _native.set_prefer_jit_avx2(False), run)}
    for setting, fn in variants.values():
        setting()
        fn(2)
    report(args, variants, f"{SWITCH} off")


def make_run(args):
    """A fresh jaxcnn train (or, with ``--infer``, inference) runner for ``--model``."""
    batch = 32 if args.model == "cnn3d" else 128
    x, y = bench.make_data(args.model, batch)
    train, infer = bench.make_runner("jaxcnn", args.model, x, y)
    return infer if args.infer else train


def report(args, variants, base_name):
    """Times ``variants`` ({name: (setting, run)}) in alternating rounds and prints them."""
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (setting, run) in variants.items():
            setting()
            t0 = time.perf_counter()
            run(args.steps)
            times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
    base = statistics.median(times[base_name])
    for name, t in times.items():
        print(f"{args.model} {'infer' if args.infer else 'train'} {name:32s} median "
              f"{statistics.median(t):8.1f} ms/step  min {min(t):8.1f}  "
              f"speed-up {base / statistics.median(t):.2f}x")


if __name__ == "__main__":
    main()
