// cpu backend: own kernels where oneDNN has no primitive or only its reference implementation
// (the plain-loop reference kernels of src/ops are never used for these): broadcasting binary
// ops on any pair of shapes (oneDNN 2.6's binary falls to `ref:any` unless the second operand
// broadcasts per tensor or per channel), Erf/Floor/Ceil, Gather on float data with constant
// indices; and LayerNormalization on oneDNN's layer normalization. The loops are written so the
// compiler vectorizes their inner dimension (contiguous or broadcast operands).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "backend/cpu/executable.h"
#include "ops/attrs.h"

namespace anvil::cpu {

bool CpuExecutable::push_native(
    int ni, const std::vector<int>& in_values,
    std::function<void(const std::vector<Tensor>&, std::vector<Tensor>&)> fn) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  Step st;
  st.name = n.name;
  st.op = n.op;
  st.native = std::move(fn);
  for (int v : in_values) st.ins.push_back(v >= 0 ? plain_of(v) : -1);
  for (int o : n.outputs) {
    const Value& ov = val(o);
    int s = new_arena_slot(ov.dtype, ov.shape, md_for(ov.dtype, ov.shape), o);
    vslot_[static_cast<size_t>(o)] = s;
    st.outs.push_back(s);
  }
  for (int s : st.ins)
    if (s >= 0) touch(s);
  for (int s : st.outs) touch(s);
  steps_.push_back(std::move(st));
  return true;
}

namespace {

enum class Bin { Add, Sub, Mul, Div, Pow };

/// Broadcast plan: output dims collapsed so that each dim is either contiguous or broadcast in
/// both operands; strides in elements (0 on broadcast dims).
struct BPlan {
  std::vector<int64_t> dims, sa, sb;
};

BPlan broadcast_plan(const Shape& ys, const Shape& as, const Shape& bs) {
  const size_t r = ys.size();
  const Shape ap = pad_rank(as, r), bp = pad_rank(bs, r);
  std::vector<int64_t> dims, sa, sb;
  int64_t stride_a = 1, stride_b = 1;
  std::vector<int64_t> ast(r), bst(r);
  for (size_t i = r; i-- > 0;) {
    ast[i] = ap[i] == 1 ? 0 : stride_a;
    bst[i] = bp[i] == 1 ? 0 : stride_b;
    stride_a *= ap[i];
    stride_b *= bp[i];
  }
  BPlan p;
  for (size_t i = 0; i < r; ++i) {
    if (ys[i] == 1) continue;
    if (!p.dims.empty()) {
      // merge with the previous dim when both operands keep their relation
      const size_t k = p.dims.size() - 1;
      const bool a_ok =
          (p.sa[k] == 0 && ast[i] == 0) || (p.sa[k] != 0 && p.sa[k] == ast[i] * ys[i]);
      const bool b_ok =
          (p.sb[k] == 0 && bst[i] == 0) || (p.sb[k] != 0 && p.sb[k] == bst[i] * ys[i]);
      if (a_ok && b_ok) {
        p.dims[k] *= ys[i];
        p.sa[k] = ast[i];
        p.sb[k] = bst[i];
        continue;
      }
    }
    p.dims.push_back(ys[i]);
    p.sa.push_back(ast[i]);
    p.sb.push_back(bst[i]);
  }
  if (p.dims.empty()) p.dims = {1}, p.sa = {0}, p.sb = {0};
  return p;
}

template <Bin op>
inline float bin(float a, float b) {
  if constexpr (op == Bin::Add) return a + b;
  if constexpr (op == Bin::Sub) return a - b;
  if constexpr (op == Bin::Mul) return a * b;
  if constexpr (op == Bin::Div) return a / b;
  if constexpr (op == Bin::Pow) return std::pow(a, b);
}

template <Bin op>
void row(const float* __restrict a, int64_t sa, const float* __restrict b, int64_t sb,
         float* __restrict y, int64_t n) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = bin<op>(a[i], b[i]);
  } else if (sa == 1) {
    const float bv = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = bin<op>(a[i], bv);
  } else if (sb == 1) {
    const float av = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = bin<op>(av, b[i]);
  } else {
    const float v = bin<op>(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

template <Bin op>
void run_binary(const BPlan& p, const float* a, const float* b, float* y) {
  const size_t r = p.dims.size();
  const int64_t inner = p.dims[r - 1];
  int64_t outer = 1;
  for (size_t i = 0; i + 1 < r; ++i) outer *= p.dims[i];
  std::vector<int64_t> idx(r, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t o = 0; o < outer; ++o) {
    row<op>(a + oa, p.sa[r - 1], b + ob, p.sb[r - 1], y + o * inner, inner);
    for (size_t k = r - 1; k-- > 0;) {
      if (++idx[k] < p.dims[k]) {
        oa += p.sa[k];
        ob += p.sb[k];
        break;
      }
      oa -= p.sa[k] * (p.dims[k] - 1);
      ob -= p.sb[k] * (p.dims[k] - 1);
      idx[k] = 0;
    }
  }
}

}  // namespace

bool CpuExecutable::do_native_binary(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  for (int v : {a, b, y})
    if (v < 0 || !val(v).shape_known || val(v).dtype != DType::f32) return false;
  const Shape& ys = val(y).shape;
  const Shape& as = val(a).shape;
  const Shape& bs = val(b).shape;
  if (as.size() > ys.size() || bs.size() > ys.size()) return false;
  const Shape ap = pad_rank(as, ys.size()), bp = pad_rank(bs, ys.size());
  for (size_t i = 0; i < ys.size(); ++i)
    if ((ap[i] != ys[i] && ap[i] != 1) || (bp[i] != ys[i] && bp[i] != 1)) return false;
  const BPlan p = broadcast_plan(ys, as, bs);
  void (*fn)(const BPlan&, const float*, const float*, float*) = nullptr;
  if (n.op == "Add")
    fn = run_binary<Bin::Add>;
  else if (n.op == "Sub")
    fn = run_binary<Bin::Sub>;
  else if (n.op == "Mul")
    fn = run_binary<Bin::Mul>;
  else if (n.op == "Div")
    fn = run_binary<Bin::Div>;
  else if (n.op == "Pow")
    fn = run_binary<Bin::Pow>;
  else
    return false;
  return push_native(ni, {a, b}, [p, fn](const std::vector<Tensor>& in, std::vector<Tensor>& out) {
    fn(p, static_cast<const float*>(in[0].raw()), static_cast<const float*>(in[1].raw()),
       static_cast<float*>(out[0].raw()));
  });
}

bool CpuExecutable::do_native_unary(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!val(x).shape_known || val(x).dtype != DType::f32 || val(y).shape != val(x).shape)
    return false;
  float (*f)(float) = nullptr;
  if (n.op == "Erf")
    f = [](float v) { return std::erf(v); };
  else if (n.op == "Floor")
    f = [](float v) { return std::floor(v); };
  else if (n.op == "Ceil")
    f = [](float v) { return std::ceil(v); };
  else
    return false;
  return push_native(ni, {x}, [f](const std::vector<Tensor>& in, std::vector<Tensor>& out) {
    const float* s = static_cast<const float*>(in[0].raw());
    float* d = static_cast<float*>(out[0].raw());
    for (int64_t i = 0, e = out[0].numel(); i < e; ++i) d[i] = f(s[i]);
  });
}

bool CpuExecutable::do_gather(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 2 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], idx = n.inputs[1], y = n.outputs[0];
  if (!val(x).shape_known || !val(y).shape_known || !val(idx).is_constant()) return false;
  const Tensor& it = val(idx).constant;
  if (it.dtype() != DType::i64 && it.dtype() != DType::i32) return false;
  const Shape& xs = val(x).shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  int64_t axis = n.attrs.get_int("axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  const int64_t dim = xs[static_cast<size_t>(axis)];
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < it.numel(); ++i) {
    int64_t v = static_cast<int64_t>(it.get(i));
    if (v < 0) v += dim;
    if (v < 0 || v >= dim) return false;  // the reference kernel reports it
    ids.push_back(v);
  }
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= xs[static_cast<size_t>(i)];
  for (int64_t i = axis + 1; i < r; ++i) inner *= xs[static_cast<size_t>(i)];
  const size_t es = dtype_size(val(x).dtype);
  if (static_cast<int64_t>(shape_numel(val(y).shape)) !=
      outer * static_cast<int64_t>(ids.size()) * inner)
    return false;
  const size_t chunk = static_cast<size_t>(inner) * es;
  return push_native(
      ni, {x}, [ids, outer, dim, chunk](const std::vector<Tensor>& in, std::vector<Tensor>& out) {
        const auto* s = static_cast<const uint8_t*>(in[0].raw());
        auto* d = static_cast<uint8_t*>(out[0].raw());
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t k : ids) {
            std::memcpy(d, s + (static_cast<size_t>(o * dim + k)) * chunk, chunk);
            d += chunk;
          }
      });
}

bool CpuExecutable::do_layernorm(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.empty()) return false;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && (!uses_[static_cast<size_t>(n.outputs[i])].empty() ||
                              kept_[static_cast<size_t>(n.outputs[i])]))
      return false;  // Mean / InvStdDev wanted: the reference kernel
  const int x = n.inputs[0], s = n.inputs[1], b = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const int y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y)) return false;
  const Shape& xs = val(x).shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  int64_t axis = n.attrs.get_int("axis", -1);
  if (axis < 0) axis += r;
  if (axis != r - 1 || r < 2) return false;  // oneDNN normalizes over the last dim
  const int64_t C = xs.back();
  auto param = [&](int v) -> std::optional<std::vector<float>> {
    if (v < 0 || !val(v).is_constant()) return std::nullopt;
    const Tensor& t = val(v).constant;
    if (t.numel() != C && t.numel() != 1) return std::nullopt;
    std::vector<float> out(static_cast<size_t>(C));
    for (int64_t i = 0; i < C; ++i)
      out[static_cast<size_t>(i)] = to_f(t.get(t.numel() == 1 ? 0 : i));
    return out;
  };
  auto sc = param(s);
  if (!sc) return false;
  std::vector<float> sh(static_cast<size_t>(C), 0.f);
  if (b >= 0) {
    auto bb = param(b);
    if (!bb) return false;
    sh = *bb;
  }
  const float eps = to_f(n.attrs.get_float("epsilon", 1e-5));
  const memory::desc md = plain_md(xs, dty_);
  std::optional<dnnl::layer_normalization_forward::primitive_desc> pd;
  try {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::layer_normalization_forward::desc d(
        prop_kind::forward_inference, md, eps,
        dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift);
    pd = dnnl::layer_normalization_forward::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
    return false;
  }
  const memory::desc pmd = plain_md({C}, dt::f32);
  const int ss = owned_weights(pmd, pmd, sc->data());
  const int bs = owned_weights(pmd, pmd, sh.data());
  const int src = plain_of(x);
  const int dst = new_arena_slot(ty_, xs, md, y);
  push_prim(n.name, n.op, dnnl::layer_normalization_forward(*pd), *pd,
            {{DNNL_ARG_SRC, src}, {DNNL_ARG_SCALE, ss}, {DNNL_ARG_SHIFT, bs}, {DNNL_ARG_DST, dst}});
  vslot_[static_cast<size_t>(y)] = dst;
  return true;
}

namespace {

enum class RedK { Mean, Sum, Max, Min, Prod, L2 };

template <RedK k>
void reduce_rows(const float* x, float* y, int64_t outer, int64_t R, int64_t inner) {
  std::vector<float> acc(static_cast<size_t>(inner));
  for (int64_t o = 0; o < outer; ++o) {
    const float* s = x + o * R * inner;
    float* a = acc.data();
    const float init = k == RedK::Max    ? -INFINITY
                       : k == RedK::Min  ? INFINITY
                       : k == RedK::Prod ? 1.f
                                         : 0.f;
    std::fill(a, a + inner, init);
    for (int64_t r = 0; r < R; ++r) {
      const float* v = s + r * inner;
      for (int64_t i = 0; i < inner; ++i) {
        if constexpr (k == RedK::Mean || k == RedK::Sum) a[i] += v[i];
        if constexpr (k == RedK::L2) a[i] += v[i] * v[i];
        if constexpr (k == RedK::Prod) a[i] *= v[i];
        if constexpr (k == RedK::Max) a[i] = (v[i] > a[i] || v[i] != v[i]) ? v[i] : a[i];
        if constexpr (k == RedK::Min) a[i] = (v[i] < a[i] || v[i] != v[i]) ? v[i] : a[i];
      }
    }
    float* d = y + o * inner;
    for (int64_t i = 0; i < inner; ++i) {
      if constexpr (k == RedK::Mean)
        d[i] = a[i] / static_cast<float>(R);
      else if constexpr (k == RedK::L2)
        d[i] = std::sqrt(a[i]);
      else
        d[i] = a[i];
    }
  }
}

}  // namespace

bool CpuExecutable::do_native_reduce(int ni, const Shape& kept) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  const int x = n.inputs[0];
  const Shape& xs = val(x).shape;
  // reduced dims (size > 1 and reduced) must be one contiguous block
  int first = -1, last = -1;
  for (size_t i = 0; i < xs.size(); ++i)
    if (xs[i] != kept[i]) {
      if (first < 0) first = static_cast<int>(i);
      last = static_cast<int>(i);
    }
  int64_t outer = 1, R = 1, inner = 1;
  for (int i = 0; i < static_cast<int>(xs.size()); ++i) {
    const int64_t d = xs[static_cast<size_t>(i)];
    if (first >= 0 && i >= first && i <= last) {
      if (kept[static_cast<size_t>(i)] != 1 && d != 1) return false;  // a kept dim inside
      R *= d;
    } else if (first < 0 || i < first) {
      outer *= d;
    } else {
      inner *= d;
    }
  }
  void (*fn)(const float*, float*, int64_t, int64_t, int64_t) = nullptr;
  const std::string& op = n.op;
  if (op == "ReduceMean")
    fn = reduce_rows<RedK::Mean>;
  else if (op == "ReduceSum")
    fn = reduce_rows<RedK::Sum>;
  else if (op == "ReduceMax")
    fn = reduce_rows<RedK::Max>;
  else if (op == "ReduceMin")
    fn = reduce_rows<RedK::Min>;
  else if (op == "ReduceProd")
    fn = reduce_rows<RedK::Prod>;
  else if (op == "ReduceL2")
    fn = reduce_rows<RedK::L2>;
  else
    return false;
  return push_native(
      ni, {x}, [fn, outer, R, inner](const std::vector<Tensor>& in, std::vector<Tensor>& out) {
        fn(static_cast<const float*>(in[0].raw()), static_cast<float*>(out[0].raw()), outer, R,
           inner);
      });
}

}  // namespace anvil::cpu
