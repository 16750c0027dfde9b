// Quantized paths of activations and reductions (SOFTMAX, LOGISTIC, TANH, LEAKY_RELU, MEAN,
// SUM, REDUCE_MAX, REDUCE_MIN): the fixed-point parameters computed as each TFLite kernel's
// Prepare does, onto the TFLiteQuantized* ops of src/ops/tflite_quant_act.cpp. Each converter
// wraps the float converter registered before it (add_quant_converters runs last).
#include <algorithm>
#include <cmath>
#include <limits>

#include "import/tflite/tflite_translator.h"

namespace anvil::tflite_import {
namespace {

using Op = const fb::Operator*;

bool quantized_in(const Translator& cx) {
  return cx.has_in(0) && is_quant_type(cx.dtype(cx.in(0).v));
}

struct IO {
  QP qi, qo;
  DType it, ot;
};
IO io_params(Translator& cx, bool same_type = true) {
  IO r;
  const int ti = cx.ins_[0], to = cx.outs_[0];
  r.qi = cx.qparams(ti);
  r.qo = cx.qparams(to);
  cx.require_quant_params(ti, r.qi, "quantization");
  cx.require_quant_params(to, r.qo, "quantization");
  if (r.qi.scale.size() != 1 || r.qo.scale.size() != 1)
    cx.unsupported_here("per-channel quantized activations");
  r.it = cx.dtype(cx.in(0).v);
  r.ot = cx.dtype_of_tensor(to);
  if (same_type && r.it != r.ot)
    cx.unsupported_here(std::string("quantized ") + dtype_name(r.it) + " -> " + dtype_name(r.ot));
  return r;
}

bool near(float v, float want) { return std::fabs(v - want) <= 0.001f * want; }

// softmax.cc / softmax_common.cc CalculateSoftmaxParams
TV quant_softmax(Translator& cx, float beta) {
  const IO p = io_params(cx, false);
  Attributes at;
  at.set("dtype", qdtype_name(p.ot));
  const TV x = cx.in(0);
  if (p.it == DType::i16) {
    if (p.ot != DType::i16 || p.qi.zp[0] != 0 || p.qo.zp[0] != 0 ||
        !near(p.qo.scale[0], 1.0f / 32768))
      cx.unsupported_here("int16 SOFTMAX needs an int16 output with scale 1/32768, zero points 0");
    const double real =
        static_cast<double>(p.qi.scale[0]) * static_cast<double>(beta) / (10.0 / 65535.0);
    int32_t m = 0;
    const int s = cx.multiplier_or_fail(real, &m, "quantization");
    if (s < -31 || s > 30) cx.fail("quantization", "softmax input rescale out of range");
    at.set("input_multiplier", int64_t{m});
    at.set("input_left_shift", int64_t{s});
  } else {
    if (p.ot == DType::i16) {
      if (p.qo.zp[0] != -32768 || !near(p.qo.scale[0], 1.0f / 65536))
        cx.unsupported_here("int8 -> int16 SOFTMAX needs output scale 1/65536, zero point -32768");
    } else if (p.ot != p.it) {
      cx.unsupported_here("SOFTMAX changing the 8-bit type");
    } else if (p.ot == DType::i8 && (p.qo.zp[0] != -128 || p.qo.scale[0] != 1.0f / 256)) {
      cx.unsupported_here("int8 SOFTMAX needs output scale 1/256, zero point -128");
    }
    // PreprocessSoftmaxScaling with 5 integer bits (double rounding)
    const double real = std::min(static_cast<double>(beta) * static_cast<double>(p.qi.scale[0]) *
                                     static_cast<double>(int64_t{1} << 26),
                                 static_cast<double>((int64_t{1} << 31) - 1));
    int32_t m = 0;
    const int s = cx.multiplier_or_fail(real, &m, "quantization");
    if (s < 0 || s > 31) cx.fail("quantization", "softmax input rescale out of range");
    at.set("input_multiplier", int64_t{m});
    at.set("input_left_shift", int64_t{s});
    at.set("diff_min", -int64_t{q::CalculateInputRadius(5, s)});
  }
  const int xv = cx.as_source(x);
  if (cx.rank(xv) < 1) cx.fail("input", "SOFTMAX of a scalar");
  return TV{cx.node("TFLiteQuantizedSoftmax", {xv}, at), {}};
}

// logistic_common.cc / tanh.cc Prepare (int8): input scale * 2^27 as frexp fraction and exponent
TV quant_sigmoid(Translator& cx, bool logistic) {
  const IO p = io_params(cx);
  if (p.it != DType::i8)
    cx.unsupported_here(std::string(dtype_name(p.it)) + (logistic ? " LOGISTIC" : " TANH"));
  if (logistic && p.qo.zp[0] != -128)
    cx.unsupported_here("int8 LOGISTIC needs output zero point -128");
  if (!logistic && p.qo.zp[0] != 0) cx.unsupported_here("int8 TANH needs output zero point 0");
  const double real = static_cast<double>(p.qi.scale[0]) * static_cast<double>(1 << 27);
  int shift = 0;
  const double fr = std::frexp(real, &shift);
  const int64_t m = static_cast<int64_t>(q::tflite_round(fr * static_cast<double>(1ll << 31)));
  if (shift < -31 || shift > 31 || m > std::numeric_limits<int32_t>::max())
    cx.fail("quantization", "input scale out of range");
  Attributes at;
  at.set("input_multiplier", m);
  at.set("input_left_shift", int64_t{shift});
  at.set("input_zero_point", p.qi.zp[0]);
  at.set("input_range_radius", int64_t{q::CalculateInputRadius(4, shift, 31)});
  const TV x = cx.in(0);
  return TV{cx.node(logistic ? "TFLiteQuantizedLogistic" : "TFLiteQuantizedTanh", {x.v}, at),
            x.perm};
}

TV leaky_relu(Translator& cx, Op op) {
  float alpha = 0.2f;  // TFLite's default
  if (auto* o = op->builtin_options_as_LeakyReluOptions()) alpha = o->alpha();
  const TV x = cx.in(0);
  if (!quantized_in(cx)) {
    Attributes a;
    a.set("alpha", static_cast<double>(alpha));
    return TV{cx.node("LeakyRelu", {x.v}, a), x.perm};
  }
  const IO p = io_params(cx);
  // leaky_relu_common.cc: float products, then QuantizeMultiplier
  const double ra = static_cast<double>(p.qi.scale[0] * alpha / p.qo.scale[0]);
  const double ri = static_cast<double>(p.qi.scale[0] / p.qo.scale[0]);
  int32_t ma = 0, mi = 0;
  const int sa = cx.multiplier_or_fail(std::fabs(ra), &ma, "alpha");
  const int si = cx.multiplier_or_fail(ri, &mi, "quantization");
  if (sa > 30 || si > 30) cx.fail("quantization", "rescale factor too large");
  Attributes at;
  at.set("multiplier_identity", int64_t{mi});
  at.set("shift_identity", int64_t{si});
  at.set("multiplier_alpha", int64_t{ma});
  at.set("shift_alpha", int64_t{sa});
  at.set("alpha_negative", int64_t{ra < 0 ? 1 : 0});
  at.set("input_zero_point", p.qi.zp[0]);
  at.set("output_zero_point", p.qo.zp[0]);
  return TV{cx.node("TFLiteQuantizedLeakyRelu", {x.v}, at), x.perm};
}

// reduce_common.cc: MEAN/SUM rescale by input/output scale; MAX/MIN need equal quantization
TV quant_reduce(Translator& cx, Op op, const std::string& mode) {
  const IO p = io_params(cx);
  auto* o = op->builtin_options_as_ReducerOptions();
  const bool keep = o && o->keep_dims();
  const TV x = cx.in(0);
  const int xv = cx.as_source(x);
  const int r = cx.rank(xv);
  std::vector<int64_t> axes;
  for (int64_t a : cx.const_ints(1, "axis")) {
    const int64_t aa = a < 0 ? a + r : a;
    if (aa < 0 || aa >= r)
      cx.fail("axis", "axis " + std::to_string(a) + " out of range for rank " + std::to_string(r));
    axes.push_back(aa);
  }
  Attributes at;
  at.set("mode", mode);
  at.set("axes", axes);
  at.set("keepdims", int64_t{keep ? 1 : 0});
  if (mode == "max" || mode == "min") {
    if (p.qi.scale != p.qo.scale || p.qi.zp != p.qo.zp)
      cx.unsupported_here("REDUCE_MAX/MIN with different input and output quantization");
  } else {
    const double real = static_cast<double>(p.qi.scale[0]) / static_cast<double>(p.qo.scale[0]);
    int32_t m = 0;
    const int s = cx.multiplier_or_fail(real, &m, "quantization");
    if (s > 30) cx.fail("quantization", "rescale factor too large");
    at.set("multiplier", int64_t{m});
    at.set("shift", int64_t{s});
    at.set("input_zero_point", p.qi.zp[0]);
    at.set("output_zero_point", p.qo.zp[0]);
  }
  return TV{cx.node("TFLiteQuantizedReduce", {xv}, at), {}};
}

// TRANSPOSE_CONV (inputs: output_shape, weights (O, kh, kw, C), input, bias): TFLite's padding
// is the forward conv's from the output size (ComputePaddingHeightWidth), only its top/left
// part matters (the scatter drops what falls outside).
TV transpose_conv(Translator& cx, Op op) {
  auto* o = op->builtin_options_as_TransposeConvOptions();
  if (!o) cx.fail("builtin_options", "missing TransposeConvOptions");
  const int sh = o->stride_h(), sw = o->stride_w();
  if (sh < 1 || sw < 1) cx.fail("stride_h", "strides must be >= 1");
  const auto os = cx.const_ints(0, "output_shape");
  const TV w = cx.in(1), x = cx.in(2);
  const Shape xs = cx.src_shape(x), ws = cx.src_shape(w);
  if (os.size() != 4 || xs.size() != 4 || ws.size() != 4 || ws[3] != xs[3] || os[0] != xs[0] ||
      os[3] != ws[0] || os[1] < 1 || os[2] < 1)
    cx.fail("output_shape", "output shape " + ints_str(os) + ", input " + shape_str(xs) +
                                " and weights " + shape_str(ws) + " do not fit");
  auto pad_of = [&](int64_t out, int64_t k, int64_t s) {
    const int64_t conv_out =
        o->padding() == fb::Padding_SAME ? (out + s - 1) / s : (out - k + s) / s;
    return std::max<int64_t>((conv_out - 1) * s + k - out, 0) / 2;
  };
  const int64_t pt = pad_of(os[1], ws[1], sh), pl = pad_of(os[2], ws[2], sw);
  const fb::ActivationFunctionType a = o->fused_activation_function();
  const DType xt = cx.dtype(x.v);
  if (!is_quant_type(xt)) {
    if (!is_float(xt)) cx.unsupported_here("TRANSPOSE_CONV of " + std::string(dtype_name(xt)));
    Attributes at;
    at.set("strides", std::vector<int64_t>{sh, sw});
    const int64_t full_h = (xs[1] - 1) * sh + ws[1], full_w = (xs[2] - 1) * sw + ws[2];
    const int64_t pb = full_h - pt - os[1], pr = full_w - pl - os[2];
    at.set("pads",
           std::vector<int64_t>{pt, pl, std::max<int64_t>(pb, 0), std::max<int64_t>(pr, 0)});
    at.set("output_padding",
           std::vector<int64_t>{std::max<int64_t>(-pb, 0), std::max<int64_t>(-pr, 0)});
    std::vector<int> ins = {cx.as_nchw(x), cx.view(w, {3, 0, 1, 2})};
    if (cx.has_in(3)) ins.push_back(cx.as_source(cx.in(3)));
    return cx.act(TV{cx.node("ConvTranspose", ins, at), kNHWC}, a);
  }
  const int ti = cx.ins_[2], tw = cx.ins_[1], to = cx.outs_[0];
  const QP qi = cx.qparams(ti), qw = cx.qparams(tw), qo = cx.qparams(to);
  cx.require_quant_params(ti, qi, "quantization");
  cx.require_quant_params(tw, qw, "quantization");
  cx.require_quant_params(to, qo, "quantization");
  if (xt == DType::u8 || cx.dtype(w.v) != DType::i8 || cx.dtype_of_tensor(to) != xt)
    cx.unsupported_here(std::string("quantized TRANSPOSE_CONV of ") + dtype_name(xt) + " with " +
                        dtype_name(cx.dtype(w.v)) + " weights");
  if (qi.scale.size() != 1 || qo.scale.size() != 1)
    cx.unsupported_here("per-channel quantized activations");
  if (qw.scale.size() != 1 && static_cast<int64_t>(qw.scale.size()) != ws[0])
    cx.fail_tensor(tw, "quantization", "filter scales do not match the output channels");
  std::vector<int64_t> ms, ss;
  for (size_t c = 0; c < qw.scale.size(); ++c) {  // PopulateConvolutionQuantizationParams
    const double real = static_cast<double>(qi.scale[0]) * static_cast<double>(qw.scale[c]) /
                        static_cast<double>(qo.scale[0]);
    int32_t m = 0;
    const int s = cx.multiplier_or_fail(real, &m, "quantization");
    if (s < -31 || s > 7) cx.fail("quantization", "rescale shift out of TFLite's range");
    ms.push_back(m), ss.push_back(s);
  }
  int64_t acc = 32;
  if (cx.has_in(3)) {
    const DType bt = cx.dtype(cx.in(3).v);
    if (bt == DType::i64)
      acc = 64;
    else if (bt != DType::i32)
      cx.fail("bias", "quantized bias must be int32 or int64");
  }
  if (xt == DType::i16) acc = 64;  // TFLite's int16x8 kernel accumulates in int64
  auto [lo, hi] = cx.act_range(a, to);
  Attributes at;
  at.set("output_shape", os);
  at.set("strides", std::vector<int64_t>{sh, sw});
  at.set("pads", std::vector<int64_t>{pt, pl});
  at.set("multipliers", ms);
  at.set("shifts", ss);
  at.set("input_zero_point", qi.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("accumulator", acc);
  at.set("act_min", lo);
  at.set("act_max", hi);
  std::vector<int> ins = {cx.as_source(x), cx.as_source(w)};
  if (cx.has_in(3)) ins.push_back(cx.as_source(cx.in(3)));
  return TV{cx.node("TFLiteQuantizedTransposeConv", ins, at), {}};
}

// hard_swish_common.cc HardSwishPrepare
TV quant_hard_swish(Translator& cx) {
  const IO p = io_params(cx);
  if (p.it != DType::i8 && p.it != DType::u8)
    cx.unsupported_here(std::string(dtype_name(p.it)) + " HARD_SWISH");
  const float hires = (1.0f / 128.0f) * p.qi.scale[0];
  const float reluish_scale = 3.0f / 32768.0f;
  auto down16 = [](int32_t m) {  // DownScaleInt32ToInt16Multiplier
    if (m >= std::numeric_limits<int32_t>::max() - (1 << 15)) return int64_t{32767};
    return int64_t{(m + (1 << 15)) >> 16};
  };
  int32_t om = 0, rm = 0;
  const int oe =
      cx.multiplier_or_fail(static_cast<double>(hires / p.qo.scale[0]), &om, "quantization");
  const int re =
      cx.multiplier_or_fail(static_cast<double>(hires / reluish_scale), &rm, "quantization");
  if (oe > 0 || oe < -15 || re < -15 || re > 15)
    cx.unsupported_here("HARD_SWISH scales outside TFLite's range");
  Attributes at;
  at.set("output_multiplier", down16(om));
  at.set("output_exponent", int64_t{oe});
  at.set("reluish_multiplier", down16(rm));
  at.set("reluish_exponent", int64_t{re});
  at.set("input_zero_point", p.qi.zp[0]);
  at.set("output_zero_point", p.qo.zp[0]);
  const TV x = cx.in(0);
  return TV{cx.node("TFLiteQuantizedHardSwish", {x.v}, at), x.perm};
}

/// Wraps the converter registered for `code`: quantized inputs go to `qf`.
template <typename F>
void wrap(ConverterTable& t, int code, F qf) {
  auto it = t.find(code);
  Converter prev = it == t.end() ? Converter{} : it->second;
  t[code] = [prev, qf](Translator& cx, Op op) -> TV {
    if (quantized_in(cx) || !prev) return qf(cx, op);
    return prev(cx, op);
  };
}

}  // namespace

void add_quant_converters(ConverterTable& t) {
  wrap(t, fb::BuiltinOperator_SOFTMAX, [](Translator& cx, Op op) {
    auto* o = op->builtin_options_as_SoftmaxOptions();
    return quant_softmax(cx, o ? o->beta() : 1.0f);
  });
  wrap(t, fb::BuiltinOperator_LOGISTIC, [](Translator& cx, Op) { return quant_sigmoid(cx, true); });
  wrap(t, fb::BuiltinOperator_TANH, [](Translator& cx, Op) { return quant_sigmoid(cx, false); });
  t[fb::BuiltinOperator_LEAKY_RELU] = leaky_relu;
  t[fb::BuiltinOperator_TRANSPOSE_CONV] = transpose_conv;
  wrap(t, fb::BuiltinOperator_HARD_SWISH, [](Translator& cx, Op) { return quant_hard_swish(cx); });
  static const std::map<int, std::string> reduce_modes = {{fb::BuiltinOperator_MEAN, "mean"},
                                                          {fb::BuiltinOperator_SUM, "sum"},
                                                          {fb::BuiltinOperator_REDUCE_MAX, "max"},
                                                          {fb::BuiltinOperator_REDUCE_MIN, "min"}};
  for (const auto& [code, mode] : reduce_modes)
    wrap(t, code, [mode = mode](Translator& cx, Op op) { return quant_reduce(cx, op, mode); });
}

}  // namespace anvil::tflite_import
