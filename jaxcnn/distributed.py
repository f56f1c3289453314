"""Data parallelism on JAX's own runtime: one device, a device mesh, many processes.

The training step stays the same pure function (:func:`jaxcnn.train.make_train_step`);
what changes is where its inputs live. :func:`data_mesh` makes a one-axis mesh over every
device of every process; :func:`replicate` puts the train state on all of them and
:func:`shard_batch` splits a batch along the ``"data"`` axis. ``jax.jit`` then partitions
the step (GSPMD): each device runs its slice of the batch, the gradients are summed
across devices by an all-reduce XLA inserts, and batch-norm statistics are means over
the *global* batch (the reductions over the batch axis become cross-device reductions),
so a sharded step computes what one device computes on the whole batch.

Several processes (hosts): call :func:`initialize` first thing, before any other JAX
call; every process then runs the same program. Each process either holds the whole
global batch (:func:`shard_batch` takes its own rows) or loads only its rows
(:func:`local_rows`) and hands them to :func:`shard_local_batch`
(``jax.make_array_from_process_local_data``).

A batch whose size is not a multiple of the number of devices is refused with a
``ValueError`` (nothing is padded): pick a batch size divisible by :func:`num_shards`.

Ensembles and sweeps split the other way: :func:`member_mesh` names its axis
``"members"``, :func:`shard_members` splits a stacked ensemble state along it, and
``make_ensemble_train_step(..., mesh=mesh)`` runs each device's members in one compiled
step with no communication between devices.

Example:
  >>> import jax, numpy as np
  >>> from jaxcnn import distributed
  >>> mesh = distributed.data_mesh()
  >>> n = distributed.num_shards(mesh)
  >>> batch = distributed.shard_batch({"x": np.ones((2 * n, 3), np.float32)}, mesh)
  >>> batch["x"].shape == (2 * n, 3), batch["x"].sharding.spec[0]
  (True, 'data')
"""

from __future__ import annotations

import numpy as np
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcnn import _host_threads
from jaxcnn._checks import check_positive_int, fail, is_int

DATA_AXIS = "data"
MEMBER_AXIS = "members"


def initialize(coordinator_address=None, num_processes=None, process_id=None, *,
               local_device_ids=None, bind_address=None, heartbeat_timeout_s=100,
               initialization_timeout_s=300):
    """Joins this process to a multi-process JAX run (``jax.distributed.initialize``).

    Call it before any other JAX call. ``None`` arguments are read by JAX from the
    environment (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``)
    or detected from the cluster (SLURM, Open MPI, TPU pods). Processes that lose a peer
    stop with an error once ``heartbeat_timeout_s`` has passed without its heartbeats.

    Args:
      coordinator_address: ``"host:port"`` of process 0 (which serves it).
      num_processes, process_id: this run's process count and this process's index.
      local_device_ids: the local devices this process uses (default all).
      bind_address: ``"ip:port"`` process 0's coordinator listens on (default: every
        interface, ``[::]:port``); ``"127.0.0.1:port"`` keeps a one-machine run local.
      heartbeat_timeout_s: seconds after which a silent process is considered dead.
      initialization_timeout_s: seconds to wait for every process to join.

    Example (not run: it must be the first JAX call of a process)::

        from jaxcnn import distributed
        distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=0)
    """
    where = "jaxcnn.distributed.initialize"
    for name, value in (("heartbeat_timeout_s", heartbeat_timeout_s),
                        ("initialization_timeout_s", initialization_timeout_s)):
        check_positive_int(where, name, value, "a positive int (seconds)")
    if coordinator_address is not None and (
            not isinstance(coordinator_address, str) or ":" not in coordinator_address):
        fail(where, "coordinator_address", "'host:port' or None", coordinator_address)
    if num_processes is not None and (not is_int(num_processes) or num_processes < 1):
        fail(where, "num_processes", "a positive int or None", num_processes)
    if process_id is not None and (not is_int(process_id) or not 0 <= process_id < (
            num_processes or process_id + 1)):
        fail(where, "process_id", f"an int in [0, num_processes={num_processes})", process_id)
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               local_device_ids=local_device_ids,
                               coordinator_bind_address=bind_address,
                               initialization_timeout=initialization_timeout_s,
                               heartbeat_timeout_seconds=heartbeat_timeout_s)


def data_mesh(devices=None, axis=DATA_AXIS):
    """A one-axis mesh named ``axis`` over ``devices`` (default: every device of every
    process, ``jax.devices()``). Its axis is of JAX's ``Auto`` type, so ``jax.jit``
    partitions the unchanged training step by propagation from its inputs' shardings."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        fail("jaxcnn.distributed.data_mesh", "devices", "a non-empty list of devices", devices)
    return Mesh(np.asarray(devices), (axis,), axis_types=(jax.sharding.AxisType.Auto,))


def member_mesh(devices=None):
    """A one-axis mesh named ``"members"`` over ``devices`` (default every device), along
    which :func:`shard_members` splits the members of an ensemble."""
    return data_mesh(devices, MEMBER_AXIS)


def check_mesh(where, mesh, axis=DATA_AXIS):
    if not isinstance(mesh, Mesh):
        fail(where, "mesh", "a jax.sharding.Mesh", type(mesh).__name__,
             "Make one with jaxcnn.distributed.data_mesh()", exc=TypeError)
    if axis is not None and axis not in mesh.axis_names:
        fail(where, "mesh axes", f"a tuple containing {axis!r}", mesh.axis_names,
             "Make one with jaxcnn.distributed.data_mesh()")
    return mesh


def num_shards(mesh, axis=DATA_AXIS):
    """The number of slices a batch is split into (the size of ``axis``)."""
    return int(check_mesh("jaxcnn.distributed.num_shards", mesh, axis).shape[axis])


def _global_array(a, sharding):
    if isinstance(a, jax.Array) and a.sharding == sharding:
        return a
    host = np.asarray(a)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree, mesh):
    """``tree`` (numpy or single-device arrays, the same on every process) as global
    arrays held whole by every device of ``mesh``: the train state's placement."""
    sharding = NamedSharding(check_mesh("jaxcnn.distributed.replicate", mesh, None),
                             PartitionSpec())
    return jax.tree.map(lambda a: _global_array(a, sharding), tree)


def batch_sharding(mesh, ndim=1, axis=DATA_AXIS, batch_dim=0):
    """The ``NamedSharding`` splitting dimension ``batch_dim`` of an ``ndim``-dimensional
    array along ``axis``."""
    check_mesh("jaxcnn.distributed.batch_sharding", mesh, axis)
    spec = [None] * ndim
    spec[batch_dim] = axis
    return NamedSharding(mesh, PartitionSpec(*spec))


def _check_divisible(where, n, shards, what="batch size"):
    if n % shards:
        fail(where, what, f"a multiple of the number of devices ({shards})", n,
             f"Use a {what} divisible by {shards}, e.g. {max(shards, n - n % shards)}")


def shard_batch(batch, mesh, axis=DATA_AXIS, batch_dim=0):
    """A pytree of global arrays split along ``batch_dim`` over ``axis`` of ``mesh``.

    Every process passes the same whole batch (numpy); each device receives its rows. The
    batch size must be a multiple of the number of devices along ``axis``."""
    where = "jaxcnn.distributed.shard_batch"
    shards = int(check_mesh(where, mesh, axis).shape[axis])

    def put(a):
        a = np.asarray(a) if not isinstance(a, jax.Array) else a
        _check_divisible(where, a.shape[batch_dim], shards)
        return _global_array(a, batch_sharding(mesh, a.ndim, axis, batch_dim))

    return jax.tree.map(put, batch)


def shard_members(tree, mesh, axis=MEMBER_AXIS):
    """A stacked ensemble pytree (every leaf with a leading member axis of size K, as
    :func:`jaxcnn.train.create_ensemble_state` makes) split along ``axis`` of ``mesh``:
    each device holds K / (devices) members. K must be a multiple of the number of devices.

    Example:
      >>> import jax, optax
      >>> from jaxcnn import serial, flatten, dense, distributed
      >>> from jaxcnn.train import create_ensemble_state
      >>> mesh = distributed.member_mesh()
      >>> k = distributed.num_shards(mesh, "members")
      >>> ens = create_ensemble_state(serial(flatten(), dense(3)), optax.sgd(0.1),
      ...                             jax.random.split(jax.random.key(0), k), (4,))
      >>> ens = distributed.shard_members(ens, mesh)
      >>> ens.params["dense_1"]["kernel"].sharding.spec
      P('members', None, None)
    """
    where = "jaxcnn.distributed.shard_members"
    shards = int(check_mesh(where, mesh, axis).shape[axis])

    def put(a):
        shape = np.shape(a)
        if shape == ():
            fail(where, "every leaf", "an array with a leading member axis", "a scalar",
                 "Stack the members with jaxcnn.train.create_ensemble_state")
        _check_divisible(where, shape[0], shards, "member count")
        return _global_array(a, batch_sharding(mesh, len(shape), axis))

    return jax.tree.map(put, tree)


def local_rows(global_batch_size, mesh, axis=DATA_AXIS):
    """The ``slice`` of a global batch that this process loads for
    :func:`shard_local_batch` (the rows of its own devices; contiguous in
    :func:`data_mesh`)."""
    where = "jaxcnn.distributed.local_rows"
    check_positive_int(where, "global_batch_size", global_batch_size)
    shards = int(check_mesh(where, mesh, axis).shape[axis])
    _check_divisible(where, global_batch_size, shards, "global_batch_size")
    indices = batch_sharding(mesh, 1, axis).addressable_devices_indices_map((global_batch_size,))
    starts = sorted({idx[0].start or 0 for idx in indices.values()})
    per = global_batch_size // shards
    stop = starts[-1] + per
    if stop - starts[0] != per * len(starts):
        fail(where, "mesh", "one whose local devices hold contiguous rows of the batch",
             mesh.devices.tolist(), "Use jaxcnn.distributed.data_mesh()")
    return slice(starts[0], stop)


def shard_local_batch(local_batch, mesh, axis=DATA_AXIS):
    """Global arrays from this process's rows of the batch (:func:`local_rows`), the
    global batch being the processes' rows in process order
    (``jax.make_array_from_process_local_data``)."""
    where = "jaxcnn.distributed.shard_local_batch"
    mesh = check_mesh(where, mesh, axis)
    local = sum(1 for d in mesh.devices.flat if d.process_index == jax.process_index())

    def put(a):
        a = np.asarray(a)
        _check_divisible(where, a.shape[0], local, "local batch size")
        return jax.make_array_from_process_local_data(batch_sharding(mesh, a.ndim, axis), a)

    return jax.tree.map(put, local_batch)


def to_host(tree):
    """Numpy copies of a pytree of fully replicated (or process-local) arrays; every
    process gets the whole value."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


class Placement:
    """Where :func:`jaxcnn.train.fit` keeps its arrays: the default device without a
    mesh; replicated state and data with batches split along ``"data"`` with one."""

    def __init__(self, mesh, batch_size, where):
        self.mesh = None if mesh is None else check_mesh(where, mesh)
        if self.mesh is not None and is_int(batch_size):
            _check_divisible(where, batch_size, num_shards(self.mesh), "batch_size")
        # steps dispatched before waiting for one: XLA:CPU's pool may be too small for the
        # all-reduces of many queued steps (jaxcnn/_host_threads.py); None: no limit
        self.run_ahead = None
        if self.mesh is not None:
            local = [d for d in self.mesh.devices.flat if d.process_index == jax.process_index()]
            if local and all(d.platform == "cpu" for d in local):
                self.run_ahead = _host_threads.run_ahead_limit(len(local))

    def state(self, tree):
        return jax.device_put(tree) if self.mesh is None else replicate(tree, self.mesh)

    data = state

    def rows(self, idx):
        """Example indices of a step ``(B,)`` or of several steps ``(S, B)``."""
        if self.mesh is None:
            return idx
        return shard_batch(idx, self.mesh, batch_dim=idx.ndim - 1)

    def local(self, tree):
        """``tree`` where a single-device computation (evaluation) can read it."""
        return tree if self.mesh is None else to_host(tree)


__all__ = ["DATA_AXIS", "MEMBER_AXIS", "batch_sharding", "data_mesh", "initialize",
           "local_rows", "member_mesh", "num_shards", "replicate", "shard_batch",
           "shard_local_batch", "shard_members", "to_host"]
