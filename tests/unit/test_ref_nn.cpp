// Tests of the reference kernels of the neural-network ops (src/ops/*.cpp): Conv,
// ConvTranspose, pooling, Gemm/MatMul, kernel input errors (rest: test_ref_nn_norm_resize.cpp).
// Expected values are independent of the code under test: hand-derived, a direct formula in
// the test, or computed offline with torch 1.13 / numpy 1.24 (Debian's /usr/bin/python3) from
// the same deterministic input patterns: pat(shape, mul, mod, sub, div)[i] =
// ((i*mul) % mod - sub) / div, flat row-major index i. The Python lines are quoted next to
// each array.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "anvil/tensor.h"
#include "ref_nn_test_util.h"

using namespace anvil;
using namespace anvil::ref_nn_test;

// ---------------------------------------------------------------------------------------------
// Conv
// ---------------------------------------------------------------------------------------------

TEST(RefNNConv, Conv2dGroupsDilationAsymmetricPadsBias) {
  // torch: F.conv2d(F.pad(X,(0,1,1,0)), W, B, stride=(2,1), dilation=(1,2), groups=2)
  // X=pat((1,4,5,6),7,11,5,4) W=pat((4,2,3,2),5,7,3,8) B=pat((4,),1,3,1,2)
  const std::vector<double> kConv2dGroupDil = {
      -0.96875, -0.21875, -0.84375, -1.125,   -0.46875, -0.71875, -1.0625,  -0.71875,
      -0.71875, -0.75,    1.125,    0.375,    -0.03125, 0.25,     -0.15625, 1,
      0.09375,  -0.125,   0,        0.0625,   0.8125,   1.625,    0.71875,  -0.1875,
      0.8125,   1.8125,   1.375,    -0.09375, 0.15625,  0.75,     -0.875,   -0.90625,
      -0.59375, -0.625,   -0.46875, -0.90625, -1.0625,  -0.53125, 0,        -0.84375};
  Tensor y = run1(
      "Conv", {pat({1, 4, 5, 6}, 7, 11, 5, 4), pat({4, 2, 3, 2}, 5, 7, 3, 8), pat({4}, 1, 3, 1, 2)},
      attrs({{"kernel_shape", I{3, 2}},
             {"strides", I{2, 1}},
             {"pads", I{1, 0, 0, 1}},
             {"dilations", I{1, 2}},
             {"group", int64_t{2}}}));
  expect_tensor(y, {1, 4, 2, 5}, kConv2dGroupDil);
}

TEST(RefNNConv, Conv1dStridedWithFusedLeakyRelu) {
  // torch: F.leaky_relu(F.conv1d(F.pad(X,(2,1)), W, stride=2), 0.1)
  // X=pat((2,3,7),7,11,5,4) W=pat((2,3,3),5,7,3,8)
  const std::vector<double> kConv1dLeaky = {
      0.3125, -0.0125,  -0.021875, 0.71875, -0.078125, 0.03125, 0.1875,  0.34375,
      0,      -0.09375, 0.6875,    -0.1125, -0.034375, 0.8125,  0.28125, 0.09375};
  Tensor y = run1("Conv", {pat({2, 3, 7}, 7, 11, 5, 4), pat({2, 3, 3}, 5, 7, 3, 8)},
                  attrs({{"strides", I{2}},
                         {"pads", I{2, 1}},
                         {"activation", std::string("LeakyRelu")},
                         {"activation_alpha", 0.1}}));
  expect_tensor(y, {2, 2, 4}, kConv1dLeaky);
}

TEST(RefNNConv, Conv3dPaddedWithFusedRelu) {
  // torch: F.relu(F.conv3d(X, W, B, padding=1))
  // X=pat((1,2,3,4,3),7,11,5,4) W=pat((3,2,2,2,2),5,7,3,8) B=pat((3,),1,3,1,2)
  const std::vector<double> kConv3dRelu = {
      0.28125, 0,       0,       0,       0,       0,       0,       0,       0,       0,
      0,       0,       0,       0,       0.5,     0,       0,       0,       0,       0,
      0.15625, 0,       0,       0,       0,       0.34375, 0,       0,       0,       0,
      0,       0.03125, 0,       0.0625,  0,       0,       0,       0,       0,       0.5,
      0,       0,       0,       0,       0,       0,       0.25,    0,       0,       0,
      0.28125, 0,       0.1875,  0,       0,       0,       0,       0,       0.65625, 0,
      0,       0,       0,       0,       0,       0.09375, 0,       0,       0,       0.09375,
      0,       0,       0.03125, 0,       0,       0,       0,       0.40625, 0,       0,
      0,       0,       0.3125,  0,       0.53125, 0,       0.15625, 0.15625, 0,       0,
      0.3125,  0.21875, 0,       0,       0,       0.28125, 0,       0,       1,       0,
      0,       0.03125, 0,       0.03125, 0.6875,  0.4375,  0,       0,       0.0625,  0.5,
      0,       0,       0.125,   0,       0,       0,       0,       0.75,    0.46875, 0,
      0.21875, 0,       0.0625,  0.65625, 0.25,    0,       0,       0.1875,  0.3125,  0,
      0,       0.1875,  0,       0,       0.03125, 0.1875,  0.65625, 0.46875, 0,       0.28125,
      0.03125, 0,       0.625,   0.09375, 0,       0,       0.1875,  0,       0,       0,
      0.09375, 0,       0,       0.03125, 0,       0,       0.78125, 0,       0,       0.1875,
      0.1875,  1.5,     0.1875,  0.34375, 0.78125, 0.28125, 0.34375, 0.1875,  0.71875, 0.8125,
      0.1875,  0.09375, 0.65625, 0.65625, 0.375,   1.03125, 0.375,   0.8125,  0.125,   0.1875,
      1.5,     0,       0.78125, 0.90625, 0,       0,       0.65625, 1.03125, 0.3125,  0.34375,
      0.53125, 0.9375,  0.28125, 0.5625,  2.125,   0,       0.65625, 0.5,     0,       0.3125,
      0.09375, 0.78125, 0.78125, 0,       0.21875, 0.65625, 0.84375, 0.65625, 0.1875,  0.53125,
      0.71875, 0.5625,  0.5,     2.125,   0,       0.46875, 0.21875, 0,       0.53125, 0.59375,
      0.5,     0.625,   0,       0.46875, 0.5625,  0.53125, 0.65625, 0.6875,  0.59375, 0.5625,
      0.6875,  0.6875,  1.3125,  0,       0.71875, 0.6875,  0.1875,  0.21875, 0.75,    0.21875};
  Tensor y = run1(
      "Conv",
      {pat({1, 2, 3, 4, 3}, 7, 11, 5, 4), pat({3, 2, 2, 2, 2}, 5, 7, 3, 8), pat({3}, 1, 3, 1, 2)},
      attrs({{"pads", I{1, 1, 1, 1, 1, 1}}, {"activation", std::string("Relu")}}));
  expect_tensor(y, {1, 3, 4, 5, 4}, kConv3dRelu);
}

TEST(RefNNConv, FusedClipAndDepthwiseByHand) {
  // Depthwise 1x1 conv (group = C = 2), weights [2, -3], bias [0.5, 0]; Clip [-1, 4].
  // x channel 0 = [1, 2, 3], channel 1 = [1, -1, 0.25]
  // ch0: 2x+0.5 = [2.5, 4.5, 6.5] -> [2.5, 4, 4];  ch1: -3x = [-3, 3, -0.75] -> [-1, 3, -0.75]
  Tensor y =
      run1("Conv",
           {vals({1, 2, 3}, {1, 2, 3, 1, -1, 0.25}), vals({2, 1, 1}, {2, -3}), vals({2}, {0.5, 0})},
           attrs({{"group", int64_t{2}},
                  {"activation", std::string("Clip")},
                  {"activation_alpha", -1.0},
                  {"activation_beta", 4.0}}));
  expect_tensor(y, {1, 2, 3}, {2.5, 4, 4, -1, 3, -0.75});
}

TEST(RefNNConv, HalfAndBf16InputsMatchF32) {
  Tensor x = pat({1, 4, 5, 6}, 7, 11, 5, 4), w = pat({4, 2, 3, 2}, 5, 7, 3, 8),
         b = pat({4}, 1, 3, 1, 2);
  Attributes a = attrs({{"strides", I{2, 1}},
                        {"pads", I{1, 0, 0, 1}},
                        {"dilations", I{1, 2}},
                        {"group", int64_t{2}}});
  const std::vector<double> kConv2dGroupDil = {
      -0.96875, -0.21875, -0.84375, -1.125,   -0.46875, -0.71875, -1.0625,  -0.71875,
      -0.71875, -0.75,    1.125,    0.375,    -0.03125, 0.25,     -0.15625, 1,
      0.09375,  -0.125,   0,        0.0625,   0.8125,   1.625,    0.71875,  -0.1875,
      0.8125,   1.8125,   1.375,    -0.09375, 0.15625,  0.75,     -0.875,   -0.90625,
      -0.59375, -0.625,   -0.46875, -0.90625, -1.0625,  -0.53125, 0,        -0.84375};
  // The pattern values are exact in f16 and bf16; only the output rounding differs.
  for (DType dt : {DType::f16, DType::bf16, DType::f64}) {
    Tensor y = run1("Conv", {x.to(dt), w.to(dt), b.to(dt)}, a);
    EXPECT_EQ(y.dtype(), dt);
    expect_tensor(y, {1, 4, 2, 5}, kConv2dGroupDil, dt == DType::bf16 ? 8e-3 : 1e-3);
  }
}

TEST(RefNNConv, RejectsInconsistentChannelsAndWeights) {
  Tensor x = pat({1, 4, 5, 5}, 7, 11, 5, 4);
  // weights expect 3 x 2 = 6 input channels
  EXPECT_THROW(run1("Conv", {x, pat({4, 3, 3, 3}, 1, 5, 2, 3)}, attrs({{"group", int64_t{2}}})),
               Error);
  // output channels not divisible by group
  EXPECT_THROW(run1("Conv", {x, pat({3, 2, 3, 3}, 1, 5, 2, 3)}, attrs({{"group", int64_t{2}}})),
               Error);
  // kernel_shape disagrees with weights
  EXPECT_THROW(run1("Conv", {x, pat({4, 4, 3, 3}, 1, 5, 2, 3)}, attrs({{"kernel_shape", I{2, 2}}})),
               Error);
  // bias of the wrong size
  EXPECT_THROW(run1("Conv", {x, pat({4, 4, 3, 3}, 1, 5, 2, 3), pat({3}, 1, 5, 2, 3)}), Error);
  // wrong pads length, kernel larger than the input, unknown activation
  EXPECT_THROW(run1("Conv", {x, pat({4, 4, 3, 3}, 1, 5, 2, 3)}, attrs({{"pads", I{1, 1, 1}}})),
               Error);
  EXPECT_THROW(run1("Conv", {x, pat({4, 4, 7, 3}, 1, 5, 2, 3)}), Error);
  EXPECT_THROW(run1("Conv", {x, pat({4, 4, 3, 3}, 1, 5, 2, 3)},
                    attrs({{"activation", std::string("Gelu")}})),
               Error);
  try {
    run1("Conv", {x, pat({4, 3, 3, 3}, 1, 5, 2, 3)});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input channels"), std::string::npos) << e.what();
    EXPECT_EQ(e.node(), "node");
  }
}

TEST(RefNNConv, ConvTranspose2dStride2OutputPaddingGroupedDilatedAsymmetricPads) {
  // torch: full = F.conv_transpose2d(X, W, B, stride=2, output_padding=1, groups=2, dilation=(1,2))
  //        (full shape (1,6,8,6)); expected = full[:, :, 1:, :-1] (pads [1,0,0,1])
  // X=pat((1,4,3,2),7,11,5,4) W=pat((4,3,3,2),5,7,3,8) B=pat((6,),1,3,1,2)
  const std::vector<double> kConvT2d = {
      -0.625,   -0.5, -0.5625,  -0.5, -0.625,   -0.90625, -0.5, -0.90625, -0.5, -0.03125,
      -0.375,   -0.5, -0.09375, -0.5, -1.09375, -1.125,   -0.5, -0.0625,  -0.5, -0.6875,
      -0.46875, -0.5, -0.3125,  -0.5, 0.15625,  -0.46875, -0.5, -1.0625,  -0.5, -0.59375,
      -0.5,     -0.5, -0.5,     -0.5, -0.5,     -0.1875,  0,    0,        0,    0,
      0.25,     0,    -0.875,   0,    0,        -0.25,    0,    0.53125,  0,    -0.09375,
      0.53125,  0,    -0.8125,  0,    0.46875,  0.03125,  0,    -0.3125,  0,    0.15625,
      0.03125,  0,    0.6875,   0,    -0.59375, 0,        0,    0,        0,    0,
      1.34375,  0.5,  0.125,    0.5,  0.625,    0.3125,   0.5,  0.90625,  0.5,  0.03125,
      0.3125,   0.5,  0.0625,   0.5,  0.90625,  0.65625,  0.5,  0.84375,  0.5,  0.3125,
      0.3125,   0.5,  0.34375,  0.5,  0.15625,  0.53125,  0.5,  0.6875,   0.5,  1.15625,
      0.5,      0.5,  0.5,      0.5,  0.5,      -0.625,   -0.5, 0.1875,   -0.5, -0.9375,
      -0.03125, -0.5, -0.6875,  -0.5, -0.15625, -1.09375, -0.5, 0.1875,   -0.5, -0.46875,
      -0.6875,  -0.5, -0.34375, -0.5, -0.53125, 0.15625,  -0.5, -1.53125, -0.5, 0,
      -0.59375, -0.5, 0.03125,  -0.5, -0.75,    -0.5,     -0.5, -0.5,     -0.5, -0.5,
      0,        0,    0,        0,    0.5,      0,        0,    -0.15625, 0,    -0.03125,
      -0.09375, 0,    -0.5625,  0,    0.03125,  0.46875,  0,    -0.34375, 0,    0.34375,
      0.15625,  0,    0.59375,  0,    -0.4375,  -0.59375, 0,    0.40625,  0,    0.125,
      0,        0,    0,        0,    0,        0.625,    0.5,  0.25,     0.5,  0.625,
      0.03125,  0.5,  1.03125,  0.5,  -0.125,   0.90625,  0.5,  0.4375,   0.5,  0.53125,
      0.3125,   0.5,  0.75,     0.5,  0.34375,  0.15625,  0.5,  0.96875,  0.5,  0.4375,
      1.15625,  0.5,  -0.53125, 0.5,  1,        0.5,      0.5,  0.5,      0.5,  0.5};
  Tensor y =
      run1("ConvTranspose",
           {pat({1, 4, 3, 2}, 7, 11, 5, 4), pat({4, 3, 3, 2}, 5, 7, 3, 8), pat({6}, 1, 3, 1, 2)},
           attrs({{"strides", I{2, 2}},
                  {"output_padding", I{1, 1}},
                  {"group", int64_t{2}},
                  {"dilations", I{1, 2}},
                  {"pads", I{1, 0, 0, 1}}}));
  expect_tensor(y, {1, 6, 7, 5}, kConvT2d);
}

TEST(RefNNConv, ConvTransposeOutputShapeComputesPadsLikeOnnx) {
  // ONNX spec example: strides [3,2], output_shape [10,8] gives the same result as
  // output_padding [1,1] (total padding -1 per dim: begin 0, end -1).
  // torch: F.conv_transpose2d(X, ones(1,2,3,3), stride=(3,2), output_padding=1), X = 0..8
  const std::vector<double> kConvTOutShape = {
      0, 0, 1, 1,  3,  2,  2,  0, 0, 0, 1, 1,  3,  2,  2,  0, 0, 0, 1, 1, 3, 2, 2,  0,  3,  3,  7,
      4, 9, 5, 5,  0,  3,  3,  7, 4, 9, 5, 5,  0,  3,  3,  7, 4, 9, 5, 5, 0, 6, 6,  13, 7,  15, 8,
      8, 0, 6, 6,  13, 7,  15, 8, 8, 0, 6, 6,  13, 7,  15, 8, 8, 0, 0, 0, 0, 0, 0,  0,  0,  0,  0,
      0, 1, 1, 3,  2,  2,  0,  0, 0, 1, 1, 3,  2,  2,  0,  0, 0, 1, 1, 3, 2, 2, 0,  3,  3,  7,  4,
      9, 5, 5, 0,  3,  3,  7,  4, 9, 5, 5, 0,  3,  3,  7,  4, 9, 5, 5, 0, 6, 6, 13, 7,  15, 8,  8,
      0, 6, 6, 13, 7,  15, 8,  8, 0, 6, 6, 13, 7,  15, 8,  8, 0, 0, 0, 0, 0, 0, 0,  0,  0};
  Tensor x = pat({1, 1, 3, 3}, 1, 100, 0, 1);
  Tensor w(DType::f32, {1, 2, 3, 3});
  for (int i = 0; i < 18; ++i) w.set(i, 1.0);
  Tensor y =
      run1("ConvTranspose", {x, w}, attrs({{"strides", I{3, 2}}, {"output_shape", I{10, 8}}}));
  expect_tensor(y, {1, 2, 10, 8}, kConvTOutShape);
  Tensor y2 =
      run1("ConvTranspose", {x, w}, attrs({{"strides", I{3, 2}}, {"output_padding", I{1, 1}}}));
  expect_tensor(y2, {1, 2, 10, 8}, kConvTOutShape);
  // A smaller output_shape crops symmetrically (begin gets the larger half): 1-D by hand.
  // x=[1,2], w=[1,1,1], stride 1: full = [1,3,3,2]; output_shape 2 -> total 2 -> pads [1,1] ->
  // [3,3] output_shape 3 -> total 1 -> begin 1, end 0 -> [3,3,2]
  Tensor x1 = vals({1, 1, 2}, {1, 2}), w1 = vals({1, 1, 3}, {1, 1, 1});
  expect_tensor(run1("ConvTranspose", {x1, w1}, attrs({{"output_shape", I{2}}})), {1, 1, 2},
                {3, 3});
  expect_tensor(run1("ConvTranspose", {x1, w1}, attrs({{"output_shape", I{3}}})), {1, 1, 3},
                {3, 3, 2});
}

TEST(RefNNConv, ConvTranspose1dWithFusedSigmoid) {
  // torch: torch.sigmoid(F.conv_transpose1d(X, W, padding=1)), X=pat((1,2,4),7,11,5,4)
  // W=pat((2,1,3),5,7,3,8)
  const std::vector<double> kConvT1dSigmoid = {0.445529535, 0.453261848, 0.4225046348,
                                               0.6076631698};
  Tensor y = run1("ConvTranspose", {pat({1, 2, 4}, 7, 11, 5, 4), pat({2, 1, 3}, 5, 7, 3, 8)},
                  attrs({{"pads", I{1, 1}}, {"activation", std::string("Sigmoid")}}));
  expect_tensor(y, {1, 1, 4}, kConvT1dSigmoid);
}

TEST(RefNNConv, ConvTransposeRejectsBadWeights) {
  Tensor x = pat({1, 4, 3, 3}, 7, 11, 5, 4);
  EXPECT_THROW(run1("ConvTranspose", {x, pat({3, 2, 3, 3}, 1, 5, 2, 3)}), Error);  // dim0 != C
  EXPECT_THROW(
      run1("ConvTranspose", {x, pat({4, 2, 3, 3}, 1, 5, 2, 3)}, attrs({{"group", int64_t{3}}})),
      Error);  // C % group
  EXPECT_THROW(run1("ConvTranspose", {x, pat({4, 2, 3, 3}, 1, 5, 2, 3), pat({3}, 1, 5, 2, 3)},
                    attrs({{"group", int64_t{2}}})),
               Error);  // bias M = 4
  EXPECT_THROW(run1("ConvTranspose", {x, pat({4, 2, 3, 3}, 1, 5, 2, 3)},
                    attrs({{"output_padding", I{1, 1}}})),
               Error);  // op >= stride
}

// ---------------------------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------------------------

Tensor pool_x5() {  // X = pat((1,2,5,7),7,11,5,4) + pat((1,2,5,7),3,13,6,16)
  Tensor a = pat({1, 2, 5, 7}, 7, 11, 5, 4, DType::f64),
         b = pat({1, 2, 5, 7}, 3, 13, 6, 16, DType::f64);
  for (int64_t i = 0; i < a.numel(); ++i) a.set(i, a.get(i) + b.get(i));
  return a;
}
Tensor pool_x6() {  // X6 = pat((1,2,6,7),7,11,5,4) + pat((1,2,6,7),3,13,6,16)
  Tensor a = pat({1, 2, 6, 7}, 7, 11, 5, 4, DType::f64),
         b = pat({1, 2, 6, 7}, 3, 13, 6, 16, DType::f64);
  for (int64_t i = 0; i < a.numel(); ++i) a.set(i, a.get(i) + b.get(i));
  return a;
}

TEST(RefNNPool, MaxPoolCeilModeDropsWindowStartingInEndPadding) {
  // H: in 5, k 2, s 2, pads 1/1: ceil(5/2)+1 = 4, but window 4 would start at 6 >= 5+1 -> 3.
  // torch: F.max_pool2d(X, (2,3), stride=2, padding=1, ceil_mode=True)
  const std::vector<double> kMaxPoolCeil = {
      0.3125, 1.4375, 1.4375, 0.9375,  1.0625, 1.375,  1.375,  0.875,  1, 0.5,    1.5,    0.8125,
      1.125,  1.125,  0.625,  -0.1875, 1.0625, 1.0625, 1.5625, 1.5625, 1, 1.1875, 0.6875, 1.625};
  Tensor y = run1("MaxPool", {pool_x5()},
                  attrs({{"kernel_shape", I{2, 3}},
                         {"strides", I{2, 2}},
                         {"pads", I{1, 1, 1, 1}},
                         {"ceil_mode", int64_t{1}}}));
  expect_tensor(y, {1, 2, 3, 4}, kMaxPoolCeil);
}

TEST(RefNNPool, AveragePoolCeilModeCountIncludePadBothWays) {
  // H: in 6, k 3, s 2, pads 1/1, ceil: 4 windows, the last (rows 5..7) overhangs the end pad.
  // torch: F.avg_pool2d(X6, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True/False)
  const std::vector<double> kAvgPoolCeilIncl = {-0.2083333333,  0.06944444444,   0.02777777778,
                                                -0.02083333333, -0.08333333333,  -0.1319444444,
                                                0.02083333333,  -0.1527777778,   0,
                                                -0.06944444444, -0.006944444444, -0.2847222222,
                                                0.05208333333,  0.15625,         -0.01041666667,
                                                -0.1979166667,  0.1388888889,    -0.1111111111,
                                                0.0625,         0.02083333333,   0.04166666667,
                                                -0.03472222222, -0.1875,         0.0625,
                                                -0.1805555556,  0.02777777778,   -0.03472222222,
                                                0.2361111111,   -0.1458333333,   0.1145833333,
                                                0.21875,        0.0625};
  const std::vector<double> kAvgPoolCeilExcl = {
      -0.46875,        0.1041666667,   0.04166666667, -0.046875, -0.125,
      -0.1319444444,   0.02083333333,  -0.2291666667, 0,         -0.06944444444,
      -0.006944444444, -0.4270833333,  0.15625,       0.3125,    -0.02083333333,
      -0.59375,        0.3125,         -0.1666666667, 0.09375,   0.046875,
      0.0625,          -0.03472222222, -0.1875,       0.09375,   -0.2708333333,
      0.02777777778,   -0.03472222222, 0.3541666667,  -0.4375,   0.2291666667,
      0.4375,          0.1875};
  Attributes at = attrs({{"kernel_shape", I{3, 3}},
                         {"strides", I{2, 2}},
                         {"pads", I{1, 1, 1, 1}},
                         {"ceil_mode", int64_t{1}},
                         {"count_include_pad", int64_t{1}}});
  expect_tensor(run1("AveragePool", {pool_x6()}, at), {1, 2, 4, 4}, kAvgPoolCeilIncl);
  at.set("count_include_pad", int64_t{0});
  expect_tensor(run1("AveragePool", {pool_x6()}, at), {1, 2, 4, 4}, kAvgPoolCeilExcl);
  // floor mode, include pad: torch F.avg_pool2d(X, 3, stride=2, padding=1, count_include_pad=True)
  const std::vector<double> kAvgPoolFloorIncl = {-0.2083333333,
                                                 0.06944444444,
                                                 0.02777777778,
                                                 -0.02083333333,
                                                 -0.08333333333,
                                                 -0.1319444444,
                                                 0.02083333333,
                                                 -0.1527777778,
                                                 -0.03472222222,
                                                 -0.1736111111,
                                                 0,
                                                 -0.1527777778,
                                                 0.1527777778,
                                                 0,
                                                 0.1736111111,
                                                 0.03472222222,
                                                 0.1527777778,
                                                 -0.02083333333,
                                                 0.1319444444,
                                                 0.08333333333,
                                                 0.02083333333,
                                                 -0.02777777778,
                                                 -0.06944444444,
                                                 0.2083333333};
  at = attrs({{"kernel_shape", I{3, 3}},
              {"strides", I{2, 2}},
              {"pads", I{1, 1, 1, 1}},
              {"count_include_pad", int64_t{1}}});
  expect_tensor(run1("AveragePool", {pool_x5()}, at), {1, 2, 3, 4}, kAvgPoolFloorIncl);
}

TEST(RefNNPool, AveragePoolAsymmetricPadsByHand) {
  // 1-D x = [1,2,3,4,5], k 2, s 2, pads [1,0]: windows [-1,0] [1,2] [3,4]
  // include pad: [1/2, 5/2, 9/2]; exclude: [1, 5/2, 9/2]
  // ceil mode with pads [0,1]: windows [0,1] [2,3] [4,5]: include -> [1.5,3.5,2.5], exclude ->
  // [1.5,3.5,5]
  Tensor x = vals({1, 1, 5}, {1, 2, 3, 4, 5});
  auto at = [](I pads, int64_t incl, int64_t ceil) {
    return attrs({{"kernel_shape", I{2}},
                  {"strides", I{2}},
                  {"pads", pads},
                  {"count_include_pad", incl},
                  {"ceil_mode", ceil}});
  };
  expect_tensor(run1("AveragePool", {x}, at({1, 0}, 1, 0)), {1, 1, 3}, {0.5, 2.5, 4.5});
  expect_tensor(run1("AveragePool", {x}, at({1, 0}, 0, 0)), {1, 1, 3}, {1, 2.5, 4.5});
  expect_tensor(run1("AveragePool", {x}, at({0, 1}, 1, 1)), {1, 1, 3}, {1.5, 3.5, 2.5});
  expect_tensor(run1("AveragePool", {x}, at({0, 1}, 0, 1)), {1, 1, 3}, {1.5, 3.5, 5});
  // ceil mode without pads: windows [0,1] [2,3] [4] (overhang beyond the input counts nowhere)
  expect_tensor(run1("AveragePool", {x}, at({0, 0}, 1, 1)), {1, 1, 3}, {1.5, 3.5, 5});
  // integer MaxPool (u8), as in ONNX's maxpool_2d_uint8
  Tensor xu = Tensor::from_vector<uint8_t>({1, 1, 2, 2}, {3, 250, 7, 1});
  Tensor yu = run1("MaxPool", {xu}, attrs({{"kernel_shape", I{2, 2}}}));
  EXPECT_EQ(yu.dtype(), DType::u8);
  expect_tensor(yu, {1, 1, 1, 1}, {250}, 0);
  // MaxPool with negative values and padding: padding never wins
  Tensor xn = vals({1, 1, 3}, {-3, -1, -2});
  expect_tensor(run1("MaxPool", {xn}, attrs({{"kernel_shape", I{2}}, {"pads", I{1, 1}}})),
                {1, 1, 4}, {-3, -1, -1, -2});
}

TEST(RefNNPool, MaxPoolDilationAndIndices) {
  // torch: v, idx = F.max_pool2d(X, 3, stride=(2,3), dilation=(2,1), padding=(1,1),
  // return_indices=True) ONNX Indices are flat over N,C,H,W: idx + (n*C + c)*H*W
  const std::vector<double> kMaxPoolDil = {0.125,  1.5,    0.75,   0.125,  1.5,    0.75,
                                           0.9375, 1.1875, 1.5625, 0.9375, 1.1875, 1.5625};
  const std::vector<double> kMaxPoolDilIdx = {7, 25, 12, 7, 25, 12, 7, 23, 12, 7, 23, 12};
  auto outs = run_op("MaxPool", {pool_x5()},
                     attrs({{"kernel_shape", I{3, 3}},
                            {"strides", I{2, 3}},
                            {"dilations", I{2, 1}},
                            {"pads", I{1, 1, 1, 1}}}),
                     2);
  expect_tensor(outs[0], {1, 2, 2, 3}, kMaxPoolDil);
  ASSERT_EQ(outs[1].dtype(), DType::i64);
  std::vector<double> idx = kMaxPoolDilIdx;
  for (size_t i = 6; i < 12; ++i) idx[i] += 35;  // channel 1
  expect_tensor(outs[1], {1, 2, 2, 3}, idx, 0);
}

TEST(RefNNPool, MaxPool1dCeilAndAvgPool3d) {
  // torch: F.max_pool1d(pat((1,1,6),7,11,5,4), 3, stride=2, padding=1, ceil_mode=True)
  const std::vector<double> kMaxPool1d = {0.5, 1.25, 1.25, -0.75};
  expect_tensor(run1("MaxPool", {pat({1, 1, 6}, 7, 11, 5, 4)},
                     attrs({{"kernel_shape", I{3}},
                            {"strides", I{2}},
                            {"pads", I{1, 1}},
                            {"ceil_mode", int64_t{1}}})),
                {1, 1, 4}, kMaxPool1d);
  // torch: F.avg_pool3d(pat((1,1,3,4,5),7,11,5,4), 2, stride=2, ceil_mode=True,
  // count_include_pad=False)
  const std::vector<double> kAvgPool3d = {0.1875, -0.09375, 0.125, -0.1875, -0.125, 0.4375,
                                          -0.25,  0.5,      -1,    0.0625,  0.125,  0};
  expect_tensor(
      run1("AveragePool", {pat({1, 1, 3, 4, 5}, 7, 11, 5, 4)},
           attrs(
               {{"kernel_shape", I{2, 2, 2}}, {"strides", I{2, 2, 2}}, {"ceil_mode", int64_t{1}}})),
      {1, 1, 2, 2, 3}, kAvgPool3d);
}

TEST(RefNNPool, GlobalAndLpPoolsByHand) {
  // x (1,2,2,2): ch0 = [1,-2,3,4], ch1 = [-1,-5,0,2]
  Tensor x = vals({1, 2, 2, 2}, {1, -2, 3, 4, -1, -5, 0, 2});
  expect_tensor(run1("GlobalAveragePool", {x}), {1, 2, 1, 1}, {1.5, -1});
  expect_tensor(run1("GlobalMaxPool", {x}), {1, 2, 1, 1}, {4, 2});
  // L2: sqrt(1+4+9+16) = sqrt(30), sqrt(1+25+0+4) = sqrt(30)
  expect_tensor(run1("GlobalLpPool", {x}), {1, 2, 1, 1}, {std::sqrt(30.0), std::sqrt(30.0)});
  // LpPool p=1, k 2x1: sums of |x| down the columns: ch0 [1+3, 2+4], ch1 [1+0, 5+2]
  expect_tensor(run1("LpPool", {x}, attrs({{"kernel_shape", I{2, 1}}, {"p", int64_t{1}}})),
                {1, 2, 1, 2}, {4, 6, 1, 7});
  // Global pools of a 3-D input
  expect_tensor(run1("GlobalAveragePool", {vals({1, 1, 3}, {1, 2, 6})}), {1, 1, 1}, {3});
}

TEST(RefNNPool, RejectsBadAttributes) {
  Tensor x = pat({1, 1, 4, 4}, 7, 11, 5, 4);
  EXPECT_THROW(run1("MaxPool", {x}), Error);  // kernel_shape missing
  EXPECT_THROW(run1("MaxPool", {x}, attrs({{"kernel_shape", I{2}}})), Error);
  EXPECT_THROW(run1("MaxPool", {x}, attrs({{"kernel_shape", I{5, 5}}})), Error);
  EXPECT_THROW(run1("AveragePool", {x}, attrs({{"kernel_shape", I{2, 2}}, {"strides", I{0, 1}}})),
               Error);
  EXPECT_THROW(run1("AveragePool", {pat({4, 4}, 7, 11, 5, 4)}, attrs({{"kernel_shape", I{2, 2}}})),
               Error);
}

// ---------------------------------------------------------------------------------------------
// Gemm / MatMul
// ---------------------------------------------------------------------------------------------

TEST(RefNNMatMul, GemmTransposesAlphaBetaAndBroadcastC) {
  // numpy: 0.5*(A@B.T) + 2.0*C, A=pat((3,4),7,11,5,4) B=pat((5,4),5,7,3,8) C=pat((1,5),1,3,1,2)
  const std::vector<double> kGemmTB = {-0.859375, -0.40625, 1.140625, -0.859375, -0.078125,
                                       -1.140625, -0.0625,  0.90625,  -1.125,    0.28125,
                                       -0.5625,   0.109375, 0.671875, -1.21875,  -0.21875};
  expect_tensor(
      run1("Gemm", {pat({3, 4}, 7, 11, 5, 4), pat({5, 4}, 5, 7, 3, 8), pat({1, 5}, 1, 3, 1, 2)},
           attrs({{"transB", int64_t{1}}, {"alpha", 0.5}, {"beta", 2.0}})),
      {3, 5}, kGemmTB);
  // numpy: At.T@Bn + C2, At=pat((4,3),7,11,5,4) Bn=pat((4,5),5,7,3,8) C2=pat((3,1),1,3,1,2)
  const std::vector<double> kGemmTA = {0.0625,   -0.59375, -1.03125, 0.28125,  -1.25,
                                       -0.21875, 0.09375,  -0.03125, -0.15625, 0.15625,
                                       0.53125,  0.09375,  0.96875,  0.09375,  0.53125};
  expect_tensor(
      run1("Gemm", {pat({4, 3}, 7, 11, 5, 4), pat({4, 5}, 5, 7, 3, 8), pat({3, 1}, 1, 3, 1, 2)},
           attrs({{"transA", int64_t{1}}})),
      {3, 5}, kGemmTA);
  // numpy: relu(At.T@Bn), no C
  const std::vector<double> kGemmNoC_Relu = {0.5625,  0,       0, 0.78125, 0, 0,      0.09375, 0, 0,
                                             0.15625, 0.03125, 0, 0.46875, 0, 0.03125};
  expect_tensor(run1("Gemm", {pat({4, 3}, 7, 11, 5, 4), pat({4, 5}, 5, 7, 3, 8)},
                     attrs({{"transA", int64_t{1}}, {"activation", std::string("Relu")}})),
                {3, 5}, kGemmNoC_Relu);
  // Both transposed, scalar C, by hand: A^T = [[1,2]], B^T = [[3],[4]] -> 11; + 0.5*10 = 16
  expect_tensor(run1("Gemm", {vals({2, 1}, {1, 2}), vals({1, 2}, {3, 4}), vals({}, {10})},
                     attrs({{"transA", int64_t{1}}, {"transB", int64_t{1}}, {"beta", 0.5}})),
                {1, 1}, {16});
  EXPECT_THROW(run1("Gemm", {pat({3, 4}, 7, 11, 5, 4), pat({5, 4}, 5, 7, 3, 8)}), Error);
  EXPECT_THROW(
      run1("Gemm", {pat({3, 4}, 7, 11, 5, 4), pat({4, 5}, 5, 7, 3, 8), pat({2, 5}, 1, 3, 1, 2)}),
      Error);
}

TEST(RefNNMatMul, MatMulBroadcastAndOneDimensionalOperands) {
  // numpy: pat((2,1,3,4),7,11,5,4) @ pat((3,4,2),5,7,3,8)
  const std::vector<double> kMatMulBcast = {
      0.125,    -0.96875, 0.28125, 0.375,    0.4375,   0,        -0.96875, 0.5625,   0.375,
      -0.40625, 0,        0,       0.5625,   0.5625,   -0.40625, -0.53125, 0,        0.4375,
      0.25,     0.3125,   0.40625, -0.0625,  -0.8125,  -0.09375, 0.3125,   -0.28125, -0.0625,
      0.125,    -0.09375, 0.1875,  -0.28125, -0.65625, 0.125,    0.3125,   0.1875,   0.25};
  expect_tensor(run1("MatMul", {pat({2, 1, 3, 4}, 7, 11, 5, 4), pat({3, 4, 2}, 5, 7, 3, 8)}),
                {2, 3, 3, 2}, kMatMulBcast);
  // numpy: pat((4,),7,11,5,4) @ pat((2,4,3),5,7,3,8)
  const std::vector<double> kMatMul1dLeft = {0.40625, -0.25, 0.40625, -0.6875, 0.40625, 0.40625};
  expect_tensor(run1("MatMul", {pat({4}, 7, 11, 5, 4), pat({2, 4, 3}, 5, 7, 3, 8)}), {2, 3},
                kMatMul1dLeft);
  // numpy: pat((2,3,4),7,11,5,4) @ pat((4,),5,7,3,8)
  const std::vector<double> kMatMul1dRight = {0.28125, -0.28125, 0.875, -0.375, 0.78125, -0.46875};
  expect_tensor(run1("MatMul", {pat({2, 3, 4}, 7, 11, 5, 4), pat({4}, 5, 7, 3, 8)}), {2, 3},
                kMatMul1dRight);
  // 1-D x 1-D: dot product -> scalar; fused Tanh
  Tensor d = run1("MatMul", {vals({3}, {1, 2, 3}), vals({3}, {0.5, -1, 0.25})},
                  attrs({{"activation", std::string("Tanh")}}));
  expect_tensor(d, {}, {std::tanh(0.5 - 2 + 0.75)});
  EXPECT_THROW(run1("MatMul", {pat({2, 3}, 1, 5, 2, 3), pat({2, 3}, 1, 5, 2, 3)}), Error);
  EXPECT_THROW(run1("MatMul", {pat({2, 2, 3}, 1, 5, 2, 3), pat({3, 3, 1}, 1, 5, 2, 3)}), Error);
}

TEST(RefNNMatMul, ConvPoolGemmThroughSession) {
  // x (1,1,3,3) = 1..9; Conv 2x2 ones (sum of 2x2 windows) -> [[12,16],[24,28]];
  // GlobalMaxPool -> 28; reshape-free Gemm on (1,1) via Flatten-free path: use MatMul on (1,1,1,1)
  Graph g;
  int x = g.add_input("x", DType::f32, {1, 1, 3, 3});
  Tensor w(DType::f32, {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) w.set(i, 1.0);
  int wc = g.add_constant("w", w);
  int c = g.add_node("Conv", "conv", {x, wc});
  int p = g.add_node("MaxPool", "pool", {g.nodes[static_cast<size_t>(c)].outputs[0]},
                     attrs({{"kernel_shape", I{2, 2}}}));
  int m = g.add_constant("m", vals({1, 2}, {1, -1}));
  int mm = g.add_node("MatMul", "mm", {g.nodes[static_cast<size_t>(p)].outputs[0], m});
  g.outputs = {g.nodes[static_cast<size_t>(mm)].outputs[0]};
  SessionOptions so;
  so.backend = "reference";
  Session s(g, so);
  auto out = s.run({{"x", pat({1, 1, 3, 3}, 1, 100, -1, 1)}});
  ASSERT_EQ(out.size(), 1u);
  expect_tensor(out.begin()->second, {1, 1, 1, 2}, {28, -28});
}

TEST(RefNNErrors, KernelsRejectMissingInputsWithoutCrashing) {
  // A kernel called directly with too few inputs fails with anvil::Error.
  Graph g;
  int x = g.add_input("x", DType::f32, {1, 1, 3, 3});
  int w = g.add_constant("w", pat({1, 1, 2, 2}, 1, 5, 2, 3));
  int n = g.add_node("Conv", "conv", {x, w});
  g.infer_shapes();
  std::vector<Tensor> only_x = {pat({1, 1, 3, 3}, 7, 11, 5, 4)};
  EXPECT_THROW(evaluate_node(g, g.nodes[static_cast<size_t>(n)], only_x), Error);
  // inputs that disagree with the inferred shapes are caught, not read out of bounds
  std::vector<Tensor> bigger = {pat({1, 1, 5, 5}, 7, 11, 5, 4), pat({1, 1, 2, 2}, 1, 5, 2, 3)};
  EXPECT_THROW(evaluate_node(g, g.nodes[static_cast<size_t>(n)], bigger), Error);
  for (const char* op : {"BatchNormalization", "Gemm", "MatMul", "TopK", "Resize", "ReduceSum",
                         "Softmax", "MaxPool", "LRN"}) {
    Node node;
    node.op = op;
    node.name = "bad";
    std::vector<Tensor> none;
    std::vector<Tensor> outs(1);
    KernelContext ctx{node, none, outs};
    EXPECT_THROW(OpRegistry::global().get(op).reference(ctx), Error) << op;
  }
}
