// cpu backend: a node no handler takes runs its reference kernel (src/ops) on plain tensors.
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

void CpuExecutable::do_fallback(int ni) {
  const Node& n = g_.nodes[static_cast<size_t>(ni)];
  Step st;
  st.name = n.name;
  st.op = n.op + " (ref)";  // profiles show which ops ran on the reference kernels
  st.node = n;
  st.def = OpRegistry::global().find(n.op);
  if (!st.def)
    throw Error("the cpu backend has no kernel for op '" + n.op + "'", g_.source_file, n.name,
                "op");
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

}  // namespace anvil::cpu
