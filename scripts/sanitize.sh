#!/usr/bin/env bash
# Sanitizer stages of scripts/test.sh (issue 19, "Proving it"), each in its own build dir,
# -O1, no cuda backend, no suppressions; any report stops the run (exit non-zero).
#   bash scripts/sanitize.sh asan   ASan + UBSan (-fsanitize=address,undefined
#                                   -fno-sanitize-recover=all) of the library, the CLI and the
#                                   unit tests into build-asan/: the fast unit tests, the CLI
#                                   error-path tests and the fuzz-regression and
#                                   malformed-corpus replays
#   bash scripts/sanitize.sh tsan   ThreadSanitizer build of the library and the concurrency
#                                   test (tests/unit/cpu_threads_test.cpp) into build-tsan/.
#                                   OpenMP (libgomp) and oneDNN are not instrumented: the test
#                                   runs the reference backend, and the cpu backend with one
#                                   oneDNN thread per session (ANVIL_TEST_SESSION_THREADS=1),
#                                   so no work crosses libgomp's uninstrumented hand-offs.
# Environment: ANVIL_SAN_JOBS (build jobs, default nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kind=${1:?usage: scripts/sanitize.sh asan|tsan}
jobs=${ANVIL_SAN_JOBS:-$(nproc)}

configure() {  # configure BUILD_DIR FLAGS
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1 $2" \
    -DCMAKE_C_FLAGS_SANITIZE="-O1 -g1 $2" -DCMAKE_EXE_LINKER_FLAGS="$2" -DCMAKE_SHARED_LINKER_FLAGS="$2" \
    -DANVIL_WERROR=OFF -DANVIL_BUILD_TESTS=ON -DANVIL_CUDA=OFF -DANVIL_BUILD_EXAMPLES=OFF >/dev/null
}

case $kind in
  asan)
    B=build-asan
    configure $B "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    cmake --build $B -j "$jobs" --target anvil_lib anvil_cli anvil_unit_tests
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    # KerasH5Reader.ConcurrentImportsFromThreads is left out: the sandboxed HDF5 reader forks
    # (no exec) while other threads run, and under GCC 12's ASan runtime the forked child can
    # deadlock (it hung past 120 s; 1 of 1111 tests, 2026-12-08).
    # Fast unit tests: every unit test (all under 12 s at -O2) but the concurrency test (the
    # tsan stage runs it), the 1..1024 resize sweep and the headless-Chromium report test; the
    # fuzz regressions are unit tests (FuzzRegression*). Then the CLI error paths and corpus.
    ctest --test-dir $B --output-on-failure -j2 --timeout 900 -L unit \
      -E 'SessionThreads|Resample\.EveryWidthAndHeight|VerifyHtml|KerasH5Reader\.ConcurrentImportsFromThreads'
    ANVIL_CORPUS_LIMIT_MS=30000 ctest --test-dir $B --output-on-failure -j2 --timeout 900 \
      -R '^cli\.(bad_input|messages|formats|usage|malformed|bench_zero|verify_nothing|run_nan)$'
    ;;
  tsan)
    B=build-tsan
    configure $B "-fsanitize=thread"
    cmake --build $B -j "$jobs" --target anvil_threads_tests
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    ANVIL_TEST_SESSION_THREADS=1 $B/tests/anvil_threads_tests
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan" >&2
    exit 2
    ;;
esac
echo "sanitize.sh $kind: OK"
