"""Segmentation data: procedural 2-d/3-d scenes (deterministic per seed, every class
present), MNIST-seg canvases (masks follow the digits), and the npz loader on small files
the tests write, with each of its errors."""

import numpy as np
import pytest

from jaxcnn.data import (load_segmentation_npz, make_digit_canvases, make_shapes2d,
                         make_shapes3d)


def test_shapes2d_deterministic_and_every_class_present():
    a = make_shapes2d(20, 5, size=24, seed=3)
    b = make_shapes2d(20, 5, size=24, seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, make_shapes2d(20, 5, size=24, seed=4).x_train)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    assert set(np.unique(a.y_train)) == {0, 1, 2, 3}
    assert not np.array_equal(a.x_train[:5], a.x_test)  # independent streams
    # the textures tell classes apart: disks are flat, squares striped
    x, y = a.x_train[..., 0], a.y_train
    assert x[y == 1].std() < x[y == 2].std()


def test_shapes3d():
    d = make_shapes3d(6, 2, size=12, seed=0)
    assert d.x_train.shape == (6, 12, 12, 12, 1) and d.y_test.shape == (2, 12, 12, 12)
    assert set(np.unique(d.y_train)) == {0, 1, 2}


@pytest.mark.parametrize("kw, message", [
    (dict(n_train=0), "make_shapes2d: n_train must be an int >= 1"),
    (dict(size=4), "make_shapes2d: size must be an int >= 8"),
    (dict(num_shapes=(3, 2)), "make_shapes2d: num_shapes must be a pair"),
    (dict(seed=1.5), "make_shapes2d: seed must be an int"),
])
def test_shapes_errors(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make_shapes2d(**{"n_train": 2, "n_test": 1, **kw})


def test_digit_canvases_masks_follow_the_digits():
    digits = np.zeros((2, 28, 28), np.uint8)
    digits[0, 5:10, 5:10] = 255
    digits[1, 20:25, 3:8] = 100  # below the 0.5 threshold: image only, no mask
    x, y = make_digit_canvases(digits, np.array([3, 7]), 30, size=40, per_canvas=2, seed=1)
    assert x.shape == (30, 40, 40, 1) and x.max() <= 1.0
    assert set(np.unique(y)) == {0, 4}
    np.testing.assert_array_equal(y == 4, x[..., 0] > 0.5)
    with pytest.raises(ValueError, match="make_digit_canvases: size must be >= the digit size"):
        make_digit_canvases(digits, np.array([3, 7]), 2, size=20)
    with pytest.raises(ValueError, match="make_digit_canvases: digits must be"):
        make_digit_canvases(digits, np.array([3]), 2)


def test_digit_canvases_gap_keeps_the_digits_apart():
    # two distinct digits with ink blocks; a naive check over every pixel pair of the masks
    digits = np.zeros((2, 28, 28), np.uint8)
    digits[0, 4:24, 8:20] = 255
    digits[1, 6:22, 4:24] = 255
    x, y = make_digit_canvases(digits, np.array([1, 2]), 40, size=64, gap=3, seed=0)
    checked = 0
    for m in y:
        a, b = np.argwhere(m == 2), np.argwhere(m == 3)
        if len(a) and len(b):
            chebyshev = np.abs(a[:, None, :] - b[None, :, :]).max(-1)
            assert chebyshev.min() > 3
            checked += 1
    assert checked >= 10  # canvases holding both digits
    # without a gap the same draws overlap somewhere (the later digit owns shared pixels)
    _, loose = make_digit_canvases(digits, np.array([1, 2]), 40, size=40, seed=0)
    assert any(((m == 2).sum() < 240 and (m == 2).any()) or ((m == 3).sum() < 320 and
               (m == 3).any()) for m in loose)
    for bad in (-1, 1.5, "2"):
        with pytest.raises(ValueError, match="make_digit_canvases: gap must be None or an int"):
            make_digit_canvases(digits, np.array([1, 2]), 2, size=40, gap=bad)


def write(tmp_path, **arrays):
    path = tmp_path / "seg.npz"
    np.savez(path, **arrays)
    return path


def test_npz_loader_splits_and_scales(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 6, 5, 3)).astype(np.uint8)
    masks = rng.integers(0, 4, (10, 6, 5))
    masks[0, 0, 0] = 255
    d = load_segmentation_npz(write(tmp_path, images=images, masks=masks), ignore_index=255,
                              test_fraction=0.3)
    assert d.x_train.shape == (7, 6, 5, 3) and d.x_test.shape == (3, 6, 5, 3)
    assert d.class_names == ("0", "1", "2", "3") and d.x_val is None
    assert d.x_train.max() <= 1.0 and d.y_train.dtype == np.int32
    both = np.concatenate([d.y_train, d.y_test])
    assert sorted(both.reshape(10, -1).sum(1)) == sorted(masks.reshape(10, -1).sum(1))
    vol = load_segmentation_npz(write(
        tmp_path, images=np.zeros((4, 3, 3, 3), np.float32), masks=np.ones((4, 3, 3, 3), int),
        val_images=np.zeros((2, 3, 3, 3), np.float32), val_masks=np.zeros((2, 3, 3, 3), int),
        test_images=np.zeros((2, 3, 3, 3), np.float32), test_masks=np.zeros((2, 3, 3, 3), int)))
    assert vol.x_train.shape == (4, 3, 3, 3, 1) and vol.x_val.shape == (2, 3, 3, 3, 1)
    assert vol.class_names == ("0", "1")


@pytest.mark.parametrize("arrays, kw, message", [
    (dict(images=np.zeros((4, 6, 6)), masks=np.zeros((4, 6, 5), int)), {},
     "load_segmentation_npz: images shape must be \\(4, 6, 5\\) or"),
    (dict(images=np.zeros((4, 6, 6, 1)), masks=np.zeros((3, 6, 6), int)), {},
     "load_segmentation_npz: images shape must be"),
    (dict(images=np.zeros((4, 6, 6)), masks=np.full((4, 6, 6), 5)), dict(num_classes=3),
     "load_segmentation_npz: every label in masks must be in \\[0, 3\\), got 5"),
    (dict(images=np.zeros((4, 6, 6)), masks=np.full((4, 6, 6), -1)), {},
     "load_segmentation_npz: every label in masks must be in \\[0, 1\\), got -1"),
    (dict(images=np.zeros((4, 6, 6)), masks=np.zeros((4, 6, 6), int),
          test_images=np.zeros((2, 6, 6)), test_masks=np.full((2, 6, 6), 3)), dict(num_classes=3),
     "load_segmentation_npz: every label in test_masks must be in \\[0, 3\\), got 3"),
    (dict(images=np.zeros((4, 6, 6)), masks=np.zeros((4, 6, 6), int),
          val_images=np.zeros((2, 6, 6, 1)), val_masks=np.zeros((2, 5, 6), int)), {},
     "load_segmentation_npz: val_images shape must be \\(2, 5, 6\\) or"),
    (dict(images=np.zeros((4, 6, 6)), masks=np.zeros((4, 6, 6))), {},
     "load_segmentation_npz: masks dtype must be an integer dtype"),
    (dict(images=np.zeros((4, 6, 6))), {},
     "load_segmentation_npz: the arrays in .* must be images and masks"),
    (dict(images=np.zeros((4, 6, 6)), masks=np.zeros((4, 6, 6), int),
          test_images=np.zeros((2, 6, 6))), {},
     "load_segmentation_npz: the test arrays must be both test_images and test_masks"),
    (dict(images=np.zeros((4, 6, 6)), masks=np.zeros((4, 6, 6), int),
          test_images=np.zeros((2, 5, 5)), test_masks=np.zeros((2, 5, 5), int)), {},
     "load_segmentation_npz: the image shapes of every split must be equal"),
    (dict(images=np.zeros((4, 6)), masks=np.zeros((4,), int)), {},
     "load_segmentation_npz: masks rank must be 2, 3 or 4"),
])
def test_npz_errors(tmp_path, arrays, kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        load_segmentation_npz(write(tmp_path, **arrays), **kw)
