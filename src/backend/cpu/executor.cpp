// The cpu backend: oneDNN primitives for the heavy ops, the reference kernels for the rest.
// How it works (layouts, fusion, arena, threads) is described in docs/cpu_backend.md.
//
// compile():  walks the canonical graph in order and turns every node into steps:
//   - a oneDNN primitive (Conv, ConvTranspose, pooling, Gemm/MatMul, eltwise, binary, Concat,
//     Softmax/LogSoftmax, LRN, BatchNormalization), with fused post-ops (the node's fused
//     activation, a following residual Add as a `sum` post-op, a following activation);
//   - a view (Reshape/Flatten/Squeeze/Unsqueeze/Identity of a plain tensor: no copy);
//   - a fallback to the op's reference kernel on plain tensors;
//   - reorders, inserted only where a consumer needs another layout than the producer wrote.
//   Every tensor lives in a slot: a memory descriptor (layout) plus storage (a buffer of the
//   activation arena, a graph input, a constant, or weights reordered at compile time).
//   Arena offsets are assigned from buffer lifetimes (first write .. last read).
// run():      binds the inputs, executes the steps, copies/reorders the kept tensors out.
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/arena.h"
#include "backend/backend.h"
#include "backend/cpu/dnnl_util.h"
#include "ops/activation.h"
#include "ops/attrs.h"

extern "C" {
void omp_set_num_threads(int);
int omp_get_max_threads(void);
}

namespace anvil::cpu {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

const dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

enum class Storage { Arena, Input, Const, Owned };

struct Slot {
  DType dtype = DType::f32;
  Shape shape;
  memory::desc md;  // zero desc for dtypes oneDNN does not know (used by fallbacks only)
  bool plain = true;
  size_t bytes = 0;
  Storage st = Storage::Arena;
  int buf = -1;        // Arena
  int input = -1;      // Input: index into Graph::inputs
  void* ptr = nullptr;  // Const: the constant's data
  dnnl::memory mem;    // bound after the arena is laid out (Input: per run)
  Tensor view;         // plain tensor on the slot's storage (fallbacks, outputs)
};

struct Buffer {
  size_t bytes = 0;
  int first = -1, last = -1;  // step indices
  size_t offset = 0;
  std::vector<int> values;  // graph values stored in this buffer (also views of it)
};

struct Step {
  std::string name, op;
  bool prim = false;
  dnnl::primitive p;
  std::vector<std::pair<int, int>> args;  // DNNL_ARG_*, slot
  std::unordered_map<int, dnnl::memory> argmap;
  memory::desc scratch_md;
  // fallback
  Node node;
  const OpDef* def = nullptr;
  std::vector<int> ins, outs;  // slots (-1 for an omitted input)
  int nthr = 1;  // OpenMP threads this step runs with (see step_threads)
};

float to_f(double v) {
  const double lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  return static_cast<float>(std::isnan(v) ? v : std::clamp(v, lo, hi));
}

/// Appends the eltwise post-ops of a fused activation; false when it has none.
bool append_act(dnnl::post_ops& po, const FusedActivation& a) {
  switch (a.kind) {
    case Activation::None: return true;
    case Activation::Relu: po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f); return true;
    case Activation::LeakyRelu:
      po.append_eltwise(1.f, algorithm::eltwise_relu, to_f(a.alpha), 0.f);
      return true;
    case Activation::Clip:
      if (a.alpha > a.beta) return false;
      if (a.alpha == 0 && std::isfinite(a.beta))
        po.append_eltwise(1.f, algorithm::eltwise_bounded_relu, to_f(a.beta), 0.f);
      else
        po.append_eltwise(1.f, algorithm::eltwise_clip_v2, to_f(a.alpha), to_f(a.beta));
      return true;
    case Activation::Sigmoid: po.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f); return true;
    case Activation::Tanh: po.append_eltwise(1.f, algorithm::eltwise_tanh, 0.f, 0.f); return true;
    case Activation::Elu: po.append_eltwise(1.f, algorithm::eltwise_elu, to_f(a.alpha), 0.f); return true;
    case Activation::HardSigmoid:
      po.append_eltwise(1.f, algorithm::eltwise_linear, to_f(a.alpha), to_f(a.beta));
      po.append_eltwise(1.f, algorithm::eltwise_clip_v2, 0.f, 1.f);
      return true;
    case Activation::HardSwish:
      po.append_eltwise(1.f, algorithm::eltwise_hardswish, 0.f, 0.f);
      return true;
  }
  return false;
}

struct Timer {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
};

class CpuExecutable : public Executable {
 public:
  CpuExecutable(const Graph& g, const CompileOptions& opt);
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override;
  std::vector<OpTime> profile() const override;

 private:
  // ---- compile-time state
  const Graph& g_;
  CompileOptions opt_;
  std::vector<Slot> slots_;
  std::vector<Buffer> bufs_;
  std::vector<Step> steps_;
  std::vector<int> vslot_;   // value -> slot holding it (as produced)
  std::vector<int> vplain_;  // value -> plain copy of it (when the producer's layout is not)
  std::vector<std::vector<int>> valt_;  // value -> copies reordered into other layouts
  std::vector<int> last_use_;
  std::vector<std::vector<int>> uses_;  // value -> consuming node indices
  std::vector<bool> kept_, consumed_;
  std::vector<std::pair<int, int>> keep_slots_;  // (value, slot) per CompileOptions::keep
  std::vector<dnnl::reorder> out_reorders_;      // per keep entry (empty when plain)
  std::vector<dnnl::memory> out_mems_;
  std::shared_ptr<void> keepalive_ = std::make_shared<int>(0);
  std::vector<Tensor> owned_tensors_;
  std::shared_ptr<uint8_t> arena_, scratch_;
  size_t arena_bytes_ = 0;
  dnnl::stream stream_{engine()};
  std::vector<double> prof_ms_;
  std::vector<int64_t> prof_calls_;

  // The float type of the node being compiled (its first output's): f32, or bf16/f16 after
  // SessionOptions::precision's reduce_precision pass. oneDNN steps need every float tensor
  // of the node in it (weights and activations); mixed nodes run on the reference kernels.
  DType ty_ = DType::f32;
  dt dty_ = dt::f32;

  // oneDNN 2.6's reference (non-JIT) eltwise ignores eltwise post-ops (zeros); a handler
  // whose primitive has no JIT implementation is compiled again without fused activations.
  bool no_post_ops_ = false;
  template <class PD>
  bool refuse_ref_post_ops(const PD& pd, const std::vector<int>& fused, int ni,
                           bool (CpuExecutable::*handler)(int)) {
    if (fused.empty() || std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return false;
    no_post_ops_ = true;
    try {
      handler_result_ = (this->*handler)(ni);
    } catch (...) {
      no_post_ops_ = false;
      throw;
    }
    no_post_ops_ = false;
    return true;
  }
  bool handler_result_ = false;
  int nthr_ = 1;  // threads of the steps being compiled (omp_set_num_threads while compiling)
  int step_threads(const Node& n) const;

  int cur() const { return static_cast<int>(steps_.size()); }
  const Value& val(int v) const { return g_.values[static_cast<size_t>(v)]; }
  Slot& slot(int s) { return slots_[static_cast<size_t>(s)]; }

  void touch(int s) {
    Slot& sl = slot(s);
    if (sl.st == Storage::Arena) {
      Buffer& b = bufs_[static_cast<size_t>(sl.buf)];
      b.last = std::max(b.last, cur());
    }
  }
  int add_slot(Slot s) {
    slots_.push_back(std::move(s));
    return static_cast<int>(slots_.size()) - 1;
  }
  int new_arena_slot(DType dtype, const Shape& shape, const memory::desc& md, int value) {
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
  memory::desc md_for(DType t, const Shape& s) const {
    dt d = dnnl_type(t);
    return d == dt::undef ? memory::desc() : plain_md(s, d);
  }
  /// The slot of a value as produced (creating the slot of a constant or graph input).
  int slot_of(int v);
  /// The value in plain layout (a reorder step the first time it is needed).
  int plain_of(int v);
  /// The value in layout `md` (a reorder step when it differs).
  int as_md(int v, const memory::desc& md);
  /// A plain slot viewing `s`'s storage with another shape (same element count).
  int view_of(int s, const Shape& shape, int value);
  void push_reorder(int src, int dst, const std::string& name);
  void push_prim(const std::string& name, const std::string& op, const dnnl::primitive& p,
                 const dnnl::primitive_desc_base& pd, std::vector<std::pair<int, int>> args);
  /// push_prim for a step that computes value `out_v` (the last of the fused nodes) into slot
  /// `dst`: records the slot, marks the `fused` nodes done and returns true (handled).
  bool push_fused(const std::string& name, const std::string& op, const dnnl::primitive& p,
                  const dnnl::primitive_desc_base& pd, std::vector<std::pair<int, int>> args,
                  int out_v, int dst, const std::vector<int>& fused) {
    push_prim(name, op, p, pd, std::move(args));
    vslot_[static_cast<size_t>(out_v)] = dst;
    for (int f : fused) consumed_[static_cast<size_t>(f)] = true;
    return true;
  }
  int owned_weights(const memory::desc& want, const memory::desc& have, const void* data);

  bool dnnl_value(int v) const {
    if (v < 0) return false;
    const Value& x = val(v);
    return x.shape_known && x.dtype == ty_ && shape_numel(x.shape) > 0;
  }
  /// Follows value y into a single-consumer activation node that can be a post-op.
  int fuse_following_act(int y, dnnl::post_ops& po, std::string& opname,
                         std::vector<int>& fused_nodes);

  bool compile_node(int ni);
  bool do_conv(int ni, bool transpose);
  bool do_pool(int ni);
  bool do_gemm(int ni);
  bool do_matmul(int ni);
  bool do_eltwise(int ni);
  bool do_binary(int ni);
  bool do_concat(int ni);
  bool do_softmax(int ni);
  bool do_lrn(int ni);
  bool do_batchnorm(int ni);
  bool do_view(int ni);
  bool do_cast(int ni);
  void do_fallback(int ni);
  void layout_arena();
  void bind();
};

// ---------------------------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------------------------

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
  v.view = Tensor();
  if (v.st == Storage::Arena && value >= 0) bufs_[static_cast<size_t>(v.buf)].values.push_back(value);
  return add_slot(std::move(v));
}

void CpuExecutable::push_prim(const std::string& name, const std::string& op,
                              const dnnl::primitive& p, const dnnl::primitive_desc_base& pd,
                              std::vector<std::pair<int, int>> args) {
  for (auto& a : args) touch(a.second);
  Step st;
  st.name = name;
  st.op = op;
  st.prim = true;
  st.p = p;
  st.args = std::move(args);
  st.scratch_md = pd.scratchpad_desc();
  st.nthr = nthr_;
  steps_.push_back(std::move(st));
}

int CpuExecutable::owned_weights(const memory::desc& want, const memory::desc& have,
                                 const void* data) {
  Slot s;
  s.dtype = want.data_type() == dt::bf16 ? DType::bf16
            : want.data_type() == dt::f16  ? DType::f16
                                           : DType::f32;
  s.md = want;
  s.plain = is_plain(want);
  s.bytes = want.get_size();
  s.st = Storage::Owned;
  s.mem = dnnl::memory(want, engine());
  dnnl::memory src(have, engine(), const_cast<void*>(data));
  dnnl::reorder(src, s.mem).execute(stream_, src, s.mem);
  stream_.wait();
  for (int i = 0; i < want.data.ndims; ++i) s.shape.push_back(want.data.dims[i]);
  return add_slot(std::move(s));
}

// ---------------------------------------------------------------------------------------------
// Fusion helpers
// ---------------------------------------------------------------------------------------------

int CpuExecutable::fuse_following_act(int y, dnnl::post_ops& po, std::string& opname,
                                      std::vector<int>& fused_nodes) {
  if (no_post_ops_ || kept_[static_cast<size_t>(y)]) return y;
  const auto& u = uses_[static_cast<size_t>(y)];
  if (u.size() != 1) return y;
  const Node& a = g_.nodes[static_cast<size_t>(u[0])];
  if (a.inputs.empty() || a.inputs[0] != y || a.outputs.size() != 1) return y;
  for (size_t i = 1; i < a.inputs.size(); ++i)
    if (a.inputs[i] == y) return y;
  auto act = activation_of_node(g_, a);
  if (!act) return y;
  int z = a.outputs[0];
  if (val(z).dtype != val(y).dtype || val(z).shape != val(y).shape) return y;
  if (!append_act(po, *act)) return y;
  opname += "+" + a.op;
  fused_nodes.push_back(u[0]);
  return z;
}

// ---------------------------------------------------------------------------------------------
// Op handlers. Each creates its primitive descriptors first (oneDNN may refuse: the caller then
// falls back to the reference kernel), then pushes reorders and its step.
// ---------------------------------------------------------------------------------------------

bool CpuExecutable::do_conv(int ni, bool transpose) {
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
  const memory::desc x_md = slot(xs_slot).plain || xs_md.data.format_kind != dnnl_blocked ||
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
                    group == 1 && ws[2] == 3 && ws[3] == 3 && strides[0] == 1 &&
                    strides[1] == 1 && dil[0] == 1 && dil[1] == 1 && ws[0] % 16 == 0 &&
                    ws[1] % 16 == 0;

  // Post-ops: the fused activation, then a residual Add as `sum`, then a following activation.
  std::string opname = n.op;
  const FusedActivation& fa = ca->act;
  dnnl::post_ops base_po;
  if (!append_act(base_po, fa)) return false;
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
                     algorithm alg = algorithm::convolution_direct)
      -> std::optional<dnnl::primitive_desc> {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(po);
    try {
      if (transpose) {
        dnnl::deconvolution_forward::desc d(prop_kind::forward_inference,
                                            algorithm::deconvolution_direct, x_md, w_any, b_md,
                                            dst, st, dl, pl, pr);
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
  int dst_share = -1;  // slot whose buffer the output shares (sum)
  if (sum_r >= 0) {
    dnnl::post_ops po = base_po;
    po.append_sum(1.f);
    std::string name2 = opname + "+Add";
    std::vector<int> f2{add_node};
    int z = fuse_following_act(g_.nodes[static_cast<size_t>(add_node)].outputs[0], po, name2, f2);
    const int rslot = sum_r;
    pd = make_pd(po, slot(rslot).md);
    if (pd && pd->dst_desc() == slot(rslot).md) {
      opname = name2;
      fused = f2;
      out_v = z;
      dst_share = rslot;
    } else {
      pd.reset();
    }
  }
  if (!pd) {
    dnnl::post_ops po = base_po;
    out_v = fuse_following_act(y, po, opname, fused);
    if (wino) pd = make_pd(po, y_any, algorithm::convolution_winograd);
    if (!pd) pd = make_pd(po, y_any);
    if (!pd) return false;
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
  return push_fused(n.name, opname, dnnl::primitive(*pd), *pd, std::move(args), out_v, dst, fused);
}

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
                                       memory::desc(Dims(ys.begin(), ys.end()), dty_, tag::any),
                                       st, kd, dl, pl, pr);
    pd = dnnl::pooling_v2_forward::primitive_desc(dsc, attr, engine());
  } catch (const dnnl::error&) {
    return false;
  }
  if (refuse_ref_post_ops(*pd, fused, ni, &CpuExecutable::do_pool)) return handler_result_;
  int dst = new_arena_slot(ty_, ys, pd->dst_desc(), out_v);
  return push_fused(n.name, opname, dnnl::pooling_v2_forward(*pd), *pd,
                    {{DNNL_ARG_SRC, xslot}, {DNNL_ARG_DST, dst}}, out_v, dst, fused);
}

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
  if (!append_act(po, fa)) return false;
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
  return push_fused(n.name, opname, dnnl::inner_product_forward(*pd), *pd, std::move(args), out_v, dst, fused);
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
  if (!append_act(po, fa)) return false;
  if (!fa.empty()) opname += "+" + fa.name();
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
                    {{DNNL_ARG_SRC, sa}, {DNNL_ARG_WEIGHTS, sb}, {DNNL_ARG_DST, dst}}, out_v, dst, fused);
}

bool CpuExecutable::do_eltwise(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!dnnl_value(x) || !dnnl_value(y) || val(x).shape != val(y).shape) return false;
  algorithm alg;
  float alpha = 0, beta = 0;
  const std::string& op = n.op;
  auto fusable = activation_of_node(g_, n);
  if (op == "Relu") alg = algorithm::eltwise_relu;
  else if (op == "LeakyRelu") alg = algorithm::eltwise_relu, alpha = to_f(fusable->alpha);
  else if (op == "Sigmoid") alg = algorithm::eltwise_logistic;
  else if (op == "Tanh") alg = algorithm::eltwise_tanh;
  else if (op == "Elu") alg = algorithm::eltwise_elu, alpha = to_f(fusable->alpha);
  else if (op == "HardSwish") alg = algorithm::eltwise_hardswish;
  else if (op == "Clip") {
    if (!fusable) return false;
    alg = algorithm::eltwise_clip_v2, alpha = to_f(fusable->alpha), beta = to_f(fusable->beta);
  } else if (op == "HardSigmoid") {  // two steps: alpha * x + beta, then clip to [0, 1]
    if (!fusable) return false;
    alg = algorithm::eltwise_linear, alpha = to_f(fusable->alpha), beta = to_f(fusable->beta);
  } else if (op == "Exp") alg = algorithm::eltwise_exp;
  else if (op == "Abs") alg = algorithm::eltwise_abs;
  else if (op == "Neg") alg = algorithm::eltwise_linear, alpha = -1.f;
  else if (op == "Mish") alg = algorithm::eltwise_mish;
  else if (op == "Gelu") {
    std::string ap = n.attrs.get_string("approximate", "none");
    if (ap == "none") alg = algorithm::eltwise_gelu_erf;
    else if (ap == "tanh") alg = algorithm::eltwise_gelu_tanh;
    else return false;
  } else return false;
  if ((op == "LeakyRelu" || op == "Elu" || op == "HardSigmoid") && !fusable) return false;
  if (n.inputs.size() != 1 && op != "Clip") return false;
  // No post-ops here: oneDNN 2.6's reference eltwise (used for 1-D tensors) ignores them.
  const int xslot = slot_of(x);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  std::optional<dnnl::eltwise_forward::primitive_desc> pd, pd2;
  try {
    dnnl::eltwise_forward::desc d(prop_kind::forward_inference, alg, slot(xslot).md, alpha, beta);
    pd = dnnl::eltwise_forward::primitive_desc(d, attr, engine());
    if (op == "HardSigmoid") {
      dnnl::eltwise_forward::desc d2(prop_kind::forward_inference, algorithm::eltwise_clip_v2,
                                     pd->dst_desc(), 0.f, 1.f);
      pd2 = dnnl::eltwise_forward::primitive_desc(d2, attr, engine());
    }
  } catch (const dnnl::error&) {
    return false;
  }
  int dst = new_arena_slot(ty_, val(y).shape, pd->dst_desc(), y);
  push_prim(n.name, op, dnnl::eltwise_forward(*pd), *pd, {{DNNL_ARG_SRC, xslot}, {DNNL_ARG_DST, dst}});
  if (pd2)  // in place
    push_prim(n.name, op, dnnl::eltwise_forward(*pd2), *pd2, {{DNNL_ARG_SRC, dst}, {DNNL_ARG_DST, dst}});
  vslot_[static_cast<size_t>(y)] = dst;
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
    if (!commutative || pad_rank(val(b).shape, r) != ys) return false;
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
    return false;
  }
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
                    {{DNNL_ARG_SRC_0, s0}, {DNNL_ARG_SRC_1, s1}, {DNNL_ARG_DST, dst}}, out_v, dst, fused);
}

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
    const memory::desc out_md = r == 4 ? memory::desc(yd, dty_, tag::nhwc) : plain_md(val(y).shape, dty_);
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
    args.push_back({DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i),
                    same ? ins[i] : plain_of(n.inputs[i])});
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
  push_prim(n.name, n.op, dnnl::lrn_forward(*pd), *pd, {{DNNL_ARG_SRC, xslot}, {DNNL_ARG_DST, dst}});
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
    auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                 dnnl::normalization_flags::use_shift;
    dnnl::batch_normalization_forward::desc d(prop_kind::forward_inference, slot(xslot).md, eps,
                                              flags);
    pd = dnnl::batch_normalization_forward::primitive_desc(d, attr, engine());
  } catch (const dnnl::error&) {
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
                     {DNNL_ARG_DST, dst}}, out_v, dst, fused);
}

bool CpuExecutable::do_view(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.empty()) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!uses_[static_cast<size_t>(n.outputs[i])].empty() || kept_[static_cast<size_t>(n.outputs[i])])
      return false;  // Dropout's mask
  if (x < 0 || !val(x).shape_known || !val(y).shape_known || val(x).dtype != val(y).dtype ||
      shape_numel(val(x).shape) != shape_numel(val(y).shape))
    return false;
  int s = view_of(plain_of(x), val(y).shape, y);
  vslot_[static_cast<size_t>(y)] = s;
  return true;
}

void CpuExecutable::do_fallback(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  Step st;
  st.name = n.name;
  st.op = n.op + " (ref)";  // profiles show which ops ran on the reference kernels
  st.node = n;
  st.def = OpRegistry::global().find(n.op);
  if (!st.def)
    throw Error("the cpu backend has no kernel for op '" + n.op + "'", g_.source_file, n.name, "op");
  for (int v : n.inputs) st.ins.push_back(v >= 0 ? plain_of(v) : -1);
  for (int o : n.outputs) {
    const Value& ov = val(o);
    if (!ov.shape_known) throw Error("output shape not inferred", g_.source_file, n.name);
    int s = new_arena_slot(ov.dtype, ov.shape, md_for(ov.dtype, ov.shape), o);
    vslot_[static_cast<size_t>(o)] = s;
    st.outs.push_back(s);
  }
  for (int s : st.ins)
    if (s >= 0) touch(s);
  for (int s : st.outs) touch(s);
  steps_.push_back(std::move(st));
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

// Threads per step. Waking an OpenMP worker (passive wait policy) costs tens of microseconds
// and, on a busy machine, the worker may not get a core soon: a small step runs faster on the
// calling thread alone. A step gets CompileOptions::threads only when its estimated
// single-thread time (FLOPs at ~100 GFLOP/s plus bytes at ~20 GB/s) is at least 50 us.
// oneDNN sizes its convolution kernels' thread split when the primitive is created, so the
// count is set while compiling the step and again before it runs.
int CpuExecutable::step_threads(const Node& n) const {
  const int threads = std::max(1, opt_.threads);
  if (threads == 1) return 1;
  double flops = 0, bytes = 0;
  for (int v : n.inputs)
    if (v >= 0 && val(v).shape_known) bytes += 4.0 * static_cast<double>(shape_numel(val(v).shape));
  for (int v : n.outputs)
    if (v >= 0 && val(v).shape_known) bytes += 4.0 * static_cast<double>(shape_numel(val(v).shape));
  auto numel = [&](int i) -> double {
    if (i < 0 || static_cast<size_t>(i) >= n.inputs.size() || n.inputs[static_cast<size_t>(i)] < 0) return 0;
    const Value& v = val(n.inputs[static_cast<size_t>(i)]);
    return v.shape_known ? static_cast<double>(shape_numel(v.shape)) : 0;
  };
  const double out = n.outputs.empty() || !val(n.outputs[0]).shape_known
                         ? 0
                         : static_cast<double>(shape_numel(val(n.outputs[0]).shape));
  if (n.op == "Conv" && n.inputs.size() > 1 && val(n.inputs[1]).shape_known) {
    const Shape& w = val(n.inputs[1]).shape;
    flops = 2 * out * static_cast<double>(shape_numel(w)) / static_cast<double>(std::max<int64_t>(1, w[0]));
  } else if (n.op == "ConvTranspose" && n.inputs.size() > 1) {
    flops = 2 * numel(0) * numel(1) / std::max(1.0, static_cast<double>(val(n.inputs[0]).shape.at(1)));
  } else if ((n.op == "Gemm" || n.op == "MatMul") && n.inputs.size() > 1) {
    const Shape& a = val(n.inputs[0]).shape;
    flops = 2 * out * static_cast<double>(a.empty() ? 1 : a.back());
  }
  const double us = flops / 1e5 + bytes / 2e4;
  return us >= 50 ? threads : 1;
}

bool CpuExecutable::compile_node(int ni) {
  const Node& node = g_.nodes[static_cast<size_t>(ni)];
  const std::string& op = node.op;
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" ||
      op == "Identity" || op == "Dropout")
    return do_view(ni);
  if (node.outputs.empty() || node.outputs[0] < 0) return false;
  ty_ = val(node.outputs[0]).dtype;
  dty_ = dnnl_type(ty_);
  if (dty_ == dt::undef) return false;
  if (op == "Cast") return do_cast(ni);
  if (op == "Conv") return do_conv(ni, false);
  if (op == "ConvTranspose") return do_conv(ni, true);
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" || op == "GlobalMaxPool")
    return do_pool(ni);
  if (op == "Gemm") return do_gemm(ni);
  if (op == "MatMul") return do_matmul(ni);
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min")
    return do_binary(ni);
  if (op == "Concat") return do_concat(ni);
  if (op == "Softmax" || op == "LogSoftmax") return do_softmax(ni);
  if (op == "LRN") return do_lrn(ni);
  if (op == "BatchNormalization") return do_batchnorm(ni);
  return do_eltwise(ni);
}

// ---------------------------------------------------------------------------------------------
// Arena and binding
// ---------------------------------------------------------------------------------------------

void CpuExecutable::layout_arena() {
  arena_bytes_ = place_buffers(bufs_, 64);
  auto alloc = [](size_t n) {
    void* p = std::aligned_alloc(64, std::max<size_t>((n + 63) / 64 * 64, 64));
    if (!p)
      throw Error("cpu backend: cannot allocate " + std::to_string(n) +
                  " bytes of activation memory");
    std::memset(p, 0, std::max<size_t>(n, 1));
    return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
  };
  arena_ = alloc(arena_bytes_);
  size_t scratch = 0;
  for (auto& s : steps_)
    if (s.prim) scratch = std::max(scratch, s.scratch_md.get_size());
  scratch_ = alloc(scratch);
}

void CpuExecutable::bind() {
  for (auto& s : slots_) {
    if (s.st == Storage::Owned) continue;
    void* p = s.st == Storage::Arena   ? arena_.get() + bufs_[static_cast<size_t>(s.buf)].offset
              : s.st == Storage::Const ? s.ptr
                                       : nullptr;
    if (s.md.data.ndims > 0) s.mem = dnnl::memory(s.md, engine(), p);
    if (p && s.plain) s.view = Tensor::wrap(s.dtype, s.shape, p, keepalive_);
  }
  for (auto& st : steps_) {
    if (!st.prim) continue;
    for (auto& [arg, s] : st.args) st.argmap[arg] = slot(s).mem;
    if (st.scratch_md.get_size() > 0)
      st.argmap[DNNL_ARG_SCRATCHPAD] = dnnl::memory(st.scratch_md, engine(), scratch_.get());
  }
}

// ---------------------------------------------------------------------------------------------
// Compile and run
// ---------------------------------------------------------------------------------------------

CpuExecutable::CpuExecutable(const Graph& g, const CompileOptions& opt) : g_(g), opt_(opt) {
  omp_set_num_threads(std::max(1, opt.threads));
  const size_t nv = g.values.size();
  vslot_.assign(nv, -1);
  vplain_.assign(nv, -1);
  valt_.assign(nv, {});
  last_use_.assign(nv, -1);
  uses_.assign(nv, {});
  kept_.assign(nv, false);
  consumed_.assign(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.dead) continue;
    for (int in : n.inputs)
      if (in >= 0) {
        last_use_[static_cast<size_t>(in)] = static_cast<int>(i);
        auto& u = uses_[static_cast<size_t>(in)];
        if (u.empty() || u.back() != static_cast<int>(i)) u.push_back(static_cast<int>(i));
      }
  }
  for (int k : opt.keep) kept_[static_cast<size_t>(k)] = true;
  for (int o : g.outputs) kept_[static_cast<size_t>(o)] = true;

  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.dead || consumed_[i]) continue;
    bool ok = false;
    try {
      nthr_ = step_threads(n);
      omp_set_num_threads(nthr_);
      ok = compile_node(static_cast<int>(i));
    } catch (const dnnl::error&) {
      ok = false;
    } catch (const Error& e) {
      throw Error(e.message(), e.file().empty() ? g.source_file : e.file(),
                  e.node().empty() ? n.name : e.node(), e.field());
    }
    if (!ok) do_fallback(static_cast<int>(i));
  }
  nthr_ = std::max(1, opt.threads);
  omp_set_num_threads(nthr_);
  // Kept tensors: their buffers live to the end; blocked ones get a reorder into the result.
  const int end = cur();
  for (int k : opt.keep) {
    int s = vslot_[static_cast<size_t>(k)];
    if (s < 0) {
      if (val(k).is_constant() ||
          std::find(g.inputs.begin(), g.inputs.end(), k) != g.inputs.end())
        s = slot_of(k);
      else
        throw Error("cpu backend: tensor '" + val(k).name + "' is not computed by the graph",
                    g.source_file);
    }
    keep_slots_.push_back({k, s});
    Slot& sl = slot(s);
    if (sl.st == Storage::Arena) {
      Buffer& b = bufs_[static_cast<size_t>(sl.buf)];
      b.last = std::max(b.last, end);
    }
    if (!sl.plain) {
      dnnl::reorder::primitive_desc pd(engine(), sl.md, engine(), md_for(sl.dtype, sl.shape));
      out_reorders_.emplace_back(pd);
      out_mems_.emplace_back(md_for(sl.dtype, sl.shape), engine(), nullptr);
    } else {
      out_reorders_.emplace_back();
      out_mems_.emplace_back();
    }
  }
  layout_arena();
  bind();
  prof_ms_.assign(steps_.size(), 0.0);
  prof_calls_.assign(steps_.size(), 0);
}

std::vector<Tensor> CpuExecutable::run(const std::vector<Tensor>& inputs) {
  if (inputs.size() != g_.inputs.size())
    throw Error("cpu backend: expected " + std::to_string(g_.inputs.size()) + " inputs, got " +
                    std::to_string(inputs.size()),
                g_.source_file);
  omp_set_num_threads(std::max(1, opt_.threads));
  std::vector<Tensor> feed(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = val(g_.inputs[i]);
    Tensor t = inputs[i];
    if (t.dtype() != v.dtype || t.shape() != v.shape)
      throw Error("cpu backend: input '" + v.name + "' has shape " + shape_str(t.shape()) + " " +
                      dtype_name(t.dtype()) + ", compiled for " + shape_str(v.shape) + " " +
                      dtype_name(v.dtype),
                  g_.source_file, {}, "input");
    feed[i] = t;
  }
  for (auto& s : slots_) {
    if (s.st != Storage::Input) continue;
    void* p = feed[static_cast<size_t>(s.input)].raw();
    if (s.mem) s.mem.set_data_handle(p);
    s.view = Tensor::wrap(s.dtype, s.shape, p, keepalive_);
  }
  std::vector<Tensor> ins, outs;
  int nthr = std::max(1, opt_.threads);
  for (size_t si = 0; si < steps_.size(); ++si) {
    Step& st = steps_[si];
    Timer t;
    if (st.prim) {
      if (st.nthr != nthr) omp_set_num_threads(nthr = st.nthr);
      st.p.execute(stream_, st.argmap);
    } else {
      ins.clear();
      outs.clear();
      for (int s : st.ins) ins.push_back(s >= 0 ? slot(s).view : Tensor());
      for (int s : st.outs) {
        Tensor& o = slot(s).view;
        std::memset(o.raw(), 0, o.nbytes());
        outs.push_back(o);
      }
      KernelContext ctx{st.node, ins, outs};
      try {
        st.def->reference(ctx);
      } catch (const Error& e) {
        throw Error(e.message(), e.file().empty() ? g_.source_file : e.file(),
                    e.node().empty() ? st.node.name : e.node(), e.field());
      }
    }
    if (opt_.profile) {
      if (st.prim) stream_.wait();
      prof_ms_[si] += t.ms();
      ++prof_calls_[si];
    }
  }
  stream_.wait();
  if (nthr != std::max(1, opt_.threads)) omp_set_num_threads(std::max(1, opt_.threads));
  std::vector<Tensor> result;
  for (size_t k = 0; k < keep_slots_.size(); ++k) {
    Slot& s = slot(keep_slots_[k].second);
    if (s.st == Storage::Input) {
      result.push_back(feed[static_cast<size_t>(s.input)].reshaped(s.shape));
      continue;
    }
    if (s.st == Storage::Const) {
      result.push_back(val(keep_slots_[k].first).constant);
      continue;
    }
    Tensor t(s.dtype, s.shape);
    if (s.plain) {
      std::memcpy(t.raw(), s.view.raw(), t.nbytes());
    } else {
      out_mems_[k].set_data_handle(t.raw());
      out_reorders_[k].execute(stream_, s.mem, out_mems_[k]);
      stream_.wait();
    }
    result.push_back(std::move(t));
  }
  return result;
}

std::vector<Executable::OpTime> CpuExecutable::profile() const {
  std::vector<OpTime> r;
  if (!opt_.profile) return r;
  for (size_t i = 0; i < steps_.size(); ++i)
    r.push_back(OpTime{steps_[i].name, steps_[i].op, prof_ms_[i], prof_calls_[i]});
  return r;
}

const BackendRegistrar reg{Backend{
    "cpu", [](const Graph& g, const CompileOptions& o) -> std::unique_ptr<Executable> {
      try {
        return std::make_unique<CpuExecutable>(g, o);
      } catch (const dnnl::error& e) {
        throw Error(std::string("cpu backend (oneDNN): ") + e.what(), g.source_file);
      }
    }}};

}  // namespace
}  // namespace anvil::cpu
