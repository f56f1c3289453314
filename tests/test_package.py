"""``import jaxcnn`` exposes the public API: every layer factory builds a ``Layer``, the
combinators, ops and initializers are there, and layers and ops are distinct namespaces."""

import jax
import pytest

import jaxcnn
from jaxcnn import initializers, ops

LAYER_FACTORIES = {  # name -> arguments that build one
    "conv": (8, 3), "conv_transpose": (8, 3), "separable_conv": (8, 3), "depthwise_conv": (3,),
    "dense": (10,), "flatten": (), "reshape": ((-1,),), "identity": (), "activation": (abs,),
    "relu": (), "relu6": (), "gelu": (), "silu": (), "tanh": (), "sigmoid": (), "elu": (),
    "softplus": (), "hard_swish": (), "leaky_relu": (), "softmax": (), "log_softmax": (),
    "dropout": (0.5,), "spatial_dropout": (0.5,), "channel_split": (2,), "channel_shuffle": (2,),
    "pad": (1,), "crop": (1,), "match_spatial": (),
}
COMBINATORS = ["serial", "parallel", "fan_out", "fan_in_sum", "fan_in_concat", "concat",
               "residual", "named"]
OPS = ["conv", "conv_transpose", "separable_conv", "pad", "crop"]


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
def test_layer_factories_are_exported_and_build_layers(name):
    factory = getattr(jaxcnn, name)
    l = factory(*LAYER_FACTORIES[name])
    assert isinstance(l, jaxcnn.Layer)
    assert callable(l.init) and callable(l.apply) and isinstance(l.name, str)


def test_combinators_and_protocol_are_exported():
    for name in COMBINATORS + ["Layer", "layer", "stateless"]:
        assert callable(getattr(jaxcnn, name)), name
    assert isinstance(jaxcnn.serial(jaxcnn.relu()), jaxcnn.Layer)
    assert isinstance(jaxcnn.fan_out(2), jaxcnn.Layer)
    assert isinstance(jaxcnn.fan_in_sum(), jaxcnn.Layer)
    assert isinstance(jaxcnn.named("x", jaxcnn.relu()), jaxcnn.Layer)
    assert jaxcnn.Layer._fields == ("init", "apply", "name")


def test_ops_and_initializers_are_exported():
    assert jaxcnn.ops is ops and jaxcnn.initializers is initializers
    for name in OPS:
        assert callable(getattr(ops, name)), name
    for name in initializers.__all__:
        assert hasattr(initializers, name), name
    assert isinstance(jaxcnn.__version__, str)


def test_layer_and_op_namespaces_are_distinct():
    # jaxcnn.conv is the layer factory, jaxcnn.ops.conv the array function
    assert jaxcnn.conv is not ops.conv
    assert jaxcnn.flatten().init(jax.random.key(0), (5, 2))[0] == (10,)
