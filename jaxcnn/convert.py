"""Weights from PyTorch: a ``state_dict`` mapped onto a jaxcnn model of the same architecture.

PyTorch's ``state_dict`` lists each module's tensors in the order the modules were
registered (``weight`` before ``bias``; batch norm ``weight``, ``bias``,
``running_mean``, ``running_var``, ``num_batches_tracked``). A jaxcnn model's params and
state, walked in the order its layers were built (for each layer its params, then its
state), give the same sequence for the same architecture, so the two are paired in order;
``num_batches_tracked`` (which jaxcnn does not keep) is skipped. Each pair is converted
to jaxcnn's layout and its shape checked:

- convolution kernels ``(C_out, C_in // groups, *k)`` become spatial-first
  ``(*k, C_in // groups, C_out)`` (1-d, 2-d and 3-d; grouped and depthwise alike);
- transposed-convolution kernels ``(C_in, C_out // groups, *k)`` become
  ``(*k, C_in, C_out // groups)``; when both readings fit a square kernel, the layer's
  kind decides (``conv_transpose``, as :func:`jaxcnn.summary` shows it; a layer renamed
  with :func:`jaxcnn.named` keeps it only if its name contains ``conv_transpose``);
- ``Linear`` weights ``(out, in)`` become ``(in, out)``; after a flatten of a
  ``(*spatial, C)`` feature map their rows are permuted from PyTorch's ``(C, *spatial)``
  order to jaxcnn's ``(*spatial, C)`` order;
- batch-norm ``weight``/``bias`` go to params ``scale``/``bias``, ``running_mean`` and
  ``running_var`` to state ``mean``/``var``; everything else is copied as it is.

torch is not needed: the values may be torch tensors or numpy arrays.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxcnn._checks import fail
from jaxcnn._trees import abstract_init, unflatten_like
from jaxcnn.layers._base import check_model

__all__ = ["from_torch"]

_SKIPPED = ("num_batches_tracked",)


def _to_numpy(where, key, value):
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray) and not hasattr(value, "__array__"):
        fail(where, f"state_dict[{key!r}]", "a torch tensor or a numpy array",
             type(value).__name__, exc=TypeError)
    return np.asarray(value)


def _slots(params, state, prefix=()):
    """``(path, kind, leaf)`` for every array, layer by layer: each layer's params, then its
    state; ``kind`` is ``"params"`` or ``"state"``."""
    params = params if isinstance(params, dict) else dict(enumerate(params or ()))
    state = state if isinstance(state, dict) else dict(enumerate(state or ()))
    out = []
    for tree, kind in ((params, "params"), (state, "state")):
        out += [(prefix + (str(k),), kind, v) for k, v in tree.items()
                if hasattr(v, "shape")]
    for k in list(params) + [k for k in state if k not in params]:
        p, s = params.get(k), state.get(k)
        if not hasattr(p, "shape") and not hasattr(s, "shape"):
            out += _slots(p, s, prefix + (str(k),))
    return out


def _is_shape(s):
    return isinstance(s, tuple) and all(isinstance(d, int) for d in s)


def _layer_info(model, in_shape):
    """``{layer path: (kind, source)}``; ``source`` is the ``(*spatial, C)`` shape that was
    flattened into a layer's 1-d input (looking back over layers that keep that shape, such
    as dropout), or ``None``."""
    from jaxcnn.summary import summary

    rows = summary(model, in_shape).rows
    leaves = [r for r in rows if not any(o.path.startswith(r.path + "/") for o in rows)]
    shapes = [tuple(in_shape)] + [r.out_shape for r in leaves]  # shapes[i]: leaves[i]'s input
    info = {}
    for i, row in enumerate(leaves):
        flat, source = shapes[i], None
        if _is_shape(flat) and len(flat) == 1:
            j = i
            while j > 0 and shapes[j] == flat:
                j -= 1
            before = shapes[j]
            if (_is_shape(before) and len(before) >= 2 and math.prod(before) == flat[0]
                    and not leaves[j].kind.endswith("channels_first")):
                source = before
        info[row.path] = (row.kind, source)
    return info


def _torch_shapes(jax_shape, transposed_first):
    """The PyTorch shapes that map onto a jaxcnn kernel of ``jax_shape``, best first."""
    if len(jax_shape) == 2:
        return [("dense", (jax_shape[1], jax_shape[0]))]
    k, a, b = tuple(jax_shape[:-2]), jax_shape[-2], jax_shape[-1]
    conv, transposed = ("conv", (b, a) + k), ("conv_transpose", (a, b) + k)
    return [transposed, conv] if transposed_first else [conv, transposed]


def _convert(w, layout, source):
    """A PyTorch array ``w`` in jaxcnn's layout."""
    if layout == "dense":
        if source is not None:  # rows in (C, *spatial) order -> (*spatial, C)
            n = len(source) - 1
            w = w.reshape((w.shape[0], source[-1]) + tuple(source[:-1]))
            w = np.transpose(w, (0,) + tuple(range(2, n + 2)) + (1,)).reshape(w.shape[0], -1)
        return w.T
    if layout == "conv":
        return np.transpose(w, tuple(range(2, w.ndim)) + (1, 0))
    if layout == "conv_transpose":
        return np.transpose(w, tuple(range(2, w.ndim)) + (0, 1))
    return w


def _pair(where, key, w, path, leaf, kind, source, counts):
    if leaf.ndim >= 2 and path[-1].endswith("kernel") and w.ndim == leaf.ndim:
        options = _torch_shapes(leaf.shape, "conv_transpose" in kind)
    else:
        options = [("copy", tuple(leaf.shape))]
    for layout, shape in options:
        if tuple(w.shape) == shape:
            return _convert(w, layout, source).astype(leaf.dtype)
    fail(where, f"state_dict[{key!r}]",
         f"of shape {options[0][1]} to fit jaxcnn's {'/'.join(path)} {tuple(leaf.shape)}",
         tuple(w.shape), f"{counts}. Check that the two architectures match layer by layer")


def from_torch(model, state_dict, in_shape):
    """``(params, state)`` for ``model`` from a PyTorch ``state_dict`` of the same architecture.

    Args:
      model: a :class:`jaxcnn.Layer` built like the PyTorch module (the same layers in the
        same order, e.g. :func:`jaxcnn.models.resnet18` for torchvision's ``resnet18``).
      state_dict: ``module.state_dict()``: an ordered mapping of names to torch tensors or
        numpy arrays, in the module's registration order.
      in_shape: the shape of one input, channels-last and without the batch axis, e.g.
        ``(224, 224, 3)`` for PyTorch's ``(N, 3, 224, 224)``.

    Returns:
      ``(params, state)`` as JAX arrays, for ``model.apply(params, state, x, train=False)``
      with ``x`` channels-last (``x_torch.permute(0, 2, 3, 1)`` for images).

    Raises:
      ValueError: the first pair whose shapes do not fit, naming both sides, or a count of
        arrays that differs, naming the first array without a partner.

    Example:
      >>> import numpy as np
      >>> from jaxcnn import serial, conv, relu, flatten, dense
      >>> from jaxcnn.convert import from_torch
      >>> net = serial(conv(4, 3), relu(), flatten(), dense(2))
      >>> torch_sd = {"0.weight": np.ones((4, 1, 3, 3)), "0.bias": np.zeros(4),
      ...             "3.weight": np.ones((2, 4 * 5 * 5)), "3.bias": np.zeros(2)}
      >>> params, state = from_torch(net, torch_sd, (7, 7, 1))
      >>> params["conv_0"]["kernel"].shape, params["dense_3"]["kernel"].shape
      ((3, 3, 1, 4), (100, 2))
    """
    where = "from_torch"
    check_model(where, model)
    if not hasattr(state_dict, "items"):
        fail(where, "state_dict", "a mapping of names to arrays (module.state_dict())",
             type(state_dict).__name__, exc=TypeError)
    torch_items = [(k, _to_numpy(where, k, v)) for k, v in state_dict.items()
                   if not str(k).endswith(_SKIPPED)]
    params, state = abstract_init(model, in_shape)
    info = _layer_info(model, in_shape)
    slots = _slots(params, state)
    counts = (f"The jaxcnn model has {len(slots)} arrays (params and state), the state dict "
              f"{len(torch_items)} (num_batches_tracked left out)")
    out = {"params": {}, "state": {}}
    for (key, w), (path, kind, leaf) in zip(torch_items, slots):
        layer_kind, source = info.get("/".join(path[:-1]), ("", None))
        out[kind][path] = _pair(where, key, w, path, leaf, layer_kind, source, counts)
    if len(torch_items) != len(slots):
        n = min(len(torch_items), len(slots))
        extra = (f"torch's {torch_items[n][0]!r}" if len(torch_items) > n
                 else f"jaxcnn's {'/'.join(slots[n][0])}")
        fail(where, "the number of arrays", "equal on both sides", f"{extra} has no partner",
             f"{counts}. Check that the two architectures match layer by layer")
    return (unflatten_like(params, {p: jnp.asarray(v) for p, v in out["params"].items()}),
            unflatten_like(state, {p: jnp.asarray(v) for p, v in out["state"].items()}))
