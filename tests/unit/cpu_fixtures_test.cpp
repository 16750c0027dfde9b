// Every real-framework fixture model (tests/data/fixtures: Caffe, Keras, DL4J-Keras,
// TensorFlow, TFLite) and the demo models, run on the cpu backend against the reference
// backend: the outputs (with the backend's fusions active) and, in a second session, every
// tensor the fixture records (activations.npz names, kept as taps, so blocked layouts must
// come back as plain tensors). The importer tests (tests/import) check the same fixtures on
// the reference backend against the frameworks' own numbers at the cases' tolerances; this
// test carries that to the cpu backend at an fp32-accumulation tolerance (rtol 1e-4, atol
// 1e-5 of the tensor's scale; integer tensors exactly).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "anvil/import.h"
#include "anvil/npy.h"
#include "cpu_test_util.h"

namespace fs = std::filesystem;

namespace anvil::testing {
namespace {

struct ModelCase {
  std::string name;
  std::vector<std::string> files;
  std::map<std::string, std::string> inputs;  // input name -> .npy
  std::map<std::string, Shape> input_shapes;
  std::vector<std::string> taps;
};
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

std::vector<ModelCase> list_cases() {
  std::vector<ModelCase> out;
  const fs::path src(ANVIL_SOURCE_DIR);
  const fs::path root = src / "tests/data/fixtures";
  std::error_code ec;
  std::vector<fs::path> dirs;
  if (fs::is_directory(root, ec))
    for (auto it = fs::recursive_directory_iterator(root, ec); it != fs::recursive_directory_iterator();
         ++it)
      if (it->is_directory() && fs::exists(it->path() / "case.json")) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    ModelCase c;
    c.name = fs::relative(d, root).string();
    if (fs::exists(d / "model.h5"))
      c.files = {(d / "model.h5").string()};
    else if (fs::exists(d / "config.json") && fs::exists(d / "weights.h5"))
      c.files = {(d / "config.json").string(), (d / "weights.h5").string()};
    else if (fs::exists(d / "deploy.prototxt") && fs::exists(d / "model.caffemodel"))
      c.files = {(d / "deploy.prototxt").string(), (d / "model.caffemodel").string()};
    else if (fs::exists(d / "model.onnx"))
      c.files = {(d / "model.onnx").string()};
    else if (fs::exists(d / "frozen_model.pb"))  // TensorFlow
      c.files = {(d / "frozen_model.pb").string()};
    else if (fs::exists(d / "model.tflite"))
      c.files = {(d / "model.tflite").string()};
    else
      continue;
    std::ifstream f(d / "case.json");
    std::stringstream ss;
    ss << f.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.contains("inputs")) continue;
    for (auto it = j["inputs"].begin(); it != j["inputs"].end(); ++it)
      c.inputs[it.key()] = (d / it.value().get<std::string>()).string();
    if (j.contains("input_shapes"))
      for (auto it = j["input_shapes"].begin(); it != j["input_shapes"].end(); ++it)
        c.input_shapes[it.key()] = it.value().get<std::vector<int64_t>>();
    if (fs::exists(d / "activations.npz"))
      for (const auto& [k, _] : read_npz((d / "activations.npz").string()))
        if (!c.inputs.count(k)) c.taps.push_back(k);
    out.push_back(c);
  }
  const fs::path demo = src / "models/demo";
  out.push_back({"demo_onnx", {(demo / "digits_cnn.onnx").string()},
                 {{"image", (demo / "inputs/image.npy").string()}}, {}, {}});
  if (fs::exists(demo / "keras/digits_cnn.h5"))
    out.push_back({"demo_keras", {(demo / "keras/digits_cnn.h5").string()},
                   {{"image", (demo / "keras/inputs/image.npy").string()}}, {}, {}});
  if (fs::exists(demo / "caffe/deploy.prototxt"))
    out.push_back({"demo_caffe",
                   {(demo / "caffe/deploy.prototxt").string(), (demo / "caffe/digits.caffemodel").string()},
                   {{"", (demo / "caffe/inputs/data.npy").string()}}, {}, {}});
  return out;
}

class CpuFixture : public ::testing::TestWithParam<ModelCase> {};

void compare_runs(const std::map<std::string, Tensor>& got, const std::map<std::string, Tensor>& want,
                  const std::string& what) {
  for (const auto& [k, w] : want) {
    auto it = got.find(k);
    ASSERT_NE(it, got.end()) << what << " " << k;
    ASSERT_EQ(it->second.shape(), w.shape()) << what << " " << k;
    if (!is_float(w.dtype())) {
      for (int64_t i = 0; i < w.numel(); ++i) ASSERT_EQ(it->second.get(i), w.get(i)) << k;
      continue;
    }
    double scale = 0;
    for (int64_t i = 0; i < w.numel(); ++i) scale = std::max(scale, std::abs(w.get(i)));
    EXPECT_LE(closeness(it->second, w, 1e-4, 1e-5 * std::max(1.0, scale)), 1.0) << what << " " << k;
  }
}

TEST_P(CpuFixture, MatchesReference) {
  const ModelCase& c = GetParam();
  ImportOptions io;
  for (const auto& [k, s] : c.input_shapes) io.input_shapes[k] = s;
  if (c.name.rfind("demo_", 0) == 0)  // the demo models' batch is free: take the inputs'
    for (const auto& [k, f] : c.inputs)
      if (!k.empty()) io.input_shapes[k] = read_npy(f).shape();
  Graph g;
  try {
    g = import_model(c.files, io);
  } catch (const Error& e) {
    GTEST_SKIP() << "not importable here: " << e.what();  // the importer tests own this
  }
  std::map<std::string, Tensor> feed;
  for (const auto& [k, f] : c.inputs) {
    std::string key = k;
    if (key.empty()) key = g.values[static_cast<size_t>(g.inputs.at(0))].name;
    feed[key] = read_npy(f);
  }
  for (int pass = 0; pass < 2; ++pass) {
    SessionOptions ro;
    ro.backend = "reference";
    if (pass == 1) ro.taps = c.taps;
    SessionOptions co = ro;
    co.backend = "cpu";
    if (pass == 1 && c.taps.empty()) break;
    Session ref(g, ro), cpu(g, co);
    auto want = ref.run(feed, ro.taps);
    auto got = cpu.run(feed, co.taps);
    compare_runs(got, want, pass == 0 ? "output" : "tap");
  }
}

INSTANTIATE_TEST_SUITE_P(All, CpuFixture, ::testing::ValuesIn(list_cases()),
                         [](const ::testing::TestParamInfo<ModelCase>& i) {
                           std::string s = i.param.name;
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace anvil::testing
