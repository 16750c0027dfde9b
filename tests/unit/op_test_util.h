// Helpers for op tests: tensors from literals, and running one op in a Session.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/session.h"
#include "anvil/tensor.h"

namespace anvil::testing {

inline Tensor F(Shape s, std::vector<float> v) {
  return Tensor::from_vector<float>(std::move(s), v);
}
inline Tensor I64(Shape s, std::vector<int64_t> v) {
  return Tensor::from_vector<int64_t>(std::move(s), v);
}
inline Tensor I32(Shape s, std::vector<int32_t> v) {
  return Tensor::from_vector<int32_t>(std::move(s), v);
}

// Builds a one-node graph: the first `runtime` inputs (all when negative) are graph inputs
// fed at run time, the others constants (an undefined Tensor is an omitted optional input).
// Runs it in a Session on the reference backend and returns the node's outputs.
inline std::vector<Tensor> run_single_op(const std::string& op, const std::vector<Tensor>& ins,
                                         Attributes attrs, int num_outputs, int runtime) {
  if (runtime < 0) runtime = static_cast<int>(ins.size());
  Graph g;
  std::vector<int> ids;
  std::map<std::string, Tensor> feed;
  for (size_t i = 0; i < ins.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    if (!ins[i].defined()) {
      ids.push_back(-1);
    } else if (static_cast<int>(i) < runtime) {
      ids.push_back(g.add_input(name, ins[i].dtype(), ins[i].shape()));
      feed[name] = ins[i];
    } else {
      ids.push_back(g.add_constant(name, ins[i]));
    }
  }
  int n = g.add_node(op, "node", ids, std::move(attrs), num_outputs);
  std::vector<std::string> names;
  for (int o : g.nodes[static_cast<size_t>(n)].outputs) {
    g.outputs.push_back(o);
    names.push_back(g.values[static_cast<size_t>(o)].name);
  }
  SessionOptions so;
  so.backend = "reference";  // these tests check the reference kernels themselves
  Session s(std::move(g), so);
  auto res = s.run(feed);
  std::vector<Tensor> r;
  for (const auto& nm : names) r.push_back(res.at(nm));
  return r;
}

}  // namespace anvil::testing
