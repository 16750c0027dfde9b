// TensorFlow ops on tensors held in the canonical NCHW layout: x (NHWC) goes through a 1x1
// identity Conv2D first, so the op under test reads a value whose canonical layout differs from
// TF's, and every axis, padding or constant must be mapped through that permutation. Expected
// values are TF's documented semantics computed directly on x here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "anvil/import.h"
#include "anvil/session.h"

namespace {

namespace fs = std::filesystem;
using anvil::Shape;
using anvil::Tensor;

std::string dims(const Shape& s) {
  std::string r;
  for (int64_t d : s) r += "dim { size: " + std::to_string(d) + " } ";
  return r;
}
std::string tconst(const std::string& name, const char* dt, const char* field, const Shape& s,
                   const std::vector<double>& v) {
  std::ostringstream o;
  o << "node { name: '" << name << "' op: 'Const' attr { key: 'dtype' value { type: " << dt
    << " } } "
    << "attr { key: 'value' value { tensor { dtype: " << dt << " tensor_shape { " << dims(s)
    << "} ";
  for (double x : v) o << field << ": " << x << " ";
  o << "} } } }\n";
  return o.str();
}
std::string ic(const std::string& n, const Shape& s, const std::vector<double>& v) {
  return tconst(n, "DT_INT32", "int_val", s, v);
}
std::string fc(const std::string& n, const Shape& s, const std::vector<double>& v) {
  return tconst(n, "DT_FLOAT", "float_val", s, v);
}
std::string nd(const std::string& name, const std::string& op, const std::vector<std::string>& ins,
               const std::string& attrs = "") {
  std::string r = "node { name: '" + name + "' op: '" + op + "' ";
  for (const auto& i : ins) r += "input: '" + i + "' ";
  return r + attrs + " }\n";
}
std::string ai(const std::string& k, int64_t v) {
  return "attr { key: '" + k + "' value { i: " + std::to_string(v) + " } } ";
}
std::string ab(const std::string& k, bool v) {
  return "attr { key: '" + k + "' value { b: " + (v ? "true" : "false") + " } } ";
}
std::string af(const std::string& k, double v) {
  std::ostringstream o;
  o << "attr { key: '" << k << "' value { f: " << v << " } } ";
  return o.str();
}
std::string as(const std::string& k, const std::string& v) {
  return "attr { key: '" + k + "' value { s: '" + v + "' } } ";
}
std::string at(const std::string& k, const char* t) {
  return "attr { key: '" + k + "' value { type: " + t + " } } ";
}

const Shape kX{1, 2, 3, 4};
double xv(int64_t i) { return static_cast<double>((i * 7) % 25) - 10.0; }  // distinct values
double xat(int64_t h, int64_t w, int64_t c) { return xv((h * 3 + w) * 4 + c); }

// x (placeholder, NHWC) -> 1x1 identity conv "c" (held NCHW) -> the nodes in `body`.
std::map<std::string, Tensor> run_on_conv(const std::string& body,
                                          const std::vector<std::string>& fetch) {
  std::vector<double> eye(16, 0.0);
  for (int i = 0; i < 4; ++i) eye[static_cast<size_t>(i * 4 + i)] = 1.0;
  std::string g =
      "node { name: 'x' op: 'Placeholder' attr { key: 'dtype' value { type: DT_FLOAT } } "
      "attr { key: 'shape' value { shape { " +
      dims(kX) + "} } } }\n" + fc("eye", {1, 1, 4, 4}, eye) +
      nd("c", "Conv2D", {"x", "eye"},
         as("padding", "VALID") +
             "attr { key: 'strides' value { list { i: 1 i: 1 i: 1 i: 1 } } } ") +
      body;
  static int n = 0;
  fs::path p = fs::temp_directory_path() / ("anvil_tf_ops_" + std::to_string(::getpid()) + "_" +
                                            std::to_string(n++) + ".pbtxt");
  std::ofstream(p) << g;
  std::vector<float> x(24);
  for (int64_t i = 0; i < 24; ++i) x[static_cast<size_t>(i)] = static_cast<float>(xv(i));
  anvil::Session s(anvil::import_model({p.string()}));
  return s.run({{"x", Tensor::from_vector<float>(kX, x)}}, fetch);
}

void check(const Tensor& t, const Shape& s, const std::function<double(int64_t)>& want,
           double tol = 1e-5) {
  ASSERT_EQ(t.shape(), s);
  auto g = t.to_doubles();
  for (size_t i = 0; i < g.size(); ++i) {
    const double w = want(static_cast<int64_t>(i));
    if (g[i] == w) continue;  // also inf == inf
    EXPECT_NEAR(g[i], w, tol) << "element " << i;
  }
}

TEST(TfOps, ReductionsMapAxesThroughTheLayout) {
  auto r = run_on_conv(ic("a12", {2}, {1, 2}) + ic("a3", {1}, {3}) + ic("am1", {}, {-1}) +
                           nd("mean", "Mean", {"c", "a12"}, ab("keep_dims", false)) +
                           nd("sum", "Sum", {"c", "a3"}, ab("keep_dims", true)) +
                           nd("max", "Max", {"c", "am1"}),
                       {"mean", "sum", "max"});
  check(r["mean"], {1, 4}, [](int64_t c) {
    double s = 0;
    for (int h = 0; h < 2; ++h)
      for (int w = 0; w < 3; ++w) s += xat(h, w, c);
    return s / 6;
  });
  check(r["sum"], {1, 2, 3, 1}, [](int64_t i) {
    double s = 0;
    for (int c = 0; c < 4; ++c) s += xat(i / 3, i % 3, c);
    return s;
  });
  check(r["max"], {1, 2, 3}, [](int64_t i) {
    double m = -1e9;
    for (int c = 0; c < 4; ++c) m = std::max(m, xat(i / 3, i % 3, c));
    return m;
  });
}

TEST(TfOps, SoftmaxArgMaxConcatSplitOnTheChannelAxis) {
  auto r =
      run_on_conv(ic("ax", {}, {3}) + nd("sm", "Softmax", {"c"}) + nd("am", "ArgMax", {"c", "ax"}) +
                      nd("cat", "ConcatV2", {"c", "c", "ax"}, ai("N", 2)) +
                      nd("sp", "Split", {"ax", "c"}, ai("num_split", 2)),
                  {"sm", "am", "cat", "sp:1"});
  check(r["sm"], kX, [](int64_t i) {
    int64_t h = i / 12, w = (i / 4) % 3, c = i % 4;
    double m = -1e9, s = 0;
    for (int k = 0; k < 4; ++k) m = std::max(m, xat(h, w, k));
    for (int k = 0; k < 4; ++k) s += std::exp(xat(h, w, k) - m);
    return std::exp(xat(h, w, c) - m) / s;
  });
  check(r["am"], {1, 2, 3}, [](int64_t i) {
    int best = 0;
    for (int c = 1; c < 4; ++c)
      if (xat(i / 3, i % 3, c) > xat(i / 3, i % 3, best)) best = c;
    return best;
  });
  EXPECT_EQ(r["am"].dtype(), anvil::DType::i64);
  check(r["cat"], {1, 2, 3, 8}, [](int64_t i) { return xat(i / 24, (i / 8) % 3, (i % 8) % 4); });
  check(r["sp:1"], {1, 2, 3, 2}, [](int64_t i) { return xat(i / 6, (i / 2) % 3, 2 + i % 2); });
}

TEST(TfOps, PadSliceTileMapThroughTheLayout) {
  auto r =
      run_on_conv(ic("p", {4, 2}, {0, 0, 1, 0, 0, 2, 0, 0}) + nd("pad", "Pad", {"c", "p"}) +
                      ic("b", {4}, {0, 1, 0, 1}) + ic("s", {4}, {-1, 1, 2, 2}) +
                      nd("sl", "Slice", {"c", "b", "s"}) + ic("m", {4}, {1, 1, 2, 1}) +
                      nd("tile", "Tile", {"c", "m"}) + ic("mp", {4, 2}, {0, 0, 1, 1, 2, 2, 0, 0}) +
                      nd("sym", "MirrorPad", {"c", "mp"}, as("mode", "SYMMETRIC")),
                  {"pad", "sl", "tile", "sym"});
  check(r["pad"], {1, 3, 5, 4}, [](int64_t i) {
    int64_t h = i / 20 - 1, w = (i / 4) % 5, c = i % 4;
    return (h < 0 || w >= 3) ? 0.0 : xat(h, w, c);
  });
  check(r["sl"], {1, 1, 2, 2}, [](int64_t i) { return xat(1, i / 2, 1 + i % 2); });
  check(r["tile"], {1, 2, 6, 4}, [](int64_t i) { return xat(i / 24, ((i / 4) % 6) % 3, i % 4); });
  // SYMMETRIC: the edge is repeated. rows: 0 | 0 1 | 1 ; cols: 1 0 | 0 1 2 | 2 1
  const int rows[] = {0, 0, 1, 1}, cols[] = {1, 0, 0, 1, 2, 2, 1};
  check(r["sym"], {1, 4, 7, 4},
        [&](int64_t i) { return xat(rows[i / 28], cols[(i / 4) % 7], i % 4); });
}

TEST(TfOps, ElementwiseBroadcastAndActivations) {
  auto r = run_on_conv(
      fc("v", {4}, {1, 2, 3, 4}) + nd("mul", "Mul", {"c", "v"}) + fc("s", {}, {0.5}) +
          nd("sub", "Sub", {"s", "c"}) + nd("r6", "Relu6", {"c"}) + nd("sq", "Square", {"c"}) +
          nd("ab", "Abs", {"c"}) + nd("rs", "Rsqrt", {"ab"}) +
          nd("cast", "Cast", {"c"}, at("DstT", "DT_INT32") + at("SrcT", "DT_FLOAT")) +
          nd("lr", "LeakyRelu", {"c"}, af("alpha", 0.1)) + nd("sp", "Softplus", {"c"}),
      {"mul", "sub", "r6", "sq", "cast", "lr", "sp", "rs"});
  auto X = [](int64_t i) { return xv(i); };
  check(r["mul"], kX, [&](int64_t i) { return X(i) * static_cast<double>(1 + i % 4); });
  check(r["sub"], kX, [&](int64_t i) { return 0.5 - X(i); });
  check(r["r6"], kX, [&](int64_t i) { return std::min(std::max(X(i), 0.0), 6.0); });
  check(r["sq"], kX, [&](int64_t i) { return X(i) * X(i); });
  check(r["cast"], kX, [&](int64_t i) { return std::trunc(X(i)); });
  EXPECT_EQ(r["cast"].dtype(), anvil::DType::i32);
  check(r["lr"], kX, [&](int64_t i) { return X(i) > 0 ? X(i) : 0.1 * X(i); });
  check(r["sp"], kX, [&](int64_t i) { return std::log1p(std::exp(X(i))); });
  check(r["rs"], kX,
        [&](int64_t i) { return X(i) == 0 ? INFINITY : 1.0 / std::sqrt(std::fabs(X(i))); });
}

TEST(TfOps, TransposeThenReshapeUsesTheNewOrder) {
  auto r = run_on_conv(ic("perm", {4}, {0, 3, 1, 2}) + nd("t", "Transpose", {"c", "perm"}) +
                           ic("s", {2}, {1, -1}) + nd("flat", "Reshape", {"t", "s"}),
                       {"flat", "t"});
  // NCHW flatten: index = c*6 + h*3 + w
  check(r["flat"], {1, 24}, [](int64_t i) { return xat((i % 6) / 3, i % 3, i / 6); });
  check(r["t"], {1, 4, 2, 3}, [](int64_t i) { return xat((i % 6) / 3, i % 3, i / 6); });
}

TEST(TfOps, DepthToSpaceSpaceToDepthLrn) {
  auto r = run_on_conv(
      nd("d2s", "DepthToSpace", {"c"}, ai("block_size", 2)) +
          nd("s2d", "SpaceToDepth", {"d2s"}, ai("block_size", 2)) +
          nd("lrn", "LRN", {"c"},
             ai("depth_radius", 1) + af("bias", 1.0) + af("alpha", 0.01) + af("beta", 0.75)),
      {"d2s", "s2d", "lrn"});
  // out[h*2 + i, w*2 + j, 0] = in[h, w, i*2 + j]
  check(r["d2s"], {1, 4, 6, 1}, [](int64_t k) {
    int64_t oh = k / 6, ow = k % 6;
    return xat(oh / 2, ow / 2, (oh % 2) * 2 + ow % 2);
  });
  check(r["s2d"], kX, [](int64_t i) { return xv(i); });
  check(
      r["lrn"], kX,
      [](int64_t i) {
        int64_t h = i / 12, w = (i / 4) % 3, c = i % 4;
        double s = 0;
        for (int64_t k = std::max<int64_t>(0, c - 1); k <= std::min<int64_t>(3, c + 1); ++k)
          s += xat(h, w, k) * xat(h, w, k);
        return xat(h, w, c) / std::pow(1.0 + 0.01 * s, 0.75);
      },
      1e-4);
}

TEST(TfOps, PackUnpackGatherTopK) {
  auto r = run_on_conv(ic("shape", {2}, {6, 4}) + nd("m", "Reshape", {"c", "shape"}) +
                           nd("pk", "Pack", {"m", "m"}, ai("axis", 1) + ai("N", 2)) +
                           nd("up", "Unpack", {"m"}, ai("axis", 0) + ai("num", 6)) +
                           ic("idx", {2}, {2, 0}) + ic("gax", {}, {1}) +
                           nd("g", "GatherV2", {"m", "idx", "gax"}) + ic("k", {}, {2}) +
                           nd("top", "TopKV2", {"m", "k"}),
                       {"pk", "up:4", "g", "top", "top:1"});
  check(r["pk"], {6, 2, 4}, [](int64_t i) { return xv((i / 8) * 4 + i % 4); });
  check(r["up:4"], {4}, [](int64_t i) { return xv(16 + i); });
  check(r["g"], {6, 2}, [](int64_t i) { return xv((i / 2) * 4 + (i % 2 == 0 ? 2 : 0)); });
  std::vector<double> vals, idx;
  for (int row = 0; row < 6; ++row) {
    std::vector<int> o{0, 1, 2, 3};
    std::sort(o.begin(), o.end(), [&](int a, int b) { return xv(row * 4 + a) > xv(row * 4 + b); });
    vals.push_back(xv(row * 4 + o[0]));
    vals.push_back(xv(row * 4 + o[1]));
    idx.push_back(o[0]);
    idx.push_back(o[1]);
  }
  check(r["top"], {6, 2}, [&](int64_t i) { return vals[static_cast<size_t>(i)]; });
  check(r["top:1"], {6, 2}, [&](int64_t i) { return idx[static_cast<size_t>(i)]; });
}

TEST(TfOps, ResizeNearestNeighborModes) {
  // one row of 3 -> 5 (w), TF's source index per mode
  struct M {
    bool ac, hp;
    std::vector<int> src;
  };
  // default: floor(o * 3/5); align_corners: round(o * 2/4); half_pixel: floor((o + .5) * 3/5)
  for (const M& m : {M{false, false, {0, 0, 1, 1, 2}}, M{true, false, {0, 1, 1, 2, 2}},
                     M{false, true, {0, 0, 1, 2, 2}}}) {
    auto r = run_on_conv(
        ic("size", {2}, {2, 5}) + nd("r", "ResizeNearestNeighbor", {"c", "size"},
                                     ab("align_corners", m.ac) + ab("half_pixel_centers", m.hp)),
        {"r"});
    check(r["r"], {1, 2, 5, 4},
          [&](int64_t i) { return xat(i / 20, m.src[static_cast<size_t>((i / 4) % 5)], i % 4); });
  }
}

TEST(TfOps, ResizeOutputDtypes) {
  // TF's op definitions: ResizeBilinear outputs float32 whatever the input type;
  // ResizeNearestNeighbor keeps the input's type.
  const std::string g = "node { name: 'x' op: 'Placeholder' " + at("dtype", "DT_UINT8") +
                        "attr { key: 'shape' value { shape { " + dims({1, 2, 2, 1}) + "} } } }\n" +
                        ic("size", {2}, {4, 4}) + nd("bl", "ResizeBilinear", {"x", "size"}) +
                        nd("nn", "ResizeNearestNeighbor", {"x", "size"});
  fs::path p = fs::temp_directory_path() /
               ("anvil_tf_resize_dtype_" + std::to_string(::getpid()) + ".pbtxt");
  std::ofstream(p) << g;
  anvil::Graph graph = anvil::import_model({p.string()});
  EXPECT_EQ(graph.values[static_cast<size_t>(graph.find_value("bl"))].dtype, anvil::DType::f32);
  EXPECT_EQ(graph.values[static_cast<size_t>(graph.find_value("nn"))].dtype, anvil::DType::u8);
  anvil::Session s(std::move(graph));
  auto r =
      s.run({{"x", Tensor::from_vector<uint8_t>({1, 2, 2, 1}, {0, 10, 20, 30})}}, {"bl", "nn"});
  ASSERT_EQ(r["bl"].dtype(), anvil::DType::f32);
  // asymmetric mapping, source = o / 2, clamped at the last row and column
  const std::vector<double> want{0, 5, 10, 10, 10, 15, 20, 20, 20, 25, 30, 30, 20, 25, 30, 30};
  check(r["bl"], {1, 4, 4, 1}, [&](int64_t i) { return want[static_cast<size_t>(i)]; });
  EXPECT_EQ(r["nn"].dtype(), anvil::DType::u8);
  fs::remove(p);
}

}  // namespace
