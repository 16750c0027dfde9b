// Convolutions on the GPU (conv.cpp): NHWC activations, tensor cores for f16/bf16 storage
// (fp32 accumulation), bias + ReLU + residual fused. The plan times the paths that apply
// (cuBLASLt gemm for 1x1, im2col + gemm, a depthwise kernel, cuDNN 9) and keeps the fastest;
// ANVIL_CUDA_CONV_PATH=gemm|im2col|depthwise|cudnn forces one where it applies (tests).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <memory>
#include <string>

#include "anvil/tensor.h"

namespace anvil::cuda {

/// One convolution (or transposed convolution). Activations x, y and the residual z are NHWC
/// with the logical sizes below; pads are symmetric (the executor pads asymmetric cases
/// itself before calling). For a transposed convolution the roles are ONNX's ConvTranspose:
/// x has C channels, y has K channels, w is (C, K/groups, R, S) in the graph.
struct ConvParams {
  int n = 1, c = 1, h = 1, w = 1;  // input
  int k = 1, r = 1, s = 1;         // output channels, kernel height, width
  int oh = 1, ow = 1;              // output
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1, groups = 1;
  bool transpose = false;
  DType dtype = DType::f32;  // storage of x, w, y, z: f32, f16 or bf16
  bool has_bias = false;
  bool relu = false;  // y = relu(...)
  // Upper clamp of the activation when relu is set: y = min(max(v, 0), relu_max) (ONNX
  // Clip(0, m), e.g. ReLU6 with 6; +inf = plain ReLU). Ignored without relu. Every path
  // applies it: the depthwise kernel and the plan's own epilogue pass in registers; after
  // cuBLASLt's or cuDNN's fused ReLU, one more in-place clamp pass (only when finite).
  float relu_max = INFINITY;
  bool has_residual = false;  // y = act(conv(x) + bias + z), z shaped like y
};

/// Weights and bias converted on the host into the layout and dtype the plan uploads
/// (from the graph's OIHW float32/f16/bf16 tensors).
struct ConvWeights {
  Tensor w;     // device layout: KRSC, or (R, S, K) on the depthwise path, or on the
                // im2col path [K, R*S*C rounded up to 16 bytes] (zero-padded) when that
                // differs from R*S*C
  Tensor bias;  // (K) of the storage dtype; undefined when ConvParams::has_bias is false (the
                // plan keeps its own zero bias where cuDNN's fused call needs one)
};

class ConvPlan {
 public:
  /// Chooses the algorithm for these sizes (benchmarking candidates with cuDNN's find on
  /// scratch buffers it allocates and frees), or throws anvil::Error naming what cuDNN refused.
  /// `name` is the node, for messages.
  ConvPlan(const ConvParams& p, const std::string& name);
  ~ConvPlan();
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;

  /// Converts graph weights (OIHW; ConvTranspose: C,K/g,R,S) and an optional bias (may be
  /// nullptr) into the plan's device layout and dtype.
  ConvWeights prepare(const Tensor& w, const Tensor* bias) const;
  size_t workspace_bytes() const;
  /// Enqueues y = act(conv(x, w) + bias + z) on `stream`; z/bias may be null when unused;
  /// z may be y itself (in-place residual), x must not overlap y.
  /// No allocation, no synchronization (capturable in a CUDA graph).
  void run(cudaStream_t stream, const void* x, const void* w, const void* bias, const void* z,
           void* y, void* workspace) const;
  /// The chosen path, for profiles: "gemm", "im2col+gemm", "depthwise", or "cudnn " and
  /// cuDNN's algorithm ("cudnn IMPLICIT_PRECOMP_GEMM fused", ...).
  std::string algo_name() const;
  const ConvParams& params() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil::cuda
