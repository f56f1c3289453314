"""jaxcnn's XLA option (YNNPACK on dots only) against XLA's defaults per dtype: grouped,
depthwise and plain convolutions, forward and both gradients, alternated in one process.

Run: ``python benchmarks/jit_dtypes.py [--rounds 7] [--dtypes float64,float32,float16,bfloat16]
[--out benchmarks/results]``

Each case is ``jax.value_and_grad(lambda x, w: sum(conv(x, w) ** 2), (0, 1))`` through
``jaxcnn.ops.conv`` (the lowering a user gets: oneDNN for float32 and bfloat16 where built,
``lax`` otherwise), compiled three times: ``jax.jit`` (XLA's defaults), ``jax.jit`` with
jaxcnn's CPU option ``xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT``
(``option``), and ``jaxcnn.jit`` (which applies the option or not by the arguments'
dtypes). Every round times every compilation of every case in turn; reported are
milliseconds per call (median, min, max over ``--rounds``) and the ratios of the medians to
``jax.jit`` (above 1: slower than XLA's defaults). Results go to
``<out>/jit_dtypes.{md,json}`` with the date, CPU, versions, the options, the load average
and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)  # float64 cases; every array's dtype is explicit

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxcnn  # noqa: E402
from jaxcnn import ops  # noqa: E402

import _meta  # noqa: E402

# name: x shape, kernel shape, stride, padding, groups
CASES = {
    "grouped 2-d (32x16x16x32, 3x3, groups 4)": ((32, 16, 16, 32), (3, 3, 8, 32), 1, 1, 4),
    "depthwise 2-d (32x16x16x32, 3x3)": ((32, 16, 16, 32), (3, 3, 1, 32), 1, 1, 32),
    "grouped 2-d strided (32x16x16x32, 3x3 s2, groups 8)": ((32, 16, 16, 32), (3, 3, 4, 32),
                                                            2, 1, 8),
    "grouped 1-d (32x256x32, 5, groups 4)": ((32, 256, 32), (5, 8, 32), 1, 2, 4),
    "depthwise 3-d (8x8x8x8x16, 3x3x3)": ((8, 8, 8, 8, 16), (3, 3, 3, 1, 16), 1, 1, 16),
    "plain 2-d (32x16x16x32, 3x3)": ((32, 16, 16, 32), (3, 3, 32, 32), 1, 1, 1),
}
OPTION = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
JITS = {"jax.jit": jax.jit, "option": lambda f: jax.jit(f, compiler_options=OPTION),
        "jaxcnn.jit": jaxcnn.jit}


def make(case, dtype):
    x_shape, w_shape, stride, padding, groups = case
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=x_shape), dtype)
    w = jnp.asarray(rng.normal(size=w_shape) * 0.1, dtype)

    def loss(x, w):
        y = ops.conv(x, w, stride=stride, padding=padding, groups=groups)
        return jnp.sum(jnp.square(y.astype(jnp.float32)))

    return jax.value_and_grad(loss, (0, 1)), (x, w)


def timed(fn, args, n):
    t0 = time.perf_counter()
    for _ in range(n):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / n * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float64,float32,float16,bfloat16")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.3, help="per variant per round")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    meta = _meta.machine(jax=jax.__version__, rounds=args.rounds,
                         uptime_start=_meta.load_text(),
                         jaxcnn_jit_options={d: jaxcnn.compiler_options(dtypes=(d,))
                                             for d in args.dtypes.split(",")})
    runs = {}
    for dtype in args.dtypes.split(","):
        for name, case in CASES.items():
            fn, operands = make(case, dtype)
            for jit_name, jit in JITS.items():
                compiled = jit(fn)
                jax.block_until_ready(compiled(*operands))
                n = max(1, int(args.seconds / max(timed(compiled, operands, 1) / 1e3, 1e-6)))
                runs[(dtype, name, jit_name)] = (compiled, operands, n)
            print(f"  compiled {dtype} {name}", flush=True)
    times = {key: [] for key in runs}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for key in order:
            compiled, operands, n = runs[key]
            times[key].append(timed(compiled, operands, n))
    meta["uptime_end"] = _meta.load_text()
    rows = []
    for (dtype, name, jit_name), t in times.items():
        rows.append({"dtype": dtype, "case": name, "jit": jit_name,
                     "median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t),
                     "all_ms": t})
    lines = [f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores), jax "
             f"{meta['jax']}; `uptime` at start: {meta['uptime_start']}; at end: "
             f"{meta['uptime_end']}. Command: `{meta['command']}`. jaxcnn.jit's options per "
             f"argument dtype: {meta['jaxcnn_jit_options']}. Forward + both gradients, ms per "
             f"call, median [min-max] of {args.rounds} rounds, alternated in one process.", "",
             "| dtype | case | jax.jit (XLA defaults) ms | option ms | jaxcnn.jit ms "
             "| option / jax.jit | jaxcnn.jit / jax.jit |", "|---|---|---|---|---|---|---|"]
    by = {(r["dtype"], r["case"], r["jit"]): r for r in rows}
    for dtype in args.dtypes.split(","):
        for name in CASES:
            r = [by[(dtype, name, j)] for j in JITS]
            cells = [f"{e['median_ms']:.2f} [{e['min_ms']:.2f}-{e['max_ms']:.2f}]" for e in r]
            lines.append(f"| {dtype} | {name} | {' | '.join(cells)} | "
                         f"{r[1]['median_ms'] / r[0]['median_ms']:.2f} | "
                         f"{r[2]['median_ms'] / r[0]['median_ms']:.2f} |")
    table = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "jit_dtypes.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    with open(os.path.join(args.out, "jit_dtypes.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
