// A small, defensive reader over the HDF5 C API: what the Keras importer needs (groups,
// string attributes, float datasets), with every failure turned into anvil::Error and every
// size read from the file capped before anything is allocated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::keras {

/// Largest dataset (elements) the importer reads: 1 Gi elements (4 GiB of float32).
constexpr int64_t kMaxDatasetElements = int64_t{1} << 30;
/// Largest string attribute (bytes), e.g. a model_config JSON: 256 MiB.
constexpr int64_t kMaxAttributeBytes = int64_t{256} << 20;

class H5File {
 public:
  /// Opens a file read-only; throws anvil::Error naming `path` when it is not HDF5 or is broken.
  static H5File open(const std::string& path);
  /// Opens an HDF5 image held in memory (a file inside a .keras zip); `what` names it in errors.
  static H5File open_image(std::string bytes, const std::string& what);
  /// True when the first bytes of the file carry the HDF5 signature.
  static bool has_signature(const std::string& path);

  H5File(H5File&&) noexcept;
  H5File& operator=(H5File&&) noexcept;
  ~H5File();

  const std::string& what() const { return what_; }

  /// True when `path` (a group or dataset, "/"-separated) exists.
  bool exists(const std::string& path) const;
  bool is_group(const std::string& path) const;
  bool is_dataset(const std::string& path) const;
  /// Names of the members of a group (sorted by name as HDF5 stores them).
  std::vector<std::string> children(const std::string& group) const;

  bool has_attr(const std::string& object, const std::string& name) const;
  /// A string attribute (fixed or variable length; a 1-element array is accepted).
  std::string attr_string(const std::string& object, const std::string& name) const;
  /// An attribute holding an array of strings (h5py's `np.array([b"a", b"b"])`).
  std::vector<std::string> attr_strings(const std::string& object, const std::string& name) const;

  /// The shape of a dataset.
  Shape dataset_shape(const std::string& path) const;
  /// Reads a numeric dataset converted to float32.
  Tensor read_f32(const std::string& path) const;

 private:
  H5File() = default;
  std::vector<std::string> read_vlen_isolated(int64_t attr, int64_t type, int64_t space, int64_t count,
                                              const std::string& name, const std::string& field) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string what_;
};

}  // namespace anvil::keras
