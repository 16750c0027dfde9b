// Reference kernels of shape and tensor-manipulation ops (src/ops/shape.cpp,
// tensor.cpp) against hand-derived values (DepthToSpace/SpaceToDepth and Pad reflect:
// numpy reshape/transpose and numpy.pad).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "anvil/tensor.h"
#include "passes/passes.h"
#include "unit/op_test_util.h"

using namespace anvil;
using anvil::testing::F;
using anvil::testing::I32;
using anvil::testing::I64;

namespace {

Tensor Iota(Shape s) {
  Tensor t(DType::f32, std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, static_cast<double>(i));
  return t;
}
std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

std::vector<Tensor> run_op(const std::string& op, const std::vector<Tensor>& ins,
                           Attributes attrs = {}, int num_outputs = 1, int runtime = 1) {
  return anvil::testing::run_single_op(op, ins, std::move(attrs), num_outputs, runtime);
}

Tensor run1(const std::string& op, const std::vector<Tensor>& ins, Attributes attrs = {},
            int runtime = 1) {
  return run_op(op, ins, std::move(attrs), 1, runtime)[0];
}

void expect_ints(const Tensor& t, DType dt, const Shape& shape, const std::vector<int64_t>& want) {
  ASSERT_EQ(t.dtype(), dt) << dtype_name(t.dtype());
  ASSERT_EQ(t.shape(), shape) << shape_str(t.shape());
  std::vector<int64_t> got;
  for (int64_t i = 0; i < t.numel(); ++i)
    got.push_back(t.dtype() == DType::i64 ? t.data<int64_t>()[i] : static_cast<int64_t>(t.get(i)));
  EXPECT_EQ(got, want);
}

void expect_values(const Tensor& t, DType dt, const Shape& shape, const std::vector<double>& want,
                   double tol = 1e-6) {
  ASSERT_EQ(t.dtype(), dt) << dtype_name(t.dtype());
  ASSERT_EQ(t.shape(), shape) << shape_str(t.shape());
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(t.get(static_cast<int64_t>(i)), want[i], tol) << "element " << i;
}

Attributes attr(const std::string& k, AttrValue v) {
  Attributes a;
  a.set(k, std::move(v));
  return a;
}

template <class F>
void expect_node_error(F&& f, const std::string& field = "", const std::string& node = "node") {
  try {
    f();
    ADD_FAILURE() << "expected anvil::Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), node) << e.what();
    if (!field.empty()) EXPECT_EQ(e.field(), field) << e.what();
  }
}

}  // namespace

// --- Identity, Dropout, Cast
// ----------------------------------------------------------------------

TEST(RefShape, IdentityAndDropout) {
  Tensor x = I64({2, 2}, {1, -2, 3, -4});
  expect_ints(run1("Identity", {x}), DType::i64, {2, 2}, {1, -2, 3, -4});
  auto outs = run_op("Dropout", {F({3}, {1, 2, 3}), Tensor::scalar<float>(0.5f)}, {}, 2);
  expect_values(outs[0], DType::f32, {3}, {1, 2, 3});
  expect_ints(outs[1], DType::boolean, {3}, {1, 1, 1});
  Tensor train(DType::boolean, {});
  expect_values(run1("Dropout", {F({2}, {4, 5}), Tensor::scalar<float>(0.3f), train}), DType::f32,
                {2}, {4, 5});
  train.set(0, 1);
  expect_node_error(
      [&] {
        run1("Dropout", {F({2}, {4, 5}), Tensor::scalar<float>(0.3f), train});
      },
      "training_mode");
}

TEST(RefShape, CastBetweenDtypes) {
  Tensor x = F({5}, {-1.7f, 2.9f, 0.0f, 300.0f, -0.2f});
  expect_ints(run1("Cast", {x}, attr("to", int64_t{6})), DType::i32, {5}, {-1, 2, 0, 300, 0});
  expect_ints(run1("Cast", {x}, attr("to", int64_t{9})), DType::boolean, {5}, {1, 1, 0, 1, 1});
  // int -> narrower int wraps (numpy astype): 300 -> 44, -129 -> 127.
  expect_ints(run1("Cast", {I64({2}, {300, -129})}, attr("to", int64_t{3})), DType::i8, {2},
              {44, 127});
  expect_values(run1("Cast", {I64({2}, {-3, 7})}, attr("to", int64_t{1})), DType::f32, {2},
                {-3, 7});
  Tensor h = run1("Cast", {F({2}, {0.1f, 65504.0f})}, attr("to", int64_t{10}));
  ASSERT_EQ(h.dtype(), DType::f16);
  EXPECT_EQ(static_cast<const uint16_t*>(h.raw())[0], 0x2e66);  // 0.1 in half
  EXPECT_EQ(static_cast<const uint16_t*>(h.raw())[1], 0x7bff);  // 65504 in half
  expect_values(run1("Cast", {h}, attr("to", int64_t{11})), DType::f64, {2},
                {0.0999755859375, 65504}, 0);
  Tensor bf = run1("Cast", {F({1}, {1.0f})}, attr("to", int64_t{16}));
  ASSERT_EQ(bf.dtype(), DType::bf16);
  EXPECT_EQ(static_cast<const uint16_t*>(bf.raw())[0], 0x3f80);
  const int64_t big = (int64_t{1} << 60) + 7;
  expect_ints(run1("Cast", {I64({1}, {big})}, attr("to", int64_t{7})), DType::i64, {1}, {big});
  expect_ints(run1("Cast", {I32({2}, {0, 5})}, attr("to", int64_t{9})), DType::boolean, {2},
              {0, 1});
  expect_node_error([&] { run1("Cast", {x}, attr("to", int64_t{8})); }, "to");  // string
  // CastLike takes the dtype of its second input.
  expect_ints(run1("CastLike", {x, I64({0}, {})}), DType::i64, {5}, {-1, 2, 0, 300, 0});
  expect_values(run1("CastLike", {I32({2}, {3, -4}), Tensor(DType::f64, {1})}), DType::f64, {2},
                {3, -4});
}

// --- Concat, Split -------------------------------------------------------------------------------

TEST(RefShape, ConcatAxes) {
  Tensor a = I64({2, 1}, {1, 2}), b = I64({2, 2}, {3, 4, 5, 6});
  expect_ints(run1("Concat", {a, b}, attr("axis", int64_t{1}), 2), DType::i64, {2, 3},
              {1, 3, 4, 2, 5, 6});
  expect_ints(run1("Concat", {a, b}, attr("axis", int64_t{-1}), 1), DType::i64, {2, 3},
              {1, 3, 4, 2, 5, 6});
  Tensor c = F({1, 2}, {7, 8}), d = F({2, 2}, {1, 2, 3, 4});
  expect_values(run1("Concat", {d, c}, attr("axis", int64_t{0}), 2), DType::f32, {3, 2},
                {1, 2, 3, 4, 7, 8});
  // An empty input contributes nothing.
  expect_values(run1("Concat", {Tensor(DType::f32, {0, 2}), c}, attr("axis", int64_t{0}), 2),
                DType::f32, {1, 2}, {7, 8});
  expect_node_error([&] { run1("Concat", {a, b}, attr("axis", int64_t{2}), 2); }, "axis");
  expect_node_error([&] { run1("Concat", {a, b}, attr("axis", int64_t{0}), 2); }, "inputs");
}

TEST(RefShape, SplitEqualExplicitAndUneven) {
  Tensor x = Iota({2, 6});
  auto o = run_op("Split", {x}, attr("axis", int64_t{1}), 3);
  expect_values(o[0], DType::f32, {2, 2}, {0, 1, 6, 7});
  expect_values(o[2], DType::f32, {2, 2}, {4, 5, 10, 11});
  o = run_op("Split", {x, I64({2}, {1, 5})}, attr("axis", int64_t{-1}), 2);
  expect_values(o[0], DType::f32, {2, 1}, {0, 6});
  expect_values(o[1], DType::f32, {2, 5}, {1, 2, 3, 4, 5, 7, 8, 9, 10, 11});
  o = run_op("Split", {x}, attr("axis", int64_t{0}), 2);
  expect_values(o[1], DType::f32, {1, 6}, {6, 7, 8, 9, 10, 11});
  // num_outputs (opset 18): 6 into 4 -> 2, 2, 2, 0.
  Attributes a;
  a.set("axis", int64_t{1});
  a.set("num_outputs", int64_t{4});
  o = run_op("Split", {x}, a, 4);
  expect_values(o[0], DType::f32, {2, 2}, {0, 1, 6, 7});
  expect_values(o[3], DType::f32, {2, 0}, {});
  expect_node_error(
      [&] {
        run_op("Split", {x, I64({2}, {2, 2})}, attr("axis", int64_t{1}), 2);
      },
      "split");
  expect_node_error([&] { run_op("Split", {x}, attr("axis", int64_t{1}), 4); }, "input");
}

// --- Slice -------------------------------------------------------------------------------------

TEST(RefShape, SliceBasicNegativeStepsAndClamping) {
  Tensor x = Iota({4, 5});
  expect_values(run1("Slice", {x, I64({2}, {1, 0}), I64({2}, {3, 5})}), DType::f32, {2, 5},
                {5, 6, 7, 8, 9, 10, 11, 12, 13, 14});
  // Reverse each row: start -1, end INT64_MIN (clamped to -1), step -1.
  expect_values(run1("Slice", {x, I64({1}, {-1}), I64({1}, {kMin}), I64({1}, {1}), I64({1}, {-1})}),
                DType::f32, {4, 5},
                {4, 3, 2, 1, 0, 9, 8, 7, 6, 5, 14, 13, 12, 11, 10, 19, 18, 17, 16, 15});
  // Start 10 clamps to 3 for a negative step; end -100 clamps to -1: rows 3, 1.
  expect_values(run1("Slice", {x, I64({1}, {10}), I64({1}, {-100}), I64({1}, {0}), I64({1}, {-2})}),
                DType::f32, {2, 5}, {15, 16, 17, 18, 19, 5, 6, 7, 8, 9});
  // End beyond the dim (INT64_MAX) clamps; negative axis; step 2.
  expect_values(run1("Slice", {x, I64({1}, {0}), I64({1}, {kMax}), I64({1}, {-1}), I64({1}, {2})}),
                DType::f32, {4, 3}, {0, 2, 4, 5, 7, 9, 10, 12, 14, 15, 17, 19});
  // Negative start and end: columns -3..-1 -> 2, 3.
  expect_values(run1("Slice", {x, I64({1}, {-3}), I64({1}, {-1}), I64({1}, {1})}), DType::f32,
                {4, 2}, {2, 3, 7, 8, 12, 13, 17, 18});
  // Empty result: start >= end.
  expect_values(run1("Slice", {x, I64({1}, {3}), I64({1}, {1})}), DType::f32, {0, 5}, {});
  // Negative step from the end down to (excluding) index 0: start -1, end 0, step -2.
  expect_values(run1("Slice", {x, I64({1}, {-1}), I64({1}, {0}), I64({1}, {1}), I64({1}, {-2})}),
                DType::f32, {4, 2}, {4, 2, 9, 7, 14, 12, 19, 17});
  // i32 starts/ends, integer data.
  expect_ints(run1("Slice", {I64({5}, {10, 11, 12, 13, 14}), I32({1}, {1}), I32({1}, {-1})}),
              DType::i64, {3}, {11, 12, 13});
  expect_node_error(
      [&] {
        run1("Slice", {x, I64({1}, {0}), I64({1}, {2}), I64({1}, {0}), I64({1}, {0})});
      },
      "steps");
  expect_node_error(
      [&] {
        run1("Slice", {x, I64({1}, {0}), I64({1}, {2}), I64({1}, {2})});
      },
      "axes");
}

// --- Gather ------------------------------------------------------------------------------------

TEST(RefShape, GatherAxesAndNegativeIndices) {
  Tensor x = Iota({3, 4});
  expect_values(run1("Gather", {x, I64({2}, {2, -3})}), DType::f32, {2, 4},
                {8, 9, 10, 11, 0, 1, 2, 3});
  expect_values(run1("Gather", {x, I32({2, 2}, {0, 3, -1, 1})}, attr("axis", int64_t{-1})),
                DType::f32, {3, 2, 2}, {0, 3, 3, 1, 4, 7, 7, 5, 8, 11, 11, 9});
  // A scalar index drops the axis.
  expect_values(run1("Gather", {x, Tensor::scalar<int64_t>(1)}, attr("axis", int64_t{1})),
                DType::f32, {3}, {1, 5, 9});
  // Runtime indices out of range: an error naming the node.
  expect_node_error([&] { run1("Gather", {x, I64({1}, {3})}, {}, 2); }, "indices");
  expect_node_error([&] { run1("Gather", {x, I64({1}, {0})}, attr("axis", int64_t{2})); }, "axis");
}

TEST(RefShape, GatherElements) {
  expect_values(run1("GatherElements", {F({2, 2}, {1, 2, 3, 4}), I64({2, 2}, {0, 0, 1, 0})},
                     attr("axis", int64_t{1})),
                DType::f32, {2, 2}, {1, 1, 4, 3});
  expect_values(run1("GatherElements",
                     {F({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9}), I32({2, 3}, {1, 2, 0, 2, 0, 0})}),
                DType::f32, {2, 3}, {4, 8, 3, 7, 2, 3});
  expect_values(run1("GatherElements", {F({3}, {1, 2, 3}), I64({2}, {-1, 0})}), DType::f32, {2},
                {3, 1});
  expect_node_error(
      [&] {
        run1("GatherElements", {F({2}, {1, 2}), I64({1}, {2})}, {}, 2);
      },
      "indices");
}

// --- Reshape family ------------------------------------------------------------------------------

TEST(RefShape, ReshapeZeroAndMinusOne) {
  Tensor x = Iota({2, 3, 4});
  Tensor y = run1("Reshape", {x, I64({3}, {0, -1, 2})});
  EXPECT_EQ(y.shape(), (Shape{2, 6, 2}));
  expect_values(y, DType::f32, {2, 6, 2}, [] {
    std::vector<double> v(24);
    std::iota(v.begin(), v.end(), 0.0);
    return v;
  }());
  EXPECT_EQ(run1("Reshape", {x, I64({2}, {-1, 4})}).shape(), (Shape{6, 4}));
  EXPECT_EQ(run1("Reshape", {x, I64({1}, {-1})}).shape(), (Shape{24}));
  EXPECT_EQ(run1("Reshape", {x, I64({4}, {0, 0, 2, 2})}).shape(), (Shape{2, 3, 2, 2}));
  // allowzero=1: 0 is a real zero.
  EXPECT_EQ(
      run1("Reshape", {Tensor(DType::f32, {0, 3}), I64({2}, {3, 0})}, attr("allowzero", int64_t{1}))
          .shape(),
      (Shape{3, 0}));
  expect_node_error([&] { run1("Reshape", {x, I64({2}, {5, -1})}); }, "shape");
  expect_node_error([&] { run1("Reshape", {x, I64({2}, {5, 5})}); }, "shape");
  expect_node_error([&] { run1("Reshape", {x, I64({2}, {-1, -1})}); }, "shape");
  expect_node_error([&] { run1("Reshape", {x, I64({4}, {0, 0, 0, 0})}); }, "shape");
}

TEST(RefShape, FlattenSqueezeUnsqueeze) {
  Tensor x = Iota({2, 3, 4});
  EXPECT_EQ(run1("Flatten", {x}).shape(), (Shape{2, 12}));
  EXPECT_EQ(run1("Flatten", {x}, attr("axis", int64_t{0})).shape(), (Shape{1, 24}));
  EXPECT_EQ(run1("Flatten", {x}, attr("axis", int64_t{-1})).shape(), (Shape{6, 4}));
  EXPECT_EQ(run1("Flatten", {x}, attr("axis", int64_t{3})).shape(), (Shape{24, 1}));
  expect_node_error([&] { run1("Flatten", {x}, attr("axis", int64_t{4})); }, "axis");

  Tensor s = Iota({1, 3, 1, 2});
  EXPECT_EQ(run1("Squeeze", {s}).shape(), (Shape{3, 2}));
  EXPECT_EQ(run1("Squeeze", {s, I64({1}, {-2})}).shape(), (Shape{1, 3, 2}));
  expect_values(run1("Squeeze", {s, I64({2}, {0, 2})}), DType::f32, {3, 2}, {0, 1, 2, 3, 4, 5});
  expect_node_error([&] { run1("Squeeze", {s, I64({1}, {1})}); }, "axes");
  expect_node_error([&] { run1("Squeeze", {s, I64({1}, {4})}); }, "axes");

  Tensor u = Iota({3, 2});
  EXPECT_EQ(run1("Unsqueeze", {u, I64({2}, {0, -1})}).shape(), (Shape{1, 3, 2, 1}));
  EXPECT_EQ(run1("Unsqueeze", {u, I64({2}, {1, 3})}).shape(), (Shape{3, 1, 2, 1}));
  EXPECT_EQ(run1("Unsqueeze", {Tensor::scalar<float>(1), I64({1}, {0})}).shape(), (Shape{1}));
  expect_node_error([&] { run1("Unsqueeze", {u, I64({2}, {0, 0})}); }, "axes");
  expect_node_error([&] { run1("Unsqueeze", {u, I64({1}, {3})}); }, "axes");
}

TEST(RefShape, TransposeExpandTile) {
  Tensor x = Iota({2, 3});
  expect_values(run1("Transpose", {x}), DType::f32, {3, 2}, {0, 3, 1, 4, 2, 5});
  Tensor y = Iota({2, 3, 4});
  Tensor t = run1("Transpose", {y}, attr("perm", std::vector<int64_t>{1, 2, 0}));
  ASSERT_EQ(t.shape(), (Shape{3, 4, 2}));
  // t[i][j][k] = y[k][i][j] = k*12 + i*4 + j
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 2; ++k) EXPECT_EQ(t.get((i * 4 + j) * 2 + k), k * 12 + i * 4 + j);
  expect_node_error(
      [&] {
        run1("Transpose", {x}, attr("perm", std::vector<int64_t>{0, 0}));
      },
      "perm");

  // Expand (3, 1) with shape [2, 1, 4] -> (2, 3, 4); with [1] -> (3, 1) unchanged.
  Tensor e = run1("Expand", {F({3, 1}, {1, 2, 3}), I64({3}, {2, 1, 4})});
  ASSERT_EQ(e.shape(), (Shape{2, 3, 4}));
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) EXPECT_EQ(e.get((a * 3 + b) * 4 + c), b + 1);
  expect_values(run1("Expand", {F({3, 1}, {1, 2, 3}), I64({1}, {1})}), DType::f32, {3, 1},
                {1, 2, 3});
  expect_node_error([&] { run1("Expand", {F({3}, {1, 2, 3}), I64({1}, {2})}); }, "shape");

  Tensor m = I64({2, 2}, {1, 2, 3, 4});
  expect_ints(run1("Tile", {m, I64({2}, {1, 2})}), DType::i64, {2, 4}, {1, 2, 1, 2, 3, 4, 3, 4});
  expect_ints(run1("Tile", {m, I64({2}, {2, 1})}), DType::i64, {4, 2}, {1, 2, 3, 4, 1, 2, 3, 4});
  expect_node_error([&] { run1("Tile", {m, I64({1}, {2})}); }, "repeats");
}

// --- Pad ---------------------------------------------------------------------------------------

TEST(RefShape, PadConstantReflectEdgeAndCrop) {
  Tensor x = F({2, 2}, {1, 2, 3, 4});
  // pads [x1_begin, x2_begin, x1_end, x2_end] = [0, 1, 1, 0].
  expect_values(run1("Pad", {x, I64({4}, {0, 1, 1, 0})}), DType::f32, {3, 3},
                {0, 1, 2, 0, 3, 4, 0, 0, 0});
  expect_values(run1("Pad", {x, I64({4}, {0, 1, 1, 0}), Tensor::scalar<float>(9)}), DType::f32,
                {3, 3}, {9, 1, 2, 9, 3, 4, 9, 9, 9});
  // numpy.pad([[1,2,3],[4,5,6]], ((1,1),(2,2)), 'reflect').
  Tensor y = F({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(
      run1("Pad", {y, I64({4}, {1, 2, 1, 2})}, attr("mode", std::string("reflect"))), DType::f32,
      {4, 7}, {6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1});
  // numpy.pad(..., ((0,1),(2,1)), 'edge').
  expect_values(run1("Pad", {y, I64({4}, {0, 2, 1, 1})}, attr("mode", std::string("edge"))),
                DType::f32, {3, 6}, {1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6, 4, 4, 4, 5, 6, 6});
  // Reflect further than the dim: numpy.pad([1,2,3], (5,4), 'reflect').
  expect_values(
      run1("Pad", {F({3}, {1, 2, 3}), I64({2}, {5, 4})}, attr("mode", std::string("reflect"))),
      DType::f32, {12}, {2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3});
  // Negative pads crop: drop the first column, add a zero column at the end.
  expect_values(run1("Pad", {y, I64({4}, {0, -1, 0, 1})}), DType::f32, {2, 3}, {2, 3, 0, 5, 6, 0});
  // Integer data with an integer constant.
  expect_ints(run1("Pad", {I64({2}, {5, 6}), I64({2}, {1, 1}), Tensor::scalar<int64_t>(-7)}),
              DType::i64, {4}, {-7, 5, 6, -7});
  // Axes input (opset 18): pad only the last axis.
  expect_values(run1("Pad", {y, I64({2}, {1, 0}), Tensor(), I64({1}, {-1})}), DType::f32, {2, 4},
                {0, 1, 2, 3, 0, 4, 5, 6});
  expect_node_error([&] { run1("Pad", {y, I64({3}, {1, 1, 1})}); }, "pads");
  expect_node_error([&] { run1("Pad", {y, I64({4}, {0, -2, 0, -2})}); }, "pads");
  expect_node_error(
      [&] {
        run1("Pad", {y, I64({4}, {0, 0, 0, 1})}, attr("mode", std::string("bogus")));
      },
      "mode");
}

// --- Shape, Size, ConstantOfShape, Range ---------------------------------------------------------

TEST(RefShape, ShapeSizeConstantOfShapeRange) {
  Tensor x = Iota({2, 3, 4, 5});
  expect_ints(run1("Shape", {x}), DType::i64, {4}, {2, 3, 4, 5});
  Attributes a;
  a.set("start", int64_t{1});
  a.set("end", int64_t{-1});
  expect_ints(run1("Shape", {x}, a), DType::i64, {2}, {3, 4});
  expect_ints(run1("Shape", {x}, attr("start", int64_t{-10})), DType::i64, {4}, {2, 3, 4, 5});
  expect_ints(run1("Shape", {x}, attr("start", int64_t{7})), DType::i64, {0}, {});
  expect_ints(run1("Size", {x}), DType::i64, {}, {120});

  expect_values(run1("ConstantOfShape", {I64({2}, {2, 3})}, {}, 0), DType::f32, {2, 3},
                {0, 0, 0, 0, 0, 0});
  expect_ints(run1("ConstantOfShape", {I64({1}, {3})}, attr("value", I64({1}, {-5})), 0),
              DType::i64, {3}, {-5, -5, -5});
  expect_values(run1("ConstantOfShape", {I64({0}, {})}, attr("value", F({1}, {2.5f})), 0),
                DType::f32, {}, {2.5});

  expect_ints(
      run1("Range",
           {Tensor::scalar<int64_t>(1), Tensor::scalar<int64_t>(10), Tensor::scalar<int64_t>(3)},
           {}, 0),
      DType::i64, {3}, {1, 4, 7});
  expect_ints(
      run1("Range",
           {Tensor::scalar<int32_t>(10), Tensor::scalar<int32_t>(4), Tensor::scalar<int32_t>(-2)},
           {}, 0),
      DType::i32, {3}, {10, 8, 6});
  expect_values(
      run1("Range",
           {Tensor::scalar<float>(0.5f), Tensor::scalar<float>(2.0f), Tensor::scalar<float>(0.5f)},
           {}, 0),
      DType::f32, {3}, {0.5, 1.0, 1.5});
  expect_ints(
      run1("Range",
           {Tensor::scalar<int64_t>(5), Tensor::scalar<int64_t>(1), Tensor::scalar<int64_t>(1)}, {},
           0),
      DType::i64, {0}, {});
  expect_node_error(
      [] {
        run1("Range",
             {Tensor::scalar<int64_t>(0), Tensor::scalar<int64_t>(1), Tensor::scalar<int64_t>(0)},
             {}, 0);
      },
      "delta");
}

// --- DepthToSpace / SpaceToDepth
// ------------------------------------------------------------------

TEST(RefShape, DepthToSpaceModesAndSpaceToDepth) {
  Tensor x = Iota({1, 8, 2, 3});
  // numpy: x.reshape(N, b, b, C/4, H, W).transpose(0, 3, 4, 1, 5, 2).reshape(N, C/4, 2H, 2W)
  std::vector<double> dcr = {0,  12, 1,  13, 2,  14, 24, 36, 25, 37, 26, 38, 3,  15, 4,  16,
                             5,  17, 27, 39, 28, 40, 29, 41, 6,  18, 7,  19, 8,  20, 30, 42,
                             31, 43, 32, 44, 9,  21, 10, 22, 11, 23, 33, 45, 34, 46, 35, 47};
  // numpy: x.reshape(N, C/4, b, b, H, W).transpose(0, 1, 4, 2, 5, 3).reshape(...)
  std::vector<double> crd = {0,  6,  1,  7,  2,  8,  12, 18, 13, 19, 14, 20, 3,  9,  4,  10,
                             5,  11, 15, 21, 16, 22, 17, 23, 24, 30, 25, 31, 26, 32, 36, 42,
                             37, 43, 38, 44, 27, 33, 28, 34, 29, 35, 39, 45, 40, 46, 41, 47};
  expect_values(run1("DepthToSpace", {x}, attr("blocksize", int64_t{2})), DType::f32, {1, 2, 4, 6},
                dcr);
  Attributes a;
  a.set("blocksize", int64_t{2});
  a.set("mode", std::string("CRD"));
  expect_values(run1("DepthToSpace", {x}, a), DType::f32, {1, 2, 4, 6}, crd);
  // numpy: y.reshape(N, C, H/b, b, W/b, b).transpose(0, 3, 5, 1, 2, 4).reshape(N, 4C, H/b, W/b)
  expect_values(run1("SpaceToDepth", {Iota({1, 2, 4, 4})}, attr("blocksize", int64_t{2})),
                DType::f32, {1, 8, 2, 2},
                {0, 2, 8,  10, 16, 18, 24, 26, 1, 3, 9,  11, 17, 19, 25, 27,
                 4, 6, 12, 14, 20, 22, 28, 30, 5, 7, 13, 15, 21, 23, 29, 31});
  // Round trip: SpaceToDepth(DepthToSpace_DCR(x)) == x.
  Tensor d = run1("DepthToSpace", {x}, attr("blocksize", int64_t{2}));
  Tensor back = run1("SpaceToDepth", {d}, attr("blocksize", int64_t{2}));
  ASSERT_EQ(back.shape(), x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(back.get(i), x.get(i));
  expect_node_error(
      [&] {
        run1("DepthToSpace", {Iota({1, 6, 2, 2})}, attr("blocksize", int64_t{2}));
      },
      "blocksize");
  expect_node_error(
      [&] {
        run1("SpaceToDepth", {Iota({1, 1, 3, 4})}, attr("blocksize", int64_t{2}));
      },
      "blocksize");
}

// --- Optional ops
// ----------------------------------------------------------------------------------

TEST(RefShape, NonZeroCumSumOneHotScatterND) {
  expect_ints(run1("NonZero", {F({3, 2}, {1, 0, 0, 3, 2, 0})}, {}, 0), DType::i64, {2, 3},
              {0, 1, 2, 0, 1, 0});
  expect_node_error([] { run1("NonZero", {F({2}, {1, 0})}, {}, 1); }, "X");

  Tensor x = F({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_values(run1("CumSum", {x, Tensor::scalar<int64_t>(1)}), DType::f32, {2, 3},
                {1, 3, 6, 4, 9, 15});
  expect_values(run1("CumSum", {x, Tensor::scalar<int64_t>(0)}), DType::f32, {2, 3},
                {1, 2, 3, 5, 7, 9});
  Attributes ex;
  ex.set("exclusive", int64_t{1});
  ex.set("reverse", int64_t{1});
  expect_values(run1("CumSum", {x, Tensor::scalar<int32_t>(-1)}, ex), DType::f32, {2, 3},
                {5, 3, 0, 11, 6, 0});
  expect_ints(run1("CumSum", {I64({4}, {1, 2, 3, 4}), Tensor::scalar<int64_t>(0)}), DType::i64, {4},
              {1, 3, 6, 10});

  // OneHot: indices [0, 2, -1, 5], depth 3, values [off=0, on=1]: -1 -> 2, 5 -> none.
  expect_values(
      run1("OneHot", {I64({4}, {0, 2, -1, 5}), Tensor::scalar<int64_t>(3), F({2}, {0, 1})}),
      DType::f32, {4, 3}, {1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0});
  expect_ints(run1("OneHot", {I64({2}, {1, 0}), Tensor::scalar<float>(2), I64({2}, {-1, 7})},
                   attr("axis", int64_t{0})),
              DType::i64, {2, 2}, {-1, 7, 7, -1});

  // ScatterND (ONNX example 1): data [1..8], indices [[4],[3],[1],[7]], updates [9,10,11,12].
  expect_values(run1("ScatterND", {F({8}, {1, 2, 3, 4, 5, 6, 7, 8}), I64({4, 1}, {4, 3, 1, 7}),
                                   F({4}, {9, 10, 11, 12})}),
                DType::f32, {8}, {1, 11, 3, 10, 9, 6, 7, 12});
  expect_values(run1("ScatterND", {F({2, 2}, {1, 2, 3, 4}), I64({1, 1}, {-1}), F({1, 2}, {10, 20})},
                     attr("reduction", std::string("add"))),
                DType::f32, {2, 2}, {1, 2, 13, 24});
  expect_node_error(
      [] {
        run1("ScatterND", {F({2}, {1, 2}), I64({1, 1}, {2}), F({1}, {5})}, {}, 2);
      },
      "indices");
}

// --- Shape arithmetic chains, folded
// -----------------------------------------------------------------

TEST(RefShape, ShapeGatherConcatReshapeChainFolds) {
  // x (2, 3, 4) -> Shape -> Gather([0]) -> Concat with [-1] -> Reshape(x, .) = (2, 12).
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3, 4});
  g.add_node("Shape", "shape", {x});
  int shape_out = g.find_value("shape");
  g.add_node("Gather", "batch", {shape_out, g.add_constant("idx0", I64({1}, {0}))},
             attr("axis", int64_t{0}));
  g.add_node("Concat", "target", {g.find_value("batch"), g.add_constant("minus1", I64({1}, {-1}))},
             attr("axis", int64_t{0}));
  g.add_node("Reshape", "reshape", {x, g.find_value("target")});
  g.outputs.push_back(g.find_value("reshape"));

  Graph folded = g;
  passes::fold_constants(folded, {});
  const Value& target = folded.values[static_cast<size_t>(folded.find_value("target"))];
  ASSERT_TRUE(target.is_constant());
  expect_ints(target.constant, DType::i64, {2}, {2, -1});
  const Value& out = folded.values[static_cast<size_t>(folded.find_value("reshape"))];
  EXPECT_EQ(out.shape, (Shape{2, 12}));
  EXPECT_FALSE(out.is_constant());

  SessionOptions so;
  so.backend = "reference";
  Session s(std::move(g), so);
  Tensor in = Iota({2, 3, 4});
  auto r = s.run({{"x", in}});
  Tensor y = r.at("reshape");
  ASSERT_EQ(y.shape(), (Shape{2, 12}));
  for (int64_t i = 0; i < 24; ++i) EXPECT_EQ(y.get(i), static_cast<double>(i));
}

TEST(RefShape, ShapeArithmeticChainWithScalarsFolds) {
  // target = Concat([-1], Unsqueeze(Gather(s, 1) * Gather(s, 2), [0])) with s = Shape(x)
  // x (2, 3, 4): [-1, 12] -> Reshape -> (2, 12); Cast/Div/Sub on the way keep i64 exact.
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3, 4});
  g.add_node("Shape", "s", {x});
  int s = g.find_value("s");
  g.add_node("Gather", "d1", {s, g.add_constant("one", Tensor::scalar<int64_t>(1))});
  g.add_node("Gather", "d2", {s, g.add_constant("two", Tensor::scalar<int64_t>(2))});
  g.add_node("Mul", "prod", {g.find_value("d1"), g.find_value("d2")});
  // (prod * 2) / 2 - 0: still 12.
  g.add_node("Mul", "twice",
             {g.find_value("prod"), g.add_constant("k2", Tensor::scalar<int64_t>(2))});
  g.add_node("Div", "half", {g.find_value("twice"), g.find_value("k2")});
  g.add_node("Sub", "same",
             {g.find_value("half"), g.add_constant("k0", Tensor::scalar<int64_t>(0))});
  g.add_node("Unsqueeze", "u", {g.find_value("same"), g.add_constant("ax0", I64({1}, {0}))});
  g.add_node("Concat", "target", {g.add_constant("m1", I64({1}, {-1})), g.find_value("u")},
             attr("axis", int64_t{0}));
  g.add_node("Reshape", "y", {x, g.find_value("target")});
  g.outputs.push_back(g.find_value("y"));

  Graph folded = g;
  passes::fold_constants(folded, {});
  const Value& target = folded.values[static_cast<size_t>(folded.find_value("target"))];
  ASSERT_TRUE(target.is_constant());
  expect_ints(target.constant, DType::i64, {2}, {-1, 12});
  const Value& d1 = folded.values[static_cast<size_t>(folded.find_value("d1"))];
  EXPECT_EQ(d1.shape, Shape{});  // scalar index drops the axis

  SessionOptions so;
  so.backend = "reference";
  Session sess(std::move(g), so);
  auto r = sess.run({{"x", Iota({2, 3, 4})}});
  EXPECT_EQ(r.at("y").shape(), (Shape{2, 12}));
  EXPECT_EQ(r.at("y").get(13), 13.0);
}

TEST(RefShape, ChainErrorsNameTheNode) {
  // Reshape to an impossible size computed by a shape chain: the error names the Reshape node.
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3, 4});
  g.add_node("Shape", "s", {x});
  g.add_node("Concat", "target", {g.find_value("s"), g.add_constant("c5", I64({1}, {5}))},
             attr("axis", int64_t{0}));
  g.add_node("Reshape", "bad_reshape", {x, g.find_value("target")});
  g.outputs.push_back(g.find_value("bad_reshape"));
  expect_node_error([&] { Session s(g); }, "shape", "bad_reshape");
  // Gather with an axis out of range inside the chain.
  Graph h;
  int y = h.add_input("y", DType::f32, {2, 3});
  h.add_node("Shape", "s", {y});
  h.add_node("Gather", "bad_gather", {h.find_value("s"), h.add_constant("i", I64({1}, {0}))},
             attr("axis", int64_t{1}));
  h.outputs.push_back(h.find_value("bad_gather"));
  expect_node_error([&] { Session s(h); }, "axis", "bad_gather");
  // Shape-chain Gather with an index out of range (folded at compile time).
  Graph k;
  int z = k.add_input("z", DType::f32, {2, 3});
  k.add_node("Shape", "s", {z});
  k.add_node("Gather", "bad_index", {k.find_value("s"), k.add_constant("i", I64({1}, {2}))});
  k.outputs.push_back(k.find_value("bad_index"));
  expect_node_error([&] { Session s(k); }, "indices", "bad_index");
}

// --- Hostile arguments ---------------------------------------------------------------------------

namespace {

// Runs op on `data` (fed at run time; `runtime` = 2 also feeds the second input) with
// constant arguments; returns true when it ran, false on anvil::Error. Anything else
// (another exception type, a crash) fails the test.
bool try_op(const std::string& op, const std::vector<Tensor>& ins, Attributes attrs,
            int num_outputs = 1, int runtime = 1) {
  try {
    run_op(op, ins, std::move(attrs), num_outputs, runtime);
    return true;
  } catch (const Error& e) {
    EXPECT_FALSE(std::string(e.what()).empty());
    return false;
  }
}

}  // namespace

TEST(RefShapeFuzz, HostileArgumentsGiveErrorsNotCrashes) {
  uint32_t state = 12345;
  auto rnd = [&](int lo, int hi) {  // inclusive
    state = state * 1664525u + 1013904223u;
    return lo + static_cast<int>((state >> 8) % static_cast<uint32_t>(hi - lo + 1));
  };
  auto rnd_shape = [&](int max_rank) {
    Shape s;
    int r = rnd(0, max_rank);
    for (int i = 0; i < r; ++i) s.push_back(rnd(0, 4));
    return s;
  };
  auto rnd_ints = [&](int n, int lo, int hi) {
    std::vector<int64_t> v;
    for (int i = 0; i < n; ++i) {
      int pick = rnd(0, 20);
      v.push_back(pick == 0 ? kMax : pick == 1 ? kMin : rnd(lo, hi));
    }
    return I64({static_cast<int64_t>(v.size())}, v);
  };
  int ran = 0, failed = 0;
  const char* env = std::getenv("ANVIL_FUZZ_ITERS");  // longer runs by hand (e.g. under ASan)
  const int iters = env ? std::atoi(env) : 600;
  const DType dtypes[] = {DType::f32, DType::f16, DType::i32,
                          DType::i64, DType::u8,  DType::boolean};
  for (int iter = 0; iter < iters; ++iter) {
    Tensor x = Iota(rnd_shape(4));
    if (iter % 3 == 2) x = x.to(dtypes[rnd(0, 5)]);
    const int r = x.rank();
    bool ok = false;
    switch (iter % 20) {
      case 0:
        ok = try_op("Reshape", {x, rnd_ints(rnd(0, 4), -2, 6)}, {});
        break;
      case 1: {
        int n = rnd(0, r + 1);
        ok = try_op("Slice",
                    {x, rnd_ints(n, -6, 6), rnd_ints(n, -6, 6), rnd_ints(rnd(n, n + 1), -5, 5),
                     rnd_ints(n, -3, 3)},
                    {});
        break;
      }
      case 2: {
        const char* modes[] = {"constant", "reflect", "edge", "wrap"};
        ok = try_op("Pad", {x, rnd_ints(rnd(2 * r - 1, 2 * r), -4, 4)},
                    attr("mode", std::string(modes[rnd(0, 3)])));
        break;
      }
      case 3:
        ok = try_op("Gather", {x, rnd_ints(rnd(0, 3), -6, 6)}, attr("axis", int64_t{rnd(-5, 5)}));
        break;
      case 4:
        ok = try_op("GatherElements", {x, Iota(rnd_shape(4)).to(DType::i64)},
                    attr("axis", int64_t{rnd(-4, 4)}));
        break;
      case 5:
        ok = try_op("Tile", {x, rnd_ints(rnd(r - 1, r), -1, 3)}, {});
        break;
      case 6:
        ok = try_op("Expand", {x, rnd_ints(rnd(0, 5), -1, 4)}, {});
        break;
      case 7:
        ok = try_op("Squeeze", {x, rnd_ints(rnd(0, 2), -5, 5)}, {});
        break;
      case 8:
        ok = try_op("Unsqueeze", {x, rnd_ints(rnd(0, 3), -6, 6)}, {});
        break;
      case 9:
        ok = try_op("Split", {x, rnd_ints(2, -1, 4)}, attr("axis", int64_t{rnd(-4, 4)}), 2);
        break;
      case 10:
        ok = try_op("Concat", {x, Iota(rnd_shape(4))}, attr("axis", int64_t{rnd(-4, 4)}), 1, 2);
        break;
      case 11: {
        std::vector<int64_t> perm;
        for (int i = 0; i < rnd(r - 1, r + 1); ++i) perm.push_back(rnd(-1, r));
        ok = try_op("Transpose", {x}, attr("perm", perm));
        break;
      }
      case 12:
        ok = try_op(rnd(0, 1) ? "DepthToSpace" : "SpaceToDepth", {x},
                    attr("blocksize", int64_t{rnd(-1, 3)}));
        break;
      case 13:
        ok = try_op("ScatterND", {x, Iota(rnd_shape(3)).to(DType::i64), Iota(rnd_shape(3))}, {}, 1,
                    3);
        break;
      case 14:
        ok = try_op("OneHot",
                    {x.to(DType::i64), Tensor::scalar<int64_t>(rnd(-1, 4)), F({2}, {0, 1})},
                    attr("axis", int64_t{rnd(-5, 5)}));
        break;
      case 15:
        ok = try_op(rnd(0, 1) ? "Add" : "Where",
                    rnd(0, 1) ? std::vector<Tensor>{x, Iota(rnd_shape(3))}
                              : std::vector<Tensor>{x.to(DType::boolean), x, Iota(rnd_shape(2))},
                    {}, 1, 2);
        break;
      case 16:
        ok = try_op("Flatten", {x}, attr("axis", int64_t{rnd(-5, 5)}));
        break;
      case 17:
        ok = try_op("CumSum", {x, Tensor::scalar<int64_t>(rnd(-5, 5))}, {});
        break;
      case 18: {
        const char* ops[] = {"Div", "Mod", "Pow", "Less", "Max", "And", "PRelu", "Clip"};
        const char* op = ops[rnd(0, 7)];
        Tensor y = Iota(rnd_shape(3)).to(rnd(0, 1) ? x.dtype() : dtypes[rnd(0, 5)]);
        ok = try_op(op, {x, y}, {}, 1, 2);
        break;
      }
      case 19: {
        const char* ops[] = {"Relu", "Sigmoid", "Abs", "Neg", "Round", "Not", "Identity", "Size"};
        ok = try_op(ops[rnd(0, 7)], {x}, {});
        ok = try_op("Cast", {x}, attr("to", int64_t{rnd(0, 17)})) && ok;
        break;
      }
    }
    (ok ? ran : failed)++;
  }
  // Both paths are exercised.
  EXPECT_GT(ran, 50);
  EXPECT_GT(failed, 50);
}

TEST(RefShape, ShapeAndSizeReadOnlyTheShapeOfADatalessStandIn) {
  // What fold_constants passes to Shape: a tensor with a shape and no data.
  Graph g;
  int x = g.add_input("x", DType::f32, {4, 5, 6});
  Attributes a;
  a.set("start", int64_t{-2});
  g.add_node("Shape", "node", {x}, a);
  g.add_node("Size", "size", {x});
  g.infer_shapes();
  std::vector<Tensor> stand_in = {
      Tensor::wrap(DType::f32, {4, 5, 6}, nullptr, std::make_shared<int>(0))};
  auto r = evaluate_node(g, g.nodes[0], stand_in);
  expect_ints(r[0], DType::i64, {2}, {5, 6});
  r = evaluate_node(g, g.nodes[1], stand_in);
  expect_ints(r[0], DType::i64, {}, {120});
  // Any other kernel refuses a data-less tensor instead of reading through a null pointer.
  g.add_node("Relu", "relu", {x});
  g.infer_shapes();
  expect_node_error([&] { evaluate_node(g, g.nodes[2], stand_in); }, "", "relu");
}
