// Parsed attributes of the convolution, pooling and Gemm/MatMul families, shared by the
// reference kernels (src/ops/conv.cpp, pool.cpp, matmul.cpp) and the backends' handlers.
// Each parse_* call checks a node's attributes against its input shapes once and throws the
// errors the reference kernels give ("<Op>: message", field), so every backend refuses a node
// with the same message.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/tensor.h"
#include "ops/activation.h"

namespace anvil {

/// Conv / ConvTranspose (ONNX semantics, 1-3 spatial dims). Vectors are nsp long.
struct ConvAttrs {
  bool transpose = false;
  int nsp = 0;  // spatial rank, 1..3
  int64_t N = 0, C = 0, M = 0, group = 1;
  std::vector<int64_t> in, k, s, d, pb, pe, op, out;  // op: ConvTranspose output_padding
  bool has_output_shape = false;  // ConvTranspose: pads were derived from output_shape
  Shape out_shape;
  FusedActivation act;
};

/// `op` is "Conv" or "ConvTranspose"; b is the bias shape or nullptr.
ConvAttrs parse_conv_attrs(const std::string& op, const Attributes& a, const Shape& x,
                           const Shape& w, const Shape* b);

enum class PoolKind { Max, Avg, Lp };

/// MaxPool / AveragePool / LpPool (ONNX semantics). The spatial arrays are padded to 3 dims
/// with leading 1s (0 pads); spatial dim i of the tensor is index 3 - nsp + i.
struct PoolAttrs {
  PoolKind kind = PoolKind::Max;
  int nsp = 0;
  int64_t N = 0, C = 0;
  int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
  bool ceil_mode = false;
  bool include_pad = false;  // AveragePool count_include_pad
  int64_t storage_order = 0;
  double p = 2;
  Shape out_shape;
  int off() const { return 3 - nsp; }
};

/// The op name of a pool kind ("MaxPool", "AveragePool", "LpPool").
const char* pool_op_name(PoolKind k);
PoolAttrs parse_pool_attrs(PoolKind kind, const Attributes& a, const Shape& x);

/// Gemm: Y = act(alpha * A' * B' + beta * C).
struct GemmAttrs {
  int64_t M = 0, K = 0, N = 0;
  bool ta = false, tb = false;
  double alpha = 1, beta = 1;
  FusedActivation act;
};
GemmAttrs parse_gemm_attrs(const Attributes& at, const Shape& a, const Shape& b, const Shape* c);

/// MatMul (numpy semantics).
struct MatMulAttrs {
  int64_t M = 0, K = 0, N = 0;
  Shape batch;             // broadcast batch dims
  Shape a_batch, b_batch;  // each operand's batch dims, left-padded with 1s to batch.size()
  Shape out_shape;
  FusedActivation act;
};
MatMulAttrs parse_matmul_attrs(const Attributes& at, const Shape& a, const Shape& b);

/// The same, read from a node of `g` (input shapes from the graph's values, which must be
/// known); errors name the graph's file and the node.
ConvAttrs conv_attrs(const Graph& g, const Node& n);
PoolAttrs pool_attrs(const Graph& g, const Node& n);  // MaxPool, AveragePool, LpPool
GemmAttrs gemm_attrs(const Graph& g, const Node& n);
MatMulAttrs matmul_attrs(const Graph& g, const Node& n);

}  // namespace anvil
