// The cpu backend's RNN/LSTM/GRU (src/backend/cpu/rnn_handler.cpp, oneDNN RNN primitives)
// against the reference kernels: every form oneDNN takes (directions, layouts, optional
// inputs, peepholes, lbr-GRU, RNN activations) on random shapes, checking that the node ran
// on oneDNN; the forms it lacks (step_mask, clip, input_forget, short sequence_lens, other
// activations) fall back and still match; and the PyTorch fixtures (tests/data/pytorch-seq) on
// the cpu backend against PyTorch's outputs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/verify.h"
#include "cpu_test_util.h"

namespace fs = std::filesystem;
using namespace anvil;
using namespace anvil::testing;

namespace {

struct Form {
  std::string op = "LSTM";
  std::string direction = "forward";
  int64_t layout = 0;
  bool bias = true, init_h = true, init_c = true, peep = false, lbr = false;
  bool full_lens = false;  // sequence_lens all equal to seq_length (oneDNN still runs it)
  std::string act;         // RNN: activations[0]
  int nout = 0;            // outputs of the node (0: all)
  // forms oneDNN lacks
  bool mask = false, short_lens = false, clip = false, input_forget = false;
  std::vector<std::string> acts;  // custom activation list
};

std::string describe(const Form& f) {
  std::ostringstream s;
  s << f.op << " " << f.direction << " layout " << f.layout << (f.bias ? " B" : "")
    << (f.init_h ? " h0" : "") << (f.init_c ? " c0" : "") << (f.peep ? " P" : "")
    << (f.lbr ? " lbr" : "") << (f.full_lens ? " lens" : "") << " " << f.act << " outputs "
    << f.nout << (f.mask ? " mask" : "") << (f.short_lens ? " short_lens" : "")
    << (f.clip ? " clip" : "") << (f.input_forget ? " input_forget" : "");
  return s.str();
}

// Builds the node on random shapes; returns whether the cpu backend ran it on oneDNN.
bool run_form(const Form& f, uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // Odd seeds take a batch >= 8, where the handler lets oneDNN choose blocked weights.
  const int64_t T = pick(1, 6), N = seed % 2 ? pick(8, 11) : pick(1, 4), I = pick(1, 9),
                H = pick(1, 17);
  const int64_t D = f.direction == "bidirectional" ? 2 : 1;
  const int64_t G = f.op == "LSTM" ? 4 : f.op == "GRU" ? 3 : 1;
  TestGraph tg;
  tg.seed = seed * 7 + 1;
  const Shape xs = f.layout == 0 ? Shape{T, N, I} : Shape{N, T, I};
  const Shape ss = f.layout == 0 ? Shape{D, N, H} : Shape{N, D, H};
  std::vector<int> ins = {tg.input("x", xs), tg.weight("w", {D, G * H, I}, 0.6f),
                          tg.weight("r", {D, G * H, H}, 0.6f)};
  ins.push_back(f.bias ? tg.weight("b", {D, 2 * G * H}, 0.5f) : -1);
  if (f.full_lens || f.short_lens) {
    std::vector<int32_t> lens(static_cast<size_t>(N), static_cast<int32_t>(T));
    if (f.short_lens) lens[0] = static_cast<int32_t>(T / 2);
    ins.push_back(tg.constant("lens", Tensor::from_vector<int32_t>({N}, lens)));
  } else {
    ins.push_back(-1);
  }
  ins.push_back(f.init_h ? tg.input("h0", ss) : -1);
  if (f.op == "LSTM") {
    ins.push_back(f.init_c ? tg.input("c0", ss) : -1);
    ins.push_back(f.peep ? tg.weight("p", {D, 3 * H}, 0.5f) : -1);
  }
  if (f.mask) {
    Tensor m(DType::f32, f.layout == 0 ? Shape{T, N} : Shape{N, T});
    for (int64_t i = 0; i < m.numel(); ++i) m.set(i, i % 3 == 1 ? 0.0 : 1.0);
    ins.push_back(tg.constant("mask", m));
  }
  while (!ins.empty() && ins.back() < 0) ins.pop_back();
  Attributes a;
  a.set("direction", f.direction);
  a.set("layout", f.layout);
  a.set("hidden_size", H);
  if (f.lbr) a.set("linear_before_reset", int64_t{1});
  if (!f.act.empty()) a.set("activations", std::vector<std::string>(static_cast<size_t>(D), f.act));
  if (!f.acts.empty()) a.set("activations", f.acts);
  if (f.clip) a.set("clip", 0.7);
  if (f.input_forget) a.set("input_forget", int64_t{1});
  const int nout = f.nout > 0 ? f.nout : f.op == "LSTM" ? 3 : 2;
  int n = tg.node_n(f.op, ins, a, nout);
  for (int o : tg.g.nodes[static_cast<size_t>(n)].outputs) tg.output(o);
  SCOPED_TRACE(describe(f) + " T" + std::to_string(T) + " N" + std::to_string(N) + " I" +
               std::to_string(I) + " H" + std::to_string(H));
  expect_cpu_matches_reference(tg, {}, 1e-4, 1e-5);
  for (const auto& s : cpu_steps(tg))
    if (s == f.op) return true;
  return false;
}

std::vector<Form> onednn_forms() {
  std::vector<Form> r;
  for (const char* dir : {"forward", "reverse", "bidirectional"})
    for (int64_t layout : {0, 1}) {
      Form l;
      l.direction = dir;
      l.layout = layout;
      r.push_back(l);
      Form p = l;
      p.peep = true;
      p.init_c = false;
      r.push_back(p);
      Form nb = l;
      nb.bias = false;
      nb.init_h = false;
      nb.full_lens = true;
      r.push_back(nb);
      Form two = l;
      two.nout = 2;
      two.init_h = false;
      r.push_back(two);
      for (bool lbr : {false, true}) {
        Form g = l;
        g.op = "GRU";
        g.lbr = lbr;
        g.init_c = false;
        g.nout = lbr ? 1 : 0;
        r.push_back(g);
      }
      for (const char* act : {"Tanh", "Relu", "Sigmoid", "LeakyRelu"}) {
        Form v = l;
        v.op = "RNN";
        v.act = act;
        v.init_c = false;
        v.init_h = layout == 0;
        r.push_back(v);
      }
    }
  return r;
}

}  // namespace

TEST(CpuRnn, OneDnnFormsMatchReference) {
  uint32_t seed = 1;
  for (const Form& f : onednn_forms()) {
    for (int rep = 0; rep < 2; ++rep)
      EXPECT_TRUE(run_form(f, seed++)) << describe(f) << ": did not run on oneDNN";
  }
}

TEST(CpuRnn, FormsOneDnnLacksFallBackAndMatch) {
  std::vector<Form> forms;
  Form m;
  m.mask = true;
  forms.push_back(m);
  Form gm = m;
  gm.op = "GRU";
  gm.init_c = false;
  gm.layout = 1;
  forms.push_back(gm);
  Form sl;
  sl.short_lens = true;
  sl.direction = "bidirectional";
  forms.push_back(sl);
  Form c;
  c.clip = true;
  forms.push_back(c);
  Form fi;
  fi.input_forget = true;
  forms.push_back(fi);
  Form hs;
  hs.acts = {"HardSigmoid", "Tanh", "Tanh"};
  forms.push_back(hs);
  uint32_t seed = 100;
  for (const Form& f : forms) EXPECT_FALSE(run_form(f, seed++)) << describe(f);
}

TEST(CpuRnn, PytorchFixturesOnCpu) {
  // PyTorch's outputs at rtol 1e-4, atol 1e-5: oneDNN accumulates in float32 in its own order
  // (the reference backend meets rtol 1e-5, tests/import/test_pytorch_seq_fixtures.cpp).
  const fs::path root = fs::path(ANVIL_SOURCE_DIR) / "tests/data/pytorch-seq";
  int cases = 0;
  for (const auto& e : fs::directory_iterator(root)) {
    if (!fs::exists(e.path() / "case.json")) continue;
    ++cases;
    SCOPED_TRACE(e.path().filename().string());
    std::ifstream f(e.path() / "case.json");
    const nlohmann::json cj = nlohmann::json::parse(f);
    std::map<std::string, Tensor> feed;
    for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it)
      feed[it.key()] = read_npy((e.path() / it.value().get<std::string>()).string());
    Graph g = import_model({(e.path() / "model.onnx").string()}, {});
    SessionOptions so;
    so.backend = "cpu";
    so.threads = 1;
    Session s(g, so);
    auto out = s.run(feed);
    for (auto it = cj["outputs"].begin(); it != cj["outputs"].end(); ++it) {
      const Tensor want = read_npy((e.path() / it.value().get<std::string>()).string());
      ASSERT_TRUE(out.count(it.key())) << it.key();
      const Comparison c = compare_tensors(out[it.key()], want, 1e-4, 1e-5);
      EXPECT_TRUE(c.ok()) << it.key() << ": " << c.describe();
    }
  }
  EXPECT_EQ(cases, 9);
}

TEST(CpuRnn, Bf16StorageRunsOnOneDnnNearFp32) {
  // Precision::bf16: weights and activations stored as bf16 (bias and peepholes f32 for
  // oneDNN); within bf16 rounding of the fp32 reference. oneDNN runs bf16 RNNs where the CPU
  // has AVX512-BF16 (else the node falls back to the reference kernel, also checked here).
  for (const char* op : {"LSTM", "GRU", "RNN"}) {
    SCOPED_TRACE(op);
    const std::string o = op;
    const int64_t T = 5, N = 3, I = 6, H = 8, G = o == "LSTM" ? 4 : o == "GRU" ? 3 : 1;
    TestGraph tg;
    std::vector<int> ins = {tg.input("x", {T, N, I}),
                            tg.weight("w", {2, G * H, I}, 0.5f),
                            tg.weight("r", {2, G * H, H}, 0.5f),
                            tg.weight("b", {2, 2 * G * H}, 0.5f),
                            -1,
                            tg.input("h0", {2, N, H})};
    if (o == "LSTM") {
      ins.push_back(tg.input("c0", {2, N, H}));
      ins.push_back(tg.weight("p", {2, 3 * H}, 0.5f));
    }
    Attributes a;
    a.set("direction", std::string("bidirectional"));
    if (o == "GRU") a.set("linear_before_reset", int64_t{1});
    const int n = tg.node_n(op, ins, a, o == "LSTM" ? 3 : 2);
    for (int v : tg.g.nodes[static_cast<size_t>(n)].outputs) tg.output(v);
    SessionOptions ro, co;
    ro.backend = "reference";
    co.backend = "cpu";
    co.precision = Precision::bf16;
    co.profile = true;
    Session ref(tg.g, ro), cpu(tg.g, co);
    auto want = ref.run(tg.feed);
    auto got = cpu.run(tg.feed);
    for (const auto& [name, t] : want) {
      ASSERT_TRUE(got.count(name)) << name;
      EXPECT_LE(closeness(got[name], t, 3e-2, 3e-2), 1.0) << name;
    }
    bool onednn = false;
    for (const auto& s : cpu.profile()) onednn |= s.op == o;
    if (__builtin_cpu_supports("avx512bf16")) {
      EXPECT_TRUE(onednn) << "did not run on oneDNN";
    }
  }
}
