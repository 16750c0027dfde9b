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
  /// Runs that may be in flight at once through submit()/wait() (GPU backends: one stream,
  /// activation arena and CUDA graph per in-flight run; weights shared). 1 = plain run().
  int in_flight = 1;
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

  /// Device time of the last completed run in ms, measured on the device (CUDA events around
  /// the work of that run, input upload to output download); < 0 where a backend has none.
  virtual double last_device_ms() const { return -1; }

  /// Pipelined use: submit() starts a run and returns a ticket at once where the backend can
  /// overlap runs (up to CompileOptions::in_flight; a further submit waits for the oldest
  /// slot); wait(ticket) returns that run's kept tensors. Tickets are waited for in the order
  /// they were submitted. The default runs synchronously inside submit().
  virtual int64_t submit(const std::vector<Tensor>& inputs) {
    done_.push_back(run(inputs));
    return next_ticket_++;
  }
  virtual std::vector<Tensor> wait(int64_t ticket) {
    const int64_t first = next_ticket_ - static_cast<int64_t>(done_.size());
    if (ticket < first || ticket >= next_ticket_) return {};
    std::vector<Tensor> r = std::move(done_[static_cast<size_t>(ticket - first)]);
    if (ticket == first) done_.erase(done_.begin());
    return r;
  }

 private:
  std::vector<std::vector<Tensor>> done_;
  int64_t next_ticket_ = 0;
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
