// cpu backend handlers: unary activations and math (oneDNN eltwise) and the broadcasting binary
// ops Add/Sub/Mul/Div/Max/Min (oneDNN binary, with a following activation as post-op).
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

bool CpuExecutable::do_eltwise(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y) || val(x).shape != val(y).shape) return false;
  algorithm alg;
  float alpha = 0, beta = 0;
  const std::string& op = n.op;
  auto fusable = activation_of_node(g_, n);
  // The NaN-safe variant's Relu keeps NaN: elu with alpha 0, then +0 (see append_act).
  const bool relu =
      nan_safe_ && (op == "Relu" || (op == "LeakyRelu" && fusable && fusable->alpha == 0));
  if (op == "Relu" && !relu)
    alg = algorithm::eltwise_relu;
  else if (relu)
    alg = algorithm::eltwise_elu;
  else if (op == "LeakyRelu")
    alg = algorithm::eltwise_relu, alpha = to_f(fusable->alpha);
  else if (op == "Sigmoid")
    alg = algorithm::eltwise_logistic;
  else if (op == "Tanh")
    alg = algorithm::eltwise_tanh;
  else if (op == "Elu")
    alg = algorithm::eltwise_elu, alpha = to_f(fusable->alpha);
  else if (op == "HardSwish")
    alg = algorithm::eltwise_hardswish;
  else if (op == "Clip") {
    if (!fusable) return false;
    alg = algorithm::eltwise_clip_v2, alpha = to_f(fusable->alpha), beta = to_f(fusable->beta);
  } else if (op == "HardSigmoid") {  // two steps: alpha * x + beta, then clip to [0, 1]
    if (!fusable) return false;
    alg = algorithm::eltwise_linear, alpha = to_f(fusable->alpha), beta = to_f(fusable->beta);
  } else if (op == "Exp")
    alg = algorithm::eltwise_exp;
  else if (op == "Abs")
    alg = algorithm::eltwise_abs;
  else if (op == "Neg")
    alg = algorithm::eltwise_linear, alpha = -1.f;
  else if (op == "Mish")
    alg = algorithm::eltwise_mish;
  else if (op == "Gelu") {
    std::string ap = n.attrs.get_string("approximate", "none");
    if (ap == "none")
      alg = algorithm::eltwise_gelu_erf;
    else if (ap == "tanh")
      alg = algorithm::eltwise_gelu_tanh;
    else
      return false;
  } else if (op == "Sqrt")
    alg = algorithm::eltwise_sqrt;
  else if (op == "Log")
    alg = algorithm::eltwise_log;
  else if (op == "Reciprocal")
    alg = algorithm::eltwise_pow, alpha = 1.f, beta = -1.f;
  else if (op == "Softplus")
    alg = algorithm::eltwise_soft_relu;
  else if (op == "Round")
    alg = algorithm::eltwise_round;
  else if (op == "Pow") {  // a constant scalar exponent: x^p; else elementwise (own kernel)
    const int e = n.inputs.size() == 2 ? n.inputs[1] : -1;
    if (e < 0 || !val(e).is_constant() || val(e).constant.numel() != 1 || !is_float(val(e).dtype))
      return do_native_binary(ni);
    const double p = val(e).constant.get(0);
    if (p == 2)
      alg = algorithm::eltwise_square;
    else
      alg = algorithm::eltwise_pow, alpha = 1.f, beta = to_f(p);
  } else if (op == "Erf" || op == "Floor" || op == "Ceil")
    return do_native_unary(ni);
  else
    return false;
  if ((op == "LeakyRelu" || op == "Elu" || op == "HardSigmoid") && !fusable) return false;
  // SiLU and HardSwish as exporters write them: x * Sigmoid(x), x * HardSigmoid(x) (alpha 1/6,
  // beta 1/2) where the activation's only consumer is that Mul: one swish / hardswish step.
  int out_y = y;
  int mul_node = -1;
  if ((op == "Sigmoid" ||
       (op == "HardSigmoid" && std::fabs(alpha - 1.f / 6) < 1e-6f && beta == 0.5f)) &&
      !kept_[static_cast<size_t>(y)] && uses_[static_cast<size_t>(y)].size() == 1) {
    const Node& mn = g_.nodes[static_cast<size_t>(uses_[static_cast<size_t>(y)][0])];
    if (mn.op == "Mul" && mn.inputs.size() == 2 && mn.outputs.size() == 1 &&
        ((mn.inputs[0] == x && mn.inputs[1] == y) || (mn.inputs[0] == y && mn.inputs[1] == x)) &&
        dnnl_value(mn.outputs[0]) && val(mn.outputs[0]).shape == val(x).shape) {
      mul_node = uses_[static_cast<size_t>(y)][0];
      out_y = mn.outputs[0];
      if (op == "Sigmoid")
        alg = algorithm::eltwise_swish, alpha = 1.f, beta = 0.f;
      else
        alg = algorithm::eltwise_hardswish, alpha = 0.f, beta = 0.f;
    }
  }
  if (n.inputs.size() != 1 && op != "Clip" && op != "Pow") return false;
  // No post-ops here: oneDNN 2.6's reference eltwise (used for 1-D tensors) ignores them.
  const int xslot = slot_of(x);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  std::optional<dnnl::eltwise_forward::primitive_desc> pd, pd2;
  try {
    dnnl::eltwise_forward::desc d(prop_kind::forward_inference, alg, slot(xslot).md, alpha, beta);
    pd = dnnl::eltwise_forward::primitive_desc(d, attr, engine());
    if (op == "HardSigmoid" && mul_node < 0) {
      dnnl::eltwise_forward::desc d2(prop_kind::forward_inference, algorithm::eltwise_clip_v2,
                                     pd->dst_desc(), 0.f, 1.f);
      pd2 = dnnl::eltwise_forward::primitive_desc(d2, attr, engine());
    } else if (relu) {
      dnnl::eltwise_forward::desc d2(prop_kind::forward_inference, algorithm::eltwise_linear,
                                     pd->dst_desc(), 1.f, 0.f);
      pd2 = dnnl::eltwise_forward::primitive_desc(d2, attr, engine());
    }
  } catch (const dnnl::error&) {
    return false;
  }
  int dst = new_arena_slot(ty_, val(out_y).shape, pd->dst_desc(), out_y);
  push_prim(n.name, mul_node >= 0 ? (op == "Sigmoid" ? "SiLU" : "HardSwish") : op,
            dnnl::eltwise_forward(*pd), *pd, {{DNNL_ARG_SRC, xslot}, {DNNL_ARG_DST, dst}});
  if (mul_node >= 0) consumed_[static_cast<size_t>(mul_node)] = true;
  if (pd2)  // in place
    push_prim(n.name, op, dnnl::eltwise_forward(*pd2), *pd2,
              {{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}});
  vslot_[static_cast<size_t>(out_y)] = dst;
  return true;
}

bool CpuExecutable::do_binary(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 2 || n.outputs.size() != 1) return false;
  int a = n.inputs[0], b = n.inputs[1];
  const int y = n.outputs[0];
  if (!dnnl_value(a) || !dnnl_value(b) || !dnnl_value(y)) return false;
  const std::string& op = n.op;
  const bool commutative = op == "Add" || op == "Mul" || op == "Max" || op == "Min";
  algorithm alg = op == "Add"   ? algorithm::binary_add
                  : op == "Sub" ? algorithm::binary_sub
                  : op == "Mul" ? algorithm::binary_mul
                  : op == "Div" ? algorithm::binary_div
                  : op == "Max" ? algorithm::binary_max
                                : algorithm::binary_min;
  const Shape& ys = val(y).shape;
  const size_t r = ys.size();
  if (r > 12 || val(a).shape.size() > r || val(b).shape.size() > r) return false;
  if (pad_rank(val(a).shape, r) != ys) {
    if (!commutative || pad_rank(val(b).shape, r) != ys) return do_native_binary(ni);
    std::swap(a, b);
  }
  const Shape bp = pad_rank(val(b).shape, r);
  // src0: the full-size operand in its own layout (plain when its rank must be padded).
  int s0 = slot_of(a);
  const bool a_rank_ok = val(a).shape.size() == r;
  memory::desc md0 = a_rank_ok ? slot(s0).md : plain_md(ys, dty_);
  memory::desc md1;
  const bool b_full = bp == ys;
  if (b_full && val(b).shape.size() == r)
    md1 = md0;
  else
    md1 = plain_md(bp, dty_);
  dnnl::post_ops po;
  std::string opname = op;
  std::vector<int> fused;
  int out_v = fuse_following_act(y, po, opname, fused);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(po);
  std::optional<dnnl::binary::primitive_desc> pd;
  try {
    dnnl::binary::desc d(alg, md0, md1, md0);
    pd = dnnl::binary::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
    if (!fused.empty()) return without_post_ops(ni, &CpuExecutable::do_binary);
    return do_native_binary(ni);
  }
  // oneDNN's reference binary (broadcasts other than per tensor / per channel) is slow: the
  // own broadcasting kernel (a following activation then runs as its own step).
  if (std::string(pd->impl_info_str()).rfind("ref", 0) == 0 && dty_ == dt::f32 &&
      do_native_binary(ni))
    return true;
  if (refuse_ref_post_ops(*pd, fused, ni, &CpuExecutable::do_binary)) return handler_result_;
  if (!a_rank_ok) s0 = view_of(plain_of(a), ys, -1);
  int s1;
  if (b_full && val(b).shape.size() == r)
    s1 = as_md(b, md0);
  else {
    s1 = plain_of(b);
    if (bp != val(b).shape) s1 = view_of(s1, bp, -1);
  }
  int dst = new_arena_slot(ty_, ys, pd->dst_desc(), out_v);
  return push_fused(n.name, opname, dnnl::binary(*pd), *pd,
                    {{DNNL_ARG_SRC_0, s0}, {DNNL_ARG_SRC_1, s1}, {DNNL_ARG_DST, dst}}, out_v, dst,
                    fused);
}

}  // namespace anvil::cpu
