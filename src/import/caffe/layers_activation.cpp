// Caffe activation and elementwise-math layers: ReLU, PReLU, ELU, Sigmoid, TanH, AbsVal, BNLL,
// Dropout, Power, Exp, Log, Threshold, Softmax, Clip, Swish.
#include <cmath>

#include "import/caffe/caffe_builder.h"
#include "import/onnx/onnx_tensor.h"

namespace anvil::caffe_import {

namespace {

void convert_relu(CaffeBuilder& cb, CaffeLayer& L) {
  const float slope = L.p->relu_param().negative_slope();
  if (slope == 0.0f) {
    convert_unary(cb, L, "Relu");
    return;
  }
  Attributes a;
  a.set("alpha", static_cast<double>(slope));
  convert_unary(cb, L, "LeakyRelu", a);
}

void convert_prelu(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const Shape& x = L.shape[0];
  if (x.size() < 2) fail("bottom", "PReLU expects a blob of at least 2 axes, found " + dims_str(x));
  cb.expect_blobs(L, 1);
  int slope;
  if (L.p->prelu_param().channel_shared()) {
    slope = cb.constant(L, "slope", cb.blob(L, 0, {}, "slope"));
  } else {
    Tensor t = cb.blob(L, 0, {x[1]}, "slope");
    Shape s = {x[1]};
    s.insert(s.end(), x.size() - 2, 1);
    slope = cb.constant(L, "slope", t.reshaped(s));
  }
  cb.emit_top(L, "PRelu", {L.in[0], slope}, {});
}

// y = (shift + scale * x) ^ power
void convert_power(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& pp = L.p->power_param();
  const float power = pp.power(), scale = pp.scale(), shift = pp.shift();
  if (power * scale == 0.0f) {
    // Caffe writes the constant (power == 0 ? 1 : shift^power) whatever x is.
    const float value = power == 0.0f ? 1.0f : std::pow(shift, power);
    int shp = cb.emit(L, "Shape", {L.in[0]}, {}, "shape");
    Attributes a;
    a.set("value", Tensor::from_vector<float>({1}, {value}));
    cb.emit_top(L, "ConstantOfShape", {shp}, a);
    return;
  }
  int v = L.in[0];
  const bool do_scale = scale != 1.0f, do_shift = shift != 0.0f, do_pow = power != 1.0f;
  if (!do_scale && !do_shift && !do_pow) {
    cb.emit_top(L, "Identity", {v}, {});
    return;
  }
  if (do_scale) {
    int s = cb.scalar(L, "scale", scale);
    v = (do_shift || do_pow) ? cb.emit(L, "Mul", {v, s}, {}, "scale")
                             : cb.emit_top(L, "Mul", {v, s}, {});
  }
  if (do_shift) {
    int s = cb.scalar(L, "shift", shift);
    v = do_pow ? cb.emit(L, "Add", {v, s}, {}, "shift") : cb.emit_top(L, "Add", {v, s}, {});
  }
  if (do_pow) cb.emit_top(L, "Pow", {v, cb.scalar(L, "power", power)}, {});
}

// y = base ^ (shift + scale * x) = outer * exp(inner * x), as Caffe computes it.
void convert_exp(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& ep = L.p->exp_param();
  const float base = ep.base();
  if (base != -1.0f && !(base > 0.0f)) fail("base", "base must be > 0 (or -1 for e)");
  const float log_base = base == -1.0f ? 1.0f : std::log(base);
  const float inner = log_base * ep.scale();
  const float outer = ep.shift() == 0.0f ? 1.0f
                      : base == -1.0f    ? std::exp(ep.shift())
                                         : std::pow(base, ep.shift());
  int v = L.in[0];
  if (inner != 1.0f) v = cb.emit(L, "Mul", {v, cb.scalar(L, "inner_scale", inner)}, {}, "scale");
  if (outer == 1.0f) {
    cb.emit_top(L, "Exp", {v}, {});
    return;
  }
  v = cb.emit(L, "Exp", {v}, {}, "exp");
  cb.emit_top(L, "Mul", {v, cb.scalar(L, "outer_scale", outer)}, {});
}

// y = log_base(shift + scale * x) = ln(shift + scale * x) / ln(base)
void convert_log(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& lp = L.p->log_param();
  const float base = lp.base();
  if (base != -1.0f && !(base > 0.0f)) fail("base", "base must be > 0 (or -1 for e)");
  const float base_scale = base == -1.0f ? 1.0f : 1.0f / std::log(base);
  int v = L.in[0];
  if (lp.scale() != 1.0f)
    v = cb.emit(L, "Mul", {v, cb.scalar(L, "scale", lp.scale())}, {}, "scale");
  if (lp.shift() != 0.0f)
    v = cb.emit(L, "Add", {v, cb.scalar(L, "shift", lp.shift())}, {}, "shift");
  if (base_scale == 1.0f) {
    cb.emit_top(L, "Log", {v}, {});
    return;
  }
  v = cb.emit(L, "Log", {v}, {}, "log");
  cb.emit_top(L, "Mul", {v, cb.scalar(L, "base_scale", base_scale)}, {});
}

// y = x > threshold ? 1 : 0
void convert_threshold(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  int gt = cb.emit(L, "Greater",
                   {L.in[0], cb.scalar(L, "threshold", L.p->threshold_param().threshold())}, {},
                   "greater");
  Attributes a;
  a.set("to", int64_t{onnx_import::onnx_from_dtype(DType::f32)});
  cb.emit_top(L, "Cast", {gt}, a);
}

void convert_softmax(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  Attributes a;
  a.set("axis", static_cast<int64_t>(cb.canonical_axis(
                    L.p->softmax_param().axis(), static_cast<int>(L.shape[0].size()), "axis")));
  cb.emit_top(L, "Softmax", {L.in[0]}, a);
}

void convert_clip(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const auto& cp = L.p->clip_param();
  cb.emit_top(L, "Clip", {L.in[0], cb.scalar(L, "min", cp.min()), cb.scalar(L, "max", cp.max())},
              {});
}

// Swish: x * sigmoid(beta * x)
void convert_swish(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 1, 1);
  cb.expect_tops(L, 1, 1);
  const float beta = L.p->swish_param().beta();
  int t =
      beta == 1.0f ? L.in[0] : cb.emit(L, "Mul", {L.in[0], cb.scalar(L, "beta", beta)}, {}, "beta");
  int sg = cb.emit(L, "Sigmoid", {t}, {}, "sigmoid");
  cb.emit_top(L, "Mul", {L.in[0], sg}, {});
}

void convert_elu(CaffeBuilder& cb, CaffeLayer& L) {
  Attributes a;
  a.set("alpha", static_cast<double>(L.p->elu_param().alpha()));
  convert_unary(cb, L, "Elu", a);
}

template <const char* OP>
void unary_layer(CaffeBuilder& cb, CaffeLayer& L) {
  convert_unary(cb, L, OP);
}

constexpr char kSigmoid[] = "Sigmoid", kTanh[] = "Tanh", kAbs[] = "Abs", kSoftplus[] = "Softplus",
               kIdentity[] = "Identity";

const ConverterRegistrar registrar({
    {"ReLU", convert_relu},
    {"PReLU", convert_prelu},
    {"ELU", convert_elu},
    {"Sigmoid", unary_layer<kSigmoid>},
    {"TanH", unary_layer<kTanh>},
    {"AbsVal", unary_layer<kAbs>},
    {"BNLL", unary_layer<kSoftplus>},
    {"Dropout", unary_layer<kIdentity>},
    {"Power", convert_power},
    {"Exp", convert_exp},
    {"Log", convert_log},
    {"Threshold", convert_threshold},
    {"Softmax", convert_softmax},
    {"Clip", convert_clip},
    {"Swish", convert_swish},
});

}  // namespace

}  // namespace anvil::caffe_import
