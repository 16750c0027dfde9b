// The cuda backend's executor: cuDNN convolutions, cuBLASLt matrix products and the backend's
// own kernels (kernels.h), with the reference kernels on the host for everything else.
// How it works (layouts, fusion, arena, CUDA graphs, in-flight runs, fallback) is described in
// docs/cuda_backend.md.
//
// compile():  walks the canonical graph in order and turns every node into steps. A step is a
//   closure that enqueues work on a context's stream (no allocation, no synchronization, so a
//   whole run can be captured into a CUDA graph), or a fallback to the op's reference kernel
//   on the host. Every tensor lives in a slot: dtype, canonical shape, a physical layout
//   (plain row-major, or NHWC for a 4-D NCHW tensor) and storage (a buffer of the activation
//   arena, or device constants uploaded at compile time and shared by every context).
//   Transposes between layouts are inserted only where a consumer needs another layout.
// run():      copies the inputs into pinned staging, then to the device, replays the steps
//   (a CUDA graph from the second run on), copies the kept tensors back, syncs once.
#include "backend/cuda/executor.h"

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
#include <thread>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/arena.h"

namespace anvil::cuda::exec {

// ---------------------------------------------------------------------------------------------
// Slots and layouts
// ---------------------------------------------------------------------------------------------

int CudaExecutable::slot_of(int v) {
  int& s = vslot_[static_cast<size_t>(v)];
  if (s >= 0) return s;
  const Value& x = val(v);
  if (x.is_constant()) {
    (void)element_size(x.dtype);  // throws for dtypes the device does not store
    s = device_slot(x.constant);
    return s;
  }
  throw Error("cuda backend: tensor '" + x.name + "' is used before it is computed",
              g_.source_file);
}

int CudaExecutable::as_layout(int v, Layout l) {
  int s = slot_of(v);
  l = effective(l, slot(s).shape);
  if (slot(s).layout == l) return s;
  for (int a : valt_[static_cast<size_t>(v)])
    if (slot(a).layout == l) return a;
  const Value& x = val(v);
  int d = new_slot(x.dtype, slot(s).shape, l);
  if (!push_copy(x.name + (l == Layout::Plain ? " (to NCHW)" : " (to NHWC)"), "Transpose", s, 0,
                 logical_strides(slot(s)), d, 0, logical_strides(slot(d)), slot(s).shape))
    throw Error("cuda backend: layout change of rank " + std::to_string(slot(s).shape.size()));
  valt_[static_cast<size_t>(v)].push_back(d);
  return d;
}

bool CudaExecutable::push_copy(const std::string& name, const std::string& op, int src,
                               int64_t src_off, std::vector<int64_t> sst, int dst, int64_t dst_off,
                               std::vector<int64_t> dstt, Shape shape) {
  if (!copy_type(slot(src).dtype) || !copy_type(slot(dst).dtype)) return false;
  // Order the dims by destination stride (innermost last) so that writes are contiguous.
  std::vector<size_t> order(shape.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return std::abs(dstt[a]) > std::abs(dstt[b]); });
  Shape sh;
  std::vector<int64_t> ss, ds;
  for (size_t i : order) {
    sh.push_back(shape[i]);
    ss.push_back(sst[i]);
    ds.push_back(dstt[i]);
  }
  if (!simplify(sh, {&ss, &ds})) return false;
  Strided d;
  d.rank = static_cast<int>(sh.size());
  for (int i = 0; i < d.rank; ++i) {
    d.shape[i] = sh[static_cast<size_t>(i)];
    d.src_stride[i] = ss[static_cast<size_t>(i)];
    d.dst_stride[i] = ds[static_cast<size_t>(i)];
  }
  const DType st = slot(src).dtype, dt = slot(dst).dtype;
  const size_t so = static_cast<size_t>(src_off) * dtype_size(st);
  const size_t doff = static_cast<size_t>(dst_off) * dtype_size(dt);
  push(name, op, {src, dst},
       [this, src, dst, st, dt, so, doff, d](const Context& c, cudaStream_t s) {
         strided_copy(st, static_cast<const uint8_t*>(ptr(c, src)) + so, dt,
                      static_cast<uint8_t*>(ptr(c, dst)) + doff, d, s);
       });
  return true;
}

std::optional<UnaryFn> CudaExecutable::following_act(int y, int& out_v, int& node) const {
  out_v = y;
  node = -1;
  if (kept_[static_cast<size_t>(y)]) return std::nullopt;
  const auto& u = uses_[static_cast<size_t>(y)];
  if (u.size() != 1) return std::nullopt;
  const Node& a = g_.nodes[static_cast<size_t>(u[0])];
  if (a.inputs.empty() || a.inputs[0] != y || a.outputs.size() != 1) return std::nullopt;
  for (size_t i = 1; i < a.inputs.size(); ++i)
    if (a.inputs[i] == y) return std::nullopt;
  auto f = unary_of(g_, a);
  if (!f) return std::nullopt;
  const int z = a.outputs[0];
  if (val(z).dtype != val(y).dtype || val(z).shape != val(y).shape) return std::nullopt;
  out_v = z;
  node = u[0];
  return f;
}

void CudaExecutable::push_unary(const std::string& name, const std::string& op, const UnaryFn& f,
                                int src, int dst) {
  const DType dt = slot(dst).dtype;
  const int64_t n = shape_numel(slot(dst).shape);
  push(name, op, {src, dst}, [this, f, src, dst, dt, n](const Context& c, cudaStream_t s) {
    unary(f.op, f.alpha, f.beta, dt, ptr(c, src), ptr(c, dst), n, s);
  });
}

// ---------------------------------------------------------------------------------------------
// The handler table: op -> handler (handlers_*.cpp). A handler checks everything it needs
// before pushing a step; returning false runs the node on its reference kernel on the host
// (handlers_fallback.cpp). Ops not in the table go to do_unary (the activations of unary_of).
// ---------------------------------------------------------------------------------------------

const std::map<std::string, CudaExecutable::HandlerRow>& CudaExecutable::handlers() {
  using E = CudaExecutable;
  const Handler view = [](E& e, int ni) { return e.do_view(ni); };
  const Handler pool = [](E& e, int ni) { return e.do_pool(ni); };
  const Handler binary = [](E& e, int ni) { return e.do_binary(ni); };
  // Max, Min, Sum: two inputs on `binary`; more go the unary path (and so to the host).
  const Handler binary2 = [](E& e, int ni) {
    return e.g_.nodes[static_cast<size_t>(ni)].inputs.size() == 2 ? e.do_binary(ni)
                                                                  : e.do_unary(ni);
  };
  const Handler softmax = [](E& e, int ni) { return e.do_softmax(ni); };
  const Handler reduce = [](E& e, int ni) { return e.do_reduce(ni); };
  const Handler resize = [](E& e, int ni) { return e.do_resize(ni); };
  static const std::map<std::string, HandlerRow> table = {
      // shape / copy ops (handlers_shape.cpp)
      {"Reshape", {Gate::View, view}},
      {"Flatten", {Gate::View, view}},
      {"Squeeze", {Gate::View, view}},
      {"Unsqueeze", {Gate::View, view}},
      {"Identity", {Gate::View, view}},
      {"Dropout", {Gate::View, view}},
      {"Cast", {Gate::Copy, [](E& e, int ni) { return e.do_cast(ni); }}},
      {"Concat", {Gate::Copy, [](E& e, int ni) { return e.do_concat(ni); }}},
      {"Split", {Gate::Copy, [](E& e, int ni) { return e.do_split(ni); }}},
      {"Slice", {Gate::Copy, [](E& e, int ni) { return e.do_slice(ni); }}},
      {"Transpose", {Gate::Copy, [](E& e, int ni) { return e.do_transpose(ni); }}},
      {"Pad", {Gate::Float, [](E& e, int ni) { return e.do_pad(ni); }}},
      // convolutions (handlers_conv.cpp), matrix products (handlers_gemm.cpp)
      {"Conv", {Gate::Float, [](E& e, int ni) { return e.do_conv(ni, false); }}},
      {"ConvTranspose", {Gate::Float, [](E& e, int ni) { return e.do_conv(ni, true); }}},
      {"Gemm", {Gate::Float, [](E& e, int ni) { return e.do_gemm(ni); }}},
      {"MatMul", {Gate::Float, [](E& e, int ni) { return e.do_matmul(ni); }}},
      // elementwise (handlers_eltwise.cpp)
      {"Add", {Gate::Float, binary}},
      {"Sub", {Gate::Float, binary}},
      {"Mul", {Gate::Float, binary}},
      {"Div", {Gate::Float, binary}},
      {"Pow", {Gate::Float, binary}},
      {"PRelu", {Gate::Float, binary}},
      {"Max", {Gate::Float, binary2}},
      {"Min", {Gate::Float, binary2}},
      {"Sum", {Gate::Float, binary2}},
      // pools, norms, softmax, reductions, resize (handlers_nn.cpp)
      {"MaxPool", {Gate::Float, pool}},
      {"AveragePool", {Gate::Float, pool}},
      {"GlobalAveragePool", {Gate::Float, pool}},
      {"GlobalMaxPool", {Gate::Float, pool}},
      {"Softmax", {Gate::Float, softmax}},
      {"LogSoftmax", {Gate::Float, softmax}},
      {"LRN", {Gate::Float, [](E& e, int ni) { return e.do_lrn(ni); }}},
      {"BatchNormalization", {Gate::Float, [](E& e, int ni) { return e.do_batchnorm(ni); }}},
      {"ReduceSum", {Gate::Float, reduce}},
      {"ReduceMean", {Gate::Float, reduce}},
      {"ReduceMax", {Gate::Float, reduce}},
      {"ReduceMin", {Gate::Float, reduce}},
      {"ReduceSumSquare", {Gate::Float, reduce}},
      {"ReduceLogSumExp", {Gate::Float, reduce}},
      {"Resize", {Gate::Float, resize}},
      {"Upsample", {Gate::Float, resize}},
  };
  return table;
}

bool CudaExecutable::compile_node(int ni) {
  const Node& node = g_.nodes[static_cast<size_t>(ni)];
  for (int v : node.inputs)
    if (v >= 0 && !val(v).shape_known) return false;
  for (int v : node.outputs)
    if (v >= 0 && !val(v).shape_known) return false;
  const auto& table = handlers();
  const auto it = table.find(node.op);
  const HandlerRow* h = it == table.end() ? nullptr : &it->second;
  if (h && h->gate == Gate::View) return h->fn(*this, ni);
  if (node.outputs.empty() || node.outputs[0] < 0) return false;
  ty_ = val(node.outputs[0]).dtype;
  if (h && h->gate == Gate::Copy) return h->fn(*this, ni);
  if (!float_type(ty_)) return false;
  for (int v : node.outputs)
    if (v >= 0 && shape_numel(val(v).shape) == 0) return false;
  for (int v : node.inputs)
    if (v >= 0 && shape_numel(val(v).shape) == 0) return false;
  return h ? h->fn(*this, ni) : do_unary(ni);
}

// ---------------------------------------------------------------------------------------------
// Arena, contexts
// ---------------------------------------------------------------------------------------------

void CudaExecutable::layout_arena() { arena_bytes_ = place_buffers(bufs_, 256); }

Context& CudaExecutable::make_context() {
  auto c = std::make_unique<Context>();
  ANVIL_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  ANVIL_CUDA_CHECK(cudaEventCreate(&c->ev_start));
  ANVIL_CUDA_CHECK(cudaEventCreate(&c->ev_end));
  c->arena = DeviceBuffer(std::max<size_t>(arena_bytes_, 256));
  ANVIL_CUDA_CHECK(cudaMemsetAsync(c->arena.get(), 0, c->arena.size(), c->stream));
  c->workspace = DeviceBuffer(std::max<size_t>(workspace_bytes_, 256));
  c->in_stage = PinnedBuffer(std::max<size_t>(in_bytes_, 64));
  c->out_stage = PinnedBuffer(std::max<size_t>(out_bytes_, 64));
  c->host = PinnedBuffer(std::max<size_t>(host_bytes_, 64));
  if (opt_.profile) {
    c->step_ev.resize(steps_.size() + 1);
    for (auto& e : c->step_ev) ANVIL_CUDA_CHECK(cudaEventCreate(&e));
  }
  ctx_.push_back(std::move(c));
  return *ctx_.back();
}

CudaExecutable::~CudaExecutable() {
  for (auto& c : ctx_) {
    if (c->stream) (void)cudaStreamSynchronize(c->stream);
    if (c->exec) (void)cudaGraphExecDestroy(c->exec);
    if (c->graph) (void)cudaGraphDestroy(c->graph);
    for (auto e : c->step_ev) (void)cudaEventDestroy(e);
    if (c->ev_start) (void)cudaEventDestroy(c->ev_start);
    if (c->ev_end) (void)cudaEventDestroy(c->ev_end);
    if (c->stream) (void)cudaStreamDestroy(c->stream);
  }
}

CudaExecutable::CudaExecutable(const Graph& g, const CompileOptions& opt) : g_(g), opt_(opt) {
  const int ndev = device_count();
  if (ndev == 0)
    throw Error("cuda backend: no CUDA device (cudaGetDeviceCount found none, or no driver)",
                g.source_file);
  const size_t nv = g.values.size();
  vslot_.assign(nv, -1);
  valt_.assign(nv, {});
  uses_.assign(nv, {});
  kept_.assign(nv, false);
  consumed_.assign(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.dead) continue;
    for (int in : n.inputs)
      if (in >= 0) {
        auto& u = uses_[static_cast<size_t>(in)];
        if (u.empty() || u.back() != static_cast<int>(i)) u.push_back(static_cast<int>(i));
      }
  }
  for (int k : opt.keep) kept_[static_cast<size_t>(k)] = true;
  for (int o : g.outputs) kept_[static_cast<size_t>(o)] = true;

  // Graph inputs: arena buffers written by the upload before the first step.
  for (int v : g.inputs) {
    const Value& x = val(v);
    if (!x.shape_known)
      throw Error("cuda backend: input '" + x.name + "' has no known shape", g.source_file, {},
                  "input");
    const int s = new_slot(x.dtype, x.shape, Layout::Plain);
    vslot_[static_cast<size_t>(v)] = s;
    input_slots_.push_back(s);
    in_off_.push_back(in_bytes_);
    in_bytes_ += (slot(s).bytes + 63) / 64 * 64;
  }

  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.dead || consumed_[i]) continue;
    bool ok = false;
    try {
      ok = compile_node(static_cast<int>(i));
    } catch (const Error& e) {
      throw Error("cuda backend: " + e.message(), e.file().empty() ? g.source_file : e.file(),
                  e.node().empty() ? n.name : e.node(), e.field());
    }
    if (!ok) {
      try {
        do_fallback(static_cast<int>(i));
      } catch (const Error& e) {
        throw Error(e.message(), e.file().empty() ? g.source_file : e.file(),
                    e.node().empty() ? n.name : e.node(), e.field());
      }
    }
  }
  // Kept tensors, in canonical plain layout, live to the end of the run.
  for (int k : opt.keep) {
    Keep kp;
    kp.value = k;
    if (vslot_[static_cast<size_t>(k)] < 0 && val(k).is_constant()) {
      kp.host = &val(k).constant;
      keeps_.push_back(kp);
      continue;
    }
    if (vslot_[static_cast<size_t>(k)] < 0)
      throw Error("cuda backend: tensor '" + val(k).name + "' is not computed by the graph",
                  g.source_file);
    kp.slot = plain_of(k);
    kp.off = out_bytes_;
    out_bytes_ += (slot(kp.slot).bytes + 63) / 64 * 64;
    keeps_.push_back(kp);
  }
  const int end = cur();
  for (const Keep& kp : keeps_)
    if (kp.slot >= 0 && slot(kp.slot).kind == Kind::Arena)
      bufs_[static_cast<size_t>(slot(kp.slot).buf)].last = end;
  layout_arena();
  prof_ms_.assign(steps_.size(), 0.0);
  prof_calls_.assign(steps_.size(), 0);
  const int nctx = std::max(1, opt.in_flight);
  for (int i = 0; i < nctx; ++i) make_context();
  // Weights went up with cudaMemcpy on the legacy stream, which the contexts' non-blocking
  // streams do not wait for (and a pageable copy may return before its DMA ends): finish
  // every upload and arena clear before the first run.
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
}

// ---------------------------------------------------------------------------------------------
// Run
// ---------------------------------------------------------------------------------------------

void CudaExecutable::run_steps(Context& c, bool timed) {
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& st = steps_[i];
    if (timed) ANVIL_CUDA_CHECK(cudaEventRecord(c.step_ev[i], c.stream));
    try {
      if (st.fallback)
        run_fallback(c, st);
      else
        st.fn(c, c.stream);
    } catch (const Error& e) {
      throw Error(e.message(), e.file().empty() ? g_.source_file : e.file(),
                  e.node().empty() ? st.name : e.node(), e.field());
    }
  }
  if (timed) ANVIL_CUDA_CHECK(cudaEventRecord(c.step_ev[steps_.size()], c.stream));
}

// Copies n bytes with up to 8 threads when n is large: staging a batch of images (38.5 MB
// for 64 fp32 224x224 RGB inputs) with one thread took longer than the GPU's whole run of
// ResNet-50 on it, and bounded pipelined throughput.
static void parallel_memcpy(void* dst, const void* src, size_t n) {
  constexpr size_t kChunk = size_t{4} << 20;
  const size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t nt = std::min<size_t>({8, hw, n / kChunk});
  if (nt <= 1) {
    std::memcpy(dst, src, n);
    return;
  }
  const size_t per = (n + nt - 1) / nt;
  std::vector<std::thread> ts;
  ts.reserve(nt - 1);
  auto part = [&](size_t i) {
    const size_t a = i * per, b = std::min(n, a + per);
    if (a < b) std::memcpy(static_cast<char*>(dst) + a, static_cast<const char*>(src) + a, b - a);
  };
  for (size_t i = 1; i < nt; ++i) ts.emplace_back(part, i);
  part(0);
  for (auto& t : ts) t.join();
}

void CudaExecutable::launch(Context& c, const std::vector<Tensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i)
    parallel_memcpy(c.in_stage.get() + in_off_[i], inputs[i].raw(), inputs[i].nbytes());
  ANVIL_CUDA_CHECK(cudaEventRecord(c.ev_start, c.stream));
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].nbytes())
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(ptr(c, input_slots_[i]), c.in_stage.get() + in_off_[i],
                                       inputs[i].nbytes(), cudaMemcpyHostToDevice, c.stream));
  const bool use_graph = !opt_.profile && !has_fallback_ && !c.no_graph;
  if (!use_graph || c.runs == 0) {
    // Step by step: profiles, plans with fallbacks, and the warm-up run before the capture.
    run_steps(c, opt_.profile);
  } else {
    if (!c.exec) {
      bool ok = true;
      ANVIL_CUDA_CHECK(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeThreadLocal));
      try {
        run_steps(c, false);
      } catch (const Error&) {
        ok = false;
      }
      cudaGraph_t graph = nullptr;
      cudaError_t e = cudaStreamEndCapture(c.stream, &graph);
      if (e != cudaSuccess || !ok || !graph) {
        (void)cudaGetLastError();
        if (graph) (void)cudaGraphDestroy(graph);
        c.no_graph = true;  // not capturable: run step by step from now on
        run_steps(c, false);
      } else {
        c.graph = graph;
        if (cudaGraphInstantiate(&c.exec, c.graph, 0) != cudaSuccess) {
          (void)cudaGetLastError();
          c.exec = nullptr;
          c.no_graph = true;
          run_steps(c, false);
        }
      }
    }
    if (c.exec) ANVIL_CUDA_CHECK(cudaGraphLaunch(c.exec, c.stream));
  }
  for (const Keep& kp : keeps_)
    if (kp.slot >= 0 && slot(kp.slot).bytes)
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(c.out_stage.get() + kp.off, ptr(c, kp.slot),
                                       slot(kp.slot).bytes, cudaMemcpyDeviceToHost, c.stream));
  ANVIL_CUDA_CHECK(cudaEventRecord(c.ev_end, c.stream));
  ++c.runs;
}

std::vector<Tensor> CudaExecutable::collect(Context& c) {
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(c.stream));
  c.pending = false;
  float ms = 0;
  ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, c.ev_start, c.ev_end));
  last_ms_ = ms;
  if (opt_.profile) {
    for (size_t i = 0; i < steps_.size(); ++i) {
      float t = 0;
      ANVIL_CUDA_CHECK(cudaEventElapsedTime(&t, c.step_ev[i], c.step_ev[i + 1]));
      prof_ms_[i] += t;
      ++prof_calls_[i];
    }
  }
  std::vector<Tensor> r;
  for (const Keep& kp : keeps_) {
    if (kp.host) {
      r.push_back(*kp.host);
      continue;
    }
    const Slot& s = slots_[static_cast<size_t>(kp.slot)];
    Tensor t(s.dtype, val(kp.value).shape);
    if (s.bytes) std::memcpy(t.raw(), c.out_stage.get() + kp.off, s.bytes);
    r.push_back(std::move(t));
  }
  return r;
}

int64_t CudaExecutable::submit(const std::vector<Tensor>& inputs) {
  if (inputs.size() != g_.inputs.size())
    throw Error("cuda backend: expected " + std::to_string(g_.inputs.size()) + " inputs, got " +
                    std::to_string(inputs.size()),
                g_.source_file);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = val(g_.inputs[i]);
    if (!inputs[i].defined() || inputs[i].dtype() != v.dtype || inputs[i].shape() != v.shape)
      throw Error("cuda backend: input '" + v.name + "' has shape " + shape_str(inputs[i].shape()) +
                      " " + dtype_name(inputs[i].dtype()) + ", compiled for " + shape_str(v.shape) +
                      " " + dtype_name(v.dtype),
                  g_.source_file, {}, "input");
  }
  const int64_t ticket = next_ticket_;
  Context& c = *ctx_[static_cast<size_t>(ticket % static_cast<int64_t>(ctx_.size()))];
  if (c.pending) done_[c.ticket] = collect(c);  // its previous run was not waited for yet
  launch(c, inputs);
  c.pending = true;
  c.ticket = ticket;
  ++next_ticket_;
  return ticket;
}

std::vector<Tensor> CudaExecutable::wait(int64_t ticket) {
  auto it = done_.find(ticket);
  if (it != done_.end()) {
    std::vector<Tensor> r = std::move(it->second);
    done_.erase(it);
    return r;
  }
  if (ticket < 0 || ticket >= next_ticket_) return {};
  Context& c = *ctx_[static_cast<size_t>(ticket % static_cast<int64_t>(ctx_.size()))];
  if (!c.pending || c.ticket != ticket) return {};
  // Earlier tickets complete first (tickets are waited for in order).
  for (auto& o : ctx_)
    if (o->pending && o->ticket < ticket) done_[o->ticket] = collect(*o);
  return collect(c);
}

std::vector<Executable::OpTime> CudaExecutable::profile() const {
  std::vector<OpTime> r;
  if (!opt_.profile) return r;
  for (size_t i = 0; i < steps_.size(); ++i)
    r.push_back(OpTime{steps_[i].name, steps_[i].op, prof_ms_[i], prof_calls_[i]});
  return r;
}

namespace {
const BackendRegistrar reg{
    Backend{"cuda", [](const Graph& g, const CompileOptions& o) -> std::unique_ptr<Executable> {
              return std::make_unique<CudaExecutable>(g, o);
            }}};

}  // namespace
}  // namespace anvil::cuda::exec
