// TensorFlow fixtures (real TensorFlow outputs, tests/data/fixtures/tensorflow/, see ORIGIN.md
// there): every frozen GraphDef is imported with anvil::import_model and run on the reference
// backend; the final outputs (the graph's sinks, by TF node name) and every tensor in
// activations.npz (fetched by its TF tensor name, "node" or "node:i", Const values included)
// must match within the case's tolerance, in TF's own layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "import/fixture_case.h"

namespace fs = std::filesystem;

namespace {

struct TfCase {
  std::string dir;
  std::string name;
  std::vector<std::string> files;
  std::string variant;
};

void PrintTo(const TfCase& c, std::ostream* os) { *os << c.name; }

std::vector<TfCase> list_cases() {
  std::vector<TfCase> out;
  fs::path root = fs::path(ANVIL_SOURCE_DIR) / "tests/data/fixtures/tensorflow";
  if (!fs::is_directory(root)) return out;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs)
    out.push_back({d.string(), d.filename().string(), {(d / "frozen_model.pb").string()}, "pb"});
  return out;
}

class TensorflowFixture : public testing::TestWithParam<TfCase> {};

TEST_P(TensorflowFixture, OutputsAndEveryTensor) {
  const TfCase& c = GetParam();
  EXPECT_EQ(anvil::testing::check_fixture_case(c.dir, c.files, "tensor"), "tensorflow");
}

INSTANTIATE_TEST_SUITE_P(All, TensorflowFixture, testing::ValuesIn(list_cases()),
                         anvil::testing::case_param_name<TfCase>);

TEST(TensorflowFixtureSet, AllCasesPresent) {
  // 142 cases in the shared fixture set (ORIGIN.md).
  EXPECT_EQ(list_cases().size(), 142u);
}

}  // namespace
