"""3-d CNNs for voxel grids ``(D, H, W, C)``: VoxNet, a small 3-d ResNet and a 3-d small CNN.

All are built from the rank-agnostic public layers (a ``conv`` is 3-d because its input
is), so the same blocks as the 2-d models serve here (:func:`jaxcnn.models.image.basic_block`
with projection shortcuts, :func:`jaxcnn.models.image.conv_bn_relu`).

Cost note: on XLA:CPU 3-d convolutions run far below the machine's matmul speed, so the
two larger models start with a stride-2 convolution (grids of ``32^3`` are processed at
``16^3`` and below).
"""

from __future__ import annotations

from jaxcnn.layers import (batch_norm, conv, dense, dropout, flatten, global_avg_pool, leaky_relu,
                           max_pool, relu, serial, with_rank)
from jaxcnn._checks import check_positive_int, check_rate, fail, is_int
from jaxcnn.models.image import basic_block, conv_bn_relu


def _check_classes(where, num_classes):
    check_positive_int(where, "num_classes", num_classes)


def _check_widths(where, widths):
    if (not isinstance(widths, (tuple, list)) or not widths
            or not all(is_int(w) and w > 0 for w in widths)):
        fail(where, "widths", "a non-empty tuple of positive ints", widths)
    return tuple(widths)


def voxnet(num_classes=10, rates=(0.2, 0.3, 0.4), negative_slope=0.1):
    """VoxNet (Maturana & Scherer 2015): ``conv(32, 5, stride 2)``, ``conv(32, 3)``,
    ``max_pool(2)``, ``dense(128)``, ``dense(num_classes)``, with leaky ReLUs (slope 0.1)
    and dropout ``rates`` after the first convolution, the pool and the hidden layer.

    On a ``32^3`` grid the feature maps are ``14^3``, ``12^3``, ``6^3`` and the model has
    ``4,032 + 27,680 + 884,864 + 129 * num_classes`` parameters.

    Example:
      >>> import jax
      >>> from jaxcnn.models import voxnet
      >>> out_shape, params, _ = voxnet(10).init(jax.random.key(0), (32, 32, 32, 1))
      >>> out_shape, sum(p.size for p in jax.tree.leaves(params))
      ((10,), 917866)
    """
    where = "voxnet"
    _check_classes(where, num_classes)
    if not isinstance(rates, (tuple, list)) or len(rates) != 3:
        fail(where, "rates", "three dropout rates (conv 1, pool, hidden)", rates)
    r1, r2, r3 = (check_rate(where, r) for r in rates)
    return with_rank(serial(conv(32, 5, stride=2), leaky_relu(negative_slope), dropout(r1),
                            conv(32, 3), leaky_relu(negative_slope), max_pool(2), dropout(r2),
                            flatten(), dense(128), relu(), dropout(r3), dense(num_classes)),
                     3, where)


def resnet3d_small(num_classes=10, widths=(16, 32, 64), blocks=(1, 1, 1), stem_stride=2):
    """A small 3-d ResNet: a ``5^3`` stem (``conv`` with ``stem_stride``, batch norm, ReLU),
    stages of basic blocks (two ``3^3`` convolutions, projection shortcut where the shape
    changes; stride 2 from the second stage on), global average pooling, one dense layer.

    Example:
      >>> import jax
      >>> from jaxcnn.models import resnet3d_small
      >>> model = resnet3d_small(4, widths=(8, 16), blocks=(1, 1))
      >>> model.init(jax.random.key(0), (16, 16, 16, 1))[0]
      (4,)
    """
    where = "resnet3d_small"
    _check_classes(where, num_classes)
    widths = _check_widths(where, widths)
    if (not isinstance(blocks, (tuple, list)) or len(blocks) != len(widths)
            or not all(is_int(b) and b > 0 for b in blocks)):
        fail(where, "blocks", f"{len(widths)} positive ints (one per width)", blocks)
    check_positive_int(where, "stem_stride", stem_stride)
    layers = [conv(widths[0], 5, stride=stem_stride, padding=2, use_bias=False), batch_norm(),
              relu()]
    prev = widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            change = stride != 1 or w != prev
            layers.append(basic_block(w, stride, "B" if change else "identity"))
            prev = w
    return with_rank(serial(*layers, global_avg_pool(), dense(num_classes)), 3, where)


def small_cnn3d(num_classes=10, widths=(16, 32, 64), rate=0.0, stem_stride=2):
    """The modern small CNN in 3-d: a ``5^3`` ``conv_bn_relu`` stem with ``stem_stride``,
    then per stage two ``3^3`` ``conv_bn_relu`` and a ``2^3`` max pool (the last stage ends
    in global average pooling instead), dropout ``rate``, one dense layer.

    Example:
      >>> import jax
      >>> from jaxcnn.models import small_cnn3d
      >>> small_cnn3d(8, widths=(8, 16)).init(jax.random.key(0), (16, 16, 16, 1))[0]
      (8,)
    """
    where = "small_cnn3d"
    _check_classes(where, num_classes)
    widths = _check_widths(where, widths)
    check_rate(where, rate)
    check_positive_int(where, "stem_stride", stem_stride)
    layers = [conv_bn_relu(widths[0], 5, stride=stem_stride)]
    for i, w in enumerate(widths):
        layers += [conv_bn_relu(w), conv_bn_relu(w)]
        layers.append(max_pool(2) if i < len(widths) - 1 else global_avg_pool())
    return with_rank(serial(*layers, dropout(rate), dense(num_classes)), 3, where)
