// Keras file formats beyond the fixtures: Keras 3 `.keras` zips (config.json +
// model.weights.h5 with layers/<name>/vars/<i>), Keras 3 functional configs
// (__keras_tensor__ / keras_history), and Keras 2 functional models with a nested model and
// a shared layer; and hand-built Keras 2 models for layers the fixtures do not cover (the
// sandboxed HDF5 reader: test_keras_h5_reader.cpp). The files are written here with the HDF5
// C API and libzip; expected values come from the Keras 2 fixtures (same weights) or from
// hand-written loops.
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
#include "keras_formats_test_util.h"

using namespace anvil;
using namespace anvil::keras_formats_test;

namespace {

// dense_stack (Dense(8, tanh) -> Dense(4, no bias) -> Dense(3, sigmoid)) rewritten as Keras 3
TEST(KerasFormats, Keras3SequentialDotKeras) {
  std::string d = tmpdir("k3seq");
  std::string src = fixture("dense_stack/model.h5");
  json cfg = {
      {"module", "keras"},
      {"class_name", "Sequential"},
      {"config",
       {{"name", "sequential"},
        {"layers",
         {{{"module", "keras.layers"},
           {"class_name", "InputLayer"},
           {"config",
            {{"batch_shape", {nullptr, 10}}, {"dtype", "float32"}, {"name", "input_layer"}}}},
          k3_dense("dense_1", 8, "tanh", true),
          k3_dense("dense_2", 4, "linear", false),
          k3_dense("dense_3", 3, "sigmoid", true)}}}}};
  std::string wpath = d + "/model.weights.h5";
  {
    H5Writer w(wpath);
    for (const char* l : {"dense_1", "dense_2", "dense_3"}) {
      auto ws = fixture_weights(src, l);
      for (size_t i = 0; i < ws.size(); ++i)
        w.dataset(std::string("layers/") + l + "/vars/" + std::to_string(i), ws[i]);
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
  EXPECT_LT(max_abs_diff(out["dense_3"], read_npy(fixture("dense_stack/outputs/dense_3.npy"))),
            1e-5);
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
  json in_x = {{"class_name", "InputLayer"},
               {"name", "x"},
               {"config", {{"batch_shape", {nullptr, 5, 4}}, {"name", "x"}}},
               {"inbound_nodes", json::array()}};
  json in_y = {{"class_name", "InputLayer"},
               {"name", "y"},
               {"config", {{"batch_shape", {nullptr, 5, 4}}, {"name", "y"}}},
               {"inbound_nodes", json::array()}};
  json dy = k3_dense("dy", 4, "linear", true,
                     json::array({{{"args", {k3_tensor("y")}}, {"kwargs", json::object()}}}));
  json add = {{"class_name", "Add"},
              {"name", "add3"},
              {"config", {{"name", "add3"}}},
              {"inbound_nodes",
               json::array({{{"args", json::array({json::array(
                                          {k3_tensor("x"), k3_tensor("y"), k3_tensor("dy")})})},
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
  EXPECT_LT(
      max_abs_diff(out.at("add3"), read_npy(fixture("merge_add3_two_inputs/outputs/add3.npy"))),
      1e-5);
}

// Keras 2 functional model: a shared Dense applied to two inputs, its sum fed to a nested
// Sequential; weights in the Keras 2 layout (nested model's weights under its own group).
TEST(KerasFormats, NestedModelAndSharedLayer) {
  std::string d = tmpdir("nested");
  auto ref = [](const std::string& l, int node) {
    return json::array({l, node, 0, json::object()});
  };
  json inner = {{"class_name", "Sequential"},
                {"config",
                 {{"name", "inner"},
                  {"layers",
                   {{{"class_name", "Dense"},
                     {"config",
                      {{"name", "in_d"},
                       {"units", 2},
                       {"activation", "relu"},
                       {"use_bias", true},
                       {"batch_input_shape", {nullptr, 3}}}}}}}}}};
  inner["name"] = "inner";
  inner["inbound_nodes"] = json::array({json::array({ref("sum", 0)})});
  json cfg = {
      {"class_name", "Model"},
      {"config",
       {{"name", "outer"},
        {"layers",
         {{{"class_name", "InputLayer"},
           {"name", "a"},
           {"config", {{"name", "a"}, {"batch_input_shape", {nullptr, 4}}}},
           {"inbound_nodes", json::array()}},
          {{"class_name", "InputLayer"},
           {"name", "b"},
           {"config", {{"name", "b"}, {"batch_input_shape", {nullptr, 4}}}},
           {"inbound_nodes", json::array()}},
          {{"class_name", "Dense"},
           {"name", "sd"},
           {"config", {{"name", "sd"}, {"units", 3}, {"activation", "linear"}, {"use_bias", true}}},
           {"inbound_nodes",
            json::array({json::array({ref("a", 0)}), json::array({ref("b", 0)})})}},
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

TEST(KerasLayers, RepeatVector) {
  std::string d = tmpdir("repeat");
  json ls = {layer("RepeatVector", {{"name", "rep"}, {"n", 3}, {"batch_input_shape", {1, 4}}})};
  Tensor x = ramp({1, 4}, 0.5, 1);
  Tensor y = run1(write_keras2(d + "/m.h5", seq(ls), {}, names_of(ls)), x);
  ASSERT_EQ(y.shape(), (Shape{1, 3, 4}));
  for (int r = 0; r < 3; ++r)
    for (int f = 0; f < 4; ++f)
      EXPECT_FLOAT_EQ(static_cast<float>(y.get(r * 4 + f)), static_cast<float>(x.get(f)));
}

TEST(KerasLayers, ZeroPadding1DThenCropping1DAndUpSampling1D) {
  std::string d = tmpdir("pad1d");
  json ls = {layer("ZeroPadding1D",
                   {{"name", "pad"}, {"padding", {1, 2}}, {"batch_input_shape", {1, 5, 3}}}),
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
    for (int ch = 0; ch < 3; ++ch)
      EXPECT_FLOAT_EQ(static_cast<float>(u.get(t * 3 + ch)),
                      static_cast<float>(c.get(t / 2 * 3 + ch)));
}

// UpSampling2D(interpolation="bilinear") in tf.keras >= 2.4: tf.image.resize (resize_bilinear
// with half_pixel_centers=True) samples at (dst + 0.5)/scale - 0.5 with TF's clamping
// (lower = max(floor, 0), upper = min(ceil, n-1)); the asymmetric rule (dst/scale) of Keras 2 on
// Theano is checked against real Keras by the upsampling_bilinear_2x2 fixture. Expected values
// from TF's formula, written out here independently of the Resize op.
double tf_bilinear(const Tensor& x, int H, int W, int C, int oy, int ox, int c, double sy,
                   double sx, bool half) {
  auto axis = [&](int o, double scale, int n, int& lo, int& hi, double& t) {
    double in = half ? (o + 0.5) / scale - 0.5 : o / scale;
    double f = std::floor(in);
    lo = std::max(static_cast<int>(f), 0);
    hi = half ? std::min(static_cast<int>(std::ceil(in)), n - 1)
              : std::min(static_cast<int>(f) + 1, n - 1);
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
  json ls = {layer("UpSampling2D", {{"name", "up"},
                                    {"size", {SY, SX}},
                                    {"interpolation", "bilinear"},
                                    {"data_format", "channels_last"},
                                    {"batch_input_shape", {1, H, W, C}}})};
  Tensor x = ramp({1, H, W, C}, 0.37, 2.0);
  for (const auto& [version, half] :
       std::vector<std::pair<std::string, bool>>{{"2.4.0", true}, {"2.6.0", true}}) {
    SCOPED_TRACE(version);
    std::string f = write_keras2(d + "/m" + version + ".h5", seq(ls), {}, names_of(ls), version);
    Tensor u = run1(f, x);
    ASSERT_EQ(u.shape(), (Shape{1, H * SY, W * SX, C}));
    double worst = 0;
    for (int oy = 0; oy < H * SY; ++oy)
      for (int ox = 0; ox < W * SX; ++ox)
        for (int c = 0; c < C; ++c)
          worst =
              std::max(worst, std::fabs(u.get((static_cast<int64_t>(oy) * W * SX + ox) * C + c) -
                                        tf_bilinear(x, H, W, C, oy, ox, c, SY, SX, half)));
    EXPECT_LT(worst, 1e-5);
  }
}

TEST(KerasLayers, BatchNormOnTheHeightAxisOfNhwc) {
  std::string d = tmpdir("bnaxis");
  json ls = {
      layer("BatchNormalization",
            {{"name", "bn"}, {"axis", 1}, {"epsilon", 0.01}, {"batch_input_shape", {1, 3, 2, 2}}})};
  Tensor g = ramp({3}, 0.2, 0.5), b = ramp({3}, -0.1, 0.3), m = ramp({3}, 0.3, 0.1),
         v = ramp({3}, 0.5, 0);
  v.set(0, 0.7);
  Tensor x = ramp({1, 3, 2, 2}, 0.25, 1);
  Tensor y =
      run1(write_keras2(
               d + "/m.h5", seq(ls),
               {{"bn", {{"gamma", g}, {"beta", b}, {"moving_mean", m}, {"moving_variance", v}}}},
               names_of(ls)),
           x);
  ASSERT_EQ(y.shape(), x.shape());
  for (int h = 0; h < 3; ++h)
    for (int k = 0; k < 4; ++k) {
      double want =
          (x.get(h * 4 + k) - m.get(h)) / std::sqrt(v.get(h) + 0.01) * g.get(h) + b.get(h);
      EXPECT_NEAR(y.get(h * 4 + k), want, 1e-5);
    }
}

TEST(KerasLayers, PReLUSharedAxesAfterConvAndSwishGelu) {
  std::string d = tmpdir("prelu");
  json ls = {layer("Conv2D", {{"name", "c"},
                              {"filters", 2},
                              {"kernel_size", {1, 1}},
                              {"use_bias", false},
                              {"activation", "linear"},
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
  std::string f = write_keras2(d + "/m.h5", seq(ls),
                               {{"c", {{"kernel", k}}}, {"p", {{"alpha", alpha}}}}, names_of(ls));
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
  auto ref = [](const std::string& l) {
    return json::array({json::array({l, 0, 0, json::object()})});
  };
  json cfg = {{"class_name", "Model"},
              {"config",
               {{"name", "m"},
                {"layers",
                 {{{"class_name", "InputLayer"},
                   {"name", "a"},
                   {"config", {{"name", "a"}, {"batch_input_shape", {nullptr, 4}}}},
                   {"inbound_nodes", json::array()}},
                  {{"class_name", "InputLayer"},
                   {"name", "b"},
                   {"config", {{"name", "b"}, {"batch_input_shape", {nullptr, 4}}}},
                   {"inbound_nodes", json::array()}},
                  {{"class_name", "Dot"},
                   {"name", "dot"},
                   {"config", {{"name", "dot"}, {"axes", 1}, {"normalize", true}}},
                   {"inbound_nodes",
                    json::array({json::array({json::array({"a", 0, 0, json::object()}),
                                              json::array({"b", 0, 0, json::object()})})})}}}},
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
  json ls = {
      layer("MyFancyRelu", {{"name", "fancy"}, {"batch_input_shape", {1, 4}}, {"alpha", 0.25}})};
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
  json ls = {layer("Conv2D", {{"name", "gc"},
                              {"filters", 4},
                              {"kernel_size", {1, 1}},
                              {"groups", 2},
                              {"use_bias", true},
                              {"activation", "linear"},
                              {"batch_input_shape", {1, 2, 1, 4}}})};
  Tensor k = ramp({1, 1, 2, 4}, 0.3, 0.2), bias = ramp({4}, 0.1, 0);
  Tensor x = ramp({1, 2, 1, 4}, -0.2, 1);
  Tensor y = run1(
      write_keras2(d + "/m.h5", seq(ls), {{"gc", {{"kernel", k}, {"bias", bias}}}}, names_of(ls)),
      x);
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

}  // namespace
