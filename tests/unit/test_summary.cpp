// summary(): header, one row per node (source name, op, shape in the source layout, pads,
// params) and the total, with parameter counts derived by hand.
#include <gtest/gtest.h>

#include <sstream>

#include "anvil/builder.h"
#include "anvil/import.h"
#include "anvil/summary.h"

using namespace anvil;

namespace {
std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> r;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) r.push_back(l);
  return r;
}

const std::string* row_starting(const std::vector<std::string>& lines, const std::string& name) {
  for (const auto& l : lines)
    if (l.rfind(name + " ", 0) == 0) return &l;
  return nullptr;
}
}  // namespace

TEST(Summary, BuilderModelRowsAndTotals) {
  Builder b("small");
  auto x = b.input("image", {1, 3, 8, 8});
  auto y = x >> b.conv2d(4, 3, {.padding = Padding::same, .stride = 2, .name = "conv1"}) >>
           b.relu("act") >> b.flatten("flat") >> b.dense(5, {.name = "fc"});
  b.output(y);
  b.initialize_random(1);
  std::string s = summary(b.build());
  auto lines = lines_of(s);
  ASSERT_GE(lines.size(), 9u) << s;
  EXPECT_NE(lines[0].find("small"), std::string::npos);
  // header, then a separator line of dashes
  bool header = false;
  size_t header_at = 0;
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find("Output shape") != std::string::npos &&
        lines[i].find("Params") != std::string::npos) {
      header = true;
      header_at = i;
      break;
    }
  ASSERT_TRUE(header) << s;
  ASSERT_LT(header_at + 1, lines.size());
  EXPECT_EQ(lines[header_at + 1].find_first_not_of('-'), std::string::npos);
  // conv1: 4 * 3 * 3 * 3 + 4 = 112 params; TF 'same' on 8 with k 3, s 2: total pad 1 -> [0,0,1,1]
  const std::string* conv = row_starting(lines, "conv1");
  ASSERT_NE(conv, nullptr) << s;
  EXPECT_NE(conv->find("Conv2D"), std::string::npos);
  EXPECT_NE(conv->find("(1, 4, 4, 4)"), std::string::npos);
  EXPECT_NE(conv->find("[0,0,1,1]"), std::string::npos);
  EXPECT_EQ(conv->substr(conv->size() - 4), " 112");
  // fc: 4 * 4 * 4 = 64 inputs -> 64 * 5 + 5 = 325 params
  const std::string* fc = row_starting(lines, "fc");
  ASSERT_NE(fc, nullptr) << s;
  EXPECT_NE(fc->find("Dense"), std::string::npos);
  EXPECT_NE(fc->find("(1, 5)"), std::string::npos);
  EXPECT_EQ(fc->substr(fc->size() - 4), " 325");
  const std::string* act = row_starting(lines, "act");
  ASSERT_NE(act, nullptr);
  EXPECT_EQ(act->back(), '0');
  EXPECT_NE(s.find("Total params: 437\n"), std::string::npos) << s;  // 112 + 325
  EXPECT_EQ(lines.back(), "Total params: 437");
}

TEST(Summary, ShapesInTheSourceLayoutAndSourceNames) {
  Graph g;
  g.name = "nhwc";
  int x = g.add_input("x", DType::f32, {1, 3, 4, 5});
  g.values[static_cast<size_t>(x)].prov.to_source = {0, 2, 3, 1};
  g.values[static_cast<size_t>(x)].prov.source_layout = "NHWC";
  g.values[static_cast<size_t>(x)].prov.source_name = "input_1";
  int w = g.add_constant("w", Tensor(DType::f32, {2, 3, 1, 1}));
  int n = g.add_node("Conv", "node_7", {x, w});
  g.nodes[static_cast<size_t>(n)].source_op = "Conv2D";
  Value& out = g.values[static_cast<size_t>(g.nodes[static_cast<size_t>(n)].outputs[0])];
  out.shape = {1, 2, 4, 5};
  out.shape_known = true;
  out.prov.to_source = {0, 2, 3, 1};
  out.prov.source_layout = "NHWC";
  out.prov.source_name = "keras_conv";
  int r = g.add_node("Relu", "relu_node", {g.nodes[static_cast<size_t>(n)].outputs[0]});
  Value& rv = g.values[static_cast<size_t>(g.nodes[static_cast<size_t>(r)].outputs[0])];
  rv.shape = {1, 2, 4, 5};
  rv.shape_known = true;
  g.outputs = {g.nodes[static_cast<size_t>(r)].outputs[0]};
  std::string s = summary(g);
  auto lines = lines_of(s);
  const std::string* in = row_starting(lines, "input_1");
  ASSERT_NE(in, nullptr) << s;
  EXPECT_NE(in->find("(1, 4, 5, 3)"), std::string::npos) << s;
  const std::string* conv = row_starting(lines, "keras_conv");
  ASSERT_NE(conv, nullptr) << s;
  EXPECT_NE(conv->find("Conv2D"), std::string::npos);  // the source op
  EXPECT_NE(conv->find("(1, 4, 5, 2)"), std::string::npos);
  EXPECT_EQ(conv->find("[0"), std::string::npos);              // no pads attribute: no padding cell
  const std::string* relu = row_starting(lines, "relu_node");  // no provenance: node name
  ASSERT_NE(relu, nullptr) << s;
  EXPECT_NE(relu->find("Relu"), std::string::npos);  // no source op: canonical op
  EXPECT_NE(relu->find("(1, 2, 4, 5)"), std::string::npos);
  EXPECT_NE(s.find("Total params: 6\n"), std::string::npos);
  EXPECT_EQ(node_parameter_count(g, g.nodes[0]), 6);
  EXPECT_EQ(node_parameter_count(g, g.nodes[1]), 0);
  SummaryOptions o;
  o.show_constants = true;
  std::string with_w = summary(g, o);
  EXPECT_NE(with_w.find("Constant"), std::string::npos);
}

TEST(Summary, SharedWeightsCountOnceInTheTotal) {
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3});
  int w = g.add_constant("w", Tensor(DType::f32, {3, 3}));
  int a = g.add_node("MatMul", "a", {x, w});
  int b = g.add_node("MatMul", "b", {g.nodes[static_cast<size_t>(a)].outputs[0], w});
  g.outputs = {g.nodes[static_cast<size_t>(b)].outputs[0]};
  g.infer_shapes();
  EXPECT_EQ(node_parameter_count(g, g.nodes[0]), 9);
  EXPECT_EQ(node_parameter_count(g, g.nodes[1]), 9);
  EXPECT_NE(summary(g).find("Total params: 9\n"), std::string::npos) << summary(g);
}

// ---- SummarySource: one row per source layer, in the source framework's own terms ----

namespace {
// The row of source layer `name` ("name (Type) ..."), or nullptr.
const std::string* layer_row(const std::vector<std::string>& lines, const std::string& name,
                             const std::string& type) {
  return row_starting(lines, name + " (" + type + ")");
}
// The last number on a line.
int64_t last_number(const std::string& l) {
  size_t e = l.find_last_of("0123456789");
  size_t b = l.find_last_not_of("0123456789", e);
  return std::stoll(l.substr(b + 1, e - b));
}
std::string fixture(const std::string& rel) { return std::string(ANVIL_SOURCE_DIR) + "/" + rel; }
}  // namespace

TEST(SummarySource, KerasTableFromRecordedLayers) {
  Graph g;
  g.name = "net";
  g.framework = "keras";
  int x = g.add_input("x", DType::f32, {1, 8});
  int n = g.add_node("Relu", "r", {x});
  g.outputs = {g.nodes[static_cast<size_t>(n)].outputs[0]};
  g.infer_shapes();
  SourceLayer a{"dense_1", "Dense", {"dense_1"}, {{-1, 1000}}, "", 9000, 0};
  SourceLayer b{"bn", "BatchNormalization", {"bn"}, {{-1, 4, 4, 1000}}, "", 2000, 2000};
  SourceLayer c{"shared", "Dense", {"shared"}, {{-1, 3}}, "multiple", 12, 0};
  SourceLayer d{"v", "Flatten", {"v"}, {{-1, 7}}, "", 0, 0};
  g.source_layers = {a, b, c, d};
  std::string s = summary(g);
  auto lines = lines_of(s);
  ASSERT_GE(lines.size(), 8u) << s;
  EXPECT_EQ(lines[0], "Model: \"net\"");
  const std::string* hdr = row_starting(lines, "Layer (type)");
  ASSERT_NE(hdr, nullptr) << s;
  EXPECT_NE(hdr->find("Output Shape"), std::string::npos);
  EXPECT_NE(hdr->find("Param #"), std::string::npos);
  const std::string* r = layer_row(lines, "dense_1", "Dense");
  ASSERT_NE(r, nullptr) << s;
  EXPECT_NE(r->find("(None, 1000)"), std::string::npos) << *r;
  EXPECT_EQ(last_number(*r), 9000);
  r = layer_row(lines, "bn", "BatchNormalization");
  ASSERT_NE(r, nullptr) << s;
  EXPECT_NE(r->find("(None, 4, 4, 1000)"), std::string::npos) << *r;
  EXPECT_EQ(last_number(*r), 4000);
  r = layer_row(lines, "shared", "Dense");
  ASSERT_NE(r, nullptr) << s;
  EXPECT_NE(r->find("multiple"), std::string::npos) << *r;
  r = layer_row(lines, "v", "Flatten");
  ASSERT_NE(r, nullptr) << s;
  EXPECT_NE(r->find("(None, 7)"), std::string::npos) << *r;
  // one row per source layer, not per node: the Relu node has no row
  EXPECT_EQ(row_starting(lines, "r"), nullptr) << s;
  // totals as Keras prints them ('{:,}'): 9000 + 4000 + 12 = 13012, of which 2000 fixed
  EXPECT_NE(
      s.find("\nTotal params: 13,012\nTrainable params: 11,012\nNon-trainable params: 2,000\n"),
      std::string::npos)
      << s;
  // with --constants: the per-node table
  SummaryOptions o;
  o.show_constants = true;
  EXPECT_NE(summary(g, o).find("Op"), std::string::npos);
}

TEST(SummarySource, KerasDemoEqualsKerasModelSummary) {
  Graph g = import_model({fixture("models/demo/keras/digits_cnn.h5")});
  std::string s = summary(g);
  auto lines = lines_of(s);
  // input (None, 8, 8, 1); conv1 3x3 1->8 + bias: 9*1*8 + 8 = 80 ('same');
  // bn1 4*8 = 32 (moving mean/variance 16 non-trainable); pool 2x2 -> (None, 4, 4, 8);
  // conv2 3x3 8->16 'valid': 9*8*16 + 16 = 1168 -> (None, 2, 2, 16); flatten 64;
  // probs 64*10 + 10 = 650.  Keras: Total 1,930, Trainable 1,914, Non-trainable 16.
  struct Want {
    const char *name, *type, *shape;
    int64_t params;
  };
  for (const Want& w :
       {Want{"image", "InputLayer", "(None, 8, 8, 1)", 0},
        Want{"conv1", "Conv2D", "(None, 8, 8, 8)", 80},
        Want{"bn1", "BatchNormalization", "(None, 8, 8, 8)", 32},
        Want{"pool", "MaxPooling2D", "(None, 4, 4, 8)", 0},
        Want{"conv2", "Conv2D", "(None, 2, 2, 16)", 1168},
        Want{"flatten", "Flatten", "(None, 64)", 0}, Want{"probs", "Dense", "(None, 10)", 650}}) {
    const std::string* r = layer_row(lines, w.name, w.type);
    ASSERT_NE(r, nullptr) << w.name << "\n" << s;
    EXPECT_NE(r->find(w.shape), std::string::npos) << *r;
    EXPECT_EQ(last_number(*r), w.params) << *r;
  }
  EXPECT_NE(s.find("Total params: 1,930\n"), std::string::npos) << s;
  EXPECT_NE(s.find("Trainable params: 1,914\n"), std::string::npos) << s;
  EXPECT_NE(s.find("Non-trainable params: 16\n"), std::string::npos) << s;
}

TEST(SummarySource, KerasBatchNormWithoutCenterAndScaleHasOnlyMovingStatistics) {
  // BatchNormalization(center=False, scale=False) on (5, 5, 3): Keras holds moving_mean and
  // moving_variance only: 2*3 = 6 parameters, all non-trainable (no gamma/beta).
  Graph g = import_model({fixture("tests/data/fixtures/keras/bn_no_scale_no_center/model.h5")});
  std::string s = summary(g);
  auto lines = lines_of(s);
  const std::string* r = layer_row(lines, "batch_normalization_1", "BatchNormalization");
  ASSERT_NE(r, nullptr) << s;
  EXPECT_NE(r->find("(None, 5, 5, 3)"), std::string::npos) << *r;
  EXPECT_EQ(last_number(*r), 6);
  EXPECT_NE(s.find("Total params: 6\nTrainable params: 0\nNon-trainable params: 6\n"),
            std::string::npos)
      << s;
}

TEST(SummarySource, KerasMobilenetSmallCountsFromTheConfig) {
  // From config.json: 3x3 convs/depthwise without bias, 1x1 pointwise without bias, BN
  // (center and scale) after each: 4*C, 2*C of them non-trainable; conv_preds 1x1 32->10 + bias.
  int64_t trainable = 0, fixed = 0;
  auto conv = [&](int64_t k, int64_t cin, int64_t cout) { trainable += k * k * cin * cout; };
  auto dw = [&](int64_t c) { trainable += 9 * c; };
  auto bn = [&](int64_t c) {
    trainable += 2 * c;
    fixed += 2 * c;
  };
  conv(3, 3, 8), bn(8);                  // stem
  dw(8), bn(8), conv(1, 8, 16), bn(16);  // b0
  dw(16), bn(16), conv(1, 16, 16), bn(16);
  dw(16), bn(16), conv(1, 16, 24), bn(24);
  dw(24), bn(24), conv(1, 24, 24), bn(24);
  dw(24), bn(24), conv(1, 24, 32), bn(32);
  dw(32), bn(32), conv(1, 32, 32), bn(32);
  trainable += 32 * 10 + 10;  // conv_preds
  ASSERT_EQ(trainable + fixed, 5850);
  Graph g = import_model({fixture("tests/data/fixtures/keras/mobilenet_small/model.h5")});
  std::string s = summary(g);
  auto lines = lines_of(s);
  EXPECT_NE(s.find("Total params: 5,850\nTrainable params: " + std::to_string(trainable / 1000) +
                   "," + std::to_string(trainable % 1000) +
                   "\nNon-trainable params: " + std::to_string(fixed) + "\n"),
            std::string::npos)
      << s;
  const std::string* r = layer_row(lines, "b3_dw", "DepthwiseConv2D");
  ASSERT_NE(r, nullptr) << s;
  EXPECT_EQ(last_number(*r), 9 * 24);
  r = layer_row(lines, "b2_pw_bn", "BatchNormalization");
  ASSERT_NE(r, nullptr) << s;
  EXPECT_EQ(last_number(*r), 4 * 24);
  EXPECT_NE(r->find("(None, "), std::string::npos);
  // functional model: the InputLayer has a row
  EXPECT_NE(layer_row(lines, "image", "InputLayer"), nullptr) << s;
  // one row per layer: the ZeroPadding2D and ReLU layers too, nothing else
  size_t rows = 0;
  for (const auto& l : lines)
    if (l.find(" (") != std::string::npos && l.rfind("Layer (type)", 0) != 0 &&
        l.rfind("Model:", 0) != 0)
      ++rows;
  EXPECT_EQ(rows, 50u) << s;  // 50 layers in config.json
}

TEST(SummarySource, CaffeDemoCountsTheNumbersInTheCaffemodel) {
  Graph g = import_model({fixture("models/demo/caffe/deploy.prototxt"),
                          fixture("models/demo/caffe/digits.caffemodel")});
  std::string s = summary(g);
  auto lines = lines_of(s);
  // conv1 8x1x3x3, no bias: 72; bn1 mean 8 + variance 8 + factor 1 = 17; scale1 8 + bias 8 =
  // 16 (one row); conv2 16x8x3x3 + 16 = 1168; ip 10x64 + 10 = 650.  1923 in all.
  struct Want {
    const char *name, *type, *top, *shape;
    int64_t params;
  };
  for (const Want& w : {Want{"data", "Input", "data", "(8, 1, 8, 8)", 0},
                        Want{"conv1", "Convolution", "conv1", "(8, 8, 8, 8)", 72},
                        Want{"bn1", "BatchNorm", "conv1", "(8, 8, 8, 8)", 17},
                        Want{"scale1", "Scale", "conv1", "(8, 8, 8, 8)", 16},
                        Want{"pool1", "Pooling", "pool1", "(8, 8, 4, 4)", 0},
                        Want{"conv2", "Convolution", "conv2", "(8, 16, 2, 2)", 1168},
                        Want{"ip", "InnerProduct", "ip", "(8, 10)", 650}}) {
    const std::string* r = layer_row(lines, w.name, w.type);
    ASSERT_NE(r, nullptr) << w.name << "\n" << s;
    EXPECT_NE(r->find(std::string(" ") + w.top + " "), std::string::npos) << *r;
    EXPECT_NE(r->find(w.shape), std::string::npos) << *r;
    EXPECT_EQ(last_number(*r), w.params) << *r;
  }
  size_t scale_rows = 0;
  for (const auto& l : lines) scale_rows += l.rfind("scale1", 0) == 0;
  EXPECT_EQ(scale_rows, 1u) << s;
  EXPECT_EQ(lines.back(), "Total params: 1923");
}

TEST(SummarySource, KerasBranchingModelHasConnectedToColumn) {
  // multi_io: image (8, 8, 3) -> conv 3x3 'valid' 4 filters -> gap; meta (5) -> meta_dense 4;
  // join = concat(gap, meta_dense) -> probs Dense 3; gate = gap * meta_dense -> reg Dense 2.
  // conv 3*3*3*4 + 4 = 112, meta_dense 5*4 + 4 = 24, probs 8*3 + 3 = 27, reg 4*2 + 2 = 10.
  Graph g = import_model({fixture("tests/data/fixtures/keras/multi_io/model.h5")});
  std::string s = summary(g);
  auto lines = lines_of(s);
  const std::string* hdr = row_starting(lines, "Layer (type)");
  ASSERT_NE(hdr, nullptr) << s;
  EXPECT_NE(hdr->find("Connected to"), std::string::npos) << s;
  const std::string* conv = layer_row(lines, "conv", "Conv2D");
  ASSERT_NE(conv, nullptr) << s;
  EXPECT_NE(conv->find("(None, 6, 6, 4)"), std::string::npos) << *conv;
  EXPECT_NE(conv->find(" 112 "), std::string::npos) << *conv;
  EXPECT_NE(conv->find("image[0][0]"), std::string::npos) << *conv;
  // a layer with two inbound tensors: the second on a line of its own
  for (size_t i = 0; i + 1 < lines.size(); ++i)
    if (lines[i].rfind("join (Concatenate)", 0) == 0) {
      EXPECT_NE(lines[i].find("gap[0][0]"), std::string::npos) << lines[i];
      EXPECT_EQ(lines[i + 1].find_first_not_of(' '), lines[i + 1].find("meta_dense[0][0]"))
          << lines[i + 1];
    }
  EXPECT_NE(s.find("Total params: 173\nTrainable params: 173\nNon-trainable params: 0\n"),
            std::string::npos)
      << s;
  // a chain (the demo) has no such column, as in Keras
  EXPECT_EQ(
      summary(import_model({fixture("models/demo/keras/digits_cnn.h5")})).find("Connected to"),
      std::string::npos);
}
