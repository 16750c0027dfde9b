// TFLite requantization rounding (src/ops/tflite_quant.h) against independent exact
// math: 128-bit integer arithmetic with the rounding each step is specified to do
// (SaturatingRoundingDoublingHighMul: floor(a*b/2^31 + 1/2); RoundingDivideByPOT: nearest,
// ties away from zero; the 64-bit variant: one rounding of x * m16 / 2^(15 - shift), ties up),
// with negative values and exact ties; plus the quantized ops (TFLiteQuantizedAdd, Conv, Pool,
// Requantize, Quantize, Dequantize) on small cases against the same formulas.
#include "ops/tflite_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "anvil/error.h"
#include "unit/op_test_util.h"

namespace {

namespace q = anvil::tflite_quant;
using i128 = __int128;

i128 floor_div(i128 a, i128 b) {
  i128 r = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --r;
  return r;
}
i128 pow2(int e) { return static_cast<i128>(1) << e; }

// floor(a*b / 2^31 + 1/2), saturating the single overflow case
int32_t srdhm_exact(int32_t a, int32_t b) {
  if (a == b && a == std::numeric_limits<int32_t>::min())
    return std::numeric_limits<int32_t>::max();
  return static_cast<int32_t>(floor_div(2 * static_cast<i128>(a) * b + pow2(31), pow2(32)));
}
// x / 2^e to nearest, ties away from zero
int32_t rdbpot_exact(int32_t x, int e) {
  if (e == 0) return x;
  i128 ax = x < 0 ? -static_cast<i128>(x) : static_cast<i128>(x);
  i128 r = floor_div(ax + pow2(e - 1), pow2(e));
  return static_cast<int32_t>(x < 0 ? -r : r);
}
int32_t mbqm32_exact(int32_t x, int32_t m, int shift) {
  const int ls = shift > 0 ? shift : 0, rs = shift > 0 ? 0 : -shift;
  // int32 wrap of x * 2^ls
  const int32_t xs = static_cast<int32_t>(static_cast<uint32_t>(static_cast<int64_t>(x) << ls));
  return rdbpot_exact(srdhm_exact(xs, m), rs);
}
int32_t mbqm64_exact(int64_t x, int32_t m, int shift) {
  const i128 m16 = m < 0x7FFF0000 ? floor_div(static_cast<i128>(m) + pow2(15), pow2(16)) : 0x7FFF;
  const int ts = 15 - shift;
  return static_cast<int32_t>(floor_div(static_cast<i128>(x) * m16 + pow2(ts - 1), pow2(ts)));
}

struct Lcg {
  uint64_t s = 0x9E3779B97F4A7C15ull;
  uint32_t next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(s >> 32);
  }
  int32_t i32() { return static_cast<int32_t>(next()); }
};

TEST(TfliteRounding, DoublingHighMulTiesGoUp) {
  // a*b = 1.5 * 2^31 -> 2; -1.5 * 2^31 -> -1 (ties toward +infinity)
  EXPECT_EQ(q::SaturatingRoundingDoublingHighMul(32768, 98304), 2);
  EXPECT_EQ(q::SaturatingRoundingDoublingHighMul(-32768, 98304), -1);
  EXPECT_EQ(q::SaturatingRoundingDoublingHighMul(32768, -98304), -1);
  // 0.5 * 2^31 -> 1, -0.5 * 2^31 -> 0
  EXPECT_EQ(q::SaturatingRoundingDoublingHighMul(1 << 15, 1 << 15), 1);
  EXPECT_EQ(q::SaturatingRoundingDoublingHighMul(-(1 << 15), 1 << 15), 0);
  const int32_t mn = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(q::SaturatingRoundingDoublingHighMul(mn, mn), std::numeric_limits<int32_t>::max());
  EXPECT_EQ(q::SaturatingRoundingDoublingHighMul(mn, std::numeric_limits<int32_t>::max()),
            srdhm_exact(mn, std::numeric_limits<int32_t>::max()));
}

TEST(TfliteRounding, DivideByPotTiesAwayFromZero) {
  EXPECT_EQ(q::RoundingDivideByPOT(5, 1), 3);
  EXPECT_EQ(q::RoundingDivideByPOT(-5, 1), -3);
  EXPECT_EQ(q::RoundingDivideByPOT(-4, 1), -2);
  EXPECT_EQ(q::RoundingDivideByPOT(6, 2), 2);
  EXPECT_EQ(q::RoundingDivideByPOT(-6, 2), -2);
  EXPECT_EQ(q::RoundingDivideByPOT(-7, 2), -2);
  EXPECT_EQ(q::RoundingDivideByPOT(-9, 2), -2);
  EXPECT_EQ(q::RoundingDivideByPOT(std::numeric_limits<int32_t>::min(), 31), -1);
  EXPECT_EQ(q::RoundingDivideByPOT(std::numeric_limits<int32_t>::max(), 31), 1);
  for (int e = 0; e <= 31; ++e)
    for (int32_t x : {0, 1, -1, 2, -2, 3, -3, 1 << 20, -(1 << 20), (1 << 20) + (1 << 19),
                      -((1 << 20) + (1 << 19)), std::numeric_limits<int32_t>::max(),
                      std::numeric_limits<int32_t>::min()})
      EXPECT_EQ(q::RoundingDivideByPOT(x, e), rdbpot_exact(x, e)) << x << " / 2^" << e;
}

TEST(TfliteRounding, RandomAgainstExactMath) {
  Lcg r;
  for (int i = 0; i < 200000; ++i) {
    const int32_t a = r.i32(), b = r.i32();
    ASSERT_EQ(q::SaturatingRoundingDoublingHighMul(a, b), srdhm_exact(a, b)) << a << " " << b;
    const int e = static_cast<int>(r.next() % 32);
    ASSERT_EQ(q::RoundingDivideByPOT(a, e), rdbpot_exact(a, e)) << a << " " << e;
    // a multiplier as QuantizeMultiplier gives it, shift in [-31, 7]; x of accumulator size
    const int32_t m = static_cast<int32_t>((r.next() >> 1) | (1u << 30));
    const int shift = static_cast<int>(r.next() % 39) - 31;
    const int32_t x = static_cast<int32_t>(r.i32() >> (r.next() % 24));
    ASSERT_EQ(q::MultiplyByQuantizedMultiplier(x, m, shift), mbqm32_exact(x, m, shift))
        << x << " " << m << " " << shift;
    const int64_t x64 = static_cast<int64_t>(r.i32()) * static_cast<int64_t>(r.next() % 4096);
    const int sh64 = static_cast<int>(r.next() % 24) - 31;
    ASSERT_EQ(q::MultiplyByQuantizedMultiplier(x64, m, sh64), mbqm64_exact(x64, m, sh64))
        << x64 << " " << m << " " << sh64;
  }
}

TEST(TfliteRounding, MultiplierIsWithinOneOfTheExactProduct) {
  // double rounding may differ from the single exact rounding by at most 1
  Lcg r;
  for (int i = 0; i < 50000; ++i) {
    const int32_t m = static_cast<int32_t>((r.next() >> 1) | (1u << 30));
    const int shift = -static_cast<int>(r.next() % 20);
    const int32_t x = static_cast<int32_t>(r.i32() >> 8);
    const long double exact = static_cast<long double>(x) * m * std::pow(2.0L, shift - 31);
    EXPECT_LE(
        std::fabs(static_cast<long double>(q::MultiplyByQuantizedMultiplier(x, m, shift)) - exact),
        1.0L);
  }
}

TEST(TfliteRounding, Int64VariantTies) {
  // m = 2^30 reduces to 2^14; shift 0: x * 2^14 / 2^15 = x / 2, ties toward +infinity
  EXPECT_EQ(q::MultiplyByQuantizedMultiplier(int64_t{3}, 1 << 30, 0), 2);
  EXPECT_EQ(q::MultiplyByQuantizedMultiplier(int64_t{-3}, 1 << 30, 0), -1);
  EXPECT_EQ(q::MultiplyByQuantizedMultiplier(int64_t{-4}, 1 << 30, 0), -2);
  // the reduced multiplier saturates at 0x7FFF
  EXPECT_EQ(q::MultiplyByQuantizedMultiplier(int64_t{1} << 40, 0x7FFFFFFF, -20),
            mbqm64_exact(int64_t{1} << 40, 0x7FFFFFFF, -20));
  EXPECT_EQ(q::MultiplyByQuantizedMultiplier(-(int64_t{1} << 46), 0x7FFF8000, -31),
            mbqm64_exact(-(int64_t{1} << 46), 0x7FFF8000, -31));
}

TEST(TfliteRounding, QuantizeMultiplier) {
  int32_t m = 0;
  int s = 0;
  ASSERT_TRUE(q::QuantizeMultiplier(0.5, &m, &s));
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(s, 0);
  ASSERT_TRUE(q::QuantizeMultiplier(1.0, &m, &s));
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(s, 1);
  ASSERT_TRUE(q::QuantizeMultiplier(0.75, &m, &s));
  EXPECT_EQ(m, 3 << 29);
  EXPECT_EQ(s, 0);
  // q * 2^31 rounds up to 2^31: halved, shift + 1
  ASSERT_TRUE(q::QuantizeMultiplier(1.0 - std::ldexp(1.0, -40), &m, &s));
  EXPECT_EQ(m, 1 << 30);
  EXPECT_EQ(s, 1);
  // below 2^-32: flushed to zero
  ASSERT_TRUE(q::QuantizeMultiplier(1e-12, &m, &s));
  EXPECT_EQ(m, 0);
  EXPECT_EQ(s, 0);
  ASSERT_TRUE(q::QuantizeMultiplier(0.0, &m, &s));
  EXPECT_EQ(m, 0);
  EXPECT_FALSE(q::QuantizeMultiplier(-1.0, &m, &s));
  EXPECT_FALSE(q::QuantizeMultiplier(std::nan(""), &m, &s));
  Lcg r;
  for (int i = 0; i < 20000; ++i) {
    const double real =
        std::ldexp(1.0 + (r.next() / 4294967296.0), static_cast<int>(r.next() % 40) - 30);
    ASSERT_TRUE(q::QuantizeMultiplier(real, &m, &s));
    ASSERT_GE(m, 1 << 30);
    // m * 2^(s - 31) within half a unit of the 31-bit mantissa
    const double back = std::ldexp(static_cast<double>(m), s - 31);
    ASSERT_LE(std::fabs(back - real), std::ldexp(1.0, s - 32) * 1.0000001) << real;
  }
}

// ---- the quantized ops -------------------------------------------------------------------

using anvil::Attributes;
using anvil::Tensor;
using anvil::testing::run_single_op;

template <class T>
Tensor T_(anvil::Shape s, std::vector<T> v) {
  return Tensor::from_vector<T>(std::move(s), v);
}

TEST(TfliteQuantOps, AddGeneralPathMatchesFormula) {
  // int8 ADD, left shift 20, zero points -3 / 5 / 2, broadcast of B over rows
  Attributes a;
  const int32_t m1 = 1518500250, m2 = 1073741824, mo = 1431655765;
  const int s1 = -1, s2 = -2, so = -18;
  a.set("left_shift", int64_t{20});
  a.set("input1_zero_point", int64_t{-3});
  a.set("input2_zero_point", int64_t{5});
  a.set("output_zero_point", int64_t{2});
  a.set("input1_multiplier", int64_t{m1});
  a.set("input1_shift", int64_t{s1});
  a.set("input2_multiplier", int64_t{m2});
  a.set("input2_shift", int64_t{s2});
  a.set("output_multiplier", int64_t{mo});
  a.set("output_shift", int64_t{so});
  a.set("act_min", int64_t{-100});
  a.set("act_max", int64_t{127});
  std::vector<int8_t> av = {-128, -77, -3, 0, 1, 50, 99, 127}, bv = {-128, 5, 64, 127};
  Tensor A = T_<int8_t>({2, 4}, av), B = T_<int8_t>({4}, bv);
  Tensor Y = run_single_op("TFLiteQuantizedAdd", {A, B}, a, 1, -1)[0];
  ASSERT_EQ(Y.dtype(), anvil::DType::i8);
  for (int i = 0; i < 8; ++i) {
    const int32_t x1 = (av[static_cast<size_t>(i)] + 3) * (1 << 20),
                  x2 = (bv[static_cast<size_t>(i % 4)] - 5) * (1 << 20);
    const int32_t raw =
        rdbpot_exact(srdhm_exact(x1, m1), -s1) + rdbpot_exact(srdhm_exact(x2, m2), -s2);
    int32_t o = rdbpot_exact(srdhm_exact(raw, mo), -so) + 2;
    o = std::min(127, std::max(-100, o));
    EXPECT_EQ(Y.data<int8_t>()[i], o) << i;
  }
}

TEST(TfliteQuantOps, ConvInt16x8WithInt64Bias) {
  // (N=1, C=2, 3x3) int16 input, 2 output channels, 2x2 kernel, stride 1, pad bottom/right 1
  std::vector<int16_t> xv = {-32768, 1000, 32767, -5, 7, 300, 12,    -12000, 4,
                             9,      -9,   20000, -1, 0, 1,   30000, -30000, 2};
  std::vector<int8_t> wv = {127, -128, 3, 0, -7, 8, 100, -100, 1, 2, 3, 4, -5, -6, -7, -8};
  std::vector<int64_t> bv = {123456789, -987654};
  const std::vector<int64_t> ms = {1717986918, 1288490189}, ss = {-12, -9};
  Attributes a;
  a.set("pads", std::vector<int64_t>{0, 0, 1, 1});
  a.set("multipliers", ms);
  a.set("shifts", ss);
  a.set("accumulator", int64_t{64});
  Tensor Y = run_single_op(
      "TFLiteQuantizedConv",
      {T_<int16_t>({1, 2, 3, 3}, xv), T_<int8_t>({2, 2, 2, 2}, wv), T_<int64_t>({2}, bv)}, a, 1,
      1)[0];
  ASSERT_EQ(Y.shape(), (anvil::Shape{1, 2, 3, 3}));
  for (int m = 0; m < 2; ++m)
    for (int oy = 0; oy < 3; ++oy)
      for (int ox = 0; ox < 3; ++ox) {
        int64_t acc = bv[static_cast<size_t>(m)];
        for (int c = 0; c < 2; ++c)
          for (int ky = 0; ky < 2; ++ky)
            for (int kx = 0; kx < 2; ++kx) {
              const int iy = oy + ky, ix = ox + kx;
              if (iy >= 3 || ix >= 3) continue;
              acc += int64_t{wv[static_cast<size_t>(((m * 2 + c) * 2 + ky) * 2 + kx)]} *
                     xv[static_cast<size_t>((c * 3 + iy) * 3 + ix)];
            }
        int32_t o = mbqm64_exact(acc, static_cast<int32_t>(ms[static_cast<size_t>(m)]),
                                 static_cast<int>(ss[static_cast<size_t>(m)]));
        o = std::min(32767, std::max(-32768, o));
        EXPECT_EQ(Y.data<int16_t>()[(m * 3 + oy) * 3 + ox], o) << m << " " << oy << " " << ox;
      }
}

TEST(TfliteQuantOps, AveragePoolRoundsHalfAwayFromZero) {
  // windows {1, 2} -> 1.5 -> 2 and {-1, -2} -> -1.5 -> -2 (TFLite's integer average)
  Attributes a;
  a.set("mode", std::string("average"));
  a.set("kernel_shape", std::vector<int64_t>{1, 2});
  a.set("strides", std::vector<int64_t>{1, 2});
  Tensor Y = run_single_op("TFLiteQuantizedPool", {T_<int8_t>({1, 1, 1, 6}, {1, 2, -1, -2, -3, 5})},
                           a, 1, -1)[0];
  EXPECT_EQ(Y.data<int8_t>()[0], 2);
  EXPECT_EQ(Y.data<int8_t>()[1], -2);
  EXPECT_EQ(Y.data<int8_t>()[2], 1);
}

TEST(TfliteQuantOps, QuantizeDequantizeRequantize) {
  Attributes qa;
  qa.set("scale", 0.5);
  qa.set("zero_point", int64_t{-10});
  qa.set("dtype", std::string("i8"));
  // round(x / 0.5) half away from zero, + zp, clamped
  Tensor Q =
      run_single_op("TFLiteQuantize",
                    {anvil::testing::F({5}, {0.25f, -0.25f, 0.75f, 100.f, -100.f})}, qa, 1, -1)[0];
  const std::vector<int8_t> want = {-9, -11, -8, 127, -128};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Q.data<int8_t>()[i], want[static_cast<size_t>(i)]) << i;
  Attributes da;
  da.set("scale", 0.5);
  da.set("zero_point", int64_t{-10});
  Tensor D = run_single_op("TFLiteDequantize", {Q}, da, 1, -1)[0];
  EXPECT_EQ(D.data<float>()[0], 0.5f);
  EXPECT_EQ(D.data<float>()[3], 68.5f);
  Attributes ra;  // x * 0.75 (m = 3 * 2^29, shift 0), int8 -> int16, zero points 4 -> 0
  ra.set("multiplier", int64_t{3} << 29);
  ra.set("shift", int64_t{0});
  ra.set("input_zero_point", int64_t{4});
  ra.set("output_zero_point", int64_t{0});
  ra.set("dtype", std::string("i16"));
  Tensor R = run_single_op("TFLiteRequantize", {T_<int8_t>({4}, {6, 2, 127, -128})}, ra, 1, -1)[0];
  ASSERT_EQ(R.dtype(), anvil::DType::i16);
  // (6-4)*0.75 = 1.5 -> 2, (2-4)*0.75 = -1.5 -> -2 (ties away from zero after the high mul)
  EXPECT_EQ(R.data<int16_t>()[0], mbqm32_exact(2, 3 << 29, 0));
  EXPECT_EQ(R.data<int16_t>()[1], mbqm32_exact(-2, 3 << 29, 0));
  EXPECT_EQ(R.data<int16_t>()[2], mbqm32_exact(123, 3 << 29, 0));
  EXPECT_EQ(R.data<int16_t>()[3], mbqm32_exact(-132, 3 << 29, 0));
}

TEST(TfliteQuantOps, BadAttributesAreErrors) {
  Attributes a;
  a.set("left_shift", int64_t{40});
  for (const char* k : {"input1_multiplier", "input2_multiplier", "output_multiplier"})
    a.set(k, int64_t{1 << 30});
  for (const char* k : {"input1_shift", "input2_shift", "output_shift"}) a.set(k, int64_t{0});
  EXPECT_THROW(
      run_single_op("TFLiteQuantizedAdd", {T_<int8_t>({1}, {1}), T_<int8_t>({1}, {1})}, a, 1, -1),
      anvil::Error);
  a.set("left_shift", int64_t{20});
  a.set("output_shift", int64_t{3});  // the add path only scales down
  EXPECT_THROW(
      run_single_op("TFLiteQuantizedAdd", {T_<int8_t>({1}, {1}), T_<int8_t>({1}, {1})}, a, 1, -1),
      anvil::Error);
}

}  // namespace
