// The cuda backend's own kernels (kernels_*.cu). Every launcher is asynchronous on `stream`,
// allocates nothing, never synchronizes (so a whole plan can be captured in a CUDA graph) and
// checks its launch with cudaGetLastError (throws anvil::Error naming the kernel).
//
// Data types: f32, f16 (__half) and bf16 (__nv_bfloat16) for float data; arithmetic is done in
// float. Shapes and strides are in elements. Ranks up to kMaxRank. Tensors are whatever
// physical layout the executor chose: launchers see physical shapes/strides only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "anvil/tensor.h"

namespace anvil::cuda {

inline constexpr int kMaxRank = 6;

// ---- elementwise ----------------------------------------------------------------------------

/// Unary functions. alpha/beta: LeakyRelu alpha; Elu alpha; Selu alpha, gamma(=beta);
/// HardSigmoid alpha, beta; Clip min(=alpha), max(=beta); Celu alpha; ThresholdedRelu alpha;
/// Pow (x^alpha); Affine alpha*x+beta. Semantics are ONNX's.
enum class Unary {
  Identity,
  Relu,
  LeakyRelu,
  Elu,
  Selu,
  Celu,
  Sigmoid,
  HardSigmoid,
  HardSwish,
  Tanh,
  Clip,
  Softplus,
  Softsign,
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Abs,
  Neg,
  Reciprocal,
  Gelu /* erf form */,
  GeluTanh,
  Mish,
  Silu,
  Floor,
  Ceil,
  Round /* half to even */,
  Erf,
  Sin,
  Cos,
  Sign,
  ThresholdedRelu,
  Pow,
  Affine
};

/// y[i] = f(x[i]) for n elements; x and y have dtype dt and may alias.
void unary(Unary op, float alpha, float beta, DType dt, const void* x, void* y, int64_t n,
           cudaStream_t stream);

enum class Binary { Add, Sub, Mul, Div, Pow, Max, Min, PRelu /* a>=0 ? a : a*b */ };

/// Broadcasting description: the output is contiguous (row-major) of `shape`; a_stride /
/// b_stride give each input's element stride per output dim (0 where it broadcasts).
struct Broadcast {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t a_stride[kMaxRank] = {};
  int64_t b_stride[kMaxRank] = {};
};

/// y = post(a op b) elementwise with broadcasting; a, b, y of dtype dt; y may alias a or b
/// when that input is not broadcast. `post` (with post_alpha/beta) is a fused activation
/// (Unary::Identity for none).
void binary(Binary op, DType dt, const void* a, const void* b, void* y, const Broadcast& d,
            Unary post, float post_alpha, float post_beta, cudaStream_t stream);

// ---- copies, layout, casts ------------------------------------------------------------------

/// General strided copy with dtype conversion: for every index i of `shape`,
/// y[sum i_k*dst_stride_k] = convert(x[sum i_k*src_stride_k]). Covers transposes (NCHW<->NHWC),
/// slices (with steps; negative strides allowed), writing one input of a concat into its
/// slice, broadcasting expands (src stride 0) and Cast (float<->half<->bf16, int32/int64 to
/// float and back, bool/u8). x and y must not overlap.
struct Strided {
  int rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t src_stride[kMaxRank] = {};
  int64_t dst_stride[kMaxRank] = {};
};
void strided_copy(DType src_dt, const void* x, DType dst_dt, void* y, const Strided& d,
                  cudaStream_t stream);

/// y[0..n) = value (converted to dt).
void fill(DType dt, void* y, int64_t n, float value, cudaStream_t stream);

// ---- NHWC image ops (x, y stored N,H,W,C) ---------------------------------------------------

struct Pool2d {
  int n = 1, c = 1, h = 1, w = 1;  // input
  int oh = 1, ow = 1;              // output
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool max = true;
  /// Average pooling: true counts padded cells (inside the explicit pads, not the extra
  /// ceil-mode cells) in the divisor, false divides by the real cells only (ONNX semantics).
  bool count_include_pad = false;
};
void pool2d_nhwc(const Pool2d& p, DType dt, const void* x, void* y, cudaStream_t stream);

/// y[n, c] = max or mean over the hw pixels of x[n, :, c] (NHWC with H*W = hw).
void global_pool_nhwc(bool max, int n, int64_t hw, int c, DType dt, const void* x, void* y,
                      cudaStream_t stream);

/// ONNX LRN across channels on NHWC data (pixels = N*H*W rows of c channels):
/// y = x / (bias + alpha/size * sum_{c' in [c-floor((size-1)/2), c+ceil((size-1)/2)]} x^2)^beta
void lrn_nhwc(int64_t pixels, int c, int size, float alpha, float beta, float bias, DType dt,
              const void* x, void* y, cudaStream_t stream);

/// Resize of NHWC data; mode 0 nearest (ONNX nearest_mode + coordinate transformation given
/// by the executor as per-axis scale/offset: src = (dst + 0.5) * scale - 0.5 for half_pixel,
/// dst * scale for asymmetric, ...), 1 bilinear. in_coord = dst * scale + offset per axis;
/// nearest rounds with `nearest_round` (0 floor, 1 round_prefer_floor, 2 round_prefer_ceil,
/// 3 ceil); bilinear clamps to the edges.
struct Resize2d {
  int n = 1, c = 1, h = 1, w = 1, oh = 1, ow = 1;
  float scale_h = 1, offset_h = 0, scale_w = 1, offset_w = 0;
  int mode = 0;
  int nearest_round = 0;
};
void resize_nhwc(const Resize2d& r, DType dt, const void* x, void* y, cudaStream_t stream);

// ---- rows -----------------------------------------------------------------------------------

/// Softmax (or log-softmax) over the middle axis of a contiguous [outer, len, inner] view.
void softmax(bool log, DType dt, const void* x, void* y, int64_t outer, int64_t len, int64_t inner,
             cudaStream_t stream);

/// Per-channel affine over a contiguous [outer, c, inner] view, then an activation:
/// y = post(x * scale[ch] + shift[ch]); scale/shift are float32 device arrays of c.
/// (BatchNormalization folded to scale/shift; NHWC data is [N*H*W, C, 1].)
void channel_affine(DType dt, const void* x, void* y, const float* scale, const float* shift,
                    int64_t outer, int64_t c, int64_t inner, Unary post, float post_alpha,
                    float post_beta, cudaStream_t stream);

/// Reduction over the middle axis of [outer, len, inner] (contiguous): kind 0 sum, 1 mean,
/// 2 max, 3 min, 4 sum of squares, 5 L2 norm (sqrt of sum of squares), 6 L1 (sum |x|),
/// 7 log-sum-exp. y is [outer, inner].
void reduce(int kind, DType dt, const void* x, void* y, int64_t outer, int64_t len, int64_t inner,
            cudaStream_t stream);

}  // namespace anvil::cuda
