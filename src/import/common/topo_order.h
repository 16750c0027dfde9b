// Source-graph node order shared by the importers whose files may list nodes out of order
// (ONNX, TensorFlow GraphDef).
//
// Contract: stable_topo_order() is Kahn's algorithm with ties in file order; nodes on or
// behind a cycle are left out and marked unplaced, for the importer to report.
#pragma once

#include <set>
#include <vector>

namespace anvil {

/// Kahn's algorithm over `deps[i]` (the nodes node i reads from; self-edges ignored): every node
/// after the nodes it depends on, ties in file order (smallest index first). Nodes that cannot be
/// placed (on or behind a cycle) are left out of the result and marked in `placed` as false.
inline std::vector<int> stable_topo_order(const std::vector<std::set<int>>& deps,
                                          std::vector<bool>& placed) {
  const size_t n = deps.size();
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (size_t i = 0; i < n; ++i)
    for (int d : deps[i])
      if (d != static_cast<int>(i)) {
        ++pending[i];
        users[static_cast<size_t>(d)].push_back(static_cast<int>(i));
      }
  std::set<int> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.insert(static_cast<int>(i));
  std::vector<int> order;
  placed.assign(n, false);
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    placed[static_cast<size_t>(i)] = true;
    for (int u : users[static_cast<size_t>(i)])
      if (--pending[static_cast<size_t>(u)] == 0) ready.insert(u);
  }
  return order;
}

}  // namespace anvil
