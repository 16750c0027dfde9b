// Private helpers shared by the reference kernels of the neural-network ops (conv.cpp,
// pool.cpp, matmul.cpp, norm.cpp, resize.cpp, reduce.cpp).
// Parameter computation throws anvil::Error("<Op>: message", field) so that the same code
// serves the shape rule and the kernel (which re-checks what it was given).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "anvil/tensor.h"
#include "core/strings.h"
#include "ops/activation.h"

namespace anvil::nn {

[[noreturn]] inline void fail(const std::string& op, const std::string& field,
                              const std::string& message) {
  throw Error(op + ": " + message, {}, {}, field);
}

using anvil::ints_str;

/// Floor division for possibly negative numerators (b > 0).
inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

/// Normalizes an axis in [-rank, rank) to [0, rank).
inline int norm_axis(const std::string& op, const std::string& field, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank)
    fail(op, field,
         "axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
             std::to_string(rank));
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

/// The attribute specs of the fused activation (Conv, ConvTranspose, Gemm, MatMul).
inline std::vector<AttrSpec> activation_attr_specs() {
  return {{"activation", AttrType::String,
           "fused activation applied to the output: \"\", Relu, Clip, LeakyRelu, Sigmoid, Tanh, "
           "HardSigmoid, Elu"},
          {"activation_alpha", AttrType::Float,
           "Clip min, LeakyRelu/Elu alpha, HardSigmoid alpha (ONNX default of the activation)"},
          {"activation_beta", AttrType::Float, "Clip max, HardSigmoid beta"}};
}

/// Legacy string form of the fused activation (the cuda executor's; new code uses
/// anvil::FusedActivation and read_fused_activation from ops/activation.h).
struct FusedActivation {
  std::string name;
  double alpha = 0, beta = 0;
};

/// Reads activation/activation_alpha/activation_beta (see read_fused_activation).
inline FusedActivation read_activation(const std::string& op, const Attributes& a) {
  const anvil::FusedActivation f = read_fused_activation(op, a);
  return FusedActivation{f.name(), f.alpha, f.beta};
}

inline void require_float(const std::string& op, const std::string& field, DType t) {
  if (!is_float(t))
    fail(op, field,
         std::string("expected a float tensor (f32, f16, bf16, f64), found ") + dtype_name(t));
}

/// Kernel-side check: the pre-allocated output has the shape the parameters give.
inline void check_output_shape(const std::string& op, const Tensor& out, const Shape& want) {
  if (out.shape() != want)
    fail(op, "outputs",
         "output buffer has shape " + shape_str(out.shape()) + " but the inputs give " +
             shape_str(want) + " (inputs changed since shape inference?)");
}

/// Kernel-side check: the first `n` inputs are present (a kernel may be called directly
/// through evaluate_node with a wrong input list).
inline void require_inputs(const KernelContext& ctx, size_t n) {
  if (ctx.inputs.size() < n)
    ctx.fail("inputs", "expected at least " + std::to_string(n) + " inputs, found " +
                           std::to_string(ctx.inputs.size()));
  for (size_t i = 0; i < n; ++i)
    if (!ctx.inputs[i].defined()) ctx.fail("inputs", "input " + std::to_string(i) + " is missing");
  if (ctx.outputs.empty()) ctx.fail("outputs", "no output buffer");
}

/// Row-major strides of a shape.
inline std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

/// Reads a 1-D integer tensor (any integer dtype) as int64 values.
inline std::vector<int64_t> int_values(const std::string& op, const std::string& field,
                                       const Tensor& t) {
  if (!is_integer(t.dtype()))
    fail(op, field, std::string("expected an integer tensor, found ") + dtype_name(t.dtype()));
  if (t.rank() > 1) fail(op, field, "expected a 1-D tensor, found shape " + shape_str(t.shape()));
  return t.to_int64s();
}

}  // namespace anvil::nn
