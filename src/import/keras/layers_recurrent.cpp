// Keras recurrent layers: SimpleRNN, LSTM, GRU (both reset_after modes), their Keras 1 weight
// layouts, CuDNNLSTM/CuDNNGRU, and Bidirectional over any of them; each becomes one canonical
// RNN / LSTM / GRU node (ONNX semantics, layout 1: X is Keras's (batch, time, features)).
//   - gates: Keras LSTM kernels hold i, f, c, o; ONNX wants i, o, f, c (kLstmGateOrder). GRU
//     z, r, h is the same in both. reset_after=True is GRU linear_before_reset=1 with the
//     (2, 3*units) bias split into ONNX's Wb and Rb.
//   - activations: `recurrent_activation` is ONNX f, `activation` is g (and h for LSTM);
//     hard_sigmoid is HardSigmoid(0.2, 0.5) in Keras 1/2 and tf.keras, (1/6, 0.5) in Keras 3.
//   - go_backwards: the time axis of X (and of the mask) is reversed and the node runs forward,
//     so that return_sequences gives Keras's output order (last input step first).
//   - masks (Masking, Embedding(mask_zero)) become the node's step_mask (Keras: a masked step
//     carries the state over and repeats the previous output); return_sequences keeps the
//     input's mask on the output, as Keras does.
//   - return_state adds the final h (and c) as outputs 1, 2 (Bidirectional: h_fw, c_fw, h_bw,
//     c_bw); initial states given as extra call inputs (`initial_state=`) are the node's.
//   - stateful layers get their states as explicit graph inputs "<layer>/state_in_<k>" and
//     outputs "<layer>/state_out_<k>" (k in Keras's layer.states order: h[, c], forward's then
//     backward's): feed zeros for Keras's reset_states(), feed a call's outputs to the next to
//     carry the state (streaming). unroll does not change the numbers and is ignored.
#include <algorithm>

#include "import/keras/keras_convert.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

enum class Cell { rnn, lstm, gru };

struct RecSpec {
  Cell cell = Cell::lstm;
  const char* op = "LSTM";
  int gates = 4;
  const std::vector<int>* order = &kLstmGateOrder;
  int64_t units = 0;
  std::string act, rec_act;
  bool use_bias = true, return_sequences = false, return_state = false, go_backwards = false;
  bool reset_after = false, stateful = false;
  bool cudnn = false;  // CuDNNLSTM / CuDNNGRU: separate input and recurrent biases
};

RecSpec read_spec(Translator& t, Cell cell, bool cudnn) {
  RecSpec s;
  s.cell = cell;
  s.cudnn = cudnn;
  s.op = cell == Cell::rnn ? "RNN" : cell == Cell::lstm ? "LSTM" : "GRU";
  s.gates = cell == Cell::rnn ? 1 : cell == Cell::lstm ? 4 : 3;
  s.order = cell == Cell::rnn    ? &kRnnGateOrder
            : cell == Cell::lstm ? &kLstmGateOrder
                                 : &kGruGateOrder;
  s.units = t.i("units", t.i("output_dim", -1));  // Keras 1: output_dim
  if (s.units < 1 || s.units > (int64_t{1} << 20)) t.fail("units", "units must be >= 1");
  s.act = t.s("activation", "tanh");
  // Keras 1: inner_activation; the default changed from hard_sigmoid (Keras 1, Keras 2 before
  // 2.3) to sigmoid (Keras 2.3, tf.keras, Keras 3); files written by Keras 2 always store it.
  s.rec_act = t.s("recurrent_activation", t.s("inner_activation", "sigmoid"));
  if (cudnn) s.act = "tanh", s.rec_act = "sigmoid";
  s.use_bias = t.b("use_bias", true);
  s.return_sequences = t.b("return_sequences", false);
  s.return_state = t.b("return_state", false);
  s.go_backwards = t.b("go_backwards", false);
  s.stateful = t.b("stateful", false);
  s.reset_after = cell == Cell::gru && (cudnn || t.b("reset_after", false));
  if (t.b("time_major", false))
    t.fail("time_major", "time-major recurrent layers are not supported");
  return s;
}

/// The canonical activation of Keras activation `k` (name, and alpha/beta when it takes them).
void add_activation(Translator& t, const std::string& k, const char* field,
                    std::vector<std::string>& names, std::vector<double>& alphas,
                    std::vector<double>& betas) {
  if (k == "tanh") {
    names.push_back("Tanh");
  } else if (k == "sigmoid") {
    names.push_back("Sigmoid");
  } else if (k == "hard_sigmoid") {
    names.push_back("HardSigmoid");
    alphas.push_back(t.keras3() ? 1.0 / 6.0 : 0.2);
    betas.push_back(0.5);
  } else if (k == "relu") {
    names.push_back("Relu");
  } else if (k == "linear" || k.empty() || k == "None") {
    names.push_back("Affine");
    alphas.push_back(1.0);
    betas.push_back(0.0);
  } else if (k == "elu") {
    names.push_back("Elu");
    alphas.push_back(1.0);
  } else if (k == "softsign") {
    names.push_back("Softsign");
  } else if (k == "softplus") {
    names.push_back("Softplus");
  } else {
    t.fail(field, "activation '" + k + "' is not supported in a recurrent layer");
  }
}

/// ONNX W, R, B (each (1, ...)) of one direction from that direction's stored weights.
struct DirWeights {
  Tensor w, r, b;
};

const NamedWeight* find_named(const std::vector<NamedWeight>& ws, const std::string& name) {
  for (const auto& w : ws)
    if (w.name == name) return &w;
  return nullptr;
}

DirWeights dir_weights(Translator& t, const RecSpec& s, const std::vector<NamedWeight>& ws,
                       int64_t in) {
  const int64_t h = s.units, gh = h * s.gates;
  Tensor kernel, rec, bias, rbias;
  auto check = [&](const Tensor& x, const Shape& want, const char* what) {
    if (x.shape() != want)
      t.fail(what, std::string("weight '") + what + "' has shape " + shape_str(x.shape()) +
                       ", the config implies " + shape_str(want));
  };
  const NamedWeight* nk = find_named(ws, "kernel");
  if (nk || ws.size() <= 3) {
    // Keras 2 / tf.keras / Keras 3 / CuDNN*: kernel, recurrent_kernel[, bias]
    size_t want_n = s.use_bias ? 3 : 2;
    if (ws.size() != want_n)
      t.fail("weights", "expected " + std::to_string(want_n) + " weights, the file has " +
                            std::to_string(ws.size()));
    const NamedWeight* nr = find_named(ws, "recurrent_kernel");
    const NamedWeight* nb = find_named(ws, "bias");
    kernel = (nk ? nk : &ws[0])->value;
    rec = (nr ? nr : &ws[1])->value;
    check(kernel, {in, gh}, "kernel");
    check(rec, {h, gh}, "recurrent_kernel");
    if (s.use_bias) {
      Tensor b = (nb ? nb : &ws[2])->value.to(DType::f32);
      if (s.reset_after || s.cudnn) {
        // GRU reset_after: (2, 3*units); CuDNN*: (2*G*units,): input bias, recurrent bias
        if (b.numel() != 2 * gh)
          t.fail("bias", "bias has shape " + shape_str(b.shape()) + ", expected " +
                             std::to_string(2 * gh) + " values (input and recurrent biases)");
        Tensor flat = b.reshaped({2 * gh});
        bias = Tensor(DType::f32, Shape{gh});
        rbias = Tensor(DType::f32, Shape{gh});
        std::copy(flat.data<float>(), flat.data<float>() + gh, bias.data<float>());
        std::copy(flat.data<float>() + gh, flat.data<float>() + 2 * gh, rbias.data<float>());
      } else {
        check(b, {gh}, "bias");
        bias = b;
      }
    }
  } else {
    // Keras 1: one (W, U, b) triple per gate; LSTM stores i, c, f, o, GRU z, r, h
    if (s.cudnn || s.reset_after) t.fail("weights", "unexpected Keras 1 weights");
    const int per = s.use_bias ? 3 : 2;
    if (ws.size() != static_cast<size_t>(per * s.gates))
      t.fail("weights", "expected " + std::to_string(per * s.gates) +
                            " Keras 1 weights (W, U, b per gate), the file has " +
                            std::to_string(ws.size()));
    std::vector<int> stored = s.cell == Cell::lstm ? std::vector<int>{0, 2, 1, 3}  // i f c o
                                                   : std::vector<int>{0, 1, 2};    // in file
    kernel = Tensor(DType::f32, Shape{in, gh});
    rec = Tensor(DType::f32, Shape{h, gh});
    if (s.use_bias) bias = Tensor(DType::f32, Shape{gh});
    for (int g = 0; g < s.gates; ++g) {
      // Keras 2 gate g (i f c o / z r h) is stored triple stored[g]
      size_t base = static_cast<size_t>(stored[static_cast<size_t>(g)] * per);
      Tensor w = ws[base].value.to(DType::f32), u = ws[base + 1].value.to(DType::f32);
      check(w, {in, h}, "W");
      check(u, {h, h}, "U");
      for (int64_t r = 0; r < in; ++r)
        std::copy(w.data<float>() + r * h, w.data<float>() + (r + 1) * h,
                  kernel.data<float>() + r * gh + g * h);
      for (int64_t r = 0; r < h; ++r)
        std::copy(u.data<float>() + r * h, u.data<float>() + (r + 1) * h,
                  rec.data<float>() + r * gh + g * h);
      if (s.use_bias) {
        Tensor b = ws[base + 2].value.to(DType::f32);
        check(b, {h}, "b");
        std::copy(b.data<float>(), b.data<float>() + h, bias.data<float>() + g * h);
      }
    }
  }
  DirWeights d;
  d.w = rnn_kernel_to_onnx(kernel, *s.order);
  d.r = rnn_kernel_to_onnx(rec, *s.order);
  d.b = rnn_bias_to_onnx(bias, rbias, *s.order, h);
  return d;
}

/// x (N, T, ...) with its time axis reversed.
int reverse_time(Translator& t, int x) {
  int64_t n = t.shape(x)[1];
  std::vector<int64_t> idx;
  for (int64_t k = n - 1; k >= 0; --k) idx.push_back(k);
  Attributes a;
  a.set("axis", int64_t{1});
  return t.node("Gather", {x, t.i64s("reversed_steps", idx)}, a);
}

/// Direction `d` of a (N, T, D, H) Y as (N, T, H), or of a (N, D, H) state as (N, H).
int direction_of(Translator& t, int v, int d, bool final_node) {
  int r = t.rank(v);
  int64_t axis = r - 2;
  int s =
      t.node("Slice", {v, t.i64s("starts", {d}), t.i64s("ends", {d + 1}), t.i64s("axes", {axis})});
  Shape sh = t.shape(s);
  sh.erase(sh.begin() + axis);
  return t.node("Reshape", {s, t.i64s("shape", sh)}, {}, final_node);
}

/// The recurrent node of a (possibly bidirectional) layer and its Keras outputs.
std::vector<KT> recurrent(Translator& t, const std::vector<KT>& ins, const RecSpec& s,
                          bool bidirectional, const std::string& merge_mode) {
  const KT& x = ins[0];
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);
  if (xs.size() != 3) t.fail("input", "expects a (batch, time, features) input");
  if (!is_float(t.dtype(xv))) t.fail("input", "expects a float input");
  const int64_t n = xs[0], steps = xs[1], in = xs[2], h = s.units;
  const int dirs = bidirectional ? 2 : 1;
  int mask = t.mask_of(x);
  if (s.go_backwards) {
    xv = reverse_time(t, xv);
    if (mask >= 0) mask = reverse_time(t, mask);
  }
  // weights: a Bidirectional wrapper stores the forward layer's, then the backward layer's
  const std::vector<NamedWeight>& all = t.layer_weights();
  Tensor w, r, b;
  if (bidirectional) {
    if (all.size() % 2 != 0) t.fail("weights", "a Bidirectional layer needs an even weight count");
    std::vector<NamedWeight> fw(all.begin(), all.begin() + static_cast<long>(all.size() / 2));
    std::vector<NamedWeight> bw(all.begin() + static_cast<long>(all.size() / 2), all.end());
    DirWeights f = dir_weights(t, s, fw, in), bk = dir_weights(t, s, bw, in);
    w = stack_directions(f.w, bk.w);
    r = stack_directions(f.r, bk.r);
    b = stack_directions(f.b, bk.b);
  } else {
    DirWeights d = dir_weights(t, s, all, in);
    w = d.w, r = d.r, b = d.b;
  }
  Attributes a;
  a.set("hidden_size", h);
  a.set("layout", int64_t{1});
  a.set("direction", std::string(bidirectional ? "bidirectional" : "forward"));
  std::vector<std::string> acts;
  std::vector<double> alphas, betas;
  add_activation(t, s.rec_act, "recurrent_activation", acts, alphas, betas);
  if (s.cell != Cell::rnn) add_activation(t, s.act, "activation", acts, alphas, betas);
  if (s.cell == Cell::lstm) add_activation(t, s.act, "activation", acts, alphas, betas);
  if (s.cell == Cell::rnn) {
    acts.clear(), alphas.clear(), betas.clear();
    add_activation(t, s.act, "activation", acts, alphas, betas);
  }
  a.set("activations", acts);
  if (!alphas.empty()) a.set("activation_alpha", alphas);
  if (!betas.empty()) a.set("activation_beta", betas);
  if (s.cell == Cell::gru) a.set("linear_before_reset", int64_t{s.reset_after ? 1 : 0});
  // initial states: call inputs 1.. (h, then c for LSTM; Bidirectional: forward's then
  // backward's), each (N, H) -> (N, D, H)
  const int per_dir = s.cell == Cell::lstm ? 2 : 1;
  int init_h = -1, init_c = -1;
  // stateful: the states are explicit graph inputs "<layer>/state_in_<k>" and outputs
  // "<layer>/state_out_<k>" (k in Keras's layer.states order), so that a caller carries them
  std::vector<int> states;  // (N, H) values in Keras's order
  if (ins.size() > 1) {
    if (ins.size() != static_cast<size_t>(1 + per_dir * dirs))
      t.fail("inputs", "expected " + std::to_string(per_dir * dirs) + " initial states, found " +
                           std::to_string(ins.size() - 1));
    for (size_t k = 1; k < ins.size(); ++k) states.push_back(t.as_source(ins[k]));
  } else if (s.stateful) {
    for (int k = 0; k < per_dir * dirs; ++k)
      states.push_back(
          t.state_input(t.layer_name() + "/state_in_" + std::to_string(k), Shape{n, h}));
  }
  if (!states.empty()) {
    auto state = [&](int which) {
      std::vector<int> parts;
      for (int d = 0; d < dirs; ++d) {
        int v = states[static_cast<size_t>(d * per_dir + which)];
        if (t.shape(v) != Shape{n, h}) t.fail("initial_state", "expected (batch, units) states");
        parts.push_back(t.node("Reshape", {v, t.i64s("state_shape", {n, 1, h})}));
      }
      if (parts.size() == 1) return parts[0];
      Attributes ca;
      ca.set("axis", int64_t{1});
      return t.node("Concat", parts, ca);
    };
    init_h = state(0);
    if (s.cell == Cell::lstm) init_c = state(1);
  }
  std::vector<int> node_ins{xv, t.cst("W", w), t.cst("R", r), t.cst("B", b), -1, init_h};
  if (s.cell == Cell::lstm) node_ins.push_back(init_c), node_ins.push_back(-1);
  if (mask >= 0) node_ins.push_back(mask);
  while (node_ins.back() == -1) node_ins.pop_back();
  const int nout = s.cell == Cell::lstm ? 3 : 2;
  std::vector<int> o = t.node_outs(s.op, node_ins, a, nout);
  const int y = o[0], yh = o[1], yc = s.cell == Cell::lstm ? o[2] : -1;
  std::vector<KT> outs;
  // output 0
  std::vector<int> per;  // per direction, Keras layout
  for (int d = 0; d < dirs; ++d)
    per.push_back(s.return_sequences ? direction_of(t, y, d, !bidirectional)
                                     : direction_of(t, yh, d, !bidirectional));
  if (!bidirectional) {
    outs.push_back(KT{per[0], {}});
  } else if (merge_mode == "concat") {
    Attributes ca;
    ca.set("axis", int64_t{t.rank(per[0]) - 1});
    outs.push_back(KT{t.node("Concat", per, ca, true), {}});
  } else if (merge_mode == "sum" || merge_mode == "ave") {
    int v = t.node("Add", per, {}, merge_mode == "sum");
    if (merge_mode == "ave") v = t.node("Mul", {v, t.scalar("half", 0.5f)}, {}, true);
    outs.push_back(KT{v, {}});
  } else if (merge_mode == "mul") {
    outs.push_back(KT{t.node("Mul", per, {}, true), {}});
  } else if (merge_mode == "None" || merge_mode.empty()) {
    outs.push_back(KT{per[0], {}});
    outs.push_back(KT{per[1], {}});
  } else {
    t.fail("merge_mode", "unknown merge_mode '" + merge_mode + "'");
  }
  if (s.return_sequences && t.mask_of(x) >= 0)
    for (size_t k = 0; k < outs.size(); ++k) t.set_out_mask(k, t.mask_of(x));
  if (s.stateful && ins.size() == 1)
    for (int d = 0, k = 0; d < dirs; ++d) {
      t.state_output(direction_of(t, yh, d, false),
                     t.layer_name() + "/state_out_" + std::to_string(k++));
      if (yc >= 0)
        t.state_output(direction_of(t, yc, d, false),
                       t.layer_name() + "/state_out_" + std::to_string(k++));
    }
  if (s.return_state)
    for (int d = 0; d < dirs; ++d) {
      outs.push_back(KT{direction_of(t, yh, d, false), {}});
      if (yc >= 0) outs.push_back(KT{direction_of(t, yc, d, false), {}});
    }
  (void)steps;
  return outs;
}

template <Cell C, bool CUDNN>
std::vector<KT> recurrent_layer(Translator& t, const std::vector<KT>& ins) {
  if (ins.empty()) t.fail("inputs", "a recurrent layer needs an input");
  return recurrent(t, ins, read_spec(t, C, CUDNN), false, "");
}

template <Cell C, bool CUDNN>
std::vector<KT> bidirectional_layer(Translator& t, const std::vector<KT>& ins) {
  if (ins.empty()) t.fail("inputs", "a recurrent layer needs an input");
  RecSpec s = read_spec(t, C, CUDNN);
  if (s.go_backwards) t.fail("go_backwards", "Bidirectional over a go_backwards layer");
  return recurrent(t, ins, s, true, t.s("merge_mode", "concat"));
}

const ConverterRegistrar recurrent_layers({
    {"SimpleRNN", recurrent_layer<Cell::rnn, false>},
    {"LSTM", recurrent_layer<Cell::lstm, false>},
    {"GRU", recurrent_layer<Cell::gru, false>},
    {"CuDNNLSTM", recurrent_layer<Cell::lstm, true>},
    {"CuDNNGRU", recurrent_layer<Cell::gru, true>},
});

/// RNN(cell): the generic layer over one SimpleRNNCell / LSTMCell / GRUCell is the matching
/// layer with the cell's config and the RNN's sequence options.
std::vector<KT> rnn_layer(Translator& t, const std::vector<KT>& ins) {
  if (!t.C().contains("cell") || !t.C()["cell"].is_object())
    return t.unsupported_layer(ins, "RNN without a single cell config (StackedRNNCells or a list)");
  const json& cj = t.C()["cell"];
  std::string cls = jstr(cj, "class_name");
  LayerConverter convert = cls == "SimpleRNNCell" ? recurrent_layer<Cell::rnn, false>
                           : cls == "LSTMCell"    ? recurrent_layer<Cell::lstm, false>
                           : cls == "GRUCell"     ? recurrent_layer<Cell::gru, false>
                                                  : nullptr;
  if (!convert) return t.unsupported_layer(ins, "RNN over a " + cls + " is not supported");
  LayerDef inner;
  inner.cls = cls;
  inner.config = cfg_of(cj);
  if (!inner.config.is_object()) t.fail("cell", "the cell's config is not an object");
  inner.name = t.layer_name();
  for (const char* k :
       {"return_sequences", "return_state", "go_backwards", "stateful", "unroll", "time_major"})
    if (t.C().contains(k)) inner.config[k] = t.C()[k];
  return t.call_inner(inner, ins, t.layer_weights(), convert);
}

const ConverterRegistrar generic_rnn({{"RNN", rnn_layer}});

}  // namespace

LayerConverter bidirectional_converter(const std::string& cls) {
  if (cls == "SimpleRNN") return bidirectional_layer<Cell::rnn, false>;
  if (cls == "LSTM") return bidirectional_layer<Cell::lstm, false>;
  if (cls == "GRU") return bidirectional_layer<Cell::gru, false>;
  if (cls == "CuDNNLSTM") return bidirectional_layer<Cell::lstm, true>;
  if (cls == "CuDNNGRU") return bidirectional_layer<Cell::gru, true>;
  return nullptr;
}

}  // namespace anvil::keras
