// TFLiteQuantizedTransposeConv: TFLite's quantized TRANSPOSE_CONV (reference_integer_ops::
// TransposeConv), in TFLite's NHWC layout. Each input pixel scatters (x - input_zp) * w into
// an int32 (int8 activations) or int64 (int16 activations) accumulator at
// out = in * stride - pad + k (points outside the output are dropped); then bias, the
// per-channel fixed-point rescale (MultiplyByQuantizedMultiplier), the output zero point and the
// activation clamp. pads are TFLite's (top, left) from ComputePaddingHeightWidth.
//   X (N, H, W, C) i8/i16, W (O, KH, KW, C) i8, B (O) i32/i64 -> (N, OH, OW, O)
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/nn_util.h"
#include "ops/ref_util.h"
#include "ops/tflite_quant.h"

namespace anvil {
namespace {

namespace q = tflite_quant;
using nn::fail;
const std::string kOp = "TFLiteQuantizedTransposeConv";

struct TConv {
  int64_t N, H, W, C, O, KH, KW, OH, OW, sh, sw, pt, pl;
  std::vector<int32_t> m;
  std::vector<int> s;
  int32_t izp, ozp;
  int64_t lo, hi;
  bool acc64;
};

TConv params(const Shape& x, const Shape& w, const Attributes& a, DType out) {
  if (x.size() != 4) fail(kOp, "X", "expected an (N, H, W, C) input, found " + shape_str(x));
  if (w.size() != 4 || w[3] != x[3])
    fail(kOp, "W",
         "expected (O, kh, kw, " + std::to_string(x[3]) + ") weights, found " + shape_str(w));
  TConv p{};
  p.N = x[0], p.H = x[1], p.W = x[2], p.C = x[3], p.O = w[0], p.KH = w[1], p.KW = w[2];
  const auto os = a.get_ints("output_shape"), st = a.get_ints("strides"), pd = a.get_ints("pads");
  if (os.size() != 4 || st.size() != 2 || pd.size() != 2)
    fail(kOp, "output_shape", "expected 4 output dims, 2 strides, 2 pads");
  if (os[0] != p.N || os[3] != p.O || os[1] < 1 || os[2] < 1 || os[1] > (int64_t{1} << 24) ||
      os[2] > (int64_t{1} << 24))
    fail(kOp, "output_shape", "output shape " + nn::ints_str(os) + " does not fit");
  if (st[0] < 1 || st[1] < 1) fail(kOp, "strides", "strides must be >= 1");
  p.OH = os[1], p.OW = os[2], p.sh = st[0], p.sw = st[1], p.pt = pd[0], p.pl = pd[1];
  const auto ms = a.get_ints("multipliers"), ss = a.get_ints("shifts");
  if (ms.size() != ss.size() || (ms.size() != 1 && static_cast<int64_t>(ms.size()) != p.O))
    fail(kOp, "multipliers", "expected 1 or O multipliers and as many shifts");
  for (size_t i = 0; i < ms.size(); ++i) {
    if (ms[i] < 0 || ms[i] > std::numeric_limits<int32_t>::max() || ss[i] < -31 || ss[i] > 7)
      fail(kOp, "multipliers", "multiplier or shift out of range");
    p.m.push_back(static_cast<int32_t>(ms[i]));
    p.s.push_back(static_cast<int>(ss[i]));
  }
  p.izp =
      static_cast<int32_t>(std::clamp<int64_t>(a.get_int("input_zero_point", 0), -65536, 65536));
  p.ozp =
      static_cast<int32_t>(std::clamp<int64_t>(a.get_int("output_zero_point", 0), -65536, 65536));
  const int64_t tmin = out == DType::i8 ? -128 : -32768, tmax = out == DType::i8 ? 127 : 32767;
  p.lo = a.get_int("act_min", tmin), p.hi = a.get_int("act_max", tmax);
  if (p.lo < tmin || p.hi > tmax || p.lo > p.hi) fail(kOp, "act_min", "bad activation range");
  p.acc64 = a.get_int("accumulator", 32) == 64;
  return p;
}

void infer(InferContext& ctx) {
  const DType xt = ctx.dtype(0);
  if (xt != DType::i8 && xt != DType::i16) fail(kOp, "X", "expected an i8 or i16 input");
  if (ctx.dtype(1) != DType::i8) fail(kOp, "W", "expected i8 weights");
  const TConv p = params(ctx.shape(0), ctx.shape(1), ctx.attrs(), xt);
  if (ctx.has_input(2) && !(ctx.shape(2).size() == 1 && ctx.shape(2)[0] == p.O))
    fail(kOp, "B", "bias must have shape (" + std::to_string(p.O) + ",)");
  ctx.set_output(0, xt, {p.N, p.OH, p.OW, p.O});
}

void kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const Tensor &X = ctx.inputs[0], &Wt = ctx.inputs[1];
  const Tensor* B = ctx.inputs.size() > 2 && ctx.inputs[2].defined() ? &ctx.inputs[2] : nullptr;
  Tensor& Y = ctx.outputs[0];
  const TConv p = params(X.shape(), Wt.shape(), ctx.attrs(), Y.dtype());
  nn::check_output_shape(kOp, Y, {p.N, p.OH, p.OW, p.O});
  std::vector<int64_t> acc(static_cast<size_t>(Y.numel()), 0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t iy = 0; iy < p.H; ++iy)
      for (int64_t ix = 0; ix < p.W; ++ix)
        for (int64_t ci = 0; ci < p.C; ++ci) {
          const int64_t xv = ref::load_int(X, ((n * p.H + iy) * p.W + ix) * p.C + ci) - p.izp;
          for (int64_t ky = 0; ky < p.KH; ++ky) {
            const int64_t oy = iy * p.sh - p.pt + ky;
            if (oy < 0 || oy >= p.OH) continue;
            for (int64_t kx = 0; kx < p.KW; ++kx) {
              const int64_t ox = ix * p.sw - p.pl + kx;
              if (ox < 0 || ox >= p.OW) continue;
              for (int64_t o = 0; o < p.O; ++o) {
                const int64_t w = ref::load_int(Wt, ((o * p.KH + ky) * p.KW + kx) * p.C + ci);
                int64_t& a = acc[static_cast<size_t>(((n * p.OH + oy) * p.OW + ox) * p.O + o)];
                a = p.acc64 ? a + xv * w : q::wrap32(a + xv * w);  // int32 scratch for int8
              }
            }
          }
        }
  for (int64_t i = 0; i < Y.numel(); ++i) {
    const int64_t o = i % p.O;
    const size_t k = p.m.size() == 1 ? 0 : static_cast<size_t>(o);
    int64_t a = acc[static_cast<size_t>(i)] + (B ? ref::load_int(*B, o) : 0);
    const int32_t r = p.acc64 ? q::MultiplyByQuantizedMultiplier(a, p.m[k], p.s[k])
                              : q::MultiplyByQuantizedMultiplier(q::wrap32(a), p.m[k], p.s[k]);
    ref::store_int(Y, i, std::min(p.hi, std::max(p.lo, int64_t{r} + p.ozp)));
  }
}

const OpRegistrar reg{OpDef{
    kOp,
    "quantization",
    "TFLite quantized TRANSPOSE_CONV in NHWC: X (N,H,W,C) i8/i16, W (O,kh,kw,C) i8, B (O) "
    "i32/i64; scatter-accumulate, per-channel fixed-point rescale",
    2,
    3,
    1,
    1,
    {{"output_shape", AttrType::Ints, "(N, OH, OW, O)"},
     {"strides", AttrType::Ints, "(sh, sw)"},
     {"pads", AttrType::Ints, "(top, left), TFLite's padding offsets"},
     {"multipliers", AttrType::Ints, "fixed-point multipliers, one or one per output channel"},
     {"shifts", AttrType::Ints, "their exponents, in [-31, 7]"},
     {"input_zero_point", AttrType::Int, ""},
     {"output_zero_point", AttrType::Int, ""},
     {"accumulator", AttrType::Int, "32 (int8) or 64 (int16 activations)"},
     {"act_min", AttrType::Int, ""},
     {"act_max", AttrType::Int, ""}},
    infer,
    kernel}};

}  // namespace
}  // namespace anvil
