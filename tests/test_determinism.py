"""The same seed gives bit-identical metrics and train states twice in one process. XLA's
CPU results at the test's sizes do not depend on the number of host threads (a process
pinned to one CPU gives the same bits); oneDNN's convolution passes are bit-identical run
to run with a fixed number of threads, and agree to rounding across thread counts.

What this does not promise (measured, see the README): with larger layers XLA's CPU
results and oneDNN's change in the last bits with the number of threads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _determinism_script import run
from conftest import XLA_TEST_FLAGS

from jaxcnn import ops
from jaxcnn.ops import _native

SCRIPT = Path(__file__).with_name("_determinism_script.py")


def _same(a, b):
    (hist_a, leaves_a), (hist_b, leaves_b) = a, b
    assert hist_a == hist_b  # floats compared exactly
    assert len(leaves_a) == len(leaves_b)
    for u, v in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(u, v)


def test_same_seed_same_bits_twice_in_a_process():
    """The default lowering: oneDNN for the convolutions where it is built."""
    first = run(seed=0)
    assert len(first[0]) == 2 and all(np.isfinite(r["train_loss"]) for r in first[0])
    _same(run(seed=0), first)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to compare with 1")
def test_one_host_thread_gives_the_same_bits_without_onednn(tmp_path, monkeypatch):
    """The run pinned to one CPU starts first, so the two overlap."""
    monkeypatch.setenv(_native.ENV_VAR, "0")
    out = tmp_path / "one_cpu.npz"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=XLA_TEST_FLAGS)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(out), "--cpus", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    here = run(seed=0)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log[-3000:]
    with np.load(out) as f:
        history = json.loads(str(f["history"]))
        leaves = [f[f"leaf_{i}"] for i in range(len(f.files) - 1)]
    _same((history, leaves), here)


@pytest.mark.skipif(not _native.available(), reason="the oneDNN extension is not built")
def test_onednn_passes_repeat_bit_identically_and_agree_across_thread_counts():
    """Forward, input gradient and kernel gradient (which reduces over the batch, split
    across threads) on a shape where oneDNN uses every thread."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 12, 12, 8)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 8, 16)), jnp.float32)
    f = jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(jnp.sin(ops.conv(x, w, padding=1))),
                                   (0, 1)))
    assert "jaxcnn_dnnl_conv" in f.lower(x, w).as_text()
    first = jax.tree.leaves(jax.device_get(f(x, w)))
    for _ in range(3):
        for a, b in zip(jax.tree.leaves(jax.device_get(f(x, w))), first):
            np.testing.assert_array_equal(a, b)
    old = _native.set_threads(1)
    try:
        one = jax.tree.leaves(jax.device_get(f(x, w)))
    finally:
        _native.set_threads(old)
    for a, b in zip(one, first):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.max(np.abs(b)))
