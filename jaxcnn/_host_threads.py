"""Enough XLA:CPU threads for D host devices to run collectives (``PJRT_NPROC``).

XLA:CPU's client runs the programs of its D host devices on one thread pool of
``max(cores, D)`` threads (``$PJRT_NPROC`` or ``$NPROC`` replace the core count). With
asynchronous dispatch a loop that does not wait for results queues up to 32 programs per
device; the next launch then blocks a pool thread until that device finishes one. A
sharded step's program on one device blocks another thread in its all-reduce until every
other device's program of the same step arrives, and those programs wait in the pool's
queue behind the blocked threads: with fewer than 2 D threads every thread can end up
blocked, and XLA aborts the process after 40 s ("Expected 2 threads to join the
rendezvous, but only 1 of them arrived on time"). On a 2-core CPU split into 2 or 8 host
devices, 33 unsynchronised steps of any sharded program are enough (``jax.jit`` alone, no
jaxcnn); up to D launches blocked on their device's queue, D - 1 programs in the
all-reduce and one thread left to run the missing program make 2 D.

At ``import jaxcnn``, when the environment asks for D > 1 host devices
(``--xla_force_host_platform_device_count=D`` in ``$XLA_FLAGS``, or
``$JAX_NUM_CPU_DEVICES``), the process may use fewer than 2 D cores and neither
``$PJRT_NPROC`` nor ``$NPROC`` is set, ``$PJRT_NPROC`` is set to 2 D before JAX's CPU
backend starts. ``$JAXCNN_HOST_THREADS=0`` (or ``off``) leaves it alone. A device count set
later (``jax.config.update("jax_num_cpu_devices", D)``) or a backend started before
``import jaxcnn`` is not seen here; ``fit`` then waits for every 16th step of a sharded run
(:func:`run_ahead_limit`).
"""

from __future__ import annotations

import os
import shlex

from jaxcnn._switches import backend_started, switched_on

ENV_VAR = "JAXCNN_HOST_THREADS"
POOL_VARS = ("PJRT_NPROC", "NPROC")  # read by XLA's DefaultThreadPoolSize, in this order
_FLAG = "--xla_force_host_platform_device_count="
# launches queued per device before the next one blocks (XLA:CPU's
# max_inflight_computations_per_device is 32): a loop that waits every 16 steps stays below
SAFE_RUN_AHEAD = 16

_state = {"applied": False, "reason": "not tried"}


def enabled_by_environment(environ=None):
    """False when ``$JAXCNN_HOST_THREADS`` is ``0``, ``off``, ``false`` or ``no``."""
    return switched_on(ENV_VAR, environ)


def requested_devices(environ=None):
    """The number of CPU devices the environment asks JAX for (``$JAX_NUM_CPU_DEVICES``,
    else the last ``--xla_force_host_platform_device_count`` in ``$XLA_FLAGS``, else 1).

    Example:
      >>> requested_devices({"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
      8
    """
    environ = os.environ if environ is None else environ
    count = 1
    try:
        flags = shlex.split(environ.get("XLA_FLAGS", ""))
    except ValueError:
        flags = environ.get("XLA_FLAGS", "").split()
    for flag in flags:
        if flag.startswith(_FLAG) and flag[len(_FLAG):].isdigit():
            count = int(flag[len(_FLAG):])
    value = environ.get("JAX_NUM_CPU_DEVICES", "").strip()
    if value.isdigit():
        count = int(value)
    return max(count, 1)


def cores():
    """The cores this process may run on (what XLA counts for its default pool size)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pool_threads(devices, environ=None):
    """The size of XLA:CPU's thread pool for ``devices`` host devices under ``environ``."""
    environ = os.environ if environ is None else environ
    for name in POOL_VARS:
        value = environ.get(name, "").strip()
        if value.isdigit():
            return max(int(value), devices)
    return max(cores(), devices)


def decide(environ, cores_available, backend_started):
    """``(value, reason)``: the ``$PJRT_NPROC`` to set (``None``: none), and why.

    Example:
      >>> decide({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, 2, False)
      ('4', 'PJRT_NPROC=4 for 2 devices on 2 cores')
    """
    devices = requested_devices(environ)
    if not enabled_by_environment(environ):
        return None, f"${ENV_VAR} turns it off"
    if devices < 2:
        return None, "one CPU device requested"
    if any(name in environ for name in POOL_VARS):
        return None, "the environment sets the pool size ($PJRT_NPROC or $NPROC)"
    if cores_available >= 2 * devices:
        return None, f"{cores_available} cores are enough for {devices} devices"
    if backend_started:
        return None, "JAX's CPU backend started before import jaxcnn"
    return str(2 * devices), f"PJRT_NPROC={2 * devices} for {devices} devices on " \
        f"{cores_available} cores"


def apply(environ=None):
    """Set ``$PJRT_NPROC`` to 2 D once when needed (:func:`decide`); returns whether jaxcnn
    set it.

    Example:
      >>> from jaxcnn import _host_threads
      >>> isinstance(_host_threads.apply(), bool)
      True
    """
    if _state["applied"]:
        return True
    environ = os.environ if environ is None else environ
    value, reason = decide(environ, cores(), backend_started())
    if value is not None:
        environ["PJRT_NPROC"] = value
    _state.update(applied=value is not None, reason=reason)
    return value is not None


def status():
    """``(applied, reason)``: whether jaxcnn set ``$PJRT_NPROC``, and why (not).

    Example:
      >>> from jaxcnn import _host_threads
      >>> applied, reason = _host_threads.status()
      >>> isinstance(reason, str)
      True
    """
    return _state["applied"], _state["reason"]


def run_ahead_limit(devices):
    """How many steps of a program over ``devices`` CPU devices a loop may dispatch before
    it waits for one: ``None`` (no limit) when the pool has 2 D threads, else
    ``SAFE_RUN_AHEAD``.

    Example:
      >>> run_ahead_limit(1) is None
      True
    """
    if devices < 2 or pool_threads(devices) >= 2 * devices:
        return None
    return SAFE_RUN_AHEAD


__all__ = ["ENV_VAR", "SAFE_RUN_AHEAD", "apply", "decide", "enabled_by_environment",
           "pool_threads", "requested_devices", "run_ahead_limit", "status"]
