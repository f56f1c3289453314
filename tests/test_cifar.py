"""CIFAR-10 as a user has it: an image-folder archive read without extracting it, and the
image experiment's CIFAR-10 preset end to end on a tiny generated CIFAR-shaped archive,
stopped and resumed from its checkpoint."""

import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxcnn.data import load_cifar10, load_image_folder

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")


def write_archive(path, per_class, prefix="", classes=CLASSES, splits=("train", "test"),
                  size=(32, 32)):
    """A ``.tar.gz`` of ``[prefix/]split/class/i.png``; image i of class c is filled with
    ``10 * c + i`` (plus a per-split offset) so that the order can be checked."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for s, split in enumerate(splits):
            for c, name in enumerate(classes):
                for i in range(per_class[s]):
                    a = np.full((*size, 3), 100 * s + 10 * c + i, np.uint8)
                    a[0, 0] = rng.integers(0, 256, 3)
                    buf = io.BytesIO()
                    Image.fromarray(a).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"{prefix}{split}/{name}/{i:04d}.png")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


@pytest.mark.parametrize("prefix", ["", "cifar10/"])
def test_archive_reads_like_the_folder(tmp_path, prefix):
    path = write_archive(tmp_path / "c.tar.gz", (3, 2), prefix)
    ds = load_cifar10(path)
    assert ds.x_train.shape == (30, 32, 32, 3) and ds.x_test.shape == (20, 32, 32, 3)
    assert ds.class_names == CLASSES
    np.testing.assert_array_equal(ds.y_train, np.repeat(np.arange(10), 3))
    np.testing.assert_array_equal(ds.x_train[:, 1, 1, 0], [10 * c + i for c in range(10)
                                                           for i in range(3)])
    np.testing.assert_array_equal(ds.x_test[:, 1, 1, 0], [100 + 10 * c + i for c in range(10)
                                                          for i in range(2)])


def test_archive_without_splits_is_split_by_class(tmp_path):
    path = write_archive(tmp_path / "c.tar", (5,), classes=("a", "b"), splits=("",))
    ds = load_image_folder(path, test_fraction=0.2)
    assert ds.x_train.shape == (8, 32, 32, 3) and ds.x_test.shape == (2, 32, 32, 3)
    assert ds.class_names == ("a", "b")


def test_archive_errors(tmp_path):
    with pytest.raises(ValueError, match=r"load_image_folder: the splits in .*c\.tar\.gz must be "
                                         r"both train/ and test/, got \['train'\]"):
        load_image_folder(write_archive(tmp_path / "c.tar.gz", (1,), splits=("train",)))
    deep = write_archive(tmp_path / "d.tar.gz", (1, 1), prefix="a/b/", classes=("x",))
    with tarfile.open(tmp_path / "e.tar.gz", "w:gz") as tar:  # two depths in one archive
        tar.add(deep, arcname="x/one.png")
        tar.add(deep, arcname="two.png")
    with pytest.raises(ValueError, match=r"load_image_folder: the layout of .*e\.tar\.gz must "
                                         r"be <class>/<image> or train\|test/<class>/<image>"):
        load_image_folder(tmp_path / "e.tar.gz")
    with pytest.raises(ValueError, match=r"load_image_folder: root must be an existing folder "
                                         r"or \.tar/\.tar\.gz archive"):
        load_image_folder(tmp_path / "missing.tar.gz")


def test_cifar_experiment_runs_and_resumes(tmp_path):
    sys.path.insert(0, str(ROOT / "experiments"))
    import image_classification as experiment

    data = write_archive(tmp_path / "cifar.tar.gz", (2, 1))
    workdir = tmp_path / "run"
    args = ["--dataset", "cifar10", "--data", str(data), "--batch-size", "10",
            "--workdir", str(workdir), "--no-progress", "--no-plots", "--no-compile-cache"]
    first = experiment.main(args + ["--epochs", "1"])
    assert 0.0 <= first["test_accuracy"] <= 1.0
    config = json.loads((workdir / "config.json").read_text())
    assert (config["model"], config["optimizer"], config["augment"]) == (
        "resnet20", "sgd", "crop_flip")
    second = experiment.main(args + ["--epochs", "2", "--resume"])
    result = json.loads((workdir / "result.json").read_text())
    assert result["epochs_run"] == 2 and result["step"] == 4  # 20 images, batch 10
    assert result["test_accuracy"] == second["test_accuracy"]
    epochs = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs if r.get("kind") == "epoch"] == [1, 2]
