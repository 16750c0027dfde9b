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
#include "model_cases.h"

namespace fs = std::filesystem;

namespace anvil::testing {
namespace {

class CpuFixture : public ::testing::TestWithParam<ModelCase> {};

void compare_runs(const std::map<std::string, Tensor>& got,
                  const std::map<std::string, Tensor>& want, const std::string& what) {
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

INSTANTIATE_TEST_SUITE_P(All, CpuFixture, ::testing::ValuesIn(fixture_model_cases()),
                         [](const ::testing::TestParamInfo<ModelCase>& i) {
                           std::string s = i.param.name;
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace anvil::testing
