"""Combinators: shape threading, readable parameter paths, state threading, key splitting,
values against hand-written compositions, and every error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn as jc

KEY = jax.random.key(0)


def np_init(key, shape, dtype=jnp.float32):
    """Random values without compiling jax.random for every kernel shape."""
    del key
    return jnp.asarray(np.random.default_rng(sum(shape)).standard_normal(shape) / 3, dtype)


def conv(*args, **kw):
    return jc.conv(*args, kernel_init=np_init, bias_init=np_init, **kw)


def counter():
    """A stateful layer: counts its calls in training (like batch-norm statistics)."""
    def init(key, in_shape):
        return tuple(in_shape), {}, {"count": jnp.zeros((), jnp.int32)}

    def apply(params, state, x, *, train, key=None):
        return x, {"count": state["count"] + (1 if train else 0)}

    return jc.Layer(init, apply, "counter")


def _x(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _paths(tree):
    return sorted(jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0])


# ----------------------------------------------------------------------------- serial
def test_serial_threads_shapes_params_and_values():
    c1, c2 = conv(4, 3, padding=1), conv(2, 3, stride=2)
    net = jc.serial(c1, jc.relu(), c2, jc.flatten())
    out_shape, p, s = net.init(KEY, (7, 7, 3))
    assert out_shape == (3 * 3 * 2,)
    assert list(p) == ["conv_0", "relu_1", "conv_2", "flatten_3"]
    assert _paths(p) == ["['conv_0']['bias']", "['conv_0']['kernel']", "['conv_2']['bias']",
                         "['conv_2']['kernel']"]
    x = _x((2, 7, 7, 3))
    y, new_s = net.apply(p, s, x, train=False)
    h = jax.nn.relu(c1.apply(p["conv_0"], {}, x, train=False)[0])
    ref = c2.apply(p["conv_2"], {}, h, train=False)[0].reshape(2, -1)
    np.testing.assert_array_equal(y, ref)
    assert new_s == s and y.shape == (2, *out_shape)


def test_empty_serial_is_identity():
    assert jc.serial().init(KEY, (3, 2)) == ((3, 2), {}, {})
    x = _x((1, 3, 2))
    assert jc.serial().apply({}, {}, x, train=True)[0] is x


def test_serial_threads_state():
    net = jc.serial(counter(), jc.relu(), counter())
    _, p, s = net.init(KEY, (3,))
    x = jnp.ones((1, 3))
    _, s1 = net.apply(p, s, x, train=True)
    _, s2 = net.apply(p, s1, x, train=True)
    _, s3 = net.apply(p, s2, x, train=False)
    assert int(s2["counter_0"]["count"]) == 2 and int(s2["counter_2"]["count"]) == 2
    assert int(s3["counter_2"]["count"]) == 2 and s3["relu_1"] == {}


def test_serial_splits_keys_between_layers():
    x = jnp.ones((1, 200, 100))
    two = jc.serial(jc.dropout(0.5), jc.dropout(0.5))
    _, p, s = two.init(KEY, (200, 100))
    y, _ = two.apply(p, s, x, train=True, key=KEY)
    # independent masks drop 1 - 0.5 * 0.5 = 75%; one shared mask would drop 50%
    assert abs(float(jnp.mean(y == 0)) - 0.75) < 0.02
    # documented: child i gets fold_in(key, i)
    y1, _ = jc.serial(jc.relu(), jc.dropout(0.5)).apply({"relu_0": {}, "dropout_1": {}},
                                                        {"relu_0": {}, "dropout_1": {}}, x,
                                                        train=True, key=KEY)
    ref, _ = jc.dropout(0.5).apply({}, {}, x, train=True, key=jax.random.fold_in(KEY, 1))
    np.testing.assert_array_equal(y1, ref)


def test_named_sets_the_param_path():
    net = jc.serial(jc.named("stem", conv(2, 1)), jc.named("head", jc.dense(3, kernel_init=np_init)))
    _, p, _ = net.init(KEY, (4, 1))
    assert list(p) == ["stem_0", "head_1"]
    assert jc.named("stem", jc.relu()).name == "stem"


# ----------------------------------------------------------------------------- parallel / fan
def test_fan_out_parallel_fan_in_concat():
    net = jc.serial(jc.fan_out(3), jc.parallel(conv(2, 1), conv(3, 3, padding=1), jc.identity()),
                    jc.fan_in_concat())
    out_shape, p, s = net.init(KEY, (5, 4))
    assert out_shape == (5, 2 + 3 + 4)
    assert list(p["parallel_1"]) == ["conv_0", "conv_1", "identity_2"]
    x = _x((2, 5, 4))
    y, _ = net.apply(p, s, x, train=False)
    pp = p["parallel_1"]
    b0 = conv(2, 1).apply(pp["conv_0"], {}, x, train=False)[0]
    b1 = conv(3, 3, padding=1).apply(pp["conv_1"], {}, x, train=False)[0]
    np.testing.assert_array_equal(y, np.concatenate([b0, b1, x], axis=-1))


def test_parallel_shapes_and_keys():
    par = jc.parallel(jc.dropout(0.5), jc.dropout(0.5))
    out_shape, p, s = par.init(KEY, ((4, 3), (4, 3)))
    assert out_shape == ((4, 3), (4, 3))
    x = jnp.ones((1, 40, 30))
    y0, y1 = par.apply(p, s, (x, x), train=True, key=KEY)[0]
    assert np.any(np.asarray(y0) != np.asarray(y1))  # each branch has its own key
    assert jc.fan_out(2).init(KEY, (3, 2)) == (((3, 2), (3, 2)), {}, {})
    assert len(jc.fan_out(2).apply({}, {}, x, train=False)[0]) == 2


def test_fan_in_sum_and_concat_axes():
    a, b = _x((2, 3, 4), 1), _x((2, 3, 4), 2)
    assert jc.fan_in_sum().init(KEY, ((3, 4), (3, 4)))[0] == (3, 4)
    np.testing.assert_allclose(jc.fan_in_sum().apply({}, {}, (a, b, a), train=False)[0],
                               2 * np.asarray(a) + np.asarray(b), rtol=1e-6)
    cat0 = jc.fan_in_concat(axis=0)  # axis counts without the batch axis
    assert cat0.init(KEY, ((3, 4), (5, 4)))[0] == (8, 4)
    c = _x((2, 5, 4), 3)
    np.testing.assert_array_equal(cat0.apply({}, {}, (a, c), train=False)[0],
                                  np.concatenate([a, c], axis=1))
    assert jc.fan_in_concat(axis=-2).init(KEY, ((3, 4), (5, 4)))[0] == (8, 4)
    assert jc.fan_in_concat().init(KEY, ((3, 4), (3, 1)))[0] == (3, 5)


def test_concat_combinator():
    net = jc.concat(conv(2, 1), jc.identity(), axis=-1)
    assert net.name == "concat"
    out_shape, p, s = net.init(KEY, (6, 6, 3))
    assert out_shape == (6, 6, 5)
    assert list(p) == ["fan_out_0", "parallel_1", "fan_in_concat_2"]
    x = _x((1, 6, 6, 3))
    y, _ = net.apply(p, s, x, train=False)
    np.testing.assert_array_equal(y[..., 2:], x)


# ----------------------------------------------------------------------------- residual
def test_residual_identity_and_projection():
    block = jc.serial(conv(3, 3, padding=1), jc.relu(), conv(3, 3, padding=1))
    res = jc.residual(block)
    out_shape, p, s = res.init(KEY, (6, 6, 3))
    assert out_shape == (6, 6, 3)
    assert _paths(p)[0] == "['block']['conv_0']['bias']" and p["shortcut"] == {}
    x = _x((2, 6, 6, 3))
    y, _ = res.apply(p, s, x, train=False)
    np.testing.assert_allclose(y, block.apply(p["block"], s["block"], x, train=False)[0] + x,
                               rtol=1e-6, atol=1e-6)

    down = jc.serial(conv(5, 3, stride=2, padding=1), jc.relu())
    proj = conv(5, 1, stride=2)
    res = jc.residual(down, shortcut=proj)
    out_shape, p, s = res.init(KEY, (6, 6, 3))
    assert out_shape == (3, 3, 5) and set(p["shortcut"]) == {"kernel", "bias"}
    y, _ = res.apply(p, s, x, train=False)
    ref = (down.apply(p["block"], s["block"], x, train=False)[0]
           + proj.apply(p["shortcut"], {}, x, train=False)[0])
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


def test_residual_threads_state_and_keys():
    res = jc.residual(jc.serial(counter(), jc.dropout(0.5)), shortcut=counter())
    _, p, s = res.init(KEY, (50, 4))
    x = jnp.ones((1, 50, 4))
    y, s1 = res.apply(p, s, x, train=True, key=KEY)
    assert int(s1["block"]["counter_0"]["count"]) == 1 and int(s1["shortcut"]["count"]) == 1
    assert set(np.unique(np.asarray(y))) == {1.0, 3.0}  # dropped + 1 or 2 + 1
    y2, _ = res.apply(p, s, x, train=True, key=jax.random.key(1))
    assert np.any(np.asarray(y) != np.asarray(y2))


def test_combinators_under_jit_and_vmap():
    net = jc.residual(jc.serial(conv(2, 3, padding=1), jc.dropout(0.3)))
    members = [net.init(jax.random.key(i), (5, 2))[1] for i in range(2)]
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *members)
    xs = _x((2, 3, 5, 2))
    f = jax.jit(lambda p, x: net.apply(p, {"block": {"conv_0": {}, "dropout_1": {}},
                                             "shortcut": {}}, x, train=True, key=KEY)[0])
    batched = jax.jit(jax.vmap(f))(stacked, xs)
    for i in range(2):
        np.testing.assert_allclose(batched[i], f(members[i], xs[i]), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make", [jc.serial, jc.parallel, jc.concat,
                                  lambda *a: jc.residual(*a)])
def test_uncalled_factory_error(make):
    with pytest.raises(TypeError, match=r"argument 0 must be a Layer, got <function relu.*>\. "
                       r"Factories are always called: write relu\(\), not relu"):
        make(jc.relu)


def test_error_messages_name_the_combinator():
    with pytest.raises(TypeError, match=r"serial: argument 1 must be a Layer, got 3$"):
        jc.serial(jc.relu(), 3)
    with pytest.raises(TypeError, match=r"residual: argument 1 must be a Layer"):
        jc.residual(jc.relu(), jc.relu)
    with pytest.raises(TypeError, match=r"serial: apply needs the keyword argument train"):
        jc.serial(jc.relu()).apply({"relu_0": {}}, {"relu_0": {}}, jnp.ones((1, 2)))
    for layer, xs in [(jc.parallel(jc.relu()), (jnp.ones((1, 2)),)),
                      (jc.fan_out(2), jnp.ones((1, 2))),
                      (jc.fan_in_sum(), (jnp.ones((1, 2)),)),
                      (jc.residual(jc.relu()), jnp.ones((1, 2)))]:
        with pytest.raises(TypeError, match=rf"{layer.name}: apply needs the keyword argument"):
            layer.apply({"block": {}, "shortcut": {}, "relu_0": {}},
                        {"block": {}, "shortcut": {}, "relu_0": {}}, xs)
        with pytest.raises(TypeError, match=rf"{layer.name}: train must be a Python bool"):
            layer.apply({}, {}, xs, train="no")


@pytest.mark.parametrize("call,exc,match", [
    (lambda: jc.parallel(jc.relu(), jc.relu()).init(KEY, (3, 2)), ValueError,
     r"parallel: in_shape must be a tuple of 2 shapes \(one per branch\), got \(3, 2\)\. "
     r"Put fan_out\(n\) before parallel"),
    (lambda: jc.parallel(jc.relu(), jc.relu()).init(KEY, ((3,), (3,), (3,))), ValueError,
     r"parallel: in_shape must be a tuple of 2 shapes"),
    (lambda: jc.parallel(jc.relu(), jc.relu()).apply({"relu_0": {}, "relu_1": {}},
                                                     {"relu_0": {}, "relu_1": {}},
                                                     jnp.ones((1, 3)), train=False), TypeError,
     r"parallel: input must be a tuple of 2 arrays, got 'ArrayImpl'"),
    (lambda: jc.fan_out(0), ValueError, r"fan_out: num must be a positive int, got 0"),
    (lambda: jc.fan_out(2).init(KEY, "x"), TypeError, r"fan_out: in_shape must be a tuple of ints"),
    (lambda: jc.fan_in_sum().init(KEY, (3, 2)), ValueError,
     r"fan_in_sum: in_shape must be a tuple of shapes \(the outputs of parallel branches\), "
     r"got \(3, 2\)"),
    (lambda: jc.fan_in_sum().init(KEY, ((3, 2), (3, 1))), ValueError,
     r"fan_in_sum: the branch shapes must be all equal, got \(\(3, 2\), \(3, 1\)\)"),
    (lambda: jc.fan_in_concat(1.0), TypeError, r"fan_in_concat: axis must be an int, got 1\.0"),
    (lambda: jc.fan_in_concat(2).init(KEY, ((3, 2), (3, 2))), ValueError,
     r"fan_in_concat: axis must be in \[-2, 2\) \(no batch axis counted\), got 2"),
    (lambda: jc.fan_in_concat(-3).init(KEY, ((3, 2), (3, 2))), ValueError,
     r"fan_in_concat: axis must be in \[-2, 2\)"),
    (lambda: jc.fan_in_concat().init(KEY, ((3, 2), (4, 2))), ValueError,
     r"fan_in_concat: the branch shapes must be equal except along axis -1, "
     r"got \(\(3, 2\), \(4, 2\)\)"),
    (lambda: jc.fan_in_concat().init(KEY, ((3, 2), (3, 3, 2))), ValueError,
     r"fan_in_concat: the branch shapes must be equal except along axis -1"),
    (lambda: jc.residual(conv(4, 3)).init(KEY, (8, 3)), ValueError,
     r"residual: the block's output shape must be the shortcut's output shape \(8, 3\), "
     r"got \(6, 4\)\. Pass a projection shortcut, e\.g\. shortcut=conv\(4, 1, stride=\.\.\.\)"),
    (lambda: jc.serial(jc.relu()).init(KEY, (0, 3)), ValueError,
     r"serial: in_shape must be made of positive sizes, got \(0, 3\)"),
    (lambda: jc.residual(jc.relu()).init(KEY, None), TypeError,
     r"residual: in_shape must be a tuple of ints"),
])
def test_error_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
