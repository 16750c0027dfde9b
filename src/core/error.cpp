#include "anvil/error.h"

namespace anvil {
namespace {
std::string compose(const std::string& message, const std::string& file, const std::string& node,
                    const std::string& field) {
  std::string s;
  if (!file.empty()) s += file + ": ";
  if (!node.empty()) s += "node '" + node + "': ";
  if (!field.empty()) s += "field '" + field + "': ";
  return s + message;
}
}  // namespace

Error::Error(const std::string& message, std::string file, std::string node, std::string field)
    : std::runtime_error(compose(message, file, node, field)),
      message_(message),
      file_(std::move(file)),
      node_(std::move(node)),
      field_(std::move(field)) {}

Error Error::with_file(const std::string& file) const {
  if (!file_.empty()) return *this;
  return Error(message_, file, node_, field_);
}

Error Error::with_node(const std::string& node) const {
  if (!node_.empty()) return *this;
  return Error(message_, file_, node, field_);
}

}  // namespace anvil
