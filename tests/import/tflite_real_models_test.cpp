// The real TFLite models of the shared fixture set (tflite-models/, copied from tflite-micro,
// ORIGIN.txt there; found through $ANVIL_FIXTURES, tests/data/fixtures or ../shared/fixtures,
// skipped when absent). Every model either imports or fails with the unsupported-operator
// message naming exactly the operator types it lacks; the ones with upstream results run:
//  - hello_world float and int8: hello_world_test.cc's inputs, |sin(x) - y| <= 0.05;
//  - micro_speech_quantized: runs, its int8 softmax output sums to 1 (dequantized);
//  - the PyTorch MobileNetV2 int8: runs on a deterministic image, logits neither constant nor
//    saturated.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/session.h"

namespace fs = std::filesystem;

namespace {

using anvil::Tensor;

std::string models_dir() {
  std::vector<fs::path> c;
  if (const char* e = std::getenv("ANVIL_FIXTURES")) c.push_back(fs::path(e) / "tflite-models");
  const fs::path src(ANVIL_SOURCE_DIR);
  c.push_back(src / "tests" / "data" / "fixtures" / "tflite-models");  // the repository's copy
  c.push_back(src / ".." / "shared" / "fixtures" / "tflite-models");
  c.push_back(src / ".." / ".." / "shared" / "fixtures" / "tflite-models");
  for (const auto& p : c)
    if (fs::is_directory(p)) return p.string();
  return {};
}

#define REQUIRE_MODELS(dir)             \
  const std::string dir = models_dir(); \
  if (dir.empty()) GTEST_SKIP() << "shared fixtures (tflite-models) not found; set ANVIL_FIXTURES"

/// The operator types an import error lists as unsupported (empty when it imports).
std::set<std::string> missing_ops(const std::string& path, std::string* message) {
  try {
    anvil::import_model({path});
    return {};
  } catch (const anvil::Error& e) {
    *message = e.what();
  }
  std::set<std::string> ops;
  static const std::regex re("unsupported operator ([A-Z0-9_]+(:[A-Za-z0-9_]+)?) \\(operator");
  for (std::sregex_iterator it(message->begin(), message->end(), re), end; it != end; ++it)
    ops.insert((*it)[1]);
  return ops;
}

TEST(TfliteRealModels, ImportOrNameExactlyWhatIsMissing) {
  REQUIRE_MODELS(dir);
  const std::set<std::string> lstm = {"UNIDIRECTIONAL_SEQUENCE_LSTM"};
  const std::set<std::string> signal = {"CUSTOM:SignalWindow",
                                        "CUSTOM:SignalFftAutoScale",
                                        "CUSTOM:SignalRfft",
                                        "CUSTOM:SignalEnergy",
                                        "CUSTOM:SignalFilterBank",
                                        "CUSTOM:SignalFilterBankSquareRoot",
                                        "CUSTOM:SignalFilterBankSpectralSubtraction",
                                        "CUSTOM:SignalPCAN",
                                        "CUSTOM:SignalFilterBankLog"};
  const std::map<std::string, std::set<std::string>> want = {
      {"hello_world_float", {}},
      {"hello_world_int8", {}},
      {"simple_add_model", {}},
      {"micro_speech_quantized", {}},
      {"mobilenet_v2_quantized_1x3x224x224", {}},
      {"keyword_scrambled", {"SVDF"}},
      {"keyword_scrambled_8bit", {"SVDF"}},
      {"dtln_noise_suppression", lstm},
      {"micro_speech_lstm", lstm},
      {"trained_lstm", lstm},
      {"trained_lstm_int8", lstm},
      {"audio_preprocessor_float", signal},
      {"audio_preprocessor_int8", signal}};
  int seen = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".tflite") continue;
    ++seen;
    const std::string name = e.path().stem().string();
    std::string msg;
    const auto got = missing_ops(e.path().string(), &msg);
    ASSERT_TRUE(want.count(name)) << "new model " << name << ": " << msg;
    EXPECT_EQ(got, want.at(name)) << name << ": " << msg;
    for (const auto& op : got)  // custom operators: the message says how to supply one
      if (op.rfind("CUSTOM:", 0) == 0)
        EXPECT_NE(msg.find("anvil::map_source_op(\"tflite\", \"" + op.substr(7) + "\""),
                  std::string::npos)
            << msg;
  }
  EXPECT_EQ(seen, static_cast<int>(want.size()));
}

// hello_world_test.cc: LoadFloatModelAndPerformInference / LoadQuantModelAndPerformInference
TEST(TfliteRealModels, HelloWorldSine) {
  REQUIRE_MODELS(dir);
  {
    anvil::Graph g = anvil::import_model({dir + "/hello_world_float.tflite"});
    const std::string in = g.values[static_cast<size_t>(g.inputs[0])].name;
    anvil::SessionOptions so;
    so.backend = "reference";
    anvil::Session s(g, so);
    for (float x : {0.f, 1.f, 3.f, 5.f}) {
      auto outs = s.run({{in, Tensor::from_vector<float>({1, 1}, {x})}});
      ASSERT_EQ(outs.size(), 1u);
      EXPECT_LE(std::fabs(std::sin(x) - outs.begin()->second.get(0)), 0.05) << x;
    }
  }
  anvil::Graph g = anvil::import_model({dir + "/hello_world_int8.tflite"});
  const std::string in = g.values[static_cast<size_t>(g.inputs[0])].name;
  anvil::ImportOptions opt;
  opt.dequantize_outputs = true;
  anvil::SessionOptions so;
  so.backend = "reference";
  anvil::Session s(anvil::import_model({dir + "/hello_world_int8.tflite"}, opt), so);
  const float xs[4] = {0.77f, 1.57f, 2.3f, 3.14f};
  const int8_t qs[4] = {-96, -63, -34, 0};
  for (int i = 0; i < 4; ++i) {
    auto outs = s.run({{in, Tensor::from_vector<int8_t>({1, 1}, {qs[i]})}});
    ASSERT_EQ(outs.size(), 1u);
    EXPECT_LE(std::fabs(std::sin(xs[i]) - outs.begin()->second.get(0)), 0.05) << xs[i];
  }
}

TEST(TfliteRealModels, MicroSpeechRuns) {
  REQUIRE_MODELS(dir);
  const std::string path = dir + "/micro_speech_quantized.tflite";
  anvil::Graph g = anvil::import_model({path});
  ASSERT_EQ(g.inputs.size(), 1u);
  const anvil::Value& in = g.values[static_cast<size_t>(g.inputs[0])];
  ASSERT_EQ(in.dtype, anvil::DType::i8);
  Tensor x(anvil::DType::i8, in.shape);
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, static_cast<double>((i * 37) % 256 - 128));
  anvil::ImportOptions opt;
  opt.dequantize_outputs = true;
  anvil::SessionOptions so;
  so.backend = "reference";
  anvil::Session s(anvil::import_model({path}, opt), so);
  auto outs = s.run({{in.name, x}});
  ASSERT_EQ(outs.size(), 1u);
  const Tensor& p = outs.begin()->second;
  ASSERT_EQ(p.numel(), 4);  // silence, unknown, yes, no
  double sum = 0;
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_GE(p.get(i), 0.0);
    sum += p.get(i);
  }
  EXPECT_NEAR(sum, 1.0, 0.02);
}

TEST(TfliteRealModels, MobileNetV2Int8Runs) {
  REQUIRE_MODELS(dir);
  const std::string path = dir + "/mobilenet_v2_quantized_1x3x224x224.tflite";
  anvil::Graph g = anvil::import_model({path});
  const anvil::Value& in = g.values[static_cast<size_t>(g.inputs[0])];
  ASSERT_EQ(in.shape, (anvil::Shape{1, 3, 224, 224}));
  Tensor x(anvil::DType::i8, in.shape);
  for (int64_t i = 0; i < x.numel(); ++i)  // a smooth deterministic image
    x.set(i, std::round(100.0 * std::sin(0.001 * static_cast<double>(i))));
  anvil::SessionOptions so;
  so.backend = "reference";
  anvil::Session s(g, so);
  auto outs = s.run({{in.name, x}});
  ASSERT_EQ(outs.size(), 1u);
  const Tensor& y = outs.begin()->second;
  ASSERT_EQ(y.numel(), 1000);
  double lo = 1e9, hi = -1e9;
  int saturated = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    lo = std::min(lo, y.get(i));
    hi = std::max(hi, y.get(i));
    saturated += y.get(i) == 127 || y.get(i) == -128;
  }
  EXPECT_LT(lo, hi);
  EXPECT_LT(saturated, 10);
}

}  // namespace
