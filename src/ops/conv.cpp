// Reference kernels: Conv and ConvTranspose (ONNX semantics, 1-D/2-D/3-D, groups, dilations,
// explicit asymmetric pads, fused activation). Plain loops, double accumulation.
#include <algorithm>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/attrs.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;
using nn::ints_str;

using ConvParams = ConvAttrs;  // parsed once, src/ops/attrs.cpp

ConvParams conv_params(const Shape& x, const Shape& w, const Shape* b, const Attributes& a) {
  return parse_conv_attrs("Conv", a, x, w, b);
}
ConvParams convt_params(const Shape& x, const Shape& w, const Shape* b, const Attributes& a) {
  return parse_conv_attrs("ConvTranspose", a, x, w, b);
}

/// Pads the spatial vectors to 3 dims (leading 1s / 0s).
struct Sp3 {
  int64_t in[3], k[3], s[3], d[3], pb[3], out[3];
};
Sp3 to3(const ConvParams& p) {
  Sp3 r;
  int off = 3 - p.nsp;
  for (int i = 0; i < 3; ++i) {
    bool real = i >= off;
    auto u = static_cast<size_t>(i - off);
    r.in[i] = real ? p.in[u] : 1;
    r.k[i] = real ? p.k[u] : 1;
    r.s[i] = real ? p.s[u] : 1;
    r.d[i] = real ? p.d[u] : 1;
    r.pb[i] = real ? p.pb[u] : 0;
    r.out[i] = real ? p.out[u] : 1;
  }
  return r;
}

const Shape* opt_shape(InferContext& ctx, int i) {
  return ctx.has_input(i) ? &ctx.shape(i) : nullptr;
}
const Shape* opt_shape(KernelContext& ctx, int i) {
  return (static_cast<int>(ctx.inputs.size()) > i && ctx.inputs[static_cast<size_t>(i)].defined())
             ? &ctx.inputs[static_cast<size_t>(i)].shape()
             : nullptr;
}

void infer_conv_like(InferContext& ctx, bool transpose) {
  const std::string op = transpose ? "ConvTranspose" : "Conv";
  nn::require_float(op, "X", ctx.dtype(0));
  nn::require_float(op, "W", ctx.dtype(1));
  if (ctx.has_input(2)) nn::require_float(op, "B", ctx.dtype(2));
  ConvParams p = transpose
                     ? convt_params(ctx.shape(0), ctx.shape(1), opt_shape(ctx, 2), ctx.attrs())
                     : conv_params(ctx.shape(0), ctx.shape(1), opt_shape(ctx, 2), ctx.attrs());
  ctx.set_output(0, ctx.dtype(0), p.out_shape);
}

void conv_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const Tensor& X = ctx.inputs[0];
  const Tensor& W = ctx.inputs[1];
  const Shape* bs = opt_shape(ctx, 2);
  ConvParams p = conv_params(X.shape(), W.shape(), bs, ctx.attrs());
  const FusedActivation& act = p.act;
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape("Conv", Y, p.out_shape);
  const std::vector<double> x = X.to_doubles(), w = W.to_doubles();
  std::vector<double> bias(static_cast<size_t>(p.M), 0.0);
  if (bs) bias = ctx.inputs[2].to_doubles();
  const Sp3 q = to3(p);
  const int64_t Cg = p.C / p.group, Mg = p.M / p.group;
  const int64_t in_sp = q.in[0] * q.in[1] * q.in[2];
  const int64_t out_sp = q.out[0] * q.out[1] * q.out[2];
  const int64_t k_sp = q.k[0] * q.k[1] * q.k[2];
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t m = 0; m < p.M; ++m) {
      const int64_t g = m / Mg;
      const double* wm = w.data() + m * Cg * k_sp;
      for (int64_t o0 = 0; o0 < q.out[0]; ++o0)
        for (int64_t o1 = 0; o1 < q.out[1]; ++o1)
          for (int64_t o2 = 0; o2 < q.out[2]; ++o2) {
            double acc = bias[static_cast<size_t>(m)];
            for (int64_t c = 0; c < Cg; ++c) {
              const double* xc = x.data() + (n * p.C + g * Cg + c) * in_sp;
              const double* wc = wm + c * k_sp;
              for (int64_t k0 = 0; k0 < q.k[0]; ++k0) {
                int64_t i0 = o0 * q.s[0] - q.pb[0] + k0 * q.d[0];
                if (i0 < 0 || i0 >= q.in[0]) continue;
                for (int64_t k1 = 0; k1 < q.k[1]; ++k1) {
                  int64_t i1 = o1 * q.s[1] - q.pb[1] + k1 * q.d[1];
                  if (i1 < 0 || i1 >= q.in[1]) continue;
                  for (int64_t k2 = 0; k2 < q.k[2]; ++k2) {
                    int64_t i2 = o2 * q.s[2] - q.pb[2] + k2 * q.d[2];
                    if (i2 < 0 || i2 >= q.in[2]) continue;
                    acc += xc[(i0 * q.in[1] + i1) * q.in[2] + i2] *
                           wc[(k0 * q.k[1] + k1) * q.k[2] + k2];
                  }
                }
              }
            }
            int64_t oi = (n * p.M + m) * out_sp + (o0 * q.out[1] + o1) * q.out[2] + o2;
            Y.set(oi, act(acc));
          }
    }
}

void convt_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const Tensor& X = ctx.inputs[0];
  const Tensor& W = ctx.inputs[1];
  const Shape* bs = opt_shape(ctx, 2);
  ConvParams p = convt_params(X.shape(), W.shape(), bs, ctx.attrs());
  const FusedActivation& act = p.act;
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape("ConvTranspose", Y, p.out_shape);
  const std::vector<double> x = X.to_doubles(), w = W.to_doubles();
  std::vector<double> bias(static_cast<size_t>(p.M), 0.0);
  if (bs) bias = ctx.inputs[2].to_doubles();
  const Sp3 q = to3(p);
  const int64_t Cg = p.C / p.group, Mg = p.M / p.group;
  const int64_t in_sp = q.in[0] * q.in[1] * q.in[2];
  const int64_t out_sp = q.out[0] * q.out[1] * q.out[2];
  const int64_t k_sp = q.k[0] * q.k[1] * q.k[2];
  std::vector<double> y(static_cast<size_t>(p.N * p.M * out_sp), 0.0);
  // y[n, g*Mg+mo, i*s - pb + k*d] += x[n, ci, i] * w[ci, mo, k]   (ci in group g)
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t ci = 0; ci < p.C; ++ci) {
      const int64_t g = ci / Cg;
      const double* xc = x.data() + (n * p.C + ci) * in_sp;
      for (int64_t mo = 0; mo < Mg; ++mo) {
        const int64_t m = g * Mg + mo;
        const double* wc = w.data() + (ci * Mg + mo) * k_sp;
        double* ym = y.data() + (n * p.M + m) * out_sp;
        for (int64_t i0 = 0; i0 < q.in[0]; ++i0)
          for (int64_t i1 = 0; i1 < q.in[1]; ++i1)
            for (int64_t i2 = 0; i2 < q.in[2]; ++i2) {
              const double xv = xc[(i0 * q.in[1] + i1) * q.in[2] + i2];
              for (int64_t k0 = 0; k0 < q.k[0]; ++k0) {
                int64_t o0 = i0 * q.s[0] - q.pb[0] + k0 * q.d[0];
                if (o0 < 0 || o0 >= q.out[0]) continue;
                for (int64_t k1 = 0; k1 < q.k[1]; ++k1) {
                  int64_t o1 = i1 * q.s[1] - q.pb[1] + k1 * q.d[1];
                  if (o1 < 0 || o1 >= q.out[1]) continue;
                  for (int64_t k2 = 0; k2 < q.k[2]; ++k2) {
                    int64_t o2 = i2 * q.s[2] - q.pb[2] + k2 * q.d[2];
                    if (o2 < 0 || o2 >= q.out[2]) continue;
                    ym[(o0 * q.out[1] + o1) * q.out[2] + o2] +=
                        xv * wc[(k0 * q.k[1] + k1) * q.k[2] + k2];
                  }
                }
              }
            }
      }
    }
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t m = 0; m < p.M; ++m)
      for (int64_t o = 0; o < out_sp; ++o) {
        int64_t oi = (n * p.M + m) * out_sp + o;
        Y.set(oi, act(y[static_cast<size_t>(oi)] + bias[static_cast<size_t>(m)]));
      }
}

std::vector<AttrSpec> conv_attrs(bool transpose) {
  std::vector<AttrSpec> a = {
      {"kernel_shape", AttrType::Ints, "spatial kernel size (optional; must match the weights)"},
      {"strides", AttrType::Ints, "stride per spatial dim (default 1)"},
      {"pads", AttrType::Ints, "[x1_begin, x2_begin, ..., x1_end, x2_end, ...] (default 0)"},
      {"dilations", AttrType::Ints, "dilation per spatial dim (default 1)"},
      {"group", AttrType::Int, "number of groups (default 1)"},
  };
  if (transpose) {
    a.push_back(
        {"output_padding", AttrType::Ints, "extra size added at the end of each spatial dim"});
    a.push_back(
        {"output_shape", AttrType::Ints,
         "spatial output size; pads are then computed as ONNX does (begin = total - total/2)"});
  }
  for (auto& s : nn::activation_attr_specs()) a.push_back(s);
  return a;
}

const OpRegistrar reg_conv{OpDef{
    "Conv", "conv",
    "N-D convolution (1-3 spatial dims): X (N,C,...), W (M, C/group, k...), optional B (M)", 2, 3,
    1, 1, conv_attrs(false), [](InferContext& ctx) { infer_conv_like(ctx, false); }, conv_kernel}};

const OpRegistrar reg_convt{OpDef{"ConvTranspose", "conv",
                                  "N-D transposed convolution (1-3 spatial dims): X (N,C,...), W "
                                  "(C, M/group, k...), optional B (M)",
                                  2, 3, 1, 1, conv_attrs(true),
                                  [](InferContext& ctx) { infer_conv_like(ctx, true); },
                                  convt_kernel}};

}  // namespace
}  // namespace anvil
