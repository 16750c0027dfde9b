// Reference kernels: RNN, LSTM, GRU (ONNX semantics, opset 14; src/ops/recurrent.h), double
// accumulation. Every batch item and direction runs on its own: a step t of direction d reads
// X[t], the state after the previous step of that direction, and writes Y[t, d].
//   - sequence_lens[b] = L: the steps 0..L-1 run (a reverse direction runs L-1 down to 0), Y
//     is 0 at the steps from L on, Y_h / Y_c hold the state after the last step run (with
//     L = 0 the initial state).
//   - step_mask (Anvil extension, Keras Masking): at a step whose mask is 0 the state carries
//     over unchanged and Y at that step is the carried-over h.
//   - clip bounds the input of every activation (also h's input Ct in LSTM; the cell state
//     itself is not clipped).
#include "ops/recurrent.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

struct Index {
  const RnnAttrs& p;
  int64_t x(int64_t t, int64_t b) const {
    return (p.layout == 0 ? t * p.batch + b : b * p.seq + t) * p.input;
  }
  int64_t y(int64_t t, int d, int64_t b) const {
    return (p.layout == 0 ? (t * p.dirs + d) * p.batch + b : (b * p.seq + t) * p.dirs + d) *
           p.hidden;
  }
  int64_t state(int d, int64_t b) const {
    return (p.layout == 0 ? d * p.batch + b : b * p.dirs + d) * p.hidden;
  }
  int64_t mask(int64_t t, int64_t b) const {
    return p.layout == 0 ? t * p.batch + b : b * p.seq + t;
  }
};

// acc[k] = bias[k] + sum_i m[k*n + i] * v[i], k in [0, rows).
void matvec(const double* m, const double* v, const double* bias, int64_t rows, int64_t n,
            double* acc) {
  for (int64_t k = 0; k < rows; ++k) {
    double s = 0;
    const double* row = m + k * n;
    for (int64_t i = 0; i < n; ++i) s += row[i] * v[i];
    acc[k] = s + (bias ? bias[k] : 0.0);
  }
}

struct Inputs {
  std::vector<double> x, w, r, b, h0, c0, peep;
  std::vector<int64_t> lens;
  std::vector<bool> mask;
};

void run_direction(const RnnAttrs& p, const Inputs& in, int d, Tensor* Y, Tensor* Yh, Tensor* Yc,
                   const KernelContext& ctx) {
  const Index ix{p};
  const int64_t H = p.hidden, I = p.input, G = p.gates, GH = G * H;
  const double* W = in.w.data() + d * GH * I;
  const double* R = in.r.data() + d * GH * H;
  const double* Bw = in.b.empty() ? nullptr : in.b.data() + d * 2 * GH;
  const double* Br = Bw ? Bw + GH : nullptr;
  const double* P = in.peep.empty() ? nullptr : in.peep.data() + d * 3 * H;
  const RnnActivation& f = p.act(d, 0);
  const RnnActivation& g = p.act(d, std::min(1, p.nact - 1));
  const RnnActivation& hact = p.act(d, std::min(2, p.nact - 1));
  auto clip = [&](double v) { return p.has_clip ? std::clamp(v, -p.clip, p.clip) : v; };
  std::vector<double> h(static_cast<size_t>(H)), c(static_cast<size_t>(H)), gx(GH), gh(GH),
      hn(static_cast<size_t>(H)), rh(static_cast<size_t>(H));
  for (int64_t b = 0; b < p.batch; ++b) {
    int64_t L = p.seq;
    if (!in.lens.empty()) {
      L = in.lens[static_cast<size_t>(b)];
      if (L < 0 || L > p.seq)
        ctx.fail("sequence_lens",
                 "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(L) +
                     " is outside [0, seq_length = " + std::to_string(p.seq) + "]");
    }
    const int64_t so = ix.state(d, b);
    for (int64_t j = 0; j < H; ++j) {
      h[j] = in.h0.empty() ? 0.0 : in.h0[static_cast<size_t>(so + j)];
      c[j] = in.c0.empty() ? 0.0 : in.c0[static_cast<size_t>(so + j)];
    }
    for (int64_t s = 0; s < L; ++s) {
      const int64_t t = p.reverse(d) ? L - 1 - s : s;
      const bool used = in.mask.empty() || in.mask[static_cast<size_t>(ix.mask(t, b))];
      if (used) {
        matvec(W, in.x.data() + ix.x(t, b), Bw, GH, I, gx.data());
        matvec(R, h.data(), Br, GH, H, gh.data());
        switch (p.kind) {
          case RnnKind::Rnn:
            for (int64_t j = 0; j < H; ++j) hn[j] = f(clip(gx[j] + gh[j]));
            break;
          case RnnKind::Lstm:  // gates i, o, f, c; peepholes i, o, f
            for (int64_t j = 0; j < H; ++j) {
              const double pi = P ? P[j] : 0.0, po = P ? P[H + j] : 0.0,
                           pf = P ? P[2 * H + j] : 0.0;
              const double it = f(clip(gx[j] + gh[j] + pi * c[j]));
              const double ft =
                  p.input_forget ? 1.0 - it : f(clip(gx[2 * H + j] + gh[2 * H + j] + pf * c[j]));
              const double ct = g(clip(gx[3 * H + j] + gh[3 * H + j]));
              const double cn = ft * c[j] + it * ct;
              const double ot = f(clip(gx[H + j] + gh[H + j] + po * cn));
              c[j] = cn;
              hn[j] = ot * hact(clip(cn));
            }
            break;
          case RnnKind::Gru: {  // gates z, r, h
            for (int64_t j = 0; j < H; ++j) rh[j] = f(clip(gx[H + j] + gh[H + j])) * h[j];
            for (int64_t j = 0; j < H; ++j) {
              const double z = f(clip(gx[j] + gh[j]));
              double pre;
              if (p.linear_before_reset) {
                const double r = f(clip(gx[H + j] + gh[H + j]));
                pre = gx[2 * H + j] + r * gh[2 * H + j];
              } else {
                double acc = Br ? Br[2 * H + j] : 0.0;
                const double* row = R + (2 * H + j) * H;
                for (int64_t k = 0; k < H; ++k) acc += row[k] * rh[k];
                pre = gx[2 * H + j] + acc;
              }
              hn[j] = (1.0 - z) * g(clip(pre)) + z * h[j];
            }
            break;
          }
        }
        h.swap(hn);
      }
      if (Y)
        for (int64_t j = 0; j < H; ++j) Y->set(ix.y(t, d, b) + j, h[j]);
    }
    if (Y)
      for (int64_t t = L; t < p.seq; ++t)
        for (int64_t j = 0; j < H; ++j) Y->set(ix.y(t, d, b) + j, 0.0);
    for (int64_t j = 0; j < H; ++j) {
      if (Yh) Yh->set(so + j, h[j]);
      if (Yc) Yc->set(so + j, c[j]);
    }
  }
}

RnnAttrs attrs_of_inputs(RnnKind kind, const Attributes& a, std::span<const Tensor> ins) {
  std::vector<const Shape*> shapes;
  std::vector<DType> dtypes;
  for (const Tensor& t : ins) {
    shapes.push_back(t.defined() ? &t.shape() : nullptr);
    dtypes.push_back(t.defined() ? t.dtype() : DType::f32);
  }
  return parse_rnn_attrs(kind, a, shapes, dtypes);
}

void rnn_kernel(RnnKind kind, KernelContext& ctx) {
  nn::require_inputs(ctx, 3);
  const RnnAttrs p = attrs_of_inputs(kind, ctx.attrs(), ctx.inputs);
  const char* op = rnn_op_name(kind);
  auto opt = [&](int i) -> const Tensor* {
    return i < static_cast<int>(ctx.inputs.size()) && ctx.inputs[static_cast<size_t>(i)].defined()
               ? &ctx.inputs[static_cast<size_t>(i)]
               : nullptr;
  };
  Inputs in;
  in.x = ctx.inputs[0].to_doubles();
  in.w = ctx.inputs[1].to_doubles();
  in.r = ctx.inputs[2].to_doubles();
  if (const Tensor* t = opt(3)) in.b = t->to_doubles();
  if (const Tensor* t = opt(kRnnSeqLens)) in.lens = t->to_int64s();
  if (const Tensor* t = opt(kRnnInitH)) in.h0 = t->to_doubles();
  if (kind == RnnKind::Lstm) {
    if (const Tensor* t = opt(kLstmInitC)) in.c0 = t->to_doubles();
    if (const Tensor* t = opt(kLstmP)) in.peep = t->to_doubles();
  }
  if (const Tensor* t = opt(rnn_mask_index(kind))) {
    const std::vector<double> m = t->to_doubles();
    in.mask.resize(m.size());
    for (size_t i = 0; i < m.size(); ++i) in.mask[i] = m[i] != 0;
  }
  Tensor* outs[3] = {nullptr, nullptr, nullptr};
  const size_t no = std::min<size_t>(ctx.outputs.size(), kind == RnnKind::Lstm ? 3 : 2);
  for (size_t i = 0; i < no; ++i) {
    Tensor& o = ctx.outputs[i];
    if (!o.defined()) continue;
    nn::check_output_shape(op, o, i == 0 ? p.y_shape : p.state_shape);
    outs[i] = &o;
  }
  for (int d = 0; d < p.dirs; ++d) run_direction(p, in, d, outs[0], outs[1], outs[2], ctx);
}

void rnn_infer(RnnKind kind, InferContext& ctx) {
  std::vector<const Shape*> shapes;
  std::vector<DType> dtypes;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    shapes.push_back(ctx.has_input(i) ? &ctx.shape(i) : nullptr);
    dtypes.push_back(ctx.has_input(i) ? ctx.dtype(i) : DType::f32);
  }
  const RnnAttrs p = parse_rnn_attrs(kind, ctx.attrs(), shapes, dtypes);
  const DType t = ctx.dtype(0);
  for (int i = 0; i < ctx.num_outputs(); ++i)
    ctx.set_output(i, t, i == 0 ? p.y_shape : p.state_shape);
}

std::vector<AttrSpec> rnn_attr_specs(RnnKind kind) {
  std::vector<AttrSpec> a = {
      {"activations", AttrType::Strings,
       "per direction: RNN f (Tanh), LSTM f, g, h (Sigmoid, Tanh, Tanh), GRU f, g (Sigmoid, "
       "Tanh); Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, "
       "Elu, Softsign, Softplus"},
      {"activation_alpha", AttrType::Floats,
       "alpha of the activations that take one, in order (default: the op's)"},
      {"activation_beta", AttrType::Floats,
       "beta of the activations that take one, in order (default: the op's)"},
      {"clip", AttrType::Float,
       "bounds every activation's input to [-clip, clip] (none if absent)"},
      {"direction", AttrType::String, "forward (default), reverse or bidirectional"},
      {"hidden_size", AttrType::Int, "hidden size (must match R; optional)"},
      {"layout", AttrType::Int,
       "0: X [seq, batch, input], Y [seq, dirs, batch, hidden], states [dirs, batch, hidden]; 1: "
       "batch first (X [batch, seq, input], Y [batch, seq, dirs, hidden], states [batch, dirs, "
       "hidden])"}};
  if (kind == RnnKind::Lstm)
    a.push_back({"input_forget", AttrType::Int, "1: couple the gates, f = 1 - i"});
  if (kind == RnnKind::Gru)
    a.push_back({"linear_before_reset", AttrType::Int,
                 "1: h = g(Xt*Wh + rt (.) (Ht-1*Rh + Rbh) + Wbh) (Keras reset_after)"});
  return a;
}

OpDef rnn_def(RnnKind kind, const char* doc) {
  OpDef d;
  d.name = rnn_op_name(kind);
  d.category = "recurrent";
  d.doc = doc;
  d.min_inputs = 3;
  d.max_inputs = rnn_mask_index(kind) + 1;
  d.min_outputs = 1;
  d.max_outputs = kind == RnnKind::Lstm ? 3 : 2;
  d.attrs = rnn_attr_specs(kind);
  d.infer = [kind](InferContext& c) { rnn_infer(kind, c); };
  d.reference = [kind](KernelContext& c) { rnn_kernel(kind, c); };
  return d;
}

const OpRegistrar reg_rnn{rnn_def(
    RnnKind::Rnn,
    "one-layer simple RNN, Ht = f(Xt*Wi' + Ht-1*Ri' + Wbi + Rbi); inputs X, W, R, B, "
    "sequence_lens, initial_h, step_mask (Anvil: [seq, batch] in X's order, 0 = masked step: the "
    "state carries over and Y there is that h); outputs Y, Y_h")};
const OpRegistrar reg_lstm{rnn_def(
    RnnKind::Lstm,
    "one-layer LSTM (gates i, o, f, c; peepholes P i, o, f); inputs X, W, R, B, sequence_lens, "
    "initial_h, initial_c, P, step_mask (Anvil: [seq, batch] in X's order, 0 = masked step: the "
    "state carries over and Y there is that h); outputs Y, Y_h, Y_c")};
const OpRegistrar reg_gru{rnn_def(
    RnnKind::Gru,
    "one-layer GRU (gates z, r, h; linear_before_reset); inputs X, W, R, B, sequence_lens, "
    "initial_h, step_mask (Anvil: [seq, batch] in X's order, 0 = masked step: the state carries "
    "over and Y there is that h); outputs Y, Y_h")};

}  // namespace
}  // namespace anvil
