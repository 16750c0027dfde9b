// Keras weights and files: the weight stores (Keras 2 / tf.keras HDF5 with layer_names and
// weight_names; Keras 3 model.weights.h5 by position) and the loader that reads the given
// files (.h5 full model, .json + .h5, .keras zip) into a config and a weight store.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "anvil/tensor.h"
#include "import/keras/keras_model.h"

namespace anvil::keras {

struct NamedWeight {
  std::string name;  // short name: "kernel", "bias", "gamma", ... (or the raw name)
  std::string full;  // as in the file, for messages
  Tensor value;
};

class WeightStore {
 public:
  virtual ~WeightStore() = default;
  /// The weights of a layer; `path` is {layer} or {outer model, ..., layer} for nested models.
  virtual std::vector<NamedWeight> layer(const std::vector<std::string>& path) = 0;
  virtual std::string file() const = 0;
};

/// What the model files give: the model config ({"class_name", "config"}), the weights, the
/// backend and Keras version they were saved with, and the file named in messages.
struct Loaded {
  json config;
  std::unique_ptr<WeightStore> weights;
  std::string backend, keras_version;
  std::string model_file;
};

/// Reads a Keras model from `files` (see keras_importer.h for the accepted forms).
Loaded load_files(const std::vector<std::string>& files);

}  // namespace anvil::keras
