// Keras model structure parsing (see keras_model.h).
#include "import/keras/keras_model.h"

#include "anvil/error.h"

namespace anvil::keras {

const json& cfg_of(const json& layer) {
  static const json empty = json::object();
  auto it = layer.find("config");
  return it == layer.end() ? empty : *it;
}

namespace {

bool is_model_class(const std::string& c) {
  return c == "Sequential" || c == "Model" || c == "Functional";
}

}  // namespace

std::string jstr(const json& j, const char* key, const std::string& dflt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_string())
    throw Error(std::string("field '") + key + "' must be a string", {}, {}, key);
  return it->get<std::string>();
}

namespace {

Ref parse_ref_array(const json& a) {
  if (!a.is_array() || a.size() < 3 || !a[0].is_string() || !a[1].is_number_integer() ||
      !a[2].is_number_integer())
    throw Error("bad inbound node reference " + a.dump(), {}, {}, "inbound_nodes");
  Ref r{a[0].get<std::string>(), a[1].get<int>(), a[2].get<int>()};
  if (r.node < 0 || r.tensor < 0 || r.node > 100000 || r.tensor > 100000)
    throw Error("bad inbound node reference " + a.dump(), {}, {}, "inbound_nodes");
  return r;
}

// Keras 3: {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}
void collect_keras3_refs(const json& j, std::vector<Ref>& out) {
  if (j.is_object()) {
    if (jstr(j, "class_name") == "__keras_tensor__") {
      out.push_back(parse_ref_array(cfg_of(j).value("keras_history", json::array())));
      return;
    }
    return;
  }
  if (j.is_array())
    for (const auto& e : j) collect_keras3_refs(e, out);
}

std::vector<Call> parse_inbound(const json& nodes) {
  std::vector<Call> calls;
  if (nodes.is_null()) return calls;
  if (!nodes.is_array()) throw Error("inbound_nodes must be a list", {}, {}, "inbound_nodes");
  for (const auto& n : nodes) {
    Call c;
    if (n.is_object()) {  // Keras 3
      collect_keras3_refs(n.value("args", json::array()), c.inputs);
      if (n.contains("kwargs") && n["kwargs"].is_object()) c.kwargs = n["kwargs"];
    } else if (n.is_array()) {
      // Keras 2: [[name, node, tensor, kwargs], ...]; some tf.keras versions: [name, node, tensor,
      // kwargs]
      if (!n.empty() && n[0].is_string()) {
        c.inputs.push_back(parse_ref_array(n));
        if (n.size() > 3 && n[3].is_object()) c.kwargs = n[3];
      } else {
        for (const auto& r : n) {
          c.inputs.push_back(parse_ref_array(r));
          if (r.size() > 3 && r[3].is_object() && !r[3].empty()) c.kwargs = r[3];
        }
      }
    } else {
      throw Error("bad inbound node " + n.dump(), {}, {}, "inbound_nodes");
    }
    calls.push_back(std::move(c));
  }
  return calls;
}

std::vector<Ref> parse_io_layers(const json& j) {
  std::vector<Ref> r;
  if (j.is_null()) return r;
  if (j.is_array() && !j.empty() && j[0].is_string()) {  // a single [name, node, tensor]
    r.push_back(parse_ref_array(j));
    return r;
  }
  if (!j.is_array())
    throw Error("input_layers/output_layers must be a list", {}, {}, "output_layers");
  for (const auto& e : j) r.push_back(parse_ref_array(e));
  return r;
}

LayerDef parse_layer(const json& l, int depth) {
  if (!l.is_object()) throw Error("a layer entry must be an object", {}, {}, "layers");
  LayerDef d;
  d.cls = jstr(l, "class_name");
  d.config = cfg_of(l);
  d.name = jstr(l, "name", jstr(d.config, "name"));
  if (d.name.empty()) throw Error("a layer of class " + d.cls + " has no name", {}, {}, "layers");
  if (is_model_class(d.cls)) d.nested = parse_model(l, depth + 1);
  d.calls = parse_inbound(l.contains("inbound_nodes") ? l["inbound_nodes"] : json());
  return d;
}

}  // namespace

std::shared_ptr<ModelDef> parse_model(const json& model, int depth) {
  if (depth > 32) throw Error("models nested too deeply", {}, {}, "config");
  if (!model.is_object()) throw Error("model config must be a JSON object", {}, {}, "config");
  auto m = std::make_shared<ModelDef>();
  m->cls = jstr(model, "class_name");
  const json& cfg = cfg_of(model);
  const json* layers = nullptr;
  if (cfg.is_array())
    layers = &cfg;  // Keras 2.0-2.1 Sequential: config is the layer list
  else if (cfg.is_object() && cfg.contains("layers"))
    layers = &cfg["layers"];
  if (!layers || !layers->is_array())
    throw Error("model config has no layer list", {}, {}, "config.layers");
  m->name = cfg.is_object() ? jstr(cfg, "name", "model") : "model";
  if (m->cls == "Sequential") {
    // Chain the layers; an InputLayer first (tf.keras / Keras 3), or the first layer's
    // batch_input_shape (Keras 2) gives the input.
    std::string prev;
    for (size_t i = 0; i < layers->size(); ++i) {
      LayerDef d;
      const json& l = (*layers)[i];
      if (!l.is_object()) throw Error("a layer entry must be an object", {}, {}, "layers");
      d.cls = jstr(l, "class_name");
      d.config = cfg_of(l);
      d.name = jstr(d.config, "name", jstr(l, "name"));
      if (d.name.empty()) d.name = d.cls + "_" + std::to_string(i);
      if (is_model_class(d.cls)) d.nested = parse_model(l, depth + 1);
      if (i == 0 && d.cls != "InputLayer") {
        const json& c = d.config;
        json shape;
        if (c.contains("batch_input_shape"))
          shape = c["batch_input_shape"];
        else if (c.contains("batch_shape"))
          shape = c["batch_shape"];
        else if (d.nested && !d.nested->inputs.empty()) {
          // the nested model's input layer gives the shape
          for (const auto& nl : d.nested->layers)
            if (nl.name == d.nested->inputs[0].layer) {
              if (nl.config.contains("batch_input_shape"))
                shape = nl.config["batch_input_shape"];
              else if (nl.config.contains("batch_shape"))
                shape = nl.config["batch_shape"];
            }
        }
        if (shape.is_null())
          throw Error("Sequential model: the first layer '" + d.name + "' declares no input shape",
                      {}, d.name, "batch_input_shape");
        LayerDef in;
        in.cls = "InputLayer";
        in.name = d.name + "_input";
        in.config = json{{"name", in.name},
                         {"batch_input_shape", shape},
                         {"dtype", c.value("dtype", json("float32"))}};
        m->layers.push_back(in);
        m->inputs.push_back({in.name, 0, 0});
        prev = in.name;
      }
      if (d.cls == "InputLayer") {
        if (i != 0)
          throw Error("Sequential model: InputLayer '" + d.name + "' is not first", {}, d.name,
                      "layers");
        m->inputs.push_back({d.name, 0, 0});
      } else {
        Call c;
        c.inputs.push_back({prev, 0, 0});
        d.calls.push_back(c);
      }
      prev = d.name;
      m->layers.push_back(std::move(d));
    }
    if (m->layers.size() < 2)
      throw Error("Sequential model has no layers", {}, {}, "config.layers");
    m->outputs.push_back({prev, 0, 0});
    return m;
  }
  if (m->cls != "Model" && m->cls != "Functional")
    throw Error("unknown model class '" + m->cls + "' (expected Sequential, Model or Functional)",
                {}, {}, "class_name");
  for (const auto& l : *layers) m->layers.push_back(parse_layer(l, depth));
  m->inputs = parse_io_layers(cfg.value("input_layers", json()));
  m->outputs = parse_io_layers(cfg.value("output_layers", json()));
  if (m->inputs.empty() || m->outputs.empty())
    throw Error("functional model without input_layers/output_layers", {}, {}, "config");
  return m;
}

}  // namespace anvil::keras
