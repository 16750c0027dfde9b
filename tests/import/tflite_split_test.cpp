// TFLite operators with several outputs: SPLIT, SPLIT_V and UNPACK (the importer's
// more_outputs path). Single-operator models built with the flatbuffers builder; the SPLIT
// vectors are TFLite Micro's split_test.cc (tensorflow/tflite-micro, kernels/split_test.cc:
// TwoSplitFourDimensionalAxis{Zero,One,Two,Three}, ...NegativeAxis, FourSplit), the SPLIT_V and
// UNPACK expectations are the slices by hand. Also: int8 pass-through of quantization, the
// output tensors fetched by their TFLite names, and errors naming the field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/session.h"
#include "import/tflite/tflite_schema_generated.h"

namespace {

namespace fb = anvil_tflite;
using anvil::Tensor;

struct OneOp {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers{fb::CreateBuffer(b)};
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;

  int tensor(const std::string& name, std::vector<int32_t> shape, fb::TensorType t,
             const std::vector<int32_t>& const_data = {}, bool quant = false) {
    uint32_t buf = 0;
    if (!const_data.empty()) {
      const auto* p = reinterpret_cast<const uint8_t*>(const_data.data());
      std::vector<uint8_t> bytes(p, p + const_data.size() * 4);
      b.ForceVectorAlignment(bytes.size(), 1, 16);
      buffers.push_back(fb::CreateBuffer(b, b.CreateVector(bytes)));
      buf = static_cast<uint32_t>(buffers.size() - 1);
    }
    flatbuffers::Offset<fb::QuantizationParameters> qp = 0;
    if (quant) {
      std::vector<float> s = {0.5f};
      std::vector<int64_t> z = {3};
      qp = fb::CreateQuantizationParametersDirect(b, nullptr, nullptr, &s, &z);
    }
    tensors.push_back(fb::CreateTensorDirect(b, &shape, t, buf, name.c_str(), qp));
    return static_cast<int>(tensors.size()) - 1;
  }

  std::string finish(fb::BuiltinOperator code, std::vector<int32_t> ins, std::vector<int32_t> outs,
                     std::vector<int32_t> graph_ins, fb::BuiltinOptions otype,
                     flatbuffers::Offset<void> opts) {
    std::vector<flatbuffers::Offset<fb::OperatorCode>> codes = {
        fb::CreateOperatorCode(b, static_cast<int8_t>(code), 0, 1, code)};
    std::vector<flatbuffers::Offset<fb::Operator>> ops = {
        fb::CreateOperatorDirect(b, 0, &ins, &outs, otype, opts)};
    std::vector<flatbuffers::Offset<fb::SubGraph>> sgs = {
        fb::CreateSubGraphDirect(b, &tensors, &graph_ins, &outs, &ops, "main")};
    fb::FinishModelBuffer(b, fb::CreateModelDirect(b, 3, &codes, &sgs, "split test", &buffers));
    const std::string path = ::testing::TempDir() + "/anvil_split_" + std::to_string(::getpid()) +
                             "_" + std::to_string(counter++) + ".tflite";
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.GetBufferPointer()),
            static_cast<std::streamsize>(b.GetSize()));
    return path;
  }
  static inline int counter = 0;
};

std::map<std::string, Tensor> run(const std::string& path, const Tensor& x) {
  anvil::SessionOptions so;
  so.backend = "reference";
  anvil::Session s(anvil::import_model({path}), so);
  return s.run({{"x", x}});
}

Tensor ramp16() {  // split_test.cc's input: 1..16 as (2, 2, 2, 2)
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i + 1);
  return Tensor::from_vector<float>({2, 2, 2, 2}, v);
}

std::vector<float> values(const Tensor& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(static_cast<float>(t.get(i)));
  return v;
}

std::string split_model(int axis, int n, const std::vector<int32_t>& in_shape,
                        const std::vector<int32_t>& out_shape,
                        fb::TensorType t = fb::TensorType_FLOAT32, bool quant = false) {
  OneOp m;
  const int a = m.tensor("axis", {1}, fb::TensorType_INT32, {axis});
  const int x = m.tensor("x", in_shape, t, {}, quant);
  std::vector<int32_t> outs;
  for (int k = 0; k < n; ++k)
    outs.push_back(m.tensor("out" + std::to_string(k), out_shape, t, {}, quant));
  return m.finish(fb::BuiltinOperator_SPLIT, {a, x}, outs, {x}, fb::BuiltinOptions_SplitOptions,
                  fb::CreateSplitOptions(m.b, n).Union());
}

struct SplitCase {
  int axis;
  std::vector<int32_t> out_shape;
  std::vector<float> golden1, golden2;
};

TEST(TfliteSplit, TwoSplitFourDimensional) {
  const std::vector<SplitCase> cases = {
      {0, {1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11, 12, 13, 14, 15, 16}},
      {1, {2, 1, 2, 2}, {1, 2, 3, 4, 9, 10, 11, 12}, {5, 6, 7, 8, 13, 14, 15, 16}},
      {2, {2, 2, 1, 2}, {1, 2, 5, 6, 9, 10, 13, 14}, {3, 4, 7, 8, 11, 12, 15, 16}},
      {3, {2, 2, 2, 1}, {1, 3, 5, 7, 9, 11, 13, 15}, {2, 4, 6, 8, 10, 12, 14, 16}},
      {-4, {1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11, 12, 13, 14, 15, 16}},
  };
  for (const auto& c : cases) {
    auto out = run(split_model(c.axis, 2, {2, 2, 2, 2}, c.out_shape), ramp16());
    ASSERT_EQ(out.size(), 2u) << "axis " << c.axis;
    EXPECT_EQ(out.at("out0").shape(), anvil::Shape(c.out_shape.begin(), c.out_shape.end()));
    EXPECT_EQ(values(out.at("out0")), c.golden1) << "axis " << c.axis;
    EXPECT_EQ(values(out.at("out1")), c.golden2) << "axis " << c.axis;
  }
}

TEST(TfliteSplit, FourSplit) {
  auto out = run(split_model(0, 4, {4}, {1}), Tensor::from_vector<float>({4}, {1, 2, 3, 4}));
  ASSERT_EQ(out.size(), 4u);
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(values(out.at("out" + std::to_string(k))), std::vector<float>{float(k + 1)});
}

TEST(TfliteSplit, Int8KeepsQuantization) {
  std::vector<int8_t> v = {-5, 7, 100, -128, 3, 127};
  auto out = run(split_model(1, 3, {1, 6}, {1, 2}, fb::TensorType_INT8, true),
                 Tensor::from_vector<int8_t>({1, 6}, v));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out.at("out2").dtype(), anvil::DType::i8);
  EXPECT_EQ(values(out.at("out0")), (std::vector<float>{-5, 7}));
  EXPECT_EQ(values(out.at("out1")), (std::vector<float>{100, -128}));
  EXPECT_EQ(values(out.at("out2")), (std::vector<float>{3, 127}));
}

TEST(TfliteSplit, SplitVWithInferredSize) {
  OneOp m;
  const int x = m.tensor("x", {2, 2, 2, 2}, fb::TensorType_FLOAT32);
  const int sizes = m.tensor("sizes", {2}, fb::TensorType_INT32, {-1, 1});
  const int a = m.tensor("axis", {1}, fb::TensorType_INT32, {3});
  const int o0 = m.tensor("out0", {2, 2, 2, 1}, fb::TensorType_FLOAT32);
  const int o1 = m.tensor("out1", {2, 2, 2, 1}, fb::TensorType_FLOAT32);
  auto path = m.finish(fb::BuiltinOperator_SPLIT_V, {x, sizes, a}, {o0, o1}, {x},
                       fb::BuiltinOptions_SplitVOptions, fb::CreateSplitVOptions(m.b, 2).Union());
  auto out = run(path, ramp16());
  EXPECT_EQ(values(out.at("out0")), (std::vector<float>{1, 3, 5, 7, 9, 11, 13, 15}));
  EXPECT_EQ(values(out.at("out1")), (std::vector<float>{2, 4, 6, 8, 10, 12, 14, 16}));
}

TEST(TfliteSplit, UnpackRemovesTheAxis) {
  OneOp m;
  const int x = m.tensor("x", {2, 3}, fb::TensorType_FLOAT32);
  std::vector<int32_t> outs;
  for (int k = 0; k < 3; ++k)
    outs.push_back(m.tensor("out" + std::to_string(k), {2}, fb::TensorType_FLOAT32));
  auto path = m.finish(fb::BuiltinOperator_UNPACK, {x}, outs, {x}, fb::BuiltinOptions_UnpackOptions,
                       fb::CreateUnpackOptions(m.b, 3, 1).Union());
  auto out = run(path, Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6}));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out.at("out1").shape(), anvil::Shape({2}));
  EXPECT_EQ(values(out.at("out0")), (std::vector<float>{1, 4}));
  EXPECT_EQ(values(out.at("out1")), (std::vector<float>{2, 5}));
  EXPECT_EQ(values(out.at("out2")), (std::vector<float>{3, 6}));
}

TEST(TfliteSplit, UnevenSplitIsAnErrorNamingTheField) {
  const std::string path = split_model(1, 4, {1, 6}, {1, 2});
  try {
    anvil::import_model({path});
    FAIL() << "expected an error";
  } catch (const anvil::Error& e) {
    EXPECT_EQ(e.field(), "num_splits") << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot be split into 4"), std::string::npos) << e.what();
  }
}

}  // namespace
