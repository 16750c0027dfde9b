# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil ops: the op table from the registry, as text and as Markdown (docs/ops.md).
source "$(dirname "$0")/lib/common.sh" "$@"

expect_ok ops
for op in Conv MaxPool Gemm Relu Softmax Flatten; do
  grep -Eq "^$op +[a-z]" "$TMP/out" || { cat "$TMP/out" >&2; fail "anvil ops does not list $op"; }
done
n_text=$(wc -l <"$TMP/out")

expect_ok ops --markdown
expect_contains "$TMP/out" "| Op | Category | Inputs | Outputs | Attributes | Description |"
grep -Eq '^\| Conv \| [a-z]+ \| 2-3 \| 1 \| .*kernel_shape.*pads' "$TMP/out" \
  || { grep Conv "$TMP/out" >&2; fail "Conv row: 2-3 inputs, attributes kernel_shape/pads"; }
n_rows=$(grep -c '^| [A-Za-z]' "$TMP/out")
[ "$n_rows" -eq $((n_text + 1)) ] || fail "markdown has $n_rows rows (with header), text has $n_text ops"
grep -q "($n_text ops)" "$TMP/out" || fail "markdown header should count $n_text ops"

expect_ok ops --category pool
grep -q "^MaxPool " "$TMP/out" || fail "--category pool should list MaxPool"
if grep -q "^Conv " "$TMP/out"; then fail "--category pool should not list Conv"; fi
echo "ops OK"
