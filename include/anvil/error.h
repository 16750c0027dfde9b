// Errors: one exception type that says where (file, node, field) and what went wrong.
#pragma once

#include <stdexcept>
#include <string>

namespace anvil {

/// Every error Anvil reports on bad input or bad use. `what()` reads like
/// "model.onnx: node 'conv1' (Conv): field 'pads': expected 4 values, found 3".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string file = {}, std::string node = {},
                 std::string field = {});

  const std::string& message() const { return message_; }
  const std::string& file() const { return file_; }
  const std::string& node() const { return node_; }
  const std::string& field() const { return field_; }

  /// A copy with the file filled in when it was not known where the error was raised.
  Error with_file(const std::string& file) const;
  /// A copy with the node filled in when it was not known where the error was raised.
  Error with_node(const std::string& node) const;

 private:
  std::string message_, file_, node_, field_;
};

}  // namespace anvil
