// Axis permutations (layouts): the one inverse, for every room.
#pragma once

#include <cstddef>
#include <vector>

#include "anvil/error.h"
#include "core/strings.h"

namespace anvil {

/// The permutation that undoes `perm`: transpose(transpose(t, perm), inverse_permutation(perm))
/// == t. Throws anvil::Error when `perm` is not a permutation of 0..n-1.
inline std::vector<int> inverse_permutation(const std::vector<int>& perm) {
  const int n = static_cast<int>(perm.size());
  std::vector<int> r(perm.size(), -1);
  for (int i = 0; i < n; ++i) {
    const int p = perm[static_cast<size_t>(i)];
    if (p < 0 || p >= n || r[static_cast<size_t>(p)] >= 0)
      throw Error("invalid permutation " + ints_str({perm.begin(), perm.end()}));
    r[static_cast<size_t>(p)] = i;
  }
  return r;
}

}  // namespace anvil
