// Weight hypotheses: kernels spatially flipped (Theano), weights transposed (Dense matrix,
// conv kernel H/W or in/out swapped), flatten order CHW/HWC before a Dense layer.
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

std::string errs(const Probe& p, double after) {
  return " (relative error " + fmt(p.before) + " -> " + fmt(after) + ")";
}

// Reverses every axis from `from` on.
Tensor reverse_axes(const Tensor& t, int from) {
  Tensor r(t.dtype(), t.shape());
  const int R = t.rank();
  std::vector<int64_t> idx(static_cast<size_t>(R), 0);
  for (int64_t i = 0; i < t.numel(); ++i) {
    // flat index of the reversed position
    int64_t j = 0;
    for (int d = 0; d < R; ++d) {
      int64_t x = idx[static_cast<size_t>(d)];
      if (d >= from) x = t.dim(d) - 1 - x;
      j = j * t.dim(d) + x;
    }
    r.set(j, t.get(i));
    for (int d = R - 1; d >= 0; --d) {
      if (++idx[static_cast<size_t>(d)] < t.dim(d)) break;
      idx[static_cast<size_t>(d)] = 0;
    }
  }
  return r;
}

// The data of `t` read as shape `as` (same count), transposed by `perm` (back to t's shape).
Tensor reread(const Tensor& t, const Shape& as, const std::vector<int>& perm) {
  return transpose(t.reshaped(as), perm).clone();
}

const char* pname(const Graph& g, int v) {
  const Value& val = g.values[static_cast<size_t>(v)];
  return (val.prov.source_name.empty() ? val.name : val.prov.source_name).c_str();
}

std::optional<Finding> best_of(const Probe& p, const std::string& cause,
                               std::vector<std::pair<Graph, std::string>> graphs) {
  std::optional<Finding> best;
  for (auto& [g, what] : graphs) {
    double after = p.error_of(g);
    if (!p.explains(after)) continue;
    if (!best || after < best->after)
      best = Finding{{cause, pname(*p.graph, p.layer.value), what + errs(p, after)}, after};
  }
  return best;
}

bool is_weight(const Graph& g, const Node& n, size_t i) {
  return n.inputs.size() > i && n.inputs[i] >= 0 &&
         g.values[static_cast<size_t>(n.inputs[i])].is_constant();
}

// Walks back from v through reshaping ops to the tensor flattened into it; the dims after
// the batch (canonical layout), or empty.
std::vector<int64_t> preflatten_dims(const Graph& g, int v, int64_t k) {
  for (int hops = 0; hops < 8 && v >= 0; ++hops) {
    const Value& val = g.values[static_cast<size_t>(v)];
    if (val.shape.size() >= 3) {
      std::vector<int64_t> d(val.shape.begin() + 1, val.shape.end());
      int64_t n = 1;
      for (auto x : d) n *= x;
      if (n == k) return d;
      return {};
    }
    if (val.producer < 0) return {};
    const Node& n = g.nodes[static_cast<size_t>(val.producer)];
    static const std::set<std::string> pass{"Flatten", "Reshape", "Identity", "Dropout", "Squeeze"};
    if (!pass.count(n.op) || n.inputs.empty()) return {};
    v = n.inputs[0];
  }
  return {};
}

// perm[i] = the old position of new position i, for the index space `dims` (row-major) read
// as dims rotated: new index (i1..im) takes old index with dims cyclically shifted by `shift`.
std::vector<int64_t> rotation(const std::vector<int64_t>& dims, int shift) {
  const size_t m = dims.size();
  std::vector<int64_t> rot(m);  // the order the data is really in
  for (size_t i = 0; i < m; ++i) rot[i] = dims[(i + m - static_cast<size_t>(shift)) % m];
  int64_t total = 1;
  for (auto x : dims) total *= x;
  std::vector<int64_t> perm(static_cast<size_t>(total));
  std::vector<int64_t> idx(m, 0);
  for (int64_t f = 0; f < total; ++f) {
    // old flat index: idx in rotated order
    int64_t o = 0;
    for (size_t i = 0; i < m; ++i) o = o * rot[i] + idx[(i + m - static_cast<size_t>(shift)) % m];
    perm[static_cast<size_t>(f)] = o;
    for (size_t d = m; d-- > 0;) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return perm;
}

// New tensor whose index `axis` position f takes old position perm[f] (2-D tensors).
Tensor permute_axis(const Tensor& t, int axis, const std::vector<int64_t>& perm) {
  Tensor r(t.dtype(), t.shape());
  const int64_t rows = t.dim(0), cols = t.dim(1);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      int64_t si = axis == 0 ? perm[static_cast<size_t>(i)] : i,
              sj = axis == 1 ? perm[static_cast<size_t>(j)] : j;
      r.set(i * cols + j, t.get(si * cols + sj));
    }
  return r;
}

std::vector<int64_t> inverse_perm(const std::vector<int64_t>& p) {
  std::vector<int64_t> r(p.size());
  for (size_t i = 0; i < p.size(); ++i) r[static_cast<size_t>(p[i])] = static_cast<int64_t>(i);
  return r;
}

std::string dims_text(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s;
}

}  // namespace

std::optional<Finding> weights_flipped(const Probe& p) {
  std::vector<std::pair<Graph, std::string>> gs;
  Graph g = *p.graph;
  bool any = false;
  for (int ni : p.layer.nodes) {
    const Node& n = g.nodes[static_cast<size_t>(ni)];
    if ((n.op != "Conv" && n.op != "ConvTranspose") || !is_weight(g, n, 1)) continue;
    Value& w = g.values[static_cast<size_t>(n.inputs[1])];
    if (w.constant.rank() < 3) continue;
    w.constant = reverse_axes(w.constant, 2);
    any = true;
  }
  if (!any) return std::nullopt;
  gs.emplace_back(
      std::move(g),
      "the convolution kernel is spatially flipped: with the kernel reversed in every "
      "spatial axis the layer matches the reference (a kernel stored for true convolution, "
      "e.g. Keras with the Theano backend, read as cross-correlation, or the reverse)");
  return best_of(p, "weights_flipped", std::move(gs));
}

std::optional<Finding> weights_transposed(const Probe& p) {
  std::vector<std::pair<Graph, std::string>> gs;
  for (int ni : p.layer.nodes) {
    const Node& n = p.graph->nodes[static_cast<size_t>(ni)];
    if ((n.op == "Gemm" || n.op == "MatMul") && is_weight(*p.graph, n, 1)) {
      const Tensor& w = p.graph->values[static_cast<size_t>(n.inputs[1])].constant;
      if (w.rank() != 2) continue;
      Graph g = *p.graph;
      g.values[static_cast<size_t>(n.inputs[1])].constant = reread(w, {w.dim(1), w.dim(0)}, {1, 0});
      gs.emplace_back(std::move(g), "the weight matrix is transposed: read in the other order (" +
                                        std::to_string(w.dim(1)) + "x" + std::to_string(w.dim(0)) +
                                        " data taken as " + std::to_string(w.dim(0)) + "x" +
                                        std::to_string(w.dim(1)) +
                                        ") the layer matches the reference");
    }
    if ((n.op == "Conv" || n.op == "ConvTranspose") && is_weight(*p.graph, n, 1)) {
      const Tensor& w = p.graph->values[static_cast<size_t>(n.inputs[1])].constant;
      if (w.rank() == 4 && (w.dim(2) > 1 || w.dim(3) > 1)) {
        Graph g = *p.graph;
        g.values[static_cast<size_t>(n.inputs[1])].constant =
            reread(w, {w.dim(0), w.dim(1), w.dim(3), w.dim(2)}, {0, 1, 3, 2});
        gs.emplace_back(std::move(g),
                        "the convolution kernel's height and width are swapped (kernel read as "
                        "(kw, kh)); with them swapped back the layer matches the reference");
      }
      if (w.rank() >= 3 && n.attrs.get_int("group", 1) == 1 && w.dim(0) > 1 && w.dim(1) > 1) {
        Shape as = w.shape();
        std::swap(as[0], as[1]);
        std::vector<int> perm(static_cast<size_t>(w.rank()));
        for (int i = 0; i < w.rank(); ++i) perm[static_cast<size_t>(i)] = i;
        std::swap(perm[0], perm[1]);
        Graph g = *p.graph;
        g.values[static_cast<size_t>(n.inputs[1])].constant = reread(w, as, perm);
        gs.emplace_back(std::move(g),
                        "the convolution kernel's input and output channel axes are swapped "
                        "(e.g. (kh, kw, in, out) read as (kh, kw, out, in)); swapped back the "
                        "layer matches the reference");
      }
    }
  }
  if (gs.empty()) return std::nullopt;
  return best_of(p, "weights_transposed", std::move(gs));
}

std::optional<Finding> flatten_order(const Probe& p) {
  const Graph& G = *p.graph;
  std::optional<Finding> best;
  auto consider = [&](double after, const std::string& what) {
    if (!p.explains(after)) return;
    if (!best || after < best->after)
      best = Finding{{"flatten_order", pname(G, p.layer.value), what + errs(p, after)}, after};
  };
  // (a) a Dense layer after a flatten: its weight rows in the other order
  for (int ni : p.layer.nodes) {
    const Node& n = G.nodes[static_cast<size_t>(ni)];
    if ((n.op != "Gemm" && n.op != "MatMul") || !is_weight(G, n, 1) || n.inputs[0] < 0) continue;
    const Tensor& w = G.values[static_cast<size_t>(n.inputs[1])].constant;
    if (w.rank() != 2) continue;
    const bool trans_b = n.op == "Gemm" && n.attrs.get_int("transB", 0) != 0;
    const int kaxis = trans_b ? 1 : 0;
    auto dims = preflatten_dims(G, n.inputs[0], w.dim(kaxis));
    if (dims.size() < 2) continue;
    for (int shift : {1, static_cast<int>(dims.size()) - 1})
      for (bool inv : {false, true}) {
        auto perm = rotation(dims, shift);
        Graph g = G;
        g.values[static_cast<size_t>(n.inputs[1])].constant =
            permute_axis(w, kaxis, inv ? inverse_perm(perm) : perm);
        consider(p.error_of(g),
                 "the Dense/InnerProduct weights expect the flattened input in the other order "
                 "(channels-first C,H,W vs channels-last H,W,C over " +
                     dims_text(dims) +
                     "); with the weight rows permuted the layer matches the reference");
      }
  }
  // (b) the flatten itself: our flattened tensor is the reference's in another order
  for (int ni : p.layer.nodes) {
    const Node& n = G.nodes[static_cast<size_t>(ni)];
    if ((n.op != "Flatten" && n.op != "Reshape") || n.inputs.empty() || n.inputs[0] < 0) continue;
    const Value& out = G.values[static_cast<size_t>(p.layer.value)];
    if (out.shape.size() != 2) continue;
    const Value& in = G.values[static_cast<size_t>(n.inputs[0])];
    if (in.shape.size() < 3) continue;
    std::vector<int64_t> dims(in.shape.begin() + 1, in.shape.end());
    Tensor got = p.run(G);
    if (!got.defined() || got.rank() != 2) continue;
    int64_t k = 1;
    for (auto x : dims) k *= x;
    if (k != got.dim(1)) continue;
    for (int shift : {1, static_cast<int>(dims.size()) - 1})
      for (bool inv : {false, true}) {
        auto perm = rotation(dims, shift);
        consider(rel_error(permute_axis(got, 1, inv ? inverse_perm(perm) : perm), p.want),
                 "the flatten order differs (channels-first C,H,W vs channels-last H,W,C over " +
                     dims_text(dims) +
                     "): our flattened values are the reference's in the other order");
      }
  }
  return best;
}

}  // namespace anvil::diag
