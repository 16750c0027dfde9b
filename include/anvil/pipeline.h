// The named steps every caller of the library takes with an imported graph (src/runtime/).
// A Session runs prepare_graph() on the graph it is given, then lowers it (graph passes and
// precision) for its backend; `anvil summary` shows graph_with_shapes().
#pragma once

#include "anvil/graph.h"

namespace anvil {

/// prepare: toposort, validate, then fold the constant subgraphs (ONNX Shape -> Reshape
/// chains, frozen inputs), which infers every shape. Throws anvil::Error naming the node.
void prepare_graph(Graph& g);

/// A copy of `g` with every shape known, for display: plain shape inference when that
/// suffices (nothing folded, every node kept), else prepare_graph()'s constant folding with
/// the folded nodes removed. Throws anvil::Error naming the node.
Graph graph_with_shapes(const Graph& g);

}  // namespace anvil
