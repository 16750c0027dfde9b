#include <algorithm>
#include <cmath>

#include "import/tflite/tflite_translator.h"

namespace anvil::tflite_import {
namespace {

// The attributes TFLite's quantized conv and fully-connected kernels share: per-channel
// multipliers and shifts, zero points, the accumulator width (from the bias type) and the
// fused activation's clamp range.
void set_quant_attrs(Translator& cx, Attributes& at, const std::vector<int64_t>& ms,
                     const std::vector<int64_t>& ss, const QP& qi, const QP& qw, const QP& qo,
                     const std::vector<int>& ins, fb::ActivationFunctionType a) {
  int64_t acc = 32;
  if (ins.size() > 2) {
    const DType bt = cx.dtype(ins[2]);
    if (bt == DType::i64)
      acc = 64;
    else if (bt != DType::i32)
      cx.fail("bias",
              std::string("quantized bias must be int32 or int64, found ") + dtype_name(bt));
  }
  auto [lo, hi] = cx.act_range(a, cx.outs_[0]);
  at.set("multipliers", ms);
  at.set("shifts", ss);
  at.set("input_zero_point", qi.zp[0]);
  at.set("weight_zero_point", qw.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("accumulator", acc);
  at.set("act_min", lo);
  at.set("act_max", hi);
}

// quant_conv / quant_fully_connected come after their float converters.
TV quant_conv(Translator& cx, Attributes& at, const std::vector<int>& ins,
              fb::ActivationFunctionType a, int64_t M);
TV quant_fully_connected(Translator& cx, const std::vector<int>& ins, fb::ActivationFunctionType a,
                         int64_t O, const Shape& out_src);

TV conv(Translator& cx, const fb::Operator* op, bool depthwise) {
  int stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  fb::Padding padding = fb::Padding_SAME;
  fb::ActivationFunctionType a = fb::ActivationFunctionType_NONE;
  if (depthwise) {
    auto* o = op->builtin_options_as_DepthwiseConv2DOptions();
    if (!o) cx.fail("builtin_options", "missing DepthwiseConv2DOptions");
    stride_h = o->stride_h(), stride_w = o->stride_w(), dil_h = o->dilation_h_factor(),
    dil_w = o->dilation_w_factor();
    padding = o->padding(), a = o->fused_activation_function();
  } else {
    auto* o = op->builtin_options_as_Conv2DOptions();
    if (!o) cx.fail("builtin_options", "missing Conv2DOptions");
    stride_h = o->stride_h(), stride_w = o->stride_w(), dil_h = o->dilation_h_factor(),
    dil_w = o->dilation_w_factor();
    padding = o->padding(), a = o->fused_activation_function();
  }
  if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1)
    cx.fail("stride_h", "strides and dilations must be >= 1, found stride " +
                            std::to_string(stride_h) + "x" + std::to_string(stride_w) +
                            ", dilation " + std::to_string(dil_h) + "x" + std::to_string(dil_w));
  TV x = cx.in(0), w = cx.in(1);
  const Shape xs = cx.src_shape(x), ws = cx.src_shape(w);
  if (xs.size() != 4) cx.fail("input", "expected an NHWC input, found " + shape_str(xs));
  if (ws.size() != 4) cx.fail("filter", "expected a 4-D filter, found " + shape_str(ws));
  const int64_t C = xs[3];
  int64_t group = 1;
  int wv;
  if (depthwise) {  // (1, kh, kw, C*M) -> (C*M, 1, kh, kw), group C
    if (ws[0] != 1 || C == 0 || ws[3] % C != 0)
      cx.fail("filter", "depthwise filter " + shape_str(ws) + " does not fit input channels " +
                            std::to_string(C));
    group = C;
    wv = cx.view(w, {3, 0, 1, 2});
  } else {  // OHWI -> OIHW
    if (ws[3] == 0 || C == 0 || C % ws[3] != 0 || ws[0] % (C / ws[3]) != 0)
      cx.fail("filter",
              "filter " + shape_str(ws) + " does not fit input channels " + std::to_string(C));
    group = C / ws[3];
    wv = cx.view(w, kToNCHW);
  }
  const int64_t M = cx.shape(wv)[0];
  Attributes at;
  at.set("strides", std::vector<int64_t>{stride_h, stride_w});
  at.set("dilations", std::vector<int64_t>{dil_h, dil_w});
  at.set("pads",
         cx.same_pads(xs[1], xs[2], ws[1], ws[2], stride_h, stride_w, dil_h, dil_w, padding));
  at.set("group", group);
  const int xv = cx.as_nchw(x);
  std::vector<int> ins = {xv, wv};
  if (cx.has_in(2)) ins.push_back(cx.as_source(cx.in(2)));
  const DType xt = cx.dtype(xv);
  if (!is_quant_type(xt)) {
    if (!is_float(xt) || cx.dtype(wv) != xt)
      cx.unsupported_here(std::string("conv with ") + dtype_name(xt) + " input and " +
                          dtype_name(cx.dtype(wv)) + " filter (hybrid or unknown quantization)");
    return cx.act(TV{cx.node("Conv", ins, at), kNHWC}, a);
  }
  return quant_conv(cx, at, ins, a, M);
}

// Quantized CONV_2D / DEPTHWISE_CONV_2D: TFLite's per-channel requantization (conv.cc /
// depthwise_conv.cc Prepare).
TV quant_conv(Translator& cx, Attributes& at, const std::vector<int>& ins,
              fb::ActivationFunctionType a, int64_t M) {
  const DType xt = cx.dtype(ins[0]);
  const int wv = ins[1];
  const int ti = cx.ins_[0], tw = cx.ins_[1], to = cx.outs_[0];
  const QP qi = cx.qparams(ti), qw = cx.qparams(tw), qo = cx.qparams(to);
  cx.require_quant_params(ti, qi, "quantization");
  cx.require_quant_params(tw, qw, "quantization");
  cx.require_quant_params(to, qo, "quantization");
  if (qi.scale.size() != 1 || qo.scale.size() != 1)
    cx.unsupported_here("per-channel quantized activations");
  if (qw.scale.size() != 1 && static_cast<int64_t>(qw.scale.size()) != M)
    cx.fail_tensor(tw, "quantization",
                   std::to_string(qw.scale.size()) + " filter scales for " + std::to_string(M) +
                       " output channels");
  const DType wt = cx.dtype(wv), ot = cx.dtype_of_tensor(to);
  if (ot != xt)
    cx.unsupported_here(std::string("quantized conv from ") + dtype_name(xt) + " to " +
                        dtype_name(ot));
  if (!(wt == DType::i8 || (xt == DType::u8 && wt == DType::u8)))
    cx.unsupported_here(std::string(dtype_name(xt)) + " conv with " + dtype_name(wt) + " filter");
  for (int64_t z : qw.zp)
    if (z != qw.zp[0]) cx.unsupported_here("per-channel filter zero points");
  std::vector<int64_t> ms, ss;
  if (xt == DType::u8) {  // legacy uint8: one multiplier, float product of the scales
    const double real =
        static_cast<double>(qi.scale[0] * qw.scale[0]) / static_cast<double>(qo.scale[0]);
    int32_t m = 0;
    int s = cx.multiplier_or_fail(real, &m, "quantization");
    ms.push_back(m), ss.push_back(s);
  } else {
    for (size_t c = 0; c < qw.scale.size(); ++c) {
      const double real = static_cast<double>(qi.scale[0]) * static_cast<double>(qw.scale[c]) /
                          static_cast<double>(qo.scale[0]);
      int32_t m = 0;
      int s = cx.multiplier_or_fail(real, &m, "quantization");
      ms.push_back(m), ss.push_back(s);
    }
  }
  for (int64_t s : ss)
    if (s < -31 || s > 7)
      cx.fail("quantization", "rescale shift " + std::to_string(s) + " is outside TFLite's range");
  if (xt == DType::i16 && (qi.zp[0] != 0 || qo.zp[0] != 0))
    cx.fail("quantization",
            "int16 activations must have zero point 0 (TFLite's int16x8 kernels ignore it)");
  set_quant_attrs(cx, at, ms, ss, qi, qw, qo, ins, a);
  return TV{cx.node("TFLiteQuantizedConv", ins, at), kNHWC};
}

TV fully_connected(Translator& cx, const fb::Operator* op) {
  auto* o = op->builtin_options_as_FullyConnectedOptions();
  fb::ActivationFunctionType a =
      o ? o->fused_activation_function() : fb::ActivationFunctionType_NONE;
  if (o && o->weights_format() != fb::FullyConnectedOptionsWeightsFormat_DEFAULT)
    cx.unsupported_here("shuffled weights format");
  const bool keep = o && o->keep_num_dims();
  TV x = cx.in(0), w = cx.in(1);
  const Shape xs = cx.src_shape(x), ws = cx.src_shape(w);
  if (ws.size() != 2) cx.fail("weights", "expected (units, K) weights, found " + shape_str(ws));
  const int64_t K = ws[1], O = ws[0];
  const int64_t n = shape_numel(xs);
  if (K == 0 || n % K != 0)
    cx.fail("input",
            "input " + shape_str(xs) + " does not flatten into rows of " + std::to_string(K));
  TV rows = cx.reshape_to(x, {n / K, K});
  std::vector<int> ins = {rows.v, cx.as_source(w)};
  if (cx.has_in(2)) ins.push_back(cx.as_source(cx.in(2)));
  Shape out_src = {n / K, O};
  if (keep) {
    out_src = xs;
    out_src.back() = O;
  }
  const DType xt = cx.dtype(rows.v);
  if (!is_quant_type(xt)) {
    if (!is_float(xt) || cx.dtype(ins[1]) != xt)
      cx.unsupported_here("hybrid or mixed-type FULLY_CONNECTED");
    Attributes at;
    at.set("transB", int64_t{1});
    TV y{cx.node("Gemm", ins, at), {}};
    if (keep) y = cx.reshape_to(y, out_src);
    return cx.act(y, a);
  }
  return quant_fully_connected(cx, ins, a, O, keep ? out_src : Shape{});
}

// Quantized FULLY_CONNECTED (fully_connected.cc Prepare); `out_src`: the keep_num_dims shape.
TV quant_fully_connected(Translator& cx, const std::vector<int>& ins, fb::ActivationFunctionType a,
                         int64_t O, const Shape& out_src) {
  const bool keep = !out_src.empty();
  const DType xt = cx.dtype(ins[0]);
  const int ti = cx.ins_[0], tw = cx.ins_[1], to = cx.outs_[0];
  const QP qi = cx.qparams(ti), qw = cx.qparams(tw), qo = cx.qparams(to);
  cx.require_quant_params(ti, qi, "quantization");
  cx.require_quant_params(tw, qw, "quantization");
  cx.require_quant_params(to, qo, "quantization");
  const DType ot = cx.dtype_of_tensor(to), wt = cx.dtype(ins[1]);
  if (ot != xt)
    cx.unsupported_here(std::string("quantized FULLY_CONNECTED from ") + dtype_name(xt) + " to " +
                        dtype_name(ot));
  if (!(wt == DType::i8 || (xt == DType::u8 && wt == DType::u8)))
    cx.unsupported_here(std::string(dtype_name(xt)) + " FULLY_CONNECTED with " + dtype_name(wt) +
                        " weights");
  if (qi.scale.size() != 1 || qo.scale.size() != 1)
    cx.unsupported_here("per-channel quantized activations");
  if (qw.scale.size() != 1 && static_cast<int64_t>(qw.scale.size()) != O)
    cx.fail_tensor(
        tw, "quantization",
        std::to_string(qw.scale.size()) + " weight scales for " + std::to_string(O) + " units");
  std::vector<int64_t> ms, ss;
  for (size_t c = 0; c < qw.scale.size(); ++c) {
    // per-tensor: GetQuantizedConvolutionMultipler (float product of the scales); per-channel:
    // the double product, as TFLite's per-channel Prepare computes it
    const double real =
        qw.scale.size() == 1
            ? static_cast<double>(qi.scale[0] * qw.scale[0]) / static_cast<double>(qo.scale[0])
            : static_cast<double>(qi.scale[0]) * static_cast<double>(qw.scale[c]) /
                  static_cast<double>(qo.scale[0]);
    int32_t m = 0;
    int s = cx.multiplier_or_fail(real, &m, "quantization");
    if (s < -31 || s > 7)
      cx.fail("quantization", "rescale shift " + std::to_string(s) + " is outside TFLite's range");
    ms.push_back(m), ss.push_back(s);
  }
  if (xt == DType::i16 && (qi.zp[0] != 0 || qo.zp[0] != 0))
    cx.fail("quantization", "int16 activations must have zero point 0");
  Attributes at;
  set_quant_attrs(cx, at, ms, ss, qi, qw, qo, ins, a);
  TV y{cx.node("TFLiteQuantizedFullyConnected", ins, at), {}};
  if (keep) y = cx.reshape_to(y, out_src);
  return y;
}

TV pool(Translator& cx, const fb::Operator* op, bool max) {
  auto* o = op->builtin_options_as_Pool2DOptions();
  if (!o) cx.fail("builtin_options", "missing Pool2DOptions");
  if (o->stride_h() < 1 || o->stride_w() < 1 || o->filter_height() < 1 || o->filter_width() < 1)
    cx.fail("filter_height", "pool window and strides must be >= 1");
  TV x = cx.in(0);
  const Shape xs = cx.src_shape(x);
  if (xs.size() != 4) cx.fail("input", "expected an NHWC input, found " + shape_str(xs));
  const int xv = cx.as_nchw(x);
  Attributes at;
  at.set("kernel_shape", std::vector<int64_t>{o->filter_height(), o->filter_width()});
  at.set("strides", std::vector<int64_t>{o->stride_h(), o->stride_w()});
  at.set("pads", cx.same_pads(xs[1], xs[2], o->filter_height(), o->filter_width(), o->stride_h(),
                              o->stride_w(), 1, 1, o->padding()));
  const DType xt = cx.dtype(xv);
  if (!is_quant_type(xt)) {
    if (!max) at.set("count_include_pad", int64_t{0});  // TF averages over the valid cells only
    return cx.act(TV{cx.node(max ? "MaxPool" : "AveragePool", {xv}, at), kNHWC},
                  o->fused_activation_function());
  }
  const QP qi = cx.qparams(cx.ins_[0]), qo = cx.qparams(cx.outs_[0]);
  cx.require_quant_params(cx.ins_[0], qi, "quantization");
  cx.require_quant_params(cx.outs_[0], qo, "quantization");
  if (qi.scale != qo.scale || qi.zp != qo.zp)
    cx.unsupported_here("quantized pooling with different input and output quantization");
  auto [lo, hi] = cx.act_range(o->fused_activation_function(), cx.outs_[0]);
  at.set("mode", std::string(max ? "max" : "average"));
  at.set("act_min", lo);
  at.set("act_max", hi);
  return TV{cx.node("TFLiteQuantizedPool", {xv}, at), kNHWC};
}

TV softmax(Translator& cx, const fb::Operator* op) {
  auto* o = op->builtin_options_as_SoftmaxOptions();
  const float beta = o ? o->beta() : 1.0f;
  TV x = cx.in(0);
  if (is_quant_type(cx.dtype(x.v))) cx.unsupported_here("quantized SOFTMAX");
  int v = x.v;
  if (beta != 1.0f) v = cx.node("Mul", {v, cx.cst("beta", Tensor::from_vector<float>({}, {beta}))});
  const int r = cx.rank(v);
  if (r < 1) cx.fail("input", "SOFTMAX of a scalar");
  Attributes at;
  at.set("axis", int64_t{x.perm.empty() ? r - 1 : x.perm[static_cast<size_t>(r - 1)]});
  return TV{cx.node("Softmax", {v}, at), x.perm};
}

TV resize(Translator& cx, const fb::Operator* op, bool bilinear) {
  bool align = false, half = false;
  if (bilinear) {
    if (auto* o = op->builtin_options_as_ResizeBilinearOptions())
      align = o->align_corners(), half = o->half_pixel_centers();
  } else if (auto* o = op->builtin_options_as_ResizeNearestNeighborOptions()) {
    align = o->align_corners(), half = o->half_pixel_centers();
  }
  TV x = cx.in(0);
  if (is_quant_type(cx.dtype(x.v))) cx.unsupported_here("quantized resize");
  const Shape xs = cx.src_shape(x);
  if (xs.size() != 4) cx.fail("input", "expected an NHWC input, found " + shape_str(xs));
  auto size = cx.const_ints(1, "size");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1 || size[0] > kMaxTensorElements ||
      size[1] > kMaxTensorElements)
    cx.fail("size", "expected (new_height, new_width), found " + ints_str(size));
  if (align && half) cx.unsupported_here("align_corners together with half_pixel_centers");
  Attributes at;
  at.set("mode", std::string(bilinear ? "linear" : "nearest"));
  std::string ctm = "asymmetric";
  if (align)
    ctm = "align_corners";
  else if (half)
    ctm = bilinear ? "half_pixel" : "tf_half_pixel_for_nn";
  at.set("coordinate_transformation_mode", ctm);
  if (!bilinear) at.set("nearest_mode", std::string(align ? "round_prefer_ceil" : "floor"));
  const int xv = cx.as_nchw(x);
  const int sizes = cx.i64s("sizes", {xs[0], xs[3], size[0], size[1]});
  return TV{cx.node("Resize", {xv, -1, -1, sizes}, at), kNHWC};
}

}  // namespace

void add_nn_converters(ConverterTable& t) {
  t[fb::BuiltinOperator_CONV_2D] = [](Translator& cx, const fb::Operator* op) {
    return conv(cx, op, false);
  };
  t[fb::BuiltinOperator_DEPTHWISE_CONV_2D] = [](Translator& cx, const fb::Operator* op) {
    return conv(cx, op, true);
  };
  t[fb::BuiltinOperator_FULLY_CONNECTED] = fully_connected;
  t[fb::BuiltinOperator_AVERAGE_POOL_2D] = [](Translator& cx, const fb::Operator* op) {
    return pool(cx, op, false);
  };
  t[fb::BuiltinOperator_MAX_POOL_2D] = [](Translator& cx, const fb::Operator* op) {
    return pool(cx, op, true);
  };
  t[fb::BuiltinOperator_SOFTMAX] = softmax;
  t[fb::BuiltinOperator_RESIZE_BILINEAR] = [](Translator& cx, const fb::Operator* op) {
    return resize(cx, op, true);
  };
  t[fb::BuiltinOperator_RESIZE_NEAREST_NEIGHBOR] = [](Translator& cx, const fb::Operator* op) {
    return resize(cx, op, false);
  };
}

}  // namespace anvil::tflite_import
