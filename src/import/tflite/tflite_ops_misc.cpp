// Float operators and shape-only operators the other files do not map: RSQRT, SQUARE,
// SQUARED_DIFFERENCE, PRELU, GELU, RELU_0_TO_1, LOG_SOFTMAX, BATCH_MATMUL (float32), CUMSUM,
// REVERSE_V2, BROADCAST_TO, ZEROS_LIKE, SHAPE, FILL, RANGE (constant folded where their
// inputs are constants). Quantized inputs of the float-only ones are listed as unsupported.
#include <algorithm>
#include <cmath>
#include <limits>

#include "import/tflite/tflite_translator.h"

namespace anvil::tflite_import {
namespace {

using Op = const fb::Operator*;

void require_float_in(Translator& cx, const std::string& what) {
  for (size_t k = 0; k < cx.ins_.size(); ++k)
    if (cx.has_in(static_cast<int>(k)) && !is_float(cx.dtype(cx.in(static_cast<int>(k)).v)))
      cx.unsupported_here(std::string(dtype_name(cx.dtype(cx.in(static_cast<int>(k)).v))) + " " +
                          what);
}

TV binary_src(Translator& cx, const std::string& op) {
  const TV x = cx.in(0), y = cx.in(1);
  const std::vector<int> p = cx.common_layout(x, y);
  return TV{cx.node(op, {cx.in_layout(x, p), cx.in_layout(y, p)}), p};
}

TV rsqrt(Translator& cx) {
  require_float_in(cx, "RSQRT");
  const TV x = cx.in(0);
  return TV{cx.node("Reciprocal", {cx.node("Sqrt", {x.v})}), x.perm};
}

TV square(Translator& cx) {
  require_float_in(cx, "SQUARE");
  const TV x = cx.in(0);
  return TV{cx.node("Mul", {x.v, x.v}), x.perm};
}

TV squared_difference(Translator& cx) {
  require_float_in(cx, "SQUARED_DIFFERENCE");
  const TV d = binary_src(cx, "Sub");
  return TV{cx.node("Mul", {d.v, d.v}), d.perm};
}

TV prelu(Translator& cx) {
  require_float_in(cx, "PRELU");
  // TFLite broadcasts alpha right-aligned against the input in TFLite's layout
  const int xv = cx.as_source(cx.in(0)), av = cx.as_source(cx.in(1));
  return TV{cx.node("PRelu", {xv, av}), {}};
}

TV gelu(Translator& cx, Op op) {
  require_float_in(cx, "GELU");
  bool approximate = false;
  if (auto* o = op->builtin_options_as_GeluOptions()) approximate = o->approximate();
  Attributes a;
  a.set("approximate", std::string(approximate ? "tanh" : "none"));
  const TV x = cx.in(0);
  return TV{cx.node("Gelu", {x.v}, a), x.perm};
}

TV relu_0_to_1(Translator& cx) {
  require_float_in(cx, "RELU_0_TO_1");
  const TV x = cx.in(0);
  const int lo = cx.cst("min", Tensor::from_vector<float>({}, {0.0f}));
  const int hi = cx.cst("max", Tensor::from_vector<float>({}, {1.0f}));
  return TV{cx.node("Clip", {x.v, lo, hi}), x.perm};
}

TV log_softmax(Translator& cx) {
  require_float_in(cx, "LOG_SOFTMAX");
  const int xv = cx.as_source(cx.in(0));
  if (cx.rank(xv) < 1) cx.fail("input", "LOG_SOFTMAX of a scalar");
  Attributes a;
  a.set("axis", int64_t{cx.rank(xv) - 1});
  return TV{cx.node("LogSoftmax", {xv}, a), {}};
}

TV batch_matmul(Translator& cx, Op op) {
  require_float_in(cx, "BATCH_MATMUL");
  bool adj_x = false, adj_y = false;
  if (auto* o = op->builtin_options_as_BatchMatMulOptions()) adj_x = o->adj_x(), adj_y = o->adj_y();
  auto operand = [&](int k, bool adj) {
    const int v = cx.as_source(cx.in(k));
    const int r = cx.rank(v);
    if (r < 2) cx.fail("inputs", "BATCH_MATMUL operands need rank >= 2");
    if (!adj) return v;
    std::vector<int64_t> perm;
    for (int i = 0; i < r; ++i) perm.push_back(i);
    std::swap(perm[static_cast<size_t>(r - 1)], perm[static_cast<size_t>(r - 2)]);
    Attributes a;
    a.set("perm", perm);
    return cx.node("Transpose", {v}, a);
  };
  const int a = operand(0, adj_x), b = operand(1, adj_y);
  return TV{cx.node("MatMul", {a, b}), {}};
}

TV cumsum(Translator& cx, Op op) {
  bool exclusive = false, reverse = false;
  if (auto* o = op->builtin_options_as_CumsumOptions())
    exclusive = o->exclusive(), reverse = o->reverse();
  const TV x = cx.in(0);
  if (is_quant_type(cx.dtype(x.v))) cx.unsupported_here("quantized CUMSUM");
  const int xv = cx.as_source(x);
  const auto axis = cx.const_ints(1, "axis");
  if (axis.size() != 1) cx.fail("axis", "expected one axis");
  Attributes a;
  a.set("exclusive", int64_t{exclusive ? 1 : 0});
  a.set("reverse", int64_t{reverse ? 1 : 0});
  return TV{cx.node("CumSum", {xv, cx.i64s("axis", {axis[0]})}, a), {}};
}

// REVERSE_V2: a Slice with step -1 on each listed axis (any dtype).
TV reverse(Translator& cx) {
  const int xv = cx.as_source(cx.in(0));
  const int r = cx.rank(xv);
  std::vector<int64_t> starts, ends, axes, steps;
  for (int64_t a : cx.const_ints(1, "axis")) {
    const int64_t aa = a < 0 ? a + r : a;
    if (aa < 0 || aa >= r) cx.fail("axis", "axis " + std::to_string(a) + " out of range");
    if (std::find(axes.begin(), axes.end(), aa) != axes.end()) continue;
    starts.push_back(-1);
    ends.push_back(std::numeric_limits<int64_t>::min());
    axes.push_back(aa);
    steps.push_back(-1);
  }
  if (axes.empty()) return TV{cx.node("Identity", {xv}), {}};
  return TV{cx.node("Slice", {xv, cx.i64s("starts", starts), cx.i64s("ends", ends),
                              cx.i64s("axes", axes), cx.i64s("steps", steps)}),
            {}};
}

TV broadcast_to(Translator& cx) {
  const int xv = cx.as_source(cx.in(0));
  return TV{cx.node("Expand", {xv, cx.i64s("shape", cx.const_ints(1, "shape"))}), {}};
}

TV zeros_like(Translator& cx) {
  const int xv = cx.as_source(cx.in(0));
  Tensor z(cx.dtype(xv), cx.shape(xv));  // zero-initialized
  for (int64_t i = 0; i < z.numel(); ++i) z.set(i, 0.0);
  return TV{cx.cst("zeros", z), {}};
}

TV shape_op(Translator& cx) {
  const Shape s = cx.src_shape(cx.in(0));
  const DType ot = cx.dtype_of_tensor(cx.outs_[0]);
  if (ot != DType::i32 && ot != DType::i64) cx.unsupported_here("SHAPE to a non-integer type");
  Tensor t(ot, {static_cast<int64_t>(s.size())});
  for (size_t i = 0; i < s.size(); ++i) t.set(static_cast<int64_t>(i), static_cast<double>(s[i]));
  return TV{cx.cst("shape", t), {}};
}

TV fill(Translator& cx) {
  const auto dims = cx.const_ints(0, "dims");
  for (int64_t d : dims)
    if (d < 1 || d > kMaxTensorElements) cx.unsupported_here("FILL with an empty or huge shape");
  const int v = cx.as_source(cx.in(1));
  if (cx.rank(v) != 0 && shape_numel(cx.shape(v)) != 1) cx.fail("value", "expected a scalar");
  const int sv = cx.rank(v) == 0 ? v : cx.node("Reshape", {v, cx.i64s("scalar", {})});
  return TV{cx.node("Expand", {sv, cx.i64s("shape", dims)}), {}};
}

TV range(Translator& cx) {
  const TV s = cx.in(0), l = cx.in(1), d = cx.in(2);
  if (!cx.const_of(s.v) || !cx.const_of(l.v) || !cx.const_of(d.v))
    cx.unsupported_here("RANGE with non-constant inputs");
  auto scalar = [&](int k) {
    const int v = cx.as_source(cx.in(k));
    return cx.rank(v) == 0 ? v : cx.node("Reshape", {v, cx.i64s("scalar", {})});
  };
  return TV{cx.node("Range", {scalar(0), scalar(1), scalar(2)}), {}};
}

}  // namespace

void add_misc_converters(ConverterTable& t) {
  t[fb::BuiltinOperator_RSQRT] = [](Translator& cx, Op) { return rsqrt(cx); };
  t[fb::BuiltinOperator_SQUARE] = [](Translator& cx, Op) { return square(cx); };
  t[fb::BuiltinOperator_SQUARED_DIFFERENCE] = [](Translator& cx, Op) {
    return squared_difference(cx);
  };
  t[fb::BuiltinOperator_PRELU] = [](Translator& cx, Op) { return prelu(cx); };
  t[fb::BuiltinOperator_GELU] = gelu;
  t[fb::BuiltinOperator_RELU_0_TO_1] = [](Translator& cx, Op) { return relu_0_to_1(cx); };
  t[fb::BuiltinOperator_LOG_SOFTMAX] = [](Translator& cx, Op) { return log_softmax(cx); };
  t[fb::BuiltinOperator_BATCH_MATMUL] = batch_matmul;
  t[fb::BuiltinOperator_CUMSUM] = cumsum;
  t[fb::BuiltinOperator_REVERSE_V2] = [](Translator& cx, Op) { return reverse(cx); };
  t[fb::BuiltinOperator_BROADCAST_TO] = [](Translator& cx, Op) { return broadcast_to(cx); };
  t[fb::BuiltinOperator_ZEROS_LIKE] = [](Translator& cx, Op) { return zeros_like(cx); };
  t[fb::BuiltinOperator_SHAPE] = [](Translator& cx, Op) { return shape_op(cx); };
  t[fb::BuiltinOperator_FILL] = [](Translator& cx, Op) { return fill(cx); };
  t[fb::BuiltinOperator_RANGE] = [](Translator& cx, Op) { return range(cx); };
}

}  // namespace anvil::tflite_import
