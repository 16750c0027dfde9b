# shellcheck shell=bash source=tests/cli/lib/common.sh
# Model files no importer accepts say what is wrong (issue 19, "Messages"): a corrupt .pb,
# a directory or SavedModel folder, a Keras config.json alone, an unexpected extra file, and
# files whose content (HDF5, TFL3, zip, images) contradicts their name.
source "$(dirname "$0")/lib/common.sh" "$@"
FX="$SRC/tests/data/fixtures"
H5="$FX/keras/resnet_small/model.h5"
# (the first file of each sorted list; not `sort | head -1`: under pipefail, sort can be killed by
# SIGPIPE once head has exited, which failed this test now and then without a word)
mapfile -t tflites < <(find "$FX/tflite" -name '*.tflite' | sort)
mapfile -t pbs < <(find "$FX/tensorflow" -name 'frozen_model.pb' | sort)
TFLITE=${tflites[0]}
PB=${pbs[0]}

# A truncated or corrupt binary GraphDef: the TensorFlow importer's reason.
size=$(stat -c %s "$PB")
head -c $((size / 2)) "$PB" >"$TMP/half.pb"
printf '\x0a\xff\xff\xff\x0f\x01' >"$TMP/corrupt.pb"
for f in half.pb corrupt.pb; do
  run_anvil summary "$TMP/$f"
  if [ "$f" = corrupt.pb ] || [ "$RC" -ne 0 ]; then
    expect_bad_input "$TMP/$f" summary "$TMP/$f"
    grep -q "no importer recognises" "$TMP/err" && { cat "$TMP/err" >&2; fail "$f: generic message"; }
  fi
done
expect_contains "$TMP/err" "not a valid TensorFlow GraphDef"

# A directory, and a TensorFlow SavedModel folder (named, not supported yet).
mkdir -p "$TMP/plain_dir" "$TMP/my_saved_model/variables"
expect_bad_input "plain_dir" summary "$TMP/plain_dir"
expect_contains "$TMP/err" "is a directory"
cp "$PB" "$TMP/my_saved_model/saved_model.pb"
expect_bad_input "my_saved_model" run "$TMP/my_saved_model" --output-dir "$TMP/o"
expect_contains "$TMP/err" "SavedModel is not supported yet"

# A Keras JSON config alone.
expect_bad_input "config.json" summary "$FX/keras/resnet_small/config.json"
expect_contains "$TMP/err" "a Keras JSON config needs its weights .h5"

# A valid model plus an unexpected extra file (either order).
echo "notes" >"$TMP/notes.txt"
expect_bad_input "notes.txt" summary "$MODEL" "$TMP/notes.txt"
expect_contains "$TMP/err" "unexpected extra file"
expect_bad_input "notes.txt" summary "$TMP/notes.txt" "$H5"
expect_contains "$TMP/err" "unexpected extra file"

# Content named for another format: the file is named for what it is.
cp "$H5" "$TMP/model.onnx"
expect_bad_input "model.onnx" summary "$TMP/model.onnx"
expect_contains "$TMP/err" "this is an HDF5 file"
expect_contains "$TMP/err" "rename it to .h5"
cp "$H5" "$TMP/model.bin"
expect_bad_input "model.bin" summary "$TMP/model.bin"
expect_contains "$TMP/err" "this is an HDF5 file"
cp "$TFLITE" "$TMP/model.pb"
expect_bad_input "model.pb" summary "$TMP/model.pb"
expect_contains "$TMP/err" "TensorFlow Lite flatbuffer (TFL3)"
expect_contains "$TMP/err" "rename it to .tflite"
cp "$TFLITE" "$TMP/model.h5"
expect_bad_input "model.h5" summary "$TMP/model.h5"
expect_contains "$TMP/err" "rename it to .tflite"
cp "$MODEL" "$TMP/model.tflite"  # an ONNX model is recognised by content whatever its name
expect_ok summary "$TMP/model.tflite"
cp "$DEMO/digits/0_label2.png" "$TMP/digit.onnx"
expect_bad_input "digit.onnx" summary "$TMP/digit.onnx"
expect_contains "$TMP/err" "a PNG image, not an ONNX model"
expect_bad_input "0_label2.png" summary "$DEMO/digits/0_label2.png"
expect_contains "$TMP/err" "give them with --input"
# A TFL3 flatbuffer under any name is still read as TFLite, and the right names still work.
cp "$TFLITE" "$TMP/model.bin"
expect_ok summary "$TMP/model.bin"
expect_ok summary "$H5"
expect_ok summary "$FX/keras/resnet_small/config.json" "$FX/keras/resnet_small/weights.h5"
echo "formats OK"
