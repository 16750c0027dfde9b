// Attribute and shape checking of the recurrent ops RNN, LSTM, GRU (src/ops/recurrent.h): the
// one place that checks them; the messages are the reference kernels'.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "ops/nn_util.h"
#include "ops/recurrent.h"

namespace anvil {
namespace {

using nn::fail;

struct ActInfo {
  const char* name;
  RnnActivation::Kind kind;
  bool uses_alpha, uses_beta;
  double alpha, beta;  // defaults (those of the ONNX op of the same name)
};

const ActInfo kActs[] = {
    {"Relu", RnnActivation::Relu, false, false, 0, 0},
    {"Tanh", RnnActivation::Tanh, false, false, 0, 0},
    {"Sigmoid", RnnActivation::Sigmoid, false, false, 0, 0},
    {"Affine", RnnActivation::Affine, true, true, 1.0, 0.0},
    {"LeakyRelu", RnnActivation::LeakyRelu, true, false, 0.01, 0},
    {"ThresholdedRelu", RnnActivation::ThresholdedRelu, true, false, 1.0, 0},
    {"ScaledTanh", RnnActivation::ScaledTanh, true, true, 1.0, 1.0},
    {"HardSigmoid", RnnActivation::HardSigmoid, true, true, 0.2, 0.5},
    {"Elu", RnnActivation::Elu, true, false, 1.0, 0},
    {"Softsign", RnnActivation::Softsign, false, false, 0, 0},
    {"Softplus", RnnActivation::Softplus, false, false, 0, 0},
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

const ActInfo* find_act(const std::string& name) {
  const std::string l = lower(name);
  for (const ActInfo& a : kActs)
    if (lower(a.name) == l) return &a;
  return nullptr;
}

std::string known_acts() {
  std::string s;
  for (const ActInfo& a : kActs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

// The activations of every direction: the attribute (nact per direction, or nact for both
// directions of a bidirectional op) or the defaults. activation_alpha / activation_beta are
// consumed in order by the activations that take them (as ONNX Runtime does); an activation
// left without one takes its op's default.
std::vector<RnnActivation> read_activations(const RnnAttrs& p, const Attributes& a) {
  static const std::vector<std::string> dflt_rnn{"Tanh"}, dflt_lstm{"Sigmoid", "Tanh", "Tanh"},
      dflt_gru{"Sigmoid", "Tanh"};
  const std::vector<std::string>& dflt = p.kind == RnnKind::Rnn    ? dflt_rnn
                                         : p.kind == RnnKind::Lstm ? dflt_lstm
                                                                   : dflt_gru;
  std::vector<std::string> names;
  if (a.has("activations")) {
    names = a.get_strings("activations");
    const size_t n = static_cast<size_t>(p.nact);
    if (names.size() == n && p.dirs == 2) {
      std::vector<std::string> twice = names;
      twice.insert(twice.end(), names.begin(), names.end());
      names = twice;
    }
    if (names.size() != n * static_cast<size_t>(p.dirs))
      fail(p.op, "activations",
           "expected " + std::to_string(n * static_cast<size_t>(p.dirs)) + " activations (" +
               std::to_string(n) + " per direction, " + std::to_string(p.dirs) +
               " direction(s)), found " + std::to_string(names.size()));
  } else {
    for (int d = 0; d < p.dirs; ++d) names.insert(names.end(), dflt.begin(), dflt.end());
  }
  const std::vector<double> alphas = a.get_floats("activation_alpha", {});
  const std::vector<double> betas = a.get_floats("activation_beta", {});
  size_t ia = 0, ib = 0;
  std::vector<RnnActivation> r;
  for (const std::string& nm : names) {
    const ActInfo* info = find_act(nm);
    if (!info)
      fail(p.op, "activations",
           "unknown activation '" + nm + "' (known: " + known_acts() + ", any case)");
    RnnActivation act;
    act.kind = info->kind;
    act.name = info->name;
    act.alpha = info->alpha;
    act.beta = info->beta;
    if (info->uses_alpha && ia < alphas.size()) act.alpha = alphas[ia++];
    if (info->uses_beta && ib < betas.size()) act.beta = betas[ib++];
    r.push_back(act);
  }
  if (ia < alphas.size())
    fail(p.op, "activation_alpha",
         std::to_string(alphas.size()) + " values given, the activations take " +
             std::to_string(ia));
  if (ib < betas.size())
    fail(
        p.op, "activation_beta",
        std::to_string(betas.size()) + " values given, the activations take " + std::to_string(ib));
  return r;
}

void expect_shape(const RnnAttrs& p, const std::string& field, const Shape& have, const Shape& want,
                  const std::string& what) {
  if (have != want)
    fail(p.op, field,
         "expected shape " + shape_str(want) + " (" + what + "), found " + shape_str(have));
}

void expect_float(const RnnAttrs& p, const std::string& field, DType t, DType x) {
  if (!is_float(t))
    fail(p.op, field, std::string("expected a float tensor, found ") + dtype_name(t));
  if (t != x)
    fail(p.op, field,
         std::string("expected the dtype of X (") + dtype_name(x) + "), found " + dtype_name(t));
}

}  // namespace

double RnnActivation::operator()(double x) const {
  switch (kind) {
    case Relu:
      return std::isnan(x) ? x : (x > 0 ? x : 0.0);
    case Tanh:
      return std::tanh(x);
    case Sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case Affine:
      return alpha * x + beta;
    case LeakyRelu:
      return x >= 0 ? x : alpha * x;
    case ThresholdedRelu:
      return x > alpha ? x : 0.0;
    case ScaledTanh:
      return alpha * std::tanh(beta * x);
    case HardSigmoid: {
      const double y = alpha * x + beta;
      return y < 0 ? 0.0 : (y > 1 ? 1.0 : y);
    }
    case Elu:
      return x >= 0 ? x : alpha * (std::exp(x) - 1.0);
    case Softsign:
      return x / (1.0 + std::fabs(x));
    case Softplus:
      return x > 30 ? x : std::log1p(std::exp(x));
  }
  return x;
}

const char* rnn_op_name(RnnKind k) {
  return k == RnnKind::Rnn ? "RNN" : k == RnnKind::Lstm ? "LSTM" : "GRU";
}

bool rnn_kind_of(const std::string& op, RnnKind& k) {
  for (RnnKind c : {RnnKind::Rnn, RnnKind::Lstm, RnnKind::Gru})
    if (op == rnn_op_name(c)) {
      k = c;
      return true;
    }
  return false;
}

RnnAttrs parse_rnn_attrs(RnnKind kind, const Attributes& a, const std::vector<const Shape*>& shapes,
                         const std::vector<DType>& dtypes) {
  RnnAttrs p;
  p.kind = kind;
  p.op = rnn_op_name(kind);
  p.gates = kind == RnnKind::Rnn ? 1 : kind == RnnKind::Lstm ? 4 : 3;
  p.nact = kind == RnnKind::Rnn ? 1 : kind == RnnKind::Lstm ? 3 : 2;
  auto given = [&](int i) { return i < static_cast<int>(shapes.size()) && shapes[i] != nullptr; };
  auto dtype = [&](int i) {
    return i < static_cast<int>(dtypes.size()) ? dtypes[static_cast<size_t>(i)] : DType::f32;
  };
  for (int i = 0; i < 3; ++i)
    if (!given(i))
      fail(p.op,
           i == 0   ? "X"
           : i == 1 ? "W"
                    : "R",
           "required input " + std::to_string(i) + " (X, W, R) is missing");
  const Shape& x = *shapes[0];
  const Shape& w = *shapes[1];
  const Shape& r = *shapes[2];

  p.direction = a.get_string("direction", "forward");
  if (p.direction != "forward" && p.direction != "reverse" && p.direction != "bidirectional")
    fail(p.op, "direction",
         "expected forward, reverse or bidirectional, found '" + p.direction + "'");
  p.dirs = p.direction == "bidirectional" ? 2 : 1;
  p.layout = a.get_int("layout", 0);
  if (p.layout != 0 && p.layout != 1)
    fail(p.op, "layout", "expected 0 or 1, found " + std::to_string(p.layout));
  if (a.has("clip")) {
    p.has_clip = true;
    p.clip = a.get_float("clip");
    if (!(p.clip > 0))
      fail(p.op, "clip", "expected a positive threshold, found " + a.to_string("clip"));
  }
  if (a.has("input_forget")) {
    if (kind != RnnKind::Lstm) fail(p.op, "input_forget", "only LSTM has input_forget");
    p.input_forget = a.get_int("input_forget") != 0;
  }
  if (a.has("linear_before_reset")) {
    if (kind != RnnKind::Gru) fail(p.op, "linear_before_reset", "only GRU has linear_before_reset");
    p.linear_before_reset = a.get_int("linear_before_reset") != 0;
  }

  const DType xt = dtype(0);
  if (!is_float(xt))
    fail(p.op, "X", std::string("expected a float tensor, found ") + dtype_name(xt));
  if (x.size() != 3)
    fail(p.op, "X",
         std::string("expected rank 3 ") +
             (p.layout == 0 ? "[seq_length, batch_size, input_size]"
                            : "[batch_size, seq_length, input_size]") +
             ", found shape " + shape_str(x));
  p.seq = x[p.layout == 0 ? 0 : 1];
  p.batch = x[p.layout == 0 ? 1 : 0];
  p.input = x[2];
  if (r.size() != 3)
    fail(p.op, "R",
         "expected rank 3 [num_directions, " + std::to_string(p.gates) +
             "*hidden_size, hidden_size], found shape " + shape_str(r));
  p.hidden = r[2];
  if (a.has("hidden_size")) {
    const int64_t hs = a.get_int("hidden_size");
    if (hs <= 0) fail(p.op, "hidden_size", "expected a positive size, found " + std::to_string(hs));
    if (hs != p.hidden)
      fail(p.op, "hidden_size",
           "hidden_size " + std::to_string(hs) + " does not match R of shape " + shape_str(r) +
               " (hidden_size " + std::to_string(p.hidden) + ")");
  }
  if (p.hidden <= 0) fail(p.op, "R", "hidden size (R's last dim) is 0");
  const int64_t gh = p.gates * p.hidden;
  const std::string gates_name = kind == RnnKind::Rnn    ? "i"
                                 : kind == RnnKind::Lstm ? "gates i, o, f, c"
                                                         : "gates z, r, h";
  expect_float(p, "W", dtype(1), xt);
  expect_shape(
      p, "W", w, {p.dirs, gh, p.input},
      "[num_directions, " + std::to_string(p.gates) + "*hidden_size, input_size], " + gates_name);
  expect_float(p, "R", dtype(2), xt);
  expect_shape(p, "R", r, {p.dirs, gh, p.hidden},
               "[num_directions, " + std::to_string(p.gates) + "*hidden_size, hidden_size]");
  p.has_b = given(3);
  if (p.has_b) {
    expect_float(p, "B", dtype(3), xt);
    expect_shape(p, "B", *shapes[3], {p.dirs, 2 * gh},
                 "[num_directions, " + std::to_string(2 * p.gates) + "*hidden_size]: Wb then Rb");
  }
  p.has_seq_lens = given(kRnnSeqLens);
  if (p.has_seq_lens) {
    if (!is_integer(dtype(kRnnSeqLens)))
      fail(p.op, "sequence_lens",
           std::string("expected an integer tensor, found ") + dtype_name(dtype(kRnnSeqLens)));
    expect_shape(p, "sequence_lens", *shapes[kRnnSeqLens], {p.batch}, "[batch_size]");
  }
  p.state_shape =
      p.layout == 0 ? Shape{p.dirs, p.batch, p.hidden} : Shape{p.batch, p.dirs, p.hidden};
  const std::string state_what = p.layout == 0 ? "[num_directions, batch_size, hidden_size]"
                                               : "[batch_size, num_directions, hidden_size]";
  p.has_init_h = given(kRnnInitH);
  if (p.has_init_h) {
    expect_float(p, "initial_h", dtype(kRnnInitH), xt);
    expect_shape(p, "initial_h", *shapes[kRnnInitH], p.state_shape, state_what);
  }
  const int mask = rnn_mask_index(kind);
  if (kind == RnnKind::Lstm) {
    p.has_init_c = given(kLstmInitC);
    if (p.has_init_c) {
      expect_float(p, "initial_c", dtype(kLstmInitC), xt);
      expect_shape(p, "initial_c", *shapes[kLstmInitC], p.state_shape, state_what);
    }
    p.has_p = given(kLstmP);
    if (p.has_p) {
      expect_float(p, "P", dtype(kLstmP), xt);
      expect_shape(p, "P", *shapes[kLstmP], {p.dirs, 3 * p.hidden},
                   "[num_directions, 3*hidden_size], peepholes i, o, f");
    }
  }
  for (int i = mask + 1; i < static_cast<int>(shapes.size()); ++i)
    if (given(i))
      fail(p.op, "inputs",
           std::to_string(shapes.size()) + " inputs given, " + p.op + " takes at most " +
               std::to_string(mask + 1));
  p.has_mask = given(mask);
  if (p.has_mask)
    expect_shape(p, "step_mask", *shapes[static_cast<size_t>(mask)],
                 p.layout == 0 ? Shape{p.seq, p.batch} : Shape{p.batch, p.seq},
                 p.layout == 0 ? "[seq_length, batch_size]" : "[batch_size, seq_length]");
  p.acts = read_activations(p, a);
  p.y_shape = p.layout == 0 ? Shape{p.seq, p.dirs, p.batch, p.hidden}
                            : Shape{p.batch, p.seq, p.dirs, p.hidden};
  return p;
}

RnnAttrs rnn_attrs(const Graph& g, const Node& n) {
  try {
    RnnKind k;
    if (!rnn_kind_of(n.op, k)) throw Error("'" + n.op + "' is not a recurrent op", {}, {}, "op");
    std::vector<const Shape*> shapes;
    std::vector<DType> dtypes;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const int v = n.inputs[i];
      if (v < 0) {
        shapes.push_back(nullptr);
        dtypes.push_back(DType::f32);
        continue;
      }
      const Value& val = g.values[static_cast<size_t>(v)];
      if (!val.shape_known)
        throw Error("shape of input '" + val.name + "' is unknown", {}, {}, "inputs");
      shapes.push_back(&val.shape);
      dtypes.push_back(val.dtype);
    }
    return parse_rnn_attrs(k, n.attrs, shapes, dtypes);
  } catch (const Error& e) {
    throw Error(e.message(), e.file().empty() ? g.source_file : e.file(),
                e.node().empty() ? n.name : e.node(), e.field());
  }
}

}  // namespace anvil
