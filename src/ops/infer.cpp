// The members of Graph that need the op table (declared in anvil/graph.h; the rest of Graph is
// src/graph/graph.cpp): validate() checks each node against its op's signature, infer_node()
// and infer_shapes() run the ops' shape rules. They live in the ops room because the graph
// room sits below it (docs/architecture.md).
#include <algorithm>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/ops.h"

namespace anvil {

void Graph::validate() const {
  const int nv = static_cast<int>(values.size());
  std::vector<int> producer(values.size(), -1);
  std::vector<bool> available(values.size(), false);
  for (int i : inputs) {
    if (i < 0 || i >= nv) throw Error("graph input index out of range", source_file);
    available[static_cast<size_t>(i)] = true;
  }
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].is_constant()) available[i] = true;
  for (const auto& n : nodes) {
    if (n.dead) continue;
    const OpDef* def = OpRegistry::global().find(n.op);
    if (!def) throw Error("unknown op '" + n.op + "'", source_file, n.name, "op");
    int ni = static_cast<int>(n.inputs.size()), no = static_cast<int>(n.outputs.size());
    if (ni < def->min_inputs || (def->max_inputs >= 0 && ni > def->max_inputs))
      throw Error(n.op + " takes " + std::to_string(def->min_inputs) + ".." +
                      (def->max_inputs < 0 ? std::string("any") : std::to_string(def->max_inputs)) +
                      " inputs, found " + std::to_string(ni),
                  source_file, n.name, "inputs");
    if (no < def->min_outputs || (def->max_outputs >= 0 && no > def->max_outputs))
      throw Error(
          n.op + " has " + std::to_string(def->min_outputs) + ".." +
              (def->max_outputs < 0 ? std::string("any") : std::to_string(def->max_outputs)) +
              " outputs, found " + std::to_string(no),
          source_file, n.name, "outputs");
    for (const auto& [k, _] : n.attrs.all()) {
      bool known = std::any_of(def->attrs.begin(), def->attrs.end(),
                               [&](const AttrSpec& a) { return a.name == k; });
      if (!known) throw Error(n.op + " has no attribute '" + k + "'", source_file, n.name, k);
    }
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      int in = n.inputs[k];
      if (in == -1) continue;
      if (in < 0 || in >= nv)
        throw Error("input " + std::to_string(k) + " refers to a missing tensor", source_file,
                    n.name, "inputs");
      if (!available[static_cast<size_t>(in)])
        throw Error("input '" + values[static_cast<size_t>(in)].name +
                        "' is not produced before it is used (dangling input or cycle)",
                    source_file, n.name, "inputs");
    }
    for (int o : n.outputs) {
      if (o < 0 || o >= nv) throw Error("output refers to a missing tensor", source_file, n.name);
      if (available[static_cast<size_t>(o)])
        throw Error("output '" + values[static_cast<size_t>(o)].name +
                        "' is already produced by another node, an input or a constant",
                    source_file, n.name, "outputs");
      available[static_cast<size_t>(o)] = true;
    }
  }
  for (int o : outputs) {
    if (o < 0 || o >= nv) throw Error("graph output index out of range", source_file);
    if (!available[static_cast<size_t>(o)])
      throw Error("graph output '" + values[static_cast<size_t>(o)].name + "' is never produced",
                  source_file);
  }
}

void Graph::infer_node(int index) {
  Node& n = nodes[static_cast<size_t>(index)];
  if (n.dead) return;
  const OpDef* def = OpRegistry::global().find(n.op);
  if (!def) throw Error("unknown op '" + n.op + "'", source_file, n.name, "op");
  for (int in : n.inputs) {
    if (in < 0) continue;
    if (!values[static_cast<size_t>(in)].shape_known)
      throw Error("shape of input '" + values[static_cast<size_t>(in)].name + "' is unknown",
                  source_file, n.name, "inputs");
  }
  std::vector<DType> dts(n.outputs.size(), DType::f32);
  std::vector<Shape> shapes(n.outputs.size());
  InferContext ctx(*this, n, dts, shapes);
  try {
    def->infer(ctx);
  } catch (const Error& e) {
    throw Error(e.message(), e.file().empty() ? source_file : e.file(),
                e.node().empty() ? n.name : e.node(), e.field());
  }
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    Value& v = values[static_cast<size_t>(n.outputs[k])];
    v.dtype = dts[k];
    v.shape = shapes[k];
    v.shape_known = true;
  }
}

void Graph::infer_shapes() {
  for (size_t i = 0; i < nodes.size(); ++i) infer_node(static_cast<int>(i));
}

}  // namespace anvil
