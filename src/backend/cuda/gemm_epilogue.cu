// The GemmPlan's own epilogue kernel (see gemm_epilogue.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm_epilogue.h"

namespace anvil::cuda::detail {
namespace {

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__half* p, int64_t i, float v) { p[i] = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}

template <class T>
__global__ void bias_act_kernel(T* y, const T* bias, int64_t total, int64_t mn, int64_t n,
                                int64_t stride_y, int act) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = idx / mn, e = idx - b * mn;
    const int64_t at = b * stride_y + e;
    float v = load(y, at);
    if (bias) v += load(bias, e % n);
    if (act == 1) {
      v = v > 0.f ? v : 0.f;
    } else if (act == 2) {
      v = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
    } else if (act == 3) {
      const float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
      v = 0.5f * v * (1.f + tanhf(u));
    }
    store(y, at, v);
  }
}

template <class T>
void launch(void* y, const void* bias, int64_t batch, int64_t m, int64_t n, int64_t stride_y,
            GemmAct act, cudaStream_t stream) {
  const int64_t mn = m * n, total = batch * mn;
  if (total <= 0) return;
  const int threads = 256;
  const int64_t want = (total + threads - 1) / threads;
  const int blocks = static_cast<int>(want < 65535 ? want : 65535);
  bias_act_kernel<T><<<blocks, threads, 0, stream>>>(static_cast<T*>(y),
                                                     static_cast<const T*>(bias), total, mn, n,
                                                     stride_y, static_cast<int>(act));
  check_cuda(cudaGetLastError(), "gemm_bias_act kernel launch");
}

}  // namespace

void gemm_bias_act(DType dt, void* y, const void* bias, int64_t batch, int64_t m, int64_t n,
                   int64_t stride_y, GemmAct act, cudaStream_t stream) {
  switch (dt) {
    case DType::f32: return launch<float>(y, bias, batch, m, n, stride_y, act, stream);
    case DType::f16: return launch<__half>(y, bias, batch, m, n, stride_y, act, stream);
    case DType::bf16: return launch<__nv_bfloat16>(y, bias, batch, m, n, stride_y, act, stream);
    default: break;
  }
  throw Error(std::string("gemm epilogue: unsupported dtype ") + dtype_name(dt), {}, {}, "dtype");
}

}  // namespace anvil::cuda::detail
