"""Model zoo: factories returning a :class:`~jaxcnn.Layer` that maps inputs to logits,
and a registry to choose them by name (``get_model("resnet20", num_classes=10)``).

Every model is built from the public layers and combinators only. To add a family,
import its factories here and list them in ``MODELS``.
"""

from __future__ import annotations

from jaxcnn._checks import fail
from jaxcnn.models.image import (basic_block, conv_bn_relu, digits_cnn, lenet5, pad_shortcut,
                                 resnet18, resnet20, resnet32, resnet56, resnet_cifar, small_cnn,
                                 vgg)
from jaxcnn.models.imagenet import (alexnet, bottleneck, fire, inverted_residual, mobilenet_v2,
                                    resnet34, resnet50, shuffle_unit, shufflenet_v2, squeezenet,
                                    vgg_bn)
from jaxcnn.models.imagenet_concat import dense_layer, densenet121, googlenet, inception
from jaxcnn.models.image2image import conv_autoencoder, conv_block, pad_to_multiple, unet
from jaxcnn.models.timeseries import fcn, mnist1d_cnn, resnet1d, tcn
from jaxcnn.models.voxel import resnet3d_small, small_cnn3d, voxnet

MODELS = {
    # 2-d images (jaxcnn.models.image)
    "lenet5": lenet5,
    "digits_cnn": digits_cnn,
    "small_cnn": small_cnn,
    "vgg11": lambda **kw: vgg(11, **kw),
    "vgg13": lambda **kw: vgg(13, **kw),
    "vgg16": lambda **kw: vgg(16, **kw),
    "vgg19": lambda **kw: vgg(19, **kw),
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "resnet18": resnet18,
    # ImageNet classifiers in torchvision's layout (jaxcnn.models.imagenet)
    "resnet34": resnet34,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "shufflenet_v2": shufflenet_v2,
    "squeezenet": squeezenet,
    "alexnet": alexnet,
    "vgg11_bn": lambda **kw: vgg_bn(11, **kw),
    "vgg16_bn": lambda **kw: vgg_bn(16, **kw),
    "densenet121": densenet121,
    "googlenet": googlenet,
    # 1-d time series (jaxcnn.models.timeseries)
    "fcn": fcn,
    "resnet1d": resnet1d,
    "tcn": tcn,
    "mnist1d_cnn": mnist1d_cnn,
    # 3-d voxel grids (jaxcnn.models.voxel)
    "voxnet": voxnet,
    "resnet3d_small": resnet3d_small,
    "small_cnn3d": small_cnn3d,
    # image to image, any rank (jaxcnn.models.image2image): num_classes = output channels
    "unet": unet,
}


def list_models() -> list[str]:
    """The registered model names, sorted.

    Example:
      >>> from jaxcnn.models import list_models
      >>> "resnet20" in list_models()
      True
    """
    return sorted(MODELS)


def get_model(name: str, **kwargs):
    """The model registered as ``name``, built with ``kwargs`` (e.g. ``num_classes``).

    Example:
      >>> from jaxcnn import summary
      >>> from jaxcnn.models import get_model
      >>> summary(get_model("lenet5", num_classes=10), (28, 28, 1)).out_shape
      (10,)
    """
    if name not in MODELS:
        fail("get_model", "name", "a registered model (see list_models())", name,
             "Known: " + ", ".join(list_models()))
    return MODELS[name](**kwargs)
