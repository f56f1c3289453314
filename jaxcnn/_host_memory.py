"""Host memory that XLA:CPU reuses instead of faulting in again on every call (glibc only).

XLA:CPU takes each run's temporary buffer (all the activations a train step keeps: about
200 MB for ResNet-20 at batch 128) from ``malloc`` on one of its worker threads. glibc serves
a request that large from a fresh ``mmap`` (a worker thread's arena cannot hold it) and
unmaps it on ``free``, so every step page-faults its whole working set in again and the
kernel zeroes it: 50,000 faults and about a fifth of a ResNet-20 step on a 2-core CPU
(``python benchmarks/host_memory.py``; ``benchmarks/results/host_memory.md``).

At ``import jaxcnn`` three glibc malloc parameters are set so that freed memory stays mapped
and is reused: one arena for all threads (``M_ARENA_MAX=1``), no ``mmap`` for large requests
(``M_MMAP_MAX=0``) and no trimming of the heap's top (``M_TRIM_THRESHOLD``). The process
keeps its peak heap instead of returning it to the system, and that heap settles at one to
three times a step's working set: in the first tens of steps a small allocation now and then
takes part of a freed block, and the next step grows the heap once more.
``$JAXCNN_HOST_MALLOC=0`` (or ``off``) leaves glibc's defaults alone; so does a
``$GLIBC_TUNABLES`` or ``$MALLOC_*`` variable that already sets them. Threads that allocated
before the first ``import jaxcnn`` keep the arena they have, so import jaxcnn before the
first JAX computation.
"""

from __future__ import annotations

import ctypes
import os
import sys

from jaxcnn._switches import backend_started, switched_on

ENV_VAR = "JAXCNN_HOST_MALLOC"
# mallopt(3) parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
_TRIM = 2**31 - 1  # mallopt takes an int: the largest
_SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, _TRIM))
_USER_VARS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_",
              "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")

_state = {"applied": False, "reason": "not tried"}


def enabled_by_environment(environ=None):
    """False when ``$JAXCNN_HOST_MALLOC`` is ``0``, ``off``, ``false`` or ``no``."""
    return switched_on(ENV_VAR, environ)


def _user_tuned(environ):
    tunables = environ.get("GLIBC_TUNABLES", "")
    return any(v in environ for v in _USER_VARS) or "glibc.malloc." in tunables


def _glibc():
    """The process's C library when it is glibc, else ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None  # musl and others have no gnu_get_libc_version
    version.restype = ctypes.c_char_p
    return libc if version() else None


def apply(environ=None):
    """Set the malloc parameters above once; returns whether they are in effect.

    Example:
      >>> from jaxcnn import _host_memory
      >>> isinstance(_host_memory.apply(), bool)
      True
    """
    if _state["applied"]:
        return True
    environ = os.environ if environ is None else environ
    if not enabled_by_environment(environ):
        _state["reason"] = f"${ENV_VAR} turns it off"
        return False
    if _user_tuned(environ):
        _state["reason"] = "the environment sets glibc's malloc parameters"
        return False
    libc = _glibc()
    if libc is None:
        _state["reason"] = "the C library is not glibc"
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    if not all(libc.mallopt(param, value) == 1 for param, value in _SETTINGS):
        _state["reason"] = "mallopt refused a parameter"
        return False
    late = backend_started()
    _state.update(applied=True, reason=(
        "set after JAX's CPU backend started: its threads keep the arenas they have"
        if late else "set before JAX's CPU backend started"))
    return True


def status():
    """``(applied, reason)``: whether jaxcnn set the malloc parameters, and why (not).

    Example:
      >>> from jaxcnn import _host_memory
      >>> applied, reason = _host_memory.status()
      >>> isinstance(reason, str)
      True
    """
    return _state["applied"], _state["reason"]


__all__ = ["ENV_VAR", "apply", "enabled_by_environment", "status"]
