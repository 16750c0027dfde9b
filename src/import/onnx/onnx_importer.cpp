// The ONNX importer: ModelProto -> anvil::Graph with canonical ops.
//
// ONNX ops map 1:1 onto the canonical ops of the same name (attributes copied). Older opset
// forms are rewritten into the canonical (newest, input-based) form here: attributes that
// later became inputs become constant inputs, legacy broadcasting becomes numpy
// broadcasting, Softmax's old coerce-to-2D semantics become Flatten -> Softmax -> Reshape,
// and auto_pad becomes explicit pads computed from the input shape. Shapes (and small
// constant subgraphs) are inferred while importing, in a shadow copy of the graph, so that
// these rewrites can see the shapes they need.
//
// Problems (unsupported ops or attributes, dangling inputs, bad tensors) are collected and
// reported together in one anvil::Error.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "import/onnx/onnx_proto_tensor.h"
#include "import/topo_order.h"

namespace anvil::onnx_import {
namespace {

constexpr int64_t kMaxFoldElements = int64_t{1} << 20;  // fold at import only small tensors

struct Problem {
  std::string op, node, reason;
};

// One ONNX node being translated.
struct NodeCtx {
  const onnx::NodeProto* proto = nullptr;
  std::string onnx_op;  // ONNX op type
  std::string name;     // Anvil node name (unique)
  std::string op;       // canonical op to emit
  std::vector<int> inputs;
  Attributes attrs;
  std::vector<std::string> outs;  // ONNX output names, "" = omitted optional output
};

std::string join_ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

bool is_binary_legacy_op(const std::string& op) {
  static const std::set<std::string> ops = {"Add", "Sub", "Mul",   "Div",  "Pow",     "And",
                                            "Or",  "Xor", "Equal", "Less", "Greater", "PRelu"};
  return ops.count(op) != 0;
}

bool is_reduce_op(const std::string& op) {
  static const std::set<std::string> ops = {
      "ReduceSum", "ReduceMean", "ReduceMax",    "ReduceMin",       "ReduceProd",
      "ReduceL1",  "ReduceL2",   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};
  return ops.count(op) != 0;
}

class OnnxGraphBuilder {
 public:
  OnnxGraphBuilder(const onnx::ModelProto& m, std::string file, const ImportOptions& opt)
      : model_(m), file_(std::move(file)), opt_(opt) {
    dir_ = std::filesystem::path(file_).parent_path().string();
    if (dir_.empty()) dir_ = ".";
  }

  Graph build();

 private:
  // ---- graph construction (g_ and its shadow stay index-aligned) ----
  int add_constant(const std::string& name, Tensor t, const std::string& source_name);
  int add_input(const std::string& name, DType dt, const Shape& s);
  int add_placeholder(const std::string& name);
  int emit(const std::string& op, const std::string& name, const std::vector<int>& inputs,
           const Attributes& attrs, const std::vector<std::string>& out_names);
  void infer(int node_index);
  std::string unique_value(const std::string& base);
  std::string unique_node(const std::string& base);
  int const_i64(const std::string& base, const std::vector<int64_t>& v, bool scalar = false);
  int const_scalar(const std::string& base, DType dt, double v);

  // ---- shadow queries ----
  bool known(int v) const { return v >= 0 && shadow_.values[static_cast<size_t>(v)].shape_known; }
  const Shape& shape_of(int v) const { return shadow_.values[static_cast<size_t>(v)].shape; }
  DType dtype_of_value(int v) const { return shadow_.values[static_cast<size_t>(v)].dtype; }
  const Tensor* const_of(int v) const {
    if (v < 0) return nullptr;
    const Value& val = shadow_.values[static_cast<size_t>(v)];
    return val.is_constant() ? &val.constant : nullptr;
  }
  // The input's shape, or records a problem saying why it is needed and returns nullptr.
  std::optional<Shape> need_shape(NodeCtx& c, int input_index, const std::string& why);

  // ---- translation ----
  void problem(const NodeCtx& c, const std::string& reason) {
    problems_.push_back({c.onnx_op, c.name, reason});
  }
  void problem(const std::string& op, const std::string& node, const std::string& reason) {
    problems_.push_back({op, node, reason});
  }
  std::vector<int> sorted_nodes();
  void convert_node(const onnx::NodeProto& n, int index);
  bool convert_attributes(NodeCtx& c);
  void finish_node(NodeCtx& c);  // generic emission with attribute/arity checks
  void bind_outputs(NodeCtx& c, const std::vector<int>& values);
  void fail_node(NodeCtx& c);  // registers placeholders for the node's outputs

  bool convert_constant(NodeCtx& c);
  bool legacy_rewrites(NodeCtx& c);  // false when the node was fully handled or failed
  void attr_to_input(NodeCtx& c, const std::string& attr, size_t position);
  bool legacy_softmax(NodeCtx& c);
  bool legacy_broadcast(NodeCtx& c);
  bool resolve_auto_pad(NodeCtx& c);
  void drop_harmless_attributes(NodeCtx& c, const OpDef& def);

  const onnx::ModelProto& model_;
  std::string file_, dir_;
  const ImportOptions& opt_;
  int64_t opset_ = 1;
  Graph g_, shadow_;
  std::map<int, std::string> unknown_why_;  // value -> why its shape is unknown
  std::map<std::string, int> names_;        // ONNX value name -> value index
  std::set<std::string> value_names_, node_names_;
  std::set<std::string> consumed_;  // ONNX names read by nodes or graph outputs
  std::vector<Problem> problems_;
};

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

static Provenance onnx_prov(const std::string& source_name, int index) {
  Provenance p;
  p.framework = "onnx";
  p.source_name = source_name;
  p.output_index = index;
  p.source_layout = "NCHW";
  return p;
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
    auto type = a.type();
    if (type == onnx::AttributeProto::UNDEFINED) {  // very old models: guess from the fields
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
    }
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

// ---------------------------------------------------------------------------------------
// legacy forms

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

// Softmax, LogSoftmax, Hardmax before opset 13 coerce the input to 2D at `axis`.
bool OnnxGraphBuilder::legacy_softmax(NodeCtx& c) {
  int64_t axis = c.attrs.get_int("axis", 1);
  auto s = need_shape(c, 0, "the opset<13 form of " + c.onnx_op);
  if (!s) return false;
  const int64_t r = static_cast<int64_t>(s->size());
  int64_t a = axis < 0 ? axis + r : axis;
  if (a < 0 || a > r || (r > 0 && a == r)) {
    problem(c, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
    return false;
  }
  if (r == 0 || a == r - 1) {  // same as the canonical form
    c.attrs.set("axis", int64_t{-1});
    return true;
  }
  // Flatten(axis) -> op(axis=1) -> Reshape back to the input's shape.
  Attributes fa;
  fa.set("axis", a);
  int f = emit("Flatten", unique_node(c.name + "/flatten"), {c.inputs[0]}, fa,
               {unique_value(c.name + "/flatten")});
  Attributes sa;
  sa.set("axis", int64_t{1});
  int sm = emit(c.op, c.name, {g_.nodes[static_cast<size_t>(f)].outputs[0]}, sa,
                {unique_value(c.name + "/2d")});
  g_.nodes[static_cast<size_t>(sm)].source_op = c.onnx_op;
  int shp = const_i64(c.name + "/shape", *s);
  std::string out = c.outs.empty() ? unique_value(c.name + "/out") : c.outs[0];
  Attributes ra = exact_reshape_attrs();
  int rs = emit("Reshape", unique_node(c.name + "/reshape"),
                {g_.nodes[static_cast<size_t>(sm)].outputs[0], shp}, ra, {out});
  bind_outputs(c, {g_.nodes[static_cast<size_t>(rs)].outputs[0]});
  return false;
}

// Elementwise ops before opset 7: `broadcast` = 1 lets B match A's dims from `axis` on.
bool OnnxGraphBuilder::legacy_broadcast(NodeCtx& c) {
  int64_t b = c.attrs.get_int("broadcast", 0);
  c.attrs.erase("broadcast");
  bool has_axis = c.attrs.has("axis");
  int64_t axis = c.attrs.get_int("axis", 0);
  c.attrs.erase("axis");
  if (b == 0 || !has_axis || c.inputs.size() < 2) return true;
  auto sa = need_shape(c, 0, "legacy broadcasting (broadcast=1, axis)");
  if (!sa) return false;
  auto sb = need_shape(c, 1, "legacy broadcasting (broadcast=1, axis)");
  if (!sb) return false;
  const int64_t ra = static_cast<int64_t>(sa->size()), rb = static_cast<int64_t>(sb->size());
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra) {
    problem(c, "legacy broadcast axis " + std::to_string(axis) + " does not fit shapes " +
                   shape_str(*sa) + " and " + shape_str(*sb));
    return false;
  }
  const int64_t trailing = ra - axis - rb;
  if (trailing == 0) return true;
  Shape ns = *sb;
  for (int64_t i = 0; i < trailing; ++i) ns.push_back(1);
  int bin = c.inputs[1];
  if (const Tensor* k = const_of(bin); k && g_.values[static_cast<size_t>(bin)].is_constant()) {
    c.inputs[1] = add_constant(unique_value(c.name + "/B"), k->reshaped(ns), "");
  } else {
    int shp = const_i64(c.name + "/B_shape", ns);
    int rs = emit("Reshape", unique_node(c.name + "/B_reshape"), {bin, shp}, exact_reshape_attrs(),
                  {unique_value(c.name + "/B_reshaped")});
    c.inputs[1] = g_.nodes[static_cast<size_t>(rs)].outputs[0];
  }
  return true;
}

// auto_pad -> explicit pads, from the input's spatial shape.
bool OnnxGraphBuilder::resolve_auto_pad(NodeCtx& c) {
  if (!c.attrs.has("auto_pad")) return true;
  std::string mode = c.attrs.get_string("auto_pad", "NOTSET");
  c.attrs.erase("auto_pad");
  if (mode == "NOTSET" || mode.empty()) return true;
  if (mode != "SAME_UPPER" && mode != "SAME_LOWER" && mode != "VALID") {
    problem(c, "auto_pad '" + mode + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    return false;
  }
  auto xs = need_shape(c, 0, "auto_pad " + mode);
  if (!xs) return false;
  if (xs->size() < 3) {
    problem(c, "auto_pad needs an input with spatial dims, found shape " + shape_str(*xs));
    return false;
  }
  const size_t nsp = xs->size() - 2;
  const bool transpose = c.onnx_op == "ConvTranspose";
  std::vector<int64_t> k;
  if (c.attrs.has("kernel_shape")) {
    k = c.attrs.get_ints("kernel_shape");
  } else if (c.onnx_op == "Conv" || transpose) {
    auto ws = need_shape(c, 1, "auto_pad " + mode);
    if (!ws) return false;
    if (ws->size() == xs->size()) k.assign(ws->begin() + 2, ws->end());
  }
  if (k.size() != nsp) {
    problem(c, "auto_pad needs kernel_shape with " + std::to_string(nsp) + " values, found " +
                   join_ints(k));
    return false;
  }
  auto s = c.attrs.get_ints("strides", std::vector<int64_t>(nsp, 1));
  auto d = c.attrs.get_ints("dilations", std::vector<int64_t>(nsp, 1));
  auto op = c.attrs.get_ints("output_padding", std::vector<int64_t>(nsp, 0));
  if (s.size() != nsp || d.size() != nsp || op.size() != nsp) {
    problem(c, "strides/dilations/output_padding must have " + std::to_string(nsp) + " values");
    return false;
  }
  std::vector<int64_t> pads(2 * nsp, 0);
  if (mode == "VALID") {
    c.attrs.set("pads", pads);
    return true;
  }
  std::vector<int64_t> out_shape;
  if (transpose && c.attrs.has("output_shape")) {
    out_shape = c.attrs.get_ints("output_shape");
    if (out_shape.size() == nsp + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    if (out_shape.size() != nsp) {
      problem(c, "output_shape must have " + std::to_string(nsp) + " values");
      return false;
    }
    c.attrs.erase("output_shape");
  }
  bool changed_op = false;
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t in = (*xs)[i + 2];
    if (s[i] < 1 || d[i] < 1 || k[i] < 1) {
      problem(c, "kernel_shape, strides and dilations must be >= 1");
      return false;
    }
    const int64_t ek = (k[i] - 1) * d[i] + 1;
    int64_t total;
    if (transpose) {
      int64_t out = out_shape.empty() ? in * s[i] : out_shape[i];
      total = s[i] * (in - 1) + op[i] + ek - out;
      if (total < 0) {  // the requested output is larger: grow output_padding
        op[i] += -total;
        total = 0;
        changed_op = true;
      }
    } else {
      int64_t out = (in + s[i] - 1) / s[i];
      total = std::max<int64_t>(0, (out - 1) * s[i] + ek - in);
    }
    const int64_t small = total / 2, big = total - total / 2;
    pads[i] = mode == "SAME_UPPER" ? small : big;
    pads[i + nsp] = mode == "SAME_UPPER" ? big : small;
  }
  c.attrs.set("pads", pads);
  if (changed_op) c.attrs.set("output_padding", op);
  return true;
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

// Rewrites opset-specific forms into the canonical one. Returns false when the node has been
// fully emitted here or has failed (a problem was recorded).
bool OnnxGraphBuilder::legacy_rewrites(NodeCtx& c) {
  const std::string& op = c.onnx_op;
  const int64_t v = opset_;
  if (op == "Reshape" && v < 5) attr_to_input(c, "shape", 1);
  if (op == "Concat" && v < 4 && !c.attrs.has("axis")) c.attrs.set("axis", int64_t{1});
  if (op == "Slice" && v < 10) {
    if (c.attrs.has("starts") && c.attrs.has("ends")) {
      attr_to_input(c, "starts", 1);
      attr_to_input(c, "ends", 2);
      attr_to_input(c, "axes", 3);
    }
  }
  if (op == "Pad" && v < 11) {
    if (c.attrs.has("paddings"))
      attr_to_input(c, "paddings", 1);
    else
      attr_to_input(c, "pads", 1);
    double value = c.attrs.get_float("value", 0.0);
    c.attrs.erase("value");
    if (value != 0.0) {
      DType dt = known(c.inputs[0]) ? dtype_of_value(c.inputs[0]) : DType::f32;
      c.inputs.resize(3, -1);
      c.inputs[2] = const_scalar(c.name + "/constant_value", dt, value);
    }
  }
  if (op == "Clip" && v < 11) {
    DType dt = known(c.inputs[0]) ? dtype_of_value(c.inputs[0]) : DType::f32;
    if (c.attrs.has("min") || c.attrs.has("max")) c.inputs.resize(3, -1);
    if (c.attrs.has("min"))
      c.inputs[1] = const_scalar(c.name + "/min", dt, c.attrs.get_float("min"));
    if (c.attrs.has("max"))
      c.inputs[2] = const_scalar(c.name + "/max", dt, c.attrs.get_float("max"));
    c.attrs.erase("min");
    c.attrs.erase("max");
    while (!c.inputs.empty() && c.inputs.back() < 0) c.inputs.pop_back();
  }
  if ((op == "Squeeze" || op == "Unsqueeze") && v < 13) attr_to_input(c, "axes", 1);
  if (op == "Split" && v < 13) attr_to_input(c, "split", 1);
  if ((op == "ReduceSum" && v < 13) || (is_reduce_op(op) && op != "ReduceSum" && v < 18))
    attr_to_input(c, "axes", 1);
  if ((op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") && v < 13)
    if (!legacy_softmax(c)) return false;
  if (is_binary_legacy_op(op) && v < 7 && c.attrs.has("broadcast"))
    if (!legacy_broadcast(c)) return false;
  if (is_binary_legacy_op(op) && v < 7) c.attrs.erase("axis");
  if (op == "PRelu" && v < 7 && c.inputs.size() == 2) {
    // Before opset 7 a 1-D slope of size C is per channel (axis 1), not numpy-broadcast.
    auto xs = known(c.inputs[0]) ? std::optional<Shape>(shape_of(c.inputs[0])) : std::nullopt;
    auto ss = known(c.inputs[1]) ? std::optional<Shape>(shape_of(c.inputs[1])) : std::nullopt;
    if (xs && ss && xs->size() > 2 && ss->size() == 1 && (*ss)[0] > 1 && (*ss)[0] == (*xs)[1]) {
      Shape ns(xs->size() - 1, 1);
      ns[0] = (*ss)[0];
      int slope = c.inputs[1];
      if (const Tensor* k = const_of(slope);
          k && g_.values[static_cast<size_t>(slope)].is_constant()) {
        c.inputs[1] = add_constant(unique_value(c.name + "/slope"), k->reshaped(ns), "");
      } else {
        int shp = const_i64(c.name + "/slope_shape", ns);
        int rs = emit("Reshape", unique_node(c.name + "/slope_reshape"), {slope, shp},
                      exact_reshape_attrs(), {unique_value(c.name + "/slope_reshaped")});
        c.inputs[1] = g_.nodes[static_cast<size_t>(rs)].outputs[0];
      }
    }
  }
  if (op == "Upsample" || (op == "Resize" && v < 11)) {
    // Upsample and Resize-10: out[i] = in[floor(i / scale)] (nearest) or asymmetric linear.
    c.op = "Resize";
    std::string mode = c.attrs.get_string("mode", "nearest");
    if (mode == "bilinear") mode = "linear";
    c.attrs.set("mode", mode);
    c.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
    if (mode == "nearest") c.attrs.set("nearest_mode", std::string("floor"));
    int scales = c.inputs.size() > 1 ? c.inputs[1] : -1;
    if (c.attrs.has("scales")) {
      std::vector<double> sc = c.attrs.get_floats("scales");
      c.attrs.erase("scales");
      std::vector<float> f(sc.begin(), sc.end());
      scales = add_constant(unique_value(c.name + "/scales"),
                            Tensor::from_vector<float>({static_cast<int64_t>(f.size())}, f), "");
    }
    c.attrs.erase("height_scale");
    c.attrs.erase("width_scale");
    c.inputs = {c.inputs.empty() ? -1 : c.inputs[0], -1, scales};
  }
  if (op == "Resize") {
    // Empty roi / scales tensors mean "not given".
    for (size_t i = 1; i < c.inputs.size(); ++i) {
      const Tensor* t = const_of(c.inputs[i]);
      if (t && t->numel() == 0) c.inputs[i] = -1;
    }
    while (!c.inputs.empty() && c.inputs.back() < 0) c.inputs.pop_back();
  }
  if (op == "Scatter") c.op = "ScatterElements";
  if (op == "Conv" || op == "ConvTranspose" || op == "MaxPool" || op == "AveragePool" ||
      op == "LpPool")
    if (!resolve_auto_pad(c)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------
// nodes

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

bool OnnxGraphBuilder::convert_constant(NodeCtx& c) {
  const Attributes& a = c.attrs;
  Tensor t;
  if (a.has("value")) {
    try {
      t = a.get_tensor("value");
    } catch (const Error& e) {
      problem(c, "attribute 'value': " + e.message());
      return false;
    }
  } else if (a.has("value_float")) {
    t = Tensor::scalar<float>(static_cast<float>(a.get_float("value_float")));
  } else if (a.has("value_floats")) {
    auto d = a.get_floats("value_floats");
    t = Tensor::from_vector<float>({static_cast<int64_t>(d.size())},
                                   std::vector<float>(d.begin(), d.end()));
  } else if (a.has("value_int")) {
    t = Tensor::scalar<int64_t>(a.get_int("value_int"));
  } else if (a.has("value_ints")) {
    auto d = a.get_ints("value_ints");
    t = Tensor::from_vector<int64_t>({static_cast<int64_t>(d.size())}, d);
  } else if (a.has("value_string") || a.has("value_strings")) {
    problem(c, "string constants are not supported");
    return false;
  } else {
    problem(c, "Constant without a value (sparse_value is not supported)");
    return false;
  }
  if (c.outs.empty() || c.outs[0].empty()) return true;  // unused
  int v = add_constant(c.outs[0], t, c.outs[0]);
  names_[c.outs[0]] = v;
  return true;
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

void OnnxGraphBuilder::convert_node(const onnx::NodeProto& n, int index) {
  NodeCtx c;
  c.proto = &n;
  c.onnx_op = n.op_type();
  c.op = n.op_type();
  std::string base = n.name();
  if (base.empty())
    base = n.op_type().empty() ? "node_" + std::to_string(index)
                               : n.op_type() + "_" + std::to_string(index);
  c.name = unique_node(base);
  for (const auto& o : n.output()) c.outs.push_back(o);
  // Outputs must be new names (SSA).
  for (const auto& o : c.outs) {
    if (!o.empty() && names_.count(o)) {
      problem(c, "output '" + o +
                     "' is already produced by another node, an initializer or a graph input");
      return;
    }
  }
  if (c.onnx_op.empty()) {
    problem(c, "node without an op_type");
    fail_node(c);
    return;
  }
  bool ok = true;
  for (int i = 0; i < n.input_size(); ++i) {
    const std::string& in = n.input(i);
    if (in.empty()) {
      c.inputs.push_back(-1);
      continue;
    }
    auto it = names_.find(in);
    if (it == names_.end()) {
      problem(c, "input " + std::to_string(i) + " '" + in +
                     "' is not produced by any node, initializer or graph input");
      ok = false;
      c.inputs.push_back(-1);
      continue;
    }
    c.inputs.push_back(it->second);
  }
  if (!convert_attributes(c)) ok = false;
  if (!ok) {
    fail_node(c);
    return;
  }

  const std::string& domain = n.domain();
  const bool standard = domain.empty() || domain == "ai.onnx";
  if (standard && c.onnx_op == "Constant") {
    if (!convert_constant(c)) fail_node(c);
    return;
  }
  const bool builtin = standard && (OpRegistry::global().find(c.op) || c.onnx_op == "Upsample" ||
                                    c.onnx_op == "Scatter");
  if (!builtin) {
    auto mapped = mapped_source_op("onnx", c.onnx_op);
    if (!mapped && !standard) mapped = mapped_source_op("onnx", domain + "." + c.onnx_op);
    if (mapped) {
      c.op = *mapped;
      finish_node(c);
      return;
    }
    problem(c, standard ? "op not supported" : "op from domain '" + domain + "' not supported");
    fail_node(c);
    return;
  }
  if (!legacy_rewrites(c)) {
    fail_node(c);  // placeholders for outputs a failed rewrite left unbound
    return;
  }
  finish_node(c);
}

// Kahn's algorithm over ONNX names; ties keep the file's order. Nodes left over (cycles or
// dangling inputs) come last, in file order, and are reported when converted.
std::vector<int> OnnxGraphBuilder::sorted_nodes() {
  const auto& nodes = model_.graph().node();
  const int nn = nodes.size();
  std::map<std::string, int> producer;
  for (int i = 0; i < nn; ++i)
    for (const auto& o : nodes[i].output())
      if (!o.empty()) producer.emplace(o, i);
  std::vector<std::set<int>> deps(static_cast<size_t>(nn));
  for (int i = 0; i < nn; ++i)
    for (const auto& in : nodes[i].input()) {
      if (in.empty() || names_.count(in)) continue;
      auto it = producer.find(in);
      if (it != producer.end()) deps[static_cast<size_t>(i)].insert(it->second);
    }
  std::vector<bool> placed;
  std::vector<int> order = stable_topo_order(deps, placed);
  for (int i = 0; i < nn; ++i)
    if (!placed[static_cast<size_t>(i)]) order.push_back(i);
  return order;
}

Graph OnnxGraphBuilder::build() {
  const auto& graph = model_.graph();
  for (const auto& o : model_.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  g_.framework = shadow_.framework = "onnx";
  g_.name = graph.name();
  g_.source_file = shadow_.source_file = file_;

  // Initializers -> constants.
  std::set<std::string> init_names;
  for (const auto& t : graph.initializer()) {
    const std::string& name = t.name();
    if (name.empty()) {
      problem("initializer", "", "an initializer has no name");
      continue;
    }
    if (names_.count(name)) {
      problem("initializer", name, "initializer '" + name + "' is defined twice");
      continue;
    }
    try {
      Tensor v = tensor_from_proto(t, TensorSource{file_, {}, "initializer '" + name + "'", dir_});
      names_[name] = add_constant(name, v, name);
    } catch (const Error& e) {
      problem("initializer", name, e.message());
      names_[name] = add_placeholder(name);
    }
    init_names.insert(name);
  }
  if (graph.sparse_initializer_size() > 0)
    problem("initializer", "", "sparse initializers are not supported");

  // Graph inputs that are not initializers.
  for (const auto& in : graph.input()) {
    const std::string& name = in.name();
    if (init_names.count(name)) continue;
    if (name.empty()) {
      problem("input", "", "a graph input has no name");
      continue;
    }
    if (names_.count(name)) {
      problem("input", name, "graph input '" + name + "' is listed twice");
      continue;
    }
    const auto& tp = in.type();
    if (!tp.has_tensor_type()) {
      std::string kind = tp.has_sequence_type()        ? "a sequence"
                         : tp.has_map_type()           ? "a map"
                         : tp.has_optional_type()      ? "an optional"
                         : tp.has_sparse_tensor_type() ? "a sparse tensor"
                                                       : "of unknown type";
      problem("input", name,
              "graph input '" + name + "' is " + kind +
                  " (sequence types and other non-tensor types are not supported)");
      names_[name] = add_placeholder(name);
      continue;
    }
    const auto& tt = tp.tensor_type();
    auto dt = dtype_from_onnx(tt.elem_type());
    if (!dt) {
      problem("input", name,
              "graph input '" + name + "' has element type " + onnx_type_name(tt.elem_type()) +
                  ", which is not supported");
      names_[name] = add_placeholder(name);
      continue;
    }
    Shape shape;
    auto given = opt_.input_shapes.find(name);
    if (given != opt_.input_shapes.end()) {
      shape = given->second;
      if (tt.has_shape() && tt.shape().dim_size() != static_cast<int>(shape.size())) {
        problem("input", name,
                "graph input '" + name + "' has rank " + std::to_string(tt.shape().dim_size()) +
                    ", the shape given is " + shape_str(shape));
      }
    } else if (!tt.has_shape()) {
      problem("input", name,
              "graph input '" + name +
                  "' has no shape in the model; give one (ImportOptions::input_shapes)");
      names_[name] = add_placeholder(name);
      continue;
    } else {
      for (int i = 0; i < tt.shape().dim_size(); ++i) {
        const auto& d = tt.shape().dim(i);
        if (d.has_dim_value()) {
          if (d.dim_value() < 0) {
            problem("input", name,
                    "graph input '" + name + "' dimension " + std::to_string(i) + " is negative (" +
                        std::to_string(d.dim_value()) + ")");
            shape.push_back(opt_.default_dim);
          } else {
            shape.push_back(d.dim_value());
          }
        } else {
          shape.push_back(opt_.default_dim);
        }
      }
    }
    bool bad = false;
    for (int64_t d : shape) bad |= d < 0;
    if (!bad) {
      try {
        shape_numel(shape);
      } catch (const Error&) {
        bad = true;
      }
    }
    if (bad) {
      problem("input", name, "graph input '" + name + "' has an invalid shape " + shape_str(shape));
      names_[name] = add_placeholder(name);
      continue;
    }
    names_[name] = add_input(name, *dt, shape);
  }

  for (const auto& [name, shape] : opt_.input_shapes) {
    auto it = names_.find(name);
    if (it == names_.end() || init_names.count(name))
      problem("input", name,
              "a shape is given for '" + name + "', which is not a graph input of the model");
  }

  for (const auto& o : graph.output()) consumed_.insert(o.name());
  for (const auto& n : graph.node()) {
    for (const auto& i : n.input()) consumed_.insert(i);
    for (const auto& o : n.output()) value_names_.insert(o);  // helpers never take these names
  }

  for (int index : sorted_nodes()) {
    const onnx::NodeProto& n = graph.node(index);
    try {
      convert_node(n, index);
    } catch (const Error& e) {
      std::string nm = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
      problem(n.op_type(), nm, e.message());
    } catch (const std::exception& e) {
      std::string nm = n.name().empty() ? n.op_type() + "_" + std::to_string(index) : n.name();
      problem(n.op_type(), nm, std::string("internal error while importing: ") + e.what());
    }
  }

  for (const auto& o : graph.output()) {
    auto it = names_.find(o.name());
    if (it == names_.end()) {
      problem("output", o.name(), "graph output '" + o.name() + "' is never produced");
      continue;
    }
    if (o.has_type() && !o.type().has_tensor_type() &&
        o.type().value_case() != onnx::TypeProto::VALUE_NOT_SET) {
      problem("output", o.name(),
              "graph output '" + o.name() + "' is not a tensor (sequence types are not supported)");
      continue;
    }
    g_.outputs.push_back(it->second);
  }

  if (!problems_.empty()) {
    if (problems_.size() == 1) {
      const auto& p = problems_[0];
      throw Error(p.op + ": " + p.reason, file_, p.node);
    }
    std::string msg = std::to_string(problems_.size()) + " problems importing the ONNX model:";
    for (const auto& p : problems_)
      msg += "\n  - " + p.op + (p.node.empty() ? std::string() : " (node '" + p.node + "')") +
             ": " + p.reason;
    throw Error(msg, file_);
  }

  // Keep the shapes inferred while importing (the session infers them again).
  for (size_t i = 0; i < g_.values.size(); ++i) {
    const Value& s = shadow_.values[i];
    Value& v = g_.values[i];
    if (!v.shape_known && s.shape_known) {
      v.shape = s.shape;
      v.dtype = s.dtype;
      v.shape_known = true;
    }
  }
  g_.validate();
  return std::move(g_);
}

// ---------------------------------------------------------------------------------------
// file handling and registration

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open file", path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes;
}

bool parse_model(const std::string& bytes, onnx::ModelProto& m) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
  return m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  std::string tail = s.substr(s.size() - suffix.size());
  std::transform(tail.begin(), tail.end(), tail.begin(), ::tolower);
  return tail == suffix;
}

bool accepts(const std::vector<std::string>& files) {
  if (files.size() != 1) return false;
  if (ends_with(files[0], ".onnx")) return true;
  std::error_code ec;
  auto size = std::filesystem::file_size(files[0], ec);
  if (ec || size == 0 || size > (size_t{256} << 20)) return false;
  try {
    onnx::ModelProto m;
    return parse_model(read_file(files[0]), m) && m.ir_version() > 0 && m.has_graph();
  } catch (...) {
    return false;
  }
}

Graph load(const std::vector<std::string>& files, const ImportOptions& options) {
  if (files.size() != 1)
    throw Error("an ONNX model is one .onnx file (external data is found next to it)",
                files.empty() ? std::string() : files[0]);
  const std::string& path = files[0];
  std::string bytes = read_file(path);
  if (bytes.empty()) throw Error("the file is empty, not an ONNX model", path);
  onnx::ModelProto m;
  if (!parse_model(bytes, m))
    throw Error(
        "not a valid ONNX model: the protobuf could not be parsed (truncated or corrupt file, " +
            std::to_string(bytes.size()) + " bytes)",
        path);
  if (!m.has_graph())
    throw Error(
        "not a valid ONNX model: no graph in the ModelProto (truncated or not an ONNX file)", path,
        {}, "graph");
  OnnxGraphBuilder b(m, path, options);
  return b.build();
}

const bool registered = [] {
  register_importer(anvil::Importer{"onnx", accepts, load});
  return true;
}();

}  // namespace
}  // namespace anvil::onnx_import
