"""The image classification experiment end to end, shortened: it must learn, and fill its
run folder (config, metrics, checkpoint, result, plots)."""

import json
import sys
from pathlib import Path

from jaxcnn.train import load_run, num_params

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import image_classification as experiment  # noqa: E402
from _cli import parse  # noqa: E402


def test_default_experiment_learns(tmp_path):
    workdir = tmp_path / "run"
    summary = experiment.main(["--no-compile-cache",
                               "--epochs", "3", "--lr", "5e-3", "--train-limit", "800",
                               "--workdir", str(workdir), "--no-progress"])
    assert summary["test_accuracy"] > 0.5  # chance is 0.1
    result = json.loads((workdir / "result.json").read_text())
    assert result["test_accuracy"] == summary["test_accuracy"] and result["num_params"] == 99_178
    assert (result["devices"], result["processes"]) == (1, 1)
    config = json.loads((workdir / "config.json").read_text())
    assert config["dataset"] == "digits" and config["model"] == "digits_cnn"  # presets resolved
    assert (config["epochs"], config["batch_size"]) == (3, 64)
    assert len((workdir / "metrics.jsonl").read_text().splitlines()) >= 3
    assert any((workdir / "checkpoints").iterdir())
    run = load_run(workdir)  # the model rebuilt from config.json's model and model_kwargs
    assert num_params(run.params) == 99_178 and run.config["model_kwargs"] == {"num_classes": 10}
    for name in ("curves", "filters", "feature_maps", "confusion"):
        assert (workdir / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_presets_fill_what_is_not_given():
    def config(*argv):
        parser = experiment._cli.parser(experiment.Config, experiment.__doc__)
        return experiment.resolve(parse(parser, experiment.Config, list(argv)))

    cfg = config("--dataset", "cifar10")
    assert (cfg.model, cfg.optimizer, cfg.augment, cfg.epochs) == ("resnet20", "sgd",
                                                                   "crop_flip", 100)
    cfg = config("--dataset", "mnist", "--model", "small_cnn", "--epochs", "2")
    assert (cfg.model, cfg.epochs, cfg.batch_size) == ("small_cnn", 2, 128)
    cfg = config()
    assert (cfg.dataset, cfg.epochs, cfg.lr, cfg.batch_size) == ("digits", 30, 2e-3, 64)
