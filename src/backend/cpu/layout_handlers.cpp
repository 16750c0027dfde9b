// cpu backend handlers: data movement as oneDNN reorders between strided views (no reference
// kernel): Transpose (a reorder from the input's descriptor with permuted axes, so a blocked
// input is read directly), Slice (positive steps), Split, constant Pad (a fill, then a reorder
// into the interior), and Reduce* (oneDNN reduction).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "backend/cpu/executable.h"
#include "ops/attrs.h"

namespace anvil::cpu {

namespace {

/// Integer values of a constant value (i32/i64), or nullopt.
std::optional<std::vector<int64_t>> const_ints(const Value& v) {
  if (!v.is_constant()) return std::nullopt;
  const Tensor& t = v.constant;
  if (t.dtype() != DType::i64 && t.dtype() != DType::i32) return std::nullopt;
  std::vector<int64_t> r;
  for (int64_t i = 0; i < t.numel(); ++i) r.push_back(static_cast<int64_t>(t.get(i)));
  return r;
}

/// A strided descriptor: `dims` with element `strides` and an element offset.
memory::desc strided_md(const Shape& dims, const std::vector<int64_t>& strides, int64_t offset,
                        memory::data_type t) {
  Dims d(dims.begin(), dims.end()), s(strides.begin(), strides.end());
  if (d.empty()) d.push_back(1), s.push_back(1);
  memory::desc md(d, t, s);
  md.data.offset0 = offset;
  return md;
}

std::vector<int64_t> plain_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

}  // namespace

/// A reorder from `src_md` (a view of slot `src`'s storage) into a new plain slot for value y.
int CpuExecutable::reorder_view_into(int src, const memory::desc& src_md, int y,
                                     const std::string& name, const std::string& op) {
  const int view = view_of(src, slot(src).shape, -1);
  slot(view).md = src_md;
  slot(view).plain = false;
  const int dst = new_arena_slot(val(y).dtype, val(y).shape, md_for(val(y).dtype, val(y).shape), y);
  push_reorder(view, dst, name);
  steps_.back().op = op;
  vslot_[static_cast<size_t>(y)] = dst;
  return dst;
}

bool CpuExecutable::do_transpose(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y)) return false;
  const size_t r = val(x).shape.size();
  if (r < 1 || r > 6) return false;
  std::vector<int64_t> perm;
  if (n.attrs.has("perm")) {
    perm = n.attrs.get_ints("perm");
  } else {
    for (size_t i = r; i-- > 0;) perm.push_back(static_cast<int64_t>(i));
  }
  if (perm.size() != r) return false;
  // oneDNN's permute_axes: input axis i becomes output axis permutation[i].
  std::vector<int> permutation(r, -1);
  for (size_t i = 0; i < r; ++i) {
    if (perm[i] < 0 || perm[i] >= static_cast<int64_t>(r)) return false;
    permutation[static_cast<size_t>(perm[i])] = static_cast<int>(i);
  }
  for (int p : permutation)
    if (p < 0) return false;
  int xs = slot_of(x);
  memory::desc src_md;
  try {
    src_md = slot(xs).md.permute_axes(permutation);
  } catch (const dnnl::error&) {
    xs = plain_of(x);
    src_md = slot(xs).md.permute_axes(permutation);
  }
  if (slot(xs).st == Storage::Arena && src_md.data.format_kind == dnnl_blocked &&
      src_md.data.format_desc.blocking.inner_nblks == 0) {
    // Only strides change: a view (NHWC data read as NCHW and back costs nothing here;
    // consumers that need the plain layout get a reorder when they ask for it).
    const int v = view_of(xs, val(y).shape, y);
    slot(v).md = src_md;
    slot(v).plain = is_plain(src_md);
    vslot_[static_cast<size_t>(y)] = v;
    return true;
  }
  reorder_view_into(xs, src_md, y, n.name, n.op);
  return true;
}

bool CpuExecutable::do_slice(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 3 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y)) return false;
  const Shape& xs = val(x).shape;
  const Shape& ys = val(y).shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  auto starts = const_ints(val(n.inputs[1]));
  auto ends = const_ints(val(n.inputs[2]));
  std::optional<std::vector<int64_t>> axes, steps;
  if (n.inputs.size() > 3 && n.inputs[3] >= 0) axes = const_ints(val(n.inputs[3]));
  if (n.inputs.size() > 4 && n.inputs[4] >= 0) steps = const_ints(val(n.inputs[4]));
  if (!starts || !ends || (n.inputs.size() > 3 && n.inputs[3] >= 0 && !axes) ||
      (n.inputs.size() > 4 && n.inputs[4] >= 0 && !steps))
    return false;
  std::vector<int64_t> start(xs.size(), 0), step(xs.size(), 1);
  for (size_t i = 0; i < starts->size(); ++i) {
    int64_t ax = axes ? (*axes)[i] : static_cast<int64_t>(i);
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return false;
    const int64_t st = steps ? (*steps)[i] : 1;
    if (st <= 0) return false;  // negative steps: the reference kernel
    const int64_t dim = xs[static_cast<size_t>(ax)];
    int64_t s = (*starts)[i];
    if (s < 0) s = std::max<int64_t>(s, -dim) + dim;
    s = std::clamp<int64_t>(s, 0, dim);
    start[static_cast<size_t>(ax)] = s;
    step[static_cast<size_t>(ax)] = st;
  }
  const int xsl = plain_of(x);
  const auto xst = plain_strides(xs);
  std::vector<int64_t> vst(xs.size());
  int64_t off = 0;
  for (size_t k = 0; k < xs.size(); ++k) {
    vst[k] = xst[k] * step[k];
    off += start[k] * xst[k];
    if (ys[k] > 0 && start[k] + (ys[k] - 1) * step[k] >= xs[k]) return false;
  }
  reorder_view_into(xsl, strided_md(ys, vst, off, dty_), y, n.name, n.op);
  return true;
}

bool CpuExecutable::do_split(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.empty()) return false;
  const int x = n.inputs[0];
  if (!dnnl_value(x)) return false;
  const Shape& xs = val(x).shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  int64_t axis = n.attrs.get_int("axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  for (int o : n.outputs)
    if (o < 0 || !val(o).shape_known || val(o).dtype != ty_ || val(o).shape.size() != xs.size())
      return false;
  const int xsl = plain_of(x);
  const auto xst = plain_strides(xs);
  int64_t begin = 0;
  for (int o : n.outputs) {
    const Shape& os = val(o).shape;
    if (shape_numel(os) > 0)
      reorder_view_into(xsl, strided_md(os, xst, begin * xst[static_cast<size_t>(axis)], dty_), o,
                        n.name, n.op);
    else
      vslot_[static_cast<size_t>(o)] = new_arena_slot(ty_, os, memory::desc(), o);
    begin += os[static_cast<size_t>(axis)];
  }
  return begin == xs[static_cast<size_t>(axis)];
}

bool CpuExecutable::do_pad(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  if (n.attrs.get_string("mode", "constant") != "constant") return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y) || ty_ != DType::f32) return false;
  const Shape& xs = val(x).shape;
  const Shape& ys = val(y).shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  auto pads = const_ints(val(n.inputs[1]));
  if (!pads) return false;
  float fill = 0;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value& cv = val(n.inputs[2]);
    if (!cv.is_constant() || cv.constant.numel() > 1) return false;
    if (cv.constant.numel() == 1) fill = static_cast<float>(cv.constant.get(0));
  }
  std::vector<int64_t> axes;
  if (n.inputs.size() > 3 && n.inputs[3] >= 0) {
    auto a = const_ints(val(n.inputs[3]));
    if (!a) return false;
    axes = *a;
  } else {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  }
  if (pads->size() != 2 * axes.size()) return false;
  std::vector<int64_t> begin(xs.size(), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t ax = axes[i] < 0 ? axes[i] + r : axes[i];
    if (ax < 0 || ax >= r) return false;
    if ((*pads)[i] < 0 || (*pads)[i + axes.size()] < 0) return false;  // crops: reference
    begin[static_cast<size_t>(ax)] = (*pads)[i];
  }
  const int xsl = slot_of(x);
  const int dst = new_arena_slot(ty_, ys, md_for(ty_, ys), y);
  // Fill the whole output, then reorder the input into its interior.
  Step fs;
  fs.name = n.name;
  fs.op = "Pad";
  fs.outs = {dst};
  fs.native = [fill](const std::vector<Tensor>&, std::vector<Tensor>& outs) {
    float* p = static_cast<float*>(outs[0].raw());
    std::fill(p, p + outs[0].numel(), fill);
  };
  touch(dst);
  steps_.push_back(std::move(fs));
  const int part = view_of(dst, xs, -1);
  slot(part).md =
      md_for(ty_, ys).submemory_desc(Dims(xs.begin(), xs.end()), Dims(begin.begin(), begin.end()));
  slot(part).plain = false;
  push_reorder(xsl, part, n.name);
  steps_.back().op = "Pad";
  vslot_[static_cast<size_t>(y)] = dst;
  return true;
}

bool CpuExecutable::do_reduce(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y)) return false;
  const std::string& op = n.op;
  algorithm alg;
  float p = 0;
  if (op == "ReduceMean")
    alg = algorithm::reduction_mean;
  else if (op == "ReduceSum")
    alg = algorithm::reduction_sum;
  else if (op == "ReduceMax")
    alg = algorithm::reduction_max;
  else if (op == "ReduceMin")
    alg = algorithm::reduction_min;
  else if (op == "ReduceProd")
    alg = algorithm::reduction_mul;
  else if (op == "ReduceL2")
    alg = algorithm::reduction_norm_lp_sum, p = 2;
  else
    return false;
  const Shape& xs = val(x).shape;
  const int64_t r = static_cast<int64_t>(xs.size());
  if (r < 1 || r > 6) return false;
  std::vector<int64_t> axes;
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    auto a = const_ints(val(n.inputs[1]));
    if (!a) return false;
    axes = *a;
  } else if (n.attrs.has("axes")) {
    axes = n.attrs.get_ints("axes");
  }
  if (axes.empty() && n.attrs.get_int("noop_with_empty_axes", 0) != 0) return false;
  Shape kd = xs;
  if (axes.empty()) std::fill(kd.begin(), kd.end(), 1);
  for (int64_t a : axes) {
    if (a < 0) a += r;
    if (a < 0 || a >= r) return false;
    kd[static_cast<size_t>(a)] = 1;
  }
  if (shape_numel(kd) != shape_numel(val(y).shape)) return false;
  const int xsl = slot_of(x);
  const memory::desc dst_md = plain_md(kd, dty_);
  std::optional<dnnl::reduction::primitive_desc> pd;
  try {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::reduction::desc d(alg, slot(xsl).md, dst_md, p, 0.f);
    pd = dnnl::reduction::primitive_desc(d, attr, engine());
    if (std::string(pd->impl_info_str()).rfind("ref", 0) == 0 && !slot(xsl).plain) {
      dnnl::reduction::desc d2(alg, plain_md(xs, dty_), dst_md, p, 0.f);
      pd = dnnl::reduction::primitive_desc(d2, attr, engine());
    }
  } catch (const dnnl::error&) {
    pd.reset();
  }
  // oneDNN 2.6 has JIT reductions for a few axis patterns only: the own kernel for the rest
  // (reduced dims contiguous: outer x reduced x inner).
  if (!pd || std::string(pd->impl_info_str()).rfind("ref", 0) == 0) {
    if (ty_ == DType::f32 && do_native_reduce(ni, kd)) return true;
    if (!pd) return false;
  }
  const int src = as_md(x, pd->src_desc());
  const int dst = new_arena_slot(ty_, kd, dst_md, -1);
  push_prim(n.name, op, dnnl::reduction(*pd), *pd, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
  const int v = view_of(dst, val(y).shape, y);
  vslot_[static_cast<size_t>(y)] = v;
  return true;
}

}  // namespace anvil::cpu
