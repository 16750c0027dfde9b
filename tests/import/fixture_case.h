// Running one real-framework fixture case (tests/data/fixtures/<framework>/<case>/, layout in
// ORIGIN.md there): import the model files, feed inputs/, and compare outputs/ and every tensor
// of activations.npz (fetched by its source-framework name) within the case's rtol/atol, on
// the reference backend.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "anvil/verify.h"

namespace anvil::testing {

inline nlohmann::json read_case_json(const std::string& dir) {
  std::ifstream f(dir + "/case.json");
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

/// gtest parameter names: the case name and variant with every non-alphanumeric as '_'.
template <class Case>
std::string case_param_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.name + "_" + info.param.variant;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

/// What running one case found: the imported graph's framework ("" when import or run
/// failed) and every problem (empty: the case passes).
struct FixtureResult {
  std::string framework;
  std::vector<std::string> problems;
  int tensors_checked = 0, tensors_bad = 0;
};

/// How run_fixture_case runs a case beyond the case's own settings.
struct FixtureOptions {
  /// May change the case's rtol/atol.
  std::function<void(double& rtol, double& atol)> adjust_tol;
  /// Give every input's shape (from inputs/) to the importer (placeholders with an open batch).
  bool shapes_from_inputs = false;
  /// Fetch the case's outputs by their names (any tensor, not only the graph's outputs).
  bool outputs_by_name = false;
  /// The backend (the reference backend is the oracle these fixtures check importers with).
  std::string backend = "reference";
};

/// Imports `files` of the case in `dir`, runs it on the reference backend and compares final
/// outputs and every activation (`what` names them in messages: "layer", "blob", "tensor")
/// within the case's rtol/atol. Never fails the current test itself: check_fixture_case
/// does, callers with skip lists decide.
inline FixtureResult run_fixture_case(const std::string& dir, const std::vector<std::string>& files,
                                      const char* what, const FixtureOptions& fo = {}) {
  FixtureResult r;
  const nlohmann::json cj = read_case_json(dir);
  double rtol = cj.value("rtol", 1e-5), atol = cj.value("atol", 1e-5);
  if (fo.adjust_tol) fo.adjust_tol(rtol, atol);
  ImportOptions opt;
  if (cj.contains("input_shapes"))
    for (auto it = cj["input_shapes"].begin(); it != cj["input_shapes"].end(); ++it)
      opt.input_shapes[it.key()] = it.value().get<std::vector<int64_t>>();
  std::map<std::string, Tensor> inputs;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
    inputs[it.key()] = read_npy(dir + "/" + it.value().get<std::string>());
  if (fo.shapes_from_inputs)
    for (const auto& [k, t] : inputs)
      if (!opt.input_shapes.count(k)) opt.input_shapes[k] = t.shape();
  // activations.npz is optional (TFLite fixtures have only final outputs)
  std::map<std::string, Tensor> acts;
  if (std::ifstream(dir + "/activations.npz").good()) acts = read_npz(dir + "/activations.npz");
  std::vector<std::string> names;
  for (const auto& [k, _] : acts)
    if (!inputs.count(k)) names.push_back(k);

  Graph g;
  std::unique_ptr<Session> sess;
  std::map<std::string, Tensor> outs, got;
  try {
    g = import_model(files, opt);
    SessionOptions so;
    // The reference backend (double accumulation): these cases check the importers'
    // semantics against the framework's own numbers at the case's tight tolerance (Keras
    // 1e-5, TensorFlow 2e-6, TFLite exact). The cpu backend's fp32 accumulation differs from
    // it by up to ~1e-6 of a layer's scale (2.4e-5 on keras/resnet_small's b2_bn2, on values
    // up to 22); tests/unit/cpu_fixtures_test.cpp checks the cpu backend on the same fixtures
    // against this oracle at its own tolerance.
    so.backend = fo.backend;
    so.taps = names;
    if (fo.outputs_by_name)
      for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it)
        so.taps.push_back(it.key());
    sess = std::make_unique<Session>(g, so);
    if (fo.outputs_by_name) {
      std::vector<std::string> want;
      for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it)
        want.push_back(it.key());
      outs = sess->run(inputs, want);
    } else {
      outs = sess->run(inputs);
    }
    got = names.empty() ? std::map<std::string, Tensor>{} : sess->run(inputs, names);
  } catch (const Error& e) {
    r.problems.push_back(std::string("import/run failed: ") + e.what());
    return r;
  }
  r.framework = g.framework;
  if (!fo.outputs_by_name && outs.size() != cj["outputs"].size())
    r.problems.push_back("the graph has " + std::to_string(outs.size()) + " outputs, the case " +
                         std::to_string(cj["outputs"].size()));
  for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it) {
    const Tensor want = read_npy(dir + "/" + it.value().get<std::string>());
    if (!outs.count(it.key())) {
      r.problems.push_back("no output named " + it.key());
      continue;
    }
    const Comparison c = compare_tensors(outs[it.key()], want, rtol, atol);
    if (!c.shape_match)
      r.problems.push_back("output " + it.key() + ": shape " + shape_str(outs[it.key()].shape()) +
                           ", reference " + shape_str(want.shape()));
    else if (!c.ok())
      r.problems.push_back("output " + it.key() + ": " + c.describe());
  }
  for (const auto& n : names) {
    if (!got.count(n)) {
      r.problems.push_back(std::string(what) + " " + n + " was not returned");
      ++r.tensors_bad;
      continue;
    }
    const Comparison c = compare_tensors(got[n], acts[n], rtol, atol);
    if (!c.ok()) {
      r.problems.push_back(std::string(what) + " " + n + ": " +
                           (c.shape_match ? c.describe()
                                          : "shape " + shape_str(got[n].shape()) + ", reference " +
                                                shape_str(acts[n].shape())));
      ++r.tensors_bad;
    }
  }
  r.tensors_checked = static_cast<int>(names.size());
  return r;
}

/// run_fixture_case, each problem a failure of the current test. Returns the imported
/// graph's framework ("" when import failed; the failure is recorded).
inline std::string check_fixture_case(const std::string& dir, const std::vector<std::string>& files,
                                      const char* what) {
  const FixtureResult r = run_fixture_case(dir, files, what);
  for (const auto& p : r.problems) ADD_FAILURE() << p;
  if (!r.framework.empty()) {
    ::testing::Test::RecordProperty("tensors_checked", r.tensors_checked);
    ::testing::Test::RecordProperty("tensors_bad", r.tensors_bad);
  }
  return r.framework;
}

}  // namespace anvil::testing
