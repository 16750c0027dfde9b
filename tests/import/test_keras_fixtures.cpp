// Keras fixtures (real Keras 2.3.1 outputs, tests/data/fixtures/keras*/, see ORIGIN.md there):
// every case is imported with anvil::import_model and run on the reference backend; the final
// outputs and every layer's activation (fetched by Keras layer name) must match within the
// case's tolerance. Cases with a split form (config.json + weights.h5) are run both ways.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct KerasCase {
  std::string dir;       // absolute case folder
  std::string name;      // "<folder>/<case>"
  std::vector<std::string> files;  // model files to import
  std::string variant;   // "h5" or "split"
};

void PrintTo(const KerasCase& c, std::ostream* os) { *os << c.name << " (" << c.variant << ")"; }

std::string fixtures_root() { return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures"; }

std::vector<KerasCase> list_cases() {
  std::vector<KerasCase> out;
  for (const char* folder : {"keras", "keras-dl4j/activations", "keras-dl4j/conv1d"}) {
    fs::path root = fs::path(fixtures_root()) / folder;
    if (!fs::is_directory(root)) continue;
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      std::string name = std::string(folder) + "/" + d.filename().string();
      if (fs::exists(d / "model.h5")) out.push_back({d.string(), name, {(d / "model.h5").string()}, "h5"});
      if (fs::exists(d / "config.json") && fs::exists(d / "weights.h5"))
        out.push_back({d.string(), name, {(d / "config.json").string(), (d / "weights.h5").string()}, "split"});
    }
  }
  return out;
}

std::string param_name(const testing::TestParamInfo<KerasCase>& info) {
  std::string s = info.param.name + "_" + info.param.variant;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

json read_json(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str());
}

// max over elements of |a-b| - (atol + rtol*|b|); <= 0 means within tolerance.
struct Cmp {
  double worst_excess = -1e300, max_abs = 0;
  int64_t worst_index = -1;
  bool shape_ok = true;
};
Cmp compare(const anvil::Tensor& got, const anvil::Tensor& want, double rtol, double atol) {
  Cmp c;
  if (got.shape() != want.shape()) {
    c.shape_ok = false;
    return c;
  }
  for (int64_t i = 0; i < want.numel(); ++i) {
    double a = got.get(i), b = want.get(i);
    double d = std::fabs(a - b);
    if (std::isnan(a) != std::isnan(b)) d = 1e300;
    double ex = d - (atol + rtol * std::fabs(b));
    c.max_abs = std::max(c.max_abs, d);
    if (ex > c.worst_excess) {
      c.worst_excess = ex;
      c.worst_index = i;
    }
  }
  return c;
}

class KerasFixture : public testing::TestWithParam<KerasCase> {};

TEST_P(KerasFixture, OutputsAndActivations) {
  const KerasCase& kc = GetParam();
  json cj = read_json(kc.dir + "/case.json");
  double rtol = cj.value("rtol", 1e-5), atol = cj.value("atol", 1e-5);
  anvil::ImportOptions opt;
  for (auto it = cj["input_shapes"].begin(); it != cj["input_shapes"].end(); ++it)
    opt.input_shapes[it.key()] = it.value().get<std::vector<int64_t>>();
  anvil::Graph g;
  try {
    g = anvil::import_model(kc.files, opt);
  } catch (const anvil::Error& e) {
    FAIL() << "import failed: " << e.what();
  }
  std::map<std::string, anvil::Tensor> inputs;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
    inputs[it.key()] = anvil::read_npy(kc.dir + "/" + it.value().get<std::string>());

  std::unique_ptr<anvil::Session> sess;
  try {
    sess = std::make_unique<anvil::Session>(g);
  } catch (const anvil::Error& e) {
    FAIL() << "session failed: " << e.what();
  }
  // final outputs
  std::map<std::string, anvil::Tensor> outs;
  try {
    outs = sess->run(inputs);
  } catch (const anvil::Error& e) {
    FAIL() << "run failed: " << e.what();
  }
  for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it) {
    anvil::Tensor want = anvil::read_npy(kc.dir + "/" + it.value().get<std::string>());
    ASSERT_TRUE(outs.count(it.key())) << "no output named " << it.key();
    Cmp c = compare(outs[it.key()], want, rtol, atol);
    ASSERT_TRUE(c.shape_ok) << it.key() << ": shape " << anvil::shape_str(outs[it.key()].shape()) << " vs "
                            << anvil::shape_str(want.shape());
    EXPECT_LE(c.worst_excess, 0.0) << "output " << it.key() << " max abs diff " << c.max_abs << " at " << c.worst_index;
  }
  // every layer's activation, fetched by Keras layer name
  auto acts = anvil::read_npz(kc.dir + "/activations.npz");
  std::vector<std::string> names;
  for (const auto& [k, _] : acts)
    if (!inputs.count(k)) names.push_back(k);
  std::map<std::string, anvil::Tensor> got;
  try {
    got = sess->run(inputs, names);
  } catch (const anvil::Error& e) {
    FAIL() << "fetching activations failed: " << e.what();
  }
  int bad = 0;
  for (const auto& n : names) {
    Cmp c = compare(got[n], acts[n], rtol, atol);
    if (!c.shape_ok) {
      ADD_FAILURE() << "layer " << n << ": shape " << anvil::shape_str(got[n].shape()) << " vs Keras "
                    << anvil::shape_str(acts[n].shape());
      ++bad;
      continue;
    }
    if (c.worst_excess > 0) {
      ADD_FAILURE() << "layer " << n << ": max abs diff " << c.max_abs << " at flat index " << c.worst_index;
      ++bad;
    }
  }
  RecordProperty("layers_checked", static_cast<int>(names.size()));
  RecordProperty("layers_bad", bad);
}

INSTANTIATE_TEST_SUITE_P(All, KerasFixture, testing::ValuesIn(list_cases()), param_name);

}  // namespace
