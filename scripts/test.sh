#!/usr/bin/env bash
# The tests: install the packages (the demo's and the test-only ones), build everything with
# warnings as errors into build-test/, run ctest, then the sanitizer stages (below).
#   Usage (from the repository, as root):  bash scripts/test.sh
# Environment: ANVIL_SANITIZERS=1 adds the sanitizer stages (scripts/sanitize.sh: build-asan/,
# build-tsan/); off until their cold-cache build time is measured on CI's 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh --tests
# Lint before building: every C++ file formatted by clang-format-14 (scripts/format.sh lists
# the files that are not). ANVIL_SKIP_FORMAT_CHECK=1 in the environment skips it.
if [ "${ANVIL_SKIP_FORMAT_CHECK:-}" != 1 ]; then
  bash scripts/format.sh --check
fi
# -O2 (not Release's -O3): GCC 12 gives false -Wrestrict warnings on std::string at -O3, and
# -O2 is what developers build with (RelWithDebInfo), without the debug info's build time.
# The cuda backend is compiled and linked wherever the CUDA toolkit (nvcc, cuDNN 9, cuBLASLt)
# is installed under /usr/local/cuda; its GPU tests skip themselves without a GPU (they run on
# a GPU machine with scripts/gpu_suite.sh). ANVIL_CUDA=OFF in the environment skips it.
cuda=OFF
if [ "${ANVIL_CUDA:-}" != OFF ] && [ -x /usr/local/cuda/bin/nvcc ] && [ -e /usr/local/cuda/include/cudnn.h ]; then
  cuda=ON
else
  echo "scripts/test.sh: no CUDA toolkit with cuDNN under /usr/local/cuda: building without the cuda backend" >&2
fi
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DANVIL_WERROR=ON -DANVIL_BUILD_TESTS=ON -DANVIL_CUDA=$cuda
cmake --build build-test -j "$(nproc)"
ctest --test-dir build-test --output-on-failure -j2 --timeout 900

# Sanitizer stages (issue 19, "Proving it"): -O1 builds of only what they run, without the
# cuda backend, no suppressions (scripts/sanitize.sh says what each runs).
if [ "${ANVIL_SANITIZERS:-0}" = 1 ]; then
  bash scripts/sanitize.sh asan
  bash scripts/sanitize.sh tsan
fi
