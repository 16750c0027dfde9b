// The cuda backend's NN kernels (declared in kernels.h): 2-D pooling, global pooling, LRN and
// Resize on NHWC data; Softmax / LogSoftmax and the reductions over the middle axis of a
// contiguous [outer, len, inner] view. Semantics are the reference backend's (ONNX):
// src/ops/pool.cpp, norm.cpp, resize.cpp, reduce.cpp.
//
// Every kernel loads f32 / f16 / bf16, computes and accumulates in float with accurate math
// (expf, logf, powf, sqrtf; no fast-math intrinsics) and rounds once on the store.
//
// Layout and speed: in NHWC the channel is the fastest dim, so consecutive threads take
// consecutive channels (coalesced); when the channel count is a multiple of 16 bytes' worth of
// elements (4 floats / 8 halves) and both pointers are 16-byte aligned, each thread moves a
// 16-byte pack of channels. Element kernels use 32-bit index math when every index fits.
//
// Reductions (softmax, reduce, global pooling) share one accumulator (St: a running value, or
// the running max and the scaled sum of exp for log-sum-exp / softmax, merged online) and
// three launch shapes, picked from the view:
//   * len <= 16: one thread per output column (o, i), looping over len;
//   * inner == 1: one warp (len small) or one block (32..1024 threads) per row, warp shuffles
//     then shared memory; softmax re-reads the row to write it;
//   * inner > 1: a block per (outer, tile of inner): threads x over the inner (channel) tile,
//     threads y over len, then a tree in shared memory (global pooling on NHWC is this shape:
//     [N, H*W, C]). Tiles shrink (down to a 32-byte sector of a row) until there are about
//     two blocks per SM, so 7x7x2048 at batch 1 still spreads over the GPU.
// Nothing allocates and nothing synchronizes with the host: every launcher can be captured in
// a CUDA graph. Zero-size work launches nothing.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <string>

#include "anvil/error.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/kernels.h"

namespace anvil::cuda {
namespace {

// ---- element access ---------------------------------------------------------------------------

template <class T, int V>
__device__ __forceinline__ Pack<T, V> load(const T* p) {
  return *reinterpret_cast<const Pack<T, V>*>(p);
}
template <class T, int V>
__device__ __forceinline__ void store(T* p, const Pack<T, V>& v) {
  *reinterpret_cast<Pack<T, V>*>(p) = v;
}

// ---- host helpers -----------------------------------------------------------------------------

[[noreturn]] void fail(const char* fn, const std::string& msg, const char* field = "") {
  throw Error(std::string("cuda ") + fn + ": " + msg, {}, {}, field);
}

void check_launch(const char* kernel) {
  check_cuda(cudaGetLastError(), (std::string(kernel) + " kernel launch").c_str());
}

/// Calls f(T{}) with T the device type of dt (f32, f16, bf16); throws for other dtypes.
template <class F>
void dispatch(DType dt, const char* fn, F&& f) {
  switch (dt) {
    case DType::f32:
      f(float{});
      return;
    case DType::f16:
      f(__half{});
      return;
    case DType::bf16:
      f(__nv_bfloat16{});
      return;
    default:
      break;
  }
  fail(fn, std::string("unsupported dtype ") + dtype_name(dt) + " (f32, f16 or bf16)", "dtype");
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

constexpr int kThreads = 256;

/// Blocks for a grid-stride loop over `total` items.
unsigned grid_for(int64_t total, int threads = kThreads) {
  return static_cast<unsigned>(std::min<int64_t>((total + threads - 1) / threads, 1 << 30));
}

int64_t next_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Multiprocessors of the current device (cached per device; no synchronization).
int sm_count() {
  static std::atomic<int> cache[64];
  int dev = 0;
  ANVIL_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev >= 0 && dev < 64) {
    const int v = cache[dev].load(std::memory_order_relaxed);
    if (v > 0) return v;
  }
  int v = 0;
  ANVIL_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
  v = std::max(v, 1);
  if (dev >= 0 && dev < 64) cache[dev].store(v, std::memory_order_relaxed);
  return v;
}

// ---- 2-D pooling ------------------------------------------------------------------------------

/// One thread per (n, oy, ox, pack of V channels). Divisors follow pool.cpp: the window
/// cells inside the input, or (count_include_pad) inside [-pad_begin, in + pad_end) per axis,
/// so ceil-mode cells past the end padding never count. Max pooling propagates NaN; a window
/// with no input cell gives -inf (max) or 0 (average), as the reference does.
template <class T, int V, class I>
__global__ void __launch_bounds__(kThreads)
    pool2d_kernel(Pool2d p, const T* __restrict__ x, T* __restrict__ y, int64_t total) {
  const I cv = static_cast<I>(p.c / V);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const I i = static_cast<I>(t);
    const I g = i % cv;
    I r = i / cv;
    const int ox = static_cast<int>(r % p.ow);
    r /= p.ow;
    const int oy = static_cast<int>(r % p.oh);
    const I n = r / p.oh;
    const int y0 = oy * p.sh - p.pad_top, x0 = ox * p.sw - p.pad_left;
    int cols_in = 0, cols_pad = 0;
    for (int kx = 0; kx < p.kw; ++kx) {
      const int ix = x0 + kx * p.dw;
      cols_pad += (ix >= -p.pad_left && ix < p.w + p.pad_right);
      cols_in += (ix >= 0 && ix < p.w);
    }
    float acc[V];
#pragma unroll
    for (int l = 0; l < V; ++l) acc[l] = p.max ? -CUDART_INF_F : 0.f;
    int rows_in = 0, rows_pad = 0;
    const T* xn = x + static_cast<I>(n * p.h) * p.w * p.c + g * V;
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = y0 + ky * p.dh;
      rows_pad += (iy >= -p.pad_top && iy < p.h + p.pad_bottom);
      if (iy < 0 || iy >= p.h) continue;
      ++rows_in;
      const T* xr = xn + static_cast<I>(iy) * p.w * p.c;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = x0 + kx * p.dw;
        if (ix < 0 || ix >= p.w) continue;
        const Pack<T, V> v = load<T, V>(xr + static_cast<I>(ix) * p.c);
        if (p.max) {
#pragma unroll
          for (int l = 0; l < V; ++l) {
            const float f = to_f(v.v[l]);
            if (f > acc[l] || f != f) acc[l] = f;
          }
        } else {
#pragma unroll
          for (int l = 0; l < V; ++l) acc[l] += to_f(v.v[l]);
        }
      }
    }
    Pack<T, V> out;
    if (p.max) {
#pragma unroll
      for (int l = 0; l < V; ++l) out.v[l] = from_f<T>(acc[l]);
    } else {
      const int div = p.count_include_pad ? rows_pad * cols_pad : rows_in * cols_in;
#pragma unroll
      for (int l = 0; l < V; ++l)
        out.v[l] = from_f<T>(div > 0 ? acc[l] / static_cast<float>(div) : 0.f);
    }
    store<T, V>(y + i * V, out);
  }
}

// ---- LRN --------------------------------------------------------------------------------------

/// One thread per element; the window's squares come through L1 (neighbouring threads read the
/// same channels).
template <class T, class I>
__global__ void __launch_bounds__(kThreads)
    lrn_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t total, int c, int lo, int hi,
               float alpha_over_size, float beta, float bias) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const I i = static_cast<I>(t);
    const int ch = static_cast<int>(i % c);
    const I base = i - ch;
    const int c0 = max(0, ch - lo), c1 = min(c - 1, ch + hi);
    float sq = 0.f;
    for (int cc = c0; cc <= c1; ++cc) {
      const float v = to_f(x[base + cc]);
      sq = fmaf(v, v, sq);
    }
    y[i] = from_f<T>(to_f(x[i]) / powf(bias + alpha_over_size * sq, beta));
  }
}

// ---- Resize -----------------------------------------------------------------------------------

/// Nearest index of coordinate v (clamped to [0, n-1]) with ONNX's rounding modes.
__device__ __forceinline__ int nearest_index(float v, int mode, int n) {
  v = fminf(fmaxf(v, -1.f), static_cast<float>(n));  // also maps NaN to -1
  const float f = floorf(v), fr = v - f;
  float r;
  switch (mode) {
    case 0:
      r = f;
      break;  // floor
    case 1:
      r = fr > 0.5f ? f + 1.f : f;
      break;  // round_prefer_floor
    case 2:
      r = fr >= 0.5f ? f + 1.f : f;
      break;  // round_prefer_ceil
    default:
      r = ceilf(v);
      break;  // ceil
  }
  return min(max(static_cast<int>(r), 0), n - 1);
}

/// Two linear taps (i0, i1 clamped to the edge) and the weight t of i1.
__device__ __forceinline__ void linear_taps(float v, int n, int& i0, int& i1, float& t) {
  v = fminf(fmaxf(v, -1.f), static_cast<float>(n));
  const float f = floorf(v);
  t = v - f;
  const int b = static_cast<int>(f);
  i0 = min(max(b, 0), n - 1);
  i1 = min(max(b + 1, 0), n - 1);
}

template <class T, int V, class I>
__global__ void __launch_bounds__(kThreads)
    resize_kernel(Resize2d r, const T* __restrict__ x, T* __restrict__ y, int64_t total) {
  const I cv = static_cast<I>(r.c / V);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const I i = static_cast<I>(t);
    const I g = i % cv;
    I q = i / cv;
    const int ox = static_cast<int>(q % r.ow);
    q /= r.ow;
    const int oy = static_cast<int>(q % r.oh);
    const I n = q / r.oh;
    const float fy = static_cast<float>(oy) * r.scale_h + r.offset_h;
    const float fx = static_cast<float>(ox) * r.scale_w + r.offset_w;
    const T* xn = x + static_cast<I>(n * r.h) * r.w * r.c + g * V;
    if (r.mode == 0) {
      const int iy = nearest_index(fy, r.nearest_round, r.h);
      const int ix = nearest_index(fx, r.nearest_round, r.w);
      store<T, V>(y + i * V, load<T, V>(xn + (static_cast<I>(iy) * r.w + ix) * r.c));
      continue;
    }
    int y0, y1, x0, x1;
    float ty, tx;
    linear_taps(fy, r.h, y0, y1, ty);
    linear_taps(fx, r.w, x0, x1, tx);
    const Pack<T, V> a = load<T, V>(xn + (static_cast<I>(y0) * r.w + x0) * r.c);
    const Pack<T, V> b = load<T, V>(xn + (static_cast<I>(y0) * r.w + x1) * r.c);
    const Pack<T, V> c = load<T, V>(xn + (static_cast<I>(y1) * r.w + x0) * r.c);
    const Pack<T, V> d = load<T, V>(xn + (static_cast<I>(y1) * r.w + x1) * r.c);
    Pack<T, V> out;
#pragma unroll
    for (int l = 0; l < V; ++l) {
      const float top = (1.f - tx) * to_f(a.v[l]) + tx * to_f(b.v[l]);
      const float bot = (1.f - tx) * to_f(c.v[l]) + tx * to_f(d.v[l]);
      out.v[l] = from_f<T>((1.f - ty) * top + ty * bot);
    }
    store<T, V>(y + i * V, out);
  }
}

// ---- reductions: one accumulator for every kind -----------------------------------------------

/// 0..7 are kernels.h's reduce kinds; the others are internal.
enum Mode : int {
  kSum = 0,
  kMean = 1,
  kMax = 2,
  kMin = 3,
  kSumSq = 4,
  kL2 = 5,
  kL1 = 6,
  kLogSumExp = 7,
  kSoftmax = 8,
  kLogSoftmax = 9,
  kMeanOr0 = 10,  // GlobalAveragePool: an empty window gives 0 (ReduceMean gives NaN)
};

/// a: the running sum / max / min (for log-sum-exp: the running max); b: sum of exp(x - a).
struct St {
  float a, b;
};

__host__ __device__ constexpr int state_kind(int mode) {
  return (mode == kSoftmax || mode == kLogSoftmax) ? kLogSumExp : mode;
}

__device__ __forceinline__ St st_init(int k) {
  if (k == kMax || k == kLogSumExp) return {-CUDART_INF_F, 0.f};
  if (k == kMin) return {CUDART_INF_F, 0.f};
  return {0.f, 0.f};
}

__device__ __forceinline__ void st_step(int k, St& s, float v) {
  switch (k) {
    case kMax:
      if (v > s.a || v != v) s.a = v;
      break;  // NaN propagates (as the reference)
    case kMin:
      if (v < s.a || v != v) s.a = v;
      break;
    case kSumSq:
    case kL2:
      s.a = fmaf(v, v, s.a);
      break;
    case kL1:
      s.a += fabsf(v);
      break;
    case kLogSumExp:
      if (v > s.a) {  // online rescale: one exp per element
        s.b = s.b * expf(s.a - v) + 1.f;
        s.a = v;
      } else if (v == s.a) {
        s.b += 1.f;  // also +inf == +inf
      } else if (v != -CUDART_INF_F) {
        s.b += expf(v - s.a);  // NaN makes the sum NaN
      }
      break;
    default:
      s.a += v;
      break;  // kSum, kMean, kMeanOr0
  }
}

/// Merge o into s. Commutative bit for bit, so a butterfly leaves every lane the same value.
__device__ __forceinline__ void st_merge(int k, St& s, const St& o) {
  switch (k) {
    case kMax:
      if (o.a > s.a || o.a != o.a) s.a = o.a;
      break;
    case kMin:
      if (o.a < s.a || o.a != o.a) s.a = o.a;
      break;
    case kLogSumExp: {
      const float m = fmaxf(s.a, o.a);
      s.b = (s.a == m ? s.b : s.b * expf(s.a - m)) + (o.a == m ? o.b : o.b * expf(o.a - m));
      s.a = m;
      break;
    }
    default:
      s.a += o.a;
      break;
  }
}

__device__ __forceinline__ float st_finish(int mode, const St& s, int64_t len) {
  switch (mode) {
    case kMean:
      return len > 0 ? s.a / static_cast<float>(len) : CUDART_NAN_F;
    case kMeanOr0:
      return len > 0 ? s.a / static_cast<float>(len) : 0.f;
    case kL2:
      return sqrtf(s.a);
    case kLogSumExp:
      return logf(s.b) + s.a;  // empty or all -inf: -inf
    default:
      return s.a;
  }
}

/// Softmax / log-softmax of v given the row's state (max a, sum b; log_b = logf(b)).
__device__ __forceinline__ float soft_out(int mode, float v, const St& s, float log_b) {
  return mode == kSoftmax ? expf(v - s.a) / s.b : (v - s.a) - log_b;
}

__device__ __forceinline__ St warp_merge(int k, St s) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    St o;
    o.a = __shfl_xor_sync(0xffffffffu, s.a, off);
    o.b = __shfl_xor_sync(0xffffffffu, s.b, off);
    st_merge(k, s, o);
  }
  return s;
}

/// len <= 16 (or few columns): one thread per (o, i) column. x/y may alias (softmax in place).
template <class T>
__global__ void __launch_bounds__(kThreads)
    col_thread_kernel(int mode, const T* x, T* y, int64_t outer, int64_t len, int64_t inner) {
  const int k = state_kind(mode);
  const int64_t total = outer * inner;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const int64_t o = t / inner, i = t - o * inner;
    const int64_t base = o * len * inner + i;
    St s = st_init(k);
    for (int64_t j = 0; j < len; ++j) st_step(k, s, to_f(x[base + j * inner]));
    if (mode != kSoftmax && mode != kLogSoftmax) {
      y[t] = from_f<T>(st_finish(mode, s, len));
      continue;
    }
    const float log_b = logf(s.b);
    for (int64_t j = 0; j < len; ++j) {
      const int64_t e = base + j * inner;
      y[e] = from_f<T>(soft_out(mode, to_f(x[e]), s, log_b));
    }
  }
}

/// inner == 1: blockDim.x threads per row (a warp with blockDim.y = 4 rows per block, or one
/// row of 64..1024 threads), V elements per load (len % V == 0 and aligned when V > 1).
template <class T, int V>
__global__ void __launch_bounds__(1024)
    row_kernel(int mode, const T* x, T* y, int64_t rows, int64_t len) {
  __shared__ St partial[32];
  const int k = state_kind(mode);
  const bool soft = mode == kSoftmax || mode == kLogSoftmax;
  const int64_t units = len / V;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int64_t row0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; row0 < rows;
       row0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
    const int64_t row = row0 + threadIdx.y;
    const bool active = row < rows;
    const T* xr = x + (active ? row : 0) * len;
    St s = st_init(k);
    if (active)
      for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
        const Pack<T, V> v = load<T, V>(xr + u * V);
#pragma unroll
        for (int l = 0; l < V; ++l) st_step(k, s, to_f(v.v[l]));
      }
    s = warp_merge(k, s);
    if (nwarps > 1) {  // blockDim.y == 1 here
      if (lane == 0) partial[warp] = s;
      __syncthreads();
      if (warp == 0) {
        s = lane < nwarps ? partial[lane] : st_init(k);
        s = warp_merge(k, s);
        if (lane == 0) partial[0] = s;
      }
      __syncthreads();
      s = partial[0];
      __syncthreads();  // partial[] is rewritten by the next row
    }
    if (!active) continue;
    if (!soft) {
      if (threadIdx.x == 0) y[row] = from_f<T>(st_finish(mode, s, len));
      continue;
    }
    const float log_b = logf(s.b);
    T* yr = y + row * len;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
      const Pack<T, V> v = load<T, V>(xr + u * V);
      Pack<T, V> out;
#pragma unroll
      for (int l = 0; l < V; ++l) out.v[l] = from_f<T>(soft_out(mode, to_f(v.v[l]), s, log_b));
      store<T, V>(yr + u * V, out);
    }
  }
}

/// inner > 1: a block per (o, tile of blockDim.x * V columns); threads y stride over len, then
/// a tree over y in shared memory laid out [lane of pack][y][x] (a warp touches consecutive
/// entries: no bank conflicts).
/// blockDim.y is a power of two.
template <class T, int V>
__global__ void __launch_bounds__(1024)
    col_block_kernel(int mode, const T* x, T* y, int64_t outer, int64_t len, int64_t inner,
                     int64_t tiles) {
  extern __shared__ St tree[];
  const int k = state_kind(mode);
  const bool soft = mode == kSoftmax || mode == kLogSoftmax;
  const int tx = threadIdx.x, ty = threadIdx.y, TX = blockDim.x, TY = blockDim.y;
  for (int64_t b = blockIdx.x; b < outer * tiles; b += gridDim.x) {
    const int64_t o = b / tiles, tile = b - o * tiles;
    const int64_t col = (tile * TX + tx) * V;
    const bool active = col < inner;
    const int64_t base = o * len * inner + col;
    St s[V];
#pragma unroll
    for (int l = 0; l < V; ++l) s[l] = st_init(k);
    if (active)
      for (int64_t j = ty; j < len; j += TY) {
        const Pack<T, V> v = load<T, V>(x + base + j * inner);
#pragma unroll
        for (int l = 0; l < V; ++l) st_step(k, s[l], to_f(v.v[l]));
      }
#pragma unroll
    for (int l = 0; l < V; ++l) tree[(l * TY + ty) * TX + tx] = s[l];
    for (int h = TY / 2; h > 0; h >>= 1) {
      __syncthreads();
      if (ty < h) {
#pragma unroll
        for (int l = 0; l < V; ++l)
          st_merge(k, tree[(l * TY + ty) * TX + tx], tree[(l * TY + ty + h) * TX + tx]);
      }
    }
    __syncthreads();
#pragma unroll
    for (int l = 0; l < V; ++l) s[l] = tree[l * TY * TX + tx];
    __syncthreads();  // the tree is rewritten by the next block index
    if (!active) continue;
    if (!soft) {
      if (ty == 0) {
        Pack<T, V> out;
#pragma unroll
        for (int l = 0; l < V; ++l) out.v[l] = from_f<T>(st_finish(mode, s[l], len));
        store<T, V>(y + o * inner + col, out);
      }
      continue;
    }
    float log_b[V];
#pragma unroll
    for (int l = 0; l < V; ++l) log_b[l] = logf(s[l].b);
    for (int64_t j = ty; j < len; j += TY) {
      const Pack<T, V> v = load<T, V>(x + base + j * inner);
      Pack<T, V> out;
#pragma unroll
      for (int l = 0; l < V; ++l)
        out.v[l] = from_f<T>(soft_out(mode, to_f(v.v[l]), s[l], log_b[l]));
      store<T, V>(y + base + j * inner, out);
    }
  }
}

template <class T, int V>
void launch_row(int mode, const T* x, T* y, int64_t outer, int64_t len, cudaStream_t stream) {
  const int64_t units = len / V;
  const int tpr = static_cast<int>(std::clamp<int64_t>(next_pow2(ceil_div(units, 2)), 32, 1024));
  const dim3 block(static_cast<unsigned>(tpr), tpr == 32 ? 4u : 1u);
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(ceil_div(outer, block.y), 1 << 30));
  row_kernel<T, V><<<grid, block, 0, stream>>>(mode, x, y, outer, len);
}

template <class T, int V>
void launch_col_block(int mode, const T* x, T* y, int64_t outer, int64_t len, int64_t inner,
                      cudaStream_t stream) {
  const int64_t inner_v = inner / V;
  // Threads x cover at least one 32-byte sector of a row (DRAM moves whole sectors).
  const int64_t tx_min = std::clamp<int64_t>(32 / static_cast<int64_t>(V * sizeof(T)), 1, 32);
  int64_t tx = std::min<int64_t>(32, next_pow2(inner_v));
  const int64_t sms = sm_count();
  while (tx > tx_min && outer * ceil_div(inner_v, tx) < 2 * sms) tx >>= 1;
  const int64_t tiles = ceil_div(inner_v, tx);
  const int64_t blocks = outer * tiles;
  // Few blocks and a long axis: up to 1024 threads per block; shared memory stays <= 32 KB.
  int64_t ty_cap = (blocks < sms && len >= 1024) ? 1024 / tx : kThreads / tx;
  ty_cap = std::max<int64_t>(1, std::min<int64_t>(ty_cap, 4096 / (V * tx)));
  const int64_t ty = std::min<int64_t>(next_pow2(std::max<int64_t>(len, 1)), ty_cap);
  const dim3 block(static_cast<unsigned>(tx), static_cast<unsigned>(ty));
  const size_t shmem = static_cast<size_t>(tx * ty * V) * sizeof(St);
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(blocks, 1 << 30));
  col_block_kernel<T, V><<<grid, block, shmem, stream>>>(mode, x, y, outer, len, inner, tiles);
}

/// Every reduction-shaped op: picks the launch shape (see the file comment).
void run_rows(const char* fn, int mode, DType dt, const void* xv, void* yv, int64_t outer,
              int64_t len, int64_t inner, cudaStream_t stream) {
  if (outer < 0 || len < 0 || inner < 0)
    fail(fn, "negative size [" + std::to_string(outer) + ", " + std::to_string(len) + ", " +
                 std::to_string(inner) + "]");
  const bool soft = mode == kSoftmax || mode == kLogSoftmax;
  if (outer == 0 || inner == 0 || (soft && len == 0)) return;
  dispatch(dt, fn, [&](auto tag) {
    using T = decltype(tag);
    constexpr int VW = 16 / sizeof(T);
    const T* x = static_cast<const T*>(xv);
    T* y = static_cast<T*>(yv);
    const bool al = aligned16(x) && aligned16(y);
    if (len <= 16) {
      col_thread_kernel<T>
          <<<grid_for(outer * inner), kThreads, 0, stream>>>(mode, x, y, outer, len, inner);
    } else if (inner == 1) {
      if (len % VW == 0 && al)
        launch_row<T, VW>(mode, x, y, outer, len, stream);
      else
        launch_row<T, 1>(mode, x, y, outer, len, stream);
    } else {
      if (inner % VW == 0 && al)
        launch_col_block<T, VW>(mode, x, y, outer, len, inner, stream);
      else
        launch_col_block<T, 1>(mode, x, y, outer, len, inner, stream);
    }
  });
  check_launch(fn);
}

}  // namespace

// ---- launchers --------------------------------------------------------------------------------

void pool2d_nhwc(const Pool2d& p, DType dt, const void* x, void* y, cudaStream_t stream) {
  const char* fn = "pool2d_nhwc";
  if (p.n < 0 || p.c < 0 || p.h < 0 || p.w < 0 || p.oh < 0 || p.ow < 0) fail(fn, "negative size");
  if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1)
    fail(fn, "kernel, strides and dilations must be >= 1", "kernel_shape");
  if (p.pad_top < 0 || p.pad_left < 0 || p.pad_bottom < 0 || p.pad_right < 0)
    fail(fn, "pads must be >= 0", "pads");
  const int64_t out_total = int64_t{p.n} * p.oh * p.ow * p.c;
  if (out_total == 0) return;
  const int64_t in_total = int64_t{p.n} * p.h * p.w * p.c;
  dispatch(dt, fn, [&](auto tag) {
    using T = decltype(tag);
    constexpr int VW = 16 / sizeof(T);
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    const bool small = std::max(in_total, out_total) < INT32_MAX;
    if (p.c % VW == 0 && aligned16(x) && aligned16(y)) {
      const int64_t total = out_total / VW;
      if (small)
        pool2d_kernel<T, VW, int32_t><<<grid_for(total), kThreads, 0, stream>>>(p, xt, yt, total);
      else
        pool2d_kernel<T, VW, int64_t><<<grid_for(total), kThreads, 0, stream>>>(p, xt, yt, total);
    } else if (small) {
      pool2d_kernel<T, 1, int32_t>
          <<<grid_for(out_total), kThreads, 0, stream>>>(p, xt, yt, out_total);
    } else {
      pool2d_kernel<T, 1, int64_t>
          <<<grid_for(out_total), kThreads, 0, stream>>>(p, xt, yt, out_total);
    }
  });
  check_launch(fn);
}

void global_pool_nhwc(bool max, int n, int64_t hw, int c, DType dt, const void* x, void* y,
                      cudaStream_t stream) {
  run_rows("global_pool_nhwc", max ? kMax : kMeanOr0, dt, x, y, n, hw, c, stream);
}

void lrn_nhwc(int64_t pixels, int c, int size, float alpha, float beta, float bias, DType dt,
              const void* x, void* y, cudaStream_t stream) {
  const char* fn = "lrn_nhwc";
  if (pixels < 0 || c < 0) fail(fn, "negative size");
  if (size < 1) fail(fn, "size must be >= 1, found " + std::to_string(size), "size");
  const int64_t total = pixels * c;
  if (total == 0) return;
  const int lo = (size - 1) / 2, hi = size - 1 - lo;
  const float a = alpha / static_cast<float>(size);
  dispatch(dt, fn, [&](auto tag) {
    using T = decltype(tag);
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    if (total < INT32_MAX)
      lrn_kernel<T, int32_t>
          <<<grid_for(total), kThreads, 0, stream>>>(xt, yt, total, c, lo, hi, a, beta, bias);
    else
      lrn_kernel<T, int64_t>
          <<<grid_for(total), kThreads, 0, stream>>>(xt, yt, total, c, lo, hi, a, beta, bias);
  });
  check_launch(fn);
}

void resize_nhwc(const Resize2d& r, DType dt, const void* x, void* y, cudaStream_t stream) {
  const char* fn = "resize_nhwc";
  if (r.n < 0 || r.c < 0 || r.h < 0 || r.w < 0 || r.oh < 0 || r.ow < 0) fail(fn, "negative size");
  if (r.mode != 0 && r.mode != 1) fail(fn, "mode must be 0 (nearest) or 1 (bilinear)", "mode");
  if (r.nearest_round < 0 || r.nearest_round > 3)
    fail(fn, "nearest_round must be 0..3", "nearest_mode");
  const int64_t out_total = int64_t{r.n} * r.oh * r.ow * r.c;
  if (out_total == 0) return;
  const int64_t in_total = int64_t{r.n} * r.h * r.w * r.c;
  if (in_total == 0) fail(fn, "cannot resize an empty image to a non-empty one", "X");
  dispatch(dt, fn, [&](auto tag) {
    using T = decltype(tag);
    constexpr int VW = 16 / sizeof(T);
    const T* xt = static_cast<const T*>(x);
    T* yt = static_cast<T*>(y);
    const bool small = std::max(in_total, out_total) < INT32_MAX;
    if (r.c % VW == 0 && aligned16(x) && aligned16(y)) {
      const int64_t total = out_total / VW;
      if (small)
        resize_kernel<T, VW, int32_t><<<grid_for(total), kThreads, 0, stream>>>(r, xt, yt, total);
      else
        resize_kernel<T, VW, int64_t><<<grid_for(total), kThreads, 0, stream>>>(r, xt, yt, total);
    } else if (small) {
      resize_kernel<T, 1, int32_t>
          <<<grid_for(out_total), kThreads, 0, stream>>>(r, xt, yt, out_total);
    } else {
      resize_kernel<T, 1, int64_t>
          <<<grid_for(out_total), kThreads, 0, stream>>>(r, xt, yt, out_total);
    }
  });
  check_launch(fn);
}

void softmax(bool log, DType dt, const void* x, void* y, int64_t outer, int64_t len, int64_t inner,
             cudaStream_t stream) {
  run_rows(log ? "log_softmax" : "softmax", log ? kLogSoftmax : kSoftmax, dt, x, y, outer, len,
           inner, stream);
}

void reduce(int kind, DType dt, const void* x, void* y, int64_t outer, int64_t len, int64_t inner,
            cudaStream_t stream) {
  if (kind < kSum || kind > kLogSumExp)
    fail("reduce", "unknown reduction kind " + std::to_string(kind) + " (0..7)", "kind");
  run_rows("reduce", kind, dt, x, y, outer, len, inner, stream);
}

}  // namespace anvil::cuda
