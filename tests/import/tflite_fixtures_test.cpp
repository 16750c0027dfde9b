// TFLite fixtures (tests/data/fixtures/tflite/, ORIGIN.md there): single-op int16x8 quantized
// models from tflite-micro's seanet integration tests (ADD with general rescaling, CONV_2D with
// int8 per-channel weights and int64 bias) with golden int16 outputs computed by TFLite's
// reference kernels. Every case must match EXACTLY (rtol = atol = 0 in case.json) and keep
// the stored int16 dtype; with ImportOptions::dequantize_outputs the output is float32.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "import/fixture_case.h"

namespace fs = std::filesystem;

namespace {

struct TfliteCase {
  std::string dir;   // absolute case folder
  std::string name;  // "<op>/<case>"
  std::string variant = "int16";
};

void PrintTo(const TfliteCase& c, std::ostream* os) { *os << c.name; }

std::vector<TfliteCase> list_cases() {
  std::vector<TfliteCase> out;
  fs::path root = fs::path(ANVIL_SOURCE_DIR) / "tests/data/fixtures/tflite";
  if (!fs::is_directory(root)) return out;
  std::vector<fs::path> dirs;
  for (const auto& op : fs::directory_iterator(root)) {
    if (!op.is_directory()) continue;
    for (const auto& e : fs::directory_iterator(op.path()))
      if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs)
    out.push_back({d.string(), d.parent_path().filename().string() + "/" + d.filename().string()});
  return out;
}

class TfliteFixture : public testing::TestWithParam<TfliteCase> {};

TEST_P(TfliteFixture, ExactInt16Outputs) {
  const TfliteCase& tc = GetParam();
  const std::string model = tc.dir + "/model.tflite";
  EXPECT_EQ(anvil::testing::check_fixture_case(tc.dir, {model}, "tensor"), "tflite");
  // dtype and exactness, independently of the shared case runner
  const nlohmann::json cj = anvil::testing::read_case_json(tc.dir);
  EXPECT_EQ(cj.value("rtol", -1.0), 0.0);
  EXPECT_EQ(cj.value("atol", -1.0), 0.0);
  std::map<std::string, anvil::Tensor> inputs;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
    inputs[it.key()] = anvil::read_npy(tc.dir + "/" + it.value().get<std::string>());
  anvil::SessionOptions so;
  so.backend = "reference";  // the oracle, as in check_fixture_case (cpu: cpu_fixtures_test)
  anvil::Session s(anvil::import_model({model}), so);
  auto outs = s.run(inputs);
  for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it) {
    const anvil::Tensor want = anvil::read_npy(tc.dir + "/" + it.value().get<std::string>());
    ASSERT_TRUE(outs.count(it.key())) << it.key();
    const anvil::Tensor& got = outs[it.key()];
    ASSERT_EQ(got.dtype(), anvil::DType::i16);
    ASSERT_EQ(got.shape(), want.shape());
    int64_t diff = 0;
    for (int64_t i = 0; i < got.numel(); ++i)
      diff += got.data<int16_t>()[i] != want.data<int16_t>()[i];
    EXPECT_EQ(diff, 0) << "elements differing from TFLite's golden output";
  }
}

INSTANTIATE_TEST_SUITE_P(All, TfliteFixture, testing::ValuesIn(list_cases()),
                         anvil::testing::case_param_name<TfliteCase>);

TEST(TfliteFixtureSet, AllCasesPresent) {
  // 17 ADD + 22 CONV_2D cases in the shared fixture set (ORIGIN.md)
  EXPECT_EQ(list_cases().size(), 39u);
}

// dequantize_outputs: the int16 output comes back as float32 scale * q (zero point 0 here),
// with the scale recorded in case.json (the TFLite converter's output quantization).
TEST(TfliteFixtureSet, DequantizeOutputsOnRequest) {
  const std::string dir = std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/tflite/conv/conv3";
  const nlohmann::json cj = anvil::testing::read_case_json(dir);
  std::map<std::string, anvil::Tensor> inputs;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
    inputs[it.key()] = anvil::read_npy(dir + "/" + it.value().get<std::string>());
  anvil::ImportOptions opt;
  opt.dequantize_outputs = true;
  anvil::SessionOptions so;
  so.backend = "reference";
  anvil::Session s(anvil::import_model({dir + "/model.tflite"}, opt), so);
  auto outs = s.run(inputs);
  const auto& o = cj["tensors"]["outputs"][0];
  const std::string name = o["name"].get<std::string>();
  const double scale = static_cast<float>(o["scale"][0].get<double>());
  const int64_t zp = o["zero_point"][0].get<int64_t>();
  ASSERT_TRUE(outs.count(name));
  const anvil::Tensor& got = outs[name];
  ASSERT_EQ(got.dtype(), anvil::DType::f32);
  const anvil::Tensor want = anvil::read_npy(dir + "/" + cj["outputs"][name].get<std::string>());
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_EQ(got.data<float>()[i],
              static_cast<float>(scale * static_cast<double>(want.data<int16_t>()[i] - zp)))
        << i;
}

}  // namespace
