#include <algorithm>
#include <numeric>
#include <set>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

std::vector<TT> identity(TfBuilder& b) {
  b.need_inputs(1, 1);
  return {b.unary("Identity", b.in[0])};
}

std::vector<TT> identity_n(TfBuilder& b) {
  std::vector<TT> r;
  for (const auto& t : b.in) r.push_back(b.unary("Identity", t));
  return r;
}

std::vector<TT> shape_of(TfBuilder& b) {
  const std::string& op = b.op();
  b.need_inputs(1, 1);
  DType dt = op == "Rank" ? DType::i32 : b.attr_dtype("out_type", anvil_tf::DT_INT32);
  Shape s = b.tf_shape(b.in[0]);
  Tensor t;
  if (op == "Shape") {
    t = Tensor(dt, {static_cast<int64_t>(s.size())});
    for (size_t i = 0; i < s.size(); ++i) t.set(static_cast<int64_t>(i), static_cast<double>(s[i]));
  } else {
    t = Tensor(dt, {});
    t.set(0, static_cast<double>(op == "Rank" ? static_cast<int64_t>(s.size()) : shape_numel(s)));
  }
  return {TT{b.cst(t), {}}};
}

std::vector<TT> shape_n(TfBuilder& b) {
  DType dt = b.attr_dtype("out_type", anvil_tf::DT_INT32);
  std::vector<TT> r;
  for (const auto& t : b.in) {
    Shape s = b.tf_shape(t);
    Tensor c(dt, {static_cast<int64_t>(s.size())});
    for (size_t i = 0; i < s.size(); ++i) c.set(static_cast<int64_t>(i), static_cast<double>(s[i]));
    r.push_back(TT{b.cst(c), {}});
  }
  return r;
}

std::vector<TT> reshape(TfBuilder& b) {
  b.need_inputs(2, 2);
  int v = b.src(b.in[0]);
  auto s = b.const_ints(1, "shape");
  const int64_t n = shape_numel(b.shape(v));
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
  if (unknown >= 0 && known == 0) {
    // TF: with a 0 in the shape, -1 is the input's non-zero dims over the shape's
    int64_t in_nz = 1, sh_nz = 1;
    for (int64_t d : b.shape(v)) in_nz *= d == 0 ? 1 : d;
    for (int64_t d : s) sh_nz *= d <= 0 ? 1 : d;
    s[static_cast<size_t>(unknown)] = in_nz / sh_nz;
  } else if (unknown >= 0) {
    if (known == 0 || n % known != 0)
      fail("shape", "cannot reshape " + shape_str(b.shape(v)) + " to " + ints_str(s));
    s[static_cast<size_t>(unknown)] = n / known;
  } else if (known != n) {
    fail("shape", "cannot reshape " + shape_str(b.shape(v)) + " (" + std::to_string(n) +
                      " elements) to " + ints_str(s));
  }
  return {TT{b.emit1("Reshape", {v, b.i64s(s)},
                     [&] {
                       Attributes a;
                       if (std::find(s.begin(), s.end(), 0) != s.end())
                         a.set("allowzero", int64_t{1});
                       return a;
                     }()),
             {}}};
}

std::vector<TT> squeeze(TfBuilder& b) {
  b.need_inputs(1, 1);
  int v = b.src(b.in[0]);
  const int r = b.rank(v);
  auto dims = b.attr_ints("squeeze_dims", std::vector<int64_t>{});
  if (b.attr("axis") && dims.empty()) dims = b.attr_ints("axis");
  std::vector<int64_t> axes;
  if (dims.empty()) {
    for (int k = 0; k < r; ++k)
      if (b.shape(v)[static_cast<size_t>(k)] == 1) axes.push_back(k);
  } else {
    for (int64_t d : dims) {
      int a = b.axis_of(d, r, "squeeze_dims");
      if (b.shape(v)[static_cast<size_t>(a)] != 1)
        fail("squeeze_dims", "dimension " + std::to_string(d) + " is not 1");
      axes.push_back(a);
    }
  }
  if (axes.empty()) return {b.unary("Identity", TT{v, {}})};
  return {TT{b.emit1("Squeeze", {v, b.i64s(axes)}), {}}};
}

std::vector<TT> expand_dims(TfBuilder& b) {
  b.need_inputs(2, 2);
  int v = b.src(b.in[0]);
  const int r = b.rank(v);
  int64_t a = b.const_int(1, "dim");
  if (a < -r - 1 || a > r) fail("dim", "axis " + std::to_string(a) + " out of range");
  if (a < 0) a += r + 1;
  return {TT{b.emit1("Unsqueeze", {v, b.i64s({a})}), {}}};
}

std::vector<TT> transpose(TfBuilder& b) {
  b.need_inputs(2, 2);
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  auto p = b.const_ints(1, "perm");
  if (static_cast<int>(p.size()) != r)
    fail("perm", "perm " + ints_str(p) + " for a rank-" + std::to_string(r) + " tensor");
  std::vector<bool> seen(static_cast<size_t>(r), false);
  std::vector<int> np;
  for (int64_t q : p) {
    if (q < 0 || q >= r || seen[static_cast<size_t>(q)])
      fail("perm", "not a permutation: " + ints_str(p));
    seen[static_cast<size_t>(q)] = true;
    np.push_back(x.perm.empty() ? static_cast<int>(q) : x.perm[static_cast<size_t>(q)]);
  }
  return {TT{x.v, np}};  // bound through an Identity: no data moves
}

std::vector<TT> pack(TfBuilder& b) {
  if (b.in.empty()) fail("values", "Pack without inputs");
  const int r = b.rank(b.in[0].v);
  int64_t a = b.attr_i("axis", 0);
  if (a < -r - 1 || a > r) fail("axis", "axis " + std::to_string(a) + " out of range");
  if (a < 0) a += r + 1;
  std::vector<int> parts;
  for (const auto& t : b.in) {
    if (b.tf_shape(t) != b.tf_shape(b.in[0])) fail("values", "Pack inputs of different shapes");
    parts.push_back(b.emit1("Unsqueeze", {b.src(t), b.i64s({a})}));
  }
  if (parts.size() == 1) return {TT{parts[0], {}}};
  Attributes ca;
  ca.set("axis", a);
  return {TT{b.emit1("Concat", parts, ca), {}}};
}

std::vector<TT> unpack(TfBuilder& b) {
  b.need_inputs(1, 1);
  int v = b.src(b.in[0]);
  const int r = b.rank(v);
  int ax = b.axis_of(b.attr_i("axis", 0), r, "axis");
  const int64_t num = b.attr_i("num");
  if (num != b.shape(v)[static_cast<size_t>(ax)]) fail("num", "num does not match the dimension");
  if (num < 1 || num > 4096) fail("num", "bad num " + std::to_string(num));
  std::vector<int> outs;
  if (num == 1) {
    outs = {v};
  } else {
    Attributes a;
    a.set("axis", int64_t{ax});
    outs = b.emit("Split", {v, b.i64s(std::vector<int64_t>(static_cast<size_t>(num), 1))}, a,
                  static_cast<int>(num));
  }
  std::vector<TT> r2;
  for (int o : outs) r2.push_back(TT{b.emit1("Squeeze", {o, b.i64s({ax})}), {}});
  return r2;
}

std::vector<TT> fill(TfBuilder& b) {
  b.need_inputs(2, 2);
  auto dims = b.const_ints(0, "dims");
  checked_numel(dims, "dims");
  if (b.rank(b.in[1].v) != 0) fail("value", "value must be a scalar");
  return {TT{b.emit1("Expand", {b.in[1].v, b.i64s(dims)}), {}}};
}

std::vector<TT> zeros_like(TfBuilder& b) {
  const std::string& op = b.op();
  b.need_inputs(1, 1);
  Tensor t(b.dtype(b.in[0].v), b.shape(b.in[0].v));
  if (op == "OnesLike")
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, 1);
  return {TT{b.cst(t), b.in[0].perm}};
}

std::vector<TT> gather(TfBuilder& b) {
  const std::string& op = b.op();
  b.need_inputs(op == "Gather" ? 2 : 3, op == "Gather" ? 2 : 3);
  int p = b.src(b.in[0]);
  int64_t axis = op == "Gather" ? 0 : b.const_int(2, "axis");
  if (b.attr_i("batch_dims", 0) != 0)
    fail("batch_dims", "batch_dims other than 0 is not supported");
  int ax = b.axis_of(axis, b.rank(p), "axis");
  Attributes a;
  a.set("axis", int64_t{ax});
  return {TT{b.emit1("Gather", {p, b.src(b.in[1])}, a), {}}};
}

std::vector<TT> range(TfBuilder& b) {
  b.need_inputs(3, 3);
  std::vector<int> ins;
  for (size_t i = 0; i < 3; ++i)
    ins.push_back(b.cst(b.const_input(i, i == 0 ? "start" : i == 1 ? "limit" : "delta")));
  return {TT{b.emit1("Range", ins), {}}};
}

}  // namespace

void add_shape_converters(ConverterTable& t) {
  t["PlaceholderWithDefault"] = t["Identity"] = t["StopGradient"] = t["Snapshot"] = identity;
  t["PreventGradient"] = t["CheckNumerics"] = t["EnsureShape"] = identity;
  t["IdentityN"] = identity_n;
  t["Shape"] = t["Size"] = t["Rank"] = shape_of;
  t["ShapeN"] = shape_n;
  t["Reshape"] = reshape;
  t["Squeeze"] = squeeze;
  t["ExpandDims"] = expand_dims;
  t["Transpose"] = transpose;
  t["Pack"] = pack;
  t["Unpack"] = unpack;
  t["Fill"] = fill;
  t["ZerosLike"] = t["OnesLike"] = zeros_like;
  t["Gather"] = t["GatherV2"] = gather;
  t["Range"] = range;
  t["NoOp"] = [](TfBuilder&) { return std::vector<TT>{}; };
}

}  // namespace anvil::tf_import
