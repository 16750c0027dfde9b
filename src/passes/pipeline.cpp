#include "passes/passes.h"

namespace anvil::passes {

void optimize(Graph& g, const Protected& protect) {
  fold_constants(g, protect);
  remove_identities(g, protect);
  fuse_layernorm(g, protect);
  fuse_gelu(g, protect);
  fold_transpose_into_gemm(g, protect);
  fold_batchnorm(g, protect);
  fuse_activations(g, protect);
  remove_dead_nodes(g, protect);
  g.compact();
  g.infer_shapes();
}

}  // namespace anvil::passes
