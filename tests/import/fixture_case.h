// Running one real-framework fixture case (tests/data/fixtures/<framework>/<case>/, layout in
// ORIGIN.md there): import the model files, feed inputs/, and compare outputs/ and every tensor
// of activations.npz (fetched by its source-framework name) within the case's rtol/atol, on
// the reference backend.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
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

/// Imports `files` of the case in `dir` and checks final outputs and every activation
/// (`what` names them in messages: "layer", "blob", "tensor"). Returns the imported graph's
/// framework ("" when import failed; the failure is recorded).
inline std::string check_fixture_case(const std::string& dir, const std::vector<std::string>& files,
                                      const char* what) {
  const nlohmann::json cj = read_case_json(dir);
  const double rtol = cj.value("rtol", 1e-5), atol = cj.value("atol", 1e-5);
  ImportOptions opt;
  if (cj.contains("input_shapes"))
    for (auto it = cj["input_shapes"].begin(); it != cj["input_shapes"].end(); ++it)
      opt.input_shapes[it.key()] = it.value().get<std::vector<int64_t>>();
  std::map<std::string, Tensor> inputs;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
    inputs[it.key()] = read_npy(dir + "/" + it.value().get<std::string>());
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
    so.backend = "reference";
    so.taps = names;
    sess = std::make_unique<Session>(g, so);
    outs = sess->run(inputs);
    got = sess->run(inputs, names);
  } catch (const Error& e) {
    ADD_FAILURE() << "import/run failed: " << e.what();
    return "";
  }
  EXPECT_EQ(outs.size(), cj["outputs"].size());
  for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it) {
    const Tensor want = read_npy(dir + "/" + it.value().get<std::string>());
    if (!outs.count(it.key())) {
      ADD_FAILURE() << "no output named " << it.key();
      continue;
    }
    const Comparison c = compare_tensors(outs[it.key()], want, rtol, atol);
    EXPECT_TRUE(c.shape_match) << "output " << it.key() << ": shape "
                               << shape_str(outs[it.key()].shape()) << ", reference "
                               << shape_str(want.shape());
    EXPECT_TRUE(c.ok()) << "output " << it.key() << ": " << c.describe();
  }
  int bad = 0;
  for (const auto& n : names) {
    if (!got.count(n)) {
      ADD_FAILURE() << what << " " << n << " was not returned";
      ++bad;
      continue;
    }
    const Comparison c = compare_tensors(got[n], acts[n], rtol, atol);
    if (!c.ok()) {
      ADD_FAILURE() << what << " " << n << ": "
                    << (c.shape_match ? c.describe()
                                      : "shape " + shape_str(got[n].shape()) + ", reference " +
                                            shape_str(acts[n].shape()));
      ++bad;
    }
  }
  ::testing::Test::RecordProperty("tensors_checked", static_cast<int>(names.size()));
  ::testing::Test::RecordProperty("tensors_bad", bad);
  return g.framework;
}

}  // namespace anvil::testing
