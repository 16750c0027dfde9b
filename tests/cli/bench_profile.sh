# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil bench --profile (reference backend, the demo CNN): the profile has one step per node of
# the graph as run, its op types are the model's (as `anvil summary` lists them), and its times
# add up to the measured latency.
source "$(dirname "$0")/lib/common.sh" "$@"

# The model's op types, from the summary table (one row per source layer, op in column 2).
expect_ok summary "$MODEL"
cp "$TMP/out" "$TMP/summary"

# 1. The graph as imported (--no-optimize): one step per layer, every op type of the model.
expect_ok bench "$MODEL" --backend reference --runs 5 --warmup 1 --profile --no-optimize --json
"$PY" - "$TMP/summary" "$TMP/out" <<'PYEOF' || fail "bench --profile --no-optimize: wrong profile"
import collections, json, sys
rows, inside = [], False
for line in open(sys.argv[1]):
    if line.startswith("---"):
        inside = True
        continue
    if line.startswith("===") and inside:
        break
    if inside and line.strip():
        rows.append(line.split()[1])
want = collections.Counter(op for op in rows if op != "Input")
assert sum(want.values()) >= 6, want
j = json.load(open(sys.argv[2]))
prof = j["profile"]
got = collections.Counter(r["op"] for r in prof)
assert got == want, ("op types", dict(got), dict(want))
nodes = [r["node"] for r in prof]
assert len(set(nodes)) == len(nodes), nodes
for r in prof:
    assert r["ms"] >= 0 and r["calls"] == j["runs"], r  # warm-up runs are not counted
by_op = {o["op"]: o for o in j["profile_by_op"]}
assert set(by_op) == set(want), by_op
for op, n in want.items():
    assert by_op[op]["steps"] == n, (op, by_op[op])
    assert abs(by_op[op]["ms"] - sum(r["ms"] for r in prof if r["op"] == op)) < 1e-9
assert abs(sum(r["percent"] for r in prof) - 100) < 1e-6
assert abs(j["profile_total_ms"] - sum(r["ms"] for r in prof)) < 1e-9
PYEOF

# 2. Optimized (activations fused), a batch of 64 so the kernels dominate, on the reference
# backend and on the cpu backend where this build has it: every step is one of the model's ops
# (or a '+'-joined fused group of them; the cpu backend also lists its layout Reorders and
# marks ops it runs on reference kernels "(ref)"), and the steps' times add up to the measured
# mean latency (they are part of each run, so never more than it).
backends=(reference)
"$ANVIL" bench "$MODEL" --backend cpu --runs 1 --warmup 0 >/dev/null 2>&1 && backends+=(cpu)
for b in "${backends[@]}"; do
  expect_ok bench "$MODEL" --backend "$b" --shape image=64,1,8,8 --runs 20 --warmup 2 --profile --json
  "$PY" - "$TMP/summary" "$TMP/out" "$b" <<'PYEOF' || fail "bench --profile --backend $b: wrong profile"
import json, sys
rows, inside = [], False
for line in open(sys.argv[1]):
    if line.startswith("---"):
        inside = True
        continue
    if line.startswith("===") and inside:
        break
    if inside and line.strip():
        rows.append(line.split()[1])
j = json.load(open(sys.argv[2]))
assert j["backend"] == sys.argv[3], j["backend"]
prof = j["profile"]
assert prof, j
def parts(op):
    return [p.split(" (")[0] for p in op.split("+")]
for r in prof:
    for op in parts(r["op"]):
        assert op in rows or op == "Reorder", (r, rows)
    assert r["calls"] >= j["runs"], r
assert {"Conv", "MaxPool", "Gemm", "Softmax"} <= {op for r in prof for op in parts(r["op"])}, prof
total, mean = j["profile_total_ms"], j["mean_ms"]
assert 0.5 * mean <= total <= 1.02 * mean + 0.01, (total, mean)
ms = [r["ms"] for r in prof]
assert ms == sorted(ms, reverse=True), "profile is not sorted slowest first"
PYEOF
done

# 3. Text mode: the top steps and the per-op-type summary.
expect_ok bench "$MODEL" --backend reference --runs 3 --warmup 1 --profile --top 2
expect_contains "$TMP/out" "top 2 steps by time"
expect_contains "$TMP/out" "by op type"
expect_contains "$TMP/out" "/conv1/Conv"
[ "$(grep -cE '^ +[0-9.]+ +[0-9.]+% +[A-Za-z+]+ +/' "$TMP/out")" -eq 2 ] || { cat "$TMP/out" >&2; fail "--top 2 did not list 2 steps"; }

# 4. Without --profile there is no profile in the JSON.
expect_ok bench "$MODEL" --runs 2 --warmup 0 --json
"$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); assert 'profile' not in j and len(j['times_ms']) == 2, j" \
  "$TMP/out" || fail "bench --json without --profile"
# 5. --serve (the benchmark harness's mode): ready line, one answer per 'run N', the report at
# 'quit' with all timed runs; a bad request is a usage error.
printf 'run 2\nrun 3\nquit\n' | "$ANVIL" bench "$MODEL" --backend reference --warmup 1 --serve >"$TMP/out" 2>"$TMP/err" ||
  { cat "$TMP/err" >&2; fail "bench --serve failed"; }
"$PY" - "$TMP/out" <<'PYEOF' || fail "bench --serve: wrong answers"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 4, lines
assert lines[0]["ready"] is True and lines[0]["compile_ms"] >= 0, lines[0]
assert len(lines[1]["times_ms"]) == 2 and len(lines[2]["times_ms"]) == 3, lines
r = lines[3]
assert r["runs"] == 5 and r["times_ms"] == lines[1]["times_ms"] + lines[2]["times_ms"], r
assert r["min_ms"] == min(r["times_ms"]), r
PYEOF
set +e
printf 'walk 2\n' | "$ANVIL" bench "$MODEL" --backend reference --warmup 0 --serve >"$TMP/out" 2>"$TMP/err"
RC=$?
set -e
[ "$RC" -eq 2 ] || fail "bench --serve with a bad request: exit $RC, expected 2"
expect_contains "$TMP/err" "run N"
echo "bench_profile OK"
