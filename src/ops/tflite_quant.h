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

}  // namespace anvil::tflite_quant
