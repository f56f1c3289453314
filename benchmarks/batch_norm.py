"""Whole train steps with each formulation of the training batch norm, alternated in one
process: the library's (``ops.batch_norm``'s custom JVP whose tangent is a linear
primitive transposing to the textbook gradient, its sums native), the same with the sums as
matrix products, a textbook custom VJP with matrix-product sums (which has no forward
mode), the custom JVP with its tangent as plain JAX operations that JAX transposes, and the
plain ``lax`` batch norm.

Run: ``python benchmarks/batch_norm.py [--models resnet20,cnn1d] [--rounds 9] [--steps 4]``

The models and data are those of ``benchmarks/train_step.py`` (batch 128, plain
``jax.jit``). Each round times ``--steps`` steps of every variant, in an order reversed
every other round; reported are the median and min milliseconds per step. Results go to
``<out>/batch_norm.{md,json}``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp

from jaxcnn import ops
from jaxcnn.ops import _lowering, _norm
from jaxcnn.ops._matmul import channel_sum

import _meta
import train_step as bench


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _custom_vjp(xs, scale, bias, eps, impl):
    """The textbook gradient as a custom VJP (no forward mode)."""
    return _custom_vjp_fwd(xs, scale, bias, eps, impl)[0]


def _custom_vjp_fwd(xs, scale, bias, eps, impl):
    out, (_, inv) = _norm._batch_norm_train_primal(xs, scale, bias, eps, impl)
    return out, (xs, out[1], inv, scale)


def _custom_vjp_bwd(eps, impl, res, cts):
    del eps, impl
    xs, m, inv, scale = res
    g = cts[0]
    c = xs.shape[-1]
    n = xs.size // c
    bshape = (1,) * (xs.ndim - 1) + (c,)
    xhat = (xs - m) * inv.reshape(bshape)
    dbias = channel_sum(g)
    dscale = channel_sum(g * xhat)
    dx = (scale * inv).reshape(bshape) * (
        g - (dbias.reshape(bshape) + xhat * dscale.reshape(bshape)) / n)
    return dx, dscale, dbias


_custom_vjp.defvjp(_custom_vjp_fwd, _custom_vjp_bwd)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _jvp_transposed_by_jax(xs, scale, bias, eps, impl):
    """The library's custom JVP with the tangent as plain JAX operations, which JAX
    transposes itself (no ``tangent_p``)."""
    return _norm._batch_norm_train_primal(xs, scale, bias, eps, impl)[0]


@_jvp_transposed_by_jax.defjvp
def _jvp_transposed_by_jax_rule(eps, impl, primals, tangents):
    xs, scale, bias = primals
    out, (m, inv) = _norm._batch_norm_train_primal(xs, scale, bias, eps, impl)
    dx = tangents[0]
    n = xs.size // xs.shape[-1]
    bshape = (1,) * (xs.ndim - 1) + (xs.shape[-1],)
    xc = xs - m.reshape(bshape)
    axes = tuple(range(xs.ndim - 1))
    dm = jnp.sum(dx, axis=axes) / n
    dv = jnp.sum(xc * dx, axis=axes) * (2.0 / n)
    return out, (_norm._tangent(*tangents, xs, m, inv, scale), dm.reshape(bshape),
                 dv.reshape(bshape))


VARIANTS = {"native": _norm._batch_norm_train, "jvp": _norm._batch_norm_train,
            "vjp": _custom_vjp, "jvp_by_jax": _jvp_transposed_by_jax, "lax": None}
LABELS = {"native": "custom JVP, native sums (the library's)",
          "jvp": "custom JVP, matrix-product sums", "vjp": "textbook custom VJP",
          "jvp_by_jax": "custom JVP transposed by JAX", "lax": "lax"}
NO_NORM_RULE = tuple(r for r in _lowering.RULES if r.decision != "norm.batch")
MATMUL_RULES = tuple(r for r in _lowering.RULES
                     if r.decision != "norm.batch" or r.choice == "matmul")


def bench_model(name, args):
    x, y = bench.make_data(name, args.batch)
    runs = {}
    names = args.variants.split(",")
    for variant in names:
        fn = VARIANTS[variant]
        train, _ = bench.make_runner("jaxcnn", name, x, y)
        original = _norm._batch_norm_train
        rules = (NO_NORM_RULE if fn is None else _lowering.RULES if variant == "native"
                 else MATMUL_RULES)
        try:
            _norm._batch_norm_train = fn or original
            with ops.lowering("auto", rules=rules):  # traced (and compiled) here
                train(2)
        finally:
            _norm._batch_norm_train = original
        runs[variant] = train
    times = {variant: [] for variant in names}
    for r in range(args.rounds):
        for variant in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            runs[variant](args.steps)
            times[variant].append((time.perf_counter() - t0) / args.steps * 1e3)
    res = {v: {"median_ms": statistics.median(t), "min_ms": min(t), "all_ms": t}
           for v, t in times.items()}
    for v, e in res.items():
        print(f"  {name:9s} {LABELS[v]:40s} median {e['median_ms']:7.1f} ms/step  min "
              f"{e['min_ms']:7.1f}", flush=True)
    return res


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--variants", default="native,jvp,vjp,jvp_by_jax,lax",
                        help="of: " + ", ".join(f"{k} ({v})" for k, v in LABELS.items()))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    meta = _meta.machine(jax=jax.__version__, rounds=args.rounds, steps=args.steps,
                         batch=args.batch, command="python benchmarks/batch_norm.py "
                         f"--models {args.models} --rounds {args.rounds} --steps {args.steps} "
                         f"--variants {args.variants}")
    bench.warm_up(["jaxcnn"])
    results = {name: bench_model(name, args) for name in args.models.split(",")}
    meta["load_end"] = os.getloadavg()[0]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "batch_norm.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    lines = [f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores), jax "
             f"{meta['jax']}, load average {meta['load_start']:.2f} at start, "
             f"{meta['load_end']:.2f} at end; "
             f"`{meta['command']}`. Train step (plain `jax.jit`, batch {args.batch}), "
             f"milliseconds per step, median and min of {args.rounds} alternating rounds of "
             f"{args.steps} steps.", "",
             "| model | training batch norm | median ms/step | min ms/step |", "|---|---|---|---|"]
    for name, res in results.items():
        for v, e in res.items():
            lines.append(f"| {name} | {LABELS[v]} | {e['median_ms']:.1f} | {e['min_ms']:.1f} |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "batch_norm.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
