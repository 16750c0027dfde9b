# shellcheck shell=bash source=tests/cli/lib/common.sh
# anvil bench refuses a zero-size input (issue 19, item 5): a batch of 0 runs nothing, so no
# latency or throughput can be reported. One line, exit 2, naming the input and the dim.
source "$(dirname "$0")/lib/common.sh" "$@"

expect_bad_input "shape" bench "$MODEL" --shape 0,1,8,8 --runs 2 --warmup 0
expect_contains "$TMP/err" "input 'image' has shape (0, 1, 8, 8): dimension 0 is 0"
expect_bad_input "shape" bench "$MODEL" --shape image=1,1,0,8 --runs 2 --warmup 0
expect_contains "$TMP/err" "dimension 2 is 0"
"$PY" -c "import numpy as np, sys; np.save(sys.argv[1], np.zeros((0, 1, 8, 8), np.float32))" "$TMP/empty.npy"
expect_bad_input "shape" bench "$MODEL" --input "$TMP/empty.npy" --runs 2 --warmup 0
# A batch of 1 still runs.
expect_ok bench "$MODEL" --shape 1,1,8,8 --runs 2 --warmup 0
echo "bench_zero OK"
