// Reference kernels: BatchNormalization (inference), InstanceNormalization, LRN,
// LayerNormalization, LpNormalization, MeanVarianceNormalization, Softmax, LogSoftmax, Hardmax
// (ONNX opset-13+ semantics). Double accumulation; every float dtype.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;

void check_channel_vector(const std::string& op, const std::string& field, const Shape& s,
                          int64_t C) {
  if (!(s.size() == 1 && s[0] == C))
    fail(op, field,
         "expected shape (" + std::to_string(C) + ",) (one value per channel), found " +
             shape_str(s));
}

/// outer x C x inner view of a tensor with the channel at axis 1.
struct ChannelView {
  int64_t N = 0, C = 0, inner = 1;
};
ChannelView channel_view(const Shape& s) {
  ChannelView v;
  v.N = s[0];
  v.C = s[1];
  for (size_t i = 2; i < s.size(); ++i) v.inner *= s[i];
  return v;
}

// ---- BatchNormalization (inference) --------------------------------------------------------

void bn_check(const std::string& op, const Shape& x, const std::vector<const Shape*>& params,
              const Attributes& a) {
  if (x.size() < 2)
    fail(op, "X", "expected input of rank >= 2 (N, C, ...), found shape " + shape_str(x));
  if (a.get_int("training_mode", 0) != 0)
    fail(op, "training_mode", "only inference (training_mode = 0) is supported");
  static const char* names[] = {"scale", "B", "input_mean", "input_var"};
  for (size_t i = 0; i < params.size(); ++i) check_channel_vector(op, names[i], *params[i], x[1]);
}

void bn_infer(InferContext& ctx) {
  const std::string op = "BatchNormalization";
  nn::require_float(op, "X", ctx.dtype(0));
  bn_check(op, ctx.shape(0), {&ctx.shape(1), &ctx.shape(2), &ctx.shape(3), &ctx.shape(4)},
           ctx.attrs());
  ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
}

void bn_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 5);
  const std::string op = "BatchNormalization";
  const Tensor& X = ctx.inputs[0];
  bn_check(op, X.shape(),
           {&ctx.inputs[1].shape(), &ctx.inputs[2].shape(), &ctx.inputs[3].shape(),
            &ctx.inputs[4].shape()},
           ctx.attrs());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, X.shape());
  const double eps = ctx.attrs().get_float("epsilon", 1e-5);
  const auto sc = ctx.inputs[1].to_doubles(), b = ctx.inputs[2].to_doubles(),
             mean = ctx.inputs[3].to_doubles(), var = ctx.inputs[4].to_doubles();
  const ChannelView v = channel_view(X.shape());
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t c = 0; c < v.C; ++c) {
      const auto uc = static_cast<size_t>(c);
      const double mul = sc[uc] / std::sqrt(var[uc] + eps);
      for (int64_t i = 0; i < v.inner; ++i) {
        const int64_t k = (n * v.C + c) * v.inner + i;
        Y.set(k, (X.get(k) - mean[uc]) * mul + b[uc]);
      }
    }
}

const OpRegistrar reg_bn{OpDef{
    "BatchNormalization",
    "norm",
    "inference batch norm over channel axis 1: scale*(x-mean)/sqrt(var+epsilon)+B, any rank >= 2",
    5,
    5,
    1,
    1,
    {{"epsilon", AttrType::Float, "added to the variance (default 1e-5)"},
     {"momentum", AttrType::Float, "training only; ignored"},
     {"training_mode", AttrType::Int, "must be 0 (inference)"}},
    bn_infer,
    bn_kernel}};

// ---- InstanceNormalization ----------------------------------------------------------------

void in_infer(InferContext& ctx) {
  const std::string op = "InstanceNormalization";
  nn::require_float(op, "X", ctx.dtype(0));
  const Shape& x = ctx.shape(0);
  if (x.size() < 3)
    fail(op, "X", "expected input of rank >= 3 (N, C, spatial...), found shape " + shape_str(x));
  check_channel_vector(op, "scale", ctx.shape(1), x[1]);
  check_channel_vector(op, "B", ctx.shape(2), x[1]);
  ctx.set_output(0, ctx.dtype(0), x);
}

void in_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 3);
  const std::string op = "InstanceNormalization";
  const Tensor& X = ctx.inputs[0];
  if (X.rank() < 3) fail(op, "X", "expected input of rank >= 3, found " + shape_str(X.shape()));
  check_channel_vector(op, "scale", ctx.inputs[1].shape(), X.shape()[1]);
  check_channel_vector(op, "B", ctx.inputs[2].shape(), X.shape()[1]);
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, X.shape());
  const double eps = ctx.attrs().get_float("epsilon", 1e-5);
  const auto sc = ctx.inputs[1].to_doubles(), b = ctx.inputs[2].to_doubles();
  const ChannelView v = channel_view(X.shape());
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t c = 0; c < v.C; ++c) {
      const int64_t base = (n * v.C + c) * v.inner;
      double mean = 0;
      for (int64_t i = 0; i < v.inner; ++i) mean += X.get(base + i);
      mean /= static_cast<double>(v.inner);
      double var = 0;
      for (int64_t i = 0; i < v.inner; ++i) {
        const double d = X.get(base + i) - mean;
        var += d * d;
      }
      var /= static_cast<double>(v.inner);
      const auto uc = static_cast<size_t>(c);
      const double mul = sc[uc] / std::sqrt(var + eps);
      for (int64_t i = 0; i < v.inner; ++i) Y.set(base + i, (X.get(base + i) - mean) * mul + b[uc]);
    }
}

const OpRegistrar reg_in{
    OpDef{"InstanceNormalization",
          "norm",
          "per (n, c) normalization over the spatial dims, then scale (C) and B (C)",
          3,
          3,
          1,
          1,
          {{"epsilon", AttrType::Float, "added to the variance (default 1e-5)"}},
          in_infer,
          in_kernel}};

// ---- LRN -----------------------------------------------------------------------------------

void lrn_check(const std::string& op, const Shape& x, const Attributes& a) {
  if (x.size() < 3)
    fail(op, "X", "expected input of rank >= 3 (N, C, spatial...), found shape " + shape_str(x));
  if (!a.has("size")) fail(op, "size", "required attribute is missing");
  if (a.get_int("size") < 1)
    fail(op, "size", "must be >= 1, found " + std::to_string(a.get_int("size")));
}

void lrn_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const std::string op = "LRN";
  const Tensor& X = ctx.inputs[0];
  lrn_check(op, X.shape(), ctx.attrs());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, X.shape());
  const int64_t size = ctx.attrs().get_int("size");
  const double alpha = ctx.attrs().get_float("alpha", 1e-4);
  const double beta = ctx.attrs().get_float("beta", 0.75);
  const double bias = ctx.attrs().get_float("bias", 1.0);
  const ChannelView v = channel_view(X.shape());
  // ONNX: square_sum[n,c] = sum over i in [max(0, c - floor((size-1)/2)),
  //                                         min(C-1, c + ceil((size-1)/2))] of x[n,i]^2
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  const std::vector<double> x = X.to_doubles();
  for (int64_t n = 0; n < v.N; ++n)
    for (int64_t c = 0; c < v.C; ++c)
      for (int64_t i = 0; i < v.inner; ++i) {
        double sq = 0;
        for (int64_t cc = std::max<int64_t>(0, c - lo); cc <= std::min(v.C - 1, c + hi); ++cc) {
          const double t = x[static_cast<size_t>((n * v.C + cc) * v.inner + i)];
          sq += t * t;
        }
        const int64_t k = (n * v.C + c) * v.inner + i;
        Y.set(k, x[static_cast<size_t>(k)] /
                     std::pow(bias + alpha / static_cast<double>(size) * sq, beta));
      }
}

const OpRegistrar reg_lrn{OpDef{
    "LRN",
    "norm",
    "local response norm across channels: x / (bias + alpha/size * sum x^2)^beta (ONNX window)",
    1,
    1,
    1,
    1,
    {{"size", AttrType::Int, "number of channels in the window (required)"},
     {"alpha", AttrType::Float, "default 1e-4"},
     {"beta", AttrType::Float, "default 0.75"},
     {"bias", AttrType::Float, "default 1"}},
    [](InferContext& ctx) {
      nn::require_float("LRN", "X", ctx.dtype(0));
      lrn_check("LRN", ctx.shape(0), ctx.attrs());
      ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
    },
    lrn_kernel}};

// ---- Softmax family: along one axis (opset 13) -----------------------------------------------

/// outer x axis x inner view of a tensor around `axis`.
struct AxisView {
  int64_t outer = 1, len = 1, inner = 1;
};
AxisView axis_view(const Shape& s, int axis) {
  AxisView v;
  for (int i = 0; i < axis; ++i) v.outer *= s[static_cast<size_t>(i)];
  v.len = s[static_cast<size_t>(axis)];
  for (size_t i = static_cast<size_t>(axis) + 1; i < s.size(); ++i) v.inner *= s[i];
  return v;
}

enum class SoftKind { Softmax, LogSoftmax, Hardmax };

void softmax_kernel(SoftKind kind, const std::string& op, KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  if (X.rank() < 1) fail(op, "input", "expected a tensor of rank >= 1, found a scalar");
  const int axis = nn::norm_axis(op, "axis", ctx.attrs().get_int("axis", -1), X.rank());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, X.shape());
  const AxisView v = axis_view(X.shape(), axis);
  const std::vector<double> x = X.to_doubles();
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      const int64_t base = o * v.len * v.inner + i;
      auto at = [&](int64_t j) { return base + j * v.inner; };
      double mx = -std::numeric_limits<double>::infinity();
      int64_t arg = 0;
      for (int64_t j = 0; j < v.len; ++j) {
        const double t = x[static_cast<size_t>(at(j))];
        if (t > mx || (std::isnan(t) && !std::isnan(mx))) mx = t, arg = j;  // NaN: all NaN
      }
      if (kind == SoftKind::Hardmax) {
        for (int64_t j = 0; j < v.len; ++j) Y.set(at(j), j == arg ? 1.0 : 0.0);
        continue;
      }
      double sum = 0;
      for (int64_t j = 0; j < v.len; ++j) sum += std::exp(x[static_cast<size_t>(at(j))] - mx);
      for (int64_t j = 0; j < v.len; ++j) {
        const double d = x[static_cast<size_t>(at(j))] - mx;
        Y.set(at(j), kind == SoftKind::Softmax ? std::exp(d) / sum : d - std::log(sum));
      }
    }
}

OpDef softmax_def(SoftKind kind, const std::string& name, const std::string& doc) {
  OpDef d;
  d.name = name;
  d.category = "activation";
  d.doc = doc;
  d.attrs = {{"axis", AttrType::Int, "the axis to normalize along (default -1)"}};
  d.infer = [name](InferContext& ctx) {
    nn::require_float(name, "input", ctx.dtype(0));
    if (ctx.rank(0) < 1) ctx.fail("input", "expected a tensor of rank >= 1, found a scalar");
    nn::norm_axis(name, "axis", ctx.attrs().get_int("axis", -1), ctx.rank(0));
    ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
  };
  d.reference = [kind, name](KernelContext& ctx) { softmax_kernel(kind, name, ctx); };
  return d;
}

const OpRegistrar reg_softmax{softmax_def(
    SoftKind::Softmax, "Softmax", "exp(x - max) / sum exp(x - max) along one axis (opset 13)")};
const OpRegistrar reg_logsoftmax{
    softmax_def(SoftKind::LogSoftmax, "LogSoftmax",
                "x - max - log(sum exp(x - max)) along one axis (opset 13)")};
const OpRegistrar reg_hardmax{softmax_def(
    SoftKind::Hardmax, "Hardmax", "1 at the first maximum along one axis, 0 elsewhere (opset 13)")};

// ---- LpNormalization -----------------------------------------------------------------------

void lpnorm_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const std::string op = "LpNormalization";
  const Tensor& X = ctx.inputs[0];
  if (X.rank() < 1) fail(op, "input", "expected a tensor of rank >= 1");
  const int axis = nn::norm_axis(op, "axis", ctx.attrs().get_int("axis", -1), X.rank());
  const int64_t p = ctx.attrs().get_int("p", 2);
  if (p != 1 && p != 2) fail(op, "p", "must be 1 or 2, found " + std::to_string(p));
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, X.shape());
  const AxisView v = axis_view(X.shape(), axis);
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      const int64_t base = o * v.len * v.inner + i;
      double norm = 0;
      for (int64_t j = 0; j < v.len; ++j) {
        const double t = X.get(base + j * v.inner);
        norm += p == 1 ? std::abs(t) : t * t;
      }
      if (p == 2) norm = std::sqrt(norm);
      for (int64_t j = 0; j < v.len; ++j) {
        const double t = X.get(base + j * v.inner);
        Y.set(base + j * v.inner, norm == 0 ? 0.0 : t / norm);
      }
    }
}

const OpRegistrar reg_lpnorm{
    OpDef{"LpNormalization",
          "norm",
          "x / ||x||_p along one axis (p = 1 or 2; zero norm gives 0)",
          1,
          1,
          1,
          1,
          {{"axis", AttrType::Int, "default -1"}, {"p", AttrType::Int, "1 or 2 (default 2)"}},
          [](InferContext& ctx) {
            nn::require_float("LpNormalization", "input", ctx.dtype(0));
            if (ctx.rank(0) < 1) ctx.fail("input", "expected a tensor of rank >= 1");
            nn::norm_axis("LpNormalization", "axis", ctx.attrs().get_int("axis", -1), ctx.rank(0));
            int64_t p = ctx.attrs().get_int("p", 2);
            if (p != 1 && p != 2) ctx.fail("p", "must be 1 or 2, found " + std::to_string(p));
            ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
          },
          lpnorm_kernel}};

// ---- LayerNormalization (opset 17) ---------------------------------------------------------

struct LnParams {
  int axis = 0;
  int64_t outer = 1, inner = 1;
  Shape stat_shape;  // X.shape[:axis] + 1s
};

void ln_check_param(const std::string& field, const Shape& p, const Shape& x, int axis) {
  const size_t norm_rank = x.size() - static_cast<size_t>(axis);
  if (p.size() > norm_rank)
    fail("LayerNormalization", field,
         "shape " + shape_str(p) + " is not broadcastable to the normalized dims of " +
             shape_str(x));
  for (size_t i = 0; i < p.size(); ++i) {
    const int64_t want = x[x.size() - p.size() + i];
    if (p[i] != want && p[i] != 1)
      fail("LayerNormalization", field,
           "shape " + shape_str(p) + " is not broadcastable to the normalized dims of " +
               shape_str(x));
  }
}

LnParams ln_params(const Shape& x, const Shape& scale, const Shape* b, const Attributes& a) {
  const std::string op = "LayerNormalization";
  if (x.empty()) fail(op, "X", "expected a tensor of rank >= 1");
  LnParams p;
  p.axis = nn::norm_axis(op, "axis", a.get_int("axis", -1), static_cast<int>(x.size()));
  for (int i = 0; i < static_cast<int>(x.size()); ++i) {
    if (i < p.axis) {
      p.outer *= x[static_cast<size_t>(i)];
      p.stat_shape.push_back(x[static_cast<size_t>(i)]);
    } else {
      p.inner *= x[static_cast<size_t>(i)];
      p.stat_shape.push_back(1);
    }
  }
  ln_check_param("Scale", scale, x, p.axis);
  if (b) ln_check_param("B", *b, x, p.axis);
  return p;
}

/// Values of a parameter broadcast to the `inner` normalized elements.
std::vector<double> ln_expand(const Tensor& t, const Shape& x, int axis, int64_t inner) {
  Shape norm(x.begin() + axis, x.end());
  std::vector<double> out(static_cast<size_t>(inner));
  const Shape& ps = t.shape();
  const size_t off = norm.size() - ps.size();
  const auto pst = nn::strides_of(ps);
  for (int64_t e = 0; e < inner; ++e) {
    int64_t r = e, src = 0;
    for (size_t d = norm.size(); d-- > 0;) {
      const int64_t id = r % norm[d];
      r /= norm[d];
      if (d >= off && ps[d - off] != 1) src += id * pst[d - off];
    }
    out[static_cast<size_t>(e)] = t.get(src);
  }
  return out;
}

void ln_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const std::string op = "LayerNormalization";
  const Tensor& X = ctx.inputs[0];
  const Tensor& S = ctx.inputs[1];
  const bool has_b = ctx.inputs.size() > 2 && ctx.inputs[2].defined();
  LnParams p =
      ln_params(X.shape(), S.shape(), has_b ? &ctx.inputs[2].shape() : nullptr, ctx.attrs());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, X.shape());
  Tensor* M = ctx.outputs.size() > 1 && ctx.outputs[1].defined() ? &ctx.outputs[1] : nullptr;
  Tensor* R = ctx.outputs.size() > 2 && ctx.outputs[2].defined() ? &ctx.outputs[2] : nullptr;
  if (M) nn::check_output_shape(op, *M, p.stat_shape);
  if (R) nn::check_output_shape(op, *R, p.stat_shape);
  const double eps = ctx.attrs().get_float("epsilon", 1e-5);
  const auto sc = ln_expand(S, X.shape(), p.axis, p.inner);
  const auto b = has_b ? ln_expand(ctx.inputs[2], X.shape(), p.axis, p.inner)
                       : std::vector<double>(static_cast<size_t>(p.inner), 0.0);
  for (int64_t o = 0; o < p.outer; ++o) {
    const int64_t base = o * p.inner;
    double mean = 0;
    for (int64_t i = 0; i < p.inner; ++i) mean += X.get(base + i);
    mean /= static_cast<double>(p.inner);
    double var = 0;
    for (int64_t i = 0; i < p.inner; ++i) {
      const double d = X.get(base + i) - mean;
      var += d * d;
    }
    var /= static_cast<double>(p.inner);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < p.inner; ++i)
      Y.set(base + i, (X.get(base + i) - mean) * inv * sc[static_cast<size_t>(i)] +
                          b[static_cast<size_t>(i)]);
    if (M) M->set(o, mean);
    if (R) R->set(o, inv);
  }
}

const OpRegistrar reg_ln{
    OpDef{"LayerNormalization",
          "norm",
          "normalize over dims [axis, rank) then * Scale + B (opset 17); optional Mean, InvStdDev "
          "outputs",
          2,
          3,
          1,
          3,
          {{"axis", AttrType::Int, "first normalized dim (default -1)"},
           {"epsilon", AttrType::Float, "default 1e-5"},
           {"stash_type", AttrType::Int, "precision of the statistics; the reference uses double"}},
          [](InferContext& ctx) {
            nn::require_float("LayerNormalization", "X", ctx.dtype(0));
            LnParams p = ln_params(ctx.shape(0), ctx.shape(1),
                                   ctx.has_input(2) ? &ctx.shape(2) : nullptr, ctx.attrs());
            ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
            const DType st = ctx.attrs().get_int("stash_type", 1) == 1 ? DType::f32 : ctx.dtype(0);
            for (int i = 1; i < ctx.num_outputs(); ++i) ctx.set_output(i, st, p.stat_shape);
          },
          ln_kernel}};

// ---- MeanVarianceNormalization -------------------------------------------------------------

/// Group index (over the non-normalized dims) of every element.
std::vector<int64_t> mvn_groups(const Shape& x, const std::vector<bool>& reduced,
                                int64_t& ngroups) {
  const size_t r = x.size();
  std::vector<int64_t> gst(r, 0);
  int64_t s = 1;
  for (size_t d = r; d-- > 0;)
    if (!reduced[d]) {
      gst[d] = s;
      s *= x[d];
    }
  ngroups = s;
  const int64_t n = shape_numel(x);
  std::vector<int64_t> g(static_cast<size_t>(n));
  std::vector<int64_t> idx(r, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t gi = 0;
    for (size_t d = 0; d < r; ++d) gi += idx[d] * gst[d];
    g[static_cast<size_t>(i)] = gi;
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < x[d]) break;
      idx[d] = 0;
    }
  }
  return g;
}

std::vector<bool> mvn_axes(const Shape& x, const Attributes& a) {
  const std::string op = "MeanVarianceNormalization";
  const int rank = static_cast<int>(x.size());
  std::vector<bool> red(x.size(), false);
  for (int64_t ax : a.get_ints("axes", {0, 2, 3}))
    red[static_cast<size_t>(nn::norm_axis(op, "axes", ax, rank))] = true;
  return red;
}

void mvn_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const std::string op = "MeanVarianceNormalization";
  const Tensor& X = ctx.inputs[0];
  const auto red = mvn_axes(X.shape(), ctx.attrs());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, X.shape());
  int64_t ng = 0;
  const auto g = mvn_groups(X.shape(), red, ng);
  const std::vector<double> x = X.to_doubles();
  std::vector<double> mean(static_cast<size_t>(ng), 0.0), var(static_cast<size_t>(ng), 0.0);
  const double per = ng ? static_cast<double>(X.numel()) / static_cast<double>(ng) : 1.0;
  for (size_t i = 0; i < x.size(); ++i) mean[static_cast<size_t>(g[i])] += x[i];
  for (double& m : mean) m /= per;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - mean[static_cast<size_t>(g[i])];
    var[static_cast<size_t>(g[i])] += d * d;
  }
  for (double& v : var) v /= per;
  // ONNX function body: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9)
  for (size_t i = 0; i < x.size(); ++i) {
    const auto gi = static_cast<size_t>(g[i]);
    Y.set(static_cast<int64_t>(i), (x[i] - mean[gi]) / (std::sqrt(var[gi]) + 1e-9));
  }
}

const OpRegistrar reg_mvn{
    OpDef{"MeanVarianceNormalization",
          "norm",
          "(x - mean) / (std + 1e-9) with statistics over `axes` (default [0, 2, 3])",
          1,
          1,
          1,
          1,
          {{"axes", AttrType::Ints, "the axes to compute the statistics over (default [0, 2, 3])"}},
          [](InferContext& ctx) {
            nn::require_float("MeanVarianceNormalization", "X", ctx.dtype(0));
            mvn_axes(ctx.shape(0), ctx.attrs());
            ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
          },
          mvn_kernel}};

}  // namespace
}  // namespace anvil
