// Replays every crash input found by the libFuzzer targets (tests/fuzz/regressions/<target>/)
// through the same entry logic (tests/fuzz/fuzz_entry.h) in the normal build, so CI keeps them
// fixed. Only anvil::Error may come out of a parser; the entries swallow it, so any other
// exception fails the test and a crash fails the run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "anvil/error.h"
#include "anvil/image.h"
#include "fuzz/fuzz_entry.h"

namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Replays tests/fuzz/regressions/<target>/*; returns how many files were replayed.
int replay(const std::string& target, const std::function<void(const uint8_t*, size_t)>& entry) {
  fs::path dir = fs::path(ANVIL_SOURCE_DIR) / "tests/fuzz/regressions" / target;
  if (!fs::is_directory(dir)) return 0;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    auto bytes = read_bytes(f);
    EXPECT_NO_THROW(entry(bytes.data(), bytes.size()));
  }
  return static_cast<int>(files.size());
}

}  // namespace

TEST(FuzzRegression, Onnx) { replay("onnx", anvil_fuzz::fuzz_onnx); }
TEST(FuzzRegression, KerasH5) { replay("keras_h5", anvil_fuzz::fuzz_keras_h5); }
TEST(FuzzRegression, KerasJson) { replay("keras_json", anvil_fuzz::fuzz_keras_json); }
TEST(FuzzRegression, CaffePrototxt) { replay("caffe_prototxt", anvil_fuzz::fuzz_caffe_prototxt); }
TEST(FuzzRegression, Caffemodel) { replay("caffemodel", anvil_fuzz::fuzz_caffemodel); }
TEST(FuzzRegression, Npy) { replay("npy", anvil_fuzz::fuzz_npy); }
TEST(FuzzRegression, Npz) { replay("npz", anvil_fuzz::fuzz_npz); }
// A 300-pixel-wide image into 224 aborted in stb_image_resize v1 (issue 19, item 1).
TEST(FuzzRegression, Image) { EXPECT_GE(replay("image", anvil_fuzz::fuzz_image), 1); }

// The entries themselves: a valid model goes through import and a run without throwing, and
// garbage is an anvil::Error swallowed by the entry.
TEST(FuzzRegression, EntriesRunValidInputs) {
  auto onnx = read_bytes(fs::path(ANVIL_SOURCE_DIR) / "models/demo/digits_cnn.onnx");
  ASSERT_FALSE(onnx.empty());
  EXPECT_NO_THROW(anvil_fuzz::fuzz_onnx(onnx.data(), onnx.size()));
  auto h5 = read_bytes(anvil_fuzz::keras_weights_file());
  ASSERT_FALSE(h5.empty());
  EXPECT_NO_THROW(anvil_fuzz::fuzz_keras_h5(h5.data(), h5.size()));
  const std::string garbage = "not a model";
  auto g = reinterpret_cast<const uint8_t*>(garbage.data());
  EXPECT_NO_THROW(anvil_fuzz::fuzz_onnx(g, garbage.size()));
  EXPECT_NO_THROW(anvil_fuzz::fuzz_caffe_prototxt(g, garbage.size()));
  EXPECT_NO_THROW(anvil_fuzz::fuzz_npy(g, garbage.size()));
  EXPECT_NO_THROW(anvil_fuzz::fuzz_npz(g, garbage.size()));
  EXPECT_NO_THROW(anvil_fuzz::fuzz_image(g, garbage.size()));
  auto png = read_bytes(fs::path(ANVIL_SOURCE_DIR) / "tests/data/images/rgb.png");
  ASSERT_FALSE(png.empty());
  EXPECT_NO_THROW(anvil_fuzz::fuzz_image(png.data(), png.size()));
}

// A BMP header claiming 60000x60000 pixels (and no pixel data): refused from the header, not
// decoded into a 10 GB buffer of zeros (issue 19, hardening).
TEST(FuzzRegression, ImageHeaderPixelCap) {
  std::vector<uint8_t> bmp(54, 0);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i)
      bmp[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
  };
  bmp[0] = 'B';
  bmp[1] = 'M';
  put32(2, 54);      // file size
  put32(10, 54);     // pixel data offset
  put32(14, 40);     // BITMAPINFOHEADER
  put32(18, 60000);  // width
  put32(22, 60000);  // height
  bmp[26] = 1;       // planes
  bmp[28] = 24;      // bits per pixel
  const fs::path p =
      fs::temp_directory_path() / ("anvil_huge_" + std::to_string(::getpid()) + ".bmp");
  {
    std::ofstream f(p, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bmp.data()), static_cast<std::streamsize>(bmp.size()));
  }
  try {
    anvil::load_image(p.string(), {});
    ADD_FAILURE() << "a 60000x60000 BMP header was accepted";
  } catch (const anvil::Error& e) {
    EXPECT_NE(std::string(e.what()).find("60000x60000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
  }
  fs::remove(p);
}
