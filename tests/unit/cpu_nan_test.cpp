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
    int b =
        tg.node("BatchNormalization", {x, one("s", 1), one("b", 0), one("m", 0), one("v", 1)}, a);
    int r = tg.node("Relu", {b});
    tg.output(r);
    SessionOptions o;
    o.backend = "cpu";
    o.optimize = false;  // keep the BatchNormalization node (fold_batchnorm has no producer)
    Session s(tg.g, o);
    expect_relu_of_special(s.run(tg.feed).at(tg.name(r)), "BatchNormalization+Relu");
  }
}

TEST(CpuNaN, ClipMaxMinAndMaxPoolKeepNaN) {
  // oneDNN's clip, binary max/min and max pooling turn NaN into a number; with NaN inputs
  // these run on their reference kernels. Max pooling: the NaN is the first element of its
  // window (the reference's NaN rule for other positions is tested with the reference).
  auto scalar = [](float v) { return Tensor::scalar(v); };
  TestGraph tg;
  int x = tg.input("x", {1, 1, 8, 8});
  tg.feed["x"] = special();
  int lo = tg.constant("lo", scalar(0.f)), hi = tg.constant("hi", scalar(6.f));
  int clip = tg.node("Clip", {x, lo, hi});
  int mx = tg.node("Max", {x, tg.constant("z", Tensor(DType::f32, {1, 1, 8, 8}))});
  int mn = tg.node("Min", {x, tg.constant("z2", Tensor(DType::f32, {1, 1, 8, 8}))});
  int mp = tg.node("MaxPool", {x},
                   attrs({{"kernel_shape", std::vector<int64_t>{2, 2}},
                          {"strides", std::vector<int64_t>{2, 2}}}));
  for (int v : {clip, mx, mn, mp}) tg.output(v);
  SessionOptions o;
  o.backend = "cpu";
  Session s(tg.g, o);
  auto out = s.run(tg.feed);
  const float want_clip[8] = {kNaN, 0.f, 6.f, 0.f, 3.f, 0.f, 0.f, 6.f};
  const float want_max[8] = {kNaN, 0.f, kInf, 0.f, 3.f, 0.f, 0.f, 7.f};
  const float want_min[8] = {kNaN, -kInf, 0.f, -2.f, 0.f, 0.f, -0.5f, 0.f};
  auto check = [](const Tensor& y, const float* want, int64_t n, const std::string& what) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = y.data<float>()[i], w = want[i % 8];
      if (std::isnan(w))
        EXPECT_TRUE(std::isnan(g)) << what << " " << i;
      else
        EXPECT_EQ(g, w) << what << " " << i;
    }
  };
  check(out.at(tg.name(clip)), want_clip, 64, "Clip");
  check(out.at(tg.name(mx)), want_max, 64, "Max");
  check(out.at(tg.name(mn)), want_min, 64, "Min");
  // 2x2 windows, stride 2, over rows [NaN, -inf, inf, -2, 3, 0, -0.5, 7]: NaN, inf, 3, 7.
  const Tensor& p = out.at(tg.name(mp));
  ASSERT_EQ(p.numel(), 16);
  for (int64_t r = 0; r < 4; ++r) {
    EXPECT_TRUE(std::isnan(p.data<float>()[r * 4 + 0])) << r;
    EXPECT_EQ(p.data<float>()[r * 4 + 1], kInf) << r;
    EXPECT_EQ(p.data<float>()[r * 4 + 2], 3.f) << r;
    EXPECT_EQ(p.data<float>()[r * 4 + 3], 7.f) << r;
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
