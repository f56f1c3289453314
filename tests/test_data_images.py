"""Image loaders and the download helper, on small files written here (never the network)."""

import gzip
import hashlib
import pickle
import struct
import tarfile
import urllib.error

import numpy as np
import pytest

from jaxcnn.data import (download, fetch, file_checksum, images, load_cifar10, load_digits,
                         load_image_dataset, load_image_folder, load_mnist, load_npz, read_idx,
                         stratified_split, verify_checksum)


def idx_bytes(a: np.ndarray) -> bytes:
    """An IDX file written from the format's definition (uint8 data)."""
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes()


def write(path, data: bytes, gz=False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def md5(path):
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def mnist_folder(tmp_path, n_train=5, n_test=3, gz=True, n_train_labels=None, dotted=False):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train_labels or n_train,
                                                      dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for name, a in arrays.items():
        name = name.replace("-idx", ".idx") if dotted else name
        write(tmp_path / (name + (".gz" if gz else "")), idx_bytes(a), gz)
    return arrays


# ----------------------------------------------------------------------------- IDX / MNIST


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = write(tmp_path / "a-idx3-ubyte", idx_bytes(a), gz)
    np.testing.assert_array_equal(read_idx(p), a)


def test_read_idx_int32_big_endian(tmp_path):
    raw = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">ii", 1, -70000)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "b", raw)), [1, -70000])


def test_read_idx_wrong_magic(tmp_path):
    p = write(tmp_path / "x", b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic number .* must be 0x0000"):
        read_idx(p)


@pytest.mark.parametrize("cut", [6, 20])
def test_read_idx_truncated(tmp_path, cut):
    a = np.zeros((4, 5), np.uint8)
    p = write(tmp_path / "t", idx_bytes(a)[:-cut])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)


def test_read_idx_truncated_gzip(tmp_path):
    p = tmp_path / "t.gz"
    p.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8)))[:-10])
    with pytest.raises(ValueError, match="complete gzip file"):
        read_idx(p)


@pytest.mark.parametrize("damage", ["payload", "crc", "trailing"])
def test_read_idx_corrupt_gzip(tmp_path, damage):
    """A gzip file damaged anywhere (its deflate stream, its checksum, junk after it) is an
    error naming the file, never a shorter or different array."""
    good = bytearray(gzip.compress(idx_bytes(np.arange(400, dtype=np.uint8).reshape(20, 20))))
    if damage == "payload":
        good[12:16] = b"\xff\xff\xff\xff"
    elif damage == "crc":
        good[-8] ^= 0xFF
    else:
        good += b"\x1f\x8bjunk"
    p = write(tmp_path / "t-idx2-ubyte.gz", bytes(good))
    with pytest.raises(ValueError, match=f"read_idx: {p} must be a complete gzip file"):
        read_idx(p)


def test_load_mnist_labels_out_of_range(tmp_path):
    mnist_folder(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write(labels, idx_bytes(np.array([1, 12, 3], np.uint8)), gz=True)
    with pytest.raises(ValueError, match=f"labels in {labels} must be in \\[0, 9\\], got \\(1, 12\\)"):
        load_mnist(tmp_path, download=False)


@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (False, True)])
def test_load_mnist(tmp_path, gz, dotted):
    arrays = mnist_folder(tmp_path, gz=gz, dotted=dotted)
    ds = load_mnist(tmp_path, download=False)
    assert ds.x_train.shape == (5, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int32 and ds.x_test.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.class_names == tuple("0123456789")


def test_load_mnist_count_mismatch(tmp_path):
    mnist_folder(tmp_path, n_train=5, n_train_labels=4)
    with pytest.raises(ValueError, match="number of labels .* must be the number of images, 5"):
        load_mnist(tmp_path, download=False)


def test_load_mnist_missing_offline_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"not found in {tmp_path}.*Put the files there"):
        load_mnist(tmp_path, download=False)


def test_load_mnist_download_from_mirror(tmp_path, monkeypatch):
    src, dest = tmp_path / "mirror", tmp_path / "cache"
    src.mkdir()
    arrays = mnist_folder(src)
    files = {p.name: md5(p) for p in src.iterdir()}
    monkeypatch.setattr(images, "MNIST_FILES", files)
    monkeypatch.setattr(images, "MNIST_MIRRORS", ("file:///nonexistent/", src.as_uri() + "/"))
    ds = load_mnist(dest)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)


def test_load_mnist_offline_download_error(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MNIST_MIRRORS", ("http://mirror.invalid/",))

    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(FileNotFoundError, match="(?s)download failed.*no network.*Put the files"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="(?s)download failed.*no network.*Put the files"):
        fetch("x", {"f": "md5:" + "0" * 32}, ["http://mirror.invalid/"], tmp_path, opener=offline)


# ----------------------------------------------------------------------------- download


def test_download_verifies_and_falls_back(tmp_path):
    src = write(tmp_path / "src.bin", b"hello jaxcnn")
    good = "sha256:" + hashlib.sha256(b"hello jaxcnn").hexdigest()
    out = download(["file:///does/not/exist", src.as_uri()], tmp_path / "d" / "f.bin", good)
    assert out.read_bytes() == b"hello jaxcnn"
    assert file_checksum(out, "sha256") == good[7:]


def test_download_bad_checksum_leaves_nothing(tmp_path):
    src = write(tmp_path / "src.bin", b"tampered")
    with pytest.raises(OSError, match="md5 of .* must be 0+"):
        download(src.as_uri(), tmp_path / "d" / "f.bin", "md5:" + "0" * 32)
    assert list((tmp_path / "d").iterdir()) == []


def test_checksum_errors(tmp_path):
    p = write(tmp_path / "f", b"abc")
    verify_checksum(p, "md5:900150983cd24fb0d6963f7d28e17f72")
    with pytest.raises(ValueError, match="sha256 of .* must be"):
        verify_checksum(p, "sha256:" + "a" * 64)
    with pytest.raises(ValueError, match="'md5:<hex>' or 'sha256:<hex>'"):
        verify_checksum(p, "crc32:1234")
    with pytest.raises(ValueError, match="algorithm must be"):
        file_checksum(p, "sha1")


# ----------------------------------------------------------------------------- CIFAR-10


def cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def expected_hwc(rows):
    """Row layout of CIFAR: 1024 red, 1024 green, 1024 blue values, each row-major 32x32."""
    out = np.zeros((len(rows), 32, 32, 3), np.uint8)
    for n, row in enumerate(rows):
        for c in range(3):
            for h in range(32):
                out[n, h, :, c] = row[c * 1024 + h * 32: c * 1024 + h * 32 + 32]
    return out


def write_cifar_binary(folder, n=2):
    folder.mkdir(parents=True, exist_ok=True)
    parts = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        x, y = cifar_arrays(n, len(parts))
        write(folder / name, np.concatenate([y[:, None], x], 1).tobytes())
        parts[name] = (x, y)
    return parts


def write_cifar_python(folder, n=2, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    parts = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x, y = cifar_arrays(n, len(parts))
        ys = list(map(int, y)) if labels is None else labels
        (folder / name).write_bytes(pickle.dumps({b"data": x, b"labels": ys}, protocol=2))
        parts[name] = (x, y)
    return parts


def test_cifar_binary(tmp_path):
    parts = write_cifar_binary(tmp_path / "cifar-10-batches-bin")
    ds = load_cifar10(tmp_path, download=False)
    assert ds.x_train.shape == (10, 32, 32, 3) and ds.x_test.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(ds.x_train[:2], expected_hwc(parts["data_batch_1.bin"][0]))
    np.testing.assert_array_equal(ds.y_test, parts["test_batch.bin"][1])
    assert ds.class_names[0] == "airplane" and len(ds.class_names) == 10


def test_cifar_binary_truncated(tmp_path):
    write_cifar_binary(tmp_path)
    p = tmp_path / "test_batch.bin"
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(ValueError, match="multiple of 3073 bytes.*truncated"):
        load_cifar10(tmp_path, download=False)


def test_cifar_python_and_archive(tmp_path):
    parts = write_cifar_python(tmp_path / "src" / "cifar-10-batches-py")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    ds = load_cifar10(tmp_path, download=False)  # finds the archive and extracts it
    np.testing.assert_array_equal(ds.x_test, expected_hwc(parts["test_batch"][0]))
    np.testing.assert_array_equal(ds.y_train[2:4], parts["data_batch_2"][1])


def test_cifar_python_count_mismatch(tmp_path):
    write_cifar_python(tmp_path, n=2, labels=[1, 2, 3])
    with pytest.raises(ValueError, match="number of labels .* must be the number of images, 2"):
        load_cifar10(tmp_path, download=False)


def test_cifar_python_refuses_code(tmp_path):
    write_cifar_python(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": print}))
    with pytest.raises(ValueError, match="refusing to unpickle builtins.print"):
        load_cifar10(tmp_path, download=False)


@pytest.mark.parametrize("junk", [b"", b"\x80\x02}q\x00(", b"not a pickle at all"])
def test_cifar_python_truncated_or_junk(tmp_path, junk):
    write_cifar_python(tmp_path)
    p = tmp_path / "data_batch_3"
    p.write_bytes(junk or p.read_bytes()[:-100])  # b"": the real batch cut short
    with pytest.raises(ValueError, match=f"load_cifar10: {p} must be a CIFAR-10 python batch"):
        load_cifar10(tmp_path, download=False)


def test_cifar_archive_truncated(tmp_path):
    write_cifar_python(tmp_path / "src" / "cifar-10-batches-py", n=50)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{archive} must be a complete .tar.gz archive"):
        load_cifar10(tmp_path, download=False)


def test_cifar_missing_offline(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz not found"):
        load_cifar10(tmp_path, download=False)


# ----------------------------------------------------------------------------- image folders


def write_png(path, a):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def test_image_folder_train_test(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {}
    for split, n in (("train", 3), ("test", 2)):
        for c in ("cat", "dog"):
            for i in range(n):
                a = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
                write_png(tmp_path / split / c / f"{i}.png", a)
                imgs[(split, c, i)] = a
    ds = load_image_dataset("folder", tmp_path)
    assert ds.class_names == ("cat", "dog")
    assert ds.x_train.shape == (6, 4, 5, 3) and ds.x_test.shape == (4, 4, 5, 3)
    np.testing.assert_array_equal(ds.y_train, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(ds.x_test[2], imgs[("test", "dog", 0)])  # PNG is lossless


def test_image_folder_single_split_grayscale_and_resize(tmp_path):
    for c in ("a", "b"):
        for i in range(5):
            write_png(tmp_path / c / f"{i}.png", np.full((6, 6) if i else (8, 7), 10 * i, np.uint8))
    with pytest.raises(ValueError, match="image sizes .* must be all equal.*size="):
        load_image_folder(tmp_path)
    ds = load_image_folder(tmp_path, size=(6, 6), test_fraction=0.2)
    assert ds.x_train.shape == (8, 6, 6, 1) and ds.x_test.shape == (2, 6, 6, 1)
    assert sorted(ds.y_test) == [0, 1]


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="class folders .* must be at least one"):
        load_image_folder(tmp_path)
    write_png(tmp_path / "train" / "a" / "0.png", np.zeros((2, 2), np.uint8))
    write_png(tmp_path / "test" / "z" / "0.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="test classes must be among the train classes"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="root must be an existing folder"):
        load_image_folder(tmp_path / "nope")


def test_image_folder_unreadable_image_is_named(tmp_path):
    for i in range(3):
        write_png(tmp_path / "a" / f"{i}.png", np.zeros((4, 4), np.uint8))
        write_png(tmp_path / "b" / f"{i}.png", np.zeros((4, 4), np.uint8))
    bad = tmp_path / "b" / "1.png"
    bad.write_bytes(b"this is no PNG")
    with pytest.raises(ValueError, match=f"the image {bad} must be a readable image file"):
        load_image_folder(tmp_path)
    bad.write_bytes((tmp_path / "a" / "0.png").read_bytes()[:-30])  # cut inside the data
    with pytest.raises(ValueError, match=f"the image {bad} must be a readable image file"):
        load_image_folder(tmp_path)


def test_image_folder_empty_class_folder(tmp_path):
    write_png(tmp_path / "a" / "0.png", np.zeros((2, 2), np.uint8))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=f"images in {tmp_path}/b must be at least one file"):
        load_image_folder(tmp_path)


def test_image_folder_odd_size_is_named(tmp_path):
    for i in range(3):
        write_png(tmp_path / "train" / "a" / f"{i}.png", np.zeros((4, 4, 3), np.uint8))
        write_png(tmp_path / "test" / "a" / f"{i}.png", np.zeros((4, 4, 3), np.uint8))
    odd = tmp_path / "train" / "a" / "2.png"
    write_png(odd, np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=f"image sizes in .*train must be all equal, got "
                       f"'\\(4, 5\\) in {odd} but \\(4, 4\\) in .*0.png \\(1 of 3 differ"):
        load_image_folder(tmp_path)


def test_image_archive_broken_member_and_truncated_archive(tmp_path):
    src = tmp_path / "src"
    for i in range(4):
        write_png(src / "c" / f"{i}.png", np.full((3, 3), i, np.uint8))
        write_png(src / "d" / f"{i}.png", np.full((3, 3), i, np.uint8))
    (src / "d" / "3.png").write_bytes(b"\x89PNG broken")
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="imgs")
    with pytest.raises(ValueError, match=f"the image {archive}:imgs/d/3.png must be a readable"):
        load_image_folder(archive)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[:-60])
    with pytest.raises(ValueError, match=f"{cut} must be a (complete .tar/.tar.gz archive|folder)"):
        load_image_folder(cut)
    (tmp_path / "junk.tar").write_bytes(b"junk" * 100)
    with pytest.raises(ValueError, match="junk.tar must be a folder or a .tar/.tar.gz archive"):
        load_image_folder(tmp_path / "junk.tar")


# ----------------------------------------------------------------------------- npz, digits


def test_npz_medmnist_layout(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, train_images=rng.integers(0, 256, (6, 7, 7), dtype=np.uint8),
             train_labels=np.arange(6).reshape(6, 1) % 3, val_images=np.zeros((1, 7, 7)),
             val_labels=np.zeros((1, 1)), test_images=np.zeros((2, 7, 7, 3), np.uint8),
             test_labels=np.array([[0], [2]]))
    ds = load_npz(p)
    assert ds.x_train.shape == (6, 7, 7, 1) and ds.x_test.shape == (2, 7, 7, 3)
    np.testing.assert_array_equal(ds.y_train, [0, 1, 2, 0, 1, 2])
    assert ds.class_names == ("0", "1", "2")


def test_npz_errors(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, train_images=np.zeros((3, 4, 4)), train_labels=np.zeros(3))
    with pytest.raises(ValueError, match="MedMNIST layout.*Missing: \\['test_images'"):
        load_npz(p)
    np.savez(p, train_images=np.zeros((3, 4, 4)), train_labels=np.zeros(2),
             test_images=np.zeros((1, 4, 4)), test_labels=np.zeros(1))
    with pytest.raises(ValueError, match="number of labels \\(train_labels\\)"):
        load_npz(p)
    np.savez(p, train_images=np.zeros((3, 4)), train_labels=np.zeros(3),
             test_images=np.zeros((1, 4)), test_labels=np.zeros(1))
    with pytest.raises(ValueError, match="images' rank must be 3"):
        load_npz(p)
    with pytest.raises(ValueError, match="path must be the .npz file to read"):
        load_image_dataset("npz")


def _npz(path, **changes):
    arrays = dict(train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.array([0, 1, 1]),
                  test_images=np.zeros((1, 4, 4), np.uint8), test_labels=np.array([1]))
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("changes,match", [
    (dict(train_labels=np.array([0, "x", None], object)),
     "the array 'train_labels' in .*bad.npz must be a numeric array, got 'an object array"),
    (dict(test_images=np.array(["a"])), "the array 'test_images' in .* got 'dtype <U1'"),
    (dict(train_labels=np.array([0.0, 1.5, 1.0])),
     "train_labels in .*bad.npz must be whole numbers .*got '1.5 at index 1"),
    (dict(test_labels=np.array([-1])), "test_labels in .* must be non-negative class indices"),
])
def test_npz_object_arrays_and_bad_labels(tmp_path, changes, match):
    with pytest.raises(ValueError, match="load_npz: " + match):
        load_npz(_npz(tmp_path / "bad.npz", **changes))


def test_npz_truncated_or_not_an_npz(tmp_path):
    p = _npz(tmp_path / "bad.npz", train_images=np.zeros((50, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:3000])
    with pytest.raises(ValueError, match=f"load_npz: {p} must be a readable .npz file"):
        load_npz(p)
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match="one.npy must be an .npz archive of named arrays"):
        load_npz(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        load_npz(tmp_path / "missing.npz")


def test_digits_stratified():
    ds = load_digits()
    assert ds.x_train.shape == (1437, 8, 8, 1) and ds.x_test.shape == (360, 8, 8, 1)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    counts = np.bincount(ds.y_test)
    assert counts.min() >= 35 and counts.max() <= 37
    with pytest.raises(ValueError, match="load_digits: test_fraction must be in \\(0, 1\\)"):
        load_digits(test_fraction=0.0)


def test_stratified_split_proportions():
    y = np.repeat(np.arange(3), [50, 30, 20])
    tr, te = stratified_split(y, 0.2, seed=1)
    assert len(te) == 20 and len(tr) == 80 and not set(tr) & set(te)
    np.testing.assert_array_equal(np.bincount(y[te]), [10, 6, 4])
    with pytest.raises(ValueError, match="test_fraction must be in \\(0, 1\\)"):
        stratified_split(y, 1.0)
