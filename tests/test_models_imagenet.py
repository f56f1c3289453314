"""The ImageNet classifiers of jaxcnn.models.imagenet: torchvision's state dicts (from twins
written with torchvision's module names, tests/_torch_models.py) load with from_torch and
give torch's logits; parameter counts against the published figures are the module's
doctests; argument errors are named."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import models
from jaxcnn.convert import from_torch

sys.path.insert(0, str(Path(__file__).parent))

TWINS = {  # jaxcnn factory call -> torch twin (in tests/_torch_models.py)
    "resnet34": (lambda: models.resnet34(1000, small_input=False), "resnet34"),
    "resnet50": (lambda: models.resnet50(1000, small_input=False), "ResNet50"),
    "mobilenet_v2": (models.mobilenet_v2, "MobileNetV2"),
    "shufflenet_v2": (models.shufflenet_v2, "ShuffleNetV2"),
    "squeezenet": (models.squeezenet, "SqueezeNet"),
    "alexnet": (models.alexnet, "AlexNet"),
    "densenet121": (models.densenet121, "DenseNet121"),
    "googlenet": (lambda: models.googlenet(transform_input=True), "GoogLeNet"),
    "vgg11_bn": (lambda: models.vgg_bn(11), "VGG_BN"),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_torchvision_weights_give_torchs_logits(name):
    torch = pytest.importorskip("torch")
    import _torch_models as tm

    make, twin = TWINS[name]
    torch.manual_seed(0)
    module = tm.randomize_batch_norm(getattr(tm, twin)())
    model = make()
    size = 32 if name.startswith("vgg") else 64  # VGG: 7x7 from 1x1; its convs cost most
    params, state = from_torch(model, module.state_dict(), (size, size, 3))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = module(x).numpy()
    y = jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0])(
        params, state, jnp.asarray(x.permute(0, 2, 3, 1).numpy()))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_cifar_forms_and_registry():
    from jaxcnn import summary

    assert summary(models.get_model("resnet34", num_classes=10), (32, 32, 3)).out_shape == (10,)
    assert summary(models.resnet50(), (32, 32, 3)).out_shape == (10,)
    for name in TWINS:
        assert name in models.list_models()


def test_errors():
    with pytest.raises(ValueError, match=r"mobilenet_v2: num_classes must be a positive int"):
        models.mobilenet_v2(0)
    with pytest.raises(ValueError, match=r"alexnet: rate must be in \[0, 1\)"):
        models.alexnet(rate=1.5)
    with pytest.raises(TypeError, match=r"resnet_stem: small_input must be a bool"):
        models.resnet50(small_input="yes")
    with pytest.raises(ValueError, match=r"vgg_bn: depth must be one of 11, 13, 16, 19"):
        models.vgg_bn(12)
    with pytest.raises(TypeError, match=r"googlenet: transform_input must be a bool"):
        models.googlenet(transform_input=1)
    with pytest.raises(ValueError, match=r"shufflenet_v2: widths must be 5 positive even ints"):
        models.shufflenet_v2(widths=(24, 116, 232, 464))
    with pytest.raises(ValueError, match=r"shuffle_unit: in_channels must be out_channels "
                       r"\(116\) at stride 1, got 24"):
        models.shuffle_unit(24, 116, 1)
    with pytest.raises(ValueError, match=r"squeezenet: in_shape must be \(H, W, C\) for this 2-d "
                       r"network"):
        models.squeezenet().init(jax.random.key(0), (64, 3))
