#!/usr/bin/env bash
# Voxel classification on a GPU machine: shapes, AdrenalMNIST3D and the
# ModelNet10 chair/monitor pair x seeds 0 1 2, all with the experiment's default settings.
#
#   bash experiments/gpu/run_voxels.sh            # from the repository root
#
# Needs .gpu/data/voxels/{adrenalmnist3d_64,modelnet10_chair_monitor_32}.npz. Run folders
# go to $RUNS (default /tmp/voxel_runs); $OUT gets voxels_summary.json / .md (per seed:
# test_accuracy, test_auc, wall time; mean and std per dataset), voxels.log (the tail of
# every run's log) and a few plots. All runs start at once (they share the GPU; data
# generation and the host side run on the CPU cores); each is cut off after $RUN_TIMEOUT s.
#
# adrenal16 (AdrenalMNIST3D at --grid 16, 1/8 of the cost) is a cheap extra: it measured
# AUC 0.887 on a CPU (seed 0), a fallback default should the 32^3 runs miss 0.85.
#
# Environment: SEEDS ("0 1 2"), DATASETS ("shapes adrenal modelnet adrenal16"),
# RUN_TIMEOUT (450),
# EXTRA (more arguments for every run; a smoke test on a CPU:
#   EXTRA="--epochs 1 --train-per-class 4 --val-per-class 1 --test-per-class 2 --grid 16" \
#   OUT=/tmp/vox_smoke bash experiments/gpu/run_voxels.sh ).
set -u
OUT=${OUT:-/tmp/voxels_out}
RUNS=${RUNS:-/tmp/voxel_runs}
DATA=${DATA:-.gpu/data/voxels}
SEEDS=${SEEDS:-0 1 2}
DATASETS=${DATASETS:-shapes adrenal modelnet adrenal16}
RUN_TIMEOUT=${RUN_TIMEOUT:-450}
EXTRA=${EXTRA:-}
PY=${PY:-python3}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p "$OUT" "$RUNS/logs"
for ds in $DATASETS; do rm -rf "${RUNS:?}/${ds}"_seed* "$RUNS/logs/${ds}"_seed*; done

args_for() {
  case "$1" in
    shapes) echo "--dataset shapes" ;;
    adrenal) echo "--dataset npz --data $DATA/adrenalmnist3d_64.npz" ;;
    modelnet) echo "--dataset npz --data $DATA/modelnet10_chair_monitor_32.npz" ;;
    adrenal16) echo "--dataset npz --data $DATA/adrenalmnist3d_64.npz --grid 16" ;;
  esac
}

start=$(date +%s)
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())" > "$RUNS/logs/devices.log" 2>&1
for ds in $DATASETS; do
  for seed in $SEEDS; do
    name="${ds}_seed${seed}"
    # shellcheck disable=SC2046
    ( TIMEFORMAT="cpu_user_s %U cpu_sys_s %S wall_s %R"
      time timeout "$RUN_TIMEOUT" "$PY" experiments/voxel_classification.py $(args_for "$ds") \
        --seed "$seed" --workdir "$RUNS/$name" $EXTRA
      echo "exit_code $?" ) > "$RUNS/logs/$name.log" 2>&1 &
  done
done
wait
total=$(( $(date +%s) - start ))

{ cat "$RUNS/logs/devices.log"; echo "total wall time ${total} s"
  for f in "$RUNS"/logs/*_seed*.log; do echo "=== $f"; grep -v -i "warn" "$f" | tail -n 15; done
} > "$OUT/voxels.log"

RUNS="$RUNS" OUT="$OUT" TOTAL="$total" "$PY" - <<'PYEOF'
import json, os, re, statistics
from pathlib import Path

runs, out = Path(os.environ["RUNS"]), Path(os.environ["OUT"])
summary = {"total_wall_s": int(os.environ["TOTAL"]), "datasets": {}}
lines = ["| data | seed | test accuracy | test AUC | best epoch | wall s | exit |",
         "|---|---|---|---|---|---|---|"]
for log in sorted((runs / "logs").glob("*_seed*.log")):
    name = log.stem
    ds, seed = name.rsplit("_seed", 1)
    text = log.read_text(errors="replace")
    code = re.findall(r"exit_code (\d+)", text)
    row = {"seed": int(seed), "exit_code": int(code[-1]) if code else None}
    res = runs / name / "result.json"
    if res.is_file():
        r = json.loads(res.read_text())
        row.update({k: r.get(k) for k in ("test_accuracy", "test_auc", "wall_time_s", "best_epoch",
                                          "grid", "model", "train_size", "test_size",
                                          "num_params")})
        if r.get("test_confusion_matrix") is not None and len(r["test_confusion_matrix"]) > 2:
            row["test_confusion_matrix"] = r["test_confusion_matrix"]
    else:  # cut off or failed: the last epoch logged
        metrics = runs / name / "metrics.jsonl"
        rows = [json.loads(l) for l in metrics.read_text().splitlines()] if metrics.is_file() else []
        epochs = [r for r in rows if "val_accuracy" in r]
        if epochs:
            row["incomplete"] = {k: epochs[-1].get(k) for k in ("epoch", "train_accuracy",
                                                                  "val_accuracy", "val_auc")}
    cfg = runs / name / "config.json"
    if cfg.is_file():
        c = json.loads(cfg.read_text())
        row["config"] = {k: c.get(k) for k in ("grid", "model", "epochs", "batch_size", "lr",
                                               "train_per_class", "augment")}
    summary["datasets"].setdefault(ds, {"runs": []})["runs"].append(row)
    fmt = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
    lines.append(f"| {ds} | {seed} | {fmt(row.get('test_accuracy'))} | {fmt(row.get('test_auc'))}"
                 f" | {fmt(row.get('best_epoch'))} | {row.get('wall_time_s') or '-'} | "
                 f"{row['exit_code']} |")
lines += ["", "| data | n | test accuracy (mean ± std) | test AUC (mean ± std) | mean wall s |",
          "|---|---|---|---|---|"]
for ds, d in summary["datasets"].items():
    done = [r for r in d["runs"] if r.get("test_accuracy") is not None]
    for key in ("test_accuracy", "test_auc", "wall_time_s"):
        vals = [r[key] for r in done if r.get(key) is not None]
        if vals:
            d[key] = {"mean": statistics.mean(vals),
                      "std": statistics.stdev(vals) if len(vals) > 1 else 0.0, "n": len(vals)}
    ms = lambda k: (f"{d[k]['mean']:.4f} ± {d[k]['std']:.4f}" if k in d else "-")
    wall = f"{d['wall_time_s']['mean']:.0f}" if "wall_time_s" in d else "-"
    lines.append(f"| {ds} | {len(done)} | {ms('test_accuracy')} | {ms('test_auc')} | {wall} |")
lines.append(f"\ntotal wall time {summary['total_wall_s']} s")
(out / "voxels_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
(out / "voxels_summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF

for pair in "shapes_seed0/voxels.png shapes_voxels.png" "shapes_seed0/curves.png shapes_curves.png" \
            "adrenal_seed0/curves.png adrenal_curves.png"; do
  set -- $pair
  [ -f "$RUNS/$1" ] && cp "$RUNS/$1" "$OUT/$2"
done
exit 0
