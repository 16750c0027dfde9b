# shellcheck shell=bash source=tests/cli/lib/common.sh
# Replays the malformed-input corpus (tests/data/malformed/, made by its make_corpus.py): every
# file exits 2 with a one-line error naming the file, in under 5 s (issue 19, "Proving it").
# An importer that lists several problems at once ("N problems importing ...:") follows that
# line with one "  - " line per problem.
#   model/*       anvil summary FILE
#   keras_json/*  anvil summary FILE <tests/data/fixtures/keras/resnet_small/weights.h5>
#   input/*       anvil run models/demo/digits_cnn.onnx --input FILE
source "$(dirname "$0")/lib/common.sh" "$@"
CORPUS="$SRC/tests/data/malformed"
WEIGHTS="$SRC/tests/data/fixtures/keras/resnet_small/weights.h5"
LIMIT_MS=${ANVIL_CORPUS_LIMIT_MS:-5000}  # sanitizer builds raise it
n=0
bad=0
for kind in model keras_json input; do
  for f in "$CORPUS/$kind"/*; do
    [ -f "$f" ] || continue
    case $kind in
      model) args=(summary "$f") ;;
      keras_json) args=(summary "$f" "$WEIGHTS") ;;
      input) args=(run "$MODEL" --input "$f" --output-dir "$TMP/o") ;;
    esac
    t0=$(date +%s%N)
    set +e
    timeout 60 "$ANVIL" "${args[@]}" >"$TMP/out" 2>"$TMP/err"
    RC=$?
    set -e
    ms=$((($(date +%s%N) - t0) / 1000000))
    n=$((n + 1))
    why=""
    if [ "$RC" -ne 2 ]; then
      why="exit $RC"
    elif [ "$(tail -n +2 "$TMP/err" | grep -cv '^  - ')" -ne 0 ]; then
      why="$(wc -l <"$TMP/err") lines, not one (or a list of the problems)"
    elif ! head -1 "$TMP/err" | grep -qF -- "$(basename "$f")"; then
      why="message does not name the file"
    elif ! iconv -f UTF-8 -t UTF-8 "$TMP/err" >/dev/null 2>&1 || LC_ALL=C grep -q '[[:cntrl:]]' <(tr -d '\n' <"$TMP/err"); then
      why="the message holds control characters or invalid UTF-8"
    elif [ "$ms" -gt "$LIMIT_MS" ]; then
      why="took $ms ms"
    fi
    if [ -n "$why" ]; then
      bad=$((bad + 1))
      echo "FAIL ${f#"$CORPUS/"}: $why: $(head -c 300 "$TMP/err")" >&2
    fi
    [ ! -e "$TMP/o" ] || { echo "FAIL ${f#"$CORPUS/"}: wrote outputs" >&2; bad=$((bad + 1)); rm -rf "$TMP/o"; }
  done
done
[ "$n" -ge 200 ] || fail "the corpus has $n files, expected >= 200"
[ "$bad" -eq 0 ] || fail "$bad of $n corpus files misbehaved"
echo "malformed OK ($n files)"
