// Helper of the fold_transpose_into_gemm pass (declared in passes.h), exposed for tests.
#pragma once

#include <vector>

#include "anvil/tensor.h"

namespace anvil::passes {

/// Re-orders the rows of a Gemm/MatMul weight B (K, N) (trans_b = false) or the columns of
/// B (N, K) (trans_b = true) so that Gemm(Flatten(X), B') == Gemm(Flatten(Transpose(X, perm)), B),
/// where X has shape `x_shape` and perm[0] == 0 (the batch stays first).
Tensor permute_gemm_rows_for_transpose(const Tensor& b, bool trans_b, const Shape& x_shape,
                                       const std::vector<int>& perm);

}  // namespace anvil::passes
