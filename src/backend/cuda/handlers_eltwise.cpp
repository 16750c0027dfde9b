// cuda executor handlers: elementwise ops, the activations (`unary`) and the broadcasting
// binary ops (`binary`, strides in each operand's own layout).
// Registered in the handler table of executor.cpp; see docs/cuda_backend.md.
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
      {"Add", Binary::Add}, {"Sum", Binary::Add}, {"Sub", Binary::Sub},
      {"Mul", Binary::Mul}, {"Div", Binary::Div}, {"Pow", Binary::Pow},
      {"Max", Binary::Max}, {"Min", Binary::Min}, {"PRelu", Binary::PRelu}};
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
  push(n.name, opname, {sa, sb, dst},
       [this, op, dt, sa, sb, dst, d, post](const Context& c, cudaStream_t s) {
         binary(op, dt, ptr(c, sa), ptr(c, sb), ptr(c, dst), d, post.op, post.alpha, post.beta, s);
       });
  set_out(out_v, dst);
  if (an >= 0) consumed_[static_cast<size_t>(an)] = true;
  return true;
}

}  // namespace anvil::cuda::exec
