// ONNX TensorProto.DataType codes, the one mapping: ONNX tensors carry them, and the Cast
// op's "to" attribute is one (whatever the source framework).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "anvil/tensor.h"

namespace anvil {

/// Every DType with its ONNX code (FLOAT 1, UINT8 2, INT8 3, INT16 5, INT32 6, INT64 7,
/// BOOL 9, FLOAT16 10, DOUBLE 11, BFLOAT16 16).
inline constexpr std::pair<DType, int64_t> kOnnxDTypeCodes[] = {
    {DType::f32, 1}, {DType::u8, 2},      {DType::i8, 3},   {DType::i16, 5},  {DType::i32, 6},
    {DType::i64, 7}, {DType::boolean, 9}, {DType::f16, 10}, {DType::f64, 11}, {DType::bf16, 16},
};

/// The ONNX data type code of `t`.
constexpr int64_t onnx_dtype_code(DType t) {
  for (const auto& [d, code] : kOnnxDTypeCodes)
    if (d == t) return code;
  return 0;  // UNDEFINED (unreachable: every DType has a code)
}

/// The DType of an ONNX data type code; nullopt for the codes Anvil has no dtype for
/// (STRING, UINT16, COMPLEX64, ...).
constexpr std::optional<DType> dtype_from_onnx_code(int64_t code) {
  for (const auto& [d, c] : kOnnxDTypeCodes)
    if (c == code) return d;
  return std::nullopt;
}

}  // namespace anvil
