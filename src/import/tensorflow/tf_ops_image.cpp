#include <algorithm>
#include <numeric>
#include <set>

#include "anvil/error.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {
namespace {

std::vector<TT> resize(TfBuilder& b, bool bilinear) {
  b.need_inputs(2, 2);
  const TT& x = b.in[0];
  Shape xs = b.tf_shape(x);
  if (xs.size() != 4) fail("images", "images must be 4-D NHWC, found " + shape_str(xs));
  auto sz = b.const_ints(1, "size");
  if (sz.size() != 2 || sz[0] < 1 || sz[1] < 1)
    fail("size", "size must be 2 positive values, found " + ints_str(sz));
  const bool ac = b.attr_b("align_corners", false), hp = b.attr_b("half_pixel_centers", false);
  if (ac && hp)
    fail("half_pixel_centers", "align_corners and half_pixel_centers cannot both be set");
  Attributes a;
  a.set("mode", std::string(bilinear ? "linear" : "nearest"));
  if (bilinear) {
    a.set("coordinate_transformation_mode", std::string(ac   ? "align_corners"
                                                        : hp ? "half_pixel"
                                                             : "asymmetric"));
  } else {
    a.set("coordinate_transformation_mode", std::string(ac   ? "align_corners"
                                                        : hp ? "tf_half_pixel_for_nn"
                                                             : "asymmetric"));
    a.set("nearest_mode", std::string(ac ? "round_prefer_ceil" : "floor"));
  }
  int xc = b.cf(x, true);
  // TF's ResizeBilinear (and ResizeBicubic, ResizeArea) output float32 whatever the input
  // type; ResizeNearestNeighbor keeps it.
  if (bilinear && b.dtype(xc) != DType::f32) xc = b.cast(xc, DType::f32);
  int y = b.emit1("Resize", {xc, -1, -1, b.i64s({xs[0], xs[3], sz[0], sz[1]})}, a);
  return {b.cf_out(y, true)};
}

std::vector<TT> depth_space(TfBuilder& b) {
  const std::string& op = b.op();
  b.need_inputs(1, 1);
  const bool cl = b.channels_last_format();
  if (b.rank(b.in[0].v) != 4) fail("input", op + " needs a 4-D input");
  Attributes a;
  a.set("blocksize", b.attr_i("block_size"));
  if (op == "DepthToSpace") a.set("mode", std::string("DCR"));
  return {b.cf_out(b.emit1(op, {b.cf(b.in[0], cl)}, a), cl)};
}

// SpaceToBatchND / BatchToSpaceND's inputs: the value in TF's layout, block_shape (M values,
// their product) and the (M, 2) paddings or crops, checked.
struct BlockArgs {
  int v = -1;
  Shape xs;
  std::vector<int64_t> block, pc;
  size_t M = 0, R = 0;
  int64_t prod = 1;
};

BlockArgs block_args(TfBuilder& b, bool to_batch) {
  b.need_inputs(3, 3);
  BlockArgs r;
  r.v = b.src(b.in[0]);
  r.xs = b.shape(r.v);
  r.block = b.const_ints(1, "block_shape");
  r.pc = b.const_ints(2, to_batch ? "paddings" : "crops");
  r.M = r.block.size();
  r.R = r.xs.size();
  if (r.M < 1 || r.M + 1 > r.xs.size())
    fail("block_shape",
         "block_shape " + ints_str(r.block) + " does not fit input " + shape_str(r.xs));
  if (r.pc.size() != 2 * r.M)
    fail(to_batch ? "paddings" : "crops", "must be (" + std::to_string(r.M) + ", 2)");
  for (int64_t bs : r.block) {
    if (bs < 1 || bs > 4096) fail("block_shape", "bad block size in " + ints_str(r.block));
    r.prod *= bs;
  }
  for (int64_t q : r.pc)
    if (q < 0) fail(to_batch ? "paddings" : "crops", "negative value in " + ints_str(r.pc));
  return r;
}

// SpaceToBatchND on TF's layout: pad, reshape -> transpose -> reshape.
std::vector<TT> space_to_batch(TfBuilder& b) {
  const BlockArgs a = block_args(b, true);
  const size_t M = a.M, R = a.R;
  int v = a.v;
  std::vector<int64_t> pads(2 * R, 0);
  for (size_t i = 0; i < M; ++i) {
    pads[1 + i] = a.pc[2 * i];
    pads[R + 1 + i] = a.pc[2 * i + 1];
  }
  if (std::any_of(pads.begin(), pads.end(), [](int64_t q) { return q != 0; })) {
    Attributes pa;
    pa.set("mode", std::string("constant"));
    v = b.emit1("Pad", {v, b.i64s(pads)}, pa);
  }
  Shape ps = b.shape(v);
  Shape s1{ps[0]};
  for (size_t i = 0; i < M; ++i) {
    if (ps[1 + i] % a.block[i] != 0)
      fail("block_shape",
           "padded dim " + std::to_string(ps[1 + i]) + " not divisible by the block");
    s1.push_back(ps[1 + i] / a.block[i]);
    s1.push_back(a.block[i]);
  }
  for (size_t i = M + 1; i < R; ++i) s1.push_back(ps[i]);
  v = b.reshape(v, s1);
  std::vector<int> perm;
  for (size_t i = 0; i < M; ++i) perm.push_back(static_cast<int>(2 + 2 * i));
  perm.push_back(0);
  for (size_t i = 0; i < M; ++i) perm.push_back(static_cast<int>(1 + 2 * i));
  for (size_t i = 2 * M + 1; i < s1.size(); ++i) perm.push_back(static_cast<int>(i));
  v = b.view(TT{v, {}}, perm);
  Shape s2{ps[0] * a.prod};
  for (size_t i = 0; i < M; ++i) s2.push_back(ps[1 + i] / a.block[i]);
  for (size_t i = M + 1; i < R; ++i) s2.push_back(ps[i]);
  return {TT{b.reshape(v, s2), {}}};
}

// BatchToSpaceND on TF's layout: reshape -> transpose -> reshape, then crop.
std::vector<TT> batch_to_space(TfBuilder& b) {
  const BlockArgs a = block_args(b, false);
  const size_t M = a.M, R = a.R;
  const Shape& xs = a.xs;
  if (xs[0] % a.prod != 0)
    fail("block_shape",
         "batch " + std::to_string(xs[0]) + " not divisible by the block size product");
  const int64_t N = xs[0] / a.prod;
  Shape s1(a.block.begin(), a.block.end());
  s1.push_back(N);
  for (size_t i = 1; i < R; ++i) s1.push_back(xs[i]);
  int v = b.reshape(a.v, s1);
  std::vector<int> perm{static_cast<int>(M)};
  for (size_t i = 0; i < M; ++i) {
    perm.push_back(static_cast<int>(M + 1 + i));
    perm.push_back(static_cast<int>(i));
  }
  for (size_t i = 2 * M + 1; i < s1.size(); ++i) perm.push_back(static_cast<int>(i));
  v = b.view(TT{v, {}}, perm);
  Shape s2{N};
  for (size_t i = 0; i < M; ++i) s2.push_back(xs[1 + i] * a.block[i]);
  for (size_t i = M + 1; i < R; ++i) s2.push_back(xs[i]);
  v = b.reshape(v, s2);
  std::vector<int64_t> st, en, axes;
  for (size_t i = 0; i < M; ++i) {
    const int64_t c0 = a.pc[2 * i], c1 = a.pc[2 * i + 1];
    if (c0 == 0 && c1 == 0) continue;
    if (c0 + c1 > s2[1 + i]) fail("crops", "crops larger than the dimension");
    axes.push_back(static_cast<int64_t>(1 + i));
    st.push_back(c0);
    en.push_back(s2[1 + i] - c1);
  }
  if (!axes.empty()) v = b.emit1("Slice", {v, b.i64s(st), b.i64s(en), b.i64s(axes)});
  return {TT{v, {}}};
}

}  // namespace

void add_image_converters(ConverterTable& t) {
  t["ResizeBilinear"] = [](TfBuilder& b) { return resize(b, true); };
  t["ResizeNearestNeighbor"] = [](TfBuilder& b) { return resize(b, false); };
  t["DepthToSpace"] = t["SpaceToDepth"] = depth_space;
  t["SpaceToBatchND"] = space_to_batch;
  t["BatchToSpaceND"] = batch_to_space;
}

}  // namespace anvil::tf_import
