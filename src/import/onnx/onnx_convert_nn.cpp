// ONNX converters for neural-network ops: the opset<13 Softmax family (coerced to 2-D), the
// opset<7 legacy broadcasting of binary ops and PRelu's per-channel slope, and auto_pad ->
// explicit pads for Conv, ConvTranspose and the pools.
#include <algorithm>

#include "core/strings.h"
#include "import/common/padding.h"
#include "import/onnx/onnx_builder.h"

namespace anvil::onnx_import {

namespace {

// Softmax, LogSoftmax, Hardmax before opset 13 coerce the input to 2D at `axis`.
bool legacy_softmax(OnnxGraphBuilder& ob, NodeCtx& c) {
  int64_t axis = c.attrs.get_int("axis", 1);
  auto s = ob.need_shape(c, 0, "the opset<13 form of " + c.onnx_op);
  if (!s) return false;
  const int64_t r = static_cast<int64_t>(s->size());
  int64_t a = axis < 0 ? axis + r : axis;
  if (a < 0 || a > r || (r > 0 && a == r)) {
    ob.problem(c,
               "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
    return false;
  }
  if (r == 0 || a == r - 1) {  // same as the canonical form
    c.attrs.set("axis", int64_t{-1});
    return true;
  }
  // Flatten(axis) -> op(axis=1) -> Reshape back to the input's shape.
  Attributes fa;
  fa.set("axis", a);
  int f = ob.emit("Flatten", ob.unique_node(c.name + "/flatten"), {c.inputs[0]}, fa,
                  {ob.unique_value(c.name + "/flatten")});
  Attributes sa;
  sa.set("axis", int64_t{1});
  int sm = ob.emit(c.op, c.name, {ob.graph().nodes[static_cast<size_t>(f)].outputs[0]}, sa,
                   {ob.unique_value(c.name + "/2d")});
  ob.graph().nodes[static_cast<size_t>(sm)].source_op = c.onnx_op;
  int shp = ob.const_i64(c.name + "/shape", *s);
  std::string out = c.outs.empty() ? ob.unique_value(c.name + "/out") : c.outs[0];
  Attributes ra = exact_reshape_attrs();
  int rs = ob.emit("Reshape", ob.unique_node(c.name + "/reshape"),
                   {ob.graph().nodes[static_cast<size_t>(sm)].outputs[0], shp}, ra, {out});
  ob.bind_outputs(c, {ob.graph().nodes[static_cast<size_t>(rs)].outputs[0]});
  return false;
}

// Elementwise ops before opset 7: `broadcast` = 1 lets B match A's dims from `axis` on.
bool legacy_broadcast(OnnxGraphBuilder& ob, NodeCtx& c) {
  int64_t b = c.attrs.get_int("broadcast", 0);
  c.attrs.erase("broadcast");
  bool has_axis = c.attrs.has("axis");
  int64_t axis = c.attrs.get_int("axis", 0);
  c.attrs.erase("axis");
  if (b == 0 || !has_axis || c.inputs.size() < 2) return true;
  auto sa = ob.need_shape(c, 0, "legacy broadcasting (broadcast=1, axis)");
  if (!sa) return false;
  auto sb = ob.need_shape(c, 1, "legacy broadcasting (broadcast=1, axis)");
  if (!sb) return false;
  const int64_t ra = static_cast<int64_t>(sa->size()), rb = static_cast<int64_t>(sb->size());
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra) {
    ob.problem(c, "legacy broadcast axis " + std::to_string(axis) + " does not fit shapes " +
                      shape_str(*sa) + " and " + shape_str(*sb));
    return false;
  }
  const int64_t trailing = ra - axis - rb;
  if (trailing == 0) return true;
  Shape ns = *sb;
  for (int64_t i = 0; i < trailing; ++i) ns.push_back(1);
  int bin = c.inputs[1];
  if (const Tensor* k = ob.const_of(bin);
      k && ob.graph().values[static_cast<size_t>(bin)].is_constant()) {
    c.inputs[1] = ob.add_constant(ob.unique_value(c.name + "/B"), k->reshaped(ns), "");
  } else {
    int shp = ob.const_i64(c.name + "/B_shape", ns);
    int rs = ob.emit("Reshape", ob.unique_node(c.name + "/B_reshape"), {bin, shp},
                     exact_reshape_attrs(), {ob.unique_value(c.name + "/B_reshaped")});
    c.inputs[1] = ob.graph().nodes[static_cast<size_t>(rs)].outputs[0];
  }
  return true;
}

// auto_pad -> explicit pads, from the input's spatial shape.
bool resolve_auto_pad(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (!c.attrs.has("auto_pad")) return true;
  std::string mode = c.attrs.get_string("auto_pad", "NOTSET");
  c.attrs.erase("auto_pad");
  if (mode == "NOTSET" || mode.empty()) return true;
  if (mode != "SAME_UPPER" && mode != "SAME_LOWER" && mode != "VALID") {
    ob.problem(c, "auto_pad '" + mode + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    return false;
  }
  auto xs = ob.need_shape(c, 0, "auto_pad " + mode);
  if (!xs) return false;
  if (xs->size() < 3) {
    ob.problem(c, "auto_pad needs an input with spatial dims, found shape " + shape_str(*xs));
    return false;
  }
  const size_t nsp = xs->size() - 2;
  const bool transpose = c.onnx_op == "ConvTranspose";
  std::vector<int64_t> k;
  if (c.attrs.has("kernel_shape")) {
    k = c.attrs.get_ints("kernel_shape");
  } else if (c.onnx_op == "Conv" || transpose) {
    auto ws = ob.need_shape(c, 1, "auto_pad " + mode);
    if (!ws) return false;
    if (ws->size() == xs->size()) k.assign(ws->begin() + 2, ws->end());
  }
  if (k.size() != nsp) {
    ob.problem(c, "auto_pad needs kernel_shape with " + std::to_string(nsp) + " values, found " +
                      ints_str(k));
    return false;
  }
  auto s = c.attrs.get_ints("strides", std::vector<int64_t>(nsp, 1));
  auto d = c.attrs.get_ints("dilations", std::vector<int64_t>(nsp, 1));
  auto op = c.attrs.get_ints("output_padding", std::vector<int64_t>(nsp, 0));
  if (s.size() != nsp || d.size() != nsp || op.size() != nsp) {
    ob.problem(c, "strides/dilations/output_padding must have " + std::to_string(nsp) + " values");
    return false;
  }
  std::vector<int64_t> pads(2 * nsp, 0);
  if (mode == "VALID") {
    c.attrs.set("pads", pads);
    return true;
  }
  std::vector<int64_t> out_shape;
  if (transpose && c.attrs.has("output_shape")) {
    out_shape = c.attrs.get_ints("output_shape");
    if (out_shape.size() == nsp + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    if (out_shape.size() != nsp) {
      ob.problem(c, "output_shape must have " + std::to_string(nsp) + " values");
      return false;
    }
    c.attrs.erase("output_shape");
  }
  bool changed_op = false;
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t in = (*xs)[i + 2];
    if (s[i] < 1 || d[i] < 1 || k[i] < 1) {
      ob.problem(c, "kernel_shape, strides and dilations must be >= 1");
      return false;
    }
    if (!transpose) {
      const imp::Pads p = imp::same_pads(in, k[i], s[i], d[i], mode == "SAME_UPPER");
      pads[i] = p.begin;
      pads[i + nsp] = p.end;
      continue;
    }
    // ConvTranspose: the pads that give the requested output (in * stride by default).
    const int64_t out = out_shape.empty() ? in * s[i] : out_shape[i];
    int64_t total = s[i] * (in - 1) + op[i] + imp::effective_kernel(k[i], d[i]) - out;
    if (total < 0) {  // the requested output is larger: grow output_padding
      op[i] += -total;
      total = 0;
      changed_op = true;
    }
    const int64_t small = total / 2, big = total - total / 2;
    pads[i] = mode == "SAME_UPPER" ? small : big;
    pads[i + nsp] = mode == "SAME_UPPER" ? big : small;
  }
  c.attrs.set("pads", pads);
  if (changed_op) c.attrs.set("output_padding", op);
  return true;
}

Next softmax_family(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 13 && !legacy_softmax(ob, c)) return Next::failed;
  return Next::emit;
}

Next binary_op(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 7 && c.attrs.has("broadcast"))
    if (!legacy_broadcast(ob, c)) return Next::failed;
  if (ob.opset() < 7) c.attrs.erase("axis");
  return Next::emit;
}

// Before opset 7 a 1-D slope of size C is per channel (axis 1), not numpy-broadcast.
Next prelu(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (binary_op(ob, c) == Next::failed) return Next::failed;
  if (ob.opset() < 7 && c.inputs.size() == 2) {
    auto xs = ob.known(c.inputs[0]) ? std::optional<Shape>(ob.shape_of(c.inputs[0])) : std::nullopt;
    auto ss = ob.known(c.inputs[1]) ? std::optional<Shape>(ob.shape_of(c.inputs[1])) : std::nullopt;
    if (xs && ss && xs->size() > 2 && ss->size() == 1 && (*ss)[0] > 1 && (*ss)[0] == (*xs)[1]) {
      Shape ns(xs->size() - 1, 1);
      ns[0] = (*ss)[0];
      int slope = c.inputs[1];
      if (const Tensor* k = ob.const_of(slope);
          k && ob.graph().values[static_cast<size_t>(slope)].is_constant()) {
        c.inputs[1] = ob.add_constant(ob.unique_value(c.name + "/slope"), k->reshaped(ns), "");
      } else {
        int shp = ob.const_i64(c.name + "/slope_shape", ns);
        int rs = ob.emit("Reshape", ob.unique_node(c.name + "/slope_reshape"), {slope, shp},
                         exact_reshape_attrs(), {ob.unique_value(c.name + "/slope_reshaped")});
        c.inputs[1] = ob.graph().nodes[static_cast<size_t>(rs)].outputs[0];
      }
    }
  }
  return Next::emit;
}

Next auto_pad(OnnxGraphBuilder& ob, NodeCtx& c) {
  return resolve_auto_pad(ob, c) ? Next::emit : Next::failed;
}

const ConverterRegistrar nn_converters({
    {"Softmax", softmax_family},
    {"LogSoftmax", softmax_family},
    {"Hardmax", softmax_family},
    {"Add", binary_op},
    {"Sub", binary_op},
    {"Mul", binary_op},
    {"Div", binary_op},
    {"Pow", binary_op},
    {"And", binary_op},
    {"Or", binary_op},
    {"Xor", binary_op},
    {"Equal", binary_op},
    {"Less", binary_op},
    {"Greater", binary_op},
    {"PRelu", prelu},
    {"Conv", auto_pad},
    {"ConvTranspose", auto_pad},
    {"MaxPool", auto_pad},
    {"AveragePool", auto_pad},
    {"LpPool", auto_pad},
});

}  // namespace

}  // namespace anvil::onnx_import
