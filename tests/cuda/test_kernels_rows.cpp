// The cuda backend's row kernels (kernels.h, kernels_nn.cu): softmax / log-softmax and the
// reductions over [outer, len, inner], zero sizes and bad arguments, against host oracles.
// Helpers: nn_test_util.h; pooling, LRN, Resize are in test_kernels_nn.cpp.
//
#include "cuda/nn_test_util.h"

namespace anvil::cuda {
namespace {

// ---- softmax / log-softmax ----------------------------------------------------------------

struct RowsCase {
  int64_t outer, len, inner;
  double lo, hi;
};

// Shapes that reach every launch shape: the row kernel with 16-byte loads (len 1000) and without
// (len 1001), one 1024-thread block per row (len 5000), a thread per column (len <= 16), the
// column-block kernel with (inner 64) and without (inner 13) packs, and len 1.
const RowsCase kRowCases[] = {
    {64, 1000, 1, -10, 10}, {3, 1001, 1, -100, 100}, {2, 5000, 1, -5, 5},
    {2, 7, 13, -100, 100},  {3, 37, 13, -100, 100},  {2, 40, 64, -10, 10},
    {5, 1, 1, -3, 3},       {6, 17, 1, -3, 3},       {1, 300, 2048, -3, 3}};

TEST(CudaKernelsNN, SoftmaxAndLogSoftmax) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 6000;
  for (const RowsCase& rc : kRowCases)
    for (DType dt : kTypes) {
      const size_t total = static_cast<size_t>(rc.outer * rc.len * rc.inner);
      auto x = random_values(dt, total, rc.lo, rc.hi, seed++);
      std::vector<double> soft(total), logsoft(total);
      for (int64_t o = 0; o < rc.outer; ++o)
        for (int64_t i = 0; i < rc.inner; ++i) {
          auto at = [&](int64_t j) { return static_cast<size_t>((o * rc.len + j) * rc.inner + i); };
          double m = -kInf, sum = 0;
          for (int64_t j = 0; j < rc.len; ++j) m = std::max(m, x[at(j)]);
          for (int64_t j = 0; j < rc.len; ++j) sum += std::exp(x[at(j)] - m);
          for (int64_t j = 0; j < rc.len; ++j) {
            soft[at(j)] = std::exp(x[at(j)] - m) / sum;
            logsoft[at(j)] = x[at(j)] - m - std::log(sum);
          }
        }
      const std::string what = "[" + std::to_string(rc.outer) + "," + std::to_string(rc.len) + "," +
                               std::to_string(rc.inner) + "] " + dt_str(dt);
      const DevArray dx = upload_values(dt, x);
      DevArray ds = poisoned(dt, total), dl = poisoned(dt, total);
      softmax(false, dt, dx.ptr(), ds.ptr(), rc.outer, rc.len, rc.inner, nullptr);
      softmax(true, dt, dx.ptr(), dl.ptr(), rc.outer, rc.len, rc.inner, nullptr);
      // probabilities: rel 1e-4 (x - max rounded to float), abs 1e-7 for the tiny ones
      expect_close(download(ds), soft, for_dtype(dt, {1e-4, 1e-7}), what + " softmax");
      // log: values up to -(hi - lo); abs 1e-6 of the input range for the ones near 0
      expect_close(download(dl), logsoft, for_dtype(dt, {1e-4, 1e-6 * (rc.hi - rc.lo)}),
                   what + " log_softmax");
    }
}

TEST(CudaKernelsNN, SoftmaxLargeMagnitudesAndInPlace) {
  SKIP_WITHOUT_GPU();
  // +-100 and +-1000 (exp overflows float without the max subtraction); in place (y == x).
  for (DType dt : kTypes)
    for (const int64_t len : {int64_t{1000}, int64_t{9}, int64_t{77}}) {
      const int64_t inner = len == 77 ? 5 : 1;
      std::vector<double> x(static_cast<size_t>(4 * len * inner));
      for (size_t i = 0; i < x.size(); ++i)
        x[i] =
            (i % 3 == 0 ? 100.0 : -100.0) * (i % 7 == 0 ? 10.0 : 1.0) + static_cast<double>(i % 5);
      x = decode(dt, encode(dt, x));
      for (const bool log : {false, true}) {
        std::vector<double> want(x.size());
        for (int64_t o = 0; o < 4; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            auto at = [&](int64_t j) { return static_cast<size_t>((o * len + j) * inner + i); };
            double m = -kInf, sum = 0;
            for (int64_t j = 0; j < len; ++j) m = std::max(m, x[at(j)]);
            for (int64_t j = 0; j < len; ++j) sum += std::exp(x[at(j)] - m);
            for (int64_t j = 0; j < len; ++j)
              want[at(j)] = log ? x[at(j)] - m - std::log(sum) : std::exp(x[at(j)] - m) / sum;
          }
        DevArray d = upload_values(dt, x);
        softmax(log, dt, d.ptr(), d.ptr(), 4, len, inner, nullptr);
        expect_close(download(d), want, for_dtype(dt, {1e-4, log ? 1e-6 * 2000 : 1e-7}),
                     std::string(log ? "log_softmax" : "softmax") + " len " + std::to_string(len) +
                         " " + dt_str(dt));
      }
    }
}

// ---- reductions ------------------------------------------------------------------------------

const char* kReduceNames[] = {"sum", "mean", "max", "min", "sumsq", "l2", "l1", "logsumexp"};

/// ONNX reduction `kind` of one column, and the size of what it sums (for the tolerance).
double ref_reduce(int kind, const std::vector<double>& v, double& scale) {
  const double n = static_cast<double>(v.size());
  double s = 0, s_abs = 0, sq = 0, mx = -kInf, mn = kInf;
  for (double x : v) {
    s += x;
    s_abs += std::abs(x);
    sq += x * x;
    mx = std::max(mx, x);
    mn = std::min(mn, x);
  }
  scale = 0;
  switch (kind) {
    case 0:
      scale = s_abs;
      return s;
    case 1:
      scale = s_abs / n;
      return v.empty() ? kNaN : s / n;
    case 2:
      return mx;
    case 3:
      return mn;
    case 4:
      scale = sq;
      return sq;
    case 5:
      scale = std::sqrt(sq);
      return std::sqrt(sq);
    case 6:
      scale = s_abs;
      return s_abs;
    default: {
      if (v.empty()) return -kInf;
      double e = 0;
      for (double x : v) e += std::exp(x - mx);
      scale = std::max(1.0, std::abs(mx));
      return mx + std::log(e);
    }
  }
}

void run_reduce_case(const RowsCase& rc, int kind, DType dt, uint32_t seed, double poison = kNaN) {
  const size_t total = static_cast<size_t>(rc.outer * rc.len * rc.inner);
  const auto x = random_values(dt, total, rc.lo, rc.hi, seed);
  const size_t nout = static_cast<size_t>(rc.outer * rc.inner);
  std::vector<double> want(nout), scale(nout);
  for (int64_t o = 0; o < rc.outer; ++o)
    for (int64_t i = 0; i < rc.inner; ++i) {
      std::vector<double> col(static_cast<size_t>(rc.len));
      for (int64_t j = 0; j < rc.len; ++j)
        col[static_cast<size_t>(j)] = x[static_cast<size_t>((o * rc.len + j) * rc.inner + i)];
      const size_t k = static_cast<size_t>(o * rc.inner + i);
      want[k] = ref_reduce(kind, col, scale[k]);
      scale[k] *= 1e-5;  // float summation error, relative to the summed magnitude
    }
  const DevArray dx = upload_values(dt, x);
  DevArray dy = poisoned(dt, nout, 0, poison);
  reduce(kind, dt, dx.ptr(), dy.ptr(), rc.outer, rc.len, rc.inner, nullptr);
  const bool exact = kind == 2 || kind == 3;
  expect_close(download(dy), want, exact ? kExact : for_dtype(dt, {1e-4, 0}),
               std::string(kReduceNames[kind]) + " [" + std::to_string(rc.outer) + "," +
                   std::to_string(rc.len) + "," + std::to_string(rc.inner) + "] " + dt_str(dt),
               exact ? nullptr : &scale);
}

TEST(CudaKernelsNN, ReduceEveryKind) {
  SKIP_WITHOUT_GPU();
  const RowsCase cases[] = {{3, 1000, 1, -2, 2}, {2, 7, 13, -2, 2},   {4, 300, 37, -2, 2},
                            {2, 49, 64, -2, 2},  {1, 3000, 1, -2, 2}, {6, 17, 1, -2, 2},
                            {5, 3, 1, -2, 2},    {1, 1999, 8, -2, 2}};
  uint32_t seed = 7000;
  for (int kind = 0; kind < 8; ++kind)
    for (const RowsCase& rc : cases)
      for (DType dt : kTypes) run_reduce_case(rc, kind, dt, seed++);
}

TEST(CudaKernelsNN, ReduceLogSumExpLargeMagnitudes) {
  SKIP_WITHOUT_GPU();
  // exp(500) overflows float: only the max-shifted form gets these right.
  const RowsCase cases[] = {
      {3, 1000, 1, -500, 500}, {2, 7, 13, -500, 500}, {3, 300, 37, -500, 500}};
  uint32_t seed = 8000;
  for (const RowsCase& rc : cases)
    for (DType dt : kTypes) run_reduce_case(rc, 7, dt, seed++);
}

TEST(CudaKernelsNN, ReduceEmptyAxis) {
  SKIP_WITHOUT_GPU();
  // len 0: sum 0, mean NaN, max -inf, min +inf, sumsq / l2 / l1 0, logsumexp -inf (reference).
  // Poisoned with 7 instead of NaN so that a NaN mean is known to be written.
  for (int kind = 0; kind < 8; ++kind)
    for (DType dt : kTypes) run_reduce_case({2, 0, 3, -1, 1}, kind, dt, 9000, 7.0);
}

// ---- zero sizes and bad arguments ------------------------------------------------------------

TEST(CudaKernelsNN, ZeroSizesLaunchNothing) {
  SKIP_WITHOUT_GPU();
  // A launch with an empty grid would fail with cudaErrorInvalidConfiguration: no throw means
  // nothing was launched (and the null pointers are never touched).
  Pool2d p;
  p.n = 0, p.h = 5, p.w = 5, p.c = 8, p.oh = 3, p.ow = 3, p.kh = 3, p.kw = 3;
  EXPECT_NO_THROW(pool2d_nhwc(p, DType::f32, nullptr, nullptr, nullptr));
  EXPECT_NO_THROW(global_pool_nhwc(true, 0, 49, 64, DType::f16, nullptr, nullptr, nullptr));
  EXPECT_NO_THROW(global_pool_nhwc(false, 2, 49, 0, DType::f16, nullptr, nullptr, nullptr));
  EXPECT_NO_THROW(lrn_nhwc(0, 64, 5, 1e-4f, 0.75f, 1.f, DType::bf16, nullptr, nullptr, nullptr));
  Resize2d r;
  r.n = 1, r.c = 0;
  EXPECT_NO_THROW(resize_nhwc(r, DType::f32, nullptr, nullptr, nullptr));
  EXPECT_NO_THROW(softmax(false, DType::f32, nullptr, nullptr, 0, 1000, 1, nullptr));
  EXPECT_NO_THROW(softmax(true, DType::f32, nullptr, nullptr, 4, 0, 1, nullptr));
  EXPECT_NO_THROW(reduce(0, DType::f32, nullptr, nullptr, 3, 10, 0, nullptr));
  ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
}

TEST(CudaKernelsNN, BadArgumentsThrow) {
  SKIP_WITHOUT_GPU();
  DeviceBuffer b(1024);
  EXPECT_THROW(reduce(0, DType::i32, b.get(), b.get(), 2, 3, 4, nullptr), Error);
  EXPECT_THROW(reduce(8, DType::f32, b.get(), b.get(), 2, 3, 4, nullptr), Error);
  EXPECT_THROW(softmax(false, DType::i64, b.get(), b.get(), 2, 3, 4, nullptr), Error);
  EXPECT_THROW(lrn_nhwc(4, 8, 0, 1e-4f, 0.75f, 1.f, DType::f32, b.get(), b.get(), nullptr), Error);
  Pool2d p;
  p.n = 1, p.h = 5, p.w = 5, p.c = 8, p.oh = 3, p.ow = 3, p.kh = 3, p.kw = 3, p.sh = 0;
  EXPECT_THROW(pool2d_nhwc(p, DType::f32, b.get(), b.get(), nullptr), Error);
  Resize2d r;
  r.mode = 2;
  EXPECT_THROW(resize_nhwc(r, DType::f32, b.get(), b.get(), nullptr), Error);
}

}  // namespace
}  // namespace anvil::cuda
