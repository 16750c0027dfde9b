// Helpers shared by the NN kernel tests (test_kernels_nn.cpp, test_kernels_rows.cpp): host
// storage of the float types, device arrays with poisoned margins, tolerances.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/session.h"
#include "anvil/tensor.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/kernels.h"

namespace anvil::cuda {
namespace {

#define SKIP_WITHOUT_GPU()                                                    \
  do {                                                                        \
    if (::anvil::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

const DType kTypes[] = {DType::f32, DType::f16, DType::bf16};
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

inline size_t esize(DType dt) { return dt == DType::f32 ? 4 : 2; }

inline std::vector<uint8_t> encode(DType dt, const std::vector<double>& v) {
  std::vector<uint8_t> b(v.size() * esize(dt));
  for (size_t i = 0; i < v.size(); ++i) {
    const auto f = static_cast<float>(v[i]);
    if (dt == DType::f32) {
      std::memcpy(&b[i * 4], &f, 4);
    } else {
      const uint16_t h = dt == DType::f16 ? float_to_half(f) : float_to_bf16(f);
      std::memcpy(&b[i * 2], &h, 2);
    }
  }
  return b;
}

inline std::vector<double> decode(DType dt, const std::vector<uint8_t>& b) {
  std::vector<double> v(b.size() / esize(dt));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DType::f32) {
      float f;
      std::memcpy(&f, &b[i * 4], 4);
      v[i] = f;
    } else {
      uint16_t h;
      std::memcpy(&h, &b[i * 2], 2);
      v[i] = dt == DType::f16 ? half_to_float(h) : bf16_to_float(h);
    }
  }
  return v;
}

/// Random values in [lo, hi) rounded to dt (what the device will read).
inline std::vector<double> random_values(DType dt, size_t n, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return decode(dt, encode(dt, v));
}

/// A device array of n elements of dt starting `offset` elements into its allocation (offset 1
/// makes the pointer misaligned for 16-byte packs).
struct DevArray {
  DeviceBuffer buf;
  DType dt = DType::f32;
  size_t n = 0, offset = 0;
  void* ptr() const { return static_cast<char*>(buf.get()) + offset * esize(dt); }
};

inline DevArray upload_values(DType dt, const std::vector<double>& v, size_t offset = 0) {
  DevArray a{DeviceBuffer((v.size() + offset + 8) * esize(dt)), dt, v.size(), offset};
  const auto b = encode(dt, v);
  if (!b.empty()) ANVIL_CUDA_CHECK(cudaMemcpy(a.ptr(), b.data(), b.size(), cudaMemcpyHostToDevice));
  return a;
}

/// An output array filled with `poison` (NaN by default).
inline DevArray poisoned(DType dt, size_t n, size_t offset = 0, double poison = kNaN) {
  return upload_values(dt, std::vector<double>(n, poison), offset);
}

inline std::vector<double> download(const DevArray& a) {
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint8_t> b(a.n * esize(a.dt));
  if (!b.empty()) ANVIL_CUDA_CHECK(cudaMemcpy(b.data(), a.ptr(), b.size(), cudaMemcpyDeviceToHost));
  return decode(a.dt, b);
}

inline double unit_roundoff(DType dt) {
  return dt == DType::f32 ? 0.0 : dt == DType::f16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
}

struct Tol {
  double rel = 0, abs = 0;
};
/// The f32 tolerance `t` widened by one rounding of the result to dt (see the file comment).
inline Tol for_dtype(DType dt, Tol t) {
  if (dt == DType::f32) return t;
  return {t.rel + unit_roundoff(dt), t.abs + std::ldexp(1.0, -25)};
}
const Tol kExact{0, 0};

/// Element-by-element comparison; NaN matches only NaN, infinities must be equal.
inline void expect_close(const std::vector<double>& got, const std::vector<double>& want, Tol tol,
                         const std::string& what,
                         const std::vector<double>* abs_per_element = nullptr) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok;
    if (std::isnan(w))
      ok = std::isnan(g);
    else if (std::isinf(w) || std::isinf(g))
      ok = g == w;
    else {
      const double a = tol.abs + (abs_per_element ? (*abs_per_element)[i] : 0.0);
      ok = std::abs(g - w) <= tol.rel * std::abs(w) + a;  // false for NaN g
    }
    if (!ok && bad++ < 5) first << "\n  [" << i << "] got " << g << " want " << w;
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " differ" << first.str();
}

inline std::string dt_str(DType dt) { return dtype_name(dt); }

}  // namespace
}  // namespace anvil::cuda
