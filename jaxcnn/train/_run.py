"""The run folder: ``config.json``, ``run.json`` (git commit, versions, command),
``metrics.jsonl`` (one JSON object per logged step or epoch), ``result.json`` and
``checkpoints/`` (written by :mod:`jaxcnn.train._checkpoint`)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np


def to_jsonable(obj):
    """``obj`` with numpy/JAX numbers and arrays, tuples, dataclasses and paths made JSON-ready;
    non-finite floats become ``None`` (JSON has no NaN)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return to_jsonable(np.asarray(obj).tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def write_json(path, obj):
    """Writes ``obj`` as indented JSON, atomically (a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def update_result(workdir, fields):
    """Merges ``fields`` into the run folder's ``result.json`` (written by ``fit``) and
    returns the whole merged result as written (JSON types).

    Example:
      >>> import json, tempfile, pathlib
      >>> from jaxcnn.train import update_result
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> _ = (d / "result.json").write_text(json.dumps({"test_accuracy": 0.9}))
      >>> update_result(d, {"wall_time_s": 12.5})
      {'test_accuracy': 0.9, 'wall_time_s': 12.5}
    """
    path = Path(workdir) / "result.json"
    write_json(path, {**json.loads(path.read_text()), **fields})
    return json.loads(path.read_text())


def append_jsonl(path, row):
    """Appends one JSON object as a line."""
    with open(path, "a") as f:
        f.write(json.dumps(to_jsonable(row), sort_keys=True) + "\n")


def read_jsonl(path):
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate_jsonl(path, max_step):
    """Keeps the rows of ``metrics.jsonl`` logged at or before ``max_step`` (on resume, the
    rows written after the restored checkpoint are replayed, so they are dropped)."""
    rows = [r for r in read_jsonl(path) if r.get("step", 0) <= max_step]
    tmp = Path(str(path) + ".tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    os.replace(tmp, path)


def git_commit(path=None):
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``path`` (default:
    this package), or ``None`` outside git."""
    path = Path(path or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(path), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())}


def run_info():
    """What produced a run: git commit, versions, device and command line."""
    device = jax.devices()[0]
    return {"git": git_commit(), "jax": jax.__version__, "backend": jax.default_backend(),
            "device": getattr(device, "device_kind", str(device)), "argv": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}


def prepare_workdir(workdir, config):
    """Creates ``workdir`` and writes ``config.json`` and ``run.json``; returns the path."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    write_json(workdir / "config.json", config)
    write_json(workdir / "run.json", run_info())
    return workdir
