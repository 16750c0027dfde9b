// Tests of the shared op vocabulary (src/ops/activation.h, src/ops/attrs.h): the Activation
// enum round trip, the fused-activation attributes, and the parsed attribute structs that the
// reference kernels and the backends share (same values and errors as the reference kernels).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "ops/activation.h"
#include "ops/attrs.h"

using namespace anvil;

TEST(OpsVocabulary, ActivationNamesRoundTrip) {
  for (Activation a : {Activation::None, Activation::Relu, Activation::Clip, Activation::LeakyRelu,
                       Activation::Sigmoid, Activation::Tanh, Activation::HardSigmoid,
                       Activation::Elu, Activation::HardSwish})
    EXPECT_EQ(activation_from_name(activation_name(a)), a);
  EXPECT_FALSE(activation_from_name("Softmax").has_value());
  EXPECT_TRUE(is_fusable_activation("Relu"));
  EXPECT_FALSE(is_fusable_activation(""));
  EXPECT_FALSE(is_fusable_activation("Add"));
}

TEST(OpsVocabulary, FusedActivationAttributesAndDefaults) {
  Attributes a;
  EXPECT_TRUE(read_fused_activation("Conv", a).empty());
  a.set("activation", std::string("LeakyRelu"));
  FusedActivation f = read_fused_activation("Conv", a);
  EXPECT_EQ(f.kind, Activation::LeakyRelu);
  EXPECT_DOUBLE_EQ(f.alpha, 0.01);
  a.set("activation", std::string("Clip"));
  f = read_fused_activation("Conv", a);
  EXPECT_TRUE(std::isinf(f.alpha) && f.alpha < 0 && std::isinf(f.beta) && f.beta > 0);
  FusedActivation h{Activation::HardSigmoid, 0.5, 0.25};
  Attributes b;
  write_fused_activation(b, h);
  f = read_fused_activation("Gemm", b);
  EXPECT_EQ(f.kind, h.kind);
  EXPECT_EQ(f.alpha, h.alpha);
  EXPECT_EQ(f.beta, h.beta);
  b.set("activation", std::string("Swish"));
  try {
    read_fused_activation("Gemm", b);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Gemm: unknown fused activation 'Swish'"),
              std::string::npos);
    EXPECT_EQ(e.field(), "activation");
  }
}

TEST(OpsVocabulary, FusedActivationsPropagateNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (Activation a :
       {Activation::Relu, Activation::Clip, Activation::LeakyRelu, Activation::Sigmoid,
        Activation::Tanh, Activation::HardSigmoid, Activation::Elu, Activation::HardSwish}) {
    FusedActivation f = activation_defaults(a);
    if (a == Activation::Clip) f.alpha = 0, f.beta = 6;
    EXPECT_TRUE(std::isnan(f(nan))) << activation_name(a);
  }
  EXPECT_EQ(apply_activation(Activation::Relu, 0, 0, -2.0), 0.0);
  EXPECT_EQ(apply_activation(Activation::Relu, 0, 0, std::numeric_limits<double>::infinity()),
            std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(apply_activation(Activation::HardSwish, 0, 0, 1.0), 1.0 * (1.0 / 6 + 0.5));
}

TEST(OpsVocabulary, ActivationOfNode) {
  Graph g;
  int x = g.add_input("x", DType::f32, {1, 4});
  int lo = g.add_constant("lo", Tensor::scalar(0.0f));
  int hi = g.add_constant("hi", Tensor::scalar(6.0f));
  int clip = g.add_node("Clip", "clip", {x, lo, hi}, {}, 1);
  auto f = activation_of_node(g, g.nodes[static_cast<size_t>(clip)]);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Activation::Clip);
  EXPECT_EQ(f->alpha, 0.0);
  EXPECT_EQ(f->beta, 6.0);
  int clip2 = g.add_node("Clip", "clip2", {x, x}, {}, 1);  // non-constant bound
  EXPECT_FALSE(activation_of_node(g, g.nodes[static_cast<size_t>(clip2)]).has_value());
  Attributes la;
  la.set("alpha", 0.2);
  int lr = g.add_node("LeakyRelu", "lr", {x}, la, 1);
  f = activation_of_node(g, g.nodes[static_cast<size_t>(lr)]);
  ASSERT_TRUE(f.has_value());
  EXPECT_DOUBLE_EQ(f->alpha, 0.2);
  int add = g.add_node("Add", "add", {x, x}, {}, 1);
  EXPECT_FALSE(activation_of_node(g, g.nodes[static_cast<size_t>(add)]).has_value());
}

TEST(OpsAttrs, ConvAttrs) {
  Attributes a;
  a.set("strides", std::vector<int64_t>{2, 2});
  a.set("pads", std::vector<int64_t>{1, 1, 0, 0});
  a.set("activation", std::string("Relu"));
  ConvAttrs c = parse_conv_attrs("Conv", a, {1, 4, 9, 9}, {8, 4, 3, 3}, nullptr);
  EXPECT_EQ(c.nsp, 2);
  EXPECT_EQ(c.M, 8);
  EXPECT_EQ(c.out_shape, (Shape{1, 8, 4, 4}));
  EXPECT_EQ(c.act.kind, Activation::Relu);
  Attributes t;
  t.set("output_shape", std::vector<int64_t>{10, 10});
  t.set("strides", std::vector<int64_t>{2, 2});
  ConvAttrs d = parse_conv_attrs("ConvTranspose", t, {1, 4, 5, 5}, {4, 3, 3, 3}, nullptr);
  EXPECT_TRUE(d.transpose && d.has_output_shape);
  EXPECT_EQ(d.out_shape, (Shape{1, 3, 10, 10}));
  Shape bad_bias{5};
  try {
    parse_conv_attrs("Conv", a, {1, 4, 9, 9}, {8, 4, 3, 3}, &bad_bias);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "B");
    EXPECT_NE(std::string(e.what()).find("Conv: bias must have shape (8,)"), std::string::npos);
  }
}

TEST(OpsAttrs, PoolAttrsCeilModeAndErrors) {
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{3, 3});
  a.set("strides", std::vector<int64_t>{2, 2});
  a.set("ceil_mode", int64_t{1});
  PoolAttrs p = parse_pool_attrs(PoolKind::Max, a, {1, 2, 8, 8});
  EXPECT_EQ(p.out_shape, (Shape{1, 2, 4, 4}));  // ceil((8-3)/2)+1 = 4
  EXPECT_EQ(p.off(), 1);
  EXPECT_EQ(p.k[p.off()], 3);
  EXPECT_EQ(p.in[0], 1);
  Attributes none;
  try {
    parse_pool_attrs(PoolKind::Avg, none, {1, 2, 8, 8});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "kernel_shape");
    EXPECT_NE(std::string(e.what()).find("AveragePool: required attribute is missing"),
              std::string::npos);
  }
}

TEST(OpsAttrs, GemmAndMatMulAttrs) {
  Attributes a;
  a.set("transB", int64_t{1});
  a.set("alpha", 0.5);
  GemmAttrs g = parse_gemm_attrs(a, {3, 4}, {5, 4}, nullptr);
  EXPECT_EQ(g.M, 3);
  EXPECT_EQ(g.K, 4);
  EXPECT_EQ(g.N, 5);
  EXPECT_TRUE(g.tb);
  EXPECT_EQ(g.alpha, 0.5);
  EXPECT_EQ(g.beta, 1.0);
  EXPECT_THROW(parse_gemm_attrs({}, {3, 4}, {5, 4}, nullptr), Error);
  MatMulAttrs m = parse_matmul_attrs({}, {2, 1, 3, 4}, {5, 4, 6});
  EXPECT_EQ(m.out_shape, (Shape{2, 5, 3, 6}));
}

TEST(OpsAttrs, FromGraphNodeNamesTheNode) {
  Graph g;
  g.source_file = "m.onnx";
  int x = g.add_input("x", DType::f32, {1, 4, 9, 9});
  int w = g.add_constant("w", Tensor(DType::f32, {8, 3, 3, 3}));
  int n = g.add_node("Conv", "conv1", {x, w}, {}, 1);
  try {
    conv_attrs(g, g.nodes[static_cast<size_t>(n)]);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "conv1");
    EXPECT_EQ(e.file(), "m.onnx");
    EXPECT_EQ(e.field(), "W");
  }
}
