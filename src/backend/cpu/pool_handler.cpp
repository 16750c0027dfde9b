// cpu backend handler: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool as oneDNN
// pooling (ceil mode as extra end padding), with a following activation as post-op.
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

bool CpuExecutable::do_pool(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.outputs.size() != 1 || n.inputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y)) return false;
  const Shape& xs = val(x).shape;
  const Shape& ys = val(y).shape;
  const int rank = static_cast<int>(xs.size());
  if (rank < 3 || rank > 5) return false;
  const size_t nsp = static_cast<size_t>(rank - 2);
  const bool global = n.op == "GlobalAveragePool" || n.op == "GlobalMaxPool";
  const bool is_max = n.op == "MaxPool" || n.op == "GlobalMaxPool";
  std::vector<int64_t> k, s(nsp, 1), d(nsp, 1), pads(2 * nsp, 0);
  bool include_pad = false;
  if (global) {
    k.assign(xs.begin() + 2, xs.end());
  } else {
    std::optional<PoolAttrs> pa;
    try {
      pa = pool_attrs(g_, n);
    } catch (const Error&) {
      return false;  // the reference kernel reports it
    }
    for (int i = pa->off(); i < 3; ++i) {
      const auto u = static_cast<size_t>(i - pa->off());
      k.push_back(pa->k[i]);
      s[u] = pa->s[i];
      d[u] = pa->d[i];
      pads[u] = pa->pb[i];
      pads[u + nsp] = pa->pe[i];
    }
    include_pad = pa->include_pad;
  }
  Dims st(s.begin(), s.end()), kd(k.begin(), k.end()), dl(nsp), pl(nsp), pr(nsp);
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t in = xs[i + 2], out = ys[i + 2], ek = (k[i] - 1) * d[i] + 1;
    dl[i] = d[i] - 1;
    pl[i] = pads[i];
    pr[i] = pads[i + nsp];
    // ceil_mode: oneDNN takes the output size from the pads, so the overhang of the last
    // window becomes extra end padding.
    if ((in + pl[i] + pr[i] - ek) / s[i] + 1 != out) pr[i] = (out - 1) * s[i] + ek - in - pl[i];
    if (pr[i] < 0) return false;
    // Ours counts padding but not the ceil overhang; oneDNN's include-padding average divides
    // by the whole window. They agree unless a window reaches past the declared end pad.
    if (include_pad && pr[i] > pads[i + nsp]) return false;
  }
  bool any_pad = false;
  for (auto p : pads) any_pad |= p != 0;
  algorithm alg = is_max                   ? algorithm::pooling_max
                  : include_pad && any_pad ? algorithm::pooling_avg_include_padding
                                           : algorithm::pooling_avg_exclude_padding;
  const int xslot = slot_of(x);
  const memory::desc x_md = slot(xslot).md;
  dnnl::post_ops po;
  std::string opname = n.op;
  std::vector<int> fused;
  int out_v = fuse_following_act(y, po, opname, fused);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(po);
  std::optional<dnnl::pooling_v2_forward::primitive_desc> pd;
  try {
    dnnl::pooling_v2_forward::desc dsc(prop_kind::forward_inference, alg, x_md,
                                       memory::desc(Dims(ys.begin(), ys.end()), dty_, tag::any), st,
                                       kd, dl, pl, pr);
    pd = dnnl::pooling_v2_forward::primitive_desc(dsc, attr, engine());
  } catch (const dnnl::error&) {
    if (!fused.empty()) return without_post_ops(ni, &CpuExecutable::do_pool);
    return false;
  }
  if (refuse_ref_post_ops(*pd, fused, ni, &CpuExecutable::do_pool)) return handler_result_;
  int dst = new_arena_slot(ty_, ys, pd->dst_desc(), out_v);
  return push_fused(n.name, opname, dnnl::pooling_v2_forward(*pd), *pd,
                    {{DNNL_ARG_SRC, xslot}, {DNNL_ARG_DST, dst}}, out_v, dst, fused);
}

}  // namespace anvil::cpu
