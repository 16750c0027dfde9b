// TFLite's integer arithmetic, exactly as its reference kernels compute it (the default
// "double rounding" build of tensorflow/lite/kernels/internal/common.{h,cc} and gemmlowp's
// fixedpoint.h), so that quantized models give TFLite's results bit for bit.
//
//  - SaturatingRoundingDoublingHighMul(a, b) = floor(a*b / 2^31 + 1/2) (ties toward +inf),
//    saturating the one overflow case a = b = INT32_MIN.
//  - RoundingDivideByPOT(x, e) = x / 2^e rounded to nearest, ties away from zero.
//  - MultiplyByQuantizedMultiplier(int32 x, m, shift): x * 2^max(shift,0) (int32), then the
//    two roundings above with right shift max(-shift, 0).
//  - MultiplyByQuantizedMultiplier(int64 x, m, shift): TFLite's 64-bit accumulator variant
//    (int16x8 conv/fully-connected with int64 bias): the multiplier reduced to 16 bits
//    ((m + 2^15) >> 16, or 0x7FFF), then one rounding: (x * m16 + 2^(14-shift)) >> (15-shift).
//  - QuantizeMultiplier(real): real = m * 2^(shift-31) with m in [2^30, 2^31) (frexp, then
//    round half away from zero of q * 2^31); tiny multipliers (shift < -31) flush to 0.
//
// Private to the library (src/); shared by the TFLite importer (which computes multipliers
// once) and the quantized reference kernels (src/ops/tflite_quant.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace anvil::tflite_quant {

/// int32 wrap-around of an int64 (what the reference kernels' int32 arithmetic does on the
/// two's-complement machines TFLite runs on).
inline int32_t wrap32(int64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

inline int32_t SaturatingRoundingDoublingHighMul(int32_t a, int32_t b) {
  const bool overflow = a == b && a == std::numeric_limits<int32_t>::min();
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  const int32_t high = static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
  return overflow ? std::numeric_limits<int32_t>::max() : high;
}

/// exponent in [0, 31].
inline int32_t RoundingDivideByPOT(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

inline int32_t MultiplyByQuantizedMultiplier(int32_t x, int32_t quantized_multiplier, int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  return RoundingDivideByPOT(
      SaturatingRoundingDoublingHighMul(
          wrap32(static_cast<int64_t>(x) * (int64_t{1} << left_shift)), quantized_multiplier),
      right_shift);
}

/// The 64-bit accumulator variant; shift in [-31, 7].
inline int32_t MultiplyByQuantizedMultiplier(int64_t x, int32_t quantized_multiplier, int shift) {
  const int32_t reduced_multiplier =
      (quantized_multiplier < 0x7FFF0000) ? ((quantized_multiplier + (1 << 15)) >> 16) : 0x7FFF;
  const int total_shift = 15 - shift;
  // x * reduced_multiplier + round, in int64 as TFLite does (wraps like it on overflow)
  const uint64_t prod =
      static_cast<uint64_t>(x) * static_cast<uint64_t>(static_cast<int64_t>(reduced_multiplier)) +
      (uint64_t{1} << (total_shift - 1));
  return static_cast<int32_t>(static_cast<int64_t>(prod) >> total_shift);
}

inline int32_t MultiplyByQuantizedMultiplierSmallerThanOneExp(int32_t x,
                                                              int32_t quantized_multiplier,
                                                              int left_shift) {
  return RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, quantized_multiplier),
                             -left_shift);
}

/// TfLiteRound: std::round (half away from zero).
inline double tflite_round(double v) { return std::round(v); }

/// real = quantized_multiplier * 2^(shift - 31). Returns false for non-finite or negative
/// inputs (the importer reports them).
inline bool QuantizeMultiplier(double real, int32_t* quantized_multiplier, int* shift) {
  if (!(real >= 0) || !std::isfinite(real)) return false;
  if (real == 0.0) {
    *quantized_multiplier = 0;
    *shift = 0;
    return true;
  }
  const double q = std::frexp(real, shift);
  auto q_fixed = static_cast<int64_t>(tflite_round(q * static_cast<double>(int64_t{1} << 31)));
  if (q_fixed > (int64_t{1} << 31)) return false;
  if (q_fixed == (int64_t{1} << 31)) {
    q_fixed /= 2;
    ++*shift;
  }
  if (*shift < -31) {
    *shift = 0;
    q_fixed = 0;
  }
  *quantized_multiplier = static_cast<int32_t>(q_fixed);
  return true;
}

/// Float -> quantized value as TFLite's AffineQuantize: round(f / scale) in float, + zero point,
/// clamped to [qmin, qmax].
inline int64_t quantize_value(float f, float scale, int64_t zero_point, int64_t qmin,
                              int64_t qmax) {
  const float r = std::round(f / scale);
  double v = static_cast<double>(r) + static_cast<double>(zero_point);
  if (!(v >= static_cast<double>(qmin))) return qmin;  // NaN too
  if (v > static_cast<double>(qmax)) return qmax;
  return static_cast<int64_t>(v);
}

// ---- gemmlowp's int32 fixed-point functions (fixedpoint.h), on raw Q(I).(31-I) values ----
namespace fp {

/// SaturatingRoundingMultiplyByPOT: x * 2^e, saturating for e > 0, rounding for e < 0.
inline int32_t mul_pot(int32_t x, int e) {
  if (e == 0) return x;
  if (e < 0) return RoundingDivideByPOT(x, -e);
  const int64_t v = static_cast<int64_t>(x) * (int64_t{1} << e);
  if (v > std::numeric_limits<int32_t>::max()) return std::numeric_limits<int32_t>::max();
  if (v < std::numeric_limits<int32_t>::min()) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(v);
}
inline int32_t mul(int32_t a, int32_t b) { return SaturatingRoundingDoublingHighMul(a, b); }
inline int32_t add(int32_t a, int32_t b) { return wrap32(int64_t{a} + b); }
inline int32_t sub(int32_t a, int32_t b) { return wrap32(int64_t{a} - b); }
/// Rescale<dst>(x in Q(src)).
inline int32_t rescale(int32_t x, int src_bits, int dst_bits) {
  return mul_pot(x, src_bits - dst_bits);
}
inline int32_t one(int int_bits) {
  return int_bits == 0 ? std::numeric_limits<int32_t>::max() : int32_t{1} << (31 - int_bits);
}
inline int32_t rounding_half_sum(int32_t a, int32_t b) {
  const int64_t s = int64_t{a} + b;
  return static_cast<int32_t>((s + (s >= 0 ? 1 : -1)) / 2);
}

/// exp(x) for x in [-1/4, 0), Q0.31.
inline int32_t exp_quarter(int32_t a) {
  const int32_t c = 1895147668, third = 715827883;
  const int32_t x = add(a, int32_t{1} << 28);
  const int32_t x2 = mul(x, x), x3 = mul(x2, x), x4 = mul(x2, x2);
  const int32_t x4_4 = mul_pot(x4, -2);
  const int32_t poly = mul_pot(add(mul(add(x4_4, x3), third), x2), -1);
  return add(c, mul(c, add(x, poly)));
}

/// exp(a) for a <= 0, a in Q(int_bits); result Q0.31.
inline int32_t exp_on_negative_values(int32_t a, int int_bits) {
  const int frac = 31 - int_bits;
  const int32_t quarter = int32_t{1} << (frac - 2);
  const int32_t a_mod = sub(a & (quarter - 1), quarter);
  int32_t result = exp_quarter(rescale(a_mod, int_bits, 0));
  const int32_t remainder = sub(a_mod, a);
  static const int32_t mults[7] = {1672461947, 1302514674, 790015084, 290630308,
                                   39332535,   720401,     242};
  for (int e = -2; e <= 4; ++e)
    if (int_bits > e && (remainder & (int32_t{1} << (frac + e))) != 0)
      result = mul(result, mults[e + 2]);
  if (int_bits > 5 && a < -(int32_t{1} << (36 - int_bits))) result = 0;
  if (a == 0) result = one(0);
  return result;
}

/// Newton-Raphson 1/(1+x) (or (1-x)/(1+x)) for x in (0, 1), Q0.31.
inline int32_t nr_reciprocal_q2(int32_t a) {
  const int32_t half_den = rounding_half_sum(a, one(0));
  int32_t x = add(1515870810, mul(half_den, -1010580540));  // Q2
  for (int i = 0; i < 3; ++i) {
    const int32_t hdx = mul(half_den, x);
    const int32_t omh = sub(one(2), hdx);
    x = add(x, rescale(mul(x, omh), 4, 2));
  }
  return x;
}
inline int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  return rescale(nr_reciprocal_q2(a) >> 1, 2, 0);
}
inline int32_t one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a) {
  return rescale(sub(nr_reciprocal_q2(a), one(2)), 2, 0);
}

/// logistic(a) and tanh(a), a in Q(int_bits); results Q0.31.
inline int32_t logistic(int32_t a, int int_bits) {
  if (a == 0) return int32_t{1} << 30;
  const int32_t abs_a = a > 0 ? a : wrap32(-int64_t{a});
  const int32_t pos =
      one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-int64_t{abs_a}), int_bits));
  return a > 0 ? pos : sub(one(0), pos);
}
inline int32_t tanh(int32_t a, int int_bits) {
  if (a == 0) return 0;
  const int32_t n = a < 0 ? a : wrap32(-int64_t{a});
  // exp(2n): ExactMulByPot<1> (a plain shift)
  const int32_t t = one_minus_x_over_one_plus_x_for_x_in_0_1(
      exp_on_negative_values(static_cast<int32_t>(static_cast<uint32_t>(n) << 1), int_bits));
  return a < 0 ? wrap32(-int64_t{t}) : t;
}

/// GetReciprocal (common.h): 1/x for x in Q(int_bits), Q0.31 and the bits above one.
inline int32_t reciprocal(int32_t x, int int_bits, int* num_bits_over_unit) {
  const int headroom_plus_one = x == 0 ? 32 : __builtin_clz(static_cast<uint32_t>(x));
  *num_bits_over_unit = int_bits - headroom_plus_one;
  const int32_t shifted_minus_one = static_cast<int32_t>(
      (static_cast<uint32_t>(x) << headroom_plus_one) - (static_cast<uint32_t>(1) << 31));
  return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one);
}

}  // namespace fp

/// MultiplyByQuantizedMultiplierGreaterThanOne (double rounding): SRDHM(x * 2^s, m).
inline int32_t MultiplyByQuantizedMultiplierGreaterThanOne(int32_t x, int32_t m, int left_shift) {
  return SaturatingRoundingDoublingHighMul(wrap32(int64_t{x} * (int64_t{1} << left_shift)), m);
}

/// CalculateInputRadius (quantization_util.cc).
inline int32_t CalculateInputRadius(int input_integer_bits, int input_left_shift,
                                    int total_signed_bits = 31) {
  const double r = 1.0 * ((1 << input_integer_bits) - 1) *
                   static_cast<double>(int64_t{1} << (total_signed_bits - input_integer_bits)) /
                   static_cast<double>(int64_t{1} << input_left_shift);
  return static_cast<int32_t>(std::floor(r));
}

}  // namespace anvil::tflite_quant
