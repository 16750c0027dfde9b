// The TensorFlow importer's per-node context, shared by the driver (tf_importer.cpp) and the
// converter files (tf_ops_*.cpp).
//
// A converter is one function `std::vector<TT>(TfBuilder&)` registered under its TF op name in
// the table that converters() returns; that table is also the list of supported ops. It reads
// the current NodeDef (b.n, its data inputs b.in as layout-tracking tensors, attributes through
// b.attr_*), emits canonical nodes with b.emit / b.emit1 (named "node#OpN", shapes inferred at
// once, small constant results evaluated at import) and returns one held tensor per TF output.
// Problems are reported with fail(field, message); the driver records them per node and
// throws once at the end.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "anvil/import.h"
#include "anvil/ops.h"
#include "core/onnx_dtype.h"
#include "core/strings.h"
#include "import/common/layout_tensor.h"
#include "import/common/node_emitter.h"
#include "import/common/problems.h"
#include "import/tensorflow/tf_convert.h"
#include "src/import/tensorflow/graph.pb.h"

namespace anvil::tf_import {

/// A TF tensor: canonical value `v`; TF's view of it is transpose(v, perm) (empty: same).
using TT = imp::LayoutTensor;
using imp::channels_last_perm;
using imp::inverse_perm;
using imp::is_identity_perm;

constexpr int64_t kMaxFoldElements = int64_t{1} << 20;  // evaluated at import when smaller
constexpr int64_t kMaxElements = imp::kMaxElements;     // hostile tensor sizes
constexpr int64_t kMaxFillBytes = int64_t{1} << 28;     // constants filled from one value

/// Throws the current node's problem (anvil::Error with `field`; the driver names the node).
[[noreturn]] void fail(const std::string& field, const std::string& message);
inline int64_t checked_numel(const Shape& s, const std::string& field) {
  return imp::checked_numel(s, field, kMaxElements);
}

bool dtype_from_tf(int tf, DType& out);
std::string tf_type_name(int tf);
/// TensorProto -> Tensor (tensor_content, or the typed *_val fields where fewer values than
/// elements repeat the last one).
Tensor tensor_from_proto(const anvil_tf::TensorProto& p, const std::string& field);

class TfBuilder {
 public:
  TfBuilder(const anvil_tf::GraphDef& gd, std::string file, const ImportOptions& opt);
  Graph build();
  /// A graph input: the shape given in ImportOptions::input_shapes or the graph's own.
  std::vector<TT> placeholder();

  // ---- the node being converted ----
  const anvil_tf::NodeDef* n = nullptr;
  std::vector<TT> in;                 // data inputs
  std::vector<std::string> in_names;  // as written in the NodeDef
  const ImportOptions& opt;
  Graph g;
  const std::string& op() const { return n->op(); }

  // ---- attributes ----
  const anvil_tf::AttrValue* attr(const std::string& name) const {
    auto it = n->attr().find(name);
    return it == n->attr().end() ? nullptr : &it->second;
  }
  /// Attribute `name` checked to hold `kind` (`what` names the kind in the error); nullptr
  /// when it is absent and the caller has a default, an error when absent without one.
  const anvil_tf::AttrValue* typed_attr(const std::string& name,
                                        anvil_tf::AttrValue::ValueCase kind, const char* what,
                                        bool has_default) const;
  int64_t attr_i(const std::string& name, std::optional<int64_t> dflt = std::nullopt) const;
  double attr_f(const std::string& name, std::optional<double> dflt = std::nullopt) const;
  bool attr_b(const std::string& name, bool dflt) const;
  std::string attr_s(const std::string& name, std::optional<std::string> dflt = std::nullopt) const;
  std::vector<int64_t> attr_ints(const std::string& name,
                                 std::optional<std::vector<int64_t>> dflt = std::nullopt) const;
  int attr_type(const std::string& name, std::optional<int> dflt = std::nullopt) const;
  DType attr_dtype(const std::string& name, std::optional<int> dflt = std::nullopt) const;

  // ---- values ----
  std::string helper_name(const std::string& what) {
    return n->name() + "#" + what + std::to_string(counter_++);
  }
  const Value& val(int v) const { return g.values[static_cast<size_t>(v)]; }
  const Shape& shape(int v) const { return val(v).shape; }
  int rank(int v) const { return static_cast<int>(shape(v).size()); }
  DType dtype(int v) const { return val(v).dtype; }
  Shape tf_shape(const TT& t) const { return imp::apply_perm(shape(t.v), t.perm); }
  /// The value's contents when known at import (a constant or computed from constants).
  const Tensor* const_of(int v) const;
  bool is_const(const TT& t) const { return const_of(t.v) != nullptr; }
  /// Input i's value in TF's layout, which must be known at import.
  Tensor const_input(size_t i, const std::string& what);
  std::vector<int64_t> const_ints(size_t i, const std::string& what);
  int64_t const_int(size_t i, const std::string& what);

  // ---- emission ----
  std::vector<int> emit(const std::string& op, const std::vector<int>& ins, Attributes a = {},
                        int num_outputs = 1) {
    return emitter_.emit(op, ins, std::move(a), num_outputs);
  }
  int emit1(const std::string& op, const std::vector<int>& ins, Attributes a = {}) {
    return emitter_.emit1(op, ins, std::move(a));
  }
  int cst(Tensor t) { return emitter_.constant("c", std::move(t)); }
  int i64s(const std::vector<int64_t>& v) {
    return cst(Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
  }
  int scalar(DType dt, double x);
  int cast(int v, DType to);
  int reshape(int v, const Shape& s);

  // ---- layouts ----
  /// A value equal to transpose(TF view of t, q).
  int view(const TT& t, const std::vector<int>& q) { return views_.view(t, q); }
  /// The value in TF's own layout.
  int src(const TT& t) { return views_.source(t); }
  /// Channels-first canonical order (N, C, spatial...) of a tensor with this data format.
  int cf(const TT& t, bool channels_last) { return views_.channels_first(t, channels_last); }
  TT cf_out(int v, bool channels_last) {
    return imp::LayoutViews::channels_first_result(v, rank(v), channels_last);
  }
  static int canon_axis(const TT& t, int tf_axis) {
    return imp::LayoutViews::canon_axis(t, tf_axis);
  }
  /// TF axis (negative counts from the back) of a rank-r tensor, checked.
  int axis_of(int64_t axis, int r, const std::string& field) const;
  /// perm of a result that keeps the TF axes `kept` (in TF order) of t, dropping the others.
  std::vector<int> reduced_perm(const TT& t, const std::vector<int>& kept) const;
  /// Brings t to rank r with perm P (TF broadcasting: leading 1s).
  int align(const TT& t, const std::vector<int>& P, int r);
  /// Elementwise op over inputs with TF broadcasting, computed in the layout of the first
  /// non-constant highest-rank operand.
  TT elementwise(const std::string& op, const std::vector<TT>& xs, Attributes a = {});
  TT unary(const std::string& op, const TT& x, Attributes a = {}) {
    return TT{emit1(op, {x.v}, std::move(a)), x.perm};
  }
  void need_inputs(size_t lo, size_t hi) const;
  bool channels_last_format(const std::string& dflt = "NHWC") const;

 private:
  void fold(int node);
  bool gather_inputs();
  std::vector<TT> convert();
  void bind(const std::vector<TT>& outs);
  void record(const std::string& field, const std::string& reason);
  void add_source_layers(const std::vector<int>& order);
  void add_default_outputs(const std::vector<int>& order, const std::set<std::string>& consumed);

  const anvil_tf::GraphDef& gd_;
  std::string file_;
  imp::NodeEmitter emitter_;
  imp::LayoutViews views_;
  size_t first_value_ = 0, first_node_ = 0;
  std::map<std::string, TT> tensors_;     // TF tensor key -> held tensor
  std::map<std::string, int> producers_;  // TF node name -> index in gd_
  std::set<std::string> failed_;          // TF nodes that failed or depend on one
  std::set<int> bound_;                   // values already carrying a TF name
  std::set<size_t> named_nodes_;          // nodes already renamed after a TF node
  std::map<int, Tensor> known_;           // values computed at import
  imp::ProblemList problems_;
  int64_t counter_ = 0;
};

/// The converters: {TF op name -> function}. Each tf_ops_*.cpp adds its family; the table is
/// also the answer to "is this op supported".
using Converter = std::function<std::vector<TT>(TfBuilder&)>;
using ConverterTable = std::map<std::string, Converter>;
void add_nn_converters(ConverterTable& t);       // tf_ops_nn.cpp
void add_math_converters(ConverterTable& t);     // tf_ops_math.cpp
void add_shape_converters(ConverterTable& t);    // tf_ops_shape.cpp
void add_slice_converters(ConverterTable& t);    // tf_ops_slice.cpp
void add_image_converters(ConverterTable& t);    // tf_ops_image.cpp
void add_3d_converters(ConverterTable& t);       // tf_ops_3d.cpp
void add_extra_converters(ConverterTable& t);    // tf_ops_extra.cpp
void add_array_converters(ConverterTable& t);    // tf_ops_array.cpp
void add_imgproc_converters(ConverterTable& t);  // tf_ops_imgproc.cpp
void add_misc_converters(ConverterTable& t);     // tf_ops_misc.cpp
const ConverterTable& converters();

/// A TF reduction (Sum, Max, Prod, ...: input 1 the reduction_indices, attr keep_dims) as the
/// canonical `op`; `as_bool` (All/Any) reduces the bool input as int32 0/1 and casts back.
std::vector<TT> reduce(TfBuilder& b, const std::string& op, bool as_bool = false);  // tf_ops_math

}  // namespace anvil::tf_import
