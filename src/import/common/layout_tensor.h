// The layout-tracking tensor: a source framework's tensor held as a canonical graph value
// plus the permutation that takes the value to the source's layout, and the cache of the
// transposed copies ("views") made of it.
//
// Contract: for LayoutTensor t, the source framework sees transpose(value t.v, t.perm) (empty
// perm: the value itself). Layout-sensitive ops read view(t, q) = transpose(source view, q);
// each distinct (value, permutation) pair is transposed once (cached), identity views are the
// value itself, and constant values are transposed at import when fold_constants is set.
// Canonical NCHW results of channels-last sources are held with perm channels_last_perm(r).
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "import/common/node_emitter.h"
#include "import/common/perm.h"

namespace anvil::imp {

struct LayoutTensor {
  int v = -1;
  Perm perm;              // canonical -> source layout; empty = same
  bool poisoned = false;  // derived from an unsupported op: not converted further
};

class LayoutViews {
 public:
  LayoutViews(NodeEmitter& e, bool fold_constants) : e_(e), fold_(fold_constants) {}

  /// The shape the source framework sees.
  Shape source_shape(const LayoutTensor& t) const;
  /// A value equal to transpose(source view of t, q).
  int view(const LayoutTensor& t, const Perm& q);
  /// The value in the source's own layout.
  int source(const LayoutTensor& t);
  /// The value in the layout whose to-source permutation is p (empty: the source's layout).
  int in_layout(const LayoutTensor& t, const Perm& p);
  /// Channels-first (N, C, spatial...) value of a tensor whose source layout is channels-last
  /// (or already channels-first when channels_last is false).
  int channels_first(const LayoutTensor& t, bool channels_last);
  /// The held form of a canonical channels-first result for a channels-last source (rank >= 3).
  static LayoutTensor channels_first_result(int v, int rank, bool channels_last);
  /// Canonical axis of a source axis (in range).
  static int canon_axis(const LayoutTensor& t, int source_axis) {
    return t.perm.empty() ? source_axis : t.perm[static_cast<size_t>(source_axis)];
  }

 private:
  NodeEmitter& e_;
  bool fold_;
  std::map<std::pair<int, Perm>, int> cache_;
};

}  // namespace anvil::imp
