// The parts of a Keras HDF5 file the importer uses, read by libhdf5 in a sandboxed child process.
//
// libhdf5 (Debian's 1.10) is not safe on hostile files: fuzzing found heap over-reads in its
// object-header decoder (H5Aexists_by_name) and endless loops in its global-heap reader, inside
// the library, before Anvil sees any value. So Anvil's own process never calls libhdf5 on a
// model file. `H5File::open` forks one child that opens the file, reads everything the Keras
// importer needs (root and weights-group attributes, layer_names, each layer's weight_names and
// every weight dataset they list; for Keras 3 files, every group under `layers/` and the
// datasets of each `vars` group) and streams it back through a pipe as a compact record stream.
// The parent enforces a deadline and a size cap, reaps the child, and turns a crash, a timeout
// or a malformed stream into anvil::Error naming the file and, when known, the layer and weight
// being read. The result is an in-memory snapshot with the query API below; queries about
// objects the reader did not visit answer "not there".
//
// Environment (for tests and debugging):
//   ANVIL_KERAS_H5_TIMEOUT_S  seconds without progress before the child is killed (default 20;
//                             the total deadline is this times (1 + file size / 64 MiB))
//   ANVIL_KERAS_H5_FAULT      abort | hang | garbage, optionally "@TEXT": the child aborts, hangs
//                             or writes garbage just before the first read whose object path
//                             contains TEXT (test hook for the crash/timeout paths)
//   ANVIL_KERAS_H5_DEBUG=1    the child keeps stderr and libhdf5 prints its error stack
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::keras {

/// Largest dataset (elements) the importer reads: 1 Gi elements (4 GiB of float32).
constexpr int64_t kMaxDatasetElements = int64_t{1} << 30;
/// Largest string attribute (bytes), e.g. a model_config JSON: 256 MiB.
constexpr int64_t kMaxAttributeBytes = int64_t{256} << 20;
/// Seconds without progress before the reader process is killed (ANVIL_KERAS_H5_TIMEOUT_S).
constexpr double kDefaultReadTimeoutS = 20;

class H5File {
 public:
  /// Reads the Keras content of an HDF5 file in a child process; throws anvil::Error naming
  /// `path` (and the layer/weight when known) when it is not HDF5, is broken, or crashes or
  /// hangs libhdf5.
  static H5File open(const std::string& path);
  /// The same for an HDF5 image held in memory (a file inside a .keras zip); `what` names it in
  /// errors.
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
  /// A numeric dataset converted to float32 (shares the snapshot's buffer: do not modify).
  Tensor read_f32(const std::string& path) const;

 private:
  H5File();
  struct Source;
  static H5File read(const Source& src);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string what_;
};

}  // namespace anvil::keras
