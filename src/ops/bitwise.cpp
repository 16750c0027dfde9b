// Reference kernels for bit-level ops: BitwiseAnd / BitwiseOr / BitwiseXor (ONNX opset 18,
// broadcasting), BitwiseNot, BitShift (ONNX's, also on signed integers: a right shift of a
// signed value is arithmetic, and the shift count is clamped to [0, bits-1] as TensorFlow's
// LeftShift/RightShift do; ONNX leaves larger counts undefined) and Bitcast (TensorFlow's:
// the same bytes read as another dtype; a wider or narrower element type adds or removes the
// last dimension).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "ops/broadcast.h"
#include "ops/ref_util.h"

namespace anvil {
namespace {

using namespace ref;

int64_t bits_of(DType t) { return static_cast<int64_t>(dtype_size(t)) * 8; }

// Sign-extends the low `bits` of v (the stored integer of a dtype of that width).
int64_t wrap(int64_t v, int64_t bits, bool is_unsigned) {
  if (bits >= 64) return v;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t u = static_cast<uint64_t>(v) & mask;
  if (!is_unsigned && (u >> (bits - 1)) != 0) u |= ~mask;
  return static_cast<int64_t>(u);
}

void infer_int_binary(InferContext& c) {
  const DType t = c.dtype(0);
  if (!is_integer(t)) c.fail("A", std::string("expects an integer tensor, found ") + dtype_name(t));
  if (c.dtype(1) != t)
    c.fail("B",
           std::string("dtype ") + dtype_name(c.dtype(1)) + " differs from A's " + dtype_name(t));
  auto s = broadcast_shapes({c.shape(0), c.shape(1)});
  if (!s)
    c.fail("inputs", "shapes " + shape_str(c.shape(0)) + " and " + shape_str(c.shape(1)) +
                         " do not broadcast");
  c.set_output(0, t, *s);
}

template <class F>
void run_int_binary(KernelContext& c, F f) {
  const Tensor& a = input(c, 0, "A");
  const Tensor& b = input(c, 1, "B");
  auto s = broadcast_shapes({a.shape(), b.shape()});
  if (!s) c.fail("inputs", "shapes do not broadcast");
  Tensor& y = output(c, 0, a.dtype(), *s);
  const int64_t bits = bits_of(a.dtype());
  const bool uns = a.dtype() == DType::u8;
  for_each_broadcast(*s, {a.shape(), b.shape()}, [&](int64_t o, const int64_t* off) {
    store_int(y, o, wrap(f(load_int(a, off[0]), load_int(b, off[1]), bits, uns), bits, uns));
  });
}

OpDef make_bitwise(const std::string& name, int64_t (*fn)(int64_t, int64_t)) {
  OpDef d;
  d.name = name;
  d.category = "elementwise";
  d.doc = "elementwise " + name.substr(7) + " of the bits of two integer tensors (broadcasting)";
  d.min_inputs = d.max_inputs = 2;
  d.infer = infer_int_binary;
  d.reference = [fn](KernelContext& c) {
    run_int_binary(c, [fn](int64_t x, int64_t y, int64_t, bool) { return fn(x, y); });
  };
  return d;
}

OpDef make_bitwise_not() {
  OpDef d;
  d.name = "BitwiseNot";
  d.category = "elementwise";
  d.doc = "elementwise complement of the bits of an integer tensor";
  d.infer = [](InferContext& c) {
    if (!is_integer(c.dtype(0)))
      c.fail("X", std::string("expects an integer tensor, found ") + dtype_name(c.dtype(0)));
    c.set_output(0, c.dtype(0), c.shape(0));
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "X");
    Tensor& y = output(c, 0, x.dtype(), x.shape());
    const int64_t bits = bits_of(x.dtype());
    const bool uns = x.dtype() == DType::u8;
    for (int64_t i = 0; i < x.numel(); ++i) store_int(y, i, wrap(~load_int(x, i), bits, uns));
  };
  return d;
}

OpDef make_bitshift() {
  OpDef d;
  d.name = "BitShift";
  d.category = "elementwise";
  d.doc =
      "X shifted by Y bits (attr direction LEFT or RIGHT; right shifts of signed values are "
      "arithmetic; the count is clamped to [0, bits-1])";
  d.min_inputs = d.max_inputs = 2;
  d.attrs = {{"direction", AttrType::String, "LEFT or RIGHT (required)"}};
  d.infer = [](InferContext& c) {
    const std::string dir = c.attrs().get_string("direction", "");
    if (dir != "LEFT" && dir != "RIGHT")
      c.fail("direction", "must be LEFT or RIGHT, found '" + dir + "'");
    infer_int_binary(c);
  };
  d.reference = [](KernelContext& c) {
    const bool left = c.attrs().get_string("direction", "") == "LEFT";
    run_int_binary(c, [left](int64_t x, int64_t y, int64_t bits, bool uns) -> int64_t {
      const int64_t n = y < 0 ? 0 : (y > bits - 1 ? bits - 1 : y);
      if (left) return static_cast<int64_t>(static_cast<uint64_t>(x) << n);
      if (uns) return static_cast<int64_t>(static_cast<uint64_t>(x) >> n);
      return x >> n;  // x is sign-extended: arithmetic
    });
  };
  return d;
}

OpDef make_bitcast() {
  OpDef d;
  d.name = "Bitcast";
  d.category = "tensor";
  d.doc =
      "the input's bytes read as dtype `to` (TensorFlow Bitcast): a narrower type adds a last "
      "dimension of size in_bytes/out_bytes, a wider one removes a last dimension of that size";
  d.attrs = {{"to", AttrType::Int, "the result's dtype (ONNX TensorProto code)"}};
  d.infer = [](InferContext& c) {
    DType to;
    if (!dtype_from_onnx(c.attrs().get_int("to", -1), to)) c.fail("to", "unsupported dtype");
    const DType from = c.dtype(0);
    if (from == DType::boolean || to == DType::boolean) c.fail("to", "bool is not bit-castable");
    const size_t si = dtype_size(from), so = dtype_size(to);
    Shape s = c.shape(0);
    if (si > so) {
      s.push_back(static_cast<int64_t>(si / so));
    } else if (si < so) {
      if (s.empty() || s.back() != static_cast<int64_t>(so / si))
        c.fail("input", "a cast from " + std::string(dtype_name(from)) + " to " + dtype_name(to) +
                            " needs a last dimension of " + std::to_string(so / si) + ", found " +
                            shape_str(s));
      s.pop_back();
    }
    c.set_output(0, to, s);
  };
  d.reference = [](KernelContext& c) {
    const Tensor& x = input(c, 0, "input");
    Tensor& y = c.outputs[0];
    const size_t n = static_cast<size_t>(x.numel()) * dtype_size(x.dtype());
    if (static_cast<size_t>(y.numel()) * dtype_size(y.dtype()) != n)
      c.fail("input", "byte counts of the input and the output differ");
    if (n) std::memcpy(y.raw(), x.raw(), n);
  };
  return d;
}

const bool registered = [] {
  register_op(make_bitwise("BitwiseAnd", [](int64_t a, int64_t b) { return a & b; }));
  register_op(make_bitwise("BitwiseOr", [](int64_t a, int64_t b) { return a | b; }));
  register_op(make_bitwise("BitwiseXor", [](int64_t a, int64_t b) { return a ^ b; }));
  register_op(make_bitwise_not());
  register_op(make_bitshift());
  register_op(make_bitcast());
  return true;
}();

}  // namespace
}  // namespace anvil
