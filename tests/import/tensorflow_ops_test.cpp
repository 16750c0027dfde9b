// TensorFlow ops the tensorflow-more suite does not reach (MaxPool3D / AvgPool3D in both data
// formats), output dtype rules of the ops added for it, the documented TopKV2 sorted=false
// order and the random-sampling refusal: small text GraphDefs run on the reference and cpu
// backends, expected values computed directly here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/session.h"

namespace {

namespace fs = std::filesystem;
using anvil::DType;
using anvil::Shape;
using anvil::Tensor;

std::string dims(const Shape& s) {
  std::string r;
  for (int64_t d : s) r += "dim { size: " + std::to_string(d) + " } ";
  return r;
}
std::string fconst(const std::string& name, const Shape& s, const std::vector<double>& v,
                   const char* dt = "DT_FLOAT", const char* field = "float_val") {
  std::ostringstream o;
  o << "node { name: '" << name << "' op: 'Const' attr { key: 'dtype' value { type: " << dt
    << " } } attr { key: 'value' value { tensor { dtype: " << dt << " tensor_shape { " << dims(s)
    << "} ";
  for (double x : v) o << field << ": " << x << " ";
  o << "} } } }\n";
  return o.str();
}
std::string iconst(const std::string& name, const Shape& s, const std::vector<double>& v) {
  return fconst(name, s, v, "DT_INT32", "int_val");
}
std::string node(const std::string& name, const std::string& op,
                 const std::vector<std::string>& ins, const std::string& attrs = "") {
  std::string r = "node { name: '" + name + "' op: '" + op + "' ";
  for (const auto& i : ins) r += "input: '" + i + "' ";
  return r + attrs + " }\n";
}
std::string a_s(const std::string& k, const std::string& v) {
  return "attr { key: '" + k + "' value { s: '" + v + "' } } ";
}
std::string a_b(const std::string& k, bool v) {
  return "attr { key: '" + k + "' value { b: " + (v ? "true" : "false") + " } } ";
}
std::string a_t(const std::string& k, const char* t) {
  return "attr { key: '" + k + "' value { type: " + t + " } } ";
}
std::string a_ints(const std::string& k, const std::vector<int64_t>& v) {
  std::string r = "attr { key: '" + k + "' value { list { ";
  for (int64_t x : v) r += "i: " + std::to_string(x) + " ";
  return r + "} } } ";
}

std::map<std::string, Tensor> run(const std::string& text, const std::vector<std::string>& fetch,
                                  const char* backend = "reference") {
  static int n = 0;
  fs::path p = fs::temp_directory_path() / ("anvil_tf_ops_more_" + std::to_string(::getpid()) +
                                            "_" + std::to_string(n++) + ".pbtxt");
  std::ofstream(p) << text;
  anvil::SessionOptions so;
  so.backend = backend;
  so.taps = fetch;
  anvil::Session s(anvil::import_model({p.string()}), so);
  auto r = s.run({}, fetch);
  fs::remove(p);
  return r;
}

// x: [1, 4, 4, 3, 2] NDHWC (or its NCDHW transpose [1, 2, 4, 4, 3]), distinct values
constexpr int64_t D = 4, H = 4, W = 3, C = 2;
double xv(int64_t d, int64_t h, int64_t w, int64_t c) {
  return static_cast<double>((((d * H + h) * W + w) * C + c) * 37 % 101) - 50.0;
}

// Direct 3-D pooling, window k, stride s, SAME or VALID padding (TF's rule), average over the
// valid cells only; result in NDHWC order.
std::vector<double> pool3d(bool max, int64_t k, int64_t s, bool same, Shape& out) {
  const int64_t in[3] = {D, H, W};
  int64_t o[3], pb[3];
  for (int i = 0; i < 3; ++i) {
    o[i] = same ? (in[i] + s - 1) / s : (in[i] - k) / s + 1;
    pb[i] = same ? std::max<int64_t>((o[i] - 1) * s + k - in[i], 0) / 2 : 0;
  }
  out = {1, o[0], o[1], o[2], C};
  std::vector<double> r;
  for (int64_t a = 0; a < o[0]; ++a)
    for (int64_t b = 0; b < o[1]; ++b)
      for (int64_t e = 0; e < o[2]; ++e)
        for (int64_t c = 0; c < C; ++c) {
          double acc = max ? -1e300 : 0;
          int cnt = 0;
          for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j)
              for (int64_t l = 0; l < k; ++l) {
                const int64_t d = a * s - pb[0] + i, h = b * s - pb[1] + j, w = e * s - pb[2] + l;
                if (d < 0 || d >= D || h < 0 || h >= H || w < 0 || w >= W) continue;
                acc = max ? std::max(acc, xv(d, h, w, c)) : acc + xv(d, h, w, c);
                ++cnt;
              }
          r.push_back(max ? acc : acc / cnt);
        }
  return r;
}

std::string pool_graph(const char* op, bool ncdhw, int64_t k, int64_t s, bool same) {
  std::vector<double> x;
  if (ncdhw) {
    for (int64_t c = 0; c < C; ++c)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) x.push_back(xv(d, h, w, c));
  } else {
    for (int64_t d = 0; d < D; ++d)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = 0; c < C; ++c) x.push_back(xv(d, h, w, c));
  }
  const Shape xs = ncdhw ? Shape{1, C, D, H, W} : Shape{1, D, H, W, C};
  std::vector<int64_t> ks =
      ncdhw ? std::vector<int64_t>{1, 1, k, k, k} : std::vector<int64_t>{1, k, k, k, 1};
  std::vector<int64_t> ss =
      ncdhw ? std::vector<int64_t>{1, 1, s, s, s} : std::vector<int64_t>{1, s, s, s, 1};
  return fconst("x", xs, x) + node("p", op, {"x"},
                                   a_ints("ksize", ks) + a_ints("strides", ss) +
                                       a_s("padding", same ? "SAME" : "VALID") +
                                       a_s("data_format", ncdhw ? "NCDHW" : "NDHWC"));
}

struct PoolCase {
  const char* op;
  bool ncdhw;
  int64_t k, s;
  bool same;
};

class TfPool3d : public testing::TestWithParam<PoolCase> {};

TEST_P(TfPool3d, MatchesDirectPooling) {
  const PoolCase& pc = GetParam();
  const bool max = std::string(pc.op) == "MaxPool3D";
  Shape os;
  const auto want = pool3d(max, pc.k, pc.s, pc.same, os);
  for (const char* backend : {"reference", "cpu"}) {
    SCOPED_TRACE(backend);
    Tensor y = run(pool_graph(pc.op, pc.ncdhw, pc.k, pc.s, pc.same), {"p"}, backend).at("p");
    const Shape ys = pc.ncdhw ? Shape{1, C, os[1], os[2], os[3]} : os;
    ASSERT_EQ(y.shape(), ys);
    auto g = y.to_doubles();
    size_t i = 0;
    for (int64_t a = 0; a < os[1]; ++a)
      for (int64_t b = 0; b < os[2]; ++b)
        for (int64_t e = 0; e < os[3]; ++e)
          for (int64_t c = 0; c < C; ++c, ++i) {
            const int64_t at =
                pc.ncdhw ? ((c * os[1] + a) * os[2] + b) * os[3] + e : static_cast<int64_t>(i);
            EXPECT_NEAR(g[static_cast<size_t>(at)], want[i], 1e-4) << "element " << i;
          }
  }
}

INSTANTIATE_TEST_SUITE_P(All, TfPool3d,
                         testing::Values(PoolCase{"MaxPool3D", false, 2, 2, false},
                                         PoolCase{"MaxPool3D", true, 2, 2, true},
                                         PoolCase{"MaxPool3D", false, 3, 1, true},
                                         PoolCase{"AvgPool3D", false, 2, 2, true},
                                         PoolCase{"AvgPool3D", true, 3, 2, true},
                                         PoolCase{"AvgPool3D", true, 2, 1, false}));

// Output dtypes as TF's op definitions give them.
TEST(TfOpDtypes, ComparisonsBitcastResizeAndCropGiveTfTypes) {
  std::string g = fconst("a", {2, 2}, {1, 2, 3, 4}) + fconst("b", {2, 2}, {1, 0, 3, 0}) +
                  node("ne", "NotEqual", {"a", "b"}) + node("fin", "IsFinite", {"a"}) +
                  node("bc", "Bitcast", {"a"}, a_t("type", "DT_INT8")) +
                  iconst("img", {1, 2, 2, 1}, {1, 2, 3, 4}) + iconst("sz", {2}, {1, 1}) +
                  node("ra", "ResizeArea", {"img", "sz"}) + fconst("boxes", {1, 4}, {0, 0, 1, 1}) +
                  iconst("bi", {1}, {0}) +
                  node("cr", "CropAndResize", {"img", "boxes", "bi", "sz"});
  auto r = run(g, {"ne", "fin", "bc", "ra", "cr"});
  EXPECT_EQ(r.at("ne").dtype(), DType::boolean);
  EXPECT_EQ(r.at("ne").to_int64s(), (std::vector<int64_t>{0, 1, 0, 1}));
  EXPECT_EQ(r.at("fin").dtype(), DType::boolean);
  EXPECT_EQ(r.at("bc").dtype(), DType::i8);
  EXPECT_EQ(r.at("bc").shape(), (Shape{2, 2, 4}));  // float32 -> 4 int8 each
  EXPECT_EQ(r.at("bc").to_int64s()[3], 63);         // 1.0f = 0x3f800000, little-endian
  EXPECT_EQ(r.at("ra").dtype(), DType::f32);        // ResizeArea: float32 for int input
  EXPECT_DOUBLE_EQ(r.at("ra").to_doubles()[0], 2.5);
  EXPECT_EQ(r.at("cr").dtype(), DType::f32);
  EXPECT_DOUBLE_EQ(r.at("cr").to_doubles()[0], 2.5);  // one-pixel crop: the box centre
}

// TopKV2 with sorted=false: TF leaves the order open; Anvil returns largest first.
TEST(TfOpDtypes, TopKUnsortedIsReturnedSorted) {
  std::string g = fconst("x", {5}, {3, 9, 1, 7, 5}) + iconst("k", {}, {3}) +
                  node("t", "TopKV2", {"x", "k"}, a_b("sorted", false));
  auto r = run(g, {"t", "t:1"});
  EXPECT_EQ(r.at("t").to_doubles(), (std::vector<double>{9, 7, 5}));
  EXPECT_EQ(r.at("t:1").dtype(), DType::i32);
  EXPECT_EQ(r.at("t:1").to_int64s(), (std::vector<int64_t>{1, 3, 4}));
}

TEST(TfOpDtypes, RandomSamplingOpsAreRefusedClearly) {
  std::string g = iconst("s", {1}, {3}) + node("r", "RandomUniform", {"s"},
                                               a_t("dtype", "DT_FLOAT") + a_t("T", "DT_INT32"));
  try {
    run(g, {"r"});
    FAIL() << "RandomUniform imported";
  } catch (const anvil::Error& e) {
    EXPECT_NE(std::string(e.what()).find("samples random numbers"), std::string::npos) << e.what();
  }
}

}  // namespace
