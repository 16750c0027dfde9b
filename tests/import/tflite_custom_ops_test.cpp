// TFLite custom operators and the unsupported-operator message:
//  - a CUSTOM operator is named in the error with how to supply it
//    (anvil::map_source_op("tflite", NAME, op)); every missing operator is listed, also one fed
//    by another missing operator;
//  - once mapped to a registered op, the model imports and runs (inputs in TFLite's layout);
//  - summary() of a quantized model counts its integer weights and shows scale / zero point.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "anvil/summary.h"
#include "import/tflite/tflite_schema_generated.h"

namespace {

namespace fb = anvil_tflite;
using anvil::Tensor;

/// x (1, 4) float -> op0 -> a -> op1 -> y, op codes given as (builtin, custom name).
std::string two_op_model(const std::string& file, std::pair<int, std::string> op0,
                         std::pair<int, std::string> op1) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers = {fb::CreateBuffer(b)};
  std::vector<int32_t> shape = {1, 4};
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {
      fb::CreateTensorDirect(b, &shape, fb::TensorType_FLOAT32, 0, "x"),
      fb::CreateTensorDirect(b, &shape, fb::TensorType_FLOAT32, 0, "a"),
      fb::CreateTensorDirect(b, &shape, fb::TensorType_FLOAT32, 0, "y")};
  auto code = [&](const std::pair<int, std::string>& c) {
    return fb::CreateOperatorCodeDirect(b, static_cast<int8_t>(std::min(c.first, 127)),
                                        c.second.empty() ? nullptr : c.second.c_str(), 1,
                                        static_cast<fb::BuiltinOperator>(c.first));
  };
  std::vector<flatbuffers::Offset<fb::OperatorCode>> codes = {code(op0), code(op1)};
  std::vector<int32_t> i0 = {0}, o0 = {1}, i1 = {1}, o1 = {2};
  std::vector<flatbuffers::Offset<fb::Operator>> ops = {fb::CreateOperatorDirect(b, 0, &i0, &o0),
                                                        fb::CreateOperatorDirect(b, 1, &i1, &o1)};
  std::vector<int32_t> ins = {0}, outs = {2};
  std::vector<flatbuffers::Offset<fb::SubGraph>> sgs = {
      fb::CreateSubGraphDirect(b, &tensors, &ins, &outs, &ops, "main")};
  fb::FinishModelBuffer(b, fb::CreateModelDirect(b, 3, &codes, &sgs, "custom", &buffers));
  const std::string path = ::testing::TempDir() + "/anvil_tflite_" + file + ".tflite";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  return path;
}

std::string import_error(const std::string& path) {
  try {
    anvil::import_model({path});
  } catch (const anvil::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TfliteCustomOps, NamedWithHowToSupplyThem) {
  const std::string path = two_op_model("custom_two", {fb::BuiltinOperator_CUSTOM, "AnvilTestFoo"},
                                        {fb::BuiltinOperator_CUSTOM, "AnvilTestBar"});
  const std::string e = import_error(path);
  EXPECT_NE(e.find("2 unsupported operators:"), std::string::npos) << e;
  EXPECT_NE(e.find("unsupported operator CUSTOM:AnvilTestFoo (operator 0, output 'a'): custom "
                   "operator 'AnvilTestFoo': supply it with "
                   "anvil::map_source_op(\"tflite\", \"AnvilTestFoo\", \"<registered op>\")"),
            std::string::npos)
      << e;
  // fed by the first, missing too: listed
  EXPECT_NE(e.find("unsupported operator CUSTOM:AnvilTestBar (operator 1, output 'y')"),
            std::string::npos)
      << e;
}

TEST(TfliteCustomOps, MissingBuiltinAfterMissingOneIsListed) {
  const std::string path =
      two_op_model("custom_builtin", {fb::BuiltinOperator_CUSTOM, "AnvilTestQux"},
                   {fb::BuiltinOperator_SKIP_GRAM, ""});
  const std::string e = import_error(path);
  EXPECT_NE(e.find("unsupported operator SKIP_GRAM (operator 1, output 'y')"), std::string::npos)
      << e;
}

TEST(TfliteCustomOps, MappedCustomOpImportsAndRuns) {
  anvil::map_source_op("tflite", "AnvilTestAbs", "Abs");
  anvil::map_source_op("tflite", "CONCAT_EMBEDDINGS", "Neg");  // a builtin without a converter
  const std::string path =
      two_op_model("custom_mapped", {fb::BuiltinOperator_CUSTOM, "AnvilTestAbs"},
                   {fb::BuiltinOperator_CONCAT_EMBEDDINGS, ""});
  anvil::Graph g = anvil::import_model({path});
  anvil::SessionOptions so;
  so.backend = "reference";
  anvil::Session s(g, so);
  auto outs = s.run({{"x", Tensor::from_vector<float>({1, 4}, {-1, 2, -3, 4})}});
  const Tensor& y = outs.at("y");
  const std::vector<float> want = {-1, -2, -3, -4};
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(y.data<float>()[i], want[static_cast<size_t>(i)]);
}

// issue 19 item 8: quantized layers' parameters and their scale / zero point in summary()
TEST(TfliteSummary, QuantizedParamsAndScales) {
  const std::string path =
      std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/tflite/conv/conv3/model.tflite";
  const anvil::Graph g = anvil::import_model({path});
  const std::string s = anvil::summary(g);
  EXPECT_NE(s.find("Quantization"), std::string::npos) << s;
  EXPECT_NE(s.find("scale "), std::string::npos) << s;
  EXPECT_NE(s.find("zero point 0"), std::string::npos) << s;
  EXPECT_EQ(s.find("Total params: 0\n"), std::string::npos) << s;
}

}  // namespace
