// Shared helpers of the Keras format tests (test_keras_formats.cpp, test_keras_h5_reader.cpp):
// temp dirs, a minimal HDF5 writer, a zip writer, Keras 3 config pieces and hand-built Keras 2
// full-model .h5 files.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "anvil/import.h"
#include "anvil/session.h"
#include "anvil/tensor.h"
#include "import/keras/hdf5_file.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace anvil::keras_formats_test {

inline std::string fixture(const std::string& c) {
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/keras/" + c;
}
inline std::string tmpdir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("anvil_keras_fmt_" + std::to_string(::getpid())) / name;
  fs::create_directories(d);
  return d.string();
}
inline std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- a minimal HDF5 writer ----
class H5Writer {
 public:
  explicit H5Writer(const std::string& path) {
    f_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    lcpl_ = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl_, 1);
  }
  ~H5Writer() {
    H5Pclose(lcpl_);
    H5Fclose(f_);
  }
  void group(const std::string& p) {
    hid_t g = H5Gcreate2(f_, p.c_str(), lcpl_, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
  }
  void dataset(const std::string& p, const Tensor& t) {
    std::vector<hsize_t> dims(t.shape().begin(), t.shape().end());
    hid_t sp = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(f_, p.c_str(), H5T_IEEE_F32LE, sp, lcpl_, H5P_DEFAULT, H5P_DEFAULT);
    Tensor c = t.to(DType::f32);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, c.raw());
    H5Dclose(d);
    H5Sclose(sp);
  }
  // fixed-length string array attribute (what h5py writes for layer_names / weight_names)
  void attr_strings(const std::string& obj, const std::string& name,
                    const std::vector<std::string>& v) {
    size_t len = 1;
    for (const auto& s : v) len = std::max(len, s.size());
    std::string buf(len * v.size(), '\0');
    for (size_t i = 0; i < v.size(); ++i)
      std::copy(v[i].begin(), v[i].end(), buf.begin() + static_cast<long>(i * len));
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, len);
    hsize_t n = v.size();
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t o = H5Oopen(f_, obj.c_str(), H5P_DEFAULT);
    hid_t a = H5Acreate2(o, name.c_str(), ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (n) H5Awrite(a, ty, buf.data());
    H5Aclose(a);
    H5Oclose(o);
    H5Sclose(sp);
    H5Tclose(ty);
  }
  // variable-length scalar string attribute (h5py's str)
  void attr_string(const std::string& obj, const std::string& name, const std::string& v) {
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t o = H5Oopen(f_, obj.c_str(), H5P_DEFAULT);
    hid_t a = H5Acreate2(o, name.c_str(), ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = v.c_str();
    H5Awrite(a, ty, &p);
    H5Aclose(a);
    H5Oclose(o);
    H5Sclose(sp);
    H5Tclose(ty);
  }

 private:
  hid_t f_, lcpl_;
};

inline void write_zip(const std::string& path, const std::map<std::string, std::string>& entries) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_TRUE(z);
  std::vector<std::string> keep;  // buffers must live until zip_close
  keep.reserve(entries.size());
  for (const auto& [name, data] : entries) {
    keep.push_back(data);
    zip_source_t* src = zip_source_buffer(z, keep.back().data(), keep.back().size(), 0);
    ASSERT_GE(zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE), 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

// Weights of a Keras 2 fixture layer, in order.
inline std::vector<Tensor> fixture_weights(const std::string& file, const std::string& layer) {
  auto h5 = keras::H5File::open(file);
  std::string g = h5.is_group("/model_weights") ? "/model_weights/" + layer : "/" + layer;
  std::vector<Tensor> r;
  for (const auto& n : h5.attr_strings(g, "weight_names")) r.push_back(h5.read_f32(g + "/" + n));
  return r;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double m = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i)
    m = std::max(m, std::fabs(a.get(i) - b.get(i)));
  return m;
}

inline json k3_dense(const std::string& name, int units, const std::string& act, bool bias,
                     const json& inbound = nullptr) {
  json l = {
      {"module", "keras.layers"},
      {"class_name", "Dense"},
      {"config",
       {{"name", name},
        {"trainable", true},
        {"dtype",
         {{"module", "keras"}, {"class_name", "DTypePolicy"}, {"config", {{"name", "float32"}}}}},
        {"units", units},
        {"activation", act},
        {"use_bias", bias}}},
      {"registered_name", nullptr}};
  if (!inbound.is_null()) {
    l["name"] = name;
    l["inbound_nodes"] = inbound;
  }
  return l;
}
inline json k3_tensor(const std::string& layer) {
  return {{"class_name", "__keras_tensor__"}, {"config", {{"keras_history", {layer, 0, 0}}}}};
}

// ---- hand-built Keras 2 models ----

using LayerWeights = std::vector<std::pair<std::string, Tensor>>;

// Writes a Keras 2 full-model .h5: Sequential (layers get the first layer's input) or the
// given functional config, with the weights per layer.
inline std::string write_keras2(const std::string& path, const json& cfg,
                                const std::map<std::string, LayerWeights>& weights,
                                const std::vector<std::string>& layer_names,
                                const std::string& keras_version = "2.3.1") {
  H5Writer w(path);
  w.attr_string("/", "model_config", cfg.dump());
  w.attr_string("/", "backend", "tensorflow");
  w.attr_string("/", "keras_version", keras_version);
  w.group("model_weights");
  w.attr_strings("/model_weights", "layer_names", layer_names);
  for (const auto& l : layer_names) {
    w.group("model_weights/" + l);
    std::vector<std::string> names;
    auto it = weights.find(l);
    if (it != weights.end())
      for (const auto& [n, t] : it->second) {
        names.push_back(l + "/" + n + ":0");
        w.dataset("model_weights/" + l + "/" + l + "/" + n + ":0", t);
      }
    w.attr_strings("/model_weights/" + l, "weight_names", names);
  }
  return path;
}

inline json seq(const json& layers) {
  return {{"class_name", "Sequential"}, {"config", {{"name", "s"}, {"layers", layers}}}};
}
inline json layer(const std::string& cls, json cfg) {
  return {{"class_name", cls}, {"config", cfg}};
}
inline std::vector<std::string> names_of(const json& layers) {
  std::vector<std::string> r;
  for (const auto& l : layers) r.push_back(l["config"]["name"].get<std::string>());
  return r;
}
inline Tensor ramp(const Shape& s, double a, double b) {
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.set(i, a * static_cast<double>(i) + b * std::sin(static_cast<double>(i)));
  return t;
}
inline Tensor run1(const std::string& file, const Tensor& x, const std::string& fetch = {}) {
  Session s(import_model({file}));
  auto out = fetch.empty() ? s.run({{"in", x}}) : s.run({{"in", x}}, {fetch});
  return out.begin()->second;
}

}  // namespace anvil::keras_formats_test
