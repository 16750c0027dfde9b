// Helpers shared by the ConvPlan and GemmPlan tests (test_conv_gemm.cpp, test_gemm.cpp):
// rounding to the storage types, device upload / download, poison, tolerances.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/tensor.h"
#include "backend/cuda/conv.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemm_epilogue.h"

namespace anvil::cuda {
namespace {

#define SKIP_WITHOUT_GPU()                                     \
  do {                                                         \
    if (device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

const DType kTypes[] = {DType::f32, DType::f16, DType::bf16};

inline float round_to(DType t, float v) {
  if (t == DType::f16) return half_to_float(float_to_half(v));
  if (t == DType::bf16) return bf16_to_float(float_to_bf16(v));
  return v;
}

inline double unit_roundoff(DType t) {
  return t == DType::f16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
}

inline std::vector<float> random_values(size_t n, DType t, uint32_t seed, float amp = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-amp, amp);
  std::vector<float> v(n);
  for (auto& x : v) x = round_to(t, d(gen));
  return v;
}

inline DeviceBuffer to_device(const std::vector<float>& v, DType t) {
  Tensor f = Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
  return upload(f.to(t));
}

inline std::vector<float> from_device(const void* p, size_t n, DType t) {
  Tensor d(t, {static_cast<int64_t>(n)});
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
  ANVIL_CUDA_CHECK(cudaMemcpy(d.raw(), p, d.nbytes(), cudaMemcpyDeviceToHost));
  Tensor f = d.to(DType::f32);
  const float* q = f.data<float>();
  return std::vector<float>(q, q + n);
}

inline void poison(const DeviceBuffer& b) { ANVIL_CUDA_CHECK(cudaMemset(b.get(), 0xFF, b.size())); }

/// The allowed error for an output with reference `ref` and term scale `s`.
inline double tolerance(DType t, double ref, double s, bool gemm) {
  if (t == DType::f32)
    return gemm ? 2e-5 * std::fabs(ref) + 1e-5 * s : 1e-4 * std::fabs(ref) + 2e-5 * s;
  return 4.0 * unit_roundoff(t) * s;
}

/// Compares; reports the first few mismatches and their count.
inline void expect_close(const std::vector<float>& got, const std::vector<double>& ref,
                         const std::vector<double>& scale, DType t, bool gemm) {
  ASSERT_EQ(got.size(), ref.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = tolerance(t, ref[i], scale[i], gemm);
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!(err <= tol)) {  // NaN (unwritten) fails too
      if (++bad <= 5)
        ADD_FAILURE() << "element " << i << ": got " << got[i] << ", expected " << ref[i]
                      << " (tolerance " << tol << ")";
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << got.size() << " elements off";
}

}  // namespace
}  // namespace anvil::cuda
