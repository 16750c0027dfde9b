# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil run on the demo model: writes <output>.npy, values match PyTorch's within 1e-4.
source "$(dirname "$0")/lib/common.sh" "$@"

# Unnamed input (the model has one input), reference backend.
expect_ok run "$MODEL" --input "$DEMO/inputs/image.npy" --output-dir "$TMP/a" --backend reference
[ -f "$TMP/a/probs.npy" ] || fail "probs.npy not written"
[ "$(ls "$TMP/a" | wc -l)" -eq 1 ] || { ls "$TMP/a" >&2; fail "expected exactly one output file"; }
expect_contains "$TMP/out" "probs (8, 10) float32 -> $TMP/a/probs.npy"
expect_contains "$TMP/out" "top-5"
"$PY" "$SRC/scripts/npy_compare.py" "$TMP/a/probs.npy" "$DEMO/expected/probs.npy" --atol 1e-4 \
  || fail "probs differ from PyTorch's"

# Named input, default backend, default output dir (.).
mkdir -p "$TMP/b"
(cd "$TMP/b" && "$ANVIL" run "$MODEL" --input "image=$DEMO/inputs/image.npy" >/dev/null) \
  || fail "run with NAME=FILE failed"
"$PY" "$SRC/scripts/npy_compare.py" "$TMP/b/probs.npy" "$DEMO/expected/probs.npy" --atol 1e-4 \
  || fail "probs (default backend) differ from PyTorch's"

# The top-5 line of row 0 names the class PyTorch ranks first (from expected/probs.npy).
best=$("$PY" -c "import numpy as np, sys; print(int(np.load(sys.argv[1])[0].argmax()))" "$DEMO/expected/probs.npy")
grep -Eq "^  \[0\] top-5: $best \(" "$TMP/out" || { cat "$TMP/out" >&2; fail "row 0's top class should be $best"; }

# Threads do not change results.
expect_ok run "$MODEL" --input "$DEMO/inputs/image.npy" --output-dir "$TMP/c" --threads 2
"$PY" "$SRC/scripts/npy_compare.py" "$TMP/c/probs.npy" "$DEMO/expected/probs.npy" --atol 1e-4 \
  || fail "probs (2 threads) differ from PyTorch's"
# An .npz feeds inputs by array name.
"$PY" -c "import numpy as np, sys; np.savez(sys.argv[2], image=np.load(sys.argv[1]))" \
  "$DEMO/inputs/image.npy" "$TMP/in.npz"
expect_ok run "$MODEL" --input "$TMP/in.npz" --output-dir "$TMP/z"
"$PY" "$SRC/scripts/npy_compare.py" "$TMP/z/probs.npy" "$DEMO/expected/probs.npy" --atol 1e-4 \
  || fail "probs (.npz input) differ from PyTorch's"
echo "run OK"
