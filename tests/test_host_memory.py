"""jaxcnn's glibc malloc parameters (jaxcnn/_host_memory.py): XLA:CPU's temporary buffer
is reused between calls instead of being faulted in again."""

import json
import os
import subprocess
import sys

import pytest

from jaxcnn import _host_memory

_glibc = _host_memory._glibc() is not None

_SCRIPT = r"""
import json, resource, sys
import jaxcnn
import jax, jax.numpy as jnp
from jax import lax
from jaxcnn import _host_memory

@jax.jit
def f(x):  # two 48 MB temporaries, more than a glibc thread arena holds
    a = lax.optimization_barrier(jnp.sin(x))
    b = lax.optimization_barrier(jnp.cos(a))
    return (a * b).sum()

x = jnp.ones((12 * 2**20,), jnp.float32)
faults = []
for _ in range(60):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f(x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"faulting_calls": sum(n > 1000 for n in faults),
                  "status": _host_memory.status()}))
"""


def _run(**env):
    environ = {k: v for k, v in os.environ.items()
               if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    environ.update(env)
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         env=environ, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _glibc, reason="the malloc parameters are glibc's")
def test_temporary_buffer_is_reused_between_calls():
    on = _run(JAXCNN_HOST_MALLOC="1")
    off = _run(JAXCNN_HOST_MALLOC="0")
    assert on["status"] == [True, "set before JAX's CPU backend started"]
    assert off["status"] == [False, "$JAXCNN_HOST_MALLOC turns it off"]
    # a call that faults its 96 MB in again takes ~24,000 faults. With the parameters set, the
    # heap still grows in a few calls (a small allocation took part of a freed block; 2 to 10
    # of 60 calls measured) and then holds; with glibc's defaults every call faults
    assert on["faulting_calls"] < 20, on
    assert off["faulting_calls"] > 50, off


@pytest.mark.parametrize("value, expected", [("", True), ("1", True), ("0", False),
                                             ("off", False), (" False ", False), ("no", False)])
def test_environment_switch(value, expected):
    assert _host_memory.enabled_by_environment({"JAXCNN_HOST_MALLOC": value}) is expected


@pytest.mark.parametrize("environ, reason", [
    ({"JAXCNN_HOST_MALLOC": "0"}, "$JAXCNN_HOST_MALLOC turns it off"),
    ({"MALLOC_ARENA_MAX": "2"}, "the environment sets glibc's malloc parameters"),
    ({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"},
     "the environment sets glibc's malloc parameters"),
])
def test_not_applied_when_switched_off_or_tuned_by_the_user(monkeypatch, environ, reason):
    monkeypatch.setattr(_host_memory, "_state", {"applied": False, "reason": "not tried"})
    assert _host_memory.apply(environ) is False
    assert _host_memory.status() == (False, reason)


def test_not_applied_without_glibc(monkeypatch):
    monkeypatch.setattr(_host_memory, "_state", {"applied": False, "reason": "not tried"})
    monkeypatch.setattr(_host_memory, "_glibc", lambda: None)
    assert _host_memory.apply({}) is False
    assert _host_memory.status() == (False, "the C library is not glibc")


def test_other_glibc_tunables_do_not_count_as_malloc_tuning(monkeypatch):
    monkeypatch.setattr(_host_memory, "_state", {"applied": False, "reason": "not tried"})
    applied = _host_memory.apply({"GLIBC_TUNABLES": "glibc.pthread.rseq=0"})
    assert applied is _glibc


@pytest.mark.skipif(not _glibc, reason="the malloc parameters are glibc's")
def test_status_says_when_the_backend_started_first(monkeypatch):
    import jax.numpy as jnp
    jnp.zeros(1).block_until_ready()  # the CPU backend exists now
    monkeypatch.setattr(_host_memory, "_state", {"applied": False, "reason": "not tried"})
    assert _host_memory.apply({}) is True
    assert _host_memory.status() == (
        True, "set after JAX's CPU backend started: its threads keep the arenas they have")
