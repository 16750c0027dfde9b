// cpu backend handlers: Concat, Softmax/LogSoftmax, LRN, BatchNormalization (oneDNN), views
// (Reshape/Flatten/Squeeze/Unsqueeze/Identity/Dropout: no copy) and float casts (reorders).
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

bool CpuExecutable::do_concat(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.size() != 1) return false;
  const int y = n.outputs[0];
  if (!dnnl_value(y)) return false;
  const int r = static_cast<int>(val(y).shape.size());
  int64_t axis = n.attrs.get_int("axis");
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  std::vector<int> ins;
  std::vector<memory::desc> mds;
  for (int v : n.inputs) {
    if (!dnnl_value(v) || static_cast<int>(val(v).shape.size()) != r) return false;
    ins.push_back(slot_of(v));
    mds.push_back(slot(ins.back()).md);
  }
  bool same = true;
  for (auto& m : mds) same &= slot(ins[0]).plain ? is_plain(m) : m == mds[0];
  if (!same && val(y).dtype == ty_) {
    // Mixed layouts (e.g. an NHWC branch and a Winograd nChw16c branch): one reorder per
    // input straight into its slice of the output (NHWC for 4-D, else plain), no extra pass.
    const Dims yd(val(y).shape.begin(), val(y).shape.end());
    const memory::desc out_md =
        r == 4 ? memory::desc(yd, dty_, tag::nhwc) : plain_md(val(y).shape, dty_);
    const int dst = new_arena_slot(ty_, val(y).shape, out_md, y);
    int64_t off = 0;
    for (size_t i = 0; i < ins.size(); ++i) {
      const Shape& is = val(n.inputs[i]).shape;
      Dims offs(static_cast<size_t>(r), 0);
      offs[static_cast<size_t>(axis)] = off;
      off += is[static_cast<size_t>(axis)];
      const int part = view_of(dst, is, -1);
      slot(part).md = out_md.submemory_desc(Dims(is.begin(), is.end()), offs);
      slot(part).plain = false;
      push_reorder(ins[i], part, n.name);
      steps_.back().op = "Concat";
    }
    vslot_[static_cast<size_t>(y)] = dst;
    return true;
  }
  if (!same)
    for (size_t i = 0; i < mds.size(); ++i) mds[i] = plain_md(val(n.inputs[i]).shape, dty_);
  std::optional<dnnl::concat::primitive_desc> pd;
  try {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    pd = dnnl::concat::primitive_desc(static_cast<int>(axis), mds, engine(), attr);
  } catch (const dnnl::error&) {
    return false;
  }
  std::vector<std::pair<int, int>> args;
  for (size_t i = 0; i < ins.size(); ++i)
    args.push_back(
        {DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), same ? ins[i] : plain_of(n.inputs[i])});
  int dst = new_arena_slot(ty_, val(y).shape, pd->dst_desc(), y);
  args.push_back({DNNL_ARG_DST, dst});
  push_prim(n.name, n.op, dnnl::concat(*pd), *pd, std::move(args));
  vslot_[static_cast<size_t>(y)] = dst;
  return true;
}

bool CpuExecutable::do_softmax(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y)) return false;
  const int r = static_cast<int>(val(x).shape.size());
  if (r < 1) return false;
  int64_t axis = n.attrs.get_int("axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  const memory::desc md = plain_md(val(x).shape, dty_);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::primitive p;
  memory::desc scratch;
  try {
    if (n.op == "Softmax") {
      dnnl::softmax_forward::desc d(prop_kind::forward_inference, md, static_cast<int>(axis));
      dnnl::softmax_forward::primitive_desc pd(d, attr, engine());
      p = dnnl::softmax_forward(pd);
      int src = plain_of(x);
      int dst = new_arena_slot(ty_, val(y).shape, md, y);
      push_prim(n.name, n.op, p, pd, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
      vslot_[static_cast<size_t>(y)] = dst;
    } else {
      dnnl::logsoftmax_forward::desc d(prop_kind::forward_inference, md, static_cast<int>(axis));
      dnnl::logsoftmax_forward::primitive_desc pd(d, attr, engine());
      p = dnnl::logsoftmax_forward(pd);
      int src = plain_of(x);
      int dst = new_arena_slot(ty_, val(y).shape, md, y);
      push_prim(n.name, n.op, p, pd, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
      vslot_[static_cast<size_t>(y)] = dst;
    }
  } catch (const dnnl::error&) {
    return false;
  }
  return true;
}

bool CpuExecutable::do_lrn(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y) || val(x).shape.size() < 3) return false;
  const int64_t size = n.attrs.get_int("size");
  // ONNX's window is [c - floor((size-1)/2), c + ceil((size-1)/2)]: oneDNN's for odd sizes.
  if (size < 1 || size % 2 == 0) return false;
  const float alpha = to_f(n.attrs.get_float("alpha", 1e-4));
  const float beta = to_f(n.attrs.get_float("beta", 0.75));
  const float bias = to_f(n.attrs.get_float("bias", 1.0));
  const int xslot = slot_of(x);
  std::optional<dnnl::lrn_forward::primitive_desc> pd;
  try {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::lrn_forward::desc d(prop_kind::forward_inference, algorithm::lrn_across_channels,
                              slot(xslot).md, size, alpha, beta, bias);
    pd = dnnl::lrn_forward::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
    return false;
  }
  int dst = new_arena_slot(ty_, val(y).shape, pd->dst_desc(), y);
  push_prim(n.name, n.op, dnnl::lrn_forward(*pd), *pd,
            {{DNNL_ARG_SRC, xslot}, {DNNL_ARG_DST, dst}});
  vslot_[static_cast<size_t>(y)] = dst;
  return true;
}

bool CpuExecutable::do_batchnorm(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 5 || n.outputs.size() != 1) return false;
  if (n.attrs.get_int("training_mode", 0) != 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y) || val(x).shape.size() < 2) return false;
  const int64_t C = val(x).shape[1];
  for (int i = 1; i < 5; ++i) {
    int v = n.inputs[static_cast<size_t>(i)];
    if (!dnnl_value(v) || !val(v).is_constant() || val(v).constant.numel() != C) return false;
  }
  const float eps = to_f(n.attrs.get_float("epsilon", 1e-5));
  const int xslot = slot_of(x);
  dnnl::post_ops po;
  std::string opname = n.op;
  std::vector<int> fused;
  int out_v = fuse_following_act(y, po, opname, fused);
  std::optional<dnnl::batch_normalization_forward::primitive_desc> pd;
  try {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(po);
    auto flags = dnnl::normalization_flags::use_global_stats |
                 dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    dnnl::batch_normalization_forward::desc d(prop_kind::forward_inference, slot(xslot).md, eps,
                                              flags);
    pd = dnnl::batch_normalization_forward::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
    if (!fused.empty()) return without_post_ops(ni, &CpuExecutable::do_batchnorm);
    return false;
  }
  if (refuse_ref_post_ops(*pd, fused, ni, &CpuExecutable::do_batchnorm)) return handler_result_;
  auto cs = [&](int i) {  // oneDNN wants f32 statistics, scale and shift
    const Value& p = val(n.inputs[static_cast<size_t>(i)]);
    return owned_weights(plain_md({C}, dt::f32), plain_md({C}, dty_), p.constant.raw());
  };
  int dst = new_arena_slot(ty_, val(y).shape, pd->dst_desc(), out_v);
  return push_fused(n.name, opname, dnnl::batch_normalization_forward(*pd), *pd,
                    {{DNNL_ARG_SRC, xslot},
                     {DNNL_ARG_SCALE, cs(1)},
                     {DNNL_ARG_SHIFT, cs(2)},
                     {DNNL_ARG_MEAN, cs(3)},
                     {DNNL_ARG_VARIANCE, cs(4)},
                     {DNNL_ARG_DST, dst}},
                    out_v, dst, fused);
}

bool CpuExecutable::do_view(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.empty()) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!uses_[static_cast<size_t>(n.outputs[i])].empty() ||
        kept_[static_cast<size_t>(n.outputs[i])])
      return false;  // Dropout's mask
  if (x < 0 || !val(x).shape_known || !val(y).shape_known || val(x).dtype != val(y).dtype ||
      shape_numel(val(x).shape) != shape_numel(val(y).shape))
    return false;
  int s = view_of(plain_of(x), val(y).shape, y);
  vslot_[static_cast<size_t>(y)] = s;
  return true;
}

bool CpuExecutable::do_cast(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  const dt tx = dnnl_type(val(x).dtype);
  if (tx == dt::undef || !val(x).shape_known || shape_numel(val(x).shape) == 0 ||
      val(x).shape != val(y).shape)
    return false;
  // A float-to-float cast keeps the layout: a reorder that only changes the data type.
  const int xslot = slot_of(x);
  dnnl_memory_desc_t d = slot(xslot).md.data;
  d.data_type = static_cast<dnnl_data_type_t>(dty_);
  const memory::desc ymd(d);
  int dst = new_arena_slot(ty_, val(y).shape, ymd, y);
  dnnl::reorder::primitive_desc pd(engine(), slot(xslot).md, engine(), ymd);
  push_prim(n.name, n.op, dnnl::reorder(pd), pd, {{DNNL_ARG_FROM, xslot}, {DNNL_ARG_TO, dst}});
  vslot_[static_cast<size_t>(y)] = dst;
  return true;
}

}  // namespace anvil::cpu
