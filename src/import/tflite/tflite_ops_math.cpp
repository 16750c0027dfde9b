#include <algorithm>
#include <cmath>

#include "import/tflite/tflite_translator.h"

namespace anvil::tflite_import {
namespace {

// The fused activation of ADD / SUB / MUL / DIV.
fb::ActivationFunctionType fused_act(const fb::Operator* op) {
  if (auto* o = op->builtin_options_as_AddOptions()) return o->fused_activation_function();
  if (auto* o = op->builtin_options_as_SubOptions()) return o->fused_activation_function();
  if (auto* o = op->builtin_options_as_MulOptions()) return o->fused_activation_function();
  if (auto* o = op->builtin_options_as_DivOptions()) return o->fused_activation_function();
  return fb::ActivationFunctionType_NONE;
}

bool quantized_in(const Translator& cx) {
  return cx.has_in(0) && is_quant_type(cx.dtype(cx.in(0).v));
}

TV binary(Translator& cx, const std::string& onnx_op, fb::ActivationFunctionType a) {
  TV x = cx.in(0), y = cx.in(1);
  const std::vector<int> p = cx.common_layout(x, y);  // a constant follows the other input
  const int xv = cx.in_layout(x, p), yv = cx.in_layout(y, p);
  return cx.act(TV{cx.node(onnx_op, {xv, yv}), p}, a);
}

TV quant_add(Translator& cx, bool subtract, const fb::Operator* op, fb::ActivationFunctionType a) {
  TV x = cx.in(0), y = cx.in(1);
  const int t1 = cx.ins_[0], t2 = cx.ins_[1], to = cx.outs_[0];
  const DType xt = cx.dtype(x.v), ot = cx.dtype_of_tensor(to);
  if (cx.dtype(y.v) != xt || ot != xt) cx.unsupported_here("mixed-type quantized ADD/SUB");
  const QP q1 = cx.qparams(t1), q2 = cx.qparams(t2), qo = cx.qparams(to);
  cx.require_quant_params(t1, q1, "quantization");
  cx.require_quant_params(t2, q2, "quantization");
  cx.require_quant_params(to, qo, "quantization");
  if (q1.scale.size() != 1 || q2.scale.size() != 1 || qo.scale.size() != 1)
    cx.unsupported_here("per-channel quantized ADD/SUB");
  bool pot_option = true;
  if (subtract) {
    if (auto* o = op->builtin_options_as_SubOptions()) pot_option = o->pot_scale_int16();
  } else if (auto* o = op->builtin_options_as_AddOptions()) {
    pot_option = o->pot_scale_int16();
  }
  if (xt == DType::i16) {
    if (q1.zp[0] != 0 || q2.zp[0] != 0 || qo.zp[0] != 0)
      cx.fail("quantization", "int16 ADD/SUB needs zero points 0");
    auto is_pot = [](float s) {
      int e = 0;
      return std::frexp(static_cast<double>(s), &e) == 0.5;
    };
    if (pot_option && is_pot(q1.scale[0]) && is_pot(q2.scale[0]) && is_pot(qo.scale[0]))
      cx.unsupported_here("int16 ADD/SUB with power-of-two scales (TFLite's pot_scale_int16 path)");
  }
  // TFLite's general path (add.cc / sub.cc Prepare)
  const int left_shift = xt == DType::i16 ? 15 : 20;
  const double twice_max = 2.0 * static_cast<double>(std::max(q1.scale[0], q2.scale[0]));
  const double r1 = static_cast<double>(q1.scale[0]) / twice_max,
               r2 = static_cast<double>(q2.scale[0]) / twice_max;
  const double ro = twice_max / (static_cast<double>(int64_t{1} << left_shift) *
                                 static_cast<double>(qo.scale[0]));
  int32_t m1 = 0, m2 = 0, mo = 0;
  const int s1 = cx.multiplier_or_fail(r1, &m1, "quantization"),
            s2 = cx.multiplier_or_fail(r2, &m2, "quantization"),
            so = cx.multiplier_or_fail(ro, &mo, "quantization");
  if (s1 > 0 || s2 > 0 || so > 0 || ro >= 1.0)
    cx.fail("quantization",
            "output scale too small for TFLite's quantized ADD/SUB (rescale factor >= 1)");
  auto [lo, hi] = cx.act_range(a, to);
  Attributes at;
  at.set("subtract", int64_t{subtract ? 1 : 0});
  at.set("left_shift", int64_t{left_shift});
  at.set("input1_zero_point", q1.zp[0]);
  at.set("input2_zero_point", q2.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("input1_multiplier", int64_t{m1});
  at.set("input1_shift", int64_t{s1});
  at.set("input2_multiplier", int64_t{m2});
  at.set("input2_shift", int64_t{s2});
  at.set("output_multiplier", int64_t{mo});
  at.set("output_shift", int64_t{so});
  at.set("act_min", lo);
  at.set("act_max", hi);
  const std::vector<int> p = cx.common_layout(x, y);
  return TV{cx.node("TFLiteQuantizedAdd", {cx.in_layout(x, p), cx.in_layout(y, p)}, at), p};
}

TV quant_mul(Translator& cx, fb::ActivationFunctionType a) {
  TV x = cx.in(0), y = cx.in(1);
  const int t1 = cx.ins_[0], t2 = cx.ins_[1], to = cx.outs_[0];
  const DType xt = cx.dtype(x.v), ot = cx.dtype_of_tensor(to);
  if (cx.dtype(y.v) != xt || ot != xt) cx.unsupported_here("mixed-type quantized MUL");
  if (xt == DType::i16) cx.unsupported_here("int16 quantized MUL");
  const QP q1 = cx.qparams(t1), q2 = cx.qparams(t2), qo = cx.qparams(to);
  cx.require_quant_params(t1, q1, "quantization");
  cx.require_quant_params(t2, q2, "quantization");
  cx.require_quant_params(to, qo, "quantization");
  if (q1.scale.size() != 1 || q2.scale.size() != 1 || qo.scale.size() != 1)
    cx.unsupported_here("per-channel quantized MUL");
  const double real = static_cast<double>(q1.scale[0]) * static_cast<double>(q2.scale[0]) /
                      static_cast<double>(qo.scale[0]);
  int32_t m = 0;
  const int s = cx.multiplier_or_fail(real, &m, "quantization");
  if (s > 30) cx.fail("quantization", "MUL rescale factor too large");
  auto [lo, hi] = cx.act_range(a, to);
  Attributes at;
  at.set("input1_zero_point", q1.zp[0]);
  at.set("input2_zero_point", q2.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("output_multiplier", int64_t{m});
  at.set("output_shift", int64_t{s});
  at.set("act_min", lo);
  at.set("act_max", hi);
  const std::vector<int> p = cx.common_layout(x, y);
  return TV{cx.node("TFLiteQuantizedMul", {cx.in_layout(x, p), cx.in_layout(y, p)}, at), p};
}

TV unary(Translator& cx, const std::string& onnx_op, Attributes a = {}) {
  TV x = cx.in(0);
  if (is_quant_type(cx.dtype(x.v))) cx.unsupported_here("quantized " + onnx_op);
  return TV{cx.node(onnx_op, {x.v}, std::move(a)), x.perm};
}

TV quant_relu(Translator& cx, double lo_f, double hi_f) {
  TV x = cx.in(0);
  const QP qi = cx.qparams(cx.ins_[0]), qo = cx.qparams(cx.outs_[0]);
  cx.require_quant_params(cx.ins_[0], qi, "quantization");
  cx.require_quant_params(cx.outs_[0], qo, "quantization");
  const DType ot = cx.dtype_of_tensor(cx.outs_[0]);
  if (ot != cx.dtype(x.v)) cx.unsupported_here("quantized activation changing the type");
  // activations.cc ReluPrepare: multiplier input_scale / output_scale (float division)
  const double real = static_cast<double>(qi.scale[0] / qo.scale[0]);
  int32_t m = 0;
  const int s = cx.multiplier_or_fail(real, &m, "quantization");
  if (s > 30) cx.fail("quantization", "rescale factor too large");
  auto quant = [&](double f) {
    return qo.zp[0] + static_cast<int64_t>(q::tflite_round(
                          static_cast<double>(static_cast<float>(f) / qo.scale[0])));
  };
  int64_t lo = std::max(qmin_of(ot), quant(lo_f)), hi = qmax_of(ot);
  if (std::isfinite(hi_f)) hi = std::min(hi, quant(hi_f));
  Attributes at;
  at.set("dtype", qdtype_name(ot));
  at.set("multiplier", int64_t{m});
  at.set("shift", int64_t{s});
  at.set("input_zero_point", qi.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("act_min", lo);
  at.set("act_max", hi);
  return TV{cx.node("TFLiteRequantize", {x.v}, at), x.perm};
}

TV quantize(Translator& cx) {
  TV x = cx.in(0);
  const int to = cx.outs_[0];
  const DType ot = cx.dtype_of_tensor(to), xt = cx.dtype(x.v);
  if (!is_quant_type(ot) && ot != DType::i32)
    cx.unsupported_here(std::string("QUANTIZE to ") + dtype_name(ot));
  const QP qo = cx.qparams(to);
  cx.require_quant_params(to, qo, "quantization");
  if (qo.scale.size() != 1) cx.unsupported_here("per-channel QUANTIZE");
  Attributes at;
  at.set("dtype", qdtype_name(ot));
  if (is_float(xt)) {
    at.set("scale", static_cast<double>(qo.scale[0]));
    at.set("zero_point", qo.zp[0]);
    int v = x.v;
    if (xt != DType::f32) {
      Attributes c;
      c.set("to", int64_t{1});  // Cast takes ONNX type codes: 1 = float32
      v = cx.node("Cast", {v}, c);
    }
    return TV{cx.node("TFLiteQuantize", {v}, at), x.perm};
  }
  if (!is_quant_type(xt) && xt != DType::i32)
    cx.unsupported_here(std::string("QUANTIZE from ") + dtype_name(xt));
  const QP qi = cx.qparams(cx.ins_[0]);
  cx.require_quant_params(cx.ins_[0], qi, "quantization");
  if (qi.scale.size() != 1) cx.unsupported_here("per-channel requantization");
  const double real = static_cast<double>(qi.scale[0]) / static_cast<double>(qo.scale[0]);
  int32_t m = 0;
  const int s = cx.multiplier_or_fail(real, &m, "quantization");
  if (s > 30) cx.fail("quantization", "requantization factor too large");
  at.set("multiplier", int64_t{m});
  at.set("shift", int64_t{s});
  at.set("input_zero_point", qi.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  return TV{cx.node("TFLiteRequantize", {x.v}, at), x.perm};
}

TV dequantize(Translator& cx) {
  TV x = cx.in(0);
  const DType xt = cx.dtype(x.v);
  if (xt == DType::f16) {  // float16 weights stored compactly
    Attributes c;
    c.set("to", int64_t{1});  // Cast takes ONNX type codes: 1 = float32
    return TV{cx.node("Cast", {x.v}, c), x.perm};
  }
  if (!is_quant_type(xt)) cx.unsupported_here(std::string("DEQUANTIZE of ") + dtype_name(xt));
  const QP qi = cx.qparams(cx.ins_[0]);
  cx.require_quant_params(cx.ins_[0], qi, "quantization");
  if (qi.scale.size() != 1) cx.unsupported_here("per-channel DEQUANTIZE");
  Attributes at;
  at.set("scale", static_cast<double>(qi.scale[0]));
  at.set("zero_point", qi.zp[0]);
  return TV{cx.node("TFLiteDequantize", {x.v}, at), x.perm};
}

// RELU, RELU6, RELU_N1_TO_1: a clip (float) or a requantization (quantized).
TV relu(Translator& cx, fb::ActivationFunctionType a, double lo, double hi) {
  if (quantized_in(cx)) return quant_relu(cx, lo, hi);
  TV y = cx.act(cx.in(0), a);
  if (y.v == cx.in(0).v) y.v = cx.node("Identity", {y.v});
  return y;
}

}  // namespace

void add_math_converters(ConverterTable& t) {
  using Op = const fb::Operator*;
  t[fb::BuiltinOperator_ADD] = [](Translator& cx, Op op) {
    return quantized_in(cx) ? quant_add(cx, false, op, fused_act(op))
                            : binary(cx, "Add", fused_act(op));
  };
  t[fb::BuiltinOperator_SUB] = [](Translator& cx, Op op) {
    return quantized_in(cx) ? quant_add(cx, true, op, fused_act(op))
                            : binary(cx, "Sub", fused_act(op));
  };
  t[fb::BuiltinOperator_MUL] = [](Translator& cx, Op op) {
    return quantized_in(cx) ? quant_mul(cx, fused_act(op)) : binary(cx, "Mul", fused_act(op));
  };
  t[fb::BuiltinOperator_DIV] = [](Translator& cx, Op op) {
    if (quantized_in(cx)) cx.unsupported_here("quantized DIV");
    return binary(cx, "Div", fused_act(op));
  };
  t[fb::BuiltinOperator_MAXIMUM] = [](Translator& cx, Op) {
    if (quantized_in(cx)) cx.unsupported_here("quantized MAXIMUM/MINIMUM");
    return binary(cx, "Max", fb::ActivationFunctionType_NONE);
  };
  t[fb::BuiltinOperator_MINIMUM] = [](Translator& cx, Op) {
    if (quantized_in(cx)) cx.unsupported_here("quantized MAXIMUM/MINIMUM");
    return binary(cx, "Min", fb::ActivationFunctionType_NONE);
  };
  static const std::map<int, std::string> unary_ops = {
      {fb::BuiltinOperator_LOGISTIC, "Sigmoid"}, {fb::BuiltinOperator_TANH, "Tanh"},
      {fb::BuiltinOperator_EXP, "Exp"},          {fb::BuiltinOperator_ABS, "Abs"},
      {fb::BuiltinOperator_NEG, "Neg"},          {fb::BuiltinOperator_SQRT, "Sqrt"},
      {fb::BuiltinOperator_ELU, "Elu"},          {fb::BuiltinOperator_HARD_SWISH, "HardSwish"}};
  for (const auto& [code, name] : unary_ops)
    t[code] = [name = name](Translator& cx, Op) { return unary(cx, name); };
  t[fb::BuiltinOperator_LEAKY_RELU] = [](Translator& cx, Op op) {
    Attributes a;
    if (auto* o = op->builtin_options_as_LeakyReluOptions())
      a.set("alpha", static_cast<double>(o->alpha()));
    return unary(cx, "LeakyRelu", a);
  };
  t[fb::BuiltinOperator_RELU] = [](Translator& cx, Op) {
    return relu(cx, fb::ActivationFunctionType_RELU, 0.0, INFINITY);
  };
  t[fb::BuiltinOperator_RELU6] = [](Translator& cx, Op) {
    return relu(cx, fb::ActivationFunctionType_RELU6, 0.0, 6.0);
  };
  t[fb::BuiltinOperator_RELU_N1_TO_1] = [](Translator& cx, Op) {
    return relu(cx, fb::ActivationFunctionType_RELU_N1_TO_1, -1.0, 1.0);
  };
  t[fb::BuiltinOperator_QUANTIZE] = [](Translator& cx, Op) { return quantize(cx); };
  t[fb::BuiltinOperator_DEQUANTIZE] = [](Translator& cx, Op) { return dequantize(cx); };
}

}  // namespace anvil::tflite_import
