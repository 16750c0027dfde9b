#include "anvil/graph.h"

#include <algorithm>
#include <queue>
#include <set>

#include "anvil/error.h"

namespace anvil {

int Graph::add_value(const std::string& n) {
  Value v;
  v.name = n;
  values.push_back(std::move(v));
  name_index_.clear();
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_input(const std::string& n, DType dtype, const Shape& shape) {
  int id = add_value(n);
  Value& v = values[static_cast<size_t>(id)];
  v.dtype = dtype;
  v.shape = shape;
  v.shape_known = true;
  inputs.push_back(id);
  return id;
}

int Graph::add_constant(const std::string& n, Tensor t) {
  int id = add_value(n);
  Value& v = values[static_cast<size_t>(id)];
  v.dtype = t.dtype();
  v.shape = t.shape();
  v.shape_known = true;
  v.constant = std::move(t);
  return id;
}

int Graph::add_node(const std::string& op, const std::string& n, const std::vector<int>& ins,
                    Attributes attrs, int num_outputs, const std::vector<std::string>& out_names) {
  Node node;
  node.op = op;
  node.name = n;
  node.inputs = ins;
  node.attrs = std::move(attrs);
  int node_id = static_cast<int>(nodes.size());
  for (int i = 0; i < num_outputs; ++i) {
    std::string vn = i < static_cast<int>(out_names.size()) ? out_names[static_cast<size_t>(i)]
                     : num_outputs == 1                     ? n
                                                            : n + ":" + std::to_string(i);
    int vid = add_value(vn);
    values[static_cast<size_t>(vid)].producer = node_id;
    node.outputs.push_back(vid);
  }
  nodes.push_back(std::move(node));
  return node_id;
}

int Graph::find_value(const std::string& n) const {
  if (name_index_.size() != values.size()) {
    name_index_.clear();
    for (size_t i = 0; i < values.size(); ++i)
      name_index_.emplace(values[i].name, static_cast<int>(i));
    if (name_index_.size() != values.size()) {  // duplicate names: fall back to a scan
      for (size_t i = 0; i < values.size(); ++i)
        if (values[i].name == n) return static_cast<int>(i);
      return -1;
    }
  }
  auto it = name_index_.find(n);
  return it == name_index_.end() ? -1 : it->second;
}

int Graph::find_value_by_any_name(const std::string& n) const {
  int v = find_value(n);
  if (v >= 0) return v;
  std::string base = n;
  int index = 0;
  if (auto colon = n.rfind(':'); colon != std::string::npos) {
    std::string tail = n.substr(colon + 1);
    if (!tail.empty() && std::all_of(tail.begin(), tail.end(), ::isdigit)) {
      base = n.substr(0, colon);
      index = std::stoi(tail);
    }
  }
  // Prefer the last value carrying the source name (passes may have renamed the producer); a
  // bare layer name means its output 0 ("lstm" is h-sequence, not "lstm:1"), then any output.
  for (size_t i = values.size(); i-- > 0;) {
    const auto& p = values[i].prov;
    if ((p.source_name == n && p.output_index == 0) ||
        (p.source_name == base && p.output_index == index))
      return static_cast<int>(i);
  }
  for (size_t i = values.size(); i-- > 0;)
    if (values[i].prov.source_name == n) return static_cast<int>(i);
  return -1;
}

int Graph::find_node(const std::string& n) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == n) return static_cast<int>(i);
  return -1;
}

std::string Graph::unique_name(const std::string& base) const {
  std::set<std::string> used;
  for (const auto& v : values) used.insert(v.name);
  for (const auto& n : nodes) used.insert(n.name);
  if (!used.count(base)) return base;
  for (int i = 1;; ++i) {
    std::string c = base + "_" + std::to_string(i);
    if (!used.count(c)) return c;
  }
}

std::vector<int> Graph::consumers(int v) const {
  std::vector<int> r;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].dead) continue;
    for (int in : nodes[i].inputs)
      if (in == v) {
        r.push_back(static_cast<int>(i));
        break;
      }
  }
  return r;
}

void Graph::relink() {
  for (auto& v : values) v.producer = -1;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].dead) continue;
    for (int o : nodes[i].outputs) values[static_cast<size_t>(o)].producer = static_cast<int>(i);
  }
}

void Graph::toposort() {
  const size_t nn = nodes.size();
  std::vector<int> producer(values.size(), -1);
  for (size_t i = 0; i < nn; ++i)
    for (int o : nodes[i].outputs)
      if (o >= 0 && static_cast<size_t>(o) < values.size())
        producer[static_cast<size_t>(o)] = static_cast<int>(i);
  std::vector<int> pending(nn, 0);
  std::vector<std::vector<int>> users(nn);
  for (size_t i = 0; i < nn; ++i) {
    std::set<int> deps;
    for (int in : nodes[i].inputs)
      if (in >= 0 && static_cast<size_t>(in) < values.size() &&
          producer[static_cast<size_t>(in)] >= 0)
        deps.insert(producer[static_cast<size_t>(in)]);
    pending[i] = static_cast<int>(deps.size());
    for (int d : deps) users[static_cast<size_t>(d)].push_back(static_cast<int>(i));
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>>
      ready;  // stable: lowest index first
  for (size_t i = 0; i < nn; ++i)
    if (pending[i] == 0) ready.push(static_cast<int>(i));
  std::vector<int> order;
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int u : users[static_cast<size_t>(i)])
      if (--pending[static_cast<size_t>(u)] == 0) ready.push(u);
  }
  if (order.size() != nn) {
    for (size_t i = 0; i < nn; ++i)
      if (pending[i] > 0) throw Error("the graph has a cycle", source_file, nodes[i].name);
  }
  std::vector<Node> sorted;
  sorted.reserve(nn);
  for (int i : order) sorted.push_back(std::move(nodes[static_cast<size_t>(i)]));
  nodes = std::move(sorted);
  relink();
}

void Graph::compact() {
  std::vector<bool> used(values.size(), false);
  for (int i : inputs) used[static_cast<size_t>(i)] = true;
  for (int o : outputs) used[static_cast<size_t>(o)] = true;
  std::vector<Node> kept;
  for (auto& n : nodes) {
    if (n.dead) continue;
    for (int i : n.inputs)
      if (i >= 0) used[static_cast<size_t>(i)] = true;
    for (int o : n.outputs) used[static_cast<size_t>(o)] = true;
    kept.push_back(std::move(n));
  }
  nodes = std::move(kept);
  std::vector<int> remap(values.size(), -1);
  std::vector<Value> nv;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!used[i]) continue;
    remap[i] = static_cast<int>(nv.size());
    nv.push_back(std::move(values[i]));
  }
  values = std::move(nv);
  auto map = [&](int& x) {
    if (x >= 0) x = remap[static_cast<size_t>(x)];
  };
  for (auto& n : nodes) {
    for (int& i : n.inputs) map(i);
    for (int& o : n.outputs) map(o);
  }
  for (int& i : inputs) map(i);
  for (int& o : outputs) map(o);
  name_index_.clear();
  relink();
}

}  // namespace anvil
