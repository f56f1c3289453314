"""Streaming input for data sets larger than memory: an image folder, a memory-mapped ``.npz``.

``fit`` puts the whole training set on the device once. When the set does not fit, a
:class:`Stream` reads, decodes and augments examples on the host in parallel (threads, or
worker processes with ``workers=``) and puts batches on the device ahead of the step. It is
built on `grain <https://github.com/google/grain>`_ (``pip install jaxcnn[stream]``), which
does the parallel reading, the prefetching and the worker processes.

The data order is that of ``fit``: epoch ``e`` visits the examples in the permutation
``np.random.default_rng([seed, e]).permutation(n)`` and drops the final partial batch, so
every step has the same shape and each example is seen at most once per epoch. Host-side
augmentation of the example at global position ``g`` draws from
``np.random.default_rng([seed, 1, g])``. Batches are therefore a pure function of the seed,
whatever the number of threads or workers, and :meth:`StreamIterator.get_state` (a small
JSON-able dict: the number of batches handed out) resumes a stream exactly; store it in the
checkpoint's metadata.

A training loop with :func:`jaxcnn.train.make_train_step` (``fit`` takes arrays)::

    import jax, optax
    from jaxcnn.data import stream_image_folder
    from jaxcnn.train import Checkpoints, create_train_state, jit_train_step, make_train_step

    data = stream_image_folder("cifar10/train", batch_size=128, seed=0, scale=1 / 255)
    ts = create_train_state(model, optimizer, jax.random.key(0), data.element_shape)
    step, key = jit_train_step(make_train_step(model, optimizer)), jax.random.key(1)
    ckpts = Checkpoints("run/checkpoints")
    batches = data.iterator()
    if ckpts.latest_step() is not None:                 # resume exactly where the run stopped
        tree, meta = ckpts.restore({"train_state": ts})
        ts, batches = tree["train_state"], data.iterator(meta["data"])
    for s in range(int(ts.step), 10 * data.steps_per_epoch):
        ts, metrics = step(ts, next(batches), key)
        if (s + 1) % data.steps_per_epoch == 0:         # an epoch ends: checkpoint
            ckpts.save(s + 1, {"train_state": ts}, {"data": batches.get_state()})
"""

from __future__ import annotations

import collections
import functools
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from jaxcnn._checks import fail, is_int
from jaxcnn.data._dataset import check_labels, read_npz

_EXTRA = "Streaming needs grain: pip install 'jaxcnn[stream]' (or pip install grain)"


def _grain(where):
    try:
        import grain
    except ImportError:
        fail(where, "the grain package", "installed", "not installed", _EXTRA, exc=ImportError)
    return grain


class Stream:
    """Batches ``{"x": (batch_size, *element_shape), "y": (batch_size,) int32}`` read on
    demand from a random-access ``read(i) -> (x, y)``; see the module docstring.

    Built by :func:`stream_image_folder` and :func:`stream_npz` (or directly, from any
    ``read``). Iterating gives an endless (or ``epochs``-long) :class:`StreamIterator`.

    Attributes:
      num_examples: examples in the set; ``steps_per_epoch = num_examples // batch_size``.
      element_shape, class_names: one example's shape (for ``create_train_state``), the
        class names (label ``i`` is ``class_names[i]``).
    """

    def __init__(self, read: Callable, num_examples: int, element_shape, *, batch_size: int,
                 seed: int = 0, epochs: int | None = None, augment: Callable | None = None,
                 threads: int = 8, workers: int = 0, prefetch: int = 2, class_names=(),
                 where: str = "Stream"):
        _grain(where)
        for name, value, low in (("batch_size", batch_size, 1), ("seed", seed, 0),
                                 ("threads", threads, 1), ("workers", workers, 0),
                                 ("prefetch", prefetch, 0)):
            if not is_int(value) or value < low:
                fail(where, name, f"an int >= {low}", value)
        if epochs is not None and (not is_int(epochs) or epochs < 1):
            fail(where, "epochs", "None (endless) or an int >= 1", epochs)
        if num_examples < batch_size:
            fail(where, "batch_size", f"at most the number of examples ({num_examples})",
                 batch_size, "An epoch drops its final partial batch, so it would be empty")
        self.read, self.num_examples = read, int(num_examples)
        self.element_shape, self.class_names = tuple(element_shape), tuple(class_names)
        self.batch_size, self.seed, self.epochs, self.augment = batch_size, seed, epochs, augment
        self.threads, self.workers, self.prefetch, self.where = threads, workers, prefetch, where
        self.steps_per_epoch = self.num_examples // batch_size

    def __iter__(self):
        return self.iterator()

    def iterator(self, state: dict | None = None, *, device: bool = True) -> "StreamIterator":
        """An iterator over the batches, from the start or from ``state`` (a
        :meth:`StreamIterator.get_state`). ``device=False`` yields numpy batches."""
        it = StreamIterator(self, device)
        if state is not None:
            it.set_state(state)
        return it

    def example(self, g):
        """The example at global position ``g`` (epoch ``g // (steps_per_epoch *
        batch_size)``), augmented: ``{"x": ..., "y": ...}``."""
        used = self.steps_per_epoch * self.batch_size
        epoch, i = divmod(int(g), used)
        x, y = self.read(int(_permutation(self.seed, epoch, self.num_examples)[i]))
        if self.augment is not None:
            x = self.augment(x, np.random.default_rng([self.seed, 1, int(g)]))
        return {"x": np.asarray(x), "y": np.int32(y)}

    def batches(self, start: int = 0):
        """grain's ``IterDataset`` of numpy batches from batch number ``start`` on."""
        grain = _grain(self.where)
        ds = grain.MapDataset.range(self.steps_per_epoch * self.batch_size).repeat(self.epochs)
        ds = ds.map_with_index(lambda g, _: self.example(g))
        ds = ds.batch(self.batch_size, drop_remainder=True)[start:]
        ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self.threads,
                                                  prefetch_buffer_size=2 * self.threads))
        if self.workers:
            _absl_flags_parsed()
            ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.workers))
        return ds

    def _identity(self):
        return {"seed": self.seed, "batch_size": self.batch_size,
                "num_examples": self.num_examples}


def _absl_flags_parsed():
    """grain's worker processes read its absl flags, which raise ``UnparsedFlagAccessError``
    in a program that never parsed them (google/grain#1355, fixed after grain 0.2.18):
    mark them parsed, at their defaults, when nothing has parsed them."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@functools.lru_cache(maxsize=4)
def _permutation(seed, epoch, n):
    """Epoch ``epoch``'s order (``fit``'s), computed once per process."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class StreamIterator:
    """Batches of a :class:`Stream` in order, ``prefetch`` of them already on the device.

    ``get_state()`` is ``{"batch": n, "seed", "batch_size", "num_examples"}`` where ``n``
    counts the batches handed out; ``set_state`` continues from there exactly (the count
    is of batches returned by ``next``, not of those read ahead). ``epoch`` and
    ``step_in_epoch`` say where the next batch lies.
    """

    def __init__(self, stream: Stream, device: bool):
        self.stream, self.device = stream, device
        self._start(0)

    def _start(self, position):
        self.position = position
        self._source = iter(self.stream.batches(position))
        self._ahead = collections.deque()

    @property
    def epoch(self):
        return self.position // self.stream.steps_per_epoch

    @property
    def step_in_epoch(self):
        return self.position % self.stream.steps_per_epoch

    def __iter__(self):
        return self

    def __next__(self):
        import jax

        while len(self._ahead) <= (self.stream.prefetch if self.device else 0):
            try:
                batch = next(self._source)
            except StopIteration:
                break
            self._ahead.append(jax.device_put(batch) if self.device else batch)
        if not self._ahead:
            raise StopIteration
        self.position += 1
        return self._ahead.popleft()

    def get_state(self) -> dict:
        return {"batch": self.position, **self.stream._identity()}

    def set_state(self, state: dict):
        where = f"{self.stream.where}: set_state"
        if not isinstance(state, dict) or not is_int(state.get("batch")):
            fail(where, "state", "a dict from get_state() with an int 'batch'", state,
                 exc=TypeError)
        for name, value in self.stream._identity().items():
            if state.get(name) != value:
                fail(where, f"state[{name!r}]", f"{value!r} as in this stream",
                     state.get(name), "A stream resumes only with the seed, batch size and "
                     "data it was saved with")
        self._start(state["batch"])


# ---------------------------------------------------------------------------- image folders

def _read_image(where, path, mode, size):
    """An image file as ``uint8 (H, W, C)`` in PIL ``mode`` (``"L"`` or ``"RGB"``), resized
    to ``size``; a file PIL cannot read completely is an error naming it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, np.uint8)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
            Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        fail(where, f"the image {path}", "a readable image file",
             f"unreadable ({type(e).__name__}: {e})", "The file is truncated or corrupt")
    return a[..., None] if a.ndim == 2 else a


def _image_files(root: Path, where):
    from jaxcnn.data.images import IMAGE_EXTENSIONS

    classes = sorted(c.name for c in root.iterdir() if c.is_dir())
    files, labels = [], []
    for i, c in enumerate(classes):
        found = sorted(p for p in (root / c).iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        files += found
        labels += [i] * len(found)
    if not files:
        fail(where, f"the images in {root}", "at least one file with extension "
             + "/".join(IMAGE_EXTENSIONS) + " in a class folder", "none",
             "Expected <folder>/<class name>/<image>")
    return classes, files, np.asarray(labels, np.int32)


def stream_image_folder(path, *, batch_size: int, seed: int = 0, size=None, scale=None,
                        augment=None, epochs=None, threads: int = 8, workers: int = 0,
                        prefetch: int = 2) -> Stream:
    """A :class:`Stream` of the images in ``path/<class>/*`` (e.g. ``cifar10/train``).

    Classes are the sorted folder names; images are decoded on demand (grayscale if the
    first image is, colour otherwise) and must all have one size unless ``size=(H, W)``
    resizes them (bilinear). ``x`` is ``uint8``, or ``float32`` times ``scale`` when given
    (``scale=1 / 255``).

    Args:
      path: the folder.
      batch_size, seed, epochs: batches per step, the data order's seed, ``None`` for an
        endless stream.
      size, scale: see above.
      augment: ``augment(x, rng) -> x`` on one decoded example (a numpy ``Generator``).
      threads, workers, prefetch: reading threads (per process), worker processes
        (``0``: read in this process) and batches kept ready on the device.

    Example:
      >>> import pathlib, tempfile, numpy as np
      >>> from PIL import Image
      >>> from jaxcnn.data import stream_image_folder
      >>> with tempfile.TemporaryDirectory() as d:
      ...     for i in range(6):
      ...         folder = pathlib.Path(d, "cat" if i % 2 else "dog")
      ...         folder.mkdir(exist_ok=True)
      ...         Image.fromarray(np.full((5, 6, 3), i, np.uint8)).save(folder / f"{i}.png")
      ...     data = stream_image_folder(d, batch_size=4, seed=0, epochs=1)
      ...     batches = [(b["x"].shape, b["y"].dtype.name) for b in data]
      >>> batches, data.class_names
      ([((4, 5, 6, 3), 'int32')], ('cat', 'dog'))
    """
    where = "stream_image_folder"
    root = Path(path)
    if not root.is_dir():
        fail(where, "path", "an existing folder of class folders", str(path),
             "Extract an archive first (tar xzf data.tar.gz)" if root.is_file() else "")
    if size is not None:
        size = tuple(size)
        if len(size) != 2 or not all(is_int(s) and s > 0 for s in size):
            fail(where, "size", "None or (height, width), positive ints", size)
    classes, files, labels = _image_files(root, where)
    from PIL import Image

    try:
        with Image.open(files[0]) as im:
            mode = "L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB"
    except OSError:
        mode = "RGB"  # _read_image names the file
    shape = _read_image(where, files[0], mode, size).shape
    read = _ImageReader(where, [str(p) for p in files], labels, mode, size, shape, scale)
    return Stream(read, len(files), shape, batch_size=batch_size, seed=seed, epochs=epochs,
                  augment=augment, threads=threads, workers=workers, prefetch=prefetch,
                  class_names=classes, where=where)


class _ImageReader(NamedTuple):
    """``read(i) -> (image, label)`` of an image folder (a picklable value, for workers)."""

    where: str
    files: list
    labels: np.ndarray
    mode: str
    size: tuple | None
    shape: tuple
    scale: float | None

    def __call__(self, i):
        x = _read_image(self.where, self.files[i], self.mode, self.size)
        if x.shape != self.shape:
            fail(self.where, f"the size of the image {self.files[i]}",
                 f"{self.shape} as the first image's", x.shape,
                 "Pass size=(height, width) to resize them")
        return (x if self.scale is None else x.astype(np.float32) * np.float32(self.scale),
                self.labels[i])


# ------------------------------------------------------------------------------- npz files

def npz_memmap(path, name: str, where: str = "npz_memmap") -> np.memmap:
    """The array ``name`` of an uncompressed ``.npz`` (``np.savez``), memory-mapped read-only:
    nothing is read until it is indexed. (``np.load(..., mmap_mode="r")`` maps ``.npy``
    files only.)

    Example:
      >>> import pathlib, tempfile, numpy as np
      >>> from jaxcnn.data.streaming import npz_memmap
      >>> with tempfile.TemporaryDirectory() as d:
      ...     np.savez(pathlib.Path(d, "a.npz"), x=np.arange(6).reshape(2, 3))
      ...     row = npz_memmap(pathlib.Path(d, "a.npz"), "x")[1].tolist()
      >>> row
      [3, 4, 5]
    """
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(name + ".npy")
    except KeyError:
        with zipfile.ZipFile(path) as z:
            names = sorted(n[:-4] for n in z.namelist() if n.endswith(".npy"))
        fail(where, f"the arrays in {path}", f"to include {name!r}", names)
    except (zipfile.BadZipFile, OSError) as e:
        fail(where, str(path), "a complete .npz file", f"unreadable ({e})")
    if info.compress_type != zipfile.ZIP_STORED:
        fail(where, f"{name!r} in {path}", "stored uncompressed to be memory-mapped",
             "compressed", "Save with np.savez (not np.savez_compressed), or pass mmap=False")
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        fmt = np.lib.format
        header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = header(f)
        offset = f.tell()
    if dtype.hasobject:
        fail(where, f"{name!r} in {path}", "an array of numbers", f"dtype {dtype}")
    return np.memmap(path, dtype, "r", offset, shape, "F" if fortran else "C")


def stream_npz(path, *, batch_size: int, seed: int = 0, images: str = "train_images",
               labels: str = "train_labels", spatial_rank: int = 2, mmap: bool = True,
               scale=None, augment=None, epochs=None, threads: int = 8, workers: int = 0,
               prefetch: int = 2) -> Stream:
    """A :class:`Stream` of the arrays ``images`` ``(N, *spatial[, C])`` and ``labels``
    ``(N,)`` or ``(N, 1)`` of an ``.npz`` (by default the MedMNIST names of
    :func:`jaxcnn.data.load_npz`); images of rank ``1 + spatial_rank`` get a channel axis.

    ``mmap=True`` memory-maps the images (an uncompressed ``.npz`` written by ``np.savez``:
    only the examples read are paged in, in each worker process); ``mmap=False`` reads
    them into memory. Other arguments as in :func:`stream_image_folder`.

    Example:
      >>> import pathlib, tempfile, numpy as np
      >>> from jaxcnn.data import stream_npz
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = pathlib.Path(d, "tiny.npz")
      ...     np.savez(p, train_images=np.zeros((10, 28, 28), np.uint8),
      ...              train_labels=np.arange(10) % 3)
      ...     data = stream_npz(p, batch_size=4, seed=0, epochs=1)
      ...     shapes = [b["x"].shape for b in data]
      >>> shapes, data.steps_per_epoch, data.class_names
      ([(4, 28, 28, 1), (4, 28, 28, 1)], 2, ('0', '1', '2'))
    """
    where = "stream_npz"
    if spatial_rank not in (1, 2, 3):
        fail(where, "spatial_rank", "1, 2 or 3", spatial_rank)
    if mmap:
        x = npz_memmap(path, images, where)
        y = np.asarray(npz_memmap(path, labels, where))
    else:
        arrays = read_npz(where, path, (images, labels))
        x, y = arrays[images], arrays[labels]
    if x.ndim not in (1 + spatial_rank, 2 + spatial_rank):
        fail(where, f"the rank of {images!r}", f"{1 + spatial_rank} (N, *spatial) or "
             f"{2 + spatial_rank} (N, *spatial, C)", x.ndim)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        fail(where, f"the shape of {labels!r}", f"(N,) or (N, 1) with N = {len(x)} images",
             y.shape)
    y = check_labels(where, y, f"{labels} in {path}")
    source = (str(path), images) if mmap else x
    read = _ArrayReader(source, y, x.ndim == 1 + spatial_rank, scale)
    names = tuple(str(i) for i in range(int(y.max(initial=0)) + 1))
    return Stream(read, len(x), read(0)[0].shape, batch_size=batch_size, seed=seed,
                  epochs=epochs, augment=augment, threads=threads, workers=workers,
                  prefetch=prefetch, class_names=names, where=where)


@functools.lru_cache(maxsize=8)
def _mapped(path, name):
    """A memory map per process (pickling a ``np.memmap`` would copy the whole array)."""
    return npz_memmap(path, name, "stream_npz")


class _ArrayReader(NamedTuple):
    """``read(i) -> (image, label)``; ``source`` is an array or ``(npz path, name)`` of a
    memory-mapped one (a picklable value, for workers)."""

    source: object
    y: np.ndarray
    add_channel: bool
    scale: float | None

    def __call__(self, i):
        x = np.array((_mapped(*self.source) if isinstance(self.source, tuple)
                      else self.source)[i])
        if self.add_channel:
            x = x[..., None]
        return (x if self.scale is None else x.astype(np.float32) * np.float32(self.scale),
                self.y[i])
