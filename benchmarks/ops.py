"""Micro-benchmarks of the alternative lowerings of ``jaxcnn.ops`` (forward + backward).

Run: ``python benchmarks/ops.py [--rounds 7] [--only conv|pool] [--passes [--torch]]
[--json out.json]``

For each case (the layers of the four benchmark models of ``benchmarks/train_step.py``)
every candidate lowering is jitted as ``value_and_grad`` of ``sum(y * ct)`` with respect
to the kernel (first layers, whose input is data) or to input and kernel, and the
candidates are timed in alternation, round by round, in one process, so that machine
load affects them alike. ``--passes`` times each pass of a convolution alone instead
(forward only, kernel gradient only, input gradient only; one row per pass and case), the
data behind each decision of the rule table; with ``--torch`` (when PyTorch is installed)
each pass is also timed in PyTorch (channels-last, ``aten.convolution_backward`` for one
gradient at a time), the peer whose kernels the train-step goal is measured against.
Prints milliseconds per call (median of ``--rounds``) and each lowering's speed-up over
``lax``, and marks the one ``auto`` picks
(the rule table of ``jaxcnn/ops/_lowering.py``; in the fwd+bwd table its plan is also timed
as ``auto`` when it is none of the named plans). ``benchmarks/README.md`` describes each
lowering and when ``auto`` uses it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

try:
    import torch
except ImportError:  # --torch is refused
    torch = None

from jaxcnn import jit
from jaxcnn.ops import _conv_passes, _fast_pool, _lowering
from jaxcnn.ops._fast_conv import ConvPlan
from jaxcnn.ops._pool import _reduce

def planned_conv(x, w, plan, stride, pads, dilation):
    return _conv_passes.planned_conv(x, w, None, plan, stride, pads, dilation)


B = 128
# (name, x shape, kernel size, C_out, stride, padding, grad wrt x?)
CONV_CASES = [
    ("lenet conv1 1->6 5x5", (B, 28, 28, 1), (5, 5), 6, 1, 2, False),
    ("lenet conv2 6->16 5x5", (B, 14, 14, 6), (5, 5), 16, 1, 0, True),
    ("resnet 3->16 3x3", (B, 32, 32, 3), (3, 3), 16, 1, 1, False),
    ("resnet 16->16 3x3", (B, 32, 32, 16), (3, 3), 16, 1, 1, True),
    ("resnet 16->32 3x3 s2", (B, 32, 32, 16), (3, 3), 32, 2, 1, True),
    ("resnet 32->32 3x3", (B, 16, 16, 32), (3, 3), 32, 1, 1, True),
    ("resnet 32->64 3x3 s2", (B, 16, 16, 32), (3, 3), 64, 2, 1, True),
    ("resnet 64->64 3x3", (B, 8, 8, 64), (3, 3), 64, 1, 1, True),
    ("1d 1->32 k7", (B, 1024, 1), (7,), 32, 1, 3, False),
    ("1d 32->64 k5", (B, 512, 32), (5,), 64, 1, 2, True),
    ("1d 64->64 k3", (B, 256, 64), (3,), 64, 1, 1, True),
    ("voxnet 1->32 5^3 s2 (B=32)", (32, 32, 32, 32, 1), (5, 5, 5), 32, 2, 0, False),
    ("voxnet 32->32 3^3 (B=32)", (32, 14, 14, 14, 32), (3, 3, 3), 32, 1, 0, True),
]
CONV_PLANS = {
    "lax": ConvPlan(),
    "patches": ConvPlan("patches", "interior", "patches"),
    "fwd patches": ConvPlan("patches", "lax", "lax"),
    "dW patches": ConvPlan("lax", "lax", "patches"),
    "dX interior": ConvPlan("lax", "interior", "lax"),
    "patches+dX ip": ConvPlan("patches", "interior_patches", "patches"),
    "patches+dX ad": ConvPlan("patches", "patches", "patches"),
    "fold": ConvPlan("fold", "fold", "fold"),
    "fold+patches dW": ConvPlan("fold", "fold", "patches"),
    "lax+dX int+dW patches": ConvPlan("lax", "interior", "patches"),
    "fold+dX int+dW patches": ConvPlan("fold", "interior", "patches"),
    "direct+dW patches": ConvPlan("direct", "lax", "patches"),
    "native": ConvPlan("native", "native", "native"),
}
# The lowerings of each pass timed alone by --passes.
PASSES = {"forward": ("lax", "native", "patches", "fold", "fold_out", "direct"),
          "kernel_grad": ("lax", "native", "patches", "fold", "fold_out"),
          "input_grad": ("lax", "native", "interior", "patches", "fold", "fold_out")}
# (name, x shape, window)
POOL_CASES = [
    ("lenet pool1", (B, 28, 28, 6), (2, 2)),
    ("lenet pool2", (B, 10, 10, 16), (2, 2)),
    ("cnn pool 32x32x64", (B, 32, 32, 64), (2, 2)),
    ("1d pool", (B, 1024, 32), (2,)),
    ("voxnet pool (B=32)", (32, 12, 12, 12, 32), (2, 2, 2)),
]


def time_alternating(fns, args, rounds, min_time=0.2):
    """Median, min and max seconds per call of each of ``fns``, timed round-robin."""
    for f in fns.values():
        jax.block_until_ready(f(*args))
    number = {}
    for name, f in fns.items():
        t0, k = time.perf_counter(), 0
        while time.perf_counter() - t0 < min_time / 4 or k < 1:
            jax.block_until_ready(f(*args))
            k += 1
        number[name] = max(1, int(k * min_time / (4 * (time.perf_counter() - t0)) + 0.5))
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(number[name]):
                out = f(*args)
            jax.block_until_ready(out)
            times[name].append((time.perf_counter() - t0) / number[name])
    return {name: (statistics.median(t), min(t), max(t)) for name, t in times.items()}


def conv_case(shape, ksize, c_out, stride, padding, dtype):
    """Seeded input and kernel of one benchmark case, with its stride, padding, dilation."""
    n = len(ksize)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=shape), dtype)
    w = jnp.asarray(rng.normal(size=ksize + (shape[-1], c_out)) * 0.1, dtype)
    return rng, x, w, (stride,) * n, ((padding, padding),) * n, (1,) * n


def conv_fns(shape, ksize, c_out, stride, padding, grad_x, dtype):
    n = len(ksize)
    _, x, w, st, pads, dl = conv_case(shape, ksize, c_out, stride, padding, dtype)
    argnums = (0, 1) if grad_x else 1
    fns = {}
    for name, plan in CONV_PLANS.items():
        if stride == 1 and plan.input_grad == "interior" and plan.forward == "lax":
            continue
        if any(p.startswith("fold") for p in plan[:3]) and n != 3:
            continue
        if plan.forward == "direct" and np.prod(ksize) * shape[-1] > 64:
            continue
        if not grad_x and plan.input_grad != "lax" and plan != CONV_PLANS["patches"]:
            continue
        if not grad_x and plan.input_grad == "interior" and plan.forward == "lax":
            continue

        def loss(x, w, plan=plan):
            y = planned_conv(x, w, plan, st, pads, dl)
            return jnp.sum(y * y)

        fns[name] = jit(jax.value_and_grad(loss, argnums))
    auto = _lowering.conv_plan(x.shape, w.shape, st, pads, dl, 1, dtype)
    if plan_name(auto) not in fns:  # the rule table's own plan is always timed

        def loss(x, w, plan=auto):
            return jnp.sum(planned_conv(x, w, plan, st, pads, dl) ** 2)

        fns["auto"] = jit(jax.value_and_grad(loss, argnums))
    return fns, (x, w), auto


def pass_fns(shape, ksize, c_out, stride, padding, grad_x, dtype):
    """{pass: {lowering: jitted f(x, w, g)}} timing each pass of one case alone."""
    n = len(ksize)
    rng, x, w, st, pads, dl = conv_case(shape, ksize, c_out, stride, padding, dtype)
    y = planned_conv(x, w, ConvPlan(), st, pads, dl)
    g = jnp.asarray(rng.normal(size=y.shape), dtype)
    out = {}
    for pass_, names in PASSES.items():
        if pass_ == "input_grad" and not grad_x:
            continue
        fns = {}
        for name in names:
            if (name.startswith("fold") and n != 3) or (name == "interior" and stride == 1):
                continue
            if name == "direct" and np.prod(ksize) * shape[-1] > 64:  # K * C_in terms
                continue
            plan = ConvPlan(**{pass_: name}, inference=name)
            if pass_ == "forward":
                f = lambda x, w, g, plan=plan: planned_conv(x, w, plan, st, pads, dl)
            else:
                i = 0 if pass_ == "input_grad" else 1
                cfg = _conv_passes.ConvConfig(st, pads, dl, 1, plan)
                f = ((lambda x, w, g, cfg=cfg: _conv_passes.input_grad(g, w, cfg, x.shape[1:-1]))
                     if i == 0 else
                     (lambda x, w, g, cfg=cfg: _conv_passes.kernel_grad(x, g, cfg, w.shape[:-2])))
            fns[name] = jit(f)
        out[pass_] = fns
    auto = _lowering.conv_plan(x.shape, w.shape, st, pads, dl, 1, dtype)
    return out, (x, w, g), auto


def torch_pass_fns(x, w, g, stride, padding):
    """{pass: f()} of the same convolution in PyTorch: channels-last tensors (NCW for
    1-d, which has no channels-last format), each gradient alone by
    ``aten.convolution_backward`` with a one-hot output mask."""
    n = x.ndim - 2
    def to_t(a):  # channels-last array -> torch (N, C, *spatial)
        return torch.from_numpy(np.moveaxis(np.asarray(a, np.float32), -1, 1).copy())

    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.ndim)
    xt, gt = to_t(x), to_t(g)
    if fmt is not None:
        xt, gt = xt.contiguous(memory_format=fmt), gt.contiguous(memory_format=fmt)
    wt = torch.from_numpy(np.moveaxis(np.asarray(w, np.float32), (-2, -1), (1, 0)).copy())
    if fmt is not None:
        wt = wt.contiguous(memory_format=fmt)
    st, pad, dl = [stride] * n, [padding] * n, [1] * n
    conv = getattr(torch.nn.functional, f"conv{n}d")

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(
            gt, xt, wt, None, st, pad, dl, False, [0] * n, 1, mask)[mask.index(True)]

    with torch.no_grad():
        ref = conv(xt, wt, stride=stride, padding=padding)
    if tuple(ref.shape) != (g.shape[0], g.shape[-1]) + tuple(g.shape[1:-1]):
        raise AssertionError(f"torch output {tuple(ref.shape)} differs from {g.shape}")
    return {"forward": lambda: conv(xt, wt, stride=stride, padding=padding),
            "input_grad": backward([True, False, False]),
            "kernel_grad": backward([False, True, False])}


def pool_fns(shape, window, dtype):
    n = len(window)
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), dtype)
    pads, ones = ((0, 0),) * n, (1,) * n
    lax_max = lambda x: _reduce(x, -np.inf, jax.lax.max, window, window, pads, ones)
    fast_max = lambda x: _fast_pool.reshape_max(x, window, window, pads, ones)
    fns = {name: jit(jax.value_and_grad(lambda x, f=f: jnp.sum(f(x) ** 2)))
           for name, f in (("lax", lax_max), ("reshape", fast_max))}
    auto = _lowering.pool_lowering("max", x.shape, window, window, pads, ones, dtype)
    return fns, (x,), "lax" if auto is None else "reshape"


def plan_name(plan):
    """The name of ``plan`` in CONV_PLANS (the inference lowering aside), else its tuple."""
    for name, p in CONV_PLANS.items():
        if p[:3] == plan[:3]:
            return name
    return str(tuple(plan))


def report(case, res, auto):
    """One line: median/min ms per lowering, speed-up over lax, the lowering auto picks."""
    base = res["lax"][0]
    best = res["lax"][1]
    cells = "  ".join(f"{k} {v[0] * 1e3:.1f}/{v[1] * 1e3:.1f} ms "
                      f"({base / v[0]:.2f}x/{best / v[1]:.2f}x)" for k, v in res.items())
    print(f"{case:28s} {cells}  auto={auto}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", choices=("conv", "pool"), default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--match", default="", help="only cases whose name contains this")
    parser.add_argument("--passes", action="store_true",
                        help="time forward, kernel and input gradient of each conv alone")
    parser.add_argument("--torch", action="store_true",
                        help="with --passes: also time each pass in PyTorch (CPU)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.torch and (torch is None or not args.passes):
        parser.error("--torch needs --passes and an installed torch")
    dtype = jnp.dtype(args.dtype)
    results = []
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, dtype {dtype.name}, "
          f"ms per value_and_grad call, median/min of {args.rounds} alternating rounds "
          "(speed-up over lax of the median/of the min)")
    if args.only in (None, "pool"):
        for case, shape, window in POOL_CASES:
            if args.match in case:
                fns, fargs, auto = pool_fns(shape, window, dtype)
                res = time_alternating(fns, fargs, args.rounds)
                report(case, res, auto)
                results.append({"op": "max_pool", "case": case, "auto": auto, "times": res})
    if args.only in (None, "conv"):
        for case, *spec in CONV_CASES:
            if args.match in case and args.passes:
                per_pass, fargs, auto = pass_fns(*spec, dtype)
                peer = torch_pass_fns(*fargs, spec[3], spec[4]) if args.torch else {}
                for pass_, fns in per_pass.items():
                    if pass_ in peer:  # called with no arguments; torch runs synchronously
                        fns = dict(fns, torch=lambda *a, f=peer[pass_]: f())
                    res = time_alternating(fns, fargs, args.rounds)
                    infer = auto.inference or auto.forward
                    pick = getattr(auto, pass_) + (f", inference={infer}"
                                                   if pass_ == "forward" else "")
                    report(f"{case} {pass_}", res, pick)
                    results.append({"op": "conv." + pass_, "case": case, "auto": pick,
                                    "times": res})
            elif args.match in case:
                fns, fargs, auto = conv_fns(*spec, dtype)
                res = time_alternating(fns, fargs, args.rounds)
                report(case, res, plan_name(auto))
                results.append({"op": "conv", "case": case, "auto": plan_name(auto),
                                "times": res})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"jax": jax.__version__, "dtype": dtype.name, "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
