// GemmPlan on cuBLASLt (see gemm.h).
//
// Row-major Y[M,N] = op(A) op(B) is column-major Y^T[N,M] = op(B)^T op(A)^T, so cuBLASLt's
// "A" is our B and its "B" is our A, with the transposes carried over unchanged:
//   our B [K,N] row-major = column-major N x K (ld N), op N; trans_b: [N,K] = col-major K x N
//   (ld K), op T. Our A [M,K] = col-major K x M (ld K), op N; trans_a: [K,M] = col-major M x K
//   (ld M), op T. D (and C) = col-major N x M (ld N).
// cuBLASLt's bias is a vector over D's rows, i.e. over our N: Y's columns, as gemm.h wants.
// Epilogues: BIAS, RELU(_BIAS), GELU(_BIAS) (tanh form) fused by cuBLASLt; the erf GELU, and
// any epilogue for which cuBLASLt offers no algorithm, run in gemm_epilogue.cu after it.
// Compute CUBLAS_COMPUTE_32F with float scale: f32 data uses plain fp32 (no TF32), f16/bf16
// data tensor cores with fp32 accumulation.
#include "backend/cuda/gemm.h"

#include <cublasLt.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm_epilogue.h"

namespace anvil::cuda {
namespace {

constexpr size_t kWorkspaceCap = size_t{32} << 20;
constexpr int kCandidates = 8;

cublasLtHandle_t lt_handle() {
  struct Handles {
    std::vector<cublasLtHandle_t> h;
    ~Handles() {
      for (cublasLtHandle_t x : h)
        if (x) (void)cublasLtDestroy(x);
    }
  };
  thread_local Handles hs;
  int dev = 0;
  ANVIL_CUDA_CHECK(cudaGetDevice(&dev));
  const size_t d = static_cast<size_t>(dev);
  if (d >= hs.h.size()) hs.h.resize(d + 1, nullptr);
  if (!hs.h[d]) ANVIL_CUBLAS_CHECK(cublasLtCreate(&hs.h[d]));
  return hs.h[d];
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32:
      return CUDA_R_32F;
    case DType::f16:
      return CUDA_R_16F;
    case DType::bf16:
      return CUDA_R_16BF;
    default:
      break;
  }
  throw Error(std::string("cuBLASLt gemm: unsupported dtype ") + dtype_name(t), {}, {}, "dtype");
}

/// Largest power of two (<= 16) dividing the byte offset between consecutive batch matrices.
uint32_t batch_alignment(int64_t batch, int64_t stride, size_t es) {
  uint32_t a = 16;
  if (batch > 1 && stride != 0) {
    const uint64_t bytes = static_cast<uint64_t>(stride) * es;
    while (a > 1 && bytes % a != 0) a /= 2;
  }
  return a;
}

}  // namespace

struct GemmPlan::Impl {
  GemmParams p;
  std::string name;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;  // cuBLASLt's A, B, C=D
  cublasLtMatmulAlgo_t algo{};
  size_t ws_bytes = 0;
  bool lt_bias = false;  // bias fused by cuBLASLt (its pointer is set per run)
  bool post_bias = false;
  detail::GemmAct post_act = detail::GemmAct::None;
  uint32_t align_a = 16, align_b = 16, align_y = 16;  // our A, B and Y/C
  mutable std::mutex mu;  // the bias pointer lives in `op`: one run sets it at a time

  ~Impl() {
    if (op) (void)cublasLtMatmulDescDestroy(op);
    if (la) (void)cublasLtMatrixLayoutDestroy(la);
    if (lb) (void)cublasLtMatrixLayoutDestroy(lb);
    if (ld) (void)cublasLtMatrixLayoutDestroy(ld);
  }

  [[noreturn]] void fail(const std::string& msg, const std::string& field = {}) const {
    throw Error("cuda gemm: " + msg, {}, name, field);
  }

  void validate() const {
    if (p.m < 1 || p.n < 1 || p.k < 1 || p.batch < 1) fail("sizes must be positive");
    if (p.dtype != DType::f32 && p.dtype != DType::f16 && p.dtype != DType::bf16)
      fail(std::string("dtype ") + dtype_name(p.dtype) + " (f32, f16 and bf16 are supported)");
    if (p.stride_a < 0 || p.stride_b < 0 || p.stride_y < 0) fail("negative batch stride");
    if (p.batch > 1 && p.stride_y < p.m * p.n)
      fail("output batch stride " + std::to_string(p.stride_y) + " overlaps the " +
           std::to_string(p.m) + "x" + std::to_string(p.n) + " results");
  }

  void make_layouts() {
    const cudaDataType_t t = cuda_type(p.dtype);
    const uint64_t m = static_cast<uint64_t>(p.m), n = static_cast<uint64_t>(p.n),
                   k = static_cast<uint64_t>(p.k);
    // cuBLASLt A = our B.
    if (!p.trans_b)
      ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, t, n, k, p.n));
    else
      ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, t, k, n, p.k));
    // cuBLASLt B = our A.
    if (!p.trans_a)
      ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, t, k, m, p.k));
    else
      ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, t, m, k, p.m));
    ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld, t, n, m, p.n));
    if (p.batch > 1) {
      const int32_t count = static_cast<int32_t>(p.batch);
      auto set_batch = [&](cublasLtMatrixLayout_t l, int64_t stride) {
        ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                            &count, sizeof(count)));
        ANVIL_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
            l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
      };
      set_batch(la, p.stride_b);
      set_batch(lb, p.stride_a);
      set_batch(ld, p.stride_y);
    }
    const size_t es = element_size(p.dtype);
    align_a = batch_alignment(p.batch, p.stride_a, es);
    align_b = batch_alignment(p.batch, p.stride_b, es);
    align_y = batch_alignment(p.batch, p.stride_y, es);
  }

  void make_op(cublasLtEpilogue_t epi, const void* bias_ptr) {
    if (op) (void)cublasLtMatmulDescDestroy(op);
    op = nullptr;
    ANVIL_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t tb = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    ANVIL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    ANVIL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    ANVIL_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (bias_ptr)  // its alignment informs the heuristic; runs set the real pointer
      ANVIL_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                        &bias_ptr, sizeof(bias_ptr)));
  }

  /// Enqueues the product (and the post kernel); returns cuBLASLt's status.
  cublasStatus_t enqueue(cublasLtHandle_t h, cudaStream_t stream, const void* a, const void* b,
                         const void* bias, const void* c, void* y, void* ws) const {
    const float alpha = p.alpha, beta = p.has_c ? p.beta : 0.f;
    const void* cptr = p.has_c ? c : y;
    cublasStatus_t st;
    if (lt_bias) {
      std::lock_guard<std::mutex> lock(mu);
      st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                          sizeof(bias));
      if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmul(h, op, &alpha, b, la, a, lb, &beta, cptr, ld, y, ld, &algo, ws,
                            ws_bytes, stream);
    } else {
      st = cublasLtMatmul(h, op, &alpha, b, la, a, lb, &beta, cptr, ld, y, ld, &algo, ws, ws_bytes,
                          stream);
    }
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (post_bias || post_act != detail::GemmAct::None)
      detail::gemm_bias_act(p.dtype, y, post_bias ? bias : nullptr, p.batch, p.m, p.n,
                            p.batch > 1 ? p.stride_y : 0, post_act, stream);
    return st;
  }

  /// Tries cuBLASLt's heuristic candidates for epilogue `epi` with a trial run each on
  /// scratch buffers misaligned exactly as the plan allows; keeps the first that runs.
  bool search(cublasLtHandle_t h, cudaStream_t stream, cublasLtEpilogue_t epi, bool with_bias) {
    const size_t es = element_size(p.dtype);
    auto extent = [&](int64_t stride, int64_t one) {
      return static_cast<size_t>((p.batch > 1 ? stride * (p.batch - 1) : 0) + one) * es;
    };
    const size_t a_bytes = extent(p.stride_a, p.m * p.k), b_bytes = extent(p.stride_b, p.k * p.n),
                 y_bytes = extent(p.stride_y, p.m * p.n);
    DeviceBuffer sa(a_bytes + 16), sb(b_bytes + 16), sy(y_bytes + 16),
        sc(p.has_c ? y_bytes + 16 : 0), sbias(static_cast<size_t>(p.n) * es + 16);
    ANVIL_CUDA_CHECK(cudaMemsetAsync(sa.get(), 0, sa.size(), stream));
    ANVIL_CUDA_CHECK(cudaMemsetAsync(sb.get(), 0, sb.size(), stream));
    if (p.has_c) ANVIL_CUDA_CHECK(cudaMemsetAsync(sc.get(), 0, sc.size(), stream));
    ANVIL_CUDA_CHECK(cudaMemsetAsync(sbias.get(), 0, sbias.size(), stream));
    auto at16 = [](const DeviceBuffer& d) { return static_cast<char*>(d.get()) + 16; };
    const void* bias_ptr = with_bias ? at16(sbias) : nullptr;
    make_op(epi, bias_ptr);

    cublasLtMatmulPreference_t pref = nullptr;
    ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    struct PrefGuard {
      cublasLtMatmulPreference_t p;
      ~PrefGuard() { (void)cublasLtMatmulPreferenceDestroy(p); }
    } guard{pref};
    const uint64_t cap = kWorkspaceCap;
    ANVIL_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &cap, sizeof(cap)));
    // cuBLASLt's A is our B, its B our A, C and D our Y.
    const uint32_t al[4] = {align_b, align_a, align_y, align_y};
    const cublasLtMatmulPreferenceAttributes_t which[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; i < 4; ++i)
      ANVIL_CUBLAS_CHECK(
          cublasLtMatmulPreferenceSetAttribute(pref, which[i], &al[i], sizeof(al[i])));

    cublasLtMatmulHeuristicResult_t res[kCandidates];
    std::memset(res, 0, sizeof(res));
    int got = 0;
    const cublasStatus_t hs =
        cublasLtMatmulAlgoGetHeuristic(h, op, la, lb, ld, ld, pref, kCandidates, res, &got);
    if (hs != CUBLAS_STATUS_SUCCESS || got == 0) return false;
    DeviceBuffer ws;
    for (int i = 0; i < got; ++i) {
      if (res[i].state != CUBLAS_STATUS_SUCCESS || res[i].workspaceSize > kWorkspaceCap) continue;
      if (ws.size() < res[i].workspaceSize) ws = DeviceBuffer(res[i].workspaceSize);
      algo = res[i].algo;
      ws_bytes = res[i].workspaceSize;
      const cublasStatus_t st = enqueue(h, stream, at16(sa), at16(sb), bias_ptr,
                                        p.has_c ? at16(sc) : nullptr, at16(sy), ws.get());
      const cudaError_t e = cudaStreamSynchronize(stream);
      if (st == CUBLAS_STATUS_SUCCESS && e == cudaSuccess) return true;
      if (e != cudaSuccess) (void)cudaGetLastError();
    }
    return false;
  }

  void choose(cublasLtHandle_t h, cudaStream_t stream) {
    using E = GemmParams::Epilogue;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    switch (p.epilogue) {
      case E::None:
        epi = p.has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        break;
      case E::Relu:
        epi = p.has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
        break;
      case E::GeluTanh:
        epi = p.has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
        break;
      case E::Gelu:  // cuBLASLt's GELU is the tanh form: the erf one runs after it
        epi = p.has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        post_act = detail::GemmAct::Gelu;
        break;
    }
    lt_bias = p.has_bias;
    if (search(h, stream, epi, p.has_bias)) return;
    if (epi != CUBLASLT_EPILOGUE_DEFAULT) {
      // No fused algorithm: plain product, then bias and activation in our own kernel.
      lt_bias = false;
      post_bias = p.has_bias;
      post_act = p.epilogue == E::Relu       ? detail::GemmAct::Relu
                 : p.epilogue == E::Gelu     ? detail::GemmAct::Gelu
                 : p.epilogue == E::GeluTanh ? detail::GemmAct::GeluTanh
                                             : detail::GemmAct::None;
      if (search(h, stream, CUBLASLT_EPILOGUE_DEFAULT, false)) return;
    }
    fail("cuBLASLt has no algorithm for this product (M=" + std::to_string(p.m) +
         ", N=" + std::to_string(p.n) + ", K=" + std::to_string(p.k) + ", batch " +
         std::to_string(p.batch) + ", dtype " + dtype_name(p.dtype) + ")");
  }
};

GemmPlan::GemmPlan(const GemmParams& p, const std::string& name) : impl_(std::make_unique<Impl>()) {
  impl_->p = p;
  impl_->name = name;
  impl_->validate();
  cudaStream_t stream = nullptr;
  try {
    impl_->make_layouts();
    ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    impl_->choose(lt_handle(), stream);
    ANVIL_CUDA_CHECK(cudaStreamDestroy(stream));
  } catch (const Error& e) {
    if (stream) (void)cudaStreamDestroy(stream);
    if (!e.node().empty()) throw;
    throw e.with_node(name);
  }
}

GemmPlan::~GemmPlan() = default;

size_t GemmPlan::workspace_bytes() const { return impl_->ws_bytes; }

void GemmPlan::run(cudaStream_t stream, const void* a, const void* b, const void* bias,
                   const void* c, void* y, void* workspace) const {
  const Impl& m = *impl_;
  auto aligned = [](const void* ptr, uint32_t al) {
    return reinterpret_cast<uintptr_t>(ptr) % al == 0;
  };
  if (!a || !b || !y) m.fail("null input or output pointer");
  if (m.p.has_bias && !bias) m.fail("the plan has a bias but none was given", "bias");
  if (m.p.has_c && !c) m.fail("the plan adds beta*C but no C was given", "C");
  if (m.ws_bytes && !workspace)
    m.fail("no workspace given (needs " + std::to_string(m.ws_bytes) + " bytes)");
  if (!aligned(a, m.align_a) || !aligned(b, m.align_b) || !aligned(y, m.align_y) ||
      (m.p.has_c && !aligned(c, m.align_y)) || (m.lt_bias && !aligned(bias, 16)))
    m.fail("misaligned device pointer (A, B, C, Y and bias need 16-byte alignment)");
  try {
    const cublasStatus_t st = m.enqueue(lt_handle(), stream, a, b, bias, c, y, workspace);
    if (st != CUBLAS_STATUS_SUCCESS)
      m.fail("cublasLtMatmul failed: status " + std::to_string(static_cast<int>(st)));
  } catch (const Error& e) {
    if (!e.node().empty()) throw;
    throw e.with_node(m.name);
  }
}

const GemmParams& GemmPlan::params() const { return impl_->p; }

}  // namespace anvil::cuda
