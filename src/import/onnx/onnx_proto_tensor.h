// TensorProto -> anvil::Tensor (needs the ONNX protobuf classes). Internal to the importer.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

#include "anvil/tensor.h"
#include "import/onnx/onnx_tensor.h"

namespace anvil::onnx_import {

/// Where a TensorProto comes from, for error messages and external data.
struct TensorSource {
  std::string file;      // the model file (or .pb file)
  std::string node;      // node name (Constant) or empty
  std::string field;     // "initializer 'w'", "attribute 'value'", ...
  std::string base_dir;  // folder that external data paths are relative to; empty: none
};

/// Converts a TensorProto: raw_data or the typed fields (float_data, int32_data holding
/// int8/16, uint8, bool, f16 and bf16 bits, int64_data, double_data), or external data next
/// to the model. Checks dims (no negatives, no overflow) and that the data has exactly the
/// size the dims say, before allocating. Throws anvil::Error naming file, node and field.
Tensor tensor_from_proto(const onnx::TensorProto& t, const TensorSource& src);

}  // namespace anvil::onnx_import
