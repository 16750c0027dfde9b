// cuda executor handlers: pooling, Softmax/LogSoftmax, LRN, BatchNormalization, the
// reductions and Resize/Upsample.
// Registered in the handler table of executor.cpp; see docs/cuda_backend.md.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/cuda/executor.h"
#include "ops/attrs.h"
#include "ops/nn_util.h"

namespace anvil::cuda::exec {

bool CudaExecutable::do_pool(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.empty()) return false;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && (!uses_[static_cast<size_t>(n.outputs[i])].empty() ||
                              kept_[static_cast<size_t>(n.outputs[i])]))
      return false;  // MaxPool's Indices
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_) return false;
  const size_t rank = val(x).shape.size();
  if ((rank != 3 && rank != 4) || val(y).shape.size() != rank) return false;
  const size_t nsp = rank - 2;
  // 1-D pooling is the 2-D one of (N, C, 1, W) (the same channels-last bytes).
  Shape xs = val(x).shape, ys = val(y).shape;
  if (nsp == 1) {
    xs.insert(xs.begin() + 2, 1);
    ys.insert(ys.begin() + 2, 1);
  }
  const bool global = n.op == "GlobalAveragePool" || n.op == "GlobalMaxPool";
  const bool is_max = n.op == "MaxPool" || n.op == "GlobalMaxPool";
  std::vector<int64_t> k(nsp, 1), st(nsp, 1), d(nsp, 1), pads(2 * nsp, 0);  // ONNX pads order
  bool include_pad = false;
  if (!global) {
    // The attributes as every backend reads them (ops/attrs.h); a node they reject runs on the
    // reference kernel, which reports the error.
    PoolAttrs pa;
    try {
      pa = pool_attrs(g_, n);
    } catch (const Error&) {
      return false;
    }
    if (pa.storage_order != 0) return false;
    for (size_t i = 0; i < nsp; ++i) {
      const size_t u = static_cast<size_t>(pa.off()) + i;
      k[i] = pa.k[u];
      st[i] = pa.s[u];
      d[i] = pa.d[u];
      pads[i] = pa.pb[u];
      pads[i + nsp] = pa.pe[u];
    }
    include_pad = pa.include_pad;
  }
  if (nsp == 1) {
    k.insert(k.begin(), 1);
    st.insert(st.begin(), 1);
    d.insert(d.begin(), 1);
    pads = {0, pads[0], 0, pads[1]};
  }
  const int xslot = as_layout(x, Layout::Nhwc);
  const int dst = new_slot(ty_, val(y).shape, Layout::Nhwc);
  const DType dt = ty_;
  if (global) {
    const int nn_ = static_cast<int>(xs[0]), c = static_cast<int>(xs[1]);
    const int64_t hw = xs[2] * xs[3];
    push(n.name, n.op, {xslot, dst},
         [this, is_max, nn_, hw, c, dt, xslot, dst](const Context& cx, cudaStream_t s) {
           global_pool_nhwc(is_max, nn_, hw, c, dt, ptr(cx, xslot), ptr(cx, dst), s);
         });
    set_out(y, dst);
    return true;
  }
  Pool2d p;
  p.n = static_cast<int>(xs[0]);
  p.c = static_cast<int>(xs[1]);
  p.h = static_cast<int>(xs[2]);
  p.w = static_cast<int>(xs[3]);
  p.oh = static_cast<int>(ys[2]);
  p.ow = static_cast<int>(ys[3]);
  p.kh = static_cast<int>(k[0]);
  p.kw = static_cast<int>(k[1]);
  p.sh = static_cast<int>(st[0]);
  p.sw = static_cast<int>(st[1]);
  p.dh = static_cast<int>(d[0]);
  p.dw = static_cast<int>(d[1]);
  p.pad_top = static_cast<int>(pads[0]);
  p.pad_left = static_cast<int>(pads[1]);
  p.pad_bottom = static_cast<int>(pads[2]);
  p.pad_right = static_cast<int>(pads[3]);
  p.max = is_max;
  p.count_include_pad = include_pad;
  push(n.name, n.op, {xslot, dst}, [this, p, dt, xslot, dst](const Context& c, cudaStream_t s) {
    pool2d_nhwc(p, dt, ptr(c, xslot), ptr(c, dst), s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_softmax(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_) return false;
  const Shape& xs = val(x).shape;
  const int r = static_cast<int>(xs.size());
  if (r < 1) return false;
  int64_t axis = n.attrs.get_int("axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  int src = slot_of(x);
  int64_t outer = 1, len = xs[static_cast<size_t>(axis)], inner = 1;
  Layout lo = Layout::Plain;
  if (slot(src).layout == Layout::Nhwc && axis == 1) {
    outer = shape_numel(xs) / xs[1];  // channels last: rows of C
    lo = Layout::Nhwc;
  } else {
    src = plain_of(x);
    for (int64_t i = 0; i < axis; ++i) outer *= xs[static_cast<size_t>(i)];
    for (int64_t i = axis + 1; i < r; ++i) inner *= xs[static_cast<size_t>(i)];
  }
  const int dst = new_slot(ty_, val(y).shape, lo);
  const bool lg = n.op == "LogSoftmax";
  const DType dt = ty_;
  push(n.name, n.op, {src, dst},
       [this, lg, dt, src, dst, outer, len, inner](const Context& c, cudaStream_t s) {
         softmax(lg, dt, ptr(c, src), ptr(c, dst), outer, len, inner, s);
       });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_lrn(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_ || val(x).shape.size() != 4) return false;
  const int64_t size = n.attrs.get_int("size");
  if (size < 1) return false;
  const float alpha = to_f(n.attrs.get_float("alpha", 1e-4));
  const float beta = to_f(n.attrs.get_float("beta", 0.75));
  const float bias = to_f(n.attrs.get_float("bias", 1.0));
  const Shape& xs = val(x).shape;
  const int src = as_layout(x, Layout::Nhwc);
  const int dst = new_slot(ty_, xs, Layout::Nhwc);
  const int64_t pixels = xs[0] * xs[2] * xs[3];
  const int c = static_cast<int>(xs[1]), sz = static_cast<int>(size);
  const DType dt = ty_;
  push(n.name, n.op, {src, dst}, [=, this](const Context& cx, cudaStream_t s) {
    lrn_nhwc(pixels, c, sz, alpha, beta, bias, dt, ptr(cx, src), ptr(cx, dst), s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_batchnorm(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 5 || n.outputs.empty()) return false;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && (!uses_[static_cast<size_t>(n.outputs[i])].empty() ||
                              kept_[static_cast<size_t>(n.outputs[i])]))
      return false;
  if (n.attrs.get_int("training_mode", 0) != 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_ || val(x).shape.size() < 2) return false;
  const Shape& xs = val(x).shape;
  const int64_t C = xs[1];
  for (int i = 1; i < 5; ++i) {
    const int v = n.inputs[static_cast<size_t>(i)];
    if (v < 0 || !val(v).is_constant() || val(v).constant.numel() != C) return false;
  }
  const double eps = n.attrs.get_float("epsilon", 1e-5);
  Tensor scale(DType::f32, {C}), shift(DType::f32, {C});
  auto cv = [&](int i, int64_t c) { return val(n.inputs[static_cast<size_t>(i)]).constant.get(c); };
  for (int64_t c = 0; c < C; ++c) {
    const double sc = cv(1, c) / std::sqrt(cv(4, c) + eps);
    scale.data<float>()[c] = static_cast<float>(sc);
    shift.data<float>()[c] = static_cast<float>(cv(2, c) - cv(3, c) * sc);
  }
  const int src = slot_of(x);
  int64_t outer, inner = 1;
  if (slot(src).layout == Layout::Nhwc) {
    outer = shape_numel(xs) / C;  // channels last: rows of C
  } else {
    outer = xs[0];
    for (size_t i = 2; i < xs.size(); ++i) inner *= xs[i];
  }
  std::string opname = n.op;
  int out_v = y, an = -1;
  UnaryFn post;
  auto f = following_act(y, out_v, an);
  if (f) {
    post = *f;
    opname += "+" + f->name;
  }
  const int ssl = device_slot(scale), hsl = device_slot(shift);
  const int dst = new_slot(ty_, xs, slot(src).layout);
  const DType dt = ty_;
  push(n.name, opname, {src, ssl, hsl, dst}, [=, this](const Context& c, cudaStream_t s) {
    channel_affine(dt, ptr(c, src), ptr(c, dst), static_cast<const float*>(ptr(c, ssl)),
                   static_cast<const float*>(ptr(c, hsl)), outer, C, inner, post.op, post.alpha,
                   post.beta, s);
  });
  set_out(out_v, dst);
  if (an >= 0) consumed_[static_cast<size_t>(an)] = true;
  return true;
}

bool CudaExecutable::do_reduce(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  static const std::map<std::string, int> kinds = {{"ReduceSum", 0},       {"ReduceMean", 1},
                                                   {"ReduceMax", 2},       {"ReduceMin", 3},
                                                   {"ReduceSumSquare", 4}, {"ReduceLogSumExp", 7}};
  auto it = kinds.find(n.op);
  if (it == kinds.end() || n.inputs.empty() || n.outputs.size() != 1 || n.inputs[0] < 0)
    return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (val(x).dtype != ty_) return false;
  const Shape& xs = val(x).shape;
  const int r = static_cast<int>(xs.size());
  std::vector<int64_t> axes;
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    if (!val(n.inputs[1]).is_constant()) return false;
    axes = val(n.inputs[1]).constant.to_int64s();
  } else if (n.attrs.has("axes")) {
    axes = n.attrs.get_ints("axes");
  }
  if (axes.empty()) {
    if (n.attrs.get_int("noop_with_empty_axes", 0) != 0) return false;
    for (int i = 0; i < r; ++i) axes.push_back(i);
  }
  std::vector<bool> red(static_cast<size_t>(r), false);
  for (int64_t a : axes) {
    if (a < 0) a += r;
    if (a < 0 || a >= r) return false;
    red[static_cast<size_t>(a)] = true;
  }
  int src = slot_of(x);
  // Channels last with the spatial dims reduced: physical [N, H*W, C].
  bool nhwc_spatial = slot(src).layout == Layout::Nhwc && !red[0] && !red[1];
  for (int i = 2; i < r; ++i) nhwc_spatial = nhwc_spatial && red[static_cast<size_t>(i)];
  if (!nhwc_spatial) src = plain_of(x);
  const std::vector<int> order = physical_order(slot(src));
  int first = -1, last = -1;
  for (int i = 0; i < r; ++i)
    if (red[static_cast<size_t>(order[static_cast<size_t>(i)])] &&
        xs[static_cast<size_t>(order[static_cast<size_t>(i)])] != 1) {
      if (first < 0) first = i;
      last = i;
    }
  int64_t outer = 1, len = 1, inner = 1;
  for (int i = 0; i < r; ++i) {
    const int64_t d = xs[static_cast<size_t>(order[static_cast<size_t>(i)])];
    const bool rd = red[static_cast<size_t>(order[static_cast<size_t>(i)])];
    if (first < 0) {
      outer *= d;
      continue;
    }
    if (i < first)
      outer *= d;
    else if (i > last)
      inner *= d;
    else if (!rd && d != 1)
      return false;  // reduced axes not contiguous
    else
      len *= d;
  }
  if (len == 0) return false;
  const int kind = it->second;
  const int dst = new_slot(ty_, val(y).shape, Layout::Plain);
  const DType dt = ty_;
  push(n.name, n.op, {src, dst}, [=, this](const Context& c, cudaStream_t s) {
    reduce(kind, dt, ptr(c, src), ptr(c, dst), outer, len, inner, s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_resize(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (val(x).dtype != ty_) return false;
  const Shape& xs = val(x).shape;
  const Shape& ys = val(y).shape;
  if (xs.size() != 4 || ys.size() != 4 || xs[0] != ys[0] || xs[1] != ys[1]) return false;
  const Attributes& at = n.attrs;
  std::string mode, coord, nearest;
  std::vector<double> scale(4, 1.0);
  auto input_doubles = [&](size_t i) -> std::optional<std::vector<double>> {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return std::vector<double>{};
    if (!val(n.inputs[i]).is_constant()) return std::nullopt;
    return val(n.inputs[i]).constant.to_doubles();
  };
  if (n.op == "Upsample") {
    mode = at.get_string("mode", "nearest");
    if (mode == "bilinear") mode = "linear";
    coord = "asymmetric";
    nearest = "simple";
    auto sc = input_doubles(1);
    if (!sc) return false;
    if (sc->empty() && at.has("scales")) *sc = at.get_floats("scales");
    if (sc->size() != 4) return false;
    scale = *sc;
  } else {
    mode = at.get_string("mode", "nearest");
    coord = at.get_string("coordinate_transformation_mode", "half_pixel");
    nearest = at.get_string("nearest_mode", "round_prefer_floor");
    if (at.has("axes") || at.get_int("antialias", 0) != 0 ||
        at.get_string("keep_aspect_ratio_policy", "stretch") != "stretch")
      return false;
    auto sc = input_doubles(2), sz = input_doubles(3);
    if (!sc || !sz) return false;
    if (!sc->empty()) {
      if (sc->size() != 4) return false;
      scale = *sc;
    } else if (sz->size() == 4) {
      for (size_t d = 0; d < 4; ++d) scale[d] = (*sz)[d] / static_cast<double>(xs[d]);
    } else {
      return false;
    }
  }
  if (mode != "nearest" && mode != "linear") return false;
  if (scale[0] != 1.0 || scale[1] != 1.0) return false;
  int nr;
  if (nearest == "floor")
    nr = 0;
  else if (nearest == "round_prefer_floor")
    nr = 1;
  else if (nearest == "round_prefer_ceil")
    nr = 2;
  else if (nearest == "ceil")
    nr = 3;
  else if (nearest == "simple")
    nr = -1;  // per axis below
  else
    return false;
  Resize2d p;
  p.n = static_cast<int>(xs[0]);
  p.c = static_cast<int>(xs[1]);
  p.h = static_cast<int>(xs[2]);
  p.w = static_cast<int>(xs[3]);
  p.oh = static_cast<int>(ys[2]);
  p.ow = static_cast<int>(ys[3]);
  p.mode = mode == "linear" ? 1 : 0;
  // in = out * a + b per axis, ONNX's coordinate transformation with the scale factor s.
  for (int ax = 0; ax < 2; ++ax) {
    const double s = scale[static_cast<size_t>(2 + ax)];
    const double in = static_cast<double>(xs[static_cast<size_t>(2 + ax)]);
    const double out = static_cast<double>(ys[static_cast<size_t>(2 + ax)]);
    if (!(s > 0) || !std::isfinite(s)) return false;
    double a = 1 / s, b = 0;
    if (in == out && s == 1.0) {
      a = 1, b = 0;
    } else if (coord == "half_pixel") {
      b = 0.5 / s - 0.5;
    } else if (coord == "pytorch_half_pixel") {
      if (out > 1)
        b = 0.5 / s - 0.5;
      else
        a = 0, b = 0;
    } else if (coord == "asymmetric") {
      b = 0;
    } else if (coord == "tf_half_pixel_for_nn") {
      b = 0.5 / s;
    } else if (coord == "align_corners") {
      const double fsc = s * in;
      if (fsc == 1)
        a = 0, b = 0;
      else
        a = (in - 1) / (fsc - 1), b = 0;
    } else if (coord == "half_pixel_symmetric") {
      const double adj = out / (s * in);
      b = in / 2 * (1 - adj) + 0.5 / s - 0.5;
    } else {
      return false;  // tf_crop_and_resize
    }
    (ax == 0 ? p.scale_h : p.scale_w) = static_cast<float>(a);
    (ax == 0 ? p.offset_h : p.offset_w) = static_cast<float>(b);
    if (p.mode == 0 && nr < 0) {
      // "simple" (Upsample): floor when upscaling, ceil when downscaling; one mode for both
      // axes, so both must agree.
      const int want = s < 1 ? 3 : 0;
      if (ax == 1 && p.nearest_round != want) return false;
      p.nearest_round = want;
    }
  }
  if (nr >= 0) p.nearest_round = nr;
  const int src = as_layout(x, Layout::Nhwc);
  const int dst = new_slot(ty_, ys, Layout::Nhwc);
  const DType dt = ty_;
  push(n.name, n.op, {src, dst}, [this, p, dt, src, dst](const Context& c, cudaStream_t s) {
    resize_nhwc(p, dt, ptr(c, src), ptr(c, dst), s);
  });
  set_out(y, dst);
  return true;
}

}  // namespace anvil::cuda::exec
