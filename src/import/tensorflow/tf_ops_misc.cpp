// More TF ops, lowered to canonical ops in TF's own layout: GatherNd, Scatter{Update,Add,Sub,
// Mul,Div,Max,Min} on a frozen variable (ScatterND on the first dimension), BroadcastArgs,
// InvertPermutation, Empty, ParallelConcat, InTopKV2, NthElement, Bincount,
// HistogramFixedWidth, CompareAndBitpack, ExtractImagePatches,
// (Sparse)SoftmaxCrossEntropyWithLogits.
#include <algorithm>
#include <cmath>

#include "anvil/error.h"
#include "import/common/padding.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

TT plain(int v) { return TT{v, {}}; }

Attributes with_int(const char* k, int64_t v) {
  Attributes a;
  a.set(k, v);
  return a;
}

std::vector<TT> gather_nd(TfBuilder& b) {
  b.need_inputs(2, 2);
  return {plain(b.emit1("GatherND", {b.src(b.in[0]), b.src(b.in[1])}))};
}

// Scatter*(ref, indices, updates): rows ref[indices[i]] updated by updates[i]
std::vector<TT> scatter_rows(TfBuilder& b, const std::string& how) {
  b.need_inputs(3, 3);
  int ref = b.src(b.in[0]), upd = b.src(b.in[2]);
  int ind = b.src(b.in[1]);
  Shape is = b.shape(ind);
  is.push_back(1);
  ind = b.reshape(ind, is);
  std::string red = how;
  if (how == "update") red = "none";
  if (how == "sub") {
    upd = b.emit1("Neg", {upd});
    red = "add";
  }
  if (how == "div") {
    if (!is_float(b.dtype(upd))) fail("T", "integer ScatterDiv is not supported");
    upd = b.emit1("Reciprocal", {upd});
    red = "mul";
  }
  Attributes a;
  a.set("reduction", red);
  return {plain(b.emit1("ScatterND", {ref, ind, upd}, a))};
}

std::vector<TT> broadcast_args(TfBuilder& b) {
  b.need_inputs(2, 2);
  auto s0 = b.const_ints(0, "s0"), s1 = b.const_ints(1, "s1");
  const size_t r = std::max(s0.size(), s1.size());
  std::vector<int64_t> out(r, 1);
  for (size_t i = 0; i < r; ++i) {
    const int64_t a = i < r - s0.size() ? 1 : s0[i - (r - s0.size())];
    const int64_t c = i < r - s1.size() ? 1 : s1[i - (r - s1.size())];
    if (a != c && a != 1 && c != 1)
      fail("s1", "shapes " + ints_str(s0) + " and " + ints_str(s1) + " do not broadcast");
    out[i] = a == 1 ? c : a;
  }
  Tensor t(b.dtype(b.in[0].v), {static_cast<int64_t>(r)});
  for (size_t i = 0; i < r; ++i) t.set(static_cast<int64_t>(i), static_cast<double>(out[i]));
  return {plain(b.cst(t))};
}

std::vector<TT> invert_permutation(TfBuilder& b) {
  b.need_inputs(1, 1);
  if (!b.is_const(b.in[0])) {
    // at run time: y[x[i]] = i is the argsort of the permutation x (not checked to be one)
    int x = b.src(b.in[0]);
    if (b.rank(x) != 1) fail("x", "x must be 1-D");
    Attributes a;
    a.set("axis", int64_t{-1});
    a.set("largest", int64_t{0});
    a.set("sorted", int64_t{1});
    auto tk = b.emit("TopK", {x, b.i64s({b.shape(x)[0]})}, a, 2);
    return {plain(b.cast(tk[1], b.dtype(x)))};
  }
  auto p = b.const_ints(0, "x");
  const int64_t n = static_cast<int64_t>(p.size());
  Tensor t(b.dtype(b.in[0].v), {n});
  std::vector<bool> seen(p.size(), false);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = p[static_cast<size_t>(i)];
    if (v < 0 || v >= n || seen[static_cast<size_t>(v)])
      fail("x", ints_str(p) + " is not a permutation");
    seen[static_cast<size_t>(v)] = true;
    t.set(v, static_cast<double>(i));
  }
  return {plain(b.cst(t))};
}

std::vector<TT> empty(TfBuilder& b) {
  // Empty's contents are unspecified unless init is set; Anvil gives zeros either way
  b.need_inputs(1, 1);
  auto s = b.const_ints(0, "shape");
  for (int64_t d : s)
    if (d < 0) fail("shape", "negative dimension in " + ints_str(s));
  checked_numel(s, "shape");
  return {plain(b.cst(Tensor(b.attr_dtype("dtype"), s)))};
}

std::vector<TT> parallel_concat(TfBuilder& b) {
  if (b.in.empty()) fail("values", "ParallelConcat without inputs");
  std::vector<int> vs;
  for (const auto& t : b.in) vs.push_back(b.src(t));
  if (vs.size() == 1) return {plain(vs[0])};
  return {plain(b.emit1("Concat", vs, with_int("axis", 0)))};
}

// InTopKV2: targets[i]'s prediction is among the k largest of row i (fewer than k predictions
// are strictly larger), and finite.
std::vector<TT> in_top_k(TfBuilder& b) {
  b.need_inputs(3, 3);
  int p = b.src(b.in[0]), t = b.src(b.in[1]);
  if (b.rank(p) != 2 || b.rank(t) != 1) fail("predictions", "needs predictions [batch, classes]");
  const int64_t k = b.const_int(2, "k");
  int ti = b.reshape(t, {b.shape(t)[0], 1});
  int pt = b.emit1("GatherElements", {p, ti}, with_int("axis", 1));  // [batch, 1]
  int gt = b.cast(b.emit1("Greater", {p, pt}), DType::i64);
  int cnt = b.emit1("ReduceSum", {gt, b.i64s({1})}, with_int("keepdims", 0));
  int ok = b.emit1("Less", {cnt, b.scalar(DType::i64, static_cast<double>(k))});
  int ptv = b.reshape(pt, {b.shape(t)[0]});
  int fin = b.emit1("Not", {b.emit1("Or", {b.emit1("IsNaN", {ptv}), b.emit1("IsInf", {ptv})})});
  return {plain(b.emit1("And", {ok, fin}))};
}

std::vector<TT> nth_element(TfBuilder& b) {
  b.need_inputs(2, 2);
  int x = b.src(b.in[0]);
  const int64_t n = b.const_int(1, "n");
  if (b.rank(x) < 1 || n < 0 || n >= b.shape(x).back())
    fail("n", "n = " + std::to_string(n) + " out of range for " + shape_str(b.shape(x)));
  const bool rev = b.attr_b("reverse", false);
  Attributes a;
  a.set("axis", int64_t{-1});
  a.set("largest", int64_t{rev ? 1 : 0});
  a.set("sorted", int64_t{1});
  auto tk = b.emit("TopK", {x, b.i64s({n + 1})}, a, 2);
  int last = b.emit1("Slice", {tk[0], b.i64s({n}), b.i64s({n + 1}), b.i64s({-1})});
  Shape s = b.shape(x);
  s.pop_back();
  return {plain(b.reshape(last, s))};
}

std::vector<TT> bincount(TfBuilder& b) {
  b.need_inputs(3, 3);
  int arr = b.src(b.in[0]);
  const int64_t size = b.const_int(1, "size");
  if (size < 0) fail("size", "negative size");
  int w = b.src(b.in[2]);
  const DType wt = b.dtype(w);
  if (shape_numel(b.shape(w)) == 0) {
    Tensor ones(wt, b.shape(arr));
    for (int64_t i = 0; i < ones.numel(); ++i) ones.set(i, 1);
    w = b.cst(ones);
  } else if (b.shape(w) != b.shape(arr)) {
    fail("weights", "weights must be empty or have arr's shape");
  }
  Attributes a;
  a.set("mode", std::string("sum"));
  return {plain(b.emit1("SegmentReduce",
                        {b.reshape(w, {shape_numel(b.shape(w))}),
                         b.reshape(arr, {shape_numel(b.shape(arr))}), b.i64s({size})},
                        a))};
}

std::vector<TT> histogram(TfBuilder& b) {
  b.need_inputs(3, 3);
  int v = b.src(b.in[0]);
  Tensor range = b.const_input(1, "value_range");
  const int64_t nbins = b.const_int(2, "nbins");
  if (range.numel() != 2 || nbins < 1) fail("nbins", "needs value_range of 2 values, nbins >= 1");
  const double lo = range.get(0), hi = range.get(1);
  const double step = (hi - lo) / static_cast<double>(nbins);
  int x = b.cast(b.reshape(v, {shape_numel(b.shape(v))}), DType::f64);
  int idx = b.emit1("Floor", {b.emit1("Div", {b.emit1("Sub", {x, b.scalar(DType::f64, lo)}),
                                              b.scalar(DType::f64, step)})});
  idx = b.emit1(
      "Clip", {idx, b.scalar(DType::f64, 0), b.scalar(DType::f64, static_cast<double>(nbins - 1))});
  idx = b.cast(idx, DType::i64);
  const DType ot = b.attr_dtype("dtype", anvil_tf::DT_INT32);
  Tensor ones(ot, b.shape(x));
  for (int64_t i = 0; i < ones.numel(); ++i) ones.set(i, 1);
  Attributes a;
  a.set("mode", std::string("sum"));
  return {plain(b.emit1("SegmentReduce", {b.cst(ones), idx, b.i64s({nbins})}, a))};
}

std::vector<TT> compare_and_bitpack(TfBuilder& b) {
  b.need_inputs(2, 2);
  int x = b.src(b.in[0]);
  Shape s = b.shape(x);
  if (s.empty() || s.back() % 8 != 0)
    fail("input", "the last dimension must be a multiple of 8, found " + shape_str(s));
  // bool input: the bits are the values themselves (TF ignores the threshold)
  int bits = b.dtype(x) == DType::boolean
                 ? b.cast(x, DType::i32)
                 : b.cast(b.emit1("Greater", {x, b.src(b.in[1])}), DType::i32);
  Shape s8 = s;
  s8.back() /= 8;
  s8.push_back(8);
  Tensor w(DType::i32, {8});
  for (int64_t i = 0; i < 8; ++i) w.set(i, static_cast<double>(128 >> i));
  int sum = b.emit1("ReduceSum", {b.emit1("Mul", {b.reshape(bits, s8), b.cst(w)}), b.i64s({-1})},
                    with_int("keepdims", 0));
  return {plain(b.cast(sum, DType::u8))};
}

// ExtractImagePatches: output [N, oh, ow, kh * kw * C], the patch in (row, col, channel) order.
std::vector<TT> extract_patches(TfBuilder& b) {
  b.need_inputs(1, 1);
  int x = b.src(b.in[0]);
  Shape xs = b.shape(x);
  if (xs.size() != 4) fail("images", "images must be 4-D NHWC");
  auto ks = b.attr_ints("ksizes"), st = b.attr_ints("strides"), rt = b.attr_ints("rates");
  if (ks.size() != 4 || st.size() != 4 || rt.size() != 4)
    fail("ksizes", "ksizes, strides and rates must have 4 values");
  const std::string padding = b.attr_s("padding");
  int64_t oh = 0, ow = 0;
  std::vector<int64_t> pads(8, 0);
  for (int d = 1; d <= 2; ++d) {
    const int64_t keff = (ks[static_cast<size_t>(d)] - 1) * rt[static_cast<size_t>(d)] + 1;
    const int64_t in = xs[static_cast<size_t>(d)], s = st[static_cast<size_t>(d)];
    int64_t o = 0;
    if (padding == "SAME") {
      o = (in + s - 1) / s;
      const imp::Pads p =
          imp::same_pads(in, ks[static_cast<size_t>(d)], s, rt[static_cast<size_t>(d)]);
      pads[static_cast<size_t>(d)] = p.begin;
      pads[static_cast<size_t>(d) + 4] = p.end;
    } else if (padding == "VALID") {
      o = in < keff ? 0 : (in - keff) / s + 1;
    } else {
      fail("padding", "unknown padding '" + padding + "'");
    }
    (d == 1 ? oh : ow) = o;
  }
  if (oh < 1 || ow < 1) fail("ksizes", "patches larger than the image");
  int xp = x;
  if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; }))
    xp = b.emit1("Pad", {x, b.i64s(pads), b.scalar(b.dtype(x), 0)});
  std::vector<int> parts;
  for (int64_t i = 0; i < ks[1]; ++i)
    for (int64_t j = 0; j < ks[2]; ++j) {
      const int64_t y0 = i * rt[1], x0 = j * rt[2];
      parts.push_back(b.emit1(
          "Slice",
          {xp, b.i64s({y0, x0}), b.i64s({y0 + (oh - 1) * st[1] + 1, x0 + (ow - 1) * st[2] + 1}),
           b.i64s({1, 2}), b.i64s({st[1], st[2]})}));
    }
  if (parts.size() == 1) return {plain(parts[0])};
  return {plain(b.emit1("Concat", parts, with_int("axis", 3)))};
}

// Unique / UniqueWithCounts / ListDiff: the result's size depends on the values, so the inputs
// must be known at import; the results are then constants (first-occurrence order, as TF).
std::vector<TT> unique(TfBuilder& b) {
  b.need_inputs(1, 1);
  Tensor x = b.const_input(0, "x");
  if (x.rank() != 1) fail("x", "x must be 1-D");
  const DType it = b.attr_dtype("out_idx", anvil_tf::DT_INT32);
  std::vector<int64_t> first, count;
  Tensor idx(it, {x.numel()});
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t k = 0;
    while (k < static_cast<int64_t>(first.size()) &&
           x.get(first[static_cast<size_t>(k)]) != x.get(i))
      ++k;
    if (k == static_cast<int64_t>(first.size())) {
      first.push_back(i);
      count.push_back(0);
    }
    ++count[static_cast<size_t>(k)];
    idx.set(i, static_cast<double>(k));
  }
  const int64_t n = static_cast<int64_t>(first.size());
  Tensor y(x.dtype(), {n}), c(it, {n});
  for (int64_t k = 0; k < n; ++k) {
    y.set(k, x.get(first[static_cast<size_t>(k)]));
    c.set(k, static_cast<double>(count[static_cast<size_t>(k)]));
  }
  std::vector<TT> r{plain(b.cst(y)), plain(b.cst(idx))};
  if (b.op() == "UniqueWithCounts") r.push_back(plain(b.cst(c)));
  return r;
}

std::vector<TT> list_diff(TfBuilder& b) {
  b.need_inputs(2, 2);
  Tensor x = b.const_input(0, "x"), y = b.const_input(1, "y");
  if (x.rank() != 1 || y.rank() != 1) fail("x", "x and y must be 1-D");
  const DType it = b.attr_dtype("out_idx", anvil_tf::DT_INT32);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < x.numel(); ++i) {
    bool found = false;
    for (int64_t j = 0; j < y.numel() && !found; ++j) found = x.get(i) == y.get(j);
    if (!found) keep.push_back(i);
  }
  const int64_t n = static_cast<int64_t>(keep.size());
  Tensor out(x.dtype(), {n}), idx(it, {n});
  for (int64_t k = 0; k < n; ++k) {
    out.set(k, x.get(keep[static_cast<size_t>(k)]));
    idx.set(k, static_cast<double>(keep[static_cast<size_t>(k)]));
  }
  return {plain(b.cst(out)), plain(b.cst(idx))};
}

// RaggedRange(starts, limits, deltas) -> (nested row splits, dense values), on values known at
// import (scalars broadcast against vectors, as TF).
std::vector<TT> ragged_range(TfBuilder& b) {
  b.need_inputs(3, 3);
  Tensor st = b.const_input(0, "starts"), li = b.const_input(1, "limits"),
         de = b.const_input(2, "deltas");
  int64_t n = 1;
  for (const Tensor* t : {&st, &li, &de}) {
    if (t->rank() > 1) fail("starts", "starts, limits and deltas must be scalars or vectors");
    if (t->rank() == 1) {
      if (n != 1 && t->numel() != n) fail("limits", "starts, limits and deltas differ in size");
      n = t->numel();
    }
  }
  auto at = [](const Tensor& t, int64_t i) { return t.get(t.rank() == 1 ? i : 0); };
  const bool fl = is_float(st.dtype());
  std::vector<int64_t> splits{0};
  std::vector<double> vals;
  for (int64_t i = 0; i < n; ++i) {
    const double s0 = at(st, i), l0 = at(li, i), d0 = at(de, i);
    if (d0 == 0) fail("deltas", "deltas must be non-zero");
    int64_t cnt = 0;
    if ((d0 > 0 && l0 > s0) || (d0 < 0 && l0 < s0))
      cnt = fl ? static_cast<int64_t>(std::ceil(std::fabs((l0 - s0) / d0)))
               : (static_cast<int64_t>(std::fabs(l0 - s0)) + static_cast<int64_t>(std::fabs(d0)) -
                  1) /
                     static_cast<int64_t>(std::fabs(d0));
    checked_numel({static_cast<int64_t>(vals.size()) + cnt}, "limits");
    for (int64_t k = 0; k < cnt; ++k) vals.push_back(s0 + static_cast<double>(k) * d0);
    splits.push_back(splits.back() + cnt);
  }
  Tensor sp(b.attr_dtype("Tsplits", anvil_tf::DT_INT64), {n + 1});
  for (int64_t i = 0; i <= n; ++i) sp.set(i, static_cast<double>(splits[static_cast<size_t>(i)]));
  Tensor v(st.dtype(), {static_cast<int64_t>(vals.size())});
  for (size_t i = 0; i < vals.size(); ++i) v.set(static_cast<int64_t>(i), vals[i]);
  return {plain(b.cst(sp)), plain(b.cst(v))};
}

// SparseTensorDenseAdd(a_indices, a_values, a_shape, b): b with the sparse tensor a added.
std::vector<TT> sparse_dense_add(TfBuilder& b) {
  b.need_inputs(4, 4);
  int ind = b.src(b.in[0]), vals = b.src(b.in[1]), dense = b.src(b.in[3]);
  if (b.dtype(vals) != b.dtype(dense)) fail("a_values", "a_values and b differ in dtype");
  auto shape = b.const_ints(2, "a_shape");
  if (Shape(shape.begin(), shape.end()) != b.shape(dense))
    fail("a_shape",
         "a_shape " + ints_str(shape) + " differs from b's " + shape_str(b.shape(dense)));
  Attributes a;
  a.set("reduction", std::string("add"));
  return {plain(b.emit1("ScatterND", {dense, ind, vals}, a))};
}

// SoftmaxCrossEntropyWithLogits(features, labels) -> loss [batch], backprop [batch, classes];
// the sparse form takes class indices. Forward values as TF defines them: loss = -sum(labels *
// log_softmax(features)), backprop = softmax(features) - labels.
std::vector<TT> softmax_xent(TfBuilder& b, bool sparse) {
  b.need_inputs(2, 2);
  int f = b.src(b.in[0]), l = b.src(b.in[1]);
  if (b.rank(f) != 2) fail("features", "features must be 2-D [batch, classes]");
  const Shape fs = b.shape(f);
  const DType dt = b.dtype(f);
  if (sparse) {
    if (b.rank(l) != 1 || b.shape(l)[0] != fs[0]) fail("labels", "labels must be [batch]");
    // an index outside [0, classes) gives NaN in TF; OneHot leaves that row all 0 here
    int vals = b.cst([&] {
      Tensor t(dt, {2});
      t.set(1, 1);
      return t;
    }());
    l = b.emit1("OneHot", {l, b.i64s({fs[1]}), vals}, with_int("axis", -1));
  } else if (b.shape(l) != fs) {
    int e = b.emit1("Expand", {l, b.i64s(fs)});
    l = e;
  }
  int ls = b.emit1("LogSoftmax", {f}, with_int("axis", -1));
  int loss = b.emit1("Neg", {b.emit1("ReduceSum", {b.emit1("Mul", {l, ls}), b.i64s({-1})},
                                     with_int("keepdims", 0))});
  int back = b.emit1("Sub", {b.emit1("Softmax", {f}, with_int("axis", -1)), l});
  return {plain(loss), plain(back)};
}

}  // namespace

void add_misc_converters(ConverterTable& t) {
  t["GatherNd"] = gather_nd;
  for (const char* how : {"Update", "Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    std::string h(how);
    std::transform(h.begin(), h.end(), h.begin(), ::tolower);
    t[std::string("Scatter") + how] = [h](TfBuilder& b) { return scatter_rows(b, h); };
  }
  t["BroadcastArgs"] = broadcast_args;
  t["InvertPermutation"] = invert_permutation;
  t["Empty"] = empty;
  t["ParallelConcat"] = parallel_concat;
  t["InTopKV2"] = in_top_k;
  t["NthElement"] = nth_element;
  t["Bincount"] = bincount;
  t["HistogramFixedWidth"] = histogram;
  t["CompareAndBitpack"] = compare_and_bitpack;
  t["ExtractImagePatches"] = extract_patches;
  t["SparseTensorDenseAdd"] = sparse_dense_add;
  t["Unique"] = t["UniqueWithCounts"] = unique;
  t["ListDiff"] = list_diff;
  t["RaggedRange"] = ragged_range;
  t["SoftmaxCrossEntropyWithLogits"] = [](TfBuilder& b) { return softmax_xent(b, false); };
  t["SparseSoftmaxCrossEntropyWithLogits"] = [](TfBuilder& b) { return softmax_xent(b, true); };
}

}  // namespace anvil::tf_import
