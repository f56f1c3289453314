"""Export a trained model for deployment: serialized StableHLO through ``jax.export``.

The artifact holds the whole forward pass in eval mode with the parameters and state
baked in as constants, for inputs of any batch size (a symbolic batch dimension). It
is traced under the plain ``lax`` lowerings (``jaxcnn.ops.lowering("lax")``), so it
contains only standard StableHLO operations: no jaxcnn code and no custom calls a
deployment target would lack. Running it needs ``jax`` (``jax.export.deserialize``),
not jaxcnn and not the model's Python code.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxcnn._checks import check_bool, fail, is_int
from jaxcnn.layers._base import check_model
from jaxcnn.ops import lowering


def _check_in_shape(where, in_shape):
    if (not isinstance(in_shape, (tuple, list)) or not in_shape
            or not all(is_int(d) and d > 0 for d in in_shape)):
        fail(where, "in_shape", "the shape of one input without the batch axis, e.g. "
             "(28, 28, 1)", in_shape)
    return tuple(int(d) for d in in_shape)


def export(model, params, state, in_shape, path, *, dtype="float32", probabilities=False,
           platforms=None):
    """Writes ``model``'s eval-mode forward pass, with ``params`` and ``state``, to ``path``.

    Args:
      model: a :class:`jaxcnn.Layer`.
      params, state: its trained parameters and state (e.g. from
        :func:`jaxcnn.train.load_run`).
      in_shape: the shape of one input without the batch axis, e.g. ``(32, 32, 3)``; the
        batch size stays symbolic.
      path: the file to write (serialized ``jax.export.Exported``, a few bytes more than
        the parameters).
      dtype: the input dtype.
      probabilities: output softmax probabilities (sigmoid for one output) instead of
        logits.
      platforms: the platforms to compile for, e.g. ``("cpu", "cuda")``; default: the
        current backend.

    Returns:
      The ``jax.export.Exported`` (``.mlir_module()`` shows the StableHLO text).

    Example:
      >>> import tempfile, jax, numpy as np
      >>> import jaxcnn as jc
      >>> net = jc.serial(jc.conv(4, 3), jc.relu(), jc.flatten(), jc.dense(2))
      >>> _, params, state = net.init(jax.random.key(0), (6, 6, 1))
      >>> path = tempfile.mkdtemp() + "/net.jaxexport"
      >>> _ = jc.export(net, params, state, (6, 6, 1), path)
      >>> run = jc.load_exported(path)
      >>> run(np.ones((3, 6, 6, 1), np.float32)).shape, run(np.ones((5, 6, 6, 1))).shape
      ((3, 2), (5, 2))
    """
    from jaxcnn.train._inference import outputs  # the forward pass predict compiles

    where = "export"
    check_model(where, model)
    in_shape = _check_in_shape(where, in_shape)
    probabilities = check_bool(where, "probabilities", probabilities)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        fail(where, "dtype", "a dtype such as 'float32'", dtype, exc=TypeError)
    if platforms is not None and (not isinstance(platforms, (tuple, list)) or not all(
            isinstance(p, str) for p in platforms)):
        fail(where, "platforms", "None or a sequence of names such as ('cpu', 'cuda')",
             platforms, exc=TypeError)
    params, state = jax.device_get((params, state))

    def forward(x):
        return outputs(model, probabilities, params, state, x)

    (batch,) = jax.export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch,) + in_shape, dtype)
    with lowering("lax"):
        exported = jax.export.export(jax.jit(forward), platforms=platforms)(spec)
    Path(path).write_bytes(exported.serialize())
    return exported


def load_exported(path):
    """A function ``f(x) -> outputs`` running a model written by :func:`export`.

    It needs only ``jax`` (the same as ``jax.export.deserialize(data).call(x)``), and
    checks the input's shape and dtype first (floats of another precision are cast).
    ``f.exported`` is the ``jax.export.Exported`` (``in_avals``, ``platforms``,
    ``mlir_module()``). See :func:`export` for an example.
    """
    where = "load_exported"
    path = Path(path)
    if not path.is_file():
        fail(where, "path", "a file written by jaxcnn.export", str(path))
    try:
        exported = jax.export.deserialize(bytearray(path.read_bytes()))
    except Exception as err:  # flatbuffers raise assorted types on foreign bytes
        fail(where, "the file", "a serialized jax.export.Exported (written by jaxcnn.export)",
             str(path), f"Reading it failed with {type(err).__name__}")
    (aval,) = exported.in_avals
    want = tuple(aval.shape[1:])

    def run(x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        if x.ndim != len(aval.shape) or tuple(x.shape[1:]) != want:
            fail(where, "x.shape", f"(batch, {', '.join(map(str, want))})", tuple(x.shape))
        if x.dtype != aval.dtype:
            floats = (np.issubdtype(x.dtype, np.floating)
                      and np.issubdtype(aval.dtype, np.floating))
            if not floats:
                fail(where, "x.dtype", f"{np.dtype(aval.dtype).name} (the exported input)",
                     np.dtype(x.dtype).name, "Convert and normalise the input as in training")
            x = x.astype(aval.dtype)
        return exported.call(x)

    run.exported = exported
    return run
