#include <algorithm>
#include <numeric>
#include <set>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

std::vector<TT> concat(TfBuilder& b, bool v2) {
  if (b.in.size() < 2) fail("input", "Concat needs values and an axis");
  const size_t ai = v2 ? b.in.size() - 1 : 0;
  int64_t axis = b.const_int(ai, "axis");
  std::vector<TT> xs;
  for (size_t i = 0; i < b.in.size(); ++i)
    if (i != ai) xs.push_back(b.in[i]);
  const int r = b.rank(xs[0].v);
  for (const auto& x : xs)
    if (b.rank(x.v) != r) fail("values", "inputs of different ranks");
  int ax = b.axis_of(axis, r, "axis");
  bool same = true;
  for (const auto& x : xs) same &= x.perm == xs[0].perm;
  Attributes a;
  std::vector<int> ins;
  std::vector<int> P;
  if (same) {
    P = xs[0].perm;
    for (const auto& x : xs) ins.push_back(x.v);
    a.set("axis", int64_t{b.canon_axis(xs[0], ax)});
  } else {
    for (const auto& x : xs) ins.push_back(b.src(x));
    a.set("axis", int64_t{ax});
  }
  return {TT{b.emit1("Concat", ins, a), P}};
}

int symmetric_pad(TfBuilder& b, int v, const std::vector<int64_t>& pads) {
  const int r = b.rank(v);
  for (int k = 0; k < r; ++k) {
    const int64_t pb = pads[static_cast<size_t>(k)], pe = pads[static_cast<size_t>(k + r)];
    if (pb == 0 && pe == 0) continue;
    const int64_t d = b.shape(v)[static_cast<size_t>(k)];
    if (pb > d || pe > d) fail("paddings", "SYMMETRIC padding larger than the dimension");
    std::vector<int> parts;
    auto rev = [&](int64_t start, int64_t end) {  // elements start down to end+1 (step -1)
      return b.emit1("Slice", {v, b.i64s({start}), b.i64s({end < 0 ? -d - 1 : end}), b.i64s({k}),
                               b.i64s({-1})});
    };
    if (pb > 0) parts.push_back(rev(pb - 1, -1));
    parts.push_back(v);
    if (pe > 0) parts.push_back(rev(d - 1, d - pe - 1));
    Attributes a;
    a.set("axis", int64_t{k});
    v = b.emit1("Concat", parts, a);
  }
  return v;
}

std::vector<TT> pad(TfBuilder& b, const std::string& mode) {
  const bool v2 = b.n->op() == "PadV2";
  b.need_inputs(v2 ? 3 : 2, v2 ? 3 : 2);
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  auto p = b.const_ints(1, "paddings");
  if (static_cast<int>(p.size()) != 2 * r)
    fail("paddings", "paddings must be (" + std::to_string(r) + ", 2), found " +
                         std::to_string(p.size()) + " values");
  std::vector<int64_t> pads(static_cast<size_t>(2 * r));
  for (int i = 0; i < r; ++i) {
    const int c = b.canon_axis(x, i);
    pads[static_cast<size_t>(c)] = p[static_cast<size_t>(2 * i)];
    pads[static_cast<size_t>(c + r)] = p[static_cast<size_t>(2 * i + 1)];
  }
  for (int64_t q : pads)
    if (q < 0) fail("paddings", "negative padding in " + ints_str(p));
  if (mode == "SYMMETRIC") return {TT{symmetric_pad(b, x.v, pads), x.perm}};
  std::vector<int> ins{x.v, b.i64s(pads)};
  Attributes a;
  if (mode == "REFLECT") {
    a.set("mode", std::string("reflect"));
    for (int i = 0; i < r; ++i)
      if (pads[static_cast<size_t>(i)] >= b.shape(x.v)[static_cast<size_t>(i)] ||
          pads[static_cast<size_t>(i + r)] >= b.shape(x.v)[static_cast<size_t>(i)])
        fail("paddings", "REFLECT padding must be smaller than the dimension");
  } else {
    a.set("mode", std::string("constant"));
    if (v2) {
      Tensor cv = b.const_input(2, "constant_values");
      if (cv.numel() != 1) fail("constant_values", "constant_values must be a scalar");
      ins.push_back(b.cst(cv.reshaped({}).to(b.dtype(x.v))));
    }
  }
  return {TT{b.emit1("Pad", ins, a), x.perm}};
}

std::vector<TT> mirror_pad(TfBuilder& b) {
  std::string mode = b.attr_s("mode");
  if (mode != "REFLECT" && mode != "SYMMETRIC")
    fail("mode", "unknown MirrorPad mode '" + mode + "'");
  return pad(b, mode);
}

std::vector<TT> strided_slice(TfBuilder& b) {
  b.need_inputs(4, 4);
  const TT& x = b.in[0];
  Shape xs = b.tf_shape(x);
  auto begin = b.const_ints(1, "begin"), e = b.const_ints(2, "end"), s = b.const_ints(3, "strides");
  tf::StridedSliceSpec sp;
  try {
    sp = tf::strided_slice(xs, begin, e, s, b.attr_i("begin_mask", 0), b.attr_i("end_mask", 0),
                           b.attr_i("ellipsis_mask", 0), b.attr_i("new_axis_mask", 0),
                           b.attr_i("shrink_axis_mask", 0));
  } catch (const Error& err) {
    fail(err.field(), err.message());
  }
  int v = b.src(x);
  std::vector<int64_t> axes;
  std::vector<int64_t> st, en, stp;
  for (size_t k = 0; k < xs.size(); ++k) {
    if (sp.starts[k] == 0 && sp.steps[k] == 1 && sp.ends[k] >= xs[k]) continue;
    axes.push_back(static_cast<int64_t>(k));
    st.push_back(sp.starts[k]);
    en.push_back(sp.ends[k]);
    stp.push_back(sp.steps[k]);
  }
  if (!axes.empty()) v = b.emit1("Slice", {v, b.i64s(st), b.i64s(en), b.i64s(axes), b.i64s(stp)});
  v = b.reshape(v, sp.final_shape);
  return {TT{v, {}}};
}

std::vector<TT> slice(TfBuilder& b) {
  b.need_inputs(3, 3);
  const TT& x = b.in[0];
  Shape xs = b.tf_shape(x);
  auto bg = b.const_ints(1, "begin"), sz = b.const_ints(2, "size");
  if (bg.size() != xs.size() || sz.size() != xs.size())
    fail("begin", "begin and size must have " + std::to_string(xs.size()) + " values");
  std::vector<int64_t> st, en, axes;
  for (size_t i = 0; i < xs.size(); ++i) {
    int64_t e = sz[i] == -1 ? xs[i] : bg[i] + sz[i];
    if (bg[i] < 0 || bg[i] > xs[i] || sz[i] < -1 || e > xs[i])
      fail("size", "slice [" + std::to_string(bg[i]) + ", " + std::to_string(e) +
                       ") out of range for dim " + std::to_string(i) + " of size " +
                       std::to_string(xs[i]));
    st.push_back(bg[i]);
    en.push_back(e);
    axes.push_back(b.canon_axis(x, static_cast<int>(i)));
  }
  return {TT{b.emit1("Slice", {x.v, b.i64s(st), b.i64s(en), b.i64s(axes)}), x.perm}};
}

std::vector<TT> split(TfBuilder& b, bool v) {
  b.need_inputs(v ? 3 : 2, v ? 3 : 2);
  const TT& x = v ? b.in[0] : b.in[1];
  const int64_t num = b.attr_i("num_split");
  const int r = b.rank(x.v);
  int ax = b.axis_of(b.const_int(v ? 2 : 0, "axis"), r, "axis");
  const int64_t d = b.tf_shape(x)[static_cast<size_t>(ax)];
  if (num < 1 || num > 4096) fail("num_split", "bad num_split " + std::to_string(num));
  std::vector<int64_t> sizes;
  if (v) {
    sizes = b.const_ints(1, "size_splits");
    if (static_cast<int64_t>(sizes.size()) != num)
      fail("size_splits", "size_splits must have num_split values");
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
    if (d % num != 0)
      fail("num_split",
           "dimension " + std::to_string(d) + " not divisible by " + std::to_string(num));
    sizes.assign(static_cast<size_t>(num), d / num);
  }
  Attributes a;
  a.set("axis", int64_t{b.canon_axis(x, ax)});
  auto outs = b.emit("Split", {x.v, b.i64s(sizes)}, a, static_cast<int>(num));
  std::vector<TT> r2;
  for (int o : outs) r2.push_back(TT{o, x.perm});
  return r2;
}

std::vector<TT> tile(TfBuilder& b) {
  b.need_inputs(2, 2);
  const TT& x = b.in[0];
  const int r = b.rank(x.v);
  auto m = b.const_ints(1, "multiples");
  if (static_cast<int>(m.size()) != r)
    fail("multiples", "multiples must have " + std::to_string(r) + " values");
  std::vector<int64_t> rep(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    if (m[static_cast<size_t>(i)] < 0) fail("multiples", "negative multiple");
    rep[static_cast<size_t>(b.canon_axis(x, i))] = m[static_cast<size_t>(i)];
  }
  return {TT{b.emit1("Tile", {x.v, b.i64s(rep)}), x.perm}};
}

}  // namespace

void add_slice_converters(ConverterTable& t) {
  t["ConcatV2"] = [](TfBuilder& b) { return concat(b, true); };
  t["Concat"] = [](TfBuilder& b) { return concat(b, false); };
  t["Split"] = [](TfBuilder& b) { return split(b, false); };
  t["SplitV"] = [](TfBuilder& b) { return split(b, true); };
  t["Slice"] = slice;
  t["StridedSlice"] = strided_slice;
  t["Pad"] = t["PadV2"] = [](TfBuilder& b) { return pad(b, "CONSTANT"); };
  t["MirrorPad"] = mirror_pad;
  t["Tile"] = tile;
}

}  // namespace anvil::tf_import
