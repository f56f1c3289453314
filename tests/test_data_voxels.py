"""Voxel data: procedural shapes, .npz loading and downsampling, .off reading and voxelising,
and the 3-d augmentations. References are hand counts and numpy (np.rot90, np.flip, loops)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.data import augment3d
from jaxcnn.data.voxels import (downsample, load_off_folder, load_shapes, load_voxel_npz,
                                make_shapes, read_off, voxelize_mesh)

# ----------------------------------------------------------------------- procedural shapes


def test_shapes_deterministic_balanced_binary():
    x, y = make_shapes(3, grid=10, seed=5)
    x2, y2 = make_shapes(3, grid=10, seed=5)
    x3, _ = make_shapes(3, grid=10, seed=6)
    assert x.shape == (24, 10, 10, 10, 1) and x.dtype == np.uint8 and y.dtype == np.int32
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert (x != x3).any()
    assert np.bincount(y).tolist() == [3] * 8
    assert set(np.unique(x)) <= {0, 1}
    assert (x.reshape(24, -1).sum(1) > 0).all()


def test_sphere_volume_and_hollow_subset():
    kw = dict(grid=24, classes=("sphere",), scale=(0.5, 0.5), surface_noise=0.0, noise=0.0,
              rotation="none", seed=1)
    solid, _ = make_shapes(2, hollow=0.0, **kw)
    shell, _ = make_shapes(2, hollow=1.0, thickness=(2.0, 2.0), **kw)
    r = 0.5 * 24 / 2  # radius in voxels
    np.testing.assert_allclose(solid.reshape(2, -1).sum(1), 4 / 3 * math.pi * r ** 3, rtol=0.06)
    assert (shell <= solid).all()
    # the shell of thickness 2 voxels: between the spheres of radius r and r - 2
    np.testing.assert_allclose(shell.reshape(2, -1).sum(1),
                               4 / 3 * math.pi * (r ** 3 - (r - 2) ** 3), rtol=0.1)


def test_load_shapes_splits_differ():
    d = load_shapes(8, train_per_class=1, val_per_class=1, test_per_class=1)
    assert d.x_train.shape == d.x_val.shape == d.x_test.shape == (8, 8, 8, 8, 1)
    assert not np.array_equal(d.x_train, d.x_test)
    assert d.class_names[0] == "sphere"


@pytest.mark.parametrize("kwargs, match", [
    (dict(classes=("sphere", "blob")), "each class must be one of"),
    (dict(grid=3), "grid must be an int >= 4"),
    (dict(scale=(0.9, 0.5)), "scale must be a pair"),
    (dict(noise=1.5), "noise must be a probability"),
    (dict(rotation="x"), "rotation must be one of"),
])
def test_shapes_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_shapes(1, **{"grid": 8, **kwargs})


# ----------------------------------------------------------------------- npz + downsample


def test_downsample_against_loops(rng):
    x = (rng.random((2, 4, 6, 2, 3)) > 0.5).astype(np.uint8)
    mean, top = downsample(x, 2), downsample(x, 2, "max")
    assert mean.dtype == np.float32 and top.dtype == np.uint8
    for n, i, j, k, c in np.ndindex(2, 2, 3, 1, 3):
        block = x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, 2 * k:2 * k + 2, c]
        assert mean[n, i, j, k, c] == pytest.approx(block.mean())
        assert top[n, i, j, k, c] == block.max()
    with pytest.raises(ValueError, match="factor must be a divisor"):
        downsample(x, 4)


def _write_npz(path, rng, val=True, size=8):
    arrays = {}
    for split, n in (("train", 6), ("val", 2), ("test", 4)):
        if split == "val" and not val:
            continue
        arrays[f"{split}_images"] = (rng.random((n, size, size, size)) > 0.7).astype(np.uint8) * 255
        arrays[f"{split}_labels"] = (np.arange(n) % 2).astype(np.uint8).reshape(n, 1)
    np.savez(path, **arrays)
    return arrays


def test_load_voxel_npz(tmp_path, rng):
    arrays = _write_npz(tmp_path / "a.npz", rng)
    d = load_voxel_npz(tmp_path / "a.npz")
    assert d.x_train.shape == (6, 8, 8, 8, 1) and d.x_train.dtype == np.uint8
    np.testing.assert_array_equal(d.x_train[..., 0], arrays["train_images"] // 255)
    assert d.y_val.tolist() == [0, 1] and d.class_names == ("0", "1")
    small = load_voxel_npz(tmp_path / "a.npz", grid=4)
    assert small.x_test.shape == (4, 4, 4, 4, 1) and small.x_test.dtype == np.float32
    np.testing.assert_allclose(small.x_test[0, 0, 0, 0, 0],
                               arrays["test_images"][0, :2, :2, :2].mean() / 255)
    _write_npz(tmp_path / "b.npz", rng, val=False)
    assert load_voxel_npz(tmp_path / "b.npz").x_val is None
    np.savez(tmp_path / "c.npz", train_images=arrays["train_images"])
    with pytest.raises(ValueError, match="Missing: .*test_images"):
        load_voxel_npz(tmp_path / "c.npz")
    with pytest.raises(ValueError, match="grid must be a divisor of the stored size 8"):
        load_voxel_npz(tmp_path / "a.npz", grid=3)


def test_load_voxel_npz_refuses_object_arrays_and_bad_labels(tmp_path, rng):
    arrays = _write_npz(tmp_path / "a.npz", rng, size=4)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **dict(arrays, val_images=np.array([None, 1], object)))
    with pytest.raises(ValueError, match=r"load_voxel_npz: the array 'val_images' in .*bad.npz "
                       "must be a numeric array, got 'an object array"):
        load_voxel_npz(bad)
    np.savez(bad, **{k: v for k, v in arrays.items() if k != "val_labels"})
    with pytest.raises(ValueError, match="val arrays in .* must be both val_images and val_labels"):
        load_voxel_npz(bad)
    np.savez(bad, **dict(arrays, test_labels=np.array([0, 1, 2.5, 1])))
    with pytest.raises(ValueError, match="test_labels in .* must be whole numbers"):
        load_voxel_npz(bad)
    bad.write_bytes((tmp_path / "a.npz").read_bytes()[:500])
    with pytest.raises(ValueError, match=f"load_voxel_npz: {bad} must be a readable .npz"):
        load_voxel_npz(bad)


# ----------------------------------------------------------------------- .off meshes

CUBE_OFF = """OFF
# a unit cube, quads
8 6 0
0 0 0
1 0 0
0 1 0
1 1 0
0 0 1
1 0 1
0 1 1
1 1 1
4 0 2 3 1
4 4 5 7 6
4 0 1 5 4
4 2 6 7 3
4 0 4 6 2
4 1 3 7 5
"""

TETRA = (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32),
         np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))


def test_cube_off_solid_and_surface_volumes(tmp_path):
    (tmp_path / "cube.off").write_text(CUBE_OFF)
    v, t = read_off(tmp_path / "cube.off")
    assert v.shape == (8, 3) and t.shape == (12, 3)
    solid = voxelize_mesh(v, t, 16, mode="solid", padding=2)
    surface = voxelize_mesh(v, t, 16, mode="surface", padding=2)
    assert solid.sum() == 12 ** 3               # the cube spans voxels 2..13 on each axis
    assert surface.sum() == 12 ** 3 - 10 ** 3   # its one-voxel shell
    assert (surface <= solid).all() and solid[2:14, 2:14, 2:14].all()


def test_modelnet_header_and_tetra_volume(tmp_path):
    v, t = TETRA
    text = "OFF4 4 0\n" + "".join(f"{a} {b} {c}\n" for a, b, c in v)
    text += "".join(f"3 {a} {b} {c}\n" for a, b, c in t)
    (tmp_path / "t.off").write_text(text)
    v2, t2 = read_off(tmp_path / "t.off")
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(t2, t)
    solid = voxelize_mesh(v, t, 32, mode="solid", padding=0).sum()
    surface = voxelize_mesh(v, t, 32, mode="surface", padding=0).sum()
    exact = 32 ** 3 / 6
    assert exact - 0.02 * exact <= solid <= exact + surface


def test_mesh_z_is_grid_axis_0():
    v = np.array([[x, y, 2 * z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float32)
    faces = [[0, 2, 3, 1], [4, 5, 7, 6], [0, 1, 5, 4], [2, 6, 7, 3], [0, 4, 6, 2], [1, 3, 7, 5]]
    t = np.array([(f[0], f[j], f[j + 1]) for f in faces for j in (1, 2)])
    occ = voxelize_mesh(v, t, 8, padding=0)
    assert occ.any(axis=(1, 2)).sum() == 8 and occ.any(axis=(0, 1)).sum() == 4


@pytest.mark.parametrize("text, match", [
    ("PLY\n3 1 0\n", r"line 1 \(the header\) must be 'OFF'"),
    ("OFF\n3 x 0\n", r"line 2 \(the counts\) must be integers"),
    ("OFF\n3 1 0\n0 0 0\n1 0\n0 1 0\n3 0 1 2\n", r"line 4 \(vertex 1\) must be three numbers"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", r"line 6 \(face 0\) vertex indices must be"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n", r"the number of vertex lines must be 3 .*truncated"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", r"line 6 \(face 0\) must be 'n i_1"),
])
def test_read_off_errors(tmp_path, text, match):
    (tmp_path / "bad.off").write_text(text)
    with pytest.raises(ValueError, match=r"read_off\(bad.off\): " + match):
        read_off(tmp_path / "bad.off")


def test_voxelize_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        voxelize_mesh(*TETRA, 8, mode="filled")
    with pytest.raises(ValueError, match="triangle vertex indices must be in"):
        voxelize_mesh(TETRA[0], TETRA[1] + 1, 8)
    with pytest.raises(ValueError, match="padding must be an int in"):
        voxelize_mesh(*TETRA, 8, padding=4)


def test_load_off_folder(tmp_path):
    for cls, text in (("cube", CUBE_OFF), ("tetra", None)):
        for split in ("train", "test"):
            d = tmp_path / cls / split
            d.mkdir(parents=True)
            if text is None:
                v, t = TETRA
                text = "OFF\n4 4 0\n" + "".join(f"{a} {b} {c}\n" for a, b, c in v) + "".join(
                    f"3 {a} {b} {c}\n" for a, b, c in t)
            (d / f"{cls}_0001.off").write_text(text)
    data = load_off_folder(tmp_path, 8)
    assert data.class_names == ("cube", "tetra")
    assert data.x_train.shape == (2, 8, 8, 8, 1) and data.y_test.tolist() == [0, 1]
    assert data.x_train[0].sum() == 6 ** 3 and data.x_train[1].sum() < data.x_train[0].sum()
    with pytest.raises(ValueError, match="root must be an existing folder"):
        load_off_folder(tmp_path / "missing")


# ----------------------------------------------------------------------- augmentation


@pytest.mark.parametrize("order", [0, 1])
def test_rotate_vertical_quarter_turns_equal_rot90(order, rng):
    x = rng.random((4, 3, 5, 5, 2)).astype(np.float32)
    angles = jnp.asarray(np.arange(4) * np.pi / 2, jnp.float32)
    y = np.asarray(augment3d.rotate_vertical(jnp.asarray(x), angles, order=order))
    for k in range(4):
        np.testing.assert_allclose(y[k], np.rot90(x[k], k, axes=(1, 2)), atol=1e-5)


def test_random_quarter_turns_and_flips(rng):
    x = jnp.asarray(rng.random((6, 2, 4, 4, 1)), jnp.float32)
    y = np.asarray(jax.jit(augment3d.random_rotation_vertical(quarter_turns=True))(
        jax.random.key(3), x))
    for i in range(6):
        assert any(np.array_equal(y[i], np.rot90(np.asarray(x[i]), k, axes=(1, 2)))
                   for k in range(4))
    flipped = augment3d.random_flip3d(axes=(0, 2), p=1.0)(jax.random.key(0), x)
    np.testing.assert_array_equal(flipped, np.flip(np.asarray(x), (1, 3)))
    same = augment3d.random_flip3d(p=0.0)(jax.random.key(0), x)
    np.testing.assert_array_equal(same, x)


def test_random_shift3d_moves_without_loss():
    x = np.zeros((5, 8, 8, 8, 1), np.float32)
    x[:, 3:5, 3:5, 3:5] = 1.0
    y = np.asarray(augment3d.random_shift3d(2)(jax.random.key(1), jnp.asarray(x)))
    assert (y.reshape(5, -1).sum(1) == 8).all()
    assert any(not np.array_equal(y[i], x[i]) for i in range(5))
    aug = augment3d.default_augment("vertical")
    assert aug(jax.random.key(0), jnp.asarray(x)).shape == x.shape


def test_augment3d_errors():
    with pytest.raises(ValueError, match="batch rank must be 5"):
        augment3d.random_flip3d()(jax.random.key(0), jnp.ones((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="degrees must be a number in"):
        augment3d.random_rotation_vertical(270)
    with pytest.raises(ValueError, match="axes must be a non-empty tuple"):
        augment3d.random_flip3d(axes=(3,))
    with pytest.raises(ValueError, match="max_shift must be a non-negative int"):
        augment3d.random_shift3d(-1)
    with pytest.raises(ValueError, match="square for quarter turns"):
        augment3d.random_rotation_vertical(quarter_turns=True)(jax.random.key(0),
                                                               jnp.ones((1, 2, 3, 4, 1)))
