// Caffe fixtures (real BVLC Caffe 1.0 outputs, tests/data/fixtures/caffe/, see ORIGIN.md there):
// every case is imported with anvil::import_model and run on the reference backend; the final
// outputs and every top blob in activations.npz (fetched by Caffe blob name) must match within
// the case's tolerance. Each case runs twice: deploy.prototxt + model.caffemodel, and the
// caffemodel alone (Caffe's net.save writes the whole net definition with the weights).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct CaffeCase {
  std::string dir;                 // absolute case folder
  std::string name;                // case folder name
  std::vector<std::string> files;  // model files to import
  std::string variant;             // "prototxt" or "caffemodel_only"
};

void PrintTo(const CaffeCase& c, std::ostream* os) { *os << c.name << " (" << c.variant << ")"; }

std::vector<CaffeCase> list_cases() {
  std::vector<CaffeCase> out;
  fs::path root = fs::path(ANVIL_SOURCE_DIR) / "tests/data/fixtures/caffe";
  if (!fs::is_directory(root)) return out;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    const std::string n = d.filename().string();
    out.push_back({d.string(), n,
                   {(d / "deploy.prototxt").string(), (d / "model.caffemodel").string()},
                   "prototxt"});
    out.push_back({d.string(), n, {(d / "model.caffemodel").string()}, "caffemodel_only"});
  }
  return out;
}

std::string param_name(const testing::TestParamInfo<CaffeCase>& info) {
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

// Within tolerance when |got - want| <= atol + rtol * |want| everywhere (numpy.allclose).
struct Diff {
  bool shape_ok = true;
  int64_t bad = 0, first_bad = -1;
  double max_abs = 0;
};
Diff diff(const anvil::Tensor& got, const anvil::Tensor& want, double rtol, double atol) {
  Diff d;
  if (got.shape() != want.shape()) {
    d.shape_ok = false;
    return d;
  }
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get(i), b = want.get(i);
    const double e = std::fabs(a - b);
    const bool ok = (std::isnan(a) && std::isnan(b)) || e <= atol + rtol * std::fabs(b);
    if (!std::isnan(e)) d.max_abs = std::max(d.max_abs, e);
    if (!ok && d.bad++ == 0) d.first_bad = i;
  }
  return d;
}

class CaffeFixture : public testing::TestWithParam<CaffeCase> {};

TEST_P(CaffeFixture, OutputsAndEveryBlob) {
  const CaffeCase& cc = GetParam();
  json cj = read_json(cc.dir + "/case.json");
  const double rtol = cj.value("rtol", 1e-5), atol = cj.value("atol", 1e-5);
  anvil::Graph g;
  try {
    g = anvil::import_model(cc.files);
  } catch (const anvil::Error& e) {
    FAIL() << "import failed: " << e.what();
  }
  EXPECT_EQ(g.framework, "caffe");
  std::map<std::string, anvil::Tensor> inputs;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
    inputs[it.key()] = anvil::read_npy(cc.dir + "/" + it.value().get<std::string>());

  auto acts = anvil::read_npz(cc.dir + "/activations.npz");
  std::vector<std::string> blobs;
  for (const auto& [k, _] : acts) blobs.push_back(k);

  anvil::SessionOptions so;
  so.taps = blobs;
  std::unique_ptr<anvil::Session> sess;
  try {
    sess = std::make_unique<anvil::Session>(g, so);
  } catch (const anvil::Error& e) {
    FAIL() << "session failed: " << e.what();
  }
  std::map<std::string, anvil::Tensor> outs;
  try {
    outs = sess->run(inputs);
  } catch (const anvil::Error& e) {
    FAIL() << "run failed: " << e.what();
  }
  ASSERT_EQ(outs.size(), cj["outputs"].size());
  for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it) {
    anvil::Tensor want = anvil::read_npy(cc.dir + "/" + it.value().get<std::string>());
    ASSERT_TRUE(outs.count(it.key())) << "no output named " << it.key();
    Diff d = diff(outs[it.key()], want, rtol, atol);
    ASSERT_TRUE(d.shape_ok) << "output " << it.key() << ": shape "
                            << anvil::shape_str(outs[it.key()].shape()) << ", Caffe "
                            << anvil::shape_str(want.shape());
    EXPECT_EQ(d.bad, 0) << "output " << it.key() << ": " << d.bad << " values off, first at "
                        << d.first_bad << ", max abs diff " << d.max_abs;
  }

  std::map<std::string, anvil::Tensor> got;
  try {
    got = sess->run(inputs, blobs);
  } catch (const anvil::Error& e) {
    FAIL() << "fetching blobs failed: " << e.what();
  }
  int bad = 0;
  for (const auto& b : blobs) {
    if (!got.count(b)) {
      ADD_FAILURE() << "blob " << b << " was not returned";
      ++bad;
      continue;
    }
    Diff d = diff(got[b], acts[b], rtol, atol);
    if (!d.shape_ok) {
      ADD_FAILURE() << "blob " << b << ": shape " << anvil::shape_str(got[b].shape())
                    << ", Caffe " << anvil::shape_str(acts[b].shape());
      ++bad;
    } else if (d.bad) {
      ADD_FAILURE() << "blob " << b << ": " << d.bad << " values off, first at " << d.first_bad
                    << ", max abs diff " << d.max_abs;
      ++bad;
    }
  }
  RecordProperty("blobs_checked", static_cast<int>(blobs.size()));
  RecordProperty("blobs_bad", bad);
}

INSTANTIATE_TEST_SUITE_P(All, CaffeFixture, testing::ValuesIn(list_cases()), param_name);

TEST(CaffeFixtureSet, AllCasesPresent) {
  // 66 cases in the shared fixture set (ORIGIN.md), two import variants each.
  EXPECT_EQ(list_cases().size(), 2u * 66u);
}

}  // namespace
