#include "core/file_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "anvil/error.h"

namespace anvil {

std::string read_file(const std::string& path, const std::string& what, uint64_t max_bytes) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error("is a directory, not " + what, path);
  const bool regular = std::filesystem::is_regular_file(path, ec);
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw Error(std::string("cannot open file: ") + std::strerror(errno), path);
  const std::streamoff end = f.tellg();
  if (!regular || end < 0) {  // a pipe or device: read it as a stream, capped
    f.clear();
    f.seekg(0);
    std::string bytes;
    char buf[1 << 16];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) {
      bytes.append(buf, static_cast<size_t>(f.gcount()));
      if (bytes.size() > max_bytes)
        throw Error(
            "file too large for " + what + " (more than " + std::to_string(max_bytes) + " bytes)",
            path);
    }
    if (f.bad()) throw Error("error while reading the file", path);
    return bytes;
  }
  if (static_cast<uint64_t>(end) > max_bytes)
    throw Error("file too large for " + what + " (" + std::to_string(end) + " bytes, at most " +
                    std::to_string(max_bytes) + ")",
                path);
  std::string bytes(static_cast<size_t>(end), '\0');
  f.seekg(0);
  f.read(bytes.data(), end);
  if (f.gcount() != end) throw Error("error while reading the file", path);
  return bytes;
}

}  // namespace anvil
