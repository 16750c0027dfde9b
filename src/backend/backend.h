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
  /// Value indices whose contents must be available after run() (outputs and taps).
  std::vector<int> keep;
};

class Executable {
 public:
  virtual ~Executable() = default;
  /// Runs the graph. `inputs` are in the order of Graph::inputs; returns the tensors of
  /// CompileOptions::keep in that order.
  virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;
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
