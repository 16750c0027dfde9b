// Keras fixtures (real Keras 2.3.1 outputs, tests/data/fixtures/keras*/, see ORIGIN.md there):
// every case is imported with anvil::import_model and run on the reference backend; the final
// outputs and every layer's activation (fetched by Keras layer name) must match within the
// case's tolerance. Cases with a split form (config.json + weights.h5) are run both ways.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "import/fixture_case.h"

namespace fs = std::filesystem;

namespace {

struct KerasCase {
  std::string dir;                 // absolute case folder
  std::string name;                // "<folder>/<case>"
  std::vector<std::string> files;  // model files to import
  std::string variant;             // "h5" or "split"
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
      if (fs::exists(d / "model.h5"))
        out.push_back({d.string(), name, {(d / "model.h5").string()}, "h5"});
      if (fs::exists(d / "config.json") && fs::exists(d / "weights.h5"))
        out.push_back({d.string(),
                       name,
                       {(d / "config.json").string(), (d / "weights.h5").string()},
                       "split"});
    }
  }
  return out;
}

class KerasFixture : public testing::TestWithParam<KerasCase> {};

TEST_P(KerasFixture, OutputsAndActivations) {
  const KerasCase& kc = GetParam();
  EXPECT_EQ(anvil::testing::check_fixture_case(kc.dir, kc.files, "layer"), "keras");
}

INSTANTIATE_TEST_SUITE_P(All, KerasFixture, testing::ValuesIn(list_cases()),
                         anvil::testing::case_param_name<KerasCase>);

}  // namespace
