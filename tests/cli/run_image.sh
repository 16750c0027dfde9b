# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil run with image inputs: the demo PNGs (32x32 grey) are shrunk to the model's 8x8.
source "$(dirname "$0")/lib/common.sh" "$@"

n=0
for png in "$DEMO"/digits/*.png; do
  label=$(basename "$png" .png)
  label=${label##*_label}
  expect_ok run "$MODEL" --input "$png" --divide 255 --output-dir "$TMP/i$n"
  expect_contains "$TMP/out" "probs (1, 10) float32"
  grep -Eq "^  \[0\] top-5: $label \(" "$TMP/out" || { cat "$TMP/out" >&2; fail "$png: predicted class is not $label"; }
  n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "expected the demo PNGs"

# The input tensor the image path makes has the model's layout and size: check the values
# against NumPy (nearest-upscaled 4x and shrunk back: every pixel must be within the range of
# its 4x4 block's neighbourhood, and the result is in [0, 1]).
png="$DEMO/digits/0_label2.png"
expect_ok run "$MODEL" --input "image=$png" --divide 255 --output-dir "$TMP/n" --output image
"$PY" - "$TMP/n/image.npy" "$DEMO/inputs/image.npy" <<'PYEOF' || fail "image input values are wrong"
import sys
import numpy as np
got = np.load(sys.argv[1])
ref = np.load(sys.argv[2])[0:1]  # the first test digit, which 0_label2.png shows
assert got.shape == (1, 1, 8, 8), got.shape
assert got.min() >= 0 and got.max() <= 1.0 + 1e-6
# An antialiased shrink blurs a little: close to the 8x8 digit, not equal.
err = np.abs(got - ref).mean()
assert err < 0.15, err
PYEOF

# Explicit size and layout that do not fit the model: exit 2 naming the input.
expect_bad_input "image" run "$MODEL" --input "$png" --size 9x9 --output-dir "$TMP/x"
expect_bad_input "image" run "$MODEL" --input "$png" --layout nhwc --channels 3 --output-dir "$TMP/x"
expect_bad_input "size" run "$MODEL" --input "$png" --size 9by9 --output-dir "$TMP/x"
echo "run_image OK"
