// ONNX tensors without protobuf types: reading serialized TensorProto files (the ONNX test
// data's input_0.pb / output_0.pb) and naming ONNX element types. Shared by the ONNX
// importer and the conformance tests.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::onnx_import {

/// Anvil's dtype for an ONNX TensorProto::DataType code, or nullopt when Anvil has none
/// (string, uint16/32/64, complex, ...).
std::optional<DType> dtype_from_onnx(int elem_type);
/// The ONNX code for an Anvil dtype (FLOAT = 1, ...).
int onnx_from_dtype(DType t);
/// "FLOAT", "INT64", "STRING", ... ("type <n>" for unknown codes).
std::string onnx_type_name(int elem_type);

/// Parses a serialized TensorProto. `where` names the source for error messages; external
/// data is looked up in `base_dir` (the model's folder). Throws anvil::Error.
Tensor parse_tensor(const void* data, size_t size, const std::string& where,
                    const std::string& base_dir = {});
/// Reads a file holding one serialized TensorProto (e.g. test_data_set_0/input_0.pb).
Tensor read_tensor_file(const std::string& path);

}  // namespace anvil::onnx_import

namespace anvil::onnx_import {

/// Names of a model's graph inputs that are not initializers, in the model's order (the
/// order of the ONNX test data's input_<i>.pb files). Throws anvil::Error.
std::vector<std::string> graph_input_names(const std::string& model_path);

}  // namespace anvil::onnx_import
