// Keras pooling layers: MaxPooling/AveragePooling 1D-3D, GlobalMaxPooling/GlobalAveragePooling
// 1D-3D (and their short aliases).
#include "import/keras/keras_convert.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

KT pool(Translator& t, const KT& x, int nd, bool max) {
  bool cl = t.channels_last();
  if (t.rank(x.v) != nd + 2) t.fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  int xv = t.as_cf(x, cl);
  Shape xs = t.shape(xv);
  const char* pk = t.has("pool_size") ? "pool_size" : "pool_length";
  auto ks = t.tuple(pk, nd, 2);
  std::vector<int64_t> st = ks;
  if (t.has("strides"))
    st = t.tuple("strides", nd, 1);
  else if (t.has("stride"))
    st = t.tuple("stride", nd, 1);
  for (int q = 0; q < nd; ++q)
    if (ks[static_cast<size_t>(q)] < 1 || st[static_cast<size_t>(q)] < 1)
      t.fail("pool_size", "pool sizes and strides must be >= 1");
  std::string padding = t.s("padding", "valid");
  std::vector<int64_t> pads(static_cast<size_t>(2 * nd), 0);
  if (padding == "same") {
    for (int q = 0; q < nd; ++q) {
      size_t u = static_cast<size_t>(q);
      Pads p = t.theano() ? theano_same_pool_pads(xs[u + 2], ks[u], st[u])
                          : tf_same_pads(xs[u + 2], ks[u], st[u]);
      pads[u] = p.begin;
      pads[u + static_cast<size_t>(nd)] = p.end;
    }
  } else if (padding != "valid") {
    t.fail("padding", "unsupported padding '" + padding + "'");
  }
  Attributes a;
  a.set("kernel_shape", ks);
  a.set("strides", st);
  a.set("pads", pads);
  if (!max) a.set("count_include_pad", int64_t{0});  // Keras: padded cells never count
  int y = t.node(max ? "MaxPool" : "AveragePool", {xv}, a, true);
  return t.cf_out(y, cl);
}

/// GlobalAveragePooling1D of a masked input: the mean over the real steps only (Keras:
/// sum(x * mask) / sum(mask) over time).
KT masked_mean_1d(Translator& t, const KT& x, int mask, bool cl) {
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);
  int64_t time_axis = cl ? 1 : 2;
  Shape ms = cl ? Shape{xs[0], xs[1], 1} : Shape{xs[0], 1, xs[2]};
  int m = t.node("Reshape", {mask, t.i64s("mask_shape", ms)});
  int prod = t.node("Mul", {xv, m});
  Attributes a;
  a.set("keepdims", int64_t{0});
  int num = t.node("ReduceSum", {prod, t.i64s("axes", {time_axis})}, a);
  int den = t.node("ReduceSum", {m, t.i64s("axes", {time_axis})}, a);
  return KT{t.node("Div", {num, den}, {}, true), {}};
}

KT global_pool(Translator& t, const KT& x, int nd, bool max) {
  bool cl = t.channels_last();
  if (t.rank(x.v) != nd + 2) t.fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  if (nd == 1 && !max && t.mask_of(x) >= 0 && !t.b("keepdims", false))
    return masked_mean_1d(t, x, t.mask_of(x), cl);
  int xv = t.as_cf(x, cl);
  bool keep = t.b("keepdims", false);
  int y = t.node(max ? "GlobalMaxPool" : "GlobalAveragePool", {xv}, {}, keep);
  if (keep) return t.cf_out(y, cl);
  Shape ys = t.shape(y);
  return KT{t.node("Reshape", {y, t.i64s("shape", {ys[0], ys[1]})}, {}, true), {}};
}

template <int ND, bool MAX>
std::vector<KT> pool_layer(Translator& t, const std::vector<KT>& ins) {
  return {pool(t, t.one(ins), ND, MAX)};
}

template <int ND, bool MAX>
std::vector<KT> global_pool_layer(Translator& t, const std::vector<KT>& ins) {
  return {global_pool(t, t.one(ins), ND, MAX)};
}

const ConverterRegistrar pool_layers({
    {"MaxPooling1D", pool_layer<1, true>},
    {"MaxPool1D", pool_layer<1, true>},
    {"MaxPooling2D", pool_layer<2, true>},
    {"MaxPool2D", pool_layer<2, true>},
    {"MaxPooling3D", pool_layer<3, true>},
    {"AveragePooling1D", pool_layer<1, false>},
    {"AvgPool1D", pool_layer<1, false>},
    {"AveragePooling2D", pool_layer<2, false>},
    {"AvgPool2D", pool_layer<2, false>},
    {"AveragePooling3D", pool_layer<3, false>},
    {"MaxPool3D", pool_layer<3, true>},
    {"AvgPool3D", pool_layer<3, false>},
    {"GlobalAveragePooling1D", global_pool_layer<1, false>},
    {"GlobalAvgPool1D", global_pool_layer<1, false>},
    {"GlobalAveragePooling2D", global_pool_layer<2, false>},
    {"GlobalAvgPool2D", global_pool_layer<2, false>},
    {"GlobalMaxPooling1D", global_pool_layer<1, true>},
    {"GlobalMaxPool1D", global_pool_layer<1, true>},
    {"GlobalMaxPooling2D", global_pool_layer<2, true>},
    {"GlobalMaxPool2D", global_pool_layer<2, true>},
    {"GlobalAveragePooling3D", global_pool_layer<3, false>},
    {"GlobalAvgPool3D", global_pool_layer<3, false>},
    {"GlobalMaxPooling3D", global_pool_layer<3, true>},
    {"GlobalMaxPool3D", global_pool_layer<3, true>},
});

}  // namespace

}  // namespace anvil::keras
