#include "import/keras/keras_convert.h"

#include <algorithm>

#include "anvil/error.h"

namespace anvil::keras {

Tensor conv_kernel_to_oihw(const Tensor& k) {
  int r = k.rank();
  if (r < 3) throw Error("a convolution kernel needs rank >= 3, found " + shape_str(k.shape()), {}, {}, "kernel");
  std::vector<int> perm{r - 1, r - 2};
  for (int i = 0; i < r - 2; ++i) perm.push_back(i);
  return transpose(k.to(DType::f32), perm);
}

Tensor depthwise_kernel_to_oihw(const Tensor& k) {
  if (k.rank() != 4) throw Error("a depthwise kernel must be (kh, kw, C, M), found " + shape_str(k.shape()), {}, {}, "depthwise_kernel");
  // (kh, kw, C, M) -> (C, M, kh, kw) -> (C*M, 1, kh, kw)
  Tensor t = transpose(k.to(DType::f32), {2, 3, 0, 1});
  return t.reshaped({k.dim(2) * k.dim(3), 1, k.dim(0), k.dim(1)});
}

Tensor conv_transpose_kernel_to_iohw(const Tensor& k) {
  int r = k.rank();
  if (r < 3) throw Error("a transposed-convolution kernel needs rank >= 3, found " + shape_str(k.shape()), {}, {}, "kernel");
  std::vector<int> perm{r - 1, r - 2};
  for (int i = 0; i < r - 2; ++i) perm.push_back(i);
  return transpose(k.to(DType::f32), perm);
}

Tensor dense_kernel_to_gemm(const Tensor& k) {
  if (k.rank() != 2) throw Error("a Dense kernel must be (in, out), found " + shape_str(k.shape()), {}, {}, "kernel");
  return k.to(DType::f32).clone();
}

Tensor flip_spatial(const Tensor& k, int spatial_dims) {
  if (spatial_dims < 0 || spatial_dims > k.rank()) throw Error("flip_spatial: bad spatial dims", {}, {}, "kernel");
  Tensor src = k.to(DType::f32);
  Tensor out(DType::f32, k.shape());
  const Shape& s = k.shape();
  int r = k.rank();
  std::vector<int64_t> stride(static_cast<size_t>(r), 1);
  for (int i = r - 2; i >= 0; --i) stride[static_cast<size_t>(i)] = stride[static_cast<size_t>(i + 1)] * s[static_cast<size_t>(i + 1)];
  const float* in = src.data<float>();
  float* o = out.data<float>();
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  for (int64_t flat = 0; flat < k.numel(); ++flat) {
    int64_t rem = flat, dst = 0;
    for (int i = 0; i < r; ++i) {
      int64_t c = rem / stride[static_cast<size_t>(i)];
      rem %= stride[static_cast<size_t>(i)];
      if (i < spatial_dims) c = s[static_cast<size_t>(i)] - 1 - c;
      dst += c * stride[static_cast<size_t>(i)];
    }
    o[dst] = in[flat];
  }
  return out;
}

int64_t effective_kernel(int64_t k, int64_t d) { return (k - 1) * d + 1; }

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

Pads tf_same_pads(int64_t in, int64_t k, int64_t s, int64_t d) {
  if (in < 0 || k < 1 || s < 1 || d < 1) throw Error("bad padding parameters", {}, {}, "padding");
  int64_t keff = effective_kernel(k, d);
  int64_t out = ceil_div(in, s);
  int64_t total = std::max<int64_t>((out - 1) * s + keff - in, 0);
  return {total / 2, total - total / 2};
}

Pads theano_same_conv_pads(int64_t in, int64_t k, int64_t s, int64_t d) {
  if (in < 0 || k < 1 || s < 1 || d < 1) throw Error("bad padding parameters", {}, {}, "padding");
  int64_t keff = effective_kernel(k, d);
  int64_t p = keff / 2;
  int64_t theano_out = (in + 2 * p - keff) / s + 1;
  int64_t out = std::min(theano_out, ceil_div(in, s));
  int64_t end = std::max<int64_t>((out - 1) * s + keff - in - p, 0);
  return {p, end};
}

Pads theano_same_pool_pads(int64_t in, int64_t k, int64_t s) {
  if (in < 0 || k < 1 || s < 1) throw Error("bad padding parameters", {}, {}, "padding");
  int64_t p = (k > 2 && k % 2 == 1) ? k - 2 : k - 1;
  int64_t theano_out = (in + 2 * p - k) / s + 1;
  int64_t out = std::min(theano_out, ceil_div(in, s));
  int64_t end = std::max<int64_t>((out - 1) * s + k - in - p, 0);
  return {p, end};
}

int64_t deconv_length(int64_t in, int64_t k, int64_t s, const std::string& padding, int64_t output_padding,
                      int64_t d) {
  int64_t keff = effective_kernel(k, d);
  if (output_padding < 0) {
    if (padding == "valid") return in * s + std::max<int64_t>(keff - s, 0);
    if (padding == "full") return in * s - (s + keff - 2);
    if (padding == "same") return in * s;
    throw Error("unknown padding '" + padding + "'", {}, {}, "padding");
  }
  int64_t pad = padding == "same" ? keff / 2 : padding == "full" ? keff - 1 : 0;
  return (in - 1) * s + keff - 2 * pad + output_padding;
}

TransposePads conv_transpose_pads(int64_t in, int64_t k, int64_t s, int64_t d, int64_t out, bool theano_same,
                                  const std::string& padding) {
  int64_t keff = effective_kernel(k, d);
  int64_t full = s * (in - 1) + keff;  // output length with no padding
  TransposePads r;
  if (theano_same && padding == "same") {
    r.pads.begin = keff / 2;
    int64_t end = full - r.pads.begin - out;
    if (end < 0) {
      r.output_padding = -end;
      end = 0;
    }
    r.pads.end = end;
    return r;
  }
  int64_t total = full - out;
  if (total < 0) {
    r.output_padding = -total;
    return r;
  }
  r.pads.begin = total / 2;
  r.pads.end = total - total / 2;
  return r;
}

}  // namespace anvil::keras
