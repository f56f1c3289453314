"""ImageNet classifiers built on channel concatenation, in torchvision's layout (so that
:func:`jaxcnn.from_torch` loads torchvision's state dicts into them):

* ``densenet121(1000)``: 7,978,856 parameters (torchvision's ``densenet121``).
* ``googlenet(1000)``: 6,624,904 parameters (torchvision's ``googlenet`` as its
  pretrained weights load: without the auxiliary classifiers).

The counts are checked by the doctests below; ``tests/test_models_imagenet.py`` checks
logits against torch twins with torchvision's module names.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxcnn._checks import check_bool, check_rate
from jaxcnn.layers import (avg_pool, batch_norm, concat, conv, dense, dropout, global_avg_pool,
                           identity, max_pool, relu, serial, stateless, with_rank)
from jaxcnn.models.image import _check_classes


def dense_layer(growth_rate=32, bn_size=4):
    """DenseNet's layer: BN-ReLU-1x1 conv (``bn_size * growth_rate``)-BN-ReLU-3x3 conv
    (``growth_rate``), its output concatenated after its input.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models.imagenet_concat import dense_layer
      >>> summary(dense_layer(), (8, 8, 64)).out_shape
      (8, 8, 96)
    """
    return concat(identity(), serial(
        batch_norm(), relu(), conv(bn_size * growth_rate, 1, use_bias=False),
        batch_norm(), relu(), conv(growth_rate, 3, padding=1, use_bias=False)))


def densenet121(num_classes=1000, growth_rate=32, blocks=(6, 12, 24, 16), init_features=64):
    """DenseNet-121 (Huang et al. 2017), as torchvision's ``densenet121``: dense blocks
    joined by transitions (BN-ReLU-1x1 conv halving the channels-2x2 average pool).

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import densenet121
      >>> summary(densenet121(), (224, 224, 3)).total_params
      7978856
    """
    _check_classes("densenet121", num_classes)
    layers = [conv(init_features, 7, stride=2, padding=3, use_bias=False), batch_norm(), relu(),
              max_pool(3, stride=2, padding=1)]
    c = init_features
    for i, n in enumerate(blocks):
        layers.append(serial(*[dense_layer(growth_rate) for _ in range(n)]))
        c += n * growth_rate
        if i < len(blocks) - 1:
            c //= 2
            layers.append(serial(batch_norm(), relu(), conv(c, 1, use_bias=False),
                                 avg_pool(2, stride=2)))
    return with_rank(serial(*layers, batch_norm(), relu(), global_avg_pool(),
                            dense(num_classes)), 2, "densenet121")


def _basic_conv(out_channels, kernel_size, stride=1, padding=0):
    """torchvision's GoogLeNet BasicConv2d: conv without bias, batch norm (eps 0.001), ReLU."""
    return serial(conv(out_channels, kernel_size, stride=stride, padding=padding,
                       use_bias=False), batch_norm(eps=1e-3), relu())


def inception(ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
    """GoogLeNet's inception module as torchvision builds it (its "5x5" branch uses a 3x3
    convolution, as torchvision's weights expect).

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models.imagenet_concat import inception
      >>> summary(inception(64, 96, 128, 16, 32, 32), (28, 28, 192)).out_shape
      (28, 28, 256)
    """
    return concat(_basic_conv(ch1x1, 1),
                  serial(_basic_conv(ch3x3red, 1), _basic_conv(ch3x3, 3, padding=1)),
                  serial(_basic_conv(ch5x5red, 1), _basic_conv(ch5x5, 3, padding=1)),
                  serial(max_pool(3, stride=1, padding=1, ceil_mode=True),
                         _basic_conv(pool_proj, 1)))


def _transform_input(x):
    """torchvision's ``transform_input``: ImageNet-normalised input to the (x - 0.5) / 0.5
    scaling the original GoogLeNet weights were trained with."""
    shape = (1,) * (x.ndim - 1) + (3,)
    mean = jnp.asarray([0.485, 0.456, 0.406], x.dtype).reshape(shape)
    std = jnp.asarray([0.229, 0.224, 0.225], x.dtype).reshape(shape)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


def googlenet(num_classes=1000, rate=0.2, transform_input=False):
    """GoogLeNet (Szegedy et al. 2015), as torchvision's ``googlenet`` in eval mode (no
    auxiliary classifiers). ``transform_input=True`` for torchvision's pretrained weights
    (they set it): the ImageNet-normalised input is rescaled per channel first.

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import googlenet
      >>> summary(googlenet(), (224, 224, 3)).total_params
      6624904
    """
    _check_classes("googlenet", num_classes)
    check_rate("googlenet", rate)
    first = ([stateless("transform_input", _transform_input)]
             if check_bool("googlenet", "transform_input", transform_input) else [])
    pool = lambda k=3: max_pool(k, stride=2, ceil_mode=True)  # noqa: E731
    return with_rank(serial(
        *first, _basic_conv(64, 7, stride=2, padding=3), pool(), _basic_conv(64, 1),
        _basic_conv(192, 3, padding=1), pool(),
        inception(64, 96, 128, 16, 32, 32), inception(128, 128, 192, 32, 96, 64), pool(),
        inception(192, 96, 208, 16, 48, 64), inception(160, 112, 224, 24, 64, 64),
        inception(128, 128, 256, 24, 64, 64), inception(112, 144, 288, 32, 64, 64),
        inception(256, 160, 320, 32, 128, 128), pool(2),
        inception(256, 160, 320, 32, 128, 128), inception(384, 192, 384, 48, 128, 128),
        global_avg_pool(), dropout(rate), dense(num_classes)), 2, "googlenet")
