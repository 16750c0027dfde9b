// cuda executor: the host fallback. A node no handler takes runs on its reference kernel
// (OpDef::reference) on the host: do_fallback() plans its step at compile time (pinned host
// offsets), run_fallback() copies its inputs down, runs the kernel and copies the outputs up.
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
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "backend/cuda/executor.h"
#include "ops/nn_util.h"

namespace anvil::cuda::exec {

void CudaExecutable::do_fallback(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  Step st;
  st.name = n.name;
  st.op = "fallback:" + n.op;
  st.fallback = true;
  st.node = &n;
  st.def = OpRegistry::global().find(n.op);
  if (!st.def)
    throw Error("the cuda backend has no kernel for op '" + n.op + "'", g_.source_file, n.name,
                "op");
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

void CudaExecutable::run_fallback(const Context& c, const Step& st) {
  const size_t ni = st.ins.size();
  for (size_t i = 0; i < ni; ++i)
    if (st.ins[i] >= 0)
      ANVIL_CUDA_CHECK(cudaMemcpyAsync(c.host.get() + st.host_off[i], ptr(c, st.ins[i]),
                                       slot(st.ins[i]).bytes, cudaMemcpyDeviceToHost, c.stream));
  ANVIL_CUDA_CHECK(cudaStreamSynchronize(c.stream));
  std::vector<Tensor> ins, outs;
  for (size_t i = 0; i < ni; ++i) {
    if (st.const_ins[i])
      ins.push_back(*st.const_ins[i]);
    else if (st.ins[i] < 0)
      ins.push_back(Tensor());
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

}  // namespace anvil::cuda::exec
