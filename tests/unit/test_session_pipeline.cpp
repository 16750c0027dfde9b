// Session::submit / wait (pipelined runs): on the cpu and reference backends (whose
// Executables run each submit synchronously) and on a test backend that defers every run to
// wait(), as a GPU backend does, the results equal run()'s for the same inputs, ticket by
// ticket, waited in order or not; inputs are converted like run()'s (source layout in,
// source layout out), and misuse is an anvil::Error.
#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <map>
#include <random>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "backend/backend.h"

namespace fs = std::filesystem;

namespace anvil {
namespace {

const fs::path kDemo = fs::path(ANVIL_SOURCE_DIR) / "models/demo";

Tensor random_like(const Shape& s, uint32_t seed) {
  Tensor t(DType::f32, s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.f, 1.f);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng);
  return t;
}

// The Keras demo (NHWC in the source: inputs and outputs go through the layout conversion)
// at batch 3, and the ONNX demo (NCHW).
Graph keras_demo() {
  ImportOptions io;
  io.input_shapes["image"] = {3, 8, 8, 1};
  return import_model({(kDemo / "keras/digits_cnn.h5").string()}, io);
}
Graph onnx_demo() {
  ImportOptions io;
  io.input_shapes["image"] = {2, 1, 8, 8};
  return import_model({(kDemo / "digits_cnn.onnx").string()}, io);
}

std::string input_name(const Session& s) { return s.inputs().at(0).source_name; }

void expect_same(const std::map<std::string, Tensor>& got,
                 const std::map<std::string, Tensor>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [k, w] : want) {
    auto it = got.find(k);
    ASSERT_NE(it, got.end()) << what << ": " << k;
    ASSERT_EQ(it->second.shape(), w.shape()) << what << ": " << k;
    ASSERT_EQ(it->second.dtype(), w.dtype()) << what << ": " << k;
    // Same executable, same inputs: bit-identical.
    for (int64_t i = 0; i < w.numel(); ++i)
      ASSERT_EQ(it->second.get(i), w.get(i)) << what << ": " << k << " [" << i << "]";
  }
}

// A backend whose submit() only queues (up to in_flight runs) and whose wait() runs, in
// submit order, on the reference backend: the shape of an asynchronous GPU executable.
struct Deferred : Executable {
  std::unique_ptr<Executable> inner;
  int in_flight = 1;
  std::deque<std::pair<int64_t, std::vector<Tensor>>> queued;
  int64_t next = 100;  // tickets of its own, unlike the session's
  int64_t max_queued = 0;
  std::vector<Tensor> run(const std::vector<Tensor>& in) override { return inner->run(in); }
  int64_t submit(const std::vector<Tensor>& in) override {
    if (static_cast<int>(queued.size()) >= in_flight)
      throw Error("deferred: more runs in flight than in_flight");
    queued.emplace_back(next, in);
    max_queued = std::max<int64_t>(max_queued, static_cast<int64_t>(queued.size()));
    return next++;
  }
  std::vector<Tensor> wait(int64_t ticket) override {
    if (queued.empty() || queued.front().first != ticket)
      throw Error("deferred: waited out of order");
    auto in = std::move(queued.front().second);
    queued.pop_front();
    return inner->run(in);
  }
  double last_device_ms() const override { return 1.5; }
};
Deferred* g_last_deferred = nullptr;
int g_last_in_flight = 0;

void register_deferred() {
  static bool done = false;
  if (done) return;
  done = true;
  register_backend(Backend{"test_deferred", [](const Graph& g, const CompileOptions& co) {
                             auto e = std::make_unique<Deferred>();
                             e->inner = find_backend("reference").compile(g, co);
                             e->in_flight = co.in_flight;
                             g_last_in_flight = co.in_flight;
                             g_last_deferred = e.get();
                             return std::unique_ptr<Executable>(std::move(e));
                           }});
}

class SessionPipeline : public ::testing::TestWithParam<std::string> {};

TEST_P(SessionPipeline, SubmitWaitEqualsRunInOrder) {
  for (Graph g : {keras_demo(), onnx_demo()}) {
    SessionOptions so;
    so.backend = GetParam();
    so.in_flight = 3;
    Session s(g, so);
    const std::string in = input_name(s);
    const Shape shape = s.inputs().at(0).shape;
    std::vector<std::map<std::string, Tensor>> feeds, want;
    for (uint32_t k = 0; k < 7; ++k) {
      feeds.push_back({{in, random_like(shape, 11 + k)}});
      want.push_back(s.run(feeds.back()));
    }
    // Keep three in flight: submit ahead, wait for the oldest.
    std::deque<int64_t> tickets;
    size_t waited = 0;
    for (size_t k = 0; k < feeds.size(); ++k) {
      tickets.push_back(s.submit(feeds[k]));
      if (tickets.size() == 3) {
        expect_same(s.wait(tickets.front()), want[waited], "run " + std::to_string(waited));
        tickets.pop_front();
        ++waited;
      }
    }
    EXPECT_EQ(s.pending(), static_cast<int>(tickets.size()));
    while (!tickets.empty()) {
      expect_same(s.wait(tickets.front()), want[waited], "run " + std::to_string(waited));
      tickets.pop_front();
      ++waited;
    }
    EXPECT_EQ(waited, feeds.size());
    EXPECT_EQ(s.pending(), 0);
    EXPECT_LT(s.last_device_ms(), 0) << "the " << so.backend << " backend measures no device time";
  }
}

TEST_P(SessionPipeline, WaitOutOfOrderFetchAndRunInBetween) {
  Graph g = keras_demo();
  SessionOptions so;
  so.backend = GetParam();
  so.in_flight = 2;
  so.taps = {"conv1"};
  Session s(g, so);
  const std::string in = input_name(s);
  const Shape shape = s.inputs().at(0).shape;
  auto f0 = std::map<std::string, Tensor>{{in, random_like(shape, 1)}};
  auto f1 = std::map<std::string, Tensor>{{in, random_like(shape, 2)}};
  auto f2 = std::map<std::string, Tensor>{{in, random_like(shape, 3)}};
  auto w0 = s.run(f0), w1 = s.run(f1, {"conv1"}), w2 = s.run(f2);
  ASSERT_EQ(w1.at("conv1").dim(3), 8);  // conv1 in the source layout (NHWC)

  int64_t t0 = s.submit(f0);
  int64_t t1 = s.submit(f1, {"conv1"});
  // run() in between finishes both first; their results stay waitable.
  expect_same(s.run(f2), w2, "run between submits");
  int64_t t2 = s.submit(f2);
  expect_same(s.wait(t2), w2, "ticket 2 first");
  expect_same(s.wait(t0), w0, "ticket 0");
  expect_same(s.wait(t1), w1, "ticket 1 (conv1 tap)");
  EXPECT_THROW(s.wait(t1), Error);       // each ticket once
  EXPECT_THROW(s.wait(t2 + 10), Error);  // never submitted
}

TEST_P(SessionPipeline, SubmitConvertsInputsLikeRun) {
  Graph g = keras_demo();
  SessionOptions so;
  so.backend = GetParam();
  Session s(g, so);
  const Shape shape = s.inputs().at(0).shape;
  EXPECT_EQ(shape, (Shape{3, 8, 8, 1}));  // Keras' NHWC
  // A float64 input is converted like run() converts it; a wrong shape is the same error.
  Tensor x64 = random_like(shape, 5).to(DType::f64);
  auto want = s.run({{"image", x64}});
  expect_same(s.wait(s.submit({{"image", x64}})), want, "f64 input");
  EXPECT_THROW(s.submit({{"image", random_like({3, 1, 8, 8}, 1)}}), Error);
  EXPECT_THROW(s.submit({{"nope", x64}, {"image", x64}}), Error);
  EXPECT_EQ(s.pending(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionPipeline, ::testing::Values("reference", "cpu"));

TEST(SessionPipelineOptions, InFlightMustBePositive) {
  SessionOptions so;
  so.backend = "reference";
  so.in_flight = 0;
  EXPECT_THROW(Session(onnx_demo(), so), Error);
}

TEST(SessionPipelineOptions, FetchNotKeptWhileInFlightIsAnError) {
  SessionOptions so;
  so.backend = "reference";
  Session s(keras_demo(), so);
  const Shape shape = s.inputs().at(0).shape;
  int64_t t = s.submit({{"image", random_like(shape, 1)}});
  // conv1 is not kept: fetching it needs a recompile, which would drop the run in flight.
  EXPECT_THROW(s.submit({{"image", random_like(shape, 2)}}, {"conv1"}), Error);
  s.wait(t);
  // With nothing in flight, submit recompiles like run().
  auto x = std::map<std::string, Tensor>{{"image", random_like(shape, 3)}};
  auto want = s.run(x, {"conv1"});
  expect_same(s.wait(s.submit(x, {"conv1"})), want, "conv1 after recompile");
}

TEST(SessionPipelineOptions, DeferredBackendGetsInFlightAndOverlapsRuns) {
  register_deferred();
  Graph g = onnx_demo();
  SessionOptions ro;
  ro.backend = "reference";
  Session ref(g, ro);
  SessionOptions so;
  so.backend = "test_deferred";
  so.in_flight = 4;
  Session s(g, so);
  EXPECT_EQ(g_last_in_flight, 4);
  ASSERT_NE(g_last_deferred, nullptr);
  const std::string in = input_name(s);
  const Shape shape = s.inputs().at(0).shape;
  std::vector<std::map<std::string, Tensor>> feeds;
  std::vector<int64_t> tickets;
  for (uint32_t k = 0; k < 4; ++k) {
    feeds.push_back({{in, random_like(shape, 40 + k)}});
    tickets.push_back(s.submit(feeds.back()));
  }
  EXPECT_EQ(g_last_deferred->max_queued, 4);               // all four were in flight at once
  EXPECT_EQ(tickets, (std::vector<int64_t>{0, 1, 2, 3}));  // the session's own tickets
  // Waiting for the third first finishes the first two (kept), in the executable's order.
  expect_same(s.wait(tickets[2]), ref.run(feeds[2]), "third");
  expect_same(s.wait(tickets[0]), ref.run(feeds[0]), "first");
  expect_same(s.wait(tickets[3]), ref.run(feeds[3]), "fourth");
  expect_same(s.wait(tickets[1]), ref.run(feeds[1]), "second");
  EXPECT_DOUBLE_EQ(s.last_device_ms(), 1.5);
  // run() with runs in flight drains them first (the deferred executable would throw if a
  // fifth run were queued beyond in_flight).
  for (int k = 0; k < 4; ++k) s.submit(feeds[static_cast<size_t>(k)]);
  expect_same(s.run(feeds[0]), ref.run(feeds[0]), "run after four submits");
  EXPECT_EQ(s.pending(), 4);
  for (int k = 0; k < 4; ++k)
    expect_same(s.wait(4 + k), ref.run(feeds[static_cast<size_t>(k)]), "drained");
}

}  // namespace
}  // namespace anvil
