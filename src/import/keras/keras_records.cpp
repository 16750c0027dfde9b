// Keras model.summary() records: per-layer output shapes and parameter counts, turned into
// Graph::source_layers (see keras_translator.h).
#include "anvil/error.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

bool non_trainable_weight_name(const std::string& n) {
  return n.ends_with("moving_mean") || n.ends_with("moving_variance") ||
         n.ends_with("running_mean") || n.ends_with("running_std");
}

}  // namespace

/// Counts the weights of the current (leaf) layer call as Keras does: every weight the layer
/// holds (the file stores exactly those), moving statistics non-trainable, all of them when
/// the layer (or an enclosing model) has trainable: false. A shared layer counts once.
void Translator::count_layer_weights(LayerRecord& r) {
  std::string key;
  for (const auto& p : cur_.wpath) key += p + "/";
  if (!counted_paths_.insert(key).second) return;
  if (!weights_loaded_) {
    // the layer's translation read no weights: a weightless layer (whose empty weight_names
    // list HDF5 may store untyped) unless the file has some for it
    try {
      load_weights();
    } catch (const Error&) {
      weights_.clear();
      weights_loaded_ = true;
      return;
    }
  }
  bool frozen = frozen_ > 0 || (C().contains("trainable") && C()["trainable"].is_boolean() &&
                                !C()["trainable"].get<bool>());
  for (size_t k = 0; k < weights_.size(); ++k) {
    const NamedWeight& w = weights_[k];
    int64_t n = w.value.numel();
    bool nt =
        frozen || non_trainable_weight_name(w.name) ||
        (w.name.empty() && cur_.layer->cls == "BatchNormalization" && k + 2 >= weights_.size());
    (nt ? r.non_trainable : r.trainable) += n;
    (nt ? acc_non_trainable_ : acc_trainable_) += n;
  }
}
void Translator::record_shapes(LayerRecord& r, const std::vector<KT>& outs, bool first) {
  std::vector<Shape> shapes;
  for (const auto& o : outs) {
    Shape sh = src_shape(o);
    if (batch_free_ && !sh.empty()) sh[0] = -1;
    shapes.push_back(sh);
  }
  if (first)
    r.shapes = shapes;
  else if (shapes != r.shapes)
    r.multiple = true;
}
std::string Translator::keras_shape_text(const Shape& s) const {
  std::string t = "(";
  for (size_t k = 0; k < s.size(); ++k)
    t += (k ? ", " : "") + (s[k] < 0 ? std::string("None") : std::to_string(s[k]));
  return t + (s.size() == 1 ? ",)" : ")");
}

void Translator::fill_source_layers(const ModelDef& m, const std::vector<KT>&) {
  g_.source_layers.clear();
  // Keras prints a "Connected to" column unless the model is sequential-like: a Sequential
  // model, or a chain (one input; every layer called once on one tensor; no tensor used twice).
  bool chain = m.cls == "Sequential" || m.inputs.size() == 1;
  if (chain && m.cls != "Sequential") {
    std::map<std::string, int> uses;
    for (const auto& l : m.layers) {
      if (l.cls == "InputLayer") continue;
      if (l.calls.size() != 1 || l.calls[0].inputs.size() != 1) chain = false;
      for (const auto& c : l.calls)
        for (const auto& r : c.inputs)
          if (++uses[r.layer] > 1) chain = false;
    }
  }
  for (const auto& l : m.layers) {
    SourceLayer sl;
    sl.name = l.name;
    sl.type = l.cls;
    if (!chain)
      for (const auto& c : l.calls)
        for (const auto& r : c.inputs)
          sl.connected_to.push_back(r.layer + "[" + std::to_string(r.node) + "][" +
                                    std::to_string(r.tensor) + "]");
    if (l.cls == "InputLayer") {
      if (m.cls == "Sequential") continue;
      int v = g_.find_value(l.name);
      for (int in : g_.inputs)
        if (g_.values[static_cast<size_t>(in)].prov.source_name == l.name) v = in;
      if (v < 0) continue;
      Shape sh = g_.values[static_cast<size_t>(v)].shape;
      if (batch_free_ && !sh.empty()) sh[0] = -1;
      sl.outputs = {l.name};
      sl.output_shapes = {sh};
      // tf.keras 2.x prints an InputLayer's output shape as a list of one tuple
      if (tf_keras_ && !keras3_) sl.shape_text = "[" + keras_shape_text(sh) + "]";
      g_.source_layers.push_back(std::move(sl));
      continue;
    }
    auto it = records.find(l.name);
    if (it == records.end()) continue;
    const LayerRecord& r = it->second;
    for (size_t k = 0; k < r.shapes.size(); ++k)
      sl.outputs.push_back(k ? l.name + ":" + std::to_string(k) : l.name);
    sl.output_shapes = r.shapes;
    if (r.multiple) sl.shape_text = "multiple";
    sl.trainable_params = r.trainable;
    sl.non_trainable_params = r.non_trainable;
    g_.source_layers.push_back(std::move(sl));
  }
}

}  // namespace anvil::keras
