// Keras importer unit tests: padding rules, weight permutations, the Flatten order for
// channels_last / channels_first models, the Theano kernel flip, the transpose-into-Gemm
// folding pass, and malformed inputs. Expected values are hand-computed (formulas in the
// comments) or computed with a different method than the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "anvil/summary.h"
#include "import/keras/hdf5_file.h"
#include "import/keras/keras_convert.h"
#include "import/keras/keras_translator.h"
#include "passes/fold_transpose_into_gemm.h"
#include "passes/passes.h"

namespace fs = std::filesystem;
using namespace anvil;
using namespace anvil::keras;

namespace {

std::string fixture(const std::string& c) {
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/keras/" + c;
}

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
void write_file(const std::string& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}
std::string tmpdir() {
  fs::path d = fs::temp_directory_path() / ("anvil_keras_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double m = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i)
    m = std::max(m, std::fabs(a.get(i) - b.get(i)));
  return m;
}

// ------------------------------------------------------------------ converter table

// The converter table is the list of supported layer classes: the classes the importer has
// always supported (the list it kept before the table existed) plus the sequence and 3-D ones.
TEST(KerasConverterTable, ListsEverySupportedClass) {
  const std::set<std::string> want = {
      "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "DepthwiseConv2D",
      "SeparableConv2D", "SeparableConvolution2D", "Conv2DTranspose", "Conv1DTranspose",
      "Deconvolution2D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "MaxPool1D", "MaxPool2D",
      "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "AvgPool1D", "AvgPool2D",
      "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
      "GlobalMaxPooling2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D",
      "GlobalMaxPool2D", "Dense", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU",
      "ELU", "ThresholdedReLU", "Softmax", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D",
      "Cropping2D", "UpSampling1D", "UpSampling2D", "Flatten", "Reshape", "Permute", "RepeatVector",
      "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot",
      "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
      "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Masking",
      // sequence and 3-D layers (keras-seq fixtures)
      "Embedding", "SimpleRNN", "LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU", "Bidirectional",
      "TimeDistributed", "ConvLSTM2D", "RNN", "MaxPool3D", "AvgPool3D", "GlobalAveragePooling3D",
      "GlobalAvgPool3D", "GlobalMaxPooling3D", "GlobalMaxPool3D", "ZeroPadding3D", "Cropping3D",
      "UpSampling3D"};
  std::vector<std::string> have = supported_layer_classes();
  EXPECT_EQ(std::set<std::string>(have.begin(), have.end()), want);
  EXPECT_EQ(have.size(), want.size());
  for (const auto& c : want) EXPECT_NE(find_converter(c), nullptr) << c;
  EXPECT_EQ(find_converter("Lambda"), nullptr);
}

// ------------------------------------------------------------------ padding rules

struct PadCase {
  const char* name;
  int64_t in, k, s, d;
  Pads want;
};

class KerasTfSamePads : public testing::TestWithParam<PadCase> {};
TEST_P(KerasTfSamePads, MatchesHandComputed) {
  const auto& c = GetParam();
  EXPECT_EQ(tf_same_pads(c.in, c.k, c.s, c.d), c.want);
}
// out = ceil(in/s); total = max((out-1)*s + (k-1)*d+1 - in, 0); begin = total/2
INSTANTIATE_TEST_SUITE_P(
    Keras, KerasTfSamePads,
    testing::Values(PadCase{"in8_k3_s2", 8, 3, 2, 1, {0, 1}},     // out 4, total 1
                    PadCase{"in9_k3_s2", 9, 3, 2, 1, {1, 1}},     // out 5, total 2
                    PadCase{"in10_k5_s2", 10, 5, 2, 1, {1, 2}},   // out 5, total 3
                    PadCase{"in7_k3_s1_d2", 7, 3, 1, 2, {2, 2}},  // keff 5, total 4
                    PadCase{"in6_k2_s1", 6, 2, 1, 1, {0, 1}},     // total 1
                    PadCase{"in5_k1_s3", 5, 1, 3, 1, {0, 0}}),    // out 2, total 0
    [](const auto& i) { return std::string(i.param.name); });

TEST(KerasTfSamePads, In16K4S3) {
  // out = ceil(16/3) = 6; total = 5*3 + 4 - 16 = 3 -> begin 1, end 2
  EXPECT_EQ(tf_same_pads(16, 4, 3, 1), (Pads{1, 2}));
}

class KerasTheanoConvPads : public testing::TestWithParam<PadCase> {};
TEST_P(KerasTheanoConvPads, MatchesHandComputed) {
  const auto& c = GetParam();
  EXPECT_EQ(theano_same_conv_pads(c.in, c.k, c.s, c.d), c.want);
}
// Theano "half": p = keff/2 both sides, output cropped to ceil(in/s); end = what that crop leaves
INSTANTIATE_TEST_SUITE_P(
    Keras, KerasTheanoConvPads,
    testing::Values(PadCase{"in8_k3_s2", 8, 3, 2, 1, {1, 0}},    // TF would be (0,1)
                    PadCase{"in9_k3_s2", 9, 3, 2, 1, {1, 1}},    // same as TF
                    PadCase{"in6_k2_s1", 6, 2, 1, 1, {1, 0}},    // TF would be (0,1)
                    PadCase{"in10_k5_s2", 10, 5, 2, 1, {2, 1}},  // TF would be (1,2)
                    PadCase{"in10_k3_s1_d2", 10, 3, 1, 2, {2, 2}}),
    [](const auto& i) { return std::string(i.param.name); });

class KerasTheanoPoolPads : public testing::TestWithParam<PadCase> {};
TEST_P(KerasTheanoPoolPads, MatchesHandComputed) {
  const auto& c = GetParam();
  EXPECT_EQ(theano_same_pool_pads(c.in, c.k, c.s), c.want);
}
// p = k-2 (k odd > 2) else k-1, both sides; output cropped to ceil(in/s)
INSTANTIATE_TEST_SUITE_P(Keras, KerasTheanoPoolPads,
                         testing::Values(PadCase{"in7_k2_s2", 7, 2, 2, 1, {1, 0}},    // TF: (0,1)
                                         PadCase{"in10_k3_s2", 10, 3, 2, 1, {1, 0}},  // TF: (0,1)
                                         PadCase{"in9_k3_s2", 9, 3, 2, 1, {1, 1}},    // TF: (1,1)
                                         PadCase{"in6_k3_s1", 6, 3, 1, 1, {1, 1}}),
                         [](const auto& i) { return std::string(i.param.name); });

TEST(KerasDeconv, LengthAndPads) {
  EXPECT_EQ(deconv_length(5, 3, 2, "valid", -1), 11);  // 5*2 + max(3-2, 0)
  EXPECT_EQ(deconv_length(4, 4, 2, "valid", -1), 10);  // 4*2 + 2
  EXPECT_EQ(deconv_length(5, 3, 2, "same", -1), 10);   // 5*2
  EXPECT_EQ(deconv_length(5, 3, 2, "same", 1), 10);    // (5-1)*2 + 3 - 2*1 + 1
  // full output without padding: (5-1)*2 + 3 = 11; Theano "half" crops 1 at the start
  auto th = conv_transpose_pads(5, 3, 2, 1, 10, true, "same");
  EXPECT_EQ(th.pads, (Pads{1, 0}));
  EXPECT_EQ(th.output_padding, 0);
  // TF: forward SAME conv 10 -> 5 has total padding 1, all at the end
  auto tf = conv_transpose_pads(5, 3, 2, 1, 10, false, "same");
  EXPECT_EQ(tf.pads, (Pads{0, 1}));
  // kernel smaller than the stride: the missing cells are output padding
  auto op = conv_transpose_pads(4, 1, 2, 1, 8, false, "valid");  // full = 7
  EXPECT_EQ(op.pads, (Pads{0, 0}));
  EXPECT_EQ(op.output_padding, 1);
}

// ------------------------------------------------------------------ weight permutations

Tensor coded(const Shape& s) {
  // element value encodes its index: sum idx[i] * 10^(rank-1-i)
  Tensor t(DType::f32, s);
  for (int64_t f = 0; f < t.numel(); ++f) {
    int64_t rem = f, code = 0, mul = 1;
    for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
      code += (rem % s[static_cast<size_t>(i)]) * mul;
      rem /= s[static_cast<size_t>(i)];
      mul *= 10;
    }
    t.set(f, static_cast<double>(code));
  }
  return t;
}

TEST(KerasWeights, HwioToOihw) {
  Tensor k = coded({2, 3, 4, 5});  // (kh, kw, I, O): value = h*1000 + w*100 + i*10 + o
  Tensor o = conv_kernel_to_oihw(k);
  ASSERT_EQ(o.shape(), (Shape{5, 4, 2, 3}));
  for (int oc = 0; oc < 5; ++oc)
    for (int ic = 0; ic < 4; ++ic)
      for (int h = 0; h < 2; ++h)
        for (int w = 0; w < 3; ++w)
          EXPECT_EQ(o.get(((oc * 4 + ic) * 2 + h) * 3 + w), h * 1000 + w * 100 + ic * 10 + oc);
}

TEST(KerasWeights, Conv1DKernel) {
  Tensor k = coded({3, 2, 4});  // (k, I, O)
  Tensor o = conv_kernel_to_oihw(k);
  ASSERT_EQ(o.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(o.get((3 * 2 + 1) * 3 + 2), 2 * 100 + 1 * 10 + 3);  // o=3, i=1, k=2
}

TEST(KerasWeights, DepthwiseToGroupedOihw) {
  Tensor k = coded({2, 2, 3, 2});  // (kh, kw, C, M)
  Tensor o = depthwise_kernel_to_oihw(k);
  ASSERT_EQ(o.shape(), (Shape{6, 1, 2, 2}));
  for (int c = 0; c < 3; ++c)
    for (int m = 0; m < 2; ++m)
      for (int h = 0; h < 2; ++h)
        for (int w = 0; w < 2; ++w)
          EXPECT_EQ(o.get(((c * 2 + m) * 2 + h) * 2 + w), h * 1000 + w * 100 + c * 10 + m)
              << c << m;
}

TEST(KerasWeights, ConvTransposeToIohw) {
  Tensor k = coded({3, 2, 4, 5});  // (kh, kw, out, in)
  Tensor o = conv_transpose_kernel_to_iohw(k);
  ASSERT_EQ(o.shape(), (Shape{5, 4, 3, 2}));  // (in, out, kh, kw)
  EXPECT_EQ(o.get(((2 * 4 + 3) * 3 + 1) * 2 + 1),
            1 * 1000 + 1 * 100 + 3 * 10 + 2);  // in=2,out=3,h=1,w=1
}

TEST(KerasWeights, DenseKernelIsGemmBUnchanged) {
  Tensor k = coded({3, 4});
  Tensor o = dense_kernel_to_gemm(k);
  ASSERT_EQ(o.shape(), (Shape{3, 4}));
  EXPECT_EQ(max_abs_diff(o, k), 0.0);
  EXPECT_THROW(dense_kernel_to_gemm(coded({2, 3, 4})), Error);
}

TEST(KerasWeights, TheanoFlipReversesSpatialAxesOnly) {
  Tensor k = coded({3, 2, 2, 2});
  Tensor o = flip_spatial(k, 2);
  for (int h = 0; h < 3; ++h)
    for (int w = 0; w < 2; ++w)
      for (int i = 0; i < 2; ++i)
        for (int c = 0; c < 2; ++c)
          EXPECT_EQ(o.get(((h * 2 + w) * 2 + i) * 2 + c),
                    (2 - h) * 1000 + (1 - w) * 100 + i * 10 + c);
}

// The stored kernel of a Theano-backend file is flipped on import (README quirk 2): the Conv
// weight in the graph is OIHW(flip(kernel from the file)).
TEST(KerasWeights, TheanoFileKernelIsFlippedInGraph) {
  std::string f = fixture("conv2d_valid_s1_odd9/model.h5");
  H5File h5 = H5File::open(f);
  EXPECT_EQ(h5.attr_string("/", "backend"), "theano");
  auto names = h5.attr_strings("/model_weights/conv2d_1", "weight_names");
  ASSERT_EQ(names.size(), 2u);
  Tensor raw = h5.read_f32("/model_weights/conv2d_1/" + names[0]);  // (3,3,3,4)
  ASSERT_EQ(raw.shape(), (Shape{3, 3, 3, 4}));
  Graph g = import_model({f});
  const Value* w = nullptr;
  for (const auto& n : g.nodes)
    if (n.op == "Conv") w = &g.values[static_cast<size_t>(n.inputs[1])];
  ASSERT_TRUE(w && w->is_constant());
  ASSERT_EQ(w->shape, (Shape{4, 3, 3, 3}));
  for (int o = 0; o < 4; ++o)
    for (int i = 0; i < 3; ++i)
      for (int h = 0; h < 3; ++h)
        for (int x = 0; x < 3; ++x)
          ASSERT_EQ(w->constant.get(((o * 3 + i) * 3 + h) * 3 + x),
                    raw.get((((2 - h) * 3 + (2 - x)) * 3 + i) * 4 + o));
}

// ------------------------------------------------------------------ fold_transpose_into_gemm

TEST(KerasFoldTransposeGemm, PermutedRowsGiveSameProduct) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  Shape xs{2, 3, 4, 5};
  std::vector<int> perm{0, 2, 3, 1};
  Tensor x(DType::f32, xs), b(DType::f32, {60, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, nd(rng));
  for (int64_t i = 0; i < b.numel(); ++i) b.set(i, nd(rng));
  Tensor xt = transpose(x, perm);  // flattened transposed rows
  Tensor b2 = passes::permute_gemm_rows_for_transpose(b, false, xs, perm);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 4; ++c) {
      double want = 0, got = 0;
      for (int k = 0; k < 60; ++k) {
        want += xt.get(n * 60 + k) * b.get(k * 4 + c);
        got += x.get(n * 60 + k) * b2.get(k * 4 + c);
      }
      EXPECT_NEAR(got, want, 1e-4);
    }
  // transB layout: B is (N, K)
  Tensor bt = transpose(b, {1, 0});
  Tensor bt2 = passes::permute_gemm_rows_for_transpose(bt, true, xs, perm);
  EXPECT_EQ(max_abs_diff(transpose(bt2, {1, 0}), b2), 0.0);
}

Graph transpose_flatten_gemm_graph(bool trans_b) {
  Graph g;
  g.name = "tfg";
  int x = g.add_input("x", DType::f32, {2, 3, 4, 5});
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  Tensor b(DType::f32, trans_b ? Shape{6, 60} : Shape{60, 6}), c(DType::f32, {6});
  for (int64_t i = 0; i < b.numel(); ++i) b.set(i, nd(rng));
  for (int64_t i = 0; i < c.numel(); ++i) c.set(i, nd(rng));
  int bv = g.add_constant("B", b), cv = g.add_constant("C", c);
  Attributes tp;
  tp.set("perm", std::vector<int64_t>{0, 2, 3, 1});
  int t = g.add_node("Transpose", "t", {x}, tp);
  Attributes fa;
  fa.set("axis", int64_t{1});
  int f = g.add_node("Flatten", "flat", {g.nodes[static_cast<size_t>(t)].outputs[0]}, fa);
  Attributes ga;
  if (trans_b) ga.set("transB", int64_t{1});
  int m = g.add_node("Gemm", "fc", {g.nodes[static_cast<size_t>(f)].outputs[0], bv, cv}, ga);
  g.outputs.push_back(g.nodes[static_cast<size_t>(m)].outputs[0]);
  g.infer_shapes();
  return g;
}

class KerasFoldTransposeGemmPass : public testing::TestWithParam<bool> {};
TEST_P(KerasFoldTransposeGemmPass, OutputsUnchangedAndTransposeGone) {
  Graph g = transpose_flatten_gemm_graph(GetParam());
  Tensor x(DType::f32, {2, 3, 4, 5});
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, nd(rng));
  SessionOptions plain;
  plain.optimize = false;
  Session ref(g, plain);
  Tensor want = ref.run({{"x", x}}).begin()->second;
  // the pass on its own
  Graph g2 = g;
  passes::fold_transpose_into_gemm(g2, {});
  g2.compact();
  g2.infer_shapes();
  for (const auto& n : g2.nodes) EXPECT_NE(n.op, "Transpose");
  SessionOptions noopt;
  noopt.optimize = false;
  Session s2(g2, noopt);
  EXPECT_LT(max_abs_diff(s2.run({{"x", x}}).begin()->second, want), 1e-4);
  // through the default pipeline
  Session s3(g);
  for (const auto& n : s3.graph().nodes) EXPECT_NE(n.op, "Transpose");
  EXPECT_LT(max_abs_diff(s3.run({{"x", x}}).begin()->second, want), 1e-4);
}
TEST_P(KerasFoldTransposeGemmPass, TappedFlattenKeepsTranspose) {
  Graph g = transpose_flatten_gemm_graph(GetParam());
  Graph g2 = g;
  passes::fold_transpose_into_gemm(g2, {"flat"});
  int transposes = 0;
  for (const auto& n : g2.nodes) transposes += (!n.dead && n.op == "Transpose");
  EXPECT_EQ(transposes, 1);
}
INSTANTIATE_TEST_SUITE_P(Keras, KerasFoldTransposeGemmPass, testing::Values(false, true),
                         [](const auto& i) { return std::string(i.param ? "transB" : "plainB"); });

// ------------------------------------------------------------------ Flatten order

struct FlattenCase {
  const char* name;
  const char* dir;
  bool channels_first;
};
class KerasFlattenOrder : public testing::TestWithParam<FlattenCase> {};
TEST_P(KerasFlattenOrder, ExplicitTransposeThenFoldedIntoDense) {
  const auto& c = GetParam();
  std::string d = fixture(c.dir);
  ImportOptions opt;
  Tensor x = read_npy(d + "/inputs/" + "conv2d_1_input.npy");
  opt.input_shapes["conv2d_1_input"] = x.shape();
  Graph g = import_model({d + "/model.h5"}, opt);
  // the imported graph flattens Keras's order explicitly: a Transpose feeds the Flatten
  int flat = -1;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].op == "Flatten") flat = static_cast<int>(i);
  ASSERT_GE(flat, 0);
  int producer =
      g.values[static_cast<size_t>(g.nodes[static_cast<size_t>(flat)].inputs[0])].producer;
  ASSERT_GE(producer, 0);
  EXPECT_EQ(g.nodes[static_cast<size_t>(producer)].op, "Transpose");
  EXPECT_EQ(g.nodes[static_cast<size_t>(producer)].attrs.get_ints("perm"),
            (std::vector<int64_t>{0, 2, 3, 1}));
  // optimized: the Transpose before the Flatten is folded into the Dense weights (the input's
  // NHWC -> NCHW Transpose of channels_last models stays), and the output equals Keras's
  int before = 0, after = 0;
  for (const auto& n : g.nodes) before += n.op == "Transpose";
  Session s(g);
  const Graph& cg = s.graph();
  for (const auto& n : cg.nodes) {
    after += n.op == "Transpose";
    if (n.op != "Flatten") continue;
    int p = cg.values[static_cast<size_t>(n.inputs[0])].producer;
    EXPECT_TRUE(p < 0 || cg.nodes[static_cast<size_t>(p)].op != "Transpose");
  }
  EXPECT_EQ(after, before - 1);
  Tensor want = read_npy(d + "/outputs/dense_1.npy");
  Tensor got = s.run({{"conv2d_1_input", x}}).at("dense_1");
  EXPECT_LT(max_abs_diff(got, want), 1e-4);
  // and without the pass the result is the same
  SessionOptions o;
  o.optimize = false;
  Session s2(g, o);
  EXPECT_LT(max_abs_diff(s2.run({{"conv2d_1_input", x}}).at("dense_1"), want), 1e-4);
}
INSTANTIATE_TEST_SUITE_P(Keras, KerasFlattenOrder,
                         testing::Values(FlattenCase{"channels_last", "flatten_conv_dense", false},
                                         FlattenCase{"channels_first",
                                                     "channels_first_conv_pool_dense", true}),
                         [](const auto& i) { return std::string(i.param.name); });

TEST(KerasLayout, InputsStayNhwcAndOutputsCarryProvenance) {
  Graph g = import_model({fixture("flatten_conv_dense/model.h5")});
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.values[static_cast<size_t>(g.inputs[0])].shape,
            (Shape{1, 7, 7, 3}));  // NHWC, batch 1
  int conv = g.find_value_by_any_name("conv2d_1");
  ASSERT_GE(conv, 0);
  const Value& v = g.values[static_cast<size_t>(conv)];
  EXPECT_EQ(v.prov.framework, "keras");
  EXPECT_EQ(v.prov.to_source, (std::vector<int>{0, 2, 3, 1}));
  EXPECT_EQ(v.prov.source_layout, "NHWC");
  EXPECT_EQ(v.shape, (Shape{1, 4, 5, 5}));  // canonical NCHW
  EXPECT_EQ(g.nodes[static_cast<size_t>(v.producer)].source_op, "Conv2D");
}

// ------------------------------------------------------------------ malformed inputs

struct Malformed {
  const char* name;
  std::function<std::vector<std::string>(const std::string& tmp)> make;
  const char* node;   // expected Error::node() ("" = any)
  const char* field;  // expected Error::field() ("" = any)
  const char* text;   // expected substring of what()
};

std::string edit_config(const std::string& dir, const std::string& from, const std::string& to) {
  std::string s = read_file(fixture(dir) + "/config.json");
  auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

std::vector<Malformed> malformed_cases() {
  return {
      {"truncated_h5",
       [](const std::string& t) {
         std::string s = read_file(fixture("conv2d_valid_s1_odd9/model.h5"));
         write_file(t + "/trunc.h5", s.substr(0, s.size() / 2));
         return std::vector<std::string>{t + "/trunc.h5"};
       },
       "", "", "HDF5"},
      {"not_hdf5",
       [](const std::string& t) {
         write_file(t + "/garbage.h5", "this is not an HDF5 file at all");
         return std::vector<std::string>{t + "/garbage.h5"};
       },
       "", "", "not an HDF5 file"},
      {"weights_only_h5",
       [](const std::string& t) {
         return std::vector<std::string>{fixture("vgg_small/weights.h5")};
       },
       "", "model_config", "only weights"},
      {"weight_shape_mismatch",
       [](const std::string& t) {
         // the config says 9 filters, the file holds 8
         write_file(t + "/c.json", edit_config("vgg_small", "\"filters\": 8", "\"filters\": 9"));
         return std::vector<std::string>{t + "/c.json", fixture("vgg_small/weights.h5")};
       },
       "s0_conv1", "kernel", "has shape (3, 3, 3, 8), the config implies (3, 3, 3, 9)"},
      {"missing_weights",
       [](const std::string& t) {
         // a layer the weights file does not know
         write_file(t + "/c.json",
                    edit_config("vgg_small", "\"name\": \"fc2\"", "\"name\": \"fc_new\""));
         return std::vector<std::string>{fixture("vgg_small/weights.h5"), t + "/c.json"};
       },
       "fc_new", "kernel", "missing"},
      {"hostile_input_size",
       [](const std::string& t) {
         write_file(t + "/c.json",
                    edit_config("vgg_small", "48,\n      48,", "4800000,\n      4800000,"));
         return std::vector<std::string>{t + "/c.json", fixture("vgg_small/weights.h5")};
       },
       "", "", "hostile"},
      {"hostile_reshape",
       [](const std::string& t) {
         std::string s = read_file(fixture("mobilenet_small/config.json"));
         std::regex re("\"target_shape\": \\[\\s*1,\\s*1,\\s*32\\s*\\]");
         s = std::regex_replace(s, re, "\"target_shape\": [4611686018427387904, 2]",
                                std::regex_constants::format_first_only);
         write_file(t + "/c.json", s);
         return std::vector<std::string>{t + "/c.json", fixture("mobilenet_small/weights.h5")};
       },
       "reshape", "target_shape", ""},
      // byte-mutated model.h5 files whose variable-length string heaps are corrupt: HDF5 1.10
      // itself crashed reading them (tests/data/fixtures/keras-malformed/README.md)
      {"corrupt_heap_model_config",
       [](const std::string& t) {
         return std::vector<std::string>{
             std::string(ANVIL_SOURCE_DIR) +
             "/tests/data/fixtures/keras-malformed/corrupt_heap_model_config.h5"};
       },
       "", "", "model_config"},  // corrupt heap: a child crash, or garbage that is not JSON
      {"corrupt_heap_backend",
       [](const std::string& t) {
         return std::vector<std::string>{
             std::string(ANVIL_SOURCE_DIR) +
             "/tests/data/fixtures/keras-malformed/corrupt_heap_backend.h5"};
       },
       "", "@backend", "corrupt HDF5 file"},
      {"bad_json",
       [](const std::string& t) {
         write_file(t + "/c.json", "{\"class_name\": \"Sequential\", \"config\": [");
         return std::vector<std::string>{t + "/c.json", fixture("vgg_small/weights.h5")};
       },
       "", "", "invalid JSON"},
  };
}

class KerasMalformed : public testing::TestWithParam<Malformed> {};
TEST_P(KerasMalformed, ThrowsAnvilErrorNamingLayerAndWeight) {
  const auto& c = GetParam();
  std::string t = tmpdir() + "/" + c.name;
  fs::create_directories(t);
  auto files = c.make(t);
  try {
    Graph g = import_model(files);
    Session s(g);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string what = e.what();
    if (*c.node) EXPECT_EQ(e.node(), c.node) << what;
    if (*c.field) EXPECT_EQ(e.field(), c.field) << what;
    EXPECT_NE(what.find(c.text), std::string::npos) << what;
  }
}
INSTANTIATE_TEST_SUITE_P(Keras, KerasMalformed, testing::ValuesIn(malformed_cases()),
                         [](const auto& i) { return std::string(i.param.name); });

TEST(KerasUnsupported, LambdaAndUnknownLayersListedAtOnce) {
  std::string t = tmpdir() + "/unsupported";
  fs::create_directories(t);
  std::string s = read_file(fixture("vgg_small/config.json"));
  // turn two layers into a Lambda and an unknown class
  auto rep = [&](const std::string& from, const std::string& to) {
    auto p = s.find(from);
    ASSERT_NE(p, std::string::npos);
    s.replace(p, from.size(), to);
  };
  rep("\"class_name\": \"Dropout\"", "\"class_name\": \"Lambda\"");
  rep("\"class_name\": \"Flatten\"", "\"class_name\": \"MyCustomFlatten\"");
  write_file(t + "/c.json", s);
  try {
    import_model({t + "/c.json", fixture("vgg_small/weights.h5")});
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("2 unsupported layer"), std::string::npos) << w;
    EXPECT_NE(w.find("drop (Lambda)"), std::string::npos) << w;
    EXPECT_NE(w.find("flatten (MyCustomFlatten)"), std::string::npos) << w;
  }
}

}  // namespace

// ------------------------------------------------------------------ summary

namespace {
TEST(KerasSummary, OneRowPerKerasLayerWithKerasParamCounts) {
  Graph g = import_model({fixture("mobilenet_small/model.h5")});
  g.infer_shapes();
  std::string s = summary(g);
  // Keras model.summary(): stem_conv 3*3*3*8 = 216, each BN 4*C, depthwise 9*C, pointwise
  // C_in*C_out, conv_preds 32*10 + 10: (216+32) + (72+32+128+64) + (144+64+256+64) +
  // (144+64+384+96) + (216+96+576+96) + (216+96+768+128) + (288+128+1024+128) + 330 = 5850
  EXPECT_NE(s.find("Total params: 5,850\n"), std::string::npos) << s;  // Keras's '{:,}'
  // moving mean + variance of the 13 BN layers: 2 * (8+8+16+16+16+16+24+24+24+24+32+32+32) = 544
  EXPECT_NE(s.find("Non-trainable params: 544\n"), std::string::npos) << s;
  std::istringstream ls(s);
  std::string line;
  int rows = 0;
  while (std::getline(ls, line)) {
    if (line.rfind("b3_dw_bn ", 0) == 0) {
      EXPECT_NE(line.find("BatchNormalization"), std::string::npos) << line;
      EXPECT_NE(line.find("(None, 8, 8, 24)"), std::string::npos) << line;  // Keras's notation
      EXPECT_NE(line.find(" 96"), std::string::npos) << line;               // 4 * 24
    }
    if (line.rfind("stem_pad ", 0) == 0)
      EXPECT_EQ(line.back(), '0') << line;                          // ZeroPadding: no params
    EXPECT_EQ(line.find("/Transpose"), std::string::npos) << line;  // layout helpers are grouped
    ++rows;
  }
  EXPECT_GT(rows, 40);
}
}  // namespace
