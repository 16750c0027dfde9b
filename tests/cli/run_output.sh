# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil run --output: any tensor, written under its sanitized source name.
source "$(dirname "$0")/lib/common.sh" "$@"

expect_ok run "$MODEL" --input "$DEMO/inputs/image.npy" --output-dir "$TMP/o" \
  --output /pool/MaxPool_output_0 --output /Relu_output_0 --output /conv1/Conv_output_0 \
  --output probs
for f in _pool_MaxPool_output_0 _Relu_output_0 _conv1_Conv_output_0 probs; do
  [ -f "$TMP/o/$f.npy" ] || { ls "$TMP/o" >&2; fail "$f.npy not written"; }
done
[ "$(ls "$TMP/o" | wc -l)" -eq 4 ] || { ls "$TMP/o" >&2; fail "expected exactly 4 files"; }
expect_contains "$TMP/out" "/pool/MaxPool_output_0 (8, 8, 4, 4) float32 -> $TMP/o/_pool_MaxPool_output_0.npy"

# The max-pool output equals PyTorch's (made by python/make_demo_onnx.py).
"$PY" "$SRC/scripts/npy_compare.py" "$TMP/o/_pool_MaxPool_output_0.npy" \
  "$DEMO/expected/_pool_MaxPool_output_0.npy" --atol 1e-4 || fail "max-pool output differs from PyTorch's"
"$PY" "$SRC/scripts/npy_compare.py" "$TMP/o/probs.npy" "$DEMO/expected/probs.npy" --atol 1e-4 \
  || fail "probs differ from PyTorch's"
# Relations between the tensors, checked with NumPy: relu = max(conv, 0), pool = 2x2 max of relu.
"$PY" - "$TMP/o" <<'PYEOF' || fail "intermediate tensors are inconsistent"
import sys
import numpy as np
d = sys.argv[1]
conv = np.load(d + "/_conv1_Conv_output_0.npy")
relu = np.load(d + "/_Relu_output_0.npy")
pool = np.load(d + "/_pool_MaxPool_output_0.npy")
assert conv.shape == (8, 8, 8, 8) and relu.shape == (8, 8, 8, 8) and pool.shape == (8, 8, 4, 4)
assert np.array_equal(relu, np.maximum(conv, 0)), "relu != max(conv, 0)"
assert (conv < 0).any(), "conv output should have negative values"
ref = relu.reshape(8, 8, 4, 2, 4, 2).max(axis=(3, 5))
assert np.array_equal(pool, ref), "pool != 2x2 max of relu"
PYEOF

# A tensor that does not exist: exit 2 naming it.
expect_bad_input "no_such_tensor" run "$MODEL" --input "$DEMO/inputs/image.npy" \
  --output-dir "$TMP/p" --output no_such_tensor
echo "run_output OK"
