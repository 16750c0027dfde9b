// Keras core layers: Dense and the layers that are the identity at inference (Dropout family,
// noise, ActivityRegularization). Masking is in layers_sequence.cpp.
#include "import/keras/keras_convert.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

KT dense(Translator& t, const KT& x) {
  int64_t units = t.i("units", t.i("output_dim", -1));
  if (units < 1) t.fail("units", "units must be >= 1");
  int xv = t.as_source(x);
  Shape xs = t.shape(xv);
  if (xs.size() < 2) t.fail("input", "Dense needs a rank >= 2 input");
  int64_t in = xs.back();
  bool use_bias = t.b("use_bias", true);
  Tensor k = dense_kernel_to_gemm(t.weight("kernel", 0, {in, units}));
  std::string act = t.s("activation", "linear");
  bool has_act = !(act == "linear" || act.empty());
  int y;
  if (xs.size() == 2) {
    std::vector<int> ins{xv, t.cst("kernel", k)};
    if (use_bias) ins.push_back(t.cst("bias", t.weight("bias", 1, {units})));
    y = t.node("Gemm", ins, {}, !has_act);
  } else {
    y = t.node("MatMul", {xv, t.cst("kernel", k)}, {}, !has_act && !use_bias);
    if (use_bias) y = t.node("Add", {y, t.cst("bias", t.weight("bias", 1, {units}))}, {}, !has_act);
  }
  t.expect_weight_count(use_bias ? 2 : 1);
  KT out{y, {}};
  if (has_act) out.v = apply_activation(t, out, act, true);
  return out;
}

std::vector<KT> dense_layer(Translator& t, const std::vector<KT>& ins) {
  return {dense(t, t.one(ins))};
}

std::vector<KT> identity_layer(Translator& t, const std::vector<KT>& ins) {
  const KT& x = t.one(ins);
  return {KT{t.node("Identity", {x.v}, {}, true), x.perm}};
}

const ConverterRegistrar core_layers({
    {"Dense", dense_layer},
    {"Dropout", identity_layer},
    {"SpatialDropout1D", identity_layer},
    {"SpatialDropout2D", identity_layer},
    {"SpatialDropout3D", identity_layer},
    {"GaussianNoise", identity_layer},
    {"GaussianDropout", identity_layer},
    {"AlphaDropout", identity_layer},
    {"ActivityRegularization", identity_layer},
});

}  // namespace

}  // namespace anvil::keras
