// load_image: tiny PIL-made images (tests/data/images/make.py) with known pixels.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/image.h"
#include "anvil/tensor.h"

using namespace anvil;
namespace fs = std::filesystem;

namespace {

std::string img(const std::string& name) {
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/images/" + name;
}

// The pixel formulas of make.py (x = column, y = row), image size 4x3.
constexpr int W = 4, H = 3;
double rgb(int x, int y, int c) {
  const double v[3] = {10.0 * x + 50.0 * y, 20.0 + x, 200.0 - 30.0 * y};
  return v[c];
}
double grey(int x, int y) { return 30.0 * x + 60.0 * y; }

// Value at (c, y, x) of a (1,C,H,W) or (1,H,W,C) tensor.
float at(const Tensor& t, bool nchw, int c, int y, int x) {
  const auto& s = t.shape();
  if (nchw) return t.data<float>()[((c * s[2]) + y) * s[3] + x];
  return t.data<float>()[((y * s[2]) + x) * s[3] + c];
}

template <class F>
void expect_error(F&& f, const std::string& field, const std::string& file_part) {
  try {
    f();
    ADD_FAILURE() << "expected anvil::Error";
  } catch (const Error& e) {
    if (!field.empty()) {
      EXPECT_EQ(e.field(), field) << e.what();
    }
    EXPECT_NE(std::string(e.what()).find(file_part), std::string::npos) << e.what();
  }
}

struct TmpDir {
  fs::path path;
  TmpDir() : path(fs::temp_directory_path() / ("anvil_image_test_" + std::to_string(getpid()))) {
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
fs::path tmpdir() {
  static TmpDir d;
  return d.path;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST(Image, PngRgbNchwExactPixels) {
  Tensor t = load_image(img("rgb.png"));
  ASSERT_EQ(t.dtype(), DType::f32);
  ASSERT_EQ(t.shape(), (Shape{1, 3, H, W}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) EXPECT_EQ(at(t, true, c, y, x), rgb(x, y, c)) << c << y << x;
}

TEST(Image, BmpSamePixelsAsPng) {
  Tensor t = load_image(img("rgb.bmp"));
  ASSERT_EQ(t.shape(), (Shape{1, 3, H, W}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) EXPECT_EQ(at(t, true, c, y, x), rgb(x, y, c));
}

TEST(Image, NhwcLayout) {
  ImagePreprocess p;
  p.nchw = false;
  Tensor t = load_image(img("rgb.png"), p);
  ASSERT_EQ(t.shape(), (Shape{1, H, W, 3}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) EXPECT_EQ(at(t, false, c, y, x), rgb(x, y, c));
  // Flat order check: the first pixel's three channels come first.
  EXPECT_EQ(t.data<float>()[0], 0.0f);
  EXPECT_EQ(t.data<float>()[1], 20.0f);
  EXPECT_EQ(t.data<float>()[2], 200.0f);
  EXPECT_EQ(t.data<float>()[3], 10.0f);  // pixel (1, 0), R
}

TEST(Image, BgrReordersChannels) {
  for (bool nchw : {true, false}) {
    ImagePreprocess p;
    p.bgr = true;
    p.nchw = nchw;
    Tensor t = load_image(img("rgb.png"), p);
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        EXPECT_EQ(at(t, nchw, 0, y, x), rgb(x, y, 2));
        EXPECT_EQ(at(t, nchw, 1, y, x), rgb(x, y, 1));
        EXPECT_EQ(at(t, nchw, 2, y, x), rgb(x, y, 0));
      }
  }
}

TEST(Image, DivideMeanScalePerChannel) {
  ImagePreprocess p;
  p.divide = 255.0f;
  p.mean = {0.485f, 0.456f, 0.406f};
  p.scale = {1 / 0.229f, 1 / 0.224f, 1 / 0.225f};
  Tensor t = load_image(img("rgb.png"), p);
  const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        EXPECT_NEAR(at(t, true, c, y, x), (rgb(x, y, c) / 255.0 - mean[c]) / stdv[c], 1e-5);
}

TEST(Image, MeanAppliesAfterBgrAndSingleValuesBroadcast) {
  ImagePreprocess p;
  p.bgr = true;
  p.mean = {103.939f, 116.779f, 123.68f};  // Caffe VGG: B, G, R means
  Tensor t = load_image(img("rgb.png"), p);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      EXPECT_NEAR(at(t, true, 0, y, x), rgb(x, y, 2) - 103.939, 1e-4);
      EXPECT_NEAR(at(t, true, 2, y, x), rgb(x, y, 0) - 123.68, 1e-4);
    }
  ImagePreprocess q;
  q.mean = {127.5f};
  q.scale = {2.0f};
  q.divide = 2.0f;
  Tensor u = load_image(img("rgb.png"), q);
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(at(u, true, c, 2, 3), (rgb(3, 2, c) / 2.0 - 127.5) * 2.0, 1e-4);
}

TEST(Image, GreyKeptReplicatedOrForced) {
  Tensor g = load_image(img("grey.png"));
  ASSERT_EQ(g.shape(), (Shape{1, 1, H, W}));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) EXPECT_EQ(at(g, true, 0, y, x), grey(x, y));

  ImagePreprocess p;
  p.channels = 3;
  Tensor g3 = load_image(img("grey.png"), p);
  ASSERT_EQ(g3.shape(), (Shape{1, 3, H, W}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) EXPECT_EQ(at(g3, true, c, y, x), grey(x, y));

  // RGB forced to grey with ITU-R BT.601 luma.
  ImagePreprocess q;
  q.channels = 1;
  q.nchw = false;
  Tensor l = load_image(img("rgb.png"), q);
  ASSERT_EQ(l.shape(), (Shape{1, H, W, 1}));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      EXPECT_NEAR(at(l, false, 0, y, x),
                  0.299 * rgb(x, y, 0) + 0.587 * rgb(x, y, 1) + 0.114 * rgb(x, y, 2), 1e-3);
}

TEST(Image, RgbaDropsAlpha) {
  Tensor t = load_image(img("rgba.png"));
  ASSERT_EQ(t.shape(), (Shape{1, 3, H, W}));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) EXPECT_EQ(at(t, true, c, y, x), rgb(x, y, c));
  ImagePreprocess p;
  p.channels = 1;
  Tensor l = load_image(img("rgba.png"), p);
  ASSERT_EQ(l.shape(), (Shape{1, 1, H, W}));
  EXPECT_NEAR(at(l, true, 0, 1, 2),
              0.299 * rgb(2, 1, 0) + 0.587 * rgb(2, 1, 1) + 0.114 * rgb(2, 1, 2), 1e-3);
}

TEST(Image, JpegSolidColour) {
  Tensor t = load_image(img("solid.jpg"));
  ASSERT_EQ(t.shape(), (Shape{1, 3, 8, 16}));
  const double want[3] = {200, 100, 50};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 16; ++x) EXPECT_NEAR(at(t, true, c, y, x), want[c], 3.0);
}

// Upscaling by 2 is plain bilinear with pixel centres at +0.5 and clamped edges:
// output x samples input coordinate u = (x + 0.5) / 2 - 0.5, and grey() is linear in x and y.
TEST(Image, ResizeUpBilinear) {
  ImagePreprocess p;
  p.width = 2 * W;
  p.height = 2 * H;
  Tensor t = load_image(img("grey.png"), p);
  ASSERT_EQ(t.shape(), (Shape{1, 1, 2 * H, 2 * W}));
  auto clampd = [](double v, double hi) { return v < 0 ? 0 : v > hi ? hi : v; };
  for (int y = 0; y < 2 * H; ++y)
    for (int x = 0; x < 2 * W; ++x) {
      double u = clampd((x + 0.5) / 2 - 0.5, W - 1), v = clampd((y + 0.5) / 2 - 0.5, H - 1);
      EXPECT_NEAR(at(t, true, 0, y, x), 30 * u + 60 * v, 1e-3) << x << "," << y;
    }
}

// Halving the width: a triangle filter of radius 2 input pixels centred on u = 2x + 0.5, so
// weights 1/8, 3/8, 3/8, 1/8 on pixels 2x-1 .. 2x+2 (edge pixels repeated).
TEST(Image, ResizeDownAntialiased) {
  ImagePreprocess p;
  p.width = 2;
  p.height = H;
  p.nchw = false;
  Tensor t = load_image(img("grey.png"), p);
  ASSERT_EQ(t.shape(), (Shape{1, H, 2, 1}));
  for (int y = 0; y < H; ++y) {
    auto g = [&](int x) { return grey(x < 0 ? 0 : x > W - 1 ? W - 1 : x, y); };
    for (int x = 0; x < 2; ++x) {
      double want = (g(2 * x - 1) + 3 * g(2 * x) + 3 * g(2 * x + 1) + g(2 * x + 2)) / 8;
      EXPECT_NEAR(at(t, false, 0, y, x), want, 1e-3) << x << "," << y;
    }
  }
  // A solid image stays solid at any size.
  ImagePreprocess q;
  q.width = 5;
  q.height = 3;
  Tensor s = load_image(img("solid.jpg"), q);
  ASSERT_EQ(s.shape(), (Shape{1, 3, 3, 5}));
  for (int i = 0; i < 15; ++i) EXPECT_NEAR(s.data<float>()[i], 200, 3.0);
}

TEST(Image, BadOptionsThrow) {
  const std::string f = img("rgb.png");
  ImagePreprocess p;
  p.mean = {1, 2};
  expect_error([&] { load_image(f, p); }, "mean", "rgb.png");
  p = {};
  p.scale = {1, 2, 3, 4};
  expect_error([&] { load_image(f, p); }, "scale", "rgb.png");
  p = {};
  p.channels = 1;
  p.mean = {1, 2, 3};  // one channel after forcing grey
  expect_error([&] { load_image(f, p); }, "mean", "rgb.png");
  p = {};
  p.channels = 2;
  expect_error([&] { load_image(f, p); }, "channels", "rgb.png");
  p = {};
  p.width = 10;
  expect_error([&] { load_image(f, p); }, "size", "rgb.png");
  p = {};
  p.width = -1;
  p.height = -1;
  expect_error([&] { load_image(f, p); }, "size", "rgb.png");
  p = {};
  p.width = 1 << 20;
  p.height = 1 << 20;
  expect_error([&] { load_image(f, p); }, "size", "rgb.png");
  p = {};
  p.divide = 0;
  expect_error([&] { load_image(f, p); }, "divide", "rgb.png");
}

TEST(Image, BadFilesThrowNamingTheFile) {
  expect_error([] { load_image(img("no_such_image.png")); }, "", "no_such_image.png");
  expect_error([] { load_image(img("make.py")); }, "", "make.py");
  expect_error([] { load_image(ANVIL_SOURCE_DIR "/tests/data/images"); }, "", "tests/data/images");
  // Every truncation of a PNG and a JPEG: an anvil::Error or a decoded image, never a crash.
  for (const char* name : {"rgb.png", "solid.jpg", "rgb.bmp"}) {
    const std::string bytes = slurp(img(name));
    int errors = 0;
    for (size_t n = 0; n < bytes.size(); n += 3) {
      const std::string path = (tmpdir() / (std::string("cut_") + name)).string();
      {
        std::ofstream o(path, std::ios::binary);
        o.write(bytes.data(), static_cast<std::streamsize>(n));
      }
      try {
        Tensor t = load_image(path);
        EXPECT_EQ(t.rank(), 4);
      } catch (const Error& e) {
        ++errors;
        EXPECT_NE(std::string(e.what()).find("cut_"), std::string::npos) << e.what();
      }
    }
    EXPECT_GT(errors, 0) << name;
  }
}

// Decoder failures give a reason: never empty or binary (stb builds the reason of an unknown
// PNG chunk from the file's bytes), and an unsupported format is named as such.
TEST(Image, DecodeFailuresGiveAReadableReason) {
  std::string png = slurp(img("rgb.png"));
  ASSERT_GT(png.size(), 40u);
  // The chunk after IHDR (8-byte signature + 25-byte IHDR chunk): its type's first byte 0.
  png[8 + 25 + 4] = '\0';
  const std::string path = (tmpdir() / "chunk.png").string();
  {
    std::ofstream o(path, std::ios::binary);
    o << png;
  }
  try {
    load_image(path);
    ADD_FAILURE() << "expected anvil::Error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("corrupt PNG file"), std::string::npos) << m;
    EXPECT_NE(m.back(), ' ') << m;
    for (char c : m) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << m;
  }
  const std::string webp = (tmpdir() / "x.webp").string();
  {
    std::ofstream o(webp, std::ios::binary);
    o << std::string("RIFF\x10\0\0\0WEBPVP8 ", 16);
  }
  expect_error([&] { load_image(webp); }, "", "WebP");
}
