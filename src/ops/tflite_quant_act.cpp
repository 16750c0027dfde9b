// Quantized activations and reductions with TensorFlow Lite's integer semantics (the TFLite
// importer emits them; the fixed-point parameters are computed there, in each kernel's Prepare
// step as TFLite does). Bit for bit what TFLite's reference kernels compute:
//
//   TFLiteQuantizedSoftmax    over the last axis. int8/uint8 input: gemmlowp's fixed-point
//                             exp (Q5.26 differences, Q12 accumulator, reciprocal), output
//                             int8/uint8/int16; int16 input: the exp and 1/(1+x) lookup tables
//                             (513 entries, interpolated) of LUTPopulate<int16_t>
//   TFLiteQuantizedLogistic   int8: gemmlowp logistic on Q4.27, output zero point -128
//   TFLiteQuantizedTanh       int8: gemmlowp tanh on Q4.27, output scale 1/128
//   TFLiteQuantizedLeakyRelu  MBQM(x - zp) with the identity or the alpha multiplier, + out zp
//   TFLiteQuantizedHardSwish  reference_ops::HardSwish: int16 fixed-point "reluish" factor
//   TFLiteQuantizedCompare    int8 comparisons with TFLite's rescaling (left shift 8)
//   TFLiteQuantizedReduce     MEAN / SUM (int32 sum, rescaled; MEAN folds 1/n into the
//                             multiplier as reduce.h does), REDUCE_MAX / REDUCE_MIN (raw values)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/broadcast.h"
#include "ops/nn_util.h"
#include "ops/ref_util.h"
#include "ops/tflite_quant.h"

namespace anvil {
namespace {

namespace q = tflite_quant;
using nn::fail;

bool is_q(DType t) { return t == DType::i8 || t == DType::u8 || t == DType::i16; }
int64_t tmin(DType t) { return t == DType::i8 ? -128 : t == DType::u8 ? 0 : -32768; }
int64_t tmax(DType t) { return t == DType::i8 ? 127 : t == DType::u8 ? 255 : 32767; }
DType parse_dtype(const std::string& op, const std::string& s) {
  if (s == "i8") return DType::i8;
  if (s == "u8") return DType::u8;
  if (s == "i16") return DType::i16;
  fail(op, "dtype", "expected i8, u8 or i16, found '" + s + "'");
}
void require_q(const std::string& op, DType t) {
  if (!is_q(t))
    fail(op, "X", std::string("expected an i8, u8 or i16 tensor, found ") + dtype_name(t));
}
int32_t get_i32(const std::string& op, const Attributes& a, const std::string& n, int64_t lo,
                int64_t hi, int64_t dflt = 0) {
  const int64_t v = a.get_int(n, dflt);
  if (v < lo || v > hi)
    fail(op, n,
         n + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found " +
             std::to_string(v));
  return static_cast<int32_t>(v);
}
constexpr int64_t kI32Max = std::numeric_limits<int32_t>::max();
int64_t clampv(int64_t v, DType t) { return std::min(tmax(t), std::max(tmin(t), v)); }

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedSoftmax

/// LUTPopulate<int16_t> (common.h, float version) for exp (on [-10, 0]) or 1/(1+x) (on [0, 1]).
void lut_populate_int16(float input_scale, int32_t input_zp, float output_scale, int32_t output_zp,
                        bool exp_fn, int16_t* lut) {
  auto f = [&](float v) { return exp_fn ? std::exp(v) : 1.0f / (1.0f + v); };
  const float input_min = input_scale * static_cast<float>(-32768 - input_zp);
  const float input_max = input_scale * static_cast<float>(32767 - input_zp);
  const float output_min = output_scale * static_cast<float>(-32768 - output_zp);
  const float output_max = output_scale * static_cast<float>(32767 - output_zp);
  const int nb_steps = 512;
  const float step = (input_max - input_min) / nb_steps;
  const float half_step = step / 2;
  const float inv = 65536.0f / (output_max - output_min);
  for (int i = 0; i < nb_steps; i++) {
    const float val = f(input_min + static_cast<float>(i) * step);
    const float val_mid = f(input_min + static_cast<float>(i) * step + half_step);
    const float val_next = f(input_min + static_cast<float>(i + 1) * step);
    const float sample = std::round(val * inv);
    const float mid_interp = std::round((val_next * inv + std::round(val * inv)) / 2);
    const float mid_val = std::round(val_mid * inv);
    const float bias = std::round((mid_interp - mid_val) / 2);
    lut[i] = static_cast<int16_t>(std::min(std::max(sample - bias, -32768.0f), 32767.0f));
  }
  lut[nb_steps] =
      static_cast<int16_t>(std::min(std::max(std::round(f(input_max) * inv), -32768.0f), 32767.0f));
}
int16_t lut_lookup(int16_t value, const int16_t* lut) {
  const uint16_t index = static_cast<uint16_t>(256 + (value >> 7));
  const int16_t offset = value & 0x7f;
  const int16_t base = lut[index];
  const int16_t slope = static_cast<int16_t>(lut[index + 1] - lut[index]);
  const int delta = (slope * offset + 64) >> 7;
  return static_cast<int16_t>(base + delta);
}

void softmax_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedSoftmax";
  require_q(op, ctx.dtype(0));
  if (ctx.shape(0).empty()) fail(op, "X", "softmax of a scalar");
  const DType out = parse_dtype(op, ctx.attrs().get_string("dtype"));
  if (ctx.dtype(0) == DType::i16 && out != DType::i16)
    fail(op, "dtype", "int16 softmax gives int16");
  get_i32(op, ctx.attrs(), "input_multiplier", 0, kI32Max);
  get_i32(op, ctx.attrs(), "input_left_shift", -31, 31);
  ctx.set_output(0, out, ctx.shape(0));
}
void softmax_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedSoftmax";
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const int32_t mult = get_i32(op, a, "input_multiplier", 0, kI32Max);
  const int shift = get_i32(op, a, "input_left_shift", -31, 31);
  const int64_t depth = X.shape().back();
  const int64_t outer = depth == 0 ? 0 : X.numel() / depth;
  if (X.dtype() == DType::i16) {
    std::vector<int16_t> exp_lut(513), recip_lut(513);
    lut_populate_int16(10.0f / 65535.0f, 32767, 2.0f / 65535.0f, 0, true, exp_lut.data());
    lut_populate_int16(1.0f / 65535.0f, -32768, 2.0f / 65535.0f, 0, false, recip_lut.data());
    std::vector<int16_t> e(static_cast<size_t>(depth));
    for (int64_t i = 0; i < outer; ++i) {
      int64_t mx = -32768;
      for (int64_t c = 0; c < depth; ++c) mx = std::max(mx, ref::load_int(X, i * depth + c));
      int32_t sum = 0;
      for (int64_t c = 0; c < depth; ++c) {
        const int32_t diff = static_cast<int32_t>(ref::load_int(X, i * depth + c) - mx);
        const int32_t scaled = q::MultiplyByQuantizedMultiplier(diff, mult, shift);
        const int32_t sym = std::min(std::max(scaled + 32767, -32768), 32767);
        e[static_cast<size_t>(c)] = lut_lookup(static_cast<int16_t>(sym), exp_lut.data());
        sum += e[static_cast<size_t>(c)];
      }
      const int headroom_plus_one = sum == 0 ? 32 : __builtin_clz(static_cast<uint32_t>(sum));
      const int32_t shifted_sum = static_cast<int32_t>(
          ((static_cast<int64_t>(sum) << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
      const int32_t sym_sum = shifted_sum + (-((1 << 15) + (1 << 16)));
      const int16_t sat = static_cast<int16_t>(std::min(std::max(sym_sum, -32768), 32767));
      const int16_t recip = lut_lookup(sat, recip_lut.data());
      const int right_shift = 31 - headroom_plus_one;
      const int64_t round = int64_t{1} << (right_shift - 1);
      for (int64_t c = 0; c < depth; ++c) {
        const int32_t r = static_cast<int32_t>(
            (static_cast<int64_t>(e[static_cast<size_t>(c)]) * recip + round) >> right_shift);
        ref::store_int(Y, i * depth + c, std::min(std::max(r, 0), 32767));
      }
    }
    return;
  }
  // int8 / uint8 input: reference_ops::Softmax
  const int32_t diff_min = get_i32(op, a, "diff_min", -kI32Max, 0);
  constexpr int kScaledDiffBits = 5, kAccumBits = 12;
  const int out_bits = Y.dtype() == DType::i16 ? 16 : 8;
  const int64_t out_lo = Y.dtype() == DType::u8 ? 0 : tmin(Y.dtype());
  for (int64_t i = 0; i < outer; ++i) {
    int64_t mx = tmin(X.dtype());
    for (int64_t c = 0; c < depth; ++c) mx = std::max(mx, ref::load_int(X, i * depth + c));
    int32_t sum = 0;  // Q12.19
    auto exp_of = [&](int32_t diff) {
      const int32_t rescaled = q::MultiplyByQuantizedMultiplierGreaterThanOne(diff, mult, shift);
      return q::fp::exp_on_negative_values(rescaled, kScaledDiffBits);
    };
    for (int64_t c = 0; c < depth; ++c) {
      const int32_t diff = static_cast<int32_t>(ref::load_int(X, i * depth + c) - mx);
      if (diff >= diff_min) sum = q::fp::add(sum, q::fp::rescale(exp_of(diff), 0, kAccumBits));
    }
    int bits_over_unit = 0;
    const int32_t scale = q::fp::reciprocal(sum, kAccumBits, &bits_over_unit);
    const int exponent = bits_over_unit + 31 - out_bits;
    if (exponent < 0 || exponent > 31) fail(op, "X", "softmax sum out of range");
    for (int64_t c = 0; c < depth; ++c) {
      const int32_t diff = static_cast<int32_t>(ref::load_int(X, i * depth + c) - mx);
      if (diff >= diff_min) {
        const int32_t unsat = q::RoundingDivideByPOT(q::fp::mul(scale, exp_of(diff)), exponent);
        const int64_t shifted = int64_t{unsat} + out_lo;
        ref::store_int(Y, i * depth + c, clampv(shifted, Y.dtype()));
      } else {
        ref::store_int(Y, i * depth + c, out_lo);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedLogistic / TFLiteQuantizedTanh (int8)

void sigmoid_infer(InferContext& ctx, const std::string& op) {
  if (ctx.dtype(0) != DType::i8) fail(op, "X", "expected an i8 tensor");
  get_i32(op, ctx.attrs(), "input_multiplier", 0, kI32Max);
  get_i32(op, ctx.attrs(), "input_left_shift", -31, 31);
  get_i32(op, ctx.attrs(), "input_zero_point", -65536, 65536);
  get_i32(op, ctx.attrs(), "input_range_radius", 0, kI32Max);
  ctx.set_output(0, DType::i8, ctx.shape(0));
}
void sigmoid_kernel(KernelContext& ctx, const std::string& op, bool logistic) {
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const int32_t mult = get_i32(op, a, "input_multiplier", 0, kI32Max);
  const int shift = get_i32(op, a, "input_left_shift", -31, 31);
  const int32_t zp = get_i32(op, a, "input_zero_point", -65536, 65536);
  const int32_t radius = get_i32(op, a, "input_range_radius", 0, kI32Max);
  for (int64_t i = 0; i < X.numel(); ++i) {
    const int32_t v = static_cast<int32_t>(ref::load_int(X, i)) - zp;
    int64_t r = 0;
    if (v <= -radius) {
      r = -128;
    } else if (v >= radius) {
      r = 127;
    } else {
      const int32_t in_q4 = q::MultiplyByQuantizedMultiplier(v, mult, shift);
      if (logistic) {
        r = int64_t{q::RoundingDivideByPOT(q::fp::logistic(in_q4, 4), 23)} - 128;
      } else {
        r = q::RoundingDivideByPOT(q::fp::tanh(in_q4, 4), 24);
      }
    }
    ref::store_int(Y, i, clampv(r, DType::i8));
  }
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedLeakyRelu

void leaky_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedLeakyRelu";
  require_q(op, ctx.dtype(0));
  for (const char* n : {"multiplier_identity", "multiplier_alpha"})
    get_i32(op, ctx.attrs(), n, 0, kI32Max);
  ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
}
void leaky_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedLeakyRelu";
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const int32_t mi = get_i32(op, a, "multiplier_identity", 0, kI32Max),
                ma = get_i32(op, a, "multiplier_alpha", 0, kI32Max);
  const int si = get_i32(op, a, "shift_identity", -31, 30),
            sa = get_i32(op, a, "shift_alpha", -31, 30);
  const bool neg = a.get_int("alpha_negative", 0) != 0;
  const int32_t izp = get_i32(op, a, "input_zero_point", -65536, 65536),
                ozp = get_i32(op, a, "output_zero_point", -65536, 65536);
  for (int64_t i = 0; i < X.numel(); ++i) {
    const int32_t v = static_cast<int32_t>(ref::load_int(X, i)) - izp;
    int64_t r = ozp;
    if (v >= 0) {
      r += q::MultiplyByQuantizedMultiplier(v, mi, si);
    } else {
      const int32_t s = q::MultiplyByQuantizedMultiplier(v, ma, sa);
      r += neg ? -int64_t{s} : int64_t{s};
    }
    ref::store_int(Y, i, clampv(r, Y.dtype()));
  }
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedHardSwish (reference_ops::HardSwish, int16 fixed-point arithmetic)

int16_t srdhm16(int16_t a, int16_t b) {  // gemmlowp SaturatingRoundingDoublingHighMul, int16
  if (a == b && a == std::numeric_limits<int16_t>::min()) return 32767;
  const int32_t ab = int32_t{a} * int32_t{b};
  const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return static_cast<int16_t>((ab + nudge) / (1 << 15));
}
int16_t sdhm16(int16_t a, int16_t b) {  // SaturatingDoublingHighMul (no rounding)
  if (a == b && a == std::numeric_limits<int16_t>::min()) return 32767;
  return static_cast<int16_t>((int32_t{a} * int32_t{b}) / (1 << 15));
}
int16_t rdbpot16(int16_t x, int e) {
  const int32_t mask = (1 << e) - 1, rem = x & mask, thr = (mask >> 1) + (x < 0 ? 1 : 0);
  return static_cast<int16_t>((x >> e) + (rem > thr ? 1 : 0));
}
int16_t sat_lshift16(int16_t v, int amount) {
  return static_cast<int16_t>(
      std::clamp<int64_t>(int64_t{v} * (int64_t{1} << amount), -32768, 32767));
}

void hswish_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedHardSwish";
  if (ctx.dtype(0) != DType::i8 && ctx.dtype(0) != DType::u8)
    fail(op, "X", "expected an i8 or u8 tensor");
  get_i32(op, ctx.attrs(), "output_multiplier", -32768, 32767);
  get_i32(op, ctx.attrs(), "reluish_multiplier", -32768, 32767);
  get_i32(op, ctx.attrs(), "output_exponent", -15, 0);
  get_i32(op, ctx.attrs(), "reluish_exponent", -15, 15);
  ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
}
void hswish_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedHardSwish";
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const int16_t om = static_cast<int16_t>(get_i32(op, a, "output_multiplier", -32768, 32767)),
                rm = static_cast<int16_t>(get_i32(op, a, "reluish_multiplier", -32768, 32767));
  const int oe = get_i32(op, a, "output_exponent", -15, 0),
            re = get_i32(op, a, "reluish_exponent", -15, 15);
  const int32_t izp = get_i32(op, a, "input_zero_point", -65536, 65536),
                ozp = get_i32(op, a, "output_zero_point", -65536, 65536);
  for (int64_t i = 0; i < X.numel(); ++i) {
    const int16_t in = static_cast<int16_t>(ref::load_int(X, i) - izp);
    const int16_t hires = static_cast<int16_t>(in * (1 << 7));
    const int16_t preshift = srdhm16(hires, om);
    int16_t r = hires;
    if (re > 0) r = sat_lshift16(r, re - 1);
    r = srdhm16(r, rm);
    if (re > 0) r = sat_lshift16(r, 1);
    if (re < 0) r = rdbpot16(r, -re);
    r = static_cast<int16_t>((r + (1 << 15)) >> 1);
    int16_t out = rdbpot16(sdhm16(r, preshift), -oe);
    out = static_cast<int16_t>(out + ozp);
    ref::store_int(Y, i, clampv(out, Y.dtype()));
  }
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedCompare (comparisons.h ComparisonWithScaling, numpy broadcasting)

void compare_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedCompare";
  require_q(op, ctx.dtype(0));
  if (ctx.dtype(1) != ctx.dtype(0)) fail(op, "B", "inputs must have the same dtype");
  auto out = ref::broadcast_shapes({ctx.shape(0), ctx.shape(1)});
  if (!out)
    fail(op, "B",
         "shapes do not broadcast: " + shape_str(ctx.shape(0)) + " vs " + shape_str(ctx.shape(1)));
  const std::string m = ctx.attrs().get_string("mode");
  if (m != "eq" && m != "ne" && m != "gt" && m != "ge" && m != "lt" && m != "le")
    fail(op, "mode", "expected eq, ne, gt, ge, lt or le, found '" + m + "'");
  ctx.set_output(0, DType::boolean, *out);
}
void compare_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedCompare";
  nn::require_inputs(ctx, 2);
  const Tensor &A = ctx.inputs[0], &B = ctx.inputs[1];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const std::string m = a.get_string("mode");
  const int ls = get_i32(op, a, "left_shift", 0, 16);
  const int32_t o1 = get_i32(op, a, "input1_offset", -65536, 65536),
                o2 = get_i32(op, a, "input2_offset", -65536, 65536);
  const int32_t m1 = get_i32(op, a, "input1_multiplier", 0, kI32Max),
                m2 = get_i32(op, a, "input2_multiplier", 0, kI32Max);
  const int s1 = get_i32(op, a, "input1_shift", -31, 0),
            s2 = get_i32(op, a, "input2_shift", -31, 0);
  auto scaled = [&](int64_t v, int32_t off, int32_t mult, int sh) {
    const int32_t shifted = q::wrap32((v + off) * (int64_t{1} << ls));
    return q::MultiplyByQuantizedMultiplierSmallerThanOneExp(shifted, mult, sh);
  };
  const Shape shapes[2] = {A.shape(), B.shape()};
  ref::for_each_broadcast(Y.shape(), std::span<const Shape>(shapes, 2),
                          [&](int64_t o, const int64_t* off) {
                            const int32_t x = scaled(ref::load_int(A, off[0]), o1, m1, s1),
                                          y = scaled(ref::load_int(B, off[1]), o2, m2, s2);
                            const bool r = m == "eq"   ? x == y
                                           : m == "ne" ? x != y
                                           : m == "gt" ? x > y
                                           : m == "ge" ? x >= y
                                           : m == "lt" ? x < y
                                                       : x <= y;
                            ref::store_int(Y, o, r ? 1 : 0);
                          });
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedReduce

struct ReducePlan {
  Shape out, out_keep;
  std::vector<bool> reduced;
};
ReducePlan reduce_plan(const std::string& op, const Shape& x, const Attributes& a) {
  ReducePlan p;
  const int r = static_cast<int>(x.size());
  p.reduced.assign(static_cast<size_t>(r), false);
  for (int64_t ax : a.get_ints("axes")) {
    const int64_t aa = ax < 0 ? ax + r : ax;
    if (aa < 0 || aa >= r) fail(op, "axes", "axis " + std::to_string(ax) + " out of range");
    p.reduced[static_cast<size_t>(aa)] = true;
  }
  const bool keep = a.get_int("keepdims", 1) != 0;
  for (int i = 0; i < r; ++i) {
    const bool red = p.reduced[static_cast<size_t>(i)];
    p.out_keep.push_back(red ? 1 : x[static_cast<size_t>(i)]);
    if (!red || keep) p.out.push_back(red ? 1 : x[static_cast<size_t>(i)]);
  }
  return p;
}
void reduce_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedReduce";
  require_q(op, ctx.dtype(0));
  const std::string mode = ctx.attrs().get_string("mode");
  if (mode != "mean" && mode != "sum" && mode != "max" && mode != "min")
    fail(op, "mode", "expected mean, sum, max or min, found '" + mode + "'");
  ctx.set_output(0, ctx.dtype(0), reduce_plan(op, ctx.shape(0), ctx.attrs()).out);
}
void reduce_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedReduce";
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const std::string mode = a.get_string("mode");
  const ReducePlan p = reduce_plan(op, X.shape(), a);
  const int64_t nout = shape_numel(p.out_keep);
  const int r = static_cast<int>(X.rank());
  // output index of each input element
  std::vector<int64_t> acc(static_cast<size_t>(nout), 0);
  const bool minmax = mode == "max" || mode == "min";
  if (minmax) std::fill(acc.begin(), acc.end(), mode == "max" ? tmin(X.dtype()) : tmax(X.dtype()));
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  int64_t n_in_axis = 1;
  for (int i = 0; i < r; ++i)
    if (p.reduced[static_cast<size_t>(i)]) n_in_axis *= X.dim(i);
  for (int64_t e = 0; e < X.numel(); ++e) {
    int64_t o = 0;
    for (int i = 0; i < r; ++i)
      o = o * p.out_keep[static_cast<size_t>(i)] +
          (p.reduced[static_cast<size_t>(i)] ? 0 : idx[static_cast<size_t>(i)]);
    const int64_t v = ref::load_int(X, e);
    int64_t& s = acc[static_cast<size_t>(o)];
    if (mode == "max")
      s = std::max(s, v);
    else if (mode == "min")
      s = std::min(s, v);
    else
      s = q::wrap32(s + v);  // TFLite sums in int32
    for (int i = r - 1; i >= 0; --i) {
      if (++idx[static_cast<size_t>(i)] < X.dim(i)) break;
      idx[static_cast<size_t>(i)] = 0;
    }
  }
  if (minmax || X.numel() == 0) {
    for (int64_t o = 0; o < nout; ++o)
      ref::store_int(Y, o, X.numel() == 0 ? 0 : acc[static_cast<size_t>(o)]);
    return;
  }
  int32_t m = get_i32(op, a, "multiplier", 0, kI32Max);
  int s = get_i32(op, a, "shift", -31, 30);
  const int32_t izp = get_i32(op, a, "input_zero_point", -65536, 65536),
                ozp = get_i32(op, a, "output_zero_point", -65536, 65536);
  if (mode == "mean") {
    int sh = 63 - __builtin_clzll(static_cast<uint64_t>(n_in_axis));
    sh = std::min(sh, 32);
    sh = std::min(sh, 31 + s);
    m = static_cast<int32_t>((static_cast<int64_t>(m) << sh) / n_in_axis);
    s -= sh;
  }
  for (int64_t o = 0; o < nout; ++o) {
    const int32_t shifted = q::wrap32(acc[static_cast<size_t>(o)] - int64_t{izp} * n_in_axis);
    const int64_t v = int64_t{q::MultiplyByQuantizedMultiplier(shifted, m, s)} + ozp;
    ref::store_int(Y, o, clampv(v, Y.dtype()));
  }
}

// ---------------------------------------------------------------------------------------
// registration

const OpRegistrar reg_softmax{OpDef{
    "TFLiteQuantizedSoftmax",
    "quantization",
    "TFLite quantized SOFTMAX over the last axis (int8/uint8 -> int8/uint8/int16 fixed-point exp; "
    "int16 -> int16 lookup tables)",
    1,
    1,
    1,
    1,
    {{"dtype", AttrType::String, "output dtype: i8, u8 or i16"},
     {"input_multiplier", AttrType::Int, "beta * input scale, fixed point"},
     {"input_left_shift", AttrType::Int, "its exponent"},
     {"diff_min", AttrType::Int, "8-bit input: differences below it give 0"}},
    softmax_infer,
    softmax_kernel}};

std::vector<AttrSpec> sigmoid_specs() {
  return {{"input_multiplier", AttrType::Int, "input scale * 2^27, fixed point"},
          {"input_left_shift", AttrType::Int, "its exponent"},
          {"input_zero_point", AttrType::Int, "input zero point"},
          {"input_range_radius", AttrType::Int, "inputs beyond it saturate"}};
}
const OpRegistrar reg_logistic{
    OpDef{"TFLiteQuantizedLogistic", "quantization",
          "TFLite int8 LOGISTIC (gemmlowp fixed-point logistic; output scale 1/256, zero point "
          "-128)",
          1, 1, 1, 1, sigmoid_specs(),
          [](InferContext& c) { sigmoid_infer(c, "TFLiteQuantizedLogistic"); },
          [](KernelContext& c) { sigmoid_kernel(c, "TFLiteQuantizedLogistic", true); }}};
const OpRegistrar reg_tanh{
    OpDef{"TFLiteQuantizedTanh", "quantization",
          "TFLite int8 TANH (gemmlowp fixed-point tanh; output scale 1/128, zero point 0)", 1, 1, 1,
          1, sigmoid_specs(), [](InferContext& c) { sigmoid_infer(c, "TFLiteQuantizedTanh"); },
          [](KernelContext& c) { sigmoid_kernel(c, "TFLiteQuantizedTanh", false); }}};

const OpRegistrar reg_leaky{
    OpDef{"TFLiteQuantizedLeakyRelu",
          "quantization",
          "TFLite quantized LEAKY_RELU: out_zp + MBQM(x - zp, identity or alpha multiplier)",
          1,
          1,
          1,
          1,
          {{"multiplier_identity", AttrType::Int, "input/output scale, fixed point"},
           {"shift_identity", AttrType::Int, ""},
           {"multiplier_alpha", AttrType::Int, "|alpha| * input/output scale, fixed point"},
           {"shift_alpha", AttrType::Int, ""},
           {"alpha_negative", AttrType::Int, "1 when alpha < 0"},
           {"input_zero_point", AttrType::Int, ""},
           {"output_zero_point", AttrType::Int, ""}},
          leaky_infer,
          leaky_kernel}};

const OpRegistrar reg_hswish{OpDef{
    "TFLiteQuantizedHardSwish",
    "quantization",
    "TFLite quantized HARD_SWISH (int16 fixed-point reluish and output multipliers)",
    1,
    1,
    1,
    1,
    {{"output_multiplier", AttrType::Int, "int16 fixed point: input scale / 128 / output"},
     {"output_exponent", AttrType::Int, "<= 0"},
     {"reluish_multiplier", AttrType::Int, "int16 fixed point: input scale / 128 / (3/32768)"},
     {"reluish_exponent", AttrType::Int, ""},
     {"input_zero_point", AttrType::Int, ""},
     {"output_zero_point", AttrType::Int, ""}},
    hswish_infer,
    hswish_kernel}};

const OpRegistrar reg_compare{
    OpDef{"TFLiteQuantizedCompare",
          "quantization",
          "TFLite int8 comparison: both inputs rescaled ((x - zp) * 2^left_shift, fixed-point "
          "multiplier of the scale), numpy broadcasting, bool output",
          2,
          2,
          1,
          1,
          {{"mode", AttrType::String, "eq, ne, gt, ge, lt or le"},
           {"left_shift", AttrType::Int, "8"},
           {"input1_offset", AttrType::Int, "-zero point"},
           {"input1_multiplier", AttrType::Int, ""},
           {"input1_shift", AttrType::Int, "<= 0"},
           {"input2_offset", AttrType::Int, "-zero point"},
           {"input2_multiplier", AttrType::Int, ""},
           {"input2_shift", AttrType::Int, "<= 0"}},
          compare_infer,
          compare_kernel}};

const OpRegistrar reg_reduce{
    OpDef{"TFLiteQuantizedReduce",
          "quantization",
          "TFLite quantized MEAN / SUM (int32 sum rescaled) and REDUCE_MAX / REDUCE_MIN",
          1,
          1,
          1,
          1,
          {{"mode", AttrType::String, "mean, sum, max or min"},
           {"axes", AttrType::Ints, "reduced axes"},
           {"keepdims", AttrType::Int, "keep reduced axes as 1"},
           {"multiplier", AttrType::Int, "input/output scale, fixed point (mean, sum)"},
           {"shift", AttrType::Int, ""},
           {"input_zero_point", AttrType::Int, ""},
           {"output_zero_point", AttrType::Int, ""}},
          reduce_infer,
          reduce_kernel}};

}  // namespace
}  // namespace anvil
