// The Caffe builder's services to converters: naming, node emission, blobs and checks; and the
// converter table (see caffe_builder.h).
#include "import/caffe/caffe_builder.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "anvil/error.h"

namespace anvil::caffe_import {

std::string dims_str(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// A float as the shortest text that reads back the same float.
std::string fmt_float(float f) {
  char buf[32];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return buf;
}

// Element count with overflow and negative-dimension checks (hostile files).
int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail("shape", "negative dimension in " + dims_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail("shape", "element count of " + dims_str(s) + " overflows");
    n *= d;
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// the converter table

namespace {
std::map<std::string, LayerConverter>& table() {
  static std::map<std::string, LayerConverter> t;
  return t;
}
}  // namespace

LayerConverter find_converter(const std::string& type) {
  auto it = table().find(type);
  return it == table().end() ? nullptr : it->second;
}

ConverterRegistrar::ConverterRegistrar(
    std::initializer_list<std::pair<const char*, LayerConverter>> rows) {
  for (const auto& [type, fn] : rows) table()[type] = fn;
}

std::vector<std::string> supported_layer_types() {
  std::vector<std::string> r;
  for (const auto& [type, fn] : table()) r.push_back(type);
  return r;
}

// ---------------------------------------------------------------------------------------
// graph helpers

std::string CaffeBuilder::fresh(const std::string& base) {
  std::string b = base.empty() ? std::string("v") : base;
  if (!used_names_.count(b) && !reserved_.count(b)) return b;
  for (int i = 1;; ++i) {
    std::string c = b + "_" + std::to_string(i);
    if (!used_names_.count(c) && !reserved_.count(c)) return c;
  }
}

Provenance CaffeBuilder::prov(const std::string& source_name, int index) const {
  Provenance p;
  p.framework = "caffe";
  p.source_name = source_name;
  p.output_index = index;
  p.source_layout = "NCHW";
  return p;
}

int CaffeBuilder::add_node(CaffeLayer& L, const std::string& op, const std::vector<int>& ins,
                           Attributes a, const std::vector<std::string>& out_names,
                           const std::string& suffix) {
  // Node names are unique among nodes (a layer's node shares its name with its top blob,
  // as in Caffe); helper nodes get fresh names unused by any node or value.
  std::string nn;
  if (suffix.empty() && !L.node_named && !node_names_.count(L.name)) {
    nn = L.name;
    L.node_named = true;
  } else if (!out_names.empty() && !suffix.empty() && !node_names_.count(out_names[0]) &&
             out_names[0].rfind(L.name + "/", 0) == 0) {
    nn = out_names[0];  // a helper node is named like its (fresh) output value
  } else {
    nn = fresh(L.name + "/" + (suffix.empty() ? op : suffix));
    while (node_names_.count(nn)) nn = fresh(nn + "_");
    used_names_.insert(nn);
  }
  node_names_.insert(nn);
  for (const auto& o : out_names) used_names_.insert(o);
  int ni = g_.add_node(op, nn, ins, std::move(a), static_cast<int>(out_names.size()), out_names);
  Node& node = g_.nodes[static_cast<size_t>(ni)];
  node.source_op = L.type;
  for (int o : node.outputs) g_.values[static_cast<size_t>(o)].prov = prov("", 0);
  try {
    g_.infer_node(ni);
  } catch (const Error& e) {
    fail(e.field().empty() ? "shape" : e.field(), e.message());
  }
  return ni;
}

int CaffeBuilder::emit(CaffeLayer& L, const std::string& op, const std::vector<int>& ins,
                       Attributes a, const std::string& suffix) {
  std::string vn = fresh(L.name + "/" + suffix);
  used_names_.insert(vn);
  int ni = add_node(L, op, ins, std::move(a), {vn}, suffix);
  return g_.nodes[static_cast<size_t>(ni)].outputs[0];
}

int CaffeBuilder::emit_top(CaffeLayer& L, const std::string& op, const std::vector<int>& ins,
                           Attributes a, size_t top) {
  const std::string& vn = L.top_names[top];
  int ni =
      add_node(L, op, ins, std::move(a), {vn}, L.node_named ? L.p->top(static_cast<int>(top)) : "");
  int v = g_.nodes[static_cast<size_t>(ni)].outputs[0];
  L.tops[top] = v;
  return v;
}

int CaffeBuilder::constant(CaffeLayer& L, const std::string& role, Tensor t) {
  std::string n = fresh(L.name + "/" + role);
  used_names_.insert(n);
  int v = g_.add_constant(n, std::move(t));
  g_.values[static_cast<size_t>(v)].prov = prov(n, 0);
  return v;
}

int CaffeBuilder::scalar(CaffeLayer& L, const std::string& role, double v) {
  return constant(L, role, Tensor::scalar<float>(static_cast<float>(v)));
}

int CaffeBuilder::i64s(CaffeLayer& L, const std::string& role, const std::vector<int64_t>& v) {
  return constant(L, role, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
}

int CaffeBuilder::reduce(CaffeLayer& L, const std::string& op, int v,
                         const std::vector<int64_t>& axes, bool keep, const std::string& suffix) {
  Attributes a;
  a.set("keepdims", int64_t{keep ? 1 : 0});
  return emit(L, op, {v, i64s(L, suffix + "_axes", axes)}, a, suffix);
}

// (x - mean) / sqrt(var + eps), or / (sqrt(var) + eps) (MVN), or x - mean only; mean and var
// over `axes` (kept as size 1).
int CaffeBuilder::batch_normalize(CaffeLayer& L, int x, const std::vector<int64_t>& axes,
                                  double eps, bool eps_outside_sqrt, bool subtract_mean_only,
                                  bool final_node) {
  int mean = reduce(L, "ReduceMean", x, axes, true, "mean");
  if (subtract_mean_only)
    return final_node ? emit_top(L, "Sub", {x, mean}, {})
                      : emit(L, "Sub", {x, mean}, {}, "centered");
  int d = emit(L, "Sub", {x, mean}, {}, "centered");
  int sq = emit(L, "Mul", {d, d}, {}, "square");
  int var = reduce(L, "ReduceMean", sq, axes, true, "var");
  int den;
  if (eps_outside_sqrt) {
    int sd = emit(L, "Sqrt", {var}, {}, "std");
    den = emit(L, "Add", {sd, scalar(L, "eps", eps)}, {}, "std_eps");
  } else {
    int ve = emit(L, "Add", {var, scalar(L, "eps", eps)}, {}, "var_eps");
    den = emit(L, "Sqrt", {ve}, {}, "std");
  }
  return final_node ? emit_top(L, "Div", {d, den}, {}) : emit(L, "Div", {d, den}, {}, "normalized");
}

// A tensor of shape `s` applied to axes [axis, axis + rank(s)) of a blob of rank `rank`:
// reshaped to s + trailing 1s so that numpy broadcasting lines it up.
int CaffeBuilder::broadcast_operand(CaffeLayer& L, int v, const Shape& s, int axis, int rank,
                                    const std::string& role) {
  const int trailing = rank - axis - static_cast<int>(s.size());
  if (s.empty() || trailing == 0) return v;
  Shape t = s;
  t.insert(t.end(), static_cast<size_t>(trailing), 1);
  const Value& val = g_.values[static_cast<size_t>(v)];
  if (val.is_constant()) return constant(L, role, val.constant.reshaped(t));
  return emit(L, "Reshape", {v, i64s(L, role + "_shape", t)}, {}, role + "_reshape");
}

// ---------------------------------------------------------------------------------------
// checks and blobs

void CaffeBuilder::expect_bottoms(const CaffeLayer& L, int lo, int hi) const {
  int n = static_cast<int>(L.in.size());
  if (n < lo || (hi >= 0 && n > hi)) {
    std::string want = lo == hi ? std::to_string(lo)
                       : hi < 0 ? "at least " + std::to_string(lo)
                                : std::to_string(lo) + " to " + std::to_string(hi);
    fail("bottom", "expects " + want + " bottom blob(s), found " + std::to_string(n));
  }
}

void CaffeBuilder::expect_tops(const CaffeLayer& L, int lo, int hi) const {
  int n = L.p->top_size();
  if (n < lo || (hi >= 0 && n > hi)) {
    std::string want = lo == hi ? std::to_string(lo)
                       : hi < 0 ? "at least " + std::to_string(lo)
                                : std::to_string(lo) + " to " + std::to_string(hi);
    fail("top", "expects " + want + " top blob(s), found " + std::to_string(n));
  }
}

int CaffeBuilder::canonical_axis(int64_t axis, int rank, const std::string& field) const {
  if (axis < -rank || axis >= rank)
    fail(field, "axis " + std::to_string(axis) + " is out of range for a blob of " +
                    std::to_string(rank) + " axes");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

void CaffeBuilder::expect_blobs(const CaffeLayer& L, int n) const {
  int have = blob_count(L);
  if (have == n) return;
  if (have == 0)
    fail("blobs",
         "needs " + std::to_string(n) +
             " parameter blob(s) but none were found (no layer of this name in the "
             "caffemodel" +
             (weights_net_ ? std::string() : std::string(", and no caffemodel was given")) + ")");
  fail("blobs",
       "has " + std::to_string(have) + " parameter blob(s), expected " + std::to_string(n));
}

Tensor CaffeBuilder::blob(const CaffeLayer& L, int i, const Shape& expected,
                          const std::string& role) const {
  const pb::BlobProto& b = L.w->blobs(i);
  const std::string field = "blobs[" + std::to_string(i) + "] (" + role + ")";
  Shape have;
  bool legacy = false;
  if (b.has_shape()) {
    for (int64_t d : b.shape().dim()) have.push_back(d);
  } else if (b.has_num() || b.has_channels() || b.has_height() || b.has_width()) {
    have = {b.num(), b.channels(), b.height(), b.width()};
    legacy = true;
  } else {
    have = {static_cast<int64_t>(std::max(b.data_size(), b.double_data_size()))};
  }
  bool match = false;
  if (legacy) {
    if (expected.size() <= 4) {
      Shape padded(4 - expected.size(), 1);
      padded.insert(padded.end(), expected.begin(), expected.end());
      match = padded == have;
    }
  } else if (b.has_shape()) {
    match = have == expected;
  } else {
    match = have[0] == numel_of(expected);  // shapeless blob: only the count is known
  }
  if (!match)
    fail(field, "blob shape " + dims_str(have) + " does not match the layer, which needs " +
                    dims_str(expected));
  // The value count is checked before allocating: it is bounded by the file's size.
  const int64_t n = numel_of(expected);
  if (b.data_size() != n && b.double_data_size() != n)
    fail(field, "blob holds " + std::to_string(std::max(b.data_size(), b.double_data_size())) +
                    " values, its shape " + dims_str(expected) + " needs " + std::to_string(n));
  Tensor t(DType::f32, expected);
  float* dst = t.data<float>();
  if (b.data_size() == n)
    std::copy(b.data().begin(), b.data().end(), dst);
  else
    for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<float>(b.double_data(static_cast<int>(k)));
  return t;
}

void convert_unary(CaffeBuilder& cb, CaffeLayer& L, const std::string& op, Attributes a) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  cb.emit_top(L, op, {L.in[0]}, std::move(a));
}

}  // namespace anvil::caffe_import
