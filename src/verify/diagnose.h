// Diagnosis of a divergent layer (internal; declared for verify.cpp and the unit tests).
//
// Method: the divergent layer (the canonical nodes that make up one source layer) is re-run
// ALONE with the reference's own inputs for it (ours where the reference has none), once as
// imported and once per hypothesis with the hypothesised change applied (a flipped kernel,
// other pads, ...). A hypothesis explains the reference when the changed layer's output then
// matches it (within tolerance, or 100x closer and within 1e-3 relative error).
// Input hypotheses compare our input with the reference's input directly, or, when the
// reference has no input, re-run the first layer on transformed inputs.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/tensor.h"
#include "anvil/verify.h"

namespace anvil::diag {

/// A tensor in the source layout of value `v` -> canonical layout, and back.
Tensor to_canonical(const Value& v, const Tensor& source_layout);
Tensor to_source(const Value& v, const Tensor& canonical);

/// ||got - want||_2 / ||want||_2 (want all zero: ||got||_2); +inf when shapes or element
/// counts differ or got has NaN/Inf where want has none.
double rel_error(const Tensor& got, const Tensor& want);

/// One source layer: its value, the canonical nodes that compute it (graph order) and the
/// values it reads (graph inputs or other layers' values; constants excluded).
struct LayerNodes {
  int value = -1;
  std::vector<int> nodes;
  std::vector<int> inputs;
};
/// `is_layer[v]` marks layer values; walks back from `v` through non-layer values.
LayerNodes layer_nodes(const Graph& g, int v, const std::vector<bool>& is_layer);

/// A layer re-run alone. `g` must have inferred shapes.
struct Probe {
  const Graph* graph = nullptr;
  LayerNodes layer;
  std::map<int, Tensor> inputs;  // canonical tensors for layer.inputs
  Tensor want;                   // the reference, in the source layout of layer.value
  double rtol = 1e-4, atol = 1e-5;
  double before = 0;  // rel_error of the layer as imported (set by init())

  /// Computes `before`. Returns false when the layer cannot be run.
  bool init();
  /// Runs the layer's nodes of `g` (a modified copy of *graph with the same node and value
  /// indices; the layer's shapes are re-inferred) on `ins` (default: inputs); returns the
  /// output in the source layout, or an undefined tensor when it fails.
  Tensor run(const Graph& g, const std::map<int, Tensor>* ins = nullptr) const;
  /// Every value the layer computes (canonical layout), or nullopt when it fails.
  std::optional<std::map<int, Tensor>> run_values(const Graph& g) const;
  /// rel_error of run(g, ins) against want.
  double error_of(const Graph& g, const std::map<int, Tensor>* ins = nullptr) const;
  /// Whether an error `after` explains the reference: within tolerance, or both below 1e-3
  /// and 100x smaller than `before`.
  bool explains(double after, const Tensor* got = nullptr) const;
};

/// A hypothesis' verdict: the cause, a message, and the error it leaves.
struct Finding {
  Diagnosis diagnosis;
  double after = 0;
};

// --- input hypotheses, our input against the reference's input (source layout) -------------
/// `layout` is the input's source layout ("NHWC", "NCHW", ...; empty: guessed from rank and
/// `channels_last`). Each returns a finding when the transformation makes ours equal theirs.
std::optional<Finding> input_channel_order(const std::string& name, const Tensor& ours,
                                           const Tensor& ref, bool channels_last, double rtol,
                                           double atol);
std::optional<Finding> input_scale(const std::string& name, const Tensor& ours, const Tensor& ref,
                                   bool channels_last, double rtol, double atol);
std::optional<Finding> input_mean(const std::string& name, const Tensor& ours, const Tensor& ref,
                                  bool channels_last, double rtol, double atol);
std::optional<Finding> input_layout(const std::string& name, const Tensor& ours, const Tensor& ref,
                                    bool channels_last, double rtol, double atol);
/// All four, best first.
std::vector<Finding> diagnose_input(const std::string& name, const Tensor& ours, const Tensor& ref,
                                    bool channels_last, double rtol, double atol);

// --- layer hypotheses (each re-runs the probe's layer with one change) ----------------------
/// `input_value`: the graph input the layer reads (for input transforms; -1: none).
std::optional<Finding> probe_input_transforms(const Probe& p, int input_value, bool channels_last);
std::optional<Finding> weights_flipped(const Probe& p);
std::optional<Finding> weights_transposed(const Probe& p);
std::optional<Finding> padding(const Probe& p);
std::optional<Finding> pooling_rounding(const Probe& p);
std::optional<Finding> flatten_order(const Probe& p);
std::optional<Finding> batchnorm_epsilon(const Probe& p);

/// Every layer hypothesis on the probe; the findings that explain the reference, best first.
std::vector<Finding> diagnose_layer(const Probe& p, int input_value, bool channels_last);

/// Whether a layout string / framework means channels-last for a value.
bool channels_last_of(const Graph& g, const Value& v);

}  // namespace anvil::diag
