// Fuses an activation that directly follows Conv / ConvTranspose / Gemm / MatMul into the
// producer as the attributes activation / activation_alpha / activation_beta (read by
// activation_of_node, applied by apply_activation: src/ops/activation.h). The producer takes
// over the activation's output value (name and provenance survive); the intermediate must
// have no other consumer and must not be protected.
#include "ops/activation.h"
#include "passes/passes.h"

namespace anvil::passes {

void fuse_activations(Graph& g, const Protected& protect) {
  std::vector<bool> is_output(g.values.size(), false);
  for (int o : g.outputs) is_output[static_cast<size_t>(o)] = true;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.dead || n.outputs.size() != 1) continue;
    if (n.op != "Conv" && n.op != "ConvTranspose" && n.op != "Gemm" && n.op != "MatMul") continue;
    if (!n.attrs.get_string("activation", "").empty()) continue;
    int y = n.outputs[0];
    const Value& yv = g.values[static_cast<size_t>(y)];
    if (!is_float(yv.dtype) || is_output[static_cast<size_t>(y)] || protect.count(yv.name))
      continue;
    auto users = g.consumers(y);
    if (users.size() != 1) continue;
    const Node& a = g.nodes[static_cast<size_t>(users[0])];
    if (a.inputs[0] != y) continue;
    if (!is_fusable_activation(a.op)) continue;
    auto f = activation_of_node(g, a);
    if (!f) continue;
    int z = a.outputs[0];
    const Value& zv = g.values[static_cast<size_t>(z)];
    if (zv.dtype != yv.dtype || zv.shape != yv.shape) continue;
    write_fused_activation(n.attrs, *f);
    g.nodes[static_cast<size_t>(users[0])].dead = true;
    n.outputs[0] = z;
    g.values[static_cast<size_t>(z)].producer = static_cast<int>(i);
    g.values[static_cast<size_t>(y)].producer = -1;
  }
}

}  // namespace anvil::passes
