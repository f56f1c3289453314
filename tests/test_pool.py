"""Pooling ops and layers against naive numpy loops, hand-computed cases and flax."""

import functools
import itertools
import math

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcnn
from jaxcnn import ops

TOL32 = dict(rtol=2e-5, atol=2e-5)


# ----------------------------------------------------------------------------- references


def ref_out_len(size, lo, hi, k, s, d, ceil):
    """PyTorch's documented output length, with its ceil_mode rule."""
    eff = d * (k - 1) + 1
    o = (math.ceil if ceil else math.floor)((size + lo + hi - eff) / s) + 1
    if ceil and (o - 1) * s >= size + lo:
        o -= 1
    return o


def ref_pool(x, kind, k, s, pads, d=None, ceil=False, cip=True, dov=None, p=None):
    """Explicit loops over output positions and window offsets (x: (N, *spatial, C))."""
    x = np.asarray(x, np.float64)
    sp = x.shape[1:-1]
    d = d or (1,) * len(sp)
    outs = [ref_out_len(*a, ceil) for a in zip(sp, *zip(*pads), k, s, d)]
    y = np.zeros((x.shape[0], *outs, x.shape[-1]))
    idx = np.zeros(y.shape, np.int64)
    for o in itertools.product(*map(range, outs)):
        vals, flat, in_padded = [], [], 0
        for j in itertools.product(*map(range, k)):
            pos = [oi * si - lo + ji * di for oi, si, (lo, _), ji, di in zip(o, s, pads, j, d)]
            if all(0 <= q < n for q, n in zip(pos, sp)):
                vals.append(x[(slice(None), *pos, slice(None))])
                flat.append(np.ravel_multi_index(pos, sp))
                in_padded += 1
            elif all(q < n + hi for q, n, (_, hi) in zip(pos, sp, pads)):
                in_padded += 1  # explicit padding (zero for sums, ignored by max/min)
            # else: the region ceil_mode adds, never counted
        v = np.stack(vals) if vals else np.full((1,) + y.shape[:1] + y.shape[-1:], -np.inf)
        at = (slice(None), *o, slice(None))
        if kind == "max":
            y[at] = v.max(0)
            idx[at] = np.asarray(flat)[v.argmax(0)] if flat else -1
        elif kind == "min":
            y[at] = v.min(0)
        elif kind == "sum":
            y[at] = v.sum(0)
        elif kind == "avg":
            y[at] = v.sum(0) / (dov or (in_padded if cip else len(vals)))
        elif kind == "lp":  # PyTorch: avg_pool(x^p) * prod(k), then ^(1/p)
            y[at] = ((v ** p).sum(0) / in_padded * math.prod(k)) ** (1 / p)
    return y, idx


def ref_adaptive(x, out, kind):
    x = np.asarray(x, np.float64)
    sp = x.shape[1:-1]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for o in itertools.product(*map(range, out)):
        box = tuple(slice(math.floor(i * n / m), math.ceil((i + 1) * n / m))
                    for i, n, m in zip(o, sp, out))
        v = x[(slice(None), *box, slice(None))].reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None), *o, slice(None))] = v.mean(1) if kind == "avg" else v.max(1)
    return y


# ----------------------------------------------------------------------------- random grid


def _random_config(rng, n, *, dilation, padding):
    while True:
        sp = tuple(int(v) for v in rng.integers(1, (8, 6, 5)[n - 1], n))
        k = tuple(int(v) for v in rng.integers(1, 4, n))
        s = tuple(int(v) for v in rng.integers(1, 4, n))
        d = tuple(int(v) for v in rng.integers(1, 3, n)) if dilation else (1,) * n
        p = tuple(int(rng.integers(0, kk // 2 + 1)) if padding else 0 for kk in k)
        ceil = bool(rng.integers(2))
        pads = tuple((q, q) for q in p)
        if min(ref_out_len(*a, ceil) for a in zip(sp, p, p, k, s, d)) >= 1:
            x = rng.normal(size=(2,) + sp + (2,)).astype(np.float32)
            y, _ = ref_pool(x, "max", k, s, pads, d, ceil)
            # Windows in the padding alone (possible with dilation) are tested apart.
            if np.isfinite(y).all():
                return x, k, s, p, pads, d, ceil


def _grid(kind, count=12):
    rng = np.random.default_rng({"max": 0, "avg": 1, "lp": 2}[kind])
    return [_random_config(rng, 1 + i % 3, dilation=kind == "max", padding=kind != "lp")
            for i in range(count)]


@pytest.mark.parametrize("cfg", _grid("max", 10))
def test_max_min_sum_pool_match_naive_loops(cfg):
    x, k, s, p, pads, d, ceil = cfg
    args = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    run = jax.jit(lambda v: (ops.max_pool(v, **args, return_indices=True),
                             ops.min_pool(v, **args), ops.sum_pool(v, **args)))
    (y, idx), y_min, y_sum = run(jnp.asarray(x))
    ref, ref_idx = ref_pool(x, "max", k, s, pads, d, ceil)
    np.testing.assert_allclose(y, ref, **TOL32)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(y_min, ref_pool(x, "min", k, s, pads, d, ceil)[0], **TOL32)
    np.testing.assert_allclose(y_sum, ref_pool(x, "sum", k, s, pads, d, ceil)[0], **TOL32)


@pytest.mark.parametrize("cfg", _grid("avg", 10))
def test_avg_pool_matches_naive_loop(cfg):
    x, k, s, p, pads, _, ceil = cfg
    rng = np.random.default_rng(x.size)
    cip = bool(rng.integers(2))
    dov = None if rng.random() < 0.7 else int(rng.integers(1, 5))
    y = ops.avg_pool(jnp.asarray(x), k, s, p, ceil, cip, dov)
    np.testing.assert_allclose(y, ref_pool(x, "avg", k, s, pads, None, ceil, cip, dov)[0], **TOL32)


@pytest.mark.parametrize("cfg", _grid("lp", 6))
def test_lp_pool_matches_naive_loop(cfg):
    x, k, s, _, pads, _, ceil = cfg
    x = np.abs(x) + 0.1
    run = jax.jit(lambda v: [ops.lp_pool(v, p, k, s, ceil) for p in (1, 2.0, 3.5)])
    for p, y in zip((1, 2.0, 3.5), run(jnp.asarray(x))):
        np.testing.assert_allclose(y, ref_pool(x, "lp", k, s, pads, None, ceil, p=p)[0],
                                   rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- hand cases


def test_hand_computed_4x4():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    y, idx = ops.max_pool(x, 2, return_indices=True)
    np.testing.assert_array_equal(y[0, ..., 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(idx[0, ..., 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(ops.avg_pool(x, 2)[0, ..., 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(ops.min_pool(x, 2)[0, ..., 0], [[0, 2], [8, 10]])
    np.testing.assert_array_equal(ops.sum_pool(x, 2)[0, ..., 0], [[10, 18], [42, 50]])
    np.testing.assert_array_equal(ops.max_pool(x, 3, 1, padding=1)[0, ..., 0],
                                  [[5, 6, 7, 7], [9, 10, 11, 11], [13, 14, 15, 15],
                                   [13, 14, 15, 15]])
    np.testing.assert_array_equal(ops.min_pool(x, 2, 2, padding=1)[0, ..., 0],
                                  [[0, 1, 3], [4, 5, 7], [12, 13, 15]])
    np.testing.assert_array_equal(ops.max_pool(x, 2, 1, dilation=2)[0, ..., 0],
                                  [[10, 11], [14, 15]])


def test_hand_computed_1d_ceil_mode_and_divisors():
    # Values checked against torch.nn.functional.avg_pool1d / lp_pool1d.
    x = jnp.arange(1.0, 6.0).reshape(1, 5, 1)
    avg = functools.partial(ops.avg_pool, x, ceil_mode=True)
    np.testing.assert_allclose(avg(2, 2)[0, :, 0], [1.5, 3.5, 5.0])
    np.testing.assert_allclose(avg(3, 2, 1)[0, :, 0], [1.0, 3.0, 3.0])
    np.testing.assert_allclose(avg(3, 2, 1, count_include_pad=False)[0, :, 0], [1.5, 3.0, 4.5])
    np.testing.assert_allclose(avg(2, 2, divisor_override=3)[0, :, 0], [1.0, 7 / 3, 5 / 3])
    np.testing.assert_allclose(ops.lp_pool(x, 2, 2, 2, ceil_mode=True)[0, :, 0],
                               [5 ** 0.5, 5.0, 50 ** 0.5], rtol=1e-6)
    np.testing.assert_array_equal(ops.max_pool(x, 2, ceil_mode=True)[0, :, 0], [2, 4, 5])
    # The last window must start inside the input or the low padding: 3 outputs, not 4.
    assert ops.max_pool(jnp.ones((1, 6, 1)), 2, 2, padding=1, ceil_mode=True).shape == (1, 4, 1)
    assert ops.max_pool(jnp.ones((1, 5, 1)), 2, 2, padding=1, ceil_mode=True).shape == (1, 3, 1)


def test_ties_pick_the_first_index_and_padding_is_never_chosen():
    y, idx = ops.max_pool(jnp.ones((1, 4, 1)), 2, 1, padding=1, return_indices=True)
    np.testing.assert_array_equal(y[0, :, 0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(idx[0, :, 0], [0, 0, 1, 2, 3])
    x = jnp.full((1, 3, 1), -jnp.inf)
    y, idx = ops.max_pool(x, 3, 1, padding=1, return_indices=True)
    np.testing.assert_array_equal(idx[0, :, 0], [0, 0, 1])


def test_nan_propagates_and_its_last_index_wins():
    # As torch.nn.functional.max_pool1d: values [nan, nan], indices [3, 3].
    x = jnp.array([1.0, jnp.nan, 3.0, jnp.nan, 2.0]).reshape(1, 5, 1)
    y, idx = ops.max_pool(x, 4, 1, return_indices=True)
    assert np.isnan(y).all()
    np.testing.assert_array_equal(idx[0, :, 0], [3, 3])


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_dtypes_are_kept(dtype):
    x = jnp.arange(16.0, dtype=dtype).reshape(1, 4, 4, 1)
    for y in (ops.max_pool(x, 2), ops.avg_pool(x, 3, 2, 1, ceil_mode=True), ops.lp_pool(x, 2, 2),
              ops.adaptive_avg_pool(x, 3), ops.global_avg_pool(x)):
        assert y.dtype == dtype
    np.testing.assert_array_equal(ops.avg_pool(x, 2)[0, ..., 0].astype(np.float32),
                                  [[2.5, 4.5], [10.5, 12.5]])


def test_integer_inputs_for_max_and_min():
    x = np.random.default_rng(3).integers(-50, 50, (2, 5, 4, 3)).astype(np.int32)
    y, idx = ops.max_pool(jnp.asarray(x), 3, 2, 1, return_indices=True)
    assert y.dtype == jnp.int32
    ref, ref_idx = ref_pool(x, "max", (3, 3), (2, 2), ((1, 1),) * 2)
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(ops.min_pool(jnp.asarray(x), 2, 1, 1),
                                  ref_pool(x, "min", (2, 2), (1, 1), ((1, 1),) * 2)[0])
    np.testing.assert_array_equal(ops.global_max_pool(jnp.asarray(x)), x.max((1, 2)))
    np.testing.assert_array_equal(ops.adaptive_max_pool(jnp.asarray(x), 2),
                                  ref_adaptive(x, (2, 2), "max"))


def test_windows_in_padding_alone_give_minus_inf():
    # Dilation can put a whole window in the padding (PyTorch gives -inf too).
    y = ops.max_pool(jnp.arange(1.0, 4.0).reshape(1, 1, 3, 1), (2, 1), 1, (1, 0), (2, 1))
    np.testing.assert_array_equal(y[0, 0, :, 0], [-np.inf] * 3)


# ----------------------------------------------------------------------------- flax


@pytest.mark.parametrize("n,window,strides,padding", [
    (1, (3,), (2,), "VALID"), (2, (2, 3), (1, 2), ((1, 1), (0, 1))), (2, (3, 3), (2, 2), "SAME"),
    (3, (2, 2, 2), (1, 2, 1), ((1, 0), (1, 1), (0, 1))), (2, (3, 2), (3, 1), "SAME")])
def test_matches_flax(n, window, strides, padding):
    x = jnp.asarray(np.random.default_rng(n).normal(size=(2,) + (7, 6, 5)[:n] + (3,)),
                    jnp.float32)
    np.testing.assert_allclose(ops.max_pool(x, window, strides, padding),
                               fnn.max_pool(x, window, strides, padding), **TOL32)
    for cip in (True, False):
        with jax.numpy_dtype_promotion("standard"):  # flax's avg_pool divides by an int32 count
            want = fnn.avg_pool(x, window, strides, padding, count_include_pad=cip)
        np.testing.assert_allclose(ops.avg_pool(x, window, strides, padding, count_include_pad=cip),
                                   want, **TOL32)


# ----------------------------------------------------------------------------- global, adaptive


@pytest.mark.parametrize("shape,out", [
    ((2, 7, 3), 3), ((2, 5, 3), (8,)), ((1, 6, 4, 2), (4, 3)), ((2, 5, 7, 2), (3, None)),
    ((1, 5, 4, 6, 2), (2, 3, 4)), ((1, 3, 4, 2, 1), (None, 2, 3)), ((2, 4, 4, 3), 1)])
def test_adaptive_pool_matches_bin_loop(shape, out):
    x = np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)
    sizes = tuple(s if o is None else o for s, o in
                  zip(shape[1:-1], out if isinstance(out, tuple) else (out,) * (len(shape) - 2)))
    run = jax.jit(lambda v: (ops.adaptive_avg_pool(v, out), ops.adaptive_max_pool(v, out)))
    for kind, y in zip(("avg", "max"), run(jnp.asarray(x))):
        np.testing.assert_allclose(y, ref_adaptive(x, sizes, kind), **TOL32)


def test_global_pools():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(ops.global_avg_pool(jnp.asarray(x)), x.mean((1, 2, 3)), **TOL32)
    np.testing.assert_array_equal(ops.global_max_pool(jnp.asarray(x)), x.max((1, 2, 3)))


# ----------------------------------------------------------------------------- max_unpool


@pytest.mark.parametrize("shape,k,s,p", [((2, 6, 3), 2, None, 0), ((1, 5, 7, 2), 3, 2, 1),
                                         ((1, 4, 5, 6, 2), 2, (2, 1, 2), 0)])
def test_max_unpool_inverts_max_pool(shape, k, s, p):
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    y, idx = ops.max_pool(jnp.asarray(x), k, s, p, return_indices=True)
    u = ops.max_unpool(y, idx, k, s, p, output_size=shape[1:-1])
    flat_x = x.reshape(shape[0], -1, shape[-1])
    flat_idx = np.asarray(idx).reshape(shape[0], -1, shape[-1])
    ref = np.zeros_like(flat_x)
    for b, i, c in np.ndindex(flat_idx.shape):
        j = flat_idx[b, i, c]
        ref[b, j, c] = flat_x[b, j, c]
    np.testing.assert_array_equal(u, ref.reshape(shape))
    np.testing.assert_array_equal(ops.max_unpool(y, idx, output_size=shape), u)


def test_max_unpool_default_size_and_dropped_indices():
    y, idx = ops.max_pool(jnp.arange(5.0).reshape(1, 5, 1), 2, return_indices=True)
    np.testing.assert_array_equal(ops.max_unpool(y, idx, 2)[0, :, 0], [0, 1, 0, 3])
    np.testing.assert_array_equal(ops.max_unpool(y, idx, 2, output_size=5)[0, :, 0],
                                  [0, 1, 0, 3, 0])
    bad = jnp.array([-1, 7]).reshape(1, 2, 1)
    np.testing.assert_array_equal(ops.max_unpool(y, bad, 2)[0, :, 0], [0, 0, 0, 0])


# ----------------------------------------------------------------------------- transforms

OPS = {
    "max": lambda x: ops.max_pool(x, (2, 3), (1, 2), 1, (2, 1), ceil_mode=True),
    "max_indices": lambda x: ops.max_pool(x, 2, 1, return_indices=True),
    "min": lambda x: ops.min_pool(x, 3, 2, 1, ceil_mode=True),
    "sum": lambda x: ops.sum_pool(x, 2, 1, (1, 0)),
    "avg": lambda x: ops.avg_pool(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "avg_override": lambda x: ops.avg_pool(x, 2, divisor_override=3),
    "lp": lambda x: ops.lp_pool(x, 2, 2, 2, ceil_mode=True),
    "global_avg": ops.global_avg_pool,
    "global_max": ops.global_max_pool,
    "adaptive_avg": lambda x: ops.adaptive_avg_pool(x, (3, 4)),
    "adaptive_max": lambda x: ops.adaptive_max_pool(x, (3, None)),
    "unpool": lambda x: ops.max_unpool(*ops.max_pool(x, 2, return_indices=True), 2),
}


def _distinct(shape, seed=0):
    """Values with gaps >> the finite-difference step (and positive, for lp_pool)."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(math.prod(shape)).reshape(shape) * 0.1 + 1.0)


@pytest.mark.parametrize("name", [n for n in OPS if n != "max_indices"])
def test_gradients(name):
    with jax.enable_x64(True):
        x = jnp.asarray(_distinct((2, 5, 6, 2)), jnp.float64)
        check_grads(jax.jit(OPS[name]), (x,), order=1, modes=["rev"], eps=1e-4)


def test_gradient_of_max_pool_routes_to_the_maximum():
    x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    g = jax.grad(lambda v: ops.max_pool(v, 2).sum())(x)
    np.testing.assert_array_equal(g[0, ..., 0], [[0, 0, 0, 0], [0, 1, 0, 1]] * 2)


@pytest.mark.parametrize("name", list(OPS))
def test_jit_and_vmap_match_eager(name):
    f = OPS[name]
    xs = jnp.asarray(np.random.default_rng(2).normal(size=(3, 2, 5, 6, 2)), jnp.float32)
    jitted = jax.jit(f)
    for got, want in zip(jax.tree.leaves(jitted(xs[0])), jax.tree.leaves(f(xs[0]))):
        np.testing.assert_allclose(got, want, **TOL32)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[jitted(x) for x in xs])
    for got, want in zip(jax.tree.leaves(jax.vmap(f)(xs)), jax.tree.leaves(stacked)):
        np.testing.assert_allclose(got, want, **TOL32)


# ----------------------------------------------------------------------------- layers

LAYERS = [
    (jaxcnn.max_pool(2), (8, 8, 3)), (jaxcnn.max_pool(3, 2, 1, ceil_mode=True), (9, 4)),
    (jaxcnn.max_pool((2, 1, 3), dilation=(1, 2, 1)), (5, 6, 7, 2)),
    (jaxcnn.max_pool(3, padding="SAME", stride=2), (7, 5, 1)),
    (jaxcnn.min_pool(2, 1, 1), (6, 2)),
    (jaxcnn.sum_pool((2, 2), padding=((1, 0), (0, 1))), (5, 5, 2)),
    (jaxcnn.avg_pool(3, 2, 1, ceil_mode=True, count_include_pad=False), (6, 6, 6, 1)),
    (jaxcnn.avg_pool(2, divisor_override=2), (6, 3)), (jaxcnn.lp_pool(2, 3, 2), (7, 7, 2)),
    (jaxcnn.global_avg_pool(), (4, 5, 6)), (jaxcnn.global_max_pool(), (4, 3, 2, 6)),
    (jaxcnn.adaptive_avg_pool((3, None)), (7, 5, 2)), (jaxcnn.adaptive_max_pool(2), (3, 3, 3, 1)),
]


@pytest.mark.parametrize("lay,in_shape", LAYERS)
def test_layer_init_shape_matches_apply(lay, in_shape):
    out_shape, params, state = lay.init(jax.random.key(0), in_shape)
    assert params == {} and state == {}
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2,) + in_shape) ** 2, jnp.float32)
    y, new_state = lay.apply(params, state, x, train=False)
    assert y.shape == (2,) + out_shape
    assert new_state == {}


def test_layer_equals_op():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 6, 3)), jnp.float32)
    y, _ = jaxcnn.avg_pool(3, 2, 1, count_include_pad=False).apply({}, {}, x, train=True)
    np.testing.assert_array_equal(y, ops.avg_pool(x, 3, 2, 1, count_include_pad=False))


# ----------------------------------------------------------------------------- errors

X2 = jnp.zeros((1, 4, 4, 2))
I2 = jnp.zeros((1, 2, 2, 2), jnp.int32)

OP_ERRORS = [
    (lambda: ops.max_pool(jnp.zeros((4, 4)), 2), ValueError, "max_pool: x rank must be 3, 4 or 5"),
    (lambda: ops.avg_pool(X2.astype(jnp.int32), 2), TypeError,
     "avg_pool: x dtype must be a floating dtype, got 'int32'"),
    (lambda: ops.max_pool(X2 > 0, 2), TypeError, "x dtype must be a floating or integer dtype"),
    (lambda: ops.global_avg_pool(X2.astype(jnp.int32)), TypeError, "global_avg_pool: x dtype"),
    (lambda: ops.max_pool(X2, 0), ValueError, r"max_pool: kernel_size must be >= 1, got 0"),
    (lambda: ops.max_pool(X2, (2, 2, 2)), ValueError,
     "kernel_size must be an int or a sequence of 2"),
    (lambda: ops.min_pool(X2, 2, stride=0), ValueError, "min_pool: stride must be >= 1"),
    (lambda: ops.sum_pool(X2, 2, dilation=0), ValueError, "sum_pool: dilation must be >= 1"),
    (lambda: ops.max_pool(X2, 2, padding=2), ValueError,
     r"max_pool: padding along spatial axis 0 must be at most half the kernel size \(1\)"),
    (lambda: ops.avg_pool(X2, 3, padding=((1, 1), (0, 2))), ValueError,
     r"avg_pool: padding along spatial axis 1 must be at most half the kernel size \(1\)"
     r", got \(0, 2\)"),
    (lambda: ops.max_pool(X2, 2, padding=-1), ValueError, "padding must be non-negative"),
    (lambda: ops.max_pool(X2, 2, padding="FULL"), ValueError, "padding must be an int, a tuple"),
    (lambda: ops.max_pool(X2, 5), ValueError,
     "max_pool: padded input size along spatial axis 0 must be >= the dilated kernel size 5"
     ", got 4"),
    (lambda: ops.max_pool(X2, 3, dilation=3, padding=1), ValueError,
     "padded input size along spatial axis 0 must be >= the dilated kernel size 7, got 6"),
    (lambda: ops.max_pool(X2, 6, 2, ceil_mode=True), ValueError,
     r"must be >= the dilated kernel size 6 minus stride - 1 \(5\), got 4"),
    (lambda: ops.max_pool(X2, 2, ceil_mode=1), TypeError, "max_pool: ceil_mode must be a bool"),
    (lambda: ops.max_pool(X2, 2, return_indices=None), TypeError, "return_indices must be a bool"),
    (lambda: ops.avg_pool(X2, 2, count_include_pad="yes"), TypeError, "count_include_pad must be"),
    (lambda: ops.avg_pool(X2, 2, divisor_override=0), ValueError,
     "avg_pool: divisor_override must be None or a positive int, got 0"),
    (lambda: ops.lp_pool(X2, 0, 2), ValueError, "lp_pool: norm_type must be a positive finite"),
    (lambda: ops.lp_pool(X2, float("inf"), 2), ValueError, "norm_type must be a positive finite"),
    (lambda: ops.max_unpool(X2[:, :2, :2], I2[:, :1]), ValueError,
     "max_unpool: indices shape must be"),
    (lambda: ops.max_unpool(X2[:, :2, :2], I2.astype(jnp.float32), 2), TypeError,
     "indices dtype must be an integer dtype"),
    (lambda: ops.max_unpool(X2[:, :2, :2], I2), ValueError,
     "max_unpool: kernel_size or output_size must be given"),
    (lambda: ops.max_unpool(X2[:, :2, :2], I2, 2, output_size=(6, 4)), ValueError,
     "output_size along spatial axis 0 must be strictly between 2 and 6 for this pooling, got 6"),
    (lambda: ops.max_unpool(X2[:, :2, :2], I2, output_size=(0, 4)), ValueError,
     "max_unpool: output_size must be >= 1"),
    (lambda: ops.max_unpool(X2[:, :1, :1], I2[:, :1, :1], 2, padding=1), ValueError,
     "max_unpool: output size must be positive along every spatial axis, got \\(0, 0\\)"),
    (lambda: ops.adaptive_avg_pool(X2, (2, 2, 2)), ValueError,
     "adaptive_avg_pool: output_size must be an int or a sequence of 2 ints or None"),
    (lambda: ops.adaptive_max_pool(X2, 0), ValueError,
     r"adaptive_max_pool: output_size must be positive \(or None to keep a size\)"),
    (lambda: ops.adaptive_max_pool(X2, "big"), TypeError,
     "output_size must be an int or a sequence"),
]

LAYER_ERRORS = [
    (lambda: jaxcnn.max_pool(0), ValueError, "max_pool: kernel_size must be >= 1"),
    (lambda: jaxcnn.max_pool((2, 2), stride=(1, 1, 1)), ValueError,
     "max_pool: kernel_size, stride, padding and dilation must be of one length"),
    (lambda: jaxcnn.min_pool((2, 2, 2, 2)), ValueError,
     "min_pool: kernel_size must be an int or a tuple of 1, 2 or 3 ints"),
    (lambda: jaxcnn.sum_pool(2, padding=2), ValueError, "sum_pool: padding along spatial axis 0"),
    (lambda: jaxcnn.max_pool(2, padding=((0, 0), (0, 2))), ValueError,
     "spatial axis 1 must be at most"),
    (lambda: jaxcnn.max_pool(2, ceil_mode="no"), TypeError, "max_pool: ceil_mode must be a bool"),
    (lambda: jaxcnn.avg_pool(2, count_include_pad=0), TypeError,
     "count_include_pad must be a bool"),
    (lambda: jaxcnn.avg_pool(2, divisor_override=-1), ValueError, "divisor_override must be None"),
    (lambda: jaxcnn.lp_pool(-1, 2), ValueError, "lp_pool: norm_type must be a positive finite"),
    (lambda: jaxcnn.adaptive_avg_pool(0), ValueError,
     "adaptive_avg_pool: output_size must be positive"),
    (lambda: jaxcnn.adaptive_max_pool((1, 2, 3, 4)), ValueError,
     "adaptive_max_pool: output_size must be an int or a tuple of 1, 2 or 3 ints or None"),
    (lambda: jaxcnn.max_pool((2, 2)).init(jax.random.key(0), (8, 3)), ValueError,
     "max_pool: kernel_size must be an int or a sequence of 1 ints"),
    (lambda: jaxcnn.avg_pool(3).init(jax.random.key(0), (2, 2, 3)), ValueError,
     "avg_pool: padded input size along spatial axis 0 must be >= the dilated kernel size 3"),
    (lambda: jaxcnn.global_max_pool().init(jax.random.key(0), (3,)), ValueError,
     "global_max_pool: x rank must be 3, 4 or 5"),
]


@pytest.mark.parametrize("fn,exc,match", OP_ERRORS + LAYER_ERRORS)
def test_error_messages(fn, exc, match):
    with pytest.raises(exc, match=match):
        fn()
