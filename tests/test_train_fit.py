"""fit: learning, the run folder, early stopping, NaN handling, ensembles, scan, errors."""

import csv
import json
import struct

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxcnn as jc
from jaxcnn.train import fit
from jaxcnn.train._epoch import epoch_order, segments


def bands(n, seed):
    """3 classes: which of three horizontal bands of a 6x6 image is brightest."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6, 6, 1)).astype(np.float32)
    y = x.reshape(n, 3, 12).mean(axis=2).argmax(axis=1).astype(np.int32)
    return x, y


def conv_net():
    return jc.serial(jc.conv(4, 3, padding=1), jc.relu(), jc.flatten(), jc.dense(3))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fit") / "run"
    rows = []
    result = fit(conv_net(), optax.sgd(0.05, momentum=0.9), bands(384, 0), val=bands(64, 1),
                 test=bands(101, 2), epochs=5, batch_size=32, seed=0, workdir=workdir,
                 config={"lr": 0.05, "note": "tiny"}, checkpoint_every=5, keep_checkpoints=2,
                 log_every=4, progress=False, callback=rows.append)
    return result, workdir, rows


def test_fit_reaches_accuracy_and_fills_the_run_folder(run):
    result, workdir, rows = run
    assert result.test_metrics["accuracy"] >= 0.8
    assert result.test_metrics["count"] == 101  # partial final batch counted
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(result.history[0])
    config = json.loads((workdir / "config.json").read_text())
    assert config["lr"] == 0.05 and config["fit"]["batch_size"] == 32
    assert config["fit"]["steps_per_epoch"] == 12
    info = json.loads((workdir / "run.json").read_text())
    assert "git" in info and info["backend"] == "cpu"
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert lines == json.loads(json.dumps(rows))  # the callback sees each row written
    steps = [r["step"] for r in lines if r["kind"] == "step"]
    assert steps == sorted(set(steps)) and steps[-1] == 60
    assert all({"loss", "accuracy", "grad_norm", "examples_per_s"} <= set(r)
               for r in lines if r["kind"] == "step")
    assert sum(r["kind"] == "epoch" for r in lines) == 5
    out = json.loads((workdir / "result.json").read_text())
    assert out["test_accuracy"] == result.test_metrics["accuracy"]
    assert np.sum(out["test_confusion_matrix"]) == 101
    assert len(list((workdir / "checkpoints").iterdir())) == 2  # keep-last-N
    assert len(list((workdir / "best").iterdir())) == 1
    best = max(h["val_accuracy"] for h in result.history)
    assert out["best"] == best
    # the CSV tables hold the same numbers (float text round-trips exactly)
    epochs = _read_csv(workdir / "epochs.csv")
    assert [int(r["epoch"]) for r in epochs] == [1, 2, 3, 4, 5]
    for r, h in zip(epochs, result.history):
        assert int(r["step"]) == h["step"] and float(r["train_loss"]) == h["train_loss"]
        assert float(r["val_accuracy"]) == h["val_accuracy"]
    step_rows = [r for r in lines if r["kind"] == "step"]
    table = _read_csv(workdir / "steps.csv")
    assert [int(r["step"]) for r in table] == steps
    assert [float(r["grad_norm"]) for r in table] == [r["grad_norm"] for r in step_rows]


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_resume_refusals(run):
    _, workdir, _ = run
    data = bands(64, 0)
    with pytest.raises(ValueError, match="fit: workdir must be a new folder \\(or resume=True\\), "
                                         "got '.*'. It already holds checkpoints"):
        fit(conv_net(), optax.sgd(0.1), data, epochs=1, batch_size=32, workdir=workdir)
    with pytest.raises(ValueError, match="fit: seed must be 0 as in the checkpoint being "
                                         "resumed, got 1. A resumed run must keep"):
        fit(conv_net(), optax.sgd(0.1), data, epochs=1, batch_size=32, workdir=workdir, seed=1,
            resume=True)
    with pytest.raises(ValueError, match="fit: the model and optimizer must be those of the run "
                                         "being resumed, got arrays that differ from those in "
                                         ".*checkpoints: train_state/opt_state/0/trace/conv_0/bias"
                                         r" \(float32\[4\]\) only in the checkpoint"):
        fit(conv_net(), optax.sgd(0.1), data, epochs=1, batch_size=32, workdir=workdir,
            resume=True)
    with pytest.raises(ValueError, match="fit: workdir must be a folder when resume=True, got "
                                         "None"):
        fit(conv_net(), optax.sgd(0.1), data, epochs=1, batch_size=32, resume=True)


def test_binary_task_auc_early_stopping_and_progress_bar(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    net = jc.serial(jc.flatten(), jc.dense(1))
    # lr 0: the validation AUC (binary's default monitor) never improves after epoch 1;
    # patience 2 stops at epoch 3.
    result = fit(net, optax.sgd(0.0), (x, y), val=(x, y), test=(x, y), epochs=10, batch_size=8,
                 task="binary", early_stopping=2, workdir=tmp_path / "run", progress=True)
    out, err = capsys.readouterr()
    assert "epoch 1/10" in err and "loss=" in err  # the bar, on stderr
    assert "epoch 3: train_loss=" in err and "val_auc=" in err  # one line per epoch
    assert out == ""
    assert len(result.history) == 3 and result.history[-1]["early_stopped"]
    assert "val_auc" in result.history[0]
    out = json.loads((tmp_path / "run" / "result.json").read_text())
    assert 0.0 <= out["test_auc"] <= 1.0 and out["best_epoch"] == 1
    assert out["monitor"] == "val_auc"
    assert out["test_auc"] == result.test_metrics["auc"]


def test_keep_best_by_train_loss_without_val(tmp_path):
    x, y = bands(64, 0)
    # lr 0.05 for 2 epochs, then 5: the training loss is lowest at epoch 2 and blows up.
    opt = optax.sgd(optax.piecewise_constant_schedule(0.05, {4: 100.0}))
    result = fit(conv_net(), opt, (x, y), test=(x, y), epochs=4, batch_size=32,
                 monitor="train_loss", keep_best=True, early_stopping=2,
                 workdir=tmp_path / "run", progress=False)
    losses = [row["train_loss"] for row in result.history]
    best = int(np.argmin(losses)) + 1
    out = json.loads((tmp_path / "run" / "result.json").read_text())
    assert out["best_epoch"] == best and out["monitor"] == "train_loss" and best < 4
    assert int(result.train_state.step) == 2 * best  # the kept state, 2 steps per epoch
    with pytest.raises(ValueError, match="fit: monitor must be a train_\\* metric when no val "
                                         "set is given, got 'val_loss'"):
        fit(conv_net(), opt, (x, y), epochs=1, batch_size=32, monitor="val_loss")


def nan_after(count, lr=0.1):
    """SGD whose updates become NaN from update number ``count`` (0-based) on."""
    return optax.chain(optax.sgd(lr), optax.scale_by_schedule(
        lambda c: jnp.where(c >= count, jnp.nan, 1.0).astype(jnp.float32)))


def test_nonfinite_loss_stops_training_naming_the_step(tmp_path):
    x, y = bands(32, 0)
    net = jc.serial(jc.flatten(), jc.dense(3))
    # 4 steps per epoch; update 6 (0-based 5) makes the params NaN, so the loss of step 7 is.
    with pytest.raises(FloatingPointError, match=r"fit: the training loss at step 7 \(epoch 2\) "
                       r"must be finite, got NaN or inf. Training stopped; the last good "
                       r"checkpoint is step 4 in .*checkpoints \(resume=True continues from it\). "
                       r"Lower the learning rate"):
        fit(net, nan_after(5), (x, y), epochs=3, batch_size=8, workdir=tmp_path / "a",
            log_every=1, progress=False)
    rows = [json.loads(r) for r in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1] == {"kind": "error", "step": 7, "error": "the training loss not finite"}
    # Parameters are checked before every checkpoint: NaN params are never saved.
    with pytest.raises(FloatingPointError, match=r"fit: the parameters after the update at step 4"
                       r" \(epoch 1\) must be finite, got NaN or inf. Training stopped; the last "
                       r"good checkpoint is step 2"):
        fit(net, nan_after(3), (x, y), epochs=3, batch_size=8, workdir=tmp_path / "b",
            checkpoint_every=2, log_every=10, progress=False)
    with pytest.raises(FloatingPointError, match=r"at step 4 .*no checkpoints were written "
                                                 r"\(workdir=None\)"):
        fit(net, nan_after(3), (x, y), epochs=3, batch_size=8, log_every=1, progress=False)


def test_ensemble_and_scan_loop():
    x, y = bands(64, 0)
    net = jc.serial(jc.flatten(), jc.dropout(0.1), jc.dense(3))
    kw = dict(epochs=2, batch_size=16, progress=False, checkpoint_every=3)
    result = fit(net, optax.sgd(0.1), (x, y), val=(x[:20], y[:20]), test=(x, y), ensemble=2,
                 **kw)
    assert jax.tree.leaves(result.train_state.params)[0].shape[0] == 2
    assert len(result.test_metrics["member_accuracy"]) == 2
    assert len(result.history[-1]["val_member_loss"]) == 2
    # The scan loop runs the same steps (split at checkpoint boundaries) as the Python loop.
    loop = fit(net, optax.sgd(0.1), (x, y), epoch_loop="python", **kw)
    scan = fit(net, optax.sgd(0.1), (x, y), epoch_loop="scan", **kw)
    for a, b in zip(jax.tree.leaves(loop.train_state), jax.tree.leaves(scan.train_state)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fit_argument_errors():
    x, y = bands(16, 0)
    net, opt = jc.serial(jc.flatten(), jc.dense(3)), optax.sgd(0.1)
    cases = [
        (dict(train=[x]), TypeError, r"fit: train must be a pair \(x, y\) of arrays, got 'list'"),
        (dict(train=(x, y[:3])), ValueError,
         r"fit: train sizes must be equal and non-zero: len\(x\) == len\(y\) > 0, got \(16, 3\)"),
        (dict(epochs=0), ValueError, "fit: epochs must be a positive int, got 0"),
        (dict(batch_size=32), ValueError,
         r"fit: batch_size must be at most the number of training examples \(16\), got 32"),
        (dict(checkpoint_every=0), ValueError,
         "fit: checkpoint_every must be a positive int or None, got 0"),
        (dict(seed=1.5), TypeError, "fit: seed must be an int, got 1.5"),
        (dict(early_stopping=2), ValueError,
         "fit: early_stopping must be None without a validation set, got 2. Pass val="),
        (dict(callback=3), TypeError, r"fit: callback must be None or a function callback\(row\)"),
        (dict(epoch_loop="while"), ValueError,
         "fit: epoch_loop must be one of 'auto', 'python', 'scan', got 'while'"),
        (dict(model=jc.relu), TypeError, "fit: model must be a jaxcnn Layer"),
        (dict(progress="yes"), TypeError,
         r"fit: progress must be None \(a bar on a terminal\), True or False, got 'yes'"),
        (dict(loggers="tensorboard"), TypeError, "fit: loggers must be a list or tuple"),
        (dict(loggers=["wandb"]), ValueError, r"fit: a logger name must be 'tensorboard', got "
                                              r"'wandb'. Pass a function logger\(row\)"),
        (dict(loggers=["tensorboard"]), ValueError, r"fit: workdir must be a folder for "
                                                    r"loggers=\['tensorboard'\], got None"),
        (dict(loggers=[3]), TypeError,
         r"fit: each logger must be 'tensorboard' or a function logger\(row\), got 'int'"),
    ]
    for kwargs, exc, message in cases:
        args = dict(model=net, optimizer=opt, train=(x, y), epochs=1, batch_size=8,
                    progress=False)
        args.update(kwargs)
        with pytest.raises(exc, match=message):
            fit(**args)


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    a = epoch_order(3, 1, 10, 4)
    np.testing.assert_array_equal(a, epoch_order(3, 1, 10, 4))
    assert a.shape == (2, 4) and len(set(a.ravel())) == 8
    assert not np.array_equal(a, epoch_order(3, 2, 10, 4))
    assert not np.array_equal(a, epoch_order(4, 1, 10, 4))


def test_segments_split_at_checkpoint_boundaries():
    assert segments(0, 12, 0, None) == [(0, 12)]
    assert segments(0, 12, 0, 5) == [(0, 5), (5, 10), (10, 12)]
    assert segments(0, 12, 12, 5) == [(0, 3), (3, 8), (8, 12)]  # global steps 15 and 20
    assert segments(3, 12, 15, 5) == [(3, 8), (8, 12)]


def test_without_a_terminal_each_epoch_is_one_line_on_stderr(capsys):
    """In a log file (stderr not a terminal, as under capsys) and with progress=False:
    no bar frames, one line per epoch; stdout stays for the program's own output."""
    x, y = bands(32, 0)
    for progress in (None, False):
        fit(jc.serial(jc.flatten(), jc.dense(3)), optax.sgd(0.1), (x, y), epochs=2,
            batch_size=16, progress=progress)
        out, err = capsys.readouterr()
        assert out == "" and "\r" not in err and "step/s" not in err, progress
        lines = [line for line in err.splitlines() if line.startswith("epoch")]
        assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"]
        assert all("train_loss=" in line and "train_accuracy=" in line for line in lines)


def read_events(folder):
    """``{(run, tag): [(step, value), ...]}`` from TensorBoard event files, read as the
    TFRecord format defines them: a little-endian uint64 length, its CRC (uint32), the
    serialized ``Event``, its CRC."""
    from tensorboardX.proto.event_pb2 import Event

    out = {}
    for path in sorted(folder.glob("*/events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for value in event.summary.value:
                out.setdefault((path.parent.name, value.tag), []).append(
                    (event.step, value.simple_value))
    return out


def test_tensorboard_event_files_hold_the_logged_rows(tmp_path):
    pytest.importorskip("tensorboardX")
    rows = []
    result = fit(conv_net(), optax.sgd(0.05), bands(64, 0), val=bands(32, 1), epochs=2,
                 batch_size=16, log_every=2, workdir=tmp_path / "run", progress=False,
                 loggers=["tensorboard", rows.append])
    events = read_events(tmp_path / "run" / "tensorboard")
    for run, key in (("train", "train_loss"), ("val", "val_loss"), ("val", "val_accuracy")):
        tag = "epoch/" + key.split("_", 1)[1]
        assert events[run, tag] == [(h["step"], pytest.approx(h[key], rel=1e-6))
                                    for h in result.history], (run, tag)
    steps = [r for r in rows if r["kind"] == "step"]
    assert [s for s, _ in events["train", "step/loss"]] == [r["step"] for r in steps] == [
        2, 4, 6, 8]
    assert [v for _, v in events["train", "step/grad_norm"]] == [
        pytest.approx(r["grad_norm"], rel=1e-6) for r in steps]
    # a function logger gets each row of metrics.jsonl, as the callback does
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text()
             .splitlines()]
    assert lines == json.loads(json.dumps(rows))
