"""Data parallelism on 8 host devices, compared with one device (run by test_distributed.py).

``python _distributed_mesh_script.py OUT CACHE`` (with
``--xla_force_host_platform_device_count=8``; ``CACHE`` a compilation-cache folder shared
with the other subprocesses of the tests, as the fits compile the same programs again)
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
from jaxcnn.train import (Checkpoints, create_train_state, fit,  # noqa: E402
                          make_ensemble_train_step, make_train_step)

import jaxcnn  # noqa: E402

jaxcnn.enable_compilation_cache(sys.argv[2])
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


def max_diff(a, b):
    diffs = jax.tree.map(lambda u, v: float(np.max(np.abs(np.asarray(u, np.float64)
                                                           - np.asarray(v, np.float64)),
                                                    initial=0.0)), a, b)
    return max(jax.tree.leaves(diffs), default=0.0)


NET, OPT = model_and_optimizer()
STEP1 = jax.jit(make_train_step(NET, OPT))  # the single-device reference, compiled once


def momentum_traces(ts):
    """The SGD momentum trace of each parameter (after the first step, the gradient)."""
    return [np.asarray(a, np.float64) for a in jax.tree.leaves(ts.opt_state)
            if np.ndim(a) > 0]


def step_findings(mesh):
    """Steps on one device and on 8 (the same global batches). The gradients are read from
    the momentum traces: ``g_k = trace_k - 0.9 trace_(k-1)``. The single-device result is
    also the reference of the multi-process run (``reference``)."""
    ts1 = create_train_state(NET, OPT, jax.random.key(0), (6, 6, 1))
    ts8 = distributed.replicate(ts1, mesh)
    step1, step8 = STEP1, jax.jit(make_train_step(NET, OPT))
    out = dict(loss=0.0, grads=0.0)
    prev1, prev8 = momentum_traces(ts1), momentum_traces(ts8)
    for batch in batches():
        sharded = distributed.shard_batch(batch, mesh)
        ts1, m1 = step1(ts1, batch, jax.random.key(1))
        ts8, m8 = step8(ts8, sharded, jax.random.key(1))
        out["loss"] = max(out["loss"], abs(float(m1["loss"]) - float(m8["loss"])))
        t1, t8 = momentum_traces(ts1), momentum_traces(ts8)
        out["grads"] = max(out["grads"], max_diff([a - 0.9 * b for a, b in zip(t1, prev1)],
                                                  [a - 0.9 * b for a, b in zip(t8, prev8)]))
        prev1, prev8 = t1, t8
    out.update(params=max_diff(ts1.params, ts8.params), opt_state=max_diff(ts1.opt_state,
                                                                            ts8.opt_state),
               batch_norm_state=max_diff(ts1.state, ts8.state), devices=len(mesh.devices.flat),
               per_device_batch=sharded["x"].addressable_shards[0].data.shape[0],
               params_replicated=all(a.sharding.is_fully_replicated
                                     for a in jax.tree.leaves(ts8.params)),
               reference={jax.tree_util.keystr(path): np.asarray(leaf).tolist() for path, leaf
                          in jax.tree_util.tree_flatten_with_path((ts1.params, ts1.state))[0]})
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


def fit_findings(mesh, data, tmp):
    """``fit`` on one device, on the mesh (both epoch loops), and on the mesh stopped after
    one epoch and resumed (without evaluation: it is the same program as above)."""
    net, opt = model_and_optimizer()
    kw = dict(epochs=2, batch_size=16, progress=False, eval_batch_size=16, keep_best=False)
    val, test = (data[0][:24], data[1][:24]), (data[0][:40], data[1][:40])
    keys = ("train_loss", "val_loss", "val_accuracy")
    ref = fit(net, opt, data, val, test, **kw)
    out = {}
    for loop in ("python", "scan"):  # the scan run's evaluation is the python run's
        got = fit(net, opt, data, val, test if loop == "python" else None, mesh=mesh,
                  epoch_loop=loop, **kw)
        out[loop] = dict(params=max_diff(ref.train_state, got.train_state),
                         history=max_diff([[row[k] for k in keys] for row in ref.history],
                                          [[row[k] for k in keys] for row in got.history]))
        if loop == "python":
            out["test_count"] = got.test_metrics["count"]
            whole = got
    fit(net, opt, data, mesh=mesh, workdir=tmp / "parts", **{**kw, "epochs": 1})
    resumed = fit(net, opt, data, mesh=mesh, workdir=tmp / "parts", resume=True, **kw)
    out["resume"] = dict(params=max_diff(whole.train_state, resumed.train_state),
                         history=max_diff([row["train_loss"] for row in whole.history],
                                          [row["train_loss"] for row in resumed.history]),
                         steps=[whole.history[-1]["step"], resumed.history[-1]["step"]])
    return out


def checkpoint_findings(mesh, tmp):
    """Saved from 8 devices (a replicated and a row-split array), restored onto 4, 2 and 1."""
    tree = {"replicated": distributed.replicate({"w": np.arange(6.0, dtype=np.float32)}, mesh),
            "sharded": distributed.shard_batch(np.arange(48.0, dtype=np.float32).reshape(16, 3),
                                               mesh)}
    ckpts = Checkpoints(tmp / "ckpt")
    ckpts.save(1, tree, {})
    restored = []
    for n in (4, 2, 1):
        zeros = {"replicated": {"w": np.zeros(6, np.float32)},
                 "sharded": np.zeros((16, 3), np.float32)}
        if n == 1:
            template = jax.device_put(zeros, jax.devices()[0])
        else:
            small = distributed.data_mesh(jax.devices()[:n])
            template = {"replicated": distributed.replicate(zeros["replicated"], small),
                        "sharded": distributed.shard_batch(zeros["sharded"], small)}
        got, _ = ckpts.restore(template)
        restored.append(dict(devices=[len(got["replicated"]["w"].sharding.device_set),
                                      len(got["sharded"].sharding.device_set)],
                             equal=max_diff(jax.device_get(tree), jax.device_get(got)) == 0.0,
                             sharded_spec=str(getattr(got["sharded"].sharding, "spec", None))))
    ckpts.close()
    return dict(restored=restored)


def ensemble_findings():
    """16 members split over 8 devices (2 each, unrolled) against each member trained alone
    on one device with its key ``split(key, 16)[i]``; 12 members are refused."""
    mesh = distributed.member_mesh()
    keys = jax.random.split(jax.random.key(0), 16)
    alone = [create_train_state(NET, OPT, k, (6, 6, 1)) for k in keys]
    ens = distributed.shard_members(jax.tree.map(lambda *a: np.stack(a), *alone), mesh)
    step = jax.jit(make_ensemble_train_step(NET, OPT, strategy="unroll", mesh=mesh))
    run_keys = jax.random.split(jax.random.key(1), 16)
    loss = 0.0
    for batch in batches(steps=2):
        ens, metrics = step(ens, batch, jax.random.key(1))
        for i in range(16):
            alone[i], m = STEP1(alone[i], batch, run_keys[i])
            loss = max(loss, abs(float(m["loss"]) - float(metrics["loss"][i])))
    stacked = jax.tree.map(lambda *a: np.stack(a), *alone)
    messages = []
    twelve = jax.tree.map(lambda a: a[:12], stacked)
    for call in (lambda: distributed.shard_members(twelve, mesh),
                 lambda: step(twelve, batch, jax.random.key(1))):
        try:
            call()
        except ValueError as err:
            messages.append(str(err))
    return dict(loss=loss, params=max_diff(stacked.params, ens.params),
                state=max_diff(stacked.state, ens.state), steps=ens.step.tolist(),
                spec=str(ens.params["conv_0"]["kernel"].sharding.spec),
                per_device=ens.params["conv_0"]["kernel"].addressable_shards[0].data.shape[0],
                errors=messages)


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
                    ensemble=ensemble_findings())
    with tempfile.TemporaryDirectory() as tmp:
        findings["fit"] = fit_findings(mesh, data, Path(tmp))
        findings["checkpoint"] = checkpoint_findings(mesh, Path(tmp))
    (Path(out) / "findings.json").write_text(json.dumps(findings, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
