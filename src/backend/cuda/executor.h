// The cuda backend's executor, shared by its core (executor.cpp: slots, layouts, compile
// driver and handler table, arena, contexts, CUDA graphs, run/submit/wait, profile) and its
// handler files (handlers_*.cpp, one per op family; handlers_fallback.cpp runs the rest on the
// host). How it works: docs/cuda_backend.md. Private to src/backend/cuda/.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/backend.h"
#include "backend/cuda/conv.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "ops/activation.h"

namespace anvil::cuda::exec {

/// Nhwc: channels last, for 4-D (N,H,W,C storage of NCHW) and 3-D tensors (N,W,C of NCW).
enum class Layout : uint8_t { Plain, Nhwc };

/// Channels-last storage of a tensor whose channel count or spatial size is 1 is
/// byte-identical to its row-major storage: such tensors are recorded as plain.
Layout effective(Layout l, const Shape& s);

enum class Kind : uint8_t { Arena, Device };

struct Slot {
  DType dtype = DType::f32;
  Shape shape;
  Layout layout = Layout::Plain;
  size_t bytes = 0;
  Kind kind = Kind::Arena;
  int buf = -1;       // Arena: buffer index
  int dev = -1;       // Device: index into device constants
  size_t offset = 0;  // bytes into the buffer
};

struct Buffer {
  size_t bytes = 0;
  int first = -1, last = -1;  // step indices
  size_t offset = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t n) : n_(n) {
    if (n) ANVIL_CUDA_CHECK(cudaHostAlloc(&p_, n, cudaHostAllocDefault));
  }
  ~PinnedBuffer() {
    if (p_) (void)cudaFreeHost(p_);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      if (p_) (void)cudaFreeHost(p_);
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  uint8_t* get() const { return static_cast<uint8_t*>(p_); }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

/// One in-flight run: its stream, activation arena, workspace, staging and CUDA graph.
struct Context {
  cudaStream_t stream = nullptr;
  DeviceBuffer arena, workspace;
  PinnedBuffer in_stage, out_stage, host;  // inputs, kept outputs, fallback tensors
  cudaEvent_t ev_start = nullptr, ev_end = nullptr;
  std::vector<cudaEvent_t> step_ev;  // profile: one before every step and one at the end
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool no_graph = false;
  int runs = 0;
  bool pending = false;
  int64_t ticket = -1;
};

struct Step;
using Enqueue = std::function<void(const Context&, cudaStream_t)>;

struct Step {
  std::string name, op;
  Enqueue fn;  // GPU work
  // fallback
  bool fallback = false;
  const Node* node = nullptr;
  const OpDef* def = nullptr;
  std::vector<int> ins, outs;            // slots (-1: omitted input or a host constant)
  std::vector<const Tensor*> const_ins;  // host constants (nullptr where the slot is used)
  std::vector<size_t> host_off;          // per input then per output: offset in Context::host
};

struct UnaryFn {
  Unary op = Unary::Identity;
  float alpha = 0, beta = 0;
  std::string name;
};

/// Clamps to the float range (NaN and infinities kept).
float to_f(double v);
bool float_type(DType t);
/// Types strided_copy moves (float types, i32, i64, u8, i8, bool).
bool copy_type(DType t);
/// The activation a node computes, as a Unary, or nullopt.
std::optional<UnaryFn> unary_of(const Graph& g, const Node& n);
/// A fused activation (ops/activation.h) as a Unary; nullopt where the executor has none.
std::optional<UnaryFn> fused_unary(const FusedActivation& fa);
/// A node's fused activation attributes (fuse_activations pass) as a Unary.
std::optional<UnaryFn> fused_attr(const Node& n);
/// Drops size-1 dims and merges dims contiguous in every stride set; false when the result
/// has more than kMaxRank dims. `strides` are per dim of `shape`.
bool simplify(Shape& shape, std::vector<std::vector<int64_t>*> strides);
std::vector<int64_t> row_major(const Shape& s);
/// Element strides per canonical (logical) dim of a slot's storage.
std::vector<int64_t> logical_strides(const Slot& s);
/// Physical dim order of a slot (logical dim of each physical dim).
std::vector<int> physical_order(const Slot& s);

class CudaExecutable : public Executable {
 public:
  CudaExecutable(const Graph& g, const CompileOptions& opt);
  ~CudaExecutable() override;
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override {
    return wait(submit(inputs));
  }
  int64_t submit(const std::vector<Tensor>& inputs) override;
  std::vector<Tensor> wait(int64_t ticket) override;
  std::vector<OpTime> profile() const override;
  double last_device_ms() const override { return last_ms_; }

 private:
  const Graph& g_;
  CompileOptions opt_;
  std::vector<Slot> slots_;
  std::vector<Buffer> bufs_;
  std::vector<Step> steps_;
  std::vector<DeviceBuffer> dev_;  // weights and constants, shared by every context
  std::vector<std::unique_ptr<ConvPlan>> conv_plans_;
  std::vector<std::unique_ptr<GemmPlan>> gemm_plans_;
  size_t workspace_bytes_ = 0;
  std::vector<int> vslot_;              // value -> slot as produced
  std::vector<std::vector<int>> valt_;  // value -> copies in other layouts
  std::vector<std::vector<int>> uses_;
  std::vector<bool> kept_, consumed_;
  std::vector<int> input_slots_;
  std::vector<size_t> in_off_;  // per graph input: offset in in_stage
  size_t in_bytes_ = 0;
  struct Keep {
    int value = -1, slot = -1;
    const Tensor* host = nullptr;  // a constant kept as it is
    size_t off = 0;
  };
  std::vector<Keep> keeps_;
  size_t out_bytes_ = 0, host_bytes_ = 0;
  bool has_fallback_ = false;
  size_t arena_bytes_ = 0;
  std::vector<std::unique_ptr<Context>> ctx_;
  std::map<int64_t, std::vector<Tensor>> done_;  // results collected before wait()
  int64_t next_ticket_ = 0;
  double last_ms_ = -1;
  std::vector<double> prof_ms_;
  std::vector<int64_t> prof_calls_;
  std::shared_ptr<void> keepalive_ = std::make_shared<int>(0);
  DType ty_ = DType::f32;  // storage dtype of the node being compiled

  const Value& val(int v) const { return g_.values[static_cast<size_t>(v)]; }
  Slot& slot(int s) { return slots_[static_cast<size_t>(s)]; }
  int cur() const { return static_cast<int>(steps_.size()); }

  // ---- pointers (per context)
  void* ptr(const Context& c, int s) const {
    const Slot& sl = slots_[static_cast<size_t>(s)];
    if (sl.kind == Kind::Device)
      return static_cast<uint8_t*>(dev_[static_cast<size_t>(sl.dev)].get()) + sl.offset;
    return static_cast<uint8_t*>(c.arena.get()) + bufs_[static_cast<size_t>(sl.buf)].offset +
           sl.offset;
  }

  // ---- slots
  void touch(int s) {
    Slot& sl = slot(s);
    if (sl.kind == Kind::Arena) {
      Buffer& b = bufs_[static_cast<size_t>(sl.buf)];
      b.last = std::max(b.last, cur());
    }
  }
  int add_slot(Slot s) {
    slots_.push_back(std::move(s));
    return static_cast<int>(slots_.size()) - 1;
  }
  int new_slot(DType dt, const Shape& shape, Layout l) {
    const int64_t numel = shape_numel(shape);
    if (static_cast<uint64_t>(numel) > (uint64_t{1} << 40) / dtype_size(dt))
      throw Error("tensor of shape " + shape_str(shape) + " is too large to allocate");
    Slot s;
    s.dtype = dt;
    s.shape = shape;
    s.layout = effective(l, shape);
    s.bytes = static_cast<size_t>(numel) * dtype_size(dt);
    Buffer b;
    b.bytes = std::max<size_t>(s.bytes, 1);
    b.first = b.last = cur();
    bufs_.push_back(b);
    s.buf = static_cast<int>(bufs_.size()) - 1;
    return add_slot(std::move(s));
  }
  int device_slot(const Tensor& t) {
    dev_.push_back(upload(t));
    Slot s;
    s.dtype = t.dtype();
    s.shape = t.shape();
    s.bytes = t.nbytes();
    s.kind = Kind::Device;
    s.dev = static_cast<int>(dev_.size()) - 1;
    return add_slot(std::move(s));
  }
  int view_of(int s, const Shape& shape) {
    Slot v = slot(s);
    v.shape = shape;
    v.layout = Layout::Plain;
    return add_slot(std::move(v));
  }
  int slot_of(int v);
  int as_layout(int v, Layout l);
  int plain_of(int v) { return as_layout(v, Layout::Plain); }
  void set_out(int v, int s) { vslot_[static_cast<size_t>(v)] = s; }

  // ---- steps
  void push(const std::string& name, const std::string& op, std::vector<int> touched, Enqueue fn) {
    for (int s : touched)
      if (s >= 0) touch(s);
    Step st;
    st.name = name;
    st.op = op;
    st.fn = std::move(fn);
    steps_.push_back(std::move(st));
  }
  /// dst[logical idx] = src[logical idx] over `shape` with the given logical strides and
  /// element offsets (any layouts, dtype conversion). False when it needs rank > kMaxRank.
  bool push_copy(const std::string& name, const std::string& op, int src, int64_t src_off,
                 std::vector<int64_t> sst, int dst, int64_t dst_off, std::vector<int64_t> dstt,
                 Shape shape);
  /// Single-consumer activation following value y (not kept), or nullopt.
  std::optional<UnaryFn> following_act(int y, int& out_v, int& node) const;
  /// Pushes the step of a ConvPlan or GemmPlan (`run(stream, x, w, bias, z, y, workspace)`;
  /// slots x, w, bias, z with -1 for an absent operand), the activation that follows it, and
  /// records `dst` as out_v's slot and the fused nodes as consumed. Returns true.
  template <class Plan>
  bool push_plan(const std::string& name, const std::string& op, const Plan* pl,
                 std::array<int, 4> in, int dst, int out_v, const std::optional<UnaryFn>& after,
                 const std::vector<int>& fused) {
    push(name, op, {in[0], in[1], in[2], in[3], dst},
         [this, pl, in, dst](const Context& c, cudaStream_t s) {
           auto p = [&](int slot) { return slot >= 0 ? ptr(c, slot) : nullptr; };
           pl->run(s, p(in[0]), p(in[1]), p(in[2]), p(in[3]), ptr(c, dst), c.workspace.get());
         });
    if (after) push_unary(name, op, *after, dst, dst);
    set_out(out_v, dst);
    for (int f : fused) consumed_[static_cast<size_t>(f)] = true;
    return true;
  }
  void push_unary(const std::string& name, const std::string& op, const UnaryFn& f, int src,
                  int dst);

  /// Which checks compile_node makes before calling a handler. View: the node's shapes are
  /// known. Copy: also an output, whose dtype becomes ty_. Float: also a float ty_ and no
  /// empty input or output.
  enum class Gate : uint8_t { View, Copy, Float };
  using Handler = bool (*)(CudaExecutable& e, int node);
  struct HandlerRow {
    Gate gate;
    Handler fn;
  };
  /// The handler table (executor.cpp): op -> handler; adding an op on the GPU is one handler
  /// (a handlers_*.cpp file) and one row there.
  static const std::map<std::string, HandlerRow>& handlers();
  bool compile_node(int ni);
  bool do_conv(int ni, bool transpose);
  bool do_pool(int ni);
  bool do_gemm(int ni);
  bool do_matmul(int ni);
  bool do_unary(int ni);
  bool do_binary(int ni);
  bool do_concat(int ni);
  bool do_split(int ni);
  bool do_slice(int ni);
  bool do_transpose(int ni);
  bool do_softmax(int ni);
  bool do_lrn(int ni);
  bool do_batchnorm(int ni);
  bool do_reduce(int ni);
  bool do_pad(int ni);
  bool do_resize(int ni);
  bool do_view(int ni);
  bool do_cast(int ni);
  void do_fallback(int ni);
  void layout_arena();
  Context& make_context();
  void launch(Context& c, const std::vector<Tensor>& inputs);
  std::vector<Tensor> collect(Context& c);
  void run_fallback(const Context& c, const Step& st);
  void run_steps(Context& c, bool timed);
};

}  // namespace anvil::cuda::exec
