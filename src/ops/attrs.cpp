// Attribute parsing of Conv/ConvTranspose, the pools, Gemm and MatMul (src/ops/attrs.h): the
// one place that checks these attributes; the messages are the reference kernels'.
#include "ops/attrs.h"

#include <algorithm>
#include <string>
#include <vector>

#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;

std::vector<int64_t> spatial_attr(const std::string& op, const Attributes& a,
                                  const std::string& name, int nsp, int64_t dflt,
                                  int64_t min_value) {
  auto v = a.get_ints(name, std::vector<int64_t>(static_cast<size_t>(nsp), dflt));
  if (static_cast<int>(v.size()) != nsp)
    fail(op, name,
         "expected " + std::to_string(nsp) + " values (one per spatial dim), found " +
             std::to_string(v.size()) + " " + ints_str(v));
  for (int64_t x : v)
    if (x < min_value)
      fail(op, name, "values must be >= " + std::to_string(min_value) + ", found " + ints_str(v));
  return v;
}

void read_pads(const std::string& op, const Attributes& a, int nsp, ConvAttrs& p) {
  auto pads = a.get_ints("pads", std::vector<int64_t>(static_cast<size_t>(2 * nsp), 0));
  if (static_cast<int>(pads.size()) != 2 * nsp)
    fail(op, "pads",
         "expected " + std::to_string(2 * nsp) + " values [x1_begin, ..., x1_end, ...], found " +
             std::to_string(pads.size()) + " " + ints_str(pads));
  for (int64_t x : pads)
    if (x < 0) fail(op, "pads", "negative padding " + ints_str(pads));
  p.pb.assign(pads.begin(), pads.begin() + nsp);
  p.pe.assign(pads.begin() + nsp, pads.end());
}

void check_common(const std::string& op, const Shape& x, const Shape& w, const Attributes& a,
                  ConvAttrs& p) {
  if (x.size() < 3 || x.size() > 5)
    fail(op, "X",
         "expected input of rank 3, 4 or 5 (N, C, spatial...), found shape " + shape_str(x));
  if (w.size() != x.size())
    fail(op, "W",
         "weights of shape " + shape_str(w) + " do not match input rank " +
             std::to_string(x.size()) + " (expected " + std::to_string(x.size()) + "-D weights)");
  p.nsp = static_cast<int>(x.size()) - 2;
  p.N = x[0];
  p.C = x[1];
  p.group = a.get_int("group", 1);
  if (p.group < 1) fail(op, "group", "group must be >= 1, found " + std::to_string(p.group));
  p.in.assign(x.begin() + 2, x.end());
  p.k.assign(w.begin() + 2, w.end());
  for (int64_t kk : p.k)
    if (kk < 1) fail(op, "W", "kernel dims must be >= 1, found weights " + shape_str(w));
  if (a.has("kernel_shape")) {
    auto ks = a.get_ints("kernel_shape");
    if (ks != p.k)
      fail(op, "kernel_shape",
           "kernel_shape " + ints_str(ks) + " does not match the weights' spatial dims " +
               ints_str(p.k) + " (weights " + shape_str(w) + ")");
  }
  p.s = spatial_attr(op, a, "strides", p.nsp, 1, 1);
  p.d = spatial_attr(op, a, "dilations", p.nsp, 1, 1);
  read_pads(op, a, p.nsp, p);
}

void check_bias(const std::string& op, const Shape* b, int64_t M) {
  if (!b) return;
  if (!(b->size() == 1 && (*b)[0] == M))
    fail(op, "B", "bias must have shape (" + std::to_string(M) + ",), found " + shape_str(*b));
}

void conv_params(const Shape& x, const Shape& w, const Shape* b, const Attributes& a,
                 ConvAttrs& p) {
  const std::string op = "Conv";
  check_common(op, x, w, a, p);
  p.M = w[0];
  if (p.C % p.group != 0)
    fail(op, "group",
         "input channels " + std::to_string(p.C) + " are not divisible by group " +
             std::to_string(p.group));
  if (p.M % p.group != 0)
    fail(op, "group",
         "output channels (weights dim 0 = " + std::to_string(p.M) +
             ") are not divisible by group " + std::to_string(p.group));
  if (w[1] * p.group != p.C)
    fail(op, "W",
         "weights " + shape_str(w) + " expect " + std::to_string(w[1]) + " x group " +
             std::to_string(p.group) + " = " + std::to_string(w[1] * p.group) +
             " input channels (OIHW: M x C/group x k...), but the input " + shape_str(x) + " has " +
             std::to_string(p.C));
  check_bias(op, b, p.M);
  p.out.resize(static_cast<size_t>(p.nsp));
  p.out_shape = {p.N, p.M};
  for (int i = 0; i < p.nsp; ++i) {
    auto u = static_cast<size_t>(i);
    int64_t ek = (p.k[u] - 1) * p.d[u] + 1;
    int64_t span = p.in[u] + p.pb[u] + p.pe[u] - ek;
    if (span < 0)
      fail(op, "kernel_shape",
           "dilated kernel extent " + std::to_string(ek) + " is larger than the padded input " +
               std::to_string(p.in[u] + p.pb[u] + p.pe[u]) + " in spatial dim " +
               std::to_string(i));
    p.out[u] = span / p.s[u] + 1;
    p.out_shape.push_back(p.out[u]);
  }
}

void convt_params(const Shape& x, const Shape& w, const Shape* b, const Attributes& a,
                  ConvAttrs& p) {
  const std::string op = "ConvTranspose";
  check_common(op, x, w, a, p);
  if (w[0] != p.C)
    fail(op, "W",
         "weights " + shape_str(w) + " must have dim 0 = input channels " + std::to_string(p.C) +
             " (C x M/group x k...)");
  if (p.C % p.group != 0)
    fail(op, "group",
         "input channels " + std::to_string(p.C) + " are not divisible by group " +
             std::to_string(p.group));
  p.M = w[1] * p.group;
  check_bias(op, b, p.M);
  p.op = spatial_attr(op, a, "output_padding", p.nsp, 0, 0);
  for (int i = 0; i < p.nsp; ++i) {
    auto u = static_cast<size_t>(i);
    if (p.op[u] >= std::max(p.s[u], p.d[u]))
      fail(op, "output_padding",
           "output_padding " + ints_str(p.op) + " must be smaller than max(stride, dilation)");
  }
  if (a.has("output_shape")) {
    p.has_output_shape = true;
    auto os = a.get_ints("output_shape");
    if (static_cast<int>(os.size()) == p.nsp + 2) os.erase(os.begin(), os.begin() + 2);
    if (static_cast<int>(os.size()) != p.nsp)
      fail(op, "output_shape",
           "expected " + std::to_string(p.nsp) + " spatial sizes, found " + ints_str(os));
    // ONNX: total_padding = stride*(in-1) + output_padding + ((k-1)*d+1) - output_shape;
    // pads_begin = total - floor(total/2), pads_end = floor(total/2) (auto_pad NOTSET).
    for (int i = 0; i < p.nsp; ++i) {
      auto u = static_cast<size_t>(i);
      if (os[u] < 1) fail(op, "output_shape", "sizes must be >= 1, found " + ints_str(os));
      int64_t total = p.s[u] * (p.in[u] - 1) + p.op[u] + ((p.k[u] - 1) * p.d[u] + 1) - os[u];
      p.pe[u] = nn::floor_div(total, 2);
      p.pb[u] = total - p.pe[u];
    }
  }
  p.out.resize(static_cast<size_t>(p.nsp));
  p.out_shape = {p.N, p.M};
  for (int i = 0; i < p.nsp; ++i) {
    auto u = static_cast<size_t>(i);
    p.out[u] = p.s[u] * (p.in[u] - 1) + p.op[u] + ((p.k[u] - 1) * p.d[u] + 1) - p.pb[u] - p.pe[u];
    if (p.in[u] < 1 || p.out[u] < 1)
      fail(op, "pads",
           "output spatial dim " + std::to_string(i) + " would be " + std::to_string(p.out[u]) +
               " (input " + std::to_string(p.in[u]) + ", pads too large?)");
    p.out_shape.push_back(p.out[u]);
  }
}

std::vector<int64_t> list_attr(const std::string& op, const Attributes& a, const std::string& name,
                               size_t n, int64_t dflt, int64_t min_value) {
  auto v = a.get_ints(name, std::vector<int64_t>(n, dflt));
  if (v.size() != n)
    fail(op, name,
         "expected " + std::to_string(n) + " values, found " + std::to_string(v.size()) + " " +
             ints_str(v));
  for (int64_t x : v)
    if (x < min_value)
      fail(op, name, "values must be >= " + std::to_string(min_value) + ", found " + ints_str(v));
  return v;
}

// ---- graph-node forms --------------------------------------------------------------------

const Shape& in_shape(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0)
    throw Error(n.op + ": input " + std::to_string(i) + " is missing", g.source_file, n.name,
                "inputs");
  const Value& v = g.values[static_cast<size_t>(n.inputs[i])];
  if (!v.shape_known)
    throw Error(n.op + ": the shape of input '" + v.name + "' is not known", g.source_file, n.name,
                "inputs");
  return v.shape;
}
const Shape* opt_in_shape(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] < 0) return nullptr;
  return &in_shape(g, n, i);
}

template <class F>
auto with_node(const Graph& g, const Node& n, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(e.message(), e.file().empty() ? g.source_file : e.file(),
                e.node().empty() ? n.name : e.node(), e.field());
  }
}

}  // namespace

ConvAttrs parse_conv_attrs(const std::string& op, const Attributes& a, const Shape& x,
                           const Shape& w, const Shape* b) {
  ConvAttrs p;
  p.act = read_fused_activation(op, a);
  p.transpose = op == "ConvTranspose";
  if (p.transpose)
    convt_params(x, w, b, a, p);
  else
    conv_params(x, w, b, a, p);
  return p;
}

const char* pool_op_name(PoolKind k) {
  return k == PoolKind::Max ? "MaxPool" : k == PoolKind::Avg ? "AveragePool" : "LpPool";
}

PoolAttrs parse_pool_attrs(PoolKind kind, const Attributes& a, const Shape& x) {
  const std::string op = pool_op_name(kind);
  PoolAttrs p;
  p.kind = kind;
  if (x.size() < 3 || x.size() > 5)
    fail(op, "X",
         "expected input of rank 3, 4 or 5 (N, C, spatial...), found shape " + shape_str(x));
  p.nsp = static_cast<int>(x.size()) - 2;
  const auto n = static_cast<size_t>(p.nsp);
  p.N = x[0];
  p.C = x[1];
  if (!a.has("kernel_shape")) fail(op, "kernel_shape", "required attribute is missing");
  auto k = list_attr(op, a, "kernel_shape", n, 1, 1);
  auto s = list_attr(op, a, "strides", n, 1, 1);
  auto d = list_attr(op, a, "dilations", n, 1, 1);
  auto pads = list_attr(op, a, "pads", 2 * n, 0, 0);
  int64_t ceil_mode = a.get_int("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) fail(op, "ceil_mode", "must be 0 or 1");
  p.ceil_mode = ceil_mode != 0;
  p.include_pad = a.get_int("count_include_pad", 0) != 0;
  p.storage_order = a.get_int("storage_order", 0);
  if (p.storage_order != 0 && p.storage_order != 1)
    fail(op, "storage_order", "must be 0 (row major) or 1 (column major)");
  p.p = static_cast<double>(a.get_int("p", 2));
  if (kind == PoolKind::Lp && p.p <= 0) fail(op, "p", "must be >= 1");
  p.out_shape = {p.N, p.C};
  const int off = 3 - p.nsp;
  for (int i = 0; i < 3; ++i) {
    if (i < off) {
      p.in[i] = p.k[i] = p.s[i] = p.d[i] = p.out[i] = 1;
      p.pb[i] = p.pe[i] = 0;
      continue;
    }
    auto u = static_cast<size_t>(i - off);
    p.in[i] = x[u + 2];
    p.k[i] = k[u];
    p.s[i] = s[u];
    p.d[i] = d[u];
    p.pb[i] = pads[u];
    p.pe[i] = pads[u + n];
    const int64_t ek = (p.k[i] - 1) * p.d[i] + 1;
    const int64_t span = p.in[i] + p.pb[i] + p.pe[i] - ek;
    if (span < 0)
      fail(op, "kernel_shape",
           "window extent " + std::to_string(ek) + " is larger than the padded input " +
               std::to_string(p.in[i] + p.pb[i] + p.pe[i]) + " in spatial dim " +
               std::to_string(u));
    if (ceil_mode) {
      p.out[i] = nn::ceil_div(span, p.s[i]) + 1;
      if ((p.out[i] - 1) * p.s[i] >= p.in[i] + p.pb[i]) --p.out[i];
    } else {
      p.out[i] = span / p.s[i] + 1;
    }
    p.out_shape.push_back(p.out[i]);
  }
  return p;
}

GemmAttrs parse_gemm_attrs(const Attributes& at, const Shape& a, const Shape& b, const Shape* c) {
  const std::string op = "Gemm";
  GemmAttrs p;
  p.act = read_fused_activation(op, at);
  if (a.size() != 2) fail(op, "A", "expected a 2-D matrix, found shape " + shape_str(a));
  if (b.size() != 2) fail(op, "B", "expected a 2-D matrix, found shape " + shape_str(b));
  p.ta = at.get_int("transA", 0) != 0;
  p.tb = at.get_int("transB", 0) != 0;
  p.alpha = at.get_float("alpha", 1.0);
  p.beta = at.get_float("beta", 1.0);
  p.M = p.ta ? a[1] : a[0];
  p.K = p.ta ? a[0] : a[1];
  const int64_t kb = p.tb ? b[1] : b[0];
  p.N = p.tb ? b[0] : b[1];
  if (kb != p.K)
    fail(op, "B",
         "inner dimensions differ: A" + std::string(p.ta ? "^T" : "") + " is " +
             std::to_string(p.M) + " x " + std::to_string(p.K) + ", B" + (p.tb ? "^T" : "") +
             " is " + std::to_string(kb) + " x " + std::to_string(p.N) + " (A " + shape_str(a) +
             ", B " + shape_str(b) + ", transA " + std::to_string(p.ta) + ", transB " +
             std::to_string(p.tb) + ")");
  if (c) {
    if (c->size() > 2)
      fail(op, "C", "must be broadcastable to (M, N), found shape " + shape_str(*c));
    Shape cc = *c;
    while (cc.size() < 2) cc.insert(cc.begin(), 1);
    if ((cc[0] != 1 && cc[0] != p.M) || (cc[1] != 1 && cc[1] != p.N))
      fail(op, "C",
           "shape " + shape_str(*c) + " is not broadcastable to (" + std::to_string(p.M) + ", " +
               std::to_string(p.N) + ")");
  }
  return p;
}

MatMulAttrs parse_matmul_attrs(const Attributes& at, const Shape& a0, const Shape& b0) {
  const std::string op = "MatMul";
  MatMulAttrs p;
  p.act = read_fused_activation(op, at);
  if (a0.empty() || b0.empty())
    fail(op, a0.empty() ? "A" : "B", "scalars are not allowed (numpy matmul)");
  Shape a = a0, b = b0;
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  p.M = a[a.size() - 2];
  p.K = a[a.size() - 1];
  p.N = b[b.size() - 1];
  if (b[b.size() - 2] != p.K)
    fail(op, "B",
         "inner dimensions differ: A " + shape_str(a0) + " has K = " + std::to_string(p.K) +
             ", B " + shape_str(b0) + " has K = " + std::to_string(b[b.size() - 2]));
  Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  const size_t nb = std::max(ab.size(), bb.size());
  while (ab.size() < nb) ab.insert(ab.begin(), 1);
  while (bb.size() < nb) bb.insert(bb.begin(), 1);
  for (size_t i = 0; i < nb; ++i) {
    if (ab[i] != bb[i] && ab[i] != 1 && bb[i] != 1)
      fail(op, "B",
           "batch dimensions of A " + shape_str(a0) + " and B " + shape_str(b0) +
               " do not broadcast");
    p.batch.push_back(ab[i] == 1 ? bb[i] : ab[i]);
  }
  p.a_batch = ab;
  p.b_batch = bb;
  p.out_shape = p.batch;
  if (!a1) p.out_shape.push_back(p.M);
  if (!b1) p.out_shape.push_back(p.N);
  return p;
}

ConvAttrs conv_attrs(const Graph& g, const Node& n) {
  return with_node(g, n, [&] {
    return parse_conv_attrs(n.op, n.attrs, in_shape(g, n, 0), in_shape(g, n, 1),
                            opt_in_shape(g, n, 2));
  });
}

PoolAttrs pool_attrs(const Graph& g, const Node& n) {
  return with_node(g, n, [&] {
    const PoolKind k = n.op == "MaxPool"       ? PoolKind::Max
                       : n.op == "AveragePool" ? PoolKind::Avg
                       : n.op == "LpPool"
                           ? PoolKind::Lp
                           : throw Error("'" + n.op + "' is not a windowed pool", {}, {}, "op");
    return parse_pool_attrs(k, n.attrs, in_shape(g, n, 0));
  });
}

GemmAttrs gemm_attrs(const Graph& g, const Node& n) {
  return with_node(g, n, [&] {
    return parse_gemm_attrs(n.attrs, in_shape(g, n, 0), in_shape(g, n, 1), opt_in_shape(g, n, 2));
  });
}

MatMulAttrs matmul_attrs(const Graph& g, const Node& n) {
  return with_node(
      g, n, [&] { return parse_matmul_attrs(n.attrs, in_shape(g, n, 0), in_shape(g, n, 1)); });
}

}  // namespace anvil
