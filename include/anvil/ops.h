// The op table: one entry per op with its attributes, shape rule, reference kernel and docs.
// Built-in ops register themselves; users register custom ops the same way (see
// examples/custom_op.cpp).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"

namespace anvil {

enum class AttrType { Int, Float, String, Ints, Floats, Strings, Tensor };

struct AttrSpec {
  std::string name;
  AttrType type;
  std::string doc;
};

/// What a shape rule sees: the node, its inputs' dtypes/shapes and constant values.
class InferContext {
 public:
  InferContext(const Graph& g, const Node& n, std::vector<DType>& out_dtypes,
               std::vector<Shape>& out_shapes);
  const Node& node() const { return node_; }
  const Attributes& attrs() const { return node_.attrs; }
  int num_inputs() const { return static_cast<int>(node_.inputs.size()); }
  int num_outputs() const { return static_cast<int>(node_.outputs.size()); }
  bool has_input(int i) const;  // present and not omitted (-1)
  const Shape& shape(int i) const;
  DType dtype(int i) const;
  int rank(int i) const { return static_cast<int>(shape(i).size()); }
  /// The constant value of input i, or nullptr when it is computed at run time.
  const Tensor* constant(int i) const;
  /// The constant value of input i; throws (naming the field) when it is not constant.
  const Tensor& require_constant(int i, const std::string& field) const;
  void set_output(int i, DType dtype, Shape shape);
  /// Throws anvil::Error naming this node and `field`.
  [[noreturn]] void fail(const std::string& field, const std::string& message) const;

 private:
  const Graph& graph_;
  const Node& node_;
  std::vector<DType>& out_dtypes_;
  std::vector<Shape>& out_shapes_;
};

/// What a kernel sees: the node and its tensors. Outputs are allocated by the caller with
/// the inferred dtypes and shapes; an omitted optional input is an undefined Tensor.
struct KernelContext {
  const Node& node;
  std::span<const Tensor> inputs;
  std::span<Tensor> outputs;
  const Attributes& attrs() const { return node.attrs; }
  [[noreturn]] void fail(const std::string& field, const std::string& message) const;
};

using ShapeRule = std::function<void(InferContext&)>;
using Kernel = std::function<void(KernelContext&)>;

struct OpDef {
  std::string name;      // "Conv", "Relu", ...
  std::string category;  // "conv", "pool", "activation", "elementwise", "shape", "norm", ...
  std::string doc;       // one line, shown by the ops table
  int min_inputs = 1, max_inputs = 1;
  int min_outputs = 1, max_outputs = 1;
  std::vector<AttrSpec> attrs;  // the attributes the op accepts
  ShapeRule infer;              // required
  Kernel reference;             // the reference (oracle) kernel, required
  bool foldable = true;         // may be evaluated at compile time when all inputs are constant
};

class OpRegistry {
 public:
  static OpRegistry& global();
  /// Adds an op; throws if the name exists (unless `replace`).
  void add(OpDef def, bool replace = false);
  const OpDef* find(const std::string& name) const;
  const OpDef& get(const std::string& name) const;  // throws naming the op
  std::vector<const OpDef*> all() const;            // sorted by name

 private:
  std::vector<std::unique_ptr<OpDef>> ops_;
};

/// Registers a custom op globally (shape rule + CPU kernel). Same as OpRegistry::global().add.
void register_op(OpDef def);

/// Maps an unsupported source layer/node type to a registered op. When an importer meets
/// `source_type` in `framework` ("onnx", "keras", "caffe", "tensorflow", "tflite") and has
/// no built-in translation, it emits a node of op `op_name` with the source's inputs and
/// its attributes copied by name (ints, floats, strings and lists of them).
void map_source_op(const std::string& framework, const std::string& source_type,
                   const std::string& op_name);
/// The op mapped for a source type, if any.
std::optional<std::string> mapped_source_op(const std::string& framework,
                                            const std::string& source_type);

/// Helper for static registration in op source files:
///   static const anvil::OpRegistrar reg_relu{OpDef{...}};
struct OpRegistrar {
  explicit OpRegistrar(OpDef def) { OpRegistry::global().add(std::move(def)); }
};

/// Runs the reference kernel of node `n` on `inputs`; returns the outputs with shapes from
/// the graph (which must be inferred). Used by constant folding and the reference backend.
std::vector<Tensor> evaluate_node(const Graph& g, const Node& n, std::span<const Tensor> inputs);

}  // namespace anvil
