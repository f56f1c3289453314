"""The ImageNet classifiers people port most, laid out as torchvision lays them out, so
that :func:`jaxcnn.from_torch` loads torchvision's state dicts into them.

Parameter counts for 1000 classes on 224x224x3 (torchvision's published figures, checked
by the doctests below; ``tests/test_models_imagenet.py`` checks logits against torch twins
with torchvision's module names):

* ``resnet34(1000, small_input=False)``: 21,797,672; ``resnet50(...)``: 25,557,032
  (``small_input=True``, the default, is the CIFAR form: 3x3 stem, no max pool).
* ``mobilenet_v2(1000)``: 3,504,872 (inverted residuals, depthwise convolutions, ReLU6).
* ``shufflenet_v2(1000)``: 2,278,604 (the 1.0x net: channel split and shuffle).
* ``squeezenet(1000)``: 1,235,496 (SqueezeNet 1.1: fire modules).
* ``alexnet(1000)``: 61,100,840 (torchvision's single-GPU form).
* ``vgg_bn(11)``: 132,868,840; ``vgg_bn(16)``: 138,365,992 (``vgg11_bn``, ``vgg16_bn``).

Every factory takes ``num_classes`` and returns logits; convolutions followed by batch
norm have no bias (except in VGG, as torchvision has it); dropout ``rate`` defaults are
torchvision's.
"""

from __future__ import annotations

from jaxcnn._checks import check_choice, check_rate, fail, is_int
from jaxcnn.layers import (adaptive_avg_pool, batch_norm, channel_shuffle, channel_split, concat,
                           conv, dense, depthwise_conv, dropout, fan_in_concat, fan_out, flatten,
                           global_avg_pool, identity, max_pool, parallel, relu, relu6, residual,
                           serial, with_rank)
from jaxcnn.models.image import VGG_CONFIGS, _check_classes, _stages, resnet_stem


def resnet34(num_classes=10, small_input=True):
    """ResNet-34 (He et al. 2016): basic blocks ``[3, 4, 6, 3]``, projection shortcuts;
    ``small_input`` as for :func:`jaxcnn.models.resnet18`.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import resnet34
      >>> summary(resnet34(1000, small_input=False), (224, 224, 3)).total_params
      21797672
    """
    _check_classes("resnet34", num_classes)
    return with_rank(serial(*resnet_stem(small_input),
                            *_stages((64, 128, 256, 512), (3, 4, 6, 3), (1, 2, 2, 2), "B", 64),
                            global_avg_pool(), dense(num_classes)), 2, "resnet34")


def bottleneck(width, stride=1, project=False):
    """torchvision's ResNet bottleneck (v1.5: the stride on the 3x3): 1x1 to ``width``,
    3x3, 1x1 to ``4 * width``, each followed by batch norm; a 1x1 projection shortcut
    when ``project``.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models.imagenet import bottleneck
      >>> summary(bottleneck(16, stride=2, project=True), (8, 8, 32)).out_shape
      (4, 4, 64)
    """
    body = serial(conv(width, 1, use_bias=False), batch_norm(), relu(),
                  conv(width, 3, stride=stride, padding=1, use_bias=False), batch_norm(), relu(),
                  conv(4 * width, 1, use_bias=False), batch_norm())
    short = (serial(conv(4 * width, 1, stride=stride, use_bias=False), batch_norm())
             if project else identity())
    return serial(residual(body, short), relu())


def resnet50(num_classes=10, small_input=True):
    """ResNet-50 (He et al. 2016) with torchvision's bottlenecks ``[3, 4, 6, 3]``.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import resnet50
      >>> summary(resnet50(1000, small_input=False), (224, 224, 3)).total_params
      25557032
    """
    _check_classes("resnet50", num_classes)
    blocks = []
    for i, (width, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for j in range(n):
            blocks.append(bottleneck(width, 2 if i > 0 and j == 0 else 1, project=j == 0))
    return with_rank(serial(*resnet_stem(small_input), *blocks, global_avg_pool(),
                            dense(num_classes)), 2, "resnet50")


def _conv_bn(out_channels, kernel_size=1, stride=1, act=relu6, depthwise=False):
    c = (depthwise_conv(kernel_size, stride, padding=kernel_size // 2, use_bias=False)
         if depthwise else conv(out_channels, kernel_size, stride, padding=kernel_size // 2,
                                use_bias=False))
    return [c, batch_norm()] + ([act()] if act else [])


def inverted_residual(in_channels, out_channels, stride, expand_ratio):
    """MobileNetV2's block: 1x1 expansion (unless ``expand_ratio == 1``), 3x3 depthwise,
    linear 1x1 projection; the identity added when the shape is kept.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models.imagenet import inverted_residual
      >>> summary(inverted_residual(16, 24, 2, 6), (8, 8, 16)).out_shape
      (4, 4, 24)
    """
    hidden = in_channels * expand_ratio
    layers = _conv_bn(hidden) if expand_ratio != 1 else []
    layers += _conv_bn(hidden, 3, stride, depthwise=True) + _conv_bn(out_channels, act=None)
    body = serial(*layers)
    return residual(body) if stride == 1 and in_channels == out_channels else body


def mobilenet_v2(num_classes=1000, rate=0.2):
    """MobileNetV2 (Sandler et al. 2018), width 1.0, as torchvision's ``mobilenet_v2``.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import mobilenet_v2
      >>> summary(mobilenet_v2(), (224, 224, 3)).total_params
      3504872
    """
    _check_classes("mobilenet_v2", num_classes)
    check_rate("mobilenet_v2", rate)
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))
    features, c_in = [serial(*_conv_bn(32, 3, 2))], 32
    for t, c, n, s in settings:
        for i in range(n):
            features.append(inverted_residual(c_in, c, s if i == 0 else 1, t))
            c_in = c
    features.append(serial(*_conv_bn(1280)))
    return with_rank(serial(*features, global_avg_pool(), dropout(rate), dense(num_classes)),
                     2, "mobilenet_v2")


def shuffle_unit(in_channels, out_channels, stride):
    """ShuffleNetV2's unit: stride 1 splits the channels in half and transforms one half;
    stride 2 transforms two copies (a depthwise branch and the main branch); then the
    halves are concatenated and shuffled.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models.imagenet import shuffle_unit
      >>> summary(shuffle_unit(24, 116, 2), (8, 8, 24)).out_shape
      (4, 4, 116)
    """
    half = out_channels // 2
    main = serial(*_conv_bn(half, act=relu), *_conv_bn(half, 3, stride, None, depthwise=True),
                  *_conv_bn(half, act=relu))
    if stride == 1:
        if in_channels != out_channels:
            fail("shuffle_unit", "in_channels", f"out_channels ({out_channels}) at stride 1",
                 in_channels)
        return serial(channel_split(2), parallel(identity(), main), fan_in_concat(),
                      channel_shuffle(2))
    side = serial(*_conv_bn(in_channels, 3, stride, None, depthwise=True),
                  *_conv_bn(half, act=relu))
    return serial(fan_out(2), parallel(side, main), fan_in_concat(), channel_shuffle(2))


def shufflenet_v2(num_classes=1000, widths=(24, 116, 232, 464, 1024), repeats=(4, 8, 4)):
    """ShuffleNetV2 (Ma et al. 2018); the defaults are the 1.0x net of torchvision's
    ``shufflenet_v2_x1_0``.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import shufflenet_v2
      >>> summary(shufflenet_v2(), (224, 224, 3)).total_params
      2278604
    """
    _check_classes("shufflenet_v2", num_classes)
    if (not isinstance(widths, (tuple, list)) or len(widths) != len(repeats) + 2
            or not all(is_int(w) and w > 0 and w % 2 == 0 for w in widths)):
        fail("shufflenet_v2", "widths", f"{len(repeats) + 2} positive even ints", widths)
    layers, c_in = [*_conv_bn(widths[0], 3, 2, relu), max_pool(3, 2, 1)], widths[0]
    for c, n in zip(widths[1:-1], repeats):
        layers += [shuffle_unit(c_in, c, 2)] + [shuffle_unit(c, c, 1) for _ in range(n - 1)]
        c_in = c
    return with_rank(serial(*layers, *_conv_bn(widths[-1], act=relu), global_avg_pool(),
                            dense(num_classes)), 2, "shufflenet_v2")


def fire(squeeze, expand):
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expansions concatenated.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models.imagenet import fire
      >>> summary(fire(16, 64), (8, 8, 64)).out_shape
      (8, 8, 128)
    """
    return serial(conv(squeeze, 1), relu(), concat(serial(conv(expand, 1), relu()),
                                                    serial(conv(expand, 3, padding=1), relu())))


def squeezenet(num_classes=1000, rate=0.5):
    """SqueezeNet 1.1 (Iandola et al. 2016), as torchvision's ``squeezenet1_1``.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import squeezenet
      >>> summary(squeezenet(), (224, 224, 3)).total_params
      1235496
    """
    _check_classes("squeezenet", num_classes)
    check_rate("squeezenet", rate)
    pool = lambda: max_pool(3, 2, ceil_mode=True)  # noqa: E731
    return with_rank(serial(
        conv(64, 3, stride=2), relu(), pool(), fire(16, 64), fire(16, 64), pool(),
        fire(32, 128), fire(32, 128), pool(), fire(48, 192), fire(48, 192), fire(64, 256),
        fire(64, 256), dropout(rate), conv(num_classes, 1), relu(), global_avg_pool()),
        2, "squeezenet")


def alexnet(num_classes=1000, rate=0.5):
    """AlexNet (Krizhevsky et al. 2012) in torchvision's single-tower form, with an
    adaptive 6x6 average pool before the classifier.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import alexnet
      >>> summary(alexnet(), (224, 224, 3)).total_params
      61100840
    """
    _check_classes("alexnet", num_classes)
    check_rate("alexnet", rate)
    return with_rank(serial(
        conv(64, 11, stride=4, padding=2), relu(), max_pool(3, 2), conv(192, 5, padding=2),
        relu(), max_pool(3, 2), conv(384, 3, padding=1), relu(), conv(256, 3, padding=1),
        relu(), conv(256, 3, padding=1), relu(), max_pool(3, 2), adaptive_avg_pool(6),
        flatten(), dropout(rate), dense(4096), relu(), dropout(rate), dense(4096), relu(),
        dense(num_classes)), 2, "alexnet")


def vgg_bn(depth=16, num_classes=1000, rate=0.5):
    """VGG with batch norm (Simonyan & Zisserman 2015) in torchvision's ImageNet form
    (``vgg11_bn``, ``vgg13_bn``, ``vgg16_bn``, ``vgg19_bn``): 3x3 convolutions with bias, each
    followed by batch norm and ReLU, five 2x2 max pools, an adaptive 7x7 average pool and a
    4096-4096 classifier with dropout. (:func:`jaxcnn.models.vgg` is the CIFAR form.)

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import vgg_bn
      >>> summary(vgg_bn(11), (224, 224, 3)).total_params
      132868840
      >>> summary(vgg_bn(16), (224, 224, 3)).total_params
      138365992
    """
    where = "vgg_bn"
    check_choice(where, "depth", depth, tuple(VGG_CONFIGS))
    _check_classes(where, num_classes)
    check_rate(where, rate)
    layers = []
    for stage, n in enumerate(VGG_CONFIGS[depth]):
        for _ in range(n):
            layers += [conv(64 * min(2 ** stage, 8), 3, padding=1), batch_norm(), relu()]
        layers.append(max_pool(2, 2))
    return with_rank(serial(
        *layers, adaptive_avg_pool(7), flatten(), dense(4096), relu(), dropout(rate),
        dense(4096), relu(), dropout(rate), dense(num_classes)), 2, where)
