# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil dump: every tensor the source framework names, in its layout, under its names — equal
# to the frameworks' own activations; the folder form uses anvil run's file names and feeds
# anvil verify --reference back.
source "$(dirname "$0")/lib/common.sh" "$@"
FIX="$SRC/tests/data/fixtures"

K="$FIX/keras/multi_io"
expect_ok dump "$K/model.h5" --input image="$K/inputs/image.npy" --input meta="$K/inputs/meta.npy" --npz "$TMP/k.npz"
expect_contains "$TMP/out" "9 tensors -> $TMP/k.npz"
C="$FIX/caffe/vgg_32x32"
expect_ok dump "$C/deploy.prototxt" "$C/model.caffemodel" --input "$C/inputs/data.npy" --output-dir "$TMP/c"
"$PY" - "$TMP" "$K/activations.npz" "$C/activations.npz" <<'PYEOF' || fail "dumped tensors differ from the frameworks'"
import os, sys
import numpy as np
tmp, kz, cz = sys.argv[1:4]
got = np.load(tmp + "/k.npz")
want = np.load(kz)
assert sorted(got.files) == sorted(want.files), (got.files, want.files)
for k in want.files:
    np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)
want = np.load(cz)
files = sorted(f[:-4] for f in os.listdir(tmp + "/c"))
assert files == sorted(want.files), (files, want.files)
for k in want.files:
    np.testing.assert_allclose(np.load(tmp + "/c/" + k + ".npy"), want[k], rtol=1e-4, atol=1e-5, err_msg=k)
PYEOF

# The folder is a reference for anvil verify (inputs included).
expect_ok verify "$C/deploy.prototxt" "$C/model.caffemodel" -r "$TMP/c"
expect_contains "$TMP/out" "result: match (21 of 21"

# Named tensors only; ONNX names with '/' become file names as anvil run writes them.
expect_ok dump "$MODEL" --input "$DEMO/inputs/image.npy" --output-dir "$TMP/o" --tensor /pool/MaxPool_output_0 --tensor probs
[ "$(ls "$TMP/o" | sort | tr '\n' ' ')" = "_pool_MaxPool_output_0.npy probs.npy " ] || { ls "$TMP/o" >&2; fail "unexpected files"; }
"$PY" "$SRC/scripts/npy_compare.py" "$TMP/o/_pool_MaxPool_output_0.npy" "$DEMO/expected/_pool_MaxPool_output_0.npy" \
  --atol 1e-4 || fail "max-pool output differs from PyTorch's"

# Bad input: exit 2.
expect_bad_input "output" dump "$MODEL" --input "$DEMO/inputs/image.npy"
expect_bad_input "no_such" dump "$MODEL" --input "$DEMO/inputs/image.npy" --npz "$TMP/x.npz" --tensor no_such
echo "dump OK"
