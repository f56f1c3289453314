"""experiments/ucr_classification.py end to end on tiny data (the run-folder contract), the UCR
protocol's defaults and its batch-norm recalibration; MNIST-1D's defaults (its run:
test_experiment_cli)."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import mnist1d_classification as mnist1d  # noqa: E402
import ucr_classification as ucr  # noqa: E402


def write_ucr(folder, name, n_train=12, n_test=6, length=16):
    rng = np.random.default_rng(0)
    for split, n in (("TRAIN", n_train), ("TEST", n_test)):
        lines = ["@problemName " + name, "@classLabel true up down", "@data"]
        for i in range(n):
            label = ("up", "down")[i % 2]
            s = np.linspace(0, 1, length) * (1 if label == "up" else -1) + rng.normal(0, .1, length)
            lines.append(",".join(f"{v:.4f}" for v in s) + ":" + label)
        (folder / f"{name}_{split}.ts").write_text("\n".join(lines) + "\n")


def test_ucr_defaults():
    data = ucr.TimeSeriesData(np.zeros((50, 8, 1)), np.zeros(50), np.zeros((5, 8, 1)),
                              np.zeros(5), ("a", "b"), None, None, "toy")
    cfg = ucr.resolve(ucr.Config(name="toy"), data)
    assert cfg.model == "fcn" and cfg.batch_size == 5  # min(16, 50 // 10)
    assert cfg.epochs == 2000 and cfg.lr == 1e-3  # Ismail Fawaz et al.'s 2000 passes
    assert ucr.passes_per_epoch(cfg, 50) == 10  # 100 steps * 5 / 50 series
    assert ucr.passes_per_epoch(dataclasses.replace(cfg, epochs=3), 50) == 3
    assert cfg.workdir == "runs/timeseries/toy_fcn_seed0"
    big = ucr.resolve(ucr.Config(), data._replace(x_train=np.zeros((4000, 40, 1))))
    assert big.batch_size == 16


def test_ucr_run_folder_ensemble_and_plots(tmp_path):
    write_ucr(tmp_path, "toy")
    workdir = tmp_path / "run"
    summary = ucr.main(["--no-compile-cache", "--name", "toy", "--data", str(tmp_path),
                        "--model", "fcn", "--epochs", "1", "--batch-size", "4",
                        "--epoch-steps", "3", "--ensemble", "2", "--workdir", str(workdir),
                        "--tensorboard"])
    for f in ("config.json", "metrics.jsonl", "result.json", "series.png", "filters.png",
              "cam.png", "curves.png"):
        assert (workdir / f).exists(), f
    assert any((workdir / "checkpoints").iterdir())
    assert list((workdir / "tensorboard").rglob("events.out.tfevents.*"))  # --tensorboard
    result = json.loads((workdir / "result.json").read_text())
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result == summary
    assert result["step"] == 3 and result["train_size"] == 12 and result["wall_time_s"] > 0
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"] == "fcn" and config["batch_size"] == 4 and config["ensemble"] == 2
    assert len(result["test_member_accuracy"]) == 2
    # Selection is wired to fit's train_loss monitor (its behaviour: test_train_fit); the test
    # with batch-norm statistics recomputed on the training set is recorded beside the headline.
    assert result["monitor"] == "train_loss" and result["best_epoch"] == 1
    assert result["cpu_time_s"] > 0 and result["passes"] == 1
    assert 0.0 <= result["test_accuracy_recalibrated_bn"] <= 1.0
    # Plots come from jaxcnn.viz, not the experiments' own matplotlib code.
    for name in ("ucr_classification.py", "mnist1d_classification.py", "_series_plots.py"):
        source = (ROOT / "experiments" / name).read_text()
        assert "matplotlib" not in source, name


def test_mnist1d_defaults():
    # Its run end to end (on a two-device mesh): test_experiment_cli.
    cfg = mnist1d.Config()
    assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.lr) == ("mnist1d_cnn", 30, 128, 3e-3)


def test_recalibrate_bn_uses_the_whole_training_set():
    # The first batch norm's statistics, against a naive numpy convolution of the series:
    # mean and unbiased variance over (series, time) of each channel.
    import jax

    from jaxcnn.models import fcn

    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 6, 1)).astype(np.float32)
    _, params, state = fcn(2).init(jax.random.key(0), (6, 1))
    cfg = ucr.Config(model="fcn")
    kernel = np.asarray(params["features_0"]["serial_0"]["conv_0"]["kernel"])[:, 0]  # (8, 128)
    xp = np.pad(x[..., 0], ((0, 0), (3, 4)))  # "SAME" for a kernel of 8: 3 before, 4 after
    conv = np.stack([xp[:, t:t + 8] @ kernel for t in range(6)], axis=1)  # (10, 6, 128)
    want_mean = conv.mean(axis=(0, 1))
    want_var = conv.reshape(-1, 128).var(axis=0, ddof=1)
    first = lambda s: s["features_0"]["serial_0"]["batch_norm_1"]  # noqa: E731
    whole = first(ucr.recalibrate_bn(cfg, 2, params, state, x))
    np.testing.assert_allclose(whole["mean"], want_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(whole["var"], want_var, rtol=1e-4, atol=1e-5)
    chunked = first(ucr.recalibrate_bn(cfg, 2, params, state, x, chunk=4))  # 4 + 4 + 2
    np.testing.assert_allclose(chunked["mean"], want_mean, rtol=1e-4, atol=1e-5)
