// Importers: one per format, each turning model files into a Graph.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "anvil/graph.h"

namespace anvil {

struct ImportOptions {
  /// Overrides or fills in input shapes (by input name), e.g. for a dynamic batch.
  std::map<std::string, Shape> input_shapes;
  /// Default for dynamic/unknown dimensions (batch) when not given above.
  int64_t default_dim = 1;
  /// Quantized models (TFLite int8/uint8/int16): add a dequantization of each quantized
  /// graph output, so outputs come back as float32 (scale * (q - zero_point)). Default: outputs
  /// keep their stored integer dtype.
  bool dequantize_outputs = false;
};

/// Imports a model from its file(s), choosing the importer by the files' names and contents.
/// Throws anvil::Error naming the file and node on any problem; unsupported ops are listed
/// all at once.
Graph import_model(const std::vector<std::string>& files, const ImportOptions& options = {});

/// One format's importer. Importers register themselves (see src/import/<format>/).
struct Importer {
  std::string name;  // "onnx", "keras", ...
  /// True when this importer recognises these files.
  std::function<bool(const std::vector<std::string>& files)> accepts;
  std::function<Graph(const std::vector<std::string>& files, const ImportOptions&)> load;
};
void register_importer(Importer importer);
std::vector<std::string> importer_names();

}  // namespace anvil
