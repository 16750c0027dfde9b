// The cuda backend's executor (src/backend/cuda/executor.cpp) against the reference backend:
// small graphs per op and per fused pattern with random inputs and odd sizes, the steps it
// compiles to (fused groups, fallbacks), CUDA graph replay, pipelined submit/wait and fp16.
// Every test skips itself where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "anvil/session.h"
#include "backend/cuda/cuda_util.h"
#include "unit/cpu_test_util.h"

namespace anvil::testing {
namespace {

using I = std::vector<int64_t>;

#define SKIP_WITHOUT_GPU() \
  if (anvil::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"

/// Fresh random inputs (another seed) for every input of the graph.
std::map<std::string, Tensor> other_feed(const TestGraph& tg, uint32_t seed) {
  std::map<std::string, Tensor> f;
  for (const auto& [k, t] : tg.feed) f[k] = random_tensor(t.shape(), seed++);
  return f;
}

void expect_close(const std::map<std::string, Tensor>& got,
                  const std::map<std::string, Tensor>& want, double rtol, double atol,
                  const std::string& what) {
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    ASSERT_TRUE(it != got.end()) << name;
    ASSERT_EQ(it->second.shape(), w.shape()) << name;
    ASSERT_EQ(it->second.dtype(), w.dtype()) << name;
    EXPECT_LE(closeness(it->second, w, rtol, atol), 1.0)
        << "tensor " << name << " (" << what << ")";
  }
}

/// Runs `tg` on the reference and the cuda backend three times (eager warm-up, CUDA graph
/// capture, replay), each with other inputs, and expects equal results within rtol/atol.
/// Returns the cuda steps' op names (a profiled session).
std::vector<std::string> expect_cuda_matches_reference(const TestGraph& tg, double rtol = 1e-4,
                                                       double atol = 1e-4,
                                                       const std::string& precision = "fp32",
                                                       bool optimize = true) {
  SessionOptions ro;
  ro.backend = "reference";
  ro.optimize = optimize;
  SessionOptions co = ro;
  co.backend = "cuda";
  co.precision = parse_precision(precision);
  Session ref(tg.g, ro), gpu(tg.g, co);
  for (int rep = 0; rep < 3; ++rep) {
    auto feed = rep == 0 ? tg.feed : other_feed(tg, 1000u * static_cast<uint32_t>(rep));
    auto want = ref.run(feed);
    auto got = gpu.run(feed);
    expect_close(got, want, rtol, atol, "run " + std::to_string(rep));
    EXPECT_GT(gpu.last_device_ms(), 0.0);
  }
  // Profiled: step by step with events; the same results.
  co.profile = true;
  Session prof(tg.g, co);
  expect_close(prof.run(tg.feed), ref.run(tg.feed), rtol, atol, "profiled");
  std::vector<std::string> ops;
  for (const auto& t : prof.profile()) {
    ops.push_back(t.op);
    EXPECT_EQ(t.calls, 1) << t.op;
    EXPECT_GE(t.ms, 0.0) << t.op;
  }
  return ops;
}

bool has_op(const std::vector<std::string>& ops, const std::string& op) {
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}
/// Steps whose op mentions Clip (a fused Conv+Clip is one; an unfused Clip after it another).
int clip_steps(const std::vector<std::string>& ops) {
  return static_cast<int>(std::count_if(ops.begin(), ops.end(), [](const std::string& o) {
    return o.find("Clip") != std::string::npos;
  }));
}
bool any_fallback(const std::vector<std::string>& ops) {
  for (const auto& o : ops)
    if (o.rfind("fallback:", 0) == 0) return true;
  return false;
}

// ---- convolutions -------------------------------------------------------------------------

struct ConvCase {
  const char* name;
  Shape x;
  int64_t M;
  I k, strides, pads, dil;
  int64_t group;
  bool bias;
  std::string act;
};
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

class CudaExecutorConv : public ::testing::TestWithParam<ConvCase> {};

TEST_P(CudaExecutorConv, MatchesReference) {
  SKIP_WITHOUT_GPU();
  const ConvCase& c = GetParam();
  TestGraph tg;
  int x = tg.input("x", c.x);
  Shape ws{c.M, c.x[1] / c.group, c.k[0], c.k[1]};
  std::vector<int> ins{x, tg.weight("w", ws, 0.5f)};
  if (c.bias) ins.push_back(tg.weight("b", {c.M}));
  int y = tg.node(
      "Conv", ins,
      attrs({{"strides", c.strides}, {"pads", c.pads}, {"dilations", c.dil}, {"group", c.group}}));
  // Clip6: ReLU6; Clip05: Clip(0, 0.5), which clamps a good share of these outputs.
  if (c.act == "Clip6" || c.act == "Clip05")
    y = tg.node("Clip", {y, tg.constant("lo", Tensor::scalar<float>(0.f)),
                         tg.constant("hi", Tensor::scalar<float>(c.act == "Clip6" ? 6.f : 0.5f))});
  else if (!c.act.empty())
    y = tg.node(c.act, {y});
  tg.output(y);
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
  if (c.act == "Relu") EXPECT_TRUE(has_op(ops, "Conv+Relu")) << join(ops);
  if (c.act.rfind("Clip", 0) == 0) {
    // Clip(0, m) fused into the convolution (ConvParams::relu_max): one step, no Clip pass.
    EXPECT_EQ(clip_steps(ops), 1) << join(ops);
    EXPECT_TRUE(has_op(ops, "Conv+Clip")) << join(ops);
    expect_cuda_matches_reference(tg, 1e-2, 1e-2, "fp16");
  }
}

const ConvCase kConvCases[] = {
    {"plain3x3", {1, 3, 13, 11}, 8, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true, ""},
    {"odd_channels_relu", {2, 5, 9, 7}, 7, {3, 3}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, true, "Relu"},
    {"stride2_asym_pads",
     {1, 16, 15, 14},
     32,
     {3, 3},
     {2, 2},
     {0, 1, 2, 1},
     {1, 1},
     1,
     true,
     "Relu"},
    {"asym_pads_top_only", {2, 3, 8, 9}, 5, {3, 3}, {1, 1}, {2, 0, 0, 1}, {1, 1}, 1, false, ""},
    {"dilation2", {1, 8, 17, 17}, 16, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 1, false, ""},
    {"dilation_rect_kernel",
     {1, 6, 12, 20},
     10,
     {2, 5},
     {1, 2},
     {1, 0, 0, 3},
     {3, 1},
     1,
     true,
     "Tanh"},
    {"groups2", {1, 8, 10, 10}, 12, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 2, true, "Sigmoid"},
    {"groups3_odd", {1, 9, 7, 9}, 6, {3, 1}, {2, 1}, {1, 0, 1, 0}, {1, 1}, 3, true, ""},
    {"depthwise_relu6",
     {1, 32, 14, 14},
     32,
     {3, 3},
     {1, 1},
     {1, 1, 1, 1},
     {1, 1},
     32,
     true,
     "Clip6"},
    {"depthwise_clip05",
     {2, 24, 9, 11},
     24,
     {3, 3},
     {1, 1},
     {1, 1, 1, 1},
     {1, 1},
     24,
     true,
     "Clip05"},
    {"depthwise_odd_s2_clip05",
     {1, 5, 9, 8},
     5,
     {3, 3},
     {2, 2},
     {1, 1, 1, 1},
     {1, 1},
     5,
     false,
     "Clip05"},
    {"conv3x3_clip05", {1, 8, 9, 7}, 16, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, true, "Clip05"},
    {"pointwise_clip05",
     {2, 16, 7, 5},
     24,
     {1, 1},
     {1, 1},
     {0, 0, 0, 0},
     {1, 1},
     1,
     true,
     "Clip05"},
    {"pointwise_odd_clip6",
     {1, 7, 5, 6},
     5,
     {1, 1},
     {1, 1},
     {0, 0, 0, 0},
     {1, 1},
     1,
     true,
     "Clip6"},
    {"depthwise_s2_mult2",
     {1, 16, 15, 15},
     32,
     {3, 3},
     {2, 2},
     {1, 1, 1, 1},
     {1, 1},
     16,
     true,
     "Relu"},
    {"pointwise", {3, 24, 7, 7}, 40, {1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, false, "LeakyRelu"},
    {"pointwise_odd_relu", {2, 5, 6, 7}, 3, {1, 1}, {1, 1}, {0, 0, 0, 0}, {1, 1}, 1, true, "Relu"},
    {"pointwise_stride2", {1, 16, 9, 9}, 8, {1, 1}, {2, 2}, {0, 0, 0, 0}, {1, 1}, 1, true, ""},
    {"big_kernel_s2", {1, 3, 32, 32}, 16, {7, 7}, {2, 2}, {3, 3, 3, 3}, {1, 1}, 1, true, "Relu"},
};
INSTANTIATE_TEST_SUITE_P(Cases, CudaExecutorConv, ::testing::ValuesIn(kConvCases),
                         [](const auto& i) { return std::string(i.param.name); });

TEST(CudaExecutor, ConvAddReluResidual) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {2, 6, 9, 9});
  int a = tg.node("Conv", {x, tg.weight("w1", {6, 6, 3, 3}, 0.3f), tg.weight("b1", {6})},
                  attrs({{"pads", I{1, 1, 1, 1}}}));
  a = tg.node("Relu", {a});
  int b = tg.node("Conv", {a, tg.weight("w2", {6, 6, 1, 1}, 0.3f)});
  int s = tg.node("Add", {b, a});
  tg.output(tg.node("Relu", {s}));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_TRUE(has_op(ops, "Conv+Relu")) << join(ops);
  EXPECT_TRUE(has_op(ops, "Conv+Add+Relu")) << join(ops);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, ConvAddClipResidualFused) {
  SKIP_WITHOUT_GPU();
  // Conv + residual Add + Clip(0, m): one fused step (act(conv + bias + z) with the clamp),
  // on a 3x3, a 1x1 (cuBLASLt product + clamp pass) and a depthwise convolution.
  struct Case {
    const char* name;
    int64_t c;
    I k, pads;
    int64_t group;
  };
  for (const Case& cs :
       {Case{"3x3", 6, {3, 3}, {1, 1, 1, 1}, 1}, Case{"1x1", 16, {1, 1}, {0, 0, 0, 0}, 1},
        Case{"depthwise", 32, {3, 3}, {1, 1, 1, 1}, 32}}) {
    SCOPED_TRACE(cs.name);
    TestGraph tg;
    int x = tg.input("x", {2, cs.c, 7, 9});
    int y = tg.node("Conv",
                    {x, tg.weight("w", {cs.c, cs.c / cs.group, cs.k[0], cs.k[1]}, 0.4f),
                     tg.weight("b", {cs.c})},
                    attrs({{"pads", cs.pads}, {"group", cs.group}}));
    y = tg.node("Add", {y, x});
    tg.output(tg.node("Clip", {y, tg.constant("lo", Tensor::scalar<float>(0.f)),
                               tg.constant("hi", Tensor::scalar<float>(0.75f))}));
    auto ops = expect_cuda_matches_reference(tg);
    EXPECT_TRUE(has_op(ops, "Conv+Add+Clip")) << join(ops);
    EXPECT_EQ(clip_steps(ops), 1) << join(ops);
    EXPECT_FALSE(any_fallback(ops)) << join(ops);
    expect_cuda_matches_reference(tg, 1e-2, 1e-2, "fp16");
  }
}

TEST(CudaExecutor, PointwiseConvAsGemmWithResidualFp16) {
  SKIP_WITHOUT_GPU();
  // 1x1 convolutions run as cuBLASLt products over NHWC rows; odd channel counts (unaligned
  // rows in f16) and a residual + ReLU epilogue. fp16 bound as in Fp16PrecisionWithinHalfRounding.
  for (int64_t c : {5, 16}) {
    SCOPED_TRACE("channels " + std::to_string(c));
    TestGraph tg;
    int x = tg.input("x", {2, c, 6, 7});
    int y = tg.node("Conv", {x, tg.weight("w", {c, c, 1, 1}, 0.4f), tg.weight("b", {c})});
    tg.output(tg.node("Relu", {tg.node("Add", {y, x})}));
    auto ops = expect_cuda_matches_reference(tg);
    EXPECT_TRUE(has_op(ops, "Conv+Add+Relu")) << join(ops);
    expect_cuda_matches_reference(tg, 1e-2, 1e-2, "fp16");
  }
}

TEST(CudaExecutor, ResidualFromGraphInputWithoutRelu) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {1, 4, 7, 5});
  int c =
      tg.node("Conv", {x, tg.weight("w", {4, 4, 3, 3}, 0.4f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  tg.output(tg.node("Add", {x, c}));  // residual stored plain (an input): transposed once
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_TRUE(has_op(ops, "Conv+Add")) << join(ops);
}

TEST(CudaExecutor, ConvTranspose) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape x;
    int64_t M, group;
    I k, s, pads, out_pad;
  };
  for (const C& c : {C{{1, 4, 5, 6}, 3, 1, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}},
                     C{{2, 6, 4, 4}, 4, 2, {2, 2}, {2, 2}, {0, 0, 0, 0}, {0, 0}},
                     C{{1, 3, 7, 5}, 5, 1, {3, 2}, {1, 1}, {1, 0, 1, 0}, {0, 0}}}) {
    SCOPED_TRACE(shape_str(c.x));
    TestGraph tg;
    int x = tg.input("x", c.x);
    int y = tg.node(
        "ConvTranspose",
        {x, tg.weight("w", {c.x[1], c.M / c.group, c.k[0], c.k[1]}, 0.5f), tg.weight("b", {c.M})},
        attrs({{"strides", c.s},
               {"pads", c.pads},
               {"output_padding", c.out_pad},
               {"group", c.group}}));
    tg.output(tg.node("Relu", {y}));
    auto ops = expect_cuda_matches_reference(tg);
    EXPECT_FALSE(any_fallback(ops)) << join(ops);
  }
}

TEST(CudaExecutor, OneDimensionalConvAndPools) {
  SKIP_WITHOUT_GPU();
  // (N, C, W) tensors are stored channels last (N, W, C) like the 2-D ones with H = 1.
  TestGraph tg;
  int x = tg.input("x", {2, 5, 23});
  int c1 = tg.node("Conv", {x, tg.weight("w1", {8, 5, 3}, 0.4f), tg.weight("b1", {8})},
                   attrs({{"pads", I{2, 1}}, {"strides", I{2}}}));  // asymmetric pads
  c1 = tg.node("Relu", {c1});
  int c2 = tg.node("Conv", {c1, tg.weight("w2", {8, 4, 3}, 0.4f)},
                   attrs({{"pads", I{2, 2}}, {"dilations", I{2}}, {"group", int64_t{2}}}));
  int s = tg.node("Add", {c2, c1});
  tg.output(tg.node("MaxPool", {s},
                    attrs({{"kernel_shape", I{3}}, {"strides", I{2}}, {"ceil_mode", int64_t{1}}})));
  tg.output(tg.node(
      "AveragePool", {s},
      attrs({{"kernel_shape", I{2}}, {"pads", I{1, 0}}, {"count_include_pad", int64_t{1}}})));
  tg.output(tg.node("GlobalAveragePool", {s}));
  tg.output(tg.node("Softmax", {s}, attrs({{"axis", int64_t{1}}})));
  tg.output(tg.node("ConvTranspose", {s, tg.weight("wt", {8, 3, 4}, 0.4f)},
                    attrs({{"strides", I{2}}, {"pads", I{1, 1}}})));
  tg.output(tg.node("ReduceMean", {s, tg.constant("ax", Tensor::from_vector<int64_t>({1}, {2}))}));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_TRUE(has_op(ops, "Conv+Relu")) << join(ops);
  EXPECT_TRUE(has_op(ops, "Conv+Add")) << join(ops);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

// ---- matrix products ----------------------------------------------------------------------

TEST(CudaExecutor, GemmReluTransBAndBias) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int a = tg.input("a", {5, 37});
  int y = tg.node("Gemm", {a, tg.weight("w", {19, 37}, 0.3f), tg.weight("c", {19})},
                  attrs({{"transB", int64_t{1}}, {"alpha", 0.7}, {"beta", 1.5}}));
  tg.output(tg.node("Relu", {y}));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_TRUE(has_op(ops, "Gemm+Relu")) << join(ops);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, GemmTransAFullC) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int a = tg.input("a", {11, 4});
  int c = tg.input("c", {4, 6});
  tg.output(tg.node("Gemm", {a, tg.weight("w", {11, 6}), c},
                    attrs({{"transA", int64_t{1}}, {"beta", 0.5}})));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, MatMulBatchedAndBroadcast) {
  SKIP_WITHOUT_GPU();
  struct C {
    Shape a, b;
    bool const_b;
  };
  for (const C& c :
       {C{{5, 7}, {7, 3}, true}, C{{3, 5, 7}, {3, 7, 6}, false}, C{{2, 3, 5, 7}, {7, 6}, true},
        C{{7}, {2, 7, 3}, false}, C{{4, 5, 9}, {9}, false}}) {
    SCOPED_TRACE(shape_str(c.a) + " x " + shape_str(c.b));
    TestGraph tg;
    int a = tg.input("a", c.a);
    int b = c.const_b ? tg.weight("b", c.b) : tg.input("b", c.b);
    tg.output(tg.node("MatMul", {a, b}));
    auto ops = expect_cuda_matches_reference(tg);
    EXPECT_FALSE(any_fallback(ops)) << join(ops);
  }
}

// ---- pooling, normalization, softmax --------------------------------------------------------

TEST(CudaExecutor, Pools) {
  SKIP_WITHOUT_GPU();
  struct C {
    std::string op;
    I k, s, pads;
    int64_t ceil, include_pad;
  };
  for (const C& c : {C{"MaxPool", {3, 3}, {2, 2}, {0, 0, 0, 0}, 1, 0},
                     C{"MaxPool", {2, 3}, {1, 2}, {1, 1, 0, 1}, 0, 0},
                     C{"AveragePool", {3, 3}, {2, 2}, {1, 1, 1, 1}, 0, 1},
                     C{"AveragePool", {3, 3}, {2, 2}, {1, 1, 1, 1}, 1, 1},
                     C{"AveragePool", {3, 2}, {2, 1}, {1, 0, 1, 1}, 1, 0}}) {
    SCOPED_TRACE(c.op + " ceil " + std::to_string(c.ceil) + " include_pad " +
                 std::to_string(c.include_pad));
    TestGraph tg;
    int x = tg.input("x", {2, 5, 12, 11});
    // After a conv (NHWC) and directly on the (plain) input.
    int cv = tg.node("Conv", {x, tg.weight("w", {7, 5, 1, 1})});
    Attributes a =
        attrs({{"kernel_shape", c.k}, {"strides", c.s}, {"pads", c.pads}, {"ceil_mode", c.ceil}});
    if (c.op == "AveragePool") a.set("count_include_pad", c.include_pad);
    tg.output(tg.node(c.op, {cv}, a));
    tg.output(tg.node(c.op, {x}, a));
    auto ops = expect_cuda_matches_reference(tg);
    EXPECT_FALSE(any_fallback(ops)) << join(ops);
  }
}

TEST(CudaExecutor, GlobalPoolsFlattenGemm) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {3, 6, 7, 5});
  int cv =
      tg.node("Conv", {x, tg.weight("w", {10, 6, 3, 3}, 0.3f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int ga = tg.node("GlobalAveragePool", {cv});
  int gm = tg.node("GlobalMaxPool", {cv});
  int f = tg.node("Flatten", {ga});
  tg.output(tg.node("Gemm", {f, tg.weight("fc", {10, 4}), tg.weight("fb", {4})}));
  tg.output(gm);
  // Flatten of an NHWC tensor with a real spatial extent needs the NCHW order back.
  tg.output(tg.node("Flatten", {cv}));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, ConcatChannelsOfNhwcTensors) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {2, 4, 9, 7});
  int a = tg.node("Conv", {x, tg.weight("w1", {3, 4, 1, 1})});
  int b =
      tg.node("Conv", {x, tg.weight("w2", {5, 4, 3, 3}, 0.3f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int c = tg.node("Concat", {a, b, x}, attrs({{"axis", int64_t{1}}}));  // x is plain
  tg.output(tg.node("Conv", {c, tg.weight("w3", {6, 12, 3, 3}, 0.2f)}));
  tg.output(
      tg.node("Concat", {a, tg.node("Relu", {a})}, attrs({{"axis", int64_t{-1}}})));  // along W
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, SoftmaxAxes) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {2, 5, 4, 3});
  int cv = tg.node("Conv", {x, tg.weight("w", {7, 5, 1, 1})});
  tg.output(tg.node("Softmax", {cv}, attrs({{"axis", int64_t{1}}})));  // NHWC rows
  tg.output(tg.node("Softmax", {cv}, attrs({{"axis", int64_t{-1}}})));
  tg.output(tg.node("LogSoftmax", {x}, attrs({{"axis", int64_t{0}}})));
  tg.output(tg.node("Softmax", {x}, attrs({{"axis", int64_t{2}}})));
  auto ops = expect_cuda_matches_reference(tg, 1e-4, 1e-5);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, BatchNormStandaloneAndLrn) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {2, 6, 5, 7});
  auto var = random_tensor({6}, 99, 0.5f, 2.f);
  int bn = tg.node(
      "BatchNormalization",
      {x, tg.weight("g", {6}), tg.weight("beta", {6}), tg.weight("m", {6}), tg.constant("v", var)},
      attrs({{"epsilon", 1e-3}}));
  tg.output(tg.node("Relu", {bn}));
  int cv = tg.node("Conv", {x, tg.weight("w", {5, 6, 1, 1})});
  tg.output(tg.node("LRN", {cv},
                    attrs({{"size", int64_t{3}}, {"alpha", 1e-2}, {"beta", 0.75}, {"bias", 2.0}})));
  tg.output(tg.node("LRN", {cv}, attrs({{"size", int64_t{4}}, {"alpha", 1e-2}})));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_TRUE(has_op(ops, "BatchNormalization+Relu")) << join(ops);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

// ---- elementwise --------------------------------------------------------------------------

TEST(CudaExecutor, EveryActivation) {
  SKIP_WITHOUT_GPU();
  const std::vector<std::pair<std::string, Attributes>> ops = {
      {"Relu", {}},
      {"LeakyRelu", attrs({{"alpha", 0.2}})},
      {"Elu", attrs({{"alpha", 0.7}})},
      {"Selu", {}},
      {"Celu", {}},
      {"Sigmoid", {}},
      {"HardSigmoid", attrs({{"alpha", 0.3}, {"beta", 0.4}})},
      {"HardSwish", {}},
      {"Tanh", {}},
      {"Softplus", {}},
      {"Softsign", {}},
      {"Exp", {}},
      {"Abs", {}},
      {"Neg", {}},
      {"Gelu", {}},
      {"Gelu", attrs({{"approximate", std::string("tanh")}})},
      {"Erf", {}},
      {"Floor", {}},
      {"Ceil", {}},
      {"Mish", {}},
      {"Sin", {}},
      {"Cos", {}},
      {"Sign", {}},
      {"ThresholdedRelu", attrs({{"alpha", 0.1}})}};
  TestGraph tg;
  int x = tg.input("x", {2, 3, 5, 7});
  int cv =
      tg.node("Conv", {x, tg.weight("w", {5, 3, 3, 3}, 0.5f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  for (const auto& [op, a] : ops) {
    tg.output(tg.node(op, {x}, a));
    // On the conv output too (kept: not fused into it), but not the discontinuous ones: a
    // conv output within rounding of a step would flip.
    if (op != "Floor" && op != "Ceil" && op != "Sign" && op != "ThresholdedRelu")
      tg.output(tg.node(op, {cv}, a));
  }
  // Positive-domain functions on |x| + 0.5.
  int pos = tg.node("Add", {tg.node("Abs", {x}), tg.constant("half", Tensor::scalar<float>(0.5f))});
  for (const char* op : {"Log", "Sqrt", "Reciprocal"}) tg.output(tg.node(op, {pos}));
  tg.output(tg.node("Clip", {cv, tg.constant("lo", Tensor::scalar<float>(-0.2f)),
                             tg.constant("hi", Tensor::scalar<float>(0.3f))}));
  auto st = expect_cuda_matches_reference(tg, 1e-4, 1e-5);
  EXPECT_FALSE(any_fallback(st)) << join(st);
}

TEST(CudaExecutor, BinaryBroadcasting) {
  SKIP_WITHOUT_GPU();
  struct C {
    std::string op;
    Shape b;
    bool const_b;
  };
  for (const C& c : {C{"Add", {2, 8, 5, 6}, false}, C{"Sub", {1, 8, 1, 1}, true},
                     C{"Mul", {8, 1, 1}, true}, C{"Div", {6}, false}, C{"Max", {5, 1}, false},
                     C{"Min", {}, true}, C{"PRelu", {8, 1, 1}, true}, C{"Pow", {}, true}}) {
    SCOPED_TRACE(c.op + " " + shape_str(c.b));
    TestGraph tg;
    int x = tg.input("x", {2, 3, 5, 6});
    int cv = tg.node("Conv", {x, tg.weight("w", {8, 3, 1, 1})});  // NHWC operand
    int pos =
        tg.node("Add", {tg.node("Abs", {cv}), tg.constant("one", Tensor::scalar<float>(1.f))});
    int b = c.const_b ? (c.op == "Pow" ? tg.constant("e", Tensor::scalar<float>(1.5f))
                                       : tg.weight("b", c.b))
                      : tg.input("b", c.b);
    if (c.op == "Div")
      b = tg.node("Add", {tg.node("Abs", {b}), tg.constant("h", Tensor::scalar<float>(0.5f))});
    tg.output(tg.node(c.op, {c.op == "Pow" ? pos : cv, b}));
    // Broadcast on the left (not for Div: dividing by conv outputs near 0 amplifies rounding).
    if (c.op != "PRelu" && c.op != "Pow" && c.op != "Div") tg.output(tg.node(c.op, {b, cv}));
    auto ops = expect_cuda_matches_reference(tg);
    EXPECT_FALSE(any_fallback(ops)) << join(ops);
  }
}

TEST(CudaExecutor, AddReluAndMixedLayouts) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {1, 4, 6, 5});
  int cv =
      tg.node("Conv", {x, tg.weight("w", {4, 4, 3, 3}, 0.3f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int s = tg.node("Mul", {x, cv});  // plain x times NHWC cv
  tg.output(tg.node("Relu", {tg.node("Sub", {s, x})}));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_TRUE(has_op(ops, "Sub+Relu")) << join(ops);
}

// ---- data movement ------------------------------------------------------------------------

TEST(CudaExecutor, TransposeSliceSplitCastReduce) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {2, 6, 5, 7});
  int cv = tg.node("Conv", {x, tg.weight("w", {6, 6, 1, 1})});
  tg.output(tg.node("Transpose", {cv}, attrs({{"perm", I{0, 2, 3, 1}}})));  // a view of NHWC
  tg.output(tg.node("Transpose", {x}, attrs({{"perm", I{3, 1, 0, 2}}})));
  auto i64 = [](I v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); };
  tg.output(
      tg.node("Slice", {cv, tg.constant("st", i64({1, -1})), tg.constant("en", i64({5, -100})),
                        tg.constant("ax", i64({1, 3})), tg.constant("sp", i64({2, -2}))}));
  int sp =
      tg.node_n("Split", {cv, tg.constant("split", i64({2, 4}))}, attrs({{"axis", int64_t{1}}}), 2);
  for (int o : tg.g.nodes[static_cast<size_t>(sp)].outputs) tg.output(o);
  int h = tg.node("Cast", {cv}, attrs({{"to", int64_t{10}}}));
  tg.output(tg.node("Cast", {h}, attrs({{"to", int64_t{1}}})));
  tg.output(tg.node("ReduceMean", {cv, tg.constant("ra", i64({2, 3}))}));
  tg.output(
      tg.node("ReduceSum", {x, tg.constant("rb", i64({-1}))}, attrs({{"keepdims", int64_t{0}}})));
  tg.output(tg.node("ReduceMax", {cv, tg.constant("rc", i64({1}))}));
  auto ops = expect_cuda_matches_reference(tg, 1e-3, 1e-3);  // the f16 round trip
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, PadConstant) {
  SKIP_WITHOUT_GPU();
  auto i64 = [](I v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); };
  TestGraph tg;
  int x = tg.input("x", {2, 3, 5, 6});
  int cv = tg.node("Conv", {x, tg.weight("w", {4, 3, 1, 1})});
  // Spatial pads of an NHWC tensor, then a conv on it.
  int p1 = tg.node("Pad", {cv, tg.constant("p1", i64({0, 0, 1, 2, 0, 0, 3, 0})),
                           tg.constant("v1", Tensor::scalar<float>(0.5f))});
  tg.output(tg.node("Conv", {p1, tg.weight("w2", {2, 4, 3, 3}, 0.3f)}));
  // Every dim of a plain tensor; the axes form.
  tg.output(tg.node("Pad", {x, tg.constant("p2", i64({1, 0, 2, 1, 0, 1, 0, 2}))}));
  tg.output(tg.node(
      "Pad", {x, tg.constant("p3", i64({1, 2})), tg.constant("v3", Tensor::scalar<float>(-2.f)),
              tg.constant("a3", i64({-1}))}));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, ResizeAndUpsample) {
  SKIP_WITHOUT_GPU();
  auto f32 = [](std::vector<float> v) {
    return Tensor::from_vector<float>({static_cast<int64_t>(v.size())}, v);
  };
  auto i64 = [](I v) { return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v); };
  struct C {
    std::string mode, coord, nearest;
    std::vector<float> scales;
    I sizes;
  };
  for (const C& c : {C{"nearest", "asymmetric", "floor", {1, 1, 2, 2}, {}},
                     C{"nearest", "half_pixel", "round_prefer_floor", {1, 1, 2, 3}, {}},
                     C{"nearest", "half_pixel", "round_prefer_ceil", {}, {2, 4, 11, 5}},
                     C{"linear", "half_pixel", "", {1, 1, 2, 2}, {}},
                     C{"linear", "pytorch_half_pixel", "", {}, {2, 4, 13, 4}},
                     C{"linear", "align_corners", "", {}, {2, 4, 9, 17}},
                     C{"linear", "asymmetric", "", {1, 1, 0.5f, 1.5f}, {}}}) {
    SCOPED_TRACE(c.mode + " " + c.coord + " " + c.nearest);
    TestGraph tg;
    int x = tg.input("x", {2, 3, 6, 7});
    int cv = tg.node("Conv", {x, tg.weight("w", {4, 3, 1, 1})});
    Attributes a = attrs({{"mode", c.mode}, {"coordinate_transformation_mode", c.coord}});
    if (!c.nearest.empty()) a.set("nearest_mode", c.nearest);
    std::vector<int> ins{cv, -1};
    if (!c.scales.empty())
      ins.push_back(tg.constant("s", f32(c.scales)));
    else
      ins.insert(ins.end(), {-1, tg.constant("z", i64(c.sizes))});
    tg.output(tg.node("Resize", ins, a));
    auto ops = expect_cuda_matches_reference(tg, 1e-4, 1e-5);
    EXPECT_FALSE(any_fallback(ops)) << join(ops);
  }
  TestGraph tg;
  int x = tg.input("x", {1, 2, 4, 5});
  tg.output(tg.node("Upsample", {x, tg.constant("s", f32({1, 1, 2, 3}))},
                    attrs({{"mode", std::string("nearest")}})));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

// ---- fallback -----------------------------------------------------------------------------

TEST(CudaExecutor, FallbackOpBetweenGpuSteps) {
  SKIP_WITHOUT_GPU();
  TestGraph tg;
  int x = tg.input("x", {1, 3, 6, 5});
  int cv =
      tg.node("Conv", {x, tg.weight("w", {4, 3, 3, 3}, 0.4f)}, attrs({{"pads", I{1, 1, 1, 1}}}));
  int hm = tg.node("Hardmax", {cv}, attrs({{"axis", int64_t{-1}}}));  // no GPU kernel
  int y = tg.node("Add", {hm, cv});
  tg.output(tg.node("Conv", {y, tg.weight("w2", {2, 4, 1, 1})}));
  auto ops = expect_cuda_matches_reference(tg);
  EXPECT_TRUE(has_op(ops, "fallback:Hardmax")) << join(ops);
}

// ---- graphs, pipelining, precision --------------------------------------------------------

TestGraph small_net() {
  TestGraph tg;
  int x = tg.input("x", {1, 3, 16, 15});
  int c1 = tg.node("Conv", {x, tg.weight("w1", {8, 3, 3, 3}, 0.4f), tg.weight("b1", {8}, 0.1f)},
                   attrs({{"pads", I{1, 1, 1, 1}}, {"strides", I{2, 2}}}));
  c1 = tg.node("Relu", {c1});
  int c2 = tg.node("Conv", {c1, tg.weight("w2", {8, 1, 3, 3}, 0.4f)},
                   attrs({{"pads", I{1, 1, 1, 1}}, {"group", int64_t{8}}}));
  c2 = tg.node("Clip", {c2, tg.constant("lo", Tensor::scalar<float>(0.f)),
                        tg.constant("hi", Tensor::scalar<float>(6.f))});
  int c3 = tg.node("Conv", {c2, tg.weight("w3", {8, 8, 1, 1}, 0.4f)});
  int s = tg.node("Relu", {tg.node("Add", {c3, c1})});
  int p =
      tg.node("MaxPool", {s},
              attrs({{"kernel_shape", I{3, 3}}, {"strides", I{2, 2}}, {"ceil_mode", int64_t{1}}}));
  int g = tg.node("Flatten", {tg.node("GlobalAveragePool", {p})});
  int fc = tg.node("Gemm", {g, tg.weight("fc", {5, 8}), tg.weight("fb", {5})},
                   attrs({{"transB", int64_t{1}}}));
  tg.output(tg.node("Softmax", {fc}, attrs({{"axis", int64_t{1}}})));
  tg.output(s);
  return tg;
}

TEST(CudaExecutor, GraphReplayWithNewInputs) {
  SKIP_WITHOUT_GPU();
  TestGraph tg = small_net();
  auto ops = expect_cuda_matches_reference(tg, 1e-4, 1e-5);
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
  // The same session: the same inputs again after others give the same results.
  SessionOptions co;
  co.backend = "cuda";
  Session gpu(tg.g, co);
  auto first = gpu.run(tg.feed);
  for (int i = 0; i < 3; ++i) gpu.run(other_feed(tg, 50u + static_cast<uint32_t>(i)));
  expect_close(gpu.run(tg.feed), first, 0, 1e-6, "replayed");
}

TEST(CudaExecutor, InFlightSubmitWaitInOrder) {
  SKIP_WITHOUT_GPU();
  TestGraph tg = small_net();
  SessionOptions ro;
  ro.backend = "reference";
  SessionOptions co;
  co.backend = "cuda";
  co.in_flight = 3;
  Session ref(tg.g, ro), gpu(tg.g, co);
  std::vector<std::map<std::string, Tensor>> feeds;
  for (int i = 0; i < 7; ++i)
    feeds.push_back(other_feed(tg, 300u + 10u * static_cast<uint32_t>(i)));
  std::vector<int64_t> tickets;
  for (int i = 0; i < 5; ++i) tickets.push_back(gpu.submit(feeds[static_cast<size_t>(i)]));
  for (int i = 0; i < 3; ++i)
    expect_close(gpu.wait(tickets[static_cast<size_t>(i)]), ref.run(feeds[static_cast<size_t>(i)]),
                 1e-4, 1e-5, "ticket " + std::to_string(i));
  for (int i = 5; i < 7; ++i) tickets.push_back(gpu.submit(feeds[static_cast<size_t>(i)]));
  for (int i = 3; i < 7; ++i)
    expect_close(gpu.wait(tickets[static_cast<size_t>(i)]), ref.run(feeds[static_cast<size_t>(i)]),
                 1e-4, 1e-5, "ticket " + std::to_string(i));
  // A plain run between pipelined ones.
  expect_close(gpu.run(feeds[0]), ref.run(feeds[0]), 1e-4, 1e-5, "run after submits");
}

TEST(CudaExecutor, Fp16PrecisionWithinHalfRounding) {
  SKIP_WITHOUT_GPU();
  // Weights and activations stored in f16 (unit roundoff 2^-11 ~ 4.9e-4), fp32 accumulation:
  // each layer adds a few roundings relative to values of order 1 (sums of <= 72 products of
  // |w| <= 0.4 and |x| <= ~2), five layers deep: 1e-2 relative + 1e-2 absolute covers it
  // with margin, while a wrong layout or a missing bias would be off by O(0.1 .. 1).
  TestGraph tg = small_net();
  auto ops = expect_cuda_matches_reference(tg, 1e-2, 1e-2, "fp16");
  EXPECT_FALSE(any_fallback(ops)) << join(ops);
}

TEST(CudaExecutor, Bf16Precision) {
  SKIP_WITHOUT_GPU();
  // bf16 keeps 8 mantissa bits (unit roundoff 2^-8 ~ 3.9e-3): 8x the fp16 bound.
  TestGraph tg = small_net();
  expect_cuda_matches_reference(tg, 8e-2, 8e-2, "bf16");
}

TEST(CudaExecutor, WrongInputShapeIsAnError) {
  SKIP_WITHOUT_GPU();
  TestGraph tg = small_net();
  SessionOptions co;
  co.backend = "cuda";
  Session gpu(tg.g, co);
  std::map<std::string, Tensor> bad{{"x", random_tensor({1, 3, 16, 16}, 5)}};
  EXPECT_THROW(gpu.run(bad), Error);
}

}  // namespace
}  // namespace anvil::testing
