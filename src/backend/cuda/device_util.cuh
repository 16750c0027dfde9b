// Device-side helpers shared by the cuda backend's kernels (*.cu): float conversions of the
// storage types and packs of V elements moved as one (16-byte) load or store.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace anvil::cuda {

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

/// Rounds to nearest even for the 16-bit types.
template <class T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

/// min(max(v, 0), hi) that keeps NaN (fminf/fmaxf drop it): Relu (hi = inf) and Relu6/Clip
/// fused into convolutions and GEMM epilogues, as the reference and ONNX Runtime do.
__device__ __forceinline__ float relu_clip(float v, float hi) {
  return v < 0.f ? 0.f : (v > hi ? hi : v);
}

/// V consecutive elements moved as one (16-byte when V * sizeof(T) == 16) load or store.
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

}  // namespace anvil::cuda
