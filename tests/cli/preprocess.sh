#!/usr/bin/env bash
# anvil run/bench --shape (import at another input shape) and Caffe-style image preprocessing:
# --mean-file (.binaryproto), BGR by default for Caffe models (--rgb overrides), and a Caffe
# input layer's transform_param. Expected values come from numpy (/usr/bin/python3), not anvil.
source "$(dirname "$0")/lib/common.sh"

CAFFE="$DEMO/caffe"
CPROTO="$CAFFE/deploy.prototxt"
CMODEL="$CAFFE/digits.caffemodel"

# 1. Caffe deploy with a fixed batch of 8, run at batch 1 on single PNGs. The net expects
#    pixel (0..16) * 0.0625, i.e. [0, 1]: the 0..255 PNGs need --divide 255 (README).
n=0
for png in "$DEMO"/digits/*_label*.png; do
  label=${png##*_label}
  label=${label%.png}
  expect_ok run "$CPROTO" "$CMODEL" --shape data=1,1,8,8 --input "$png" --divide 255 --output-dir "$TMP/c$n"
  expect_contains "$TMP/out" "prob (1, 10) float32"
  expect_contains "$TMP/out" "preprocess data <- $png: order grey, divide 255, mean none, scale 1, layout NCHW (1, 1, 8, 8)"
  grep -Eq "^  \[0\] top-5: $label \(" "$TMP/out" || { cat "$TMP/out" >&2; fail "caffe $png: predicted class is not $label"; }
  n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "expected the demo PNGs"
png=$(ls "$DEMO"/digits/*_label*.png | head -1)
label=${png##*_label}
label=${label%.png}
# A name-less --shape for the single-input model.
expect_ok run "$CPROTO" "$CMODEL" --shape 1,1,8,8 --input "$png" --divide 255 --output-dir "$TMP/c"
grep -Eq "^  \[0\] top-5: $label \(" "$TMP/out" || { cat "$TMP/out" >&2; fail "name-less --shape"; }
# Without --shape the fixed batch of 8 is an error naming the input and the dim.
expect_bad_input "dim 0 is fixed at 8" run "$CPROTO" "$CMODEL" --input "$png" --divide 255 --output-dir "$TMP/x"
expect_contains "$TMP/err" "input 'data'"

# 2. The same net with transform_param { scale: 1/255 } on its input layer: applied by default,
#    --scale overrides it.
sed -e 's/^  input_param {/  transform_param { scale: 0.00392156862745098 }\n  input_param {/' "$CPROTO" >"$TMP/tp.prototxt"
grep -q transform_param "$TMP/tp.prototxt" || fail "could not write the transform_param prototxt"
expect_ok run "$TMP/tp.prototxt" "$CMODEL" --shape data=1,1,8,8 --input "$png" --output-dir "$TMP/t"
expect_contains "$TMP/out" "scale 0.00392157 (transform_param)"
grep -Eq "^  \[0\] top-5: $label \(" "$TMP/out" || { cat "$TMP/out" >&2; fail "transform_param scale: not $label"; }
expect_ok run "$TMP/tp.prototxt" "$CMODEL" --shape data=1,1,8,8 --input "$png" --divide 255 --scale 1 --output-dir "$TMP/t2"
expect_contains "$TMP/out" "scale 1 (--scale)"

# 3. ONNX demo at batch 3 (an .npy of the first 3 test digits); outputs vs PyTorch's.
"$PY" -c "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1])[:3])" \
  "$DEMO/inputs/image.npy" "$TMP/three.npy"
expect_ok run "$MODEL" --shape image=3,1,8,8 --input "$TMP/three.npy" --output-dir "$TMP/o3"
expect_contains "$TMP/out" "probs (3, 10) float32"
"$PY" - "$TMP/o3/probs.npy" "$DEMO/expected/probs.npy" <<'PYEOF' || fail "batch-3 probs differ from PyTorch's"
import sys, numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])[:3]
assert got.shape == (3, 10), got.shape
assert np.abs(got - want).max() < 1e-5, np.abs(got - want).max()
PYEOF
# A batch that contradicts --shape is an error; bench takes --shape for random inputs.
expect_bad_input "fixed at 3 by --shape" run "$MODEL" --shape image=3,1,8,8 --input "$DEMO/inputs/image.npy" --output-dir "$TMP/x"
expect_ok bench "$MODEL" --shape image=3,1,8,8 --runs 2 --warmup 0 --json
"$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['inputs'][0]['shape']==[3,1,8,8], j" "$TMP/out" \
  || fail "bench --shape: input shape is not [3, 1, 8, 8]"
expect_ok bench "$CPROTO" "$CMODEL" --shape data=2,1,8,8 --runs 1 --warmup 0
expect_contains "$TMP/out" "input     data (2, 1, 8, 8) float32 (random)"

# 4. Bad --shape: exit 2 naming the flag.
expect_bad_input "--shape" run "$MODEL" --shape image=3,x,8,8 --input "$TMP/three.npy" --output-dir "$TMP/x"
expect_bad_input "--shape" run "$MODEL" --shape =3,1,8,8 --input "$TMP/three.npy" --output-dir "$TMP/x"
expect_bad_input "--shape" run "$MODEL" --shape image=3,1,8 --input "$TMP/three.npy" --output-dir "$TMP/x"
expect_bad_input "--shape" run "$MODEL" --shape nosuch=3,1,8,8 --input "$TMP/three.npy" --output-dir "$TMP/x"
expect_bad_input "--shape" bench "$MODEL" --shape 3,1,,8 --runs 1

# 5. --mean-file: a 1x10x10 mean (seeded numpy values, BlobProto encoded by hand) on an 8x8
#    grey PGM fed to the ONNX demo's 8x8 input: center-cropped to mean[:, 1:9, 1:9].
"$PY" - "$TMP" <<'PYEOF'
import sys, struct, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80]); v >>= 7
    return out + bytes([v])
def blob(c, h, w, vals):
    b = b"".join(varint(f << 3) + varint(v) for f, v in ((1, 1), (2, c), (3, h), (4, w)))
    data = struct.pack("<%df" % len(vals), *vals)
    return b + varint((5 << 3) | 2) + varint(len(data)) + data
mean = rng.uniform(0, 100, size=(1, 10, 10)).astype(np.float32)
open(d + "/mean10.binaryproto", "wb").write(blob(1, 10, 10, mean.ravel().tolist()))
open(d + "/mean5.binaryproto", "wb").write(blob(1, 5, 5, [1.0] * 25))
img = rng.integers(0, 256, size=(8, 8)).astype(np.uint8)
open(d + "/img.pgm", "wb").write(b"P5\n8 8\n255\n" + img.tobytes())
np.save(d + "/want_mean.npy", ((img.astype(np.float64) - mean[0, 1:9, 1:9]) * 0.5)[None, None].astype(np.float32))
# A colour 2x2 PPM (values >= 40) for the BGR / transform_param checks.
rgb = rng.integers(40, 256, size=(2, 2, 3)).astype(np.uint8)
open(d + "/rgb.ppm", "wb").write(b"P6\n2 2\n255\n" + rgb.tobytes())
m = np.array([10, 20, 30], np.float64)
chw = rgb.astype(np.float64).transpose(2, 0, 1)
np.save(d + "/want_bgr.npy", ((chw[::-1] - m[:, None, None]) * 0.5)[None].astype(np.float32))
np.save(d + "/want_rgb.npy", ((chw - m[:, None, None]) * 0.5)[None].astype(np.float32))
np.save(d + "/want_rgb_mf.npy", ((chw - 7.0) * 0.5)[None].astype(np.float32))
open(d + "/mean7.binaryproto", "wb").write(blob(3, 2, 2, [7.0] * 12))
PYEOF
cmp_npy() {  # cmp_npy GOT WANT WHAT
  "$PY" -c "
import sys, numpy as np
g, w = np.load(sys.argv[1]), np.load(sys.argv[2])
assert g.shape == w.shape, (g.shape, w.shape)
assert np.abs(g.astype(np.float64) - w).max() < 1e-4, np.abs(g - w).max()" "$1" "$2" || fail "$3"
}
expect_ok run "$MODEL" --input "$TMP/img.pgm" --mean-file "$TMP/mean10.binaryproto" --scale 0.5 --output image --output-dir "$TMP/m"
expect_contains "$TMP/out" "mean image $TMP/mean10.binaryproto (1, 10, 10) center-cropped (--mean-file), scale 0.5 (--scale)"
cmp_npy "$TMP/m/image.npy" "$TMP/want_mean.npy" "--mean-file values differ from numpy's"
expect_bad_input "mean-file" run "$MODEL" --input "$TMP/img.pgm" --mean-file "$TMP/mean5.binaryproto" --output-dir "$TMP/x"
expect_contains "$TMP/err" "smaller than the input"
expect_bad_input "mean-file" run "$MODEL" --input "$TMP/img.pgm" --mean-file "$TMP/nosuch.binaryproto" --output-dir "$TMP/x"
expect_bad_input "mean-file" run "$MODEL" --input "$TMP/img.pgm" --mean-file "$TMP/img.pgm" --output-dir "$TMP/x"
expect_bad_input "mean-file" run "$MODEL" --input "$TMP/img.pgm" --mean-file "$TMP/mean10.binaryproto" --mean 3 --output-dir "$TMP/x"

# 6. A 3-channel Caffe net (Input -> ReLU) with transform_param { scale, mean_value }: BGR by
#    default, --rgb keeps RGB, --mean-file overrides mean_value; a transform_param mean_file is
#    found next to the prototxt.
cat >"$TMP/c3.prototxt" <<'PROTO'
name: "c3"
layer { name: "data" type: "Input" top: "data"
  transform_param { scale: 0.5 mean_value: 10 mean_value: 20 mean_value: 30 }
  input_param { shape { dim: 1 dim: 3 dim: 2 dim: 2 } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
PROTO
expect_ok run "$TMP/c3.prototxt" --input "$TMP/rgb.ppm" --output-dir "$TMP/b"
expect_contains "$TMP/out" "order BGR (Caffe default; --rgb for RGB), divide 1, mean 10,20,30 (transform_param), scale 0.5 (transform_param), layout NCHW (1, 3, 2, 2)"
cmp_npy "$TMP/b/out.npy" "$TMP/want_bgr.npy" "Caffe BGR + transform_param values differ from numpy's"
expect_ok run "$TMP/c3.prototxt" --input "$TMP/rgb.ppm" --rgb --output-dir "$TMP/r"
expect_contains "$TMP/out" "order RGB"
cmp_npy "$TMP/r/out.npy" "$TMP/want_rgb.npy" "--rgb values differ from numpy's"
expect_ok run "$TMP/c3.prototxt" --input "$TMP/rgb.ppm" --rgb --mean-file "$TMP/mean7.binaryproto" --output-dir "$TMP/f"
cmp_npy "$TMP/f/out.npy" "$TMP/want_rgb_mf.npy" "--mean-file over transform_param differs from numpy's"
mkdir -p "$TMP/mf"
sed -e 's/mean_value: 10 mean_value: 20 mean_value: 30/mean_file: "mean7.binaryproto"/' "$TMP/c3.prototxt" >"$TMP/mf/c3.prototxt"
cp "$TMP/mean7.binaryproto" "$TMP/mf/"
expect_ok run "$TMP/mf/c3.prototxt" --input "$TMP/rgb.ppm" --rgb --output-dir "$TMP/g"
expect_contains "$TMP/out" "mean image $TMP/mf/mean7.binaryproto (3, 2, 2) (transform_param)"
cmp_npy "$TMP/g/out.npy" "$TMP/want_rgb_mf.npy" "transform_param mean_file values differ from numpy's"
run_anvil run "$TMP/c3.prototxt" --input "$TMP/rgb.ppm" --rgb --bgr --output-dir "$TMP/x"
[ "$RC" -eq 2 ] || fail "--rgb --bgr: expected exit 2, got $RC"
grep -q -- "--rgb" "$TMP/err" || { cat "$TMP/err" >&2; fail "--rgb --bgr: the error does not name --rgb"; }

echo "preprocess: OK"
