// Pattern passes (src/passes/fuse_patterns.cpp) and the cpu backend's SiLU/HardSwish steps on
// real torch exports (tests/data/patterns/*.onnx, made by gen_patterns.py beside them): the
// pattern is found (the fused op appears, the chain's ops are gone) and the fused graph on the
// cpu backend equals the unfused graph on the reference backend. Plus hand-built chains in
// the exporter's exact node order, and chains the passes must leave alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "anvil/import.h"
#include "cpu_test_util.h"

using namespace anvil;
using namespace anvil::testing;
using I = std::vector<int64_t>;

namespace {

std::string pattern_file(const std::string& name) {
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/patterns/" + name + ".onnx";
}

int count_op(const Graph& g, const std::string& op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(),
                                        [&](const Node& n) { return !n.dead && n.op == op; }));
}

Graph optimized(Graph g) {
  passes::Protected protect;
  for (int o : g.outputs) protect.insert(g.values[static_cast<size_t>(o)].name);
  passes::optimize(g, protect);
  return g;
}

/// The imported model: fused graph on cpu vs unfused graph on the reference backend.
void expect_fused_matches_unfused(const Graph& g, const Shape& in_shape, double tol) {
  std::map<std::string, Tensor> feed;
  feed[g.values[static_cast<size_t>(g.inputs[0])].name] = random_tensor(in_shape, 3, -2.f, 2.f);
  SessionOptions ro;
  ro.backend = "reference";
  ro.optimize = false;
  SessionOptions co;
  co.backend = "cpu";
  Session ref(g, ro), cpu(g, co);
  const std::string out = g.values[static_cast<size_t>(g.outputs[0])].name;
  auto want = ref.run(feed, {out});
  auto got = cpu.run(feed, {out});
  ASSERT_EQ(got[out].shape(), want[out].shape());
  EXPECT_LE(closeness(got[out], want[out], tol, tol), 1.0);
}

}  // namespace

TEST(PatternPasses, LayerNormFromTorchExport) {
  Graph g = import_model({pattern_file("layernorm_nhwc")});
  ASSERT_GT(count_op(g, "ReduceMean"), 0);
  Graph o = optimized(g);
  EXPECT_EQ(count_op(o, "LayerNormalization"), 1);
  for (const char* op : {"ReduceMean", "Sqrt", "Pow", "Div"}) EXPECT_EQ(count_op(o, op), 0) << op;
  expect_fused_matches_unfused(g, {1, 4, 6, 5}, 1e-4);
}

TEST(PatternPasses, GeluFromTorchExport) {
  Graph g = import_model({pattern_file("gelu_erf")});
  ASSERT_EQ(count_op(g, "Erf"), 1);
  Graph o = optimized(g);
  EXPECT_EQ(count_op(o, "Gelu"), 1);
  EXPECT_EQ(count_op(o, "Erf"), 0);
  expect_fused_matches_unfused(g, {2, 7, 16}, 1e-4);
}

TEST(PatternPasses, SiluHardSwishFromTorchExportRunAsOneStepEach) {
  Graph g = import_model({pattern_file("silu_hardswish")});
  expect_fused_matches_unfused(g, {1, 4, 5, 5}, 1e-4);
  SessionOptions co;
  co.backend = "cpu";
  co.profile = true;
  Session cpu(g, co);
  std::map<std::string, Tensor> feed;
  feed[g.values[static_cast<size_t>(g.inputs[0])].name] = random_tensor({1, 4, 5, 5}, 3);
  cpu.run(feed);
  std::string ops;
  for (const auto& t : cpu.profile()) ops += t.op + ", ";
  EXPECT_NE(ops.find("SiLU"), std::string::npos) << ops;
  EXPECT_NE(ops.find("HardSwish"), std::string::npos) << ops;
  EXPECT_EQ(ops.find("Mul"), std::string::npos) << ops;
  EXPECT_EQ(ops.find("(ref)"), std::string::npos) << ops;
}

TEST(PatternPasses, LayerNormChainWithoutAffineAndLeftAloneWhenShared) {
  for (bool shared : {false, true}) {
    SCOPED_TRACE(shared ? "intermediate also an output" : "plain chain");
    TestGraph tg;
    int x = tg.input("x", {2, 5, 12});
    auto ax = [&] {
      return tg.constant(tg.g.unique_name("ax"), Tensor::from_vector<int64_t>({1}, {-1}));
    };
    int mean = tg.node("ReduceMean", {x, ax()});
    int d = tg.node("Sub", {x, mean});
    int p = tg.node("Pow", {d, tg.constant("two", Tensor::from_vector<float>({}, {2.f}))});
    int var = tg.node("ReduceMean", {p, ax()});
    int ve = tg.node("Add", {var, tg.constant("eps", Tensor::from_vector<float>({}, {1e-5f}))});
    int s = tg.node("Sqrt", {ve});
    tg.output(tg.node("Div", {d, s}));
    if (shared) tg.output(var);
    Graph o = optimized(tg.g);
    EXPECT_EQ(count_op(o, "LayerNormalization"), shared ? 0 : 1);
    expect_cpu_matches_reference(tg, {}, 1e-4, 1e-5);
  }
}

TEST(PatternPasses, GeluHalfFirstOrderAndWrongConstantLeftAlone) {
  for (double k : {std::sqrt(2.0), 1.5}) {
    TestGraph tg;
    int x = tg.input("x", {3, 10});
    int dv = tg.node("Div", {x, tg.constant("k", Tensor::from_vector<float>({}, {float(k)}))});
    int e = tg.node("Erf", {dv});
    int a = tg.node("Add", {e, tg.constant("one", Tensor::from_vector<float>({}, {1.f}))});
    int h = tg.node("Mul", {x, tg.constant("half", Tensor::from_vector<float>({}, {0.5f}))});
    tg.output(tg.node("Mul", {h, a}));
    Graph o = optimized(tg.g);
    EXPECT_EQ(count_op(o, "Gelu"), k == 1.5 ? 0 : 1) << k;
    expect_cpu_matches_reference(tg, {}, 1e-4, 1e-5);
  }
}
