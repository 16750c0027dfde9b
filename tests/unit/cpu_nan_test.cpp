// NaN and Inf through the cpu backend (issue 19 item 2): Relu, standalone and fused as a
// oneDNN post-op (after Conv, Add, BatchNormalization), propagates NaN as ONNX Runtime and
// PyTorch do (Relu(NaN) = NaN, Relu(-inf) = 0, Relu(inf) = inf). Inputs holding NaN/Inf run
// on the executable's NaN-safe variant (src/backend/cpu/executor.cpp, run()); finite inputs
// keep oneDNN's max(x, 0). Expectations by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cpu_test_util.h"

namespace anvil::testing {
namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

// 64 values (a 1x1x8x8 image): NaN, -inf, inf, -2, 3, 0, -0.5, 7 repeated.
Tensor special() {
  const float v[8] = {kNaN, -kInf, kInf, -2.f, 3.f, 0.f, -0.5f, 7.f};
  Tensor t(DType::f32, {1, 1, 8, 8});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v[i % 8];
  return t;
}

// Relu of special() by hand (x + 0 for the Add case: the same values).
void expect_relu_of_special(const Tensor& y, const std::string& what) {
  ASSERT_EQ(y.numel(), 64) << what;
  const float want[8] = {kNaN, 0.f, kInf, 0.f, 3.f, 0.f, 0.f, 7.f};
  for (int64_t i = 0; i < 64; ++i) {
    const float got = y.data<float>()[i], w = want[i % 8];
    if (std::isnan(w))
      EXPECT_TRUE(std::isnan(got)) << what << " element " << i << " is " << got;
    else
      EXPECT_EQ(got, w) << what << " element " << i;
  }
}

Tensor run_cpu(const TestGraph& tg, const std::string& out) {
  SessionOptions o;
  o.backend = "cpu";
  Session s(tg.g, o);
  return s.run(tg.feed).at(out);
}

TEST(CpuNaN, StandaloneRelu) {
  TestGraph tg;
  int x = tg.input("x", {1, 1, 8, 8});
  tg.feed["x"] = special();
  int y = tg.node("Relu", {x});
  tg.output(y);
  expect_relu_of_special(run_cpu(tg, tg.name(y)), "Relu");
}

TEST(CpuNaN, ReluFusedIntoConv) {
  TestGraph tg;
  int x = tg.input("x", {1, 1, 8, 8});
  tg.feed["x"] = special();
  Tensor w(DType::f32, {1, 1, 1, 1});
  w.data<float>()[0] = 1.f;
  int y = tg.node("Conv", {x, tg.constant("w", w)});
  int r = tg.node("Relu", {y});
  tg.output(r);
  EXPECT_NE(join(cpu_steps(tg)).find("Conv+Relu"), std::string::npos) << join(cpu_steps(tg));
  expect_relu_of_special(run_cpu(tg, tg.name(r)), "Conv+Relu");
}

TEST(CpuNaN, ReluAfterWinogradConv) {
  // 3x3 stride 1 with 16 channels: the Winograd kernel for finite inputs, whose only relu
  // post-op is max(x, 0); NaN inputs go to the NaN-safe variant, which must keep NaN.
  TestGraph tg;
  int x = tg.input("x", {1, 16, 8, 8});
  for (int64_t i = 0; i < 64; ++i) tg.feed["x"].data<float>()[i] = kNaN;  // channel 0
  Attributes a;
  a.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  int r = tg.node("Relu", {tg.node("Conv", {x, tg.weight("w", {16, 16, 3, 3})}, a)});
  tg.output(r);
  EXPECT_NE(join(cpu_steps(tg)).find("Conv+Relu"), std::string::npos) << join(cpu_steps(tg));
  const Tensor y = run_cpu(tg, tg.name(r));
  int64_t nans = 0;
  for (int64_t i = 0; i < y.numel(); ++i) nans += std::isnan(y.data<float>()[i]);
  EXPECT_EQ(nans, y.numel());  // every output reads channel 0 (NaN) at least once
}

TEST(CpuNaN, ReluFusedIntoAddAndBatchNorm) {
  {
    TestGraph tg;
    int x = tg.input("x", {1, 1, 8, 8});
    tg.feed["x"] = special();
    int z = tg.constant("z", Tensor(DType::f32, {1, 1, 8, 8}));
    int r = tg.node("Relu", {tg.node("Add", {x, z})});
    tg.output(r);
    EXPECT_NE(join(cpu_steps(tg)).find("Add+Relu"), std::string::npos) << join(cpu_steps(tg));
    expect_relu_of_special(run_cpu(tg, tg.name(r)), "Add+Relu");
  }
  {
    TestGraph tg;
    int x = tg.input("x", {1, 1, 8, 8});
    tg.feed["x"] = special();
    auto one = [&](const std::string& n, float v) {
      Tensor t(DType::f32, {1});
      t.data<float>()[0] = v;
      return tg.constant(n, t);
    };
    Attributes a;
    a.set("epsilon", 0.0);
    int b = tg.node("BatchNormalization", {x, one("s", 1), one("b", 0), one("m", 0), one("v", 1)}, a);
    int r = tg.node("Relu", {b});
    tg.output(r);
    SessionOptions o;
    o.backend = "cpu";
    o.optimize = false;  // keep the BatchNormalization node (fold_batchnorm has no producer)
    Session s(tg.g, o);
    expect_relu_of_special(s.run(tg.feed).at(tg.name(r)), "BatchNormalization+Relu");
  }
}

TEST(CpuNaN, FiniteInputsAfterNaNInputsStillMatchReference) {
  // The same session serves both variants; the finite run must not be affected.
  TestGraph tg;
  int x = tg.input("x", {1, 16, 8, 8});
  Attributes a;
  a.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  int r = tg.node("Relu", {tg.node("Conv", {x, tg.weight("w", {16, 16, 3, 3})}, a)});
  tg.output(r);
  SessionOptions ro, co;
  ro.backend = "reference";
  co.backend = "cpu";
  Session ref(tg.g, ro), cpu(tg.g, co);
  const auto want = ref.run(tg.feed).at(tg.name(r));
  auto bad = tg.feed;
  bad["x"] = Tensor(DType::f32, {1, 16, 8, 8});
  bad["x"].data<float>()[0] = kNaN;
  const Tensor y_bad = cpu.run(bad).at(tg.name(r));
  EXPECT_TRUE(std::isnan(y_bad.data<float>()[0]));
  EXPECT_LE(closeness(cpu.run(tg.feed).at(tg.name(r)), want, 1e-4, 1e-4), 1.0);
}

}  // namespace
}  // namespace anvil::testing
