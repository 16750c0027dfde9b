#include <algorithm>
#include <cmath>

#include "import/tflite/tflite_translator.h"

namespace anvil::tflite_import {
namespace {

TV concat(Translator& cx, const fb::Operator* op) {
  auto* o = op->builtin_options_as_ConcatenationOptions();
  if (!o) cx.fail("builtin_options", "missing ConcatenationOptions");
  std::vector<TV> xs;
  for (size_t k = 0; k < cx.ins_.size(); ++k) xs.push_back(cx.in(static_cast<int>(k)));
  if (xs.empty()) cx.fail("inputs", "CONCATENATION without inputs");
  const int r = cx.rank(xs[0].v);
  std::vector<int> p = xs[0].perm;
  for (const auto& x : xs) {
    if (cx.rank(x.v) != r) cx.fail("inputs", "inputs of different ranks");
    if (x.perm != p && !cx.const_of(x.v)) p.clear();
  }
  int64_t axis = o->axis();
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r)
    cx.fail("axis",
            "axis " + std::to_string(o->axis()) + " out of range for rank " + std::to_string(r));
  std::vector<int> vs;
  for (const auto& x : xs) vs.push_back(cx.in_layout(x, p));
  if (is_quant_type(cx.dtype(vs[0]))) {
    // TFLite's kernels need every input quantized like the output; an input that is not gets
    // the requantization a QUANTIZE operator would apply (Anvil's extension)
    const QP qo = cx.qparams(cx.outs_[0]);
    cx.require_quant_params(cx.outs_[0], qo, "quantization");
    for (size_t k = 0; k < cx.ins_.size(); ++k) {
      const QP qt = cx.qparams(cx.ins_[k]);
      if (qt.scale == qo.scale && qt.zp == qo.zp) continue;
      cx.require_quant_params(cx.ins_[k], qt, "quantization");
      if (qt.scale.size() != 1 || qo.scale.size() != 1)
        cx.unsupported_here("per-channel quantized CONCATENATION");
      int32_t m = 0;
      const int sh = cx.multiplier_or_fail(
          static_cast<double>(qt.scale[0]) / static_cast<double>(qo.scale[0]), &m, "quantization");
      if (sh > 30) cx.fail("quantization", "requantization factor too large");
      Attributes rq;
      rq.set("dtype", qdtype_name(cx.dtype(vs[k])));
      rq.set("multiplier", int64_t{m});
      rq.set("shift", int64_t{sh});
      rq.set("input_zero_point", qt.zp[0]);
      rq.set("output_zero_point", qo.zp[0]);
      vs[k] = cx.node("TFLiteRequantize", {vs[k]}, rq);
    }
    if (o->fused_activation_function() != fb::ActivationFunctionType_NONE)
      cx.unsupported_here("fused activation on a quantized CONCATENATION");
  }
  Attributes at;
  at.set("axis", int64_t{p.empty() ? axis : p[static_cast<size_t>(axis)]});
  return cx.act(TV{cx.node("Concat", vs, at), p}, o->fused_activation_function());
}

// SPLIT (axis, input; num_splits equal parts), SPLIT_V (input, size_splits with at most one
// -1, axis) and UNPACK (num slices of size 1 along axis, the axis removed): one canonical Split
// in the input's layout; every output keeps that layout (UNPACK's go through the source
// layout, where the removed axis is known). Quantization passes through unchanged, as in
// TFLite's kernels (the outputs must be quantized like the input).
void split_quant_check(Translator& cx, int in_k, const char* what) {
  const int ti = cx.ins_[static_cast<size_t>(in_k)];
  if (!is_quant_type(cx.dtype_of_tensor(ti))) return;
  const QP qi = cx.qparams(ti);
  for (int to : cx.outs_) {
    const QP qo = cx.qparams(to);
    if (qi.scale != qo.scale || qi.zp != qo.zp)
      cx.unsupported_here(std::string("quantized ") + what +
                          " with an output quantized unlike its input");
  }
}

int64_t split_axis(Translator& cx, int64_t axis, int r) {
  if (axis < -r || axis >= r)
    cx.fail("axis", "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(r));
  return axis < 0 ? axis + r : axis;
}

std::vector<TV> split_parts(Translator& cx, const TV& x, int64_t axis,
                            const std::vector<int64_t>& sizes, int n) {
  const int r = cx.rank(x.v);
  axis = split_axis(cx, axis, r);
  if (n < 1 || static_cast<size_t>(n) != cx.outs_.size())
    cx.fail("num_splits", "is " + std::to_string(n) + " but the operator has " +
                              std::to_string(cx.outs_.size()) + " outputs");
  Attributes at;
  at.set("axis", int64_t{x.perm.empty() ? axis : x.perm[static_cast<size_t>(axis)]});
  std::vector<int> ins = {x.v};
  if (!sizes.empty()) ins.push_back(cx.i64s("split", sizes));
  std::vector<TV> ys;
  for (int v : cx.nodes("Split", ins, at, n)) ys.push_back(TV{v, x.perm});
  return ys;
}

TV outputs(Translator& cx, const std::vector<TV>& ys) {
  cx.more_outputs(std::vector<TV>(ys.begin() + 1, ys.end()));
  return ys[0];
}

TV split(Translator& cx, const fb::Operator* op) {
  auto* o = op->builtin_options_as_SplitOptions();
  split_quant_check(cx, 1, "SPLIT");
  const TV x = cx.in(1);
  const auto axis = cx.const_ints(0, "axis");
  if (axis.size() != 1) cx.fail("axis", "must hold one value");
  const int n = o ? o->num_splits() : static_cast<int>(cx.outs_.size());
  const int64_t dim = cx.src_shape(x)[static_cast<size_t>(split_axis(cx, axis[0], cx.rank(x.v)))];
  if (n < 1 || dim % n != 0)
    cx.fail("num_splits", "dimension " + std::to_string(dim) + " cannot be split into " +
                              std::to_string(n) + " equal parts");
  return outputs(
      cx, split_parts(cx, x, axis[0], std::vector<int64_t>(static_cast<size_t>(n), dim / n), n));
}

TV split_v(Translator& cx, const fb::Operator* op) {
  auto* o = op->builtin_options_as_SplitVOptions();
  split_quant_check(cx, 0, "SPLIT_V");
  const TV x = cx.in(0);
  std::vector<int64_t> sizes = cx.const_ints(1, "size_splits");
  const auto axis_v = cx.const_ints(2, "axis");
  if (axis_v.size() != 1) cx.fail("axis", "must hold one value");
  const int n = o ? o->num_splits() : static_cast<int>(sizes.size());
  if (static_cast<int>(sizes.size()) != n)
    cx.fail("size_splits",
            "has " + std::to_string(sizes.size()) + " sizes for " + std::to_string(n) + " splits");
  const int64_t dim = cx.src_shape(x)[static_cast<size_t>(split_axis(cx, axis_v[0], cx.rank(x.v)))];
  int64_t known = 0, free_at = -1;
  for (size_t k = 0; k < sizes.size(); ++k) {
    if (sizes[k] == -1 && free_at < 0) {
      free_at = static_cast<int64_t>(k);
      continue;
    }
    if (sizes[k] < 0) cx.fail("size_splits", "sizes must be >= 0 (one may be -1)");
    known += sizes[k];
  }
  if (free_at >= 0) sizes[static_cast<size_t>(free_at)] = dim - known;
  if ((free_at >= 0 && known > dim) || (free_at < 0 && known != dim))
    cx.fail("size_splits",
            "sizes " + ints_str(sizes) + " do not add up to dimension " + std::to_string(dim));
  return outputs(cx, split_parts(cx, x, axis_v[0], sizes, n));
}

TV unpack(Translator& cx, const fb::Operator* op) {
  auto* o = op->builtin_options_as_UnpackOptions();
  split_quant_check(cx, 0, "UNPACK");
  const TV x = cx.in(0);
  const int r = cx.rank(x.v);
  const int64_t axis = split_axis(cx, o ? o->axis() : 0, r);
  const int64_t dim = cx.src_shape(x)[static_cast<size_t>(axis)];
  const int n = o && o->num() > 0 ? o->num() : static_cast<int>(dim);
  if (n != dim)
    cx.fail("num", "is " + std::to_string(n) + " but the axis has " + std::to_string(dim));
  std::vector<TV> ys = split_parts(cx, TV{cx.as_source(x), {}}, axis, {}, n);
  for (auto& y : ys) y.v = cx.node("Squeeze", {y.v, cx.i64s("axes", {axis})});
  return outputs(cx, ys);
}

TV reshape(Translator& cx, const fb::Operator* op) {
  TV x = cx.in(0);
  std::vector<int64_t> target;
  bool have = false;
  if (cx.has_in(1) && cx.const_of(cx.in(1).v)) {
    target = cx.const_ints(1, "shape");
    have = true;
  } else if (auto* o = op->builtin_options_as_ReshapeOptions(); o && o->new_shape()) {
    for (int32_t d : *o->new_shape()) target.push_back(d);
    have = true;
  }
  if (!have) target = cx.shape_of_tensor(cx.outs_[0]);
  int minus = 0;
  for (int64_t d : target) {
    if (d == -1)
      ++minus;
    else if (d < 0)
      cx.fail("new_shape", "bad target shape " + ints_str(target));
    else if (d == 0)
      cx.unsupported_here("RESHAPE to a zero-sized dimension");
  }
  if (minus > 1) cx.fail("new_shape", "more than one -1 in " + ints_str(target));
  return cx.reshape_to(x, target);
}

// SQUEEZE, EXPAND_DIMS: the result shape is what TFLite computed and stored; only element
// order matters.
TV squeeze(Translator& cx, const fb::Operator*) {
  Shape s = cx.shape_of_tensor(cx.outs_[0]);
  if (shape_numel(s) != shape_numel(cx.src_shape(cx.in(0))))
    cx.fail("shape", "output " + shape_str(s) + " does not match the input's size");
  return cx.reshape_to(cx.in(0), s);
}

TV pad(Translator& cx, bool v2) {
  TV x = cx.in(0);
  const int r = cx.rank(x.v);
  auto pads = cx.const_ints(1, "paddings");
  if (static_cast<int>(pads.size()) != 2 * r)
    cx.fail("paddings",
            "expected (" + std::to_string(r) + ", 2) paddings, found " + ints_str(pads));
  for (int64_t p : pads)
    if (p < 0 || p > kMaxTensorElements) cx.fail("paddings", "bad paddings " + ints_str(pads));
  std::vector<int64_t> onnx(static_cast<size_t>(2 * r));
  for (int i = 0; i < r; ++i) {  // source axis i -> canonical axis perm[i]
    const int c = x.perm.empty() ? i : x.perm[static_cast<size_t>(i)];
    onnx[static_cast<size_t>(c)] = pads[static_cast<size_t>(2 * i)];
    onnx[static_cast<size_t>(c + r)] = pads[static_cast<size_t>(2 * i + 1)];
  }
  std::vector<int> ins = {x.v, cx.i64s("pads", onnx)};
  const DType xt = cx.dtype(x.v);
  if (v2 && cx.has_in(2)) {
    const Tensor& cv = cx.const_in(2, "constant_values");
    if (cv.numel() != 1 || cv.dtype() != xt)
      cx.fail("constant_values", "expected one value of the input's dtype");
    if (is_quant_type(xt)) {
      const QP qi = cx.qparams(cx.ins_[0]), qc = cx.qparams(cx.ins_[2]);
      if (qi.scale != qc.scale || qi.zp != qc.zp)
        cx.unsupported_here("PADV2 value with its own quantization");
    }
    ins.push_back(cx.cst("value", cv.reshaped({})));
  } else if (is_quant_type(xt)) {  // TFLite pads quantized tensors with the output zero point
    const QP qo = cx.qparams(cx.outs_[0]);
    Tensor z(xt, {});
    z.set(0, static_cast<double>(qo.present() ? qo.zp[0] : 0));
    ins.push_back(cx.cst("value", z));
  }
  if (is_quant_type(xt)) {
    const QP qi = cx.qparams(cx.ins_[0]), qo = cx.qparams(cx.outs_[0]);
    if (qi.scale != qo.scale || qi.zp != qo.zp)
      cx.unsupported_here("quantized PAD with different input and output quantization");
  }
  return TV{cx.node("Pad", ins), x.perm};
}

TV reduce(Translator& cx, const std::string& onnx_op, const fb::Operator* op) {
  auto* o = op->builtin_options_as_ReducerOptions();
  const bool keep = o && o->keep_dims();
  TV x = cx.in(0);
  if (is_quant_type(cx.dtype(x.v))) cx.unsupported_here("quantized reductions");
  const int r = cx.rank(x.v);
  auto axes = cx.const_ints(1, "axis");
  std::vector<int> p = keep ? x.perm : std::vector<int>{};
  const int xv = cx.in_layout(x, p);
  std::vector<int64_t> canon;
  for (int64_t a : axes) {
    int64_t aa = a < 0 ? a + r : a;
    if (aa < 0 || aa >= r)
      cx.fail("axis", "axis " + std::to_string(a) + " out of range for rank " + std::to_string(r));
    const int64_t c = p.empty() ? aa : p[static_cast<size_t>(aa)];
    if (std::find(canon.begin(), canon.end(), c) == canon.end())
      canon.push_back(c);  // TFLite's ResolveAxis drops repeated axes
  }
  Attributes at;
  at.set("keepdims", int64_t{keep ? 1 : 0});
  return TV{cx.node(onnx_op, {xv, cx.i64s("axes", canon)}, at), p};
}

TV transpose(Translator& cx) {
  TV x = cx.in(0);
  auto perm = cx.const_ints(1, "perm");
  const int r = cx.rank(x.v);
  if (static_cast<int>(perm.size()) != r)
    cx.fail("perm",
            "permutation " + ints_str(perm) + " for a rank-" + std::to_string(r) + " tensor");
  std::vector<int> qp;
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (int64_t a : perm) {
    if (a < 0 || a >= r || seen[static_cast<size_t>(a)])
      cx.fail("perm", "not a permutation: " + ints_str(perm));
    seen[static_cast<size_t>(a)] = true;
    qp.push_back(static_cast<int>(a));
  }
  return TV{cx.node("Identity", {cx.view(x, qp)}), {}};
}

}  // namespace

void add_shape_converters(ConverterTable& t) {
  using Op = const fb::Operator*;
  t[fb::BuiltinOperator_CONCATENATION] = concat;
  t[fb::BuiltinOperator_SPLIT] = split;
  t[fb::BuiltinOperator_SPLIT_V] = split_v;
  t[fb::BuiltinOperator_UNPACK] = unpack;
  t[fb::BuiltinOperator_RESHAPE] = reshape;
  t[fb::BuiltinOperator_SQUEEZE] = t[fb::BuiltinOperator_EXPAND_DIMS] = squeeze;
  t[fb::BuiltinOperator_PAD] = [](Translator& cx, Op) { return pad(cx, false); };
  t[fb::BuiltinOperator_PADV2] = [](Translator& cx, Op) { return pad(cx, true); };
  static const std::map<int, std::string> reduce_ops = {
      {fb::BuiltinOperator_MEAN, "ReduceMean"},
      {fb::BuiltinOperator_SUM, "ReduceSum"},
      {fb::BuiltinOperator_REDUCE_MAX, "ReduceMax"},
      {fb::BuiltinOperator_REDUCE_MIN, "ReduceMin"},
      {fb::BuiltinOperator_REDUCE_PROD, "ReduceProd"}};
  for (const auto& [code, name] : reduce_ops)
    t[code] = [name = name](Translator& cx, Op op) { return reduce(cx, name, op); };
  t[fb::BuiltinOperator_TRANSPOSE] = [](Translator& cx, Op) { return transpose(cx); };
}

}  // namespace anvil::tflite_import
