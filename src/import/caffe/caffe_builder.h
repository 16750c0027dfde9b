// The Caffe graph builder: the state of one import (values per blob name, names in use,
// weights by layer name, problems) and the services converters use to emit nodes for a layer.
// Converters (layers_*.cpp) are free functions `void f(CaffeBuilder&, CaffeLayer&)`
// registered by Caffe layer type; the table is also the list of supported types.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "anvil/graph.h"
#include "anvil/import.h"
#include "import/caffe/caffe_net.h"
#include "import/common/problems.h"

namespace anvil::caffe_import {

// Thrown inside a layer's conversion; recorded as that layer's problem.
struct LayerError {
  std::string field, message;
};
[[noreturn]] inline void fail(const std::string& field, const std::string& message) {
  throw LayerError{field, message};
}

/// "(1, 2, 3)" (Python tuple style, "(4,)" for one value): how Caffe messages print shapes.
std::string dims_str(const std::vector<int64_t>& v);
/// A float as the shortest text that reads back the same float.
std::string fmt_float(float f);
/// Element count with overflow and negative-dimension checks (hostile files).
int64_t numel_of(const Shape& s);

/// One layer being converted.
struct CaffeLayer {
  const pb::LayerParameter* p = nullptr;
  const pb::LayerParameter* w = nullptr;  // where its blobs come from (or nullptr)
  std::string name, type;
  std::vector<int> in;                 // bottom values
  std::vector<Shape> shape;            // bottom shapes
  std::vector<std::string> top_names;  // canonical value name per top
  std::vector<int> tops;               // resulting top values
  bool node_named = false;             // the layer name has been given to a node
};

class CaffeBuilder;

/// Converts one layer: reads L.in / L.shape and the parameters, sets L.tops.
using LayerConverter = void (*)(CaffeBuilder& cb, CaffeLayer& L);

/// The converter of Caffe layer type `type`, or nullptr when the type is not supported.
LayerConverter find_converter(const std::string& type);

/// Adds rows to the converter table (one static object per converter file).
struct ConverterRegistrar {
  ConverterRegistrar(std::initializer_list<std::pair<const char*, LayerConverter>> rows);
};

/// The Caffe layer types the importer supports (the converter table's keys).
std::vector<std::string> supported_layer_types();

class CaffeBuilder {
 public:
  CaffeBuilder(const pb::NetParameter& def, const pb::NetParameter* weights, std::string file,
               const ImportOptions& opt)
      : def_(def), weights_net_(weights), file_(std::move(file)), opt_(opt) {}

  Graph build();

  // ---- for converters: graph helpers ----
  Graph& graph() { return g_; }
  const ImportOptions& options() const { return opt_; }
  /// Marks a value name as taken (for values a converter adds itself, e.g. graph inputs).
  void use_name(const std::string& n) { used_names_.insert(n); }
  std::string fresh(const std::string& base);
  Provenance prov(const std::string& source_name, int index) const;
  int add_node(CaffeLayer& L, const std::string& op, const std::vector<int>& ins, Attributes a,
               const std::vector<std::string>& out_names, const std::string& suffix);
  int emit(CaffeLayer& L, const std::string& op, const std::vector<int>& ins, Attributes a,
           const std::string& suffix);
  int emit_top(CaffeLayer& L, const std::string& op, const std::vector<int>& ins, Attributes a,
               size_t top = 0);
  int constant(CaffeLayer& L, const std::string& role, Tensor t);
  int scalar(CaffeLayer& L, const std::string& role, double v);
  int i64s(CaffeLayer& L, const std::string& role, const std::vector<int64_t>& v);
  const Shape& shape_of(int v) const { return g_.values[static_cast<size_t>(v)].shape; }
  int reduce(CaffeLayer& L, const std::string& op, int v, const std::vector<int64_t>& axes,
             bool keep, const std::string& suffix);
  int batch_normalize(CaffeLayer& L, int x, const std::vector<int64_t>& axes, double eps,
                      bool eps_outside_sqrt, bool subtract_mean_only, bool final_node);
  int broadcast_operand(CaffeLayer& L, int v, const Shape& s, int axis, int rank,
                        const std::string& role);

  // ---- blobs (weights) ----
  int blob_count(const CaffeLayer& L) const { return L.w ? L.w->blobs_size() : 0; }
  void expect_blobs(const CaffeLayer& L, int n) const;
  Tensor blob(const CaffeLayer& L, int i, const Shape& expected, const std::string& role) const;

  // ---- checks ----
  void expect_bottoms(const CaffeLayer& L, int lo, int hi) const;
  void expect_tops(const CaffeLayer& L, int lo, int hi) const;
  int canonical_axis(int64_t axis, int rank, const std::string& field) const;

 private:
  void add_net_inputs();
  void add_input_source_layers();
  void plan_top_names(CaffeLayer& L);
  bool bind_bottoms(CaffeLayer& L);
  void mark_failed(const CaffeLayer& L);
  void convert(CaffeLayer& L);
  void finish_layer(CaffeLayer& L);
  void throw_problems() const;

  const pb::NetParameter& def_;
  const pb::NetParameter* weights_net_;
  std::string file_;
  const ImportOptions& opt_;
  Graph g_;
  std::map<std::string, const pb::LayerParameter*> weights_;  // layer name -> blobs holder
  std::map<std::string, int> blobs_;                          // blob name -> current value
  std::set<std::string> failed_blobs_;
  std::set<std::string> used_names_;  // values and helper nodes
  std::set<std::string> node_names_;
  std::set<std::string> reserved_;  // planned top value names
  std::map<std::string, std::vector<const pb::LayerParameter*>> writers_;
  std::set<std::string> net_inputs_;
  imp::ProblemList problems_;
};

/// A layer type mapped by the user to a registered op (anvil::map_source_op): bottoms then
/// parameter blobs as inputs, tops as outputs, attributes filled by name from *_param fields.
void convert_mapped(CaffeBuilder& cb, CaffeLayer& L, const std::string& op);

/// One bottom in, one top out through `op` (the unary layers).
void convert_unary(CaffeBuilder& cb, CaffeLayer& L, const std::string& op, Attributes a = {});

}  // namespace anvil::caffe_import
