# shellcheck shell=bash source=tests/cli/lib/common.sh
# Messages of run/bench/verify that name the real cause (issue 19, "Messages"): unknown input
# file types list the supported ones, numeric flags say what they expect, bench prints
# percentiles, verify hides rows without a reference unless --all.
source "$(dirname "$0")/lib/common.sh" "$@"
IN="$DEMO/inputs/image.npy"

# 1. Input files that are neither .npy/.npz nor an image stb_image reads: a one-line error
#    listing the supported types (not "missing the \x93NUMPY magic").
printf 'RIFF\x10\x00\x00\x00WEBPVP8 ' >"$TMP/photo.webp"
expect_bad_input "photo.webp" run "$MODEL" --input "$TMP/photo.webp" --output-dir "$TMP/o"
expect_contains "$TMP/err" "unsupported input file type (a WebP image)"
expect_contains "$TMP/err" ".npy, .npz and images (.png"
printf 'II*\x00\x08\x00\x00\x00' >"$TMP/scan.tiff"
expect_bad_input "scan.tiff" run "$MODEL" --input "$TMP/scan.tiff" --output-dir "$TMP/o"
expect_contains "$TMP/err" "TIFF"
echo "a,b,c" >"$TMP/values.csv"
expect_bad_input "values.csv" run "$MODEL" --input "$TMP/values.csv" --output-dir "$TMP/o"
expect_contains "$TMP/err" "unsupported input file type '.csv'"
# A .npy or an image under another name is recognised by its content.
cp "$IN" "$TMP/image.data"
expect_ok run "$MODEL" --input "$TMP/image.data" --output-dir "$TMP/o1"
cp "$DEMO/digits/0_label2.png" "$TMP/digit"
expect_ok run "$MODEL" --input "$TMP/digit" --divide 255 --output-dir "$TMP/o2"
# A corrupt image: the decoder's reason, never an empty one.
head -c 60 "$DEMO/digits/0_label2.png" >"$TMP/cut.png"
printf 'garbage' >>"$TMP/cut.png"
run_anvil run "$MODEL" --input "$TMP/cut.png" --output-dir "$TMP/o3"
if [ "$RC" -eq 2 ]; then
  grep -Eq "cannot decode the image: .+" "$TMP/err" || { cat "$TMP/err" >&2; fail "empty decoder reason"; }
fi

# 2. Numeric flags: what is expected, not 300 digits of DBL_MAX or "not in range".
for f in "--rtol -1" "--atol abc"; do
  # shellcheck disable=SC2086
  run_anvil verify "$MODEL" -r "$DEMO/expected" --input "$IN" $f
  [ "$RC" -eq 2 ] || { cat "$TMP/err" >&2; fail "verify $f: expected exit 2, got $RC"; }
  head -1 "$TMP/err" | grep -q "expected a number >= 0" || { cat "$TMP/err" >&2; fail "verify $f: message"; }
  [ "$(head -1 "$TMP/err" | wc -c)" -lt 200 ] || { head -1 "$TMP/err" >&2; fail "verify $f: message too long"; }
done
for cmd in "run $MODEL --input $IN --output-dir $TMP/o4" "bench $MODEL --runs 1"; do
  # shellcheck disable=SC2086
  run_anvil $cmd --threads abc
  [ "$RC" -eq 2 ] || { cat "$TMP/err" >&2; fail "$cmd --threads abc: expected exit 2, got $RC"; }
  head -1 "$TMP/err" | grep -q "expected a whole number from 1 to 1024, got 'abc'" ||
    { cat "$TMP/err" >&2; fail "$cmd --threads abc: message"; }
done

# 3. bench: P50/P90/P99 in text and JSON.
expect_ok bench "$MODEL" --runs 10 --warmup 0
grep -Eq "^percentile P50 [0-9.]+ ms  P90 [0-9.]+ ms  P99 [0-9.]+ ms$" "$TMP/out" ||
  { cat "$TMP/out" >&2; fail "bench: no percentile line"; }
expect_ok bench "$MODEL" --runs 10 --warmup 0 --json
"$PY" - "$TMP/out" <<'PYEOF' || fail "bench --json percentiles are wrong"
import json, sys
import numpy as np
j = json.load(open(sys.argv[1]))
t = j["times_ms"]
for q in (50, 90, 99):
    assert abs(j["p%d_ms" % q] - float(np.percentile(t, q))) < 1e-9, (q, j)
assert j["min_ms"] <= j["p50_ms"] <= j["p90_ms"] <= j["p99_ms"] <= j["max_ms"], j
PYEOF

# 4. verify: layers the reference lacks are hidden unless --all.
"$PY" -c "
import sys, numpy as np
np.savez(sys.argv[2], probs=np.load(sys.argv[1] + '/probs.npy'))
" "$DEMO/expected" "$TMP/probs_only.npz"
expect_ok verify "$MODEL" -r "$TMP/probs_only.npz" --input "$IN"
expect_contains "$TMP/out" "without a reference tensor not shown; --all lists them"
expect_contains "$TMP/out" "criterion: |ours - ref| <= atol + rtol * max|ref| of each tensor"
if grep -q " unchecked" "$TMP/out"; then cat "$TMP/out" >&2; fail "unchecked rows shown without --all"; fi
expect_ok verify "$MODEL" -r "$TMP/probs_only.npz" --input "$IN" --all
expect_contains "$TMP/out" "unchecked"
echo "messages OK"
