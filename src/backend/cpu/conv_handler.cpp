// cpu backend handler: Conv and ConvTranspose as oneDNN (de)convolution primitives, with the
// node's fused activation, a following residual Add (`sum` post-op) and a following
// activation as post-ops; weights reordered once into the primitive's format.
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

bool CpuExecutable::conv_like(int ni, bool transpose) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], w = n.inputs[1], b = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const int y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(w) || !dnnl_value(y) || !val(w).is_constant()) return false;
  if (b >= 0 && (!dnnl_value(b) || !val(b).is_constant())) return false;
  const Shape& xs = val(x).shape;
  const Shape& ws = val(w).shape;
  const Shape& ys = val(y).shape;
  const int rank = static_cast<int>(xs.size());
  if (rank < 3 || rank > 5 || ws.size() != xs.size()) return false;
  const size_t nsp = static_cast<size_t>(rank - 2);
  std::optional<ConvAttrs> ca;
  try {
    ca = conv_attrs(g_, n);
  } catch (const Error&) {
    return false;  // the reference kernel reports it
  }
  const std::vector<int64_t>& strides = ca->s;
  const std::vector<int64_t>& dil = ca->d;
  const int64_t group = ca->group;
  Dims st(strides.begin(), strides.end()), dl(nsp), pl(nsp), pr(nsp);
  for (size_t i = 0; i < nsp; ++i) {
    dl[i] = dil[i] - 1;
    pl[i] = ca->pb[i];
    pr[i] = ca->pe[i];
  }
  if (transpose) {
    // oneDNN derives no pads from output_shape: use the ones the output size implies.
    if (ca->has_output_shape) return false;
    for (size_t i = 0; i < nsp; ++i) pr[i] -= ca->op[i];  // output_padding extends the end
    for (size_t i = 0; i < nsp; ++i) {
      int64_t ek = (ws[i + 2] - 1) * dil[i] + 1;
      if ((xs[i + 2] - 1) * strides[i] + ek - pl[i] - pr[i] != ys[i + 2]) return false;
    }
  }
  // Weights: ONNX Conv (M, C/g, k...) is oihw / goihw; ConvTranspose (C, M/g, k...) is iohw.
  Dims wdims, wstrides;
  {
    Dims kd(ws.begin() + 2, ws.end());
    int64_t ksz = 1;
    for (auto k : kd) ksz *= k;
    Dims kst(nsp);
    for (size_t i = nsp; i-- > 0;) kst[i] = (i + 1 < nsp) ? kst[i + 1] * kd[i + 1] : 1;
    if (!transpose) {
      const int64_t M = ws[0], Cg = ws[1];
      if (group > 1) {
        wdims = {group, M / group, Cg};
        wstrides = {(M / group) * Cg * ksz, Cg * ksz, ksz};
      } else {
        wdims = {M, Cg};
        wstrides = {Cg * ksz, ksz};
      }
    } else {
      const int64_t C = ws[0], Mg = ws[1], Cg = C / group;
      // logical oneDNN deconv weights: (g,) OC/g, IC/g, k...; element (g, mo, ci) lives at
      // ONNX W[g*Cg + ci, mo].
      if (group > 1) {
        wdims = {group, Mg, Cg};
        wstrides = {Cg * Mg * ksz, ksz, Mg * ksz};
      } else {
        wdims = {Mg, C};
        wstrides = {ksz, Mg * ksz};
      }
    }
    wdims.insert(wdims.end(), kd.begin(), kd.end());
    wstrides.insert(wstrides.end(), kst.begin(), kst.end());
  }
  const memory::desc w_have(wdims, dty_, wstrides);
  const memory::desc w_any(wdims, dty_, tag::any);
  const int64_t M = ys[1];
  const memory::desc b_md = b >= 0 ? plain_md({M}, dnnl_type(val(b).dtype)) : memory::desc();
  const Dims ydims(ys.begin(), ys.end());
  const memory::desc y_any(ydims, dty_, tag::any);
  const int xs_slot = slot_of(x);
  const memory::desc x_any(Dims(xs.begin(), xs.end()), dty_, tag::any);
  // The input's layout as produced, except channel-blocked layouts (nChw16c, written by the
  // Winograd kernels below): the other kernels are fastest in NHWC (brgconv), so they let
  // oneDNN choose and a reorder is inserted.
  const memory::desc& xs_md = slot(xs_slot).md;
  memory::desc x_md = slot(xs_slot).plain || xs_md.data.format_kind != dnnl_blocked ||
                              xs_md.data.format_desc.blocking.inner_nblks > 0
                          ? x_any
                          : xs_md;
  // Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions with channels in multiples of 16
  // (oneDNN's jit_fp32_wino_2x3, nChw16c): 1.1-1.8x faster than the direct kernel here and as
  // accurate (docs/cpu_backend.md has the measurements). ANVIL_CPU_WINOGRAD=0 turns it off.
  static const bool winograd_on = [] {
    const char* e = std::getenv("ANVIL_CPU_WINOGRAD");
    return !(e && std::string(e) == "0");
  }();
  const bool wino = winograd_on && !transpose && rank == 4 && dty_ == memory::data_type::f32 &&
                    group == 1 && ws[2] == 3 && ws[3] == 3 && strides[0] == 1 && strides[1] == 1 &&
                    dil[0] == 1 && dil[1] == 1 && ws[0] % 16 == 0 && ws[1] % 16 == 0;

  // Post-ops: the fused activation, then a residual Add as `sum`, then a following activation.
  std::string opname = n.op;
  const FusedActivation& fa = ca->act;
  dnnl::post_ops base_po;
  if (!append_act(base_po, fa, nan_safe_)) return false;
  if (!fa.empty()) opname += "+" + fa.name();

  // Residual sum: y's only consumer is Add(y, r) where r is already computed, lives in the
  // arena and nothing reads r's buffer after this node except the Add.
  int sum_r = -1, add_node = -1;  // sum_r: the slot the conv accumulates into
  if (!transpose && !kept_[static_cast<size_t>(y)] && uses_[static_cast<size_t>(y)].size() == 1) {
    const int c = uses_[static_cast<size_t>(y)][0];
    const Node& an = g_.nodes[static_cast<size_t>(c)];
    if (an.op == "Add" && an.inputs.size() == 2 && an.outputs.size() == 1) {
      const int r = an.inputs[0] == y ? an.inputs[1] : an.inputs[0];
      const int z = an.outputs[0];
      // r's slot: as produced, or a copy of it reordered for an earlier consumer.
      int rslot = r >= 0 ? vslot_[static_cast<size_t>(r)] : -1;
      if (rslot >= 0 && slot(rslot).st != Storage::Arena)
        for (int a : valt_[static_cast<size_t>(r)])
          if (slot(a).st == Storage::Arena) rslot = a;
      bool ok = r != y && dnnl_value(r) && val(r).shape == ys && val(z).shape == ys &&
                val(z).dtype == ty_ && rslot >= 0;
      if (ok) {
        const Slot& rs = slot(rslot);
        ok = rs.st == Storage::Arena && rs.buf != slot(xs_slot).buf;
        if (ok)
          for (int u : bufs_[static_cast<size_t>(rs.buf)].values) {
            if (kept_[static_cast<size_t>(u)]) ok = false;
            for (int j : uses_[static_cast<size_t>(u)])
              if (!(j < ni || j == c)) ok = false;
          }
      }
      if (ok) {
        sum_r = rslot;
        add_node = c;
      }
    }
  }

  auto make_pd = [&](const dnnl::post_ops& po, const memory::desc& dst,
                     algorithm alg =
                         algorithm::convolution_direct) -> std::optional<dnnl::primitive_desc> {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(po);
    try {
      if (transpose) {
        dnnl::deconvolution_forward::desc d(prop_kind::forward_inference,
                                            algorithm::deconvolution_direct, x_md, w_any, b_md, dst,
                                            st, dl, pl, pr);
        return dnnl::deconvolution_forward::primitive_desc(d, attr, engine());
      }
      dnnl::convolution_forward::desc d(prop_kind::forward_inference, alg,
                                        alg == algorithm::convolution_winograd ? x_any : x_md,
                                        w_any, b_md, dst, st, dl, pl, pr);
      return dnnl::convolution_forward::primitive_desc(d, attr, engine());
    } catch (const dnnl::error&) {
      return std::nullopt;
    }
  };

  std::optional<dnnl::primitive_desc> pd;
  int out_v = y;
  std::vector<int> fused;
  int dst_share = -1;       // slot whose buffer the output shares (sum)
  bool relu_after = false;  // Winograd: the fused Relu as a step of its own
  if (sum_r >= 0) {
    dnnl::post_ops po;  // a new one: post_ops copies share their object
    append_act(po, fa, nan_safe_);
    po.append_sum(1.f);
    std::string name2 = opname + "+Add";
    std::vector<int> f2{add_node};
    int z = fuse_following_act(g_.nodes[static_cast<size_t>(add_node)].outputs[0], po, name2, f2);
    const int rslot = sum_r;
    pd = make_pd(po, slot(rslot).md);
    if (pd && pd->dst_desc() == slot(rslot).md &&
        std::string(pd->impl_info_str()).rfind("ref", 0) != 0) {  // not oneDNN's reference
      opname = name2;
      fused = f2;
      out_v = z;
      dst_share = rslot;
    } else {
      pd.reset();
    }
  }
  if (!pd) {
    dnnl::post_ops po;  // a new one: post_ops copies share their object
    append_act(po, fa, nan_safe_);
    out_v = fuse_following_act(y, po, opname, fused);
    // Output read only by a Transpose to NHWC (ConvNeXt-style blocks): write NHWC, so the
    // Transpose is a view (do_transpose) instead of a copy.
    if (rank == 4 && !transpose && !kept_[static_cast<size_t>(out_v)] &&
        uses_[static_cast<size_t>(out_v)].size() == 1) {
      const Node& tn = g_.nodes[static_cast<size_t>(uses_[static_cast<size_t>(out_v)][0])];
      if (tn.op == "Transpose" && tn.attrs.has("perm") &&
          tn.attrs.get_ints("perm") == std::vector<int64_t>{0, 2, 3, 1}) {
        pd = make_pd(po, memory::desc(ydims, dty_, tag::nhwc));
        if (pd && std::string(pd->impl_info_str()).rfind("ref", 0) == 0) pd.reset();
      }
    }
    if (wino && !pd) pd = make_pd(po, y_any, algorithm::convolution_winograd);
    if (!pd) pd = make_pd(po, y_any);
    // A kernel that refuses the NaN-keeping Relu of append_act (nan_safe_) as a post-op:
    // the convolution alone, then that Relu in place.
    if (!pd && only_relu_post_ops(po)) {
      if (wino) pd = make_pd(dnnl::post_ops(), y_any, algorithm::convolution_winograd);
      if (!pd) pd = make_pd(dnnl::post_ops(), y_any);
      relu_after = pd.has_value();
    }
    if (!pd) return false;
    // oneDNN's reference convolution for the layout `any` chose (grouped convolutions with
    // a few channels per group): ask for the layouts that have JIT kernels, first that works.
    if (std::string(pd->impl_info_str()).rfind("ref", 0) == 0 && rank == 4 && !transpose) {
      const memory::desc x_keep = x_md;
      for (tag t : {tag::nChw16c, tag::nhwc, tag::nChw8c}) {
        x_md = memory::desc(Dims(xs.begin(), xs.end()), dty_, t);
        auto alt = make_pd(relu_after ? dnnl::post_ops() : po, memory::desc(ydims, dty_, t));
        if (alt && std::string(alt->impl_info_str()).rfind("ref", 0) != 0) {
          pd = alt;
          break;
        }
      }
      x_md = x_keep;
    }
  }

  // Compile: weights reordered once into the primitive's format, then the step.
  int src = as_md(x, pd->src_desc());
  int wslot = owned_weights(pd->weights_desc(), w_have, val(w).constant.raw());
  std::vector<std::pair<int, int>> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wslot}};
  if (b >= 0) {
    memory::desc bw = pd->weights_desc(1);
    int bslot = bw == b_md ? slot_of(b) : owned_weights(bw, b_md, val(b).constant.raw());
    args.push_back({DNNL_ARG_BIAS, bslot});
  }
  int dst;
  const Value& ov = val(out_v);
  if (dst_share >= 0) {
    dst = view_of(dst_share, ov.shape, out_v);
    slot(dst).md = pd->dst_desc();
    slot(dst).plain = is_plain(pd->dst_desc());
    touch(dst);
  } else {
    dst = new_arena_slot(ty_, ov.shape, pd->dst_desc(), out_v);
  }
  args.push_back({DNNL_ARG_DST, dst});
  push_fused(n.name, opname, dnnl::primitive(*pd), *pd, std::move(args), out_v, dst, fused);
  if (relu_after) push_relu_in_place(dst, n.name, opname);
  return true;
}

}  // namespace anvil::cpu
