// cuda executor handlers: Gemm and MatMul through a GemmPlan (cuBLASLt, gemm.h), with the
// activation that follows fused as an epilogue where cuBLASLt has one.
// Registered in the handler table of executor.cpp; see docs/cuda_backend.md.
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
#include "ops/attrs.h"
#include "ops/nn_util.h"

namespace anvil::cuda::exec {

bool CudaExecutable::do_gemm(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], c = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const int y = n.outputs[0];
  if (a < 0 || b < 0 || val(a).dtype != ty_ || val(b).dtype != ty_) return false;
  const Shape& as = val(a).shape;
  const Shape& bs = val(b).shape;
  if (as.size() != 2 || bs.size() != 2 || val(y).shape.size() != 2) return false;
  auto fa = fused_attr(n);  // an unknown activation is an error here, as before
  if (!fa) return false;
  // The attributes as every backend reads them (ops/attrs.h); a node they reject runs on the
  // reference kernel, which reports the error.
  GemmAttrs ga;
  try {
    ga = gemm_attrs(g_, n);
  } catch (const Error&) {
    return false;
  }
  const bool ta = ga.ta, tb = ga.tb;
  const double alpha = ga.alpha, beta = ga.beta;
  GemmParams p;
  p.m = ga.M;
  p.k = ga.K;
  p.n = ga.N;
  p.trans_a = ta;
  p.trans_b = tb;
  p.dtype = ty_;
  p.alpha = to_f(alpha);
  std::string opname = n.op;
  std::optional<UnaryFn> after;
  int out_v = y;
  std::vector<int> fused;
  if (!fa->name.empty()) {
    opname += "+" + fa->name;
    if (fa->op == Unary::Relu)
      p.epilogue = GemmParams::Epilogue::Relu;
    else
      after = fa;
  } else {
    int ov, an;
    auto f = following_act(y, ov, an);
    if (f) {
      opname += "+" + f->name;
      fused.push_back(an);
      out_v = ov;
      if (f->op == Unary::Relu)
        p.epilogue = GemmParams::Epilogue::Relu;
      else if (f->op == Unary::Gelu)
        p.epilogue = GemmParams::Epilogue::Gelu;
      else if (f->op == Unary::GeluTanh)
        p.epilogue = GemmParams::Epilogue::GeluTanh;
      else
        after = f;
    }
  }
  // C: a row (N), (1, N) or a scalar becomes the bias; a full (M, N) C is added with beta.
  Tensor bias;
  int cslot = -1;
  if (c >= 0 && beta != 0) {
    const Shape& cs = val(c).shape;
    const int64_t cn = shape_numel(cs);
    const bool row = cn == 1 || (cn == p.n && (cs.size() == 1 || (cs.size() == 2 && cs[0] == 1)));
    if (val(c).is_constant() && row) {
      const DType bt = ty_ == DType::f32 ? DType::f32 : ty_;
      Tensor bf(DType::f32, {p.n});
      for (int64_t i = 0; i < p.n; ++i)
        bf.data<float>()[i] = static_cast<float>(beta * val(c).constant.get(cn == 1 ? 0 : i));
      bias = bf.to(bt);
      p.has_bias = true;
    } else if (cs == Shape{p.m, p.n} && val(c).dtype == ty_) {
      p.has_c = true;
      p.beta = to_f(beta);
    } else {
      return false;
    }
  }
  std::unique_ptr<GemmPlan> plan;
  try {
    plan = std::make_unique<GemmPlan>(p, n.name);
  } catch (const Error&) {
    return false;
  }
  const GemmPlan* pl = plan.get();
  workspace_bytes_ = std::max(workspace_bytes_, plan->workspace_bytes());
  gemm_plans_.push_back(std::move(plan));
  const int sa = plain_of(a), sb = plain_of(b);
  const int sbias = bias.defined() ? device_slot(bias) : -1;
  if (p.has_c) cslot = plain_of(c);
  const int dst = new_slot(ty_, val(out_v).shape, Layout::Plain);
  return push_plan(n.name, opname, pl, {sa, sb, sbias, cslot}, dst, out_v, after, fused);
}

bool CudaExecutable::do_matmul(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  if (a < 0 || b < 0 || val(a).dtype != ty_ || val(b).dtype != ty_) return false;
  const Shape& as = val(a).shape;
  const Shape& bs = val(b).shape;
  const Shape& ys = val(y).shape;
  if (as.empty() || bs.empty()) return false;
  GemmParams p;
  p.dtype = ty_;
  p.m = as.size() == 1 ? 1 : as[as.size() - 2];
  p.k = as.back();
  p.n = bs.size() == 1 ? 1 : bs.back();
  const int64_t bk = bs.size() == 1 ? bs[0] : bs[bs.size() - 2];
  if (bk != p.k) return false;
  // Batch dims: each operand's are either the output's (contiguous matrices) or all 1.
  const size_t yb = ys.size() >= 2 && as.size() >= 2 && bs.size() >= 2 ? ys.size() - 2
                    : (as.size() == 1 && bs.size() == 1)               ? 0
                                                                       : ys.size() - 1;
  Shape ybatch(ys.begin(), ys.begin() + static_cast<std::ptrdiff_t>(yb));
  p.batch = shape_numel(ybatch);
  auto batch_stride = [&](const Shape& s, int64_t mat) -> std::optional<int64_t> {
    if (s.size() <= 2) return 0;
    Shape sb(s.begin(), s.end() - 2);
    if (shape_numel(sb) == 1) return 0;
    // equal once leading 1s are dropped
    while (!sb.empty() && sb.front() == 1) sb.erase(sb.begin());
    Shape yy = ybatch;
    while (!yy.empty() && yy.front() == 1) yy.erase(yy.begin());
    if (sb != yy) return std::nullopt;
    return mat;
  };
  auto sa_ = batch_stride(as, p.m * p.k), sb_ = batch_stride(bs, p.k * p.n);
  if (!sa_ || !sb_) return false;
  p.stride_a = *sa_;
  p.stride_b = *sb_;
  p.stride_y = p.m * p.n;
  if (p.batch * p.m * p.n != shape_numel(ys)) return false;
  auto fa = fused_attr(n);
  if (!fa) return false;
  std::string opname = n.op;
  std::optional<UnaryFn> after;
  int out_v = y;
  std::vector<int> fused;
  if (!fa->name.empty()) {
    opname += "+" + fa->name;
    if (fa->op == Unary::Relu)
      p.epilogue = GemmParams::Epilogue::Relu;
    else
      after = fa;
  } else {
    int ov, an;
    auto f = following_act(y, ov, an);
    if (f && (f->op == Unary::Relu || f->op == Unary::Gelu || f->op == Unary::GeluTanh)) {
      opname += "+" + f->name;
      fused.push_back(an);
      out_v = ov;
      p.epilogue = f->op == Unary::Relu   ? GemmParams::Epilogue::Relu
                   : f->op == Unary::Gelu ? GemmParams::Epilogue::Gelu
                                          : GemmParams::Epilogue::GeluTanh;
    }
  }
  std::unique_ptr<GemmPlan> plan;
  try {
    plan = std::make_unique<GemmPlan>(p, n.name);
  } catch (const Error&) {
    return false;
  }
  const GemmPlan* pl = plan.get();
  workspace_bytes_ = std::max(workspace_bytes_, plan->workspace_bytes());
  gemm_plans_.push_back(std::move(plan));
  const int sa = plain_of(a), sb = plain_of(b);
  const int dst = new_slot(ty_, val(out_v).shape, Layout::Plain);
  return push_plan(n.name, opname, pl, {sa, sb, -1, -1}, dst, out_v, after, fused);
}

}  // namespace anvil::cuda::exec
