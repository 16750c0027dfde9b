// cpu backend handler: RNN, LSTM, GRU on oneDNN's RNN primitives (vanilla_rnn_forward,
// lstm_forward with or without peepholes, gru_forward, lbr_gru_forward for
// linear_before_reset = 1). The weights are constants reordered once at compile time from
// ONNX's gate order and [dirs, gates*hidden, in] layout into oneDNN's ldigo (LSTM gates
// i, o, f, c -> i, f, c, o; peepholes i, o, f -> i, f, o; GRU z, r, h = u, r, o; the biases Wb +
// Rb summed, lbr-GRU keeping Rbh apart). Forms oneDNN lacks run on the reference kernel:
// sequence_lens (unless every length is the full sequence), step_mask, clip, input_forget,
// activations other than the defaults (RNN: one of Relu, LeakyRelu, Tanh, Sigmoid for every
// direction), weights computed at run time, dtypes other than f32 and bf16 (bf16: bias and
// peepholes stay f32, as oneDNN wants; where oneDNN has no bf16 RNN the node falls back).
#include <algorithm>
#include <dnnl.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "backend/cpu/executable.h"
#include "ops/recurrent.h"

namespace anvil::cpu {

namespace {

// oneDNN gate g -> ONNX gate.
int onnx_gate(RnnKind k, int g) {
  static const int lstm[4] = {0, 2, 3, 1};  // i, f, c, o <- i, o, f, c
  return k == RnnKind::Lstm ? lstm[g] : g;
}

bool default_acts(const RnnAttrs& p) {
  for (int d = 0; d < p.dirs; ++d)
    for (int i = 0; i < p.nact; ++i) {
      const RnnActivation& a = p.act(d, i);
      const bool want_sigmoid = i == 0;
      if (a.kind != (want_sigmoid ? RnnActivation::Sigmoid : RnnActivation::Tanh)) return false;
    }
  return true;
}

// A strided view descriptor: dims with the given strides.
memory::desc strided(const Dims& dims, const Dims& strides, memory::data_type t) {
  return memory::desc(dims, t, strides);
}

}  // namespace

bool CpuExecutable::do_rnn(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (ty_ != DType::f32 && ty_ != DType::bf16) return false;
  std::optional<RnnAttrs> pa;
  try {
    pa = rnn_attrs(g_, n);
  } catch (const Error&) {
    return false;  // the reference kernel reports it
  }
  const RnnAttrs& p = *pa;
  auto in = [&](int i) {
    return i < static_cast<int>(n.inputs.size()) ? n.inputs[static_cast<size_t>(i)] : -1;
  };
  if (p.has_mask || p.has_clip || p.input_forget) return false;
  if (p.seq == 0 || p.batch == 0) return false;
  if (!dnnl_value(in(0)) || !val(in(1)).is_constant() || !val(in(2)).is_constant()) return false;
  if (p.has_b && !val(in(3)).is_constant()) return false;
  if (p.has_p && !val(in(kLstmP)).is_constant()) return false;
  if (p.has_seq_lens) {  // only lengths that are all the full sequence
    const Value& l = val(in(kRnnSeqLens));
    if (!l.is_constant()) return false;
    for (int64_t v : l.constant.to_int64s())
      if (v != p.seq) return false;
  }
  if (p.has_init_h && !dnnl_value(in(kRnnInitH))) return false;
  if (p.has_init_c && !dnnl_value(in(kLstmInitC))) return false;
  for (int o : n.outputs)
    if (!dnnl_value(o)) return false;
  algorithm rnn_act = algorithm::eltwise_tanh;
  float rnn_alpha = 0.f;
  if (p.kind == RnnKind::Rnn) {
    const RnnActivation& a = p.act(0, 0);
    for (int d = 1; d < p.dirs; ++d) {
      const RnnActivation& b = p.act(d, 0);
      if (b.kind != a.kind || b.alpha != a.alpha) return false;
    }
    switch (a.kind) {
      case RnnActivation::Relu:
        if (nan_safe_) return false;
        rnn_act = algorithm::eltwise_relu;
        break;
      case RnnActivation::LeakyRelu:
        if (nan_safe_) return false;
        rnn_act = algorithm::eltwise_relu;
        rnn_alpha = to_f(a.alpha);
        break;
      case RnnActivation::Tanh:
        rnn_act = algorithm::eltwise_tanh;
        break;
      case RnnActivation::Sigmoid:
        rnn_act = algorithm::eltwise_logistic;
        break;
      default:
        return false;
    }
  } else if (!default_acts(p)) {
    return false;
  }

  const int64_t T = p.seq, N = p.batch, I = p.input, H = p.hidden, D = p.dirs;
  const int64_t G = p.gates;
  const bool lbr = p.kind == RnnKind::Gru && p.linear_before_reset;
  const int64_t GB = lbr ? G + 1 : G;  // bias gates
  // ---- weights in oneDNN's order, plain ldigo / ldgo (f32)
  const Tensor Wt = val(in(1)).constant.to(DType::f32), Rt = val(in(2)).constant.to(DType::f32);
  const float* W = Wt.data<float>();
  const float* R = Rt.data<float>();
  Tensor wl(DType::f32, {1, D, I, G, H}), wi(DType::f32, {1, D, H, G, H}),
      bias(DType::f32, {1, D, GB, H});
  float* wlp = wl.data<float>();
  float* wip = wi.data<float>();
  float* bp = bias.data<float>();
  for (int64_t d = 0; d < D; ++d)
    for (int64_t g = 0; g < G; ++g) {
      const int64_t og = onnx_gate(p.kind, static_cast<int>(g));
      for (int64_t j = 0; j < H; ++j) {
        const int64_t row = og * H + j;
        for (int64_t i = 0; i < I; ++i)
          wlp[((d * I + i) * G + g) * H + j] = W[(d * G * H + row) * I + i];
        for (int64_t i = 0; i < H; ++i)
          wip[((d * H + i) * G + g) * H + j] = R[(d * G * H + row) * H + i];
      }
    }
  std::fill(bp, bp + bias.numel(), 0.f);
  if (p.has_b) {
    const Tensor Bt = val(in(3)).constant.to(DType::f32);
    const float* B = Bt.data<float>();
    for (int64_t d = 0; d < D; ++d) {
      const float* wb = B + d * 2 * G * H;
      const float* rb = wb + G * H;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t og = onnx_gate(p.kind, static_cast<int>(g));
        for (int64_t j = 0; j < H; ++j) {
          float v = wb[og * H + j];
          if (!(lbr && g == 2)) v += rb[og * H + j];
          bp[(d * GB + g) * H + j] = v;
        }
      }
      if (lbr)
        for (int64_t j = 0; j < H; ++j) bp[(d * GB + 3) * H + j] = rb[2 * H + j];
    }
  }
  Tensor peep;
  if (p.has_p) {
    peep = Tensor(DType::f32, {1, D, 3, H});
    const Tensor Pt = val(in(kLstmP)).constant.to(DType::f32);
    const float* P = Pt.data<float>();
    static const int order[3] = {0, 2, 1};  // i, f, o <- i, o, f
    for (int64_t d = 0; d < D; ++d)
      for (int64_t g = 0; g < 3; ++g)
        for (int64_t j = 0; j < H; ++j)
          peep.data<float>()[(d * 3 + g) * H + j] = P[(d * 3 + order[g]) * H + j];
  }

  // ---- descriptors
  const dt f = dty_;       // activations, states, weights (f32, or bf16 after reduce_precision)
  const dt f32 = dt::f32;  // bias, peepholes and the host copies of the weights
  const bool bf = p.layout == 1;  // batch first
  const memory::desc src_layer = memory::desc({T, N, I}, f, bf ? tag::ntc : tag::tnc);
  const memory::desc dst_layer = memory::desc({T, N, D * H}, f, bf ? tag::ntc : tag::tnc);
  const memory::desc iter = memory::desc({1, D, N, H}, f, tag::ldnc);
  // oneDNN's LSTM takes both states or neither (in and out): a missing one is zeros / scratch.
  const bool lstm = p.kind == RnnKind::Lstm;
  const bool give_h = p.has_init_h || (lstm && p.has_init_c);
  const bool give_c = lstm && give_h;
  const bool want_h = n.outputs.size() > 1 || (lstm && n.outputs.size() > 2);
  const bool want_c = lstm && want_h;
  const memory::desc none;
  const dnnl::rnn_direction dir = D == 2         ? dnnl::rnn_direction::bidirectional_concat
                                  : p.reverse(0) ? dnnl::rnn_direction::unidirectional_right2left
                                                 : dnnl::rnn_direction::unidirectional_left2right;
  // Weights layout: oneDNN 2.6 picks its brgemm kernels for `any` (blocked weights), which
  // are several times slower than its gemm-based kernels on plain ldigo weights at small
  // batch (2-layer LSTM, hidden 256, 100 steps, batch 1: ~30 ms vs ~4 ms) and faster at large
  // batch (batch 32: ~130 ms vs ~190 ms).
  const tag wtag = N < 8 ? tag::ldigo : tag::any;
  const memory::desc wl_any({1, D, I, G, H}, f, wtag), wi_any({1, D, H, G, H}, f, wtag);
  const memory::desc b_md = plain_md({1, D, GB, H}, f32);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const prop_kind pk = prop_kind::forward_inference;
  dnnl::primitive prim;
  std::optional<dnnl::rnn_primitive_desc_base> pd;
  try {
    switch (p.kind) {
      case RnnKind::Rnn: {
        dnnl::vanilla_rnn_forward::desc d(pk, rnn_act, dir, src_layer, give_h ? iter : none, wl_any,
                                          wi_any, b_md, dst_layer, want_h ? iter : none,
                                          dnnl::rnn_flags::undef, rnn_alpha, 0.f);
        dnnl::vanilla_rnn_forward::primitive_desc q(d, attr, engine());
        prim = dnnl::vanilla_rnn_forward(q);
        pd = q;
        break;
      }
      case RnnKind::Lstm: {
        const memory::desc pm = p.has_p ? plain_md({1, D, 3, H}, f32) : none;
        dnnl::lstm_forward::desc d(pk, dir, src_layer, give_h ? iter : none, give_c ? iter : none,
                                   wl_any, wi_any, pm, b_md, dst_layer, want_h ? iter : none,
                                   want_c ? iter : none);
        dnnl::lstm_forward::primitive_desc q(d, attr, engine());
        prim = dnnl::lstm_forward(q);
        pd = q;
        break;
      }
      case RnnKind::Gru: {
        if (lbr) {
          dnnl::lbr_gru_forward::desc d(pk, dir, src_layer, give_h ? iter : none, wl_any, wi_any,
                                        b_md, dst_layer, want_h ? iter : none);
          dnnl::lbr_gru_forward::primitive_desc q(d, attr, engine());
          prim = dnnl::lbr_gru_forward(q);
          pd = q;
        } else {
          dnnl::gru_forward::desc d(pk, dir, src_layer, give_h ? iter : none, wl_any, wi_any, b_md,
                                    dst_layer, want_h ? iter : none);
          dnnl::gru_forward::primitive_desc q(d, attr, engine());
          prim = dnnl::gru_forward(q);
          pd = q;
        }
        break;
      }
    }
  } catch (const dnnl::error&) {
    return false;
  }

  // ---- slots
  auto view_md = [&](int s, const memory::desc& md) {
    Slot v = slot(s);
    v.md = md;
    v.plain = false;  // a view for this step only; never read as a plain tensor
    v.mem = dnnl::memory();
    return add_slot(std::move(v));
  };
  std::vector<std::pair<int, int>> args;
  args.push_back({DNNL_ARG_SRC_LAYER, view_md(plain_of(in(0)), src_layer)});
  // States: layout 0 [D, N, H] is ldnc itself; layout 1 [N, D, H] goes through a reorder.
  auto state_in = [&](int v, int arg) {
    int s = plain_of(v);
    if (!bf) {
      args.push_back({arg, view_md(s, iter)});
      return;
    }
    int t = new_arena_slot(ty_, {1, D, N, H}, iter, -1);
    const memory::desc from = strided({1, D, N, H}, {D * N * H, H, D * H, 1}, f);
    push_reorder(view_md(s, from), t, val(v).name + " (to ldnc)");
    args.push_back({arg, t});
  };
  Tensor zeros;
  auto state_in_or_zeros = [&](bool has, int v, int arg) {
    if (has) return state_in(v, arg);
    if (!zeros.defined()) {
      zeros = Tensor(DType::f32, {1, D, N, H});
      std::fill(zeros.data<float>(), zeros.data<float>() + zeros.numel(), 0.f);
    }
    args.push_back({arg, owned_weights(iter, plain_md({1, D, N, H}, f32), zeros.raw())});
  };
  if (give_h) state_in_or_zeros(p.has_init_h, in(kRnnInitH), DNNL_ARG_SRC_ITER);
  if (give_c) state_in_or_zeros(p.has_init_c, in(kLstmInitC), DNNL_ARG_SRC_ITER_C);
  args.push_back({DNNL_ARG_WEIGHTS_LAYER, owned_weights(pd->weights_layer_desc(),
                                                        plain_md({1, D, I, G, H}, f32), wl.raw())});
  args.push_back({DNNL_ARG_WEIGHTS_ITER, owned_weights(pd->weights_iter_desc(),
                                                       plain_md({1, D, H, G, H}, f32), wi.raw())});
  if (p.has_p)
    args.push_back(
        {DNNL_ARG_WEIGHTS_PEEPHOLE,
         owned_weights(pd->weights_peephole_desc(), plain_md({1, D, 3, H}, f32), peep.raw())});
  args.push_back({DNNL_ARG_BIAS, owned_weights(pd->bias_desc(), b_md, bias.raw())});

  // Outputs: Y is dst_layer itself except for bidirectional layout 0 ([T, 2, N, H] vs
  // oneDNN's [T, N, 2H]: a reorder after the step).
  const int yv = n.outputs[0];
  const int ys = new_arena_slot(ty_, val(yv).shape, plain_md(val(yv).shape, f), yv);
  vslot_[static_cast<size_t>(yv)] = ys;
  int dl = -1;
  const bool y_reorder = D == 2 && !bf;
  if (y_reorder)
    dl = new_arena_slot(ty_, {T, N, D * H}, dst_layer, -1);
  else
    dl = view_md(ys, dst_layer);
  args.push_back({DNNL_ARG_DST_LAYER, dl});
  std::vector<std::pair<int, int>> after;  // (from slot, to slot) reorders after the step
  if (y_reorder)
    after.push_back({view_md(dl, strided({T, D, N, H}, {N * D * H, H, D * H, 1}, f)), ys});
  auto state_out = [&](int v, int arg) {
    const int s = new_arena_slot(ty_, val(v).shape, plain_md(val(v).shape, f), v);
    vslot_[static_cast<size_t>(v)] = s;
    if (!bf) {
      args.push_back({arg, view_md(s, iter)});
      return;
    }
    const int t = new_arena_slot(ty_, {1, D, N, H}, iter, -1);
    args.push_back({arg, t});
    // ldnc [1, D, N, H] -> [N, D, H]: the destination viewed as [1, D, N, H] with strides.
    after.push_back({t, view_md(s, strided({1, D, N, H}, {D * N * H, H, D * H, 1}, f))});
  };
  auto state_out_or_scratch = [&](size_t o, int arg) {
    if (o < n.outputs.size()) return state_out(n.outputs[o], arg);
    args.push_back({arg, new_arena_slot(ty_, {1, D, N, H}, iter, -1)});
  };
  if (want_h) state_out_or_scratch(1, DNNL_ARG_DST_ITER);
  if (want_c) state_out_or_scratch(2, DNNL_ARG_DST_ITER_C);
  push_prim(n.name, n.op, prim, *pd, std::move(args));
  for (const auto& [from, to] : after) push_reorder(from, to, n.name + " (output order)");
  return true;
}

}  // namespace anvil::cpu
