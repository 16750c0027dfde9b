// The GemmPlan's own epilogue kernel (see gemm_epilogue.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "backend/cuda/cuda_util.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/gemm_epilogue.h"

namespace anvil::cuda::detail {
namespace {

template <int Act>
__device__ __forceinline__ float activate(float v, float hi) {
  if (Act == 1) {
    v = relu_clip(v, hi);
  } else if (Act == 2) {
    v = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  } else if (Act == 3) {
    const float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
    v = 0.5f * v * (1.f + tanhf(u));
  }
  return v;
}

// Matrix b of the batch is handled by blocks with blockIdx.y == b (mod gridDim.y); inside one
// matrix, packs of V consecutive elements of a row (n % V == 0), index type I (int where the
// matrix's pack count and the grid stride fit in 31 bits). The pack's first column is
// (i % nv) * V with nv = n / V packs a row.
template <class T, int V, class I, int Act>
__global__ void bias_act_kernel(T* y, const T* __restrict__ bias, int64_t batch, I packs, I nv,
                                int64_t stride_y, float hi) {
  using P = Pack<T, V>;
  const I step = static_cast<I>(gridDim.x) * blockDim.x;
  for (int64_t b = blockIdx.y; b < batch; b += gridDim.y) {
    P* yb = reinterpret_cast<P*>(y + b * stride_y);
    for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < packs; i += step) {
      P v = yb[i];
      float f[V];
#pragma unroll
      for (int j = 0; j < V; ++j) f[j] = to_f(v.v[j]);
      if (bias) {
        const P bv = reinterpret_cast<const P*>(bias)[i % nv];
#pragma unroll
        for (int j = 0; j < V; ++j) f[j] += to_f(bv.v[j]);
      }
#pragma unroll
      for (int j = 0; j < V; ++j) v.v[j] = from_f<T>(activate<Act>(f[j], hi));
      yb[i] = v;
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <class T, int V, class I>
void launch_v(T* y, const T* bias, int64_t batch, int64_t packs, int64_t nv, int64_t stride_y,
              GemmAct act, float hi, cudaStream_t stream, int blocks_x, int blocks_y) {
  const dim3 grid(static_cast<unsigned>(blocks_x), static_cast<unsigned>(blocks_y));
  const I pk = static_cast<I>(packs), n = static_cast<I>(nv);
  switch (act) {
    case GemmAct::None:
      bias_act_kernel<T, V, I, 0><<<grid, 256, 0, stream>>>(y, bias, batch, pk, n, stride_y, hi);
      break;
    case GemmAct::Relu:
      bias_act_kernel<T, V, I, 1><<<grid, 256, 0, stream>>>(y, bias, batch, pk, n, stride_y, hi);
      break;
    case GemmAct::Gelu:
      bias_act_kernel<T, V, I, 2><<<grid, 256, 0, stream>>>(y, bias, batch, pk, n, stride_y, hi);
      break;
    case GemmAct::GeluTanh:
      bias_act_kernel<T, V, I, 3><<<grid, 256, 0, stream>>>(y, bias, batch, pk, n, stride_y, hi);
      break;
  }
}

template <class T>
void launch(void* yv, const void* biasv, int64_t batch, int64_t m, int64_t n, int64_t stride_y,
            GemmAct act, float hi, cudaStream_t stream) {
  if (batch <= 0 || m <= 0 || n <= 0) return;
  auto* y = static_cast<T*>(yv);
  const auto* bias = static_cast<const T*>(biasv);
  constexpr int kV = 16 / static_cast<int>(sizeof(T));
  const bool vec = n % kV == 0 && (batch == 1 || stride_y % kV == 0) && aligned16(y) &&
                   (!bias || aligned16(bias));
  const int v = vec ? kV : 1;
  const int64_t packs = m * n / v, nv = n / v;
  const int threads = 256;
  const int64_t want = (packs + threads - 1) / threads;
  const int blocks_y = static_cast<int>(batch < 65535 ? batch : 65535);
  // Up to ~2^20 blocks in all; each thread loops over the rest (grid-stride).
  const int64_t cap_x = std::max<int64_t>(1, (int64_t{1} << 20) / blocks_y);
  const int blocks_x = static_cast<int>(std::min(want, cap_x));
  const bool small = packs + static_cast<int64_t>(blocks_x) * threads < (int64_t{1} << 31);
  if (vec) {
    if (small)
      launch_v<T, kV, int>(y, bias, batch, packs, nv, stride_y, act, hi, stream, blocks_x,
                           blocks_y);
    else
      launch_v<T, kV, int64_t>(y, bias, batch, packs, nv, stride_y, act, hi, stream, blocks_x,
                               blocks_y);
  } else {
    if (small)
      launch_v<T, 1, int>(y, bias, batch, packs, nv, stride_y, act, hi, stream, blocks_x, blocks_y);
    else
      launch_v<T, 1, int64_t>(y, bias, batch, packs, nv, stride_y, act, hi, stream, blocks_x,
                              blocks_y);
  }
  check_cuda(cudaGetLastError(), "gemm_bias_act kernel launch");
}

}  // namespace

void gemm_bias_act(DType dt, void* y, const void* bias, int64_t batch, int64_t m, int64_t n,
                   int64_t stride_y, GemmAct act, cudaStream_t stream, float relu_max) {
  switch (dt) {
    case DType::f32:
      return launch<float>(y, bias, batch, m, n, stride_y, act, relu_max, stream);
    case DType::f16:
      return launch<__half>(y, bias, batch, m, n, stride_y, act, relu_max, stream);
    case DType::bf16:
      return launch<__nv_bfloat16>(y, bias, batch, m, n, stride_y, act, relu_max, stream);
    default:
      break;
  }
  throw Error(std::string("gemm epilogue: unsupported dtype ") + dtype_name(dt), {}, {}, "dtype");
}

}  // namespace anvil::cuda::detail
