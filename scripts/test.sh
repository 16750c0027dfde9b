#!/usr/bin/env bash
# The tests: install the packages, build everything with warnings as errors into build-test/,
# run ctest.   Usage (from the repository, as root):  bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# -O2 (not Release's -O3): GCC 12 gives false -Wrestrict warnings on std::string at -O3, and
# -O2 is what developers build with (RelWithDebInfo), without the debug info's build time.
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DANVIL_WERROR=ON -DANVIL_BUILD_TESTS=ON
cmake --build build-test -j "$(nproc)"
ctest --test-dir build-test --output-on-failure -j2 --timeout 900
