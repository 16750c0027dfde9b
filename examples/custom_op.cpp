// Custom ops, Forge's escape hatch: register an op the engine does not know (shape rule +
// CPU kernel), use it in a model built with the builder, run it, and map a source framework's
// layer type to it so that importers can load models that use it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "anvil/builder.h"
#include "anvil/error.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "anvil/summary.h"

namespace {

// Swish6: y = min(x * sigmoid(beta * x), 6), a bounded Swish for fixed-point friendly models.
anvil::OpDef swish6() {
  anvil::OpDef d;
  d.name = "Swish6";
  d.category = "activation";
  d.doc = "y = min(x * sigmoid(beta * x), 6) (beta 1)";
  d.min_inputs = d.max_inputs = 1;
  d.attrs = {{"beta", anvil::AttrType::Float, "sigmoid slope (default 1)"}};
  // The shape rule: same dtype and shape as the input; reject what the kernel cannot do.
  d.infer = [](anvil::InferContext& ctx) {
    if (!anvil::is_float(ctx.dtype(0))) ctx.fail("X", "expects a float tensor");
    ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
  };
  // The CPU kernel: outputs are already allocated with the inferred shape and dtype.
  // Reading and writing through get/set makes it work for f32, f16, bf16 and f64.
  d.reference = [](anvil::KernelContext& ctx) {
    double beta = ctx.attrs().get_float("beta", 1.0);
    const anvil::Tensor& x = ctx.inputs[0];
    anvil::Tensor& y = ctx.outputs[0];
    for (int64_t i = 0; i < x.numel(); ++i) {
      double v = x.get(i);
      y.set(i, std::min(v / (1.0 + std::exp(-beta * v)), 6.0));
    }
  };
  return d;
}

}  // namespace

int main() {
  try {
    anvil::register_op(swish6());
    // An ONNX node of type "Swish6" (domain-less custom op) or a Keras layer class "Swish6"
    // now imports as this op, its attributes copied by name.
    anvil::map_source_op("onnx", "Swish6", "Swish6");
    anvil::map_source_op("keras", "Swish6", "Swish6");

    anvil::Builder b("custom_op_demo");
    auto x = b.input("x", {1, 2, 4, 4});
    anvil::Attributes attrs;
    attrs.set("beta", 1.5);
    auto c = x >> b.conv2d(3, {3, 3}, {.padding = anvil::Padding::same, .name = "conv"});
    auto s = b.custom("Swish6", {c}, attrs, "swish6");  // any registered op, shape inferred
    auto y = s >> b.global_avg_pool() >> b.flatten();
    b.output(y, "features");
    b.initialize_random(7);
    anvil::Graph g = b.build();
    std::cout << anvil::summary(g) << "\n";

    anvil::Tensor in(anvil::DType::f32, {1, 2, 4, 4});
    for (int64_t i = 0; i < in.numel(); ++i) in.set(i, std::sin(0.7 * static_cast<double>(i)) * 4);
    anvil::Session session(g);
    auto out = session.run({{"x", in}}, {"swish6", "features"});
    const anvil::Tensor& act = out.at("swish6");
    double lo = 1e9, hi = -1e9;
    for (int64_t i = 0; i < act.numel(); ++i) {
      lo = std::min(lo, act.get(i));
      hi = std::max(hi, act.get(i));
    }
    std::printf("swish6 output: shape %s, min %.4f, max %.4f (at most 6)\n",
                anvil::shape_str(act.shape()).c_str(), lo, hi);
    const anvil::Tensor& f = out.at("features");
    std::printf("features:");
    for (int64_t i = 0; i < f.numel(); ++i) std::printf(" %.5f", f.get(i));
    std::printf("\n");
    std::printf("onnx 'Swish6' maps to op '%s'\n",
                anvil::mapped_source_op("onnx", "Swish6").value_or("?").c_str());
    return hi <= 6.0 ? 0 : 1;
  } catch (const anvil::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
