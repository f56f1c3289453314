"""Property tests (hypothesis) of every layer factory: random arguments and input shapes.

A factory either builds a layer or raises ``ValueError``/``TypeError`` naming itself;
``init`` either gives an output shape or a named error; and when it gives one, ``apply``
on a batch of that ``in_shape`` (empty batches and low-precision dtypes included)
returns exactly that shape, in the input's dtype. Nothing reaches XLA unchecked.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxcnn as jc

SMALL = st.integers(1, 3)
ODD = st.one_of(st.integers(-1, 5), st.booleans(), st.floats(-1, 3), st.just(float("nan")),
                st.none(), st.sampled_from(["SAME", "VALID", "causal", "x"]),
                st.lists(st.integers(0, 3), max_size=4).map(tuple))
ANY = st.one_of(SMALL, SMALL, SMALL, ODD)  # mostly valid
RATE = st.one_of(st.floats(0, 0.9), ODD)
PAD = st.one_of(st.integers(0, 1), st.integers(0, 1), st.sampled_from(["SAME", "VALID"]), ODD)
BOOL = st.one_of(st.booleans(), st.booleans(), ODD)

# factory -> (argument strategies, names its errors may start with)
FACTORIES = {
    "conv": ((ANY, ANY, ANY, PAD, ANY, ANY), ("conv",)),
    "conv_transpose": ((ANY, ANY, ANY, PAD, st.integers(0, 1), ANY, ANY), ("conv_transpose",)),
    "separable_conv": ((ANY, ANY, ANY, PAD, ANY, ANY), ("separable_conv", "conv")),
    "depthwise_conv": ((ANY, ANY, PAD, ANY, ANY), ("depthwise_conv", "conv")),
    "dense": ((ANY,), ("dense",)),
    "max_pool": ((ANY, ANY, PAD, ANY, BOOL), ("max_pool",)),
    "min_pool": ((ANY, ANY, PAD, ANY, BOOL), ("min_pool",)),
    "sum_pool": ((ANY, ANY, PAD, ANY, BOOL), ("sum_pool",)),
    "avg_pool": ((ANY, ANY, PAD, BOOL, BOOL), ("avg_pool",)),
    "lp_pool": ((ANY, ANY, ANY, BOOL), ("lp_pool",)),
    "adaptive_avg_pool": ((ANY,), ("adaptive_avg_pool",)),
    "adaptive_max_pool": ((ANY,), ("adaptive_max_pool",)),
    "upsample": ((st.one_of(st.none(), ANY), st.one_of(st.none(), ANY),
                  st.sampled_from(["nearest", "linear", "cubic", "area"])), ("upsample",)),
    "pixel_shuffle": ((ANY,), ("pixel_shuffle",)),
    "pixel_unshuffle": ((ANY,), ("pixel_unshuffle",)),
    "batch_norm": ((RATE, st.one_of(st.just(1e-5), ODD)), ("batch_norm",)),
    "group_norm": ((ANY,), ("group_norm",)),
    "layer_norm": ((st.one_of(st.just(1e-5), ODD),), ("layer_norm",)),
    "instance_norm": ((st.one_of(st.just(1e-5), ODD),), ("instance_norm",)),
    "dropout": ((RATE,), ("dropout",)),
    "spatial_dropout": ((RATE,), ("spatial_dropout",)),
    "leaky_relu": ((st.one_of(st.floats(0, 1), ODD),), ("leaky_relu",)),
    "elu": ((st.one_of(st.floats(0, 2), ODD),), ("elu",)),
    "softmax": ((st.one_of(st.integers(-3, 2), ODD),), ("softmax",)),
    "reshape": ((st.lists(st.integers(-1, 6), min_size=1, max_size=3).map(tuple),), ("reshape",)),
    "flatten": ((BOOL,), ("flatten",)),
    "pad": ((PAD, st.sampled_from(["zeros", "constant", "reflect", "replicate", "circular", "x"]),
             st.one_of(st.floats(-1, 1), ODD)), ("pad",)),
    "crop": ((PAD,), ("crop",)),
    "channel_shuffle": ((ANY,), ("channel_shuffle",)),
    "global_max_pool": ((), ("global_max_pool",)),
}
DTYPES = ["float32", "float32", "bfloat16", "float16"]
EXAMPLES = 6 * settings.default.max_examples  # the profile's size, one test for all factories


def named(names, call):
    try:
        return call()
    except (ValueError, TypeError) as err:
        assert str(err).split(":")[0] in names, f"{type(err).__name__}: {err}"
        return None


@settings(max_examples=EXAMPLES)
@given(st.data())
def test_every_factory_init_and_apply_agree_or_name_the_error(data):
    name = data.draw(st.sampled_from(sorted(FACTORIES)), "factory")
    strategies, names = FACTORIES[name]
    required = sum(p.default is p.empty
                   for p in inspect.signature(getattr(jc, name)).parameters.values())
    count = data.draw(st.integers(required, len(strategies)), "number of arguments")
    args = tuple(data.draw(s, f"argument {i}") for i, s in enumerate(strategies[:count]))
    layer = named(names, lambda: getattr(jc, name)(*args))
    if layer is None:
        return
    rank = data.draw(st.integers(1, 4), "in_shape rank")
    in_shape = tuple(data.draw(st.integers(1, 5), "size") for _ in range(rank))
    init = named(names + ("serial",), lambda: layer.init(jax.random.key(0), in_shape))
    if init is None:
        return
    out_shape, params, state = init
    batch = data.draw(st.integers(0, 2), "batch")
    dtype = data.draw(st.sampled_from(DTYPES), "dtype")
    x = jnp.asarray(np.random.default_rng(0).standard_normal((batch, *in_shape)), dtype)
    out = named(names, lambda: layer.apply(params, state, x, train=True, key=jax.random.key(1)))
    if out is None:  # e.g. batch norm in training mode on fewer than 2 values per channel
        return
    y, new_state = out
    assert y.shape == (batch, *out_shape), (name, args, in_shape)
    assert y.dtype == x.dtype
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
