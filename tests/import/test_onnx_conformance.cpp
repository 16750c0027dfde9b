// ONNX conformance: every test case of Debian's libonnx-testdata (node/, pytorch-converted/,
// pytorch-operator/, simple/) is imported, run on the reference backend and compared with
// the expected outputs (float: rtol 1e-3, atol 1e-5, NaN == NaN; ints and bools: exact).
//
// Each case is its own test. Cases listed in tests/import/onnx_conformance_skips.txt are
// still run: a listed case that passes fails (remove it from the list), one that fails is
// skipped with the list's reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/session.h"
#include "import/onnx/onnx_tensor.h"

namespace fs = std::filesystem;

namespace {

const char* const kFolders[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};

std::string testdata_root() {
  if (const char* env = std::getenv("ANVIL_ONNX_TESTDATA")) return env;
  return "/usr/share/libonnx-testdata/data";
}

struct Case {
  std::string folder;
  std::string name;
  std::string dir;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.folder << "/" << c.name; }

std::vector<Case> discover(const std::string& folder) {
  std::vector<Case> r;
  std::error_code ec;
  fs::path root = fs::path(testdata_root()) / folder;
  if (!fs::is_directory(root, ec)) return r;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && fs::exists(e.path() / "model.onnx"))
      r.push_back({folder, e.path().filename().string(), e.path().string()});
  std::sort(r.begin(), r.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
  return r;
}

const std::map<std::string, std::string>& skips() {
  static const std::map<std::string, std::string> m = [] {
    std::map<std::string, std::string> r;
    // ANVIL_ONNX_SKIPS overrides the list (e.g. /dev/null to see every failure).
    const char* env = std::getenv("ANVIL_ONNX_SKIPS");
    std::ifstream in(env ? std::string(env)
                         : std::string(ANVIL_SOURCE_DIR) +
                               "/tests/import/onnx_conformance_skips.txt");
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

// Empty when equal; otherwise says where and how they differ.
std::string compare(const anvil::Tensor& got, const anvil::Tensor& want) {
  if (got.shape() != want.shape())
    return "shape " + anvil::shape_str(got.shape()) + ", expected " +
           anvil::shape_str(want.shape());
  if (got.dtype() != want.dtype())
    return std::string("dtype ") + anvil::dtype_name(got.dtype()) + ", expected " +
           anvil::dtype_name(want.dtype());
  const double rtol = 1e-3, atol = 1e-5;
  int64_t bad = 0, first = -1;
  double worst = 0;
  const bool fl = anvil::is_float(want.dtype());
  std::vector<int64_t> gi, wi;
  if (!fl) {
    gi = got.to_int64s();
    wi = want.to_int64s();
  }
  for (int64_t i = 0; i < want.numel(); ++i) {
    bool ok;
    if (fl) {
      double a = got.get(i), b = want.get(i);
      if (std::isnan(b))
        ok = std::isnan(a);
      else if (std::isinf(b))
        ok = a == b;
      else {
        double d = std::fabs(a - b);
        ok = d <= atol + rtol * std::fabs(b);
        if (!ok && !std::isnan(d)) worst = std::max(worst, d);
        if (std::isnan(a)) ok = false;
      }
    } else {
      ok = gi[static_cast<size_t>(i)] == wi[static_cast<size_t>(i)];
    }
    if (!ok) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return {};
  std::ostringstream os;
  os << bad << " of " << want.numel() << " values differ; first at flat index " << first << ": got "
     << got.get(first) << ", expected " << want.get(first);
  if (fl) os << " (largest difference " << worst << ")";
  return os.str();
}

std::vector<anvil::Tensor> read_numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<anvil::Tensor> r;
  for (int i = 0;; ++i) {
    fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    r.push_back(anvil::onnx_import::read_tensor_file(p.string()));
  }
  return r;
}

// Runs one data set of a case. Canonical ops take shape-like parameters (Reshape's shape,
// Slice's starts, Resize's scales, ...) as constants known at compile time, while the ONNX
// node tests often feed them as graph inputs: inputs numbered `freeze_from` and up are
// then turned into constants with the data set's values before the session compiles.
std::string run_set(const std::string& model, const std::vector<std::string>& names,
                    const fs::path& set, int freeze_from) {
  std::vector<anvil::Tensor> ins = read_numbered(set, "input_");
  std::vector<anvil::Tensor> want = read_numbered(set, "output_");
  if (ins.size() != names.size())
    return set.filename().string() + ": " + std::to_string(ins.size()) + " input files for " +
           std::to_string(names.size()) + " model inputs";
  anvil::ImportOptions opt;
  for (size_t i = 0; i < names.size(); ++i) opt.input_shapes[names[i]] = ins[i].shape();
  anvil::Graph g = anvil::import_model({model}, opt);
  std::map<std::string, anvil::Tensor> feed;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (freeze_from >= 0 && static_cast<int>(i) >= freeze_from) {
      int v = g.find_value(names[i]);
      if (v < 0) return "no graph input '" + names[i] + "'";
      g.values[static_cast<size_t>(v)].constant = ins[i];
      g.inputs.erase(std::remove(g.inputs.begin(), g.inputs.end(), v), g.inputs.end());
    } else {
      feed[names[i]] = ins[i];
    }
  }
  anvil::SessionOptions so;
  so.backend = "reference";  // the oracle; the cpu backend: tests/unit/cpu_onnx_nodes_test.cpp
  anvil::Session s(std::move(g), so);
  auto outs_info = s.outputs();
  auto got = s.run(feed);
  if (want.size() != outs_info.size())
    return set.filename().string() + ": " + std::to_string(want.size()) +
           " expected outputs, the model has " + std::to_string(outs_info.size());
  for (size_t i = 0; i < want.size(); ++i) {
    auto it = got.find(outs_info[i].source_name);
    if (it == got.end()) return "output '" + outs_info[i].source_name + "' not returned";
    std::string diff = compare(it->second, want[i]);
    if (!diff.empty())
      return set.filename().string() + ": output " + std::to_string(i) + " '" +
             outs_info[i].source_name + "': " + diff;
  }
  return {};
}

// Runs one case; returns an empty string when it passes, else what went wrong.
std::string run_case(const Case& c) {
  const std::string model = c.dir + "/model.onnx";
  std::vector<fs::path> sets;
  std::vector<std::string> names;
  try {
    for (const auto& e : fs::directory_iterator(c.dir))
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
        sets.push_back(e.path());
    std::sort(sets.begin(), sets.end());
    if (sets.empty()) return "no test_data_set_* folder";
    names = anvil::onnx_import::graph_input_names(model);
  } catch (const std::exception& e) {
    return e.what();
  }
  std::string first_error;
  for (int freeze_from : {-1, 1, 0}) {
    std::string err;
    for (const auto& set : sets) {
      try {
        err = run_set(model, names, set, freeze_from);
      } catch (const std::exception& e) {
        err = e.what();
      }
      if (!err.empty()) break;
    }
    if (err.empty()) return {};
    if (first_error.empty()) first_error = err;
    // Retry with frozen inputs only when a parameter had to be a constant.
    if (err.find("must be a constant") == std::string::npos)
      return freeze_from < 0 ? err : "with inputs frozen as constants: " + err;
  }
  return first_error;
}

class OnnxConformanceBase : public ::testing::TestWithParam<Case> {
 protected:
  void check() {
    const Case& c = GetParam();
    std::string result = run_case(c);
    auto it = skips().find(c.name);
    if (it == skips().end()) it = skips().find(c.folder + "/" + c.name);
    if (it != skips().end()) {
      if (result.empty())
        FAIL() << c.folder << "/" << c.name << " passes but is on the skip list (" << it->second
               << "): remove it from tests/import/onnx_conformance_skips.txt";
      GTEST_SKIP() << it->second << " [" << result.substr(0, 300) << "]";
    }
    EXPECT_TRUE(result.empty()) << c.folder << "/" << c.name << ": " << result;
  }
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.name;
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

class OnnxConformanceNode : public OnnxConformanceBase {};
class OnnxConformancePytorchConverted : public OnnxConformanceBase {};
class OnnxConformancePytorchOperator : public OnnxConformanceBase {};
class OnnxConformanceSimple : public OnnxConformanceBase {};

TEST_P(OnnxConformanceNode, Run) { check(); }
TEST_P(OnnxConformancePytorchConverted, Run) { check(); }
TEST_P(OnnxConformancePytorchOperator, Run) { check(); }
TEST_P(OnnxConformanceSimple, Run) { check(); }

INSTANTIATE_TEST_SUITE_P(OnnxConformance, OnnxConformanceNode,
                         ::testing::ValuesIn(discover("node")), case_name);
INSTANTIATE_TEST_SUITE_P(OnnxConformance, OnnxConformancePytorchConverted,
                         ::testing::ValuesIn(discover("pytorch-converted")), case_name);
INSTANTIATE_TEST_SUITE_P(OnnxConformance, OnnxConformancePytorchOperator,
                         ::testing::ValuesIn(discover("pytorch-operator")), case_name);
INSTANTIATE_TEST_SUITE_P(OnnxConformance, OnnxConformanceSimple,
                         ::testing::ValuesIn(discover("simple")), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OnnxConformanceNode);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OnnxConformancePytorchConverted);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OnnxConformancePytorchOperator);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OnnxConformanceSimple);

// Fails with instructions when the test data is not installed.
TEST(OnnxConformance, TestDataPresent) {
  for (const char* f : kFolders) {
    EXPECT_FALSE(discover(f).empty())
        << "no ONNX test cases under " << testdata_root() << "/" << f
        << ": install them with `apt-get install libonnx-testdata` (or set ANVIL_ONNX_TESTDATA)";
  }
}

// Every skip-list entry names a real case (typos would silently skip nothing).
TEST(OnnxConformance, SkipListNamesExistingCases) {
  std::map<std::string, bool> all;
  for (const char* f : kFolders)
    for (const auto& c : discover(f)) {
      all[c.name] = true;
      all[c.folder + "/" + c.name] = true;
    }
  if (all.empty()) GTEST_SKIP() << "no test data (see TestDataPresent)";
  for (const auto& [name, reason] : skips())
    EXPECT_TRUE(all.count(name)) << "skip list names unknown case '" << name << "'";
}

}  // namespace
