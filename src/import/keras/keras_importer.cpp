// Keras importer driver: reads the files (keras_weights.cpp), parses the model structure
// (keras_model.cpp), translates it layer by layer through the converter table
// (keras_translator.h, layers_*.cpp) and lists every unsupported layer at once.
// See keras_importer.h for the layout and naming contract.
#include "import/keras/keras_importer.h"

#include <algorithm>

#include "anvil/error.h"
#include "core/strings.h"
#include "import/keras/keras_translator.h"

namespace anvil::keras {

bool accepts(const std::vector<std::string>& files) {
  if (files.empty() || files.size() > 2) return false;
  bool any_h5 = false, any_json = false, any_keras = false;
  for (const auto& f : files) {
    if (ends_with_ci(f, ".h5") || ends_with_ci(f, ".hdf5"))
      any_h5 = true;
    else if (ends_with_ci(f, ".json"))
      any_json = true;
    else if (ends_with_ci(f, ".keras"))
      any_keras = true;
    else
      return false;
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
    throw Error(std::string("malformed model config: ") + e.what(), L.model_file, {},
                "model_config");
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
    if (std::find(g.outputs.begin(), g.outputs.end(), o.v) == g.outputs.end())
      g.outputs.push_back(o.v);
  }
  for (int v : t.extra_outputs) g.outputs.push_back(v);  // stateful layers' final states
  t.fill_source_layers(*m, outs);
  return g;
}

namespace {
const struct KerasImporterRegistrar {
  KerasImporterRegistrar() {
    register_importer(Importer{"keras",
                               [](const std::vector<std::string>& f) { return keras::accepts(f); },
                               [](const std::vector<std::string>& f, const ImportOptions& o) {
                                 return keras::import_keras(f, o);
                               }});
  }
} keras_importer_registrar;
}  // namespace

}  // namespace anvil::keras
