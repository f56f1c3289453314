"""Data parallelism on 8 host devices, compared with one device (run by test_distributed.py).

``python _distributed_mesh_script.py OUT`` (with ``--xla_force_host_platform_device_count=8``)
writes ``OUT/findings.json``: the largest differences between sharded and single-device
results, error messages and checkpoint placements, which the tests then assert on.
"""

import json
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _distributed_common import batches, model_and_optimizer  # noqa: E402

from jaxcnn import distributed  # noqa: E402
from jaxcnn.train import (Checkpoints, create_train_state, fit, make_train_step,  # noqa: E402
                          softmax_cross_entropy)

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


def max_diff(a, b):
    diffs = jax.tree.map(lambda u, v: float(np.max(np.abs(np.asarray(u, np.float64)
                                                           - np.asarray(v, np.float64)),
                                                    initial=0.0)), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


def step_findings(mesh):
    net, opt = model_and_optimizer()
    ts1 = create_train_state(net, opt, jax.random.key(0), (6, 6, 1))
    ts8 = distributed.replicate(ts1, mesh)
    step = make_train_step(net, opt)
    step1, step8 = jax.jit(step), jax.jit(step)

    def loss(params, state, batch):
        logits, _ = net.apply(params, state, batch["x"], train=True, key=jax.random.key(2))
        return softmax_cross_entropy(logits, batch["y"])

    grad = jax.jit(jax.value_and_grad(loss))
    out = dict(loss=0.0, grads=0.0)
    for batch in batches():
        sharded = distributed.shard_batch(batch, mesh)
        (l1, g1), (l8, g8) = grad(ts1.params, ts1.state, batch), grad(ts8.params, ts8.state,
                                                                       sharded)
        out["grads"] = max(out["grads"], max_diff(g1, g8))
        ts1, m1 = step1(ts1, batch, jax.random.key(1))
        ts8, m8 = step8(ts8, sharded, jax.random.key(1))
        out["loss"] = max(out["loss"], abs(float(m1["loss"]) - float(m8["loss"])),
                          abs(float(l1) - float(l8)))
    out.update(params=max_diff(ts1.params, ts8.params), opt_state=max_diff(ts1.opt_state,
                                                                            ts8.opt_state),
               batch_norm_state=max_diff(ts1.state, ts8.state), devices=len(mesh.devices.flat),
               per_device_batch=sharded["x"].addressable_shards[0].data.shape[0],
               params_replicated=all(a.sharding.is_fully_replicated
                                     for a in jax.tree.leaves(ts8.params)))
    return out


def error_findings(mesh, data):
    messages = []
    for call in (lambda: distributed.shard_batch({"x": np.zeros((12, 2))}, mesh),
                 lambda: distributed.local_rows(12, mesh),
                 lambda: fit(*model_and_optimizer(), data, epochs=1, batch_size=12,
                             progress=False, mesh=mesh)):
        try:
            call()
        except ValueError as err:
            messages.append(str(err))
    return messages


def fit_findings(mesh, data):
    net, opt = model_and_optimizer()
    kw = dict(val=(data[0][:24], data[1][:24]), test=(data[0][:40], data[1][:40]), epochs=2,
              batch_size=16, progress=False, eval_batch_size=16)
    ref = fit(net, opt, data, **kw)
    out = {"test_count": []}
    for loop in ("python", "scan"):
        got = fit(net, opt, data, mesh=mesh, epoch_loop=loop, **kw)
        history = [[row[k] for k in ("train_loss", "val_loss", "val_accuracy")]
                   for row in got.history]
        ref_history = [[row[k] for k in ("train_loss", "val_loss", "val_accuracy")]
                       for row in ref.history]
        out[loop] = dict(params=max_diff(ref.train_state, got.train_state),
                         history=max_diff(ref_history, history))
        out["test_count"].append(got.test_metrics["count"])
    return out


def resume_findings(mesh, data, tmp):
    net, opt = model_and_optimizer()
    kw = dict(batch_size=16, progress=False, mesh=mesh, keep_best=False)
    whole = fit(net, opt, data, epochs=3, workdir=tmp / "whole", **kw)
    fit(net, opt, data, epochs=1, workdir=tmp / "parts", **kw)
    resumed = fit(net, opt, data, epochs=3, workdir=tmp / "parts", resume=True, **kw)
    return dict(params=max_diff(whole.train_state, resumed.train_state),
                steps=[int(whole.train_state.step), int(resumed.train_state.step)])


def checkpoint_findings(mesh, tmp):
    tree = {"replicated": distributed.replicate({"w": np.arange(6.0, dtype=np.float32)}, mesh),
            "sharded": distributed.shard_batch(np.arange(48.0, dtype=np.float32).reshape(16, 3),
                                            mesh)}
    ckpts = Checkpoints(tmp / "ckpt")
    ckpts.save(1, tree, {})
    mesh4 = distributed.data_mesh(jax.devices()[:4])
    template = {"replicated": distributed.replicate({"w": np.zeros(6, np.float32)}, mesh4),
                "sharded": distributed.shard_batch(np.zeros((16, 3), np.float32), mesh4)}
    restored, _ = ckpts.restore(template)
    ckpts.close()
    return dict(restored_devices=[len(restored["replicated"]["w"].sharding.device_set),
                                  len(restored["sharded"].sharding.device_set)],
                equal=max_diff(jax.device_get(tree), jax.device_get(restored)) == 0.0,
                sharded_spec=str(restored["sharded"].sharding.spec))


def main(out):
    mesh = distributed.data_mesh()
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(48, 6, 6, 1)).astype(np.float32),
            rng.integers(0, 3, 48).astype(np.int32))
    batch = next(batches())
    local = distributed.shard_local_batch(batch, mesh)
    findings = dict(step=step_findings(mesh), errors=error_findings(mesh, data),
                    local_rows=[distributed.local_rows(16, mesh).start,
                                distributed.local_rows(16, mesh).stop],
                    local_equals_global=max_diff(local, distributed.shard_batch(batch, mesh)) == 0
                    and local["x"].sharding == distributed.shard_batch(batch, mesh)["x"].sharding,
                    fit=fit_findings(mesh, data))
    with tempfile.TemporaryDirectory() as tmp:
        findings["resume"] = resume_findings(mesh, data, Path(tmp))
        findings["checkpoint"] = checkpoint_findings(mesh, Path(tmp))
    (Path(out) / "findings.json").write_text(json.dumps(findings, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
