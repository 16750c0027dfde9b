// The TFLite importer: a .tflite flatbuffer -> anvil::Graph (docs/tflite.md).
//
// The file is read whole and checked by the flatbuffers Verifier (generated from our schema
// subset, tflite_schema.fbs) before anything is dereferenced; every tensor, buffer and opcode
// index and every size is then checked by hand, and problems throw anvil::Error naming the
// operator ("operator 3 (CONV_2D)") or tensor. Unsupported operators are listed all at once.
//
// Layout: TFLite is NHWC everywhere (conv weights OHWI, depthwise 1HWO). Each TFLite tensor
// maps to a graph value plus the permutation that takes it to TFLite's layout (like the Keras
// importer): ops that need canonical NCHW (conv, pooling, resize) get explicit Transposes of
// their inputs and produce NCHW values whose Provenance says to_source = (0, 2, 3, 1);
// elementwise ops keep whatever layout their inputs share; shape ops (reshape, fully
// connected, ...) work in TFLite's layout. Fetched tensors come back NHWC with TFLite names.
//
// Float models map onto the canonical (ONNX-semantics) ops with TF's SAME padding made
// explicit. Quantized models (int8, uint8, int16 activations) map onto the TFLite* integer ops
// of src/ops/tflite_quant.cpp with the fixed-point multipliers TFLite's
// kernels compute in their Prepare step, so results match TFLite bit for bit. Inputs and
// outputs keep their stored dtype; ImportOptions::dequantize_outputs adds a dequantization of
// quantized outputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "ops/tflite_quant.h"
#include "import/tflite/tflite_schema_generated.h"

namespace anvil::tflite_import {
namespace {

namespace fb = anvil_tflite;
namespace q = tflite_quant;

constexpr int64_t kMaxTensorElements = int64_t{1} << 32;
constexpr uint64_t kMaxFileBytes = uint64_t{2} << 30;  // flatbuffers' own limit is 2 GiB

std::string lower_ext(const std::string& f) {
  std::string e = std::filesystem::path(f).extension().string();
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::vector<int> identity_perm(int r) {
  std::vector<int> p(static_cast<size_t>(r));
  for (int i = 0; i < r; ++i) p[static_cast<size_t>(i)] = i;
  return p;
}
bool is_identity(const std::vector<int>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int>(i)) return false;
  return true;
}
std::vector<int> inverse_perm(const std::vector<int>& p) {
  std::vector<int> r(p.size());
  for (size_t i = 0; i < p.size(); ++i) r[static_cast<size_t>(p[i])] = static_cast<int>(i);
  return r;
}
const std::vector<int> kNHWC = {0, 2, 3, 1};  // canonical NCHW -> TFLite NHWC
const std::vector<int> kToNCHW = {0, 3, 1, 2};

std::optional<DType> tensor_dtype(fb::TensorType t) {
  switch (t) {
    case fb::TensorType_FLOAT32: return DType::f32;
    case fb::TensorType_FLOAT16: return DType::f16;
    case fb::TensorType_FLOAT64: return DType::f64;
    case fb::TensorType_INT8: return DType::i8;
    case fb::TensorType_UINT8: return DType::u8;
    case fb::TensorType_INT16: return DType::i16;
    case fb::TensorType_INT32: return DType::i32;
    case fb::TensorType_INT64: return DType::i64;
    case fb::TensorType_BOOL: return DType::boolean;
    default: return std::nullopt;
  }
}

bool is_quant_type(DType t) { return t == DType::i8 || t == DType::u8 || t == DType::i16; }
int64_t qmin_of(DType t) { return t == DType::i8 ? -128 : t == DType::u8 ? 0 : -32768; }
int64_t qmax_of(DType t) { return t == DType::i8 ? 127 : t == DType::u8 ? 255 : 32767; }
std::string qdtype_name(DType t) { return t == DType::i8 ? "i8" : t == DType::u8 ? "u8" : "i16"; }

/// A TFLite tensor as imported: the graph value and the permutation to TFLite's layout.
struct TV {
  int v = -1;
  std::vector<int> perm;  // to_source; empty = TFLite's layout
  bool poisoned = false;  // produced by an unsupported operator
};

/// Quantization parameters of one tensor.
struct QP {
  std::vector<float> scale;
  std::vector<int64_t> zp;
  int dim = 0;
  bool present() const { return !scale.empty(); }
};

struct Unsupported {
  std::string node, op, reason;
};

class Translator {
 public:
  Translator(Graph& g, std::shared_ptr<std::vector<uint8_t>> bytes, const ImportOptions& opt)
      : g_(g), bytes_(std::move(bytes)), opt_(opt) {}

  void run();
  std::vector<Unsupported> unsupported;

 private:
  // ---- errors ----
  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    throw Error(msg, g_.source_file, cur_, field);
  }
  [[noreturn]] void fail_tensor(int t, const std::string& field, const std::string& msg) const {
    throw Error(msg, g_.source_file, "tensor " + std::to_string(t) + " '" + tname(t) + "'", field);
  }
  struct Skip {  // thrown to list an operator as unsupported and go on
    std::string reason;
  };
  [[noreturn]] void unsupported_here(const std::string& reason) const { throw Skip{reason}; }

  // ---- model access ----
  const fb::Tensor* tensor(int t) const { return sg_->tensors()->Get(static_cast<flatbuffers::uoffset_t>(t)); }
  std::string tname(int t) const {
    if (!sg_ || !sg_->tensors() || t < 0 || t >= static_cast<int>(sg_->tensors()->size())) return "?";
    auto* n = tensor(t)->name();
    return n && n->size() > 0 ? n->str() : "tensor_" + std::to_string(t);
  }
  void check_tensor_index(int t, const std::string& field) const {
    if (t < 0 || t >= static_cast<int>(sg_->tensors()->size()))
      fail(field, "tensor index " + std::to_string(t) + " is out of range (the subgraph has " +
                      std::to_string(sg_->tensors()->size()) + " tensors)");
  }
  DType dtype_of_tensor(int t) const;
  Shape shape_of_tensor(int t) const;
  QP qparams(int t) const;
  /// The constant data of tensor t, or an undefined Tensor when it has no buffer data.
  Tensor constant_data(int t) const;

  // ---- graph emission ----
  int node(const std::string& op, const std::vector<int>& ins, Attributes attrs = {}, int outputs = 1);
  int cst(const std::string& what, Tensor t) { return g_.add_constant(g_.unique_name(cur_name_ + "/" + what), std::move(t)); }
  int i64s(const std::string& what, const std::vector<int64_t>& v) {
    return cst(what, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
  }
  const Shape& shape(int v) const { return g_.values[static_cast<size_t>(v)].shape; }
  DType dtype(int v) const { return g_.values[static_cast<size_t>(v)].dtype; }
  int rank(int v) const { return static_cast<int>(shape(v).size()); }
  Shape src_shape(const TV& t) const {
    const Shape& s = shape(t.v);
    if (t.perm.empty()) return s;
    Shape r(s.size());
    for (size_t i = 0; i < s.size(); ++i) r[i] = s[static_cast<size_t>(t.perm[i])];
    return r;
  }
  /// A value equal to transpose(source(t), q).
  int view(const TV& t, const std::vector<int>& qp);
  int as_source(const TV& t) { return view(t, identity_perm(rank(t.v))); }
  int as_nchw(const TV& t) {
    if (rank(t.v) != 4) fail("inputs", "expected a 4-D (N, H, W, C) tensor, found " + shape_str(src_shape(t)));
    return view(t, kToNCHW);
  }
  /// A value in the layout whose to_source permutation is p.
  int in_layout(const TV& t, const std::vector<int>& p) {
    return p.empty() ? as_source(t) : view(t, inverse_perm(p));
  }
  const Tensor* const_of(int v) const {
    const Value& val = g_.values[static_cast<size_t>(v)];
    return val.is_constant() ? &val.constant : nullptr;
  }

  // ---- operator translation ----
  TV in(int k) const;  // input k of the current operator (must be present)
  bool has_in(int k) const { return k < static_cast<int>(ins_.size()) && ins_[static_cast<size_t>(k)] >= 0; }
  const Tensor& const_in(int k, const std::string& what) const;
  std::vector<int64_t> const_ints(int k, const std::string& what) const;
  void translate(const fb::Operator* op, int code);
  TV act(TV x, fb::ActivationFunctionType a);
  std::pair<int64_t, int64_t> act_range(fb::ActivationFunctionType a, int out_tensor) const;
  std::vector<int64_t> same_pads(int64_t in_h, int64_t in_w, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                 int64_t dh, int64_t dw, fb::Padding pad) const;
  TV conv(const fb::Operator* op, bool depthwise);
  TV fully_connected(const fb::Operator* op);
  TV pool(const fb::Operator* op, bool max);
  TV binary(const std::string& onnx_op, fb::ActivationFunctionType a);
  TV quant_add(bool subtract, const fb::Operator* op, fb::ActivationFunctionType a);
  TV quant_mul(fb::ActivationFunctionType a);
  TV concat(const fb::Operator* op);
  TV reshape_to(const TV& x, const Shape& target);
  TV reshape(const fb::Operator* op);
  TV softmax(const fb::Operator* op);
  TV pad(bool v2);
  TV reduce(const std::string& onnx_op, const fb::Operator* op);
  TV transpose();
  TV resize(const fb::Operator* op, bool bilinear);
  TV quantize();
  TV dequantize();
  TV unary(const std::string& onnx_op, Attributes a = {});
  TV quant_relu(double lo, double hi);
  int32_t multiplier_or_fail(double real, int32_t* m, const std::string& field) const;
  void require_quant_params(int t, const QP& p, const std::string& field) const;

  Graph& g_;
  std::shared_ptr<std::vector<uint8_t>> bytes_;
  const ImportOptions& opt_;
  const fb::Model* model_ = nullptr;
  const fb::SubGraph* sg_ = nullptr;
  std::vector<TV> tv_;           // per tensor index
  std::vector<bool> produced_;   // per tensor index
  std::map<std::pair<int, std::vector<int>>, int> view_cache_;
  std::string cur_;       // "operator 3 (CONV_2D)" for messages
  std::string cur_name_;  // base for new node/value names
  std::string cur_op_type_;  // TFLite operator type, recorded as Node::source_op
  int first_value_ = 0;      // values created by the current operator start here
  std::vector<int> ins_, outs_;
  int op_index_ = 0;
  bool overridden_shapes_ = false;
};

// ---------------------------------------------------------------------------------------
// model access

DType Translator::dtype_of_tensor(int t) const {
  auto d = tensor_dtype(tensor(t)->type());
  if (!d)
    fail_tensor(t, "type", std::string("tensor type ") + fb::EnumNameTensorType(tensor(t)->type()) + " (" +
                               std::to_string(static_cast<int>(tensor(t)->type())) + ") is not supported");
  return *d;
}

Shape Translator::shape_of_tensor(int t) const {
  Shape s;
  if (auto* sh = tensor(t)->shape()) {
    if (sh->size() > 8) fail_tensor(t, "shape", "rank " + std::to_string(sh->size()) + " is larger than 8");
    int64_t n = 1;
    for (auto d : *sh) {
      if (d < 0) fail_tensor(t, "shape", "negative dimension " + std::to_string(d));
      s.push_back(d);
      if (d != 0 && n > kMaxTensorElements / d) fail_tensor(t, "shape", "hostile tensor size " + shape_str(s) + "...");
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
    fail_tensor(t, "quantization", std::to_string(p.scale.size()) + " scales but " + std::to_string(p.zp.size()) +
                                       " zero points");
  for (float s : p.scale)
    if (!(s > 0) || !std::isfinite(s)) fail_tensor(t, "quantization", "scale " + std::to_string(s) + " is not positive and finite");
  for (int64_t z : p.zp)
    if (z < -65536 || z > 65536) fail_tensor(t, "quantization", "zero point " + std::to_string(z) + " is out of range");
  return p;
}

Tensor Translator::constant_data(int t) const {
  const uint32_t b = tensor(t)->buffer();
  auto* buffers = model_->buffers();
  if (b == 0) return {};
  if (!buffers || b >= buffers->size())
    fail_tensor(t, "buffer", "buffer index " + std::to_string(b) + " is out of range (the model has " +
                                 std::to_string(buffers ? buffers->size() : 0) + " buffers)");
  const fb::Buffer* buf = buffers->Get(b);
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  if (buf->data() && buf->data()->size() > 0) {
    data = buf->data()->data();
    size = buf->data()->size();
  } else if (buf->offset() > 1) {  // data stored after the flatbuffer (models > 2 GB)
    if (buf->offset() > bytes_->size() || buf->size() > bytes_->size() - buf->offset())
      fail_tensor(t, "buffer", "external buffer [" + std::to_string(buf->offset()) + ", +" + std::to_string(buf->size()) +
                                   ") lies outside the file (" + std::to_string(bytes_->size()) + " bytes)");
    data = bytes_->data() + buf->offset();
    size = buf->size();
  }
  if (!data) return {};
  if (tensor(t)->sparsity()) fail_tensor(t, "sparsity", "sparse constant tensors are not supported");
  const DType dt = dtype_of_tensor(t);
  const Shape s = shape_of_tensor(t);
  const uint64_t want = static_cast<uint64_t>(shape_numel(s)) * dtype_size(dt);
  if (size != want)
    fail_tensor(t, "buffer", "buffer " + std::to_string(b) + " holds " + std::to_string(size) + " bytes but " +
                                 shape_str(s) + " " + dtype_name(dt) + " needs " + std::to_string(want));
  return Tensor::from_bytes(dt, s, data);
}

// ---------------------------------------------------------------------------------------
// graph emission

int Translator::node(const std::string& op, const std::vector<int>& ins, Attributes attrs, int outputs) {
  std::string nm = g_.unique_name(cur_name_ + "/" + op);
  int ni = g_.add_node(op, nm, ins, std::move(attrs), outputs);
  g_.nodes[static_cast<size_t>(ni)].source_op = cur_op_type_;
  try {
    g_.infer_node(ni);
  } catch (const Error& e) {
    throw Error(e.message(), g_.source_file, cur_, e.field());
  }
  for (int o : g_.nodes[static_cast<size_t>(ni)].outputs) {
    const Value& val = g_.values[static_cast<size_t>(o)];
    int64_t n = 1;
    for (int64_t d : val.shape) {
      if (d < 0 || (d != 0 && n > kMaxTensorElements / d)) fail("shape", "hostile tensor size " + shape_str(val.shape));
      n *= d;
    }
  }
  return g_.nodes[static_cast<size_t>(ni)].outputs[0];
}

int Translator::view(const TV& t, const std::vector<int>& qp) {
  if (static_cast<int>(qp.size()) != rank(t.v)) fail("perm", "permutation rank does not match the tensor");
  std::vector<int> c(qp.size());
  for (size_t i = 0; i < qp.size(); ++i) c[i] = t.perm.empty() ? qp[i] : t.perm[static_cast<size_t>(qp[i])];
  if (is_identity(c)) return t.v;
  auto key = std::make_pair(t.v, c);
  if (auto it = view_cache_.find(key); it != view_cache_.end()) return it->second;
  int v;
  if (const Tensor* k = const_of(t.v)) {  // fold constants at import
    v = cst("transposed", anvil::transpose(*k, c));
  } else {
    Attributes a;
    a.set("perm", std::vector<int64_t>(c.begin(), c.end()));
    v = node("Transpose", {t.v}, a);
  }
  view_cache_[key] = v;
  return v;
}

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

std::pair<int64_t, int64_t> Translator::act_range(fb::ActivationFunctionType a, int out_tensor) const {
  const DType t = dtype_of_tensor(out_tensor);
  const QP p = qparams(out_tensor);
  int64_t lo = qmin_of(t), hi = qmax_of(t);
  auto quant = [&](float f) {
    return p.zp[0] + static_cast<int64_t>(q::tflite_round(static_cast<double>(f / p.scale[0])));
  };
  switch (a) {
    case fb::ActivationFunctionType_NONE: break;
    case fb::ActivationFunctionType_RELU: lo = std::max(lo, quant(0.0f)); break;
    case fb::ActivationFunctionType_RELU6:
      lo = std::max(lo, quant(0.0f));
      hi = std::min(hi, quant(6.0f));
      break;
    case fb::ActivationFunctionType_RELU_N1_TO_1:
      lo = std::max(lo, quant(-1.0f));
      hi = std::min(hi, quant(1.0f));
      break;
    default: unsupported_here(std::string("fused activation ") + fb::EnumNameActivationFunctionType(a) + " on a quantized output");
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
    case fb::ActivationFunctionType_NONE: return x;
    case fb::ActivationFunctionType_RELU: return TV{node("Relu", {x.v}), x.perm};
    case fb::ActivationFunctionType_RELU6: return clip(0.0f, 6.0f);
    case fb::ActivationFunctionType_RELU_N1_TO_1: return clip(-1.0f, 1.0f);
    case fb::ActivationFunctionType_TANH: return TV{node("Tanh", {x.v}), x.perm};
    default:
      unsupported_here(std::string("fused activation ") + fb::EnumNameActivationFunctionType(a) + " (" +
                       std::to_string(static_cast<int>(a)) + ")");
  }
}

std::vector<int64_t> Translator::same_pads(int64_t in_h, int64_t in_w, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                           int64_t dh, int64_t dw, fb::Padding pad) const {
  if (pad == fb::Padding_VALID) return {0, 0, 0, 0};
  if (pad != fb::Padding_SAME) fail("padding", "unknown padding " + std::to_string(static_cast<int>(pad)));
  // TF SAME: out = ceil(in / stride); the extra row/column goes at the end
  auto total = [](int64_t in, int64_t k, int64_t s, int64_t d) {
    const int64_t out = (in + s - 1) / s;
    return std::max<int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
  };
  const int64_t th = total(in_h, kh, sh, dh), tw = total(in_w, kw, sw, dw);
  return {th / 2, tw / 2, th - th / 2, tw - tw / 2};
}

int32_t Translator::multiplier_or_fail(double real, int32_t* m, const std::string& field) const {
  int shift = 0;
  if (!q::QuantizeMultiplier(real, m, &shift)) fail(field, "cannot represent the rescale factor " + std::to_string(real));
  return shift;
}

void Translator::require_quant_params(int t, const QP& p, const std::string& field) const {
  if (!p.present()) fail_tensor(t, field, "quantized tensor has no scale/zero point");
}

// ---------------------------------------------------------------------------------------
// operators

TV Translator::conv(const fb::Operator* op, bool depthwise) {
  int stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1;
  fb::Padding padding = fb::Padding_SAME;
  fb::ActivationFunctionType a = fb::ActivationFunctionType_NONE;
  if (depthwise) {
    auto* o = op->builtin_options_as_DepthwiseConv2DOptions();
    if (!o) fail("builtin_options", "missing DepthwiseConv2DOptions");
    stride_h = o->stride_h(), stride_w = o->stride_w(), dil_h = o->dilation_h_factor(), dil_w = o->dilation_w_factor();
    padding = o->padding(), a = o->fused_activation_function();
  } else {
    auto* o = op->builtin_options_as_Conv2DOptions();
    if (!o) fail("builtin_options", "missing Conv2DOptions");
    stride_h = o->stride_h(), stride_w = o->stride_w(), dil_h = o->dilation_h_factor(), dil_w = o->dilation_w_factor();
    padding = o->padding(), a = o->fused_activation_function();
  }
  if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1)
    fail("stride_h", "strides and dilations must be >= 1, found stride " + std::to_string(stride_h) + "x" +
                         std::to_string(stride_w) + ", dilation " + std::to_string(dil_h) + "x" + std::to_string(dil_w));
  TV x = in(0), w = in(1);
  const Shape xs = src_shape(x), ws = src_shape(w);
  if (xs.size() != 4) fail("input", "expected an NHWC input, found " + shape_str(xs));
  if (ws.size() != 4) fail("filter", "expected a 4-D filter, found " + shape_str(ws));
  const int64_t C = xs[3];
  int64_t group = 1;
  int wv;
  if (depthwise) {  // (1, kh, kw, C*M) -> (C*M, 1, kh, kw), group C
    if (ws[0] != 1 || C == 0 || ws[3] % C != 0)
      fail("filter", "depthwise filter " + shape_str(ws) + " does not fit input channels " + std::to_string(C));
    group = C;
    wv = view(w, {3, 0, 1, 2});
  } else {  // OHWI -> OIHW
    if (ws[3] == 0 || C == 0 || C % ws[3] != 0 || ws[0] % (C / ws[3]) != 0)
      fail("filter", "filter " + shape_str(ws) + " does not fit input channels " + std::to_string(C));
    group = C / ws[3];
    wv = view(w, kToNCHW);
  }
  const int64_t M = shape(wv)[0];
  Attributes at;
  at.set("strides", std::vector<int64_t>{stride_h, stride_w});
  at.set("dilations", std::vector<int64_t>{dil_h, dil_w});
  at.set("pads", same_pads(xs[1], xs[2], ws[1], ws[2], stride_h, stride_w, dil_h, dil_w, padding));
  at.set("group", group);
  const int xv = as_nchw(x);
  std::vector<int> ins = {xv, wv};
  if (has_in(2)) ins.push_back(as_source(in(2)));
  const DType xt = dtype(xv);
  if (!is_quant_type(xt)) {
    if (!is_float(xt) || dtype(wv) != xt) unsupported_here(std::string("conv with ") + dtype_name(xt) + " input and " + dtype_name(dtype(wv)) + " filter (hybrid or unknown quantization)");
    return act(TV{node("Conv", ins, at), kNHWC}, a);
  }
  // quantized: TFLite's per-channel requantization (conv.cc / depthwise_conv.cc Prepare)
  const int ti = ins_[0], tw = ins_[1], to = outs_[0];
  const QP qi = qparams(ti), qw = qparams(tw), qo = qparams(to);
  require_quant_params(ti, qi, "quantization");
  require_quant_params(tw, qw, "quantization");
  require_quant_params(to, qo, "quantization");
  if (qi.scale.size() != 1 || qo.scale.size() != 1) unsupported_here("per-channel quantized activations");
  if (qw.scale.size() != 1 && static_cast<int64_t>(qw.scale.size()) != M)
    fail_tensor(tw, "quantization", std::to_string(qw.scale.size()) + " filter scales for " + std::to_string(M) + " output channels");
  const DType wt = dtype(wv), ot = dtype_of_tensor(to);
  if (ot != xt) unsupported_here(std::string("quantized conv from ") + dtype_name(xt) + " to " + dtype_name(ot));
  if (!(wt == DType::i8 || (xt == DType::u8 && wt == DType::u8)))
    unsupported_here(std::string(dtype_name(xt)) + " conv with " + dtype_name(wt) + " filter");
  for (int64_t z : qw.zp)
    if (z != qw.zp[0]) unsupported_here("per-channel filter zero points");
  std::vector<int64_t> ms, ss;
  if (xt == DType::u8) {  // legacy uint8: one multiplier, float product of the scales
    const double real = static_cast<double>(qi.scale[0] * qw.scale[0]) / static_cast<double>(qo.scale[0]);
    int32_t m = 0;
    int s = multiplier_or_fail(real, &m, "quantization");
    ms.push_back(m), ss.push_back(s);
  } else {
    for (size_t c = 0; c < qw.scale.size(); ++c) {
      const double real = static_cast<double>(qi.scale[0]) * static_cast<double>(qw.scale[c]) / static_cast<double>(qo.scale[0]);
      int32_t m = 0;
      int s = multiplier_or_fail(real, &m, "quantization");
      ms.push_back(m), ss.push_back(s);
    }
  }
  for (int64_t s : ss)
    if (s < -31 || s > 7) fail("quantization", "rescale shift " + std::to_string(s) + " is outside TFLite's range");
  if (xt == DType::i16 && (qi.zp[0] != 0 || qo.zp[0] != 0))
    fail("quantization", "int16 activations must have zero point 0 (TFLite's int16x8 kernels ignore it)");
  int64_t acc = 32;
  if (ins.size() > 2) {
    const DType bt = dtype(ins[2]);
    if (bt == DType::i64) acc = 64;
    else if (bt != DType::i32) fail("bias", std::string("quantized bias must be int32 or int64, found ") + dtype_name(bt));
  }
  auto [lo, hi] = act_range(a, to);
  at.set("multipliers", ms);
  at.set("shifts", ss);
  at.set("input_zero_point", qi.zp[0]);
  at.set("weight_zero_point", qw.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("accumulator", acc);
  at.set("act_min", lo);
  at.set("act_max", hi);
  return TV{node("TFLiteQuantizedConv", ins, at), kNHWC};
}

TV Translator::fully_connected(const fb::Operator* op) {
  auto* o = op->builtin_options_as_FullyConnectedOptions();
  fb::ActivationFunctionType a = o ? o->fused_activation_function() : fb::ActivationFunctionType_NONE;
  if (o && o->weights_format() != fb::FullyConnectedOptionsWeightsFormat_DEFAULT)
    unsupported_here("shuffled weights format");
  const bool keep = o && o->keep_num_dims();
  TV x = in(0), w = in(1);
  const Shape xs = src_shape(x), ws = src_shape(w);
  if (ws.size() != 2) fail("weights", "expected (units, K) weights, found " + shape_str(ws));
  const int64_t K = ws[1], O = ws[0];
  const int64_t n = shape_numel(xs);
  if (K == 0 || n % K != 0) fail("input", "input " + shape_str(xs) + " does not flatten into rows of " + std::to_string(K));
  TV rows = reshape_to(x, {n / K, K});
  std::vector<int> ins = {rows.v, as_source(w)};
  if (has_in(2)) ins.push_back(as_source(in(2)));
  Shape out_src = {n / K, O};
  if (keep) {
    out_src = xs;
    out_src.back() = O;
  }
  const DType xt = dtype(rows.v);
  TV y;
  if (!is_quant_type(xt)) {
    if (!is_float(xt) || dtype(ins[1]) != xt) unsupported_here("hybrid or mixed-type FULLY_CONNECTED");
    Attributes at;
    at.set("transB", int64_t{1});
    y = TV{node("Gemm", ins, at), {}};
    if (keep) y = reshape_to(y, out_src);
    return act(y, a);
  }
  const int ti = ins_[0], tw = ins_[1], to = outs_[0];
  const QP qi = qparams(ti), qw = qparams(tw), qo = qparams(to);
  require_quant_params(ti, qi, "quantization");
  require_quant_params(tw, qw, "quantization");
  require_quant_params(to, qo, "quantization");
  const DType ot = dtype_of_tensor(to), wt = dtype(ins[1]);
  if (ot != xt) unsupported_here(std::string("quantized FULLY_CONNECTED from ") + dtype_name(xt) + " to " + dtype_name(ot));
  if (!(wt == DType::i8 || (xt == DType::u8 && wt == DType::u8))) unsupported_here(std::string(dtype_name(xt)) + " FULLY_CONNECTED with " + dtype_name(wt) + " weights");
  if (qi.scale.size() != 1 || qo.scale.size() != 1) unsupported_here("per-channel quantized activations");
  if (qw.scale.size() != 1 && static_cast<int64_t>(qw.scale.size()) != O)
    fail_tensor(tw, "quantization", std::to_string(qw.scale.size()) + " weight scales for " + std::to_string(O) + " units");
  std::vector<int64_t> ms, ss;
  for (size_t c = 0; c < qw.scale.size(); ++c) {
    // per-tensor: GetQuantizedConvolutionMultipler (float product of the scales); per-channel:
    // the double product, as TFLite's per-channel Prepare computes it
    const double real = qw.scale.size() == 1
                            ? static_cast<double>(qi.scale[0] * qw.scale[0]) / static_cast<double>(qo.scale[0])
                            : static_cast<double>(qi.scale[0]) * static_cast<double>(qw.scale[c]) / static_cast<double>(qo.scale[0]);
    int32_t m = 0;
    int s = multiplier_or_fail(real, &m, "quantization");
    if (s < -31 || s > 7) fail("quantization", "rescale shift " + std::to_string(s) + " is outside TFLite's range");
    ms.push_back(m), ss.push_back(s);
  }
  if (xt == DType::i16 && (qi.zp[0] != 0 || qo.zp[0] != 0)) fail("quantization", "int16 activations must have zero point 0");
  int64_t acc = 32;
  if (ins.size() > 2) {
    const DType bt = dtype(ins[2]);
    if (bt == DType::i64) acc = 64;
    else if (bt != DType::i32) fail("bias", std::string("quantized bias must be int32 or int64, found ") + dtype_name(bt));
  }
  auto [lo, hi] = act_range(a, to);
  Attributes at;
  at.set("multipliers", ms);
  at.set("shifts", ss);
  at.set("input_zero_point", qi.zp[0]);
  at.set("weight_zero_point", qw.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("accumulator", acc);
  at.set("act_min", lo);
  at.set("act_max", hi);
  y = TV{node("TFLiteQuantizedFullyConnected", ins, at), {}};
  if (keep) y = reshape_to(y, out_src);
  return y;
}

TV Translator::pool(const fb::Operator* op, bool max) {
  auto* o = op->builtin_options_as_Pool2DOptions();
  if (!o) fail("builtin_options", "missing Pool2DOptions");
  if (o->stride_h() < 1 || o->stride_w() < 1 || o->filter_height() < 1 || o->filter_width() < 1)
    fail("filter_height", "pool window and strides must be >= 1");
  TV x = in(0);
  const Shape xs = src_shape(x);
  if (xs.size() != 4) fail("input", "expected an NHWC input, found " + shape_str(xs));
  const int xv = as_nchw(x);
  Attributes at;
  at.set("kernel_shape", std::vector<int64_t>{o->filter_height(), o->filter_width()});
  at.set("strides", std::vector<int64_t>{o->stride_h(), o->stride_w()});
  at.set("pads", same_pads(xs[1], xs[2], o->filter_height(), o->filter_width(), o->stride_h(), o->stride_w(), 1, 1, o->padding()));
  const DType xt = dtype(xv);
  if (!is_quant_type(xt)) {
    if (!max) at.set("count_include_pad", int64_t{0});  // TF averages over the valid cells only
    return act(TV{node(max ? "MaxPool" : "AveragePool", {xv}, at), kNHWC}, o->fused_activation_function());
  }
  const QP qi = qparams(ins_[0]), qo = qparams(outs_[0]);
  require_quant_params(ins_[0], qi, "quantization");
  require_quant_params(outs_[0], qo, "quantization");
  if (qi.scale != qo.scale || qi.zp != qo.zp) unsupported_here("quantized pooling with different input and output quantization");
  auto [lo, hi] = act_range(o->fused_activation_function(), outs_[0]);
  at.set("mode", std::string(max ? "max" : "average"));
  at.set("act_min", lo);
  at.set("act_max", hi);
  return TV{node("TFLiteQuantizedPool", {xv}, at), kNHWC};
}

TV Translator::binary(const std::string& onnx_op, fb::ActivationFunctionType a) {
  TV x = in(0), y = in(1);
  std::vector<int> p;
  // work in the layout both share; a constant follows the other input's layout
  const bool xc = const_of(x.v) != nullptr, yc = const_of(y.v) != nullptr;
  if (rank(x.v) == rank(y.v)) {
    if (x.perm == y.perm) p = x.perm;
    else if (yc) p = x.perm;
    else if (xc) p = y.perm;
  }
  const int xv = in_layout(x, p), yv = in_layout(y, p);
  return act(TV{node(onnx_op, {xv, yv}), p}, a);
}

TV Translator::quant_add(bool subtract, const fb::Operator* op, fb::ActivationFunctionType a) {
  TV x = in(0), y = in(1);
  const int t1 = ins_[0], t2 = ins_[1], to = outs_[0];
  const DType xt = dtype(x.v), ot = dtype_of_tensor(to);
  if (dtype(y.v) != xt || ot != xt) unsupported_here("mixed-type quantized ADD/SUB");
  const QP q1 = qparams(t1), q2 = qparams(t2), qo = qparams(to);
  require_quant_params(t1, q1, "quantization");
  require_quant_params(t2, q2, "quantization");
  require_quant_params(to, qo, "quantization");
  if (q1.scale.size() != 1 || q2.scale.size() != 1 || qo.scale.size() != 1) unsupported_here("per-channel quantized ADD/SUB");
  bool pot_option = true;
  if (subtract) {
    if (auto* o = op->builtin_options_as_SubOptions()) pot_option = o->pot_scale_int16();
  } else if (auto* o = op->builtin_options_as_AddOptions()) {
    pot_option = o->pot_scale_int16();
  }
  if (xt == DType::i16) {
    if (q1.zp[0] != 0 || q2.zp[0] != 0 || qo.zp[0] != 0) fail("quantization", "int16 ADD/SUB needs zero points 0");
    auto is_pot = [](float s) {
      int e = 0;
      return std::frexp(static_cast<double>(s), &e) == 0.5;
    };
    if (pot_option && is_pot(q1.scale[0]) && is_pot(q2.scale[0]) && is_pot(qo.scale[0]))
      unsupported_here("int16 ADD/SUB with power-of-two scales (TFLite's pot_scale_int16 path)");
  }
  // TFLite's general path (add.cc / sub.cc Prepare)
  const int left_shift = xt == DType::i16 ? 15 : 20;
  const double twice_max = 2.0 * static_cast<double>(std::max(q1.scale[0], q2.scale[0]));
  const double r1 = static_cast<double>(q1.scale[0]) / twice_max, r2 = static_cast<double>(q2.scale[0]) / twice_max;
  const double ro = twice_max / (static_cast<double>(int64_t{1} << left_shift) * static_cast<double>(qo.scale[0]));
  int32_t m1 = 0, m2 = 0, mo = 0;
  const int s1 = multiplier_or_fail(r1, &m1, "quantization"), s2 = multiplier_or_fail(r2, &m2, "quantization"),
            so = multiplier_or_fail(ro, &mo, "quantization");
  if (s1 > 0 || s2 > 0 || so > 0 || ro >= 1.0)
    fail("quantization", "output scale too small for TFLite's quantized ADD/SUB (rescale factor >= 1)");
  auto [lo, hi] = act_range(a, to);
  Attributes at;
  at.set("subtract", int64_t{subtract ? 1 : 0});
  at.set("left_shift", int64_t{left_shift});
  at.set("input1_zero_point", q1.zp[0]);
  at.set("input2_zero_point", q2.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("input1_multiplier", int64_t{m1});
  at.set("input1_shift", int64_t{s1});
  at.set("input2_multiplier", int64_t{m2});
  at.set("input2_shift", int64_t{s2});
  at.set("output_multiplier", int64_t{mo});
  at.set("output_shift", int64_t{so});
  at.set("act_min", lo);
  at.set("act_max", hi);
  std::vector<int> p;
  if (rank(x.v) == rank(y.v)) {
    if (x.perm == y.perm) p = x.perm;
    else if (const_of(y.v)) p = x.perm;
    else if (const_of(x.v)) p = y.perm;
  }
  return TV{node("TFLiteQuantizedAdd", {in_layout(x, p), in_layout(y, p)}, at), p};
}

TV Translator::quant_mul(fb::ActivationFunctionType a) {
  TV x = in(0), y = in(1);
  const int t1 = ins_[0], t2 = ins_[1], to = outs_[0];
  const DType xt = dtype(x.v), ot = dtype_of_tensor(to);
  if (dtype(y.v) != xt || ot != xt) unsupported_here("mixed-type quantized MUL");
  if (xt == DType::i16) unsupported_here("int16 quantized MUL");
  const QP q1 = qparams(t1), q2 = qparams(t2), qo = qparams(to);
  require_quant_params(t1, q1, "quantization");
  require_quant_params(t2, q2, "quantization");
  require_quant_params(to, qo, "quantization");
  if (q1.scale.size() != 1 || q2.scale.size() != 1 || qo.scale.size() != 1) unsupported_here("per-channel quantized MUL");
  const double real = static_cast<double>(q1.scale[0]) * static_cast<double>(q2.scale[0]) / static_cast<double>(qo.scale[0]);
  int32_t m = 0;
  const int s = multiplier_or_fail(real, &m, "quantization");
  if (s > 30) fail("quantization", "MUL rescale factor too large");
  auto [lo, hi] = act_range(a, to);
  Attributes at;
  at.set("input1_zero_point", q1.zp[0]);
  at.set("input2_zero_point", q2.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("output_multiplier", int64_t{m});
  at.set("output_shift", int64_t{s});
  at.set("act_min", lo);
  at.set("act_max", hi);
  std::vector<int> p;
  if (rank(x.v) == rank(y.v)) {
    if (x.perm == y.perm) p = x.perm;
    else if (const_of(y.v)) p = x.perm;
    else if (const_of(x.v)) p = y.perm;
  }
  return TV{node("TFLiteQuantizedMul", {in_layout(x, p), in_layout(y, p)}, at), p};
}

TV Translator::concat(const fb::Operator* op) {
  auto* o = op->builtin_options_as_ConcatenationOptions();
  if (!o) fail("builtin_options", "missing ConcatenationOptions");
  std::vector<TV> xs;
  for (size_t k = 0; k < ins_.size(); ++k) xs.push_back(in(static_cast<int>(k)));
  if (xs.empty()) fail("inputs", "CONCATENATION without inputs");
  const int r = rank(xs[0].v);
  std::vector<int> p = xs[0].perm;
  for (const auto& x : xs) {
    if (rank(x.v) != r) fail("inputs", "inputs of different ranks");
    if (x.perm != p && !const_of(x.v)) p.clear();
  }
  int64_t axis = o->axis();
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) fail("axis", "axis " + std::to_string(o->axis()) + " out of range for rank " + std::to_string(r));
  std::vector<int> vs;
  for (const auto& x : xs) vs.push_back(in_layout(x, p));
  if (is_quant_type(dtype(vs[0]))) {
    const QP qo = qparams(outs_[0]);
    for (int t : ins_) {
      const QP qt = qparams(t);
      if (qt.scale != qo.scale || qt.zp != qo.zp) unsupported_here("quantized CONCATENATION of inputs with different quantization");
    }
    if (o->fused_activation_function() != fb::ActivationFunctionType_NONE) unsupported_here("fused activation on a quantized CONCATENATION");
  }
  Attributes at;
  at.set("axis", int64_t{p.empty() ? axis : p[static_cast<size_t>(axis)]});
  return act(TV{node("Concat", vs, at), p}, o->fused_activation_function());
}

TV Translator::reshape_to(const TV& x, const Shape& target) {
  const int xv = as_source(x);
  return TV{node("Reshape", {xv, i64s("shape", target)}), {}};
}

TV Translator::reshape(const fb::Operator* op) {
  TV x = in(0);
  std::vector<int64_t> target;
  bool have = false;
  if (has_in(1) && const_of(in(1).v)) {
    target = const_ints(1, "shape");
    have = true;
  } else if (auto* o = op->builtin_options_as_ReshapeOptions(); o && o->new_shape()) {
    for (int32_t d : *o->new_shape()) target.push_back(d);
    have = true;
  }
  if (!have) target = shape_of_tensor(outs_[0]);
  int minus = 0;
  for (int64_t d : target) {
    if (d == -1) ++minus;
    else if (d < 0) fail("new_shape", "bad target shape " + ints_str(target));
    else if (d == 0) unsupported_here("RESHAPE to a zero-sized dimension");
  }
  if (minus > 1) fail("new_shape", "more than one -1 in " + ints_str(target));
  return reshape_to(x, target);
}

TV Translator::softmax(const fb::Operator* op) {
  auto* o = op->builtin_options_as_SoftmaxOptions();
  const float beta = o ? o->beta() : 1.0f;
  TV x = in(0);
  if (is_quant_type(dtype(x.v))) unsupported_here("quantized SOFTMAX");
  int v = x.v;
  if (beta != 1.0f) v = node("Mul", {v, cst("beta", Tensor::from_vector<float>({}, {beta}))});
  const int r = rank(v);
  if (r < 1) fail("input", "SOFTMAX of a scalar");
  Attributes at;
  at.set("axis", int64_t{x.perm.empty() ? r - 1 : x.perm[static_cast<size_t>(r - 1)]});
  return TV{node("Softmax", {v}, at), x.perm};
}

TV Translator::pad(bool v2) {
  TV x = in(0);
  const int r = rank(x.v);
  auto pads = const_ints(1, "paddings");
  if (static_cast<int>(pads.size()) != 2 * r) fail("paddings", "expected (" + std::to_string(r) + ", 2) paddings, found " + ints_str(pads));
  for (int64_t p : pads)
    if (p < 0 || p > kMaxTensorElements) fail("paddings", "bad paddings " + ints_str(pads));
  std::vector<int64_t> onnx(static_cast<size_t>(2 * r));
  for (int i = 0; i < r; ++i) {  // source axis i -> canonical axis perm[i]
    const int c = x.perm.empty() ? i : x.perm[static_cast<size_t>(i)];
    onnx[static_cast<size_t>(c)] = pads[static_cast<size_t>(2 * i)];
    onnx[static_cast<size_t>(c + r)] = pads[static_cast<size_t>(2 * i + 1)];
  }
  std::vector<int> ins = {x.v, i64s("pads", onnx)};
  const DType xt = dtype(x.v);
  if (v2 && has_in(2)) {
    const Tensor& cv = const_in(2, "constant_values");
    if (cv.numel() != 1 || cv.dtype() != xt) fail("constant_values", "expected one value of the input's dtype");
    if (is_quant_type(xt)) {
      const QP qi = qparams(ins_[0]), qc = qparams(ins_[2]);
      if (qi.scale != qc.scale || qi.zp != qc.zp) unsupported_here("PADV2 value with its own quantization");
    }
    ins.push_back(cst("value", cv.reshaped({})));
  } else if (is_quant_type(xt)) {  // TFLite pads quantized tensors with the output zero point
    const QP qo = qparams(outs_[0]);
    Tensor z(xt, {});
    z.set(0, static_cast<double>(qo.present() ? qo.zp[0] : 0));
    ins.push_back(cst("value", z));
  }
  if (is_quant_type(xt)) {
    const QP qi = qparams(ins_[0]), qo = qparams(outs_[0]);
    if (qi.scale != qo.scale || qi.zp != qo.zp) unsupported_here("quantized PAD with different input and output quantization");
  }
  return TV{node("Pad", ins), x.perm};
}

TV Translator::reduce(const std::string& onnx_op, const fb::Operator* op) {
  auto* o = op->builtin_options_as_ReducerOptions();
  const bool keep = o && o->keep_dims();
  TV x = in(0);
  if (is_quant_type(dtype(x.v))) unsupported_here("quantized reductions");
  const int r = rank(x.v);
  auto axes = const_ints(1, "axis");
  std::vector<int> p = keep ? x.perm : std::vector<int>{};
  const int xv = in_layout(x, p);
  std::vector<int64_t> canon;
  for (int64_t a : axes) {
    int64_t aa = a < 0 ? a + r : a;
    if (aa < 0 || aa >= r) fail("axis", "axis " + std::to_string(a) + " out of range for rank " + std::to_string(r));
    canon.push_back(p.empty() ? aa : p[static_cast<size_t>(aa)]);
  }
  Attributes at;
  at.set("keepdims", int64_t{keep ? 1 : 0});
  return TV{node(onnx_op, {xv, i64s("axes", canon)}, at), p};
}

TV Translator::transpose() {
  TV x = in(0);
  auto perm = const_ints(1, "perm");
  const int r = rank(x.v);
  if (static_cast<int>(perm.size()) != r) fail("perm", "permutation " + ints_str(perm) + " for a rank-" + std::to_string(r) + " tensor");
  std::vector<int> qp;
  std::vector<bool> seen(static_cast<size_t>(r), false);
  for (int64_t a : perm) {
    if (a < 0 || a >= r || seen[static_cast<size_t>(a)]) fail("perm", "not a permutation: " + ints_str(perm));
    seen[static_cast<size_t>(a)] = true;
    qp.push_back(static_cast<int>(a));
  }
  return TV{node("Identity", {view(x, qp)}), {}};
}

TV Translator::resize(const fb::Operator* op, bool bilinear) {
  bool align = false, half = false;
  if (bilinear) {
    if (auto* o = op->builtin_options_as_ResizeBilinearOptions()) align = o->align_corners(), half = o->half_pixel_centers();
  } else if (auto* o = op->builtin_options_as_ResizeNearestNeighborOptions()) {
    align = o->align_corners(), half = o->half_pixel_centers();
  }
  TV x = in(0);
  if (is_quant_type(dtype(x.v))) unsupported_here("quantized resize");
  const Shape xs = src_shape(x);
  if (xs.size() != 4) fail("input", "expected an NHWC input, found " + shape_str(xs));
  auto size = const_ints(1, "size");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1 || size[0] > kMaxTensorElements || size[1] > kMaxTensorElements)
    fail("size", "expected (new_height, new_width), found " + ints_str(size));
  if (align && half) unsupported_here("align_corners together with half_pixel_centers");
  Attributes at;
  at.set("mode", std::string(bilinear ? "linear" : "nearest"));
  std::string ctm = "asymmetric";
  if (align) ctm = "align_corners";
  else if (half) ctm = bilinear ? "half_pixel" : "tf_half_pixel_for_nn";
  at.set("coordinate_transformation_mode", ctm);
  if (!bilinear) at.set("nearest_mode", std::string(align ? "round_prefer_ceil" : "floor"));
  const int xv = as_nchw(x);
  const int sizes = i64s("sizes", {xs[0], xs[3], size[0], size[1]});
  return TV{node("Resize", {xv, -1, -1, sizes}, at), kNHWC};
}

TV Translator::quantize() {
  TV x = in(0);
  const int to = outs_[0];
  const DType ot = dtype_of_tensor(to), xt = dtype(x.v);
  if (!is_quant_type(ot)) unsupported_here(std::string("QUANTIZE to ") + dtype_name(ot));
  const QP qo = qparams(to);
  require_quant_params(to, qo, "quantization");
  if (qo.scale.size() != 1) unsupported_here("per-channel QUANTIZE");
  Attributes at;
  at.set("dtype", qdtype_name(ot));
  if (is_float(xt)) {
    at.set("scale", static_cast<double>(qo.scale[0]));
    at.set("zero_point", qo.zp[0]);
    int v = x.v;
    if (xt != DType::f32) {
      Attributes c;
      c.set("to", std::string("f32"));
      v = node("Cast", {v}, c);
    }
    return TV{node("TFLiteQuantize", {v}, at), x.perm};
  }
  if (!is_quant_type(xt)) unsupported_here(std::string("QUANTIZE from ") + dtype_name(xt));
  const QP qi = qparams(ins_[0]);
  require_quant_params(ins_[0], qi, "quantization");
  if (qi.scale.size() != 1) unsupported_here("per-channel requantization");
  const double real = static_cast<double>(qi.scale[0]) / static_cast<double>(qo.scale[0]);
  int32_t m = 0;
  const int s = multiplier_or_fail(real, &m, "quantization");
  if (s > 30) fail("quantization", "requantization factor too large");
  at.set("multiplier", int64_t{m});
  at.set("shift", int64_t{s});
  at.set("input_zero_point", qi.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  return TV{node("TFLiteRequantize", {x.v}, at), x.perm};
}

TV Translator::dequantize() {
  TV x = in(0);
  const DType xt = dtype(x.v);
  if (xt == DType::f16) {  // float16 weights stored compactly
    Attributes c;
    c.set("to", std::string("f32"));
    return TV{node("Cast", {x.v}, c), x.perm};
  }
  if (!is_quant_type(xt)) unsupported_here(std::string("DEQUANTIZE of ") + dtype_name(xt));
  const QP qi = qparams(ins_[0]);
  require_quant_params(ins_[0], qi, "quantization");
  if (qi.scale.size() != 1) unsupported_here("per-channel DEQUANTIZE");
  Attributes at;
  at.set("scale", static_cast<double>(qi.scale[0]));
  at.set("zero_point", qi.zp[0]);
  return TV{node("TFLiteDequantize", {x.v}, at), x.perm};
}

TV Translator::unary(const std::string& onnx_op, Attributes a) {
  TV x = in(0);
  if (is_quant_type(dtype(x.v))) unsupported_here("quantized " + onnx_op);
  return TV{node(onnx_op, {x.v}, std::move(a)), x.perm};
}

TV Translator::quant_relu(double lo_f, double hi_f) {
  TV x = in(0);
  const QP qi = qparams(ins_[0]), qo = qparams(outs_[0]);
  require_quant_params(ins_[0], qi, "quantization");
  require_quant_params(outs_[0], qo, "quantization");
  const DType ot = dtype_of_tensor(outs_[0]);
  if (ot != dtype(x.v)) unsupported_here("quantized activation changing the type");
  // activations.cc ReluPrepare: multiplier input_scale / output_scale (float division)
  const double real = static_cast<double>(qi.scale[0] / qo.scale[0]);
  int32_t m = 0;
  const int s = multiplier_or_fail(real, &m, "quantization");
  if (s > 30) fail("quantization", "rescale factor too large");
  auto quant = [&](double f) {
    return qo.zp[0] + static_cast<int64_t>(q::tflite_round(static_cast<double>(static_cast<float>(f) / qo.scale[0])));
  };
  int64_t lo = std::max(qmin_of(ot), quant(lo_f)), hi = qmax_of(ot);
  if (std::isfinite(hi_f)) hi = std::min(hi, quant(hi_f));
  Attributes at;
  at.set("dtype", qdtype_name(ot));
  at.set("multiplier", int64_t{m});
  at.set("shift", int64_t{s});
  at.set("input_zero_point", qi.zp[0]);
  at.set("output_zero_point", qo.zp[0]);
  at.set("act_min", lo);
  at.set("act_max", hi);
  return TV{node("TFLiteRequantize", {x.v}, at), x.perm};
}

void Translator::translate(const fb::Operator* op, int code) {
  auto opt_act = [&]() {
    if (auto* o = op->builtin_options_as_AddOptions()) return o->fused_activation_function();
    if (auto* o = op->builtin_options_as_SubOptions()) return o->fused_activation_function();
    if (auto* o = op->builtin_options_as_MulOptions()) return o->fused_activation_function();
    if (auto* o = op->builtin_options_as_DivOptions()) return o->fused_activation_function();
    return fb::ActivationFunctionType_NONE;
  };
  auto quantized_in = [&]() { return has_in(0) && is_quant_type(dtype(in(0).v)); };
  TV y;
  switch (code) {
    case fb::BuiltinOperator_CONV_2D: y = conv(op, false); break;
    case fb::BuiltinOperator_DEPTHWISE_CONV_2D: y = conv(op, true); break;
    case fb::BuiltinOperator_FULLY_CONNECTED: y = fully_connected(op); break;
    case fb::BuiltinOperator_AVERAGE_POOL_2D: y = pool(op, false); break;
    case fb::BuiltinOperator_MAX_POOL_2D: y = pool(op, true); break;
    case fb::BuiltinOperator_ADD: y = quantized_in() ? quant_add(false, op, opt_act()) : binary("Add", opt_act()); break;
    case fb::BuiltinOperator_SUB: y = quantized_in() ? quant_add(true, op, opt_act()) : binary("Sub", opt_act()); break;
    case fb::BuiltinOperator_MUL: y = quantized_in() ? quant_mul(opt_act()) : binary("Mul", opt_act()); break;
    case fb::BuiltinOperator_DIV:
      if (quantized_in()) unsupported_here("quantized DIV");
      y = binary("Div", opt_act());
      break;
    case fb::BuiltinOperator_MAXIMUM:
    case fb::BuiltinOperator_MINIMUM:
      if (quantized_in()) unsupported_here("quantized MAXIMUM/MINIMUM");
      y = binary(code == fb::BuiltinOperator_MAXIMUM ? "Max" : "Min", fb::ActivationFunctionType_NONE);
      break;
    case fb::BuiltinOperator_CONCATENATION: y = concat(op); break;
    case fb::BuiltinOperator_RESHAPE: y = reshape(op); break;
    case fb::BuiltinOperator_SQUEEZE:
    case fb::BuiltinOperator_EXPAND_DIMS: {
      // the result shape is what TFLite computed and stored; only element order matters
      Shape s = shape_of_tensor(outs_[0]);
      if (shape_numel(s) != shape_numel(src_shape(in(0)))) fail("shape", "output " + shape_str(s) + " does not match the input's size");
      y = reshape_to(in(0), s);
      break;
    }
    case fb::BuiltinOperator_SOFTMAX: y = softmax(op); break;
    case fb::BuiltinOperator_LOGISTIC: y = unary("Sigmoid"); break;
    case fb::BuiltinOperator_TANH: y = unary("Tanh"); break;
    case fb::BuiltinOperator_EXP: y = unary("Exp"); break;
    case fb::BuiltinOperator_ABS: y = unary("Abs"); break;
    case fb::BuiltinOperator_NEG: y = unary("Neg"); break;
    case fb::BuiltinOperator_SQRT: y = unary("Sqrt"); break;
    case fb::BuiltinOperator_ELU: y = unary("Elu"); break;
    case fb::BuiltinOperator_HARD_SWISH: y = unary("HardSwish"); break;
    case fb::BuiltinOperator_LEAKY_RELU: {
      Attributes a;
      if (auto* o = op->builtin_options_as_LeakyReluOptions()) a.set("alpha", static_cast<double>(o->alpha()));
      y = unary("LeakyRelu", a);
      break;
    }
    case fb::BuiltinOperator_RELU:
    case fb::BuiltinOperator_RELU6:
    case fb::BuiltinOperator_RELU_N1_TO_1: {
      const double lo = code == fb::BuiltinOperator_RELU_N1_TO_1 ? -1.0 : 0.0;
      const double hi = code == fb::BuiltinOperator_RELU ? INFINITY : code == fb::BuiltinOperator_RELU6 ? 6.0 : 1.0;
      if (quantized_in()) {
        y = quant_relu(lo, hi);
      } else {
        const auto a = code == fb::BuiltinOperator_RELU    ? fb::ActivationFunctionType_RELU
                       : code == fb::BuiltinOperator_RELU6 ? fb::ActivationFunctionType_RELU6
                                                           : fb::ActivationFunctionType_RELU_N1_TO_1;
        y = act(in(0), a);
        if (y.v == in(0).v) y.v = node("Identity", {y.v});
      }
      break;
    }
    case fb::BuiltinOperator_PAD: y = pad(false); break;
    case fb::BuiltinOperator_PADV2: y = pad(true); break;
    case fb::BuiltinOperator_MEAN: y = reduce("ReduceMean", op); break;
    case fb::BuiltinOperator_SUM: y = reduce("ReduceSum", op); break;
    case fb::BuiltinOperator_REDUCE_MAX: y = reduce("ReduceMax", op); break;
    case fb::BuiltinOperator_REDUCE_MIN: y = reduce("ReduceMin", op); break;
    case fb::BuiltinOperator_REDUCE_PROD: y = reduce("ReduceProd", op); break;
    case fb::BuiltinOperator_TRANSPOSE: y = transpose(); break;
    case fb::BuiltinOperator_RESIZE_BILINEAR: y = resize(op, true); break;
    case fb::BuiltinOperator_RESIZE_NEAREST_NEIGHBOR: y = resize(op, false); break;
    case fb::BuiltinOperator_QUANTIZE: y = quantize(); break;
    case fb::BuiltinOperator_DEQUANTIZE: y = dequantize(); break;
    default: unsupported_here("unsupported operator");
  }
  if (outs_.size() != 1) fail("outputs", "expected 1 output, found " + std::to_string(outs_.size()));
  // a fresh value per TFLite tensor, named after it
  if (y.v < first_value_ || const_of(y.v)) y.v = node("Identity", {y.v});
  const int to = outs_[0];
  // the declared output type must be what we compute
  const DType want = dtype_of_tensor(to);
  if (dtype(y.v) != want)
    fail("outputs", std::string("the operator computes ") + dtype_name(dtype(y.v)) + " but tensor '" + tname(to) +
                        "' is declared " + dtype_name(want));
  if (!overridden_shapes_) {
    const Shape got = src_shape(y), decl = shape_of_tensor(to);
    if (got != decl && !(decl.empty() && shape_numel(got) == 1))
      fail("outputs", "the operator gives shape " + shape_str(got) + " but tensor '" + tname(to) + "' is declared " +
                          shape_str(decl));
  }
  tv_[static_cast<size_t>(to)] = y;
}

// ---------------------------------------------------------------------------------------
// the model

void Translator::run() {
  const std::vector<uint8_t>& b = *bytes_;
  if (b.size() < 8) throw Error("file too small to be a TFLite model (" + std::to_string(b.size()) + " bytes)", g_.source_file);
  if (!fb::ModelBufferHasIdentifier(b.data()))
    throw Error("not a TFLite model (no 'TFL3' file identifier at offset 4)", g_.source_file, {}, "file_identifier");
  flatbuffers::Verifier verifier(b.data(), b.size(), /*max_depth=*/64, /*max_tables=*/10'000'000);
  if (!fb::VerifyModelBuffer(verifier))
    throw Error("corrupt TFLite flatbuffer: the flatbuffers verifier rejects it (bad offsets, truncated data or "
                "out-of-range fields)",
                g_.source_file, {}, "flatbuffer");
  model_ = fb::GetModel(b.data());
  if (model_->version() != 3)
    throw Error("TFLite schema version " + std::to_string(model_->version()) + " is not supported (expected 3)",
                g_.source_file, {}, "version");
  if (!model_->subgraphs() || model_->subgraphs()->size() == 0)
    throw Error("the model has no subgraph", g_.source_file, {}, "subgraphs");
  sg_ = model_->subgraphs()->Get(0);
  if (!sg_->tensors()) throw Error("the main subgraph has no tensors", g_.source_file, {}, "tensors");
  if (sg_->name()) g_.name = sg_->name()->str();
  const int nt = static_cast<int>(sg_->tensors()->size());
  tv_.assign(static_cast<size_t>(nt), TV{});
  produced_.assign(static_cast<size_t>(nt), false);
  overridden_shapes_ = !opt_.input_shapes.empty();
  cur_ = "model";

  // graph inputs
  std::set<int> input_set;
  if (sg_->inputs())
    for (int32_t t : *sg_->inputs()) {
      check_tensor_index(t, "inputs");
      if (!input_set.insert(t).second) continue;
      Shape s = shape_of_tensor(t);
      const std::string nm = tname(t);
      auto ov = opt_.input_shapes.find(nm);
      if (ov != opt_.input_shapes.end()) {
        if (ov->second.size() != s.size())
          throw Error("input shape " + shape_str(ov->second) + " has the wrong rank for " + shape_str(s), g_.source_file, nm, "input_shapes");
        s = ov->second;
      }
      int v = g_.add_input(g_.unique_name(nm), dtype_of_tensor(t), s);
      Value& val = g_.values[static_cast<size_t>(v)];
      val.prov.framework = "tflite";
      val.prov.source_name = nm;
      if (s.size() == 4) val.prov.source_layout = "NHWC";
      tv_[static_cast<size_t>(t)] = TV{v, {}};
      produced_[static_cast<size_t>(t)] = true;
    }
  // constants (lazily: only tensors that operators read)
  auto ensure = [&](int t) {
    if (produced_[static_cast<size_t>(t)]) return;
    Tensor c = constant_data(t);
    if (!c.defined())
      throw Error("tensor " + std::to_string(t) + " '" + tname(t) + "' is read before any operator produces it and has no data",
                  g_.source_file, cur_, "inputs");
    int v = g_.add_constant(g_.unique_name(tname(t)), c);
    Value& val = g_.values[static_cast<size_t>(v)];
    val.prov.framework = "tflite";
    val.prov.source_name = tname(t);
    tv_[static_cast<size_t>(t)] = TV{v, {}};
    produced_[static_cast<size_t>(t)] = true;
  };

  auto* codes = model_->operator_codes();
  const int ncodes = codes ? static_cast<int>(codes->size()) : 0;
  if (sg_->operators())
    for (flatbuffers::uoffset_t i = 0; i < sg_->operators()->size(); ++i) {
      const fb::Operator* op = sg_->operators()->Get(i);
      op_index_ = static_cast<int>(i);
      cur_ = "operator " + std::to_string(i);
      if (op->opcode_index() >= static_cast<uint32_t>(ncodes))
        throw Error("opcode index " + std::to_string(op->opcode_index()) + " is out of range (the model has " +
                        std::to_string(ncodes) + " operator codes)",
                    g_.source_file, cur_, "opcode_index");
      const fb::OperatorCode* oc = codes->Get(op->opcode_index());
      const int code = std::max(static_cast<int>(oc->builtin_code()), static_cast<int>(oc->deprecated_builtin_code()));
      std::string type;
      if (code == fb::BuiltinOperator_CUSTOM) type = "CUSTOM:" + (oc->custom_code() ? oc->custom_code()->str() : std::string("?"));
      else if (code >= 0 && code <= fb::BuiltinOperator_MAX) type = fb::EnumNameBuiltinOperator(static_cast<fb::BuiltinOperator>(code));
      if (type.empty()) type = "BUILTIN_" + std::to_string(code);
      cur_op_type_ = type;
      ins_.clear();
      outs_.clear();
      if (op->inputs())
        for (int32_t t : *op->inputs()) {
          if (t != -1) check_tensor_index(t, "inputs");
          ins_.push_back(t);
        }
      if (op->outputs())
        for (int32_t t : *op->outputs()) {
          check_tensor_index(t, "outputs");
          outs_.push_back(t);
        }
      std::string out_name = outs_.empty() ? std::string() : tname(outs_[0]);
      cur_ = "operator " + std::to_string(i) + " (" + type + ")" + (out_name.empty() ? "" : " -> '" + out_name + "'");
      cur_name_ = out_name.empty() ? "op" + std::to_string(i) : out_name;
      if (outs_.empty()) throw Error("operator without outputs", g_.source_file, cur_, "outputs");
      for (int t : outs_)
        if (produced_[static_cast<size_t>(t)])
          throw Error("tensor '" + tname(t) + "' is written twice (or is an input)", g_.source_file, cur_, "outputs");
      bool poisoned = false;
      for (int t : ins_)
        if (t >= 0) {
          ensure(t);
          if (tv_[static_cast<size_t>(t)].poisoned) poisoned = true;
        }
      first_value_ = static_cast<int>(g_.values.size());
      if (!poisoned) {
        try {
          translate(op, code);
        } catch (const Skip& s) {
          unsupported.push_back({cur_, type, s.reason});
          poisoned = true;
        }
      }
      for (int t : outs_) {
        produced_[static_cast<size_t>(t)] = true;
        if (poisoned) {
          tv_[static_cast<size_t>(t)] = TV{-1, {}, true};
          continue;
        }
        const TV& y = tv_[static_cast<size_t>(t)];
        Value& val = g_.values[static_cast<size_t>(y.v)];
        val.prov.framework = "tflite";
        val.prov.source_name = tname(t);
        val.prov.output_index = 0;
        val.prov.to_source = y.perm;
        if (val.shape.size() == 4) val.prov.source_layout = "NHWC";
      }
    }
  if (!unsupported.empty()) return;
  cur_ = "model";
  if (!sg_->outputs() || sg_->outputs()->size() == 0) throw Error("the main subgraph has no outputs", g_.source_file, {}, "outputs");
  for (int32_t t : *sg_->outputs()) {
    check_tensor_index(t, "outputs");
    ensure(t);
    int v = tv_[static_cast<size_t>(t)].v;
    if (opt_.dequantize_outputs && is_quant_type(dtype(v))) {
      const QP qp = qparams(t);
      if (qp.present() && qp.scale.size() == 1) {
        cur_name_ = tname(t);
        cur_op_type_ = "DEQUANTIZE";
        Attributes at;
        at.set("scale", static_cast<double>(qp.scale[0]));
        at.set("zero_point", qp.zp[0]);
        const Provenance prov = g_.values[static_cast<size_t>(v)].prov;
        int d = node("TFLiteDequantize", {v}, at);
        g_.values[static_cast<size_t>(v)].prov.source_name = tname(t) + " (quantized)";
        g_.values[static_cast<size_t>(d)].prov = prov;
        v = d;
      }
    }
    if (std::find(g_.outputs.begin(), g_.outputs.end(), v) == g_.outputs.end()) g_.outputs.push_back(v);
  }
}

std::shared_ptr<std::vector<uint8_t>> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open the file", path);
  f.seekg(0, std::ios::end);
  const std::streamoff n = f.tellg();
  if (n < 0) throw Error("cannot read the file", path);
  if (static_cast<uint64_t>(n) > kMaxFileBytes) throw Error("file larger than 2 GiB", path);
  f.seekg(0, std::ios::beg);
  auto buf = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(n));
  if (n > 0 && !f.read(reinterpret_cast<char*>(buf->data()), n)) throw Error("cannot read the file", path);
  return buf;
}

}  // namespace

Graph import_tflite_bytes(std::shared_ptr<std::vector<uint8_t>> bytes, const std::string& file,
                          const ImportOptions& options) {
  Graph g;
  g.framework = "tflite";
  g.source_file = file;
  g.name = std::filesystem::path(file).stem().string();
  Translator t(g, std::move(bytes), options);
  t.run();
  if (!t.unsupported.empty()) {
    std::string msg = std::to_string(t.unsupported.size()) + " unsupported operator(s): ";
    for (size_t k = 0; k < t.unsupported.size(); ++k) {
      const auto& u = t.unsupported[k];
      msg += (k ? "; " : "") + u.node + ": " + u.reason;
    }
    throw Error(msg, file, t.unsupported.front().node, "builtin_code");
  }
  return g;
}

Graph import_tflite(const std::vector<std::string>& files, const ImportOptions& options) {
  if (files.size() != 1) throw Error("give one .tflite file", files.empty() ? std::string() : files.front());
  return import_tflite_bytes(read_file(files[0]), files[0], options);
}

bool accepts(const std::vector<std::string>& files) {
  if (files.size() != 1) return false;
  if (lower_ext(files[0]) == ".tflite") return true;
  // any other name: sniff the flatbuffer file identifier
  std::ifstream f(files[0], std::ios::binary);
  char head[8] = {};
  if (!f.read(head, 8)) return false;
  return std::memcmp(head + 4, "TFL3", 4) == 0;
}

namespace {
const struct TfliteImporterRegistrar {
  TfliteImporterRegistrar() {
    register_importer(Importer{"tflite", [](const std::vector<std::string>& f) { return tflite_import::accepts(f); },
                               [](const std::vector<std::string>& f, const ImportOptions& o) {
                                 return tflite_import::import_tflite(f, o);
                               }});
  }
} tflite_importer_registrar;
}  // namespace

}  // namespace anvil::tflite_import
