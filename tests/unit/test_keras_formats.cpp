// Keras file formats beyond the fixtures: Keras 3 `.keras` zips (config.json +
// model.weights.h5 with layers/<name>/vars/<i>), Keras 3 functional configs
// (__keras_tensor__ / keras_history), and Keras 2 functional models with a nested model and
// a shared layer. The files are written here with the HDF5 C API and libzip; expected values
// come from the Keras 2 fixtures (same weights) or from hand-written loops.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <zip.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/ops.h"
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
  SessionOptions so;
  so.backend = "reference";  // the importer against Keras's own outputs at 1e-5: the oracle
  Session s(g, so);
  auto out = s.run({{"input_layer", x}});
  ASSERT_TRUE(out.count("dense_3"));
  EXPECT_LT(max_abs_diff(out["dense_3"], read_npy(fixture("dense_stack/outputs/dense_3.npy"))), 1e-5);
  // Keras 3 weights next to a JSON config (the split form) load the same way
  std::string jpath = d + "/config.json";
  std::ofstream(jpath) << cfg.dump();
  Graph g2 = import_model({wpath, jpath}, opt);
  Session s2(g2, so);
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
  SessionOptions so;
  so.backend = "reference";  // the importer against Keras's own outputs at 1e-5: the oracle
  Session s(import_model({kpath}, opt), so);
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


// ---- hand-built Keras 2 models for layers the fixtures do not cover ----

using LayerWeights = std::vector<std::pair<std::string, Tensor>>;

// Writes a Keras 2 full-model .h5: Sequential (layers get the first layer's input) or the
// given functional config, with the weights per layer.
std::string write_keras2(const std::string& path, const json& cfg, const std::map<std::string, LayerWeights>& weights,
                         const std::vector<std::string>& layer_names, const std::string& keras_version = "2.3.1") {
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

json seq(const json& layers) { return {{"class_name", "Sequential"}, {"config", {{"name", "s"}, {"layers", layers}}}}; }
json layer(const std::string& cls, json cfg) { return {{"class_name", cls}, {"config", cfg}}; }
std::vector<std::string> names_of(const json& layers) {
  std::vector<std::string> r;
  for (const auto& l : layers) r.push_back(l["config"]["name"].get<std::string>());
  return r;
}
Tensor ramp(const Shape& s, double a, double b) {
  Tensor t(DType::f32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, a * static_cast<double>(i) + b * std::sin(static_cast<double>(i)));
  return t;
}
Tensor run1(const std::string& file, const Tensor& x, const std::string& fetch = {}) {
  Session s(import_model({file}));
  auto out = fetch.empty() ? s.run({{"in", x}}) : s.run({{"in", x}}, {fetch});
  return out.begin()->second;
}

TEST(KerasLayers, RepeatVector) {
  std::string d = tmpdir("repeat");
  json ls = {layer("RepeatVector", {{"name", "rep"}, {"n", 3}, {"batch_input_shape", {1, 4}}})};
  Tensor x = ramp({1, 4}, 0.5, 1);
  Tensor y = run1(write_keras2(d + "/m.h5", seq(ls), {}, names_of(ls)), x);
  ASSERT_EQ(y.shape(), (Shape{1, 3, 4}));
  for (int r = 0; r < 3; ++r)
    for (int f = 0; f < 4; ++f) EXPECT_FLOAT_EQ(static_cast<float>(y.get(r * 4 + f)), static_cast<float>(x.get(f)));
}

TEST(KerasLayers, ZeroPadding1DThenCropping1DAndUpSampling1D) {
  std::string d = tmpdir("pad1d");
  json ls = {layer("ZeroPadding1D", {{"name", "pad"}, {"padding", {1, 2}}, {"batch_input_shape", {1, 5, 3}}}),
             layer("Cropping1D", {{"name", "crop"}, {"cropping", {2, 1}}}),
             layer("UpSampling1D", {{"name", "up"}, {"size", 2}})};
  Tensor x = ramp({1, 5, 3}, 0.1, 1);
  std::string f = write_keras2(d + "/m.h5", seq(ls), {}, names_of(ls));
  Tensor c = run1(f, x, "crop");
  ASSERT_EQ(c.shape(), (Shape{1, 5, 3}));
  // padded[i] = x[i-1] for 1 <= i <= 5 else 0; crop keeps padded[2..6]
  for (int t = 0; t < 5; ++t)
    for (int ch = 0; ch < 3; ++ch) {
      int src = t + 2 - 1;
      double want = src <= 4 ? x.get(src * 3 + ch) : 0.0;
      EXPECT_FLOAT_EQ(static_cast<float>(c.get(t * 3 + ch)), static_cast<float>(want));
    }
  Tensor u = run1(f, x);
  ASSERT_EQ(u.shape(), (Shape{1, 10, 3}));
  for (int t = 0; t < 10; ++t)
    for (int ch = 0; ch < 3; ++ch) EXPECT_FLOAT_EQ(static_cast<float>(u.get(t * 3 + ch)), static_cast<float>(c.get(t / 2 * 3 + ch)));
}

// UpSampling2D(interpolation="bilinear") in tf.keras >= 2.4: tf.image.resize (resize_bilinear
// with half_pixel_centers=True) samples at (dst + 0.5)/scale - 0.5 with TF's clamping
// (lower = max(floor, 0), upper = min(ceil, n-1)); the asymmetric rule (dst/scale) of Keras 2 on
// Theano is checked against real Keras by the upsampling_bilinear_2x2 fixture. Expected values
// from TF's formula, written out here independently of the Resize op.
double tf_bilinear(const Tensor& x, int H, int W, int C, int oy, int ox, int c, double sy, double sx, bool half) {
  auto axis = [&](int o, double scale, int n, int& lo, int& hi, double& t) {
    double in = half ? (o + 0.5) / scale - 0.5 : o / scale;
    double f = std::floor(in);
    lo = std::max(static_cast<int>(f), 0);
    hi = half ? std::min(static_cast<int>(std::ceil(in)), n - 1) : std::min(static_cast<int>(f) + 1, n - 1);
    t = in - f;
  };
  int y0, y1, x0, x1;
  double ty, tx;
  axis(oy, sy, H, y0, y1, ty);
  axis(ox, sx, W, x0, x1, tx);
  auto v = [&](int y, int xx) { return x.get((static_cast<int64_t>(y) * W + xx) * C + c); };
  double top = v(y0, x0) + (v(y0, x1) - v(y0, x0)) * tx;
  double bot = v(y1, x0) + (v(y1, x1) - v(y1, x0)) * tx;
  return top + (bot - top) * ty;
}

TEST(KerasLayers, UpSampling2DBilinearTfKerasIsHalfPixel) {
  std::string d = tmpdir("upbil");
  const int H = 3, W = 4, C = 2, SY = 2, SX = 3;
  json ls = {layer("UpSampling2D", {{"name", "up"}, {"size", {SY, SX}}, {"interpolation", "bilinear"},
                                    {"data_format", "channels_last"}, {"batch_input_shape", {1, H, W, C}}})};
  Tensor x = ramp({1, H, W, C}, 0.37, 2.0);
  for (const auto& [version, half] : std::vector<std::pair<std::string, bool>>{{"2.4.0", true}, {"2.6.0", true}}) {
    SCOPED_TRACE(version);
    std::string f = write_keras2(d + "/m" + version + ".h5", seq(ls), {}, names_of(ls), version);
    Tensor u = run1(f, x);
    ASSERT_EQ(u.shape(), (Shape{1, H * SY, W * SX, C}));
    double worst = 0;
    for (int oy = 0; oy < H * SY; ++oy)
      for (int ox = 0; ox < W * SX; ++ox)
        for (int c = 0; c < C; ++c)
          worst = std::max(worst, std::fabs(u.get((static_cast<int64_t>(oy) * W * SX + ox) * C + c) -
                                            tf_bilinear(x, H, W, C, oy, ox, c, SY, SX, half)));
    EXPECT_LT(worst, 1e-5);
  }
}

TEST(KerasLayers, BatchNormOnTheHeightAxisOfNhwc) {
  std::string d = tmpdir("bnaxis");
  json ls = {layer("BatchNormalization", {{"name", "bn"}, {"axis", 1}, {"epsilon", 0.01}, {"batch_input_shape", {1, 3, 2, 2}}})};
  Tensor g = ramp({3}, 0.2, 0.5), b = ramp({3}, -0.1, 0.3), m = ramp({3}, 0.3, 0.1), v = ramp({3}, 0.5, 0);
  v.set(0, 0.7);
  Tensor x = ramp({1, 3, 2, 2}, 0.25, 1);
  Tensor y = run1(write_keras2(d + "/m.h5", seq(ls), {{"bn", {{"gamma", g}, {"beta", b}, {"moving_mean", m}, {"moving_variance", v}}}}, names_of(ls)), x);
  ASSERT_EQ(y.shape(), x.shape());
  for (int h = 0; h < 3; ++h)
    for (int k = 0; k < 4; ++k) {
      double want = (x.get(h * 4 + k) - m.get(h)) / std::sqrt(v.get(h) + 0.01) * g.get(h) + b.get(h);
      EXPECT_NEAR(y.get(h * 4 + k), want, 1e-5);
    }
}

TEST(KerasLayers, PReLUSharedAxesAfterConvAndSwishGelu) {
  std::string d = tmpdir("prelu");
  json ls = {layer("Conv2D", {{"name", "c"}, {"filters", 2}, {"kernel_size", {1, 1}}, {"use_bias", false}, {"activation", "linear"},
                              {"batch_input_shape", {1, 2, 3, 2}}}),
             layer("PReLU", {{"name", "p"}, {"shared_axes", {1, 2}}}),
             layer("Activation", {{"name", "sw"}, {"activation", "swish"}}),
             layer("Activation", {{"name", "ge"}, {"activation", "gelu"}})};
  Tensor k(DType::f32, {1, 1, 2, 2});  // identity 1x1 conv
  k.set(0, 1);
  k.set(3, 1);
  Tensor alpha(DType::f32, {1, 1, 2});
  alpha.set(0, 0.1);
  alpha.set(1, 0.5);
  Tensor x = ramp({1, 2, 3, 2}, 0.3, 1.5);
  for (int64_t i = 0; i < x.numel(); i += 2) x.set(i, x.get(i) - 1.0);
  std::string f = write_keras2(d + "/m.h5", seq(ls), {{"c", {{"kernel", k}}}, {"p", {{"alpha", alpha}}}}, names_of(ls));
  Session s(import_model({f}));
  auto out = s.run({{"in", x}}, {"p", "sw", "ge"});
  for (int64_t i = 0; i < x.numel(); ++i) {
    double xv = x.get(i), a = alpha.get(i % 2);
    double p = xv >= 0 ? xv : a * xv;
    double sw = p / (1 + std::exp(-p));
    double ge = 0.5 * sw * (1 + std::erf(sw / std::sqrt(2.0)));
    EXPECT_NEAR(out["p"].get(i), p, 1e-6);
    EXPECT_NEAR(out["sw"].get(i), sw, 1e-6);
    EXPECT_NEAR(out["ge"].get(i), ge, 1e-6);
  }
}

TEST(KerasLayers, DotNormalizedIsCosine) {
  std::string d = tmpdir("dot");
  auto ref = [](const std::string& l) { return json::array({json::array({l, 0, 0, json::object()})}); };
  json cfg = {{"class_name", "Model"},
              {"config",
               {{"name", "m"},
                {"layers",
                 {{{"class_name", "InputLayer"}, {"name", "a"}, {"config", {{"name", "a"}, {"batch_input_shape", {nullptr, 4}}}}, {"inbound_nodes", json::array()}},
                  {{"class_name", "InputLayer"}, {"name", "b"}, {"config", {{"name", "b"}, {"batch_input_shape", {nullptr, 4}}}}, {"inbound_nodes", json::array()}},
                  {{"class_name", "Dot"},
                   {"name", "dot"},
                   {"config", {{"name", "dot"}, {"axes", 1}, {"normalize", true}}},
                   {"inbound_nodes", json::array({json::array({json::array({"a", 0, 0, json::object()}), json::array({"b", 0, 0, json::object()})})})}}}},
                {"input_layers", {{"a", 0, 0}, {"b", 0, 0}}},
                {"output_layers", {{"dot", 0, 0}}}}}};
  (void)ref;
  std::string f = write_keras2(d + "/m.h5", cfg, {}, {"a", "b", "dot"});
  ImportOptions o;
  o.input_shapes["a"] = {2, 4};
  o.input_shapes["b"] = {2, 4};
  Session s(import_model({f}, o));
  Tensor a = ramp({2, 4}, 0.3, 1), b = ramp({2, 4}, -0.2, 0.7);
  Tensor y = s.run({{"a", a}, {"b", b}}).at("dot");
  ASSERT_EQ(y.shape(), (Shape{2, 1}));
  for (int n = 0; n < 2; ++n) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < 4; ++k) {
      ab += a.get(n * 4 + k) * b.get(n * 4 + k);
      aa += a.get(n * 4 + k) * a.get(n * 4 + k);
      bb += b.get(n * 4 + k) * b.get(n * 4 + k);
    }
    EXPECT_NEAR(y.get(n), ab / std::sqrt(aa * bb), 1e-5);
  }
}

TEST(KerasLayers, UnknownLayerMappedWithMapSourceOp) {
  std::string d = tmpdir("mapped");
  json ls = {layer("MyFancyRelu", {{"name", "fancy"}, {"batch_input_shape", {1, 4}}, {"alpha", 0.25}})};
  std::string f = write_keras2(d + "/m.h5", seq(ls), {}, names_of(ls));
  EXPECT_THROW(import_model({f}), Error);
  map_source_op("keras", "MyFancyRelu", "LeakyRelu");  // attributes copied by name: alpha
  Tensor x = ramp({1, 4}, 1, 0);
  x.set(0, -2);
  Tensor y = run1(f, x);
  EXPECT_FLOAT_EQ(static_cast<float>(y.get(0)), -0.5f);
  EXPECT_FLOAT_EQ(static_cast<float>(y.get(2)), 2.f);
}

TEST(KerasLayers, GroupedConv2D) {
  std::string d = tmpdir("groups");
  json ls = {layer("Conv2D", {{"name", "gc"}, {"filters", 4}, {"kernel_size", {1, 1}}, {"groups", 2}, {"use_bias", true},
                               {"activation", "linear"}, {"batch_input_shape", {1, 2, 1, 4}}})};
  Tensor k = ramp({1, 1, 2, 4}, 0.3, 0.2), bias = ramp({4}, 0.1, 0);
  Tensor x = ramp({1, 2, 1, 4}, -0.2, 1);
  Tensor y = run1(write_keras2(d + "/m.h5", seq(ls), {{"gc", {{"kernel", k}, {"bias", bias}}}}, names_of(ls)), x);
  ASSERT_EQ(y.shape(), (Shape{1, 2, 1, 4}));
  // Keras/TF groups: output o belongs to group o / (filters/groups) and sees input channels
  // g*2 .. g*2+1 through kernel[0, 0, i, o]
  for (int h = 0; h < 2; ++h)
    for (int o = 0; o < 4; ++o) {
      int g = o / 2;
      double want = bias.get(o);
      for (int i = 0; i < 2; ++i) want += x.get(h * 4 + g * 2 + i) * k.get(i * 4 + o);
      EXPECT_NEAR(y.get(h * 4 + o), want, 1e-5);
    }
}

// ---- the sandboxed HDF5 reader (src/import/keras/hdf5_file.h): libhdf5 runs in a child ----

class ScopedEnv {
 public:
  ScopedEnv(const char* k, const std::string& v) : k_(k) { ::setenv(k, v.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(k_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* k_;
};

// Imports `files`, expecting an anvil::Error; returns it.
Error import_error(const std::vector<std::string>& files) {
  try {
    Graph g = import_model(files);
    Session s(g);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error("");
}

void write_file(const std::string& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

// In this process, with plain libhdf5 (trusted fixtures only): fixed-length string arrays and
// float datasets, as the reference the child's snapshot is compared with.
std::vector<std::string> direct_strings(hid_t f, const std::string& obj, const std::string& name) {
  hid_t a = H5Aopen_by_name(f, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  std::vector<std::string> r;
  if (n > 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) <= 0) {
    size_t sz = H5Tget_size(t);
    std::string buf(sz * static_cast<size_t>(n), '\0');
    H5Aread(a, t, buf.data());
    for (hssize_t i = 0; i < n; ++i) r.emplace_back(buf.data() + i * static_cast<hssize_t>(sz), strnlen(buf.data() + i * static_cast<hssize_t>(sz), sz));
  }
  H5Sclose(sp);
  H5Tclose(t);
  H5Aclose(a);
  return r;
}

TEST(KerasH5Reader, SnapshotEqualsLibhdf5ReadInProcess) {
  for (const char* fx : {"resnet_small/model.h5", "mobilenet_small/model.h5", "vgg_small/weights.h5"}) {
    SCOPED_TRACE(fx);
    std::string file = fixture(fx);
    auto h5 = keras::H5File::open(file);
    hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    std::string root = h5.is_group("/model_weights") ? "/model_weights" : "/";
    auto layers = h5.attr_strings(root, "layer_names");
    EXPECT_EQ(layers, direct_strings(f, root, "layer_names"));
    int checked = 0;
    for (const auto& l : layers) {
      std::string g = root + "/" + l;
      auto names = h5.attr_strings(g, "weight_names");
      EXPECT_EQ(names, direct_strings(f, g, "weight_names"));
      for (const auto& n : names) {
        Tensor t = h5.read_f32(g + "/" + n);
        hid_t d = H5Dopen2(f, (g + "/" + n).c_str(), H5P_DEFAULT);
        std::vector<float> want(static_cast<size_t>(t.numel()));
        ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, want.data()), 0);
        H5Dclose(d);
        ASSERT_EQ(std::memcmp(want.data(), t.raw(), t.nbytes()), 0) << g << "/" << n;
        ++checked;
      }
    }
    EXPECT_GT(checked, 10);
    H5Fclose(f);
  }
  // the Keras version and the model config come through too
  auto h5 = keras::H5File::open(fixture("dense_stack/model.h5"));
  EXPECT_EQ(h5.attr_string("/", "keras_version"), "2.3.1");
  EXPECT_TRUE(contains(h5.attr_string("/", "model_config"), "\"Sequential\""));
}

// A dataset larger than the child's 16 MiB slab, stored as int32: read in several slabs and
// converted to float32 by libhdf5 in the child.
TEST(KerasH5Reader, LargeIntegerDatasetInSlabs) {
  std::string path = tmpdir("slabs") + "/big.h5";
  const hsize_t dims[2] = {1100, 4001};
  std::vector<int32_t> v(dims[0] * dims[1]);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i % 100003) - 50000;
  {
    H5Writer w(path);
    w.group("model_weights/big/big");
    w.attr_strings("/model_weights", "layer_names", {"big"});
    w.attr_strings("/model_weights/big", "weight_names", {"big/kernel:0"});
  }
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t sp = H5Screate_simple(2, dims, nullptr);
  hid_t d = H5Dcreate2(f, "/model_weights/big/big/kernel:0", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d);
  H5Sclose(sp);
  H5Fclose(f);
  auto h5 = keras::H5File::open(path);
  Tensor t = h5.read_f32("model_weights/big/big/kernel:0");
  ASSERT_EQ(t.shape(), (Shape{1100, 4001}));
  const float* p = t.data<float>();
  size_t bad = 0;
  for (size_t i = 0; i < v.size(); ++i) bad += p[i] != static_cast<float>(v[i]);
  EXPECT_EQ(bad, 0u);
}

// ANVIL_KERAS_H5_FAULT makes the child abort / hang / write garbage (a stand-in for libhdf5
// crashing or looping on a hostile file): the importer's process reports an Error.
TEST(KerasH5Reader, ChildCrashIsAnErrorNamingTheFile) {
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "abort");
  std::string f = fixture("dense_stack/model.h5");
  Error e = import_error({f});
  EXPECT_EQ(e.file(), f) << e.what();
  EXPECT_TRUE(contains(e.what(), "libhdf5 crashed")) << e.what();
  EXPECT_TRUE(contains(e.what(), "signal 6")) << e.what();
}

TEST(KerasH5Reader, ChildCrashAtAWeightNamesLayerAndWeight) {
  std::string f = fixture("dense_stack/model.h5");  // Theano-era names: "dense_2/kernel"
  {
    ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "abort@dense_2/kernel");
    Error e = import_error({f});
    EXPECT_EQ(e.file(), f) << e.what();
    EXPECT_EQ(e.node(), "dense_2") << e.what();
    EXPECT_EQ(e.field(), "dense_2/kernel") << e.what();
    EXPECT_TRUE(contains(e.what(), "while reading weight 'dense_2/kernel' of layer 'dense_2'")) << e.what();
  }
  // the same in a .keras zip (Keras 3 layout): the error names the zip's weights file and layer
  std::string d = tmpdir("k3fault");
  std::string wpath = d + "/model.weights.h5";
  {
    H5Writer w(wpath);
    auto ws = fixture_weights(f, "dense_1");
    for (size_t i = 0; i < ws.size(); ++i) w.dataset("layers/dense_1/vars/" + std::to_string(i), ws[i]);
  }
  std::string kpath = d + "/m.keras";
  write_zip(kpath, {{"config.json", R"({"class_name": "Sequential", "config": {"layers": []}})"},
                    {"model.weights.h5", read_file(wpath)}});
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "abort@vars/1");
  Error e = import_error({kpath});
  EXPECT_EQ(e.file(), kpath + ":model.weights.h5") << e.what();
  EXPECT_EQ(e.node(), "dense_1") << e.what();
  EXPECT_EQ(e.field(), "/layers/dense_1/vars/1") << e.what();
}

TEST(KerasH5Reader, HangingChildIsKilledAfterTheDeadline) {
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "hang@dense_3");
  ScopedEnv timeout("ANVIL_KERAS_H5_TIMEOUT_S", "0.5");
  std::string f = fixture("dense_stack/model.h5");
  auto t0 = std::chrono::steady_clock::now();
  Error e = import_error({f});
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 10.0);
  EXPECT_EQ(e.file(), f) << e.what();
  EXPECT_EQ(e.node(), "dense_3") << e.what();
  EXPECT_TRUE(contains(e.what(), "did not finish")) << e.what();
  EXPECT_TRUE(contains(e.what(), "within 0.5 s")) << e.what();
}

TEST(KerasH5Reader, GarbageFromTheChildIsAnError) {
  ScopedEnv fault("ANVIL_KERAS_H5_FAULT", "garbage@model_weights");
  std::string f = fixture("dense_stack/model.h5");
  Error e = import_error({f});
  EXPECT_EQ(e.file(), f) << e.what();
  EXPECT_TRUE(contains(e.what(), "malformed data")) << e.what();
}

// Every prefix of a real model file is an Error naming the file, never a crash or a hang.
TEST(KerasH5Reader, TruncatedFilesAreErrors) {
  std::string src = read_file(fixture("resnet_small/model.h5"));
  std::string d = tmpdir("trunc");
  for (double frac : {0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.9999}) {
    std::string p = d + "/t" + std::to_string(static_cast<int>(frac * 10000)) + ".h5";
    write_file(p, src.substr(0, static_cast<size_t>(static_cast<double>(src.size()) * frac)));
    Error e = import_error({p});
    EXPECT_EQ(e.file(), p) << e.what();
  }
  // and inside a .keras zip
  std::string kpath = d + "/t.keras";
  write_zip(kpath, {{"config.json", R"({"class_name": "Sequential", "config": {"layers": []}})"},
                    {"model.weights.h5", src.substr(0, src.size() / 2)}});
  Error e = import_error({kpath});
  EXPECT_EQ(e.file(), kpath + ":model.weights.h5") << e.what();
}

// A weight listed in weight_names that the file lacks: the error names the layer and weight.
TEST(KerasH5Reader, MissingWeightIsNamed) {
  std::string d = tmpdir("missingw");
  json ls = {layer("Dense", {{"name", "dense"}, {"units", 3}, {"use_bias", true}, {"batch_input_shape", {1, 4}}})};
  std::string p = d + "/m.h5";
  write_keras2(p, seq(ls), {{"dense", {{"kernel", ramp({4, 3}, 0.1, 0.2)}}}}, names_of(ls));
  {  // weight_names lists a bias the file does not hold
    hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(H5Adelete_by_name(f, "/model_weights/dense", "weight_names", H5P_DEFAULT), 0);
    const char names[2][16] = {"dense/kernel:0", "dense/bias:0"};
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, 16);
    hsize_t n = 2;
    hid_t sp = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate_by_name(f, "/model_weights/dense", "weight_names", ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, ty, names);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(ty);
    H5Fclose(f);
  }
  Error e = import_error({p});
  EXPECT_EQ(e.file(), p) << e.what();
  EXPECT_EQ(e.node(), "dense") << e.what();
  EXPECT_EQ(e.field(), "dense/bias:0") << e.what();
  EXPECT_TRUE(contains(e.what(), "missing")) << e.what();
}

// A compressed weight whose bytes are damaged: libhdf5 opens it but cannot read it; the error
// (sent by the child in the middle of the dataset's stream) names the layer and the weight.
TEST(KerasH5Reader, CorruptCompressedWeightIsNamed) {
  std::string d = tmpdir("corruptw");
  json ls = {layer("Dense", {{"name", "dense"}, {"units", 64}, {"use_bias", false}, {"batch_input_shape", {1, 64}}})};
  std::string p = d + "/m.h5";
  write_keras2(p, seq(ls), {}, names_of(ls));  // the layer group with an empty weight_names
  haddr_t addr = 0;
  hsize_t size = 0;
  {
    hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(H5Adelete_by_name(f, "/model_weights/dense", "weight_names", H5P_DEFAULT), 0);
    const char names[1][16] = {"dense/kernel:0"};
    hid_t ty = H5Tcopy(H5T_C_S1);
    H5Tset_size(ty, 16);
    hsize_t one = 1;
    hid_t sp1 = H5Screate_simple(1, &one, nullptr);
    hid_t a = H5Acreate_by_name(f, "/model_weights/dense", "weight_names", ty, sp1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, ty, names);
    H5Aclose(a);
    H5Sclose(sp1);
    H5Tclose(ty);
    hsize_t dims[2] = {64, 64};
    hid_t sp = H5Screate_simple(2, dims, nullptr);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, dims);
    H5Pset_deflate(dcpl, 6);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(f, "/model_weights/dense/dense/kernel:0", H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
    Tensor k = ramp({64, 64}, 0.01, 0.3);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, k.raw());
    H5Dflush(ds);
    hsize_t offset[2];
    unsigned mask = 0;
    ASSERT_GE(H5Dget_chunk_info(ds, sp, 0, offset, &mask, &addr, &size), 0);
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
  }
  ASSERT_GT(size, 16u);
  {  // overwrite the compressed chunk with bytes that do not inflate
    std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(addr));
    std::string junk(static_cast<size_t>(size), '\xA5');
    io.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  Error e = import_error({p});
  EXPECT_EQ(e.file(), p) << e.what();
  EXPECT_EQ(e.node(), "dense") << e.what();
  EXPECT_EQ(e.field(), "dense/kernel:0") << e.what();
  EXPECT_TRUE(contains(e.what(), "cannot read HDF5 dataset")) << e.what();
}

// fork() from a process with other threads running (imports on two threads at once, a third
// thread allocating): every import succeeds.
TEST(KerasH5Reader, ConcurrentImportsFromThreads) {
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    while (!stop) {
      std::vector<std::string> v(64, std::string(100, 'x'));
      (void)v;
    }
  });
  std::atomic<int> ok{0};
  auto work = [&](const char* fx) {
    for (int i = 0; i < 4; ++i) {
      try {
        Graph g = import_model({fixture(fx)});
        ok += g.nodes.empty() ? 0 : 1;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
  };
  std::thread a(work, "resnet_small/model.h5"), b(work, "mobilenet_small/model.h5");
  a.join();
  b.join();
  stop = true;
  busy.join();
  EXPECT_EQ(ok.load(), 8);
}

}  // namespace
