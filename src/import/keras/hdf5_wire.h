// The Keras HDF5 reader's two halves (see hdf5_file.cpp for the record stream): what the
// child process (hdf5_child.cpp, the only code that calls libhdf5) and the parent
// (hdf5_file.cpp) share: the wire constants and limits, path helpers, the fault injection
// used by tests, and the child's entry point. Private to the Keras importer.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace anvil::keras::h5wire {

inline constexpr char kMagic[8] = {'A', 'N', 'V', 'I', 'L', 'H', '5', '\1'};
inline constexpr uint64_t kChunkError = ~uint64_t{0};
inline constexpr uint8_t kKindGroup = 1, kKindDataset = 2, kKindOther = 3;
inline constexpr uint8_t kDtypeF32 = 0;
/// Most members of one group / objects visited in one file / group nesting the reader follows.
inline constexpr uint64_t kMaxGroupMembers = 1000000;
inline constexpr uint64_t kMaxObjects = 1000000;
inline constexpr int kMaxDepth = 64;
/// Longest object path the child follows, and longest name/message the parent accepts.
inline constexpr size_t kMaxPath = size_t{1} << 20;
inline constexpr uint64_t kMaxName = uint64_t{4} << 20;
/// Largest number of strings in one attribute.
inline constexpr uint64_t kMaxAttributeStrings = 10000000;
/// The child reads large datasets in slabs of about this many bytes.
inline constexpr size_t kSlabBytes = size_t{16} << 20;
/// Exit codes of the child (besides crashes).
inline constexpr int kExitPipe = 3;

/// Path helpers: "/a/b" components, normalized form, joining, last component.
std::vector<std::string> split_path(const std::string& p);
std::string norm(const std::string& p);
std::string join(const std::string& a, const std::string& b);
std::string last_component(const std::string& p);

/// Test-only fault injection in the child (ANVIL_KERAS_H5_FAULT=abort|hang|garbage[@path]).
enum class FaultMode { none, abort, hang, garbage };
struct Fault {
  FaultMode mode = FaultMode::none;
  std::string at;  // object path substring; empty: the first read
};
Fault fault_from_env();

/// The child process: reads the file (or the in-memory image) with libhdf5 and streams the
/// records to `fd`; never returns.
[[noreturn]] void child_main(int fd, const std::string& path, const std::string* image,
                             const Fault& fault, bool debug, pid_t parent);

}  // namespace anvil::keras::h5wire
