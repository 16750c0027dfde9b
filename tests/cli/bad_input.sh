# shellcheck shell=bash source=tests/cli/lib/common.sh
# Bad usage and bad input: exit 2 with a one-line error naming the file or field.
source "$(dirname "$0")/lib/common.sh" "$@"
IN="$DEMO/inputs/image.npy"

# Missing model file.
expect_bad_input "$TMP/nope.onnx" run "$TMP/nope.onnx" --input "$IN" --output-dir "$TMP/o"
expect_bad_input "$TMP/nope.onnx" summary "$TMP/nope.onnx"

# Garbage .onnx.
head -c 4096 /dev/urandom >"$TMP/garbage.onnx"
expect_bad_input "$TMP/garbage.onnx" summary "$TMP/garbage.onnx"
printf 'this is not a model\n' >"$TMP/text.onnx"
expect_bad_input "$TMP/text.onnx" run "$TMP/text.onnx" --input "$IN" --output-dir "$TMP/o"

# Truncated .onnx (the first half of the demo model).
size=$(stat -c %s "$MODEL")
head -c $((size / 2)) "$MODEL" >"$TMP/truncated.onnx"
expect_bad_input "$TMP/truncated.onnx" summary "$TMP/truncated.onnx"
expect_bad_input "$TMP/truncated.onnx" run "$TMP/truncated.onnx" --input "$IN" --output-dir "$TMP/o"
head -c 100 "$MODEL" >"$TMP/truncated100.onnx"
expect_bad_input "$TMP/truncated100.onnx" run "$TMP/truncated100.onnx" --input "$IN" --output-dir "$TMP/o"

# Missing input file, garbage input file.
expect_bad_input "$TMP/missing.npy" run "$MODEL" --input "$TMP/missing.npy" --output-dir "$TMP/o"
expect_bad_input "$TMP/missing.npy" run "$MODEL" --input "image=$TMP/missing.npy" --output-dir "$TMP/o"
printf 'garbage' >"$TMP/garbage.npy"
expect_bad_input "$TMP/garbage.npy" run "$MODEL" --input "$TMP/garbage.npy" --output-dir "$TMP/o"

# Wrong input shape (spatial 9x9 instead of 8x8; batch is free) and wrong rank.
"$PY" -c "import numpy as np, sys; np.save(sys.argv[1], np.zeros((2, 1, 9, 9), np.float32)); np.save(sys.argv[2], np.zeros((8, 64), np.float32))" \
  "$TMP/shape.npy" "$TMP/rank.npy"
expect_bad_input "$TMP/shape.npy" run "$MODEL" --input "$TMP/shape.npy" --output-dir "$TMP/o"
expect_contains "$TMP/err" "(2, 1, 9, 9)"
expect_contains "$TMP/err" "input"
expect_bad_input "$TMP/rank.npy" run "$MODEL" --input "$TMP/rank.npy" --output-dir "$TMP/o"
# Integer data for a float input.
"$PY" -c "import numpy as np, sys; np.save(sys.argv[1], np.zeros((1, 1, 8, 8), np.int32))" "$TMP/int.npy"
expect_bad_input "$TMP/int.npy" run "$MODEL" --input "$TMP/int.npy" --output-dir "$TMP/o"

# Unknown input name; the same input twice; no input at all.
expect_bad_input "no_such_input" run "$MODEL" --input "no_such_input=$IN" --output-dir "$TMP/o"
expect_bad_input "image" run "$MODEL" --input "$IN" --input "image=$IN" --output-dir "$TMP/o"
expect_bad_input "image" run "$MODEL" --output-dir "$TMP/o"

# Unknown backend: the error lists the backends that exist.
expect_bad_input "reference" run "$MODEL" --input "$IN" --backend no_such_backend --output-dir "$TMP/o"

# Unknown flag, bad flag values, unknown command: exit 2 with one line saying what is wrong
# and where the help is ("anvil run: error: ...; run 'anvil run --help'"), not the whole help.
for args in "run $MODEL --input $IN --bogus" "run $MODEL --input $IN --threads 0" \
            "bench $MODEL --runs -1" "summary $MODEL --nope"; do
  # shellcheck disable=SC2086
  run_anvil $args
  cmd=${args%% *}
  [ "$RC" -eq 2 ] || { cat "$TMP/err" >&2; fail "expected exit 2 from: anvil $args (got $RC)"; }
  [ "$(wc -l <"$TMP/err")" -eq 1 ] || { cat "$TMP/err" >&2; fail "not one line after: anvil $args"; }
  grep -q "^anvil $cmd: error: .*; run 'anvil $cmd --help'$" "$TMP/err" ||
    { cat "$TMP/err" >&2; fail "no help pointer after: anvil $args"; }
done
run_anvil no-such-command
[ "$RC" -eq 2 ] || fail "unknown command should exit 2"
[ "$(wc -l <"$TMP/err")" -eq 1 ] || { cat "$TMP/err" >&2; fail "unknown command: not one line"; }
expect_contains "$TMP/err" "run 'anvil --help'"
run_anvil
[ "$RC" -eq 2 ] || fail "no command should exit 2"

# Nothing was written by any failing run.
[ ! -e "$TMP/o" ] || { ls -R "$TMP/o" >&2; fail "a failing run wrote files"; }
echo "bad_input OK"
