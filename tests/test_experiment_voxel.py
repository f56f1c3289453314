"""The voxel experiment end to end on tiny grids: the run-folder contract and the binary path
(AUC), on data the test writes."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import voxel_classification as exp  # noqa: E402


def test_shapes_run_folder(tmp_path):
    workdir = tmp_path / "run"
    summary = exp.main(["--no-compile-cache",
                        "--grid", "12", "--train-per-class", "2", "--val-per-class", "1",
                        "--test-per-class", "1", "--epochs", "1", "--batch-size", "8",
                        "--model", "voxnet", "--workdir", str(workdir)])
    for name in ("config.json", "metrics.jsonl", "result.json", "run.json", "voxels.png",
                 "filters.png", "curves.png"):
        assert (workdir / name).is_file(), name
    assert (workdir / "checkpoints").is_dir()
    result = json.loads((workdir / "result.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["test_size"] == 8
    assert result == summary and "test_auc" not in result
    config = json.loads((workdir / "config.json").read_text())
    assert config["grid"] == 12 and config["augment"] == "quarter"
    assert config["epochs"] == 1 and config["lr"] == exp.DEFAULTS["shapes"]["lr"]


def test_defaults_resolve_per_dataset():
    data = exp.VoxelData(*(np.zeros((1, 8, 8, 8, 1), np.uint8), np.zeros(1, np.int32)) * 2,
                         ("a", "b"))
    for dataset in ("shapes", "npz"):
        cfg = exp.resolve(exp.Config(dataset=dataset, data="x/pair.npz"), data)
        assert {k: getattr(cfg, k) for k in ("epochs", "lr", "augment")} == {
            k: v for k, v in exp.DEFAULTS[dataset].items() if k != "grid"}
        assert cfg.grid == 8 and cfg.model == "small_cnn3d"
    cfg = exp.resolve(exp.Config(epochs=3, lr=0.5, augment="none"), data)
    assert (cfg.epochs, cfg.lr, cfg.augment) == (3, 0.5, "none")


def test_binary_npz_reports_auc(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 16), ("val", 8), ("test", 8)):
        y = np.arange(n) % 2
        x = np.zeros((n, 12, 12, 12), np.uint8)
        x[y == 1, 3:9, 3:9, 3:9] = 255  # class 1: a cube; class 0: noise
        x[y == 0] = (rng.random((int((y == 0).sum()), 12, 12, 12)) > 0.9) * 255
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y.reshape(n, 1)
    np.savez(tmp_path / "pair.npz", **arrays)
    summary = exp.main(["--no-compile-cache",
                        "--dataset", "npz", "--data", str(tmp_path / "pair.npz"),
                        "--epochs", "2", "--batch-size", "8", "--no-plots", "--max-shift", "0",
                        "--model", "voxnet",
                        "--workdir", str(tmp_path / "bin")])
    assert 0.0 <= summary["test_auc"] <= 1.0 and summary["num_params"] > 0
    assert summary["classes"] == ["0", "1"]
    assert summary["monitor"] == "val_auc" and summary["best_epoch"] in (1, 2)
