#include "import/common/perm.h"

#include <numeric>

#include "core/permutation.h"

namespace anvil::imp {

Perm identity_perm(int rank) {
  Perm p(static_cast<size_t>(rank < 0 ? 0 : rank));
  std::iota(p.begin(), p.end(), 0);
  return p;
}

bool is_identity_perm(const Perm& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int>(i)) return false;
  return true;
}

Perm inverse_perm(const Perm& p) { return inverse_permutation(p); }

Perm compose_perm(const Perm& a, const Perm& b) {
  if (a.empty()) return b;
  Perm c(b.size());
  for (size_t i = 0; i < b.size(); ++i) c[i] = a[static_cast<size_t>(b[i])];
  return c;
}

Shape apply_perm(const Shape& s, const Perm& p) {
  if (p.empty()) return s;
  Shape r(p.size());
  for (size_t i = 0; i < p.size(); ++i) r[i] = s[static_cast<size_t>(p[i])];
  return r;
}

bool is_perm(const std::vector<int64_t>& p, int rank) {
  if (static_cast<int64_t>(p.size()) != rank) return false;
  std::vector<bool> seen(p.size(), false);
  for (int64_t q : p) {
    if (q < 0 || q >= rank || seen[static_cast<size_t>(q)]) return false;
    seen[static_cast<size_t>(q)] = true;
  }
  return true;
}

Perm channels_last_perm(int rank) {
  Perm p{0};
  for (int i = 2; i < rank; ++i) p.push_back(i);
  if (rank >= 2) p.push_back(1);
  return p;
}

}  // namespace anvil::imp
