// Quantized ops with TensorFlow Lite's integer semantics (the TFLite importer emits them for
// int8 / uint8 / int16 models; docs/tflite.md). Each op computes what TFLite's reference
// kernels compute, bit for bit: zero points are subtracted in int32, products accumulate in
// int32 (or int64 for int16 activations with an int64 bias), and results are rescaled with
// fixed-point multipliers (multiplier m in [2^30, 2^31) and power-of-two shift, computed once
// by the importer with TFLite's QuantizeMultiplier) using TFLite's rounding
// (src/ops/tflite_quant.h), then offset by the output zero point and clamped to the
// activation range [act_min, act_max] (which the importer derives from the fused activation
// and the output type). Layout: NCHW like the canonical Conv/pool ops.
//
//   TFLiteQuantize            float -> int:  clamp(round(x / scale) + zero_point)
//   TFLiteDequantize          int -> f32:    (float)(scale * (x - zero_point))
//   TFLiteRequantize          int -> int:    clamp(MBQM(x - in_zp, m, s) + out_zp)
//   TFLiteQuantizedAdd        TFLite's general quantized ADD/SUB (left_shift 20 for 8-bit,
//                             15 for int16), numpy broadcasting
//   TFLiteQuantizedMul        clamp(out_zp + MBQM((a - zp_a) * (b - zp_b), m, s))
//   TFLiteQuantizedConv       per-channel conv (groups: depthwise), int32 or int64 accumulator
//   TFLiteQuantizedFullyConnected  (rows, K) x (O, K)^T, per-tensor or per-channel
//   TFLiteQuantizedPool       max or average (TFLite's rounded integer average), NCHW
// (MBQM = MultiplyByQuantizedMultiplier.)
#include "ops/tflite_quant.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/broadcast.h"
#include "ops/nn_util.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

namespace q = tflite_quant;
using nn::fail;
using nn::ints_str;

bool is_quant_dtype(DType t) { return t == DType::i8 || t == DType::u8 || t == DType::i16; }

DType parse_qdtype(const std::string& op, const std::string& s) {
  if (s == "i8") return DType::i8;
  if (s == "u8") return DType::u8;
  if (s == "i16") return DType::i16;
  if (s == "i32") return DType::i32;  // QUANTIZE / requantize to int32
  fail(op, "dtype", "expected i8, u8, i16 or i32, found '" + s + "'");
}

void require_quant(const std::string& op, const std::string& field, DType t) {
  if (!is_quant_dtype(t))
    fail(op, field, std::string("expected an i8, u8 or i16 tensor, found ") + dtype_name(t));
}

int64_t type_min(DType t) {
  return t == DType::i8    ? -128
         : t == DType::u8  ? 0
         : t == DType::i16 ? -32768
                           : std::numeric_limits<int32_t>::min();
}
int64_t type_max(DType t) {
  return t == DType::i8    ? 127
         : t == DType::u8  ? 255
         : t == DType::i16 ? 32767
                           : std::numeric_limits<int32_t>::max();
}

/// A multiplier attribute: in [0, 2^31).
int32_t read_multiplier(const std::string& op, const Attributes& a, const std::string& name) {
  int64_t m = a.get_int(name);
  if (m < 0 || m > std::numeric_limits<int32_t>::max())
    fail(op, name, "multiplier must be in [0, 2^31), found " + std::to_string(m));
  return static_cast<int32_t>(m);
}
/// A shift attribute: in [lo, hi].
int read_shift(const std::string& op, const Attributes& a, const std::string& name, int lo,
               int hi) {
  int64_t s = a.get_int(name);
  if (s < lo || s > hi)
    fail(op, name,
         "shift must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], found " +
             std::to_string(s));
  return static_cast<int>(s);
}
int32_t read_zp(const std::string& op, const Attributes& a, const std::string& name) {
  int64_t z = a.get_int(name, 0);
  if (z < -65536 || z > 65536) fail(op, name, "zero point out of range: " + std::to_string(z));
  return static_cast<int32_t>(z);
}

struct Clamp {
  int64_t lo, hi;
};
/// act_min/act_max (default: the output type's range), inside the output type's range.
Clamp read_clamp(const std::string& op, const Attributes& a, DType out) {
  Clamp c{a.get_int("act_min", type_min(out)), a.get_int("act_max", type_max(out))};
  if (c.lo < type_min(out) || c.hi > type_max(out) || c.lo > c.hi)
    fail(op, "act_min",
         "activation range [" + std::to_string(c.lo) + ", " + std::to_string(c.hi) +
             "] is empty or outside the " + dtype_name(out) + " range");
  return c;
}
inline int64_t clamp(int64_t v, const Clamp& c) { return std::min(c.hi, std::max(c.lo, v)); }

std::vector<AttrSpec> clamp_specs() {
  return {{"act_min", AttrType::Int, "lower clamp of the output (default: the type's minimum)"},
          {"act_max", AttrType::Int, "upper clamp of the output (default: the type's maximum)"}};
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantize / TFLiteDequantize / TFLiteRequantize

void quantize_infer(InferContext& ctx) {
  nn::require_float("TFLiteQuantize", "X", ctx.dtype(0));
  DType t = parse_qdtype("TFLiteQuantize", ctx.attrs().get_string("dtype"));
  double s = ctx.attrs().get_float("scale");
  if (!(s > 0) || !std::isfinite(s)) ctx.fail("scale", "scale must be positive and finite");
  read_zp("TFLiteQuantize", ctx.attrs(), "zero_point");
  ctx.set_output(0, t, ctx.shape(0));
}
void quantize_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const float scale = static_cast<float>(ctx.attrs().get_float("scale"));
  const int32_t zp = read_zp("TFLiteQuantize", ctx.attrs(), "zero_point");
  for (int64_t i = 0; i < X.numel(); ++i)
    ref::store_int(Y, i,
                   q::quantize_value(static_cast<float>(X.get(i)), scale, zp, type_min(Y.dtype()),
                                     type_max(Y.dtype())));
}

void dequantize_infer(InferContext& ctx) {
  require_quant("TFLiteDequantize", "X", ctx.dtype(0));
  double s = ctx.attrs().get_float("scale");
  if (!(s > 0) || !std::isfinite(s)) ctx.fail("scale", "scale must be positive and finite");
  read_zp("TFLiteDequantize", ctx.attrs(), "zero_point");
  ctx.set_output(0, DType::f32, ctx.shape(0));
}
void dequantize_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  float* y = ctx.outputs[0].data<float>();
  // TFLite: static_cast<float>(scale * (val - zero_point)) with the float scale widened to double
  const double scale = static_cast<double>(static_cast<float>(ctx.attrs().get_float("scale")));
  const int32_t zp = read_zp("TFLiteDequantize", ctx.attrs(), "zero_point");
  for (int64_t i = 0; i < X.numel(); ++i)
    y[i] = static_cast<float>(scale *
                              static_cast<double>(static_cast<int32_t>(ref::load_int(X, i)) - zp));
}

void requantize_infer(InferContext& ctx) {
  const std::string op = "TFLiteRequantize";
  if (ctx.dtype(0) != DType::i32) require_quant(op, "X", ctx.dtype(0));  // QUANTIZE int32 -> int
  DType t = parse_qdtype(op, ctx.attrs().get_string("dtype"));
  read_multiplier(op, ctx.attrs(), "multiplier");
  read_shift(op, ctx.attrs(), "shift", -31, 30);
  read_zp(op, ctx.attrs(), "input_zero_point");
  read_zp(op, ctx.attrs(), "output_zero_point");
  read_clamp(op, ctx.attrs(), t);
  ctx.set_output(0, t, ctx.shape(0));
}
void requantize_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteRequantize";
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const int32_t m = read_multiplier(op, a, "multiplier");
  const int s = read_shift(op, a, "shift", -31, 30);
  const int32_t izp = read_zp(op, a, "input_zero_point"), ozp = read_zp(op, a, "output_zero_point");
  const Clamp c = read_clamp(op, a, Y.dtype());
  for (int64_t i = 0; i < X.numel(); ++i) {
    int32_t v = static_cast<int32_t>(ref::load_int(X, i)) - izp;
    ref::store_int(Y, i,
                   clamp(static_cast<int64_t>(q::MultiplyByQuantizedMultiplier(v, m, s)) + ozp, c));
  }
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedAdd / TFLiteQuantizedMul (numpy broadcasting)

Shape binary_shape(const std::string& op, InferContext& ctx) {
  require_quant(op, "A", ctx.dtype(0));
  if (ctx.dtype(1) != ctx.dtype(0))
    fail(op, "B",
         std::string("inputs must have the same dtype, found ") + dtype_name(ctx.dtype(0)) +
             " and " + dtype_name(ctx.dtype(1)));
  auto out = ref::broadcast_shapes({ctx.shape(0), ctx.shape(1)});
  if (!out)
    fail(op, "B",
         "shapes do not broadcast: " + shape_str(ctx.shape(0)) + " vs " + shape_str(ctx.shape(1)));
  return *out;
}

struct AddParams {
  bool subtract = false;
  int left_shift = 0;
  int32_t zp1 = 0, zp2 = 0, ozp = 0;
  int32_t m1 = 0, m2 = 0, mo = 0;
  int s1 = 0, s2 = 0, so = 0;
};
AddParams add_params(const Attributes& a) {
  const std::string op = "TFLiteQuantizedAdd";
  AddParams p;
  p.subtract = a.get_int("subtract", 0) != 0;
  int64_t ls = a.get_int("left_shift");
  if (ls < 0 || ls > 30)
    fail(op, "left_shift", "left_shift must be in [0, 30], found " + std::to_string(ls));
  p.left_shift = static_cast<int>(ls);
  p.zp1 = read_zp(op, a, "input1_zero_point");
  p.zp2 = read_zp(op, a, "input2_zero_point");
  p.ozp = read_zp(op, a, "output_zero_point");
  p.m1 = read_multiplier(op, a, "input1_multiplier");
  p.m2 = read_multiplier(op, a, "input2_multiplier");
  p.mo = read_multiplier(op, a, "output_multiplier");
  // the "SmallerThanOneExp" rescale: shifts are <= 0
  p.s1 = read_shift(op, a, "input1_shift", -31, 0);
  p.s2 = read_shift(op, a, "input2_shift", -31, 0);
  p.so = read_shift(op, a, "output_shift", -31, 0);
  return p;
}

void add_infer(InferContext& ctx) {
  Shape out = binary_shape("TFLiteQuantizedAdd", ctx);
  add_params(ctx.attrs());
  read_clamp("TFLiteQuantizedAdd", ctx.attrs(), ctx.dtype(0));
  ctx.set_output(0, ctx.dtype(0), out);
}
void add_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const Tensor &A = ctx.inputs[0], &B = ctx.inputs[1];
  Tensor& Y = ctx.outputs[0];
  const AddParams p = add_params(ctx.attrs());
  const Clamp c = read_clamp("TFLiteQuantizedAdd", ctx.attrs(), Y.dtype());
  const Shape shapes[2] = {A.shape(), B.shape()};
  ref::for_each_broadcast(
      Y.shape(), std::span<const Shape>(shapes, 2), [&](int64_t o, const int64_t* off) {
        const int32_t v1 =
            q::wrap32((ref::load_int(A, off[0]) - p.zp1) * (int64_t{1} << p.left_shift));
        const int32_t v2 =
            q::wrap32((ref::load_int(B, off[1]) - p.zp2) * (int64_t{1} << p.left_shift));
        const int32_t a1 = q::MultiplyByQuantizedMultiplierSmallerThanOneExp(v1, p.m1, p.s1);
        const int32_t a2 = q::MultiplyByQuantizedMultiplierSmallerThanOneExp(v2, p.m2, p.s2);
        const int32_t raw = q::wrap32(p.subtract ? int64_t{a1} - a2 : int64_t{a1} + a2);
        const int64_t r =
            int64_t{q::MultiplyByQuantizedMultiplierSmallerThanOneExp(raw, p.mo, p.so)} + p.ozp;
        ref::store_int(Y, o, clamp(r, c));
      });
}

void mul_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedMul";
  Shape out = binary_shape(op, ctx);
  read_zp(op, ctx.attrs(), "input1_zero_point");
  read_zp(op, ctx.attrs(), "input2_zero_point");
  read_zp(op, ctx.attrs(), "output_zero_point");
  read_multiplier(op, ctx.attrs(), "output_multiplier");
  read_shift(op, ctx.attrs(), "output_shift", -31, 30);
  read_clamp(op, ctx.attrs(), ctx.dtype(0));
  ctx.set_output(0, ctx.dtype(0), out);
}
void mul_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedMul";
  nn::require_inputs(ctx, 2);
  const Tensor &A = ctx.inputs[0], &B = ctx.inputs[1];
  Tensor& Y = ctx.outputs[0];
  const Attributes& a = ctx.attrs();
  const int32_t zp1 = read_zp(op, a, "input1_zero_point"),
                zp2 = read_zp(op, a, "input2_zero_point"),
                ozp = read_zp(op, a, "output_zero_point");
  const int32_t m = read_multiplier(op, a, "output_multiplier");
  const int s = read_shift(op, a, "output_shift", -31, 30);
  const Clamp c = read_clamp(op, a, Y.dtype());
  const Shape shapes[2] = {A.shape(), B.shape()};
  ref::for_each_broadcast(
      Y.shape(), std::span<const Shape>(shapes, 2), [&](int64_t o, const int64_t* off) {
        const int32_t prod =
            q::wrap32((ref::load_int(A, off[0]) - zp1) * (ref::load_int(B, off[1]) - zp2));
        ref::store_int(Y, o, clamp(int64_t{q::MultiplyByQuantizedMultiplier(prod, m, s)} + ozp, c));
      });
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedConv / TFLiteQuantizedFullyConnected

/// Per-output-channel rescale parameters and the accumulator, shared by conv and FC.
struct Rescale {
  std::vector<int32_t> m;
  std::vector<int> s;
  int32_t izp = 0, wzp = 0, ozp = 0;
  bool acc64 = false;
};
Rescale read_rescale(const std::string& op, const Attributes& a, int64_t channels) {
  Rescale r;
  auto ms = a.get_ints("multipliers");
  auto ss = a.get_ints("shifts");
  if (ms.size() != ss.size() || (ms.size() != 1 && static_cast<int64_t>(ms.size()) != channels))
    fail(op, "multipliers",
         "expected 1 or " + std::to_string(channels) + " multipliers and as many shifts, found " +
             std::to_string(ms.size()) + " and " + std::to_string(ss.size()));
  for (size_t i = 0; i < ms.size(); ++i) {
    if (ms[i] < 0 || ms[i] > std::numeric_limits<int32_t>::max())
      fail(op, "multipliers", "multiplier out of [0, 2^31): " + std::to_string(ms[i]));
    if (ss[i] < -31 || ss[i] > 7)
      fail(op, "shifts", "shift out of [-31, 7]: " + std::to_string(ss[i]));
    r.m.push_back(static_cast<int32_t>(ms[i]));
    r.s.push_back(static_cast<int>(ss[i]));
  }
  r.izp = read_zp(op, a, "input_zero_point");
  r.wzp = read_zp(op, a, "weight_zero_point");
  r.ozp = read_zp(op, a, "output_zero_point");
  int64_t acc = a.get_int("accumulator", 32);
  if (acc != 32 && acc != 64)
    fail(op, "accumulator", "expected 32 or 64, found " + std::to_string(acc));
  r.acc64 = acc == 64;
  return r;
}
/// The rescaled output value of one accumulator (before clamping).
inline int64_t rescale(const Rescale& r, int64_t acc, int64_t ch) {
  const size_t k = r.m.size() == 1 ? 0 : static_cast<size_t>(ch);
  const int32_t v = r.acc64 ? q::MultiplyByQuantizedMultiplier(acc, r.m[k], r.s[k])
                            : q::MultiplyByQuantizedMultiplier(q::wrap32(acc), r.m[k], r.s[k]);
  return int64_t{v} + r.ozp;
}

void check_weights_bias(const std::string& op, const InferContext& ctx, int64_t M) {
  if (ctx.dtype(1) != DType::i8 && ctx.dtype(1) != DType::u8)
    fail(op, "W", std::string("expected i8 or u8 weights, found ") + dtype_name(ctx.dtype(1)));
  if (ctx.has_input(2)) {
    if (ctx.dtype(2) != DType::i32 && ctx.dtype(2) != DType::i64)
      fail(op, "B", std::string("expected an i32 or i64 bias, found ") + dtype_name(ctx.dtype(2)));
    if (!(ctx.shape(2).size() == 1 && ctx.shape(2)[0] == M))
      fail(op, "B",
           "bias must have shape (" + std::to_string(M) + ",), found " + shape_str(ctx.shape(2)));
  }
}

DType out_dtype(const std::string& op, const Attributes& a, DType in) {
  return a.has("dtype") ? parse_qdtype(op, a.get_string("dtype")) : in;
}

struct QConv {
  int64_t N, C, H, W, M, G, KH, KW, OH, OW;
  int64_t sh, sw, dh, dw, pt, pl, pb, pr;
};
QConv qconv_params(const std::string& op, const Shape& x, const Shape& w, const Attributes& a) {
  if (x.size() != 4) fail(op, "X", "expected an (N, C, H, W) input, found " + shape_str(x));
  if (w.size() != 4) fail(op, "W", "expected (M, C/group, kh, kw) weights, found " + shape_str(w));
  QConv p{};
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3];
  p.M = w[0], p.KH = w[2], p.KW = w[3];
  p.G = a.get_int("group", 1);
  if (p.G < 1 || p.C % p.G != 0 || p.M % p.G != 0 || w[1] * p.G != p.C)
    fail(op, "group",
         "group " + std::to_string(p.G) + " does not fit input " + shape_str(x) + " and weights " +
             shape_str(w));
  auto st = a.get_ints("strides", {1, 1}), dl = a.get_ints("dilations", {1, 1}),
       pd = a.get_ints("pads", {0, 0, 0, 0});
  if (st.size() != 2 || dl.size() != 2 || pd.size() != 4)
    fail(op, "strides", "expected 2 strides, 2 dilations and 4 pads");
  for (int64_t v : st)
    if (v < 1) fail(op, "strides", "strides must be >= 1: " + ints_str(st));
  for (int64_t v : dl)
    if (v < 1) fail(op, "dilations", "dilations must be >= 1: " + ints_str(dl));
  for (int64_t v : pd)
    if (v < 0) fail(op, "pads", "negative padding " + ints_str(pd));
  if (p.KH < 1 || p.KW < 1) fail(op, "W", "empty kernel " + shape_str(w));
  p.sh = st[0], p.sw = st[1], p.dh = dl[0], p.dw = dl[1], p.pt = pd[0], p.pl = pd[1], p.pb = pd[2],
  p.pr = pd[3];
  const int64_t eh = (p.KH - 1) * p.dh + 1, ew = (p.KW - 1) * p.dw + 1;
  if (p.H + p.pt + p.pb < eh || p.W + p.pl + p.pr < ew)
    fail(op, "pads", "kernel extent larger than the padded input " + shape_str(x));
  p.OH = (p.H + p.pt + p.pb - eh) / p.sh + 1;
  p.OW = (p.W + p.pl + p.pr - ew) / p.sw + 1;
  return p;
}

void qconv_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedConv";
  require_quant(op, "X", ctx.dtype(0));
  QConv p = qconv_params(op, ctx.shape(0), ctx.shape(1), ctx.attrs());
  check_weights_bias(op, ctx, p.M);
  read_rescale(op, ctx.attrs(), p.M);
  DType t = out_dtype(op, ctx.attrs(), ctx.dtype(0));
  read_clamp(op, ctx.attrs(), t);
  ctx.set_output(0, t, {p.N, p.M, p.OH, p.OW});
}
void qconv_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedConv";
  nn::require_inputs(ctx, 2);
  const Tensor &X = ctx.inputs[0], &Wt = ctx.inputs[1];
  const Tensor* B = ctx.inputs.size() > 2 && ctx.inputs[2].defined() ? &ctx.inputs[2] : nullptr;
  Tensor& Y = ctx.outputs[0];
  const QConv p = qconv_params(op, X.shape(), Wt.shape(), ctx.attrs());
  nn::check_output_shape(op, Y, {p.N, p.M, p.OH, p.OW});
  const Rescale r = read_rescale(op, ctx.attrs(), p.M);
  const Clamp c = read_clamp(op, ctx.attrs(), Y.dtype());
  const int64_t cg = p.C / p.G, mg = p.M / p.G;
  std::vector<int64_t> xv(static_cast<size_t>(X.numel())), wv(static_cast<size_t>(Wt.numel()));
  for (int64_t i = 0; i < X.numel(); ++i) xv[static_cast<size_t>(i)] = ref::load_int(X, i) - r.izp;
  for (int64_t i = 0; i < Wt.numel(); ++i)
    wv[static_cast<size_t>(i)] = ref::load_int(Wt, i) - r.wzp;
  int64_t o = 0;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t m = 0; m < p.M; ++m) {
      const int64_t g = m / mg;
      const int64_t bias = B ? ref::load_int(*B, m) : 0;
      for (int64_t oy = 0; oy < p.OH; ++oy)
        for (int64_t ox = 0; ox < p.OW; ++ox, ++o) {
          int64_t acc = 0;
          for (int64_t ci = 0; ci < cg; ++ci) {
            const int64_t cin = g * cg + ci;
            for (int64_t ky = 0; ky < p.KH; ++ky) {
              const int64_t iy = oy * p.sh - p.pt + ky * p.dh;
              if (iy < 0 || iy >= p.H) continue;  // TFLite skips points outside the image
              for (int64_t kx = 0; kx < p.KW; ++kx) {
                const int64_t ix = ox * p.sw - p.pl + kx * p.dw;
                if (ix < 0 || ix >= p.W) continue;
                acc += wv[static_cast<size_t>(((m * cg + ci) * p.KH + ky) * p.KW + kx)] *
                       xv[static_cast<size_t>(((n * p.C + cin) * p.H + iy) * p.W + ix)];
              }
            }
          }
          acc += bias;
          ref::store_int(Y, o, clamp(rescale(r, acc, m), c));
        }
    }
}

void qfc_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedFullyConnected";
  require_quant(op, "X", ctx.dtype(0));
  const Shape &x = ctx.shape(0), &w = ctx.shape(1);
  if (x.size() != 2) fail(op, "X", "expected a 2-D (rows, K) input, found " + shape_str(x));
  if (w.size() != 2 || w[1] != x[1])
    fail(op, "W", "expected (O, " + std::to_string(x[1]) + ") weights, found " + shape_str(w));
  check_weights_bias(op, ctx, w[0]);
  read_rescale(op, ctx.attrs(), w[0]);
  DType t = out_dtype(op, ctx.attrs(), ctx.dtype(0));
  read_clamp(op, ctx.attrs(), t);
  ctx.set_output(0, t, {x[0], w[0]});
}
void qfc_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedFullyConnected";
  nn::require_inputs(ctx, 2);
  const Tensor &X = ctx.inputs[0], &Wt = ctx.inputs[1];
  const Tensor* B = ctx.inputs.size() > 2 && ctx.inputs[2].defined() ? &ctx.inputs[2] : nullptr;
  Tensor& Y = ctx.outputs[0];
  if (X.rank() != 2 || Wt.rank() != 2 || Wt.dim(1) != X.dim(1))
    fail(op, "W", "input and weights do not match");
  const int64_t R = X.dim(0), K = X.dim(1), O = Wt.dim(0);
  nn::check_output_shape(op, Y, {R, O});
  const Rescale r = read_rescale(op, ctx.attrs(), O);
  const Clamp c = read_clamp(op, ctx.attrs(), Y.dtype());
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < O; ++j) {
      int64_t acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += (ref::load_int(Wt, j * K + k) - r.wzp) * (ref::load_int(X, i * K + k) - r.izp);
      if (B) acc += ref::load_int(*B, j);
      ref::store_int(Y, i * O + j, clamp(rescale(r, acc, j), c));
    }
}

// ---------------------------------------------------------------------------------------
// TFLiteQuantizedPool

struct QPool {
  bool max = true;
  int64_t N, C, H, W, KH, KW, sh, sw, pt, pl, pb, pr, OH, OW;
};
QPool qpool_params(const std::string& op, const Shape& x, const Attributes& a) {
  if (x.size() != 4) fail(op, "X", "expected an (N, C, H, W) input, found " + shape_str(x));
  QPool p{};
  std::string mode = a.get_string("mode");
  if (mode != "max" && mode != "average")
    fail(op, "mode", "expected max or average, found '" + mode + "'");
  p.max = mode == "max";
  auto k = a.get_ints("kernel_shape"), st = a.get_ints("strides", {1, 1}),
       pd = a.get_ints("pads", {0, 0, 0, 0});
  if (k.size() != 2 || st.size() != 2 || pd.size() != 4)
    fail(op, "kernel_shape", "expected 2 kernel dims, 2 strides, 4 pads");
  for (int64_t v : k)
    if (v < 1) fail(op, "kernel_shape", "kernel dims must be >= 1: " + ints_str(k));
  for (int64_t v : st)
    if (v < 1) fail(op, "strides", "strides must be >= 1: " + ints_str(st));
  for (int64_t v : pd)
    if (v < 0) fail(op, "pads", "negative padding " + ints_str(pd));
  p.N = x[0], p.C = x[1], p.H = x[2], p.W = x[3], p.KH = k[0], p.KW = k[1], p.sh = st[0],
  p.sw = st[1];
  p.pt = pd[0], p.pl = pd[1], p.pb = pd[2], p.pr = pd[3];
  if (p.H + p.pt + p.pb < p.KH || p.W + p.pl + p.pr < p.KW)
    fail(op, "kernel_shape", "window larger than the padded input");
  p.OH = (p.H + p.pt + p.pb - p.KH) / p.sh + 1;
  p.OW = (p.W + p.pl + p.pr - p.KW) / p.sw + 1;
  return p;
}
void qpool_infer(InferContext& ctx) {
  const std::string op = "TFLiteQuantizedPool";
  require_quant(op, "X", ctx.dtype(0));
  QPool p = qpool_params(op, ctx.shape(0), ctx.attrs());
  read_clamp(op, ctx.attrs(), ctx.dtype(0));
  ctx.set_output(0, ctx.dtype(0), {p.N, p.C, p.OH, p.OW});
}
void qpool_kernel(KernelContext& ctx) {
  const std::string op = "TFLiteQuantizedPool";
  nn::require_inputs(ctx, 1);
  const Tensor& X = ctx.inputs[0];
  Tensor& Y = ctx.outputs[0];
  const QPool p = qpool_params(op, X.shape(), ctx.attrs());
  nn::check_output_shape(op, Y, {p.N, p.C, p.OH, p.OW});
  const Clamp c = read_clamp(op, ctx.attrs(), Y.dtype());
  int64_t o = 0;
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t oy = 0; oy < p.OH; ++oy)
      for (int64_t ox = 0; ox < p.OW; ++ox, ++o) {
        int64_t acc = p.max ? std::numeric_limits<int64_t>::min() : 0, count = 0;
        for (int64_t ky = 0; ky < p.KH; ++ky) {
          const int64_t iy = oy * p.sh - p.pt + ky;
          if (iy < 0 || iy >= p.H) continue;
          for (int64_t kx = 0; kx < p.KW; ++kx) {
            const int64_t ix = ox * p.sw - p.pl + kx;
            if (ix < 0 || ix >= p.W) continue;
            const int64_t v = ref::load_int(X, (nc * p.H + iy) * p.W + ix);
            acc = p.max ? std::max(acc, v) : acc + v;
            ++count;
          }
        }
        if (count == 0) fail(op, "pads", "a pooling window lies entirely in the padding");
        if (!p.max)  // TFLite: round half away from zero, in C's truncating division
          acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
        ref::store_int(Y, o, clamp(acc, c));
      }
}

// ---------------------------------------------------------------------------------------
// registration

std::vector<AttrSpec> with_clamp(std::vector<AttrSpec> a) {
  for (auto& s : clamp_specs()) a.push_back(s);
  return a;
}
std::vector<AttrSpec> rescale_specs() {
  return {{"multipliers", AttrType::Ints, "fixed-point multipliers, one or one per output channel"},
          {"shifts", AttrType::Ints, "power-of-two exponents matching multipliers (in [-31, 7])"},
          {"input_zero_point", AttrType::Int, "subtracted from the input (0 for int16)"},
          {"weight_zero_point", AttrType::Int, "subtracted from the weights (uint8 models)"},
          {"output_zero_point", AttrType::Int, "added to the rescaled accumulator"},
          {"accumulator", AttrType::Int,
           "32 (int32 accumulator and bias) or 64 (int16x8 with int64 bias)"},
          {"dtype", AttrType::String, "output dtype i8, u8 or i16 (default: the input's)"}};
}

const OpRegistrar reg_quantize{
    OpDef{"TFLiteQuantize",
          "quantization",
          "TFLite QUANTIZE of a float tensor: clamp(round(x / scale) + zero_point)",
          1,
          1,
          1,
          1,
          {{"scale", AttrType::Float, "quantization scale"},
           {"zero_point", AttrType::Int, "quantization zero point"},
           {"dtype", AttrType::String, "output dtype: i8, u8 or i16"}},
          quantize_infer,
          quantize_kernel}};

const OpRegistrar reg_dequantize{OpDef{"TFLiteDequantize",
                                       "quantization",
                                       "TFLite DEQUANTIZE: (float)(scale * (x - zero_point))",
                                       1,
                                       1,
                                       1,
                                       1,
                                       {{"scale", AttrType::Float, "quantization scale"},
                                        {"zero_point", AttrType::Int, "quantization zero point"}},
                                       dequantize_infer,
                                       dequantize_kernel}};

const OpRegistrar reg_requantize{
    OpDef{"TFLiteRequantize", "quantization",
          "TFLite integer rescale (QUANTIZE int->int, quantized RELU/RELU6): clamp(MBQM(x - in_zp, "
          "m, s) + out_zp)",
          1, 1, 1, 1,
          with_clamp({{"multiplier", AttrType::Int, "fixed-point multiplier in [0, 2^31)"},
                      {"shift", AttrType::Int, "power-of-two exponent in [-31, 30]"},
                      {"input_zero_point", AttrType::Int, "input zero point"},
                      {"output_zero_point", AttrType::Int, "output zero point"},
                      {"dtype", AttrType::String, "output dtype: i8, u8 or i16"}}),
          requantize_infer, requantize_kernel}};

const OpRegistrar reg_qadd{
    OpDef{"TFLiteQuantizedAdd", "quantization",
          "TFLite quantized ADD/SUB (general rescaling path, left_shift 20 for 8-bit, 15 for "
          "int16), numpy broadcasting",
          2, 2, 1, 1,
          with_clamp({{"subtract", AttrType::Int, "1: A - B (SUB)"},
                      {"left_shift", AttrType::Int, "headroom shift applied to both inputs"},
                      {"input1_zero_point", AttrType::Int, ""},
                      {"input2_zero_point", AttrType::Int, ""},
                      {"output_zero_point", AttrType::Int, ""},
                      {"input1_multiplier", AttrType::Int, ""},
                      {"input1_shift", AttrType::Int, "<= 0"},
                      {"input2_multiplier", AttrType::Int, ""},
                      {"input2_shift", AttrType::Int, "<= 0"},
                      {"output_multiplier", AttrType::Int, ""},
                      {"output_shift", AttrType::Int, "<= 0"}}),
          add_infer, add_kernel}};

const OpRegistrar reg_qmul{OpDef{
    "TFLiteQuantizedMul", "quantization",
    "TFLite quantized MUL: clamp(out_zp + MBQM((a - zp1) * (b - zp2), m, s)), numpy broadcasting",
    2, 2, 1, 1,
    with_clamp({{"input1_zero_point", AttrType::Int, ""},
                {"input2_zero_point", AttrType::Int, ""},
                {"output_zero_point", AttrType::Int, ""},
                {"output_multiplier", AttrType::Int, ""},
                {"output_shift", AttrType::Int, ""}}),
    mul_infer, mul_kernel}};

std::vector<AttrSpec> qconv_specs() {
  std::vector<AttrSpec> a = {{"strides", AttrType::Ints, "(sh, sw)"},
                             {"dilations", AttrType::Ints, "(dh, dw)"},
                             {"pads", AttrType::Ints, "(top, left, bottom, right)"},
                             {"group", AttrType::Int, "groups (input channels for depthwise)"}};
  for (auto& s : rescale_specs()) a.push_back(s);
  return with_clamp(a);
}

const OpRegistrar reg_qconv{OpDef{"TFLiteQuantizedConv", "quantization",
                                  "TFLite quantized CONV_2D / DEPTHWISE_CONV_2D: X (N,C,H,W) int, "
                                  "W (M, C/group, kh, kw) i8/u8, B (M) i32/i64; "
                                  "per-channel fixed-point rescale",
                                  2, 3, 1, 1, qconv_specs(), qconv_infer, qconv_kernel}};

const OpRegistrar reg_qfc{
    OpDef{"TFLiteQuantizedFullyConnected", "quantization",
          "TFLite quantized FULLY_CONNECTED: X (rows, K) int, W (O, K) i8/u8, B (O) i32/i64", 2, 3,
          1, 1, with_clamp(rescale_specs()), qfc_infer, qfc_kernel}};

const OpRegistrar reg_qpool{
    OpDef{"TFLiteQuantizedPool", "quantization",
          "TFLite quantized MAX_POOL_2D / AVERAGE_POOL_2D on (N,C,H,W): padding excluded, integer "
          "average rounded half "
          "away from zero",
          1, 1, 1, 1,
          with_clamp({{"mode", AttrType::String, "max or average"},
                      {"kernel_shape", AttrType::Ints, "(kh, kw)"},
                      {"strides", AttrType::Ints, "(sh, sw)"},
                      {"pads", AttrType::Ints, "(top, left, bottom, right)"}}),
          qpool_infer, qpool_kernel}};

}  // namespace
}  // namespace anvil
