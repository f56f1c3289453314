"""Which lowering an op uses: a rule table per (decision, shapes, dtype, backend).

``jaxcnn.ops.conv`` and the window pooling ops compute the same function in several ways
(``_native.py``: oneDNN through the XLA FFI; ``_fast_conv.py`` and ``_fast_pool.py``:
``lax`` formulations); which is fastest depends on the shapes and the backend. Every
decision is taken at trace time from static facts only, so it is deterministic, by the
first :class:`Rule` of :data:`RULES` for that decision whose ``applies`` (can this
lowering compute it at all) and ``prefer`` (is it faster here, measured: see
``benchmarks/README.md``) both hold on the op's features; no rule means ``"lax"``. The
decisions (:data:`DECISIONS`; any other name is refused):

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
passes are primitives with bilinear derivative rules (``_conv_passes.py``).
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxcnn._checks import check_choice, fail
from jaxcnn.ops import _fast_pool, _native
from jaxcnn.ops._fast_conv import LAX_PLAN, ConvPlan, out_sizes

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
    """Training forward of a 1-d/2-d first layer: patches, shared with the kernel gradient
    (fwd + bwd: 1-d conv1 fwd 1.88x and dW 1.56x alone; ResNet stem 1.25x, LeNet conv1
    1.03-1.27x). 3-d first layers fold instead."""
    return f["n"] <= 2 and _few_channels(f)


def _patches_inference_pays(f):
    """Forward alone: patches pay for one or two input channels (LeNet conv1 1.15x, 1-d
    conv1 1.88x), not for three (ResNet stem 0.92x) or strided layers (0.23-0.41x)."""
    return f["n"] <= 2 and f["c_in"] <= 2 and f["patch_bytes"] <= _PATCH_BYTES


def _direct_pays(f):
    """A 1-d/2-d first layer with one or two input channels as a sum of ``K * C_in``
    scaled shifted slices, in inference and in the training forward (whose output is kept
    behind a division, else XLA fused the sum into the ReLU/pool gradient and recomputed
    it: 0.75x; kernel gradient by patches built in the backward pass).

    Inference (alternated, another job running): LeNet conv1 1.3 ms vs 13.1 lax and 13.1
    patches, 1-d conv1 4.2 vs 16.2 / 9.8; whole model (`benchmarks/rule_ab.py --infer`)
    LeNet-5 2.73x, 1-d CNN 1.72x. Training step (`rule_ab.py`): LeNet-5 1.08x and 1.11x,
    1-d CNN 1.02x. The ResNet stem (3 channels) does not pay: training fwd + dW 42.0 vs
    31.0 ms; inference 1.02x loaded, 0.98x in a later A/B, 0.93-0.94x of the `lax` column
    in two quiet benchmark runs."""
    return f["n"] <= 2 and f["c_in"] <= 2 and f["kernel_volume"] * f["c_in"] <= 64


def _patches_kernel_grad_pays(f):
    """Kernel gradient as patches^T @ dY for 1-d/2-d first layers: shared with a patches
    forward (ResNet stem), or built in the backward pass for 1-d (1-d CNN train step 1.10x
    over lax's). A 2-d direct-forward layer keeps lax's (LeNet-5 step 1.29x over patches
    built in the backward; LeNet conv1 kernel gradient alone 7.6 ms vs 22.4)."""
    return _patches_forward_pays(f) and (f["n"] == 1 or not _direct_pays(f))


def _patches_input_grad_pays(f):
    """Input gradient by autodiff of patches @ kernel (a matmul and a scatter-add of the
    slices), 2-d: strided convs (ResNet 16->32 s2 2.71x, 32->64 s2 1.73x, where the
    interior-padding lowering reaches 1.03-1.08x) and stride-1 convs with 5-8 input
    channels (LeNet conv2 6->16 5x5 2.25x); stride-1 with more channels loses (0.18x
    16->16, 0.37x 32->32)."""
    return (f["n"] == 2 and (f["max_stride"] > 1 or 4 < f["c_in"] <= 8)
            and f["patch_bytes"] <= _PATCH_BYTES)


def _always(f):
    del f
    return True


def _is_float(f):
    return f["float"]


def _native_runs(f):
    """oneDNN computes it: float32, non-negative padding, library loaded."""
    return f["native"] and f["dtype"] == "float32" and f["min_pad"] >= 0


def _ungrouped_float(f):
    return f["float"] and f["groups"] == 1


def _is_3d_float(f):
    return _ungrouped_float(f) and f["n"] == 3


def _reads_lax_kernel_grad(f):
    return f["float"] and f["kernel_grad"] != "native"


def _reads_lax_gradient(f):
    return f["float"] and not f["input_grad"] == f["kernel_grad"] == "native"


def _non_overlapping(f):
    return f["non_overlapping"]


# Measured on a 2-core x86 CPU (AVX-512) with jax 0.10.2 (`python benchmarks/ops.py
# --passes`: each pass alone, quiet machine; `python benchmarks/ops.py`: forward + backward;
# `python benchmarks/rule_ab.py`: whole train steps); see benchmarks/README.md. oneDNN's
# passes ("native") beat every lax formulation on the four benchmark models' layers
# (benchmarks/results/train_step.md); the lax rules below them are the fallback without
# the native library.
# 3-d, VoxNet conv1 (1 -> 32 5^3 s2): fold forward 15.0x, kernel gradient 8.4x (patches
# 2.5x / 4.2x); conv2 (32 -> 32 3^3): fold_out forward 6.9x and kernel gradient 3.2x (fold
# 2.7x / 1.8x), fold input gradient 6.5x (fold_out 4.7x).
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
    Rule("conv.kernel_grad", "native", _native_runs, _always),
    Rule("conv.kernel_grad", "patches", _ungrouped_float, _patches_kernel_grad_pays),
    Rule("conv.kernel_grad", "fold", _is_3d_float, _few_channels),
    Rule("conv.kernel_grad", "fold_out", _is_3d_float, _always),
    Rule("conv.input_grad", "native", _native_runs, _always),
    Rule("conv.input_grad", "fold", _is_3d_float, _always),
    Rule("conv.input_grad", "patches", _ungrouped_float, _patches_input_grad_pays),
    Rule("conv.input_grad", "interior", _ungrouped_float, lambda f: f["max_stride"] > 1),
    # lax kernel gradients: ResNet-20 train step 1.34x (1022 -> 763 ms, alternated).
    Rule("conv.input_once", "yes", _reads_lax_kernel_grad, _always),
    # VoxNet train step 1.13x and 1.18x (quiet, rule_ab.py); ResNet-20 0.97x, 1-d CNN 0.99x.
    Rule("conv.cotangent_once", "yes", _reads_lax_gradient, lambda f: f["n"] == 3),
    Rule("norm.batch", "matmul", _is_float, _always),
    # VoxNet train step 1.56x (361 -> 232 ms); LeNet-5 0.97x, so 3-d only.
    Rule("conv.bias_grad", "matmul", _is_float, lambda f: f["n"] == 3),
    Rule("pool.max", "reshape", _non_overlapping, _always),  # 3-6x (fwd + bwd)
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
    check_choice(value, MODES, "jaxcnn lowering", f"${ENV_VAR}")
    return value


@contextlib.contextmanager
def lowering(mode_name="auto", rules=None):
    """Context manager forcing the lowering mode (and optionally a rule table) for ops
    traced inside it.

    Args:
      mode_name: ``"auto"`` (the rule table), ``"lax"`` (reference lowerings only) or
        ``"fast"`` (every applicable alternative lowering).
      rules: optional sequence of :class:`Rule` replacing :data:`RULES`.

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
    check_choice(mode_name, MODES, "lowering", "mode")
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
    out = out_sizes(x_shape[1:-1], w_shape[:n], stride, pads, dilation)
    k = math.prod(w_shape[:n])
    return {"n": n, "c_in": x_shape[-1], "c_out": w_shape[-1], "kernel_volume": k,
            "groups": groups, "max_stride": max(stride), "max_dilation": max(dilation),
            "min_pad": min(min(p) for p in pads),
            "patch_bytes": x_shape[0] * math.prod(out) * k * x_shape[-1]
            * jnp.dtype(dtype).itemsize,
            "native": _native.available(), **_dtype_features(dtype)}


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
    ``decide("norm.batch", x.dtype) == "matmul"`` means training batch norm sums by matrix
    products with a hand-written gradient instead of ``jnp.mean`` and autodiff."""
    return choose(decision, {**_dtype_features(dtype), **features}, backend, rules)


_POOL = {"max": _fast_pool.reshape_max, "min": _fast_pool.reshape_min,
         "sum": _fast_pool.reshape_sum}


def pool_lowering(kind, x_shape, window, strides, pads, dilation, dtype, backend=None,
                  rules=None):
    """``None`` (use ``lax``) or an alternative ``(x, window, strides, pads, dilation) -> y``
    for the window reduction ``kind`` in {"max", "min", "sum"}."""
    f = {"n": len(x_shape) - 2, "non_overlapping": _fast_pool.non_overlapping(
        window, strides, dilation), "x_shape": tuple(x_shape), **_dtype_features(dtype)}
    if choose("pool." + kind, f, backend, rules) == "reshape":
        return _POOL[kind]
    return None


__all__ = ["DECISIONS", "MODES", "ENV_VAR", "Rule", "RULES", "mode", "lowering", "choose", "conv_plan",
           "decide", "pool_lowering"]
