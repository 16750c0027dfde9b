// The tensorflow-more conformance suite: 1319 real TensorFlow frozen GraphDefs in 200 op
// folders (the shared fixture pool fixtures/tensorflow-more/, README.md there; the layout of
// tests/data/fixtures/tensorflow/), run like the TensorFlow fixtures (tests/import/
// fixture_case.h, reference backend) and compared with TensorFlow's own outputs.
//
// Tolerance: TensorFlow printed the expected values with ~8 significant digits, so floats are
// compared at rtol 1e-5, atol 2e-6 (the case's own tolerance where it is tighter: integer and
// bool outputs exactly); float16 cases keep their case's rtol 1e-2 / atol 1e-3. Placeholders
// get the shapes of the case's inputs (several leave the batch open), and the outputs the case
// names are fetched by name (some are Consts or not sinks of the graph).
//
// Each case is its own test. Cases listed in tests/import/tensorflow_more_skips.txt (a case
// name, or an op folder: every case "<folder>__*") still run: a listed case that passes fails
// (take it off the list), one that fails is skipped with the list's reason.
// To see every failure: ANVIL_TF_MORE_SKIPS=/dev/null anvil_import_tests
//   --gtest_filter='TensorflowMore*'. ANVIL_TF_MORE_FIXTURES names the pool's folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "import/fixture_case.h"

namespace fs = std::filesystem;

namespace {

struct TfCase {
  std::string dir;
  std::string name;
  std::string variant;
};

fs::path pool_root() {
  if (const char* env = std::getenv("ANVIL_TF_MORE_FIXTURES")) return env;
  // the repository's copy (tests/data/fixtures/tensorflow-more/ORIGIN.md); else the shared
  // pool next to the checkout (main) or two levels up (a worktree)
  for (const char* rel :
       {"/tests/data/fixtures/tensorflow-more", "/../shared/fixtures/tensorflow-more",
        "/../../shared/fixtures/tensorflow-more"}) {
    fs::path p = fs::path(std::string(ANVIL_SOURCE_DIR) + rel);
    std::error_code ec;
    if (fs::is_directory(p, ec)) return fs::weakly_canonical(p);
  }
  return {};
}

std::vector<TfCase> list_cases() {
  std::vector<TfCase> out;
  const fs::path root = pool_root();
  std::error_code ec;
  if (root.empty() || !fs::is_directory(root, ec)) return out;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) out.push_back({d.string(), d.filename().string(), "pb"});
  return out;
}

std::string op_folder(const std::string& case_name) {
  auto p = case_name.find("__");
  return p == std::string::npos ? case_name : case_name.substr(0, p);
}

const std::map<std::string, std::string>& skips() {
  static const std::map<std::string, std::string> m = [] {
    std::map<std::string, std::string> r;
    const char* env = std::getenv("ANVIL_TF_MORE_SKIPS");
    std::ifstream in(env ? std::string(env)
                         : std::string(ANVIL_SOURCE_DIR) +
                               "/tests/import/tensorflow_more_skips.txt");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream ss(line);
      std::string name, reason;
      ss >> name;
      std::getline(ss, reason);
      reason.erase(0, reason.find_first_not_of(" \t"));
      if (!name.empty()) r[name] = reason;
    }
    return r;
  }();
  return m;
}

const std::string* skip_reason(const std::string& case_name) {
  auto it = skips().find(case_name);
  if (it == skips().end()) it = skips().find(op_folder(case_name));
  return it == skips().end() ? nullptr : &it->second;
}

anvil::testing::FixtureOptions options(const char* backend) {
  anvil::testing::FixtureOptions fo;
  fo.adjust_tol = [](double& rtol, double& atol) {
    if (rtol >= 1e-2) return;  // float16 results
    rtol = std::min(rtol, 1e-5);
    atol = std::min(atol, 2e-6);
  };
  fo.shapes_from_inputs = true;
  fo.outputs_by_name = true;
  fo.backend = backend;
  return fo;
}

std::string problems_of(const TfCase& c, const char* backend) {
  const anvil::testing::FixtureResult r = anvil::testing::run_fixture_case(
      c.dir, {c.dir + "/frozen_model.pb"}, "tensor", options(backend));
  std::string what;
  for (const auto& p : r.problems) what += (what.empty() ? "" : "; ") + p;
  if (r.problems.empty() && r.framework != "tensorflow")
    what = "imported as '" + r.framework + "', not tensorflow";
  return what;
}

// One test over every case (a test per case would be 2600 ctest entries, each a process):
// every failure names its case. ANVIL_TF_MORE_FILTER=substring runs the matching cases only;
// ANVIL_TF_MORE_VERBOSE=1 prints one line per case (PASS, FAIL or SKIP with the reason).
std::vector<TfCase> selected_cases() {
  std::vector<TfCase> r;
  const char* f = std::getenv("ANVIL_TF_MORE_FILTER");
  for (auto& c : list_cases())
    if (!f || c.name.find(f) != std::string::npos) r.push_back(std::move(c));
  return r;
}

bool verbose() {
  const char* v = std::getenv("ANVIL_TF_MORE_VERBOSE");
  return v && *v && std::string(v) != "0";
}

TEST(TensorflowMore, EveryCaseOnTheReferenceBackend) {
  const auto cases = selected_cases();
  if (cases.empty()) GTEST_SKIP() << "fixtures/tensorflow-more not found";
  int pass = 0, skipped = 0;
  for (const auto& c : cases) {
    const std::string what = problems_of(c, "reference");
    const std::string* reason = skip_reason(c.name);
    if (reason && what.empty())
      ADD_FAILURE() << c.name << " passes but is on the skip list (" << *reason
                    << "): remove it from tests/import/tensorflow_more_skips.txt";
    else if (!reason && !what.empty())
      ADD_FAILURE() << c.name << ": " << what;
    pass += what.empty() ? 1 : 0;
    skipped += reason && !what.empty() ? 1 : 0;
    if (verbose()) {
      std::string line = what.empty() ? "PASS" : reason ? "SKIP " + *reason : "FAIL " + what;
      std::replace(line.begin(), line.end(), '\n', ' ');
      std::cout << "[tf-more] " << c.name << " " << line << "\n";
    }
  }
  std::cout << "tensorflow-more: " << pass << " of " << cases.size() << " pass, " << skipped
            << " on the skip list\n";
  RecordProperty("passed", pass);
  RecordProperty("skipped", skipped);
}

// The cpu backend on the cases off the skip list, at the same tolerance.
TEST(TensorflowMore, CasesOffTheSkipListOnTheCpuBackend) {
  const auto cases = selected_cases();
  if (cases.empty()) GTEST_SKIP() << "fixtures/tensorflow-more not found";
  for (const auto& c : cases) {
    if (skip_reason(c.name)) continue;
    const std::string what = problems_of(c, "cpu");
    EXPECT_TRUE(what.empty()) << c.name << " (cpu): " << what;
  }
}

TEST(TensorflowMoreSet, AllCasesPresent) {
  if (pool_root().empty()) GTEST_SKIP() << "fixtures/tensorflow-more not found";
  EXPECT_EQ(list_cases().size(), 1319u);  // README.md of the pool
}

// Every skip-list entry names a real case or op folder (typos would silently skip nothing).
TEST(TensorflowMoreSet, SkipListNamesExistingCases) {
  const auto all = list_cases();
  if (all.empty()) GTEST_SKIP() << "fixtures/tensorflow-more not found";
  std::set<std::string> names;
  for (const auto& c : all) {
    names.insert(c.name);
    names.insert(op_folder(c.name));
  }
  for (const auto& [name, reason] : skips()) {
    EXPECT_TRUE(names.count(name)) << "skip list names unknown case '" << name << "'";
    EXPECT_FALSE(reason.empty()) << "skip list entry '" << name << "' gives no reason";
  }
}

}  // namespace
