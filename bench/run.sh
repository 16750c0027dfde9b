#!/usr/bin/env bash
# Anvil vs ONNX Runtime vs OpenCV dnn, same ONNX files, one interleaved run (bench/README.md).
#
#   bash bench/run.sh [--threads 1,2] [--runs N] [--block K] [--models a,b] [--backend cpu]
#                     [--anvil PATH [--anvil-commit C]] [--no-opencv] [--ort-spin] [--no-check] [--name latest]
#                     [--zoo] [--profile-runs N]
#
# --zoo: the benchmark zoo instead of the four models: every torchvision classification model
# with a 224x224 forward under 10 GFLOP (bench/export_zoo.py, into bench/models/zoo/), Anvil
# vs ONNX Runtime only (no OpenCV), with the geometric mean of the ratios and, per model, the
# steps that ran on a reference kernel (from `anvil bench --profile`). Default name: zoo.
#
# Prepares what is missing, then runs bench/harness.py:
#   - Anvil: builds build-bench/ (Release) unless --anvil names a binary;
#   - ONNX Runtime: `npm install --ignore-scripts` in bench/ (onnxruntime-node, version pinned
#     in bench/package.json; its bundled CPU library works offline);
#   - OpenCV dnn: Debian's libopencv-dev (installed with apt-get when run as root), runner
#     bench/opencv_bench.cpp built with g++ into bench/build/;
#   - models: python/export_bench_models.py with Debian's python3-torch into bench/models/.
# Missing Debian packages (nodejs, npm, python3-torch, python3-torchvision, python3-onnx,
# libopencv-dev) are installed with apt-get when run as root.
# Writes bench/results/<name>.md and <name>.json (default name: latest).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY=/usr/bin/python3

threads=1,2 runs=30 block=1 models="" backend="" anvil="" opencv=1 name="" zoo=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --block) block="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --backend) backend="$2"; shift 2 ;;
    --anvil) anvil="$2"; shift 2 ;;
    --anvil-commit) extra+=(--anvil-commit "$2"); shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --warmup) extra+=(--warmup "$2"); shift 2 ;;
    --no-opencv) opencv=0; shift ;;
    --zoo) zoo=1; opencv=0; shift ;;
    --profile-runs) extra+=(--profile-runs "$2"); shift 2 ;;
    --ort-spin) extra+=(--ort-spin); shift ;;
    --no-check) extra+=(--no-check); shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# Spinning OpenMP pools collapse on a busy 2-core VM; libgomp reads this when it loads, so it
# must be in the environment of every engine process (Anvil's oneDNN, OpenCV, ONNX Runtime).
export OMP_WAIT_POLICY=PASSIVE
# ...but fully passive workers pay a futex wake-up per parallel region (per oneDNN primitive):
# spin briefly first, as the anvil command does itself (docs/cpu_backend.md).
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-10000}"

# Debian packages, installed with apt-get when missing and run as root.
apt_install() {
  [ "$(id -u)" -eq 0 ] || return 1
  echo "bench/run.sh: installing $*" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; }
}
need() { command -v "$1" >/dev/null 2>&1 || { echo "bench/run.sh: '$1' is needed ($2)" >&2; exit 2; }; }
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm || true
need node "Debian package nodejs"
need npm "Debian package npm"
"$PY" -c "import torch, torchvision, onnx" 2>/dev/null ||
  apt_install python3 python3-numpy python3-torch python3-torchvision python3-onnx || true
"$PY" -c "import torch, torchvision, onnx" 2>/dev/null ||
  { echo "bench/run.sh: $PY with torch, torchvision and onnx is needed (Debian python3-torch, python3-torchvision, python3-onnx)" >&2; exit 2; }

# Anvil
if [ -z "$anvil" ]; then
  if [ ! -f "$ROOT/build-bench/build.ninja" ]; then
    cmake -S "$ROOT" -B "$ROOT/build-bench" -G Ninja -DCMAKE_BUILD_TYPE=Release -DANVIL_BUILD_EXAMPLES=OFF >&2
  fi
  ninja -C "$ROOT/build-bench" anvil_cli >&2
  anvil="$ROOT/build-bench/anvil"
fi
[ -x "$anvil" ] || { echo "bench/run.sh: no anvil binary at $anvil" >&2; exit 2; }
if [ -z "$backend" ]; then
  # The fast backend when this build has it, else the reference backend.
  if "$anvil" bench "$ROOT/models/demo/digits_cnn.onnx" --backend cpu --runs 1 --warmup 0 >/dev/null 2>&1; then
    backend=cpu
  else
    backend=reference
    echo "bench/run.sh: this anvil has no 'cpu' backend; benchmarking the reference backend" >&2
  fi
fi

# ONNX Runtime
if [ ! -f "$HERE/node_modules/onnxruntime-node/package.json" ]; then
  (cd "$HERE" && npm install --ignore-scripts --no-audit --no-fund) >&2
fi

# OpenCV dnn
cv_bin=""
if [ "$opencv" = 1 ]; then
  pkg-config --exists opencv4 2>/dev/null || apt_install libopencv-dev ||
    echo "bench/run.sh: could not install libopencv-dev" >&2
  if pkg-config --exists opencv4 2>/dev/null; then
    cv_bin="$HERE/build/opencv_bench"
    if [ ! -x "$cv_bin" ] || [ "$HERE/opencv_bench.cpp" -nt "$cv_bin" ]; then
      mkdir -p "$HERE/build"
      # shellcheck disable=SC2046
      g++ -O2 -std=c++17 "$HERE/opencv_bench.cpp" -o "$cv_bin" $(pkg-config --cflags --libs opencv4)
    fi
  else
    echo "bench/run.sh: OpenCV (libopencv-dev) not found; skipping OpenCV dnn" >&2
  fi
fi

# Models (exported once; the exporters skip those already there)
export_args=()
[ -n "$models" ] && export_args+=(--models "$models")
if [ "$zoo" = 1 ]; then
  models_dir="$HERE/models/zoo"
  nice -n 10 "$PY" "$HERE/export_zoo.py" --out "$models_dir" "${export_args[@]}" >&2
  name="${name:-zoo}"
else
  models_dir="$HERE/models"
  "$PY" "$ROOT/python/export_bench_models.py" --out "$models_dir" "${export_args[@]}" >&2
  name="${name:-latest}"
fi

exec "$PY" "$HERE/harness.py" --anvil "$anvil" --backend "$backend" --opencv "$cv_bin" \
  --models-dir "$models_dir" --threads "$threads" --runs "$runs" --block "$block" \
  ${models:+--models "$models"} --name "$name" "${extra[@]}"
