"""The image-to-image experiments end to end, shortened: the U-Net segmentation experiment
(2-d procedural scenes, 3-d volumes, a user's npz) and the autoencoder experiment learn,
fill their run folders, and a run cut short resumes to the same result; their command
line is the experiments' shared one (experiments/_cli.py)."""

import dataclasses
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from _experiment_help import help_text, option_lines
from jaxcnn.train import load_run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))  # the experiments import _cli


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def seg():
    yield _load("segmentation")
    sys.modules.pop("segmentation", None)


@pytest.fixture(scope="module")
def ae():
    yield _load("autoencoder")
    sys.modules.pop("autoencoder", None)


def drop_last_checkpoint(folder):
    """Deletes the newest checkpoint: the run then looks killed one epoch before its end."""
    steps = sorted((p for p in (folder / "checkpoints").iterdir() if p.name.isdigit()),
                   key=lambda p: int(p.name))
    assert len(steps) >= 2
    shutil.rmtree(steps[-1])


def is_png(path):
    return path.read_bytes()[:4] == b"\x89PNG"


SEG_2D = ["--no-compile-cache", "--no-progress", "--n-train", "320", "--n-test", "32",
          "--size", "16", "--depth", "1", "--base-width", "8", "--epochs", "3",
          "--batch-size", "16", "--lr", "1e-2"]


def test_segmentation_2d_learns_writes_and_resumes(seg, tmp_path):
    workdir = tmp_path / "seg2d"
    args = SEG_2D + ["--workdir", str(workdir)]
    summary = seg.main(args)
    # the all-background prediction scores (background share) / 4 classes
    assert summary["test_miou"] > summary["background_miou"] + 0.3
    assert summary["test_pixel_accuracy"] > 0.8 and len(summary["test_iou"]) == 4
    result = json.loads((workdir / "result.json").read_text())
    assert result == summary and result["step"] == 60 and result["test_size"] == 32
    for name in ("predictions.png", "curves.png"):
        assert is_png(workdir / name), name
    config = json.loads((workdir / "config.json").read_text())
    assert config["dims"] == 2 and config["data_seed"] == 0 and config["skip"] is True
    run = load_run(workdir)  # the net rebuilt from config.json's model and model_kwargs
    assert run.config["model_kwargs"]["num_classes"] == 4 and run.step == 60

    drop_last_checkpoint(workdir)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        seg.main(args + ["--debug"])
    resumed = seg.main(args + ["--resume", "--no-plots"])
    assert resumed["test_miou"] == summary["test_miou"]  # bit-identical after the resume
    assert resumed["test_confusion_matrix"] == summary["test_confusion_matrix"]


def test_segmentation_3d_and_no_skip(seg, tmp_path):
    workdir = tmp_path / "seg3d"
    summary = seg.main(["--no-compile-cache", "--no-progress", "--dims", "3", "--no-skip",
                        "--n-train", "32", "--n-test", "4", "--size", "8", "--depth", "1",
                        "--base-width", "4", "--epochs", "1", "--batch-size", "8",
                        "--workdir", str(workdir)])
    assert 0.0 <= summary["test_miou"] <= 1.0 and len(summary["test_iou"]) == 3
    assert is_png(workdir / "predictions.png")
    config = json.loads((workdir / "config.json").read_text())
    assert config["model_kwargs"]["ndim"] == 3 and config["model_kwargs"]["skip"] is False


def test_segmentation_npz_with_val_and_ignore_label(seg, tmp_path):
    rng = np.random.default_rng(0)

    def scenes(n):
        masks = np.zeros((n, 12, 12), np.int64)
        for i in range(n):
            r, c = rng.integers(0, 6, 2)
            masks[i, r:r + 6, c:c + 6] = 1 + i % 2
        images = (masks[..., None] * np.array([60, 100, 30]) + rng.integers(0, 40, (n, 12, 12, 3)))
        masks[:, 0, 0] = 255  # unlabelled
        return images.astype(np.uint8), masks

    arrays = {}
    for prefix, n in (("", 32), ("val_", 8), ("test_", 8)):
        arrays[f"{prefix}images"], arrays[f"{prefix}masks"] = scenes(n)
    np.savez(tmp_path / "own.npz", **arrays)
    workdir = tmp_path / "npz"
    summary = seg.main(["--no-compile-cache", "--no-progress", "--dataset", "npz",
                        "--data", str(tmp_path / "own.npz"), "--ignore-index", "255",
                        "--depth", "1", "--base-width", "4", "--epochs", "2",
                        "--batch-size", "8", "--no-plots", "--workdir", str(workdir)])
    assert summary["class_names"] == ["0", "1", "2"] and summary["test_size"] == 8
    assert summary["monitor"] == "val_loss" and summary["best_epoch"] in (1, 2)
    # the unlabelled pixel of each test image is not counted
    assert sum(map(sum, summary["test_confusion_matrix"])) == 8 * (144 - 1)
    config = json.loads((workdir / "config.json").read_text())
    assert config["model_kwargs"]["num_classes"] == 3 and config["dims"] == 2


def usage_error(experiment, argv, capsys):
    """argparse's error for ``argv``: exit status 2, the usage line; returns stderr."""
    with pytest.raises(SystemExit) as exit_:
        experiment.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage:"), err
    return err


def test_segmentation_config_errors(seg, capsys):
    for argv, message in [
            (["--resume"], "--resume needs --workdir"),
            (["--dataset", "mnist-seg", "--dims", "3"], "--dims must be 2 for --dataset mnist"),
            (["--dataset", "npz"], "--dataset npz needs --data"),
            (["--data-dir", "x"], "unrecognized arguments: --data-dir"),
            (["--dims", "4"], "argument --dims: invalid choice: 4")]:
        assert message in usage_error(seg, argv, capsys), argv
    cfg = seg.resolve(seg.Config(dims=3, seed=2, skip=False))
    assert (cfg.size, cfg.depth, cfg.data_seed) == (16, 2, 2)
    assert cfg.workdir == "runs/segmentation/procedural3d-noskip-seed2"


def test_autoencoder_learns_beats_the_mean_and_resumes(ae, tmp_path):
    workdir = tmp_path / "ae"
    args = ["--no-compile-cache", "--no-progress", "--routes", "upsample", "--code-sizes",
            "16", "--epochs", "6", "--batch-size", "32", "--lr", "1e-2",
            "--workdir", str(workdir)]
    summary = ae.main(args)
    mse = summary["test_mse"]
    assert mse["upsample_k16"] < 0.5 * mse["mean_image"]
    assert mse["pca_k16"] < mse["mean_image"] and summary["test_psnr"]["upsample_k16"] > 15
    assert summary["mse_vs_pca"]["upsample_k16"] == mse["upsample_k16"] / mse["pca_k16"]
    assert json.loads((workdir / "result.json").read_text()) == summary
    assert is_png(workdir / "reconstructions_k16.png")
    sub = workdir / "upsample_k16"
    assert is_png(sub / "curves.png") and (sub / "metrics.jsonl").is_file()

    drop_last_checkpoint(sub)
    resumed = ae.main(args + ["--resume", "--no-plots"])
    assert resumed["test_mse"] == summary["test_mse"]


def test_autoencoder_denoising_unpool_and_latent_plot(ae, tmp_path):
    workdir = tmp_path / "dae"
    summary = ae.main(["--no-compile-cache", "--no-progress", "--routes", "unpool",
                       "--code-sizes", "2", "--noise", "0.3", "--epochs", "1",
                       "--train-limit", "256", "--batch-size", "64",
                       "--workdir", str(workdir)])
    assert set(summary["test_mse"]) == {"unpool_k2", "pca_k2", "mean_image"}
    assert summary["noise"] == 0.3 and summary["train_size"] == 256
    for name in ("reconstructions_k2.png", "latent.png"):
        assert is_png(workdir / name), name


def test_autoencoder_pca_against_a_hand_made_case(ae):
    # points on a line through (1, 1) in 2-d: one component reconstructs them exactly,
    # and an off-line point is projected onto the line
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]).reshape(3, 1, 2, 1)
    basis = ae.pca_basis(x)
    np.testing.assert_allclose(ae.pca_reconstruct(basis, x, 1), x, atol=1e-6)
    off = np.array([[2.0, 0.0]]).reshape(1, 1, 2, 1)
    np.testing.assert_allclose(ae.pca_reconstruct(basis, off, 1).ravel(), [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(ae.pca_reconstruct(basis, off, 2), off, atol=1e-6)


def test_autoencoder_config_errors(ae, capsys):
    for argv, message in [
            (["--routes", "deconv"], "argument --routes: invalid choice: 'deconv'"),
            (["--code-sizes", "16", "0"], "--code-sizes must be positive, got 16 0"),
            (["--noise", "-0.1"], "--noise must be >= 0, got -0.1"),
            (["--resume"], "--resume needs --workdir"),
            (["--ensemble", "2"], "unrecognized arguments: --ensemble 2")]:
        assert message in usage_error(ae, argv, capsys), argv
    cfg = ae.resolve(ae.Config(noise=0.25, seed=1))
    assert cfg.workdir == "runs/autoencoder/digits-noise0.25-seed1" and cfg.epochs > 0


@pytest.mark.parametrize("name", ["seg", "ae"])
def test_help_gives_every_option_a_sentence_and_its_default(name, request, capsys):
    experiment = request.getfixturevalue(name)
    options = option_lines(help_text(experiment, capsys))
    fields = {"--" + f.name.replace("_", "-") for f in dataclasses.fields(experiment.Config)}
    assert set(options) - {"--help"} == fields - {"--ensemble"}
    for flag, text in options.items():
        if flag != "--help":
            assert re.search(r"[a-z].*\. Default: [^ ].*\.$", text), (flag, text)
            assert "None" not in text, (flag, text)
    presets = experiment.PRESETS
    if name == "seg":  # the presets' real values, by data
        epochs = ", ".join(f"{k} {v['epochs']}" for k, v in presets.items())
        assert options["--epochs"].endswith(f"Default: {epochs}.")
        assert options["--n-train"].endswith(f"mnist-seg {presets['mnist-seg']['n_train']}.")
    else:
        epochs = ", ".join(f"{k} {v['epochs']}" for k, v in presets.items())
        assert options["--epochs"].endswith(f"Default: {epochs}.")
        assert options["--routes"].endswith("Default: transpose upsample unpool.")
        assert options["--code-sizes"].endswith("Default: 16 32.")
        assert " ".join(map(str, presets["digits"]["widths"])) in options["--widths"]
        # a tuple option takes one or more values
        parser = experiment._cli.parser(experiment.Config, experiment.__doc__)
        cfg = experiment._cli.parse(parser, experiment.Config,
                                    ["--code-sizes", "2", "8", "--routes", "unpool"])
        assert cfg.code_sizes == (2, 8) and cfg.routes == ("unpool",)


def test_data_errors_are_one_line(seg, ae, tmp_path, capsys):
    garbage = tmp_path / "mnist"
    garbage.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (garbage / name).write_bytes(b"not an IDX file")
    cases = [(seg, ["--dataset", "npz", "--data", str(tmp_path / "missing.npz")]),
             (seg, ["--dataset", "mnist-seg", "--data", str(garbage)]),
             (ae, ["--dataset", "mnist", "--data", str(garbage)])]
    for experiment, argv in cases:
        with pytest.raises(SystemExit) as exit_:
            experiment.main(argv + ["--no-compile-cache", "--workdir", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert exit_.value.code == 1, (argv, err)
        assert err.count("\n") == 1 and ": error: " in err and "Traceback" not in err, err
        assert err.rstrip().endswith("(--debug shows the traceback)"), err
    with pytest.raises(OSError):
        seg.main(cases[0][1] + ["--debug", "--no-compile-cache"])
