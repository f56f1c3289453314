"""A run killed with SIGKILL mid-epoch and resumed ends bit-identical to an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import XLA_TEST_FLAGS

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


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    env = _env(tmp_path)
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "killed"
    ref = _run(["--workdir", str(ref_dir)], env)
    out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, out

    # Steps: 12 per epoch; checkpoints every 5 steps and at epoch ends. Kill in epoch 2
    # after step 17 was logged (the newest complete checkpoint is then step 15 or 16...).
    proc = _run(["--workdir", str(run_dir), "--sleep", "0.25"], env)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(s >= 17 for s in _steps(run_dir)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stdout.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "result.json").exists()
    killed_at = max(_steps(run_dir))
    assert 17 <= killed_at < 24  # mid-epoch 2

    resumed = _run(["--workdir", str(run_dir), "--resume"], env)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out

    ref_params, params = _load(ref_dir), _load(run_dir)
    assert len(params) == len(ref_params)
    for a, b in zip(params, ref_params):
        np.testing.assert_array_equal(a, b)  # bit-identical, not merely close
    # metrics.jsonl holds each step once: the rows replayed after the checkpoint were dropped.
    steps = _steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == 36
    result = json.loads((run_dir / "result.json").read_text())
    assert result["step"] == 36 and result["epochs_run"] == 3
