// Geometry and normalization hypotheses: padding (same/valid, symmetric/asymmetric),
// pooling output rounding (ceil/floor), batch-norm epsilon.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "verify/diagnose.h"

namespace anvil::diag {
namespace {

std::string fmt(double x) {
  char b[48];
  std::snprintf(b, sizeof b, "%.3g", x);
  return b;
}

std::string ints(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

const std::string& pname(const Graph& g, int v) {
  const Value& val = g.values[static_cast<size_t>(v)];
  return val.prov.source_name.empty() ? val.name : val.prov.source_name;
}

bool is_pool(const std::string& op) {
  return op == "MaxPool" || op == "AveragePool" || op == "LpPool";
}

}  // namespace

std::optional<Finding> padding(const Probe& p) {
  const Graph& G = *p.graph;
  std::optional<Finding> best;
  for (int ni : p.layer.nodes) {
    const Node& n = G.nodes[static_cast<size_t>(ni)];
    const bool conv = n.op == "Conv";
    if (!conv && !is_pool(n.op)) continue;
    if (n.inputs.empty() || n.inputs[0] < 0) continue;
    const Shape& xs = G.values[static_cast<size_t>(n.inputs[0])].shape;
    if (xs.size() < 3) continue;
    const size_t nsp = xs.size() - 2;
    std::vector<int64_t> k;
    if (conv) {
      if (n.inputs.size() < 2 || n.inputs[1] < 0) continue;
      const Shape& ws = G.values[static_cast<size_t>(n.inputs[1])].shape;
      if (ws.size() != xs.size()) continue;
      k.assign(ws.begin() + 2, ws.end());
    } else {
      k = n.attrs.get_ints("kernel_shape", {});
      if (k.size() != nsp) continue;
    }
    auto s = n.attrs.get_ints("strides", std::vector<int64_t>(nsp, 1));
    auto d = n.attrs.get_ints("dilations", std::vector<int64_t>(nsp, 1));
    auto cur = n.attrs.get_ints("pads", std::vector<int64_t>(2 * nsp, 0));
    if (s.size() != nsp || d.size() != nsp || cur.size() != 2 * nsp) continue;
    std::vector<std::pair<std::vector<int64_t>, std::string>> cands;
    std::vector<int64_t> valid(2 * nsp, 0), upper(2 * nsp), lower(2 * nsp), sym_floor(2 * nsp),
        sym_ceil(2 * nsp), swapped(2 * nsp);
    for (size_t i = 0; i < nsp; ++i) {
      const int64_t in = xs[i + 2], ke = (k[i] - 1) * d[i] + 1;
      const int64_t out = (in + s[i] - 1) / s[i];
      const int64_t total = std::max<int64_t>((out - 1) * s[i] + ke - in, 0);
      upper[i] = total / 2,
      upper[i + nsp] = total - total / 2;  // TF/ONNX SAME_UPPER: extra at the end
      lower[i] = total - total / 2, lower[i + nsp] = total / 2;  // SAME_LOWER: extra at the start
      sym_floor[i] = sym_floor[i + nsp] = total / 2;
      sym_ceil[i] = sym_ceil[i + nsp] = (ke - 1) / 2 + ((ke - 1) % 2);
      swapped[i] = cur[i + nsp], swapped[i + nsp] = cur[i];
    }
    std::vector<int64_t> cur_sym(2 * nsp), cur_sym2(2 * nsp);
    for (size_t i = 0; i < nsp; ++i) {
      const int64_t t = cur[i] + cur[i + nsp];
      cur_sym[i] = t / 2, cur_sym[i + nsp] = t - t / 2;
      cur_sym2[i] = t - t / 2, cur_sym2[i + nsp] = t / 2;
    }
    cands = {
        {cur_sym, "the same total padding split evenly, extra at the end"},
        {cur_sym2, "the same total padding split evenly, extra at the start"},
        {valid, "'valid' (no padding)"},
        {upper, "'same' with the extra row/column at the end (TensorFlow/ONNX SAME_UPPER)"},
        {lower, "'same' with the extra row/column at the start (SAME_LOWER)"},
        {sym_floor, "symmetric padding (the 'same' total's floor on both sides)"},
        {sym_ceil, "symmetric padding of (k-1)/2 rounded up on both sides (Theano/Caffe style)"},
        {swapped, "the current padding with begin and end swapped"}};
    // the padding that gives the reference's output size (when the shapes differ), split evenly
    Shape want_c;
    {
      const Value& outv = G.values[static_cast<size_t>(p.layer.value)];
      const auto& ts = outv.prov.to_source;
      if (p.want.rank() == static_cast<int>(xs.size())) {
        want_c.assign(xs.size(), 0);
        for (size_t i = 0; i < xs.size(); ++i)
          want_c[ts.size() == xs.size() ? static_cast<size_t>(ts[i]) : i] =
              p.want.dim(static_cast<int>(i));
      }
    }
    if (!want_c.empty()) {
      std::vector<int64_t> need_even(2 * nsp), need_ceil(2 * nsp);
      bool ok = true;
      for (size_t i = 0; i < nsp; ++i) {
        const int64_t in = xs[i + 2], ke = (k[i] - 1) * d[i] + 1;
        const int64_t total = (want_c[i + 2] - 1) * s[i] + ke - in;
        ok &= total >= 0;
        need_even[i] = total / 2, need_even[i + nsp] = total - total / 2;
        need_ceil[i] = need_ceil[i + nsp] = total - total / 2;
      }
      if (ok) {
        cands.push_back({need_even, "the padding that gives the reference's output size"});
        cands.push_back({need_ceil, "symmetric padding that gives the reference's output size"});
      }
    }
    std::set<std::vector<int64_t>> seen{cur};
    for (auto& [pads, what] : cands) {
      if (!seen.insert(pads).second) continue;
      Graph g = G;
      g.nodes[static_cast<size_t>(ni)].attrs.set("pads", pads);
      double after = p.error_of(g);
      if (!p.explains(after)) continue;
      if (!best || after < best->after)
        best = Finding{
            {"padding", pname(G, p.layer.value),
             "the padding differs: with pads " + ints(pads) + " (" + what + ") instead of " +
                 ints(cur) + " the layer matches the reference (relative error " + fmt(p.before) +
                 " -> " + fmt(after) + ")"},
            after};
    }
  }
  return best;
}

std::optional<Finding> pooling_rounding(const Probe& p) {
  const Graph& G = *p.graph;
  std::optional<Finding> best;
  for (int ni : p.layer.nodes) {
    const Node& n = G.nodes[static_cast<size_t>(ni)];
    if (!is_pool(n.op)) continue;
    const int64_t cur = n.attrs.get_int("ceil_mode", 0);
    Graph g = G;
    g.nodes[static_cast<size_t>(ni)].attrs.set("ceil_mode", int64_t{cur ? 0 : 1});
    double after = p.error_of(g);
    if (!p.explains(after)) continue;
    if (!best || after < best->after)
      best = Finding{{"pooling_rounding", pname(G, p.layer.value),
                      std::string("pooling output size rounding: the reference rounds ") +
                          (cur ? "down (floor)" : "up (ceil, as Caffe does)") +
                          " where the model rounds " + (cur ? "up (ceil)" : "down (floor)") +
                          " (relative error " + fmt(p.before) + " -> " + fmt(after) + ")"},
                     after};
  }
  return best;
}

std::optional<Finding> batchnorm_epsilon(const Probe& p) {
  const Graph& G = *p.graph;
  std::optional<Finding> best;
  for (int ni : p.layer.nodes) {
    const Node& n = G.nodes[static_cast<size_t>(ni)];
    if (n.op != "BatchNormalization" || n.inputs.size() < 5) continue;
    const double cur = n.attrs.get_float("epsilon", 1e-5);
    std::vector<double> cands = {1e-3, 1e-5, 1e-4, 1e-6, 1e-2, 1e-1, 2e-5, 1.001e-5, 0};
    // Solve for the epsilon when this node computes the layer's output.
    if (n.outputs[0] == p.layer.value) {
      bool consts = true;
      for (size_t i = 1; i < 5; ++i)
        consts &= n.inputs[i] >= 0 && G.values[static_cast<size_t>(n.inputs[i])].is_constant();
      auto vals = p.run_values(G);
      if (consts && vals && vals->count(n.inputs[0])) {
        const Tensor& x = vals->at(n.inputs[0]);
        const Tensor y = to_canonical(G.values[static_cast<size_t>(p.layer.value)], p.want);
        const Tensor& gm = G.values[static_cast<size_t>(n.inputs[1])].constant;
        const Tensor& bt = G.values[static_cast<size_t>(n.inputs[2])].constant;
        const Tensor& mu = G.values[static_cast<size_t>(n.inputs[3])].constant;
        const Tensor& var = G.values[static_cast<size_t>(n.inputs[4])].constant;
        if (x.shape() == y.shape() && x.rank() >= 2) {
          const int64_t C = x.dim(1);
          int64_t inner = 1;
          for (int i = 2; i < x.rank(); ++i) inner *= x.dim(i);
          std::vector<double> eps;
          for (int64_t c = 0; c < C && gm.numel() == C && var.numel() == C; ++c) {
            double ab = 0, aa = 0;
            for (int64_t b = 0; b < x.dim(0); ++b)
              for (int64_t i = 0; i < inner; ++i) {
                int64_t f = (b * C + c) * inner + i;
                double a = gm.get(c) * (x.get(f) - mu.get(c)), yy = y.get(f) - bt.get(c);
                ab += a * yy;
                aa += yy * yy;
              }
            // y - beta = a / s  ->  s = sum(a (y-beta)) / sum((y-beta)^2)
            if (aa > 0 && ab > 0) {
              double sd = ab / aa;
              eps.push_back(sd * sd - var.get(c));
            }
          }
          if (!eps.empty()) {
            std::nth_element(eps.begin(), eps.begin() + static_cast<long>(eps.size() / 2),
                             eps.end());
            double e = eps[eps.size() / 2];
            if (e > 0) {
              char b[32];
              std::snprintf(b, sizeof b, "%.2g", e);
              cands.insert(cands.begin(), std::strtod(b, nullptr));
              cands.insert(cands.begin() + 1, e);
            }
          }
        }
      }
    }
    for (double e : cands) {
      if (e == cur || e < 0) continue;
      Graph g = G;
      g.nodes[static_cast<size_t>(ni)].attrs.set("epsilon", e);
      double after = p.error_of(g);
      if (!p.explains(after)) continue;
      if (!best || after < best->after * 0.5)
        best = Finding{{"batchnorm_epsilon", pname(G, p.layer.value),
                        "batch-norm epsilon: with epsilon " + fmt(e) + " instead of the model's " +
                            fmt(cur) + " the layer matches the reference (relative error " +
                            fmt(p.before) + " -> " + fmt(after) + ")"},
                       after};
    }
  }
  return best;
}

}  // namespace anvil::diag
