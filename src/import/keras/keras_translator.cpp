// The Keras translator's services to converters: emission, layouts, config fields, weights;
// and the converter table (see keras_translator.h).
#include "import/keras/keras_translator.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "anvil/error.h"
#include "core/onnx_dtype.h"

namespace anvil::keras {

// ------------------------------------------------------------------------------------------
// The converter table

namespace {
std::map<std::string, LayerConverter>& table() {
  static std::map<std::string, LayerConverter> t;
  return t;
}
}  // namespace

LayerConverter find_converter(const std::string& cls) {
  auto it = table().find(cls);
  return it == table().end() ? nullptr : it->second;
}

ConverterRegistrar::ConverterRegistrar(
    std::initializer_list<std::pair<const char*, LayerConverter>> rows) {
  for (const auto& [cls, fn] : rows) table()[cls] = fn;
}

std::vector<std::string> supported_layer_classes() {
  std::vector<std::string> r;
  for (const auto& [cls, fn] : table()) r.push_back(cls);
  return r;
}

// ------------------------------------------------------------------------------------------
// Translator services

Translator::Translator(Graph& g, WeightStore& w, const ImportOptions& opt, bool theano,
                       std::string keras_version)
    : g_(g),
      w_(w),
      opt_(opt),
      theano_(theano),
      keras_version_(std::move(keras_version)),
      emitter_(
          g,
          [this](const std::string& what) {
            return g_.unique_name(next_final_ ? cur_.name : cur_.name + "/" + what);
          },
          imp::NodeEmitter::Options{}),
      views_(emitter_, false) {
  keras3_ = !keras_version_.empty() && keras_version_[0] == '3';
  tf_keras_ = keras3_ || keras_version_.find("-tf") != std::string::npos || version_at_least(2, 4);
}

bool Translator::version_at_least(int major, int minor) const {
  int a = 0, b = 0;
  if (std::sscanf(keras_version_.c_str(), "%d.%d", &a, &b) < 2) return false;
  return a > major || (a == major && b >= minor);
}

void Translator::fail(const std::string& field, const std::string& msg) const {
  throw Error(msg, g_.source_file, cur_.name, field);
}

const KT& Translator::one(const std::vector<KT>& ins) const {
  if (ins.size() != 1)
    fail("inputs", layer().cls + " takes one input, found " + std::to_string(ins.size()));
  return ins[0];
}

std::vector<KT> Translator::unsupported_layer(const std::vector<KT>& ins,
                                              const std::string& reason) {
  unsupported.push_back({cur_.name, layer().cls, reason});
  // keep going so that every unsupported layer is listed; what depends on it is skipped
  if (ins.empty()) fail("inputs", "unsupported layer without inputs");
  KT p = ins[0];
  p.poisoned = true;
  return std::vector<KT>{p};
}

void Translator::check_size(int v) {
  try {
    imp::checked_numel(g_.values[static_cast<size_t>(v)].shape, "shape", kMaxTensorElements);
  } catch (const Error& e) {
    fail(e.field(), e.message());
  }
}

// The emitter names the layer call being translated (errors, Node::source_op).
void Translator::sync_emitter() {
  emitter_.begin(cur_.layer ? cur_.layer->cls : std::string("Input"), cur_.name);
}

int Translator::node(const std::string& op, const std::vector<int>& ins, Attributes attrs,
                     bool final_node, int num_outputs) {
  sync_emitter();
  next_final_ = final_node && inner_ == 0;  // the node takes the layer's own name
  std::vector<int> outs;
  try {
    outs = emitter_.emit(op, ins, std::move(attrs), num_outputs);
  } catch (...) {
    next_final_ = false;
    throw;
  }
  next_final_ = false;
  return outs[0];
}

std::vector<int> Translator::node_outs(const std::string& op, const std::vector<int>& ins,
                                       Attributes attrs, int num_outputs, bool final_node) {
  sync_emitter();
  next_final_ = final_node && inner_ == 0;
  std::vector<int> outs;
  try {
    outs = emitter_.emit(op, ins, std::move(attrs), num_outputs);
  } catch (...) {
    next_final_ = false;
    throw;
  }
  next_final_ = false;
  return outs;
}

int Translator::cst(const std::string& what, Tensor t) {
  return emitter_.constant(what, std::move(t));
}
int Translator::cast(int v, DType to) {
  if (dtype(v) == to) return v;
  Attributes a;
  a.set("to", onnx_dtype_code(to));
  return node("Cast", {v}, a);
}
int Translator::i64s(const std::string& what, const std::vector<int64_t>& v) {
  return cst(what, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
}
int Translator::scalar(const std::string& what, float x) {
  return cst(what, Tensor::from_vector<float>({}, {x}));
}

Shape Translator::src_shape(const KT& t) const { return imp::apply_perm(shape(t.v), t.perm); }

int Translator::view(const KT& t, const std::vector<int>& q) {
  sync_emitter();
  return views_.view(t, q);
}

int Translator::as_cf(const KT& t, bool channels_last) {
  int r = rank(t.v);
  if (!channels_last) return as_source(t);
  return view(t, imp::inverse_perm(imp::channels_last_perm(r)));
}

KT Translator::cf_out(int v, bool channels_last) {
  return imp::LayoutViews::channels_first_result(v, rank(v), channels_last);
}

int Translator::canon_axis(const KT& t, int64_t axis) {
  int r = rank(t.v);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r)
    fail("axis", "axis out of range for a rank-" + std::to_string(r) + " tensor");
  return t.perm.empty() ? static_cast<int>(axis) : t.perm[static_cast<size_t>(axis)];
}

Tensor Translator::const_to_canon(const KT& t, const Tensor& src) {
  if (t.perm.empty()) return src;
  return transpose(src, imp::inverse_perm(t.perm));
}

// ---- config accessors ----

std::string Translator::s(const char* k, const std::string& d) const {
  if (!has(k)) return d;
  if (!C()[k].is_string()) fail(k, "expected a string, found " + C()[k].dump());
  return C()[k].get<std::string>();
}
double Translator::f(const char* k, double d) const {
  if (!has(k)) return d;
  if (!C()[k].is_number()) fail(k, "expected a number, found " + C()[k].dump());
  return C()[k].get<double>();
}
bool Translator::b(const char* k, bool d) const {
  if (!has(k)) return d;
  if (!C()[k].is_boolean()) fail(k, "expected true/false, found " + C()[k].dump());
  return C()[k].get<bool>();
}
int64_t Translator::i(const char* k, int64_t d) const {
  if (!has(k)) return d;
  if (!C()[k].is_number_integer()) fail(k, "expected an integer, found " + C()[k].dump());
  return C()[k].get<int64_t>();
}
std::vector<int64_t> Translator::tuple(const char* k, int n, int64_t d) const {
  std::vector<int64_t> r(static_cast<size_t>(n), d);
  if (!has(k)) return r;
  const json& j = C()[k];
  if (j.is_number_integer()) {
    std::fill(r.begin(), r.end(), j.get<int64_t>());
  } else if (j.is_array() && static_cast<int>(j.size()) == n) {
    for (int q = 0; q < n; ++q) {
      if (!j[static_cast<size_t>(q)].is_number_integer())
        fail(k, "expected integers, found " + j.dump());
      r[static_cast<size_t>(q)] = j[static_cast<size_t>(q)].get<int64_t>();
    }
  } else {
    fail(k, "expected an integer or " + std::to_string(n) + " integers, found " + j.dump());
  }
  for (int64_t v : r)
    if (v < 0 || v > (int64_t{1} << 24)) fail(k, "value out of range: " + j.dump());
  return r;
}
bool Translator::channels_last() const {
  std::string df = s("data_format", "channels_last");
  if (df != "channels_last" && df != "channels_first")
    fail("data_format", "unknown data_format '" + df + "'");
  return df == "channels_last";
}

// ---- weights ----

void Translator::load_weights() {
  if (!weights_loaded_) weights_ = w_.layer(cur_.wpath);
  weights_loaded_ = true;
}
Tensor Translator::weight(const std::string& name, int pos, const Shape& want) {
  load_weights();
  const NamedWeight* found = nullptr;
  bool named = !weights_.empty() && !weights_[0].name.empty();
  if (named) {
    for (const auto& w : weights_)
      if (w.name == name) found = &w;
    if (!found && pos >= 0 && pos < static_cast<int>(weights_.size())) {
      // old-style names (e.g. "conv2d_1_W"): fall back on the position
      bool any_known = false;
      for (const auto& w : weights_)
        any_known |=
            (w.name == "kernel" || w.name == "bias" || w.name == "gamma" || w.name == "beta" ||
             w.name == "moving_mean" || w.name == "moving_variance" || w.name == "alpha" ||
             w.name == "depthwise_kernel" || w.name == "pointwise_kernel");
      if (!any_known) found = &weights_[static_cast<size_t>(pos)];
    }
  } else if (pos >= 0 && pos < static_cast<int>(weights_.size())) {
    found = &weights_[static_cast<size_t>(pos)];
  }
  if (!found)
    throw Error("weight '" + name + "' is missing from the weights file (layer has " +
                    std::to_string(weights_.size()) + " weights)",
                w_.file(), cur_.name, name);
  if (!want.empty() && found->value.shape() != want)
    throw Error("weight '" + name + "' has shape " + shape_str(found->value.shape()) +
                    ", the config implies " + shape_str(want),
                w_.file(), cur_.name, name);
  return found->value;
}
int Translator::state_input(const std::string& name, const Shape& shape) {
  int v = g_.add_input(g_.unique_name(name), DType::f32, shape);
  Value& val = g_.values[static_cast<size_t>(v)];
  val.prov.framework = "keras";
  val.prov.source_name = name;
  return v;
}

void Translator::state_output(int v, const std::string& name) {
  int o = node("Identity", {v}, {});
  Value& val = g_.values[static_cast<size_t>(o)];
  val.prov.framework = "keras";
  val.prov.source_name = name;
  extra_outputs.push_back(o);
}

const std::vector<NamedWeight>& Translator::layer_weights() {
  load_weights();
  return weights_;
}

std::vector<KT> Translator::call_inner(const LayerDef& inner, const std::vector<KT>& ins,
                                       std::vector<NamedWeight> w, LayerConverter convert) {
  const LayerDef* saved_layer = cur_.layer;
  auto saved_w = std::move(weights_);
  bool saved_loaded = weights_loaded_;
  cur_.layer = &inner;
  weights_ = std::move(w);
  weights_loaded_ = true;
  ++inner_;  // the wrapper's own nodes take the layer's name, not the wrapped layer's
  std::vector<KT> outs;
  try {
    outs = convert ? convert(*this, ins) : call_layer(inner, ins);
  } catch (...) {
    --inner_;
    cur_.layer = saved_layer;
    weights_ = std::move(saved_w);
    weights_loaded_ = saved_loaded;
    throw;
  }
  --inner_;
  cur_.layer = saved_layer;
  weights_ = std::move(saved_w);
  weights_loaded_ = saved_loaded;
  return outs;
}

void Translator::expect_weight_count(size_t n) {
  load_weights();
  if (weights_.size() != n)
    throw Error("expected " + std::to_string(n) + " weights, the file has " +
                    std::to_string(weights_.size()),
                w_.file(), cur_.name, "weights");
}

}  // namespace anvil::keras
