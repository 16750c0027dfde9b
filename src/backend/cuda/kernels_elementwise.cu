// Elementwise kernels of the cuda backend (kernels.h): unary activations/math, broadcasting
// binaries with a fused activation, strided copies with dtype conversion, fill and the
// per-channel affine (folded BatchNormalization).
//
// Layout of the work:
// - Arithmetic is done in float for f32/f16/bf16 (accurate libdevice functions, never the
//   __expf-style fast paths); f16/bf16 results are rounded once, to nearest even.
// - Contiguous data moves in 16-byte packs (4 floats, 8 halves) when the pointers are 16-byte
//   aligned; the tail is done element by element.
// - Broadcast and strided index spaces are simplified on the host before launch: size-1 dims
//   are dropped and adjacent dims that are contiguous in every operand are merged, so most
//   calls end up rank 1 (same shape or scalar) or rank 2 (per-channel NHWC [P, C]).
//   The remaining dims are decomposed with precomputed multiply-shift dividers in 32-bit
//   arithmetic whenever every index and offset fits in 31 bits; 64-bit math otherwise.
// - Grid-stride loops over at most (SM count x 8) blocks of 256 threads.
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
#include "backend/cuda/kernels.h"
#include "backend/cuda/device_util.cuh"

namespace anvil::cuda {

namespace test_hooks {
// Test hook (declared by tests/cuda/test_kernels_elementwise.cpp): forces the 64-bit index
// kernels so that they are exercised without multi-GiB tensors.
bool g_force_index64 = false;
void force_index64(bool on) { g_force_index64 = on; }
}  // namespace test_hooks

namespace {

constexpr int kBlock = 256;

[[noreturn]] void fail(const std::string& msg) { throw Error("cuda: " + msg, {}, {}, "cuda"); }

void check_launch(const char* kernel, DType dt) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) check_cuda(e, (std::string(kernel) + " launch (" + dtype_name(dt) + ")").c_str());
}

// Blocks for `work` items: enough for one item per thread, at most 8 blocks per SM (a full
// wave at 2048 threads/SM); the kernels loop over the rest.
unsigned grid_for(int64_t work) {
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

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

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

// ---- unary functions (ONNX semantics, float arithmetic) -------------------------------------

__device__ __forceinline__ float sigmoid_f(float x) {
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  const float e = expf(x);
  return e / (1.f + e);
}

__device__ __forceinline__ float softplus_f(float x) {
  return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

// Every Unary; comparisons keep NaN where the reference (plain comparisons) keeps it.
__device__ __noinline__ float unary_f(Unary op, float a, float b, float x) {
  switch (op) {
    case Unary::Identity: return x;
    case Unary::Relu: return x < 0.f ? 0.f : x;
    case Unary::LeakyRelu: return x >= 0.f ? x : a * x;
    case Unary::Elu: return x >= 0.f ? x : a * expm1f(x);
    case Unary::Selu: return x > 0.f ? b * x : b * (a * expm1f(x));
    case Unary::Celu: return fmaxf(0.f, x) + fminf(0.f, a * expm1f(x / a));
    case Unary::Sigmoid: return sigmoid_f(x);
    case Unary::HardSigmoid: {
      const float v = fmaf(a, x, b);
      return v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
    }
    case Unary::HardSwish: {
      // x * clamp(x/6 + 1/2, 0, 1), as (x + 3) / 6: exact near x = -3 (no cancellation).
      const float v = (x + 3.f) / 6.f;
      return x * (v < 0.f ? 0.f : (v > 1.f ? 1.f : v));
    }
    case Unary::Tanh: return tanhf(x);
    case Unary::Clip: {
      float v = x < a ? a : x;
      return v > b ? b : v;
    }
    case Unary::Softplus: return softplus_f(x);
    case Unary::Softsign: return x / (1.f + fabsf(x));
    case Unary::Exp: return expf(x);
    case Unary::Log: return logf(x);
    case Unary::Sqrt: return sqrtf(x);
    case Unary::Rsqrt: return 1.f / sqrtf(x);
    case Unary::Abs: return fabsf(x);
    case Unary::Neg: return -x;
    case Unary::Reciprocal: return 1.f / x;
    // 0.5 x (1 + erf(x/sqrt2)) = 0.5 x erfc(-x/sqrt2): no cancellation for negative x.
    case Unary::Gelu: return 0.5f * x * erfcf(-x * 0.70710678118654752f);
    case Unary::GeluTanh: {
      // 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
      const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
      return x * sigmoid_f(2.f * u);
    }
    case Unary::Mish: return x * tanhf(softplus_f(x));
    case Unary::Silu: return x * sigmoid_f(x);
    case Unary::Floor: return floorf(x);
    case Unary::Ceil: return ceilf(x);
    case Unary::Round: return rintf(x);  // current rounding mode: nearest, halves to even
    case Unary::Erf: return erff(x);
    case Unary::Sin: return sinf(x);
    case Unary::Cos: return cosf(x);
    case Unary::Sign: return x > 0.f ? 1.f : (x < 0.f ? -1.f : x);
    case Unary::ThresholdedRelu: return x > a ? x : 0.f;
    case Unary::Pow: return powf(x, a);
    case Unary::Affine: return fmaf(a, x, b);
  }
  return x;
}

// Functors for the unary kernel: the hot activations inline, everything else through the
// (non-inlined) switch above.
struct ReluF {
  __device__ __forceinline__ float operator()(float x) const { return x < 0.f ? 0.f : x; }
};
struct ClipF {
  float lo, hi;
  __device__ __forceinline__ float operator()(float x) const {
    float v = x < lo ? lo : x;
    return v > hi ? hi : v;
  }
};
struct AnyF {
  Unary op;
  float a, b;
  __device__ __forceinline__ float operator()(float x) const { return unary_f(op, a, b, x); }
};

// Fused activation after a binary or an affine: Identity and Relu inline.
struct Post {
  Unary op;
  float a, b;
  __device__ __forceinline__ float operator()(float v) const {
    if (op == Unary::Identity) return v;
    if (op == Unary::Relu) return v < 0.f ? 0.f : v;
    return unary_f(op, a, b, v);
  }
};

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

void check_rank(int rank, const char* what) {
  if (rank < 0 || rank > kMaxRank)
    fail(std::string(what) + ": rank " + std::to_string(rank) + " outside [0, " +
         std::to_string(kMaxRank) + "]");
}

// ---- unary ----------------------------------------------------------------------------------

template <class T, int V, class Index, class F>
__global__ void __launch_bounds__(kBlock) unary_kernel(const T* x, T* y, Index n, F f) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  const Index t = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  const Index nv = n / V;
  for (Index i = t; i < nv; i += stride) {
    float v[V];
    load_f<T, V>(x + i * V, v);
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = f(v[j]);
    store_f<T, V>(y + i * V, v);
  }
  if (V > 1)
    for (Index i = nv * V + t; i < n; i += stride) y[i] = Num<T>::from(f(Num<T>::to(x[i])));
}

template <class T, class F>
void launch_unary(const void* xv, void* yv, int64_t n, F f, cudaStream_t s, DType dt) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  constexpr int V = 16 / sizeof(T);
  const bool vec = aligned16(x) && aligned16(y);
  const bool small = n < (int64_t{1} << 31) - 16 && !test_hooks::g_force_index64;
  if (vec) {
    const unsigned g = grid_for((n + V - 1) / V);
    if (small)
      unary_kernel<T, V, uint32_t><<<g, kBlock, 0, s>>>(x, y, static_cast<uint32_t>(n), f);
    else
      unary_kernel<T, V, uint64_t><<<g, kBlock, 0, s>>>(x, y, static_cast<uint64_t>(n), f);
  } else {
    const unsigned g = grid_for(n);
    if (small)
      unary_kernel<T, 1, uint32_t><<<g, kBlock, 0, s>>>(x, y, static_cast<uint32_t>(n), f);
    else
      unary_kernel<T, 1, uint64_t><<<g, kBlock, 0, s>>>(x, y, static_cast<uint64_t>(n), f);
  }
  check_launch("unary_kernel", dt);
}

template <class T>
void unary_t(Unary op, float alpha, float beta, const void* x, void* y, int64_t n,
             cudaStream_t s, DType dt) {
  switch (op) {
    case Unary::Relu: launch_unary<T>(x, y, n, ReluF{}, s, dt); return;
    case Unary::Clip: launch_unary<T>(x, y, n, ClipF{alpha, beta}, s, dt); return;
    default: launch_unary<T>(x, y, n, AnyF{op, alpha, beta}, s, dt); return;
  }
}

// ---- binary ---------------------------------------------------------------------------------

struct AddOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct SubOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a - b; }
};
struct MulOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a * b; }
};
struct DivOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a / b; }
};
struct PowOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return powf(a, b); }
};
struct MaxOp {  // NaN in either input gives NaN (as the reference's Max)
  __device__ __forceinline__ float operator()(float a, float b) const {
    return (a > b || a != a) ? a : b;
  }
};
struct MinOp {
  __device__ __forceinline__ float operator()(float a, float b) const {
    return (a < b || a != a) ? a : b;
  }
};
struct PReluOp {
  __device__ __forceinline__ float operator()(float a, float b) const {
    return a >= 0.f ? a : a * b;
  }
};

// Output chunk c covers V consecutive output elements along the innermost dim (whose size the
// host divided by V); operand k loads a V-pack when vec[k] (inner stride 1, aligned) and
// one element broadcast over the pack otherwise (inner stride 0). Rank-1 spaces whose size
// is not a multiple of V finish with an element loop over [tail_begin, n) with element
// strides ta, tb.
template <class T, int V, class Index, class Op>
__global__ void __launch_bounds__(kBlock)
    binary_kernel(const T* a, const T* b, T* y, Meta<Index, 2> m, Index chunks, bool a_vec,
                  bool b_vec, Index tail_begin, Index n, OffsetOf<Index> ta,
                  OffsetOf<Index> tb, Op op, Post post) {
  using Off = OffsetOf<Index>;
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  const Index t = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (Index c = t; c < chunks; c += stride) {
    Off o[2];
    offsets(m, c, o);
    float fa[V], fb[V], r[V];
    if (V > 1 && a_vec) {
      load_f<T, V>(a + o[0], fa);
    } else {
      const float s = Num<T>::to(a[o[0]]);
#pragma unroll
      for (int j = 0; j < V; ++j) fa[j] = s;
    }
    if (V > 1 && b_vec) {
      load_f<T, V>(b + o[1], fb);
    } else {
      const float s = Num<T>::to(b[o[1]]);
#pragma unroll
      for (int j = 0; j < V; ++j) fb[j] = s;
    }
#pragma unroll
    for (int j = 0; j < V; ++j) r[j] = post(op(fa[j], fb[j]));
    store_f<T, V>(y + c * V, r);
  }
  for (Index i = tail_begin + t; i < n; i += stride) {
    const Off oi = static_cast<Off>(i);
    y[i] = Num<T>::from(post(op(Num<T>::to(a[oi * ta]), Num<T>::to(b[oi * tb]))));
  }
}

template <class T, class Op>
void launch_binary(const void* av, const void* bv, void* yv, const Dims<2>& d, Op op, Post post,
                   cudaStream_t s, DType dt) {
  const T* a = static_cast<const T*>(av);
  const T* b = static_cast<const T*>(bv);
  T* y = static_cast<T*>(yv);
  const int64_t n = d.numel();
  constexpr int V = 16 / sizeof(T);
  if (!fits32(d)) {
    const Meta<uint64_t, 2> m = make_meta<uint64_t>(d);
    binary_kernel<T, 1, uint64_t><<<grid_for(n), kBlock, 0, s>>>(
        a, b, y, m, static_cast<uint64_t>(n), false, false, static_cast<uint64_t>(n),
        static_cast<uint64_t>(n), 0, 0, op, post);
    check_launch("binary_kernel", dt);
    return;
  }
  // Vector packs along the innermost dim: every operand's inner stride is 0 or 1, packs do
  // not cross rows (rank > 1: inner size % V == 0; rank 1: a scalar tail instead), and
  // operands read as packs are 16-byte aligned at every pack (pointer aligned, strides of
  // the outer dims multiples of V).
  const int in = d.rank - 1;
  bool vec = aligned16(y) && (d.rank == 1 || d.size[in] % V == 0) && d.size[in] >= V;
  bool opv[2] = {false, false};
  const void* ptr[2] = {a, b};
  for (int k = 0; k < 2 && vec; ++k) {
    const int64_t si = d.st[k][in];
    if (si != 0 && si != 1) vec = false;
    opv[k] = si == 1;
    if (opv[k]) {
      if (!aligned16(ptr[k])) vec = false;
      for (int dd = 0; dd < in; ++dd)
        if (d.st[k][dd] % V != 0) vec = false;
    }
  }
  if (vec) {
    Dims<2> dv = d;
    dv.size[in] = d.size[in] / V;
    for (int k = 0; k < 2; ++k) dv.st[k][in] = d.st[k][in] * V;
    const Meta<uint32_t, 2> m = make_meta<uint32_t>(dv);
    const int64_t chunks = dv.numel();
    const int64_t tail = chunks * V;  // == n unless rank 1
    binary_kernel<T, V, uint32_t><<<grid_for(chunks), kBlock, 0, s>>>(
        a, b, y, m, static_cast<uint32_t>(chunks), opv[0], opv[1], static_cast<uint32_t>(tail),
        static_cast<uint32_t>(n), static_cast<int32_t>(d.st[0][0]),
        static_cast<int32_t>(d.st[1][0]), op, post);
  } else {
    const Meta<uint32_t, 2> m = make_meta<uint32_t>(d);
    binary_kernel<T, 1, uint32_t><<<grid_for(n), kBlock, 0, s>>>(
        a, b, y, m, static_cast<uint32_t>(n), false, false, static_cast<uint32_t>(n),
        static_cast<uint32_t>(n), 0, 0, op, post);
  }
  check_launch("binary_kernel", dt);
}

template <class T>
void binary_t(Binary op, const void* a, const void* b, void* y, const Dims<2>& d, Post post,
              cudaStream_t s, DType dt) {
  switch (op) {
    case Binary::Add: return launch_binary<T>(a, b, y, d, AddOp{}, post, s, dt);
    case Binary::Sub: return launch_binary<T>(a, b, y, d, SubOp{}, post, s, dt);
    case Binary::Mul: return launch_binary<T>(a, b, y, d, MulOp{}, post, s, dt);
    case Binary::Div: return launch_binary<T>(a, b, y, d, DivOp{}, post, s, dt);
    case Binary::Pow: return launch_binary<T>(a, b, y, d, PowOp{}, post, s, dt);
    case Binary::Max: return launch_binary<T>(a, b, y, d, MaxOp{}, post, s, dt);
    case Binary::Min: return launch_binary<T>(a, b, y, d, MinOp{}, post, s, dt);
    case Binary::PRelu: return launch_binary<T>(a, b, y, d, PReluOp{}, post, s, dt);
  }
  fail("binary: unknown op " + std::to_string(static_cast<int>(op)));
}

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
    case DType::f32: return {true, static_cast<const float*>(p)[o], 0};
    case DType::f16: return {true, __half2float(static_cast<const __half*>(p)[o]), 0};
    case DType::bf16: return {true, __bfloat162float(static_cast<const __nv_bfloat16*>(p)[o]), 0};
    case DType::i32: return {false, 0.f, static_cast<const int32_t*>(p)[o]};
    case DType::i64: return {false, 0.f, static_cast<const long long*>(p)[o]};
    case DType::u8: return {false, 0.f, static_cast<const uint8_t*>(p)[o]};
    case DType::i8: return {false, 0.f, static_cast<const int8_t*>(p)[o]};
    case DType::boolean: return {false, 0.f, static_cast<const uint8_t*>(p)[o] != 0 ? 1 : 0};
    default: break;
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
    case DType::f32: static_cast<float*>(p)[o] = f; return;
    case DType::f16: static_cast<__half*>(p)[o] = __float2half_rn(f); return;
    case DType::bf16: static_cast<__nv_bfloat16*>(p)[o] = __float2bfloat16_rn(f); return;
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
    default: return;
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
void launch_copy(const void* x, void* y, const Dims<2>& d, Copier cp, cudaStream_t s,
                 DType dt) {
  const int64_t n = d.numel();
  if (fits32(d)) {
    copy_kernel<uint32_t><<<grid_for(n), kBlock, 0, s>>>(x, y, make_meta<uint32_t>(d),
                                                         static_cast<uint32_t>(n), cp);
  } else {
    copy_kernel<uint64_t><<<grid_for(n), kBlock, 0, s>>>(x, y, make_meta<uint64_t>(d),
                                                         static_cast<uint64_t>(n), cp);
  }
  check_launch("strided_copy_kernel", dt);
}

// Batched 2-D transpose through shared memory, for copies where the destination's
// contiguous dim q is strided in the source and some other dim p is contiguous in the
// source (NCHW <-> NHWC with many channels): both the reads (along p) and the writes (along
// q) are coalesced. A 32x32 tile per block of 32x8 threads; the remaining dims are the batch.
struct TileDims {
  int64_t P = 1, Q = 1;            // sizes of p and q
  int64_t src_q = 0, dst_p = 0;    // source stride of q, destination stride of p
  int64_t tiles_q = 1, batch = 1;
};

template <class U, class Index>
__global__ void __launch_bounds__(256)
    transpose_kernel(const U* x, U* y, Meta<Index, 2> bm, Index P, Index Q,
                     OffsetOf<Index> src_q, OffsetOf<Index> dst_p, Index tiles_q, Index batch) {
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
      if (p < P && q < Q) tile[ty + j][tx] = x[o[0] + static_cast<Off>(p) + static_cast<Off>(q) * src_q];
    }
    __syncthreads();
#pragma unroll
    for (unsigned j = 0; j < 32; j += 8) {
      const Index p = p0 + ty + j, q = q0 + tx;
      if (p < P && q < Q) y[o[1] + static_cast<Off>(q) + static_cast<Off>(p) * dst_p] = tile[tx][ty + j];
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
    case 1: launch_transpose<uint8_t>(x, y, bd, t, wide, stream, dt); break;
    case 2: launch_transpose<uint16_t>(x, y, bd, t, wide, stream, dt); break;
    case 4: launch_transpose<uint32_t>(x, y, bd, t, wide, stream, dt); break;
    default: launch_transpose<unsigned long long>(x, y, bd, t, wide, stream, dt); break;
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

// ---- channel affine -------------------------------------------------------------------------

// Element e of [outer, c, inner] has channel (e / inner) % c. V-element packs either share
// one channel (inner % V == 0) or, when inner == 1, cover V consecutive channels (c % V == 0).
template <class T, int V, class Index>
__global__ void __launch_bounds__(kBlock)
    affine_kernel(const T* x, T* y, const float* __restrict__ scale,
                  const float* __restrict__ shift, Index chunks, Divider<Index> div_inner,
                  Divider<Index> div_c, Index c, bool per_elem_channel, Post post) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks;
       i += stride) {
    const Index e = i * V;
    const Index row = div_inner.div(e);
    const Index ch = row - div_c.div(row) * c;
    float v[V];
    load_f<T, V>(x + e, v);
    if (per_elem_channel) {
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] = post(fmaf(v[j], __ldg(scale + ch + j), __ldg(shift + ch + j)));
    } else {
      const float sc = __ldg(scale + ch), sh = __ldg(shift + ch);
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] = post(fmaf(v[j], sc, sh));
    }
    store_f<T, V>(y + e, v);
  }
}

template <class T, int V, class Index>
void launch_affine_v(const T* x, T* y, const float* scale, const float* shift, int64_t n,
                     int64_t c, int64_t inner, Post post, cudaStream_t s, DType dt) {
  Divider<Index> di, dc;
  di.init(static_cast<Index>(inner));
  dc.init(static_cast<Index>(c));
  const int64_t chunks = n / V;
  affine_kernel<T, V, Index><<<grid_for(chunks), kBlock, 0, s>>>(
      x, y, scale, shift, static_cast<Index>(chunks), di, dc, static_cast<Index>(c),
      inner == 1 && V > 1, post);
  check_launch("channel_affine_kernel", dt);
}

template <class T>
void affine_t(const void* xv, void* yv, const float* scale, const float* shift, int64_t outer,
              int64_t c, int64_t inner, Post post, cudaStream_t s, DType dt) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  const int64_t n = outer * c * inner;
  constexpr int V = 16 / sizeof(T);
  const bool vec = aligned16(x) && aligned16(y) &&
                   (inner % V == 0 || (inner == 1 && c % V == 0));
  const bool small = n < (int64_t{1} << 31) && !test_hooks::g_force_index64;
  if (small) {
    if (vec) return launch_affine_v<T, V, uint32_t>(x, y, scale, shift, n, c, inner, post, s, dt);
    return launch_affine_v<T, 1, uint32_t>(x, y, scale, shift, n, c, inner, post, s, dt);
  }
  return launch_affine_v<T, 1, uint64_t>(x, y, scale, shift, n, c, inner, post, s, dt);
}

bool float_dtype(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

void require_float(DType dt, const char* what) {
  if (!float_dtype(dt))
    fail(std::string(what) + ": dtype " + dtype_name(dt) + " is not f32, f16 or bf16");
}

bool device_dtype(DType t) {
  switch (t) {
    case DType::f32: case DType::f16: case DType::bf16: case DType::i32: case DType::i64:
    case DType::u8: case DType::i8: case DType::boolean: return true;
    default: return false;
  }
}

}  // namespace

// ---- launchers ------------------------------------------------------------------------------

void unary(Unary op, float alpha, float beta, DType dt, const void* x, void* y, int64_t n,
           cudaStream_t stream) {
  require_float(dt, "unary");
  if (n < 0) fail("unary: negative element count " + std::to_string(n));
  if (n == 0) return;
  if (op == Unary::Identity) {
    if (x != y)
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(y, x, static_cast<size_t>(n) * element_size(dt),
                                       cudaMemcpyDeviceToDevice, stream));
    return;
  }
  switch (dt) {
    case DType::f32: return unary_t<float>(op, alpha, beta, x, y, n, stream, dt);
    case DType::f16: return unary_t<__half>(op, alpha, beta, x, y, n, stream, dt);
    default: return unary_t<__nv_bfloat16>(op, alpha, beta, x, y, n, stream, dt);
  }
}

void binary(Binary op, DType dt, const void* a, const void* b, void* y, const Broadcast& d,
            Unary post, float post_alpha, float post_beta, cudaStream_t stream) {
  require_float(dt, "binary");
  check_rank(d.rank, "binary");
  Dims<2> in;
  in.rank = d.rank;
  for (int i = 0; i < d.rank; ++i) {
    if (d.shape[i] < 0) fail("binary: negative dim " + std::to_string(d.shape[i]));
    if (d.shape[i] == 0) return;
    if (d.a_stride[i] < 0 || d.b_stride[i] < 0) fail("binary: negative input stride");
    in.size[i] = d.shape[i];
    in.st[0][i] = d.a_stride[i];
    in.st[1][i] = d.b_stride[i];
  }
  const Dims<2> s = simplify(in);
  const Post p{post, post_alpha, post_beta};
  switch (dt) {
    case DType::f32: return binary_t<float>(op, a, b, y, s, p, stream, dt);
    case DType::f16: return binary_t<__half>(op, a, b, y, s, p, stream, dt);
    default: return binary_t<__nv_bfloat16>(op, a, b, y, s, p, stream, dt);
  }
}

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
  std::stable_sort(order, order + d.rank, [&](int p, int q) {
    return mag(d.dst_stride[p]) > mag(d.dst_stride[q]);
  });
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
      bool ok = s.size[in_d] % k == 0 &&
                reinterpret_cast<uintptr_t>(x) % (es * k) == 0 &&
                reinterpret_cast<uintptr_t>(y) % (es * k) == 0;
      for (int dd = 0; dd < in_d && ok; ++dd)
        ok = s.st[0][dd] % k == 0 && s.st[1][dd] % k == 0;
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
    case 1: return launch_copy(x, y, s, CopyBits<uint8_t>{}, stream, dst_dt);
    case 2: return launch_copy(x, y, s, CopyBits<uint16_t>{}, stream, dst_dt);
    case 4: return launch_copy(x, y, s, CopyBits<uint32_t>{}, stream, dst_dt);
    case 8: return launch_copy(x, y, s, CopyBits<unsigned long long>{}, stream, dst_dt);
    default: return launch_copy(x, y, s, CopyBits<uint4>{}, stream, dst_dt);
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
    case DType::f32: std::memcpy(&bits, &value, 4); break;
    case DType::f16: bits = float_to_half(value); break;
    case DType::bf16: bits = float_to_bf16(value); break;
    case DType::boolean: bits = value != 0.f ? 1 : 0; break;
    case DType::u8: bits = static_cast<uint8_t>(sat(0, 255)); break;
    case DType::i8: bits = static_cast<uint8_t>(static_cast<int8_t>(sat(-128, 127))); break;
    case DType::i32: {
      const int32_t v = static_cast<int32_t>(sat(-2147483648.0, 2147483647.0));
      std::memcpy(&bits, &v, 4);
      break;
    }
    default: {  // i64
      const double v = value;
      int64_t r = 0;
      if (v != v) r = 0;
      else if (v <= -9.2233720368547758e18) r = std::numeric_limits<int64_t>::min();
      else if (v >= 9.2233720368547758e18) r = std::numeric_limits<int64_t>::max();
      else r = static_cast<int64_t>(v);
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
    case 1: return launch_fill(static_cast<uint8_t*>(y), n, static_cast<uint8_t>(bits), stream, dt);
    case 2: return launch_fill(static_cast<uint16_t*>(y), n, static_cast<uint16_t>(bits), stream, dt);
    case 4: return launch_fill(static_cast<uint32_t*>(y), n, static_cast<uint32_t>(bits), stream, dt);
    default:
      return launch_fill(static_cast<unsigned long long*>(y), n,
                         static_cast<unsigned long long>(bits), stream, dt);
  }
}

void channel_affine(DType dt, const void* x, void* y, const float* scale, const float* shift,
                    int64_t outer, int64_t c, int64_t inner, Unary post, float post_alpha,
                    float post_beta, cudaStream_t stream) {
  require_float(dt, "channel_affine");
  if (outer < 0 || c < 0 || inner < 0)
    fail("channel_affine: negative extent [" + std::to_string(outer) + ", " + std::to_string(c) +
         ", " + std::to_string(inner) + "]");
  if (outer == 0 || c == 0 || inner == 0) return;
  const Post p{post, post_alpha, post_beta};
  switch (dt) {
    case DType::f32: return affine_t<float>(x, y, scale, shift, outer, c, inner, p, stream, dt);
    case DType::f16: return affine_t<__half>(x, y, scale, shift, outer, c, inner, p, stream, dt);
    default: return affine_t<__nv_bfloat16>(x, y, scale, shift, outer, c, inner, p, stream, dt);
  }
}

}  // namespace anvil::cuda
