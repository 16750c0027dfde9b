#include "passes/passes.h"

namespace anvil::passes {

// Identity and Dropout (inference) forward their first input. Consumers are rewired to that
// input; a protected or graph-output value keeps its node (its name must stay readable).
void remove_identities(Graph& g, const Protected& protect) {
  std::vector<int> replace(g.values.size());
  for (size_t i = 0; i < replace.size(); ++i) replace[i] = static_cast<int>(i);
  std::vector<bool> is_output(g.values.size(), false);
  for (int o : g.outputs) is_output[static_cast<size_t>(o)] = true;
  for (auto& n : g.nodes) {
    if (n.dead) continue;
    for (int& in : n.inputs)
      if (in >= 0) in = replace[static_cast<size_t>(in)];
    if (n.op != "Identity" && n.op != "Dropout") continue;
    if (n.inputs.empty() || n.inputs[0] < 0) continue;
    int out = n.outputs[0];
    // Dropout's optional mask output must be unused.
    bool mask_used = false;
    for (size_t k = 1; k < n.outputs.size(); ++k) mask_used |= !g.consumers(n.outputs[k]).empty();
    if (mask_used || is_output[static_cast<size_t>(out)] ||
        protect.count(g.values[static_cast<size_t>(out)].name))
      continue;
    replace[static_cast<size_t>(out)] = n.inputs[0];
    n.dead = true;
  }
}

}  // namespace anvil::passes
