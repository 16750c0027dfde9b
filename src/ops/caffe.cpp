// Canonical ops for Caffe semantics that no ONNX op expresses exactly.
//
// CaffeArgMax: Caffe's ArgMax layer. ONNX ArgMax has no top_k and no (index, value) output;
// TopK differs in output layout and dtype. Semantics (BVLC ArgMaxLayer):
//   - with `axis`: output = input shape with shape[axis] = top_k, holding the indices (as
//     floats) of the top_k largest values along axis, or the values themselves when
//     out_max_val = 1;
//   - without `axis`: each item n of the first axis is flattened (dim = numel / N); output
//     shape (N, 1 or 2, top_k) padded with 1s to the input rank (at least 3); [n, 0, j] is the
//     index of the j-th largest value, and with out_max_val [n, 1, j] its value.
//   Ranking is by (value, index) descending: equal values rank the larger index first
//   (Caffe's std::partial_sort with std::greater on (value, index) pairs).
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "anvil/ops.h"

namespace anvil {
namespace {

struct ArgMaxPlan {
  bool has_axis = false;
  int axis = 0;
  int64_t top_k = 1;
  bool out_max_val = false;
  int64_t outer = 1, len = 1, inner = 1;
  Shape out_shape;
};

template <class Fail>
ArgMaxPlan argmax_plan(const Shape& x, const Attributes& a, Fail&& fail) {
  ArgMaxPlan p;
  const int rank = static_cast<int>(x.size());
  p.top_k = a.get_int("top_k", 1);
  p.out_max_val = a.get_int("out_max_val", 0) != 0;
  if (p.top_k < 1) fail("top_k", "must be >= 1, found " + std::to_string(p.top_k));
  p.has_axis = a.has("axis");
  if (p.has_axis) {
    int64_t ax = a.get_int("axis");
    if (ax < -rank || ax >= rank)
      fail("axis",
           "axis " + std::to_string(ax) + " is out of range for input shape " + shape_str(x));
    p.axis = static_cast<int>(ax < 0 ? ax + rank : ax);
    for (int i = 0; i < p.axis; ++i) p.outer *= x[static_cast<size_t>(i)];
    p.len = x[static_cast<size_t>(p.axis)];
    for (int i = p.axis + 1; i < rank; ++i) p.inner *= x[static_cast<size_t>(i)];
    p.out_shape = x;
    p.out_shape[static_cast<size_t>(p.axis)] = p.top_k;
  } else {
    if (rank < 1) fail("X", "expected an input of rank >= 1, found a scalar");
    p.outer = x[0];
    p.len = 1;
    for (int i = 1; i < rank; ++i) p.len *= x[static_cast<size_t>(i)];
    p.out_shape.assign(static_cast<size_t>(std::max(rank, 3)), 1);
    p.out_shape[0] = x[0];
    p.out_shape[1] = p.out_max_val ? 2 : 1;
    p.out_shape[2] = p.top_k;
  }
  if (p.top_k > p.len)
    fail("top_k", "top_k " + std::to_string(p.top_k) + " is larger than the " +
                      std::to_string(p.len) + " values it ranks (input shape " + shape_str(x) +
                      ")");
  return p;
}

void caffe_argmax_kernel(KernelContext& ctx) {
  const Tensor& X = ctx.inputs[0];
  const ArgMaxPlan p = argmax_plan(
      X.shape(), ctx.attrs(), [&](const std::string& f, const std::string& m) { ctx.fail(f, m); });
  Tensor& Y = ctx.outputs[0];
  if (Y.shape() != p.out_shape)
    ctx.fail("Y", "output shape " + shape_str(Y.shape()) + " differs from the expected " +
                      shape_str(p.out_shape));
  std::vector<std::pair<double, int64_t>> v(static_cast<size_t>(p.len));
  auto greater = [](const std::pair<double, int64_t>& a, const std::pair<double, int64_t>& b) {
    // NaN ranks above every number (a strict weak order; std::greater is not one with NaN).
    if (std::isnan(a.first) || std::isnan(b.first))
      return std::isnan(a.first) && std::isnan(b.first) ? a.second > b.second : std::isnan(a.first);
    return a > b;
  };
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t i = 0; i < p.inner; ++i) {
      for (int64_t j = 0; j < p.len; ++j)
        v[static_cast<size_t>(j)] = {X.get((o * p.len + j) * p.inner + i), j};
      std::partial_sort(v.begin(), v.begin() + p.top_k, v.end(), greater);
      for (int64_t j = 0; j < p.top_k; ++j) {
        const auto& e = v[static_cast<size_t>(j)];
        if (p.has_axis) {
          Y.set((o * p.top_k + j) * p.inner + i,
                p.out_max_val ? e.first : static_cast<double>(e.second));
        } else {
          const int64_t rows = p.out_max_val ? 2 : 1;
          Y.set(o * rows * p.top_k + j, static_cast<double>(e.second));
          if (p.out_max_val) Y.set(o * rows * p.top_k + p.top_k + j, e.first);
        }
      }
    }
}

const OpRegistrar reg_caffe_argmax{OpDef{
    "CaffeArgMax",
    "reduce",
    "Caffe ArgMax: top_k indices (as floats) or values along `axis`, or per item of axis 0 "
    "(indices, and values with out_max_val)",
    1,
    1,
    1,
    1,
    {{"axis", AttrType::Int, "axis to rank along; absent = flatten all but axis 0"},
     {"top_k", AttrType::Int, "number of largest values (default 1)"},
     {"out_max_val", AttrType::Int, "1: output values (with axis) or (index, value) pairs"}},
    [](InferContext& ctx) {
      if (!is_float(ctx.dtype(0)))
        ctx.fail("X", std::string("expects a float tensor, found ") + dtype_name(ctx.dtype(0)));
      ArgMaxPlan p =
          argmax_plan(ctx.shape(0), ctx.attrs(),
                      [&](const std::string& f, const std::string& m) { ctx.fail(f, m); });
      ctx.set_output(0, ctx.dtype(0), p.out_shape);
    },
    caffe_argmax_kernel}};

}  // namespace
}  // namespace anvil
