// Reference kernels: Gemm and MatMul (ONNX semantics, fused activation), double accumulation.
#include <algorithm>
#include <string>
#include <vector>

#include "anvil/ops.h"
#include "ops/attrs.h"
#include "ops/nn_util.h"

namespace anvil {
namespace {

using nn::fail;

void require_numeric(const std::string& op, const std::string& field, DType t) {
  if (t == DType::boolean) fail(op, field, "expected a numeric tensor, found bool");
}

/// rows [i0, i1) of A (row r at a_row(r), K values with stride a_k) times the K x N row-major
/// matrix b, accumulated in double with k ascending for every output; calls emit(i, acc_row).
/// Rows are processed in blocks so that each row of b is read once per block.
template <class ARow, class Emit>
void matmul_rows(int64_t M, int64_t K, int64_t N, ARow a_at, const double* b, Emit emit) {
  constexpr int64_t kBlock = 16;
  std::vector<double> acc(static_cast<size_t>(kBlock * N));
  for (int64_t i0 = 0; i0 < M; i0 += kBlock) {
    const int64_t nb = std::min(kBlock, M - i0);
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const double* brow = b + k * N;
      for (int64_t r = 0; r < nb; ++r) {
        const double av = a_at(i0 + r, k);
        double* arow = acc.data() + r * N;
        for (int64_t j = 0; j < N; ++j) arow[j] += av * brow[j];
      }
    }
    for (int64_t r = 0; r < nb; ++r) emit(i0 + r, acc.data() + r * N);
  }
}

// ---- Gemm: Y = alpha * A' * B' + beta * C ---------------------------------------------------

using GemmParams = GemmAttrs;  // parsed once, src/ops/attrs.cpp

GemmParams gemm_params(const Shape& a, const Shape& b, const Shape* c, const Attributes& at) {
  return parse_gemm_attrs(at, a, b, c);
}

void gemm_infer(InferContext& ctx) {
  require_numeric("Gemm", "A", ctx.dtype(0));
  require_numeric("Gemm", "B", ctx.dtype(1));
  GemmParams p = gemm_params(ctx.shape(0), ctx.shape(1), ctx.has_input(2) ? &ctx.shape(2) : nullptr,
                             ctx.attrs());
  ctx.set_output(0, ctx.dtype(0), {p.M, p.N});
}

void gemm_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const Tensor& A = ctx.inputs[0];
  const Tensor& B = ctx.inputs[1];
  const bool has_c = ctx.inputs.size() > 2 && ctx.inputs[2].defined();
  GemmParams p =
      gemm_params(A.shape(), B.shape(), has_c ? &ctx.inputs[2].shape() : nullptr, ctx.attrs());
  const FusedActivation& act = p.act;
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape("Gemm", Y, {p.M, p.N});
  const double alpha = p.alpha, beta = p.beta;
  const std::vector<double> a = A.to_doubles(), b = B.to_doubles();
  std::vector<double> c;
  int64_t cm = 0, cn = 0;  // C strides (0 = broadcast)
  if (has_c) {
    const Tensor& C = ctx.inputs[2];
    c = C.to_doubles();
    Shape cc = C.shape();
    while (cc.size() < 2) cc.insert(cc.begin(), 1);
    cn = cc[1] == 1 ? 0 : 1;
    cm = cc[0] == 1 ? 0 : cc[1];
  }
  // B' as a K x N row-major matrix, so the inner loop runs along contiguous rows; every output
  // still sums over k in ascending order.
  std::vector<double> bk(static_cast<size_t>(p.K * p.N));
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t j = 0; j < p.N; ++j)
      bk[static_cast<size_t>(k * p.N + j)] =
          b[static_cast<size_t>(p.tb ? j * p.K + k : k * p.N + j)];
  matmul_rows(
      p.M, p.K, p.N,
      [&](int64_t i, int64_t k) {
        return a[static_cast<size_t>(p.ta ? k * p.M + i : i * p.K + k)];
      },
      bk.data(),
      [&](int64_t i, const double* acc) {
        for (int64_t j = 0; j < p.N; ++j) {
          double y = alpha * acc[j];
          if (has_c) y += beta * c[static_cast<size_t>(i * cm + j * cn)];
          Y.set(i * p.N + j, act(y));
        }
      });
}

std::vector<AttrSpec> gemm_attrs() {
  std::vector<AttrSpec> a = {{"alpha", AttrType::Float, "scale of A*B (default 1)"},
                             {"beta", AttrType::Float, "scale of C (default 1)"},
                             {"transA", AttrType::Int, "1: use A transposed"},
                             {"transB", AttrType::Int, "1: use B transposed"}};
  for (auto& s : nn::activation_attr_specs()) a.push_back(s);
  return a;
}

const OpRegistrar reg_gemm{OpDef{
    "Gemm", "matmul", "Y = act(alpha * A' * B' + beta * C), A and B 2-D, C broadcast to (M, N)", 2,
    3, 1, 1, gemm_attrs(), gemm_infer, gemm_kernel}};

// ---- MatMul: numpy matmul semantics ----------------------------------------------------------

using MatMulParams = MatMulAttrs;  // parsed once, src/ops/attrs.cpp

MatMulParams matmul_params(const Shape& a, const Shape& b, const Attributes& at) {
  return parse_matmul_attrs(at, a, b);
}

void matmul_infer(InferContext& ctx) {
  require_numeric("MatMul", "A", ctx.dtype(0));
  require_numeric("MatMul", "B", ctx.dtype(1));
  ctx.set_output(0, ctx.dtype(0), matmul_params(ctx.shape(0), ctx.shape(1), ctx.attrs()).out_shape);
}

void matmul_kernel(KernelContext& ctx) {
  nn::require_inputs(ctx, 2);
  const Tensor& A = ctx.inputs[0];
  const Tensor& B = ctx.inputs[1];
  MatMulParams p = matmul_params(A.shape(), B.shape(), ctx.attrs());
  const FusedActivation& act = p.act;
  Tensor& Y = ctx.outputs[0];
  nn::check_output_shape("MatMul", Y, p.out_shape);
  const std::vector<double> a = A.to_doubles(), b = B.to_doubles();
  const auto ast = nn::strides_of(p.a_batch), bst = nn::strides_of(p.b_batch);
  const int64_t nbatch = shape_numel(p.batch);
  const size_t nb = p.batch.size();
  for (int64_t bi = 0; bi < nbatch; ++bi) {
    // batch index -> operand batch offsets (broadcast dims of size 1 stay at 0)
    int64_t r = bi, aoff = 0, boff = 0;
    for (size_t d = nb; d-- > 0;) {
      int64_t id = r % p.batch[d];
      r /= p.batch[d];
      if (p.a_batch[d] != 1) aoff += id * ast[d];
      if (p.b_batch[d] != 1) boff += id * bst[d];
    }
    const double* am = a.data() + aoff * p.M * p.K;
    const double* bm = b.data() + boff * p.K * p.N;
    matmul_rows(
        p.M, p.K, p.N, [&](int64_t i, int64_t k) { return am[i * p.K + k]; }, bm,
        [&](int64_t i, const double* acc) {
          for (int64_t j = 0; j < p.N; ++j) Y.set((bi * p.M + i) * p.N + j, act(acc[j]));
        });
  }
}

const OpRegistrar reg_matmul{
    OpDef{"MatMul", "matmul",
          "numpy matmul: batched, broadcast batch dims, 1-D operands promoted and the dim removed",
          2, 2, 1, 1, nn::activation_attr_specs(), matmul_infer, matmul_kernel}};

}  // namespace
}  // namespace anvil
