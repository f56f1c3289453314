"""Leaf layers: the protocol (train/key checks), shapes from init vs apply, wiring to the ops,
activations against their formulas, dropout statistics, jit/vmap, dtypes and every error."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc
from jaxcnn import initializers as inits
from jaxcnn import ops

KEY = jax.random.key(0)


def np_init(key, shape, dtype=jnp.float32):
    """A random initialiser with no compilation: each new shape of jax.random.normal costs
    a compile, which dominates these tests (the default init is tested in test_initializers)."""
    del key
    return jnp.asarray(np.random.default_rng(sum(shape)).standard_normal(shape) / 3, dtype)


F = dict(kernel_init=np_init)


def _init_apply(l, in_shape, batch=2, dtype=jnp.float32, train=False, key=None, seed=0):
    out_shape, params, state = l.init(KEY, in_shape)
    x = jnp.asarray(np.random.default_rng(seed).standard_normal((batch, *in_shape)), dtype)
    y, new_state = l.apply(params, state, x, train=train, key=key)
    return out_shape, params, state, x, y, new_state


# ----------------------------------------------------------------------------- shapes
SPATIAL_LAYERS = {
    "conv_pad": lambda: jc.conv(3, 3, padding=1, **F),
    "conv_stride": lambda: jc.conv(2, 2, stride=2, use_bias=False, **F),
    "conv_groups_same": lambda: jc.conv(6, 3, dilation=2, padding="SAME", groups=2, **F),
    "conv_causal_reflect": lambda: jc.conv(2, 2, padding="CAUSAL", padding_mode="reflect", **F),
    "conv_transpose": lambda: jc.conv_transpose(3, 3, stride=2, padding=1, output_padding=1, **F),
    "conv_transpose_groups": lambda: jc.conv_transpose(4, 2, stride=2, groups=2, **F),
    "separable": lambda: jc.separable_conv(5, 3, padding="SAME", depth_multiplier=2, **F),
    "depthwise": lambda: jc.depthwise_conv(3, depth_multiplier=2, stride=2, **F),
}
SHAPES = [(7, 4), (5, 6, 4), (4, 3, 5, 4)]


@pytest.mark.parametrize("in_shape", SHAPES, ids=lambda s: f"{len(s) - 1}d")
@pytest.mark.parametrize("name", sorted(SPATIAL_LAYERS))
def test_init_out_shape_equals_apply_shape_spatial(name, in_shape):
    out_shape, params, state, x, y, new_state = _init_apply(SPATIAL_LAYERS[name](), in_shape)
    assert y.shape == (2, *out_shape)
    assert y.dtype == jnp.float32
    assert new_state == state == {}
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("factory,in_shape,expected", [
    (lambda: jc.dense(7, **F), (3, 5), (3, 7)),
    (lambda: jc.flatten(), (3, 2, 4), (24,)),
    (lambda: jc.reshape((2, -1)), (4, 3), (2, 6)),
    (lambda: jc.identity(), (4, 3), (4, 3)),
    (lambda: jc.softmax(), (4, 3), (4, 3)),
    (lambda: jc.dropout(0.5), (4, 3), (4, 3)),
    (lambda: jc.spatial_dropout(0.5), (4, 3), (4, 3)),
])
def test_init_out_shape_equals_apply_shape_other(factory, in_shape, expected):
    out_shape, _, _, _, y, _ = _init_apply(factory(), in_shape, train=True, key=KEY)
    assert out_shape == expected
    assert y.shape == (2, *expected)


def test_param_shapes_and_names():
    _, p, s = jc.conv(16, (3, 2), groups=2, **F).init(KEY, (8, 8, 4))
    assert p["kernel"].shape == (3, 2, 2, 16) and p["bias"].shape == (16,) and s == {}
    np.testing.assert_array_equal(p["bias"], 0.0)
    _, p, _ = jc.conv(4, 3, use_bias=False, **F).init(KEY, (8, 2))
    assert set(p) == {"kernel"}
    _, p, _ = jc.conv_transpose(6, 4, groups=3, **F).init(KEY, (5, 5, 5, 3))
    assert p["kernel"].shape == (4, 4, 4, 3, 2) and p["bias"].shape == (6,)
    _, p, _ = jc.separable_conv(8, 3, depth_multiplier=2, **F).init(KEY, (9, 9, 3))
    assert p["depthwise_kernel"].shape == (3, 3, 1, 6)
    assert p["pointwise_kernel"].shape == (1, 1, 6, 8) and p["bias"].shape == (8,)
    _, p, _ = jc.depthwise_conv(3, depth_multiplier=3, **F).init(KEY, (9, 2))
    assert p["kernel"].shape == (3, 1, 6) and p["bias"].shape == (6,)
    _, p, _ = jc.dense(10, **F).init(KEY, (84,))
    assert p["kernel"].shape == (84, 10) and p["bias"].shape == (10,)
    assert jc.conv_transpose(8, 4, stride=2, padding=1, **F).init(KEY, (7, 7, 16))[0] == (14, 14, 8)


# ----------------------------------------------------------------------------- wiring to the ops
def test_conv_layers_pass_their_arguments_to_the_ops():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((2, 7, 6, 4)), jnp.float32)
    w = rng.standard_normal((3, 2, 2, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    kw = dict(stride=(2, 1), padding=((1, 0), 1), dilation=(1, 2), groups=2)
    l = jc.conv(6, (3, 2), padding_mode="circular", kernel_init=inits.fixed(w),
                bias_init=inits.fixed(b), **kw)
    _, p, s = l.init(KEY, (7, 6, 4))
    y, _ = l.apply(p, s, x, train=False)
    np.testing.assert_array_equal(y, ops.conv(x, w, b, padding_mode="circular", **kw))

    wt = rng.standard_normal((3, 3, 4, 1)).astype(np.float32)
    l = jc.conv_transpose(2, 3, stride=2, padding=1, output_padding=1, dilation=1, groups=2,
                          kernel_init=inits.fixed(wt), use_bias=False)
    _, p, s = l.init(KEY, (7, 6, 4))
    np.testing.assert_array_equal(
        l.apply(p, s, x, train=False)[0],
        ops.conv_transpose(x, wt, stride=2, padding=1, output_padding=1, groups=2))

    _, p, s = jc.separable_conv(3, 3, stride=2, padding=1, dilation=1, depth_multiplier=2,
                                padding_mode="reflect", **F).init(KEY, (7, 6, 4))
    ref = ops.separable_conv(x, p["depthwise_kernel"], p["pointwise_kernel"], p["bias"],
                             stride=2, padding=1, padding_mode="reflect")
    l = jc.separable_conv(3, 3, stride=2, padding=1, depth_multiplier=2, padding_mode="reflect")
    np.testing.assert_array_equal(l.apply(p, s, x, train=False)[0], ref)

    l = jc.depthwise_conv(3, 2, depth_multiplier=2, padding="SAME", padding_mode="replicate", **F)
    _, p, s = l.init(KEY, (7, 6, 4))
    ref = ops.conv(x, p["kernel"], p["bias"], stride=2, padding="SAME", groups=4,
                   padding_mode="replicate")
    np.testing.assert_array_equal(l.apply(p, s, x, train=False)[0], ref)


def test_dense_matches_numpy():
    rng = np.random.default_rng(2)
    w, b = rng.standard_normal((5, 3)), rng.standard_normal(3)
    l = jc.dense(3, kernel_init=inits.fixed(w), bias_init=inits.fixed(b))
    _, p, s, x, y, _ = _init_apply(l, (4, 5))  # acts on the last axis
    ref = np.asarray(x, np.float64) @ w + b
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    l = jc.dense(3, use_bias=False, kernel_init=inits.fixed(w))
    _, p, s, x, y, _ = _init_apply(l, (5,))
    assert set(p) == {"kernel"}
    np.testing.assert_allclose(y, np.asarray(x, np.float64) @ w, rtol=1e-5, atol=1e-5)


def test_flatten_and_reshape_values():
    x = jnp.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(jc.flatten().apply({}, {}, x, train=False)[0],
                                  np.arange(24.0).reshape(2, 12))
    l = jc.reshape((4, 3))
    _, p, s = l.init(KEY, (3, 4))
    np.testing.assert_array_equal(l.apply(p, s, x, train=False)[0],
                                  np.arange(24.0).reshape(2, 4, 3))


# ----------------------------------------------------------------------------- activations
X_ACT = np.linspace(-4.0, 4.0, 17).reshape(1, 17)
_erf = np.vectorize(math.erf)
ACTIVATIONS = [
    (jc.relu, np.maximum(X_ACT, 0)),
    (jc.relu6, np.clip(X_ACT, 0, 6)),
    (jc.gelu, 0.5 * X_ACT * (1 + _erf(X_ACT / np.sqrt(2)))),
    (lambda: jc.gelu(approximate=True),
     0.5 * X_ACT * (1 + np.tanh(np.sqrt(2 / np.pi) * (X_ACT + 0.044715 * X_ACT ** 3)))),
    (jc.silu, X_ACT / (1 + np.exp(-X_ACT))),
    (jc.tanh, np.tanh(X_ACT)),
    (jc.sigmoid, 1 / (1 + np.exp(-X_ACT))),
    (jc.elu, np.where(X_ACT > 0, X_ACT, np.expm1(X_ACT))),
    (lambda: jc.elu(0.5), np.where(X_ACT > 0, X_ACT, 0.5 * np.expm1(X_ACT))),
    (jc.softplus, np.log1p(np.exp(X_ACT))),
    (jc.hard_swish, X_ACT * np.clip(X_ACT + 3, 0, 6) / 6),
    (jc.leaky_relu, np.where(X_ACT > 0, X_ACT, 0.01 * X_ACT)),
    (lambda: jc.leaky_relu(0.2), np.where(X_ACT > 0, X_ACT, 0.2 * X_ACT)),
    (jc.softmax, np.exp(X_ACT) / np.exp(X_ACT).sum(-1, keepdims=True)),
    (jc.log_softmax, X_ACT - np.log(np.exp(X_ACT).sum(-1, keepdims=True))),
    (lambda: jc.activation(jnp.sin), np.sin(X_ACT)),
    (jc.identity, X_ACT),
]


@pytest.mark.parametrize("factory,expected", ACTIVATIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_activations_match_formulas(factory, expected):
    l = factory()
    out_shape, p, s = l.init(KEY, (17,))
    assert out_shape == (17,) and p == {} and s == {}
    y, _ = l.apply(p, s, jnp.asarray(X_ACT, jnp.float32), train=False)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_activation_names():
    assert jc.activation(jnp.sin).name == "sin"
    assert jc.activation(lambda x: x, name="mine").name == "mine"
    assert jc.relu().name == "relu" and jc.conv(2, 3).name == "conv"


# ----------------------------------------------------------------------------- protocol
def test_missing_train_names_the_layer():
    _, p, s = jc.conv(2, 3, **F).init(KEY, (5, 1))
    with pytest.raises(TypeError, match=r"conv: apply needs the keyword argument train=True or "
                       r"train=False \(no default"):
        jc.conv(2, 3).apply(p, s, jnp.ones((1, 5, 1)))
    with pytest.raises(TypeError, match=r"dropout: apply needs the keyword argument train"):
        jc.dropout(0.5).apply({}, {}, jnp.ones((1, 5, 1)))


@pytest.mark.parametrize("train", [1, None, "yes", np.bool_(True), jnp.asarray(True)],
                         ids=["int", "none", "str", "np_bool", "array"])
def test_train_must_be_a_python_bool(train):
    with pytest.raises(TypeError, match=r"relu: train must be a Python bool \(it is static: not "
                       r"a traced array\), got"):
        jc.relu().apply({}, {}, jnp.ones((1, 3)), train=train)


def test_hand_written_layer_and_stateless():
    l = jc.Layer(lambda key, s: (s, {}, {}), lambda p, s, x, *, train, key=None: (x + 1, s))
    assert l.name == "layer"
    double = jc.stateless("double", lambda x: 2 * x)
    assert double.name == "double"
    assert double.init(KEY, [3, 2])[0] == (3, 2)  # lists are accepted, tuples come back
    np.testing.assert_array_equal(double.apply({}, {}, jnp.ones((1, 3, 2)), train=True)[0], 2.0)


@pytest.mark.parametrize("in_shape,exc,match", [
    ("abc", TypeError, r"conv: in_shape must be a tuple of ints without the batch axis, e\.g\. "
     r"\(28, 28, 1\), got 'abc'"),
    ((5, 2.0), TypeError, r"conv: in_shape must be a tuple of ints"),
    ((5, 0), ValueError, r"conv: in_shape must be made of positive sizes, got \(5, 0\)"),
    ((4,), ValueError, r"conv: in_shape must be \(\*spatial, channels\) with 1, 2 or 3 spatial "
     r"axes \(no batch axis\), got \(4,\)"),
    ((2, 2, 2, 2, 1), ValueError, r"conv: in_shape must be \(\*spatial, channels\)"),
    (((4, 1), (4, 1)), ValueError, r"conv: in_shape must be \(\*spatial, channels\)"),
])
def test_in_shape_errors(in_shape, exc, match):
    with pytest.raises(exc, match=match):
        jc.conv(2, 1).init(KEY, in_shape)


# ----------------------------------------------------------------------------- dropout
def test_dropout_statistics():
    rate = 0.3
    x = jnp.full((4, 100, 100, 1), 2.0)
    y, _ = jc.dropout(rate).apply({}, {}, x, train=True, key=jax.random.key(1))
    y = np.asarray(y)
    dropped = y == 0
    assert abs(dropped.mean() - rate) < 0.01  # 40000 draws: std 0.0023
    np.testing.assert_allclose(y[~dropped], 2.0 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 2.0) < 0.03  # E[y] = x


def test_dropout_keys_modes_and_dtypes():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 8, 3)) + 5.0, jnp.float32)
    d = jc.dropout(0.5)
    y1 = d.apply({}, {}, x, train=True, key=jax.random.key(3))[0]
    y2 = d.apply({}, {}, x, train=True, key=jax.random.key(3))[0]
    y3 = d.apply({}, {}, x, train=True, key=jax.random.key(4))[0]
    np.testing.assert_array_equal(y1, y2)
    assert np.any((np.asarray(y1) == 0) != (np.asarray(y3) == 0))
    assert d.apply({}, {}, x, train=False)[0] is x  # eval: identity, no key needed
    assert jc.dropout(0.0).apply({}, {}, x, train=True)[0] is x
    for dtype in (jnp.float16, jnp.bfloat16):
        assert d.apply({}, {}, x.astype(dtype), train=True, key=KEY)[0].dtype == dtype
        assert jc.spatial_dropout(0.5).apply({}, {}, x.astype(dtype), train=True,
                                             key=KEY)[0].dtype == dtype
    # a legacy uint32 key works too
    assert d.apply({}, {}, x, train=True, key=jax.random.PRNGKey(0))[0].shape == x.shape


@pytest.mark.parametrize("factory", [jc.dropout, jc.spatial_dropout])
def test_dropout_needs_a_key_while_training(factory):
    name = factory.__name__
    with pytest.raises(ValueError, match=rf"{name}: key must be a jax.random key when train=True, "
                       r"got None\. Pass apply\(\.\.\., train=True, key=key\)"):
        factory(0.5).apply({}, {}, jnp.ones((1, 4, 2)), train=True)


def test_spatial_dropout_drops_whole_channels():
    rate = 0.25
    x = jnp.ones((64, 3, 4, 64))
    y, _ = jc.spatial_dropout(rate).apply({}, {}, x, train=True, key=jax.random.key(5))
    y = np.asarray(y)
    per_channel = y.reshape(64, 12, 64)
    assert np.all(per_channel == per_channel[:, :1, :])  # constant over the spatial axes
    assert set(np.unique(y)) <= {0.0, np.float32(1 / (1 - rate))}
    assert abs((per_channel[:, 0] == 0).mean() - rate) < 0.03  # 4096 channel draws
    y1 = jc.spatial_dropout(0.5).apply({}, {}, jnp.ones((2, 5, 3)), train=True, key=KEY)[0]
    assert np.all(np.asarray(y1) == np.asarray(y1)[:, :1])  # 1d


# ----------------------------------------------------------------------------- jit, vmap, dtypes
NET = jc.serial(jc.conv(4, 3, padding=1, **F), jc.relu(), jc.dropout(0.2),
                jc.depthwise_conv(3, stride=2, **F), jc.flatten(), jc.dense(3, **F))
_, _, NET_STATE = NET.init(KEY, (6, 6, 2))
# one compiled training forward shared by the jit and vmap tests
net_train = jax.jit(lambda p, x, k: NET.apply(p, NET_STATE, x, train=True, key=k)[0])


def test_jit_equals_eager():
    _, p, s = NET.init(KEY, (6, 6, 2))
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 6, 6, 2)), jnp.float32)
    eager = NET.apply(p, s, x, train=True, key=KEY)[0]
    np.testing.assert_allclose(net_train(p, x, KEY), eager, rtol=1e-5, atol=1e-6)


def test_vmap_over_members_equals_loop():
    """Ensembles: an extra leading axis on params and input (and one key per member)."""
    members = [NET.init(jax.random.key(i), (6, 6, 2))[1] for i in range(3)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *members)
    xs = jnp.asarray(np.random.default_rng(4).standard_normal((3, 2, 6, 6, 2)), jnp.float32)
    keys = jax.random.split(KEY, 3)
    batched = jax.vmap(net_train)(stacked, xs, keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], net_train(members[i], xs[i], keys[i]), rtol=1e-5,
                                   atol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_inputs_keep_dtype(dtype):
    net = jc.serial(jc.conv(4, 3, padding=1, **F), jc.relu(),
                    jc.conv_transpose(2, 2, stride=2, **F), jc.separable_conv(3, 3, **F),
                    jc.flatten(), jc.dense(3, **F))
    _, p, s = net.init(KEY, (5, 5, 2))
    y, _ = net.apply(p, s, jnp.ones((1, 5, 5, 2), dtype), train=False)
    assert y.dtype == dtype
    assert all(v.dtype == jnp.float32 for v in jax.tree_util.tree_leaves(p))


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("call,exc,match", [
    (lambda: jc.conv(0, 3), ValueError, r"conv: out_channels must be a positive int, got 0"),
    (lambda: jc.conv(4.0, 3), ValueError, r"conv: out_channels must be a positive int, got 4\.0"),
    (lambda: jc.conv(4, 3, groups=0), ValueError, r"conv: groups must be a positive int, got 0"),
    (lambda: jc.conv(6, 3, groups=4), ValueError,
     r"conv: out_channels must be divisible by groups=4, got 6"),
    (lambda: jc.conv(4, 3, groups=2).init(KEY, (8, 3)), ValueError,
     r"conv: input channels \(in_shape\[-1\]\) must be divisible by groups=2, got 3"),
    (lambda: jc.conv(4, (3, 3, 3, 3)), ValueError,
     r"conv: kernel_size must be an int or a tuple of 1, 2 or 3 ints, got \(3, 3, 3, 3\)"),
    (lambda: jc.conv(4, 3, stride=(1, 1, 1, 1)), ValueError,
     r"conv: stride must be an int or a tuple of 1, 2 or 3 ints, got \(1, 1, 1, 1\)"),
    (lambda: jc.conv(4, (3, 3), stride=(1, 1, 1)), ValueError,
     r"conv: kernel_size, stride, padding and dilation must be of one length \(one entry per "
     r"spatial dimension\), got \(\(3, 3\), \(1, 1, 1\), 0, 1\)"),
    (lambda: jc.conv(4, 3, padding=(1, 1, 1, 1)), ValueError,
     r"conv: padding must be an int or a tuple of 1, 2 or 3 \(low, high\) pairs or ints"),
    (lambda: jc.conv_transpose(4, 3, stride=(2, 2), output_padding=(1, 1, 1)), ValueError,
     r"conv_transpose: kernel_size, stride, padding, output_padding and dilation must be of one "
     r"length"),
    (lambda: jc.conv(4, 0), ValueError, r"conv: kernel_size must be >= 1, got 0"),
    (lambda: jc.conv(4, "3"), TypeError, r"conv: kernel_size must be an int or a sequence"),
    (lambda: jc.conv(4, 3, padding="FULL"), ValueError,
     r"conv: padding must be .* one of 'SAME', 'VALID', 'CAUSAL', got 'FULL'"),
    (lambda: jc.conv(4, 3, padding_mode="wrap"), ValueError,
     r"conv: padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular'"),
    (lambda: jc.conv(4, (3, 3)).init(KEY, (8, 2)), ValueError,
     r"conv: in_shape must be \(H, W, C\) for this 2-d network, got \(8, 2\). in_shape excludes "
     r"the batch axis"),
    (lambda: jc.conv(4, 5, **F).init(KEY, (3, 3, 2)), ValueError,
     r"conv: padded input size along spatial axis 0 must be >= the dilated kernel size 5"),
    (lambda: jc.conv_transpose(4, 3, padding="SAME"), ValueError,
     r"conv_transpose: padding must be .* one of 'VALID', got 'SAME'"),
    (lambda: jc.conv_transpose(3, 3, groups=2), ValueError,
     r"conv_transpose: out_channels must be divisible by groups=2, got 3"),
    (lambda: jc.conv_transpose(4, 3, groups=2).init(KEY, (8, 3)), ValueError,
     r"conv_transpose: input channels \(in_shape\[-1\]\) must be divisible by groups=2, got 3"),
    (lambda: jc.conv_transpose(4, 3, stride=2, output_padding=2, **F).init(KEY, (5, 2)), ValueError,
     r"conv_transpose: output_padding must be smaller than stride or dilation \(2\)"),
    (lambda: jc.separable_conv(0, 3), ValueError,
     r"separable_conv: out_channels must be a positive int, got 0"),
    (lambda: jc.separable_conv(4, 3, depth_multiplier=0), ValueError,
     r"separable_conv: depth_multiplier must be a positive int, got 0"),
    (lambda: jc.separable_conv(4, 3).init(KEY, (4,)), ValueError,
     r"separable_conv: in_shape must be \(\*spatial, channels\)"),
    (lambda: jc.depthwise_conv(3, depth_multiplier=1.5), ValueError,
     r"depthwise_conv: depth_multiplier must be a positive int, got 1\.5"),
    (lambda: jc.depthwise_conv(3, padding_mode="edge"), ValueError,
     r"depthwise_conv: padding_mode must be one of"),
    (lambda: jc.dense(0), ValueError, r"dense: out_features must be a positive int, got 0"),
    (lambda: jc.reshape(12), TypeError,
     r"reshape: shape must be a tuple of ints without the batch axis, got 12"),
    (lambda: jc.reshape((0, -1)), ValueError,
     r"reshape: shape must be made of positive sizes and at most one -1, got \(0, -1\)"),
    (lambda: jc.reshape((5,)).init(KEY, (4, 3)), ValueError,
     r"reshape: shape must be compatible with in_shape \(4, 3\) \(12 elements\), got \(5,\)"),
    (lambda: jc.reshape((5, -1)).init(KEY, (4, 3)), ValueError,
     r"reshape: shape must be compatible"),
    (lambda: jc.reshape((-1, -1)).init(KEY, (4, 3)), ValueError,
     r"reshape: shape must be compatible"),
    (lambda: jc.dropout(1.0), ValueError,
     r"dropout: rate must be in \[0, 1\) \(the probability of dropping\), got 1\.0"),
    (lambda: jc.dropout(-0.1), ValueError, r"dropout: rate must be in \[0, 1\)"),
    (lambda: jc.dropout("0.5"), TypeError,
     r"dropout: rate must be a float in \[0, 1\), got '0\.5'"),
    (lambda: jc.dropout(True), TypeError, r"dropout: rate must be a float in \[0, 1\), got True"),
    (lambda: jc.spatial_dropout(1.5), ValueError, r"spatial_dropout: rate must be in \[0, 1\)"),
    (lambda: jc.spatial_dropout(0.5).init(KEY, (5,)), ValueError,
     r"spatial_dropout: input rank must be 3, 4 or 5 \(N, \*spatial, C\), got 2"),
])
def test_factory_and_init_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_dense_input_features_error():
    l = jc.dense(3, **F)
    _, p, s = l.init(KEY, (4,))
    with pytest.raises(ValueError, match=r"dense: input features \(x.shape\[-1\]\) must be 4 as at "
                       r"init, got 12\. Did you forget flatten\(\) before dense\?"):
        l.apply(p, s, jnp.ones((2, 3, 12)), train=False)
    with pytest.raises(ValueError, match=r"dense: input features \(x.shape\[-1\]\) must be 4 as at "
                       r"init, got 5$"):
        l.apply(p, s, jnp.ones((2, 5)), train=False)


def test_conv_apply_with_wrong_channels():
    l = jc.conv(4, 3, **F)
    _, p, s = l.init(KEY, (8, 8, 3))
    with pytest.raises(ValueError, match=r"conv: kernel.shape\[-2\] \(input channels of the "
                       r"kernel\) must be 5 for an input with 5 channels and groups=1, got 3"):
        l.apply(p, s, jnp.ones((1, 8, 8, 5)), train=False)


def test_dense_rejects_several_inputs():
    with pytest.raises(ValueError, match=r"dense: in_shape must be one shape \(a single input\)"):
        jc.dense(3).init(KEY, ((2,), (3,)))
