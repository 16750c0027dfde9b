// Reference kernels for index-driven tensor ops (ONNX opset 13-17 semantics, any dtype):
// Gather, GatherElements, NonZero, CumSum, OneHot, ScatterND. The other tensor-manipulation
// ops (Concat, Split, Slice, Transpose, Pad, ...) are in tensor.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "core/strings.h"
#include "ops/broadcast.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

template <class Ctx>
void check_index_dtype(const Ctx& c, DType t, const std::string& field) {
  if (t != DType::i32 && t != DType::i64)
    c.fail(field, std::string("must be i32 or i64, found ") + dtype_name(t));
}

// --- Gather / GatherElements -------------------------------------------------------------------

OpDef make_gather() {
  OpDef d;
  d.name = "Gather";
  d.category = "tensor";
  d.doc = "out = data taken at `indices` along `axis` (negative indices count from the back)";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {{"axis", AttrType::Int, "axis to gather on (default 0)"}};
  d.infer = [](InferContext& c) {
    check_index_dtype(c, c.dtype(1), "indices");
    if (c.rank(0) < 1) c.fail("data", "must have rank >= 1");
    const size_t axis =
        static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", 0), c.rank(0)));
    const Shape& ds = c.shape(0);
    Shape out(ds.begin(), ds.begin() + static_cast<std::ptrdiff_t>(axis));
    for (int64_t v : c.shape(1)) out.push_back(v);
    for (size_t i = axis + 1; i < ds.size(); ++i) out.push_back(ds[i]);
    c.set_output(0, c.dtype(0), out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    const Tensor& ind = input(c, 1, "indices");
    check_index_dtype(c, ind.dtype(), "indices");
    if (x.rank() < 1) c.fail("data", "must have rank >= 1");
    const size_t axis =
        static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", 0), x.rank()));
    const Shape& ds = x.shape();
    Shape out(ds.begin(), ds.begin() + static_cast<std::ptrdiff_t>(axis));
    for (int64_t v : ind.shape()) out.push_back(v);
    for (size_t i = axis + 1; i < ds.size(); ++i) out.push_back(ds[i]);
    Tensor& y = output(c, 0, x.dtype(), out);
    const int64_t outer = prod(ds, 0, axis), dim = ds[axis], ni = ind.numel();
    const size_t es = dtype_size(x.dtype());
    const size_t inner = static_cast<size_t>(prod(ds, axis + 1, ds.size())) * es;
    unsigned char* dst = bytes(y);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < ni; ++k) {
        int64_t j = load_int(ind, k);
        if (j < -dim || j >= dim)
          c.fail("indices", "index " + std::to_string(j) + " is out of range for axis size " +
                                std::to_string(dim));
        if (j < 0) j += dim;
        if (inner) std::memcpy(dst, bytes(x) + (static_cast<size_t>(o * dim + j)) * inner, inner);
        dst += inner;
      }
  };
  return d;
}

template <class Ctx>
void check_gather_elements(const Ctx& c, const Shape& ds, const Shape& is, size_t axis) {
  if (ds.size() != is.size())
    c.fail("indices", "must have the rank of data (" + std::to_string(ds.size()) + "), found " +
                          std::to_string(is.size()));
  for (size_t i = 0; i < ds.size(); ++i)
    if (i != axis && is[i] > ds[i])
      c.fail("indices", "shape " + shape_str(is) + " exceeds data shape " + shape_str(ds) +
                            " outside the axis");
}

OpDef make_gather_elements() {
  OpDef d;
  d.name = "GatherElements";
  d.category = "tensor";
  d.doc = "out[i][j][k] = data[index][j][k] with index = indices[i][j][k] on `axis`";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {{"axis", AttrType::Int, "axis to gather on (default 0)"}};
  d.infer = [](InferContext& c) {
    check_index_dtype(c, c.dtype(1), "indices");
    if (c.rank(0) < 1) c.fail("data", "must have rank >= 1");
    const size_t axis =
        static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", 0), c.rank(0)));
    check_gather_elements(c, c.shape(0), c.shape(1), axis);
    c.set_output(0, c.dtype(0), c.shape(1));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    const Tensor& ind = input(c, 1, "indices");
    check_index_dtype(c, ind.dtype(), "indices");
    if (x.rank() < 1) c.fail("data", "must have rank >= 1");
    const size_t axis =
        static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", 0), x.rank()));
    check_gather_elements(c, x.shape(), ind.shape(), axis);
    Tensor& y = output(c, 0, x.dtype(), ind.shape());
    const auto st = strides_of(x.shape());
    const int64_t dim = x.shape()[axis];
    const size_t r = ind.shape().size();
    std::vector<int64_t> idx(r, 0);
    for (int64_t o = 0; o < ind.numel(); ++o) {
      int64_t j = load_int(ind, o);
      if (j < -dim || j >= dim)
        c.fail("indices", "index " + std::to_string(j) + " is out of range for axis size " +
                              std::to_string(dim));
      if (j < 0) j += dim;
      int64_t off = 0;
      for (size_t k = 0; k < r; ++k) off += (k == axis ? j : idx[k]) * st[k];
      copy_elem(y, o, x, off);
      for (size_t k = r; k-- > 0;) {
        if (++idx[k] < ind.shape()[k]) break;
        idx[k] = 0;
      }
    }
  };
  return d;
}

// --- NonZero -----------------------------------------------------------------------------------

OpDef make_nonzero() {
  OpDef d;
  d.name = "NonZero";
  d.category = "tensor";
  d.doc = "indices (i64, rank x count) of the non-zero elements; needs a constant input";
  d.infer = [](InferContext& c) {
    const Tensor& x = c.require_constant(0, "X");  // the output shape depends on the values
    int64_t nz = 0;
    for (int64_t i = 0; i < x.numel(); ++i) nz += x.get(i) != 0;
    c.set_output(0, DType::i64, {static_cast<int64_t>(x.rank()), nz});
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "X");
    std::vector<int64_t> hits;
    for (int64_t i = 0; i < x.numel(); ++i)
      if (x.get(i) != 0) hits.push_back(i);
    const int64_t r = x.rank(), nz = static_cast<int64_t>(hits.size());
    Tensor& y = output(c, 0, DType::i64, {r, nz});
    const auto st = strides_of(x.shape());
    for (int64_t k = 0; k < nz; ++k)
      for (int64_t a = 0; a < r; ++a)
        y.data<int64_t>()[a * nz + k] =
            (hits[static_cast<size_t>(k)] / st[static_cast<size_t>(a)]) %
            x.shape()[static_cast<size_t>(a)];
  };
  return d;
}

// --- CumSum, CumProd ----------------------------------------------------------------------------

// Cumulative sum (ONNX CumSum) or product (TF Cumprod, as CumProd) along the `axis` input; floats
// accumulate in double, integers in two's-complement uint64 (wrapping as TF and ONNX Runtime do).
OpDef make_cumulative(bool product) {
  OpDef d;
  d.name = product ? "CumProd" : "CumSum";
  d.category = "tensor";
  d.doc = std::string("cumulative ") + (product ? "product" : "sum") +
          " along the `axis` input (attrs exclusive, reverse)";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {
      {"exclusive", AttrType::Int, "1: exclude the current element (default 0)"},
      {"reverse", AttrType::Int,
       product ? "1: multiply from the end (default 0)" : "1: sum from the end (default 0)"}};
  d.infer = [](InferContext& c) {
    if (c.dtype(0) == DType::boolean) c.fail("x", "expects a numeric tensor");
    if (shape_numel(c.shape(1)) != 1) c.fail("axis", "must be a scalar");
    if (const Tensor* a = c.constant(1)) normalize_axis(c, int_values(c, *a, "axis")[0], c.rank(0));
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [product](KernelContext& c) {
    const Tensor& x = input(c, 0, "x");
    auto av = int_values(c, input(c, 1, "axis"), "axis");
    if (av.size() != 1) c.fail("axis", "must be a scalar");
    const size_t axis = static_cast<size_t>(normalize_axis(c, av[0], x.rank()));
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    const bool excl = c.attrs().get_int("exclusive", 0) != 0;
    const bool rev = c.attrs().get_int("reverse", 0) != 0;
    const int64_t outer = prod(x.shape(), 0, axis), dim = x.shape()[axis];
    const int64_t inner = prod(x.shape(), axis + 1, x.shape().size());
    const bool fl = is_float(x.dtype());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t in = 0; in < inner; ++in) {
        double accd = product ? 1 : 0;
        uint64_t acci = product ? 1 : 0;
        for (int64_t t = 0; t < dim; ++t) {
          const int64_t k = rev ? dim - 1 - t : t;
          const int64_t off = (o * dim + k) * inner + in;
          if (fl) {
            const double v = x.get(off);
            if (!excl) accd = product ? accd * v : accd + v;
            y.set(off, accd);
            if (excl) accd = product ? accd * v : accd + v;
          } else {
            const uint64_t v = static_cast<uint64_t>(load_int(x, off));
            if (!excl) acci = product ? acci * v : acci + v;
            store_int(y, off, static_cast<int64_t>(acci));
            if (excl) acci = product ? acci * v : acci + v;
          }
        }
      }
  };
  return d;
}

// --- OneHot ------------------------------------------------------------------------------------

template <class Ctx>
int64_t onehot_depth(const Ctx& c, const Tensor& depth) {
  if (depth.numel() != 1) c.fail("depth", "must be a scalar");
  double dv = depth.get(0);
  if (!(dv >= 1) || dv > 1e9)
    c.fail("depth", "must be a positive number, found " + std::to_string(dv));
  return static_cast<int64_t>(dv);
}

OpDef make_onehot() {
  OpDef d;
  d.name = "OneHot";
  d.category = "tensor";
  d.doc = "one-hot encoding of `indices` with `depth` classes; values = [off, on]";
  d.min_inputs = d.max_inputs = 3;
  d.attrs = {{"axis", AttrType::Int, "where the one-hot dim is inserted (default -1)"}};
  d.infer = [](InferContext& c) {
    int64_t depth = onehot_depth(c, c.require_constant(1, "depth"));
    if (shape_numel(c.shape(2)) != 2) c.fail("values", "must hold 2 values [off, on]");
    const int64_t r = c.rank(0) + 1;
    const size_t axis = static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", -1), r));
    Shape out = c.shape(0);
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(axis), depth);
    c.set_output(0, c.dtype(2), out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& ind = input(c, 0, "indices");
    int64_t depth = onehot_depth(c, input(c, 1, "depth"));
    const Tensor& vals = input(c, 2, "values");
    if (vals.numel() != 2) c.fail("values", "must hold 2 values [off, on]");
    const int64_t r = ind.rank() + 1;
    const size_t axis = static_cast<size_t>(normalize_axis(c, c.attrs().get_int("axis", -1), r));
    Shape out = ind.shape();
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(axis), depth);
    Tensor& y = output(c, 0, vals.dtype(), out);
    const int64_t outer = prod(ind.shape(), 0, axis);
    const int64_t inner = prod(ind.shape(), axis, ind.shape().size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < depth; ++k)
        for (int64_t in = 0; in < inner; ++in) {
          double iv = ind.get(o * inner + in);
          int64_t id = is_float(ind.dtype()) ? double_to_int(iv) : load_int(ind, o * inner + in);
          if (id < 0) id += depth;
          copy_elem(y, (o * depth + k) * inner + in, vals, id == k ? 1 : 0);
        }
  };
  return d;
}

// --- ScatterND ---------------------------------------------------------------------------------

template <class Ctx>
void check_scatter_nd(const Ctx& c, const Shape& ds, const Shape& is, const Shape& us) {
  if (is.empty()) c.fail("indices", "must have rank >= 1");
  const int64_t k = is.back();
  if (k < 1 || k > static_cast<int64_t>(ds.size()))
    c.fail("indices", "last dim " + std::to_string(k) + " must be in [1, rank of data " +
                          std::to_string(ds.size()) + "]");
  Shape want(is.begin(), is.end() - 1);
  for (size_t i = static_cast<size_t>(k); i < ds.size(); ++i) want.push_back(ds[i]);
  if (us != want) c.fail("updates", "shape " + shape_str(us) + " should be " + shape_str(want));
}

OpDef make_scatter_nd() {
  OpDef d;
  d.name = "ScatterND";
  d.category = "tensor";
  d.doc = "copy of data with slices at `indices` replaced (or reduced) by `updates`";
  d.min_inputs = d.max_inputs = 3;
  d.attrs = {{"reduction", AttrType::String, "none (default), add, mul, max or min"}};
  d.infer = [](InferContext& c) {
    check_index_dtype(c, c.dtype(1), "indices");
    if (c.dtype(2) != c.dtype(0)) c.fail("updates", "must have data's dtype");
    check_scatter_nd(c, c.shape(0), c.shape(1), c.shape(2));
    std::string red = c.attrs().get_string("reduction", "none");
    if (red != "none" && red != "add" && red != "mul" && red != "max" && red != "min")
      c.fail("reduction", "must be none, add, mul, max or min, found '" + red + "'");
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    const Tensor& ind = input(c, 1, "indices");
    const Tensor& upd = input(c, 2, "updates");
    check_index_dtype(c, ind.dtype(), "indices");
    if (upd.dtype() != x.dtype()) c.fail("updates", "must have data's dtype");
    check_scatter_nd(c, x.shape(), ind.shape(), upd.shape());
    const std::string red = c.attrs().get_string("reduction", "none");
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    if (x.nbytes()) std::memcpy(y.raw(), x.raw(), x.nbytes());
    const size_t k = static_cast<size_t>(ind.shape().back());
    const int64_t nupd = ind.numel() / static_cast<int64_t>(k);
    const int64_t slice = prod(x.shape(), k, x.shape().size());
    const auto st = strides_of(x.shape());
    const bool fl = is_float(x.dtype());
    for (int64_t u = 0; u < nupd; ++u) {
      int64_t base = 0;
      for (size_t a = 0; a < k; ++a) {
        int64_t j = load_int(ind, u * static_cast<int64_t>(k) + static_cast<int64_t>(a));
        const int64_t dim = x.shape()[a];
        if (j < -dim || j >= dim)
          c.fail("indices", "index " + std::to_string(j) + " is out of range for dim " +
                                std::to_string(a) + " of size " + std::to_string(dim));
        if (j < 0) j += dim;
        base += j * st[a];
      }
      for (int64_t s = 0; s < slice; ++s) {
        const int64_t o = base + s, ui = u * slice + s;
        if (red == "none") {
          copy_elem(y, o, upd, ui);
        } else if (fl) {
          double a = y.get(o), b = upd.get(ui);
          if (std::isnan(a) || std::isnan(b)) a = b = a + b;  // max/min of a NaN is NaN
          y.set(o, red == "add"   ? a + b
                   : red == "mul" ? a * b
                   : red == "max" ? std::max(a, b)
                                  : std::min(a, b));
        } else {
          int64_t a = load_int(y, o), b = load_int(upd, ui);
          int64_t v =
              red == "add"
                  ? static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b))
              : red == "mul"
                  ? static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b))
              : red == "max" ? std::max(a, b)
                             : std::min(a, b);
          store_int(y, o, v);
        }
      }
    }
  };
  return d;
}

const bool registered = [] {
  register_op(make_gather());
  register_op(make_gather_elements());
  register_op(make_nonzero());
  register_op(make_cumulative(false));
  register_op(make_cumulative(true));
  register_op(make_onehot());
  register_op(make_scatter_nd());
  return true;
}();

}  // namespace
}  // namespace anvil
