#include <gtest/gtest.h>

#include <cmath>

#include "anvil/verify.h"

using anvil::compare_tensors;
using anvil::Shape;
using anvil::Tensor;

TEST(Compare, AllcloseRuleAndMagnitudes) {
  auto want = Tensor::from_vector<float>({4}, {1.0f, -2.0f, 0.0f, 4.0f});
  auto got = Tensor::from_vector<float>({4}, {1.0f, -2.002f, 1e-6f, 4.0f});
  // |diff| = 0, 0.002, 1e-6, 0; tolerance atol + rtol*|want| = 1e-5 + 1e-3*|b|.
  auto c = compare_tensors(got, want, 1e-3, 1e-5);
  EXPECT_EQ(c.count, 4);
  EXPECT_EQ(c.mismatches, 0);  // 0.002 <= 1e-5 + 0.002 (rounded in float: check below)
  c = compare_tensors(got, want, 1e-4, 1e-5);
  EXPECT_EQ(c.mismatches, 1);  // 0.002 > 1e-5 + 2e-4
  EXPECT_EQ(c.first_mismatch, 1);
  EXPECT_EQ(c.worst_index, 1);
  EXPECT_NEAR(c.max_abs, 0.002, 1e-6);
  EXPECT_NEAR(c.max_rel, 0.001, 1e-6);  // 0.002 / 2; the 1e-6 vs 0 pair has no relative error
  // cosine: dot = 1 + 4.004 + 0 + 16 = 21.004; |got| = sqrt(1 + 4.008004 + 1e-12 + 16)
  const double cos = 21.004 / (std::sqrt(21.008004) * std::sqrt(21.0));
  EXPECT_NEAR(c.cosine, cos, 1e-6);
  EXPECT_FALSE(c.ok());
}

TEST(Compare, NanInfAndShapes) {
  auto a = Tensor::from_vector<float>({3}, {NAN, INFINITY, 1.0f});
  EXPECT_TRUE(compare_tensors(a, a, 0, 0).ok());  // NaN == NaN, inf == inf
  auto b = Tensor::from_vector<float>({3}, {1.0f, INFINITY, 1.0f});
  auto c = compare_tensors(a, b, 1, 1);
  EXPECT_EQ(c.mismatches, 1);
  EXPECT_EQ(c.first_mismatch, 0);
  auto d = Tensor::from_vector<float>({3}, {NAN, -INFINITY, 1.0f});
  EXPECT_EQ(compare_tensors(a, d, 1, 1).mismatches, 1);
  EXPECT_FALSE(compare_tensors(a, Tensor(anvil::DType::f32, Shape{1, 3}), 1, 1).ok());
  auto z = Tensor(anvil::DType::f32, Shape{2});
  EXPECT_EQ(compare_tensors(z, z, 0, 0).cosine, 1.0);
}
