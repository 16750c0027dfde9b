// Replays the crash inputs found by fuzz_tf_graphdef (tests/fuzz/regressions/tf_graphdef/)
// through the same entry logic as the fuzzer (tests/fuzz/fuzz_entry.h), so CI keeps them
// fixed: only anvil::Error may come out of the importer, and the entry swallows it.
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

void tf_entry(const std::vector<uint8_t>& b) {
  anvil_fuzz::import_and_run({anvil_fuzz::write_file("frozen_model.pb", b.data(), b.size())});
}

TEST(FuzzRegression, TfGraphdef) {
  fs::path dir = fs::path(ANVIL_SOURCE_DIR) / "tests/fuzz/regressions/tf_graphdef";
  std::vector<fs::path> files;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    EXPECT_NO_THROW(tf_entry(bytes_of(f)));
  }
}

TEST(FuzzRegression, TfGraphdefEntryRunsValidAndGarbage) {
  auto pb = bytes_of(fs::path(ANVIL_SOURCE_DIR) /
                     "tests/data/fixtures/tensorflow/pool_0/frozen_model.pb");
  ASSERT_FALSE(pb.empty());
  EXPECT_NO_THROW(tf_entry(pb));
  pb.resize(pb.size() / 2);  // truncated
  EXPECT_NO_THROW(tf_entry(pb));
  EXPECT_NO_THROW(tf_entry({'n', 'o', 'd', 'e', ' ', '{'}));
}

}  // namespace
