// Backends compile a canonical graph into an Executable. Each backend registers itself by
// name (src/backend/<name>/); the Session picks one by SessionOptions::backend.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/tensor.h"

namespace anvil {

struct CompileOptions {
  int threads = 1;
  /// Collect per-node wall time during run() (anvil bench --profile); off by default.
  bool profile = false;
  /// Value indices whose contents must be available after run() (outputs and taps).
  std::vector<int> keep;
};

class Executable {
 public:
  virtual ~Executable() = default;
  /// Runs the graph. `inputs` are in the order of Graph::inputs; returns the tensors of
  /// CompileOptions::keep in that order.
  virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;

  /// One entry per executed step (a node, or a fused group of nodes named by its first),
  /// summed over every run() since compile when CompileOptions::profile was set.
  struct OpTime {
    std::string node;  // node name (the first node of a fused group)
    std::string op;    // op name, or "Conv+Relu+Add" for fused groups
    double ms = 0;     // total wall time over all runs
    int64_t calls = 0;
  };
  virtual std::vector<OpTime> profile() const { return {}; }
};

struct Backend {
  std::string name;
  /// Throws anvil::Error naming the first node it cannot run.
  std::function<std::unique_ptr<Executable>(const Graph&, const CompileOptions&)> compile;
};

void register_backend(Backend b);
const Backend& find_backend(const std::string& name);  // throws listing the known backends
std::vector<std::string> backend_names();

struct BackendRegistrar {
  explicit BackendRegistrar(Backend b) { register_backend(std::move(b)); }
};

}  // namespace anvil
