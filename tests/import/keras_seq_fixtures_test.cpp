// Keras sequence and 3-D fixtures (tests/data/fixtures/keras-seq/, real Keras 2.3.1 outputs,
// see the README there): recurrent layers (SimpleRNN, LSTM, GRU in both reset_after modes,
// Bidirectional, return_state, go_backwards, Masking), Embedding, TimeDistributed, ConvLSTM2D
// and the 3-D layers. Every case is imported and run on the reference AND the cpu backend;
// the final outputs and every layer's activation ("<layer>" / "<layer>:<i>" for output i of a
// layer with return_state) must match Keras's numbers within the case's own tolerance.
//
// One quirk of the generator: a model with several outputs of one layer (lstm_return_state:
// [y, h, c] all named "lstm") lists one output "lstm", the last one written (c); Session
// returns outputs keyed by Keras layer name with the same rule (the last wins), and
// activations.npz holds all three ("lstm", "lstm:1", "lstm:2").
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include "import/fixture_case.h"

namespace fs = std::filesystem;

namespace {

struct SeqCase {
  std::string dir;      // absolute case folder
  std::string name;     // case folder name
  std::string variant;  // backend: "reference" or "cpu"
};

void PrintTo(const SeqCase& c, std::ostream* os) { *os << c.name << " (" << c.variant << ")"; }

std::string seq_root() { return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/keras-seq"; }

std::vector<SeqCase> list_cases() {
  std::vector<SeqCase> out;
  std::vector<fs::path> dirs;
  if (fs::is_directory(seq_root()))
    for (const auto& e : fs::directory_iterator(seq_root()))
      if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const char* backend : {"reference", "cpu"})
    for (const auto& d : dirs) out.push_back({d.string(), d.filename().string(), backend});
  return out;
}

TEST(KerasSeqFixtures, AllCasesPresent) {
  // The pool holds 21 cases; a missing folder would silently shrink the suite.
  EXPECT_EQ(list_cases().size(), 2u * 21u);
}

class KerasSeqFixture : public testing::TestWithParam<SeqCase> {};

TEST_P(KerasSeqFixture, OutputsAndEveryLayer) {
  using namespace anvil;
  const SeqCase& kc = GetParam();
  const nlohmann::json cj = anvil::testing::read_case_json(kc.dir);
  const double rtol = cj.value("rtol", 1e-5), atol = cj.value("atol", 1e-5);
  ImportOptions opt;
  for (auto it = cj["input_shapes"].begin(); it != cj["input_shapes"].end(); ++it)
    opt.input_shapes[it.key()] = it.value().get<std::vector<int64_t>>();
  std::map<std::string, Tensor> inputs;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
    inputs[it.key()] = read_npy(kc.dir + "/" + it.value().get<std::string>());
  std::map<std::string, Tensor> acts = read_npz(kc.dir + "/activations.npz");
  std::vector<std::string> names;
  for (const auto& [k, _] : acts)
    if (!inputs.count(k)) names.push_back(k);
  ASSERT_FALSE(names.empty());

  std::map<std::string, Tensor> outs, got;
  try {
    Graph g = import_model({kc.dir + "/model.h5"}, opt);
    EXPECT_EQ(g.framework, "keras");
    SessionOptions so;
    so.backend = kc.variant;
    so.taps = names;
    Session sess(g, so);
    outs = sess.run(inputs);
    got = sess.run(inputs, names);
  } catch (const Error& e) {
    FAIL() << "import/run failed: " << e.what();
  }
  EXPECT_EQ(outs.size(), cj["outputs"].size());
  for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it) {
    const Tensor want = read_npy(kc.dir + "/" + it.value().get<std::string>());
    ASSERT_TRUE(outs.count(it.key())) << "no output named " << it.key();
    const Comparison c = compare_tensors(outs[it.key()], want, rtol, atol);
    EXPECT_TRUE(c.shape_match) << "output " << it.key() << ": shape "
                               << shape_str(outs[it.key()].shape()) << ", Keras "
                               << shape_str(want.shape());
    EXPECT_TRUE(c.ok()) << "output " << it.key() << ": " << c.describe();
  }
  int bad = 0;
  for (const auto& n : names) {
    if (!got.count(n)) {
      ADD_FAILURE() << "layer " << n << " was not returned";
      ++bad;
      continue;
    }
    const Comparison c = compare_tensors(got[n], acts[n], rtol, atol);
    if (!c.ok()) {
      ADD_FAILURE() << "layer " << n << ": "
                    << (c.shape_match ? c.describe()
                                      : "shape " + shape_str(got[n].shape()) + ", Keras " +
                                            shape_str(acts[n].shape()));
      ++bad;
    }
  }
  ::testing::Test::RecordProperty("tensors_checked", static_cast<int>(names.size()));
  ::testing::Test::RecordProperty("tensors_bad", bad);
}

INSTANTIATE_TEST_SUITE_P(All, KerasSeqFixture, testing::ValuesIn(list_cases()),
                         anvil::testing::case_param_name<SeqCase>);

}  // namespace
