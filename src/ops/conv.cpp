// Reference kernels: Conv and ConvTranspose (ONNX semantics, 1-D/2-D/3-D, groups, dilations,
// explicit asymmetric pads, fused activation). Plain loops, double accumulation.
#include <algorithm>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;
using nn::ints_str;

/// Spatial parameters of a Conv / ConvTranspose node, padded to 3 spatial dims for the loops
/// (leading dims of size 1 when the op is 1-D or 2-D).
struct ConvParams {
  int nsp = 0;  // spatial rank, 1..3
  int64_t N = 0, C = 0, M = 0, group = 1;
  std::vector<int64_t> in, k, s, d, pb, pe, op, out;  // each nsp long
  Shape out_shape;
};

std::vector<int64_t> spatial_attr(const std::string& op, const Attributes& a,
                                  const std::string& name, int nsp, int64_t dflt,
                                  int64_t min_value) {
  auto v = a.get_ints(name, std::vector<int64_t>(static_cast<size_t>(nsp), dflt));
  if (static_cast<int>(v.size()) != nsp)
    fail(op, name,
         "expected " + std::to_string(nsp) + " values (one per spatial dim), found " +
             std::to_string(v.size()) + " " + ints_str(v));
  for (int64_t x : v)
    if (x < min_value)
      fail(op, name, "values must be >= " + std::to_string(min_value) + ", found " + ints_str(v));
  return v;
}

void read_pads(const std::string& op, const Attributes& a, int nsp, ConvParams& p) {
  auto pads = a.get_ints("pads", std::vector<int64_t>(static_cast<size_t>(2 * nsp), 0));
  if (static_cast<int>(pads.size()) != 2 * nsp)
    fail(op, "pads",
         "expected " + std::to_string(2 * nsp) + " values [x1_begin, ..., x1_end, ...], found " +
             std::to_string(pads.size()) + " " + ints_str(pads));
  for (int64_t x : pads)
    if (x < 0) fail(op, "pads", "negative padding " + ints_str(pads));
  p.pb.assign(pads.begin(), pads.begin() + nsp);
  p.pe.assign(pads.begin() + nsp, pads.end());
}

void check_common(const std::string& op, const Shape& x, const Shape& w, const Attributes& a,
                  ConvParams& p) {
  if (x.size() < 3 || x.size() > 5)
    fail(op, "X",
         "expected input of rank 3, 4 or 5 (N, C, spatial...), found shape " + shape_str(x));
  if (w.size() != x.size())
    fail(op, "W",
         "weights of shape " + shape_str(w) + " do not match input rank " +
             std::to_string(x.size()) + " (expected " + std::to_string(x.size()) + "-D weights)");
  p.nsp = static_cast<int>(x.size()) - 2;
  p.N = x[0];
  p.C = x[1];
  p.group = a.get_int("group", 1);
  if (p.group < 1) fail(op, "group", "group must be >= 1, found " + std::to_string(p.group));
  p.in.assign(x.begin() + 2, x.end());
  p.k.assign(w.begin() + 2, w.end());
  for (int64_t kk : p.k)
    if (kk < 1) fail(op, "W", "kernel dims must be >= 1, found weights " + shape_str(w));
  if (a.has("kernel_shape")) {
    auto ks = a.get_ints("kernel_shape");
    if (ks != p.k)
      fail(op, "kernel_shape",
           "kernel_shape " + ints_str(ks) + " does not match the weights' spatial dims " +
               ints_str(p.k) + " (weights " + shape_str(w) + ")");
  }
  p.s = spatial_attr(op, a, "strides", p.nsp, 1, 1);
  p.d = spatial_attr(op, a, "dilations", p.nsp, 1, 1);
  read_pads(op, a, p.nsp, p);
}

void check_bias(const std::string& op, const Shape* b, int64_t M) {
  if (!b) return;
  if (!(b->size() == 1 && (*b)[0] == M))
    fail(op, "B", "bias must have shape (" + std::to_string(M) + ",), found " + shape_str(*b));
}

ConvParams conv_params(const Shape& x, const Shape& w, const Shape* b, const Attributes& a) {
  const std::string op = "Conv";
  ConvParams p;
  check_common(op, x, w, a, p);
  p.M = w[0];
  if (p.C % p.group != 0)
    fail(op, "group",
         "input channels " + std::to_string(p.C) + " are not divisible by group " +
             std::to_string(p.group));
  if (p.M % p.group != 0)
    fail(op, "group",
         "output channels (weights dim 0 = " + std::to_string(p.M) +
             ") are not divisible by group " + std::to_string(p.group));
  if (w[1] * p.group != p.C)
    fail(op, "W",
         "weights " + shape_str(w) + " expect " + std::to_string(w[1]) + " x group " +
             std::to_string(p.group) + " = " + std::to_string(w[1] * p.group) +
             " input channels (OIHW: M x C/group x k...), but the input " + shape_str(x) + " has " +
             std::to_string(p.C));
  check_bias(op, b, p.M);
  p.out.resize(static_cast<size_t>(p.nsp));
  p.out_shape = {p.N, p.M};
  for (int i = 0; i < p.nsp; ++i) {
    auto u = static_cast<size_t>(i);
    int64_t ek = (p.k[u] - 1) * p.d[u] + 1;
    int64_t span = p.in[u] + p.pb[u] + p.pe[u] - ek;
    if (span < 0)
      fail(op, "kernel_shape",
           "dilated kernel extent " + std::to_string(ek) + " is larger than the padded input " +
               std::to_string(p.in[u] + p.pb[u] + p.pe[u]) + " in spatial dim " +
               std::to_string(i));
    p.out[u] = span / p.s[u] + 1;
    p.out_shape.push_back(p.out[u]);
  }
  return p;
}

ConvParams convt_params(const Shape& x, const Shape& w, const Shape* b, const Attributes& a) {
  const std::string op = "ConvTranspose";
  ConvParams p;
  check_common(op, x, w, a, p);
  if (w[0] != p.C)
    fail(op, "W",
         "weights " + shape_str(w) + " must have dim 0 = input channels " + std::to_string(p.C) +
             " (C x M/group x k...)");
  if (p.C % p.group != 0)
    fail(op, "group",
         "input channels " + std::to_string(p.C) + " are not divisible by group " +
             std::to_string(p.group));
  p.M = w[1] * p.group;
  check_bias(op, b, p.M);
  p.op = spatial_attr(op, a, "output_padding", p.nsp, 0, 0);
  for (int i = 0; i < p.nsp; ++i) {
    auto u = static_cast<size_t>(i);
    if (p.op[u] >= std::max(p.s[u], p.d[u]))
      fail(op, "output_padding",
           "output_padding " + ints_str(p.op) + " must be smaller than max(stride, dilation)");
  }
  if (a.has("output_shape")) {
    auto os = a.get_ints("output_shape");
    if (static_cast<int>(os.size()) == p.nsp + 2) os.erase(os.begin(), os.begin() + 2);
    if (static_cast<int>(os.size()) != p.nsp)
      fail(op, "output_shape",
           "expected " + std::to_string(p.nsp) + " spatial sizes, found " + ints_str(os));
    // ONNX: total_padding = stride*(in-1) + output_padding + ((k-1)*d+1) - output_shape;
    // pads_begin = total - floor(total/2), pads_end = floor(total/2) (auto_pad NOTSET).
    for (int i = 0; i < p.nsp; ++i) {
      auto u = static_cast<size_t>(i);
      if (os[u] < 1) fail(op, "output_shape", "sizes must be >= 1, found " + ints_str(os));
      int64_t total = p.s[u] * (p.in[u] - 1) + p.op[u] + ((p.k[u] - 1) * p.d[u] + 1) - os[u];
      p.pe[u] = nn::floor_div(total, 2);
      p.pb[u] = total - p.pe[u];
    }
  }
  p.out.resize(static_cast<size_t>(p.nsp));
  p.out_shape = {p.N, p.M};
  for (int i = 0; i < p.nsp; ++i) {
    auto u = static_cast<size_t>(i);
    p.out[u] = p.s[u] * (p.in[u] - 1) + p.op[u] + ((p.k[u] - 1) * p.d[u] + 1) - p.pb[u] - p.pe[u];
    if (p.in[u] < 1 || p.out[u] < 1)
      fail(op, "pads",
           "output spatial dim " + std::to_string(i) + " would be " + std::to_string(p.out[u]) +
               " (input " + std::to_string(p.in[u]) + ", pads too large?)");
    p.out_shape.push_back(p.out[u]);
  }
  return p;
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
  nn::read_activation(op, ctx.attrs());
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
  nn::FusedActivation act = nn::read_activation("Conv", ctx.attrs());
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
  nn::FusedActivation act = nn::read_activation("ConvTranspose", ctx.attrs());
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
