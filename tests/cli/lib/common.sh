# shellcheck shell=bash
# Shared by tests/cli/*.sh (sourced, not a test itself). Each test runs as
#   bash tests/cli/<name>.sh <anvil-binary> <source-dir>
set -euo pipefail

ANVIL=${1:?usage: $0 <anvil-binary> <source-dir>}
SRC=${2:?usage: $0 <anvil-binary> <source-dir>}
case $ANVIL in */*) ANVIL=$(cd "$(dirname "$ANVIL")" && pwd)/$(basename "$ANVIL") ;; esac
SRC=$(cd "$SRC" && pwd)
DEMO="$SRC/models/demo"
MODEL="$DEMO/digits_cnn.onnx"
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# run_anvil ARGS...: runs anvil, keeping stdout in $TMP/out, stderr in $TMP/err, exit code in $RC.
run_anvil() {
  set +e
  "$ANVIL" "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
  set -e
}

# expect_ok ARGS...: anvil must exit 0.
expect_ok() {
  run_anvil "$@"
  if [ "$RC" -ne 0 ]; then
    cat "$TMP/out" "$TMP/err" >&2
    fail "expected exit 0 from: anvil $*  (got $RC)"
  fi
}

# expect_bad_input WORD ARGS...: anvil must exit 2 with a one-line error on stderr that
# contains WORD (a file name or field).
expect_bad_input() {
  local word=$1
  shift
  run_anvil "$@"
  [ "$RC" -eq 2 ] || { cat "$TMP/out" "$TMP/err" >&2; fail "expected exit 2 from: anvil $*  (got $RC)"; }
  local lines
  lines=$(wc -l <"$TMP/err")
  [ "$lines" -eq 1 ] || { cat "$TMP/err" >&2; fail "expected a one-line error from: anvil $*  (got $lines lines)"; }
  grep -qF -- "$word" "$TMP/err" || { cat "$TMP/err" >&2; fail "error of 'anvil $*' does not mention '$word'"; }
  grep -q "error" "$TMP/err" || { cat "$TMP/err" >&2; fail "error of 'anvil $*' does not say 'error'"; }
}

# expect_contains FILE TEXT
expect_contains() {
  grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "'$1' does not contain '$2'"; }
}
