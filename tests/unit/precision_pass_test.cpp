// SessionOptions::precision (the reduce_precision pass): fp16/bf16 storage with Cast at the
// graph's edges, keep_fp32 layers, results against independent rounding math.
#include <gtest/gtest.h>

#include <cmath>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "anvil/verify.h"

namespace {
using namespace anvil;

// x (1, 4) -> Mul(x, a) named "big" -> Mul(., b) named "small" -> output
Graph scale_graph(float a, float b) {
  Graph g;
  g.name = "scale";
  int x = g.add_input("x", DType::f32, {1, 4});
  int ca = g.add_constant("a", Tensor::scalar<float>(a));
  int cb = g.add_constant("b", Tensor::scalar<float>(b));
  int n1 = g.add_node("Mul", "big", {x, ca});
  int n2 = g.add_node("Mul", "small", {g.nodes[static_cast<size_t>(n1)].outputs[0], cb});
  g.outputs = {g.nodes[static_cast<size_t>(n2)].outputs[0]};
  return g;
}

Tensor input4(std::vector<float> v) { return Tensor::from_vector<float>({1, 4}, v); }

float f16(double x) { return half_to_float(float_to_half(static_cast<float>(x))); }
float bf16(double x) { return bf16_to_float(float_to_bf16(static_cast<float>(x))); }

TEST(PrecisionPass, Fp16RoundsEveryStoredValue) {
  SessionOptions so;
  so.backend = "reference";  // double accumulation, results rounded to the storage type
  so.precision = Precision::fp16;
  Session s(scale_graph(3.3f, 0.7f), so);
  auto out = s.run({{"x", input4({1.1f, -2.2f, 1000.7f, 0.001f})}}).at("small");
  EXPECT_EQ(out.dtype(), DType::f32);  // graph outputs are cast back to float32
  const float xs[4] = {1.1f, -2.2f, 1000.7f, 0.001f};
  for (int i = 0; i < 4; ++i) {
    // storage rounding after each op: f16(f16(f16(x) * f16(a)) * f16(b))
    float want =
        f16(static_cast<double>(f16(static_cast<double>(f16(xs[i])) * f16(3.3))) * f16(0.7));
    EXPECT_EQ(out.data<float>()[i], want) << i;
  }
  // every computing node stores f16; casts only at the edges
  int casts = 0;
  for (const auto& n : s.graph().nodes) {
    if (n.op == "Cast") {
      ++casts;
      continue;
    }
    EXPECT_EQ(s.graph().values[static_cast<size_t>(n.outputs[0])].dtype, DType::f16) << n.name;
  }
  EXPECT_EQ(casts, 2);
}

TEST(PrecisionPass, Bf16KeepsEightBitsOfMantissa) {
  SessionOptions so;
  so.backend = "reference";  // double accumulation, results rounded to the storage type
  so.precision = Precision::bf16;
  Session s(scale_graph(1.0f, 1.0f), so);
  auto out = s.run({{"x", input4({1.00390625f, 3.14159f, -100.3f, 1e-3f})}}).at("small");
  const float xs[4] = {1.00390625f, 3.14159f, -100.3f, 1e-3f};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out.data<float>()[i], bf16(xs[i])) << i;
  EXPECT_EQ(out.data<float>()[0], 1.0f);  // 1 + 2^-8 is below bf16's resolution at 1
}

TEST(PrecisionPass, OverflowAndKeepFp32) {
  SessionOptions so;
  so.backend = "reference";  // double accumulation, results rounded to the storage type
  so.precision = Precision::fp16;
  {
    Session s(scale_graph(1e5f, 1e-5f), so);
    auto out = s.run({{"x", input4({1.f, 2.f, 0.25f, -1.f})}}).at("small");
    EXPECT_TRUE(std::isinf(out.data<float>()[0]));  // 1e5 > 65504: inf in fp16
  }
  so.keep_fp32 = {"big", "small"};
  Session s(scale_graph(1e5f, 1e-5f), so);
  auto out = s.run({{"x", input4({1.f, 2.f, 0.25f, -1.f})}}).at("small");
  const float xs[4] = {1.f, 2.f, 0.25f, -1.f};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out.data<float>()[i], xs[i], 1e-6) << i;
  for (const auto& n : s.graph().nodes)
    if (n.name == "big" || n.name == "small")
      EXPECT_EQ(s.graph().values[static_cast<size_t>(n.outputs[0])].dtype, DType::f32) << n.name;
}

TEST(PrecisionPass, KeepFp32CastsAroundOneLayer) {
  SessionOptions so;
  so.backend = "reference";  // double accumulation, results rounded to the storage type
  so.precision = Precision::fp16;
  so.keep_fp32 = {"big"};
  Session s(scale_graph(3.3f, 0.7f), so);
  auto out = s.run({{"x", input4({1.1f, -2.2f, 1000.7f, 0.001f})}}).at("small");
  const float xs[4] = {1.1f, -2.2f, 1000.7f, 0.001f};
  for (int i = 0; i < 4; ++i) {
    // big in fp32 on the exact input, its result stored as f16 for small
    float want = f16(static_cast<double>(f16(static_cast<double>(xs[i] * 3.3f))) * f16(0.7));
    EXPECT_EQ(out.data<float>()[i], want) << i;
  }
}

TEST(PrecisionPass, Errors) {
  SessionOptions so;
  so.backend = "reference";  // double accumulation, results rounded to the storage type
  so.precision = Precision::fp16;
  so.keep_fp32 = {"no_such_layer"};
  EXPECT_THROW(Session(scale_graph(1, 1), so), Error);
  so.keep_fp32.clear();
  EXPECT_THROW(so.precision = parse_precision("int8"), Error);
  so.precision = Precision::fp32;
  so.keep_fp32 = {"big"};
  EXPECT_THROW(Session(scale_graph(1, 1), so), Error);
}

TEST(PrecisionPass, RealModelsStayClose) {
  // The ONNX demo (PyTorch's probabilities) and a Keras fixture in fp16: close, not equal.
  const std::string demo = std::string(ANVIL_SOURCE_DIR) + "/models/demo/";
  Tensor x = read_npy(demo + "inputs/image.npy");
  ImportOptions io;
  io.input_shapes["image"] = x.shape();
  Graph g = import_model({demo + "digits_cnn.onnx"}, io);
  Tensor want = read_npy(demo + "expected/probs.npy");
  for (const char* p : {"fp16", "bf16"}) {
    SessionOptions so;
    so.backend = "reference";
    so.precision = parse_precision(p);
    Session s(g, so);
    Tensor got = s.run({{"image", x}}).at("probs");
    Comparison c = compare_tensors(got, want, 0, std::string(p) == "fp16" ? 5e-3 : 3e-2);
    EXPECT_TRUE(c.ok()) << p << ": " << c.describe();
    EXPECT_GT(c.max_abs, 0) << p;  // really computed in reduced precision
  }
}

}  // namespace
