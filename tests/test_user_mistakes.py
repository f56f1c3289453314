"""The mistakes a new user makes first get messages naming the mistake: the batch axis in
``in_shape``, an unbatched input, ``apply`` without the state, channels-first data and
labels outside ``[0, num_classes)`` in ``fit``."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn as jc
from jaxcnn.models import MODELS, get_model
from jaxcnn.train import fit

KEY = jax.random.key(0)
RANK = {"fcn": 1, "resnet1d": 1, "tcn": 1, "mnist1d_cnn": 1, "voxnet": 3,
        "resnet3d_small": 3, "small_cnn3d": 3}
BATCH_AXIS = "in_shape excludes the batch axis: pass x.shape[1:]"
ANY_RANK = {"unet"}  # the rank comes from in_shape unless ndim= fixes it


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_zoo_model_refuses_an_in_shape_of_another_rank(name):
    rank = RANK.get(name, 2)
    example = (8,) * rank + (1,)
    layout = {1: r"\(L, C\)", 2: r"\(H, W, C\)", 3: r"\(D, H, W, C\)"}[rank]
    for wrong in ((4,) + example, example[:-1]):  # batch axis included; channel axis left out
        where = re.sub(r"\d+", "", name) if name.startswith("vgg") else name  # vgg, vgg_bn
        msg = (rf"{where}: in_shape must be "
               rf"{layout} for this {rank}-d network, got {re.escape(str(wrong))}\. "
               + re.escape(BATCH_AXIS))
        kwargs = {"ndim": rank} if name in ANY_RANK else {}
        with pytest.raises(ValueError, match=msg):
            get_model(name, num_classes=3, **kwargs).init(KEY, wrong)


def test_a_model_of_any_rank_takes_its_rank_from_in_shape():
    net = get_model("unet", num_classes=3, depth=1, base_width=4)
    assert net.init(KEY, (8, 1))[0] == (8, 3)
    assert net.init(KEY, (4, 8, 8, 1))[0] == (4, 8, 8, 3)


def test_a_missing_channel_axis_is_named():
    with pytest.raises(ValueError, match=re.escape(
            "a single-channel example keeps its channel axis: (28, 28, 1)")):
        jc.models.lenet5().init(KEY, (28, 28))


@pytest.mark.parametrize("factory", [
    lambda: jc.conv(4, (3, 3)), lambda: jc.conv(4, 3, stride=(1, 1)),
    lambda: jc.conv_transpose(4, (3, 3)), lambda: jc.separable_conv(4, 3, padding=(1, 1)),
    lambda: jc.depthwise_conv((3, 3))])
def test_a_first_layer_with_tuple_arguments_fixes_the_rank_of_the_net(factory):
    net = jc.serial(factory(), jc.relu())
    with pytest.raises(ValueError, match=r"in_shape must be \(H, W, C\) for this 2-d network, "
                       r"got \(4, 8, 8, 2\)\. in_shape excludes the batch axis"):
        net.init(KEY, (4, 8, 8, 2))
    assert net.init(KEY, (8, 8, 2))[0][:2] in ((6, 6), (8, 8), (10, 10))


def test_int_arguments_serve_every_rank():
    net = jc.serial(jc.conv(4, 3, padding=1), jc.relu())
    for shape in ((8, 2), (8, 8, 2), (4, 4, 4, 2)):
        assert net.init(KEY, shape)[0] == shape[:-1] + (4,)


def test_an_unbatched_input_is_named():
    for net, shape in ((jc.models.lenet5(), (28, 28, 1)),
                       (jc.serial(jc.conv(4, 3), jc.flatten(), jc.dense(2)), (8, 8, 1))):
        _, params, state = net.init(KEY, shape)
        where = "lenet5" if len(params) > 3 else "conv"
        with pytest.raises(ValueError, match=rf"{where}: the input's shape must be \(N, H, W, C\): "
                           rf"a batch of 2-d examples, channels last, got {re.escape(str(shape))}\. "
                           r"Add the batch axis: x\[None\]"):
            net.apply(params, state, jnp.ones(shape), train=False)
        assert net.apply(params, state, jnp.ones((2,) + shape), train=False)[0].shape[0] == 2


@pytest.mark.parametrize("net", [jc.models.fcn(3), jc.relu(), jc.residual(jc.relu()),
                                 jc.fan_out(2)])
def test_apply_without_the_state_names_the_signature(net):
    _, params, _ = net.init(KEY, (6, 2))
    with pytest.raises(TypeError, match=r"apply takes \(params, state, x, \*, train, key=None\), "
                       r"got two positional arguments .* y, state = net\.apply\(params, state, x, "
                       r"train=False\)"):
        net.apply(params, jnp.ones((1, 6, 2)), train=False)


def test_with_rank_checks_its_arguments():
    with pytest.raises(ValueError, match="with_rank: rank must be 1, 2 or 3, got 4"):
        jc.with_rank(jc.relu(), 4, "net")
    with pytest.raises(TypeError, match="with_rank: model must be a jaxcnn Layer"):
        jc.with_rank(jc.relu, 2, "net")


NET = jc.serial(jc.flatten(), jc.dense(3))


def _fit(x, y, **kw):
    return fit(NET, optax.sgd(0.1), (x, y), epochs=1, batch_size=8, progress=False, **kw)


@pytest.mark.parametrize("shape", [(16, 1, 8, 8), (16, 3, 8, 8), (16, 1, 6, 6, 6)])
def test_fit_refuses_channels_first_data(shape):
    with pytest.raises(ValueError, match=r"fit: the training inputs' layout must be "
                       r"channels-last .* It looks channels-first .* np\.moveaxis\(x, 1, -1\)"):
        _fit(np.zeros(shape, np.float32), np.zeros(16, np.int32))


def test_fit_takes_channels_last_data_with_few_rows():
    _fit(np.zeros((16, 8, 8, 1), np.float32), np.zeros(16, np.int32))
    _fit(np.zeros((16, 2, 3, 9), np.float32), np.zeros(16, np.int32))


def test_fit_checks_labels_before_training():
    x = np.zeros((16, 4), np.float32)
    y = np.arange(16) % 3 + 1  # 1-based labels for 3 classes
    with pytest.raises(ValueError, match=re.escape(
            "fit: the train labels must be in [0, 3) for a model with 3 outputs, got 5 of 16 "
            "outside it (values 3). Labels count from 0 (1-based labels: use y - 1)")):
        _fit(x, y)
    with pytest.raises(ValueError, match=re.escape(
            "fit: the val labels must be in [0, 3) for a model with 3 outputs, got 1 of 16 "
            "outside it (values -1)")):
        _fit(x, np.zeros(16, np.int32), val=(x, np.r_[np.zeros(15, np.int32), -1]))
    with pytest.raises(ValueError, match=r"fit: the train labels must be in \[0, 2\) .* "
                       r"\(values 2, 3\)"):
        fit(jc.serial(jc.flatten(), jc.dense(1)), optax.sgd(0.1), (x, np.arange(16) % 4),
            epochs=1, batch_size=8, progress=False, task="binary")
