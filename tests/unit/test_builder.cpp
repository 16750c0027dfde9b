// The builder DSL: shapes while building, explicit padding, errors naming layers and weights,
// weights, and numeric results (hand-computed) through a Session.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "anvil/builder.h"
#include "anvil/error.h"
#include "anvil/session.h"

using namespace anvil;

namespace {
Tensor filled(Shape shape, std::vector<float> v) {
  return Tensor::from_vector<float>(std::move(shape), v);
}

Tensor random_input(Shape shape, uint64_t seed) {
  Tensor t(DType::f32, std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-1, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, d(rng));
  return t;
}

const Node& node_named(const Graph& g, const std::string& n) {
  int i = g.find_node(n);
  if (i < 0) throw std::runtime_error("no node " + n);
  return g.nodes[static_cast<size_t>(i)];
}
}  // namespace

TEST(Builder, LeNetShapesAreKnownWhileBuilding) {
  Builder b("lenet");
  auto x = b.input("image", {1, 1, 28, 28});
  auto c = x >> b.conv2d(8, {3, 3}, {.padding = Padding::same, .name = "conv1"});
  EXPECT_EQ(c.shape(), (Shape{1, 8, 28, 28}));
  auto p = c >> b.relu() >> b.max_pool({2, 2});
  EXPECT_EQ(p.shape(), (Shape{1, 8, 14, 14}));
  auto f = p >> b.flatten();
  EXPECT_EQ(f.shape(), (Shape{1, 8 * 14 * 14}));
  auto y = f >> b.dense(10) >> b.softmax();
  EXPECT_EQ(y.shape(), (Shape{1, 10}));
  b.output(y, "probs");
  EXPECT_EQ(b.weight_shapes("conv1").at("kernel"), (Shape{8, 1, 3, 3}));
  EXPECT_EQ(b.weight_shapes("dense_1").at("kernel"), (Shape{1568, 10}));
  b.initialize_random(7);
  Graph g = b.build();
  EXPECT_EQ(g.framework, "builder");
  EXPECT_EQ(g.name, "lenet");
  Session s(g);
  auto out = s.run({{"image", random_input({1, 1, 28, 28}, 1)}});
  ASSERT_EQ(out.count("probs"), 1u);
  const Tensor& probs = out.at("probs");
  ASSERT_EQ(probs.shape(), (Shape{1, 10}));
  double sum = 0;
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_GT(probs.get(i), 0.0);
    sum += probs.get(i);
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
}

TEST(Builder, SamePaddingIsExplicitTensorFlowRule) {
  // TF 'same': out = ceil(in / s), total = max((out - 1) * s + k - in, 0), extra cell at the end.
  Builder b("pads");
  auto x = b.input("x", {1, 2, 6, 5});
  // H: in 6, k 3, s 2 -> out 3, total 1 -> (0, 1).  W: in 5, k 3, s 2 -> out 3, total 2 -> (1, 1).
  auto y = x >> b.conv2d(3, {3, 3}, {.padding = Padding::same, .stride = 2, .name = "c"});
  EXPECT_EQ(y.shape(), (Shape{1, 3, 3, 3}));
  EXPECT_EQ(node_named(b.graph(), "c").attrs.get_ints("pads"), (std::vector<int64_t>{0, 1, 1, 1}));
  // Dilation 2 makes the 3x3 kernel span 5: H in 6, s 1 -> total 4 -> (2, 2).
  auto z = x >> b.conv2d(1, {3, 1}, {.padding = Padding::same, .dilation = {2, 1}, .name = "d"});
  EXPECT_EQ(z.shape(), (Shape{1, 1, 6, 5}));
  EXPECT_EQ(node_named(b.graph(), "d").attrs.get_ints("pads"), (std::vector<int64_t>{2, 0, 2, 0}));
  // Pooling: 'valid' default, stride = kernel.
  auto p = x >> b.max_pool(2, {.name = "mp"});
  EXPECT_EQ(p.shape(), (Shape{1, 2, 3, 2}));
  EXPECT_EQ(node_named(b.graph(), "mp").attrs.get_ints("pads"), (std::vector<int64_t>{0, 0, 0, 0}));
  auto q = x >> b.avg_pool(3, {.padding = Padding::same, .stride = 2, .name = "ap"});
  EXPECT_EQ(q.shape(), (Shape{1, 2, 3, 3}));
  EXPECT_EQ(node_named(b.graph(), "ap").attrs.get_ints("pads"), (std::vector<int64_t>{0, 1, 1, 1}));
}

TEST(Builder, ConvAndDenseComputeHandValues) {
  Builder b("tiny");
  auto x = b.input("x", {1, 1, 3, 3});
  auto y = x >> b.conv2d(1, {2, 2}, {.name = "conv"}) >> b.flatten() >> b.dense(2, {.name = "fc"});
  b.output(y);
  b.set_weights("conv",
                {{"kernel", filled({1, 1, 2, 2}, {1, 1, 1, 1})}, {"bias", filled({1}, {0.5f})}});
  // dense kernel is (in, units) = (4, 2): unit 0 sums, unit 1 takes the first element.
  b.set_weights(
      "fc", {{"kernel", filled({4, 2}, {1, 1, 1, 0, 1, 0, 1, 0})}, {"bias", filled({2}, {0, -1})}});
  Session s(b.build());
  auto out = s.run({{"x", filled({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})}});
  // conv windows: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9 (+0.5) = 12.5 16.5 24.5 28.5
  const Tensor& t = out.at("fc");
  ASSERT_EQ(t.shape(), (Shape{1, 2}));
  EXPECT_FLOAT_EQ(static_cast<float>(t.get(0)), 12.5f + 16.5f + 24.5f + 28.5f);
  EXPECT_FLOAT_EQ(static_cast<float>(t.get(1)), 12.5f - 1.0f);
}

TEST(Builder, ConvTransposeAndDepthwiseHandValues) {
  Builder b("up");
  auto x = b.input("x", {1, 2, 2, 2});
  // Stride-2 transpose with a 2x2 kernel of ones: each input pixel fills a 2x2 block.
  auto up = x >> b.conv2d_transpose(1, 2, {.stride = 2, .use_bias = false, .name = "up"});
  EXPECT_EQ(up.shape(), (Shape{1, 1, 4, 4}));
  // Depthwise 1x1 with multiplier 2: channel c -> outputs 2c, 2c+1 scaled by the kernel.
  auto dw = x >> b.depthwise_conv2d(1, {.depth_multiplier = 2, .name = "dw"});
  EXPECT_EQ(dw.shape(), (Shape{1, 4, 2, 2}));
  b.output(up);
  b.output(dw);
  // ConvTranspose kernel (C_in = 2, filters = 1, 2, 2): channel 0 weight 1, channel 1 weight 10.
  b.set_weights("up", {{"kernel", filled({2, 1, 2, 2}, {1, 1, 1, 1, 10, 10, 10, 10})}});
  b.set_weights(
      "dw", {{"kernel", filled({4, 1, 1, 1}, {1, 2, 3, 4})}, {"bias", filled({4}, {0, 0, 0, 1})}});
  Session s(b.build());
  auto out = s.run({{"x", filled({1, 2, 2, 2}, {1, 2, 3, 4, 0.5, 0, 0, 0})}});
  const Tensor& u = out.at("up");
  // out[i][j] = x0[i/2][j/2] + 10 * x1[i/2][j/2]
  float x0[2][2] = {{1, 2}, {3, 4}}, x1[2][2] = {{0.5f, 0}, {0, 0}};
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      EXPECT_FLOAT_EQ(static_cast<float>(u.get(i * 4 + j)),
                      x0[i / 2][j / 2] + 10 * x1[i / 2][j / 2]);
  const Tensor& d = out.at("dw");
  std::vector<float> want{1, 2, 3, 4, 2, 4, 6, 8, 1.5f, 0, 0, 0, 3, 1, 1, 1};
  for (int i = 0; i < 16; ++i)
    EXPECT_FLOAT_EQ(static_cast<float>(d.get(i)), want[static_cast<size_t>(i)]) << i;
}

TEST(Builder, EveryLayerHasItsShapeAndRuns) {
  Builder b("zoo");
  auto x = b.input("x", {2, 3, 8, 8});
  auto a =
      x >> b.conv2d(4, 3, {.padding = Padding::same, .name = "a"}) >> b.batch_norm() >> b.relu6();
  EXPECT_EQ(a.shape(), (Shape{2, 4, 8, 8}));
  auto g = x >> b.conv2d(4, 3, {.padding = Padding::same, .groups = 1, .use_bias = false}) >>
           b.leaky_relu(0.1) >> b.dropout(0.5);
  auto d = x >> b.depthwise_conv2d(3, {.padding = Padding::same, .depth_multiplier = 2}) >>
           b.conv2d(4, 1, {.groups = 2}) >> b.elu() >> b.hard_sigmoid();
  EXPECT_EQ(d.shape(), (Shape{2, 4, 8, 8}));
  auto s = b.add({a, g, d}, "sum");
  EXPECT_EQ(s.shape(), (Shape{2, 4, 8, 8}));
  auto s2 = s + a;
  auto down = s2 >> b.avg_pool(3, {.padding = Padding::same, .stride = 2}) >> b.tanh();
  EXPECT_EQ(down.shape(), (Shape{2, 4, 4, 4}));
  auto up =
      down >> b.conv2d_transpose(3, 3, {.padding = Padding::same, .stride = 2}) >> b.sigmoid();
  EXPECT_EQ(up.shape(), (Shape{2, 3, 8, 8}));
  auto cat = b.concat({up, x}, 1, "cat");
  EXPECT_EQ(cat.shape(), (Shape{2, 6, 8, 8}));
  auto gp = cat >> b.global_avg_pool();
  EXPECT_EQ(gp.shape(), (Shape{2, 6, 1, 1}));
  auto r = gp >> b.reshape({0, -1}) >> b.dense(3) >> b.clip(-0.5, 0.5) >> b.softmax(-1);
  EXPECT_EQ(r.shape(), (Shape{2, 3}));
  b.output(r, "out");
  auto valid_t = x >> b.conv2d_transpose(2, 3, {.stride = 2});  // (in - 1) * s + k = 17
  EXPECT_EQ(valid_t.shape(), (Shape{2, 2, 17, 17}));
  b.initialize_random(3);
  Graph built = b.build();
  for (const auto& n : built.nodes)
    for (int o : n.outputs) {
      const Value& v = built.values[static_cast<size_t>(o)];
      EXPECT_EQ(v.prov.framework, "builder");
      if (v.shape.size() == 4) EXPECT_EQ(v.prov.source_layout, "NCHW");
    }
  Session sess(built);
  auto out = sess.run({{"x", random_input({2, 3, 8, 8}, 4)}});
  const Tensor& t = out.at("out");
  for (int n = 0; n < 2; ++n) {
    double sum = 0;
    for (int k = 0; k < 3; ++k) sum += t.get(n * 3 + k);
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  // Optimized and unoptimized runs agree.
  SessionOptions o;
  o.optimize = false;
  Session plain(built, o);
  auto out2 = plain.run({{"x", random_input({2, 3, 8, 8}, 4)}});
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(t.get(i), out2.at("out").get(i), 1e-5);
}

TEST(Builder, BadShapesThrowNamingTheLayerAndRollBack) {
  Builder b("bad");
  auto x = b.input("x", {1, 3, 5, 5});
  size_t nodes = b.graph().nodes.size(), values = b.graph().values.size();
  try {
    x >> b.conv2d(4, 7, {.name = "big"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "big");
    EXPECT_NE(std::string(e.what()).find("big"), std::string::npos);
  }
  EXPECT_EQ(b.graph().nodes.size(), nodes);
  EXPECT_EQ(b.graph().values.size(), values);
  try {
    x >> b.dense(3, {.name = "fc"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "fc");
    EXPECT_NE(std::string(e.what()).find("flatten"), std::string::npos);
  }
  EXPECT_THROW(x >> b.conv2d(4, 3, {.groups = 2, .name = "grouped"}), Error);
  auto y = b.input("y", {1, 3, 4, 4});
  try {
    b.add({x, y}, "mismatch");  // shapes do not broadcast: the op's shape rule says so
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "mismatch");
  }
  try {
    b.concat({x, y}, 1, "cat");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "cat");
  }
  // The names of failed layers are free again; a good layer still works.
  auto ok = x >> b.conv2d(2, 3, {.name = "big"});
  EXPECT_EQ(ok.shape(), (Shape{1, 2, 3, 3}));
  EXPECT_THROW(x >> b.conv2d(2, 3, {.name = "big"}), Error);  // duplicate name
  Builder other("other");
  auto z = other.input("z", {1, 3, 5, 5});
  EXPECT_THROW(b.add({x, z}), Error);  // from another builder
}

TEST(Builder, WeightsAreCheckedByLayerAndName) {
  Builder b("w");
  auto x = b.input("x", {1, 2, 4, 4});
  b.output(x >> b.conv2d(3, 3, {.name = "conv1"}) >> b.relu());
  try {
    b.set_weights("conv1", {{"kernel", Tensor(DType::f32, {3, 2, 3, 2})}});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "conv1");
    EXPECT_EQ(e.field(), "kernel");
    EXPECT_NE(std::string(e.what()).find("(3, 2, 3, 3)"), std::string::npos);
  }
  EXPECT_THROW(b.set_weights("conv1", {{"weights", Tensor(DType::f32, {3, 2, 3, 3})}}), Error);
  EXPECT_THROW(b.set_weights("conv9", {{"kernel", Tensor(DType::f32, {3, 2, 3, 3})}}), Error);
  EXPECT_THROW(b.set_weights("relu_1", {{"kernel", Tensor(DType::f32, {3, 2, 3, 3})}}), Error);
  // Unset weights: build() names the layer and the weight.
  b.set_weights("conv1", {{"kernel", Tensor(DType::f64, {3, 2, 3, 3})}});  // converted to f32
  try {
    (void)b.build();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "conv1");
    EXPECT_EQ(e.field(), "bias");
  }
  b.initialize_random(1);  // fills only the bias
  Graph g = b.build();
  const Value& k = g.values[static_cast<size_t>(g.find_value("conv1/kernel"))];
  EXPECT_EQ(k.dtype, DType::f32);
  for (int64_t i = 0; i < k.constant.numel(); ++i) EXPECT_EQ(k.constant.get(i), 0.0);
  const Value& bias = g.values[static_cast<size_t>(g.find_value("conv1/bias"))];
  double mag = 0;
  for (int64_t i = 0; i < 3; ++i) mag += std::abs(bias.constant.get(i));
  EXPECT_GT(mag, 0.0);
}

TEST(Builder, RandomInitIsDeterministic) {
  auto make = [](uint64_t seed) {
    Builder b("r");
    auto x = b.input("x", {1, 4});
    b.output(x >> b.dense(3, {.name = "fc"}));
    b.initialize_random(seed);
    Graph g = b.build();
    return g.values[static_cast<size_t>(g.find_value("fc/kernel"))].constant.to_doubles();
  };
  EXPECT_EQ(make(5), make(5));
  EXPECT_NE(make(5), make(6));
  // Glorot uniform: |w| <= sqrt(6 / (4 + 3)).
  for (double v : make(5)) EXPECT_LE(std::abs(v), std::sqrt(6.0 / 7.0));
}
