#include <algorithm>
#include <map>
#include <mutex>

#include "anvil/ops.h"

namespace anvil {

InferContext::InferContext(const Graph& g, const Node& n, std::vector<DType>& out_dtypes,
                           std::vector<Shape>& out_shapes)
    : graph_(g), node_(n), out_dtypes_(out_dtypes), out_shapes_(out_shapes) {}

bool InferContext::has_input(int i) const {
  return i >= 0 && i < num_inputs() && node_.inputs[static_cast<size_t>(i)] >= 0;
}

const Shape& InferContext::shape(int i) const {
  if (!has_input(i)) fail("inputs", "input " + std::to_string(i) + " is missing");
  return graph_.values[static_cast<size_t>(node_.inputs[static_cast<size_t>(i)])].shape;
}

DType InferContext::dtype(int i) const {
  if (!has_input(i)) fail("inputs", "input " + std::to_string(i) + " is missing");
  return graph_.values[static_cast<size_t>(node_.inputs[static_cast<size_t>(i)])].dtype;
}

const Tensor* InferContext::constant(int i) const {
  if (!has_input(i)) return nullptr;
  const Value& v = graph_.values[static_cast<size_t>(node_.inputs[static_cast<size_t>(i)])];
  return v.is_constant() ? &v.constant : nullptr;
}

const Tensor& InferContext::require_constant(int i, const std::string& field) const {
  const Tensor* t = constant(i);
  if (!t)
    fail(field,
         "must be a constant (known when the model is compiled), but is computed at run time");
  return *t;
}

void InferContext::set_output(int i, DType dtype, Shape shape) {
  if (i < 0 || i >= num_outputs())
    fail("outputs", "output " + std::to_string(i) + " does not exist");
  shape_numel(shape);  // validates
  out_dtypes_[static_cast<size_t>(i)] = dtype;
  out_shapes_[static_cast<size_t>(i)] = std::move(shape);
}

void InferContext::fail(const std::string& field, const std::string& message) const {
  throw Error(node_.op + ": " + message, graph_.source_file, node_.name, field);
}

void KernelContext::fail(const std::string& field, const std::string& message) const {
  throw Error(node.op + ": " + message, {}, node.name, field);
}

OpRegistry& OpRegistry::global() {
  static OpRegistry r;
  return r;
}

namespace {
std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void OpRegistry::add(OpDef def, bool replace) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  if (def.name.empty()) throw Error("op definition without a name");
  if (!def.infer) throw Error("op '" + def.name + "' has no shape rule");
  if (!def.reference) throw Error("op '" + def.name + "' has no reference kernel");
  for (auto& op : ops_) {
    if (op->name == def.name) {
      if (!replace) throw Error("op '" + def.name + "' is already registered");
      *op = std::move(def);
      return;
    }
  }
  ops_.push_back(std::make_unique<OpDef>(std::move(def)));
}

const OpDef* OpRegistry::find(const std::string& name) const {
  for (const auto& op : ops_)
    if (op->name == name) return op.get();
  return nullptr;
}

const OpDef& OpRegistry::get(const std::string& name) const {
  const OpDef* d = find(name);
  if (!d) throw Error("unknown op '" + name + "'", {}, {}, "op");
  return *d;
}

std::vector<const OpDef*> OpRegistry::all() const {
  std::vector<const OpDef*> r;
  for (const auto& op : ops_) r.push_back(op.get());
  std::sort(r.begin(), r.end(), [](const OpDef* a, const OpDef* b) { return a->name < b->name; });
  return r;
}

void register_op(OpDef def) { OpRegistry::global().add(std::move(def)); }

namespace {
std::map<std::pair<std::string, std::string>, std::string>& source_map() {
  static std::map<std::pair<std::string, std::string>, std::string> m;
  return m;
}
}  // namespace

void map_source_op(const std::string& framework, const std::string& source_type,
                   const std::string& op_name) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  source_map()[{framework, source_type}] = op_name;
}

std::optional<std::string> mapped_source_op(const std::string& framework,
                                            const std::string& source_type) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = source_map().find({framework, source_type});
  if (it == source_map().end()) return std::nullopt;
  return it->second;
}

std::vector<Tensor> evaluate_node(const Graph& g, const Node& n, std::span<const Tensor> inputs) {
  const OpDef& def = OpRegistry::global().get(n.op);
  std::vector<Tensor> outs;
  outs.reserve(n.outputs.size());
  for (int o : n.outputs) {
    const Value& v = g.values[static_cast<size_t>(o)];
    if (!v.shape_known) throw Error("output shape not inferred", g.source_file, n.name);
    outs.emplace_back(v.dtype, v.shape);
  }
  KernelContext ctx{n, inputs, outs};
  try {
    def.reference(ctx);
  } catch (const Error& e) {
    throw Error(e.message(), e.file().empty() ? g.source_file : e.file(),
                e.node().empty() ? n.name : e.node(), e.field());
  }
  return outs;
}

}  // namespace anvil
