# shellcheck shell=bash source=tests/cli/lib/common.sh
# --backend and --precision across the commands, and bench's batch / throughput / --in-flight:
# help texts list the backends this build has; an unknown backend (cuda in a build without
# it) exits 2 naming the available ones; --precision passes through run, dump, bench, verify.
source "$(dirname "$0")/lib/common.sh" "$@"

# expect_usage_error WORD ARGS...: exit 2 (a flag's value rejected), stderr mentions WORD.
expect_usage_error() {
  local word=$1
  shift
  run_anvil "$@"
  [ "$RC" -eq 2 ] || { cat "$TMP/out" "$TMP/err" >&2; fail "expected exit 2 from: anvil $*  (got $RC)"; }
  grep -qF -- "$word" "$TMP/err" || { cat "$TMP/err" >&2; fail "error of 'anvil $*' does not mention '$word'"; }
}

# Help texts list this build's backends (cpu and reference always).
for cmd in run bench verify dump inspect; do
  expect_ok "$cmd" --help
  grep -q -- "--backend.*reference" "$TMP/out" || { cat "$TMP/out" >&2; fail "$cmd --help: --backend does not list reference"; }
  grep -q -- "--backend.*cpu" "$TMP/out" || { cat "$TMP/out" >&2; fail "$cmd --help: --backend does not list cpu"; }
done
expect_ok bench --help
if grep -q -- "--backend.*cuda" "$TMP/out"; then HAVE_CUDA=1; else HAVE_CUDA=0; fi

# Unknown backends: exit 2 with the registry's message listing the available ones.
for cmd in "run $MODEL --input $DEMO/inputs/image.npy --output-dir $TMP/o" "bench $MODEL --runs 1" \
  "dump $MODEL --random --npz $TMP/d.npz"; do
  # shellcheck disable=SC2086
  expect_bad_input "unknown backend 'nosuch' (available: " $cmd --backend nosuch
  expect_contains "$TMP/err" "reference"
done
if [ "$HAVE_CUDA" = 0 ]; then
  expect_bad_input "unknown backend 'cuda' (available: " bench "$MODEL" --runs 1 --backend cuda
  expect_bad_input "unknown backend 'cuda' (available: " run "$MODEL" --input "$DEMO/inputs/image.npy" \
    --output-dir "$TMP/o" --backend cuda
  expect_bad_input "unknown backend 'cuda' (available: " verify "$MODEL" --reference "$DEMO/expected" \
    --backend cuda --precision fp16
fi

# bench: batch from --shape, images/s, a pipelined phase with --in-flight, precision.
expect_ok bench "$MODEL" --shape 4,1,8,8 --runs 6 --warmup 1 --in-flight 3 --precision fp16 --json
"$PY" - "$TMP/out" <<'PYEOF' || fail "bench --in-flight/--shape/--precision JSON is wrong"
import json, math, sys
j = json.load(open(sys.argv[1]))
assert j["batch"] == 4 and j["inputs"][0]["shape"] == [4, 1, 8, 8], j
assert j["precision"] == "fp16" and j["in_flight"] == 3, j
p = j["pipelined"]
assert p["runs"] == 6 and p["in_flight"] == 3 and p["wall_ms"] > 0, p
# images/s = batch * runs / wall of the pipelined phase
assert math.isclose(j["images_per_s"], 1000.0 * 4 * 6 / p["wall_ms"], rel_tol=1e-9), j
assert len(j["times_ms"]) == 6 and j["min_ms"] > 0, j
if j["backend"] in ("cpu", "reference"):
    assert "device_ms" not in j, j  # these backends measure no device time
PYEOF
expect_ok bench "$MODEL" --shape 2,1,8,8 --runs 3 --warmup 0 --backend reference
expect_contains "$TMP/out" "throughput"
expect_contains "$TMP/out" "images/s  (batch 2,"
expect_ok bench "$MODEL" --runs 2 --warmup 0 --in-flight 2 --backend reference
expect_contains "$TMP/out" "2 runs with 2 in flight"
expect_usage_error "in-flight" bench "$MODEL" --in-flight 0
expect_usage_error "precision" bench "$MODEL" --precision fp8

# run / dump: --precision fp16 passes through (outputs float32, close to fp32's).
expect_ok run "$MODEL" --input "$DEMO/inputs/image.npy" --output-dir "$TMP/r32" --backend reference
expect_ok run "$MODEL" --input "$DEMO/inputs/image.npy" --output-dir "$TMP/r16" --backend reference --precision fp16
expect_ok dump "$MODEL" --input "$DEMO/inputs/image.npy" --npz "$TMP/d16.npz" --backend reference --precision bf16
"$PY" - "$TMP/r32/probs.npy" "$TMP/r16/probs.npy" "$TMP/d16.npz" <<'PYEOF' || fail "--precision fp16/bf16 results are wrong"
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert b.dtype == np.float32 and a.shape == b.shape == (8, 10), (a.dtype, b.dtype, a.shape)
d = np.abs(a - b).max()
assert 0 < d < 2e-2, d  # fp16 storage: not identical, but close on probabilities in [0, 1]
z = np.load(sys.argv[3])
p = z["probs"]
assert p.dtype == np.float32 and np.abs(p - a).max() < 5e-2, np.abs(p - a).max()
PYEOF
expect_usage_error "precision" run "$MODEL" --input "$DEMO/inputs/image.npy" --precision half
# verify against the reference backend's dump (docs/verifying.md: how a GPU's fp16 error is
# measured per layer against the reference backend), here with the cpu backend in fp16.
expect_ok dump "$MODEL" --input "$DEMO/inputs/image.npy" --backend reference --npz "$TMP/ref32.npz"
expect_ok verify "$MODEL" --reference "$TMP/ref32.npz" --backend cpu --precision fp16 --rtol 1e-2 --atol 1e-2 \
  --report "$TMP/v16.json"
expect_contains "$TMP/out" "backend cpu, fp16"
expect_contains "$TMP/out" "vs_fp32"
"$PY" - "$TMP/v16.json" <<'PYEOF' || fail "verify --precision fp16 against the reference backend's dump"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["backend"] == "cpu" and r["precision"] == "fp16" and r["status"] == "match", r["status"]
checked = [l for l in r["layers"] if l["status"] != "unchecked"]
assert len(checked) >= 5, len(checked)
for l in checked:
    assert 0 <= l["max_abs"] < 5e-2 and l["cosine"] > 0.9999, l
    if l["op"] != "Input":
        assert 0 < l["precision_rel"] < 1e-2, l  # fp16 rounding: not zero, not garbage
PYEOF
# The cuda backend, where this build has it and a GPU is present: bench reports device time
# and a pipelined throughput; verify --backend cuda --precision fp16 against the reference
# backend's dump reports every layer.
if [ "$HAVE_CUDA" = 1 ]; then
  run_anvil bench "$MODEL" --backend cuda --shape 16,1,8,8 --runs 4 --warmup 1 --in-flight 2 --precision fp16 --json
  if [ "$RC" -ne 0 ] && grep -q "no CUDA device" "$TMP/err"; then
    echo "(no CUDA device: cuda CLI checks skipped)"
  else
    [ "$RC" -eq 0 ] || { cat "$TMP/out" "$TMP/err" >&2; fail "bench --backend cuda failed"; }
    "$PY" - "$TMP/out" <<'PYEOF' || fail "bench --backend cuda JSON is wrong"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["backend"] == "cuda" and j["batch"] == 16 and j["pipelined"]["in_flight"] == 2, j
d = j["device_ms"]
assert 0 < d["min"] <= d["median"] <= d["max"] and d["runs"] == 4, d
assert len(j["device_times_ms"]) == 4 and j["images_per_s"] > 0, j
PYEOF
    expect_ok bench "$MODEL" --backend cuda --runs 2 --warmup 1
    expect_contains "$TMP/out" "device    min"
    expect_ok verify "$MODEL" --reference "$TMP/ref32.npz" --backend cuda --rtol 1e-4 --atol 1e-4
    run_anvil verify "$MODEL" --reference "$TMP/ref32.npz" --backend cuda --precision fp16 --rtol 1e-2 \
      --atol 1e-2 --report "$TMP/c16.json"
    [ "$RC" -le 1 ] || { cat "$TMP/err" >&2; fail "verify --backend cuda --precision fp16 failed"; }
    cat "$TMP/out"
    "$PY" - "$TMP/c16.json" <<'PYEOF' || fail "verify --backend cuda --precision fp16 report is wrong"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["backend"] == "cuda" and r["precision"] == "fp16", r
checked = [l for l in r["layers"] if l["status"] != "unchecked"]
assert len(checked) >= 5, len(checked)
for l in checked:
    assert l["cosine"] > 0.999, l
    if l["op"] != "Input":
        assert l["precision_rel"] is not None and l["precision_rel"] < 3e-2, l
PYEOF
  fi
fi
echo "backend_flags OK"
