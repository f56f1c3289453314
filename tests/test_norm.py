"""Tests of the normalisation ops and layers.

References: naive numpy loops written here (float64), and flax.linen's BatchNorm,
GroupNorm, LayerNorm and InstanceNorm as a second library.
"""

import functools

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcnn
from jaxcnn import ops

from conftest import TOL

F32 = TOL[np.dtype("float32")]
F32_LOOSE = dict(rtol=1e-4, atol=1e-4)


def jit(f, **static):
    """``f`` with ``static`` keyword arguments bound, jitted (one compile, not one per op)."""
    return jax.jit(functools.partial(f, **static))

# ---------------------------------------------------------------- numpy references


def _normalise(values, eps):
    values = np.asarray(values, np.float64)
    n = values.size
    mean = sum(values.ravel()) / n
    var = sum((v - mean) ** 2 for v in values.ravel()) / n
    return (values - mean) / np.sqrt(var + eps), mean, var


def ref_batch_norm_train(x, scale, bias, eps):
    """y, batch mean, biased batch variance; one channel at a time."""
    y = np.zeros(x.shape)
    means, variances = [], []
    for c in range(x.shape[-1]):
        yc, m, v = _normalise(x[..., c], eps)
        y[..., c] = yc * scale[c] + bias[c]
        means.append(m)
        variances.append(v)
    return y, np.array(means), np.array(variances)


def ref_group_norm(x, groups, scale, bias, eps):
    y = np.zeros(x.shape)
    size = x.shape[-1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            block = slice(g * size, (g + 1) * size)
            y[n, ..., block] = _normalise(x[n, ..., block], eps)[0]
    return y * scale + bias


def ref_layer_norm(x, axes, scale, bias, eps):
    """Moves the normalised axes last and normalises each row of the flattened rest."""
    axes = sorted(a % x.ndim for a in axes)
    rest = [a for a in range(x.ndim) if a not in axes]
    xt = np.transpose(x, rest + axes)
    flat = xt.reshape(int(np.prod([x.shape[a] for a in rest])), -1)
    out = np.stack([_normalise(row, eps)[0] for row in flat]).reshape(xt.shape)
    out = out * np.asarray(scale).reshape(-1).reshape([x.shape[a] for a in axes]) + np.asarray(
        bias).reshape([x.shape[a] for a in axes])
    return np.transpose(out, np.argsort(rest + axes))


def ref_instance_norm(x, scale, bias, eps):
    y = np.zeros(x.shape)
    for n in range(x.shape[0]):
        for c in range(x.shape[-1]):
            y[n, ..., c] = _normalise(x[n, ..., c], eps)[0] * scale[c] + bias[c]
    return y


def _data(rng, shape, scale=3.0, shift=1.5):
    return (rng.normal(size=shape) * scale + shift).astype(np.float32)


# ---------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 2), (2, 3, 4, 3), (2, 2, 3, 2, 2)])
def test_batch_norm_train_and_eval_vs_numpy(shape, rng):
    x = _data(rng, shape)
    c = shape[-1]
    scale, bias = rng.normal(size=c).astype(np.float32), rng.normal(size=c).astype(np.float32)
    mean0, var0 = rng.normal(size=c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    y, m, v = jit(ops.batch_norm, train=True, momentum=0.8)(x, scale, bias, mean0, var0)
    y_ref, bm, bv = ref_batch_norm_train(x, scale, bias, 1e-5)
    count = np.prod(shape[:-1])
    np.testing.assert_allclose(y, y_ref, **F32_LOOSE)
    np.testing.assert_allclose(m, 0.8 * mean0 + 0.2 * bm, **F32_LOOSE)
    unbiased = bv * count / (count - 1)
    np.testing.assert_allclose(v, 0.8 * var0 + 0.2 * unbiased, **F32_LOOSE)
    ye, me, ve = jit(ops.batch_norm, train=False)(x, scale, bias, mean0, var0)
    np.testing.assert_allclose(ye, (x - mean0) / np.sqrt(var0 + 1e-5) * scale + bias, **F32_LOOSE)
    np.testing.assert_array_equal(me, mean0)
    np.testing.assert_array_equal(ve, var0)


def test_batch_norm_running_stats_two_steps(rng):
    layer = jaxcnn.batch_norm(momentum=0.9)
    _, params, state = layer.init(jax.random.key(0), (3, 2))
    np.testing.assert_array_equal(state["mean"], 0.0)
    np.testing.assert_array_equal(state["var"], 1.0)
    xs = [_data(rng, (4, 3, 2)), _data(rng, (4, 3, 2), 0.5, -2.0)]
    mean, var = np.zeros(2), np.ones(2)
    for x in xs:
        _, state = layer.apply(params, state, jnp.asarray(x), train=True)
        flat = x.reshape(-1, 2).astype(np.float64)
        mean = 0.9 * mean + 0.1 * flat.mean(0)
        var = 0.9 * var + 0.1 * flat.var(0, ddof=1)
        np.testing.assert_allclose(state["mean"], mean, **F32_LOOSE)
        np.testing.assert_allclose(state["var"], var, **F32_LOOSE)
    y, state2 = layer.apply(params, state, jnp.asarray(xs[0]), train=False)
    assert state2 is state
    np.testing.assert_allclose(y, (xs[0] - mean) / np.sqrt(var + 1e-5), **F32_LOOSE)


def test_batch_norm_vs_flax(rng):
    x = _data(rng, (4, 3, 3, 2))
    scale, bias = rng.normal(size=2).astype(np.float32), rng.normal(size=2).astype(np.float32)
    variables = {"params": {"scale": scale, "bias": bias},
                 "batch_stats": {"mean": np.zeros(2, np.float32), "var": np.ones(2, np.float32)}}
    y_flax, upd = jit(fnn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5).apply,
                      mutable=["batch_stats"])(variables, x)
    y, m, _ = jit(ops.batch_norm, train=True)(x, scale, bias, jnp.zeros(2), jnp.ones(2))
    np.testing.assert_allclose(y, y_flax, **F32_LOOSE)
    np.testing.assert_allclose(m, upd["batch_stats"]["mean"], **F32_LOOSE)  # flax's var is biased
    variables["batch_stats"] = {"mean": m, "var": jnp.full(2, 2.0)}
    y_flax = jax.jit(fnn.BatchNorm(use_running_average=True, epsilon=1e-5).apply)(variables, x)
    y, _, _ = jit(ops.batch_norm, train=False)(x, scale, bias, m, jnp.full(2, 2.0))
    np.testing.assert_allclose(y, y_flax, **F32_LOOSE)


def test_batch_norm_options_and_dtypes(rng):
    layer = jaxcnn.batch_norm(use_scale=False, use_bias=False)
    _, params, state = layer.init(jax.random.key(0), (5,))
    assert params == {} and sorted(state) == ["mean", "var"]
    x = _data(rng, (8, 5))
    y, _ = layer.apply(params, state, jnp.asarray(x), train=True)
    np.testing.assert_allclose(y, ref_batch_norm_train(x, np.ones(5), np.zeros(5), 1e-5)[0],
                               **F32_LOOSE)
    # bfloat16 input: float32 statistics, bfloat16 output and float32 state.
    y, m, v = ops.batch_norm(jnp.asarray(x, jnp.bfloat16), None, None, jnp.zeros(5), jnp.ones(5),
                             train=True)
    assert y.dtype == jnp.bfloat16 and m.dtype == jnp.float32 and v.dtype == jnp.float32
    np.testing.assert_allclose(y.astype(jnp.float32), ref_batch_norm_train(
        np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32)), np.ones(5), np.zeros(5),
        1e-5)[0], atol=3e-2)
    y, m, v = ops.batch_norm(jnp.asarray(x), train=True)
    assert m is None and v is None


def test_batch_norm_axis_name_equals_full_batch(rng):
    x = _data(rng, (8, 3, 2))
    scale, bias = jnp.full(2, 2.0), jnp.full(2, 0.5)
    full = ops.batch_norm(jnp.asarray(x), scale, bias, jnp.zeros(2), jnp.ones(2), train=True)
    shards = jnp.asarray(x).reshape(4, 2, 3, 2)
    sharded = jax.vmap(lambda s: ops.batch_norm(s, scale, bias, jnp.zeros(2), jnp.ones(2),
                                                train=True, axis_name="data"),
                       axis_name="data")(shards)
    np.testing.assert_allclose(sharded[0].reshape(x.shape), full[0], **F32)
    for i in (1, 2):
        np.testing.assert_allclose(sharded[i], jnp.broadcast_to(full[i], (4, 2)), **F32)


def test_batch_norm_layer_vmap_ensemble_equals_loop(rng):
    layer = jaxcnn.batch_norm()
    keys = jax.random.split(jax.random.key(0), 3)
    params, state = jax.vmap(lambda k: layer.init(k, (4, 2))[1:])(keys)
    params = jax.tree_util.tree_map(lambda p: p + jnp.arange(3.0).reshape(3, 1), params)
    x = jnp.asarray(_data(rng, (3, 5, 4, 2)))
    apply = lambda p, s, a: layer.apply(p, s, a, train=True)  # noqa: E731
    ys, states = jax.vmap(apply)(params, state, x)
    for k in range(3):
        pk, sk = jax.tree_util.tree_map(lambda a: a[k], (params, state))
        yk, sk = apply(pk, sk, x[k])
        np.testing.assert_allclose(ys[k], yk, **F32)
        np.testing.assert_allclose(states["mean"][k], sk["mean"], **F32)
        np.testing.assert_allclose(states["var"][k], sk["var"], **F32)
    assert not np.allclose(states["mean"][0], states["mean"][1])  # statistics per member


# ---------------------------------------------------------------- group / layer / instance norm


@pytest.mark.parametrize("shape,groups", [((2, 6), 3), ((2, 5, 4), 2), ((1, 3, 4, 6), 3),
                                          ((2, 2, 2, 3, 4), 1)])
def test_group_norm_vs_numpy_and_flax(shape, groups, rng):
    x = _data(rng, shape)
    c = shape[-1]
    scale, bias = rng.normal(size=c).astype(np.float32), rng.normal(size=c).astype(np.float32)
    y = jit(ops.group_norm, num_groups=groups, eps=1e-5)(x, scale=scale, bias=bias)
    np.testing.assert_allclose(y, ref_group_norm(x, groups, scale, bias, 1e-5), **F32_LOOSE)
    y_flax = jax.jit(fnn.GroupNorm(num_groups=groups, epsilon=1e-5).apply)(
        {"params": {"scale": scale, "bias": bias}}, x)
    np.testing.assert_allclose(y, y_flax, **F32_LOOSE)


@pytest.mark.parametrize("shape,axes", [((3, 5), -1), ((2, 3, 4), (-2, -1)),
                                        ((2, 3, 2, 4), (1, 2, 3)), ((2, 3, 2, 4), (1, 3)),
                                        ((2, 3, 4), None)])
def test_layer_norm_vs_numpy_and_flax(shape, axes, rng):
    x = _data(rng, shape)
    norm_axes = tuple(range(1, len(shape))) if axes is None else (
        (axes,) if isinstance(axes, int) else axes)
    pshape = tuple(shape[a] for a in sorted(a % len(shape) for a in norm_axes))
    scale = rng.normal(size=pshape).astype(np.float32)
    bias = rng.normal(size=pshape).astype(np.float32)
    y = jit(ops.layer_norm, eps=1e-5, axes=axes)(x, scale, bias)
    np.testing.assert_allclose(y, ref_layer_norm(x, norm_axes, scale, bias, 1e-5), **F32_LOOSE)
    trailing = list(range(len(shape) - len(pshape), len(shape)))
    if sorted(a % len(shape) for a in norm_axes) == trailing:  # flax wants trailing axes
        flax_ln = fnn.LayerNorm(epsilon=1e-5, reduction_axes=norm_axes, feature_axes=norm_axes)
        y_flax = jax.jit(flax_ln.apply)({"params": {"scale": scale, "bias": bias}}, x)
        np.testing.assert_allclose(y, y_flax, **F32_LOOSE)


@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 3, 4, 2), (1, 2, 3, 2, 3)])
def test_instance_norm_vs_numpy_and_flax(shape, rng):
    x = _data(rng, shape)
    c = shape[-1]
    scale, bias = rng.normal(size=c).astype(np.float32), rng.normal(size=c).astype(np.float32)
    y = jax.jit(ops.instance_norm)(x, scale, bias)
    np.testing.assert_allclose(y, ref_instance_norm(x, scale, bias, 1e-5), **F32_LOOSE)
    y_flax = jax.jit(fnn.InstanceNorm(epsilon=1e-5).apply)(
        {"params": {"scale": scale, "bias": bias}}, x)
    np.testing.assert_allclose(y, y_flax, **F32_LOOSE)
    y_group = jit(ops.group_norm, num_groups=c)(x, scale=scale, bias=bias)
    np.testing.assert_allclose(y, y_group, **F32_LOOSE)


def test_norm_layers_init_and_apply(rng):
    key = jax.random.key(0)
    x = jnp.asarray(_data(rng, (2, 4, 4, 6)))
    cases = [
        (jaxcnn.group_norm(3), (6,), lambda a: ops.group_norm(a, 3)),
        (jaxcnn.layer_norm(), (6,), lambda a: ops.layer_norm(a)),
        (jaxcnn.layer_norm(axes=(-3, -2, -1)), (4, 4, 6),
         lambda a: ops.layer_norm(a, axes=(1, 2, 3))),
        (jaxcnn.layer_norm(axes=None), (4, 4, 6), lambda a: ops.layer_norm(a, axes=None)),
        (jaxcnn.instance_norm(), (6,), ops.instance_norm),
    ]
    for layer, pshape, ref in cases:
        out_shape, params, state = layer.init(key, (4, 4, 6))
        assert out_shape == (4, 4, 6) and state == {}
        assert params["scale"].shape == pshape and params["bias"].shape == pshape
        assert params["scale"].dtype == jnp.float32
        y, _ = jit(layer.apply, train=True)(params, state, x)
        np.testing.assert_allclose(y, jax.jit(ref)(x), **F32)
    for layer in (jaxcnn.group_norm(2, affine=False), jaxcnn.layer_norm(affine=False),
                  jaxcnn.instance_norm(affine=False)):
        assert layer.init(key, (4, 6))[1] == {}


def test_float64_and_bfloat16(rng):
    x = rng.normal(size=(2, 3, 4)) * 2 + 1
    with jax.enable_x64(True):
        y = ops.group_norm(jnp.asarray(x), 2)
        assert y.dtype == jnp.float64
        np.testing.assert_allclose(y, ref_group_norm(x, 2, 1.0, 0.0, 1e-5),
                                   **TOL[np.dtype("float64")])
    xb = jnp.asarray(x, jnp.bfloat16)
    for f in (lambda a: ops.layer_norm(a), lambda a: ops.instance_norm(a),
              lambda a: ops.group_norm(a, 4)):
        yb = f(xb)
        assert yb.dtype == jnp.bfloat16
        np.testing.assert_allclose(yb.astype(jnp.float32), f(xb.astype(jnp.float32)), atol=3e-2)


# ---------------------------------------------------------------- transformations


def test_grads(rng):
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(3, 2, 4)))
        s, b = jnp.asarray(rng.normal(size=4)), jnp.asarray(rng.normal(size=4))
        zeros, ones = jnp.zeros(4), jnp.ones(4)
        fns = [(lambda a, g, h: ops.batch_norm(a, g, h, zeros, ones, train=True)[0], (x, s, b)),
               (lambda a, g: ops.batch_norm(a, g, None, zeros, ones, train=False)[0], (x, s)),
               (lambda a, g, h: ops.group_norm(a, 2, g, h), (x, s, b)),
               (lambda a, g, h: ops.instance_norm(a, g, h), (x, s, b)),
               (lambda a: ops.layer_norm(a, axes=(1, 2)), (x,))]
        for f, args in fns:
            check_grads(jax.jit(f), args, order=1, modes=["rev"])


def test_jit_equals_eager_and_vmap_equals_loop(rng):
    x = jnp.asarray(_data(rng, (3, 2, 5, 4)))  # (members, N, L, C)
    fns = [lambda a: ops.group_norm(a, 2), lambda a: ops.layer_norm(a, axes=(-2, -1)),
           ops.instance_norm,
           lambda a: ops.batch_norm(a, None, None, jnp.zeros(4), jnp.ones(4), train=True)[:2]]
    for f in fns:
        for got, want in zip(jax.tree_util.tree_leaves(jax.jit(f)(x[0])),
                             jax.tree_util.tree_leaves(f(x[0]))):
            np.testing.assert_allclose(got, want, **F32)
        looped = [f(a) for a in x]
        for i, got in enumerate(jax.tree_util.tree_leaves(jax.jit(jax.vmap(f))(x))):
            want = jnp.stack([jax.tree_util.tree_leaves(l)[i] for l in looped])
            np.testing.assert_allclose(got, want, **F32)


# ---------------------------------------------------------------- errors

X = jnp.zeros((2, 4, 6))
S = jnp.ones(6)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ops.batch_norm(X.astype(jnp.int32), train=True), TypeError,
     r"batch_norm: x dtype must be a floating dtype"),
    (lambda: ops.batch_norm(jnp.zeros(3), train=True), ValueError,
     r"batch_norm: x rank must be >= 2"),
    (lambda: ops.batch_norm(X, train=1), TypeError, r"batch_norm: train must be a Python bool"),
    (lambda: ops.batch_norm(X, train=True, momentum=0.1 + 1), ValueError,
     r"momentum must be a float in \[0, 1\].*PyTorch's momentum=0.1 is momentum=0.9"),
    (lambda: ops.batch_norm(X, train=True, eps=-1.0), ValueError,
     r"batch_norm: eps must be a non-negative float"),
    (lambda: ops.batch_norm(X, jnp.ones(5), train=True), ValueError,
     r"batch_norm: scale shape must be \(6,\), got \(5,\)"),
    (lambda: ops.batch_norm(X, None, jnp.ones((6, 1)), train=True), ValueError,
     r"bias shape must be \(6,\)"),
    (lambda: ops.batch_norm(X, None, None, jnp.ones(4), S, train=True), ValueError,
     r"mean shape must be \(6,\)"),
    (lambda: ops.batch_norm(X, train=False), ValueError,
     r"batch_norm: mean and var must be arrays of shape \(C,\) when train=False"),
    (lambda: ops.batch_norm(X[:1, :1], train=True), ValueError,
     r"number of values per channel must be more than 1 when train=True, got 1"),
    (lambda: ops.group_norm(X, 4), ValueError,
     r"group_norm: number of channels \(x.shape\[-1\]\) must be divisible by num_groups=4, got 6"),
    (lambda: ops.group_norm(X, 0), ValueError, r"group_norm: num_groups must be a positive int"),
    (lambda: ops.group_norm(X, 2, jnp.ones(3)), ValueError,
     r"group_norm: scale shape must be \(6,\)"),
    (lambda: ops.layer_norm(X, axes=0), ValueError,
     r"layer_norm: axes must be axes of x other than the batch axis 0.*negative axes"),
    (lambda: ops.layer_norm(X, axes=3), ValueError, r"layer_norm: axes must be in \[-3, 3\)"),
    (lambda: ops.layer_norm(X, axes=(1, -2)), ValueError, r"layer_norm: axes must be distinct"),
    (lambda: ops.layer_norm(X, axes="channels"), TypeError,
     r"layer_norm: axes must be an int, a non-empty tuple"),
    (lambda: ops.layer_norm(X, jnp.ones(4), axes=-1), ValueError,
     r"layer_norm: scale shape must be \(6,\), got \(4,\)"),
    (lambda: ops.instance_norm(X[0]), ValueError, r"instance_norm: x rank must be 3, 4 or 5"),
    (lambda: jaxcnn.batch_norm(momentum=0.1 * 20), ValueError,
     r"batch_norm: momentum must be a float in \[0, 1\]"),
    (lambda: jaxcnn.batch_norm(eps=-1), ValueError,
     r"batch_norm: eps must be a non-negative float"),
    (lambda: jaxcnn.batch_norm(use_scale=None), TypeError, r"batch_norm: use_scale must be a bool"),
    (lambda: jaxcnn.batch_norm(use_bias=1), TypeError, r"batch_norm: use_bias must be a bool"),
    (lambda: jaxcnn.group_norm(2.0), ValueError, r"group_norm: num_groups must be a positive int"),
    (lambda: jaxcnn.group_norm(4).init(jax.random.key(0), (3, 6)), ValueError,
     r"group_norm: number of channels \(in_shape\[-1\]\) must be divisible by num_groups=4, got 6"),
    (lambda: jaxcnn.group_norm(2, affine="yes"), TypeError, r"group_norm: affine must be a bool"),
    (lambda: jaxcnn.layer_norm(axes=[]), TypeError,
     r"layer_norm: axes must be an int, a non-empty tuple"),
    (lambda: jaxcnn.layer_norm(axes=0).init(jax.random.key(0), (3, 6)), ValueError,
     r"layer_norm: axes must be axes of x other than the batch axis 0"),
    (lambda: jaxcnn.layer_norm(eps=float("nan")), ValueError,
     r"layer_norm: eps must be a non-negative float"),
    (lambda: jaxcnn.instance_norm().init(jax.random.key(0), (6,)), ValueError,
     r"instance_norm: in_shape must be \(\*spatial, channels\)"),
    (lambda: jaxcnn.batch_norm().apply({}, {}, X), TypeError,
     r"batch_norm: apply needs the keyword argument train"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
