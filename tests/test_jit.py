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


def test_options_per_argument_dtype(monkeypatch):
    """jaxcnn's option for float32/bfloat16 programs; XLA's defaults as soon as one
    argument is float64 or float16 (the option slows their grouped convolutions)."""
    monkeypatch.delenv(_jit.ENV_VAR, raising=False)
    dots = {YNN: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
    assert jaxcnn.compiler_options("cpu", dtypes=["float32", "int32", "bool"]) == dots
    assert jaxcnn.compiler_options("cpu", dtypes=[jnp.bfloat16, np.dtype("uint8")]) == dots
    assert jaxcnn.compiler_options("cpu", dtypes=[]) == dots
    assert jaxcnn.compiler_options("cpu", dtypes=[jax.random.key(0).dtype]) == dots
    assert _jit.XLA_DEFAULT_DTYPES == ("float64", "float16")
    for dtype in ("float64", jnp.float16):
        assert jaxcnn.compiler_options("cpu", dtypes=["float32", dtype]) == {}
        assert jaxcnn.compiler_options("gpu", dtypes=[dtype]) == {}


def _grouped(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are CPU-only")
def test_jit_compiles_float64_and_float16_calls_with_xla_defaults(monkeypatch):
    """One jaxcnn.jit function: float64 and float16 calls compile exactly what jax.jit
    compiles; float32 calls get jaxcnn's option (another program)."""
    monkeypatch.delenv(_jit.ENV_VAR, raising=False)
    f = jaxcnn.jit(_grouped)
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 6, 6, 4)), rng.normal(size=(3, 3, 2, 4))
    with jax.enable_x64(True):
        for dtype in (jnp.float64, jnp.float16):
            args = (jnp.asarray(x, dtype), jnp.asarray(w, dtype))
            assert (f.lower(*args).compile().as_text()
                    == jax.jit(_grouped).lower(*args).compile().as_text())
            np.testing.assert_array_equal(f(*args), jax.jit(_grouped)(*args))
    args = (jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
    ours = f.lower(*args).compile().as_text()
    assert "convolution(" in ours and "__ynn_fusion" not in ours
    np.testing.assert_allclose(f(*args), jax.jit(_grouped)(*args), rtol=1e-5, atol=1e-5)
    assert len(f._jits) == 2  # one jax.jit per set of options: XLA's defaults, jaxcnn's


@pytest.fixture
def restore_cache_config():
    """enable_compilation_cache sets process-wide JAX configuration: put it back."""
    from jax.experimental.compilation_cache import compilation_cache as cc
    saved = (jax.config.jax_compilation_cache_dir,
             jax.config.jax_persistent_cache_min_compile_time_secs)
    yield
    jax.config.update("jax_compilation_cache_dir", saved[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])
    cc.reset_cache()


def test_enable_compilation_cache_writes_and_reuses_programs(tmp_path, monkeypatch,
                                                             restore_cache_config):
    hits = []

    def listener(event, **_):
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    jax.monitoring.register_event_listener(listener)
    try:
        folder = jaxcnn.enable_compilation_cache(tmp_path / "a" / "cache")
        assert folder == tmp_path / "a" / "cache" and folder.is_dir()

        def f(x):
            return jnp.tanh(x) * 3.25 - 0.5  # a program no other test compiles

        x = jnp.arange(5.0)
        expected = np.tanh(np.arange(5.0)) * 3.25 - 0.5
        np.testing.assert_allclose(jaxcnn.jit(f)(x), expected, rtol=1e-6)
        assert any(folder.iterdir()) and not hits
        jax.clear_caches()  # forget the in-memory executable: the disk copy is read back
        np.testing.assert_allclose(jaxcnn.jit(f)(x), expected, rtol=1e-6)
        assert hits
    finally:
        jax.monitoring.unregister_event_listener(listener)
    monkeypatch.setenv(_jit.CACHE_ENV_VAR, str(tmp_path / "from_env"))
    assert jaxcnn.enable_compilation_cache() == tmp_path / "from_env"
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "from_env")


def test_enable_compilation_cache_errors(tmp_path, restore_cache_config):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="enable_compilation_cache: path must be a folder "
                                         r"\(or a path to create one at\), got '.*file'. "
                                         "It is an existing file"):
        jaxcnn.enable_compilation_cache(tmp_path / "file")
    with pytest.raises(TypeError, match="enable_compilation_cache: path must be a folder path "
                                        r"\(str or os.PathLike\), got 3"):
        jaxcnn.enable_compilation_cache(3)
    with pytest.raises(ValueError, match=r"min_compile_time_s must be a number >= 0 \(seconds\), "
                                         "got -1"):
        jaxcnn.enable_compilation_cache(tmp_path, min_compile_time_s=-1)
