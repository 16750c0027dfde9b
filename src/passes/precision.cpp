// reduce_precision: store float32 weights and activations as float16 or bfloat16.
//
// Every float32 constant read by a converted node is replaced by a rounded copy, every
// float32 graph input gets a Cast to the reduced type, Cast nodes to float32 inside the
// converted region cast to the reduced type instead, and every float32 graph output gets a
// Cast back (the Cast's output takes over the output's name and provenance). Nodes of the
// layers in `keep_fp32` stay float32: their reduced-precision inputs are cast up and their
// float32 outputs are cast down for converted consumers. Each backend computes in its own
// accumulation precision (the reference backend in double, rounding every result to the
// storage type: fp16/bf16 storage with wide accumulation). Values other than float32
// (integers, float64) are left alone; so are the parameters of Resize (roi, scales).
#include <map>

#include "anvil/error.h"
#include "core/onnx_dtype.h"
#include "passes/passes.h"

namespace anvil::passes {
namespace {

bool is_parameter_slot(const Node& n, size_t slot) {
  return (n.op == "Resize" || n.op == "Upsample") && slot >= 1;
}

}  // namespace

void reduce_precision(Graph& g, DType low, const std::set<std::string>& keep_fp32) {
  if (low != DType::f16 && low != DType::bf16)
    throw Error("reduced precision must be f16 or bf16", g.source_file, {}, "precision");
  // Which nodes stay fp32: those producing a named value (source or canonical name) or named
  // themselves, and the other nodes of the same source layer (values without a source name
  // that feed only into it).
  std::vector<bool> kept(g.nodes.size(), false);
  std::set<std::string> found;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (keep_fp32.count(n.name)) kept[i] = true, found.insert(n.name);
    for (int o : n.outputs) {
      const Value& v = g.values[static_cast<size_t>(o)];
      for (const std::string& nm : {v.name, v.prov.source_name})
        if (!nm.empty() && keep_fp32.count(nm)) kept[i] = true, found.insert(nm);
    }
  }
  for (const auto& k : keep_fp32)
    if (!found.count(k))
      throw Error("--keep-fp32: no layer or tensor named '" + k + "' in the model", g.source_file,
                  {}, "keep_fp32");
  // grow each kept layer backwards over its unnamed internal values
  for (size_t i = g.nodes.size(); i-- > 0;) {
    if (!kept[i]) continue;
    for (int in : g.nodes[i].inputs) {
      if (in < 0) continue;
      const Value& v = g.values[static_cast<size_t>(in)];
      if (v.producer < 0 || !v.prov.source_name.empty()) continue;
      bool only_here = true;
      for (int c : g.consumers(in)) only_here &= kept[static_cast<size_t>(c)];
      if (only_here) kept[static_cast<size_t>(v.producer)] = true;
    }
  }

  std::map<int, int> low_const;                // f32 constant -> rounded copy
  std::map<std::pair<int, DType>, int> casts;  // (value, target) -> cast output
  auto make_cast = [&](int v, DType to) {
    auto key = std::make_pair(v, to);
    if (auto it = casts.find(key); it != casts.end()) return it->second;
    const std::string base =
        g.values[static_cast<size_t>(v)].name + (to == DType::f32 ? "/fp32" : "/low");
    Attributes a;
    a.set("to", onnx_dtype_code(to));
    int n = g.add_node("Cast", g.unique_name(base), {v}, a, 1);
    int out = g.nodes[static_cast<size_t>(n)].outputs[0];
    g.values[static_cast<size_t>(out)].dtype = to;
    g.values[static_cast<size_t>(out)].shape = g.values[static_cast<size_t>(v)].shape;
    g.values[static_cast<size_t>(out)].shape_known = true;
    casts[key] = out;
    return out;
  };

  std::vector<bool> was_f32(g.values.size(), false);
  for (size_t i = 0; i < g.values.size(); ++i) was_f32[i] = g.values[i].dtype == DType::f32;

  const size_t original_nodes = g.nodes.size();
  for (size_t ni = 0; ni < original_nodes; ++ni) {
    const bool keep = kept[ni];
    for (size_t s = 0; s < g.nodes[ni].inputs.size(); ++s) {
      int in = g.nodes[ni].inputs[s];
      if (in < 0 || static_cast<size_t>(in) >= was_f32.size() || !was_f32[static_cast<size_t>(in)])
        continue;
      if (is_parameter_slot(g.nodes[ni], s)) continue;
      Value& v = g.values[static_cast<size_t>(in)];
      if (keep) {
        // needs f32: a converted producer's output (now low) is cast up
        if (!v.is_constant() && v.dtype != DType::f32)
          g.nodes[ni].inputs[s] = make_cast(in, DType::f32);
        continue;
      }
      if (v.is_constant()) {
        auto it = low_const.find(in);
        if (it == low_const.end()) {
          int c = g.add_constant(g.unique_name(v.name + "/low"),
                                 g.values[static_cast<size_t>(in)].constant.to(low));
          g.values[static_cast<size_t>(c)].prov = g.values[static_cast<size_t>(in)].prov;
          it = low_const.emplace(in, c).first;
        }
        g.nodes[ni].inputs[s] = it->second;
      } else if (g.values[static_cast<size_t>(in)].dtype == DType::f32) {
        // a graph input or a kept node's output: cast down
        g.nodes[ni].inputs[s] = make_cast(in, low);
      }
    }
    Node& n = g.nodes[ni];
    if (!keep && n.op == "Cast" && n.attrs.get_int("to", 0) == 1)
      n.attrs.set("to", onnx_dtype_code(low));
    // casts are appended after every original node (toposorted at the end); the original
    // nodes keep their indices during the loop
    g.infer_node(static_cast<int>(ni));
  }
  // graph outputs back to f32, under their own names
  for (int& o : g.outputs) {
    Value& v = g.values[static_cast<size_t>(o)];
    if (!was_f32[static_cast<size_t>(o)] || v.dtype == DType::f32) continue;
    const std::string name = v.name;
    const Provenance prov = v.prov;
    v.name = g.unique_name(name + "/low");
    Attributes a;
    a.set("to", int64_t{1});
    int n = g.add_node("Cast", g.unique_name(name + "/fp32"), {o}, a, 1, {name});
    int out = g.nodes[static_cast<size_t>(n)].outputs[0];
    g.values[static_cast<size_t>(out)].prov = prov;
    g.values[static_cast<size_t>(o)].prov.source_name.clear();
    o = out;
  }
  g.relink();
  g.toposort();
  g.compact();
  g.infer_shapes();
}

}  // namespace anvil::passes
