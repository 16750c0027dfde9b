// Graph passes: each must leave the outputs unchanged (checked against the unoptimized graph
// on the reference backend, random inputs) and must actually change the graph.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "passes/passes.h"

using namespace anvil;

namespace {

Tensor random_tensor(Shape shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Tensor t(DType::f32, std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, d(rng));
  return t;
}

Attributes ints_attr(std::initializer_list<std::pair<const char*, std::vector<int64_t>>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

/// Runs a graph unoptimized (no passes) on the reference backend.
std::map<std::string, Tensor> run_plain(const Graph& g, const std::map<std::string, Tensor>& in,
                                        const std::vector<std::string>& fetch = {}) {
  SessionOptions o;
  o.backend = "reference";
  o.optimize = false;
  Session s(g, o);
  return s.run(in, fetch);
}

void expect_close(const Tensor& a, const Tensor& b, double tol = 1e-4) {
  ASSERT_EQ(a.shape(), b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(a.get(i) - b.get(i)) / (1.0 + std::abs(b.get(i))));
  EXPECT_LE(worst, tol);
}

int live_nodes(const Graph& g, const std::string& op = {}) {
  int n = 0;
  for (const auto& node : g.nodes) n += !node.dead && (op.empty() || node.op == op);
  return n;
}

/// Applies `pass` to a copy, checks the outputs are unchanged; returns the passed graph.
template <class Pass>
Graph check_pass(const Graph& g, Pass pass, const std::map<std::string, Tensor>& in,
                 const passes::Protected& protect = {}, double tol = 1e-4) {
  Graph before = g;
  before.infer_shapes();
  Graph after = before;
  passes::Protected prot = protect;
  for (int o : after.outputs) prot.insert(after.values[static_cast<size_t>(o)].name);
  pass(after, prot);
  after.compact();
  after.validate();
  after.infer_shapes();
  auto want = run_plain(before, in);
  auto got = run_plain(after, in);
  EXPECT_EQ(want.size(), got.size());
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    EXPECT_NE(it, got.end()) << "output " << k << " disappeared";
    if (it != got.end()) expect_close(it->second, v, tol);
  }
  return after;
}

Tensor bn_param(int64_t c, uint64_t seed, double lo, double hi) {
  return random_tensor({c}, seed, lo, hi);
}

/// Adds BatchNormalization(x) with random constant parameters; returns the node index.
int add_bn(Graph& g, int x, int64_t c, const std::string& name, uint64_t seed) {
  int sc = g.add_constant(name + "_scale", bn_param(c, seed, 0.5, 1.5));
  int b = g.add_constant(name + "_B", bn_param(c, seed + 1, -0.5, 0.5));
  int m = g.add_constant(name + "_mean", bn_param(c, seed + 2, -0.5, 0.5));
  int v = g.add_constant(name + "_var", bn_param(c, seed + 3, 0.2, 1.5));
  Attributes a;
  a.set("epsilon", 1e-3);
  return g.add_node("BatchNormalization", name, {x, sc, b, m, v}, a);
}

int out_of(const Graph& g, int node) { return g.nodes[static_cast<size_t>(node)].outputs[0]; }

}  // namespace

// ---------------------------------------------------------------- fold_batchnorm

TEST(Passes, FoldBatchNormIntoConv) {
  for (int64_t group : {1, 2}) {
    for (bool bias : {true, false}) {
      Graph g;
      int x = g.add_input("x", DType::f32, {2, 4, 7, 6});
      int w = g.add_constant("w", random_tensor({6, 4 / group, 3, 3}, 10));
      std::vector<int> ins{x, w};
      if (bias) ins.push_back(g.add_constant("b", random_tensor({6}, 11)));
      Attributes a = ints_attr({{"pads", {1, 0, 1, 2}}, {"strides", {2, 1}}});
      a.set("group", group);
      int conv = g.add_node("Conv", "conv", ins, a);
      int bn = add_bn(g, out_of(g, conv), 6, "bn", 20);
      g.values[static_cast<size_t>(out_of(g, bn))].prov.source_name = "bn_layer";
      g.outputs = {out_of(g, bn)};
      Graph after = check_pass(g, passes::fold_batchnorm, {{"x", random_tensor({2, 4, 7, 6}, 1)}});
      EXPECT_EQ(live_nodes(after), 1);
      EXPECT_EQ(live_nodes(after, "Conv"), 1);
      // The conv now produces the BN's output value (name and provenance kept).
      const Value& out = after.values[static_cast<size_t>(after.nodes[0].outputs[0])];
      EXPECT_EQ(out.name, "bn");
      EXPECT_EQ(out.prov.source_name, "bn_layer");
      EXPECT_EQ(after.find_value("conv"), -1);
      EXPECT_EQ(after.nodes[0].inputs.size(), 3u);
    }
  }
}

TEST(Passes, FoldBatchNormIntoConvTransposeUsesItsWeightLayout) {
  // W is (C_in, M / group, k...): output channel of W[c, j] = (c / (C_in / group)) * (M/group) + j.
  for (int64_t group : {1, 2}) {
    Graph g;
    int x = g.add_input("x", DType::f32, {1, 4, 5, 5});
    int w = g.add_constant("w", random_tensor({4, 3, 3, 3}, 30));
    int b = g.add_constant("b", random_tensor({3 * group}, 31));
    Attributes a = ints_attr({{"strides", {2, 2}}, {"pads", {1, 1, 0, 0}}});
    a.set("group", group);
    int ct = g.add_node("ConvTranspose", "convt", {x, w, b}, a);
    int bn = add_bn(g, out_of(g, ct), 3 * group, "bn", 40);
    g.outputs = {out_of(g, bn)};
    Graph after = check_pass(g, passes::fold_batchnorm, {{"x", random_tensor({1, 4, 5, 5}, 2)}});
    EXPECT_EQ(live_nodes(after), 1);
    EXPECT_EQ(live_nodes(after, "ConvTranspose"), 1);
  }
}

TEST(Passes, FoldBatchNormIntoGemm) {
  struct Case {
    bool transB;
    Shape c_shape;  // empty: no C
    double alpha, beta;
  };
  for (const Case& k :
       {Case{false, {5}, 1.0, 1.0}, Case{true, {1, 5}, 2.0, 0.5}, Case{true, {}, 1.0, 1.0},
        Case{false, {3, 5}, 0.5, 2.0}, Case{false, {3, 1}, 1.0, 1.0}}) {
    Graph g;
    int x = g.add_input("x", DType::f32, {3, 4});
    int w = g.add_constant("w", random_tensor(k.transB ? Shape{5, 4} : Shape{4, 5}, 50));
    std::vector<int> ins{x, w};
    if (!k.c_shape.empty()) ins.push_back(g.add_constant("c", random_tensor(k.c_shape, 51)));
    Attributes a;
    a.set("transB", int64_t{k.transB});
    a.set("alpha", k.alpha);
    a.set("beta", k.beta);
    int gemm = g.add_node("Gemm", "gemm", ins, a);
    int bn = add_bn(g, out_of(g, gemm), 5, "bn", 60);
    g.outputs = {out_of(g, bn)};
    Graph after = check_pass(g, passes::fold_batchnorm, {{"x", random_tensor({3, 4}, 3)}});
    EXPECT_EQ(live_nodes(after), 1) << "transB " << k.transB << " C " << shape_str(k.c_shape);
    EXPECT_EQ(live_nodes(after, "Gemm"), 1);
  }
}

TEST(Passes, FoldBatchNormAlsoFoldsPerChannelMulAndAdd) {
  Graph g;
  int x = g.add_input("x", DType::f32, {1, 3, 5, 5});
  int w = g.add_constant("w", random_tensor({4, 3, 3, 3}, 70));
  int conv = g.add_node("Conv", "conv", {x, w});
  int bn = add_bn(g, out_of(g, conv), 4, "bn", 80);
  int mc = g.add_constant("mul_c", random_tensor({4, 1, 1}, 81, 0.5, 2.0));
  int mul = g.add_node("Mul", "mul", {mc, out_of(g, bn)});  // constant first
  int ac = g.add_constant("add_c", random_tensor({1, 4, 1, 1}, 82));
  int add = g.add_node("Add", "add", {out_of(g, mul), ac});
  int sc = g.add_constant("scalar", Tensor::from_vector<float>({1}, {0.25f}));
  int add2 = g.add_node("Add", "add2", {out_of(g, add), sc});
  g.outputs = {out_of(g, add2)};
  Graph after = check_pass(g, passes::fold_batchnorm, {{"x", random_tensor({1, 3, 5, 5}, 4)}});
  EXPECT_EQ(live_nodes(after), 1);
  EXPECT_EQ(after.values[static_cast<size_t>(after.outputs[0])].name, "add2");
}

TEST(Passes, FoldBatchNormLeavesWhatItCannotFold) {
  // A Mul that is not per channel (varies along W) stays; so does a BN whose input is
  // protected, used twice, or produced by a conv with non-constant weights.
  auto make = [](bool second_use, bool weight_input) {
    Graph g;
    int x = g.add_input("x", DType::f32, {1, 2, 4, 4});
    int w = weight_input ? g.add_input("w", DType::f32, {2, 2, 1, 1})
                         : g.add_constant("w", random_tensor({2, 2, 1, 1}, 90));
    int conv = g.add_node("Conv", "conv", {x, w});
    int bn = add_bn(g, out_of(g, conv), 2, "bn", 91);
    int mc = g.add_constant("mc", random_tensor({1, 1, 1, 4}, 92));
    int mul = g.add_node("Mul", "mul", {out_of(g, bn), mc});
    g.outputs = {out_of(g, mul)};
    if (second_use) {
      int r = g.add_node("Relu", "relu", {out_of(g, conv)});
      g.outputs.push_back(out_of(g, r));
    }
    return g;
  };
  std::map<std::string, Tensor> in{{"x", random_tensor({1, 2, 4, 4}, 5)}};
  {
    Graph after = check_pass(make(false, false), passes::fold_batchnorm, in);
    EXPECT_EQ(live_nodes(after, "BatchNormalization"), 0);
    EXPECT_EQ(live_nodes(after, "Mul"), 1);  // not per channel
  }
  {
    Graph after = check_pass(make(false, false), passes::fold_batchnorm, in, {"conv"});
    EXPECT_EQ(live_nodes(after, "BatchNormalization"), 1);
    EXPECT_NE(after.find_value("conv"), -1);
  }
  {
    Graph after = check_pass(make(true, false), passes::fold_batchnorm, in);
    EXPECT_EQ(live_nodes(after, "BatchNormalization"), 1);
  }
  {
    auto in2 = in;
    in2["w"] = random_tensor({2, 2, 1, 1}, 6);
    Graph after = check_pass(make(false, true), passes::fold_batchnorm, in2);
    EXPECT_EQ(live_nodes(after, "BatchNormalization"), 1);
  }
}

TEST(Passes, FoldBatchNormDoesNotTouchSharedWeights) {
  // Two convs share W; folding BN into the first must not change the second.
  Graph g;
  int x = g.add_input("x", DType::f32, {1, 2, 3, 3});
  int w = g.add_constant("w", random_tensor({2, 2, 1, 1}, 100));
  int c1 = g.add_node("Conv", "c1", {x, w});
  int bn = add_bn(g, out_of(g, c1), 2, "bn", 101);
  int c2 = g.add_node("Conv", "c2", {x, w});
  g.outputs = {out_of(g, bn), out_of(g, c2)};
  Tensor w_before = g.values[static_cast<size_t>(w)].constant.clone();
  Graph after = check_pass(g, passes::fold_batchnorm, {{"x", random_tensor({1, 2, 3, 3}, 7)}});
  EXPECT_EQ(live_nodes(after), 2);
  expect_close(g.values[static_cast<size_t>(w)].constant, w_before, 0);
}

// ---------------------------------------------------------------- fuse_activations

namespace {
/// producer -> activation -> output; returns the graph.
Graph producer_activation(const std::string& producer, const std::string& act,
                          const Attributes& act_attrs, std::vector<double> clip = {}) {
  Graph g;
  int x, y;
  if (producer == "Conv" || producer == "ConvTranspose") {
    x = g.add_input("x", DType::f32, {1, 3, 5, 5});
    int w = g.add_constant("w", random_tensor({3, 3, 3, 3}, 110, -2, 2));
    int b = g.add_constant("b", random_tensor({3}, 111));
    y = out_of(g, g.add_node(producer, "p", {x, w, b}, ints_attr({{"pads", {1, 1, 1, 1}}})));
  } else if (producer == "Gemm") {
    x = g.add_input("x", DType::f32, {4, 6});
    int w = g.add_constant("w", random_tensor({6, 5}, 112, -2, 2));
    y = out_of(g, g.add_node("Gemm", "p", {x, w}));
  } else {  // MatMul
    x = g.add_input("x", DType::f32, {2, 4, 6});
    int w = g.add_constant("w", random_tensor({6, 5}, 113, -2, 2));
    y = out_of(g, g.add_node("MatMul", "p", {x, w}));
  }
  std::vector<int> ins{y};
  for (size_t i = 0; i < clip.size(); ++i)
    ins.push_back(std::isnan(clip[i])
                      ? -1
                      : g.add_constant("clip" + std::to_string(i),
                                       Tensor::scalar<float>(static_cast<float>(clip[i]))));
  int a = g.add_node(act, "act", ins, act_attrs);
  g.values[static_cast<size_t>(out_of(g, a))].prov.source_name = "act_layer";
  g.outputs = {out_of(g, a)};
  return g;
}

std::map<std::string, Tensor> input_for(const Graph& g) {
  const Value& v = g.values[static_cast<size_t>(g.inputs[0])];
  return {{v.name, random_tensor(v.shape, 8, -2, 2)}};
}
}  // namespace

TEST(Passes, FuseActivationsIntoEveryProducer) {
  Attributes none, leaky, hs, elu;
  leaky.set("alpha", 0.2);
  hs.set("alpha", 0.3);
  hs.set("beta", 0.4);
  elu.set("alpha", 0.7);
  struct Case {
    std::string act;
    Attributes attrs;
    std::vector<double> clip;
  };
  std::vector<Case> cases{{"Relu", none, {}},           {"LeakyRelu", leaky, {}},
                          {"Sigmoid", none, {}},        {"Tanh", none, {}},
                          {"HardSigmoid", hs, {}},      {"Elu", elu, {}},
                          {"Clip", none, {-0.5, 0.75}}, {"Clip", none, {NAN, 1.0}}};
  for (const std::string producer : {"Conv", "ConvTranspose", "Gemm", "MatMul"}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(producer + " + " + c.act);
      Graph g = producer_activation(producer, c.act, c.attrs, c.clip);
      Graph after = check_pass(g, passes::fuse_activations, input_for(g));
      ASSERT_EQ(live_nodes(after), 1);
      const Node& n = after.nodes[0];
      EXPECT_EQ(n.op, producer);
      EXPECT_EQ(n.attrs.get_string("activation"), c.act);
      const Value& out = after.values[static_cast<size_t>(n.outputs[0])];
      EXPECT_EQ(out.name, "act");
      EXPECT_EQ(out.prov.source_name, "act_layer");
    }
  }
}

TEST(Passes, FuseActivationsRespectsProtectedAndSharedValues) {
  Graph g = producer_activation("Conv", "Relu", {});
  {
    Graph after = check_pass(g, passes::fuse_activations, input_for(g), {"p"});
    EXPECT_EQ(live_nodes(after), 2);
    EXPECT_FALSE(after.nodes[0].attrs.has("activation"));
  }
  // A second consumer of the conv output.
  int t = g.add_node("Tanh", "t", {g.find_value("p")});
  g.outputs.push_back(out_of(g, t));
  Graph after = check_pass(g, passes::fuse_activations, input_for(g));
  EXPECT_EQ(live_nodes(after), 3);
  // A graph output is never fused away.
  Graph g2 = producer_activation("Gemm", "Relu", {});
  g2.outputs.push_back(g2.find_value("p"));
  Graph after2 = check_pass(g2, passes::fuse_activations, input_for(g2));
  EXPECT_EQ(live_nodes(after2), 2);
}

TEST(Passes, FuseActivationsSkipsNonConstantClipBounds) {
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3});
  int lo = g.add_input("lo", DType::f32, {});
  int w = g.add_constant("w", random_tensor({3, 3}, 120));
  int mm = g.add_node("MatMul", "mm", {x, w});
  int c = g.add_node("Clip", "clip", {out_of(g, mm), lo});
  g.outputs = {out_of(g, c)};
  Graph after = check_pass(g, passes::fuse_activations,
                           {{"x", random_tensor({2, 3}, 9)}, {"lo", Tensor::scalar<float>(0.1f)}});
  EXPECT_EQ(live_nodes(after), 2);
}

// ---------------------------------------------------------------- the simpler passes

TEST(Passes, RemoveDeadNodesKeepsOutputsAndProtected) {
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3});
  int a = g.add_node("Relu", "a", {x});
  int b = g.add_node("Sigmoid", "b", {x});          // dead
  int c = g.add_node("Tanh", "c", {out_of(g, b)});  // dead
  int d = g.add_node("Neg", "d", {x});              // protected
  g.outputs = {out_of(g, a)};
  (void)c;
  (void)d;
  std::map<std::string, Tensor> in{{"x", random_tensor({2, 3}, 10)}};
  Graph after = check_pass(g, passes::remove_dead_nodes, in, {"d"});
  EXPECT_EQ(live_nodes(after), 2);
  EXPECT_EQ(after.find_node("b"), -1);
  EXPECT_EQ(after.find_node("c"), -1);
  EXPECT_NE(after.find_node("d"), -1);
  // The protected value is still readable, with the right value.
  auto got = run_plain(after, in, {"d"});
  const Tensor& xin = in.at("x");
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_FLOAT_EQ(static_cast<float>(got.at("d").get(i)), -static_cast<float>(xin.get(i)));
}

TEST(Passes, RemoveIdentitiesRewiresConsumers) {
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3});
  int i1 = g.add_node("Identity", "i1", {x});
  int d1 = g.add_node("Dropout", "d1", {out_of(g, i1)});
  int r = g.add_node("Relu", "r", {out_of(g, d1)});
  int i2 = g.add_node("Identity", "i2", {out_of(g, r)});  // a graph output: stays
  int i3 = g.add_node("Identity", "i3", {out_of(g, r)});  // protected: stays
  int n = g.add_node("Neg", "n", {out_of(g, i3)});
  g.outputs = {out_of(g, i2), out_of(g, n)};
  Graph after =
      check_pass(g, passes::remove_identities, {{"x", random_tensor({2, 3}, 11)}}, {"i3"});
  EXPECT_EQ(after.find_node("i1"), -1);
  EXPECT_EQ(after.find_node("d1"), -1);
  EXPECT_NE(after.find_node("i2"), -1);
  EXPECT_NE(after.find_node("i3"), -1);
  EXPECT_EQ(live_nodes(after), 4);
  const Node& relu = after.nodes[static_cast<size_t>(after.find_node("r"))];
  EXPECT_EQ(after.values[static_cast<size_t>(relu.inputs[0])].name, "x");
}

TEST(Passes, FoldConstantsComputesReshapeTargetFromShapeChain) {
  // Reshape(x, Concat(Gather(Shape(x), [0]), [-1])): x (2, 3, 4) -> (2, 12).
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3, 4});
  int sh = g.add_node("Shape", "shape", {x});
  int idx = g.add_constant("idx", Tensor::from_vector<int64_t>({1}, {0}));
  int ga = g.add_node("Gather", "gather", {out_of(g, sh), idx});
  int m1 = g.add_constant("minus1", Tensor::from_vector<int64_t>({1}, {-1}));
  Attributes ax;
  ax.set("axis", int64_t{0});
  int cat = g.add_node("Concat", "concat", {out_of(g, ga), m1}, ax);
  int rs = g.add_node("Reshape", "reshape", {x, out_of(g, cat)});
  g.outputs = {out_of(g, rs)};
  // Shapes cannot be inferred before folding (Reshape needs the computed target).
  Graph g1 = g;
  EXPECT_THROW(g1.infer_shapes(), Error);
  Graph after = g;
  passes::fold_constants(after, {"reshape"});
  after.compact();
  EXPECT_EQ(live_nodes(after), 1);
  EXPECT_EQ(after.nodes[0].op, "Reshape");
  const Value& target = after.values[static_cast<size_t>(after.nodes[0].inputs[1])];
  ASSERT_TRUE(target.is_constant());
  EXPECT_EQ(target.constant.to_int64s(), (std::vector<int64_t>{2, -1}));
  EXPECT_EQ(after.values[static_cast<size_t>(after.outputs[0])].shape, (Shape{2, 12}));
  Tensor in = random_tensor({2, 3, 4}, 12);
  auto got = run_plain(after, {{"x", in}});
  const Tensor& y = got.begin()->second;
  ASSERT_EQ(y.shape(), (Shape{2, 12}));
  for (int64_t i = 0; i < 24; ++i) EXPECT_EQ(y.get(i), in.get(i));
}

TEST(Passes, FoldConstantsEvaluatesConstantSubgraphs) {
  Graph g;
  int x = g.add_input("x", DType::f32, {3});
  int a = g.add_constant("a", Tensor::from_vector<float>({3}, {1, 2, 3}));
  int b = g.add_constant("b", Tensor::from_vector<float>({3}, {10, 20, 30}));
  int s = g.add_node("Add", "s", {a, b});             // constant: folds
  int y = g.add_node("Mul", "y", {x, out_of(g, s)});  // depends on x: stays
  g.outputs = {out_of(g, y)};
  Graph after =
      check_pass(g, passes::fold_constants, {{"x", Tensor::from_vector<float>({3}, {1, -1, 0.5})}});
  EXPECT_EQ(live_nodes(after), 1);
  const Value& folded = after.values[static_cast<size_t>(after.nodes[0].inputs[1])];
  ASSERT_TRUE(folded.is_constant());
  EXPECT_EQ(folded.constant.to_doubles(), (std::vector<double>{11, 22, 33}));
}

TEST(Passes, OptimizePipelineKeepsOutputsAndTaps) {
  // conv -> bn -> relu -> conv -> identity -> add(x) ; taps on the first relu survive.
  Graph g;
  int x = g.add_input("x", DType::f32, {1, 2, 6, 6});
  int w1 = g.add_constant("w1", random_tensor({4, 2, 3, 3}, 130));
  int c1 = g.add_node("Conv", "c1", {x, w1}, ints_attr({{"pads", {1, 1, 1, 1}}}));
  int bn = add_bn(g, out_of(g, c1), 4, "bn", 131);
  int r = g.add_node("Relu", "r", {out_of(g, bn)});
  int w2 = g.add_constant("w2", random_tensor({2, 4, 1, 1}, 132));
  int c2 = g.add_node("Conv", "c2", {out_of(g, r), w2});
  int id = g.add_node("Identity", "id", {out_of(g, c2)});
  int s = g.add_node("Add", "sum", {out_of(g, id), x});
  g.outputs = {out_of(g, s)};
  std::map<std::string, Tensor> in{{"x", random_tensor({1, 2, 6, 6}, 13)}};
  auto want = run_plain(g, in, {"sum", "r"});
  SessionOptions o;
  o.backend = "reference";  // the passes alone, against run_plain on the same backend
  o.taps = {"r"};
  Session sess(g, o);
  auto got = sess.run(in, {"sum", "r"});
  expect_close(got.at("sum"), want.at("sum"));
  expect_close(got.at("r"), want.at("r"));
  // bn folded into c1, r fused into c1 (r is the tapped output: the conv produces it).
  EXPECT_EQ(live_nodes(sess.graph(), "BatchNormalization"), 0);
  EXPECT_EQ(live_nodes(sess.graph(), "Identity"), 0);
  EXPECT_EQ(live_nodes(sess.graph()), 3);
}
