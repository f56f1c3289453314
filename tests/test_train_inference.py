"""load_run and predict: a run folder written by fit, loaded in a fresh process, gives the
training process's own outputs; checkpoints that do not fit the model are refused by name."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import XLA_TEST_FLAGS

import jaxcnn as jc
from jaxcnn.models import get_model
from jaxcnn.train import fit, load_run, predict

ROOT = Path(__file__).parents[1]
CONFIG = {"model": "small_cnn", "model_kwargs": {"num_classes": 3, "widths": [4, 8]}}


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
    y = (np.argmax(x.reshape(n, 4, 16).mean(axis=2)[:, :3], axis=1)).astype(np.int32)
    return x, y


def _eval(model, params, state, x):
    return jax.jit(lambda p, s, x: model.apply(p, s, x, train=False)[0])(params, state,
                                                                          jnp.asarray(x))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short fit of a batch-norm CNN from the zoo; the best epoch is what fit returns."""
    workdir = tmp_path_factory.mktemp("inference") / "run"
    x, y = _data()
    model = get_model(CONFIG["model"], **CONFIG["model_kwargs"])
    result = fit(model, optax.adam(0.05), (x, y), epochs=3, batch_size=16, workdir=workdir,
                 config=CONFIG, monitor="train_loss", progress=False)
    return model, result, workdir


def test_fresh_process_reproduces_the_training_outputs(run, tmp_path):
    model, result, workdir = run
    x = _data(n=21, seed=1)[0]
    ts = result.train_state  # the best epoch's state (keep_best)
    expected = _eval(model, ts.params, ts.state, x)
    assert jax.tree.leaves(ts.state)  # batch-norm statistics: the state matters
    script = textwrap.dedent(f"""
        import numpy as np
        from jaxcnn.train import load_run, predict
        run = load_run({str(workdir)!r}, which="best")
        x = np.load({str(tmp_path / "x.npy")!r})
        np.save({str(tmp_path / "out.npy")!r}, np.asarray(predict(run.model, run.params,
                run.state, x, batch_size=8)))
        print(run.step)
    """)
    np.save(tmp_path / "x.npy", x)
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=XLA_TEST_FLAGS,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) == int(ts.step)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), np.asarray(expected),
                               rtol=1e-5, atol=1e-6)


def test_last_and_step_checkpoints(run):
    model, result, workdir = run
    last = load_run(workdir)  # which="last"
    result_json = json.loads((workdir / "result.json").read_text())
    assert last.step == result_json["step"] == 9
    assert last.config["model"] == "small_cnn" and last.config["fit"]["in_shape"] == [8, 8, 1]
    by_step = load_run(workdir, which=6, model=model)  # an earlier checkpoint, model passed
    assert by_step.step == 6 and by_step.model is model
    leaves = lambda r: jax.tree.leaves((r.params, r.state))  # noqa: E731
    assert any(not np.array_equal(a, b) for a, b in zip(leaves(last), leaves(by_step)))
    factory = load_run(workdir, model=lambda **kw: get_model("small_cnn", **kw))
    for a, b in zip(leaves(factory), leaves(last)):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_that_does_not_fit_is_named(run):
    _, _, workdir = run
    wider = get_model("small_cnn", num_classes=3, widths=[4, 16])
    with pytest.raises(ValueError, match=r"load_run: the checkpoint's params must be the "
                       r"model's .*got 'serial_3/conv_0/kernel: checkpoint \(3, 3, 4, 8\) float32, "
                       r"model \(3, 3, 4, 16\) float32'. The checkpoint has 14 arrays, the "
                       r"model 14. Rebuild"):
        load_run(workdir, model=wider)
    deeper = get_model("small_cnn", num_classes=3, widths=[4, 8, 8])
    with pytest.raises(ValueError, match=r"missing from the checkpoint.*The checkpoint has 14 "
                       r"arrays, the model 20"):
        load_run(workdir, model=deeper)
    with pytest.raises(ValueError, match=r"load_run: which must be 'last', 'best' or a saved "
                       r"step \(\[3, 6, 9\]\), got 5"):
        load_run(workdir, which=5)
    with pytest.raises(ValueError, match=r"load_run: which must be 'last', 'best' or a step"):
        load_run(workdir, which="first")
    with pytest.raises(ValueError, match=r"load_run: member must be None for a run without"):
        load_run(workdir, member=0)


def test_run_folders_missing_what_load_run_needs(run, tmp_path):
    _, _, workdir = run
    with pytest.raises(ValueError, match=r"load_run: run_dir must be a run folder of fit"):
        load_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"fit": {}}))
    with pytest.raises(ValueError, match=r"run folder must be one with checkpoints/"):
        load_run(tmp_path)
    (tmp_path / "best").mkdir()
    with pytest.raises(ValueError, match=r"load_run: best/ must be a folder holding checkpoints, "
                       r"got '.*best'. fit writes best/ with keep_best=True once the monitored "
                       r"metric improves; use which='last'"):
        load_run(tmp_path, which="best")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "checkpoints").symlink_to(workdir / "checkpoints")
    (copy / "config.json").write_text(json.dumps({"fit": {}}))
    with pytest.raises(ValueError, match=r"config.json's 'model' must be a model name"):
        load_run(copy)
    model = get_model("small_cnn", **CONFIG["model_kwargs"])
    with pytest.raises(ValueError, match=r"load_run: in_shape must be given"):
        load_run(copy, model=model)
    assert load_run(copy, model=model, in_shape=(8, 8, 1)).step == 9
    with pytest.raises(TypeError, match=r"load_run: model must be a jaxcnn Layer"):
        load_run(copy, model=lambda: "not a layer", in_shape=(8, 8, 1))


def test_ensemble_member(tmp_path):
    x, y = _data(n=16)
    net = jc.serial(jc.flatten(), jc.dense(3))
    result = fit(net, optax.sgd(0.1), (x, y), epochs=1, batch_size=8, ensemble=2,
                 workdir=tmp_path / "run", progress=False)
    for i in range(2):
        member = load_run(tmp_path / "run", model=net, member=i)
        np.testing.assert_array_equal(member.params["dense_1"]["kernel"],
                                      result.train_state.params["dense_1"]["kernel"][i])
    with pytest.raises(ValueError, match=r"member must be an int in \[0, 2\) for this ensemble"):
        load_run(tmp_path / "run", model=net)
    no_bias = jc.serial(jc.flatten(), jc.dense(3, use_bias=False))
    with pytest.raises(ValueError, match=r"got 'dense_1/bias in the checkpoint but not the "
                       r"model'. The checkpoint has 2 arrays, the model 1"):
        load_run(tmp_path / "run", model=no_bias, member=0)


def test_predict_matches_apply_and_compiles_once():
    net = jc.serial(jc.conv(4, 3), jc.batch_norm(), jc.relu(), jc.flatten(), jc.dense(3))
    _, params, state = net.init(jax.random.key(0), (6, 6, 2))
    x = np.random.default_rng(0).normal(size=(10, 6, 6, 2)).astype(np.float32)
    expected = np.asarray(_eval(net, params, state, x))
    from jaxcnn.train._inference import _forward
    before = _forward()._cache_size()
    logits = predict(net, params, state, x, batch_size=4)  # batches 4, 4, 2 (padded to 4)
    assert _forward()._cache_size() == before + 1
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    probs = predict(net, params, state, jnp.asarray(x), batch_size=4, probabilities=True)
    np.testing.assert_allclose(probs, np.exp(expected) / np.exp(expected).sum(1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    assert predict(net, params, state, x[:3], batch_size=64).shape == (3, 3)


def test_predict_binary_probabilities_and_errors():
    net = jc.serial(jc.flatten(), jc.dense(1))
    _, params, state = net.init(jax.random.key(0), (4,))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    z = np.asarray(predict(net, params, state, x))
    np.testing.assert_allclose(predict(net, params, state, x, probabilities=True),
                               1 / (1 + np.exp(-z)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"predict: batch_size must be a positive int, got 0"):
        predict(net, params, state, x, batch_size=0)
    with pytest.raises(TypeError, match=r"predict: x must be a jax or numpy array"):
        predict(net, params, state, x.tolist())
    with pytest.raises(ValueError, match=r"predict: x must be a non-empty batch"):
        predict(net, params, state, x[:0])
    with pytest.raises(TypeError, match=r"predict: probabilities must be a bool"):
        predict(net, params, state, x, probabilities=1)
    with pytest.raises(TypeError, match=r"predict: model must be a jaxcnn Layer"):
        predict(jc.dense, params, state, x)


def test_readme_example(run):
    model, result, workdir = run
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "load_run(" in b)
    scope = {"net": model, "x_test": _data(n=5, seed=2)[0]}
    exec(compile(block.replace('"runs/my_run"', repr(str(workdir))), "README.md", "exec"), scope)
    expected = _eval(model, result.train_state.params, result.train_state.state, scope["x_test"])
    np.testing.assert_array_equal(scope["labels"], np.argmax(expected, axis=-1))
