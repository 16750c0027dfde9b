// ConvPlan's own kernels (conv_kernels.cu): im2col for the im2col+GEMM path and a direct
// depthwise convolution, both on NHWC activations. Asynchronous on `stream`, no allocation,
// no synchronization (capturable in a CUDA graph); a failed launch throws anvil::Error.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "anvil/tensor.h"

namespace anvil::cuda::detail {

/// Sizes of one forward convolution window over NHWC data.
struct ConvWindow {
  int n = 1, c = 1, h = 1, w = 1;  // input
  int oh = 1, ow = 1;              // output
  int r = 1, s = 1;                // kernel
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
};

/// col[m][(ry*S + sx)*C + c] = x[n, oy*sh - ph + ry*dh, ox*sw - pw + sx*dw, c] (0 outside),
/// m = (n*OH + oy)*OW + ox: rows in the order of KRSC weights, so that conv = col x W^T.
/// Rows are `ld` >= R*S*C elements apart; the elements past R*S*C are written as zeros.
/// Pure data movement (exact for every dtype); 16-byte moves when C and the pointers allow.
void im2col_nhwc(const ConvWindow& p, DType dt, const void* x, void* col, int64_t ld,
                 cudaStream_t stream);

/// Depthwise convolution (groups == C == K): y[n,oy,ox,c] = act(sum_{ry,sx}
/// x[n, iy, ix, c] * w[(ry*S + sx)*C + c] + bias[c] + z[n,oy,ox,c]) with fp32 accumulation.
/// w is RSK ([R*S, C]); bias (C values of dt) and z (shaped like y) may be null; z may be y.
/// tile 1, 2 or 4: a kernel where each thread computes that many consecutive output columns
/// (reusing input columns and weights), used for R == S of 3 or 5, column stride 1 or 2, column
/// dilation 1, C a multiple of 16 bytes and 16-byte aligned pointers; otherwise (and for
/// tile 0) a thread computes one output pixel. Each is 16-byte vectorized where C allows.
/// With relu, act(v) = min(max(v, 0), relu_max) (+inf: plain ReLU; ReLU6 with 6), in float.
void depthwise_nhwc(const ConvWindow& p, bool relu, DType dt, const void* x, const void* w,
                    const void* bias, const void* z, void* y, cudaStream_t stream, int tile = 0,
                    float relu_max = INFINITY);

}  // namespace anvil::cuda::detail
