// The ONNX node conformance cases (Debian's libonnx-testdata) of the ops the cpu backend maps
// to oneDNN, run on the cpu backend and checked against the expected outputs of ONNX's own
// reference (float: rtol 1e-3, atol 1e-5 as the conformance tests; ints exact). Covers ONNX's
// own cases for padding, auto_pad, ceil_mode, count_include_pad, dilations, groups,
// broadcasting, Gemm's alpha/beta/trans, and so on. Cases the importer or the reference
// backend cannot run (listed in tests/import/onnx_conformance_skips.txt or needing
// parameters as run-time inputs) are skipped here; the import tests own them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/session.h"
#include "import/onnx/onnx_tensor.h"

namespace fs = std::filesystem;

namespace {

std::string testdata_root() {
  if (const char* env = std::getenv("ANVIL_ONNX_TESTDATA")) return env;
  return "/usr/share/libonnx-testdata/data";
}

const char* const kPrefixes[] = {"test_conv",
                                 "test_convtranspose",
                                 "test_maxpool",
                                 "test_averagepool",
                                 "test_globalaveragepool",
                                 "test_globalmaxpool",
                                 "test_gemm",
                                 "test_matmul",
                                 "test_relu",
                                 "test_leakyrelu",
                                 "test_sigmoid",
                                 "test_tanh",
                                 "test_elu",
                                 "test_clip",
                                 "test_hardsigmoid",
                                 "test_hardswish",
                                 "test_exp",
                                 "test_abs",
                                 "test_neg",
                                 "test_mish",
                                 "test_gelu",
                                 "test_add",
                                 "test_sub",
                                 "test_mul",
                                 "test_div",
                                 "test_max",
                                 "test_min",
                                 "test_concat",
                                 "test_softmax",
                                 "test_logsoftmax",
                                 "test_lrn",
                                 "test_batchnorm",
                                 "test_basic_conv",
                                 "test_flatten",
                                 "test_reshape",
                                 "test_cast_FLOAT_to_BFLOAT16",
                                 "test_cast_BFLOAT16_to_FLOAT"};

struct Case {
  std::string name, dir;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> discover() {
  std::vector<Case> r;
  std::error_code ec;
  const fs::path root = fs::path(testdata_root()) / "node";
  if (!fs::is_directory(root, ec)) return r;
  std::set<std::string> skips;
  std::ifstream in(std::string(ANVIL_SOURCE_DIR) + "/tests/import/onnx_conformance_skips.txt");
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') skips.insert(line.substr(0, line.find_first_of(" \t")));
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string n = e.path().filename().string();
    if (!e.is_directory() || skips.count(n) || !fs::exists(e.path() / "model.onnx")) continue;
    for (const char* p : kPrefixes)
      if (n.rfind(p, 0) == 0) {
        r.push_back({n, e.path().string()});
        break;
      }
  }
  std::sort(r.begin(), r.end(), [](const Case& a, const Case& b) { return a.name < b.name; });
  return r;
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

class CpuOnnxNode : public ::testing::TestWithParam<Case> {};

TEST_P(CpuOnnxNode, MatchesExpected) {
  const Case& c = GetParam();
  const std::string model = c.dir + "/model.onnx";
  const fs::path set = fs::path(c.dir) / "test_data_set_0";
  auto ins = read_numbered(set, "input_");
  auto want = read_numbered(set, "output_");
  auto names = anvil::onnx_import::graph_input_names(model);
  ASSERT_EQ(ins.size(), names.size());
  anvil::ImportOptions opt;
  for (size_t i = 0; i < names.size(); ++i) opt.input_shapes[names[i]] = ins[i].shape();
  std::unique_ptr<anvil::Session> s;
  std::map<std::string, anvil::Tensor> feed;
  // Parameters fed as graph inputs (Clip's min/max, Reshape's shape) become constants, as the
  // conformance tests do, when the graph does not compile with them as inputs.
  for (int freeze_from : {-1, 1}) {
    try {
      anvil::Graph g = anvil::import_model({model}, opt);
      feed.clear();
      for (size_t i = 0; i < ins.size(); ++i) {
        if (freeze_from >= 0 && static_cast<int>(i) >= freeze_from) {
          int v = g.find_value(names[i]);
          g.values[static_cast<size_t>(v)].constant = ins[i];
          g.inputs.erase(std::remove(g.inputs.begin(), g.inputs.end(), v), g.inputs.end());
        } else {
          feed[names[i]] = ins[i];
        }
      }
      anvil::SessionOptions so;
      so.backend = "cpu";
      s = std::make_unique<anvil::Session>(std::move(g), so);
      break;
    } catch (const anvil::Error&) {
      s.reset();
    }
  }
  if (!s) GTEST_SKIP() << "does not compile here (the import tests own this case)";
  auto outs = s->outputs();
  auto got = s->run(feed);
  ASSERT_EQ(want.size(), outs.size());
  for (size_t k = 0; k < want.size(); ++k) {
    const anvil::Tensor& w = want[k];
    const anvil::Tensor& g = got.at(outs[k].source_name);
    ASSERT_EQ(g.shape(), w.shape()) << outs[k].source_name;
    ASSERT_EQ(g.dtype(), w.dtype()) << outs[k].source_name;
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const double a = g.get(i), b = w.get(i);
      const bool ok =
          anvil::is_float(w.dtype())
              ? (std::isnan(b) ? std::isnan(a) : std::fabs(a - b) <= 1e-5 + 1e-3 * std::fabs(b))
              : a == b;
      if (!ok && first < 0) first = i;
      bad += !ok;
    }
    EXPECT_EQ(bad, 0) << outs[k].source_name << ": first at " << first << ": got " << g.get(first)
                      << ", expected " << w.get(first);
  }
}

INSTANTIATE_TEST_SUITE_P(Node, CpuOnnxNode, ::testing::ValuesIn(discover()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CpuOnnxNode);

}  // namespace
