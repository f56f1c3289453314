"""Faults around a training run: a run folder that cannot hold it, a folder from another
run, a loss that becomes NaN, a metrics line cut short by a kill."""

import csv
import functools
import json
import re
import shutil

import jax
import numpy as np
import optax
import pytest

import jaxcnn as jc
from jaxcnn.train import Checkpoints, create_train_state, fit, softmax_cross_entropy
from jaxcnn.train._loop import loss_name
from jaxcnn.train._run import read_jsonl

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int32)


def _fit(workdir, net=None, opt=None, **kw):
    kw = {"epochs": 2, "batch_size": 8, "progress": False, "checkpoint_every": 2, **kw}
    return fit(net or jc.serial(jc.dense(2)), opt or optax.sgd(0.1), (X, Y), workdir=workdir,
               **kw)


def test_a_workdir_that_cannot_be_created_is_refused_at_start(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match=r"fit: workdir must be a folder this process can create "
                       r"and write, got '.*file/run' \((NotADirectoryError|FileExistsError)"):
        _fit(tmp_path / "file" / "run")


def test_a_full_disk_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 1000))
    with pytest.raises(ValueError, match=r"fit: the free space under workdir must be at least "
                       r"1\.0 MB \(5 checkpoints of 0\.0 MB\), got 0\.0 MB in .*run\. Free some "
                       r"space, choose another workdir or keep fewer checkpoints"):
        _fit(tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before anything ran


def test_resuming_with_another_model_names_the_arrays_that_differ(tmp_path):
    _fit(tmp_path / "run", epochs=1)
    with pytest.raises(ValueError, match=re.escape(
            "fit: the model and optimizer must be those of the run being resumed, got arrays "
            "that differ from those in ") + r".*checkpoints: "
            r"train_state/params/dense_0/bias: float32\[2\] in the "
            r"checkpoint, float32\[3\] now; train_state/params/dense_0/kernel: "
            r"float32\[4, 2\] in the checkpoint, float32\[4, 3\] now\. Resume with the same"):
        _fit(tmp_path / "run", net=jc.serial(jc.dense(3)), resume=True)
    with pytest.raises(ValueError, match=r"train_state/params/dense_1/kernel \(float32\[2, 2\]\) "
                       r"not in the checkpoint"):
        _fit(tmp_path / "run", net=jc.serial(jc.dense(2), jc.dense(2)), resume=True)
    with pytest.raises(ValueError, match=r"train_state/opt_state/0/trace/dense_0/bias "
                       r"\(float32\[2\]\) not in the checkpoint"):
        _fit(tmp_path / "run", opt=optax.sgd(0.1, momentum=0.9), resume=True)


def test_resuming_with_other_data_or_settings_names_them(tmp_path):
    _fit(tmp_path / "run", epochs=1)
    with pytest.raises(ValueError, match=r"fit: the settings of a resumed run must be those in "
                       r".*config\.json, got label_smoothing=0\.0 there, 0\.1 now\. Resume with "
                       r"the same data and settings"):
        _fit(tmp_path / "run", resume=True, label_smoothing=0.1)
    with pytest.raises(ValueError, match=r"train_size=32 there, 24 now"):
        fit(jc.serial(jc.dense(2)), optax.sgd(0.1), (X[:24], Y[:24]), epochs=2, batch_size=8,
            workdir=tmp_path / "run", resume=True, progress=False)
    _fit(tmp_path / "run", resume=True)  # the same settings (more epochs) resume


def _focal(logits, labels, mask):  # a named loss other than the lambdas below
    return softmax_cross_entropy(logits, labels, mask=mask) * 2.0


class _Loss:
    def __call__(self, logits, labels, mask):
        return softmax_cross_entropy(logits, labels, mask=mask)


def test_a_callable_loss_is_compared_by_its_name_on_resume(tmp_path):
    """A lambda's repr holds its address, which differs in every process: the name is
    compared, so a lambda loss resumes and another function is refused, named."""
    _fit(tmp_path / "run", epochs=1,
         loss=lambda logits, labels, mask: softmax_cross_entropy(logits, labels, mask=mask))
    _fit(tmp_path / "run", resume=True,  # a new function object with the same name
         loss=lambda logits, labels, mask: softmax_cross_entropy(logits, labels, mask=mask))
    with pytest.raises(ValueError, match=r"fit: the settings of a resumed run must be those in "
                       r".*config\.json, got loss='[\w.<>]*\.<lambda>' there, "
                       r"'[\w.]*\._focal' now\. Resume with the same data and settings"):
        _fit(tmp_path / "run", resume=True, epochs=3, loss=_focal)
    assert loss_name(functools.partial(_focal, labels=None)) == loss_name(_focal)
    assert loss_name(_Loss()) == f"{__name__}._Loss"
    assert loss_name("mse") == "mse" and loss_name(None) is None


def test_a_nan_loss_stops_naming_the_step_and_resume_restarts_from_the_last_good_one(tmp_path):
    bad = X.copy()
    bad[20] = np.nan  # in the batch of a step of the second epoch, whichever order
    with pytest.raises(FloatingPointError, match=r"fit: the training loss at step (\d+) \(epoch "
                       r"\d\) must be finite, got NaN or inf\. Training stopped; the last good "
                       r"checkpoint is step"):
        fit(jc.serial(jc.dense(2)), optax.sgd(0.1), (bad, Y), epochs=3, batch_size=8,
            workdir=tmp_path / "run", progress=False, checkpoint_every=1, log_every=1)
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    failed_at = [r["step"] for r in rows if r["kind"] == "error"][0]
    ckpts = Checkpoints(tmp_path / "run" / "checkpoints")
    last_good = ckpts.latest_step()
    ts = create_train_state(jc.serial(jc.dense(2)), optax.sgd(0.1), jax.random.key(0), (4,))
    saved = ckpts.restore({"train_state": ts, "key": jax.random.key_data(jax.random.key(0))})
    ckpts.close()
    assert last_good == failed_at - 1
    assert all(np.isfinite(a).all() for a in jax.tree.leaves(saved[0]["train_state"].params))
    # fixed data, --resume: restarts from the last good checkpoint and finishes
    result = fit(jc.serial(jc.dense(2)), optax.sgd(0.1), (X, Y), epochs=3, batch_size=8,
                 workdir=tmp_path / "run", resume=True, progress=False, checkpoint_every=1,
                 log_every=1)
    steps = [r["step"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")
             if r["kind"] == "step"]
    assert steps == list(range(1, 13)) and result.history[-1]["step"] == 12


def test_a_metrics_line_cut_by_a_kill_is_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + '{"step": 2, "lo')
    assert read_jsonl(path) == [{"step": 1}]


class _Killed(Exception):
    pass


def test_a_run_resumed_mid_epoch_has_the_history_of_an_uninterrupted_run(tmp_path):
    # 4 steps per epoch, checkpoints every 2 steps: stopped at step 7, the run resumes
    # from step 6, inside epoch 2 (its training sums come from the checkpoint) and
    # starts epoch 3 with sums of its own.
    kw = dict(epochs=3, checkpoint_every=2, log_every=1)
    whole = _fit(tmp_path / "whole", **kw)

    def kill_at_step_7(row):
        if row["kind"] == "step" and row["step"] == 7:
            raise _Killed

    with pytest.raises(_Killed):
        _fit(tmp_path / "cut", callback=kill_at_step_7, **kw)
    resumed = _fit(tmp_path / "cut", resume=True, **kw)
    timing = ("epoch_time", "examples_per_s")
    assert ([{k: v for k, v in row.items() if k not in timing} for row in resumed.history]
            == [{k: v for k, v in row.items() if k not in timing} for row in whole.history])
    steps = [r["step"] for r in read_jsonl(tmp_path / "cut" / "metrics.jsonl")
             if r["kind"] == "step"]
    assert steps == list(range(1, 13))
    with open(tmp_path / "cut" / "steps.csv", newline="") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == steps  # each step once
