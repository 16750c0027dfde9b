#include "import/tensorflow/tf_builder.h"

#include <algorithm>
#include <numeric>

#include "anvil/error.h"

namespace anvil::tf_import {

void fail(const std::string& field, const std::string& message) {
  throw Error(message, {}, {}, field);
}

// ------------------------------------------------------------------------------ dtypes

bool dtype_from_tf(int tf, DType& out) {
  switch (tf) {
    case anvil_tf::DT_FLOAT:
      out = DType::f32;
      return true;
    case anvil_tf::DT_DOUBLE:
      out = DType::f64;
      return true;
    case anvil_tf::DT_HALF:
      out = DType::f16;
      return true;
    case anvil_tf::DT_BFLOAT16:
      out = DType::bf16;
      return true;
    case anvil_tf::DT_INT8:
      out = DType::i8;
      return true;
    case anvil_tf::DT_UINT8:
      out = DType::u8;
      return true;
    case anvil_tf::DT_INT16:
      out = DType::i16;
      return true;
    case anvil_tf::DT_INT32:
      out = DType::i32;
      return true;
    case anvil_tf::DT_INT64:
      out = DType::i64;
      return true;
    case anvil_tf::DT_BOOL:
      out = DType::boolean;
      return true;
    default:
      return false;
  }
}

std::string tf_type_name(int tf) {
  if (anvil_tf::DataType_IsValid(tf))
    return anvil_tf::DataType_Name(static_cast<anvil_tf::DataType>(tf));
  return "type code " + std::to_string(tf);
}

Tensor tensor_from_proto(const anvil_tf::TensorProto& p, const std::string& field) {
  DType dt;
  if (!dtype_from_tf(p.dtype(), dt))
    fail(field, "tensor of dtype " + tf_type_name(p.dtype()) + " is not supported");
  if (p.tensor_shape().unknown_rank()) fail(field, "tensor with unknown rank");
  Shape shape;
  for (const auto& d : p.tensor_shape().dim()) {
    if (d.size() < 0)
      fail(field, "tensor with an unknown dimension (" + std::to_string(d.size()) + ")");
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

// ------------------------------------------------------------------------------ attributes

const anvil_tf::AttrValue* TfBuilder::typed_attr(const std::string& name,
                                                 anvil_tf::AttrValue::ValueCase kind,
                                                 const char* what, bool has_default) const {
  const auto* a = attr(name);
  if (!a) {
    if (has_default) return nullptr;
    fail(name, "attribute '" + name + "' is missing");
  }
  if (a->value_case() != kind) fail(name, "attribute '" + name + "' is not " + what);
  return a;
}
int64_t TfBuilder::attr_i(const std::string& name, std::optional<int64_t> dflt) const {
  const auto* a = typed_attr(name, anvil_tf::AttrValue::kI, "an int", dflt.has_value());
  return a ? a->i() : *dflt;
}
double TfBuilder::attr_f(const std::string& name, std::optional<double> dflt) const {
  const auto* a = typed_attr(name, anvil_tf::AttrValue::kF, "a float", dflt.has_value());
  return a ? static_cast<double>(a->f()) : *dflt;
}
bool TfBuilder::attr_b(const std::string& name, bool dflt) const {
  const auto* a = typed_attr(name, anvil_tf::AttrValue::kB, "a bool", true);
  return a ? a->b() : dflt;
}
std::string TfBuilder::attr_s(const std::string& name, std::optional<std::string> dflt) const {
  const auto* a = typed_attr(name, anvil_tf::AttrValue::kS, "a string", dflt.has_value());
  return a ? a->s() : *dflt;
}
std::vector<int64_t> TfBuilder::attr_ints(const std::string& name,
                                          std::optional<std::vector<int64_t>> dflt) const {
  const auto* a = typed_attr(name, anvil_tf::AttrValue::kList, "a list", dflt.has_value());
  return a ? std::vector<int64_t>(a->list().i().begin(), a->list().i().end()) : *dflt;
}
int TfBuilder::attr_type(const std::string& name, std::optional<int> dflt) const {
  const auto* a = typed_attr(name, anvil_tf::AttrValue::kType, "a type", dflt.has_value());
  return a ? a->type() : *dflt;
}
DType TfBuilder::attr_dtype(const std::string& name, std::optional<int> dflt) const {
  int t = attr_type(name, dflt);
  DType d;
  if (!dtype_from_tf(t, d)) fail(name, "dtype " + tf_type_name(t) + " is not supported");
  return d;
}

// ------------------------------------------------------------------------------ values

const Tensor* TfBuilder::const_of(int v) const {
  if (v < 0) return nullptr;
  if (val(v).is_constant()) return &val(v).constant;
  auto it = known_.find(v);
  return it == known_.end() ? nullptr : &it->second;
}

Tensor TfBuilder::const_input(size_t i, const std::string& what) {
  if (i >= in.size()) fail(what, "input " + std::to_string(i) + " (" + what + ") is missing");
  const Tensor* t = const_of(in[i].v);
  if (!t)
    fail(what, "input " + std::to_string(i) + " '" + in_names[i] + "' (" + what +
                   ") must be a constant or computed from constants");
  if (in[i].perm.empty() || is_identity_perm(in[i].perm)) return *t;
  return transpose(*t, in[i].perm);
}

std::vector<int64_t> TfBuilder::const_ints(size_t i, const std::string& what) {
  Tensor t = const_input(i, what);
  if (!is_integer(t.dtype()))
    fail(what, "input '" + what + "' must be integer, found " + dtype_name(t.dtype()));
  return t.to_int64s();
}

int64_t TfBuilder::const_int(size_t i, const std::string& what) {
  auto v = const_ints(i, what);
  if (v.size() != 1)
    fail(what, "input '" + what + "' must be a single integer, found " + ints_str(v));
  return v[0];
}

int TfBuilder::scalar(DType dt, double x) {
  Tensor t(dt, Shape{});
  t.set(0, x);
  return cst(t);
}

int TfBuilder::cast(int v, DType to) {
  Attributes c;
  c.set("to", onnx_dtype_code(to));
  return emit1("Cast", {v}, c);
}

int TfBuilder::reshape(int v, const Shape& s) {
  if (shape(v) == s) return v;
  Attributes a;
  if (std::find(s.begin(), s.end(), 0) != s.end()) a.set("allowzero", int64_t{1});
  return emit1("Reshape", {v, i64s(s)}, a);
}

// Evaluates a node at import when every input is known and the result is small.
void TfBuilder::fold(int ni) {
  const Node& node = g.nodes[static_cast<size_t>(ni)];
  int64_t total = 0;
  for (int o : node.outputs) total += checked_numel(shape(o), "shape");
  const OpDef* def = OpRegistry::global().find(node.op);
  if (!def || !def->foldable || total > kMaxFoldElements) return;
  std::vector<Tensor> vals;
  for (int i : node.inputs) {
    if (i < 0) {
      vals.emplace_back();
      continue;
    }
    const Tensor* t = const_of(i);
    if (!t) return;
    vals.push_back(*t);
  }
  try {
    auto r = evaluate_node(g, node, vals);
    for (size_t k = 0; k < node.outputs.size() && k < r.size(); ++k) known_[node.outputs[k]] = r[k];
  } catch (const Error&) {
    // not evaluable here; the session reports it when it runs the node
  }
}

// ------------------------------------------------------------------------------ layouts

int TfBuilder::axis_of(int64_t axis, int r, const std::string& field) const {
  if (axis < -r || axis >= std::max(r, 1))
    fail(field, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(r));
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

std::vector<int> TfBuilder::reduced_perm(const TT& t, const std::vector<int>& kept) const {
  if (t.perm.empty()) return {};
  std::vector<int> ca;
  for (int k : kept) ca.push_back(t.perm[static_cast<size_t>(k)]);
  std::vector<int> sorted = ca;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int> p;
  for (int c : ca)
    p.push_back(static_cast<int>(std::find(sorted.begin(), sorted.end(), c) - sorted.begin()));
  return is_identity_perm(p) ? std::vector<int>{} : p;
}

int TfBuilder::align(const TT& t, const std::vector<int>& P, int r) {
  const int rt = rank(t.v);
  const std::vector<int>& tp = t.perm;
  bool same = rt == r && (tp == P || (tp.empty() && is_identity_perm(P)) ||
                          (P.empty() && is_identity_perm(tp)));
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

TT TfBuilder::elementwise(const std::string& op, const std::vector<TT>& xs, Attributes a) {
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

void TfBuilder::need_inputs(size_t lo, size_t hi) const {
  if (in.size() < lo || in.size() > hi)
    fail("input",
         std::to_string(in.size()) + " inputs, " + n->op() + " takes " +
             (lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi)));
}
bool TfBuilder::channels_last_format(const std::string& dflt) const {
  std::string df = attr_s("data_format", dflt);
  if (df == "NHWC" || df == "NWC" || df == "NDHWC") return true;
  if (df == "NCHW" || df == "NCW" || df == "NCDHW") return false;
  fail("data_format", "unknown data_format '" + df + "'");
}

}  // namespace anvil::tf_import
