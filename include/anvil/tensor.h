// Tensor: a shape, a dtype and a (shared) buffer, owned or memory-mapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace anvil {

enum class DType : uint8_t { f32, f16, bf16, f64, i8, u8, i16, i32, i64, boolean };

/// Bytes per element.
size_t dtype_size(DType t);
/// "f32", "f16", ... (numpy-like names are in npy.h).
const char* dtype_name(DType t);
bool is_float(DType t);    // f32, f16, bf16, f64
bool is_integer(DType t);  // i8..i64, u8 (not bool)

using Shape = std::vector<int64_t>;

/// Number of elements; throws anvil::Error on negative dims or overflow.
int64_t shape_numel(const Shape& s);
/// "(1, 3, 224, 224)".
std::string shape_str(const Shape& s);

uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
uint16_t float_to_bf16(float f);  // round to nearest even
float bf16_to_float(uint16_t h);

/// A dense row-major tensor. Copies share the buffer (a handle); use clone() for a deep copy.
/// Buffers are 64-byte aligned and zero-initialized when Anvil allocates them.
class Tensor {
 public:
  Tensor() = default;
  /// Allocates a zero-filled tensor.
  Tensor(DType dtype, Shape shape);

  /// Copies `data` (nbytes of the shape) into a new tensor.
  static Tensor from_bytes(DType dtype, Shape shape, const void* data);
  /// Wraps memory owned elsewhere (e.g. a memory map); `keepalive` keeps it valid.
  static Tensor wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> keepalive);
  template <class T>
  static Tensor from_vector(Shape shape, const std::vector<T>& v);
  template <class T>
  static Tensor scalar(T v) {
    return from_vector<T>({}, std::vector<T>{v});
  }

  bool defined() const { return static_cast<bool>(holder_); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the back
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  /// Typed access; throws anvil::Error if T does not match dtype().
  template <class T>
  T* data();
  template <class T>
  const T* data() const;

  Tensor clone() const;
  /// Same buffer, new shape with the same number of elements.
  Tensor reshaped(Shape shape) const;
  /// Converted copy (or this tensor if already of that dtype).
  Tensor to(DType dtype) const;

  /// Values as double / int64 (any dtype), for small tensors: shapes, tests, folding.
  std::vector<double> to_doubles() const;
  std::vector<int64_t> to_int64s() const;
  /// Element i (flat index) as double / written from double, any dtype.
  double get(int64_t i) const;
  void set(int64_t i, double v);

 private:
  DType dtype_ = DType::f32;
  Shape shape_;
  int64_t numel_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<void> holder_;
};

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<int8_t>() {
  return DType::i8;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::u8;
}
template <>
constexpr DType dtype_of<int16_t>() {
  return DType::i16;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::boolean;
}

void check_dtype(DType have, DType want);      // throws anvil::Error
void check_numel(int64_t have, int64_t want);  // throws anvil::Error

template <class T>
T* Tensor::data() {
  check_dtype(dtype_, dtype_of<T>());
  return static_cast<T*>(data_);
}
template <class T>
const T* Tensor::data() const {
  check_dtype(dtype_, dtype_of<T>());
  return static_cast<const T*>(data_);
}
template <class T>
Tensor Tensor::from_vector(Shape shape, const std::vector<T>& v) {
  Tensor t(dtype_of<T>(), std::move(shape));
  check_numel(static_cast<int64_t>(v.size()), t.numel());
  for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = v[i];
  return t;
}

/// out = in transposed by perm (out.shape[i] = in.shape[perm[i]]).
Tensor transpose(const Tensor& in, const std::vector<int>& perm);

}  // namespace anvil
