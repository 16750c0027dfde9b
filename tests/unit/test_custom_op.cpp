// Custom ops: register an op (shape rule + kernel), build a graph with it through the builder,
// run it in a Session; map source op types to it.
#include <gtest/gtest.h>

#include <cmath>

#include "anvil/builder.h"
#include "anvil/error.h"
#include "anvil/ops.h"
#include "anvil/session.h"

using namespace anvil;

namespace {

// y = min(x * sigmoid(beta * x), cap): a "Swish6" with attributes beta (default 1), cap (6).
OpDef swish6_def() {
  OpDef d;
  d.name = "CustomOpTest_Swish6";
  d.category = "activation";
  d.doc = "y = min(x * sigmoid(beta * x), cap)";
  d.attrs = {{"beta", AttrType::Float, "sigmoid slope (default 1)"},
             {"cap", AttrType::Float, "upper bound (default 6)"}};
  d.infer = [](InferContext& c) {
    if (!is_float(c.dtype(0))) c.fail("X", "expects a float tensor");
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    double beta = c.attrs().get_float("beta", 1.0), cap = c.attrs().get_float("cap", 6.0);
    const Tensor& x = c.inputs[0];
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = x.get(i);
      c.outputs[0].set(i, std::min(v / (1.0 + std::exp(-beta * v)), cap));
    }
  };
  return d;
}

// Two outputs: (x + y, x - y), to check multi-output custom layers.
OpDef sumdiff_def() {
  OpDef d;
  d.name = "CustomOpTest_SumDiff";
  d.min_inputs = d.max_inputs = 2;
  d.min_outputs = d.max_outputs = 2;
  d.infer = [](InferContext& c) {
    if (c.shape(0) != c.shape(1)) c.fail("inputs", "shapes differ");
    c.set_output(0, c.dtype(0), c.shape(0));
    c.set_output(1, c.dtype(0), c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    for (int64_t i = 0; i < c.inputs[0].numel(); ++i) {
      c.outputs[0].set(i, c.inputs[0].get(i) + c.inputs[1].get(i));
      c.outputs[1].set(i, c.inputs[0].get(i) - c.inputs[1].get(i));
    }
  };
  return d;
}

const bool registered = [] {
  register_op(swish6_def());
  register_op(sumdiff_def());
  return true;
}();

}  // namespace

TEST(CustomOp, RegisteredOpRunsInASession) {
  ASSERT_TRUE(registered);
  Builder b("custom");
  auto x = b.input("x", {1, 5});
  Attributes a;
  a.set("beta", 2.0);
  auto y = b.custom("CustomOpTest_Swish6", {x}, a, "swish");
  EXPECT_EQ(y.shape(), (Shape{1, 5}));
  auto z = x >> b.custom_layer("CustomOpTest_Swish6");  // defaults: beta 1, cap 6
  b.output(y);
  b.output(z, "z");
  Graph g = b.build();
  EXPECT_EQ(g.nodes[0].source_op, "CustomOpTest_Swish6");
  Session s(g);
  auto out = s.run({{"x", Tensor::from_vector<float>({1, 5}, {0.0f, 1.0f, -1.0f, 10.0f, 3.0f})}});
  // Hand values: x * sigmoid(2x): 0; 1/(1+e^-2) = 0.8807971; -1/(1+e^2) = -0.1192029; cap 6;
  // 3/(1+e^-6) = 2.9925821.
  const Tensor& t = out.at("swish");
  EXPECT_NEAR(t.get(0), 0.0, 1e-7);
  EXPECT_NEAR(t.get(1), 0.8807971, 1e-6);
  EXPECT_NEAR(t.get(2), -0.1192029, 1e-6);
  EXPECT_NEAR(t.get(3), 6.0, 1e-7);
  EXPECT_NEAR(t.get(4), 2.9925821, 1e-6);
  // beta 1: 1/(1+e^-1) = 0.7310586; 10 * sigmoid(10) = 9.9995 -> capped at 6.
  const Tensor& u = out.at("z");
  EXPECT_NEAR(u.get(1), 0.7310586, 1e-6);
  EXPECT_NEAR(u.get(3), 6.0, 1e-7);
}

TEST(CustomOp, MultiOutputCustomLayer) {
  Builder b("multi");
  auto x = b.input("x", {3});
  auto y = b.input("y", {3});
  auto outs = b.custom_multi("CustomOpTest_SumDiff", {x, y}, 2, {}, "sd");
  ASSERT_EQ(outs.size(), 2u);
  b.output(outs[0], "sum");
  b.output(outs[1], "diff");
  Session s(b.build());
  auto r = s.run({{"x", Tensor::from_vector<float>({3}, {1, 2, 3})},
                  {"y", Tensor::from_vector<float>({3}, {10, 20, 30})}});
  EXPECT_EQ(r.at("sum").to_doubles(), (std::vector<double>{11, 22, 33}));
  EXPECT_EQ(r.at("diff").to_doubles(), (std::vector<double>{-9, -18, -27}));
}

TEST(CustomOp, ErrorsNameTheLayer) {
  EXPECT_THROW(register_op(swish6_def()), Error);  // already registered
  Builder b("errors");
  auto x = b.input("x", {2});
  try {
    b.custom("CustomOpTest_NoSuchOp", {x}, {}, "nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "nope");
  }
  Attributes bad;
  bad.set("gamma", 1.0);
  try {
    b.custom("CustomOpTest_Swish6", {x}, bad, "badattr");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "badattr");
    EXPECT_EQ(e.field(), "gamma");
  }
  auto i = b.input("i", {2}, DType::i32);
  try {
    b.custom("CustomOpTest_Swish6", {i}, {}, "intinput");  // the shape rule rejects it
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "intinput");
    EXPECT_EQ(e.field(), "X");
  }
}

TEST(CustomOp, MapSourceOp) {
  EXPECT_FALSE(mapped_source_op("onnx", "CustomOpTest_Unmapped").has_value());
  map_source_op("onnx", "MySwish6", "CustomOpTest_Swish6");
  map_source_op("keras", "Swish6Layer", "CustomOpTest_Swish6");
  EXPECT_EQ(mapped_source_op("onnx", "MySwish6").value_or(""), "CustomOpTest_Swish6");
  EXPECT_EQ(mapped_source_op("keras", "Swish6Layer").value_or(""), "CustomOpTest_Swish6");
  EXPECT_FALSE(mapped_source_op("caffe", "MySwish6").has_value());  // per framework
  map_source_op("onnx", "MySwish6", "CustomOpTest_SumDiff");        // a later mapping wins
  EXPECT_EQ(mapped_source_op("onnx", "MySwish6").value_or(""), "CustomOpTest_SumDiff");
}
