"""A run killed with SIGKILL (mid-epoch, inside a checkpoint write, at a random step) and
resumed ends bit-identical to an uninterrupted run; a half-written checkpoint is never read."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import XLA_TEST_FLAGS

from jaxcnn.train import Checkpoints

SCRIPT = Path(__file__).with_name("_resume_script.py")


def _env(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    env["XLA_FLAGS"] = XLA_TEST_FLAGS  # only the compile speed-up of conftest, no other flags
    return env


def _run(args, env, **kwargs):
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _steps(workdir):
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            pass
    return [r["step"] for r in rows if r["kind"] == "step"]


def _load(workdir):
    with np.load(workdir / "final.npz") as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The final parameters of an uninterrupted run."""
    tmp_path = tmp_path_factory.mktemp("reference")
    ref_dir = tmp_path / "reference"
    ref = _run(["--workdir", str(ref_dir)], _env(tmp_path))
    out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, out
    return _load(ref_dir)


def _kill_when(proc, ready, what):
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before {what}: " + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def _finish(run_dir, env, reference):
    resumed = _run(["--workdir", str(run_dir), "--resume"], env)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    params = _load(run_dir)
    assert len(params) == len(reference)
    for a, b in zip(params, reference):
        np.testing.assert_array_equal(a, b)  # bit-identical, not merely close
    # metrics.jsonl holds each step once: the rows replayed after the checkpoint were dropped.
    steps = _steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == 36
    result = json.loads((run_dir / "result.json").read_text())
    assert result["step"] == 36 and result["epochs_run"] == 3


def test_killed_inside_a_checkpoint_write_and_mid_epoch_resumes_bit_identical(tmp_path,
                                                                              reference):
    """First killed while checkpoint 15 is being written (its arrays written, not yet
    committed): the resumed run starts from step 12 and never reads the half-written
    folder. Then killed again mid-epoch at a step drawn at random, and resumed to the end."""
    env = _env(tmp_path)
    run_dir = tmp_path / "killed"
    ckpt_dir = run_dir / "checkpoints"
    proc = _run(["--workdir", str(run_dir), "--slow-save-step", "15"], env)
    _kill_when(proc, lambda: any(ckpt_dir.glob("15.*")), "writing checkpoint 15")
    assert not (ckpt_dir / "15").exists() and any(ckpt_dir.glob("15.*"))
    ckpts = Checkpoints(ckpt_dir)
    assert ckpts.latest_step() == 12  # the half-written 15 is not a checkpoint
    ckpts.close()

    kill_at = int(np.random.default_rng().integers(16, 34))
    proc = _run(["--workdir", str(run_dir), "--resume", "--sleep", "0.25"], env)
    _kill_when(proc, lambda: any(s >= kill_at for s in _steps(run_dir)), f"step {kill_at}")
    assert not (run_dir / "result.json").exists()
    assert kill_at <= max(_steps(run_dir)) < 36, kill_at
    _finish(run_dir, env, reference)
