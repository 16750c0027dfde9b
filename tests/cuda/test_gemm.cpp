// GemmPlan (gemm.h, cuBLASLt) and the plans' own bias/activation pass (gemm_epilogue.cu)
// against double-precision host references. Helpers: conv_gemm_test_util.h; ConvPlan is
// tested in test_conv_gemm.cpp.
//
#include "cuda/conv_gemm_test_util.h"

namespace anvil::cuda {
namespace {

// ---- gemm ------------------------------------------------------------------------------------

struct GemmCase {
  std::string label;
  GemmParams p;
  bool c_is_y = false;  // beta*C accumulated in place
  float amp = 1.f;      // input amplitude
};

void check_gemm(const GemmCase& gc, DType t) {
  SCOPED_TRACE(gc.label + " " + dtype_name(t));
  GemmParams p = gc.p;
  p.dtype = t;
  const int64_t M = p.m, N = p.n, K = p.k, B = p.batch;
  auto extent = [&](int64_t stride, int64_t one) {
    return static_cast<size_t>((B > 1 ? stride * (B - 1) : 0) + one);
  };
  const size_t an = extent(p.stride_a, M * K), bn = extent(p.stride_b, K * N),
               yn = extent(p.stride_y, M * N);
  const auto a = random_values(an, t, 21, gc.amp);
  const auto b = random_values(bn, t, 22, gc.amp);
  const auto bias = random_values(static_cast<size_t>(N), t, 23);
  const auto c = random_values(yn, t, 24);

  GemmPlan plan(p, "gemm_" + gc.label);
  DeviceBuffer da = to_device(a, t), dbm = to_device(b, t);
  DeviceBuffer dbias = p.has_bias ? to_device(bias, t) : DeviceBuffer();
  DeviceBuffer dc = p.has_c && !gc.c_is_y ? to_device(c, t) : DeviceBuffer();
  DeviceBuffer dy = gc.c_is_y ? to_device(c, t) : DeviceBuffer(yn * element_size(t));
  if (!gc.c_is_y) poison(dy);
  DeviceBuffer ws(plan.workspace_bytes());
  cudaStream_t stream = nullptr;
  ANVIL_CUDA_CHECK(cudaStreamCreate(&stream));
  plan.run(stream, da.get(), dbm.get(), dbias.get(), gc.c_is_y ? dy.get() : dc.get(), dy.get(),
           ws.get());
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(stream));
  ANVIL_CUDA_CHECK(cudaStreamDestroy(stream));
  const auto got_all = from_device(dy.get(), yn, t);

  // Reference; elements of y outside the batch matrices (gaps) must stay NaN.
  std::vector<float> got;
  std::vector<double> ref, scale;
  std::vector<bool> covered(yn, false);
  for (int64_t bi = 0; bi < B; ++bi)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0, s = 0;
        for (int64_t l = 0; l < K; ++l) {
          const double av = p.trans_a ? a[static_cast<size_t>(bi * p.stride_a + l * M + i)]
                                      : a[static_cast<size_t>(bi * p.stride_a + i * K + l)];
          const double bv = p.trans_b ? b[static_cast<size_t>(bi * p.stride_b + j * K + l)]
                                      : b[static_cast<size_t>(bi * p.stride_b + l * N + j)];
          acc += av * bv;
          s += std::fabs(av * bv);
        }
        const size_t yi = static_cast<size_t>(bi * p.stride_y + i * N + j);
        double v = p.alpha * acc;
        s *= std::fabs(p.alpha);
        if (p.has_bias)
          v += bias[static_cast<size_t>(j)], s += std::fabs(bias[static_cast<size_t>(j)]);
        if (p.has_c) v += p.beta * c[yi], s += std::fabs(p.beta * c[yi]);
        switch (p.epilogue) {
          case GemmParams::Epilogue::None:
            break;
          case GemmParams::Epilogue::Relu:
            v = std::max(v, 0.0);
            break;
          case GemmParams::Epilogue::Gelu:
            v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
            break;
          case GemmParams::Epilogue::GeluTanh:
            v = 0.5 * v *
                (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
            break;
        }
        if (p.epilogue == GemmParams::Epilogue::Gelu ||
            p.epilogue == GemmParams::Epilogue::GeluTanh)
          s *= 1.2;  // GELU's slope is below 1.13
        got.push_back(got_all[yi]);
        ref.push_back(v);
        scale.push_back(s);
        covered[yi] = true;
      }
  expect_close(got, ref, scale, t, true);
  if (!gc.c_is_y) {
    int touched = 0;
    for (size_t i = 0; i < yn; ++i)
      if (!covered[i] && !std::isnan(got_all[i])) ++touched;
    EXPECT_EQ(touched, 0) << "elements between the batch matrices were written";
  }
}

void check_gemm_all_types(const GemmCase& gc) {
  for (DType t : kTypes) check_gemm(gc, t);
}

GemmCase gemm_case(std::string label, int64_t m, int64_t n, int64_t k, bool ta, bool tb) {
  GemmCase gc;
  gc.label = std::move(label);
  gc.p.m = m, gc.p.n = n, gc.p.k = k, gc.p.trans_a = ta, gc.p.trans_b = tb;
  return gc;
}

TEST(CudaGemm, OddSizesAllTransposes) {
  SKIP_WITHOUT_GPU();
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      check_gemm_all_types(
          gemm_case("m37_n19_k5_ta" + std::to_string(ta) + "_tb" + std::to_string(tb), 37, 19, 5,
                    ta != 0, tb != 0));
}

TEST(CudaGemm, ClassifierBias) {
  SKIP_WITHOUT_GPU();
  // Fully connected layer: one row, weights stored (N, K) as ONNX Gemm transB=1.
  GemmCase gc = gemm_case("classifier", 1, 1000, 2048, false, true);
  gc.p.has_bias = true;
  check_gemm_all_types(gc);
}

TEST(CudaGemm, SingleColumn) {
  SKIP_WITHOUT_GPU();
  check_gemm_all_types(gemm_case("n1_ta", 64, 1, 33, true, false));
  check_gemm_all_types(gemm_case("n1", 64, 1, 33, false, false));
}

TEST(CudaGemm, BatchedBroadcastWeightsBiasReluWithGaps) {
  SKIP_WITHOUT_GPU();
  // B shared by every batch (stride 0); Y batches 3 elements apart (gaps stay untouched; the
  // odd stride also lowers the alignment the plan may assume).
  GemmCase gc = gemm_case("batched_b_stride0", 7, 9, 11, false, false);
  gc.p.batch = 3;
  gc.p.stride_a = 7 * 11;
  gc.p.stride_b = 0;
  gc.p.stride_y = 7 * 9 + 3;
  gc.p.has_bias = true;
  gc.p.epilogue = GemmParams::Epilogue::Relu;
  check_gemm_all_types(gc);
}

TEST(CudaGemm, BatchedBroadcastA) {
  SKIP_WITHOUT_GPU();
  GemmCase gc = gemm_case("batched_a_stride0", 12, 20, 16, false, true);
  gc.p.batch = 4;
  gc.p.stride_a = 0;
  gc.p.stride_b = 20 * 16;
  gc.p.stride_y = 12 * 20;
  check_gemm_all_types(gc);
}

TEST(CudaGemm, BiasGeluErf) {
  SKIP_WITHOUT_GPU();
  // Inputs of amplitude 1.5 so the pre-activations cover |x| ~ 1..4, where the erf and tanh
  // forms differ by up to 4.7e-4 (more than the f32 tolerance there).
  GemmCase gc = gemm_case("bias_gelu", 33, 40, 8, false, false);
  gc.p.has_bias = true;
  gc.p.epilogue = GemmParams::Epilogue::Gelu;
  gc.amp = 1.5f;
  check_gemm_all_types(gc);
  gc.p.has_bias = false;
  gc.label = "gelu";
  check_gemm_all_types(gc);
}

TEST(CudaGemm, BiasGeluTanh) {
  SKIP_WITHOUT_GPU();
  GemmCase gc = gemm_case("bias_gelu_tanh", 33, 40, 8, false, true);
  gc.p.has_bias = true;
  gc.p.epilogue = GemmParams::Epilogue::GeluTanh;
  gc.amp = 1.5f;
  check_gemm_all_types(gc);
}

TEST(CudaGemm, AlphaBetaCBiasRelu) {
  SKIP_WITHOUT_GPU();
  GemmCase gc = gemm_case("alpha_beta_c", 16, 24, 32, true, false);
  gc.p.batch = 2;
  gc.p.stride_a = 16 * 32;
  gc.p.stride_b = 24 * 32;
  gc.p.stride_y = 16 * 24;
  gc.p.alpha = 0.5f;
  gc.p.beta = 0.7f;
  gc.p.has_c = true;
  gc.p.has_bias = true;
  gc.p.epilogue = GemmParams::Epilogue::Relu;
  check_gemm_all_types(gc);
  gc.label = "alpha_beta_c_in_place";
  gc.c_is_y = true;
  check_gemm_all_types(gc);
}

TEST(CudaGemm, ErrorsNameTheNode) {
  SKIP_WITHOUT_GPU();
  GemmParams p;
  p.m = 4, p.n = 4, p.k = 4, p.batch = 2, p.stride_y = 0;
  try {
    GemmPlan plan(p, "gemm_bad");
    FAIL() << "overlapping output batches accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "gemm_bad");
  }
  GemmParams q;
  q.m = 4, q.n = 4, q.k = 4, q.has_bias = true;
  GemmPlan plan(q, "gemm_nobias");
  DeviceBuffer a(64), b(64), y(64), ws(plan.workspace_bytes());
  EXPECT_THROW(plan.run(nullptr, a.get(), b.get(), nullptr, nullptr, y.get(), ws.get()), Error);
  // Misaligned A (4 bytes past a 256-byte boundary).
  DeviceBuffer big(128), bias(16);
  EXPECT_THROW(plan.run(nullptr, static_cast<char*>(big.get()) + 4, b.get(), bias.get(), nullptr,
                        y.get(), ws.get()),
               Error);
}

// ---- the plans' own bias/activation pass (gemm_epilogue.cu) ------------------------------------

/// y[b][i][j] = act(y + bias[j]) on `batch` [m, n] matrices stride_y apart, at `offset`
/// elements past a 256-byte boundary (offset 1 breaks 16-byte alignment: the scalar kernel).
/// Bound: the kernel adds in float and rounds once to the storage dtype, so |got - ref| <=
/// u (|y| + |b|) (u = 2^-24 in f32) and the clamp, being 1-Lipschitz, keeps it; twice that is
/// asserted. The gaps between batches must keep their NaN poison.
void check_epilogue(DType t, int64_t batch, int64_t m, int64_t n, int64_t stride_y, int64_t offset,
                    bool bias, detail::GemmAct act, float relu_max) {
  SCOPED_TRACE(std::string(dtype_name(t)) + " batch " + std::to_string(batch) + " m " +
               std::to_string(m) + " n " + std::to_string(n) + " stride " +
               std::to_string(stride_y) + " offset " + std::to_string(offset) + " relu_max " +
               std::to_string(relu_max));
  const size_t span = static_cast<size_t>((batch - 1) * stride_y + m * n);
  const size_t total = span + static_cast<size_t>(offset);
  const auto yv = random_values(total, t, 21, 2.f);
  const auto bv = random_values(static_cast<size_t>(n), t, 22);
  const size_t es = element_size(t);
  DeviceBuffer dy = to_device(yv, t);
  // Poison the gaps (and the offset) so a write outside the matrices shows.
  std::vector<bool> inside(total, false);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t e = 0; e < m * n; ++e)
      inside[static_cast<size_t>(offset + b * stride_y + e)] = true;
  for (size_t i = 0; i < total; ++i)
    if (!inside[i]) ANVIL_CUDA_CHECK(cudaMemset(static_cast<char*>(dy.get()) + i * es, 0xFF, es));
  DeviceBuffer db = to_device(bv, t);
  void* y0 = static_cast<char*>(dy.get()) + static_cast<size_t>(offset) * es;
  detail::gemm_bias_act(t, y0, bias ? db.get() : nullptr, batch, m, n, stride_y, act, nullptr,
                        relu_max);
  const auto got = from_device(dy.get(), total, t);
  const double u = t == DType::f32 ? std::ldexp(1.0, -24) : unit_roundoff(t);
  int bad = 0;
  for (size_t i = 0; i < total; ++i) {
    if (!inside[i]) {
      if (!std::isnan(got[i]) && ++bad <= 5) ADD_FAILURE() << "gap element " << i << " written";
      continue;
    }
    const size_t j =
        (i - static_cast<size_t>(offset)) % static_cast<size_t>(stride_y) % static_cast<size_t>(n);
    double v = static_cast<double>(yv[i]) + (bias ? bv[j] : 0.0);
    const double s = std::fabs(yv[i]) + (bias ? std::fabs(bv[j]) : 0.0);
    if (act == detail::GemmAct::Relu) v = std::min(std::max(v, 0.0), static_cast<double>(relu_max));
    if (!(std::fabs(got[i] - v) <= 2 * u * s) && ++bad <= 5)
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", expected " << v;
  }
  EXPECT_EQ(bad, 0);
}

TEST(CudaGemmEpilogue, VectorizedAndScalarBiasClamp) {
  SKIP_WITHOUT_GPU();
  using detail::GemmAct;
  for (DType t : kTypes) {
    // 16-byte packs: n = 24 (6 packs of f32, 3 of halves), batches 8 elements apart.
    check_epilogue(t, 1, 37, 24, 37 * 24, 0, true, GemmAct::Relu, 0.75f);
    check_epilogue(t, 3, 5, 16, 5 * 16 + 8, 0, true, GemmAct::Relu, 0.75f);
    check_epilogue(t, 2, 9, 32, 9 * 32, 0, false, GemmAct::Relu, INFINITY);
    check_epilogue(t, 1, 11, 8, 11 * 8, 0, true, GemmAct::None, INFINITY);
    // Scalar: odd n, an odd batch stride, a pointer off 16-byte alignment.
    check_epilogue(t, 2, 6, 7, 6 * 7 + 3, 0, true, GemmAct::Relu, 0.5f);
    check_epilogue(t, 1, 13, 24, 13 * 24, 1, true, GemmAct::Relu, 0.5f);
    check_epilogue(t, 3, 4, 16, 4 * 16 + 1, 0, true, GemmAct::None, INFINITY);
  }
}

}  // namespace
}  // namespace anvil::cuda
