// Shared pieces of the diagnosis: layouts, errors, a layer re-run alone (see diagnose.h).
#include <algorithm>
#include <cmath>
#include <set>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "verify/diagnose.h"

namespace anvil::diag {
namespace {
std::vector<int> inverse(const std::vector<int>& p) {
  std::vector<int> r(p.size());
  for (size_t i = 0; i < p.size(); ++i) r[static_cast<size_t>(p[i])] = static_cast<int>(i);
  return r;
}
}  // namespace

Tensor to_canonical(const Value& v, const Tensor& t) {
  if (v.prov.to_source.empty() || static_cast<int>(v.prov.to_source.size()) != t.rank()) return t;
  return transpose(t, inverse(v.prov.to_source));
}

Tensor to_source(const Value& v, const Tensor& t) {
  if (v.prov.to_source.empty() || static_cast<int>(v.prov.to_source.size()) != t.rank()) return t;
  return transpose(t, v.prov.to_source);
}

double rel_error(const Tensor& got, const Tensor& want) {
  if (!got.defined() || !want.defined() || got.shape() != want.shape()) return INFINITY;
  double num = 0, den = 0, ng = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get(i), b = want.get(i);
    if (!std::isfinite(a) && std::isfinite(b)) return INFINITY;
    if (!std::isfinite(b)) continue;
    num += (a - b) * (a - b);
    den += b * b;
    ng += a * a;
  }
  if (den == 0) return std::sqrt(ng) == 0 ? 0 : INFINITY;
  return std::sqrt(num / den);
}

bool channels_last_of(const Graph& g, const Value& v) {
  const std::string& l = v.prov.source_layout;
  if (!l.empty()) return l.back() == 'C';
  const std::string& f = v.prov.framework.empty() ? g.framework : v.prov.framework;
  return f == "keras" || f == "tensorflow" || f == "tflite";
}

LayerNodes layer_nodes(const Graph& g, int v, const std::vector<bool>& is_layer) {
  LayerNodes r;
  r.value = v;
  const Value& val = g.values[static_cast<size_t>(v)];
  if (val.producer < 0) return r;
  std::set<int> nodes, inputs_seen;
  std::vector<int> todo{val.producer};
  while (!todo.empty()) {
    int n = todo.back();
    todo.pop_back();
    if (!nodes.insert(n).second) continue;
    for (int in : g.nodes[static_cast<size_t>(n)].inputs) {
      if (in < 0) continue;
      const Value& iv = g.values[static_cast<size_t>(in)];
      if (iv.is_constant()) continue;
      if (is_layer[static_cast<size_t>(in)] || iv.producer < 0) {
        if (inputs_seen.insert(in).second) r.inputs.push_back(in);
      } else {
        todo.push_back(iv.producer);
      }
    }
  }
  r.nodes.assign(nodes.begin(), nodes.end());
  return r;
}

namespace {
// Runs the layer's nodes of g (a copy) on canonical inputs; every computed value, or nullopt.
std::optional<std::map<int, Tensor>> eval_layer(Graph g, const LayerNodes& L,
                                                const std::map<int, Tensor>& ins) {
  try {
    std::map<int, Tensor> vals = ins;
    for (const auto& [v, t] : ins) {
      g.values[static_cast<size_t>(v)].shape = t.shape();
      g.values[static_cast<size_t>(v)].dtype = t.dtype();
      g.values[static_cast<size_t>(v)].shape_known = true;
    }
    for (int ni : L.nodes) {
      g.infer_node(ni);
      const Node& n = g.nodes[static_cast<size_t>(ni)];
      std::vector<Tensor> in;
      for (int i : n.inputs) {
        if (i < 0) {
          in.emplace_back();
          continue;
        }
        auto it = vals.find(i);
        if (it != vals.end())
          in.push_back(it->second);
        else if (g.values[static_cast<size_t>(i)].is_constant())
          in.push_back(g.values[static_cast<size_t>(i)].constant);
        else
          return std::nullopt;
      }
      std::vector<Tensor> outs = evaluate_node(g, n, in);
      for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k)
        vals[n.outputs[k]] = std::move(outs[k]);
    }
    return vals;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}
}  // namespace

Tensor Probe::run(const Graph& g, const std::map<int, Tensor>* ins) const {
  auto vals = eval_layer(g, layer, ins ? *ins : inputs);
  if (!vals || !vals->count(layer.value)) return {};
  return to_source(g.values[static_cast<size_t>(layer.value)], vals->at(layer.value));
}

std::optional<std::map<int, Tensor>> Probe::run_values(const Graph& g) const {
  return eval_layer(g, layer, inputs);
}

double Probe::error_of(const Graph& g, const std::map<int, Tensor>* ins) const {
  return rel_error(run(g, ins), want);
}

bool Probe::init() {
  Tensor got = run(*graph);
  if (!got.defined()) return false;
  before = rel_error(got, want);
  return true;
}

bool Probe::explains(double after, const Tensor*) const {
  return std::isfinite(after) && after < 1e-3 && after < 0.01 * before;
}

std::vector<Finding> diagnose_layer(const Probe& p, int input_value, bool channels_last) {
  std::vector<Finding> r;
  auto add = [&](std::optional<Finding> f) {
    if (f) r.push_back(std::move(*f));
  };
  if (input_value >= 0) add(probe_input_transforms(p, input_value, channels_last));
  add(weights_flipped(p));
  add(weights_transposed(p));
  add(pooling_rounding(
      p));  // before padding: a pool whose rounding differs also matches with other pads
  add(padding(p));
  add(flatten_order(p));
  add(batchnorm_epsilon(p));
  // in order of priority (the simpler explanation first), not by the error left: several
  // hypotheses can match exactly (e.g. ceil rounding vs an extra end pad of a max pool)
  return r;
}

}  // namespace anvil::diag
