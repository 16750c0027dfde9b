// Session: compile a graph once for a backend, run it many times with named inputs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/tensor.h"

namespace anvil {

/// Storage precision of float32 weights and activations (SessionOptions::precision).
enum class Precision { fp32, fp16, bf16 };
/// "fp32", "fp16" or "bf16" -> Precision; throws anvil::Error (field "precision") otherwise:
/// "precision must be fp32, fp16 or bf16, not 'fp8'".
Precision parse_precision(const std::string& name);
/// "fp32", "fp16" or "bf16".
const char* precision_name(Precision p);

struct SessionOptions {
  /// "cpu" (the default, as for `anvil run` and `anvil bench`: oneDNN, fp32 accumulation;
  /// ops oneDNN lacks run on their reference kernels; docs/cpu_backend.md), "reference"
  /// (plain loops, double accumulation: the oracle that the other backends and the importers'
  /// fixture tests are checked against; the default of verify_model() and of `anvil verify`,
  /// `dump` and `inspect`) or "cuda" (builds configured with -DANVIL_CUDA=ON).
  std::string backend = "cpu";
  int threads = 1;
  /// Tensors to keep besides the outputs (canonical or source names). Anything kept is
  /// protected from passes that would fuse it away.
  std::vector<std::string> taps;
  bool keep_all = false;  // keep every tensor (verify, dump)
  bool optimize = true;   // run the graph passes before compiling
  /// Storage precision of float32 weights and activations: fp32, fp16 or bf16 (a graph pass
  /// after the optimizations; Cast at inputs and outputs; each backend computes in its own
  /// accumulation precision, the reference backend in double).
  Precision precision = Precision::fp32;
  /// Layers (source or canonical names of their output tensors, or node names) kept in
  /// float32 under fp16/bf16; their inputs and outputs get Cast nodes.
  std::vector<std::string> keep_fp32;
  /// Time every executed step of run() (anvil bench --profile); read with Session::profile().
  bool profile = false;
  /// Runs that may be in flight at once through submit()/wait() (>= 1). Backends that can
  /// overlap runs (cuda: one stream, activation arena and CUDA graph per slot) keep this many
  /// going; the others run each submit() to completion.
  int in_flight = 1;
};

/// Shape and dtype of a graph input or output, in the source framework's layout.
struct TensorInfo {
  std::string name;         // canonical value name
  std::string source_name;  // name in the source framework
  DType dtype;
  Shape shape;  // in the source layout
};

class Executable;

/// Thread safety (as ONNX Runtime's Run): run(), submit() and wait() may be called from
/// several threads at once on one Session, and Sessions may run in parallel threads (cpu and
/// reference backends: each concurrent run gets its own execution context, the compiled
/// graph and weights are shared). A fetch that is not kept yet recompiles, and the other
/// members (profile(), graph(), moves) must not race with runs in flight.
class Session {
 public:
  explicit Session(Graph graph, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  /// Runs with inputs keyed by input name (canonical or source name; a single-input graph
  /// also accepts any key). Returns the graph outputs, or the tensors named in `fetch`
  /// (outputs, taps, or any tensor when keep_all), keyed by the names as asked, each in
  /// the source framework's layout.
  std::map<std::string, Tensor> run(const std::map<std::string, Tensor>& inputs,
                                    const std::vector<std::string>& fetch = {});

  /// Pipelined runs: submit() converts the inputs as run() does, starts a run and returns
  /// a ticket (at once where the backend overlaps runs; with SessionOptions::in_flight runs
  /// going, a further submit waits for the oldest). wait(ticket) returns that run's tensors
  /// as run() would (graph outputs, or `fetch`, in the source layout). Tickets may be waited
  /// for in any order; each once. `fetch` names must already be kept (outputs, taps, or any
  /// tensor when keep_all) while other runs are in flight; otherwise submit() recompiles
  /// like run(). run() first finishes the runs in flight (their results stay waitable).
  int64_t submit(const std::map<std::string, Tensor>& inputs,
                 const std::vector<std::string>& fetch = {});
  std::map<std::string, Tensor> wait(int64_t ticket);
  /// Runs submitted and not yet waited for.
  int pending() const;
  /// Device time of the last completed run in ms (the backend's own measure, e.g. CUDA
  /// events); < 0 where the backend has none (reference, cpu).
  double last_device_ms() const;

  const Graph& graph() const;         // the graph as compiled (after passes)
  const Graph& source_graph() const;  // the graph as given
  std::vector<TensorInfo> inputs() const;
  std::vector<TensorInfo> outputs() const;
  const SessionOptions& options() const;
  double compile_ms() const;

  /// Per-step wall time summed over every run() since the last compile, when
  /// SessionOptions::profile is set (empty otherwise). A step is one node, or a group of
  /// nodes the backend fused (named by its first node, op "Conv+Relu+Add").
  struct OpTime {
    std::string node;
    std::string op;
    double ms = 0;      // total over all runs
    int64_t calls = 0;  // how many times it ran
  };
  std::vector<OpTime> profile() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The backends of this build, in registration order ("reference", "cpu", and "cuda" in
/// -DANVIL_CUDA=ON builds); src/backend/registry.cpp.
std::vector<std::string> backend_names();
/// Throws anvil::Error (field "backend") listing the backends of this build when `name` is
/// none of them: "unknown backend 'cuda' (available: reference, cpu)".
void check_backend(const std::string& name);

/// Up to `n` tensor names of `g` (source names where known) nearest to `name` by
/// case-insensitive edit distance, nearest first: the "did you mean" of a name that matches
/// no tensor.
std::vector<std::string> nearest_tensor_names(const Graph& g, const std::string& name,
                                              size_t n = 3);

}  // namespace anvil
