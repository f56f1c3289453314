"""Augmentations: checked against numpy references written here (np.pad windows, np.rot90,
np.roll, a naive bilinear sampler), plus jit, determinism and error messages."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.data import augment


def windows(x, padding, mode):
    """Every crop of the numpy-padded image, keyed by offset."""
    n = x.ndim - 1
    xp = np.pad(x, [(padding, padding)] * n + [(0, 0)], mode=mode)
    shape = x.shape[:-1]
    out = {}
    for off in np.ndindex(*([2 * padding + 1] * n)):
        out[off] = xp[tuple(slice(o, o + s) for o, s in zip(off, shape))]
    return out


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("constant", "constant"),
                                          ("edge", "edge")])
def test_random_crop_is_a_window_of_the_padded_image(rng, mode, np_mode):
    x = rng.normal(size=(64, 6, 7, 2)).astype(np.float32)
    y = np.asarray(jax.jit(augment.random_crop(2, mode))(jax.random.key(1), jnp.asarray(x)))
    assert y.shape == x.shape
    seen = set()
    for xi, yi in zip(x, y):
        hits = [off for off, w in windows(xi, 2, np_mode).items() if np.array_equal(w, yi)]
        assert hits, "output is not a window of the padded input"
        seen.add(hits[0])
    assert len(seen) > 10  # offsets vary per example (25 possible)


def test_random_crop_1d_and_3d(rng):
    for shape in [(8, 9, 3), (4, 3, 4, 3, 1)]:
        x = rng.normal(size=shape).astype(np.float32)
        y = np.asarray(augment.random_crop(1)(jax.random.key(0), jnp.asarray(x)))
        for xi, yi in zip(x, y):
            assert any(np.array_equal(w, yi) for w in windows(xi, 1, "reflect").values())


def test_random_shift_edge_fill_on_digits_like_image():
    x = np.zeros((16, 8, 8, 1), np.float32)
    x[:, 3:5, 3:5] = 1.0
    y = np.asarray(augment.random_shift(2)(jax.random.key(3), jnp.asarray(x)))
    # an integer translation: the blob moves by at most 2 pixels and keeps its mass
    np.testing.assert_allclose(y.sum((1, 2, 3)), 4.0)
    for yi in y:
        r, c = np.nonzero(yi[..., 0])
        assert 1 <= r.min() <= 5 and 1 <= c.min() <= 5


def test_random_flip(rng):
    x = rng.normal(size=(200, 4, 5, 3)).astype(np.float32)
    y = np.asarray(augment.random_flip(0.3)(jax.random.key(0), jnp.asarray(x)))
    flipped = np.array([np.array_equal(yi, xi[:, ::-1]) for xi, yi in zip(x, y)])
    same = np.array([np.array_equal(yi, xi) for xi, yi in zip(x, y)])
    assert np.all(flipped ^ same)
    assert 0.2 < flipped.mean() < 0.4
    yv = np.asarray(augment.random_flip(1.0, "vertical")(jax.random.key(0), jnp.asarray(x)))
    np.testing.assert_array_equal(yv, x[:, ::-1])


def bilinear_reference(img, src_y, src_x):
    """Naive bilinear sampling with edge clamping (scipy's mode='nearest')."""
    h, w = img.shape
    out = np.zeros(src_y.shape)
    for i in range(src_y.shape[0]):
        for j in range(src_y.shape[1]):
            y = min(max(src_y[i, j], 0), h - 1)
            x = min(max(src_x[i, j], 0), w - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = y - y0, x - x0
            out[i, j] = ((1 - fy) * (1 - fx) * img[y0, x0] + (1 - fy) * fx * img[y0, x1]
                         + fy * (1 - fx) * img[y1, x0] + fy * fx * img[y1, x1])
    return out


def test_affine_exact_cases(rng):
    x = rng.normal(size=(3, 5, 5, 2)).astype(np.float32)
    zeros, ones = jnp.zeros((3, 2)), jnp.ones(3)
    rot = np.asarray(augment.affine(jnp.asarray(x), jnp.full(3, 90.0), zeros, ones))
    np.testing.assert_allclose(rot, np.rot90(x, 1, axes=(1, 2)), atol=1e-5)
    rot = np.asarray(augment.affine(jnp.asarray(x), jnp.full(3, -90.0), zeros, ones))
    np.testing.assert_allclose(rot, np.rot90(x, -1, axes=(1, 2)), atol=1e-5)
    shift = jnp.tile(jnp.array([[1.0, -2.0]]), (3, 1))
    moved = np.asarray(augment.affine(jnp.asarray(x), jnp.zeros(3), shift, ones, mode="wrap"))
    np.testing.assert_allclose(moved, np.roll(x, (1, -2), axis=(1, 2)), atol=1e-5)


def test_affine_matches_naive_bilinear(rng):
    x = rng.normal(size=(2, 6, 7, 1)).astype(np.float32)
    angle, shift, scale = np.array([17.0, -33.0]), np.array([[0.3, -0.7], [1.2, 0.4]]), \
        np.array([1.1, 0.9])
    y = np.asarray(augment.affine(jnp.asarray(x), jnp.asarray(angle, jnp.float32),
                                  jnp.asarray(shift, jnp.float32), jnp.asarray(scale, jnp.float32)))
    rows, cols = np.meshgrid(np.arange(6.0), np.arange(7.0), indexing="ij")
    cy, cx = 2.5, 3.0
    for n in range(2):
        t = np.deg2rad(angle[n])
        dy, dx = rows - cy - shift[n, 0], cols - cx - shift[n, 1]
        # a point p of the output comes from the input point rotated back by -angle
        src_y = cy + (np.cos(t) * dy + np.sin(t) * dx) / scale[n]
        src_x = cx + (-np.sin(t) * dy + np.cos(t) * dx) / scale[n]
        np.testing.assert_allclose(y[n, ..., 0], bilinear_reference(x[n, ..., 0], src_y, src_x),
                                   atol=1e-5)


def test_random_affine_jit_and_purity(rng):
    x = jnp.asarray(rng.normal(size=(4, 8, 8, 1)).astype(np.float32))
    f = jax.jit(augment.compose(augment.random_rotation(15), augment.random_shift(1)))
    a, b = f(jax.random.key(5), x), f(jax.random.key(5), x)
    np.testing.assert_array_equal(a, b)  # pure: same key, same batch
    assert not np.allclose(a, f(jax.random.key(6), x))


def test_errors():
    x = jnp.zeros((2, 4, 4, 1))
    with pytest.raises(ValueError, match="random_crop: padding must be a non-negative int"):
        augment.random_crop(-1)
    with pytest.raises(ValueError, match="random_crop: mode must be one of"):
        augment.random_crop(2, "wrap")
    with pytest.raises(ValueError, match="padding must be < the smallest spatial size 4"):
        augment.random_crop(4)(jax.random.key(0), x)
    with pytest.raises(ValueError, match="random_crop: batch rank must be 3 or 4 or 5"):
        augment.random_crop(1)(jax.random.key(0), jnp.zeros((4, 4)))
    with pytest.raises(ValueError, match="random_flip: p must be a probability"):
        augment.random_flip(1.5)
    with pytest.raises(ValueError, match="random_shift: max_shift must be"):
        augment.random_shift(0.5)
    with pytest.raises(ValueError, match="random_affine: scale must be a pair"):
        augment.random_affine(scale=(2.0, 1.0))
    with pytest.raises(ValueError, match="random_affine: degrees must be a non-negative"):
        augment.random_affine(-3)
    with pytest.raises(ValueError, match="affine: batch rank must be 4"):
        augment.random_rotation()(jax.random.key(0), jnp.zeros((2, 4, 1)))
    with pytest.raises(TypeError, match="affine: x.dtype must be floating"):
        augment.affine(jnp.zeros((1, 4, 4, 1), jnp.uint8), jnp.zeros(1), jnp.zeros((1, 2)),
                       jnp.ones(1))
    with pytest.raises(TypeError, match="compose: argument 0 must be a function"):
        augment.compose(3)
