"""Numerics of every public op in ``jaxcnn.ops``, on tiny shapes.

* float64: ``jax.test_util.check_grads`` in forward and reverse mode against central
  finite differences (order 1; order 2 for ``SECOND_ORDER``, where it is cheap).
* float32: the output and a vector-Jacobian product (a fixed random cotangent) against
  the float64 result; bfloat16 and float16: the output (and the VJP for
  ``LOW_PRECISION_GRADIENTS``); each within ``OP_TOL`` of ``conftest.py`` (the README's
  table). The bound is ``|got - ref| <= atol * max|ref| + rtol * |ref|``:
  ``atol`` is relative to the output's scale, so one table serves ops whose outputs are
  O(1) (norms) and O(10) (sums over a kernel's window).

The low-precision results run the way a user gets them (x64 off, the default lowering,
oneDNN for float32 convolutions where it is built); float64 runs inside
``jax.enable_x64(True)``, which is scoped to the ``with`` block (other tests in the same
worker keep x64 off).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import OP_TOL
from jax.test_util import check_grads

from jaxcnn import ops


def _normal(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _distinct(shape, seed):
    """Values in [-1, 1) whose gaps (>= 2 / size) dwarf the finite-difference step, so a
    max or min never changes hands inside it."""
    n = math.prod(shape)
    return np.random.default_rng(seed).permutation(n).reshape(shape) * (2.0 / n) - 1.0


def _positive(shape, seed):
    return np.abs(_normal(shape, seed)) + 0.5


class Case:
    """An op as a function of float arrays, and the arrays' shapes and kinds."""

    def __init__(self, fn, *shapes, kinds=None):
        self.fn, self.shapes = fn, shapes
        self.kinds = kinds or (_normal,) * len(shapes)

    def inputs(self):
        return [kind(shape, seed) for seed, (kind, shape) in enumerate(zip(self.kinds,
                                                                            self.shapes))]


D, P = _distinct, _positive
X2 = (2, 5, 6, 2)  # a 2-d batch: N, H, W, C
CASES = {
    # convolutions: 1-, 2-, 3-d; strided, padded, dilated, grouped, depthwise; every
    # padding mode; transposed; separable
    "conv_2d": Case(lambda x, w, b: ops.conv(x, w, b, stride=2, padding=1),
                    (2, 5, 5, 3), (3, 3, 3, 4), (4,)),
    "conv_1d_grouped_dilated_reflect": Case(
        lambda x, w: ops.conv(x, w, padding=2, dilation=2, groups=2, padding_mode="reflect"),
        (2, 7, 4), (3, 2, 4)),
    "conv_3d_depthwise_circular": Case(
        lambda x, w: ops.conv(x, w, padding=1, groups=2, padding_mode="circular"),
        (1, 3, 4, 3, 2), (2, 2, 2, 1, 4)),
    "conv_depthwise_replicate": Case(
        lambda x, w: ops.conv(x, w, stride=(1, 2), padding="SAME", groups=3,
                              padding_mode="replicate"), (1, 5, 5, 3), (3, 3, 1, 3)),
    "conv_transpose": Case(
        lambda x, w, b: ops.conv_transpose(x, w, b, stride=2, padding=1, output_padding=1),
        (1, 3, 4, 3), (3, 3, 3, 2), (2,)),
    "conv_transpose_1d_grouped_dilated": Case(
        lambda x, w: ops.conv_transpose(x, w, stride=3, dilation=2, groups=2),
        (2, 4, 4), (2, 4, 3)),
    "separable_conv": Case(lambda x, d, p: ops.separable_conv(x, d, p, stride=2, padding="SAME"),
                           (1, 5, 5, 2), (3, 3, 1, 4), (1, 1, 4, 3)),
    # window pools
    "max_pool": Case(lambda x: ops.max_pool(x, 3, 2, padding=1, dilation=(1, 2), ceil_mode=True),
                     X2, kinds=(D,)),
    "min_pool": Case(lambda x: ops.min_pool(x, 2), X2, kinds=(D,)),
    "sum_pool_3d": Case(lambda x: ops.sum_pool(x, 2, 1), (1, 3, 3, 4, 2)),
    "avg_pool": Case(lambda x: ops.avg_pool(x, 3, 2, padding=1, ceil_mode=True,
                                            count_include_pad=False), X2),
    "lp_pool_1d": Case(lambda x: ops.lp_pool(x, 3, 2), (2, 7, 2), kinds=(P,)),
    "max_unpool": Case(lambda x: ops.max_unpool(*ops.max_pool(x, 2, return_indices=True), 2),
                       X2, kinds=(D,)),
    # adaptive and global pools
    "adaptive_avg_pool+adaptive_max_pool": Case(
        lambda x: ops.adaptive_avg_pool(x, (3, 4)) + ops.adaptive_max_pool(x, (3, 4)), X2,
        kinds=(D,)),
    "global_avg_pool+global_max_pool": Case(
        lambda x: ops.global_avg_pool(x) + 2 * ops.global_max_pool(x), (2, 3, 4, 5, 2),
        kinds=(D,)),
    # normalisation
    "batch_norm_train": Case(lambda x, s, b: ops.batch_norm(x, s, b, train=True)[0],
                             (3, 2, 4), (4,), (4,)),
    "batch_norm_eval": Case(lambda x, s, b, m, v: ops.batch_norm(x, s, b, m, v, train=False)[0],
                            (3, 2, 4), (4,), (4,), (4,), (4,), kinds=(_normal,) * 4 + (P,)),
    "group_norm": Case(lambda x, s, b: ops.group_norm(x, 2, s, b), (2, 3, 3, 4), (4,), (4,)),
    "layer_norm": Case(lambda x, s, b: ops.layer_norm(x, s, b), (2, 3, 5), (5,), (5,)),
    "instance_norm": Case(lambda x, s, b: ops.instance_norm(x, s, b), (2, 4, 3), (3,), (3,)),
    # resizing
    "upsample_nearest": Case(lambda x: ops.upsample(x, scale_factor=(2, 1.5)), (1, 3, 4, 2)),
    "upsample_linear_3d_aligned": Case(
        lambda x: ops.upsample(x, scale_factor=2, mode="linear", align_corners=True),
        (1, 2, 2, 3, 1)),
    "upsample_cubic": Case(lambda x: ops.upsample(x, size=(5, 3), mode="cubic"), (1, 3, 4, 2)),
    "pixel_shuffle+pixel_unshuffle": Case(
        lambda x: ops.pixel_unshuffle(ops.pixel_shuffle(x, 2), (1, 2)), (1, 2, 3, 8)),
    # padding and cropping
    "pad+crop": Case(lambda x: ops.crop(ops.pad(ops.pad(x, ((1, 2), 2), "reflect"), 1,
                                                "constant", 0.5), ((0, 1), (3, 0))),
                     (1, 4, 3, 2)),
}
# Gradients in bfloat16 and float16 (mixed-precision training) are compared for these.
LOW_PRECISION_GRADIENTS = ("conv_2d", "max_pool", "batch_norm_train")
# Second derivatives are checked (order 2) where they are cheap and not identically zero.
SECOND_ORDER = ("conv_depthwise_replicate", "lp_pool_1d", "batch_norm_train")


def test_every_public_op_has_a_case():
    """A new op in jaxcnn.ops needs a row in CASES, named after it (``op_variant``, or
    ``op+op`` for ops checked together); the lowering switch is not an op."""
    public = {n for n in dir(ops) if not n.startswith("_") and callable(getattr(ops, n))}
    named = {part for k in CASES for part in k.split("+")}
    covered = {n for n in public if any(k == n or k.startswith(n + "_") for k in named)}
    assert public - covered == {"lowering"}


def _value_and_vjp(f, args, ct):
    """The output and the VJP with cotangent ``ct``, as float64 numpy arrays. ``f`` jitted:
    float64 reuses the compilations of its ``check_grads``."""
    y, pullback = jax.vjp(f, *args)
    assert y.dtype == args[0].dtype and y.shape == ct.shape
    return [np.asarray(v, np.float64) for v in (y, *pullback(ct.astype(y.dtype)))]


def _jit_value_and_vjp(fn, args, ct):
    """The same in one compiled program (half the compilations of ``jax.vjp`` of a jit)."""
    def run(ct, *args):
        y, pullback = jax.vjp(fn, *args)
        return (y, *pullback(ct))

    return [np.asarray(v, np.float64) for v in jax.jit(run)(ct, *args)]


def _scaled_error(got, ref):
    """max |got - ref| / max |ref|: the ``atol`` of ``OP_TOL`` this comparison needs."""
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_and_precision(name):
    """float64: check_grads in forward and reverse mode. float32: the output and the VJP
    with a fixed cotangent against float64; bfloat16, float16: the output (and the VJP for
    ``LOW_PRECISION_GRADIENTS``); each within ``OP_TOL``."""
    case = CASES[name]
    f = jax.jit(case.fn)
    inputs = case.inputs()
    out_shape = jax.eval_shape(case.fn, *[jax.ShapeDtypeStruct(a.shape, jnp.float32)
                                          for a in inputs]).shape
    ct = _normal(out_shape, 99)
    with jax.enable_x64(True):
        args = [jnp.asarray(a) for a in inputs]
        assert all(a.dtype == jnp.float64 for a in args)
        check_grads(f, args, order=1, modes=("fwd", "rev"))
        ref = _value_and_vjp(f, args, jnp.asarray(ct))
    for dtype in (jnp.float32, jnp.bfloat16, jnp.float16):
        tol = OP_TOL[np.dtype(dtype)]
        args = [jnp.asarray(a, dtype) for a in inputs]
        if dtype == jnp.float32 or name in LOW_PRECISION_GRADIENTS:
            got = _jit_value_and_vjp(case.fn, args, jnp.asarray(ct, dtype))
        else:
            y = f(*args)
            assert y.dtype == dtype
            got = [np.asarray(y, np.float64)]
        for i, (g, r) in enumerate(zip(got, ref)):
            np.testing.assert_allclose(
                g, r, rtol=tol["rtol"], atol=tol["atol"] * np.max(np.abs(r)),
                err_msg=f"{name}, {np.dtype(dtype).name}, "
                f"{'output' if i == 0 else f'gradient of argument {i - 1}'}: "
                f"scaled error {_scaled_error(g, r):.1e}")


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_order_gradients(name):
    case = CASES[name]
    with jax.enable_x64(True):
        check_grads(jax.jit(case.fn), [jnp.asarray(a) for a in case.inputs()], order=2,
                    modes=("fwd", "rev"))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the rule is for CPU")
def test_batch_norm_train_case_takes_the_fast_lowering():
    """The ``batch_norm_train`` case is differentiated above (forward and reverse mode, to
    second order) on the default CPU lowering: the matrix-product batch norm."""
    with jax.enable_x64(True):
        jaxpr = jax.make_jaxpr(CASES["batch_norm_train"].fn)(
            *[jnp.asarray(a) for a in CASES["batch_norm_train"].inputs()])
    assert "name=_batch_norm_train" in str(jaxpr)
