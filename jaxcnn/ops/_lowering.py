"""Which lowering an op uses: a rule table per (decision, shapes, dtype, backend).

``jaxcnn.ops.conv``, the window pooling ops and the training batch norm compute the same
function in several ways (``_native.py``: oneDNN and jaxcnn's own handlers through the XLA
FFI; ``_fast_conv.py``, ``_fast_pool.py`` and ``_matmul.py``: ``lax`` formulations); which
is fastest depends on the shapes and the backend. Every decision is taken at trace time from
static facts only, so it is deterministic, by the first :class:`Rule` of :data:`RULES` for
that decision whose ``applies`` (can this lowering compute it at all) and ``prefer`` (is it
faster here: see :data:`RULES`) both hold on the op's features; no rule means ``"lax"``.
The decisions (:data:`DECISIONS`; any other name is refused):

* a convolution's passes: ``"conv.inference"`` (the forward pass when nothing is
  differentiated), ``"conv.forward"`` (the forward pass of a training step),
  ``"conv.input_grad"``, ``"conv.kernel_grad"``;
* ``"conv.input_once"``, ``"conv.cotangent_once"``, ``"conv.bias_grad"``: see
  :class:`~jaxcnn.ops._fast_conv.ConvPlan`; they see the passes already chosen (features
  ``"forward"``, ``"input_grad"``, ``"kernel_grad"``);
* ``"norm.batch"`` (:func:`decide`), ``"pool.max"``, ``"pool.min"``, ``"pool.sum"``.

:func:`conv_plan` takes all of a convolution's decisions at once.

The mode, from :func:`lowering` (innermost wins), else the environment variable
``JAXCNN_LOWERING``, else ``"auto"``:

* ``"auto"``: the rule table, on the backends each rule names;
* ``"lax"``: always the plain ``lax`` lowering (the reference);
* ``"fast"``: every applicable alternative, whatever the shape or backend (for tests and
  debugging).

The choice is made when a function is traced: a function jitted under one mode keeps
that mode's lowering until it is traced again. Every lowering supports every JAX
transformation (forward and reverse mode at any order, ``vmap``): the convolution's
passes are primitives with bilinear derivative rules (``_conv_passes.py``), and the other
alternatives have custom JVPs or derivative rules (batch norm's tangent is a linear
primitive whose transpose is the textbook gradient, ``_norm.py``; its sums are primitives,
``_norm_passes.py``).
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxcnn._checks import check_choice, fail
from jaxcnn._window import output_sizes
from jaxcnn.ops import _fast_pool, _native, _pool_passes
from jaxcnn.ops._fast_conv import LAX_PLAN, ConvPlan

MODES = ("auto", "lax", "fast")
DECISIONS = ("conv.inference", "conv.forward", "conv.input_grad", "conv.kernel_grad",
             "conv.input_once", "conv.cotangent_once", "conv.bias_grad", "norm.batch",
             "pool.max", "pool.min", "pool.sum")
ENV_VAR = "JAXCNN_LOWERING"


class Rule(NamedTuple):
    """Use lowering ``choice`` for ``decision`` when ``applies(f)`` and ``prefer(f)`` hold
    on the features ``f`` (a dict) and the backend is one of ``backends``."""
    decision: str
    choice: str
    applies: Callable
    prefer: Callable
    backends: tuple = ("cpu",)


_PATCH_BYTES = 1 << 29  # patches larger than this are never preferred (memory)


def _few_channels(f):
    return f["c_in"] <= 4 and f["patch_bytes"] <= _PATCH_BYTES


def _patches_forward_pays(f):
    """Training forward of a 1-d/2-d first layer by patches, which the kernel gradient
    shares (3-d first layers fold instead)."""
    return f["n"] <= 2 and _few_channels(f)


def _patches_inference_pays(f):
    """Forward alone: patches pay for one or two input channels, not for three (the ResNet
    stem) nor for strided layers."""
    return f["n"] <= 2 and f["c_in"] <= 2 and f["patch_bytes"] <= _PATCH_BYTES


def _direct_pays(f):
    """A 1-d/2-d first layer with one or two input channels as a sum of ``K * C_in``
    scaled shifted slices, in inference and in the training forward (a matrix product with
    a handful of columns runs far below peak); three channels (the ResNet stem) do not pay."""
    return f["n"] <= 2 and f["c_in"] <= 2 and f["kernel_volume"] * f["c_in"] <= 64


def _patches_kernel_grad_pays(f):
    """Kernel gradient as patches^T @ dY for 1-d/2-d first layers: shared with a patches
    forward, or built in the backward pass for 1-d; a 2-d direct-forward layer keeps lax's,
    which beats patches built in the backward pass."""
    return _patches_forward_pays(f) and (f["n"] == 1 or not _direct_pays(f))


def _patches_input_grad_pays(f):
    """Input gradient by autodiff of patches @ kernel (a matmul and a scatter-add of the
    slices), 2-d: strided convs and stride-1 convs with 5-8 input channels; stride-1 with
    more channels loses."""
    return (f["n"] == 2 and (f["max_stride"] > 1 or 4 < f["c_in"] <= 8)
            and f["patch_bytes"] <= _PATCH_BYTES)


def _always(f):
    del f
    return True


def _is_float(f):
    return f["float"]


def _native_runs(f):
    """oneDNN computes it: float32, or bfloat16 where oneDNN has this CPU's bfloat16
    instructions; non-negative padding; library loaded."""
    return f["native"] and f["min_pad"] >= 0 and (
        f["dtype"] == "float32" or f["dtype"] == "bfloat16" and f.get("native_bf16", False))


def _ungrouped_float(f):
    return f["float"] and f["groups"] == 1


def _is_3d_float(f):
    return _ungrouped_float(f) and f["n"] == 3


def _rows_kernel_grad_runs(f):
    """The kernel gradient as matrix products over rows (``_native.ROWS_TARGET``): float32,
    1-d, stride 1, ungrouped, output as long as the input."""
    return (_native_runs(f) and f["dtype"] == "float32" and f["n"] == 1 and f["groups"] == 1
            and f["max_stride"] == 1 and f["same_size"])


def _rows_kernel_grad_pays(f):
    """oneDNN 3.2's AVX2 backward-weights kernel runs at half its forward's speed, its matrix
    products near the forward's with 16 or more input channels (the 1-d CNN's step 1.09x;
    its first layer, one input channel, 0.6x). Not measured with AVX-512, where oneDNN has
    other backward-weights kernels."""
    return not f["avx512"] and f["c_in"] >= 16


def _native_name(choice):
    return choice.startswith("native")


def _reads_lax_kernel_grad(f):
    return f["float"] and not _native_name(f["kernel_grad"])


def _reads_lax_gradient(f):
    return f["float"] and not (f["input_grad"] == "native" and _native_name(f["kernel_grad"]))


def _non_overlapping(f):
    return f["non_overlapping"]


def _native_pool_runs(f):
    """The native handlers compute it: library loaded, float32, non-overlapping windows."""
    return f["native"] and f["native_pool"]


def _native_norm_runs(f):
    """Batch norm's sums natively (``jaxcnn/ops/native/norm.cc``): library loaded, float32."""
    return f.get("native", False) and f["dtype"] == "float32"


def _few_pool_channels(f):
    """With up to 16 channels XLA's reshape fusions run far below memory speed on one thread
    (LeNet-5's step 1.26x faster native); with 32 or more they stream near it and the native
    passes' int32 offsets cost as much as they save (the 1-d CNN's step 0.96x, the 3-d
    CNN's 1.01x; `python benchmarks/rule_ab.py --decision pool.max --choice native`)."""
    return f["x_shape"][-1] <= 16


# The first applicable, preferred rule of a decision wins. oneDNN's passes ("native") come
# first: they beat every lax formulation on the benchmark models' layers (the `jaxcnn` and
# `jaxcnn[lax]` rows of benchmarks/results/train_step.md); in bfloat16, all three passes
# native against all on lax, the 3-d CNN's step ran 5.4x faster and ResNet-20's within noise
# (benchmarks/results/bf16_step.md; one pass at a time was measured alone only,
# benchmarks/results/bf16_passes.md: each mixed ResNet-20 step took XLA minutes to compile).
# The lax-side rules are the fallback without the native library, chosen with `python
# benchmarks/ops.py --passes` (each pass alone) and `python benchmarks/rule_ab.py` (whole
# train steps, one decision on and off); each predicate's docstring gives its reason. 3-d
# convolutions fold into 2-d ones, which XLA's CPU backend runs much faster: depth offsets
# on the input channels (`fold`) for few input channels, on the output channels (`fold_out`)
# for more.
RULES = (
    Rule("conv.inference", "native", _native_runs, _always),
    Rule("conv.inference", "direct", _ungrouped_float, _direct_pays),
    Rule("conv.inference", "patches", _ungrouped_float, _patches_inference_pays),
    Rule("conv.inference", "fold", _is_3d_float, _few_channels),
    Rule("conv.inference", "fold_out", _is_3d_float, _always),
    Rule("conv.forward", "native", _native_runs, _always),
    Rule("conv.forward", "direct", _ungrouped_float, _direct_pays),
    Rule("conv.forward", "patches", _ungrouped_float, _patches_forward_pays),
    Rule("conv.forward", "fold", _is_3d_float, _few_channels),
    Rule("conv.forward", "fold_out", _is_3d_float, _always),
    Rule("conv.kernel_grad", "native_rows", _rows_kernel_grad_runs, _rows_kernel_grad_pays),
    Rule("conv.kernel_grad", "native", _native_runs, _always),
    Rule("conv.kernel_grad", "patches", _ungrouped_float, _patches_kernel_grad_pays),
    Rule("conv.kernel_grad", "fold", _is_3d_float, _few_channels),
    Rule("conv.kernel_grad", "fold_out", _is_3d_float, _always),
    Rule("conv.input_grad", "native", _native_runs, _always),
    Rule("conv.input_grad", "fold", _is_3d_float, _always),
    Rule("conv.input_grad", "patches", _ungrouped_float, _patches_input_grad_pays),
    Rule("conv.input_grad", "interior", _ungrouped_float, lambda f: f["max_stride"] > 1),
    # lax kernel gradients transpose their input: read it from memory, not a recomputation.
    Rule("conv.input_once", "yes", _reads_lax_kernel_grad, _always),
    # The same for the output cotangent, which pays on 3-d models only.
    Rule("conv.cotangent_once", "yes", _reads_lax_gradient, lambda f: f["n"] == 3),
    Rule("norm.batch", "native", _native_norm_runs, _always),
    Rule("norm.batch", "matmul", _is_float, _always),
    # The bias gradient by matrix products pays on 3-d models only.
    Rule("conv.bias_grad", "matmul", _is_float, lambda f: f["n"] == 3),
    # Max and min pooling's training passes natively, split over XLA's intra-op threads (XLA
    # runs the reshape's fusions on one); else by reshape, no select_and_scatter.
    Rule("pool.max", "native", _native_pool_runs, _few_pool_channels),
    Rule("pool.max", "reshape", _non_overlapping, _always),
    Rule("pool.min", "native", _native_pool_runs, _few_pool_channels),
    Rule("pool.min", "reshape", _non_overlapping, _always),
    Rule("pool.sum", "reshape", _non_overlapping, _always),
)

_forced: list = []
_rules_override: list = []


def mode():
    """The active mode: the innermost :func:`lowering`, else ``$JAXCNN_LOWERING``, else
    ``"auto"``."""
    if _forced:
        return _forced[-1]
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    check_choice("jaxcnn lowering", f"${ENV_VAR}", value, MODES)
    return value


@contextlib.contextmanager
def lowering(mode_name="auto", rules=None):
    """Context manager forcing the lowering mode (and optionally a rule table) for ops
    traced inside it.

    Args:
      mode_name: ``"auto"`` (the rule table), ``"lax"`` (reference lowerings only) or
        ``"fast"`` (every applicable alternative lowering).
      rules: optional sequence of :class:`Rule` replacing :data:`RULES`.

    ``jax.jit`` caches each function's compiled program without regard to this context: a
    function already compiled outside it keeps its lowering inside it. Compile a new
    function object inside the context (``jax.jit(lambda *a: f(*a))``) to get the mode.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn import ops
      >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
      >>> with ops.lowering("lax"):
      ...     y = ops.max_pool(x, 2)
      >>> y[0, :, :, 0]
      Array([[ 5.,  7.],
             [13., 15.]], dtype=float32)
    """
    check_choice("lowering", "mode", mode_name, MODES)
    _forced.append(mode_name)
    if rules is not None:
        _rules_override.append(tuple(rules))
    try:
        yield
    finally:
        _forced.pop()
        if rules is not None:
            _rules_override.pop()


def choose(decision, features, backend=None, rules=None, mode_name=None):
    """The lowering for ``decision`` (one of :data:`DECISIONS`) given ``features``:
    ``"lax"`` or a rule's choice."""
    if decision not in DECISIONS:
        fail("choose", "decision", f"one of {', '.join(map(repr, DECISIONS))}", decision,
             "A misspelt decision would silently keep the lax lowering")
    mode_name = mode() if mode_name is None else mode_name
    if mode_name == "lax":
        return "lax"
    if rules is None:
        rules = _rules_override[-1] if _rules_override else RULES
    backend = jax.default_backend() if backend is None else backend
    for rule in rules:
        if rule.decision != decision or not rule.applies(features):
            continue
        if mode_name == "fast" or (backend in rule.backends and rule.prefer(features)):
            return rule.choice
    return "lax"


def _dtype_features(dtype):
    return {"dtype": jnp.dtype(dtype).name, "float": bool(jnp.issubdtype(dtype, jnp.floating))}


def conv_features(x_shape, w_shape, stride, pads, dilation, dtype, groups=1):
    """The static facts rules decide a convolution's lowering on."""
    n = len(x_shape) - 2
    out = output_sizes(x_shape[1:-1], w_shape[:n], stride, pads, dilation)
    k = math.prod(w_shape[:n])
    return {"n": n, "c_in": x_shape[-1], "c_out": w_shape[-1], "kernel_volume": k,
            "same_size": tuple(out) == tuple(x_shape[1:-1]),
            "groups": groups, "max_stride": max(stride), "max_dilation": max(dilation),
            "min_pad": min(min(p) for p in pads),
            "patch_bytes": x_shape[0] * math.prod(out) * k * x_shape[-1]
            * jnp.dtype(dtype).itemsize,
            "native": _native.available(), "native_bf16": _native.bf16_available(),
            "avx512": _native.HAS_AVX512, **_dtype_features(dtype)}


def conv_plan(x_shape, w_shape, stride, pads, dilation, groups, dtype, precision=None,
              backend=None, rules=None):
    """Every lowering decision of a convolution, as one
    :class:`~jaxcnn.ops._fast_conv.ConvPlan` (``LAX_PLAN`` with an explicit ``precision``,
    which only ``lax`` honours)."""
    if precision is not None:
        return LAX_PLAN
    f = conv_features(x_shape, w_shape, stride, pads, dilation, dtype, groups)
    pick = lambda d: choose(d, f, backend, rules)  # noqa: E731
    passes = {"forward": pick("conv.forward"), "input_grad": pick("conv.input_grad"),
              "kernel_grad": pick("conv.kernel_grad"), "inference": pick("conv.inference")}
    f.update(passes)
    return ConvPlan(**passes, input_once=pick("conv.input_once") == "yes",
                    cotangent_once=pick("conv.cotangent_once") == "yes",
                    bias_grad=pick("conv.bias_grad"))


def decide(decision, dtype, backend=None, rules=None, **features):
    """The lowering chosen for a decision that depends on the dtype (and ``features``) only:
    ``decide("norm.batch", x.dtype, native=True) == "native"`` means training batch norm's
    sums by the native handlers, ``"matmul"`` by matrix
    products with a hand-written JVP instead of ``jnp.mean`` and autodiff."""
    return choose(decision, {**_dtype_features(dtype), **features}, backend, rules)


_POOL = {("max", "reshape"): _fast_pool.reshape_max, ("min", "reshape"): _fast_pool.reshape_min,
         ("sum", "reshape"): _fast_pool.reshape_sum, ("max", "native"): _fast_pool.native_max,
         ("min", "native"): _fast_pool.native_min}


def pool_lowering(kind, x_shape, window, strides, pads, dilation, dtype, backend=None,
                  rules=None):
    """``None`` (use ``lax``) or an alternative ``(x, window, strides, pads, dilation) -> y``
    for the window reduction ``kind`` in {"max", "min", "sum"}."""
    f = {"n": len(x_shape) - 2, "non_overlapping": _fast_pool.non_overlapping(
        window, strides, dilation), "x_shape": tuple(x_shape), "native": _native.available(),
         "native_pool": _pool_passes.native_applies(dtype, window, strides, dilation),
         **_dtype_features(dtype)}
    return _POOL.get((kind, choose("pool." + kind, f, backend, rules)))


__all__ = ["DECISIONS", "MODES", "ENV_VAR", "Rule", "RULES", "mode", "lowering", "choose",
           "conv_plan", "decide", "pool_lowering"]
