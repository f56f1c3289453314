"""The image classification experiment end to end, shortened: it must learn, and fill its
run folder (config, metrics, checkpoint, result, plots)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from jaxcnn.train import load_run, num_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location(
        "image_classification", ROOT / "experiments" / "image_classification.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_default_experiment_learns(experiment, tmp_path):
    workdir = tmp_path / "run"
    summary = experiment.main(["--no-compile-cache",
                               "--epochs", "3", "--lr", "5e-3", "--train-limit", "800",
                               "--workdir", str(workdir), "--no-progress"])
    assert summary["test_accuracy"] > 0.5  # chance is 0.1
    result = json.loads((workdir / "result.json").read_text())
    assert result["test_accuracy"] == summary["test_accuracy"] and result["num_params"] == 99_178
    config = json.loads((workdir / "config.json").read_text())
    assert config["dataset"] == "digits" and config["model"] == "digits_cnn"  # presets resolved
    assert len((workdir / "metrics.jsonl").read_text().splitlines()) >= 3
    assert any((workdir / "checkpoints").iterdir())
    run = load_run(workdir)  # the model rebuilt from config.json's model and model_kwargs
    assert num_params(run.params) == 99_178 and run.config["model_kwargs"] == {"num_classes": 10}
    for name in ("curves", "filters", "feature_maps", "confusion"):
        assert (workdir / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_presets_and_options(experiment):
    cfg = experiment.resolve(experiment.parse_config(experiment.Config, ["--dataset", "cifar10"]))
    assert (cfg.model, cfg.optimizer, cfg.augment) == ("resnet20", "sgd", "crop_flip")
    cfg = experiment.resolve(experiment.parse_config(
        experiment.Config, ["--dataset", "mnist", "--model", "small_cnn", "--epochs", "2"]))
    assert (cfg.model, cfg.epochs, cfg.batch_size) == ("small_cnn", 2, 128)
    with pytest.raises(SystemExit):
        experiment.parse_config(experiment.Config, ["--dataset", "imagenet"])
    with pytest.raises(ValueError, match="--resume needs --workdir"):
        experiment.main(["--resume"])
