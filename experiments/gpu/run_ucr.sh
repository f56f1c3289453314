#!/usr/bin/env bash
# FCN on GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf and ResNet1D on ArrowHead, GunPoint,
# seeds 0, 1, 2, the experiment's default UCR protocol (2000 passes, Adam with cosine decay
# 1e-3 -> 1e-4, lowest-training-loss weights; the test with batch-norm statistics recomputed
# on the training set is recorded beside it). Runs from the repository root on one GPU,
# several processes at a time:
#
#     bash experiments/gpu/run_ucr.sh                 # data in .gpu/data/ucr/<Name>/
#     EPOCHS=2 P=1 ONLY='ItalyPowerDemand fcn [01]' OUT=/tmp/o DATA=../shared/data/ucr \
#         EPOCH_LOOP=python bash experiments/gpu/run_ucr.sh    # a smoke test on the CPU
#
# Writes $OUT/ucr_summary.json (every run and mean +- std per dataset and model) and
# $OUT/ucr_logs.txt (the tail of every run's log); run folders go to $RUNS (under /tmp).
# Everything still running at the deadline (BUDGET seconds after the start, default 450)
# is stopped, so the summary is always written; stopped runs are listed as missing.
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export OUT=${OUT:-/tmp/ucr_out} RUNS=${RUNS:-/tmp/ucr_runs} DATA=${DATA:-.gpu/data/ucr}
export EXTRA="${EPOCHS:+--epochs $EPOCHS} --epoch-loop ${EPOCH_LOOP:-scan}"
export DEADLINE=$(( $(date +%s) + ${BUDGET:-450} ))
P=${P:-9}
rm -rf "$RUNS" && mkdir -p "$OUT" "$RUNS"
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"

run_one() {  # name model seed
    local left=$(( DEADLINE - $(date +%s) ))
    [ "$left" -gt 5 ] || { echo "$1 $2 $3: no time left" > "$RUNS/$1_$2_seed$3.log"; return; }
    timeout "$left" python3 experiments/ucr_classification.py --name "$1" \
        --data "$DATA" --model "$2" --seed "$3" --workdir "$RUNS/$1_$2_seed$3" --no-plots \
        $EXTRA > "$RUNS/$1_$2_seed$3.log" 2>&1
    echo "$1 $2 seed $3: exit $? after $(( $(date +%s) + left - DEADLINE )) s"
}
export -f run_one

start=$(date +%s)
# Longest first, so that the last wave holds the short runs.
for s in 0 1 2; do echo "OSULeaf fcn $s"; done > "$RUNS/jobs.txt"
for s in 0 1 2; do echo "ArrowHead resnet1d $s"; echo "GunPoint resnet1d $s"; done >> "$RUNS/jobs.txt"
for n in ArrowHead GunPoint ItalyPowerDemand; do
    for s in 0 1 2; do echo "$n fcn $s"; done
done >> "$RUNS/jobs.txt"
if [ -n "${ONLY:-}" ]; then  # e.g. ONLY='ItalyPowerDemand fcn [01]' for a smoke test
    grep -E "$ONLY" "$RUNS/jobs.txt" > "$RUNS/only.txt"; mv "$RUNS/only.txt" "$RUNS/jobs.txt"
fi
xargs -P "$P" -L 1 bash -c 'run_one "$0" "$1" "$2"' < "$RUNS/jobs.txt"

export TOTAL=$(( $(date +%s) - start ))
python3 - <<'PY'
import json, os, pathlib, statistics, subprocess
runs = pathlib.Path(os.environ["RUNS"])
rows, missing = [], []
for line in (runs / "jobs.txt").read_text().split("\n"):
    if not line:
        continue
    name, model, seed = line.split()
    f = runs / f"{name}_{model}_seed{seed}" / "result.json"
    if not f.exists():
        missing.append(line)
        continue
    r = json.loads(f.read_text())
    rows.append({"dataset": name, "model": model, "seed": int(seed), **{
        k: r.get(k) for k in ("test_accuracy", "test_accuracy_recalibrated_bn", "wall_time_s",
                              "cpu_time_s", "passes", "step", "best_epoch", "backend")}})
groups = {}
for r in rows:
    groups.setdefault(f"{r['dataset']}/{r['model']}", []).append(r)
table = {k: {"mean": round(100 * statistics.mean(a), 2),
             "std": round(100 * statistics.stdev(a), 2) if len(a) > 1 else None,
             "mean_recalibrated_bn": round(100 * statistics.mean(b), 2),
             "seeds": len(a), "wall_s_per_run": round(statistics.mean(w), 1)}
         for k, v in groups.items()
         for a, b, w in [([r["test_accuracy"] for r in v],
                          [r["test_accuracy_recalibrated_bn"] for r in v],
                          [r["wall_time_s"] for r in v])]}
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
except OSError:
    gpu = None
summary = {"table": table, "runs": rows, "missing": missing, "gpu": gpu,
           "total_wall_s": int(os.environ["TOTAL"]), "extra_args": os.environ["EXTRA"]}
out = pathlib.Path(os.environ["OUT"])
(out / "ucr_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
with open(out / "ucr_logs.txt", "w") as f:
    for log in sorted(runs.glob("*.log")):
        f.write(f"==> {log.name}\n" + "\n".join(log.read_text().splitlines()[-15:]) + "\n")
print(json.dumps(table, indent=1), "missing:", missing, "total", os.environ["TOTAL"], "s")
PY
