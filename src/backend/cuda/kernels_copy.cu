// Copy kernels of the cuda backend (kernels.h): strided copies with dtype conversion (any
// layouts; a tiled transpose where the copy is one) and fill. Index spaces and helpers:
// elementwise_common.cuh (see kernels_elementwise.cu's header comment).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "anvil/error.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/elementwise_common.cuh"
#include "backend/cuda/kernels.h"

namespace anvil::cuda {
namespace {

// ---- strided copy ---------------------------------------------------------------------------

// Same dtype: moves U (1, 2, 4, 8 or 16 bytes: several elements when the host widened the
// innermost contiguous dim).
template <class U>
struct CopyBits {
  template <class Off>
  __device__ __forceinline__ void operator()(const void* x, Off so, void* y, Off dof) const {
    static_cast<U*>(y)[dof] = static_cast<const U*>(x)[so];
  }
};

// A loaded value: exact integer for integer/bool sources, float for float sources.
struct Val {
  bool is_f;
  float f;
  long long i;
};

template <class Off>
__device__ __forceinline__ Val load_val(DType t, const void* p, Off o) {
  switch (t) {
    case DType::f32:
      return {true, static_cast<const float*>(p)[o], 0};
    case DType::f16:
      return {true, __half2float(static_cast<const __half*>(p)[o]), 0};
    case DType::bf16:
      return {true, __bfloat162float(static_cast<const __nv_bfloat16*>(p)[o]), 0};
    case DType::i32:
      return {false, 0.f, static_cast<const int32_t*>(p)[o]};
    case DType::i64:
      return {false, 0.f, static_cast<const long long*>(p)[o]};
    case DType::u8:
      return {false, 0.f, static_cast<const uint8_t*>(p)[o]};
    case DType::i8:
      return {false, 0.f, static_cast<const int8_t*>(p)[o]};
    case DType::boolean:
      return {false, 0.f, static_cast<const uint8_t*>(p)[o] != 0 ? 1 : 0};
    default:
      break;
  }
  return {false, 0.f, 0};
}

// float -> integer as the reference's Cast: NaN 0, saturate at the type's range, truncate.
template <class I>
__device__ __forceinline__ I sat_int(float f) {
  const double v = f;
  if (v != v) return 0;
  if (v <= static_cast<double>(std::numeric_limits<I>::lowest()))
    return std::numeric_limits<I>::lowest();
  if (v >= static_cast<double>(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return static_cast<I>(v);
}

template <class Off>
__device__ __forceinline__ void store_val(DType t, void* p, Off o, Val v) {
  // integer -> float goes through double, as the reference (int64 -> double -> float).
  const float f = v.is_f ? v.f : static_cast<float>(static_cast<double>(v.i));
  switch (t) {
    case DType::f32:
      static_cast<float*>(p)[o] = f;
      return;
    case DType::f16:
      static_cast<__half*>(p)[o] = __float2half_rn(f);
      return;
    case DType::bf16:
      static_cast<__nv_bfloat16*>(p)[o] = __float2bfloat16_rn(f);
      return;
    case DType::boolean:
      static_cast<uint8_t*>(p)[o] = (v.is_f ? v.f != 0.f : v.i != 0) ? 1 : 0;
      return;
    case DType::i32:
      static_cast<int32_t*>(p)[o] = v.is_f ? sat_int<int32_t>(v.f) : static_cast<int32_t>(v.i);
      return;
    case DType::i64:
      static_cast<long long*>(p)[o] = v.is_f ? sat_int<long long>(v.f) : v.i;
      return;
    case DType::u8:
      static_cast<uint8_t*>(p)[o] = v.is_f ? sat_int<uint8_t>(v.f) : static_cast<uint8_t>(v.i);
      return;
    case DType::i8:
      static_cast<int8_t*>(p)[o] = v.is_f ? sat_int<int8_t>(v.f) : static_cast<int8_t>(v.i);
      return;
    default:
      return;
  }
}

struct Convert {
  DType src, dst;
  template <class Off>
  __device__ __forceinline__ void operator()(const void* x, Off so, void* y, Off dof) const {
    store_val(dst, y, dof, load_val(src, x, so));
  }
};

template <class Index, class Copier>
__global__ void __launch_bounds__(kBlock)
    copy_kernel(const void* x, void* y, Meta<Index, 2> m, Index n, Copier cp) {
  using Off = OffsetOf<Index>;
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    Off o[2];
    offsets(m, i, o);
    cp(x, o[0], y, o[1]);
  }
}

template <class Copier>
void launch_copy(const void* x, void* y, const Dims<2>& d, Copier cp, cudaStream_t s, DType dt) {
  const int64_t n = d.numel();
  if (fits32(d)) {
    copy_kernel<uint32_t>
        <<<grid_for(n), kBlock, 0, s>>>(x, y, make_meta<uint32_t>(d), static_cast<uint32_t>(n), cp);
  } else {
    copy_kernel<uint64_t>
        <<<grid_for(n), kBlock, 0, s>>>(x, y, make_meta<uint64_t>(d), static_cast<uint64_t>(n), cp);
  }
  check_launch("strided_copy_kernel", dt);
}

// Batched 2-D transpose through shared memory, for copies where the destination's
// contiguous dim q is strided in the source and some other dim p is contiguous in the
// source (NCHW <-> NHWC with many channels): both the reads (along p) and the writes (along
// q) are coalesced. A 32x32 tile per block of 32x8 threads; the remaining dims are the batch.
struct TileDims {
  int64_t P = 1, Q = 1;          // sizes of p and q
  int64_t src_q = 0, dst_p = 0;  // source stride of q, destination stride of p
  int64_t tiles_q = 1, batch = 1;
};

template <class U, class Index>
__global__ void __launch_bounds__(256)
    transpose_kernel(const U* x, U* y, Meta<Index, 2> bm, Index P, Index Q, OffsetOf<Index> src_q,
                     OffsetOf<Index> dst_p, Index tiles_q, Index batch) {
  using Off = OffsetOf<Index>;
  __shared__ U tile[32][33];
  const Index tp = static_cast<Index>(blockIdx.x) / tiles_q;
  const Index tq = static_cast<Index>(blockIdx.x) - tp * tiles_q;
  const Index p0 = tp * 32, q0 = tq * 32;
  const unsigned tx = threadIdx.x, ty = threadIdx.y;
  for (Index b = blockIdx.y; b < batch; b += gridDim.y) {
    Off o[2];
    offsets(bm, b, o);
#pragma unroll
    for (unsigned j = 0; j < 32; j += 8) {
      const Index p = p0 + tx, q = q0 + ty + j;
      if (p < P && q < Q)
        tile[ty + j][tx] = x[o[0] + static_cast<Off>(p) + static_cast<Off>(q) * src_q];
    }
    __syncthreads();
#pragma unroll
    for (unsigned j = 0; j < 32; j += 8) {
      const Index p = p0 + ty + j, q = q0 + tx;
      if (p < P && q < Q)
        y[o[1] + static_cast<Off>(q) + static_cast<Off>(p) * dst_p] = tile[tx][ty + j];
    }
    __syncthreads();
  }
}

template <class U>
void launch_transpose(const void* x, void* y, const Dims<2>& bd, const TileDims& t, bool wide,
                      cudaStream_t s, DType dt) {
  const int64_t tiles = ((t.P + 31) / 32) * t.tiles_q;
  const unsigned gy = static_cast<unsigned>(std::min<int64_t>(t.batch, 65535));
  const dim3 grid(static_cast<unsigned>(tiles), gy), block(32, 8);
  if (!wide) {
    transpose_kernel<U, uint32_t><<<grid, block, 0, s>>>(
        static_cast<const U*>(x), static_cast<U*>(y), make_meta<uint32_t>(bd),
        static_cast<uint32_t>(t.P), static_cast<uint32_t>(t.Q), static_cast<int32_t>(t.src_q),
        static_cast<int32_t>(t.dst_p), static_cast<uint32_t>(t.tiles_q),
        static_cast<uint32_t>(t.batch));
  } else {
    transpose_kernel<U, uint64_t><<<grid, block, 0, s>>>(
        static_cast<const U*>(x), static_cast<U*>(y), make_meta<uint64_t>(bd),
        static_cast<uint64_t>(t.P), static_cast<uint64_t>(t.Q), t.src_q, t.dst_p,
        static_cast<uint64_t>(t.tiles_q), static_cast<uint64_t>(t.batch));
  }
  check_launch("transpose_kernel", dt);
}

// The tiled transpose when it applies (see transpose_kernel): returns false otherwise.
bool try_transpose(const void* x, void* y, const Dims<2>& s, size_t es, cudaStream_t stream,
                   DType dt) {
  if (s.rank < 2 || es > 8) return false;
  const int q = s.rank - 1;
  if (s.st[1][q] != 1 || s.st[0][q] == 1 || s.st[0][q] == -1 || s.st[0][q] == 0) return false;
  int p = -1;
  for (int d = 0; d < q; ++d)
    if (s.st[0][d] == 1) p = d;
  if (p < 0 || s.size[p] < 16 || s.size[q] < 16) return false;
  TileDims t;
  t.P = s.size[p];
  t.Q = s.size[q];
  t.src_q = s.st[0][q];
  t.dst_p = s.st[1][p];
  t.tiles_q = (t.Q + 31) / 32;
  if (((t.P + 31) / 32) * t.tiles_q >= (int64_t{1} << 31)) return false;
  Dims<2> bd;  // the batch dims (every dim but p and q), rank >= 1
  for (int d = 0; d < q; ++d) {
    if (d == p) continue;
    bd.size[bd.rank] = s.size[d];
    bd.st[0][bd.rank] = s.st[0][d];
    bd.st[1][bd.rank] = s.st[1][d];
    ++bd.rank;
  }
  if (bd.rank == 0) {
    bd.rank = 1;
    bd.size[0] = 1;
  }
  t.batch = bd.numel();
  const bool wide = !fits32(s);
  switch (es) {
    case 1:
      launch_transpose<uint8_t>(x, y, bd, t, wide, stream, dt);
      break;
    case 2:
      launch_transpose<uint16_t>(x, y, bd, t, wide, stream, dt);
      break;
    case 4:
      launch_transpose<uint32_t>(x, y, bd, t, wide, stream, dt);
      break;
    default:
      launch_transpose<unsigned long long>(x, y, bd, t, wide, stream, dt);
      break;
  }
  return true;
}

// ---- fill -----------------------------------------------------------------------------------

template <class U, class Index>
__global__ void __launch_bounds__(kBlock) fill_kernel(U* y, Index n, U v) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = v;
}

template <class U>
void launch_fill(U* y, int64_t n, U v, cudaStream_t s, DType dt) {
  if (n < (int64_t{1} << 31) && !test_hooks::g_force_index64)
    fill_kernel<U, uint32_t><<<grid_for(n), kBlock, 0, s>>>(y, static_cast<uint32_t>(n), v);
  else
    fill_kernel<U, uint64_t><<<grid_for(n), kBlock, 0, s>>>(y, static_cast<uint64_t>(n), v);
  check_launch("fill_kernel", dt);
}

}  // namespace

// ---- launchers ------------------------------------------------------------------------------

void strided_copy(DType src_dt, const void* x, DType dst_dt, void* y, const Strided& d,
                  cudaStream_t stream) {
  if (!device_dtype(src_dt) || !device_dtype(dst_dt))
    fail(std::string("strided_copy: unsupported dtypes ") + dtype_name(src_dt) + " -> " +
         dtype_name(dst_dt));
  check_rank(d.rank, "strided_copy");
  // Dims in the order of the destination's strides (largest first, stable): consecutive
  // threads then write consecutive addresses (transposes, concat slices), and contiguous
  // destination runs merge.
  int order[kMaxRank];
  for (int i = 0; i < d.rank; ++i) {
    if (d.shape[i] < 0) fail("strided_copy: negative dim " + std::to_string(d.shape[i]));
    if (d.shape[i] == 0) return;
    order[i] = i;
  }
  auto mag = [](int64_t v) { return v < 0 ? -v : v; };
  std::stable_sort(order, order + d.rank,
                   [&](int p, int q) { return mag(d.dst_stride[p]) > mag(d.dst_stride[q]); });
  Dims<2> in;
  in.rank = d.rank;
  for (int i = 0; i < d.rank; ++i) {
    in.size[i] = d.shape[order[i]];
    in.st[0][i] = d.src_stride[order[i]];
    in.st[1][i] = d.dst_stride[order[i]];
  }
  Dims<2> s = simplify(in);
  if (src_dt != dst_dt) return launch_copy(x, y, s, Convert{src_dt, dst_dt}, stream, dst_dt);
  // Same dtype: raw bits. Widen the innermost dim when it is contiguous in both: k elements
  // move as one (up to 16-byte) word when the size, the outer strides and both pointers allow.
  size_t es = element_size(src_dt);
  if (try_transpose(x, y, s, es, stream, dst_dt)) return;
  const int in_d = s.rank - 1;
  if (s.st[0][in_d] == 1 && s.st[1][in_d] == 1) {
    for (int64_t k = static_cast<int64_t>(16 / es); k > 1; k /= 2) {
      bool ok = s.size[in_d] % k == 0 && reinterpret_cast<uintptr_t>(x) % (es * k) == 0 &&
                reinterpret_cast<uintptr_t>(y) % (es * k) == 0;
      for (int dd = 0; dd < in_d && ok; ++dd) ok = s.st[0][dd] % k == 0 && s.st[1][dd] % k == 0;
      if (!ok) continue;
      s.size[in_d] /= k;
      for (int dd = 0; dd < in_d; ++dd) {
        s.st[0][dd] /= k;
        s.st[1][dd] /= k;
      }
      es *= static_cast<size_t>(k);
      break;
    }
  }
  switch (es) {
    case 1:
      return launch_copy(x, y, s, CopyBits<uint8_t>{}, stream, dst_dt);
    case 2:
      return launch_copy(x, y, s, CopyBits<uint16_t>{}, stream, dst_dt);
    case 4:
      return launch_copy(x, y, s, CopyBits<uint32_t>{}, stream, dst_dt);
    case 8:
      return launch_copy(x, y, s, CopyBits<unsigned long long>{}, stream, dst_dt);
    default:
      return launch_copy(x, y, s, CopyBits<uint4>{}, stream, dst_dt);
  }
}

void fill(DType dt, void* y, int64_t n, float value, cudaStream_t stream) {
  if (!device_dtype(dt)) fail(std::string("fill: unsupported dtype ") + dtype_name(dt));
  if (n < 0) fail("fill: negative element count " + std::to_string(n));
  if (n == 0) return;
  // The element's bits, converted on the host with the rules of the reference Cast.
  const size_t es = element_size(dt);
  uint64_t bits = 0;
  auto sat = [&](double lo, double hi) -> double {
    const double v = value;
    if (v != v) return 0;
    return v <= lo ? lo : (v >= hi ? hi : v);
  };
  switch (dt) {
    case DType::f32:
      std::memcpy(&bits, &value, 4);
      break;
    case DType::f16:
      bits = float_to_half(value);
      break;
    case DType::bf16:
      bits = float_to_bf16(value);
      break;
    case DType::boolean:
      bits = value != 0.f ? 1 : 0;
      break;
    case DType::u8:
      bits = static_cast<uint8_t>(sat(0, 255));
      break;
    case DType::i8:
      bits = static_cast<uint8_t>(static_cast<int8_t>(sat(-128, 127)));
      break;
    case DType::i32: {
      const int32_t v = static_cast<int32_t>(sat(-2147483648.0, 2147483647.0));
      std::memcpy(&bits, &v, 4);
      break;
    }
    default: {  // i64
      const double v = value;
      int64_t r = 0;
      if (v != v)
        r = 0;
      else if (v <= -9.2233720368547758e18)
        r = std::numeric_limits<int64_t>::min();
      else if (v >= 9.2233720368547758e18)
        r = std::numeric_limits<int64_t>::max();
      else
        r = static_cast<int64_t>(v);
      std::memcpy(&bits, &r, 8);
      break;
    }
  }
  // Whole 16-byte words of the repeated pattern where y is aligned, elements for the rest.
  const int64_t per16 = static_cast<int64_t>(16 / es);
  if (aligned16(y) && n >= per16) {
    unsigned char buf[16];
    for (size_t off = 0; off < 16; off += es) std::memcpy(buf + off, &bits, es);
    uint4 w;
    std::memcpy(&w, buf, 16);
    const int64_t words = n / per16;
    launch_fill(static_cast<uint4*>(y), words, w, stream, dt);
    const int64_t done = words * per16;
    if (done == n) return;
    y = static_cast<unsigned char*>(y) + done * static_cast<int64_t>(es);
    n -= done;
  }
  switch (es) {
    case 1:
      return launch_fill(static_cast<uint8_t*>(y), n, static_cast<uint8_t>(bits), stream, dt);
    case 2:
      return launch_fill(static_cast<uint16_t*>(y), n, static_cast<uint16_t>(bits), stream, dt);
    case 4:
      return launch_fill(static_cast<uint32_t*>(y), n, static_cast<uint32_t>(bits), stream, dt);
    default:
      return launch_fill(static_cast<unsigned long long*>(y), n,
                         static_cast<unsigned long long>(bits), stream, dt);
  }
}

}  // namespace anvil::cuda
