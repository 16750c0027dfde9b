// TensorProto -> anvil::Tensor, with every size checked before anything is allocated.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "anvil/error.h"
#include "import/onnx/onnx_proto_tensor.h"

namespace anvil::onnx_import {

std::optional<DType> dtype_from_onnx(int elem_type) {
  switch (elem_type) {
    case onnx::TensorProto::FLOAT:
      return DType::f32;
    case onnx::TensorProto::UINT8:
      return DType::u8;
    case onnx::TensorProto::INT8:
      return DType::i8;
    case onnx::TensorProto::INT16:
      return DType::i16;
    case onnx::TensorProto::INT32:
      return DType::i32;
    case onnx::TensorProto::INT64:
      return DType::i64;
    case onnx::TensorProto::BOOL:
      return DType::boolean;
    case onnx::TensorProto::FLOAT16:
      return DType::f16;
    case onnx::TensorProto::DOUBLE:
      return DType::f64;
    case onnx::TensorProto::BFLOAT16:
      return DType::bf16;
    default:
      return std::nullopt;
  }
}

int onnx_from_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return onnx::TensorProto::FLOAT;
    case DType::f16:
      return onnx::TensorProto::FLOAT16;
    case DType::bf16:
      return onnx::TensorProto::BFLOAT16;
    case DType::f64:
      return onnx::TensorProto::DOUBLE;
    case DType::i8:
      return onnx::TensorProto::INT8;
    case DType::u8:
      return onnx::TensorProto::UINT8;
    case DType::i16:
      return onnx::TensorProto::INT16;
    case DType::i32:
      return onnx::TensorProto::INT32;
    case DType::i64:
      return onnx::TensorProto::INT64;
    case DType::boolean:
      return onnx::TensorProto::BOOL;
  }
  return onnx::TensorProto::UNDEFINED;
}

std::string onnx_type_name(int elem_type) {
  if (onnx::TensorProto::DataType_IsValid(elem_type))
    return onnx::TensorProto::DataType_Name(static_cast<onnx::TensorProto::DataType>(elem_type));
  return "type " + std::to_string(elem_type);
}

namespace {

[[noreturn]] void fail(const TensorSource& s, const std::string& msg) {
  throw Error((s.field.empty() ? std::string() : s.field + ": ") + msg, s.file, s.node, s.field);
}

// Copies `count` typed values into the tensor, converting each through `put`.
template <class Field, class Put>
void copy_typed(const Field& f, int64_t numel, const char* name, const TensorSource& src, Put put) {
  if (static_cast<int64_t>(f.size()) != numel)
    fail(src, std::string(name) + " holds " + std::to_string(f.size()) + " values, the dims say " +
                  std::to_string(numel));
  for (int64_t i = 0; i < numel; ++i) put(i, f.Get(static_cast<int>(i)));
}

bool safe_relative(const std::filesystem::path& p) {
  if (p.empty() || p.is_absolute() || p.has_root_name()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

std::vector<char> read_external(const onnx::TensorProto& t, size_t want, const TensorSource& src) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    try {
      if (kv.key() == "location")
        location = kv.value();
      else if (kv.key() == "offset")
        offset = std::stoll(kv.value());
      else if (kv.key() == "length")
        length = std::stoll(kv.value());
    } catch (const std::exception&) {
      fail(src, "external data field '" + kv.key() + "' is not a number: '" + kv.value() + "'");
    }
  }
  if (location.empty()) fail(src, "external data without a location");
  if (src.base_dir.empty())
    fail(src, "tensor data is stored in external file '" + location +
                  "', which cannot be located (no model folder known)");
  std::filesystem::path rel(location);
  if (!safe_relative(rel))
    fail(src, "external data location '" + location +
                  "' must be a relative path inside the model's folder");
  std::filesystem::path full = std::filesystem::path(src.base_dir) / rel;
  std::error_code ec;
  auto fsize = std::filesystem::file_size(full, ec);
  if (ec)
    fail(src, "external data file '" + full.string() +
                  "' not found (it must sit next to the model file)");
  if (offset < 0) fail(src, "external data offset is negative");
  if (length < 0) length = static_cast<int64_t>(want);
  if (static_cast<uint64_t>(length) != want)
    fail(src, "external data length is " + std::to_string(length) + " bytes, the dims say " +
                  std::to_string(want));
  if (static_cast<uint64_t>(offset) > fsize || fsize - static_cast<uint64_t>(offset) < want)
    fail(src, "external data file '" + full.string() + "' has " + std::to_string(fsize) +
                  " bytes, too few for offset " + std::to_string(offset) + " + length " +
                  std::to_string(want));
  std::vector<char> buf(want);
  std::ifstream in(full, std::ios::binary);
  in.seekg(offset);
  if (want && !in.read(buf.data(), static_cast<std::streamsize>(want)))
    fail(src, "could not read external data file '" + full.string() + "'");
  return buf;
}

}  // namespace

Tensor tensor_from_proto(const onnx::TensorProto& t, const TensorSource& src) {
  if (t.has_segment()) fail(src, "segmented tensors are not supported");
  auto dt = dtype_from_onnx(t.data_type());
  if (!dt) fail(src, "tensor element type " + onnx_type_name(t.data_type()) + " is not supported");
  Shape shape;
  for (int i = 0; i < t.dims_size(); ++i) {
    int64_t d = t.dims(i);
    if (d < 0)
      fail(src, "dimension " + std::to_string(i) + " is negative (" + std::to_string(d) + ")");
    shape.push_back(d);
  }
  int64_t numel;
  try {
    numel = shape_numel(shape);
  } catch (const Error&) {
    fail(src, "dims " + shape_str(shape) + " overflow");
  }
  const size_t esize = dtype_size(*dt);
  if (numel > static_cast<int64_t>(std::numeric_limits<int64_t>::max() / 16))
    fail(src, "dims " + shape_str(shape) + " are too large");
  const size_t nbytes = static_cast<size_t>(numel) * esize;

  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::vector<char> buf = read_external(t, nbytes, src);
    return Tensor::from_bytes(*dt, shape, buf.data());
  }
  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    if (raw.size() != nbytes)
      fail(src, "raw_data has " + std::to_string(raw.size()) + " bytes, but dims " +
                    shape_str(shape) + " of " + onnx_type_name(t.data_type()) + " need " +
                    std::to_string(nbytes));
    return Tensor::from_bytes(*dt, shape, raw.data());
  }
  // Typed fields: check the count first (it bounds the allocation by the file's size).
  auto check_count = [&](int have, const char* name) {
    if (static_cast<int64_t>(have) != numel)
      fail(src, std::string(name) + " holds " + std::to_string(have) + " values, but dims " +
                    shape_str(shape) + " need " + std::to_string(numel));
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      check_count(t.float_data_size(), "float_data");
      break;
    case onnx::TensorProto::DOUBLE:
      check_count(t.double_data_size(), "double_data");
      break;
    case onnx::TensorProto::INT64:
      check_count(t.int64_data_size(), "int64_data");
      break;
    default:
      check_count(t.int32_data_size(), "int32_data");
      break;
  }
  Tensor out(*dt, shape);
  switch (*dt) {
    case DType::f32:
      copy_typed(t.float_data(), numel, "float_data", src,
                 [&](int64_t i, float v) { out.data<float>()[i] = v; });
      break;
    case DType::f64:
      copy_typed(t.double_data(), numel, "double_data", src,
                 [&](int64_t i, double v) { out.data<double>()[i] = v; });
      break;
    case DType::i64:
      copy_typed(t.int64_data(), numel, "int64_data", src,
                 [&](int64_t i, int64_t v) { out.data<int64_t>()[i] = v; });
      break;
    case DType::i32:
      copy_typed(t.int32_data(), numel, "int32_data", src,
                 [&](int64_t i, int32_t v) { out.data<int32_t>()[i] = v; });
      break;
    case DType::i16:
      copy_typed(t.int32_data(), numel, "int32_data", src,
                 [&](int64_t i, int32_t v) { out.data<int16_t>()[i] = static_cast<int16_t>(v); });
      break;
    case DType::i8:
      copy_typed(t.int32_data(), numel, "int32_data", src,
                 [&](int64_t i, int32_t v) { out.data<int8_t>()[i] = static_cast<int8_t>(v); });
      break;
    case DType::u8:
      copy_typed(t.int32_data(), numel, "int32_data", src,
                 [&](int64_t i, int32_t v) { out.data<uint8_t>()[i] = static_cast<uint8_t>(v); });
      break;
    case DType::boolean:
      copy_typed(t.int32_data(), numel, "int32_data", src,
                 [&](int64_t i, int32_t v) { out.data<bool>()[i] = v != 0; });
      break;
    case DType::f16:
    case DType::bf16: {
      // 16-bit floats travel as their bit patterns in int32_data.
      auto* p = static_cast<uint16_t*>(out.raw());
      copy_typed(t.int32_data(), numel, "int32_data", src,
                 [&](int64_t i, int32_t v) { p[i] = static_cast<uint16_t>(v); });
      break;
    }
  }
  return out;
}

Tensor parse_tensor(const void* data, size_t size, const std::string& where,
                    const std::string& base_dir) {
  if (size > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw Error("file is larger than 2 GiB, which protobuf cannot parse", where);
  onnx::TensorProto t;
  if (!t.ParseFromArray(data, static_cast<int>(size)))
    throw Error("not a valid serialized ONNX TensorProto (truncated or corrupt)", where);
  TensorSource src{where, {}, t.name().empty() ? "tensor" : "tensor '" + t.name() + "'", base_dir};
  return tensor_from_proto(t, src);
}

Tensor read_tensor_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open file", path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::error_code ec;
  std::string dir = std::filesystem::path(path).parent_path().string();
  return parse_tensor(bytes.data(), bytes.size(), path, dir);
}

}  // namespace anvil::onnx_import

namespace anvil::onnx_import {

std::vector<std::string> graph_input_names(const std::string& model_path) {
  std::ifstream in(model_path, std::ios::binary);
  if (!in) throw Error("cannot open file", model_path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::ModelProto m;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error("not a valid ONNX model (truncated or corrupt)", model_path);
  std::set<std::string> inits;
  for (const auto& t : m.graph().initializer()) inits.insert(t.name());
  std::vector<std::string> r;
  for (const auto& i : m.graph().input())
    if (!inits.count(i.name())) r.push_back(i.name());
  return r;
}

}  // namespace anvil::onnx_import
