// Keras masks: a mask is a (N, T) f32 value (1 at real time steps, 0 at masked ones) carried
// beside a tensor. Masking and Embedding(mask_zero=True) make one; the layers that Keras lets a
// mask pass through (supports_masking with the default compute_mask) hand it on unchanged;
// merge layers combine their inputs' masks with a logical and, as Keras's _Merge does; the
// layers that consume one (recurrent layers -> step_mask, GlobalAveragePooling1D -> a masked
// mean) read it with mask_of and give their outputs the masks Keras would (return_sequences
// keeps it). Any other layer drops the mask: Keras refuses a masked input to a layer without
// supports_masking, so a valid model never relies on such a layer carrying one.
#include <algorithm>
#include <set>

#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

bool passes_mask(const std::string& cls) {
  static const std::set<std::string> pass{"Dense",
                                          "Activation",
                                          "Dropout",
                                          "SpatialDropout1D",
                                          "GaussianNoise",
                                          "GaussianDropout",
                                          "AlphaDropout",
                                          "ActivityRegularization",
                                          "BatchNormalization",
                                          "LayerNormalization",
                                          "LeakyReLU",
                                          "PReLU",
                                          "ELU",
                                          "ThresholdedReLU",
                                          "Softmax",
                                          "ReLU",
                                          "Masking",
                                          "TimeDistributed"};
  return pass.count(cls) > 0;
}

bool merges_masks(const std::string& cls) {
  static const std::set<std::string> merge{"Add",     "Subtract", "Multiply",   "Average",
                                           "Maximum", "Minimum",  "Concatenate"};
  return merge.count(cls) > 0;
}

}  // namespace

int Translator::mask_of(const KT& x) const {
  auto it = masks_.find(x.v);
  return it == masks_.end() ? -1 : it->second;
}

void Translator::set_out_mask(size_t k, int m) {
  if (m >= 0) out_masks_[k] = m;
}

void Translator::propagate_masks(const LayerDef& l, const std::vector<KT>& ins,
                                 const std::vector<KT>& outs) {
  if (!out_masks_.empty()) {  // the converter decided
    for (const auto& [k, m] : out_masks_)
      if (k < outs.size() && !outs[k].poisoned) masks_[outs[k].v] = m;
    return;
  }
  if (outs.size() != 1 || outs[0].poisoned) return;
  if (!passes_mask(l.cls) && !merges_masks(l.cls)) return;
  std::vector<int> ms;
  for (const auto& x : ins)
    if (int m = mask_of(x); m >= 0 && std::find(ms.begin(), ms.end(), m) == ms.end())
      ms.push_back(m);
  if (ms.empty()) return;
  // the output must still have the (N, T) leading axes the mask describes
  Shape ys = src_shape(outs[0]);
  const Shape& msh = shape(ms[0]);
  if (ys.size() < 2 || ys[0] != msh[0] || ys[1] != msh[1]) return;
  int m = ms[0];
  for (size_t k = 1; k < ms.size(); ++k) m = node("Mul", {m, ms[k]});
  masks_[outs[0].v] = m;
}

}  // namespace anvil::keras
