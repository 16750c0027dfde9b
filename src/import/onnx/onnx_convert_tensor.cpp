// ONNX converters for tensor ops: Constant, and the older opset forms of Reshape, Concat,
// Slice, Pad, Clip, Squeeze, Unsqueeze, Split, the Reduce ops (attributes that later became
// inputs), Upsample / Resize-10 and Scatter.
#include "anvil/error.h"
#include "import/onnx/onnx_builder.h"

namespace anvil::onnx_import {

namespace {

bool convert_constant(OnnxGraphBuilder& ob, NodeCtx& c) {
  const Attributes& a = c.attrs;
  Tensor t;
  if (a.has("value")) {
    try {
      t = a.get_tensor("value");
    } catch (const Error& e) {
      ob.problem(c, "attribute 'value': " + e.message());
      return false;
    }
  } else if (a.has("value_float")) {
    t = Tensor::scalar<float>(static_cast<float>(a.get_float("value_float")));
  } else if (a.has("value_floats")) {
    auto d = a.get_floats("value_floats");
    t = Tensor::from_vector<float>({static_cast<int64_t>(d.size())},
                                   std::vector<float>(d.begin(), d.end()));
  } else if (a.has("value_int")) {
    t = Tensor::scalar<int64_t>(a.get_int("value_int"));
  } else if (a.has("value_ints")) {
    auto d = a.get_ints("value_ints");
    t = Tensor::from_vector<int64_t>({static_cast<int64_t>(d.size())}, d);
  } else if (a.has("value_string") || a.has("value_strings")) {
    ob.problem(c, "string constants are not supported");
    return false;
  } else {
    ob.problem(c, "Constant without a value (sparse_value is not supported)");
    return false;
  }
  if (c.outs.empty() || c.outs[0].empty()) return true;  // unused
  int v = ob.add_constant(c.outs[0], t, c.outs[0]);
  ob.bind_name(c.outs[0], v);
  return true;
}

Next constant(OnnxGraphBuilder& ob, NodeCtx& c) {
  return convert_constant(ob, c) ? Next::done : Next::failed;
}

Next reshape(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 5) ob.attr_to_input(c, "shape", 1);
  return Next::emit;
}

Next concat(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 4 && !c.attrs.has("axis")) c.attrs.set("axis", int64_t{1});
  return Next::emit;
}

Next slice(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 10 && c.attrs.has("starts") && c.attrs.has("ends")) {
    ob.attr_to_input(c, "starts", 1);
    ob.attr_to_input(c, "ends", 2);
    ob.attr_to_input(c, "axes", 3);
  }
  return Next::emit;
}

Next pad(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 11) {
    if (c.attrs.has("paddings"))
      ob.attr_to_input(c, "paddings", 1);
    else
      ob.attr_to_input(c, "pads", 1);
    double value = c.attrs.get_float("value", 0.0);
    c.attrs.erase("value");
    if (value != 0.0) {
      DType dt = ob.known(c.inputs[0]) ? ob.dtype_of_value(c.inputs[0]) : DType::f32;
      c.inputs.resize(3, -1);
      c.inputs[2] = ob.const_scalar(c.name + "/constant_value", dt, value);
    }
  }
  return Next::emit;
}

Next clip(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 11) {
    DType dt = ob.known(c.inputs[0]) ? ob.dtype_of_value(c.inputs[0]) : DType::f32;
    if (c.attrs.has("min") || c.attrs.has("max")) c.inputs.resize(3, -1);
    if (c.attrs.has("min"))
      c.inputs[1] = ob.const_scalar(c.name + "/min", dt, c.attrs.get_float("min"));
    if (c.attrs.has("max"))
      c.inputs[2] = ob.const_scalar(c.name + "/max", dt, c.attrs.get_float("max"));
    c.attrs.erase("min");
    c.attrs.erase("max");
    while (!c.inputs.empty() && c.inputs.back() < 0) c.inputs.pop_back();
  }
  return Next::emit;
}

Next squeeze(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 13) ob.attr_to_input(c, "axes", 1);
  return Next::emit;
}

Next split(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 13) ob.attr_to_input(c, "split", 1);
  return Next::emit;
}

// ReduceSum took axes as an input from opset 13, the other Reduce ops from opset 18.
Next reduce_sum(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 13) ob.attr_to_input(c, "axes", 1);
  return Next::emit;
}

Next reduce(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 18) ob.attr_to_input(c, "axes", 1);
  return Next::emit;
}

// Upsample and Resize-10: out[i] = in[floor(i / scale)] (nearest) or asymmetric linear.
void upsample_to_resize(OnnxGraphBuilder& ob, NodeCtx& c) {
  c.op = "Resize";
  std::string mode = c.attrs.get_string("mode", "nearest");
  if (mode == "bilinear") mode = "linear";
  c.attrs.set("mode", mode);
  c.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
  if (mode == "nearest") c.attrs.set("nearest_mode", std::string("floor"));
  int scales = c.inputs.size() > 1 ? c.inputs[1] : -1;
  if (c.attrs.has("scales")) {
    std::vector<double> sc = c.attrs.get_floats("scales");
    c.attrs.erase("scales");
    std::vector<float> f(sc.begin(), sc.end());
    scales = ob.add_constant(ob.unique_value(c.name + "/scales"),
                             Tensor::from_vector<float>({static_cast<int64_t>(f.size())}, f), "");
  }
  c.attrs.erase("height_scale");
  c.attrs.erase("width_scale");
  c.inputs = {c.inputs.empty() ? -1 : c.inputs[0], -1, scales};
}

Next upsample(OnnxGraphBuilder& ob, NodeCtx& c) {
  upsample_to_resize(ob, c);
  return Next::emit;
}

Next resize(OnnxGraphBuilder& ob, NodeCtx& c) {
  if (ob.opset() < 11) upsample_to_resize(ob, c);
  // Empty roi / scales tensors mean "not given".
  for (size_t i = 1; i < c.inputs.size(); ++i) {
    const Tensor* t = ob.const_of(c.inputs[i]);
    if (t && t->numel() == 0) c.inputs[i] = -1;
  }
  while (!c.inputs.empty() && c.inputs.back() < 0) c.inputs.pop_back();
  return Next::emit;
}

Next scatter(OnnxGraphBuilder&, NodeCtx& c) {
  c.op = "ScatterElements";
  return Next::emit;
}

const ConverterRegistrar tensor_converters({
    {"Constant", constant},
    {"Reshape", reshape},
    {"Concat", concat},
    {"Slice", slice},
    {"Pad", pad},
    {"Clip", clip},
    {"Squeeze", squeeze},
    {"Unsqueeze", squeeze},
    {"Split", split},
    {"ReduceSum", reduce_sum},
    {"ReduceMean", reduce},
    {"ReduceMax", reduce},
    {"ReduceMin", reduce},
    {"ReduceProd", reduce},
    {"ReduceL1", reduce},
    {"ReduceL2", reduce},
    {"ReduceLogSum", reduce},
    {"ReduceLogSumExp", reduce},
    {"ReduceSumSquare", reduce},
    {"Upsample", upsample},
    {"Resize", resize},
    {"Scatter", scatter},
});

}  // namespace

}  // namespace anvil::onnx_import
