// ConvPlan's own kernels (see conv_kernels.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <string>

#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/device_util.cuh"

namespace anvil::cuda::detail {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t total) {
  const int64_t want = (total + kThreads - 1) / kThreads;
  return static_cast<int>(want < (int64_t{1} << 20) ? want : (int64_t{1} << 20));
}

bool aligned(const void* p, uintptr_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// ---- im2col: moves words of type W (C*es is a multiple of sizeof(W)) ---------------------------

template <class W>
__global__ void im2col_kernel(ConvWindow p, const W* __restrict__ x, W* __restrict__ col, int cw,
                              int ldw, int64_t total) {
  const int rs = p.r * p.s;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int in_row = static_cast<int>(idx % ldw);
    const int64_t m = idx / ldw;
    if (in_row >= rs * cw) {  // the row's zero padding
      col[idx] = W{};
      continue;
    }
    const int tap = in_row / cw;
    const int cc = in_row - tap * cw;
    const int ox = static_cast<int>(m % p.ow);
    const int64_t t2 = m / p.ow;
    const int oy = static_cast<int>(t2 % p.oh);
    const int n = static_cast<int>(t2 / p.oh);
    const int ry = tap / p.s, sx = tap - ry * p.s;
    const int iy = oy * p.stride_h - p.pad_h + ry * p.dil_h;
    const int ix = ox * p.stride_w - p.pad_w + sx * p.dil_w;
    W v{};
    if (iy >= 0 && iy < p.h && ix >= 0 && ix < p.w)
      v = x[((static_cast<int64_t>(n) * p.h + iy) * p.w + ix) * cw + cc];
    col[idx] = v;
  }
}

template <class W>
void launch_im2col(const ConvWindow& p, const void* x, void* col, int row_bytes, int ld_bytes,
                   cudaStream_t stream) {
  const int cw = row_bytes / static_cast<int>(sizeof(W));
  const int ldw = ld_bytes / static_cast<int>(sizeof(W));
  const int64_t total = static_cast<int64_t>(p.n) * p.oh * p.ow * ldw;
  if (total <= 0) return;
  im2col_kernel<W><<<blocks_for(total), kThreads, 0, stream>>>(
      p, static_cast<const W*>(x), static_cast<W*>(col), cw, ldw, total);
  check_cuda(cudaGetLastError(), "im2col_nhwc kernel launch");
}

// ---- depthwise --------------------------------------------------------------------------------

// One thread: V consecutive channels of one output pixel.
template <class T, int V>
__global__ void depthwise_kernel(ConvWindow p, bool relu, float hi, const T* __restrict__ x,
                                 const T* __restrict__ w, const T* __restrict__ bias, const T* z,
                                 T* y, int64_t total) {
  using P = Pack<T, V>;
  const int cv = p.c / V;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int c0 = static_cast<int>(idx % cv) * V;
    const int64_t m = idx / cv;
    const int ox = static_cast<int>(m % p.ow);
    const int64_t t2 = m / p.ow;
    const int oy = static_cast<int>(t2 % p.oh);
    const int n = static_cast<int>(t2 / p.oh);
    float acc[V];
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] = 0.f;
    for (int ry = 0; ry < p.r; ++ry) {
      const int iy = oy * p.stride_h - p.pad_h + ry * p.dil_h;
      if (iy < 0 || iy >= p.h) continue;
      const T* xrow = x + (static_cast<int64_t>(n) * p.h + iy) * p.w * p.c + c0;
      const T* wrow = w + static_cast<int64_t>(ry) * p.s * p.c + c0;
      for (int sx = 0; sx < p.s; ++sx) {
        const int ix = ox * p.stride_w - p.pad_w + sx * p.dil_w;
        if (ix < 0 || ix >= p.w) continue;
        const P xv = *reinterpret_cast<const P*>(xrow + static_cast<int64_t>(ix) * p.c);
        const P wv = *reinterpret_cast<const P*>(wrow + static_cast<int64_t>(sx) * p.c);
#pragma unroll
        for (int j = 0; j < V; ++j) acc[j] = fmaf(to_f(xv.v[j]), to_f(wv.v[j]), acc[j]);
      }
    }
    if (bias) {
      const P bv = *reinterpret_cast<const P*>(bias + c0);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] += to_f(bv.v[j]);
    }
    const int64_t at = m * p.c + c0;
    if (z) {
      const P zv = *reinterpret_cast<const P*>(z + at);
#pragma unroll
      for (int j = 0; j < V; ++j) acc[j] += to_f(zv.v[j]);
    }
    P out;
#pragma unroll
    for (int j = 0; j < V; ++j) out.v[j] = from_f<T>(relu ? relu_clip(acc[j], hi) : acc[j]);
    *reinterpret_cast<P*>(y + at) = out;
  }
}

// One thread: V consecutive channels of P consecutive output columns of one output row, for
// S-wide kernels of column stride SW and column dilation 1: each input column of a kernel row
// is loaded once and feeds every output (of the P) that covers it, the kernel row's weights
// once per P outputs. R must equal S; row stride and dilation stay runtime values. 32-bit
// indices.
template <class T, int V, int S, int SW, int P>
__global__ void depthwise_tile_kernel(ConvWindow p, bool relu, float hi, const T* __restrict__ x,
                                      const T* __restrict__ w, const T* __restrict__ bias,
                                      const T* z, T* y, int total) {
  using Pk = Pack<T, V>;
  constexpr int kSpan = (P - 1) * SW + S;  // input columns one kernel row of P outputs reads
  const int cv = p.c / V;
  const int groups = (p.ow + P - 1) / P;
  for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += gridDim.x * blockDim.x) {
    const int c0 = (idx % cv) * V;
    int t = idx / cv;
    const int ox0 = (t % groups) * P;
    t /= groups;
    const int oy = t % p.oh;
    const int n = t / p.oh;
    const int ix0 = ox0 * SW - p.pad_w;
    float acc[P][V];
#pragma unroll
    for (int q = 0; q < P; ++q)
#pragma unroll
      for (int j = 0; j < V; ++j) acc[q][j] = 0.f;
        // Rows unrolled (R == S) and every load of a row issued before its arithmetic, with
        // out-of-range cells predicated off (not branched around), so many loads are in flight.
#pragma unroll
    for (int ry = 0; ry < S; ++ry) {
      const int iy = oy * p.stride_h - p.pad_h + ry * p.dil_h;
      const bool row_ok = iy >= 0 && iy < p.h;
      const T* xrow = x + (static_cast<int64_t>(n) * p.h + (row_ok ? iy : 0)) * p.w * p.c + c0;
      Pk xs[kSpan];
      bool ok[kSpan];
#pragma unroll
      for (int o = 0; o < kSpan; ++o) {
        const int ix = ix0 + o;
        ok[o] = row_ok && ix >= 0 && ix < p.w;
        xs[o] = *reinterpret_cast<const Pk*>(xrow + static_cast<int64_t>(ok[o] ? ix : 0) * p.c);
      }
      float wr[S][V];
#pragma unroll
      for (int sx = 0; sx < S; ++sx) {
        const Pk wv = *reinterpret_cast<const Pk*>(w + (ry * S + sx) * p.c + c0);
#pragma unroll
        for (int j = 0; j < V; ++j) wr[sx][j] = to_f(wv.v[j]);
      }
#pragma unroll
      for (int o = 0; o < kSpan; ++o) {
        if (!ok[o]) continue;
        float xf[V];
#pragma unroll
        for (int j = 0; j < V; ++j) xf[j] = to_f(xs[o].v[j]);
#pragma unroll
        for (int q = 0; q < P; ++q) {
          const int sx = o - q * SW;  // compile-time after unrolling
          if (sx >= 0 && sx < S) {
#pragma unroll
            for (int j = 0; j < V; ++j) acc[q][j] = fmaf(xf[j], wr[sx][j], acc[q][j]);
          }
        }
      }
    }
    float bf[V];
#pragma unroll
    for (int j = 0; j < V; ++j) bf[j] = 0.f;
    if (bias) {
      const Pk bv = *reinterpret_cast<const Pk*>(bias + c0);
#pragma unroll
      for (int j = 0; j < V; ++j) bf[j] = to_f(bv.v[j]);
    }
#pragma unroll
    for (int q = 0; q < P; ++q) {
      if (ox0 + q >= p.ow) break;
      const int64_t at = ((static_cast<int64_t>(n) * p.oh + oy) * p.ow + ox0 + q) * p.c + c0;
      float v[V];
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] = acc[q][j] + bf[j];
      if (z) {
        const Pk zv = *reinterpret_cast<const Pk*>(z + at);
#pragma unroll
        for (int j = 0; j < V; ++j) v[j] += to_f(zv.v[j]);
      }
      Pk out;
#pragma unroll
      for (int j = 0; j < V; ++j) out.v[j] = from_f<T>(relu ? relu_clip(v[j], hi) : v[j]);
      *reinterpret_cast<Pk*>(y + at) = out;
    }
  }
}

template <class T, int V, int S, int SW>
void launch_tile(const ConvWindow& p, int tile, bool relu, float hi, const T* x, const T* w,
                 const T* b, const T* z, T* y, cudaStream_t stream) {
  const int total =
      static_cast<int>(static_cast<int64_t>(p.n) * p.oh * ((p.ow + tile - 1) / tile) * (p.c / V));
  if (tile == 4)
    depthwise_tile_kernel<T, V, S, SW, 4>
        <<<blocks_for(total), kThreads, 0, stream>>>(p, relu, hi, x, w, b, z, y, total);
  else if (tile == 2)
    depthwise_tile_kernel<T, V, S, SW, 2>
        <<<blocks_for(total), kThreads, 0, stream>>>(p, relu, hi, x, w, b, z, y, total);
  else
    depthwise_tile_kernel<T, V, S, SW, 1>
        <<<blocks_for(total), kThreads, 0, stream>>>(p, relu, hi, x, w, b, z, y, total);
}

template <class T>
void launch_depthwise(const ConvWindow& p, bool relu, float hi, const void* x, const void* w,
                      const void* bias, const void* z, void* y, cudaStream_t stream, int tile) {
  constexpr int V = 16 / static_cast<int>(sizeof(T));
  const bool vec = p.c % V == 0 && aligned(x, 16) && aligned(w, 16) && aligned(y, 16) &&
                   (!bias || aligned(bias, 16)) && (!z || aligned(z, 16));
  const int v = vec ? V : 1;
  const int64_t total = static_cast<int64_t>(p.n) * p.oh * p.ow * (p.c / v);
  if (total <= 0) return;
  auto tx = static_cast<const T*>(x), tw = static_cast<const T*>(w),
       tb = static_cast<const T*>(bias), tz = static_cast<const T*>(z);
  auto ty = static_cast<T*>(y);
  // The column-tiled kernel for 3- and 5-wide kernels of stride 1 or 2 and dilation 1.
  const int64_t threads = static_cast<int64_t>(p.n) * p.oh * p.ow * (p.c / V);  // tile 1
  if (vec && (tile == 1 || tile == 2 || tile == 4) && p.dil_w == 1 && (p.s == 3 || p.s == 5) &&
      p.r == p.s && (p.stride_w == 1 || p.stride_w == 2) &&
      threads < (int64_t{1} << 31) - kThreads &&
      static_cast<int64_t>(p.r) * p.s * p.c < (int64_t{1} << 31)) {
    if (p.s == 3 && p.stride_w == 1)
      launch_tile<T, V, 3, 1>(p, tile, relu, hi, tx, tw, tb, tz, ty, stream);
    if (p.s == 3 && p.stride_w == 2)
      launch_tile<T, V, 3, 2>(p, tile, relu, hi, tx, tw, tb, tz, ty, stream);
    if (p.s == 5 && p.stride_w == 1)
      launch_tile<T, V, 5, 1>(p, tile, relu, hi, tx, tw, tb, tz, ty, stream);
    if (p.s == 5 && p.stride_w == 2)
      launch_tile<T, V, 5, 2>(p, tile, relu, hi, tx, tw, tb, tz, ty, stream);
    check_cuda(cudaGetLastError(), "depthwise_nhwc kernel launch");
    return;
  }
  if (vec)
    depthwise_kernel<T, V>
        <<<blocks_for(total), kThreads, 0, stream>>>(p, relu, hi, tx, tw, tb, tz, ty, total);
  else
    depthwise_kernel<T, 1>
        <<<blocks_for(total), kThreads, 0, stream>>>(p, relu, hi, tx, tw, tb, tz, ty, total);
  check_cuda(cudaGetLastError(), "depthwise_nhwc kernel launch");
}

}  // namespace

void im2col_nhwc(const ConvWindow& p, DType dt, const void* x, void* col, int64_t ld,
                 cudaStream_t stream) {
  const int es = static_cast<int>(element_size(dt));
  const int row = p.c * es;  // bytes of one pixel's channels
  const int64_t need = static_cast<int64_t>(p.r) * p.s * p.c;
  if (ld < need || ld * es > (int64_t{1} << 30))
    throw Error("im2col_nhwc: row length " + std::to_string(ld) + " for " + std::to_string(need) +
                " values");
  const int ldb = static_cast<int>(ld * es);
  if (row % 16 == 0 && ldb % 16 == 0 && aligned(x, 16) && aligned(col, 16))
    return launch_im2col<uint4>(p, x, col, row, ldb, stream);
  if (row % 8 == 0 && ldb % 8 == 0 && aligned(x, 8) && aligned(col, 8))
    return launch_im2col<uint2>(p, x, col, row, ldb, stream);
  if (row % 4 == 0 && ldb % 4 == 0 && aligned(x, 4) && aligned(col, 4))
    return launch_im2col<uint32_t>(p, x, col, row, ldb, stream);
  return launch_im2col<uint16_t>(p, x, col, row, ldb, stream);  // 2-byte dtypes, odd C
}

void depthwise_nhwc(const ConvWindow& p, bool relu, DType dt, const void* x, const void* w,
                    const void* bias, const void* z, void* y, cudaStream_t stream, int tile,
                    float relu_max) {
  switch (dt) {
    case DType::f32:
      return launch_depthwise<float>(p, relu, relu_max, x, w, bias, z, y, stream, tile);
    case DType::f16:
      return launch_depthwise<__half>(p, relu, relu_max, x, w, bias, z, y, stream, tile);
    case DType::bf16:
      return launch_depthwise<__nv_bfloat16>(p, relu, relu_max, x, w, bias, z, y, stream, tile);
    default:
      break;
  }
  throw Error(std::string("depthwise convolution: unsupported dtype ") + dtype_name(dt), {}, {},
              "dtype");
}

}  // namespace anvil::cuda::detail
