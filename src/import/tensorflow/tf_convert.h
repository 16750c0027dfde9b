// TensorFlow -> canonical conversions that are pure functions of shapes and attributes: SAME
// padding, StridedSlice's mask logic, transposed-convolution pads, layout permutations. Each
// is tested on its own (tests/unit/tf_convert_test.cpp); the importer never recomputes them
// ad hoc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anvil/tensor.h"

namespace anvil::tf {

struct Pads {
  int64_t begin = 0, end = 0;
  bool operator==(const Pads& o) const { return begin == o.begin && end == o.end; }
};

/// TensorFlow's SAME padding for one spatial dim (tensorflow/core/framework/kernel_shape_util,
/// GetWindowedOutputSize): output ceil(in / s); total = max((out - 1) * s + keff - in, 0) with
/// keff = (k - 1) * d + 1; begin = total / 2, end = total - begin (the extra cell at the end).
Pads same_pads(int64_t in, int64_t k, int64_t s, int64_t d = 1);

/// Output size of a TF window op: SAME ceil(in / s), VALID ceil((in - keff + 1) / s) (0 if
/// the window does not fit).
int64_t window_output(int64_t in, int64_t k, int64_t s, int64_t d, bool same);

/// Pads and output_padding of a canonical ConvTranspose that reproduces TF's
/// Conv2DBackpropInput for one spatial dim: `in` = the gradient's size, `out` = the requested
/// input_sizes entry. The forward conv from `out` with this padding must give `in`.
struct TransposePads {
  Pads pads;
  int64_t output_padding = 0;
};
TransposePads backprop_input_pads(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d,
                                  bool same, const Pads& explicit_pads = {});

/// StridedSlice resolved for a concrete input shape (TF's ValidateStridedSliceOp): per input
/// dim the Slice start/end/step (end is given in the canonical Slice form, so a negative-step
/// slice through element 0 ends at -dim-1), and the final output shape (shrunk dims removed,
/// new axes inserted).
struct StridedSliceSpec {
  std::vector<int64_t> starts, ends, steps;  // one per input dim
  Shape sliced;                              // shape after the slice, before the reshape
  Shape final_shape;                         // TF's output shape
};
/// Throws anvil::Error (field = the attribute or input at fault) on inconsistent inputs.
StridedSliceSpec strided_slice(const Shape& in, const std::vector<int64_t>& begin,
                               const std::vector<int64_t>& end,
                               const std::vector<int64_t>& strides, int64_t begin_mask,
                               int64_t end_mask, int64_t ellipsis_mask, int64_t new_axis_mask,
                               int64_t shrink_axis_mask);

/// Permutation taking canonical channels-first (N, C, d1..dn) to channels-last (N, d1..dn, C).
std::vector<int> channels_last_perm(int rank);
std::vector<int> inverse_perm(const std::vector<int>& p);
bool is_identity_perm(const std::vector<int>& p);

}  // namespace anvil::tf
