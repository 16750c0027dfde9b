// Folds inference BatchNormalization (and a following per-channel constant Mul / Add) into
// the weights and bias of the Conv / ConvTranspose / Gemm that produces its input.
//
//   y = scale * (conv(x) - mean) / sqrt(var + eps) + B
//     = conv'(x)  with  W'[o] = W[o] * s[o],  b'[o] = (b[o] - mean[o]) * s[o] + B[o],
//                       s = scale / sqrt(var + eps)
//
// The fused node takes over the folded node's output value, so the name and provenance of the
// last folded tensor (what the source framework calls the layer output) survive; the
// producer's old output disappears. The folded-away intermediate must have no other consumer
// and must not be protected (a tap or a graph output). New weights are new constants: the old
// ones may be shared with other nodes and are never modified in place.
#include <cmath>
#include <optional>
#include <vector>

#include "passes/passes.h"

namespace anvil::passes {
namespace {

bool is_weight_op(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm";
}

const Value* constant_input(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return nullptr;
  const Value& v = g.values[static_cast<size_t>(n.inputs[i])];
  return v.is_constant() ? &v : nullptr;
}

/// The per-output-channel affine map (y = a[c] * x + b[c]) a node applies, if it is one.
struct ChannelAffine {
  std::vector<double> a, b;
};

/// Number of output channels of a weight node, and the channel axis of its output.
struct WeightLayout {
  int64_t channels = 0;
  int channel_axis = 1;  // Conv/ConvTranspose: NC..., Gemm: (M, N) -> 1
};

std::optional<WeightLayout> weight_layout(const Graph& g, const Node& n) {
  const Value* w = constant_input(g, n, 1);
  if (!w || !is_float(w->dtype)) return std::nullopt;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value* b = constant_input(g, n, 2);
    if (!b || !is_float(b->dtype)) return std::nullopt;
  }
  if (!n.attrs.get_string("activation", "").empty()) return std::nullopt;
  const Shape& ws = w->shape;
  WeightLayout L;
  if (n.op == "Conv") {
    if (ws.size() < 3) return std::nullopt;
    L.channels = ws[0];
  } else if (n.op == "ConvTranspose") {
    if (ws.size() < 3) return std::nullopt;
    int64_t group = n.attrs.get_int("group", 1);
    if (group < 1 || ws[0] % group != 0) return std::nullopt;
    L.channels = ws[1] * group;
  } else {  // Gemm
    if (ws.size() != 2) return std::nullopt;
    L.channels = n.attrs.get_int("transB", 0) ? ws[0] : ws[1];
  }
  const Value& out = g.values[static_cast<size_t>(n.outputs[0])];
  if (!out.shape_known || static_cast<int>(out.shape.size()) <= L.channel_axis ||
      out.shape[static_cast<size_t>(L.channel_axis)] != L.channels)
    return std::nullopt;
  return L;
}

// Values of a constant broadcast per channel against an output of rank `rank` whose channel
// axis is `axis` with `channels` entries; nullopt when it varies along any other axis.
std::optional<std::vector<double>> per_channel(const Tensor& c, int rank, int axis,
                                               int64_t channels) {
  if (!is_float(c.dtype()) || c.rank() > rank) return std::nullopt;
  // Align c's dims to the right of the output's.
  int offset = rank - c.rank();
  int64_t along = 1;
  for (int d = 0; d < c.rank(); ++d) {
    int64_t n = c.shape()[static_cast<size_t>(d)];
    if (d + offset == axis) {
      if (n != 1 && n != channels) return std::nullopt;
      along = n;
    } else if (n != 1) {
      return std::nullopt;
    }
  }
  std::vector<double> v(static_cast<size_t>(channels));
  for (int64_t i = 0; i < channels; ++i) v[static_cast<size_t>(i)] = c.get(along == 1 ? 0 : i);
  return v;
}

// The affine map of BatchNormalization / Mul / Add node `n` fed by value `x`, or nullopt.
std::optional<ChannelAffine> affine_of(const Graph& g, const Node& n, int x, int rank, int axis,
                                       int64_t channels) {
  if (n.op == "BatchNormalization") {
    if (n.inputs.size() != 5 || n.inputs[0] != x) return std::nullopt;
    if (n.attrs.get_int("training_mode", 0) != 0) return std::nullopt;
    std::vector<std::vector<double>> p;
    for (size_t i = 1; i < 5; ++i) {
      const Value* v = constant_input(g, n, i);
      if (!v || !is_float(v->dtype) || v->constant.numel() != channels) return std::nullopt;
      p.push_back(v->constant.to_doubles());
    }
    double eps = n.attrs.get_float("epsilon", 1e-5);
    ChannelAffine A;
    for (size_t c = 0; c < static_cast<size_t>(channels); ++c) {
      double var = p[3][c] + eps;
      if (!(var > 0)) return std::nullopt;  // would produce inf/nan: leave it to the kernel
      double s = p[0][c] / std::sqrt(var);
      A.a.push_back(s);
      A.b.push_back(p[1][c] - p[2][c] * s);
    }
    return A;
  }
  if (n.op == "Mul" || n.op == "Add") {
    if (n.inputs.size() != 2) return std::nullopt;
    int other;
    if (n.inputs[0] == x && n.inputs[1] != x)
      other = 1;
    else if (n.inputs[1] == x && n.inputs[0] != x)
      other = 0;
    else
      return std::nullopt;
    const Value* c = constant_input(g, n, static_cast<size_t>(other));
    if (!c) return std::nullopt;
    auto v = per_channel(c->constant, rank, axis, channels);
    if (!v) return std::nullopt;
    // The constant must not change the output's shape or dtype.
    const Value& out = g.values[static_cast<size_t>(n.outputs[0])];
    const Value& in = g.values[static_cast<size_t>(x)];
    if (out.shape != in.shape || out.dtype != in.dtype) return std::nullopt;
    ChannelAffine A;
    if (n.op == "Mul") {
      A.a = *v;
      A.b.assign(v->size(), 0.0);
    } else {
      A.a.assign(v->size(), 1.0);
      A.b = *v;
    }
    return A;
  }
  return std::nullopt;
}

// Rewrites node `ni`'s weights so that its output becomes a[c] * y + b[c].
void apply_affine(Graph& g, int ni, const WeightLayout& L, const ChannelAffine& A) {
  // Copy what we need first: add_constant may reallocate g.values.
  Node node = g.nodes[static_cast<size_t>(ni)];
  const Value& wv = g.values[static_cast<size_t>(node.inputs[1])];
  Tensor w = wv.constant.clone();
  std::string wname = wv.name;
  const Shape& ws = w.shape();
  const int64_t C = L.channels;

  if (node.op == "Conv") {
    int64_t per = w.numel() / ws[0];
    for (int64_t o = 0; o < ws[0]; ++o)
      for (int64_t k = 0; k < per; ++k)
        w.set(o * per + k, w.get(o * per + k) * A.a[static_cast<size_t>(o)]);
  } else if (node.op == "ConvTranspose") {
    // W: (C_in, M / group, k...); output channel of W[c, j] = (c / (C_in/group)) * (M/group) + j.
    int64_t group = node.attrs.get_int("group", 1);
    int64_t cin = ws[0], mg = ws[1], cg = cin / group;
    int64_t per = w.numel() / (cin * mg);
    for (int64_t c = 0; c < cin; ++c)
      for (int64_t j = 0; j < mg; ++j) {
        double s = A.a[static_cast<size_t>((c / cg) * mg + j)];
        int64_t base = (c * mg + j) * per;
        for (int64_t k = 0; k < per; ++k) w.set(base + k, w.get(base + k) * s);
      }
  } else {  // Gemm: scale the columns of op(B)
    bool transB = node.attrs.get_int("transB", 0) != 0;
    for (int64_t r = 0; r < ws[0]; ++r)
      for (int64_t c = 0; c < ws[1]; ++c) {
        int64_t i = r * ws[1] + c;
        w.set(i, w.get(i) * A.a[static_cast<size_t>(transB ? r : c)]);
      }
  }

  // Bias.
  Tensor bias;
  std::string bname = node.name + "_bias";
  if (node.op == "Gemm") {
    double beta = node.attrs.get_float("beta", 1.0);
    const Value* cv = constant_input(g, node, 2);
    const Value& out = g.values[static_cast<size_t>(node.outputs[0])];
    int64_t M = out.shape[0];
    bool full = cv && cv->constant.rank() == 2 && cv->constant.dim(0) != 1;
    if (cv) {
      bname = cv->name;
      if (!per_channel(cv->constant, 2, 1, C) && !full) full = true;
    }
    if (full) {
      bias = Tensor(w.dtype(), {M, C});
      const Tensor& ct = cv->constant;
      int64_t r0 = ct.rank() == 2 ? ct.dim(0) : 1, c0 = ct.rank() >= 1 ? ct.dim(-1) : 1;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t c = 0; c < C; ++c) {
          double cval = ct.get((r0 == 1 ? 0 : m) * c0 + (c0 == 1 ? 0 : c));
          bias.set(m * C + c,
                   beta * cval * A.a[static_cast<size_t>(c)] + A.b[static_cast<size_t>(c)]);
        }
    } else {
      std::vector<double> cvals(static_cast<size_t>(C), 0.0);
      if (cv) cvals = *per_channel(cv->constant, 2, 1, C);
      bias = Tensor(w.dtype(), {C});
      for (int64_t c = 0; c < C; ++c)
        bias.set(c, beta * cvals[static_cast<size_t>(c)] * A.a[static_cast<size_t>(c)] +
                        A.b[static_cast<size_t>(c)]);
    }
    node.attrs.set("beta", 1.0);
  } else {
    const Value* bv = constant_input(g, node, 2);
    bias = Tensor(bv ? bv->dtype : w.dtype(), {C});
    if (bv) bname = bv->name;
    for (int64_t c = 0; c < C; ++c) {
      double b0 = bv ? bv->constant.get(c) : 0.0;
      bias.set(c, b0 * A.a[static_cast<size_t>(c)] + A.b[static_cast<size_t>(c)]);
    }
  }

  int new_w = g.add_constant(g.unique_name(wname + "_folded"), std::move(w));
  int new_b = g.add_constant(g.unique_name(bname + "_folded"), std::move(bias));
  Node& n = g.nodes[static_cast<size_t>(ni)];
  n.attrs = node.attrs;
  n.inputs[1] = new_w;
  if (n.inputs.size() < 3) n.inputs.resize(3, -1);
  n.inputs[2] = new_b;
}

}  // namespace

void fold_batchnorm(Graph& g, const Protected& protect) {
  std::vector<bool> is_output(g.values.size(), false);
  for (int o : g.outputs) is_output[static_cast<size_t>(o)] = true;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].dead || !is_weight_op(g.nodes[i].op) || g.nodes[i].outputs.size() != 1) continue;
    for (;;) {  // fold as many following BN / Mul / Add as possible
      const Node& n = g.nodes[i];
      auto L = weight_layout(g, n);
      if (!L) break;
      int y = n.outputs[0];
      const Value& yv = g.values[static_cast<size_t>(y)];
      if (is_output[static_cast<size_t>(y)] || protect.count(yv.name)) break;
      auto users = g.consumers(y);
      if (users.size() != 1) break;
      const Node& next = g.nodes[static_cast<size_t>(users[0])];
      if (next.outputs.empty()) break;
      // Other outputs (BatchNormalization training statistics) must be unused.
      bool extra_used = false;
      for (size_t k = 1; k < next.outputs.size(); ++k)
        extra_used |= !g.consumers(next.outputs[k]).empty() ||
                      is_output[static_cast<size_t>(next.outputs[k])] ||
                      protect.count(g.values[static_cast<size_t>(next.outputs[k])].name);
      if (extra_used) break;
      const Value& z = g.values[static_cast<size_t>(next.outputs[0])];
      if (z.dtype != yv.dtype || !z.shape_known || z.shape != yv.shape) break;
      auto A =
          affine_of(g, next, y, static_cast<int>(yv.shape.size()), L->channel_axis, L->channels);
      if (!A) break;
      int next_index = users[0];
      int z_index = next.outputs[0];
      apply_affine(g, static_cast<int>(i), *L, *A);
      g.nodes[static_cast<size_t>(next_index)].dead = true;
      g.nodes[i].outputs[0] = z_index;
      g.values[static_cast<size_t>(z_index)].producer = static_cast<int>(i);
      g.values[static_cast<size_t>(y)].producer = -1;
      if (is_output.size() < g.values.size()) is_output.resize(g.values.size(), false);
    }
  }
}

}  // namespace anvil::passes
