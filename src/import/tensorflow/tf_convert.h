// TensorFlow -> canonical conversions that are pure functions of shapes and attributes:
// StridedSlice's mask logic here; SAME padding, transposed-convolution pads and layout
// permutations from src/import/common/ (named here for TF's converters). Each is tested on its
// own (tests/unit/tf_convert_test.cpp, import_common_test.cpp); the importer never recomputes
// them ad hoc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anvil/tensor.h"
#include "import/common/padding.h"
#include "import/common/perm.h"

namespace anvil::tf {

// Padding and permutation rules are the importers' shared ones (src/import/common/).
using imp::backprop_input_pads;
using imp::Pads;
using imp::same_pads;
using imp::TransposePads;
using imp::window_output;

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
                               const std::vector<int64_t>& end, const std::vector<int64_t>& strides,
                               int64_t begin_mask, int64_t end_mask, int64_t ellipsis_mask,
                               int64_t new_axis_mask, int64_t shrink_axis_mask);

using imp::channels_last_perm;
using imp::inverse_perm;
using imp::is_identity_perm;

}  // namespace anvil::tf
