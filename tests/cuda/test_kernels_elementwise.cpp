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
// strided_copy and fill are tested in test_kernels_copy.cpp; shared helpers:
// elementwise_test_util.h.
#include "cuda/elementwise_test_util.h"

namespace anvil::cuda {
namespace {

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
    case Unary::Identity:
      return x;
    case Unary::Relu:
      return x < 0 ? 0 : x;
    case Unary::LeakyRelu:
      return x >= 0 ? x : a * x;
    case Unary::Elu:
      return x >= 0 ? x : a * (std::exp(x) - 1);
    case Unary::Selu:
      return x > 0 ? b * x : b * (a * std::exp(x) - a);
    case Unary::Celu:
      return std::max(0.0, x) + std::min(0.0, a * (std::exp(x / a) - 1));
    case Unary::Sigmoid:
      return sigmoid(x);
    case Unary::HardSigmoid:
      return std::max(0.0, std::min(1.0, a * x + b));
    case Unary::HardSwish:
      return x * std::max(0.0, std::min(1.0, x / 6 + 0.5));
    case Unary::Tanh:
      return std::tanh(x);
    case Unary::Clip:
      return std::min(std::max(x, a), b);
    case Unary::Softplus:
      return std::log(1 + std::exp(x));
    case Unary::Softsign:
      return x / (1 + std::fabs(x));
    case Unary::Exp:
      return std::exp(x);
    case Unary::Log:
      return std::log(x);
    case Unary::Sqrt:
      return std::sqrt(x);
    case Unary::Rsqrt:
      return 1 / std::sqrt(x);
    case Unary::Abs:
      return std::fabs(x);
    case Unary::Neg:
      return -x;
    case Unary::Reciprocal:
      return 1 / x;
    case Unary::Gelu:
      return 0.5 * x * (1 + std::erf(x / std::numbers::sqrt2));
    case Unary::GeluTanh:
      return 0.5 * x *
             (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
    case Unary::Mish:
      return x * std::tanh(softplus(x));
    case Unary::Silu:
      return x * sigmoid(x);
    case Unary::Floor:
      return std::floor(x);
    case Unary::Ceil:
      return std::ceil(x);
    case Unary::Round:
      return round_half_even(x);
    case Unary::Erf:
      return std::erf(x);
    case Unary::Sin:
      return std::sin(x);
    case Unary::Cos:
      return std::cos(x);
    case Unary::Sign:
      return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case Unary::ThresholdedRelu:
      return x > a ? x : 0;
    case Unary::Pow:
      return std::pow(x, a);
    case Unary::Affine:
      return a * x + b;
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
    case Domain::Positive:
      v = random_vec(n, 0.05, 4, seed);
      break;
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
void check_unary(const UnaryCase& c, DType t, size_t n, size_t x_off, size_t y_off, bool in_place,
                 uint32_t seed) {
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
    case Binary::Add:
      return a + b;
    case Binary::Sub:
      return a - b;
    case Binary::Mul:
      return a * b;
    case Binary::Div:
      return a / b;
    case Binary::Pow:
      return std::pow(a, b);
    case Binary::Max:
      return std::max(a, b);
    case Binary::Min:
      return std::min(a, b);
    case Binary::PRelu:
      return a >= 0 ? a : a * b;
  }
  return std::nan("");
}

const std::pair<Binary, const char*> kBinaryOps[] = {
    {Binary::Add, "Add"}, {Binary::Sub, "Sub"}, {Binary::Mul, "Mul"}, {Binary::Div, "Div"},
    {Binary::Pow, "Pow"}, {Binary::Max, "Max"}, {Binary::Min, "Min"}, {Binary::PRelu, "PRelu"}};

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
  if (o.alias == 1)
    yp = const_cast<void*>(ap);
  else if (o.alias == 2)
    yp = const_cast<void*>(bp);
  else
    poison(yd.get(), yd.size());
  binary(op, t, ap, bp, yp, make_broadcast(as, bs), o.post, o.pa, o.pb, nullptr);
  const std::vector<double> got = decode(t, download_bytes(yp, ny * es));
  expect_close(got, want, t,
               std::string(name) + " " + shape_str(as) + " op " + shape_str(bs) + " post " +
                   std::to_string(static_cast<int>(o.post)) + (o.alias ? " in place" : "") +
                   " offsets " + std::to_string(o.a_off) + "/" + std::to_string(o.b_off) + "/" +
                   std::to_string(o.y_off));
}

// (a shape, b shape): broadcasting patterns of the CNNs and odd sizes.
const std::pair<Shape, Shape> kPatterns[] = {
    {{7, 13, 5}, {7, 13, 5}},        // same shape, odd
    {{7, 13, 5}, {1, 1, 1}},         // scalar b
    {{1, 1, 1}, {7, 13, 5}},         // scalar a
    {{2, 6, 7, 9}, {1, 6, 1, 1}},    // NCHW per-channel, odd H*W
    {{2, 8, 4, 4}, {1, 8, 1, 1}},    // NCHW per-channel, H*W % 8 == 0 (packs, b broadcast)
    {{2, 5, 3, 16}, {1, 1, 1, 16}},  // NHWC per-channel, C % 8 == 0 (packs of both)
    {{2, 5, 3, 7}, {1, 1, 1, 7}},    // NHWC per-channel, odd C
    {{4, 1, 9}, {1, 6, 1}},          // both sides broadcast
    {{4, 1, 8}, {1, 6, 1}},          // both sides broadcast, packable inner dim for a
    {{7, 1, 5}, {7, 13, 5}},         // middle-dim broadcast of a
    {{3, 1, 2, 1, 5, 2}, {1, 4, 2, 3, 1, 2}},  // rank 6
    {{37}, {37}},                              // rank 1 with a tail after the packs
    {{}, {}},                                  // rank 0: one element
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
    check_binary(Binary::Mul, "Mul", t, {2, 5, 3, 16}, {1, 1, 1, 16}, seed++,
                 ya);  // a not broadcast
    check_binary(Binary::Sub, "Sub", t, {37}, {1}, seed++, ya);
    BinOpts yb;
    yb.alias = 2;
    check_binary(Binary::Div, "Div", t, {1, 8, 1, 1}, {2, 8, 4, 4}, seed++, yb);  // b not broadcast
    for (const BinOpts& off :
         {BinOpts{Unary::Identity, 0, 0, 1, 0, 0, 0}, BinOpts{Unary::Relu, 0, 0, 0, 3, 0, 0},
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
    binary(op, DType::f32, ad.get(), bd.get(), yd.get(), make_broadcast({4}, {4}), Unary::Identity,
           0, 0, nullptr);
    const auto y = download_vec<float>(yd.get(), 4);
    EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1]) && std::isnan(y[2]));
    EXPECT_EQ(y[3], op == Binary::Max ? 3.f : 2.f);
  }
}

// ---- channel affine -------------------------------------------------------------------------

void check_affine(DType t, int64_t outer, int64_t c, int64_t inner, Unary post, float pa, float pb,
                  uint32_t seed, size_t off = 0) {
  const size_t n = static_cast<size_t>(outer * c * inner), es = element_size(t);
  const auto x = rounded(t, random_vec(n, -4, 4, seed));
  std::vector<float> scale, shift;
  for (double v : random_vec(static_cast<size_t>(c), 0.2, 2.0, seed + 1))
    scale.push_back(static_cast<float>(v));
  for (double v : random_vec(static_cast<size_t>(c), -1.0, 1.0, seed + 2))
    shift.push_back(static_cast<float>(v));
  std::vector<double> want(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t ch = (i / static_cast<size_t>(inner)) % static_cast<size_t>(c);
    want[i] = ref_unary(post, pa, pb, x[i] * static_cast<double>(scale[ch]) + shift[ch]);
  }
  std::vector<uint8_t> xb(off * es, 0);
  const auto e = encode(t, x);
  xb.insert(xb.end(), e.begin(), e.end());
  DeviceBuffer xd = upload_bytes(xb), yd((n + off) * es), sd = upload_vec(scale),
               hd = upload_vec(shift);
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
    check_affine(t, 2 * 5 * 3, 16, 1, Unary::Relu, 0, 0, seed += 3);  // NHWC, packs of channels
    check_affine(t, 2 * 5 * 3, 7, 1, Unary::Relu, 0, 0, seed += 3);   // NHWC, odd C
    check_affine(t, 2, 6, 49, Unary::Relu, 0, 0, seed += 3);          // NCHW 7x7
    check_affine(t, 2, 6, 64, Unary::Identity, 0, 0, seed += 3);      // NCHW 8x8 (packs)
    check_affine(t, 3, 5, 16, Unary::HardSwish, 0, 0, seed += 3);
    check_affine(t, 3, 5, 16, Unary::Clip, 0, 6, seed += 3);
    check_affine(t, 1, 32, 1, Unary::Sigmoid, 0, 0, seed += 3);
    check_affine(t, 2, 6, 64, Unary::Relu, 0, 0, seed += 3, 1);  // unaligned
    check_affine(t, 4, 1, 1, Unary::Identity, 0, 0, seed += 3);  // C = 1
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
    d.shape[0] = 5;
    d.shape[1] = 6;  // y[j, i] = x[5 - i, 4 - j] (transposed, reversed)
    d.src_stride[0] = -1;
    d.src_stride[1] = -5;
    d.dst_stride[0] = 6;
    d.dst_stride[1] = 1;
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
  channel_affine(DType::f32, nullptr, nullptr, nullptr, nullptr, 0, 3, 4, Unary::Relu, 0, 0,
                 nullptr);
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace anvil::cuda
