# shellcheck shell=bash source=tests/cli/lib/common.sh
# TFLite models through the CLI: `anvil run` on int16x8 quantized fixtures (tflite-micro seanet
# ADD and CONV_2D) must write TFLite's golden int16 output exactly; `anvil summary` shows the
# TFLite tensor names, NHWC shapes and operator types; a truncated .tflite exits 2.
source "$(dirname "$0")/lib/common.sh" "$@"
FX="$SRC/tests/data/fixtures/tflite"

exact() {  # exact DIR CASE_DIR: the only .npy in DIR equals the case's golden output, int16
  "$PY" - "$@" <<'PYEOF' || fail "output differs from TFLite's golden values: $*"
import sys, glob, numpy as np
files = glob.glob(sys.argv[1] + "/*.npy")
assert len(files) == 1, files
got = np.load(files[0])
want = np.load(sys.argv[2] + "/outputs/output0.npy")
assert got.dtype == np.int16, got.dtype
assert got.shape == want.shape, (got.shape, want.shape)
assert np.array_equal(got, want), int(np.abs(got.astype(np.int64) - want).max())
PYEOF
}

inputs() {  # inputs CASE_DIR: --input NAME=FILE for every input in case.json
  "$PY" - "$1" <<'PYEOF'
import sys, json
d = sys.argv[1]
cj = json.load(open(d + "/case.json"))
for k, v in cj["inputs"].items():
    print("--input")
    print(k + "=" + d + "/" + v)
PYEOF
}

for c in add/add0 add/add16 conv/conv0 conv/conv21; do
  mapfile -t args < <(inputs "$FX/$c")
  expect_ok run "$FX/$c/model.tflite" "${args[@]}" --output-dir "$TMP/${c//\//_}"
  expect_contains "$TMP/out" "int16"
  exact "$TMP/${c//\//_}" "$FX/$c"
done

# --dequantize: the int16 output comes back as float32 = scale * (q - zero_point)
mapfile -t args < <(inputs "$FX/add/add0")
expect_ok run "$FX/add/add0/model.tflite" "${args[@]}" --dequantize --output-dir "$TMP/deq"
expect_contains "$TMP/out" "float32"
"$PY" - "$TMP/deq" "$FX/add/add0" <<'PYEOF'
import sys, json, glob, numpy as np
got_dir, case = sys.argv[1], sys.argv[2]
cj = json.load(open(case + "/case.json"))
for t in cj["tensors"]["outputs"]:
    want = np.load(case + "/" + cj["outputs"][t["name"]])
    deq = t["scale"][0] * (want.astype(np.float64) - t["zero_point"][0])
    (got,) = [np.load(p) for p in glob.glob(got_dir + "/*.npy")]
    assert got.dtype == np.float32, got.dtype
    assert np.allclose(got, deq, rtol=1e-6, atol=1e-6 * abs(deq).max()), abs(got - deq).max()
PYEOF

# summary: TFLite tensor names, NHWC shapes, operator types
expect_ok summary "$FX/conv/conv0/model.tflite"
expect_contains "$TMP/out" "format tflite"
expect_contains "$TMP/out" "CONV_2D"
expect_contains "$TMP/out" "streamable_model_10/unet_0/base_conv_first/conv/concat"
expect_contains "$TMP/out" "(1, 2, 160, 8)"
expect_contains "$TMP/out" "int16"

# malformed: truncated flatbuffer
head -c 600 "$FX/conv/conv0/model.tflite" >"$TMP/truncated.tflite"
expect_bad_input "truncated.tflite" summary "$TMP/truncated.tflite"
echo OK
