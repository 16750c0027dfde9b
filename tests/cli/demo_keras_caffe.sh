# shellcheck shell=bash source=tests/cli/lib/common.sh
# The Keras and Caffe demo models (models/demo/keras, models/demo/caffe; trained with real
# Keras 2.3.1 / BVLC Caffe by python/make_demo_keras.py / make_demo_caffe.py): `anvil run`
# reproduces the framework's own outputs (final softmax and a tapped pooling layer) within
# 1e-4 and predicts the true labels; `anvil summary` shows the framework's names, shapes and
# parameter counts (hand-computed below).
source "$(dirname "$0")/lib/common.sh" "$@"
CMP="$SRC/scripts/npy_compare.py"
K="$DEMO/keras"
C="$DEMO/caffe"

# predicted digits (argmax of each row of $1) must equal the labels in $2
same_labels() {
  "$PY" - "$1" "$2" <<'PYEOF' || fail "predictions differ from labels: $*"
import sys, numpy as np
pred = np.load(sys.argv[1]).argmax(axis=1).tolist()
labels = [int(l) for l in open(sys.argv[2]) if l.strip()]
assert pred == labels, (pred, labels)
PYEOF
}

# --- Keras (.h5 saved by Keras 2.3.1 on the Theano backend: flipped kernels) ---
expect_ok run "$K/digits_cnn.h5" --input "$K/inputs/image.npy" -o probs -o pool --output-dir "$TMP/k"
"$PY" "$CMP" "$TMP/k/probs.npy" "$K/expected/probs.npy" --atol 1e-4 >/dev/null ||
  fail "Keras demo: probs differ from Keras's"
"$PY" "$CMP" "$TMP/k/pool.npy" "$K/expected/pool.npy" --atol 1e-4 >/dev/null ||
  fail "Keras demo: pool differs from Keras's"
same_labels "$TMP/k/probs.npy" "$K/labels.txt"

expect_ok summary "$K/digits_cnn.h5"
expect_contains "$TMP/out" "format keras"
expect_contains "$TMP/out" "conv1"
expect_contains "$TMP/out" "bn1"
expect_contains "$TMP/out" "pool (MaxPooling2D)"
expect_contains "$TMP/out" "(None, 4, 4, 8)"  # pool, in Keras's notation (batch None, NHWC)
# conv1 8*9+8 = 80, bn1 4*8 = 32 (moving mean/variance 16 non-trainable), conv2 16*8*9+16 = 1168,
# probs 2*2*16*10+10 = 650: as Keras 2.3.1's model.summary() prints them
expect_contains "$TMP/out" "Total params: 1,930"
expect_contains "$TMP/out" "Trainable params: 1,914"
expect_contains "$TMP/out" "Non-trainable params: 16"

# --- Caffe (deploy.prototxt + digits.caffemodel; in-place BatchNorm/Scale/ReLU) ---
expect_ok run "$C/deploy.prototxt" "$C/digits.caffemodel" --input "$C/inputs/data.npy" \
  -o prob -o pool1 --output-dir "$TMP/c"
"$PY" "$CMP" "$TMP/c/prob.npy" "$C/expected/prob.npy" --atol 1e-4 >/dev/null ||
  fail "Caffe demo: prob differs from Caffe's"
"$PY" "$CMP" "$TMP/c/pool1.npy" "$C/expected/pool1.npy" --atol 1e-4 >/dev/null ||
  fail "Caffe demo: pool1 differs from Caffe's"
same_labels "$TMP/c/prob.npy" "$C/labels.txt"

# either file order
expect_ok run "$C/digits.caffemodel" "$C/deploy.prototxt" --input "$C/inputs/data.npy" --output-dir "$TMP/c2"
"$PY" "$CMP" "$TMP/c2/prob.npy" "$C/expected/prob.npy" --atol 1e-4 >/dev/null ||
  fail "Caffe demo (caffemodel first): prob differs from Caffe's"

expect_ok summary "$C/deploy.prototxt" "$C/digits.caffemodel"
expect_contains "$TMP/out" "format caffe"
expect_contains "$TMP/out" "pool1 (Pooling)"
expect_contains "$TMP/out" "scale1 (Scale)"
[ "$(grep -c '^scale1 ' "$TMP/out")" = 1 ] || fail "Caffe demo: Scale layer not on one row"
# the numbers in digits.caffemodel: conv1 8*1*3*3 = 72 (no bias), bn1 mean 8 + variance 8 +
# factor 1 = 17, scale1 8+8 = 16, conv2 16*8*9+16 = 1168, ip 10*64+10 = 650
expect_contains "$TMP/out" "Total params: 1923"
echo OK
