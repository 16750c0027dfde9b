// Helpers shared by the elementwise kernel tests (test_kernels_elementwise.cpp,
// test_kernels_copy.cpp): host storage of the float types, device buffers, tolerances,
// random inputs, broadcast strides, and the 64-bit index test hook.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/tensor.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/kernels.h"

namespace anvil::cuda::test_hooks {
void force_index64(bool on);  // defined in kernels_elementwise.cu
}

namespace anvil::cuda {
namespace {

#define SKIP_WITHOUT_GPU()                                                    \
  do {                                                                        \
    if (::anvil::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

constexpr double kAtol = 1e-7;

inline double rtol(DType t) {
  switch (t) {
    case DType::f16:
      return std::ldexp(1.0, -11) + 1e-5;
    case DType::bf16:
      return std::ldexp(1.0, -8) + 1e-5;
    default:
      return 1e-5;
  }
}

// ---- host storage ---------------------------------------------------------------------------

inline std::vector<uint8_t> encode(DType t, const std::vector<double>& v) {
  const size_t es = element_size(t);
  std::vector<uint8_t> out(v.size() * es);
  for (size_t i = 0; i < v.size(); ++i) {
    uint8_t* p = out.data() + i * es;
    switch (t) {
      case DType::f32: {
        float f = static_cast<float>(v[i]);
        std::memcpy(p, &f, 4);
        break;
      }
      case DType::f16: {
        uint16_t h = float_to_half(static_cast<float>(v[i]));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::bf16: {
        uint16_t h = float_to_bf16(static_cast<float>(v[i]));
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::i32: {
        int32_t x = static_cast<int32_t>(v[i]);
        std::memcpy(p, &x, 4);
        break;
      }
      case DType::i64: {
        int64_t x = static_cast<int64_t>(v[i]);
        std::memcpy(p, &x, 8);
        break;
      }
      case DType::i8: {
        int8_t x = static_cast<int8_t>(v[i]);
        std::memcpy(p, &x, 1);
        break;
      }
      case DType::u8:
      case DType::boolean:
        *p = static_cast<uint8_t>(v[i]);
        break;
      default:
        ADD_FAILURE() << "encode: dtype";
        break;
    }
  }
  return out;
}

inline std::vector<double> decode(DType t, const std::vector<uint8_t>& b) {
  const size_t es = element_size(t);
  std::vector<double> out(b.size() / es);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* p = b.data() + i * es;
    switch (t) {
      case DType::f32: {
        float f;
        std::memcpy(&f, p, 4);
        out[i] = f;
        break;
      }
      case DType::f16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        out[i] = half_to_float(h);
        break;
      }
      case DType::bf16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        out[i] = bf16_to_float(h);
        break;
      }
      case DType::i32: {
        int32_t x;
        std::memcpy(&x, p, 4);
        out[i] = x;
        break;
      }
      case DType::i64: {
        int64_t x;
        std::memcpy(&x, p, 8);
        out[i] = static_cast<double>(x);
        break;
      }
      case DType::i8: {
        int8_t x;
        std::memcpy(&x, p, 1);
        out[i] = x;
        break;
      }
      case DType::u8:
      case DType::boolean:
        out[i] = *p;
        break;
      default:
        ADD_FAILURE() << "decode: dtype";
        break;
    }
  }
  return out;
}

// v rounded to dtype t (exactly representable afterwards).
inline std::vector<double> rounded(DType t, const std::vector<double>& v) {
  return decode(t, encode(t, v));
}

inline DeviceBuffer upload_bytes(const std::vector<uint8_t>& b, size_t extra = 0) {
  DeviceBuffer d(b.size() + extra);
  if (!b.empty()) ANVIL_CUDA_CHECK(cudaMemcpy(d.get(), b.data(), b.size(), cudaMemcpyHostToDevice));
  return d;
}

inline std::vector<uint8_t> download_bytes(const void* p, size_t bytes) {
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint8_t> b(bytes);
  if (bytes) ANVIL_CUDA_CHECK(cudaMemcpy(b.data(), p, bytes, cudaMemcpyDeviceToHost));
  return b;
}

inline void poison(void* p, size_t bytes) { ANVIL_CUDA_CHECK(cudaMemset(p, 0xFF, bytes)); }

template <class T>
DeviceBuffer upload_vec(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return upload_bytes(b);
}

template <class T>
std::vector<T> download_vec(const void* p, size_t n) {
  std::vector<uint8_t> b = download_bytes(p, n * sizeof(T));
  std::vector<T> v(n);
  if (n) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

inline bool close(double got, double want, DType t) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  if (std::isnan(got)) return false;
  return std::fabs(got - want) <= rtol(t) * std::fabs(want) + kAtol;
}

inline void expect_close(const std::vector<double>& got, const std::vector<double>& want, DType t,
                         const std::string& what, const std::vector<double>* inputs = nullptr) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (close(got[i], want[i], t)) continue;
    if (bad++ < 5)
      ADD_FAILURE() << what << " [" << dtype_name(t) << "] element " << i << ": got " << got[i]
                    << ", want " << want[i]
                    << (inputs ? " (x = " + std::to_string((*inputs)[i]) + ")" : std::string());
  }
  EXPECT_EQ(bad, 0) << what << " [" << dtype_name(t) << "]: " << bad << " of " << got.size()
                    << " elements off";
}

inline std::vector<double> random_vec(size_t n, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

const DType kFloatTypes[] = {DType::f32, DType::f16, DType::bf16};

struct Index64Guard {
  Index64Guard() { test_hooks::force_index64(true); }
  ~Index64Guard() { test_hooks::force_index64(false); }
};

inline Shape broadcast_shape(const Shape& a, const Shape& b) {
  Shape o(a.size());
  for (size_t i = 0; i < a.size(); ++i) o[i] = std::max(a[i], b[i]);
  return o;
}

inline std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// Per output dim: the input's element stride, 0 where it broadcasts (same rank as out).
inline Broadcast make_broadcast(const Shape& a, const Shape& b) {
  Broadcast d;
  const Shape o = broadcast_shape(a, b);
  d.rank = static_cast<int>(o.size());
  const auto sa = contiguous_strides(a), sb = contiguous_strides(b);
  for (int i = 0; i < d.rank; ++i) {
    d.shape[i] = o[i];
    d.a_stride[i] = a[i] == o[i] ? sa[i] : 0;
    d.b_stride[i] = b[i] == o[i] ? sb[i] : 0;
  }
  return d;
}

// out[i] = post(op(a, b)) by explicit multi-index loops.

}  // namespace
}  // namespace anvil::cuda
