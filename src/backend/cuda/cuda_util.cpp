#include "backend/cuda/cuda_util.h"

#include <cublasLt.h>
#include <cudnn.h>

namespace anvil::cuda {

void check_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  throw Error(std::string("cuda: ") + what + " failed: " + cudaGetErrorName(e) + " (" +
                  cudaGetErrorString(e) + ")",
              {}, {}, "cuda");
}

void check_cudnn(int status, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw Error(std::string("cuDNN: ") + what +
                  " failed: " + cudnnGetErrorString(static_cast<cudnnStatus_t>(status)),
              {}, {}, "cudnn");
}

void check_cublas(int status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error(std::string("cuBLAS: ") + what + " failed: status " + std::to_string(status), {}, {},
              "cublas");
}

size_t element_size(DType t) {
  switch (t) {
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::i16:
      return 2;
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::i64:
      return 8;
    case DType::u8:
    case DType::i8:
    case DType::boolean:
      return 1;
    default:
      break;
  }
  throw Error(std::string("cuda: no device storage for dtype ") + dtype_name(t), {}, {}, "dtype");
}

DeviceBuffer::DeviceBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;
  cudaError_t e = cudaMalloc(&p_, bytes);
  if (e != cudaSuccess) {
    p_ = nullptr;
    (void)cudaGetLastError();
    throw Error("cuda: cannot allocate " + std::to_string(bytes) +
                    " bytes of device memory: " + cudaGetErrorString(e),
                {}, {}, "cuda");
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (p_) (void)cudaFree(p_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (p_) (void)cudaFree(p_);
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}

DeviceBuffer upload(const Tensor& t) {
  const size_t bytes = static_cast<size_t>(t.numel()) * element_size(t.dtype());
  DeviceBuffer b(bytes);
  if (bytes) ANVIL_CUDA_CHECK(cudaMemcpy(b.get(), t.raw(), bytes, cudaMemcpyHostToDevice));
  return b;
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace anvil::cuda
