"""2-d model zoo: parameter counts computed by hand here, shapes, LeNet-5 against flax,
the option-A shortcut against numpy, the registry's errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import serial
from jaxcnn.models import (basic_block, conv_bn_relu, get_model, lenet5, list_models,
                           pad_shortcut, resnet18, resnet20, resnet_cifar, small_cnn, vgg)


def conv_p(k, cin, cout, bias=False):
    return k * k * cin * cout + (cout if bias else 0)


def bn_p(c):
    return 2 * c  # scale and bias (running mean/var are state, not params)


def dense_p(i, o):
    return i * o + o


def count(model, in_shape):
    """Number of parameters, from shapes only (no arrays are allocated)."""
    params = abstract_init(model, in_shape)[1]
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def resnet_cifar_count(n, shortcut="A", classes=10):
    total = conv_p(3, 3, 16) + bn_p(16)
    prev = 16
    for w in (16, 32, 64):
        for i in range(n):
            total += conv_p(3, prev, w) + bn_p(w) + conv_p(3, w, w) + bn_p(w)
            if shortcut == "B" and prev != w:
                total += conv_p(1, prev, w) + bn_p(w)
            prev = w
    return total + dense_p(64, classes)


def resnet18_count(classes, stem):
    total = conv_p(stem, 3, 64) + bn_p(64)
    prev = 64
    for w in (64, 128, 256, 512):
        for i in range(2):
            total += conv_p(3, prev, w) + bn_p(w) + conv_p(3, w, w) + bn_p(w)
            if prev != w:
                total += conv_p(1, prev, w) + bn_p(w)
            prev = w
    return total + dense_p(512, classes)


def test_lenet5_counts():
    expected = (conv_p(5, 1, 6, True) + conv_p(5, 6, 16, True) + dense_p(16 * 5 * 5, 120)
                + dense_p(120, 84) + dense_p(84, 10))
    assert expected == 61_706
    assert count(lenet5(), (28, 28, 1)) == 61_706
    assert count(lenet5(variant="32"), (32, 32, 1)) == 61_706
    assert count(lenet5(variant="32"), (32, 32, 3)) == 61_706 + 5 * 5 * 2 * 6


def test_resnet_counts():
    assert resnet_cifar_count(3) == 269_722  # "0.27M" in He et al. 2016, Table 6
    assert count(resnet20(), (32, 32, 3)) == 269_722
    assert count(resnet20(shortcut="B"), (32, 32, 3)) == resnet_cifar_count(3, "B")
    assert count(resnet_cifar(32), (32, 32, 3)) == resnet_cifar_count(5)  # 0.46M
    assert count(resnet_cifar(56), (32, 32, 3)) == resnet_cifar_count(9)  # 0.85M
    assert round(resnet_cifar_count(5) / 1e6, 2) == 0.46
    assert round(resnet_cifar_count(9) / 1e6, 2) == 0.85
    assert resnet18_count(1000, 7) == 11_689_512  # torchvision's resnet18
    assert count(resnet18(1000, small_input=False), (64, 64, 3)) == 11_689_512
    assert count(resnet18(), (32, 32, 3)) == resnet18_count(10, 3) == 11_173_962


def test_vgg_and_small_cnn_counts():
    widths = [64, 128, 256, 256, 512, 512, 512, 512]  # VGG-11: 1, 1, 2, 2, 2 convs per stage
    expected, prev = 0, 3
    for w in widths:
        expected += conv_p(3, prev, w) + bn_p(w)
        prev = w
    assert count(vgg(11), (32, 32, 3)) == expected + dense_p(512, 10)
    expected, prev = 0, 3
    for w in (32, 32, 64, 64, 128, 128):
        expected += conv_p(3, prev, w) + bn_p(w)
        prev = w
    assert count(small_cnn(), (32, 32, 3)) == expected + dense_p(128, 10)


def abstract_init(model, in_shape):
    """``model.init`` traced with shapes only: (out_shape, params, state) as structs."""
    box = {}

    def init(key):
        box["out"], params, state = model.init(key, in_shape)
        return params, state

    params, state = jax.eval_shape(init, jax.random.key(0))
    return box["out"], params, state


def test_shapes_any_input_size():
    cases = [(vgg(11, width=8), (28, 28, 1), 10), (vgg(16, width=8), (32, 32, 3), 10),
             (resnet18(7), (16, 16, 3), 7), (small_cnn(5), (9, 9, 2), 5),
             (get_model("digits_cnn"), (8, 8, 1), 10)]
    for model, shape, classes in cases:
        out, params, state = abstract_init(model, shape)
        assert out == (classes,)
        y = jax.eval_shape(lambda p, s, x: model.apply(p, s, x, train=True,
                                                       key=jax.random.key(0)),
                           params, state, jax.ShapeDtypeStruct((2,) + shape, jnp.float32))
        assert y[0].shape == (2,) + out


def test_lenet5_matches_flax(rng):
    class FlaxLeNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(6, (5, 5), padding=2)(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.relu(nn.Conv(16, (5, 5), padding="VALID")(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = x.reshape(x.shape[0], -1)
            x = nn.relu(nn.Dense(120)(x))
            x = nn.relu(nn.Dense(84)(x))
            return nn.Dense(10)(x)

    model = lenet5()
    _, params, state = model.init(jax.random.key(1), (28, 28, 1))
    p = lambda name: {"kernel": params[name]["kernel"], "bias": params[name]["bias"]}
    flax_params = {"params": {"Conv_0": p("conv_0"), "Conv_1": p("conv_3"), "Dense_0": p("dense_7"),
                              "Dense_1": p("dense_9"), "Dense_2": p("dense_11")}}
    x = jnp.asarray(rng.normal(size=(3, 28, 28, 1)), jnp.float32)
    ours, _ = jax.jit(lambda p, x: model.apply(p, state, x, train=False))(params, x)
    np.testing.assert_allclose(ours, FlaxLeNet().apply(flax_params, x), rtol=2e-5, atol=2e-5)


def test_pad_shortcut_matches_numpy(rng):
    x = rng.normal(size=(2, 6, 6, 4)).astype(np.float32)
    y, _ = pad_shortcut(8, 2).apply({}, {}, jnp.asarray(x), train=False)
    expected = np.zeros((2, 3, 3, 8), np.float32)
    expected[..., 2:6] = x[:, ::2, ::2, :]
    np.testing.assert_array_equal(y, expected)


def test_resnet_block_runs_and_updates_batch_norm(rng):
    # the stem and an option-A downsampling block: the code path of every CIFAR ResNet
    model = serial(conv_bn_relu(4), basic_block(8, stride=2, shortcut="A"))
    _, params, state = model.init(jax.random.key(0), (6, 6, 3))
    x = jnp.asarray(rng.normal(size=(4, 6, 6, 3)), jnp.float32)
    y, new_state = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))(params, state, x)
    assert y.shape == (4, 3, 3, 8) and np.all(np.isfinite(y)) and np.all(y >= 0)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state, new_state)
    assert len(jax.tree.leaves(changed)) == 6 and all(jax.tree.leaves(changed))


def test_registry_and_errors():
    assert {"lenet5", "resnet20", "resnet18", "vgg11", "small_cnn", "digits_cnn"} <= set(
        list_models())
    with pytest.raises(ValueError, match="get_model: name must be a registered model"):
        get_model("resnet999")
    with pytest.raises(ValueError, match="resnet_cifar: depth must be 6n \\+ 2"):
        resnet_cifar(21)
    with pytest.raises(ValueError, match="lenet5: variant must be one of '28', '32'"):
        lenet5(variant="64")
    with pytest.raises(ValueError, match="lenet5: num_classes must be a positive int"):
        lenet5(0)
    with pytest.raises(ValueError, match="vgg: depth must be one of 11, 13, 16, 19"):
        vgg(12)
    with pytest.raises(ValueError, match="small_cnn: widths must be a non-empty tuple"):
        small_cnn(widths=())
