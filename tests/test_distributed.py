"""jaxcnn.distributed and fit(mesh=...): a sharded step computes what one device computes.

The device count is fixed when JAX starts, so the mesh checks run in subprocesses:
``_distributed_mesh_script.py`` with 8 host devices (one run, its findings read by several
tests), and ``_distributed_worker.py`` as 2 processes x 2 devices joined by
``jax.distributed`` on 127.0.0.1 (two launches: a run that trains, fits, and is then killed
with SIGKILL; the run that resumes it). The references are a single-device step on the
whole (concatenated) batch, a single-device ``fit`` and an uninterrupted run; every process
started is ended by its PID, with bounded timeouts. Each subprocess run happens once per
test session, also when pytest-xdist spreads these tests over several workers.
"""

import fcntl
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
from jaxcnn import _host_threads, distributed

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _distributed_common import model_and_optimizer  # noqa: E402


def _env(devices):
    flags = f"{XLA_TEST_FLAGS} --xla_force_host_platform_device_count={devices}"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags, PYTHONPATH=path)


def _cache(tmp_path_factory):
    """A compilation-cache folder for the subprocesses, one per session."""
    xdist = "PYTEST_XDIST_WORKER" in os.environ
    return str(tmp_path_factory.getbasetemp().parent / "xla_cache" if xdist
               else tmp_path_factory.getbasetemp() / "xla_cache")


def _once(tmp_path_factory, name, make):
    """``make(folder)`` (a JSON-ready result) run once per session: pytest-xdist workers
    share the session's temporary root, so the first takes a lock and runs it, and the
    others read its result."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / f"{name}.json"
        if not done.exists():
            folder = root / name
            folder.mkdir(exist_ok=True)
            done.write_text(json.dumps(make(folder)))
        return json.loads(done.read_text())


@pytest.fixture(scope="module")
def mesh_findings(tmp_path_factory):
    def run(out):
        proc = subprocess.run([sys.executable, str(HERE / "_distributed_mesh_script.py"),
                               str(out), _cache(tmp_path_factory)], env=_env(8),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return json.loads((out / "findings.json").read_text())

    return _once(tmp_path_factory, "mesh", run)


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
    assert f["test_count"] == 40


def test_fit_on_a_mesh_resumes(mesh_findings):
    f = mesh_findings["fit"]["resume"]
    assert f["params"] == 0.0 and f["history"] == 0.0 and f["steps"] == [6, 6]


def test_checkpoint_restores_onto_another_device_count(mesh_findings):
    f = mesh_findings["checkpoint"]  # saved from 8 devices (replicated and split rows)
    for devices, restored in zip((4, 2, 1), f["restored"]):
        assert restored["devices"] == [devices, devices], f
        assert restored["equal"], f
    assert [r["sharded_spec"] for r in f["restored"][:2]] == ["P('data', None)"] * 2


def test_ensemble_members_split_over_devices_equal_one_device(mesh_findings):
    f = mesh_findings["ensemble"]
    assert f["spec"].startswith("P('members'") and f["per_device"] == 2, f
    assert f["steps"] == [2] * 16
    for name in ("loss", "params", "state"):
        assert f[name] < 2e-5, (name, f[name])
    assert f["errors"] == [
        "jaxcnn.distributed.shard_members: member count must be a multiple of the number of "
        "devices (8), got 12. Use a member count divisible by 8, e.g. 8",
        "ensemble_step: the number of members must be a multiple of the mesh's 'members' axis "
        "(8), got 12. Use a member count divisible by it"]


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
    with pytest.raises(ValueError, match="every leaf must be an array with a leading member"):
        distributed.shard_members({"w": np.zeros(())}, distributed.member_mesh())
    from jaxcnn.train import make_ensemble_train_step
    net, opt = model_and_optimizer()
    with pytest.raises(ValueError, match=r"mesh axes must be a tuple containing 'members'"):
        make_ensemble_train_step(net, opt, mesh=mesh)


# -- host devices sharing a small CPU ---------------------------------------------------


def test_thread_pool_for_host_devices_decisions():
    flag = {"XLA_FLAGS": "--xla_backend_optimization_level=0 "
                         "--xla_force_host_platform_device_count=8"}
    assert _host_threads.decide(flag, 2, False) == ("16", "PJRT_NPROC=16 for 8 devices on 2 cores")
    assert _host_threads.decide({"JAX_NUM_CPU_DEVICES": "2", **flag}, 2, False)[0] == "4"
    assert _host_threads.decide({}, 2, False) == (None, "one CPU device requested")
    assert _host_threads.decide(flag, 16, False) == (None, "16 cores are enough for 8 devices")
    assert _host_threads.decide({**flag, "NPROC": "3"}, 2, False)[0] is None
    assert _host_threads.decide({**flag, "JAXCNN_HOST_THREADS": "off"}, 2, False) == (
        None, "$JAXCNN_HOST_THREADS turns it off")
    assert _host_threads.decide(flag, 2, True) == (
        None, "JAX's CPU backend started before import jaxcnn")


def test_run_ahead_limit_follows_the_pool_size(monkeypatch):
    monkeypatch.delenv("NPROC", raising=False)
    monkeypatch.setenv("PJRT_NPROC", "2")
    assert _host_threads.run_ahead_limit(2) == _host_threads.SAFE_RUN_AHEAD == 16
    monkeypatch.setenv("PJRT_NPROC", "4")
    assert _host_threads.run_ahead_limit(2) is None
    assert _host_threads.run_ahead_limit(1) is None
    assert distributed.Placement(distributed.data_mesh(), 4, "test").run_ahead is None


@pytest.fixture(scope="module")
def host_threads():
    """The 2-host-device run of _host_threads_script.py (XLA's pool left to jaxcnn)."""
    env = {k: v for k, v in _env(2).items()
           if k not in _host_threads.POOL_VARS and k != _host_threads.ENV_VAR}
    proc = subprocess.run([sys.executable, str(HERE / "_host_threads_script.py")], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_many_sharded_steps_in_flight_on_two_host_devices(host_threads):
    small = _host_threads.cores() < 4  # else XLA's default pool is large enough
    status = host_threads["status"][1]
    assert status.startswith("PJRT_NPROC=4 for 2 devices" if small else "4 cores"), status
    f = host_threads["steps"]
    assert host_threads["devices"] == 2 and f["steps"] == 40
    for name in ("loss", "params", "state"):
        assert f[name] < 2e-5, (name, f)


def test_fit_waits_every_16_steps_when_the_pool_is_small(host_threads):
    f = host_threads["fit"]
    assert f["run_ahead"] == 16 and f["steps"] == 40
    assert f["params"] < 2e-5 and f["loss"] < 2e-5, f


# -- several processes ------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(port, out, mode, cache, n=2):
    worker = str(HERE / "_distributed_worker.py")
    procs = []
    for i in range(n):
        log = open(out / f"{mode}_log_{i}.txt", "w")
        procs.append(subprocess.Popen([sys.executable, worker, str(port), str(n), str(i),
                                       str(out), mode, cache], env=_env(2), stdout=log,
                                      stderr=subprocess.STDOUT))
        log.close()
    return procs


def _end(procs):
    for p in procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)


def _port_taken(out, mode):
    return "Failed to add port" in (out / f"{mode}_log_0.txt").read_text()


def _launch(out, mode, cache, *, first_port=None, timeout=240, attempts=3):
    """Runs the workers to completion; a start that fails because the coordinator's port
    is taken is retried on a fresh port. Returns ``(return codes, exit times, ports)``."""
    ports = []
    for _ in range(attempts):
        ports.append(first_port if first_port and not ports else _free_port())
        procs = _start(ports[-1], out, mode, cache)
        exits, deadline = {}, time.monotonic() + timeout
        try:
            while len(exits) < len(procs) and time.monotonic() < deadline:
                for i, p in enumerate(procs):
                    if i not in exits and p.poll() is not None:
                        exits[i] = time.monotonic()
                if 0 in exits and procs[0].returncode != 0 and _port_taken(out, mode):
                    break  # the coordinator could not listen: try another port
                time.sleep(0.1)
        finally:
            _end(procs)
        if len(exits) == len(procs) or not _port_taken(out, mode):
            assert len(exits) == len(procs), f"workers still running after {timeout} s"
            return [p.returncode for p in procs], [exits[i] for i in range(len(procs))], ports
    raise AssertionError(f"no free coordinator port after {ports}")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    cache = _cache(tmp_path_factory)

    def run(out):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            codes, exits, ports = _launch(out, "train", cache, first_port=taken.getsockname()[1])
        finally:
            taken.close()
        resumed_codes, _, _ = _launch(out, "resume", cache)
        return dict(codes=codes, exit_gap=exits[0] - exits[1], ports=ports,
                    resumed_codes=resumed_codes, out=str(out))

    return _once(tmp_path_factory, "two_processes", run)


def _logs(run, mode="train"):
    return "\n".join((Path(run["out"]) / f"{mode}_log_{i}.txt").read_text()[-3000:]
                     for i in range(2))


def test_two_processes_train_like_one_device(two_processes, mesh_findings):
    run, out = two_processes, Path(two_processes["out"])
    assert len(run["ports"]) == 2, run["ports"]  # the taken port failed, a fresh one worked
    assert "devices 4, local 2" in _logs(run), _logs(run)
    got = [dict(np.load(out / f"params_{i}.npz")) for i in range(2)]
    assert sorted(got[0]) == sorted(got[1])
    for name in got[0]:  # every process holds bitwise the same parameters
        np.testing.assert_array_equal(got[0][name], got[1][name])
    reference = mesh_findings["step"]["reference"]  # the same steps on one device
    assert sorted(reference) == sorted(got[0])
    for name, value in reference.items():
        np.testing.assert_allclose(got[0][name], value, rtol=2e-5, atol=2e-5, err_msg=name)


def test_a_dead_peer_stops_the_others(two_processes):
    run = two_processes  # process 1 killed itself (SIGKILL) in the middle of fit
    assert run["codes"][1] == -signal.SIGKILL, _logs(run)
    assert run["codes"][0] != 0, _logs(run)
    log = (Path(run["out"]) / "train_log_0.txt").read_text()
    assert "heartbeat timeout" in log and "Task 1" in log, log[-3000:]
    assert "the killed run finished" not in log
    # heartbeat timeout 4 s; the rest is margin for a loaded 2-core machine
    assert run["exit_gap"] < 40, (run["exit_gap"], log[-3000:])


def _record(out, name, i):
    return json.loads((out / f"{name}_{i}.json").read_text())


def test_a_killed_two_process_run_resumes_to_the_uninterrupted_result(two_processes):
    run, out = two_processes, Path(two_processes["out"])
    assert run["resumed_codes"] == [0, 0], _logs(run, "resume")
    whole = _record(out, "whole", 0)
    assert len(whole["history"]) == 2 and whole["test"]["count"] == 20
    for i in range(2):  # the same history, test metrics and parameters on every process
        resumed = _record(out, "resumed", i)
        assert resumed["test"] == whole["test"]
        for row, ref in zip(resumed["history"], whole["history"], strict=True):
            for key in ("train_loss", "train_accuracy", "step"):
                assert row[key] == ref[key], (key, row, ref)
        for name, value in whole["params"].items():
            np.testing.assert_array_equal(resumed["params"][name], value, err_msg=name)


def test_process_0_alone_writes_the_run_folder(two_processes):
    out = Path(two_processes["out"])
    for folder in ("whole", "killed"):
        rows = [json.loads(line) for line in (out / folder / "metrics.jsonl").read_text()
                .splitlines()]
        steps = [r["step"] for r in rows if r["kind"] == "step"]
        assert steps == [1, 2, 3, 4], (folder, steps)  # once each: one writer, no replays
        assert [r["epoch"] for r in rows if r["kind"] == "epoch"] == [1, 2]
        assert json.loads((out / folder / "result.json").read_text())["step"] == 4
        assert not list((out / folder).glob(".write_probe*"))
    steps = sorted(int(p.name) for p in (out / "whole" / "checkpoints").iterdir()
                   if p.name.isdigit())
    assert steps == [2, 3, 4], steps


def test_a_two_process_checkpoint_restores_on_one_device(two_processes):
    from jaxcnn.train import Checkpoints, create_train_state
    out = Path(two_processes["out"])
    net, opt = model_and_optimizer()
    one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    shapes = jax.eval_shape(lambda: create_train_state(net, opt, jax.random.key(0), (6, 6, 1)))
    template = {"train_state": jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=one), shapes)}
    ckpts = Checkpoints(out / "whole" / "best")  # the state fit returned (keep_best)
    try:
        tree, meta = ckpts.restore(template)
    finally:
        ckpts.close()
    assert meta["epoch"] in (1, 2) and int(tree["train_state"].step) == 2 * meta["epoch"]
    flat = jax.tree_util.tree_flatten_with_path(tree["train_state"].params)[0]
    whole = _record(out, "whole", 0)["params"]
    assert len(flat) == len(whole)
    for path, leaf in flat:
        assert leaf.sharding == one
        np.testing.assert_array_equal(leaf, whole[jax.tree_util.keystr(path)])
