# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil summary on the demo model: format, inputs/outputs with shapes, the layer table.
source "$(dirname "$0")/lib/common.sh" "$@"

expect_ok summary "$MODEL"
head -n 1 "$TMP/out" >"$TMP/first"
expect_contains "$TMP/first" "digits_cnn.onnx"
expect_contains "$TMP/first" "onnx"
expect_contains "$TMP/first" "image (?, 1, 8, 8) float32"  # the free batch dim is ?
expect_contains "$TMP/first" "probs (?, 10) float32"
# The layers of the exported graph (torch.onnx.export folded BatchNorm into the first Conv).
for op in Conv Relu MaxPool Flatten Gemm Softmax; do expect_contains "$TMP/out" "$op"; done
# Output shapes of the layers, by hand: conv1 pad 1 keeps 8x8, pool halves it, conv2 (3x3,
# no pad) gives 2x2, flatten 16*2*2 = 64.
for s in "(1, 8, 8, 8)" "(1, 8, 4, 4)" "(1, 16, 2, 2)" "(1, 64)" "(1, 10)"; do
  expect_contains "$TMP/out" "$s"
done
# Parameters, by hand: conv1 8*1*3*3+8 = 80, conv2 16*8*3*3+16 = 1168, fc 10*64+10 = 650.
grep -Eq "Total params: *1,?898\b" "$TMP/out" || { cat "$TMP/out" >&2; fail "total params should be 1898"; }

# --help is not an error; no model is.
expect_ok summary --help
expect_contains "$TMP/out" "--constants"
run_anvil summary
[ "$RC" -eq 2 ] || fail "summary without a model should exit 2, got $RC"
echo "summary OK"
