// cpu backend handlers: Gemm (oneDNN inner product, weights scaled by alpha, bias beta*C) and
// MatMul (oneDNN matmul, broadcast batch dims), each with its fused and a following activation.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <dnnl.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "backend/cpu/executable.h"
#include "ops/attrs.h"

namespace anvil::cpu {

bool CpuExecutable::do_gemm(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], c = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const int y = n.outputs[0];
  if (!dnnl_value(a) || !dnnl_value(b) || !dnnl_value(y) || !val(b).is_constant()) return false;
  if (c >= 0 && (!dnnl_value(c) || !val(c).is_constant())) return false;
  std::optional<GemmAttrs> ga;
  try {
    ga = gemm_attrs(g_, n);
  } catch (const Error&) {
    return false;  // the reference kernel reports it
  }
  if (ga->ta) return false;
  const bool tb = ga->tb;
  const double alpha = ga->alpha, beta = ga->beta;
  const int64_t K = ga->K, N = ga->N;
  const Shape& as = val(a).shape;
  // Weights (N, K) scaled by alpha; bias beta*C when C broadcasts along the rows.
  Tensor W(DType::f32, {N, K});
  {
    const Tensor bf = val(b).constant.to(DType::f32);
    const float* src = bf.data<float>();
    float* dst = W.data<float>();
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < K; ++j)
        dst[i * K + j] = static_cast<float>(alpha * (tb ? src[i * K + j] : src[j * N + i]));
  }
  Tensor B;
  if (c >= 0 && beta != 0) {
    const Tensor ct = val(c).constant.to(DType::f32);
    const int64_t cn = ct.numel();
    const Shape& cs = ct.shape();
    bool row = cn == 1 || (cn == N && (cs.size() == 1 || (cs.size() == 2 && cs[0] == 1)));
    if (!row) return false;
    B = Tensor(DType::f32, {N});
    for (int64_t i = 0; i < N; ++i)
      B.data<float>()[i] = static_cast<float>(beta * ct.data<float>()[cn == 1 ? 0 : i]);
  }
  dnnl::post_ops po;
  std::string opname = n.op;
  const FusedActivation& fa = ga->act;
  if (!append_act(po, fa, nan_safe_)) return false;
  if (!fa.empty()) opname += "+" + fa.name();
  std::vector<int> fused;
  int out_v = fuse_following_act(y, po, opname, fused);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(po);
  const memory::desc a_md = plain_md(as, dty_);
  const memory::desc w_have = plain_md({N, K}, dt::f32);  // W and B are computed in f32
  const memory::desc b_md = B.defined() ? plain_md({N}, dt::f32) : memory::desc();
  std::optional<dnnl::inner_product_forward::primitive_desc> pd;
  try {
    dnnl::inner_product_forward::desc d(prop_kind::forward_inference, a_md,
                                        memory::desc({N, K}, dty_, tag::any), b_md,
                                        plain_md(val(y).shape, dty_));
    pd = dnnl::inner_product_forward::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
    return false;
  }
  int src = plain_of(a);
  int wslot = owned_weights(pd->weights_desc(), w_have, W.raw());
  std::vector<std::pair<int, int>> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wslot}};
  if (B.defined()) args.push_back({DNNL_ARG_BIAS, owned_weights(pd->bias_desc(), b_md, B.raw())});
  int dst = new_arena_slot(ty_, val(out_v).shape, pd->dst_desc(), out_v);
  args.push_back({DNNL_ARG_DST, dst});
  return push_fused(n.name, opname, dnnl::inner_product_forward(*pd), *pd, std::move(args), out_v,
                    dst, fused);
}

bool CpuExecutable::do_matmul(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  if (!dnnl_value(a) || !dnnl_value(b) || !dnnl_value(y)) return false;
  const Shape& as = val(a).shape;
  const Shape& bs = val(b).shape;
  const Shape& ys = val(y).shape;
  if (as.size() < 2 || bs.size() < 2 || ys.size() > 12) return false;
  const size_t r = ys.size();
  const Shape ap = pad_rank(as, r), bp = pad_rank(bs, r);
  dnnl::post_ops po;
  std::string opname = n.op;
  FusedActivation fa;
  try {
    fa = matmul_attrs(g_, n).act;
  } catch (const Error&) {
    return false;  // the reference kernel reports it
  }
  if (!append_act(po, fa, nan_safe_)) return false;
  if (!fa.empty()) opname += "+" + fa.name();
  if (val(b).is_constant() && bs.size() == 2 && bs[0] == as.back() && ys.back() == bs[1])
    return linear_matmul(ni, po, opname, fa.empty());
  std::vector<int> fused;
  int out_v = fuse_following_act(y, po, opname, fused);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(po);
  std::optional<dnnl::matmul::primitive_desc> pd;
  try {
    dnnl::matmul::desc d(plain_md(ap, dty_), plain_md(bp, dty_), plain_md(ys, dty_));
    pd = dnnl::matmul::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
    return false;
  }
  int sa = plain_of(a), sb = plain_of(b);
  if (ap != as) sa = view_of(sa, ap, -1);
  if (bp != bs) sb = view_of(sb, bp, -1);
  int dst = new_arena_slot(ty_, ys, plain_md(ys, dty_), out_v);
  return push_fused(n.name, opname, dnnl::matmul(*pd), *pd,
                    {{DNNL_ARG_SRC, sa}, {DNNL_ARG_WEIGHTS, sb}, {DNNL_ARG_DST, dst}}, out_v, dst,
                    fused);
}

// A Linear layer as exporters write it: activations of any rank times constant (K, N)
// weights (torch's nn.Linear on NHWC or token tensors). One 2-D matmul over the flattened
// rows with the weights reordered once into oneDNN's blocked format (the batched form
// re-reads plain weights per row block), and a following bias Add as the matmul's bias.
bool CpuExecutable::linear_matmul(int ni, dnnl::post_ops po, std::string opname, bool can_bias) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  const int a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  const Shape& as = val(a).shape;
  const Shape& ys = val(y).shape;
  const int64_t K = as.back(), N = val(b).shape[1];
  const int64_t M = K > 0 ? shape_numel(as) / K : 0;
  if (M <= 0 || shape_numel(ys) != M * N) return false;
  int bias = -1, mm_out = y;
  std::vector<int> fused;
  if (can_bias && !kept_[static_cast<size_t>(y)] && uses_[static_cast<size_t>(y)].size() == 1) {
    const int u = uses_[static_cast<size_t>(y)][0];
    const Node& an = g_.nodes[static_cast<size_t>(u)];
    if (an.op == "Add" && an.inputs.size() == 2 && an.outputs.size() == 1) {
      const int c = an.inputs[0] == y ? an.inputs[1] : an.inputs[0];
      if (c >= 0 && c != y && val(c).is_constant() && val(c).dtype == ty_ &&
          shape_numel(val(c).shape) == N && !val(c).shape.empty() && val(c).shape.back() == N &&
          val(c).shape.size() <= ys.size() && val(an.outputs[0]).shape == ys &&
          val(an.outputs[0]).dtype == ty_) {
        bias = c;
        mm_out = an.outputs[0];
        fused.push_back(u);
        opname += "+Add";
      }
    }
  }
  const int out_v = fuse_following_act(mm_out, po, opname, fused);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(po);
  const memory::desc b_md = bias >= 0 ? plain_md({1, N}, dty_) : memory::desc();
  std::optional<dnnl::matmul::primitive_desc> pd;
  try {
    dnnl::matmul::desc d(plain_md({M, K}, dty_), memory::desc({K, N}, dty_, tag::any), b_md,
                         plain_md({M, N}, dty_));
    pd = dnnl::matmul::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
    return false;
  }
  const int sa = view_of(plain_of(a), {M, K}, -1);
  const int wslot =
      owned_weights(pd->weights_desc(), plain_md({K, N}, dty_), val(b).constant.raw());
  std::vector<std::pair<int, int>> args{{DNNL_ARG_SRC, sa}, {DNNL_ARG_WEIGHTS, wslot}};
  if (bias >= 0)
    args.push_back({DNNL_ARG_BIAS, owned_weights(b_md, b_md, val(bias).constant.raw())});
  const int dst = new_arena_slot(ty_, val(out_v).shape, md_for(ty_, val(out_v).shape), out_v);
  args.push_back({DNNL_ARG_DST, view_of(dst, {M, N}, -1)});
  return push_fused(n.name, opname, dnnl::matmul(*pd), *pd, std::move(args), out_v, dst, fused);
}

}  // namespace anvil::cpu
