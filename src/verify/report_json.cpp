// report_json(): the verification report as one JSON object, the stable contract for scripts
// (documented in docs/verifying.md). Non-finite numbers are written as null.
#include <cmath>
#include <nlohmann/json.hpp>

#include "anvil/verify.h"

namespace anvil {
namespace {

using json = nlohmann::ordered_json;

json num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

json str_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

}  // namespace

std::string report_json(const VerifyReport& r) {
  json j;
  j["status"] = r.status;
  j["input_check"] = r.input_check;
  j["input_message"] = r.input_message;
  j["first_divergent"] = str_or_null(r.first_divergent);
  j["model"] = r.model;
  j["reference"] = r.reference;
  j["backend"] = r.backend;
  j["precision"] = r.precision;
  j["rtol"] = num(r.rtol);
  j["atol"] = num(r.atol);
  j["criterion"] = r.criterion;
  json layers = json::array();
  for (const auto& l : r.layers) {
    json e;
    e["name"] = l.name;
    e["op"] = l.op;
    e["shape"] = l.shape;
    e["inputs"] = l.inputs;
    e["status"] = l.status;
    const bool checked = l.status != "unchecked" && l.status != "shape";
    e["max_abs"] = checked ? num(l.max_abs) : json(nullptr);
    e["max_rel"] = checked ? num(l.max_rel) : json(nullptr);
    e["cosine"] = checked ? num(l.cosine) : json(nullptr);
    e["scale"] = checked ? num(l.scale) : json(nullptr);
    e["mismatches"] = l.mismatches;
    e["count"] = l.count;
    e["reference_key"] = str_or_null(l.reference_key);
    if (l.status == "shape") e["reference_shape"] = l.reference_shape;
    if (l.first_mismatch >= 0) e["first_mismatch"] = l.first_mismatch;
    if (l.precision_checked) {
      e["precision_rel"] = num(l.precision_rel);
      e["precision_overflow"] = l.precision_overflow;
    }
    layers.push_back(std::move(e));
  }
  j["layers"] = std::move(layers);
  json diag = json::array();
  for (const auto& d : r.diagnosis)
    diag.push_back(json{{"cause", d.cause}, {"layer", d.layer}, {"message", d.message}});
  j["diagnosis"] = std::move(diag);
  j["keep_fp32"] = r.keep_fp32;
  j["suggest_keep_fp32"] = r.suggest_keep_fp32;
  j["unmatched_reference"] = r.unmatched_reference;
  return j.dump(1) + "\n";
}

}  // namespace anvil
