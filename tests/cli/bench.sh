# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil bench: text and --json (keys and sane numbers); no progress bar when stderr is a file.
source "$(dirname "$0")/lib/common.sh" "$@"

expect_ok bench "$MODEL" --runs 5 --warmup 1 --json
[ ! -s "$TMP/err" ] || { cat "$TMP/err" >&2; fail "bench wrote to stderr (not a terminal)"; }
"$PY" - "$TMP/out" "$MODEL" <<'PYEOF' || fail "bench --json output is wrong"
import json, math, sys
j = json.load(open(sys.argv[1]))
for k in ["min_ms", "median_ms", "mean_ms", "runs", "threads", "backend", "compile_ms",
          "peak_rss_mb", "model"]:
    assert k in j, "missing key " + k
for k in ["min_ms", "median_ms", "mean_ms", "compile_ms", "peak_rss_mb"]:
    v = j[k]
    assert isinstance(v, (int, float)) and math.isfinite(v) and v >= 0, (k, v)
assert 0 < j["min_ms"] <= j["median_ms"], j
assert j["min_ms"] <= j["mean_ms"], j
assert j["runs"] == 5 and j["threads"] == 1, j
assert isinstance(j["backend"], str) and j["backend"], j
assert j["model"] == sys.argv[2], j
assert 1 < j["peak_rss_mb"] < 100000, j
PYEOF

# Given inputs (a batch of 8) and explicit backend/threads.
expect_ok bench "$MODEL" --input "$DEMO/inputs/image.npy" --runs 3 --warmup 0 --threads 2 \
  --backend reference --json
"$PY" -c "
import json, sys
j = json.load(open(sys.argv[1]))
assert j['backend'] == 'reference' and j['threads'] == 2 and j['runs'] == 3, j
assert j['inputs'][0]['shape'] == [8, 1, 8, 8], j
" "$TMP/out" || fail "bench with inputs: wrong JSON"

expect_ok bench "$MODEL" --runs 2
expect_contains "$TMP/out" "median"
expect_contains "$TMP/out" "ms"
echo "bench OK"
