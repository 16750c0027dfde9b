// Caffe convolution, pooling and fully connected layers: Convolution, Deconvolution, Pooling,
// InnerProduct, Embed.
#include <algorithm>

#include "import/caffe/caffe_builder.h"
#include "import/onnx/onnx_tensor.h"

namespace anvil::caffe_import {

namespace {

// Convolution / Deconvolution (BaseConvolutionLayer parameters).
void convert_conv(CaffeBuilder& cb, CaffeLayer& L, bool deconv) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& cp = L.p->convolution_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  int axis = cb.canonical_axis(cp.axis(), rank, "axis");
  if (axis != 1)
    fail("axis",
         "only channel axis 1 (N, C, spatial...) is supported, found " + std::to_string(cp.axis()));
  const int nsp = rank - 2;
  if (nsp < 1 || nsp > 3)
    fail("bottom", "expects an input with 1 to 3 spatial axes, found shape " + dims_str(x));
  auto per_axis = [&](const google::protobuf::RepeatedField<uint32_t>& v, bool has_hw, uint32_t h,
                      uint32_t w, int64_t dflt, const std::string& field) {
    std::vector<int64_t> r;
    if (has_hw) {
      if (nsp != 2) fail(field + "_h", field + "_h/_w are for 2-D convolution only");
      if (v.size() != 0) fail(field, "give either " + field + " or " + field + "_h/_w, not both");
      return std::vector<int64_t>{h, w};
    }
    if (v.size() == 0) return std::vector<int64_t>(static_cast<size_t>(nsp), dflt);
    if (v.size() != 1 && v.size() != nsp)
      fail(field,
           "expects 1 or " + std::to_string(nsp) + " values, found " + std::to_string(v.size()));
    for (int i = 0; i < nsp; ++i) r.push_back(v[v.size() == 1 ? 0 : i]);
    return r;
  };
  if (cp.has_kernel_h() != cp.has_kernel_w())
    fail("kernel_h", "kernel_h and kernel_w must be given together");
  if (!cp.has_kernel_h() && cp.kernel_size_size() == 0)
    fail("kernel_size", "kernel size is missing");
  auto k =
      per_axis(cp.kernel_size(), cp.has_kernel_h(), cp.kernel_h(), cp.kernel_w(), 1, "kernel_size");
  auto s = per_axis(cp.stride(), cp.has_stride_h() || cp.has_stride_w(),
                    cp.has_stride_h() ? cp.stride_h() : 1, cp.has_stride_w() ? cp.stride_w() : 1, 1,
                    "stride");
  auto p = per_axis(cp.pad(), cp.has_pad_h() || cp.has_pad_w(), cp.pad_h(), cp.pad_w(), 0, "pad");
  std::vector<int64_t> d;
  if (cp.dilation_size() == 0)
    d.assign(static_cast<size_t>(nsp), 1);
  else if (cp.dilation_size() == 1 || cp.dilation_size() == nsp)
    for (int i = 0; i < nsp; ++i) d.push_back(cp.dilation(cp.dilation_size() == 1 ? 0 : i));
  else
    fail("dilation", "expects 1 or " + std::to_string(nsp) + " values");
  for (int i = 0; i < nsp; ++i) {
    if (k[static_cast<size_t>(i)] < 1) fail("kernel_size", "kernel dimensions must be > 0");
    if (s[static_cast<size_t>(i)] < 1) fail("stride", "stride dimensions must be > 0");
    if (d[static_cast<size_t>(i)] < 1) fail("dilation", "dilation dimensions must be > 0");
  }
  const int64_t group = cp.group();
  const int64_t num_output = cp.num_output();
  const int64_t C = x[1];
  if (num_output < 1) fail("num_output", "num_output must be > 0");
  if (group < 1) fail("group", "group must be > 0");
  if (C % group != 0)
    fail("group", "input channels " + std::to_string(C) + " are not a multiple of group " +
                      std::to_string(group));
  if (num_output % group != 0)
    fail("group", "num_output " + std::to_string(num_output) + " is not a multiple of group " +
                      std::to_string(group));
  Shape wshape = deconv ? Shape{C, num_output / group} : Shape{num_output, C / group};
  wshape.insert(wshape.end(), k.begin(), k.end());
  cb.expect_blobs(L, cp.bias_term() ? 2 : 1);
  std::vector<int> ins = {L.in[0], cb.constant(L, "weights", cb.blob(L, 0, wshape, "weights"))};
  if (cp.bias_term()) ins.push_back(cb.constant(L, "bias", cb.blob(L, 1, {num_output}, "bias")));
  std::vector<int64_t> pads = p;
  pads.insert(pads.end(), p.begin(), p.end());
  Attributes a;
  a.set("kernel_shape", k);
  a.set("strides", s);
  a.set("pads", pads);
  a.set("dilations", d);
  a.set("group", group);
  cb.emit_top(L, deconv ? "ConvTranspose" : "Conv", ins, a);
}

void convert_pool(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 2);
  if (L.p->top_size() == 2) fail("top", "the second (mask) top of MAX pooling is not supported");
  const auto& pp = L.p->pooling_param();
  const Shape& x = L.shape[0];
  if (x.size() != 4)
    fail("bottom", "Caffe pooling expects a 4-axis blob, found shape " + dims_str(x));
  if (pp.pool() == pb::PoolingParameter::STOCHASTIC)
    fail("pool", "STOCHASTIC pooling is not supported");
  const bool max = pp.pool() == pb::PoolingParameter::MAX;
  if (pp.global_pooling()) {
    if (pp.has_kernel_size() || pp.has_kernel_h() || pp.has_kernel_w())
      fail("global_pooling", "with global_pooling the kernel size cannot be given");
    if (pp.pad() != 0 || pp.pad_h() != 0 || pp.pad_w() != 0)
      fail("pad", "with global_pooling the padding must be 0");
    if ((pp.has_stride() && pp.stride() != 1) || (pp.has_stride_h() && pp.stride_h() != 1) ||
        (pp.has_stride_w() && pp.stride_w() != 1))
      fail("stride", "with global_pooling the stride must be 1");
    cb.emit_top(L, max ? "GlobalMaxPool" : "GlobalAveragePool", {L.in[0]}, {});
    return;
  }
  if (pp.has_kernel_size() == (pp.has_kernel_h() || pp.has_kernel_w()))
    fail("kernel_size", "give either kernel_size or kernel_h and kernel_w");
  if (pp.has_kernel_h() != pp.has_kernel_w())
    fail("kernel_h", "kernel_h and kernel_w must be given together");
  const int64_t kh = pp.has_kernel_size() ? pp.kernel_size() : pp.kernel_h();
  const int64_t kw = pp.has_kernel_size() ? pp.kernel_size() : pp.kernel_w();
  if (pp.has_pad() && (pp.has_pad_h() || pp.has_pad_w()))
    fail("pad", "give either pad or pad_h and pad_w");
  const int64_t ph = pp.has_pad_h() ? pp.pad_h() : pp.pad();
  const int64_t pw = pp.has_pad_w() ? pp.pad_w() : pp.pad();
  if (pp.has_stride() && (pp.has_stride_h() || pp.has_stride_w()))
    fail("stride", "give either stride or stride_h and stride_w");
  const int64_t sh = pp.has_stride_h() ? pp.stride_h() : pp.stride();
  const int64_t sw = pp.has_stride_w() ? pp.stride_w() : pp.stride();
  if (kh < 1 || kw < 1) fail("kernel_size", "kernel dimensions must be > 0");
  if (sh < 1 || sw < 1) fail("stride", "stride dimensions must be > 0");
  if (ph >= kh || pw >= kw) fail("pad", "padding must be smaller than the kernel");
  const bool ceil = pp.round_mode() == pb::PoolingParameter::CEIL;
  // Caffe's output size, and the canonical ceil/floor rule's, must agree.
  auto caffe_out = [&](int64_t in, int64_t k, int64_t p, int64_t s) {
    const int64_t span = in + 2 * p - k;
    int64_t o = ceil ? (span >= 0 ? (span + s - 1) / s : -((-span) / s)) + 1
                     : (span >= 0 ? span / s : -((-span + s - 1) / s)) + 1;
    if (p > 0 && (o - 1) * s >= in + p) --o;
    return o;
  };
  auto canonical_out = [&](int64_t in, int64_t k, int64_t p, int64_t s) {
    const int64_t span = in + 2 * p - k;
    if (!ceil) return span / s + 1;
    int64_t o = (span + s - 1) / s + 1;
    if ((o - 1) * s >= in + p) --o;
    return o;
  };
  const int64_t H = x[2], W = x[3];
  if (H + 2 * ph < kh || W + 2 * pw < kw)
    fail("kernel_size", "the kernel " + dims_str({kh, kw}) + " is larger than the padded input " +
                            dims_str({H + 2 * ph, W + 2 * pw}));
  if (caffe_out(H, kh, ph, sh) != canonical_out(H, kh, ph, sh) ||
      caffe_out(W, kw, pw, sw) != canonical_out(W, kw, pw, sw))
    fail("stride",
         "Caffe would make a pooling window that starts past the input (stride "
         "larger than kernel without padding); not supported");
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kh, kw});
  a.set("strides", std::vector<int64_t>{sh, sw});
  a.set("pads", std::vector<int64_t>{ph, pw, ph, pw});
  a.set("ceil_mode", int64_t{ceil ? 1 : 0});
  if (!max) a.set("count_include_pad", int64_t{1});
  cb.emit_top(L, max ? "MaxPool" : "AveragePool", {L.in[0]}, a);
}

void convert_inner_product(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& ip = L.p->inner_product_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  const int axis = cb.canonical_axis(ip.axis(), rank, "axis");
  const int64_t N = ip.num_output();
  if (N < 1) fail("num_output", "num_output must be > 0");
  const int64_t K = numel_of(Shape(x.begin() + axis, x.end()));
  cb.expect_blobs(L, ip.bias_term() ? 2 : 1);
  // Caffe's weights are (N, K), or (K, N) with transpose: true.
  Tensor w = cb.blob(L, 0, ip.transpose() ? Shape{K, N} : Shape{N, K}, "weights");
  int wv = cb.constant(L, "weights", w);
  int bv = ip.bias_term() ? cb.constant(L, "bias", cb.blob(L, 1, {N}, "bias")) : -1;
  // Flatten from `axis` (C,H,W order: NCHW is Caffe's own layout), then Gemm.
  int flat = L.in[0];
  if (!(rank == 2 && axis == 1)) {
    Attributes fa;
    fa.set("axis", static_cast<int64_t>(axis));
    flat = cb.emit(L, "Flatten", {L.in[0]}, fa, "flatten");
  }
  Attributes ga;
  ga.set("transB", int64_t{ip.transpose() ? 0 : 1});
  std::vector<int> gin = {flat, wv};
  if (bv >= 0) gin.push_back(bv);
  if (axis == 1) {
    cb.emit_top(L, "Gemm", gin, ga);
    return;
  }
  int y = cb.emit(L, "Gemm", gin, ga, "gemm");
  std::vector<int64_t> out(x.begin(), x.begin() + axis);  // x[:axis] + [N]
  if (!out.empty()) out[0] = -1;                          // the batch may change
  out.push_back(N);
  cb.emit_top(L, "Reshape", {y, cb.i64s(L, "shape", out)}, {});
}

// Embed: rows of the (input_dim, num_output) table picked by the (float) indices, plus bias.
void convert_embed(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& ep = L.p->embed_param();
  const int64_t K = ep.input_dim(), N = ep.num_output();
  if (K < 1 || N < 1) fail("num_output", "input_dim and num_output must be > 0");
  cb.expect_blobs(L, ep.bias_term() ? 2 : 1);
  int table = cb.constant(L, "weights", cb.blob(L, 0, {K, N}, "weights"));
  Attributes ca;
  ca.set(
      "to",
      int64_t{onnx_import::onnx_from_dtype(DType::i64)});  // Caffe truncates the float index to int
  int idx = cb.emit(L, "Cast", {L.in[0]}, ca, "index");
  Attributes ga;
  ga.set("axis", int64_t{0});
  if (!ep.bias_term()) {
    cb.emit_top(L, "Gather", {table, idx}, ga);
    return;
  }
  int rows = cb.emit(L, "Gather", {table, idx}, ga, "gather");
  cb.emit_top(L, "Add", {rows, cb.constant(L, "bias", cb.blob(L, 1, {N}, "bias"))}, {});
}

void convert_convolution(CaffeBuilder& cb, CaffeLayer& L) { convert_conv(cb, L, false); }
void convert_deconvolution(CaffeBuilder& cb, CaffeLayer& L) { convert_conv(cb, L, true); }

const ConverterRegistrar registrar({
    {"Convolution", convert_convolution},
    {"Deconvolution", convert_deconvolution},
    {"Pooling", convert_pool},
    {"InnerProduct", convert_inner_product},
    {"Embed", convert_embed},
});

}  // namespace

}  // namespace anvil::caffe_import
