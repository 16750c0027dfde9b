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
// extra pass, so cuDNN unfused or the depthwise kernel win where it costs more.#include
// "backend/cuda/conv.h"

#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cuda/conv_impl.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace anvil::cuda {

void ConvPlan::Impl::choose(cudnnHandle_t h, cudaStream_t stream) {
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
              h, w_desc, x_desc, conv_desc, y_desc, static_cast<cudnnConvolutionBwdDataAlgo_t>(a),
              &sz) == CUDNN_STATUS_SUCCESS &&
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
         "convolution algorithm for this configuration (dtype " + dtype_name(dt) + ", group " +
         std::to_string(p.groups) + ", workspace cap 256 MiB)");
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
  if (!w.defined() || !is_float(w.dtype())) impl_->fail("weights must be a float tensor", "W");
  // Graph layout: (K, C/g, R, S) for Conv, (C, K/g, R, S) for ConvTranspose; a 1-D
  // convolution's (.., .., S) is accepted with R = 1.
  const int64_t d0 = p.transpose ? p.c : p.k;
  const int64_t d1 = p.transpose ? p.k / p.groups : p.c / p.groups;
  const int64_t want = d0 * d1 * p.r * p.s;
  if (w.rank() < 3 || w.dim(0) != d0 || w.dim(1) != d1 || w.numel() != want)
    impl_->fail(
        "weights of shape " + shape_str(w.shape()) + ", expected " + shape_str({d0, d1, p.r, p.s}),
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
      m.fail(std::string("cuDNN failed running ") + m.algo_name() + ": " + cudnnGetErrorString(st));
  } catch (const Error& e) {
    if (!e.node().empty()) throw;
    throw e.with_node(m.name);
  }
}

std::string ConvPlan::algo_name() const { return impl_->algo_name(); }

const ConvParams& ConvPlan::params() const { return impl_->p; }

}  // namespace anvil::cuda

#pragma GCC diagnostic pop
