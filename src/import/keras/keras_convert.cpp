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

namespace {
/// Column block b (of G) of a (rows, G*H) matrix, as rows of the output: out[o*H + j][r] =
/// k[r][order[o]*H + j].
Tensor gates_to_rows(const Tensor& k, const std::vector<int>& order, const char* field) {
  if (k.rank() != 2 || order.empty() || k.dim(1) % static_cast<int64_t>(order.size()) != 0)
    throw Error("a recurrent kernel must be (in, " + std::to_string(order.size()) +
                    "*units), found " + shape_str(k.shape()),
                {}, {}, field);
  Tensor src = k.to(DType::f32);
  const int64_t rows = k.dim(0), gh = k.dim(1), h = gh / static_cast<int64_t>(order.size());
  Tensor out(DType::f32, Shape{1, gh, rows});
  const float* in = src.data<float>();
  float* o = out.data<float>();
  for (size_t g = 0; g < order.size(); ++g)
    for (int64_t j = 0; j < h; ++j)
      for (int64_t r = 0; r < rows; ++r)
        o[(static_cast<int64_t>(g) * h + j) * rows + r] = in[r * gh + order[g] * h + j];
  return out;
}
}  // namespace

Tensor rnn_kernel_to_onnx(const Tensor& k, const std::vector<int>& order) {
  return gates_to_rows(k, order, "kernel");
}

Tensor rnn_bias_to_onnx(const Tensor& input_bias, const Tensor& recurrent_bias,
                        const std::vector<int>& order, int64_t hidden) {
  const int64_t gh = hidden * static_cast<int64_t>(order.size());
  Tensor out(DType::f32, Shape{1, 2 * gh});
  float* o = out.data<float>();
  std::fill(o, o + 2 * gh, 0.f);
  int half = 0;
  for (const Tensor* b : {&input_bias, &recurrent_bias}) {
    if (b->defined()) {
      if (b->numel() != gh)
        throw Error("a recurrent bias must have " + std::to_string(gh) + " values, found " +
                        shape_str(b->shape()),
                    {}, {}, "bias");
      Tensor src = b->to(DType::f32);
      const float* in = src.data<float>();
      for (size_t g = 0; g < order.size(); ++g)
        for (int64_t j = 0; j < hidden; ++j)
          o[half * gh + static_cast<int64_t>(g) * hidden + j] = in[order[g] * hidden + j];
    }
    ++half;
  }
  return out;
}

Tensor stack_directions(const Tensor& fw, const Tensor& bw) {
  if (fw.shape() != bw.shape() || fw.rank() < 1 || fw.dim(0) != 1)
    throw Error("forward and backward weights differ: " + shape_str(fw.shape()) + " vs " +
                    shape_str(bw.shape()),
                {}, {}, "weights");
  Shape s = fw.shape();
  s[0] = 2;
  Tensor out(DType::f32, s);
  Tensor a = fw.to(DType::f32), b = bw.to(DType::f32);
  std::copy(a.data<float>(), a.data<float>() + a.numel(), out.data<float>());
  std::copy(b.data<float>(), b.data<float>() + b.numel(), out.data<float>() + a.numel());
  return out;
}

}  // namespace anvil::keras
