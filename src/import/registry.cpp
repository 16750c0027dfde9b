#include <filesystem>
#include <mutex>

#include "anvil/error.h"
#include "anvil/import.h"
#include "import/detect.h"

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
// No importer accepted `files` together: a file without which the rest is a model is an
// unexpected extra file (throws).
void check_extra_file(const std::vector<std::string>& files,
                      const std::vector<Importer>& candidates) {
  if (files.size() < 2) return;
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<std::string> rest = files;
    rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i));
    for (const auto& imp : candidates)
      if (imp.accepts(rest))
        throw Error("unexpected extra file: the other file(s) are a complete " + imp.name +
                        " model without it",
                    files[i]);
  }
}

// The importer a single file's extension names (its load() gives the specific reason, "not a
// valid TensorFlow GraphDef: ..."), or null.
const Importer* importer_named_by(const std::vector<std::string>& files,
                                  const std::vector<Importer>& candidates) {
  if (files.size() != 1) return nullptr;
  const std::string by_name = imp::importer_by_extension(files[0]);
  for (const auto& imp : candidates)
    if (!by_name.empty() && imp.name == by_name) return &imp;
  return nullptr;
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
  imp::check_model_files(files);
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
  // None accepted the files: say why, as specifically as the names and contents allow.
  check_extra_file(files, candidates);
  if (const Importer* named = importer_named_by(files, candidates)) {
    try {
      return named->load(files, options);
    } catch (const Error& e) {
      throw e.with_file(files.front());
    }
  }
  if (files.size() == 1) {
    std::string reason = imp::unrecognised_reason(files[0]);
    if (!reason.empty()) throw Error(reason, files[0]);
  }
  std::string names;
  for (const auto& i : candidates) names += (names.empty() ? "" : ", ") + i.name;
  throw Error("no importer recognises this model (known formats: " + names + ")", files.front());
}

}  // namespace anvil
