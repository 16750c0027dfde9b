// File names for tensors: the rule `anvil run`, `anvil dump` and scripts share.
#pragma once

#include <cstdint>
#include <string>

namespace anvil {

/// A tensor name made safe as a file name (without extension): every character outside
/// [A-Za-z0-9._-] becomes '_'. A result longer than 200 characters keeps its first 191
/// characters, then '_', then the 8 lowercase hex digits of the CRC-32 (zlib's crc32) of the
/// whole original name, so long names stay distinct. An empty name becomes "_".
/// Examples: "/conv1/Conv_output_0" -> "_conv1_Conv_output_0", "dense/BiasAdd:0" ->
/// "dense_BiasAdd_0".
std::string sanitize_tensor_name(const std::string& name);

/// The standard CRC-32 (zlib's crc32, polynomial 0xEDB88320) of a byte string.
uint32_t crc32_of(const std::string& bytes);

}  // namespace anvil
