"""ops.pad / ops.crop against np.pad and slicing; padding normalisation and resolution."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import ops
from jaxcnn._window import check_window_fits, normalize_padding, resolve_padding

NP_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@pytest.mark.parametrize("shape,padding,pairs", [
    ((2, 5, 3), 2, [(2, 2)]),
    ((1, 4, 5, 2), (1, 2), [(1, 1), (2, 2)]),
    ((1, 4, 5, 2), ((0, 3), (2, 1)), [(0, 3), (2, 1)]),
    ((1, 3, 4, 3, 1), ((1, 0), 2, (0, 2)), [(1, 0), (2, 2), (0, 2)]),
])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_pad_matches_numpy(shape, padding, pairs, mode):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = ops.pad(jnp.asarray(x), padding, mode)
    ref = np.pad(x, [(0, 0)] + pairs + [(0, 0)], mode=NP_MODE[mode])
    np.testing.assert_array_equal(y, ref)
    # crop undoes pad
    np.testing.assert_array_equal(ops.crop(y, padding), x)


def test_pad_hand_computed_and_constant_value():
    x = jnp.asarray([1.0, 2.0, 3.0]).reshape(1, 3, 1)
    np.testing.assert_array_equal(ops.pad(x, 2, "reflect")[0, :, 0], [3, 2, 1, 2, 3, 2, 1])
    np.testing.assert_array_equal(ops.pad(x, 2, "replicate")[0, :, 0], [1, 1, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(ops.pad(x, 3, "circular")[0, :, 0],
                                  [1, 2, 3, 1, 2, 3, 1, 2, 3])
    np.testing.assert_array_equal(ops.pad(x, ((1, 0),), "constant", value=-5.0)[0, :, 0],
                                  [-5, 1, 2, 3])
    np.testing.assert_array_equal(ops.pad(x, 0, "reflect"), x)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.int32])
def test_pad_keeps_dtype(dtype):
    x = jnp.ones((1, 3, 3, 1), dtype)
    assert ops.pad(x, 1).dtype == dtype
    assert ops.pad(x, 1, "constant", value=2).dtype == dtype
    assert ops.pad(x, 1, "reflect").dtype == dtype


def test_crop_hand_computed():
    x = jnp.arange(10.0).reshape(1, 10, 1)
    np.testing.assert_array_equal(ops.crop(x, ((2, 3),))[0, :, 0], [2, 3, 4, 5, 6])
    assert ops.crop(jnp.zeros((2, 8, 8, 3)), ((1, 2), 0)).shape == (2, 5, 8, 3)


def test_normalize_padding_forms():
    assert normalize_padding("t", 1, 2) == ((1, 1), (1, 1))
    assert normalize_padding("t", (1, 2), 2) == ((1, 1), (2, 2))
    assert normalize_padding("t", [(1, 2), 3], 2) == ((1, 2), (3, 3))
    assert normalize_padding("t", np.int64(2), 1) == ((2, 2),)
    assert normalize_padding("t", "same", 3) == "SAME"
    assert normalize_padding("t", "Causal", 1) == "CAUSAL"


def test_resolve_padding_hand_computed():
    # SAME: out = ceil(in / s); total = (out - 1) s + k_eff - in, the odd element at the end
    assert resolve_padding("SAME", (5,), (3,), (2,), (1,)) == ((1, 1),)
    assert resolve_padding("SAME", (6,), (3,), (2,), (1,)) == ((0, 1),)
    assert resolve_padding("SAME", (6, 4), (4, 1), (1, 3), (1, 1)) == ((1, 2), (0, 0))
    assert resolve_padding("SAME", (5,), (3,), (1,), (2,)) == ((2, 2),)
    assert resolve_padding("VALID", (5, 5), (3, 3), (1, 1), (1, 1)) == ((0, 0), (0, 0))
    assert resolve_padding("CAUSAL", (5,), (3,), (1,), (2,)) == ((4, 0),)
    assert resolve_padding(((1, 2),), (5,), (3,), (1,), (1,)) == ((1, 2),)


def test_check_window_fits():
    check_window_fits("t", (5,), ((0, 0),), (3,), (2,))  # 5 >= 5: fits
    with pytest.raises(ValueError, match=r"t: padded input size along spatial axis 0 must be >= "
                       r"the dilated window size 7, got 6\. The input is too small"):
        check_window_fits("t", (4,), ((1, 1),), (4,), (2,), what="window")


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ops.pad(jnp.ones((4, 4)), 1), ValueError,
     r"pad: input rank must be 3, 4 or 5 .*got 2\. Add a batch axis"),
    (lambda: ops.pad(jnp.ones((1, 4, 1)), 1, "edge"), ValueError,
     r"pad: mode must be one of 'zeros', 'constant', 'reflect', 'replicate', 'circular', "
     r"got 'edge'"),
    (lambda: ops.pad(jnp.ones((1, 4, 1)), "SAME"), ValueError,
     r"pad: padding must be an int, a tuple, \(low, high\) pairs, got 'SAME'"),
    (lambda: ops.pad(jnp.ones((1, 4, 4, 1)), 1.5), TypeError,
     r"pad: padding must be an int, 2 ints, 2 \(low, high\) pairs, got 1\.5"),
    (lambda: ops.pad(jnp.ones((1, 4, 4, 1)), (1, 2, 3)), ValueError,
     r"pad: padding must be an int, 2 ints, 2 \(low, high\) pairs, got \(1, 2, 3\)"),
    (lambda: ops.pad(jnp.ones((1, 4, 4, 1)), ((1, 2, 3), 1)), TypeError,
     r"pad: padding must be 2 ints or 2 \(low, high\) pairs, got \(\(1, 2, 3\), 1\)"),
    (lambda: ops.pad(jnp.ones((1, 4, 4, 1)), (-1, 0)), ValueError,
     r"pad: padding must be non-negative, got \(-1, 0\)"),
    (lambda: ops.pad(jnp.ones((1, 4, 4, 1)), ((0, 0), (0, 4)), "reflect"), ValueError,
     r"pad: reflect padding along spatial axis 1 must be smaller than the input size 4, "
     r"got \(0, 4\)"),
    (lambda: ops.pad(jnp.ones((1, 4, 1)), 5, "circular"), ValueError,
     r"pad: circular padding along spatial axis 0 must be at most the input size 4, got \(5, 5\)"),
    (lambda: ops.crop(jnp.ones((1, 4, 1)), 2), ValueError,
     r"crop: cropping along spatial axis 0 must be less than the size 4 in total, got \(2, 2\)"),
    (lambda: ops.crop(jnp.ones((1, 4, 1)), -1), ValueError,
     r"crop: cropping must be non-negative, got -1"),
    (lambda: ops.crop(jnp.ones((1, 4, 1)), "SAME"), ValueError,
     r"crop: cropping must be an int, a tuple, \(low, high\) pairs, got 'SAME'"),
    (lambda: ops.crop(jnp.ones((4,)), 1), ValueError, r"crop: input rank must be 3, 4 or 5"),
])
def test_error_messages(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
