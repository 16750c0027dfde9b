# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil run with NaN/Inf in an input (issue 19, item 2): one warning line per such input on
# stderr, and NaN reaches the outputs (Relu, MaxPool, Softmax keep it) instead of a confident
# class.
source "$(dirname "$0")/lib/common.sh" "$@"

"$PY" - "$DEMO/inputs/image.npy" "$TMP/nan.npy" <<'PYEOF'
import sys
import numpy as np
x = np.load(sys.argv[1]).copy()
x[0, 0, 3, 3] = np.nan
x[1, 0, 0, 0] = np.inf
np.save(sys.argv[2], x)
PYEOF
expect_ok run "$MODEL" --input "$TMP/nan.npy" --output-dir "$TMP/o" --backend reference
expect_contains "$TMP/err" "warning: input 'image' holds 1 NaN and 1 Inf of 512 values"
[ "$(grep -c warning "$TMP/err")" -eq 1 ] || { cat "$TMP/err" >&2; fail "expected one warning line"; }
"$PY" - "$TMP/o/probs.npy" <<'PYEOF' || fail "NaN did not propagate to the output"
import sys
import numpy as np
p = np.load(sys.argv[1])
assert np.isnan(p[0]).all(), p[0]
assert not np.isnan(p[2:]).any(), p
PYEOF
# A clean input: no warning.
expect_ok run "$MODEL" --input "$DEMO/inputs/image.npy" --output-dir "$TMP/c" --backend reference
if grep -q warning "$TMP/err"; then cat "$TMP/err" >&2; fail "warning on a clean input"; fi
echo "run_nan OK"
