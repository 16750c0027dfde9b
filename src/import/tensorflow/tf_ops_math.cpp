#include <algorithm>
#include <numeric>
#include <set>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

std::vector<TT> binary(TfBuilder& b, const std::string& op) {
  b.need_inputs(2, 2);
  if (b.dtype(b.in[0].v) != b.dtype(b.in[1].v))
    fail("T", std::string("operands of different dtypes (") + dtype_name(b.dtype(b.in[0].v)) +
                  ", " + dtype_name(b.dtype(b.in[1].v)) + ")");
  // integer Div truncates toward zero in TF's kernel (safe_div, as TruncateDiv), as Div does
  return {b.elementwise(op, b.in)};
}

std::vector<TT> rsqrt(TfBuilder& b) {
  b.need_inputs(1, 1);
  TT s = b.unary("Sqrt", b.in[0]);
  return {b.unary("Reciprocal", s)};
}

std::vector<TT> square(TfBuilder& b) {
  b.need_inputs(1, 1);
  return {TT{b.emit1("Mul", {b.in[0].v, b.in[0].v}), b.in[0].perm}};
}

std::vector<TT> relu6(TfBuilder& b) {
  b.need_inputs(1, 1);
  DType dt = b.dtype(b.in[0].v);
  return {TT{b.emit1("Clip", {b.in[0].v, b.scalar(dt, 0), b.scalar(dt, 6)}), b.in[0].perm}};
}

std::vector<TT> selu(TfBuilder& b) {
  b.need_inputs(1, 1);
  Attributes a;
  a.set("alpha", 1.6732632423543772848170429916717);
  a.set("gamma", 1.0507009873554804934193349852946);
  return {b.unary("Selu", b.in[0], a)};
}

std::vector<TT> leaky_relu(TfBuilder& b) {
  b.need_inputs(1, 1);
  Attributes a;
  a.set("alpha", b.attr_f("alpha", 0.2));
  return {b.unary("LeakyRelu", b.in[0], a)};
}

std::vector<TT> squared_difference(TfBuilder& b) {
  b.need_inputs(2, 2);
  TT d = b.elementwise("Sub", b.in);
  return {TT{b.emit1("Mul", {d.v, d.v}), d.perm}};
}

std::vector<TT> add_n(TfBuilder& b) {
  if (b.in.empty()) fail("inputs", "AddN without inputs");
  if (b.in.size() == 1) return {b.unary("Identity", b.in[0])};
  return {b.elementwise("Sum", b.in)};
}

std::vector<TT> arg_max(TfBuilder& b) {
  const std::string& op = b.op();
  b.need_inputs(2, 2);
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  int ax = b.axis_of(b.const_int(1, "dimension"), r, "dimension");
  Attributes a;
  a.set("axis", int64_t{b.canon_axis(x, ax)});
  a.set("keepdims", int64_t{0});
  int y = b.emit1(op, {x.v}, a);
  DType ot = b.attr_dtype("output_type", anvil_tf::DT_INT64);
  if (ot != DType::i64) {
    Attributes c;
    c.set("to", onnx_dtype_code(ot));
    y = b.emit1("Cast", {y}, c);
  }
  std::vector<int> kept;
  for (int k = 0; k < r; ++k)
    if (k != ax) kept.push_back(k);
  return {TT{y, b.reduced_perm(x, kept)}};
}

// TopKV2 (and TopK with attr k): the k largest along the last axis, values and int32 indices.
// sorted=false leaves the order to the implementation in TF; Anvil always returns them
// sorted (largest first, ties by lower index), which is one of the orders TF may give.
std::vector<TT> top_k(TfBuilder& b) {
  b.need_inputs(2, 2);
  int v = b.src(b.in[0]);
  if (b.rank(v) < 1) fail("input", "TopKV2 needs rank >= 1");
  int64_t k = b.const_int(1, "k");
  if (k < 0 || k > b.shape(v).back()) fail("k", "k = " + std::to_string(k) + " out of range");
  Attributes a;
  a.set("axis", int64_t{-1});
  a.set("largest", int64_t{1});
  a.set("sorted", int64_t{1});
  auto outs = b.emit("TopK", {v, b.i64s({k})}, a, 2);
  Attributes c;
  c.set("to", onnx_dtype_code(DType::i32));
  int idx = b.emit1("Cast", {outs[1]}, c);
  return {TT{outs[0], {}}, TT{idx, {}}};
}

std::vector<TT> cast(TfBuilder& b) {
  b.need_inputs(1, 1);
  DType to = b.attr_dtype("DstT");
  Attributes a;
  a.set("to", onnx_dtype_code(to));
  return {b.unary("Cast", b.in[0], a)};
}

std::vector<TT> select(TfBuilder& b) {
  const std::string& op = b.op();
  b.need_inputs(3, 3);
  if (op == "Select" && b.tf_shape(b.in[0]) != b.tf_shape(b.in[1]) && b.rank(b.in[0].v) != 0) {
    // Select: a vector condition picks whole rows of the values (first dimension)
    const Shape xs = b.tf_shape(b.in[1]), cs = b.tf_shape(b.in[0]);
    if (cs.size() != 1 || xs.empty() || cs[0] != xs[0])
      fail("condition", "condition " + shape_str(cs) + " must have the values' shape " +
                            shape_str(xs) + " or be a vector of their first dimension");
    Shape rs(xs.size(), 1);
    rs[0] = cs[0];
    TT c{b.reshape(b.src(b.in[0]), rs), {}};
    return {b.elementwise("Where", {c, b.in[1], b.in[2]})};
  }
  return {b.elementwise("Where", b.in)};
}

}  // namespace

std::vector<TT> reduce(TfBuilder& b, const std::string& op, bool as_bool) {
  b.need_inputs(2, 2);
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  auto axes = b.const_ints(1, "reduction_indices");
  const bool keep = b.attr_b("keep_dims", false);
  std::set<int> red;
  for (int64_t a : axes) red.insert(b.axis_of(a, r, "reduction_indices"));
  if (red.empty()) return {b.unary("Identity", x)};
  std::vector<int64_t> ca;
  for (int a : red) ca.push_back(b.canon_axis(x, a));
  Attributes at;
  at.set("keepdims", int64_t{keep ? 1 : 0});
  int y = b.emit1(op, {as_bool ? b.cast(x.v, DType::i32) : x.v, b.i64s(ca)}, at);
  if (as_bool) y = b.cast(y, DType::boolean);
  if (keep) return {TT{y, x.perm}};
  std::vector<int> kept;
  for (int k = 0; k < r; ++k)
    if (!red.count(k)) kept.push_back(k);
  return {TT{y, b.reduced_perm(x, kept)}};
}

void add_math_converters(ConverterTable& t) {
  // TF op -> canonical op of the same meaning, on the held layout
  static const std::map<std::string, std::string> unary_ops = {{"Relu", "Relu"},
                                                               {"Sigmoid", "Sigmoid"},
                                                               {"Tanh", "Tanh"},
                                                               {"Softplus", "Softplus"},
                                                               {"Softsign", "Softsign"},
                                                               {"Exp", "Exp"},
                                                               {"Log", "Log"},
                                                               {"Neg", "Neg"},
                                                               {"Abs", "Abs"},
                                                               {"Sqrt", "Sqrt"},
                                                               {"Reciprocal", "Reciprocal"},
                                                               {"Inv", "Reciprocal"},
                                                               {"Floor", "Floor"},
                                                               {"Ceil", "Ceil"},
                                                               {"Round", "Round"},
                                                               {"Sign", "Sign"},
                                                               {"Erf", "Erf"},
                                                               {"Sin", "Sin"},
                                                               {"Cos", "Cos"},
                                                               {"Tan", "Tan"},
                                                               {"Asin", "Asin"},
                                                               {"Acos", "Acos"},
                                                               {"Atan", "Atan"},
                                                               {"Sinh", "Sinh"},
                                                               {"Cosh", "Cosh"},
                                                               {"Asinh", "Asinh"},
                                                               {"Acosh", "Acosh"},
                                                               {"Atanh", "Atanh"},
                                                               {"LogicalNot", "Not"},
                                                               {"IsNan", "IsNaN"},
                                                               {"Elu", "Elu"}};
  for (const auto& [tf_op, op] : unary_ops)
    t[tf_op] = [op = op](TfBuilder& b) {
      b.need_inputs(1, 1);
      return std::vector<TT>{b.unary(op, b.in[0])};
    };
  static const std::map<std::string, std::string> binary_ops = {{"Add", "Add"},
                                                                {"AddV2", "Add"},
                                                                {"Sub", "Sub"},
                                                                {"Mul", "Mul"},
                                                                {"RealDiv", "Div"},
                                                                {"Div", "Div"},
                                                                {"Maximum", "Max"},
                                                                {"Minimum", "Min"},
                                                                {"Pow", "Pow"},
                                                                {"Greater", "Greater"},
                                                                {"GreaterEqual", "GreaterOrEqual"},
                                                                {"Less", "Less"},
                                                                {"LessEqual", "LessOrEqual"},
                                                                {"Equal", "Equal"},
                                                                {"LogicalAnd", "And"},
                                                                {"LogicalOr", "Or"}};
  for (const auto& [tf_op, op] : binary_ops)
    t[tf_op] = [op = op](TfBuilder& b) { return binary(b, op); };
  static const std::map<std::string, std::string> reduce_ops = {{"Mean", "ReduceMean"},
                                                                {"Sum", "ReduceSum"},
                                                                {"Max", "ReduceMax"},
                                                                {"Min", "ReduceMin"},
                                                                {"Prod", "ReduceProd"}};
  for (const auto& [tf_op, op] : reduce_ops)
    t[tf_op] = [op = op](TfBuilder& b) { return reduce(b, op); };
  t["Rsqrt"] = rsqrt;
  t["Square"] = square;
  t["Relu6"] = relu6;
  t["Selu"] = selu;
  t["LeakyRelu"] = leaky_relu;
  t["SquaredDifference"] = squared_difference;
  t["AddN"] = add_n;
  t["ArgMax"] = t["ArgMin"] = arg_max;
  t["TopKV2"] = top_k;
  t["Cast"] = cast;
  t["Select"] = t["SelectV2"] = select;
}

}  // namespace anvil::tf_import
