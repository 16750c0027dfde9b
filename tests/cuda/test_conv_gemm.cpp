// cuDNN ConvPlan and cuBLASLt GemmPlan (src/backend/cuda/conv.cpp, gemm.cpp) against plain
// host loops with double accumulation, on random data and odd sizes, in f32, f16 and bf16.
//
// Inputs, weights, bias and residual are generated as floats and rounded to the storage dtype
// on the host first, so the reference sees exactly the values the GPU sees; what remains is
// the GPU's arithmetic and its output rounding. With S = sum |x*w| over the terms of an output
// (times |alpha| for gemm) + |bias| + |z or beta*C|:
//  - f32: |got - ref| <= 1e-4 |ref| + 2e-5 S (conv; FFT/Winograd algorithms are allowed) and
//    <= 2e-5 |ref| + 1e-5 S (gemm). Plain fp32 FMA accumulation is ~1e-7 S; TF32 (10-bit
//    operands, ~5e-4 relative per product) would not pass.
//  - f16 / bf16: |got - ref| <= 4 u S with u = 2^-11 (f16) or 2^-8 (bf16), the unit roundoff of
//    the storage: fp32 accumulation costs ~1e-7 S, and each rounding to the storage dtype of a
//    value bounded by S costs at most u S; the paths round at most twice (conv + residual,
//    then bias + ReLU in the plan's own epilogue kernel; product then activation in the gemm's
//    own epilogue), so 4 u S leaves a factor two of margin; GELU's slope is below 1.13.
// Every output is poisoned with NaN (0xFF bytes) before the run, so an element the plan does
// not write fails the comparison; batched gemm outputs with gaps check the gaps stay NaN.
// Every convolution case runs with the plan's own choice and then once per path that applies
// to it, forced through ANVIL_CUDA_CONV_PATH (gemm: 1x1 stride 1 pad 0 groups 1; im2col: groups
// 1; depthwise: groups == C == K, and each tiling of its kernel, depthwise:N; cudnn: always,
// and cudnn:unfused for forward ones), checking algo_name() names the forced path.
// The gemm/im2col paths round like the gemm (once, in cuBLASLt's epilogue) and the depthwise
// kernel once (fp32 accumulation, bias, residual and ReLU in float), inside the same bounds.
// Every test skips itself where no CUDA device is present.
// GemmPlan and the epilogue pass: test_gemm.cpp; helpers: conv_gemm_test_util.h.
// GemmPlan and the epilogue pass are tested in test_gemm.cpp; helpers: conv_gemm_test_util.h.
#include "cuda/conv_gemm_test_util.h"

namespace anvil::cuda {
namespace {

// ---- convolution -----------------------------------------------------------------------------

struct ConvCase {
  std::string label;
  ConvParams p;
  int out_pad_h = 0, out_pad_w = 0;  // transposed: ONNX output_padding (folded into oh/ow)
  bool z_is_y = false;               // residual added in place (z and y one buffer)
};

ConvCase conv_case(std::string label, int n, int c, int h, int w, int k, int r, int s, int pad_h,
                   int pad_w, int stride_h, int stride_w, int dil, int groups, bool bias, bool relu,
                   bool residual) {
  ConvCase cc;
  cc.label = std::move(label);
  ConvParams& p = cc.p;
  p.n = n, p.c = c, p.h = h, p.w = w, p.k = k, p.r = r, p.s = s;
  p.pad_h = pad_h, p.pad_w = pad_w, p.stride_h = stride_h, p.stride_w = stride_w;
  p.dil_h = dil, p.dil_w = dil, p.groups = groups;
  p.has_bias = bias, p.relu = relu, p.has_residual = residual;
  p.oh = (h + 2 * pad_h - dil * (r - 1) - 1) / stride_h + 1;
  p.ow = (w + 2 * pad_w - dil * (s - 1) - 1) / stride_w + 1;
  return cc;
}

ConvCase transposed_case(std::string label, int n, int c, int h, int w, int k, int r, int s,
                         int pad, int stride, int dil, int groups, int out_pad, bool bias,
                         bool relu, bool residual) {
  ConvCase cc = conv_case(std::move(label), n, c, h, w, k, r, s, pad, pad, stride, stride, dil,
                          groups, bias, relu, residual);
  ConvParams& p = cc.p;
  p.transpose = true;
  cc.out_pad_h = cc.out_pad_w = out_pad;
  p.oh = (h - 1) * stride - 2 * pad + dil * (r - 1) + 1 + out_pad;
  p.ow = (w - 1) * stride - 2 * pad + dil * (s - 1) + 1 + out_pad;
  return cc;
}

/// Reference in NCHW: ref and scale S for every output (n, k, oh, ow).
void conv_reference(const ConvParams& p, const std::vector<float>& x, const std::vector<float>& w,
                    const std::vector<float>& bias, const std::vector<float>& z,
                    std::vector<double>& ref, std::vector<double>& scale) {
  const size_t yn = static_cast<size_t>(p.n) * p.k * p.oh * p.ow;
  std::vector<double> acc(yn, 0.0), abs_acc(yn, 0.0);
  auto yi = [&](int n, int k, int oy, int ox) {
    return ((static_cast<size_t>(n) * p.k + k) * p.oh + oy) * p.ow + ox;
  };
  auto xi = [&](int n, int c, int iy, int ix) {
    return ((static_cast<size_t>(n) * p.c + c) * p.h + iy) * p.w + ix;
  };
  const int cg = p.c / p.groups, kg = p.k / p.groups;
  if (!p.transpose) {
    // y[n,ko,oy,ox] = sum_{ci,ky,kx} x[n, g*cg+ci, oy*sh-ph+ky*dh, ox*sw-pw+kx*dw] w[ko,ci,ky,kx]
    for (int n = 0; n < p.n; ++n)
      for (int ko = 0; ko < p.k; ++ko)
        for (int oy = 0; oy < p.oh; ++oy)
          for (int ox = 0; ox < p.ow; ++ox) {
            const int g = ko / kg;
            double a = 0, s = 0;
            for (int ci = 0; ci < cg; ++ci)
              for (int ky = 0; ky < p.r; ++ky)
                for (int kx = 0; kx < p.s; ++kx) {
                  const int iy = oy * p.stride_h - p.pad_h + ky * p.dil_h;
                  const int ix = ox * p.stride_w - p.pad_w + kx * p.dil_w;
                  if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                  const double t = static_cast<double>(x[xi(n, g * cg + ci, iy, ix)]) *
                                   w[((static_cast<size_t>(ko) * cg + ci) * p.r + ky) * p.s + kx];
                  a += t;
                  s += std::fabs(t);
                }
            acc[yi(n, ko, oy, ox)] = a;
            abs_acc[yi(n, ko, oy, ox)] = s;
          }
  } else {
    // ONNX ConvTranspose, W (C, K/g, R, S): every x[n,ci,iy,ix] scatters into
    // y[n, g*kg+kl, iy*sh-ph+ky*dh, ix*sw-pw+kx*dw] with weight W[ci, kl, ky, kx].
    for (int n = 0; n < p.n; ++n)
      for (int ci = 0; ci < p.c; ++ci)
        for (int iy = 0; iy < p.h; ++iy)
          for (int ix = 0; ix < p.w; ++ix) {
            const int g = ci / cg;
            for (int kl = 0; kl < kg; ++kl)
              for (int ky = 0; ky < p.r; ++ky)
                for (int kx = 0; kx < p.s; ++kx) {
                  const int oy = iy * p.stride_h - p.pad_h + ky * p.dil_h;
                  const int ox = ix * p.stride_w - p.pad_w + kx * p.dil_w;
                  if (oy < 0 || oy >= p.oh || ox < 0 || ox >= p.ow) continue;
                  const double t = static_cast<double>(x[xi(n, ci, iy, ix)]) *
                                   w[((static_cast<size_t>(ci) * kg + kl) * p.r + ky) * p.s + kx];
                  acc[yi(n, g * kg + kl, oy, ox)] += t;
                  abs_acc[yi(n, g * kg + kl, oy, ox)] += std::fabs(t);
                }
          }
  }
  ref.assign(yn, 0.0);
  scale.assign(yn, 0.0);
  for (int n = 0; n < p.n; ++n)
    for (int k = 0; k < p.k; ++k)
      for (int oy = 0; oy < p.oh; ++oy)
        for (int ox = 0; ox < p.ow; ++ox) {
          const size_t i = yi(n, k, oy, ox);
          double v = acc[i], s = abs_acc[i];
          if (p.has_bias)
            v += bias[static_cast<size_t>(k)], s += std::fabs(bias[static_cast<size_t>(k)]);
          if (p.has_residual) v += z[i], s += std::fabs(z[i]);
          if (p.relu) v = std::min(std::max(v, 0.0), static_cast<double>(p.relu_max));
          ref[i] = v;
          scale[i] = s;
        }
}

/// NCHW (host) <-> NHWC (device) element orders.
std::vector<float> to_nhwc(const std::vector<float>& v, int n, int c, int h, int w) {
  std::vector<float> out(v.size());
  for (int a = 0; a < n; ++a)
    for (int ch = 0; ch < c; ++ch)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          out[((static_cast<size_t>(a) * h + y) * w + x) * c + ch] =
              v[((static_cast<size_t>(a) * c + ch) * h + y) * w + x];
  return out;
}
std::vector<float> to_nchw(const std::vector<float>& v, int n, int c, int h, int w) {
  std::vector<float> out(v.size());
  for (int a = 0; a < n; ++a)
    for (int ch = 0; ch < c; ++ch)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          out[((static_cast<size_t>(a) * c + ch) * h + y) * w + x] =
              v[((static_cast<size_t>(a) * h + y) * w + x) * c + ch];
  return out;
}

/// Sets ANVIL_CUDA_CONV_PATH for one scope ("" = unset: the plan's own choice).
class ForcedPath {
 public:
  explicit ForcedPath(const std::string& path) {
    if (path.empty())
      unsetenv("ANVIL_CUDA_CONV_PATH");
    else
      setenv("ANVIL_CUDA_CONV_PATH", path.c_str(), 1);
  }
  ~ForcedPath() { unsetenv("ANVIL_CUDA_CONV_PATH"); }
  ForcedPath(const ForcedPath&) = delete;
  ForcedPath& operator=(const ForcedPath&) = delete;
};

/// The paths ConvPlan offers for these sizes (conv.cpp's rules, restated).
std::vector<std::string> paths_for(const ConvParams& p, DType t) {
  std::vector<std::string> out;
  if (!p.transpose && p.groups == 1 && p.r == 1 && p.s == 1 && p.pad_h == 0 && p.pad_w == 0 &&
      p.stride_h == 1 && p.stride_w == 1)
    out.push_back("gemm");
  if (!p.transpose && p.groups == 1) out.push_back("im2col");
  if (!p.transpose && p.groups == p.c && p.c == p.k) {
    out.push_back("depthwise");  // timed over its tilings
    out.push_back("depthwise:0");
    // The column-tiled kernels: 3x3 or 5x5, column stride 1 or 2, no column dilation,
    // channels filling 16-byte vectors.
    if (p.dil_w == 1 && (p.s == 3 || p.s == 5) && p.r == p.s &&
        (p.stride_w == 1 || p.stride_w == 2) && p.c % (16 / static_cast<int>(element_size(t))) == 0)
      for (const char* tile : {"depthwise:1", "depthwise:2", "depthwise:4"}) out.push_back(tile);
  }
  out.push_back("cudnn");
  if (!p.transpose) out.push_back("cudnn:unfused");
  return out;
}

/// The algo_name() prefix a forced path must produce.
std::string algo_prefix(const std::string& path) {
  if (path == "im2col") return "im2col+gemm";
  if (path == "depthwise:0") return "depthwise";
  if (path.rfind("depthwise:", 0) == 0) return "depthwise x" + path.substr(10);
  if (path == "cudnn" || path == "cudnn:unfused") return "cudnn ";
  return path;
}

void check_conv(const ConvCase& cc, DType t, const std::string& path = "") {
  SCOPED_TRACE(cc.label + " " + dtype_name(t) + (path.empty() ? " auto" : " path " + path));
  const ForcedPath forced(path);
  ConvParams p = cc.p;
  p.dtype = t;
  const size_t xn = static_cast<size_t>(p.n) * p.c * p.h * p.w;
  const size_t yn = static_cast<size_t>(p.n) * p.k * p.oh * p.ow;
  const int64_t w0 = p.transpose ? p.c : p.k, w1 = p.transpose ? p.k / p.groups : p.c / p.groups;
  const size_t wn = static_cast<size_t>(w0 * w1) * p.r * p.s;
  const auto x = random_values(xn, t, 11);
  const auto w = random_values(wn, t, 12);
  const auto bias = random_values(static_cast<size_t>(p.k), t, 13);
  const auto z = random_values(yn, t, 14);

  ConvPlan plan(p, "conv_" + cc.label);
  if (path == "depthwise:0")
    ASSERT_EQ(plan.algo_name(), "depthwise") << "forced path " << path << " not taken";
  else if (!path.empty())
    ASSERT_EQ(plan.algo_name().rfind(algo_prefix(path), 0), 0u)
        << "forced path " << path << " not taken: " << plan.algo_name();
  if (path == "cudnn:unfused" && (p.has_bias || p.relu || p.has_residual))
    EXPECT_NE(plan.algo_name().find("+epilogue"), std::string::npos) << plan.algo_name();
  // Graph weights in f32 (OIHW or ConvTranspose's (C, K/g, R, S)), converted by prepare().
  const Tensor wt = Tensor::from_vector<float>({w0, w1, p.r, p.s}, w);
  const Tensor bt = Tensor::from_vector<float>({p.k}, bias);
  const ConvWeights cw = plan.prepare(wt, p.has_bias ? &bt : nullptr);
  ASSERT_EQ(cw.w.dtype(), t);
  const int64_t rsc = p.r * p.s * w1, vec = 16 / static_cast<int64_t>(element_size(t));
  if (plan.algo_name().rfind("depthwise", 0) == 0)
    ASSERT_EQ(cw.w.shape(), (Shape{p.r, p.s, p.k}));
  else if (plan.algo_name().rfind("im2col+gemm", 0) == 0 && rsc % vec != 0)  // rows padded
    ASSERT_EQ(cw.w.shape(), (Shape{w0, (rsc + vec - 1) / vec * vec}));
  else
    ASSERT_EQ(cw.w.shape(), (Shape{w0, p.r, p.s, w1}));
  EXPECT_EQ(cw.bias.defined(), p.has_bias);

  DeviceBuffer dx = to_device(to_nhwc(x, p.n, p.c, p.h, p.w), t);
  DeviceBuffer dw = upload(cw.w);
  DeviceBuffer db = p.has_bias ? upload(cw.bias) : DeviceBuffer();
  DeviceBuffer dz =
      p.has_residual ? to_device(to_nhwc(z, p.n, p.k, p.oh, p.ow), t) : DeviceBuffer();
  DeviceBuffer dy(yn * element_size(t));
  if (cc.z_is_y)
    ANVIL_CUDA_CHECK(cudaMemcpy(dy.get(), dz.get(), dy.size(), cudaMemcpyDeviceToDevice));
  else
    poison(dy);
  DeviceBuffer ws(plan.workspace_bytes());
  cudaStream_t stream = nullptr;
  ANVIL_CUDA_CHECK(cudaStreamCreate(&stream));
  plan.run(stream, dx.get(), dw.get(), db.get(), cc.z_is_y ? dy.get() : dz.get(), dy.get(),
           ws.get());
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
  ANVIL_CUDA_CHECK(cudaStreamDestroy(stream));
  std::printf("  [%s %s] %s, workspace %zu bytes\n", cc.label.c_str(), dtype_name(t),
              plan.algo_name().c_str(), plan.workspace_bytes());

  std::vector<double> ref, scale;
  conv_reference(p, x, w, bias, z, ref, scale);
  if (p.relu && std::isfinite(p.relu_max)) {
    // The case must exercise the clamp: some outputs clamped, some strictly between.
    int clamped = 0, between = 0;
    for (double v : ref) {
      clamped += v == static_cast<double>(p.relu_max);
      between += v > 0.0 && v < static_cast<double>(p.relu_max);
    }
    EXPECT_GT(clamped, 0) << "relu_max " << p.relu_max << " clamps nothing";
    EXPECT_GT(between, 0) << "relu_max " << p.relu_max << " clamps everything";
  }
  const auto got = to_nchw(from_device(dy.get(), yn, t), p.n, p.k, p.oh, p.ow);
  expect_close(got, ref, scale, t, false);
}

void check_conv_all_types(const ConvCase& cc) {
  for (DType t : kTypes) {
    check_conv(cc, t);
    for (const std::string& path : paths_for(cc.p, t)) check_conv(cc, t, path);
  }
}

TEST(CudaConv, Kernel3x3Pad1BiasRelu) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      conv_case("3x3_bias_relu", 2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, true, true, false));
}

TEST(CudaConv, Kernel1x1Stride2Plain) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      conv_case("1x1_stride2", 1, 8, 7, 5, 16, 1, 1, 0, 0, 2, 2, 1, 1, false, false, false));
}

TEST(CudaConv, Kernel7x7Stride2BiasOnly) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      conv_case("7x7_stride2_bias", 1, 3, 13, 11, 8, 7, 7, 3, 3, 2, 2, 1, 1, true, false, false));
}

TEST(CudaConv, Dilation2BiasResidualRelu) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(conv_case("dil2_bias_residual_relu", 1, 6, 9, 7, 6, 3, 3, 2, 2, 1, 1, 2, 1,
                                 true, true, true));
}

TEST(CudaConv, Groups2UnequalStridesAndPads) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      conv_case("groups2", 2, 4, 7, 5, 6, 3, 3, 1, 0, 2, 1, 1, 2, true, true, false));
}

TEST(CudaConv, DepthwiseStride2) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      conv_case("depthwise", 1, 8, 9, 7, 8, 3, 3, 1, 1, 2, 2, 1, 8, true, true, false));
}

TEST(CudaConv, ResidualInPlace) {
  SKIP_WITHOUT_GPU();
  ConvCase cc =
      conv_case("residual_in_place", 1, 5, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, true, false, true);
  cc.z_is_y = true;
  check_conv_all_types(cc);
  cc = conv_case("residual_in_place_relu", 1, 5, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, true, true, true);
  cc.z_is_y = true;
  check_conv_all_types(cc);
}

TEST(CudaConv, ResidualWithoutBias) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      conv_case("residual_no_bias", 1, 4, 5, 6, 8, 1, 1, 0, 0, 1, 1, 1, 1, false, false, true));
}

TEST(CudaConv, ReluWithoutBias) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      conv_case("relu_no_bias", 2, 3, 5, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, false, true, false));
}

TEST(CudaConv, WiderChannelsTensorCores) {
  SKIP_WITHOUT_GPU();
  // Channel counts that are multiples of 8 (the tensor-core friendly case), batch 3.
  check_conv_all_types(
      conv_case("c32_k64", 3, 32, 11, 9, 64, 3, 3, 1, 1, 1, 1, 1, 1, true, true, false));
}

TEST(CudaConv, Gemm1x1OddChannelsBiasResidualRelu) {
  SKIP_WITHOUT_GPU();
  // The gemm path's epilogue: relu(x W^T + bias + z), with odd channel counts (rows of 5 and
  // 7 elements: no 16-byte rows) and batch 2.
  check_conv_all_types(conv_case("1x1_odd_bias_residual_relu", 2, 5, 3, 5, 7, 1, 1, 0, 0, 1, 1, 1,
                                 1, true, true, true));
  ConvCase cc = conv_case("1x1_residual_in_place_relu", 1, 16, 5, 3, 24, 1, 1, 0, 0, 1, 1, 1, 1,
                          true, true, true);
  cc.z_is_y = true;
  check_conv_all_types(cc);
  check_conv_all_types(
      conv_case("1x1_relu_no_bias", 1, 24, 3, 3, 8, 1, 1, 0, 0, 1, 1, 1, 1, false, true, false));
}

TEST(CudaConv, Im2colPadded1x1AndStrides) {
  SKIP_WITHOUT_GPU();
  // 1x1 with pads (zero rows from im2col), 5x3 kernel with unequal strides and pads, and a
  // 16-channel 3x3 (16-byte moves in f16/bf16 and f32) with residual.
  check_conv_all_types(
      conv_case("1x1_pad1_stride2", 1, 6, 5, 4, 3, 1, 1, 1, 1, 2, 2, 1, 1, true, false, false));
  check_conv_all_types(
      conv_case("5x3_strides_3_2", 2, 3, 11, 9, 5, 5, 3, 2, 1, 3, 2, 1, 1, true, true, false));
  check_conv_all_types(
      conv_case("c16_3x3_residual", 1, 16, 6, 5, 9, 3, 3, 1, 1, 1, 1, 1, 1, false, false, true));
}

TEST(CudaConv, DepthwiseOddChannelsResidualDilation) {
  SKIP_WITHOUT_GPU();
  // Odd channels (the scalar kernel), residual without bias; 24 channels (vectorized) with
  // dilation 2, in-place residual and ReLU; a 5x5 stride-2 depthwise of 16 channels, batch 3.
  check_conv_all_types(
      conv_case("dw_c5_residual", 2, 5, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 5, false, false, true));
  ConvCase cc =
      conv_case("dw_c24_dil2_in_place", 1, 24, 9, 8, 24, 3, 3, 2, 2, 1, 1, 2, 24, true, true, true);
  cc.z_is_y = true;
  check_conv_all_types(cc);
  check_conv_all_types(
      conv_case("dw_c16_5x5_s2", 3, 16, 11, 10, 16, 5, 5, 2, 2, 2, 2, 1, 16, true, true, false));
  // The column-tiled kernel (3- or 5-wide, stride 1 or 2, 4 output columns a thread): widths
  // that leave a partial last tile, pads, stride 1 5x5 with residual, rows of stride 2 with
  // columns of stride 1, and 24 channels without vector alignment of the tile count.
  check_conv_all_types(
      conv_case("dw_c16_3x3_s1_w7", 2, 16, 5, 7, 16, 3, 3, 1, 1, 1, 1, 1, 16, true, true, false));
  check_conv_all_types(conv_case("dw_c8_5x5_s1_residual", 1, 8, 9, 11, 8, 5, 5, 2, 2, 1, 1, 1, 8,
                                 false, false, true));
  check_conv_all_types(conv_case("dw_c24_3x3_sh2_sw1_nopad", 1, 24, 8, 9, 24, 3, 3, 0, 0, 2, 1, 1,
                                 24, true, false, false));
  // Row dilation 2 with column dilation 1 (the tiled kernel's rows are runtime-dilated).
  cc = conv_case("dw_c16_dil_h2_w1", 1, 16, 9, 7, 16, 3, 3, 2, 1, 1, 1, 1, 16, true, true, false);
  cc.p.dil_h = 2;
  cc.p.oh = (cc.p.h + 2 * cc.p.pad_h - 2 * (cc.p.r - 1) - 1) / cc.p.stride_h + 1;
  check_conv_all_types(cc);
}

ConvCase with_relu_max(ConvCase cc, float m) {
  cc.p.relu_max = m;
  return cc;
}

TEST(CudaConv, ClampedReluEveryPath) {
  SKIP_WITHOUT_GPU();
  // ConvParams::relu_max (Clip(0, m), ReLU6): y = min(max(v, 0), m) on every path; m about
  // half the outputs' spread so both the clamp and the ReLU bite (check_conv asserts it).
  // im2col/gemm (+clamp pass), cuDNN fused (+clamp pass) and unfused (vectorized epilogue:
  // K = 24 fills 16-byte packs in every dtype; K = 5 / 7 the scalar one).
  check_conv_all_types(with_relu_max(
      conv_case("clamp_3x3_c16_k24", 2, 16, 7, 5, 24, 3, 3, 1, 1, 1, 1, 1, 1, true, true, false),
      1.5f));
  check_conv_all_types(with_relu_max(
      conv_case("clamp_3x3_odd", 1, 3, 6, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1, true, true, false), 0.5f));
  check_conv_all_types(with_relu_max(
      conv_case("clamp_1x1_residual", 2, 16, 5, 3, 24, 1, 1, 0, 0, 1, 1, 1, 1, true, true, true),
      1.f));
  ConvCase cc = with_relu_max(
      conv_case("clamp_1x1_odd_in_place", 1, 5, 4, 3, 7, 1, 1, 0, 0, 1, 1, 1, 1, false, true, true),
      0.5f);
  cc.z_is_y = true;
  check_conv_all_types(cc);
  // Depthwise: tiled kernels (16 channels, 3x3 stride 1 with residual; 5x5 stride 2) and
  // the generic one (5 channels).
  check_conv_all_types(with_relu_max(conv_case("clamp_dw_c16_3x3_residual", 2, 16, 6, 7, 16, 3, 3,
                                               1, 1, 1, 1, 1, 16, true, true, true),
                                     0.75f));
  check_conv_all_types(with_relu_max(conv_case("clamp_dw_c16_5x5_s2", 1, 16, 9, 10, 16, 5, 5, 2, 2,
                                               2, 2, 1, 16, true, true, false),
                                     0.75f));
  check_conv_all_types(with_relu_max(
      conv_case("clamp_dw_c5", 2, 5, 7, 6, 5, 3, 3, 1, 1, 1, 1, 1, 5, true, true, false), 0.5f));
}

TEST(CudaConvTranspose, ClampedRelu) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(with_relu_max(
      transposed_case("t_clamp", 1, 8, 5, 4, 6, 3, 3, 1, 2, 1, 1, 1, true, true, false), 0.75f));
}

TEST(CudaConvTranspose, Stride2OutputPaddingBiasRelu) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      transposed_case("t_stride2_outpad", 1, 4, 5, 4, 3, 3, 3, 1, 2, 1, 1, 1, true, true, false));
}

TEST(CudaConvTranspose, Groups2Residual) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(transposed_case("t_groups2_residual", 2, 4, 4, 3, 6, 4, 4, 1, 2, 1, 2, 0,
                                       false, false, true));
}

TEST(CudaConvTranspose, Dilation2Bias) {
  SKIP_WITHOUT_GPU();
  check_conv_all_types(
      transposed_case("t_dil2_bias", 1, 3, 5, 6, 2, 3, 3, 0, 1, 2, 1, 0, true, false, false));
}

TEST(CudaConv, ErrorsNameTheNode) {
  SKIP_WITHOUT_GPU();
  ConvCase bad = conv_case("bad_group", 1, 6, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 4, false, false, false);
  try {
    ConvPlan plan(bad.p, "conv_bad");
    FAIL() << "group 4 of 6 channels accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "conv_bad");
    EXPECT_EQ(e.field(), "group");
  }
  ConvCase wrong_out =
      conv_case("bad_out", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, false, false, false);
  wrong_out.p.oh += 1;
  EXPECT_THROW(ConvPlan(wrong_out.p, "conv_out"), Error);
  ConvCase ok = conv_case("ok", 1, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, true, false, false);
  ConvPlan plan(ok.p, "conv_ok");
  const Tensor w(DType::f32, {4, 2, 3, 3});
  const Tensor b(DType::f32, {4});
  try {
    (void)plan.prepare(w, &b);
    FAIL() << "weights of the wrong shape accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "conv_ok");
    EXPECT_EQ(e.field(), "W");
  }
}

}  // namespace
}  // namespace anvil::cuda
