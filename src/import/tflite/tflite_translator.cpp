#include "import/tflite/tflite_translator.h"

#include <algorithm>
#include <cmath>

#include "import/common/padding.h"

namespace anvil::tflite_import {

std::optional<DType> tensor_dtype(fb::TensorType t) {
  switch (t) {
    case fb::TensorType_FLOAT32:
      return DType::f32;
    case fb::TensorType_FLOAT16:
      return DType::f16;
    case fb::TensorType_FLOAT64:
      return DType::f64;
    case fb::TensorType_INT8:
      return DType::i8;
    case fb::TensorType_UINT8:
      return DType::u8;
    case fb::TensorType_INT16:
      return DType::i16;
    case fb::TensorType_INT32:
      return DType::i32;
    case fb::TensorType_INT64:
      return DType::i64;
    case fb::TensorType_BOOL:
      return DType::boolean;
    default:
      return std::nullopt;
  }
}

std::string Translator::tname(int t) const {
  if (!sg_ || !sg_->tensors() || t < 0 || t >= static_cast<int>(sg_->tensors()->size())) return "?";
  auto* n = tensor(t)->name();
  return n && n->size() > 0 ? n->str() : "tensor_" + std::to_string(t);
}

// ---------------------------------------------------------------------------------------
// model access

DType Translator::dtype_of_tensor(int t) const {
  auto d = tensor_dtype(tensor(t)->type());
  if (!d)
    fail_tensor(t, "type",
                std::string("tensor type ") + fb::EnumNameTensorType(tensor(t)->type()) + " (" +
                    std::to_string(static_cast<int>(tensor(t)->type())) + ") is not supported");
  return *d;
}

Shape Translator::shape_of_tensor(int t) const {
  Shape s;
  if (auto* sh = tensor(t)->shape()) {
    if (sh->size() > 8)
      fail_tensor(t, "shape", "rank " + std::to_string(sh->size()) + " is larger than 8");
    int64_t n = 1;
    for (auto d : *sh) {
      if (d < 0) fail_tensor(t, "shape", "negative dimension " + std::to_string(d));
      s.push_back(d);
      if (d != 0 && n > kMaxTensorElements / d)
        fail_tensor(t, "shape", "hostile tensor size " + shape_str(s) + "...");
      n *= d;
    }
  }
  return s;
}

QP Translator::qparams(int t) const {
  QP p;
  const fb::QuantizationParameters* qp = tensor(t)->quantization();
  if (!qp) return p;
  if (qp->details_type() != fb::QuantizationDetails_NONE)
    fail_tensor(t, "quantization", "custom quantization details are not supported");
  if (qp->scale())
    for (float s : *qp->scale()) p.scale.push_back(s);
  if (qp->zero_point())
    for (int64_t z : *qp->zero_point()) p.zp.push_back(z);
  p.dim = qp->quantized_dimension();
  if (p.scale.empty()) return p;
  if (p.zp.empty()) p.zp.assign(p.scale.size(), 0);
  if (p.zp.size() != p.scale.size())
    fail_tensor(t, "quantization",
                std::to_string(p.scale.size()) + " scales but " + std::to_string(p.zp.size()) +
                    " zero points");
  for (float s : p.scale)
    if (!(s > 0) || !std::isfinite(s))
      fail_tensor(t, "quantization", "scale " + std::to_string(s) + " is not positive and finite");
  for (int64_t z : p.zp)
    if (z < -65536 || z > 65536)
      fail_tensor(t, "quantization", "zero point " + std::to_string(z) + " is out of range");
  return p;
}

Tensor Translator::constant_data(int t) const {
  const uint32_t b = tensor(t)->buffer();
  auto* buffers = model_->buffers();
  if (b == 0) return {};
  if (!buffers || b >= buffers->size())
    fail_tensor(t, "buffer",
                "buffer index " + std::to_string(b) + " is out of range (the model has " +
                    std::to_string(buffers ? buffers->size() : 0) + " buffers)");
  const fb::Buffer* buf = buffers->Get(b);
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  if (buf->data() && buf->data()->size() > 0) {
    data = buf->data()->data();
    size = buf->data()->size();
  } else if (buf->offset() > 1) {  // data stored after the flatbuffer (models > 2 GB)
    if (buf->offset() > bytes_->size() || buf->size() > bytes_->size() - buf->offset())
      fail_tensor(t, "buffer",
                  "external buffer [" + std::to_string(buf->offset()) + ", +" +
                      std::to_string(buf->size()) + ") lies outside the file (" +
                      std::to_string(bytes_->size()) + " bytes)");
    data = bytes_->data() + buf->offset();
    size = buf->size();
  }
  if (!data) return {};
  if (tensor(t)->sparsity())
    fail_tensor(t, "sparsity", "sparse constant tensors are not supported");
  const DType dt = dtype_of_tensor(t);
  const Shape s = shape_of_tensor(t);
  const uint64_t want = static_cast<uint64_t>(shape_numel(s)) * dtype_size(dt);
  if (size != want)
    fail_tensor(t, "buffer",
                "buffer " + std::to_string(b) + " holds " + std::to_string(size) + " bytes but " +
                    shape_str(s) + " " + dtype_name(dt) + " needs " + std::to_string(want));
  return Tensor::from_bytes(dt, s, data);
}

// ---------------------------------------------------------------------------------------
// the current operator

TV Translator::in(int k) const {
  if (!has_in(k)) fail("inputs", "input " + std::to_string(k) + " is missing");
  const TV& t = tv_[static_cast<size_t>(ins_[static_cast<size_t>(k)])];
  return t;
}

const Tensor& Translator::const_in(int k, const std::string& what) const {
  if (!has_in(k)) fail(what, what + " (input " + std::to_string(k) + ") is missing");
  const Tensor* t = const_of(tv_[static_cast<size_t>(ins_[static_cast<size_t>(k)])].v);
  if (!t) unsupported_here(what + " (input " + std::to_string(k) + ") must be a constant");
  return *t;
}

std::vector<int64_t> Translator::const_ints(int k, const std::string& what) const {
  const Tensor& t = const_in(k, what);
  if (t.dtype() != DType::i32 && t.dtype() != DType::i64)
    fail(what, what + " must be int32 or int64, found " + dtype_name(t.dtype()));
  return t.to_int64s();
}

// ---------------------------------------------------------------------------------------
// helpers shared by operators

std::pair<int64_t, int64_t> Translator::act_range(fb::ActivationFunctionType a,
                                                  int out_tensor) const {
  const DType t = dtype_of_tensor(out_tensor);
  const QP p = qparams(out_tensor);
  int64_t lo = qmin_of(t), hi = qmax_of(t);
  auto quant = [&](float f) {
    return p.zp[0] + static_cast<int64_t>(q::tflite_round(static_cast<double>(f / p.scale[0])));
  };
  switch (a) {
    case fb::ActivationFunctionType_NONE:
      break;
    case fb::ActivationFunctionType_RELU:
      lo = std::max(lo, quant(0.0f));
      break;
    case fb::ActivationFunctionType_RELU6:
      lo = std::max(lo, quant(0.0f));
      hi = std::min(hi, quant(6.0f));
      break;
    case fb::ActivationFunctionType_RELU_N1_TO_1:
      lo = std::max(lo, quant(-1.0f));
      hi = std::min(hi, quant(1.0f));
      break;
    default:
      unsupported_here(std::string("fused activation ") + fb::EnumNameActivationFunctionType(a) +
                       " on a quantized output");
  }
  if (lo > hi) fail("fused_activation_function", "empty quantized activation range");
  return {lo, hi};
}

TV Translator::act(TV x, fb::ActivationFunctionType a) {
  auto clip = [&](float lo, float hi) {
    int l = cst("min", Tensor::from_vector<float>({}, {lo}));
    int h = cst("max", Tensor::from_vector<float>({}, {hi}));
    return TV{node("Clip", {x.v, l, h}), x.perm};
  };
  switch (a) {
    case fb::ActivationFunctionType_NONE:
      return x;
    case fb::ActivationFunctionType_RELU:
      return TV{node("Relu", {x.v}), x.perm};
    case fb::ActivationFunctionType_RELU6:
      return clip(0.0f, 6.0f);
    case fb::ActivationFunctionType_RELU_N1_TO_1:
      return clip(-1.0f, 1.0f);
    case fb::ActivationFunctionType_TANH:
      return TV{node("Tanh", {x.v}), x.perm};
    default:
      unsupported_here(std::string("fused activation ") + fb::EnumNameActivationFunctionType(a) +
                       " (" + std::to_string(static_cast<int>(a)) + ")");
  }
}

std::vector<int64_t> Translator::same_pads(int64_t in_h, int64_t in_w, int64_t kh, int64_t kw,
                                           int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                                           fb::Padding pad) const {
  if (pad == fb::Padding_VALID) return {0, 0, 0, 0};
  if (pad != fb::Padding_SAME)
    fail("padding", "unknown padding " + std::to_string(static_cast<int>(pad)));
  try {  // TF SAME: out = ceil(in / stride); the extra row/column goes at the end
    const imp::Pads ph = imp::same_pads(in_h, kh, sh, dh), pw = imp::same_pads(in_w, kw, sw, dw);
    return {ph.begin, pw.begin, ph.end, pw.end};
  } catch (const Error& e) {
    fail("padding", e.message());
  }
}

int32_t Translator::multiplier_or_fail(double real, int32_t* m, const std::string& field) const {
  int shift = 0;
  if (!q::QuantizeMultiplier(real, m, &shift))
    fail(field, "cannot represent the rescale factor " + std::to_string(real));
  return shift;
}

void Translator::require_quant_params(int t, const QP& p, const std::string& field) const {
  if (!p.present()) fail_tensor(t, field, "quantized tensor has no scale/zero point");
}

TV Translator::reshape_to(const TV& x, const Shape& target) {
  const int xv = as_source(x);
  return TV{node("Reshape", {xv, i64s("shape", target)}), {}};
}

std::vector<int> Translator::common_layout(const TV& x, const TV& y) const {
  if (rank(x.v) != rank(y.v)) return {};
  if (x.perm == y.perm) return x.perm;
  if (const_of(y.v)) return x.perm;
  if (const_of(x.v)) return y.perm;
  return {};
}

}  // namespace anvil::tflite_import
