#!/usr/bin/env bash
# The demo: install the packages, build Anvil (Release) into build/, then summarize and run
# the bundled digits model on its bundled inputs, check the result against PyTorch's output
# and print the predicted digits.   Usage (from the repository, as root):  bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DANVIL_BUILD_TESTS=OFF \
  -DANVIL_BUILD_EXAMPLES=OFF
cmake --build build --target anvil_cli -j "$(nproc)"

ANVIL=build/anvil
DEMO=models/demo
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo
echo "== anvil summary $DEMO/digits_cnn.onnx"
"$ANVIL" summary "$DEMO/digits_cnn.onnx"

echo
echo "== anvil run $DEMO/digits_cnn.onnx --input $DEMO/inputs/image.npy --output-dir $OUT"
"$ANVIL" run "$DEMO/digits_cnn.onnx" --input "$DEMO/inputs/image.npy" --output-dir "$OUT"

echo
echo "== compare with PyTorch's output ($DEMO/expected/probs.npy)"
/usr/bin/python3 scripts/npy_compare.py "$OUT/probs.npy" "$DEMO/expected/probs.npy" \
  --atol 1e-4 --labels "$DEMO/labels.txt"

echo
imgs=("$DEMO"/digits/*.png)
img=${imgs[0]}
echo "== anvil run $DEMO/digits_cnn.onnx --input $img --divide 255"
"$ANVIL" run "$DEMO/digits_cnn.onnx" --input "$img" --divide 255 --output-dir "$OUT/image" --top 3
echo
echo "demo OK"
