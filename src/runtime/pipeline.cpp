#include "anvil/pipeline.h"

#include "anvil/error.h"
#include "passes/passes.h"

namespace anvil {

void prepare_graph(Graph& g) {
  g.toposort();
  g.validate();
  passes::fold_constants(g, {});  // shapes, and constants that shapes depend on
}

Graph graph_with_shapes(const Graph& g) {
  Graph a = g;
  a.toposort();
  a.validate();
  try {
    a.infer_shapes();
    return a;
  } catch (const Error&) {
  }
  Graph b = g;
  b.toposort();
  passes::fold_constants(b, {});
  b.compact();
  return b;
}

}  // namespace anvil
