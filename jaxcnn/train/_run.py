"""The run folder: ``config.json``, ``run.json`` (git commit, versions, command),
``metrics.jsonl`` (one JSON object per logged step or epoch), ``result.json`` and
``checkpoints/`` (written by :mod:`jaxcnn.train._checkpoint`).

In a run of several processes (:mod:`jaxcnn.distributed`) the folder is one folder that
every process sees (a shared file system, as orbax requires): process 0 alone writes the
JSON files (:func:`is_primary`), and every process writes its part of each checkpoint."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np


def is_primary() -> bool:
    """Whether this process writes the run folder's files: process 0 of a multi-process run
    (``jax.process_index() == 0``), always in a single-process one."""
    return jax.process_index() == 0


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
    """The rows of a JSON-lines file; a last line without its newline (a process killed
    while appending it) is left out."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    return [json.loads(line) for line in lines[:-1] if line.strip()]


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
    """Creates ``workdir`` and writes ``config.json`` and ``run.json`` (process 0 of several
    writes them); returns the path."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not is_primary():
        return workdir
    write_json(workdir / "config.json", config)
    write_json(workdir / "run.json", run_info())
    return workdir


def _mb(n):
    return f"{n / 2**20:,.1f} MB"


def check_workdir(where, workdir, checkpoint_bytes, copies):
    """Refuses, before training, a run folder that cannot be created or written, or whose
    disk has less free space than ``copies`` checkpoints of ``checkpoint_bytes`` (plus
    1 MB for logs), rather than failing at the first checkpoint an hour later."""
    workdir = Path(workdir)
    probe = workdir / f".write_probe_{jax.process_index()}"
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"jaxcnn")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"{where}: workdir must be a folder this process can create and write, "
                         f"got {str(workdir)!r} ({type(err).__name__}: "
                         f"{err.strerror or err}). Choose another workdir") from None
    needed = copies * checkpoint_bytes + 2**20
    free = shutil.disk_usage(workdir).free
    if free < needed:
        raise ValueError(
            f"{where}: the free space under workdir must be at least {_mb(needed)} ({copies} "
            f"checkpoints of {_mb(checkpoint_bytes)}), got {_mb(free)} in {workdir}. Free "
            "some space, choose another workdir or keep fewer checkpoints (keep_checkpoints)")


def check_same_settings(where, workdir, settings, keys):
    """Refuses to resume a run whose ``config.json`` records other values of ``keys`` of
    ``fit``'s settings (another data set, task or loss), naming each difference."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        return
    saved = json.loads(path.read_text()).get("fit", {})
    now = to_jsonable(settings)
    diffs = [f"{k}={saved[k]!r} there, {now[k]!r} now" for k in keys
             if k in saved and saved[k] != now.get(k)]
    if diffs:
        raise ValueError(f"{where}: the settings of a resumed run must be those in {path}, got "
                         + "; ".join(diffs) + ". Resume with the same data and settings, or "
                         "start a new workdir")
