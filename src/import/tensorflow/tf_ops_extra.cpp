// TF ops beyond the first importer's set: comparisons and logic (NotEqual, IsFinite, IsInf,
// All, Any), integer and float division rules (FloorDiv, FloorMod, TruncateDiv, TruncateMod,
// Mod, DivNoNan), Log1p, Expm1, Erfc, Lgamma, Digamma, Igamma(c), Betainc, Zeta, Polygamma,
// Atan2, Rint, bitwise ops (BitwiseAnd/Or/Xor,
// Invert, LeftShift, RightShift), Bitcast, scans (Cumsum, Cumprod), ops TF inference graphs carry
// that compute nothing (Assert is dropped; DeepCopy, Assign of a frozen variable, EnsureShape
// are identities) and AccumulateNV2 / L2Loss.
//
// Output dtypes follow TF's op definitions: comparisons and IsFinite give bool, Bitcast gives
// `type`, everything else the input's dtype T.
#include <algorithm>
#include <set>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

void same_dtypes(TfBuilder& b) {
  b.need_inputs(2, 2);
  if (b.dtype(b.in[0].v) != b.dtype(b.in[1].v))
    fail("T", std::string("operands of different dtypes (") + dtype_name(b.dtype(b.in[0].v)) +
                  ", " + dtype_name(b.dtype(b.in[1].v)) + ")");
}

TT mod(TfBuilder& b, const std::vector<TT>& xs, int64_t fmod) {
  Attributes a;
  a.set("fmod", fmod);
  return b.elementwise("Mod", xs, a);
}

std::vector<TT> not_equal(TfBuilder& b) {
  same_dtypes(b);
  return {b.unary("Not", b.elementwise("Equal", b.in))};
}

std::vector<TT> is_finite(TfBuilder& b) {
  b.need_inputs(1, 1);
  if (!is_float(b.dtype(b.in[0].v))) fail("T", "IsFinite needs a float tensor");
  TT nan = b.unary("IsNaN", b.in[0]);
  TT inf = b.unary("IsInf", b.in[0]);
  return {b.unary("Not", b.elementwise("Or", {nan, inf}))};
}

// All / Any over bools: the product (all: empty gives 1) or sum (any: empty gives 0) of
// 0/1 values, compared back to bool.
std::vector<TT> all_any(TfBuilder& b, bool all) {
  b.need_inputs(2, 2);
  if (b.dtype(b.in[0].v) != DType::boolean) fail("input", "All/Any need a bool tensor");
  return reduce(b, all ? "ReduceProd" : "ReduceSum", true);
}

std::vector<TT> floor_div(TfBuilder& b) {
  same_dtypes(b);
  if (is_float(b.dtype(b.in[0].v))) return {b.unary("Floor", b.elementwise("Div", b.in))};
  // integers: (x - floormod(x, y)) / y divides exactly, so truncation is floor division
  TT m = mod(b, b.in, 0);
  TT d = b.elementwise("Sub", {b.in[0], m});
  return {b.elementwise("Div", {d, b.in[1]})};
}

std::vector<TT> truncate_div(TfBuilder& b) {
  same_dtypes(b);
  if (!is_integer(b.dtype(b.in[0].v))) {
    // sign(q) * floor(|q|)
    TT q = b.elementwise("Div", b.in);
    TT f = b.unary("Floor", b.unary("Abs", q));
    return {b.elementwise("Mul", {b.unary("Sign", q), f})};
  }
  return {b.elementwise("Div", b.in)};
}

std::vector<TT> div_no_nan(TfBuilder& b) {
  same_dtypes(b);
  const DType dt = b.dtype(b.in[0].v);
  TT zero{b.scalar(dt, 0), {}};
  TT is0 = b.elementwise("Equal", {b.in[1], zero});
  TT q = b.elementwise("Div", b.in);
  return {b.elementwise("Where", {is0, zero, q})};
}

std::vector<TT> bitcast(TfBuilder& b) {
  b.need_inputs(1, 1);
  const DType to = b.attr_dtype("type");
  Attributes a;
  a.set("to", onnx_dtype_code(to));
  return {TT{b.emit1("Bitcast", {b.src(b.in[0])}, a), {}}};
}

std::vector<TT> shift(TfBuilder& b, const char* dir) {
  same_dtypes(b);
  Attributes a;
  a.set("direction", std::string(dir));
  return {b.elementwise("BitShift", b.in, a)};
}

std::vector<TT> scan(TfBuilder& b, const std::string& op) {
  b.need_inputs(2, 2);
  const TT& x = b.in[0];
  const int ax = b.axis_of(b.const_int(1, "axis"), b.rank(x.v), "axis");
  Attributes a;
  a.set("exclusive", int64_t{b.attr_b("exclusive", false) ? 1 : 0});
  a.set("reverse", int64_t{b.attr_b("reverse", false) ? 1 : 0});
  return {TT{b.emit1(op, {x.v, b.i64s({b.canon_axis(x, ax)})}, a), x.perm}};
}

std::vector<TT> assign(TfBuilder& b) {
  // A frozen graph's variable is a Const; Assign(ref, value) yields the assigned value.
  b.need_inputs(2, 2);
  if (b.tf_shape(b.in[0]) != b.tf_shape(b.in[1]) && b.attr_b("validate_shape", true))
    fail("value", "shape " + shape_str(b.tf_shape(b.in[1])) + " differs from the variable's " +
                      shape_str(b.tf_shape(b.in[0])));
  return {b.unary("Identity", b.in[1])};
}

std::vector<TT> l2_loss(TfBuilder& b) {
  b.need_inputs(1, 1);
  const TT& x = b.in[0];
  int sq = b.emit1("Mul", {x.v, x.v});
  std::vector<int64_t> axes;
  for (int k = 0; k < b.rank(x.v); ++k) axes.push_back(k);
  Attributes a;
  a.set("keepdims", int64_t{0});
  int s = axes.empty() ? sq : b.emit1("ReduceSum", {sq, b.i64s(axes)}, a);
  return {TT{b.emit1("Mul", {s, b.scalar(b.dtype(x.v), 0.5)}), {}}};
}

}  // namespace

void add_extra_converters(ConverterTable& t) {
  t["NotEqual"] = not_equal;
  t["IsFinite"] = is_finite;
  t["IsInf"] = [](TfBuilder& b) {
    b.need_inputs(1, 1);
    return std::vector<TT>{b.unary("IsInf", b.in[0])};
  };
  t["All"] = [](TfBuilder& b) { return all_any(b, true); };
  t["Any"] = [](TfBuilder& b) { return all_any(b, false); };
  t["FloorDiv"] = floor_div;
  t["FloorMod"] = [](TfBuilder& b) {
    same_dtypes(b);
    return std::vector<TT>{mod(b, b.in, 0)};
  };
  // TF's Mod is C's fmod / %: the sign of the dividend, like TruncateMod
  t["TruncateMod"] = t["Mod"] = [](TfBuilder& b) {
    same_dtypes(b);
    return std::vector<TT>{mod(b, b.in, 1)};
  };
  t["TruncateDiv"] = truncate_div;
  t["DivNoNan"] = div_no_nan;
  t["Atan2"] = [](TfBuilder& b) {
    same_dtypes(b);
    return std::vector<TT>{b.elementwise("Atan2", b.in)};
  };
  for (const char* op : {"Log1p", "Expm1", "Erfc", "Lgamma", "Digamma"})
    t[op] = [op = std::string(op)](TfBuilder& b) {
      b.need_inputs(1, 1);
      return std::vector<TT>{b.unary(op, b.in[0])};
    };
  for (const char* op : {"Igamma", "Igammac", "Zeta", "Polygamma", "Betainc"})
    t[op] = [op = std::string(op)](TfBuilder& b) {
      const size_t n = op == "Betainc" ? 3 : 2;
      b.need_inputs(n, n);
      for (size_t i = 1; i < n; ++i)
        if (b.dtype(b.in[i].v) != b.dtype(b.in[0].v)) fail("T", "inputs of different dtypes");
      return std::vector<TT>{b.elementwise(op, b.in)};
    };
  t["Rint"] = [](TfBuilder& b) {  // half to even, as Round
    b.need_inputs(1, 1);
    return std::vector<TT>{b.unary("Round", b.in[0])};
  };
  for (const char* op : {"BitwiseAnd", "BitwiseOr", "BitwiseXor"})
    t[op] = [op = std::string(op)](TfBuilder& b) {
      same_dtypes(b);
      return std::vector<TT>{b.elementwise(op, b.in)};
    };
  t["Invert"] = [](TfBuilder& b) {
    b.need_inputs(1, 1);
    return std::vector<TT>{b.unary("BitwiseNot", b.in[0])};
  };
  t["LeftShift"] = [](TfBuilder& b) { return shift(b, "LEFT"); };
  t["RightShift"] = [](TfBuilder& b) { return shift(b, "RIGHT"); };
  t["Bitcast"] = bitcast;
  t["Cumsum"] = [](TfBuilder& b) { return scan(b, "CumSum"); };
  t["Cumprod"] = [](TfBuilder& b) { return scan(b, "CumProd"); };
  // Assert checks values and produces nothing: dropped (an inference graph's result does not
  // depend on it; TF would stop with an error where the condition is false).
  t["Assert"] = [](TfBuilder&) { return std::vector<TT>{}; };
  t["DeepCopy"] = [](TfBuilder& b) {
    b.need_inputs(1, 1);
    return std::vector<TT>{b.unary("Identity", b.in[0])};
  };
  t["Assign"] = assign;
  t["AccumulateNV2"] = [](TfBuilder& b) {
    if (b.in.empty()) fail("inputs", "AccumulateNV2 without inputs");
    if (b.in.size() == 1) return std::vector<TT>{b.unary("Identity", b.in[0])};
    return std::vector<TT>{b.elementwise("Sum", b.in)};
  };
  t["L2Loss"] = l2_loss;
}

}  // namespace anvil::tf_import
