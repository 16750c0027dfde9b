#include "import/common/problems.h"

#include <map>

#include "anvil/error.h"

namespace anvil::imp {

namespace {

std::string located(const Problem& p, const std::string& noun) {
  std::string s = "unsupported " + noun + " " + p.op;
  if (!p.node.empty()) s += " (" + p.node + ")";
  const bool says_nothing = p.reason.empty() || p.reason == "unsupported " + noun ||
                            p.reason == "unsupported " + noun + " type";
  if (!says_nothing) s += ": " + p.reason;
  return s;
}

std::string grouped(const std::vector<Problem>& items) {
  std::map<std::string, std::vector<std::string>> unsupported;
  std::vector<const Problem*> other;
  for (const auto& p : items) {
    if (p.unsupported)
      unsupported[p.op].push_back(p.node);
    else
      other.push_back(&p);
  }
  std::string msg;
  if (!unsupported.empty()) {
    msg += "unsupported ops:";
    for (const auto& [op, nodes] : unsupported) {
      msg += "\n  - " + op + " (";
      for (size_t i = 0; i < nodes.size() && i < 8; ++i)
        msg += (i ? ", " : "") + std::string("'") + nodes[i] + "'";
      if (nodes.size() > 8) msg += ", ... " + std::to_string(nodes.size() - 8) + " more";
      msg += ")";
    }
  }
  if (!other.empty()) {
    msg += std::string(msg.empty() ? "" : "\n") + std::to_string(other.size()) +
           " problem(s) importing the graph:";
    for (const Problem* p : other)
      msg += "\n  - node '" + p->node + "' (" + p->op + ")" +
             (p->field.empty() ? "" : ": field '" + p->field + "'") + ": " + p->reason;
  }
  return msg;
}

}  // namespace

std::string ProblemList::message(const Format& f) const {
  if (items_.empty()) return {};
  switch (f.style) {
    case Style::Grouped:
      return grouped(items_);
    case Style::Located: {
      if (items_.size() == 1) return located(items_[0], f.noun);
      std::string msg = std::to_string(items_.size()) + " unsupported " + f.noun + "s:";
      for (const auto& p : items_) msg += "\n  - " + located(p, f.noun);
      return msg;
    }
    case Style::Listed:
      break;
  }
  std::string msg = std::to_string(items_.size()) + " problems importing " + f.model + ":";
  for (const auto& p : items_)
    msg += "\n  - " + p.op +
           (p.node.empty() ? std::string() : " (" + f.noun + " '" + p.node + "')") +
           (p.field.empty() ? std::string() : " [" + p.field + "]") + ": " + p.reason;
  return msg;
}

void ProblemList::throw_if_any(const std::string& file, const Format& f) const {
  if (items_.empty()) return;
  if (items_.size() == 1 && f.style != Style::Located) {
    const auto& p = items_[0];
    throw Error(p.op + ": " + p.reason, file, p.node, p.field);
  }
  throw Error(message(f), file);
}

}  // namespace anvil::imp
