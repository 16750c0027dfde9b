// Reference kernels of elementwise ops (src/ops/elementwise.cpp) against
// hand-derived values (transcendentals: values printed by Python's math module).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "anvil/tensor.h"
#include "unit/op_test_util.h"

using namespace anvil;
using anvil::testing::F;
using anvil::testing::I32;
using anvil::testing::I64;

namespace {

Tensor D(Shape s, std::vector<double> v) { return Tensor::from_vector<double>(std::move(s), v); }
Tensor B(Shape s, std::vector<bool> v) {
  Tensor t(DType::boolean, std::move(s));
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), v[i] ? 1 : 0);
  return t;
}

std::vector<Tensor> run_op(const std::string& op, const std::vector<Tensor>& ins,
                           Attributes attrs = {}, int num_outputs = 1, int runtime = -1) {
  return anvil::testing::run_single_op(op, ins, std::move(attrs), num_outputs, runtime);
}

Tensor run1(const std::string& op, const std::vector<Tensor>& ins, Attributes attrs = {},
            int runtime = -1) {
  return run_op(op, ins, std::move(attrs), 1, runtime)[0];
}

// Same, with evaluate_node on an inferred graph whose inputs are all constants.
Tensor eval1(const std::string& op, const std::vector<Tensor>& ins, Attributes attrs = {}) {
  Graph g;
  std::vector<int> ids;
  for (size_t i = 0; i < ins.size(); ++i)
    ids.push_back(ins[i].defined() ? g.add_constant("c" + std::to_string(i), ins[i]) : -1);
  g.add_node(op, "node", ids, std::move(attrs));
  g.infer_shapes();
  return evaluate_node(g, g.nodes[0], ins)[0];
}

void expect_values(const Tensor& t, DType dt, const Shape& shape, const std::vector<double>& want,
                   double tol = 1e-6) {
  ASSERT_EQ(t.dtype(), dt) << dtype_name(t.dtype());
  ASSERT_EQ(t.shape(), shape) << shape_str(t.shape());
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    double got = t.get(static_cast<int64_t>(i));
    if (std::isnan(want[i]))
      EXPECT_TRUE(std::isnan(got)) << "element " << i;
    else
      EXPECT_NEAR(got, want[i], tol * std::max(1.0, std::fabs(want[i]))) << "element " << i;
  }
}

void expect_ints(const Tensor& t, DType dt, const Shape& shape, const std::vector<int64_t>& want) {
  ASSERT_EQ(t.dtype(), dt) << dtype_name(t.dtype());
  ASSERT_EQ(t.shape(), shape) << shape_str(t.shape());
  std::vector<int64_t> got;
  for (int64_t i = 0; i < t.numel(); ++i)
    got.push_back(t.dtype() == DType::i64 ? t.data<int64_t>()[i] : static_cast<int64_t>(t.get(i)));
  EXPECT_EQ(got, want);
}

Attributes attr(const std::string& k, AttrValue v) {
  Attributes a;
  a.set(k, std::move(v));
  return a;
}

// Expects an anvil::Error naming node "node" while building/running the one-node graph.
template <class F>
void expect_node_error(F&& f, const std::string& field_or_empty = "") {
  try {
    f();
    ADD_FAILURE() << "expected anvil::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "node") << e.what();
    if (!field_or_empty.empty()) EXPECT_EQ(e.field(), field_or_empty) << e.what();
  }
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

// --- Unary activations --------------------------------------------------------------------------

TEST(RefEwUnary, ReluLeakyEluSelu) {
  Tensor x = F({2, 2}, {-2.0f, -1.0f, 0.0f, 3.0f});
  expect_values(run1("Relu", {x}), DType::f32, {2, 2}, {0, 0, 0, 3});
  expect_values(run1("LeakyRelu", {x}), DType::f32, {2, 2}, {-0.02, -0.01, 0, 3});
  expect_values(run1("LeakyRelu", {x}, attr("alpha", 0.5)), DType::f32, {2, 2}, {-1, -0.5, 0, 3});
  expect_values(run1("Elu", {x}), DType::f32, {2, 2},
                {-0.8646647167633873, -0.6321205588285577, 0, 3});
  expect_values(run1("Elu", {x}, attr("alpha", 2.0)), DType::f32, {2, 2},
                {2 * -0.8646647167633873, 2 * -0.6321205588285577, 0, 3});
  expect_values(run1("Selu", {F({2}, {-1.0f, 2.0f})}), DType::f32, {2},
                {-1.1113307412864781, 2.1014020442962646});
  expect_values(run1("Celu", {F({2}, {-1.0f, 2.0f})}, attr("alpha", 2.0)), DType::f32, {2},
                {-0.7869386805747332, 2});
  expect_values(run1("ThresholdedRelu", {F({3}, {0.5f, 1.0f, 1.5f})}), DType::f32, {3},
                {0, 0, 1.5});
  expect_values(run1("ThresholdedRelu", {F({3}, {0.5f, 1.0f, 1.5f})}, attr("alpha", 0.25)),
                DType::f32, {3}, {0.5, 1, 1.5});
}

TEST(RefEwUnary, SigmoidFamily) {
  Tensor x = F({3}, {-2.0f, 0.0f, 1.5f});
  expect_values(run1("Sigmoid", {x}), DType::f32, {3},
                {0.11920292202211755, 0.5, 0.8175744761936437});
  // HardSigmoid 0.2x + 0.5 clipped: -2 -> 0.1, 0 -> 0.5, 1.5 -> 0.8; 3 -> 1.0 (clipped).
  expect_values(run1("HardSigmoid", {F({4}, {-2, 0, 1.5, 3})}), DType::f32, {4},
                {0.1, 0.5, 0.8, 1.0});
  expect_values(run1("HardSigmoid", {F({2}, {-10, 1})},
                     [] {
                       Attributes a;
                       a.set("alpha", 0.5);
                       a.set("beta", 0.25);
                       return a;
                     }()),
                DType::f32, {2}, {0.0, 0.75});
  // HardSwish x * clip(x/6 + 0.5): -4 -> 0, -1 -> -1/3, 1 -> 2/3, 4 -> 4.
  expect_values(run1("HardSwish", {F({4}, {-4, -1, 1, 4})}), DType::f32, {4},
                {0, -1.0 / 3, 2.0 / 3, 4});
  expect_values(run1("Tanh", {F({1}, {0.5f})}), DType::f32, {1}, {0.46211715726000974});
  expect_values(run1("Softplus", {F({3}, {-1, 0, 2})}), DType::f32, {3},
                {0.31326168751822286, 0.6931471805599453, 2.1269280110429727});
  // Softplus must not overflow for large x (log(1 + e^1000) = 1000).
  expect_values(run1("Softplus", {D({1}, {1000.0})}), DType::f64, {1}, {1000.0});
  expect_values(run1("Softsign", {F({2}, {3, -1})}), DType::f32, {2}, {0.75, -0.5});
  expect_values(run1("Mish", {F({2}, {1, -1})}), DType::f32, {2},
                {0.8650983882673103, -0.30340146137410895});
  expect_values(run1("Gelu", {F({2}, {1, -0.5})}), DType::f32, {2},
                {0.8413447460685429, -0.15426876936299344});
  expect_values(run1("Gelu", {F({1}, {1})}, attr("approximate", std::string("tanh"))), DType::f32,
                {1}, {0.8411919906082768});
}

TEST(RefEwUnary, MathFunctions) {
  expect_values(run1("Exp", {F({2}, {0, 1})}), DType::f32, {2}, {1, 2.718281828459045});
  expect_values(run1("Log", {F({2}, {1, 2})}), DType::f32, {2}, {0, 0.6931471805599453});
  expect_values(run1("Sqrt", {F({2}, {4, 2.25})}), DType::f32, {2}, {2, 1.5});
  expect_values(run1("Abs", {F({2}, {-2.5, 3})}), DType::f32, {2}, {2.5, 3});
  expect_values(run1("Neg", {F({2}, {-2.5, 3})}), DType::f32, {2}, {2.5, -3});
  expect_values(run1("Erf", {F({2}, {0.5, -1})}), DType::f32, {2},
                {0.5204998778130465, -0.8427007929497149});
  expect_values(run1("Reciprocal", {F({2}, {4, -0.5})}), DType::f32, {2}, {0.25, -2});
  expect_values(run1("Floor", {F({3}, {-1.5, 1.5, 2})}), DType::f32, {3}, {-2, 1, 2});
  expect_values(run1("Ceil", {F({3}, {-1.5, 1.5, 2})}), DType::f32, {3}, {-1, 2, 2});
  // Round half to even (numpy.round).
  expect_values(run1("Round", {F({8}, {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6})}), DType::f32,
                {8}, {0, 2, 2, 0, -2, -2, 2, 3});
  expect_values(run1("Sign", {F({4}, {-3, 0, 0.1f, 7})}), DType::f32, {4}, {-1, 0, 1, 1});
  expect_values(run1("Sin", {F({1}, {1})}), DType::f32, {1}, {0.8414709848078965});
  expect_values(run1("Cos", {F({1}, {1})}), DType::f32, {1}, {0.5403023058681398});
}

TEST(RefEwUnary, IntegerAbsNegSignRelu) {
  expect_ints(run1("Abs", {I32({3}, {-5, 0, 7})}), DType::i32, {3}, {5, 0, 7});
  expect_ints(run1("Neg", {I64({3}, {-5, 0, 7})}), DType::i64, {3}, {5, 0, -7});
  expect_ints(run1("Sign", {I64({3}, {-5, 0, 7})}), DType::i64, {3}, {-1, 0, 1});
  expect_ints(run1("Relu", {I32({3}, {-5, 0, 7})}), DType::i32, {3}, {0, 0, 7});
  // i64 values beyond 2^53 stay exact.
  const int64_t big = (int64_t{1} << 60) + 1;
  expect_ints(run1("Neg", {I64({1}, {big})}), DType::i64, {1}, {-big});
  // Float-only ops reject integers with a node error.
  expect_node_error([] { run1("Exp", {I32({1}, {1})}); }, "inputs");
}

TEST(RefEwUnary, HalfAndBf16StayInTheirDtype) {
  Tensor h(DType::f16, {3}), b(DType::bf16, {3});
  const double xs[3] = {-1.0, 0.5, 2.0};
  for (int i = 0; i < 3; ++i) {
    h.set(i, xs[i]);
    b.set(i, xs[i]);
  }
  expect_values(run1("Relu", {h}), DType::f16, {3}, {0, 0.5, 2});
  expect_values(run1("Sigmoid", {b}), DType::bf16, {3},
                {0.2689414213699951, 0.6224593312018546, 0.8807970779778823}, 5e-3);
  expect_values(run1("Exp", {h}), DType::f16, {3},
                {0.36787944117144233, 1.6487212707001282, 7.38905609893065}, 1e-3);
}

TEST(RefEwUnary, ClipWithOptionalInputs) {
  Tensor x = F({5}, {-3, -1, 0, 1, 3});
  Tensor lo = Tensor::scalar<float>(-1.5f), hi = Tensor::scalar<float>(2.0f);
  expect_values(run1("Clip", {x, lo, hi}, {}, 1), DType::f32, {5}, {-1.5, -1, 0, 1, 2});
  expect_values(run1("Clip", {x, Tensor(), hi}, {}, 1), DType::f32, {5}, {-3, -1, 0, 1, 2});
  expect_values(run1("Clip", {x, lo}, {}, 1), DType::f32, {5}, {-1.5, -1, 0, 1, 3});
  expect_values(run1("Clip", {x}), DType::f32, {5}, {-3, -1, 0, 1, 3});
  // min > max: everything becomes max (ONNX).
  expect_values(run1("Clip", {x, Tensor::scalar<float>(2), Tensor::scalar<float>(1)}, {}, 1),
                DType::f32, {5}, {1, 1, 1, 1, 1});
  // min/max as runtime inputs too.
  expect_values(run1("Clip", {x, lo, hi}), DType::f32, {5}, {-1.5, -1, 0, 1, 2});
  // Integers.
  expect_ints(
      run1("Clip",
           {I32({4}, {-9, 2, 5, 100}), Tensor::scalar<int32_t>(0), Tensor::scalar<int32_t>(10)}, {},
           1),
      DType::i32, {4}, {0, 2, 5, 10});
  expect_node_error([&] { run1("Clip", {x, F({2}, {0, 1})}, {}, 1); }, "min");
}

TEST(RefEwUnary, PReluBroadcastsSlopeToX) {
  // X (1, 2, 2), slope per channel (2, 1).
  Tensor x = F({1, 2, 2}, {-1, 2, -3, 4});
  expect_values(run1("PRelu", {x, F({2, 1}, {0.5, 0.25})}), DType::f32, {1, 2, 2},
                {-0.5, 2, -0.75, 4});
  expect_values(run1("PRelu", {x, F({1}, {0.1f})}), DType::f32, {1, 2, 2}, {-0.1, 2, -0.3, 4});
  // The slope may not make the output larger than X (unidirectional).
  expect_node_error([&] { run1("PRelu", {F({2}, {-1, 1}), F({2, 2}, {1, 1, 1, 1})}); }, "slope");
}

// --- Binaries -----------------------------------------------------------------------------------

TEST(RefEwBinary, ArithmeticBroadcastsBothWays) {
  // (2, 1) op (3,) -> (2, 3).
  Tensor a = F({2, 1}, {10, 20}), b = F({3}, {1, 2, 3});
  expect_values(run1("Add", {a, b}), DType::f32, {2, 3}, {11, 12, 13, 21, 22, 23});
  expect_values(run1("Sub", {a, b}), DType::f32, {2, 3}, {9, 8, 7, 19, 18, 17});
  expect_values(run1("Sub", {b, a}), DType::f32, {2, 3}, {-9, -8, -7, -19, -18, -17});
  expect_values(run1("Mul", {a, b}), DType::f32, {2, 3}, {10, 20, 30, 20, 40, 60});
  expect_values(run1("Div", {a, b}), DType::f32, {2, 3}, {10, 5, 10.0 / 3, 20, 10, 20.0 / 3});
  // Scalar broadcast and a (1, 3, 1) x (2, 1, 2) -> (2, 3, 2) case.
  expect_values(run1("Add", {Tensor::scalar<float>(1), b}), DType::f32, {3}, {2, 3, 4});
  Tensor c = F({1, 3, 1}, {0, 10, 20}), d = F({2, 1, 2}, {1, 2, 3, 4});
  expect_values(run1("Add", {c, d}), DType::f32, {2, 3, 2},
                {1, 2, 11, 12, 21, 22, 3, 4, 13, 14, 23, 24});
  // Constant first operand, runtime second.
  expect_values(run1("Mul", {b, a}, {}, 1), DType::f32, {2, 3}, {10, 20, 30, 20, 40, 60});
}

TEST(RefEwBinary, IntegerArithmeticIsExactAndDivTruncates) {
  Tensor a = I32({4}, {7, -7, 7, -7}), b = I32({4}, {2, 2, -2, -2});
  expect_ints(run1("Div", {a, b}), DType::i32, {4}, {3, -3, -3, 3});
  expect_ints(run1("Add", {a, b}), DType::i32, {4}, {9, -5, 5, -9});
  expect_ints(run1("Mul", {a, b}), DType::i32, {4}, {14, -14, -14, 14});
  const int64_t big = (int64_t{1} << 62) + 3;  // not representable as double
  expect_ints(run1("Sub", {I64({1}, {big}), I64({1}, {1})}), DType::i64, {1}, {big - 1});
  expect_ints(run1("Div", {I64({1}, {big}), I64({1}, {1})}), DType::i64, {1}, {big});
  // Integer division by zero is an error, not a crash.
  expect_node_error([] { run1("Div", {I32({1}, {1}), I32({1}, {0})}); });
  // INT64_MIN / -1 wraps instead of trapping.
  const int64_t mn = std::numeric_limits<int64_t>::min();
  expect_ints(run1("Div", {I64({1}, {mn}), I64({1}, {-1})}), DType::i64, {1}, {mn});
}

TEST(RefEwBinary, ModFollowsDivisorOrDividend) {
  Tensor a = I64({4}, {5, -5, 5, -5}), b = I64({4}, {3, 3, -3, -3});
  expect_ints(run1("Mod", {a, b}), DType::i64, {4}, {2, 1, -1, -2});
  expect_ints(run1("Mod", {a, b}, attr("fmod", int64_t{1})), DType::i64, {4}, {2, -2, 2, -2});
  expect_values(run1("Mod", {F({2}, {5.5, -5.5}), F({2}, {2, 2})}, attr("fmod", int64_t{1})),
                DType::f32, {2}, {1.5, -1.5});
  expect_values(run1("Mod", {F({2}, {5.5, -5.5}), F({2}, {2, 2})}), DType::f32, {2}, {1.5, 0.5});
  expect_node_error([] { run1("Mod", {I32({1}, {1}), I32({1}, {0})}); });
}

TEST(RefEwBinary, PowMixedDtypes) {
  expect_values(run1("Pow", {F({3}, {2, 4, 9}), F({1}, {0.5})}), DType::f32, {3},
                {1.4142135623730951, 2, 3});
  // Float base, integer exponent: output float.
  expect_values(run1("Pow", {F({2}, {2, -3}), I64({2}, {3, 2})}), DType::f32, {2}, {8, 9});
  // Integer base: exact, output integer.
  expect_ints(run1("Pow", {I64({3}, {3, -2, 10}), I64({3}, {4, 3, 15})}), DType::i64, {3},
              {81, -8, 1000000000000000});
  // Integer base, float exponent: truncated.
  expect_ints(run1("Pow", {I32({2}, {2, 9}), F({2}, {0.5, 0.5})}), DType::i32, {2}, {1, 3});
}

TEST(RefEwBinary, ComparisonsGiveBool) {
  Tensor a = F({2, 2}, {1, 2, 3, 4}), b = F({2}, {2, 3});
  // a vs b broadcast: [[1<2, 2<3], [3<2, 4<3]]
  expect_ints(run1("Less", {a, b}), DType::boolean, {2, 2}, {1, 1, 0, 0});
  expect_ints(run1("LessOrEqual", {a, b}), DType::boolean, {2, 2}, {1, 1, 0, 0});
  expect_ints(run1("Greater", {a, b}), DType::boolean, {2, 2}, {0, 0, 1, 1});
  expect_ints(run1("GreaterOrEqual", {F({3}, {1, 2, 3}), F({1}, {2})}), DType::boolean, {3},
              {0, 1, 1});
  expect_ints(run1("Equal", {I64({3}, {1, 2, 3}), I64({1}, {2})}), DType::boolean, {3}, {0, 1, 0});
  expect_ints(run1("Equal", {B({2}, {true, false}), B({2}, {true, true})}), DType::boolean, {2},
              {1, 0});
  // NaN compares unequal / false.
  expect_ints(run1("Equal", {D({1}, {kNaN}), D({1}, {kNaN})}), DType::boolean, {1}, {0});
  // i64 beyond 2^53: exact comparison.
  const int64_t big = int64_t{1} << 60;
  expect_ints(run1("Less", {I64({1}, {big}), I64({1}, {big + 1})}), DType::boolean, {1}, {1});
}

TEST(RefEwBinary, LogicOps) {
  Tensor a = B({4}, {false, false, true, true}), b = B({4}, {false, true, false, true});
  expect_ints(run1("And", {a, b}), DType::boolean, {4}, {0, 0, 0, 1});
  expect_ints(run1("Or", {a, b}), DType::boolean, {4}, {0, 1, 1, 1});
  expect_ints(run1("Xor", {a, b}), DType::boolean, {4}, {0, 1, 1, 0});
  expect_ints(run1("Not", {a}), DType::boolean, {4}, {1, 1, 0, 0});
  // Broadcast (2, 1) and (2,).
  expect_ints(run1("And", {B({2, 1}, {true, false}), B({2}, {true, false})}), DType::boolean,
              {2, 2}, {1, 0, 0, 0});
  expect_node_error([] { run1("And", {F({1}, {1}), F({1}, {1})}); }, "inputs");
}

TEST(RefEwBinary, WhereBroadcastsThreeWays) {
  // cond (2, 1), X (1, 3), Y scalar -> (2, 3).
  Tensor cond = B({2, 1}, {true, false});
  Tensor x = F({1, 3}, {1, 2, 3});
  Tensor y = Tensor::scalar<float>(-1);
  expect_values(run1("Where", {cond, x, y}), DType::f32, {2, 3}, {1, 2, 3, -1, -1, -1});
  // Integer payload, per-element condition.
  expect_ints(
      run1("Where", {B({3}, {true, false, true}), I64({3}, {1, 2, 3}), I64({3}, {7, 8, 9})}),
      DType::i64, {3}, {1, 8, 3});
  expect_node_error([&] { run1("Where", {F({1}, {1}), x, x}); }, "condition");
}

TEST(RefEwBinary, VariadicMaxMinSumMean) {
  Tensor a = F({3}, {1, 5, 3}), b = F({1}, {2}), c = F({2, 1}, {0, 10});
  expect_values(run1("Max", {a, b, c}), DType::f32, {2, 3}, {2, 5, 3, 10, 10, 10});
  expect_values(run1("Min", {a, b, c}), DType::f32, {2, 3}, {0, 0, 0, 1, 2, 2});
  expect_values(run1("Sum", {a, b, c}), DType::f32, {2, 3}, {3, 7, 5, 13, 17, 15});
  expect_values(run1("Mean", {a, b, c}), DType::f32, {2, 3},
                {1, 7.0 / 3, 5.0 / 3, 13.0 / 3, 17.0 / 3, 5});
  expect_values(run1("Sum", {a}), DType::f32, {3}, {1, 5, 3});
  expect_ints(run1("Max", {I64({2}, {-1, 4}), I64({2}, {3, -4})}), DType::i64, {2}, {3, 4});
  // NaN propagates through Max/Min (numpy.maximum).
  expect_values(run1("Max", {D({2}, {kNaN, 1}), D({2}, {1, kNaN})}), DType::f64, {2}, {kNaN, kNaN});
}

// --- Errors --------------------------------------------------------------------------------------

TEST(RefEwErrors, MismatchedBroadcastShapesNameTheNode) {
  expect_node_error([] { run1("Add", {F({2, 3}, {1, 2, 3, 4, 5, 6}), F({2}, {1, 2})}); }, "inputs");
  expect_node_error(
      [] {
        run1("Sum", {F({3}, {1, 2, 3}), F({2}, {1, 2}), F({1}, {1})});
      },
      "inputs");
  expect_node_error([] { run1("Add", {F({1}, {1}), I32({1}, {1})}); }, "inputs");
  // Bad attribute value.
  expect_node_error([] { run1("Gelu", {F({1}, {1})}, attr("approximate", std::string("fast"))); },
                    "approximate");
  // evaluate_node with tensors that do not match the inferred graph: an error, not a read
  // past the buffer.
  Graph g;
  int a = g.add_constant("a", F({2}, {1, 2}));
  int b = g.add_constant("b", F({2}, {1, 2}));
  g.add_node("Add", "node", {a, b});
  g.infer_shapes();
  std::vector<Tensor> wrong = {F({3}, {1, 2, 3}), F({3}, {1, 2, 3})};
  expect_node_error([&] { evaluate_node(g, g.nodes[0], wrong); });
  std::vector<Tensor> incompatible = {F({2}, {1, 2}), F({3}, {1, 2, 3})};
  expect_node_error([&] { evaluate_node(g, g.nodes[0], incompatible); });
}

TEST(RefEwErrors, EvaluateNodeMatchesSession) {
  Tensor a = F({2, 1}, {1, 2}), b = F({2}, {10, 20});
  expect_values(eval1("Add", {a, b}), DType::f32, {2, 2}, {11, 21, 12, 22});
}

TEST(RefEwUnary, IsNaNIsInf) {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = D({4}, {1.0, kNaN, inf, -inf});
  expect_ints(run1("IsNaN", {x}), DType::boolean, {4}, {0, 1, 0, 0});
  expect_ints(run1("IsInf", {x}), DType::boolean, {4}, {0, 0, 1, 1});
  expect_ints(run1("IsInf", {x}, attr("detect_negative", int64_t{0})), DType::boolean, {4},
              {0, 0, 1, 0});
  expect_ints(run1("IsInf", {x}, attr("detect_positive", int64_t{0})), DType::boolean, {4},
              {0, 0, 0, 1});
  expect_node_error([] { run1("IsNaN", {I32({1}, {1})}); }, "inputs");
}

TEST(RefEwBinary, HalfPrecisionBinariesRoundOnce) {
  Tensor a(DType::f16, {3}), b(DType::f16, {1});
  a.set(0, 1.0);
  a.set(1, 2.5);
  a.set(2, -4.0);
  b.set(0, 0.5);
  expect_values(run1("Add", {a, b}), DType::f16, {3}, {1.5, 3.0, -3.5}, 0);
  expect_values(run1("Mul", {a, b}), DType::f16, {3}, {0.5, 1.25, -2.0}, 0);
  expect_ints(run1("Greater", {a, b}), DType::boolean, {3}, {1, 1, 0});
  Tensor c = a.to(DType::bf16), d = b.to(DType::bf16);
  expect_values(run1("Sub", {c, d}), DType::bf16, {3}, {0.5, 2.0, -4.5}, 0);
}
