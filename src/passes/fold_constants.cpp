#include <memory>
#include <vector>

#include "anvil/ops.h"
#include "passes/passes.h"

namespace anvil::passes {

// Infers shapes node by node and evaluates, with the reference kernels, every foldable node
// whose inputs are all constant (Shape only needs its input's static shape). Later shape
// rules then see the folded values (Reshape's target shape computed by Shape->Gather->Concat).
void fold_constants(Graph& g, const Protected& /*protect: folded values stay readable*/) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    g.infer_node(static_cast<int>(i));
    Node& n = g.nodes[i];
    if (n.dead) continue;
    const OpDef* def = OpRegistry::global().find(n.op);
    if (!def || !def->foldable) continue;
    std::vector<Tensor> ins;
    bool all_const = true;
    for (int in : n.inputs) {
      if (in < 0) {
        ins.emplace_back();
        continue;
      }
      const Value& v = g.values[static_cast<size_t>(in)];
      if (n.op == "Shape" || n.op == "Size") {
        // A shape-only stand-in: no data, the Shape/Size kernels read only the shape.
        ins.push_back(Tensor::wrap(v.dtype, v.shape, nullptr, std::make_shared<int>(0)));
        continue;
      }
      if (!v.is_constant()) {
        all_const = false;
        break;
      }
      ins.push_back(v.constant);
    }
    if (!all_const) continue;
    std::vector<Tensor> outs = evaluate_node(g, n, ins);
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      Value& v = g.values[static_cast<size_t>(n.outputs[k])];
      v.constant = outs[k];
      v.producer = -1;
    }
    n.dead = true;
  }
}

}  // namespace anvil::passes
