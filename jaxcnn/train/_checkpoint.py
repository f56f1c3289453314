"""Checkpoints with orbax: the train state, the run key and the position in the run.

Each checkpoint is a folder ``<dir>/<step>/`` with the arrays (``state``: the
:class:`TrainState` and the key data) and a JSON part (``meta``: epoch, position within
the epoch, config, history, best value). Orbax writes to a temporary folder and renames
it when complete, so a process killed mid-write leaves the previous checkpoints intact;
only the last ``max_to_keep`` are kept.
"""

from __future__ import annotations

from pathlib import Path

import jax

from jaxcnn._checks import fail, is_int


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
        if not is_int(max_to_keep) or max_to_keep < 1:
            fail("Checkpoints", "max_to_keep", "a positive int", max_to_keep)
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
        return out.state, out.meta

    def read_meta(self, step=None):
        """The JSON part of checkpoint ``step`` (default: the latest)."""
        step = self.latest_step() if step is None else step
        return self._manager.restore(step, args=self._ocp.args.Composite(
            meta=self._ocp.args.JsonRestore())).meta

    def clear(self):
        """Deletes every checkpoint in the folder."""
        for step in self.steps():
            self._manager.delete(step)

    def close(self):
        self._manager.close()
