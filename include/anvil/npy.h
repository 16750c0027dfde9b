// NumPy .npy and .npz files.
#pragma once

#include <map>
#include <string>

#include "anvil/tensor.h"

namespace anvil {

/// Reads a .npy file (v1/v2/v3 headers, little/big endian, C or Fortran order, dtypes
/// f2 f4 f8 i1 u1 i2 i4 i8 b1, plus u2/u4/u8 read into the next wider signed type when they fit).
Tensor read_npy(const std::string& path);
/// Errors (anvil::Error) name the file and the field: "header", "version", "descr",
/// "fortran_order", "shape" or "data" (e.g. fewer data bytes than the shape needs).
/// Parses .npy bytes; `what` names the source in errors.
Tensor parse_npy(const void* data, size_t size, const std::string& what);
/// Writes a .npy (v1 header, little endian, C order) byte-identical to numpy's np.save
/// (header padded so the data starts on a 64-byte boundary). bf16 is written as float32.
void write_npy(const std::string& path, const Tensor& t);
std::string encode_npy(const Tensor& t);

/// Reads every array of a .npz (zip, stored or deflated); keys without the ".npy" suffix,
/// otherwise as stored ('/' and ':' kept). Errors name the archive and the member.
std::map<std::string, Tensor> read_npz(const std::string& path);
/// Writes a .npz; `compress` uses deflate (np.savez_compressed) instead of store (np.savez).
void write_npz(const std::string& path, const std::map<std::string, Tensor>& arrays,
               bool compress = false);

}  // namespace anvil
