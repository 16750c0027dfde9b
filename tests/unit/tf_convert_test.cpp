// TensorFlow conversion rules (src/import/tensorflow/tf_convert.h), against values worked out
// by hand from TensorFlow's documented formulas (kernel_shape_util's GetWindowedOutputSize for
// SAME, ValidateStridedSliceOp's mask rules, numpy slicing for what a slice selects).
#include "import/tensorflow/tf_convert.h"

#include <gtest/gtest.h>

#include "anvil/error.h"

using anvil::tf::Pads;

TEST(TfConvert, SamePadsOddSizesAndStride2) {
  // out = ceil(in / s); total = max((out - 1) * s + k - in, 0); the extra cell goes at the end
  EXPECT_EQ(anvil::tf::same_pads(7, 3, 2), (Pads{1, 1}));     // out 4, total 2
  EXPECT_EQ(anvil::tf::same_pads(8, 3, 2), (Pads{0, 1}));     // out 4, total 1: asymmetric
  EXPECT_EQ(anvil::tf::same_pads(9, 3, 2), (Pads{1, 1}));     // out 5, total 2
  EXPECT_EQ(anvil::tf::same_pads(5, 2, 1), (Pads{0, 1}));     // even kernel: total 1
  EXPECT_EQ(anvil::tf::same_pads(5, 4, 1), (Pads{1, 2}));     // total 3
  EXPECT_EQ(anvil::tf::same_pads(10, 5, 3), (Pads{2, 2}));    // out 4, total 3*3 + 5 - 10 = 4
  EXPECT_EQ(anvil::tf::same_pads(10, 4, 3), (Pads{1, 2}));    // out 4, total 9 + 4 - 10 = 3
  EXPECT_EQ(anvil::tf::same_pads(6, 1, 2), (Pads{0, 0}));     // 1x1 stride 2: no padding
  EXPECT_EQ(anvil::tf::same_pads(5, 3, 1, 2), (Pads{2, 2}));  // dilation 2: keff 5, total 4
  EXPECT_EQ(anvil::tf::same_pads(4, 12, 12), (Pads{4, 4}));   // window larger than the input
  EXPECT_THROW(anvil::tf::same_pads(5, 0, 1), anvil::Error);
  EXPECT_THROW(anvil::tf::same_pads(5, 3, 0), anvil::Error);
}

TEST(TfConvert, WindowOutput) {
  EXPECT_EQ(anvil::tf::window_output(7, 3, 2, 1, true), 4);
  EXPECT_EQ(anvil::tf::window_output(7, 3, 2, 1, false), 3);  // ceil((7 - 3 + 1) / 2)
  EXPECT_EQ(anvil::tf::window_output(8, 3, 2, 1, false), 3);
  EXPECT_EQ(anvil::tf::window_output(2, 3, 1, 1, false), 0);
}

TEST(TfConvert, BackpropInputPads) {
  // SAME: the forward conv from 8 with SAME pads (0, 1) and stride 2 gives 4
  auto a = anvil::tf::backprop_input_pads(4, 8, 3, 2, 1, true);
  EXPECT_EQ(a.pads, (Pads{0, 1}));
  EXPECT_EQ(a.output_padding, 0);
  // SAME with output 7: pads (1, 1), full length 2*3 + 3 - 2 = 7
  auto b = anvil::tf::backprop_input_pads(4, 7, 3, 2, 1, true);
  EXPECT_EQ(b.pads, (Pads{1, 1}));
  EXPECT_EQ(b.output_padding, 0);
  // VALID: conv from 8 gives (8 - 3) / 2 + 1 = 3; transposed: 2*2 + 3 = 7, one more cell
  auto c = anvil::tf::backprop_input_pads(3, 8, 3, 2, 1, false);
  EXPECT_EQ(c.pads, (Pads{0, 0}));
  EXPECT_EQ(c.output_padding, 1);
  // input_sizes that no forward conv could have produced
  EXPECT_THROW(anvil::tf::backprop_input_pads(3, 20, 3, 2, 1, false), anvil::Error);
}

TEST(TfConvert, StridedSliceMasks) {
  const anvil::Shape in{4, 5, 6};
  // x[1:3, ::-1, 2]: begin_mask/end_mask bit 1, shrink bit 2
  auto a = anvil::tf::strided_slice(in, {1, 0, 2}, {3, 0, 3}, {1, -1, 1}, 2, 2, 0, 0, 4);
  EXPECT_EQ(a.starts, (std::vector<int64_t>{1, 4, 2}));
  EXPECT_EQ(a.ends, (std::vector<int64_t>{3, -6, 3}));  // through element 0: -dim - 1
  EXPECT_EQ(a.steps, (std::vector<int64_t>{1, -1, 1}));
  EXPECT_EQ(a.sliced, (anvil::Shape{2, 5, 1}));
  EXPECT_EQ(a.final_shape, (anvil::Shape{2, 5}));
  // x[..., 1]: ellipsis then a shrunk last dim
  auto b = anvil::tf::strided_slice(in, {0, 1}, {0, 2}, {1, 1}, 0, 0, 1, 0, 2);
  EXPECT_EQ(b.final_shape, (anvil::Shape{4, 5}));
  EXPECT_EQ(b.starts[2], 1);
  // x[:, tf.newaxis, 2:]: a new axis does not consume an input dim
  auto c = anvil::tf::strided_slice(in, {0, 0, 2}, {0, 0, 0}, {1, 1, 1}, 1, 5, 0, 2, 0);
  EXPECT_EQ(c.final_shape, (anvil::Shape{4, 1, 3, 6}));
  // x[-1]: negative index, shrunk
  auto d = anvil::tf::strided_slice(in, {-1}, {0}, {1}, 0, 0, 0, 0, 1);
  EXPECT_EQ(d.starts[0], 3);
  EXPECT_EQ(d.final_shape, (anvil::Shape{5, 6}));
  // x[3::-2]: 3, 1
  auto e = anvil::tf::strided_slice(in, {3}, {0}, {-2}, 0, 1, 0, 0, 0);
  EXPECT_EQ(e.final_shape, (anvil::Shape{2, 5, 6}));
  // x[-100:100]: clamped
  auto f = anvil::tf::strided_slice(in, {-100}, {100}, {1}, 0, 0, 0, 0, 0);
  EXPECT_EQ(f.final_shape, (anvil::Shape{4, 5, 6}));
  // x[..., tf.newaxis]
  auto g = anvil::tf::strided_slice(in, {0, 0}, {0, 0}, {1, 1}, 0, 0, 1, 2, 0);
  EXPECT_EQ(g.final_shape, (anvil::Shape{4, 5, 6, 1}));
  // errors: shrink out of range, stride 0, two ellipses, length mismatch
  EXPECT_THROW(anvil::tf::strided_slice(in, {4}, {5}, {1}, 0, 0, 0, 0, 1), anvil::Error);
  EXPECT_THROW(anvil::tf::strided_slice(in, {0}, {1}, {0}, 0, 0, 0, 0, 0), anvil::Error);
  EXPECT_THROW(anvil::tf::strided_slice(in, {0, 0}, {1, 1}, {1, 1}, 0, 0, 3, 0, 0), anvil::Error);
  EXPECT_THROW(anvil::tf::strided_slice(in, {0, 0}, {1}, {1, 1}, 0, 0, 0, 0, 0), anvil::Error);
  EXPECT_THROW(
      anvil::tf::strided_slice(in, {0, 0, 0, 0}, {1, 1, 1, 1}, {1, 1, 1, 1}, 0, 0, 0, 0, 0),
      anvil::Error);
}

TEST(TfConvert, Permutations) {
  EXPECT_EQ(anvil::tf::channels_last_perm(4), (std::vector<int>{0, 2, 3, 1}));
  EXPECT_EQ(anvil::tf::channels_last_perm(3), (std::vector<int>{0, 2, 1}));
  EXPECT_EQ(anvil::tf::inverse_perm({0, 2, 3, 1}), (std::vector<int>{0, 3, 1, 2}));
  EXPECT_TRUE(anvil::tf::is_identity_perm({0, 1, 2}));
  EXPECT_FALSE(anvil::tf::is_identity_perm({1, 0}));
}
