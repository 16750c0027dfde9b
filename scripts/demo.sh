#!/usr/bin/env bash
# The demo: install the packages, build Anvil (Release) into build/, then summarize and run
# the bundled digits models (ONNX from PyTorch, Keras, Caffe) on their bundled inputs, check
# the results against each framework's own output and print the predicted digits.
# Usage (from the repository, as root):  bash scripts/demo.sh
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

# The same digits through a model trained with real Keras 2.3.1 (Theano backend) and one
# trained with real BVLC Caffe (models/demo/keras, models/demo/caffe).
K=$DEMO/keras
echo
echo "== anvil summary $K/digits_cnn.h5"
"$ANVIL" summary "$K/digits_cnn.h5"
echo
echo "== anvil run $K/digits_cnn.h5 --input $K/inputs/image.npy --output-dir $OUT/keras"
"$ANVIL" run "$K/digits_cnn.h5" --input "$K/inputs/image.npy" --output-dir "$OUT/keras" --top 3
echo
echo "== compare with Keras's output ($K/expected/probs.npy)"
/usr/bin/python3 scripts/npy_compare.py "$OUT/keras/probs.npy" "$K/expected/probs.npy" \
  --atol 1e-4 --labels "$K/labels.txt"

C=$DEMO/caffe
echo
echo "== anvil summary $C/deploy.prototxt $C/digits.caffemodel"
"$ANVIL" summary "$C/deploy.prototxt" "$C/digits.caffemodel"
echo
echo "== anvil run $C/deploy.prototxt $C/digits.caffemodel --input $C/inputs/data.npy --output-dir $OUT/caffe"
"$ANVIL" run "$C/deploy.prototxt" "$C/digits.caffemodel" --input "$C/inputs/data.npy" \
  --output-dir "$OUT/caffe" --top 3
echo
echo "== compare with Caffe's output ($C/expected/prob.npy)"
/usr/bin/python3 scripts/npy_compare.py "$OUT/caffe/prob.npy" "$C/expected/prob.npy" \
  --atol 1e-4 --labels "$C/labels.txt"
echo
echo "demo OK"
