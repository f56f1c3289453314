"""Parameter trees in the order layers build them: the paths and shapes that loading a
checkpoint and converting foreign weights compare against.

``jax.tree`` functions rebuild dicts with sorted keys; the helpers here keep the
insertion order of the dicts a model's ``init`` returns, which is the order of its
layers (``conv_0`` before ``dense_10`` before ``serial_2``), so that "the first
parameter that differs" means the first in the network.
"""

from __future__ import annotations

import jax


def path_leaves(tree, prefix=()):
    """``{path: leaf}`` in the tree's own order, with paths as tuples of strings (dict keys
    and sequence indices), so that a tree saved as dicts and lists compares with one made
    of tuples; ``None`` holds no leaf.

    Example:
      >>> from jaxcnn._trees import path_leaves
      >>> path_leaves({"conv_1": {"kernel": 1, "bias": 2}, "conv_0": (3, None)})
      {('conv_1', 'kernel'): 1, ('conv_1', 'bias'): 2, ('conv_0', '0'): 3}
    """
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {} if tree is None else {prefix: tree}
    out = {}
    for k, v in items:
        out.update(path_leaves(v, prefix + (str(k),)))
    return out


def key_path(path):
    """A ``jax.tree_util`` key path as :func:`path_leaves` writes it."""
    names = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                names.append(str(getattr(k, attr)))
                break
        else:
            names.append(str(k))
    return tuple(names)


def _abstract(tree):
    """``tree`` with each array replaced by its ``ShapeDtypeStruct``, dict order kept."""
    if isinstance(tree, dict):
        return {k: _abstract(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_abstract(v) for v in tree)
    if tree is None:
        return None
    return jax.ShapeDtypeStruct(tree.shape, tree.dtype)


def abstract_init(model, in_shape):
    """``(params, state)`` of ``model.init`` as ``ShapeDtypeStruct`` trees, computed from
    shapes alone, with the dicts in the order the layers built them.

    Example:
      >>> from jaxcnn import serial, conv, dense, flatten
      >>> from jaxcnn._trees import abstract_init
      >>> params, state = abstract_init(serial(conv(4, 3), flatten(), dense(2)), (5, 5, 1))
      >>> list(params), params["dense_2"]["kernel"].shape
      (['conv_0', 'flatten_1', 'dense_2'], (36, 2))
    """
    out = {}

    def init(key):
        _, params, state = model.init(key, tuple(in_shape))
        out["trees"] = _abstract(params), _abstract(state)
        return params, state

    jax.eval_shape(init, jax.random.key(0))
    return out["trees"]


def unflatten_like(template, leaves):
    """The ``{path: leaf}`` dict ``leaves`` arranged in ``template``'s structure."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(template)
    return jax.tree_util.tree_unflatten(treedef, [leaves[key_path(p)] for p, _ in flat])
