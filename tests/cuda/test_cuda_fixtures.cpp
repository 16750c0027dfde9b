// Every in-repo real-framework fixture model (tests/data/fixtures: Keras, Caffe, DL4J-Keras)
// and the demo models (ONNX, Keras, Caffe), run on the cuda backend against the reference
// backend (plain loops, double accumulation):
//  - fp32: the outputs (with the cuda backend's fusions active), every tensor the fixture
//    records (activations.npz names, as taps), and every layer's tensor (keep_all: nothing
//    fused) within rtol 1e-4 and atol 1e-4 x max(1, the tensor's largest magnitude);
//  - fp16 and bf16: the error of each output against the fp32 reference, measured as verify
//    measures it (max |x - x32| / max |x32|), printed, and bounded loosely (3e-2 fp16, 1e-1
//    bf16) to catch garbage; where the reference backend in the same precision is itself
//    further off (a model whose values fp16 cannot hold), the bound is twice its error.
// Also: Session::submit/wait with several runs in flight, last_device_ms(), and verify_model
// with VerifyOptions{backend "cuda", precision "fp16"} (what `anvil verify --backend cuda
// --precision fp16` runs) against real-framework dumps and a reference-backend dump.
// Every test skips itself where no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "anvil/verify.h"
#include "backend/backend.h"
#include "backend/cuda/cuda_util.h"
#include "model_cases.h"

namespace fs = std::filesystem;

namespace anvil {
namespace {

#define SKIP_WITHOUT_GPU()                                                    \
  do {                                                                        \
    if (::anvil::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

const fs::path kSrc(ANVIL_SOURCE_DIR);

using testing::fixture_model_cases;
using testing::ModelCase;

/// The case's graph and feed (the demo models at their inputs' batch).
struct Loaded {
  Graph g;
  std::map<std::string, Tensor> feed;
};
Loaded load(const ModelCase& c) {
  ImportOptions io;
  for (const auto& [k, s] : c.input_shapes) io.input_shapes[k] = s;
  if (c.name.rfind("demo_", 0) == 0)
    for (const auto& [k, f] : c.inputs)
      if (!k.empty()) io.input_shapes[k] = read_npy(f).shape();
  Loaded l;
  l.g = import_model(c.files, io);
  for (const auto& [k, f] : c.inputs) {
    std::string key = k;
    if (key.empty()) key = l.g.values[static_cast<size_t>(l.g.inputs.at(0))].name;
    l.feed[key] = read_npy(f);
  }
  return l;
}

double max_abs_of(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (std::isfinite(t.get(i))) m = std::max(m, std::abs(t.get(i)));
  return m;
}

/// Largest |got - want| / (atol + rtol |want|); <= 1 passes; inf for NaN against a number.
double closeness(const Tensor& got, const Tensor& want, double rtol, double atol) {
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get(i), b = want.get(i);
    if (std::isnan(a) != std::isnan(b)) return INFINITY;
    if (std::isnan(a) || (std::isinf(a) && a == b)) continue;
    worst = std::max(worst, std::abs(a - b) / (atol + rtol * std::abs(b)));
  }
  return worst;
}

/// fp32 agreement with the reference: rtol 1e-4, atol 1e-4 of the tensor's range (>= 1e-4).
void expect_close(const std::map<std::string, Tensor>& got,
                  const std::map<std::string, Tensor>& want, const std::string& what) {
  for (const auto& [k, w] : want) {
    auto it = got.find(k);
    ASSERT_NE(it, got.end()) << what << " " << k;
    ASSERT_EQ(it->second.shape(), w.shape()) << what << " " << k;
    if (!is_float(w.dtype())) {
      for (int64_t i = 0; i < w.numel(); ++i)
        ASSERT_EQ(it->second.get(i), w.get(i)) << what << " " << k << " [" << i << "]";
      continue;
    }
    EXPECT_LE(closeness(it->second, w, 1e-4, 1e-4 * std::max(1.0, max_abs_of(w))), 1.0)
        << what << " " << k;
  }
}

/// verify's precision measure: max |x - x32| / max |x32| (inf when x has inf/NaN where x32 is
/// finite).
double precision_error(const Tensor& x, const Tensor& x32) {
  double maxv = 0, maxd = 0;
  for (int64_t i = 0; i < x32.numel() && i < x.numel(); ++i) {
    const double a = x.get(i), b = x32.get(i);
    if (!std::isfinite(b)) continue;
    if (!std::isfinite(a)) return INFINITY;
    maxv = std::max(maxv, std::abs(b));
    maxd = std::max(maxd, std::abs(a - b));
  }
  return maxv > 0 ? maxd / maxv : maxd;
}

class CudaFixture : public ::testing::TestWithParam<ModelCase> {};

TEST_P(CudaFixture, Fp32MatchesReference) {
  SKIP_WITHOUT_GPU();
  const ModelCase& c = GetParam();
  Loaded l;
  try {
    l = load(c);
  } catch (const Error& e) {
    GTEST_SKIP() << "not importable here: " << e.what();  // the importer tests own this
  }
  // Outputs (fusions active), then the fixture's own layer names as taps.
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1 && c.taps.empty()) break;
    SessionOptions ro;
    ro.backend = "reference";
    if (pass == 1) ro.taps = c.taps;
    SessionOptions go = ro;
    go.backend = "cuda";
    Session ref(l.g, ro), gpu(l.g, go);
    expect_close(gpu.run(l.feed, go.taps), ref.run(l.feed, ro.taps), pass == 0 ? "output" : "tap");
    EXPECT_GT(gpu.last_device_ms(), 0.0) << "the cuda backend measures each run's device time";
  }
  // Every layer (keep_all: nothing fused away, every kernel on its own).
  SessionOptions ro;
  ro.backend = "reference";
  ro.keep_all = true;
  SessionOptions go = ro;
  go.backend = "cuda";
  Session ref(l.g, ro), gpu(l.g, go);
  std::vector<std::string> fetch;
  for (int v : source_tensors(ref.source_graph()))
    if (!ref.source_graph().values[static_cast<size_t>(v)].is_constant())
      fetch.push_back(ref.source_graph().values[static_cast<size_t>(v)].name);
  expect_close(gpu.run(l.feed, fetch), ref.run(l.feed, fetch), "layer (keep_all)");
}

TEST_P(CudaFixture, ReducedPrecisionErrorIsBounded) {
  SKIP_WITHOUT_GPU();
  const ModelCase& c = GetParam();
  Loaded l;
  try {
    l = load(c);
  } catch (const Error& e) {
    GTEST_SKIP() << "not importable here: " << e.what();
  }
  SessionOptions ro;
  ro.backend = "reference";
  Session ref32(l.g, ro);
  const auto want = ref32.run(l.feed);
  for (const char* prec : {"fp16", "bf16"}) {
    const double bound = std::string(prec) == "fp16" ? 3e-2 : 1e-1;
    SessionOptions go;
    go.backend = "cuda";
    go.precision = parse_precision(prec);
    SessionOptions rr = ro;
    rr.precision = parse_precision(prec);
    Session gpu(l.g, go), refp(l.g, rr);
    const auto got = gpu.run(l.feed);
    const auto same = refp.run(l.feed);  // the reference backend in the same precision
    for (const auto& [k, w] : want) {
      ASSERT_TRUE(got.count(k)) << prec << " output " << k;
      ASSERT_EQ(got.at(k).shape(), w.shape()) << prec << " output " << k;
      if (!is_float(w.dtype())) {  // argmax and the like: ties may break differently
        int64_t differ = 0;
        for (int64_t i = 0; i < w.numel(); ++i) differ += got.at(k).get(i) != w.get(i);
        std::printf("[ %s ] %s %s: %lld of %lld integer values differ from fp32\n", c.name.c_str(),
                    prec, k.c_str(), static_cast<long long>(differ),
                    static_cast<long long>(w.numel()));
        continue;
      }
      const double err = precision_error(got.at(k), w);
      const double ref_err = precision_error(same.at(k), w);
      std::printf("[ %s ] %s %s: error vs fp32 reference %.3g (reference backend in %s: %.3g)\n",
                  c.name.c_str(), prec, k.c_str(), err, prec, ref_err);
      RecordProperty(std::string(prec) + "_error_" + k, std::to_string(err));
      if (std::isinf(ref_err)) continue;  // the model overflows this precision on any backend
      EXPECT_LE(err, std::max(bound, 2 * ref_err)) << prec << " output " << k << " of " << c.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, CudaFixture,
                         ::testing::ValuesIn(fixture_model_cases({"keras", "caffe", "keras-dl4j"})),
                         [](const ::testing::TestParamInfo<ModelCase>& i) {
                           std::string s = i.param.name;
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

Tensor random_tensor(const Shape& s, uint32_t seed) {
  Tensor t(DType::f32, s);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// Several runs in flight: each result equals the reference's for its own input (so no run
// overwrote another's buffers), also when every result is held until the end.
TEST(CudaSession, SubmitWaitWithRunsInFlight) {
  SKIP_WITHOUT_GPU();
  ImportOptions io;
  io.input_shapes["image"] = {5, 8, 8, 1};
  Graph g = import_model({(kSrc / "models/demo/keras/digits_cnn.h5").string()}, io);
  SessionOptions ro;
  ro.backend = "reference";
  Session ref(g, ro);
  for (int in_flight : {1, 2, 3}) {
    SessionOptions go;
    go.backend = "cuda";
    go.in_flight = in_flight;
    go.taps = {"conv1"};
    Session gpu(g, go);
    std::vector<std::map<std::string, Tensor>> feeds, results;
    std::deque<int64_t> tickets;
    for (uint32_t k = 0; k < 9; ++k) {
      feeds.push_back({{"image", random_tensor({5, 8, 8, 1}, 100 + k)}});
      if (static_cast<int>(tickets.size()) == in_flight) {
        results.push_back(gpu.wait(tickets.front()));
        tickets.pop_front();
      }
      tickets.push_back(gpu.submit(feeds.back(), {"probs", "conv1"}));
    }
    while (!tickets.empty()) {
      results.push_back(gpu.wait(tickets.front()));
      tickets.pop_front();
    }
    ASSERT_EQ(results.size(), feeds.size());
    for (size_t k = 0; k < feeds.size(); ++k)
      expect_close(results[k], ref.run(feeds[k], {"probs", "conv1"}),
                   "in_flight " + std::to_string(in_flight) + " run " + std::to_string(k));
    EXPECT_GT(gpu.last_device_ms(), 0.0);
    // run() between submits: finishes them first, their results stay waitable.
    int64_t t0 = gpu.submit(feeds[0], {"probs"});
    int64_t t1 = gpu.submit(feeds[1], {"probs"});
    expect_close(gpu.run(feeds[2], {"probs"}), ref.run(feeds[2], {"probs"}), "run between");
    expect_close(gpu.wait(t1), ref.run(feeds[1], {"probs"}), "t1");
    expect_close(gpu.wait(t0), ref.run(feeds[0], {"probs"}), "t0");
  }
}

// What `anvil verify --backend cuda --precision fp16` runs, against the real Keras and Caffe
// dumps of the demo models (tests/data/fixtures/dumpers, made with Keras 2.3.1 and BVLC
// Caffe): the fp32 cuda run matches every dumped layer; in fp16 each layer reports its error
// against the fp32 run (precision_rel, bounded by 3e-2 of the layer's range, no overflow) and
// stays aligned with the reference (cosine > 0.999); the verdict at rtol/atol 1e-2 is printed.
TEST(CudaVerify, Fp16ThroughVerifyModel) {
  SKIP_WITHOUT_GPU();
  const fs::path demo = kSrc / "models/demo";
  struct V {
    std::vector<std::string> files;
    std::string ref;
  };
  for (const V& v :
       {V{{(demo / "keras/digits_cnn.h5").string()}, "keras_demo_digits.npz"},
        V{{(demo / "caffe/deploy.prototxt").string(), (demo / "caffe/digits.caffemodel").string()},
          "caffe_demo_digits.npz"}}) {
    const auto ref = read_reference((kSrc / "tests/data/fixtures/dumpers" / v.ref).string());
    // Imported at the reference inputs' batch, as anvil verify does.
    Graph g0 = import_model(v.files, {});
    ImportOptions io;
    for (int in : g0.inputs) {
      const std::string k = match_reference_key(g0, in, ref);
      ASSERT_FALSE(k.empty()) << v.ref << " has no input";
      io.input_shapes[source_key(g0.values[static_cast<size_t>(in)])] = ref.at(k).shape();
    }
    Graph g = import_model(v.files, io);

    VerifyOptions o;
    o.backend = "cuda";
    o.atol = 1e-4;
    VerifyReport r32 = verify_model(g, ref, o);
    EXPECT_EQ(r32.status, "match")
        << v.ref << " fp32 on cuda; first divergent " << r32.first_divergent;
    EXPECT_EQ(r32.backend, "cuda");

    o.precision = "fp16";
    o.rtol = 1e-2;
    o.atol = 1e-2;
    VerifyReport r = verify_model(g, ref, o);
    EXPECT_EQ(r.precision, "fp16");
    int checked = 0;
    for (const auto& l : r.layers) {
      if (!l.precision_checked) continue;
      ++checked;
      std::printf("[ %s ] fp16 %-10s max_rel vs reference %.3g, vs fp32 run %.3g%s\n",
                  v.ref.c_str(), l.name.c_str(), l.max_rel, l.precision_rel,
                  l.precision_overflow ? " (overflow)" : "");
      EXPECT_FALSE(l.precision_overflow) << l.name;
      EXPECT_LE(l.precision_rel, 3e-2) << l.name;
    }
    EXPECT_GE(checked, 5) << v.ref;
    EXPECT_TRUE(r.suggest_keep_fp32.empty());
    for (const auto& l : r.layers)
      if (l.status != "unchecked" && l.status != "shape")
        EXPECT_GT(l.cosine, 0.999) << v.ref << " " << l.name;
    std::printf("[ %s ] fp16 on cuda at rtol/atol 1e-2: %s (first divergent '%s')\n", v.ref.c_str(),
                r.status.c_str(), r.first_divergent.c_str());
  }
}

// Against the reference backend itself (the reference written as `anvil dump --backend
// reference` writes it: every layer in the source layout, keyed by source names), on random
// inputs: fp32 cuda matches every layer; fp16 cuda stays within 3e-2 of each layer's range.
TEST(CudaVerify, AgainstReferenceBackendDump) {
  SKIP_WITHOUT_GPU();
  ImportOptions io;
  io.input_shapes["image"] = {4, 1, 8, 8};
  Graph g = import_model({(kSrc / "models/demo/digits_cnn.onnx").string()}, io);
  SessionOptions so;
  so.backend = "reference";
  so.keep_all = true;
  Session s(g, so);
  std::map<std::string, Tensor> feed{{"image", random_tensor({4, 1, 8, 8}, 7)}};
  std::vector<std::string> fetch, keys;
  for (int v : source_tensors(s.source_graph())) {
    const Value& val = s.source_graph().values[static_cast<size_t>(v)];
    if (val.is_constant()) continue;
    fetch.push_back(val.name);
    keys.push_back(source_key(val));
  }
  auto got = s.run(feed, fetch);
  std::map<std::string, Tensor> ref;
  for (size_t i = 0; i < fetch.size(); ++i) ref[keys[i]] = got.at(fetch[i]);

  VerifyOptions o;
  o.backend = "cuda";
  o.atol = 1e-4;
  VerifyReport r32 = verify_model(g, ref, o);
  EXPECT_EQ(r32.status, "match") << "first divergent " << r32.first_divergent;
  EXPECT_TRUE(r32.unmatched_reference.empty());
  o.precision = "fp16";
  o.rtol = 1e-2;
  o.atol = 1e-2;
  VerifyReport r = verify_model(g, ref, o);
  for (const auto& l : r.layers) {
    if (l.status == "unchecked") continue;
    std::printf(
        "[ onnx demo vs reference backend ] fp16 %-32s max_abs %.3g max_rel %.3g cosine %.8f\n",
        l.name.c_str(), l.max_abs, l.max_rel, l.cosine);
    EXPECT_GT(l.cosine, 0.999) << l.name;
    EXPECT_LE(l.precision_rel, 3e-2) << l.name;
  }
  std::printf("[ onnx demo vs reference backend ] fp16 at rtol/atol 1e-2: %s\n", r.status.c_str());
}

}  // namespace
}  // namespace anvil
