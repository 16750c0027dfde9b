#include <gtest/gtest.h>

#include <cmath>

#include "anvil/error.h"
#include "anvil/tensor.h"

using namespace anvil;

TEST(Tensor, ZeroInitializedAndShaped) {
  Tensor t(DType::f32, {2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], 0.0f);
  EXPECT_THROW(t.data<double>(), Error);
}

TEST(Tensor, TransposeMatchesIndexMath) {
  Tensor t(DType::f32, {2, 3, 4});
  for (int i = 0; i < 24; ++i) t.data<float>()[i] = static_cast<float>(i);
  Tensor u = transpose(t, {2, 0, 1});
  ASSERT_EQ(u.shape(), (Shape{4, 2, 3}));
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(u.data<float>()[(a * 2 + b) * 3 + c], static_cast<float>((b * 3 + c) * 4 + a));
}

TEST(Tensor, HalfAndBf16RoundTrip) {
  for (float f : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f}) {
    float h = half_to_float(float_to_half(f));
    EXPECT_NEAR(h, f, std::abs(f) * 1e-3 + 1e-8) << f;
  }
  EXPECT_EQ(half_to_float(float_to_half(1e6f)), INFINITY);
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_float(float_to_bf16(3.0f)), 3.0f);
}

TEST(Tensor, RejectsHostileShapes) {
  EXPECT_THROW(Tensor(DType::f32, {-1, 3}), Error);
  EXPECT_THROW(Tensor(DType::f32, {int64_t{1} << 40, int64_t{1} << 30}), Error);
}
