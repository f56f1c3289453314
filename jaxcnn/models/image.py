"""2-d image classifiers, built only from jaxcnn's public layers and combinators.

Parameter counts for 10 classes (checked by hand in ``tests/test_models_image.py``):

* ``lenet5()`` on 28x28x1: 61,706 (LeCun et al. 1998, with max pooling and ReLU);
  ``lenet5(variant="32")`` on 32x32x1, the classic form without padding: 61,706.
* ``digits_cnn()`` on 8x8x1: 99,178 (LeNet-style, for scikit-learn's 8x8 digits).
* ``small_cnn()`` on 32x32x3: 288,746 (3 stages of 2 conv-BN-ReLU, global pooling).
* ``vgg(11)`` / ``vgg(16)`` on 32x32x3: 9,228,362 / 14,724,042 (CIFAR VGG with batch
  norm and one dense layer).
* ``resnet20()`` / ``resnet32()`` / ``resnet56()``: 269,722 / 464,154 / 853,018 (He et
  al. 2016, option A shortcuts: 0.27M / 0.46M / 0.85M in the paper).
* ``resnet18()``: 11,173,962 (CIFAR form: 3x3 stem, no max pool); with the ImageNet stem
  and 1000 classes 11,689,512, as torchvision's.

Convolutions followed by batch norm have no bias. Every factory takes ``num_classes``
and returns logits; the input size and channels come from ``in_shape`` at ``init``.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxcnn._checks import check_bool, check_choice, check_positive_int, check_rate, fail, is_int
from jaxcnn.layers import (batch_norm, conv, dense, dropout, flatten, global_avg_pool, identity,
                           max_pool, relu, residual, serial, stateless, tanh, with_rank)

_ACTIVATIONS = {"relu": relu, "tanh": tanh}


def _check_classes(where, num_classes):
    check_positive_int(where, "num_classes", num_classes)


def _check_widths(where, what, widths):
    if (not isinstance(widths, (tuple, list)) or not widths
            or not all(is_int(w) and w > 0 for w in widths)):
        fail(where, what, "a non-empty tuple of positive ints", widths)
    return tuple(widths)


def lenet5(num_classes=10, variant="28", activation="relu"):
    """LeNet-5 (LeCun et al. 1998) with max pooling.

    ``conv(6, 5)`` - pool 2 - ``conv(16, 5)`` - pool 2 - dense 120 - dense 84 - dense
    ``num_classes``. ``variant="32"`` is the classic form for 32x32 inputs; ``"28"`` pads the
    first convolution by 2 so that 28x28 MNIST reaches the same 5x5x16 feature map
    (61,706 parameters either way for one input channel and 10 classes).

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import lenet5
      >>> s = summary(lenet5(), (28, 28, 1))
      >>> s.out_shape, s.total_params
      ((10,), 61706)
    """
    where = "lenet5"
    _check_classes(where, num_classes)
    check_choice(where, "variant", variant, ("28", "32"))
    check_choice(where, "activation", activation, tuple(_ACTIVATIONS))
    act = _ACTIVATIONS[activation]
    return with_rank(serial(conv(6, 5, padding=2 if variant == "28" else 0), act(), max_pool(2),
                            conv(16, 5), act(), max_pool(2),
                            flatten(), dense(120), act(), dense(84), act(), dense(num_classes)),
                     2, where)


def digits_cnn(num_classes=10, channels=(32, 64), hidden=128, rate=0.3):
    """A LeNet-style network for tiny images (scikit-learn's 8x8 digits).

    Two stages of two 3x3 ``same`` convolutions with ReLU and a 2x2 max pool, then
    dense ``hidden`` - dropout ``rate`` - dense ``num_classes``.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import digits_cnn
      >>> s = summary(digits_cnn(), (8, 8, 1))
      >>> s.out_shape, s.total_params
      ((10,), 99178)
    """
    where = "digits_cnn"
    _check_classes(where, num_classes)
    channels = _check_widths(where, "channels", channels)
    check_rate(where, rate)
    layers = []
    for c in channels:
        layers += [conv(c, 3, padding=1), relu(), conv(c, 3, padding=1), relu(), max_pool(2)]
    return with_rank(serial(*layers, flatten(), dense(hidden), relu(), dropout(rate),
                            dense(num_classes)), 2, where)


def conv_bn_relu(out_channels, kernel_size=3, stride=1):
    """``conv`` (``same`` padding, no bias) - ``batch_norm`` - ``relu``.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import conv_bn_relu
      >>> s = summary(conv_bn_relu(8, stride=2), (6, 6, 3))
      >>> s.out_shape, s.total_params  # 3*3*3*8 kernel + 8 scales + 8 biases
      ((3, 3, 8), 232)
    """
    return serial(conv(out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                       use_bias=False), batch_norm(), relu())


def small_cnn(num_classes=10, widths=(32, 64, 128), rate=0.0):
    """A modern small CNN: per stage two ``conv_bn_relu`` then a 2x2 max pool (the last
    stage ends in global average pooling instead), dropout ``rate``, one dense layer.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import small_cnn
      >>> s = summary(small_cnn(), (32, 32, 3))
      >>> s.out_shape, s.total_params
      ((10,), 288746)
    """
    where = "small_cnn"
    _check_classes(where, num_classes)
    widths = _check_widths(where, "widths", widths)
    check_rate(where, rate)
    stages = []
    for i, w in enumerate(widths):
        stages += [conv_bn_relu(w), conv_bn_relu(w)]
        stages.append(max_pool(2) if i < len(widths) - 1 else global_avg_pool())
    return with_rank(serial(*stages, dropout(rate), dense(num_classes)), 2, where)


VGG_CONFIGS = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}


def vgg(depth=11, num_classes=10, width=64, batch_norm=True):
    """VGG (Simonyan & Zisserman 2015) in its CIFAR form: 5 stages of 3x3 convolutions
    (``width``, 2, 4, 8, 8 times ``width`` channels; ``depth`` 11, 13, 16 or 19) each ending
    in a 2x2 max pool (``ceil_mode``, so 28x28 inputs work too), then one dense layer.
    ``batch_norm=False`` gives the original convolutions with bias and no norm.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import vgg
      >>> summary(vgg(11), (32, 32, 3)).total_params
      9228362
      >>> summary(vgg(11, width=4), (28, 28, 1)).out_shape  # ceil_mode pools: 28 -> 1
      (10,)
    """
    where = "vgg"
    check_choice(where, "depth", depth, tuple(VGG_CONFIGS))
    _check_classes(where, num_classes)
    check_positive_int(where, "width", width)
    batch_norm = check_bool(where, "batch_norm", batch_norm)
    layers = []
    for stage, n in enumerate(VGG_CONFIGS[depth]):
        c = width * min(2 ** stage, 8)
        for _ in range(n):
            layers += ([conv_bn_relu(c)] if batch_norm else [conv(c, 3, padding=1), relu()])
        layers.append(max_pool(2, ceil_mode=True))
    return with_rank(serial(*layers, global_avg_pool(), dense(num_classes)), 2, where)


def pad_shortcut(out_channels, stride=2):
    """He et al.'s option-A shortcut: subsample by ``stride`` and zero-pad the channels up
    to ``out_channels`` (no parameters).

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.models import pad_shortcut
      >>> y, _ = pad_shortcut(8).apply({}, {}, jnp.ones((1, 4, 4, 4)), train=False)
      >>> y.shape, y[0, 0, 0].tolist()
      ((1, 2, 2, 8), [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    """

    def shortcut(x):
        extra = out_channels - x.shape[-1]
        x = x[:, ::stride, ::stride, :]
        return jnp.pad(x, ((0, 0),) * (x.ndim - 1) + ((extra // 2, extra - extra // 2),))

    return stateless("pad_shortcut", shortcut)


def basic_block(out_channels, stride=1, shortcut="identity"):
    """The ResNet basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.

    ``shortcut``: ``"identity"``, ``"A"`` (:func:`pad_shortcut`) or ``"B"`` (1x1 conv and
    batch norm projection).

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import basic_block
      >>> summary(basic_block(32, stride=2, shortcut="B"), (8, 8, 16)).out_shape
      (4, 4, 32)
    """
    check_choice("basic_block", "shortcut", shortcut, ("identity", "A", "B"))
    body = serial(conv(out_channels, 3, stride=stride, padding=1, use_bias=False), batch_norm(),
                  relu(), conv(out_channels, 3, padding=1, use_bias=False), batch_norm())
    short = {"identity": identity,
             "A": lambda: pad_shortcut(out_channels, stride),
             "B": lambda: serial(conv(out_channels, 1, stride=stride, use_bias=False),
                                 batch_norm())}[shortcut]()
    return serial(residual(body, short), relu())


def _stages(widths, blocks, strides, shortcut, in_width):
    layers, prev = [], in_width
    for w, n, s in zip(widths, blocks, strides):
        for i in range(n):
            stride = s if i == 0 else 1
            change = stride != 1 or w != prev
            layers.append(basic_block(w, stride, shortcut if change else "identity"))
            prev = w
    return layers


def resnet_cifar(depth=20, num_classes=10, shortcut="A", width=16):
    """The CIFAR ResNets of He et al. 2016 (Sec. 4.2): ``depth = 6n + 2``.

    A 3x3 ``conv_bn_relu`` with ``width`` channels, three stages of ``n`` basic blocks with
    ``width``, 2 ``width`` and 4 ``width`` channels (the second and third start with stride 2),
    global average pooling and a dense layer. ``shortcut="A"`` (the paper's choice for
    CIFAR) pads with zeros; ``"B"`` projects.
    """
    where = "resnet_cifar"
    if not is_int(depth) or depth < 8 or (depth - 2) % 6:
        fail(where, "depth", "6n + 2 for n >= 1 (20, 32, 44, 56, 110, ...)", depth)
    _check_classes(where, num_classes)
    check_choice(where, "shortcut", shortcut, ("A", "B"))
    n = (depth - 2) // 6
    widths = (width, 2 * width, 4 * width)
    return with_rank(serial(conv_bn_relu(width),
                            *_stages(widths, (n,) * 3, (1, 2, 2), shortcut, width),
                            global_avg_pool(), dense(num_classes)), 2, f"resnet{depth}")


def resnet20(num_classes=10, shortcut="A"):
    """ResNet-20 for CIFAR (0.27M parameters), see :func:`resnet_cifar`.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import resnet20
      >>> s = summary(resnet20(), (32, 32, 3))
      >>> s.out_shape, s.total_params
      ((10,), 269722)
    """
    return resnet_cifar(20, num_classes, shortcut)


def resnet32(num_classes=10, shortcut="A"):
    """ResNet-32 for CIFAR (0.46M parameters), see :func:`resnet_cifar`."""
    return resnet_cifar(32, num_classes, shortcut)


def resnet56(num_classes=10, shortcut="A"):
    """ResNet-56 for CIFAR (0.85M parameters), see :func:`resnet_cifar`."""
    return resnet_cifar(56, num_classes, shortcut)


def resnet18(num_classes=10, small_input=True):
    """ResNet-18 (He et al. 2016): basic blocks ``[2, 2, 2, 2]`` with 64-512 channels and
    projection shortcuts. ``small_input=True`` (CIFAR) uses a 3x3 stride-1 stem without max
    pooling; ``False`` the ImageNet stem (7x7 stride 2, 3x3 max pool stride 2).

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import resnet18
      >>> summary(resnet18(), (32, 32, 3)).total_params
      11173962
      >>> summary(resnet18(1000, small_input=False), (224, 224, 3)).total_params  # torchvision's
      11689512
    """
    where = "resnet18"
    _check_classes(where, num_classes)
    return with_rank(serial(*resnet_stem(small_input),
                            *_stages((64, 128, 256, 512), (2, 2, 2, 2), (1, 2, 2, 2), "B", 64),
                            global_avg_pool(), dense(num_classes)), 2, where)


def resnet_stem(small_input):
    """The layers before a ResNet's first stage: a 3x3 ``conv_bn_relu(64)`` for small
    (CIFAR) inputs, else the ImageNet stem (7x7 stride-2 conv, batch norm, ReLU, 3x3
    stride-2 max pool)."""
    if check_bool("resnet_stem", "small_input", small_input):
        return [conv_bn_relu(64)]
    return [conv(64, 7, stride=2, padding=3, use_bias=False), batch_norm(), relu(),
            max_pool(3, stride=2, padding=1)]
