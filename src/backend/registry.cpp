#include <mutex>

#include "anvil/error.h"
#include "backend/backend.h"

namespace anvil {
namespace {
std::vector<Backend>& backends() {
  static std::vector<Backend> v;
  return v;
}
std::mutex& backends_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void register_backend(Backend b) {
  std::lock_guard<std::mutex> lock(backends_mutex());
  backends().push_back(std::move(b));
}

const Backend& find_backend(const std::string& name) {
  std::lock_guard<std::mutex> lock(backends_mutex());
  std::string known;
  for (const auto& b : backends()) {
    if (b.name == name) return b;
    known += (known.empty() ? "" : ", ") + b.name;
  }
  throw Error("unknown backend '" + name + "' (available: " + known + ")", {}, {}, "backend");
}

std::vector<std::string> backend_names() {
  std::lock_guard<std::mutex> lock(backends_mutex());
  std::vector<std::string> r;
  for (const auto& b : backends()) r.push_back(b.name);
  return r;
}

}  // namespace anvil
