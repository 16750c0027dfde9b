// Keras sequence and 3-D layers in the other forms a user has them, each built from a
// keras-seq fixture's weights (real Keras 2.3.1) so that Keras's own numbers are the expected
// values: Keras 3 .keras files (LSTM cell weights, Bidirectional forward/backward layers),
// Keras 1 per-gate recurrent weights, CuDNNLSTM's split biases, and the 3-D layers with
// data_format channels_first (the same model on the transposed input gives the transposed
// output).
#include <gtest/gtest.h>

#include "anvil/error.h"
#include "anvil/npy.h"
#include "keras_formats_test_util.h"

using namespace anvil;
using namespace anvil::keras_formats_test;

namespace {

std::string seq_fixture(const std::string& c) {
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/keras-seq/" + c;
}

Tensor keras_act(const std::string& c, const std::string& tap) {
  return read_npz(seq_fixture(c) + "/activations.npz").at(tap);
}

Tensor seq_input(const std::string& c, const std::string& name) {
  return read_npy(seq_fixture(c) + "/inputs/" + name + ".npy");
}

/// Runs a model on x (its only input) on the reference backend; returns the fetched tensor.
Tensor run_on(const std::vector<std::string>& files, const Tensor& x, const std::string& fetch) {
  ImportOptions o;
  o.default_dim = x.dim(0);
  Graph g = import_model(files, o);
  SessionOptions so;
  so.backend = "reference";
  Session s(g, so);
  std::string in = g.values[static_cast<size_t>(g.inputs.at(0))].name;
  return s.run({{in, x}}, {fetch}).at(fetch);
}

json k3_input(const std::vector<int64_t>& shape) {
  json bs = json::array({nullptr});
  for (int64_t d : shape) bs.push_back(d);
  return {{"module", "keras.layers"},
          {"class_name", "InputLayer"},
          {"config", {{"batch_shape", bs}, {"dtype", "float32"}, {"name", "input_layer"}}}};
}

json k3_recurrent(const std::string& cls, const std::string& name, int units, json extra) {
  json c = {{"name", name},
            {"trainable", true},
            {"units", units},
            {"activation", "tanh"},
            {"recurrent_activation", "sigmoid"},
            {"use_bias", true},
            {"return_sequences", false},
            {"return_state", false},
            {"go_backwards", false},
            {"stateful", false},
            {"unroll", false}};
  for (auto it = extra.begin(); it != extra.end(); ++it) c[it.key()] = it.value();
  return {{"module", "keras.layers"}, {"class_name", cls}, {"config", c}};
}

std::string write_keras3(const std::string& dir, const json& layers,
                         const std::map<std::string, std::vector<Tensor>>& vars) {
  json cfg = {{"module", "keras"},
              {"class_name", "Sequential"},
              {"config", {{"name", "sequential"}, {"layers", layers}}}};
  std::string wpath = dir + "/model.weights.h5";
  {
    H5Writer w(wpath);
    for (const auto& [group, ts] : vars)
      for (size_t i = 0; i < ts.size(); ++i)
        w.dataset("layers/" + group + "/vars/" + std::to_string(i), ts[i]);
    w.group("vars");
  }
  std::string kpath = dir + "/model.keras";
  write_zip(kpath, {{"config.json", cfg.dump()},
                    {"metadata.json", R"({"keras_version": "3.3.3", "date_saved": "2024-01-01"})"},
                    {"model.weights.h5", read_file(wpath)}});
  return kpath;
}

/// Columns [g*h, (g+1)*h) of a (rows, G*h) matrix (one gate's block of a Keras 2 kernel).
Tensor gate_cols(const Tensor& k, int64_t g, int64_t h) {
  const int64_t rows = k.rank() == 1 ? 1 : k.dim(0), cols = k.dim(k.rank() - 1);
  Tensor out(DType::f32, k.rank() == 1 ? Shape{h} : Shape{rows, h});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < h; ++j) out.set(r * h + j, k.get(r * cols + g * h + j));
  return out;
}

}  // namespace

// lstm_last_hard_sigmoid's LSTM(8) as a Keras 3 .keras file: the weights live in the layer's
// cell (layers/lstm/cell/vars).
TEST(KerasSeqFormats, Keras3Lstm) {
  const std::string c = "lstm_last_hard_sigmoid";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "lstm_1");
  ASSERT_EQ(ws.size(), 3u);
  std::string k =
      write_keras3(tmpdir("k3lstm"), {k3_input({9, 5}), k3_recurrent("LSTM", "lstm", 8, {})},
                   {{"lstm/cell", ws}});
  Tensor y = run_on({k}, seq_input(c, "lstm_1_input"), "lstm");
  EXPECT_LT(max_abs_diff(y, keras_act(c, "lstm_1")), 1e-5);
}

// bidirectional_gru_sum_seq as a Keras 3 file: forward_layer/cell then backward_layer/cell.
TEST(KerasSeqFormats, Keras3BidirectionalGru) {
  const std::string c = "bidirectional_gru_sum_seq";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "bidirectional_1");
  ASSERT_EQ(ws.size(), 6u);
  json gru = k3_recurrent("GRU", "gru", 4, {{"return_sequences", true}, {"reset_after", false}});
  json bi = {{"module", "keras.layers"},
             {"class_name", "Bidirectional"},
             {"config", {{"name", "bidirectional"}, {"layer", gru}, {"merge_mode", "sum"}}}};
  std::string k = write_keras3(tmpdir("k3bigru"), {k3_input({6, 3}), bi},
                               {{"bidirectional/forward_layer/cell", {ws[0], ws[1], ws[2]}},
                                {"bidirectional/backward_layer/cell", {ws[3], ws[4], ws[5]}}});
  Tensor y = run_on({k}, seq_input(c, "bidirectional_1_input"), "bidirectional");
  EXPECT_LT(max_abs_diff(y, keras_act(c, "bidirectional_1")), 1e-5);
}

// Keras 1 LSTM weights: (W, U, b) per gate, stored i, c, f, o; config output_dim and
// inner_activation.
TEST(KerasSeqFormats, Keras1LstmWeights) {
  const std::string c = "lstm_last_hard_sigmoid";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "lstm_1");
  const int64_t h = 8;
  LayerWeights k1;
  // Keras 2 gate blocks i, f, c, o = 0, 1, 2, 3; Keras 1 stores i, c, f, o
  for (auto [g, tag] : {std::pair<int64_t, const char*>{0, "i"}, {2, "c"}, {1, "f"}, {3, "o"}}) {
    k1.push_back({std::string("W_") + tag, gate_cols(ws[0], g, h)});
    k1.push_back({std::string("U_") + tag, gate_cols(ws[1], g, h)});
    k1.push_back({std::string("b_") + tag, gate_cols(ws[2], g, h)});
  }
  json layers = json::array({layer("LSTM", {{"name", "lstm_1"},
                                            {"batch_input_shape", {nullptr, 9, 5}},
                                            {"output_dim", 8},
                                            {"activation", "tanh"},
                                            {"inner_activation", "sigmoid"},
                                            {"return_sequences", false}})});
  std::string f = write_keras2(tmpdir("k1lstm") + "/m.h5", seq(layers), {{"lstm_1", k1}},
                               names_of(layers), "1.2.2");
  Tensor y = run_on({f}, seq_input(c, "lstm_1_input"), "lstm_1");
  EXPECT_LT(max_abs_diff(y, keras_act(c, "lstm_1")), 1e-5);
}

// CuDNNLSTM: kernel, recurrent_kernel and an (8*units) bias, input and recurrent halves added;
// sigmoid/tanh fixed. The fixture's bias split in two halves gives Keras's LSTM output.
TEST(KerasSeqFormats, CuDNNLstmSplitBias) {
  const std::string c = "lstm_last_hard_sigmoid";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "lstm_1");
  Tensor b(DType::f32, Shape{64});
  for (int64_t i = 0; i < 32; ++i) {
    b.set(i, 0.25 * ws[2].get(i));
    b.set(32 + i, 0.75 * ws[2].get(i));
  }
  json layers = json::array({layer("CuDNNLSTM", {{"name", "lstm_1"},
                                                 {"batch_input_shape", {nullptr, 9, 5}},
                                                 {"units", 8},
                                                 {"return_sequences", false}})});
  std::string f =
      write_keras2(tmpdir("cudnnlstm") + "/m.h5", seq(layers),
                   {{"lstm_1", {{"kernel", ws[0]}, {"recurrent_kernel", ws[1]}, {"bias", b}}}},
                   names_of(layers));
  Tensor y = run_on({f}, seq_input(c, "lstm_1_input"), "lstm_1");
  EXPECT_LT(max_abs_diff(y, keras_act(c, "lstm_1")), 1e-5);
}

// The 3-D cases with data_format channels_first on every layer: the input transposed
// NDHWC -> NCDHW gives Keras's outputs transposed the same way (the Theano-backend files
// flip Conv3D kernels in both formats).
TEST(KerasSeqFormats, ThreeDChannelsFirst) {
  for (auto [c, in, tap] :
       {std::tuple<const char*, const char*, const char*>{"zeropad3d_upsample3d_crop3d",
                                                          "zero_padding3d_1_input", "cropping3d_1"},
        {"conv3d_valid", "conv3d_1_input", "conv3d_1"},
        {"conv3d_same_s2_pool", "conv3d_1_input", "average_pooling3d_1"}}) {
    auto h5 = keras::H5File::open(seq_fixture(c) + "/model.h5");
    json cfg = json::parse(h5.attr_string("/", "model_config"));
    json& layers = cfg["config"]["layers"];
    for (auto& l : layers) {
      l["config"]["data_format"] = "channels_first";
      if (l["config"].contains("batch_input_shape")) {
        json& b = l["config"]["batch_input_shape"];
        b = json::array({nullptr, b[4], b[1], b[2], b[3]});
      }
    }
    std::string jpath = tmpdir("cf3d") + "/" + c + ".json";
    std::ofstream(jpath) << cfg.dump();
    Tensor x = transpose(seq_input(c, in), {0, 4, 1, 2, 3});
    Tensor y = run_on({jpath, seq_fixture(c) + "/model.h5"}, x, tap);
    Tensor want = transpose(keras_act(c, tap), {0, 4, 1, 2, 3});
    EXPECT_LT(max_abs_diff(y, want), 1e-5) << c;
  }
}

// masking_lstm with an identity Dense between Masking and LSTM: the mask passes through Dense
// (Keras's supports_masking), so the output is still Keras's masked one.
TEST(KerasSeqFormats, MaskPassesThroughDense) {
  const std::string c = "masking_lstm";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "lstm_1");
  Tensor eye(DType::f32, Shape{3, 3}), zero(DType::f32, Shape{3});
  for (int64_t i = 0; i < 9; ++i) eye.set(i, i % 4 == 0 ? 1.0 : 0.0);
  for (int64_t i = 0; i < 3; ++i) zero.set(i, 0.0);
  json layers = json::array(
      {layer("Masking",
             {{"name", "masking_1"}, {"batch_input_shape", {nullptr, 8, 3}}, {"mask_value", 0.0}}),
       layer("Dense", {{"name", "dense_1"}, {"units", 3}, {"activation", "linear"}}),
       layer("LSTM", {{"name", "lstm_1"},
                      {"units", 5},
                      {"activation", "tanh"},
                      {"recurrent_activation", "sigmoid"}})});
  std::string f =
      write_keras2(tmpdir("maskdense") + "/m.h5", seq(layers),
                   {{"dense_1", {{"kernel", eye}, {"bias", zero}}},
                    {"lstm_1", {{"kernel", ws[0]}, {"recurrent_kernel", ws[1]}, {"bias", ws[2]}}}},
                   names_of(layers));
  Tensor y = run_on({f}, seq_input(c, "masking_1_input"), "lstm_1");
  EXPECT_LT(max_abs_diff(y, keras_act(c, "lstm_1")), 1e-5);
}

// Keras 3 changed hard_sigmoid to relu6(x + 3) / 6: HardSigmoid(alpha 1/6, beta 0.5).
TEST(KerasSeqFormats, Keras3HardSigmoid) {
  const std::string c = "lstm_last_hard_sigmoid";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "lstm_1");
  std::string k =
      write_keras3(tmpdir("k3hs"),
                   {k3_input({9, 5}),
                    k3_recurrent("LSTM", "lstm", 8, {{"recurrent_activation", "hard_sigmoid"}})},
                   {{"lstm/cell", ws}});
  ImportOptions o;
  o.default_dim = 2;
  Graph g = import_model({k}, o);
  const Node* n = nullptr;
  for (const auto& nd : g.nodes)
    if (nd.op == "LSTM") n = &nd;
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->attrs.get_strings("activations"),
            (std::vector<std::string>{"HardSigmoid", "Tanh", "Tanh"}));
  EXPECT_EQ(n->attrs.get_floats("activation_alpha"), (std::vector<double>{1.0 / 6.0}));
}

// TimeDistributed over any layer: keras/conv2d_valid_s1_even8's Conv2D wrapped, its two batch
// samples as two time steps of one sequence, gives Keras's two outputs as the two steps.
TEST(KerasSeqFormats, TimeDistributedConv2D) {
  const std::string d = fixture("conv2d_valid_s1_even8");
  auto h5 = keras::H5File::open(d + "/model.h5");
  json cfg = json::parse(h5.attr_string("/", "model_config"));
  json& layers = cfg["config"]["layers"];
  json inner = layers[0];
  inner["config"].erase("batch_input_shape");
  layers = json::array(
      {{{"class_name", "TimeDistributed"},
        {"config",
         {{"name", "conv2d_1"}, {"batch_input_shape", {nullptr, 2, 8, 8, 3}}, {"layer", inner}}}}});
  std::string jpath = tmpdir("tdconv") + "/td.json";
  std::ofstream(jpath) << cfg.dump();
  Tensor x = read_npy(d + "/inputs/conv2d_1_input.npy");  // (2, 8, 8, 3)
  Tensor want = read_npy(d + "/outputs/conv2d_1.npy");    // (2, 6, 6, 4)
  Tensor y = run_on({jpath, d + "/model.h5"}, x.reshaped({1, 2, 8, 8, 3}), "conv2d_1");
  EXPECT_LT(max_abs_diff(y, want.reshaped({1, 2, 6, 6, 4})), 1e-5);
}

// Keras 1 GRU weights: (W, U, b) per gate in z, r, h order.
TEST(KerasSeqFormats, Keras1GruWeights) {
  const std::string c = "gru_last_reset_before";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "gru_1");
  ASSERT_EQ(ws.size(), 3u);
  const int64_t h = 6;
  LayerWeights k1;
  for (auto [g, tag] : {std::pair<int64_t, const char*>{0, "z"}, {1, "r"}, {2, "h"}}) {
    k1.push_back({std::string("W_") + tag, gate_cols(ws[0], g, h)});
    k1.push_back({std::string("U_") + tag, gate_cols(ws[1], g, h)});
    k1.push_back({std::string("b_") + tag, gate_cols(ws[2], g, h)});
  }
  json layers = json::array({layer("GRU", {{"name", "gru_1"},
                                           {"batch_input_shape", {nullptr, 7, 5}},
                                           {"output_dim", 6},
                                           {"activation", "tanh"},
                                           {"inner_activation", "sigmoid"}})});
  std::string f = write_keras2(tmpdir("k1gru") + "/m.h5", seq(layers), {{"gru_1", k1}},
                               names_of(layers), "1.2.2");
  Tensor y = run_on({f}, seq_input(c, "gru_1_input"), "gru_1");
  EXPECT_LT(max_abs_diff(y, keras_act(c, "gru_1")), 1e-5);
}

// Weights that do not fit the config are refused with the layer and the weight named.
TEST(KerasSeqFormats, RecurrentWeightShapeErrors) {
  const std::string c = "lstm_last_hard_sigmoid";
  auto h5 = keras::H5File::open(seq_fixture(c) + "/model.h5");
  json cfg = json::parse(h5.attr_string("/", "model_config"));
  cfg["config"]["layers"][0]["config"]["units"] = 7;
  std::string jpath = tmpdir("recbad") + "/units7.json";
  std::ofstream(jpath) << cfg.dump();
  try {
    import_model({jpath, seq_fixture(c) + "/model.h5"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "lstm_1") << e.what();
    EXPECT_EQ(e.field(), "kernel") << e.what();
    EXPECT_NE(std::string(e.what()).find("(5, 28)"), std::string::npos) << e.what();
  }
}

// CuDNNGRU is GRU(reset_after=True, sigmoid) with its (2, 3*units) bias flattened to 6*units.
TEST(KerasSeqFormats, CuDNNGruFlatBias) {
  const std::string c = "gru_seq_reset_after";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "gru_1");
  ASSERT_EQ(ws[2].shape(), (Shape{2, 15}));
  json layers = json::array({layer("CuDNNGRU", {{"name", "gru_1"},
                                                {"batch_input_shape", {nullptr, 6, 4}},
                                                {"units", 5},
                                                {"return_sequences", true}})});
  std::string f = write_keras2(
      tmpdir("cudnngru") + "/m.h5", seq(layers),
      {{"gru_1", {{"kernel", ws[0]}, {"recurrent_kernel", ws[1]}, {"bias", ws[2].reshaped({30})}}}},
      names_of(layers));
  Tensor y = run_on({f}, seq_input(c, "gru_1_input"), "gru_1");
  EXPECT_LT(max_abs_diff(y, keras_act(c, "gru_1")), 1e-5);
}

// Bidirectional over a masked input (masking_lstm's LSTM weights in both directions,
// merge_mode None): the forward half is Keras's masked output; the backward half skips the
// 3 masked tail steps of sample 1 too, so it ends where go_backwards over its 5 real steps does.
TEST(KerasSeqFormats, BidirectionalMasked) {
  const std::string c = "masking_lstm";
  auto ws = fixture_weights(seq_fixture(c) + "/model.h5", "lstm_1");
  json lstm = layer("LSTM", {{"name", "lstm_1"},
                             {"units", 5},
                             {"activation", "tanh"},
                             {"recurrent_activation", "sigmoid"}});
  json layers = json::array(
      {layer("Masking",
             {{"name", "masking_1"}, {"batch_input_shape", {nullptr, 8, 3}}, {"mask_value", 0.0}}),
       layer("Bidirectional", {{"name", "bi"}, {"layer", lstm}, {"merge_mode", nullptr}})});
  LayerWeights both;
  for (const char* dir : {"forward_lstm_1/", "backward_lstm_1/"}) {
    both.push_back({std::string(dir) + "kernel", ws[0]});
    both.push_back({std::string(dir) + "recurrent_kernel", ws[1]});
    both.push_back({std::string(dir) + "bias", ws[2]});
  }
  std::string f =
      write_keras2(tmpdir("bimask") + "/m.h5", seq(layers), {{"bi", both}}, names_of(layers));
  Tensor x = seq_input(c, "masking_1_input");  // (2, 8, 3), sample 1's last 3 steps zero
  EXPECT_LT(max_abs_diff(run_on({f}, x, "bi"), keras_act(c, "lstm_1")), 1e-5);
  Tensor bw = run_on({f}, x, "bi:1");
  // go_backwards over sample 1's 5 real steps
  json one = json::array({layer("LSTM", {{"name", "lstm_1"},
                                         {"batch_input_shape", {nullptr, 5, 3}},
                                         {"units", 5},
                                         {"activation", "tanh"},
                                         {"recurrent_activation", "sigmoid"},
                                         {"go_backwards", true}})});
  std::string g =
      write_keras2(tmpdir("bimask") + "/one.h5", seq(one),
                   {{"lstm_1", {{"kernel", ws[0]}, {"recurrent_kernel", ws[1]}, {"bias", ws[2]}}}},
                   names_of(one));
  Tensor x1(DType::f32, Shape{1, 5, 3});
  for (int64_t i = 0; i < 15; ++i) x1.set(i, x.get(24 + i));
  Tensor want = run_on({g}, x1, "lstm_1");
  for (int64_t k = 0; k < 5; ++k) EXPECT_NEAR(bw.get(5 + k), want.get(k), 1e-6) << k;
}
