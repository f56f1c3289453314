"""Tests run with strict dtype promotion and rank promotion raising, as Equinox's do."""

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# Per-dtype tolerances for comparisons against float64 numpy references.
TOL = {np.dtype("float32"): dict(rtol=2e-5, atol=2e-5),
       np.dtype("float64"): dict(rtol=1e-10, atol=1e-10)}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
