// Pattern passes: chains that exporters write out op by op, replaced by the one canonical op
// that backends run as a single kernel.
//   fuse_layernorm: ReduceMean -> Sub -> Pow(2) | Mul(d, d) -> ReduceMean -> Add(eps) -> Sqrt
//                   -> Div [-> Mul(gamma)] [-> Add(beta)]  (torch < opset 17, TF/Keras)
//                   => LayerNormalization(x, gamma | 1, beta) over the reduced trailing axes.
//   fuse_gelu:      x * 0.5 * (1 + erf(x / sqrt 2)) in torch's order (and its commutations,
//                   x * (1/sqrt 2) for the Div)  => Gelu(x).
// Every intermediate must have only the chain's consumers and must not be protected or a
// graph output; the last node of the chain is rewritten in place (its output keeps its name).
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "passes/passes.h"

namespace anvil::passes {

namespace {

struct Matcher {
  Graph& g;
  const Protected& protect;
  std::vector<bool> is_output;
  std::vector<std::vector<int>> users;

  Matcher(Graph& graph, const Protected& p) : g(graph), protect(p) {
    is_output.assign(g.values.size(), false);
    for (int o : g.outputs) is_output[static_cast<size_t>(o)] = true;
    users.assign(g.values.size(), {});
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].dead) continue;
      for (int in : g.nodes[i].inputs)
        if (in >= 0) {
          auto& u = users[static_cast<size_t>(in)];
          if (u.empty() || u.back() != static_cast<int>(i)) u.push_back(static_cast<int>(i));
        }
    }
  }
  const Value& val(int v) const { return g.values[static_cast<size_t>(v)]; }
  /// The node producing v when it is `op`, alive, single-output.
  Node* prod(int v, const char* op) {
    if (v < 0) return nullptr;
    const int p = val(v).producer;
    if (p < 0) return nullptr;
    Node& n = g.nodes[static_cast<size_t>(p)];
    if (n.dead || n.op != op || n.outputs.size() != 1) return nullptr;
    return &n;
  }
  /// v is an internal value: `count` consumers, not protected, not an output.
  bool internal(int v, size_t count) const {
    return v >= 0 && !is_output[static_cast<size_t>(v)] && !protect.count(val(v).name) &&
           users[static_cast<size_t>(v)].size() == count;
  }
  /// The scalar of a constant value (any float/int dtype, one element), or nullopt.
  std::optional<double> scalar(int v) const {
    if (v < 0 || !val(v).is_constant() || val(v).constant.numel() != 1) return std::nullopt;
    return val(v).constant.get(0);
  }
  /// For a binary node with one scalar-constant input: the other input, and the constant.
  std::optional<std::pair<int, double>> with_scalar(const Node& n) const {
    if (n.inputs.size() != 2) return std::nullopt;
    if (auto c = scalar(n.inputs[1])) return std::pair{n.inputs[0], *c};
    if (auto c = scalar(n.inputs[0])) return std::pair{n.inputs[1], *c};
    return std::nullopt;
  }
  static bool near(double a, double b) { return std::fabs(a - b) <= 1e-5 * std::fabs(b); }
  int index(const Node* n) const { return static_cast<int>(n - g.nodes.data()); }
};

/// The reduced axes of a ReduceMean (attribute or constant input), normalized; keepdims 1.
std::optional<std::vector<int64_t>> mean_axes(const Matcher& m, const Node& n, size_t rank) {
  if (n.attrs.get_int("keepdims", 1) != 1) return std::nullopt;
  std::vector<int64_t> axes;
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    const Value& a = m.val(n.inputs[1]);
    if (!a.is_constant()) return std::nullopt;
    for (int64_t i = 0; i < a.constant.numel(); ++i)
      axes.push_back(static_cast<int64_t>(a.constant.get(i)));
  } else if (n.attrs.has("axes")) {
    axes = n.attrs.get_ints("axes");
  }
  if (axes.empty()) return std::nullopt;
  for (auto& a : axes) {
    if (a < 0) a += static_cast<int64_t>(rank);
    if (a < 0 || a >= static_cast<int64_t>(rank)) return std::nullopt;
  }
  std::sort(axes.begin(), axes.end());
  // trailing and contiguous: LayerNormalization normalizes dims [axis, rank)
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] != static_cast<int64_t>(rank - axes.size() + i)) return std::nullopt;
  return axes;
}

}  // namespace

void fuse_layernorm(Graph& g, const Protected& protect) {
  Matcher m(g, protect);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].dead || g.nodes[i].op != "Div" || g.nodes[i].inputs.size() != 2) continue;
    const int q = g.nodes[i].outputs[0];
    const int d = g.nodes[i].inputs[0];
    Node* sqrt = m.prod(g.nodes[i].inputs[1], "Sqrt");
    Node* sub = m.prod(d, "Sub");
    if (!sqrt || !sub || !m.internal(d, 2) || !m.internal(sqrt->outputs[0], 1)) continue;
    Node* add_eps = m.prod(sqrt->inputs[0], "Add");
    if (!add_eps || !m.internal(add_eps->outputs[0], 1)) continue;
    auto ve = m.with_scalar(*add_eps);
    if (!ve) continue;
    Node* mean2 = m.prod(ve->first, "ReduceMean");
    if (!mean2 || !m.internal(mean2->outputs[0], 1)) continue;
    const int sq = mean2->inputs[0];
    bool sq_ok = false;
    if (Node* pw = m.prod(sq, "Pow")) {
      auto e = m.scalar(pw->inputs.size() == 2 ? pw->inputs[1] : -1);
      sq_ok = pw->inputs[0] == d && e && *e == 2.0;
    } else if (Node* mu = m.prod(sq, "Mul")) {
      sq_ok = mu->inputs.size() == 2 && mu->inputs[0] == d && mu->inputs[1] == d;
    }
    if (!sq_ok || !m.internal(sq, 1)) continue;
    Node* sq_node = &g.nodes[static_cast<size_t>(m.val(sq).producer)];
    const int x = sub->inputs[0];
    Node* mean1 = m.prod(sub->inputs[1], "ReduceMean");
    if (!mean1 || mean1->inputs[0] != x || !m.internal(mean1->outputs[0], 1)) continue;
    if (!m.val(x).shape_known || !is_float(m.val(x).dtype)) continue;
    const Shape xs = m.val(x).shape;
    auto ax1 = mean_axes(m, *mean1, xs.size());
    auto ax2 = mean_axes(m, *mean2, xs.size());
    if (!ax1 || !ax2 || *ax1 != *ax2) continue;
    const int64_t axis = (*ax1)[0];
    const Shape norm(xs.begin() + axis, xs.end());
    // Optional affine tail: Mul(q, gamma) then Add(., beta), gamma/beta constants that
    // broadcast over the normalized dims only.
    auto affine = [&](const Node& n, int in) -> int {
      if (n.inputs.size() != 2) return -1;
      const int c = n.inputs[0] == in ? n.inputs[1] : n.inputs[1] == in ? n.inputs[0] : -1;
      if (c < 0 || !m.val(c).is_constant() || m.val(c).dtype != m.val(x).dtype) return -1;
      const Shape& cs = m.val(c).shape;
      if (cs.size() > norm.size()) return -1;
      for (size_t k = 0; k < cs.size(); ++k)
        if (cs[k] != norm[norm.size() - cs.size() + k]) return -1;
      return c;
    };
    Node* last = &g.nodes[i];
    int gamma = -1, beta = -1;
    if (m.internal(q, 1)) {
      Node& mu = g.nodes[static_cast<size_t>(m.users[static_cast<size_t>(q)][0])];
      if (mu.op == "Mul" && (gamma = affine(mu, q)) >= 0) {
        last = &mu;
        const int mo = mu.outputs[0];
        if (m.internal(mo, 1)) {
          Node& ad = g.nodes[static_cast<size_t>(m.users[static_cast<size_t>(mo)][0])];
          if (ad.op == "Add" && (beta = affine(ad, mo)) >= 0) last = &ad;
        }
      }
    }
    std::vector<Node*> chain{mean1, sub, sq_node, mean2, add_eps, sqrt, &g.nodes[i]};
    if (gamma >= 0)
      chain.push_back(&g.nodes[static_cast<size_t>(m.users[static_cast<size_t>(q)][0])]);
    if (beta >= 0) chain.push_back(last);
    for (Node* n : chain)
      if (n != last) n->dead = true;
    const int last_index = m.index(last);
    const double eps = ve->second;
    if (gamma < 0) {
      Tensor ones(m.val(x).dtype, norm);
      for (int64_t k = 0; k < ones.numel(); ++k) ones.set(k, 1.0);
      gamma = g.add_constant(
          g.unique_name(g.nodes[static_cast<size_t>(last_index)].name + "_scale"), ones);
    }
    Node& ln = g.nodes[static_cast<size_t>(last_index)];
    ln.op = "LayerNormalization";
    ln.inputs = {x, gamma};
    if (beta >= 0) ln.inputs.push_back(beta);
    ln.attrs = Attributes();
    ln.attrs.set("axis", axis);
    ln.attrs.set("epsilon", eps);
    m.users.resize(g.values.size());
    m.is_output.resize(g.values.size(), false);
  }
}

void fuse_gelu(Graph& g, const Protected& protect) {
  Matcher m(g, protect);
  constexpr double kInvSqrt2 = 0.70710678118654752;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& erf = g.nodes[i];
    if (erf.dead || erf.op != "Erf" || erf.inputs.size() != 1) continue;
    // erf(x / sqrt 2) or erf(x * (1 / sqrt 2))
    int x = -1;
    Node* scale = m.prod(erf.inputs[0], "Div");
    if (scale) {
      auto c = scale->inputs.size() == 2 ? m.scalar(scale->inputs[1]) : std::nullopt;
      if (c && Matcher::near(*c, std::sqrt(2.0))) x = scale->inputs[0];
    } else if ((scale = m.prod(erf.inputs[0], "Mul"))) {
      auto c = m.with_scalar(*scale);
      if (c && Matcher::near(c->second, kInvSqrt2)) x = c->first;
    }
    if (x < 0 || !m.internal(erf.inputs[0], 1) || !m.internal(erf.outputs[0], 1)) continue;
    Node& add = g.nodes[static_cast<size_t>(m.users[static_cast<size_t>(erf.outputs[0])][0])];
    auto one = add.op == "Add" ? m.with_scalar(add) : std::nullopt;
    if (!one || one->second != 1.0 || !m.internal(add.outputs[0], 1)) continue;
    // (x * (1 + erf)) * 0.5, or (x * 0.5) * (1 + erf), or x * ((1 + erf) * 0.5)
    Node& mul1 = g.nodes[static_cast<size_t>(m.users[static_cast<size_t>(add.outputs[0])][0])];
    if (mul1.op != "Mul" || mul1.inputs.size() != 2) continue;
    const int other = mul1.inputs[0] == add.outputs[0] ? mul1.inputs[1] : mul1.inputs[0];
    std::vector<Node*> dead{scale, &erf, &add};
    Node* last = nullptr;
    if (other == x) {  // x * (1 + erf), then * 0.5
      if (!m.internal(mul1.outputs[0], 1)) continue;
      Node& mul2 = g.nodes[static_cast<size_t>(m.users[static_cast<size_t>(mul1.outputs[0])][0])];
      auto h = mul2.op == "Mul" ? m.with_scalar(mul2) : std::nullopt;
      if (!h || h->second != 0.5) continue;
      dead.push_back(&mul1);
      last = &mul2;
    } else if (Node* half = m.prod(other, "Mul")) {  // (x * 0.5) * (1 + erf)
      auto h = m.with_scalar(*half);
      if (!h || h->second != 0.5 || h->first != x || !m.internal(other, 1)) continue;
      dead.push_back(half);
      last = &mul1;
    } else {
      continue;
    }
    const int y = last->outputs[0];
    if (!m.val(x).shape_known || m.val(y).shape != m.val(x).shape) continue;
    for (Node* n : dead) n->dead = true;
    last->op = "Gelu";
    last->inputs = {x};
    last->attrs = Attributes();
  }
}

}  // namespace anvil::passes
