// Small helpers shared by the reference op files (elementwise, shape, tensor, index, ...):
// exact integer loads/stores, raw bytes, axis normalization, checks that throw through the
// op's context.
// Private to the library (src/).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "anvil/tensor.h"
#include "core/onnx_dtype.h"

namespace anvil::ref {

/// Element i as int64, exactly for integer and bool dtypes (floats truncate, saturating;
/// NaN gives 0).
inline int64_t load_int(const Tensor& t, int64_t i) {
  const void* p = t.raw();
  switch (t.dtype()) {
    case DType::i8:
      return static_cast<const int8_t*>(p)[i];
    case DType::u8:
      return static_cast<const uint8_t*>(p)[i];
    case DType::i16:
      return static_cast<const int16_t*>(p)[i];
    case DType::i32:
      return static_cast<const int32_t*>(p)[i];
    case DType::i64:
      return static_cast<const int64_t*>(p)[i];
    case DType::boolean:
      return static_cast<const uint8_t*>(p)[i] != 0;
    default: {
      double v = t.get(i);
      if (v != v) return 0;
      if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
      if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
      return static_cast<int64_t>(v);
    }
  }
}

/// Stores v into element i: integer dtypes wrap around like a C/numpy cast, bool stores
/// v != 0, floats round.
inline void store_int(Tensor& t, int64_t i, int64_t v) {
  void* p = t.raw();
  switch (t.dtype()) {
    case DType::i8:
      static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v);
      break;
    case DType::u8:
      static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v);
      break;
    case DType::i16:
      static_cast<int16_t*>(p)[i] = static_cast<int16_t>(v);
      break;
    case DType::i32:
      static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v);
      break;
    case DType::i64:
      static_cast<int64_t*>(p)[i] = v;
      break;
    case DType::boolean:
      static_cast<uint8_t*>(p)[i] = v != 0 ? 1 : 0;
      break;
    default:
      t.set(i, static_cast<double>(v));
      break;
  }
}

/// Saturating double -> int64 (NaN -> 0), truncating toward zero.
inline int64_t double_to_int(double v) {
  if (v != v) return 0;
  if (v <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  if (v >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(v);
}

/// Copies element si of src to element di of dst (same dtype: raw bytes).
inline void copy_elem(Tensor& dst, int64_t di, const Tensor& src, int64_t si) {
  const size_t es = dtype_size(dst.dtype());
  std::memcpy(static_cast<unsigned char*>(dst.raw()) + static_cast<size_t>(di) * es,
              static_cast<const unsigned char*>(src.raw()) + static_cast<size_t>(si) * es, es);
}

/// The tensor's data as raw bytes (kernels that move whole rows: Concat, Split, Gather).
inline unsigned char* bytes(Tensor& t) { return static_cast<unsigned char*>(t.raw()); }
inline const unsigned char* bytes(const Tensor& t) {
  return static_cast<const unsigned char*>(t.raw());
}

/// Axis in [-rank, rank) made non-negative; fails naming `field` otherwise.
template <class Ctx>
int64_t normalize_axis(const Ctx& ctx, int64_t axis, int64_t rank,
                       const std::string& field = "axis") {
  if (axis < -rank || axis >= rank)
    ctx.fail(field, "axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
                        std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

/// The values of an integer tensor (shape arguments: Reshape shape, Slice starts, ...).
template <class Ctx>
std::vector<int64_t> int_values(const Ctx& ctx, const Tensor& t, const std::string& field) {
  if (!is_integer(t.dtype()))
    ctx.fail(field, std::string("must be an integer tensor, found ") + dtype_name(t.dtype()));
  if (t.numel() == 0) return {};
  if (!t.raw()) ctx.fail(field, "has no data");
  return t.to_int64s();
}

/// Kernels: the input tensor i (fails when omitted or without data).
template <class Ctx>
const Tensor& input(const Ctx& ctx, int i, const std::string& field = "inputs") {
  if (i >= static_cast<int>(ctx.inputs.size()) || !ctx.inputs[static_cast<size_t>(i)].defined())
    ctx.fail(field, "input " + std::to_string(i) + " is missing");
  const Tensor& t = ctx.inputs[static_cast<size_t>(i)];
  if (t.numel() > 0 && !t.raw()) ctx.fail(field, "input " + std::to_string(i) + " has no data");
  return t;
}

/// Kernels: true when optional input i is given.
template <class Ctx>
bool has_input(const Ctx& ctx, int i) {
  return i < static_cast<int>(ctx.inputs.size()) && ctx.inputs[static_cast<size_t>(i)].defined();
}

/// Kernels: output i must have the given dtype and shape (what the kernel computed from its
/// actual inputs); protects against tensors that do not match the inferred graph.
template <class Ctx>
Tensor& output(Ctx& ctx, int i, DType dt, const Shape& shape) {
  if (i >= static_cast<int>(ctx.outputs.size()))
    ctx.fail("outputs", "output " + std::to_string(i) + " is missing");
  Tensor& t = ctx.outputs[static_cast<size_t>(i)];
  if (t.dtype() != dt || t.shape() != shape)
    ctx.fail("inputs", std::string("inputs give an output of ") + dtype_name(dt) +
                           shape_str(shape) + " but the graph inferred " + dtype_name(t.dtype()) +
                           shape_str(t.shape()) + " (input shapes changed?)");
  return t;
}

/// ONNX TensorProto data type code -> DType; false when unsupported.
inline bool dtype_from_onnx(int64_t code, DType& out) {
  std::optional<DType> d = dtype_from_onnx_code(code);  // core/onnx_dtype.h
  if (d) out = *d;
  return d.has_value();
}

}  // namespace anvil::ref
