// Tests of Einsum and ReverseSequence (src/ops/sequence.cpp). Expected values: numpy 1.24
// (np.einsum) on the deterministic pattern of ref_nn_test_util.h, or another op (MatMul).
// ONNX's own node tests for both ops run in tests/import/test_onnx_conformance.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/tensor.h"
#include "ref_nn_test_util.h"

using namespace anvil;
using namespace anvil::ref_nn_test;

namespace {
Attributes eq(const std::string& e) { return attrs({{"equation", e}}); }
}  // namespace

TEST(Einsum, MatmulTransposeTraceDotImplicit) {
  Tensor a = pat({2, 3}, 7, 11, 5, 4), b = pat({3, 4}, 5, 7, 3, 8);
  expect_tensor(run1("Einsum", {a, b}, eq("ij,jk")), {2, 4},
                {0.53125, -0.25, 0.0625, -0.0625, -0.5625, 0.34375, 0.15625, -0.6875});
  expect_tensor(run1("Einsum", {a, b}, eq("ij, jk -> ik")), {2, 4},
                {0.53125, -0.25, 0.0625, -0.0625, -0.5625, 0.34375, 0.15625, -0.6875});
  expect_tensor(run1("Einsum", {a}, eq("ij->ji")), {3, 2}, {-1.25, 1.25, 0.5, 0.25, -0.5, -0.75});
  expect_tensor(run1("Einsum", {pat({3, 3}, 7, 11, 5, 4)}, eq("ii")), {}, {-2});
  expect_tensor(run1("Einsum", {pat({5}, 7, 11, 5, 4), pat({5}, 5, 7, 3, 8)}, eq("i,i->")), {},
                {0.375});
  // implicit output: letters used once in alphabetical order (c after a: "ac" -> [3, 2]).
  expect_tensor(run1("Einsum", {transpose(a, {1, 0}), pat({2, 2}, 1, 3, 1, 4)}, eq("ba,ac")),
                {3, 2}, {0.625, -0.3125, -0.0625, -0.0625, -0.0625, 0.1875});
}

TEST(Einsum, EllipsisBroadcastsLikeMatMul) {
  Tensor c = pat({2, 1, 3, 3}, 3, 5, 2, 6), d = pat({4, 3, 3}, 1, 3, 1, 4);
  Tensor e = run1("Einsum", {c, d}, eq("...ij,...jk->...ik"));
  Tensor m = run1("MatMul", {c, d});
  ASSERT_EQ(e.shape(), (Shape{2, 4, 3, 3}));
  for (int64_t i = 0; i < m.numel(); ++i) EXPECT_NEAR(e.get(i), m.get(i), 1e-7);
}

TEST(Einsum, ErrorsNameTheEquation) {
  Tensor a = pat({2, 3}, 7, 11, 5, 4);
  for (const char* bad : {"ij,jk->ik", "ijk->i", "ij->k", "ij->ii", "i$->i"}) {
    try {
      run1("Einsum", {a}, eq(bad));
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.field(), "equation") << bad << ": " << e.what();
    }
  }
}

TEST(ReverseSequence, ReversesEachItemsPrefix) {
  // time_axis 0, batch_axis 1: x [T=4, B=2, 1], lens [3, 1].
  Tensor x = vals({4, 2, 1}, {0, 10, 1, 11, 2, 12, 3, 13});
  expect_tensor(run1("ReverseSequence", {x, i64s({3, 1})}), {4, 2, 1},
                {2, 10, 1, 11, 0, 12, 3, 13});
  // batch_axis 0, time_axis 1: x [B=2, T=3].
  Tensor y = vals({2, 3}, {0, 1, 2, 10, 11, 12});
  expect_tensor(run1("ReverseSequence", {y, i64s({2, 3})},
                     attrs({{"batch_axis", int64_t{0}}, {"time_axis", int64_t{1}}})),
                {2, 3}, {1, 0, 2, 12, 11, 10});
  try {
    run1("ReverseSequence", {y, i64s({4, 1})},
         attrs({{"batch_axis", int64_t{0}}, {"time_axis", int64_t{1}}}));
    ADD_FAILURE() << "length 4 > 3 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "sequence_lens");
  }
}

TEST(Trilu, UpperAndLowerWithK) {
  // numpy: np.triu(x, 1), np.tril(x, -1) of x = arange(12).reshape(3, 4).
  Tensor x = vals({3, 4}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  expect_tensor(run1("Trilu", {x, i64s({1})}), {3, 4}, {0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11});
  expect_tensor(run1("Trilu", {x, i64s({-1})}, attrs({{"upper", int64_t{0}}})), {3, 4},
                {0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0});
  expect_tensor(run1("Trilu", {x}), {3, 4}, {0, 1, 2, 3, 0, 5, 6, 7, 0, 0, 10, 11});
}
