// The cpu backend's data-movement, reduction and own kernels (layout_handlers.cpp,
// native_kernels.cpp) and its SiLU/HardSwish/grouped-convolution paths, each against the
// reference backend on random shapes (incl. broadcasting and NaN/Inf inputs), and checked to
// run without a reference-kernel step (" (ref)") or oneDNN's reference implementation
// (" (dnnl ref)").
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "core/strings.h"
#include "cpu_test_util.h"

using namespace anvil;
using namespace anvil::testing;
using I = std::vector<int64_t>;

namespace {

bool has_any_ref(const std::vector<std::string>& steps) {
  for (const auto& s : steps)
    if (s.find("(ref)") != std::string::npos || s.find("(dnnl ref)") != std::string::npos)
      return true;
  return false;
}

Tensor ints(const I& v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

/// Puts NaN, +Inf and -Inf into a few elements of input `name`.
void poison(TestGraph& tg, const std::string& name) {
  Tensor& t = tg.feed[name];
  float* p = t.data<float>();
  const int64_t n = t.numel();
  p[0] = std::numeric_limits<float>::quiet_NaN();
  if (n > 2) p[n / 2] = std::numeric_limits<float>::infinity();
  if (n > 3) p[n - 1] = -std::numeric_limits<float>::infinity();
}

}  // namespace

TEST(CpuKernels, TransposeAnyPermutationPlainAndBlocked) {
  std::mt19937 rng(7);
  const std::vector<Shape> shapes = {{6, 5}, {2, 3, 4}, {1, 8, 5, 6}, {2, 3, 4, 5, 2}};
  for (const Shape& s : shapes) {
    std::vector<int64_t> perm(s.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
    for (int rep = 0; rep < 3; ++rep) {
      std::shuffle(perm.begin(), perm.end(), rng);
      SCOPED_TRACE(shape_str(s) + " perm " + ints_str(perm));
      TestGraph tg;
      int x = tg.input("x", s);
      tg.output(tg.node("Transpose", {x}, attrs({{"perm", perm}})));
      expect_cpu_matches_reference(tg, {}, 0, 0);
      EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
    }
  }
  // NCHW -> NHWC of a blocked convolution output, and back (the ConvNeXt pattern).
  TestGraph tg;
  int x = tg.input("x", {1, 16, 7, 9});
  int c =
      tg.node("Conv", {x, tg.weight("w", {32, 16, 3, 3}, 0.3f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int t = tg.node("Transpose", {c}, attrs({{"perm", I{0, 2, 3, 1}}}));
  int m = tg.node("Mul", {t, tg.weight("g", {32})});
  tg.output(tg.node("Transpose", {m}, attrs({{"perm", I{0, 3, 1, 2}}})));
  expect_cpu_matches_reference(tg);
  EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
}

TEST(CpuKernels, SliceSplitPadGather) {
  struct S {
    Shape x;
    I starts, ends, axes, steps;
  };
  const S cases[] = {{{2, 10, 6}, {1}, {8}, {1}, {}},
                     {{2, 10, 6}, {0, -4}, {1, 100}, {0, 2}, {1, 2}},
                     {{1, 24, 7, 7}, {12}, {24}, {1}, {1}},
                     {{4, 9}, {-3, 1}, {-1, 9}, {0, 1}, {1, 3}}};
  for (const S& c : cases) {
    SCOPED_TRACE(shape_str(c.x) + " starts " + ints_str(c.starts));
    TestGraph tg;
    int x = tg.input("x", c.x);
    std::vector<int> ins{x, tg.constant("s", ints(c.starts)), tg.constant("e", ints(c.ends))};
    if (!c.axes.empty()) ins.push_back(tg.constant("a", ints(c.axes)));
    if (!c.steps.empty()) ins.push_back(tg.constant("t", ints(c.steps)));
    tg.output(tg.node("Slice", ins));
    expect_cpu_matches_reference(tg, {}, 0, 0);
    EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
  }
  {
    TestGraph tg;
    int x = tg.input("x", {2, 11, 3});
    int n = tg.node_n("Split", {x, tg.constant("sp", ints({4, 2, 5}))},
                      attrs({{"axis", int64_t(1)}}), 3);
    for (int o : tg.g.nodes[static_cast<size_t>(n)].outputs) tg.output(o);
    expect_cpu_matches_reference(tg, {}, 0, 0);
    EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
  }
  {
    TestGraph tg;
    int x = tg.input("x", {1, 3, 5, 4});
    tg.output(tg.node("Pad", {x, tg.constant("p", ints({0, 0, 1, 2, 0, 1, 3, 0})),
                              tg.constant("v", Tensor::from_vector<float>({}, {0.5f}))}));
    expect_cpu_matches_reference(tg, {}, 0, 0);
    EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
  }
  {
    TestGraph tg;
    int x = tg.input("x", {2, 5, 3});
    tg.output(
        tg.node("Gather", {x, tg.constant("i", ints({4, -1, 0}))}, attrs({{"axis", int64_t(1)}})));
    tg.output(tg.node("Gather", {x, tg.constant("j", Tensor::from_vector<int64_t>({}, {1}))}));
    expect_cpu_matches_reference(tg, {}, 0, 0);
    EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
  }
}

TEST(CpuKernels, ReductionsOverAnyAxes) {
  struct R {
    std::string op;
    Shape x;
    I axes;
    int64_t keep;
  };
  const R cases[] = {{"ReduceMean", {2, 6, 5}, {-1}, 1},    {"ReduceMean", {1, 8, 6, 6}, {2, 3}, 1},
                     {"ReduceSum", {3, 4, 5}, {0, 2}, 0},   {"ReduceSum", {3, 4, 5}, {1, 2}, 0},
                     {"ReduceMax", {2, 7, 3}, {1}, 0},      {"ReduceMin", {4, 4}, {}, 1},
                     {"ReduceMean", {1, 16, 5, 5}, {1}, 1}, {"ReduceL2", {2, 3, 8}, {2}, 1},
                     {"ReduceProd", {2, 3, 4}, {1}, 1}};
  for (const R& c : cases) {
    SCOPED_TRACE(c.op + " " + shape_str(c.x) + " axes " + ints_str(c.axes));
    TestGraph tg;
    int x = tg.input("x", c.x);
    std::vector<int> ins{x};
    if (!c.axes.empty()) ins.push_back(tg.constant("a", ints(c.axes)));
    tg.output(tg.node(c.op, ins, attrs({{"keepdims", c.keep}})));
    expect_cpu_matches_reference(tg, {}, 1e-5, 1e-6);
    // Reduced axes not contiguous ({0, 2} of 3 dims): oneDNN's reference reduction (known gap)
    if (c.axes != I{0, 2}) EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
  }
}

TEST(CpuKernels, BinaryBroadcastEveryWayWithNanAndInf) {
  struct C {
    std::string op;
    Shape a, b;
  };
  const C cases[] = {{"Sub", {1, 7, 7, 24}, {1, 7, 7, 1}}, {"Div", {1, 7, 7, 24}, {1, 7, 7, 1}},
                     {"Mul", {4, 1}, {3, 1, 5}},           {"Sub", {5}, {2, 3, 5}},
                     {"Div", {2, 1, 6}, {2, 5, 1}},        {"Add", {3, 1, 4, 1}, {1, 5, 1, 6}},
                     {"Pow", {2, 3, 4}, {3, 1}},           {"Sub", {1}, {4, 3}}};
  for (const C& c : cases)
    for (bool nan : {false, true}) {
      SCOPED_TRACE(c.op + " " + shape_str(c.a) + " " + shape_str(c.b) + (nan ? " NaN" : ""));
      TestGraph tg;
      int a = tg.input("a", c.a);
      int b = tg.input("b", c.b);
      tg.feed["b"] = random_tensor(c.b, 98, 0.5f, 2.f);
      if (c.op == "Pow") tg.feed["a"] = random_tensor(c.a, 97, 0.1f, 2.f);
      if (nan) poison(tg, "a");
      tg.output(tg.node(c.op, {a, b}));
      expect_cpu_matches_reference(tg, {}, 1e-5, 1e-6);
      EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
    }
}

TEST(CpuKernels, UnaryMathWithNanAndInf) {
  for (const char* op : {"Erf", "Sqrt", "Log", "Reciprocal", "Softplus", "Floor", "Ceil", "Round"})
    for (bool nan : {false, true}) {
      SCOPED_TRACE(std::string(op) + (nan ? " NaN" : ""));
      TestGraph tg;
      int x = tg.input("x", {2, 3, 17});
      const bool positive =
          std::string(op) == "Sqrt" || std::string(op) == "Log" || std::string(op) == "Reciprocal";
      tg.feed["x"] = random_tensor({2, 3, 17}, 5, positive ? 0.1f : -3.f, 3.f);
      if (nan) poison(tg, "x");
      tg.output(tg.node(op, {x}));
      expect_cpu_matches_reference(tg, {}, 1e-5, 1e-5);
      EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
    }
  for (float p : {2.f, 3.f, 0.5f}) {  // constant exponent: oneDNN eltwise
    SCOPED_TRACE(p);
    TestGraph tg;
    int x = tg.input("x", {3, 11});
    tg.feed["x"] = random_tensor({3, 11}, 6, 0.1f, 2.f);
    tg.output(tg.node("Pow", {x, tg.constant("p", Tensor::from_vector<float>({}, {p}))}));
    expect_cpu_matches_reference(tg, {}, 1e-5, 1e-6);
    EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
  }
}

TEST(CpuKernels, LayerNormalizationSiluHardSwish) {
  {
    TestGraph tg;
    int x = tg.input("x", {1, 6, 5, 24});
    tg.output(tg.node("LayerNormalization", {x, tg.weight("s", {24}), tg.weight("b", {24})},
                      attrs({{"axis", int64_t(-1)}, {"epsilon", 1e-6}})));
    expect_cpu_matches_reference(tg, {}, 1e-4, 1e-5);
    auto st = cpu_steps(tg);
    EXPECT_FALSE(has_any_ref(st)) << join(st);
  }
  {
    TestGraph tg;
    int x = tg.input("x", {1, 8, 6, 6});
    int c = tg.node("Conv", {x, tg.weight("w", {16, 8, 1, 1}, 0.3f)});
    int s = tg.node("Sigmoid", {c});
    int silu = tg.node("Mul", {c, s});
    int hs = tg.node("HardSigmoid", {silu}, attrs({{"alpha", 1.0 / 6}, {"beta", 0.5}}));
    tg.output(tg.node("Mul", {hs, silu}));
    expect_cpu_matches_reference(tg, {}, 1e-4, 1e-5);
    auto st = cpu_steps(tg);
    EXPECT_FALSE(has_any_ref(st)) << join(st);
    EXPECT_NE(std::find(st.begin(), st.end(), "SiLU"), st.end()) << join(st);
    EXPECT_NE(std::find(st.begin(), st.end(), "HardSwish"), st.end()) << join(st);
    EXPECT_EQ(std::count(st.begin(), st.end(), "Mul"), 0) << join(st);
  }
}

TEST(CpuKernels, GroupedConvolutionsOfSmallGroupWidthAndDepthwise7x7) {
  struct G {
    int64_t c, group, k;
  };
  for (const G& c : {G{64, 8, 3}, G{48, 12, 3}, G{128, 32, 3}, G{32, 32, 7}, G{24, 3, 3}}) {
    SCOPED_TRACE("C " + std::to_string(c.c) + " group " + std::to_string(c.group) + " k " +
                 std::to_string(c.k));
    TestGraph tg;
    int x = tg.input("x", {1, c.c, 14, 14});
    const int64_t p = c.k / 2;
    tg.output(tg.node("Conv", {x, tg.weight("w", {c.c, c.c / c.group, c.k, c.k}, 0.3f)},
                      attrs({{"pads", I{p, p, p, p}}, {"group", c.group}})));
    expect_cpu_matches_reference(tg, {}, 1e-4, 1e-5);
    EXPECT_FALSE(has_any_ref(cpu_steps(tg))) << join(cpu_steps(tg));
  }
}
