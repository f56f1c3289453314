"""Property tests (hypothesis) of the ops: random arguments, valid or not.

Every call either returns what the naive numpy references of ``test_conv.py`` and
``test_pool.py`` compute (same shape, same values within the dtype's tolerance), or
raises ``ValueError``/``TypeError`` whose message starts with the op's name: never an
XLA error, a crash or a silently wrong shape. Profiles (``tests/conftest.py``): ``ci``
by default, ``--hypothesis-profile=long`` for many more examples.
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from jaxcnn import ops
from test_conv import explicit_pads, naive_conv, naive_conv_transpose
from test_pool import ref_pool

TOL = {np.dtype("float32"): dict(rtol=1e-4, atol=1e-4),
       np.dtype("float16"): dict(rtol=2e-2, atol=2e-2),
       jnp.dtype("bfloat16"): dict(rtol=5e-2, atol=5e-2)}


def refused(where, call):
    """``call()``'s result, or ``None`` when it raised a ValueError/TypeError naming
    ``where``; any other exception fails the test."""
    try:
        return call()
    except (ValueError, TypeError) as err:
        assert str(err).startswith(f"{where}:"), f"{type(err).__name__}: {err}"
        return None


def as_tuple(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def window_value(n, low, high):
    """An int or an ``n``-tuple of ints in ``[low, high]``."""
    return st.one_of(st.integers(low, high), st.tuples(*[st.integers(low, high)] * n))


# anything a user might pass for a window argument, mostly wrong
ODD = st.one_of(st.integers(-2, 6), st.booleans(), st.floats(-1, 3), st.none(),
                st.sampled_from(["SAME", "valid", "causal", "full", ""]),
                st.lists(st.integers(-1, 4), max_size=4).map(tuple),
                st.lists(st.tuples(st.integers(-1, 3), st.integers(-1, 3)), max_size=3).map(tuple))


@st.composite
def conv_case(draw, valid=True):
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    spatial = tuple(draw(st.integers(1, 6 if n < 3 else 4)) for _ in range(n))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    args = dict(stride=draw(window_value(n, 1, 3)), dilation=draw(window_value(n, 1, 2)),
                padding=draw(st.one_of(window_value(n, 0, 2), st.sampled_from(["SAME", "VALID"]))),
                groups=groups, padding_mode=draw(st.sampled_from(["zeros", "circular", "reflect",
                                                                   "replicate"])))
    if not valid:  # replace one argument by anything
        name = draw(st.sampled_from(sorted(args) + ["kernel_rank", "channels"]))
        if name == "kernel_rank":
            kernel = kernel + (1,) if n < 3 else kernel[:-1]
        elif name == "channels":
            c_in += 1
        else:
            args[name] = draw(ODD)
    batch = draw(st.integers(0, 2))
    return batch, spatial, c_in, kernel, c_out, args


def _data(shape, dtype, seed=0, special=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    if special and x.size:
        x.flat[0], x.flat[-1] = np.inf, np.nan
    return jnp.asarray(x, dtype)


@given(conv_case(), st.sampled_from(["float32", "float16", "bfloat16"]), st.booleans())
def test_conv_valid_arguments_match_the_naive_loop(case, dtype, special):
    batch, spatial, c_in, kernel, c_out, args = case
    n = len(spatial)
    stride, dilation = as_tuple(args["stride"], n), as_tuple(args["dilation"], n)
    pads = explicit_pads(args["padding"], spatial, kernel, stride, dilation)
    mode = args["padding_mode"]
    assume(all(s + lo + hi >= d * (k - 1) + 1
               for s, (lo, hi), k, d in zip(spatial, pads, kernel, dilation)))
    assume(mode != "reflect" or all(max(p) < s for p, s in zip(pads, spatial)))
    assume(mode != "circular" or all(max(p) <= s for p, s in zip(pads, spatial)))
    x = _data((batch, *spatial, c_in), dtype, special=special)
    w = _data((*kernel, c_in // args["groups"], c_out), dtype, seed=1)
    y = ops.conv(x, w, **args)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf in the reference is NaN too
        ref = naive_conv(np.asarray(x, np.float64), np.asarray(w, np.float64), stride, dilation,
                         args["groups"], pads, mode)
    assert y.dtype == x.dtype and y.shape == ref.shape
    np.testing.assert_allclose(np.asarray(y, np.float64), ref, **TOL[np.dtype(y.dtype)])


@given(conv_case(valid=False), st.sampled_from(["float32", "int32", "float16"]))
def test_conv_any_arguments_give_the_reference_or_a_named_error(case, dtype):
    batch, spatial, c_in, kernel, c_out, args = case
    x = _data((batch, *spatial, c_in), dtype)
    w = _data((*kernel, max(c_in // args["groups"], 1) if isinstance(args["groups"], int)
               and args["groups"] > 0 else c_in, c_out), "float32" if dtype == "int32" else dtype)
    y = refused("conv", lambda: ops.conv(x, w, **args))
    if y is not None:  # accepted: it must be what the definition gives
        n = len(spatial)
        stride, dilation = as_tuple(args["stride"], n), as_tuple(args["dilation"], n)
        pads = explicit_pads(args["padding"] if not isinstance(args["padding"], str)
                             else args["padding"].upper(), spatial, kernel, stride, dilation)
        ref = naive_conv(np.asarray(x, np.float64), np.asarray(w, np.float64), stride,
                         dilation, args["groups"], pads, args["padding_mode"])
        assert y.shape == ref.shape
        np.testing.assert_allclose(np.asarray(y, np.float64), ref, **TOL[np.dtype(y.dtype)])


@st.composite
def transpose_case(draw):
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(n))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
    output_padding = tuple(draw(st.integers(0, 2)) for _ in range(n))
    return (draw(st.integers(0, 2)), spatial, groups * draw(st.integers(1, 2)), kernel,
            groups * draw(st.integers(1, 2)), stride, padding, output_padding, dilation, groups)


@given(transpose_case())
def test_conv_transpose_matches_the_scatter_add_or_names_the_argument(case):
    batch, spatial, c_in, kernel, c_out, stride, padding, out_pad, dilation, groups = case
    x = _data((batch, *spatial, c_in), "float32")
    w = _data((*kernel, c_in, c_out // groups), "float32", seed=1)
    y = refused("conv_transpose", lambda: ops.conv_transpose(
        x, w, stride=stride, padding=padding, output_padding=out_pad, dilation=dilation,
        groups=groups))
    ok = all(op < max(s, d) for op, s, d in zip(out_pad, stride, dilation)) and all(
        (i - 1) * s + d * (k - 1) + 1 + op - 2 * p >= 1
        for i, s, d, k, op, p in zip(spatial, stride, dilation, kernel, out_pad, padding))
    assert (y is not None) == ok, (case, y is None)
    if y is not None:
        ref = naive_conv_transpose(x, w, stride, [(p, p) for p in padding], out_pad, dilation,
                                   groups)
        assert y.shape == ref.shape
        np.testing.assert_allclose(np.asarray(y), ref, **TOL[np.dtype("float32")])


POOLS = {"max_pool": "max", "min_pool": "min", "sum_pool": "sum", "avg_pool": "avg"}


@st.composite
def pool_case(draw, valid=True):
    n = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 6 if n < 3 else 4)) for _ in range(n))
    args = dict(kernel_size=draw(window_value(n, 1, 3)),
                stride=draw(st.one_of(st.none(), window_value(n, 1, 3))),
                padding=draw(window_value(n, 0, 1)), ceil_mode=draw(st.booleans()))
    if not valid:
        args[draw(st.sampled_from(sorted(args)))] = draw(ODD)
    return draw(st.sampled_from(sorted(POOLS))), draw(st.integers(0, 2)), spatial, args


@given(pool_case(valid=False), st.sampled_from(["float32", "bfloat16", "int32"]),
       st.booleans())
def test_pools_give_the_reference_or_a_named_error(case, dtype, special):
    name, batch, spatial, args = case
    n = len(spatial)
    x = _data((batch, *spatial, 2), "float32", special=special).astype(dtype)
    y = refused(name, lambda: getattr(ops, name)(x, **args))
    if y is None:
        return
    k = as_tuple(args["kernel_size"], n)
    s = k if args["stride"] is None else as_tuple(args["stride"], n)
    if isinstance(args["padding"], str):
        pads = explicit_pads(args["padding"].upper(), spatial, k, s, (1,) * n)
    else:
        pads = [(q, q) for q in as_tuple(args["padding"], n)]
    with np.errstate(invalid="ignore", over="ignore"):
        ref, _ = ref_pool(np.asarray(x, np.float64), POOLS[name], k, s, pads,
                          ceil=args["ceil_mode"])
    assert y.dtype == x.dtype and y.shape == ref.shape
    if jnp.issubdtype(x.dtype, jnp.integer):
        ref = np.floor(ref) if name == "avg_pool" else ref
        np.testing.assert_array_equal(np.asarray(y), ref.astype(np.asarray(y).dtype))
    else:
        np.testing.assert_allclose(np.asarray(y, np.float64), ref, **TOL[np.dtype(y.dtype)])


@given(st.integers(1, 3), st.integers(0, 2), st.data())
def test_pad_and_crop_match_numpy_or_name_the_argument(n, batch, data):
    spatial = tuple(data.draw(st.integers(1, 4)) for _ in range(n))
    pairs = tuple((data.draw(st.integers(-1, 4)), data.draw(st.integers(-1, 4))) for _ in range(n))
    mode = data.draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    x = _data((batch, *spatial, 2), "float32")
    y = refused("pad", lambda: ops.pad(x, pairs, mode))
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}[mode]
    ok = all(min(p) >= 0 for p in pairs) and (
        mode != "reflect" or all(max(p) < s for p, s in zip(pairs, spatial))) and (
        mode != "circular" or all(max(p) <= s for p, s in zip(pairs, spatial)))
    assert (y is not None) == ok, (spatial, pairs, mode)
    if y is not None:
        ref = np.pad(np.asarray(x), [(0, 0), *pairs, (0, 0)], mode=np_mode)
        np.testing.assert_array_equal(np.asarray(y), ref)
        back = ops.crop(y, pairs)
        np.testing.assert_array_equal(np.asarray(back), np.asarray(x))


@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from(["nearest", "linear", "bad"]),
       st.one_of(st.integers(-1, 3), st.floats(0.5, 2.5), st.none()))
def test_upsample_shapes_or_named_errors(n, size, mode, factor):
    x = _data((1,) + (size,) * n + (2,), "float32")
    y = refused("upsample", lambda: ops.upsample(x, scale_factor=factor, mode=mode))
    if y is not None:
        assert y.shape == (1,) + (math.floor(size * factor),) * n + (2,)
        assert mode != "nearest" or set(np.unique(np.asarray(y))) <= set(np.unique(np.asarray(x)))


@pytest.mark.parametrize("where, call, min_ndim", [
    ("global_avg_pool", lambda x: ops.global_avg_pool(x), 3),
    ("batch_norm", lambda x: ops.batch_norm(x, train=True)[0], 2),
    ("group_norm", lambda x: ops.group_norm(x, 2), 2),
    ("layer_norm", lambda x: ops.layer_norm(x), 2),
    ("instance_norm", lambda x: ops.instance_norm(x), 3),
    ("adaptive_avg_pool", lambda x: ops.adaptive_avg_pool(x, 2), 3),
    ("pixel_shuffle", lambda x: ops.pixel_shuffle(x, 2), 3),
])
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=6).map(tuple),
       dtype=st.sampled_from(["float32", "int32", "bfloat16"]))
def test_shape_only_ops_refuse_by_name(where, call, min_ndim, shape, dtype):
    x = jnp.zeros(shape, dtype)
    y = refused(where, lambda: call(x))
    if y is not None:
        assert y.dtype == x.dtype and min_ndim <= x.ndim <= (5 if min_ndim == 3 else x.ndim)
        assert 0 not in x.shape[1:], "an empty spatial or channel axis was accepted"
        assert y.shape[0] == x.shape[0]
