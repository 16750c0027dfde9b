// A Keras-like summary table of a graph: one row per node (name, op, output shape in the
// source framework's layout, padding, parameter count) and totals.
#pragma once

#include <string>

#include "anvil/graph.h"

namespace anvil {

struct SummaryOptions {
  bool show_constants = false;  // list weight tensors too
};

/// The table as text (fixed-width columns, ends with "Total params: N").
/// When the importer recorded Graph::source_layers (Keras, Caffe) and constants are not asked
/// for, the table has one row per source layer in the framework's own terms instead: Keras's
/// model.summary() layout ("Layer (type)", "Output Shape" with None for the batch, "Param #",
/// then Total / Trainable / Non-trainable params with thousands separators), or for Caffe the
/// layer (type), top blob(s), NCHW shape(s) and the numbers stored in its blobs.
std::string summary(const Graph& g, const SummaryOptions& options = {});

/// The shape of value `v` in its source framework's layout: its shape permuted by
/// prov.to_source (the canonical shape when to_source is empty, of another rank, or holds an
/// index out of range).
Shape source_shape(const Value& v);

/// Number of parameters (elements of constant inputs) of a node.
int64_t node_parameter_count(const Graph& g, const Node& n);

}  // namespace anvil
