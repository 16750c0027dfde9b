// Informational timings (no pass/fail on speed): ResNet-50 / MobileNetV2 / GoogLeNet
// convolution shapes through ConvPlan in fp16, batch 1 and 64: with bias + ReLU as the plan
// chooses it ("auto": the fastest of gemm / im2col+gemm / depthwise / cuDNN, see conv.cpp),
// the same forced onto cuDNN (ANVIL_CUDA_CONV_PATH=cudnn, the previous behaviour), and
// without epilogue (plain, auto). Read the table off scripts/gpu_suite.sh's log.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "anvil/tensor.h"
#include "backend/cuda/conv.h"
#include "backend/cuda/cuda_util.h"

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
      {"r50 l3 1x1 1024->256", 1024, 256, 14, 1, 1, 1},
      {"r50 l3 1x1 256->1024", 256, 1024, 14, 1, 1, 1},
      {"r50 l1 1x1 64->256", 64, 256, 56, 1, 1, 1},
      {"r50 l4 1x1 512->2048", 512, 2048, 7, 1, 1, 1},
      {"r50 l3 3x3 256", 256, 256, 14, 3, 1, 1},
      {"r50 l1 3x3 64", 64, 64, 56, 3, 1, 1},
      {"r50 l2.0 3x3 s2 128", 128, 128, 56, 3, 2, 1},
      {"r50 conv1 7x7 s2", 3, 64, 224, 7, 2, 1},
      {"mbv2 dw 3x3 144", 144, 144, 56, 3, 1, 144},
      {"mbv2 dw 3x3 s2 96", 96, 96, 112, 3, 2, 96},
      {"mbv2 1x1 96->24", 96, 24, 56, 1, 1, 1},
      {"gnet 1x1 832->384", 832, 384, 7, 1, 1, 1},
  };
  cudaStream_t s;
  ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  std::printf("%-24s %5s %9s %-22s %9s %-34s %9s %-22s\n", "shape", "batch", "auto ms", "algo",
              "cudnn ms", "algo", "plain ms", "algo");
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
      // ms and algo of one plan (bias + ReLU when `fused`), path forced when `path` is set.
      auto measure = [&](bool fused, const char* path, double& ms, std::string& algo) {
        if (path)
          setenv("ANVIL_CUDA_CONV_PATH", path, 1);
        else
          unsetenv("ANVIL_CUDA_CONV_PATH");
        try {
          ConvParams q = p;
          q.has_bias = fused, q.relu = fused;
          ConvPlan plan(q, sh.name);
          DeviceBuffer wsb(plan.workspace_bytes());
          ms = time_ms(s, [&] {
            plan.run(s, x.get(), w.get(), fused ? b.get() : nullptr, nullptr, y.get(), wsb.get());
          });
          algo = plan.algo_name();
        } catch (const std::exception& e) {
          algo = std::string("error: ") + e.what();
        }
        unsetenv("ANVIL_CUDA_CONV_PATH");
      };
      double t_auto = -1, t_cudnn = -1, t_plain = -1;
      std::string a_auto, a_cudnn, a_plain;
      measure(true, nullptr, t_auto, a_auto);
      measure(true, "cudnn", t_cudnn, a_cudnn);
      measure(false, nullptr, t_plain, a_plain);
      std::printf("%-24s %5d %9.4f %-22s %9.4f %-34s %9.4f %-22s\n", sh.name, n, t_auto,
                  a_auto.substr(0, 22).c_str(), t_cudnn, a_cudnn.substr(0, 34).c_str(), t_plain,
                  a_plain.substr(0, 22).c_str());
    }
  }
  (void)cudaStreamDestroy(s);
}

}  // namespace
}  // namespace anvil::cuda
