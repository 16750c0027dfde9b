// The GemmPlan's own epilogue kernel (gemm_epilogue.cu), for what cuBLASLt does not fuse:
// the exact (erf) GELU, and bias/activation when no fused cuBLASLt algorithm exists. ConvPlan
// uses it for bias + ReLU / clamped ReLU after cuDNN's unfused convolution, and for the upper
// clamp after a fused ReLU.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "anvil/tensor.h"

namespace anvil::cuda::detail {

enum class GemmAct { None = 0, Relu = 1, Gelu = 2 /* erf */, GeluTanh = 3 };

/// For each of `batch` row-major [m, n] matrices at y + b*stride_y (elements of dtype dt):
/// y[i, j] = act(y[i, j] + bias[j]) (bias of dtype dt, or null for none), computed in float.
/// With GemmAct::Relu the result is min(max(v, 0), relu_max) (relu_max = +inf: plain ReLU;
/// NaN becomes 0 as with fmaxf). 16-byte loads/stores (8 halves / 4 floats) and 32-bit index
/// math where n, stride_y and the pointers allow; otherwise element by element.
/// Asynchronous on `stream`; throws anvil::Error when the launch fails.
void gemm_bias_act(DType dt, void* y, const void* bias, int64_t batch, int64_t m, int64_t n,
                   int64_t stride_y, GemmAct act, cudaStream_t stream, float relu_max = INFINITY);

}  // namespace anvil::cuda::detail
