// The cuda backend's elementwise kernels (src/backend/cuda/kernels_elementwise.cu) against
// plain host loops in double:
//  - unary: every Unary value, ONNX formulas written out here (not the kernel's rewritten
//    forms), on random data (domains where the function is defined) plus edge values;
//  - binary: every Binary value on broadcasting patterns (same shape, scalar on either side,
//    per-channel NCHW [1,C,1,1] and NHWC [1,1,1,C], both sides broadcast [N,1,W] op [1,H,1],
//    middle-dim broadcast, odd sizes), fused activations, in-place and misaligned operands;
//  - strided_copy: NCHW<->NHWC transposes, slices with step 2 and negative steps, concat into a
//    channel slice of NHWC, broadcast expand, casts (f32->f16/bf16 with hand-written bit
//    patterns for halfway cases, i64/i32/u8/i8/bool <-> float, saturation, wrap);
//  - fill and channel_affine (NHWC and NCHW, with activations);
//  - the 64-bit index kernels (forced through a test hook).
// Outputs are poisoned (all bytes 0xFF: NaN for f32/f16/bf16) before each launch, so an
// element that a kernel does not write fails the comparison.
//
// Tolerances: |got - want| <= rtol |want| + atol with atol = 1e-7 and
//  - f32: rtol 1e-5 (float arithmetic with libdevice functions of <= 4 ulp error);
//  - f16: rtol 2^-11 + 1e-5: inputs are exact f16 values, the kernel computes in float
//    (error as f32) and rounds once to nearest, which is off by at most half an ulp of f16,
//    i.e. 2^-11 relative for normal values (subnormal f16 results: < 2^-25 absolute, in atol);
//  - bf16: rtol 2^-8 + 1e-5 by the same argument (8 significand bits).
// Every test skips itself where no CUDA device is present.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/tensor.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/kernels.h"

namespace anvil::cuda::test_hooks {
void force_index64(bool on);  // defined in kernels_elementwise.cu
}

namespace anvil::cuda {
namespace {

#define SKIP_WITHOUT_GPU()                                                     \
  do {                                                                         \
    if (::anvil::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

constexpr double kAtol = 1e-7;

double rtol(DType t) {
  switch (t) {
    case DType::f16: return std::ldexp(1.0, -11) + 1e-5;
    case DType::bf16: return std::ldexp(1.0, -8) + 1e-5;
    default: return 1e-5;
  }
}

// ---- host storage ---------------------------------------------------------------------------

std::vector<uint8_t> encode(DType t, const std::vector<double>& v) {
  const size_t es = element_size(t);
  std::vector<uint8_t> out(v.size() * es);
  for (size_t i = 0; i < v.size(); ++i) {
    uint8_t* p = out.data() + i * es;
    switch (t) {
      case DType::f32: { float f = static_cast<float>(v[i]); std::memcpy(p, &f, 4); break; }
      case DType::f16: { uint16_t h = float_to_half(static_cast<float>(v[i])); std::memcpy(p, &h, 2); break; }
      case DType::bf16: { uint16_t h = float_to_bf16(static_cast<float>(v[i])); std::memcpy(p, &h, 2); break; }
      case DType::i32: { int32_t x = static_cast<int32_t>(v[i]); std::memcpy(p, &x, 4); break; }
      case DType::i64: { int64_t x = static_cast<int64_t>(v[i]); std::memcpy(p, &x, 8); break; }
      case DType::i8: { int8_t x = static_cast<int8_t>(v[i]); std::memcpy(p, &x, 1); break; }
      case DType::u8: case DType::boolean: *p = static_cast<uint8_t>(v[i]); break;
      default: ADD_FAILURE() << "encode: dtype"; break;
    }
  }
  return out;
}

std::vector<double> decode(DType t, const std::vector<uint8_t>& b) {
  const size_t es = element_size(t);
  std::vector<double> out(b.size() / es);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = b.data() + i * es;
    switch (t) {
      case DType::f32: { float f; std::memcpy(&f, p, 4); out[i] = f; break; }
      case DType::f16: { uint16_t h; std::memcpy(&h, p, 2); out[i] = half_to_float(h); break; }
      case DType::bf16: { uint16_t h; std::memcpy(&h, p, 2); out[i] = bf16_to_float(h); break; }
      case DType::i32: { int32_t x; std::memcpy(&x, p, 4); out[i] = x; break; }
      case DType::i64: { int64_t x; std::memcpy(&x, p, 8); out[i] = static_cast<double>(x); break; }
      case DType::i8: { int8_t x; std::memcpy(&x, p, 1); out[i] = x; break; }
      case DType::u8: case DType::boolean: out[i] = *p; break;
      default: ADD_FAILURE() << "decode: dtype"; break;
    }
  }
  return out;
}

// v rounded to dtype t (exactly representable afterwards).
std::vector<double> rounded(DType t, const std::vector<double>& v) { return decode(t, encode(t, v)); }

DeviceBuffer upload_bytes(const std::vector<uint8_t>& b, size_t extra = 0) {
  DeviceBuffer d(b.size() + extra);
  if (!b.empty()) ANVIL_CUDA_CHECK(cudaMemcpy(d.get(), b.data(), b.size(), cudaMemcpyHostToDevice));
  return d;
}

std::vector<uint8_t> download_bytes(const void* p, size_t bytes) {
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint8_t> b(bytes);
  if (bytes) ANVIL_CUDA_CHECK(cudaMemcpy(b.data(), p, bytes, cudaMemcpyDeviceToHost));
  return b;
}

void poison(void* p, size_t bytes) { ANVIL_CUDA_CHECK(cudaMemset(p, 0xFF, bytes)); }

template <class T>
DeviceBuffer upload_vec(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return upload_bytes(b);
}

template <class T>
std::vector<T> download_vec(const void* p, size_t n) {
  std::vector<uint8_t> b = download_bytes(p, n * sizeof(T));
  std::vector<T> v(n);
  if (n) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

bool close(double got, double want, DType t) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  if (std::isnan(got)) return false;
  return std::fabs(got - want) <= rtol(t) * std::fabs(want) + kAtol;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, DType t,
                  const std::string& what, const std::vector<double>* inputs = nullptr) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (close(got[i], want[i], t)) continue;
    if (bad++ < 5)
      ADD_FAILURE() << what << " [" << dtype_name(t) << "] element " << i << ": got " << got[i]
                    << ", want " << want[i]
                    << (inputs ? " (x = " + std::to_string((*inputs)[i]) + ")" : std::string());
  }
  EXPECT_EQ(bad, 0) << what << " [" << dtype_name(t) << "]: " << bad << " of " << got.size()
                    << " elements off";
}

std::vector<double> random_vec(size_t n, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

struct Index64Guard {
  Index64Guard() { test_hooks::force_index64(true); }
  ~Index64Guard() { test_hooks::force_index64(false); }
};

// ---- unary ----------------------------------------------------------------------------------

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

double round_half_even(double x) {
  double r = std::floor(x);
  double d = x - r;
  if (d > 0.5 || (d == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}

// ONNX definitions, in double.
double ref_unary(Unary op, double a, double b, double x) {
  switch (op) {
    case Unary::Identity: return x;
    case Unary::Relu: return x < 0 ? 0 : x;
    case Unary::LeakyRelu: return x >= 0 ? x : a * x;
    case Unary::Elu: return x >= 0 ? x : a * (std::exp(x) - 1);
    case Unary::Selu: return x > 0 ? b * x : b * (a * std::exp(x) - a);
    case Unary::Celu: return std::max(0.0, x) + std::min(0.0, a * (std::exp(x / a) - 1));
    case Unary::Sigmoid: return sigmoid(x);
    case Unary::HardSigmoid: return std::max(0.0, std::min(1.0, a * x + b));
    case Unary::HardSwish: return x * std::max(0.0, std::min(1.0, x / 6 + 0.5));
    case Unary::Tanh: return std::tanh(x);
    case Unary::Clip: return std::min(std::max(x, a), b);
    case Unary::Softplus: return std::log(1 + std::exp(x));
    case Unary::Softsign: return x / (1 + std::fabs(x));
    case Unary::Exp: return std::exp(x);
    case Unary::Log: return std::log(x);
    case Unary::Sqrt: return std::sqrt(x);
    case Unary::Rsqrt: return 1 / std::sqrt(x);
    case Unary::Abs: return std::fabs(x);
    case Unary::Neg: return -x;
    case Unary::Reciprocal: return 1 / x;
    case Unary::Gelu: return 0.5 * x * (1 + std::erf(x / std::numbers::sqrt2));
    case Unary::GeluTanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
    case Unary::Mish: return x * std::tanh(softplus(x));
    case Unary::Silu: return x * sigmoid(x);
    case Unary::Floor: return std::floor(x);
    case Unary::Ceil: return std::ceil(x);
    case Unary::Round: return round_half_even(x);
    case Unary::Erf: return std::erf(x);
    case Unary::Sin: return std::sin(x);
    case Unary::Cos: return std::cos(x);
    case Unary::Sign: return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case Unary::ThresholdedRelu: return x > a ? x : 0;
    case Unary::Pow: return std::pow(x, a);
    case Unary::Affine: return a * x + b;
  }
  return std::nan("");
}

enum class Domain { All, Positive, AwayFromZero, Quarters };

struct UnaryCase {
  Unary op;
  const char* name;
  float a, b;
  Domain dom;
};

// Every Unary value (the enum's order), with non-default parameters where it has them.
const UnaryCase kUnaryCases[] = {
    {Unary::Identity, "Identity", 0, 0, Domain::All},
    {Unary::Relu, "Relu", 0, 0, Domain::All},
    {Unary::LeakyRelu, "LeakyRelu", 0.1f, 0, Domain::All},
    {Unary::Elu, "Elu", 1.3f, 0, Domain::All},
    {Unary::Selu, "Selu", 1.67326319217681884765625f, 1.05070102214813232421875f, Domain::All},
    {Unary::Celu, "Celu", 0.7f, 0, Domain::All},
    {Unary::Sigmoid, "Sigmoid", 0, 0, Domain::All},
    {Unary::HardSigmoid, "HardSigmoid", 0.2f, 0.5f, Domain::All},
    {Unary::HardSwish, "HardSwish", 0, 0, Domain::All},
    {Unary::Tanh, "Tanh", 0, 0, Domain::All},
    {Unary::Clip, "Clip", -1.5f, 2.25f, Domain::All},
    {Unary::Softplus, "Softplus", 0, 0, Domain::All},
    {Unary::Softsign, "Softsign", 0, 0, Domain::All},
    {Unary::Exp, "Exp", 0, 0, Domain::All},
    {Unary::Log, "Log", 0, 0, Domain::Positive},
    {Unary::Sqrt, "Sqrt", 0, 0, Domain::Positive},
    {Unary::Rsqrt, "Rsqrt", 0, 0, Domain::Positive},
    {Unary::Abs, "Abs", 0, 0, Domain::All},
    {Unary::Neg, "Neg", 0, 0, Domain::All},
    {Unary::Reciprocal, "Reciprocal", 0, 0, Domain::AwayFromZero},
    {Unary::Gelu, "Gelu", 0, 0, Domain::All},
    {Unary::GeluTanh, "GeluTanh", 0, 0, Domain::All},
    {Unary::Mish, "Mish", 0, 0, Domain::All},
    {Unary::Silu, "Silu", 0, 0, Domain::All},
    {Unary::Floor, "Floor", 0, 0, Domain::Quarters},
    {Unary::Ceil, "Ceil", 0, 0, Domain::Quarters},
    {Unary::Round, "Round", 0, 0, Domain::Quarters},
    {Unary::Erf, "Erf", 0, 0, Domain::All},
    {Unary::Sin, "Sin", 0, 0, Domain::All},
    {Unary::Cos, "Cos", 0, 0, Domain::All},
    {Unary::Sign, "Sign", 0, 0, Domain::All},
    {Unary::ThresholdedRelu, "ThresholdedRelu", 0.8f, 0, Domain::All},
    {Unary::Pow, "Pow", 2.5f, 0, Domain::Positive},
    {Unary::Affine, "Affine", -1.75f, 0.5f, Domain::All},
};

std::vector<double> unary_input(Domain dom, size_t n, uint32_t seed) {
  std::vector<double> v;
  switch (dom) {
    case Domain::All:
      v = random_vec(n, -6, 6, seed);
      {  // edges: zeros, HardSwish/HardSigmoid knees, Clip bounds, ThresholdedRelu alpha
        const double e[] = {0.0, -0.0, -3, 3, -2.5, 2.5, -1.5, 2.25, 0.8, 1, -1, 1e-3, -1e-3};
        for (size_t i = 0; i < std::size(e) && i < n; ++i) v[i] = e[i];
      }
      break;
    case Domain::Positive: v = random_vec(n, 0.05, 4, seed); break;
    case Domain::AwayFromZero:
      v = random_vec(n, 0.1, 4, seed);
      for (size_t i = 0; i < n; i += 2) v[i] = -v[i];
      break;
    case Domain::Quarters: {  // multiples of 1/4 in [-8, 8]: every halfway case of Round
      std::mt19937 rng(seed);
      std::uniform_int_distribution<int> u(-32, 32);
      v.resize(n);
      for (auto& x : v) x = u(rng) * 0.25;
      const double e[] = {0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.5, -3.5, 0.0, 7.5};
      for (size_t i = 0; i < std::size(e) && i < n; ++i) v[i] = e[i];
      break;
    }
  }
  return v;
}

// Runs unary on n elements (x at element offset x_off of its buffer, y likewise, or in
// place) and compares with the host formula.
void check_unary(const UnaryCase& c, DType t, size_t n, size_t x_off, size_t y_off,
                 bool in_place, uint32_t seed) {
  const std::vector<double> x = rounded(t, unary_input(c.dom, n, seed));
  std::vector<double> want(n);
  for (size_t i = 0; i < n; ++i) want[i] = ref_unary(c.op, c.a, c.b, x[i]);
  const size_t es = element_size(t);
  std::vector<uint8_t> xb(x_off * es, 0);
  const std::vector<uint8_t> enc = encode(t, x);
  xb.insert(xb.end(), enc.begin(), enc.end());
  DeviceBuffer xd = upload_bytes(xb);
  DeviceBuffer yd((y_off + n) * es + 1);
  const void* xp = static_cast<const uint8_t*>(xd.get()) + x_off * es;
  void* yp = in_place ? const_cast<void*>(xp) : static_cast<uint8_t*>(yd.get()) + y_off * es;
  if (!in_place) poison(yd.get(), yd.size());
  unary(c.op, c.a, c.b, t, xp, yp, static_cast<int64_t>(n), nullptr);
  const std::vector<double> got = decode(t, download_bytes(yp, n * es));
  expect_close(got, want, t,
               std::string(c.name) + " n=" + std::to_string(n) + " x_off=" + std::to_string(x_off) +
                   " y_off=" + std::to_string(y_off) + (in_place ? " in place" : ""),
               &x);
}

TEST(CudaElementwise, UnaryEveryOpEveryFloatType) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (const UnaryCase& c : kUnaryCases)
    for (DType t : kFloatTypes) check_unary(c, t, 4099, 0, 0, false, seed++);
}

TEST(CudaElementwise, UnaryMisalignedInPlaceAndLarge) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (const UnaryCase& c : kUnaryCases) {
    check_unary(c, DType::f32, 1001, 1, 3, false, seed++);  // element path (unaligned)
    check_unary(c, DType::f16, 1001, 0, 0, true, seed++);   // y == x
  }
  // More work than one wave of blocks: the grid-stride loop.
  check_unary(kUnaryCases[1], DType::f32, 3000017, 0, 0, false, seed++);   // Relu
  check_unary(kUnaryCases[6], DType::bf16, 3000017, 0, 0, false, seed++);  // Sigmoid
  check_unary(kUnaryCases[10], DType::f16, 7, 0, 0, false, seed++);        // Clip, tail only
  check_unary(kUnaryCases[20], DType::f32, 1, 0, 0, false, seed++);        // Gelu, one element
}

TEST(CudaElementwise, UnaryNanPropagation) {
  SKIP_WITHOUT_GPU();
  // Relu, Clip, LeakyRelu, Sign keep NaN (plain comparisons, as the reference).
  const std::vector<double> x = {std::nan(""), 1.0, -1.0};
  for (Unary op : {Unary::Relu, Unary::Clip, Unary::LeakyRelu, Unary::Sign, Unary::HardSwish}) {
    DeviceBuffer xd = upload_bytes(encode(DType::f32, x));
    DeviceBuffer yd(x.size() * 4);
    poison(yd.get(), yd.size());
    unary(op, 0.f, 6.f, DType::f32, xd.get(), yd.get(), 3, nullptr);
    const auto got = decode(DType::f32, download_bytes(yd.get(), 12));
    EXPECT_TRUE(std::isnan(got[0])) << static_cast<int>(op);
    EXPECT_FALSE(std::isnan(got[1])) << static_cast<int>(op);
  }
}

// ---- binary ---------------------------------------------------------------------------------

double ref_binary(Binary op, double a, double b) {
  switch (op) {
    case Binary::Add: return a + b;
    case Binary::Sub: return a - b;
    case Binary::Mul: return a * b;
    case Binary::Div: return a / b;
    case Binary::Pow: return std::pow(a, b);
    case Binary::Max: return std::max(a, b);
    case Binary::Min: return std::min(a, b);
    case Binary::PRelu: return a >= 0 ? a : a * b;
  }
  return std::nan("");
}

const std::pair<Binary, const char*> kBinaryOps[] = {
    {Binary::Add, "Add"}, {Binary::Sub, "Sub"}, {Binary::Mul, "Mul"},     {Binary::Div, "Div"},
    {Binary::Pow, "Pow"}, {Binary::Max, "Max"}, {Binary::Min, "Min"}, {Binary::PRelu, "PRelu"}};

Shape broadcast_shape(const Shape& a, const Shape& b) {
  Shape o(a.size());
  for (size_t i = 0; i < a.size(); ++i) o[i] = std::max(a[i], b[i]);
  return o;
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// Per output dim: the input's element stride, 0 where it broadcasts (same rank as out).
Broadcast make_broadcast(const Shape& a, const Shape& b) {
  Broadcast d;
  const Shape o = broadcast_shape(a, b);
  d.rank = static_cast<int>(o.size());
  const auto sa = contiguous_strides(a), sb = contiguous_strides(b);
  for (int i = 0; i < d.rank; ++i) {
    d.shape[i] = o[i];
    d.a_stride[i] = a[i] == o[i] ? sa[i] : 0;
    d.b_stride[i] = b[i] == o[i] ? sb[i] : 0;
  }
  return d;
}

// out[i] = post(op(a, b)) by explicit multi-index loops.
std::vector<double> ref_broadcast(Binary op, const Shape& as, const std::vector<double>& a,
                                  const Shape& bs, const std::vector<double>& b, Unary post,
                                  float pa, float pb) {
  const Shape o = broadcast_shape(as, bs);
  const int64_t n = shape_numel(o);
  const auto sa = contiguous_strides(as), sb = contiguous_strides(bs);
  std::vector<double> out(static_cast<size_t>(n));
  std::vector<int64_t> idx(o.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rem = i, oa = 0, ob = 0;
    for (int k = static_cast<int>(o.size()) - 1; k >= 0; --k) {
      const int64_t ik = rem % o[k];
      rem /= o[k];
      oa += (as[k] == 1 ? 0 : ik) * sa[k];
      ob += (bs[k] == 1 ? 0 : ik) * sb[k];
    }
    out[static_cast<size_t>(i)] = ref_unary(post, pa, pb, ref_binary(op, a[oa], b[ob]));
  }
  return out;
}

struct BinOpts {
  Unary post = Unary::Identity;
  float pa = 0, pb = 0;
  size_t a_off = 0, b_off = 0, y_off = 0;  // element offsets inside the buffers (alignment)
  int alias = 0;                           // 1: y = a, 2: y = b
};

void check_binary(Binary op, const char* name, DType t, const Shape& as, const Shape& bs,
                  uint32_t seed, const BinOpts& o = {}) {
  const size_t na = static_cast<size_t>(shape_numel(as)), nb = static_cast<size_t>(shape_numel(bs));
  std::vector<double> a = random_vec(na, -4, 4, seed), b = random_vec(nb, -4, 4, seed + 7777);
  if (op == Binary::Pow)  // positive bases, moderate exponents
    for (auto& v : a) v = std::fabs(v) * 0.9 + 0.1;
  if (op == Binary::Div)  // divisors away from zero
    for (auto& v : b) v = (v < 0 ? -1 : 1) * (0.25 + std::fabs(v));
  if (op == Binary::Pow)
    for (auto& v : b) v *= 0.5;
  a = rounded(t, a);
  b = rounded(t, b);
  const std::vector<double> want = ref_broadcast(op, as, a, bs, b, o.post, o.pa, o.pb);
  const size_t es = element_size(t), ny = want.size();
  auto with_offset = [&](const std::vector<double>& v, size_t off) {
    std::vector<uint8_t> bytes(off * es, 0);
    const auto e = encode(t, v);
    bytes.insert(bytes.end(), e.begin(), e.end());
    return upload_bytes(bytes);
  };
  DeviceBuffer ad = with_offset(a, o.a_off), bd = with_offset(b, o.b_off);
  DeviceBuffer yd((o.y_off + ny) * es);
  const void* ap = static_cast<const uint8_t*>(ad.get()) + o.a_off * es;
  const void* bp = static_cast<const uint8_t*>(bd.get()) + o.b_off * es;
  void* yp = static_cast<uint8_t*>(yd.get()) + o.y_off * es;
  if (o.alias == 1) yp = const_cast<void*>(ap);
  else if (o.alias == 2) yp = const_cast<void*>(bp);
  else poison(yd.get(), yd.size());
  binary(op, t, ap, bp, yp, make_broadcast(as, bs), o.post, o.pa, o.pb, nullptr);
  const std::vector<double> got = decode(t, download_bytes(yp, ny * es));
  expect_close(got, want, t,
               std::string(name) + " " + shape_str(as) + " op " + shape_str(bs) + " post " +
                   std::to_string(static_cast<int>(o.post)) +
                   (o.alias ? " in place" : "") + " offsets " + std::to_string(o.a_off) + "/" +
                   std::to_string(o.b_off) + "/" + std::to_string(o.y_off));
}

// (a shape, b shape): broadcasting patterns of the CNNs and odd sizes.
const std::pair<Shape, Shape> kPatterns[] = {
    {{7, 13, 5}, {7, 13, 5}},       // same shape, odd
    {{7, 13, 5}, {1, 1, 1}},        // scalar b
    {{1, 1, 1}, {7, 13, 5}},        // scalar a
    {{2, 6, 7, 9}, {1, 6, 1, 1}},   // NCHW per-channel, odd H*W
    {{2, 8, 4, 4}, {1, 8, 1, 1}},   // NCHW per-channel, H*W % 8 == 0 (packs, b broadcast)
    {{2, 5, 3, 16}, {1, 1, 1, 16}}, // NHWC per-channel, C % 8 == 0 (packs of both)
    {{2, 5, 3, 7}, {1, 1, 1, 7}},   // NHWC per-channel, odd C
    {{4, 1, 9}, {1, 6, 1}},         // both sides broadcast
    {{4, 1, 8}, {1, 6, 1}},         // both sides broadcast, packable inner dim for a
    {{7, 1, 5}, {7, 13, 5}},        // middle-dim broadcast of a
    {{3, 1, 2, 1, 5, 2}, {1, 4, 2, 3, 1, 2}},  // rank 6
    {{37}, {37}},                   // rank 1 with a tail after the packs
    {{}, {}},                       // rank 0: one element
};

TEST(CudaElementwise, BinaryEveryOpBroadcastPatternsF32) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 1000;
  for (const auto& [op, name] : kBinaryOps)
    for (const auto& [as, bs] : kPatterns) check_binary(op, name, DType::f32, as, bs, seed++);
}

TEST(CudaElementwise, BinaryEveryOpBroadcastPatternsHalfAndBf16) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 2000;
  for (DType t : {DType::f16, DType::bf16})
    for (const auto& [op, name] : kBinaryOps)
      for (const auto& [as, bs] : kPatterns) check_binary(op, name, t, as, bs, seed++);
}

TEST(CudaElementwise, BinaryFusedActivations) {
  SKIP_WITHOUT_GPU();
  struct P {
    Unary op;
    float a, b;
  };
  const P posts[] = {{Unary::Relu, 0, 0},      {Unary::LeakyRelu, 0.1f, 0}, {Unary::Sigmoid, 0, 0},
                     {Unary::HardSwish, 0, 0}, {Unary::Clip, 0, 6},         {Unary::Silu, 0, 0},
                     {Unary::Tanh, 0, 0}};
  uint32_t seed = 3000;
  for (DType t : kFloatTypes)
    for (const P& p : posts) {
      BinOpts o;
      o.post = p.op;
      o.pa = p.a;
      o.pb = p.b;
      check_binary(Binary::Add, "Add", t, {2, 5, 3, 16}, {2, 5, 3, 16}, seed++, o);  // residual
      check_binary(Binary::Mul, "Mul", t, {2, 6, 7, 9}, {1, 6, 1, 1}, seed++, o);
      check_binary(Binary::Sub, "Sub", t, {2, 5, 3, 16}, {1, 1, 1, 16}, seed++, o);
    }
}

TEST(CudaElementwise, BinaryInPlaceAndMisaligned) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 4000;
  for (DType t : kFloatTypes) {
    BinOpts ya;
    ya.alias = 1;
    check_binary(Binary::Add, "Add", t, {2, 5, 3, 16}, {2, 5, 3, 16}, seed++, ya);
    check_binary(Binary::Mul, "Mul", t, {2, 5, 3, 16}, {1, 1, 1, 16}, seed++, ya);  // a not broadcast
    check_binary(Binary::Sub, "Sub", t, {37}, {1}, seed++, ya);
    BinOpts yb;
    yb.alias = 2;
    check_binary(Binary::Div, "Div", t, {1, 8, 1, 1}, {2, 8, 4, 4}, seed++, yb);  // b not broadcast
    for (const BinOpts& off : {BinOpts{Unary::Identity, 0, 0, 1, 0, 0, 0},
                               BinOpts{Unary::Relu, 0, 0, 0, 3, 0, 0},
                               BinOpts{Unary::Identity, 0, 0, 0, 0, 1, 0}}) {
      check_binary(Binary::Add, "Add", t, {2, 5, 3, 16}, {1, 1, 1, 16}, seed++, off);
      check_binary(Binary::Max, "Max", t, {1003}, {1003}, seed++, off);
    }
  }
}

TEST(CudaElementwise, BinaryLargeGridStride) {
  SKIP_WITHOUT_GPU();
  BinOpts o;
  o.post = Unary::Relu;
  check_binary(Binary::Add, "Add", DType::f32, {64, 56, 56, 16}, {1, 1, 1, 16}, 5000, o);
  check_binary(Binary::Mul, "Mul", DType::f16, {8, 32, 56, 56}, {1, 32, 1, 1}, 5001, o);
}

TEST(CudaElementwise, BinaryMaxMinPropagateNan) {
  SKIP_WITHOUT_GPU();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> a = {nan, 1.f, nan, 2.f}, b = {1.f, nan, nan, 3.f};
  for (Binary op : {Binary::Max, Binary::Min}) {
    DeviceBuffer ad = upload_vec(a), bd = upload_vec(b), yd(16);
    poison(yd.get(), 16);
    binary(op, DType::f32, ad.get(), bd.get(), yd.get(), make_broadcast({4}, {4}),
           Unary::Identity, 0, 0, nullptr);
    const auto y = download_vec<float>(yd.get(), 4);
    EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]) && std::isnan(y[2]));
    EXPECT_EQ(y[3], op == Binary::Max ? 3.f : 2.f);
  }
}

// ---- strided copy ---------------------------------------------------------------------------

TEST(CudaElementwise, CopyTransposeNchwNhwc) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 6000;
  for (DType t : kFloatTypes)
    for (const Shape& s : {Shape{2, 5, 7, 9}, Shape{2, 16, 4, 6}, Shape{1, 3, 11, 13},
                           Shape{2, 64, 14, 14}, Shape{3, 40, 9, 7}}) {
      const int64_t N = s[0], C = s[1], H = s[2], W = s[3];
      const std::vector<double> x = rounded(t, random_vec(static_cast<size_t>(N * C * H * W), -4, 4, seed++));
      const size_t es = element_size(t), n = x.size();
      DeviceBuffer xd = upload_bytes(encode(t, x)), yd(n * es), zd(n * es);
      // NCHW -> NHWC, iterating the source's shape.
      Strided d;
      d.rank = 4;
      const int64_t shp[4] = {N, C, H, W};
      const int64_t src[4] = {C * H * W, H * W, W, 1};
      const int64_t dst[4] = {H * W * C, 1, W * C, C};
      for (int i = 0; i < 4; ++i) {
        d.shape[i] = shp[i];
        d.src_stride[i] = src[i];
        d.dst_stride[i] = dst[i];
      }
      poison(yd.get(), yd.size());
      strided_copy(t, xd.get(), t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), n * es));
      std::vector<double> want(n);
      for (int64_t a = 0; a < N; ++a)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w)
              want[((a * H + h) * W + w) * C + c] = x[((a * C + c) * H + h) * W + w];
      expect_close(y, want, DType::f32, "NCHW->NHWC " + shape_str(s));  // bit copies: exact
      // And back, NHWC -> NCHW, iterating the destination's shape [N, C, H, W].
      Strided e;
      e.rank = 4;
      for (int i = 0; i < 4; ++i) {
        e.shape[i] = shp[i];
        e.src_stride[i] = dst[i];
        e.dst_stride[i] = src[i];
      }
      poison(zd.get(), zd.size());
      strided_copy(t, yd.get(), t, zd.get(), e, nullptr);
      expect_close(decode(t, download_bytes(zd.get(), n * es)), x, DType::f32,
                   "NHWC->NCHW " + shape_str(s));
    }
}

// y = x.permute(perm) (y dim k is x dim perm[k]), y contiguous; expected by explicit
// multi-index loops. Values are small integers, exact in every dtype.
void check_permute(DType t, const Shape& xs, const std::vector<int>& perm, uint32_t seed) {
  const int r = static_cast<int>(xs.size());
  const size_t n = static_cast<size_t>(shape_numel(xs)), es = element_size(t);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, 100);
  std::vector<double> x(n);
  for (auto& v : x) v = u(rng);
  Shape ys(static_cast<size_t>(r));
  for (int k = 0; k < r; ++k) ys[k] = xs[perm[k]];
  const auto xst = contiguous_strides(xs), yst = contiguous_strides(ys);
  Strided d;
  d.rank = r;
  for (int k = 0; k < r; ++k) {
    d.shape[k] = ys[k];
    d.src_stride[k] = xst[perm[k]];
    d.dst_stride[k] = yst[k];
  }
  std::vector<double> want(n);
  for (size_t i = 0; i < n; ++i) {  // i: linear index of y
    size_t rem = i, xo = 0;
    for (int k = r - 1; k >= 0; --k) {
      const size_t ik = rem % static_cast<size_t>(ys[k]);
      rem /= static_cast<size_t>(ys[k]);
      xo += ik * static_cast<size_t>(xst[perm[k]]);
    }
    want[i] = x[xo];
  }
  DeviceBuffer xd = upload_bytes(encode(t, x)), yd(n * es);
  poison(yd.get(), yd.size());
  strided_copy(t, xd.get(), t, yd.get(), d, nullptr);
  const auto y = decode(t, download_bytes(yd.get(), n * es));
  int bad = 0;
  for (size_t i = 0; i < n; ++i) bad += !(y[i] == want[i]);
  EXPECT_EQ(bad, 0) << "permute " << shape_str(xs) << " " << dtype_name(t);
}

TEST(CudaElementwise, CopyPermutationsTiledAndNot) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 6500;
  auto all = [&] {
    for (DType t : {DType::f32, DType::f16, DType::i64, DType::u8, DType::bf16}) {
      check_permute(t, {2, 64, 14, 14}, {0, 2, 3, 1}, seed++);   // NCHW -> NHWC (tiled)
      check_permute(t, {2, 14, 14, 64}, {0, 3, 1, 2}, seed++);   // NHWC -> NCHW (tiled)
      check_permute(t, {33, 47}, {1, 0}, seed++);                // 2-D, partial tiles
      check_permute(t, {2, 3, 17, 4, 19}, {1, 4, 0, 3, 2}, seed++);  // batch dims around the tile
      check_permute(t, {1, 3, 20, 21}, {0, 2, 3, 1}, seed++);    // C = 3: not tiled
      check_permute(t, {4, 5, 6}, {2, 0, 1}, seed++);            // small: not tiled
      check_permute(t, {3, 70, 2, 40}, {0, 3, 2, 1}, seed++);    // two-dim swap around a middle dim
    }
  };
  all();
  Index64Guard g;  // the same through the 64-bit index kernels
  all();
}

TEST(CudaElementwise, CopySliceStepsAndNegativeSteps) {
  SKIP_WITHOUT_GPU();
  for (DType t : {DType::f32, DType::f16, DType::i64, DType::u8}) {
    const int64_t R = 9, Cc = 11;
    std::vector<double> x(static_cast<size_t>(R * Cc));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 37) % 101);
    const size_t es = element_size(t);
    DeviceBuffer xd = upload_bytes(encode(t, x));
    const uint8_t* base = static_cast<const uint8_t*>(xd.get());
    {  // x[1::2, 0::3] -> [4, 4]
      Strided d;
      d.rank = 2;
      d.shape[0] = 4; d.shape[1] = 4;
      d.src_stride[0] = 2 * Cc; d.src_stride[1] = 3;
      d.dst_stride[0] = 4; d.dst_stride[1] = 1;
      DeviceBuffer yd(16 * es);
      poison(yd.get(), yd.size());
      strided_copy(t, base + 1 * Cc * es, t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), 16 * es));
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          EXPECT_EQ(y[i * 4 + j], x[(1 + 2 * i) * Cc + 3 * j]) << dtype_name(t) << " step 2/3";
    }
    {  // x[8::-2, ::-1] -> [5, 11]
      Strided d;
      d.rank = 2;
      d.shape[0] = 5; d.shape[1] = Cc;
      d.src_stride[0] = -2 * Cc; d.src_stride[1] = -1;
      d.dst_stride[0] = Cc; d.dst_stride[1] = 1;
      DeviceBuffer yd(5 * Cc * es);
      poison(yd.get(), yd.size());
      strided_copy(t, base + (8 * Cc + Cc - 1) * es, t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), 5 * Cc * es));
      for (int i = 0; i < 5; ++i)
        for (int j = 0; j < Cc; ++j)
          EXPECT_EQ(y[i * Cc + j], x[(8 - 2 * i) * Cc + (Cc - 1 - j)]) << dtype_name(t) << " negative steps";
    }
    {  // whole array reversed (rows and columns): merges into one contiguous reversed run
      Strided d;
      d.rank = 2;
      d.shape[0] = R; d.shape[1] = Cc;
      d.src_stride[0] = -Cc; d.src_stride[1] = -1;
      d.dst_stride[0] = Cc; d.dst_stride[1] = 1;
      DeviceBuffer yd(x.size() * es);
      poison(yd.get(), yd.size());
      strided_copy(t, base + (x.size() - 1) * es, t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), x.size() * es));
      for (size_t i = 0; i < x.size(); ++i)
        EXPECT_EQ(y[i], x[x.size() - 1 - i]) << dtype_name(t) << " reversed";
    }
  }
}

TEST(CudaElementwise, CopyConcatIntoNhwcChannelSlices) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 7000;
  // (channels of each input): odd splits (element copies) and 16+8 (16-byte words for f32).
  for (const std::vector<int64_t>& parts : {std::vector<int64_t>{5, 6}, std::vector<int64_t>{16, 8},
                                            std::vector<int64_t>{3, 1, 4}})
    for (DType t : kFloatTypes) {
      const int64_t N = 2, H = 3, W = 5;
      int64_t Ct = 0;
      for (int64_t c : parts) Ct += c;
      const size_t es = element_size(t), ny = static_cast<size_t>(N * H * W * Ct);
      DeviceBuffer yd(ny * es);
      poison(yd.get(), yd.size());
      std::vector<double> want(ny);
      std::vector<DeviceBuffer> keep;
      int64_t c0 = 0;
      for (int64_t Ci : parts) {
        const auto x = rounded(t, random_vec(static_cast<size_t>(N * H * W * Ci), -4, 4, seed++));
        for (int64_t p = 0; p < N * H * W; ++p)
          for (int64_t c = 0; c < Ci; ++c) want[p * Ct + c0 + c] = x[p * Ci + c];
        keep.push_back(upload_bytes(encode(t, x)));
        Strided d;
        d.rank = 4;
        const int64_t shp[4] = {N, H, W, Ci};
        const int64_t src[4] = {H * W * Ci, W * Ci, Ci, 1};
        const int64_t dst[4] = {H * W * Ct, W * Ct, Ct, 1};
        for (int i = 0; i < 4; ++i) {
          d.shape[i] = shp[i];
          d.src_stride[i] = src[i];
          d.dst_stride[i] = dst[i];
        }
        strided_copy(t, keep.back().get(), t, static_cast<uint8_t*>(yd.get()) + c0 * es, d, nullptr);
        c0 += Ci;
      }
      expect_close(decode(t, download_bytes(yd.get(), ny * es)), want, DType::f32,
                   "concat NHWC channels " + std::to_string(parts.size()) + " parts, C=" +
                       std::to_string(Ct));
    }
}

TEST(CudaElementwise, CopyBroadcastExpand) {
  SKIP_WITHOUT_GPU();
  // [1, 3] expanded to [4, 3] (src stride 0), f32 -> f16 at the same time.
  const std::vector<double> x = {1.5, -2.25, 3.0};
  DeviceBuffer xd = upload_bytes(encode(DType::f32, x)), yd(12 * 2);
  Strided d;
  d.rank = 2;
  d.shape[0] = 4; d.shape[1] = 3;
  d.src_stride[0] = 0; d.src_stride[1] = 1;
  d.dst_stride[0] = 3; d.dst_stride[1] = 1;
  poison(yd.get(), yd.size());
  strided_copy(DType::f32, xd.get(), DType::f16, yd.get(), d, nullptr);
  const auto y = decode(DType::f16, download_bytes(yd.get(), 24));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(y[i], x[i % 3]);
}

std::vector<uint16_t> cast_f32_to_16(const std::vector<float>& x, DType to) {
  DeviceBuffer xd = upload_vec(x), yd(x.size() * 2);
  poison(yd.get(), yd.size());
  Strided d;
  d.rank = 1;
  d.shape[0] = static_cast<int64_t>(x.size());
  d.src_stride[0] = d.dst_stride[0] = 1;
  strided_copy(DType::f32, xd.get(), to, yd.get(), d, nullptr);
  return download_vec<uint16_t>(yd.get(), x.size());
}

TEST(CudaElementwise, CastF32ToF16RoundsToNearestEven) {
  SKIP_WITHOUT_GPU();
  const float e10 = std::ldexp(1.f, -10), e11 = std::ldexp(1.f, -11);
  // value -> IEEE binary16 bits, worked out by hand.
  const std::vector<std::pair<float, uint16_t>> cases = {
      {1.f, 0x3C00},
      {1.f + e10, 0x3C01},             // exact
      {1.f + e11, 0x3C00},             // halfway 1 | 1+2^-10: to even (1)
      {1.f + 3 * e11, 0x3C02},         // halfway 1+2^-10 | 1+2^-9: to even
      {1.f + e11 + std::ldexp(1.f, -20), 0x3C01},  // just above halfway: up
      {-1.5f, 0xBE00},
      {0.f, 0x0000},
      {-0.f, 0x8000},
      {65504.f, 0x7BFF},               // largest finite
      {65519.f, 0x7BFF},               // below halfway to 65536: stays finite
      {65520.f, 0x7C00},               // halfway to 2^16: to even -> infinity
      {std::ldexp(1.f, -24), 0x0001},  // smallest subnormal
      {std::ldexp(1.f, -25), 0x0000},  // halfway 0 | 2^-24: to even (0)
      {3 * std::ldexp(1.f, -25), 0x0002},  // halfway 2^-24 | 2^-23: to even
      {std::ldexp(1.f, -14), 0x0400},  // smallest normal
      {std::numeric_limits<float>::infinity(), 0x7C00},
      {1000.25f, 0x63D0},              // 1000.25: halfway 1000 | 1000.5 (spacing 0.5): to even 1000
      {1000.75f, 0x63D2},              // halfway 1000.5 | 1001: to even 1001 (0x63D2)
  };
  std::vector<float> x;
  for (const auto& c : cases) x.push_back(c.first);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  const auto h = cast_f32_to_16(x, DType::f16);
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(h[i], cases[i].second) << "f32 " << cases[i].first << " -> f16";
  EXPECT_TRUE((h.back() & 0x7C00) == 0x7C00 && (h.back() & 0x03FF) != 0) << "NaN -> f16 NaN";
  // Random values against the host's round-to-nearest-even, then back to f32 exactly.
  std::vector<float> r;
  for (double v : random_vec(5003, -70000, 70000, 8000)) r.push_back(static_cast<float>(v));
  for (double v : random_vec(2001, -1e-4, 1e-4, 8001)) r.push_back(static_cast<float>(v));
  const auto hr = cast_f32_to_16(r, DType::f16);
  int bad = 0;
  for (size_t i = 0; i < r.size(); ++i) bad += hr[i] != float_to_half(r[i]);
  EXPECT_EQ(bad, 0) << "f32 -> f16 differs from round-to-nearest-even";
  DeviceBuffer hd = upload_vec(hr), fd(hr.size() * 4);
  poison(fd.get(), fd.size());
  Strided d;
  d.rank = 1;
  d.shape[0] = static_cast<int64_t>(hr.size());
  d.src_stride[0] = d.dst_stride[0] = 1;
  strided_copy(DType::f16, hd.get(), DType::f32, fd.get(), d, nullptr);
  const auto back = download_vec<float>(fd.get(), hr.size());
  bad = 0;
  for (size_t i = 0; i < hr.size(); ++i) bad += !(back[i] == half_to_float(hr[i]));
  EXPECT_EQ(bad, 0) << "f16 -> f32 not exact";
}

TEST(CudaElementwise, CastF32ToBf16RoundsToNearestEven) {
  SKIP_WITHOUT_GPU();
  const float e7 = std::ldexp(1.f, -7), e8 = std::ldexp(1.f, -8);
  const std::vector<std::pair<float, uint16_t>> cases = {
      {1.f, 0x3F80},
      {1.f + e7, 0x3F81},          // exact
      {1.f + e8, 0x3F80},          // halfway: to even
      {1.f + 3 * e8, 0x3F82},      // halfway: to even
      {-2.f, 0xC000},
      {0.f, 0x0000},
      {std::numeric_limits<float>::infinity(), 0x7F80},
  };
  std::vector<float> x;
  for (const auto& c : cases) x.push_back(c.first);
  const auto h = cast_f32_to_16(x, DType::bf16);
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(h[i], cases[i].second) << "f32 " << cases[i].first << " -> bf16";
  std::vector<float> r;
  for (double v : random_vec(4001, -1e6, 1e6, 8100)) r.push_back(static_cast<float>(v));
  const auto hr = cast_f32_to_16(r, DType::bf16);
  int bad = 0;
  for (size_t i = 0; i < r.size(); ++i) bad += hr[i] != float_to_bf16(r[i]);
  EXPECT_EQ(bad, 0) << "f32 -> bf16 differs from round-to-nearest-even";
}

// One contiguous cast of x (dtype from) to dtype to; returns the decoded result.
std::vector<double> cast_1d(DType from, const std::vector<uint8_t>& x, DType to) {
  const size_t n = x.size() / element_size(from);
  DeviceBuffer xd = upload_bytes(x), yd(n * element_size(to));
  poison(yd.get(), yd.size());
  Strided d;
  d.rank = 1;
  d.shape[0] = static_cast<int64_t>(n);
  d.src_stride[0] = d.dst_stride[0] = 1;
  strided_copy(from, xd.get(), to, yd.get(), d, nullptr);
  return decode(to, download_bytes(yd.get(), n * element_size(to)));
}

TEST(CudaElementwise, CastIntegersBoolsAndFloats) {
  SKIP_WITHOUT_GPU();
  {  // i64 -> f32: (float)(double)v, as the reference Cast
    const std::vector<int64_t> v = {0, 1, -7, 123456789, (int64_t{1} << 40) + 1, -(int64_t{1} << 53) - 1,
                                    std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
    std::vector<uint8_t> b(v.size() * 8);
    std::memcpy(b.data(), v.data(), b.size());
    const auto y = cast_1d(DType::i64, b, DType::f32);
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(y[i], static_cast<float>(static_cast<double>(v[i]))) << "i64 " << v[i] << " -> f32";
    const auto h = cast_1d(DType::i64, b, DType::f16);  // 2^40+1 etc. overflow f16: inf
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(h[i], half_to_float(float_to_half(static_cast<float>(static_cast<double>(v[i])))))
          << "i64 " << v[i] << " -> f16";
  }
  {  // f32 -> integers: truncation toward zero, saturation, NaN -> 0; -> bool: != 0
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> f = {3.9f, -3.9f, 0.f, 300.f, -300.f, 3e9f, -3e9f, 1e20f, nan, 0.5f};
    std::vector<uint8_t> b(f.size() * 4);
    std::memcpy(b.data(), f.data(), b.size());
    const std::vector<double> i32 = {3, -3, 0, 300, -300, 2147483647.0, -2147483648.0, 2147483647.0, 0, 0};
    const std::vector<double> i64 = {3, -3, 0, 300, -300, 3e9, -3e9, 9223372036854775807.0, 0, 0};
    const std::vector<double> u8 = {3, 0, 0, 255, 0, 255, 0, 255, 0, 0};
    const std::vector<double> i8 = {3, -3, 0, 127, -128, 127, -128, 127, 0, 0};
    const std::vector<double> bo = {1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_EQ(cast_1d(DType::f32, b, DType::i32), i32);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::i64), i64);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::u8), u8);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::i8), i8);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::boolean), bo);
  }
  {  // integer -> integer wraps; -> bool is != 0; bool / u8 sources are 0/1 and 0..255
    const std::vector<int64_t> v = {0, 1, -1, 255, 256, 300, -129, (int64_t{1} << 33) + 5};
    std::vector<uint8_t> b(v.size() * 8);
    std::memcpy(b.data(), v.data(), b.size());
    EXPECT_EQ(cast_1d(DType::i64, b, DType::i32),
              (std::vector<double>{0, 1, -1, 255, 256, 300, -129, 5}));
    EXPECT_EQ(cast_1d(DType::i64, b, DType::u8),
              (std::vector<double>{0, 1, 255, 255, 0, 44, 127, 5}));
    EXPECT_EQ(cast_1d(DType::i64, b, DType::i8),
              (std::vector<double>{0, 1, -1, -1, 0, 44, 127, 5}));
    EXPECT_EQ(cast_1d(DType::i64, b, DType::boolean),
              (std::vector<double>{0, 1, 1, 1, 1, 1, 1, 1}));
    const std::vector<uint8_t> bools = {0, 1, 1, 0, 2};  // a stored 2 still reads as true
    EXPECT_EQ(cast_1d(DType::boolean, bools, DType::f32), (std::vector<double>{0, 1, 1, 0, 1}));
    EXPECT_EQ(cast_1d(DType::boolean, bools, DType::i64), (std::vector<double>{0, 1, 1, 0, 1}));
    const std::vector<uint8_t> u8 = {0, 7, 200, 255};
    EXPECT_EQ(cast_1d(DType::u8, u8, DType::f16), (std::vector<double>{0, 7, 200, 255}));
    EXPECT_EQ(cast_1d(DType::u8, u8, DType::i32), (std::vector<double>{0, 7, 200, 255}));
    const std::vector<int8_t> s8 = {0, -7, 100, -128};
    std::vector<uint8_t> sb(s8.size());
    std::memcpy(sb.data(), s8.data(), sb.size());
    EXPECT_EQ(cast_1d(DType::i8, sb, DType::bf16), (std::vector<double>{0, -7, 100, -128}));
    const std::vector<int32_t> i32 = {-5, 16777217, 2147483647};
    std::vector<uint8_t> ib(i32.size() * 4);
    std::memcpy(ib.data(), i32.data(), ib.size());
    const auto f = cast_1d(DType::i32, ib, DType::f32);
    for (size_t i = 0; i < i32.size(); ++i) EXPECT_EQ(f[i], static_cast<float>(i32[i]));
  }
  {  // f16 -> bf16 and bf16 -> f32
    const std::vector<double> v = rounded(DType::f16, random_vec(257, -100, 100, 8200));
    const auto bf = cast_1d(DType::f16, encode(DType::f16, v), DType::bf16);
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(bf[i], bf16_to_float(float_to_bf16(static_cast<float>(v[i]))));
    const auto back = cast_1d(DType::bf16, encode(DType::bf16, bf), DType::f32);
    EXPECT_EQ(back, bf);
  }
}

// ---- fill -----------------------------------------------------------------------------------

TEST(CudaElementwise, Fill) {
  SKIP_WITHOUT_GPU();
  struct C {
    DType t;
    float v;
    double want;
  };
  const C cases[] = {{DType::f32, 1.5f, 1.5},       {DType::f16, -2.75f, -2.75},
                     {DType::bf16, 3.0f, 3.0},      {DType::f16, 1.f + std::ldexp(1.f, -11), 1.0},
                     {DType::i64, -3.7f, -3},       {DType::i32, 5e9f, 2147483647.0},
                     {DType::u8, 300.f, 255},       {DType::i8, -7.f, -7},
                     {DType::boolean, 0.5f, 1},     {DType::boolean, 0.f, 0}};
  for (const C& c : cases)
    for (size_t n : {size_t{1}, size_t{7}, size_t{1001}, size_t{100003}})
      for (size_t off : {size_t{0}, size_t{1}}) {
        const size_t es = element_size(c.t);
        DeviceBuffer yd((n + off) * es);
        poison(yd.get(), yd.size());
        void* yp = static_cast<uint8_t*>(yd.get()) + off * es;
        fill(c.t, yp, static_cast<int64_t>(n), c.v, nullptr);
        const auto y = decode(c.t, download_bytes(yp, n * es));
        int bad = 0;
        for (double v : y) bad += v != c.want;
        EXPECT_EQ(bad, 0) << dtype_name(c.t) << " fill " << c.v << " n=" << n << " off=" << off;
        if (off) {  // the element before stays poisoned
          const auto before = download_bytes(yd.get(), es);
          for (uint8_t byte : before) EXPECT_EQ(byte, 0xFF);
        }
      }
}

// ---- channel affine -------------------------------------------------------------------------

void check_affine(DType t, int64_t outer, int64_t c, int64_t inner, Unary post, float pa,
                  float pb, uint32_t seed, size_t off = 0) {
  const size_t n = static_cast<size_t>(outer * c * inner), es = element_size(t);
  const auto x = rounded(t, random_vec(n, -4, 4, seed));
  std::vector<float> scale, shift;
  for (double v : random_vec(static_cast<size_t>(c), 0.2, 2.0, seed + 1)) scale.push_back(static_cast<float>(v));
  for (double v : random_vec(static_cast<size_t>(c), -1.0, 1.0, seed + 2)) shift.push_back(static_cast<float>(v));
  std::vector<double> want(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t ch = (i / static_cast<size_t>(inner)) % static_cast<size_t>(c);
    want[i] = ref_unary(post, pa, pb, x[i] * static_cast<double>(scale[ch]) + shift[ch]);
  }
  std::vector<uint8_t> xb(off * es, 0);
  const auto e = encode(t, x);
  xb.insert(xb.end(), e.begin(), e.end());
  DeviceBuffer xd = upload_bytes(xb), yd((n + off) * es), sd = upload_vec(scale), hd = upload_vec(shift);
  poison(yd.get(), yd.size());
  void* yp = static_cast<uint8_t*>(yd.get()) + off * es;
  channel_affine(t, static_cast<uint8_t*>(xd.get()) + off * es, yp,
                 static_cast<const float*>(sd.get()), static_cast<const float*>(hd.get()), outer, c,
                 inner, post, pa, pb, nullptr);
  expect_close(decode(t, download_bytes(yp, n * es)), want, t,
               "channel_affine [" + std::to_string(outer) + ", " + std::to_string(c) + ", " +
                   std::to_string(inner) + "] post " + std::to_string(static_cast<int>(post)) +
                   " off " + std::to_string(off));
}

TEST(CudaElementwise, ChannelAffineNhwcAndNchw) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 9000;
  for (DType t : kFloatTypes) {
    check_affine(t, 2 * 5 * 3, 16, 1, Unary::Relu, 0, 0, seed += 3);       // NHWC, packs of channels
    check_affine(t, 2 * 5 * 3, 7, 1, Unary::Relu, 0, 0, seed += 3);        // NHWC, odd C
    check_affine(t, 2, 6, 49, Unary::Relu, 0, 0, seed += 3);               // NCHW 7x7
    check_affine(t, 2, 6, 64, Unary::Identity, 0, 0, seed += 3);           // NCHW 8x8 (packs)
    check_affine(t, 3, 5, 16, Unary::HardSwish, 0, 0, seed += 3);
    check_affine(t, 3, 5, 16, Unary::Clip, 0, 6, seed += 3);
    check_affine(t, 1, 32, 1, Unary::Sigmoid, 0, 0, seed += 3);
    check_affine(t, 2, 6, 64, Unary::Relu, 0, 0, seed += 3, 1);            // unaligned
    check_affine(t, 4, 1, 1, Unary::Identity, 0, 0, seed += 3);            // C = 1
  }
  check_affine(DType::f32, 64 * 28 * 28, 32, 1, Unary::Relu, 0, 0, seed += 3);  // grid stride
  check_affine(DType::f16, 16, 64, 28 * 28, Unary::Relu, 0, 0, seed += 3);
}

// ---- 64-bit index kernels, forced -----------------------------------------------------------

TEST(CudaElementwise, Index64Paths) {
  SKIP_WITHOUT_GPU();
  Index64Guard g;
  uint32_t seed = 10000;
  for (DType t : kFloatTypes) {
    check_unary(kUnaryCases[20], t, 4099, 0, 0, false, seed++);  // Gelu
    check_unary(kUnaryCases[1], t, 4099, 1, 0, false, seed++);   // Relu, unaligned
    for (const auto& [as, bs] : kPatterns) check_binary(Binary::Sub, "Sub", t, as, bs, seed++);
    check_affine(t, 2, 6, 49, Unary::Relu, 0, 0, seed += 3);
    check_affine(t, 30, 16, 1, Unary::Identity, 0, 0, seed += 3);
  }
  {  // negative strides and a transpose through 64-bit offsets
    std::vector<float> x(6 * 5);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
    DeviceBuffer xd = upload_vec(x), yd(x.size() * 4);
    Strided d;
    d.rank = 2;
    d.shape[0] = 5; d.shape[1] = 6;                // y[j, i] = x[5 - i, 4 - j] (transposed, reversed)
    d.src_stride[0] = -1; d.src_stride[1] = -5;
    d.dst_stride[0] = 6; d.dst_stride[1] = 1;
    poison(yd.get(), yd.size());
    strided_copy(DType::f32, static_cast<float*>(xd.get()) + 29, DType::f32, yd.get(), d, nullptr);
    const auto y = download_vec<float>(yd.get(), x.size());
    for (int j = 0; j < 5; ++j)
      for (int i = 0; i < 6; ++i) EXPECT_EQ(y[j * 6 + i], x[(5 - i) * 5 + (4 - j)]);
  }
  {
    DeviceBuffer yd(1003 * 2);
    poison(yd.get(), yd.size());
    fill(DType::bf16, yd.get(), 1003, -1.25f, nullptr);
    for (double v : decode(DType::bf16, download_bytes(yd.get(), yd.size()))) EXPECT_EQ(v, -1.25);
  }
}

// ---- throughput report (no assertion: prints effective GB/s for the lead's GPU run) ------

TEST(CudaElementwise, ThroughputReport) {
  SKIP_WITHOUT_GPU();
  const int64_t P = 64 * 56 * 56;  // ResNet-50 stage 1 at batch 64
  DeviceBuffer a(static_cast<size_t>(P) * 256 * 4), b(static_cast<size_t>(P) * 256 * 4),
      y(static_cast<size_t>(P) * 256 * 4), sc(256 * 4), sh(256 * 4);
  ANVIL_CUDA_CHECK(cudaMemset(a.get(), 0, a.size()));
  ANVIL_CUDA_CHECK(cudaMemset(b.get(), 0, b.size()));
  ANVIL_CUDA_CHECK(cudaMemset(sc.get(), 0, sc.size()));
  ANVIL_CUDA_CHECK(cudaMemset(sh.get(), 0, sh.size()));
  cudaEvent_t e0, e1;
  ANVIL_CUDA_CHECK(cudaEventCreate(&e0));
  ANVIL_CUDA_CHECK(cudaEventCreate(&e1));
  auto time = [&](const char* what, double bytes, const std::function<void()>& f) {
    f();  // warm-up
    ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
    const int iters = 20;
    ANVIL_CUDA_CHECK(cudaEventRecord(e0));
    for (int i = 0; i < iters; ++i) f();
    ANVIL_CUDA_CHECK(cudaEventRecord(e1));
    ANVIL_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    ms /= iters;
    std::printf("[ throughput ] %-58s %8.3f ms  %7.1f GB/s\n", what, ms, bytes / (ms * 1e6));
  };
  const double n = static_cast<double>(P) * 256;
  time("binary Add+Relu f16 same shape [64,56,56,256]", 3 * 2 * n, [&] {
    binary(Binary::Add, DType::f16, a.get(), b.get(), y.get(),
           make_broadcast({P, 256}, {P, 256}), Unary::Relu, 0, 0, nullptr);
  });
  time("binary Add f32 NHWC per-channel [64,56,56,64]+[64]", 2 * 4 * n / 4, [&] {
    binary(Binary::Add, DType::f32, a.get(), b.get(), y.get(), make_broadcast({P, 64}, {1, 64}),
           Unary::Identity, 0, 0, nullptr);
  });
  time("binary Mul f16 NCHW per-channel [64,256,7,7]*[256,1,1]", 2 * 2 * (64.0 * 256 * 49), [&] {
    binary(Binary::Mul, DType::f16, a.get(), b.get(), y.get(),
           make_broadcast({64, 256, 7, 7}, {1, 256, 1, 1}), Unary::Identity, 0, 0, nullptr);
  });
  time("channel_affine+Relu f16 NHWC [64*56*56, 256]", 2 * 2 * n, [&] {
    channel_affine(DType::f16, a.get(), y.get(), static_cast<const float*>(sc.get()),
                   static_cast<const float*>(sh.get()), P, 256, 1, Unary::Relu, 0, 0, nullptr);
  });
  time("channel_affine+Relu f32 NCHW [64, 64, 56*56]", 2 * 4 * n / 4, [&] {
    channel_affine(DType::f32, a.get(), y.get(), static_cast<const float*>(sc.get()),
                   static_cast<const float*>(sh.get()), 64, 64, 56 * 56, Unary::Relu, 0, 0, nullptr);
  });
  time("unary Relu f16 [64,56,56,256]", 2 * 2 * n, [&] {
    unary(Unary::Relu, 0, 0, DType::f16, a.get(), y.get(), static_cast<int64_t>(n), nullptr);
  });
  time("unary Sigmoid f32 [64,56,56,64]", 2 * 4 * n / 4, [&] {
    unary(Unary::Sigmoid, 0, 0, DType::f32, a.get(), y.get(), static_cast<int64_t>(n / 4), nullptr);
  });
  auto permute = [&](DType t, const Shape& xs, const std::vector<int>& perm) {
    const auto xst = contiguous_strides(xs);
    Shape ys(xs.size());
    for (size_t k = 0; k < xs.size(); ++k) ys[k] = xs[perm[k]];
    const auto yst = contiguous_strides(ys);
    Strided d;
    d.rank = static_cast<int>(xs.size());
    for (int k = 0; k < d.rank; ++k) {
      d.shape[k] = ys[k];
      d.src_stride[k] = xst[perm[k]];
      d.dst_stride[k] = yst[k];
    }
    strided_copy(t, a.get(), t, y.get(), d, nullptr);
  };
  time("strided_copy NCHW->NHWC f32 [64,3,224,224]", 2 * 4 * (64.0 * 3 * 224 * 224),
       [&] { permute(DType::f32, {64, 3, 224, 224}, {0, 2, 3, 1}); });
  time("strided_copy NCHW->NHWC f16 [64,256,14,14] (tiled)", 2 * 2 * (64.0 * 256 * 196),
       [&] { permute(DType::f16, {64, 256, 14, 14}, {0, 2, 3, 1}); });
  time("strided_copy NHWC->NCHW f32 [64,7,7,2048] (tiled)", 2 * 4 * (64.0 * 49 * 2048),
       [&] { permute(DType::f32, {64, 7, 7, 2048}, {0, 3, 1, 2}); });
  time("strided_copy concat slice f16 [64,28,28,128] into C=512", 2 * 2 * (64.0 * 784 * 128), [&] {
    Strided d;
    d.rank = 2;
    d.shape[0] = 64 * 784; d.shape[1] = 128;
    d.src_stride[0] = 128; d.src_stride[1] = 1;
    d.dst_stride[0] = 512; d.dst_stride[1] = 1;
    strided_copy(DType::f16, a.get(), DType::f16, static_cast<uint8_t*>(y.get()) + 128 * 2, d, nullptr);
  });
  time("strided_copy cast f32->f16 [64,56,56,64]", (4 + 2) * n / 4, [&] {
    Strided d;
    d.rank = 1;
    d.shape[0] = static_cast<int64_t>(n / 4);
    d.src_stride[0] = d.dst_stride[0] = 1;
    strided_copy(DType::f32, a.get(), DType::f16, y.get(), d, nullptr);
  });
  time("fill f32 [64,56,56,256]", 4 * n, [&] {
    fill(DType::f32, y.get(), static_cast<int64_t>(n), 0.5f, nullptr);
  });
  ANVIL_CUDA_CHECK(cudaEventDestroy(e0));
  ANVIL_CUDA_CHECK(cudaEventDestroy(e1));
}

// ---- argument errors ------------------------------------------------------------------------

TEST(CudaElementwise, BadArgumentsThrowAndEmptyLaunchesNothing) {
  SKIP_WITHOUT_GPU();
  DeviceBuffer b(64);
  EXPECT_THROW(unary(Unary::Relu, 0, 0, DType::i32, b.get(), b.get(), 4, nullptr), Error);
  EXPECT_THROW(unary(Unary::Relu, 0, 0, DType::f32, b.get(), b.get(), -1, nullptr), Error);
  Broadcast bad;
  bad.rank = kMaxRank + 1;
  EXPECT_THROW(binary(Binary::Add, DType::f32, b.get(), b.get(), b.get(), bad, Unary::Identity, 0,
                      0, nullptr),
               Error);
  EXPECT_THROW(fill(DType::f64, b.get(), 4, 0.f, nullptr), Error);
  Strided s;
  s.rank = 1;
  s.shape[0] = 4;
  s.src_stride[0] = s.dst_stride[0] = 1;
  EXPECT_THROW(strided_copy(DType::i16, b.get(), DType::f32, b.get(), s, nullptr), Error);
  // Zero elements: nothing runs, even on null pointers.
  unary(Unary::Sigmoid, 0, 0, DType::f32, nullptr, nullptr, 0, nullptr);
  fill(DType::f16, nullptr, 0, 1.f, nullptr);
  Broadcast empty;
  empty.rank = 2;
  empty.shape[0] = 3;
  empty.shape[1] = 0;
  binary(Binary::Mul, DType::f32, nullptr, nullptr, nullptr, empty, Unary::Relu, 0, 0, nullptr);
  s.shape[0] = 0;
  strided_copy(DType::f32, nullptr, DType::f16, nullptr, s, nullptr);
  channel_affine(DType::f32, nullptr, nullptr, nullptr, nullptr, 0, 3, 4, Unary::Relu, 0, 0, nullptr);
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace anvil::cuda
