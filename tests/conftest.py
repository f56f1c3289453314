"""Tests run with strict dtype promotion and rank promotion raising, as Equinox's do.

The suite compiles hundreds of tiny XLA programs, and on CPU most of its time went to
LLVM optimising them (a truncated-normal initialiser: ~3 s CPU to compile at the default
level, ~0.4 s at level 0). Tests check semantics, not code generation, so they compile at
``--xla_backend_optimization_level=0`` (HLO passes still run; results are unchanged).
The flag is read when the backend starts, so it is set before anything computes.
"""

import os

XLA_TEST_FLAGS = "--xla_backend_optimization_level=0"
if XLA_TEST_FLAGS not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + XLA_TEST_FLAGS).strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Scripts that the tests start as processes; importing them would run them.
collect_ignore = ["_distributed_worker.py"]
collect_ignore_glob = ["_*_script.py"]

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Property tests (tests/test_fuzz_*.py): "ci" is the default, derandomised so a run is
# reproducible; "--hypothesis-profile=long" draws 20x more examples from a fresh seed.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True, database=None,
                          suppress_health_check=_SLOW_OK)
settings.register_profile("long", max_examples=400, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile("ci")

# Per-dtype tolerances for comparisons against float64 numpy references.
TOL = {np.dtype("float32"): dict(rtol=2e-5, atol=2e-5),
       np.dtype("float64"): dict(rtol=1e-10, atol=1e-10)}

# Every op in float32, bfloat16 and float16 against its float64 result, output and
# gradient (tests/test_numerics.py; the README's table): |got - ref| <= atol * max|ref|,
# atol a multiple of the unit roundoff u = 2^-24, 2^-9, 2^-11 (the worst measured on the
# tests' cases, CPU: 5u, 6u, 3u).
OP_TOL = {np.dtype("float32"): dict(rtol=0.0, atol=32 * 2.0**-24),
          np.dtype(jax.numpy.bfloat16): dict(rtol=0.0, atol=16 * 2.0**-9),
          np.dtype("float16"): dict(rtol=0.0, atol=10 * 2.0**-11)}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
