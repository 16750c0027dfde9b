// cuda executor helpers: the activation a node computes as a Unary (unary_of, fused_unary),
// and strides / dim orders of a slot's storage (row_major, logical_strides, physical_order,
// simplify).
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/cuda/executor.h"
#include "ops/activation.h"
#include "ops/nn_util.h"

namespace anvil::cuda::exec {

Layout effective(Layout l, const Shape& s) {
  if (l != Layout::Nhwc || s.size() < 3 || s.size() > 4) return Layout::Plain;
  int64_t sp = 1;
  for (size_t i = 2; i < s.size(); ++i) sp *= s[i];
  return s[1] == 1 || sp == 1 ? Layout::Plain : Layout::Nhwc;
}

float to_f(double v) {
  if (std::isnan(v) || std::isinf(v)) return static_cast<float>(v);
  const double lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  return static_cast<float>(std::clamp(v, lo, hi));
}

bool float_type(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }
bool copy_type(DType t) {
  return float_type(t) || t == DType::i32 || t == DType::i64 || t == DType::u8 || t == DType::i8 ||
         t == DType::boolean;
}

/// The activation a node computes, as a Unary, or nullopt.
std::optional<UnaryFn> unary_of(const Graph& g, const Node& n) {
  if (n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0] < 0) return std::nullopt;
  const std::string& op = n.op;
  const Attributes& a = n.attrs;
  UnaryFn f;
  f.name = op;
  if (op == "Clip") {
    double lo = -INFINITY, hi = INFINITY;
    for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
      int v = n.inputs[i];
      if (v < 0) continue;
      const Value& cv = g.values[static_cast<size_t>(v)];
      if (!cv.is_constant() || cv.constant.numel() != 1) return std::nullopt;
      (i == 1 ? lo : hi) = cv.constant.get(0);
    }
    f.op = Unary::Clip;
    f.alpha = to_f(lo);
    f.beta = to_f(hi);
    return f;
  }
  if (n.inputs.size() != 1) return std::nullopt;
  static const std::map<std::string, Unary> plain = {
      {"Relu", Unary::Relu},   {"Sigmoid", Unary::Sigmoid},   {"HardSwish", Unary::HardSwish},
      {"Tanh", Unary::Tanh},   {"Softplus", Unary::Softplus}, {"Softsign", Unary::Softsign},
      {"Exp", Unary::Exp},     {"Log", Unary::Log},           {"Sqrt", Unary::Sqrt},
      {"Abs", Unary::Abs},     {"Neg", Unary::Neg},           {"Reciprocal", Unary::Reciprocal},
      {"Mish", Unary::Mish},   {"Floor", Unary::Floor},       {"Ceil", Unary::Ceil},
      {"Round", Unary::Round}, {"Erf", Unary::Erf},           {"Sin", Unary::Sin},
      {"Cos", Unary::Cos},     {"Sign", Unary::Sign}};
  auto it = plain.find(op);
  if (it != plain.end()) {
    f.op = it->second;
    return f;
  }
  if (op == "LeakyRelu")
    f.op = Unary::LeakyRelu, f.alpha = to_f(a.get_float("alpha", 0.01));
  else if (op == "Elu")
    f.op = Unary::Elu, f.alpha = to_f(a.get_float("alpha", 1.0));
  else if (op == "Celu")
    f.op = Unary::Celu, f.alpha = to_f(a.get_float("alpha", 1.0));
  else if (op == "ThresholdedRelu")
    f.op = Unary::ThresholdedRelu, f.alpha = to_f(a.get_float("alpha", 1.0));
  else if (op == "Selu") {
    f.op = Unary::Selu;
    f.alpha = to_f(a.get_float("alpha", 1.67326319217681884765625));
    f.beta = to_f(a.get_float("gamma", 1.05070102214813232421875));
  } else if (op == "HardSigmoid") {
    f.op = Unary::HardSigmoid;
    f.alpha = to_f(a.get_float("alpha", 0.2));
    f.beta = to_f(a.get_float("beta", 0.5));
  } else if (op == "Gelu") {
    std::string ap = a.get_string("approximate", "none");
    if (ap == "none")
      f.op = Unary::Gelu;
    else if (ap == "tanh")
      f.op = Unary::GeluTanh;
    else
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  return f;
}

/// A fused activation (ops/activation.h) as a Unary; nullopt where the executor has none.
std::optional<UnaryFn> fused_unary(const FusedActivation& fa) {
  UnaryFn f;
  f.name = fa.name();
  switch (fa.kind) {
    case Activation::None:
      return f;
    case Activation::Relu:
      f.op = Unary::Relu;
      return f;
    case Activation::Clip:
      f.op = Unary::Clip, f.alpha = to_f(fa.alpha), f.beta = to_f(fa.beta);
      return f;
    case Activation::LeakyRelu:
      f.op = Unary::LeakyRelu, f.alpha = to_f(fa.alpha);
      return f;
    case Activation::Sigmoid:
      f.op = Unary::Sigmoid;
      return f;
    case Activation::Tanh:
      f.op = Unary::Tanh;
      return f;
    case Activation::HardSigmoid:
      f.op = Unary::HardSigmoid, f.alpha = to_f(fa.alpha), f.beta = to_f(fa.beta);
      return f;
    case Activation::Elu:
      f.op = Unary::Elu, f.alpha = to_f(fa.alpha);
      return f;
    case Activation::HardSwish:
      break;  // no pass fuses it yet: the node runs on the host
  }
  return std::nullopt;
}

/// A node's fused activation attributes (fuse_activations pass) as a Unary.
std::optional<UnaryFn> fused_attr(const Node& n) {
  return fused_unary(read_fused_activation(n.op, n.attrs));
}

/// Drops size-1 dims and merges dims contiguous in every stride set; false when the result
/// has more than kMaxRank dims. `strides` are per dim of `shape`.
bool simplify(Shape& shape, std::vector<std::vector<int64_t>*> strides) {
  Shape s;
  std::vector<std::vector<int64_t>> st(strides.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!s.empty()) {
      bool merge = true;
      for (size_t k = 0; k < strides.size(); ++k)
        merge &= st[k].back() == (*strides[k])[i] * shape[i];
      if (merge) {
        s.back() *= shape[i];
        for (size_t k = 0; k < strides.size(); ++k) st[k].back() = (*strides[k])[i];
        continue;
      }
    }
    s.push_back(shape[i]);
    for (size_t k = 0; k < strides.size(); ++k) st[k].push_back((*strides[k])[i]);
  }
  if (s.empty()) {
    s.push_back(1);
    for (auto& v : st) v.push_back(1);
  }
  shape = s;
  for (size_t k = 0; k < strides.size(); ++k) *strides[k] = st[k];
  return static_cast<int>(shape.size()) <= kMaxRank;
}

std::vector<int64_t> row_major(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t m = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = m;
    m *= s[i];
  }
  return st;
}

/// Element strides per canonical (logical) dim of a slot's storage.
std::vector<int64_t> logical_strides(const Slot& s) {
  if (s.layout == Layout::Nhwc && s.shape.size() == 4) {
    const int64_t C = s.shape[1], H = s.shape[2], W = s.shape[3];
    return {H * W * C, 1, W * C, C};
  }
  if (s.layout == Layout::Nhwc && s.shape.size() == 3) {
    const int64_t C = s.shape[1], W = s.shape[2];
    return {W * C, 1, C};
  }
  return row_major(s.shape);
}

/// Physical dim order of a slot (logical dim of each physical dim).
std::vector<int> physical_order(const Slot& s) {
  if (s.layout == Layout::Nhwc && s.shape.size() == 4) return {0, 2, 3, 1};
  if (s.layout == Layout::Nhwc && s.shape.size() == 3) return {0, 2, 1};
  std::vector<int> o(s.shape.size());
  std::iota(o.begin(), o.end(), 0);
  return o;
}

}  // namespace anvil::cuda::exec
