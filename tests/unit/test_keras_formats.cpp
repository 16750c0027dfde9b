// Keras file formats beyond the fixtures: Keras 3 `.keras` zips (config.json +
// model.weights.h5 with layers/<name>/vars/<i>), Keras 3 functional configs
// (__keras_tensor__ / keras_history), and Keras 2 functional models with a nested model and
// a shared layer. The files are written here with the HDF5 C API and libzip; expected values
// come from the Keras 2 fixtures (same weights) or from hand-written loops.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <zip.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "import/keras/hdf5_file.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace anvil;

namespace {

std::string fixture(const std::string& c) { return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/keras/" + c; }
std::string tmpdir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("anvil_keras_fmt_" + std::to_string(::getpid())) / name;
  fs::create_directories(d);
  return d.string();
}
std::string read_file(const std::string& p) {
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
  void attr_strings(const std::string& obj, const std::string& name, const std::vector<std::string>& v) {
    size_t len = 1;
    for (const auto& s : v) len = std::max(len, s.size());
    std::string buf(len * v.size(), '\0');
    for (size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), buf.begin() + static_cast<long>(i * len));
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

void write_zip(const std::string& path, const std::map<std::string, std::string>& entries) {
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
std::vector<Tensor> fixture_weights(const std::string& file, const std::string& layer) {
  auto h5 = keras::H5File::open(file);
  std::string g = h5.is_group("/model_weights") ? "/model_weights/" + layer : "/" + layer;
  std::vector<Tensor> r;
  for (const auto& n : h5.attr_strings(g, "weight_names")) r.push_back(h5.read_f32(g + "/" + n));
  return r;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double m = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) m = std::max(m, std::fabs(a.get(i) - b.get(i)));
  return m;
}

json k3_dense(const std::string& name, int units, const std::string& act, bool bias, const json& inbound = nullptr) {
  json l = {{"module", "keras.layers"},
            {"class_name", "Dense"},
            {"config",
             {{"name", name},
              {"trainable", true},
              {"dtype", {{"module", "keras"}, {"class_name", "DTypePolicy"}, {"config", {{"name", "float32"}}}}},
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
json k3_tensor(const std::string& layer) {
  return {{"class_name", "__keras_tensor__"}, {"config", {{"keras_history", {layer, 0, 0}}}}};
}

// dense_stack (Dense(8, tanh) -> Dense(4, no bias) -> Dense(3, sigmoid)) rewritten as Keras 3
TEST(KerasFormats, Keras3SequentialDotKeras) {
  std::string d = tmpdir("k3seq");
  std::string src = fixture("dense_stack/model.h5");
  json cfg = {{"module", "keras"},
              {"class_name", "Sequential"},
              {"config",
               {{"name", "sequential"},
                {"layers",
                 {{{"module", "keras.layers"},
                   {"class_name", "InputLayer"},
                   {"config", {{"batch_shape", {nullptr, 10}}, {"dtype", "float32"}, {"name", "input_layer"}}}},
                  k3_dense("dense_1", 8, "tanh", true), k3_dense("dense_2", 4, "linear", false),
                  k3_dense("dense_3", 3, "sigmoid", true)}}}}};
  std::string wpath = d + "/model.weights.h5";
  {
    H5Writer w(wpath);
    for (const char* l : {"dense_1", "dense_2", "dense_3"}) {
      auto ws = fixture_weights(src, l);
      for (size_t i = 0; i < ws.size(); ++i) w.dataset(std::string("layers/") + l + "/vars/" + std::to_string(i), ws[i]);
    }
    w.group("vars");
  }
  std::string kpath = d + "/model.keras";
  write_zip(kpath, {{"config.json", cfg.dump()},
                    {"metadata.json", R"({"keras_version": "3.3.3", "date_saved": "2024-01-01"})"},
                    {"model.weights.h5", read_file(wpath)}});
  Tensor x = read_npy(fixture("dense_stack/inputs/dense_1_input.npy"));
  ImportOptions opt;
  opt.input_shapes["input_layer"] = x.shape();
  Graph g = import_model({kpath}, opt);
  Session s(g);
  auto out = s.run({{"input_layer", x}});
  ASSERT_TRUE(out.count("dense_3"));
  EXPECT_LT(max_abs_diff(out["dense_3"], read_npy(fixture("dense_stack/outputs/dense_3.npy"))), 1e-5);
  // Keras 3 weights next to a JSON config (the split form) load the same way
  std::string jpath = d + "/config.json";
  std::ofstream(jpath) << cfg.dump();
  Graph g2 = import_model({wpath, jpath}, opt);
  Session s2(g2);
  EXPECT_LT(max_abs_diff(s2.run({{"input_layer", x}})["dense_3"], out["dense_3"]), 0.0 + 1e-12);
}

// merge_add3_two_inputs (Add of x, y, Dense(y)) rewritten as a Keras 3 functional model
TEST(KerasFormats, Keras3FunctionalTwoInputs) {
  std::string d = tmpdir("k3fun");
  std::string src = fixture("merge_add3_two_inputs/model.h5");
  json in_x = {{"class_name", "InputLayer"}, {"name", "x"}, {"config", {{"batch_shape", {nullptr, 5, 4}}, {"name", "x"}}}, {"inbound_nodes", json::array()}};
  json in_y = {{"class_name", "InputLayer"}, {"name", "y"}, {"config", {{"batch_shape", {nullptr, 5, 4}}, {"name", "y"}}}, {"inbound_nodes", json::array()}};
  json dy = k3_dense("dy", 4, "linear", true, json::array({{{"args", {k3_tensor("y")}}, {"kwargs", json::object()}}}));
  json add = {{"class_name", "Add"},
              {"name", "add3"},
              {"config", {{"name", "add3"}}},
              {"inbound_nodes",
               json::array({{{"args", json::array({json::array({k3_tensor("x"), k3_tensor("y"), k3_tensor("dy")})})},
                             {"kwargs", json::object()}}})}};
  json cfg = {{"class_name", "Functional"},
              {"config",
               {{"name", "functional"},
                {"layers", {in_x, in_y, dy, add}},
                {"input_layers", {{"x", 0, 0}, {"y", 0, 0}}},
                {"output_layers", {{"add3", 0, 0}}}}}};
  std::string wpath = d + "/model.weights.h5";
  {
    H5Writer w(wpath);
    auto ws = fixture_weights(src, "dy");
    for (size_t i = 0; i < ws.size(); ++i) w.dataset("layers/dy/vars/" + std::to_string(i), ws[i]);
  }
  std::string kpath = d + "/m.keras";
  write_zip(kpath, {{"config.json", cfg.dump()}, {"model.weights.h5", read_file(wpath)}});
  Tensor x = read_npy(fixture("merge_add3_two_inputs/inputs/x.npy"));
  Tensor y = read_npy(fixture("merge_add3_two_inputs/inputs/y.npy"));
  ImportOptions opt;
  opt.input_shapes["x"] = x.shape();
  opt.input_shapes["y"] = y.shape();
  Session s(import_model({kpath}, opt));
  auto out = s.run({{"x", x}, {"y", y}});
  EXPECT_LT(max_abs_diff(out.at("add3"), read_npy(fixture("merge_add3_two_inputs/outputs/add3.npy"))), 1e-5);
}

// Keras 2 functional model: a shared Dense applied to two inputs, its sum fed to a nested
// Sequential; weights in the Keras 2 layout (nested model's weights under its own group).
TEST(KerasFormats, NestedModelAndSharedLayer) {
  std::string d = tmpdir("nested");
  auto ref = [](const std::string& l, int node) { return json::array({l, node, 0, json::object()}); };
  json inner = {{"class_name", "Sequential"},
                {"config",
                 {{"name", "inner"},
                  {"layers",
                   {{{"class_name", "Dense"},
                     {"config",
                      {{"name", "in_d"}, {"units", 2}, {"activation", "relu"}, {"use_bias", true},
                       {"batch_input_shape", {nullptr, 3}}}}}}}}}};
  inner["name"] = "inner";
  inner["inbound_nodes"] = json::array({json::array({ref("sum", 0)})});
  json cfg = {{"class_name", "Model"},
              {"config",
               {{"name", "outer"},
                {"layers",
                 {{{"class_name", "InputLayer"}, {"name", "a"}, {"config", {{"name", "a"}, {"batch_input_shape", {nullptr, 4}}}}, {"inbound_nodes", json::array()}},
                  {{"class_name", "InputLayer"}, {"name", "b"}, {"config", {{"name", "b"}, {"batch_input_shape", {nullptr, 4}}}}, {"inbound_nodes", json::array()}},
                  {{"class_name", "Dense"},
                   {"name", "sd"},
                   {"config", {{"name", "sd"}, {"units", 3}, {"activation", "linear"}, {"use_bias", true}}},
                   {"inbound_nodes", json::array({json::array({ref("a", 0)}), json::array({ref("b", 0)})})}},
                  {{"class_name", "Add"},
                   {"name", "sum"},
                   {"config", {{"name", "sum"}}},
                   {"inbound_nodes", json::array({json::array({ref("sd", 0), ref("sd", 1)})})}},
                  inner}},
                {"input_layers", {{"a", 0, 0}, {"b", 0, 0}}},
                {"output_layers", {{"inner", 0, 0}}}}}};
  // weights
  Tensor W(DType::f32, {4, 3}), bW(DType::f32, {3}), V(DType::f32, {3, 2}), bV(DType::f32, {2});
  for (int64_t i = 0; i < W.numel(); ++i) W.set(i, 0.1 * static_cast<double>(i) - 0.5);
  for (int64_t i = 0; i < 3; ++i) bW.set(i, 0.05 * static_cast<double>(i + 1));
  for (int64_t i = 0; i < V.numel(); ++i) V.set(i, 0.3 - 0.1 * static_cast<double>(i));
  bV.set(0, 0.2);
  bV.set(1, -0.1);
  std::string h5 = d + "/model.h5";
  {
    H5Writer w(h5);
    w.attr_string("/", "model_config", cfg.dump());
    w.attr_string("/", "backend", "tensorflow");
    w.attr_string("/", "keras_version", "2.3.1");
    w.group("model_weights");
    w.attr_strings("/model_weights", "layer_names", {"a", "b", "sd", "sum", "inner"});
    for (const char* g : {"a", "b", "sum"}) {
      w.group(std::string("model_weights/") + g);
      w.attr_strings(std::string("/model_weights/") + g, "weight_names", {});
    }
    w.group("model_weights/sd");
    w.attr_strings("/model_weights/sd", "weight_names", {"sd/kernel:0", "sd/bias:0"});
    w.dataset("model_weights/sd/sd/kernel:0", W);
    w.dataset("model_weights/sd/sd/bias:0", bW);
    w.group("model_weights/inner");
    w.attr_strings("/model_weights/inner", "weight_names", {"in_d/kernel:0", "in_d/bias:0"});
    w.dataset("model_weights/inner/in_d/kernel:0", V);
    w.dataset("model_weights/inner/in_d/bias:0", bV);
  }
  Tensor a(DType::f32, {2, 4}), b(DType::f32, {2, 4});
  for (int64_t i = 0; i < 8; ++i) {
    a.set(i, std::sin(static_cast<double>(i)));
    b.set(i, std::cos(static_cast<double>(i)));
  }
  ImportOptions opt;
  opt.input_shapes["a"] = {2, 4};
  opt.input_shapes["b"] = {2, 4};
  Graph g = import_model({h5}, opt);
  Session s(g);
  auto out = s.run({{"a", a}, {"b", b}}, {"inner", "sd", "sd@1", "inner/in_d"});
  // by hand: sd(v) = v W + bW; sum = sd(a) + sd(b); inner = relu(sum V + bV)
  for (int n = 0; n < 2; ++n) {
    double sa[3], sb[3];
    for (int j = 0; j < 3; ++j) {
      sa[j] = bW.get(j);
      sb[j] = bW.get(j);
      for (int k = 0; k < 4; ++k) {
        sa[j] += a.get(n * 4 + k) * W.get(k * 3 + j);
        sb[j] += b.get(n * 4 + k) * W.get(k * 3 + j);
      }
      EXPECT_NEAR(out["sd"].get(n * 3 + j), sa[j], 1e-5);
      EXPECT_NEAR(out["sd@1"].get(n * 3 + j), sb[j], 1e-5);
    }
    for (int j = 0; j < 2; ++j) {
      double v = bV.get(j);
      for (int k = 0; k < 3; ++k) v += (sa[k] + sb[k]) * V.get(k * 2 + j);
      v = std::max(v, 0.0);
      EXPECT_NEAR(out["inner"].get(n * 2 + j), v, 1e-5);
      EXPECT_NEAR(out["inner/in_d"].get(n * 2 + j), v, 1e-5);
    }
  }
}

TEST(KerasFormats, DotKerasWithoutWeightsIsAnError) {
  std::string d = tmpdir("k3bad");
  std::string kpath = d + "/bad.keras";
  write_zip(kpath, {{"config.json", R"({"class_name": "Sequential", "config": {"layers": []}})"}});
  try {
    import_model({kpath});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.weights.h5"), std::string::npos) << e.what();
  }
}

}  // namespace
