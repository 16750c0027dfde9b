// The cpu backend's executable (src/backend/cpu/): a small core (executor.cpp: slots, layouts,
// arena, execution contexts, run, profile) and handler files per op family that turn one node
// into oneDNN steps, registered in one {op -> handler} table (executor.cpp, handlers()).
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
// run():      takes an execution context (arena, scratchpad, stream, bound memories) from a
//   pool, binds the inputs, executes the steps, copies/reorders the kept tensors out. The
//   compiled steps and weights are shared and read-only, so concurrent run() calls each use
//   their own context (include/anvil/session.h states the contract).
#pragma once

#include <chrono>
#include <dnnl.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "anvil/ops.h"
#include "backend/backend.h"
#include "backend/cpu/dnnl_util.h"
#include "ops/activation.h"

namespace anvil::cpu {

using dnnl::algorithm;
using dnnl::prop_kind;
using tag = memory::format_tag;
using dt = memory::data_type;

const dnnl::engine& engine();

/// float(v) clamped to the float range (NaN stays NaN).
float to_f(double v);

/// Appends the eltwise post-ops of a fused activation; false when oneDNN has none for it.
/// `nan_safe`: a Relu that keeps NaN (slower; see CpuExecutable::run).
bool append_act(dnnl::post_ops& po, const FusedActivation& a, bool nan_safe);

/// True when `po` holds only the NaN-keeping Relu that append_act appends (elu 0, linear 1 0).
bool only_relu_post_ops(const dnnl::post_ops& po);

enum class Storage { Arena, Input, Const, Owned };

struct Slot {
  DType dtype = DType::f32;
  Shape shape;
  memory::desc md;  // zero desc for dtypes oneDNN does not know (used by fallbacks only)
  bool plain = true;
  size_t bytes = 0;
  Storage st = Storage::Arena;
  int buf = -1;         // Arena
  int input = -1;       // Input: index into Graph::inputs
  void* ptr = nullptr;  // Const: the constant's data
  dnnl::memory mem;     // Owned: the weights, reordered at compile time (shared by contexts)
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
  memory::desc scratch_md;
  // fallback
  Node node;
  const OpDef* def = nullptr;
  std::vector<int> ins, outs;  // slots (-1 for an omitted input)
  int nthr = 1;                // OpenMP threads this step runs with (see step_threads)
};

/// What one run() needs for itself: the activation arena, the scratchpad, a stream, and every
/// slot's memory bound to them. Contexts are pooled; one per concurrent caller.
struct Context {
  std::shared_ptr<uint8_t> arena, scratch;
  dnnl::stream stream;
  std::vector<dnnl::memory> mems;  // per slot (empty where oneDNN has no type)
  std::vector<Tensor> views;       // per slot: plain tensor on its storage (fallbacks, outputs)
  std::vector<std::unordered_map<int, dnnl::memory>> args;  // per step
  std::vector<dnnl::memory> out_mems;                       // per keep entry
};

struct Timer {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
};

class CpuExecutable : public Executable {
 public:
  /// `nan_safe`: compile Relu so that it keeps NaN (oneDNN's fast relu is max(x, 0)).
  CpuExecutable(const Graph& g, const CompileOptions& opt, bool nan_safe = false);
  std::vector<Tensor> run(const std::vector<Tensor>& inputs) override;
  std::vector<OpTime> profile() const override;

  /// A handler compiles node `ni` into steps; false when it cannot (the node then runs on its
  /// reference kernel).
  using Handler = bool (CpuExecutable::*)(int ni);
  struct HandlerRow {
    Handler fn;
    bool typed;  // needs a oneDNN float type (sets ty_/dty_ from the node's first output)
  };
  /// The {op -> handler} table (executor.cpp).
  static const std::unordered_map<std::string, HandlerRow>& handlers();

  // ---- handlers (one file per op family)
  bool do_conv(int ni) { return conv_like(ni, false); }           // conv_handler.cpp
  bool do_conv_transpose(int ni) { return conv_like(ni, true); }  // conv_handler.cpp
  bool do_pool(int ni);                                           // pool_handler.cpp
  bool do_gemm(int ni);                                           // gemm_handler.cpp
  bool do_matmul(int ni);                                         // gemm_handler.cpp
  bool do_eltwise(int ni);                                        // eltwise_handler.cpp
  bool do_binary(int ni);                                         // eltwise_handler.cpp
  bool do_concat(int ni);                                         // tensor_handlers.cpp
  bool do_softmax(int ni);                                        // tensor_handlers.cpp
  bool do_lrn(int ni);                                            // tensor_handlers.cpp
  bool do_batchnorm(int ni);                                      // tensor_handlers.cpp
  bool do_view(int ni);                                           // tensor_handlers.cpp
  bool do_cast(int ni);                                           // tensor_handlers.cpp
  bool do_rnn(int ni);                                            // rnn_handler.cpp
  void do_fallback(int ni);                                       // fallback_handler.cpp

 private:
  bool conv_like(int ni, bool transpose);

  // ---- compile-time state (read-only once compiled; shared by every context)
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
  std::vector<Tensor> owned_tensors_;
  size_t arena_bytes_ = 0, scratch_bytes_ = 0;

  // ---- NaN: run() hands inputs holding NaN or Inf to a second executable compiled with
  // nan_safe (made on first need), so that NaN propagates as in ONNX Runtime and PyTorch
  // while finite inputs keep the fast kernels.
  bool nan_safe_ = false;
  std::once_flag nan_once_;
  std::unique_ptr<CpuExecutable> nan_exe_;

  // ---- run-time state: pooled contexts and the profile, behind mutexes
  std::mutex ctx_mu_;
  std::vector<std::unique_ptr<Context>> free_ctx_;
  mutable std::mutex prof_mu_;
  std::vector<double> prof_ms_;
  std::vector<int64_t> prof_calls_;
  std::unique_ptr<Context> make_context() const;
  std::unique_ptr<Context> acquire();
  void release(std::unique_ptr<Context> c);

  // The float type of the node being compiled (its first output's): f32, or bf16/f16 after
  // SessionOptions::precision's reduce_precision pass. oneDNN steps need every float tensor
  // of the node in it (weights and activations); mixed nodes run on the reference kernels.
  DType ty_ = DType::f32;
  dt dty_ = dt::f32;

  // oneDNN 2.6's reference (non-JIT) eltwise ignores eltwise post-ops (zeros); a handler
  // whose primitive has no JIT implementation is compiled again without fused activations.
  bool no_post_ops_ = false;
  template <class PD>
  bool refuse_ref_post_ops(const PD& pd, const std::vector<int>& fused, int ni, Handler handler) {
    if (fused.empty() || std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return false;
    handler_result_ = without_post_ops(ni, handler);
    return true;
  }
  /// Compiles node `ni` again without following activations (a primitive refused them).
  bool without_post_ops(int ni, Handler handler) {
    no_post_ops_ = true;
    bool r = false;
    try {
      r = (this->*handler)(ni);
    } catch (...) {
      no_post_ops_ = false;
      throw;
    }
    no_post_ops_ = false;
    return r;
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
  int new_arena_slot(DType dtype, const Shape& shape, const memory::desc& md, int value);
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
  /// Steps applying the NaN-keeping Relu of append_act to slot `s` in place.
  void push_relu_in_place(int s, const std::string& name, const std::string& op);
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
};

}  // namespace anvil::cpu
