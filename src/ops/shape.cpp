// Reference kernels for shape ops (ONNX opset 13-17 semantics): Identity, Dropout (inference),
// Reshape, Flatten, Squeeze, Unsqueeze, Expand, Shape, Size, ConstantOfShape, Range, Cast.
// Shape arguments are INPUTS (canonical form); shape rules read them as constants, kernels
// re-derive the output shape from their actual inputs and check it against the graph.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "core/strings.h"
#include "ops/broadcast.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

void copy_bytes(Tensor& out, const Tensor& in) {
  if (in.nbytes()) std::memcpy(out.raw(), in.raw(), in.nbytes());
}

void cast_values(const Tensor& x, Tensor& y);

// --- Identity / Dropout ------------------------------------------------------------------------

OpDef make_identity() {
  OpDef d;
  d.name = "Identity";
  d.category = "tensor";
  d.doc = "output = input (any dtype)";
  d.infer = [](InferContext& c) { c.set_output(0, c.dtype(0), c.shape(0)); };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    copy_bytes(output(c, 0, x.dtype(), x.shape()), x);
  };
  return d;
}

// Dropout at inference: output = data, mask all true. training_mode=true with ratio > 0 is
// random and not supported.
template <class Ctx>
void check_dropout_inference(const Ctx& c, const Tensor* ratio, const Tensor* training) {
  if (training && training->numel() >= 1 && training->raw() && training->get(0) != 0) {
    double r = ratio && ratio->numel() >= 1 && ratio->raw() ? ratio->get(0) : 0.5;
    if (r != 0)
      c.fail("training_mode",
             "training mode (random dropout) is not supported; only inference (output = input)");
  }
}

OpDef make_dropout() {
  OpDef d;
  d.name = "Dropout";
  d.category = "tensor";
  d.doc = "inference: output = data, optional mask output all true";
  d.min_inputs = 1;
  d.max_inputs = 3;
  d.min_outputs = 1;
  d.max_outputs = 2;
  d.attrs = {{"seed", AttrType::Int, "random seed (unused at inference)"}};
  d.infer = [](InferContext& c) {
    if (c.has_input(2)) {
      if (c.dtype(2) != DType::boolean) c.fail("training_mode", "must be a bool scalar");
      check_dropout_inference(c, c.constant(1), c.constant(2));
    }
    c.set_output(0, c.dtype(0), c.shape(0));
    if (c.num_outputs() > 1) c.set_output(1, DType::boolean, c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    const Tensor* ratio = has_input(c, 1) ? &input(c, 1, "ratio") : nullptr;
    const Tensor* tm = has_input(c, 2) ? &input(c, 2, "training_mode") : nullptr;
    check_dropout_inference(c, ratio, tm);
    copy_bytes(output(c, 0, x.dtype(), x.shape()), x);
    if (c.outputs.size() > 1) {
      Tensor& m = output(c, 1, DType::boolean, x.shape());
      if (m.nbytes()) std::memset(m.raw(), 1, m.nbytes());
    }
  };
  return d;
}

// --- Reshape -----------------------------------------------------------------------------------

template <class Ctx>
Shape reshape_plan(const Ctx& c, const Shape& in, const std::vector<int64_t>& target,
                   bool allowzero) {
  Shape out(target.size());
  int infer_at = -1;
  int64_t known = 1;
  bool has_zero = false;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t v = target[i];
    if (v == -1) {
      if (infer_at >= 0) c.fail("shape", "more than one -1 in " + ints_str(target));
      infer_at = static_cast<int>(i);
      continue;
    }
    if (v < -1)
      c.fail("shape", "invalid dimension " + std::to_string(v) + " in " + ints_str(target));
    if (v == 0 && !allowzero) {
      if (i >= in.size())
        c.fail("shape", "0 at position " + std::to_string(i) + " copies a dimension the input " +
                            shape_str(in) + " does not have");
      v = in[i];
    }
    if (v == 0) has_zero = true;
    out[i] = v;
    if (v != 0 && known > std::numeric_limits<int64_t>::max() / v)
      c.fail("shape", "target shape " + ints_str(target) + " is too large");
    known *= v;
  }
  const int64_t n = shape_numel(in);
  if (infer_at >= 0) {
    if (allowzero && has_zero)
      c.fail("shape", "allowzero=1 does not allow both 0 and -1 in " + ints_str(target));
    if (known == 0 || n % known != 0)
      c.fail("shape", "cannot reshape " + shape_str(in) + " (" + std::to_string(n) +
                          " elements) to " + ints_str(target));
    out[static_cast<size_t>(infer_at)] = n / known;
  } else if (known != n) {
    c.fail("shape", "cannot reshape " + shape_str(in) + " (" + std::to_string(n) +
                        " elements) to " + ints_str(target) + " (" + std::to_string(known) +
                        " elements)");
  }
  return out;
}

OpDef make_reshape() {
  OpDef d;
  d.name = "Reshape";
  d.category = "shape";
  d.doc = "reshape to the `shape` input (0 copies the input dim unless allowzero, -1 infers)";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {{"allowzero", AttrType::Int, "1: a 0 in shape means 0 (default 0: copy)"}};
  d.infer = [](InferContext& c) {
    if (c.rank(1) != 1)
      c.fail("shape", "must be a 1-D tensor, found shape " + shape_str(c.shape(1)));
    auto t = int_values(c, c.require_constant(1, "shape"), "shape");
    c.set_output(0, c.dtype(0),
                 reshape_plan(c, c.shape(0), t, c.attrs().get_int("allowzero", 0) != 0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    auto t = int_values(c, input(c, 1, "shape"), "shape");
    Shape s = reshape_plan(c, x.shape(), t, c.attrs().get_int("allowzero", 0) != 0);
    copy_bytes(output(c, 0, x.dtype(), s), x);
  };
  return d;
}

// --- Flatten -----------------------------------------------------------------------------------

template <class Ctx>
Shape flatten_plan(const Ctx& c, const Shape& in, int64_t axis) {
  const int64_t r = static_cast<int64_t>(in.size());
  if (axis < -r || axis > r)
    c.fail("axis", "axis " + std::to_string(axis) + " is out of range [" + std::to_string(-r) +
                       ", " + std::to_string(r) + "]");
  if (axis < 0) axis += r;
  return {prod(in, 0, static_cast<size_t>(axis)), prod(in, static_cast<size_t>(axis), in.size())};
}

OpDef make_flatten() {
  OpDef d;
  d.name = "Flatten";
  d.category = "shape";
  d.doc = "2-D (prod(dims[:axis]), prod(dims[axis:])); axis default 1, in [-r, r]";
  d.attrs = {{"axis", AttrType::Int, "first dimension of the second output dim (default 1)"}};
  d.infer = [](InferContext& c) {
    c.set_output(0, c.dtype(0), flatten_plan(c, c.shape(0), c.attrs().get_int("axis", 1)));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    Shape s = flatten_plan(c, x.shape(), c.attrs().get_int("axis", 1));
    copy_bytes(output(c, 0, x.dtype(), s), x);
  };
  return d;
}

// --- Squeeze / Unsqueeze -------------------------------------------------------------------------

template <class Ctx>
Shape squeeze_plan(const Ctx& c, const Shape& in, const std::vector<int64_t>* axes) {
  const int64_t r = static_cast<int64_t>(in.size());
  std::vector<bool> drop(in.size(), false);
  if (!axes) {
    for (size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
  } else {
    for (int64_t a : *axes) {
      int64_t k = normalize_axis(c, a, r, "axes");
      if (drop[static_cast<size_t>(k)])
        c.fail("axes", "axis " + std::to_string(a) + " is repeated");
      if (in[static_cast<size_t>(k)] != 1)
        c.fail("axes", "cannot squeeze axis " + std::to_string(a) + " of size " +
                           std::to_string(in[static_cast<size_t>(k)]) + " (shape " + shape_str(in) +
                           ")");
      drop[static_cast<size_t>(k)] = true;
    }
  }
  Shape out;
  for (size_t i = 0; i < in.size(); ++i)
    if (!drop[i]) out.push_back(in[i]);
  return out;
}

OpDef make_squeeze() {
  OpDef d;
  d.name = "Squeeze";
  d.category = "shape";
  d.doc = "removes size-1 dims (those in the optional `axes` input, or all)";
  d.min_inputs = 1;
  d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    std::vector<int64_t> axes;
    if (c.has_input(1)) axes = int_values(c, c.require_constant(1, "axes"), "axes");
    c.set_output(0, c.dtype(0), squeeze_plan(c, c.shape(0), c.has_input(1) ? &axes : nullptr));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    std::vector<int64_t> axes;
    if (has_input(c, 1)) axes = int_values(c, input(c, 1, "axes"), "axes");
    Shape s = squeeze_plan(c, x.shape(), has_input(c, 1) ? &axes : nullptr);
    copy_bytes(output(c, 0, x.dtype(), s), x);
  };
  return d;
}

template <class Ctx>
Shape unsqueeze_plan(const Ctx& c, const Shape& in, const std::vector<int64_t>& axes) {
  const int64_t r = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> ins(static_cast<size_t>(r), false);
  for (int64_t a : axes) {
    int64_t k = normalize_axis(c, a, r, "axes");
    if (ins[static_cast<size_t>(k)]) c.fail("axes", "axis " + std::to_string(a) + " is repeated");
    ins[static_cast<size_t>(k)] = true;
  }
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) out.push_back(ins[static_cast<size_t>(i)] ? 1 : in[j++]);
  return out;
}

OpDef make_unsqueeze() {
  OpDef d;
  d.name = "Unsqueeze";
  d.category = "shape";
  d.doc = "inserts size-1 dims at `axes` (input; positions in the output, negative ok)";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    auto axes = int_values(c, c.require_constant(1, "axes"), "axes");
    c.set_output(0, c.dtype(0), unsqueeze_plan(c, c.shape(0), axes));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "data");
    auto axes = int_values(c, input(c, 1, "axes"), "axes");
    copy_bytes(output(c, 0, x.dtype(), unsqueeze_plan(c, x.shape(), axes)), x);
  };
  return d;
}

// --- Expand ------------------------------------------------------------------------------------

template <class Ctx>
Shape expand_plan(const Ctx& c, const Shape& in, const std::vector<int64_t>& shape) {
  for (int64_t v : shape)
    if (v < 0) c.fail("shape", "negative dimension in " + ints_str(shape));
  auto out = broadcast_shapes({in, Shape(shape)});
  if (!out)
    c.fail("shape",
           "input shape " + shape_str(in) + " cannot be broadcast with " + ints_str(shape));
  return *out;
}

OpDef make_expand() {
  OpDef d;
  d.name = "Expand";
  d.category = "shape";
  d.doc = "broadcasts the input with the `shape` input (numpy rules, both directions)";
  d.min_inputs = d.max_inputs = 2;
  d.infer = [](InferContext& c) {
    if (c.rank(1) != 1) c.fail("shape", "must be a 1-D tensor");
    auto s = int_values(c, c.require_constant(1, "shape"), "shape");
    c.set_output(0, c.dtype(0), expand_plan(c, c.shape(0), s));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    auto s = int_values(c, input(c, 1, "shape"), "shape");
    Shape out_shape = expand_plan(c, x.shape(), s);
    Tensor& y = output(c, 0, x.dtype(), out_shape);
    for_each_broadcast(out_shape, {x.shape()},
                       [&](int64_t o, const int64_t* off) { copy_elem(y, o, x, off[0]); });
  };
  return d;
}

// --- Shape / Size ------------------------------------------------------------------------------

std::pair<int64_t, int64_t> shape_range(const Attributes& a, int64_t r) {
  int64_t s = a.get_int("start", 0), e = a.get_int("end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = std::clamp<int64_t>(s, 0, r);
  e = std::clamp<int64_t>(e, 0, r);
  return {s, std::max(s, e)};
}

OpDef make_shape() {
  OpDef d;
  d.name = "Shape";
  d.category = "shape";
  d.doc = "the input's shape as i64 (dims [start, end), clamped; negative counts from the back)";
  d.attrs = {{"start", AttrType::Int, "first dim (default 0)"},
             {"end", AttrType::Int, "one past the last dim (default rank)"}};
  d.infer = [](InferContext& c) {
    auto [s, e] = shape_range(c.attrs(), c.rank(0));
    c.set_output(0, DType::i64, {e - s});
  };
  // Reads only the input's shape: constant folding passes a data-less stand-in.
  d.reference = [](KernelContext& c) {
    if (c.inputs.empty() || !c.inputs[0].defined()) c.fail("data", "input is missing");
    const Shape& in = c.inputs[0].shape();
    auto [s, e] = shape_range(c.attrs(), static_cast<int64_t>(in.size()));
    Tensor& y = output(c, 0, DType::i64, {e - s});
    for (int64_t i = s; i < e; ++i) y.data<int64_t>()[i - s] = in[static_cast<size_t>(i)];
  };
  return d;
}

OpDef make_size() {
  OpDef d;
  d.name = "Size";
  d.category = "shape";
  d.doc = "the input's number of elements as an i64 scalar";
  d.infer = [](InferContext& c) { c.set_output(0, DType::i64, {}); };
  d.reference = [](KernelContext& c) {
    if (c.inputs.empty() || !c.inputs[0].defined()) c.fail("data", "input is missing");
    output(c, 0, DType::i64, {}).data<int64_t>()[0] = c.inputs[0].numel();
  };
  return d;
}

// --- ConstantOfShape -----------------------------------------------------------------------------

template <class Ctx>
Tensor constant_of_shape_value(const Ctx& c, const Attributes& a) {
  if (!a.has("value")) return Tensor::scalar<float>(0.0f);
  const Tensor& v = a.get_tensor("value");
  if (v.numel() != 1)
    c.fail("value", "must hold exactly one element, found " + std::to_string(v.numel()));
  return v;
}

template <class Ctx>
Shape constant_of_shape_plan(const Ctx& c, const std::vector<int64_t>& s) {
  for (int64_t v : s)
    if (v < 0) c.fail("input", "negative dimension in " + ints_str(s));
  return Shape(s);
}

OpDef make_constant_of_shape() {
  OpDef d;
  d.name = "ConstantOfShape";
  d.category = "tensor";
  d.doc = "a tensor of the shape given by the input, filled with `value` (default f32 0)";
  d.attrs = {{"value", AttrType::Tensor, "one-element tensor: fill value and dtype"}};
  d.infer = [](InferContext& c) {
    if (c.rank(0) != 1)
      c.fail("input", "must be a 1-D tensor, found shape " + shape_str(c.shape(0)));
    auto s = int_values(c, c.require_constant(0, "input"), "input");
    Tensor v = constant_of_shape_value(c, c.attrs());
    c.set_output(0, v.dtype(), constant_of_shape_plan(c, s));
  };
  d.reference = [](KernelContext& c) {
    auto s = int_values(c, input(c, 0, "input"), "input");
    Tensor v = constant_of_shape_value(c, c.attrs());
    Tensor& y = output(c, 0, v.dtype(), constant_of_shape_plan(c, s));
    for (int64_t i = 0; i < y.numel(); ++i) copy_elem(y, i, v, 0);
  };
  return d;
}

// --- Range -------------------------------------------------------------------------------------

template <class Ctx>
int64_t range_count(const Ctx& c, const Tensor& start, const Tensor& limit, const Tensor& delta) {
  for (const Tensor* t : {&start, &limit, &delta})
    if (t->numel() != 1) c.fail("inputs", "start, limit and delta must be scalars");
  if (is_float(start.dtype())) {
    double s = start.get(0), l = limit.get(0), dl = delta.get(0);
    if (dl == 0 || !std::isfinite(s) || !std::isfinite(l) || !std::isfinite(dl))
      c.fail("delta", "start, limit and delta must be finite and delta non-zero");
    double n = std::ceil((l - s) / dl);
    if (n > 1e12) c.fail("limit", "range has too many elements");
    return n > 0 ? static_cast<int64_t>(n) : 0;
  }
  int64_t s = load_int(start, 0), l = load_int(limit, 0), dl = load_int(delta, 0);
  if (dl == 0) c.fail("delta", "delta must be non-zero");
  // ceil((l - s) / dl) in 128-bit to avoid overflow.
  __int128 num = static_cast<__int128>(l) - s, den = dl;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  if (num <= 0) return 0;
  __int128 n = (num + den - 1) / den;
  if (n > static_cast<__int128>(1000000000000LL)) c.fail("limit", "range has too many elements");
  return static_cast<int64_t>(n);
}

OpDef make_range() {
  OpDef d;
  d.name = "Range";
  d.category = "tensor";
  d.doc = "[start, start + delta, ...) up to limit (exclusive); scalars of one dtype";
  d.min_inputs = d.max_inputs = 3;
  d.infer = [](InferContext& c) {
    DType t = c.dtype(0);
    if (t == DType::boolean || c.dtype(1) != t || c.dtype(2) != t)
      c.fail("inputs", "start, limit and delta must have the same numeric dtype");
    int64_t n = range_count(c, c.require_constant(0, "start"), c.require_constant(1, "limit"),
                            c.require_constant(2, "delta"));
    c.set_output(0, t, {n});
  };
  d.reference = [](KernelContext& c) {
    const Tensor& s = input(c, 0, "start");
    const Tensor& l = input(c, 1, "limit");
    const Tensor& dl = input(c, 2, "delta");
    if (s.dtype() != l.dtype() || s.dtype() != dl.dtype() || s.dtype() == DType::boolean)
      c.fail("inputs", "start, limit and delta must have the same numeric dtype");
    int64_t n = range_count(c, s, l, dl);
    Tensor& y = output(c, 0, s.dtype(), {n});
    if (is_float(s.dtype())) {
      double s0 = s.get(0), d0 = dl.get(0);
      for (int64_t i = 0; i < n; ++i) y.set(i, s0 + static_cast<double>(i) * d0);
    } else {
      int64_t s0 = load_int(s, 0), d0 = load_int(dl, 0);
      for (int64_t i = 0; i < n; ++i) store_int(y, i, s0 + i * d0);
    }
  };
  return d;
}

// --- Cast --------------------------------------------------------------------------------------

template <class Ctx>
DType cast_target(const Ctx& c, const Attributes& a) {
  int64_t code = a.get_int("to");
  DType t;
  if (!dtype_from_onnx(code, t))
    c.fail("to", "unsupported target type code " + std::to_string(code) +
                     " (supported: 1 f32, 2 u8, 3 i8, 5 i16, 6 i32, 7 i64, 9 bool, 10 f16, 11 "
                     "f64, 16 bf16)");
  return t;
}

OpDef make_cast() {
  OpDef d;
  d.name = "Cast";
  d.category = "tensor";
  d.doc = "converts to dtype `to` (ONNX TensorProto code); float->int truncates, int->int wraps";
  d.attrs = {{"to", AttrType::Int, "ONNX TensorProto data type code"},
             {"saturate", AttrType::Int, "float8 only (ignored)"}};
  d.infer = [](InferContext& c) { c.set_output(0, cast_target(c, c.attrs()), c.shape(0)); };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    DType to = cast_target(c, c.attrs());
    cast_values(x, output(c, 0, to, x.shape()));
  };
  return d;
}

void cast_values(const Tensor& x, Tensor& y) {
  const int64_t n = x.numel();
  if (y.dtype() == x.dtype()) {
    copy_bytes(y, x);
  } else if (!is_float(x.dtype()) && !is_float(y.dtype())) {
    for (int64_t i = 0; i < n; ++i) store_int(y, i, load_int(x, i));
  } else if (!is_float(x.dtype())) {
    for (int64_t i = 0; i < n; ++i) y.set(i, static_cast<double>(load_int(x, i)));
  } else {
    for (int64_t i = 0; i < n; ++i) y.set(i, x.get(i));  // saturating for ints, NaN -> 0
  }
}

OpDef make_cast_like() {
  OpDef d;
  d.name = "CastLike";
  d.category = "tensor";
  d.doc = "converts the input to the dtype of target_type (second input); rules of Cast";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {{"saturate", AttrType::Int, "float8 only (ignored)"}};
  d.infer = [](InferContext& c) { c.set_output(0, c.dtype(1), c.shape(0)); };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    if (c.inputs.size() < 2 || !c.inputs[1].defined()) c.fail("target_type", "input is missing");
    cast_values(x, output(c, 0, c.inputs[1].dtype(), x.shape()));
  };
  return d;
}

const bool registered = [] {
  register_op(make_cast_like());
  register_op(make_identity());
  register_op(make_dropout());
  register_op(make_reshape());
  register_op(make_flatten());
  register_op(make_squeeze());
  register_op(make_unsqueeze());
  register_op(make_expand());
  register_op(make_shape());
  register_op(make_size());
  register_op(make_constant_of_shape());
  register_op(make_range());
  register_op(make_cast());
  return true;
}();

}  // namespace
}  // namespace anvil
