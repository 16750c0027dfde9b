// The ONNX graph builder: the state of one import (the graph and its shadow copy where shapes
// and small constants are inferred while importing, names, problems) and the services that
// converters use. ONNX ops map 1:1 onto canonical ops by the generic attribute copy
// (finish_node); ops that need more (older opset forms, auto_pad, Constant, renamed ops) have
// a converter in the table (onnx_convert_*.cpp), keyed by ONNX op type. An op is supported
// when the table has it or a canonical op of its name is registered.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "anvil/graph.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "import/common/problems.h"

namespace anvil::onnx_import {

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

class OnnxGraphBuilder;

/// What follows a converter: the generic emission of `c` (emit), nothing (done: the converter
/// emitted the node), or placeholders for the node's unbound outputs (failed: a problem was
/// recorded, or the converter bound the outputs itself).
enum class Next { emit, done, failed };

/// Rewrites node `c` (attributes, inputs, canonical op) or emits it.
using OnnxConverter = Next (*)(OnnxGraphBuilder& ob, NodeCtx& c);

/// The converter of ONNX op type `op` (default domain), or nullptr.
OnnxConverter find_converter(const std::string& op);

/// Adds rows to the converter table (one static object per converter file).
struct ConverterRegistrar {
  ConverterRegistrar(std::initializer_list<std::pair<const char*, OnnxConverter>> rows);
};

/// The ONNX op types with a converter (the table's keys).
std::vector<std::string> converter_ops();

class OnnxGraphBuilder {
 public:
  OnnxGraphBuilder(const onnx::ModelProto& m, std::string file, const ImportOptions& opt);

  Graph build();

  // ---- for converters: graph construction (g_ and its shadow stay index-aligned) ----
  Graph& graph() { return g_; }
  int64_t opset() const { return opset_; }
  int add_constant(const std::string& name, Tensor t, const std::string& source_name);
  int emit(const std::string& op, const std::string& name, const std::vector<int>& inputs,
           const Attributes& attrs, const std::vector<std::string>& out_names);
  std::string unique_value(const std::string& base);
  std::string unique_node(const std::string& base);
  int const_i64(const std::string& base, const std::vector<int64_t>& v, bool scalar = false);
  int const_scalar(const std::string& base, DType dt, double v);
  /// The ONNX name `name` now means value `v`.
  void bind_name(const std::string& name, int v) { names_[name] = v; }
  void bind_outputs(NodeCtx& c, const std::vector<int>& values);

  // ---- shadow queries ----
  bool known(int v) const { return v >= 0 && shadow_.values[static_cast<size_t>(v)].shape_known; }
  const Shape& shape_of(int v) const { return shadow_.values[static_cast<size_t>(v)].shape; }
  DType dtype_of_value(int v) const { return shadow_.values[static_cast<size_t>(v)].dtype; }
  const Tensor* const_of(int v) const {
    if (v < 0) return nullptr;
    const Value& val = shadow_.values[static_cast<size_t>(v)];
    return val.is_constant() ? &val.constant : nullptr;
  }
  // The input's shape, or records a problem saying why it is needed and returns nullopt.
  std::optional<Shape> need_shape(NodeCtx& c, int input_index, const std::string& why);

  // ---- problems ----
  void problem(const NodeCtx& c, const std::string& reason) {
    problems_.add(c.onnx_op, c.name, "", reason);
  }
  void problem(const std::string& op, const std::string& node, const std::string& reason) {
    problems_.add(op, node, "", reason);
  }

  /// Moves attribute `attr` (ints) into input `position` as an i64 constant.
  void attr_to_input(NodeCtx& c, const std::string& attr, size_t position);

 private:
  int add_input(const std::string& name, DType dt, const Shape& s);
  int add_placeholder(const std::string& name);
  void infer(int node_index);

  // ---- the walk (onnx_importer.cpp) ----
  std::set<std::string> add_initializers();
  void add_graph_inputs(const std::set<std::string>& init_names);
  void add_graph_input(const onnx::ValueInfoProto& in);
  void bind_graph_outputs();
  void throw_problems() const;
  std::vector<int> sorted_nodes();
  void convert_node(const onnx::NodeProto& n, int index);

  // ---- generic emission (onnx_builder.cpp) ----
  bool convert_attributes(NodeCtx& c);
  void finish_node(NodeCtx& c);  // generic emission with attribute/arity checks
  void fail_node(NodeCtx& c);    // registers placeholders for the node's outputs
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
  imp::ProblemList problems_;
};

/// Attributes for a Reshape to a fully known shape: a 0 in it means 0 (not "copy").
Attributes exact_reshape_attrs();

}  // namespace anvil::onnx_import
