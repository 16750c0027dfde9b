// The input hypotheses of the diagnosis, one by one, on synthetic tensors: each names its own
// mistake and stays silent on the others and on unrelated differences.
#include <gtest/gtest.h>

#include <random>

#include "verify/diagnose.h"

namespace {
using namespace anvil;

Tensor image(int64_t n, int64_t h, int64_t w, int64_t c, uint32_t seed) {
  Tensor t(DType::f32, {n, h, w, c});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, u(rng));
  return t;
}

Tensor map(const Tensor& t, const std::function<double(int64_t, double)>& f) {
  Tensor r(t.dtype(), t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) r.set(i, f(i, t.get(i)));
  return r;
}

using Fn = std::optional<diag::Finding> (*)(const std::string&, const Tensor&, const Tensor&, bool,
                                            double, double);

// Which of the four input hypotheses fire for (ours, ref).
std::vector<std::string> fired(const Tensor& ours, const Tensor& ref, bool last = true) {
  std::vector<std::string> r;
  for (Fn f : {diag::input_channel_order, diag::input_scale, diag::input_mean, diag::input_layout})
    if (auto x = f("in", ours, ref, last, 1e-4, 1e-5)) r.push_back(x->diagnosis.cause);
  return r;
}

TEST(VerifyHypotheses, ChannelOrder) {
  Tensor ref = image(2, 4, 5, 3, 1);
  Tensor ours = map(ref, [&](int64_t i, double) { return ref.get(i - i % 3 + 2 - i % 3); });
  EXPECT_EQ(fired(ours, ref), std::vector<std::string>{"input_channel_order"});
}

TEST(VerifyHypotheses, Scale) {
  Tensor ref = image(1, 4, 4, 3, 2);
  auto r = diag::input_scale("in", map(ref, [](int64_t, double v) { return v / 255; }), ref, true,
                             1e-4, 1e-5);
  ASSERT_TRUE(r);
  EXPECT_NE(r->diagnosis.message.find("x 255"), std::string::npos) << r->diagnosis.message;
  EXPECT_EQ(fired(map(ref, [](int64_t, double v) { return v * 255; }), ref).at(0), "input_scale");
}

TEST(VerifyHypotheses, MeanPerChannel) {
  Tensor ref = image(1, 6, 6, 3, 3);
  const double m[3] = {0.485, 0.456, 0.406};  // ImageNet's, in RGB
  Tensor ours = map(ref, [&](int64_t i, double v) { return v + m[i % 3]; });
  auto r = diag::input_mean("in", ours, ref, true, 1e-4, 1e-5);
  ASSERT_TRUE(r);
  EXPECT_NE(r->diagnosis.message.find("ImageNet mean in RGB order"), std::string::npos)
      << r->diagnosis.message;
  EXPECT_EQ(fired(ours, ref), std::vector<std::string>{"input_mean"});
  // channels-first: the offset is per axis-1 channel
  Tensor nchw = transpose(ref, {0, 3, 1, 2}).clone();
  Tensor ours_c = map(nchw, [&](int64_t i, double v) { return v - 10 * (i / 36 % 3); });
  EXPECT_TRUE(diag::input_mean("in", ours_c, nchw, false, 1e-4, 1e-5));
}

TEST(VerifyHypotheses, Layout) {
  Tensor ref = image(2, 4, 5, 3, 4);  // NHWC
  Tensor nchw = transpose(ref, {0, 3, 1, 2}).clone();
  Tensor ours = nchw.reshaped(ref.shape());  // NCHW data handed over as NHWC
  EXPECT_EQ(fired(ours, ref), std::vector<std::string>{"input_layout"});
  // the reference stored NCHW with its own shape
  EXPECT_TRUE(diag::input_layout("in", ref, nchw, true, 1e-4, 1e-5));
}

TEST(VerifyHypotheses, SilentOnUnrelatedDifferences) {
  Tensor ref = image(1, 4, 4, 3, 5);
  EXPECT_TRUE(fired(image(1, 4, 4, 3, 6), ref).empty());  // other data
  EXPECT_TRUE(fired(map(ref, [](int64_t i, double v) { return i == 7 ? v + 1 : v; }), ref)
                  .empty());             // one value
  EXPECT_TRUE(fired(ref, ref).empty());  // equal
}

}  // namespace
