#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "anvil/session.h"
#include "core/strings.h"

namespace anvil {

std::vector<std::string> nearest_tensor_names(const Graph& g, const std::string& name, size_t n) {
  std::set<std::tuple<size_t, size_t, std::string>> ranked;  // (distance, order, name)
  std::set<std::string> seen;
  size_t order = 0;
  for (const auto& v : g.values) {
    const std::string& shown = v.prov.source_name.empty() ? v.name : v.prov.source_name;
    if (shown.empty() || !seen.insert(shown).second) continue;
    // Long names are compared on at most 256 characters each (the cost is their product).
    ranked.emplace(edit_distance_ci(name.substr(0, 256), shown.substr(0, 256)), order++, shown);
    if (ranked.size() > n) ranked.erase(std::prev(ranked.end()));
  }
  std::vector<std::string> r;
  for (const auto& [d, o, s] : ranked) r.push_back(s);
  return r;
}

}  // namespace anvil
