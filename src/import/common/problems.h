// "Collect every problem, throw once": importers go on after an unsupported layer or a bad
// node so that one error lists everything the user must fix.
//
// Contract: add() records a problem (op or layer type, node/layer name or a location such as
// "operator 3, output 'y'", the field at fault, the reason). Nothing throws until
// throw_if_any(), which throws one anvil::Error naming the file and every problem, in the
// style the importer chooses:
//  - one problem: Error(op + ": " + reason, file, node, field) (Style::Listed, Style::Grouped)
//    or Error("unsupported <noun> OP (node): reason", file) (Style::Located);
//  - several, Style::Listed: "N problems importing <model>:" then "  - OP (<noun> 'node')
//    [field]: reason" per problem;
//  - several, Style::Grouped: unsupported ops grouped by op ("unsupported ops:" then
//    "  - OP ('n1', 'n2')", at most 8 names each), then the other problems as
//    "  - node 'n' (OP): field 'f': reason";
//  - several, Style::Located: "N unsupported <noun>s:" then one "  - unsupported <noun> OP
//    (node): reason" line per problem (reasons that only repeat "unsupported" are left out).
#pragma once

#include <string>
#include <vector>

namespace anvil::imp {

struct Problem {
  std::string op, node, field, reason;
  bool unsupported = false;  // the op or layer itself is not supported (vs. a bad node)
};

class ProblemList {
 public:
  enum class Style { Listed, Grouped, Located };
  struct Format {
    Style style = Style::Listed;
    std::string model = "the model";  // "N problems importing <model>:"
    std::string noun = "node";        // "node", "layer", "operator"
  };

  void add(Problem p) { items_.push_back(std::move(p)); }
  void add(std::string op, std::string node, std::string field, std::string reason,
           bool unsupported = false) {
    items_.push_back(
        {std::move(op), std::move(node), std::move(field), std::move(reason), unsupported});
  }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Problem>& all() const { return items_; }

  /// The one-line-per-problem text of the error (without the file).
  std::string message(const Format& f) const;
  /// Throws the one anvil::Error naming `file` and every problem; returns when there is none.
  void throw_if_any(const std::string& file, const Format& f) const;

 private:
  std::vector<Problem> items_;
};

}  // namespace anvil::imp
