// Informational timings (no pass/fail on speed): ResNet-50 / MobileNetV2 / GoogLeNet
// convolution shapes through ConvPlan (cuDNN, fused and plain) and, for 1x1 convolutions,
// through GemmPlan (cuBLASLt, NHWC 1x1 conv = [N*H*W, C] x [K, C]^T), in fp16, batch 1 and 64.
// Read the table off scripts/gpu_suite.sh's log: it guides which path the executor takes.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "anvil/tensor.h"
#include "backend/cuda/conv.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm.h"

namespace anvil::cuda {
namespace {

struct Shape2 {
  const char* name;
  int c, k, h, r, stride, groups;
};

DeviceBuffer random_half(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = float_to_half(d(g));
  DeviceBuffer b(n * 2);
  ANVIL_CUDA_CHECK(cudaMemcpy(b.get(), v.data(), n * 2, cudaMemcpyHostToDevice));
  return b;
}

template <class F>
double time_ms(cudaStream_t s, F&& f) {
  for (int i = 0; i < 5; ++i) f();
  cudaEvent_t a, b;
  ANVIL_CUDA_CHECK(cudaEventCreate(&a));
  ANVIL_CUDA_CHECK(cudaEventCreate(&b));
  ANVIL_CUDA_CHECK(cudaEventRecord(a, s));
  const int n = 50;
  for (int i = 0; i < n; ++i) f();
  ANVIL_CUDA_CHECK(cudaEventRecord(b, s));
  ANVIL_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  (void)cudaEventDestroy(a);
  (void)cudaEventDestroy(b);
  return ms / n;
}

TEST(CudaPerf, ConvAndGemmShapesReport) {
  if (device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const Shape2 shapes[] = {
      {"r50 l3 1x1 1024->256", 1024, 256, 14, 1, 1, 1}, {"r50 l3 1x1 256->1024", 256, 1024, 14, 1, 1, 1},
      {"r50 l1 1x1 64->256", 64, 256, 56, 1, 1, 1},     {"r50 l4 1x1 512->2048", 512, 2048, 7, 1, 1, 1},
      {"r50 l3 3x3 256", 256, 256, 14, 3, 1, 1},        {"r50 l1 3x3 64", 64, 64, 56, 3, 1, 1},
      {"r50 l2.0 3x3 s2 128", 128, 128, 56, 3, 2, 1},   {"r50 conv1 7x7 s2", 3, 64, 224, 7, 2, 1},
      {"mbv2 dw 3x3 144", 144, 144, 56, 3, 1, 144},     {"mbv2 dw 3x3 s2 96", 96, 96, 112, 3, 2, 96},
      {"mbv2 1x1 96->24", 96, 24, 56, 1, 1, 1},         {"gnet 1x1 832->384", 832, 384, 7, 1, 1, 1},
  };
  cudaStream_t s;
  ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  std::printf("%-24s %5s %10s %-34s %10s %-34s %10s\n", "shape", "batch", "fused ms", "algo",
              "plain ms", "algo", "gemm ms");
  for (int n : {1, 64}) {
    for (const auto& sh : shapes) {
      const int pad = sh.r / 2;
      const int oh = (sh.h + 2 * pad - sh.r) / sh.stride + 1;
      ConvParams p;
      p.n = n, p.c = sh.c, p.h = sh.h, p.w = sh.h, p.k = sh.k, p.r = sh.r, p.s = sh.r;
      p.oh = oh, p.ow = oh, p.pad_h = pad, p.pad_w = pad, p.stride_h = sh.stride,
      p.stride_w = sh.stride, p.groups = sh.groups, p.dtype = DType::f16;
      const size_t xs = static_cast<size_t>(n) * sh.c * sh.h * sh.h;
      const size_t ys = static_cast<size_t>(n) * sh.k * oh * oh;
      const size_t wsz = static_cast<size_t>(sh.k) * (sh.c / sh.groups) * sh.r * sh.r;
      DeviceBuffer x = random_half(xs, 1), w = random_half(wsz, 2), b = random_half(sh.k, 3);
      DeviceBuffer y(ys * 2);
      double t_fused = -1, t_plain = -1, t_gemm = -1;
      std::string a_fused, a_plain;
      try {
        ConvParams pf = p;
        pf.has_bias = true, pf.relu = true;
        ConvPlan plan(pf, sh.name);
        DeviceBuffer wsb(plan.workspace_bytes());
        t_fused = time_ms(s, [&] { plan.run(s, x.get(), w.get(), b.get(), nullptr, y.get(), wsb.get()); });
        a_fused = plan.algo_name();
      } catch (const std::exception& e) {
        a_fused = std::string("error: ") + e.what();
      }
      try {
        ConvPlan plan(p, sh.name);
        DeviceBuffer wsb(plan.workspace_bytes());
        t_plain = time_ms(s, [&] { plan.run(s, x.get(), w.get(), nullptr, nullptr, y.get(), wsb.get()); });
        a_plain = plan.algo_name();
      } catch (const std::exception& e) {
        a_plain = std::string("error: ") + e.what();
      }
      if (sh.r == 1 && sh.stride == 1 && sh.groups == 1) {
        GemmParams g;
        g.m = static_cast<int64_t>(n) * sh.h * sh.h, g.n = sh.k, g.k = sh.c;
        g.trans_b = true, g.dtype = DType::f16, g.has_bias = true;
        g.epilogue = GemmParams::Epilogue::Relu;
        GemmPlan gp(g, sh.name);
        DeviceBuffer wsb(gp.workspace_bytes());
        t_gemm = time_ms(s, [&] { gp.run(s, x.get(), w.get(), b.get(), nullptr, y.get(), wsb.get()); });
      }
      std::printf("%-24s %5d %10.4f %-34s %10.4f %-34s %10.4f\n", sh.name, n, t_fused,
                  a_fused.substr(0, 34).c_str(), t_plain, a_plain.substr(0, 34).c_str(), t_gemm);
    }
  }
  (void)cudaStreamDestroy(s);
}

}  // namespace
}  // namespace anvil::cuda
