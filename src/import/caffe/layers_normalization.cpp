// Caffe normalization layers: BatchNorm, Scale, Bias, LRN, MVN, Normalize (SSD).

#include "import/caffe/caffe_builder.h"

namespace anvil::caffe_import {

namespace {

void convert_batchnorm(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& bp = L.p->batch_norm_param();
  const Shape& x = L.shape[0];
  if (x.size() < 2)
    fail("bottom", "expects a blob of at least 2 axes (N, C, ...), found " + dims_str(x));
  if (bp.has_use_global_stats() && !bp.use_global_stats()) {
    // Caffe then normalizes with the statistics of the batch itself, per channel over N and
    // the spatial axes: (x - E[x]) / sqrt(E[(x - E[x])^2] + eps). The stored blobs are unused.
    std::vector<int64_t> axes = {0};
    for (int64_t i = 2; i < static_cast<int64_t>(x.size()); ++i) axes.push_back(i);
    cb.batch_normalize(L, L.in[0], axes, bp.eps(), false, false, true);
    return;
  }
  const int64_t C = x[1];
  cb.expect_blobs(L, 3);
  Tensor mean = cb.blob(L, 0, {C}, "mean (scaled)");
  Tensor var = cb.blob(L, 1, {C}, "variance (scaled)");
  Tensor factor = cb.blob(L, 2, {1}, "moving-average factor");
  // Caffe: scale_factor = blob2 == 0 ? 0 : 1 / blob2; mean = blob0 * s, var = blob1 * s (float).
  const float f = factor.data<float>()[0];
  const float sf = f == 0.0f ? 0.0f : 1.0f / f;
  for (int64_t c = 0; c < C; ++c) {
    mean.data<float>()[c] *= sf;
    var.data<float>()[c] *= sf;
  }
  Tensor ones(DType::f32, {C}), zeros(DType::f32, {C});
  for (int64_t c = 0; c < C; ++c) ones.data<float>()[c] = 1.0f;
  Attributes a;
  a.set("epsilon", static_cast<double>(bp.eps()));
  cb.emit_top(L, "BatchNormalization",
              {L.in[0], cb.constant(L, "scale", ones), cb.constant(L, "bias", zeros),
               cb.constant(L, "mean", mean), cb.constant(L, "var", var)},
              a);
}

void convert_scale_bias(CaffeBuilder& cb, CaffeLayer& L, bool is_scale) {
  cb.expect_bottoms(L, 1, 2);
  cb.expect_tops(L, 1, 1);
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  const int64_t axis_param = is_scale ? L.p->scale_param().axis() : L.p->bias_param().axis();
  const int64_t num_axes = is_scale ? L.p->scale_param().num_axes() : L.p->bias_param().num_axes();
  const bool bias_term = is_scale && L.p->scale_param().bias_term();
  const std::string role = is_scale ? "scale" : "bias";
  int operand = -1;
  Shape os;
  int axis = 0;
  int next_blob = 0;
  if (L.in.size() == 2) {
    os = L.shape[1];
    axis = os.empty() ? 0 : cb.canonical_axis(axis_param, rank, "axis");
    if (axis + os.size() > x.size())
      fail("bottom", "the " + role + " blob " + dims_str(os) + " does not fit the input " +
                         dims_str(x) + " from axis " + std::to_string(axis));
    for (size_t i = 0; i < os.size(); ++i)
      if (os[i] != x[static_cast<size_t>(axis) + i])
        fail("bottom", "the " + role + " blob " + dims_str(os) + " does not match the input " +
                           dims_str(x) + " from axis " + std::to_string(axis));
    operand = L.in[1];
  } else {
    if (num_axes < -1) fail("num_axes", "num_axes must be >= -1");
    axis = cb.canonical_axis(axis_param, rank == 0 ? 1 : rank, "axis");
    const int64_t end = num_axes == -1 ? rank : axis + num_axes;
    if (end > rank)
      fail("num_axes", "axis " + std::to_string(axis) + " + num_axes " + std::to_string(num_axes) +
                           " exceeds the input's " + std::to_string(rank) + " axes");
    os.assign(x.begin() + axis, x.begin() + end);
    if (os.empty()) axis = 0;
    cb.expect_blobs(L, bias_term ? 2 : 1);
    operand = cb.constant(L, role, cb.blob(L, 0, os, role));
    next_blob = 1;
  }
  if (L.in.size() == 2) cb.expect_blobs(L, bias_term ? 1 : 0);
  int op = cb.broadcast_operand(L, operand, os, axis, rank, role);
  if (!bias_term) {
    cb.emit_top(L, is_scale ? "Mul" : "Add", {L.in[0], op}, {});
    return;
  }
  int y = cb.emit(L, "Mul", {L.in[0], op}, {}, "mul");
  int bias = cb.constant(L, "bias", cb.blob(L, next_blob, os, "bias"));
  cb.emit_top(L, "Add", {y, cb.broadcast_operand(L, bias, os, axis, rank, "bias")}, {});
}

void convert_lrn(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& lp = L.p->lrn_param();
  const Shape& x = L.shape[0];
  if (x.size() != 4) fail("bottom", "LRN expects a 4-axis blob, found " + dims_str(x));
  const int64_t size = lp.local_size();
  if (size % 2 != 1)
    fail("local_size", "LRN supports only odd local_size, found " + std::to_string(size));
  if (lp.norm_region() == pb::LRNParameter::ACROSS_CHANNELS) {
    Attributes a;
    a.set("size", size);
    a.set("alpha", static_cast<double>(lp.alpha()));
    a.set("beta", static_cast<double>(lp.beta()));
    a.set("bias", static_cast<double>(lp.k()));
    cb.emit_top(L, "LRN", {L.in[0]}, a);
    return;
  }
  // WITHIN_CHANNEL, as Caffe builds it: y = x * (1 + alpha * avgpool_{size x size}(x^2))^-beta
  // where the pool pads (size-1)/2 and divides by size^2 (padding counts); k is not used.
  const int64_t pad = (size - 1) / 2;
  int sq = cb.emit(L, "Mul", {L.in[0], L.in[0]}, {}, "square");
  Attributes pa;
  pa.set("kernel_shape", std::vector<int64_t>{size, size});
  pa.set("strides", std::vector<int64_t>{1, 1});
  pa.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
  pa.set("ceil_mode", int64_t{1});
  pa.set("count_include_pad", int64_t{1});
  int avg = cb.emit(L, "AveragePool", {sq}, pa, "pool");
  int sc = cb.emit(L, "Mul", {avg, cb.scalar(L, "alpha", lp.alpha())}, {}, "alpha");
  int sh = cb.emit(L, "Add", {sc, cb.scalar(L, "one", 1.0)}, {}, "shift");
  int pw = cb.emit(L, "Pow", {sh, cb.scalar(L, "neg_beta", -static_cast<double>(lp.beta()))}, {},
                   "power");
  cb.emit_top(L, "Mul", {L.in[0], pw}, {});
}

// MVN: per item (and per channel unless across_channels), x - mean, divided by
// (sqrt(var) + eps) when normalize_variance (Caffe adds eps after the square root).
void convert_mvn(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& mp = L.p->mvn_param();
  const int rank = static_cast<int>(L.shape[0].size());
  if (rank < 2)
    fail("bottom", "MVN expects a blob of at least 2 axes, found " + dims_str(L.shape[0]));
  std::vector<int64_t> axes;
  for (int i = mp.across_channels() ? 1 : 2; i < rank; ++i) axes.push_back(i);
  if (axes.empty())
    fail("bottom", "MVN needs axes to normalize over, the blob is " + dims_str(L.shape[0]));
  cb.batch_normalize(L, L.in[0], axes, mp.eps(), true, !mp.normalize_variance(), true);
}

// SSD Normalize: x / sqrt(sum x^2 + eps) over (C, H, W) per item (across_spatial) or over C
// per position, times a learned scale (one value, or one per channel).
void convert_normalize(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& np = L.p->norm_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  if (rank < 2) fail("bottom", "Normalize expects a blob of at least 2 axes, found " + dims_str(x));
  std::vector<int64_t> axes;
  if (np.across_spatial())
    for (int i = 1; i < rank; ++i) axes.push_back(i);
  else
    axes.push_back(1);
  cb.expect_blobs(L, 1);
  int sq = cb.emit(L, "Mul", {L.in[0], L.in[0]}, {}, "square");
  int sum = cb.reduce(L, "ReduceSum", sq, axes, true, "sum");
  int se = cb.emit(L, "Add", {sum, cb.scalar(L, "eps", np.eps())}, {}, "sum_eps");
  int norm = cb.emit(L, "Sqrt", {se}, {}, "norm");
  int y = cb.emit(L, "Div", {L.in[0], norm}, {}, "normalized");
  int scale;
  if (np.channel_shared()) {
    // SSD stores the shared scale as a 0-axis blob; accept a 1-element (1,) blob too.
    const auto& b0 = L.w->blobs(0);
    const bool one_axis = b0.has_shape() && b0.shape().dim_size() == 1;
    scale =
        cb.constant(L, "scale", cb.blob(L, 0, one_axis ? Shape{1} : Shape{}, "scale").reshaped({}));
  } else {
    Shape s = {x[1]};
    s.insert(s.end(), x.size() - 2, 1);
    scale = cb.constant(L, "scale", cb.blob(L, 0, {x[1]}, "scale").reshaped(s));
  }
  cb.emit_top(L, "Mul", {y, scale}, {});
}

void convert_scale(CaffeBuilder& cb, CaffeLayer& L) { convert_scale_bias(cb, L, true); }
void convert_bias(CaffeBuilder& cb, CaffeLayer& L) { convert_scale_bias(cb, L, false); }

const ConverterRegistrar registrar({
    {"BatchNorm", convert_batchnorm},
    {"Scale", convert_scale},
    {"Bias", convert_bias},
    {"LRN", convert_lrn},
    {"MVN", convert_mvn},
    {"Normalize", convert_normalize},
});

}  // namespace

}  // namespace anvil::caffe_import
