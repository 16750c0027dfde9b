// The TFLite importer's per-operator context, shared by the driver (tflite_importer.cpp) and
// the converter files (tflite_ops_*.cpp).
//
// A converter is one function `TV(Translator&, const fb::Operator*)` registered under its
// BuiltinOperator code in the table that converters() returns; that table is also the list of
// supported operators. It reads the current operator's inputs (cx.in(k), constants through
// cx.const_in / const_ints, quantization through cx.qparams), emits canonical nodes with
// cx.node (named "<output>/<Op>", shapes inferred at once) and returns the held result of the
// operator's output 0 (outputs 1.. of a several-output operator go to cx.more_outputs).
// cx.unsupported_here(reason) lists the operator as unsupported and goes on; cx.fail(field,
// message) is a hard error naming the operator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "core/strings.h"
#include "import/common/layout_tensor.h"
#include "import/common/node_emitter.h"
#include "import/common/problems.h"
#include "import/tflite/tflite_schema_generated.h"
#include "ops/tflite_quant.h"

namespace anvil::tflite_import {

namespace fb = anvil_tflite;
namespace q = tflite_quant;

constexpr int64_t kMaxTensorElements = imp::kMaxElements;

/// A TFLite tensor as imported: the graph value and the permutation to TFLite's layout
/// (`poisoned`: produced by an unsupported operator).
using TV = imp::LayoutTensor;
const std::vector<int> kNHWC = {0, 2, 3, 1};  // canonical NCHW -> TFLite NHWC
const std::vector<int> kToNCHW = {0, 3, 1, 2};

std::optional<DType> tensor_dtype(fb::TensorType t);
inline bool is_quant_type(DType t) { return t == DType::i8 || t == DType::u8 || t == DType::i16; }
inline int64_t qmin_of(DType t) { return t == DType::i8 ? -128 : t == DType::u8 ? 0 : -32768; }
inline int64_t qmax_of(DType t) { return t == DType::i8 ? 127 : t == DType::u8 ? 255 : 32767; }
inline std::string qdtype_name(DType t) {
  return t == DType::i8 ? "i8" : t == DType::u8 ? "u8" : t == DType::i32 ? "i32" : "i16";
}

/// Quantization parameters of one tensor.
struct QP {
  std::vector<float> scale;
  std::vector<int64_t> zp;
  int dim = 0;
  bool present() const { return !scale.empty(); }
};

class Translator {
 public:
  Translator(Graph& g, std::shared_ptr<std::vector<uint8_t>> bytes, const ImportOptions& opt);

  void run();
  imp::ProblemList unsupported;

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
  const fb::Tensor* tensor(int t) const {
    return sg_->tensors()->Get(static_cast<flatbuffers::uoffset_t>(t));
  }
  std::string tname(int t) const;
  DType dtype_of_tensor(int t) const;
  Shape shape_of_tensor(int t) const;
  QP qparams(int t) const;
  /// The constant data of tensor t, or an undefined Tensor when it has no buffer data.
  Tensor constant_data(int t) const;

  // ---- graph emission ----
  int node(const std::string& op, const std::vector<int>& ins, Attributes attrs = {},
           int outputs = 1) {
    return emitter_.emit(op, ins, std::move(attrs), outputs)[0];
  }
  /// A node with several outputs; returns their values.
  std::vector<int> nodes(const std::string& op, const std::vector<int>& ins, Attributes attrs,
                         int outputs) {
    return emitter_.emit(op, ins, std::move(attrs), outputs);
  }
  /// For an operator with several outputs: the converter returns output 0 and hands outputs
  /// 1.. here, in order (SPLIT, SPLIT_V, UNPACK).
  void more_outputs(std::vector<TV> ys) { more_outs_ = std::move(ys); }
  int cst(const std::string& what, Tensor t) { return emitter_.constant(what, std::move(t)); }
  int i64s(const std::string& what, const std::vector<int64_t>& v) {
    return cst(what, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
  }
  const Shape& shape(int v) const { return g_.values[static_cast<size_t>(v)].shape; }
  DType dtype(int v) const { return g_.values[static_cast<size_t>(v)].dtype; }
  int rank(int v) const { return static_cast<int>(shape(v).size()); }
  Shape src_shape(const TV& t) const { return views_.source_shape(t); }
  /// A value equal to transpose(source(t), q).
  int view(const TV& t, const std::vector<int>& qp) { return views_.view(t, qp); }
  int as_source(const TV& t) { return views_.source(t); }
  int as_nchw(const TV& t) {
    if (rank(t.v) != 4)
      fail("inputs", "expected a 4-D (N, H, W, C) tensor, found " + shape_str(src_shape(t)));
    return view(t, kToNCHW);
  }
  /// A value in the layout whose to_source permutation is p.
  int in_layout(const TV& t, const std::vector<int>& p) { return views_.in_layout(t, p); }
  const Tensor* const_of(int v) const {
    const Value& val = g_.values[static_cast<size_t>(v)];
    return val.is_constant() ? &val.constant : nullptr;
  }

  // ---- the current operator ----
  TV in(int k) const;  // input k (must be present)
  bool has_in(int k) const {
    return k < static_cast<int>(ins_.size()) && ins_[static_cast<size_t>(k)] >= 0;
  }
  const Tensor& const_in(int k, const std::string& what) const;
  std::vector<int64_t> const_ints(int k, const std::string& what) const;
  std::vector<int> ins_, outs_;  // tensor indices of the operator's inputs (-1: absent), outputs

  // ---- helpers shared by operators ----
  TV act(TV x, fb::ActivationFunctionType a);
  std::pair<int64_t, int64_t> act_range(fb::ActivationFunctionType a, int out_tensor) const;
  std::vector<int64_t> same_pads(int64_t in_h, int64_t in_w, int64_t kh, int64_t kw, int64_t sh,
                                 int64_t sw, int64_t dh, int64_t dw, fb::Padding pad) const;
  int32_t multiplier_or_fail(double real, int32_t* m, const std::string& field) const;
  void require_quant_params(int t, const QP& p, const std::string& field) const;
  TV reshape_to(const TV& x, const Shape& target);
  /// The layout two operands share (a constant follows the other operand's layout).
  std::vector<int> common_layout(const TV& x, const TV& y) const;

 private:
  void check_tensor_index(int t, const std::string& field) const;
  void add_inputs();
  void ensure(int t);
  void operator_at(flatbuffers::uoffset_t i);
  void translate(const fb::Operator* op, int code, const std::string& type);
  TV mapped(const std::string& op_name);
  void add_outputs();
  void record_quantization(int t);

  Graph& g_;
  std::shared_ptr<std::vector<uint8_t>> bytes_;
  const ImportOptions& opt_;
  imp::NodeEmitter emitter_;
  imp::LayoutViews views_;
  const fb::Model* model_ = nullptr;
  const fb::SubGraph* sg_ = nullptr;
  std::vector<TV> tv_;          // per tensor index
  std::vector<bool> produced_;  // per tensor index
  std::vector<TV> more_outs_;   // outputs 1.. of the current operator (more_outputs)
  std::string cur_;             // "operator 3 (CONV_2D) -> 'y'" for messages
  std::string cur_name_;        // base for new node/value names
  int first_value_ = 0;         // values created by the current operator start here
  bool overridden_shapes_ = false;
};

/// The converters: {BuiltinOperator -> function}. Each tflite_ops_*.cpp adds its family; the
/// table is also the answer to "is this operator supported".
using Converter = std::function<TV(Translator&, const fb::Operator*)>;
using ConverterTable = std::map<int, Converter>;
void add_nn_converters(ConverterTable& t);     // tflite_ops_nn.cpp
void add_math_converters(ConverterTable& t);   // tflite_ops_math.cpp
void add_shape_converters(ConverterTable& t);  // tflite_ops_shape.cpp
void add_index_converters(ConverterTable& t);  // tflite_ops_index.cpp
void add_misc_converters(ConverterTable& t);   // tflite_ops_misc.cpp
void add_quant_converters(ConverterTable& t);  // tflite_ops_quant.cpp (wraps the above: runs last)
const ConverterTable& converters();

}  // namespace anvil::tflite_import
