// TF array ops beyond the first importer's set, each lowered to canonical ops in TF's own
// layout: ReverseV2 (negative-step Slice), Roll (Slice + Concat), BroadcastTo (Expand),
// Where with one input (NonZero), OneHot, MatrixBandPart / MatrixDiag / MatrixDiagPart /
// MatrixSetDiag, Diag, DiagPart (masks and gather indices built at import from the static
// shapes), Cross,
// UnsortedSegment{Sum,Prod,Max,Min} and Segment{Sum,Prod,Max,Min,Mean} (SegmentReduce),
// ScatterNd and, on a frozen variable, ScatterNdUpdate / ScatterNdAdd / ScatterNdSub (ScatterND).
#include <algorithm>
#include <functional>
#include <set>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

TT plain(int v) { return TT{v, {}}; }

int slice1(TfBuilder& b, int v, int64_t axis, int64_t start, int64_t end, int64_t step = 1) {
  return b.emit1("Slice", {v, b.i64s({start}), b.i64s({end}), b.i64s({axis}), b.i64s({step})});
}

std::vector<TT> reverse_v2(TfBuilder& b) {
  b.need_inputs(2, 2);
  int v = b.src(b.in[0]);
  const Shape s = b.shape(v);
  std::set<int> axes;
  for (int64_t a : b.const_ints(1, "axis"))
    if (!axes.insert(b.axis_of(a, static_cast<int>(s.size()), "axis")).second)
      fail("axis", "axis " + std::to_string(a) + " given twice");
  for (int a : axes) {
    const int64_t d = s[static_cast<size_t>(a)];
    if (d > 1) v = slice1(b, v, a, -1, -d - 1, -1);
  }
  return {plain(v)};
}

std::vector<TT> roll(TfBuilder& b) {
  b.need_inputs(3, 3);
  int v = b.src(b.in[0]);
  const Shape s = b.shape(v);
  auto shifts = b.const_ints(1, "shift");
  auto axes = b.const_ints(2, "axis");
  if (shifts.size() != axes.size())
    fail("shift", "shift " + ints_str(shifts) + " and axis " + ints_str(axes) +
                      " must have the same length");
  std::vector<int64_t> total(s.size(), 0);  // shifts along one axis add up
  for (size_t i = 0; i < axes.size(); ++i)
    total[static_cast<size_t>(b.axis_of(axes[i], static_cast<int>(s.size()), "axis"))] += shifts[i];
  for (size_t a = 0; a < s.size(); ++a) {
    const int64_t d = s[a];
    if (d == 0) continue;
    const int64_t k = ((total[a] % d) + d) % d;  // out[(i + k) % d] = in[i]
    if (k == 0) continue;
    int tail = slice1(b, v, static_cast<int64_t>(a), d - k, d);
    int head = slice1(b, v, static_cast<int64_t>(a), 0, d - k);
    Attributes at;
    at.set("axis", static_cast<int64_t>(a));
    v = b.emit1("Concat", {tail, head}, at);
  }
  return {plain(v)};
}

std::vector<TT> broadcast_to(TfBuilder& b) {
  b.need_inputs(2, 2);
  auto shape = b.const_ints(1, "shape");
  for (int64_t d : shape)
    if (d < 0) fail("shape", "negative dimension in " + ints_str(shape));
  checked_numel(shape, "shape");
  return {plain(b.emit1("Expand", {b.src(b.in[0]), b.i64s(shape)}))};
}

// Where(condition): the coordinates (int64, [count, rank]) of the true / non-zero elements in
// row-major order; the count depends on the values, so the input must be known at import.
std::vector<TT> where1(TfBuilder& b) {
  b.need_inputs(1, 1);
  int v = b.src(b.in[0]);
  const Tensor* known = b.const_of(v);
  if (!known)
    fail("input",
         "Where with one input needs a value known at import (its result's size "
         "depends on the values)");
  if (!b.val(v).constant.defined()) v = b.cst(*known);
  int nz = b.emit1("NonZero", {v});
  Attributes a;
  a.set("perm", std::vector<int64_t>{1, 0});
  return {plain(b.emit1("Transpose", {nz}, a))};
}

std::vector<TT> one_hot(TfBuilder& b) {
  b.need_inputs(4, 4);
  int ind = b.src(b.in[0]);
  const int64_t depth = b.const_int(1, "depth");
  if (depth < 0) fail("depth", "negative depth " + std::to_string(depth));
  if (b.dtype(b.in[2].v) != b.dtype(b.in[3].v))
    fail("off_value", "on_value and off_value have different dtypes");
  const int64_t r = b.rank(ind);
  const int64_t axis = b.attr_i("axis", -1);
  if (axis < -1 || axis > r) fail("axis", "axis " + std::to_string(axis) + " out of range");
  // TF: an index outside [0, depth) gives a row of off_value (the canonical op wraps
  // negative indices): map negatives to depth
  const DType it = b.dtype(ind);
  int neg = b.emit1("Less", {ind, b.scalar(it, 0)});
  ind = b.emit1("Where", {neg, b.scalar(it, static_cast<double>(depth)), ind});
  int vals =
      b.emit1("Concat", {b.reshape(b.src(b.in[3]), {1}), b.reshape(b.src(b.in[2]), {1})}, [] {
        Attributes a;
        a.set("axis", int64_t{0});
        return a;
      }());
  Attributes a;
  a.set("axis", axis);
  if (depth == 0) {
    Shape s = b.shape(ind);
    s.insert(axis < 0 ? s.end() : s.begin() + axis, 0);
    Tensor z(b.dtype(b.in[2].v), s);
    return {plain(b.cst(z))};
  }
  return {plain(b.emit1("OneHot", {ind, b.i64s({depth}), vals}, a))};
}

// ---- matrices (the last two dims) ----

struct Mat {
  int v;
  Shape s;
  int64_t M, N;
  Shape batch;
};
Mat matrix_of(TfBuilder& b, size_t i, const char* field) {
  Mat m;
  m.v = b.src(b.in[i]);
  m.s = b.shape(m.v);
  if (m.s.size() < 2) fail(field, std::string(field) + " must have rank >= 2");
  m.M = m.s[m.s.size() - 2];
  m.N = m.s.back();
  m.batch.assign(m.s.begin(), m.s.end() - 2);
  return m;
}

Tensor bool_mask(int64_t M, int64_t N, const std::function<bool(int64_t, int64_t)>& f) {
  Tensor t(DType::boolean, {M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) t.set(i * N + j, f(i, j) ? 1.0 : 0.0);
  return t;
}

int zero_like_scalar(TfBuilder& b, int v) { return b.scalar(b.dtype(v), 0); }

std::vector<TT> matrix_band_part(TfBuilder& b) {
  b.need_inputs(3, 3);
  Mat m = matrix_of(b, 0, "input");
  const int64_t lo = b.const_int(1, "num_lower"), up = b.const_int(2, "num_upper");
  if (lo > m.M || up > m.N)
    fail("num_lower",
         "band (" + std::to_string(lo) + ", " + std::to_string(up) + ") larger than the matrix");
  int mask = b.cst(bool_mask(m.M, m.N, [&](int64_t i, int64_t j) {
    return (lo < 0 || i - j <= lo) && (up < 0 || j - i <= up);
  }));
  return {plain(b.emit1("Where", {mask, m.v, zero_like_scalar(b, m.v)}))};
}

// Gathers a [M, N] matrix from the last axis of v ([..., L]) with per-element indices.
int gather_matrix(TfBuilder& b, int v, const Shape& batch, int64_t M, int64_t N,
                  const std::vector<int64_t>& idx) {
  Attributes a;
  a.set("axis", int64_t{-1});
  int g = b.emit1("Gather", {v, b.i64s(idx)}, a);
  Shape s = batch;
  s.push_back(M);
  s.push_back(N);
  return b.reshape(g, s);
}

// diag [..., K] padded with one zero at the end of the last axis
int pad_zero(TfBuilder& b, int d) {
  const int r = b.rank(d);
  std::vector<int64_t> pads(static_cast<size_t>(2 * r), 0);
  pads.back() = 1;
  return b.emit1("Pad", {d, b.i64s(pads), zero_like_scalar(b, d)});
}

std::vector<TT> matrix_diag(TfBuilder& b) {
  b.need_inputs(1, 1);
  int d = b.src(b.in[0]);
  Shape s = b.shape(d);
  if (s.empty()) fail("diagonal", "diagonal must have rank >= 1");
  const int64_t N = s.back();
  s.pop_back();
  std::vector<int64_t> idx(static_cast<size_t>(N * N));
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = 0; j < N; ++j) idx[static_cast<size_t>(i * N + j)] = i == j ? i : N;
  return {plain(gather_matrix(b, pad_zero(b, d), s, N, N, idx))};
}

std::vector<TT> matrix_diag_part(TfBuilder& b) {
  b.need_inputs(1, 1);
  Mat m = matrix_of(b, 0, "input");
  const int64_t K = std::min(m.M, m.N);
  Shape flat = m.batch;
  flat.push_back(m.M * m.N);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < K; ++i) idx.push_back(i * m.N + i);
  Attributes a;
  a.set("axis", int64_t{-1});
  return {plain(b.emit1("Gather", {b.reshape(m.v, flat), b.i64s(idx)}, a))};
}

std::vector<TT> matrix_set_diag(TfBuilder& b) {
  b.need_inputs(2, 2);
  Mat m = matrix_of(b, 0, "input");
  int d = b.src(b.in[1]);
  const int64_t K = std::min(m.M, m.N);
  Shape want = m.batch;
  want.push_back(K);
  if (b.shape(d) != want)
    fail("diagonal", "shape " + shape_str(b.shape(d)) + " should be " + shape_str(want));
  std::vector<int64_t> idx(static_cast<size_t>(m.M * m.N));
  for (int64_t i = 0; i < m.M; ++i)
    for (int64_t j = 0; j < m.N; ++j) idx[static_cast<size_t>(i * m.N + j)] = i == j ? i : K;
  int dm = gather_matrix(b, pad_zero(b, d), m.batch, m.M, m.N, idx);
  int mask = b.cst(bool_mask(m.M, m.N, [](int64_t i, int64_t j) { return i == j; }));
  return {plain(b.emit1("Where", {mask, dm, m.v}))};
}

// Diag: x of shape s -> [s..., s...] with x on the diagonal; DiagPart: the inverse.
std::vector<TT> diag(TfBuilder& b) {
  b.need_inputs(1, 1);
  int x = b.src(b.in[0]);
  Shape s = b.shape(x);
  if (s.empty()) fail("diagonal", "diagonal must have rank >= 1");
  const int64_t n = shape_numel(s);
  checked_numel({n, n}, "diagonal");
  std::vector<int64_t> idx(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) idx[static_cast<size_t>(i * n + j)] = i == j ? i : n;
  Shape out = s;
  out.insert(out.end(), s.begin(), s.end());
  int g = gather_matrix(b, pad_zero(b, b.reshape(x, {n})), {}, n, n, idx);
  return {plain(b.reshape(g, out))};
}

std::vector<TT> diag_part(TfBuilder& b) {
  b.need_inputs(1, 1);
  int x = b.src(b.in[0]);
  Shape s = b.shape(x);
  const size_t k = s.size() / 2;
  if (s.empty() || s.size() % 2 || !std::equal(s.begin(), s.begin() + k, s.begin() + k))
    fail("input", "input must have shape [s..., s...], found " + shape_str(s));
  Shape half(s.begin(), s.begin() + k);
  const int64_t n = shape_numel(half);
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < n; ++i) idx.push_back(i * n + i);
  Attributes a;
  a.set("axis", int64_t{0});
  return {plain(b.reshape(b.emit1("Gather", {b.reshape(x, {n * n}), b.i64s(idx)}, a), half))};
}

// Cross: the cross product of vectors along the last axis (size 3).
std::vector<TT> cross(TfBuilder& b) {
  b.need_inputs(2, 2);
  int u = b.src(b.in[0]), v = b.src(b.in[1]);
  if (b.shape(u) != b.shape(v) || b.shape(u).empty() || b.shape(u).back() != 3)
    fail("b", "a and b must have the same shape with a last dimension of 3");
  auto c = [&](int t, int64_t k) {
    return b.emit1("Slice", {t, b.i64s({k}), b.i64s({k + 1}), b.i64s({-1})});
  };
  auto term = [&](int64_t i, int64_t j) {
    return b.emit1("Sub", {b.emit1("Mul", {c(u, i), c(v, j)}), b.emit1("Mul", {c(u, j), c(v, i)})});
  };
  Attributes a;
  a.set("axis", int64_t{-1});
  return {plain(b.emit1("Concat", {term(1, 2), term(2, 0), term(0, 1)}, a))};
}

// ---- segments and scatters ----

std::vector<TT> segment(TfBuilder& b, const std::string& mode, bool sorted) {
  b.need_inputs(sorted ? 2 : 3, sorted ? 2 : 3);
  int x = b.src(b.in[0]);
  int ids = b.src(b.in[1]);
  int64_t n;
  if (sorted) {
    // Segment*: ids sorted, num_segments = last id + 1; empty segments give 0
    auto iv = b.const_ints(1, "segment_ids");
    for (size_t i = 1; i < iv.size(); ++i)
      if (iv[i] < iv[i - 1]) fail("segment_ids", "segment_ids are not sorted");
    if (!iv.empty() && iv[0] < 0) fail("segment_ids", "negative segment id");
    n = iv.empty() ? 0 : iv.back() + 1;
  } else {
    n = b.const_int(2, "num_segments");
    if (n < 0) fail("num_segments", "negative num_segments");
  }
  if (b.rank(ids) != 1 && sorted) fail("segment_ids", "segment_ids must be 1-D");
  Attributes a;
  a.set("mode", mode);
  a.set("empty", std::string(sorted ? "zero" : "identity"));
  return {plain(b.emit1("SegmentReduce", {x, ids, b.i64s({n})}, a))};
}

std::vector<TT> scatter_nd(TfBuilder& b) {
  b.need_inputs(3, 3);
  auto shape = b.const_ints(2, "shape");
  for (int64_t d : shape)
    if (d < 0) fail("shape", "negative dimension in " + ints_str(shape));
  checked_numel(shape, "shape");
  int upd = b.src(b.in[1]);
  Tensor z(b.dtype(upd), shape);
  Attributes a;
  a.set("reduction", std::string("add"));  // TF sums repeated indices
  return {plain(b.emit1("ScatterND", {b.cst(z), b.src(b.in[0]), upd}, a))};
}

std::vector<TT> scatter_nd_ref(TfBuilder& b, const std::string& how) {
  b.need_inputs(3, 3);
  int upd = b.src(b.in[2]);
  if (how == "sub") upd = b.emit1("Neg", {upd});
  Attributes a;
  a.set("reduction", std::string(how == "update" ? "none" : "add"));
  return {plain(b.emit1("ScatterND", {b.src(b.in[0]), b.src(b.in[1]), upd}, a))};
}

}  // namespace

void add_array_converters(ConverterTable& t) {
  t["ReverseV2"] = reverse_v2;
  t["Roll"] = roll;
  t["BroadcastTo"] = broadcast_to;
  t["Where"] = where1;
  t["OneHot"] = one_hot;
  t["MatrixBandPart"] = matrix_band_part;
  t["MatrixDiag"] = matrix_diag;
  t["MatrixDiagPart"] = matrix_diag_part;
  t["MatrixSetDiag"] = matrix_set_diag;
  t["Diag"] = diag;
  t["DiagPart"] = diag_part;
  t["Cross"] = cross;
  for (const char* m : {"Sum", "Prod", "Max", "Min"}) {
    std::string mode(m);
    std::transform(mode.begin(), mode.end(), mode.begin(), ::tolower);
    t[std::string("UnsortedSegment") + m] = [mode](TfBuilder& b) {
      return segment(b, mode, false);
    };
  }
  for (const char* m : {"Sum", "Prod", "Max", "Min", "Mean"}) {
    std::string mode(m);
    std::transform(mode.begin(), mode.end(), mode.begin(), ::tolower);
    t[std::string("Segment") + m] = [mode](TfBuilder& b) { return segment(b, mode, true); };
  }
  t["ScatterNd"] = scatter_nd;
  t["ScatterNdUpdate"] = [](TfBuilder& b) { return scatter_nd_ref(b, "update"); };
  t["ScatterNdAdd"] = [](TfBuilder& b) { return scatter_nd_ref(b, "add"); };
  t["ScatterNdSub"] = [](TfBuilder& b) { return scatter_nd_ref(b, "sub"); };
}

}  // namespace anvil::tf_import
