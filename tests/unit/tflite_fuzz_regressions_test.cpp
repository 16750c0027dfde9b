// Replays the crash inputs found by fuzz_tflite (tests/fuzz/regressions/tflite/) through the
// fuzz entry logic (tests/fuzz/fuzz_entry.h: write model.tflite, import, run when small) in the
// normal build, and the TFLite fixtures through the same entry: only anvil::Error may come out
// of the importer, and the entry swallows it.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz/fuzz_entry.h"

namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void tflite_entry(const std::vector<uint8_t>& b) {
  anvil_fuzz::import_and_run({anvil_fuzz::write_file("model.tflite", b.data(), b.size())});
}

TEST(FuzzRegressionTflite, ReplaysFindings) {
  fs::path dir = fs::path(ANVIL_SOURCE_DIR) / "tests/fuzz/regressions/tflite";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "no findings recorded";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    EXPECT_NO_THROW(tflite_entry(bytes_of(f)));
  }
}

TEST(FuzzRegressionTflite, EntryRunsFixturesAndGarbage) {
  for (const char* c : {"add/add0", "conv/conv0"}) {
    auto b =
        bytes_of(fs::path(ANVIL_SOURCE_DIR) / "tests/data/fixtures/tflite" / c / "model.tflite");
    ASSERT_FALSE(b.empty());
    EXPECT_NO_THROW(tflite_entry(b));
  }
  const std::string garbage = "1234TFL3 not really a flatbuffer";
  EXPECT_NO_THROW(tflite_entry(std::vector<uint8_t>(garbage.begin(), garbage.end())));
}

}  // namespace
