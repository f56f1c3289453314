"""Using a trained model: :func:`load_run` reads a run folder written by
:func:`jaxcnn.train.fit`, :func:`predict` runs a model over an array in batches.

A run folder holds ``config.json`` (the ``config`` given to ``fit``, plus ``fit``'s own
settings under ``"fit"``, among them ``in_shape``), ``checkpoints/<step>/`` (the last few
train states) and ``best/<step>/`` (the state of the best epoch). The model is rebuilt
from the config's ``"model"`` (a name in :mod:`jaxcnn.models`) and ``"model_kwargs"``
(the keyword arguments of :func:`jaxcnn.models.get_model`), unless one is passed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxcnn._checks import check_array, check_bool, check_positive_int, fail, is_int
from jaxcnn._jit import jit
from jaxcnn._trees import abstract_init, path_leaves, unflatten_like
from jaxcnn.layers._base import Layer, check_model
from jaxcnn.train._evaluate import pad_to_batches


class LoadedRun(NamedTuple):
    """What :func:`load_run` returns.

    Attributes:
      model: the :class:`jaxcnn.Layer` (rebuilt from the config, or the one passed).
      params, state: the trained parameters and model state of the chosen checkpoint.
      config: the run's ``config.json`` as a dict (e.g. the input normalisation the
        experiments store there).
      step: the training step of the checkpoint.
    """

    model: Any
    params: Any
    state: Any
    config: dict
    step: int


def _shape_str(a):
    return f"{tuple(np.shape(a))} {np.dtype(a.dtype).name}"


def match_tree(where, what, saved, template):
    """``saved``'s leaves arranged as ``template`` (same paths, shapes and dtypes), or a
    ``ValueError`` naming the first path that differs and the counts of leaves."""
    got, want = path_leaves(saved), path_leaves(template)
    missing = [p for p in want if p not in got]
    extra = [p for p in got if p not in want]
    counts = f"The checkpoint has {len(got)} arrays, the model {len(want)}"
    if missing or extra:
        p = (missing or extra)[0]
        side = "missing from the checkpoint" if missing else "in the checkpoint but not the model"
        fail(where, what, "the model's (the same names, shapes and dtypes)",
             f"{'/'.join(p)} {side}",
             f"{counts}. Rebuild the model with the run's architecture and arguments")
    for p, leaf in want.items():
        if np.shape(got[p]) != np.shape(leaf) or np.dtype(got[p].dtype) != np.dtype(leaf.dtype):
            fail(where, what, "the model's (the same names, shapes and dtypes)",
                 f"{'/'.join(p)}: checkpoint {_shape_str(got[p])}, model {_shape_str(leaf)}",
                 f"{counts}. Rebuild the model with the run's architecture and arguments")
    return unflatten_like(template, got)


def _build_model(model, config, where):
    kwargs = config.get("model_kwargs") or {}
    if isinstance(model, Layer):
        return model
    if model is None:
        from jaxcnn.models import get_model

        name = config.get("model")
        if not isinstance(name, str):
            fail(where, "config.json's 'model'", "a model name of jaxcnn.models", name,
                 "Pass model= (a Layer, or a factory called with config['model_kwargs'])")
        return get_model(name, **kwargs)
    if callable(model):
        return check_model(where, model(**kwargs))
    return check_model(where, model)


def _restore(directory, step, where):
    import orbax.checkpoint as ocp  # imported here: it takes seconds to import

    if not directory.is_dir():
        fail(where, "the run folder", f"one with {directory.name}/ (written by fit)",
             str(directory.parent))
    with ocp.CheckpointManager(directory) as manager:
        steps = sorted(manager.all_steps())
        if not steps:
            hint = ("fit writes best/ with keep_best=True once the monitored metric improves; "
                    "use which='last'" if directory.name == "best" else "")
            fail(where, f"{directory.name}/", "a folder holding checkpoints", str(directory), hint)
        if step is None:
            step = steps[-1]
        elif step not in steps:
            fail(where, "which", f"'last', 'best' or a saved step ({steps})", step)
        out = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    return out.state["train_state"], int(step)


def load_run(run_dir, which="last", model=None, *, in_shape=None, member=None) -> LoadedRun:
    """The model, parameters and state of a run folder written by :func:`jaxcnn.train.fit`.

    Args:
      run_dir: the run folder (``workdir`` of ``fit``).
      which: ``"last"`` (the latest checkpoint), ``"best"`` (the best epoch by ``fit``'s
        ``monitor``, kept when ``keep_best=True`` and a monitored metric improved) or a
        step number of ``checkpoints/``.
      model: ``None`` rebuilds ``get_model(config["model"], **config["model_kwargs"])``;
        a :class:`jaxcnn.Layer` is used as it is; another callable is called with
        ``config["model_kwargs"]`` and must return a Layer.
      in_shape: the shape of one input; default: the one ``fit`` saved in ``config.json``.
      member: for a run of ``fit(..., ensemble=K)``: which member to load (an int in
        ``[0, K)``).

    Returns:
      A :class:`LoadedRun` ``(model, params, state, config, step)``.

    Raises:
      ValueError: the checkpoint's arrays do not fit the model; the message names the
        first array that differs.

    Example:
      >>> import tempfile, numpy as np, optax
      >>> from jaxcnn.models import get_model
      >>> from jaxcnn.train import fit, load_run, predict
      >>> x = np.random.default_rng(0).normal(size=(32, 8, 8, 1)).astype(np.float32)
      >>> y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
      >>> cfg = {"model": "small_cnn", "model_kwargs": {"num_classes": 2, "widths": [4]}}
      >>> run_dir = tempfile.mkdtemp() + "/run"
      >>> _ = fit(get_model(cfg["model"], **cfg["model_kwargs"]), optax.adam(1e-2), (x, y),
      ...         epochs=1, batch_size=16, workdir=run_dir, config=cfg, progress=False)
      >>> run = load_run(run_dir)
      >>> run.step, predict(run.model, run.params, run.state, x, probabilities=True).shape
      (2, (32, 2))
    """
    where = "load_run"
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        fail(where, "run_dir", "a run folder of fit (with config.json)", str(run_dir))
    config = json.loads(config_path.read_text())
    settings = config.get("fit") or {}
    if which not in ("last", "best") and not is_int(which):
        fail(where, "which", "'last', 'best' or a step number", which)
    folder = run_dir / ("best" if which == "best" else "checkpoints")
    train_state, step = _restore(folder, None if isinstance(which, str) else int(which), where)
    model = _build_model(model, config, where)
    in_shape = settings.get("in_shape") if in_shape is None else in_shape
    if in_shape is None:
        fail(where, "in_shape", "given (this run's config.json does not record it)", None,
             "Pass in_shape=, the shape of one training example")
    params, state = train_state["params"], train_state["state"]
    params, state = _select_member(params, state, settings.get("ensemble", 1), member, where)
    template = abstract_init(model, in_shape)
    params = match_tree(where, "the checkpoint's params", params, template[0])
    state = match_tree(where, "the checkpoint's model state", state, template[1])
    return LoadedRun(model, params, state, config, step)


def _select_member(params, state, members, member, where):
    if members == 1:
        if member is not None:
            fail(where, "member", "None for a run without an ensemble", member)
        return params, state
    if not is_int(member) or not 0 <= member < members:
        fail(where, "member", f"an int in [0, {members}) for this ensemble run", member)
    take = lambda tree: jax.tree.map(lambda a: a[member], tree)  # noqa: E731
    return take(params), take(state)


def outputs(model, probabilities, params, state, x):
    """Eval-mode outputs of ``model``: logits, or probabilities (softmax over the last
    axis; the sigmoid for a single output)."""
    logits, _ = model.apply(params, state, x, train=False)
    if not probabilities:
        return logits
    if logits.shape[-1] == 1:
        return jax.nn.sigmoid(logits)
    return jax.nn.softmax(logits, axis=-1)


@functools.cache
def _forward():
    return jit(outputs, static_argnums=(0, 1))


def predict(model, params, state, x, *, batch_size=256, probabilities=False):
    """The model's outputs on ``x``, in eval mode, in batches of ``batch_size``.

    The forward pass is compiled once per model and batch shape: a final partial batch is
    padded to the batch size and the padding sliced off (inputs smaller than
    ``batch_size`` run as one batch of their own size). ``x`` is read on the host and sent
    to the device one batch at a time, so it may be larger than device memory.

    Args:
      model: a :class:`jaxcnn.Layer`.
      params, state: its parameters and state (e.g. from :func:`load_run`).
      x: inputs ``(N, ...)``, batched and channels-last (numpy or JAX array).
      batch_size: examples per forward pass.
      probabilities: return probabilities instead of logits: softmax over the last axis,
        or the sigmoid when the model has a single output (binary tasks).

    Returns:
      A JAX array ``(N, ...)`` of logits (or probabilities).

    Example:
      >>> import jax, numpy as np
      >>> from jaxcnn import serial, flatten, dense
      >>> from jaxcnn.train import predict
      >>> net = serial(flatten(), dense(3))
      >>> _, params, state = net.init(jax.random.key(0), (4,))
      >>> p = predict(net, params, state, np.ones((5, 4), np.float32), batch_size=2,
      ...             probabilities=True)
      >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0))
      ((5, 3), True)
    """
    where = "predict"
    check_model(where, model)
    check_array(where, "x", x)
    check_positive_int(where, "batch_size", batch_size)
    probabilities = check_bool(where, "probabilities", probabilities)
    if np.ndim(x) < 2 or len(x) == 0:
        fail(where, "x", "a non-empty batch (N, ...) of inputs", np.shape(x),
             "Add a batch axis with x[None] for a single example")
    n = len(x)
    batch_size = min(batch_size, n)
    xs = pad_to_batches(np.asarray(x), batch_size)
    forward = _forward()
    outs = [forward(model, probabilities, params, state, xs[i:i + batch_size])
            for i in range(0, len(xs), batch_size)]
    return jax.numpy.concatenate(outs)[:n]
