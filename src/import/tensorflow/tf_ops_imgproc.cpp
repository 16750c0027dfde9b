// TF image-processing and quantization-simulation ops: AdjustContrastv2, RGBToHSV, HSVToRGB,
// AdjustHue, AdjustSaturation, NonMaxSuppression (v1-v5, TFNonMaxSuppression),
// MaxPoolWithArgmax, ResizeArea, ResizeBicubic, CropAndResize, FakeQuantWithMinMaxArgs / Vars /
// VarsPerChannel (lowered to canonical elementwise ops with TF's nudged range, computed at import
// from the constant min/max).
#include <cmath>
#include <limits>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

TT plain(int v) { return TT{v, {}}; }

// The value as a graph constant when the importer knows it (ops whose result size depends on
// input values need them as constants).
int known(TfBuilder& b, int v) {
  const Tensor* t = b.const_of(v);
  return t && !b.val(v).constant.defined() ? b.cst(*t) : v;
}

std::vector<TT> adjust_contrast(TfBuilder& b) {
  b.need_inputs(2, 2);
  int x = b.src(b.in[0]);
  if (b.rank(x) < 3) fail("images", "images must have rank >= 3 (..., height, width, channels)");
  if (!is_float(b.dtype(x))) fail("images", "images must be float");
  const int r = b.rank(x);
  Attributes a;
  a.set("keepdims", int64_t{1});
  int mean = b.emit1("ReduceMean", {x, b.i64s({r - 3, r - 2})}, a);
  int f = b.src(b.in[1]);
  if (b.dtype(f) != b.dtype(x)) f = b.cast(f, b.dtype(x));
  int d = b.emit1("Mul", {b.emit1("Sub", {x, mean}), f});
  return {plain(b.emit1("Add", {d, mean}))};
}

std::vector<TT> color(TfBuilder& b, const char* op) {
  b.need_inputs(1, 1);
  return {plain(b.emit1(op, {b.src(b.in[0])}))};
}

// HSV channel k of [..., 3]
int channel(TfBuilder& b, int v, int64_t k) {
  return b.emit1("Slice", {v, b.i64s({k}), b.i64s({k + 1}), b.i64s({-1})});
}

int concat_last(TfBuilder& b, const std::vector<int>& parts) {
  Attributes a;
  a.set("axis", int64_t{-1});
  return b.emit1("Concat", parts, a);
}

std::vector<TT> adjust_saturation(TfBuilder& b) {
  b.need_inputs(2, 2);
  int x = b.src(b.in[0]);
  if (!is_float(b.dtype(x))) fail("images", "images must be float");
  const DType dt = b.dtype(x);
  int hsv = b.emit1("RGBToHSV", {x});
  int h = channel(b, hsv, 0), s = channel(b, hsv, 1), v = channel(b, hsv, 2);
  int k = b.src(b.in[1]);
  if (b.dtype(k) != dt) k = b.cast(k, dt);
  s = b.emit1("Clip", {b.emit1("Mul", {s, k}), b.scalar(dt, 0), b.scalar(dt, 1)});
  return {plain(b.emit1("HSVToRGB", {concat_last(b, {h, s, v})}))};
}

std::vector<TT> nms(TfBuilder& b) {
  const std::string& op = b.op();
  const int version = op == "NonMaxSuppression" ? 1 : op.back() - '0';
  const size_t nin = version == 1 ? 3 : version == 2 ? 4 : version == 5 ? 6 : 5;
  b.need_inputs(nin, nin);
  int boxes = known(b, b.src(b.in[0])), scores = known(b, b.src(b.in[1]));
  int max_out = known(b, b.src(b.in[2]));
  int iou = version == 1 ? b.scalar(DType::f32, b.attr_f("iou_threshold", 0.5))
                         : known(b, b.src(b.in[3]));
  int sthr = version >= 3 ? known(b, b.src(b.in[4]))
                          : b.scalar(DType::f32, -std::numeric_limits<double>::infinity());
  int sigma = version == 5 ? known(b, b.src(b.in[5])) : b.scalar(DType::f32, 0);
  Attributes a;
  a.set("pad_to_max_output_size",
        int64_t{version >= 4 && b.attr_b("pad_to_max_output_size", false) ? 1 : 0});
  auto outs = b.emit("TFNonMaxSuppression", {boxes, scores, max_out, iou, sthr, sigma}, a, 3);
  if (version == 5) return {plain(outs[0]), plain(outs[1]), plain(outs[2])};
  if (version == 4) return {plain(outs[0]), plain(outs[2])};
  return {plain(outs[0])};
}

std::vector<TT> max_pool_argmax(TfBuilder& b) {
  b.need_inputs(1, 1);
  int x = b.src(b.in[0]);
  Shape xs = b.shape(x);
  if (xs.size() != 4) fail("input", "input must be 4-D NHWC, found " + shape_str(xs));
  auto ks = b.attr_ints("ksize"), st = b.attr_ints("strides");
  if (ks.size() != 4 || st.size() != 4) fail("ksize", "ksize and strides must have 4 values");
  if (ks[0] != 1 || ks[3] != 1 || st[0] != 1 || st[3] != 1)
    fail("ksize", "pooling over the batch or depth dimension is not supported");
  const std::string padding = b.attr_s("padding");
  std::vector<int64_t> pads{0, 0, 0, 0};
  try {
    if (padding == "SAME") {
      auto ph = tf::same_pads(xs[1], ks[1], st[1]);
      auto pw = tf::same_pads(xs[2], ks[2], st[2]);
      pads = {ph.begin, pw.begin, ph.end, pw.end};
    } else if (padding != "VALID") {
      fail("padding", "unknown padding '" + padding + "'");
    }
  } catch (const Error& e) {
    fail("padding", e.message());
  }
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{ks[1], ks[2]});
  a.set("strides", std::vector<int64_t>{st[1], st[2]});
  a.set("pads", pads);
  a.set("include_batch_in_index", int64_t{b.attr_b("include_batch_in_index", false) ? 1 : 0});
  auto outs = b.emit("MaxPoolWithArgmax", {x}, a, 2);
  const DType it = b.attr_dtype("Targmax", anvil_tf::DT_INT64);
  int idx = it == DType::i64 ? outs[1] : b.cast(outs[1], it);
  return {plain(outs[0]), plain(idx)};
}

// TF's Nudge (fake_quant_ops_functor.h), in float as TF computes it.
struct Nudged {
  float min, max, scale;
};
Nudged nudge(float min, float max, int64_t bits, bool narrow) {
  const float qmin = narrow ? 1.0f : 0.0f;
  const float qmax = static_cast<float>((int64_t{1} << bits) - 1);
  const float scale = (max - min) / (qmax - qmin);
  const float zp_from_min = qmin - min / scale;
  float zp;
  if (zp_from_min < qmin)
    zp = qmin;
  else if (zp_from_min > qmax)
    zp = qmax;
  else
    zp = std::round(zp_from_min);
  return {(qmin - zp) * scale, (qmax - zp) * scale, scale};
}

std::vector<TT> fake_quant(TfBuilder& b) {
  const std::string& op = b.op();
  const bool args = op == "FakeQuantWithMinMaxArgs";
  b.need_inputs(args ? 1 : 3, args ? 1 : 3);
  int x = b.src(b.in[0]);
  if (b.dtype(x) != DType::f32) fail("inputs", "FakeQuant needs float32 inputs");
  const int64_t bits = b.attr_i("num_bits", 8);
  if (bits < 2 || bits > 16) fail("num_bits", "num_bits must be in [2, 16]");
  const bool narrow = b.attr_b("narrow_range", false);
  std::vector<float> mins, maxs;
  if (args) {
    mins = {static_cast<float>(b.attr_f("min", -6.0))};
    maxs = {static_cast<float>(b.attr_f("max", 6.0))};
  } else {
    Tensor mn = b.const_input(1, "min"), mx = b.const_input(2, "max");
    if (mn.numel() != mx.numel()) fail("max", "min and max differ in size");
    for (int64_t i = 0; i < mn.numel(); ++i) {
      mins.push_back(static_cast<float>(mn.get(i)));
      maxs.push_back(static_cast<float>(mx.get(i)));
    }
  }
  const bool per_channel = op == "FakeQuantWithMinMaxVarsPerChannel";
  const int64_t d = static_cast<int64_t>(mins.size());
  if (per_channel && (b.rank(x) < 1 || b.shape(x).back() != d))
    fail("min", "per-channel min/max of " + std::to_string(d) + " values for input " +
                    shape_str(b.shape(x)));
  if (!per_channel && d != 1) fail("min", "min and max must be scalars");
  Shape vs = per_channel ? Shape{d} : Shape{};
  Tensor nmin(DType::f32, vs), nmax(DType::f32, vs), sc(DType::f32, vs), inv(DType::f32, vs);
  for (int64_t i = 0; i < d; ++i) {
    const size_t k = static_cast<size_t>(i);
    if (!(mins[k] <= maxs[k]))
      fail("min", "min " + std::to_string(mins[k]) + " > max " + std::to_string(maxs[k]));
    Nudged n = nudge(mins[k], maxs[k], bits, narrow);
    nmin.set(i, n.min);
    nmax.set(i, n.max);
    sc.set(i, n.scale);
    inv.set(i, 1.0f / n.scale);
  }
  const int cmin = b.cst(nmin), cmax = b.cst(nmax);
  int y = b.emit1("Max", {b.emit1("Min", {x, cmax}), cmin});
  y = b.emit1("Mul", {b.emit1("Sub", {y, cmin}), b.cst(inv)});
  y = b.emit1("Floor", {b.emit1("Add", {y, b.scalar(DType::f32, 0.5)})});
  y = b.emit1("Add", {b.emit1("Mul", {y, b.cst(sc)}), cmin});
  return {plain(y)};
}

std::vector<TT> resize_area(TfBuilder& b) {
  b.need_inputs(2, 2);
  int x = b.src(b.in[0]);
  if (b.rank(x) != 4) fail("images", "images must be 4-D NHWC");
  auto sz = b.const_ints(1, "size");
  if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1)
    fail("size", "size must be 2 positive values, found " + ints_str(sz));
  Attributes a;
  a.set("size", sz);
  a.set("align_corners", int64_t{b.attr_b("align_corners", false) ? 1 : 0});
  return {plain(b.emit1("TFResizeArea", {x}, a))};
}

std::vector<TT> resize_bicubic(TfBuilder& b) {
  b.need_inputs(2, 2);
  int x = b.src(b.in[0]);
  if (b.rank(x) != 4) fail("images", "images must be 4-D NHWC");
  auto sz = b.const_ints(1, "size");
  if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1)
    fail("size", "size must be 2 positive values, found " + ints_str(sz));
  const bool ac = b.attr_b("align_corners", false), hp = b.attr_b("half_pixel_centers", false);
  if (ac && hp)
    fail("half_pixel_centers", "align_corners and half_pixel_centers cannot both be set");
  Attributes a;
  a.set("size", sz);
  a.set("align_corners", int64_t{ac ? 1 : 0});
  a.set("half_pixel_centers", int64_t{hp ? 1 : 0});
  return {plain(b.emit1("TFResizeBicubic", {x}, a))};
}

std::vector<TT> crop_and_resize(TfBuilder& b) {
  b.need_inputs(4, 4);
  auto cs = b.const_ints(3, "crop_size");
  if (cs.size() != 2 || cs[0] < 1 || cs[1] < 1)
    fail("crop_size", "crop_size must be 2 positive values, found " + ints_str(cs));
  Attributes a;
  a.set("crop_size", cs);
  const std::string m = b.attr_s("method", "bilinear");
  if (m != "bilinear" && m != "nearest") fail("method", "unknown method '" + m + "'");
  a.set("method", m);
  a.set("extrapolation_value", b.attr_f("extrapolation_value", 0.0));
  return {plain(b.emit1("TFCropAndResize", {b.src(b.in[0]), b.src(b.in[1]), b.src(b.in[2])}, a))};
}

}  // namespace

void add_imgproc_converters(ConverterTable& t) {
  t["AdjustContrastv2"] = adjust_contrast;
  t["RGBToHSV"] = [](TfBuilder& b) { return color(b, "RGBToHSV"); };
  t["HSVToRGB"] = [](TfBuilder& b) { return color(b, "HSVToRGB"); };
  t["AdjustHue"] = [](TfBuilder& b) {
    b.need_inputs(2, 2);
    return std::vector<TT>{plain(b.emit1("TFAdjustHue", {b.src(b.in[0]), b.src(b.in[1])}))};
  };
  t["AdjustSaturation"] = adjust_saturation;
  for (const char* op : {"NonMaxSuppression", "NonMaxSuppressionV2", "NonMaxSuppressionV3",
                         "NonMaxSuppressionV4", "NonMaxSuppressionV5"})
    t[op] = nms;
  t["MaxPoolWithArgmax"] = max_pool_argmax;
  t["ResizeArea"] = resize_area;
  t["ResizeBicubic"] = resize_bicubic;
  t["CropAndResize"] = crop_and_resize;
  t["FakeQuantWithMinMaxArgs"] = t["FakeQuantWithMinMaxVars"] =
      t["FakeQuantWithMinMaxVarsPerChannel"] = fake_quant;
}

}  // namespace anvil::tf_import
