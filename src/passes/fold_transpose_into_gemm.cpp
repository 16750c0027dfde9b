// fold_transpose_into_gemm: Transpose(perm, perm[0] = 0) -> Flatten(axis 1) / Reshape(N, K)
// -> Gemm/MatMul with a constant weight becomes Flatten(X) -> Gemm with the weight rows
// permuted. This is the pattern importers of channels-last frameworks (Keras, TF) emit to keep
// Flatten's element order exact; folding it removes the runtime transpose.
#include "passes/fold_transpose_into_gemm.h"

#include "anvil/error.h"
#include "passes/passes.h"

namespace anvil::passes {

Tensor permute_gemm_rows_for_transpose(const Tensor& b, bool trans_b, const Shape& x_shape,
                                       const std::vector<int>& perm) {
  int r = static_cast<int>(x_shape.size());
  if (static_cast<int>(perm.size()) != r || r < 2 || perm[0] != 0)
    throw Error("permute_gemm_rows_for_transpose: perm must keep the batch axis first", {}, {},
                "perm");
  // t = transpose(x, perm): t.shape[i] = x.shape[perm[i]]
  Shape ts(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i)
    ts[static_cast<size_t>(i)] = x_shape[static_cast<size_t>(perm[static_cast<size_t>(i)])];
  int64_t k = 1;
  for (int i = 1; i < r; ++i) k *= x_shape[static_cast<size_t>(i)];
  if (b.rank() != 2 || (trans_b ? b.dim(1) : b.dim(0)) != k)
    throw Error(
        "Gemm weight " + shape_str(b.shape()) + " does not match a flattened " + shape_str(x_shape),
        {}, {}, "B");
  int64_t n = trans_b ? b.dim(0) : b.dim(1);
  // Row j of the flattened transposed tensor (multi-index over ts[1..]) is the element of x at
  // index xi with xi[perm[i]] = ti[i]; its flat position in the flattened x is the new row.
  std::vector<int64_t> xstride(static_cast<size_t>(r), 1);
  for (int i = r - 2; i >= 1; --i)
    xstride[static_cast<size_t>(i)] =
        xstride[static_cast<size_t>(i + 1)] * x_shape[static_cast<size_t>(i + 1)];
  Tensor src = b.to(DType::f32);
  Tensor out(DType::f32, b.shape());
  const float* in = src.data<float>();
  float* o = out.data<float>();
  std::vector<int64_t> ti(static_cast<size_t>(r), 0);
  for (int64_t j = 0; j < k; ++j) {
    int64_t rem = j;
    int64_t xrow = 0;
    for (int i = r - 1; i >= 1; --i) {
      int64_t c = rem % ts[static_cast<size_t>(i)];
      rem /= ts[static_cast<size_t>(i)];
      xrow += c * xstride[static_cast<size_t>(perm[static_cast<size_t>(i)])];
    }
    for (int64_t c = 0; c < n; ++c) {
      if (trans_b)
        o[c * k + xrow] = in[c * k + j];
      else
        o[xrow * n + c] = in[j * n + c];
    }
  }
  return out;
}

namespace {

bool protected_value(const Graph& g, const Protected& protect, int v) {
  for (int o : g.outputs)
    if (o == v) return true;
  return protect.count(g.values[static_cast<size_t>(v)].name) != 0;
}

}  // namespace

void fold_transpose_into_gemm(Graph& g, const Protected& protect) {
  for (size_t ti = 0; ti < g.nodes.size(); ++ti) {
    Node& t = g.nodes[ti];
    if (t.dead || t.op != "Transpose" || t.inputs.size() != 1 || t.inputs[0] < 0) continue;
    const Value& xval = g.values[static_cast<size_t>(t.inputs[0])];
    int tv = t.outputs[0];
    if (!xval.shape_known || xval.shape.size() < 2 || !t.attrs.has("perm")) continue;
    const Shape xshape = xval.shape;  // (values may grow below)
    std::vector<int64_t> p64 = t.attrs.get_ints("perm");
    if (p64.size() != xshape.size() || p64[0] != 0) continue;
    std::vector<int> perm(p64.begin(), p64.end());
    if (protected_value(g, protect, tv)) continue;
    auto tc = g.consumers(tv);
    if (tc.size() != 1) continue;
    Node& fl = g.nodes[static_cast<size_t>(tc[0])];
    if (fl.inputs.empty() || fl.inputs[0] != tv) continue;
    int fv = fl.outputs[0];
    const Value& fval = g.values[static_cast<size_t>(fv)];
    if (!fval.shape_known || fval.shape.size() != 2 || fval.shape[0] != xshape[0]) continue;
    if (fl.op == "Flatten") {
      if (fl.attrs.get_int("axis", 1) != 1) continue;
    } else if (fl.op != "Reshape") {
      continue;
    }
    if (protected_value(g, protect, fv)) continue;
    auto gc = g.consumers(fv);
    if (gc.empty()) continue;
    // every consumer must be a Gemm/MatMul using the flattened value as A with a constant B
    bool ok = true;
    for (int ci : gc) {
      const Node& m = g.nodes[static_cast<size_t>(ci)];
      if (m.inputs.size() < 2 || m.inputs[0] != fv || m.inputs[1] == fv || m.inputs[1] < 0) {
        ok = false;
        break;
      }
      if (!g.values[static_cast<size_t>(m.inputs[1])].is_constant()) {
        ok = false;
        break;
      }
      if (m.op == "Gemm") {
        if (m.attrs.get_int("transA", 0) != 0) {
          ok = false;
          break;
        }
      } else if (m.op != "MatMul" || g.values[static_cast<size_t>(m.inputs[1])].shape.size() != 2) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    try {
      for (int ci : gc) {
        Node& m = g.nodes[static_cast<size_t>(ci)];
        bool tb = m.op == "Gemm" && m.attrs.get_int("transB", 0) != 0;
        const Value& bv = g.values[static_cast<size_t>(m.inputs[1])];
        Tensor nb = permute_gemm_rows_for_transpose(bv.constant, tb, xshape, perm);
        if (bv.dtype != DType::f32) nb = nb.to(bv.dtype);
        std::string nm = g.unique_name(bv.name + "_unpermuted");
        Provenance prov = bv.prov;  // copied: add_constant may move the values
        int nid = g.add_constant(nm, nb);
        g.values[static_cast<size_t>(nid)].prov = prov;
        g.nodes[static_cast<size_t>(ci)].inputs[1] = nid;
      }
    } catch (const Error&) {
      continue;  // shapes did not fit the pattern: leave the graph as it is
    }
    Node& fl2 = g.nodes[static_cast<size_t>(tc[0])];
    fl2.inputs[0] = g.nodes[ti].inputs[0];
    g.nodes[ti].dead = true;
  }
}

}  // namespace anvil::passes
