// cuda executor handlers: Conv and ConvTranspose through a ConvPlan (conv.h), with the
// node's activation, a residual Add and the activation after it fused into the plan.
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

bool CudaExecutable::do_conv(int ni, bool transpose) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], w = n.inputs[1], b = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const int y = n.outputs[0];
  if (x < 0 || w < 0 || !val(w).is_constant() || !float_type(val(w).dtype)) return false;
  if (b >= 0 && (!val(b).is_constant() || !float_type(val(b).dtype))) return false;
  if (val(x).dtype != ty_) return false;
  const Shape& xs_ = val(x).shape;
  const Shape& ys_ = val(y).shape;
  const size_t rank = xs_.size();
  if ((rank != 3 && rank != 4) || val(w).shape.size() != rank || ys_.size() != rank) return false;
  const size_t nsp = rank - 2;
  auto fa = fused_attr(n);  // an unknown activation is an error here, as before
  if (!fa) return false;
  // The attributes as every backend reads them (ops/attrs.h); a node they reject runs on the
  // reference kernel, which reports the error.
  ConvAttrs ca;
  try {
    ca = conv_attrs(g_, n);
  } catch (const Error&) {
    return false;
  }
  auto strides = ca.s;
  auto dil = ca.d;
  std::vector<int64_t> pads = ca.pb;  // ONNX order: begins, then ends
  pads.insert(pads.end(), ca.pe.begin(), ca.pe.end());
  const int64_t group = ca.group;
  // A 1-D convolution (N, C, W) is the 2-D one of (N, C, 1, W): its channels-last storage is
  // the same bytes.
  Shape xs = xs_, ys = ys_, ws = val(w).shape;
  if (nsp == 1) {
    xs.insert(xs.begin() + 2, 1);
    ys.insert(ys.begin() + 2, 1);
    ws.insert(ws.begin() + 2, 1);
    strides.insert(strides.begin(), 1);
    dil.insert(dil.begin(), 1);
    pads = {0, pads[0], 0, pads[1]};
  }
  std::string opname = n.op;

  ConvParams p;
  p.n = static_cast<int>(xs[0]);
  p.c = static_cast<int>(xs[1]);
  p.h = static_cast<int>(xs[2]);
  p.w = static_cast<int>(xs[3]);
  p.k = static_cast<int>(ys[1]);
  p.r = static_cast<int>(ws[2]);
  p.s = static_cast<int>(ws[3]);
  p.oh = static_cast<int>(ys[2]);
  p.ow = static_cast<int>(ys[3]);
  p.stride_h = static_cast<int>(strides[0]);
  p.stride_w = static_cast<int>(strides[1]);
  p.dil_h = static_cast<int>(dil[0]);
  p.dil_w = static_cast<int>(dil[1]);
  p.groups = static_cast<int>(group);
  p.transpose = transpose;
  p.dtype = ty_;
  p.has_bias = b >= 0;
  int64_t extra_t = 0, extra_b = 0, extra_l = 0, extra_r = 0;  // explicit padding
  if (!transpose) {
    const int64_t mh = std::min(pads[0], pads[2]), mw = std::min(pads[1], pads[3]);
    p.pad_h = static_cast<int>(mh);
    p.pad_w = static_cast<int>(mw);
    extra_t = pads[0] - mh;
    extra_b = pads[2] - mh;
    extra_l = pads[1] - mw;
    extra_r = pads[3] - mw;
    p.h += static_cast<int>(extra_t + extra_b);
    p.w += static_cast<int>(extra_l + extra_r);
  } else {
    // cuDNN's transposed convolution with pad p writes full-output rows [p, p + oh): ONNX's
    // output with begin pad p, whatever the end pad and output_padding, as long as the size
    // is one cuDNN accepts (oh + 2p - extent within [s*(in-1), s*(in-1) + s - 1]).
    if (ca.has_output_shape) {
      // ONNX derives the pads from output_shape; the reference's rule (auto_pad NOTSET).
      return false;
    }
    for (int i = 0; i < 2; ++i) {
      const int64_t in = xs[static_cast<size_t>(2 + i)], out = ys[static_cast<size_t>(2 + i)];
      const int64_t s = strides[static_cast<size_t>(i)];
      const int64_t ek = (ws[static_cast<size_t>(2 + i)] - 1) * dil[static_cast<size_t>(i)] + 1;
      const int64_t pb = pads[static_cast<size_t>(i)];
      const int64_t span = out + 2 * pb - ek - s * (in - 1);
      if (span < 0 || span >= s) return false;
      (i == 0 ? p.pad_h : p.pad_w) = static_cast<int>(pb);
    }
  }

  // Fusion: the node's own activation (Relu into the plan, others as a unary step after), or
  // else a residual Add (+ Relu) / a following activation.
  int out_v = y, resid = -1;
  std::vector<int> fused;
  std::optional<UnaryFn> after;
  // Clip(0, m) with m > 0 is ReLU clamped at m (ReLU6 ...): ConvParams::relu_max.
  auto clamped_relu = [](const UnaryFn& f) {
    return f.op == Unary::Relu || (f.op == Unary::Clip && f.alpha == 0.f && f.beta > 0.f);
  };
  auto set_relu = [&p](const UnaryFn& f) {
    p.relu = true;
    p.relu_max = f.op == Unary::Clip ? f.beta : INFINITY;
  };
  if (!fa->name.empty()) {
    opname += "+" + fa->name;
    if (clamped_relu(*fa))
      set_relu(*fa);
    else
      after = fa;
  } else {
    if (!transpose && !kept_[static_cast<size_t>(y)] && uses_[static_cast<size_t>(y)].size() == 1) {
      const int c = uses_[static_cast<size_t>(y)][0];
      const Node& an = g_.nodes[static_cast<size_t>(c)];
      if (an.op == "Add" && an.inputs.size() == 2 && an.outputs.size() == 1) {
        const int r = an.inputs[0] == y ? an.inputs[1] : an.inputs[0];
        const int z = an.outputs[0];
        if (r >= 0 && r != y && vslot_[static_cast<size_t>(r)] >= 0 && val(r).shape == ys_ &&
            val(r).dtype == ty_ && val(z).shape == ys_ && val(z).dtype == ty_) {
          resid = r;
          fused.push_back(c);
          out_v = z;
          opname += "+Add";
        }
      }
    }
    int ov = out_v, an = -1;
    auto f = following_act(out_v, ov, an);
    if (f) {
      if (clamped_relu(*f)) {  // also after a residual Add: act(conv + bias + z)
        set_relu(*f);
        opname += "+" + f->name;
        fused.push_back(an);
        out_v = ov;
      } else if (resid < 0) {
        after = f;
        opname += "+" + f->name;
        fused.push_back(an);
        out_v = ov;
      }
    }
  }
  p.has_residual = resid >= 0;

  // ConvPlan times its paths (a cuBLASLt product for 1x1 convolutions, im2col + product,
  // its own depthwise kernel, cuDNN fused or not: conv.cpp) and keeps the fastest.
  std::unique_ptr<ConvPlan> plan;
  ConvWeights cw;
  try {
    plan = std::make_unique<ConvPlan>(p, n.name);
    cw = plan->prepare(val(w).constant, b >= 0 ? &val(b).constant : nullptr);
  } catch (const Error&) {
    return false;  // no path runs it: the reference kernel does
  }
  const int wslot = device_slot(cw.w);
  const int bslot = cw.bias.defined() ? device_slot(cw.bias) : -1;
  workspace_bytes_ = std::max(workspace_bytes_, plan->workspace_bytes());
  const ConvPlan* pl = plan.get();
  conv_plans_.push_back(std::move(plan));

  int src = as_layout(x, Layout::Nhwc);
  if (extra_t || extra_b || extra_l || extra_r) {
    // Asymmetric pads: copy into a zeroed NHWC buffer with the extra rows/columns.
    Shape ps = xs_;
    if (nsp == 2) ps[2] += extra_t + extra_b;
    ps.back() += extra_l + extra_r;
    int padded = new_slot(ty_, ps, Layout::Nhwc);
    const DType dt = ty_;
    const int64_t numel = shape_numel(ps);
    push(n.name, "Pad", {padded}, [this, padded, dt, numel](const Context& c, cudaStream_t s) {
      fill(dt, ptr(c, padded), numel, 0.f, s);
    });
    auto dst_st = logical_strides(slot(padded));
    const int64_t off = (nsp == 2 ? extra_t * dst_st[2] : 0) + extra_l * dst_st.back();
    if (!push_copy(n.name, "Pad", src, 0, logical_strides(slot(src)), padded, off, dst_st, xs_))
      throw Error("cuda backend: padding copy failed");
    src = padded;
  }
  const int rslot = resid >= 0 ? as_layout(resid, Layout::Nhwc) : -1;
  const int dst = new_slot(ty_, val(out_v).shape, Layout::Nhwc);
  return push_plan(n.name, opname, pl, {src, wslot, bslot, rslot}, dst, out_v, after, fused);
}

}  // namespace anvil::cuda::exec
