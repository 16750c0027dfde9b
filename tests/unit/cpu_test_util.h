// Helpers for the cpu backend tests: small graphs with random inputs/weights, run on the cpu
// and the reference backend, compared element by element.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/session.h"
#include "anvil/tensor.h"
#include "backend/backend.h"
#include "passes/passes.h"

namespace anvil::testing {

inline Tensor random_tensor(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t(DType::f32, s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng);
  return t;
}

/// A graph under construction with its run-time feed.
struct TestGraph {
  Graph g;
  std::map<std::string, Tensor> feed;
  uint32_t seed = 1;

  int input(const std::string& name, const Shape& s) {
    feed[name] = random_tensor(s, seed++);
    return g.add_input(name, DType::f32, s);
  }
  int weight(const std::string& name, const Shape& s, float scale = 1.f) {
    return g.add_constant(name, random_tensor(s, seed++, -scale, scale));
  }
  int constant(const std::string& name, Tensor t) { return g.add_constant(name, std::move(t)); }
  int node(const std::string& op, const std::vector<int>& ins, Attributes a = {},
           int num_outputs = 1) {
    int n = g.add_node(op, g.unique_name(op), ins, std::move(a), num_outputs);
    return g.nodes[static_cast<size_t>(n)].outputs[0];
  }
  int node_n(const std::string& op, const std::vector<int>& ins, Attributes a, int num_outputs) {
    return g.add_node(op, g.unique_name(op), ins, std::move(a), num_outputs);
  }
  void output(int v) { g.outputs.push_back(v); }
  std::string name(int v) const { return g.values[static_cast<size_t>(v)].name; }
};

inline Attributes attrs(std::initializer_list<std::pair<const std::string, AttrValue>> l) {
  Attributes a;
  for (const auto& [k, v] : l) a.set(k, v);
  return a;
}

/// Largest |got - want| / (atol + rtol |want|); <= 1 passes.
inline double closeness(const Tensor& got, const Tensor& want, double rtol, double atol) {
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double a = got.get(i), b = want.get(i);
    if (std::isnan(a) != std::isnan(b)) return INFINITY;
    if (std::isnan(a)) continue;
    worst = std::max(worst, std::abs(a - b) / (atol + rtol * std::abs(b)));
  }
  return worst;
}

/// Runs `tg` on the reference and the cpu backend (taps fetched too) and expects equal
/// results within rtol/atol. Returns the cpu session's compiled step count via profile.
inline void expect_cpu_matches_reference(const TestGraph& tg,
                                         const std::vector<std::string>& taps = {},
                                         double rtol = 1e-4, double atol = 1e-4, int threads = 1,
                                         bool optimize = true) {
  SessionOptions ro;
  ro.backend = "reference";
  ro.taps = taps;
  ro.optimize = optimize;
  SessionOptions co = ro;
  co.backend = "cpu";
  co.threads = threads;
  Session ref(tg.g, ro), cpu(tg.g, co);
  std::vector<std::string> fetch = taps;
  for (int o : tg.g.outputs) fetch.push_back(tg.g.values[static_cast<size_t>(o)].name);
  auto want = ref.run(tg.feed, fetch);
  for (int rep = 0; rep < 2; ++rep) {  // twice: the arena and bound memories are reused
    auto got = cpu.run(tg.feed, fetch);
    for (const auto& f : fetch) {
      ASSERT_TRUE(got.count(f)) << f;
      ASSERT_EQ(got[f].shape(), want[f].shape()) << f;
      ASSERT_EQ(got[f].dtype(), want[f].dtype()) << f;
      double c = closeness(got[f], want[f], rtol, atol);
      EXPECT_LE(c, 1.0) << "tensor " << f << " (run " << rep << ")";
    }
  }
}

/// The cpu backend's steps for the optimized graph, as "op" strings (fallbacks end in
/// " (ref)", reorders are "Reorder", fused groups "Conv+Add+Relu"), after one run.
inline std::vector<std::string> cpu_steps(const TestGraph& tg,
                                          const std::vector<std::string>& taps = {}) {
  Graph g = tg.g;
  g.toposort();
  passes::fold_constants(g, {});
  g.compact();
  passes::Protected protect;
  for (int o : g.outputs) protect.insert(g.values[static_cast<size_t>(o)].name);
  for (const auto& t : taps) protect.insert(t);
  passes::optimize(g, protect);
  CompileOptions co;
  co.profile = true;
  for (const auto& t : taps) co.keep.push_back(g.find_value(t));
  for (int o : g.outputs) co.keep.push_back(o);
  auto exe = find_backend("cpu").compile(g, co);
  std::vector<Tensor> ins;
  for (int i : g.inputs) ins.push_back(tg.feed.at(g.values[static_cast<size_t>(i)].name));
  exe->run(ins);
  std::vector<std::string> r;
  for (const auto& t : exe->profile()) r.push_back(t.op);
  return r;
}

inline std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

inline bool has_fallback(const std::vector<std::string>& steps) {
  for (const auto& s : steps)
    if (s.size() > 6 && s.substr(s.size() - 6) == " (ref)") return true;
  return false;
}

}  // namespace anvil::testing
