// The Keras translator: walks a parsed model (nested models included) and emits canonical
// nodes, one layer call at a time, through the converter table. Converters (layers_*.cpp) are
// free functions `std::vector<KT> f(Translator&, const std::vector<KT>& inputs)` registered by
// Keras class name; the table is also the list of supported layer classes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "anvil/graph.h"
#include "anvil/import.h"
#include "import/common/layout_tensor.h"
#include "import/common/node_emitter.h"
#include "import/common/perm.h"
#include "import/keras/keras_model.h"
#include "import/keras/keras_weights.h"

namespace anvil::keras {

// Largest tensor the importer lets a config describe (elements), before anything is allocated.
constexpr int64_t kMaxTensorElements = imp::kMaxElements;

/// A Keras tensor: the common layout-tracking tensor (canonical value `v`; Keras's view of it
/// is transpose(v, perm), perm empty: identical; `poisoned`: derived from an unsupported layer).
using KT = imp::LayoutTensor;

struct Unsupported {
  std::string layer, cls, reason;
};

class Translator;

/// Converts one call of a layer: its inputs to its outputs.
using LayerConverter = std::vector<KT> (*)(Translator& t, const std::vector<KT>& ins);

/// The converter of Keras class `cls`, or nullptr when the class is not supported.
LayerConverter find_converter(const std::string& cls);

/// Adds rows to the converter table (one static object per converter file).
struct ConverterRegistrar {
  ConverterRegistrar(std::initializer_list<std::pair<const char*, LayerConverter>> rows);
};

/// The Keras class names the importer supports (the converter table's keys).
std::vector<std::string> supported_layer_classes();

class Translator {
 public:
  Translator(Graph& g, WeightStore& w, const ImportOptions& opt, bool theano,
             std::string keras_version);

  std::vector<Unsupported> unsupported;

  /// What Keras's model.summary() says of each layer (keyed by prefix + layer name): filled
  /// per layer call, turned into Graph::source_layers by the top-level run_model.
  struct LayerRecord {
    std::string type;
    std::vector<Shape> shapes;  // Keras layout, -1 = None
    bool multiple = false;      // calls with different output shapes: Keras says "multiple"
    int64_t trainable = 0, non_trainable = 0;
  };
  std::map<std::string, LayerRecord> records;

  /// Translates model `m`; `bound` gives values for its inputs (nested models), else graph
  /// inputs are created. `prefix` prefixes layer names of nested models.
  std::vector<KT> run_model(const ModelDef& m, const std::vector<KT>* bound,
                            const std::string& prefix, const std::vector<std::string>& wpath);

  /// Graph::source_layers for top-level model `m` (Keras's model.layers order; a Sequential
  /// model does not list its InputLayer, as Keras does not).
  void fill_source_layers(const ModelDef& m, const std::vector<KT>& outs);

  // ---- for converters: the layer being translated ----
  const LayerDef& layer() const { return *cur_.layer; }
  const std::string& layer_name() const { return cur_.name; }
  bool theano() const { return theano_; }
  bool keras3() const { return keras3_; }
  bool tf_keras() const { return tf_keras_; }
  [[noreturn]] void fail(const std::string& field, const std::string& msg) const;
  /// The only input of a one-input layer (an error naming the class otherwise).
  const KT& one(const std::vector<KT>& ins) const;
  /// Lists the current layer as unsupported and returns its input, poisoned.
  std::vector<KT> unsupported_layer(const std::vector<KT>& ins, const std::string& reason);

  // ---- emission ----
  int node(const std::string& op, const std::vector<int>& ins, Attributes attrs = {},
           bool final_node = false, int num_outputs = 1);
  /// A node with several outputs: all of its output values.
  std::vector<int> node_outs(const std::string& op, const std::vector<int>& ins, Attributes attrs,
                             int num_outputs, bool final_node = false);
  int cst(const std::string& what, Tensor t);
  int i64s(const std::string& what, const std::vector<int64_t>& v);
  int scalar(const std::string& what, float x);

  // ---- layouts ----
  const Shape& shape(int v) const { return g_.values[static_cast<size_t>(v)].shape; }
  DType dtype(int v) const { return g_.values[static_cast<size_t>(v)].dtype; }
  /// A Cast of `v` to `to` (v itself when it has that dtype).
  int cast(int v, DType to);
  int rank(int v) const { return static_cast<int>(shape(v).size()); }
  Shape src_shape(const KT& t) const;
  /// A value equal to transpose(source(t), q).
  int view(const KT& t, const std::vector<int>& q);
  int as_source(const KT& t) { return view(t, imp::identity_perm(rank(t.v))); }
  /// The value in channels-first order (N, C, spatial...) for a layer with this data_format.
  int as_cf(const KT& t, bool channels_last);
  KT cf_out(int v, bool channels_last);
  /// Canonical axis of a Keras axis (negative counts from the back).
  int canon_axis(const KT& t, int64_t axis);
  /// A constant given in Keras layout (same rank as t) moved to t's canonical layout.
  Tensor const_to_canon(const KT& t, const Tensor& src);

  // ---- config accessors ----
  const json& C() const { return cur_.layer->config; }
  bool has(const char* k) const { return C().contains(k) && !C()[k].is_null(); }
  std::string s(const char* k, const std::string& d = {}) const;
  double f(const char* k, double d) const;
  bool b(const char* k, bool d) const;
  int64_t i(const char* k, int64_t d) const;
  /// An int or a list of n ints (Keras' normalize_tuple).
  std::vector<int64_t> tuple(const char* k, int n, int64_t d) const;
  bool channels_last() const;

  // ---- weights ----
  /// Weight `name` of the current layer (by short name when the file has names, else by
  /// position `pos` among the slots the layer has), checked against `want` (if not empty).
  Tensor weight(const std::string& name, int pos, const Shape& want);
  void expect_weight_count(size_t n);
  /// All weights of the current layer as stored (wrappers split them among inner layers).
  const std::vector<NamedWeight>& layer_weights();

  // ---- wrapped layers (TimeDistributed, Bidirectional) ----
  /// Translates the wrapped layer `inner` on `ins` inside the current call: its config is
  /// `inner.config`, its weights `w` (taken from the wrapper's); `convert` (when given)
  /// instead of the table's converter of inner.cls.
  std::vector<KT> call_inner(const LayerDef& inner, const std::vector<KT>& ins,
                             std::vector<NamedWeight> w, LayerConverter convert = nullptr);

  // ---- explicit recurrent state (stateful layers) ----
  /// A new graph input `name` (f32, `shape`) for a state a stateful layer carries.
  int state_input(const std::string& name, const Shape& shape);
  /// Makes `v` an extra graph output named `name` (after the model's outputs).
  void state_output(int v, const std::string& name);
  std::vector<int> extra_outputs;

  // ---- Keras masks (Masking, Embedding(mask_zero) -> recurrent layers; keras_masks.cpp) ----
  /// The mask carried by `x`: a (N, T) f32 value, 1 at real steps, 0 at masked ones; -1: none.
  int mask_of(const KT& x) const;
  /// Gives output k of the current layer call the mask `m` (a value as mask_of returns).
  void set_out_mask(size_t k, int m);

 private:
  bool version_at_least(int major, int minor) const;
  void check_size(int v);
  void sync_emitter();
  void load_weights();

  struct CallCtx {
    const LayerDef* layer = nullptr;
    std::string name;  // display name (prefix + layer name [+ @k])
    std::vector<std::string> wpath;
    int first_value = 0;
  };
  CallCtx cur_;
  std::map<int, int> masks_;         // value -> its Keras mask value
  std::map<size_t, int> out_masks_;  // the current call's output masks (set_out_mask)
  void propagate_masks(const LayerDef& l, const std::vector<KT>& ins, const std::vector<KT>& outs);
  std::vector<NamedWeight> weights_;
  bool weights_loaded_ = false;

  // ---- model walking (keras_walk.cpp) ----
  void bind_inputs(const ModelDef& m, const std::vector<KT>* bound, const std::string& prefix,
                   std::map<std::pair<std::string, int>, std::vector<KT>>& produced,
                   const std::map<std::string, const LayerDef*>& by_name);
  std::vector<KT> translate_call(const LayerDef& l, int call, const std::vector<KT>& ins,
                                 const std::string& prefix, const std::vector<std::string>& wpath);
  std::vector<KT> call_layer(const LayerDef& l, const std::vector<KT>& ins);
  std::vector<KT> call_mapped_op(const std::string& op, const std::vector<KT>& ins);
  void tag_outputs(const LayerDef& l, std::vector<KT>& outs);

  // ---- source-layer records (for summaries, keras_records.cpp) ----
  std::set<std::string> counted_paths_;  // weight paths already counted (shared layers)
  int64_t acc_trainable_ = 0, acc_non_trainable_ = 0;  // running totals over leaf layers
  int frozen_ = 0;          // > 0 inside a nested model with trainable: false
  bool batch_free_ = true;  // the batch dimension is None in the model's inputs
  void count_layer_weights(LayerRecord& r);
  void record_shapes(LayerRecord& r, const std::vector<KT>& outs, bool first);
  std::string keras_shape_text(const Shape& s) const;

  Graph& g_;
  WeightStore& w_;
  const ImportOptions& opt_;
  bool theano_;
  std::string keras_version_;
  bool keras3_ = false, tf_keras_ = false;
  bool next_final_ = false;  // the node being emitted is named after the layer call
  int inner_ = 0;            // > 0 while a wrapped layer is translated (call_inner)
  imp::NodeEmitter emitter_;
  imp::LayoutViews views_;
};

// Activation helpers shared by the layers with an `activation` field (layers_activation.cpp).
/// The Keras activation `act` applied to x (final_node: the node carries the layer's name).
int apply_activation(Translator& t, const KT& x, const std::string& act, bool final_node);
/// Keras backend relu(x, alpha, max_value, threshold).
int relu_general(Translator& t, int x, double max_value, bool has_max, double slope,
                 double threshold, bool final_node);

/// The converter of Bidirectional(layer of class `cls`) (layers_recurrent.cpp), nullptr when
/// `cls` is not a recurrent layer; it reads the wrapper's merge_mode from the inner config.
LayerConverter bidirectional_converter(const std::string& cls);

}  // namespace anvil::keras
