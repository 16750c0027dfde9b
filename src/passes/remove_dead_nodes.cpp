#include <vector>

#include "passes/passes.h"

namespace anvil::passes {

void remove_dead_nodes(Graph& g, const Protected& protect) {
  std::vector<bool> needed(g.values.size(), false);
  for (int o : g.outputs) needed[static_cast<size_t>(o)] = true;
  for (size_t i = 0; i < g.values.size(); ++i)
    if (protect.count(g.values[i].name)) needed[i] = true;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    Node& n = g.nodes[i];
    if (n.dead) continue;
    bool live = false;
    for (int o : n.outputs) live |= needed[static_cast<size_t>(o)];
    if (!live) {
      n.dead = true;
      continue;
    }
    for (int in : n.inputs)
      if (in >= 0) needed[static_cast<size_t>(in)] = true;
  }
}

}  // namespace anvil::passes
