// verify's default criterion, relative to each tensor's scale (issue 19, item 7): real deep
// dumps (BVLC Caffe ResNet with BatchNorm + Scale + Eltwise, Keras 2.3.1 resnet_small) match
// at a tolerance near float32 rounding, where the strict per-element criterion reports the
// frameworks' own rounding of values near zero as mismatches, diagnosed as float rounding.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/verify.h"

namespace {
using namespace anvil;

struct Case {
  Graph g;
  std::map<std::string, Tensor> ref;
};

Case load(const std::string& rel) {
  namespace fs = std::filesystem;
  const std::string dir = std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/" + rel;
  Case c;
  c.ref = read_reference(dir + "/activations.npz");
  std::ifstream cf(dir + "/case.json");
  std::stringstream ss;
  ss << cf.rdbuf();
  const auto cj = nlohmann::json::parse(ss.str());
  ImportOptions io;
  for (auto it = cj["inputs"].begin(); it != cj["inputs"].end(); ++it) {
    Tensor t = read_npy(dir + "/" + it.value().get<std::string>());
    io.input_shapes[it.key()] = t.shape();
    c.ref[it.key()] = t;
  }
  std::vector<std::string> files;
  for (const char* f : {"model.h5", "deploy.prototxt", "model.caffemodel"})
    if (fs::exists(dir + "/" + f)) files.push_back(dir + "/" + f);
  c.g = import_model(files, io);
  return c;
}

}  // namespace

TEST(VerifyCriterion, TensorScaleVersusPerElement) {
  // 0.0015 vs 0.001 next to 100: 5e-4 off, far above 1e-5 + 1e-4 * 0.001 per element, but
  // 5e-6 of the tensor's scale 100.
  Tensor want = Tensor::from_vector<float>({3}, {100.0f, 0.001f, -50.0f});
  Tensor got = Tensor::from_vector<float>({3}, {100.0f, 0.0015f, -50.0f});
  Comparison e = compare_tensors(got, want, 1e-4, 1e-5, /*per_element=*/true);
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.mismatches, 1);
  EXPECT_EQ(e.first_mismatch, 1);
  Comparison s = compare_tensors(got, want, 1e-4, 1e-5, /*per_element=*/false);
  EXPECT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s.scale, 100.0);
  // The four-argument form stays numpy.allclose.
  EXPECT_FALSE(compare_tensors(got, want, 1e-4, 1e-5).ok());
  // Real differences stay mismatches at the tensor's scale: 2% of it.
  Tensor bad = Tensor::from_vector<float>({3}, {100.0f, 2.0f, -50.0f});
  EXPECT_FALSE(compare_tensors(bad, want, 1e-4, 1e-5, false).ok());
}

TEST(VerifyCriterion, DeepRealDumpsAreFloatRoundingNotMismatches) {
  for (const char* rel : {"caffe/resnet_bn_scale_eltwise", "keras/resnet_small"}) {
    SCOPED_TRACE(rel);
    Case c = load(rel);
    VerifyOptions o;
    o.rtol = 1e-5;  // near float32 rounding
    o.atol = 1e-6;
    VerifyReport r = verify_model(c.g, c.ref, o);
    EXPECT_EQ(r.criterion, "scale");
    EXPECT_EQ(r.status, "match") << "first divergent " << r.first_divergent;
    EXPECT_TRUE(r.diagnosis.empty());
    int ok = 0;
    for (const auto& l : r.layers) {
      ok += l.status == "ok";
      if (l.status == "ok" && l.op != "Input") EXPECT_GT(l.scale, 0) << l.name;
    }
    EXPECT_GE(ok, 30);
    // Strict: elements near zero after long sums differ by the frameworks' fp32 rounding.
    o.per_element = true;
    VerifyReport s = verify_model(c.g, c.ref, o);
    EXPECT_EQ(s.criterion, "per-element");
    EXPECT_EQ(s.status, "mismatch");
    ASSERT_EQ(s.diagnosis.size(), 1u);
    EXPECT_EQ(s.diagnosis[0].cause, "float_rounding") << s.diagnosis[0].message;
    EXPECT_NE(s.diagnosis[0].message.find("of the tensor's scale"), std::string::npos);
    EXPECT_NE(report_json(s).find("\"criterion\": \"per-element\""), std::string::npos);
  }
}
