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
std::string summary(const Graph& g, const SummaryOptions& options = {});

/// Number of parameters (elements of constant inputs) of a node.
int64_t node_parameter_count(const Graph& g, const Node& n);

}  // namespace anvil
