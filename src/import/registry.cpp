#include <filesystem>
#include <mutex>

#include "anvil/error.h"
#include "anvil/import.h"

namespace anvil {
namespace {
std::vector<Importer>& importers() {
  static std::vector<Importer> v;
  return v;
}
std::mutex& importers_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace

void register_importer(Importer importer) {
  std::lock_guard<std::mutex> lock(importers_mutex());
  importers().push_back(std::move(importer));
}

std::vector<std::string> importer_names() {
  std::lock_guard<std::mutex> lock(importers_mutex());
  std::vector<std::string> r;
  for (const auto& i : importers()) r.push_back(i.name);
  return r;
}

Graph import_model(const std::vector<std::string>& files, const ImportOptions& options) {
  if (files.empty()) throw Error("no model file given");
  for (const auto& f : files) {
    std::error_code ec;
    if (!std::filesystem::exists(f, ec)) throw Error("file not found", f);
  }
  std::vector<Importer> candidates;
  {
    std::lock_guard<std::mutex> lock(importers_mutex());
    candidates = importers();
  }
  for (const auto& imp : candidates) {
    if (!imp.accepts(files)) continue;
    try {
      return imp.load(files, options);
    } catch (const Error& e) {
      throw e.with_file(files.front());
    }
  }
  std::string names;
  for (const auto& i : candidates) names += (names.empty() ? "" : ", ") + i.name;
  throw Error("no importer recognises this model (known formats: " + names + ")", files.front());
}

}  // namespace anvil
