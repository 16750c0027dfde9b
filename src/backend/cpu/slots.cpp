// The cpu backend's slots: where each tensor lives (arena buffer, graph input, constant, weights
// reordered at compile time) and in which layout, with the reorder and view steps between them.
#include <algorithm>
#include <dnnl.hpp>
#include <string>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "backend/cpu/executable.h"

namespace anvil::cpu {

// ---------------------------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------------------------

int CpuExecutable::new_arena_slot(DType dtype, const Shape& shape, const memory::desc& md,
                                  int value) {
  // The limits Tensor's constructor applies (the reference backend allocates Tensors).
  const int64_t numel = shape_numel(shape);
  if (static_cast<uint64_t>(numel) > (uint64_t{1} << 40) / dtype_size(dtype))
    throw Error("tensor of shape " + shape_str(shape) + " is too large to allocate");
  Slot s;
  s.dtype = dtype;
  s.shape = shape;
  s.md = md;
  s.plain = md.data.ndims == 0 || is_plain(md);
  s.bytes = md.data.ndims == 0 ? static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype)
                               : md.get_size();
  Buffer b;
  b.bytes = std::max<size_t>(s.bytes, 1);
  b.first = b.last = cur();
  if (value >= 0) b.values.push_back(value);
  bufs_.push_back(b);
  s.buf = static_cast<int>(bufs_.size()) - 1;
  return add_slot(std::move(s));
}

int CpuExecutable::slot_of(int v) {
  int& s = vslot_[static_cast<size_t>(v)];
  if (s >= 0) return s;
  const Value& x = val(v);
  Slot sl;
  sl.dtype = x.dtype;
  sl.shape = x.shape;
  sl.md = md_for(x.dtype, x.shape);
  sl.plain = true;
  sl.bytes = static_cast<size_t>(shape_numel(x.shape)) * dtype_size(x.dtype);
  if (x.is_constant()) {
    sl.st = Storage::Const;
    sl.ptr = const_cast<void*>(x.constant.raw());
    owned_tensors_.push_back(x.constant);
  } else {
    auto it = std::find(g_.inputs.begin(), g_.inputs.end(), v);
    if (it == g_.inputs.end())
      throw Error("cpu backend: tensor '" + x.name + "' is used before it is computed",
                  g_.source_file);
    sl.st = Storage::Input;
    sl.input = static_cast<int>(it - g_.inputs.begin());
  }
  s = add_slot(std::move(sl));
  return s;
}

void CpuExecutable::push_reorder(int src, int dst, const std::string& name) {
  dnnl::reorder::primitive_desc pd(engine(), slot(src).md, engine(), slot(dst).md);
  push_prim(name, "Reorder", dnnl::reorder(pd), pd, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
}

int CpuExecutable::plain_of(int v) {
  int s = slot_of(v);
  if (slot(s).plain) return s;
  int& p = vplain_[static_cast<size_t>(v)];
  if (p >= 0) return p;
  const Value& x = val(v);
  int d = new_arena_slot(x.dtype, x.shape, md_for(x.dtype, x.shape), v);
  push_reorder(s, d, x.name + " (to plain)");
  p = d;
  return d;
}

int CpuExecutable::as_md(int v, const memory::desc& md) {
  int s = slot_of(v);
  if (slot(s).md == md) return s;
  if (is_plain(md)) {
    int p = plain_of(v);
    if (slot(p).md == md) return p;
    s = p;
  }
  for (int a : valt_[static_cast<size_t>(v)])
    if (slot(a).md == md) return a;
  const Value& x = val(v);
  int d = new_arena_slot(x.dtype, x.shape, md, v);
  push_reorder(s, d, x.name + " (reorder)");
  valt_[static_cast<size_t>(v)].push_back(d);
  return d;
}

int CpuExecutable::view_of(int s, const Shape& shape, int value) {
  Slot v = slot(s);
  v.shape = shape;
  v.md = md_for(v.dtype, shape);
  v.mem = dnnl::memory();
  if (v.st == Storage::Arena && value >= 0)
    bufs_[static_cast<size_t>(v.buf)].values.push_back(value);
  return add_slot(std::move(v));
}

void CpuExecutable::push_prim(const std::string& name, const std::string& op,
                              const dnnl::primitive& p, const dnnl::primitive_desc_base& pd,
                              std::vector<std::pair<int, int>> args) {
  for (auto& a : args) touch(a.second);
  Step st;
  st.name = name;
  st.op = op;
  // oneDNN's own reference (non-JIT) implementation: profiles show it like a fallback. Not the
  // RNN primitives: oneDNN names its one RNN implementation "ref:any" although its cells run
  // on the JIT GEMM kernels.
  const auto kind = pd.get_kind();
  const bool rnn = kind == dnnl::primitive::kind::rnn;
  if (!rnn && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) st.op += " (dnnl ref)";
  st.prim = true;
  st.p = p;
  st.args = std::move(args);
  st.scratch_md = pd.scratchpad_desc();
  st.nthr = nthr_;
  steps_.push_back(std::move(st));
}

void CpuExecutable::push_relu_in_place(int s, const std::string& name, const std::string& op) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  for (auto [alg, alpha] :
       {std::pair{algorithm::eltwise_elu, 0.f}, std::pair{algorithm::eltwise_linear, 1.f}}) {
    dnnl::eltwise_forward::desc d(prop_kind::forward_inference, alg, slot(s).md, alpha, 0.f);
    dnnl::eltwise_forward::primitive_desc pd(d, attr, engine());
    push_prim(name, op, dnnl::eltwise_forward(pd), pd, {{DNNL_ARG_SRC, s}, {DNNL_ARG_DST, s}});
  }
}

int CpuExecutable::owned_weights(const memory::desc& want, const memory::desc& have,
                                 const void* data) {
  Slot s;
  s.dtype = want.data_type() == dt::bf16  ? DType::bf16
            : want.data_type() == dt::f16 ? DType::f16
                                          : DType::f32;
  s.md = want;
  s.plain = is_plain(want);
  s.bytes = want.get_size();
  s.st = Storage::Owned;
  s.mem = dnnl::memory(want, engine());
  dnnl::memory src(have, engine(), const_cast<void*>(data));
  dnnl::stream stream(engine());
  dnnl::reorder(src, s.mem).execute(stream, src, s.mem);
  stream.wait();
  for (int i = 0; i < want.data.ndims; ++i) s.shape.push_back(want.data.dims[i]);
  return add_slot(std::move(s));
}

}  // namespace anvil::cpu
