#include "import/keras/keras_convert.h"

#include <algorithm>

#include "anvil/error.h"

namespace anvil::keras {

Tensor conv_kernel_to_oihw(const Tensor& k) {
  int r = k.rank();
  if (r < 3)
    throw Error("a convolution kernel needs rank >= 3, found " + shape_str(k.shape()), {}, {},
                "kernel");
  std::vector<int> perm{r - 1, r - 2};
  for (int i = 0; i < r - 2; ++i) perm.push_back(i);
  return transpose(k.to(DType::f32), perm);
}

Tensor depthwise_kernel_to_oihw(const Tensor& k) {
  if (k.rank() != 4)
    throw Error("a depthwise kernel must be (kh, kw, C, M), found " + shape_str(k.shape()), {}, {},
                "depthwise_kernel");
  // (kh, kw, C, M) -> (C, M, kh, kw) -> (C*M, 1, kh, kw)
  Tensor t = transpose(k.to(DType::f32), {2, 3, 0, 1});
  return t.reshaped({k.dim(2) * k.dim(3), 1, k.dim(0), k.dim(1)});
}

Tensor conv_transpose_kernel_to_iohw(const Tensor& k) {
  int r = k.rank();
  if (r < 3)
    throw Error("a transposed-convolution kernel needs rank >= 3, found " + shape_str(k.shape()),
                {}, {}, "kernel");
  std::vector<int> perm{r - 1, r - 2};
  for (int i = 0; i < r - 2; ++i) perm.push_back(i);
  return transpose(k.to(DType::f32), perm);
}

Tensor dense_kernel_to_gemm(const Tensor& k) {
  if (k.rank() != 2)
    throw Error("a Dense kernel must be (in, out), found " + shape_str(k.shape()), {}, {},
                "kernel");
  return k.to(DType::f32).clone();
}

Tensor flip_spatial(const Tensor& k, int spatial_dims) {
  if (spatial_dims < 0 || spatial_dims > k.rank())
    throw Error("flip_spatial: bad spatial dims", {}, {}, "kernel");
  Tensor src = k.to(DType::f32);
  Tensor out(DType::f32, k.shape());
  const Shape& s = k.shape();
  int r = k.rank();
  std::vector<int64_t> stride(static_cast<size_t>(r), 1);
  for (int i = r - 2; i >= 0; --i)
    stride[static_cast<size_t>(i)] =
        stride[static_cast<size_t>(i + 1)] * s[static_cast<size_t>(i + 1)];
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

}  // namespace anvil::keras
