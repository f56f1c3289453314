"""``_checks.check_bool``, the one bool check every factory and op shares, and the flags
that use it (one error-message test each)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn import ops
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
