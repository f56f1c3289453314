"""Segmentation data: images with per-pixel (per-voxel) integer masks.

* :func:`make_shapes2d` / :func:`make_shapes3d`: procedural scenes, a pure function of the
  seed (overlapping shapes of several classes, each with its own texture, on a shaded
  background, with noise);
* :func:`make_digit_canvases` / :func:`load_mnist_seg`: canvases composed from real MNIST
  digits (background + 10 digit classes);
* :func:`load_segmentation_npz`: a user's own ``images`` and ``masks`` arrays.

All return a :class:`SegmentationData`: images ``float32`` channels-last, masks ``int32``
``(N, *spatial)`` with labels in ``[0, len(class_names))``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from jaxcnn._checks import fail, is_int


class SegmentationData(NamedTuple):
    """Images ``x_*`` ``(N, *spatial, C)`` float32 and masks ``y_*`` ``(N, *spatial)`` int32;
    ``x_val``/``y_val`` are ``None`` when the source has no validation split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    x_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None


SHAPES2D = ("background", "disk", "striped square", "checkered triangle")
SHAPES3D = ("background", "ball", "striped box")


def _check_count(where, what, value, minimum=1):
    if not is_int(value) or value < minimum:
        fail(where, what, f"an int >= {minimum}", value)
    return int(value)


def _scene(rng, size, ndim, num_shapes, painters):
    """One scene: a shaded noisy background and ``num_shapes`` textured shapes drawn in
    random order (later shapes cover earlier ones)."""
    grid = np.stack(np.meshgrid(*[np.arange(size, dtype=np.float32)] * ndim, indexing="ij"))
    slope = rng.uniform(-0.15, 0.15, ndim).astype(np.float32) / size
    image = 0.25 + np.tensordot(slope, grid - size / 2, axes=1)
    mask = np.zeros((size,) * ndim, np.int32)
    for _ in range(num_shapes):
        label = int(rng.integers(1, len(painters) + 1))
        centre = rng.uniform(0.15 * size, 0.85 * size, ndim).astype(np.float32)
        radius = rng.uniform(0.12 * size, 0.25 * size)
        inside, texture = painters[label - 1](rng, grid, centre, radius)
        image = np.where(inside, texture, image)
        mask[inside] = label
    image = image + rng.normal(0.0, 0.08, image.shape).astype(np.float32)
    return image.astype(np.float32)[..., None], mask


def _stripes(rng, grid, period):
    axis = int(rng.integers(len(grid)))
    phase = rng.uniform(0, period)
    return ((grid[axis] + phase) % period) < period / 2


def _disk(rng, grid, centre, radius):
    d2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
    return d2 <= radius ** 2, np.float32(rng.uniform(0.6, 0.9))


def _square(rng, grid, centre, radius):
    inside = np.all([np.abs(g - c) <= 0.85 * radius for g, c in zip(grid, centre)], axis=0)
    dark = rng.uniform(0.0, 0.08)
    return inside, np.where(_stripes(rng, grid, 4.0), dark + 0.6, dark).astype(np.float32)


def _triangle(rng, grid, centre, radius):
    y, x = grid[0] - centre[0], grid[1] - centre[1]
    angle = rng.uniform(0, 2 * np.pi)
    inside = np.ones(y.shape, bool)
    for k in range(3):  # an equilateral triangle: three half-planes
        a = angle + 2 * np.pi * k / 3
        inside &= np.cos(a) * x + np.sin(a) * y <= 0.6 * radius
    check = ((grid[0] // 2 + grid[1] // 2) % 2).astype(bool)
    base = rng.uniform(0.45, 0.6)
    return inside, np.where(check, base + 0.35, base - 0.45).astype(np.float32)


def _scenes(n, size, seed, ndim, painters, num_shapes):
    rng = np.random.default_rng(seed)
    pairs = [_scene(rng, size, ndim, int(rng.integers(num_shapes[0], num_shapes[1] + 1)),
                    painters) for _ in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _make(where, names, ndim, painters, n_train, n_test, size, seed, num_shapes):
    n_train = _check_count(where, "n_train", n_train)
    n_test = _check_count(where, "n_test", n_test)
    size = _check_count(where, "size", size, 8)
    lo_hi = tuple(num_shapes) if isinstance(num_shapes, (tuple, list)) else ()
    if len(lo_hi) != 2 or not all(is_int(v) for v in lo_hi) or not 1 <= lo_hi[0] <= lo_hi[1]:
        fail(where, "num_shapes", "a pair (min, max) of ints with 1 <= min <= max", num_shapes)
    if not is_int(seed):
        fail(where, "seed", "an int", seed, exc=TypeError)
    train = _scenes(n_train, size, [seed, 0], ndim, painters, lo_hi)
    test = _scenes(n_test, size, [seed, 1], ndim, painters, lo_hi)
    return SegmentationData(*train, *test, names)


def make_shapes2d(n_train=2000, n_test=500, *, size=32, seed=0, num_shapes=(2, 4)):
    """Procedural 2-d scenes ``(size, size, 1)`` of overlapping disks (flat grey), squares
    (stripes) and triangles (a checkerboard) on a shaded background with Gaussian noise
    (std 0.08); masks hold the class of the shape on top. Train and test scenes come from
    independent streams of ``seed``.

    Example:
      >>> from jaxcnn.data import make_shapes2d
      >>> d = make_shapes2d(4, 2, size=16)
      >>> d.x_train.shape, d.y_test.shape, d.class_names[1]
      ((4, 16, 16, 1), (2, 16, 16), 'disk')
    """
    return _make("make_shapes2d", SHAPES2D, 2, (_disk, _square, _triangle), n_train, n_test,
                 size, seed, num_shapes)


def make_shapes3d(n_train=400, n_test=100, *, size=16, seed=0, num_shapes=(1, 3)):
    """Procedural 3-d volumes ``(size, size, size, 1)`` of overlapping balls (flat grey)
    and boxes (stripes along a random axis) on a shaded noisy background; per-voxel masks.

    Example:
      >>> from jaxcnn.data import make_shapes3d
      >>> d = make_shapes3d(2, 1, size=8)
      >>> d.x_train.shape, d.y_train.shape, d.class_names
      ((2, 8, 8, 8, 1), (2, 8, 8, 8), ('background', 'ball', 'striped box'))
    """
    return _make("make_shapes3d", SHAPES3D, 3, (_disk, _square), n_train, n_test, size, seed,
                 num_shapes)


def make_digit_canvases(digits, labels, n, *, size=48, per_canvas=2, threshold=0.5, gap=None,
                        seed=0, tries=100):
    """Canvases ``(n, size, size, 1)`` in ``[0, 1]``, each holding ``per_canvas`` digits
    drawn from ``digits`` ``(M, 28, 28[, 1])`` (uint8 or ``[0, 1]``) at random positions
    (the image is the pixelwise maximum), and masks with class ``label + 1`` where a
    digit's intensity exceeds ``threshold``, 0 elsewhere.

    ``gap=None`` draws each position independently: digits may overlap, and the later digit
    owns the shared pixels, which the image does not show. ``gap=g`` (an int >= 0) keeps
    every digit's ink (intensity > ``threshold``) more than ``g`` pixels (in x and y) from the
    ink already on the canvas, trying up to ``tries`` random positions per digit and keeping
    the last one tried when none fits (possible only on canvases too small for the digits).

    Example:
      >>> import numpy as np
      >>> from jaxcnn.data import make_digit_canvases
      >>> digits = np.zeros((3, 28, 28), np.uint8); digits[:, 10:18, 10:18] = 255
      >>> x, y = make_digit_canvases(digits, np.array([0, 4, 9]), 5, size=32)
      >>> x.shape, y.shape, sorted(set(np.unique(y)) - {0}) <= [1, 5, 10]
      ((5, 32, 32, 1), (5, 32, 32), True)
    """
    where = "make_digit_canvases"
    d = np.asarray(digits)
    d = d[..., 0] if d.ndim == 4 else d
    if d.ndim != 3 or len(d) != len(labels) or len(d) == 0:
        fail(where, "digits", "(M, h, w[, 1]) with one label per digit", np.shape(digits))
    h, w = d.shape[1:]
    size = _check_count(where, "size", size)
    if size < max(h, w):
        fail(where, "size", f">= the digit size {max(h, w)}", size)
    if gap is not None and (not is_int(gap) or gap < 0):
        fail(where, "gap", "None or an int >= 0 (pixels kept between two digits' ink)", gap)
    tries = _check_count(where, "tries", tries)
    d = d.astype(np.float32) / (255.0 if d.dtype == np.uint8 else 1.0)
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size), np.float32)
    y = np.zeros((n, size, size), np.int32)
    for i in range(n):
        # ink of the digits placed so far, grown by `gap` pixels (and padded by `gap`)
        taken = None if gap is None else np.zeros((size + 2 * gap,) * 2, bool)
        for j in rng.integers(0, len(d), per_canvas):
            ink = d[j] > threshold
            for _ in range(1 if gap is None else tries):
                r, c = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
                if gap is None or not (taken[r + gap:r + gap + h, c + gap:c + gap + w]
                                       & ink).any():
                    break
            x[i, r:r + h, c:c + w] = np.maximum(x[i, r:r + h, c:c + w], d[j])
            y[i, r:r + h, c:c + w][ink] = int(labels[j]) + 1
            if gap is not None:
                for dr in range(2 * gap + 1):
                    for dc in range(2 * gap + 1):
                        taken[r + dr:r + dr + h, c + dc:c + dc + w] |= ink
    return x[..., None], y


def load_mnist_seg(data_dir=None, *, n_train=10000, n_test=2000, size=48, per_canvas=2,
                   gap=2, seed=0, download=True):
    """MNIST-seg: :func:`make_digit_canvases` from MNIST's train digits (train split) and
    test digits (test split); 11 classes, background + the digits 0-9. By default the
    digits' ink stays more than ``gap=2`` pixels apart, so every mask pixel is visible in
    the image (``gap=None``: digits may overlap, and the later one owns the shared pixels).

    .. code-block:: python

       d = load_mnist_seg("../shared/data/mnist")  # d.x_train: (10000, 48, 48, 1)
    """
    from jaxcnn.data.images import load_mnist

    mnist = load_mnist(data_dir, download=download)
    kw = dict(size=size, per_canvas=per_canvas, gap=gap)
    train = make_digit_canvases(mnist.x_train, mnist.y_train, n_train, seed=seed, **kw)
    test = make_digit_canvases(mnist.x_test, mnist.y_test, n_test, seed=seed + 1, **kw)
    return SegmentationData(*train, *test, ("background",) + tuple(str(i) for i in range(10)))


def _npz_pair(where, f, prefix):
    images, masks = f[f"{prefix}images"], f[f"{prefix}masks"]
    if not np.issubdtype(masks.dtype, np.integer) and masks.dtype != np.bool_:
        fail(where, f"{prefix}masks dtype", "an integer dtype (one class index per pixel)",
             str(masks.dtype), exc=TypeError)
    if masks.ndim not in (2, 3, 4):
        fail(where, f"{prefix}masks rank", "2, 3 or 4: (N, *spatial) with 1-3 spatial axes",
             masks.ndim)
    if images.ndim == masks.ndim:
        images = images[..., None]
    if images.ndim != masks.ndim + 1 or images.shape[:-1] != masks.shape:
        fail(where, f"{prefix}images shape", f"{masks.shape} or {masks.shape} + (C,), as "
             f"{prefix}masks (one mask pixel per image pixel)", images.shape,
             "The images and masks must be the same examples at the same size")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return images.astype(np.float32) / scale, masks.astype(np.int32)


def _check_labels(where, masks, num_classes, ignore_index):
    for name, m in masks.items():
        values = m if ignore_index is None else m[m != ignore_index]
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            bad = int(values.min()) if values.min() < 0 else int(values.max())
            fail(where, f"every label in {name}", f"in [0, {num_classes})", bad,
                 "Pass num_classes= (or ignore_index= for an unlabelled value such as 255)")


def load_segmentation_npz(path, *, num_classes=None, ignore_index=None, test_fraction=0.2,
                          seed=0) -> SegmentationData:
    """An ``.npz`` with ``images`` ``(N, *spatial[, C])`` and integer ``masks``
    ``(N, *spatial)``, and optionally ``val_images``/``val_masks`` and
    ``test_images``/``test_masks``; without a test split, a seeded ``test_fraction`` of
    ``images`` is held out. ``uint8`` images are scaled to ``[0, 1]``.

    Args:
      path: the file.
      num_classes: default: the largest label + 1 (labels equal to ``ignore_index`` aside).
      ignore_index: a label that marks unlabelled pixels (kept in the masks; excluded from
        the range check, e.g. 255).
      test_fraction, seed: the hold-out split when the file has no ``test_*`` arrays.

    Example:
      >>> import pathlib, tempfile, numpy as np
      >>> from jaxcnn.data import load_segmentation_npz
      >>> with tempfile.TemporaryDirectory() as d:
      ...     p = pathlib.Path(d, "seg.npz")
      ...     np.savez(p, images=np.zeros((10, 8, 8), np.uint8), masks=np.ones((10, 8, 8), int))
      ...     data = load_segmentation_npz(p, num_classes=3)
      >>> data.x_train.shape, data.y_test.shape, data.class_names
      ((8, 8, 8, 1), (2, 8, 8), ('0', '1', '2'))
    """
    where = "load_segmentation_npz"
    with np.load(path, allow_pickle=False) as f:
        if "images" not in f.files or "masks" not in f.files:
            fail(where, f"the arrays in {path}", "images and masks (optionally val_images, "
                 "val_masks, test_images, test_masks)", sorted(f.files))
        splits = {"": _npz_pair(where, f, "")}
        for prefix in ("val_", "test_"):
            present = [k in f.files for k in (f"{prefix}images", f"{prefix}masks")]
            if any(present) and not all(present):
                fail(where, f"the {prefix[:-1]} arrays", f"both {prefix}images and "
                     f"{prefix}masks", sorted(f.files))
            if all(present):
                splits[prefix] = _npz_pair(where, f, prefix)
    shapes = {p: s[0].shape[1:] for p, s in splits.items()}
    if len(set(shapes.values())) > 1:
        fail(where, "the image shapes of every split", "equal", shapes)
    if "test_" not in splits:
        if not 0.0 < test_fraction < 1.0:
            fail(where, "test_fraction", "in (0, 1)", test_fraction)
        x, y = splits[""]
        order = np.random.default_rng(seed).permutation(len(x))
        cut = len(x) - max(1, int(round(test_fraction * len(x))))
        splits[""] = x[np.sort(order[:cut])], y[np.sort(order[:cut])]
        splits["test_"] = x[np.sort(order[cut:])], y[np.sort(order[cut:])]
    masks = {f"{p}masks": s[1] for p, s in splits.items()}
    if num_classes is None:
        found = [m[m != ignore_index] if ignore_index is not None else m for m in masks.values()]
        num_classes = int(max(v.max(initial=0) for v in found)) + 1
    _check_count(where, "num_classes", num_classes)
    _check_labels(where, masks, num_classes, ignore_index)
    val = splits.get("val_", (None, None))
    return SegmentationData(*splits[""], *splits["test_"],
                            tuple(str(i) for i in range(num_classes)), *val)
