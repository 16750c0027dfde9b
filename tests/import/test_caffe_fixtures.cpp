// Caffe fixtures (real BVLC Caffe 1.0 outputs, tests/data/fixtures/caffe/, see ORIGIN.md there):
// every case is imported with anvil::import_model and run on the reference backend; the final
// outputs and every top blob in activations.npz (fetched by Caffe blob name) must match within
// the case's tolerance. Each case runs twice: deploy.prototxt + model.caffemodel, and the
// caffemodel alone (Caffe's net.save writes the whole net definition with the weights).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "import/fixture_case.h"

namespace fs = std::filesystem;

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
    out.push_back({d.string(),
                   n,
                   {(d / "deploy.prototxt").string(), (d / "model.caffemodel").string()},
                   "prototxt"});
    out.push_back({d.string(), n, {(d / "model.caffemodel").string()}, "caffemodel_only"});
  }
  return out;
}

class CaffeFixture : public testing::TestWithParam<CaffeCase> {};

TEST_P(CaffeFixture, OutputsAndEveryBlob) {
  const CaffeCase& cc = GetParam();
  EXPECT_EQ(anvil::testing::check_fixture_case(cc.dir, cc.files, "blob"), "caffe");
}

INSTANTIATE_TEST_SUITE_P(All, CaffeFixture, testing::ValuesIn(list_cases()),
                         anvil::testing::case_param_name<CaffeCase>);

TEST(CaffeFixtureSet, AllCasesPresent) {
  // 66 cases in the shared fixture set (ORIGIN.md), two import variants each.
  EXPECT_EQ(list_cases().size(), 2u * 66u);
}

}  // namespace
