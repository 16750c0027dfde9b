#!/usr/bin/env bash
# Fuzzes every parser with libFuzzer (clang from Debian, ASan + UBSan).
#   Usage: bash scripts/fuzz.sh [SECONDS] [TARGET...]
# Configures build-fuzz/ with clang and -DANVIL_FUZZ=ON, builds the fuzzers, makes the seed
# corpora from the repository's test data (tests/fuzz/make_corpus.sh), then runs each target
# for SECONDS (default 180). Environment: ANVIL_FUZZ_BUILD (build dir, default build-fuzz),
# ANVIL_FUZZ_JOBS (targets run at once, default 1), ANVIL_FUZZ_CC/ANVIL_FUZZ_CXX. Crash inputs land in
# <build>/artifacts/<target>/, logs in <build>/logs/<target>.log. Exits non-zero on any crash,
# leak, sanitizer report, timeout or out-of-memory. No sanitizer report is suppressed
# (tests/fuzz/asan.supp and lsan.supp are empty): libhdf5's own memory errors on corrupt files
# (tests/fuzz/findings/) happen in the Keras reader's child process, which dies quietly and
# becomes an anvil::Error in the fuzzer's process; the keras_h5 target lowers that child's
# deadline to 5 s (ANVIL_KERAS_H5_TIMEOUT_S).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER=${1:-180}
shift || true
ALL=(onnx keras_h5 keras_json caffe_prototxt caffemodel npy npz tflite tf_graphdef image)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
B=${ANVIL_FUZZ_BUILD:-build-fuzz}
JOBS=${ANVIL_FUZZ_JOBS:-1}

max_len() {
  case $1 in
    onnx) echo 65536 ;; keras_h5) echo 160000 ;; keras_json) echo 65536 ;;
    caffe_prototxt) echo 16384 ;; caffemodel) echo 131072 ;; npy) echo 4096 ;; npz) echo 65536 ;; tflite) echo 65536 ;; tf_graphdef) echo 32768 ;; image) echo 65536 ;;
  esac
}

# Debian's clang; the sources need clang >= 16 (C++20: lambdas capturing structured bindings),
# so the newest installed clang-N is used (apt-get install clang-16 libclang-rt-16-dev).
pick_clang() {
  for v in 19 18 17 16; do
    command -v "clang++-$v" >/dev/null && { echo "$v"; return; }
  done
  echo ""
}
V=$(pick_clang)
if [ -z "$V" ] && [ -z "${ANVIL_FUZZ_CXX:-}" ]; then
  echo "fuzz.sh: needs Debian's clang >= 16 with its runtimes:" \
    "apt-get install clang-16 libclang-rt-16-dev" >&2
  exit 1
fi
CC_=${ANVIL_FUZZ_CC:-clang${V:+-$V}}
CXX_=${ANVIL_FUZZ_CXX:-clang++${V:+-$V}}
if [ ! -f "$B/build.ninja" ]; then
  cmake -S . -B "$B" -G Ninja -DCMAKE_C_COMPILER="$CC_" -DCMAKE_CXX_COMPILER="$CXX_" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANVIL_FUZZ=ON -DANVIL_BUILD_TESTS=OFF \
    -DANVIL_BUILD_EXAMPLES=OFF || exit 1
fi
ninja -C "$B" "${TARGETS[@]/#/fuzz_}" || exit 1
bash tests/fuzz/make_corpus.sh "$B/seeds" >/dev/null || exit 1
mkdir -p "$B/logs"

run_one() {
  local t=$1
  mkdir -p "$B/corpus/$t" "$B/artifacts/$t"
  # Seeds from regressions too, so fixed crashes stay in the corpus.
  local reg=tests/fuzz/regressions/$t
  local extra=()
  [ -d "$reg" ] && extra=("$reg")
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:suppressions=$PWD/tests/fuzz/asan.supp} \
  LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$B/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER" -max_len="$(max_len "$t")" \
    -rss_limit_mb=4096 -timeout=60 -print_final_stats=1 \
    -artifact_prefix="$B/artifacts/$t/" "$B/corpus/$t" "$B/seeds/$t" "${extra[@]}" \
    >"$B/logs/$t.log" 2>&1
}

# Symbolized stacks in the reports.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for s in "/usr/lib/llvm-$V/bin/llvm-symbolizer" "$(command -v llvm-symbolizer || true)"; do
    [ -x "$s" ] && { export ASAN_SYMBOLIZER_PATH=$s; break; }
  done
fi

fail=0
declare -A pids
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  pids[$t]=$!
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
done
for t in "${TARGETS[@]}"; do
  wait "${pids[$t]}"
  rc=$?
  log="$B/logs/$t.log"
  stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  runs=$(grep -E 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
  if [ $rc -ne 0 ]; then
    fail=1
    echo "FAIL $t (rc $rc): see $log; artifacts in $B/artifacts/$t/"
    grep -E 'ERROR: |SUMMARY: |runtime error' "$log" | head -5
  else
    echo "ok   $t: ${runs:-?} runs; ${stats}"
    # The Keras HDF5 reader's child clears the sanitizer's death callback, so a child that dies
    # inside libhdf5 leaves no crash-* file; any artifact here is worth a look.
    n=$(find "$B/artifacts/$t" -type f | wc -l)
    [ "$n" -gt 0 ] && echo "     warning: $n artifact(s) in $B/artifacts/$t/ although the fuzzer went on"
  fi
done
exit $fail
