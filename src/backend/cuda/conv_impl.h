// ConvPlan's implementation (conv.h), shared by conv.cpp (the public calls, cuDNN's algorithm
// choice) and conv_select.cpp (building, checking and timing the paths). The paths, cuDNN
// modes and layouts are described at the top of conv.cpp. Private to src/backend/cuda/.
#pragma once

#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend/cuda/conv.h"
#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemm_epilogue.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace anvil::cuda {
namespace conv_detail {

inline constexpr size_t kWorkspaceCap = size_t{256}
                                        << 20;           // largest workspace an algorithm may use
inline constexpr size_t kIm2colCap = size_t{512} << 20;  // largest im2col buffer

inline size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/// The calling thread's cuDNN handle for the current device (created on first use).
inline cudnnHandle_t cudnn_handle() {
  struct Handles {
    std::vector<cudnnHandle_t> h;
    ~Handles() {
      for (cudnnHandle_t x : h)
        if (x) (void)cudnnDestroy(x);
    }
  };
  thread_local Handles hs;
  int dev = 0;
  ANVIL_CUDA_CHECK(cudaGetDevice(&dev));
  const size_t d = static_cast<size_t>(dev);
  if (d >= hs.h.size()) hs.h.resize(d + 1, nullptr);
  if (!hs.h[d]) ANVIL_CUDNN_CHECK(cudnnCreate(&hs.h[d]));
  return hs.h[d];
}

inline cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDNN_DATA_FLOAT;
    case DType::f16:
      return CUDNN_DATA_HALF;
    case DType::bf16:
      return CUDNN_DATA_BFLOAT16;
    default:
      break;
  }
  throw Error(std::string("cuDNN convolution: unsupported dtype ") + dtype_name(t), {}, {},
              "dtype");
}

inline const char* fwd_algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
      return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM:
      return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM:
      return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT:
      return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT:
      return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING:
      return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
      return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
      return "WINOGRAD_NONFUSED";
    default:
      return "FWD_ALGO_?";
  }
}

inline const char* bwd_algo_name(cudnnConvolutionBwdDataAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0:
      return "BWD_DATA_ALGO_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1:
      return "BWD_DATA_ALGO_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT:
      return "BWD_DATA_FFT";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING:
      return "BWD_DATA_FFT_TILING";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD:
      return "BWD_DATA_WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED:
      return "BWD_DATA_WINOGRAD_NONFUSED";
    default:
      return "BWD_DATA_ALGO_?";
  }
}

/// Deterministic pseudo-random values in [-1, 1) stored as `t` (scratch data for the
/// algorithm search: cuDNN's timings should not see all-zero inputs).
inline std::vector<unsigned char> random_bytes(DType t, size_t count, uint32_t seed) {
  const size_t es = element_size(t);
  std::vector<unsigned char> out(count * es);
  uint32_t s = seed * 2654435761u + 12345u;
  for (size_t i = 0; i < count; ++i) {
    s = s * 1664525u + 1013904223u;
    const float v = static_cast<float>(s >> 8) / static_cast<float>(1u << 23) - 1.f;
    if (t == DType::f32) {
      std::memcpy(out.data() + i * 4, &v, 4);
    } else {
      const uint16_t h = t == DType::f16 ? float_to_half(v) : float_to_bf16(v);
      std::memcpy(out.data() + i * 2, &h, 2);
    }
  }
  return out;
}

inline DeviceBuffer random_device(DType t, size_t count, uint32_t seed) {
  DeviceBuffer b(count * element_size(t));
  if (count) {
    auto host = random_bytes(t, count, seed);
    ANVIL_CUDA_CHECK(cudaMemcpy(b.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
  }
  return b;
}

/// A stream for the construction-time search and trial runs, destroyed on scope exit.
struct ScopedStream {
  cudaStream_t s = nullptr;
  ScopedStream() { ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~ScopedStream() {
    if (s) (void)cudaStreamDestroy(s);
  }
  ScopedStream(const ScopedStream&) = delete;
  ScopedStream& operator=(const ScopedStream&) = delete;
};

}  // namespace conv_detail

using namespace conv_detail;  // NOLINT: a private header of conv.cpp and conv_select.cpp

struct ConvPlan::Impl {
  enum class Mode { Plain, Fused, Unfused, Transposed };
  enum class Path { Cudnn, Gemm, Im2col, Depthwise };

  ConvParams p;
  std::string name;
  Path path = Path::Cudnn;
  int dw_tile = 0;                 // depthwise: output columns a thread (0: the generic kernel)
  std::unique_ptr<GemmPlan> gemm;  // gemm and im2col+gemm: [N*OH*OW, R*S*C] x [K, R*S*C]^T
  size_t col_bytes = 0;            // im2col: the rows at the workspace's start (256-aligned)
  int64_t col_k = 0;               // im2col: row length, R*S*C rounded up to 16 bytes
  size_t total_ws = 0;             // what workspace_bytes() reports for the chosen path
  Mode mode = Mode::Plain;
  cudnnTensorDescriptor_t x_desc = nullptr, y_desc = nullptr, bias_desc = nullptr;
  cudnnFilterDescriptor_t w_desc = nullptr;
  cudnnConvolutionDescriptor_t conv_desc = nullptr;
  cudnnActivationDescriptor_t act_desc = nullptr;  // fused: RELU or IDENTITY
  cudnnConvolutionFwdAlgo_t fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  size_t ws_bytes = 0;  // cuDNN's workspace
  size_t y_bytes = 0;
  DeviceBuffer zero_bias;  // the fused path's bias when the graph has none
  struct Cand {            // one algorithm cuDNN's Find timed
    int algo;
    float time;
    size_t memory;
    cudnnMathType_t math;
    bool deterministic;
  };
  std::vector<Cand> found;  // Find's results, kept for a second choose()
  bool found_done = false;
  // choose(): the unfused mode (plain convolution, then our bias/ReLU pass) even where the
  // fused call runs; select() times both, as cuDNN's fused kernels can be far slower.
  bool cudnn_unfused = false;

  ~Impl() {
    if (x_desc) (void)cudnnDestroyTensorDescriptor(x_desc);
    if (y_desc) (void)cudnnDestroyTensorDescriptor(y_desc);
    if (bias_desc) (void)cudnnDestroyTensorDescriptor(bias_desc);
    if (w_desc) (void)cudnnDestroyFilterDescriptor(w_desc);
    if (conv_desc) (void)cudnnDestroyConvolutionDescriptor(conv_desc);
    if (act_desc) (void)cudnnDestroyActivationDescriptor(act_desc);
  }

  [[noreturn]] void fail(const std::string& msg, const std::string& field = {}) const {
    throw Error("cuda conv: " + msg, {}, name, field);
  }

  void validate() const {
    const ConvParams& q = p;
    if (q.n < 1 || q.c < 1 || q.h < 1 || q.w < 1 || q.k < 1 || q.r < 1 || q.s < 1 || q.oh < 1 ||
        q.ow < 1)
      fail("sizes must be positive");
    if (q.groups < 1 || q.c % q.groups != 0 || q.k % q.groups != 0)
      fail("group " + std::to_string(q.groups) + " does not divide the channels (C=" +
               std::to_string(q.c) + ", K=" + std::to_string(q.k) + ")",
           "group");
    if (q.pad_h < 0 || q.pad_w < 0) fail("negative pads", "pads");
    if (q.stride_h < 1 || q.stride_w < 1) fail("strides must be positive", "strides");
    if (q.dil_h < 1 || q.dil_w < 1) fail("dilations must be positive", "dilations");
    if (q.relu && !(q.relu_max > 0.f))  // NaN too
      fail("the activation's upper clamp must be positive (got " + std::to_string(q.relu_max) +
           ")");
    if (q.dtype != DType::f32 && q.dtype != DType::f16 && q.dtype != DType::bf16)
      fail(std::string("dtype ") + dtype_name(q.dtype) + " (f32, f16 and bf16 are supported)");
  }

  void make_descriptors() {
    const cudnnDataType_t dt = cudnn_type(p.dtype);
    ANVIL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x_desc));
    ANVIL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y_desc));
    ANVIL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&bias_desc));
    ANVIL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w_desc));
    ANVIL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_desc));
    ANVIL_CUDNN_CHECK(cudnnCreateActivationDescriptor(&act_desc));
    ANVIL_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NHWC, dt, p.n, p.c, p.h, p.w));
    ANVIL_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NHWC, dt, p.n, p.k, p.oh, p.ow));
    ANVIL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias_desc, CUDNN_TENSOR_NCHW, dt, 1, p.k, 1, 1));
    if (!p.transpose)
      ANVIL_CUDNN_CHECK(
          cudnnSetFilter4dDescriptor(w_desc, dt, CUDNN_TENSOR_NHWC, p.k, p.c / p.groups, p.r, p.s));
    else  // filter of the forward convolution y (K channels) -> x (C channels)
      ANVIL_CUDNN_CHECK(
          cudnnSetFilter4dDescriptor(w_desc, dt, CUDNN_TENSOR_NHWC, p.c, p.k / p.groups, p.r, p.s));
    ANVIL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_desc, p.pad_h, p.pad_w, p.stride_h,
                                                      p.stride_w, p.dil_h, p.dil_w,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv_desc, p.groups));
    // f32: plain FMA kernels (no TF32), so results match an fp64 reference within 1e-4.
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(
        conv_desc, p.dtype == DType::f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
    ANVIL_CUDNN_CHECK(cudnnSetActivationDescriptor(
        act_desc, p.relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_PROPAGATE_NAN,
        0.0));

    // The sizes must be those of the convolution (forward: x -> y; transposed: y -> x).
    int on = 0, oc = 0, ohh = 0, oww = 0;
    if (!p.transpose) {
      ANVIL_CUDNN_CHECK(
          cudnnGetConvolution2dForwardOutputDim(conv_desc, x_desc, w_desc, &on, &oc, &ohh, &oww));
      if (on != p.n || oc != p.k || ohh != p.oh || oww != p.ow)
        fail("output " + std::to_string(p.oh) + "x" + std::to_string(p.ow) +
                 " does not match the convolution of a " + std::to_string(p.h) + "x" +
                 std::to_string(p.w) + " input (expected " + std::to_string(ohh) + "x" +
                 std::to_string(oww) + ")",
             "pads");
    } else {
      ANVIL_CUDNN_CHECK(
          cudnnGetConvolution2dForwardOutputDim(conv_desc, y_desc, w_desc, &on, &oc, &ohh, &oww));
      if (on != p.n || oc != p.c || ohh != p.h || oww != p.w)
        fail("transposed convolution output " + std::to_string(p.oh) + "x" + std::to_string(p.ow) +
                 " is not reachable from a " + std::to_string(p.h) + "x" + std::to_string(p.w) +
                 " input with these strides/pads (output_padding must be below the stride)",
             "output_padding");
    }
  }

  bool is_f32_ok(cudnnMathType_t m) const {
    // No tensor-op (TF32) kernels for f32 data.
    return p.dtype != DType::f32 ||
           (m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
  }

  void set_math(cudnnMathType_t m) {
    ANVIL_CUDNN_CHECK(
        cudnnSetConvolutionMathType(conv_desc, p.dtype == DType::f32 ? CUDNN_FMA_MATH : m));
  }

  /// Enqueues the chosen path; returns the first failing cuDNN status (throws only when a
  /// CUDA copy or our kernel's launch fails).
  cudnnStatus_t enqueue(cudnnHandle_t h, cudaStream_t stream, const void* x, const void* w,
                        const void* bias, const void* z, void* y, void* ws) const {
    const float one = 1.f, zero = 0.f;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (mode == Mode::Plain)
      return cudnnConvolutionForward(h, &one, x_desc, x, w_desc, w, conv_desc, fwd_algo, ws,
                                     ws_bytes, &zero, y_desc, y);
    if (mode == Mode::Fused) {
      const float alpha2 = p.has_residual ? 1.f : 0.f;
      st = cudnnConvolutionBiasActivationForward(
          h, &one, x_desc, x, w_desc, w, conv_desc, fwd_algo, ws, ws_bytes, &alpha2, y_desc,
          p.has_residual ? z : y, bias_desc, p.has_bias ? bias : zero_bias.get(), act_desc, y_desc,
          y);
      if (st == CUDNN_STATUS_SUCCESS && clamped()) clamp_pass(y, stream);
      return st;
    }
    // Unfused / Transposed: y = z (when residual), y = conv + beta*y, += bias, relu.
    float beta = 0.f;
    if (p.has_residual) {
      if (z != y) {
        ANVIL_CUDA_CHECK(cudaMemcpyAsync(y, z, y_bytes, cudaMemcpyDeviceToDevice, stream));
      }
      beta = 1.f;
    }
    if (mode == Mode::Unfused)
      st = cudnnConvolutionForward(h, &one, x_desc, x, w_desc, w, conv_desc, fwd_algo, ws, ws_bytes,
                                   &beta, y_desc, y);
    else
      st = cudnnConvolutionBackwardData(h, &one, w_desc, w, x_desc, x, conv_desc, bwd_algo, ws,
                                        ws_bytes, &beta, y_desc, y);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    // Bias and ReLU in one pass of our own kernel: NHWC y is [N*OH*OW, K] row-major.
    if (p.has_bias || p.relu)
      detail::gemm_bias_act(
          p.dtype, y, p.has_bias ? bias : nullptr, 1, static_cast<int64_t>(p.n) * p.oh * p.ow, p.k,
          0, p.relu ? detail::GemmAct::Relu : detail::GemmAct::None, stream, p.relu_max);
    return st;
  }

  /// Whether the activation has a finite upper clamp (ReLU6 ...): paths whose fused epilogue
  /// only knows ReLU (cuBLASLt, cuDNN fused) then run clamp_pass after it.
  bool clamped() const { return p.relu && !std::isinf(p.relu_max); }
  /// y = min(y, relu_max) in place (y is already >= 0 after the fused ReLU; the pass applies
  /// max(., 0) as well), 16-byte vectorized: NHWC y is [N*OH*OW, K] row-major.
  void clamp_pass(void* y, cudaStream_t stream) const {
    detail::gemm_bias_act(p.dtype, y, nullptr, 1, static_cast<int64_t>(p.n) * p.oh * p.ow, p.k, 0,
                          detail::GemmAct::Relu, stream, p.relu_max);
  }

  void choose(cudnnHandle_t h, cudaStream_t stream);  // conv.cpp

  std::string cudnn_algo_name() const {
    std::string s = p.transpose ? bwd_algo_name(bwd_algo) : fwd_algo_name(fwd_algo);
    if (mode == Mode::Fused) s += clamped() ? " fused +clamp" : " fused";
    if ((mode == Mode::Unfused || mode == Mode::Transposed) &&
        (p.has_bias || p.relu || p.has_residual))
      s += " +epilogue";
    return s;
  }

  std::string algo_name() const {
    switch (path) {
      case Path::Gemm:
        return clamped() ? "gemm +clamp" : "gemm";
      case Path::Im2col:
        return clamped() ? "im2col+gemm +clamp" : "im2col+gemm";
      case Path::Depthwise:
        return dw_tile ? "depthwise x" + std::to_string(dw_tile) : std::string("depthwise");
      case Path::Cudnn:
        break;
    }
    return "cudnn " + cudnn_algo_name();
  }

  detail::ConvWindow window() const {
    detail::ConvWindow q;
    q.n = p.n, q.c = p.c, q.h = p.h, q.w = p.w, q.oh = p.oh, q.ow = p.ow, q.r = p.r, q.s = p.s;
    q.pad_h = p.pad_h, q.pad_w = p.pad_w, q.stride_h = p.stride_h, q.stride_w = p.stride_w;
    q.dil_h = p.dil_h, q.dil_w = p.dil_w;
    return q;
  }

  bool gemm_applies() const {
    return !p.transpose && p.groups == 1 && p.r == 1 && p.s == 1 && p.pad_h == 0 && p.pad_w == 0 &&
           p.stride_h == 1 && p.stride_w == 1;
  }
  /// The im2col rows' length: R*S*C rounded up to a multiple of 16 bytes, so that cuBLASLt
  /// sees 16-byte aligned rows (C = 3 of a first layer otherwise gives 147 halves); the
  /// weights are zero-padded to match in prepare().
  int64_t im2col_k() const {
    const int64_t v = 16 / static_cast<int64_t>(element_size(p.dtype));
    return (static_cast<int64_t>(p.r) * p.s * p.c + v - 1) / v * v;
  }
  size_t im2col_bytes() const {
    return static_cast<size_t>(p.n) * p.oh * p.ow * static_cast<size_t>(im2col_k()) *
           element_size(p.dtype);
  }
  bool im2col_applies() const {
    return !p.transpose && p.groups == 1 && im2col_bytes() <= kIm2colCap;
  }
  bool depthwise_applies() const { return !p.transpose && p.groups == p.c && p.c == p.k; }
  /// The depthwise kernel's column tilings worth timing (conv_kernels.h: 0 = generic kernel;
  /// 1, 2, 4 output columns a thread for 3- or 5-wide kernels of stride 1 or 2, dilation 1).
  std::vector<int> dw_tiles = {0};
  void set_dw_tiles() {
    dw_tiles = {0};
    const int vec = 16 / static_cast<int>(element_size(p.dtype));
    if (p.dil_w == 1 && (p.s == 3 || p.s == 5) && p.r == p.s &&
        (p.stride_w == 1 || p.stride_w == 2) && p.c % vec == 0)
      dw_tiles = {0, 1, 2, 4};
  }

  void make_gemm(int64_t k) {
    if (gemm && gemm->params().k == k) return;
    gemm.reset();
    GemmParams g;
    g.m = static_cast<int64_t>(p.n) * p.oh * p.ow;
    g.n = p.k;
    g.k = k;
    g.trans_b = true;
    g.dtype = p.dtype;
    g.has_bias = p.has_bias;
    g.has_c = p.has_residual;
    g.beta = p.has_residual ? 1.f : 0.f;
    g.epilogue = p.relu ? GemmParams::Epilogue::Relu : GemmParams::Epilogue::None;
    gemm = std::make_unique<GemmPlan>(g, name);
  }

  /// Enqueues one of our own paths (not cuDNN's).
  void enqueue_own(cudaStream_t stream, const void* x, const void* w, const void* bias,
                   const void* z, void* y, void* ws) const {
    const void* zz = p.has_residual ? z : nullptr;
    const void* bb = p.has_bias ? bias : nullptr;
    switch (path) {
      case Path::Gemm:
        gemm->run(stream, x, w, bb, zz, y, ws);
        if (clamped()) clamp_pass(y, stream);
        return;
      case Path::Im2col:
        detail::im2col_nhwc(window(), p.dtype, x, ws, col_k, stream);
        gemm->run(stream, ws, w, bb, zz, y, static_cast<char*>(ws) + col_bytes);
        if (clamped()) clamp_pass(y, stream);
        return;
      case Path::Depthwise:
        detail::depthwise_nhwc(window(), p.relu, p.dtype, x, w, bb, zz, y, stream, dw_tile,
                               p.relu_max);
        return;
      case Path::Cudnn:
        break;
    }
  }

  /// Builds the applicable paths, checks each with a trial run, times them and keeps the
  /// fastest (see the file comment). cuDNN's failure is only fatal when nothing else runs.
  void select(cudnnHandle_t h, cudaStream_t stream, bool honor_env = true);  // conv_select.cpp
};

}  // namespace anvil::cuda

#pragma GCC diagnostic pop
