// Keras ConvLSTM2D, lowered to plain ops (the canonical LSTM is a dense cell; this one
// convolves): the input convolution of every step at once (time folded into the batch, bias
// included), then the recurrence unrolled over the (static) time steps:
//   z_t = x_conv[t] + conv_same(h_{t-1}, recurrent_kernel)       (4*filters channels, i f c o)
//   i, f, o = recurrent_activation(z_i, z_f, z_o);  c_t = f*c_{t-1} + i*activation(z_c)
//   h_t = o * activation(c_t)                                      (h_0 = c_0 = 0)
// Keras on Theano convolves (flips kernels), like the Conv layers; go_backwards reverses the
// steps (outputs in processing order, as Keras returns them); return_state adds h and c.
#include "import/keras/keras_convert.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

/// Channels [k*f, (k+1)*f) of a (N, 4f, H, W) value.
int gate(Translator& t, int z, int k, int64_t f) {
  return t.node("Slice",
                {z, t.i64s("starts", {k * f}), t.i64s("ends", {(k + 1) * f}), t.i64s("axes", {1})});
}

std::vector<KT> conv_lstm2d_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  const bool cl = t.channels_last();
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);  // (N, T, H, W, C) or (N, T, C, H, W)
  if (xs.size() != 5) t.fail("input", "ConvLSTM2D expects a (batch, time, rows, cols, ch) input");
  const int64_t n = xs[0], steps = xs[1], cin = cl ? xs[4] : xs[2];
  const int64_t f = t.i("filters", -1);
  if (f < 1 || f > (int64_t{1} << 20)) t.fail("filters", "filters must be >= 1");
  auto ks = t.tuple("kernel_size", 2, 1);
  auto st = t.tuple("strides", 2, 1);
  auto dil = t.tuple("dilation_rate", 2, 1);
  for (size_t q = 0; q < 2; ++q)
    if (ks[q] < 1 || st[q] < 1 || dil[q] < 1) t.fail("kernel_size", "sizes must be >= 1");
  std::string padding = t.s("padding", "valid");
  if (padding != "valid" && padding != "same") t.fail("padding", "unsupported padding");
  std::string act = t.s("activation", "tanh"), rec_act = t.s("recurrent_activation", "sigmoid");
  bool use_bias = t.b("use_bias", true);
  bool return_sequences = t.b("return_sequences", false), return_state = t.b("return_state", false);
  // weights
  Tensor k = t.weight("kernel", 0, {ks[0], ks[1], cin, 4 * f});
  Tensor rk = t.weight("recurrent_kernel", 1, {ks[0], ks[1], f, 4 * f});
  if (t.theano()) k = flip_spatial(k, 2), rk = flip_spatial(rk, 2);
  t.expect_weight_count(use_bias ? 3 : 2);
  // the input convolution of every step: (N*T, C, H, W)
  Shape folded{n * steps};
  folded.insert(folded.end(), xs.begin() + 2, xs.end());
  int fx = t.node("Reshape", {xv, t.i64s("fold_time", folded)});
  if (cl) {
    Attributes ta;
    ta.set("perm", std::vector<int64_t>{0, 3, 1, 2});
    fx = t.node("Transpose", {fx}, ta);
  }
  Shape fs = t.shape(fx);
  auto conv_attrs = [&](const std::vector<int64_t>& kk, const std::vector<int64_t>& ss,
                        const std::vector<int64_t>& dd, const std::string& pad,
                        const Shape& in_shape) {
    std::vector<int64_t> pads(4, 0);
    if (pad == "same")
      for (size_t q = 0; q < 2; ++q) {
        Pads p = t.theano() ? theano_same_conv_pads(in_shape[q + 2], kk[q], ss[q], dd[q])
                            : tf_same_pads(in_shape[q + 2], kk[q], ss[q], dd[q]);
        pads[q] = p.begin;
        pads[q + 2] = p.end;
      }
    Attributes a;
    a.set("kernel_shape", kk);
    a.set("strides", ss);
    a.set("dilations", dd);
    a.set("pads", pads);
    return a;
  };
  std::vector<int> cins{fx, t.cst("kernel", conv_kernel_to_oihw(k))};
  if (use_bias) cins.push_back(t.cst("bias", t.weight("bias", 2, {4 * f})));
  int xc = t.node("Conv", cins, conv_attrs(ks, st, dil, padding, fs));
  Shape cs = t.shape(xc);  // (N*T, 4f, H', W')
  const int64_t ho = cs[2], wo = cs[3];
  xc = t.node("Reshape", {xc, t.i64s("unfold_time", {n, steps, 4 * f, ho, wo})});
  if (t.b("go_backwards", false)) {
    std::vector<int64_t> idx;
    for (int64_t s = steps - 1; s >= 0; --s) idx.push_back(s);
    Attributes ga;
    ga.set("axis", int64_t{1});
    xc = t.node("Gather", {xc, t.i64s("reversed_steps", idx)}, ga);
  }
  int rkv = t.cst("recurrent_kernel", conv_kernel_to_oihw(rk));
  Attributes ra = conv_attrs({ks[0], ks[1]}, {1, 1}, {1, 1}, "same", Shape{n, f, ho, wo});
  int h = -1, c = -1;
  std::vector<int> seq;
  for (int64_t s = 0; s < steps; ++s) {
    int z =
        t.node("Slice", {xc, t.i64s("starts", {s}), t.i64s("ends", {s + 1}), t.i64s("axes", {1})});
    z = t.node("Reshape", {z, t.i64s("step_shape", {n, 4 * f, ho, wo})});
    if (h >= 0) z = t.node("Add", {z, t.node("Conv", {h, rkv}, ra)});
    int gi = apply_activation(t, KT{gate(t, z, 0, f), {}}, rec_act, false);
    int gf = apply_activation(t, KT{gate(t, z, 1, f), {}}, rec_act, false);
    int gc = apply_activation(t, KT{gate(t, z, 2, f), {}}, act, false);
    int go = apply_activation(t, KT{gate(t, z, 3, f), {}}, rec_act, false);
    int ic = t.node("Mul", {gi, gc});
    c = c < 0 ? ic : t.node("Add", {t.node("Mul", {gf, c}), ic});
    h = t.node("Mul", {go, apply_activation(t, KT{c, {}}, act, false)});
    if (return_sequences)
      seq.push_back(t.node("Reshape", {h, t.i64s("step_out", {n, 1, f, ho, wo})}));
  }
  std::vector<KT> outs;
  if (return_sequences) {
    Attributes ca;
    ca.set("axis", int64_t{1});
    int y = seq.size() == 1 ? seq[0] : t.node("Concat", seq, ca);
    Attributes ta;  // (N, T, F, H, W) -> Keras's layout
    ta.set("perm", cl ? std::vector<int64_t>{0, 1, 3, 4, 2} : std::vector<int64_t>{0, 1, 2, 3, 4});
    outs.push_back(KT{t.node("Transpose", {y}, ta, true), {}});
  } else {
    outs.push_back(t.cf_out(t.node("Identity", {h}, {}, true), cl));
  }
  if (return_state) {
    outs.push_back(t.cf_out(t.node("Identity", {h}), cl));
    outs.push_back(t.cf_out(t.node("Identity", {c}), cl));
  }
  return outs;
}

const ConverterRegistrar convlstm_layers({
    {"ConvLSTM2D", conv_lstm2d_layer},
});

}  // namespace

}  // namespace anvil::keras
