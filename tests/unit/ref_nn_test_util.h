// Shared helpers of the reference-kernel NN tests (test_ref_nn.cpp, test_ref_nn_norm_resize.cpp):
// the deterministic input pattern pat(), a one-node graph runner and a tensor comparison.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "anvil/graph.h"
#include "anvil/ops.h"
#include "anvil/tensor.h"

namespace anvil::ref_nn_test {

inline Tensor pat(const Shape& s, int64_t mul, int64_t mod, int64_t sub, double div,
                  DType dt = DType::f32) {
  Tensor t(dt, s);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.set(i, static_cast<double>((i * mul) % mod - sub) / div);
  return t;
}

inline Tensor vals(const Shape& s, const std::vector<double>& v, DType dt = DType::f32) {
  Tensor t(dt, s);
  EXPECT_EQ(t.numel(), static_cast<int64_t>(v.size()));
  for (int64_t i = 0; i < t.numel() && i < static_cast<int64_t>(v.size()); ++i)
    t.set(i, v[static_cast<size_t>(i)]);
  return t;
}

inline Tensor i64s(const std::vector<int64_t>& v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

inline Attributes attrs(std::initializer_list<std::pair<std::string, AttrValue>> kv) {
  Attributes a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

using I = std::vector<int64_t>;

/// Builds a one-node graph (all inputs constants, undefined = omitted), infers shapes and
/// runs the reference kernel.
inline std::vector<Tensor> run_op(const std::string& op, const std::vector<Tensor>& inputs,
                                  const Attributes& a = {}, int nout = 1) {
  Graph g;
  std::vector<int> ids;
  for (size_t i = 0; i < inputs.size(); ++i)
    ids.push_back(inputs[i].defined() ? g.add_constant("in" + std::to_string(i), inputs[i]) : -1);
  int n = g.add_node(op, "node", ids, a, nout);
  g.outputs = g.nodes[static_cast<size_t>(n)].outputs;
  g.validate();
  g.infer_shapes();
  return evaluate_node(g, g.nodes[static_cast<size_t>(n)], inputs);
}

inline Tensor run1(const std::string& op, const std::vector<Tensor>& inputs,
                   const Attributes& a = {}) {
  return run_op(op, inputs, a, 1)[0];
}

inline void expect_tensor(const Tensor& t, const Shape& shape, const std::vector<double>& want,
                          double tol = 1e-5) {
  ASSERT_EQ(t.shape(), shape);
  ASSERT_EQ(t.numel(), static_cast<int64_t>(want.size()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    double w = want[static_cast<size_t>(i)];
    if (std::isinf(w)) {
      EXPECT_EQ(t.get(i), w) << "at flat index " << i;
    } else {
      EXPECT_NEAR(t.get(i), w, tol * (1.0 + std::abs(w))) << "at flat index " << i;
    }
  }
}

}  // namespace anvil::ref_nn_test
