#include "anvil/session.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include "anvil/error.h"
#include "anvil/pipeline.h"
#include "anvil/summary.h"
#include "backend/backend.h"
#include "core/permutation.h"
#include "passes/passes.h"

namespace anvil {
namespace {
// "no tensor named 'x' in the model; nearest tensor names: ..." (field "output").
Error unknown_tensor(const Graph& g, const std::string& name) {
  std::string near;
  for (const auto& n : nearest_tensor_names(g, name, 3))
    near += (near.empty() ? "'" : ", '") + n + "'";
  return Error("no tensor named '" + name + "' in the model" +
                   (near.empty() ? std::string() : "; nearest tensor names: " + near),
               g.source_file, {}, "output");
}
}  // namespace

struct Session::Impl {
  Graph source;
  Graph compiled;
  SessionOptions options;
  std::set<std::string> kept_names;  // names (as asked) that the current executable keeps
  /// Constants that carry a source-framework name (weights, frozen inputs, tensors folded at
  /// load), kept fetchable by name even when nothing reads them after folding.
  Graph constants;

  /// True when `name` is answered from `constants` (it names no computed tensor).
  bool is_constant_fetch(const std::string& name) const {
    int v = source.find_value_by_any_name(name);
    if (v >= 0 && !source.values[static_cast<size_t>(v)].is_constant()) return false;
    return constants.find_value_by_any_name(name) >= 0;
  }
  std::vector<int> keep;  // value indices in `compiled`
  std::unique_ptr<Executable> exe;
  double compile_ms = 0;

  /// A submitted run: the session's ticket, the executable's, and what to return.
  struct Pending {
    int64_t ticket = 0;
    int64_t exe_ticket = 0;
    std::vector<std::string> fetch;
  };
  std::deque<Pending> pending;                                // in submit order
  std::map<int64_t, std::map<std::string, Tensor>> finished;  // waited for early (out of order)
  int64_t next_ticket = 0;
  /// Guards the submit/wait bookkeeping above (run() calls from several threads execute
  /// concurrently: the executables give each caller its own execution context).
  std::mutex mu;

  /// Recompiles when `fetch` names a tensor the current executable does not keep.
  void ensure_kept(const std::vector<std::string>& fetch);
  /// The executable's inputs (graph input order, canonical layout) from a name-keyed map.
  std::vector<Tensor> make_feed(const std::map<std::string, Tensor>& inputs) const;
  /// The session's answer (outputs or `fetch`, source layout) from the executable's results.
  std::map<std::string, Tensor> collect(const std::vector<Tensor>& results,
                                        const std::vector<std::string>& fetch) const;
  /// Waits for the oldest pending run and returns its ticket and answer.
  std::pair<int64_t, std::map<std::string, Tensor>> finish_oldest();
  /// Finishes every run in flight, keeping the answers for wait().
  void drain() {
    while (!pending.empty()) {
      auto [t, out] = finish_oldest();
      finished[t] = std::move(out);
    }
  }

  void compile(const std::vector<std::string>& extra) {
    auto t0 = std::chrono::steady_clock::now();
    Graph g = source;
    std::vector<std::string> want = options.taps;
    want.insert(want.end(), extra.begin(), extra.end());
    passes::Protected protect;
    for (int o : g.outputs) protect.insert(g.values[static_cast<size_t>(o)].name);
    for (const auto& w : want) {
      if (is_constant_fetch(w)) continue;
      int v = g.find_value_by_any_name(w);
      if (v < 0) throw unknown_tensor(g, w);
      protect.insert(g.values[static_cast<size_t>(v)].name);
    }
    if (options.keep_all)
      for (const auto& v : g.values) protect.insert(v.name);
    if (options.optimize) passes::optimize(g, protect);
    if (options.precision != Precision::fp32) {
      passes::reduce_precision(g, options.precision == Precision::fp16 ? DType::f16 : DType::bf16,
                               {options.keep_fp32.begin(), options.keep_fp32.end()});
    } else if (!options.keep_fp32.empty()) {
      throw Error("keep_fp32 needs precision fp16 or bf16", g.source_file, {}, "keep_fp32");
    }
    compiled = std::move(g);
    CompileOptions co;
    co.threads = options.threads;
    co.profile = options.profile;
    co.in_flight = options.in_flight;
    keep.clear();
    kept_names.clear();
    for (const auto& w : want) {
      if (is_constant_fetch(w)) {
        kept_names.insert(w);
        continue;
      }
      int v = compiled.find_value_by_any_name(w);
      if (v < 0) throw Error("tensor '" + w + "' was optimized away", compiled.source_file);
      keep.push_back(v);
      kept_names.insert(w);
    }
    if (options.keep_all)
      for (size_t i = 0; i < compiled.values.size(); ++i) keep.push_back(static_cast<int>(i));
    co.keep = keep;
    for (int o : compiled.outputs) co.keep.push_back(o);
    exe = find_backend(options.backend).compile(compiled, co);
    compile_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
};

Session::Session(Graph graph, SessionOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.threads < 1) impl_->options.threads = 1;
  if (impl_->options.in_flight < 1)
    throw Error("in_flight must be at least 1, not " + std::to_string(impl_->options.in_flight),
                graph.source_file, {}, "in_flight");
  prepare_graph(graph);
  for (const auto& v : graph.values)
    if (v.is_constant() && !v.prov.source_name.empty()) impl_->constants.values.push_back(v);
  graph.compact();
  impl_->source = std::move(graph);
  impl_->compile({});
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const Graph& Session::graph() const { return impl_->compiled; }
const Graph& Session::source_graph() const { return impl_->source; }
const SessionOptions& Session::options() const { return impl_->options; }
double Session::compile_ms() const { return impl_->compile_ms; }

std::vector<Session::OpTime> Session::profile() const {
  std::vector<OpTime> r;
  if (!impl_->exe) return r;
  for (auto& t : impl_->exe->profile()) r.push_back(OpTime{t.node, t.op, t.ms, t.calls});
  return r;
}

namespace {
Tensor to_source_layout(const Value& v, const Tensor& t) {
  if (v.prov.to_source.empty() || static_cast<int>(v.prov.to_source.size()) != t.rank()) return t;
  return transpose(t, v.prov.to_source);
}

TensorInfo info_of(const Value& v) {
  return TensorInfo{v.name, v.prov.source_name.empty() ? v.name : v.prov.source_name, v.dtype,
                    source_shape(v)};
}
}  // namespace

std::vector<TensorInfo> Session::inputs() const {
  std::vector<TensorInfo> r;
  for (int i : impl_->compiled.inputs)
    r.push_back(info_of(impl_->compiled.values[static_cast<size_t>(i)]));
  return r;
}

std::vector<TensorInfo> Session::outputs() const {
  std::vector<TensorInfo> r;
  for (int i : impl_->compiled.outputs)
    r.push_back(info_of(impl_->compiled.values[static_cast<size_t>(i)]));
  return r;
}

void Session::Impl::ensure_kept(const std::vector<std::string>& fetch) {
  // Recompile when asked for a tensor the current executable does not keep.
  std::vector<std::string> missing;
  for (const auto& f : fetch) {
    if (kept_names.count(f)) continue;
    int v = compiled.find_value_by_any_name(f);
    bool is_output = false;
    for (int o : compiled.outputs) is_output |= (o == v);
    if (v >= 0 && (is_output || options.keep_all)) continue;
    missing.push_back(f);
  }
  if (missing.empty()) return;
  if (!pending.empty())
    throw Error(
        "cannot fetch '" + missing.front() + "' while " + std::to_string(pending.size()) +
            " submitted run(s) are in flight (it is not kept: add it to the taps, or wait first)",
        compiled.source_file, {}, "output");
  std::vector<std::string> all(kept_names.begin(), kept_names.end());
  for (const auto& t : options.taps) all.erase(std::remove(all.begin(), all.end(), t), all.end());
  all.insert(all.end(), missing.begin(), missing.end());
  compile(all);
}

std::vector<Tensor> Session::Impl::make_feed(const std::map<std::string, Tensor>& inputs) const {
  const Graph& g = compiled;
  std::vector<Tensor> feed(g.inputs.size());
  std::set<std::string> used;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const Value& v = g.values[static_cast<size_t>(g.inputs[i])];
    auto it = inputs.find(v.name);
    if (it == inputs.end() && !v.prov.source_name.empty()) it = inputs.find(v.prov.source_name);
    if (it == inputs.end() && g.inputs.size() == 1 && inputs.size() == 1) it = inputs.begin();
    if (it == inputs.end()) {
      std::string names;
      for (int k : g.inputs)
        names += (names.empty() ? "" : ", ") + g.values[static_cast<size_t>(k)].name;
      throw Error("missing input '" + v.name + "' (the model's inputs: " + names + ")",
                  g.source_file, {}, "input");
    }
    used.insert(it->first);
    Tensor t = it->second;
    Shape want = source_shape(v);
    if (t.shape() != want)
      throw Error("input '" + v.name + "' has shape " + shape_str(t.shape()) +
                      ", the model expects " + shape_str(want),
                  g.source_file, {}, "input");
    if (t.dtype() != v.dtype) {
      if (is_float(t.dtype()) && is_float(v.dtype))
        t = t.to(v.dtype);
      else
        throw Error(std::string("input '") + v.name + "' has dtype " + dtype_name(t.dtype()) +
                        ", the model expects " + dtype_name(v.dtype),
                    g.source_file, {}, "input");
    }
    if (!v.prov.to_source.empty() && static_cast<int>(v.prov.to_source.size()) == t.rank())
      t = transpose(t, inverse_permutation(v.prov.to_source));
    feed[i] = t;
  }
  for (const auto& [k, _] : inputs)
    if (!used.count(k))
      throw Error("the model has no input named '" + k + "'", g.source_file, {}, "input");
  return feed;
}

std::map<std::string, Tensor> Session::Impl::collect(const std::vector<Tensor>& results,
                                                     const std::vector<std::string>& fetch) const {
  const Graph& g = compiled;
  if (results.size() != keep.size() + g.outputs.size())
    throw Error("the " + options.backend + " backend returned " + std::to_string(results.size()) +
                    " tensors, expected " + std::to_string(keep.size() + g.outputs.size()),
                g.source_file);
  // results are in the order of co.keep: keep, then graph outputs.
  std::map<std::string, Tensor> out;
  auto value_result = [&](int v) -> Tensor {
    for (size_t k = 0; k < keep.size(); ++k)
      if (keep[k] == v) return results[k];
    for (size_t k = 0; k < g.outputs.size(); ++k)
      if (g.outputs[k] == v) return results[keep.size() + k];
    throw Error("tensor '" + g.values[static_cast<size_t>(v)].name + "' was not kept",
                g.source_file);
  };
  if (fetch.empty()) {
    for (int o : g.outputs) {
      const Value& v = g.values[static_cast<size_t>(o)];
      out[v.prov.source_name.empty() ? v.name : v.prov.source_name] =
          to_source_layout(v, value_result(o));
    }
  } else {
    for (const auto& f : fetch) {
      if (is_constant_fetch(f)) {
        const Value& c = constants.values[static_cast<size_t>(constants.find_value_by_any_name(f))];
        out[f] = to_source_layout(c, c.constant);
        continue;
      }
      int v = g.find_value_by_any_name(f);
      if (v < 0) throw unknown_tensor(g, f);
      out[f] = to_source_layout(g.values[static_cast<size_t>(v)], value_result(v));
    }
  }
  return out;
}

std::pair<int64_t, std::map<std::string, Tensor>> Session::Impl::finish_oldest() {
  Pending p = std::move(pending.front());
  pending.pop_front();
  std::vector<Tensor> results = exe->wait(p.exe_ticket);
  return {p.ticket, collect(results, p.fetch)};
}

std::map<std::string, Tensor> Session::run(const std::map<std::string, Tensor>& inputs,
                                           const std::vector<std::string>& fetch) {
  Impl& m = *impl_;
  std::vector<Tensor> feed;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.drain();  // a backend runs one thing at a time per slot: finish what was submitted first
    m.ensure_kept(fetch);
    feed = m.make_feed(inputs);
  }
  return m.collect(m.exe->run(feed), fetch);
}

int64_t Session::submit(const std::map<std::string, Tensor>& inputs,
                        const std::vector<std::string>& fetch) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  m.ensure_kept(fetch);
  std::vector<Tensor> feed = m.make_feed(inputs);
  Impl::Pending p;
  p.exe_ticket = m.exe->submit(feed);
  p.ticket = m.next_ticket++;
  p.fetch = fetch;
  m.pending.push_back(std::move(p));
  return m.pending.back().ticket;
}

std::map<std::string, Tensor> Session::wait(int64_t ticket) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.mu);
  if (auto it = m.finished.find(ticket); it != m.finished.end()) {
    std::map<std::string, Tensor> r = std::move(it->second);
    m.finished.erase(it);
    return r;
  }
  bool known = false;
  for (const auto& p : m.pending) known |= p.ticket == ticket;
  if (!known)
    throw Error(
        "no submitted run with ticket " + std::to_string(ticket) +
            (ticket >= 0 && ticket < m.next_ticket ? " is pending (each is waited for once)" : ""),
        m.compiled.source_file, {}, "ticket");
  // Executables finish runs in submit order: earlier tickets are kept for their own wait().
  while (true) {
    auto [t, out] = m.finish_oldest();
    if (t == ticket) return out;
    m.finished[t] = std::move(out);
  }
}

int Session::pending() const {
  return static_cast<int>(impl_->pending.size() + impl_->finished.size());
}

double Session::last_device_ms() const { return impl_->exe ? impl_->exe->last_device_ms() : -1.0; }

void check_backend(const std::string& name) { find_backend(name); }

Precision parse_precision(const std::string& name) {
  for (Precision p : {Precision::fp32, Precision::fp16, Precision::bf16})
    if (name == precision_name(p)) return p;
  throw Error("precision must be fp32, fp16 or bf16, not '" + name + "'", {}, {}, "precision");
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::fp32:
      return "fp32";
    case Precision::fp16:
      return "fp16";
    case Precision::bf16:
      return "bf16";
  }
  return "unknown";
}

}  // namespace anvil
