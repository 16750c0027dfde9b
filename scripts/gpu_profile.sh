#!/usr/bin/env bash
# Where the cuda backend's time goes, ON THE GPU MACHINE (after scripts/gpu_pack.sh here):
# exports the benchmark models with the machine's PyTorch and runs
# `anvil bench --backend cuda --profile` on each (CUDA events around every step; no CUDA graph
# while profiling, so the sum is above the graph-replayed latency).
#
#   bash scripts/gpu_profile.sh [--models a,b] [--batches 1,64] [--precision fp16] [--top 25]
#
# Writes $OUT/profile_<model>_b<batch>.txt and prints the per-op-type summaries.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
models=resnet50,mobilenet_v2,squeezenet1_1,googlenet batches=1,64 precision=fp16 top=25
while [ $# -gt 0 ]; do
  case "$1" in
    --models) models="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --top) top="$2"; shift 2 ;;
    *) echo "gpu_profile.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$ROOT/.devrun/out}"
mkdir -p "$OUT"
bash scripts/gpu_suite.sh info > "$OUT/profile_info.txt" 2>&1 || { cat "$OUT/profile_info.txt"; exit 1; }
A=/tmp/anvil-gpu/anvil
W=/tmp/anvil-gpu-models
mkdir -p "$W"
python3 - "$W" "$models" <<'PY'
import os, sys
sys.path.insert(0, "python")
from export_bench_models import build, export_onnx
work, names = sys.argv[1], sys.argv[2].split(",")
for n in names:
    p = os.path.join(work, n + ".onnx")
    if not os.path.exists(p):
        m, x = build(n)
        export_onnx(m, x, p, 17, dynamic_batch=True)
PY
IFS=, read -ra MS <<< "$models"
IFS=, read -ra BS <<< "$batches"
for m in "${MS[@]}"; do
  for b in "${BS[@]}"; do
    f="$OUT/profile_${m}_b${b}.txt"
    "$A" bench "$W/$m.onnx" --backend cuda --precision "$precision" --shape "$b,3,224,224" \
      --runs 20 --warmup 5 --profile --top "$top" > "$f" 2>&1
    echo "== $m batch $b ($precision)"
    grep -E "^latency|^device|^compile" "$f"
    sed -n '/^by op type/,$p' "$f" | head -14
  done
done
