"""Tests of ops.upsample / pixel_shuffle / pixel_unshuffle and their layers.

References: hand-computed cases, and a naive numpy loop over output elements that
implements PyTorch's ``F.interpolate`` formulas (``area_pixel_compute_source_index``,
``nearest_neighbor_compute_source_index``, Keys' cubic with A = -0.75) independently of
jaxcnn's vectorised tap tables. The semantics were checked against torch 2.x
interactively (torch is not imported here).
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxcnn
from jaxcnn import ops

from conftest import TOL

# ---------------------------------------------------------------- numpy reference


def _ref_taps(o, in_size, out_size, mode, align_corners, scale):
    """(indices, weights) that PyTorch's formulas give for output index ``o``."""
    if mode == "nearest":
        r = (np.float32(1.0 / scale) if scale is not None
             else np.float32(in_size) / np.float32(out_size))
        return [min(int(np.floor(np.float32(o) * r)), in_size - 1)], [1.0]
    if align_corners:
        r = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = r * o
    else:
        r = 1.0 / scale if scale is not None else in_size / out_size
        src = r * (o + 0.5) - 0.5
    if mode == "linear":
        if in_size == out_size:
            return [o], [1.0]
        src = max(src, 0.0)
        i0 = min(math.floor(src), in_size - 1)
        t = min(max(src - i0, 0.0), 1.0)
        return [i0, min(i0 + 1, in_size - 1)], [1.0 - t, t]
    i0 = min(math.floor(src), in_size - 1)
    t = min(max(src - i0, 0.0), 1.0)
    a = -0.75

    def keys(d):  # Keys' cubic convolution kernel
        d = abs(d)
        if d <= 1:
            return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
        if d < 2:
            return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
        return 0.0

    return ([min(max(i0 + k, 0), in_size - 1) for k in (-1, 0, 1, 2)],
            [keys(t - k) for k in (-1, 0, 1, 2)])


def ref_upsample(x, out_sizes, mode, align_corners=False, scales=None):
    """Naive loop: every output element is a sum over the product of per-axis taps."""
    x = np.asarray(x, np.float64)
    n_sp = x.ndim - 2
    scales = scales or (None,) * n_sp
    y = np.zeros((x.shape[0],) + tuple(out_sizes) + (x.shape[-1],))
    for out_idx in itertools.product(*[range(o) for o in out_sizes]):
        taps = [_ref_taps(o, x.shape[1 + d], out_sizes[d], mode, align_corners, scales[d])
                for d, o in enumerate(out_idx)]
        acc = 0.0
        for combo in itertools.product(*[list(zip(*t)) for t in taps]):
            idx = tuple(c[0] for c in combo)
            w = math.prod(c[1] for c in combo)
            acc = acc + w * x[(slice(None),) + idx]
        y[(slice(None),) + out_idx] = acc
    return y


def ref_pixel_shuffle(x, r):
    """y[n, *(s * r + k), c] = x[n, *s, c * r^d + flat(k)], by loops."""
    d = x.ndim - 2
    c_out = x.shape[-1] // r ** d
    y = np.zeros((x.shape[0],) + tuple(s * r for s in x.shape[1:-1]) + (c_out,), x.dtype)
    for s in itertools.product(*[range(v) for v in x.shape[1:-1]]):
        for k in itertools.product(range(r), repeat=d):
            flat = sum(kk * r ** (d - 1 - i) for i, kk in enumerate(k))
            for c in range(c_out):
                pos = tuple(si * r + ki for si, ki in zip(s, k))
                y[(slice(None),) + pos + (c,)] = x[(slice(None),) + s + (c * r ** d + flat,)]
    return y


# ---------------------------------------------------------------- hand cases


def _line(values):
    return jnp.asarray(values, jnp.float32).reshape(1, -1, 1)


def test_linear_hand_cases():
    x = _line([1.0, 2.0])
    np.testing.assert_allclose(ops.upsample(x, scale_factor=2, mode="linear")[0, :, 0],
                               [1.0, 1.25, 1.75, 2.0], **TOL[np.dtype("float32")])
    np.testing.assert_allclose(
        ops.upsample(x, scale_factor=2, mode="linear", align_corners=True)[0, :, 0],
        [1.0, 4 / 3, 5 / 3, 2.0], **TOL[np.dtype("float32")])
    # Downsampling 4 -> 2 averages neighbours (source 0.5 and 2.5).
    np.testing.assert_allclose(ops.upsample(_line([0.0, 1.0, 2.0, 3.0]), size=2,
                                            mode="linear")[0, :, 0], [0.5, 2.5])


def test_nearest_hand_cases():
    np.testing.assert_array_equal(ops.upsample(_line([1.0, 2.0, 3.0]), size=5)[0, :, 0],
                                  [1, 1, 2, 2, 3])  # floor(o * 3 / 5)
    y = ops.upsample(_line([0.0, 1.0, 2.0, 3.0]), scale_factor=2.1)[0, :, 0]
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 1, 2, 2, 3])  # floor(o / 2.1), 8 outputs
    np.testing.assert_array_equal(ops.upsample(_line([0.0, 1.0, 2.0, 3.0]), size=2)[0, :, 0],
                                  [0, 2])


def test_cubic_hand_case():
    # o = 0: source -0.25, t = 0.75, taps (-2, -1, 0, 1) clamp to (0, 0, 0, 1) with Keys
    # weights (-0.03515625, 0.26171875, 0.87890625, -0.10546875): 1.10546875 - 0.2109375.
    y = ops.upsample(_line([1.0, 2.0]), scale_factor=2, mode="cubic")[0, :, 0]
    np.testing.assert_allclose(y, [0.89453125, 1.2265625, 1.7734375, 2.10546875], rtol=1e-6)
    # A centred spike downsampled 5 -> 3 rings negative on both sides (A = -0.75).
    y = ops.upsample(_line([0.0, 0.0, 1.0, 0.0, 0.0]), size=3, mode="cubic")[0, :, 0]
    np.testing.assert_allclose(y, [-1 / 18, 1.0, -1 / 18], rtol=1e-6)


def test_pixel_shuffle_hand_case():
    x = jnp.arange(8.0).reshape(1, 1, 1, 8)  # channel c * 4 + i * 2 + j
    y = ops.pixel_shuffle(x, 2)
    assert y.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[4, 5], [6, 7]])
    np.testing.assert_array_equal(ops.pixel_unshuffle(y, 2), x)


# ---------------------------------------------------------------- grids vs the reference

_SCALES = [0.5, 0.7, 1.2, 1.5, 1.7, 2.0, 2.1, 3.0, 1 / 3]


def _configs(seed=0, count=27):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        mode = ("nearest", "linear", "cubic")[i % 3]
        n = (1, 2, 3)[(i // 3) % 3] if mode != "cubic" else (1, 2)[(i // 3) % 2]
        in_sizes = tuple(int(v) for v in rng.integers(1, 6, size=n))
        align = bool(rng.integers(2)) and mode != "nearest"
        if rng.integers(2):
            sf = tuple(float(rng.choice(_SCALES)) for _ in range(n))
            if any(math.floor(s * f) < 1 for s, f in zip(in_sizes, sf)):
                sf = tuple(max(f, 1.0) for f in sf)
            out.append((mode, in_sizes, dict(scale_factor=sf), align))
        else:
            size = tuple(int(v) for v in rng.integers(1, 8, size=n))
            out.append((mode, in_sizes, dict(size=size), align))
    return out


@pytest.mark.parametrize("mode,in_sizes,kw,align", _configs())
def test_upsample_matches_reference(mode, in_sizes, kw, align):
    rng = np.random.default_rng(len(in_sizes))
    x = rng.normal(size=(2,) + in_sizes + (2,))
    y = jax.jit(lambda a: ops.upsample(a, mode=mode, align_corners=align, **kw))(
        jnp.asarray(x, jnp.float32))
    if "size" in kw:
        out, scales = kw["size"], None
    else:
        scales = kw["scale_factor"]
        out = tuple(math.floor(s * f) for s, f in zip(in_sizes, scales))
    assert y.shape == (2,) + out + (2,) and y.dtype == jnp.float32
    np.testing.assert_allclose(y, ref_upsample(x, out, mode, align, scales), rtol=1e-5, atol=1e-5)


def test_upsample_float64_exact():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 3, 4, 2))
    with jax.enable_x64(True):
        for mode, align in [("linear", False), ("linear", True), ("cubic", False), ("cubic", True)]:
            y = ops.upsample(jnp.asarray(x), size=(5, 7), mode=mode, align_corners=align)
            assert y.dtype == jnp.float64
            np.testing.assert_allclose(y, ref_upsample(x, (5, 7), mode, align),
                                       **TOL[np.dtype("float64")])


def test_upsample_dtypes():
    x = jnp.arange(6, dtype=jnp.int32).reshape(1, 2, 3, 1)
    y = ops.upsample(x, scale_factor=2)
    assert y.dtype == jnp.int32 and y.shape == (1, 4, 6, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2],
                                                  [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]])
    xb = jnp.linspace(0, 1, 8, dtype=jnp.float32).reshape(1, 8, 1)
    yb = ops.upsample(xb.astype(jnp.bfloat16), scale_factor=1.5, mode="cubic")
    assert yb.dtype == jnp.bfloat16
    np.testing.assert_allclose(yb.astype(jnp.float32),
                               ops.upsample(xb, scale_factor=1.5, mode="cubic"), atol=1e-2)


def test_pixel_shuffle_matches_reference_and_round_trips():
    rng = np.random.default_rng(2)
    for shape, r in [((2, 3, 8), 2), ((1, 2, 3, 18), 3), ((1, 2, 1, 2, 16), 2), ((2, 2, 2, 4), 2)]:
        x = rng.normal(size=shape).astype(np.float32)
        y = jax.jit(lambda a: ops.pixel_shuffle(a, r))(x)  # noqa: B023
        np.testing.assert_array_equal(y, ref_pixel_shuffle(x, r))
        back = jax.jit(lambda a: ops.pixel_unshuffle(a, r))(y)  # noqa: B023
        np.testing.assert_array_equal(back, x)
    # Per-axis factors: (2, 1) shuffles rows only.
    x = jnp.arange(12.0).reshape(1, 1, 3, 4)
    y = ops.pixel_shuffle(x, (2, 1))
    assert y.shape == (1, 2, 3, 2)
    np.testing.assert_array_equal(ops.pixel_unshuffle(y, (2, 1)), x)


# ---------------------------------------------------------------- transformations


def test_grads():
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(1, 3, 4, 2)))
        for mode in ("nearest", "linear", "cubic"):
            f = jax.jit(lambda a, m=mode: ops.upsample(a, scale_factor=(1.5, 0.75), mode=m))
            check_grads(f, (x,), order=1, modes=["rev"])
        f = jax.jit(lambda a: ops.upsample(a, scale_factor=2))
        check_grads(f, (x,), order=1, modes=["rev"])
        check_grads(jax.jit(lambda a: ops.pixel_shuffle(a, 2)),
                    (jnp.asarray(rng.normal(size=(1, 2, 2, 4))),), order=1, modes=["rev"])


def test_jit_equals_eager_and_vmap_equals_loop():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(3, 2, 4, 5, 2)), jnp.float32)  # (members, N, H, W, C)
    f = lambda a: ops.upsample(a, size=(7, 3), mode="cubic", align_corners=True)  # noqa: E731
    np.testing.assert_allclose(jax.jit(f)(x[0]), f(x[0]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.vmap(f))(x), jnp.stack([f(a) for a in x]), rtol=1e-6,
                               atol=1e-6)
    g = lambda a: ops.pixel_unshuffle(a, (2, 1))  # noqa: E731
    np.testing.assert_array_equal(jax.jit(jax.vmap(g))(x), jnp.stack([g(a) for a in x]))


def test_layers():
    key = jax.random.key(0)
    net = jaxcnn.serial(jaxcnn.pixel_unshuffle(2), jaxcnn.pixel_shuffle(2),
                        jaxcnn.upsample(scale_factor=(2, 1.5), mode="linear", align_corners=True))
    out_shape, params, state = net.init(key, (4, 6, 3))
    assert out_shape == (8, 9, 3) and jax.tree_util.tree_leaves(params) == []
    x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 4, 6, 3)), jnp.float32)
    y, _ = net.apply(params, state, x, train=False)
    np.testing.assert_allclose(y, ops.upsample(x, scale_factor=(2, 1.5), mode="linear",
                                               align_corners=True), rtol=1e-6)
    assert jaxcnn.upsample(size=5).init(key, (3, 2))[0] == (5, 2)
    assert jaxcnn.upsample(size=(2, 3, 4), mode="linear").init(key, (1, 1, 1, 2))[0] == (2, 3, 4, 2)


# ---------------------------------------------------------------- errors

X2 = jnp.zeros((1, 4, 4, 8))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: ops.upsample(X2), ValueError,
     r"upsample: size and scale_factor must be exactly one given, got 'neither'"),
    (lambda: ops.upsample(X2, size=2, scale_factor=2), ValueError, r"got 'both'"),
    (lambda: ops.upsample(X2, size=2.0), TypeError, r"size must be an int or a tuple of ints"),
    (lambda: ops.upsample(X2, size=0), ValueError, r"size must be positive"),
    (lambda: ops.upsample(X2, size=(2, 2, 2)), ValueError,
     r"size must be an int or a sequence of 2 ints"),
    (lambda: ops.upsample(X2, scale_factor="2"), TypeError, r"scale_factor must be a number"),
    (lambda: ops.upsample(X2, scale_factor=-1), ValueError,
     r"scale_factor must be positive and finite"),
    (lambda: ops.upsample(X2, scale_factor=(2, 2, 2)), ValueError,
     r"scale_factor must be a single value or 2 values"),
    (lambda: ops.upsample(X2, scale_factor=0.1), ValueError,
     r"output size .* must be positive, got \(0, 0\)"),
    (lambda: ops.upsample(X2, size=2, mode="bilinear"), ValueError,
     r"mode must be one of 'nearest', 'linear', 'cubic'"),
    (lambda: ops.upsample(X2, size=2, mode="linear", align_corners=1), TypeError,
     r"align_corners must be a bool"),
    (lambda: ops.upsample(X2, size=2, align_corners=True), ValueError,
     r"align_corners must be False for mode='nearest'"),
    (lambda: ops.upsample(X2.astype(jnp.int32), size=2, mode="linear"), TypeError,
     r"x dtype must be a floating dtype"),
    (lambda: ops.upsample(X2[0, 0], size=2), ValueError, r"upsample: x rank must be 3, 4 or 5"),
    (lambda: ops.pixel_shuffle(X2, 3), ValueError,
     r"pixel_shuffle: number of channels .* divisible by the product of upscale_factor 9, got 8"),
    (lambda: ops.pixel_shuffle(X2, 0), ValueError, r"pixel_shuffle: upscale_factor must be >= 1"),
    (lambda: ops.pixel_unshuffle(X2, 3), ValueError,
     r"pixel_unshuffle: spatial sizes .* divisible by downscale_factor \(3, 3\), got \(4, 4\)"),
    (lambda: ops.pixel_unshuffle(X2, (2, 2, 2)), ValueError,
     r"downscale_factor must be an int or a sequence of 2 ints"),
    (lambda: jaxcnn.upsample(), ValueError,
     r"upsample: size and scale_factor must be exactly one given"),
    (lambda: jaxcnn.upsample(size=2, mode="area"), ValueError, r"mode must be one of"),
    (lambda: jaxcnn.pixel_shuffle(2.0), TypeError,
     r"pixel_shuffle: upscale_factor must be an int or a tuple of ints"),
    (lambda: jaxcnn.pixel_unshuffle(0), ValueError,
     r"pixel_unshuffle: downscale_factor must be >= 1"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
