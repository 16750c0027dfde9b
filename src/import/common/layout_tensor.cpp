#include "import/common/layout_tensor.h"

#include "anvil/tensor.h"

namespace anvil::imp {

Shape LayoutViews::source_shape(const LayoutTensor& t) const {
  return apply_perm(e_.graph().values[static_cast<size_t>(t.v)].shape, t.perm);
}

int LayoutViews::view(const LayoutTensor& t, const Perm& q) {
  const Value& val = e_.graph().values[static_cast<size_t>(t.v)];
  if (q.size() != val.shape.size()) e_.fail("perm", "permutation rank does not match the tensor");
  const Perm c = compose_perm(t.perm, q);
  if (is_identity_perm(c)) return t.v;
  auto key = std::make_pair(t.v, c);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  int v;
  if (fold_ && val.is_constant()) {
    v = e_.constant("transposed", transpose(val.constant, c));
  } else {
    Attributes a;
    a.set("perm", std::vector<int64_t>(c.begin(), c.end()));
    v = e_.emit1("Transpose", {t.v}, a);
  }
  cache_[key] = v;
  return v;
}

int LayoutViews::source(const LayoutTensor& t) {
  return view(
      t, identity_perm(static_cast<int>(e_.graph().values[static_cast<size_t>(t.v)].shape.size())));
}

int LayoutViews::in_layout(const LayoutTensor& t, const Perm& p) {
  return p.empty() ? source(t) : view(t, inverse_perm(p));
}

int LayoutViews::channels_first(const LayoutTensor& t, bool channels_last) {
  if (!channels_last) return source(t);
  const int r = static_cast<int>(e_.graph().values[static_cast<size_t>(t.v)].shape.size());
  return view(t, inverse_perm(channels_last_perm(r)));
}

LayoutTensor LayoutViews::channels_first_result(int v, int rank, bool channels_last) {
  LayoutTensor t{v, {}};
  if (channels_last && rank >= 3) t.perm = channels_last_perm(rank);
  return t;
}

}  // namespace anvil::imp
