// The cpu backend's core: the {op -> handler} table, compile, execution contexts, run and
// profile (slots and layouts: slots.cpp). The handlers are in *_handler(s).cpp beside this file;
// the design is described in executable.h and docs/cpu_backend.md.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dnnl.hpp>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/arena.h"
#include "backend/backend.h"
#include "backend/cpu/executable.h"

extern "C" {
void omp_set_num_threads(int);
int omp_get_max_threads(void);
}

namespace anvil::cpu {

const dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

float to_f(double v) {
  const double lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  return static_cast<float>(std::isnan(v) ? v : std::clamp(v, lo, hi));
}

bool append_act(dnnl::post_ops& po, const FusedActivation& a, bool nan_safe) {
  switch (a.kind) {
    case Activation::None:
      return true;
    case Activation::Relu:
    case Activation::LeakyRelu:
      if (nan_safe && (a.kind == Activation::Relu || a.alpha == 0)) {
        // oneDNN's JIT relu with alpha 0 is max(x, 0), which turns NaN into 0. Relu must keep
        // NaN (as ONNX Runtime and PyTorch do): elu with alpha 0 is x > 0 ? x : 0 * (exp(x) - 1)
        // (NaN stays NaN, negatives and -inf give -0), and 1 * y + 0 turns -0 into +0. It costs
        // an exp per element and the Winograd kernel refuses it: only the NaN-safe variant
        // (see run()) uses it.
        po.append_eltwise(1.f, algorithm::eltwise_elu, 0.f, 0.f);
        po.append_eltwise(1.f, algorithm::eltwise_linear, 1.f, 0.f);
      } else {  // alpha != 0: x > 0 ? x : alpha * x by a compare mask, NaN stays NaN
        po.append_eltwise(1.f, algorithm::eltwise_relu, to_f(a.alpha), 0.f);
      }
      return true;
    case Activation::Clip:
      if (a.alpha > a.beta || nan_safe) return false;  // oneDNN's clip is max/min: loses NaN
      if (a.alpha == 0 && std::isfinite(a.beta))
        po.append_eltwise(1.f, algorithm::eltwise_bounded_relu, to_f(a.beta), 0.f);
      else
        po.append_eltwise(1.f, algorithm::eltwise_clip_v2, to_f(a.alpha), to_f(a.beta));
      return true;
    case Activation::Sigmoid:
      po.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f);
      return true;
    case Activation::Tanh:
      po.append_eltwise(1.f, algorithm::eltwise_tanh, 0.f, 0.f);
      return true;
    case Activation::Elu:
      po.append_eltwise(1.f, algorithm::eltwise_elu, to_f(a.alpha), 0.f);
      return true;
    case Activation::HardSigmoid:
      if (nan_safe) return false;  // its clip loses NaN
      po.append_eltwise(1.f, algorithm::eltwise_linear, to_f(a.alpha), to_f(a.beta));
      po.append_eltwise(1.f, algorithm::eltwise_clip_v2, 0.f, 1.f);
      return true;
    case Activation::HardSwish:
      po.append_eltwise(1.f, algorithm::eltwise_hardswish, 0.f, 0.f);
      return true;
  }
  return false;
}

bool only_relu_post_ops(const dnnl::post_ops& po) {
  if (po.len() == 0 || po.len() % 2 != 0) return false;
  for (int i = 0; i < po.len(); i += 2) {
    if (po.kind(i) != dnnl::primitive::kind::eltwise ||
        po.kind(i + 1) != dnnl::primitive::kind::eltwise)
      return false;
    float scale = 0, alpha = 0, beta = 0;
    algorithm alg;
    po.get_params_eltwise(i, scale, alg, alpha, beta);
    if (alg != algorithm::eltwise_elu || scale != 1.f || alpha != 0.f) return false;
    po.get_params_eltwise(i + 1, scale, alg, alpha, beta);
    if (alg != algorithm::eltwise_linear || scale != 1.f || alpha != 1.f || beta != 0.f)
      return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Fusion helper: a following activation as a post-op
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
  if (!append_act(po, *act, nan_safe_)) return y;
  opname += "+" + a.op;
  fused_nodes.push_back(u[0]);
  return z;
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
    if (i < 0 || static_cast<size_t>(i) >= n.inputs.size() || n.inputs[static_cast<size_t>(i)] < 0)
      return 0;
    const Value& v = val(n.inputs[static_cast<size_t>(i)]);
    return v.shape_known ? static_cast<double>(shape_numel(v.shape)) : 0;
  };
  const double out = n.outputs.empty() || !val(n.outputs[0]).shape_known
                         ? 0
                         : static_cast<double>(shape_numel(val(n.outputs[0]).shape));
  if (n.op == "Conv" && n.inputs.size() > 1 && val(n.inputs[1]).shape_known) {
    const Shape& w = val(n.inputs[1]).shape;
    flops = 2 * out * static_cast<double>(shape_numel(w)) /
            static_cast<double>(std::max<int64_t>(1, w[0]));
  } else if (n.op == "ConvTranspose" && n.inputs.size() > 1) {
    flops =
        2 * numel(0) * numel(1) / std::max(1.0, static_cast<double>(val(n.inputs[0]).shape.at(1)));
  } else if ((n.op == "Gemm" || n.op == "MatMul") && n.inputs.size() > 1) {
    const Shape& a = val(n.inputs[0]).shape;
    flops = 2 * out * static_cast<double>(a.empty() ? 1 : a.back());
  }
  const double us = flops / 1e5 + bytes / 2e4;
  return us >= 50 ? threads : 1;
}

const std::unordered_map<std::string, CpuExecutable::HandlerRow>& CpuExecutable::handlers() {
  using C = CpuExecutable;
  static const std::unordered_map<std::string, HandlerRow> table = [] {
    std::unordered_map<std::string, HandlerRow> t;
    for (const char* op : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
      t[op] = {&C::do_view, false};
    t["Cast"] = {&C::do_cast, true};
    t["Conv"] = {&C::do_conv, true};
    t["ConvTranspose"] = {&C::do_conv_transpose, true};
    for (const char* op : {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})
      t[op] = {&C::do_pool, true};
    t["Gemm"] = {&C::do_gemm, true};
    t["MatMul"] = {&C::do_matmul, true};
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) t[op] = {&C::do_binary, true};
    t["Concat"] = {&C::do_concat, true};
    t["Softmax"] = {&C::do_softmax, true};
    t["LogSoftmax"] = {&C::do_softmax, true};
    t["LRN"] = {&C::do_lrn, true};
    t["BatchNormalization"] = {&C::do_batchnorm, true};
    for (const char* op : {"RNN", "LSTM", "GRU"}) t[op] = {&C::do_rnn, true};
    for (const char* op : {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "HardSwish", "Clip",
                           "HardSigmoid", "Exp", "Abs", "Neg", "Mish", "Gelu"})
      t[op] = {&C::do_eltwise, true};
    return t;
  }();
  return table;
}

bool CpuExecutable::compile_node(int ni) {
  const Node& node = g_.nodes[static_cast<size_t>(ni)];
  auto it = handlers().find(node.op);
  if (it == handlers().end()) return false;
  // oneDNN's max/min (Clip, HardSigmoid, max pooling, binary Max/Min) turn NaN into a number:
  // the NaN-safe variant runs them on their reference kernels.
  if (nan_safe_ && (node.op == "Clip" || node.op == "HardSigmoid" || node.op == "MaxPool" ||
                    node.op == "GlobalMaxPool" || node.op == "Max" || node.op == "Min"))
    return false;
  if (it->second.typed) {
    if (node.outputs.empty() || node.outputs[0] < 0) return false;
    ty_ = val(node.outputs[0]).dtype;
    dty_ = dnnl_type(ty_);
    if (dty_ == dt::undef) return false;
  }
  return (this->*(it->second.fn))(ni);
}

// ---------------------------------------------------------------------------------------------
// Execution contexts: the arena, scratchpad, stream and memories of one run at a time
// ---------------------------------------------------------------------------------------------

std::unique_ptr<Context> CpuExecutable::make_context() const {
  auto alloc = [](size_t n) {
    void* p = std::aligned_alloc(64, std::max<size_t>((n + 63) / 64 * 64, 64));
    if (!p)
      throw Error("cpu backend: cannot allocate " + std::to_string(n) +
                  " bytes of activation memory");
    std::memset(p, 0, std::max<size_t>(n, 1));
    return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
  };
  auto c = std::make_unique<Context>();
  c->arena = alloc(arena_bytes_);
  c->scratch = alloc(scratch_bytes_);
  c->stream = dnnl::stream(engine());
  c->mems.resize(slots_.size());
  c->views.resize(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.st == Storage::Owned) {
      c->mems[i] = s.mem;
      continue;
    }
    void* p = s.st == Storage::Arena   ? c->arena.get() + bufs_[static_cast<size_t>(s.buf)].offset
              : s.st == Storage::Const ? s.ptr
                                       : nullptr;
    if (s.md.data.ndims > 0) c->mems[i] = dnnl::memory(s.md, engine(), p);
    if (p && s.plain) c->views[i] = Tensor::wrap(s.dtype, s.shape, p, c->arena);
  }
  c->args.resize(steps_.size());
  for (size_t si = 0; si < steps_.size(); ++si) {
    const Step& st = steps_[si];
    if (!st.prim) continue;
    for (auto& [arg, s] : st.args) c->args[si][arg] = c->mems[static_cast<size_t>(s)];
    if (st.scratch_md.get_size() > 0)
      c->args[si][DNNL_ARG_SCRATCHPAD] = dnnl::memory(st.scratch_md, engine(), c->scratch.get());
  }
  for (const auto& [v, s] : keep_slots_) {
    const Slot& sl = slots_[static_cast<size_t>(s)];
    c->out_mems.push_back(sl.plain ? dnnl::memory()
                                   : dnnl::memory(md_for(sl.dtype, sl.shape), engine(), nullptr));
  }
  return c;
}

std::unique_ptr<Context> CpuExecutable::acquire() {
  {
    std::lock_guard<std::mutex> lock(ctx_mu_);
    if (!free_ctx_.empty()) {
      std::unique_ptr<Context> c = std::move(free_ctx_.back());
      free_ctx_.pop_back();
      return c;
    }
  }
  return make_context();  // another caller holds every pooled one
}

void CpuExecutable::release(std::unique_ptr<Context> c) {
  std::lock_guard<std::mutex> lock(ctx_mu_);
  free_ctx_.push_back(std::move(c));
}

// ---------------------------------------------------------------------------------------------
// Compile and run
// ---------------------------------------------------------------------------------------------

CpuExecutable::CpuExecutable(const Graph& g, const CompileOptions& opt, bool nan_safe)
    : g_(g), opt_(opt) {
  nan_safe_ = nan_safe;
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
      if (val(k).is_constant() || std::find(g.inputs.begin(), g.inputs.end(), k) != g.inputs.end())
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
    } else {
      out_reorders_.emplace_back();
    }
  }
  arena_bytes_ = place_buffers(bufs_, 64);
  for (auto& s : steps_)
    if (s.prim) scratch_bytes_ = std::max(scratch_bytes_, s.scratch_md.get_size());
  free_ctx_.push_back(make_context());  // the first caller's (allocation errors show here)
  prof_ms_.assign(steps_.size(), 0.0);
  prof_calls_.assign(steps_.size(), 0);
}

namespace {

/// True when a float tensor holds NaN or +-Inf.
bool has_non_finite(const Tensor& t) {
  if (t.dtype() == DType::f32) {
    // Two floats per 64-bit word: adding 0x00800000 to a lane's exponent bits sets its bit 31
    // only when they are all ones (NaN, Inf), without carrying into the other lane.
    constexpr uint64_t kExp = 0x7f8000007f800000ull, kOne = 0x0080000000800000ull,
                       kTop = 0x8000000080000000ull;
    const int64_t n = t.numel(), words = n / 2;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    const auto* w = static_cast<const uint8_t*>(t.raw());
    auto word = [w](int64_t k) {
      uint64_t v;
      std::memcpy(&v, w + 8 * k, 8);
      return v;
    };
    for (; i + 4 <= words; i += 4) {
      a0 |= (word(i) & kExp) + kOne;
      a1 |= (word(i + 1) & kExp) + kOne;
      a2 |= (word(i + 2) & kExp) + kOne;
      a3 |= (word(i + 3) & kExp) + kOne;
    }
    for (; i < words; ++i) a0 |= (word(i) & kExp) + kOne;
    if ((a0 | a1 | a2 | a3) & kTop) return true;
    return n % 2 != 0 && !std::isfinite(t.data<float>()[n - 1]);
  }
  if (!is_float(t.dtype())) return false;
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (!std::isfinite(t.get(i))) return true;
  return false;
}

}  // namespace

std::vector<Tensor> CpuExecutable::run(const std::vector<Tensor>& inputs) {
  if (inputs.size() != g_.inputs.size())
    throw Error("cpu backend: expected " + std::to_string(g_.inputs.size()) + " inputs, got " +
                    std::to_string(inputs.size()),
                g_.source_file);
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
  if (!nan_safe_) {
    bool non_finite = false;
    for (const Tensor& t : feed) non_finite = non_finite || has_non_finite(t);
    if (non_finite) {  // NaN or Inf: the variant whose Relu keeps NaN (compiled once)
      std::call_once(nan_once_,
                     [&] { nan_exe_ = std::make_unique<CpuExecutable>(g_, opt_, true); });
      return nan_exe_->run(feed);
    }
  }
  // One context per concurrent caller; it goes back to the pool however run() ends.
  struct Lease {
    CpuExecutable* self;
    std::unique_ptr<Context> c;
    ~Lease() { self->release(std::move(c)); }
  } lease{this, acquire()};
  Context& c = *lease.c;
  // The OpenMP thread count is per calling thread: set it for this one.
  omp_set_num_threads(std::max(1, opt_.threads));
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.st != Storage::Input) continue;
    void* p = feed[static_cast<size_t>(s.input)].raw();
    if (c.mems[i]) c.mems[i].set_data_handle(p);
    c.views[i] = Tensor::wrap(s.dtype, s.shape, p, c.arena);
  }
  std::vector<Tensor> ins, outs;
  std::vector<double> ms(opt_.profile ? steps_.size() : 0, 0.0);
  int nthr = std::max(1, opt_.threads);
  for (size_t si = 0; si < steps_.size(); ++si) {
    const Step& st = steps_[si];
    Timer t;
    if (st.prim) {
      if (st.nthr != nthr) omp_set_num_threads(nthr = st.nthr);
      st.p.execute(c.stream, c.args[si]);
    } else {
      ins.clear();
      outs.clear();
      for (int s : st.ins) ins.push_back(s >= 0 ? c.views[static_cast<size_t>(s)] : Tensor());
      for (int s : st.outs) {
        Tensor& o = c.views[static_cast<size_t>(s)];
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
      if (st.prim) c.stream.wait();
      ms[si] = t.ms();
    }
  }
  c.stream.wait();
  if (nthr != std::max(1, opt_.threads)) omp_set_num_threads(std::max(1, opt_.threads));
  for (size_t i = 0; i < slots_.size(); ++i)  // drop the callers' input buffers
    if (slots_[i].st == Storage::Input) {
      c.views[i] = Tensor();
      if (c.mems[i]) c.mems[i].set_data_handle(nullptr);
    }
  if (opt_.profile) {
    std::lock_guard<std::mutex> lock(prof_mu_);
    for (size_t si = 0; si < steps_.size(); ++si) {
      prof_ms_[si] += ms[si];
      ++prof_calls_[si];
    }
  }
  std::vector<Tensor> result;
  for (size_t k = 0; k < keep_slots_.size(); ++k) {
    const size_t si = static_cast<size_t>(keep_slots_[k].second);
    const Slot& s = slots_[si];
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
      std::memcpy(t.raw(), c.views[si].raw(), t.nbytes());
    } else {
      c.out_mems[k].set_data_handle(t.raw());
      out_reorders_[k].execute(c.stream, c.mems[si], c.out_mems[k]);
      c.stream.wait();
    }
    result.push_back(std::move(t));
  }
  return result;
}

std::vector<Executable::OpTime> CpuExecutable::profile() const {
  std::vector<OpTime> r;
  if (!opt_.profile) return r;
  std::lock_guard<std::mutex> lock(prof_mu_);
  for (size_t i = 0; i < steps_.size(); ++i)
    r.push_back(OpTime{steps_[i].name, steps_[i].op, prof_ms_[i], prof_calls_[i]});
  return r;
}

namespace {
const BackendRegistrar reg{
    Backend{"cpu", [](const Graph& g, const CompileOptions& o) -> std::unique_ptr<Executable> {
              try {
                return std::make_unique<CpuExecutable>(g, o);
              } catch (const dnnl::error& e) {
                throw Error(std::string("cpu backend (oneDNN): ") + e.what(), g.source_file);
              }
            }}};

}  // namespace
}  // namespace anvil::cpu
