#!/usr/bin/env bash
# GPU train-step benchmark: jaxcnn vs flax.linen vs PyTorch (CUDA), the four models of
# benchmarks/train_step.py. Run from the repository root on the GPU machine:
#
#   OUT=/some/dir bash benchmarks/gpu/run_bench.sh
#
# Writes $OUT/train_step.json, $OUT/train_step.md and $OUT/log.txt (< 5 minutes on one H100:
# 3 rounds of 0.5 s per column and kind; most of the time is jit compilation). Overrides:
# ROUNDS, SECONDS_PER, MODELS, DEVICE (e.g. DEVICE=cpu ROUNDS=1 SECONDS_PER=0.05
# MODELS=lenet5 to try it on a CPU machine).
set -euo pipefail
OUT="${OUT:-benchmarks/results/gpu}"
mkdir -p "$OUT"
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}."
export XLA_PYTHON_CLIENT_PREALLOCATE=false
{
  echo "== $(date -u +%FT%TZ) $(hostname)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    2>/dev/null || echo "torch: not installed"
  timeout 290 python3 benchmarks/train_step.py --device "${DEVICE:-gpu}" \
    --rounds "${ROUNDS:-3}" --seconds "${SECONDS_PER:-0.5}" \
    --models "${MODELS:-lenet5,resnet20,cnn1d,cnn3d}" --no-memory --out "$OUT"
} 2>&1 | tee "$OUT/log.txt"
