"""Streaming input (jaxcnn.data.streaming): order per seed, each example once per epoch,
exact resume, clear errors; on small folders and npz files written here."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("grain")
from PIL import Image  # noqa: E402

from jaxcnn.data import stream_image_folder, stream_npz  # noqa: E402

N, H, W = 10, 3, 4


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Ten RGB images in two classes; image ``i`` is filled with the value ``i`` (its id)."""
    root = tmp_path_factory.mktemp("images")
    for i in range(N):
        cls = root / ("b" if i % 2 else "a")
        cls.mkdir(exist_ok=True)
        Image.fromarray(np.full((H, W, 3), i, np.uint8)).save(cls / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("npz") / "data.npz"
    x = np.arange(N, dtype=np.uint8)[:, None, None] * np.ones((1, H, W), np.uint8)
    np.savez(path, train_images=x, train_labels=(np.arange(N) % 3)[:, None])
    return path


def ids(batches):
    """The image ids (the fill value) of each example of each batch."""
    return [np.asarray(b["x"])[:, 0, 0, 0].tolist() for b in batches]


def take(it, n):
    return [next(it) for _ in range(n)]


def test_order_is_fits_permutation_per_epoch_with_each_example_once(folder):
    data = stream_image_folder(folder, batch_size=3, seed=5, epochs=2)
    got = ids(data.iterator(device=False))
    # the files sorted by class then name: a/00, a/02, ..., b/01, b/03, ...
    files = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    for epoch in range(2):
        perm = np.random.default_rng([5, epoch]).permutation(N)[:9]
        expected = [files[i] for i in perm]
        flat = sum(got[3 * epoch: 3 * epoch + 3], [])
        assert flat == expected and len(set(flat)) == 9
    assert len(got) == 6 and data.steps_per_epoch == 3


def test_every_example_once_per_epoch_and_labels(folder):
    data = stream_image_folder(folder, batch_size=5, seed=0, epochs=3)
    batches = list(data.iterator(device=False))
    for epoch in range(3):
        seen = np.concatenate([np.asarray(b["x"])[:, 0, 0, 0] for b in batches[2 * epoch:
                                                                          2 * epoch + 2]])
        assert sorted(seen.tolist()) == list(range(N))
    for b in batches:
        assert b["y"].dtype == np.int32 and b["x"].dtype == np.uint8
        np.testing.assert_array_equal(b["y"], b["x"][:, 0, 0, 0] % 2)
    assert data.class_names == ("a", "b") and data.element_shape == (H, W, 3)


def test_same_seed_same_batches_whatever_the_threads_other_seed_other_order(folder):
    a = ids(stream_image_folder(folder, batch_size=2, seed=1, epochs=2, threads=1))
    b = ids(stream_image_folder(folder, batch_size=2, seed=1, epochs=2, threads=4))
    c = ids(stream_image_folder(folder, batch_size=2, seed=2, epochs=2))
    assert a == b and a != c


def test_resume_from_saved_state_continues_exactly(npz):
    data = stream_npz(npz, batch_size=3, seed=7)  # endless
    reference = ids(take(data.iterator(device=False), 8))
    it = data.iterator()
    first = ids(take(it, 4))
    state = json.loads(json.dumps(it.get_state()))  # stored in a checkpoint's JSON part
    assert state["batch"] == 4 and (it.epoch, it.step_in_epoch) == (1, 1)
    resumed = data.iterator(state, device=False)
    assert first + ids(take(resumed, 4)) == reference


def test_host_augment_is_a_function_of_seed_and_position(folder):
    def augment(x, rng):
        return x + rng.integers(0, 100, dtype=np.uint8)

    run = [stream_image_folder(folder, batch_size=2, seed=3, epochs=1, augment=augment)
           for _ in range(2)]
    a, b = (np.concatenate([np.asarray(batch["x"]) for batch in r]) for r in run)
    np.testing.assert_array_equal(a, b)
    plain = np.concatenate([np.asarray(batch["x"])
                            for batch in stream_image_folder(folder, batch_size=2, seed=3,
                                                             epochs=1)])
    assert not np.array_equal(a, plain)


def test_npz_memory_mapped_equals_read_into_memory_and_scale(npz):
    kw = dict(batch_size=4, seed=0, epochs=1, scale=0.5)
    mapped = list(stream_npz(npz, **kw).iterator(device=False))
    loaded = list(stream_npz(npz, mmap=False, **kw).iterator(device=False))
    for m, l in zip(mapped, loaded, strict=True):
        np.testing.assert_array_equal(m["x"], l["x"])
        np.testing.assert_array_equal(m["y"], l["y"])
    assert mapped[0]["x"].shape == (4, H, W, 1) and mapped[0]["x"].dtype == np.float32
    seen = np.concatenate([b["x"][:, 0, 0, 0] * 2 for b in mapped]).tolist()
    assert len(mapped) == 2 and len(set(seen)) == 8 and set(seen) <= set(range(N))


def test_broken_image_is_an_error_naming_it(tmp_path):
    for i in range(4):
        (tmp_path / "c").mkdir(exist_ok=True)
        Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "c" / f"{i}.png")
    (tmp_path / "c" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    data = stream_image_folder(tmp_path, batch_size=4, seed=0, epochs=1)
    with pytest.raises(ValueError, match=r"stream_image_folder: the image .*c/3\.png must be "
                                         r"a readable image file.*truncated or corrupt"):
        list(data.iterator(device=False))


def test_image_of_another_size_is_an_error_naming_it(tmp_path):
    (tmp_path / "c").mkdir()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "c" / "0.png")
    Image.fromarray(np.zeros((H + 1, W), np.uint8)).save(tmp_path / "c" / "1.png")
    data = stream_image_folder(tmp_path, batch_size=2, seed=0, epochs=1)
    with pytest.raises(ValueError, match=r"the size of the image .*1\.png must be \(3, 4, 1\).*"
                                         r"got \(4, 4, 1\).*size=\(height, width\)"):
        list(data.iterator(device=False))
    resized = stream_image_folder(tmp_path, batch_size=2, seed=0, epochs=1, size=(2, 2))
    assert next(iter(resized))["x"].shape == (2, 2, 2, 1)


def test_resume_state_of_another_stream_is_refused(npz):
    state = stream_npz(npz, batch_size=3, seed=7).iterator().get_state()
    with pytest.raises(ValueError, match=r"stream_npz: set_state: state\['seed'\] must be 8 "
                                         r"as in this stream, got 7"):
        stream_npz(npz, batch_size=3, seed=8).iterator(state)
    with pytest.raises(TypeError, match=r"set_state: state must be a dict from get_state"):
        stream_npz(npz, batch_size=3, seed=7).iterator({"step": 1})


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=11), r"batch_size must be at most the number of examples \(10\)"),
    (dict(batch_size=0), r"batch_size must be an int >= 1, got 0"),
    (dict(batch_size=2, seed=-1), r"seed must be an int >= 0, got -1"),
    (dict(batch_size=2, epochs=0), r"epochs must be None \(endless\) or an int >= 1, got 0"),
    (dict(batch_size=2, workers=1.5), r"workers must be an int >= 0, got 1.5"),
    (dict(batch_size=2, size=(2,)), r"size must be None or \(height, width\)"),
])
def test_argument_errors(folder, kwargs, message):
    with pytest.raises(ValueError, match="stream_image_folder: " + message):
        stream_image_folder(folder, **kwargs)


def test_path_errors(tmp_path, npz):
    with pytest.raises(ValueError, match=r"path must be an existing folder.*Extract an archive"):
        stream_image_folder(npz, batch_size=1)
    with pytest.raises(ValueError, match=r"the images in .* must be at least one file"):
        stream_image_folder(tmp_path, batch_size=1)


def test_npz_errors(tmp_path, npz):
    x = np.zeros((4, 2, 2), np.uint8)
    np.savez_compressed(tmp_path / "z.npz", train_images=x, train_labels=np.zeros(4))
    with pytest.raises(ValueError, match=r"stream_npz: 'train_images' in .*z\.npz must be stored "
                                         r"uncompressed.*np\.savez.*mmap=False"):
        stream_npz(tmp_path / "z.npz", batch_size=2)
    assert len(list(stream_npz(tmp_path / "z.npz", batch_size=2, epochs=1, mmap=False))) == 2
    with pytest.raises(ValueError, match=r"the arrays in .* must be to include 'images', got "
                                         r"\['train_images', 'train_labels'\]"):
        stream_npz(npz, batch_size=2, images="images")
    np.savez(tmp_path / "y.npz", train_images=x, train_labels=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"the shape of 'train_labels' must be \(N,\) or "
                                         r"\(N, 1\) with N = 4 images, got \(4, 2\)"):
        stream_npz(tmp_path / "y.npz", batch_size=2)
    with pytest.raises(ValueError, match=r"the rank of 'train_images' must be 4 \(N, \*spatial\)"):
        stream_npz(npz, batch_size=2, spatial_rank=3)
    with pytest.raises(ValueError, match=r"spatial_rank must be 1, 2 or 3, got 4"):
        stream_npz(npz, batch_size=2, spatial_rank=4)
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    with pytest.raises(ValueError, match=r"bad\.npz must be a complete \.npz file"):
        stream_npz(tmp_path / "bad.npz", batch_size=2)


def test_without_grain_the_error_says_how_to_install(monkeypatch, npz):
    monkeypatch.setitem(sys.modules, "grain", None)
    with pytest.raises(ImportError, match=r"stream_npz: the grain package must be installed.*"
                                          r"jaxcnn\[stream\]"):
        stream_npz(npz, batch_size=2)
