// Host and device helpers shared by the cuda backend's elementwise kernel files
// (kernels_elementwise.cu: unary, binary, channel affine; kernels_copy.cu: strided copy,
// transpose, fill): launch checks, grid sizing, float packs, and the simplified index spaces
// with 32-bit multiply-shift dividers (see kernels_elementwise.cu's header comment).
#pragma once

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
#include "backend/cuda/kernels.h"

namespace anvil::cuda {

namespace test_hooks {
extern bool g_force_index64;  // kernels_elementwise.cu
}  // namespace test_hooks

namespace {

constexpr int kBlock = 256;

[[noreturn]] inline void fail(const std::string& msg) {
  throw Error("cuda: " + msg, {}, {}, "cuda");
}

inline void check_launch(const char* kernel, DType dt) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    check_cuda(e, (std::string(kernel) + " launch (" + dtype_name(dt) + ")").c_str());
}

// Blocks for `work` items: enough for one item per thread, at most 8 blocks per SM (a full
// wave at 2048 threads/SM); the kernels loop over the rest.
inline unsigned grid_for(int64_t work) {
  static thread_local int cached_dev = -1, cached_sms = 0;
  int dev = 0;
  ANVIL_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev != cached_dev) {
    int sms = 0;
    ANVIL_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cached_dev = dev;
    cached_sms = sms > 0 ? sms : 1;
  }
  const int64_t want = (work + kBlock - 1) / kBlock;
  const int64_t cap = static_cast<int64_t>(cached_sms) * 8;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(want, cap)));
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- element conversions --------------------------------------------------------------------

template <class T>
struct Num {
  static __device__ __forceinline__ float to(T v) { return to_f(v); }
  static __device__ __forceinline__ T from(float v) { return from_f<T>(v); }
};

template <class T, int V>
__device__ __forceinline__ void load_f(const T* p, float (&f)[V]) {
  const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V>*>(p);
#pragma unroll
  for (int j = 0; j < V; ++j) f[j] = Num<T>::to(pk.v[j]);
}

template <class T, int V>
__device__ __forceinline__ void store_f(T* p, const float (&f)[V]) {
  Pack<T, V> pk;
#pragma unroll
  for (int j = 0; j < V; ++j) pk.v[j] = Num<T>::from(f[j]);
  *reinterpret_cast<Pack<T, V>*>(p) = pk;
}

// ---- index math -----------------------------------------------------------------------------

// n / d for n < 2^31, d in [1, 2^31) by multiply-high and shift (the round-up method).
template <class Index>
struct Divider;
template <>
struct Divider<uint32_t> {
  uint32_t m = 0, s = 0;
  void init(uint32_t d) {
    for (s = 0; s < 32; ++s)
      if ((uint64_t{1} << s) >= d) break;
    const uint64_t magic = ((uint64_t{1} << 32) * ((uint64_t{1} << s) - d)) / d + 1;
    m = static_cast<uint32_t>(magic);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};
template <>
struct Divider<uint64_t> {
  uint64_t d = 1;
  void init(uint64_t dd) { d = dd; }
  __device__ __forceinline__ uint64_t div(uint64_t n) const { return n / d; }
};

template <class Index>
using OffsetOf = std::conditional_t<sizeof(Index) == 4, int32_t, int64_t>;

// A simplified index space of `rank` dims and K operands' strides (elements, may be < 0).
template <class Index, int K>
struct Meta {
  using Off = OffsetOf<Index>;
  int rank = 1;
  Index size[kMaxRank] = {};
  Divider<Index> div[kMaxRank];
  Off st[K][kMaxRank] = {};
};

template <class Index, int K>
__device__ __forceinline__ void offsets(const Meta<Index, K>& m, Index lin,
                                        OffsetOf<Index> (&o)[K]) {
  using Off = OffsetOf<Index>;
#pragma unroll
  for (int k = 0; k < K; ++k) o[k] = 0;
#pragma unroll
  for (int d = kMaxRank - 1; d >= 1; --d) {
    if (d < m.rank) {
      const Index q = m.div[d].div(lin);
      const Off idx = static_cast<Off>(lin - q * m.size[d]);
#pragma unroll
      for (int k = 0; k < K; ++k) o[k] += idx * m.st[k][d];
      lin = q;
    }
  }
#pragma unroll
  for (int k = 0; k < K; ++k) o[k] += static_cast<Off>(lin) * m.st[k][0];
}

// Host: the index space with size-1 dims dropped and contiguous neighbours merged.
template <int K>
struct Dims {
  int rank = 0;
  int64_t size[kMaxRank] = {};
  int64_t st[K][kMaxRank] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= size[d];
    return n;
  }
  // Largest |offset| reachable by operand k.
  int64_t extent(int k) const {
    int64_t e = 0;
    for (int d = 0; d < rank; ++d) {
      const int64_t s = st[k][d] < 0 ? -st[k][d] : st[k][d];
      e += (size[d] - 1) * s;
    }
    return e;
  }
};

template <int K>
Dims<K> simplify(const Dims<K>& in) {
  Dims<K> out;
  // Walk from the innermost dim outwards; out is built innermost-first, then reversed.
  for (int d = in.rank - 1; d >= 0; --d) {
    if (in.size[d] == 1) continue;
    if (out.rank > 0) {
      const int c = out.rank - 1;
      bool merge = true;
      for (int k = 0; k < K; ++k)
        if (in.st[k][d] != out.st[k][c] * out.size[c]) merge = false;
      if (merge) {
        out.size[c] *= in.size[d];
        continue;
      }
    }
    out.size[out.rank] = in.size[d];
    for (int k = 0; k < K; ++k) out.st[k][out.rank] = in.st[k][d];
    ++out.rank;
  }
  if (out.rank == 0) {  // a single element
    out.rank = 1;
    out.size[0] = 1;
    for (int k = 0; k < K; ++k) out.st[k][0] = 0;
    return out;
  }
  Dims<K> r;
  r.rank = out.rank;
  for (int d = 0; d < out.rank; ++d) {
    r.size[d] = out.size[out.rank - 1 - d];
    for (int k = 0; k < K; ++k) r.st[k][d] = out.st[k][out.rank - 1 - d];
  }
  return r;
}

template <class Index, int K>
Meta<Index, K> make_meta(const Dims<K>& d) {
  using Off = OffsetOf<Index>;
  Meta<Index, K> m;
  m.rank = d.rank;
  for (int i = 0; i < d.rank; ++i) {
    m.size[i] = static_cast<Index>(d.size[i]);
    m.div[i].init(static_cast<Index>(d.size[i]));
    for (int k = 0; k < K; ++k) m.st[k][i] = static_cast<Off>(d.st[k][i]);
  }
  return m;
}

// 32-bit index math when every linear index and every offset stays below 2^31.
template <int K>
bool fits32(const Dims<K>& d) {
  if (test_hooks::g_force_index64) return false;
  constexpr int64_t lim = int64_t{1} << 31;
  if (d.numel() >= lim) return false;
  for (int k = 0; k < K; ++k)
    if (d.extent(k) >= lim) return false;
  return true;
}

inline void check_rank(int rank, const char* what) {
  if (rank < 0 || rank > kMaxRank)
    fail(std::string(what) + ": rank " + std::to_string(rank) + " outside [0, " +
         std::to_string(kMaxRank) + "]");
}

inline bool float_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

inline void require_float(DType dt, const char* what) {
  if (!float_dtype(dt))
    fail(std::string(what) + ": dtype " + dtype_name(dt) + " is not f32, f16 or bf16");
}

inline bool device_dtype(DType t) {
  switch (t) {
    case DType::f32:
    case DType::f16:
    case DType::bf16:
    case DType::i32:
    case DType::i64:
    case DType::u8:
    case DType::i8:
    case DType::boolean:
      return true;
    default:
      return false;
  }
}

}  // namespace
}  // namespace anvil::cuda
