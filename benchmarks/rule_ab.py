"""Whole-train-step A/B of one rule-table decision: the model's jaxcnn step traced with the
full rule table and with every rule of ``--decision`` (of ``--choice`` only, if given)
removed, timed in alternation.

Run: ``python benchmarks/rule_ab.py --model resnet20 --decision norm.batch``

The models and data are those of ``benchmarks/train_step.py``; prints the median and min
milliseconds per step of each variant over ``--rounds`` rounds of ``--steps`` steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

from jaxcnn import ops
from jaxcnn.ops import _lowering

import train_step as bench


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20", choices=sorted(bench.SHAPES))
    parser.add_argument("--decision", required=True,
                        help="e.g. conv.input_once, norm.batch, conv.bias_grad, pool.max")
    parser.add_argument("--choice", default=None,
                        help="remove only the rules of --decision with this choice (e.g. direct)")
    parser.add_argument("--infer", action="store_true", help="time inference, not training")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    drop = lambda r: (r.decision == args.decision  # noqa: E731
                      and args.choice in (None, r.choice))
    if not any(drop(r) for r in _lowering.RULES):
        parser.error(f"no rule decides {args.decision!r}"
                     + (f" as {args.choice!r}" if args.choice else ""))
    label = args.decision + (f"={args.choice}" if args.choice else "")
    batch = 32 if args.model == "cnn3d" else 128
    x, y = bench.make_data(args.model, batch)
    variants = {"all rules": _lowering.RULES,
                f"without {label}": tuple(r for r in _lowering.RULES if not drop(r))}
    runs = {}
    for name, rules in variants.items():
        train, infer = bench.make_runner("jaxcnn", args.model, x, y)
        run = infer if args.infer else train
        with ops.lowering("auto", rules=rules):  # traced (and compiled) here
            run(2)
        runs[name] = run
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, train in runs.items():
            t0 = time.perf_counter()
            train(args.steps)
            times[name].append((time.perf_counter() - t0) / args.steps * 1e3)
    base = statistics.median(times[f"without {label}"])
    for name, t in times.items():
        print(f"{args.model} {'infer' if args.infer else 'train'} {name:32s} median {statistics.median(t):8.1f} ms/step  "
              f"min {min(t):8.1f}  speed-up {base / statistics.median(t):.2f}x")


if __name__ == "__main__":
    main()
