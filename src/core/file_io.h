// Reading whole files with the checks every reader of user files needs: a directory is named
// as such, the size is capped before allocating, short reads are errors. Errors are
// anvil::Error naming the file.
#pragma once

#include <cstdint>
#include <string>

namespace anvil {

/// The whole file. `what` names the expected content in messages ("a GraphDef", "an image");
/// files larger than `max_bytes` are refused before reading. Pipes and devices are read as
/// streams (up to `max_bytes`).
std::string read_file(const std::string& path, const std::string& what = "a file",
                      uint64_t max_bytes = uint64_t{1} << 32);

}  // namespace anvil
