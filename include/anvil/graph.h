// The framework-neutral graph: values (tensors) and nodes (ops), each with provenance.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "anvil/tensor.h"

namespace anvil {

/// Where a tensor comes from, in the source framework's own terms.
struct Provenance {
  std::string framework;    // "onnx", "keras", "caffe", "tensorflow", "tflite", "builder"
  std::string source_name;  // layer / node / blob / value name in the source
  int output_index = 0;     // which output of the source layer
  /// Permutation that turns the canonical tensor into the source framework's layout:
  /// source = transpose(canonical, to_source). Empty = same layout.
  std::vector<int> to_source;
  std::string source_layout;  // for display: "NHWC", "NCHW", "NWC", ...
};

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>,
                               std::vector<double>, std::vector<std::string>, Tensor>;

/// Named attributes of a node. Typed getters throw anvil::Error naming the attribute.
class Attributes {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  void erase(const std::string& name) { values_.erase(name); }

  int64_t get_int(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t dflt) const;
  double get_float(const std::string& name) const;  // accepts an int attribute too
  double get_float(const std::string& name, double dflt) const;
  std::string get_string(const std::string& name) const;
  std::string get_string(const std::string& name, const std::string& dflt) const;
  std::vector<int64_t> get_ints(const std::string& name) const;
  std::vector<int64_t> get_ints(const std::string& name, const std::vector<int64_t>& dflt) const;
  std::vector<double> get_floats(const std::string& name) const;
  std::vector<double> get_floats(const std::string& name, const std::vector<double>& dflt) const;
  std::vector<std::string> get_strings(const std::string& name) const;
  const Tensor& get_tensor(const std::string& name) const;

  const std::map<std::string, AttrValue>& all() const { return values_; }
  std::string to_string(const std::string& name) const;  // for summaries and errors

 private:
  const AttrValue& at(const std::string& name) const;
  std::map<std::string, AttrValue> values_;
};

/// A tensor of the graph: a graph input, a constant (weights), or a node output.
struct Value {
  std::string name;  // unique within the graph
  DType dtype = DType::f32;
  Shape shape;
  bool shape_known = false;
  Tensor constant;    // defined() for constants (initializers, folded values)
  int producer = -1;  // index of the producing node, -1 for inputs and constants
  Provenance prov;

  bool is_constant() const { return constant.defined(); }
};

/// One operation. Inputs/outputs are value indices; an omitted optional input is -1.
struct Node {
  std::string name;  // unique within the graph
  std::string op;    // canonical op name (see the op table, anvil/ops.h)
  std::vector<int> inputs;
  std::vector<int> outputs;
  Attributes attrs;
  std::string source_op;  // the source framework's layer/op type, for messages and summaries
  bool dead = false;      // marked by passes, removed by Graph::compact()
};

/// One layer of the source model as the source framework itself describes it (filled by the
/// Keras and Caffe importers, for summaries that match the framework's own, e.g. Keras's
/// model.summary()). Parameter counts are the framework's: the numbers it stores for the layer.
struct SourceLayer {
  std::string name;                  // layer name in the source
  std::string type;                  // layer class / type ("Conv2D", "Convolution", ...)
  std::vector<std::string> outputs;  // output tensor / top blob names in the source
  std::vector<Shape> output_shapes;  // per output, in the source layout; -1 = free dim (None)
  std::string shape_text;            // when not empty, shown instead (e.g. Keras's "multiple")
  int64_t trainable_params = 0;
  int64_t non_trainable_params = 0;
  /// Keras's "Connected to" column ("layer[node][tensor]" per inbound tensor), filled only
  /// for models Keras does not print as a plain chain.
  std::vector<std::string> connected_to;
};

/// A graph: values, nodes in topological order, graph inputs and outputs.
class Graph {
 public:
  std::string name;
  std::string framework;    // the source framework ("onnx", "keras", ...)
  std::string source_file;  // for messages
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;   // value indices fed at run time
  std::vector<int> outputs;  // value indices returned by default
  /// The source model's layers in the source's order (empty: no such record, e.g. ONNX).
  std::vector<SourceLayer> source_layers;
  /// Model-level facts importers record for tools, e.g. "image.channel_order" = "BGR"
  /// (Caffe), "caffe.transform.scale" (an input layer's transform_param). Free-form strings.
  std::map<std::string, std::string> metadata;

  /// Adds a graph input; returns the value index.
  int add_input(const std::string& name, DType dtype, const Shape& shape);
  /// Adds a constant (weights); returns the value index.
  int add_constant(const std::string& name, Tensor t);
  /// Adds a node with `num_outputs` new output values named `<name>` (one output) or
  /// `<name>:<i>`; returns the node index. Output names may be given explicitly.
  int add_node(const std::string& op, const std::string& name, const std::vector<int>& inputs,
               Attributes attrs = {}, int num_outputs = 1,
               const std::vector<std::string>& output_names = {});
  /// Adds an (unattached) value; returns its index.
  int add_value(const std::string& name);

  /// Value index by name, or -1.
  int find_value(const std::string& name) const;
  /// Value index by name, matching the canonical name or the provenance source name
  /// (with or without a ":0" suffix); -1 when not found.
  int find_value_by_any_name(const std::string& name) const;
  int find_node(const std::string& name) const;

  /// A name not yet used by any value or node, based on `base`.
  std::string unique_name(const std::string& base) const;

  /// Checks structure: indices in range, single producers, topological order, op known,
  /// attribute names known to the op. Throws anvil::Error naming the node.
  void validate() const;
  /// Re-sorts nodes topologically (stable); throws on cycles.
  void toposort();
  /// Runs each op's shape rule in order; folds nothing. Throws naming the node and field.
  /// Graphs whose shapes depend on computed constants (ONNX shape subgraphs) need
  /// passes::fold_constants instead, which infers and folds node by node.
  void infer_shapes();
  /// Runs the shape rule of one node (its inputs' shapes must be known).
  void infer_node(int index);
  /// Removes dead nodes and values no longer referenced; keeps inputs/outputs.
  void compact();

  /// Indices of the nodes consuming value v.
  std::vector<int> consumers(int v) const;
  /// Rebuilds Value::producer from the nodes.
  void relink();

 private:
  mutable std::map<std::string, int> name_index_;  // cache, rebuilt lazily
};

}  // namespace anvil
