"""Image classification data in its standard on-disk formats, as numpy arrays.

Every loader returns a :class:`~jaxcnn.data.Dataset` (``x`` is ``(N, H, W, C)``
``uint8``, ``y`` is ``int32``) and checks what it reads: a wrong magic number, a
truncated or corrupt file (gzip, tar, zip, image), image and label counts that disagree,
labels out of range, an unreadable or odd-sized image, or an ``.npz`` with missing keys or
object arrays raise a ``ValueError`` that names the file (and the key or member); a
dataset is never returned with parts silently left out. MNIST and CIFAR-10 are downloaded
from their canonical mirrors (with the publishers' md5 checksums) when absent; offline,
the error says where to put the files.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
import tarfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from jaxcnn._checks import check_bool, check_choice, fail
from jaxcnn.data._dataset import Dataset, check_labels, check_pair, read_npz, stratified_split
from jaxcnn.data._download import cache_dir, fetch

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
MNIST_FILES = {  # md5 of the published gzip files (as torchvision checks them)
    "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
}
CIFAR10_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_FILES = {"cifar-10-python.tar.gz": "md5:c58f30108f718f92721af3b95e74349a"}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff",
                    ".webp")

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:  # BadGzipFile is an OSError
            fail("read_idx", f"{path}", "a complete gzip file", f"a broken one ({e})",
                 "The file is truncated or corrupt: download it again")
    return raw


def read_idx(path) -> np.ndarray:
    """Reads an IDX file (the MNIST format), gzipped or not.

    The header is two zero bytes, a type code (``0x08`` = ``uint8``, ...), the number of
    dimensions and each size as a big-endian ``uint32``; the data follows, row-major.

    Example:
      >>> import pathlib, tempfile
      >>> from jaxcnn.data import read_idx
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = pathlib.Path(d, "x-idx1-ubyte")
      ...     _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
      ...     read_idx(p)
      array([7, 8, 9], dtype=uint8)
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        fail("read_idx", f"the magic number of {path}",
             "0x0000 then a type code in " + ", ".join(f"0x{t:02X}" for t in _IDX_DTYPES),
             raw[:4].hex(), "This is not an IDX file (e.g. MNIST's train-images-idx3-ubyte)")
    ndim, header = raw[3], 4 + 4 * raw[3]
    if len(raw) < header:
        fail("read_idx", f"the header of {path}", f"{header} bytes", len(raw),
             "The file is truncated")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        fail("read_idx", f"the size of {path}", f"{expected} bytes for shape {dims}", len(raw),
             "The file is truncated or corrupt" if len(raw) < expected else "Trailing bytes")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _find(folder: Path, name: str):
    """``name`` in ``folder``, gzipped or not, also in the ``train-images.idx3-ubyte`` spelling."""
    stem = name[:-3]
    dotted = stem.replace("-idx", ".idx")
    for candidate in (name, stem, dotted, dotted + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def load_mnist(data_dir=None, *, download: bool = True) -> Dataset:
    """MNIST (60,000 train / 10,000 test, 28x28x1 ``uint8``) from its original IDX files.

    Reads ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte`` (each gzipped or not) from ``data_dir``; files that are
    missing are downloaded there (default folder: ``cache_dir("mnist")``) and verified.
    Fashion-MNIST, which uses the same file names, loads the same way from its folder.

    .. code-block:: python

       ds = load_mnist("../shared/data/mnist")  # ds.x_train: (60000, 28, 28, 1) uint8
    """
    download = check_bool("load_mnist", "download", download)
    folder = Path(data_dir) if data_dir is not None else cache_dir("mnist")
    paths = {name: _find(folder, name) for name in MNIST_FILES}
    if any(p is None for p in paths.values()):
        fetch("mnist", {n: c for n, c in MNIST_FILES.items() if paths[n] is None}, MNIST_MIRRORS,
              folder, download_missing=download)
        paths = {name: _find(folder, name) for name in MNIST_FILES}
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
        y = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"])
        if x.ndim != 3 or y.ndim != 1:
            fail("load_mnist", f"the {split} arrays' ranks", "3 (images) and 1 (labels)",
                 (x.ndim, y.ndim), "Are the image and label files swapped?")
        check_pair("load_mnist", x, y, f"{split} split")
        labels = paths[f"{prefix}-labels-idx1-ubyte.gz"]
        if y.size and (y.min() < 0 or y.max() > 9):
            fail("load_mnist", f"the labels in {labels}", "in [0, 9]",
                 (int(y.min()), int(y.max())), "Is this the labels file?")
        arrays[split] = (x[..., None].astype(np.uint8), y.astype(np.int32))
    return Dataset(*arrays["train"], *arrays["test"], tuple(str(i) for i in range(10)))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays, lists and dicts: a CIFAR batch can run no code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy", "dtype"),
               ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch: refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _cifar_pickle(path):
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, OverflowError, MemoryError, struct.error) as e:  # what junk raises
        fail("load_cifar10", f"{path}", "a CIFAR-10 python batch", f"unreadable ({e})",
             "The file is truncated or corrupt")
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        fail("load_cifar10", f"{path}", "a dict with b'data' and b'labels'",
             sorted(map(repr, d))[:8] if isinstance(d, dict) else type(d).__name__)
    try:
        x, y = np.asarray(d[b"data"], np.uint8), np.asarray(d[b"labels"], np.int32)
    except (ValueError, TypeError, OverflowError) as e:
        fail("load_cifar10", f"the data and labels of {path}", "uint8 pixels and int labels",
             f"something else ({e})")
    if x.ndim != 2 or x.shape[1] != 3072:
        fail("load_cifar10", f"the data of {path}", "(N, 3072) (3x32x32 per row)", x.shape)
    check_pair("load_cifar10", x, y, str(path))
    return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y


def _cifar_binary(path):
    raw = np.fromfile(path, np.uint8)
    if raw.size == 0 or raw.size % 3073:
        fail("load_cifar10", f"the size of {path}", "a multiple of 3073 bytes (label + 3x32x32)",
             raw.size, "The file is truncated or not a CIFAR-10 binary batch")
    rows = raw.reshape(-1, 3073)
    return rows[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), rows[:, 0].astype(np.int32)


def _concat(parts):
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _cifar_layout(root: Path):
    """("py" | "bin" | "folder", folder) for the first CIFAR-10 layout found under ``root``."""
    for sub in (root / "cifar-10-batches-py", root):
        if (sub / "data_batch_1").is_file() and (sub / "test_batch").is_file():
            return "py", sub
    for sub in (root / "cifar-10-batches-bin", root):
        if (sub / "data_batch_1.bin").is_file() and (sub / "test_batch.bin").is_file():
            return "bin", sub
    if (root / "train").is_dir() and (root / "test").is_dir():
        return "folder", root
    return None, root


_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


def _extract(archive: Path, dest: Path):
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # pragma: no cover  (Python < 3.11.4)
                tar.extractall(dest)
    except _ARCHIVE_ERRORS as e:
        fail("load_cifar10", str(archive), "a complete .tar.gz archive", f"a broken one ({e})",
             "The file is truncated or corrupt: delete it and download it again")


def load_cifar10(data_dir=None, *, download: bool = True) -> Dataset:
    """CIFAR-10 (50,000 / 10,000, 32x32x3 ``uint8``) from any of its usual layouts.

    ``data_dir`` may hold the official python batches (``cifar-10-batches-py/``), the
    binary batches (``cifar-10-batches-bin/``), an image folder
    (``train/<class>/*.png``, ``test/<class>/...``), a ``.tar.gz`` of such a folder (read
    without extracting it: ``load_cifar10("cifar10-jpeg.tar.gz")``) or the
    ``cifar-10-python.tar.gz`` archive (extracted beside it). When none is there the archive is
    downloaded (default folder: ``cache_dir("cifar10")``) and its md5 verified. Python batches are
    unpickled with a loader that accepts numpy arrays only.

    .. code-block:: python

       ds = load_cifar10("/tmp/cifar10")  # ds.x_train: (50000, 32, 32, 3) uint8
    """
    download = check_bool("load_cifar10", "download", download)
    root = Path(data_dir) if data_dir is not None else cache_dir("cifar10")
    if root.is_file():
        return load_image_folder(root)
    kind, folder = _cifar_layout(root)
    if kind is None:
        fetch("cifar10", CIFAR10_FILES, CIFAR10_MIRRORS, root, download_missing=download)
        _extract(root / "cifar-10-python.tar.gz", root)
        kind, folder = _cifar_layout(root)
        if kind is None:
            fail("load_cifar10", f"the contents of {root / 'cifar-10-python.tar.gz'}",
                 "cifar-10-batches-py/", "something else", "Delete the archive and try again")
    if kind == "folder":
        return load_image_folder(folder)
    read, ext = (_cifar_pickle, "") if kind == "py" else (_cifar_binary, ".bin")
    train = _concat([read(folder / f"data_batch_{i}{ext}") for i in range(1, 6)])
    test = read(folder / f"test_batch{ext}")
    for y in (train[1], test[1]):
        if y.size and (y.min() < 0 or y.max() > 9):
            fail("load_cifar10", "labels", "in [0, 9]", (int(y.min()), int(y.max())),
                 "Is this CIFAR-100? Only CIFAR-10 is supported")
    return Dataset(*train, *test, CIFAR10_CLASSES)


def _image_files(folder: Path):
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _decode(name, source, size):
    """An image file (a path or a file object) as ``uint8`` ``(H, W, C)``, C = 1 or 3; a
    file PIL cannot read completely is an error naming it (``name``)."""
    from PIL import Image

    try:
        with Image.open(source) as im:
            im = im.convert("L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
            Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        fail("load_image_folder", f"the image {name}", "a readable image file",
             f"unreadable ({type(e).__name__}: {e})", "The file is truncated or corrupt")
    return a[..., None] if a.ndim == 2 else a


def _folder_tree(root: Path):
    """``{split: {class: [(name, path), ...]}}`` of an image folder; split ``""`` when the
    folder has no ``train``/``test`` sub-folders."""
    splits = ("train", "test") if (root / "train").is_dir() and (root / "test").is_dir() else ("",)
    return {sp: {c.name: [(str(p), p) for p in _image_files(c)]
                 for c in sorted((root / sp).iterdir()) if c.is_dir()} for sp in splits}


def _archive_tree(path: Path):
    """``{split: {class: [(name, file object), ...]}}`` of an image archive (``.tar``,
    ``.tar.gz``) laid out like an image folder, read into memory without extracting it.
    One top-level folder common to every image (``cifar10/train/cat/1.jpg``) is skipped."""
    try:
        with tarfile.open(path) as tar:
            files = [(m.name, tar.extractfile(m).read()) for m in tar
                     if m.isfile() and Path(m.name).suffix.lower() in IMAGE_EXTENSIONS]
    except _ARCHIVE_ERRORS as e:
        fail("load_image_folder", str(path), "a complete .tar/.tar.gz archive",
             f"a broken one ({e})", "The file is truncated or corrupt")
    parts = [Path(name).parts for name, _ in files]
    while parts and len(parts[0]) > 2 and parts[0][0] not in ("train", "test") and all(
            len(q) > 2 and q[0] == parts[0][0] for q in parts):
        parts = [q[1:] for q in parts]
    depths = {len(q) for q in parts}
    if len(depths) != 1 or depths - {2, 3} or (depths == {3} and {q[0] for q in parts} - {
            "train", "test"}):
        fail("load_image_folder", f"the layout of {path}", "<class>/<image> or "
             "train|test/<class>/<image> inside the archive",
             sorted({"/".join(q[:-1]) for q in parts})[:4] or "no images")
    if depths == {3} and {q[0] for q in parts} != {"train", "test"}:
        fail("load_image_folder", f"the splits in {path}", "both train/ and test/",
             sorted({q[0] for q in parts}))
    tree = {}
    for q, (name, data) in sorted(zip(parts, files), key=lambda t: t[0]):
        split, cls = (q[0], q[1]) if len(q) == 3 else ("", q[0])
        tree.setdefault(split, {}).setdefault(cls, []).append((f"{path}:{name}",
                                                               io.BytesIO(data)))
    return tree


def _read_split(where, tree, classes, size, every_class=False):
    """Images and labels of one split; ``every_class``: each class folder must hold an
    image (the training split: an empty class folder is a mistake, not a class)."""
    files, labels = [], []
    for i, c in enumerate(classes):
        found = tree.get(c, [])
        files += found
        labels += [i] * len(found)
    empty = [c for c in classes if not tree.get(c)] if every_class else []
    if not files or empty:
        fail("load_image_folder", f"the images in {where}" + (f"/{empty[0]}" if empty else ""),
             "at least one file with extension " + "/".join(IMAGE_EXTENSIONS), "none",
             "Expected <folder>/<class name>/<image>")
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        images = list(pool.map(lambda f: _decode(*f, size), files))
    odd = [i for i, a in enumerate(images) if a.shape[:2] != images[0].shape[:2]]
    if odd:
        i = odd[0]
        fail("load_image_folder", f"the image sizes in {where}", "all equal",
             f"{images[i].shape[:2]} in {files[i][0]} but {images[0].shape[:2]} in "
             f"{files[0][0]} ({len(odd)} of {len(images)} differ from the first)",
             "Pass size=(height, width) to resize them")
    if len({a.shape[-1] for a in images}) > 1:  # some grayscale, some colour: all colour
        images = [np.repeat(a, 3, -1) if a.shape[-1] == 1 else a for a in images]
    return np.stack(images), np.asarray(labels, np.int32)


def load_image_folder(root, *, size=None, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Images in class folders: ``root/train/<class>/*`` and ``root/test/<class>/*``.

    Without ``train``/``test`` sub-folders, ``root/<class>/*`` is split into train and
    test by :func:`stratified_split` (``test_fraction``, ``seed``). ``root`` may also be
    a ``.tar``/``.tar.gz`` archive of such a folder, read without extracting it. Classes
    are the sorted folder names of the training set. Grayscale images give ``C = 1``,
    colour (and mixed) ones ``C = 3``; ``size=(H, W)`` resizes (bilinear), otherwise all
    images must have the same size.

    Example:
      >>> import pathlib, tempfile, numpy as np
      >>> from PIL import Image
      >>> from jaxcnn.data import load_image_folder
      >>> with tempfile.TemporaryDirectory() as d:
      ...     for i in range(10):
      ...         folder = pathlib.Path(d, "cat" if i % 2 else "dog")
      ...         folder.mkdir(exist_ok=True)
      ...         Image.fromarray(np.full((5, 6, 3), i, np.uint8)).save(folder / f"{i}.png")
      ...     ds = load_image_folder(d)
      >>> ds.x_train.shape, ds.x_test.shape, ds.class_names
      ((8, 5, 6, 3), (2, 5, 6, 3), ('cat', 'dog'))
    """
    root = Path(root)
    if root.is_file():
        if not tarfile.is_tarfile(root):
            fail("load_image_folder", str(root), "a folder or a .tar/.tar.gz archive",
                 "a file that tarfile cannot read", "The archive is truncated or corrupt")
        tree = _archive_tree(root)
    elif root.is_dir():
        tree = _folder_tree(root)
    else:
        fail("load_image_folder", "root", "an existing folder or .tar/.tar.gz archive", str(root))
    split = "train" in tree
    train_tree = tree["train" if split else ""]
    classes = tuple(sorted(train_tree))
    if not classes:
        fail("load_image_folder", f"the class folders in {root / ('train' if split else '')}",
             "at least one", "none",
             "Expected <root>/<class name>/<image> or <root>/train/<class name>/<image>")
    if split:
        extra = sorted(set(tree["test"]) - set(classes))
        if extra:
            fail("load_image_folder", "the test classes", f"among the train classes {classes}",
                 extra)
        x_train, y_train = _read_split(root / "train", train_tree, classes, size, True)
        x_test, y_test = _read_split(root / "test", tree["test"], classes, size)
    else:
        x, y = _read_split(root, train_tree, classes, size, True)
        tr, te = stratified_split(y, test_fraction, seed)
        x_train, y_train, x_test, y_test = x[tr], y[tr], x[te], y[te]
    if x_train.shape[1:] != x_test.shape[1:]:
        fail("load_image_folder", "the test image shape", f"the train shape {x_train.shape[1:]}",
             x_test.shape[1:], "Pass size=(height, width) to resize them")
    return Dataset(x_train, y_train, x_test, y_test, classes)


def _npz_images(where, a, spatial_rank):
    if a.ndim == 1 + spatial_rank:
        return a[..., None]
    if a.ndim != 2 + spatial_rank:
        fail(where, "the images' rank", f"{1 + spatial_rank} (N, *spatial) or "
             f"{2 + spatial_rank} (N, *spatial, C)", a.ndim)
    return a


def load_npz(path, *, spatial_rank: int = 2) -> Dataset:
    """An ``.npz`` with ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.

    This is the MedMNIST layout (labels ``(N, 1)`` are flattened; a ``val`` split, if
    present, is left out). Images without a channel axis get one.

    Example:
      >>> import pathlib, tempfile, numpy as np
      >>> from jaxcnn.data import load_npz
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = pathlib.Path(d, "tiny.npz")
      ...     np.savez(p, train_images=np.zeros((4, 28, 28), np.uint8),
      ...              train_labels=np.zeros((4, 1)), test_images=np.zeros((2, 28, 28), np.uint8),
      ...              test_labels=np.ones((2, 1)))
      ...     ds = load_npz(p)
      >>> ds.x_train.shape, ds.y_test.tolist(), ds.class_names
      ((4, 28, 28, 1), [1, 1], ('0', '1'))
    """
    where = "load_npz"
    check_choice(where, "spatial_rank", spatial_rank, (1, 2, 3))
    arrays = read_npz(where, path, ("train_images", "train_labels", "test_images", "test_labels"),
                      layout="the MedMNIST layout")
    out = []
    for split in ("train", "test"):
        x = _npz_images(where, arrays[f"{split}_images"], spatial_rank)
        y = arrays[f"{split}_labels"]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            fail(where, f"{split}_labels", "(N,) or (N, 1) integer class labels", y.shape,
                 "Multi-label sets are not supported")
        check_pair(where, x, y, f"{split}_labels")
        out += [x, check_labels(where, y, f"{split}_labels in {path}")]
    n = int(max(out[1].max(initial=0), out[3].max(initial=0))) + 1
    return Dataset(*out, tuple(str(i) for i in range(n)))


def load_digits(*, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), split stratified ``80/20`` by default.

    The split is scikit-learn's ``train_test_split(test_size=test_fraction, stratify=y,
    random_state=seed)``, so results compare with the usual baselines: on the default split
    ``SVC(gamma=0.001)`` scores 98.89%. Offline: the data ships with scikit-learn. ``x``
    is ``float32`` in ``[0, 1]`` (the raw values ``0..16`` divided by 16), ``(N, 8, 8, 1)``.

    Example:
      >>> from jaxcnn.data import load_digits
      >>> ds = load_digits()
      >>> ds.x_train.shape, ds.x_test.shape
      ((1437, 8, 8, 1), (360, 8, 8, 1))
    """
    if not 0.0 < test_fraction < 1.0:
        fail("load_digits", "test_fraction", "in (0, 1)", test_fraction)
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed)
    return Dataset(x_train, y_train, x_test, y_test, tuple(str(i) for i in range(10)))


LOADERS = {"digits": load_digits, "mnist": load_mnist, "cifar10": load_cifar10,
           "folder": load_image_folder, "npz": load_npz}


def load_image_dataset(name: str, path=None, **kwargs) -> Dataset:
    """Loads a dataset by name: ``"digits"``, ``"mnist"``, ``"cifar10"`` (``path`` = data
    folder, optional), ``"folder"`` (``path`` = image folder) or ``"npz"`` (``path`` = file).

    Example:
      >>> from jaxcnn.data import load_image_dataset
      >>> load_image_dataset("digits").x_test.shape
      (360, 8, 8, 1)
    """
    check_choice("load_image_dataset", "name", name, tuple(LOADERS))
    if name == "digits":
        return load_digits(**kwargs)
    if name in ("folder", "npz") and path is None:
        what = "the image folder" if name == "folder" else "the .npz file"
        fail("load_image_dataset", "path", f"{what} to read for dataset {name!r}", None,
             "Pass it as path= (in the experiments: --data-dir or --data)")
    return LOADERS[name](path, **kwargs)
