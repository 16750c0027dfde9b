// Keras importer: model config (JSON) + weights (HDF5) -> canonical Graph.
// See keras_importer.h for the layout and naming contract.
#include "import/keras/keras_importer.h"

#include <zip.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

#include "anvil/error.h"
#include "anvil/ops.h"
#include "import/keras/hdf5_file.h"
#include "import/keras/keras_convert.h"

namespace anvil::keras {

using json = nlohmann::json;

namespace {

// Largest tensor the importer lets a config describe (elements), before anything is allocated.
constexpr int64_t kMaxTensorElements = int64_t{1} << 32;

std::string lower_ext(const std::string& f) {
  std::string e = std::filesystem::path(f).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open file", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json parse_json(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(std::string("invalid JSON: ") + e.what(), what);
  }
}

// ------------------------------------------------------------------------------------------
// Model structure

struct Ref {  // an input of a layer call: output `tensor` of call `node` of layer `layer`
  std::string layer;
  int node = 0;
  int tensor = 0;
};

struct Call {
  std::vector<Ref> inputs;
  json kwargs = json::object();
};

struct ModelDef;

struct LayerDef {
  std::string cls, name;
  json config;
  std::vector<Call> calls;
  std::shared_ptr<ModelDef> nested;  // Sequential / Model / Functional used as a layer
};

struct ModelDef {
  std::string cls, name;
  std::vector<LayerDef> layers;
  std::vector<Ref> inputs, outputs;
};

const json& cfg_of(const json& layer) {
  static const json empty = json::object();
  auto it = layer.find("config");
  return it == layer.end() ? empty : *it;
}

bool is_model_class(const std::string& c) {
  return c == "Sequential" || c == "Model" || c == "Functional";
}

std::string jstr(const json& j, const char* key, const std::string& dflt = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_string()) throw Error(std::string("field '") + key + "' must be a string", {}, {}, key);
  return it->get<std::string>();
}

Ref parse_ref_array(const json& a) {
  if (!a.is_array() || a.size() < 3 || !a[0].is_string() || !a[1].is_number_integer() || !a[2].is_number_integer())
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
      // Keras 2: [[name, node, tensor, kwargs], ...]; some tf.keras versions: [name, node, tensor, kwargs]
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
  if (!j.is_array()) throw Error("input_layers/output_layers must be a list", {}, {}, "output_layers");
  for (const auto& e : j) r.push_back(parse_ref_array(e));
  return r;
}

std::shared_ptr<ModelDef> parse_model(const json& model, int depth);

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
  if (!layers || !layers->is_array()) throw Error("model config has no layer list", {}, {}, "config.layers");
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
        if (c.contains("batch_input_shape")) shape = c["batch_input_shape"];
        else if (c.contains("batch_shape")) shape = c["batch_shape"];
        else if (d.nested && !d.nested->inputs.empty()) {
          // the nested model's input layer gives the shape
          for (const auto& nl : d.nested->layers)
            if (nl.name == d.nested->inputs[0].layer) {
              if (nl.config.contains("batch_input_shape")) shape = nl.config["batch_input_shape"];
              else if (nl.config.contains("batch_shape")) shape = nl.config["batch_shape"];
            }
        }
        if (shape.is_null())
          throw Error("Sequential model: the first layer '" + d.name + "' declares no input shape", {}, d.name,
                      "batch_input_shape");
        LayerDef in;
        in.cls = "InputLayer";
        in.name = d.name + "_input";
        in.config = json{{"name", in.name}, {"batch_input_shape", shape}, {"dtype", c.value("dtype", json("float32"))}};
        m->layers.push_back(in);
        m->inputs.push_back({in.name, 0, 0});
        prev = in.name;
      }
      if (d.cls == "InputLayer") {
        if (i != 0) throw Error("Sequential model: InputLayer '" + d.name + "' is not first", {}, d.name, "layers");
        m->inputs.push_back({d.name, 0, 0});
      } else {
        Call c;
        c.inputs.push_back({prev, 0, 0});
        d.calls.push_back(c);
      }
      prev = d.name;
      m->layers.push_back(std::move(d));
    }
    if (m->layers.size() < 2) throw Error("Sequential model has no layers", {}, {}, "config.layers");
    m->outputs.push_back({prev, 0, 0});
    return m;
  }
  if (m->cls != "Model" && m->cls != "Functional")
    throw Error("unknown model class '" + m->cls + "' (expected Sequential, Model or Functional)", {}, {}, "class_name");
  for (const auto& l : *layers) m->layers.push_back(parse_layer(l, depth));
  m->inputs = parse_io_layers(cfg.value("input_layers", json()));
  m->outputs = parse_io_layers(cfg.value("output_layers", json()));
  if (m->inputs.empty() || m->outputs.empty())
    throw Error("functional model without input_layers/output_layers", {}, {}, "config");
  return m;
}

// ------------------------------------------------------------------------------------------
// Weights

struct NamedWeight {
  std::string name;  // short name: "kernel", "bias", "gamma", ... (or the raw name)
  std::string full;  // as in the file, for messages
  Tensor value;
};

std::string short_weight_name(const std::string& full) {
  std::string s = full;
  if (auto slash = s.rfind('/'); slash != std::string::npos) s = s.substr(slash + 1);
  if (auto colon = s.rfind(':'); colon != std::string::npos) s = s.substr(0, colon);
  return s;
}

class WeightStore {
 public:
  virtual ~WeightStore() = default;
  /// The weights of a layer; `path` is {layer} or {outer model, ..., layer} for nested models.
  virtual std::vector<NamedWeight> layer(const std::vector<std::string>& path) = 0;
  virtual std::string file() const = 0;
};

// Keras 2 / tf.keras HDF5: group with attr layer_names; per layer attr weight_names.
class H5WeightStore : public WeightStore {
 public:
  H5WeightStore(std::shared_ptr<H5File> f, std::string root) : f_(std::move(f)), root_(std::move(root)) {
    if (!f_->has_attr(root_, "layer_names"))
      throw Error("weights group '" + (root_.empty() ? std::string("/") : root_) + "' has no layer_names attribute",
                  f_->what(), {}, "layer_names");
    auto names = f_->attr_strings(root_, "layer_names");
    layer_names_.insert(names.begin(), names.end());
  }
  std::string file() const override { return f_->what(); }
  std::vector<NamedWeight> layer(const std::vector<std::string>& path) override {
    const std::string& top = path.front();
    std::string g = (root_.empty() ? "" : root_ + "/") + top;
    std::vector<NamedWeight> r;
    if (!layer_names_.count(top) || !f_->is_group(g)) return r;
    std::vector<std::string> wn;
    if (f_->has_attr(g, "weight_names")) wn = f_->attr_strings(g, "weight_names");
    for (const auto& full : wn) {
      if (path.size() > 1) {
        // nested: keep names whose directory part mentions the inner layer
        const std::string& inner = path.back();
        std::string dir = full.substr(0, full.rfind('/') == std::string::npos ? 0 : full.rfind('/'));
        std::vector<std::string> parts;
        std::stringstream ss(dir);
        std::string p;
        bool hit = false;
        while (std::getline(ss, p, '/')) hit |= (p == inner);
        if (!hit) continue;
      }
      std::string ds = g + "/" + full;
      if (!f_->is_dataset(ds))
        throw Error("weight '" + full + "' listed in weight_names is missing from the file", f_->what(), path.back(),
                    full);
      NamedWeight w;
      w.full = full;
      w.name = short_weight_name(full);
      try {
        w.value = f_->read_f32(ds);
      } catch (const Error& e) {
        throw Error(e.message(), f_->what(), path.back(), full);
      }
      r.push_back(std::move(w));
    }
    return r;
  }

 private:
  std::shared_ptr<H5File> f_;
  std::string root_;
  std::set<std::string> layer_names_;
};

// Keras 3 model.weights.h5: layers/<name>/vars/<i> (nested: layers/<m>/layers/<name>/vars).
class Keras3WeightStore : public WeightStore {
 public:
  explicit Keras3WeightStore(std::shared_ptr<H5File> f) : f_(std::move(f)) {}
  std::string file() const override { return f_->what(); }
  std::vector<NamedWeight> layer(const std::vector<std::string>& path) override {
    std::vector<NamedWeight> r;
    for (const char* base : {"layers", "_layer_checkpoint_dependencies"}) {
      std::string g;
      for (const auto& p : path) g += std::string(g.empty() ? "" : "/") + base + "/" + p;
      std::string vars = g + "/vars";
      if (!f_->is_group(vars)) continue;
      auto kids = f_->children(vars);
      for (size_t i = 0; i < kids.size(); ++i) {
        std::string ds = vars + "/" + std::to_string(i);
        if (!f_->is_dataset(ds)) throw Error("weight 'vars/" + std::to_string(i) + "' is missing", f_->what(), path.back(), ds);
        NamedWeight w;
        w.full = ds;
        w.name = "";  // by position
        try {
          w.value = f_->read_f32(ds);
        } catch (const Error& e) {
          throw Error(e.message(), f_->what(), path.back(), ds);
        }
        r.push_back(std::move(w));
      }
      return r;
    }
    return r;
  }

 private:
  std::shared_ptr<H5File> f_;
};

// ------------------------------------------------------------------------------------------
// Translation

/// A Keras tensor: canonical value `v`; Keras's view of it is transpose(v, perm) (perm empty:
/// identical).
struct KT {
  int v = -1;
  std::vector<int> perm;
  bool poisoned = false;  // derived from an unsupported layer: not translated further
};

std::vector<int> identity_perm(int r) {
  std::vector<int> p(static_cast<size_t>(r));
  std::iota(p.begin(), p.end(), 0);
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
// channels_last (N, d1..dn, C) -> canonical (N, C, d1..dn): the perm taking canonical to source.
std::vector<int> cl_to_source(int r) {
  std::vector<int> p{0};
  for (int i = 2; i < r; ++i) p.push_back(i);
  p.push_back(1);
  return p;
}
std::string layout_name(int r, bool channels_last) {
  static const char* cl[] = {"", "", "NC", "NWC", "NHWC", "NDHWC"};
  static const char* cf[] = {"", "", "NC", "NCW", "NCHW", "NCDHW"};
  if (r < 0 || r > 5) return "";
  return channels_last ? cl[r] : cf[r];
}

bool is_known_class(const std::string& c) {
  static const std::set<std::string> known = {
      "Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "DepthwiseConv2D", "SeparableConv2D",
      "SeparableConvolution2D", "Conv2DTranspose", "Conv1DTranspose", "Deconvolution2D", "MaxPooling1D",
      "MaxPooling2D", "MaxPooling3D", "MaxPool1D", "MaxPool2D", "AveragePooling1D", "AveragePooling2D",
      "AveragePooling3D", "AvgPool1D", "AvgPool2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
      "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D",
      "GlobalMaxPool2D", "Dense", "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU",
      "ThresholdedReLU", "Softmax", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D",
      "UpSampling2D", "Flatten", "Reshape", "Permute", "RepeatVector", "Concatenate", "Add", "Subtract",
      "Multiply", "Average", "Maximum", "Minimum", "Dot", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
      "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
      "Masking"};
  return known.count(c) != 0;
}

struct Unsupported {
  std::string layer, cls, reason;
};

class Translator {
 public:
  Translator(Graph& g, WeightStore& w, const ImportOptions& opt, bool theano, std::string keras_version)
      : g_(g), w_(w), opt_(opt), theano_(theano), keras_version_(std::move(keras_version)) {
    keras3_ = !keras_version_.empty() && keras_version_[0] == '3';
    tf_keras_ = keras3_ || keras_version_.find("-tf") != std::string::npos || version_at_least(2, 4);
  }

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
  std::vector<KT> run_model(const ModelDef& m, const std::vector<KT>* bound, const std::string& prefix,
                            const std::vector<std::string>& wpath);

 private:
  bool version_at_least(int major, int minor) const {
    int a = 0, b = 0;
    if (std::sscanf(keras_version_.c_str(), "%d.%d", &a, &b) < 2) return false;
    return a > major || (a == major && b >= minor);
  }

  // ---- emission helpers (valid during one layer call) ----
  struct CallCtx {
    const LayerDef* layer = nullptr;
    std::string name;  // display name (prefix + layer name [+ @k])
    std::vector<std::string> wpath;
    int first_value = 0;
  };
  CallCtx cur_;

  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    throw Error(msg, g_.source_file, cur_.name, field);
  }

  void check_size(int v) {
    const Value& val = g_.values[static_cast<size_t>(v)];
    int64_t n = 1;
    for (int64_t d : val.shape) {
      if (d < 0) fail("shape", "negative dimension in " + shape_str(val.shape));
      if (d != 0 && n > kMaxTensorElements / d) fail("shape", "hostile tensor size " + shape_str(val.shape));
      n *= d;
    }
    if (n > kMaxTensorElements) fail("shape", "hostile tensor size " + shape_str(val.shape));
  }

  int node(const std::string& op, const std::vector<int>& ins, Attributes attrs = {}, bool final_node = false,
           int num_outputs = 1) {
    std::string nm = g_.unique_name(final_node ? cur_.name : cur_.name + "/" + op);
    int ni = g_.add_node(op, nm, ins, std::move(attrs), num_outputs);
    g_.nodes[static_cast<size_t>(ni)].source_op = cur_.layer ? cur_.layer->cls : std::string("Input");
    try {
      g_.infer_node(ni);
    } catch (const Error& e) {
      throw Error(e.message(), g_.source_file, cur_.name, e.field());
    }
    for (int o : g_.nodes[static_cast<size_t>(ni)].outputs) check_size(o);
    return g_.nodes[static_cast<size_t>(ni)].outputs[0];
  }

  int cst(const std::string& what, Tensor t) { return g_.add_constant(g_.unique_name(cur_.name + "/" + what), std::move(t)); }
  int i64s(const std::string& what, const std::vector<int64_t>& v) {
    return cst(what, Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
  }
  int scalar(const std::string& what, float x) { return cst(what, Tensor::from_vector<float>({}, {x})); }

  const Shape& shape(int v) const { return g_.values[static_cast<size_t>(v)].shape; }
  int rank(int v) const { return static_cast<int>(shape(v).size()); }
  Shape src_shape(const KT& t) const {
    const Shape& s = shape(t.v);
    if (t.perm.empty()) return s;
    Shape r(s.size());
    for (size_t i = 0; i < s.size(); ++i) r[i] = s[static_cast<size_t>(t.perm[i])];
    return r;
  }

  /// A value equal to transpose(source(t), q).
  int view(const KT& t, const std::vector<int>& q) {
    std::vector<int> c(q.size());
    for (size_t i = 0; i < q.size(); ++i) c[i] = t.perm.empty() ? q[i] : t.perm[static_cast<size_t>(q[i])];
    if (is_identity(c)) return t.v;
    auto key = std::make_pair(t.v, c);
    if (auto it = view_cache_.find(key); it != view_cache_.end()) return it->second;
    Attributes a;
    a.set("perm", std::vector<int64_t>(c.begin(), c.end()));
    int v = node("Transpose", {t.v}, a);
    view_cache_[key] = v;
    return v;
  }
  int as_source(const KT& t) { return view(t, identity_perm(rank(t.v))); }
  /// The value in channels-first order (N, C, spatial...) for a layer with this data_format.
  int as_cf(const KT& t, bool channels_last) {
    int r = rank(t.v);
    if (!channels_last) return as_source(t);
    return view(t, inverse_perm(cl_to_source(r)));
  }
  KT cf_out(int v, bool channels_last) {
    KT t{v, {}};
    if (channels_last && rank(v) >= 3) t.perm = cl_to_source(rank(v));
    return t;
  }
  /// Canonical axis of a Keras axis (negative counts from the back).
  int canon_axis(const KT& t, int64_t axis) {
    int r = rank(t.v);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) fail("axis", "axis out of range for a rank-" + std::to_string(r) + " tensor");
    return t.perm.empty() ? static_cast<int>(axis) : t.perm[static_cast<size_t>(axis)];
  }
  /// A constant given in Keras layout (same rank as t) moved to t's canonical layout.
  Tensor const_to_canon(const KT& t, const Tensor& src) {
    if (t.perm.empty()) return src;
    return transpose(src, inverse_perm(t.perm));
  }

  // ---- config accessors ----
  const json& C() const { return cur_.layer->config; }
  bool has(const char* k) const { return C().contains(k) && !C()[k].is_null(); }
  std::string s(const char* k, const std::string& d = {}) const {
    if (!has(k)) return d;
    if (!C()[k].is_string()) fail(k, "expected a string, found " + C()[k].dump());
    return C()[k].get<std::string>();
  }
  double f(const char* k, double d) const {
    if (!has(k)) return d;
    if (!C()[k].is_number()) fail(k, "expected a number, found " + C()[k].dump());
    return C()[k].get<double>();
  }
  bool b(const char* k, bool d) const {
    if (!has(k)) return d;
    if (!C()[k].is_boolean()) fail(k, "expected true/false, found " + C()[k].dump());
    return C()[k].get<bool>();
  }
  int64_t i(const char* k, int64_t d) const {
    if (!has(k)) return d;
    if (!C()[k].is_number_integer()) fail(k, "expected an integer, found " + C()[k].dump());
    return C()[k].get<int64_t>();
  }
  /// An int or a list of n ints (Keras' normalize_tuple).
  std::vector<int64_t> tuple(const char* k, int n, int64_t d) const {
    std::vector<int64_t> r(static_cast<size_t>(n), d);
    if (!has(k)) return r;
    const json& j = C()[k];
    if (j.is_number_integer()) {
      std::fill(r.begin(), r.end(), j.get<int64_t>());
    } else if (j.is_array() && static_cast<int>(j.size()) == n) {
      for (int q = 0; q < n; ++q) {
        if (!j[static_cast<size_t>(q)].is_number_integer()) fail(k, "expected integers, found " + j.dump());
        r[static_cast<size_t>(q)] = j[static_cast<size_t>(q)].get<int64_t>();
      }
    } else {
      fail(k, "expected an integer or " + std::to_string(n) + " integers, found " + j.dump());
    }
    for (int64_t v : r)
      if (v < 0 || v > (int64_t{1} << 24)) fail(k, "value out of range: " + j.dump());
    return r;
  }
  bool channels_last() const {
    std::string df = s("data_format", "channels_last");
    if (df != "channels_last" && df != "channels_first") fail("data_format", "unknown data_format '" + df + "'");
    return df == "channels_last";
  }

  // ---- weights ----
  std::vector<NamedWeight> weights_;
  bool weights_loaded_ = false;
  void load_weights() {
    if (!weights_loaded_) weights_ = w_.layer(cur_.wpath);
    weights_loaded_ = true;
  }
  /// Weight `name` of the current layer (by short name when the file has names, else by
  /// position `pos` among the slots the layer has), checked against `want` (if not empty).
  Tensor weight(const std::string& name, int pos, const Shape& want) {
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
          any_known |= (w.name == "kernel" || w.name == "bias" || w.name == "gamma" || w.name == "beta" ||
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
      throw Error("weight '" + name + "' has shape " + shape_str(found->value.shape()) + ", the config implies " +
                      shape_str(want),
                  w_.file(), cur_.name, name);
    return found->value;
  }
  void expect_weight_count(size_t n) {
    load_weights();
    if (weights_.size() != n)
      throw Error("expected " + std::to_string(n) + " weights, the file has " + std::to_string(weights_.size()),
                  w_.file(), cur_.name, "weights");
  }

  // ---- source-layer records (for summaries) ----
  std::set<std::string> counted_paths_;  // weight paths already counted (shared layers)
  int64_t acc_trainable_ = 0, acc_non_trainable_ = 0;  // running totals over leaf layers
  int frozen_ = 0;          // > 0 inside a nested model with trainable: false
  bool batch_free_ = true;  // the batch dimension is None in the model's inputs
  static bool non_trainable_weight_name(const std::string& n) {
    auto ends = [&](const char* suf) {
      std::string t(suf);
      return n.size() >= t.size() && n.compare(n.size() - t.size(), t.size(), t) == 0;
    };
    return ends("moving_mean") || ends("moving_variance") || ends("running_mean") || ends("running_std");
  }
  /// Counts the weights of the current (leaf) layer call as Keras does: every weight the layer
  /// holds (the file stores exactly those), moving statistics non-trainable, all of them when
  /// the layer (or an enclosing model) has trainable: false. A shared layer counts once.
  void count_layer_weights(LayerRecord& r) {
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
      bool nt = frozen || non_trainable_weight_name(w.name) ||
                (w.name.empty() && cur_.layer->cls == "BatchNormalization" && k + 2 >= weights_.size());
      (nt ? r.non_trainable : r.trainable) += n;
      (nt ? acc_non_trainable_ : acc_trainable_) += n;
    }
  }
  void record_shapes(LayerRecord& r, const std::vector<KT>& outs, bool first) {
    std::vector<Shape> shapes;
    for (const auto& o : outs) {
      Shape sh = src_shape(o);
      if (batch_free_ && !sh.empty()) sh[0] = -1;
      shapes.push_back(sh);
    }
    if (first) r.shapes = shapes;
    else if (shapes != r.shapes) r.multiple = true;
  }
  std::string keras_shape_text(const Shape& s) const {
    std::string t = "(";
    for (size_t k = 0; k < s.size(); ++k) t += (k ? ", " : "") + (s[k] < 0 ? std::string("None") : std::to_string(s[k]));
    return t + (s.size() == 1 ? ",)" : ")");
  }

 public:
  /// Graph::source_layers for top-level model `m` (Keras's model.layers order; a Sequential
  /// model does not list its InputLayer, as Keras does not).
  void fill_source_layers(const ModelDef& m, const std::vector<KT>& outs);

 private:
  // ---- activations ----
  int activation(const KT& x, const std::string& act, bool final_node);
  int relu_general(int x, double max_value, bool has_max, double slope, double threshold, bool final_node);

  // ---- layers ----
  std::vector<KT> call_layer(const LayerDef& l, const std::vector<KT>& ins, int node_index);
  KT conv(const KT& x, int nd, bool transpose_conv, bool depthwise, bool separable);
  KT pool(const KT& x, int nd, bool max);
  KT global_pool(const KT& x, int nd, bool max);
  KT dense(const KT& x);
  KT batchnorm(const KT& x);
  KT merge(const std::vector<KT>& ins, const std::string& op);
  KT pad_or_crop(const KT& x, int nd, bool crop);
  KT upsample(const KT& x, int nd);

  Graph& g_;
  WeightStore& w_;
  const ImportOptions& opt_;
  bool theano_;
  std::string keras_version_;
  bool keras3_ = false, tf_keras_ = false;
  std::map<std::pair<int, std::vector<int>>, int> view_cache_;
};

int Translator::relu_general(int x, double max_value, bool has_max, double slope, double threshold,
                             bool final_node) {
  // Keras backend relu(x, alpha, max_value, threshold):
  //   y = clip(threshold != 0 ? x * (x > threshold) : relu(x), 0, max_value) - alpha * relu(threshold - x)
  bool neg = slope != 0;
  int y;
  if (!neg && threshold == 0 && has_max) {
    return node("Clip", {x, scalar("min", 0.f), scalar("max", static_cast<float>(max_value))}, {}, final_node);
  }
  if (threshold != 0) {
    Attributes a;
    a.set("alpha", threshold);
    y = node("ThresholdedRelu", {x}, a, final_node && !has_max && !neg);
  } else if (neg && !has_max) {
    Attributes a;
    a.set("alpha", slope);
    return node("LeakyRelu", {x}, a, final_node);
  } else {
    y = node("Relu", {x}, {}, final_node && !has_max && !neg);
  }
  if (has_max) y = node("Clip", {y, scalar("min", 0.f), scalar("max", static_cast<float>(max_value))}, {}, final_node && !neg);
  if (neg) {
    int t = node("Sub", {scalar("threshold", static_cast<float>(threshold)), x});
    t = node("Relu", {t});
    t = node("Mul", {t, scalar("negative_slope", static_cast<float>(slope))});
    y = node("Sub", {y, t}, {}, final_node);
  }
  return y;
}

int Translator::activation(const KT& x, const std::string& act_in, bool final_node) {
  std::string act = act_in;
  if (act.empty() || act == "linear" || act == "None") {
    return final_node ? node("Identity", {x.v}, {}, true) : x.v;
  }
  Attributes a;
  if (act == "relu") return node("Relu", {x.v}, {}, final_node);
  if (act == "relu6") return relu_general(x.v, 6, true, 0, 0, final_node);
  if (act == "sigmoid") return node("Sigmoid", {x.v}, {}, final_node);
  if (act == "tanh") return node("Tanh", {x.v}, {}, final_node);
  if (act == "hard_sigmoid") {
    // Keras 2 / tf.keras: clip(0.2x + 0.5); Keras 3: relu6(x + 3) / 6
    a.set("alpha", keras3_ ? 1.0 / 6.0 : 0.2);
    a.set("beta", 0.5);
    return node("HardSigmoid", {x.v}, a, final_node);
  }
  if (act == "softmax" || act == "log_softmax") {
    a.set("axis", static_cast<int64_t>(canon_axis(x, -1)));
    return node(act == "softmax" ? "Softmax" : "LogSoftmax", {x.v}, a, final_node);
  }
  if (act == "elu") {
    a.set("alpha", 1.0);
    return node("Elu", {x.v}, a, final_node);
  }
  if (act == "selu") {
    a.set("alpha", 1.6732632423543772848170429916717);
    a.set("gamma", 1.0507009873554804934193349852946);
    return node("Selu", {x.v}, a, final_node);
  }
  if (act == "softplus") return node("Softplus", {x.v}, {}, final_node);
  if (act == "softsign") return node("Softsign", {x.v}, {}, final_node);
  if (act == "exponential") return node("Exp", {x.v}, {}, final_node);
  if (act == "swish" || act == "silu") {
    int sg = node("Sigmoid", {x.v});
    return node("Mul", {x.v, sg}, {}, final_node);
  }
  if (act == "gelu") {
    a.set("approximate", std::string("none"));
    return node("Gelu", {x.v}, a, final_node);
  }
  if (act == "mish") return node("Mish", {x.v}, {}, final_node);
  if (act == "hard_silu" || act == "hard_swish") return node("HardSwish", {x.v}, {}, final_node);
  if (act == "leaky_relu") {
    a.set("alpha", 0.2);
    return node("LeakyRelu", {x.v}, a, final_node);
  }
  fail("activation", "unsupported activation '" + act + "'");
}

KT Translator::conv(const KT& x, int nd, bool transpose_conv, bool depthwise, bool separable) {
  bool cl = channels_last();
  int r = rank(x.v);
  if (r != nd + 2) fail("input", "expects a rank-" + std::to_string(nd + 2) + " input, found " + shape_str(src_shape(x)));
  int xv = as_cf(x, cl);
  Shape xs = shape(xv);  // (N, C, spatial...)
  int64_t cin = xs[1];
  auto ks = tuple("kernel_size", nd, 1);
  auto st = tuple("strides", nd, 1);
  auto dil = tuple("dilation_rate", nd, 1);
  for (int q = 0; q < nd; ++q)
    if (ks[static_cast<size_t>(q)] < 1 || st[static_cast<size_t>(q)] < 1 || dil[static_cast<size_t>(q)] < 1)
      fail("kernel_size", "kernel sizes, strides and dilations must be >= 1");
  std::string padding = s("padding", "valid");
  if (padding != "valid" && padding != "same" && padding != "causal" && padding != "full")
    fail("padding", "unsupported padding '" + padding + "'");
  if (padding == "causal" && (nd != 1 || transpose_conv)) fail("padding", "causal padding is only for Conv1D");
  bool use_bias = b("use_bias", true);
  int64_t groups = i("groups", 1);
  if (groups < 1 || cin % groups != 0) fail("groups", "groups must divide the input channels");

  Shape kshape;  // Keras kernel shape
  for (int64_t k : ks) kshape.push_back(k);
  Tensor w;
  int64_t cout = 0;
  int64_t group = 1;
  int64_t dm = i("depth_multiplier", 1);
  if (depthwise || separable) {
    if (dm < 1 || dm > (1 << 20)) fail("depth_multiplier", "bad depth_multiplier");
    Shape want = kshape;
    want.push_back(cin);
    want.push_back(dm);
    Tensor k = weight("depthwise_kernel", 0, want);
    w = depthwise_kernel_to_oihw(k);
    cout = cin * dm;
    group = cin;
  } else if (transpose_conv) {
    int64_t filters = i("filters", -1);
    if (filters < 1) fail("filters", "filters must be >= 1");
    Shape want = kshape;
    want.push_back(filters);
    want.push_back(cin);
    Tensor k = weight("kernel", 0, want);
    if (theano_) k = flip_spatial(k, nd);
    w = conv_transpose_kernel_to_iohw(k);
    cout = filters;
  } else {
    int64_t filters = i("filters", -1);
    if (filters < 1) fail("filters", "filters must be >= 1");
    Shape want = kshape;
    want.push_back(cin / groups);
    want.push_back(filters);
    Tensor k = weight("kernel", 0, want);
    if (theano_) k = flip_spatial(k, nd);
    w = conv_kernel_to_oihw(k);
    cout = filters;
    group = groups;
  }

  // pads
  std::vector<int64_t> pb(static_cast<size_t>(nd)), pe(static_cast<size_t>(nd)), outpad(static_cast<size_t>(nd), 0);
  int cur = xv;
  if (transpose_conv) {
    std::vector<int64_t> op(static_cast<size_t>(nd), -1);
    if (has("output_padding")) op = tuple("output_padding", nd, 0);
    for (int q = 0; q < nd; ++q) {
      size_t u = static_cast<size_t>(q);
      int64_t out = deconv_length(xs[u + 2], ks[u], st[u], padding, op[u], dil[u]);
      if (out < 1) fail("padding", "transposed convolution output would be empty");
      auto tp = conv_transpose_pads(xs[u + 2], ks[u], st[u], dil[u], out, theano_, padding);
      pb[u] = tp.pads.begin;
      pe[u] = tp.pads.end;
      outpad[u] = tp.output_padding;
    }
  } else {
    for (int q = 0; q < nd; ++q) {
      size_t u = static_cast<size_t>(q);
      int64_t in = xs[u + 2];
      if (padding == "same") {
        Pads p = theano_ ? theano_same_conv_pads(in, ks[u], st[u], dil[u]) : tf_same_pads(in, ks[u], st[u], dil[u]);
        pb[u] = p.begin;
        pe[u] = p.end;
      } else if (padding == "causal") {
        pb[u] = effective_kernel(ks[u], dil[u]) - 1;
        pe[u] = 0;
      } else {
        pb[u] = pe[u] = 0;
      }
    }
  }
  Attributes a;
  a.set("kernel_shape", ks);
  a.set("strides", separable ? std::vector<int64_t>(static_cast<size_t>(nd), 1) : st);
  std::vector<int64_t> pads = pb;
  pads.insert(pads.end(), pe.begin(), pe.end());
  a.set("dilations", dil);
  if (group != 1) a.set("group", group);
  std::string act = s("activation", "linear");
  bool has_act = !(act == "linear" || act.empty());
  if (separable) {
    // depthwise part carries stride/dilation/pads; pointwise 1x1 carries the bias
    Attributes da = a;
    da.set("strides", st);
    da.set("pads", pads);
    int dwv = node("Conv", {cur, cst("depthwise_kernel", w)}, da);
    int64_t filters = i("filters", -1);
    if (filters < 1) fail("filters", "filters must be >= 1");
    Shape want(static_cast<size_t>(nd), 1);
    want.push_back(cin * dm);
    want.push_back(filters);
    Tensor pk = conv_kernel_to_oihw(weight("pointwise_kernel", 1, want));
    std::vector<int> ins{dwv, cst("pointwise_kernel", pk)};
    if (use_bias) ins.push_back(cst("bias", weight("bias", 2, {filters})));
    expect_weight_count(use_bias ? 3 : 2);
    Attributes pa;
    pa.set("kernel_shape", std::vector<int64_t>(static_cast<size_t>(nd), 1));
    pa.set("strides", std::vector<int64_t>(static_cast<size_t>(nd), 1));
    pa.set("pads", std::vector<int64_t>(static_cast<size_t>(2 * nd), 0));
    int y = node("Conv", ins, pa, !has_act);
    KT out = cf_out(y, cl);
    if (has_act) out.v = activation(out, act, true);
    return out;
  }
  a.set("pads", pads);
  if (transpose_conv && std::any_of(outpad.begin(), outpad.end(), [](int64_t v) { return v != 0; }))
    a.set("output_padding", outpad);
  std::vector<int> ins{cur, cst(depthwise ? "depthwise_kernel" : "kernel", w)};
  if (use_bias) ins.push_back(cst("bias", weight("bias", 1, {cout})));
  expect_weight_count(use_bias ? 2 : 1);
  int y = node(transpose_conv ? "ConvTranspose" : "Conv", ins, a, !has_act);
  KT out = cf_out(y, cl);
  if (has_act) out.v = activation(out, act, true);
  return out;
}

KT Translator::pool(const KT& x, int nd, bool max) {
  bool cl = channels_last();
  if (rank(x.v) != nd + 2) fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  int xv = as_cf(x, cl);
  Shape xs = shape(xv);
  const char* pk = has("pool_size") ? "pool_size" : "pool_length";
  auto ks = tuple(pk, nd, 2);
  std::vector<int64_t> st = ks;
  if (has("strides")) st = tuple("strides", nd, 1);
  else if (has("stride")) st = tuple("stride", nd, 1);
  for (int q = 0; q < nd; ++q)
    if (ks[static_cast<size_t>(q)] < 1 || st[static_cast<size_t>(q)] < 1) fail("pool_size", "pool sizes and strides must be >= 1");
  std::string padding = s("padding", "valid");
  std::vector<int64_t> pads(static_cast<size_t>(2 * nd), 0);
  if (padding == "same") {
    for (int q = 0; q < nd; ++q) {
      size_t u = static_cast<size_t>(q);
      Pads p = theano_ ? theano_same_pool_pads(xs[u + 2], ks[u], st[u]) : tf_same_pads(xs[u + 2], ks[u], st[u]);
      pads[u] = p.begin;
      pads[u + static_cast<size_t>(nd)] = p.end;
    }
  } else if (padding != "valid") {
    fail("padding", "unsupported padding '" + padding + "'");
  }
  Attributes a;
  a.set("kernel_shape", ks);
  a.set("strides", st);
  a.set("pads", pads);
  if (!max) a.set("count_include_pad", int64_t{0});  // Keras: padded cells never count
  int y = node(max ? "MaxPool" : "AveragePool", {xv}, a, true);
  return cf_out(y, cl);
}

KT Translator::global_pool(const KT& x, int nd, bool max) {
  bool cl = channels_last();
  if (rank(x.v) != nd + 2) fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  int xv = as_cf(x, cl);
  bool keep = b("keepdims", false);
  int y = node(max ? "GlobalMaxPool" : "GlobalAveragePool", {xv}, {}, keep);
  if (keep) return cf_out(y, cl);
  Shape ys = shape(y);
  return KT{node("Reshape", {y, i64s("shape", {ys[0], ys[1]})}, {}, true), {}};
}

KT Translator::dense(const KT& x) {
  int64_t units = i("units", i("output_dim", -1));
  if (units < 1) fail("units", "units must be >= 1");
  int xv = as_source(x);
  Shape xs = shape(xv);
  if (xs.size() < 2) fail("input", "Dense needs a rank >= 2 input");
  int64_t in = xs.back();
  bool use_bias = b("use_bias", true);
  Tensor k = dense_kernel_to_gemm(weight("kernel", 0, {in, units}));
  std::string act = s("activation", "linear");
  bool has_act = !(act == "linear" || act.empty());
  int y;
  if (xs.size() == 2) {
    std::vector<int> ins{xv, cst("kernel", k)};
    if (use_bias) ins.push_back(cst("bias", weight("bias", 1, {units})));
    y = node("Gemm", ins, {}, !has_act);
  } else {
    y = node("MatMul", {xv, cst("kernel", k)}, {}, !has_act && !use_bias);
    if (use_bias) y = node("Add", {y, cst("bias", weight("bias", 1, {units}))}, {}, !has_act);
  }
  expect_weight_count(use_bias ? 2 : 1);
  KT out{y, {}};
  if (has_act) out.v = activation(out, act, true);
  return out;
}

KT Translator::batchnorm(const KT& x) {
  int r = rank(x.v);
  std::vector<int64_t> axes;
  if (has("axis")) {
    if (C()["axis"].is_array()) {
      for (const auto& e : C()["axis"]) {
        if (!e.is_number_integer()) fail("axis", "expected integers");
        axes.push_back(e.get<int64_t>());
      }
    } else {
      axes.push_back(i("axis", -1));
    }
  } else {
    axes.push_back(-1);
  }
  if (axes.size() != 1) fail("axis", "BatchNormalization over several axes is not supported");
  int ax = canon_axis(x, axes[0]);
  int64_t c = shape(x.v)[static_cast<size_t>(ax)];
  double eps = f("epsilon", 1e-3);
  bool center = b("center", true), scale = b("scale", true);
  int pos = 0;
  Tensor gamma, beta;
  if (scale) gamma = weight("gamma", pos++, {c});
  if (center) beta = weight("beta", pos++, {c});
  Tensor mean = weight("moving_mean", pos++, {c});
  Tensor var = weight("moving_variance", pos++, {c});
  expect_weight_count(static_cast<size_t>(pos));
  if (!scale) gamma = Tensor::from_vector<float>({c}, std::vector<float>(static_cast<size_t>(c), 1.f));
  if (!center) beta = Tensor::from_vector<float>({c}, std::vector<float>(static_cast<size_t>(c), 0.f));
  if (r < 2) fail("input", "BatchNormalization needs a rank >= 2 input");
  // The canonical BatchNormalization normalizes axis 1: when the Keras axis is elsewhere in
  // the canonical layout, view the tensor with that axis moved to position 1 (an explicit
  // Transpose) and record the permutation back to Keras's layout in the output.
  KT in = x;
  int xv = x.v;
  if (ax != 1) {
    int64_t sa = axes[0] < 0 ? axes[0] + r : axes[0];
    if (sa == 0) fail("axis", "BatchNormalization over the batch axis is not supported");
    std::vector<int> q{0, static_cast<int>(sa)};
    for (int k = 1; k < r; ++k)
      if (k != sa) q.push_back(k);
    xv = view(x, q);
    in.perm = inverse_perm(q);
    if (is_identity(in.perm)) in.perm.clear();
  }
  Attributes a;
  a.set("epsilon", eps);
  int y = node("BatchNormalization",
               {xv, cst("gamma", gamma), cst("beta", beta), cst("moving_mean", mean), cst("moving_variance", var)}, a,
               true);
  return KT{y, in.perm};
}

KT Translator::merge(const std::vector<KT>& ins, const std::string& op) {
  if (ins.size() < 2 && op != "Average") fail("inputs", "a merge layer needs at least 2 inputs");
  if (ins.empty()) fail("inputs", "a merge layer needs inputs");
  // Put every input in the first input's canonical layout.
  const KT& f0 = ins[0];
  std::vector<int> vs;
  for (const auto& t : ins) {
    if (rank(t.v) != rank(f0.v)) fail("inputs", "merge inputs have different ranks");
    vs.push_back(f0.perm.empty() ? as_source(t) : view(t, inverse_perm(f0.perm)));
  }
  int y;
  if (op == "Sub") {
    if (vs.size() != 2) fail("inputs", "Subtract needs exactly 2 inputs");
    y = node("Sub", vs, {}, true);
  } else if (op == "Max" || op == "Min") {
    y = node(op, vs, {}, true);
  } else if (op == "Average") {
    int acc = vs[0];
    for (size_t k = 1; k < vs.size(); ++k) acc = node("Add", {acc, vs[k]});
    y = node("Mul", {acc, scalar("inv_count", static_cast<float>(1.0 / static_cast<double>(vs.size())))}, {}, true);
  } else {
    int acc = vs[0];
    for (size_t k = 1; k < vs.size(); ++k) acc = node(op, {acc, vs[k]}, {}, k + 1 == vs.size());
    y = acc;
  }
  return KT{y, f0.perm};
}

KT Translator::pad_or_crop(const KT& x, int nd, bool crop) {
  bool cl = channels_last();
  int r = rank(x.v);
  if (r != nd + 2) fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  const char* key = crop ? "cropping" : "padding";
  // normalize to nd (begin, end) pairs
  std::vector<std::pair<int64_t, int64_t>> pr(static_cast<size_t>(nd), {crop ? 0 : 1, crop ? 0 : 1});
  if (has(key)) {
    const json& j = C()[key];
    auto as_int = [&](const json& e) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > (int64_t{1} << 24))
        fail(key, "bad value " + j.dump());
      return e.get<int64_t>();
    };
    if (j.is_number_integer()) {
      for (auto& p : pr) p = {as_int(j), as_int(j)};
    } else if (j.is_array() && static_cast<int>(j.size()) == nd) {
      for (int q = 0; q < nd; ++q) {
        const json& e = j[static_cast<size_t>(q)];
        if (e.is_number_integer()) pr[static_cast<size_t>(q)] = {as_int(e), as_int(e)};
        else if (e.is_array() && e.size() == 2) pr[static_cast<size_t>(q)] = {as_int(e[0]), as_int(e[1])};
        else fail(key, "bad value " + j.dump());
      }
    } else if (j.is_array() && nd == 1 && j.size() == 2) {
      pr[0] = {as_int(j[0]), as_int(j[1])};
    } else {
      fail(key, "bad value " + j.dump());
    }
  }
  // Keras spatial axis q is source axis (cl ? 1+q : 2+q); map to canonical.
  if (crop) {
    std::vector<int64_t> starts, ends, axes;
    Shape ss = src_shape(x);
    for (int q = 0; q < nd; ++q) {
      int sa = cl ? 1 + q : 2 + q;
      int64_t n = ss[static_cast<size_t>(sa)];
      auto [b0, e0] = pr[static_cast<size_t>(q)];
      if (b0 + e0 >= n) fail(key, "cropping removes the whole axis");
      starts.push_back(b0);
      ends.push_back(n - e0);
      axes.push_back(canon_axis(x, sa));
    }
    int y = node("Slice", {x.v, i64s("starts", starts), i64s("ends", ends), i64s("axes", axes)}, {}, true);
    return KT{y, x.perm};
  }
  std::vector<int64_t> pads(static_cast<size_t>(2 * r), 0);
  for (int q = 0; q < nd; ++q) {
    int ca = canon_axis(x, cl ? 1 + q : 2 + q);
    pads[static_cast<size_t>(ca)] = pr[static_cast<size_t>(q)].first;
    pads[static_cast<size_t>(ca + r)] = pr[static_cast<size_t>(q)].second;
  }
  Attributes a;
  a.set("mode", std::string("constant"));
  int y = node("Pad", {x.v, i64s("pads", pads)}, a, true);
  return KT{y, x.perm};
}

KT Translator::upsample(const KT& x, int nd) {
  bool cl = channels_last();
  if (rank(x.v) != nd + 2) fail("input", "expects a rank-" + std::to_string(nd + 2) + " input");
  int xv = as_cf(x, cl);
  std::vector<int64_t> size = nd == 1 ? std::vector<int64_t>{i("size", 2)} : tuple("size", nd, 2);
  for (int64_t v : size)
    if (v < 1 || v > 4096) fail("size", "bad upsampling size");
  std::string interp = s("interpolation", "nearest");
  Attributes a;
  if (interp == "nearest") {
    a.set("mode", std::string("nearest"));
    a.set("coordinate_transformation_mode", std::string("asymmetric"));
    a.set("nearest_mode", std::string("floor"));
  } else if (interp == "bilinear") {
    a.set("mode", std::string("linear"));
    // Keras 2 (TF1 resize_bilinear, align_corners=False) and Theano's bilinear_upsampling both
    // sample at dst/scale (asymmetric); tf.keras >= 2.4 and Keras 3 use half-pixel centers.
    a.set("coordinate_transformation_mode", std::string(tf_keras_ ? "half_pixel" : "asymmetric"));
  } else {
    fail("interpolation", "unsupported interpolation '" + interp + "'");
  }
  // integer sizes (not float scales): exact, and not counted as parameters by summary()
  Shape xs = shape(xv);
  std::vector<int64_t> sizes{xs[0], xs[1]};
  for (size_t q = 0; q < size.size(); ++q) sizes.push_back(xs[q + 2] * size[q]);
  int roi = cst("roi", Tensor::from_vector<float>({0}, {}));
  int sc = cst("scales", Tensor::from_vector<float>({0}, {}));
  int y = node("Resize", {xv, roi, sc, i64s("sizes", sizes)}, a, true);
  return cf_out(y, cl);
}

std::vector<KT> Translator::call_layer(const LayerDef& l, const std::vector<KT>& ins, int node_index) {
  const std::string& c = l.cls;
  auto one = [&]() -> const KT& {
    if (ins.size() != 1) fail("inputs", c + " takes one input, found " + std::to_string(ins.size()));
    return ins[0];
  };
  auto single = [](KT t) { return std::vector<KT>{std::move(t)}; };

  if (!is_known_class(c)) {
    if (auto op = mapped_source_op("keras", c)) {
      Attributes a;
      for (auto it = C().begin(); it != C().end(); ++it) {
        const json& v = it.value();
        if (it.key() == "name" || it.key() == "trainable" || it.key() == "dtype") continue;
        if (v.is_number_integer()) a.set(it.key(), v.get<int64_t>());
        else if (v.is_number_float()) a.set(it.key(), v.get<double>());
        else if (v.is_string()) a.set(it.key(), v.get<std::string>());
        else if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number_integer(); }))
          a.set(it.key(), v.get<std::vector<int64_t>>());
        else if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_number(); }))
          a.set(it.key(), v.get<std::vector<double>>());
        else if (v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); }))
          a.set(it.key(), v.get<std::vector<std::string>>());
      }
      std::vector<int> vs;
      for (const auto& t : ins) vs.push_back(as_source(t));
      // drop attributes the op does not declare (validate would reject them)
      if (const OpDef* def = OpRegistry::global().find(*op)) {
        Attributes kept;
        for (const auto& [k, v] : a.all())
          if (std::any_of(def->attrs.begin(), def->attrs.end(), [&](const AttrSpec& s) { return s.name == k; })) kept.set(k, v);
        a = kept;
      }
      return single(KT{node(*op, vs, a, true), {}});
    }
    std::string reason = c == "Lambda" ? "Lambda layers hold Python code and cannot be imported; map the layer "
                                         "with anvil::map_source_op(\"keras\", \"Lambda\", op) or rebuild it"
                                       : "unsupported layer class";
    unsupported.push_back({cur_.name, c, reason});
    // keep going so that every unsupported layer is listed; what depends on it is skipped
    if (ins.empty()) fail("inputs", "unsupported layer without inputs");
    KT p = ins[0];
    p.poisoned = true;
    return std::vector<KT>{p};
  }

  if (c == "Conv1D" || c == "Convolution1D") return single(conv(one(), 1, false, false, false));
  if (c == "Conv2D" || c == "Convolution2D") return single(conv(one(), 2, false, false, false));
  if (c == "Conv3D") return single(conv(one(), 3, false, false, false));
  if (c == "DepthwiseConv2D") return single(conv(one(), 2, false, true, false));
  if (c == "SeparableConv2D" || c == "SeparableConvolution2D") return single(conv(one(), 2, false, false, true));
  if (c == "Conv2DTranspose" || c == "Deconvolution2D") return single(conv(one(), 2, true, false, false));
  if (c == "Conv1DTranspose") return single(conv(one(), 1, true, false, false));
  if (c == "MaxPooling1D" || c == "MaxPool1D") return single(pool(one(), 1, true));
  if (c == "MaxPooling2D" || c == "MaxPool2D") return single(pool(one(), 2, true));
  if (c == "MaxPooling3D") return single(pool(one(), 3, true));
  if (c == "AveragePooling1D" || c == "AvgPool1D") return single(pool(one(), 1, false));
  if (c == "AveragePooling2D" || c == "AvgPool2D") return single(pool(one(), 2, false));
  if (c == "AveragePooling3D") return single(pool(one(), 3, false));
  if (c == "GlobalAveragePooling1D" || c == "GlobalAvgPool1D") return single(global_pool(one(), 1, false));
  if (c == "GlobalAveragePooling2D" || c == "GlobalAvgPool2D") return single(global_pool(one(), 2, false));
  if (c == "GlobalMaxPooling1D" || c == "GlobalMaxPool1D") return single(global_pool(one(), 1, true));
  if (c == "GlobalMaxPooling2D" || c == "GlobalMaxPool2D") return single(global_pool(one(), 2, true));
  if (c == "Dense") return single(dense(one()));
  if (c == "BatchNormalization") return single(batchnorm(one()));
  if (c == "Activation") {
    const KT& x = one();
    std::string act = s("activation", "linear");
    if (act == "softmax" && has("axis")) {}  // (Activation has no axis in Keras)
    return single(KT{activation(x, act, true), x.perm});
  }
  if (c == "ReLU") {
    const KT& x = one();
    bool has_max = has("max_value");
    double mv = f("max_value", 0);
    double slope = f("negative_slope", 0), thr = f("threshold", 0);
    if (!has_max && slope == 0 && thr == 0) return single(KT{node("Relu", {x.v}, {}, true), x.perm});
    return single(KT{relu_general(x.v, mv, has_max, slope, thr, true), x.perm});
  }
  if (c == "LeakyReLU") {
    const KT& x = one();
    Attributes a;
    a.set("alpha", f("alpha", f("negative_slope", 0.3)));
    return single(KT{node("LeakyRelu", {x.v}, a, true), x.perm});
  }
  if (c == "ELU") {
    const KT& x = one();
    Attributes a;
    a.set("alpha", f("alpha", 1.0));
    return single(KT{node("Elu", {x.v}, a, true), x.perm});
  }
  if (c == "ThresholdedReLU") {
    const KT& x = one();
    Attributes a;
    a.set("alpha", f("theta", 1.0));
    return single(KT{node("ThresholdedRelu", {x.v}, a, true), x.perm});
  }
  if (c == "Softmax") {
    const KT& x = one();
    int64_t ax = -1;
    if (has("axis")) {
      if (C()["axis"].is_array()) {
        if (C()["axis"].size() != 1 || !C()["axis"][0].is_number_integer()) fail("axis", "Softmax over several axes is not supported");
        ax = C()["axis"][0].get<int64_t>();
      } else {
        ax = i("axis", -1);
      }
    }
    Attributes a;
    a.set("axis", static_cast<int64_t>(canon_axis(x, ax)));
    return single(KT{node("Softmax", {x.v}, a, true), x.perm});
  }
  if (c == "PReLU") {
    const KT& x = one();
    Shape ss = src_shape(x);
    Shape ash(ss.begin() + 1, ss.end());
    if (has("shared_axes") && !C()["shared_axes"].is_null()) {
      const json& j = C()["shared_axes"];
      std::vector<int64_t> axes;
      if (j.is_number_integer()) axes.push_back(j.get<int64_t>());
      else if (j.is_array()) for (const auto& e : j) { if (!e.is_number_integer()) fail("shared_axes", "expected integers"); axes.push_back(e.get<int64_t>()); }
      for (int64_t a : axes) {
        if (a < 1 || a >= static_cast<int64_t>(ss.size())) fail("shared_axes", "axis out of range");
        ash[static_cast<size_t>(a - 1)] = 1;
      }
    }
    Tensor alpha = weight("alpha", 0, ash);
    expect_weight_count(1);
    Shape full{1};
    full.insert(full.end(), ash.begin(), ash.end());
    Tensor ac = const_to_canon(x, alpha.reshaped(full));
    return single(KT{node("PRelu", {x.v, cst("alpha", ac)}, {}, true), x.perm});
  }
  if (c == "ZeroPadding1D") return single(pad_or_crop(one(), 1, false));
  if (c == "ZeroPadding2D") return single(pad_or_crop(one(), 2, false));
  if (c == "Cropping1D") return single(pad_or_crop(one(), 1, true));
  if (c == "Cropping2D") return single(pad_or_crop(one(), 2, true));
  if (c == "UpSampling1D") return single(upsample(one(), 1));
  if (c == "UpSampling2D") return single(upsample(one(), 2));
  if (c == "Flatten") {
    const KT& x = one();
    int r = rank(x.v);
    bool cl = channels_last();
    int xv;
    if (!cl && r >= 3) {
      // Keras: Flatten(data_format="channels_first") moves channels last before flattening
      // (so that the Dense weights are portable across data formats).
      std::vector<int> q{0};
      for (int k = 2; k < r; ++k) q.push_back(k);
      q.push_back(1);
      xv = view(x, q);
    } else {
      xv = as_source(x);
    }
    Attributes a;
    a.set("axis", int64_t{1});
    return single(KT{node("Flatten", {xv}, a, true), {}});
  }
  if (c == "Reshape") {
    const KT& x = one();
    int xv = as_source(x);
    Shape xs = shape(xv);
    if (!has("target_shape") || !C()["target_shape"].is_array()) fail("target_shape", "missing target_shape");
    std::vector<int64_t> ts{xs[0]};
    int64_t known = 1;
    int neg = -1;
    for (const auto& e : C()["target_shape"]) {
      if (!e.is_number_integer()) fail("target_shape", "expected integers");
      int64_t v = e.get<int64_t>();
      if (v == -1) {
        if (neg >= 0) fail("target_shape", "more than one -1");
        neg = static_cast<int>(ts.size());
        ts.push_back(-1);
        continue;
      }
      if (v < 1 || v > kMaxTensorElements) fail("target_shape", "bad dimension " + std::to_string(v));
      if (known > kMaxTensorElements / v) fail("target_shape", "hostile size");
      known *= v;
      ts.push_back(v);
    }
    int64_t total = 1;
    for (size_t k = 1; k < xs.size(); ++k) total *= xs[k];
    if (neg >= 0) {
      if (known == 0 || total % known != 0) fail("target_shape", "cannot reshape " + shape_str(xs) + " to " + C()["target_shape"].dump());
      ts[static_cast<size_t>(neg)] = total / known;
    } else if (known != total) {
      fail("target_shape", "cannot reshape " + shape_str(xs) + " to " + C()["target_shape"].dump());
    }
    return single(KT{node("Reshape", {xv, i64s("shape", ts)}, {}, true), {}});
  }
  if (c == "Permute") {
    const KT& x = one();
    if (!has("dims") || !C()["dims"].is_array()) fail("dims", "missing dims");
    std::vector<int> q{0};
    for (const auto& e : C()["dims"]) {
      if (!e.is_number_integer()) fail("dims", "expected integers");
      q.push_back(e.get<int>());
    }
    int r = rank(x.v);
    std::vector<int> chk = q;
    std::sort(chk.begin(), chk.end());
    if (static_cast<int>(q.size()) != r || !is_identity(chk)) fail("dims", "dims must be a permutation of 1.." + std::to_string(r - 1));
    std::vector<int> comp(q.size());
    for (size_t k = 0; k < q.size(); ++k) comp[k] = x.perm.empty() ? q[k] : x.perm[static_cast<size_t>(q[k])];
    Attributes a;
    a.set("perm", std::vector<int64_t>(comp.begin(), comp.end()));
    return single(KT{node("Transpose", {x.v}, a, true), {}});
  }
  if (c == "RepeatVector") {
    const KT& x = one();
    int64_t n = i("n", -1);
    if (n < 1 || n > (int64_t{1} << 24)) fail("n", "bad repeat count");
    int xv = as_source(x);
    Shape xs = shape(xv);
    if (xs.size() != 2) fail("input", "RepeatVector needs a rank-2 input");
    int u = node("Reshape", {xv, i64s("shape", {xs[0], 1, xs[1]})});
    return single(KT{node("Expand", {u, i64s("expand_shape", {xs[0], n, xs[1]})}, {}, true), {}});
  }
  if (c == "Concatenate") {
    if (ins.empty()) fail("inputs", "no inputs");
    int64_t ax = i("axis", -1);
    const KT& f0 = ins[0];
    std::vector<int> vs;
    for (const auto& t : ins) {
      if (rank(t.v) != rank(f0.v)) fail("inputs", "Concatenate inputs have different ranks");
      vs.push_back(f0.perm.empty() ? as_source(t) : view(t, inverse_perm(f0.perm)));
    }
    Attributes a;
    a.set("axis", static_cast<int64_t>(canon_axis(f0, ax)));
    return single(KT{node("Concat", vs, a, true), f0.perm});
  }
  if (c == "Add") return single(merge(ins, "Add"));
  if (c == "Subtract") return single(merge(ins, "Sub"));
  if (c == "Multiply") return single(merge(ins, "Mul"));
  if (c == "Average") return single(merge(ins, "Average"));
  if (c == "Maximum") return single(merge(ins, "Max"));
  if (c == "Minimum") return single(merge(ins, "Min"));
  if (c == "Dot") {
    if (ins.size() != 2) fail("inputs", "Dot takes 2 inputs");
    int a0 = as_source(ins[0]), a1 = as_source(ins[1]);
    int r0 = rank(a0), r1 = rank(a1);
    std::vector<int64_t> axes;
    const json& j = C().value("axes", json(-1));
    if (j.is_number_integer()) axes = {j.get<int64_t>(), j.get<int64_t>()};
    else if (j.is_array() && j.size() == 2 && j[0].is_number_integer() && j[1].is_number_integer())
      axes = {j[0].get<int64_t>(), j[1].get<int64_t>()};
    else fail("axes", "bad axes " + j.dump());
    if (axes[0] < 0) axes[0] += r0;
    if (axes[1] < 0) axes[1] += r1;
    if (r0 < 2 || r0 > 3 || r1 != r0 || axes[0] < 1 || axes[1] < 1 || axes[0] >= r0 || axes[1] >= r1)
      fail("axes", "Dot supports rank-2 or rank-3 inputs with non-batch axes");
    if (shape(a0)[static_cast<size_t>(axes[0])] != shape(a1)[static_cast<size_t>(axes[1])])
      fail("axes", "Dot axes have different sizes");
    if (b("normalize", false)) {
      auto l2n = [&](int v, int64_t ax) {
        int sq = node("Mul", {v, v});
        Attributes ra;
        ra.set("keepdims", int64_t{1});
        int ss = node("ReduceSum", {sq, i64s("axes", {ax})}, ra);
        ss = node("Max", {ss, scalar("eps", 1e-12f)});
        ss = node("Sqrt", {ss});
        return node("Div", {v, ss});
      };
      a0 = l2n(a0, axes[0]);
      a1 = l2n(a1, axes[1]);
    }
    if (r0 == 2) {
      int m = node("Mul", {a0, a1});
      Attributes ra;
      ra.set("keepdims", int64_t{1});
      return single(KT{node("ReduceSum", {m, i64s("axes", {1})}, ra, true), {}});
    }
    // rank 3: (N, a, b) . (N, c, d) -> contract x axis ax0 with y axis ax1
    Attributes p0, p1;
    int x2 = a0, y2 = a1;
    if (axes[0] == 1) { p0.set("perm", std::vector<int64_t>{0, 2, 1}); x2 = node("Transpose", {a0}, p0); }
    if (axes[1] == 2) { p1.set("perm", std::vector<int64_t>{0, 2, 1}); y2 = node("Transpose", {a1}, p1); }
    return single(KT{node("MatMul", {x2, y2}, {}, true), {}});
  }
  if (c == "Dropout" || c == "SpatialDropout1D" || c == "SpatialDropout2D" || c == "SpatialDropout3D" ||
      c == "GaussianNoise" || c == "GaussianDropout" || c == "AlphaDropout" || c == "ActivityRegularization") {
    const KT& x = one();
    return single(KT{node("Identity", {x.v}, {}, true), x.perm});
  }
  if (c == "Masking") {
    unsupported.push_back({cur_.name, c, "Masking (masks for recurrent layers) is not supported"});
    KT p = one();
    p.poisoned = true;
    return single(p);
  }
  (void)node_index;
  fail("class_name", "internal: unhandled layer class " + c);
}

std::vector<KT> Translator::run_model(const ModelDef& m, const std::vector<KT>* bound, const std::string& prefix,
                                      const std::vector<std::string>& wpath) {
  std::map<std::string, const LayerDef*> by_name;
  for (const auto& l : m.layers) {
    if (by_name.count(l.name)) throw Error("two layers are named '" + l.name + "'", g_.source_file, l.name, "name");
    by_name[l.name] = &l;
  }
  // outputs[(layer, node)] = tensors
  std::map<std::pair<std::string, int>, std::vector<KT>> produced;
  // inputs
  for (size_t k = 0; k < m.inputs.size(); ++k) {
    const Ref& r = m.inputs[k];
    auto it = by_name.find(r.layer);
    if (it == by_name.end()) throw Error("input layer '" + r.layer + "' not found", g_.source_file, r.layer, "input_layers");
    const LayerDef& l = *it->second;
    if (bound) {
      if (k >= bound->size()) throw Error("nested model '" + m.name + "' is called with too few inputs", g_.source_file, prefix, "inputs");
      produced[{l.name, 0}] = {(*bound)[k]};
      continue;
    }
    const json& c = l.config;
    json bis = c.contains("batch_input_shape") ? c["batch_input_shape"] : c.value("batch_shape", json());
    if (!bis.is_array() || bis.empty()) throw Error("input layer has no batch_input_shape", g_.source_file, l.name, "batch_input_shape");
    Shape shp;
    auto ov = opt_.input_shapes.find(l.name);
    for (size_t d = 0; d < bis.size(); ++d) {
      if (bis[d].is_null()) shp.push_back(opt_.default_dim);
      else if (bis[d].is_number_integer() && bis[d].get<int64_t>() >= 0 && bis[d].get<int64_t>() <= kMaxTensorElements)
        shp.push_back(bis[d].get<int64_t>());
      else throw Error("bad input dimension " + bis.dump(), g_.source_file, l.name, "batch_input_shape");
    }
    if (ov != opt_.input_shapes.end()) {
      if (ov->second.size() != shp.size())
        throw Error("input shape override " + shape_str(ov->second) + " has the wrong rank for " + bis.dump(),
                    g_.source_file, l.name, "input_shapes");
      for (size_t d = 0; d < shp.size(); ++d)
        if (!bis[d].is_null() && bis[d].get<int64_t>() != ov->second[d])
          throw Error("input shape override " + shape_str(ov->second) + " contradicts the model's " + bis.dump(),
                      g_.source_file, l.name, "input_shapes");
      shp = ov->second;
    }
    std::string dt = c.value("dtype", json("float32")).is_string() ? c.value("dtype", std::string("float32")) : "float32";
    if (dt != "float32" && dt != "float16" && dt != "float64")
      throw Error("input dtype '" + dt + "' is not supported", g_.source_file, l.name, "dtype");
    if (!bis[0].is_null()) batch_free_ = false;
    int v = g_.add_input(g_.unique_name(l.name), DType::f32, shp);
    Value& val = g_.values[static_cast<size_t>(v)];
    val.prov.framework = "keras";
    val.prov.source_name = l.name;
    check_size(v);
    produced[{l.name, 0}] = {KT{v, {}}};
  }
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
            throw Error("layer '" + l.name + "' takes input from unknown layer '" + r.layer + "'", g_.source_file,
                        prefix + l.name, "inbound_nodes");
          ready = false;
          break;
        }
        if (r.tensor >= static_cast<int>(it->second.size()))
          throw Error("layer '" + l.name + "' takes output " + std::to_string(r.tensor) + " of '" + r.layer +
                          "', which has " + std::to_string(it->second.size()),
                      g_.source_file, prefix + l.name, "inbound_nodes");
        ins.push_back(it->second[static_cast<size_t>(r.tensor)]);
      }
      if (!ready) continue;
      if (ins.empty())
        throw Error("layer '" + l.name + "' has no inputs", g_.source_file, prefix + l.name, "inbound_nodes");
      CallCtx saved = cur_;
      auto saved_w = std::move(weights_);
      bool saved_loaded = weights_loaded_;
      cur_.layer = &l;
      cur_.name = prefix + l.name + (todo[t].node > 0 ? "@" + std::to_string(todo[t].node) : "");
      cur_.wpath = wpath;
      cur_.wpath.push_back(l.name);
      cur_.first_value = static_cast<int>(g_.values.size());
      weights_.clear();
      weights_loaded_ = false;
      std::vector<KT> outs;
      bool poisoned = std::any_of(ins.begin(), ins.end(), [](const KT& k) { return k.poisoned; });
      if (poisoned) {
        // an input comes from an unsupported layer: translate nothing, but list this layer too
        // when it is unsupported itself
        if (!l.nested && !is_known_class(l.cls) && !mapped_source_op("keras", l.cls))
          unsupported.push_back({prefix + l.name, l.cls,
                                 l.cls == "Lambda" ? "Lambda layers hold Python code and cannot be imported"
                                                   : "unsupported layer class"});
        KT p = ins[0];
        p.poisoned = true;
        produced[{l.name, todo[t].node}] = std::vector<KT>(8, p);
        cur_ = saved;
        weights_ = std::move(saved_w);
        weights_loaded_ = saved_loaded;
        done[t] = true;
        --remaining;
        progress = true;
        continue;
      } else if (l.nested) {
        int64_t t0 = acc_trainable_, n0 = acc_non_trainable_;
        bool frozen_nested = l.config.contains("trainable") && l.config["trainable"].is_boolean() &&
                             !l.config["trainable"].get<bool>();
        if (frozen_nested) ++frozen_;
        outs = run_model(*l.nested, &ins, cur_.name + "/", cur_.wpath);
        if (frozen_nested) --frozen_;
        {
          LayerRecord& rec = records[prefix + l.name];
          rec.type = l.cls;
          rec.trainable += acc_trainable_ - t0;
          rec.non_trainable += acc_non_trainable_ - n0;
        }
        cur_ = saved;
        cur_.layer = &l;
        cur_.name = prefix + l.name + (todo[t].node > 0 ? "@" + std::to_string(todo[t].node) : "");
        cur_.first_value = static_cast<int>(g_.values.size());
        // give the nested model's outputs their own values named after the nested layer
        for (auto& o : outs) o.v = node("Identity", {o.v}, {}, true);
      } else {
        outs = call_layer(l, ins, todo[t].node);
      }
      for (size_t k = 0; k < outs.size(); ++k) {
        KT& o = outs[k];
        if (o.poisoned) continue;
        if (o.v < cur_.first_value) o.v = node("Identity", {o.v}, {}, true);  // a fresh value per layer output
        Value& val = g_.values[static_cast<size_t>(o.v)];
        val.prov.framework = "keras";
        val.prov.source_name = cur_.name;
        val.prov.output_index = static_cast<int>(k);
        val.prov.to_source = o.perm;
        int r = static_cast<int>(val.shape.size());
        if (!o.perm.empty()) val.prov.source_layout = layout_name(r, true);
        else if (r >= 3 && (l.config.value("data_format", std::string()) == "channels_first"))
          val.prov.source_layout = layout_name(r, false);
      }
      {
        bool first = !records.count(prefix + l.name) || records[prefix + l.name].type.empty() ||
                     (l.nested && records[prefix + l.name].shapes.empty());
        LayerRecord& rec = records[prefix + l.name];
        rec.type = l.cls;
        if (!l.nested) count_layer_weights(rec);
        record_shapes(rec, outs, first);
      }
      produced[{l.name, todo[t].node}] = outs;
      cur_ = saved;
      weights_ = std::move(saved_w);
      weights_loaded_ = saved_loaded;
      done[t] = true;
      --remaining;
      progress = true;
    }
    if (!progress) {
      std::string names;
      for (size_t t = 0; t < todo.size(); ++t)
        if (!done[t]) names += (names.empty() ? "" : ", ") + todo[t].l->name;
      throw Error("layers whose inputs are never produced (cycle or dangling reference): " + names, g_.source_file,
                  prefix, "inbound_nodes");
    }
  }
  std::vector<KT> outs;
  for (const auto& r : m.outputs) {
    auto it = produced.find({r.layer, r.node});
    if (it == produced.end() || r.tensor >= static_cast<int>(it->second.size()))
      throw Error("model output '" + r.layer + "' is never produced", g_.source_file, r.layer, "output_layers");
    outs.push_back(it->second[static_cast<size_t>(r.tensor)]);
  }
  return outs;
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
          sl.connected_to.push_back(r.layer + "[" + std::to_string(r.node) + "][" + std::to_string(r.tensor) + "]");
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
    for (size_t k = 0; k < r.shapes.size(); ++k) sl.outputs.push_back(k ? l.name + ":" + std::to_string(k) : l.name);
    sl.output_shapes = r.shapes;
    if (r.multiple) sl.shape_text = "multiple";
    sl.trainable_params = r.trainable;
    sl.non_trainable_params = r.non_trainable;
    g_.source_layers.push_back(std::move(sl));
  }
}

// ------------------------------------------------------------------------------------------
// Files

struct Loaded {
  json config;       // the model config ({"class_name", "config"})
  std::unique_ptr<WeightStore> weights;
  std::string backend, keras_version;
  std::string model_file;
};

std::string read_zip_entry(zip_t* z, const std::string& name, const std::string& what) {
  zip_stat_t st;
  if (zip_stat(z, name.c_str(), 0, &st) != 0) throw Error("the .keras archive has no '" + name + "'", what);
  if (!(st.valid & ZIP_STAT_SIZE) || st.size > (uint64_t{4} << 30))
    throw Error("'" + name + "' in the .keras archive is too large", what);
  zip_file_t* zf = zip_fopen(z, name.c_str(), 0);
  if (!zf) throw Error("cannot open '" + name + "' in the .keras archive", what);
  std::string buf(static_cast<size_t>(st.size), '\0');
  zip_int64_t got = st.size ? zip_fread(zf, buf.data(), st.size) : 0;
  zip_fclose(zf);
  if (got < 0 || static_cast<uint64_t>(got) != st.size) throw Error("cannot read '" + name + "' from the .keras archive", what);
  return buf;
}

Loaded load_files(const std::vector<std::string>& files) {
  Loaded L;
  std::string json_file, h5_file, keras_file;
  for (const auto& f : files) {
    std::string e = lower_ext(f);
    if (e == ".json") json_file = f;
    else if (e == ".keras") keras_file = f;
    else if (e == ".h5" || e == ".hdf5") {
      if (h5_file.empty()) h5_file = f;
      else throw Error("give one HDF5 file (and optionally its .json config)", f);
    } else {
      throw Error("not a Keras model file (expected .h5, .hdf5, .keras or .json)", f);
    }
  }
  if (!keras_file.empty()) {
    L.model_file = keras_file;
    int err = 0;
    zip_t* z = zip_open(keras_file.c_str(), ZIP_RDONLY, &err);
    if (!z) throw Error("not a .keras (zip) archive", keras_file);
    std::unique_ptr<zip_t, void (*)(zip_t*)> guard(z, [](zip_t* p) { zip_discard(p); });
    L.config = parse_json(read_zip_entry(z, "config.json", keras_file), keras_file + ":config.json");
    try {
      json meta = parse_json(read_zip_entry(z, "metadata.json", keras_file), keras_file + ":metadata.json");
      L.keras_version = meta.value("keras_version", std::string("3"));
    } catch (const Error&) {
      L.keras_version = "3";
    }
    if (L.keras_version.empty() || L.keras_version[0] != '3') L.keras_version = "3";
    auto h5 = std::make_shared<H5File>(
        H5File::open_image(read_zip_entry(z, "model.weights.h5", keras_file), keras_file + ":model.weights.h5"));
    L.backend = "tensorflow";
    L.weights = std::make_unique<Keras3WeightStore>(h5);
    return L;
  }
  if (h5_file.empty()) throw Error("no HDF5 weights file given with the JSON config", files.front());
  L.model_file = h5_file;
  auto h5 = std::make_shared<H5File>(H5File::open(h5_file));
  if (h5->has_attr("/", "backend")) L.backend = h5->attr_string("/", "backend");
  if (h5->has_attr("/", "keras_version")) L.keras_version = h5->attr_string("/", "keras_version");
  if (!json_file.empty()) {
    L.config = parse_json(read_text_file(json_file), json_file);
    if (L.backend.empty()) L.backend = L.config.value("backend", std::string());
    if (L.keras_version.empty()) L.keras_version = L.config.value("keras_version", std::string());
  } else {
    if (!h5->has_attr("/", "model_config"))
      throw Error("this HDF5 file holds only weights (no model_config attribute); give the model's JSON config too",
                  h5_file, {}, "model_config");
    L.config = parse_json(h5->attr_string("/", "model_config"), h5_file + ":model_config");
  }
  if (h5->is_group("/model_weights") && h5->has_attr("/model_weights", "layer_names")) {
    L.weights = std::make_unique<H5WeightStore>(h5, "model_weights");
    if (h5->has_attr("/model_weights", "backend") && L.backend.empty())
      L.backend = h5->attr_string("/model_weights", "backend");
  } else if (h5->has_attr("/", "layer_names")) {
    L.weights = std::make_unique<H5WeightStore>(h5, "");
  } else if (h5->is_group("/layers") || h5->is_group("/_layer_checkpoint_dependencies")) {
    L.weights = std::make_unique<Keras3WeightStore>(h5);
    if (L.keras_version.empty()) L.keras_version = "3";
  } else {
    throw Error("no Keras weights found (no model_weights group, layer_names attribute or Keras 3 layers group)",
                h5_file, {}, "model_weights");
  }
  return L;
}

}  // namespace

bool accepts(const std::vector<std::string>& files) {
  if (files.empty() || files.size() > 2) return false;
  bool any_h5 = false, any_json = false, any_keras = false;
  for (const auto& f : files) {
    std::string e = lower_ext(f);
    if (e == ".h5" || e == ".hdf5") any_h5 = true;
    else if (e == ".json") any_json = true;
    else if (e == ".keras") any_keras = true;
    else return false;
  }
  if (any_keras) return files.size() == 1;
  if (files.size() == 2) return any_h5 && any_json;
  return any_h5;
}

Graph import_keras(const std::vector<std::string>& files, const ImportOptions& options) {
  Loaded L = load_files(files);
  Graph g;
  g.framework = "keras";
  g.source_file = L.model_file;
  std::string backend = L.backend;
  bool theano = backend == "theano";
  std::shared_ptr<ModelDef> m;
  try {
    m = parse_model(L.config, 0);
  } catch (const Error& e) {
    throw Error(e.message(), e.file().empty() ? L.model_file : e.file(), e.node(), e.field());
  } catch (const json::exception& e) {
    throw Error(std::string("malformed model config: ") + e.what(), L.model_file, {}, "model_config");
  }
  g.name = m->name;
  Translator t(g, *L.weights, options, theano, L.keras_version);
  std::vector<KT> outs;
  try {
    outs = t.run_model(*m, nullptr, "", {});
  } catch (const json::exception& e) {
    throw Error(std::string("malformed layer config: ") + e.what(), L.model_file, {}, "config");
  }
  if (!t.unsupported.empty()) {
    std::string msg = std::to_string(t.unsupported.size()) + " unsupported layer(s): ";
    for (size_t k = 0; k < t.unsupported.size(); ++k) {
      const auto& u = t.unsupported[k];
      msg += (k ? "; " : "") + u.layer + " (" + u.cls + "): " + u.reason;
    }
    throw Error(msg, L.model_file, t.unsupported.front().layer, "class_name");
  }
  for (const auto& o : outs) {
    if (std::find(g.outputs.begin(), g.outputs.end(), o.v) == g.outputs.end()) g.outputs.push_back(o.v);
  }
  t.fill_source_layers(*m, outs);
  return g;
}

namespace {
const struct KerasImporterRegistrar {
  KerasImporterRegistrar() {
    register_importer(Importer{"keras", [](const std::vector<std::string>& f) { return keras::accepts(f); },
                               [](const std::vector<std::string>& f, const ImportOptions& o) {
                                 return keras::import_keras(f, o);
                               }});
  }
} keras_importer_registrar;
}  // namespace

}  // namespace anvil::keras
