# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil verify comparing no layer output is an error, not a pass (issue 19, item 3): a
# reference whose keys match no tensor of the model, or that holds only the input, exits 2
# with one line naming the reference keys and the model's nearest tensor names.
source "$(dirname "$0")/lib/common.sh" "$@"
K="$SRC/tests/data/fixtures/keras/flatten_conv_dense"

"$PY" - "$K/activations.npz" "$TMP" <<'PYEOF'
import sys
import numpy as np
a = dict(np.load(sys.argv[1]))
t = sys.argv[2]
# Keys that match nothing: near-misses of the layer names.
np.savez(t + "/typos.npz", **{"Conv2d_1x": a["conv2d_1"], "dense1": a["dense_1"]})
# Only the input (the reference activations of this fixture hold the input as conv2d_1_input).
np.savez(t + "/input_only.npz", conv2d_1_input=np.load(sys.argv[1].replace("activations.npz", "inputs/conv2d_1_input.npy")))
PYEOF

expect_bad_input "reference" verify "$K/model.h5" --reference "$TMP/typos.npz" --input "$K/inputs/conv2d_1_input.npy"
expect_contains "$TMP/err" "matches no layer output"
expect_contains "$TMP/err" "'Conv2d_1x'"
expect_contains "$TMP/err" "'dense1' -> 'dense_1'"
expect_contains "$TMP/err" "'Conv2d_1x' -> 'conv2d_1'"

expect_bad_input "reference" verify "$K/model.h5" --reference "$TMP/input_only.npz"
expect_contains "$TMP/err" "only the input 'conv2d_1_input'"

# A reference with one layer output still verifies (exit 0).
"$PY" -c "
import sys, numpy as np
a = dict(np.load(sys.argv[1]))
np.savez(sys.argv[2], dense_1=a['dense_1'])
" "$K/activations.npz" "$TMP/one.npz"
expect_ok verify "$K/model.h5" --reference "$TMP/one.npz" --input "$K/inputs/conv2d_1_input.npy"
expect_contains "$TMP/out" "result: match (1 of 1 compared tensors"
echo "verify_nothing OK"
