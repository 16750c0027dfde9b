# shellcheck shell=bash source=tests/cli/lib/common.sh
# Usage and discovery (issue 19, "Messages"): one-line usage errors pointing at the command's
# --help, `anvil help CMD`, -V/--version with the build's commit, type, backends and library
# versions, `ops --category` checked, `-o result.npy` explained, summary's free dims and
# --shape, top-k only for classifier scores.
source "$(dirname "$0")/lib/common.sh" "$@"
IN="$DEMO/inputs/image.npy"

# One line, not the whole help.
run_anvil verify "$MODEL" -r "$DEMO/expected" --no-such-flag
[ "$RC" -eq 2 ] || fail "verify --no-such-flag: exit $RC"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || { cat "$TMP/err" >&2; fail "usage error is not one line"; }
grep -q "^anvil verify: error: .*--no-such-flag.*; run 'anvil verify --help'$" "$TMP/err" ||
  { cat "$TMP/err" >&2; fail "usage error message"; }
run_anvil run
[ "$RC" -eq 2 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] || { cat "$TMP/err" >&2; fail "run without a model"; }
expect_contains "$TMP/err" "model is required"

# anvil help CMD == anvil CMD --help; unknown commands are one line.
expect_ok help run
cp "$TMP/out" "$TMP/help_run"
expect_ok run --help
cmp -s "$TMP/out" "$TMP/help_run" || fail "'anvil help run' differs from 'anvil run --help'"
expect_contains "$TMP/help_run" "--output-dir"
expect_ok help
expect_contains "$TMP/out" "commands:"
expect_bad_input "nosuch" help nosuch

# --version and -V: commit, build type, backends, oneDNN (and cuDNN in CUDA builds).
for v in --version -V; do
  expect_ok $v
  grep -Eq "^anvil [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{7,}|unknown), [A-Za-z]+ build\)$" "$TMP/out" ||
    { cat "$TMP/out" >&2; fail "$v: first line"; }
  grep -q "^backends: .*reference" "$TMP/out" || { cat "$TMP/out" >&2; fail "$v: no backends line"; }
  grep -Eq "^oneDNN [0-9]+\.[0-9]+" "$TMP/out" || { cat "$TMP/out" >&2; fail "$v: no oneDNN version"; }
done

# ops --category: an unknown category is an error listing the categories.
expect_bad_input "nosuch" ops --category nosuch
expect_contains "$TMP/err" "categories: "
cat_name=$(grep -oE "categories: [a-z_]+" "$TMP/err" | cut -d' ' -f2)
expect_ok ops --category "$cat_name"
[ -s "$TMP/out" ] || fail "ops --category $cat_name printed nothing"

# -o names a tensor: a file name gets the hint and the nearest tensor names.
expect_bad_input "result.npy" run "$MODEL" --input "$IN" -o result.npy --output-dir "$TMP/o"
expect_contains "$TMP/err" "names a tensor to write, not a file"
expect_contains "$TMP/err" "nearest tensor names: '"
expect_bad_input "probz" run "$MODEL" --input "$IN" -o probz --output-dir "$TMP/o"
expect_contains "$TMP/err" "nearest tensor names: 'probs'"

# summary: the free batch dim is '?', --shape fixes it.
expect_ok summary "$MODEL"
head -1 "$TMP/out" | grep -qF "(?, 1, 8, 8)" || { head -1 "$TMP/out" >&2; fail "summary: free batch not '?'"; }
expect_ok summary "$MODEL" --shape 4,1,8,8
head -1 "$TMP/out" | grep -qF "(4, 1, 8, 8)" || { head -1 "$TMP/out" >&2; fail "summary --shape"; }
expect_bad_input "shape" summary "$MODEL" --shape 4,1,8

# top-k: for classifier scores, not for any 2-D tensor.
expect_ok run "$MODEL" --input "$IN" --output-dir "$TMP/o1"
expect_contains "$TMP/out" "top-5"
expect_ok run "$MODEL" --input "$IN" -o /fc/Gemm_output_0 --output-dir "$TMP/o2"
expect_contains "$TMP/out" "top-5"  # logits of the classifier
expect_ok run "$MODEL" --input "$IN" -o /flatten/Flatten_output_0 --output-dir "$TMP/o3"
grep -q "top-" "$TMP/out" && { cat "$TMP/out" >&2; fail "top-k printed for flattened features"; }
echo "usage OK"
