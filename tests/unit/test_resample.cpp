// The image resizer (core/resample.h) against a float64 reference of the same triangle filter
// written directly in 2-D, for every source width and height 1..1024 into 224, a sample of
// enlargements and 2-D sizes, and through load_image (sizes that aborted stb_image_resize v1).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "anvil/image.h"
#include "core/resample.h"

using namespace anvil;

namespace {

// Weight of input pixel i (any integer, outside the image too) for output o of in -> out.
double tri(int64_t i, int o, int in, int out) {
  const double s = std::max(1.0, static_cast<double>(in) / out);
  const double u = (o + 0.5) * in / out;
  return std::max(0.0, 1.0 - std::fabs(i + 0.5 - u) / s);
}

// The filter of resample.h evaluated in 2-D in double, edges repeated by clamping indices.
std::vector<double> reference(const std::vector<float>& src, int w, int h, int C, int ow, int oh) {
  std::vector<double> out(static_cast<size_t>(ow) * oh * C);
  const double sx = std::max(1.0, static_cast<double>(w) / ow);
  const double sy = std::max(1.0, static_cast<double>(h) / oh);
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x)
      for (int c = 0; c < C; ++c) {
        const double ux = (x + 0.5) * w / ow, uy = (y + 0.5) * h / oh;
        double num = 0, den = 0;
        for (int64_t j = static_cast<int64_t>(uy - sy) - 2; j <= static_cast<int64_t>(uy + sy) + 2;
             ++j)
          for (int64_t i = static_cast<int64_t>(ux - sx) - 2;
               i <= static_cast<int64_t>(ux + sx) + 2; ++i) {
            const double k = tri(i, x, w, ow) * tri(j, y, h, oh);
            if (k == 0) continue;
            const int64_t ci = std::clamp<int64_t>(i, 0, w - 1),
                          cj = std::clamp<int64_t>(j, 0, h - 1);
            num += k * src[(static_cast<size_t>(cj) * w + static_cast<size_t>(ci)) * C + c];
            den += k;
          }
        out[(static_cast<size_t>(y) * ow + x) * C + c] = num / den;
      }
  return out;
}

std::vector<float> random_image(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.0f, 255.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Max abs difference between resize_hwc and the reference (values 0..255).
double check(int w, int h, int C, int ow, int oh, unsigned seed) {
  const auto src = random_image(static_cast<size_t>(w) * h * C, seed);
  const auto got = resize_hwc(src, w, h, C, ow, oh);
  const auto want = reference(src, w, h, C, ow, oh);
  EXPECT_EQ(got.size(), want.size());
  double err = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i)
    err = std::max(err, std::fabs(got[i] - want[i]));
  return err;
}

}  // namespace

// stb_image_resize v1 asserted (`total < 1.1f`, SIGABRT) for most widths ~225..350 into 224.
TEST(Resample, EveryWidthAndHeightInto224) {
  for (int n = 1; n <= 1024; ++n) {
    EXPECT_LT(check(n, 1, 1, 224, 1, static_cast<unsigned>(n)), 1e-3) << "width " << n;
    EXPECT_LT(check(1, n, 1, 1, 224, static_cast<unsigned>(n) + 5000), 1e-3) << "height " << n;
  }
}

TEST(Resample, EnlargementsAndTwoDimensional) {
  for (int n : {1, 2, 3, 5, 7, 13, 64, 100, 111, 223})
    for (int o : {2, 9, 224, 225, 500, 1000}) {
      if (o <= n) continue;
      EXPECT_LT(check(n, 1, 1, o, 1, static_cast<unsigned>(n * 7 + o)), 1e-3) << n << "->" << o;
    }
  EXPECT_LT(check(300, 300, 3, 224, 224, 1), 1e-3);
  EXPECT_LT(check(640, 480, 3, 224, 224, 2), 1e-3);
  EXPECT_LT(check(17, 9, 1, 224, 160, 3), 1e-3);
  EXPECT_LT(check(230, 5, 3, 224, 40, 4), 1e-3);
  EXPECT_LT(check(1, 1, 3, 3, 2, 5), 1e-3);
  EXPECT_LT(check(5000, 2, 1, 1, 1, 6), 1e-3);
}

// The filter's promises: a constant image stays constant, same size is a copy, halving
// averages with weights 1/8 3/8 3/8 1/8, doubling interpolates with centres at +0.5.
TEST(Resample, FilterProperties) {
  std::vector<float> solid(37 * 23 * 3, 117.0f);
  for (float v : resize_hwc(solid, 37, 23, 3, 224, 224)) ASSERT_FLOAT_EQ(v, 117.0f);
  for (float v : resize_hwc(solid, 37, 23, 3, 5, 3)) ASSERT_FLOAT_EQ(v, 117.0f);
  const auto img = random_image(6 * 4, 9);
  EXPECT_EQ(resize_hwc(img, 6, 4, 1, 6, 4), img);
  const std::vector<float> row = {0, 8, 16, 40};
  auto half = resize_hwc(row, 4, 1, 1, 2, 1);
  EXPECT_NEAR(half[0], (0 * 1 + 0 * 3 + 8 * 3 + 16 * 1) / 8.0, 1e-5);
  EXPECT_NEAR(half[1], (8 * 1 + 16 * 3 + 40 * 3 + 40 * 1) / 8.0, 1e-5);
  auto twice = resize_hwc(row, 4, 1, 1, 8, 1);
  const double want[8] = {0, 2, 6, 10, 14, 22, 34, 40};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(twice[i], want[i], 1e-5) << i;
  EXPECT_ANY_THROW(resize_hwc(row, 4, 1, 1, 0, 1));
  EXPECT_ANY_THROW(resize_hwc(row, 3, 1, 1, 2, 1));
}

// A 300x300 photo into a 224x224 model: aborted the process with stb_image_resize v1.
TEST(Resample, LoadImage300Into224) {
  const std::string path = std::filesystem::temp_directory_path().string() + "/anvil_resample_" +
                           std::to_string(getpid()) + ".ppm";
  const int w = 300, h = 300;
  {
    std::ofstream f(path, std::ios::binary);
    f << "P6\n" << w << " " << h << "\n255\n";
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const unsigned char px[3] = {static_cast<unsigned char>(x * 255 / (w - 1)),
                                     static_cast<unsigned char>(y * 255 / (h - 1)), 77};
        f.write(reinterpret_cast<const char*>(px), 3);
      }
  }
  for (int ow : {224, 225, 299, 301}) {
    ImagePreprocess p;
    p.width = ow;
    p.height = 224;
    Tensor t = load_image(path, p);
    ASSERT_EQ(t.shape(), (Shape{1, 3, 224, ow}));
    const float* d = t.data<float>();
    const size_t plane = static_cast<size_t>(224) * ow;
    for (size_t i = 0; i < plane; ++i) {
      ASSERT_GE(d[i], 0.0f);
      ASSERT_LE(d[i], 255.0f);
      ASSERT_NEAR(d[2 * plane + i], 77.0f, 1e-3);
    }
    // A horizontal ramp stays a ramp: the first column is dark, the last bright.
    EXPECT_LT(d[0], 5.0f);
    EXPECT_GT(d[ow - 1], 250.0f);
  }
  std::filesystem::remove(path);
}
