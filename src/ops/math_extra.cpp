// Reference kernels for math ops TensorFlow graphs use that ONNX lacks: Log1p, Expm1 (exact
// near 0, unlike Log(1 + x) / Exp(x) - 1), Erfc, Lgamma, Digamma, Atan2 (broadcasting), CumProd
// (CumSum's product twin, attrs exclusive / reverse) and SegmentReduce (TF's UnsortedSegment* and
// Segment*: rows of data summed, multiplied, maxed, mined or averaged into num_segments outputs by
// id).
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "ops/broadcast.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

OpDef make_float_unary(const std::string& name, const std::string& doc, double (*fn)(double)) {
  OpDef d;
  d.name = name;
  d.category = "math";
  d.doc = doc;
  d.infer = [](InferContext& c) {
    if (!is_float(c.dtype(0)))
      c.fail("X", std::string("expects a float tensor, found ") + dtype_name(c.dtype(0)));
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [fn](KernelContext& c) {
    const Tensor& x = input(c, 0, "X");
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) y.set(i, fn(x.get(i)));
  };
  return d;
}

OpDef make_atan2() {
  OpDef d;
  d.name = "Atan2";
  d.category = "math";
  d.doc = "C = atan2(A, B): the angle of the point (B, A), in [-pi, pi] (numpy broadcasting)";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    if (!is_float(c.dtype(0)))
      c.fail("A", std::string("expects a float tensor, found ") + dtype_name(c.dtype(0)));
    if (c.dtype(1) != c.dtype(0)) c.fail("B", "dtype differs from A's");
    auto s = broadcast_shapes({c.shape(0), c.shape(1)});
    if (!s) c.fail("inputs", "shapes do not broadcast");
    c.set_output(0, c.dtype(0), *s);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& a = input(c, 0, "A");
    const Tensor& b = input(c, 1, "B");
    auto s = broadcast_shapes({a.shape(), b.shape()});
    if (!s) c.fail("inputs", "shapes do not broadcast");
    Tensor& y = output(c, 0, a.dtype(), *s);
    for_each_broadcast(*s, {a.shape(), b.shape()}, [&](int64_t o, const int64_t* off) {
      y.set(o, std::atan2(a.get(off[0]), b.get(off[1])));
    });
  };
  return d;
}

OpDef make_cumprod() {
  OpDef d;
  d.name = "CumProd";
  d.category = "tensor";
  d.doc = "cumulative product along the `axis` input (attrs exclusive, reverse)";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {{"exclusive", AttrType::Int, "1: exclude the current element (default 0)"},
             {"reverse", AttrType::Int, "1: multiply from the end (default 0)"}};
  d.infer = [](InferContext& c) {
    if (c.dtype(0) == DType::boolean) c.fail("x", "expects a numeric tensor");
    if (shape_numel(c.shape(1)) != 1) c.fail("axis", "must be a scalar");
    if (const Tensor* a = c.constant(1)) normalize_axis(c, int_values(c, *a, "axis")[0], c.rank(0));
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [](KernelContext& c) {
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
        double accd = 1;
        uint64_t acci = 1;
        for (int64_t t = 0; t < dim; ++t) {
          const int64_t k = rev ? dim - 1 - t : t;
          const int64_t off = (o * dim + k) * inner + in;
          if (fl) {
            if (!excl) accd *= x.get(off);
            y.set(off, accd);
            if (excl) accd *= x.get(off);
          } else {
            const uint64_t v = static_cast<uint64_t>(load_int(x, off));
            if (!excl) acci *= v;
            store_int(y, off, static_cast<int64_t>(acci));
            if (excl) acci *= v;
          }
        }
      }
  };
  return d;
}

// --- SegmentReduce -----------------------------------------------------------------------------

double lowest_of(DType t) {
  switch (t) {
    case DType::i8:
      return -128;
    case DType::u8:
      return 0;
    case DType::i16:
      return -32768;
    case DType::i32:
      return std::numeric_limits<int32_t>::lowest();
    case DType::i64:
      return static_cast<double>(std::numeric_limits<int64_t>::lowest());
    case DType::f16:
      return -65504.0;
    case DType::bf16:
      return -3.3895313892515355e38;
    case DType::f32:
      return std::numeric_limits<float>::lowest();
    default:
      return std::numeric_limits<double>::lowest();
  }
}

double highest_of(DType t) {
  switch (t) {
    case DType::i8:
      return 127;
    case DType::u8:
      return 255;
    case DType::i16:
      return 32767;
    case DType::i32:
      return std::numeric_limits<int32_t>::max();
    case DType::i64:
      return static_cast<double>(std::numeric_limits<int64_t>::max());
    case DType::f16:
      return 65504.0;
    case DType::bf16:
      return 3.3895313892515355e38;
    case DType::f32:
      return std::numeric_limits<float>::max();
    default:
      return std::numeric_limits<double>::max();
  }
}

OpDef make_segment_reduce() {
  OpDef d;
  d.name = "SegmentReduce";
  d.category = "reduce";
  d.doc =
      "out[s, ...] = reduce of data[i, ...] over the i with segment_ids[i] == s (ids cover the "
      "leading dims of data; ids outside [0, num_segments) are dropped); inputs data, "
      "segment_ids, num_segments (constant)";
  d.min_inputs = d.max_inputs = 3;
  d.attrs = {{"mode", AttrType::String, "sum (default), prod, max, min or mean"},
             {"empty", AttrType::String,
              "value of a segment without rows: identity (default; 0, 1, lowest, highest, 0) "
              "or zero"}};
  d.infer = [](InferContext& c) {
    const std::string mode = c.attrs().get_string("mode", "sum");
    if (mode != "sum" && mode != "prod" && mode != "max" && mode != "min" && mode != "mean")
      c.fail("mode", "must be sum, prod, max, min or mean, found '" + mode + "'");
    const std::string empty = c.attrs().get_string("empty", "identity");
    if (empty != "identity" && empty != "zero")
      c.fail("empty", "must be identity or zero, found '" + empty + "'");
    if (c.dtype(0) == DType::boolean) c.fail("data", "expects a numeric tensor");
    if (!is_integer(c.dtype(1))) c.fail("segment_ids", "must be an integer tensor");
    const Shape& ds = c.shape(0);
    const Shape& is = c.shape(1);
    if (is.size() > ds.size() || !std::equal(is.begin(), is.end(), ds.begin()))
      c.fail("segment_ids",
             "shape " + shape_str(is) + " is not a prefix of data's " + shape_str(ds));
    auto n = int_values(c, c.require_constant(2, "num_segments"), "num_segments");
    if (n.size() != 1 || n[0] < 0) c.fail("num_segments", "must be one non-negative value");
    Shape out{n[0]};
    out.insert(out.end(), ds.begin() + static_cast<std::ptrdiff_t>(is.size()), ds.end());
    c.set_output(0, c.dtype(0), out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    const Tensor& ids = input(c, 1, "segment_ids");
    auto n = int_values(c, input(c, 2, "num_segments"), "num_segments");
    if (n.size() != 1 || n[0] < 0) c.fail("num_segments", "must be one non-negative value");
    const int64_t rows = ids.numel();
    const int64_t inner = rows ? x.numel() / rows : 0;
    Shape os{n[0]};
    os.insert(os.end(), x.shape().begin() + ids.rank(), x.shape().end());
    Tensor& y = output(c, 0, x.dtype(), os);
    const std::string mode = c.attrs().get_string("mode", "sum");
    const bool zero_empty = c.attrs().get_string("empty", "identity") == "zero";
    double init = 0;
    if (mode == "prod") init = 1;
    if (mode == "max") init = lowest_of(x.dtype());
    if (mode == "min") init = highest_of(x.dtype());
    const bool fl = is_float(x.dtype());
    std::vector<double> acc(static_cast<size_t>(n[0] * inner), init);
    std::vector<int64_t> acci(acc.size(), mode == "prod" ? 1 : 0);
    std::vector<int64_t> count(static_cast<size_t>(n[0]), 0);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t s = load_int(ids, r);
      if (s < 0 || s >= n[0]) continue;
      ++count[static_cast<size_t>(s)];
      for (int64_t k = 0; k < inner; ++k) {
        const size_t o = static_cast<size_t>(s * inner + k);
        const int64_t xi = r * inner + k;
        double& a = acc[o];
        if (!fl && (mode == "sum" || mode == "prod" || mode == "mean")) {
          const uint64_t v = static_cast<uint64_t>(load_int(x, xi));
          acci[o] = static_cast<int64_t>(mode == "prod" ? static_cast<uint64_t>(acci[o]) * v
                                                        : static_cast<uint64_t>(acci[o]) + v);
          continue;
        }
        const double v = fl ? x.get(xi) : static_cast<double>(load_int(x, xi));
        if (mode == "sum" || mode == "mean")
          a += v;
        else if (mode == "prod")
          a *= v;
        else if (mode == "max")
          a = (v > a || std::isnan(v)) ? v : a;
        else
          a = (v < a || std::isnan(v)) ? v : a;
      }
    }
    for (int64_t s = 0; s < n[0]; ++s)
      for (int64_t k = 0; k < inner; ++k) {
        const size_t o = static_cast<size_t>(s * inner + k);
        const int64_t cnt = count[static_cast<size_t>(s)];
        const int64_t yi = s * inner + k;
        if (cnt == 0 && zero_empty) {
          y.set(yi, 0);
          continue;
        }
        if (!fl && (mode == "sum" || mode == "prod" || mode == "mean")) {
          int64_t v = acci[o];
          if (mode == "mean" && cnt) v /= cnt;
          store_int(y, yi, v);
        } else if (fl) {
          y.set(yi, mode == "mean" && cnt ? acc[o] / static_cast<double>(cnt) : acc[o]);
        } else {
          store_int(y, yi, static_cast<int64_t>(acc[o]));
        }
      }
  };
  return d;
}

// digamma (psi), as Eigen computes it for TF: +inf at 0 and the negative integers,
// reflection below 0, recurrence up to 10, then the asymptotic series.
double digamma(double x) {
  if (std::isnan(x)) return x;
  double acc = 0;
  if (x <= 0) {
    if (x == std::floor(x)) return std::numeric_limits<double>::infinity();
    const double pi = 3.14159265358979323846;
    acc = -pi / std::tan(pi * x);
    x = 1 - x;
  }
  while (x < 10) {
    acc -= 1 / x;
    x += 1;
  }
  const double z = 1 / (x * x);
  const double series =
      z * (1.0 / 12 - z * (1.0 / 120 - z * (1.0 / 252 - z * (1.0 / 240 - z * (1.0 / 132)))));
  return acc + std::log(x) - 0.5 / x - series;
}

const bool registered = [] {
  register_op(make_float_unary("Log1p", "y = log(1 + x), accurate near 0",
                               [](double x) { return std::log1p(x); }));
  register_op(make_float_unary("Expm1", "y = exp(x) - 1, accurate near 0",
                               [](double x) { return std::expm1(x); }));
  register_op(make_float_unary("Erfc", "y = 1 - erf(x), accurate for large x",
                               [](double x) { return std::erfc(x); }));
  register_op(
      make_float_unary("Lgamma", "y = log(|gamma(x)|)", [](double x) { return std::lgamma(x); }));
  register_op(make_float_unary("Digamma", "y = digamma(x) = d/dx log(gamma(x))", digamma));
  register_op(make_atan2());
  register_op(make_cumprod());
  register_op(make_segment_reduce());
  return true;
}();

}  // namespace
}  // namespace anvil
