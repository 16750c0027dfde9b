# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil verify: real-framework fixtures match (exit 0); a mistake seeded into a copy of the
# model or the input is found at the right first layer with the right cause (exit 1, JSON).
source "$(dirname "$0")/lib/common.sh" "$@"
FIX="$SRC/tests/data/fixtures"

# json FILE EXPR: evaluates a Python expression over the parsed report `r`; fails when false.
json() {
  "$PY" - "$1" "$2" <<'PYEOF' || fail "report check failed: $2 ($1)"
import json, sys
r = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    print(json.dumps(r, indent=1)[:4000], file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
}

# 1. Clean fixtures: Keras (.h5, inputs from the reference, batch 2), Caffe, ONNX demo.
K="$FIX/keras/flatten_conv_dense"
expect_ok verify "$K/model.h5" --reference "$K/activations.npz" --report "$TMP/k.json"
expect_contains "$TMP/out" "result: match (4 of 4 compared tensors within tolerance)"
expect_contains "$TMP/out" "dense_1"
json "$TMP/k.json" 'r["status"] == "match" and r["input_check"] == "ok" and r["first_divergent"] is None and [l["name"] for l in r["layers"]] == ["conv2d_1_input", "conv2d_1", "flatten_1", "dense_1"] and all(l["status"] == "ok" and l["cosine"] > 0.999999 for l in r["layers"]) and r["diagnosis"] == []'

C="$FIX/caffe/resnet_bn_scale_eltwise"
expect_ok verify "$C/deploy.prototxt" "$C/model.caffemodel" -r "$C/activations.npz"
expect_contains "$TMP/out" "input: ok"
# ONNX demo: a folder of .npy named as anvil run names files (/pool/MaxPool_output_0 ->
# _pool_MaxPool_output_0.npy), values from PyTorch; the input is given and absent there.
expect_ok verify "$MODEL" -r "$DEMO/expected" --input "$DEMO/inputs/image.npy" --report "$TMP/o.json"
json "$TMP/o.json" 'r["status"] == "match" and r["input_check"] == "absent" and {l["name"]: l["status"] for l in r["layers"]}["/pool/MaxPool_output_0"] == "ok" and {l["name"]: l["reference_key"] for l in r["layers"]}["/pool/MaxPool_output_0"] == "_pool_MaxPool_output_0"'

# 2. Seeded mistakes in copies of Caffe nets (prototxt edits).
P="$FIX/caffe/pool_max_ceil_10"
mkdir "$TMP/pool" && cp "$P/deploy.prototxt" "$P/model.caffemodel" "$TMP/pool/" && chmod u+w "$TMP/pool"/*
sed -i 's/stride: 2/stride: 2\n    round_mode: FLOOR/' "$TMP/pool/deploy.prototxt"
run_anvil verify "$TMP/pool/deploy.prototxt" "$TMP/pool/model.caffemodel" -r "$P/activations.npz" --report "$TMP/p.json"
[ "$RC" -eq 1 ] || { cat "$TMP/out" "$TMP/err" >&2; fail "pooling rounding: expected exit 1, got $RC"; }
expect_contains "$TMP/out" "first divergent layer: out (MaxPool)"
json "$TMP/p.json" 'r["status"] == "mismatch" and r["first_divergent"] == "out" and r["diagnosis"][0]["cause"] == "pooling_rounding" and r["diagnosis"][0]["layer"] == "out" and r["layers"][1]["status"] == "shape"'

Q="$FIX/caffe/conv_padhw_stride2"
mkdir "$TMP/pad" && cp "$Q/deploy.prototxt" "$Q/model.caffemodel" "$TMP/pad/" && chmod u+w "$TMP/pad"/*
sed -i 's/pad_w: 2/pad_w: 1/' "$TMP/pad/deploy.prototxt"
run_anvil verify "$TMP/pad/deploy.prototxt" "$TMP/pad/model.caffemodel" -r "$Q/activations.npz" --report "$TMP/q.json"
[ "$RC" -eq 1 ] || fail "padding: expected exit 1, got $RC"
json "$TMP/q.json" 'r["first_divergent"] == "out" and r["diagnosis"][0]["cause"] == "padding" and "[1, 2, 1, 2]" in r["diagnosis"][0]["message"]'

# 3. Input mistakes: channels swapped (BGR vs RGB) and x255, given with --input.
V="$FIX/caffe/vgg_32x32"
"$PY" - "$V/inputs/data.npy" "$TMP" <<'PYEOF'
import sys
import numpy as np
x = np.load(sys.argv[1])
np.save(sys.argv[2] + "/swapped.npy", x[:, ::-1].copy())
np.save(sys.argv[2] + "/x255.npy", (x * 255).astype(np.float32))
PYEOF
run_anvil verify "$V/deploy.prototxt" "$V/model.caffemodel" -r "$V/activations.npz" --input "$TMP/swapped.npy" --report "$TMP/s.json"
[ "$RC" -eq 1 ] || fail "swapped input: expected exit 1, got $RC"
expect_contains "$TMP/out" "input: DIFFERS"
expect_contains "$TMP/out" "first values, ours ["
json "$TMP/s.json" 'r["input_check"] == "differs" and r["diagnosis"][0]["cause"] == "input_channel_order" and r["diagnosis"][0]["layer"] == "data"'
run_anvil verify "$V/deploy.prototxt" "$V/model.caffemodel" -r "$V/activations.npz" --input "$TMP/x255.npy" --report "$TMP/x.json"
[ "$RC" -eq 1 ] || fail "x255 input: expected exit 1, got $RC"
json "$TMP/x.json" 'r["diagnosis"][0]["cause"] == "input_scale" and "255" in r["diagnosis"][0]["message"]'

# 4. Reduced precision: fp16 within a tolerance fit for it; the vs_fp32 column; HTML report.
expect_ok verify "$V/deploy.prototxt" "$V/model.caffemodel" -r "$V/activations.npz" --precision fp16 \
  --rtol 3e-2 --atol 3e-2 --report "$TMP/h.json"
expect_contains "$TMP/out" "vs_fp32"
json "$TMP/h.json" 'r["precision"] == "fp16" and all(0 < l["precision_rel"] < 0.01 for l in r["layers"][1:]) and r["suggest_keep_fp32"] == []'
run_anvil verify "$V/deploy.prototxt" "$V/model.caffemodel" -r "$V/activations.npz" --precision bf16 --report "$TMP/b.json"
[ "$RC" -eq 1 ] || fail "bf16 at the default tolerance: expected exit 1, got $RC"
json "$TMP/b.json" 'r["first_divergent"] == "conv1_1" and r["diagnosis"][0]["cause"] == "precision"'
expect_ok verify "$V/deploy.prototxt" "$V/model.caffemodel" -r "$V/activations.npz" --report "$TMP/v.html"
grep -q "<html" "$TMP/v.html" || fail "no HTML report written"

# 5. Bad input: exit 2 with a one-line error.
expect_bad_input "no_such.npz" verify "$K/model.h5" --reference "$TMP/no_such.npz"
expect_bad_input "report" verify "$K/model.h5" --reference "$K/activations.npz" --report "$TMP/r.txt"
expect_bad_input "keep-fp32" verify "$K/model.h5" --reference "$K/activations.npz" --keep-fp32 conv2d_1
expect_bad_input "no_layer" verify "$K/model.h5" --reference "$K/activations.npz" --precision fp16 --keep-fp32 no_layer
echo "verify OK"
