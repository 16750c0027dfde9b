// The reference backend: runs every node's reference kernel in graph order.
// Plain loops with double accumulation live in the kernels (src/ops/*.cpp).
#include <chrono>
#include <mutex>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/backend.h"

namespace anvil {
namespace {

class ReferenceExecutable : public Executable {
 public:
  ReferenceExecutable(const Graph& g, const CompileOptions& opt)
      : g_(g), keep_(opt.keep), profile_(opt.profile) {
    if (profile_) {
      node_ms_.assign(g_.nodes.size(), 0.0);
      node_calls_.assign(g_.nodes.size(), 0);
    }
    for (const auto& n : g_.nodes) {
      if (n.dead) continue;
      if (!OpRegistry::global().find(n.op))
        throw Error("the reference backend has no kernel for op '" + n.op + "'", g_.source_file,
                    n.name, "op");
    }
    // Last use of every value, so intermediate tensors are released early.
    last_use_.assign(g_.values.size(), -1);
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      for (int in : g_.nodes[i].inputs)
        if (in >= 0) last_use_[static_cast<size_t>(in)] = static_cast<int>(i);
    pinned_.assign(g_.values.size(), false);
    for (int k : keep_) pinned_[static_cast<size_t>(k)] = true;
    for (int o : g_.outputs) pinned_[static_cast<size_t>(o)] = true;
  }

  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    std::vector<Tensor> vals(g_.values.size());
    for (size_t i = 0; i < g_.values.size(); ++i)
      if (g_.values[i].is_constant()) vals[i] = g_.values[i].constant;
    for (size_t i = 0; i < g_.inputs.size(); ++i)
      vals[static_cast<size_t>(g_.inputs[i])] = inputs[i];
    std::vector<Tensor> ins;
    for (size_t ni = 0; ni < g_.nodes.size(); ++ni) {
      const Node& n = g_.nodes[ni];
      if (n.dead) continue;
      ins.clear();
      for (int in : n.inputs) ins.push_back(in >= 0 ? vals[static_cast<size_t>(in)] : Tensor());
      std::vector<Tensor> outs;
      if (profile_) {
        const auto t0 = std::chrono::steady_clock::now();
        outs = evaluate_node(g_, n, ins);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        std::lock_guard<std::mutex> lock(prof_mu_);  // run() may be called from several threads
        node_ms_[ni] += ms;
        ++node_calls_[ni];
      } else {
        outs = evaluate_node(g_, n, ins);
      }
      for (size_t k = 0; k < n.outputs.size(); ++k)
        vals[static_cast<size_t>(n.outputs[k])] = std::move(outs[k]);
      for (int in : n.inputs)
        if (in >= 0 && last_use_[static_cast<size_t>(in)] == static_cast<int>(ni) &&
            !pinned_[static_cast<size_t>(in)] && !g_.values[static_cast<size_t>(in)].is_constant())
          vals[static_cast<size_t>(in)] = Tensor();
    }
    std::vector<Tensor> r;
    for (int k : keep_) r.push_back(vals[static_cast<size_t>(k)]);
    return r;
  }

  std::vector<OpTime> profile() const override {
    std::lock_guard<std::mutex> lock(prof_mu_);
    std::vector<OpTime> r;
    for (size_t i = 0; i < node_ms_.size(); ++i)
      if (node_calls_[i] > 0)
        r.push_back(OpTime{g_.nodes[i].name, g_.nodes[i].op, node_ms_[i], node_calls_[i]});
    return r;
  }

 private:
  const Graph& g_;
  std::vector<int> keep_;
  std::vector<int> last_use_;
  std::vector<bool> pinned_;
  bool profile_ = false;
  std::vector<double> node_ms_;  // per node index, when profiling
  std::vector<int64_t> node_calls_;
  mutable std::mutex prof_mu_;
};

const BackendRegistrar reg{Backend{
    "reference", [](const Graph& g, const CompileOptions& o) -> std::unique_ptr<Executable> {
      return std::make_unique<ReferenceExecutable>(g, o);
    }}};

}  // namespace
}  // namespace anvil
