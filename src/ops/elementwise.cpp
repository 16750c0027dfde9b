// Reference kernels for elementwise ops (ONNX opset 13-17 semantics): unary activations and
// math (computed in double, float in = same float out), broadcasting binaries (exact int64
// arithmetic for integer dtypes), comparisons and logic (bool out), Where, and the variadic
// Max/Min/Sum/Mean.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "ops/broadcast.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

[[noreturn]] void throw_field(const std::string& op, const std::string& field,
                              const std::string& msg) {
  throw Error(op + ": " + msg, {}, {}, field);
}

// ---------------------------------------------------------------------------------------------
// Unary ops
// ---------------------------------------------------------------------------------------------

using FloatFn = std::function<double(double)>;
using IntFn = int64_t (*)(int64_t);

struct UnarySpec {
  std::string name, category, doc;
  std::vector<AttrSpec> attrs;
  std::function<FloatFn(const Attributes&)> make;  // builds the function from the attributes
  IntFn int_fn = nullptr;                          // set when integer inputs are allowed
};

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

double softplus(double x) {
  // log(1 + exp(x)) without overflow.
  if (x > 0) return x + std::log1p(std::exp(-x));
  return std::log1p(std::exp(x));
}

double round_half_even(double x) {
  double r = std::floor(x);
  double d = x - r;
  if (d > 0.5 || (d == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}

OpDef make_unary(UnarySpec s) {
  OpDef d;
  d.name = s.name;
  d.category = s.category;
  d.doc = s.doc;
  d.attrs = s.attrs;
  auto make = s.make;
  IntFn int_fn = s.int_fn;
  d.infer = [make, int_fn](InferContext& c) {
    DType t = c.dtype(0);
    if (!is_float(t) && !(int_fn && is_integer(t)))
      c.fail("inputs", std::string("expects a float") + (int_fn ? " or integer" : "") +
                           " tensor, found " + dtype_name(t));
    (void)make(c.attrs());  // validates the attributes
    c.set_output(0, t, c.shape(0));
  };
  d.reference = [make, int_fn](KernelContext& c) {
    const Tensor& x = input(c, 0, "X");
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    const int64_t n = x.numel();
    if (is_float(x.dtype())) {
      FloatFn f = make(c.attrs());
      for (int64_t i = 0; i < n; ++i) y.set(i, f(x.get(i)));
    } else if (int_fn && is_integer(x.dtype())) {
      for (int64_t i = 0; i < n; ++i) store_int(y, i, int_fn(load_int(x, i)));
    } else {
      c.fail("X", std::string("unsupported dtype ") + dtype_name(x.dtype()));
    }
  };
  return d;
}

FloatFn plain(double (*f)(double)) { return FloatFn(f); }

AttrSpec float_attr(const std::string& name, const std::string& doc) {
  return {name, AttrType::Float, doc};
}

std::vector<UnarySpec> unary_specs() {
  using A = const Attributes&;
  std::vector<UnarySpec> v;
  auto add = [&](std::string name, std::string cat, std::string doc, std::vector<AttrSpec> attrs,
                 std::function<FloatFn(A)> make, IntFn ifn = nullptr) {
    v.push_back(UnarySpec{std::move(name), std::move(cat), std::move(doc), std::move(attrs),
                          std::move(make), ifn});
  };
  add(
      "Relu", "activation", "y = max(x, 0)", {},
      [](A) { return FloatFn([](double x) { return x < 0 ? 0.0 : x; }); },
      [](int64_t x) { return x < 0 ? int64_t{0} : x; });
  add("LeakyRelu", "activation", "y = x >= 0 ? x : alpha * x (alpha 0.01)",
      {float_attr("alpha", "slope for x < 0 (default 0.01)")}, [](A a) {
        double al = a.get_float("alpha", 0.01);
        return FloatFn([al](double x) { return x >= 0 ? x : al * x; });
      });
  add("Elu", "activation", "y = x >= 0 ? x : alpha * (exp(x) - 1) (alpha 1)",
      {float_attr("alpha", "scale for x < 0 (default 1)")}, [](A a) {
        double al = a.get_float("alpha", 1.0);
        return FloatFn([al](double x) { return x >= 0 ? x : al * std::expm1(x); });
      });
  add("Selu", "activation", "y = gamma * (x > 0 ? x : alpha * (exp(x) - 1))",
      {float_attr("alpha", "default 1.67326319217681884765625"),
       float_attr("gamma", "default 1.05070102214813232421875")},
      [](A a) {
        double al = a.get_float("alpha", 1.67326319217681884765625);
        double ga = a.get_float("gamma", 1.05070102214813232421875);
        return FloatFn(
            [al, ga](double x) { return x > 0 ? ga * x : ga * (al * std::exp(x) - al); });
      });
  add("Celu", "activation", "y = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) (alpha 1)",
      {float_attr("alpha", "default 1")}, [](A a) {
        double al = a.get_float("alpha", 1.0);
        return FloatFn([al](double x) {
          if (std::isnan(x)) return x;
          return std::max(0.0, x) + std::min(0.0, al * std::expm1(x / al));
        });
      });
  add("Sigmoid", "activation", "y = 1 / (1 + exp(-x))", {}, [](A) { return plain(sigmoid); });
  add("HardSigmoid", "activation", "y = max(0, min(1, alpha * x + beta)) (alpha 0.2, beta 0.5)",
      {float_attr("alpha", "default 0.2"), float_attr("beta", "default 0.5")}, [](A a) {
        double al = a.get_float("alpha", 0.2), be = a.get_float("beta", 0.5);
        return FloatFn([al, be](double x) {
          double y = al * x + be;
          return y < 0 ? 0.0 : (y > 1 ? 1.0 : y);
        });
      });
  add("HardSwish", "activation", "y = x * max(0, min(1, x / 6 + 0.5))", {}, [](A) {
    return FloatFn([](double x) {
      double y = x / 6.0 + 0.5;
      return x * (y < 0 ? 0.0 : (y > 1 ? 1.0 : y));
    });
  });
  add("Tanh", "activation", "y = tanh(x)", {},
      [](A) { return FloatFn([](double x) { return std::tanh(x); }); });
  add("Softplus", "activation", "y = log(1 + exp(x))", {}, [](A) { return plain(softplus); });
  add("Softsign", "activation", "y = x / (1 + |x|)", {},
      [](A) { return FloatFn([](double x) { return x / (1.0 + std::fabs(x)); }); });
  add("ThresholdedRelu", "activation", "y = x > alpha ? x : 0 (alpha 1; NaN stays NaN)",
      {float_attr("alpha", "threshold (default 1)")}, [](A a) {
        double al = a.get_float("alpha", 1.0);
        return FloatFn([al](double x) { return (x > al || std::isnan(x)) ? x : 0.0; });
      });
  add("Mish", "activation", "y = x * tanh(softplus(x))", {},
      [](A) { return FloatFn([](double x) { return x * std::tanh(softplus(x)); }); });
  add("Gelu", "activation", "y = 0.5 x (1 + erf(x / sqrt 2)); approximate 'tanh' uses tanh",
      {{"approximate", AttrType::String, "'none' (default) or 'tanh'"}}, [](A a) {
        std::string ap = a.get_string("approximate", "none");
        if (ap == "none")
          return FloatFn(
              [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); });
        if (ap == "tanh")
          return FloatFn([](double x) {
            const double k = std::sqrt(2.0 / std::numbers::pi);
            return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
          });
        throw_field("Gelu", "approximate", "must be 'none' or 'tanh', found '" + ap + "'");
      });
  add("Exp", "math", "y = exp(x)", {},
      [](A) { return plain([](double x) { return std::exp(x); }); });
  add("Log", "math", "y = log(x)", {},
      [](A) { return plain([](double x) { return std::log(x); }); });
  add("Sqrt", "math", "y = sqrt(x)", {},
      [](A) { return plain([](double x) { return std::sqrt(x); }); });
  add("Erf", "math", "y = erf(x)", {},
      [](A) { return plain([](double x) { return std::erf(x); }); });
  add("Reciprocal", "math", "y = 1 / x", {},
      [](A) { return plain([](double x) { return 1.0 / x; }); });
  add("Floor", "math", "y = floor(x)", {},
      [](A) { return plain([](double x) { return std::floor(x); }); });
  add("Ceil", "math", "y = ceil(x)", {},
      [](A) { return plain([](double x) { return std::ceil(x); }); });
  add("Round", "math", "y = x rounded to the nearest integer, halves to even", {},
      [](A) { return plain(round_half_even); });
  add("Sin", "math", "y = sin(x)", {},
      [](A) { return plain([](double x) { return std::sin(x); }); });
  add("Cos", "math", "y = cos(x)", {},
      [](A) { return plain([](double x) { return std::cos(x); }); });
  add("Tan", "math", "y = tan(x)", {},
      [](A) { return plain([](double x) { return std::tan(x); }); });
  add("Asin", "math", "y = asin(x)", {},
      [](A) { return plain([](double x) { return std::asin(x); }); });
  add("Acos", "math", "y = acos(x)", {},
      [](A) { return plain([](double x) { return std::acos(x); }); });
  add("Atan", "math", "y = atan(x)", {},
      [](A) { return plain([](double x) { return std::atan(x); }); });
  add("Sinh", "math", "y = sinh(x)", {},
      [](A) { return plain([](double x) { return std::sinh(x); }); });
  add("Cosh", "math", "y = cosh(x)", {},
      [](A) { return plain([](double x) { return std::cosh(x); }); });
  add("Asinh", "math", "y = asinh(x)", {},
      [](A) { return plain([](double x) { return std::asinh(x); }); });
  add("Acosh", "math", "y = acosh(x)", {},
      [](A) { return plain([](double x) { return std::acosh(x); }); });
  add("Atanh", "math", "y = atanh(x)", {},
      [](A) { return plain([](double x) { return std::atanh(x); }); });
  add(
      "Abs", "math", "y = |x| (float or integer)", {},
      [](A) { return plain([](double x) { return std::fabs(x); }); },
      [](int64_t x) { return x < 0 ? static_cast<int64_t>(0 - static_cast<uint64_t>(x)) : x; });
  add(
      "Neg", "math", "y = -x (float or integer)", {},
      [](A) { return plain([](double x) { return -x; }); },
      [](int64_t x) { return static_cast<int64_t>(0 - static_cast<uint64_t>(x)); });
  add(
      "Sign", "math", "y = -1, 0 or 1 by the sign of x (float or integer)", {},
      [](A) { return plain([](double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : x); }); },
      [](int64_t x) { return static_cast<int64_t>((x > 0) - (x < 0)); });
  return v;
}

// ---------------------------------------------------------------------------------------------
// Broadcasting binaries
// ---------------------------------------------------------------------------------------------

struct BinFns {
  std::function<double(double, double)> f;     // float inputs
  std::function<int64_t(int64_t, int64_t)> i;  // integer / bool inputs
};

struct BinarySpec {
  std::string name, category, doc;
  bool bool_out = false;
  bool floats = true, ints = true, bools = false;
  std::vector<AttrSpec> attrs;
  std::function<BinFns(const Attributes&)> make;
};

std::string allowed_str(bool floats, bool ints, bool bools) {
  std::string r;
  auto add = [&](const char* s) { r += (r.empty() ? "" : " or ") + std::string(s); };
  if (floats) add("float");
  if (ints) add("integer");
  if (bools) add("bool");
  return r;
}

bool dtype_allowed(DType t, bool floats, bool ints, bool bools) {
  return (floats && is_float(t)) || (ints && is_integer(t)) || (bools && t == DType::boolean);
}

OpDef make_binary(BinarySpec s) {
  OpDef d;
  d.name = s.name;
  d.category = s.category;
  d.doc = s.doc;
  d.min_inputs = d.max_inputs = 2;
  d.attrs = s.attrs;
  d.infer = [s](InferContext& c) {
    DType ta = c.dtype(0), tb = c.dtype(1);
    if (ta != tb)
      c.fail("inputs", std::string("A and B must have the same dtype, found ") + dtype_name(ta) +
                           " and " + dtype_name(tb));
    if (!dtype_allowed(ta, s.floats, s.ints, s.bools))
      c.fail("inputs", "expects " + allowed_str(s.floats, s.ints, s.bools) + " tensors, found " +
                           dtype_name(ta));
    auto out = broadcast_shapes({c.shape(0), c.shape(1)});
    if (!out)
      c.fail("inputs", "shapes " + shape_str(c.shape(0)) + " and " + shape_str(c.shape(1)) +
                           " cannot be broadcast together");
    (void)s.make(c.attrs());
    c.set_output(0, s.bool_out ? DType::boolean : ta, *out);
  };
  d.reference = [s](KernelContext& c) {
    const Tensor& a = input(c, 0, "A");
    const Tensor& b = input(c, 1, "B");
    if (a.dtype() != b.dtype() || !dtype_allowed(a.dtype(), s.floats, s.ints, s.bools))
      c.fail("inputs", std::string("unsupported dtypes ") + dtype_name(a.dtype()) + " and " +
                           dtype_name(b.dtype()));
    auto shape = broadcast_shapes({a.shape(), b.shape()});
    if (!shape)
      c.fail("inputs", "shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) +
                           " cannot be broadcast together");
    Tensor& y = output(c, 0, s.bool_out ? DType::boolean : a.dtype(), *shape);
    BinFns fn = s.make(c.attrs());
    if (is_float(a.dtype())) {
      for_each_broadcast(*shape, {a.shape(), b.shape()}, [&](int64_t o, const int64_t* off) {
        y.set(o, fn.f(a.get(off[0]), b.get(off[1])));
      });
    } else {
      for_each_broadcast(*shape, {a.shape(), b.shape()}, [&](int64_t o, const int64_t* off) {
        store_int(y, o, fn.i(load_int(a, off[0]), load_int(b, off[1])));
      });
    }
  };
  return d;
}

// Wrapping integer arithmetic (no signed-overflow UB).
int64_t wrap_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t wrap_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t wrap_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

int64_t int_div(int64_t a, int64_t b) {
  if (b == 0) throw_field("Div", "B", "integer division by zero");
  if (b == -1) return static_cast<int64_t>(0 - static_cast<uint64_t>(a));  // INT64_MIN / -1
  return a / b;  // truncates toward zero, like C and ONNX
}

int64_t int_rem(int64_t a, int64_t b) {  // sign of the dividend (C %)
  if (b == 0) throw_field("Mod", "B", "integer modulo by zero");
  if (b == -1) return 0;
  return a % b;
}

std::vector<BinarySpec> binary_specs() {
  using A = const Attributes&;
  std::vector<BinarySpec> v;
  auto arith = [&](std::string name, std::string doc, std::function<double(double, double)> f,
                   std::function<int64_t(int64_t, int64_t)> i) {
    BinarySpec s;
    s.name = std::move(name);
    s.category = "elementwise";
    s.doc = std::move(doc);
    s.make = [f, i](A) { return BinFns{f, i}; };
    v.push_back(std::move(s));
  };
  arith(
      "Add", "C = A + B (numpy broadcasting)", [](double a, double b) { return a + b; }, wrap_add);
  arith(
      "Sub", "C = A - B (numpy broadcasting)", [](double a, double b) { return a - b; }, wrap_sub);
  arith(
      "Mul", "C = A * B (numpy broadcasting)", [](double a, double b) { return a * b; }, wrap_mul);
  arith(
      "Div", "C = A / B (numpy broadcasting; integers truncate toward zero)",
      [](double a, double b) { return a / b; }, int_div);
  {
    BinarySpec s;
    s.name = "Mod";
    s.category = "elementwise";
    s.doc = "C = A mod B; fmod=0: sign of the divisor (integers), fmod=1: sign of the dividend";
    s.attrs = {{"fmod", AttrType::Int, "0: Python-style modulo, 1: C fmod (default 0)"}};
    s.make = [](A a) {
      int64_t fm = a.get_int("fmod", 0);
      if (fm != 0 && fm != 1) throw_field("Mod", "fmod", "must be 0 or 1");
      if (fm == 1) return BinFns{[](double x, double y) { return std::fmod(x, y); }, int_rem};
      return BinFns{[](double x, double y) {
                      double r = std::fmod(x, y);
                      if (r != 0 && ((r < 0) != (y < 0))) r += y;
                      return r;
                    },
                    [](int64_t x, int64_t y) {
                      int64_t r = int_rem(x, y);
                      if (r != 0 && ((r < 0) != (y < 0))) r += y;
                      return r;
                    }};
    };
    v.push_back(std::move(s));
  }
  auto cmp = [&](std::string name, std::string doc, std::function<bool(double, double)> f,
                 std::function<bool(int64_t, int64_t)> i) {
    BinarySpec s;
    s.name = std::move(name);
    s.category = "compare";
    s.doc = std::move(doc);
    s.bool_out = true;
    s.bools = true;
    s.make = [f, i](A) {
      return BinFns{[f](double a, double b) { return f(a, b) ? 1.0 : 0.0; },
                    [i](int64_t a, int64_t b) { return static_cast<int64_t>(i(a, b)); }};
    };
    v.push_back(std::move(s));
  };
  cmp(
      "Equal", "C = A == B (bool)", [](double a, double b) { return a == b; },
      [](int64_t a, int64_t b) { return a == b; });
  cmp(
      "Less", "C = A < B (bool)", [](double a, double b) { return a < b; },
      [](int64_t a, int64_t b) { return a < b; });
  cmp(
      "LessOrEqual", "C = A <= B (bool)", [](double a, double b) { return a <= b; },
      [](int64_t a, int64_t b) { return a <= b; });
  cmp(
      "Greater", "C = A > B (bool)", [](double a, double b) { return a > b; },
      [](int64_t a, int64_t b) { return a > b; });
  cmp(
      "GreaterOrEqual", "C = A >= B (bool)", [](double a, double b) { return a >= b; },
      [](int64_t a, int64_t b) { return a >= b; });
  auto logic = [&](std::string name, std::string doc, std::function<int64_t(int64_t, int64_t)> i) {
    BinarySpec s;
    s.name = std::move(name);
    s.category = "logic";
    s.doc = std::move(doc);
    s.bool_out = true;
    s.floats = s.ints = false;
    s.bools = true;
    s.make = [i](A) { return BinFns{[](double, double) { return 0.0; }, i}; };
    v.push_back(std::move(s));
  };
  logic("And", "C = A and B (bool)", [](int64_t a, int64_t b) -> int64_t { return a && b; });
  logic("Or", "C = A or B (bool)", [](int64_t a, int64_t b) -> int64_t { return a || b; });
  logic("Xor", "C = A xor B (bool)",
        [](int64_t a, int64_t b) -> int64_t { return (a != 0) != (b != 0); });
  return v;
}

// Integer power by squaring, wrapping; exponent >= 0.
int64_t int_pow(int64_t base, int64_t e) {
  uint64_t r = 1, b = static_cast<uint64_t>(base);
  while (e > 0) {
    if (e & 1) r *= b;
    b *= b;
    e >>= 1;
  }
  return static_cast<int64_t>(r);
}

OpDef make_pow() {
  OpDef d;
  d.name = "Pow";
  d.category = "elementwise";
  d.doc = "Z = X ^ Y (numpy broadcasting); Y may have another numeric dtype; Z has X's dtype";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    DType ta = c.dtype(0), tb = c.dtype(1);
    if (ta == DType::boolean || tb == DType::boolean)
      c.fail("inputs", "expects numeric tensors, found bool");
    auto out = broadcast_shapes({c.shape(0), c.shape(1)});
    if (!out)
      c.fail("inputs", "shapes " + shape_str(c.shape(0)) + " and " + shape_str(c.shape(1)) +
                           " cannot be broadcast together");
    c.set_output(0, ta, *out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& a = input(c, 0, "X");
    const Tensor& b = input(c, 1, "Y");
    if (a.dtype() == DType::boolean || b.dtype() == DType::boolean)
      c.fail("inputs", "expects numeric tensors, found bool");
    auto shape = broadcast_shapes({a.shape(), b.shape()});
    if (!shape) c.fail("inputs", "shapes cannot be broadcast together");
    Tensor& y = output(c, 0, a.dtype(), *shape);
    const bool fa = is_float(a.dtype()), fb = is_float(b.dtype());
    for_each_broadcast(*shape, {a.shape(), b.shape()}, [&](int64_t o, const int64_t* off) {
      if (fa) {
        y.set(o, std::pow(a.get(off[0]), b.get(off[1])));
      } else if (!fb && load_int(b, off[1]) >= 0) {
        store_int(y, o, int_pow(load_int(a, off[0]), load_int(b, off[1])));
      } else {
        store_int(y, o,
                  double_to_int(std::pow(static_cast<double>(load_int(a, off[0])), b.get(off[1]))));
      }
    });
  };
  return d;
}

// ---------------------------------------------------------------------------------------------
// Clip, PRelu, Not, Where, variadic Max/Min/Sum/Mean
// ---------------------------------------------------------------------------------------------

OpDef make_clip() {
  OpDef d;
  d.name = "Clip";
  d.category = "activation";
  d.doc = "y = min(max(x, min), max); min/max are optional scalar inputs (min > max gives max)";
  d.min_inputs = 1;
  d.max_inputs = 3;
  d.infer = [](InferContext& c) {
    DType t = c.dtype(0);
    if (t == DType::boolean) c.fail("inputs", "expects a float or integer tensor, found bool");
    for (int i = 1; i <= 2; ++i) {
      if (!c.has_input(i)) continue;
      const char* field = i == 1 ? "min" : "max";
      if (shape_numel(c.shape(i)) != 1)
        c.fail(field, "must be a scalar, found shape " + shape_str(c.shape(i)));
    }
    c.set_output(0, t, c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    const Tensor* lo = nullptr;
    const Tensor* hi = nullptr;
    if (has_input(c, 1)) lo = &input(c, 1, "min");
    if (has_input(c, 2)) hi = &input(c, 2, "max");
    if (lo && lo->numel() != 1) c.fail("min", "must be a scalar");
    if (hi && hi->numel() != 1) c.fail("max", "must be a scalar");
    const int64_t n = x.numel();
    if (is_float(x.dtype())) {
      double l = lo ? lo->get(0) : -kInf, h = hi ? hi->get(0) : kInf;
      for (int64_t i = 0; i < n; ++i) {
        double v = x.get(i);
        if (v < l) v = l;
        if (v > h) v = h;
        y.set(i, v);
      }
    } else {
      int64_t l = lo ? load_int(*lo, 0) : std::numeric_limits<int64_t>::min();
      int64_t h = hi ? load_int(*hi, 0) : std::numeric_limits<int64_t>::max();
      for (int64_t i = 0; i < n; ++i) {
        int64_t v = load_int(x, i);
        if (v < l) v = l;
        if (v > h) v = h;
        store_int(y, i, v);
      }
    }
  };
  return d;
}

OpDef make_prelu() {
  OpDef d;
  d.name = "PRelu";
  d.category = "activation";
  d.doc = "y = x >= 0 ? x : slope * x; slope broadcasts (unidirectionally) to x";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    DType t = c.dtype(0);
    if (t == DType::boolean) c.fail("inputs", "expects a float or integer tensor, found bool");
    if (c.dtype(1) != t)
      c.fail("slope", std::string("must have X's dtype ") + dtype_name(t) + ", found " +
                          dtype_name(c.dtype(1)));
    if (!broadcasts_to(c.shape(1), c.shape(0)))
      c.fail("slope", "shape " + shape_str(c.shape(1)) + " does not broadcast to X's shape " +
                          shape_str(c.shape(0)));
    c.set_output(0, t, c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "X");
    const Tensor& s = input(c, 1, "slope");
    if (!broadcasts_to(s.shape(), x.shape()))
      c.fail("slope", "shape " + shape_str(s.shape()) + " does not broadcast to X's shape " +
                          shape_str(x.shape()));
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    const bool fl = is_float(x.dtype());
    for_each_broadcast(x.shape(), {x.shape(), s.shape()}, [&](int64_t o, const int64_t* off) {
      if (fl) {
        double v = x.get(off[0]);
        y.set(o, v >= 0 ? v : s.get(off[1]) * v);
      } else {
        int64_t v = load_int(x, off[0]);
        store_int(y, o, v >= 0 ? v : wrap_mul(load_int(s, off[1]), v));
      }
    });
  };
  return d;
}

OpDef make_not() {
  OpDef d;
  d.name = "Not";
  d.category = "logic";
  d.doc = "y = not x (bool)";
  d.infer = [](InferContext& c) {
    if (c.dtype(0) != DType::boolean)
      c.fail("inputs", std::string("expects a bool tensor, found ") + dtype_name(c.dtype(0)));
    c.set_output(0, DType::boolean, c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "X");
    if (x.dtype() != DType::boolean) c.fail("X", "expects a bool tensor");
    Tensor& y = output(c, 0, DType::boolean, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) store_int(y, i, load_int(x, i) == 0);
  };
  return d;
}

OpDef make_where() {
  OpDef d;
  d.name = "Where";
  d.category = "elementwise";
  d.doc = "output = condition ? X : Y (numpy broadcasting of all three)";
  d.min_inputs = d.max_inputs = 3;
  d.infer = [](InferContext& c) {
    if (c.dtype(0) != DType::boolean)
      c.fail("condition", std::string("must be bool, found ") + dtype_name(c.dtype(0)));
    if (c.dtype(1) != c.dtype(2))
      c.fail("inputs", std::string("X and Y must have the same dtype, found ") +
                           dtype_name(c.dtype(1)) + " and " + dtype_name(c.dtype(2)));
    auto out = broadcast_shapes({c.shape(0), c.shape(1), c.shape(2)});
    if (!out)
      c.fail("inputs", "shapes " + shape_str(c.shape(0)) + ", " + shape_str(c.shape(1)) + " and " +
                           shape_str(c.shape(2)) + " cannot be broadcast together");
    c.set_output(0, c.dtype(1), *out);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& cond = input(c, 0, "condition");
    const Tensor& x = input(c, 1, "X");
    const Tensor& yv = input(c, 2, "Y");
    if (cond.dtype() != DType::boolean || x.dtype() != yv.dtype())
      c.fail("inputs", "unsupported dtypes");
    auto shape = broadcast_shapes({cond.shape(), x.shape(), yv.shape()});
    if (!shape) c.fail("inputs", "shapes cannot be broadcast together");
    Tensor& out = output(c, 0, x.dtype(), *shape);
    for_each_broadcast(*shape, {cond.shape(), x.shape(), yv.shape()},
                       [&](int64_t o, const int64_t* off) {
                         if (load_int(cond, off[0]))
                           copy_elem(out, o, x, off[1]);
                         else
                           copy_elem(out, o, yv, off[2]);
                       });
  };
  return d;
}

// IsNaN / IsInf: float in, bool out.
OpDef make_float_test(const std::string& name) {
  OpDef d;
  d.name = name;
  d.category = "math";
  const bool is_inf = name == "IsInf";
  d.doc = is_inf ? "y = x is +inf (detect_positive) or -inf (detect_negative), bool"
                 : "y = x is NaN, bool";
  if (is_inf)
    d.attrs = {{"detect_negative", AttrType::Int, "1 (default): report -inf"},
               {"detect_positive", AttrType::Int, "1 (default): report +inf"}};
  d.infer = [](InferContext& c) {
    if (!is_float(c.dtype(0)))
      c.fail("inputs", std::string("expects a float tensor, found ") + dtype_name(c.dtype(0)));
    c.set_output(0, DType::boolean, c.shape(0));
  };
  d.reference = [is_inf](KernelContext& c) {
    const Tensor& x = input(c, 0, "X");
    if (!is_float(x.dtype())) c.fail("X", "expects a float tensor");
    Tensor& y = output(c, 0, DType::boolean, x.shape());
    const bool neg = c.attrs().get_int("detect_negative", 1) != 0;
    const bool pos = c.attrs().get_int("detect_positive", 1) != 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double v = x.get(i);
      const bool r = is_inf ? ((pos && v == kInf) || (neg && v == -kInf)) : v != v;
      store_int(y, i, r);
    }
  };
  return d;
}

enum class Variadic { Max, Min, Sum, Mean };

OpDef make_variadic(const std::string& name, Variadic kind, const std::string& doc) {
  OpDef d;
  d.name = name;
  d.category = "elementwise";
  d.doc = doc;
  d.min_inputs = 1;
  d.max_inputs = -1;
  d.infer = [](InferContext& c) {
    DType t = c.dtype(0);
    if (t == DType::boolean) c.fail("inputs", "expects float or integer tensors, found bool");
    std::vector<Shape> shapes;
    for (int i = 0; i < c.num_inputs(); ++i) {
      if (!c.has_input(i)) c.fail("inputs", "input " + std::to_string(i) + " is missing");
      if (c.dtype(i) != t)
        c.fail("inputs", "all inputs must have the same dtype, found " +
                             std::string(dtype_name(t)) + " and " + dtype_name(c.dtype(i)));
      shapes.push_back(c.shape(i));
    }
    auto out = broadcast_shapes(shapes);
    if (!out) c.fail("inputs", "shapes " + shapes_str(shapes) + " cannot be broadcast together");
    c.set_output(0, t, *out);
  };
  d.reference = [kind](KernelContext& c) {
    std::vector<Shape> shapes;
    std::vector<const Tensor*> ts;
    for (int i = 0; i < static_cast<int>(c.inputs.size()); ++i) {
      ts.push_back(&input(c, i));
      shapes.push_back(ts.back()->shape());
      if (ts.back()->dtype() != ts[0]->dtype() || ts[0]->dtype() == DType::boolean)
        c.fail("inputs", "unsupported dtypes");
    }
    if (ts.empty()) c.fail("inputs", "needs at least one input");
    auto shape = broadcast_shapes(shapes);
    if (!shape) c.fail("inputs", "shapes " + shapes_str(shapes) + " cannot be broadcast together");
    Tensor& y = output(c, 0, ts[0]->dtype(), *shape);
    const size_t k = ts.size();
    if (is_float(ts[0]->dtype())) {
      for_each_broadcast(*shape, shapes, [&](int64_t o, const int64_t* off) {
        double acc = ts[0]->get(off[0]);
        for (size_t j = 1; j < k; ++j) {
          double v = ts[j]->get(off[j]);
          switch (kind) {
            case Variadic::Max:
              acc = (acc != acc || v != v) ? kNaN : std::max(acc, v);
              break;
            case Variadic::Min:
              acc = (acc != acc || v != v) ? kNaN : std::min(acc, v);
              break;
            default:
              acc += v;
              break;
          }
        }
        if (kind == Variadic::Mean) acc /= static_cast<double>(k);
        y.set(o, acc);
      });
    } else {
      for_each_broadcast(*shape, shapes, [&](int64_t o, const int64_t* off) {
        int64_t acc = load_int(*ts[0], off[0]);
        for (size_t j = 1; j < k; ++j) {
          int64_t v = load_int(*ts[j], off[j]);
          switch (kind) {
            case Variadic::Max:
              acc = std::max(acc, v);
              break;
            case Variadic::Min:
              acc = std::min(acc, v);
              break;
            default:
              acc = wrap_add(acc, v);
              break;
          }
        }
        if (kind == Variadic::Mean) acc /= static_cast<int64_t>(k);
        store_int(y, o, acc);
      });
    }
  };
  return d;
}

const bool registered = [] {
  for (auto& s : unary_specs()) register_op(make_unary(std::move(s)));
  for (auto& s : binary_specs()) register_op(make_binary(std::move(s)));
  register_op(make_pow());
  register_op(make_clip());
  register_op(make_prelu());
  register_op(make_not());
  register_op(make_where());
  register_op(make_float_test("IsNaN"));
  register_op(make_float_test("IsInf"));
  register_op(make_variadic("Max", Variadic::Max, "elementwise maximum of 1+ inputs (broadcast)"));
  register_op(make_variadic("Min", Variadic::Min, "elementwise minimum of 1+ inputs (broadcast)"));
  register_op(make_variadic("Sum", Variadic::Sum, "elementwise sum of 1+ inputs (broadcast)"));
  register_op(make_variadic("Mean", Variadic::Mean, "elementwise mean of 1+ inputs (broadcast)"));
  return true;
}();

}  // namespace
}  // namespace anvil
