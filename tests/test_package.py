"""``import jaxcnn`` exposes the public API: every layer factory builds a ``Layer``, the
combinators, ops and initializers are there, layers and ops are distinct namespaces, and no
module reads a file with pickle (bar one restricted unpickler), eval or exec."""

import io
import tokenize
from collections import Counter
from pathlib import Path

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


# Reading a user's file must never run code: no pickle (bar the CIFAR python batches'
# restricted unpickler, which builds numpy arrays only), no allow_pickle=True, no eval or
# exec, no torch.load or yaml.load. The scan reads code tokens (not comments or
# docstrings); each allowed use is listed with its count, so a new one fails until reviewed.
SERIALISERS = {"pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve", "joblib"}
ALLOWED = {("jaxcnn/data/images.py", "pickle"): 4}  # import, _ArrayUnpickler, its errors


def unsafe_uses(source: str) -> Counter:
    toks = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type in (tokenize.NAME, tokenize.OP)]
    found = Counter()
    for i, tok in enumerate(toks):
        prev, nxt = toks[i - 1] if i else "", toks[i + 1: i + 3]
        if tok in SERIALISERS:
            found[tok] += 1
        elif tok in ("eval", "exec", "__import__") and prev != "." and nxt[:1] == ["("]:
            found[tok + "("] += 1
        elif tok == "allow_pickle" and nxt == ["=", "True"]:
            found["allow_pickle=True"] += 1
        elif tok in ("load", "unsafe_load") and prev == "." and i > 1 and toks[i - 2] in (
                "torch", "yaml"):
            found[f"{toks[i - 2]}.{tok}"] += 1
    return found


def test_the_scan_sees_each_kind_of_use():
    code = ("import pickle\nx = eval('1')\nexec('y = 2')\nnp.load(p, allow_pickle=True)\n"
            "torch.load(f)\nyaml.unsafe_load(s)\n# pickle in a comment\n'eval(x) in a string'\n"
            "model.eval()\njax.core.def_abstract_eval(f)\n")
    assert unsafe_uses(code) == {"pickle": 1, "eval(": 1, "exec(": 1, "allow_pickle=True": 1,
                                 "torch.load": 1, "yaml.unsafe_load": 1}


def test_no_pickle_eval_or_exec_on_user_files():
    root = Path(jaxcnn.__file__).parent.parent
    found = {}
    for folder in ("jaxcnn", "experiments"):
        for path in sorted((root / folder).rglob("*.py")):
            for kind, n in unsafe_uses(path.read_text(encoding="utf-8")).items():
                found[(path.relative_to(root).as_posix(), kind)] = n
    assert found == ALLOWED, "review these uses of pickle/eval/exec: " + repr(found)
