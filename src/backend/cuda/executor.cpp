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
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/arena.h"
#include "backend/backend.h"
#include "backend/cuda/conv.h"
#include "backend/cuda/cuda_util.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "ops/nn_util.h"
#include "ops/activation.h"

namespace anvil::cuda {
namespace {

/// Nhwc: channels last, for 4-D (N,H,W,C storage of NCHW) and 3-D tensors (N,W,C of NCW).
enum class Layout : uint8_t { Plain, Nhwc };

/// Channels-last storage of a tensor whose channel count or spatial size is 1 is
/// byte-identical to its row-major storage: such tensors are recorded as plain.
Layout effective(Layout l, const Shape& s) {
  if (l != Layout::Nhwc || s.size() < 3 || s.size() > 4) return Layout::Plain;
  int64_t sp = 1;
  for (size_t i = 2; i < s.size(); ++i) sp *= s[i];
  return s[1] == 1 || sp == 1 ? Layout::Plain : Layout::Nhwc;
}

enum class Kind : uint8_t { Arena, Device };

struct Slot {
  DType dtype = DType::f32;
  Shape shape;
  Layout layout = Layout::Plain;
  size_t bytes = 0;
  Kind kind = Kind::Arena;
  int buf = -1;        // Arena: buffer index
  int dev = -1;        // Device: index into device constants
  size_t offset = 0;   // bytes into the buffer
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
  PinnedBuffer(PinnedBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
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
  std::vector<int> ins, outs;  // slots (-1: omitted input or a host constant)
  std::vector<const Tensor*> const_ins;  // host constants (nullptr where the slot is used)
  std::vector<size_t> host_off;          // per input then per output: offset in Context::host
};

struct UnaryFn {
  Unary op = Unary::Identity;
  float alpha = 0, beta = 0;
  std::string name;
};

float to_f(double v) {
  if (std::isnan(v) || std::isinf(v)) return static_cast<float>(v);
  const double lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
  return static_cast<float>(std::clamp(v, lo, hi));
}

bool float_type(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }
bool copy_type(DType t) {
  return float_type(t) || t == DType::i32 || t == DType::i64 || t == DType::u8 ||
         t == DType::i8 || t == DType::boolean;
}

/// The activation a node computes, as a Unary, or nullopt.
std::optional<UnaryFn> unary_of(const Graph& g, const Node& n) {
  if (n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0] < 0) return std::nullopt;
  const std::string& op = n.op;
  const Attributes& a = n.attrs;
  UnaryFn f;
  f.name = op;
  if (op == "Clip") {
    double lo = -INFINITY, hi = INFINITY;
    for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
      int v = n.inputs[i];
      if (v < 0) continue;
      const Value& cv = g.values[static_cast<size_t>(v)];
      if (!cv.is_constant() || cv.constant.numel() != 1) return std::nullopt;
      (i == 1 ? lo : hi) = cv.constant.get(0);
    }
    f.op = Unary::Clip;
    f.alpha = to_f(lo);
    f.beta = to_f(hi);
    return f;
  }
  if (n.inputs.size() != 1) return std::nullopt;
  static const std::map<std::string, Unary> plain = {
      {"Relu", Unary::Relu},         {"Sigmoid", Unary::Sigmoid},     {"HardSwish", Unary::HardSwish},
      {"Tanh", Unary::Tanh},         {"Softplus", Unary::Softplus},   {"Softsign", Unary::Softsign},
      {"Exp", Unary::Exp},           {"Log", Unary::Log},             {"Sqrt", Unary::Sqrt},
      {"Abs", Unary::Abs},           {"Neg", Unary::Neg},             {"Reciprocal", Unary::Reciprocal},
      {"Mish", Unary::Mish},         {"Floor", Unary::Floor},         {"Ceil", Unary::Ceil},
      {"Round", Unary::Round},       {"Erf", Unary::Erf},             {"Sin", Unary::Sin},
      {"Cos", Unary::Cos},           {"Sign", Unary::Sign}};
  auto it = plain.find(op);
  if (it != plain.end()) {
    f.op = it->second;
    return f;
  }
  if (op == "LeakyRelu") f.op = Unary::LeakyRelu, f.alpha = to_f(a.get_float("alpha", 0.01));
  else if (op == "Elu") f.op = Unary::Elu, f.alpha = to_f(a.get_float("alpha", 1.0));
  else if (op == "Celu") f.op = Unary::Celu, f.alpha = to_f(a.get_float("alpha", 1.0));
  else if (op == "ThresholdedRelu") f.op = Unary::ThresholdedRelu, f.alpha = to_f(a.get_float("alpha", 1.0));
  else if (op == "Selu") {
    f.op = Unary::Selu;
    f.alpha = to_f(a.get_float("alpha", 1.67326319217681884765625));
    f.beta = to_f(a.get_float("gamma", 1.05070102214813232421875));
  } else if (op == "HardSigmoid") {
    f.op = Unary::HardSigmoid;
    f.alpha = to_f(a.get_float("alpha", 0.2));
    f.beta = to_f(a.get_float("beta", 0.5));
  } else if (op == "Gelu") {
    std::string ap = a.get_string("approximate", "none");
    if (ap == "none") f.op = Unary::Gelu;
    else if (ap == "tanh") f.op = Unary::GeluTanh;
    else return std::nullopt;
  } else {
    return std::nullopt;
  }
  return f;
}

/// A node's fused activation attribute (fuse_activations pass) as a Unary.
std::optional<UnaryFn> fused_attr(const Node& n) {
  nn::FusedActivation fa = nn::read_activation(n.op, n.attrs);
  UnaryFn f;
  f.name = fa.name;
  if (fa.name.empty()) return f;
  if (fa.name == "Relu") f.op = Unary::Relu;
  else if (fa.name == "Clip") f.op = Unary::Clip, f.alpha = to_f(fa.alpha), f.beta = to_f(fa.beta);
  else if (fa.name == "LeakyRelu") f.op = Unary::LeakyRelu, f.alpha = to_f(fa.alpha);
  else if (fa.name == "Sigmoid") f.op = Unary::Sigmoid;
  else if (fa.name == "Tanh") f.op = Unary::Tanh;
  else if (fa.name == "HardSigmoid") f.op = Unary::HardSigmoid, f.alpha = to_f(fa.alpha), f.beta = to_f(fa.beta);
  else if (fa.name == "Elu") f.op = Unary::Elu, f.alpha = to_f(fa.alpha);
  else return std::nullopt;
  return f;
}

/// Drops size-1 dims and merges dims contiguous in every stride set; false when the result
/// has more than kMaxRank dims. `strides` are per dim of `shape`.
bool simplify(Shape& shape, std::vector<std::vector<int64_t>*> strides) {
  Shape s;
  std::vector<std::vector<int64_t>> st(strides.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 1) continue;
    if (!s.empty()) {
      bool merge = true;
      for (size_t k = 0; k < strides.size(); ++k)
        merge &= st[k].back() == (*strides[k])[i] * shape[i];
      if (merge) {
        s.back() *= shape[i];
        for (size_t k = 0; k < strides.size(); ++k) st[k].back() = (*strides[k])[i];
        continue;
      }
    }
    s.push_back(shape[i]);
    for (size_t k = 0; k < strides.size(); ++k) st[k].push_back((*strides[k])[i]);
  }
  if (s.empty()) {
    s.push_back(1);
    for (auto& v : st) v.push_back(1);
  }
  shape = s;
  for (size_t k = 0; k < strides.size(); ++k) *strides[k] = st[k];
  return static_cast<int>(shape.size()) <= kMaxRank;
}

std::vector<int64_t> row_major(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t m = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = m;
    m *= s[i];
  }
  return st;
}

/// Element strides per canonical (logical) dim of a slot's storage.
std::vector<int64_t> logical_strides(const Slot& s) {
  if (s.layout == Layout::Nhwc && s.shape.size() == 4) {
    const int64_t C = s.shape[1], H = s.shape[2], W = s.shape[3];
    return {H * W * C, 1, W * C, C};
  }
  if (s.layout == Layout::Nhwc && s.shape.size() == 3) {
    const int64_t C = s.shape[1], W = s.shape[2];
    return {W * C, 1, C};
  }
  return row_major(s.shape);
}

/// Physical dim order of a slot (logical dim of each physical dim).
std::vector<int> physical_order(const Slot& s) {
  if (s.layout == Layout::Nhwc && s.shape.size() == 4) return {0, 2, 3, 1};
  if (s.layout == Layout::Nhwc && s.shape.size() == 3) return {0, 2, 1};
  std::vector<int> o(s.shape.size());
  std::iota(o.begin(), o.end(), 0);
  return o;
}

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
  std::vector<int> vslot_;                       // value -> slot as produced
  std::vector<std::vector<int>> valt_;           // value -> copies in other layouts
  std::vector<std::vector<int>> uses_;
  std::vector<bool> kept_, consumed_;
  std::vector<int> input_slots_;
  std::vector<size_t> in_off_;                   // per graph input: offset in in_stage
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
  void push_unary(const std::string& name, const std::string& op, const UnaryFn& f, int src, int dst);

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
  throw Error("cuda backend: tensor '" + x.name + "' is used before it is computed", g_.source_file);
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
                               int64_t src_off, std::vector<int64_t> sst, int dst,
                               int64_t dst_off, std::vector<int64_t> dstt, Shape shape) {
  if (!copy_type(slot(src).dtype) || !copy_type(slot(dst).dtype)) return false;
  // Order the dims by destination stride (innermost last) so that writes are contiguous.
  std::vector<size_t> order(shape.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::abs(dstt[a]) > std::abs(dstt[b]);
  });
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
  push(name, op, {src, dst}, [this, src, dst, st, dt, so, doff, d](const Context& c, cudaStream_t s) {
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
// Op handlers. Each checks everything it needs before pushing a step; returning false runs the
// node on its reference kernel instead.
// ---------------------------------------------------------------------------------------------

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
  const Attributes& at = n.attrs;
  auto strides = at.get_ints("strides", std::vector<int64_t>(nsp, 1));
  auto dil = at.get_ints("dilations", std::vector<int64_t>(nsp, 1));
  auto pads = at.get_ints("pads", std::vector<int64_t>(2 * nsp, 0));
  const int64_t group = at.get_int("group", 1);
  if (strides.size() != nsp || dil.size() != nsp || pads.size() != 2 * nsp || group < 1) return false;
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
  auto fa = fused_attr(n);
  if (!fa) return false;
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
    if (at.has("output_shape")) {
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
    if (clamped_relu(*fa)) set_relu(*fa);
    else after = fa;
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

bool CudaExecutable::do_pool(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.empty()) return false;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && (!uses_[static_cast<size_t>(n.outputs[i])].empty() ||
                              kept_[static_cast<size_t>(n.outputs[i])]))
      return false;  // MaxPool's Indices
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_) return false;
  const size_t rank = val(x).shape.size();
  if ((rank != 3 && rank != 4) || val(y).shape.size() != rank) return false;
  const size_t nsp = rank - 2;
  // 1-D pooling is the 2-D one of (N, C, 1, W) (the same channels-last bytes).
  Shape xs = val(x).shape, ys = val(y).shape;
  if (nsp == 1) {
    xs.insert(xs.begin() + 2, 1);
    ys.insert(ys.begin() + 2, 1);
  }
  const bool global = n.op == "GlobalAveragePool" || n.op == "GlobalMaxPool";
  const bool is_max = n.op == "MaxPool" || n.op == "GlobalMaxPool";
  const Attributes& at = n.attrs;
  auto k = global ? std::vector<int64_t>(nsp, 1) : at.get_ints("kernel_shape");
  auto st = at.get_ints("strides", std::vector<int64_t>(nsp, 1));
  auto d = at.get_ints("dilations", std::vector<int64_t>(nsp, 1));
  auto pads = at.get_ints("pads", std::vector<int64_t>(2 * nsp, 0));
  if (k.size() != nsp || st.size() != nsp || d.size() != nsp || pads.size() != 2 * nsp) return false;
  if (!global && at.get_int("storage_order", 0) != 0) return false;
  if (nsp == 1) {
    k.insert(k.begin(), 1);
    st.insert(st.begin(), 1);
    d.insert(d.begin(), 1);
    pads = {0, pads[0], 0, pads[1]};
  }
  const int xslot = as_layout(x, Layout::Nhwc);
  const int dst = new_slot(ty_, val(y).shape, Layout::Nhwc);
  const DType dt = ty_;
  if (global) {
    const int nn_ = static_cast<int>(xs[0]), c = static_cast<int>(xs[1]);
    const int64_t hw = xs[2] * xs[3];
    push(n.name, n.op, {xslot, dst}, [this, is_max, nn_, hw, c, dt, xslot, dst](const Context& cx, cudaStream_t s) {
      global_pool_nhwc(is_max, nn_, hw, c, dt, ptr(cx, xslot), ptr(cx, dst), s);
    });
    set_out(y, dst);
    return true;
  }
  Pool2d p;
  p.n = static_cast<int>(xs[0]);
  p.c = static_cast<int>(xs[1]);
  p.h = static_cast<int>(xs[2]);
  p.w = static_cast<int>(xs[3]);
  p.oh = static_cast<int>(ys[2]);
  p.ow = static_cast<int>(ys[3]);
  p.kh = static_cast<int>(k[0]);
  p.kw = static_cast<int>(k[1]);
  p.sh = static_cast<int>(st[0]);
  p.sw = static_cast<int>(st[1]);
  p.dh = static_cast<int>(d[0]);
  p.dw = static_cast<int>(d[1]);
  p.pad_top = static_cast<int>(pads[0]);
  p.pad_left = static_cast<int>(pads[1]);
  p.pad_bottom = static_cast<int>(pads[2]);
  p.pad_right = static_cast<int>(pads[3]);
  p.max = is_max;
  p.count_include_pad = at.get_int("count_include_pad", 0) != 0;
  push(n.name, n.op, {xslot, dst}, [this, p, dt, xslot, dst](const Context& c, cudaStream_t s) {
    pool2d_nhwc(p, dt, ptr(c, xslot), ptr(c, dst), s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_gemm(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], c = n.inputs.size() > 2 ? n.inputs[2] : -1;
  const int y = n.outputs[0];
  if (a < 0 || b < 0 || val(a).dtype != ty_ || val(b).dtype != ty_) return false;
  const Attributes& at = n.attrs;
  const bool ta = at.get_int("transA", 0) != 0, tb = at.get_int("transB", 0) != 0;
  const double alpha = at.get_float("alpha", 1.0), beta = at.get_float("beta", 1.0);
  const Shape& as = val(a).shape;
  const Shape& bs = val(b).shape;
  if (as.size() != 2 || bs.size() != 2 || val(y).shape.size() != 2) return false;
  GemmParams p;
  p.m = ta ? as[1] : as[0];
  p.k = ta ? as[0] : as[1];
  p.n = tb ? bs[0] : bs[1];
  if ((tb ? bs[1] : bs[0]) != p.k) return false;
  p.trans_a = ta;
  p.trans_b = tb;
  p.dtype = ty_;
  p.alpha = to_f(alpha);
  auto fa = fused_attr(n);
  if (!fa) return false;
  std::string opname = n.op;
  std::optional<UnaryFn> after;
  int out_v = y;
  std::vector<int> fused;
  if (!fa->name.empty()) {
    opname += "+" + fa->name;
    if (fa->op == Unary::Relu) p.epilogue = GemmParams::Epilogue::Relu;
    else after = fa;
  } else {
    int ov, an;
    auto f = following_act(y, ov, an);
    if (f) {
      opname += "+" + f->name;
      fused.push_back(an);
      out_v = ov;
      if (f->op == Unary::Relu) p.epilogue = GemmParams::Epilogue::Relu;
      else if (f->op == Unary::Gelu) p.epilogue = GemmParams::Epilogue::Gelu;
      else if (f->op == Unary::GeluTanh) p.epilogue = GemmParams::Epilogue::GeluTanh;
      else after = f;
    }
  }
  // C: a row (N), (1, N) or a scalar becomes the bias; a full (M, N) C is added with beta.
  Tensor bias;
  int cslot = -1;
  if (c >= 0 && beta != 0) {
    const Shape& cs = val(c).shape;
    const int64_t cn = shape_numel(cs);
    const bool row = cn == 1 || (cn == p.n && (cs.size() == 1 || (cs.size() == 2 && cs[0] == 1)));
    if (val(c).is_constant() && row) {
      const DType bt = ty_ == DType::f32 ? DType::f32 : ty_;
      Tensor bf(DType::f32, {p.n});
      for (int64_t i = 0; i < p.n; ++i)
        bf.data<float>()[i] = static_cast<float>(beta * val(c).constant.get(cn == 1 ? 0 : i));
      bias = bf.to(bt);
      p.has_bias = true;
    } else if (cs == Shape{p.m, p.n} && val(c).dtype == ty_) {
      p.has_c = true;
      p.beta = to_f(beta);
    } else {
      return false;
    }
  }
  std::unique_ptr<GemmPlan> plan;
  try {
    plan = std::make_unique<GemmPlan>(p, n.name);
  } catch (const Error&) {
    return false;
  }
  const GemmPlan* pl = plan.get();
  workspace_bytes_ = std::max(workspace_bytes_, plan->workspace_bytes());
  gemm_plans_.push_back(std::move(plan));
  const int sa = plain_of(a), sb = plain_of(b);
  const int sbias = bias.defined() ? device_slot(bias) : -1;
  if (p.has_c) cslot = plain_of(c);
  const int dst = new_slot(ty_, val(out_v).shape, Layout::Plain);
  return push_plan(n.name, opname, pl, {sa, sb, sbias, cslot}, dst, out_v, after, fused);
}

bool CudaExecutable::do_matmul(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  if (a < 0 || b < 0 || val(a).dtype != ty_ || val(b).dtype != ty_) return false;
  const Shape& as = val(a).shape;
  const Shape& bs = val(b).shape;
  const Shape& ys = val(y).shape;
  if (as.empty() || bs.empty()) return false;
  GemmParams p;
  p.dtype = ty_;
  p.m = as.size() == 1 ? 1 : as[as.size() - 2];
  p.k = as.back();
  p.n = bs.size() == 1 ? 1 : bs.back();
  const int64_t bk = bs.size() == 1 ? bs[0] : bs[bs.size() - 2];
  if (bk != p.k) return false;
  // Batch dims: each operand's are either the output's (contiguous matrices) or all 1.
  const size_t yb = ys.size() >= 2 && as.size() >= 2 && bs.size() >= 2 ? ys.size() - 2
                    : (as.size() == 1 && bs.size() == 1) ? 0
                                                         : ys.size() - 1;
  Shape ybatch(ys.begin(), ys.begin() + static_cast<std::ptrdiff_t>(yb));
  p.batch = shape_numel(ybatch);
  auto batch_stride = [&](const Shape& s, int64_t mat) -> std::optional<int64_t> {
    if (s.size() <= 2) return 0;
    Shape sb(s.begin(), s.end() - 2);
    if (shape_numel(sb) == 1) return 0;
    // equal once leading 1s are dropped
    while (!sb.empty() && sb.front() == 1) sb.erase(sb.begin());
    Shape yy = ybatch;
    while (!yy.empty() && yy.front() == 1) yy.erase(yy.begin());
    if (sb != yy) return std::nullopt;
    return mat;
  };
  auto sa_ = batch_stride(as, p.m * p.k), sb_ = batch_stride(bs, p.k * p.n);
  if (!sa_ || !sb_) return false;
  p.stride_a = *sa_;
  p.stride_b = *sb_;
  p.stride_y = p.m * p.n;
  if (p.batch * p.m * p.n != shape_numel(ys)) return false;
  auto fa = fused_attr(n);
  if (!fa) return false;
  std::string opname = n.op;
  std::optional<UnaryFn> after;
  int out_v = y;
  std::vector<int> fused;
  if (!fa->name.empty()) {
    opname += "+" + fa->name;
    if (fa->op == Unary::Relu) p.epilogue = GemmParams::Epilogue::Relu;
    else after = fa;
  } else {
    int ov, an;
    auto f = following_act(y, ov, an);
    if (f && (f->op == Unary::Relu || f->op == Unary::Gelu || f->op == Unary::GeluTanh)) {
      opname += "+" + f->name;
      fused.push_back(an);
      out_v = ov;
      p.epilogue = f->op == Unary::Relu   ? GemmParams::Epilogue::Relu
                   : f->op == Unary::Gelu ? GemmParams::Epilogue::Gelu
                                          : GemmParams::Epilogue::GeluTanh;
    }
  }
  std::unique_ptr<GemmPlan> plan;
  try {
    plan = std::make_unique<GemmPlan>(p, n.name);
  } catch (const Error&) {
    return false;
  }
  const GemmPlan* pl = plan.get();
  workspace_bytes_ = std::max(workspace_bytes_, plan->workspace_bytes());
  gemm_plans_.push_back(std::move(plan));
  const int sa = plain_of(a), sb = plain_of(b);
  const int dst = new_slot(ty_, val(out_v).shape, Layout::Plain);
  return push_plan(n.name, opname, pl, {sa, sb, -1, -1}, dst, out_v, after, fused);
}

bool CudaExecutable::do_unary(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  auto f = unary_of(g_, n);
  if (!f) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (val(x).dtype != ty_ || val(x).shape != val(y).shape) return false;
  const int xs = slot_of(x);
  const int dst = new_slot(ty_, val(y).shape, slot(xs).layout);
  push_unary(n.name, n.op, *f, xs, dst);
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_binary(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 2 || n.outputs.size() != 1) return false;
  const int a = n.inputs[0], b = n.inputs[1], y = n.outputs[0];
  if (a < 0 || b < 0 || val(a).dtype != ty_ || val(b).dtype != ty_) return false;
  static const std::map<std::string, Binary> ops = {
      {"Add", Binary::Add}, {"Sum", Binary::Add}, {"Sub", Binary::Sub}, {"Mul", Binary::Mul},
      {"Div", Binary::Div}, {"Pow", Binary::Pow}, {"Max", Binary::Max}, {"Min", Binary::Min},
      {"PRelu", Binary::PRelu}};
  const Binary op = ops.at(n.op);
  const Shape& ys = val(y).shape;
  const size_t r = ys.size();
  if (r > static_cast<size_t>(kMaxRank) * 2 || val(a).shape.size() > r || val(b).shape.size() > r)
    return false;
  const int sa = slot_of(a), sb = slot_of(b);
  // The output takes the layout of a full-size operand (NHWC where one is).
  Layout lo = Layout::Plain;
  for (int s : {sa, sb})
    if (slot(s).shape == ys && slot(s).layout == Layout::Nhwc) lo = Layout::Nhwc;
  std::string opname = n.op;
  int out_v = y, an = -1;
  UnaryFn post;
  auto f = following_act(y, out_v, an);
  if (f) {
    post = *f;
    opname += "+" + f->name;
  }
  const int dst = new_slot(ty_, val(out_v).shape, lo);
  const Slot& ds = slot(dst);
  // Per output physical dim: the output's extent and each operand's stride.
  const std::vector<int> order = physical_order(ds);
  auto aligned = [&](int s) {
    const Slot& sl = slot(s);
    std::vector<int64_t> st = logical_strides(sl), full(r, 0);
    const size_t off = r - sl.shape.size();
    for (size_t i = 0; i < sl.shape.size(); ++i)
      full[off + i] = sl.shape[i] == 1 && ys[off + i] != 1 ? 0 : st[i];
    return full;
  };
  const auto fa_ = aligned(sa), fb_ = aligned(sb);
  Shape shape;
  std::vector<int64_t> as_, bs_, ys_;
  const auto yst = row_major([&] {
    Shape ph;
    for (int l : order) ph.push_back(ys[static_cast<size_t>(l)]);
    return ph;
  }());
  for (size_t i = 0; i < order.size(); ++i) {
    const size_t l = static_cast<size_t>(order[i]);
    shape.push_back(ys[l]);
    as_.push_back(fa_[l]);
    bs_.push_back(fb_[l]);
    ys_.push_back(yst[i]);
  }
  if (!simplify(shape, {&as_, &bs_, &ys_})) return false;
  Broadcast d;
  d.rank = static_cast<int>(shape.size());
  for (int i = 0; i < d.rank; ++i) {
    d.shape[i] = shape[static_cast<size_t>(i)];
    d.a_stride[i] = as_[static_cast<size_t>(i)];
    d.b_stride[i] = bs_[static_cast<size_t>(i)];
  }
  const DType dt = ty_;
  push(n.name, opname, {sa, sb, dst}, [this, op, dt, sa, sb, dst, d, post](const Context& c, cudaStream_t s) {
    binary(op, dt, ptr(c, sa), ptr(c, sb), ptr(c, dst), d, post.op, post.alpha, post.beta, s);
  });
  set_out(out_v, dst);
  if (an >= 0) consumed_[static_cast<size_t>(an)] = true;
  return true;
}

bool CudaExecutable::do_concat(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.size() != 1) return false;
  const int y = n.outputs[0];
  const Shape& ys = val(y).shape;
  const int r = static_cast<int>(ys.size());
  int64_t axis = n.attrs.get_int("axis");
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r || r > kMaxRank || !copy_type(val(y).dtype)) return false;
  Layout lo = Layout::Plain;
  for (int v : n.inputs) {
    if (v < 0 || val(v).dtype != val(y).dtype || static_cast<int>(val(v).shape.size()) != r) return false;
    if (vslot_[static_cast<size_t>(v)] >= 0 && slot(vslot_[static_cast<size_t>(v)]).layout == Layout::Nhwc)
      lo = Layout::Nhwc;
  }
  const int dst = new_slot(val(y).dtype, ys, lo);
  const auto dstt = logical_strides(slot(dst));
  int64_t off = 0;
  for (int v : n.inputs) {
    const int s = slot_of(v);
    const Shape& vs = slot(s).shape;
    if (shape_numel(vs) > 0 &&
        !push_copy(n.name, n.op, s, 0, logical_strides(slot(s)), dst,
                   off * dstt[static_cast<size_t>(axis)], dstt, vs))
      throw Error("cuda backend: concat copy of rank " + std::to_string(r));
    off += vs[static_cast<size_t>(axis)];
  }
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_split(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.inputs[0] < 0) return false;
  const int x = n.inputs[0];
  const Shape& xs = val(x).shape;
  const int r = static_cast<int>(xs.size());
  int64_t axis = n.attrs.get_int("axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r || r > kMaxRank || !copy_type(val(x).dtype)) return false;
  int64_t total = 0;
  for (int o : n.outputs) {
    if (o < 0 || val(o).dtype != val(x).dtype || static_cast<int>(val(o).shape.size()) != r) return false;
    total += val(o).shape[static_cast<size_t>(axis)];
  }
  if (total != xs[static_cast<size_t>(axis)]) return false;
  const int s = slot_of(x);
  const auto sst = logical_strides(slot(s));
  int64_t off = 0;
  // Check every copy fits before pushing any.
  for (int o : n.outputs) {
    Shape sh = val(o).shape;
    auto a = sst, b = row_major(sh);
    if (!simplify(sh, {&a, &b})) return false;
  }
  for (int o : n.outputs) {
    const Shape& os = val(o).shape;
    const int dst = new_slot(val(o).dtype, os, slot(s).layout);
    if (shape_numel(os) > 0 &&
        !push_copy(n.name, n.op, s, off * sst[static_cast<size_t>(axis)], sst, dst, 0,
                   logical_strides(slot(dst)), os))
      throw Error("cuda backend: split copy failed");
    off += os[static_cast<size_t>(axis)];
    set_out(o, dst);
  }
  return true;
}

bool CudaExecutable::do_slice(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 3 || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  const Shape& xs = val(x).shape;
  const Shape& ys = val(y).shape;
  const int r = static_cast<int>(xs.size());
  if (static_cast<int>(ys.size()) != r || !copy_type(val(x).dtype) || val(y).dtype != val(x).dtype)
    return false;
  auto ints = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return std::vector<int64_t>{};
    const Value& v = val(n.inputs[i]);
    if (!v.is_constant()) return std::nullopt;
    return v.constant.to_int64s();
  };
  auto starts = ints(1), ends = ints(2), axes = ints(3), steps = ints(4);
  if (!starts || !ends || !axes || !steps || starts->size() != ends->size()) return false;
  if (axes->empty())
    for (size_t i = 0; i < starts->size(); ++i) axes->push_back(static_cast<int64_t>(i));
  if (steps->empty()) steps->assign(starts->size(), 1);
  if (axes->size() != starts->size() || steps->size() != starts->size()) return false;
  std::vector<int64_t> begin(static_cast<size_t>(r), 0), step(static_cast<size_t>(r), 1);
  for (size_t i = 0; i < starts->size(); ++i) {
    int64_t ax = (*axes)[i];
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return false;
    const int64_t dim = xs[static_cast<size_t>(ax)], st = (*steps)[i];
    if (st == 0) return false;
    int64_t s = (*starts)[i];
    if (s < 0) s += dim;
    // ONNX clamping: [0, dim] for positive steps, [0, dim - 1] for negative ones.
    s = st > 0 ? std::clamp<int64_t>(s, 0, dim) : std::clamp<int64_t>(s, 0, dim - 1);
    begin[static_cast<size_t>(ax)] = s;
    step[static_cast<size_t>(ax)] = st;
  }
  const int src = slot_of(x);
  auto sst = logical_strides(slot(src));
  int64_t off = 0;
  for (int i = 0; i < r; ++i) {
    const size_t u = static_cast<size_t>(i);
    if (ys[u] > 0 && (begin[u] + (ys[u] - 1) * step[u] < 0 || begin[u] + (ys[u] - 1) * step[u] >= xs[u]))
      return false;  // the inferred shape disagrees with our reading: let the reference decide
    off += begin[u] * sst[u];
    sst[u] *= step[u];
  }
  const int dst = new_slot(val(y).dtype, ys, slot(src).layout);
  if (shape_numel(ys) > 0 && !push_copy(n.name, n.op, src, off, sst, dst, 0, logical_strides(slot(dst)), ys))
    return false;  // nothing pushed (push_copy checks before pushing)
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_transpose(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  const Shape& xs = val(x).shape;
  const size_t r = xs.size();
  std::vector<int64_t> perm = n.attrs.get_ints("perm", {});
  if (perm.empty())
    for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
  if (perm.size() != r || !copy_type(val(x).dtype)) return false;
  const int src = slot_of(x);
  // NCHW -> NHWC of an NHWC-stored tensor: the storage already is the result.
  const std::vector<int> po = physical_order(slot(src));
  if (slot(src).layout == Layout::Nhwc && perm == std::vector<int64_t>(po.begin(), po.end())) {
    set_out(y, view_of(src, val(y).shape));
    return true;
  }
  const auto xst = logical_strides(slot(src));
  std::vector<int64_t> sst(r);
  for (size_t i = 0; i < r; ++i) {
    if (perm[i] < 0 || perm[i] >= static_cast<int64_t>(r)) return false;
    sst[i] = xst[static_cast<size_t>(perm[i])];
  }
  const int dst = new_slot(val(y).dtype, val(y).shape, Layout::Plain);
  if (!push_copy(n.name, n.op, src, 0, sst, dst, 0, row_major(val(y).shape), val(y).shape))
    return false;
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_softmax(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_) return false;
  const Shape& xs = val(x).shape;
  const int r = static_cast<int>(xs.size());
  if (r < 1) return false;
  int64_t axis = n.attrs.get_int("axis", -1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  int src = slot_of(x);
  int64_t outer = 1, len = xs[static_cast<size_t>(axis)], inner = 1;
  Layout lo = Layout::Plain;
  if (slot(src).layout == Layout::Nhwc && axis == 1) {
    outer = shape_numel(xs) / xs[1];  // channels last: rows of C
    lo = Layout::Nhwc;
  } else {
    src = plain_of(x);
    for (int64_t i = 0; i < axis; ++i) outer *= xs[static_cast<size_t>(i)];
    for (int64_t i = axis + 1; i < r; ++i) inner *= xs[static_cast<size_t>(i)];
  }
  const int dst = new_slot(ty_, val(y).shape, lo);
  const bool lg = n.op == "LogSoftmax";
  const DType dt = ty_;
  push(n.name, n.op, {src, dst}, [this, lg, dt, src, dst, outer, len, inner](const Context& c, cudaStream_t s) {
    softmax(lg, dt, ptr(c, src), ptr(c, dst), outer, len, inner, s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_lrn(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_ || val(x).shape.size() != 4) return false;
  const int64_t size = n.attrs.get_int("size");
  if (size < 1) return false;
  const float alpha = to_f(n.attrs.get_float("alpha", 1e-4));
  const float beta = to_f(n.attrs.get_float("beta", 0.75));
  const float bias = to_f(n.attrs.get_float("bias", 1.0));
  const Shape& xs = val(x).shape;
  const int src = as_layout(x, Layout::Nhwc);
  const int dst = new_slot(ty_, xs, Layout::Nhwc);
  const int64_t pixels = xs[0] * xs[2] * xs[3];
  const int c = static_cast<int>(xs[1]), sz = static_cast<int>(size);
  const DType dt = ty_;
  push(n.name, n.op, {src, dst}, [=, this](const Context& cx, cudaStream_t s) {
    lrn_nhwc(pixels, c, sz, alpha, beta, bias, dt, ptr(cx, src), ptr(cx, dst), s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_batchnorm(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 5 || n.outputs.empty()) return false;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && (!uses_[static_cast<size_t>(n.outputs[i])].empty() ||
                              kept_[static_cast<size_t>(n.outputs[i])]))
      return false;
  if (n.attrs.get_int("training_mode", 0) != 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (x < 0 || val(x).dtype != ty_ || val(x).shape.size() < 2) return false;
  const Shape& xs = val(x).shape;
  const int64_t C = xs[1];
  for (int i = 1; i < 5; ++i) {
    const int v = n.inputs[static_cast<size_t>(i)];
    if (v < 0 || !val(v).is_constant() || val(v).constant.numel() != C) return false;
  }
  const double eps = n.attrs.get_float("epsilon", 1e-5);
  Tensor scale(DType::f32, {C}), shift(DType::f32, {C});
  auto cv = [&](int i, int64_t c) { return val(n.inputs[static_cast<size_t>(i)]).constant.get(c); };
  for (int64_t c = 0; c < C; ++c) {
    const double sc = cv(1, c) / std::sqrt(cv(4, c) + eps);
    scale.data<float>()[c] = static_cast<float>(sc);
    shift.data<float>()[c] = static_cast<float>(cv(2, c) - cv(3, c) * sc);
  }
  const int src = slot_of(x);
  int64_t outer, inner = 1;
  if (slot(src).layout == Layout::Nhwc) {
    outer = shape_numel(xs) / C;  // channels last: rows of C
  } else {
    outer = xs[0];
    for (size_t i = 2; i < xs.size(); ++i) inner *= xs[i];
  }
  std::string opname = n.op;
  int out_v = y, an = -1;
  UnaryFn post;
  auto f = following_act(y, out_v, an);
  if (f) {
    post = *f;
    opname += "+" + f->name;
  }
  const int ssl = device_slot(scale), hsl = device_slot(shift);
  const int dst = new_slot(ty_, xs, slot(src).layout);
  const DType dt = ty_;
  push(n.name, opname, {src, ssl, hsl, dst}, [=, this](const Context& c, cudaStream_t s) {
    channel_affine(dt, ptr(c, src), ptr(c, dst), static_cast<const float*>(ptr(c, ssl)),
                   static_cast<const float*>(ptr(c, hsl)), outer, C, inner, post.op, post.alpha,
                   post.beta, s);
  });
  set_out(out_v, dst);
  if (an >= 0) consumed_[static_cast<size_t>(an)] = true;
  return true;
}

bool CudaExecutable::do_reduce(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  static const std::map<std::string, int> kinds = {
      {"ReduceSum", 0}, {"ReduceMean", 1}, {"ReduceMax", 2}, {"ReduceMin", 3},
      {"ReduceSumSquare", 4}, {"ReduceLogSumExp", 7}};
  auto it = kinds.find(n.op);
  if (it == kinds.end() || n.inputs.empty() || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (val(x).dtype != ty_) return false;
  const Shape& xs = val(x).shape;
  const int r = static_cast<int>(xs.size());
  std::vector<int64_t> axes;
  if (n.inputs.size() > 1 && n.inputs[1] >= 0) {
    if (!val(n.inputs[1]).is_constant()) return false;
    axes = val(n.inputs[1]).constant.to_int64s();
  } else if (n.attrs.has("axes")) {
    axes = n.attrs.get_ints("axes");
  }
  if (axes.empty()) {
    if (n.attrs.get_int("noop_with_empty_axes", 0) != 0) return false;
    for (int i = 0; i < r; ++i) axes.push_back(i);
  }
  std::vector<bool> red(static_cast<size_t>(r), false);
  for (int64_t a : axes) {
    if (a < 0) a += r;
    if (a < 0 || a >= r) return false;
    red[static_cast<size_t>(a)] = true;
  }
  int src = slot_of(x);
  // Channels last with the spatial dims reduced: physical [N, H*W, C].
  bool nhwc_spatial = slot(src).layout == Layout::Nhwc && !red[0] && !red[1];
  for (int i = 2; i < r; ++i) nhwc_spatial = nhwc_spatial && red[static_cast<size_t>(i)];
  if (!nhwc_spatial) src = plain_of(x);
  const std::vector<int> order = physical_order(slot(src));
  int first = -1, last = -1;
  for (int i = 0; i < r; ++i)
    if (red[static_cast<size_t>(order[static_cast<size_t>(i)])] && xs[static_cast<size_t>(order[static_cast<size_t>(i)])] != 1) {
      if (first < 0) first = i;
      last = i;
    }
  int64_t outer = 1, len = 1, inner = 1;
  for (int i = 0; i < r; ++i) {
    const int64_t d = xs[static_cast<size_t>(order[static_cast<size_t>(i)])];
    const bool rd = red[static_cast<size_t>(order[static_cast<size_t>(i)])];
    if (first < 0) {
      outer *= d;
      continue;
    }
    if (i < first) outer *= d;
    else if (i > last) inner *= d;
    else if (!rd && d != 1) return false;  // reduced axes not contiguous
    else len *= d;
  }
  if (len == 0) return false;
  const int kind = it->second;
  const int dst = new_slot(ty_, val(y).shape, Layout::Plain);
  const DType dt = ty_;
  push(n.name, n.op, {src, dst}, [=, this](const Context& c, cudaStream_t s) {
    reduce(kind, dt, ptr(c, src), ptr(c, dst), outer, len, inner, s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_pad(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() < 2 || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  if (n.attrs.get_string("mode", "constant") != "constant") return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (val(x).dtype != ty_) return false;
  const Shape& xs = val(x).shape;
  const Shape& ys = val(y).shape;
  const int r = static_cast<int>(xs.size());
  if (static_cast<int>(ys.size()) != r || r > kMaxRank) return false;
  auto const_ints = [&](size_t i) -> std::optional<std::vector<int64_t>> {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return std::vector<int64_t>{};
    if (!val(n.inputs[i]).is_constant()) return std::nullopt;
    return val(n.inputs[i]).constant.to_int64s();
  };
  auto pads = const_ints(1), axes = const_ints(3);
  if (!pads || !axes) return false;
  if (axes->empty())
    for (int i = 0; i < r; ++i) axes->push_back(i);
  if (pads->size() != 2 * axes->size()) return false;
  float value = 0.f;
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value& cv = val(n.inputs[2]);
    if (!cv.is_constant() || cv.constant.numel() > 1) return false;
    if (cv.constant.numel() == 1) value = to_f(cv.constant.get(0));
  }
  std::vector<int64_t> begin(static_cast<size_t>(r), 0);
  for (size_t i = 0; i < axes->size(); ++i) {
    int64_t ax = (*axes)[i];
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return false;
    const int64_t b = (*pads)[i], e = (*pads)[i + axes->size()];
    if (b < 0 || e < 0) return false;  // cropping: the reference kernel
    if (xs[static_cast<size_t>(ax)] + b + e != ys[static_cast<size_t>(ax)]) return false;
    begin[static_cast<size_t>(ax)] = b;
  }
  const int src = slot_of(x);
  const int dst = new_slot(ty_, ys, slot(src).layout);
  auto dstt = logical_strides(slot(dst));
  int64_t off = 0;
  for (int i = 0; i < r; ++i) off += begin[static_cast<size_t>(i)] * dstt[static_cast<size_t>(i)];
  {
    Shape sh = xs;
    auto a = logical_strides(slot(src)), b = dstt;
    if (!simplify(sh, {&a, &b})) return false;
  }
  const DType dt = ty_;
  const int64_t numel = shape_numel(ys);
  push(n.name, n.op, {dst}, [this, dst, dt, numel, value](const Context& c, cudaStream_t s) {
    fill(dt, ptr(c, dst), numel, value, s);
  });
  if (shape_numel(xs) > 0 &&
      !push_copy(n.name, n.op, src, 0, logical_strides(slot(src)), dst, off, dstt, xs))
    throw Error("cuda backend: pad copy failed");
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_resize(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (val(x).dtype != ty_) return false;
  const Shape& xs = val(x).shape;
  const Shape& ys = val(y).shape;
  if (xs.size() != 4 || ys.size() != 4 || xs[0] != ys[0] || xs[1] != ys[1]) return false;
  const Attributes& at = n.attrs;
  std::string mode, coord, nearest;
  std::vector<double> scale(4, 1.0);
  auto input_doubles = [&](size_t i) -> std::optional<std::vector<double>> {
    if (i >= n.inputs.size() || n.inputs[i] < 0) return std::vector<double>{};
    if (!val(n.inputs[i]).is_constant()) return std::nullopt;
    return val(n.inputs[i]).constant.to_doubles();
  };
  if (n.op == "Upsample") {
    mode = at.get_string("mode", "nearest");
    if (mode == "bilinear") mode = "linear";
    coord = "asymmetric";
    nearest = "simple";
    auto sc = input_doubles(1);
    if (!sc) return false;
    if (sc->empty() && at.has("scales")) *sc = at.get_floats("scales");
    if (sc->size() != 4) return false;
    scale = *sc;
  } else {
    mode = at.get_string("mode", "nearest");
    coord = at.get_string("coordinate_transformation_mode", "half_pixel");
    nearest = at.get_string("nearest_mode", "round_prefer_floor");
    if (at.has("axes") || at.get_int("antialias", 0) != 0 ||
        at.get_string("keep_aspect_ratio_policy", "stretch") != "stretch")
      return false;
    auto sc = input_doubles(2), sz = input_doubles(3);
    if (!sc || !sz) return false;
    if (!sc->empty()) {
      if (sc->size() != 4) return false;
      scale = *sc;
    } else if (sz->size() == 4) {
      for (size_t d = 0; d < 4; ++d) scale[d] = (*sz)[d] / static_cast<double>(xs[d]);
    } else {
      return false;
    }
  }
  if (mode != "nearest" && mode != "linear") return false;
  if (scale[0] != 1.0 || scale[1] != 1.0) return false;
  int nr;
  if (nearest == "floor") nr = 0;
  else if (nearest == "round_prefer_floor") nr = 1;
  else if (nearest == "round_prefer_ceil") nr = 2;
  else if (nearest == "ceil") nr = 3;
  else if (nearest == "simple") nr = -1;  // per axis below
  else return false;
  Resize2d p;
  p.n = static_cast<int>(xs[0]);
  p.c = static_cast<int>(xs[1]);
  p.h = static_cast<int>(xs[2]);
  p.w = static_cast<int>(xs[3]);
  p.oh = static_cast<int>(ys[2]);
  p.ow = static_cast<int>(ys[3]);
  p.mode = mode == "linear" ? 1 : 0;
  // in = out * a + b per axis, ONNX's coordinate transformation with the scale factor s.
  for (int ax = 0; ax < 2; ++ax) {
    const double s = scale[static_cast<size_t>(2 + ax)];
    const double in = static_cast<double>(xs[static_cast<size_t>(2 + ax)]);
    const double out = static_cast<double>(ys[static_cast<size_t>(2 + ax)]);
    if (!(s > 0) || !std::isfinite(s)) return false;
    double a = 1 / s, b = 0;
    if (in == out && s == 1.0) {
      a = 1, b = 0;
    } else if (coord == "half_pixel") {
      b = 0.5 / s - 0.5;
    } else if (coord == "pytorch_half_pixel") {
      if (out > 1) b = 0.5 / s - 0.5;
      else a = 0, b = 0;
    } else if (coord == "asymmetric") {
      b = 0;
    } else if (coord == "tf_half_pixel_for_nn") {
      b = 0.5 / s;
    } else if (coord == "align_corners") {
      const double fsc = s * in;
      if (fsc == 1) a = 0, b = 0;
      else a = (in - 1) / (fsc - 1), b = 0;
    } else if (coord == "half_pixel_symmetric") {
      const double adj = out / (s * in);
      b = in / 2 * (1 - adj) + 0.5 / s - 0.5;
    } else {
      return false;  // tf_crop_and_resize
    }
    (ax == 0 ? p.scale_h : p.scale_w) = static_cast<float>(a);
    (ax == 0 ? p.offset_h : p.offset_w) = static_cast<float>(b);
    if (p.mode == 0 && nr < 0) {
      // "simple" (Upsample): floor when upscaling, ceil when downscaling; one mode for both
      // axes, so both must agree.
      const int want = s < 1 ? 3 : 0;
      if (ax == 1 && p.nearest_round != want) return false;
      p.nearest_round = want;
    }
  }
  if (nr >= 0) p.nearest_round = nr;
  const int src = as_layout(x, Layout::Nhwc);
  const int dst = new_slot(ty_, ys, Layout::Nhwc);
  const DType dt = ty_;
  push(n.name, n.op, {src, dst}, [this, p, dt, src, dst](const Context& c, cudaStream_t s) {
    resize_nhwc(p, dt, ptr(c, src), ptr(c, dst), s);
  });
  set_out(y, dst);
  return true;
}

bool CudaExecutable::do_view(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.empty() || n.outputs.empty()) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (n.outputs[i] >= 0 && (!uses_[static_cast<size_t>(n.outputs[i])].empty() ||
                              kept_[static_cast<size_t>(n.outputs[i])]))
      return false;  // Dropout's mask
  if (x < 0 || !val(x).shape_known || !val(y).shape_known || val(x).dtype != val(y).dtype ||
      shape_numel(val(x).shape) != shape_numel(val(y).shape))
    return false;
  if (val(x).is_constant() && !copy_type(val(x).dtype)) return false;
  set_out(y, view_of(plain_of(x), val(y).shape));
  return true;
}

bool CudaExecutable::do_cast(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  if (n.inputs.size() != 1 || n.outputs.size() != 1 || n.inputs[0] < 0) return false;
  const int x = n.inputs[0], y = n.outputs[0];
  if (!copy_type(val(x).dtype) || !copy_type(val(y).dtype) || val(x).shape != val(y).shape)
    return false;
  // Conversions to a float type (and copies); float->int truncation and int->int wrapping
  // stay with the reference kernel.
  if (!float_type(val(y).dtype) && val(x).dtype != val(y).dtype) return false;
  const int src = slot_of(x);
  const int dst = new_slot(val(y).dtype, val(y).shape, slot(src).layout);
  const Shape flat{shape_numel(val(y).shape)};
  if (flat[0] > 0 && !push_copy(n.name, n.op, src, 0, {1}, dst, 0, {1}, flat)) return false;
  set_out(y, dst);
  return true;
}

void CudaExecutable::do_fallback(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  Step st;
  st.name = n.name;
  st.op = "fallback:" + n.op;
  st.fallback = true;
  st.node = &n;
  st.def = OpRegistry::global().find(n.op);
  if (!st.def)
    throw Error("the cuda backend has no kernel for op '" + n.op + "'", g_.source_file, n.name, "op");
  size_t off = host_bytes_;
  auto take = [&](size_t bytes) {
    st.host_off.push_back(off);
    off += (bytes + 63) / 64 * 64;
  };
  for (int v : n.inputs) {
    if (v >= 0 && val(v).is_constant()) {
      st.ins.push_back(-1);
      st.const_ins.push_back(&val(v).constant);
      take(0);
    } else {
      st.ins.push_back(v >= 0 ? plain_of(v) : -1);
      st.const_ins.push_back(nullptr);
      take(v >= 0 ? slot(st.ins.back()).bytes : 0);
    }
  }
  for (int o : n.outputs) {
    if (o < 0) {
      st.outs.push_back(-1);
      take(0);
      continue;
    }
    const Value& ov = val(o);
    if (!ov.shape_known) throw Error("output shape not inferred", g_.source_file, n.name);
    const int s = new_slot(ov.dtype, ov.shape, Layout::Plain);
    set_out(o, s);
    st.outs.push_back(s);
    take(slot(s).bytes);
  }
  host_bytes_ = off;
  for (int s : st.ins)
    if (s >= 0) touch(s);
  for (int s : st.outs)
    if (s >= 0) touch(s);
  steps_.push_back(std::move(st));
  has_fallback_ = true;
}

bool CudaExecutable::compile_node(int ni) {
  const Node& node = g_.nodes[static_cast<size_t>(ni)];
  const std::string& op = node.op;
  for (int v : node.inputs)
    if (v >= 0 && !val(v).shape_known) return false;
  for (int v : node.outputs)
    if (v >= 0 && !val(v).shape_known) return false;
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" ||
      op == "Identity" || op == "Dropout")
    return do_view(ni);
  if (node.outputs.empty() || node.outputs[0] < 0) return false;
  ty_ = val(node.outputs[0]).dtype;
  if (op == "Cast") return do_cast(ni);
  if (op == "Concat") return do_concat(ni);
  if (op == "Split") return do_split(ni);
  if (op == "Slice") return do_slice(ni);
  if (op == "Transpose") return do_transpose(ni);
  if (!float_type(ty_)) return false;
  for (int v : node.outputs)
    if (v >= 0 && shape_numel(val(v).shape) == 0) return false;
  for (int v : node.inputs)
    if (v >= 0 && shape_numel(val(v).shape) == 0) return false;
  if (op == "Conv") return do_conv(ni, false);
  if (op == "ConvTranspose") return do_conv(ni, true);
  if (op == "MaxPool" || op == "AveragePool" || op == "GlobalAveragePool" || op == "GlobalMaxPool")
    return do_pool(ni);
  if (op == "Gemm") return do_gemm(ni);
  if (op == "MatMul") return do_matmul(ni);
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" || op == "PRelu" ||
      ((op == "Max" || op == "Min" || op == "Sum") && node.inputs.size() == 2))
    return do_binary(ni);
  if (op == "Softmax" || op == "LogSoftmax") return do_softmax(ni);
  if (op == "LRN") return do_lrn(ni);
  if (op == "BatchNormalization") return do_batchnorm(ni);
  if (op.rfind("Reduce", 0) == 0) return do_reduce(ni);
  if (op == "Pad") return do_pad(ni);
  if (op == "Resize" || op == "Upsample") return do_resize(ni);
  return do_unary(ni);
}

// ---------------------------------------------------------------------------------------------
// Arena, contexts
// ---------------------------------------------------------------------------------------------

void CudaExecutable::layout_arena() {
  arena_bytes_ = place_buffers(bufs_, 256);
}

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
      throw Error("cuda backend: input '" + x.name + "' has no known shape", g.source_file, {}, "input");
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

void CudaExecutable::run_fallback(const Context& c, const Step& st) {
  const size_t ni = st.ins.size();
  for (size_t i = 0; i < ni; ++i)
    if (st.ins[i] >= 0)
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(c.host.get() + st.host_off[i], ptr(c, st.ins[i]),
                                       slot(st.ins[i]).bytes, cudaMemcpyDeviceToHost, c.stream));
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(c.stream));
  std::vector<Tensor> ins, outs;
  for (size_t i = 0; i < ni; ++i) {
    if (st.const_ins[i]) ins.push_back(*st.const_ins[i]);
    else if (st.ins[i] < 0) ins.push_back(Tensor());
    else {
      const Slot& s = slots_[static_cast<size_t>(st.ins[i])];
      ins.push_back(Tensor::wrap(s.dtype, s.shape, c.host.get() + st.host_off[i], keepalive_));
    }
  }
  for (size_t o = 0; o < st.outs.size(); ++o) {
    if (st.outs[o] < 0) {
      outs.push_back(Tensor());
      continue;
    }
    const Slot& s = slots_[static_cast<size_t>(st.outs[o])];
    uint8_t* p = c.host.get() + st.host_off[ni + o];
    std::memset(p, 0, s.bytes);
    outs.push_back(Tensor::wrap(s.dtype, s.shape, p, keepalive_));
  }
  KernelContext kc{*st.node, ins, outs};
  try {
    st.def->reference(kc);
  } catch (const Error& e) {
    throw Error(e.message(), e.file().empty() ? g_.source_file : e.file(),
                e.node().empty() ? st.node->name : e.node(), e.field());
  }
  for (size_t o = 0; o < st.outs.size(); ++o)
    if (st.outs[o] >= 0)
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(ptr(c, st.outs[o]), c.host.get() + st.host_off[ni + o],
                                       slot(st.outs[o]).bytes, cudaMemcpyHostToDevice, c.stream));
}

void CudaExecutable::run_steps(Context& c, bool timed) {
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& st = steps_[i];
    if (timed) ANVIL_CUDA_CHECK(cudaEventRecord(c.step_ev[i], c.stream));
    try {
      if (st.fallback) run_fallback(c, st);
      else st.fn(c, c.stream);
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
void parallel_memcpy(void* dst, const void* src, size_t n) {
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
      throw Error("cuda backend: input '" + v.name + "' has shape " +
                      shape_str(inputs[i].shape()) + " " + dtype_name(inputs[i].dtype()) +
                      ", compiled for " + shape_str(v.shape) + " " + dtype_name(v.dtype),
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

const BackendRegistrar reg{Backend{
    "cuda", [](const Graph& g, const CompileOptions& o) -> std::unique_ptr<Executable> {
      return std::make_unique<CudaExecutable>(g, o);
    }}};

}  // namespace
}  // namespace anvil::cuda
