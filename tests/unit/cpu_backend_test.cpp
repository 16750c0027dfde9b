// The cpu backend (oneDNN) against the reference backend, op by op, on random shapes: odd
// sizes, groups, depthwise, dilations, asymmetric pads, ceil-mode pooling, count_include_pad,
// broadcasting binaries, fused post-ops, residual sum fusion, kept tensors in blocked layout,
// reference-kernel fallbacks inside a blocked chain. Each case also checks which steps ran on
// oneDNN (no " (ref)" fallback where the op is meant to run on oneDNN).
#include <gtest/gtest.h>

#include <algorithm>

#include "cpu_test_util.h"

namespace anvil::testing {
namespace {

using I = std::vector<int64_t>;

// ---- Conv ---------------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  Shape x;  // N, C, spatial...
  int64_t M;
  I k, strides, pads, dil;
  int64_t group;
  bool bias;
  std::string act;
};
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

class CpuConv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(CpuConv, MatchesReference) {
  const ConvCase& c = GetParam();
  TestGraph tg;
  int x = tg.input("x", c.x);
  Shape ws{c.M, c.x[1] / c.group};
  ws.insert(ws.end(), c.k.begin(), c.k.end());
  std::vector<int> ins{x, tg.weight("w", ws, 0.5f)};
  if (c.bias) ins.push_back(tg.weight("b", {c.M}));
  Attributes a =
      attrs({{"strides", c.strides}, {"pads", c.pads}, {"dilations", c.dil}, {"group", c.group}});
  int y = tg.node("Conv", ins, a);
  if (!c.act.empty()) {
    if (c.act == "Clip6")
      y = tg.node("Clip", {y, tg.constant("lo", Tensor::scalar<float>(0.f)),
                           tg.constant("hi", Tensor::scalar<float>(6.f))});
    else if (c.act == "LeakyRelu")
      y = tg.node(c.act, {y}, attrs({{"alpha", 0.1}}));
    else
      y = tg.node(c.act, {y});
  }
  tg.output(y);
  expect_cpu_matches_reference(tg);
  auto steps = cpu_steps(tg);
  EXPECT_FALSE(has_fallback(steps)) << join(steps);
}

const ConvCase kConvCases[] = {
    {"plain3x3", {1, 3, 13, 11}, 8, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true, ""},
    {"odd_channels", {2, 5, 9, 7}, 7, {3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, true, "Relu"},
    {"stride2_asym_pads",
     {1, 16, 15, 14},
     32,
     {3, 3},
     {2, 2},
     {0, 1, 2, 1},
     {1, 1},
     1,
     true,
     "Relu"},
    {"dilation2", {1, 8, 17, 17}, 16, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 1, false, ""},
    {"dilation_rect_kernel",
     {1, 6, 12, 20},
     10,
     {2, 5},
     {1, 2},
     {1, 0, 0, 3},
     {3, 1},
     1,
     true,
     "Tanh"},
    {"groups2", {1, 8, 10, 10}, 12, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 2, true, "Sigmoid"},
    {"groups3_odd", {1, 9, 7, 9}, 6, {3, 1}, {2, 1}, {1, 0, 1, 0}, {1, 1}, 3, true, ""},
    {"depthwise", {1, 32, 14, 14}, 32, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 32, true, "Clip6"},
    {"depthwise_s2_mult2",
     {1, 16, 15, 15},
     32,
     {3, 3},
     {2, 2},
     {1, 1, 1, 1},
     {1, 1},
     16,
     true,
     "Relu"},
    {"pointwise", {1, 24, 7, 7}, 40, {1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, false, "LeakyRelu"},
    {"big_kernel_s2", {1, 3, 32, 32}, 16, {7, 7}, {2, 2}, {3, 3, 3, 3}, {1, 1}, 1, true, "Relu"},
    {"elu", {1, 4, 6, 6}, 4, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true, "Elu"},
    {"hardsigmoid", {1, 4, 6, 6}, 4, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true, "HardSigmoid"},
    {"conv1d", {2, 6, 19}, 8, {3}, {2}, {1, 2}, {1}, 1, true, "Relu"},
    {"conv3d",
     {1, 4, 5, 6, 7},
     8,
     {3, 3, 3},
     {1, 1, 1},
     {1, 1, 1, 0, 1, 1},
     {1, 1, 1},
     1,
     true,
     ""},
    {"batch3", {3, 16, 8, 8}, 16, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true, "Relu"},
};
INSTANTIATE_TEST_SUITE_P(Cases, CpuConv, ::testing::ValuesIn(kConvCases),
                         [](const auto& i) { return i.param.name; });

// ---- ConvTranspose ------------------------------------------------------------------------

struct DeconvCase {
  std::string name;
  Shape x;
  int64_t M;  // output channels
  I k, strides, pads, dil, out_pad;
  int64_t group;
  bool bias;
};
void PrintTo(const DeconvCase& c, std::ostream* os) { *os << c.name; }
class CpuConvTranspose : public ::testing::TestWithParam<DeconvCase> {};

TEST_P(CpuConvTranspose, MatchesReference) {
  const DeconvCase& c = GetParam();
  TestGraph tg;
  int x = tg.input("x", c.x);
  Shape ws{c.x[1], c.M / c.group};
  ws.insert(ws.end(), c.k.begin(), c.k.end());
  std::vector<int> ins{x, tg.weight("w", ws, 0.5f)};
  if (c.bias) ins.push_back(tg.weight("b", {c.M}));
  int y = tg.node("ConvTranspose", ins,
                  attrs({{"strides", c.strides},
                         {"pads", c.pads},
                         {"dilations", c.dil},
                         {"group", c.group},
                         {"output_padding", c.out_pad}}));
  tg.output(tg.node("Relu", {y}));
  expect_cpu_matches_reference(tg);
  EXPECT_FALSE(has_fallback(cpu_steps(tg)));
}

const DeconvCase kDeconvCases[] = {
    {"s2", {1, 8, 5, 6}, 4, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, {0, 0}, 1, true},
    {"s2_outpad_asym", {1, 6, 5, 5}, 5, {4, 3}, {2, 2}, {1, 0, 2, 1}, {1, 1}, {1, 1}, 1, true},
    {"groups2_dil", {2, 4, 6, 5}, 6, {3, 3}, {1, 2}, {0, 1, 0, 1}, {2, 1}, {0, 1}, 2, false},
    {"depthwise_s2", {1, 16, 7, 7}, 16, {2, 2}, {2, 2}, {0, 0, 0, 0}, {1, 1}, {0, 0}, 16, true},
    {"deconv1d", {1, 3, 9}, 4, {5}, {3}, {2, 1}, {1}, {0}, 1, true},
};
INSTANTIATE_TEST_SUITE_P(Cases, CpuConvTranspose, ::testing::ValuesIn(kDeconvCases),
                         [](const auto& i) { return i.param.name; });

// ---- Pooling ------------------------------------------------------------------------------

struct PoolCase {
  std::string name, op;
  Shape x;
  I k, strides, pads, dil;
  int64_t ceil, include_pad;
  bool expect_dnnl = true;
};
void PrintTo(const PoolCase& c, std::ostream* os) { *os << c.name; }
class CpuPool : public ::testing::TestWithParam<PoolCase> {};

TEST_P(CpuPool, MatchesReference) {
  const PoolCase& c = GetParam();
  TestGraph tg;
  int x = tg.input("x", c.x);
  // Behind a conv, so that the pool reads a blocked layout.
  Shape ws{c.x[1], c.x[1]};
  for (size_t i = 2; i < c.x.size(); ++i) ws.push_back(1);
  int y = tg.node("Conv", {x, tg.weight("w", ws, 0.5f)});
  Attributes a = attrs(
      {{"kernel_shape", c.k}, {"strides", c.strides}, {"pads", c.pads}, {"ceil_mode", c.ceil}});
  if (c.op == "AveragePool") a.set("count_include_pad", c.include_pad);
  if (c.op == "MaxPool") a.set("dilations", c.dil);
  tg.output(tg.node(c.op, {y}, a));
  expect_cpu_matches_reference(tg);
  EXPECT_EQ(has_fallback(cpu_steps(tg)), !c.expect_dnnl) << join(cpu_steps(tg));
}

const PoolCase kPoolCases[] = {
    {"max3s2", "MaxPool", {1, 16, 14, 14}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 0},
    {"max3s2_ceil", "MaxPool", {1, 16, 13, 13}, {3, 3}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, 0},
    {"max_ceil_odd", "MaxPool", {2, 5, 10, 9}, {2, 3}, {2, 2}, {0, 1, 0, 0}, {1, 1}, 1, 0},
    {"max_dilated", "MaxPool", {1, 8, 11, 11}, {3, 3}, {1, 2}, {1, 1, 0, 2}, {2, 2}, 0, 0},
    {"avg_exclude_pad", "AveragePool", {1, 16, 9, 9}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 0},
    {"avg_include_pad", "AveragePool", {1, 16, 9, 9}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, 0, 1},
    {"avg_include_asym", "AveragePool", {1, 7, 8, 10}, {3, 2}, {1, 3}, {2, 0, 1, 1}, {1, 1}, 0, 1},
    {"avg_ceil_exclude",
     "AveragePool",
     {1, 16, 10, 10},
     {3, 3},
     {2, 2},
     {1, 1, 1, 1},
     {1, 1},
     1,
     0},
    // The ceil overhang with count_include_pad: oneDNN divides by the whole window, the
    // canonical rule does not count the overhang: runs on the reference kernel.
    {"avg_ceil_include_overhang",
     "AveragePool",
     {1, 8, 10, 10},
     {3, 3},
     {2, 2},
     {1, 1, 1, 1},
     {1, 1},
     1,
     1,
     false},
    {"avg_ceil_include_no_overhang",
     "AveragePool",
     {1, 8, 9, 9},
     {3, 3},
     {2, 2},
     {1, 1, 1, 1},
     {1, 1},
     1,
     1},
    {"max1d_ceil", "MaxPool", {1, 4, 12}, {3}, {2}, {1, 0}, {1}, 1, 0},
    {"avg3d",
     "AveragePool",
     {1, 4, 6, 6, 6},
     {2, 2, 2},
     {2, 2, 2},
     {0, 0, 0, 0, 0, 0},
     {1, 1, 1},
     0,
     0},
};
INSTANTIATE_TEST_SUITE_P(Cases, CpuPool, ::testing::ValuesIn(kPoolCases),
                         [](const auto& i) { return i.param.name; });

TEST(CpuGlobalPool, AverageAndMax) {
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
    TestGraph tg;
    int x = tg.input("x", {2, 24, 7, 5});
    int y = tg.node("Conv", {x, tg.weight("w", {24, 24, 1, 1})});
    tg.output(tg.node(op, {y}));
    expect_cpu_matches_reference(tg);
    EXPECT_FALSE(has_fallback(cpu_steps(tg))) << op;
  }
}

// ---- Gemm / MatMul ------------------------------------------------------------------------

TEST(CpuGemm, TransBAlphaBetaBiasShapes) {
  struct C {
    bool tb;
    double alpha, beta;
    Shape bias;  // empty: none
    std::string act;
  };
  for (const C& c : {C{true, 1, 1, {10}, ""}, C{false, 0.5, 2, {1, 10}, "Relu"},
                     C{true, 1, 1, {}, "Sigmoid"}, C{false, 1, 0.25, {1}, ""}}) {
    TestGraph tg;
    int a = tg.input("a", {3, 17});
    std::vector<int> ins{a, tg.weight("b", c.tb ? Shape{10, 17} : Shape{17, 10})};
    if (!c.bias.empty()) ins.push_back(tg.weight("c", c.bias));
    int y = tg.node("Gemm", ins,
                    attrs({{"transB", int64_t(c.tb)}, {"alpha", c.alpha}, {"beta", c.beta}}));
    if (!c.act.empty()) y = tg.node(c.act, {y});
    tg.output(y);
    expect_cpu_matches_reference(tg);
    EXPECT_FALSE(has_fallback(cpu_steps(tg))) << join(cpu_steps(tg));
  }
}

TEST(CpuGemm, FullBiasAndTransAFallBack) {
  TestGraph tg;
  int a = tg.input("a", {17, 3});
  int y = tg.node("Gemm", {a, tg.weight("b", {17, 4}), tg.weight("c", {3, 4})},
                  attrs({{"transA", int64_t(1)}}));
  tg.output(y);
  expect_cpu_matches_reference(tg);
  EXPECT_TRUE(has_fallback(cpu_steps(tg)));
}

TEST(CpuMatMul, BatchedBroadcastAndRuntimeWeights) {
  struct C {
    Shape a, b;
    bool const_b;
  };
  for (const C& c : {C{{5, 7}, {7, 3}, true}, C{{2, 5, 7}, {2, 7, 3}, false},
                     C{{2, 3, 5, 7}, {7, 6}, true}, C{{4, 1, 5, 7}, {1, 3, 7, 2}, false}}) {
    TestGraph tg;
    int a = tg.input("a", c.a);
    int b = c.const_b ? tg.weight("b", c.b) : tg.input("b", c.b);
    tg.output(tg.node("Relu", {tg.node("MatMul", {a, b})}));
    expect_cpu_matches_reference(tg);
    EXPECT_FALSE(has_fallback(cpu_steps(tg))) << shape_str(c.a) << " x " << shape_str(c.b);
  }
}

// ---- Eltwise ------------------------------------------------------------------------------

TEST(CpuEltwise, EveryActivation) {
  const std::vector<std::pair<std::string, Attributes>> ops = {
      {"Relu", {}},
      {"LeakyRelu", attrs({{"alpha", 0.2}})},
      {"Sigmoid", {}},
      {"Tanh", {}},
      {"Elu", attrs({{"alpha", 0.7}})},
      {"HardSigmoid", attrs({{"alpha", 0.3}, {"beta", 0.4}})},
      {"HardSwish", {}},
      {"Exp", {}},
      {"Abs", {}},
      {"Neg", {}},
      {"Mish", {}},
      {"Gelu", {}},
      {"Gelu", attrs({{"approximate", std::string("tanh")}})},
  };
  for (const auto& [op, a] : ops) {
    SCOPED_TRACE(op);
    TestGraph tg;
    int x = tg.input("x", {2, 3, 5, 7});
    // On a plain input, then on a blocked conv output.
    int e1 = tg.node(op, {x}, a);
    int c = tg.node("Conv", {x, tg.weight("w", {16, 3, 3, 3})}, attrs({{"pads", I{1, 1, 1, 1}}}));
    int e2 = tg.node(op, {c}, a);
    tg.output(e1);
    tg.output(e2);
    expect_cpu_matches_reference(tg, {}, 1e-4, 1e-5);
    EXPECT_FALSE(has_fallback(cpu_steps(tg))) << join(cpu_steps(tg));
  }
}

TEST(CpuEltwise, ClipWithConstantBoundsAndRuntimeBoundsFallBack) {
  TestGraph tg;
  int x = tg.input("x", {1, 4, 6, 6});
  int y = tg.node("Clip", {x, tg.constant("lo", Tensor::scalar<float>(-0.3f)),
                           tg.constant("hi", Tensor::scalar<float>(0.5f))});
  int lo = tg.input("lo_rt", {});
  int z = tg.node("Clip", {y, lo});
  tg.output(z);
  expect_cpu_matches_reference(tg);
  auto st = cpu_steps(tg);
  EXPECT_TRUE(std::count(st.begin(), st.end(), "Clip") == 1 &&
              std::count(st.begin(), st.end(), "Clip (ref)") == 1)
      << join(st);
}

// ---- Binary -------------------------------------------------------------------------------

TEST(CpuBinary, BroadcastingBothWays) {
  struct C {
    std::string op;
    Shape a, b;
    bool const_b;
    bool dnnl;
  };
  const C cases[] = {
      {"Add", {2, 8, 5, 5}, {2, 8, 5, 5}, false, true},
      {"Sub", {2, 8, 5, 5}, {1, 8, 1, 1}, true, true},
      {"Mul", {2, 8, 5, 5}, {8, 1, 1}, true, true},
      {"Div", {2, 8, 5, 5}, {5}, false, true},
      {"Add", {1}, {3, 4}, false, true},        // a broadcasts: swapped (commutative)
      {"Mul", {4, 1}, {3, 4, 5}, false, true},  // a broadcasts: swapped
      {"Mul", {4, 1}, {3, 1, 5}, false, true},  // both broadcast: own kernel
      {"Sub", {5}, {2, 3, 5}, false, true},     // a broadcasts, not commutative: own kernel
      {"Max", {2, 3, 4}, {3, 1}, false, true},
      {"Min", {2, 3, 4}, {}, true, true},
      {"Div", {3, 7}, {3, 7}, true, true},
  };
  for (const C& c : cases) {
    SCOPED_TRACE(c.op + " " + shape_str(c.a) + " " + shape_str(c.b));
    TestGraph tg;
    int a = tg.input("a", c.a);
    int b = c.const_b ? tg.constant("b", random_tensor(c.b, 99, 0.5f, 2.f)) : tg.input("b", c.b);
    if (!c.const_b) tg.feed["b"] = random_tensor(c.b, 98, 0.5f, 2.f);
    tg.output(tg.node(c.op, {a, b}));
    expect_cpu_matches_reference(tg);
    EXPECT_EQ(has_fallback(cpu_steps(tg)), !c.dnnl) << join(cpu_steps(tg));
  }
}

TEST(CpuBinary, OnBlockedConvOutputsWithFusedRelu) {
  TestGraph tg;
  int x = tg.input("x", {1, 3, 9, 9});
  int c1 = tg.node("Conv", {x, tg.weight("w1", {20, 3, 3, 3})});
  int c2 = tg.node("Conv", {x, tg.weight("w2", {20, 3, 3, 3})});
  int m = tg.node("Mul", {c1, c2});
  int s = tg.node("Add", {m, tg.weight("bias", {1, 20, 1, 1})});
  tg.output(tg.node("Relu", {s}));
  expect_cpu_matches_reference(tg);
  auto st = cpu_steps(tg);
  EXPECT_FALSE(has_fallback(st)) << join(st);
  EXPECT_NE(std::find(st.begin(), st.end(), "Add+Relu"), st.end()) << join(st);
}

// ---- Softmax, LRN, Concat, BatchNormalization ---------------------------------------------

TEST(CpuSoftmax, AxesAndLogSoftmax) {
  for (int64_t axis : {-1, 1, 0}) {
    for (const char* op : {"Softmax", "LogSoftmax"}) {
      TestGraph tg;
      int x = tg.input("x", {3, 10, 4});
      tg.output(tg.node(op, {x}, attrs({{"axis", axis}})));
      expect_cpu_matches_reference(tg, {}, 1e-4, 1e-6);
      EXPECT_FALSE(has_fallback(cpu_steps(tg)));
    }
  }
}

TEST(CpuLrn, OddSizeOnOneDnnEvenSizeOnReference) {
  for (int64_t size : {5, 3, 4}) {
    TestGraph tg;
    int x = tg.input("x", {1, 20, 6, 7});
    int c = tg.node("Conv", {x, tg.weight("w", {20, 20, 1, 1})});
    tg.output(tg.node("LRN", {c},
                      attrs({{"size", size}, {"alpha", 1e-2}, {"beta", 0.75}, {"bias", 2.0}})));
    expect_cpu_matches_reference(tg);
    EXPECT_EQ(has_fallback(cpu_steps(tg)), size % 2 == 0) << size << ": " << join(cpu_steps(tg));
  }
}

TEST(CpuConcat, BlockedPlainAndOtherAxes) {
  TestGraph tg;
  int x = tg.input("x", {1, 3, 8, 8});
  int a = tg.node("Conv", {x, tg.weight("wa", {16, 3, 1, 1})});
  int b = tg.node("Conv", {x, tg.weight("wb", {32, 3, 3, 3})}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int cat1 = tg.node("Concat", {a, b}, attrs({{"axis", int64_t(1)}}));      // blocked + blocked
  int cat2 = tg.node("Concat", {x, a, x}, attrs({{"axis", int64_t(-3)}}));  // plain + blocked
  int cat3 = tg.node("Concat", {a, a}, attrs({{"axis", int64_t(3)}}));      // width
  int y = tg.input("y", {2, 5});
  int cat4 = tg.node("Concat", {y, tg.weight("c", {3, 5})}, attrs({{"axis", int64_t(0)}}));
  for (int v : {cat1, cat2, cat3, cat4}) tg.output(v);
  expect_cpu_matches_reference(tg);
  EXPECT_FALSE(has_fallback(cpu_steps(tg))) << join(cpu_steps(tg));
}

TEST(CpuBatchNorm, StandaloneOnInputWithFollowingRelu) {
  TestGraph tg;
  int x = tg.input("x", {2, 6, 5, 4});
  int bn = tg.node("BatchNormalization",
                   {x, tg.weight("s", {6}), tg.weight("b", {6}), tg.weight("m", {6}),
                    tg.constant("v", random_tensor({6}, 7, 0.5f, 2.f))},
                   attrs({{"epsilon", 1e-3}}));
  tg.output(tg.node("Relu", {bn}));
  expect_cpu_matches_reference(tg);
  auto st = cpu_steps(tg);
  EXPECT_FALSE(has_fallback(st)) << join(st);
}

// ---- Fusion, layouts, fallbacks -------------------------------------------------------------

// A ResNet block: conv-relu-conv, + identity, relu; then a projection block whose shortcut
// conv comes after the main branch (sum fused into the shortcut conv).
TestGraph residual_graph() {
  TestGraph tg;
  int x = tg.input("x", {1, 16, 10, 10});
  Attributes p1 = attrs({{"pads", I{1, 1, 1, 1}}});
  int c1 = tg.node(
      "Relu",
      {tg.node("Conv", {x, tg.weight("w1", {16, 16, 3, 3}, 0.2f), tg.weight("b1", {16})}, p1)});
  int c2 = tg.node("Conv", {c1, tg.weight("w2", {16, 16, 3, 3}, 0.2f), tg.weight("b2", {16})}, p1);
  int r1 = tg.node("Relu", {tg.node("Add", {c2, x})});
  int m = tg.node("Conv", {r1, tg.weight("w3", {32, 16, 3, 3}, 0.2f)},
                  attrs({{"pads", I{1, 1, 1, 1}}, {"strides", I{2, 2}}}));
  int sc =
      tg.node("Conv", {r1, tg.weight("w4", {32, 16, 1, 1}, 0.2f)}, attrs({{"strides", I{2, 2}}}));
  int r2 = tg.node("Relu", {tg.node("Add", {m, sc})});
  tg.output(r2);
  return tg;
}

TEST(CpuFusion, ResidualSumAndRelu) {
  TestGraph tg = residual_graph();
  expect_cpu_matches_reference(tg);
  auto st = cpu_steps(tg);
  EXPECT_FALSE(has_fallback(st)) << join(st);
  EXPECT_EQ(std::count(st.begin(), st.end(), "Conv+Add+Relu"), 2) << join(st);
  // Two reorder steps: the input into nChw16c for the first conv (3x3, 16 channels: the
  // Winograd kernel), and the first block's output from nChw16c into NHWC for the stride-2
  // convs (the result is reordered as it is returned, outside the steps).
  EXPECT_EQ(std::count(st.begin(), st.end(), "Reorder"), 2) << join(st);
}

TEST(CpuFusion, ResidualOperandUsedLaterIsNotOverwritten) {
  TestGraph tg;
  int x = tg.input("x", {1, 8, 6, 6});
  int r = tg.node("Conv", {x, tg.weight("w0", {8, 8, 1, 1})});
  int c = tg.node("Conv", {r, tg.weight("w1", {8, 8, 3, 3})}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int s = tg.node("Add", {c, r});
  int later = tg.node("Mul", {s, r});  // r still needed after the Add
  tg.output(later);
  expect_cpu_matches_reference(tg);
  auto st = cpu_steps(tg);
  EXPECT_EQ(std::count(st.begin(), st.end(), "Conv+Add"), 0) << join(st);
}

TEST(CpuFusion, KeptIntermediatesInBlockedLayoutComeBackRight) {
  TestGraph tg = residual_graph();
  // Taps: a conv output inside a would-be fusion, the residual, a block output.
  std::vector<std::string> taps;
  for (const auto& n : tg.g.nodes)
    if (n.op == "Conv" || n.op == "Add")
      taps.push_back(tg.g.values[static_cast<size_t>(n.outputs[0])].name);
  expect_cpu_matches_reference(tg, taps);
  SessionOptions so;
  so.backend = "cpu";
  so.keep_all = true;
  Session all(tg.g, so);
  SessionOptions ro;
  ro.backend = "reference";
  ro.keep_all = true;
  Session ref(tg.g, ro);
  std::vector<std::string> every;
  for (const auto& v : all.graph().values)
    if (!v.is_constant()) every.push_back(v.name);
  auto got = all.run(tg.feed, every);
  auto want = ref.run(tg.feed, every);
  for (const auto& n : every) EXPECT_LE(closeness(got[n], want[n], 1e-4, 1e-4), 1.0) << n;
}

TEST(CpuFallback, ReferenceOpInsideBlockedChain) {
  TestGraph tg;
  int x = tg.input("x", {1, 3, 12, 12});
  int c1 = tg.node("Conv", {x, tg.weight("w1", {16, 3, 3, 3})}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int e = tg.node("Erf", {c1});  // no oneDNN primitive: own kernel on the plain tensor
  int inorm = tg.node("InstanceNormalization", {e, tg.weight("s", {16}), tg.weight("b", {16})},
                      attrs({{"epsilon", 1e-5}}));
  int c2 =
      tg.node("Conv", {inorm, tg.weight("w2", {16, 16, 3, 3})}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int sh = tg.node("Shape", {c2});  // i64 tensor in the middle of the run
  int resh =
      tg.node("Reshape", {c2, tg.constant("shape", Tensor::from_vector<int64_t>({2}, {1, -1}))});
  tg.output(tg.node("Softmax", {resh}, attrs({{"axis", int64_t(1)}})));
  tg.output(sh);
  expect_cpu_matches_reference(tg, {}, 1e-4, 1e-6);
  auto st = cpu_steps(tg);
  EXPECT_NE(std::find(st.begin(), st.end(), "Erf"), st.end()) << join(st);
  EXPECT_NE(std::find(st.begin(), st.end(), "InstanceNormalization (ref)"), st.end()) << join(st);
  EXPECT_EQ(std::count(st.begin(), st.end(), "Conv"), 2) << join(st);
}

TEST(CpuThreads, TwoThreadsSameResults) {
  TestGraph tg = residual_graph();
  expect_cpu_matches_reference(tg, {}, 1e-4, 1e-4, 2);
}

TEST(CpuErrors, WrongInputShapeIsAnError) {
  TestGraph tg = residual_graph();
  SessionOptions so;
  so.backend = "cpu";
  Session s(tg.g, so);
  EXPECT_THROW(s.run({{"x", random_tensor({1, 16, 9, 10}, 3)}}), Error);
}

}  // namespace
}  // namespace anvil::testing

namespace anvil::testing {
namespace {

// SessionOptions::precision: the reduce_precision pass stores weights and activations in
// bf16 / fp16; the cpu backend runs bf16 on oneDNN (f32 accumulation), the reference backend
// rounds its double results to the storage type. Both against the fp32 reference too.
void expect_low_precision(const std::string& precision, bool all_dnnl) {
  TestGraph tg = residual_graph();
  int y = tg.g.outputs[0];
  int gap = tg.node("GlobalAveragePool", {y});
  int flat = tg.node("Flatten", {gap});
  int fc = tg.node("Gemm", {flat, tg.weight("fc", {10, 32}), tg.weight("fcb", {10})},
                   attrs({{"transB", int64_t(1)}}));
  tg.g.outputs = {tg.node("Softmax", {tg.node("Relu", {fc})}, attrs({{"axis", int64_t(1)}})), y};
  SessionOptions ro, co, fo;
  ro.backend = "reference";
  ro.precision = parse_precision(precision);
  co = ro;
  co.backend = "cpu";
  co.profile = true;
  fo.backend = "reference";
  Session ref(tg.g, ro), cpu(tg.g, co), f32(tg.g, fo);
  auto want = ref.run(tg.feed), got = cpu.run(tg.feed), exact = f32.run(tg.feed);
  for (const auto& [k, w] : want) {
    ASSERT_EQ(got[k].dtype(), DType::f32) << k;
    EXPECT_LE(closeness(got[k], w, 3e-2, 3e-2), 1.0) << precision << " " << k;
    EXPECT_LE(closeness(got[k], exact[k], 5e-2, 5e-2), 1.0) << precision << " " << k;
  }
  bool any_ref = false;
  for (const auto& st : cpu.profile()) any_ref |= st.op.find("(ref)") != std::string::npos;
  if (all_dnnl) EXPECT_FALSE(any_ref);
}

TEST(CpuPrecision, Bf16OnOneDnn) { expect_low_precision("bf16", true); }
TEST(CpuPrecision, Fp16MatchesReference) { expect_low_precision("fp16", false); }

}  // namespace
}  // namespace anvil::testing

namespace anvil::testing {
namespace {

// 1-D and 2-D tensors get oneDNN's reference (non-JIT) eltwise/binary kernels, which in 2.6
// ignore eltwise post-ops: no activation may be fused there.
TEST(CpuEltwise, LowRankTensorsAndFollowingActivations) {
  for (const Shape& s : {Shape{4}, Shape{17}, Shape{3, 5}}) {
    TestGraph tg;
    int x = tg.input("x", s);
    tg.feed["x"] = random_tensor(s, 5, -3.f, 3.f);
    int hs = tg.node("HardSigmoid", {x}, attrs({{"alpha", 0.5}, {"beta", 0.25}}));
    int sr = tg.node("Relu", {tg.node("Sigmoid", {x})});
    int ar = tg.node("Relu", {tg.node("Add", {x, tg.weight("b", s)})});
    int mr = tg.node("Tanh", {tg.node("Mul", {x, x})});
    for (int v : {hs, sr, ar, mr}) tg.output(v);
    expect_cpu_matches_reference(tg, {}, 1e-4, 1e-6);
  }
}

TEST(CpuThreads, SmallStepsRunOnOneThreadLargeOnesOnAll) {
  // Same results whatever the per-step thread split (step_threads in the executor).
  TestGraph tg;
  int x = tg.input("x", {1, 64, 56, 56});
  int big =
      tg.node("Conv", {x, tg.weight("w", {64, 64, 3, 3}, 0.1f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int small = tg.node("Relu", {tg.node("GlobalAveragePool", {big})});
  tg.output(small);
  expect_cpu_matches_reference(tg, {}, 1e-4, 1e-4, 2);
}

// 3x3 stride-1 convolutions with channels in multiples of 16 run on oneDNN's Winograd kernel
// (nChw16c); a Concat of that branch and an NHWC branch reorders each input into its slice.
TEST(CpuWinograd, BranchesConcatAndPadsMatchReference) {
  for (auto pads : {I{1, 1, 1, 1}, I{0, 0, 0, 0}, I{0, 1, 1, 0}}) {
    TestGraph tg;
    int x = tg.input("x", {1, 32, 13, 11});
    int a = tg.node(
        "Relu", {tg.node("Conv", {x, tg.weight("wa", {48, 32, 3, 3}, 0.2f), tg.weight("ba", {48})},
                         attrs({{"pads", pads}}))});
    // The 1x1 branch: no pads where it is concatenated with the padded 3x3 (same size).
    const I pb = pads == I{1, 1, 1, 1} ? I{0, 0, 0, 0} : pads;
    int b = tg.node("Relu", {tg.node("Conv", {x, tg.weight("wb", {16, 32, 1, 1}, 0.2f)},
                                     attrs({{"pads", pb}}))});
    if (pads == I{1, 1, 1, 1}) {
      int c = tg.node("Concat", {a, b}, attrs({{"axis", int64_t{1}}}));
      int d = tg.node("Conv", {c, tg.weight("wd", {16, 64, 1, 1}, 0.2f)});
      tg.output(d);
      tg.output(c);
    } else {
      tg.output(tg.node("Conv", {a, tg.weight("we", {32, 48, 3, 3}, 0.2f)},
                        attrs({{"pads", I{1, 1, 1, 1}}})));
      tg.output(b);
    }
    expect_cpu_matches_reference(tg);
    auto st = cpu_steps(tg);
    EXPECT_FALSE(has_fallback(st)) << join(st);
  }
}

}  // namespace
}  // namespace anvil::testing
