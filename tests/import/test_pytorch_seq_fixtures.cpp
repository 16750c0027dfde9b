// PyTorch recurrent fixtures (tests/data/pytorch-seq/, made by gen.py there: nn.LSTM / nn.GRU /
// nn.RNN exported by torch.onnx with PyTorch's own outputs): every case is imported and run on
// the reference backend; its outputs must match PyTorch's within the case's tolerance
// (rtol 1e-5, atol 1e-6). tests/unit/cpu_rnn_test.cpp runs the same cases on the cpu backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "import/fixture_case.h"

namespace fs = std::filesystem;

namespace {

struct SeqCase {
  std::string dir, name, variant = "reference";
};

void PrintTo(const SeqCase& c, std::ostream* os) { *os << c.name; }

std::vector<SeqCase> list_cases() {
  std::vector<SeqCase> out;
  fs::path root = fs::path(ANVIL_SOURCE_DIR) / "tests/data/pytorch-seq";
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "case.json"))
      out.push_back({e.path().string(), e.path().filename().string()});
  std::sort(out.begin(), out.end(),
            [](const SeqCase& a, const SeqCase& b) { return a.name < b.name; });
  return out;
}

class PytorchSeqFixture : public testing::TestWithParam<SeqCase> {};

TEST_P(PytorchSeqFixture, OutputsMatchPytorch) {
  const SeqCase& c = GetParam();
  EXPECT_EQ(anvil::testing::check_fixture_case(c.dir, {c.dir + "/model.onnx"}, "tensor"), "onnx");
}

INSTANTIATE_TEST_SUITE_P(All, PytorchSeqFixture, testing::ValuesIn(list_cases()),
                         anvil::testing::case_param_name<SeqCase>);

TEST(PytorchSeqFixtureSet, AllCasesPresent) {
  // gen.py: lstm x3, gru x3 (one with sequence_lens), rnn x2, Embedding + LSTM.
  EXPECT_EQ(list_cases().size(), 9u);
}

}  // namespace
