// NaN and Inf through the reference kernels (issue 19, item 2): every kernel propagates NaN
// as PyTorch and ONNX Runtime do (max(NaN, 0) = NaN, a max-pool window or a ReduceMax with a
// NaN is NaN, Clip(NaN) = NaN), ranks NaN above every number where it sorts (ArgMax, TopK,
// Caffe ArgMax: numpy / PyTorch), and keeps IEEE comparisons (NaN compares false).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "anvil/tensor.h"

using namespace anvil;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor vals(const Shape& s, const std::vector<double>& v, DType dt = DType::f32) {
  Tensor t(dt, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, v[static_cast<size_t>(i)]);
  return t;
}

Attributes attrs(std::initializer_list<std::pair<std::string, AttrValue>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

// One node on constant inputs, run by the reference kernel (evaluate_node).
std::vector<Tensor> run_op(const std::string& op, const std::vector<Tensor>& inputs,
                           const Attributes& a = {}, int nout = 1) {
  Graph g;
  std::vector<int> ids;
  for (size_t i = 0; i < inputs.size(); ++i)
    ids.push_back(inputs[i].defined() ? g.add_constant("in" + std::to_string(i), inputs[i]) : -1);
  int n = g.add_node(op, "node", ids, a, nout);
  g.outputs = g.nodes[static_cast<size_t>(n)].outputs;
  g.infer_shapes();
  return evaluate_node(g, g.nodes[static_cast<size_t>(n)], inputs);
}

// NaN must be NaN, infinities equal, numbers near.
void expect_same(const Tensor& t, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size())) << what;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double w = want[static_cast<size_t>(i)], g = t.get(i);
    if (std::isnan(w))
      EXPECT_TRUE(std::isnan(g)) << what << " [" << i << "] = " << g << ", want NaN";
    else if (std::isinf(w))
      EXPECT_EQ(g, w) << what << " [" << i << "]";
    else
      EXPECT_NEAR(g, w, 1e-5 * (1 + std::fabs(w))) << what << " [" << i << "]";
  }
}

struct Row {
  std::string op;
  Attributes a;
  std::vector<double> want;  // for the input {NaN, +Inf, -Inf, -1, 2}
};

}  // namespace

TEST(RefNaN, UnaryActivationsTable) {
  const std::vector<double> x = {kNaN, kInf, -kInf, -1, 2};
  const double e1 = std::expm1(-1.0);
  const double sa = 1.67326319217681884765625, sg = 1.05070102214813232421875;
  const double sig2 = 1 / (1 + std::exp(-2.0));
  const std::vector<Row> rows = {
      {"Relu", {}, {kNaN, kInf, 0, 0, 2}},
      {"LeakyRelu", attrs({{"alpha", 0.1}}), {kNaN, kInf, -kInf, -0.1, 2}},
      {"Elu", {}, {kNaN, kInf, -1, e1, 2}},
      {"Selu", {}, {kNaN, kInf, -sg * sa, sg * sa * e1, sg * 2}},
      {"Celu", {}, {kNaN, kInf, -1, e1, 2}},
      {"Sigmoid", {}, {kNaN, 1, 0, 1 / (1 + std::exp(1.0)), sig2}},
      {"HardSigmoid", {}, {kNaN, 1, 0, 0.3, 0.9}},
      {"Tanh", {}, {kNaN, 1, -1, std::tanh(-1.0), std::tanh(2.0)}},
      {"ThresholdedRelu", {}, {kNaN, kInf, 0, 0, 2}},
      {"Abs", {}, {kNaN, kInf, kInf, 1, 2}},
      {"Sign", {}, {kNaN, 1, -1, -1, 1}},
  };
  for (const auto& r : rows) expect_same(run_op(r.op, {vals({5}, x)}, r.a)[0], r.want, r.op);
  // Only NaN -> NaN asserted for the rest (their infinities differ between frameworks).
  for (const char* op :
       {"HardSwish", "Softsign", "Softplus", "Mish", "Gelu", "Exp", "Log", "Sqrt"}) {
    const Tensor y = run_op(op, {vals({1}, {kNaN})})[0];
    EXPECT_TRUE(std::isnan(y.get(0))) << op;
  }
  // Clip with both bounds, one bound, none; PRelu.
  const Tensor lo = vals({}, {0}), hi = vals({}, {6});
  expect_same(run_op("Clip", {vals({5}, x), lo, hi})[0], {kNaN, 6, 0, 0, 2}, "Clip(0,6)");
  expect_same(run_op("Clip", {vals({5}, x), Tensor(), hi})[0], {kNaN, 6, -kInf, -1, 2}, "Clip(,6)");
  expect_same(run_op("PRelu", {vals({5}, x), vals({1}, {0.25})})[0], {kNaN, kInf, -kInf, -0.25, 2},
              "PRelu");
}

TEST(RefNaN, MaxMinAndComparisons) {
  const Tensor a = vals({4}, {kNaN, 1, kNaN, -kInf}), b = vals({4}, {0, kNaN, kNaN, 3});
  expect_same(run_op("Max", {a, b})[0], {kNaN, kNaN, kNaN, 3}, "Max");
  expect_same(run_op("Min", {a, b})[0], {kNaN, kNaN, kNaN, -kInf}, "Min");
  // IEEE: every ordered comparison with NaN is false, NaN != NaN.
  expect_same(run_op("Less", {a, b})[0], {0, 0, 0, 1}, "Less");
  expect_same(run_op("Greater", {a, b})[0], {0, 0, 0, 0}, "Greater");
  expect_same(run_op("Equal", {a, b})[0], {0, 0, 0, 0}, "Equal");
  expect_same(run_op("IsNaN", {a})[0], {1, 0, 1, 0}, "IsNaN");
}

TEST(RefNaN, PoolingTakesTheNaN) {
  // One 1x1x2x4 image; the left 2x2 window holds a NaN, the right one +Inf.
  const Tensor x = vals({1, 1, 2, 4}, {5, kNaN, 1, kInf, -3, 7, 2, 0});
  auto o = run_op("MaxPool", {x},
                  attrs({{"kernel_shape", std::vector<int64_t>{2, 2}},
                         {"strides", std::vector<int64_t>{2, 2}}}),
                  2);
  expect_same(o[0], {kNaN, kInf}, "MaxPool");
  expect_same(o[1], {1, 3}, "MaxPool indices");
  // A NaN that is not the first element of the window, after a larger value.
  const Tensor x2 = vals({1, 1, 1, 3}, {9, kNaN, 4});
  expect_same(run_op("MaxPool", {x2}, attrs({{"kernel_shape", std::vector<int64_t>{1, 3}}}))[0],
              {kNaN}, "MaxPool after 9");
  expect_same(run_op("GlobalMaxPool", {x2})[0], {kNaN}, "GlobalMaxPool");
  expect_same(run_op("AveragePool", {x},
                     attrs({{"kernel_shape", std::vector<int64_t>{2, 2}},
                            {"strides", std::vector<int64_t>{2, 2}}}))[0],
              {kNaN, kInf}, "AveragePool");
}

TEST(RefNaN, ReductionsSoftmaxArgTopK) {
  const Tensor x = vals({2, 3}, {1, kNaN, 3, -kInf, 2, kInf});
  const Attributes ax1 = attrs({{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}});
  expect_same(run_op("ReduceMax", {x}, ax1)[0], {kNaN, kInf}, "ReduceMax");
  expect_same(run_op("ReduceMin", {x}, ax1)[0], {kNaN, -kInf}, "ReduceMin");
  expect_same(run_op("ReduceSum", {x, Tensor::from_vector<int64_t>({1}, {1})},
                     attrs({{"keepdims", int64_t{0}}}))[0],
              {kNaN, kNaN}, "ReduceSum");
  const Tensor row = vals({1, 4}, {1, kNaN, 3, kNaN});
  expect_same(run_op("Softmax", {row})[0], {kNaN, kNaN, kNaN, kNaN}, "Softmax");
  expect_same(run_op("LogSoftmax", {row})[0], {kNaN, kNaN, kNaN, kNaN}, "LogSoftmax");
  // NaN is the extreme for ArgMax and ArgMin (numpy, PyTorch): the first, or the last one.
  const Attributes a1 = attrs({{"axis", int64_t{1}}, {"keepdims", int64_t{0}}});
  expect_same(run_op("ArgMax", {row}, a1)[0], {1}, "ArgMax");
  expect_same(run_op("ArgMin", {row}, a1)[0], {1}, "ArgMin");
  Attributes last = a1;
  last.set("select_last_index", int64_t{1});
  expect_same(run_op("ArgMax", {row}, last)[0], {3}, "ArgMax last");
  expect_same(run_op("Hardmax", {row})[0], {0, 1, 0, 0}, "Hardmax");
  // TopK: NaN ranks above every number (PyTorch), ties keep the lower index first.
  const Tensor k2 = Tensor::from_vector<int64_t>({1}, {2});
  auto t = run_op("TopK", {row, k2}, {}, 2);
  expect_same(t[0], {kNaN, kNaN}, "TopK values");
  expect_same(t[1], {1, 3}, "TopK indices");
  t = run_op("TopK", {row, k2}, attrs({{"largest", int64_t{0}}}), 2);
  expect_same(t[0], {1, 3}, "TopK smallest");
  expect_same(t[1], {0, 2}, "TopK smallest indices");
  // Caffe ArgMax: top 2 of (1, NaN, 3, NaN) -> the NaNs, larger index first (std::greater).
  expect_same(run_op("CaffeArgMax", {row}, attrs({{"axis", int64_t{1}}, {"top_k", int64_t{2}}}))[0],
              {3, 1}, "CaffeArgMax");
}

TEST(RefNaN, ScatterNDMaxKeepsNaN) {
  const Tensor data = vals({3}, {1, kNaN, 5});
  const Tensor idx = Tensor::from_vector<int64_t>({3, 1}, {0, 1, 2});
  const Tensor upd = vals({3}, {kNaN, 2, 4});
  expect_same(run_op("ScatterND", {data, idx, upd}, attrs({{"reduction", std::string("max")}}))[0],
              {kNaN, kNaN, 5}, "ScatterND max");
  expect_same(run_op("ScatterND", {data, idx, upd}, attrs({{"reduction", std::string("min")}}))[0],
              {kNaN, kNaN, 4}, "ScatterND min");
}

// Conv -> Relu through a reference Session: the pipeline fuses the Relu into the Conv
// (apply_activation), which turned NaN into 0.
TEST(RefNaN, FusedReluThroughSession) {
  Graph g;
  const int x = g.add_input("x", DType::f32, {1, 1, 1, 4});
  const int w = g.add_constant("w", vals({1, 1, 1, 1}, {1}));
  const int c = g.add_node("Conv", "conv", {x, w}, {});
  const int r = g.add_node("Relu", "relu", {g.nodes[static_cast<size_t>(c)].outputs[0]}, {});
  g.outputs = g.nodes[static_cast<size_t>(r)].outputs;
  const std::string out = g.values[static_cast<size_t>(g.outputs[0])].name;
  SessionOptions so;
  so.backend = "reference";
  Session s(std::move(g), so);
  auto res = s.run({{"x", vals({1, 1, 1, 4}, {kNaN, -1, kInf, 2})}});
  expect_same(res.at(out), {kNaN, 0, kInf, 2}, "Conv+Relu");
}
