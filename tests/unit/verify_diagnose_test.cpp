// verify_model() on real-framework fixtures (tests/data/fixtures: Keras 2.3.1 and BVLC Caffe
// per-layer activations): clean models match; a classic import mistake seeded into the
// imported graph is found at the right first layer and named by the right cause.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/verify.h"

namespace {
using namespace anvil;

const std::string kFix = std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/";

struct Case {
  Graph g;
  std::map<std::string, Tensor> ref;     // activations + inputs
  std::map<std::string, Tensor> inputs;  // inputs/ only
};

Case load(const std::string& rel) {
  namespace fs = std::filesystem;
  const std::string dir = kFix + rel;
  Case c;
  c.ref = read_reference(dir + "/activations.npz");
  std::ifstream cf(dir + "/case.json");
  std::stringstream ss;
  ss << cf.rdbuf();
  const auto cj = nlohmann::json::parse(ss.str());
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it) {
    c.inputs[it.key()] = read_npy(dir + "/" + it.value().get<std::string>());
    c.ref[it.key()] = c.inputs[it.key()];
  }
  std::vector<std::string> files;
  for (const char* f : {"model.h5", "deploy.prototxt", "model.caffemodel", "frozen_model.pb"})
    if (fs::exists(dir + "/" + f)) files.push_back(dir + "/" + f);
  ImportOptions io;
  for (const auto& [k, t] : c.inputs) io.input_shapes[k] = t.shape();
  c.g = import_model(files, io);
  return c;
}

VerifyOptions opts() {
  VerifyOptions o;
  o.rtol = 1e-4;
  o.atol = 1e-5;
  return o;
}

// The constant input `slot` of the first node with op `op` (canonical weights).
Tensor& weight_of(Graph& g, const std::string& op, size_t slot = 1) {
  for (auto& n : g.nodes)
    if (n.op == op && n.inputs.size() > slot &&
        g.values[static_cast<size_t>(n.inputs[slot])].is_constant())
      return g.values[static_cast<size_t>(n.inputs[slot])].constant;
  throw Error("no " + op + " node with constant input");
}
Node& node_of(Graph& g, const std::string& op) {
  for (auto& n : g.nodes)
    if (n.op == op) return n;
  throw Error("no " + op + " node");
}

// Independent helpers (plain index math) to seed mistakes.
Tensor flip_hw(const Tensor& w) {  // (O, I, H, W) reversed in H and W
  Tensor r(w.dtype(), w.shape());
  const int64_t O = w.dim(0), I = w.dim(1), H = w.dim(2), W = w.dim(3);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t x = 0; x < W; ++x)
          r.set(((o * I + i) * H + h) * W + x,
                w.get(((o * I + i) * H + (H - 1 - h)) * W + (W - 1 - x)));
  return r;
}

Tensor reverse_last_axis(const Tensor& t) {
  Tensor r(t.dtype(), t.shape());
  const int64_t C = t.dim(-1);
  for (int64_t i = 0; i < t.numel(); ++i) r.set(i, t.get(i - i % C + (C - 1 - i % C)));
  return r;
}

Tensor reverse_axis1(const Tensor& t) {  // NCHW channels
  Tensor r(t.dtype(), t.shape());
  const int64_t C = t.dim(1), inner = t.numel() / t.dim(0) / C;
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t c = (i / inner) % C;
    r.set(i, t.get(i + (C - 1 - 2 * c) * inner));
  }
  return r;
}

Tensor times(const Tensor& t, double k) {
  Tensor r(t.dtype(), t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.set(i, t.get(i) * k);
  return r;
}

bool has_cause(const VerifyReport& r, const std::string& cause, const std::string& layer) {
  for (const auto& d : r.diagnosis)
    if (d.cause == cause && d.layer == layer) return true;
  return false;
}

std::string diag_text(const VerifyReport& r) {
  std::string s;
  for (const auto& d : r.diagnosis) s += d.cause + " @ " + d.layer + ": " + d.message + "\n";
  return s;
}

// --- clean fixtures ----------------------------------------------------------------------------

TEST(VerifyModel, CleanFixturesMatch) {
  for (const char* rel :
       {"keras/flatten_conv_dense", "keras/multi_io", "keras/resnet_small", "caffe/vgg_32x32",
        "caffe/resnet_bn_scale_eltwise", "keras-dl4j/activations/ELU_0"}) {
    Case c = load(rel);
    VerifyReport r = verify_model(c.g, c.ref, opts());
    EXPECT_EQ(r.status, "match") << rel << "\n" << report_json(r);
    EXPECT_EQ(r.input_check, "ok") << rel;
    EXPECT_TRUE(r.first_divergent.empty()) << rel;
    EXPECT_TRUE(r.diagnosis.empty()) << rel;
    EXPECT_TRUE(r.unmatched_reference.empty()) << rel;
    int checked = 0;
    for (const auto& l : r.layers) checked += l.status == "ok";
    EXPECT_EQ(static_cast<size_t>(checked), c.ref.size())
        << rel;  // every reference tensor compared
  }
}

TEST(VerifyModel, EveryFixtureWithActivationsMatches) {
  // Every real-framework case with per-layer activations of the landed importers (Keras,
  // Caffe, TensorFlow; TFLite's fixtures have final outputs only), at its own tolerance.
  namespace fs = std::filesystem;
  int cases = 0;
  for (const char* group :
       {"keras", "caffe", "keras-dl4j/activations", "keras-dl4j/conv1d", "tensorflow"}) {
    std::vector<std::string> dirs;
    for (const auto& e : fs::directory_iterator(kFix + group))
      if (e.is_directory() && fs::exists(e.path() / "activations.npz"))
        dirs.push_back(e.path().string());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      const std::string rel = d.substr(kFix.size());
      std::ifstream f(d + "/case.json");
      std::stringstream ss;
      ss << f.rdbuf();
      const auto cj = nlohmann::json::parse(ss.str());
      VerifyOptions o;
      o.rtol = cj.value("rtol", 1e-5);
      o.atol = cj.value("atol", 1e-5);
      try {
        Case c = load(rel);
        VerifyReport r = verify_model(c.g, c.ref, o);
        EXPECT_EQ(r.status, "match") << rel << ": first divergent " << r.first_divergent;
        EXPECT_TRUE(r.unmatched_reference.empty()) << rel;
      } catch (const Error& e) {
        ADD_FAILURE() << rel << ": " << e.what();
      }
      ++cases;
    }
  }
  EXPECT_GE(cases, 310);
}

TEST(VerifyModel, LayersInGraphOrderWithInputs) {
  Case c = load("caffe/resnet_bn_scale_eltwise");
  VerifyReport r = verify_model(c.g, c.ref, opts());
  ASSERT_GE(r.layers.size(), 4u);
  EXPECT_EQ(r.layers[0].name, "data");
  EXPECT_EQ(r.layers[0].op, "Input");
  EXPECT_EQ(r.layers[1].name, "conv1");
  EXPECT_EQ(r.layers[1].inputs, std::vector<std::string>{"data"});
  EXPECT_EQ(r.layers[2].name, "bn_conv1");
  // the residual add reads both branches
  for (const auto& l : r.layers)
    if (l.name == "res2") EXPECT_EQ(l.inputs.size(), 2u);
}

TEST(VerifyModel, AliasesSanitizedAndColonZero) {
  Case c = load("caffe/vgg_32x32");
  std::map<std::string, Tensor> ref;
  for (const auto& [k, t] : c.ref) ref[k == "pool1" ? "pool1:0" : k] = t;
  VerifyReport r = verify_model(c.g, ref, opts());
  EXPECT_EQ(r.status, "match");
  bool found = false;
  for (const auto& l : r.layers)
    if (l.name == "pool1") found = l.reference_key == "pool1:0" && l.status == "ok";
  EXPECT_TRUE(found);
}

TEST(VerifyModel, FolderReferenceWithSanitizedNames) {
  // An ONNX model whose value names hold '/': a folder of .npy named by sanitize_tensor_name
  // (as anvil run/dump write them) matches, and a single .npy file is a reference too.
  namespace fs = std::filesystem;
  const std::string demo = std::string(ANVIL_SOURCE_DIR) + "/models/demo/";
  Tensor x = read_npy(demo + "inputs/image.npy");
  ImportOptions io;
  io.input_shapes["image"] = x.shape();
  Graph g = import_model({demo + "digits_cnn.onnx"}, io);
  auto ref = read_reference(demo + "expected");
  ASSERT_TRUE(ref.count("_pool_MaxPool_output_0"));
  VerifyOptions o = opts();
  o.inputs["image"] = x;
  VerifyReport r = verify_model(g, ref, o);
  EXPECT_EQ(r.status, "match");
  EXPECT_EQ(r.input_check, "absent");
  int ok = 0;
  for (const auto& l : r.layers) {
    if (l.name == "/pool/MaxPool_output_0") EXPECT_EQ(l.reference_key, "_pool_MaxPool_output_0");
    ok += l.status == "ok";
  }
  EXPECT_EQ(ok, 2);
  auto one = read_reference(demo + "expected/probs.npy");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(verify_model(g, one, o).status, "match");
  EXPECT_THROW(read_reference(demo + "no_such_dir"), Error);
}

TEST(VerifyModel, MissingInputIsAnError) {
  Case c = load("caffe/vgg_32x32");
  c.ref.erase("data");
  EXPECT_THROW(verify_model(c.g, c.ref, opts()), Error);
}

// --- seeded mistakes ---------------------------------------------------------------------------

TEST(VerifyDiagnose, WeightsFlipped) {
  Case c = load("keras/conv2d_valid_s1_odd9");
  Tensor& w = weight_of(c.g, "Conv");
  w = flip_hw(w);
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.status, "mismatch");
  EXPECT_EQ(r.first_divergent, "conv2d_1");
  EXPECT_TRUE(has_cause(r, "weights_flipped", "conv2d_1")) << diag_text(r);
}

TEST(VerifyDiagnose, WeightsFlippedDeepInANet) {
  Case c = load("caffe/vgg_32x32");
  for (auto& n : c.g.nodes)
    if (n.name == "conv2_2") {
      Tensor& w = c.g.values[static_cast<size_t>(n.inputs[1])].constant;
      w = flip_hw(w);
    }
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "conv2_2");
  EXPECT_TRUE(has_cause(r, "weights_flipped", "conv2_2")) << diag_text(r);
  for (const auto& l : r.layers) {
    if (l.name == "relu2_1") EXPECT_EQ(l.status, "ok");
    if (l.name == "conv2_2") EXPECT_EQ(l.status, "mismatch");
  }
}

TEST(VerifyDiagnose, DenseWeightsTransposed) {
  Case c = load("keras/dense_stack");
  // dense_2: an (8, 4) kernel whose data was read in the other order ((4, 8) transposed)
  for (auto& n : c.g.nodes)
    if (n.name == "dense_2") {
      Tensor& w = c.g.values[static_cast<size_t>(n.inputs[1])].constant;
      const int64_t K = w.dim(0), N = w.dim(1);
      Tensor bad(w.dtype(), w.shape());
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j)
          bad.set(j * K + k, w.get(k * N + j));  // (N, K) data in (K, N)
      w = bad;
    }
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "dense_2");
  EXPECT_TRUE(has_cause(r, "weights_transposed", "dense_2")) << diag_text(r);
}

TEST(VerifyDiagnose, ConvKernelHeightWidthSwapped) {
  Case c = load("keras/conv2d_same_s2_rect_k5x3_in10x7");
  Tensor& w = weight_of(c.g, "Conv");
  const int64_t O = w.dim(0), I = w.dim(1), H = w.dim(2), W = w.dim(3);
  Tensor bad(w.dtype(), w.shape());  // (W, H) data read as (H, W)
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t x = 0; x < W; ++x)
          bad.set(((o * I + i) * W + x) * H + h, w.get(((o * I + i) * H + h) * W + x));
  w = bad;
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "conv2d_1");
  EXPECT_TRUE(has_cause(r, "weights_transposed", "conv2d_1")) << diag_text(r);
}

TEST(VerifyDiagnose, PaddingAsymmetric) {
  Case c = load("caffe/conv_padhw_stride2");
  node_of(c.g, "Conv")
      .attrs.set("pads", std::vector<int64_t>{0, 0, 2, 4});  // same totals, all at the end
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "out");
  EXPECT_TRUE(has_cause(r, "padding", "out")) << diag_text(r);
}

TEST(VerifyDiagnose, PaddingValidInsteadOfSame) {
  Case c = load("keras/conv2d_same_s1_odd9");
  node_of(c.g, "Conv").attrs.set("pads", std::vector<int64_t>{0, 0, 0, 0});
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "conv2d_1");
  for (const auto& l : r.layers)
    if (l.name == "conv2d_1") EXPECT_EQ(l.status, "shape");
  EXPECT_TRUE(has_cause(r, "padding", "conv2d_1")) << diag_text(r);
}

TEST(VerifyDiagnose, PoolingRounding) {
  Case c = load("caffe/pool_max_ceil_10");
  node_of(c.g, "MaxPool").attrs.set("ceil_mode", int64_t{0});
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "out");
  EXPECT_TRUE(has_cause(r, "pooling_rounding", "out")) << diag_text(r);
}

TEST(VerifyDiagnose, FlattenOrderDenseRowsKeras) {
  Case c = load("keras/flatten_conv_dense");
  // dense_1's kernel rows permuted as if the flatten were C,H,W (an importer that forgot
  // Keras flattens H,W,C): row (c, h, w) of the bad kernel holds row (h, w, c) of the good one.
  Tensor& w = weight_of(c.g, "Gemm");
  const int64_t H = 5, W = 5, C = 4, N = w.dim(1);
  ASSERT_EQ(w.dim(0), H * W * C);
  Tensor bad(w.dtype(), w.shape());
  for (int64_t ch = 0; ch < C; ++ch)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t j = 0; j < N; ++j)
          bad.set(((ch * H + h) * W + x) * N + j, w.get(((h * W + x) * C + ch) * N + j));
  w = bad;
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "dense_1");
  EXPECT_TRUE(has_cause(r, "flatten_order", "dense_1")) << diag_text(r);
}

TEST(VerifyDiagnose, FlattenOrderOfTheFlattenLayer) {
  Case c = load("keras/flatten_conv_dense");
  // the importer forgot the NCHW -> NHWC transpose before Flatten
  Node& f = node_of(c.g, "Flatten");
  Node& t = node_of(c.g, "Transpose");  // the first is conv2d_1's input transpose
  (void)t;
  for (auto& n : c.g.nodes)
    if (n.op == "Transpose" && n.name.rfind("flatten_1", 0) == 0) f.inputs[0] = n.inputs[0];
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "flatten_1");
  EXPECT_TRUE(has_cause(r, "flatten_order", "flatten_1")) << diag_text(r);
}

TEST(VerifyDiagnose, FlattenOrderCaffeInnerProduct) {
  Case c = load("caffe/ip_after_conv_chw");
  // InnerProduct weights (6, 100) with columns in H,W,C order instead of Caffe's C,H,W
  Tensor& w = weight_of(c.g, "Gemm");
  const int64_t C = 4, H = 5, W = 5, M = w.dim(0);
  Tensor bad(w.dtype(), w.shape());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t x = 0; x < W; ++x)
          bad.set(m * 100 + (h * W + x) * C + ch, w.get(m * 100 + (ch * H + h) * W + x));
  w = bad;
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "out");
  EXPECT_TRUE(has_cause(r, "flatten_order", "out")) << diag_text(r);
}

TEST(VerifyDiagnose, BatchNormEpsilon) {
  Case c = load("keras/bn_eps0.01");
  Node& bn = node_of(c.g, "BatchNormalization");
  ASSERT_NEAR(bn.attrs.get_float("epsilon"), 0.01, 1e-9);
  bn.attrs.set("epsilon", 1e-3);  // Keras's default instead of the layer's 0.01
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "batch_normalization_1");
  ASSERT_TRUE(has_cause(r, "batchnorm_epsilon", "batch_normalization_1")) << diag_text(r);
  EXPECT_NE(r.diagnosis[0].message.find("epsilon 0.01"), std::string::npos)
      << r.diagnosis[0].message;
}

TEST(VerifyDiagnose, InputChannelOrderGiven) {
  Case c = load("caffe/vgg_32x32");
  VerifyOptions o = opts();
  o.inputs["data"] = reverse_axis1(c.inputs["data"]);
  VerifyReport r = verify_model(c.g, c.ref, o);
  EXPECT_EQ(r.status, "mismatch");
  EXPECT_EQ(r.input_check, "differs");
  EXPECT_NE(r.input_message.find("first values"), std::string::npos);
  EXPECT_EQ(r.first_divergent, "data");  // the input itself is the first tensor that differs
  EXPECT_TRUE(has_cause(r, "input_channel_order", "data")) << diag_text(r);
}

TEST(VerifyDiagnose, InputChannelOrderAbsentFromReference) {
  Case c = load("keras/conv2d_valid_s1_odd9");  // NHWC, 3 channels
  VerifyOptions o = opts();
  o.inputs["conv2d_1_input"] = reverse_last_axis(c.inputs["conv2d_1_input"]);
  c.ref.erase("conv2d_1_input");
  VerifyReport r = verify_model(c.g, c.ref, o);
  EXPECT_EQ(r.input_check, "absent");
  EXPECT_EQ(r.first_divergent, "conv2d_1");
  EXPECT_TRUE(has_cause(r, "input_channel_order", "conv2d_1_input")) << diag_text(r);
}

TEST(VerifyDiagnose, InputScaled255) {
  Case c = load("caffe/vgg_32x32");
  VerifyOptions o = opts();
  o.inputs["data"] = times(c.inputs["data"], 255.0);
  VerifyReport r = verify_model(c.g, c.ref, o);
  EXPECT_EQ(r.input_check, "differs");
  ASSERT_TRUE(has_cause(r, "input_scale", "data")) << diag_text(r);
  EXPECT_NE(r.diagnosis[0].message.find("/ 255"), std::string::npos) << r.diagnosis[0].message;
  // the same without the input in the reference: found by re-running the first layer
  c.ref.erase("data");
  r = verify_model(c.g, c.ref, o);
  EXPECT_EQ(r.input_check, "absent");
  EXPECT_TRUE(has_cause(r, "input_scale", "data")) << diag_text(r);
}

TEST(VerifyDiagnose, InputMean) {
  Case c = load("keras/conv2d_valid_s1_odd9");
  VerifyOptions o = opts();
  Tensor x = c.inputs["conv2d_1_input"].clone();
  const double mean[3] = {0.25, -0.5, 0.125};
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, x.get(i) - mean[i % 3]);
  o.inputs["conv2d_1_input"] = x;
  VerifyReport r = verify_model(c.g, c.ref, o);
  EXPECT_EQ(r.input_check, "differs");
  EXPECT_TRUE(has_cause(r, "input_mean", "conv2d_1_input")) << diag_text(r);
}

TEST(VerifyDiagnose, InputLayout) {
  Case c = load("keras/conv2d_valid_s1_odd9");  // (N, 9, 9, 3)
  const Tensor& x = c.inputs["conv2d_1_input"];
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  Tensor bad(x.dtype(), x.shape());  // the NCHW tensor's data handed over as NHWC
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          bad.set(((n * C + ch) * H + h) * W + w, x.get(((n * H + h) * W + w) * C + ch));
  VerifyOptions o = opts();
  o.inputs["conv2d_1_input"] = bad;
  VerifyReport r = verify_model(c.g, c.ref, o);
  EXPECT_EQ(r.input_check, "differs");
  EXPECT_TRUE(has_cause(r, "input_layout", "conv2d_1_input")) << diag_text(r);
}

TEST(VerifyDiagnose, UnknownWhenNothingExplains) {
  Case c = load("caffe/vgg_32x32");
  for (auto& n : c.g.nodes)
    if (n.name == "conv3_1") {
      Tensor& w = c.g.values[static_cast<size_t>(n.inputs[1])].constant;
      w = w.clone();
      for (int64_t i = 0; i < w.numel(); i += 7) w.set(i, w.get(i) * -3.0);
    }
  VerifyReport r = verify_model(c.g, c.ref, opts());
  EXPECT_EQ(r.first_divergent, "conv3_1");
  ASSERT_EQ(r.diagnosis.size(), 1u) << diag_text(r);
  EXPECT_EQ(r.diagnosis[0].cause, "unknown");
}

TEST(VerifyDiagnose, Fp16OverflowNamesTheLayerAndKeepFp32Fixes) {
  // Scale the conv kernel and bias by 1e5 and fold the inverse into the batch norm's
  // statistics: the same function in fp32 (so the Keras reference still holds), but the conv
  // output now exceeds fp16's range (65504).
  Case c = load("keras/bn_after_conv_default_eps");
  const double k = 1e5;
  Node conv = node_of(c.g, "Conv");
  for (size_t s : {1u, 2u}) {
    Tensor& t = c.g.values[static_cast<size_t>(conv.inputs[s])].constant;
    t = times(t, k);
  }
  Node bn = node_of(c.g, "BatchNormalization");
  const double eps = bn.attrs.get_float("epsilon");
  Tensor& mean = c.g.values[static_cast<size_t>(bn.inputs[3])].constant;
  Tensor& var = c.g.values[static_cast<size_t>(bn.inputs[4])].constant;
  mean = times(mean, k);
  Tensor v2(var.dtype(), var.shape());
  for (int64_t i = 0; i < var.numel(); ++i) v2.set(i, (var.get(i) + eps) * k * k - eps);
  var = v2;
  c.ref.erase("conv2d_1");  // its values are 1e5 times Keras's now
  VerifyOptions o = opts();
  VerifyReport r32 = verify_model(c.g, c.ref, o);
  ASSERT_EQ(r32.status, "match") << report_json(r32);

  o.precision = "fp16";
  o.rtol = 2e-2;
  o.atol = 2e-2;
  VerifyReport r = verify_model(c.g, c.ref, o);
  EXPECT_EQ(r.status, "mismatch");
  EXPECT_EQ(r.first_divergent, "batch_normalization_1");
  EXPECT_TRUE(has_cause(r, "precision", "batch_normalization_1")) << diag_text(r);
  EXPECT_NE(r.diagnosis.at(0).message.find("--keep-fp32 conv2d_1"), std::string::npos)
      << diag_text(r);
  EXPECT_EQ(r.suggest_keep_fp32, std::vector<std::string>{"conv2d_1"});
  bool overflow = false;
  for (const auto& l : r.layers)
    if (l.name == "conv2d_1") overflow = l.precision_checked && l.precision_overflow;
  EXPECT_TRUE(overflow);

  o.keep_fp32 = {"conv2d_1", "batch_normalization_1"};
  VerifyReport fixed = verify_model(c.g, c.ref, o);
  EXPECT_EQ(fixed.status, "match") << report_json(fixed);
}

}  // namespace
