"""What a network does to shapes, and what each output sees: from shapes alone.

:func:`summary` traces ``apply`` once to a jaxpr (``jax.make_jaxpr`` on abstract
values: no data, no compile). Combinators run each child under a named scope, so every
primitive carries its layer path; per-layer FLOPs are counted from the primitives and
receptive fields are propagated through them, so merges (residual, concat) and layers
you write yourself are covered without any per-layer bookkeeping.

Receptive field conventions (Araujo et al. 2019, "Computing receptive fields of CNNs"):
``r`` is the number of input positions one output sees along an axis, ``jump`` the
distance between neighbouring outputs in input positions, ``start`` the input
coordinate of the centre of the first output's window (pixel centres at 0.5, 1.5, ...).
Through a window of size :math:`k`, stride :math:`s`, dilation :math:`d`, low padding
:math:`p`:

.. math::
   r' = r + d (k - 1) j, \\quad j' = s j, \\quad start' = start + (d (k - 1) / 2 - p) j

A merge takes the largest receptive field of its inputs; a reduction or flatten over a
spatial axis of size :math:`L` widens it to :math:`r + (L - 1) j`. Transposed convolutions
(input dilation :math:`l`) use :math:`j / l` as the step.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Literal
import numpy as np

from jaxcnn._window import receptive_step
from jaxcnn.layers._base import check_model, check_shape, is_multi
from jaxcnn.layers._scope import capture, trace_paths
from jaxcnn.ops import lowering

_ELEMENTWISE_FLOP = {"add", "sub", "mul", "div", "max", "min", "neg", "abs", "sign", "select_n",
                     "exp", "log", "tanh", "logistic", "sqrt", "rsqrt", "pow", "integer_pow",
                     "erf", "erfc", "exp2", "log1p", "expm1", "square"}
_REDUCE = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
           "reduce_and", "reduce_or"}
_WINDOW = {"reduce_window_sum", "reduce_window_max", "reduce_window_min", "reduce_window"}


# ---------------------------------------------------------------- receptive fields
@dataclasses.dataclass
class _Geo:
    axes: dict  # array axis -> spatial dim of the network input
    dims: dict  # spatial dim -> (r, jump, start)


def _merge(geos, ndim):
    geos = [g for g in geos if g is not None]
    if not geos:
        return None
    dims = {}
    for g in geos:
        for d, v in g.dims.items():
            if d not in dims or v[0] > dims[d][0]:
                dims[d] = v
    axes = next((dict(g.axes) for g in geos if g.axes and max(g.axes) < ndim), {})
    return _Geo(axes, dims)


def _collapse(geo, axes, shape):
    """Reduces ``axes`` (of sizes in ``shape``): each output then sees the whole axis."""
    dims = dict(geo.dims)
    for a in axes:
        if a in geo.axes:
            d = geo.axes[a]
            r, j, start = dims[d]
            dims[d] = (r + (shape[a] - 1) * j, j * shape[a], start + (shape[a] - 1) * j / 2)
    return dims


def _window(geo, axes_params):
    """``axes_params``: {array axis: (k, s, lo, rhs_dilation, lhs_dilation)}."""
    dims = dict(geo.dims)
    for a, (k, s, lo, d, ld) in axes_params.items():
        if a in geo.axes:
            r, j, start = dims[geo.axes[a]]
            dims[geo.axes[a]] = receptive_step((r, j / ld, start), k, s, lo, d)
    return dims


def _reshape_axes(geo, in_shape, out_shape):
    """Keeps axes that survive a reshape unchanged; collapses the others."""
    def bounds(shape):
        acc, out = 1, []
        for n in shape:
            out.append((acc, acc * n))
            acc *= n
        return out
    ib, ob = bounds(in_shape), bounds(out_shape)
    keep = {a: ob.index(ib[a]) for a in geo.axes if ib[a] in ob}
    dims = _collapse(geo, [a for a in geo.axes if a not in keep], in_shape)
    return _Geo({keep[a]: geo.axes[a] for a in keep}, dims)


def _sub_jaxpr(eqn):
    for name in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        if name in eqn.params:
            j = eqn.params[name]
            return j.jaxpr if hasattr(j, "jaxpr") else j
    return None


def _propagate(eqn, geos):  # noqa: C901 - one case per primitive family
    name, p = eqn.primitive.name, eqn.params
    ins = [v.aval.shape if hasattr(v, "aval") else () for v in eqn.invars]
    out = eqn.outvars[0].aval.shape if eqn.outvars else ()
    g = geos[0] if geos else None
    if name == "conv_general_dilated":
        if g is None:
            return [None]
        lhs, rhs, outs = p["dimension_numbers"]
        spec = {lhs[2 + i]: (ins[1][rhs[2 + i]], p["window_strides"][i], p["padding"][i][0],
                             p["rhs_dilation"][i], p["lhs_dilation"][i])
                for i in range(len(lhs) - 2)}
        dims = _window(g, spec)
        return [_Geo({outs[2 + i]: g.axes[lhs[2 + i]] for i in range(len(lhs) - 2)
                      if lhs[2 + i] in g.axes}, dims)]
    if name in _WINDOW:
        if g is None:
            return [None] * len(eqn.outvars)
        spec = {a: (p["window_dimensions"][a], p["window_strides"][a], p["padding"][a][0],
                    p["window_dilation"][a], p["base_dilation"][a]) for a in range(len(out))}
        return [_Geo(dict(g.axes), _window(g, spec))] * len(eqn.outvars)
    if name == "pad":
        if g is None:
            return [None]
        spec = {a: (1, 1, lo, 1, interior + 1) for a, (lo, hi, interior) in
                enumerate(p["padding_config"])}
        return [_Geo(dict(g.axes), _window(g, spec))]
    if name in _REDUCE:
        if g is None:
            return [None]
        axes = tuple(p["axes"])
        dims = _collapse(g, axes, ins[0])
        kept = [a for a in range(len(ins[0])) if a not in axes]
        return [_Geo({kept.index(a): d for a, d in g.axes.items() if a in kept}, dims)]
    if name == "reshape":
        return [None if g is None else _reshape_axes(g, ins[0], out)]
    if name == "transpose":
        perm = p["permutation"]
        return [None if g is None else _Geo({perm.index(a): d for a, d in g.axes.items()}, g.dims)]
    if name == "broadcast_in_dim":
        bd = p["broadcast_dimensions"]
        return [None if g is None else _Geo({bd[a]: d for a, d in g.axes.items()}, g.dims)]
    if name == "squeeze":
        if g is None:
            return [None]
        kept = [a for a in range(len(ins[0])) if a not in p["dimensions"]]
        return [_Geo({kept.index(a): d for a, d in g.axes.items() if a in kept},
                     _collapse(g, p["dimensions"], ins[0]))]
    if name == "dot_general":
        (lc, rc), (lb, rb) = p["dimension_numbers"]
        result = []
        for side, (geo, shape, contract, batch) in enumerate(
                [(geos[0], ins[0], lc, lb), (geos[1], ins[1], rc, rb)]):
            if geo is None:
                continue
            free = [a for a in range(len(shape)) if a not in contract and a not in batch]
            offset = len(batch) + (0 if side == 0 else len(ins[0]) - len(lc) - len(lb))
            axes = {}
            for a, d in geo.axes.items():
                if a in batch:
                    axes[list(batch).index(a)] = d
                elif a in free:
                    axes[offset + free.index(a)] = d
            result.append(_Geo(axes, _collapse(geo, contract, shape)))
        return [_merge(result, len(out))]
    sub = _sub_jaxpr(eqn)
    if sub is not None:
        return _walk(sub, geos)
    # Elementwise and everything else: same-rank inputs pass through; others collapse.
    merged = []
    for geo, shape in zip(geos, ins):
        if geo is None:
            continue
        if len(shape) == len(out):
            merged.append(geo)
        else:
            merged.append(_Geo({}, _collapse(geo, list(geo.axes), shape)))
    return [_merge(merged, len(out))] * len(eqn.outvars)


def _walk(jaxpr, in_geos, on_eqn=None):
    """Propagates geometry through ``jaxpr``; ``on_eqn(eqn, out_geos)`` sees each equation."""
    env = dict(zip(jaxpr.invars, in_geos))
    for eqn in jaxpr.eqns:
        geos = [None if isinstance(v, Literal) else env.get(v) for v in eqn.invars]
        outs = _propagate(eqn, geos)
        env.update(zip(eqn.outvars, outs))
        if on_eqn is not None:
            on_eqn(eqn, outs)
    return [env.get(v) if not isinstance(v, Literal) else None for v in jaxpr.outvars]


# ---------------------------------------------------------------- FLOPs
def _flops(eqn) -> int:
    name = eqn.primitive.name
    out = eqn.outvars[0].aval.shape if eqn.outvars else ()
    n_out = math.prod(out)
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval.shape
        rhs_spec = eqn.params["dimension_numbers"][1]
        k = math.prod(rhs[a] for a in rhs_spec[2:]) * rhs[rhs_spec[1]]
        return 2 * n_out * k
    if name == "dot_general":
        (lc, _), _ = eqn.params["dimension_numbers"]
        shape = eqn.invars[0].aval.shape
        return 2 * n_out * math.prod(shape[a] for a in lc)
    if name in _WINDOW:
        return n_out * math.prod(eqn.params["window_dimensions"])
    if name in _REDUCE:
        return math.prod(eqn.invars[0].aval.shape)
    if name in _ELEMENTWISE_FLOP:
        return n_out
    return 0


def _all_eqns(jaxpr, prefix=""):
    """(path, eqn) for every primitive, descending into sub-jaxprs (paths are relative there)."""
    for eqn in jaxpr.eqns:
        path = "/".join(p for p in (prefix, str(eqn.source_info.name_stack)) if p)
        sub = _sub_jaxpr(eqn)
        if sub is not None:
            yield from _all_eqns(sub, path)
        else:
            yield path, eqn


# ---------------------------------------------------------------- the summary
@dataclasses.dataclass(frozen=True)
class Row:
    """One layer: its path, kind, output shape (no batch) and per-example costs."""
    path: str
    kind: str
    out_shape: Any
    params: int
    flops: int
    activation_bytes: int
    receptive_field: tuple | None
    jump: tuple | None
    start: tuple | None


@dataclasses.dataclass(frozen=True)
class Summary:
    """Rows in forward order plus totals; ``str()`` prints a table like Keras's."""
    rows: tuple
    in_shape: tuple
    out_shape: Any
    total_params: int
    param_bytes: int
    flops: int
    activation_bytes: int
    peak_activation_bytes: int
    receptive_field: tuple | None

    def __str__(self):
        head = ("Layer (path)", "Kind", "Output shape", "Params", "FLOPs", "RF", "Jump")
        lines = [head]
        for r in self.rows:
            depth = r.path.count("/")
            lines.append(("  " * depth + r.path.split("/")[-1], r.kind, str(r.out_shape),
                          f"{r.params:,}", f"{r.flops:,}", _fmt(r.receptive_field), _fmt(r.jump)))
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        fmt = lambda line: "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
        rule = "-" * len(fmt(head))
        body = [fmt(head), rule] + [fmt(line) for line in lines[1:]] + [rule]
        body += [f"Input shape: {self.in_shape}   Output shape: {self.out_shape}",
                 f"Total params: {self.total_params:,} ({_bytes(self.param_bytes)})",
                 f"FLOPs per example (forward): {self.flops:,}",
                 f"Activations per example: {_bytes(self.activation_bytes)} "
                 f"(largest {_bytes(self.peak_activation_bytes)})",
                 f"Receptive field of the output: {_fmt(self.receptive_field)}"]
        return "\n".join(body)


def _fmt(t):
    if t is None:
        return "-"
    return "x".join(f"{v:g}" for v in t)


def _bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


def _subtree(tree, path):
    for part in path.split("/"):
        if not isinstance(tree, dict) or part not in tree:
            return {}
        tree = tree[part]
    return tree


def _count(tree):
    leaves = jax.tree.leaves(tree)
    return sum(math.prod(x.shape) for x in leaves), sum(
        math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)


def summary(model, in_shape, dtype=jnp.float32) -> Summary:
    """Per-layer shapes, parameters, FLOPs, activation sizes and receptive fields.

    Works from shapes alone: parameters are never materialised (``jax.eval_shape``) and
    the network is traced once to a jaxpr, not compiled.

    Args:
      model: a :class:`jaxcnn.Layer`.
      in_shape: the input shape without the batch axis, e.g. ``(28, 28, 1)``.
      dtype: input dtype (activation bytes depend on it).

    Example:
      >>> import jaxcnn as jc
      >>> s = jc.summary(jc.serial(*[jc.conv(8, 3, padding=1) for _ in range(3)]), (32, 32, 3))
      >>> s.receptive_field, s.total_params
      ((7, 7), 1392)
    """
    check_model("summary", model)
    in_shape = check_shape("summary", in_shape)
    box = {}

    def init(key):
        box["out"], params, state = model.init(key, in_shape)
        return params, state

    params, state = jax.eval_shape(init, jax.random.key(0))
    x = jax.ShapeDtypeStruct((1,) + in_shape, dtype)

    def forward(p, s, x):
        with capture() as acts:
            y, _ = model.apply(p, s, x, train=False)
        box["acts"] = {k: [(a.shape, a.dtype) for a in jax.tree.leaves(v)]
                       for k, v in acts.items()}
        return y

    # The reference (lax) lowerings describe the arithmetic; fast paths compute the same
    # function with primitives (patches, reshapes) that would blur the geometry.
    with trace_paths() as order, lowering("lax"):
        closed = jax.make_jaxpr(forward)(params, state, x)
    jaxpr = closed.jaxpr
    n_spatial = len(in_shape) - 1 if not is_multi(in_shape) else 0
    in_geo = _Geo({a + 1: a for a in range(n_spatial)},
                  {a: (1, 1, 0.5) for a in range(n_spatial)})
    n_params = len(jax.tree.leaves((params, state)))
    geos_in = [None] * n_params + [in_geo]
    last_geo: dict[str, _Geo] = {}

    def on_eqn(eqn, outs):
        if outs and outs[0] is not None:
            for p in _prefixes(str(eqn.source_info.name_stack)):
                last_geo[p] = outs[0]

    out_geo = _walk(jaxpr, geos_in, on_eqn)[0]

    flops: dict[str, int] = {}
    total_flops = 0
    for path, eqn in _all_eqns(jaxpr):
        f = _flops(eqn)
        total_flops += f
        for p in _prefixes(path):
            flops[p] = flops.get(p, 0) + f

    rows, leaf_bytes = [], []
    children = {p.rsplit("/", 1)[0] for p, _ in order if "/" in p}
    for path, kind in order:
        shapes = box["acts"].get(path)
        if shapes is None:
            continue
        out_shape = tuple(s[0][1:] for s in shapes)
        act = sum(math.prod(s[0][1:]) * np.dtype(s[1]).itemsize for s in shapes)
        out_shape = out_shape[0] if len(out_shape) == 1 else out_shape
        if path not in children:
            leaf_bytes.append(act)
        geo = last_geo.get(path)
        rf = _rf(geo, n_spatial)
        rows.append(Row(path, kind, out_shape,
                        _count(_subtree(params, path))[0], flops.get(path, 0), act,
                        *rf))
    total, nbytes = _count(params)
    return Summary(tuple(rows), in_shape, box["out"], total, nbytes, total_flops, sum(leaf_bytes),
                   max(leaf_bytes, default=0), _rf(out_geo, n_spatial)[0])


def _prefixes(path):
    parts = path.split("/") if path else []
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def _rf(geo, n):
    if geo is None or n == 0:
        return None, None, None
    vals = [geo.dims.get(d, (1, 1, 0.5)) for d in range(n)]
    as_num = lambda v: int(v) if float(v).is_integer() else v
    return (tuple(as_num(v[0]) for v in vals), tuple(as_num(v[1]) for v in vals),
            tuple(as_num(v[2]) for v in vals))


def receptive_field(model, in_shape) -> tuple:
    """The receptive field (per spatial axis) of the model's output; see :func:`summary`.

    Example:
      >>> import jaxcnn as jc
      >>> jc.receptive_field(jc.serial(jc.conv(4, 3), jc.max_pool(2), jc.conv(4, 3)), (16, 16, 1))
      (8, 8)
    """
    return summary(model, in_shape).receptive_field
