// NaN and Inf through the cuda backend (issue 19 item 2): fused Relu/Relu6/Clip in the own
// convolution kernels, in cuDNN's fused conv-bias-activation and in the GEMM epilogue, and the
// Celu/ThresholdedRelu kernels keep NaN where the reference backend keeps it (Relu(NaN) = NaN,
// as ONNX Runtime and PyTorch). Inputs hold NaN, -inf and inf among random values; the
// reference backend's result is the expectation (closeness() fails on a NaN mismatch).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "anvil/session.h"
#include "backend/cuda/cuda_util.h"
#include "unit/cpu_test_util.h"

namespace anvil::testing {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (anvil::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"

/// Random values in [-1, 1] with NaN, -inf, inf at every 7th, 11th and 13th element.
Tensor with_specials(const Shape& s, uint32_t seed) {
  Tensor t = random_tensor(s, seed);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i % 7 == 3) p[i] = std::numeric_limits<float>::quiet_NaN();
    if (i % 11 == 5) p[i] = -std::numeric_limits<float>::infinity();
    if (i % 13 == 6) p[i] = std::numeric_limits<float>::infinity();
  }
  return t;
}

int nan_count(const Tensor& t) {
  int n = 0;
  for (int64_t i = 0; i < t.numel(); ++i) n += std::isnan(t.data<float>()[i]) ? 1 : 0;
  return n;
}

/// Runs tg on reference and cuda; every output equal within 1e-4 and NaN exactly where the
/// reference has NaN. Returns the number of NaN in the first output (the test checks > 0).
int expect_nan_like_reference(const TestGraph& tg) {
  SessionOptions ro;
  ro.backend = "reference";
  SessionOptions co = ro;
  co.backend = "cuda";
  Session ref(tg.g, ro), gpu(tg.g, co);
  auto want = ref.run(tg.feed);
  auto got = gpu.run(tg.feed);
  for (const auto& [name, w] : want) {
    EXPECT_LE(closeness(got.at(name), w, 1e-4, 1e-4), 1.0) << name;
  }
  return nan_count(want.begin()->second);
}

struct ConvNaNCase {
  const char* name;
  Shape x;
  int64_t m, k;
  const char* act;  // "Relu" or "Clip" (0..6)
};

void PrintTo(const ConvNaNCase& c, std::ostream* os) { *os << c.name; }

class CudaNaNConv : public ::testing::TestWithParam<ConvNaNCase> {};

TEST_P(CudaNaNConv, FusedActivationKeepsNaN) {
  SKIP_WITHOUT_GPU();
  const ConvNaNCase& c = GetParam();
  TestGraph tg;
  int x = tg.input("x", c.x);
  tg.feed["x"] = with_specials(c.x, 7);
  int w = tg.weight("w", {c.m, c.x[1], c.k, c.k}, 0.2f);
  int b = tg.weight("b", {c.m});
  const int64_t p = c.k / 2;
  int y = tg.node("Conv", {x, w, b}, attrs({{"pads", std::vector<int64_t>{p, p, p, p}}}));
  int r = std::string(c.act) == "Relu"
              ? tg.node("Relu", {y})
              : tg.node("Clip", {y, tg.constant("lo", Tensor::scalar<float>(0.f)),
                                 tg.constant("hi", Tensor::scalar<float>(6.f))});
  tg.output(r);
  EXPECT_GT(expect_nan_like_reference(tg), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Paths, CudaNaNConv,
    ::testing::Values(ConvNaNCase{"pointwise_small", {1, 4, 6, 6}, 8, 1, "Relu"},
                      ConvNaNCase{"k3_small", {1, 8, 9, 9}, 8, 3, "Clip"},
                      ConvNaNCase{"k3_wide", {2, 64, 14, 14}, 64, 3, "Relu"},
                      ConvNaNCase{"k1_wide", {1, 128, 7, 7}, 256, 1, "Relu"}),
    [](const ::testing::TestParamInfo<ConvNaNCase>& i) { return std::string(i.param.name); });

TEST(CudaNaN, GemmBiasReluKeepsNaN) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {4, 64});
  tg.feed["x"] = with_specials({4, 64}, 3);
  int y = tg.node("Gemm", {x, tg.weight("w", {64, 32}), tg.weight("c", {32})});
  int r = tg.node("Relu", {y});
  tg.output(r);
  EXPECT_GT(expect_nan_like_reference(tg), 0);
}

TEST(CudaNaN, CeluAndThresholdedReluKeepNaN) {
  SKIP_WITHOUT_GPU();
  for (const char* op : {"Celu", "ThresholdedRelu", "Relu", "LeakyRelu", "HardSigmoid"}) {
    TestGraph tg;
    int x = tg.input("x", {3, 37});
    tg.feed["x"] = with_specials({3, 37}, 5);
    tg.output(tg.node(op, {x}));
    EXPECT_GT(expect_nan_like_reference(tg), 0) << op;
  }
}

TEST(CudaNaN, MaxPoolKeepsNaN) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {1, 3, 8, 8});
  tg.feed["x"] = with_specials({1, 3, 8, 8}, 9);
  tg.output(tg.node("MaxPool", {x},
                    attrs({{"kernel_shape", std::vector<int64_t>{2, 2}},
                           {"strides", std::vector<int64_t>{2, 2}}})));
  EXPECT_GT(expect_nan_like_reference(tg), 0);
}

}  // namespace
}  // namespace anvil::testing
