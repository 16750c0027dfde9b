// Caffe importer unit tests: Caffe's own rules (ceil pooling sizes, padded-average divisor,
// BatchNorm scale factor, CHW flatten into InnerProduct), the legacy V1 format, in-place
// layers, phase rules, and malformed input (syntax errors, truncated caffemodel, blob shape
// mismatch, unsupported layers). Expected values are computed by hand in the comments.
// Caffemodels are written here with a tiny protobuf encoder (wire format by hand), not with
// the importer's own generated classes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/ops.h"
#include "anvil/session.h"

namespace fs = std::filesystem;

namespace {

// ---- protobuf wire format, by hand -------------------------------------------------------
std::string varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}
std::string len_field(int field, const std::string& payload) {
  return varint(static_cast<uint64_t>(field) << 3 | 2) + varint(payload.size()) + payload;
}
std::string varint_field(int field, uint64_t v) {
  return varint(static_cast<uint64_t>(field) << 3 | 0) + varint(v);
}
// BlobProto { shape (7) { dim (1, packed) }, data (5, packed float) }
std::string blob_proto(const std::vector<int64_t>& dims, const std::vector<float>& data) {
  std::string d;
  for (int64_t x : dims) d += varint(static_cast<uint64_t>(x));
  std::string f(data.size() * 4, '\0');
  std::memcpy(f.data(), data.data(), f.size());
  return len_field(7, len_field(1, d)) + len_field(5, f);
}
// LayerParameter { name (1), blobs (7) }
std::string layer_weights(const std::string& name, const std::vector<std::string>& blobs) {
  std::string s = len_field(1, name);
  for (const auto& b : blobs) s += len_field(7, b);
  return s;
}
// NetParameter { layer (100) }
std::string net_weights(const std::vector<std::string>& layers) {
  std::string s;
  for (const auto& l : layers) s += len_field(100, l);
  return s;
}

// ---- files and runs ---------------------------------------------------------------------
class CaffeTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("anvil_caffe_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  fs::path dir_;
};

anvil::Tensor tensor(anvil::Shape s, std::vector<float> v) {
  return anvil::Tensor::from_vector<float>(std::move(s), v);
}

std::map<std::string, anvil::Tensor> run(const anvil::Graph& g,
                                         const std::map<std::string, anvil::Tensor>& in,
                                         const std::vector<std::string>& fetch = {}) {
  anvil::SessionOptions o;
  o.keep_all = true;
  anvil::Session s(g, o);
  return s.run(in, fetch);
}

std::string expect_import_error(const std::vector<std::string>& files) {
  try {
    anvil::import_model(files);
  } catch (const anvil::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "import succeeded, expected an anvil::Error";
  return {};
}

std::string input_layer(const std::string& name, const std::vector<int>& dims) {
  std::string s =
      "layer { name: \"" + name + "\" type: \"Input\" top: \"" + name + "\" input_param { shape {";
  for (int d : dims) s += " dim: " + std::to_string(d);
  return s + " } } }\n";
}

// ---- Caffe rules --------------------------------------------------------------------------

// Caffe: out = ceil((in + 2p - k) / s) + 1, minus 1 when pad > 0 and the last window would
// start at or past in + p. FLOOR uses floor instead.
TEST_F(CaffeTest, CeilModePoolingSizes) {
  struct C {
    int in, k, s, p;
    const char* pool;
    const char* round;
    int64_t want;
  } cases[] = {
      {10, 3, 2, 0, "MAX", "CEIL", 5},   // ceil(7/2)+1 = 5 (floor would give 4)
      {10, 3, 2, 0, "MAX", "FLOOR", 4},  // floor(7/2)+1
      {7, 3, 2, 1, "AVE", "CEIL", 4},    // ceil(6/2)+1 = 4, 3*2=6 < 8: kept
      {5, 2, 2, 1, "MAX", "CEIL", 3},    // ceil(5/2)+1 = 4, 3*2=6 >= 5+1: clipped to 3
      {6, 3, 3, 0, "AVE", "CEIL", 2},    // ceil(3/3)+1 = 2
      {8, 2, 3, 1, "AVE", "CEIL", 3},    // ceil(8/3)+1 = 4, 3*3=9 >= 8+1: clipped to 3
  };
  for (const auto& c : cases) {
    std::string proto = input_layer("data", {1, 1, c.in, c.in}) +
                        "layer { name: \"pool\" type: \"Pooling\" bottom: \"data\" top: \"pool\" "
                        "pooling_param { pool: " +
                        std::string(c.pool) + " kernel_size: " + std::to_string(c.k) +
                        " stride: " + std::to_string(c.s) + " pad: " + std::to_string(c.p) +
                        " round_mode: " + c.round + " } }\n";
    anvil::Graph g = anvil::import_model({write("pool.prototxt", proto)});
    std::vector<float> x(static_cast<size_t>(c.in * c.in), 1.0f);
    auto out = run(g, {{"data", tensor({1, 1, c.in, c.in}, x)}});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out.begin()->second.shape(), (anvil::Shape{1, 1, c.want, c.want}))
        << "in " << c.in << " k " << c.k << " s " << c.s << " p " << c.p << " " << c.round;
  }
}

// AVE k3 s2 p1 on a 4x4 of ones: out 3x3 (ceil(3/2)+1). Window starts -1, 1, 3; Caffe's
// divisor counts cells inside [-1, 5) (padding counts, the overhang past 5 does not):
//   start -1: [-1,2) -> 3 cells, 2 real;  start 1: [1,4) -> 3, 3 real;  start 3: [3,5) -> 2, 1.
// So out[i][j] = real_i * real_j / (cells_i * cells_j).
TEST_F(CaffeTest, PaddedAverageDivisor) {
  std::string proto = input_layer("data", {1, 1, 4, 4}) +
                      "layer { name: \"pool\" type: \"Pooling\" bottom: \"data\" top: \"pool\" "
                      "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }\n";
  anvil::Graph g = anvil::import_model({write("avg.prototxt", proto)});
  auto out = run(g, {{"data", tensor({1, 1, 4, 4}, std::vector<float>(16, 1.0f))}});
  const anvil::Tensor& y = out.at("pool");
  ASSERT_EQ(y.shape(), (anvil::Shape{1, 1, 3, 3}));
  const double real[3] = {2, 3, 1}, cells[3] = {3, 3, 2};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      EXPECT_NEAR(y.get(i * 3 + j), real[i] * real[j] / (cells[i] * cells[j]), 1e-6)
          << i << "," << j;
}

// BatchNorm stores mean and variance multiplied by the moving-average factor blob[2]:
// blobs mean' = [2, 4], var' = [8, 0.5], factor = [2] -> mean [1, 2], var [4, 0.25].
// y = (x - mean) / sqrt(var + eps), eps 1e-5 (default).
TEST_F(CaffeTest, BatchNormScaleFactor) {
  std::string proto = input_layer("data", {1, 2, 1, 1}) +
                      "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"bn\" }\n";
  std::string model = net_weights({layer_weights(
      "bn", {blob_proto({2}, {2, 4}), blob_proto({2}, {8, 0.5f}), blob_proto({1}, {2})})});
  anvil::Graph g =
      anvil::import_model({write("bn.prototxt", proto), write("bn.caffemodel", model)});
  auto out = run(g, {{"data", tensor({1, 2, 1, 1}, {3, 5})}});
  const anvil::Tensor& y = out.at("bn");
  EXPECT_NEAR(y.get(0), (3.0 - 1.0) / std::sqrt(4.0 + 1e-5), 1e-6);
  EXPECT_NEAR(y.get(1), (5.0 - 2.0) / std::sqrt(0.25 + 1e-5), 1e-5);

  // factor 0: Caffe uses 0 as the multiplier, so mean = var = 0: y = x / sqrt(eps).
  std::string model0 = net_weights({layer_weights(
      "bn", {blob_proto({2}, {2, 4}), blob_proto({2}, {8, 0.5f}), blob_proto({1}, {0})})});
  g = anvil::import_model({write("bn.prototxt", proto), write("bn0.caffemodel", model0)});
  out = run(g, {{"data", tensor({1, 2, 1, 1}, {3, 5})}});
  EXPECT_NEAR(out.at("bn").get(0), 3.0 / std::sqrt(1e-5), 1e-2);
}

// InnerProduct on (1, 2, 2, 2) flattens C,H,W: x[c,h,w] = 4c + 2h + w = flat index k.
// One-hot weight rows at k = 5 and k = 2 pick x = 5 and 2 (an H,W,C flatten would pick
// x[1,1,0] = 6 and x[0,0,1] = 1).
TEST_F(CaffeTest, InnerProductFlattensChw) {
  std::string proto = input_layer("data", {1, 2, 2, 2}) +
                      "layer { name: \"ip\" type: \"InnerProduct\" bottom: \"data\" top: \"ip\" "
                      "inner_product_param { num_output: 2 bias_term: false } }\n";
  std::vector<float> w(16, 0.0f);
  w[5] = 1.0f;      // row 0
  w[8 + 2] = 1.0f;  // row 1
  std::string model = net_weights({layer_weights("ip", {blob_proto({2, 8}, w)})});
  anvil::Graph g =
      anvil::import_model({write("ip.caffemodel", model), write("ip.prototxt", proto)});
  std::vector<float> x(8);
  for (int k = 0; k < 8; ++k) x[static_cast<size_t>(k)] = static_cast<float>(k);
  auto out = run(g, {{"data", tensor({1, 2, 2, 2}, x)}});
  const anvil::Tensor& y = out.at("ip");
  ASSERT_EQ(y.shape(), (anvil::Shape{1, 2}));
  EXPECT_EQ(y.get(0), 5.0);
  EXPECT_EQ(y.get(1), 2.0);
}

// ---- formats ------------------------------------------------------------------------------

// Legacy V1 net: `input`/`input_dim`, `layers` with enum types, legacy 4-D blob shapes
// (num/channels/height/width) carried inside the prototxt, an in-place ReLU.
// conv 1x1: y = relu(2 * x - 0.5).
TEST_F(CaffeTest, LegacyV1Format) {
  std::string proto = R"(name: "v1net"
input: "data"
input_dim: 1
input_dim: 1
input_dim: 1
input_dim: 3
layers {
  name: "conv"
  type: CONVOLUTION
  bottom: "data"
  top: "conv"
  blobs_lr: 1
  convolution_param { num_output: 1 kernel_size: 1 }
  blobs { num: 1 channels: 1 height: 1 width: 1 data: 2 }
  blobs { num: 1 channels: 1 height: 1 width: 1 data: -0.5 }
}
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
layers { name: "train_only" type: DROPOUT bottom: "conv" top: "conv" include { phase: TRAIN } }
)";
  anvil::Graph g = anvil::import_model({write("v1.prototxt", proto)});
  auto out = run(g, {{"data", tensor({1, 1, 1, 3}, {-1, 0.5f, 2})}});
  ASSERT_TRUE(out.count("conv"));
  const anvil::Tensor& y = out.at("conv");
  EXPECT_EQ(y.get(0), 0.0);  // relu(-2.5)
  EXPECT_EQ(y.get(1), 0.5);  // relu(0.5)
  EXPECT_EQ(y.get(2), 3.5);  // relu(3.5)
}

// The same V1 net with its weights in a binary V1 caffemodel: NetParameter.layers (2) of
// V1LayerParameter { name (4), type (5) = CONVOLUTION (4), blobs (6) }.
TEST_F(CaffeTest, LegacyV1Caffemodel) {
  std::string proto = R"(input: "data"
input_shape { dim: 1 dim: 1 dim: 1 dim: 2 }
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "y"
         convolution_param { num_output: 1 kernel_size: 1 } }
)";
  std::string v1layer = len_field(4, "conv") + varint_field(5, 4) +
                        len_field(6, blob_proto({1, 1, 1, 1}, {3})) +
                        len_field(6, blob_proto({1}, {1}));
  std::string model = len_field(2, v1layer);
  anvil::Graph g =
      anvil::import_model({write("v1.prototxt", proto), write("v1.caffemodel", model)});
  auto out = run(g, {{"data", tensor({1, 1, 1, 2}, {1, -2})}});
  EXPECT_EQ(out.at("y").get(0), 4.0);   // 3 * 1 + 1
  EXPECT_EQ(out.at("y").get(1), -5.0);  // 3 * -2 + 1
}

// In-place layers: x is written three times. The blob name gives the last writer's value
// (what Caffe's net.blobs["x"] holds); earlier writes are "<blob>@<layer>".
TEST_F(CaffeTest, InPlaceLayers) {
  std::string proto = input_layer("data", {1, 3}) + R"(
layer { name: "double" type: "Power" bottom: "data" top: "x" power_param { scale: 2 } }
layer { name: "relu" type: "ReLU" bottom: "x" top: "x" }
layer { name: "plus1" type: "Power" bottom: "x" top: "x" power_param { shift: 1 } }
)";
  anvil::Graph g = anvil::import_model({write("inplace.prototxt", proto)});
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.values[static_cast<size_t>(g.outputs[0])].name, "x");
  EXPECT_EQ(g.values[static_cast<size_t>(g.outputs[0])].prov.source_name, "x");
  auto out = run(g, {{"data", tensor({1, 3}, {-1, 0.25f, 3})}}, {"x", "x@double", "x@relu"});
  const double d[3] = {-1, 0.25, 3};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out.at("x@double").get(i), 2 * d[i]);
    EXPECT_EQ(out.at("x@relu").get(i), std::max(0.0, 2 * d[i]));
    EXPECT_EQ(out.at("x").get(i), std::max(0.0, 2 * d[i]) + 1);
  }
}

// include { phase: TRAIN } and exclude { phase: TEST } layers are dropped; include TEST kept.
TEST_F(CaffeTest, PhaseRules) {
  std::string proto = input_layer("data", {1, 2}) + R"(
layer { name: "a" type: "Power" bottom: "data" top: "a" power_param { scale: 3 }
        include { phase: TEST } }
layer { name: "b" type: "Power" bottom: "data" top: "a" power_param { scale: 5 }
        include { phase: TRAIN } }
layer { name: "c" type: "Power" bottom: "data" top: "a" power_param { scale: 7 }
        exclude { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "a" bottom: "label" top: "loss"
        include { phase: TRAIN } }
)";
  anvil::Graph g = anvil::import_model({write("phase.prototxt", proto)});
  auto out = run(g, {{"data", tensor({1, 2}, {1, 2})}});
  EXPECT_EQ(out.at("a").get(0), 3.0);
  EXPECT_EQ(out.at("a").get(1), 6.0);
}

// ---- malformed input ----------------------------------------------------------------------

TEST_F(CaffeTest, SyntaxErrorNamesLine) {
  std::string proto = "name: \"bad\"\nlayer {\n  name: \"x\" type: \"ReLU\" bottom: data\n}\n";
  std::string msg = expect_import_error({write("bad.prototxt", proto)});
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.prototxt"), std::string::npos) << msg;

  std::string unknown = "name: \"bad\"\nlayer {\n  name: \"x\"\n  kernal_size: 3\n}\n";
  msg = expect_import_error({write("unknown.prototxt", unknown)});
  EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("kernal_size"), std::string::npos) << msg;
}

TEST_F(CaffeTest, TruncatedCaffemodel) {
  std::string proto = input_layer("data", {1, 1, 1, 4}) +
                      "layer { name: \"ip\" type: \"InnerProduct\" bottom: \"data\" top: \"ip\" "
                      "inner_product_param { num_output: 2 } }\n";
  std::string model = net_weights({layer_weights(
      "ip", {blob_proto({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), blob_proto({2}, {0, 0})})});
  std::string p = write("ip.prototxt", proto);
  // Cut inside the first blob's packed floats: the protobuf cannot be parsed.
  std::string msg =
      expect_import_error({p, write("cut.caffemodel", model.substr(0, model.size() / 2))});
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cut.caffemodel"), std::string::npos) << msg;
  // Empty file.
  msg = expect_import_error({p, write("empty.caffemodel", "")});
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
  // A caffemodel alone that holds weights only (no layer types): the net is missing.
  msg = expect_import_error({write("weights_only.caffemodel", model)});
  EXPECT_NE(msg.find("prototxt"), std::string::npos) << msg;
}

TEST_F(CaffeTest, BlobShapeMismatch) {
  std::string proto = input_layer("data", {1, 3, 5, 5}) +
                      "layer { name: \"conv1\" type: \"Convolution\" bottom: \"data\" top: \"c\" "
                      "convolution_param { num_output: 2 kernel_size: 3 } }\n";
  // weights for 4 outputs of 3x3 instead of (2, 3, 3, 3)
  std::string model = net_weights({layer_weights(
      "conv1", {blob_proto({4, 3, 3, 3}, std::vector<float>(108, 0.f)), blob_proto({2}, {0, 0})})});
  try {
    anvil::import_model({write("c.prototxt", proto), write("c.caffemodel", model)});
    FAIL() << "expected an anvil::Error";
  } catch (const anvil::Error& e) {
    EXPECT_EQ(e.node(), "conv1");
    EXPECT_NE(e.field().find("blobs[0]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(2, 3, 3, 3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(4, 3, 3, 3)"), std::string::npos) << e.what();
  }
  // Right shape, wrong number of values.
  std::string model2 = net_weights({layer_weights(
      "conv1", {blob_proto({2, 3, 3, 3}, std::vector<float>(50, 0.f)), blob_proto({2}, {0, 0})})});
  std::string msg =
      expect_import_error({write("c.prototxt", proto), write("c2.caffemodel", model2)});
  EXPECT_NE(msg.find("conv1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("54"), std::string::npos) << msg;
  // Missing bias blob.
  std::string model3 = net_weights(
      {layer_weights("conv1", {blob_proto({2, 3, 3, 3}, std::vector<float>(54, 0.f))})});
  msg = expect_import_error({write("c.prototxt", proto), write("c3.caffemodel", model3)});
  EXPECT_NE(msg.find("conv1"), std::string::npos) << msg;
}

TEST_F(CaffeTest, UnsupportedLayersListedAtOnce) {
  std::string proto = input_layer("data", {1, 4}) + R"(
layer { name: "u1" type: "FancyNorm" bottom: "data" top: "a" }
layer { name: "r" type: "ReLU" bottom: "a" top: "b" }
layer { name: "u2" type: "Mystery" bottom: "data" top: "c" }
)";
  std::string msg = expect_import_error({write("u.prototxt", proto)});
  EXPECT_NE(msg.find("FancyNorm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'u1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Mystery"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'u2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 problems"), std::string::npos) << msg;  // the ReLU after u1 is not one
}

// A type mapped with map_source_op becomes a node of that op: bottoms, then blobs, as inputs;
// the op's declared attributes filled by name from the layer's *_param fields.
TEST_F(CaffeTest, MappedSourceOp) {
  anvil::map_source_op("caffe", "MyLeaky", "LeakyRelu");
  // LeakyRelu declares `alpha`; ELUParameter has a field `alpha` (elu_param used as carrier).
  std::string proto = input_layer("data", {1, 2}) +
                      "layer { name: \"m\" type: \"MyLeaky\" bottom: \"data\" top: \"m\" "
                      "elu_param { alpha: 0.25 } }\n";
  anvil::Graph g = anvil::import_model({write("m.prototxt", proto)});
  auto out = run(g, {{"data", tensor({1, 2}, {-4, 4})}});
  EXPECT_EQ(out.at("m").get(0), -1.0);
  EXPECT_EQ(out.at("m").get(1), 4.0);
}

TEST_F(CaffeTest, ArgMaxTopKAndValues) {
  // Without axis: per item of axis 0, over the flattened rest; (index, value) rows.
  std::string proto = input_layer("data", {2, 4}) +
                      "layer { name: \"am\" type: \"ArgMax\" bottom: \"data\" top: \"am\" "
                      "argmax_param { top_k: 2 out_max_val: true } }\n";
  anvil::Graph g = anvil::import_model({write("am.prototxt", proto)});
  auto out = run(g, {{"data", tensor({2, 4}, {0.1f, 0.9f, 0.5f, 0.7f, 3, 1, 2, 4})}});
  const anvil::Tensor& y = out.at("am");
  ASSERT_EQ(y.shape(), (anvil::Shape{2, 2, 2}));
  const double want[8] = {1, 3, 0.9, 0.7,
                          3, 0, 4,   3};  // item 0: idx 1,3 vals .9,.7; item 1: idx 3,0
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(y.get(i), want[i], 1e-6) << i;
}

// Layers without a shared fixture, values by hand. Blobs are given inside the prototxt.
TEST_F(CaffeTest, MoreLayersByHand) {
  auto one = [&](const std::string& name, const std::vector<int>& in_dims, const std::string& layer,
                 const std::vector<float>& x) {
    anvil::Graph g =
        anvil::import_model({write(name + ".prototxt", input_layer("data", in_dims) + layer)});
    anvil::Shape s(in_dims.begin(), in_dims.end());
    return run(g, {{"data", tensor(s, x)}}).at("y");
  };
  // Permute with a partial order (missing axes follow): (1,2,3) -> (1,3,2); y[j][i] = x[i][j].
  anvil::Tensor y = one("permute", {1, 2, 3},
                        "layer { name: \"p\" type: \"Permute\" bottom: \"data\" top: \"y\" "
                        "permute_param { order: 0 order: 2 } }",
                        {0, 1, 2, 3, 4, 5});
  ASSERT_EQ(y.shape(), (anvil::Shape{1, 3, 2}));
  const double perm_want[6] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.get(i), perm_want[i]);

  // BatchNorm with use_global_stats: false normalizes with the batch's own statistics:
  // x = [1, 3] over N -> mean 2, var 1 -> +-1/sqrt(1 + 1e-5).
  y = one("bnbatch", {2, 1, 1, 1},
          "layer { name: \"bn\" type: \"BatchNorm\" bottom: \"data\" top: \"y\" "
          "batch_norm_param { use_global_stats: false } "
          "blobs { shape { dim: 1 } data: 7 } blobs { shape { dim: 1 } data: 7 } "
          "blobs { shape { dim: 1 } data: 1 } }",
          {1, 3});
  EXPECT_NEAR(y.get(0), -1 / std::sqrt(1 + 1e-5), 1e-6);
  EXPECT_NEAR(y.get(1), 1 / std::sqrt(1 + 1e-5), 1e-6);

  // MVN: [1,2,3,4] -> (x - 2.5) / (sqrt(1.25) + 1e-9)
  y = one("mvn", {1, 1, 1, 4}, "layer { name: \"m\" type: \"MVN\" bottom: \"data\" top: \"y\" }",
          {1, 2, 3, 4});
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.get(i), (i + 1 - 2.5) / (std::sqrt(1.25) + 1e-9), 1e-6);

  // Reduction ASUM from axis 1, coeff 2: rows [1,-2,3], [4,5,-6] -> [12, 30], shape (2,)
  y = one("reduction", {2, 3},
          "layer { name: \"r\" type: \"Reduction\" bottom: \"data\" top: \"y\" "
          "reduction_param { operation: ASUM axis: 1 coeff: 2 } }",
          {1, -2, 3, 4, 5, -6});
  ASSERT_EQ(y.shape(), (anvil::Shape{2}));
  EXPECT_EQ(y.get(0), 12.0);
  EXPECT_EQ(y.get(1), 30.0);

  // Tile axis 1 x3: [1,2] -> [1,2,1,2,1,2]
  y = one(
      "tile", {1, 2},
      "layer { name: \"t\" type: \"Tile\" bottom: \"data\" top: \"y\" tile_param { tiles: 3 } }",
      {1, 2});
  ASSERT_EQ(y.shape(), (anvil::Shape{1, 6}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y.get(i), i % 2 + 1);

  // Swish: x * sigmoid(x); sigmoid(1) = 0.7310585786
  y = one("swish", {1, 2}, "layer { name: \"s\" type: \"Swish\" bottom: \"data\" top: \"y\" }",
          {0, 1});
  EXPECT_NEAR(y.get(0), 0.0, 1e-7);
  EXPECT_NEAR(y.get(1), 0.7310585786, 1e-6);

  // SSD Normalize over channels, per-channel scale [2, 10]: [3,4] / 5 * [2, 10] = [1.2, 8]
  y = one("normalize", {1, 2, 1, 1},
          "layer { name: \"n\" type: \"Normalize\" bottom: \"data\" top: \"y\" "
          "norm_param { across_spatial: false channel_shared: false } "
          "blobs { shape { dim: 2 } data: 2 data: 10 } }",
          {3, 4});
  EXPECT_NEAR(y.get(0), 1.2, 1e-6);
  EXPECT_NEAR(y.get(1), 8.0, 1e-5);

  // Embed: indices [2, 0] into [[1,2],[3,4],[5,6]] plus bias [10, 20]
  y = one("embed", {2},
          "layer { name: \"e\" type: \"Embed\" bottom: \"data\" top: \"y\" "
          "embed_param { input_dim: 3 num_output: 2 } "
          "blobs { shape { dim: 3 dim: 2 } data: 1 data: 2 data: 3 data: 4 data: 5 data: 6 } "
          "blobs { shape { dim: 2 } data: 10 data: 20 } }",
          {2, 0});
  ASSERT_EQ(y.shape(), (anvil::Shape{2, 2}));
  const double embed_want[4] = {15, 26, 11, 22};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y.get(i), embed_want[i]);

  // Clip [0, 1]
  y = one("clip", {1, 3},
          "layer { name: \"c\" type: \"Clip\" bottom: \"data\" top: \"y\" clip_param { min: 0 max: "
          "1 } }",
          {-1, 0.5f, 3});
  EXPECT_EQ(y.get(0), 0.0);
  EXPECT_EQ(y.get(1), 0.5);
  EXPECT_EQ(y.get(2), 1.0);
}

// Hostile sizes fail cleanly (anvil::Error), without huge allocations.
TEST_F(CaffeTest, HostileSizes) {
  std::string proto = input_layer("data", {1, 3, 4, 4}) +
                      "layer { name: \"conv\" type: \"Convolution\" bottom: \"data\" top: \"c\" "
                      "convolution_param { num_output: 4000000000 kernel_size: 4000000000 } "
                      "blobs { shape { dim: 1 } data: 1 } blobs { shape { dim: 1 } data: 1 } }\n";
  std::string msg = expect_import_error({write("big.prototxt", proto)});
  EXPECT_NE(msg.find("conv"), std::string::npos) << msg;
  // A pooling stride larger than the kernel without padding (Caffe would make an empty window).
  std::string pool = input_layer("data", {1, 1, 10, 10}) +
                     "layer { name: \"p\" type: \"Pooling\" bottom: \"data\" top: \"p\" "
                     "pooling_param { pool: MAX kernel_size: 1 stride: 4 } }\n";
  msg = expect_import_error({write("pool.prototxt", pool)});
  EXPECT_NE(msg.find("'p'"), std::string::npos) << msg;
}

// Corrupted copies of a real caffemodel (truncated at many points, single bytes changed) must
// import or fail with anvil::Error: never crash, never throw anything else.
TEST_F(CaffeTest, CorruptCaffemodelsFailCleanly) {
  const std::string dir =
      std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/caffe/squeezenet_fire";
  std::ifstream in(dir + "/model.caffemodel", std::ios::binary);
  ASSERT_TRUE(in) << "fixture missing";
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u);
  const std::string proto = dir + "/deploy.prototxt";
  int errors = 0, ok = 0;
  auto attempt = [&](const std::string& data) {
    std::string p = write("x.caffemodel", data);
    for (const auto& files : {std::vector<std::string>{p}, std::vector<std::string>{proto, p}}) {
      try {
        anvil::import_model(files);
        ++ok;
      } catch (const anvil::Error&) {
        ++errors;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "non-anvil exception: " << e.what();
      }
    }
  };
  uint32_t seed = 12345;
  auto rnd = [&] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  for (int i = 1; i <= 40; ++i)
    attempt(bytes.substr(0, bytes.size() * static_cast<size_t>(i) / 41));
  for (int i = 0; i < 150; ++i) {
    std::string b = bytes;
    b[rnd() % b.size()] = static_cast<char>(rnd() & 0xff);
    attempt(b);
  }
  EXPECT_GT(errors, 0);
  RecordProperty("imports_ok", ok);
}

// Parameter messages of Caffe forks (e.g. SSD's detection_output_param) do not stop the
// parse: their layers are reported as unsupported types. Unknown fields elsewhere are errors.
TEST_F(CaffeTest, ForkParamsReportedAsUnsupportedLayers) {
  std::string proto = input_layer("data", {1, 4}) + R"(
layer { name: "det" type: "DetectionOutput" bottom: "data" top: "det"
        detection_output_param { num_classes: 21 nms_param { nms_threshold: 0.45 top_k: 100 } } }
)";
  std::string msg = expect_import_error({write("ssd.prototxt", proto)});
  EXPECT_NE(msg.find("DetectionOutput"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'det'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("line"), std::string::npos) << msg;

  std::string typo = input_layer("data", {1, 1, 4, 4}) + R"(
layer { name: "p" type: "Pooling" bottom: "data" top: "p"
        pooling_param { pool: MAX kernal_size: 2 } }
)";
  msg = expect_import_error({write("typo.prototxt", typo)});
  EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;  // Input layer, blank, layer, param
  EXPECT_NE(msg.find("kernal_size"), std::string::npos) << msg;
}

// ImportOptions::input_shapes overrides the Input layer's shape: the VGG fixture (batch 2)
// imported for batch 1 gives Caffe's result for the first item (the InnerProduct/Flatten
// reshapes keep the batch dimension free).
TEST_F(CaffeTest, InputShapeOverride) {
  const std::string dir = std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/caffe/vgg_32x32";
  anvil::ImportOptions opt;
  opt.input_shapes["data"] = {1, 3, 32, 32};
  anvil::Graph g = anvil::import_model({dir + "/deploy.prototxt", dir + "/model.caffemodel"}, opt);
  anvil::Tensor x2 = anvil::read_npy(dir + "/inputs/data.npy");
  ASSERT_EQ(x2.shape()[0], 2);
  anvil::Tensor x1 = anvil::Tensor::from_bytes(x2.dtype(), {1, 3, 32, 32}, x2.raw());
  auto out = run(g, {{"data", x1}});
  ASSERT_EQ(out.size(), 1u);
  const anvil::Tensor& y = out.begin()->second;
  anvil::Tensor want = anvil::read_npy(dir + "/outputs/" + out.begin()->first + ".npy");
  ASSERT_EQ(y.shape()[0], 1);
  ASSERT_EQ(y.numel() * 2, want.numel());
  for (int64_t i = 0; i < y.numel(); ++i)
    EXPECT_NEAR(y.get(i), want.get(i), 1e-5 + 1e-4 * std::fabs(want.get(i)));
}

}  // namespace
