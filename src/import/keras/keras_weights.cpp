// Keras weight stores and file loading (see keras_weights.h).
#include "import/keras/keras_weights.h"

#include <zip.h>

#include <set>
#include <sstream>

#include "anvil/error.h"
#include "core/file_io.h"
#include "core/strings.h"
#include "import/keras/hdf5_file.h"

namespace anvil::keras {

namespace {

json parse_json(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(std::string("invalid JSON: ") + e.what(), what);
  }
}

std::string short_weight_name(const std::string& full) {
  std::string s = full;
  if (auto slash = s.rfind('/'); slash != std::string::npos) s = s.substr(slash + 1);
  if (auto colon = s.rfind(':'); colon != std::string::npos) s = s.substr(0, colon);
  return s;
}

// Keras 2 / tf.keras HDF5: group with attr layer_names; per layer attr weight_names.
class H5WeightStore : public WeightStore {
 public:
  H5WeightStore(std::shared_ptr<H5File> f, std::string root)
      : f_(std::move(f)), root_(std::move(root)) {
    if (!f_->has_attr(root_, "layer_names"))
      throw Error("weights group '" + (root_.empty() ? std::string("/") : root_) +
                      "' has no layer_names attribute",
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
        std::string dir =
            full.substr(0, full.rfind('/') == std::string::npos ? 0 : full.rfind('/'));
        std::vector<std::string> parts;
        std::stringstream ss(dir);
        std::string p;
        bool hit = false;
        while (std::getline(ss, p, '/')) hit |= (p == inner);
        if (!hit) continue;
      }
      std::string ds = g + "/" + full;
      if (!f_->is_dataset(ds))
        throw Error("weight '" + full + "' listed in weight_names is missing from the file",
                    f_->what(), path.back(), full);
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
      if (!f_->is_group(g + "/vars") && !has_sublayer(g)) continue;
      collect(g, path.back(), r, 0);
      return r;
    }
    return r;
  }

 private:
  // Sub-layers a layer saves under its own group, in weight order: a recurrent layer's cell,
  // a Bidirectional's forward then backward layer, a TimeDistributed's layer.
  static constexpr const char* kSublayers[] = {"cell", "forward_layer", "backward_layer", "layer"};
  bool has_sublayer(const std::string& g) const {
    for (const char* s : kSublayers)
      if (f_->is_group(g + "/" + s)) return true;
    return false;
  }
  void collect(const std::string& g, const std::string& layer, std::vector<NamedWeight>& r,
               int depth) {
    std::string vars = g + "/vars";
    if (f_->is_group(vars)) {
      auto kids = f_->children(vars);
      for (size_t i = 0; i < kids.size(); ++i) {
        std::string ds = vars + "/" + std::to_string(i);
        if (!f_->is_dataset(ds))
          throw Error("weight 'vars/" + std::to_string(i) + "' is missing", f_->what(), layer, ds);
        NamedWeight w;
        w.full = ds;
        w.name = "";  // by position
        try {
          w.value = f_->read_f32(ds);
        } catch (const Error& e) {
          throw Error(e.message(), f_->what(), layer, ds);
        }
        r.push_back(std::move(w));
      }
    }
    if (depth < 3)
      for (const char* s : kSublayers)
        if (f_->is_group(g + "/" + s)) collect(g + "/" + s, layer, r, depth + 1);
  }

  std::shared_ptr<H5File> f_;
};

std::string read_zip_entry(zip_t* z, const std::string& name, const std::string& what) {
  zip_stat_t st;
  if (zip_stat(z, name.c_str(), 0, &st) != 0)
    throw Error("the .keras archive has no '" + name + "'", what);
  if (!(st.valid & ZIP_STAT_SIZE) || st.size > (uint64_t{4} << 30))
    throw Error("'" + name + "' in the .keras archive is too large", what);
  zip_file_t* zf = zip_fopen(z, name.c_str(), 0);
  if (!zf) throw Error("cannot open '" + name + "' in the .keras archive", what);
  std::string buf(static_cast<size_t>(st.size), '\0');
  zip_int64_t got = st.size ? zip_fread(zf, buf.data(), st.size) : 0;
  zip_fclose(zf);
  if (got < 0 || static_cast<uint64_t>(got) != st.size)
    throw Error("cannot read '" + name + "' from the .keras archive", what);
  return buf;
}

}  // namespace

Loaded load_files(const std::vector<std::string>& files) {
  Loaded L;
  std::string json_file, h5_file, keras_file;
  for (const auto& f : files) {
    if (ends_with_ci(f, ".json"))
      json_file = f;
    else if (ends_with_ci(f, ".keras"))
      keras_file = f;
    else if (ends_with_ci(f, ".h5") || ends_with_ci(f, ".hdf5")) {
      if (h5_file.empty())
        h5_file = f;
      else
        throw Error("give one HDF5 file (and optionally its .json config)", f);
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
    L.config =
        parse_json(read_zip_entry(z, "config.json", keras_file), keras_file + ":config.json");
    try {
      json meta =
          parse_json(read_zip_entry(z, "metadata.json", keras_file), keras_file + ":metadata.json");
      L.keras_version = meta.value("keras_version", std::string("3"));
    } catch (const Error&) {
      L.keras_version = "3";
    }
    if (L.keras_version.empty() || L.keras_version[0] != '3') L.keras_version = "3";
    auto h5 = std::make_shared<H5File>(H5File::open_image(
        read_zip_entry(z, "model.weights.h5", keras_file), keras_file + ":model.weights.h5"));
    L.backend = "tensorflow";
    L.weights = std::make_unique<Keras3WeightStore>(h5);
    return L;
  }
  if (h5_file.empty())
    throw Error("no HDF5 weights file given with the JSON config", files.front());
  L.model_file = h5_file;
  auto h5 = std::make_shared<H5File>(H5File::open(h5_file));
  if (h5->has_attr("/", "backend")) L.backend = h5->attr_string("/", "backend");
  if (h5->has_attr("/", "keras_version")) L.keras_version = h5->attr_string("/", "keras_version");
  if (!json_file.empty()) {
    L.config = parse_json(read_file(json_file, "a Keras model config (JSON)"), json_file);
    L.model_file = json_file;  // the layers' errors are the config's (weights name their file)
    if (L.backend.empty()) L.backend = L.config.value("backend", std::string());
    if (L.keras_version.empty()) L.keras_version = L.config.value("keras_version", std::string());
  } else {
    if (!h5->has_attr("/", "model_config"))
      throw Error(
          "this HDF5 file holds only weights (no model_config attribute); give the model's JSON "
          "config too",
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
    throw Error(
        "no Keras weights found (no model_weights group, layer_names attribute or Keras 3 layers "
        "group)",
        h5_file, {}, "model_weights");
  }
  return L;
}

}  // namespace anvil::keras
