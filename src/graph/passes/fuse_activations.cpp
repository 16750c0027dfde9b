#include "graph/passes/passes.h"

namespace anvil::passes {

void fuse_activations(Graph& g, const Protected& protect) {
  (void)g;
  (void)protect;  // TODO(passes helper): fuse activations into Conv/Gemm.
}

}  // namespace anvil::passes
