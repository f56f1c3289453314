"""Alternative lowerings (jaxcnn/ops/_fast_*.py) equal the lax reference, forward and
gradient; the selection logic (jaxcnn/ops/_lowering.py) follows its rule table and mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn import ops
from jaxcnn.ops import _conv_passes, _lowering, _native
from jaxcnn.ops._fast_conv import (LAX_PLAN, ConvPlan, cotangent_computed_once, input_computed_once,
                                   is_lax)
from jaxcnn.ops._lowering import Rule, choose, conv_plan, lowering, pool_lowering
from jaxcnn.ops._matmul import channel_sum

LAX_SIDE_RULES = tuple(r for r in _lowering.RULES if r.choice != "native")


def planned_conv(x, w, plan, stride, pads, dilation):
    return _conv_passes.planned_conv(x, w, None, plan, stride, pads, dilation)


TOL = {"float32": dict(rtol=2e-5, atol=2e-5), "bfloat16": dict(rtol=2e-2, atol=5e-2)}


def _value_and_grads(f, args, seed=1):
    """f(*args) and the gradient of sum(f * ct) with respect to every arg (one vjp)."""
    y, vjp = jax.vjp(f, *args)
    ct = jnp.asarray(np.random.default_rng(seed).normal(size=y.shape), y.dtype)
    return (y,) + tuple(vjp(ct))


def _close(got, want, dtype):
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        scale = max(1.0, float(jnp.max(jnp.abs(w.astype(jnp.float32)))))
        tol = TOL[jnp.dtype(dtype).name]
        np.testing.assert_allclose(np.asarray(g, np.float32) / scale,
                                   np.asarray(w, np.float32) / scale, **tol)


# ----------------------------------------------------------------------------- pooling

POOL_CASES = [  # (x shape, kernel_size, padding, ceil_mode)
    ((2, 8, 3), 2, 0, False),
    ((2, 9, 3), 2, 0, False),  # the unused tail is cut
    ((2, 9, 3), 2, 1, False),
    ((1, 7, 2), 3, 1, True),
    ((2, 6, 6, 3), 2, 0, False),
    ((2, 7, 5, 2), (2, 3), 0, True),
    ((1, 7, 7, 2), 3, 1, False),
    ((1, 5, 6, 4, 2), 2, 0, False),
    ((1, 5, 5, 5, 1), (2, 1, 2), (1, 0, 0), True),
]


@pytest.mark.parametrize("shape, kernel, padding, ceil_mode", POOL_CASES)
def test_reshape_and_native_pool_equal_lax(shape, kernel, padding, ceil_mode):
    # Small integers: many ties inside windows, which must route the gradient alike.
    x = jnp.asarray(np.random.default_rng(0).integers(-2, 3, size=shape), jnp.float32)

    def make_run():  # a new function per mode: jit caches traces by function
        def run(x):
            return [_value_and_grads(lambda x: getattr(ops, op)(x, kernel, padding=padding,
                                                                 ceil_mode=ceil_mode), (x,))
                    for op in ("max_pool", "min_pool", "sum_pool", "avg_pool")]
        return run

    results, programs, hlo = {}, {}, {}
    # "fast" takes the native passes where the library is built, "reshape" the lax side.
    for name, mode, rules in (("lax", "lax", None), ("fast", "fast", None),
                              ("reshape", "fast", LAX_SIDE_RULES)):
        with lowering(mode, rules):
            traced = jax.jit(make_run()).trace(x)
            programs[name] = str(traced.jaxpr)
            compiled = traced.lower().compile()
            hlo[name], results[name] = compiled.as_text(), compiled(x)
    # Each mode ran its own lowering: the fast ones have no reduce_window at all.
    assert "reduce_window" in programs["lax"]
    assert "reduce_window" not in programs["fast"] + programs["reshape"]
    assert (_native.POOL_TARGETS["arg_extreme"] in hlo["fast"]) == _native.available()
    assert "jaxcnn_native_pool" not in hlo["reshape"]
    # The same sums in the same order within a window: equal, ties included.
    for name in ("fast", "reshape"):
        for g, w in zip(jax.tree.leaves(results[name]), jax.tree.leaves(results["lax"])):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.int32])
def test_reshape_pool_dtypes(dtype):
    x = jnp.asarray(np.random.default_rng(1).integers(-5, 6, size=(2, 6, 4, 3)), dtype)
    with lowering("lax"):
        want = ops.max_pool(x, 2), ops.min_pool(x, (3, 2), padding=(1, 0))
    with lowering("fast"):
        got = ops.max_pool(x, 2), ops.min_pool(x, (3, 2), padding=(1, 0))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(np.asarray(g, np.float32), np.asarray(w, np.float32))


def test_reshape_pool_reshapes_only_when_differentiated():
    """Inference runs reduce_window; the gradient goes through the reshape's custom VJP
    (no select_and_scatter), and both agree with lax."""
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 6, 6, 3)), jnp.float32)
    with lowering("fast"):
        primal = str(jax.make_jaxpr(lambda x: ops.max_pool(x, 2))(x))
        grad = str(jax.make_jaxpr(jax.grad(lambda x: ops.max_pool(x, 2).sum()))(x))
        got = ops.max_pool(x, 2), jax.grad(lambda x: ops.max_pool(x, 2).sum())(x)
    assert "reduce_window_max" in primal
    assert "select_and_scatter" not in grad and "reduce_window" not in grad
    with lowering("lax"):
        want = ops.max_pool(x, 2), jax.grad(lambda x: ops.max_pool(x, 2).sum())(x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_native_pool_rule_takes_few_channels_in_float32():
    """The native passes for float32 pools of up to 16 channels where the library loads; the
    reshape for more channels, other dtypes and without the library."""
    from jaxcnn.ops import _fast_pool

    def pick(channels, dtype=jnp.float32):
        return pool_lowering("max", (8, 8, 8, channels), (2, 2), (2, 2), ((0, 0),) * 2,
                             (1, 1), dtype, backend="cpu")

    assert pick(16) is (_fast_pool.native_max if _native.available() else _fast_pool.reshape_max)
    assert pick(32) is _fast_pool.reshape_max
    assert pick(8, jnp.bfloat16) is _fast_pool.reshape_max
    assert pool_lowering("min", (8, 8, 8, 4), (2, 2), (2, 2), ((0, 0),) * 2, (1, 1),
                         jnp.float32, backend="cpu") is (
        _fast_pool.native_min if _native.available() else _fast_pool.reshape_min)


def test_overlapping_pool_keeps_lax():
    shape = (1, 8, 8, 1)
    assert pool_lowering("max", shape, (3, 3), (2, 2), ((0, 0),) * 2, (1, 1), jnp.float32,
                         backend="cpu") is None
    assert pool_lowering("max", shape, (2, 2), (2, 2), ((0, 0),) * 2, (2, 2), jnp.float32,
                         backend="cpu") is None
    assert pool_lowering("max", shape, (2, 2), (2, 2), ((0, 0),) * 2, (1, 1), jnp.float32,
                         backend="cpu") is not None


# ----------------------------------------------------------------------------- convolution

def _conv_cases():
    """A seeded grid: rank, channels, kernel, stride, padding, dilation, dtype."""
    rng = np.random.default_rng(42)
    cases = []
    for i in range(16):
        n = (1, 2, 3, 1, 2)[i % 5]
        size = tuple(int(s) for s in rng.integers(5, 9 if n < 3 else 7, size=n))
        k = tuple(int(v) for v in rng.integers(1, 4, size=n))
        stride = tuple(int(v) for v in rng.integers(1, 4, size=n))
        dilation = tuple(int(v) for v in rng.integers(1, 3, size=n)) if i % 4 == 1 else (1,) * n
        pads = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, size=(n, 2)))
        c_in = int(rng.choice([1, 2, 3, 5]))
        dtype = "bfloat16" if i % 7 == 5 else "float32"
        cases.append(((2,) + size + (c_in,), k + (c_in, 3), stride, pads, dilation, dtype))
    return cases


PLANS = [ConvPlan("native", "native", "native"), ConvPlan("native", "interior", "patches"),
         ConvPlan("patches", "interior", "patches"), ConvPlan("lax", "interior", "lax"),
         ConvPlan("patches", "patches", "lax"), ConvPlan("lax", "interior_patches", "patches"),
         ConvPlan("lax", "interior", "patches", "patches"),
         ConvPlan("direct", "direct", "patches", "direct")]
PLANS_3D = [ConvPlan("fold", "fold", "fold"), ConvPlan("fold", "interior", "patches"),
            ConvPlan("fold", "fold", "lax", "patches"),
            ConvPlan("fold_out", "fold_out", "fold_out"), ConvPlan("fold_out", "fold", "lax")]


@pytest.mark.parametrize("x_shape, w_shape, stride, pads, dilation, dtype", _conv_cases())
def test_conv_plans_equal_lax(x_shape, w_shape, stride, pads, dilation, dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=x_shape), dtype)
    w = jnp.asarray(rng.normal(size=w_shape), dtype)
    plans = [LAX_PLAN] + PLANS + (PLANS_3D if len(x_shape) == 5 else [])

    @jax.jit  # one compilation for all plans
    def run(x, w):
        conv = lambda x, w, plan: planned_conv(x, w, plan, stride, pads, dilation)  # noqa
        # Differentiated (the training forward) and not (inference).
        return [_value_and_grads(lambda x, w: conv(x, w, plan), (x, w)) + (conv(x, w, plan),)
                for plan in plans]

    want, *got = run(x, w)
    for g in got:
        _close(g, want, dtype)


def test_conv_op_fast_equals_lax_and_first_layer():
    """Through ops.conv (bias, string padding, padding_mode), and the kernel gradient alone
    (the first-layer case, where the input gradient is dead code)."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(3, 9, 7, 1)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 1, 4)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(4,)), jnp.float32)
    for kw in (dict(stride=2, padding="SAME"), dict(padding=1, padding_mode="reflect")):
        f = lambda w, b: ops.conv(x, w, b, **kw)  # noqa: E731
        with lowering("lax"):
            want = _value_and_grads(f, (w, b))
        with lowering("fast"):
            got = _value_and_grads(jax.jit(f), (w, b))
        _close(got, want, jnp.float32)


def test_inference_lowering_runs_only_undifferentiated():
    """Not differentiated the forward primitive runs ``inference``; under differentiation
    ``forward``: lax conv in one, patches matmul in the other."""
    x, w = jnp.ones((2, 6, 6, 1)), jnp.ones((3, 3, 1, 2))
    plan = ConvPlan("patches", "lax", "patches", "lax")
    conv = lambda x, w: planned_conv(x, w, plan, (1, 1), ((1, 1),) * 2, (1, 1))  # noqa: E731
    primal = jax.jit(conv).lower(x, w).as_text()
    forward = jax.jit(lambda x, w: jax.vjp(conv, x, w)[0]).lower(x, w).as_text()
    assert "convolution" in primal and "dot_general" not in primal
    assert "dot_general" in forward and "convolution" not in forward
    with lowering("lax"):
        want = conv(x, w)
    np.testing.assert_allclose(conv(x, w), want, rtol=1e-6)
    np.testing.assert_allclose(jax.vjp(conv, x, w)[0], want, rtol=1e-6)


# Values that an identity written as arithmetic (e.g. x / (x * 0 + 1)) would change.
SPECIAL = [-0.0, 1.5, -3.25e-30, 3.4e38, np.inf, -np.inf, np.nan, 1e-45, -1e-40]


def test_input_computed_once_is_exactly_the_identity():
    """The barrier appears under differentiation only, and changes no value: inf, nan,
    -0.0 and denormals included, in the value, the tangent and the gradient."""
    x = jnp.asarray([SPECIAL], jnp.float32)
    assert "optimization_barrier" not in str(jax.make_jaxpr(input_computed_once)(x))
    assert "optimization_barrier" in str(jax.make_jaxpr(
        lambda x: jax.jvp(input_computed_once, (x,), (x,)))(x))
    for f in (input_computed_once, jax.jit(input_computed_once)):
        y, t = jax.jvp(f, (x,), (x[:, ::-1],))
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(t, x[:, ::-1])
        assert np.signbit(y[0, 0])
        np.testing.assert_array_equal(jax.vjp(f, x)[1](x)[0], x)


def test_cotangent_computed_once_is_exactly_the_identity():
    y = jnp.asarray([SPECIAL], jnp.float32)
    t = y[:, ::-1]
    assert "optimization_barrier" not in str(jax.make_jaxpr(cotangent_computed_once)(y))
    for f in (cotangent_computed_once, jax.jit(cotangent_computed_once)):
        out, t_out = jax.jvp(f, (y,), (t,))
        np.testing.assert_array_equal(out, y)
        np.testing.assert_array_equal(t_out, t)
        np.testing.assert_array_equal(jax.vjp(f, y)[1](t)[0], t)
        assert np.signbit(jax.vjp(f, y)[1](y)[0][0, 0])


def test_conv_gradient_keeps_inf_and_equals_lax():
    """An inf in the input of a conv layer gives the gradients lax gives, not NaN."""
    x = jnp.zeros((1, 5, 5, 1)).at[0, 2, 2, 0].set(jnp.inf)
    w = jnp.ones((3, 3, 1, 2))
    f = lambda w, x: jnp.sum(ops.conv(x, w, padding=1)[..., :1])  # noqa: E731
    for rules in (None, LAX_SIDE_RULES):
        with lowering("auto", rules=rules):
            got = jax.grad(f)(w, x)
        with lowering("lax"):
            want = jax.grad(f)(w, x)
        np.testing.assert_array_equal(got, want)


def test_conv_3d_computes_its_cotangent_once_and_equals_lax():
    """Without the native backend the 3-d rule puts the output's cotangent behind a
    barrier: same values and gradients (x, w, bias) as lax. With it, no barrier."""
    rng = np.random.default_rng(11)
    x = jnp.asarray(rng.normal(size=(2, 6, 5, 4, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 2, 3, 4)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(4,)), jnp.float32)
    ct = jnp.asarray(rng.normal(size=(2, 4, 3, 3, 4)), jnp.float32)
    f = lambda x, w, b: jnp.sum(jnp.maximum(ops.conv(x, w, b), 0) * ct)  # noqa: E731
    with lowering("lax"):
        want = _value_and_grads(f, (x, w, b))
    barriers = lambda: str(jax.make_jaxpr(jax.grad(f))(x, w, b)).count(  # noqa: E731
        "optimization_barrier")
    with lowering("auto", rules=[r for r in LAX_SIDE_RULES
                                 if r.decision != "conv.cotangent_once"]):
        without = barriers()
    with lowering("auto", rules=LAX_SIDE_RULES):
        if jax.default_backend() == "cpu":  # one more barrier: the cotangent's
            assert barriers() == without + 1
        got = _value_and_grads(jax.jit(f), (x, w, b))
    _close(got, want, jnp.float32)
    plan = conv_plan(x.shape, w.shape, (1,) * 3, ((0, 0),) * 3, (1,) * 3, 1, jnp.float32,
                     backend="cpu")
    if plan.kernel_grad == "native":
        assert not plan.cotangent_once and not plan.input_once


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_conv_bias_gradient_by_matmul_equals_autodiff(dtype):
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(2, 5, 4, 6, 3)), dtype)
    w = jnp.asarray(rng.normal(size=(2, 3, 2, 3, 4)), dtype)
    b = jnp.asarray(rng.normal(size=(4,)), jnp.float32)
    f = lambda x, w, b: ops.conv(x, w, b, padding=1)  # noqa: E731
    results = {}
    for mode in ("fast", "lax"):
        with lowering(mode):  # one compile per mode (a new function: jit caches by function)
            results[mode] = jax.jit(lambda *a: _value_and_grads(f, a))(x, w, b)
    _close(results["fast"], results["lax"], dtype)


@pytest.mark.parametrize("shape, dtype", [
    ((7, 3), "float32"),  # 7 rows: no blocks, one product
    ((64, 5), "float32"),  # one block of 64 rows: one product
    ((3, 64, 4), "float32"),  # 192 rows: 64 blocks of 3
    ((6, 5, 2), "float32"),  # 30 rows: 2 blocks of 15
    ((4, 8, 8, 16), "bfloat16"),  # accumulated in float32
])
def test_channel_sum_equals_numpy(shape, dtype):
    x = np.random.default_rng(3).normal(size=shape)
    got = channel_sum(jnp.asarray(x, dtype))
    assert got.dtype == jnp.float32 and got.shape == (shape[-1],)
    want = np.asarray(jnp.asarray(x, dtype), np.float64).reshape(-1, shape[-1]).sum(0)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-4)


BN_CASES = [((6, 3), True, True, "float32"), ((2, 5, 4), True, False, "float32"),
            ((2, 4, 4, 3), False, True, "float32"), ((2, 3, 3, 3, 2), True, True, "bfloat16")]


@pytest.mark.parametrize("impl", ["matmul", "native"])
@pytest.mark.parametrize("shape, with_scale, with_bias, dtype", BN_CASES)
def test_batch_norm_sums_equal_autodiff_reference(shape, with_scale, with_bias, dtype, impl):
    """Training batch norm with its sums by matrix products or natively (its hand-written
    JVP and gradient) equals the lax formula differentiated by JAX."""
    if impl == "native" and not (_native.available() and dtype == "float32"):
        pytest.skip("the native sums take float32 with the library built")
    rng = np.random.default_rng(5)
    c = shape[-1]
    x = jnp.asarray(rng.normal(size=shape) * 2 + 0.5, dtype)
    scale = jnp.asarray(rng.normal(size=(c,)), jnp.float32) if with_scale else None
    bias = jnp.asarray(rng.normal(size=(c,)), jnp.float32) if with_bias else None
    mean, var = jnp.zeros((c,), jnp.float32), jnp.ones((c,), jnp.float32)

    def f(x, scale, bias):
        y, m, v = ops.batch_norm(x, scale, bias, mean, var, train=True)
        return y, m, v

    def values_and_grads(x, scale, bias):
        (y, m, v), vjp = jax.vjp(f, x, scale, bias)
        ct = jnp.asarray(np.random.default_rng(1).normal(size=y.shape), y.dtype)
        grads = vjp((ct, jnp.zeros_like(m), jnp.zeros_like(v)))
        return (y, m, v) + tuple(g for g in grads if g is not None)

    only = tuple(r for r in _lowering.RULES if r.decision != "norm.batch" or r.choice == impl)

    def run(mode):
        with lowering(mode, only):  # one compile per mode (a new function: jit caches by it)
            fn = jax.jit(lambda *a: values_and_grads(*a)).lower(x, scale, bias).compile()
        assert ("jaxcnn_native_norm" in fn.as_text()) == (mode == "fast" and impl == "native")
        return fn(x, scale, bias)

    _close(run("fast"), run("lax"), dtype)


@pytest.mark.parametrize("in_shape", [(6, 3), (4, 4, 3), (3, 3, 3, 3)], ids=["1d", "2d", "3d"])
def test_forward_mode_through_batch_norm_in_train_mode_equals_lax(in_shape):
    """jvp, jacfwd, the Hessian and linearize of a model with a training batch norm run by
    default (the matrix-product batch norm, a custom JVP) and equal the lax reference."""
    model = jc.serial(jc.conv(3, 3, padding=1), jc.batch_norm(), jc.tanh(), jc.flatten(),
                      jc.dense(2))
    _, params, state = model.init(jax.random.key(0), in_shape)
    x = jax.random.normal(jax.random.key(1), (3,) + in_shape) * 2 + 1
    ones = jax.tree.map(jnp.ones_like, params)

    def apply(p, x):
        return model.apply(p, state, x, train=True)[0]

    def run(p, x):  # traced once per mode: every function it transforms is new
        f = lambda p, x: apply(p, x)  # noqa: E731
        loss = lambda p: jnp.sum(f(p, x) ** 2)  # noqa: E731
        y, lin = jax.linearize(lambda x: f(p, x), x)
        return {"jvp_params": jax.jvp(loss, (p,), (ones,)),
                "jvp_x": jax.jvp(lambda x: f(p, x), (x,), (jnp.sin(x),)),
                "jacfwd": jax.jacfwd(lambda x: f(p, x))(x),
                "hessian": jax.hessian(loss)(p),
                "linearize": (y, lin(jnp.cos(x)))}

    fast = "name=_batch_norm_train"  # the matrix-product batch norm in a jaxpr
    assert fast in str(jax.make_jaxpr(lambda p, x: apply(p, x))(params, x))
    got = jax.jit(lambda p, x: run(p, x))(params, x)
    with lowering("lax"):
        assert fast not in str(jax.make_jaxpr(lambda p, x: apply(p, x))(params, x))
        want = jax.jit(lambda p, x: run(p, x))(params, x)
    for name in want:
        leaves = jax.tree.leaves(got[name])
        assert len(leaves) == len(jax.tree.leaves(want[name]))
        _close(leaves, jax.tree.leaves(want[name]), "float32")


# ----------------------------------------------------------------------------- selection

FAKE = (Rule("conv.forward", "patches", lambda f: f["float"], lambda f: f["c_in"] == 1),
        Rule("conv.forward", "fold", lambda f: f["n"] == 3, lambda f: True, ("gpu",)),
        Rule("conv.input_grad", "interior", lambda f: True, lambda f: f["max_stride"] > 1),
        Rule("pool.max", "reshape", lambda f: f["non_overlapping"], lambda f: False))


def test_choose_follows_rule_table_mode_and_backend():
    f = {"float": True, "c_in": 1, "n": 3, "max_stride": 1, "non_overlapping": True}
    assert choose("conv.forward", f, "cpu", FAKE, "auto") == "patches"
    assert choose("conv.forward", dict(f, c_in=2), "cpu", FAKE, "auto") == "lax"
    assert choose("conv.forward", dict(f, c_in=2), "gpu", FAKE, "auto") == "fold"
    # "fast" ignores preferences and backends, not applicability; the first rule wins.
    assert choose("conv.forward", dict(f, c_in=2), "cpu", FAKE, "fast") == "patches"
    assert choose("conv.forward", dict(f, float=False, c_in=2), "cpu", FAKE, "fast") == "fold"
    assert choose("conv.forward", dict(f, float=False, n=2), "cpu", FAKE, "fast") == "lax"
    assert choose("pool.max", f, "cpu", FAKE, "auto") == "lax"
    assert choose("pool.max", f, "cpu", FAKE, "fast") == "reshape"
    assert choose("conv.forward", f, "cpu", FAKE, "lax") == "lax"
    assert choose("conv.kernel_grad", f, "cpu", FAKE, "fast") == "lax"


def test_conv_plan_and_pool_lowering_use_given_rules():
    args = ((8, 16, 16, 1), (3, 3, 1, 4), (2, 2), ((1, 1),) * 2, (1, 1))
    with lowering("auto", rules=FAKE):
        assert conv_plan(*args, 1, jnp.float32, backend="cpu")[:4] == (
            "patches", "interior", "lax", "lax")
        assert is_lax(conv_plan(*args, 1, jnp.float32, backend="tpu"))
        assert pool_lowering("max", (1, 4, 4, 1), (2, 2), (2, 2), ((0, 0),) * 2, (1, 1),
                             jnp.float32) is None
    with lowering("fast", rules=FAKE):
        assert pool_lowering("max", (1, 4, 4, 1), (2, 2), (2, 2), ((0, 0),) * 2, (1, 1),
                             jnp.float32) is not None
    # Grouped convolutions: native or lax only; explicit precision: lax only.
    with lowering("fast"):
        assert set(conv_plan(*args, 2, jnp.float32)[:3]) <= {"native", "lax"}
        assert set(conv_plan(*args, 2, jnp.float32, rules=LAX_SIDE_RULES)[:3]) == {"lax"}
    assert conv_plan(*args, 1, jnp.float32, precision="highest") == LAX_PLAN


def _plans(rules):
    ones3, zeros3 = (1,) * 3, ((0, 0),) * 3
    shapes = {
        "voxnet_first": ((32, 32, 32, 32, 1), (5, 5, 5, 1, 32), (2,) * 3, zeros3, ones3),
        "voxnet_second": ((32, 14, 14, 14, 32), (3, 3, 3, 32, 32), ones3, zeros3, ones3),
        "lenet_first": ((128, 28, 28, 1), (5, 5, 1, 6), (1, 1), ((2, 2),) * 2, (1, 1)),
        "lenet_second": ((128, 14, 14, 6), (5, 5, 6, 16), (1, 1), ((0, 0),) * 2, (1, 1)),
        "resnet_stem": ((128, 32, 32, 3), (3, 3, 3, 16), (1, 1), ((1, 1),) * 2, (1, 1)),
        "strided": ((128, 32, 32, 16), (3, 3, 16, 32), (2, 2), ((1, 1),) * 2, (1, 1)),
        "strided_1d": ((128, 64, 16), (3, 16, 32), (2,), ((1, 1),), (1,)),
    }
    return {k: conv_plan(*v, 1, jnp.float32, backend="cpu", rules=rules)
            for k, v in shapes.items()}


def test_default_rules_pick_measured_fast_paths_on_cpu():
    with lowering("auto"):
        plans = _plans(LAX_SIDE_RULES)  # without the native library
        assert plans["voxnet_first"][:4] == ("fold", "fold", "fold", "fold")
        assert plans["voxnet_second"][:4] == ("fold_out", "fold", "fold_out", "fold_out")
        assert plans["lenet_first"][:4] == ("direct", "lax", "lax", "direct")
        assert plans["lenet_second"][:4] == ("lax", "patches", "lax", "lax")
        # Patches pay in training only (shared with the kernel gradient): inference is lax.
        assert plans["resnet_stem"][:4] == ("patches", "lax", "patches", "lax")
        assert plans["strided"][:4] == ("lax", "patches", "lax", "lax")
        assert plans["strided_1d"][:4] == ("lax", "interior", "lax", "lax")
        for plan in plans.values():  # lax kernel gradients read a stored input
            assert plan.input_once and plan.bias_grad == ("matmul" if plan.forward.startswith(
                "fold") else "lax")
        assert plans["voxnet_second"].cotangent_once and not plans["strided"].cotangent_once
        if _native.available():  # every pass native, no barrier needed
            for plan in _plans(None).values():
                assert plan[:4] == ("native",) * 4
                assert not plan.input_once and not plan.cotangent_once
        assert is_lax(conv_plan((8, 16, 16, 16), (3, 3, 16, 16), (1, 1), ((1, 1),) * 2, (1, 1),
                                1, jnp.float32, backend="gpu"))
        assert _lowering.decide("norm.batch", jnp.bfloat16, "cpu", native=True) == "matmul"
        assert _lowering.decide("norm.batch", jnp.float32, "cpu", native=True) == "native"
        assert _lowering.decide("norm.batch", jnp.float32, "cpu", native=False) == "matmul"
        assert _lowering.decide("norm.batch", jnp.float32, "gpu", native=True) == "lax"
        # float64: lax-side rules only (oneDNN runs float32, and bfloat16 where the CPU has
        # bfloat16 instructions)
        args = ((8, 16, 16, 16), (3, 3, 16, 16), (1, 1), ((1, 1),) * 2, (1, 1), 1)
        assert "native" not in conv_plan(*args, jnp.float64, backend="cpu")
        plan16 = conv_plan(*args, jnp.bfloat16, backend="cpu")
        assert ("native" in plan16) == _native.bf16_available()
    with lowering("lax"):
        assert is_lax(_plans(None)["voxnet_second"])
        assert _lowering.decide("norm.batch", jnp.float32, "cpu") == "lax"


def test_choose_refuses_unknown_decisions():
    with pytest.raises(ValueError, match=r"choose: decision must be one of 'conv.inference'.*"
                                         r"got 'conv.kernel_gard'"):
        choose("conv.kernel_gard", {"float": True}, "cpu")


def test_forward_mode_works_with_every_lowering():
    """The passes are primitives with bilinear JVPs: jvp works whatever the lowering."""
    x, w = jnp.ones((2, 6, 6, 1)), jnp.ones((3, 3, 1, 2))
    f = lambda x: jnp.sum(ops.max_pool(ops.conv(x, w), 2))  # noqa: E731
    for mode in ("fast", "auto", "lax"):
        with lowering(mode):
            assert float(jax.jvp(f, (x,), (x,))[1]) == 4 * 2 * 2 * 9.0


def test_mode_from_context_and_environment(monkeypatch):
    monkeypatch.setenv(_lowering.ENV_VAR, "LAX")
    assert _lowering.mode() == "lax"
    with lowering("fast"):
        assert _lowering.mode() == "fast"
        with lowering("auto"):
            assert _lowering.mode() == "auto"
        assert _lowering.mode() == "fast"
    assert _lowering.mode() == "lax"
    monkeypatch.delenv(_lowering.ENV_VAR)
    assert _lowering.mode() == "auto"


def test_mode_errors(monkeypatch):
    with pytest.raises(ValueError, match="lowering: mode must be one of 'auto', 'lax', 'fast'"):
        with lowering("fastest"):
            pass
    monkeypatch.setenv(_lowering.ENV_VAR, "xla")
    with pytest.raises(ValueError, match=r"\$JAXCNN_LOWERING must be one of"):
        ops.max_pool(jnp.ones((1, 4, 4, 1)), 2)
