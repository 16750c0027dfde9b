// Small helpers shared by the cuda backend (src/backend/cuda/): error checks that throw
// anvil::Error naming the call, and an owning device buffer. Host-compilable (no kernels).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "anvil/error.h"
#include "anvil/tensor.h"

namespace anvil::cuda {

/// Throws anvil::Error("cuda: <what> failed: <cuda error string>") when `e` is not success.
void check_cuda(cudaError_t e, const char* what);
/// Same for cuDNN / cuBLAS status codes (int to keep their headers out of this one).
void check_cudnn(int status, const char* what);
void check_cublas(int status, const char* what);

#define ANVIL_CUDA_CHECK(call) ::anvil::cuda::check_cuda((call), #call)
#define ANVIL_CUDNN_CHECK(call) ::anvil::cuda::check_cudnn(static_cast<int>(call), #call)
#define ANVIL_CUBLAS_CHECK(call) ::anvil::cuda::check_cublas(static_cast<int>(call), #call)

/// Bytes per element of the dtypes the cuda backend stores (f32, f16, bf16, i32, i64, u8,
/// i8, bool); throws for others.
size_t element_size(DType t);

/// Owning cudaMalloc'd buffer (move-only). Allocation failure throws anvil::Error with the size.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

/// Uploads a host tensor (synchronously) into a new device buffer.
DeviceBuffer upload(const Tensor& t);

/// Number of CUDA devices, 0 when there is none or no driver (never throws).
int device_count();

}  // namespace anvil::cuda
