// Activations that can be fused into Conv/ConvTranspose/Gemm/MatMul by the fuse_activations
// pass. One definition shared by the pass, the reference kernels and later backends.
#pragma once

#include <cmath>
#include <string>

#include "anvil/error.h"

namespace anvil {

/// The op names that can be fused ("" means none).
inline bool is_fusable_activation(const std::string& op) {
  return op == "Relu" || op == "Clip" || op == "LeakyRelu" || op == "Sigmoid" || op == "Tanh" ||
         op == "HardSigmoid" || op == "Elu";
}

/// y = act(x). alpha/beta: Clip min/max, LeakyRelu/Elu alpha, HardSigmoid alpha/beta.
inline double apply_activation(const std::string& act, double alpha, double beta, double x) {
  if (act.empty()) return x;
  if (act == "Relu") return x < 0 ? 0.0 : x;  // NaN stays NaN
  if (act == "Clip") return x < alpha ? alpha : (x > beta ? beta : x);
  if (act == "LeakyRelu") return x >= 0 ? x : alpha * x;
  if (act == "Sigmoid") return 1.0 / (1.0 + std::exp(-x));
  if (act == "Tanh") return std::tanh(x);
  if (act == "HardSigmoid") {
    double y = alpha * x + beta;
    return y < 0 ? 0.0 : (y > 1 ? 1.0 : y);
  }
  if (act == "Elu") return x >= 0 ? x : alpha * (std::exp(x) - 1.0);
  throw Error("unknown fused activation '" + act + "'", {}, {}, "activation");
}

}  // namespace anvil
