// Keras recurrent-layer rules, one test each: gate order, reset_after, hard_sigmoid,
// go_backwards, masking, Bidirectional merge modes, return_state, Embedding masks. Each checks
// the rule's own conversion and the real Keras 2.3.1 numbers of the keras-seq fixtures
// (tests/data/fixtures/keras-seq): either a layer's output directly or, for the rules a
// fixture shows only in combination, a variant of the fixture's model (its config edited, the
// same weights) whose output Keras's rule ties to the fixture's (e.g. go_backwards = the
// forward layer on the time-reversed input).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "anvil/summary.h"
#include "anvil/verify.h"
#include "import/keras/hdf5_file.h"
#include "import/keras/keras_convert.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace anvil;
using namespace anvil::keras;

namespace {

std::string seq_case(const std::string& c) {
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/keras-seq/" + c;
}

Tensor input_of(const std::string& c, const std::string& name) {
  return read_npy(seq_case(c) + "/inputs/" + name + ".npy");
}

Tensor keras_act(const std::string& c, const std::string& tap) {
  return read_npz(seq_case(c) + "/activations.npz").at(tap);
}

/// Runs `files` on `x` (the only input) and returns the tapped layers.
std::map<std::string, Tensor> run(const std::vector<std::string>& files, const Tensor& x,
                                  const std::vector<std::string>& taps,
                                  const std::string& backend = "reference") {
  ImportOptions o;
  o.default_dim = x.dim(0);  // the batch
  Graph g = import_model(files, o);
  SessionOptions so;
  so.backend = backend;
  so.taps = taps;
  Session s(g, so);
  std::string in = g.values[static_cast<size_t>(g.inputs.at(0))].name;
  return s.run({{in, x}}, taps);
}

/// The fixture's model config, edited by `edit`, written next to a copy path; returns the
/// {config.json, model.h5} pair that imports the edited model with the fixture's weights.
std::vector<std::string> edited(const std::string& c, const std::string& tag,
                                const std::function<void(json&)>& edit) {
  H5File f = H5File::open(seq_case(c) + "/model.h5");
  json cfg = json::parse(f.attr_string("/", "model_config"));
  edit(cfg);
  fs::path d = fs::temp_directory_path() / ("anvil_keras_rec_" + std::to_string(::getpid()));
  fs::create_directories(d);
  std::string p = (d / (c + "_" + tag + ".json")).string();
  std::ofstream(p) << cfg.dump();
  return {p, seq_case(c) + "/model.h5"};
}

json& layer_cfg(json& model, size_t k) { return model["config"]["layers"][k]["config"]; }

/// x (N, T, ...) with its time axis reversed.
Tensor reverse_time(const Tensor& x) {
  Tensor src = x.to(DType::f32);
  Tensor y = src.clone();
  const int64_t n = x.dim(0), t = x.dim(1), inner = x.numel() / (n * t);
  const float* a = src.data<float>();
  float* b = y.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = 0; s < t; ++s)
      for (int64_t k = 0; k < inner; ++k)
        b[(i * t + s) * inner + k] = a[(i * t + (t - 1 - s)) * inner + k];
  return y;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what,
                  double tol = 1e-5) {
  Comparison c = compare_tensors(got, want, tol, tol);
  EXPECT_TRUE(c.ok()) << what << ": "
                      << (c.shape_match
                              ? c.describe()
                              : shape_str(got.shape()) + " vs " + shape_str(want.shape()));
}

const Node* find_op(const Graph& g, const std::string& op) {
  for (const auto& n : g.nodes)
    if (n.op == op) return &n;
  return nullptr;
}

}  // namespace

// Keras LSTM kernels hold the gates i, f, c, o in column blocks; the canonical (ONNX) W holds
// i, o, f, c in row blocks.
TEST(KerasRecurrentRules, LstmGateOrder) {
  // in = 2, units = 1: column j of gate g holds 10*g + row
  Tensor k = Tensor::from_vector<float>({2, 4}, {0, 10, 20, 30, 1, 11, 21, 31});
  Tensor w = rnn_kernel_to_onnx(k, kLstmGateOrder);
  ASSERT_EQ(w.shape(), (Shape{1, 4, 2}));
  // ONNX rows: i (Keras 0), o (Keras 3), f (Keras 1), c (Keras 2)
  const std::vector<float> want{0, 1, 30, 31, 10, 11, 20, 21};
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(w.get(i), want[static_cast<size_t>(i)]) << i;
  Tensor b =
      rnn_bias_to_onnx(Tensor::from_vector<float>({4}, {1, 2, 3, 4}), Tensor(), kLstmGateOrder, 1);
  ASSERT_EQ(b.shape(), (Shape{1, 8}));
  const std::vector<float> wb{1, 4, 2, 3, 0, 0, 0, 0};
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(b.get(i), wb[static_cast<size_t>(i)]) << i;
  // and Keras's numbers
  const std::string c = "lstm_last_hard_sigmoid";
  auto got = run({seq_case(c) + "/model.h5"}, input_of(c, "lstm_1_input"), {"lstm_1"});
  expect_close(got["lstm_1"], keras_act(c, "lstm_1"), c);
}

// GRU: z, r, h in both; reset_after=True is linear_before_reset=1 with the (2, 3*units) bias
// split into the input and recurrent biases; reset_after=False is linear_before_reset=0.
TEST(KerasRecurrentRules, GruResetAfter) {
  for (auto [c, lbr] : {std::pair<const char*, int64_t>{"gru_seq_reset_after", 1},
                        std::pair<const char*, int64_t>{"gru_last_reset_before", 0}}) {
    Graph g = import_model({seq_case(c) + "/model.h5"}, {});
    const Node* n = find_op(g, "GRU");
    ASSERT_NE(n, nullptr) << c;
    EXPECT_EQ(n->attrs.get_int("linear_before_reset", -1), lbr) << c;
    auto got = run({seq_case(c) + "/model.h5"}, input_of(c, "gru_1_input"), {"gru_1"});
    expect_close(got["gru_1"], keras_act(c, "gru_1"), c);
  }
  // the other mode on the same weights gives other numbers (the rule matters)
  auto other = edited("gru_seq_reset_after", "before",
                      [](json& m) { layer_cfg(m, 0)["reset_after"] = false; });
  EXPECT_THROW(run(other, input_of("gru_seq_reset_after", "gru_1_input"), {"gru_1"}), Error)
      << "a (2, 15) bias with reset_after=False must be refused";
}

// hard_sigmoid is HardSigmoid(alpha 0.2, beta 0.5) in Keras 1/2 (Keras 3: alpha 1/6). The
// keras-seq LSTM/GRU files were saved with recurrent_activation "sigmoid" (the Keras 2.3
// default); the hard_sigmoid case with Keras's numbers is conv_lstm2d.
TEST(KerasRecurrentRules, HardSigmoid) {
  auto files = edited("lstm_last_hard_sigmoid", "hard",
                      [](json& m) { layer_cfg(m, 0)["recurrent_activation"] = "hard_sigmoid"; });
  Graph g = import_model(files, {});
  const Node* n = find_op(g, "LSTM");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->attrs.get_strings("activations"),
            (std::vector<std::string>{"HardSigmoid", "Tanh", "Tanh"}));
  EXPECT_EQ(n->attrs.get_floats("activation_alpha"), (std::vector<double>{0.2}));
  EXPECT_EQ(n->attrs.get_floats("activation_beta"), (std::vector<double>{0.5}));
  const std::string c = "conv_lstm2d";
  auto got =
      run({seq_case(c) + "/model.h5"}, input_of(c, "conv_lst_m2d_1_input"), {"conv_lst_m2d_1"});
  expect_close(got["conv_lst_m2d_1"], keras_act(c, "conv_lst_m2d_1"), c);
}

// go_backwards: Keras runs the layer over the reversed sequence and returns the outputs in that
// (reversed) order: the same as the forward layer on the time-reversed input.
TEST(KerasRecurrentRules, GoBackwards) {
  const std::string c = "lstm_seq_sigmoid_go_backwards";
  Tensor x = input_of(c, "lstm_1_input");
  const Tensor want = keras_act(c, "lstm_1");
  expect_close(run({seq_case(c) + "/model.h5"}, x, {"lstm_1"})["lstm_1"], want, "go_backwards");
  auto fwd = edited(c, "fwd", [](json& m) { layer_cfg(m, 0)["go_backwards"] = false; });
  expect_close(run(fwd, reverse_time(x), {"lstm_1"})["lstm_1"], want,
               "forward layer on the reversed input");
  Comparison differs = compare_tensors(run(fwd, x, {"lstm_1"})["lstm_1"], want, 1e-3, 1e-3);
  EXPECT_FALSE(differs.ok()) << "the forward layer on the input itself must differ";
}

// Masking: at a masked step the state carries over, so sample 1 (whose last 3 of 8 steps are
// all zero) ends with the state after its first 5 steps.
TEST(KerasRecurrentRules, MaskingCarriesStateOver) {
  const std::string c = "masking_lstm";
  Tensor x = input_of(c, "masking_1_input");
  const Tensor want = keras_act(c, "lstm_1");  // (2, 5)
  auto got = run({seq_case(c) + "/model.h5"}, x, {"masking_1", "lstm_1"});
  expect_close(got["lstm_1"], want, "masked LSTM");
  expect_close(got["masking_1"], keras_act(c, "masking_1"), "Masking output");
  // sample 1 alone, first 5 steps, no Masking layer: the same final state
  auto cut = edited(c, "cut", [](json& m) {
    json& layers = m["config"]["layers"];
    json lstm = layers[1];
    lstm["config"]["batch_input_shape"] = json::array({nullptr, 5, 3});
    layers = json::array({lstm});
  });
  Tensor x1(DType::f32, Shape{1, 5, 3});
  for (int64_t s = 0; s < 5; ++s)
    for (int64_t k = 0; k < 3; ++k) x1.set(s * 3 + k, x.get((1 * 8 + s) * 3 + k));
  Tensor y1 = run(cut, x1, {"lstm_1"})["lstm_1"];
  Tensor want1(DType::f32, Shape{1, 5});
  for (int64_t k = 0; k < 5; ++k) want1.set(k, want.get(5 + k));
  expect_close(y1, want1, "sample 1 over its 5 real steps");
}

// Bidirectional merge modes on one fixture (merge_mode=sum, Keras's numbers): with merge_mode
// None the layer gives the forward and backward sequences, whose sum is Keras's output; ave is
// half of it; concat and mul are the two joined and multiplied.
TEST(KerasRecurrentRules, BidirectionalMergeModes) {
  const std::string c = "bidirectional_gru_sum_seq";
  Tensor x = input_of(c, "bidirectional_1_input");
  const Tensor sum = keras_act(c, "bidirectional_1");  // (2, 6, 4)
  expect_close(run({seq_case(c) + "/model.h5"}, x, {"bidirectional_1"})["bidirectional_1"], sum,
               "sum");
  auto mode = [&](json mm) {
    return edited(c, mm.is_null() ? "none" : mm.get<std::string>(),
                  [mm](json& m) { layer_cfg(m, 0)["merge_mode"] = mm; });
  };
  auto split = run(mode(nullptr), x, {"bidirectional_1", "bidirectional_1:1"});
  const Tensor& fw = split["bidirectional_1"];
  const Tensor& bw = split["bidirectional_1:1"];
  ASSERT_EQ(fw.shape(), sum.shape());
  ASSERT_EQ(bw.shape(), sum.shape());
  Tensor s2(DType::f32, sum.shape()), half(DType::f32, sum.shape()), prod(DType::f32, sum.shape());
  Tensor cat(DType::f32, Shape{2, 6, 8});
  for (int64_t i = 0; i < sum.numel(); ++i) {
    s2.set(i, fw.get(i) + bw.get(i));
    half.set(i, sum.get(i) / 2);
    prod.set(i, fw.get(i) * bw.get(i));
    cat.set((i / 4) * 8 + i % 4, fw.get(i));
    cat.set((i / 4) * 8 + 4 + i % 4, bw.get(i));
  }
  expect_close(s2, sum, "forward + backward = Keras's sum");
  expect_close(run(mode("ave"), x, {"bidirectional_1"})["bidirectional_1"], half, "ave");
  expect_close(run(mode("mul"), x, {"bidirectional_1"})["bidirectional_1"], prod, "mul");
  expect_close(run(mode("concat"), x, {"bidirectional_1"})["bidirectional_1"], cat, "concat");
}

// return_state: outputs 1 and 2 are the final h and c ("lstm:1", "lstm:2"), h the last step
// of the sequence output; the summary lists the three shapes and Keras's parameter count
// 4 * (units * (input + units) + units).
TEST(KerasRecurrentRules, ReturnStateAndSummary) {
  const std::string c = "lstm_return_state";
  auto got = run({seq_case(c) + "/model.h5"}, input_of(c, "x"), {"lstm", "lstm:1", "lstm:2"});
  for (const char* tap : {"lstm", "lstm:1", "lstm:2"})
    expect_close(got[tap], keras_act(c, tap), tap);
  Graph g = import_model({seq_case(c) + "/model.h5"}, {});
  const SourceLayer* l = nullptr;
  for (const auto& s : g.source_layers)
    if (s.name == "lstm") l = &s;
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->type, "LSTM");
  EXPECT_EQ(l->trainable_params, 4 * (4 * (3 + 4) + 4));
  EXPECT_EQ(l->output_shapes, (std::vector<Shape>{{-1, 5, 4}, {-1, 4}, {-1, 4}}));
}

// Keras 2.3.1's GRU(reset_after) parameter count adds the recurrent bias: 3 * (units * (input +
// units) + 2 * units); reset_after=False has 3 * (units * (input + units) + units).
TEST(KerasRecurrentRules, GruParameterCounts) {
  for (auto [c, n] : {std::pair<const char*, int64_t>{"gru_seq_reset_after", 3 * (5 * 9 + 10)},
                      std::pair<const char*, int64_t>{"gru_last_reset_before", 3 * (6 * 11 + 6)}}) {
    Graph g = import_model({seq_case(c) + "/model.h5"}, {});
    ASSERT_FALSE(g.source_layers.empty());
    EXPECT_EQ(g.source_layers[0].trainable_params, n) << c;
  }
}

// Embedding(mask_zero=True): id 0 masks its step, so trailing zeros leave the LSTM's state as
// after the last real id.
TEST(KerasRecurrentRules, EmbeddingMaskZero) {
  const std::string c = "embedding_lstm_classifier";
  Tensor ids = input_of(c, "embedding_1_input");  // (2, 12) int32
  ASSERT_EQ(ids.dtype(), DType::i32);
  expect_close(run({seq_case(c) + "/model.h5"}, ids, {"dense_1"})["dense_1"],
               keras_act(c, "dense_1"), "unmasked model");
  auto masked = edited(c, "mask", [](json& m) { layer_cfg(m, 0)["mask_zero"] = true; });
  Tensor padded = ids.clone();
  for (int64_t s = 8; s < 12; ++s) padded.set(12 + s, 0);  // sample 1: 8 ids, then padding
  for (int64_t s = 0; s < 8; ++s)
    if (padded.get(12 + s) == 0) padded.set(12 + s, 1);  // no zero among the real ids
  Tensor y = run(masked, padded, {"lstm_1"})["lstm_1"];
  // the same 8 ids alone (input length 8)
  auto short8 = edited(c, "short", [](json& m) {
    layer_cfg(m, 0)["batch_input_shape"] = json::array({nullptr, 8});
    layer_cfg(m, 0)["input_length"] = 8;
  });
  Tensor ids8(DType::i32, Shape{1, 8});
  for (int64_t s = 0; s < 8; ++s) ids8.set(s, padded.get(12 + s));
  Tensor y8 = run(short8, ids8, {"lstm_1"})["lstm_1"];
  Tensor y1(DType::f32, Shape{1, 10});
  for (int64_t k = 0; k < 10; ++k) y1.set(k, y.get(10 + k));
  expect_close(y1, y8, "masked padding = the real ids alone", 1e-6);
}

// stateful: the states are explicit inputs and outputs. Zero states are Keras's fresh layer;
// a run over steps 0..3 whose final states feed a run over steps 4..8 ends where the whole
// 9-step sequence does (streaming one chunk at a time).
TEST(KerasRecurrentRules, StatefulStreaming) {
  const std::string c = "lstm_last_hard_sigmoid";
  const Tensor x = input_of(c, "lstm_1_input");  // (2, 9, 5)
  const Tensor want = keras_act(c, "lstm_1");
  auto model = [&](int64_t steps) {
    auto files = edited(c, "stateful" + std::to_string(steps), [steps](json& m) {
      layer_cfg(m, 0)["stateful"] = true;
      layer_cfg(m, 0)["batch_input_shape"] = json::array({2, steps, 5});
    });
    SessionOptions so;
    so.backend = "reference";
    return std::make_unique<Session>(import_model(files, {}), so);
  };
  auto chunk = [&](int64_t from, int64_t to) {
    Tensor part(DType::f32, Shape{2, to - from, 5});
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t s = from; s < to; ++s)
        for (int64_t k = 0; k < 5; ++k)
          part.set((i * (to - from) + (s - from)) * 5 + k, x.get((i * 9 + s) * 5 + k));
    return part;
  };
  Tensor zeros(DType::f32, Shape{2, 8});
  for (int64_t i = 0; i < zeros.numel(); ++i) zeros.set(i, 0.0);
  auto whole = model(9)->run(
      {{"lstm_1_input", x}, {"lstm_1/state_in_0", zeros}, {"lstm_1/state_in_1", zeros}});
  ASSERT_EQ(whole.size(), 3u);  // the output, then the final h and c
  expect_close(whole["lstm_1"], want, "zero states");
  expect_close(whole["lstm_1/state_out_0"], want, "h = the last output");
  auto first = model(4)->run(
      {{"lstm_1_input", chunk(0, 4)}, {"lstm_1/state_in_0", zeros}, {"lstm_1/state_in_1", zeros}});
  auto second = model(5)->run({{"lstm_1_input", chunk(4, 9)},
                               {"lstm_1/state_in_0", first["lstm_1/state_out_0"]},
                               {"lstm_1/state_in_1", first["lstm_1/state_out_1"]}});
  expect_close(second["lstm_1"], want, "4 steps, then 5 steps with the carried state");
}

// RNN(LSTMCell(...)) is the LSTM layer: the cell's config, the RNN's sequence options.
TEST(KerasRecurrentRules, GenericRnnOverCell) {
  const std::string c = "lstm_seq_sigmoid_go_backwards";
  auto files = edited(c, "rnncell", [](json& m) {
    json& l = m["config"]["layers"][0];
    json cell = {{"class_name", "LSTMCell"}, {"config", l["config"]}};
    for (const char* k : {"return_sequences", "go_backwards", "stateful", "unroll",
                          "batch_input_shape", "return_state"})
      cell["config"].erase(k);
    json rnn = {{"name", "lstm_1"},
                {"batch_input_shape", l["config"]["batch_input_shape"]},
                {"cell", cell},
                {"return_sequences", true},
                {"go_backwards", true}};
    l = {{"class_name", "RNN"}, {"config", rnn}};
  });
  expect_close(run(files, input_of(c, "lstm_1_input"), {"lstm_1"})["lstm_1"],
               keras_act(c, "lstm_1"), "RNN(LSTMCell)");
}

// A mask passes through the layers Keras lets it (here Masking -> Dense -> LSTM), and
// GlobalAveragePooling1D averages over the real steps only.
TEST(KerasRecurrentRules, MaskPropagationAndMaskedMean) {
  const std::string c = "embedding_pool_dense";
  Tensor ids = input_of(c, "embedding_1_input");  // (2, 9)
  auto masked = edited(c, "mask", [](json& m) { layer_cfg(m, 0)["mask_zero"] = true; });
  Tensor padded = ids.clone();
  for (int64_t s = 0; s < 9; ++s)
    if (padded.get(9 + s) == 0) padded.set(9 + s, 1);
  for (int64_t s = 6; s < 9; ++s) padded.set(9 + s, 0);  // sample 1: 6 ids, then padding
  auto got = run(masked, padded, {"embedding_1", "global_average_pooling1d_1"});
  const Tensor& e = got["embedding_1"];  // (2, 9, 6)
  const Tensor& pooled = got["global_average_pooling1d_1"];
  for (int64_t k = 0; k < 6; ++k) {
    double real = 0, all = 0;
    for (int64_t s = 0; s < 9; ++s) {
      all += e.get((9 + s) * 6 + k);
      if (s < 6) real += e.get((9 + s) * 6 + k);
    }
    EXPECT_NEAR(pooled.get(6 + k), real / 6, 1e-6) << k;
    EXPECT_GT(std::fabs(real / 6 - all / 9), 1e-6) << "the padding must matter here, " << k;
  }
  // and the Keras numbers of the unmasked model on its own ids
  expect_close(run({seq_case(c) + "/model.h5"}, ids, {"dense_1"})["dense_1"],
               keras_act(c, "dense_1"), "unmasked");
}

// go_backwards reverses the mask with the steps: the masked model with go_backwards on the
// time-reversed input processes the original order, so it ends where Keras's forward one does.
TEST(KerasRecurrentRules, GoBackwardsReversesTheMask) {
  const std::string c = "masking_lstm";
  auto back = edited(c, "back", [](json& m) { layer_cfg(m, 1)["go_backwards"] = true; });
  Tensor y = run(back, reverse_time(input_of(c, "masking_1_input")), {"lstm_1"})["lstm_1"];
  expect_close(y, keras_act(c, "lstm_1"), "go_backwards on the reversed masked input");
}

// Bidirectional return_state: [merged, h_fw, c_fw, h_bw, c_bw]; with merge_mode None the
// outputs are [fw, bw, h_fw, c_fw, h_bw, c_bw], fw's last step is h_fw, and [fw, bw] joined
// is Keras's concat output.
TEST(KerasRecurrentRules, BidirectionalReturnState) {
  const std::string c = "bidirectional_lstm_concat";
  auto files = edited(c, "state", [](json& m) {
    json& l = m["config"]["layers"][0]["config"];
    l["layer"]["config"]["return_state"] = true;
    l["merge_mode"] = nullptr;
    m["config"]["layers"].erase(1);  // the Dense after it takes one input
  });
  std::vector<std::string> taps;
  for (int k = 0; k < 6; ++k)
    taps.push_back("bidirectional_1" + (k ? ":" + std::to_string(k) : std::string()));
  auto got = run(files, input_of(c, "bidirectional_1_input"), taps);
  const Tensor want = keras_act(c, "bidirectional_1");  // (2, 10)
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < 5; ++k) {
      EXPECT_NEAR(got[taps[0]].get(i * 5 + k), want.get(i * 10 + k), 1e-5);
      EXPECT_NEAR(got[taps[1]].get(i * 5 + k), want.get(i * 10 + 5 + k), 1e-5);
      EXPECT_EQ(got[taps[2]].get(i * 5 + k), got[taps[0]].get(i * 5 + k));  // h_fw
      EXPECT_EQ(got[taps[4]].get(i * 5 + k), got[taps[1]].get(i * 5 + k));  // h_bw
    }
  EXPECT_EQ(got[taps[3]].shape(), (Shape{2, 5}));
  EXPECT_EQ(got[taps[5]].shape(), (Shape{2, 5}));
}

// ConvLSTM2D's other paths against the fixture: return_sequences (the last step is Keras's
// output), go_backwards on the time-reversed input, data_format channels_first.
TEST(KerasRecurrentRules, ConvLstm2dVariants) {
  const std::string c = "conv_lstm2d";
  const Tensor x = input_of(c, "conv_lst_m2d_1_input");  // (2, 4, 6, 6, 2)
  const Tensor want = keras_act(c, "conv_lst_m2d_1");    // (2, 6, 6, 3)
  auto seqf = edited(c, "seq", [](json& m) { layer_cfg(m, 0)["return_sequences"] = true; });
  Tensor ys = run(seqf, x, {"conv_lst_m2d_1"})["conv_lst_m2d_1"];
  ASSERT_EQ(ys.shape(), (Shape{2, 4, 6, 6, 3}));
  Tensor last(DType::f32, want.shape());
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t k = 0; k < 108; ++k) last.set(i * 108 + k, ys.get((i * 4 + 3) * 108 + k));
  expect_close(last, want, "last step of return_sequences");
  auto back = edited(c, "back", [](json& m) { layer_cfg(m, 0)["go_backwards"] = true; });
  expect_close(run(back, reverse_time(x), {"conv_lst_m2d_1"})["conv_lst_m2d_1"], want,
               "go_backwards on the reversed input");
  auto cf = edited(c, "cf", [](json& m) {
    layer_cfg(m, 0)["data_format"] = "channels_first";
    layer_cfg(m, 0)["batch_input_shape"] = json::array({nullptr, 4, 2, 6, 6});
  });
  Tensor ycf = run(cf, transpose(x, {0, 1, 4, 2, 3}), {"conv_lst_m2d_1"})["conv_lst_m2d_1"];
  expect_close(ycf, transpose(want, {0, 3, 1, 2}), "channels_first");
}
