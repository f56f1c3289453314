"""jaxcnn.jit / jaxcnn.compiler_options: the XLA options jaxcnn compiles with."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn import _jit

YNN = "xla_cpu_experimental_ynn_fusion_type"


def test_compiler_options_per_backend_and_environment(monkeypatch):
    monkeypatch.delenv(_jit.ENV_VAR, raising=False)
    assert jaxcnn.compiler_options("cpu") == {YNN: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
    assert jaxcnn.compiler_options("gpu") == {}
    monkeypatch.setenv(_jit.ENV_VAR, "None")
    assert jaxcnn.compiler_options("cpu") == {}
    monkeypatch.setenv(_jit.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=r"jaxcnn XLA options: \$JAXCNN_XLA_OPTIONS must be "
                                         r"one of 'auto', 'none', got 'fast'"):
        jaxcnn.compiler_options("cpu")


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_jit_compiles_convolutions_without_ynn_and_matches_jax_jit(monkeypatch):
    monkeypatch.delenv(_jit.ENV_VAR, raising=False)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 8)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 8, 8)), jnp.float32)
    f = jaxcnn.jit(_conv)
    if jax.default_backend() == "cpu":
        hlo = f.lower(x, w).compile().as_text()
        assert "convolution(" in hlo and "__ynn_fusion" not in hlo
    np.testing.assert_allclose(f(x, w), jax.jit(_conv)(x, w), rtol=1e-5, atol=1e-5)
    # Options given by the caller win over jaxcnn's; other jax.jit arguments pass through.
    g = jaxcnn.jit(lambda x, n: x * n, static_argnums=1, compiler_options={YNN: ""})
    np.testing.assert_array_equal(g(x, 2), 2 * x)
