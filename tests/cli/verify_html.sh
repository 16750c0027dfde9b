# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil verify --report FILE.html: the page loads in headless Chromium and its script runs to the
# end without an error ("report-ok" marker; window.onerror would write "report-error"), after
# driving hover and clicks itself (#selftest), for a clean run, a seeded mismatch and hostile
# reference names. References: the Keras and Caffe demo models dumped with real Keras 2.3.1 /
# Caffe by python/anvil_dump_{keras,caffe}.py (tests/data/fixtures/dumpers/ORIGIN.md).
source "$(dirname "$0")/lib/common.sh" "$@"

if ! command -v chromium >/dev/null 2>&1; then
  echo "SKIP: chromium is not installed (scripts/setup.sh --tests installs it); the HTML report is not loaded"
  exit 0
fi
REFS="$SRC/tests/data/fixtures/dumpers"
KERAS="$DEMO/keras/digits_cnn.h5"

# load PAGE.html: prints the DOM after the page's scripts ran.
load() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$TMP/profile" \
    --dump-dom "file://$1#selftest" 2>/dev/null
}
# expect_page_ok PAGE.html: the script finished, no script error, no injected element.
expect_page_ok() {
  load "$1" >"$TMP/dom" || fail "chromium could not load $1"
  grep -qF '<span id="report-status" hidden="" data-selftest="passed">report-ok</span>' "$TMP/dom" || {
    grep -o 'report-error[^<]*' "$TMP/dom" >&2 || true
    fail "$1: the report's script did not finish (see the error above)"
  }
  if grep -q '<img' "$TMP/dom"; then fail "$1: an <img> element appeared (a name was not escaped)"; fi
}

# 1. Clean: Keras demo against Keras's own dump -> exit 0, every layer ok.
expect_ok verify "$KERAS" --reference "$REFS/keras_demo_digits.npz" --report "$TMP/keras.html"
expect_page_ok "$TMP/keras.html"
expect_contains "$TMP/dom" "Layer #0"  # the details panel, filled by the script
grep -q 'class="badge b-match">match<' "$TMP/keras.html" || fail "keras.html: status is not match"
expect_ok verify "$KERAS" --reference "$REFS/keras_demo_digits.npz" --report "$TMP/keras.json"
"$PY" - "$TMP/keras.json" <<'EOF' || fail "keras.json: not a clean match"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "match" and r["first_divergent"] is None, r
names = [l["name"] for l in r["layers"]]
for n in ("image", "conv1", "bn1", "relu1", "pool", "conv2", "flatten", "probs"):
    assert n in names, (n, names)
assert all(l["status"] == "ok" for l in r["layers"] if l["reference_key"]), r["layers"]
EOF

# Caffe demo (in-place blobs) against pycaffe's dump.
expect_ok verify "$DEMO/caffe/deploy.prototxt" "$DEMO/caffe/digits.caffemodel" \
  --reference "$REFS/caffe_demo_digits.npz" --report "$TMP/caffe.html"
expect_page_ok "$TMP/caffe.html"

# 2. A seeded mismatch: the reference's `pool` scaled by 1.5 -> exit 1, pool is the first
#    divergence, marked in the graph, the chart and the table.
"$PY" - "$REFS/keras_demo_digits.npz" "$TMP/bad.npz" <<'EOF'
import sys, numpy as np
z = dict(np.load(sys.argv[1]))
z["pool"] = z["pool"] * np.float32(1.5)
np.savez(sys.argv[2], **z)
EOF
run_anvil verify "$KERAS" --reference "$TMP/bad.npz" --report "$TMP/bad.html"
[ "$RC" -eq 1 ] || { cat "$TMP/out" "$TMP/err" >&2; fail "seeded mismatch: expected exit 1, got $RC"; }
expect_page_ok "$TMP/bad.html"
expect_contains "$TMP/bad.html" 'class="badge b-mismatch">mismatch<'
expect_contains "$TMP/bad.html" "first divergence: pool</text>"
grep -Eq '<g class="n first" data-i="[0-9]+"' "$TMP/bad.html" || fail "bad.html: no first-divergence node"
grep -Eq '<tr data-i="[0-9]+" class="first"><td class="r">[0-9]+</td><td class="name">pool</td>' \
  "$TMP/bad.html" || fail "bad.html: the table does not mark pool"
expect_contains "$TMP/dom" "(first divergence)"  # the script selected it

# 3. Hostile names in the reference (listed as unmatched keys) stay text.
"$PY" - "$REFS/keras_demo_digits.npz" "$TMP/hostile.npz" <<'EOF'
import sys, numpy as np
z = dict(np.load(sys.argv[1]))
z["</script><img src=x onerror=alert(1)>"] = np.zeros(3, np.float32)
z["a\u2028b<!--"] = np.ones(2, np.float32)
np.savez(sys.argv[2], **z)
EOF
expect_ok verify "$KERAS" --reference "$TMP/hostile.npz" --report "$TMP/hostile.html"
expect_page_ok "$TMP/hostile.html"
expect_contains "$TMP/hostile.html" "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
echo "verify_html OK"
