"""The experiments' command line (experiments/_cli.py): ``--help`` with a sentence and the real
default of every option, one spelling per flag, the same shared flags everywhere, argparse's
errors for bad options, one line for a data error (``--debug``: the traceback), and a run
joined through the multi-process flags on a data-parallel mesh."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import XLA_TEST_FLAGS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import _cli  # noqa: E402
from _experiment_help import help_text, option_lines  # noqa: E402
import image_classification  # noqa: E402
import mnist1d_classification  # noqa: E402
import ucr_classification  # noqa: E402
import voxel_classification  # noqa: E402

EXPERIMENTS = [image_classification, mnist1d_classification, ucr_classification,
               voxel_classification]
SHARED = ["--seed", "--ensemble", "--workdir", "--resume", "--no-resume", "--plots",
          "--no-plots", "--progress", "--no-progress", "--tensorboard", "--no-tensorboard",
          "--compile-cache", "--no-compile-cache",
          "--debug", "--coordinator-address", "--num-processes", "--process-id",
          "--distributed", "--data-parallel", "--no-data-parallel"]


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda m: m.__name__)
def test_help_has_a_sentence_and_the_default_of_every_option(experiment, capsys):
    options = option_lines(help_text(experiment, capsys))
    flags = {f for f in options if f != "--help"}
    fields = {"--" + f.name.replace("_", "-") for f in experiment.dataclasses.fields(
        experiment.Config)}
    assert flags == fields  # one spelling per field: dashes
    for flag in flags:
        assert re.search(r"[a-z]\w*.*\. Default: [^ ].*\.$", options[flag]), (flag, options[flag])
        assert "Default: None" not in options[flag], flag
        assert "None" not in options[flag].split("Default")[0], flag  # no None in choices
    usage = " ".join(help_text(experiment, capsys).split())
    assert all(flag in usage for flag in SHARED)  # the same shared flags everywhere


def test_help_shows_the_presets(capsys):
    options = option_lines(help_text(image_classification, capsys))
    assert "Default: digits 30, mnist 10, cifar10 100, folder 30, npz 30." in options["--epochs"]
    assert "Default: digits 0.002, mnist 0.002, cifar10 0.1," in options["--lr"]
    assert "Default: digits 64, mnist 128," in options["--batch-size"]
    assert options["--optimizer"].startswith("{adamw,sgd} adamw (AdamW)")
    ucr = option_lines(help_text(ucr_classification, capsys))
    assert "Default: min(16, training series // 10)." in ucr["--batch-size"]
    assert "Default: 2000." in ucr["--epochs"]


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet9000"], "argument --model: invalid choice: 'resnet9000'"),
    (["--resume"], "--resume needs --workdir"),
    (["--data_dir", "x"], "unrecognized arguments: --data_dir"),
    (["--dataset", "npz"], "--dataset npz needs --data"),
    (["--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
    (["--num-processes", "2", "--process-id", "0"], "need --coordinator-address"),
])
def test_bad_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        image_classification.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage:") and message in err, err


def test_other_experiments_refuse_like_argparse(capsys):
    for experiment, argv, message in [
            (voxel_classification, ["--dataset", "off"], "--dataset off needs --data"),
            (ucr_classification, ["--model", "lenet5"], "invalid choice: 'lenet5'"),
            (mnist1d_classification, ["--resume"], "--resume needs --workdir")]:
        with pytest.raises(SystemExit) as exit_:
            experiment.main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.startswith("usage:") and message in err, err


def data_error_cases(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not an npz file")
    no_keys = tmp_path / "no_keys.npz"
    import numpy as np
    np.savez(no_keys, images=np.zeros((2, 4, 4, 4), np.uint8))
    return [
        (image_classification, ["--dataset", "npz", "--data", str(tmp_path / "missing.npz")]),
        (image_classification, ["--dataset", "npz", "--data", str(garbage)]),
        (image_classification, ["--dataset", "mnist", "--data", str(tmp_path)]),
        (voxel_classification, ["--dataset", "npz", "--data", str(no_keys)]),
        (ucr_classification, ["--name", "Nowhere", "--data", str(tmp_path)]),
    ]


def test_data_errors_are_one_line(tmp_path, capsys):
    for experiment, argv in data_error_cases(tmp_path):
        with pytest.raises(SystemExit) as exit_:
            experiment.main(argv + ["--no-compile-cache", "--workdir", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert exit_.value.code == 1, (argv, err)
        assert err.count("\n") == 1 and ": error: " in err and "Traceback" not in err, err
        assert err.rstrip().endswith("(--debug shows the traceback)"), err


def test_debug_raises_the_error(tmp_path):
    experiment, argv = data_error_cases(tmp_path)[0]
    with pytest.raises(OSError):
        experiment.main(argv + ["--debug", "--no-compile-cache"])


def test_one_line_joins_the_lines_of_a_message():
    message = ValueError("f: x must be y\n  a: 1\n\n  b: 2")
    assert _cli.one_line(message) == "f: x must be y; a: 1; b: 2"
    assert _cli.one_line(OSError()) == "OSError"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_process_flags_train_on_the_mesh(tmp_path):
    # MNIST-1D end to end as one process of a coordinated run (jax.distributed on 127.0.0.1)
    # with two host devices: the experiment joins the run, trains data-parallel through
    # fit(mesh=...) and writes its run folder.
    flags = f"{XLA_TEST_FLAGS} --xla_force_host_platform_device_count=2"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "mnist1d_classification.py"),
         "--coordinator-address", f"127.0.0.1:{_free_port()}", "--num-processes", "1",
         "--process-id", "0", "--num-samples", "40", "--epochs", "1", "--batch-size", "16",
         "--workdir", str(workdir), "--no-plots", "--no-progress", "--no-compile-cache"],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads((workdir / "result.json").read_text())
    assert (result["devices"], result["processes"]) == (2, 1)
    assert result["dataset"] == "mnist1d" and result["train_size"] == 32
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["step"] == 2
    config = json.loads((workdir / "config.json").read_text())
    assert (config["model"], config["lr"], config["workdir"]) == ("mnist1d_cnn", 3e-3,
                                                                  str(workdir))


def test_an_experiment_may_leave_out_a_shared_option(capsys):
    parser = _cli.parser(image_classification.Config, image_classification.__doc__,
                         without=("ensemble",))
    assert "--ensemble" not in parser.format_help()
    assert _cli.parse(parser, image_classification.Config, ["--seed", "3"]).ensemble == 1
    with pytest.raises(SystemExit):
        _cli.parse(parser, image_classification.Config, ["--ensemble", "2"])
    assert "unrecognized arguments: --ensemble 2" in capsys.readouterr().err


def test_each_zoo_classifier_is_offered_by_its_experiment():
    import typing

    from jaxcnn.models import list_models

    def offered(experiment):
        hint = typing.get_type_hints(experiment.Config)["model"]
        return {a for arg in typing.get_args(hint) for a in (typing.get_args(arg) or (arg,))}

    series, voxels = offered(ucr_classification), offered(voxel_classification)
    assert offered(mnist1d_classification) == series
    images = offered(image_classification) - {type(None)}
    assert images | series | voxels | {"unet"} == set(list_models())
    assert not images & (series | voxels)
