// Indexing, selection and comparison operators (any dtype; quantized tensors pass through with
// their quantization, which TFLite requires to be the output's): STRIDED_SLICE (every mask),
// SLICE, GATHER, TILE, PACK, CAST, ARG_MAX/ARG_MIN, comparisons, SELECT/SELECT_V2,
// SPACE_TO_DEPTH/DEPTH_TO_SPACE, RESIZE_NEAREST_NEIGHBOR, and the float unary operators the other
// files do not map. All work in TFLite's layout (cx.as_source).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/onnx_dtype.h"
#include "import/tflite/tflite_translator.h"

namespace anvil::tflite_import {
namespace {

using Op = const fb::Operator*;

/// Quantized input and output must share scale and zero point (TFLite's passthrough ops).
void same_quant(Translator& cx, int in_k, const std::string& what) {
  const int ti = cx.ins_[static_cast<size_t>(in_k)], to = cx.outs_[0];
  if (!is_quant_type(cx.dtype_of_tensor(ti))) return;
  const QP qi = cx.qparams(ti), qo = cx.qparams(to);
  if (qi.scale != qo.scale || qi.zp != qo.zp)
    cx.unsupported_here("quantized " + what + " with different input and output quantization");
}

// strided_slice_logic.h StartForAxis / StopForAxis, after the dense spec is built (TF's
// ellipsis and new-axis expansion).
TV strided_slice(Translator& cx, Op op) {
  auto* o = op->builtin_options_as_StridedSliceOptions();
  const int bm = o ? o->begin_mask() : 0, em = o ? o->end_mask() : 0,
            ellipsis = o ? o->ellipsis_mask() : 0, new_axis = o ? o->new_axis_mask() : 0,
            shrink = o ? o->shrink_axis_mask() : 0;
  if (o && o->offset()) cx.unsupported_here("STRIDED_SLICE with offset = true");
  same_quant(cx, 0, "STRIDED_SLICE");
  const TV x = cx.in(0);
  const int xv = cx.as_source(x);
  const Shape xs = cx.shape(xv);
  const auto begin = cx.const_ints(1, "begin"), end = cx.const_ints(2, "end"),
             strides =
                 cx.has_in(3) ? cx.const_ints(3, "strides") : std::vector<int64_t>(begin.size(), 1);
  const int n = static_cast<int>(begin.size());
  if (end.size() != begin.size() || strides.size() != begin.size() || n > 16)
    cx.fail("begin", "begin, end and strides must have the same length (at most 16)");
  const int r = static_cast<int>(xs.size());
  // dense spec: one entry per input dimension (-1: full range), new axes recorded apart
  struct Dim {
    int64_t b = 0, e = 0, s = 1;
    bool bmask = true, emask = true, shrink = false;
  };
  std::vector<Dim> dense;
  int n_new_after_ellipsis = 0;
  bool seen_ellipsis = false;
  for (int i = 0; i < n; ++i) {
    if (ellipsis & (1 << i)) seen_ellipsis = true;
    if (seen_ellipsis && (new_axis & (1 << i))) ++n_new_after_ellipsis;
  }
  int consumed = 0;
  for (int i = 0; i < n; ++i) {
    if (ellipsis & (1 << i)) {
      const int real_after = (n - 1 - i) - n_new_after_ellipsis;
      const int fill = r - consumed - real_after;
      for (int k = 0; k < fill; ++k) dense.push_back(Dim{});
      consumed += std::max(fill, 0);
      continue;
    }
    if (new_axis & (1 << i)) continue;  // a size-1 output axis, no input dimension
    Dim d;
    d.b = begin[static_cast<size_t>(i)], d.e = end[static_cast<size_t>(i)],
    d.s = strides[static_cast<size_t>(i)];
    d.bmask = (bm & (1 << i)) != 0, d.emask = (em & (1 << i)) != 0;
    d.shrink = (shrink & (1 << i)) != 0;
    dense.push_back(d);
    ++consumed;
  }
  while (static_cast<int>(dense.size()) < r) dense.push_back(Dim{});
  if (static_cast<int>(dense.size()) != r)
    cx.fail("begin", "slice spec of " + std::to_string(n) + " entries does not fit rank " +
                         std::to_string(r));
  std::vector<int64_t> starts, ends, axes, steps;
  for (int a = 0; a < r; ++a) {
    const Dim& d = dense[static_cast<size_t>(a)];
    const int64_t size = xs[static_cast<size_t>(a)];
    if (d.s == 0) cx.fail("strides", "stride 0");
    int64_t start = d.b;
    if (d.bmask) start = d.s > 0 ? std::numeric_limits<int32_t>::lowest() : INT32_MAX;
    if (start < 0) start += size;
    start =
        d.s > 0 ? std::clamp<int64_t>(start, 0, size) : std::clamp<int64_t>(start, -1, size - 1);
    int64_t stop = d.e;
    if (d.shrink) {
      stop = start + 1;
    } else {
      if (d.emask) stop = d.s > 0 ? INT32_MAX : std::numeric_limits<int32_t>::lowest();
      if (stop < 0) stop += size;
      stop = d.s > 0 ? std::clamp<int64_t>(stop, 0, size) : std::clamp<int64_t>(stop, -1, size - 1);
    }
    const int64_t count = d.s > 0 ? (stop > start ? (stop - start - 1) / d.s + 1 : 0)
                                  : (start > stop ? (start - stop - 1) / (-d.s) + 1 : 0);
    if (count == 0) cx.unsupported_here("STRIDED_SLICE with an empty result");
    starts.push_back(start);
    ends.push_back(stop == -1 && d.s < 0 ? std::numeric_limits<int64_t>::min() : stop);
    axes.push_back(a);
    steps.push_back(d.s);
  }
  const int y = cx.node("Slice", {xv, cx.i64s("starts", starts), cx.i64s("ends", ends),
                                  cx.i64s("axes", axes), cx.i64s("steps", steps)});
  // shrink and new axes: the stored output shape
  const Shape out = cx.shape_of_tensor(cx.outs_[0]);
  if (shape_numel(out) != shape_numel(cx.shape(y)))
    cx.fail("outputs", "the slice has shape " + shape_str(cx.shape(y)) + " but the output is " +
                           shape_str(out));
  if (out == cx.shape(y)) return TV{y, {}};
  return cx.reshape_to(TV{y, {}}, out);
}

TV slice(Translator& cx) {
  same_quant(cx, 0, "SLICE");
  const TV x = cx.in(0);
  const int xv = cx.as_source(x);
  const Shape xs = cx.shape(xv);
  const auto begin = cx.const_ints(1, "begin"), size = cx.const_ints(2, "size");
  if (begin.size() != xs.size() || size.size() != xs.size())
    cx.fail("begin", "begin and size must have one value per input dimension");
  std::vector<int64_t> ends;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (begin[i] < 0 || begin[i] > xs[i])
      cx.fail("begin", "begin out of range: " + ints_str(begin));
    const int64_t e = size[i] == -1 ? xs[i] : begin[i] + size[i];
    if (size[i] < -1 || e > xs[i]) cx.fail("size", "size out of range: " + ints_str(size));
    ends.push_back(e);
  }
  return TV{cx.node("Slice", {xv, cx.i64s("starts", begin), cx.i64s("ends", ends)}), {}};
}

TV gather(Translator& cx, Op op) {
  auto* o = op->builtin_options_as_GatherOptions();
  if (o && o->batch_dims() != 0) cx.unsupported_here("GATHER with batch_dims");
  same_quant(cx, 0, "GATHER");
  const int xv = cx.as_source(cx.in(0));
  const int iv = cx.as_source(cx.in(1));
  const int r = cx.rank(xv);
  int64_t axis = o ? o->axis() : 0;
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) cx.fail("axis", "axis out of range for rank " + std::to_string(r));
  Attributes at;
  at.set("axis", axis);
  return TV{cx.node("Gather", {xv, iv}, at), {}};
}

TV tile(Translator& cx) {
  same_quant(cx, 0, "TILE");
  const int xv = cx.as_source(cx.in(0));
  const auto reps = cx.const_ints(1, "multiples");
  return TV{cx.node("Tile", {xv, cx.i64s("repeats", reps)}), {}};
}

TV pack(Translator& cx, Op op) {
  auto* o = op->builtin_options_as_PackOptions();
  std::vector<int> vs;
  for (size_t k = 0; k < cx.ins_.size(); ++k) {
    same_quant(cx, static_cast<int>(k), "PACK");
    vs.push_back(cx.as_source(cx.in(static_cast<int>(k))));
  }
  if (vs.empty()) cx.fail("inputs", "PACK without inputs");
  const int r = cx.rank(vs[0]) + 1;
  int64_t axis = o ? o->axis() : 0;
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) cx.fail("axis", "axis out of range for rank " + std::to_string(r));
  std::vector<int> us;
  for (int v : vs) us.push_back(cx.node("Unsqueeze", {v, cx.i64s("axes", {axis})}));
  Attributes at;
  at.set("axis", axis);
  return TV{cx.node("Concat", us, at), {}};
}

TV cast(Translator& cx) {
  const TV x = cx.in(0);
  const DType ot = cx.dtype_of_tensor(cx.outs_[0]);
  const int64_t code = onnx_dtype_code(ot);
  if (code == 0) cx.unsupported_here(std::string("CAST to ") + dtype_name(ot));
  Attributes at;
  at.set("to", code);
  return TV{cx.node("Cast", {x.v}, at), x.perm};
}

TV arg_minmax(Translator& cx, bool max) {
  const int xv = cx.as_source(cx.in(0));
  const auto axis = cx.const_ints(1, "axis");
  const int r = cx.rank(xv);
  if (axis.size() != 1) cx.fail("axis", "expected one axis");
  int64_t a = axis[0] < 0 ? axis[0] + r : axis[0];
  if (a < 0 || a >= r) cx.fail("axis", "axis out of range for rank " + std::to_string(r));
  Attributes at;
  at.set("axis", a);
  at.set("keepdims", int64_t{0});
  int y = cx.node(max ? "ArgMax" : "ArgMin", {xv}, at);
  const DType ot = cx.dtype_of_tensor(cx.outs_[0]);
  if (ot != DType::i64) {
    Attributes c;
    c.set("to", onnx_dtype_code(ot));
    y = cx.node("Cast", {y}, c);
  }
  return TV{y, {}};
}

/// Comparisons. int8 (comparisons.cc): both inputs rescaled as TFLite Micro does; other
/// quantized types compare raw values, which needs both inputs quantized alike.
TV compare(Translator& cx, const std::string& onnx_op, bool negate, const std::string& mode) {
  const TV x = cx.in(0), y = cx.in(1);
  if (cx.dtype(x.v) == DType::i8) {
    const QP a = cx.qparams(cx.ins_[0]), b = cx.qparams(cx.ins_[1]);
    cx.require_quant_params(cx.ins_[0], a, "quantization");
    cx.require_quant_params(cx.ins_[1], b, "quantization");
    if (a.scale.size() != 1 || b.scale.size() != 1 || a.scale[0] >= 1.0f || b.scale[0] >= 1.0f)
      cx.unsupported_here("int8 comparison with per-channel or >= 1 scales");
    int32_t m1 = 0, m2 = 0;
    const int s1 = cx.multiplier_or_fail(static_cast<double>(a.scale[0]), &m1, "quantization"),
              s2 = cx.multiplier_or_fail(static_cast<double>(b.scale[0]), &m2, "quantization");
    Attributes at;
    at.set("mode", mode);
    at.set("left_shift", int64_t{8});
    at.set("input1_offset", -a.zp[0]);
    at.set("input1_multiplier", int64_t{m1});
    at.set("input1_shift", int64_t{s1});
    at.set("input2_offset", -b.zp[0]);
    at.set("input2_multiplier", int64_t{m2});
    at.set("input2_shift", int64_t{s2});
    const std::vector<int> p = cx.common_layout(x, y);
    return TV{cx.node("TFLiteQuantizedCompare", {cx.in_layout(x, p), cx.in_layout(y, p)}, at), p};
  }
  if (is_quant_type(cx.dtype(x.v))) {
    const QP a = cx.qparams(cx.ins_[0]), b = cx.qparams(cx.ins_[1]);
    if (a.scale != b.scale || a.zp != b.zp)
      cx.unsupported_here("quantized comparison of inputs with different quantization");
  }
  const std::vector<int> p = cx.common_layout(x, y);
  int v = cx.node(onnx_op, {cx.in_layout(x, p), cx.in_layout(y, p)});
  if (negate) v = cx.node("Not", {v});
  return TV{v, p};
}

TV select(Translator& cx) {
  const TV c = cx.in(0), a = cx.in(1), b = cx.in(2);
  if (is_quant_type(cx.dtype(a.v))) {
    const QP qa = cx.qparams(cx.ins_[1]), qb = cx.qparams(cx.ins_[2]), qo = cx.qparams(cx.outs_[0]);
    if (qa.scale != qo.scale || qa.zp != qo.zp || qb.scale != qo.scale || qb.zp != qo.zp)
      cx.unsupported_here("quantized SELECT with different quantization");
  }
  return TV{cx.node("Where", {cx.as_source(c), cx.as_source(a), cx.as_source(b)}), {}};
}

TV minmax(Translator& cx, bool max) {
  const TV x = cx.in(0), y = cx.in(1);
  if (is_quant_type(cx.dtype(x.v))) {  // maximum_minimum.cc compares the raw values
    same_quant(cx, 0, max ? "MAXIMUM" : "MINIMUM");
    same_quant(cx, 1, max ? "MAXIMUM" : "MINIMUM");
  }
  const std::vector<int> p = cx.common_layout(x, y);
  return TV{cx.node(max ? "Max" : "Min", {cx.in_layout(x, p), cx.in_layout(y, p)}), p};
}

TV depth_space(Translator& cx, Op op, bool to_depth) {
  int64_t bs = 0;
  if (to_depth) {
    if (auto* o = op->builtin_options_as_SpaceToDepthOptions()) bs = o->block_size();
  } else if (auto* o = op->builtin_options_as_DepthToSpaceOptions()) {
    bs = o->block_size();
  }
  if (bs < 1) cx.fail("block_size", "block size must be >= 1");
  same_quant(cx, 0, to_depth ? "SPACE_TO_DEPTH" : "DEPTH_TO_SPACE");
  const int xv = cx.as_nchw(cx.in(0));
  Attributes at;
  at.set("blocksize", bs);
  if (!to_depth) at.set("mode", std::string("DCR"));  // TF's NHWC order
  return TV{cx.node(to_depth ? "SpaceToDepth" : "DepthToSpace", {xv}, at), kNHWC};
}

// RESIZE_NEAREST_NEIGHBOR, any dtype: reference_ops::ResizeNearestNeighbor's source index per
// output row and column (GetNearestNeighbor, float arithmetic), as two constant-index Gathers
// in NHWC; quantized tensors keep their quantization.
TV resize_nearest(Translator& cx, Op op) {
  bool align = false, half = false;
  if (auto* o = op->builtin_options_as_ResizeNearestNeighborOptions())
    align = o->align_corners(), half = o->half_pixel_centers();
  same_quant(cx, 0, "RESIZE_NEAREST_NEIGHBOR");
  const int xv = cx.as_source(cx.in(0));
  const Shape xs = cx.shape(xv);
  if (xs.size() != 4) cx.fail("input", "expected an NHWC input, found " + shape_str(xs));
  const auto size = cx.const_ints(1, "size");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1 || size[0] > kMaxTensorElements ||
      size[1] > kMaxTensorElements)
    cx.fail("size", "expected (new_height, new_width), found " + ints_str(size));
  auto indices = [&](int64_t in, int64_t out) {
    const float scale = (align && out > 1)
                            ? static_cast<float>(in - 1) / static_cast<float>(out - 1)
                            : static_cast<float>(in) / static_cast<float>(out);
    const float offset = half ? 0.5f : 0.0f;
    std::vector<int64_t> idx;
    for (int64_t v = 0; v < out; ++v) {
      const float p = (static_cast<float>(v) + offset) * scale;
      int64_t k = align ? static_cast<int64_t>(std::round(p)) : static_cast<int64_t>(std::floor(p));
      k = std::min(k, in - 1);
      if (half) k = std::max<int64_t>(k, 0);
      idx.push_back(k);
    }
    return idx;
  };
  Attributes a1, a2;
  a1.set("axis", int64_t{1});
  a2.set("axis", int64_t{2});
  const int rows = cx.node("Gather", {xv, cx.i64s("rows", indices(xs[1], size[0]))}, a1);
  return TV{cx.node("Gather", {rows, cx.i64s("cols", indices(xs[2], size[1]))}, a2), {}};
}

TV float_unary(Translator& cx, const std::string& onnx_op) {
  const TV x = cx.in(0);
  if (!is_float(cx.dtype(x.v))) cx.unsupported_here("quantized or integer " + onnx_op);
  return TV{cx.node(onnx_op, {x.v}), x.perm};
}

}  // namespace

void add_index_converters(ConverterTable& t) {
  t[fb::BuiltinOperator_STRIDED_SLICE] = strided_slice;
  t[fb::BuiltinOperator_SLICE] = [](Translator& cx, Op) { return slice(cx); };
  t[fb::BuiltinOperator_GATHER] = gather;
  t[fb::BuiltinOperator_TILE] = [](Translator& cx, Op) { return tile(cx); };
  t[fb::BuiltinOperator_PACK] = pack;
  t[fb::BuiltinOperator_CAST] = [](Translator& cx, Op) { return cast(cx); };
  t[fb::BuiltinOperator_ARG_MAX] = [](Translator& cx, Op) { return arg_minmax(cx, true); };
  t[fb::BuiltinOperator_ARG_MIN] = [](Translator& cx, Op) { return arg_minmax(cx, false); };
  t[fb::BuiltinOperator_LESS] = [](Translator& cx, Op) { return compare(cx, "Less", false, "lt"); };
  t[fb::BuiltinOperator_LESS_EQUAL] = [](Translator& cx, Op) {
    return compare(cx, "LessOrEqual", false, "le");
  };
  t[fb::BuiltinOperator_GREATER] = [](Translator& cx, Op) {
    return compare(cx, "Greater", false, "gt");
  };
  t[fb::BuiltinOperator_GREATER_EQUAL] = [](Translator& cx, Op) {
    return compare(cx, "GreaterOrEqual", false, "ge");
  };
  t[fb::BuiltinOperator_EQUAL] = [](Translator& cx, Op) {
    return compare(cx, "Equal", false, "eq");
  };
  t[fb::BuiltinOperator_NOT_EQUAL] = [](Translator& cx, Op) {
    return compare(cx, "Equal", true, "ne");
  };
  t[fb::BuiltinOperator_SELECT] =
      t[fb::BuiltinOperator_SELECT_V2] = [](Translator& cx, Op) { return select(cx); };
  t[fb::BuiltinOperator_MAXIMUM] = [](Translator& cx, Op) { return minmax(cx, true); };
  t[fb::BuiltinOperator_MINIMUM] = [](Translator& cx, Op) { return minmax(cx, false); };
  t[fb::BuiltinOperator_RESIZE_NEAREST_NEIGHBOR] = resize_nearest;
  t[fb::BuiltinOperator_SPACE_TO_DEPTH] = [](Translator& cx, Op op) {
    return depth_space(cx, op, true);
  };
  t[fb::BuiltinOperator_DEPTH_TO_SPACE] = [](Translator& cx, Op op) {
    return depth_space(cx, op, false);
  };
  static const std::map<int, std::string> unary = {
      {fb::BuiltinOperator_FLOOR, "Floor"}, {fb::BuiltinOperator_CEIL, "Ceil"},
      {fb::BuiltinOperator_ROUND, "Round"}, {fb::BuiltinOperator_LOG, "Log"},
      {fb::BuiltinOperator_SIN, "Sin"},     {fb::BuiltinOperator_COS, "Cos"}};
  for (const auto& [code, name] : unary)
    t[code] = [name = name](Translator& cx, Op) { return float_unary(cx, name); };
}

}  // namespace anvil::tflite_import
