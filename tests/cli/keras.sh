# shellcheck shell=bash source=tests/cli/lib/common.sh
# Keras models through the CLI: `anvil run` (full .h5 and config.json + weights.h5, outputs and
# a tapped layer) against Keras's own values, `anvil summary` with Keras layer names and
# parameter counts, and malformed Keras files -> exit 2.
source "$(dirname "$0")/lib/common.sh" "$@"
FX="$SRC/tests/data/fixtures/keras"

close() {  # close A.npy B.npy [key-in-npz]: allclose(rtol 1e-4, atol 1e-5)
  "$PY" - "$@" <<'PYEOF' || fail "values differ: $*"
import sys, numpy as np
a = np.load(sys.argv[1])
b = np.load(sys.argv[2])
if len(sys.argv) > 3: b = b[sys.argv[3]]
assert a.shape == b.shape, (a.shape, b.shape)
assert np.allclose(a, b, rtol=1e-4, atol=1e-5), float(np.abs(a - b).max())
PYEOF
}

# full model .h5, final output
expect_ok run "$FX/resnet_small/model.h5" --input "image=$FX/resnet_small/inputs/image.npy" --output-dir "$TMP/r1"
close "$TMP/r1/fc.npy" "$FX/resnet_small/outputs/fc.npy"

# config.json + weights.h5 (either order), output and a tapped layer in Keras's NHWC layout
expect_ok run "$FX/flatten_conv_dense/weights.h5" "$FX/flatten_conv_dense/config.json" \
  --input "$FX/flatten_conv_dense/inputs/conv2d_1_input.npy" -o dense_1 -o conv2d_1 --output-dir "$TMP/r2"
close "$TMP/r2/dense_1.npy" "$FX/flatten_conv_dense/outputs/dense_1.npy"
close "$TMP/r2/conv2d_1.npy" "$FX/flatten_conv_dense/activations.npz" conv2d_1

# summary: Keras layer names, NHWC shapes, Keras's parameter count
expect_ok summary "$FX/mobilenet_small/model.h5"
expect_contains "$TMP/out" "format keras"
expect_contains "$TMP/out" "b3_dw_bn"
expect_contains "$TMP/out" "DepthwiseConv2D"
expect_contains "$TMP/out" "b3_dw (DepthwiseConv2D)"
expect_contains "$TMP/out" "(None, 8, 8, 24)"  # Keras's notation: batch None, NHWC
# as Keras's model.summary(): 13 BatchNormalization layers hold 2*272 moving statistics
expect_contains "$TMP/out" "Total params: 5,850"
expect_contains "$TMP/out" "Trainable params: 5,306"
expect_contains "$TMP/out" "Non-trainable params: 544"

# malformed Keras files
size=$(stat -c %s "$FX/vgg_small/model.h5")
head -c $((size / 2)) "$FX/vgg_small/model.h5" >"$TMP/truncated.h5"
expect_bad_input "truncated.h5" summary "$TMP/truncated.h5"
expect_bad_input "model_config" summary "$FX/vgg_small/weights.h5"
expect_bad_input "corrupt HDF5" summary "$SRC/tests/data/fixtures/keras-malformed/corrupt_heap_model_config.h5"
# libhdf5 runs in a child process: a crash or a hang there is a one-line error naming the
# file and the layer/weight being read (ANVIL_KERAS_H5_FAULT is the reader's test hook)
ANVIL_KERAS_H5_FAULT=abort@fc2 expect_bad_input "libhdf5 crashed" summary "$FX/vgg_small/model.h5"
expect_contains "$TMP/err" "vgg_small/model.h5"
expect_contains "$TMP/err" "node 'fc2'"
ANVIL_KERAS_H5_FAULT=hang ANVIL_KERAS_H5_TIMEOUT_S=0.3 expect_bad_input "did not finish" summary "$FX/vgg_small/weights.h5" "$FX/vgg_small/config.json"
expect_contains "$TMP/err" "vgg_small/weights.h5"
sed 's/"class_name": "Flatten"/"class_name": "Lambda"/' "$FX/vgg_small/config.json" >"$TMP/lambda.json"
expect_bad_input "flatten (Lambda)" summary "$TMP/lambda.json" "$FX/vgg_small/weights.h5"
echo OK
