// Reference kernels: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool,
// GlobalLpPool (ONNX semantics, 1-D/2-D/3-D). Output size and divisor rules:
//   floor mode: out = floor((in + pb + pe - ((k-1)*d+1)) / s) + 1
//   ceil mode:  out = ceil(...) + 1, then out -= 1 if (out-1)*s >= in + pb (the last window
//               must start inside the input or the begin padding; PyTorch's and Caffe's rule).
//   AveragePool count_include_pad=1: divisor = window cells inside [-pb, in + pe);
//               count_include_pad=0: divisor = window cells inside the input.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/attrs.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;
using nn::ints_str;

const char* kind_name(PoolKind k) { return pool_op_name(k); }

using PoolParams = PoolAttrs;  // parsed once, src/ops/attrs.cpp

PoolParams pool_params(PoolKind kind, const Shape& x, const Attributes& a) {
  return parse_pool_attrs(kind, a, x);
}

void pool_kernel(PoolKind kind, KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const std::string op = kind_name(kind);
  const Tensor& X = ctx.inputs[0];
  const PoolParams p = pool_params(kind, X.shape(), ctx.attrs());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, p.out_shape);
  Tensor* I = ctx.outputs.size() > 1 ? &ctx.outputs[1] : nullptr;
  if (I) nn::check_output_shape(op, *I, p.out_shape);
  const std::vector<double> x = X.to_doubles();
  const int64_t in_sp = p.in[0] * p.in[1] * p.in[2];
  const int64_t out_sp = p.out[0] * p.out[1] * p.out[2];
  for (int64_t nc = 0; nc < p.N * p.C; ++nc) {
    const double* xc = x.data() + nc * in_sp;
    for (int64_t o0 = 0; o0 < p.out[0]; ++o0)
      for (int64_t o1 = 0; o1 < p.out[1]; ++o1)
        for (int64_t o2 = 0; o2 < p.out[2]; ++o2) {
          double acc = kind == PoolKind::Max ? -std::numeric_limits<double>::infinity() : 0.0;
          int64_t best = -1, n_in = 0, n_pad = 0;
          for (int64_t k0 = 0; k0 < p.k[0]; ++k0) {
            const int64_t i0 = o0 * p.s[0] - p.pb[0] + k0 * p.d[0];
            const bool pad0 = i0 >= -p.pb[0] && i0 < p.in[0] + p.pe[0];
            const bool in0 = i0 >= 0 && i0 < p.in[0];
            for (int64_t k1 = 0; k1 < p.k[1]; ++k1) {
              const int64_t i1 = o1 * p.s[1] - p.pb[1] + k1 * p.d[1];
              const bool pad1 = pad0 && i1 >= -p.pb[1] && i1 < p.in[1] + p.pe[1];
              const bool in1 = in0 && i1 >= 0 && i1 < p.in[1];
              for (int64_t k2 = 0; k2 < p.k[2]; ++k2) {
                const int64_t i2 = o2 * p.s[2] - p.pb[2] + k2 * p.d[2];
                if (pad1 && i2 >= -p.pb[2] && i2 < p.in[2] + p.pe[2]) ++n_pad;
                if (!(in1 && i2 >= 0 && i2 < p.in[2])) continue;
                ++n_in;
                const int64_t idx = (i0 * p.in[1] + i1) * p.in[2] + i2;
                const double v = xc[idx];
                if (kind == PoolKind::Max) {
                  if (best < 0 || v > acc || std::isnan(v)) {  // NaN wins (PyTorch)
                    acc = v;
                    best = idx;
                  }
                } else if (kind == PoolKind::Avg) {
                  acc += v;
                } else {
                  acc += std::pow(std::abs(v), p.p);
                }
              }
            }
          }
          double y = acc;
          if (kind == PoolKind::Avg) {
            const int64_t div = p.include_pad ? n_pad : n_in;
            y = div > 0 ? acc / static_cast<double>(div) : 0.0;
          } else if (kind == PoolKind::Lp) {
            y = std::pow(acc, 1.0 / p.p);
          }
          const int64_t oi = nc * out_sp + (o0 * p.out[1] + o1) * p.out[2] + o2;
          Y.set(oi, y);
          if (I) {
            int64_t flat = best;
            if (best >= 0 && p.storage_order == 1) {
              // column major over the real spatial dims
              int64_t i2 = best % p.in[2], r = best / p.in[2];
              int64_t i1 = r % p.in[1], i0 = r / p.in[1];
              flat = p.nsp == 1   ? i2
                     : p.nsp == 2 ? i2 * p.in[1] + i1
                                  : (i2 * p.in[1] + i1) * p.in[0] + i0;
            }
            I->data<int64_t>()[oi] = best < 0 ? -1 : nc * in_sp + flat;
          }
        }
  }
}

void pool_infer(PoolKind kind, InferContext& ctx) {
  if (kind != PoolKind::Max)
    nn::require_float(kind_name(kind), "X", ctx.dtype(0));
  else if (ctx.dtype(0) == DType::boolean)
    ctx.fail("X", "expected a numeric tensor, found bool");
  PoolParams p = pool_params(kind, ctx.shape(0), ctx.attrs());
  ctx.set_output(0, ctx.dtype(0), p.out_shape);
  if (ctx.num_outputs() > 1) ctx.set_output(1, DType::i64, p.out_shape);
}

std::vector<AttrSpec> pool_attrs(PoolKind kind) {
  std::vector<AttrSpec> a = {
      {"kernel_shape", AttrType::Ints, "window size per spatial dim (required)"},
      {"strides", AttrType::Ints, "stride per spatial dim (default 1)"},
      {"pads", AttrType::Ints, "[x1_begin, ..., x1_end, ...] (default 0)"},
      {"dilations", AttrType::Ints, "dilation per spatial dim (default 1)"},
      {"ceil_mode", AttrType::Int,
       "1: round the output size up (the last window must start inside input or begin pad)"},
  };
  if (kind == PoolKind::Avg)
    a.push_back(
        {"count_include_pad", AttrType::Int,
         "1: divide by the cells inside the padded input; 0: by the cells inside the input"});
  if (kind == PoolKind::Max)
    a.push_back({"storage_order", AttrType::Int,
                 "layout of the Indices output: 0 row major, 1 column major"});
  if (kind == PoolKind::Lp) a.push_back({"p", AttrType::Int, "norm order (default 2)"});
  return a;
}

const OpRegistrar reg_maxpool{
    OpDef{"MaxPool", "pool",
          "max pooling (1-3 spatial dims); optional Indices output (i64, flat NCHW index)", 1, 1, 1,
          2, pool_attrs(PoolKind::Max), [](InferContext& ctx) { pool_infer(PoolKind::Max, ctx); },
          [](KernelContext& ctx) { pool_kernel(PoolKind::Max, ctx); }}};

const OpRegistrar reg_avgpool{OpDef{"AveragePool", "pool", "average pooling (1-3 spatial dims)", 1,
                                    1, 1, 1, pool_attrs(PoolKind::Avg),
                                    [](InferContext& ctx) { pool_infer(PoolKind::Avg, ctx); },
                                    [](KernelContext& ctx) { pool_kernel(PoolKind::Avg, ctx); }}};

const OpRegistrar reg_lppool{OpDef{
    "LpPool", "pool", "Lp pooling: (sum |x|^p)^(1/p) over each window (1-3 spatial dims)", 1, 1, 1,
    1, pool_attrs(PoolKind::Lp), [](InferContext& ctx) { pool_infer(PoolKind::Lp, ctx); },
    [](KernelContext& ctx) { pool_kernel(PoolKind::Lp, ctx); }}};

// ---- Global pooling: reduce every spatial dim to 1 ---------------------------------------

Shape global_shape(const std::string& op, const Shape& x) {
  if (x.size() < 2) fail(op, "X", "expected input of rank >= 2 (N, C, ...), found " + shape_str(x));
  Shape s = x;
  for (size_t i = 2; i < s.size(); ++i) s[i] = 1;
  return s;
}

void global_kernel(PoolKind kind, const std::string& op, KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Shape os = global_shape(op, X.shape());
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape(op, Y, os);
  const int64_t NC = X.shape()[0] * X.shape()[1];
  const int64_t sp = NC ? X.numel() / NC : 0;
  const double p = static_cast<double>(ctx.attrs().get_int("p", 2));
  for (int64_t nc = 0; nc < NC; ++nc) {
    double acc = kind == PoolKind::Max ? -std::numeric_limits<double>::infinity() : 0.0;
    for (int64_t i = 0; i < sp; ++i) {
      double v = X.get(nc * sp + i);
      if (kind == PoolKind::Max)
        acc = (i == 0 || v > acc || std::isnan(v)) ? v : acc;
      else if (kind == PoolKind::Avg)
        acc += v;
      else
        acc += std::pow(std::abs(v), p);
    }
    if (kind == PoolKind::Avg) acc = sp ? acc / static_cast<double>(sp) : 0.0;
    if (kind == PoolKind::Lp) acc = std::pow(acc, 1.0 / p);
    Y.set(nc, acc);
  }
}

OpDef global_def(PoolKind kind, const std::string& name, const std::string& doc) {
  OpDef d;
  d.name = name;
  d.category = "pool";
  d.doc = doc;
  if (kind == PoolKind::Lp) d.attrs = {{"p", AttrType::Int, "norm order (default 2)"}};
  d.infer = [name, kind](InferContext& ctx) {
    if (kind != PoolKind::Max) nn::require_float(name, "X", ctx.dtype(0));
    ctx.set_output(0, ctx.dtype(0), global_shape(name, ctx.shape(0)));
  };
  d.reference = [kind, name](KernelContext& ctx) { global_kernel(kind, name, ctx); };
  return d;
}

const OpRegistrar reg_gap{global_def(PoolKind::Avg, "GlobalAveragePool",
                                     "mean over all spatial dims (output N, C, 1, ...)")};
const OpRegistrar reg_gmp{
    global_def(PoolKind::Max, "GlobalMaxPool", "max over all spatial dims (output N, C, 1, ...)")};
const OpRegistrar reg_glp{global_def(
    PoolKind::Lp, "GlobalLpPool", "(sum |x|^p)^(1/p) over all spatial dims (output N, C, 1, ...)")};

}  // namespace
}  // namespace anvil
