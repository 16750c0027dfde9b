#!/usr/bin/env bash
# Runs Anvil's GPU checks ON THE GPU MACHINE, from the repository root, with the bundle that
# scripts/gpu_pack.sh made here (.devrun/bundle.tar.xz, carried along). One command:
#
#   bash scripts/gpu_suite.sh [STEP...] [options]
#
# Steps (default: all = info tests smoke bench; info always runs first):
#   info   GPU name and driver, the CUDA libraries Anvil resolves, the cuDNN version it loads
#   tests  anvil_cuda_tests (gtest): $OUT/cuda_tests.xml, full log $OUT/cuda_tests.log
#   smoke  models/demo/digits_cnn.onnx on --backend cuda vs --backend reference (anvil run)
#   bench  bench/torch_cuda_bench.py: Anvil cuda vs PyTorch (fp16, CUDA graphs), batch 1 and 64,
#          interleaved: $OUT/gpu_latest.md and .json, log $OUT/bench.log
# Options:
#   --filter PATTERN     gtest filter for `tests` (e.g. 'Conv*:Gemm*')
#   --models a,b         models for `bench` (default: resnet50,mobilenet_v2,squeezenet1_1,googlenet)
#   --bench-arg ARG      one more argument for torch_cuda_bench.py (repeat), e.g.
#                        --bench-arg=--in-flight=4 --bench-arg=--anvil-arg=--no-optimize
#   --system-cudnn       use the system cuDNN (9.14, /usr/lib/x86_64-linux-gnu) instead of
#                        PyTorch's (9.19)
#   --tests-timeout S    seconds for the whole gtest run (default: 240)
#   --bench-timeout S    seconds for the whole bench step (default: 330; what it measured up
#                        to then is in gpu_latest.json, written after every model)
# `all` then ends inside 10 minutes (the device tool's limit per command).
# Files land in $OUT (the device tool's folder that comes back), else .devrun/out. The last
# lines printed are a table of the steps.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/.devrun/out}"
DEST=/tmp/anvil-gpu
steps=() filter="" models="" bench_args=() system_cudnn=0 tests_timeout=240 bench_timeout=330
while [ $# -gt 0 ]; do
  case "$1" in
    info|tests|smoke|bench) steps+=("$1"); shift ;;
    all) steps+=(tests smoke bench); shift ;;
    --filter) filter="$2"; shift 2 ;;
    --filter=*) filter="${1#*=}"; shift ;;
    --models) models="$2"; shift 2 ;;
    --models=*) models="${1#*=}"; shift ;;
    --bench-arg) bench_args+=("$2"); shift 2 ;;
    --bench-arg=*) bench_args+=("${1#*=}"); shift ;;
    --system-cudnn) system_cudnn=1; shift ;;
    --tests-timeout) tests_timeout="$2"; shift 2 ;;
    --bench-timeout) bench_timeout="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_suite.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#steps[@]} -gt 0 ] || steps=(tests smoke bench)
mkdir -p "$OUT"

SUMMARY=()
add_row() { SUMMARY+=("$(printf '| %-6s | %-7s | %6s s | %s' "$1" "$2" "$3" "$4")"); }
print_summary() {
  echo
  echo "== gpu_suite summary ($(date -u '+%H:%M:%S UTC')) =="
  echo "| step   | result  | time     | details"
  printf '%s\n' "${SUMMARY[@]}"
}
trap print_summary EXIT

# --- unpack + environment ----------------------------------------------------------------------
t0=$SECONDS
[ -f .devrun/bundle.tar.xz ] || { echo "gpu_suite.sh: no .devrun/bundle.tar.xz (run scripts/gpu_pack.sh here and carry .devrun)"; add_row unpack FAIL 0 "no bundle"; exit 1; }
rm -rf "$DEST" && mkdir -p "$DEST" && tar -C "$DEST" -xJf .devrun/bundle.tar.xz ||
  { add_row unpack FAIL $((SECONDS - t0)) "tar failed"; exit 1; }

PY=python3
[ -x /opt/torch/.venv/bin/python3 ] && PY=/opt/torch/.venv/bin/python3
# PyTorch's CUDA libraries (pip packages nvidia-cudnn-cu13, nvidia-cublas, ...): the folders
# holding cuDNN first, then cuBLAS(Lt), the runtime, nvJitLink.
nv_dirs="$("$PY" - <<'EOF' 2>/dev/null
import glob, os
try:
    import nvidia
except ImportError:
    raise SystemExit
dirs = []
for want in ("libcudnn.so.9", "libcublasLt.so.*", "libcublas.so.*", "libcudart.so.*", "libnvJitLink.so.*", "libnvrtc.so.*"):
    for root in nvidia.__path__:
        for p in sorted(glob.glob(os.path.join(root, "**", want), recursive=True)):
            d = os.path.dirname(p)
            if d not in dirs:
                dirs.append(d)
print(":".join(dirs))
EOF
)"
if [ "$system_cudnn" = 1 ]; then
  # Without PyTorch's cuDNN folder: the loader then finds the system's libcudnn.so.9.
  nv_dirs="$(echo "$nv_dirs" | tr ':' '\n' | grep -v '/cudnn/' | paste -sd:)"
fi
LP="$DEST/lib${nv_dirs:+:$nv_dirs}:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# A wrapper so that only Anvil's processes get the bundle's libraries (not PyTorch's python).
cat > "$DEST/anvil" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$LP" exec "$DEST/bin/anvil" "\$@"
EOF
chmod +x "$DEST/anvil"

# The tests read fixtures at the source path compiled in (ANVIL_SOURCE_DIR, in the MANIFEST):
# make it point at this checkout, and its build dir at the bundle.
src_dir="$(sed -n 's/^source_dir //p' "$DEST/MANIFEST")"
bin_dir="$(sed -n 's/^binary_dir //p' "$DEST/MANIFEST")"
if [ -n "$src_dir" ] && [ "$src_dir" != "$ROOT" ] && [ ! -e "$src_dir" ]; then
  mkdir -p "$(dirname "$src_dir")" && ln -s "$ROOT" "$src_dir"
fi
if [ -n "$bin_dir" ] && [ ! -e "$bin_dir" ]; then
  mkdir -p "$bin_dir" && ln -sf "$DEST/bin/"* "$DEST/lib/"* "$bin_dir/" 2>/dev/null
  [ -e "$bin_dir/tests" ] || ln -s . "$bin_dir/tests"
fi
add_row unpack ok $((SECONDS - t0)) "$(sed -n 's/^commit //p' "$DEST/MANIFEST"), $(du -sh "$DEST" | cut -f1) in $DEST"

# --- info --------------------------------------------------------------------------------------
t0=$SECONDS
{
  echo "== bundle"; sed -n '1,3p' "$DEST/MANIFEST"
  echo "== GPU"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
  echo "== LD_LIBRARY_PATH for Anvil"; echo "$LP" | tr ':' '\n'
  echo "== CUDA libraries libanvil resolves"
  LD_LIBRARY_PATH="$LP" ldd "$DEST/lib/libanvil.so" | grep -E 'cuda|cudnn|cublas|nvJit|not found'
  for f in "$DEST/bin/"*; do LD_LIBRARY_PATH="$LP" ldd "$f" | grep 'not found' | sed "s|^|$(basename "$f"): |"; done
} 2>&1 | tee "$OUT/info.txt"
cudnn_ver="$(LD_LIBRARY_PATH="$LP" "$PY" - <<'EOF' 2>/dev/null
import ctypes
lib = ctypes.CDLL("libcudnn.so.9")
lib.cudnnGetVersion.restype = ctypes.c_size_t
v = lib.cudnnGetVersion()
path = next((l.split()[-1] for l in open("/proc/self/maps") if "libcudnn.so" in l), "?")
print(f"{v // 10000}.{v % 10000 // 100}.{v % 100} ({path})")
EOF
)"
echo "cuDNN loaded: ${cudnn_ver:-?}" | tee -a "$OUT/info.txt"
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
ver="$("$DEST/anvil" --version 2>&1 | head -1)"
if [ -n "$ver" ] && "$DEST/anvil" --version >/dev/null 2>&1; then
  add_row info ok $((SECONDS - t0)) "${gpu:-no nvidia-smi}; cuDNN ${cudnn_ver%% *}; $ver"
else
  add_row info FAIL $((SECONDS - t0)) "anvil does not start: $ver"
fi

# --- tests -------------------------------------------------------------------------------------
run_tests() {
  t0=$SECONDS
  local bin="$DEST/bin/anvil_cuda_tests"
  if [ ! -x "$bin" ]; then add_row tests SKIP 0 "no anvil_cuda_tests in the bundle"; return; fi
  local args=(--gtest_output="xml:$OUT/cuda_tests.xml" --gtest_color=no)
  [ -n "$filter" ] && args+=(--gtest_filter="$filter")
  rm -f "$OUT/cuda_tests.xml"
  echo "== anvil_cuda_tests ${args[*]}"
  LD_LIBRARY_PATH="$LP" timeout -k 10 "$tests_timeout" "$bin" "${args[@]}" > "$OUT/cuda_tests.log" 2>&1
  local rc=$?
  grep -E '^\[==========\]|^\[  PASSED  \]|^\[  SKIPPED \] [0-9]|^\[  FAILED  \] [0-9]' "$OUT/cuda_tests.log"
  # Each failed test with the start of its failure message; the last line is the count.
  local sum
  sum="$("$PY" - "$OUT/cuda_tests.xml" <<'EOF' 2>/dev/null
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
n, f, e = int(r.get("tests", 0)), int(r.get("failures", 0)), int(r.get("errors", 0))
cases = list(r.iter("testcase"))
sk = sum(1 for c in cases if c.get("result") == "skipped" or c.find("skipped") is not None)
failed = []
for c in cases:
    fs = c.findall("failure") + c.findall("error")
    if not fs:
        continue
    name = c.get("classname") + "." + c.get("name")
    failed.append(name)
    print(f"FAILED {name} ({c.get('time')} s)")
    for x in fs[:2]:
        for line in (x.get("message") or x.text or "").splitlines()[:6]:
            print("    " + line[:200])
print(f"{n} tests, {n - f - e - sk} passed, {len(failed)} failed, {sk} skipped, {float(r.get('time', 0)):.1f} s"
      + ("; failed: " + " ".join(failed[:6]) + (" ..." if len(failed) > 6 else "") if failed else ""))
EOF
)"
  [ -n "$sum" ] && echo "$sum" | head -n -1 | head -80
  sum="$(echo "$sum" | tail -1)"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    add_row tests TIMEOUT $((SECONDS - t0)) "killed after ${tests_timeout} s; see cuda_tests.log (last: $(grep -E '^\[ RUN' "$OUT/cuda_tests.log" | tail -1))"
  elif [ -z "$sum" ]; then
    tail -20 "$OUT/cuda_tests.log"
    add_row tests FAIL $((SECONDS - t0)) "exit $rc, no XML (crash?); last test: $(grep -E '^\[ RUN' "$OUT/cuda_tests.log" | tail -1)"
  else
    add_row tests "$([ $rc -eq 0 ] && echo ok || echo FAIL)" $((SECONDS - t0)) "$sum"
  fi
}

# --- smoke -------------------------------------------------------------------------------------
run_smoke() {
  t0=$SECONDS
  local m="$ROOT/models/demo/digits_cnn.onnx" x="$ROOT/models/demo/inputs/image.npy" d=/tmp/anvil-gpu-smoke
  rm -rf "$d" && mkdir -p "$d/reference" "$d/cuda"
  echo "== smoke: digits_cnn.onnx on models/demo/inputs/image.npy: --backend cuda vs reference and PyTorch's expected/probs.npy"
  "$DEST/anvil" run "$m" --input "$x" --backend reference --output-dir "$d/reference" > "$d/reference.log" 2>&1
  if ! "$DEST/anvil" run "$m" --input "$x" --backend cuda --output-dir "$d/cuda" > "$d/cuda.log" 2>&1; then
    cat "$d/cuda.log"
    add_row smoke FAIL $((SECONDS - t0)) "anvil run --backend cuda: $(tail -1 "$d/cuda.log")"
    return
  fi
  local precs=()
  if "$DEST/anvil" run --help 2>/dev/null | grep -q -- '--precision'; then
    for p in fp16 bf16; do
      mkdir -p "$d/cuda_$p"
      "$DEST/anvil" run "$m" --input "$x" --backend cuda --precision $p --output-dir "$d/cuda_$p" > "$d/cuda_$p.log" 2>&1 &&
        precs+=("cuda_$p") || echo "cuda $p: $(tail -1 "$d/cuda_$p.log")"
    done
  fi
  local res
  res="$("$PY" - "$d" "$ROOT/models/demo/expected/probs.npy" cuda "${precs[@]}" <<'EOF' 2>&1
import os, sys
import numpy as np
d, expected, runs = sys.argv[1], np.load(sys.argv[2]).astype(np.float64), sys.argv[3:]
ref = np.load(os.path.join(d, "reference", "probs.npy")).astype(np.float64)
rel = lambda a, b: np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)
out = [f"reference vs PyTorch {rel(ref, expected):.1e}"]
for r in runs:
    y = np.load(os.path.join(d, r, "probs.npy")).astype(np.float64)
    same = "same argmax" if (y.argmax(1) == expected.argmax(1)).all() else "ARGMAX DIFFERS"
    out.append(f"{r} vs reference {rel(y, ref):.1e} ({same})")
print("; ".join(out))
EOF
)"
  echo "$res"
  "$DEST/anvil" bench "$m" --input "$x" --backend cuda --runs 50 --warmup 5 2>&1 | grep -E 'latency|device|compile|backend'
  local ok=ok
  [[ "$res" == *"vs reference"* ]] || ok=FAIL
  [[ "$res" == *DIFFERS* ]] && ok=FAIL
  add_row smoke $ok $((SECONDS - t0)) "$res"
}

# --- bench -------------------------------------------------------------------------------------
run_bench() {
  t0=$SECONDS
  local args=(--anvil "$DEST/anvil" --out "$OUT" --anvil-commit "$(sed -n 's/^commit //p' "$DEST/MANIFEST")"
              --anvil-cudnn "${cudnn_ver%% *}")
  [ -n "$models" ] && args+=(--models "$models")
  echo "== bench: $PY bench/torch_cuda_bench.py ${args[*]} ${bench_args[*]}"
  PYTHONUNBUFFERED=1 timeout -k 10 "$bench_timeout" "$PY" "$ROOT/bench/torch_cuda_bench.py" "${args[@]}" \
    "${bench_args[@]}" 2>&1 | tee "$OUT/bench.log"
  local rc=${PIPESTATUS[0]}
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    add_row bench TIMEOUT $((SECONDS - t0)) "killed after ${bench_timeout} s; models done so far in gpu_latest.json"
  elif [ $rc -eq 0 ] && [ -f "$OUT/gpu_latest.md" ]; then
    add_row bench ok $((SECONDS - t0)) "table in gpu_latest.md (above)"
  else
    add_row bench FAIL $((SECONDS - t0)) "exit $rc: $(grep -v '^ ' "$OUT/bench.log" | tail -1)"
  fi
}

for s in "${steps[@]}"; do
  case "$s" in
    info) ;;  # always done above
    tests) run_tests ;;
    smoke) run_smoke ;;
    bench) run_bench ;;
  esac
done
