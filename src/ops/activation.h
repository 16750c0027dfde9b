// The fused-activation vocabulary: one enum for the activations that passes fuse into a
// producer (attributes activation / activation_alpha / activation_beta) and that every backend
// translates (cpu: oneDNN post-ops, cuda: epilogues, reference: apply_activation).
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "anvil/error.h"
#include "anvil/graph.h"

namespace anvil {

enum class Activation { None, Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid, Elu, HardSwish };

/// The ONNX op name of an activation ("" for None).
inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::None:
      return "";
    case Activation::Relu:
      return "Relu";
    case Activation::Clip:
      return "Clip";
    case Activation::LeakyRelu:
      return "LeakyRelu";
    case Activation::Sigmoid:
      return "Sigmoid";
    case Activation::Tanh:
      return "Tanh";
    case Activation::HardSigmoid:
      return "HardSigmoid";
    case Activation::Elu:
      return "Elu";
    case Activation::HardSwish:
      return "HardSwish";
  }
  return "";
}

/// The activation an op name names ("" -> None); nullopt for any other name.
inline std::optional<Activation> activation_from_name(const std::string& s) {
  for (Activation a : {Activation::None, Activation::Relu, Activation::Clip, Activation::LeakyRelu,
                       Activation::Sigmoid, Activation::Tanh, Activation::HardSigmoid,
                       Activation::Elu, Activation::HardSwish})
    if (s == activation_name(a)) return a;
  return std::nullopt;
}

/// The activation ops that fuse_activations folds into Conv/ConvTranspose/Gemm/MatMul
/// (HardSwish is known to the vocabulary but fused by no pass yet).
inline bool is_fusable_activation(const std::string& op) {
  auto a = activation_from_name(op);
  return a && *a != Activation::None && *a != Activation::HardSwish;
}

/// y = act(x). alpha/beta: Clip min/max, LeakyRelu/Elu alpha, HardSigmoid alpha/beta.
/// NaN propagates as in ONNX Runtime and PyTorch (Relu(NaN) = NaN).
inline double apply_activation(Activation act, double alpha, double beta, double x) {
  switch (act) {
    case Activation::None:
      return x;
    case Activation::Relu:
      return std::isnan(x) ? x : (x > 0 ? x : 0.0);
    case Activation::Clip:
      return x < alpha ? alpha : (x > beta ? beta : x);
    case Activation::LeakyRelu:
      return x >= 0 ? x : alpha * x;
    case Activation::Sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case Activation::Tanh:
      return std::tanh(x);
    case Activation::HardSigmoid: {
      double y = alpha * x + beta;
      return y < 0 ? 0.0 : (y > 1 ? 1.0 : y);
    }
    case Activation::Elu:
      return x >= 0 ? x : alpha * (std::exp(x) - 1.0);
    case Activation::HardSwish: {
      double y = x / 6.0 + 0.5;
      return x * (y < 0 ? 0.0 : (y > 1 ? 1.0 : y));
    }
  }
  throw Error("unknown fused activation", {}, {}, "activation");
}

/// A fused activation with its parameters (alpha/beta as for apply_activation).
struct FusedActivation {
  Activation kind = Activation::None;
  double alpha = 0, beta = 0;
  bool empty() const { return kind == Activation::None; }
  std::string name() const { return activation_name(kind); }
  double operator()(double x) const { return apply_activation(kind, alpha, beta, x); }
};

/// The ONNX defaults of alpha/beta (LeakyRelu 0.01, Elu 1, HardSigmoid 0.2/0.5,
/// Clip -inf/+inf).
inline FusedActivation activation_defaults(Activation a) {
  FusedActivation f{a};
  if (a == Activation::LeakyRelu) f.alpha = 0.01;
  if (a == Activation::Elu) f.alpha = 1.0;
  if (a == Activation::HardSigmoid) f.alpha = 0.2, f.beta = 0.5;
  if (a == Activation::Clip)
    f.alpha = -std::numeric_limits<double>::infinity(),
    f.beta = std::numeric_limits<double>::infinity();
  return f;
}

/// Reads a node's activation / activation_alpha / activation_beta (a missing alpha/beta takes
/// the activation's ONNX default). Throws "<op>: unknown fused activation" (field activation).
inline FusedActivation read_fused_activation(const std::string& op, const Attributes& a) {
  const std::string s = a.get_string("activation", "");
  auto k = activation_from_name(s);
  if (!k) throw Error(op + ": unknown fused activation '" + s + "'", {}, {}, "activation");
  FusedActivation f = activation_defaults(*k);
  if (f.empty()) return f;
  f.alpha = a.get_float("activation_alpha", f.alpha);
  f.beta = a.get_float("activation_beta", f.beta);
  return f;
}

/// Writes the attributes read_fused_activation reads.
inline void write_fused_activation(Attributes& a, const FusedActivation& f) {
  a.set("activation", f.name());
  a.set("activation_alpha", f.alpha);
  a.set("activation_beta", f.beta);
}

/// A standalone activation node (Relu, Clip with constant scalar bounds, LeakyRelu, ...) as a
/// fused activation; nullopt when it is none or its parameters are not constants.
inline std::optional<FusedActivation> activation_of_node(const Graph& g, const Node& n) {
  auto k = activation_from_name(n.op);
  if (!k || *k == Activation::None || n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0] < 0)
    return std::nullopt;
  FusedActivation f = activation_defaults(*k);
  if (*k == Activation::Clip) {
    for (size_t i = 1; i < n.inputs.size(); ++i) {
      const int v = n.inputs[i];
      if (v < 0) continue;
      const Value& c = g.values[static_cast<size_t>(v)];
      if (i > 2 || !c.is_constant() || c.constant.numel() != 1) return std::nullopt;
      (i == 1 ? f.alpha : f.beta) = c.constant.get(0);
    }
    if (f.alpha > f.beta) return std::nullopt;
    return f;
  }
  if (n.inputs.size() != 1) return std::nullopt;
  if (*k == Activation::LeakyRelu || *k == Activation::Elu)
    f.alpha = n.attrs.get_float("alpha", f.alpha);
  if (*k == Activation::HardSigmoid) {
    f.alpha = n.attrs.get_float("alpha", f.alpha);
    f.beta = n.attrs.get_float("beta", f.beta);
  }
  return f;
}

}  // namespace anvil
