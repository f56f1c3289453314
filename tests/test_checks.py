"""The shared argument checks of ``jaxcnn._checks`` (bools, arrays, numeric array-likes,
keys, callables, real numbers) and the arguments that use them: flags, initializers,
activations, ``layer``/``stateless``/``named``, ``axis_name``, op inputs, losses and
metrics, augmentation, ``summary``/``interpret`` (one error-message test each)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn
from jaxcnn import ops
from jaxcnn import train as T
from jaxcnn._checks import check_bool
from jaxcnn.data import load_cifar10, load_mnist
from jaxcnn.data.augment3d import random_rotation_vertical
from jaxcnn.models import vgg


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_check_bool_accepts_python_and_numpy_bools(value):
    out = check_bool("f", "flag", value)
    assert type(out) is bool and out == bool(value)


@pytest.mark.parametrize("value", [1, 0, 1.0, "yes", None, jnp.array(True), np.array([True])])
def test_check_bool_refuses_everything_else(value):
    with pytest.raises(TypeError, match=r"^f: flag must be a bool, got "):
        check_bool("f", "flag", value)


@pytest.mark.parametrize("value", [np.True_, 1])
def test_check_bool_python_only(value):
    assert check_bool("f", "train", True, python_only=True) is True
    with pytest.raises(TypeError, match=r"^f: train must be a bool, got "):
        check_bool("f", "train", value, python_only=True)


def test_check_bool_custom_expectation():
    with pytest.raises(TypeError, match=r"^f: train must be a Python bool \(static\), got 1$"):
        check_bool("f", "train", 1, "a Python bool (static)")


@pytest.mark.parametrize("make, where, what", [
    (lambda v: jaxcnn.conv(4, 3, use_bias=v), "conv", "use_bias"),
    (lambda v: jaxcnn.conv_transpose(4, 3, use_bias=v), "conv_transpose", "use_bias"),
    (lambda v: jaxcnn.separable_conv(4, 3, use_bias=v), "separable_conv", "use_bias"),
    (lambda v: jaxcnn.depthwise_conv(3, use_bias=v), "depthwise_conv", "use_bias"),
    (lambda v: jaxcnn.dense(4, use_bias=v), "dense", "use_bias"),
    (lambda v: jaxcnn.gelu(approximate=v), "gelu", "approximate"),
    (lambda v: vgg(11, batch_norm=v), "vgg", "batch_norm"),
    (lambda v: random_rotation_vertical(quarter_turns=v), "random_rotation_vertical",
     "quarter_turns"),
])
def test_flags_are_bools(make, where, what):
    make(False)
    make(np.True_)
    with pytest.raises(TypeError, match=rf"^{where}: {what} must be a bool, got 'no'$"):
        make("no")
    with pytest.raises(TypeError, match=rf"^{where}: {what} must be a bool, got 0$"):
        make(0)  # 0 == False, but not a bool


@pytest.mark.parametrize("load, where", [(load_mnist, "load_mnist"),
                                         (load_cifar10, "load_cifar10")])
def test_download_flag_is_a_bool(tmp_path, load, where):
    # refused before any file is looked for (the folder is empty: nothing is downloaded)
    with pytest.raises(TypeError, match=rf"^{where}: download must be a bool, got 0$"):
        load(tmp_path, download=0)


def test_numpy_false_use_bias_means_no_bias():
    _, params, _ = jaxcnn.conv(4, 3, use_bias=np.False_).init(jax.random.key(0), (8, 8, 2))
    assert set(params) == {"kernel"}


def test_train_takes_python_bools_only():
    # the layer protocol's train (tests/test_layers.py) and ops.batch_norm's alike
    x = jnp.arange(8.0).reshape(2, 2, 2, 1)
    ops.batch_norm(x, train=True)
    with pytest.raises(TypeError, match=r"^batch_norm: train must be a Python bool \(it is "
                       r"static: not a traced array\), got np.True_$"):
        ops.batch_norm(x, train=np.True_)


# ----------------------------------------------------------------------------- callables, numbers
def test_check_callable_and_check_real():
    from jaxcnn._checks import check_callable, check_real
    assert check_callable("f", "fn", len) is len
    with pytest.raises(TypeError, match=r"^f: fn must be a callable, got 3$"):
        check_callable("f", "fn", 3)
    assert check_real("f", "alpha", 2) == 2.0 and type(check_real("f", "alpha", 2)) is float
    with pytest.raises(TypeError, match=r"^f: alpha must be a real number, got True$"):
        check_real("f", "alpha", True)
    with pytest.raises(ValueError, match=r"^f: alpha must be finite, got nan$"):
        check_real("f", "alpha", float("nan"))


INIT_FACTORIES = [
    (lambda **kw: jaxcnn.conv(4, 3, **kw), "conv", (3, 3, 2, 4), ("kernel_init", "bias_init")),
    (lambda **kw: jaxcnn.conv_transpose(4, 3, **kw), "conv_transpose", (3, 3, 2, 4),
     ("kernel_init", "bias_init")),
    (lambda **kw: jaxcnn.separable_conv(4, 3, **kw), "separable_conv", (3, 3, 1, 2),
     ("kernel_init", "bias_init")),
    (lambda **kw: jaxcnn.depthwise_conv(3, **kw), "depthwise_conv", (3, 3, 1, 2),
     ("kernel_init", "bias_init")),
    (lambda **kw: jaxcnn.dense(4, **kw), "dense", (2, 4), ("kernel_init", "bias_init")),
    (lambda **kw: jaxcnn.batch_norm(**kw), "batch_norm", (2,), ("scale_init", "bias_init")),
]


@pytest.mark.parametrize("make, where, shape, whats", INIT_FACTORIES,
                         ids=[w for _, w, _, _ in INIT_FACTORIES])
def test_initializers_are_checked(make, where, shape, whats):
    for what in whats:
        with pytest.raises(TypeError, match=rf"^{where}: {what} must be an initializer: a "
                           r"callable \(key, shape, dtype\) -> array, got 'he_normal'\. e\.g\. "):
            make(**{what: "he_normal"})
    # a factory passed uncalled is caught at init, by the shape of what it returns
    what = whats[0]
    layer = make(**{what: jax.nn.initializers.he_normal})
    with pytest.raises(TypeError, match=rf"^{where}: {what}\(key, {re.escape(str(shape))}\) must "
                       rf"be an array of shape {re.escape(str(shape))}, got 'function'\. "
                       r"Initializer factories are called first: he_normal\(\), not he_normal$"):
        layer.init(jax.random.key(0), (8, 8, 2))
    # and a working one is used
    _, params, _ = make(**{what: jax.nn.initializers.constant(0.5)}).init(
        jax.random.key(0), (8, 8, 2))
    leaf = params["kernel" if "kernel" in params else "depthwise_kernel" if "depthwise_kernel"
                  in params else "scale"]
    np.testing.assert_array_equal(leaf, np.full(shape, 0.5, np.float32))


@pytest.mark.parametrize("build, message", [
    (lambda: jaxcnn.activation("sin"), r"^activation: fn must be a callable x -> y, got 'sin'$"),
    (lambda: jaxcnn.activation(jnp.sin, name=3), r"^activation: name must be a str or None, "
     r"got 3$"),
    (lambda: jaxcnn.stateless("sin", None), r"^sin: fn must be a callable x -> y, got None$"),
    (lambda: jaxcnn.stateless(None, jnp.sin), r"^stateless: name must be a str, got None$"),
    (lambda: jaxcnn.layer(1, lambda k, s: ({}, {}), lambda *a: a), r"^layer: name must be a "
     r"str, got 1$"),
    (lambda: jaxcnn.layer("mine", None, lambda *a: a), r"^mine: init_params must be a callable "
     r"\(key, in_shape\) -> \(params, state\), got None$"),
    (lambda: jaxcnn.layer("mine", lambda k, s: ({}, {}), "f"), r"^mine: forward must be a "
     r"callable \(params, state, x, train, key\) -> \(y, state\), got 'f'$"),
    (lambda: jaxcnn.named(3, jaxcnn.relu()), r"^named: name must be a str, got 3$"),
    (lambda: jaxcnn.named("act", jaxcnn.relu), r"^named: argument 0 must be a Layer, got "
     r"<function relu .*>\. Factories are always called: write relu\(\), not relu$"),
    (lambda: jaxcnn.elu("1"), r"^elu: alpha must be a real number, got '1'$"),
    (lambda: jaxcnn.leaky_relu(float("inf")), r"^leaky_relu: negative_slope must be finite, "
     r"got inf$"),
    (lambda: jaxcnn.softmax(1.5), r"^softmax: axis must be an int or a non-empty tuple of "
     r"ints, got 1\.5$"),
    (lambda: jaxcnn.log_softmax(()), r"^log_softmax: axis must be an int or a non-empty tuple "
     r"of ints, got \(\)$"),
    (lambda: jaxcnn.batch_norm(axis_name=1), r"^batch_norm: axis_name must be None, a str or "
     r"a tuple of strs \(the name given to jax\.vmap/pmap/shard_map\), got 1$"),
    (lambda: ops.batch_norm(jnp.ones((2, 3)), train=True, axis_name=("b", 2)),
     r"^batch_norm: axis_name must be None, a str or a tuple of strs"),
])
def test_layer_arguments_are_checked(build, message):
    with pytest.raises(TypeError if "finite" not in message else ValueError, match=message):
        build()


def test_checked_arguments_still_work():
    x = jnp.array([[-1.0, 2.0]])
    np.testing.assert_allclose(jaxcnn.elu(2).apply({}, {}, x, train=False)[0],
                               [[2 * (np.exp(-1.0) - 1), 2.0]], rtol=1e-6)
    np.testing.assert_allclose(jaxcnn.leaky_relu(0.5).apply({}, {}, x, train=False)[0],
                               [[-0.5, 2.0]])
    np.testing.assert_allclose(jaxcnn.softmax((0, 1)).apply({}, {}, x, train=False)[0].sum(), 1.0,
                               rtol=1e-6)
    assert jaxcnn.named("act", jaxcnn.relu()).name == "act"
    assert jaxcnn.activation(jnp.sin).name == "sin"


# ----------------------------------------------------------------------------- arrays
X4 = jnp.ones((1, 4, 4, 1))
ARRAY_OPS = [
    ("conv", lambda x: ops.conv(x, jnp.ones((3, 3, 1, 2)))),
    ("conv_transpose", lambda x: ops.conv_transpose(x, jnp.ones((3, 3, 1, 2)))),
    ("separable_conv", lambda x: ops.separable_conv(x, jnp.ones((3, 3, 1, 1)),
                                                    jnp.ones((1, 1, 1, 2)))),
    ("max_pool", lambda x: ops.max_pool(x, 2)), ("min_pool", lambda x: ops.min_pool(x, 2)),
    ("sum_pool", lambda x: ops.sum_pool(x, 2)), ("avg_pool", lambda x: ops.avg_pool(x, 2)),
    ("lp_pool", lambda x: ops.lp_pool(x, 2, 2)),
    ("max_unpool", lambda x: ops.max_unpool(x, jnp.zeros((1, 4, 4, 1), jnp.int32), 2)),
    ("global_avg_pool", ops.global_avg_pool), ("global_max_pool", ops.global_max_pool),
    ("adaptive_avg_pool", lambda x: ops.adaptive_avg_pool(x, 2)),
    ("adaptive_max_pool", lambda x: ops.adaptive_max_pool(x, 2)),
    ("batch_norm", lambda x: ops.batch_norm(x, train=True)),
    ("group_norm", lambda x: ops.group_norm(x, 1)), ("layer_norm", ops.layer_norm),
    ("instance_norm", ops.instance_norm), ("upsample", lambda x: ops.upsample(x, size=8)),
    ("pixel_shuffle", lambda x: ops.pixel_shuffle(x, 1)),
    ("pixel_unshuffle", lambda x: ops.pixel_unshuffle(x, 2)),
    ("pad", lambda x: ops.pad(x, 1)), ("crop", lambda x: ops.crop(x, 1)),
]


@pytest.mark.parametrize("where, op", ARRAY_OPS, ids=[w for w, _ in ARRAY_OPS])
def test_ops_refuse_non_arrays(where, op):
    op(X4)
    op(np.ones((1, 4, 4, 1), np.float32))  # numpy arrays are arrays
    with pytest.raises(TypeError, match=rf"^{where}: x must be a jax or numpy array, got "
                       r"<class 'list'>\. Convert it first: jnp\.asarray\(x\)$"):
        op(np.ones((1, 4, 4, 1)).tolist())
    with pytest.raises(TypeError, match=rf"^{where}: x must be a jax or numpy array, got "
                       r"<class 'NoneType'>$"):
        op(None)


def test_conv_kernel_and_bias_must_be_arrays():
    with pytest.raises(TypeError, match=r"^conv: kernel must be a jax or numpy array, got "
                       r"<class 'tuple'>\. Convert it first: jnp\.asarray\(kernel\)$"):
        ops.conv(X4, (1.0, 2.0))
    with pytest.raises(TypeError, match=r"^conv: bias must be a jax or numpy array, got "
                       r"<class 'list'>"):
        ops.conv(X4, jnp.ones((3, 3, 1, 2)), [0.0, 0.0])
    with pytest.raises(TypeError, match=r"^separable_conv: pointwise_kernel must be a jax or "
                       r"numpy array, got <class 'str'>$"):
        ops.separable_conv(X4, jnp.ones((3, 3, 1, 1)), "w")


def test_check_array_accepts_tracers():
    jax.jit(lambda x: ops.max_pool(x, 2))(X4)
    jax.grad(lambda x: ops.conv(x, jnp.ones((3, 3, 1, 2))).sum())(X4)


def test_pad_value_is_a_real_number():
    np.testing.assert_array_equal(ops.pad(X4, 1, "constant", np.float32(2.0))[0, 0, :, 0],
                                  [2.0] * 6)
    np.testing.assert_array_equal(ops.pad(X4, 1, "constant", jnp.array(3.0))[0, 0, 0, 0], 3.0)
    for bad in ("0", None, (1.0,), True, jnp.ones(2)):
        with pytest.raises(TypeError, match=r"^pad: value must be a real number \(or a 0-d "
                           r"array\), got "):
            ops.pad(X4, 1, "constant", bad)


# ----------------------------------------------------------------------------- losses, metrics

LOGITS = jnp.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
LABELS = jnp.array([0, 2])


@pytest.mark.parametrize("where, call", [
    ("softmax_cross_entropy", lambda **kw: T.softmax_cross_entropy(**{
        "logits": LOGITS, "labels": LABELS, **kw})),
    ("accuracy", lambda **kw: T.accuracy(**{"logits": LOGITS, "labels": LABELS, **kw})),
    ("top_k_accuracy", lambda **kw: T.top_k_accuracy(**{"logits": LOGITS, "labels": LABELS,
                                                         "k": 2, **kw})),
])
def test_multiclass_metric_arguments_are_checked(where, call):
    call()
    call(logits=LOGITS.tolist(), labels=[0, 2])  # lists of numbers are arrays too
    with pytest.raises(TypeError, match=rf"^{where}: logits must be an array \(or a list of "
                       r"numbers\), got None$"):
        call(logits=None)
    with pytest.raises(TypeError, match=rf"^{where}: labels must be an array \(or a list of "
                       r"numbers\), got 'cat'$"):
        call(labels="cat")
    with pytest.raises(ValueError, match=rf"^{where}: mask shape must be \(2,\) \(one entry per "
                       r"example\), got \(3,\)$"):
        call(mask=jnp.ones(3))
    call(mask=jnp.ones((2, 1)))  # any shape with one entry per example


@pytest.mark.parametrize("call, where, shape", [
    (lambda: T.accuracy(LOGITS, LABELS[:, None]), "accuracy", r"\(2, 1\)"),
    (lambda: T.accuracy(LOGITS, jnp.array([0, 1, 2])), "accuracy", r"\(3,\)"),
    (lambda: T.top_k_accuracy(LOGITS, LABELS[:1], 2), "top_k_accuracy", r"\(1,\)"),
    (lambda: T.confusion_matrix(LABELS, jnp.array([0, 1, 2]), 3), "confusion_matrix",
     r"\(2,\)"),
])
def test_labels_must_match_predictions(call, where, shape):
    # (2, 1) labels against (2,) predictions used to broadcast to a (2, 2) comparison
    with pytest.raises(ValueError, match=rf"^{where}: labels shape must be .* \(one label per "
                       rf"prediction\), got {shape}$"):
        call()


def test_scalar_logits_are_refused():
    for f, where in ((T.accuracy, "accuracy"), (T.softmax_cross_entropy, "softmax_cross_entropy")):
        with pytest.raises(ValueError, match=rf"^{where}: logits rank must be >= 1 "
                           r"\(\.\.\., num_classes\), got 0$"):
            f(1.5, 0)


def test_other_losses_and_metrics_refuse_non_arrays():
    with pytest.raises(TypeError, match=r"^mse: predictions must be an array"):
        T.mse("x", jnp.ones(2))
    with pytest.raises(TypeError, match=r"^binary_cross_entropy: labels must be an array"):
        T.binary_cross_entropy(jnp.ones(2), None)
    with pytest.raises(TypeError, match=r"^roc_auc: scores must be an array"):
        T.roc_auc(object(), jnp.ones(2))
    with pytest.raises(TypeError, match=r"^confusion_matrix: preds must be an array"):
        T.confusion_matrix(LABELS, "x", 3)
    with pytest.raises(TypeError, match=r"^softmax_cross_entropy: class_weights must be a "
                       r"sequence of 3 weights \(one per class\), got 'he'$"):
        T.softmax_cross_entropy(LOGITS, LABELS, class_weights="he")


def test_create_train_state_key_and_num_params():
    model = jaxcnn.dense(2)
    for bad, got in ((0, r"<class 'int'>"), (jax.random.split(jax.random.key(0)),
                                             r"'key<fry> array of shape \(2,\)'"),
                     (jnp.zeros(2, jnp.float32), r"'float32 array of shape \(2,\)'")):
        with pytest.raises(TypeError, match=r"^create_train_state: key must be one jax\.random "
                           rf"key \(jax\.random\.key\(0\) or jax\.random\.PRNGKey\(0\)\), got {got}$"):
            T.create_train_state(model, optax.sgd(0.1), bad, (3,))
    ts = T.create_train_state(model, optax.sgd(0.1), jax.random.PRNGKey(0), (3,))
    assert T.num_params(ts.params) == 8
    with pytest.raises(TypeError, match=r"^num_params: params must be a pytree of arrays, got "
                       r"<class 'str'>$"):
        T.num_params({"w": "x"})


# ----------------------------------------------------------------------------- augmentation
def test_augmentation_arguments_are_checked():
    from jaxcnn.data import augment, augment3d
    x = jnp.zeros((2, 6, 6, 1))
    np.testing.assert_array_equal(augment.affine(x, jnp.zeros(2), jnp.zeros((2, 2)), jnp.ones(2),
                                                 mode="constant", cval=1)[0, 0, 0], [0.0])
    # an int cval is taken as a float and fills what a 2-pixel shift uncovers
    shifted = augment.affine(x, jnp.zeros(2), jnp.full((2, 2), 2.0), jnp.ones(2),
                             mode="constant", cval=1)
    assert shifted.dtype == jnp.float32 and float(shifted.max()) == 1.0
    assert float(shifted.min()) == 0.0
    for make, where in ((lambda v: augment.random_affine(10.0, cval=v), "random_affine"),
                        (lambda v: augment.random_rotation(cval=v), "random_rotation"),
                        (lambda v: augment.affine(x, jnp.zeros(2), jnp.zeros((2, 2)),
                                                  jnp.ones(2), cval=v), "affine")):
        with pytest.raises(TypeError, match=rf"^{'random_affine' if where != 'affine' else where}"
                           r": cval must be a real number, got None$"):
            make(None)
    for bad in (None, 1.5, 2):
        with pytest.raises(ValueError, match=r"^random_flip3d: axes must be a non-empty tuple of "
                           r"spatial axes in \{0, 1, 2\}, got "):
            augment3d.random_flip3d(axes=bad)
    augment3d.random_flip3d(axes=[0, 1])  # a list of axes is fine


def test_summary_and_interpret_need_a_model():
    from jaxcnn import interpret
    net = jaxcnn.serial(jaxcnn.conv(2, 3), jaxcnn.relu(), jaxcnn.flatten(), jaxcnn.dense(3))
    with pytest.raises(TypeError, match=r"^summary: model must be a jaxcnn Layer \(init, apply\), "
                       r"got 'str'$"):
        jaxcnn.summary("net", (8, 8, 1))
    with pytest.raises(TypeError, match=r"^summary: model must be a jaxcnn Layer \(init, apply\), "
                       r"got 'function'\. Factories are always called: write lenet5\(\), not "
                       r"lenet5$"):
        jaxcnn.summary(jaxcnn.relu, (8, 8, 1))
    _, params, state = net.init(jax.random.key(0), (8, 8, 1))
    x = jnp.ones((1, 8, 8, 1))
    for f, where in ((lambda m: interpret.activations(m, params, state, x), "activations"),
                     (lambda m: interpret.saliency(m, params, state, x), "saliency"),
                     (lambda m: interpret.grad_cam(m, params, state, x, "conv_0"), "grad_cam")):
        with pytest.raises(TypeError, match=rf"^{where}: model must be a jaxcnn Layer"):
            f(None)
    assert interpret.saliency(net, params, state, x).shape == x.shape
    assert interpret.grad_cam(net, params, state, x, "conv_0").shape == (1, 6, 6)
