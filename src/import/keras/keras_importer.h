// The Keras importer: Keras 2.x / tf.keras HDF5 full-model files (`model_config` attribute +
// `model_weights` group), the split form (model.to_json() file + save_weights HDF5, in either
// order) and Keras 3 `.keras` zips (config.json + model.weights.h5).
//
// Layout contract (see docs/keras.md and docs/architecture.md, "Layouts and provenance"):
//  - graph inputs are in Keras's own layout (NHWC / NWC for channels_last), as the user feeds
//    them; explicit Transpose nodes bring data to the canonical NCHW where a layer needs it;
//  - every Keras layer's output value carries provenance: framework "keras", source_name =
//    the layer name (for the first call of the layer; a shared layer's k-th call, k > 0, is
//    "<layer>@<k>"), output_index = which output of the layer, to_source = the permutation
//    to Keras's layout (e.g. {0,2,3,1} for a 4-D channels_last tensor held as NCHW) and
//    source_layout ("NHWC", "NWC", ...);
//  - layers inside a nested model are named "<model>/<layer>"; the nested model's own
//    outputs are also tagged with the nested model's layer name;
//  - Node::source_op is the Keras class name of the layer each node comes from;
//  - an input read only by Embedding layers is int32 (token ids), whatever dtype Keras wrote;
//  - a stateful recurrent layer adds graph inputs "<layer>/state_in_<k>" and, after the
//    model's outputs, outputs "<layer>/state_out_<k>" (its states in Keras's order).
#pragma once

#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/import.h"

namespace anvil::keras {

/// True when `files` look like a Keras model (.h5/.hdf5/.keras, or .json + .h5).
bool accepts(const std::vector<std::string>& files);

/// Imports a Keras model; throws anvil::Error (unsupported layers are listed all at once).
Graph import_keras(const std::vector<std::string>& files, const ImportOptions& options = {});

}  // namespace anvil::keras
