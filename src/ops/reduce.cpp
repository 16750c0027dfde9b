// Reference kernels: ReduceMean/Max/Min/Sum/Prod/L1/L2/SumSquare/LogSumExp/LogSum (canonical
// form: optional `axes` INPUT (i64), attrs keepdims, noop_with_empty_axes), ArgMax, ArgMin,
// TopK. Double accumulation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;

enum class Red { Mean, Max, Min, Sum, Prod, L1, L2, SumSquare, LogSumExp, LogSum };

struct ReduceParams {
  bool identity = false;      // noop_with_empty_axes with no axes: output = input
  std::vector<bool> reduced;  // per input dim
  Shape out_shape;
};

ReduceParams reduce_params(const std::string& op, const Shape& x,
                           const std::vector<int64_t>* axes_in, const Attributes& a) {
  ReduceParams p;
  const int rank = static_cast<int>(x.size());
  const bool keep = a.get_int("keepdims", 1) != 0;
  const bool noop = a.get_int("noop_with_empty_axes", 0) != 0;
  std::vector<int64_t> axes;
  if (axes_in)
    axes = *axes_in;
  else if (a.has("axes"))
    axes = a.get_ints("axes");  // legacy attribute form (opset < 13/18)
  p.reduced.assign(static_cast<size_t>(rank), false);
  if (axes.empty()) {
    if (noop) {
      p.identity = true;
      p.out_shape = x;
      return p;
    }
    std::fill(p.reduced.begin(), p.reduced.end(), true);
  }
  for (int64_t ax : axes) {
    const int u = nn::norm_axis(op, "axes", ax, rank);
    if (p.reduced[static_cast<size_t>(u)] && !axes.empty())
      fail(op, "axes", "axis " + std::to_string(ax) + " is listed twice in " + nn::ints_str(axes));
    p.reduced[static_cast<size_t>(u)] = true;
  }
  for (int i = 0; i < rank; ++i) {
    if (!p.reduced[static_cast<size_t>(i)])
      p.out_shape.push_back(x[static_cast<size_t>(i)]);
    else if (keep)
      p.out_shape.push_back(1);
  }
  return p;
}

const char* red_name(Red r) {
  switch (r) {
    case Red::Mean:
      return "ReduceMean";
    case Red::Max:
      return "ReduceMax";
    case Red::Min:
      return "ReduceMin";
    case Red::Sum:
      return "ReduceSum";
    case Red::Prod:
      return "ReduceProd";
    case Red::L1:
      return "ReduceL1";
    case Red::L2:
      return "ReduceL2";
    case Red::SumSquare:
      return "ReduceSumSquare";
    case Red::LogSumExp:
      return "ReduceLogSumExp";
    case Red::LogSum:
      return "ReduceLogSum";
  }
  return "?";
}

/// For each input flat index, the flat index of the output element it reduces into.
std::vector<int64_t> output_index_map(const Shape& x, const std::vector<bool>& reduced) {
  // strides of the (keepdims) output, 0 on reduced dims
  const size_t r = x.size();
  std::vector<int64_t> ost(r, 0);
  int64_t s = 1;
  for (size_t d = r; d-- > 0;) {
    if (!reduced[d]) {
      ost[d] = s;
      s *= x[d];
    }
  }
  const int64_t n = shape_numel(x);
  std::vector<int64_t> map(static_cast<size_t>(n));
  std::vector<int64_t> idx(r, 0);
  int64_t o = 0;
  for (int64_t i = 0; i < n; ++i) {
    map[static_cast<size_t>(i)] = o;
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < x[d]) {
        o += ost[d];
        break;
      }
      o -= ost[d] * (x[d] - 1);
      idx[d] = 0;
    }
  }
  return map;
}

void reduce_kernel(Red kind, KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const std::string op = red_name(kind);
  const Tensor& X = ctx.inputs[0];
  std::vector<int64_t> axes;
  const bool has_axes = ctx.inputs.size() > 1 && ctx.inputs[1].defined();
  if (has_axes) axes = nn::int_values(op, "axes", ctx.inputs[1]);
  ReduceParams p = reduce_params(op, X.shape(), has_axes ? &axes : nullptr, ctx.attrs());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, p.out_shape);
  const int64_t n = X.numel();
  std::vector<int64_t> map;
  if (p.identity) {
    map.resize(static_cast<size_t>(n));
    std::iota(map.begin(), map.end(), 0);
  } else {
    map = output_index_map(X.shape(), p.reduced);
  }
  const int64_t on = Y.numel();
  const double inf = std::numeric_limits<double>::infinity();
  double init = 0;
  if (kind == Red::Max) init = -inf;
  if (kind == Red::Min) init = inf;
  if (kind == Red::Prod) init = 1;
  std::vector<double> acc(static_cast<size_t>(on), init);
  std::vector<double> mx;
  if (kind == Red::LogSumExp) {
    mx.assign(static_cast<size_t>(on), -inf);
    for (int64_t i = 0; i < n; ++i) {
      double& m = mx[static_cast<size_t>(map[static_cast<size_t>(i)])];
      m = std::max(m, X.get(i));
    }
    for (double& m : mx)
      if (!std::isfinite(m)) m = 0;  // all -inf (or empty): log(sum) handles it
  }
  for (int64_t i = 0; i < n; ++i) {
    const auto o = static_cast<size_t>(map[static_cast<size_t>(i)]);
    const double v = X.get(i);
    double& a = acc[o];
    switch (kind) {
      case Red::Mean:
      case Red::Sum:
      case Red::LogSum:
        a += v;
        break;
      case Red::Max:
        a = (v > a || std::isnan(v)) ? v : a;
        break;
      case Red::Min:
        a = (v < a || std::isnan(v)) ? v : a;
        break;
      case Red::Prod:
        a *= v;
        break;
      case Red::L1:
        a += std::abs(v);
        break;
      case Red::L2:
      case Red::SumSquare:
        a += v * v;
        break;
      case Red::LogSumExp:
        a += std::exp(v - mx[o]);
        break;
    }
  }
  const double count = on ? static_cast<double>(n) / static_cast<double>(on) : 0.0;
  for (int64_t o = 0; o < on; ++o) {
    double a = acc[static_cast<size_t>(o)];
    if (kind == Red::Mean) a = count > 0 ? a / count : std::numeric_limits<double>::quiet_NaN();
    if (kind == Red::L2) a = std::sqrt(a);
    if (kind == Red::LogSum) a = std::log(a);
    if (kind == Red::LogSumExp) a = std::log(a) + mx[static_cast<size_t>(o)];
    Y.set(o, a);
  }
}

OpDef reduce_def(Red kind, const std::string& doc) {
  const std::string name = red_name(kind);
  OpDef d;
  d.name = name;
  d.category = "reduce";
  d.doc = doc;
  d.min_inputs = 1;
  d.max_inputs = 2;
  d.attrs = {{"keepdims", AttrType::Int, "1 (default): keep reduced dims as size 1"},
             {"noop_with_empty_axes", AttrType::Int,
              "1: no axes means identity; 0 (default): no axes means reduce all"},
             {"axes", AttrType::Ints,
              "legacy attribute form, used only when the axes input is absent (canonical: input)"}};
  d.infer = [name](InferContext& ctx) {
    if (ctx.dtype(0) == DType::boolean) ctx.fail("data", "expected a numeric tensor, found bool");
    std::vector<int64_t> axes;
    const bool has_axes = ctx.has_input(1);
    if (has_axes) axes = nn::int_values(name, "axes", ctx.require_constant(1, "axes"));
    ReduceParams p = reduce_params(name, ctx.shape(0), has_axes ? &axes : nullptr, ctx.attrs());
    ctx.set_output(0, ctx.dtype(0), p.out_shape);
  };
  d.reference = [kind](KernelContext& ctx) { reduce_kernel(kind, ctx); };
  return d;
}

const OpRegistrar reg_rmean{reduce_def(Red::Mean, "mean over axes (optional axes input, i64)")};
const OpRegistrar reg_rmax{reduce_def(Red::Max, "max over axes (optional axes input, i64)")};
const OpRegistrar reg_rmin{reduce_def(Red::Min, "min over axes (optional axes input, i64)")};
const OpRegistrar reg_rsum{reduce_def(Red::Sum, "sum over axes (optional axes input, i64)")};
const OpRegistrar reg_rprod{reduce_def(Red::Prod, "product over axes (optional axes input, i64)")};
const OpRegistrar reg_rl1{reduce_def(Red::L1, "sum |x| over axes (optional axes input, i64)")};
const OpRegistrar reg_rl2{
    reduce_def(Red::L2, "sqrt(sum x^2) over axes (optional axes input, i64)")};
const OpRegistrar reg_rss{
    reduce_def(Red::SumSquare, "sum x^2 over axes (optional axes input, i64)")};
const OpRegistrar reg_rlse{
    reduce_def(Red::LogSumExp, "log(sum exp x) over axes, computed stably (optional axes input)")};
const OpRegistrar reg_rls{
    reduce_def(Red::LogSum, "log(sum x) over axes (optional axes input, i64)")};

// ---- ArgMax / ArgMin -------------------------------------------------------------------------

struct ArgParams {
  int axis = 0;
  int64_t outer = 1, len = 1, inner = 1;
  Shape out_shape;
};

ArgParams arg_params(const std::string& op, const Shape& x, const Attributes& a) {
  if (x.empty()) fail(op, "data", "expected a tensor of rank >= 1, found a scalar");
  ArgParams p;
  p.axis = nn::norm_axis(op, "axis", a.get_int("axis", 0), static_cast<int>(x.size()));
  const bool keep = a.get_int("keepdims", 1) != 0;
  for (int i = 0; i < static_cast<int>(x.size()); ++i) {
    const int64_t d = x[static_cast<size_t>(i)];
    if (i < p.axis) p.outer *= d;
    if (i > p.axis) p.inner *= d;
    if (i == p.axis) {
      p.len = d;
      if (keep) p.out_shape.push_back(1);
    } else {
      p.out_shape.push_back(d);
    }
  }
  if (p.len == 0) fail(op, "data", "cannot take the arg of an empty axis");
  return p;
}

void arg_kernel(bool is_max, KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const std::string op = is_max ? "ArgMax" : "ArgMin";
  const Tensor& X = ctx.inputs[0];
  ArgParams p = arg_params(op, X.shape(), ctx.attrs());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, p.out_shape);
  const bool last = ctx.attrs().get_int("select_last_index", 0) != 0;
  int64_t* y = Y.data<int64_t>();
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t i = 0; i < p.inner; ++i) {
      const int64_t base = o * p.len * p.inner + i;
      int64_t best = 0;
      double bv = X.get(base);
      for (int64_t j = 1; j < p.len; ++j) {
        const double v = X.get(base + j * p.inner);
        // NaN is the extreme of both (numpy, PyTorch): the first NaN, or the last one.
        const bool better = (std::isnan(v) || std::isnan(bv))
                                ? std::isnan(v) && (!std::isnan(bv) || last)
                            : is_max ? (v > bv || (last && v == bv))
                                     : (v < bv || (last && v == bv));
        if (better) bv = v, best = j;
      }
      y[o * p.inner + i] = best;
    }
}

OpDef arg_def(bool is_max) {
  const std::string name = is_max ? "ArgMax" : "ArgMin";
  OpDef d;
  d.name = name;
  d.category = "reduce";
  d.doc = std::string("index (i64) of the ") + (is_max ? "maximum" : "minimum") + " along axis";
  d.attrs = {{"axis", AttrType::Int, "default 0"},
             {"keepdims", AttrType::Int, "default 1"},
             {"select_last_index", AttrType::Int,
              "1: the last index among equal values (default 0: first)"}};
  d.infer = [name](InferContext& ctx) {
    ctx.set_output(0, DType::i64, arg_params(name, ctx.shape(0), ctx.attrs()).out_shape);
  };
  d.reference = [is_max](KernelContext& ctx) { arg_kernel(is_max, ctx); };
  return d;
}

const OpRegistrar reg_argmax{arg_def(true)};
const OpRegistrar reg_argmin{arg_def(false)};

// ---- TopK ----------------------------------------------------------------------------------

int64_t topk_k(const std::string& op, const Tensor& kt) {
  auto k = nn::int_values(op, "K", kt);
  if (k.size() != 1) fail(op, "K", "expected a single value, found " + std::to_string(k.size()));
  return k[0];
}

ArgParams topk_params(const Shape& x, int64_t k, const Attributes& a) {
  const std::string op = "TopK";
  if (x.empty()) fail(op, "X", "expected a tensor of rank >= 1, found a scalar");
  ArgParams p;
  p.axis = nn::norm_axis(op, "axis", a.get_int("axis", -1), static_cast<int>(x.size()));
  p.out_shape = x;
  p.len = x[static_cast<size_t>(p.axis)];
  if (k < 0 || k > p.len)
    fail(op, "K",
         "K = " + std::to_string(k) + " is out of range for axis of size " + std::to_string(p.len));
  p.out_shape[static_cast<size_t>(p.axis)] = k;
  for (int i = 0; i < p.axis; ++i) p.outer *= x[static_cast<size_t>(i)];
  for (size_t i = static_cast<size_t>(p.axis) + 1; i < x.size(); ++i) p.inner *= x[i];
  return p;
}

void topk_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const Tensor& X = ctx.inputs[0];
  const int64_t k = topk_k("TopK", ctx.inputs[1]);
  ArgParams p = topk_params(X.shape(), k, ctx.attrs());
  if (ctx.outputs.size() < 2) ctx.fail("outputs", "TopK has two outputs (Values, Indices)");
  Tensor& V = ctx.outputs[0];
  Tensor& I = ctx.outputs[1];
  nn::check_output_shape("TopK", V, p.out_shape);
  nn::check_output_shape("TopK", I, p.out_shape);
  const bool largest = ctx.attrs().get_int("largest", 1) != 0;
  std::vector<int64_t> order(static_cast<size_t>(p.len));
  std::vector<double> v(static_cast<size_t>(p.len));
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t i = 0; i < p.inner; ++i) {
      const int64_t base = o * p.len * p.inner + i;
      for (int64_t j = 0; j < p.len; ++j) v[static_cast<size_t>(j)] = X.get(base + j * p.inner);
      std::iota(order.begin(), order.end(), 0);
      // ties: the lower index first (ONNX)
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const double va = v[static_cast<size_t>(a)], vb = v[static_cast<size_t>(b)];
        // NaN ranks above every number (PyTorch): a strict weak order, first when largest.
        if (std::isnan(va) || std::isnan(vb)) return largest ? !std::isnan(vb) : !std::isnan(va);
        return largest ? va > vb : va < vb;
      });
      for (int64_t j = 0; j < k; ++j) {
        const int64_t out = o * k * p.inner + j * p.inner + i;
        const int64_t src = order[static_cast<size_t>(j)];
        V.set(out, v[static_cast<size_t>(src)]);
        I.data<int64_t>()[out] = src;
      }
    }
}

const OpRegistrar reg_topk{
    OpDef{"TopK",
          "reduce",
          "the K largest (or smallest) values along axis and their indices (i64)",
          2,
          2,
          2,
          2,
          {{"axis", AttrType::Int, "default -1"},
           {"largest", AttrType::Int, "1 (default): largest; 0: smallest"},
           {"sorted", AttrType::Int, "results are always sorted (ties: lower index first)"}},
          [](InferContext& ctx) {
            const int64_t k = topk_k("TopK", ctx.require_constant(1, "K"));
            ArgParams p = topk_params(ctx.shape(0), k, ctx.attrs());
            ctx.set_output(0, ctx.dtype(0), p.out_shape);
            ctx.set_output(1, DType::i64, p.out_shape);
          },
          topk_kernel}};

}  // namespace
}  // namespace anvil
