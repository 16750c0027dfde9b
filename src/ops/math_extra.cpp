// Reference kernels for math ops TensorFlow graphs use that ONNX lacks: Log1p, Expm1 (exact
// near 0, unlike Log(1 + x) / Exp(x) - 1), Erfc, Lgamma, Digamma, Igamma, Igammac, Betainc,
// Zeta, Polygamma (broadcasting), Atan2 (broadcasting) and SegmentReduce (TF's UnsortedSegment*
// and Segment*: rows of data summed, multiplied, maxed, mined or averaged into num_segments outputs
// by id).
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
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

// --- special functions of two or three arguments (TF's Igamma, Igammac, Betainc, Zeta,
// Polygamma; Eigen's domains: NaN outside them) ----------------------------------------------

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kEps = 1e-16;

// regularized lower incomplete gamma P(a, x), or the upper Q(a, x) when `upper`
double igamma(double a, double x, bool upper) {
  if (std::isnan(a) || std::isnan(x) || x < 0 || a <= 0) return kNaN;
  if (x == 0) return upper ? 1 : 0;
  if (std::isinf(x)) return upper ? 0 : 1;
  const double lead = std::exp(-x + a * std::log(x) - std::lgamma(a));
  if (x < a + 1) {
    double term = 1 / a, sum = term;
    for (int n = 1; n < 2000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * kEps) break;
    }
    const double p = sum * lead;
    return upper ? 1 - p : p;
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 2000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) break;
  }
  const double q = lead * h;
  return upper ? q : 1 - q;
}

double betacf(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m < 2000; ++m) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) break;
  }
  return h;
}

// regularized incomplete beta I_x(a, b)
double betainc(double a, double b, double x) {
  if (std::isnan(a) || std::isnan(b) || std::isnan(x) || a <= 0 || b <= 0 || x < 0 || x > 1)
    return kNaN;
  if (x == 0 || x == 1) return x;
  const double bt = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                             a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return bt * betacf(a, b, x) / a;
  return 1 - bt * betacf(b, a, 1 - x) / b;
}

// Hurwitz zeta(x, q), Euler-Maclaurin summation as Cephes / Eigen
double zeta(double x, double q) {
  static const double A[] = {12.0,
                             -720.0,
                             30240.0,
                             -1209600.0,
                             47900160.0,
                             -1.8924375803183791606e9,
                             7.47242496e10,
                             -2.950130727918164224e12,
                             1.1646782814350067249e14,
                             -4.5979787224074726105e15,
                             1.8152105401943546773e17,
                             -7.1661652561756670113e18};
  if (x == 1) return std::numeric_limits<double>::infinity();
  if (x < 1) return kNaN;
  if (q <= 0) {
    if (q == std::floor(q)) return std::numeric_limits<double>::infinity();
    if (x != std::floor(x)) return kNaN;
  }
  double s = std::pow(q, -x), a = q, b = 0;
  int i = 0;
  while (i < 9 || a <= 9.0) {
    i += 1;
    a += 1.0;
    b = std::pow(a, -x);
    s += b;
    if (std::fabs(b / s) < kEps) return s;
  }
  const double w = a;
  s += b * w / (x - 1);
  s -= 0.5 * b;
  a = 1.0;
  double k = 0.0;
  for (i = 0; i < 12; ++i) {
    a *= x + k;
    b /= w;
    double t = a * b / A[i];
    s += t;
    if (std::fabs(t / s) < kEps) return s;
    k += 1.0;
    a *= x + k;
    b /= w;
    k += 1.0;
  }
  return s;
}

double polygamma(double n, double x) {
  if (n != std::floor(n) || n < 0) return kNaN;
  if (n == 0) return digamma(x);
  const double f = std::exp(std::lgamma(n + 1));
  return (std::fmod(n, 2) == 0 ? -1 : 1) * f * zeta(n + 1, x);
}

OpDef make_float_nary(const std::string& name, const std::string& doc, int n,
                      std::function<double(const double*)> fn) {
  OpDef d;
  d.name = name;
  d.category = "math";
  d.doc = doc;
  d.min_inputs = d.max_inputs = n;
  d.infer = [n](InferContext& c) {
    if (!is_float(c.dtype(0))) c.fail("inputs", "expects float tensors");
    std::vector<Shape> ss;
    for (int i = 0; i < n; ++i) {
      if (c.dtype(i) != c.dtype(0)) c.fail("inputs", "inputs of different dtypes");
      ss.push_back(c.shape(i));
    }
    auto s = broadcast_shapes(std::span<const Shape>(ss));
    if (!s) c.fail("inputs", "shapes do not broadcast");
    c.set_output(0, c.dtype(0), *s);
  };
  d.reference = [n, fn](KernelContext& c) {
    std::vector<Shape> ss;
    for (int i = 0; i < n; ++i) ss.push_back(input(c, i).shape());
    auto s = broadcast_shapes(std::span<const Shape>(ss));
    if (!s) c.fail("inputs", "shapes do not broadcast");
    Tensor& y = output(c, 0, c.inputs[0].dtype(), *s);
    for_each_broadcast(*s, std::span<const Shape>(ss), [&](int64_t o, const int64_t* off) {
      double v[3];
      for (int i = 0; i < n; ++i) v[i] = c.inputs[static_cast<size_t>(i)].get(off[i]);
      y.set(o, fn(v));
    });
  };
  return d;
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
  register_op(make_float_nary("Igamma", "regularized lower incomplete gamma P(a, x)", 2,
                              [](const double* v) { return igamma(v[0], v[1], false); }));
  register_op(make_float_nary("Igammac", "regularized upper incomplete gamma Q(a, x)", 2,
                              [](const double* v) { return igamma(v[0], v[1], true); }));
  register_op(make_float_nary("Betainc", "regularized incomplete beta I_x(a, b); inputs a, b, x", 3,
                              [](const double* v) { return betainc(v[0], v[1], v[2]); }));
  register_op(make_float_nary("Zeta", "Hurwitz zeta(x, q)", 2,
                              [](const double* v) { return zeta(v[0], v[1]); }));
  register_op(make_float_nary("Polygamma", "polygamma(n, x), n a non-negative integer", 2,
                              [](const double* v) { return polygamma(v[0], v[1]); }));
  register_op(make_segment_reduce());
  return true;
}();

}  // namespace
}  // namespace anvil
