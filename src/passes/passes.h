// Graph passes: each a small function Graph -> Graph (in place) that must not change the
// graph's outputs. `protect` names values (canonical names) that must survive with their
// values unchanged: graph outputs are always protected, taps are added by the Session.
#pragma once

#include <set>
#include <string>

#include "anvil/graph.h"

namespace anvil::passes {

using Protected = std::set<std::string>;

/// Evaluates nodes whose inputs are all constant (and Shape of known shapes) into constants.
void fold_constants(Graph& g, const Protected& protect);
/// Removes nodes whose outputs are not used by any graph output.
void remove_dead_nodes(Graph& g, const Protected& protect);
/// Removes Identity and Dropout (inference) nodes, rewiring their consumers.
void remove_identities(Graph& g, const Protected& protect);
/// Folds BatchNormalization (inference) into a preceding Conv/ConvTranspose/Gemm when its
/// input is used only there.
void fold_batchnorm(Graph& g, const Protected& protect);
/// Fuses a following activation (Relu, Clip, LeakyRelu, Sigmoid, Tanh, HardSigmoid, Elu)
/// into Conv/ConvTranspose/Gemm/MatMul as the attributes activation/activation_alpha/beta.
void fuse_activations(Graph& g, const Protected& protect);

/// Folds Transpose(perm[0] = 0) -> Flatten/Reshape(N, K) -> Gemm/MatMul (constant weight)
/// into the weight: the Flatten reads the untransposed tensor and the weight rows are permuted
/// (the pattern channels-last importers emit before a Dense layer).
void fold_transpose_into_gemm(Graph& g, const Protected& protect);

/// Replaces the LayerNorm chain exporters write out (ReduceMean, Sub, Pow 2, ReduceMean, Add
/// eps, Sqrt, Div, optional Mul gamma and Add beta) by LayerNormalization (fuse_patterns.cpp).
void fuse_layernorm(Graph& g, const Protected& protect);
/// Replaces x * 0.5 * (1 + erf(x / sqrt 2)) (torch's export of GELU) by Gelu.
void fuse_gelu(Graph& g, const Protected& protect);

/// Stores float32 weights and activations as `low` (f16 or bf16): rounded constants, Cast at
/// graph inputs and outputs (outputs keep their names), Cast around the nodes of the layers
/// named in `keep_fp32` (source or canonical value names, or node names), which stay f32.
/// Throws anvil::Error naming an unknown keep_fp32 entry (src/passes/precision.cpp).
void reduce_precision(Graph& g, DType low, const std::set<std::string>& keep_fp32);

/// The default pipeline, in order; leaves the graph compacted and shape-inferred.
void optimize(Graph& g, const Protected& protect);

}  // namespace anvil::passes
