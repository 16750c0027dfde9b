// Fuses an activation that directly follows Conv / ConvTranspose / Gemm / MatMul into the
// producer as the attributes activation / activation_alpha / activation_beta (applied by
// anvil::apply_activation, src/ops/activation.h). The producer takes over the activation's
// output value (name and provenance survive); the intermediate must have no other consumer
// and must not be protected.
#include <limits>
#include <optional>

#include "ops/activation.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

struct Fused {
  std::string act;
  double alpha = 0, beta = 0;
};

// The scalar value of an optional constant input; nullopt when absent -> `dflt`, or when it is
// present but not a constant scalar -> failure (signalled by ok = false).
double scalar_input(const Graph& g, const Node& n, size_t i, double dflt, bool& ok) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return dflt;
  const Value& v = g.values[static_cast<size_t>(n.inputs[i])];
  if (!v.is_constant() || v.constant.numel() != 1) {
    ok = false;
    return dflt;
  }
  return v.constant.get(0);
}

std::optional<Fused> fusable(const Graph& g, const Node& a) {
  if (!is_fusable_activation(a.op) || a.outputs.size() != 1 || a.inputs.empty()) return std::nullopt;
  Fused f{a.op};
  const Attributes& at = a.attrs;
  if (a.op == "Clip") {
    bool ok = true;
    f.alpha = scalar_input(g, a, 1, std::numeric_limits<double>::lowest(), ok);
    f.beta = scalar_input(g, a, 2, std::numeric_limits<double>::max(), ok);
    if (!ok) return std::nullopt;
  } else if (a.inputs.size() != 1) {
    return std::nullopt;
  } else if (a.op == "LeakyRelu") {
    f.alpha = at.get_float("alpha", 0.01);
  } else if (a.op == "HardSigmoid") {
    f.alpha = at.get_float("alpha", 0.2);
    f.beta = at.get_float("beta", 0.5);
  } else if (a.op == "Elu") {
    f.alpha = at.get_float("alpha", 1.0);
  }
  return f;
}

}  // namespace

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
    if (!is_float(yv.dtype) || is_output[static_cast<size_t>(y)] || protect.count(yv.name)) continue;
    auto users = g.consumers(y);
    if (users.size() != 1) continue;
    const Node& a = g.nodes[static_cast<size_t>(users[0])];
    if (a.inputs[0] != y) continue;
    auto f = fusable(g, a);
    if (!f) continue;
    int z = a.outputs[0];
    const Value& zv = g.values[static_cast<size_t>(z)];
    if (zv.dtype != yv.dtype || zv.shape != yv.shape) continue;
    n.attrs.set("activation", f->act);
    n.attrs.set("activation_alpha", f->alpha);
    n.attrs.set("activation_beta", f->beta);
    g.nodes[static_cast<size_t>(users[0])].dead = true;
    n.outputs[0] = z;
    g.values[static_cast<size_t>(z)].producer = static_cast<int>(i);
    g.values[static_cast<size_t>(y)].producer = -1;
  }
}

}  // namespace anvil::passes
