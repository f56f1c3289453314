"""Checkpoints with orbax: the train state, the run key and the position in the run.

Each checkpoint is a folder ``<dir>/<step>/`` with the arrays (``state``: the
:class:`TrainState` and the key data) and a JSON part (``meta``: epoch, position within
the epoch, config, history, best value, and the path, dtype and shape of every saved
array). Orbax writes to a temporary folder and renames it when complete, so a process
killed mid-write leaves the previous checkpoints intact (``tests/test_train_resume.py``
kills one inside the write); only the last ``max_to_keep`` are kept.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxcnn._checks import check_positive_int, fail

_SIGNATURE = "array_signature"


def _key_name(k):
    for attr in ("name", "key", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def signature(tree) -> dict:
    """``{"params/conv_0/kernel": "float32[3, 3, 1, 8]", ...}`` for every array of ``tree``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxcnn.train._checkpoint import signature
      >>> signature({"w": jnp.zeros((2, 3)), "step": jnp.int32(0)})
      {'step': 'int32[]', 'w': 'float32[2, 3]'}
    """
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(_key_name(k) for k in path): f"{np.dtype(leaf.dtype).name}"
            f"{list(np.shape(leaf))}" for path, leaf in flat}


def signature_difference(saved: dict, current: dict) -> str | None:
    """A sentence naming up to three arrays that differ between two signatures, or ``None``."""
    diffs = [f"{p}: {saved[p]} in the checkpoint, {current[p]} now"
             for p in current if p in saved and saved[p] != current[p]]
    diffs += [f"{p} ({current[p]}) not in the checkpoint" for p in current if p not in saved]
    diffs += [f"{p} ({saved[p]}) only in the checkpoint" for p in saved if p not in current]
    if not diffs:
        return None
    more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
    return "; ".join(diffs[:3]) + more


class Checkpoints:
    """A folder of numbered checkpoints (a thin wrapper over ``ocp.CheckpointManager``).

    Example:
      >>> import tempfile, jax.numpy as jnp
      >>> from jaxcnn.train import Checkpoints
      >>> ckpts = Checkpoints(tempfile.mkdtemp(), max_to_keep=2)
      >>> for step in (1, 2, 3):
      ...     ckpts.save(step, {"w": jnp.full((2,), step)}, {"epoch": 0})
      >>> ckpts.steps()
      [2, 3]
      >>> tree, meta = ckpts.restore({"w": jnp.zeros((2,), jnp.int32)})
      >>> tree["w"].tolist(), meta
      ([3, 3], {'epoch': 0})
      >>> ckpts.close()
    """

    def __init__(self, directory, max_to_keep=3):
        check_positive_int("Checkpoints", "max_to_keep", max_to_keep)
        import orbax.checkpoint as ocp  # imported here: it takes seconds to import

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                               enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self):
        """The steps of the complete checkpoints, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self):
        return self._manager.latest_step()

    def save(self, step, tree, meta):
        """Saves the array pytree ``tree`` and the JSON-ready dict ``meta`` as ``step``.

        A step that is already saved is left as it is: a resumed run replays the same
        steps, so it would write the same values."""
        if int(step) in self._manager.all_steps():
            return
        args = self._ocp.args
        meta = {**meta, _SIGNATURE: signature(tree)}
        self._manager.save(int(step), args=args.Composite(
            state=args.StandardSave(tree), meta=args.JsonSave(meta)), force=True)
        self._manager.wait_until_finished()

    def restore(self, template, step=None):
        """``(tree, meta)`` of checkpoint ``step`` (default: the latest); ``template`` is a
        pytree of arrays with the saved structure, shapes and dtypes."""
        step = self.latest_step() if step is None else step
        if step is None:
            fail("Checkpoints.restore", "the checkpoint folder", "non-empty", str(self.directory))
        abstract = jax.tree.map(self._ocp.utils.to_shape_dtype_struct, template)
        args = self._ocp.args
        out = self._manager.restore(step, args=args.Composite(
            state=args.StandardRestore(abstract), meta=args.JsonRestore()))
        meta = dict(out.meta)
        meta.pop(_SIGNATURE, None)
        return out.state, meta

    def read_meta(self, step=None):
        """The JSON part of checkpoint ``step`` (default: the latest)."""
        meta = dict(self._read_meta(step))
        meta.pop(_SIGNATURE, None)
        return meta

    def _read_meta(self, step=None):
        step = self.latest_step() if step is None else step
        return self._manager.restore(step, args=self._ocp.args.Composite(
            meta=self._ocp.args.JsonRestore())).meta

    def difference(self, template, step=None) -> str | None:
        """What differs between the arrays of checkpoint ``step`` (default: the latest) and
        the pytree ``template`` (see :func:`signature_difference`); ``None`` when nothing
        does or the checkpoint predates signatures."""
        saved = self._read_meta(step).get(_SIGNATURE)
        return None if saved is None else signature_difference(saved, signature(template))

    def clear(self):
        """Deletes every checkpoint in the folder."""
        for step in self.steps():
            self._manager.delete(step)

    def close(self):
        self._manager.close()
