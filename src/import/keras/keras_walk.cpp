// Walking a Keras model: graph inputs, layer calls in dependency order (nested models
// recursively), each call through the converter table, provenance on every layer output
// (see keras_translator.h).
#include <algorithm>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

namespace {

std::string layout_name(int r, bool channels_last) {
  static const char* cl[] = {"", "", "NC", "NWC", "NHWC", "NDHWC"};
  static const char* cf[] = {"", "", "NC", "NCW", "NCHW", "NCDHW"};
  if (r < 0 || r > 5) return "";
  return channels_last ? cl[r] : cf[r];
}

/// The reason given for an unsupported layer class.
std::string unsupported_reason(const std::string& cls, bool with_hint) {
  if (cls != "Lambda") return "unsupported layer class";
  if (!with_hint) return "Lambda layers hold Python code and cannot be imported";
  return "Lambda layers hold Python code and cannot be imported; map the layer "
         "with anvil::map_source_op(\"keras\", \"Lambda\", op) or rebuild it";
}

/// The layer's config fields as attributes (numbers, strings, lists of them).
Attributes config_attributes(const json& config) {
  Attributes a;
  for (auto it = config.begin(); it != config.end(); ++it) {
    const json& v = it.value();
    if (it.key() == "name" || it.key() == "trainable" || it.key() == "dtype") continue;
    if (v.is_number_integer())
      a.set(it.key(), v.get<int64_t>());
    else if (v.is_number_float())
      a.set(it.key(), v.get<double>());
    else if (v.is_string())
      a.set(it.key(), v.get<std::string>());
    else if (v.is_array() && !v.empty() &&
             std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number_integer(); }))
      a.set(it.key(), v.get<std::vector<int64_t>>());
    else if (v.is_array() && !v.empty() &&
             std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number(); }))
      a.set(it.key(), v.get<std::vector<double>>());
    else if (v.is_array() && !v.empty() &&
             std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); }))
      a.set(it.key(), v.get<std::vector<std::string>>());
  }
  return a;
}

}  // namespace

std::vector<KT> Translator::call_mapped_op(const std::string& op, const std::vector<KT>& ins) {
  Attributes a = config_attributes(C());
  std::vector<int> vs;
  for (const auto& t : ins) vs.push_back(as_source(t));
  // drop attributes the op does not declare (validate would reject them)
  if (const OpDef* def = OpRegistry::global().find(op)) {
    Attributes kept;
    for (const auto& [k, v] : a.all())
      if (std::any_of(def->attrs.begin(), def->attrs.end(),
                      [&](const AttrSpec& s) { return s.name == k; }))
        kept.set(k, v);
    a = kept;
  }
  return std::vector<KT>{KT{node(op, vs, a, true), {}}};
}

std::vector<KT> Translator::call_layer(const LayerDef& l, const std::vector<KT>& ins) {
  if (LayerConverter convert = find_converter(l.cls)) return convert(*this, ins);
  if (auto op = mapped_source_op("keras", l.cls)) return call_mapped_op(*op, ins);
  return unsupported_layer(ins, unsupported_reason(l.cls, true));
}

void Translator::bind_inputs(const ModelDef& m, const std::vector<KT>* bound,
                             const std::string& prefix,
                             std::map<std::pair<std::string, int>, std::vector<KT>>& produced,
                             const std::map<std::string, const LayerDef*>& by_name) {
  for (size_t k = 0; k < m.inputs.size(); ++k) {
    const Ref& r = m.inputs[k];
    auto it = by_name.find(r.layer);
    if (it == by_name.end())
      throw Error("input layer '" + r.layer + "' not found", g_.source_file, r.layer,
                  "input_layers");
    const LayerDef& l = *it->second;
    if (bound) {
      if (k >= bound->size())
        throw Error("nested model '" + m.name + "' is called with too few inputs", g_.source_file,
                    prefix, "inputs");
      produced[{l.name, 0}] = {(*bound)[k]};
      continue;
    }
    const json& c = l.config;
    json bis =
        c.contains("batch_input_shape") ? c["batch_input_shape"] : c.value("batch_shape", json());
    if (!bis.is_array() || bis.empty())
      throw Error("input layer has no batch_input_shape", g_.source_file, l.name,
                  "batch_input_shape");
    Shape shp;
    auto ov = opt_.input_shapes.find(l.name);
    for (size_t d = 0; d < bis.size(); ++d) {
      if (bis[d].is_null())
        shp.push_back(opt_.default_dim);
      else if (bis[d].is_number_integer() && bis[d].get<int64_t>() >= 0 &&
               bis[d].get<int64_t>() <= kMaxTensorElements)
        shp.push_back(bis[d].get<int64_t>());
      else
        throw Error("bad input dimension " + bis.dump(), g_.source_file, l.name,
                    "batch_input_shape");
    }
    if (ov != opt_.input_shapes.end()) {
      if (ov->second.size() != shp.size())
        throw Error("input shape override " + shape_str(ov->second) + " has the wrong rank for " +
                        bis.dump(),
                    g_.source_file, l.name, "input_shapes");
      for (size_t d = 0; d < shp.size(); ++d)
        if (!bis[d].is_null() && bis[d].get<int64_t>() != ov->second[d])
          throw Error("input shape override " + shape_str(ov->second) +
                          " contradicts the model's " + bis.dump(),
                      g_.source_file, l.name, "input_shapes");
      shp = ov->second;
    }
    std::string dt = c.value("dtype", json("float32")).is_string()
                         ? c.value("dtype", std::string("float32"))
                         : "float32";
    DType idt = DType::f32;
    if (dt == "int32" || dt == "int64" || dt == "uint8")
      idt = dt == "int64" ? DType::i64 : DType::i32;
    else if (dt != "float32" && dt != "float16" && dt != "float64")
      throw Error("input dtype '" + dt + "' is not supported", g_.source_file, l.name, "dtype");
    // token ids: an input read only by Embedding layers takes int32 ids (Keras casts them so)
    int to_embedding = 0, to_other = 0;
    for (const auto& o : m.layers)
      for (const auto& call : o.calls)
        for (const auto& in : call.inputs)
          if (in.layer == l.name) ++(o.cls == "Embedding" ? to_embedding : to_other);
    if (to_embedding > 0 && to_other == 0 && idt == DType::f32) idt = DType::i32;
    if (!bis[0].is_null()) batch_free_ = false;
    int v = g_.add_input(g_.unique_name(l.name), idt, shp);
    Value& val = g_.values[static_cast<size_t>(v)];
    val.prov.framework = "keras";
    val.prov.source_name = l.name;
    check_size(v);
    produced[{l.name, 0}] = {KT{v, {}}};
  }
}

void Translator::tag_outputs(const LayerDef& l, std::vector<KT>& outs) {
  for (size_t k = 0; k < outs.size(); ++k) {
    KT& o = outs[k];
    if (o.poisoned) continue;
    if (o.v < cur_.first_value)
      o.v = node("Identity", {o.v}, {}, true);  // a fresh value per layer output
    else if (k == 0 && outs.size() > 1 && g_.values[static_cast<size_t>(o.v)].name != cur_.name)
      // output 0 of a several-output layer carries the layer's own name: a tap "<layer>"
      // finds it by name before any value of the layer's other outputs
      o.v = node("Identity", {o.v}, {}, true);
    Value& val = g_.values[static_cast<size_t>(o.v)];
    val.prov.framework = "keras";
    val.prov.source_name = cur_.name;
    val.prov.output_index = static_cast<int>(k);
    val.prov.to_source = o.perm;
    int r = static_cast<int>(val.shape.size());
    if (!o.perm.empty())
      val.prov.source_layout = layout_name(r, true);
    else if (r >= 3 && (l.config.value("data_format", std::string()) == "channels_first"))
      val.prov.source_layout = layout_name(r, false);
  }
}

std::vector<KT> Translator::translate_call(const LayerDef& l, int call, const std::vector<KT>& ins,
                                           const std::string& prefix,
                                           const std::vector<std::string>& wpath) {
  const std::string call_name = prefix + l.name + (call > 0 ? "@" + std::to_string(call) : "");
  CallCtx saved = cur_;
  auto saved_w = std::move(weights_);
  auto saved_masks = std::move(out_masks_);
  out_masks_.clear();
  bool saved_loaded = weights_loaded_;
  cur_.layer = &l;
  cur_.name = call_name;
  cur_.wpath = wpath;
  cur_.wpath.push_back(l.name);
  cur_.first_value = static_cast<int>(g_.values.size());
  weights_.clear();
  weights_loaded_ = false;
  std::vector<KT> outs;
  if (std::any_of(ins.begin(), ins.end(), [](const KT& k) { return k.poisoned; })) {
    // an input comes from an unsupported layer: translate nothing, but list this layer too
    // when it is unsupported itself
    if (!l.nested && !find_converter(l.cls) && !mapped_source_op("keras", l.cls))
      unsupported.push_back({prefix + l.name, l.cls, unsupported_reason(l.cls, false)});
    KT p = ins[0];
    p.poisoned = true;
    cur_ = saved;
    weights_ = std::move(saved_w);
    weights_loaded_ = saved_loaded;
    out_masks_ = std::move(saved_masks);
    return std::vector<KT>(8, p);
  }
  if (l.nested) {
    int64_t t0 = acc_trainable_, n0 = acc_non_trainable_;
    bool frozen_nested = l.config.contains("trainable") && l.config["trainable"].is_boolean() &&
                         !l.config["trainable"].get<bool>();
    if (frozen_nested) ++frozen_;
    outs = run_model(*l.nested, &ins, call_name + "/", cur_.wpath);
    if (frozen_nested) --frozen_;
    LayerRecord& rec = records[prefix + l.name];
    rec.type = l.cls;
    rec.trainable += acc_trainable_ - t0;
    rec.non_trainable += acc_non_trainable_ - n0;
    cur_ = saved;
    cur_.layer = &l;
    cur_.name = call_name;
    cur_.first_value = static_cast<int>(g_.values.size());
    // give the nested model's outputs their own values named after the nested layer
    for (size_t k = 0; k < outs.size(); ++k) {
      if (mask_of(outs[k]) >= 0) out_masks_[k] = mask_of(outs[k]);
      outs[k].v = node("Identity", {outs[k].v}, {}, true);
    }
  } else {
    outs = call_layer(l, ins);
  }
  tag_outputs(l, outs);
  propagate_masks(l, ins, outs);
  bool first = !records.count(prefix + l.name) || records[prefix + l.name].type.empty() ||
               (l.nested && records[prefix + l.name].shapes.empty());
  LayerRecord& rec = records[prefix + l.name];
  rec.type = l.cls;
  if (!l.nested) count_layer_weights(rec);
  record_shapes(rec, outs, first);
  cur_ = saved;
  weights_ = std::move(saved_w);
  weights_loaded_ = saved_loaded;
  out_masks_ = std::move(saved_masks);
  return outs;
}

std::vector<KT> Translator::run_model(const ModelDef& m, const std::vector<KT>* bound,
                                      const std::string& prefix,
                                      const std::vector<std::string>& wpath) {
  std::map<std::string, const LayerDef*> by_name;
  for (const auto& l : m.layers) {
    if (by_name.count(l.name))
      throw Error("two layers are named '" + l.name + "'", g_.source_file, l.name, "name");
    by_name[l.name] = &l;
  }
  // outputs[(layer, node)] = tensors
  std::map<std::pair<std::string, int>, std::vector<KT>> produced;
  bind_inputs(m, bound, prefix, produced, by_name);
  // layer calls, in dependency order
  struct Pending {
    const LayerDef* l;
    int node;
  };
  std::vector<Pending> todo;
  for (const auto& l : m.layers) {
    if (l.cls == "InputLayer") continue;
    for (size_t k = 0; k < l.calls.size(); ++k) todo.push_back({&l, static_cast<int>(k)});
  }
  std::vector<bool> done(todo.size(), false);
  size_t remaining = todo.size();
  while (remaining > 0) {
    bool progress = false;
    for (size_t t = 0; t < todo.size(); ++t) {
      if (done[t]) continue;
      const LayerDef& l = *todo[t].l;
      const Call& call = l.calls[static_cast<size_t>(todo[t].node)];
      std::vector<KT> ins;
      bool ready = true;
      for (const auto& r : call.inputs) {
        auto it = produced.find({r.layer, r.node});
        if (it == produced.end()) {
          if (!by_name.count(r.layer))
            throw Error("layer '" + l.name + "' takes input from unknown layer '" + r.layer + "'",
                        g_.source_file, prefix + l.name, "inbound_nodes");
          ready = false;
          break;
        }
        if (r.tensor >= static_cast<int>(it->second.size()))
          throw Error("layer '" + l.name + "' takes output " + std::to_string(r.tensor) + " of '" +
                          r.layer + "', which has " + std::to_string(it->second.size()),
                      g_.source_file, prefix + l.name, "inbound_nodes");
        ins.push_back(it->second[static_cast<size_t>(r.tensor)]);
      }
      if (!ready) continue;
      if (ins.empty())
        throw Error("layer '" + l.name + "' has no inputs", g_.source_file, prefix + l.name,
                    "inbound_nodes");
      produced[{l.name, todo[t].node}] = translate_call(l, todo[t].node, ins, prefix, wpath);
      done[t] = true;
      --remaining;
      progress = true;
    }
    if (!progress) {
      std::string names;
      for (size_t t = 0; t < todo.size(); ++t)
        if (!done[t]) names += (names.empty() ? "" : ", ") + todo[t].l->name;
      throw Error("layers whose inputs are never produced (cycle or dangling reference): " + names,
                  g_.source_file, prefix, "inbound_nodes");
    }
  }
  std::vector<KT> outs;
  for (const auto& r : m.outputs) {
    auto it = produced.find({r.layer, r.node});
    if (it == produced.end() || r.tensor >= static_cast<int>(it->second.size()))
      throw Error("model output '" + r.layer + "' is never produced", g_.source_file, r.layer,
                  "output_layers");
    outs.push_back(it->second[static_cast<size_t>(r.tensor)]);
  }
  return outs;
}

}  // namespace anvil::keras
