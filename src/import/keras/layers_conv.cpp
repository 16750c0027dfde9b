// Keras convolution layers: Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D,
// Conv1DTranspose/Conv2DTranspose (and their Keras 1 names).
#include <algorithm>

#include "import/keras/keras_convert.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

enum class ConvKind { plain, depthwise, separable, transposed };

/// The layer's kernel in canonical layout, with the output channels and the group count.
struct ConvKernel {
  Tensor w;
  int64_t cout = 0, group = 1, dm = 1;
};

ConvKernel conv_kernel(Translator& t, ConvKind kind, int nd, const std::vector<int64_t>& ks,
                       int64_t cin, int64_t groups) {
  Shape want(ks.begin(), ks.end());  // Keras kernel shape
  ConvKernel r;
  r.dm = t.i("depth_multiplier", 1);
  if (kind == ConvKind::depthwise || kind == ConvKind::separable) {
    if (r.dm < 1 || r.dm > (1 << 20)) t.fail("depth_multiplier", "bad depth_multiplier");
    want.push_back(cin);
    want.push_back(r.dm);
    r.w = depthwise_kernel_to_oihw(t.weight("depthwise_kernel", 0, want));
    r.cout = cin * r.dm;
    r.group = cin;
    return r;
  }
  int64_t filters = t.i("filters", -1);
  if (filters < 1) t.fail("filters", "filters must be >= 1");
  bool transposed = kind == ConvKind::transposed;
  want.push_back(transposed ? filters : cin / groups);
  want.push_back(transposed ? cin : filters);
  Tensor k = t.weight("kernel", 0, want);
  if (t.theano()) k = flip_spatial(k, nd);
  r.w = transposed ? conv_transpose_kernel_to_iohw(k) : conv_kernel_to_oihw(k);
  r.cout = filters;
  r.group = transposed ? 1 : groups;
  return r;
}

/// Per-side pads (begin..., end...) of a forward convolution; `outpad` for a transposed one.
std::vector<int64_t> conv_pads(Translator& t, bool transposed, const Shape& xs,
                               const std::vector<int64_t>& ks, const std::vector<int64_t>& st,
                               const std::vector<int64_t>& dil, const std::string& padding,
                               std::vector<int64_t>& outpad) {
  size_t nd = ks.size();
  std::vector<int64_t> pads(2 * nd, 0);
  outpad.assign(nd, 0);
  std::vector<int64_t> op(nd, -1);
  if (transposed && t.has("output_padding"))
    op = t.tuple("output_padding", static_cast<int>(nd), 0);
  for (size_t u = 0; u < nd; ++u) {
    int64_t in = xs[u + 2];
    if (transposed) {
      int64_t out = deconv_length(in, ks[u], st[u], padding, op[u], dil[u]);
      if (out < 1) t.fail("padding", "transposed convolution output would be empty");
      auto tp = conv_transpose_pads(in, ks[u], st[u], dil[u], out, t.theano(), padding);
      pads[u] = tp.pads.begin;
      pads[u + nd] = tp.pads.end;
      outpad[u] = tp.output_padding;
    } else if (padding == "same") {
      Pads p = t.theano() ? theano_same_conv_pads(in, ks[u], st[u], dil[u])
                          : tf_same_pads(in, ks[u], st[u], dil[u]);
      pads[u] = p.begin;
      pads[u + nd] = p.end;
    } else if (padding == "causal") {
      pads[u] = effective_kernel(ks[u], dil[u]) - 1;
    }
  }
  return pads;
}

/// The activation after the convolution `y` (channels-first), if the layer has one.
KT conv_output(Translator& t, int y, bool cl, const std::string& act, bool has_act) {
  KT out = t.cf_out(y, cl);
  if (has_act) out.v = apply_activation(t, out, act, true);
  return out;
}

/// SeparableConv2D: the depthwise part carries stride/dilation/pads; a pointwise 1x1 conv
/// carries the bias.
KT separable_conv(Translator& t, int xv, Attributes a, const ConvKernel& k, int nd, int64_t cin,
                  bool cl) {
  std::string act = t.s("activation", "linear");
  bool has_act = !(act == "linear" || act.empty());
  bool use_bias = t.b("use_bias", true);
  int dwv = t.node("Conv", {xv, t.cst("depthwise_kernel", k.w)}, a);
  int64_t filters = t.i("filters", -1);
  if (filters < 1) t.fail("filters", "filters must be >= 1");
  Shape want(static_cast<size_t>(nd), 1);
  want.push_back(cin * k.dm);
  want.push_back(filters);
  Tensor pk = conv_kernel_to_oihw(t.weight("pointwise_kernel", 1, want));
  std::vector<int> ins{dwv, t.cst("pointwise_kernel", pk)};
  if (use_bias) ins.push_back(t.cst("bias", t.weight("bias", 2, {filters})));
  t.expect_weight_count(use_bias ? 3 : 2);
  Attributes pa;
  pa.set("kernel_shape", std::vector<int64_t>(static_cast<size_t>(nd), 1));
  pa.set("strides", std::vector<int64_t>(static_cast<size_t>(nd), 1));
  pa.set("pads", std::vector<int64_t>(static_cast<size_t>(2 * nd), 0));
  return conv_output(t, t.node("Conv", ins, pa, !has_act), cl, act, has_act);
}

KT conv(Translator& t, const KT& x, int nd, ConvKind kind) {
  bool cl = t.channels_last();
  bool transposed = kind == ConvKind::transposed;
  if (t.rank(x.v) != nd + 2)
    t.fail("input", "expects a rank-" + std::to_string(nd + 2) + " input, found " +
                        shape_str(t.src_shape(x)));
  int xv = t.as_cf(x, cl);
  Shape xs = t.shape(xv);  // (N, C, spatial...)
  int64_t cin = xs[1];
  auto ks = t.tuple("kernel_size", nd, 1);
  auto st = t.tuple("strides", nd, 1);
  auto dil = t.tuple("dilation_rate", nd, 1);
  for (int q = 0; q < nd; ++q)
    if (ks[static_cast<size_t>(q)] < 1 || st[static_cast<size_t>(q)] < 1 ||
        dil[static_cast<size_t>(q)] < 1)
      t.fail("kernel_size", "kernel sizes, strides and dilations must be >= 1");
  std::string padding = t.s("padding", "valid");
  if (padding != "valid" && padding != "same" && padding != "causal" && padding != "full")
    t.fail("padding", "unsupported padding '" + padding + "'");
  if (padding == "causal" && (nd != 1 || transposed))
    t.fail("padding", "causal padding is only for Conv1D");
  bool use_bias = t.b("use_bias", true);
  int64_t groups = t.i("groups", 1);
  if (groups < 1 || cin % groups != 0) t.fail("groups", "groups must divide the input channels");
  ConvKernel k = conv_kernel(t, kind, nd, ks, cin, groups);
  std::vector<int64_t> outpad;
  std::vector<int64_t> pads = conv_pads(t, transposed, xs, ks, st, dil, padding, outpad);
  Attributes a;
  a.set("kernel_shape", ks);
  a.set("strides", st);
  a.set("dilations", dil);
  if (k.group != 1) a.set("group", k.group);
  a.set("pads", pads);
  if (kind == ConvKind::separable) return separable_conv(t, xv, a, k, nd, cin, cl);
  if (transposed && std::any_of(outpad.begin(), outpad.end(), [](int64_t v) { return v != 0; }))
    a.set("output_padding", outpad);
  std::string act = t.s("activation", "linear");
  bool has_act = !(act == "linear" || act.empty());
  std::vector<int> ins{xv, t.cst(kind == ConvKind::depthwise ? "depthwise_kernel" : "kernel", k.w)};
  if (use_bias) ins.push_back(t.cst("bias", t.weight("bias", 1, {k.cout})));
  t.expect_weight_count(use_bias ? 2 : 1);
  return conv_output(t, t.node(transposed ? "ConvTranspose" : "Conv", ins, a, !has_act), cl, act,
                     has_act);
}

template <int ND, ConvKind K>
std::vector<KT> conv_layer(Translator& t, const std::vector<KT>& ins) {
  return {conv(t, t.one(ins), ND, K)};
}

const ConverterRegistrar conv_layers({
    {"Conv1D", conv_layer<1, ConvKind::plain>},
    {"Convolution1D", conv_layer<1, ConvKind::plain>},
    {"Conv2D", conv_layer<2, ConvKind::plain>},
    {"Convolution2D", conv_layer<2, ConvKind::plain>},
    {"Conv3D", conv_layer<3, ConvKind::plain>},
    {"DepthwiseConv2D", conv_layer<2, ConvKind::depthwise>},
    {"SeparableConv2D", conv_layer<2, ConvKind::separable>},
    {"SeparableConvolution2D", conv_layer<2, ConvKind::separable>},
    {"Conv2DTranspose", conv_layer<2, ConvKind::transposed>},
    {"Deconvolution2D", conv_layer<2, ConvKind::transposed>},
    {"Conv1DTranspose", conv_layer<1, ConvKind::transposed>},
});

}  // namespace

}  // namespace anvil::keras
