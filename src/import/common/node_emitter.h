// Emitting canonical nodes for one source node (layer, operator) at a time.
//
// Contract: begin() names the source node being converted (its op, recorded as
// Node::source_op, and a label used in errors). emit() adds a canonical node named by the
// importer's Namer (unique names are the importer's rule: TF "node#Op3", TFLite
// "out/Conv"), runs its shape rule at once and re-throws a shape error as anvil::Error naming
// the file, the source node (the label) and the field; every output is checked against the
// hostile-size cap (field "shape"). `after_emit`, when set, sees each node once its shapes are
// known (the TF importer folds small constant subgraphs there).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "anvil/graph.h"

namespace anvil::imp {

/// Elements a tensor read from or computed for a model may have (2^32).
constexpr int64_t kMaxElements = int64_t{1} << 32;

/// numel(s), throwing anvil::Error (field `field`) on a negative dimension or more than
/// `max` elements ("hostile tensor size").
int64_t checked_numel(const Shape& s, const std::string& field, int64_t max = kMaxElements);

class NodeEmitter {
 public:
  using Namer = std::function<std::string(const std::string& what)>;
  struct Options {
    bool op_in_errors = false;          // shape errors read "Conv: <message>"
    bool field_defaults_to_op = false;  // a shape error without a field names the op
  };

  NodeEmitter(Graph& g, Namer namer, Options o);

  /// The source node now being converted.
  void begin(std::string source_op, std::string label) {
    source_op_ = std::move(source_op);
    label_ = std::move(label);
  }
  const std::string& label() const { return label_; }
  const std::string& source_op() const { return source_op_; }
  Graph& graph() const { return g_; }

  /// Adds `op` over `ins` (-1: an absent optional input) and infers its shapes; returns the
  /// output value indices.
  std::vector<int> emit(const std::string& op, const std::vector<int>& ins, Attributes a = {},
                        int num_outputs = 1);
  int emit1(const std::string& op, const std::vector<int>& ins, Attributes a = {}) {
    return emit(op, ins, std::move(a), 1)[0];
  }
  /// A constant named by the Namer from `what`.
  int constant(const std::string& what, Tensor t);

  /// Throws anvil::Error(message, file, label, field).
  [[noreturn]] void fail(const std::string& field, const std::string& message) const;

  std::function<void(int node)> after_emit;

 private:
  Graph& g_;
  Namer namer_;
  Options opt_;
  std::string source_op_, label_;
};

}  // namespace anvil::imp
