// Keras normalization layers: BatchNormalization.
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

KT batchnorm(Translator& t, const KT& x) {
  int r = t.rank(x.v);
  std::vector<int64_t> axes;
  if (t.has("axis")) {
    if (t.C()["axis"].is_array()) {
      for (const auto& e : t.C()["axis"]) {
        if (!e.is_number_integer()) t.fail("axis", "expected integers");
        axes.push_back(e.get<int64_t>());
      }
    } else {
      axes.push_back(t.i("axis", -1));
    }
  } else {
    axes.push_back(-1);
  }
  if (axes.size() != 1) t.fail("axis", "BatchNormalization over several axes is not supported");
  int ax = t.canon_axis(x, axes[0]);
  int64_t c = t.shape(x.v)[static_cast<size_t>(ax)];
  double eps = t.f("epsilon", 1e-3);
  bool center = t.b("center", true), scale = t.b("scale", true);
  int pos = 0;
  Tensor gamma, beta;
  if (scale) gamma = t.weight("gamma", pos++, {c});
  if (center) beta = t.weight("beta", pos++, {c});
  Tensor mean = t.weight("moving_mean", pos++, {c});
  Tensor var = t.weight("moving_variance", pos++, {c});
  t.expect_weight_count(static_cast<size_t>(pos));
  if (!scale)
    gamma = Tensor::from_vector<float>({c}, std::vector<float>(static_cast<size_t>(c), 1.f));
  if (!center)
    beta = Tensor::from_vector<float>({c}, std::vector<float>(static_cast<size_t>(c), 0.f));
  if (r < 2) t.fail("input", "BatchNormalization needs a rank >= 2 input");
  // The canonical BatchNormalization normalizes axis 1: when the Keras axis is elsewhere in
  // the canonical layout, view the tensor with that axis moved to position 1 (an explicit
  // Transpose) and record the permutation back to Keras's layout in the output.
  KT in = x;
  int xv = x.v;
  if (ax != 1) {
    int64_t sa = axes[0] < 0 ? axes[0] + r : axes[0];
    if (sa == 0) t.fail("axis", "BatchNormalization over the batch axis is not supported");
    std::vector<int> q{0, static_cast<int>(sa)};
    for (int k = 1; k < r; ++k)
      if (k != sa) q.push_back(k);
    xv = t.view(x, q);
    in.perm = imp::inverse_perm(q);
    if (imp::is_identity_perm(in.perm)) in.perm.clear();
  }
  Attributes a;
  a.set("epsilon", eps);
  int y = t.node("BatchNormalization",
                 {xv, t.cst("gamma", gamma), t.cst("beta", beta), t.cst("moving_mean", mean),
                  t.cst("moving_variance", var)},
                 a, true);
  return KT{y, in.perm};
}

std::vector<KT> batchnorm_layer(Translator& t, const std::vector<KT>& ins) {
  return {batchnorm(t, t.one(ins))};
}

const ConverterRegistrar normalization_layers({
    {"BatchNormalization", batchnorm_layer},
});

}  // namespace

}  // namespace anvil::keras
