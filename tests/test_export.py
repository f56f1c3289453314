"""export / load_exported: serialized StableHLO with a symbolic batch that a process without
jaxcnn runs at any batch size, with the training model's outputs and no custom calls."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import XLA_TEST_FLAGS

import jaxcnn as jc


def _net():
    return jc.serial(jc.conv(4, 3, padding=1), jc.batch_norm(), jc.relu(), jc.max_pool(2),
                     jc.flatten(), jc.dense(3))


def _trained_like(net, in_shape):
    """Parameters and non-trivial batch-norm statistics (one train-mode pass), compiled as
    one program (eager dispatch compiles every operation on its own)."""
    def init(key):
        _, params, state = net.init(key, in_shape)
        x = jax.random.normal(jax.random.key(1), (4,) + in_shape)
        return params, net.apply(params, state, x, train=True)[1]

    return jax.jit(init)(jax.random.key(0))


def _eval(net, params, state, x):
    return jax.jit(lambda p, s, x: net.apply(p, s, x, train=False)[0])(params, state, x)


def _custom_calls(exported):
    return set(re.findall(r"custom_call @(\w+)", exported.mlir_module()))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    net, in_shape = _net(), (6, 6, 2)
    params, state = _trained_like(net, in_shape)
    path = tmp_path_factory.mktemp("export") / "net.jaxexport"
    exported = jc.export(net, params, state, in_shape, path)
    return net, params, state, path, exported


def test_a_process_without_jaxcnn_runs_it_at_two_batch_sizes(artifact, tmp_path):
    net, params, state, path, _ = artifact
    rng = np.random.default_rng(0)
    xs = {n: rng.normal(size=(n, 6, 6, 2)).astype(np.float32) for n in (1, 5)}
    np.savez(tmp_path / "x.npz", **{str(n): x for n, x in xs.items()})
    script = textwrap.dedent(f"""
        import sys, jax, numpy as np
        exported = jax.export.deserialize(bytearray(open({str(path)!r}, "rb").read()))
        xs = np.load({str(tmp_path / "x.npz")!r})
        np.savez({str(tmp_path / "y.npz")!r}, **{{k: np.asarray(exported.call(xs[k]))
                                                 for k in xs.files}})
        assert not any(m.startswith("jaxcnn") for m in sys.modules), "jaxcnn was imported"
    """)
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=XLA_TEST_FLAGS)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ys = np.load(tmp_path / "y.npz")
    for n, x in xs.items():
        expected = _eval(net, params, state, jnp.asarray(x))
        np.testing.assert_allclose(ys[str(n)], expected, rtol=1e-5, atol=1e-5)


def test_load_exported_and_probabilities(artifact, tmp_path):
    net, params, state, path, exported = artifact
    run = jc.load_exported(path)
    assert run.exported.in_avals[0].shape[1:] == (6, 6, 2)
    x = np.random.default_rng(1).normal(size=(7, 6, 6, 2)).astype(np.float32)
    expected = np.asarray(_eval(net, params, state, jnp.asarray(x)))
    np.testing.assert_allclose(run(x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run(x[:2].astype(np.float64)), expected[:2], rtol=1e-5, atol=1e-5)
    jc.export(net, params, state, (6, 6, 2), tmp_path / "p.bin", probabilities=True)
    probs = jc.load_exported(tmp_path / "p.bin")(x)
    np.testing.assert_allclose(probs, np.exp(expected) / np.exp(expected).sum(1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


def test_no_custom_calls_but_jax_shape_checks(artifact):
    # what XLA alone runs: no jaxcnn (or other foreign) custom call targets in the module
    assert _custom_calls(artifact[4]) <= {"shape_assertion"}


@pytest.mark.parametrize("in_shape, n", [((12, 2), 2), ((4, 4, 4, 1), 3)])
def test_one_and_three_spatial_dimensions(in_shape, n, tmp_path):
    net = _net()
    params, state = _trained_like(net, in_shape)
    run = jc.load_exported(_export_to(net, params, state, in_shape, tmp_path / "m.bin"))
    assert _custom_calls(run.exported) <= {"shape_assertion"}
    x = jax.random.normal(jax.random.key(n), (n,) + in_shape)
    np.testing.assert_allclose(run(x), _eval(net, params, state, jnp.asarray(x)),
                               rtol=1e-5, atol=1e-5)


def _export_to(net, params, state, in_shape, path):
    jc.export(net, params, state, in_shape, path)
    return path


def test_errors(artifact, tmp_path):
    net, params, state, path, _ = artifact
    with pytest.raises(ValueError, match=r"export: in_shape must be the shape of one input "
                       r"without the batch axis, e.g. \(28, 28, 1\), got \(0, 6\)"):
        jc.export(net, params, state, (0, 6), tmp_path / "a")
    with pytest.raises(TypeError, match=r"export: dtype must be a dtype"):
        jc.export(net, params, state, (6, 6, 2), tmp_path / "a", dtype="floaty")
    with pytest.raises(TypeError, match=r"export: platforms must be None or a sequence"):
        jc.export(net, params, state, (6, 6, 2), tmp_path / "a", platforms="cpu")
    with pytest.raises(TypeError, match=r"export: model must be a jaxcnn Layer"):
        jc.export(jc.dense, params, state, (6, 6, 2), tmp_path / "a")
    with pytest.raises(ValueError, match=r"load_exported: path must be a file written by"):
        jc.load_exported(tmp_path / "missing")
    (tmp_path / "junk").write_bytes(b"not an export")
    with pytest.raises(ValueError, match=r"load_exported: the file must be a serialized"):
        jc.load_exported(tmp_path / "junk")
    run = jc.load_exported(path)
    with pytest.raises(ValueError, match=r"load_exported: x.shape must be \(batch, 6, 6, 2\), "
                       r"got \(6, 6, 2\)"):
        run(np.zeros((6, 6, 2), np.float32))
    with pytest.raises(ValueError, match=r"load_exported: x.dtype must be float32 \(the "
                       r"exported input\), got 'uint8'"):
        run(np.zeros((1, 6, 6, 2), np.uint8))


def test_readme_example(artifact, tmp_path):
    net, params, state, _, _ = artifact
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "jc.export(" in b)
    block = block.replace("(28, 28, 1)", "(6, 6, 2)").replace('"model.jaxexport"',
                                                              repr(str(tmp_path / "m")))
    x = np.random.default_rng(2).normal(size=(3, 6, 6, 2)).astype(np.float32)
    scope = {"jc": jc, "run": SimpleNamespace(model=net, params=params, state=state),
             "x_test": x}
    exec(compile(block, "README.md", "exec"), scope)
    np.testing.assert_allclose(scope["logits"], _eval(net, params, state, jnp.asarray(x)),
                               rtol=1e-5, atol=1e-5)
