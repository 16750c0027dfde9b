#!/usr/bin/env bash
# Installs the Debian 12 packages Anvil needs. Idempotent and non-interactive: does nothing
# (not even `apt-get update`) when everything is installed. Run as root (or with sudo):
#   bash scripts/setup.sh           what the build and the demo need (scripts/demo.sh)
#   bash scripts/setup.sh --tests   that plus the test-only packages (scripts/test.sh):
#                                   GoogleTest, the ONNX node test data, clang-format-14 and
#                                   Chromium (~110 MB, for the HTML report test)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  # ONNX (protobuf + Debian's generated ONNX classes)
  libprotobuf-dev protobuf-compiler libonnx-dev
  # TFLite (.tflite flatbuffers: flatc generates the schema code at build time)
  flatbuffers-compiler libflatbuffers-dev
  # core: formatting, zip (.npz, .keras), images, CLI, JSON, compression
  libfmt-dev libzip-dev libstb-dev libcli11-dev nlohmann-json3-dev zlib1g-dev
  # Keras (.h5) and the CPU backend (oneDNN)
  libhdf5-dev libdnnl-dev
  # the demo compares .npy files with NumPy (scripts/npy_compare.py)
  python3 python3-numpy
)
TEST_PACKAGES=(
  # unit tests and benchmarks; the ONNX backend node tests (tests/unit/cpu_onnx_nodes_test.cpp)
  libgtest-dev libgmock-dev libbenchmark-dev libonnx-testdata
  # the format check (scripts/format.sh --check, run by scripts/test.sh)
  clang-format-14
  # tests/cli/verify_html.sh loads the HTML verification report in headless Chromium
  chromium
)
case ${1:-} in
  --tests) PACKAGES+=("${TEST_PACKAGES[@]}") ;;
  "") ;;
  *)
    echo "usage: bash scripts/setup.sh [--tests]" >&2
    exit 2
    ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup: missing packages (${missing[*]}); run this script as root" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
