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
// reported together in one anvil::Error.//
// Layout: this file is the driver (reading the file, initializers, graph inputs and outputs,
// the node walk in topological order, problems); onnx_builder.cpp holds the services and the
// generic emission; onnx_convert_*.cpp hold the converter table.
#include <algorithm>
#include <filesystem>
#include <limits>

#include "anvil/error.h"
#include "anvil/import.h"
#include "core/file_io.h"
#include "core/strings.h"
#include "import/common/topo_order.h"
#include "import/onnx/onnx_builder.h"
#include "import/onnx/onnx_proto_tensor.h"

namespace anvil::onnx_import {

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
  const OnnxConverter convert = standard ? find_converter(c.onnx_op) : nullptr;
  const bool builtin = standard && (convert || OpRegistry::global().find(c.op));
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
  switch (convert ? convert(*this, c) : Next::emit) {
    case Next::emit:
      finish_node(c);
      break;
    case Next::failed:
      fail_node(c);  // placeholders for outputs a failed rewrite left unbound
      break;
    case Next::done:
      break;
  }
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

// Initializers -> constants; returns their names.
std::set<std::string> OnnxGraphBuilder::add_initializers() {
  const auto& graph = model_.graph();
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
  return init_names;
}

// One graph input (not an initializer): a graph input of its type and shape, or a
// placeholder and a problem.
void OnnxGraphBuilder::add_graph_input(const onnx::ValueInfoProto& in) {
  const std::string& name = in.name();
  if (name.empty()) {
    problem("input", "", "a graph input has no name");
    return;
  }
  if (names_.count(name)) {
    problem("input", name, "graph input '" + name + "' is listed twice");
    return;
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
    return;
  }
  const auto& tt = tp.tensor_type();
  auto dt = dtype_from_onnx(tt.elem_type());
  if (!dt) {
    problem("input", name,
            "graph input '" + name + "' has element type " + onnx_type_name(tt.elem_type()) +
                ", which is not supported");
    names_[name] = add_placeholder(name);
    return;
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
    return;
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
    return;
  }
  names_[name] = add_input(name, *dt, shape);
}

void OnnxGraphBuilder::add_graph_inputs(const std::set<std::string>& init_names) {
  for (const auto& in : model_.graph().input())
    if (!init_names.count(in.name())) add_graph_input(in);
  for (const auto& [name, shape] : opt_.input_shapes) {
    auto it = names_.find(name);
    if (it == names_.end() || init_names.count(name))
      problem("input", name,
              "a shape is given for '" + name + "', which is not a graph input of the model");
  }
}

void OnnxGraphBuilder::bind_graph_outputs() {
  for (const auto& o : model_.graph().output()) {
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
}

void OnnxGraphBuilder::throw_problems() const {
  problems_.throw_if_any(file_, {imp::ProblemList::Style::Listed, "the ONNX model", "node"});
}

Graph OnnxGraphBuilder::build() {
  const auto& graph = model_.graph();
  for (const auto& o : model_.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  g_.framework = shadow_.framework = "onnx";
  g_.name = graph.name();
  g_.source_file = shadow_.source_file = file_;

  std::set<std::string> init_names = add_initializers();
  add_graph_inputs(init_names);

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

  bind_graph_outputs();
  throw_problems();

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

namespace {

bool parse_model(const std::string& bytes, onnx::ModelProto& m) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
  return m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

bool accepts(const std::vector<std::string>& files) {
  if (files.size() != 1) return false;
  if (ends_with_ci(files[0], ".onnx")) return true;
  std::error_code ec;
  auto size = std::filesystem::file_size(files[0], ec);
  if (ec || size == 0 || size > (size_t{256} << 20)) return false;
  try {
    onnx::ModelProto m;
    return parse_model(read_file(files[0], "an ONNX model"), m) && m.ir_version() > 0 &&
           m.has_graph();
  } catch (...) {
    return false;
  }
}

Graph load(const std::vector<std::string>& files, const ImportOptions& options) {
  if (files.size() != 1)
    throw Error("an ONNX model is one .onnx file (external data is found next to it)",
                files.empty() ? std::string() : files[0]);
  const std::string& path = files[0];
  std::string bytes = read_file(path, "an ONNX model");
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
