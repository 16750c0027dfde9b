// ConvPlan (see conv.h): several implementations of one convolution, timed at construction.
//
// Paths (the applicable ones are built at construction, each checked by a trial run and timed
// with CUDA events on scratch data; the fastest is kept):
//   gemm         1x1, pad 0, stride 1, groups 1, forward: NHWC x is the matrix [N*H*W, C],
//                KRSC weights are [K, C], so y = x W^T through cuBLASLt (GemmPlan) with bias
//                and ReLU fused in its epilogue and the residual as beta*C (beta 1, C = z).
//   im2col+gemm  any forward convolution with groups 1: conv_kernels.cu's im2col writes
//                [N*OH*OW, R*S*C] rows (in KRSC order, zero-padded to 16 bytes) into the
//                workspace, then a GemmPlan with K = the padded R*S*C (weights padded alike).
//                Skipped when the rows exceed 512 MiB.
//   depthwise    groups == C == K: conv_kernels.cu's direct NHWC kernel (weights RSK), bias,
//                residual and ReLU fused.
//   cudnn        cuDNN 9's legacy API as described below (also every transposed convolution).
// The environment variable ANVIL_CUDA_CONV_PATH=gemm|im2col|depthwise|cudnn, read at plan
// construction, forces that path where it applies (tests use it to exercise every path); an
// inapplicable or failing forced path falls back to the normal choice. depthwise:N (N = 0, 1,
// 2, 4) also fixes the depthwise kernel's column tiling (see conv_kernels.h) where it applies;
// cudnn:unfused takes cuDNN's plain convolution followed by our bias/ReLU pass (below). Where
// there is an epilogue, cuDNN is timed both fused and unfused.
//
// cuDNN layouts: activations NHWC (CUDNN_TENSOR_NHWC); filters NHWC as well, i.e. KRSC for a
// convolution and C,R,S,K/g for a transposed one (cuDNN runs a transposed convolution as the
// backward-data pass of the forward convolution y -> x, whose filter is the graph's
// (C, K/g, R, S) ConvTranspose weight). Bias: 1xKx1x1 of the storage dtype.
//
// cuDNN modes, chosen at construction and validated by one trial run on scratch buffers:
//   Plain      cudnnConvolutionForward (no bias, no ReLU, no residual).
//   Fused      cudnnConvolutionBiasActivationForward: y = act(conv(x) + z + bias). With the
//              IDENTITY activation cuDNN only supports IMPLICIT_PRECOMP_GEMM; a zero bias owned
//              by the plan stands in when the graph has none.
//   Unfused    cudnnConvolutionForward with beta = 1 over y preloaded with z (a device copy
//              unless z == y), then bias and ReLU in one pass of gemm_epilogue.cu's kernel.
//   Transposed cudnnConvolutionBackwardData, then the same bias / ReLU pass as Unfused.
// The legacy API is deprecated in cuDNN 9 but present; its warnings are silenced here only.
//
// Clamped ReLU (ConvParams::relu_max finite, e.g. ReLU6): the depthwise kernel and the
// Unfused/Transposed epilogue pass clamp in registers; the gemm/im2col paths (cuBLASLt's
// epilogue knows ReLU only) and cuDNN Fused (RELU activation) are followed by one in-place
// clamp pass of gemm_epilogue.cu's kernel ("+clamp" in algo_name()). The timing sees that
// extra pass, so cuDNN unfused or the depthwise kernel win where it costs more.
#include "backend/cuda/conv.h"

#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemm_epilogue.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace anvil::cuda {
namespace {

constexpr size_t kWorkspaceCap = size_t{256} << 20;  // largest workspace an algorithm may use
constexpr size_t kIm2colCap = size_t{512} << 20;     // largest im2col buffer

size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/// The calling thread's cuDNN handle for the current device (created on first use).
cudnnHandle_t cudnn_handle() {
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

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    default: break;
  }
  throw Error(std::string("cuDNN convolution: unsupported dtype ") + dtype_name(t), {}, {},
              "dtype");
}

const char* fwd_algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "FWD_ALGO_?";
  }
}

const char* bwd_algo_name(cudnnConvolutionBwdDataAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return "BWD_DATA_ALGO_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return "BWD_DATA_ALGO_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return "BWD_DATA_FFT";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return "BWD_DATA_FFT_TILING";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return "BWD_DATA_WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return "BWD_DATA_WINOGRAD_NONFUSED";
    default: return "BWD_DATA_ALGO_?";
  }
}

/// Deterministic pseudo-random values in [-1, 1) stored as `t` (scratch data for the
/// algorithm search: cuDNN's timings should not see all-zero inputs).
std::vector<unsigned char> random_bytes(DType t, size_t count, uint32_t seed) {
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

DeviceBuffer random_device(DType t, size_t count, uint32_t seed) {
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

}  // namespace

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
  cudnnActivationDescriptor_t act_desc = nullptr;   // fused: RELU or IDENTITY
  cudnnConvolutionFwdAlgo_t fwd_algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  size_t ws_bytes = 0;  // cuDNN's workspace
  size_t y_bytes = 0;
  DeviceBuffer zero_bias;  // the fused path's bias when the graph has none
  struct Cand {  // one algorithm cuDNN's Find timed
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
    ANVIL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(x_desc, CUDNN_TENSOR_NHWC, dt, p.n, p.c, p.h, p.w));
    ANVIL_CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(y_desc, CUDNN_TENSOR_NHWC, dt, p.n, p.k, p.oh, p.ow));
    ANVIL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(bias_desc, CUDNN_TENSOR_NCHW, dt, 1, p.k, 1, 1));
    if (!p.transpose)
      ANVIL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc, dt, CUDNN_TENSOR_NHWC, p.k,
                                                   p.c / p.groups, p.r, p.s));
    else  // filter of the forward convolution y (K channels) -> x (C channels)
      ANVIL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w_desc, dt, CUDNN_TENSOR_NHWC, p.c,
                                                   p.k / p.groups, p.r, p.s));
    ANVIL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_desc, p.pad_h, p.pad_w, p.stride_h,
                                                      p.stride_w, p.dil_h, p.dil_w,
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv_desc, p.groups));
    // f32: plain FMA kernels (no TF32), so results match an fp64 reference within 1e-4.
    ANVIL_CUDNN_CHECK(cudnnSetConvolutionMathType(
        conv_desc, p.dtype == DType::f32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
    ANVIL_CUDNN_CHECK(cudnnSetActivationDescriptor(
        act_desc, p.relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
        CUDNN_NOT_PROPAGATE_NAN, 0.0));

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
        fail("transposed convolution output " + std::to_string(p.oh) + "x" +
                 std::to_string(p.ow) + " is not reachable from a " + std::to_string(p.h) + "x" +
                 std::to_string(p.w) +
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
          p.has_residual ? z : y, bias_desc, p.has_bias ? bias : zero_bias.get(), act_desc,
          y_desc, y);
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
      st = cudnnConvolutionForward(h, &one, x_desc, x, w_desc, w, conv_desc, fwd_algo, ws,
                                   ws_bytes, &beta, y_desc, y);
    else
      st = cudnnConvolutionBackwardData(h, &one, w_desc, w, x_desc, x, conv_desc, bwd_algo, ws,
                                        ws_bytes, &beta, y_desc, y);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    // Bias and ReLU in one pass of our own kernel: NHWC y is [N*OH*OW, K] row-major.
    if (p.has_bias || p.relu)
      detail::gemm_bias_act(p.dtype, y, p.has_bias ? bias : nullptr, 1,
                            static_cast<int64_t>(p.n) * p.oh * p.ow, p.k, 0,
                            p.relu ? detail::GemmAct::Relu : detail::GemmAct::None, stream,
                            p.relu_max);
    return st;
  }

  /// Whether the activation has a finite upper clamp (ReLU6 ...): paths whose fused epilogue
  /// only knows ReLU (cuBLASLt, cuDNN fused) then run clamp_pass after it.
  bool clamped() const { return p.relu && !std::isinf(p.relu_max); }
  /// y = min(y, relu_max) in place (y is already >= 0 after the fused ReLU; the pass applies
  /// max(., 0) as well), 16-byte vectorized: NHWC y is [N*OH*OW, K] row-major.
  void clamp_pass(void* y, cudaStream_t stream) const {
    detail::gemm_bias_act(p.dtype, y, nullptr, 1, static_cast<int64_t>(p.n) * p.oh * p.ow, p.k,
                          0, detail::GemmAct::Relu, stream, p.relu_max);
  }

  void choose(cudnnHandle_t h, cudaStream_t stream) {
    const DType dt = p.dtype;
    const size_t xn = static_cast<size_t>(p.n) * p.c * p.h * p.w;
    const size_t yn = static_cast<size_t>(p.n) * p.k * p.oh * p.ow;
    const size_t wn = static_cast<size_t>(p.transpose ? p.c : p.k) *
                      static_cast<size_t>((p.transpose ? p.k : p.c) / p.groups) * p.r * p.s;
    const size_t es = element_size(dt);
    y_bytes = yn * es;
    DeviceBuffer x = random_device(dt, xn, 1), w = random_device(dt, wn, 2);
    DeviceBuffer y(yn * es);
    DeviceBuffer z = p.has_residual ? random_device(dt, yn, 3) : DeviceBuffer();
    DeviceBuffer b = random_device(dt, static_cast<size_t>(p.k), 4);
    ANVIL_CUDNN_CHECK(cudnnSetStream(h, stream));

    // Workspace for the search: the largest any algorithm asks for, up to the cap.
    size_t ws_max = 0;
    if (!p.transpose) {
      for (int a = 0; a < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; ++a) {
        size_t sz = 0;
        if (cudnnGetConvolutionForwardWorkspaceSize(h, x_desc, w_desc, conv_desc, y_desc,
                                                    static_cast<cudnnConvolutionFwdAlgo_t>(a),
                                                    &sz) == CUDNN_STATUS_SUCCESS &&
            sz <= kWorkspaceCap)
          ws_max = std::max(ws_max, sz);
      }
    } else {
      for (int a = 0; a < CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT; ++a) {
        size_t sz = 0;
        if (cudnnGetConvolutionBackwardDataWorkspaceSize(
                h, w_desc, x_desc, conv_desc, y_desc,
                static_cast<cudnnConvolutionBwdDataAlgo_t>(a), &sz) == CUDNN_STATUS_SUCCESS &&
            sz <= kWorkspaceCap)
          ws_max = std::max(ws_max, sz);
      }
    }
    DeviceBuffer ws(ws_max);

    std::vector<Cand> cands = found;
    if (found_done) {
      // cuDNN's Find ran already (select() builds the fused and the unfused configuration).
    } else if (!p.transpose) {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      int got = 0;
      ANVIL_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
          h, x_desc, x.get(), w_desc, w.get(), conv_desc, y_desc, y.get(),
          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, ws.get(), ws_max));
      for (int i = 0; i < got; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ws_max &&
            is_f32_ok(perf[i].mathType))
          cands.push_back({static_cast<int>(perf[i].algo), perf[i].time, perf[i].memory,
                           perf[i].mathType, perf[i].determinism == CUDNN_DETERMINISTIC});
    } else {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      int got = 0;
      ANVIL_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
          h, w_desc, w.get(), x_desc, x.get(), conv_desc, y_desc, y.get(),
          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf, ws.get(), ws_max));
      for (int i = 0; i < got; ++i)
        if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= ws_max &&
            is_f32_ok(perf[i].mathType))
          cands.push_back({static_cast<int>(perf[i].algo), perf[i].time, perf[i].memory,
                           perf[i].mathType, perf[i].determinism == CUDNN_DETERMINISTIC});
    }
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
    found = cands;
    found_done = true;
    if (cands.empty())
      fail(std::string("cuDNN has no ") + (p.transpose ? "transposed " : "") +
           "convolution algorithm for this configuration (dtype " + dtype_name(dt) +
           ", group " + std::to_string(p.groups) + ", workspace cap 256 MiB)");
    // Fastest first (Find sorts by time already); deterministic ones preferred.
    std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
      if (a.deterministic != b.deterministic) return a.deterministic;
      return a.time < b.time;
    });
    const Cand& best = cands.front();  // cands is not changed below

    auto pick = [&](const Cand& c) {
      if (p.transpose)
        bwd_algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo);
      else
        fwd_algo = static_cast<cudnnConvolutionFwdAlgo_t>(c.algo);
      ws_bytes = c.memory;
      set_math(c.math);
    };
    auto trial = [&]() -> bool {
      if (!p.has_bias && mode == Mode::Fused && !zero_bias.get()) {
        zero_bias = DeviceBuffer(static_cast<size_t>(p.k) * es);
        ANVIL_CUDA_CHECK(cudaMemsetAsync(zero_bias.get(), 0, zero_bias.size(), stream));
      }
      cudnnStatus_t st = enqueue(h, stream, x.get(), w.get(), b.get(),
                                 p.has_residual ? z.get() : nullptr, y.get(), ws.get());
      cudaError_t e = cudaStreamSynchronize(stream);
      if (st == CUDNN_STATUS_SUCCESS && e != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
      }
      return st == CUDNN_STATUS_SUCCESS;
    };

    const bool epilogue = p.has_bias || p.relu || p.has_residual;
    if (p.transpose) {
      mode = Mode::Transposed;
      pick(best);
    } else if (!epilogue) {
      mode = Mode::Plain;
      pick(best);
    } else if (cudnn_unfused) {
      mode = Mode::Unfused;
      pick(best);
    } else {
      // Fused when cuDNN allows it: any algorithm with ReLU; IMPLICIT_PRECOMP_GEMM only with
      // the IDENTITY activation (taken unless it is clearly slower than the best one).
      // With ReLU the best algorithm is tried first, then IMPLICIT_PRECOMP_GEMM.
      std::vector<const Cand*> fused;
      if (p.relu) fused.push_back(&best);
      for (const Cand& c : cands)
        if (c.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) {
          if (&c != &best && (p.relu || c.time <= best.time * 1.25f + 0.005f))
            fused.push_back(&c);
          else if (&c == &best && !p.relu)
            fused.push_back(&c);
          break;
        }
      bool done = false;
      for (const Cand* c : fused) {
        mode = Mode::Fused;
        pick(*c);
        if ((done = trial())) break;
      }
      if (!done) {
        mode = Mode::Unfused;
        pick(best);
      }
    }
    if (mode != Mode::Fused) {  // the fastest candidate that runs
      bool ok = false;
      for (const Cand& c : cands) {
        pick(c);
        if ((ok = trial())) break;
      }
      if (!ok) fail("cuDNN found algorithms but none of them runs this convolution");
    }
  }

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
      case Path::Gemm: return clamped() ? "gemm +clamp" : "gemm";
      case Path::Im2col: return clamped() ? "im2col+gemm +clamp" : "im2col+gemm";
      case Path::Depthwise:
        return dw_tile ? "depthwise x" + std::to_string(dw_tile) : std::string("depthwise");
      case Path::Cudnn: break;
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
    return !p.transpose && p.groups == 1 && p.r == 1 && p.s == 1 && p.pad_h == 0 &&
           p.pad_w == 0 && p.stride_h == 1 && p.stride_w == 1;
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
  bool depthwise_applies() const {
    return !p.transpose && p.groups == p.c && p.c == p.k;
  }
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
      case Path::Cudnn: break;
    }
  }

  /// Builds the applicable paths, checks each with a trial run, times them and keeps the
  /// fastest (see the file comment). cuDNN's failure is only fatal when nothing else runs.
  void select(cudnnHandle_t h, cudaStream_t stream, bool honor_env = true) {
    const char* env = honor_env ? std::getenv("ANVIL_CUDA_CONV_PATH") : nullptr;
    set_dw_tiles();
    std::string forced = env ? env : "";
    if (forced.rfind("depthwise:", 0) == 0) {  // depthwise:N, one tiling (tests)
      const int t = std::atoi(forced.c_str() + 10);
      forced = "depthwise";
      if (std::find(dw_tiles.begin(), dw_tiles.end(), t) != dw_tiles.end()) dw_tiles = {t};
    }
    if (forced == "cudnn:unfused") {  // cuDNN's plain convolution + our epilogue (tests)
      forced = "cudnn";
      cudnn_unfused = true;
    }
    std::vector<Path> cands;  // depthwise: one entry per column tiling (dw_tiles)
    auto applies = [&](Path c) {
      switch (c) {
        case Path::Gemm: return gemm_applies();
        case Path::Im2col: return im2col_applies();
        case Path::Depthwise: return depthwise_applies();
        case Path::Cudnn: return true;
      }
      return false;
    };
    const Path fp = forced == "gemm"        ? Path::Gemm
                    : forced == "im2col"    ? Path::Im2col
                    : forced == "depthwise" ? Path::Depthwise
                                            : Path::Cudnn;
    if ((forced == "gemm" || forced == "im2col" || forced == "depthwise" || forced == "cudnn") &&
        applies(fp)) {
      cands.push_back(fp);
      if (fp == Path::Depthwise)  // every tiling of the kernel
        for (size_t i = 1; i < dw_tiles.size(); ++i) cands.push_back(fp);
    } else {
      if (gemm_applies()) cands.push_back(Path::Gemm);
      // A 1x1 convolution the plain gemm covers gains nothing from copying its input first.
      else if (im2col_applies()) cands.push_back(Path::Im2col);
      if (depthwise_applies())
        for (size_t i = 0; i < dw_tiles.size(); ++i) cands.push_back(Path::Depthwise);
      cands.push_back(Path::Cudnn);
    }
    // cuDNN fused and unfused (second Cudnn entry) where there is an epilogue to fuse.
    const bool epilogue = p.has_bias || p.relu || p.has_residual;
    if (!p.transpose && epilogue && cands.back() == Path::Cudnn && cands.size() > 1)
      cands.push_back(Path::Cudnn);
    if (cands.size() == 1 && cands[0] == Path::Cudnn) {
      path = Path::Cudnn;
      choose(h, stream);
      total_ws = ws_bytes;
      return;
    }

    // Scratch data: the weights' element count is the same in every layout.
    const DType dt = p.dtype;
    const size_t es = element_size(dt);
    const size_t xn = static_cast<size_t>(p.n) * p.c * p.h * p.w;
    const size_t yn = static_cast<size_t>(p.n) * p.k * p.oh * p.ow;
    const size_t wn = static_cast<size_t>(p.k) * (p.c / p.groups) * p.r * p.s;
    DeviceBuffer x = random_device(dt, xn, 5), w = random_device(dt, wn, 6);
    DeviceBuffer b = random_device(dt, static_cast<size_t>(p.k), 7);
    DeviceBuffer z = p.has_residual ? random_device(dt, yn, 8) : DeviceBuffer();
    DeviceBuffer y(yn * es);
    ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));

    cudaEvent_t e0 = nullptr, e1 = nullptr;
    ANVIL_CUDA_CHECK(cudaEventCreate(&e0));
    ANVIL_CUDA_CHECK(cudaEventCreate(&e1));
    struct Events {
      cudaEvent_t a, b;
      ~Events() {
        (void)cudaEventDestroy(a);
        (void)cudaEventDestroy(b);
      }
    } events{e0, e1};

    float best_ms = std::numeric_limits<float>::infinity();
    Path best = Path::Cudnn;
    int best_tile = 0;
    size_t best_ws = 0;
    size_t dw_next = 0;  // the next depthwise tiling to try
    int cudnn_seen = 0;  // Cudnn entries so far: the first fused, the second unfused
    bool best_unfused = false;
    std::string first_error;
    for (Path c : cands) {
      try {
        path = c;
        if (c == Path::Depthwise) dw_tile = dw_tiles[dw_next++];
        if (c == Path::Cudnn) cudnn_unfused = cudnn_seen++ > 0;
        size_t need = 0;
        if (c == Path::Cudnn) {
          choose(h, stream);
          need = ws_bytes;
        } else if (c == Path::Gemm || c == Path::Im2col) {
          col_k = c == Path::Im2col ? im2col_k() : p.c;
          make_gemm(col_k);
          col_bytes = c == Path::Im2col ? align_up(im2col_bytes(), 256) : 0;
          need = col_bytes + gemm->workspace_bytes();
        }
        DeviceBuffer ws(need);
        auto once = [&] {
          if (c == Path::Cudnn) {
            const cudnnStatus_t st = enqueue(h, stream, x.get(), w.get(), b.get(), z.get(),
                                             y.get(), ws.get());
            if (st != CUDNN_STATUS_SUCCESS)
              fail(std::string("cuDNN failed: ") + cudnnGetErrorString(st));
          } else {
            enqueue_own(stream, x.get(), w.get(), b.get(), z.get(), y.get(), ws.get());
          }
        };
        once();  // trial run (cuDNN's choose has run its own already)
        ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
        once();
        ANVIL_CUDA_CHECK(cudaEventRecord(e0, stream));
        once();
        ANVIL_CUDA_CHECK(cudaEventRecord(e1, stream));
        ANVIL_CUDA_CHECK(cudaEventSynchronize(e1));
        float ms = 0.f;
        ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        // About 1 ms of runs (3 to 50), twice, keeping the faster round: one short round
        // was seen to misorder candidates within a few percent of each other.
        const int reps = std::clamp(static_cast<int>(1.f / std::max(ms, 1e-3f)), 3, 50);
        float round_ms = std::numeric_limits<float>::infinity();
        for (int round = 0; round < 2; ++round) {
          ANVIL_CUDA_CHECK(cudaEventRecord(e0, stream));
          for (int i = 0; i < reps; ++i) once();
          ANVIL_CUDA_CHECK(cudaEventRecord(e1, stream));
          ANVIL_CUDA_CHECK(cudaEventSynchronize(e1));
          ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
          round_ms = std::min(round_ms, ms / static_cast<float>(reps));
        }
        ms = round_ms;
        if (ms < best_ms) {
          best_ms = ms;
          best = c;
          best_tile = dw_tile;
          best_unfused = cudnn_unfused;
          best_ws = need;
        }
      } catch (const Error& e) {
        (void)cudaStreamSynchronize(stream);
        (void)cudaGetLastError();
        if (first_error.empty()) first_error = e.what();
      }
    }
    if (!std::isfinite(best_ms)) {
      if (cands.size() > 1) fail("no convolution path runs this configuration: " + first_error);
      select(h, stream, false);  // the forced path failed: the normal choice
      return;
    }
    path = best;
    dw_tile = best_tile;
    total_ws = best_ws;
    if (path == Path::Cudnn && best_unfused != cudnn_unfused) {
      cudnn_unfused = best_unfused;  // the cuDNN state is the last one built: rebuild the best
      choose(h, stream);
      total_ws = ws_bytes;
    }
    if (path == Path::Im2col) {
      col_k = im2col_k();
      col_bytes = align_up(im2col_bytes(), 256);
      make_gemm(col_k);  // (no-op: the last one built)
    }
    if (path == Path::Gemm) {
      col_k = p.c;
      col_bytes = 0;
      make_gemm(col_k);
    }
    if (path != Path::Gemm && path != Path::Im2col) gemm.reset();
  }
};

ConvPlan::ConvPlan(const ConvParams& p, const std::string& name) : impl_(std::make_unique<Impl>()) {
  impl_->p = p;
  impl_->name = name;
  impl_->validate();
  try {
    impl_->make_descriptors();
    ScopedStream stream;
    impl_->select(cudnn_handle(), stream.s);
  } catch (const Error& e) {
    if (!e.node().empty()) throw;
    throw e.with_node(name);
  }
}

ConvPlan::~ConvPlan() = default;

ConvWeights ConvPlan::prepare(const Tensor& w, const Tensor* bias) const {
  const ConvParams& p = impl_->p;
  if (!w.defined() || !is_float(w.dtype()))
    impl_->fail("weights must be a float tensor", "W");
  // Graph layout: (K, C/g, R, S) for Conv, (C, K/g, R, S) for ConvTranspose; a 1-D
  // convolution's (.., .., S) is accepted with R = 1.
  const int64_t d0 = p.transpose ? p.c : p.k;
  const int64_t d1 = p.transpose ? p.k / p.groups : p.c / p.groups;
  const int64_t want = d0 * d1 * p.r * p.s;
  if (w.rank() < 3 || w.dim(0) != d0 || w.dim(1) != d1 || w.numel() != want)
    impl_->fail("weights of shape " + shape_str(w.shape()) + ", expected " +
                    shape_str({d0, d1, p.r, p.s}),
                "W");
  ConvWeights out;
  // To the storage dtype first (rounding once from the graph's values), then OIHW -> OHWI
  // (KRSC); the depthwise kernel reads (K, 1, R, S) as RSK: (R, S, K).
  if (impl_->path == Impl::Path::Depthwise)  // (K, 1, R, S) -> (R, S, 1, K) = (R, S, K)
    out.w = transpose(w.reshaped({d0, d1, p.r, p.s}).to(p.dtype), {2, 3, 1, 0})
                .reshaped({p.r, p.s, d0});
  else
    out.w = transpose(w.reshaped({d0, d1, p.r, p.s}).to(p.dtype), {0, 2, 3, 1});
  const int64_t rsc = static_cast<int64_t>(p.r) * p.s * d1;
  if (impl_->path == Impl::Path::Im2col && impl_->col_k != rsc) {
    // [K, R*S*C] rows zero-padded to the im2col rows' length.
    Tensor padded(p.dtype, {d0, impl_->col_k});
    const size_t es = element_size(p.dtype);
    std::memset(padded.raw(), 0, padded.nbytes());
    const auto* src = static_cast<const unsigned char*>(out.w.raw());
    auto* dst = static_cast<unsigned char*>(padded.raw());
    for (int64_t k = 0; k < d0; ++k)
      std::memcpy(dst + static_cast<size_t>(k * impl_->col_k) * es,
                  src + static_cast<size_t>(k * rsc) * es, static_cast<size_t>(rsc) * es);
    out.w = std::move(padded);
  }
  if (p.has_bias) {
    if (!bias || !bias->defined() || !is_float(bias->dtype()) || bias->numel() != p.k)
      impl_->fail("bias must be a float tensor of " + std::to_string(p.k) + " values", "B");
    out.bias = bias->reshaped({p.k}).to(p.dtype);
  }
  return out;
}

size_t ConvPlan::workspace_bytes() const { return impl_->total_ws; }

void ConvPlan::run(cudaStream_t stream, const void* x, const void* w, const void* bias,
                   const void* z, void* y, void* workspace) const {
  const Impl& m = *impl_;
  if (!x || !w || !y) m.fail("null input, weight or output pointer");
  if (m.p.has_bias && !bias) m.fail("the plan has a bias but none was given", "B");
  if (m.p.has_residual && !z) m.fail("the plan adds a residual but none was given");
  if (m.total_ws && !workspace)
    m.fail("no workspace given (needs " + std::to_string(m.total_ws) + " bytes)");
  try {
    if (m.path != Impl::Path::Cudnn) {
      m.enqueue_own(stream, x, w, bias, z, y, workspace);
      return;
    }
    cudnnHandle_t h = cudnn_handle();
    ANVIL_CUDNN_CHECK(cudnnSetStream(h, stream));
    const cudnnStatus_t st = m.enqueue(h, stream, x, w, bias, z, y, workspace);
    if (st != CUDNN_STATUS_SUCCESS)
      m.fail(std::string("cuDNN failed running ") + m.algo_name() + ": " +
             cudnnGetErrorString(st));
  } catch (const Error& e) {
    if (!e.node().empty()) throw;
    throw e.with_node(m.name);
  }
}

std::string ConvPlan::algo_name() const { return impl_->algo_name(); }

const ConvParams& ConvPlan::params() const { return impl_->p; }

}  // namespace anvil::cuda

#pragma GCC diagnostic pop
