"""jaxcnn.distributed and fit(mesh=...): a sharded step computes what one device computes.

The device count is fixed when JAX starts, so the mesh checks run in subprocesses:
``_distributed_mesh_script.py`` with 8 host devices (one run, its findings read by several
tests), and ``_distributed_worker.py`` as 2 processes x 2 devices joined by
``jax.distributed`` on 127.0.0.1. The references are a single-device step on the whole
(concatenated) batch and a single-device ``fit``; every process started is ended by its
PID, with bounded timeouts.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import XLA_TEST_FLAGS
from jaxcnn import distributed

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _distributed_common import batches, model_and_optimizer  # noqa: E402


def _env(devices):
    flags = f"{XLA_TEST_FLAGS} --xla_force_host_platform_device_count={devices}"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags, PYTHONPATH=path)


@pytest.fixture(scope="module")
def mesh_findings(tmp_path_factory):
    out = tmp_path_factory.mktemp("mesh")
    proc = subprocess.run([sys.executable, str(HERE / "_distributed_mesh_script.py"), str(out)],
                          env=_env(8), capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "findings.json").read_text())


def test_sharded_step_equals_single_device_step(mesh_findings):
    f = mesh_findings["step"]
    assert f["devices"] == 8 and f["per_device_batch"] == 2
    for name in ("loss", "grads", "params", "batch_norm_state", "opt_state"):
        assert f[name] < 2e-5, (name, f[name])
    assert f["params_replicated"]


def test_indivisible_batch_is_an_error(mesh_findings):
    assert len(mesh_findings["errors"]) == 3  # shard_batch, local_rows, fit
    for message in mesh_findings["errors"]:
        assert "must be a multiple of the number of devices (8), got 12" in message


def test_local_batch_equals_global_batch_on_one_process(mesh_findings):
    assert mesh_findings["local_rows"] == [0, 16]
    assert mesh_findings["local_equals_global"]


def test_fit_on_a_mesh_equals_fit_on_one_device(mesh_findings):
    f = mesh_findings["fit"]
    for loop in ("python", "scan"):
        assert f[loop]["params"] < 2e-5, f
        assert f[loop]["history"] < 2e-5, f
    assert f["test_count"] == [40, 40]


def test_fit_on_a_mesh_resumes(mesh_findings):
    f = mesh_findings["resume"]
    assert f["params"] == 0.0 and f["steps"] == [9, 9]


def test_checkpoint_restores_onto_another_device_count(mesh_findings):
    f = mesh_findings["checkpoint"]
    assert f["restored_devices"] == [4, 4] and f["equal"]
    assert f["sharded_spec"] == "P('data', None)"


def test_argument_errors():
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        distributed.replicate({}, "data")
    mesh = distributed.data_mesh()
    with pytest.raises(ValueError, match=r"must be a tuple containing 'model', got \('data',\)"):
        distributed.shard_batch({}, mesh, axis="model")
    with pytest.raises(ValueError, match="devices must be a non-empty list"):
        distributed.data_mesh([])
    with pytest.raises(ValueError, match="global_batch_size must be a positive int"):
        distributed.local_rows(0, mesh)
    with pytest.raises(ValueError, match="heartbeat_timeout_s must be a positive int"):
        distributed.initialize("127.0.0.1:1", 2, 0, heartbeat_timeout_s=0)
    with pytest.raises(ValueError, match="coordinator_address must be 'host:port'"):
        distributed.initialize("localhost", 2, 0)
    with pytest.raises(ValueError, match="num_processes must be a positive int"):
        distributed.initialize("127.0.0.1:1", 0, 0)
    with pytest.raises(ValueError, match=r"process_id must be an int in \[0, num_processes=2\)"):
        distributed.initialize("127.0.0.1:1", 2, 2)


# -- several processes ------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port, out, mode, n=2):
    worker = str(HERE / "_distributed_worker.py")
    procs = []
    for i in range(n):
        log = open(out / f"log_{i}.txt", "w")
        procs.append(subprocess.Popen([sys.executable, worker, str(port), str(n), str(i),
                                       str(out), mode], env=_env(2), stdout=log,
                                      stderr=subprocess.STDOUT))
        log.close()
    return procs


def _end(procs):
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def _launch(out, mode, *, first_port=None, timeout=240, attempts=3):
    """Runs the workers to completion; a start that fails because the coordinator's port
    is taken is retried on a fresh port. Returns ``(procs, exit_times, ports_tried)``."""
    ports = []
    for _ in range(attempts):
        ports.append(first_port if first_port and not ports else _free_port())
        procs = _start(ports[-1], out, mode)
        exits, deadline = {}, time.monotonic() + timeout
        try:
            while len(exits) < len(procs) and time.monotonic() < deadline:
                for i, p in enumerate(procs):
                    if i not in exits and p.poll() is not None:
                        exits[i] = time.monotonic()
                if 0 in exits and procs[0].returncode != 0 and \
                        "Failed to add port" in (out / "log_0.txt").read_text():
                    break  # the coordinator could not listen: try another port
                time.sleep(0.2)
        finally:
            _end(procs)
        if len(exits) == len(procs) or "Failed to add port" not in (out / "log_0.txt").read_text():
            assert len(exits) == len(procs), f"workers still running after {timeout} s"
            return procs, exits, ports
    raise AssertionError(f"no free coordinator port after {ports}")


def _logs(out):
    return "\n".join((out / f"log_{i}.txt").read_text()[-3000:] for i in range(2))


def test_two_processes_train_like_one_device(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        procs, _, ports = _launch(tmp_path, "train", first_port=taken.getsockname()[1])
    finally:
        taken.close()
    assert len(ports) == 2, ports  # the taken port failed, a fresh one worked
    assert [p.returncode for p in procs] == [0, 0], _logs(tmp_path)
    assert "devices 4, local 2" in _logs(tmp_path)
    got = [dict(np.load(tmp_path / f"params_{i}.npz")) for i in range(2)]
    assert sorted(got[0]) == sorted(got[1])
    for name in got[0]:  # every process holds bitwise the same parameters
        np.testing.assert_array_equal(got[0][name], got[1][name])
    from jaxcnn.train import create_train_state, make_train_step
    net, opt = model_and_optimizer()
    ts = create_train_state(net, opt, jax.random.key(0), (6, 6, 1))
    step = jax.jit(make_train_step(net, opt))
    for batch in batches():
        ts, _ = step(ts, batch, jax.random.key(1))
    flat = jax.tree_util.tree_flatten_with_path((ts.params, ts.state))[0]
    assert sorted(jax.tree_util.keystr(p) for p, _ in flat) == sorted(got[0])
    for path, leaf in flat:
        np.testing.assert_allclose(got[0][jax.tree_util.keystr(path)], leaf, rtol=2e-5,
                                   atol=2e-5, err_msg=jax.tree_util.keystr(path))


def test_a_dead_peer_stops_the_others(tmp_path):
    procs, exits, _ = _launch(tmp_path, "die")
    assert procs[1].returncode == 3, _logs(tmp_path)
    assert procs[0].returncode != 0, _logs(tmp_path)
    log = (tmp_path / "log_0.txt").read_text()
    assert "heartbeat timeout" in log and "Task 1" in log, log[-3000:]
    # heartbeat timeout 4 s; the rest is margin for a loaded 2-core machine
    assert exits[0] - exits[1] < 40, (exits, log[-3000:])
