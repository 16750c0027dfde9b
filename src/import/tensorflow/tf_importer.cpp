// The TensorFlow importer: a frozen GraphDef (.pb binary or .pbtxt text) -> anvil::Graph.
//
// Files: one GraphDef, read with our own proto subset (graph.proto, package anvil_tf). The
// format is recognised by content: a binary or text GraphDef whose nodes all have a valid
// name and op.
//
// Layout. TF graphs are NHWC (data_format may say NCHW per op). Canonical ops are NCHW, so
// every TF tensor is held as (canonical value, perm): TF's view of it is
// transpose(value, perm). Layout-sensitive ops (Conv2D, pools, FusedBatchNorm, Resize*,
// DepthToSpace, LRN, ...) read their input channels-first (a Transpose is inserted only when
// the held value is not already in that order) and leave a channels-first result with perm
// NHWC. Elementwise ops, reductions, Softmax, Concat, Split, Slice, Pad, Tile, Cast work on
// the held layout (axes and constants are mapped through perm), so chains of them add no
// Transposes. Ops whose meaning depends on element order (Reshape, Squeeze, ExpandDims,
// StridedSlice, Pack, Gather, MatMul, ...) first bring the value back to TF's own layout: a
// Reshape of NHWC data keeps TF's element order. TF's Transpose only changes perm.
//
// Names. Every TF tensor gets its own canonical value named as TF names it ("node" for output
// 0, "node:i" for output i) with Provenance {framework "tensorflow", source_name that name,
// output_index i, to_source perm}, so any node can be fetched (Session::run, anvil run
// --output NODE[:i]) and comes back in TF's layout. Helper values and nodes carry '#' in their
// names, which TF node names cannot contain. Default outputs are the graph's sinks: nodes
// whose outputs no node reads (Const, NoOp, Placeholder and the like excepted).
//
// Shape-only subgraphs (Shape -> StridedSlice -> Pack -> Reshape, Rank -> Range, ...) are
// evaluated at import with the reference kernels (shapes are static), so parameters that TF
// computes at run time become constants of the canonical ops.
//
// Unsupported ops and node problems are collected and reported together in one anvil::Error
// naming each node (and the attribute or input at fault).
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "import/tensorflow/tf_convert.h"
#include "import/topo_order.h"
#include "src/import/tensorflow/graph.pb.h"

namespace anvil::tf_import {
namespace {

using anvil::tf::channels_last_perm;
using anvil::tf::inverse_perm;
using anvil::tf::is_identity_perm;

constexpr int64_t kMaxFoldElements = int64_t{1} << 20;   // evaluated at import when smaller
constexpr int64_t kMaxElements = int64_t{1} << 32;       // hostile tensor sizes
constexpr int64_t kMaxFillBytes = int64_t{1} << 28;      // constants filled from one value
constexpr size_t kMaxFileBytes = size_t{2047} << 20;

struct Problem {
  std::string op, node, field, reason;
};

// Thrown inside one node's conversion; recorded as that node's problem.
struct NodeError {
  std::string field, message;
};
[[noreturn]] void fail(const std::string& field, const std::string& message) {
  throw NodeError{field, message};
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// ------------------------------------------------------------------------------ dtypes

bool dtype_from_tf(int tf, DType& out) {
  switch (tf) {
    case anvil_tf::DT_FLOAT: out = DType::f32; return true;
    case anvil_tf::DT_DOUBLE: out = DType::f64; return true;
    case anvil_tf::DT_HALF: out = DType::f16; return true;
    case anvil_tf::DT_BFLOAT16: out = DType::bf16; return true;
    case anvil_tf::DT_INT8: out = DType::i8; return true;
    case anvil_tf::DT_UINT8: out = DType::u8; return true;
    case anvil_tf::DT_INT16: out = DType::i16; return true;
    case anvil_tf::DT_INT32: out = DType::i32; return true;
    case anvil_tf::DT_INT64: out = DType::i64; return true;
    case anvil_tf::DT_BOOL: out = DType::boolean; return true;
    default: return false;
  }
}

std::string tf_type_name(int tf) {
  if (anvil_tf::DataType_IsValid(tf)) return anvil_tf::DataType_Name(static_cast<anvil_tf::DataType>(tf));
  return "type code " + std::to_string(tf);
}

int64_t onnx_code(DType t) {
  switch (t) {
    case DType::f32: return 1;
    case DType::u8: return 2;
    case DType::i8: return 3;
    case DType::i16: return 5;
    case DType::i32: return 6;
    case DType::i64: return 7;
    case DType::boolean: return 9;
    case DType::f16: return 10;
    case DType::f64: return 11;
    case DType::bf16: return 16;
  }
  return 0;
}

int64_t checked_numel(const Shape& s, const std::string& field) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail(field, "negative dimension in " + shape_str(s));
    if (d != 0 && n > kMaxElements / d) fail(field, "hostile tensor size " + shape_str(s));
    n *= d;
  }
  return n;
}

// TensorProto -> Tensor: tensor_content (raw little-endian bytes) or the typed *_val fields,
// where fewer values than elements repeat the last one (TF's rule; one value fills all).
Tensor tensor_from_proto(const anvil_tf::TensorProto& p, const std::string& field) {
  DType dt;
  if (!dtype_from_tf(p.dtype(), dt))
    fail(field, "tensor of dtype " + tf_type_name(p.dtype()) + " is not supported");
  if (p.tensor_shape().unknown_rank()) fail(field, "tensor with unknown rank");
  Shape shape;
  for (const auto& d : p.tensor_shape().dim()) {
    if (d.size() < 0) fail(field, "tensor with an unknown dimension (" + std::to_string(d.size()) + ")");
    shape.push_back(d.size());
  }
  const int64_t n = checked_numel(shape, field);
  const size_t esz = dtype_size(dt);
  if (!p.tensor_content().empty()) {
    if (p.tensor_content().size() != static_cast<size_t>(n) * esz)
      fail(field, "tensor_content has " + std::to_string(p.tensor_content().size()) +
                      " bytes, shape " + shape_str(shape) + " of " + dtype_name(dt) + " needs " +
                      std::to_string(static_cast<size_t>(n) * esz));
    return Tensor::from_bytes(dt, shape, p.tensor_content().data());
  }
  if (n * static_cast<int64_t>(esz) > kMaxFillBytes)
    fail(field, "constant " + shape_str(shape) + " filled from a value list is too large");
  Tensor t(dt, shape);
  auto fill = [&](auto&& vals, int64_t count, auto&& put) {
    if (count > n)
      fail(field, std::to_string(count) + " values for a tensor of " + std::to_string(n) +
                      " elements " + shape_str(shape));
    if (count == 0) return;  // zeros
    for (int64_t i = 0; i < n; ++i) put(i, vals(std::min(i, count - 1)));
  };
  switch (dt) {
    case DType::f32: {
      float* d = t.data<float>();
      fill([&](int64_t i) { return p.float_val(static_cast<int>(i)); }, p.float_val_size(),
           [&](int64_t i, float v) { d[i] = v; });
      break;
    }
    case DType::f64: {
      double* d = t.data<double>();
      fill([&](int64_t i) { return p.double_val(static_cast<int>(i)); }, p.double_val_size(),
           [&](int64_t i, double v) { d[i] = v; });
      break;
    }
    case DType::f16:
    case DType::bf16: {
      uint16_t* d = static_cast<uint16_t*>(t.raw());
      fill([&](int64_t i) { return p.half_val(static_cast<int>(i)); }, p.half_val_size(),
           [&](int64_t i, int32_t v) { d[i] = static_cast<uint16_t>(v); });
      break;
    }
    case DType::i64: {
      int64_t* d = t.data<int64_t>();
      fill([&](int64_t i) { return p.int64_val(static_cast<int>(i)); }, p.int64_val_size(),
           [&](int64_t i, int64_t v) { d[i] = v; });
      break;
    }
    case DType::boolean: {
      fill([&](int64_t i) { return p.bool_val(static_cast<int>(i)); }, p.bool_val_size(),
           [&](int64_t i, bool v) { t.set(i, v ? 1.0 : 0.0); });
      break;
    }
    default: {  // i32, i16, i8, u8: int_val
      fill([&](int64_t i) { return p.int_val(static_cast<int>(i)); }, p.int_val_size(),
           [&](int64_t i, int32_t v) { t.set(i, static_cast<double>(v)); });
      break;
    }
  }
  return t;
}

// ------------------------------------------------------------------------------ names

bool valid_node_name(const std::string& s) {
  if (s.empty()) return false;
  auto ok_first = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_'; };
  auto ok = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
           c == '-' || c == '>';
  };
  if (!ok_first(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), ok);
}

bool valid_op_name(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string tensor_key(const std::string& node, int i) {
  return i == 0 ? node : node + ":" + std::to_string(i);
}

// "node", "node:i", "^node" -> (node, index, control)
struct InputRef {
  std::string node;
  int index = 0;
  bool control = false;
};
bool parse_input(const std::string& s, InputRef& r) {
  std::string t = s;
  if (!t.empty() && t[0] == '^') {
    r.control = true;
    t = t.substr(1);
  }
  auto colon = t.rfind(':');
  if (colon != std::string::npos) {
    std::string tail = t.substr(colon + 1);
    if (tail.empty() || tail.size() > 6 || !std::all_of(tail.begin(), tail.end(), ::isdigit)) return false;
    r.index = std::stoi(tail);
    t = t.substr(0, colon);
  }
  r.node = t;
  return !t.empty();
}

// ------------------------------------------------------------------------------ the builder

/// A TF tensor: canonical value `v`; TF's view of it is transpose(v, perm) (empty: same).
struct TT {
  int v = -1;
  std::vector<int> perm;
};

class TfBuilder {
 public:
  TfBuilder(const anvil_tf::GraphDef& gd, std::string file, const ImportOptions& opt)
      : gd_(gd), file_(std::move(file)), opt_(opt) {}
  Graph build();

 private:
  // ---- per-node state ----
  const anvil_tf::NodeDef* n_ = nullptr;
  std::vector<TT> in_;                 // data inputs
  std::vector<std::string> in_names_;  // as written in the NodeDef
  size_t first_value_ = 0, first_node_ = 0;

  // ---- attributes ----
  const anvil_tf::AttrValue* attr(const std::string& name) const {
    auto it = n_->attr().find(name);
    return it == n_->attr().end() ? nullptr : &it->second;
  }
  /// Attribute `name` checked to hold `kind` (`what` names the kind in the error); nullptr
  /// when it is absent and the caller has a default, an error when absent without one.
  const anvil_tf::AttrValue* typed_attr(const std::string& name, anvil_tf::AttrValue::ValueCase kind,
                                        const char* what, bool has_default) const {
    const auto* a = attr(name);
    if (!a) {
      if (has_default) return nullptr;
      fail(name, "attribute '" + name + "' is missing");
    }
    if (a->value_case() != kind) fail(name, "attribute '" + name + "' is not " + what);
    return a;
  }
  int64_t attr_i(const std::string& name, std::optional<int64_t> dflt = std::nullopt) const {
    const auto* a = typed_attr(name, anvil_tf::AttrValue::kI, "an int", dflt.has_value());
    return a ? a->i() : *dflt;
  }
  double attr_f(const std::string& name, std::optional<double> dflt = std::nullopt) const {
    const auto* a = typed_attr(name, anvil_tf::AttrValue::kF, "a float", dflt.has_value());
    return a ? static_cast<double>(a->f()) : *dflt;
  }
  bool attr_b(const std::string& name, bool dflt) const {
    const auto* a = typed_attr(name, anvil_tf::AttrValue::kB, "a bool", true);
    return a ? a->b() : dflt;
  }
  std::string attr_s(const std::string& name, std::optional<std::string> dflt = std::nullopt) const {
    const auto* a = typed_attr(name, anvil_tf::AttrValue::kS, "a string", dflt.has_value());
    return a ? a->s() : *dflt;
  }
  std::vector<int64_t> attr_ints(const std::string& name,
                                 std::optional<std::vector<int64_t>> dflt = std::nullopt) const {
    const auto* a = typed_attr(name, anvil_tf::AttrValue::kList, "a list", dflt.has_value());
    return a ? std::vector<int64_t>(a->list().i().begin(), a->list().i().end()) : *dflt;
  }
  int attr_type(const std::string& name, std::optional<int> dflt = std::nullopt) const {
    const auto* a = typed_attr(name, anvil_tf::AttrValue::kType, "a type", dflt.has_value());
    return a ? a->type() : *dflt;
  }
  DType attr_dtype(const std::string& name, std::optional<int> dflt = std::nullopt) const {
    int t = attr_type(name, dflt);
    DType d;
    if (!dtype_from_tf(t, d)) fail(name, "dtype " + tf_type_name(t) + " is not supported");
    return d;
  }

  // ---- graph helpers ----
  std::string helper_name(const std::string& what) {
    return n_->name() + "#" + what + std::to_string(counter_++);
  }
  const Value& val(int v) const { return g_.values[static_cast<size_t>(v)]; }
  const Shape& shape(int v) const { return val(v).shape; }
  int rank(int v) const { return static_cast<int>(shape(v).size()); }
  DType dtype(int v) const { return val(v).dtype; }
  Shape tf_shape(const TT& t) const {
    const Shape& s = shape(t.v);
    if (t.perm.empty()) return s;
    Shape r(s.size());
    for (size_t i = 0; i < s.size(); ++i) r[i] = s[static_cast<size_t>(t.perm[i])];
    return r;
  }
  const Tensor* const_of(int v) const {
    if (v < 0) return nullptr;
    if (val(v).is_constant()) return &val(v).constant;
    auto it = known_.find(v);
    return it == known_.end() ? nullptr : &it->second;
  }
  /// Input i's value in TF's layout, which must be known at import.
  Tensor const_input(size_t i, const std::string& what) {
    if (i >= in_.size()) fail(what, "input " + std::to_string(i) + " (" + what + ") is missing");
    const Tensor* t = const_of(in_[i].v);
    if (!t)
      fail(what, "input " + std::to_string(i) + " '" + in_names_[i] + "' (" + what +
                     ") must be a constant or computed from constants");
    if (in_[i].perm.empty() || is_identity_perm(in_[i].perm)) return *t;
    return transpose(*t, in_[i].perm);
  }
  std::vector<int64_t> const_ints(size_t i, const std::string& what) {
    Tensor t = const_input(i, what);
    if (!is_integer(t.dtype())) fail(what, "input '" + what + "' must be integer, found " + dtype_name(t.dtype()));
    return t.to_int64s();
  }
  int64_t const_int(size_t i, const std::string& what) {
    auto v = const_ints(i, what);
    if (v.size() != 1) fail(what, "input '" + what + "' must be a single integer, found " + ints_str(v));
    return v[0];
  }

  std::vector<int> emit(const std::string& op, const std::vector<int>& ins, Attributes a = {},
                        int num_outputs = 1);
  int emit1(const std::string& op, const std::vector<int>& ins, Attributes a = {}) {
    return emit(op, ins, std::move(a), 1)[0];
  }
  int cst(Tensor t) { return g_.add_constant(helper_name("c"), std::move(t)); }
  int i64s(const std::vector<int64_t>& v) {
    return cst(Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
  }
  int scalar(DType dt, double x) {
    Tensor t(dt, Shape{});
    t.set(0, x);
    return cst(t);
  }

  /// A value equal to transpose(TF view of t, q).
  int view(const TT& t, const std::vector<int>& q) {
    std::vector<int> c(q.size());
    for (size_t i = 0; i < q.size(); ++i) c[i] = t.perm.empty() ? q[i] : t.perm[static_cast<size_t>(q[i])];
    if (is_identity_perm(c)) return t.v;
    auto key = std::make_pair(t.v, c);
    if (auto it = view_cache_.find(key); it != view_cache_.end()) return it->second;
    Attributes a;
    a.set("perm", std::vector<int64_t>(c.begin(), c.end()));
    int v = emit1("Transpose", {t.v}, a);
    view_cache_[key] = v;
    return v;
  }
  int src(const TT& t) {
    std::vector<int> id(static_cast<size_t>(rank(t.v)));
    std::iota(id.begin(), id.end(), 0);
    return view(t, id);
  }
  /// Channels-first canonical order (N, C, spatial...) of a tensor with this data format.
  int cf(const TT& t, bool channels_last) {
    if (!channels_last) return src(t);
    return view(t, inverse_perm(channels_last_perm(rank(t.v))));
  }
  TT cf_out(int v, bool channels_last) {
    TT t{v, {}};
    if (channels_last && rank(v) >= 3) t.perm = channels_last_perm(rank(v));
    return t;
  }
  int reshape(int v, const Shape& s) {
    if (shape(v) == s) return v;
    Attributes a;
    if (std::find(s.begin(), s.end(), 0) != s.end()) a.set("allowzero", int64_t{1});
    return emit1("Reshape", {v, i64s(s)}, a);
  }
  /// TF axis (negative counts from the back) of a rank-r tensor, checked.
  int axis_of(int64_t axis, int r, const std::string& field) {
    if (axis < -r || axis >= std::max(r, 1)) fail(field, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(r));
    return static_cast<int>(axis < 0 ? axis + r : axis);
  }
  static int canon_axis(const TT& t, int tf_axis) {
    return t.perm.empty() ? tf_axis : t.perm[static_cast<size_t>(tf_axis)];
  }
  /// perm of a result that keeps the TF axes `kept` (in TF order) of t, dropping the others.
  std::vector<int> reduced_perm(const TT& t, const std::vector<int>& kept) const {
    if (t.perm.empty()) return {};
    std::vector<int> ca;
    for (int k : kept) ca.push_back(t.perm[static_cast<size_t>(k)]);
    std::vector<int> sorted = ca;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int> p;
    for (int c : ca) p.push_back(static_cast<int>(std::find(sorted.begin(), sorted.end(), c) - sorted.begin()));
    return is_identity_perm(p) ? std::vector<int>{} : p;
  }
  /// Brings t to rank r with perm P (TF broadcasting: leading 1s).
  int align(const TT& t, const std::vector<int>& P, int r) {
    const int rt = rank(t.v);
    const std::vector<int>& tp = t.perm;
    bool same = rt == r && (tp == P || (tp.empty() && is_identity_perm(P)) || (P.empty() && is_identity_perm(tp)));
    if (same || rt == 0) return t.v;
    int s = src(t);
    if (rt < r) {
      Shape ns(static_cast<size_t>(r - rt), 1);
      for (int64_t d : shape(s)) ns.push_back(d);
      s = reshape(s, ns);
    }
    if (P.empty() || is_identity_perm(P)) return s;
    return view(TT{s, {}}, inverse_perm(P));
  }
  bool is_const(const TT& t) const { return const_of(t.v) != nullptr; }
  /// Elementwise op over inputs with TF broadcasting, computed in the layout of the first
  /// non-constant highest-rank operand.
  TT elementwise(const std::string& op, const std::vector<TT>& xs, Attributes a = {}) {
    int r = 0;
    for (const auto& x : xs) r = std::max(r, rank(x.v));
    std::vector<int> P;
    bool chosen = false;
    for (int pass = 0; pass < 2 && !chosen; ++pass)
      for (const auto& x : xs)
        if (rank(x.v) == r && (pass == 1 || !is_const(x))) {
          P = x.perm;
          chosen = true;
          break;
        }
    std::vector<int> ins;
    for (const auto& x : xs) ins.push_back(align(x, P, r));
    return TT{emit1(op, ins, std::move(a)), P};
  }
  TT unary(const std::string& op, const TT& x, Attributes a = {}) {
    return TT{emit1(op, {x.v}, std::move(a)), x.perm};
  }
  void need_inputs(size_t lo, size_t hi) const {
    if (in_.size() < lo || in_.size() > hi)
      fail("input", std::to_string(in_.size()) + " inputs, " + n_->op() + " takes " +
                        (lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi)));
  }
  bool channels_last_format(const std::string& dflt = "NHWC") const {
    std::string df = attr_s("data_format", dflt);
    if (df == "NHWC" || df == "NWC" || df == "NDHWC") return true;
    if (df == "NCHW" || df == "NCW" || df == "NCDHW") return false;
    fail("data_format", "unknown data_format '" + df + "'");
  }

  // ---- conversion ----
  std::vector<TT> convert();
  void bind(const std::vector<TT>& outs);
  std::vector<TT> conv2d(bool depthwise);
  std::vector<TT> conv2d_backprop_input();
  std::vector<TT> pool(bool max);
  std::vector<TT> fused_batch_norm();
  std::vector<TT> reduce(const std::string& op);
  std::vector<TT> softmax(const std::string& op);
  std::vector<TT> concat(bool v2);
  std::vector<TT> pad(const std::string& mode);
  std::vector<TT> strided_slice();
  std::vector<TT> slice();
  std::vector<TT> split(bool v);
  std::vector<TT> matmul(bool batch);
  std::vector<TT> resize(bool bilinear);
  std::vector<TT> space_to_batch(bool to_batch);
  std::vector<TT> placeholder();
  int symmetric_pad(int v, const std::vector<int64_t>& pads);

  const anvil_tf::GraphDef& gd_;
  std::string file_;
  const ImportOptions& opt_;
  Graph g_;
  std::map<std::string, TT> tensors_;      // TF tensor key -> held tensor
  std::map<std::string, int> producers_;   // TF node name -> index in gd_
  std::set<std::string> failed_;           // TF nodes that failed or depend on one
  std::set<int> bound_;                    // values already carrying a TF name
  std::set<size_t> named_nodes_;           // nodes already renamed after a TF node
  std::map<int, Tensor> known_;            // values computed at import
  std::map<std::pair<int, std::vector<int>>, int> view_cache_;
  std::vector<Problem> problems_;
  std::set<std::string> placeholders_;
  int64_t counter_ = 0;
};

std::vector<int> TfBuilder::emit(const std::string& op, const std::vector<int>& ins, Attributes a,
                                 int num_outputs) {
  std::string nm = helper_name(op);
  std::vector<std::string> outs;
  for (int i = 0; i < num_outputs; ++i) outs.push_back(num_outputs == 1 ? nm : nm + ":" + std::to_string(i));
  int ni = g_.add_node(op, nm, ins, std::move(a), num_outputs, outs);
  Node& node = g_.nodes[static_cast<size_t>(ni)];
  node.source_op = n_->op();
  try {
    g_.infer_node(ni);
  } catch (const Error& e) {
    fail(e.field().empty() ? op : e.field(), op + ": " + e.message());
  }
  std::vector<int> res = g_.nodes[static_cast<size_t>(ni)].outputs;
  int64_t total = 0;
  for (int o : res) total += checked_numel(shape(o), "shape");
  // Evaluate at import when every input is known and the result is small.
  const OpDef* def = OpRegistry::global().find(op);
  if (def && def->foldable && total <= kMaxFoldElements) {
    std::vector<Tensor> vals;
    bool all = true;
    for (int i : ins) {
      if (i < 0) {
        vals.emplace_back();
        continue;
      }
      const Tensor* t = const_of(i);
      if (!t) {
        all = false;
        break;
      }
      vals.push_back(*t);
    }
    if (all) {
      try {
        auto r = evaluate_node(g_, g_.nodes[static_cast<size_t>(ni)], vals);
        for (size_t k = 0; k < res.size() && k < r.size(); ++k) known_[res[k]] = r[k];
      } catch (const Error&) {
        // not evaluable here; the session reports it when it runs the node
      }
    }
  }
  return res;
}

// Gives each TF output its own value named after the TF tensor, with TF provenance.
void TfBuilder::bind(const std::vector<TT>& outs) {
  for (size_t i = 0; i < outs.size(); ++i) {
    TT t = outs[i];
    if (t.v < 0) continue;
    if (!t.perm.empty() && is_identity_perm(t.perm)) t.perm.clear();
    const std::string key = tensor_key(n_->name(), static_cast<int>(i));
    const bool fresh = static_cast<size_t>(t.v) >= first_value_ && !bound_.count(t.v);
    // Cached views may be reused by later nodes; they keep working under the TF name.
    if (fresh) {
      g_.values[static_cast<size_t>(t.v)].name = key;
      int p = val(t.v).producer;
      if (p >= 0 && static_cast<size_t>(p) >= first_node_ && !named_nodes_.count(static_cast<size_t>(p)) &&
          g_.nodes[static_cast<size_t>(p)].outputs.size() == 1) {
        bool taken = false;
        for (size_t k : named_nodes_) taken |= g_.nodes[k].name == n_->name();
        if (!taken) {
          g_.nodes[static_cast<size_t>(p)].name = n_->name();
          named_nodes_.insert(static_cast<size_t>(p));
        }
      }
    } else {
      bool taken = false;
      for (size_t k : named_nodes_) taken |= g_.nodes[k].name == n_->name();
      std::string nn = taken ? helper_name("Identity") : n_->name();
      int ni = g_.add_node("Identity", nn, {t.v}, {}, 1, {key});
      g_.nodes[static_cast<size_t>(ni)].source_op = n_->op();
      g_.infer_node(ni);
      if (!taken) named_nodes_.insert(static_cast<size_t>(ni));
      if (const Tensor* c = const_of(t.v)) known_[g_.nodes[static_cast<size_t>(ni)].outputs[0]] = *c;
      t.v = g_.nodes[static_cast<size_t>(ni)].outputs[0];
    }
    Value& v = g_.values[static_cast<size_t>(t.v)];
    v.prov.framework = "tensorflow";
    v.prov.source_name = key;  // "node" or "node:i", as TF names tensors
    v.prov.output_index = static_cast<int>(i);
    v.prov.to_source.assign(t.perm.begin(), t.perm.end());
    v.prov.source_layout.clear();
    const int r = static_cast<int>(t.perm.size());
    if (r >= 3 && t.perm == channels_last_perm(r)) v.prov.source_layout = r == 3 ? "NWC" : r == 4 ? "NHWC" : "NDHWC";
    bound_.insert(t.v);
    tensors_[key] = t;
  }
}

// ------------------------------------------------------------------------------ ops

std::vector<TT> TfBuilder::placeholder() {
  const std::string& name = n_->name();
  DType dt = attr_dtype("dtype");
  Shape s;
  auto given = opt_.input_shapes.find(name);
  const auto* sh = attr("shape");
  if (given != opt_.input_shapes.end()) {
    s = given->second;
    if (sh && sh->value_case() == anvil_tf::AttrValue::kShape && !sh->shape().unknown_rank() &&
        sh->shape().dim_size() != static_cast<int>(s.size()))
      fail("shape", "the placeholder has rank " + std::to_string(sh->shape().dim_size()) +
                        ", the shape given is " + shape_str(s));
  } else {
    if (!sh || sh->value_case() != anvil_tf::AttrValue::kShape || sh->shape().unknown_rank())
      fail("shape", "placeholder '" + name + "' has no shape (unknown rank) in the graph; give one in ImportOptions::input_shapes");
    for (const auto& d : sh->shape().dim()) {
      if (d.size() < -1) fail("shape", "bad dimension " + std::to_string(d.size()));
      s.push_back(d.size() == -1 ? opt_.default_dim : d.size());
    }
  }
  checked_numel(s, "shape");
  int v = g_.add_input(name, dt, s);
  placeholders_.insert(name);
  return {TT{v, {}}};
}

std::vector<TT> TfBuilder::conv2d(bool depthwise) {
  need_inputs(2, 2);
  const bool cl = channels_last_format();
  const TT& x = in_[0];
  const TT& w = in_[1];
  Shape xs = tf_shape(x), ws = tf_shape(w);
  if (xs.size() != 4) fail("input", "input must be 4-D, found " + shape_str(xs));
  if (ws.size() != 4) fail("filter", "filter must be 4-D (kh, kw, in, out), found " + shape_str(ws));
  const int hi = cl ? 1 : 2, wi = cl ? 2 : 3, ci = cl ? 3 : 1;
  auto strides = attr_ints("strides");
  auto dil = attr_ints("dilations", std::vector<int64_t>{1, 1, 1, 1});
  if (strides.size() != 4) fail("strides", "strides must have 4 values, found " + ints_str(strides));
  if (dil.size() != 4) fail("dilations", "dilations must have 4 values, found " + ints_str(dil));
  if (strides[0] != 1 || strides[static_cast<size_t>(ci)] != 1)
    fail("strides", "strides in the batch and depth dimensions must be 1, found " + ints_str(strides));
  if (dil[0] != 1 || dil[static_cast<size_t>(ci)] != 1)
    fail("dilations", "dilations in the batch and depth dimensions must be 1, found " + ints_str(dil));
  const int64_t C = xs[static_cast<size_t>(ci)];
  const int64_t kh = ws[0], kw = ws[1];
  int64_t group = 1;
  int wv;
  if (depthwise) {
    if (ws[2] != C) fail("filter", "depthwise filter " + shape_str(ws) + " does not match " + std::to_string(C) + " input channels");
    // (kh, kw, C, M) -> (C, M, kh, kw) -> (C*M, 1, kh, kw): output channel c*M + m, TF's order
    int t = view(w, {2, 3, 0, 1});
    wv = reshape(t, {ws[2] * ws[3], 1, kh, kw});
    group = C;
  } else {
    if (ws[2] < 1 || C % ws[2] != 0)
      fail("filter", "filter " + shape_str(ws) + " does not fit " + std::to_string(C) + " input channels");
    group = C / ws[2];
    if (ws[3] % group != 0) fail("filter", "output channels " + std::to_string(ws[3]) + " not divisible by the group count " + std::to_string(group));
    wv = view(w, {3, 2, 0, 1});  // HWIO -> OIHW
  }
  const int64_t sh = strides[static_cast<size_t>(hi)], sw = strides[static_cast<size_t>(wi)];
  const int64_t dh = dil[static_cast<size_t>(hi)], dw = dil[static_cast<size_t>(wi)];
  std::string padding = attr_s("padding");
  std::vector<int64_t> pads;
  try {
    if (padding == "SAME") {
      auto ph = tf::same_pads(xs[static_cast<size_t>(hi)], kh, sh, dh);
      auto pw = tf::same_pads(xs[static_cast<size_t>(wi)], kw, sw, dw);
      pads = {ph.begin, pw.begin, ph.end, pw.end};
    } else if (padding == "VALID") {
      pads = {0, 0, 0, 0};
    } else if (padding == "EXPLICIT") {
      auto ep = attr_ints("explicit_paddings");
      if (ep.size() != 8) fail("explicit_paddings", "explicit_paddings must have 8 values, found " + ints_str(ep));
      for (int64_t p : ep)
        if (p < 0) fail("explicit_paddings", "negative padding in " + ints_str(ep));
      const size_t h2 = static_cast<size_t>(hi) * 2, w2 = static_cast<size_t>(wi) * 2;
      pads = {ep[h2], ep[w2], ep[h2 + 1], ep[w2 + 1]};
    } else {
      fail("padding", "unknown padding '" + padding + "'");
    }
  } catch (const Error& e) {
    fail("padding", e.message());
  }
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kh, kw});
  a.set("strides", std::vector<int64_t>{sh, sw});
  a.set("dilations", std::vector<int64_t>{dh, dw});
  a.set("pads", pads);
  a.set("group", group);
  int y = emit1("Conv", {cf(x, cl), wv}, a);
  return {cf_out(y, cl)};
}

std::vector<TT> TfBuilder::conv2d_backprop_input() {
  need_inputs(3, 3);
  const bool cl = channels_last_format();
  auto sizes = const_ints(0, "input_sizes");
  const TT& w = in_[1];
  const TT& dy = in_[2];
  Shape ws = tf_shape(w), ys = tf_shape(dy);
  if (sizes.size() != 4) fail("input_sizes", "input_sizes must have 4 values, found " + ints_str(sizes));
  if (ws.size() != 4) fail("filter", "filter must be 4-D (kh, kw, out, in), found " + shape_str(ws));
  if (ys.size() != 4) fail("out_backprop", "out_backprop must be 4-D, found " + shape_str(ys));
  const int hi = cl ? 1 : 2, wi = cl ? 2 : 3, ci = cl ? 3 : 1;
  if (ws[3] != ys[static_cast<size_t>(ci)])
    fail("filter", "filter " + shape_str(ws) + " does not match out_backprop channels " + std::to_string(ys[static_cast<size_t>(ci)]));
  if (ws[2] != sizes[static_cast<size_t>(ci)])
    fail("filter", "filter " + shape_str(ws) + " does not match input_sizes " + ints_str(sizes));
  if (sizes[0] != ys[0]) fail("input_sizes", "batch of input_sizes " + ints_str(sizes) + " differs from out_backprop's");
  auto strides = attr_ints("strides");
  auto dil = attr_ints("dilations", std::vector<int64_t>{1, 1, 1, 1});
  if (strides.size() != 4 || dil.size() != 4) fail("strides", "strides and dilations must have 4 values");
  std::string padding = attr_s("padding");
  if (padding != "SAME" && padding != "VALID" && padding != "EXPLICIT") fail("padding", "unknown padding '" + padding + "'");
  std::vector<int64_t> ep(8, 0);
  if (padding == "EXPLICIT") {
    ep = attr_ints("explicit_paddings");
    if (ep.size() != 8) fail("explicit_paddings", "explicit_paddings must have 8 values");
  }
  std::vector<int64_t> pads(4), outpad(2);
  for (int k = 0; k < 2; ++k) {
    const size_t d = static_cast<size_t>(k == 0 ? hi : wi);
    try {
      auto tp = tf::backprop_input_pads(ys[d], sizes[d], ws[static_cast<size_t>(k)], strides[d], dil[d],
                                        padding == "SAME", tf::Pads{ep[d * 2], ep[d * 2 + 1]});
      pads[static_cast<size_t>(k)] = tp.pads.begin;
      pads[static_cast<size_t>(k) + 2] = tp.pads.end;
      outpad[static_cast<size_t>(k)] = tp.output_padding;
    } catch (const Error& e) {
      fail(e.field(), e.message());
    }
  }
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{ws[0], ws[1]});
  a.set("strides", std::vector<int64_t>{strides[static_cast<size_t>(hi)], strides[static_cast<size_t>(wi)]});
  a.set("dilations", std::vector<int64_t>{dil[static_cast<size_t>(hi)], dil[static_cast<size_t>(wi)]});
  a.set("pads", pads);
  a.set("output_padding", outpad);
  int wv = view(w, {3, 2, 0, 1});  // (kh, kw, out, in) -> (in, out, kh, kw)
  int y = emit1("ConvTranspose", {cf(dy, cl), wv}, a);
  return {cf_out(y, cl)};
}

std::vector<TT> TfBuilder::pool(bool max) {
  const bool v2 = n_->op() == "MaxPoolV2";
  need_inputs(v2 ? 3 : 1, v2 ? 3 : 1);
  const bool cl = channels_last_format();
  const TT& x = in_[0];
  Shape xs = tf_shape(x);
  if (xs.size() != 4) fail("input", "input must be 4-D, found " + shape_str(xs));
  auto ks = v2 ? const_ints(1, "ksize") : attr_ints("ksize");
  auto st = v2 ? const_ints(2, "strides") : attr_ints("strides");
  if (ks.size() != 4) fail("ksize", "ksize must have 4 values, found " + ints_str(ks));
  if (st.size() != 4) fail("strides", "strides must have 4 values, found " + ints_str(st));
  const int hi = cl ? 1 : 2, wi = cl ? 2 : 3, ci = cl ? 3 : 1;
  if (ks[0] != 1 || ks[static_cast<size_t>(ci)] != 1)
    fail("ksize", "pooling over the batch or depth dimension is not supported: " + ints_str(ks));
  if (st[0] != 1 || st[static_cast<size_t>(ci)] != 1)
    fail("strides", "strides in the batch and depth dimensions must be 1, found " + ints_str(st));
  const int64_t kh = ks[static_cast<size_t>(hi)], kw = ks[static_cast<size_t>(wi)];
  const int64_t sh = st[static_cast<size_t>(hi)], sw = st[static_cast<size_t>(wi)];
  std::string padding = attr_s("padding");
  std::vector<int64_t> pads{0, 0, 0, 0};
  try {
    if (padding == "SAME") {
      auto ph = tf::same_pads(xs[static_cast<size_t>(hi)], kh, sh);
      auto pw = tf::same_pads(xs[static_cast<size_t>(wi)], kw, sw);
      pads = {ph.begin, pw.begin, ph.end, pw.end};
    } else if (padding == "VALID") {
      if (kh > xs[static_cast<size_t>(hi)] || kw > xs[static_cast<size_t>(wi)])
        fail("ksize", "window " + ints_str(ks) + " larger than the input " + shape_str(xs));
      tf::same_pads(1, kh, sh);  // checks the window parameters
      tf::same_pads(1, kw, sw);
    } else {
      fail("padding", "unknown padding '" + padding + "'");
    }
  } catch (const Error& e) {
    fail("padding", e.message());
  }
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kh, kw});
  a.set("strides", std::vector<int64_t>{sh, sw});
  a.set("pads", pads);
  if (!max) a.set("count_include_pad", int64_t{0});  // TF's SAME average excludes padding
  int y = emit1(max ? "MaxPool" : "AveragePool", {cf(x, cl)}, a);
  return {cf_out(y, cl)};
}

std::vector<TT> TfBuilder::fused_batch_norm() {
  need_inputs(5, 5);
  const bool cl = channels_last_format();
  const double eps = attr_f("epsilon", 0.0001);
  const bool training = attr_b("is_training", true);
  const TT& x = in_[0];
  const int r = rank(x.v);
  if (r < 3) fail("x", "input must have rank >= 3, found " + shape_str(tf_shape(x)));
  const int64_t C = tf_shape(x)[cl ? static_cast<size_t>(r - 1) : 1];
  for (size_t i = 1; i < 5; ++i) {
    Shape s = tf_shape(in_[i]);
    const bool empty_ok = training && i >= 3 && s.size() == 1 && s[0] == 0;
    if (!empty_ok && (s.size() != 1 || s[0] != C))
      fail(i == 1 ? "scale" : i == 2 ? "offset" : i == 3 ? "mean" : "variance",
           "must be a vector of " + std::to_string(C) + " values, found " + shape_str(s));
  }
  const int xc = cf(x, cl);
  const DType xd = dtype(xc);
  // Statistics are computed in the scale's dtype (float for half inputs, as TF does).
  const DType ud = dtype(in_[1].v);
  Attributes a;
  a.set("epsilon", eps);
  std::vector<TT> outs;
  if (!training) {
    int xin = xd == ud ? xc : emit1("Cast", {xc}, [&] { Attributes c; c.set("to", onnx_code(ud)); return c; }());
    int y = emit1("BatchNormalization", {xin, src(in_[1]), src(in_[2]), src(in_[3]), src(in_[4])}, a);
    if (xd != ud) {
      Attributes c;
      c.set("to", onnx_code(xd));
      y = emit1("Cast", {y}, c);
    }
    outs = {cf_out(y, cl), in_[3], in_[4], in_[3], in_[4]};
    return outs;
  }
  // Training mode: the batch's own statistics over every axis but the channel axis.
  std::vector<int64_t> axes{0};
  int64_t count = shape(xc)[0];
  for (int k = 2; k < r; ++k) {
    axes.push_back(k);
    count *= shape(xc)[static_cast<size_t>(k)];
  }
  Attributes c;
  c.set("to", onnx_code(ud));
  int xf = xd == ud ? xc : emit1("Cast", {xc}, c);
  Attributes ra;
  ra.set("keepdims", int64_t{0});
  int mean = emit1("ReduceMean", {xf, i64s(axes)}, ra);
  Shape bshape(static_cast<size_t>(r), 1);
  bshape[1] = C;
  int mean_b = reshape(mean, bshape);
  int d = emit1("Sub", {xf, mean_b});
  int d2 = emit1("Mul", {d, d});
  int var = emit1("ReduceMean", {d2, i64s(axes)}, ra);
  int y = emit1("BatchNormalization", {xf, src(in_[1]), src(in_[2]), mean, var}, a);
  if (xd != ud) {
    Attributes cb;
    cb.set("to", onnx_code(xd));
    y = emit1("Cast", {y}, cb);
  }
  // batch_variance is reported with Bessel's correction (n / (n - 1)), as TF does.
  const double corr = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
  int var_out = emit1("Mul", {var, scalar(ud, corr)});
  return {cf_out(y, cl), TT{mean, {}}, TT{var_out, {}}, TT{mean, {}}, TT{var, {}}};
}

std::vector<TT> TfBuilder::reduce(const std::string& op) {
  need_inputs(2, 2);
  const TT& x = in_[0];
  const int r = rank(x.v);
  auto axes = const_ints(1, "reduction_indices");
  const bool keep = attr_b("keep_dims", false);
  std::set<int> red;
  for (int64_t a : axes) red.insert(axis_of(a, r, "reduction_indices"));
  if (red.empty()) return {unary("Identity", x)};
  std::vector<int64_t> ca;
  for (int a : red) ca.push_back(canon_axis(x, a));
  Attributes at;
  at.set("keepdims", int64_t{keep ? 1 : 0});
  int y = emit1(op, {x.v, i64s(ca)}, at);
  if (keep) return {TT{y, x.perm}};
  std::vector<int> kept;
  for (int k = 0; k < r; ++k)
    if (!red.count(k)) kept.push_back(k);
  return {TT{y, reduced_perm(x, kept)}};
}

std::vector<TT> TfBuilder::softmax(const std::string& op) {
  need_inputs(1, 1);
  const TT& x = in_[0];
  const int r = rank(x.v);
  if (r < 1) fail("logits", "logits must have rank >= 1");
  Attributes a;
  a.set("axis", int64_t{canon_axis(x, r - 1)});
  return {unary(op, x, a)};
}

std::vector<TT> TfBuilder::concat(bool v2) {
  if (in_.size() < 2) fail("input", "Concat needs values and an axis");
  const size_t ai = v2 ? in_.size() - 1 : 0;
  int64_t axis = const_int(ai, "axis");
  std::vector<TT> xs;
  for (size_t i = 0; i < in_.size(); ++i)
    if (i != ai) xs.push_back(in_[i]);
  const int r = rank(xs[0].v);
  for (const auto& x : xs)
    if (rank(x.v) != r) fail("values", "inputs of different ranks");
  int ax = axis_of(axis, r, "axis");
  bool same = true;
  for (const auto& x : xs) same &= x.perm == xs[0].perm;
  Attributes a;
  std::vector<int> ins;
  std::vector<int> P;
  if (same) {
    P = xs[0].perm;
    for (const auto& x : xs) ins.push_back(x.v);
    a.set("axis", int64_t{canon_axis(xs[0], ax)});
  } else {
    for (const auto& x : xs) ins.push_back(src(x));
    a.set("axis", int64_t{ax});
  }
  return {TT{emit1("Concat", ins, a), P}};
}

int TfBuilder::symmetric_pad(int v, const std::vector<int64_t>& pads) {
  const int r = rank(v);
  for (int k = 0; k < r; ++k) {
    const int64_t pb = pads[static_cast<size_t>(k)], pe = pads[static_cast<size_t>(k + r)];
    if (pb == 0 && pe == 0) continue;
    const int64_t d = shape(v)[static_cast<size_t>(k)];
    if (pb > d || pe > d) fail("paddings", "SYMMETRIC padding larger than the dimension");
    std::vector<int> parts;
    auto rev = [&](int64_t start, int64_t end) {  // elements start down to end+1 (step -1)
      return emit1("Slice", {v, i64s({start}), i64s({end < 0 ? -d - 1 : end}), i64s({k}), i64s({-1})});
    };
    if (pb > 0) parts.push_back(rev(pb - 1, -1));
    parts.push_back(v);
    if (pe > 0) parts.push_back(rev(d - 1, d - pe - 1));
    Attributes a;
    a.set("axis", int64_t{k});
    v = emit1("Concat", parts, a);
  }
  return v;
}

std::vector<TT> TfBuilder::pad(const std::string& mode) {
  const bool v2 = n_->op() == "PadV2";
  need_inputs(v2 ? 3 : 2, v2 ? 3 : 2);
  const TT& x = in_[0];
  const int r = rank(x.v);
  auto p = const_ints(1, "paddings");
  if (static_cast<int>(p.size()) != 2 * r)
    fail("paddings", "paddings must be (" + std::to_string(r) + ", 2), found " + std::to_string(p.size()) + " values");
  std::vector<int64_t> pads(static_cast<size_t>(2 * r));
  for (int i = 0; i < r; ++i) {
    const int c = canon_axis(x, i);
    pads[static_cast<size_t>(c)] = p[static_cast<size_t>(2 * i)];
    pads[static_cast<size_t>(c + r)] = p[static_cast<size_t>(2 * i + 1)];
  }
  for (int64_t q : pads)
    if (q < 0) fail("paddings", "negative padding in " + ints_str(p));
  if (mode == "SYMMETRIC") return {TT{symmetric_pad(x.v, pads), x.perm}};
  std::vector<int> ins{x.v, i64s(pads)};
  Attributes a;
  if (mode == "REFLECT") {
    a.set("mode", std::string("reflect"));
    for (int i = 0; i < r; ++i)
      if (pads[static_cast<size_t>(i)] >= shape(x.v)[static_cast<size_t>(i)] ||
          pads[static_cast<size_t>(i + r)] >= shape(x.v)[static_cast<size_t>(i)])
        fail("paddings", "REFLECT padding must be smaller than the dimension");
  } else {
    a.set("mode", std::string("constant"));
    if (v2) {
      Tensor cv = const_input(2, "constant_values");
      if (cv.numel() != 1) fail("constant_values", "constant_values must be a scalar");
      ins.push_back(cst(cv.reshaped({}).to(dtype(x.v))));
    }
  }
  return {TT{emit1("Pad", ins, a), x.perm}};
}

std::vector<TT> TfBuilder::strided_slice() {
  need_inputs(4, 4);
  const TT& x = in_[0];
  Shape xs = tf_shape(x);
  auto b = const_ints(1, "begin"), e = const_ints(2, "end"), s = const_ints(3, "strides");
  tf::StridedSliceSpec sp;
  try {
    sp = tf::strided_slice(xs, b, e, s, attr_i("begin_mask", 0), attr_i("end_mask", 0),
                           attr_i("ellipsis_mask", 0), attr_i("new_axis_mask", 0),
                           attr_i("shrink_axis_mask", 0));
  } catch (const Error& err) {
    fail(err.field(), err.message());
  }
  int v = src(x);
  std::vector<int64_t> axes;
  std::vector<int64_t> st, en, stp;
  for (size_t k = 0; k < xs.size(); ++k) {
    if (sp.starts[k] == 0 && sp.steps[k] == 1 && sp.ends[k] >= xs[k]) continue;
    axes.push_back(static_cast<int64_t>(k));
    st.push_back(sp.starts[k]);
    en.push_back(sp.ends[k]);
    stp.push_back(sp.steps[k]);
  }
  if (!axes.empty()) v = emit1("Slice", {v, i64s(st), i64s(en), i64s(axes), i64s(stp)});
  v = reshape(v, sp.final_shape);
  return {TT{v, {}}};
}

std::vector<TT> TfBuilder::slice() {
  need_inputs(3, 3);
  const TT& x = in_[0];
  Shape xs = tf_shape(x);
  auto b = const_ints(1, "begin"), sz = const_ints(2, "size");
  if (b.size() != xs.size() || sz.size() != xs.size())
    fail("begin", "begin and size must have " + std::to_string(xs.size()) + " values");
  std::vector<int64_t> st, en, axes;
  for (size_t i = 0; i < xs.size(); ++i) {
    int64_t e = sz[i] == -1 ? xs[i] : b[i] + sz[i];
    if (b[i] < 0 || b[i] > xs[i] || sz[i] < -1 || e > xs[i])
      fail("size", "slice [" + std::to_string(b[i]) + ", " + std::to_string(e) + ") out of range for dim " +
                       std::to_string(i) + " of size " + std::to_string(xs[i]));
    st.push_back(b[i]);
    en.push_back(e);
    axes.push_back(canon_axis(x, static_cast<int>(i)));
  }
  return {TT{emit1("Slice", {x.v, i64s(st), i64s(en), i64s(axes)}), x.perm}};
}

std::vector<TT> TfBuilder::split(bool v) {
  need_inputs(v ? 3 : 2, v ? 3 : 2);
  const TT& x = v ? in_[0] : in_[1];
  const int64_t num = attr_i("num_split");
  const int r = rank(x.v);
  int ax = axis_of(const_int(v ? 2 : 0, "axis"), r, "axis");
  const int64_t d = tf_shape(x)[static_cast<size_t>(ax)];
  if (num < 1 || num > 4096) fail("num_split", "bad num_split " + std::to_string(num));
  std::vector<int64_t> sizes;
  if (v) {
    sizes = const_ints(1, "size_splits");
    if (static_cast<int64_t>(sizes.size()) != num) fail("size_splits", "size_splits must have num_split values");
    int64_t known = 0, unknown = -1;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (sizes[i] == -1) {
        if (unknown >= 0) fail("size_splits", "more than one -1");
        unknown = static_cast<int64_t>(i);
      } else if (sizes[i] < 0) {
        fail("size_splits", "negative size");
      } else {
        known += sizes[i];
      }
    }
    if (unknown >= 0) sizes[static_cast<size_t>(unknown)] = d - known;
    int64_t tot = 0;
    for (int64_t q : sizes) tot += q;
    if (tot != d || (unknown >= 0 && sizes[static_cast<size_t>(unknown)] < 0))
      fail("size_splits", "sizes " + ints_str(sizes) + " do not add up to " + std::to_string(d));
  } else {
    if (d % num != 0) fail("num_split", "dimension " + std::to_string(d) + " not divisible by " + std::to_string(num));
    sizes.assign(static_cast<size_t>(num), d / num);
  }
  Attributes a;
  a.set("axis", int64_t{canon_axis(x, ax)});
  auto outs = emit("Split", {x.v, i64s(sizes)}, a, static_cast<int>(num));
  std::vector<TT> r2;
  for (int o : outs) r2.push_back(TT{o, x.perm});
  return r2;
}

std::vector<TT> TfBuilder::matmul(bool batch) {
  need_inputs(2, 2);
  int a = src(in_[0]), b = src(in_[1]);
  const bool ta = batch ? attr_b("adj_x", false) : attr_b("transpose_a", false);
  const bool tb = batch ? attr_b("adj_y", false) : attr_b("transpose_b", false);
  if (!batch) {
    if (rank(a) != 2 || rank(b) != 2) fail("a", "MatMul needs 2-D inputs");
    Attributes at;
    at.set("transA", int64_t{ta});
    at.set("transB", int64_t{tb});
    return {TT{emit1("Gemm", {a, b}, at), {}}};
  }
  auto swap_last = [&](int v) {
    const int r = rank(v);
    if (r < 2) fail("x", "BatchMatMul needs inputs of rank >= 2");
    std::vector<int> p(static_cast<size_t>(r));
    std::iota(p.begin(), p.end(), 0);
    std::swap(p[static_cast<size_t>(r - 1)], p[static_cast<size_t>(r - 2)]);
    return view(TT{v, {}}, p);
  };
  if (ta) a = swap_last(a);
  if (tb) b = swap_last(b);
  return {TT{emit1("MatMul", {a, b}), {}}};
}

std::vector<TT> TfBuilder::resize(bool bilinear) {
  need_inputs(2, 2);
  const TT& x = in_[0];
  Shape xs = tf_shape(x);
  if (xs.size() != 4) fail("images", "images must be 4-D NHWC, found " + shape_str(xs));
  auto sz = const_ints(1, "size");
  if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1) fail("size", "size must be 2 positive values, found " + ints_str(sz));
  const bool ac = attr_b("align_corners", false), hp = attr_b("half_pixel_centers", false);
  if (ac && hp) fail("half_pixel_centers", "align_corners and half_pixel_centers cannot both be set");
  Attributes a;
  a.set("mode", std::string(bilinear ? "linear" : "nearest"));
  if (bilinear) {
    a.set("coordinate_transformation_mode", std::string(ac ? "align_corners" : hp ? "half_pixel" : "asymmetric"));
  } else {
    a.set("coordinate_transformation_mode",
          std::string(ac ? "align_corners" : hp ? "tf_half_pixel_for_nn" : "asymmetric"));
    a.set("nearest_mode", std::string(ac ? "round_prefer_ceil" : "floor"));
  }
  int xc = cf(x, true);
  int y = emit1("Resize", {xc, -1, -1, i64s({xs[0], xs[3], sz[0], sz[1]})}, a);
  return {cf_out(y, true)};
}

// SpaceToBatchND / BatchToSpaceND on TF's layout, as reshape -> transpose -> reshape (pad /
// crop at the ends).
std::vector<TT> TfBuilder::space_to_batch(bool to_batch) {
  need_inputs(3, 3);
  int v = src(in_[0]);
  Shape xs = shape(v);
  auto block = const_ints(1, "block_shape");
  auto pc = const_ints(2, to_batch ? "paddings" : "crops");
  const size_t M = block.size();
  if (M < 1 || M + 1 > xs.size()) fail("block_shape", "block_shape " + ints_str(block) + " does not fit input " + shape_str(xs));
  if (pc.size() != 2 * M) fail(to_batch ? "paddings" : "crops", "must be (" + std::to_string(M) + ", 2)");
  int64_t prod = 1;
  for (int64_t b : block) {
    if (b < 1 || b > 4096) fail("block_shape", "bad block size in " + ints_str(block));
    prod *= b;
  }
  for (int64_t q : pc)
    if (q < 0) fail(to_batch ? "paddings" : "crops", "negative value in " + ints_str(pc));
  const size_t R = xs.size();
  if (to_batch) {
    std::vector<int64_t> pads(2 * R, 0);
    for (size_t i = 0; i < M; ++i) {
      pads[1 + i] = pc[2 * i];
      pads[R + 1 + i] = pc[2 * i + 1];
    }
    if (std::any_of(pads.begin(), pads.end(), [](int64_t q) { return q != 0; })) {
      Attributes a;
      a.set("mode", std::string("constant"));
      v = emit1("Pad", {v, i64s(pads)}, a);
    }
    Shape ps = shape(v);
    Shape s1{ps[0]};
    for (size_t i = 0; i < M; ++i) {
      if (ps[1 + i] % block[i] != 0) fail("block_shape", "padded dim " + std::to_string(ps[1 + i]) + " not divisible by the block");
      s1.push_back(ps[1 + i] / block[i]);
      s1.push_back(block[i]);
    }
    for (size_t i = M + 1; i < R; ++i) s1.push_back(ps[i]);
    v = reshape(v, s1);
    std::vector<int> perm;
    for (size_t i = 0; i < M; ++i) perm.push_back(static_cast<int>(2 + 2 * i));
    perm.push_back(0);
    for (size_t i = 0; i < M; ++i) perm.push_back(static_cast<int>(1 + 2 * i));
    for (size_t i = 2 * M + 1; i < s1.size(); ++i) perm.push_back(static_cast<int>(i));
    v = view(TT{v, {}}, perm);
    Shape s2{ps[0] * prod};
    for (size_t i = 0; i < M; ++i) s2.push_back(ps[1 + i] / block[i]);
    for (size_t i = M + 1; i < R; ++i) s2.push_back(ps[i]);
    return {TT{reshape(v, s2), {}}};
  }
  if (xs[0] % prod != 0) fail("block_shape", "batch " + std::to_string(xs[0]) + " not divisible by the block size product");
  const int64_t N = xs[0] / prod;
  Shape s1(block.begin(), block.end());
  s1.push_back(N);
  for (size_t i = 1; i < R; ++i) s1.push_back(xs[i]);
  v = reshape(v, s1);
  std::vector<int> perm{static_cast<int>(M)};
  for (size_t i = 0; i < M; ++i) {
    perm.push_back(static_cast<int>(M + 1 + i));
    perm.push_back(static_cast<int>(i));
  }
  for (size_t i = 2 * M + 1; i < s1.size(); ++i) perm.push_back(static_cast<int>(i));
  v = view(TT{v, {}}, perm);
  Shape s2{N};
  for (size_t i = 0; i < M; ++i) s2.push_back(xs[1 + i] * block[i]);
  for (size_t i = M + 1; i < R; ++i) s2.push_back(xs[i]);
  v = reshape(v, s2);
  std::vector<int64_t> st, en, axes;
  for (size_t i = 0; i < M; ++i) {
    if (pc[2 * i] == 0 && pc[2 * i + 1] == 0) continue;
    if (pc[2 * i] + pc[2 * i + 1] > s2[1 + i]) fail("crops", "crops larger than the dimension");
    axes.push_back(static_cast<int64_t>(1 + i));
    st.push_back(pc[2 * i]);
    en.push_back(s2[1 + i] - pc[2 * i + 1]);
  }
  if (!axes.empty()) v = emit1("Slice", {v, i64s(st), i64s(en), i64s(axes)});
  return {TT{v, {}}};
}

std::vector<TT> TfBuilder::convert() {
  const std::string& op = n_->op();
  auto x0 = [&]() -> const TT& {
    if (in_.empty()) fail("input", op + " needs an input");
    return in_[0];
  };
  // ---- sources ----
  if (op == "Const") {
    const auto* a = attr("value");
    if (!a || a->value_case() != anvil_tf::AttrValue::kTensor) fail("value", "Const without a tensor 'value'");
    Tensor t = tensor_from_proto(a->tensor(), "value");
    int v = g_.add_constant(helper_name("const"), t);
    return {TT{v, {}}};
  }
  if (op == "Placeholder") return placeholder();
  if (op == "PlaceholderWithDefault" || op == "Identity" || op == "StopGradient" || op == "Snapshot" ||
      op == "PreventGradient" || op == "CheckNumerics" || op == "EnsureShape") {
    need_inputs(1, 1);
    return {unary("Identity", x0())};
  }
  if (op == "IdentityN") {
    std::vector<TT> r;
    for (const auto& t : in_) r.push_back(unary("Identity", t));
    return r;
  }
  // ---- shapes as constants (static at import) ----
  if (op == "Shape" || op == "Size" || op == "Rank") {
    need_inputs(1, 1);
    DType dt = op == "Rank" ? DType::i32 : attr_dtype("out_type", anvil_tf::DT_INT32);
    Shape s = tf_shape(x0());
    Tensor t;
    if (op == "Shape") {
      t = Tensor(dt, {static_cast<int64_t>(s.size())});
      for (size_t i = 0; i < s.size(); ++i) t.set(static_cast<int64_t>(i), static_cast<double>(s[i]));
    } else {
      t = Tensor(dt, {});
      t.set(0, static_cast<double>(op == "Rank" ? static_cast<int64_t>(s.size()) : shape_numel(s)));
    }
    return {TT{cst(t), {}}};
  }
  if (op == "ShapeN") {
    DType dt = attr_dtype("out_type", anvil_tf::DT_INT32);
    std::vector<TT> r;
    for (const auto& t : in_) {
      Shape s = tf_shape(t);
      Tensor c(dt, {static_cast<int64_t>(s.size())});
      for (size_t i = 0; i < s.size(); ++i) c.set(static_cast<int64_t>(i), static_cast<double>(s[i]));
      r.push_back(TT{cst(c), {}});
    }
    return r;
  }
  // ---- convolution, pooling, normalization ----
  if (op == "Conv2D") return conv2d(false);
  if (op == "DepthwiseConv2dNative") return conv2d(true);
  if (op == "Conv2DBackpropInput") return conv2d_backprop_input();
  if (op == "MaxPool" || op == "MaxPoolV2") return pool(true);
  if (op == "AvgPool") return pool(false);
  if (op == "FusedBatchNorm" || op == "FusedBatchNormV2" || op == "FusedBatchNormV3") return fused_batch_norm();
  if (op == "BiasAdd" || op == "BiasAddV1") {
    need_inputs(2, 2);
    const bool cl = op == "BiasAddV1" ? true : channels_last_format();
    const TT& x = in_[0];
    const int r = rank(x.v);
    Shape bs = tf_shape(in_[1]);
    if (r < 2 || bs.size() != 1) fail("bias", "bias must be 1-D and value at least 2-D");
    const int64_t C = tf_shape(x)[cl ? static_cast<size_t>(r - 1) : 1];
    if (bs[0] != C) fail("bias", "bias of " + std::to_string(bs[0]) + " values for " + std::to_string(C) + " channels");
    if (cl) return {elementwise("Add", {x, in_[1]})};
    Shape s(static_cast<size_t>(r - 1), 1);
    s[0] = C;
    TT b{reshape(src(in_[1]), s), {}};
    return {elementwise("Add", {x, b})};
  }
  if (op == "LRN") {
    need_inputs(1, 1);
    const TT& x = in_[0];
    if (rank(x.v) != 4) fail("input", "LRN needs a 4-D input");
    const int64_t radius = attr_i("depth_radius", 5);
    if (radius < 0 || radius > 1 << 20) fail("depth_radius", "bad depth_radius");
    const int64_t size = 2 * radius + 1;
    Attributes a;
    a.set("size", size);
    a.set("alpha", attr_f("alpha", 1.0) * static_cast<double>(size));
    a.set("beta", attr_f("beta", 0.5));
    a.set("bias", attr_f("bias", 1.0));
    return {cf_out(emit1("LRN", {cf(x, true)}, a), true)};
  }
  if (op == "DepthToSpace" || op == "SpaceToDepth") {
    need_inputs(1, 1);
    const bool cl = channels_last_format();
    if (rank(x0().v) != 4) fail("input", op + " needs a 4-D input");
    Attributes a;
    a.set("blocksize", attr_i("block_size"));
    if (op == "DepthToSpace") a.set("mode", std::string("DCR"));
    return {cf_out(emit1(op, {cf(x0(), cl)}, a), cl)};
  }
  if (op == "ResizeBilinear") return resize(true);
  if (op == "ResizeNearestNeighbor") return resize(false);
  if (op == "SpaceToBatchND") return space_to_batch(true);
  if (op == "BatchToSpaceND") return space_to_batch(false);
  // ---- matmul ----
  if (op == "MatMul") return matmul(false);
  if (op == "BatchMatMul" || op == "BatchMatMulV2" || op == "BatchMatMulV3") return matmul(true);
  // ---- activations and unary math ----
  static const std::map<std::string, std::string> unary_ops = {
      {"Relu", "Relu"},       {"Sigmoid", "Sigmoid"},   {"Tanh", "Tanh"},     {"Softplus", "Softplus"},
      {"Softsign", "Softsign"}, {"Exp", "Exp"},         {"Log", "Log"},       {"Neg", "Neg"},
      {"Abs", "Abs"},         {"Sqrt", "Sqrt"},         {"Reciprocal", "Reciprocal"},
      {"Inv", "Reciprocal"},  {"Floor", "Floor"},       {"Ceil", "Ceil"},     {"Round", "Round"},
      {"Sign", "Sign"},       {"Erf", "Erf"},           {"Sin", "Sin"},       {"Cos", "Cos"},
      {"Tan", "Tan"},         {"Asin", "Asin"},         {"Acos", "Acos"},     {"Atan", "Atan"},
      {"Sinh", "Sinh"},       {"Cosh", "Cosh"},         {"Asinh", "Asinh"},   {"Acosh", "Acosh"},
      {"Atanh", "Atanh"},     {"LogicalNot", "Not"},    {"IsNan", "IsNaN"},   {"Elu", "Elu"}};
  if (auto it = unary_ops.find(op); it != unary_ops.end()) {
    need_inputs(1, 1);
    return {unary(it->second, x0())};
  }
  if (op == "Rsqrt") {
    need_inputs(1, 1);
    TT s = unary("Sqrt", x0());
    return {unary("Reciprocal", s)};
  }
  if (op == "Square") {
    need_inputs(1, 1);
    return {TT{emit1("Mul", {x0().v, x0().v}), x0().perm}};
  }
  if (op == "Relu6") {
    need_inputs(1, 1);
    DType dt = dtype(x0().v);
    return {TT{emit1("Clip", {x0().v, scalar(dt, 0), scalar(dt, 6)}), x0().perm}};
  }
  if (op == "Selu") {
    need_inputs(1, 1);
    Attributes a;
    a.set("alpha", 1.6732632423543772848170429916717);
    a.set("gamma", 1.0507009873554804934193349852946);
    return {unary("Selu", x0(), a)};
  }
  if (op == "LeakyRelu") {
    need_inputs(1, 1);
    Attributes a;
    a.set("alpha", attr_f("alpha", 0.2));
    return {unary("LeakyRelu", x0(), a)};
  }
  if (op == "Softmax") return softmax("Softmax");
  if (op == "LogSoftmax") return softmax("LogSoftmax");
  // ---- binary / n-ary elementwise ----
  static const std::map<std::string, std::string> binary_ops = {
      {"Add", "Add"},         {"AddV2", "Add"},        {"Sub", "Sub"},        {"Mul", "Mul"},
      {"RealDiv", "Div"},     {"Div", "Div"},          {"Maximum", "Max"},    {"Minimum", "Min"},
      {"Pow", "Pow"},         {"Greater", "Greater"},  {"GreaterEqual", "GreaterOrEqual"},
      {"Less", "Less"},       {"LessEqual", "LessOrEqual"}, {"Equal", "Equal"},
      {"LogicalAnd", "And"},  {"LogicalOr", "Or"}};
  if (auto it = binary_ops.find(op); it != binary_ops.end()) {
    need_inputs(2, 2);
    if (dtype(in_[0].v) != dtype(in_[1].v))
      fail("T", std::string("operands of different dtypes (") + dtype_name(dtype(in_[0].v)) + ", " +
                    dtype_name(dtype(in_[1].v)) + ")");
    if (op == "Div" && is_integer(dtype(in_[0].v))) fail("T", "integer Div (floor division) is not supported");
    return {elementwise(it->second, in_)};
  }
  if (op == "SquaredDifference") {
    need_inputs(2, 2);
    TT d = elementwise("Sub", in_);
    return {TT{emit1("Mul", {d.v, d.v}), d.perm}};
  }
  if (op == "AddN") {
    if (in_.empty()) fail("inputs", "AddN without inputs");
    if (in_.size() == 1) return {unary("Identity", in_[0])};
    return {elementwise("Sum", in_)};
  }
  // ---- reductions ----
  static const std::map<std::string, std::string> reduce_ops = {
      {"Mean", "ReduceMean"}, {"Sum", "ReduceSum"}, {"Max", "ReduceMax"}, {"Min", "ReduceMin"}, {"Prod", "ReduceProd"}};
  if (auto it = reduce_ops.find(op); it != reduce_ops.end()) return reduce(it->second);
  if (op == "ArgMax" || op == "ArgMin") {
    need_inputs(2, 2);
    const TT& x = in_[0];
    const int r = rank(x.v);
    int ax = axis_of(const_int(1, "dimension"), r, "dimension");
    Attributes a;
    a.set("axis", int64_t{canon_axis(x, ax)});
    a.set("keepdims", int64_t{0});
    int y = emit1(op, {x.v}, a);
    DType ot = attr_dtype("output_type", anvil_tf::DT_INT64);
    if (ot != DType::i64) {
      Attributes c;
      c.set("to", onnx_code(ot));
      y = emit1("Cast", {y}, c);
    }
    std::vector<int> kept;
    for (int k = 0; k < r; ++k)
      if (k != ax) kept.push_back(k);
    return {TT{y, reduced_perm(x, kept)}};
  }
  if (op == "TopKV2") {
    need_inputs(2, 2);
    int v = src(in_[0]);
    if (rank(v) < 1) fail("input", "TopKV2 needs rank >= 1");
    int64_t k = const_int(1, "k");
    if (k < 0 || k > shape(v).back()) fail("k", "k = " + std::to_string(k) + " out of range");
    Attributes a;
    a.set("axis", int64_t{-1});
    a.set("largest", int64_t{1});
    a.set("sorted", int64_t{1});
    auto outs = emit("TopK", {v, i64s({k})}, a, 2);
    Attributes c;
    c.set("to", onnx_code(DType::i32));
    int idx = emit1("Cast", {outs[1]}, c);
    return {TT{outs[0], {}}, TT{idx, {}}};
  }
  // ---- shape manipulation (TF layout) ----
  if (op == "Reshape") {
    need_inputs(2, 2);
    int v = src(in_[0]);
    auto s = const_ints(1, "shape");
    const int64_t n = shape_numel(shape(v));
    int64_t known = 1, unknown = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == -1) {
        if (unknown >= 0) fail("shape", "more than one -1 in " + ints_str(s));
        unknown = static_cast<int64_t>(i);
      } else if (s[i] < 0) {
        fail("shape", "negative dimension in " + ints_str(s));
      } else {
        known *= s[i];
        if (known > kMaxElements) fail("shape", "hostile shape " + ints_str(s));
      }
    }
    if (unknown >= 0) {
      if (known == 0 || n % known != 0) fail("shape", "cannot reshape " + shape_str(shape(v)) + " to " + ints_str(s));
      s[static_cast<size_t>(unknown)] = n / known;
    } else if (known != n) {
      fail("shape", "cannot reshape " + shape_str(shape(v)) + " (" + std::to_string(n) + " elements) to " + ints_str(s));
    }
    return {TT{emit1("Reshape", {v, i64s(s)}, [&] {
                   Attributes a;
                   if (std::find(s.begin(), s.end(), 0) != s.end()) a.set("allowzero", int64_t{1});
                   return a;
                 }()),
               {}}};
  }
  if (op == "Squeeze") {
    need_inputs(1, 1);
    int v = src(in_[0]);
    const int r = rank(v);
    auto dims = attr_ints("squeeze_dims", std::vector<int64_t>{});
    if (attr("axis") && dims.empty()) dims = attr_ints("axis");
    std::vector<int64_t> axes;
    if (dims.empty()) {
      for (int k = 0; k < r; ++k)
        if (shape(v)[static_cast<size_t>(k)] == 1) axes.push_back(k);
    } else {
      for (int64_t d : dims) {
        int a = axis_of(d, r, "squeeze_dims");
        if (shape(v)[static_cast<size_t>(a)] != 1) fail("squeeze_dims", "dimension " + std::to_string(d) + " is not 1");
        axes.push_back(a);
      }
    }
    if (axes.empty()) return {unary("Identity", TT{v, {}})};
    return {TT{emit1("Squeeze", {v, i64s(axes)}), {}}};
  }
  if (op == "ExpandDims") {
    need_inputs(2, 2);
    int v = src(in_[0]);
    const int r = rank(v);
    int64_t a = const_int(1, "dim");
    if (a < -r - 1 || a > r) fail("dim", "axis " + std::to_string(a) + " out of range");
    if (a < 0) a += r + 1;
    return {TT{emit1("Unsqueeze", {v, i64s({a})}), {}}};
  }
  if (op == "Transpose") {
    need_inputs(2, 2);
    const TT& x = in_[0];
    const int r = rank(x.v);
    auto p = const_ints(1, "perm");
    if (static_cast<int>(p.size()) != r) fail("perm", "perm " + ints_str(p) + " for a rank-" + std::to_string(r) + " tensor");
    std::vector<bool> seen(static_cast<size_t>(r), false);
    std::vector<int> np;
    for (int64_t q : p) {
      if (q < 0 || q >= r || seen[static_cast<size_t>(q)]) fail("perm", "not a permutation: " + ints_str(p));
      seen[static_cast<size_t>(q)] = true;
      np.push_back(x.perm.empty() ? static_cast<int>(q) : x.perm[static_cast<size_t>(q)]);
    }
    return {TT{x.v, np}};  // bound through an Identity: no data moves
  }
  if (op == "ConcatV2") return concat(true);
  if (op == "Concat") return concat(false);
  if (op == "Pack") {
    if (in_.empty()) fail("values", "Pack without inputs");
    const int r = rank(in_[0].v);
    int64_t a = attr_i("axis", 0);
    if (a < -r - 1 || a > r) fail("axis", "axis " + std::to_string(a) + " out of range");
    if (a < 0) a += r + 1;
    std::vector<int> parts;
    for (const auto& t : in_) {
      if (tf_shape(t) != tf_shape(in_[0])) fail("values", "Pack inputs of different shapes");
      parts.push_back(emit1("Unsqueeze", {src(t), i64s({a})}));
    }
    if (parts.size() == 1) return {TT{parts[0], {}}};
    Attributes ca;
    ca.set("axis", a);
    return {TT{emit1("Concat", parts, ca), {}}};
  }
  if (op == "Unpack") {
    need_inputs(1, 1);
    int v = src(in_[0]);
    const int r = rank(v);
    int ax = axis_of(attr_i("axis", 0), r, "axis");
    const int64_t num = attr_i("num");
    if (num != shape(v)[static_cast<size_t>(ax)]) fail("num", "num does not match the dimension");
    if (num < 1 || num > 4096) fail("num", "bad num " + std::to_string(num));
    std::vector<int> outs;
    if (num == 1) {
      outs = {v};
    } else {
      Attributes a;
      a.set("axis", int64_t{ax});
      outs = emit("Split", {v, i64s(std::vector<int64_t>(static_cast<size_t>(num), 1))}, a, static_cast<int>(num));
    }
    std::vector<TT> r2;
    for (int o : outs) r2.push_back(TT{emit1("Squeeze", {o, i64s({ax})}), {}});
    return r2;
  }
  if (op == "Split") return split(false);
  if (op == "SplitV") return split(true);
  if (op == "Slice") return slice();
  if (op == "StridedSlice") return strided_slice();
  if (op == "Pad") return pad("CONSTANT");
  if (op == "PadV2") return pad("CONSTANT");
  if (op == "MirrorPad") {
    std::string mode = attr_s("mode");
    if (mode != "REFLECT" && mode != "SYMMETRIC") fail("mode", "unknown MirrorPad mode '" + mode + "'");
    return pad(mode);
  }
  if (op == "Tile") {
    need_inputs(2, 2);
    const TT& x = in_[0];
    const int r = rank(x.v);
    auto m = const_ints(1, "multiples");
    if (static_cast<int>(m.size()) != r) fail("multiples", "multiples must have " + std::to_string(r) + " values");
    std::vector<int64_t> rep(static_cast<size_t>(r));
    for (int i = 0; i < r; ++i) {
      if (m[static_cast<size_t>(i)] < 0) fail("multiples", "negative multiple");
      rep[static_cast<size_t>(canon_axis(x, i))] = m[static_cast<size_t>(i)];
    }
    return {TT{emit1("Tile", {x.v, i64s(rep)}), x.perm}};
  }
  if (op == "Fill") {
    need_inputs(2, 2);
    auto dims = const_ints(0, "dims");
    checked_numel(dims, "dims");
    if (rank(in_[1].v) != 0) fail("value", "value must be a scalar");
    return {TT{emit1("Expand", {in_[1].v, i64s(dims)}), {}}};
  }
  if (op == "ZerosLike" || op == "OnesLike") {
    need_inputs(1, 1);
    Tensor t(dtype(in_[0].v), shape(in_[0].v));
    if (op == "OnesLike")
      for (int64_t i = 0; i < t.numel(); ++i) t.set(i, 1);
    return {TT{cst(t), in_[0].perm}};
  }
  if (op == "Cast") {
    need_inputs(1, 1);
    DType to = attr_dtype("DstT");
    Attributes a;
    a.set("to", onnx_code(to));
    return {unary("Cast", x0(), a)};
  }
  if (op == "Gather" || op == "GatherV2") {
    need_inputs(op == "Gather" ? 2 : 3, op == "Gather" ? 2 : 3);
    int p = src(in_[0]);
    int64_t axis = op == "Gather" ? 0 : const_int(2, "axis");
    if (attr_i("batch_dims", 0) != 0) fail("batch_dims", "batch_dims other than 0 is not supported");
    int ax = axis_of(axis, rank(p), "axis");
    Attributes a;
    a.set("axis", int64_t{ax});
    return {TT{emit1("Gather", {p, src(in_[1])}, a), {}}};
  }
  if (op == "Range") {
    need_inputs(3, 3);
    std::vector<int> ins;
    for (size_t i = 0; i < 3; ++i) ins.push_back(cst(const_input(i, i == 0 ? "start" : i == 1 ? "limit" : "delta")));
    return {TT{emit1("Range", ins), {}}};
  }
  if (op == "Select" || op == "SelectV2") {
    need_inputs(3, 3);
    if (op == "Select" && tf_shape(in_[0]) != tf_shape(in_[1]) && rank(in_[0].v) != 0)
      fail("condition", "Select with a condition of another shape than the values is not supported");
    return {elementwise("Where", in_)};
  }
  if (op == "NoOp") return {};
  if (op == "VariableV2" || op == "Variable" || op == "VarHandleOp" || op == "ReadVariableOp")
    fail("op", "variables are not supported: freeze the graph first (convert_variables_to_constants)");
  if (auto mapped = mapped_source_op("tensorflow", op)) {
    std::vector<int> ins;
    for (const auto& t : in_) ins.push_back(src(t));
    Attributes a;
    for (const auto& [k, v] : n_->attr()) {
      switch (v.value_case()) {
        case anvil_tf::AttrValue::kI: a.set(k, static_cast<int64_t>(v.i())); break;
        case anvil_tf::AttrValue::kF: a.set(k, static_cast<double>(v.f())); break;
        case anvil_tf::AttrValue::kS: a.set(k, v.s()); break;
        case anvil_tf::AttrValue::kB: a.set(k, static_cast<int64_t>(v.b())); break;
        case anvil_tf::AttrValue::kList:
          if (v.list().i_size()) a.set(k, std::vector<int64_t>(v.list().i().begin(), v.list().i().end()));
          else if (v.list().f_size()) a.set(k, std::vector<double>(v.list().f().begin(), v.list().f().end()));
          break;
        default: break;
      }
    }
    const OpDef* def = OpRegistry::global().find(*mapped);
    if (def)
      for (auto it = a.all().begin(); it != a.all().end();) {
        const std::string k = it->first;
        ++it;
        if (std::none_of(def->attrs.begin(), def->attrs.end(), [&](const AttrSpec& s) { return s.name == k; })) a.erase(k);
      }
    return {TT{emit1(*mapped, ins, a), {}}};
  }
  fail("op", "op '" + op + "' is not supported");
}

// ------------------------------------------------------------------------------ build

Graph TfBuilder::build() {
  g_.framework = "tensorflow";
  g_.source_file = file_;
  g_.name = std::filesystem::path(file_).stem().string();
  const int nn = gd_.node_size();
  // Names and producers.
  for (int i = 0; i < nn; ++i) {
    const auto& n = gd_.node(i);
    if (!valid_node_name(n.name())) {
      problems_.push_back({n.op(), n.name(), "name", "invalid node name '" + n.name() + "'"});
      continue;
    }
    if (!valid_op_name(n.op())) {
      problems_.push_back({n.op(), n.name(), "op", "invalid op '" + n.op() + "'"});
      continue;
    }
    if (!producers_.emplace(n.name(), i).second)
      problems_.push_back({n.op(), n.name(), "name", "node name '" + n.name() + "' is used twice"});
  }
  if (!problems_.empty()) {
    const auto& p = problems_[0];
    throw Error(p.reason + (problems_.size() > 1 ? " (and " + std::to_string(problems_.size() - 1) + " more)" : ""),
                file_, p.node, p.field);
  }
  for (const auto& [name, shape] : opt_.input_shapes) {
    auto it = producers_.find(name);
    if (it == producers_.end() || gd_.node(it->second).op() != "Placeholder")
      problems_.push_back({"input", name, "input", "a shape is given for '" + name + "', which is not a Placeholder of the graph"});
  }
  // Kahn's order over data and control inputs; ties keep the file's order.
  std::vector<std::set<int>> deps(static_cast<size_t>(nn));
  std::set<std::string> consumed;  // node names whose outputs a node reads
  for (int i = 0; i < nn; ++i) {
    for (const auto& s : gd_.node(i).input()) {
      InputRef r;
      if (!parse_input(s, r)) continue;  // reported at conversion
      if (!r.control) consumed.insert(r.node);
      auto it = producers_.find(r.node);
      if (it != producers_.end()) deps[static_cast<size_t>(i)].insert(it->second);
    }
  }
  std::vector<bool> placed;
  std::vector<int> order = stable_topo_order(deps, placed);
  for (int i = 0; i < nn; ++i)
    if (!placed[static_cast<size_t>(i)]) {
      const auto& n = gd_.node(i);
      problems_.push_back({n.op(), n.name(), "input", "part of a cycle (control flow loops are not supported)"});
      failed_.insert(n.name());
    }

  for (int idx : order) {
    const auto& n = gd_.node(idx);
    n_ = &n;
    in_.clear();
    in_names_.clear();
    bool skip = false;
    try {
      for (int k = 0; k < n.input_size(); ++k) {
        InputRef r;
        if (!parse_input(n.input(k), r)) fail("input", "malformed input '" + n.input(k) + "'");
        if (r.control) continue;
        if (failed_.count(r.node)) {
          skip = true;
          continue;
        }
        auto it = tensors_.find(tensor_key(r.node, r.index));
        if (it == tensors_.end()) {
          if (!producers_.count(r.node)) fail("input", "input '" + n.input(k) + "' is not produced by any node");
          fail("input", "input '" + n.input(k) + "' refers to output " + std::to_string(r.index) +
                            " of '" + r.node + "', which it does not have");
        }
        in_.push_back(it->second);
        in_names_.push_back(n.input(k));
      }
      if (skip) {
        failed_.insert(n.name());
        continue;
      }
      first_value_ = g_.values.size();
      first_node_ = g_.nodes.size();
      bind(convert());
    } catch (const NodeError& e) {
      problems_.push_back({n.op(), n.name(), e.field, e.message});
      failed_.insert(n.name());
    } catch (const Error& e) {
      problems_.push_back({n.op(), n.name(), e.field(), e.message()});
      failed_.insert(n.name());
    } catch (const std::exception& e) {
      problems_.push_back({n.op(), n.name(), "", std::string("internal error while importing: ") + e.what()});
      failed_.insert(n.name());
    }
  }

  if (!problems_.empty()) {
    // Unsupported ops first, grouped, then the other problems.
    std::map<std::string, std::vector<std::string>> unsupported;
    std::vector<Problem> other;
    for (const auto& p : problems_) {
      if (p.field == "op" && p.reason.find("is not supported") != std::string::npos)
        unsupported[p.op].push_back(p.node);
      else
        other.push_back(p);
    }
    if (problems_.size() == 1) {
      const auto& p = problems_[0];
      throw Error(p.op + ": " + p.reason, file_, p.node, p.field);
    }
    std::string msg;
    if (!unsupported.empty()) {
      msg += "unsupported ops:";
      for (const auto& [op, nodes] : unsupported) {
        msg += "\n  - " + op + " (";
        for (size_t i = 0; i < nodes.size() && i < 8; ++i) msg += (i ? ", " : "") + std::string("'") + nodes[i] + "'";
        if (nodes.size() > 8) msg += ", ... " + std::to_string(nodes.size() - 8) + " more";
        msg += ")";
      }
    }
    if (!other.empty()) {
      msg += std::string(msg.empty() ? "" : "\n") + std::to_string(other.size()) + " problem(s) importing the graph:";
      for (const auto& p : other)
        msg += "\n  - node '" + p.node + "' (" + p.op + ")" + (p.field.empty() ? "" : ": field '" + p.field + "'") + ": " + p.reason;
    }
    throw Error(msg, file_);
  }

  // One summary row per TF node as TF has it (Const nodes and their '/read' Identities are
  // counted as the parameters of the nodes that read them).
  auto const_source = [&](std::string input) -> const anvil_tf::NodeDef* {
    for (int hops = 0; hops < 8; ++hops) {
      InputRef r;
      if (!parse_input(input, r) || r.control) return nullptr;
      auto it = producers_.find(r.node);
      if (it == producers_.end()) return nullptr;
      const auto& p = gd_.node(it->second);
      if (p.op() == "Const") return &p;
      if (p.op() != "Identity" || p.input_size() < 1) return nullptr;
      input = p.input(0);
    }
    return nullptr;
  };
  for (int idx : order) {
    const auto& n = gd_.node(idx);
    if (n.op() == "Const" || n.op() == "NoOp") continue;
    if (n.op() == "Identity" && n.input_size() >= 1 && const_source(n.input(0))) continue;  // a variable's read
    SourceLayer l;
    l.name = n.name();
    l.type = n.op();
    for (int i = 0; tensors_.count(tensor_key(n.name(), i)); ++i) {
      const TT& t = tensors_[tensor_key(n.name(), i)];
      l.outputs.push_back(tensor_key(n.name(), i));
      l.output_shapes.push_back(tf_shape(t));
    }
    std::set<const anvil_tf::NodeDef*> counted;
    for (const auto& in : n.input()) {
      const anvil_tf::NodeDef* c = const_source(in);
      if (!c || !counted.insert(c).second) continue;
      auto it = tensors_.find(c->name());
      if (it != tensors_.end()) l.trainable_params += shape_numel(shape(it->second.v));
    }
    g_.source_layers.push_back(std::move(l));
  }

  // Default outputs: the sinks.
  static const std::set<std::string> not_outputs = {"Const", "NoOp", "Placeholder", "Assert", "SaveV2", "RestoreV2",
                                                    "Save", "Restore", "VariableV2", "Variable", "Assign"};
  for (int idx : order) {
    const auto& n = gd_.node(idx);
    if (consumed.count(n.name()) || not_outputs.count(n.op()) || failed_.count(n.name())) continue;
    int count = 0;
    while (tensors_.count(tensor_key(n.name(), count))) ++count;
    if (n.op().rfind("FusedBatchNorm", 0) == 0) {
      // y; in training mode also the batch mean and variance (the rest is scratch space)
      auto it = n.attr().find("is_training");
      const bool training = it == n.attr().end() || it->second.b();
      count = std::min(count, training ? 3 : 1);
    }
    for (int i = 0; i < count; ++i) g_.outputs.push_back(tensors_[tensor_key(n.name(), i)].v);
  }
  if (g_.outputs.empty()) throw Error("the graph has no outputs (no node other than constants and placeholders)", file_);
  // Values were renamed after their nodes were added: refresh Graph's name cache.
  g_.add_value("#");
  g_.values.pop_back();
  g_.validate();
  return std::move(g_);
}

// ------------------------------------------------------------------------------ files

bool has_ext(const std::string& path, const std::vector<std::string>& exts) {
  std::string e = std::filesystem::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return std::find(exts.begin(), exts.end(), e) != exts.end();
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) throw Error("cannot read file: " + ec.message(), path);
  if (size > kMaxFileBytes) throw Error("file too large for a GraphDef (" + std::to_string(size) + " bytes)", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open file", path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class SilentErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first.empty()) first = "line " + std::to_string(line + 1) + ", column " + std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, int, const std::string&) override {}
  std::string first;
};

bool parse_text(const std::string& bytes, anvil_tf::GraphDef& g, std::string* error) {
  google::protobuf::TextFormat::Parser p;
  SilentErrors errs;
  p.RecordErrorsTo(&errs);
  p.AllowUnknownField(true);  // fields of the full format this subset leaves out
  p.AllowUnknownExtension(true);
  bool ok = p.ParseFromString(bytes, &g);
  if (!ok && error) *error = errs.first;
  return ok;
}

bool parse_binary(const std::string& bytes, anvil_tf::GraphDef& g) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
  // Corrupt files make libprotobuf log (invalid UTF-8 in names) on stderr; the importer
  // reports problems itself, as one error.
  google::protobuf::LogSilencer quiet;
  return g.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

bool looks_like_text(const std::string& bytes) {
  for (char c : bytes.substr(0, 4096)) {
    if (c == 0 || (static_cast<unsigned char>(c) < 32 && c != '\n' && c != '\r' && c != '\t')) return false;
  }
  return true;
}

// A GraphDef with at least one node, all with a valid name and op: what a TF graph is.
bool plausible(const anvil_tf::GraphDef& g) {
  if (g.node_size() == 0) return false;
  for (const auto& n : g.node())
    if (!valid_node_name(n.name()) || !valid_op_name(n.op())) return false;
  return true;
}

bool accepts(const std::vector<std::string>& files) {
  if (files.size() != 1) return false;
  const std::string& f = files[0];
  if (has_ext(f, {".onnx", ".h5", ".hdf5", ".keras", ".caffemodel", ".prototxt", ".tflite", ".json", ".npy", ".npz"}))
    return false;
  if (has_ext(f, {".pbtxt", ".pbtext"})) return true;
  try {
    std::string bytes = read_file(f);
    anvil_tf::GraphDef g;
    if (parse_binary(bytes, g) && plausible(g)) return true;
    anvil_tf::GraphDef t;
    return looks_like_text(bytes) && parse_text(bytes, t, nullptr) && plausible(t);
  } catch (...) {
    return false;
  }
}

Graph load(const std::vector<std::string>& files, const ImportOptions& options) {
  if (files.size() != 1) throw Error("a TensorFlow graph is one frozen GraphDef file (.pb or .pbtxt)", files.empty() ? "" : files[0]);
  const std::string& path = files[0];
  std::string bytes = read_file(path);
  if (bytes.empty()) throw Error("the file is empty, not a GraphDef", path);
  anvil_tf::GraphDef g;
  const bool text_ext = has_ext(path, {".pbtxt", ".pbtext"});
  bool ok = false;
  std::string text_error;
  if (!text_ext) ok = parse_binary(bytes, g) && plausible(g);
  if (!ok) {
    g.Clear();
    if (looks_like_text(bytes)) ok = parse_text(bytes, g, &text_error);
    if (!ok)
      throw Error(text_ext || looks_like_text(bytes)
                      ? "not a valid text GraphDef: " + text_error
                      : "not a valid TensorFlow GraphDef: the protobuf could not be parsed (truncated or corrupt file, " +
                            std::to_string(bytes.size()) + " bytes)",
                  path);
  }
  if (g.node_size() == 0) throw Error("the GraphDef has no nodes", path, {}, "node");
  TfBuilder b(g, path, options);
  return b.build();
}

const bool registered = [] {
  register_importer(anvil::Importer{"tensorflow", accepts, load});
  return true;
}();

}  // namespace
}  // namespace anvil::tf_import
