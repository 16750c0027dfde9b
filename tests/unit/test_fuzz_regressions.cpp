// Replays every crash input found by the libFuzzer targets (tests/fuzz/regressions/<target>/)
// through the same entry logic (tests/fuzz/fuzz_entry.h) in the normal build, so CI keeps them
// fixed. Only anvil::Error may come out of a parser; the entries swallow it, so any other
// exception fails the test and a crash fails the run.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

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
