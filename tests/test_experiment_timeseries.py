"""experiments/timeseries_classification.py end to end on tiny data (the run-folder contract)."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exp():
    spec = importlib.util.spec_from_file_location(
        "timeseries_classification", ROOT / "experiments" / "timeseries_classification.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def write_ucr(folder, name, n_train=12, n_test=6, length=16):
    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", n_train), ("TEST", n_test)):
        lines = ["@problemName " + name, "@classLabel true up down", "@data"]
        for i in range(n):
            label = ("up", "down")[i % 2]
            s = np.linspace(0, 1, length) * (1 if label == "up" else -1) + rng.normal(0, .1, length)
            lines.append(",".join(f"{v:.4f}" for v in s) + ":" + label)
        (folder / f"{name}_{split}.ts").write_text("\n".join(lines) + "\n")


def test_resolve_defaults(exp):
    data = exp.TimeSeriesData(np.zeros((50, 8, 1)), np.zeros(50), np.zeros((5, 8, 1)),
                              np.zeros(5), ("a", "b"), None, None, "toy")
    cfg = exp.resolve(exp.Config(dataset="ucr", name="toy"), data)
    assert cfg.model == "fcn" and cfg.batch_size == 5  # min(16, 50 // 10)
    assert exp.copies_per_epoch(cfg, 50) == 10  # 100 steps * 5 / 50 series
    assert cfg.epochs == 20  # 2000 steps / 100 per epoch
    assert cfg.workdir == "runs/timeseries/toy_fcn_seed0"
    m = exp.resolve(exp.Config(), data._replace(x_train=np.zeros((4000, 40, 1))))
    assert (m.model, m.batch_size, m.epochs, m.lr) == ("mnist1d_cnn", 128, 30, 3e-3)


def test_ucr_run_folder_ensemble_and_plots(exp, tmp_path):
    write_ucr(tmp_path, "toy")
    workdir = tmp_path / "run"
    summary = exp.main(["--dataset", "ucr", "--name", "toy", "--data-dir", str(tmp_path),
                        "--model", "fcn", "--epochs", "1", "--batch-size", "4",
                        "--epoch-steps", "3", "--ensemble", "2", "--workdir", str(workdir)])
    for f in ("config.json", "metrics.jsonl", "result.json", "series.png", "filters.png",
              "cam.png", "curves.png"):
        assert (workdir / f).exists(), f
    assert any((workdir / "checkpoints").iterdir())
    result = json.loads((workdir / "result.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result == summary
    assert result["step"] == 3 and result["train_size"] == 12 and result["wall_time_s"] > 0
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"] == "fcn" and config["batch_size"] == 4 and config["ensemble"] == 2
    assert len(result["test_member_accuracy"]) == 2


def test_mnist1d_data_and_defaults(exp):
    # The training path is the one the UCR test runs; here only what differs for MNIST-1D.
    data = exp.load_data(exp.Config(num_samples=100))
    assert data.name == "mnist1d" and data.x_train.shape == (80, 40, 1)
    cfg = exp.resolve(exp.Config(num_samples=100), data)
    assert cfg.workdir == "runs/timeseries/mnist1d_mnist1d_cnn_seed0"
    assert exp.copies_per_epoch(cfg, 80) == 1
