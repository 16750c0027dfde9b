#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "anvil/session.h"

namespace anvil {
namespace {

// Levenshtein distance, case-insensitive.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::vector<std::string> nearest_tensor_names(const Graph& g, const std::string& name, size_t n) {
  std::set<std::tuple<size_t, size_t, std::string>> ranked;  // (distance, order, name)
  std::set<std::string> seen;
  size_t order = 0;
  for (const auto& v : g.values) {
    const std::string& shown = v.prov.source_name.empty() ? v.name : v.prov.source_name;
    if (shown.empty() || !seen.insert(shown).second) continue;
    // Long names are compared on at most 256 characters each (the cost is their product).
    ranked.emplace(edit_distance(name.substr(0, 256), shown.substr(0, 256)), order++, shown);
    if (ranked.size() > n) ranked.erase(std::prev(ranked.end()));
  }
  std::vector<std::string> r;
  for (const auto& [d, o, s] : ranked) r.push_back(s);
  return r;
}

}  // namespace anvil
