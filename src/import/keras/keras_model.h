// Keras model structure: the model config JSON (Sequential, functional Model/Functional,
// nested models used as layers; Keras 2 and Keras 3 inbound-node forms) parsed into
// ModelDef / LayerDef, before any translation.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace anvil::keras {

using json = nlohmann::json;

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

/// The "config" object of a layer entry (an empty object when absent).
const json& cfg_of(const json& layer);

/// A string field of a JSON object (`dflt` when absent or null); throws when not a string.
std::string jstr(const json& j, const char* key, const std::string& dflt = {});

/// Parses a model config ({"class_name", "config"}); `depth` counts nesting.
std::shared_ptr<ModelDef> parse_model(const json& model, int depth);

}  // namespace anvil::keras
