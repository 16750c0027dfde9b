// cuda executor handlers: copies and views (Concat, Split, Slice, Transpose, Pad, Cast through
// `strided_copy`; Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout as views).
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
    if (v < 0 || val(v).dtype != val(y).dtype || static_cast<int>(val(v).shape.size()) != r)
      return false;
    if (vslot_[static_cast<size_t>(v)] >= 0 &&
        slot(vslot_[static_cast<size_t>(v)]).layout == Layout::Nhwc)
      lo = Layout::Nhwc;
  }
  const int dst = new_slot(val(y).dtype, ys, lo);
  const auto dstt = logical_strides(slot(dst));
  int64_t off = 0;
  for (int v : n.inputs) {
    const int s = slot_of(v);
    const Shape& vs = slot(s).shape;
    if (shape_numel(vs) > 0 && !push_copy(n.name, n.op, s, 0, logical_strides(slot(s)), dst,
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
    if (o < 0 || val(o).dtype != val(x).dtype || static_cast<int>(val(o).shape.size()) != r)
      return false;
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
    if (shape_numel(os) > 0 && !push_copy(n.name, n.op, s, off * sst[static_cast<size_t>(axis)],
                                          sst, dst, 0, logical_strides(slot(dst)), os))
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
    if (ys[u] > 0 &&
        (begin[u] + (ys[u] - 1) * step[u] < 0 || begin[u] + (ys[u] - 1) * step[u] >= xs[u]))
      return false;  // the inferred shape disagrees with our reading: let the reference decide
    off += begin[u] * sst[u];
    sst[u] *= step[u];
  }
  const int dst = new_slot(val(y).dtype, ys, slot(src).layout);
  if (shape_numel(ys) > 0 &&
      !push_copy(n.name, n.op, src, off, sst, dst, 0, logical_strides(slot(dst)), ys))
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

}  // namespace anvil::cuda::exec
