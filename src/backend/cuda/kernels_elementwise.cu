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
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/elementwise_common.cuh"
#include "backend/cuda/kernels.h"

namespace anvil::cuda {

namespace test_hooks {
// Test hook (declared by tests/cuda/test_kernels_elementwise.cpp): forces the 64-bit index
// kernels so that they are exercised without multi-GiB tensors.
bool g_force_index64 = false;
void force_index64(bool on) { g_force_index64 = on; }
}  // namespace test_hooks

namespace {

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
    case Unary::Identity:
      return x;
    case Unary::Relu:
      return x < 0.f ? 0.f : x;
    case Unary::LeakyRelu:
      return x >= 0.f ? x : a * x;
    case Unary::Elu:
      return x >= 0.f ? x : a * expm1f(x);
    case Unary::Selu:
      return x > 0.f ? b * x : b * (a * expm1f(x));
    case Unary::Celu:
      if (x != x) return x;  // NaN stays NaN (fmaxf/fminf would drop it)
      return fmaxf(0.f, x) + fminf(0.f, a * expm1f(x / a));
    case Unary::Sigmoid:
      return sigmoid_f(x);
    case Unary::HardSigmoid: {
      const float v = fmaf(a, x, b);
      return v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
    }
    case Unary::HardSwish: {
      // x * clamp(x/6 + 1/2, 0, 1), as (x + 3) / 6: exact near x = -3 (no cancellation).
      const float v = (x + 3.f) / 6.f;
      return x * (v < 0.f ? 0.f : (v > 1.f ? 1.f : v));
    }
    case Unary::Tanh:
      return tanhf(x);
    case Unary::Clip: {
      float v = x < a ? a : x;
      return v > b ? b : v;
    }
    case Unary::Softplus:
      return softplus_f(x);
    case Unary::Softsign:
      return x / (1.f + fabsf(x));
    case Unary::Exp:
      return expf(x);
    case Unary::Log:
      return logf(x);
    case Unary::Sqrt:
      return sqrtf(x);
    case Unary::Rsqrt:
      return 1.f / sqrtf(x);
    case Unary::Abs:
      return fabsf(x);
    case Unary::Neg:
      return -x;
    case Unary::Reciprocal:
      return 1.f / x;
    // 0.5 x (1 + erf(x/sqrt2)) = 0.5 x erfc(-x/sqrt2): no cancellation for negative x.
    case Unary::Gelu:
      return 0.5f * x * erfcf(-x * 0.70710678118654752f);
    case Unary::GeluTanh: {
      // 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
      const float u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
      return x * sigmoid_f(2.f * u);
    }
    case Unary::Mish:
      return x * tanhf(softplus_f(x));
    case Unary::Silu:
      return x * sigmoid_f(x);
    case Unary::Floor:
      return floorf(x);
    case Unary::Ceil:
      return ceilf(x);
    case Unary::Round:
      return rintf(x);  // current rounding mode: nearest, halves to even
    case Unary::Erf:
      return erff(x);
    case Unary::Sin:
      return sinf(x);
    case Unary::Cos:
      return cosf(x);
    case Unary::Sign:
      return x > 0.f ? 1.f : (x < 0.f ? -1.f : x);
    case Unary::ThresholdedRelu:
      return (x > a || x != x) ? x : 0.f;  // NaN stays NaN, as the reference
    case Unary::Pow:
      return powf(x, a);
    case Unary::Affine:
      return fmaf(a, x, b);
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
void unary_t(Unary op, float alpha, float beta, const void* x, void* y, int64_t n, cudaStream_t s,
             DType dt) {
  switch (op) {
    case Unary::Relu:
      launch_unary<T>(x, y, n, ReluF{}, s, dt);
      return;
    case Unary::Clip:
      launch_unary<T>(x, y, n, ClipF{alpha, beta}, s, dt);
      return;
    default:
      launch_unary<T>(x, y, n, AnyF{op, alpha, beta}, s, dt);
      return;
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
                  bool b_vec, Index tail_begin, Index n, OffsetOf<Index> ta, OffsetOf<Index> tb,
                  Op op, Post post) {
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
    case Binary::Add:
      return launch_binary<T>(a, b, y, d, AddOp{}, post, s, dt);
    case Binary::Sub:
      return launch_binary<T>(a, b, y, d, SubOp{}, post, s, dt);
    case Binary::Mul:
      return launch_binary<T>(a, b, y, d, MulOp{}, post, s, dt);
    case Binary::Div:
      return launch_binary<T>(a, b, y, d, DivOp{}, post, s, dt);
    case Binary::Pow:
      return launch_binary<T>(a, b, y, d, PowOp{}, post, s, dt);
    case Binary::Max:
      return launch_binary<T>(a, b, y, d, MaxOp{}, post, s, dt);
    case Binary::Min:
      return launch_binary<T>(a, b, y, d, MinOp{}, post, s, dt);
    case Binary::PRelu:
      return launch_binary<T>(a, b, y, d, PReluOp{}, post, s, dt);
  }
  fail("binary: unknown op " + std::to_string(static_cast<int>(op)));
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
      for (int j = 0; j < V; ++j)
        v[j] = post(fmaf(v[j], __ldg(scale + ch + j), __ldg(shift + ch + j)));
    } else {
      const float sc = __ldg(scale + ch), sh = __ldg(shift + ch);
#pragma unroll
      for (int j = 0; j < V; ++j) v[j] = post(fmaf(v[j], sc, sh));
    }
    store_f<T, V>(y + e, v);
  }
}

template <class T, int V, class Index>
void launch_affine_v(const T* x, T* y, const float* scale, const float* shift, int64_t n, int64_t c,
                     int64_t inner, Post post, cudaStream_t s, DType dt) {
  Divider<Index> di, dc;
  di.init(static_cast<Index>(inner));
  dc.init(static_cast<Index>(c));
  const int64_t chunks = n / V;
  affine_kernel<T, V, Index>
      <<<grid_for(chunks), kBlock, 0, s>>>(x, y, scale, shift, static_cast<Index>(chunks), di, dc,
                                           static_cast<Index>(c), inner == 1 && V > 1, post);
  check_launch("channel_affine_kernel", dt);
}

template <class T>
void affine_t(const void* xv, void* yv, const float* scale, const float* shift, int64_t outer,
              int64_t c, int64_t inner, Post post, cudaStream_t s, DType dt) {
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  const int64_t n = outer * c * inner;
  constexpr int V = 16 / sizeof(T);
  const bool vec = aligned16(x) && aligned16(y) && (inner % V == 0 || (inner == 1 && c % V == 0));
  const bool small = n < (int64_t{1} << 31) && !test_hooks::g_force_index64;
  if (small) {
    if (vec) return launch_affine_v<T, V, uint32_t>(x, y, scale, shift, n, c, inner, post, s, dt);
    return launch_affine_v<T, 1, uint32_t>(x, y, scale, shift, n, c, inner, post, s, dt);
  }
  return launch_affine_v<T, 1, uint64_t>(x, y, scale, shift, n, c, inner, post, s, dt);
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
    case DType::f32:
      return unary_t<float>(op, alpha, beta, x, y, n, stream, dt);
    case DType::f16:
      return unary_t<__half>(op, alpha, beta, x, y, n, stream, dt);
    default:
      return unary_t<__nv_bfloat16>(op, alpha, beta, x, y, n, stream, dt);
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
    case DType::f32:
      return binary_t<float>(op, a, b, y, s, p, stream, dt);
    case DType::f16:
      return binary_t<__half>(op, a, b, y, s, p, stream, dt);
    default:
      return binary_t<__nv_bfloat16>(op, a, b, y, s, p, stream, dt);
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
    case DType::f32:
      return affine_t<float>(x, y, scale, shift, outer, c, inner, p, stream, dt);
    case DType::f16:
      return affine_t<__half>(x, y, scale, shift, outer, c, inner, p, stream, dt);
    default:
      return affine_t<__nv_bfloat16>(x, y, scale, shift, outer, c, inner, p, stream, dt);
  }
}

}  // namespace anvil::cuda
