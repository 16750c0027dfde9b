#include "anvil/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "anvil/error.h"

namespace anvil {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f16:
      return 2;
    case DType::bf16:
      return 2;
    case DType::f64:
      return 8;
    case DType::i8:
      return 1;
    case DType::u8:
      return 1;
    case DType::i16:
      return 2;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
    case DType::boolean:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::bf16:
      return "bf16";
    case DType::f64:
      return "f64";
    case DType::i8:
      return "i8";
    case DType::u8:
      return "u8";
    case DType::i16:
      return "i16";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
    case DType::boolean:
      return "bool";
  }
  return "?";
}

bool is_float(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
}
bool is_integer(DType t) { return !is_float(t) && t != DType::boolean; }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("negative dimension in shape " + shape_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("shape " + shape_str(s) + " has too many elements");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += std::to_string(s[i]);
  }
  if (s.size() == 1) r += ",";
  return r + ")";
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x7fffffu;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf/nan
  int32_t e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {                                                 // subnormal or zero
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) ++half_mant;
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into exponent: correct
  return static_cast<uint16_t>(h);
}

float half_to_float(uint16_t h) {
  uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      x = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // nan
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return static_cast<uint16_t>(x >> 16);
}

float bf16_to_float(uint16_t h) {
  uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

void check_dtype(DType have, DType want) {
  if (have != want)
    throw Error(std::string("tensor has dtype ") + dtype_name(have) + ", accessed as " +
                dtype_name(want));
}

void check_numel(int64_t have, int64_t want) {
  if (have != want)
    throw Error("expected " + std::to_string(want) + " values, got " + std::to_string(have));
}

namespace {
std::shared_ptr<void> allocate(size_t nbytes) {
  size_t n = (nbytes + 63) / 64 * 64;
  if (n == 0) n = 64;
  void* p = std::aligned_alloc(64, n);
  if (!p) throw Error("out of memory allocating " + std::to_string(nbytes) + " bytes");
  std::memset(p, 0, n);
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape)
    : dtype_(dtype), shape_(std::move(shape)), numel_(shape_numel(shape_)) {
  if (static_cast<uint64_t>(numel_) > (uint64_t{1} << 40) / dtype_size(dtype))
    throw Error("tensor of shape " + shape_str(shape_) + " is too large to allocate");
  holder_ = allocate(nbytes());
  data_ = holder_.get();
}

Tensor Tensor::from_bytes(DType dtype, Shape shape, const void* data) {
  Tensor t(dtype, std::move(shape));
  if (t.nbytes()) std::memcpy(t.data_, data, t.nbytes());
  return t;
}

Tensor Tensor::wrap(DType dtype, Shape shape, void* data, std::shared_ptr<void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.data_ = data;
  t.holder_ = keepalive ? std::move(keepalive) : std::shared_ptr<void>(data, [](void*) {});
  return t;
}

int64_t Tensor::dim(int i) const {
  int r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r)
    throw Error("dimension index " + std::to_string(i) + " out of range for shape " +
                shape_str(shape_));
  return shape_[static_cast<size_t>(i)];
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  return from_bytes(dtype_, shape_, data_);
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel_)
    throw Error("cannot reshape " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

double Tensor::get(int64_t i) const {
  switch (dtype_) {
    case DType::f32:
      return static_cast<const float*>(data_)[i];
    case DType::f16:
      return half_to_float(static_cast<const uint16_t*>(data_)[i]);
    case DType::bf16:
      return bf16_to_float(static_cast<const uint16_t*>(data_)[i]);
    case DType::f64:
      return static_cast<const double*>(data_)[i];
    case DType::i8:
      return static_cast<const int8_t*>(data_)[i];
    case DType::u8:
      return static_cast<const uint8_t*>(data_)[i];
    case DType::i16:
      return static_cast<const int16_t*>(data_)[i];
    case DType::i32:
      return static_cast<const int32_t*>(data_)[i];
    case DType::i64:
      return static_cast<double>(static_cast<const int64_t*>(data_)[i]);
    case DType::boolean:
      return static_cast<const uint8_t*>(data_)[i] ? 1.0 : 0.0;
  }
  return 0;
}

namespace {
template <class T>
T saturate_cast(double v) {
  if (v != v) return 0;
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest()))
    return std::numeric_limits<T>::lowest();
  if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}
}  // namespace

void Tensor::set(int64_t i, double v) {
  switch (dtype_) {
    case DType::f32:
      static_cast<float*>(data_)[i] = static_cast<float>(v);
      break;
    case DType::f16:
      static_cast<uint16_t*>(data_)[i] = float_to_half(static_cast<float>(v));
      break;
    case DType::bf16:
      static_cast<uint16_t*>(data_)[i] = float_to_bf16(static_cast<float>(v));
      break;
    case DType::f64:
      static_cast<double*>(data_)[i] = v;
      break;
    case DType::i8:
      static_cast<int8_t*>(data_)[i] = saturate_cast<int8_t>(v);
      break;
    case DType::u8:
      static_cast<uint8_t*>(data_)[i] = saturate_cast<uint8_t>(v);
      break;
    case DType::i16:
      static_cast<int16_t*>(data_)[i] = saturate_cast<int16_t>(v);
      break;
    case DType::i32:
      static_cast<int32_t*>(data_)[i] = saturate_cast<int32_t>(v);
      break;
    case DType::i64:
      static_cast<int64_t*>(data_)[i] = saturate_cast<int64_t>(v);
      break;
    case DType::boolean:
      static_cast<uint8_t*>(data_)[i] = v != 0 ? 1 : 0;
      break;
  }
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor out(dtype, shape_);
  if (dtype_ == DType::i64 && dtype == DType::i32) {
    for (int64_t i = 0; i < numel_; ++i)
      out.data<int32_t>()[i] = saturate_cast<int32_t>(static_cast<double>(data<int64_t>()[i]));
    return out;
  }
  if (dtype == DType::i64 && is_integer(dtype_)) {
    for (int64_t i = 0; i < numel_; ++i) out.data<int64_t>()[i] = static_cast<int64_t>(get(i));
    return out;
  }
  for (int64_t i = 0; i < numel_; ++i) out.set(i, get(i));
  return out;
}

std::vector<double> Tensor::to_doubles() const {
  std::vector<double> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[static_cast<size_t>(i)] = get(i);
  return v;
}

std::vector<int64_t> Tensor::to_int64s() const {
  std::vector<int64_t> v(static_cast<size_t>(numel_));
  if (dtype_ == DType::i64) {
    if (numel_) std::memcpy(v.data(), data_, nbytes());
    return v;
  }
  for (int64_t i = 0; i < numel_; ++i) v[static_cast<size_t>(i)] = static_cast<int64_t>(get(i));
  return v;
}

Tensor transpose(const Tensor& in, const std::vector<int>& perm) {
  const int r = in.rank();
  if (static_cast<int>(perm.size()) != r)
    throw Error("transpose: permutation of size " + std::to_string(perm.size()) +
                " for a tensor of rank " + std::to_string(r));
  std::vector<bool> seen(static_cast<size_t>(r), false);
  Shape out_shape(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) {
    int p = perm[static_cast<size_t>(i)];
    if (p < 0 || p >= r || seen[static_cast<size_t>(p)])
      throw Error("transpose: invalid permutation");
    seen[static_cast<size_t>(p)] = true;
    out_shape[static_cast<size_t>(i)] = in.shape()[static_cast<size_t>(p)];
  }
  Tensor out(in.dtype(), out_shape);
  if (in.numel() == 0) return out;
  // Strides of the input, in elements.
  std::vector<int64_t> in_stride(static_cast<size_t>(r), 1);
  for (int i = r - 2; i >= 0; --i)
    in_stride[static_cast<size_t>(i)] =
        in_stride[static_cast<size_t>(i) + 1] * in.shape()[static_cast<size_t>(i) + 1];
  std::vector<int64_t> src_stride(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i)
    src_stride[static_cast<size_t>(i)] =
        in_stride[static_cast<size_t>(perm[static_cast<size_t>(i)])];
  const size_t es = dtype_size(in.dtype());
  const auto* src = static_cast<const unsigned char*>(in.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  int64_t src_off = 0;
  for (int64_t o = 0; o < out.numel(); ++o) {
    std::memcpy(dst + static_cast<size_t>(o) * es, src + static_cast<size_t>(src_off) * es, es);
    for (int d = r - 1; d >= 0; --d) {
      auto ud = static_cast<size_t>(d);
      if (++idx[ud] < out_shape[ud]) {
        src_off += src_stride[ud];
        break;
      }
      src_off -= src_stride[ud] * (out_shape[ud] - 1);
      idx[ud] = 0;
    }
  }
  return out;
}

}  // namespace anvil
