// Matrix products on the GPU through cuBLASLt (gemm.cpp) with fused epilogues.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "anvil/tensor.h"

namespace anvil::cuda {

/// Row-major semantics: for each of `batch` matrices,
///   Y[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] (+ bias[N]) (+ beta * C[M,N]), then epilogue.
/// op(A) = A ([M,K] row-major) or A^T when trans_a (A stored [K,M]); likewise B ([K,N] or
/// [N,K] when trans_b). Batch strides in elements (0 = the same matrix for every batch).
/// Storage dtype f32, f16 or bf16 for A, B, C, Y; fp32 accumulation (f32 uses plain fp32
/// math, not TF32, so results match the reference within 1e-4). bias is float32 for f32
/// and of the storage dtype otherwise.
struct GemmParams {
  int64_t m = 1, n = 1, k = 1;
  bool trans_a = false, trans_b = false;
  int64_t batch = 1, stride_a = 0, stride_b = 0, stride_y = 0;
  DType dtype = DType::f32;
  float alpha = 1.f;
  bool has_bias = false;
  bool has_c = false;  // add beta * C (C shaped and strided like Y)
  float beta = 0.f;
  /// Gelu is the exact (erf) form, ONNX Gelu's default, applied by a small kernel after the
  /// product (cuBLASLt's fused GELU is the tanh approximation); GeluTanh is that approximation
  /// 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))), fused by cuBLASLt.
  enum class Epilogue { None, Relu, Gelu, GeluTanh } epilogue = Epilogue::None;
};

class GemmPlan {
 public:
  /// Picks a cuBLASLt algorithm (heuristic) or throws anvil::Error naming the node.
  GemmPlan(const GemmParams& p, const std::string& name);
  ~GemmPlan();
  GemmPlan(const GemmPlan&) = delete;
  GemmPlan& operator=(const GemmPlan&) = delete;
  size_t workspace_bytes() const;
  /// Enqueues the product; bias/c may be null when unused. No allocation or sync.
  /// a, b, c, y and bias must be 16-byte aligned (cudaMalloc'd buffers are); c may be y.
  /// Throws anvil::Error naming the node on a misaligned or missing pointer.
  void run(cudaStream_t stream, const void* a, const void* b, const void* bias, const void* c,
           void* y, void* workspace) const;
  const GemmParams& params() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anvil::cuda
