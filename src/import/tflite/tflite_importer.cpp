// The TFLite importer: a .tflite flatbuffer -> anvil::Graph (docs/tflite.md).
//
// The file is read whole and checked by the flatbuffers Verifier (generated from our schema
// subset, tflite_schema.fbs) before anything is dereferenced; every tensor, buffer and opcode
// index and every size is then checked by hand, and problems throw anvil::Error naming the
// operator ("operator 3 (CONV_2D)") or tensor. Unsupported operators are listed all at once,
// each as "unsupported operator OP (operator i, output 'name')".
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
//
// Ops. This file is the driver (reading and verifying the file, inputs, constants, walking
// the operators, provenance, outputs); every operator is one converter in a tflite_ops_*.cpp
// file, registered under its BuiltinOperator code in the table of converters(), which is also
// the list of supported operators.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/file_io.h"
#include "import/tflite/tflite_translator.h"

namespace anvil::tflite_import {

constexpr uint64_t kMaxFileBytes = uint64_t{2} << 30;  // flatbuffers' own limit is 2 GiB

const ConverterTable& converters() {
  static const ConverterTable table = [] {
    ConverterTable t;
    add_nn_converters(t);
    add_math_converters(t);
    add_shape_converters(t);
    add_index_converters(t);
    add_misc_converters(t);
    add_quant_converters(t);
    return t;
  }();
  return table;
}

Translator::Translator(Graph& g, std::shared_ptr<std::vector<uint8_t>> bytes,
                       const ImportOptions& opt)
    : g_(g),
      bytes_(std::move(bytes)),
      opt_(opt),
      emitter_(
          g, [this](const std::string& what) { return g_.unique_name(cur_name_ + "/" + what); },
          imp::NodeEmitter::Options{}),
      views_(emitter_, /*fold_constants=*/true) {}

void Translator::check_tensor_index(int t, const std::string& field) const {
  if (t < 0 || t >= static_cast<int>(sg_->tensors()->size()))
    fail(field, "tensor index " + std::to_string(t) + " is out of range (the subgraph has " +
                    std::to_string(sg_->tensors()->size()) + " tensors)");
}

// The reason listed for an operator without a converter: for custom operators, how to supply one.
static std::string custom_hint(int code, const std::string& key) {
  if (code != fb::BuiltinOperator_CUSTOM) return "unsupported operator";
  return "custom operator '" + key + "': supply it with anvil::map_source_op(\"tflite\", \"" + key +
         "\", \"<registered op>\")";
}

// One operator through its converter; the output checked against its declared type and shape.
void Translator::translate(const fb::Operator* op, int code, const std::string& type) {
  const auto& table = converters();
  auto it = table.find(code);
  const std::string key = code == fb::BuiltinOperator_CUSTOM ? type.substr(7) : type;
  std::optional<std::string> user_op = mapped_source_op("tflite", key);
  if (it == table.end() && !user_op) unsupported_here(custom_hint(code, key));
  more_outs_.clear();
  std::vector<TV> ys = {it == table.end() ? mapped(*user_op) : it->second(*this, op)};
  ys.insert(ys.end(), more_outs_.begin(), more_outs_.end());
  if (outs_.size() != ys.size())
    fail("outputs", "expected " + std::to_string(ys.size()) + " output(s), found " +
                        std::to_string(outs_.size()));
  for (size_t k = 0; k < ys.size(); ++k) {
    TV y = ys[k];
    // a fresh value per TFLite tensor, named after it
    if (y.v < first_value_ || const_of(y.v)) y.v = node("Identity", {y.v});
    const int to = outs_[k];
    // the declared output type must be what we compute
    const DType want = dtype_of_tensor(to);
    if (dtype(y.v) != want)
      fail("outputs", std::string("the operator computes ") + dtype_name(dtype(y.v)) +
                          " but tensor '" + tname(to) + "' is declared " + dtype_name(want));
    if (!overridden_shapes_) {
      const Shape got = src_shape(y), decl = shape_of_tensor(to);
      if (got != decl && !(decl.empty() && shape_numel(got) == 1))
        fail("outputs", "the operator gives shape " + shape_str(got) + " but tensor '" + tname(to) +
                            "' is declared " + shape_str(decl));
    }
    tv_[static_cast<size_t>(to)] = y;
  }
}

// An operator the user mapped to a registered op (anvil::map_source_op("tflite", TYPE, op)):
// its inputs in TFLite's layout, no attributes (custom options are not decoded).
TV Translator::mapped(const std::string& op_name) {
  if (!OpRegistry::global().find(op_name))
    fail("op", "mapped op '" + op_name + "' is not registered");
  std::vector<int> ins;
  for (size_t k = 0; k < ins_.size(); ++k)
    ins.push_back(has_in(static_cast<int>(k)) ? as_source(in(static_cast<int>(k))) : -1);
  return TV{node(op_name, ins), {}};
}

// ---------------------------------------------------------------------------------------
// the model

void Translator::run() {
  const std::vector<uint8_t>& b = *bytes_;
  if (b.size() < 8)
    throw Error("file too small to be a TFLite model (" + std::to_string(b.size()) + " bytes)",
                g_.source_file);
  if (!fb::ModelBufferHasIdentifier(b.data()))
    throw Error("not a TFLite model (no 'TFL3' file identifier at offset 4)", g_.source_file, {},
                "file_identifier");
  flatbuffers::Verifier verifier(b.data(), b.size(), /*max_depth=*/64, /*max_tables=*/10'000'000);
  if (!fb::VerifyModelBuffer(verifier))
    throw Error(
        "corrupt TFLite flatbuffer: the flatbuffers verifier rejects it (bad offsets, truncated "
        "data or "
        "out-of-range fields)",
        g_.source_file, {}, "flatbuffer");
  model_ = fb::GetModel(b.data());
  if (model_->version() != 3)
    throw Error("TFLite schema version " + std::to_string(model_->version()) +
                    " is not supported (expected 3)",
                g_.source_file, {}, "version");
  if (!model_->subgraphs() || model_->subgraphs()->size() == 0)
    throw Error("the model has no subgraph", g_.source_file, {}, "subgraphs");
  sg_ = model_->subgraphs()->Get(0);
  if (!sg_->tensors())
    throw Error("the main subgraph has no tensors", g_.source_file, {}, "tensors");
  if (sg_->name()) g_.name = sg_->name()->str();
  const int nt = static_cast<int>(sg_->tensors()->size());
  tv_.assign(static_cast<size_t>(nt), TV{});
  produced_.assign(static_cast<size_t>(nt), false);
  overridden_shapes_ = !opt_.input_shapes.empty();
  cur_ = "model";

  add_inputs();
  auto* ops = sg_->operators();
  if (ops)
    for (flatbuffers::uoffset_t i = 0; i < ops->size(); ++i) operator_at(i);
  if (!unsupported.empty()) return;
  cur_ = "model";
  add_outputs();
}

void Translator::add_inputs() {
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
          throw Error(
              "input shape " + shape_str(ov->second) + " has the wrong rank for " + shape_str(s),
              g_.source_file, nm, "input_shapes");
        s = ov->second;
      }
      int v = g_.add_input(g_.unique_name(nm), dtype_of_tensor(t), s);
      Value& val = g_.values[static_cast<size_t>(v)];
      val.prov.framework = "tflite";
      val.prov.source_name = nm;
      if (s.size() == 4) val.prov.source_layout = "NHWC";
      tv_[static_cast<size_t>(t)] = TV{v, {}};
      produced_[static_cast<size_t>(t)] = true;
      record_quantization(t);
    }
}

// For summary(): "tflite.quantization.<tensor>" = its scale and zero point.
void Translator::record_quantization(int t) {
  const QP p = qparams(t);
  if (!p.present()) return;
  std::string s;
  if (p.scale.size() == 1) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "scale %.6g, zero point %lld", static_cast<double>(p.scale[0]),
                  static_cast<long long>(p.zp[0]));
    s = buf;
  } else {
    s = "per-channel: " + std::to_string(p.scale.size()) + " scales on axis " +
        std::to_string(p.dim);
  }
  g_.metadata["tflite.quantization." + tname(t)] = s;
}

// A tensor read before any operator wrote it: its constant data (only tensors that operators
// read become constants).
void Translator::ensure(int t) {
  if (produced_[static_cast<size_t>(t)]) return;
  Tensor c = constant_data(t);
  if (!c.defined())
    throw Error("tensor " + std::to_string(t) + " '" + tname(t) +
                    "' is read before any operator produces it and has no data",
                g_.source_file, cur_, "inputs");
  int v = g_.add_constant(g_.unique_name(tname(t)), c);
  Value& val = g_.values[static_cast<size_t>(v)];
  val.prov.framework = "tflite";
  val.prov.source_name = tname(t);
  tv_[static_cast<size_t>(t)] = TV{v, {}};
  produced_[static_cast<size_t>(t)] = true;
}

void Translator::operator_at(flatbuffers::uoffset_t i) {
  auto* codes = model_->operator_codes();
  const int ncodes = codes ? static_cast<int>(codes->size()) : 0;
  const fb::Operator* op = sg_->operators()->Get(i);
  cur_ = "operator " + std::to_string(i);
  if (op->opcode_index() >= static_cast<uint32_t>(ncodes))
    throw Error("opcode index " + std::to_string(op->opcode_index()) +
                    " is out of range (the model has " + std::to_string(ncodes) +
                    " operator codes)",
                g_.source_file, cur_, "opcode_index");
  const fb::OperatorCode* oc = codes->Get(op->opcode_index());
  const int code = std::max(static_cast<int>(oc->builtin_code()),
                            static_cast<int>(oc->deprecated_builtin_code()));
  std::string type;
  if (code == fb::BuiltinOperator_CUSTOM)
    type = "CUSTOM:" + (oc->custom_code() ? oc->custom_code()->str() : std::string("?"));
  else if (code >= 0 && code <= fb::BuiltinOperator_MAX)
    type = fb::EnumNameBuiltinOperator(static_cast<fb::BuiltinOperator>(code));
  if (type.empty()) type = "BUILTIN_" + std::to_string(code);
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
  cur_ = "operator " + std::to_string(i) + " (" + type + ")" +
         (out_name.empty() ? "" : " -> '" + out_name + "'");
  cur_name_ = out_name.empty() ? "op" + std::to_string(i) : out_name;
  emitter_.begin(type, cur_);
  if (outs_.empty()) throw Error("operator without outputs", g_.source_file, cur_, "outputs");
  for (int t : outs_)
    if (produced_[static_cast<size_t>(t)])
      throw Error("tensor '" + tname(t) + "' is written twice (or is an input)", g_.source_file,
                  cur_, "outputs");
  const std::string where =
      "operator " + std::to_string(i) + (out_name.empty() ? "" : ", output '" + out_name + "'");
  // an operator without a converter is listed whatever feeds it (its inputs are not read:
  // they may be variable state tensors without data), so the message names everything the
  // model needs
  const std::string key = code == fb::BuiltinOperator_CUSTOM ? type.substr(7) : type;
  bool poisoned = false;
  if (!converters().count(code) && !mapped_source_op("tflite", key)) {
    unsupported.add(type, where, "", custom_hint(code, key), true);
    poisoned = true;
  }
  if (!poisoned)
    for (int t : ins_)
      if (t >= 0) {
        ensure(t);
        if (tv_[static_cast<size_t>(t)].poisoned) poisoned = true;
      }
  first_value_ = static_cast<int>(g_.values.size());
  if (!poisoned) {
    try {
      translate(op, code, type);
    } catch (const Skip& s) {
      unsupported.add(type, where, "", s.reason, true);
      poisoned = true;
    }
  }
  for (int t : outs_) {
    produced_[static_cast<size_t>(t)] = true;
    if (poisoned) {
      tv_[static_cast<size_t>(t)] = TV{-1, {}, true};
      continue;
    }
    record_quantization(t);
    const TV& y = tv_[static_cast<size_t>(t)];
    Value& val = g_.values[static_cast<size_t>(y.v)];
    val.prov.framework = "tflite";
    val.prov.source_name = tname(t);
    val.prov.output_index = 0;
    val.prov.to_source = y.perm;
    if (val.shape.size() == 4) val.prov.source_layout = "NHWC";
  }
}

void Translator::add_outputs() {
  if (!sg_->outputs() || sg_->outputs()->size() == 0)
    throw Error("the main subgraph has no outputs", g_.source_file, {}, "outputs");
  for (int32_t t : *sg_->outputs()) {
    check_tensor_index(t, "outputs");
    ensure(t);
    int v = tv_[static_cast<size_t>(t)].v;
    if (opt_.dequantize_outputs && is_quant_type(dtype(v))) {
      const QP qp = qparams(t);
      if (qp.present() && qp.scale.size() == 1) {
        cur_name_ = tname(t);
        emitter_.begin("DEQUANTIZE", cur_);
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
    if (std::find(g_.outputs.begin(), g_.outputs.end(), v) == g_.outputs.end())
      g_.outputs.push_back(v);
  }
}

namespace {

std::shared_ptr<std::vector<uint8_t>> read_model(const std::string& path) {
  const std::string bytes = read_file(path, "a TFLite model", kMaxFileBytes);
  return std::make_shared<std::vector<uint8_t>>(bytes.begin(), bytes.end());
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
  t.unsupported.throw_if_any(file, {imp::ProblemList::Style::Located, "the model", "operator"});
  return g;
}

Graph import_tflite(const std::vector<std::string>& files, const ImportOptions& options) {
  if (files.size() != 1)
    throw Error("give one .tflite file", files.empty() ? std::string() : files.front());
  return import_tflite_bytes(read_model(files[0]), files[0], options);
}

bool accepts(const std::vector<std::string>& files) {
  if (files.size() != 1) return false;
  if (ends_with_ci(files[0], ".tflite")) return true;
  // any other name: sniff the flatbuffer file identifier
  std::ifstream f(files[0], std::ios::binary);
  char head[8] = {};
  if (!f.read(head, 8)) return false;
  return std::memcmp(head + 4, "TFL3", 4) == 0;
}

namespace {
const struct TfliteImporterRegistrar {
  TfliteImporterRegistrar() {
    register_importer(Importer{
        "tflite", [](const std::vector<std::string>& f) { return tflite_import::accepts(f); },
        [](const std::vector<std::string>& f, const ImportOptions& o) {
          return tflite_import::import_tflite(f, o);
        }});
  }
} tflite_importer_registrar;
}  // namespace

}  // namespace anvil::tflite_import
