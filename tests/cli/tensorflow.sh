# shellcheck shell=bash source=tests/cli/lib/common.sh
# TensorFlow frozen GraphDefs through the CLI: `anvil run` with a Placeholder fed from .npy and
# on graphs with their input frozen in (no --input), `--output NODE[:i]` for any node (values
# in TF's NHWC layout, named as TF names them), `anvil summary`, and malformed graphs -> exit 2.
source "$(dirname "$0")/lib/common.sh" "$@"
FX="$SRC/tests/data/fixtures/tensorflow"

close() {  # close A.npy B.npy [key-in-npz]: allclose(rtol 1e-5, atol 2e-6) as the fixtures say
  "$PY" - "$@" <<'PYEOF' || fail "values differ: $*"
import sys, numpy as np
a = np.load(sys.argv[1])
b = np.load(sys.argv[2])
if len(sys.argv) > 3: b = b[sys.argv[3]]
assert a.shape == b.shape, (a.shape, b.shape)
assert np.allclose(a, b, rtol=1e-5, atol=2e-6), float(np.abs(a - b).max())
PYEOF
}

# a Placeholder fed from .npy; the default output is the graph's sink
expect_ok run "$FX/pool_0/frozen_model.pb" --input "image=$FX/pool_0/inputs/image.npy" --output-dir "$TMP/r1"
close "$TMP/r1/output.npy" "$FX/pool_0/outputs/output.npy"

# input frozen in as a Const: no --input; any node by TF name, NHWC as TF computed it
C="$FX/cnn2d_layers__channels_last_b2_k2_s1_SAME_nobias"
expect_ok run "$C/frozen_model.pb" -o conv2d/Conv2D -o in_0/read -o conv2d/kernel --output-dir "$TMP/r2"
close "$TMP/r2/conv2d_Conv2D.npy" "$C/activations.npz" conv2d/Conv2D
close "$TMP/r2/in_0_read.npy" "$C/activations.npz" in_0/read
close "$TMP/r2/conv2d_kernel.npy" "$C/activations.npz" conv2d/kernel
expect_ok run "$C/frozen_model.pb" --output-dir "$TMP/r3"
close "$TMP/r3/conv2d_BiasAdd.npy" "$C/outputs/conv2d_BiasAdd.npy"

# NODE:i picks output i (FusedBatchNormV3's batch variance)
B="$FX/fused_batch_norm__float32_nhwc"
expect_ok run "$B/frozen_model.pb" -o FusedBatchNormV3:2 --output-dir "$TMP/r4"
close "$TMP/r4/FusedBatchNormV3_2.npy" "$B/activations.npz" FusedBatchNormV3:2

# summary: the format, TF node names, NHWC shapes
expect_ok summary "$C/frozen_model.pb"
expect_contains "$TMP/out" "tensorflow"
expect_contains "$TMP/out" "conv2d/BiasAdd"

# malformed graphs: exit 2 naming the file / node / field
head -c 300 "$C/frozen_model.pb" >"$TMP/truncated.pb"
expect_bad_input "truncated.pb" run "$TMP/truncated.pb"
cat >"$TMP/bad.pbtxt" <<'PB'
node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "shape" value { shape { dim { size: 1 } dim { size: 4 } dim { size: 4 } dim { size: 1 } } } } }
node { name: "w" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 1 } dim { size: 1 } dim { size: 1 } dim { size: 1 } } float_val: 1 } } } }
node { name: "my_conv" op: "Conv2D" input: "x" input: "w" attr { key: "padding" value { s: "SAME" } } attr { key: "strides" value { list { i: 1 i: 1 } } } }
PB
expect_bad_input "strides" summary "$TMP/bad.pbtxt"
expect_contains "$TMP/err" "my_conv"
sed 's/"Conv2D"/"NoSuchOp"/' "$TMP/bad.pbtxt" >"$TMP/unsupported.pbtxt"
expect_bad_input "NoSuchOp" summary "$TMP/unsupported.pbtxt"
expect_contains "$TMP/err" "my_conv"
echo OK
