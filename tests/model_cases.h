// The real-framework fixture models in tests/data/fixtures (one folder per case with a
// case.json) and the demo models, as cases for the backend-against-reference tests
// (tests/unit/cpu_fixtures_test.cpp, tests/cuda/test_cuda_fixtures.cpp).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "anvil/npy.h"
#include "anvil/tensor.h"

namespace anvil::testing {

struct ModelCase {
  std::string name;
  std::vector<std::string> files;
  std::map<std::string, std::string> inputs;  // input name ("" = the only one) -> .npy
  std::map<std::string, Shape> input_shapes;
  std::vector<std::string> taps;  // activations.npz keys (the framework's own layer names)
};
inline void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

/// Every fixture under tests/data/fixtures/<framework> for the given frameworks (every folder
/// of fixtures but tensorflow-more/ when empty), sorted by path and named by it, then the demo
/// models (ONNX, Keras, Caffe) that are present.
inline std::vector<ModelCase> fixture_model_cases(const std::vector<std::string>& frameworks = {}) {
  namespace fs = std::filesystem;
  std::vector<ModelCase> out;
  const fs::path src(ANVIL_SOURCE_DIR);
  const fs::path root = src / "tests/data/fixtures";
  std::error_code ec;
  std::vector<fs::path> tops;
  if (frameworks.empty()) {
    // every folder but the TF conformance pool, which has its own harness, skip list and cpu
    // run (tests/import/tensorflow_more_test.cpp)
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory() && e.path().filename() != "tensorflow-more") tops.push_back(e.path());
  } else
    for (const auto& fw : frameworks) tops.push_back(root / fw);
  std::vector<fs::path> dirs;
  for (const auto& top : tops) {
    if (!fs::is_directory(top, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(top, ec);
         it != fs::recursive_directory_iterator(); ++it)
      if (it->is_directory() && fs::exists(it->path() / "case.json")) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    ModelCase c;
    c.name = fs::relative(d, root).string();
    if (fs::exists(d / "model.h5"))
      c.files = {(d / "model.h5").string()};
    else if (fs::exists(d / "config.json") && fs::exists(d / "weights.h5"))
      c.files = {(d / "config.json").string(), (d / "weights.h5").string()};
    else if (fs::exists(d / "deploy.prototxt") && fs::exists(d / "model.caffemodel"))
      c.files = {(d / "deploy.prototxt").string(), (d / "model.caffemodel").string()};
    else if (fs::exists(d / "model.onnx"))
      c.files = {(d / "model.onnx").string()};
    else if (fs::exists(d / "frozen_model.pb"))  // TensorFlow
      c.files = {(d / "frozen_model.pb").string()};
    else if (fs::exists(d / "model.tflite"))
      c.files = {(d / "model.tflite").string()};
    else
      continue;
    std::ifstream f(d / "case.json");
    std::stringstream ss;
    ss << f.rdbuf();
    auto j = nlohmann::json::parse(ss.str(), nullptr, false);
    if (j.is_discarded() || !j.contains("inputs")) continue;
    for (auto it = j["inputs"].begin(); it != j["inputs"].end(); ++it)
      c.inputs[it.key()] = (d / it.value().get<std::string>()).string();
    if (j.contains("input_shapes"))
      for (auto it = j["input_shapes"].begin(); it != j["input_shapes"].end(); ++it)
        c.input_shapes[it.key()] = it.value().get<std::vector<int64_t>>();
    if (fs::exists(d / "activations.npz"))
      for (const auto& [k, _] : read_npz((d / "activations.npz").string()))
        if (!c.inputs.count(k)) c.taps.push_back(k);
    out.push_back(c);
  }
  const fs::path demo = src / "models/demo";
  out.push_back({"demo_onnx",
                 {(demo / "digits_cnn.onnx").string()},
                 {{"image", (demo / "inputs/image.npy").string()}},
                 {},
                 {}});
  if (fs::exists(demo / "keras/digits_cnn.h5"))
    out.push_back({"demo_keras",
                   {(demo / "keras/digits_cnn.h5").string()},
                   {{"image", (demo / "keras/inputs/image.npy").string()}},
                   {},
                   {}});
  if (fs::exists(demo / "caffe/deploy.prototxt"))
    out.push_back(
        {"demo_caffe",
         {(demo / "caffe/deploy.prototxt").string(), (demo / "caffe/digits.caffemodel").string()},
         {{"", (demo / "caffe/inputs/data.npy").string()}},
         {},
         {}});
  return out;
}

}  // namespace anvil::testing
