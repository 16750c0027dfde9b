// Concurrency contract of Session (include/anvil/session.h): N sessions of one model in N
// threads, N threads calling run() on one shared session, and submit()/wait() from several
// threads give bit-identical outputs to a single-threaded run, on the reference and the cpu
// backend (issue 19 item 6: the cpu backend crashed in a oneDNN JIT kernel).
// Models: Caffe fixtures, batch 1, 3x32x32: SqueezeNet-style (conv + ReLU, ceil-mode max
// pool, Fire modules with Concat, global average pool, Softmax) and a small VGG (3x3 convs
// with 16 channels: the Winograd kernels).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"

namespace fs = std::filesystem;
using namespace anvil;

namespace {

fs::path case_dir(const std::string& name) {
  return fs::path(ANVIL_SOURCE_DIR) / "tests/data/fixtures/caffe" / name;
}

bool same_bits(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, t] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second.dtype() != t.dtype() || it->second.shape() != t.shape() ||
        std::memcmp(it->second.raw(), t.raw(), t.nbytes()) != 0)
      return false;
  }
  return true;
}

struct Param {
  std::string backend;
  std::string model;  // a Caffe fixture with input "data" of shape (N, 3, 32, 32)
  int runs;           // per thread
};

class SessionThreads : public ::testing::TestWithParam<Param> {
 protected:
  static constexpr int kThreads = 4;
  Graph model() const {
    const fs::path d = case_dir(GetParam().model);
    ImportOptions io;
    io.input_shapes["data"] = {1, 3, 32, 32};
    return import_model({(d / "deploy.prototxt").string(), (d / "model.caffemodel").string()}, io);
  }
  std::map<std::string, Tensor> feed() const {
    const Tensor two = read_npy((case_dir(GetParam().model) / "inputs/data.npy").string());
    Tensor one(two.dtype(), {1, 3, 32, 32});  // the first image
    std::memcpy(one.raw(), two.raw(), one.nbytes());
    return {{"data", one}};
  }
  SessionOptions options() const {
    SessionOptions o;
    o.backend = GetParam().backend;
    // ANVIL_TEST_SESSION_THREADS=1: the ThreadSanitizer stage (libgomp is not instrumented).
    const char* env = std::getenv("ANVIL_TEST_SESSION_THREADS");
    o.threads = env ? std::atoi(env) : 2;
    return o;
  }
  std::map<std::string, Tensor> single() {
    Session s(model(), options());
    return s.run(feed());
  }
  // Runs body(thread index) in kThreads threads; counts the runs whose output differs.
  template <class F>
  int in_threads(F body) {
    std::atomic<int> bad{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; ++t)
      ts.emplace_back([&, t] {
        try {
          bad += body(t);
        } catch (const std::exception& e) {
          ADD_FAILURE() << "thread " << t << ": " << e.what();
          ++bad;
        }
      });
    for (auto& t : ts) t.join();
    return bad;
  }
};

TEST_P(SessionThreads, OneSessionPerThread) {
  const auto want = single();
  const auto in = feed();
  const int runs = GetParam().runs;
  EXPECT_EQ(in_threads([&](int) {
              Session s(model(), options());
              int bad = 0;
              for (int i = 0; i < runs; ++i) bad += !same_bits(s.run(in), want);
              return bad;
            }),
            0);
}

TEST_P(SessionThreads, ThreadsShareOneSession) {
  const auto want = single();
  const auto in = feed();
  Session s(model(), options());
  const int runs = GetParam().runs;
  EXPECT_EQ(in_threads([&](int) {
              int bad = 0;
              for (int i = 0; i < runs; ++i) bad += !same_bits(s.run(in), want);
              return bad;
            }),
            0);
}

TEST_P(SessionThreads, SubmitAndWaitFromSeveralThreads) {
  const auto want = single();
  const auto in = feed();
  SessionOptions o = options();
  o.in_flight = 2;
  Session s(model(), o);
  const int runs = GetParam().runs;
  EXPECT_EQ(in_threads([&](int) {
              int bad = 0;
              for (int i = 0; i < runs; i += 2) {
                const int64_t a = s.submit(in), b = s.submit(in);
                bad += !same_bits(s.wait(b), want);
                bad += !same_bits(s.wait(a), want);
              }
              return bad;
            }),
            0);
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionThreads,
                         ::testing::Values(Param{"reference", "squeezenet_fire", 200},
                                           Param{"cpu", "squeezenet_fire", 200},
                                           Param{"cpu", "vgg_32x32", 200}),
                         [](const auto& i) { return i.param.backend + "_" + i.param.model; });

}  // namespace
