// Reference kernels for TensorFlow image ops that ONNX lacks: RGBToHSV / HSVToRGB (last axis
// of size 3, TF's formulas), TFAdjustHue (TF's hue rotation kernel), TFNonMaxSuppression
// (tf.image.non_max_suppression v1-v5: greedy selection by score with IOU hard suppression and
// optional soft-NMS, TF's candidate order) and MaxPoolWithArgmax (channels-last max pooling that
// also returns the flat index of each maximum, TF's index rule).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

OpDef make_color(const std::string& name, bool to_hsv) {
  OpDef d;
  d.name = name;
  d.category = "image";
  d.doc = to_hsv ? "RGB -> HSV along the last axis (size 3), values in [0, 1] (TF's rgb_to_hsv)"
                 : "HSV -> RGB along the last axis (size 3) (TF's hsv_to_rgb)";
  d.infer = [](InferContext& c) {
    if (!is_float(c.dtype(0)))
      c.fail("images", std::string("expects a float tensor, found ") + dtype_name(c.dtype(0)));
    if (c.rank(0) < 1 || c.shape(0).back() != 3)
      c.fail("images", "last dimension must be 3, found " + shape_str(c.shape(0)));
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [to_hsv](KernelContext& c) {
    const Tensor& x = input(c, 0, "images");
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    const int64_t n = x.numel() / 3;
    for (int64_t p = 0; p < n; ++p) {
      const float a = static_cast<float>(x.get(3 * p)), b = static_cast<float>(x.get(3 * p + 1)),
                  e = static_cast<float>(x.get(3 * p + 2));
      float o0, o1, o2;
      if (to_hsv) {
        const float r = a, g = b, bl = e;
        const float v = std::max(r, std::max(g, bl));
        const float range = v - std::min(r, std::min(g, bl));
        const float s = v > 0 ? range / v : 0.0f;
        const float norm = 1.0f / (6.0f * range);
        float h;
        if (r == v)
          h = norm * (g - bl);
        else if (g == v)
          h = norm * (bl - r) + 2.0f / 6.0f;
        else
          h = norm * (r - g) + 4.0f / 6.0f;
        if (range <= 0) h = 0;
        if (h < 0) h += 1;
        o0 = h, o1 = s, o2 = v;
      } else {
        const float h = a, s = b, v = e;
        const float ch = s * v, m = v - ch, dh = h * 6;
        const int cat = static_cast<int>(std::floor(dh));
        const float fm = std::fmod(dh, 2.0f);
        const float xx = ch * (1 - std::fabs(fm - 1));
        float rr = 0, gg = 0, bb = 0;
        switch (cat) {
          case 0:
            rr = ch, gg = xx;
            break;
          case 1:
            rr = xx, gg = ch;
            break;
          case 2:
            gg = ch, bb = xx;
            break;
          case 3:
            gg = xx, bb = ch;
            break;
          case 4:
            rr = xx, bb = ch;
            break;
          case 5:
            rr = ch, bb = xx;
            break;
          default:
            break;
        }
        o0 = rr + m, o1 = gg + m, o2 = bb + m;
      }
      y.set(3 * p, o0);
      y.set(3 * p + 1, o1);
      y.set(3 * p + 2, o2);
    }
  };
  return d;
}

// --- TFAdjustHue --------------------------------------------------------------------------------

// TF's adjust_hue kernel: hue as a position in [0, 6) between the min and max channel, which
// keeps every input (also outside [0, 1]) exact, unlike a trip through HSV.
void rgb_to_hv(float r, float g, float b, float& h, float& vmin, float& vmax) {
  float vmid;
  int cat;
  if (r < g) {
    if (b < r)
      vmax = g, vmid = r, vmin = b, cat = 1;
    else if (b > g)
      vmax = b, vmid = g, vmin = r, cat = 3;
    else
      vmax = g, vmid = b, vmin = r, cat = 2;
  } else if (b < g) {
    vmax = r, vmid = g, vmin = b, cat = 0;
  } else if (b > r) {
    vmax = b, vmid = r, vmin = g, cat = 4;
  } else {
    vmax = r, vmid = b, vmin = g, cat = 5;
  }
  if (vmax == vmin) {
    h = 0;
    return;
  }
  const float ratio = (vmid - vmin) / (vmax - vmin);
  h = static_cast<float>(cat) + ((cat & 1) == 0 ? ratio : 1 - ratio);
}

void hv_to_rgb(float h, float vmin, float vmax, float* o) {
  const int cat = static_cast<int>(h);
  float ratio = h - static_cast<float>(cat);
  if ((cat & 1) != 0) ratio = 1 - ratio;
  const float vmid = vmin + ratio * (vmax - vmin);
  switch (cat) {
    case 0:
      o[0] = vmax, o[1] = vmid, o[2] = vmin;
      break;
    case 1:
      o[0] = vmid, o[1] = vmax, o[2] = vmin;
      break;
    case 2:
      o[0] = vmin, o[1] = vmax, o[2] = vmid;
      break;
    case 3:
      o[0] = vmin, o[1] = vmid, o[2] = vmax;
      break;
    case 4:
      o[0] = vmid, o[1] = vmin, o[2] = vmax;
      break;
    default:
      o[0] = vmax, o[1] = vmin, o[2] = vmid;
  }
}

OpDef make_adjust_hue() {
  OpDef d;
  d.name = "TFAdjustHue";
  d.category = "image";
  d.doc =
      "TF AdjustHue: rotates the hue of RGB images (last axis 3) by delta (scalar input, "
      "in turns)";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    if (!is_float(c.dtype(0))) c.fail("images", "expects a float tensor");
    if (c.rank(0) < 1 || c.shape(0).back() != 3)
      c.fail("images", "last dimension must be 3, found " + shape_str(c.shape(0)));
    if (shape_numel(c.shape(1)) != 1) c.fail("delta", "must be a scalar");
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "images");
    const float delta = static_cast<float>(input(c, 1, "delta").get(0));
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    for (int64_t p = 0; p < x.numel() / 3; ++p) {
      float h, vmin, vmax, o[3];
      rgb_to_hv(static_cast<float>(x.get(3 * p)), static_cast<float>(x.get(3 * p + 1)),
                static_cast<float>(x.get(3 * p + 2)), h, vmin, vmax);
      h += delta * 6;
      while (h < 0) h += 6;
      while (h >= 6) h -= 6;
      hv_to_rgb(h, vmin, vmax, o);
      for (int k = 0; k < 3; ++k) y.set(3 * p + k, o[k]);
    }
  };
  return d;
}

// --- TFNonMaxSuppression -----------------------------------------------------------------------

struct NmsResult {
  std::vector<int64_t> indices;
  std::vector<float> scores;
};

template <class Ctx>
NmsResult run_nms(const Ctx& c, const Tensor& boxes, const Tensor& scores, int64_t max_out,
                  float iou_thr, float score_thr, float sigma) {
  const int64_t n = scores.numel();
  if (boxes.rank() != 2 || boxes.shape()[1] != 4 || boxes.shape()[0] != n)
    c.fail("boxes", "must be [num_boxes, 4] with one score per box, found " +
                        shape_str(boxes.shape()) + " and " + shape_str(scores.shape()));
  // iou_threshold outside [0, 1] is accepted as TF 1.x did (newer TF rejects it)
  if (sigma < 0) c.fail("soft_nms_sigma", "must be >= 0");
  std::vector<float> bx(static_cast<size_t>(4 * n));
  for (int64_t i = 0; i < 4 * n; ++i) bx[static_cast<size_t>(i)] = static_cast<float>(boxes.get(i));
  auto iou = [&](int64_t i, int64_t j) -> float {
    const float* a = &bx[static_cast<size_t>(4 * i)];
    const float* b = &bx[static_cast<size_t>(4 * j)];
    const float ymin_i = std::min(a[0], a[2]), xmin_i = std::min(a[1], a[3]);
    const float ymax_i = std::max(a[0], a[2]), xmax_i = std::max(a[1], a[3]);
    const float ymin_j = std::min(b[0], b[2]), xmin_j = std::min(b[1], b[3]);
    const float ymax_j = std::max(b[0], b[2]), xmax_j = std::max(b[1], b[3]);
    const float area_i = (ymax_i - ymin_i) * (xmax_i - xmin_i);
    const float area_j = (ymax_j - ymin_j) * (xmax_j - xmin_j);
    if (area_i <= 0 || area_j <= 0) return 0.0f;
    const float iy = std::max(std::min(ymax_i, ymax_j) - std::max(ymin_i, ymin_j), 0.0f);
    const float ix = std::max(std::min(xmax_i, xmax_j) - std::max(xmin_i, xmin_j), 0.0f);
    const float inter = iy * ix;
    return inter / (area_i + area_j - inter);
  };
  struct Cand {
    int64_t box;
    float score;
    int64_t begin;
  };
  // TF's order: higher score first, ties by lower box index
  auto less = [](const Cand& a, const Cand& b) {
    return (a.score == b.score && a.box > b.box) || a.score < b.score;
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(less)> q(less);
  for (int64_t i = 0; i < n; ++i) {
    const float s = static_cast<float>(scores.get(i));
    if (s > score_thr) q.push({i, s, 0});
  }
  const float scale = sigma > 0 ? -0.5f / sigma : 0.0f;
  NmsResult r;
  while (static_cast<int64_t>(r.indices.size()) < max_out && !q.empty()) {
    Cand cand = q.top();
    q.pop();
    const float original = cand.score;
    bool hard = false;
    for (int64_t j = static_cast<int64_t>(r.indices.size()) - 1; j >= cand.begin; --j) {
      const float sim = iou(cand.box, r.indices[static_cast<size_t>(j)]);
      cand.score *= sim <= iou_thr ? std::exp(scale * sim * sim) : 0.0f;
      if (sim >= iou_thr) {
        hard = true;
        break;
      }
      if (cand.score <= score_thr) break;
    }
    cand.begin = static_cast<int64_t>(r.indices.size());
    if (hard) continue;
    if (cand.score == original) {
      r.indices.push_back(cand.box);
      r.scores.push_back(cand.score);
    } else if (cand.score > score_thr) {
      q.push(cand);
    }
  }
  return r;
}

template <class Ctx>
float scalar_of(const Ctx& c, const Tensor& t, const std::string& field) {
  if (t.numel() != 1) c.fail(field, "must be a scalar");
  return static_cast<float>(t.get(0));
}

OpDef make_nms() {
  OpDef d;
  d.name = "TFNonMaxSuppression";
  d.category = "image";
  d.doc =
      "TF NonMaxSuppressionV5: boxes [n, 4] (y1, x1, y2, x2), scores [n], max_output_size, "
      "iou_threshold, score_threshold, soft_nms_sigma -> selected indices (i32), their scores, "
      "count (i32); attr pad_to_max_output_size (unpadded needs constant inputs)";
  d.min_inputs = d.max_inputs = 6;
  d.min_outputs = 1;
  d.max_outputs = 3;
  d.attrs = {{"pad_to_max_output_size", AttrType::Int, "1: pad the outputs to max_output_size"}};
  d.infer = [](InferContext& c) {
    const bool pad = c.attrs().get_int("pad_to_max_output_size", 0) != 0;
    int64_t count;
    const Tensor& mo = c.require_constant(2, "max_output_size");
    const int64_t max_out = int_values(c, mo, "max_output_size").at(0);
    if (max_out < 0) c.fail("max_output_size", "must be >= 0");
    if (pad) {
      count = max_out;
    } else {
      for (int i : {0, 1, 3, 4, 5})
        if (!c.constant(i))
          c.fail("boxes",
                 "without pad_to_max_output_size the result's size depends on the "
                 "values: the inputs must be known when the model is compiled");
      NmsResult r = run_nms(c, *c.constant(0), *c.constant(1), max_out,
                            scalar_of(c, *c.constant(3), "iou_threshold"),
                            scalar_of(c, *c.constant(4), "score_threshold"),
                            scalar_of(c, *c.constant(5), "soft_nms_sigma"));
      count = static_cast<int64_t>(r.indices.size());
    }
    c.set_output(0, DType::i32, {count});
    if (c.num_outputs() > 1) c.set_output(1, c.dtype(1), {count});
    if (c.num_outputs() > 2) c.set_output(2, DType::i32, {});
  };
  d.reference = [](KernelContext& c) {
    const int64_t max_out = int_values(c, input(c, 2, "max_output_size"), "max_output_size").at(0);
    NmsResult r = run_nms(c, input(c, 0, "boxes"), input(c, 1, "scores"), max_out,
                          scalar_of(c, input(c, 3, "iou_threshold"), "iou_threshold"),
                          scalar_of(c, input(c, 4, "score_threshold"), "score_threshold"),
                          scalar_of(c, input(c, 5, "soft_nms_sigma"), "soft_nms_sigma"));
    Tensor& idx = c.outputs[0];
    if (idx.numel() < static_cast<int64_t>(r.indices.size()))
      c.fail("boxes", "more boxes selected than the inferred output holds");
    for (int64_t i = 0; i < idx.numel(); ++i)
      idx.set(i, i < static_cast<int64_t>(r.indices.size())
                     ? static_cast<double>(r.indices[static_cast<size_t>(i)])
                     : 0.0);
    if (c.outputs.size() > 1)
      for (int64_t i = 0; i < c.outputs[1].numel(); ++i)
        c.outputs[1].set(i, i < static_cast<int64_t>(r.scores.size())
                                ? static_cast<double>(r.scores[static_cast<size_t>(i)])
                                : 0.0);
    if (c.outputs.size() > 2) c.outputs[2].set(0, static_cast<double>(r.indices.size()));
  };
  return d;
}

// --- MaxPoolWithArgmax -------------------------------------------------------------------------

OpDef make_maxpool_argmax() {
  OpDef d;
  d.name = "MaxPoolWithArgmax";
  d.category = "pool";
  d.doc =
      "TF MaxPoolWithArgmax on NHWC input: the window maxima and the flat index of each, "
      "((b * H + y) * W + x) * C + c (b only with include_batch_in_index; the first maximum "
      "in window order wins)";
  d.max_outputs = d.min_outputs = 2;
  d.attrs = {{"kernel_shape", AttrType::Ints, "window (kh, kw)"},
             {"strides", AttrType::Ints, "(sh, sw)"},
             {"pads", AttrType::Ints, "(top, left, bottom, right)"},
             {"include_batch_in_index", AttrType::Int, "1: the index counts the batch too"}};
  auto geom = [](const auto& c, const Shape& xs, std::vector<int64_t>& k, std::vector<int64_t>& s,
                 std::vector<int64_t>& p) {
    k = c.attrs().get_ints("kernel_shape", {});
    s = c.attrs().get_ints("strides", {1, 1});
    p = c.attrs().get_ints("pads", {0, 0, 0, 0});
    if (xs.size() != 4) c.fail("input", "must be 4-D NHWC, found " + shape_str(xs));
    if (k.size() != 2 || s.size() != 2 || p.size() != 4 || k[0] < 1 || k[1] < 1 || s[0] < 1 ||
        s[1] < 1)
      c.fail("kernel_shape", "needs kernel_shape and strides of 2 positive values, pads of 4");
    Shape out{xs[0], (xs[1] + p[0] + p[2] - k[0]) / s[0] + 1,
              (xs[2] + p[1] + p[3] - k[1]) / s[1] + 1, xs[3]};
    if (out[1] < 1 || out[2] < 1) c.fail("kernel_shape", "window larger than the input");
    return out;
  };
  d.infer = [geom](InferContext& c) {
    std::vector<int64_t> k, s, p;
    Shape out = geom(c, c.shape(0), k, s, p);
    c.set_output(0, c.dtype(0), out);
    c.set_output(1, DType::i64, out);
  };
  d.reference = [geom](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    std::vector<int64_t> k, s, p;
    Shape os = geom(c, x.shape(), k, s, p);
    Tensor& y = output(c, 0, x.dtype(), os);
    Tensor& am = output(c, 1, DType::i64, os);
    const bool with_b = c.attrs().get_int("include_batch_in_index", 0) != 0;
    const int64_t H = x.shape()[1], W = x.shape()[2], C = x.shape()[3];
    for (int64_t b = 0; b < os[0]; ++b)
      for (int64_t oy = 0; oy < os[1]; ++oy)
        for (int64_t ox = 0; ox < os[2]; ++ox)
          for (int64_t ch = 0; ch < C; ++ch) {
            double best = -std::numeric_limits<double>::infinity();
            int64_t arg = -1;
            for (int64_t ky = 0; ky < k[0]; ++ky)
              for (int64_t kx = 0; kx < k[1]; ++kx) {
                const int64_t iy = oy * s[0] - p[0] + ky, ix = ox * s[1] - p[1] + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const int64_t off = ((b * H + iy) * W + ix) * C + ch;
                const double v = x.get(off);
                if (arg < 0 || v > best) {
                  best = v;
                  arg = with_b ? off : (iy * W + ix) * C + ch;
                }
              }
            const int64_t o = ((b * os[1] + oy) * os[2] + ox) * C + ch;
            y.set(o, best);
            store_int(am, o, arg);
          }
  };
  return d;
}

// --- TFResizeArea ------------------------------------------------------------------------------

float resize_scale(int64_t in, int64_t out, bool align) {
  return (align && out > 1) ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                            : static_cast<float>(in) / static_cast<float>(out);
}

OpDef make_resize_area() {
  OpDef d;
  d.name = "TFResizeArea";
  d.category = "image";
  d.doc =
      "TF ResizeArea on NHWC images: each output pixel averages the input area it covers "
      "(attrs size (h, w), align_corners); float32 result";
  d.attrs = {{"size", AttrType::Ints, "output (height, width)"},
             {"align_corners", AttrType::Int, "1: TF's align_corners scale"}};
  d.infer = [](InferContext& c) {
    auto sz = c.attrs().get_ints("size", {});
    if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1) c.fail("size", "needs 2 positive values");
    if (c.rank(0) != 4) c.fail("images", "must be 4-D NHWC");
    if (c.dtype(0) == DType::boolean) c.fail("images", "expects a numeric tensor");
    c.set_output(0, DType::f32, {c.shape(0)[0], sz[0], sz[1], c.shape(0)[3]});
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "images");
    auto sz = c.attrs().get_ints("size", {});
    const bool align = c.attrs().get_int("align_corners", 0) != 0;
    const int64_t N = x.shape()[0], H = x.shape()[1], W = x.shape()[2], C = x.shape()[3];
    Tensor& y = output(c, 0, DType::f32, {N, sz[0], sz[1], C});
    const float hs = resize_scale(H, sz[0], align), ws = resize_scale(W, sz[1], align);
    const float inv = 1.0f / (hs * ws);
    // per output coordinate: the input cells and their weights
    auto spans = [](int64_t out, int64_t in, float s) {
      std::vector<std::vector<std::pair<int64_t, float>>> r(static_cast<size_t>(out));
      for (int64_t o = 0; o < out; ++o) {
        const float a = static_cast<float>(o) * s, b = static_cast<float>(o + 1) * s;
        for (int64_t i = static_cast<int64_t>(std::floor(a));
             i < static_cast<int64_t>(std::ceil(b)); ++i) {
          const float fi = static_cast<float>(i);
          const float w = (fi < a) ? (fi + 1 > b ? s : fi + 1 - a) : (fi + 1 > b ? b - fi : 1.0f);
          r[static_cast<size_t>(o)].push_back({std::min(in - 1, std::max<int64_t>(0, i)), w});
        }
      }
      return r;
    };
    auto ys = spans(sz[0], H, hs), xs = spans(sz[1], W, ws);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oy = 0; oy < sz[0]; ++oy)
        for (int64_t ox = 0; ox < sz[1]; ++ox)
          for (int64_t ch = 0; ch < C; ++ch) {
            float sum = 0;
            for (const auto& [iy, wy] : ys[static_cast<size_t>(oy)]) {
              float row = 0;
              for (const auto& [ix, wx] : xs[static_cast<size_t>(ox)])
                row += static_cast<float>(x.get(((n * H + iy) * W + ix) * C + ch)) * wx;
              sum += row * wy;
            }
            y.set(((n * sz[0] + oy) * sz[1] + ox) * C + ch, sum * inv);
          }
  };
  return d;
}

// --- TFResizeBicubic ---------------------------------------------------------------------------

// TF's bicubic weights come from a 1025-entry table per kernel (a = -0.75 legacy, Keys' a = -0.5
// with half_pixel_centers), indexed by the tap position rounded to 1/1024.
constexpr int64_t kCubicTable = 1024;
const std::vector<float>& cubic_table(bool keys) {
  static const auto make = [](double a) {
    std::vector<float> t(static_cast<size_t>((kCubicTable + 1) * 2));
    for (int64_t i = 0; i <= kCubicTable; ++i) {
      float x = static_cast<float>(static_cast<double>(i) / kCubicTable);
      t[static_cast<size_t>(i * 2)] = static_cast<float>(((a + 2) * x - (a + 3)) * x * x + 1);
      x += 1.0f;
      t[static_cast<size_t>(i * 2 + 1)] =
          static_cast<float>(((a * x - 5 * a) * x + 8 * a) * x - 4 * a);
    }
    return t;
  };
  static const std::vector<float> legacy = make(-0.75), k = make(-0.5);
  return keys ? k : legacy;
}

struct CubicTaps {
  int64_t idx[4];
  float w[4];
};

CubicTaps cubic_taps(float scale, int64_t out, int64_t limit, bool half_pixel) {
  const float f = half_pixel ? (static_cast<float>(out) + 0.5f) * scale - 0.5f
                             : static_cast<float>(out) * scale;
  const int64_t loc = static_cast<int64_t>(std::floor(f));
  const int64_t off = static_cast<int64_t>(std::lrint((f - static_cast<float>(loc)) * kCubicTable));
  const auto& t = cubic_table(half_pixel);
  CubicTaps r;
  const float w[4] = {t[static_cast<size_t>(off * 2 + 1)], t[static_cast<size_t>(off * 2)],
                      t[static_cast<size_t>((kCubicTable - off) * 2)],
                      t[static_cast<size_t>((kCubicTable - off) * 2 + 1)]};
  float sum = 0;
  for (int k = 0; k < 4; ++k) {
    const int64_t want = loc - 1 + k;
    r.idx[k] = std::min(limit - 1, std::max<int64_t>(0, want));
    r.w[k] = (!half_pixel || r.idx[k] == want) ? w[k] : 0.0f;
    sum += r.w[k];
  }
  if (half_pixel && std::fabs(sum) >= 1000.0f * std::numeric_limits<float>::min())
    for (float& x : r.w) x *= 1.0f / sum;
  return r;
}

OpDef make_resize_bicubic() {
  OpDef d;
  d.name = "TFResizeBicubic";
  d.category = "image";
  d.doc =
      "TF ResizeBicubic on NHWC images with TF's tabulated weights (attrs size (h, w), "
      "align_corners, half_pixel_centers); float32 result";
  d.attrs = {{"size", AttrType::Ints, "output (height, width)"},
             {"align_corners", AttrType::Int, "1: TF's align_corners scale"},
             {"half_pixel_centers", AttrType::Int, "1: half-pixel centres, Keys' kernel"}};
  d.infer = [](InferContext& c) {
    auto sz = c.attrs().get_ints("size", {});
    if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1) c.fail("size", "needs 2 positive values");
    if (c.rank(0) != 4) c.fail("images", "must be 4-D NHWC");
    if (c.dtype(0) == DType::boolean) c.fail("images", "expects a numeric tensor");
    c.set_output(0, DType::f32, {c.shape(0)[0], sz[0], sz[1], c.shape(0)[3]});
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "images");
    auto sz = c.attrs().get_ints("size", {});
    const bool align = c.attrs().get_int("align_corners", 0) != 0;
    const bool hp = c.attrs().get_int("half_pixel_centers", 0) != 0;
    const int64_t N = x.shape()[0], H = x.shape()[1], W = x.shape()[2], C = x.shape()[3];
    Tensor& y = output(c, 0, DType::f32, {N, sz[0], sz[1], C});
    const float hs = resize_scale(H, sz[0], align), ws = resize_scale(W, sz[1], align);
    std::vector<CubicTaps> xt;
    for (int64_t ox = 0; ox < sz[1]; ++ox) xt.push_back(cubic_taps(ws, ox, W, hp));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oy = 0; oy < sz[0]; ++oy) {
        const CubicTaps yt = cubic_taps(hs, oy, H, hp);
        for (int64_t ox = 0; ox < sz[1]; ++ox)
          for (int64_t ch = 0; ch < C; ++ch) {
            float rows[4];
            for (int k = 0; k < 4; ++k) {
              float r = 0;
              for (int j = 0; j < 4; ++j)
                r += xt[static_cast<size_t>(ox)].w[j] *
                     static_cast<float>(x.get(
                         ((n * H + yt.idx[k]) * W + xt[static_cast<size_t>(ox)].idx[j]) * C + ch));
              rows[k] = r;
            }
            float v = 0;
            for (int k = 0; k < 4; ++k) v += yt.w[k] * rows[k];
            y.set(((n * sz[0] + oy) * sz[1] + ox) * C + ch, v);
          }
      }
  };
  return d;
}

// --- TFCropAndResize ---------------------------------------------------------------------------

OpDef make_crop_and_resize() {
  OpDef d;
  d.name = "TFCropAndResize";
  d.category = "image";
  d.doc =
      "TF CropAndResize: image [b, h, w, c], boxes [n, 4] (normalized y1, x1, y2, x2), box_ind "
      "[n] -> crops [n, ch, cw, c] resized bilinearly or to the nearest pixel (attrs crop_size, "
      "method, extrapolation_value); float32 result";
  d.min_inputs = d.max_inputs = 3;
  d.attrs = {{"crop_size", AttrType::Ints, "(crop_height, crop_width)"},
             {"method", AttrType::String, "bilinear (default) or nearest"},
             {"extrapolation_value", AttrType::Float, "value outside the image (default 0)"}};
  d.infer = [](InferContext& c) {
    auto cs = c.attrs().get_ints("crop_size", {});
    if (cs.size() != 2 || cs[0] < 1 || cs[1] < 1) c.fail("crop_size", "needs 2 positive values");
    const std::string m = c.attrs().get_string("method", "bilinear");
    if (m != "bilinear" && m != "nearest") c.fail("method", "must be bilinear or nearest");
    if (c.rank(0) != 4) c.fail("image", "must be 4-D NHWC");
    if (c.rank(1) != 2 || c.shape(1)[1] != 4) c.fail("boxes", "must be [num_boxes, 4]");
    if (c.rank(2) != 1 || c.shape(2)[0] != c.shape(1)[0]) c.fail("box_ind", "must be [num_boxes]");
    c.set_output(0, DType::f32, {c.shape(1)[0], cs[0], cs[1], c.shape(0)[3]});
  };
  d.reference = [](KernelContext& c) {
    const Tensor& img = input(c, 0, "image");
    const Tensor& boxes = input(c, 1, "boxes");
    const Tensor& bi = input(c, 2, "box_ind");
    auto cs = c.attrs().get_ints("crop_size", {});
    const bool bilinear = c.attrs().get_string("method", "bilinear") == "bilinear";
    const float ext = static_cast<float>(c.attrs().get_float("extrapolation_value", 0.0));
    const int64_t B = img.shape()[0], H = img.shape()[1], W = img.shape()[2], C = img.shape()[3];
    const int64_t n = boxes.shape()[0], ch = cs[0], cw = cs[1];
    Tensor& y = output(c, 0, DType::f32, {n, ch, cw, C});
    auto at = [&](int64_t b, int64_t yy, int64_t xx, int64_t k) {
      return static_cast<float>(img.get(((b * H + yy) * W + xx) * C + k));
    };
    for (int64_t i = 0; i < n; ++i) {
      const float y1 = static_cast<float>(boxes.get(4 * i)),
                  x1 = static_cast<float>(boxes.get(4 * i + 1));
      const float y2 = static_cast<float>(boxes.get(4 * i + 2)),
                  x2 = static_cast<float>(boxes.get(4 * i + 3));
      const int64_t b = load_int(bi, i);
      if (b < 0 || b >= B) c.fail("box_ind", "box index " + std::to_string(b) + " out of range");
      const float hsc =
          ch > 1 ? (y2 - y1) * static_cast<float>(H - 1) / static_cast<float>(ch - 1) : 0;
      const float wsc =
          cw > 1 ? (x2 - x1) * static_cast<float>(W - 1) / static_cast<float>(cw - 1) : 0;
      for (int64_t oy = 0; oy < ch; ++oy) {
        const float iny = ch > 1 ? y1 * static_cast<float>(H - 1) + static_cast<float>(oy) * hsc
                                 : 0.5f * (y1 + y2) * static_cast<float>(H - 1);
        for (int64_t ox = 0; ox < cw; ++ox) {
          const float inx = cw > 1 ? x1 * static_cast<float>(W - 1) + static_cast<float>(ox) * wsc
                                   : 0.5f * (x1 + x2) * static_cast<float>(W - 1);
          const int64_t o = ((i * ch + oy) * cw + ox) * C;
          const bool out = iny < 0 || iny > static_cast<float>(H - 1) || inx < 0 ||
                           inx > static_cast<float>(W - 1);
          for (int64_t k = 0; k < C; ++k) {
            float v = ext;
            if (!out && bilinear) {
              const int64_t t = static_cast<int64_t>(std::floor(iny)),
                            bo = static_cast<int64_t>(std::ceil(iny));
              const int64_t l = static_cast<int64_t>(std::floor(inx)),
                            r = static_cast<int64_t>(std::ceil(inx));
              const float yl = iny - static_cast<float>(t), xl = inx - static_cast<float>(l);
              const float top = at(b, t, l, k) + (at(b, t, r, k) - at(b, t, l, k)) * xl;
              const float bot = at(b, bo, l, k) + (at(b, bo, r, k) - at(b, bo, l, k)) * xl;
              v = top + (bot - top) * yl;
            } else if (!out) {
              v = at(b, static_cast<int64_t>(std::round(iny)),
                     static_cast<int64_t>(std::round(inx)), k);
            }
            y.set(o + k, v);
          }
        }
      }
    }
  };
  return d;
}

const bool registered = [] {
  register_op(make_color("RGBToHSV", true));
  register_op(make_color("HSVToRGB", false));
  register_op(make_adjust_hue());
  register_op(make_nms());
  register_op(make_maxpool_argmax());
  register_op(make_resize_area());
  register_op(make_resize_bicubic());
  register_op(make_crop_and_resize());
  return true;
}();

}  // namespace
}  // namespace anvil
