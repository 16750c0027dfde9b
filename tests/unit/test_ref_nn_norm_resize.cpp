// Tests of the reference kernels of the neural-network ops (src/ops/*.cpp): normalization,
// softmax, reductions/ArgMax/TopK, Resize/Upsample (rest: test_ref_nn.cpp).
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
// Normalization and softmax
// ---------------------------------------------------------------------------------------------

TEST(RefNNNorm, BatchNormalizationRank4AndRank3) {
  // torch: F.batch_norm(X, mean, var, scale, B, training=False, eps=1e-3 / 1e-5)
  // X=pat((2,3,2,3),7,11,5,4) scale=pat((3,),1,5,-1,2) B=pat((3,),1,3,1,4)
  // mean=pat((3,),2,5,2,3) var=pat((3,),1,4,-1,2); X3=pat((2,3,4),7,11,5,4)
  const std::vector<double> kBN4 = {-0.6620670944, 0.5741341889,
                                    -0.1322665444, 1.103934739,
                                    0.3975340055,  -0.3088667278,
                                    0.9995003747,  0,
                                    -0.9995003747, 0.749625281,
                                    -0.2498750937, -1.249375468,
                                    0.04594386215, -1.178392965,
                                    0.9641964825,  -0.2601403446,
                                    -1.484477172,  0.6581122757,
                                    0.2209338222,  -0.4854669111,
                                    0.7507343722,  0.04433363888,
                                    -0.6620670944, 0.5741341889,
                                    -0.4997501873, 1.249375468,
                                    0.2498750937,  -0.749625281,
                                    0.9995003747,  0,
                                    -1.790561379,  0.3520280689,
                                    -0.8723087582, -2.096645585,
                                    0.04594386215, -1.178392965};
  const std::vector<double> kBN3 = {-0.662474831,
                                    0.5749496619,
                                    -0.1321500483,
                                    1.105274445,
                                    0.24999875,
                                    -0.74999625,
                                    0.999995,
                                    0,
                                    -1.791234648,
                                    0.3520617324,
                                    -0.8726790565,
                                    -2.097419845,
                                    0.5749496619,
                                    -0.1321500483,
                                    1.105274445,
                                    0.3981747344,
                                    -0.74999625,
                                    0.999995,
                                    0,
                                    -0.999995,
                                    0.3520617324,
                                    -0.8726790565,
                                    -2.097419845,
                                    0.04587653518};
  Tensor sc = pat({3}, 1, 5, -1, 2), b = pat({3}, 1, 3, 1, 4), m = pat({3}, 2, 5, 2, 3),
         v = pat({3}, 1, 4, -1, 2);
  expect_tensor(run1("BatchNormalization", {pat({2, 3, 2, 3}, 7, 11, 5, 4), sc, b, m, v},
                     attrs({{"epsilon", 1e-3}})),
                {2, 3, 2, 3}, kBN4);
  expect_tensor(run1("BatchNormalization", {pat({2, 3, 4}, 7, 11, 5, 4), sc, b, m, v}), {2, 3, 4},
                kBN3);
  // bf16 input (values exact in bf16), f32 parameters
  expect_tensor(run1("BatchNormalization", {pat({2, 3, 4}, 7, 11, 5, 4, DType::bf16), sc, b, m, v}),
                {2, 3, 4}, kBN3, 1e-2);
  EXPECT_THROW(run1("BatchNormalization", {pat({2, 4, 4}, 7, 11, 5, 4), sc, b, m, v}), Error);
  EXPECT_THROW(run1("BatchNormalization", {pat({2, 3, 4}, 7, 11, 5, 4), sc, b, m, v},
                    attrs({{"training_mode", int64_t{1}}})),
               Error);
}

TEST(RefNNNorm, InstanceNormalization) {
  // torch: F.instance_norm(X, weight=scale, bias=B, eps=1e-5), same X/scale/B as above
  const std::vector<double> kIN = {
      -0.9465210679, 0.09826053393, -0.4987575242, 0.5460240776,  -0.05099398061, -0.6480120388,
      1.361959854,   0.1513288727,  -1.059302109,  1.059302109,   -0.1513288727,  -1.361959854,
      0.6794446957,  -1.381889844,  2.2254456,     0.1641110609,  -1.897223478,   1.710111965,
      -0.1068517681, -0.7939632812, 0.4084818667,  -0.2786296464, -0.9657411595,  0.2367039884,
      -0.9734079769, 1.431482319,   0.05725929276, -1.316963733,  1.087926562,    -0.2862964638,
      -1.210111965,  2.397223478,   0.3358889391,  -1.7254456,    1.881889844,    -0.1794446957};
  expect_tensor(run1("InstanceNormalization",
                     {pat({2, 3, 2, 3}, 7, 11, 5, 4), pat({3}, 1, 5, -1, 2), pat({3}, 1, 3, 1, 4)}),
                {2, 3, 2, 3}, kIN);
  EXPECT_THROW(run1("InstanceNormalization",
                    {pat({2, 3, 2, 3}, 7, 11, 5, 4), pat({2}, 1, 5, -1, 2), pat({3}, 1, 3, 1, 4)}),
               Error);
}

TEST(RefNNNorm, LRNOddAndEvenWindow) {
  // numpy, ONNX formula: sum over channels [c - floor((size-1)/2), c + ceil((size-1)/2)],
  // y = x / (bias + alpha/size * sum)^beta; X=pat((1,5,2,2),7,11,5,2)
  // (size 3 also checked equal to torch F.local_response_norm)
  const std::vector<double> kLRN3 = {-1.376146645,
                                     0.5715385697,
                                     -0.5599586058,
                                     1.380039566,
                                     0.2634323509,
                                     -0.8351245007,
                                     1.116697515,
                                     0,
                                     -1.116697515,
                                     0.8351245007,
                                     -0.2634323509,
                                     -1.376146645,
                                     0.5458480015,
                                     -0.5458480015,
                                     1.376146645,
                                     0.2634323509,
                                     -0.8573078546,
                                     1.119917212,
                                     0,
                                     -1.129707697};
  const std::vector<double> kLRN4 = {-2.024440825,
                                     0.8856148855,
                                     -0.889988319,
                                     1.961161351,
                                     0.3984095364,
                                     -1.303116728,
                                     1.593638146,
                                     0,
                                     -1.705605731,
                                     1.235080454,
                                     -0.4048881651,
                                     -2.024440825,
                                     0.8567058738,
                                     -0.8567058738,
                                     2.171861214,
                                     0.4048881651,
                                     -1.391216687,
                                     1.788854382,
                                     0,
                                     -1.816306437};
  Tensor x = pat({1, 5, 2, 2}, 7, 11, 5, 2);
  expect_tensor(run1("LRN", {x},
                     attrs({{"size", int64_t{3}}, {"alpha", 0.1}, {"beta", 0.75}, {"bias", 2.0}})),
                {1, 5, 2, 2}, kLRN3);
  expect_tensor(run1("LRN", {x}, attrs({{"size", int64_t{4}}, {"alpha", 0.2}, {"beta", 0.5}})),
                {1, 5, 2, 2}, kLRN4);
  EXPECT_THROW(run1("LRN", {x}), Error);  // size is required
}

TEST(RefNNNorm, SoftmaxLogSoftmaxHardmax) {
  // torch: F.softmax(X, 1), F.log_softmax(X, -1); X=pat((2,3,4),7,11,5,2)
  const std::vector<double> kSoftmaxAx1 = {
      0.04398648029, 0.3661922163,  0.04398648029, 0.9184229668,  0.883492074,    0.03005888757,
      0.883492074,   0.07538874796, 0.07252144568, 0.6037488961,  0.07252144568,  0.006188285273,
      0.3661922163,  0.04398648029, 0.9184229668,  0.3661922163,  0.03005888757,  0.883492074,
      0.07538874796, 0.03005888757, 0.6037488961,  0.07252144568, 0.006188285273, 0.6037488961};
  const std::vector<double> kLogSoftmaxLast = {
      -5.231163696, -1.731163696, -3.731163696,  -0.2311636963, -1.828341289, -3.828341289,
      -0.328341289, -2.328341289, -3.668770408,  -0.1687704079, -2.168770408, -4.168770408,
      -1.828341289, -3.828341289, -0.328341289,  -2.328341289,  -3.668770408, -0.1687704079,
      -2.168770408, -4.168770408, -0.5654169752, -2.565416975,  -4.565416975, -1.065416975};
  Tensor x = pat({2, 3, 4}, 7, 11, 5, 2);
  expect_tensor(run1("Softmax", {x}, attrs({{"axis", int64_t{1}}})), {2, 3, 4}, kSoftmaxAx1);
  expect_tensor(run1("LogSoftmax", {x}), {2, 3, 4}, kLogSoftmaxLast);
  expect_tensor(run1("LogSoftmax", {x}, attrs({{"axis", int64_t{-1}}})), {2, 3, 4},
                kLogSoftmaxLast);
  // large values stay finite
  expect_tensor(run1("Softmax", {vals({2}, {1000, 1000})}), {2}, {0.5, 0.5});
  // Hardmax: first maximum wins on ties
  expect_tensor(run1("Hardmax", {vals({2, 3}, {1, 3, 3, -1, -2, -1})}), {2, 3}, {0, 1, 0, 1, 0, 0});
  expect_tensor(
      run1("Hardmax", {vals({2, 3}, {1, 3, 3, -1, -2, 4})}, attrs({{"axis", int64_t{0}}})), {2, 3},
      {1, 1, 0, 0, 0, 1});
  EXPECT_THROW(run1("Softmax", {x}, attrs({{"axis", int64_t{3}}})), Error);
}

TEST(RefNNNorm, LayerNormalizationAndLpNormalization) {
  // numpy: normalize X=pat((2,3,4),7,11,5,4) over the last two dims (axis 1), population
  // variance, eps 1e-5, * Scale=pat((4,),1,3,-1,2) (broadcast) + B=pat((3,4),5,7,3,8)
  const std::vector<double> kLN = {
      -1.06357177,    0.97613023,    -0.7136107432, 0.563766637,   0.5878312743,  -0.6512081768,
      1.865598389,    -0.3124025664, -0.2883379291, 1.026597911,   -0.5129092212, -0.3135717698,
      -0.07716081687, -0.4539835238, 2.355637176,   -0.1146185531, -0.1394494981, 1.370509311,
      -0.2062288681,  -1.051907234,  0.7102969194,  -0.3790680513, -2.768094912,  0.6728391831};
  const std::vector<double> kLNMean = {-0.1041666667, 0.04166666667};
  const std::vector<double> kLNInv = {1.201870725, 1.29966189};
  auto outs = run_op("LayerNormalization",
                     {pat({2, 3, 4}, 7, 11, 5, 4), pat({4}, 1, 3, -1, 2), pat({3, 4}, 5, 7, 3, 8)},
                     attrs({{"axis", int64_t{1}}}), 3);
  expect_tensor(outs[0], {2, 3, 4}, kLN);
  expect_tensor(outs[1], {2, 1, 1}, kLNMean);
  expect_tensor(outs[2], {2, 1, 1}, kLNInv);
  EXPECT_THROW(run1("LayerNormalization", {pat({2, 3, 4}, 7, 11, 5, 4), pat({3}, 1, 3, -1, 2)}),
               Error);
  // numpy: X / ||X||_p along axis 1, X=pat((2,3,2),7,11,5,4)
  const std::vector<double> kLp2 = {-0.9128709292, 0.3244428423,  -0.3651483717, 0.8111071057,
                                    0.1825741858,  -0.4866642634, 0.6963106238,  0,
                                    -0.6963106238, 0.5144957554,  -0.174077656,  -0.8574929257};
  const std::vector<double> kLp1 = {-0.625,       0.2, -0.25,         0.5,   0.125,         -0.3,
                                    0.4444444444, 0,   -0.4444444444, 0.375, -0.1111111111, -0.625};
  Tensor xp = pat({2, 3, 2}, 7, 11, 5, 4);
  expect_tensor(run1("LpNormalization", {xp}, attrs({{"axis", int64_t{1}}})), {2, 3, 2}, kLp2);
  expect_tensor(run1("LpNormalization", {xp}, attrs({{"axis", int64_t{1}}, {"p", int64_t{1}}})),
                {2, 3, 2}, kLp1);
}

// ---------------------------------------------------------------------------------------------
// Reductions, ArgMax/ArgMin, TopK
// ---------------------------------------------------------------------------------------------

TEST(RefNNReduce, AllReductionsAgainstNumpy) {
  // numpy on X = pat((2,3,4),7,11,5,4):
  // X.mean(1,keepdims) X.max((0,2)) X.min(-1,keepdims) X.sum(keepdims) prod(X+2, 2) |X|.sum(0)
  // sqrt((X**2).sum((1,2),keepdims)) (X**2).sum(1) log(exp(X).sum(2))
  const std::vector<double> kRMean_ax1_keep = {
      -0.6666666667, 0.1666666667, 0.08333333333, 0, 0.1666666667, 0.08333333333, 0,
      -0.08333333333};
  const std::vector<double> kRMax_ax02 = {1.25, 1, 0.75};
  const std::vector<double> kRMin_axm1 = {-1.25, -0.75, -1.25, -0.5, -1, -1.25};
  const std::vector<double> kRSum_all = {-0.75};
  const std::vector<double> kRProd_ax2 = {9.140625, 16.875, 3.609375, 27.421875, 7.5, 9.0234375};
  const std::vector<double> kRL1_ax0 = {1.75, 1, 1.75, 1.5, 1, 1.75, 1, 1, 1.75, 1, 1.5, 1.75};
  const std::vector<double> kRL2_ax12_keep = {2.90473751, 2.669269563};
  const std::vector<double> kRSS_ax1 = {2.625, 1.375, 1.3125, 3.125, 1.375, 1.3125, 3.125, 1.3125};
  const std::vector<double> kRLSE_ax2 = {1.797095157, 1.700132694, 1.266999725,
                                         1.950132694, 1.516999725, 1.575059047};
  Tensor x = pat({2, 3, 4}, 7, 11, 5, 4);
  Tensor x2 = x.clone();
  for (int64_t i = 0; i < x2.numel(); ++i) x2.set(i, x2.get(i) + 2);
  Attributes nokeep = attrs({{"keepdims", int64_t{0}}});
  expect_tensor(run1("ReduceMean", {x, i64s({1})}), {2, 1, 4}, kRMean_ax1_keep);
  expect_tensor(run1("ReduceMax", {x, i64s({0, -1})}, nokeep), {3}, kRMax_ax02);
  expect_tensor(run1("ReduceMin", {x, i64s({-1})}), {2, 3, 1}, kRMin_axm1);
  expect_tensor(run1("ReduceSum", {x}), {1, 1, 1}, kRSum_all);
  expect_tensor(run1("ReduceProd", {x2, i64s({2})}, nokeep), {2, 3}, kRProd_ax2);
  expect_tensor(run1("ReduceL1", {x, i64s({0})}, nokeep), {3, 4}, kRL1_ax0);
  expect_tensor(run1("ReduceL2", {x, i64s({2, 1})}), {2, 1, 1}, kRL2_ax12_keep);
  expect_tensor(run1("ReduceSumSquare", {x, i64s({1})}, nokeep), {2, 4}, kRSS_ax1);
  expect_tensor(run1("ReduceLogSumExp", {x, i64s({2})}, nokeep), {2, 3}, kRLSE_ax2);
}

TEST(RefNNReduce, EmptyAxesNoopIntegersAndErrors) {
  Tensor x = vals({2, 2}, {1, 2, 3, 4});
  Tensor empty = Tensor::from_vector<int64_t>({0}, {});
  // empty axes: reduce all (default) or identity (noop_with_empty_axes = 1)
  expect_tensor(run1("ReduceSum", {x, empty}, attrs({{"keepdims", int64_t{0}}})), {}, {10});
  expect_tensor(run1("ReduceSum", {x, empty}, attrs({{"noop_with_empty_axes", int64_t{1}}})),
                {2, 2}, {1, 2, 3, 4});
  expect_tensor(run1("ReduceMean", {x}, attrs({{"noop_with_empty_axes", int64_t{1}}})), {2, 2},
                {1, 2, 3, 4});
  // integer data keeps its dtype
  Tensor xi = Tensor::from_vector<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor s = run1("ReduceSum", {xi, i64s({1})}, attrs({{"keepdims", int64_t{0}}}));
  EXPECT_EQ(s.dtype(), DType::i64);
  expect_tensor(s, {2}, {6, 15}, 0);
  // large values: LogSumExp stays finite (log(2) + 1000)
  expect_tensor(
      run1("ReduceLogSumExp", {vals({2}, {1000, 1000})}, attrs({{"keepdims", int64_t{0}}})), {},
      {1000 + std::log(2.0)});
  // axes input must be a constant, in range, without duplicates
  EXPECT_THROW(run1("ReduceSum", {x, i64s({2})}), Error);
  EXPECT_THROW(run1("ReduceSum", {x, i64s({1, -1})}), Error);
  Graph g;
  int in = g.add_input("x", DType::f32, {2, 2});
  int ax = g.add_input("axes", DType::i64, {1});
  int n = g.add_node("ReduceSum", "r", {in, ax});
  g.outputs = g.nodes[static_cast<size_t>(n)].outputs;
  EXPECT_THROW(g.infer_shapes(), Error);
}

TEST(RefNNReduce, ArgMaxArgMin) {
  // numpy: X.argmax(1), X.argmin(2)[..., None] on X = pat((2,3,4),7,11,5,4) (no ties)
  const std::vector<double> kArgMax_ax1 = {1, 2, 1, 0, 2, 1, 0, 2};
  const std::vector<double> kArgMin_ax2_keep = {0, 1, 3, 1, 3, 2};
  Tensor x = pat({2, 3, 4}, 7, 11, 5, 4);
  Tensor am = run1("ArgMax", {x}, attrs({{"axis", int64_t{1}}, {"keepdims", int64_t{0}}}));
  EXPECT_EQ(am.dtype(), DType::i64);
  expect_tensor(am, {2, 4}, kArgMax_ax1, 0);
  expect_tensor(run1("ArgMin", {x}, attrs({{"axis", int64_t{-1}}})), {2, 3, 1}, kArgMin_ax2_keep,
                0);
  // ties: first index by default, last with select_last_index
  Tensor t = vals({5}, {1, 3, 0, 3, 0});
  expect_tensor(run1("ArgMax", {t}), {1}, {1}, 0);
  expect_tensor(run1("ArgMax", {t}, attrs({{"select_last_index", int64_t{1}}})), {1}, {3}, 0);
  expect_tensor(run1("ArgMin", {t}), {1}, {2}, 0);
  expect_tensor(run1("ArgMin", {t}, attrs({{"select_last_index", int64_t{1}}})), {1}, {4}, 0);
  EXPECT_THROW(run1("ArgMax", {t}, attrs({{"axis", int64_t{1}}})), Error);
}

TEST(RefNNReduce, TopK) {
  // rows [3, 1, 4, 1, 5] and [9, 2, 6, 5, 3]; ties (the two 1s) keep the lower index first
  Tensor x = vals({2, 5}, {3, 1, 4, 1, 5, 9, 2, 6, 5, 3});
  Tensor k3 = i64s({3});
  auto o = run_op("TopK", {x, k3}, {}, 2);
  expect_tensor(o[0], {2, 3}, {5, 4, 3, 9, 6, 5});
  expect_tensor(o[1], {2, 3}, {4, 2, 0, 0, 2, 3}, 0);
  o = run_op("TopK", {x, k3}, attrs({{"largest", int64_t{0}}}), 2);
  expect_tensor(o[0], {2, 3}, {1, 1, 3, 2, 3, 5});
  expect_tensor(o[1], {2, 3}, {1, 3, 0, 1, 4, 3}, 0);
  // along axis 0
  o = run_op("TopK", {x, i64s({1})}, attrs({{"axis", int64_t{0}}}), 2);
  expect_tensor(o[0], {1, 5}, {9, 2, 6, 5, 5});
  expect_tensor(o[1], {1, 5}, {1, 1, 1, 1, 0}, 0);
  EXPECT_THROW(run_op("TopK", {x, i64s({6})}, {}, 2), Error);
}

// ---------------------------------------------------------------------------------------------
// Resize / Upsample. "onnx ref" = interpolate_nd from onnx 1.12's
// onnx/backend/test/case/node/resize.py (the generator of the official node tests), called
// with float32 scales/roi; where noted, also checked equal to torch F.interpolate.
// ---------------------------------------------------------------------------------------------

Tensor f32s(const std::vector<double>& v) { return vals({static_cast<int64_t>(v.size())}, v); }

Tensor resize(const Tensor& x, const Tensor& roi, const Tensor& scales, const Tensor& sizes,
              const Attributes& a) {
  return run1("Resize", {x, roi, scales, sizes}, a);
}

TEST(RefNNResize, NearestModes) {
  Tensor x = pat({1, 1, 4, 5}, 7, 11, 5, 4), x2 = pat({1, 1, 3, 4}, 7, 11, 5, 4);
  // onnx ref: interpolate_nd(X, nearest_coeffs, scale_factors=[1,1,0.6,0.6])  (half_pixel,
  // round_prefer_floor)
  const std::vector<double> kRzNearestDown = {-1.25, -0.5, 0.25, -0.25, 0.5, 1.25};
  expect_tensor(resize(x, {}, f32s({1, 1, 0.6, 0.6}), {}, {}), {1, 1, 2, 3}, kRzNearestDown);
  // onnx ref: sizes [1,1,7,8], asymmetric, round_prefer_ceil
  const std::vector<double> kRzNearestCeilAsym = {
      -1.25, 0.5,   0.5,   -0.5,  -0.5,  1.25,  1.25,  1.25,  -1.25, 0.5,   0.5,   -0.5,
      -0.5,  1.25,  1.25,  1.25,  0.25,  -0.75, -0.75, 1,     1,     0,     0,     0,
      0.25,  -0.75, -0.75, 1,     1,     0,     0,     0,     -1,    0.75,  0.75,  -0.25,
      -0.25, -1.25, -1.25, -1.25, -1,    0.75,  0.75,  -0.25, -0.25, -1.25, -1.25, -1.25,
      -1,    0.75,  0.75,  -0.25, -0.25, -1.25, -1.25, -1.25};
  expect_tensor(resize(x2, {}, {}, i64s({1, 1, 7, 8}),
                       attrs({{"coordinate_transformation_mode", std::string("asymmetric")},
                              {"nearest_mode", std::string("round_prefer_ceil")}})),
                {1, 1, 7, 8}, kRzNearestCeilAsym);
  // onnx ref: sizes [1,1,5,6], align_corners, floor
  const std::vector<double> kRzNearestFloorAlign = {
      -1.25, -1.25, 0.5, 0.5,  -0.5, 1.25,  -1.25, -1.25, 0.5, 0.5, -0.5, 1.25, 0.25, 0.25,  -0.75,
      -0.75, 1,     0,   0.25, 0.25, -0.75, -0.75, 1,     0,   -1,  -1,   0.75, 0.75, -0.25, -1.25};
  expect_tensor(resize(x2, {}, {}, i64s({1, 1, 5, 6}),
                       attrs({{"coordinate_transformation_mode", std::string("align_corners")},
                              {"nearest_mode", std::string("floor")}})),
                {1, 1, 5, 6}, kRzNearestFloorAlign);
  // by hand, tf_half_pixel_for_nn: [1,2,3,4] -> 3: x_orig = (x+0.5)/0.75 = 0.67, 2, 3.33 -> [2,3,4]
  expect_tensor(
      resize(vals({1, 4}, {1, 2, 3, 4}), {}, {}, i64s({1, 3}),
             attrs({{"coordinate_transformation_mode", std::string("tf_half_pixel_for_nn")}})),
      {1, 3}, {2, 3, 4});
  // by hand, ceil + half_pixel, [1,2,3,4] -> 8 (scale 2): x_orig = -0.25, 0.25, 0.75, ... -> ceil
  // 0,1,1,2,2,3,3,4(->3) -> [1,2,2,3,3,4,4,4]
  expect_tensor(resize(vals({4}, {1, 2, 3, 4}), {}, f32s({2}), {},
                       attrs({{"nearest_mode", std::string("ceil")}})),
                {8}, {1, 2, 2, 3, 3, 4, 4, 4});
}

TEST(RefNNResize, LinearModes) {
  // onnx ref == torch bilinear(align_corners=False): X4=pat((1,2,3,4),7,11,5,4), scales [1,1,2,2]
  const std::vector<double> kRzLinearUp = {
      -1.25,   -0.8125,   0.0625,    0.25,      -0.25,     -0.0625,   0.8125,    1.25,
      -0.875,  -0.609375, -0.078125, 0.109375,  -0.046875, 0.140625,  0.671875,  0.9375,
      -0.125,  -0.203125, -0.359375, -0.171875, 0.359375,  0.546875,  0.390625,  0.3125,
      -0.0625, -0.140625, -0.296875, -0.109375, 0.421875,  0.4375,    -0.0625,   -0.3125,
      -0.6875, -0.421875, 0.109375,  0.296875,  0.140625,  -0.1875,   -0.6875,   -0.9375,
      -1,      -0.5625,   0.3125,    0.5,       0,         -0.5,      -1,        -1.25,
      0.5,     0.25,      -0.25,     -0.0625,   0.8125,    1,         0.5,       0.25,
      0.1875,  0.109375,  -0.046875, 0.140625,  0.671875,  0.6875,    0.1875,    -0.0625,
      -0.4375, -0.171875, 0.359375,  0.546875,  0.390625,  0.0625,    -0.4375,   -0.6875,
      -0.375,  -0.109375, 0.421875,  0.4375,    -0.0625,   -0.390625, -0.546875, -0.625,
      0.375,   0.296875,  0.140625,  -0.1875,   -0.6875,   -0.671875, -0.140625, 0.125,
      0.75,    0.5,       0,         -0.5,      -1,        -0.8125,   0.0625,    0.5};
  expect_tensor(resize(pat({1, 2, 3, 4}, 7, 11, 5, 4), {}, f32s({1, 1, 2, 2}), {},
                       attrs({{"mode", std::string("linear")}})),
                {1, 2, 6, 8}, kRzLinearUp);
  // onnx ref == torch bilinear(align_corners=True): sizes [1,1,5,7]
  const std::vector<double> kRzLinearAlign = {
      -1.25,  -0.375, 0.5,    0,      -0.5,  0.375,  1.25, -0.5, -0.3125, -0.125, 0.0625,  0.25,
      0.4375, 0.625,  0.25,   -0.25,  -0.75, 0.125,  1,    0.5,  0,       -0.375, -0.1875, 0,
      0.1875, 0.375,  -0.125, -0.625, -1,    -0.125, 0.75, 0.25, -0.25,   -0.75,  -1.25};
  Tensor x2 = pat({1, 1, 3, 4}, 7, 11, 5, 4);
  Attributes align = attrs({{"mode", std::string("linear")},
                            {"coordinate_transformation_mode", std::string("align_corners")}});
  expect_tensor(resize(x2, {}, {}, i64s({1, 1, 5, 7}), align), {1, 1, 5, 7}, kRzLinearAlign);
  // opset-18 axes: the same with sizes for axes [2, 3] only
  align.set("axes", I{2, -1});
  expect_tensor(resize(x2, {}, {}, i64s({5, 7}), align), {1, 1, 5, 7}, kRzLinearAlign);
  // onnx ref == torch bilinear: pytorch_half_pixel downsample to sizes [1,1,2,3]
  const std::vector<double> kRzLinearPyt = {-0.4166666667, -0.25, 0.375,
                                            -0.3333333333, 0.75,  1.110223025e-16};
  expect_tensor(
      resize(pat({1, 1, 4, 5}, 7, 11, 5, 4), {}, {}, i64s({1, 1, 2, 3}),
             attrs({{"mode", std::string("linear")},
                    {"coordinate_transformation_mode", std::string("pytorch_half_pixel")}})),
      {1, 1, 2, 3}, kRzLinearPyt);
  // onnx ref == torch trilinear: X7=pat((1,1,2,3,2),7,11,5,4) -> sizes [1,1,3,5,4]
  const std::vector<double> kRzTrilinear = {
      -1.25,  -0.8125,  0.0625,  0.5,    -0.95,  -0.5125,  0.3625,  0.8,   -0.5,  -0.0625,
      0.8125, 1.25,     -0.05,   -0.025, 0.025,  0.05,     0.25,    0,     -0.5,  -0.75,
      -0.125, -0.03125, 0.15625, 0.25,   -0.375, -0.14375, 0.31875, 0.55,  -0.75, -0.3125,
      0.5625, 1,        -0.3,    -0.275, -0.225, -0.2,     0,       -0.25, -0.75, -1,
      1,      0.75,     0.25,    0,      0.2,    0.225,    0.275,   0.3,   -1,    -0.5625,
      0.3125, 0.75,     -0.55,   -0.525, -0.475, -0.45,    -0.25,   -0.5,  -1,    -1.25};
  expect_tensor(resize(pat({1, 1, 2, 3, 2}, 7, 11, 5, 4), {}, {}, i64s({1, 1, 3, 5, 4}),
                       attrs({{"mode", std::string("linear")}})),
                {1, 1, 3, 5, 4}, kRzTrilinear);
  // onnx ref: tf_crop_and_resize, roi [0,0,0.4,0.6, 1,1,1.2,1.7], sizes [1,1,3,3], extrapolation 10
  const std::vector<double> kRzCrop = {-0.3000000864, 10, 10, 0.2999999672, 10, 10, 10, 10, 10};
  expect_tensor(resize(pat({1, 1, 4, 5}, 7, 11, 5, 4), f32s({0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7}), {},
                       i64s({1, 1, 3, 3}),
                       attrs({{"mode", std::string("linear")},
                              {"coordinate_transformation_mode", std::string("tf_crop_and_resize")},
                              {"extrapolation_value", 10.0}})),
                {1, 1, 3, 3}, kRzCrop);
}

TEST(RefNNResize, CubicAndPolicies) {
  Tensor x = pat({1, 1, 4, 5}, 7, 11, 5, 4);
  // onnx ref == torch bicubic(align_corners=False): sizes [1,1,7,9], A = -0.75
  const std::vector<double> kRzCubic = {
      -1.476048565,   -0.6931267547, 0.3553986226,   0.02635785722, -0.5496082362, 0.6367154537,
      1.489445484,    0.7134826153,  0.07205962467,  -1.303868607,  -0.4412590433, 0.7093408939,
      0.4276823145,   -0.3603771866, 0.007093728879, 0.5003202523,  0.4546063465,  0.3832754442,
      -0.9909513105,  -0.1481751431, 0.9770195703,   0.8446166808,  -0.0517037172, -0.7822388766,
      -0.8034681355,  0.1500900956,  0.8588727819,   -0.537808642,  -0.4027777778, -0.1841563786,
      0.1811985597,   0.25,          -0.6596364883,  -0.8824052641, 0.474681713,   1.486239712,
      -0.08466597342, -0.6573804125, -1.345332328,   -0.5376078985, 0.5517037172,  -0.02007628816,
      -0.3677640479,  0.5874129414,  1.304936922,    0.2282513231,  -0.3642965123, -1.077653651,
      -0.2569379144,  0.8603771866,  0.4623920078,   -0.211252472,  -0.2383145719, -0.208925722,
      0.4004312814,   -0.1124288009, -0.7237113798,  0.04480713876, 1.049608236,   0.7621780543,
      -0.1332184237,  -0.8780820612, -1.351569202};
  expect_tensor(resize(x, {}, {}, i64s({1, 1, 7, 9}), attrs({{"mode", std::string("cubic")}})),
                {1, 1, 7, 9}, kRzCubic);
  // onnx ref: A = -0.5, exclude_outside, asymmetric, scales [1,1,0.8,1.4]
  const std::vector<double> kRzCubicExcl = {
      -1.25,         0.1097733961,  0.1195334877,  -0.3702623401,  1.120262458,  0.7200271604,
      -0.6250000093, 0.2837841346,  0.530942526,   -0.03401746313, -1.059294171, 0.1095294771,
      0.04411762643, -0.9469672191, -0.3605727661, 0.7927456329,   -0.105470836, -0.07380981825};
  expect_tensor(resize(x, {}, f32s({1, 1, 0.8, 1.4}), {},
                       attrs({{"mode", std::string("cubic")},
                              {"cubic_coeff_a", -0.5},
                              {"exclude_outside", int64_t{1}},
                              {"coordinate_transformation_mode", std::string("asymmetric")}})),
                {1, 1, 3, 6}, kRzCubicExcl);
  // ONNX spec example (resize_downsample_scales_linear_align_corners): [[1,2,3,4],[5,6,7,8]],
  // scales [1,1,0.6,0.6] -> 1x2; the column coordinate uses the unrounded length 4*0.6 = 2.4:
  // x=1 -> 1*3/1.4 = 2.142857 -> 3.142857
  expect_tensor(resize(vals({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), {}, f32s({1, 1, 0.6, 0.6}), {},
                       attrs({{"mode", std::string("linear")},
                              {"coordinate_transformation_mode", std::string("align_corners")}})),
                {1, 1, 1, 2}, {1, 1 + 3 / 1.4});
  // keep_aspect_ratio_policy: sizes [8,8] for a 4x5 image: not_larger scale min(2, 1.6) = 1.6 ->
  // round(6.4), round(8) = 6 x 8; not_smaller scale 2 -> 8 x 10
  Attributes pol =
      attrs({{"axes", I{2, 3}}, {"keep_aspect_ratio_policy", std::string("not_larger")}});
  EXPECT_EQ(resize(x, {}, {}, i64s({8, 8}), pol).shape(), (Shape{1, 1, 6, 8}));
  pol.set("keep_aspect_ratio_policy", std::string("not_smaller"));
  EXPECT_EQ(resize(x, {}, {}, i64s({8, 8}), pol).shape(), (Shape{1, 1, 8, 10}));
  // errors: both / neither of scales and sizes, wrong lengths, unknown modes
  EXPECT_THROW(resize(x, {}, f32s({1, 1, 2, 2}), i64s({1, 1, 8, 10}), {}), Error);
  EXPECT_THROW(resize(x, {}, {}, {}, {}), Error);
  EXPECT_THROW(resize(x, {}, f32s({2, 2}), {}, {}), Error);
  EXPECT_THROW(resize(x, {}, f32s({1, 1, 2, 2}), {}, attrs({{"mode", std::string("area")}})),
               Error);
  EXPECT_THROW(resize(x, {}, f32s({1, 1, 2, 2}), {},
                      attrs({{"coordinate_transformation_mode", std::string("corners")}})),
               Error);
  // an empty scales tensor with sizes given is fine (opset 11-12 models)
  EXPECT_EQ(resize(x, {}, Tensor(DType::f32, {0}), i64s({1, 1, 2, 2}), {}).shape(),
            (Shape{1, 1, 2, 2}));
}

TEST(RefNNResize, Upsample) {
  // ONNX spec example: nearest, scales [1,1,2,3] repeats
  Tensor x = vals({1, 1, 2, 2}, {1, 2, 3, 4});
  expect_tensor(run1("Upsample", {x, f32s({1, 1, 2, 3})}), {1, 1, 4, 6},
                {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  // opset-7 form: scales as an attribute
  expect_tensor(run1("Upsample", {x}, attrs({{"scales", std::vector<double>{1, 1, 1, 2}}})),
                {1, 1, 2, 4}, {1, 1, 2, 2, 3, 3, 4, 4});
  // onnx ref: linear, asymmetric, scales [1,1,2,1.5] on pat((1,1,3,4),7,11,5,4)
  const std::vector<double> kUpLinear = {-1.25,
                                         -0.08333333333,
                                         0.1666666667,
                                         -0.5,
                                         0.6666666667,
                                         1.25,
                                         -0.5,
                                         -0.25,
                                         0,
                                         0.25,
                                         0.5,
                                         0.625,
                                         0.25,
                                         -0.4166666667,
                                         -0.1666666667,
                                         1,
                                         0.3333333333,
                                         0,
                                         -0.375,
                                         -0.125,
                                         0.125,
                                         0.375,
                                         -0.2916666667,
                                         -0.625,
                                         -1,
                                         0.1666666667,
                                         0.4166666667,
                                         -0.25,
                                         -0.9166666667,
                                         -1.25,
                                         -1,
                                         0.1666666667,
                                         0.4166666667,
                                         -0.25,
                                         -0.9166666667,
                                         -1.25};
  expect_tensor(run1("Upsample", {pat({1, 1, 3, 4}, 7, 11, 5, 4), f32s({1, 1, 2, 1.5})},
                     attrs({{"mode", std::string("linear")}})),
                {1, 1, 6, 6}, kUpLinear);
}

TEST(RefNNNorm, MeanVarianceNormalization) {
  // numpy, ONNX function body: (X - mean) / (sqrt(mean(X^2) - mean^2) + 1e-9), statistics over
  // axes (0,2,3) (default) and (1,); X = pat((2,3,2,2),7,11,5,4)
  const std::vector<double> kMVN = {-1.738636574,
                                    0.3779644726,
                                    -0.8315218396,
                                    1.285079207,
                                    0.3891039305,
                                    -0.9943767113,
                                    1.426714412,
                                    0.04323377006,
                                    -0.9370425702,
                                    1.249390094,
                                    0,
                                    -1.249390094,
                                    0.3779644726,
                                    -0.8315218396,
                                    1.285079207,
                                    0.07559289451,
                                    -0.9943767113,
                                    1.426714412,
                                    0.04323377006,
                                    -1.340246872,
                                    1.249390094,
                                    0,
                                    -1.249390094,
                                    0.9370425702};
  const std::vector<double> kMVN1 = {-0.8890008876,
                                     0.5080005072,
                                     -0.8890008876,
                                     1.22474487,
                                     1.397001395,
                                     -1.397001395,
                                     1.397001395,
                                     0,
                                     -0.5080005072,
                                     0.8890008876,
                                     -0.5080005072,
                                     -1.22474487,
                                     0.5080005072,
                                     -0.8890008876,
                                     1.22474487,
                                     0.5080005072,
                                     -1.397001395,
                                     1.397001395,
                                     0,
                                     -1.397001395,
                                     0.8890008876,
                                     -0.5080005072,
                                     -1.22474487,
                                     0.8890008876};
  Tensor x = pat({2, 3, 2, 2}, 7, 11, 5, 4);
  expect_tensor(run1("MeanVarianceNormalization", {x}), {2, 3, 2, 2}, kMVN);
  expect_tensor(run1("MeanVarianceNormalization", {x}, attrs({{"axes", I{1}}})), {2, 3, 2, 2},
                kMVN1);
}
