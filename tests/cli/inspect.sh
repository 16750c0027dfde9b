# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil inspect: a pixel's channel vector is Keras's out[0, y, x, :] (NHWC) and Caffe's
# out[0, :, y, x] (NCHW); a channel plane; statistics — checked against the frameworks' own
# activations with NumPy.
source "$(dirname "$0")/lib/common.sh" "$@"
FIX="$SRC/tests/data/fixtures"

K="$FIX/keras/flatten_conv_dense"
expect_ok inspect "$K/model.h5" --input "$K/inputs/conv2d_1_input.npy" --tensor conv2d_1 --pixel 1,2 --channel 3 --stats
expect_contains "$TMP/out" "conv2d_1 (2, 5, 5, 4) float32 NHWC"
expect_contains "$TMP/out" "pixel [0, 1, 2, :] (4 channels):"
cp "$TMP/out" "$TMP/keras.txt"

C="$FIX/caffe/vgg_32x32"
expect_ok inspect "$C/deploy.prototxt" "$C/model.caffemodel" --input "$C/inputs/data.npy" -t pool1 --pixel 3,4 --batch 1
expect_contains "$TMP/out" "pool1 (2, 8, 16, 16) float32 NCHW"
expect_contains "$TMP/out" "pixel [1, :, 3, 4] (8 channels):"
if grep -q "stats: min" "$TMP/out"; then fail "stats printed without --stats"; fi
cp "$TMP/out" "$TMP/caffe.txt"

"$PY" - "$TMP" "$K/activations.npz" "$C/activations.npz" <<'PYEOF' || fail "inspect values differ from the frameworks'"
import sys
import numpy as np
tmp, kz, cz = sys.argv[1:4]

def section(lines, head):
    i = next(k for k, l in enumerate(lines) if l.startswith(head))
    vals = []
    for l in lines[i + 1:]:
        if not l.startswith(" "):
            break
        vals += [float(v) for v in l.split()]
    return np.array(vals)

k = np.load(kz)["conv2d_1"]
lines = open(tmp + "/keras.txt").read().splitlines()
np.testing.assert_allclose(section(lines, "pixel"), k[0, 1, 2, :], rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(section(lines, "channel 3"), k[0, :, :, 3].ravel(), rtol=1e-5, atol=1e-5)
st = next(l for l in lines if l.startswith("stats:")).split()
d = dict(zip(st[1::2], st[2::2]))
assert abs(float(d["min"]) - k.min()) < 1e-5 and abs(float(d["max"]) - k.max()) < 1e-5, d
assert abs(float(d["mean"]) - k.mean()) < 1e-5 and abs(float(d["std"]) - k.std()) < 1e-5, d
assert d["nan"] == "0" and d["inf"] == "0", d

c = np.load(cz)["pool1"]
lines = open(tmp + "/caffe.txt").read().splitlines()
np.testing.assert_allclose(section(lines, "pixel"), c[1, :, 3, 4], rtol=1e-5, atol=1e-5)
PYEOF

# Without --input: seeded random inputs, said so.
expect_ok inspect "$MODEL" --tensor probs
expect_contains "$TMP/out" "input image: seeded random values"
expect_contains "$TMP/out" "stats: min"

# Bad input: exit 2 naming the field.
expect_bad_input "no_such" inspect "$K/model.h5" --input "$K/inputs/conv2d_1_input.npy" --tensor no_such
expect_bad_input "pixel" inspect "$K/model.h5" --input "$K/inputs/conv2d_1_input.npy" --tensor conv2d_1 --pixel 9,9
expect_bad_input "pixel" inspect "$K/model.h5" --input "$K/inputs/conv2d_1_input.npy" --tensor dense_1 --pixel 1,1
expect_bad_input "channel" inspect "$K/model.h5" --input "$K/inputs/conv2d_1_input.npy" --tensor conv2d_1 --channel 4
echo "inspect OK"
