// Reference kernels: Resize (ONNX opset 13+ form: X, roi, scales, sizes; nearest / linear /
// cubic, every coordinate_transformation_mode; opset-18 axes and keep_aspect_ratio_policy)
// and Upsample (opset 9 form: X, scales; asymmetric coordinates).
//
// The interpolation is separable: for each resized dim and output coordinate we compute the
// input taps (index, weight); an output element is the sum over the product of its taps.
// Out-of-range taps are clamped to the edge (ONNX's edge padding), or dropped and the weights
// renormalized with exclude_outside. align_corners and tf_crop_and_resize use the unrounded
// resized length scale * length_original, as the ONNX reference implementation (and so the
// official node tests) do; the other modes use the scale itself.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;

struct ResizeParams {
  Shape out;
  std::vector<double> scale;               // per dim (1 where not resized)
  std::vector<double> roi_start, roi_end;  // per dim (0 / 1 by default)
};

std::vector<double> float_values(const std::string& op, const std::string& field, const Tensor& t) {
  if (!is_float(t.dtype()))
    fail(op, field, std::string("expected a float tensor, found ") + dtype_name(t.dtype()));
  if (t.rank() > 1) fail(op, field, "expected a 1-D tensor, found shape " + shape_str(t.shape()));
  return t.to_doubles();
}

/// roi/scales/sizes may be absent (nullptr) or empty (no values) = not given.
ResizeParams resize_params(const std::string& op, const Shape& x, const Tensor* roi,
                           const Tensor* scales, const Tensor* sizes, const Attributes& a) {
  const int rank = static_cast<int>(x.size());
  ResizeParams p;
  p.out = x;
  p.scale.assign(x.size(), 1.0);
  p.roi_start.assign(x.size(), 0.0);
  p.roi_end.assign(x.size(), 1.0);
  std::vector<int> axes;
  if (a.has("axes")) {
    for (int64_t ax : a.get_ints("axes")) {
      int u = nn::norm_axis(op, "axes", ax, rank);
      if (std::find(axes.begin(), axes.end(), u) != axes.end())
        fail(op, "axes", "axis " + std::to_string(ax) + " is listed twice");
      axes.push_back(u);
    }
  } else {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  const size_t na = axes.size();
  const bool has_scales = scales && scales->numel() > 0;
  const bool has_sizes = sizes && sizes->numel() > 0;
  if (has_scales == has_sizes)
    fail(op, has_scales ? "sizes" : "scales",
         "exactly one of 'scales' and 'sizes' must be given (non-empty)");
  if (roi && roi->numel() > 0) {
    auto r = float_values(op, "roi", *roi);
    if (r.size() != 2 * na)
      fail(op, "roi",
           "expected " + std::to_string(2 * na) + " values [starts..., ends...], found " +
               std::to_string(r.size()));
    for (size_t i = 0; i < na; ++i) {
      p.roi_start[static_cast<size_t>(axes[i])] = r[i];
      p.roi_end[static_cast<size_t>(axes[i])] = r[i + na];
    }
  }
  if (has_scales) {
    auto s = float_values(op, "scales", *scales);
    if (s.size() != na)
      fail(op, "scales",
           "expected " + std::to_string(na) + " values (one per axis), found " +
               std::to_string(s.size()));
    for (size_t i = 0; i < na; ++i) {
      const auto d = static_cast<size_t>(axes[i]);
      if (!(s[i] > 0) || !std::isfinite(s[i]))
        fail(op, "scales", "scales must be positive and finite, found " + std::to_string(s[i]));
      p.scale[d] = s[i];
      const double o = std::floor(static_cast<double>(x[d]) * s[i]);
      if (o > 1e12) fail(op, "scales", "output size too large");
      p.out[d] = static_cast<int64_t>(o);
    }
  } else {
    auto sz = nn::int_values(op, "sizes", *sizes);
    if (sz.size() != na)
      fail(op, "sizes",
           "expected " + std::to_string(na) + " values (one per axis), found " +
               std::to_string(sz.size()));
    for (int64_t v : sz)
      if (v < 0) fail(op, "sizes", "sizes must be >= 0, found " + nn::ints_str(sz));
    const std::string policy = a.get_string("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch") {
      for (size_t i = 0; i < na; ++i) {
        const auto d = static_cast<size_t>(axes[i]);
        p.out[d] = sz[i];
        if (x[d] == 0) fail(op, "X", "cannot resize an empty dimension");
        p.scale[d] = static_cast<double>(sz[i]) / static_cast<double>(x[d]);
      }
    } else if (policy == "not_larger" || policy == "not_smaller") {
      double sc = policy == "not_larger" ? 1e300 : 0.0;
      for (size_t i = 0; i < na; ++i) {
        const auto d = static_cast<size_t>(axes[i]);
        if (x[d] == 0) fail(op, "X", "cannot resize an empty dimension");
        double r = static_cast<double>(sz[i]) / static_cast<double>(x[d]);
        sc = policy == "not_larger" ? std::min(sc, r) : std::max(sc, r);
      }
      for (size_t i = 0; i < na; ++i) {
        const auto d = static_cast<size_t>(axes[i]);
        p.scale[d] = sc;
        p.out[d] = static_cast<int64_t>(std::round(sc * static_cast<double>(x[d])));
      }
    } else {
      fail(op, "keep_aspect_ratio_policy",
           "expected stretch, not_larger or not_smaller, found '" + policy + "'");
    }
  }
  return p;
}

struct Interp {
  std::string mode = "nearest";                // nearest, linear, cubic
  std::string coord = "half_pixel";            // coordinate_transformation_mode
  std::string nearest = "round_prefer_floor";  // + "simple" (Upsample: floor up, ceil down)
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
};

void check_interp(const std::string& op, const Interp& m) {
  static const char* modes[] = {"nearest", "linear", "cubic"};
  static const char* coords[] = {
      "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
      "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
  static const char* nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil",
                                   "simple"};
  auto in = [](const std::string& s, const auto& list) {
    return std::any_of(std::begin(list), std::end(list), [&](const char* c) { return s == c; });
  };
  if (!in(m.mode, modes))
    fail(op, "mode", "expected nearest, linear or cubic, found '" + m.mode + "'");
  if (!in(m.coord, coords))
    fail(op, "coordinate_transformation_mode", "unknown mode '" + m.coord + "'");
  if (!in(m.nearest, nearests)) fail(op, "nearest_mode", "unknown mode '" + m.nearest + "'");
}

Interp read_interp(const std::string& op, const Attributes& a) {
  Interp m;
  m.mode = a.get_string("mode", "nearest");
  m.coord = a.get_string("coordinate_transformation_mode", "half_pixel");
  m.nearest = a.get_string("nearest_mode", "round_prefer_floor");
  m.cubic_a = a.get_float("cubic_coeff_a", -0.75);
  m.exclude_outside = a.get_int("exclude_outside", 0) != 0;
  m.extrapolation = a.get_float("extrapolation_value", 0.0);
  if (a.get_int("antialias", 0) != 0) fail(op, "antialias", "antialias = 1 is not supported");
  check_interp(op, m);
  return m;
}

struct Tap {
  int64_t index;
  double weight;
};
struct Coord {
  bool extrapolate = false;  // tf_crop_and_resize outside the input
  std::vector<Tap> taps;
};

/// Taps of every output coordinate along one dim.
std::vector<Coord> dim_taps(const Interp& m, int64_t in, int64_t out, double scale, double rs,
                            double re) {
  std::vector<Coord> r(static_cast<size_t>(out));
  const bool identity = in == out && scale == 1.0 && m.coord != "tf_crop_and_resize";
  const double fin = static_cast<double>(in), fout = static_cast<double>(out);
  const double fsc = scale * fin;  // the unrounded resized length
  for (int64_t xo = 0; xo < out; ++xo) {
    Coord& c = r[static_cast<size_t>(xo)];
    if (identity) {
      c.taps.push_back({xo, 1.0});
      continue;
    }
    const double x = static_cast<double>(xo);
    double xi = 0;
    if (m.coord == "half_pixel") {
      xi = (x + 0.5) / scale - 0.5;
    } else if (m.coord == "half_pixel_symmetric") {
      const double adj = fout / (scale * fin);
      const double offset = fin / 2 * (1 - adj);
      xi = offset + (x + 0.5) / scale - 0.5;
    } else if (m.coord == "pytorch_half_pixel") {
      xi = out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    } else if (m.coord == "align_corners") {
      // ONNX reference: length_resized = scale * length_original (not rounded)
      xi = fsc == 1 ? 0.0 : x * (fin - 1) / (fsc - 1);
    } else if (m.coord == "asymmetric") {
      xi = x / scale;
    } else if (m.coord == "tf_half_pixel_for_nn") {
      xi = (x + 0.5) / scale;
    } else {  // tf_crop_and_resize
      xi = fsc != 1 ? rs * (fin - 1) + x * (re - rs) * (fin - 1) / (fsc - 1)
                    : 0.5 * (rs + re) * (fin - 1);
      if (xi < 0 || xi > fin - 1) {
        c.extrapolate = true;
        continue;
      }
    }
    auto clampi = [&](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
    if (m.mode == "nearest") {
      const double f = std::floor(xi);
      int64_t i;
      if (m.nearest == "floor")
        i = static_cast<int64_t>(f);
      else if (m.nearest == "ceil")
        i = static_cast<int64_t>(std::ceil(xi));
      else if (m.nearest == "simple")
        i = static_cast<int64_t>(scale < 1 ? std::ceil(xi) : f);
      else if (xi - f == 0.5)
        i = static_cast<int64_t>(m.nearest == "round_prefer_floor" ? f : f + 1);
      else
        i = static_cast<int64_t>(std::round(xi));
      c.taps.push_back({clampi(i), 1.0});
      continue;
    }
    const auto x0 = static_cast<int64_t>(std::floor(xi));
    const double t = xi - static_cast<double>(x0);
    std::vector<Tap> taps;
    if (m.mode == "linear") {
      taps = {{x0, 1 - t}, {x0 + 1, t}};
    } else {  // cubic (Keys, coefficient A)
      const double A = m.cubic_a;
      auto outer = [&](double s) { return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A; };  // 1<|s|<2
      auto inner = [&](double s) { return ((A + 2) * s - (A + 3)) * s * s + 1; };        // |s|<=1
      taps = {
          {x0 - 1, outer(t + 1)}, {x0, inner(t)}, {x0 + 1, inner(1 - t)}, {x0 + 2, outer(2 - t)}};
    }
    if (m.exclude_outside) {
      double sum = 0;
      for (auto& tp : taps) {
        if (tp.index < 0 || tp.index >= in) tp.weight = 0;
        sum += tp.weight;
      }
      for (auto& tp : taps) tp.weight = sum != 0 ? tp.weight / sum : 0;
    }
    for (auto& tp : taps) {
      if (tp.weight == 0) continue;
      c.taps.push_back({clampi(tp.index), tp.weight});
    }
    if (c.taps.empty()) c.taps.push_back({clampi(x0), 0.0});
  }
  return r;
}

void interpolate(const Tensor& X, Tensor& Y, const ResizeParams& p, const Interp& m) {
  const Shape& xs = X.shape();
  const size_t r = xs.size();
  if (Y.numel() == 0) return;
  if (X.numel() == 0) fail("Resize", "X", "cannot resize an empty tensor to a non-empty one");
  std::vector<std::vector<Coord>> taps(r);
  for (size_t d = 0; d < r; ++d)
    taps[d] = dim_taps(m, xs[d], p.out[d], p.scale[d], p.roi_start[d], p.roi_end[d]);
  const auto xst = nn::strides_of(xs);
  const std::vector<double> x = X.to_doubles();
  std::vector<int64_t> idx(r, 0);
  std::vector<const Coord*> cs(r);
  std::vector<size_t> k(r);
  for (int64_t o = 0; o < Y.numel(); ++o) {
    bool extra = false;
    for (size_t d = 0; d < r; ++d) {
      cs[d] = &taps[d][static_cast<size_t>(idx[d])];
      extra |= cs[d]->extrapolate;
    }
    double acc = 0;
    if (extra) {
      acc = m.extrapolation;
    } else {
      // sum over the cartesian product of the taps of every dim
      std::fill(k.begin(), k.end(), 0);
      while (true) {
        double w = 1;
        int64_t off = 0;
        for (size_t d = 0; d < r; ++d) {
          const Tap& t = cs[d]->taps[k[d]];
          w *= t.weight;
          off += t.index * xst[d];
        }
        acc += w * x[static_cast<size_t>(off)];
        size_t d = r;
        while (d-- > 0) {
          if (++k[d] < cs[d]->taps.size()) break;
          k[d] = 0;
        }
        if (d == static_cast<size_t>(-1)) break;
      }
    }
    Y.set(o, acc);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < p.out[d]) break;
      idx[d] = 0;
    }
  }
}

const Tensor* opt_input(KernelContext& ctx, int i) {
  return static_cast<int>(ctx.inputs.size()) > i && ctx.inputs[static_cast<size_t>(i)].defined()
             ? &ctx.inputs[static_cast<size_t>(i)]
             : nullptr;
}

const Tensor* opt_const(InferContext& ctx, int i, const std::string& field) {
  return ctx.has_input(i) ? &ctx.require_constant(i, field) : nullptr;
}

const OpRegistrar reg_resize{OpDef{
    "Resize",
    "resize",
    "resize by scales or sizes: nearest / linear / cubic, every ONNX coordinate transformation",
    1,
    4,
    1,
    1,
    {{"mode", AttrType::String, "nearest (default), linear, cubic"},
     {"coordinate_transformation_mode", AttrType::String,
      "half_pixel (default), half_pixel_symmetric, pytorch_half_pixel, align_corners, "
      "asymmetric, tf_half_pixel_for_nn, tf_crop_and_resize"},
     {"nearest_mode", AttrType::String,
      "round_prefer_floor (default), round_prefer_ceil, floor, ceil"},
     {"cubic_coeff_a", AttrType::Float, "default -0.75"},
     {"exclude_outside", AttrType::Int, "1: drop taps outside the input and renormalize"},
     {"extrapolation_value", AttrType::Float, "value outside the input for tf_crop_and_resize"},
     {"antialias", AttrType::Int, "must be 0"},
     {"axes", AttrType::Ints, "the axes that roi/scales/sizes refer to (default all)"},
     {"keep_aspect_ratio_policy", AttrType::String, "stretch (default), not_larger, not_smaller"}},
    [](InferContext& ctx) {
      read_interp("Resize", ctx.attrs());
      ResizeParams p =
          resize_params("Resize", ctx.shape(0), opt_const(ctx, 1, "roi"),
                        opt_const(ctx, 2, "scales"), opt_const(ctx, 3, "sizes"), ctx.attrs());
      ctx.set_output(0, ctx.dtype(0), p.out);
    },
    [](KernelContext& ctx) {
      nn::require_inputs(ctx, 1);
      const Interp m = read_interp("Resize", ctx.attrs());
      ResizeParams p = resize_params("Resize", ctx.inputs[0].shape(), opt_input(ctx, 1),
                                     opt_input(ctx, 2), opt_input(ctx, 3), ctx.attrs());
      nn::check_output_shape("Resize", ctx.outputs[0], p.out);
      interpolate(ctx.inputs[0], ctx.outputs[0], p, m);
    }}};

// ---- Upsample (opset 9: scales input; opset 7: scales attribute) ----------------------------

Interp upsample_interp(const Attributes& a) {
  Interp m;
  std::string mode = a.get_string("mode", "nearest");
  if (mode == "bilinear") mode = "linear";
  if (mode != "nearest" && mode != "linear")
    fail("Upsample", "mode", "expected nearest or linear, found '" + mode + "'");
  m.mode = mode;
  m.coord = "asymmetric";
  m.nearest = "simple";  // floor when upsampling (onnxruntime's legacy Upsample rule)
  return m;
}

ResizeParams upsample_params(const Shape& x, const Tensor* scales, const Attributes& a) {
  Tensor attr_scales;
  if (!scales || scales->numel() == 0) {
    if (!a.has("scales")) fail("Upsample", "scales", "the scales input is missing");
    auto v = a.get_floats("scales");
    attr_scales = Tensor(DType::f64, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) attr_scales.set(static_cast<int64_t>(i), v[i]);
    scales = &attr_scales;
  }
  Attributes none;
  return resize_params("Upsample", x, nullptr, scales, nullptr, none);
}

const OpRegistrar reg_upsample{OpDef{
    "Upsample",
    "resize",
    "legacy resize by scales (opset 9): nearest (floor) or linear, asymmetric coordinates",
    1,
    2,
    1,
    1,
    {{"mode", AttrType::String, "nearest (default) or linear"},
     {"scales", AttrType::Floats, "opset-7 form, used when the scales input is absent"}},
    [](InferContext& ctx) {
      upsample_interp(ctx.attrs());
      ResizeParams p = upsample_params(ctx.shape(0), opt_const(ctx, 1, "scales"), ctx.attrs());
      ctx.set_output(0, ctx.dtype(0), p.out);
    },
    [](KernelContext& ctx) {
      nn::require_inputs(ctx, 1);
      const Interp m = upsample_interp(ctx.attrs());
      ResizeParams p = upsample_params(ctx.inputs[0].shape(), opt_input(ctx, 1), ctx.attrs());
      nn::check_output_shape("Upsample", ctx.outputs[0], p.out);
      interpolate(ctx.inputs[0], ctx.outputs[0], p, m);
    }}};

}  // namespace
}  // namespace anvil
