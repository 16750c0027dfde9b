// The ONNX builder's services (see onnx_builder.h): graph and shadow construction, shape
// inference and folding while importing, attribute conversion and the generic emission of a
// node as the canonical op of the same name; and the converter table.
#include "import/onnx/onnx_builder.h"

#include <algorithm>
#include <filesystem>

#include "anvil/error.h"
#include "import/onnx/onnx_proto_tensor.h"

namespace anvil::onnx_import {

namespace {

constexpr int64_t kMaxFoldElements = int64_t{1} << 20;  // fold at import only small tensors

std::map<std::string, OnnxConverter>& table() {
  static std::map<std::string, OnnxConverter> t;
  return t;
}

Provenance onnx_prov(const std::string& source_name, int index) {
  Provenance p;
  p.framework = "onnx";
  p.source_name = source_name;
  p.output_index = index;
  p.source_layout = "NCHW";
  return p;
}

// The attribute's type; very old models leave it UNDEFINED: guessed from the fields set.
onnx::AttributeProto::AttributeType attribute_type(const onnx::AttributeProto& a) {
  auto type = a.type();
  if (type != onnx::AttributeProto::UNDEFINED) return type;
  if (a.has_f())
    type = onnx::AttributeProto::FLOAT;
  else if (a.has_i())
    type = onnx::AttributeProto::INT;
  else if (a.has_s())
    type = onnx::AttributeProto::STRING;
  else if (a.has_t())
    type = onnx::AttributeProto::TENSOR;
  else if (a.has_g())
    type = onnx::AttributeProto::GRAPH;
  else if (a.floats_size())
    type = onnx::AttributeProto::FLOATS;
  else if (a.ints_size())
    type = onnx::AttributeProto::INTS;
  else if (a.strings_size())
    type = onnx::AttributeProto::STRINGS;
  else if (a.graphs_size())
    type = onnx::AttributeProto::GRAPHS;
  return type;
}

}  // namespace

OnnxConverter find_converter(const std::string& op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : it->second;
}

ConverterRegistrar::ConverterRegistrar(
    std::initializer_list<std::pair<const char*, OnnxConverter>> rows) {
  for (const auto& [op, fn] : rows) table()[op] = fn;
}

std::vector<std::string> converter_ops() {
  std::vector<std::string> r;
  for (const auto& [op, fn] : table()) r.push_back(op);
  return r;
}

OnnxGraphBuilder::OnnxGraphBuilder(const onnx::ModelProto& m, std::string file,
                                   const ImportOptions& opt)
    : model_(m), file_(std::move(file)), opt_(opt) {
  dir_ = std::filesystem::path(file_).parent_path().string();
  if (dir_.empty()) dir_ = ".";
}

// ---------------------------------------------------------------------------------------
// construction helpers

std::string OnnxGraphBuilder::unique_value(const std::string& base) {
  std::string b = base.empty() ? "v" : base;
  if (!value_names_.count(b) && !names_.count(b)) return b;
  for (int i = 1;; ++i) {
    std::string c = b + "_" + std::to_string(i);
    if (!value_names_.count(c) && !names_.count(c)) return c;
  }
}

std::string OnnxGraphBuilder::unique_node(const std::string& base) {
  std::string b = base.empty() ? "node" : base;
  if (!node_names_.count(b)) return b;
  for (int i = 1;; ++i) {
    std::string c = b + "_" + std::to_string(i);
    if (!node_names_.count(c)) return c;
  }
}

int OnnxGraphBuilder::add_constant(const std::string& name, Tensor t,
                                   const std::string& source_name) {
  int v = g_.add_constant(name, t);
  shadow_.add_constant(name, t);
  g_.values[static_cast<size_t>(v)].prov = onnx_prov(source_name, 0);
  value_names_.insert(name);
  return v;
}

int OnnxGraphBuilder::add_input(const std::string& name, DType dt, const Shape& s) {
  int v = g_.add_input(name, dt, s);
  shadow_.add_input(name, dt, s);
  g_.values[static_cast<size_t>(v)].prov = onnx_prov(name, 0);
  value_names_.insert(name);
  return v;
}

int OnnxGraphBuilder::add_placeholder(const std::string& name) {
  int v = g_.add_value(name);
  shadow_.add_value(name);
  g_.values[static_cast<size_t>(v)].prov = onnx_prov(name, 0);
  value_names_.insert(name);
  unknown_why_[v] = "produced by a node that could not be imported";
  return v;
}

int OnnxGraphBuilder::emit(const std::string& op, const std::string& name,
                           const std::vector<int>& inputs, const Attributes& attrs,
                           const std::vector<std::string>& out_names) {
  const int n = static_cast<int>(out_names.size());
  int ni = g_.add_node(op, name, inputs, attrs, n, out_names);
  shadow_.add_node(op, name, inputs, attrs, n, out_names);
  node_names_.insert(name);
  for (const auto& o : out_names) value_names_.insert(o);
  for (int o : g_.nodes[static_cast<size_t>(ni)].outputs)
    g_.values[static_cast<size_t>(o)].prov = onnx_prov("", 0);
  infer(ni);
  return ni;
}

// Infers the node's output shapes in the shadow graph and folds it when all its inputs are
// (small) constants, as passes::fold_constants does.
void OnnxGraphBuilder::infer(int ni) {
  Node& n = shadow_.nodes[static_cast<size_t>(ni)];
  for (int in : n.inputs) {
    if (in >= 0 && !shadow_.values[static_cast<size_t>(in)].shape_known) {
      std::string why = unknown_why_.count(in) ? unknown_why_[in] : "unknown input shape";
      for (int o : n.outputs) unknown_why_[o] = why;
      return;
    }
  }
  try {
    shadow_.infer_node(ni);
  } catch (const std::exception& e) {
    for (int o : n.outputs) unknown_why_[o] = e.what();
    return;
  }
  const OpDef* def = OpRegistry::global().find(n.op);
  if (!def || !def->foldable) return;
  int64_t total = 0;
  for (int o : n.outputs) total += shape_numel(shadow_.values[static_cast<size_t>(o)].shape);
  if (total > kMaxFoldElements) return;
  std::vector<Tensor> ins;
  for (int in : n.inputs) {
    if (in < 0) {
      ins.emplace_back();
      continue;
    }
    const Value& v = shadow_.values[static_cast<size_t>(in)];
    if (n.op == "Shape") {
      ins.push_back(Tensor::wrap(v.dtype, v.shape, nullptr, std::make_shared<int>(0)));
      continue;
    }
    if (!v.is_constant()) return;
    ins.push_back(v.constant);
  }
  try {
    std::vector<Tensor> outs = evaluate_node(shadow_, n, ins);
    for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k)
      shadow_.values[static_cast<size_t>(n.outputs[k])].constant = outs[k];
  } catch (const std::exception&) {
    // Not foldable here; the session reports the error when it runs the node.
  }
}

int OnnxGraphBuilder::const_i64(const std::string& base, const std::vector<int64_t>& v,
                                bool scalar) {
  Tensor t =
      Tensor::from_vector<int64_t>(scalar ? Shape{} : Shape{static_cast<int64_t>(v.size())}, v);
  return add_constant(unique_value(base), t, "");
}

int OnnxGraphBuilder::const_scalar(const std::string& base, DType dt, double v) {
  Tensor t(dt, Shape{});
  t.set(0, v);
  return add_constant(unique_value(base), t, "");
}

std::optional<Shape> OnnxGraphBuilder::need_shape(NodeCtx& c, int i, const std::string& why) {
  int v = i < static_cast<int>(c.inputs.size()) ? c.inputs[static_cast<size_t>(i)] : -1;
  if (v < 0) {
    problem(c, why + ": input " + std::to_string(i) + " is missing");
    return std::nullopt;
  }
  if (!known(v)) {
    std::string reason = unknown_why_.count(v) ? unknown_why_[v] : "unknown";
    problem(c, why + " needs the shape of '" + g_.values[static_cast<size_t>(v)].name +
                   "', which could not be inferred (" + reason + ")");
    return std::nullopt;
  }
  return shape_of(v);  // a copy: adding values to the shadow graph moves its storage
}

// ---------------------------------------------------------------------------------------
// attributes

bool OnnxGraphBuilder::convert_attributes(NodeCtx& c) {
  bool ok = true;
  for (const auto& a : c.proto->attribute()) {
    const std::string& name = a.name();
    if (!a.ref_attr_name().empty()) {
      problem(c, "attribute '" + name +
                     "' refers to a function attribute (model-local "
                     "functions are not supported)");
      ok = false;
      continue;
    }
    const auto type = attribute_type(a);
    switch (type) {
      case onnx::AttributeProto::FLOAT:
        c.attrs.set(name, static_cast<double>(a.f()));
        break;
      case onnx::AttributeProto::INT:
        c.attrs.set(name, static_cast<int64_t>(a.i()));
        break;
      case onnx::AttributeProto::STRING:
        c.attrs.set(name, a.s());
        break;
      case onnx::AttributeProto::FLOATS:
        c.attrs.set(name, std::vector<double>(a.floats().begin(), a.floats().end()));
        break;
      case onnx::AttributeProto::INTS:
        c.attrs.set(name, std::vector<int64_t>(a.ints().begin(), a.ints().end()));
        break;
      case onnx::AttributeProto::STRINGS:
        c.attrs.set(name, std::vector<std::string>(a.strings().begin(), a.strings().end()));
        break;
      case onnx::AttributeProto::TENSOR:
        try {
          c.attrs.set(name,
                      tensor_from_proto(
                          a.t(), TensorSource{file_, c.name, "attribute '" + name + "'", dir_}));
        } catch (const Error& e) {
          problem(c, e.message());
          ok = false;
        }
        break;
      case onnx::AttributeProto::GRAPH:
      case onnx::AttributeProto::GRAPHS:
        problem(c, "attribute '" + name + "' is a subgraph (control flow is not supported)");
        ok = false;
        break;
      case onnx::AttributeProto::SPARSE_TENSOR:
      case onnx::AttributeProto::SPARSE_TENSORS:
        problem(c, "attribute '" + name + "' is a sparse tensor (not supported)");
        ok = false;
        break;
      case onnx::AttributeProto::TYPE_PROTO:
      case onnx::AttributeProto::TYPE_PROTOS:
        problem(c, "attribute '" + name + "' is a type (not supported)");
        ok = false;
        break;
      case onnx::AttributeProto::TENSORS:
        problem(c, "attribute '" + name + "' is a list of tensors (not supported)");
        ok = false;
        break;
      default:
        problem(c, "attribute '" + name + "' has no value or an unknown type");
        ok = false;
        break;
    }
  }
  return ok;
}

// Moves attribute `attr` (ints) into input `position` as an i64 constant.
void OnnxGraphBuilder::attr_to_input(NodeCtx& c, const std::string& attr, size_t position) {
  if (!c.attrs.has(attr)) return;
  std::vector<int64_t> v;
  try {
    v = c.attrs.get_ints(attr);
  } catch (const Error& e) {
    problem(c, "attribute '" + attr + "': " + e.message());
    c.attrs.erase(attr);
    return;
  }
  c.attrs.erase(attr);
  int k = const_i64(c.name + "/" + attr, v);
  if (c.inputs.size() <= position) c.inputs.resize(position + 1, -1);
  c.inputs[position] = k;
}

// Attributes for a Reshape to a fully known shape: a 0 in it means 0 (not "copy").
Attributes exact_reshape_attrs() {
  Attributes a;
  const OpDef* def = OpRegistry::global().find("Reshape");
  if (def && std::any_of(def->attrs.begin(), def->attrs.end(),
                         [](const AttrSpec& s) { return s.name == "allowzero"; }))
    a.set("allowzero", int64_t{1});
  return a;
}

// Attributes of older opsets (or training-only ones) that do not change inference.
void OnnxGraphBuilder::drop_harmless_attributes(NodeCtx& c, const OpDef& def) {
  auto listed = [&](const std::string& a) {
    return std::any_of(def.attrs.begin(), def.attrs.end(),
                       [&](const AttrSpec& s) { return s.name == a; });
  };
  auto drop_if = [&](const std::string& a, bool harmless) {
    if (c.attrs.has(a) && !listed(a) && harmless) c.attrs.erase(a);
  };
  drop_if("consumed_inputs", true);
  const std::string& op = c.onnx_op;
  if (op == "BatchNormalization") {
    drop_if("is_test", true);
    drop_if("momentum", true);
    drop_if("training_mode", c.attrs.get_int("training_mode", 0) == 0);
    if (c.attrs.has("spatial") && !listed("spatial")) {
      bool one_d_scale =
          c.inputs.size() > 1 && known(c.inputs[1]) && shape_of(c.inputs[1]).size() == 1;
      drop_if("spatial", c.attrs.get_int("spatial", 1) == 1 || one_d_scale);
    }
  }
  if (op == "Dropout") {
    drop_if("is_test", true);
    drop_if("ratio", true);
    drop_if("seed", true);
  }
  if (op == "Gemm") drop_if("broadcast", true);
  if (op == "MaxPool")
    drop_if("storage_order", c.attrs.get_int("storage_order", 0) == 0 || c.outs.size() < 2);
  if (op == "InstanceNormalization" || op == "LRN") drop_if("is_test", true);
}

// ---------------------------------------------------------------------------------------
// generic emission

void OnnxGraphBuilder::bind_outputs(NodeCtx& c, const std::vector<int>& values) {
  for (size_t i = 0; i < c.outs.size() && i < values.size(); ++i) {
    if (c.outs[i].empty()) continue;
    int v = values[i];
    g_.values[static_cast<size_t>(v)].prov = onnx_prov(c.outs[i], static_cast<int>(i));
    names_[c.outs[i]] = v;
  }
}

void OnnxGraphBuilder::fail_node(NodeCtx& c) {
  node_names_.insert(c.name);
  for (const auto& o : c.outs)
    if (!o.empty() && !names_.count(o)) names_[o] = add_placeholder(unique_value(o));
}

void OnnxGraphBuilder::finish_node(NodeCtx& c) {
  const OpDef* def = OpRegistry::global().find(c.op);
  if (!def) {
    problem(c, "op not supported (no canonical op '" + c.op + "')");
    fail_node(c);
    return;
  }
  drop_harmless_attributes(c, *def);
  bool ok = true;
  for (const auto& [k, _] : c.attrs.all()) {
    bool listed = std::any_of(def->attrs.begin(), def->attrs.end(),
                              [&](const AttrSpec& s) { return s.name == k; });
    if (!listed) {
      problem(c,
              "attribute '" + k + "' (= " + c.attrs.to_string(k) + ") is not supported by " + c.op);
      ok = false;
    }
  }
  // Outputs the canonical op does not have (training statistics of BatchNormalization,
  // Dropout's mask, ...) are dropped when nothing reads them.
  if (def->max_outputs >= 0)
    for (size_t i = static_cast<size_t>(def->max_outputs); i < c.outs.size(); ++i)
      if (!consumed_.count(c.outs[i])) c.outs[i].clear();
  // Trailing omitted inputs/outputs are dropped; omitted ones in the middle stay -1 / unused.
  while (!c.inputs.empty() && c.inputs.back() < 0) c.inputs.pop_back();
  std::vector<std::string> outs = c.outs;
  while (!outs.empty() && outs.back().empty()) outs.pop_back();
  if (outs.empty() && !c.outs.empty()) outs.push_back("");
  const int ni = static_cast<int>(c.inputs.size()), no = static_cast<int>(outs.size());
  if (ni < def->min_inputs || (def->max_inputs >= 0 && ni > def->max_inputs)) {
    problem(c, std::to_string(ni) + " inputs given, " + c.op + " takes " +
                   std::to_string(def->min_inputs) + ".." +
                   (def->max_inputs < 0 ? std::string("any") : std::to_string(def->max_inputs)));
    ok = false;
  }
  if (no < def->min_outputs || (def->max_outputs >= 0 && no > def->max_outputs)) {
    problem(c, std::to_string(no) + " outputs used, " + c.op + " has " +
                   std::to_string(def->min_outputs) + ".." +
                   (def->max_outputs < 0 ? std::string("any") : std::to_string(def->max_outputs)));
    ok = false;
  }
  if (!ok) {
    fail_node(c);
    return;
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < outs.size(); ++i)
    names.push_back(outs[i].empty() ? unique_value(c.name + ":unused" + std::to_string(i))
                                    : outs[i]);
  int n = emit(c.op, c.name, c.inputs, c.attrs, names);
  g_.nodes[static_cast<size_t>(n)].source_op = c.onnx_op;
  bind_outputs(c, g_.nodes[static_cast<size_t>(n)].outputs);
}

}  // namespace anvil::onnx_import
