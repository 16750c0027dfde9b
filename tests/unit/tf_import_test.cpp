// TensorFlow GraphDef importer: small text GraphDefs (.pbtxt, TensorFlow's text format) run on
// the reference backend and compared with direct loop implementations of TensorFlow's
// documented semantics written here (SAME padding on odd sizes and stride 2, NHWC Reshape
// order, StridedSlice masks, FusedBatchNorm epsilon, AvgPool SAME divisor, depthwise and
// transposed convolution, resize modes), plus outputs, names, layouts and error reports.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/session.h"

namespace {

namespace fs = std::filesystem;
using anvil::Shape;
using anvil::Tensor;

// ---- pbtxt builders ----
std::string shape_text(const Shape& s) {
  std::string r;
  for (int64_t d : s) r += "dim { size: " + std::to_string(d) + " } ";
  return r;
}
std::string fconst(const std::string& name, const Shape& s, const std::vector<float>& v) {
  std::ostringstream o;
  o << "node { name: '" << name << "' op: 'Const' attr { key: 'dtype' value { type: DT_FLOAT } } "
    << "attr { key: 'value' value { tensor { dtype: DT_FLOAT tensor_shape { " << shape_text(s)
    << "} ";
  for (float x : v) o << "float_val: " << x << " ";
  o << "} } } }\n";
  return o.str();
}
std::string iconst(const std::string& name, const Shape& s, const std::vector<int>& v) {
  std::ostringstream o;
  o << "node { name: '" << name << "' op: 'Const' attr { key: 'dtype' value { type: DT_INT32 } } "
    << "attr { key: 'value' value { tensor { dtype: DT_INT32 tensor_shape { " << shape_text(s)
    << "} ";
  for (int x : v) o << "int_val: " << x << " ";
  o << "} } } }\n";
  return o.str();
}
std::string placeholder(const std::string& name, const Shape& s) {
  return "node { name: '" + name +
         "' op: 'Placeholder' attr { key: 'dtype' value { type: DT_FLOAT } } " +
         "attr { key: 'shape' value { shape { " + shape_text(s) + "} } } }\n";
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
std::string a_i(const std::string& k, int64_t v) {
  return "attr { key: '" + k + "' value { i: " + std::to_string(v) + " } } ";
}
std::string a_f(const std::string& k, double v) {
  std::ostringstream o;
  o << "attr { key: '" << k << "' value { f: " << v << " } } ";
  return o.str();
}
std::string a_b(const std::string& k, bool v) {
  return "attr { key: '" + k + "' value { b: " + (v ? "true" : "false") + " } } ";
}
std::string a_ints(const std::string& k, const std::vector<int64_t>& v) {
  std::string r = "attr { key: '" + k + "' value { list { ";
  for (int64_t x : v) r += "i: " + std::to_string(x) + " ";
  return r + "} } } ";
}

std::string write_graph(const std::string& text, const std::string& ext = ".pbtxt") {
  static int n = 0;
  fs::path p = fs::temp_directory_path() /
               ("anvil_tf_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + ext);
  std::ofstream(p) << text;
  return p.string();
}

std::vector<float> iota_vals(int64_t n, float scale = 0.1f, float offset = -1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = offset + scale * static_cast<float>((i * 7) % 23);
  return v;
}

std::map<std::string, Tensor> run(const std::string& text, const std::map<std::string, Tensor>& in,
                                  const std::vector<std::string>& fetch = {}) {
  anvil::Session s(anvil::import_model({write_graph(text)}));
  return s.run(in, fetch);
}

void expect_near(const Tensor& got, const std::vector<double>& want, const Shape& shape,
                 double tol = 1e-5) {
  ASSERT_EQ(got.shape(), shape);
  auto g = got.to_doubles();
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], tol) << "element " << i;
}

// Direct NHWC convolution with TF's SAME rule: pad_top = total / 2, the rest at the bottom.
std::vector<double> conv_nhwc(const std::vector<float>& x, const Shape& xs,
                              const std::vector<float>& w, const Shape& ws, int s, bool same,
                              Shape& out_shape, int group = 1) {
  const int64_t N = xs[0], H = xs[1], W = xs[2], C = xs[3], KH = ws[0], KW = ws[1], CI = ws[2],
                CO = ws[3];
  int64_t OH, OW, pt = 0, pl = 0;
  if (same) {
    OH = (H + s - 1) / s;
    OW = (W + s - 1) / s;
    pt = std::max<int64_t>((OH - 1) * s + KH - H, 0) / 2;
    pl = std::max<int64_t>((OW - 1) * s + KW - W, 0) / 2;
  } else {
    OH = (H - KH) / s + 1;
    OW = (W - KW) / s + 1;
  }
  out_shape = {N, OH, OW, CO};
  std::vector<double> y(static_cast<size_t>(N * OH * OW * CO), 0.0);
  const int64_t cog = CO / group;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t co = 0; co < CO; ++co) {
          double acc = 0;
          const int64_t g = co / cog;
          for (int64_t kh = 0; kh < KH; ++kh)
            for (int64_t kw = 0; kw < KW; ++kw) {
              int64_t ih = oh * s + kh - pt, iw = ow * s + kw - pl;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              for (int64_t ci = 0; ci < CI; ++ci)
                acc += x[static_cast<size_t>(((n * H + ih) * W + iw) * C + g * CI + ci)] *
                       w[static_cast<size_t>(((kh * KW + kw) * CI + ci) * CO + co)];
            }
          y[static_cast<size_t>(((n * OH + oh) * OW + ow) * CO + co)] = acc;
        }
  return y;
}

std::string conv_graph(const Shape& xs, const Shape& ws, int s, const std::string& pad,
                       const std::vector<float>& w) {
  return placeholder("x", xs) + fconst("w", ws, w) +
         node("conv", "Conv2D", {"x", "w"},
              a_s("padding", pad) + a_ints("strides", {1, s, s, 1}) + a_s("data_format", "NHWC"));
}

TEST(TfImport, Conv2DSamePaddingOddSizesStride2) {
  for (int64_t h : {7, 8, 9}) {
    for (int64_t k : {2, 3}) {
      SCOPED_TRACE("size " + std::to_string(h) + " kernel " + std::to_string(k));
      Shape xs{1, h, h + 2, 2}, ws{k, k, 2, 3};
      auto x = iota_vals(anvil::shape_numel(xs));
      auto w = iota_vals(anvil::shape_numel(ws), 0.05f, -0.5f);
      auto out = run(conv_graph(xs, ws, 2, "SAME", w), {{"x", Tensor::from_vector<float>(xs, x)}});
      Shape ys;
      auto want = conv_nhwc(x, xs, w, ws, 2, true, ys);
      ASSERT_TRUE(out.count("conv"));
      expect_near(out["conv"], want, ys);
    }
  }
}

TEST(TfImport, Conv2DValidAndNchwAgree) {
  Shape xs{1, 6, 5, 3}, ws{3, 2, 3, 4};
  auto x = iota_vals(anvil::shape_numel(xs));
  auto w = iota_vals(anvil::shape_numel(ws), 0.05f, -0.5f);
  Shape ys;
  auto want = conv_nhwc(x, xs, w, ws, 1, false, ys);
  auto out = run(conv_graph(xs, ws, 1, "VALID", w), {{"x", Tensor::from_vector<float>(xs, x)}});
  expect_near(out["conv"], want, ys);
  // The same conv on NCHW data (data_format NCHW): TF gives NCHW out.
  Shape xc{1, 3, 6, 5};
  std::vector<float> xn(x.size());
  for (int64_t h = 0; h < 6; ++h)
    for (int64_t wv = 0; wv < 5; ++wv)
      for (int64_t c = 0; c < 3; ++c)
        xn[static_cast<size_t>((c * 6 + h) * 5 + wv)] =
            x[static_cast<size_t>((h * 5 + wv) * 3 + c)];
  std::string g =
      placeholder("x", xc) + fconst("w", ws, w) +
      node("conv", "Conv2D", {"x", "w"},
           a_s("padding", "VALID") + a_ints("strides", {1, 1, 1, 1}) + a_s("data_format", "NCHW"));
  auto o2 = run(g, {{"x", Tensor::from_vector<float>(xc, xn)}});
  ASSERT_EQ(o2["conv"].shape(), (Shape{1, 4, ys[1], ys[2]}));
  auto got = o2["conv"].to_doubles();
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t h = 0; h < ys[1]; ++h)
      for (int64_t wv = 0; wv < ys[2]; ++wv)
        EXPECT_NEAR(got[static_cast<size_t>((c * ys[1] + h) * ys[2] + wv)],
                    want[static_cast<size_t>((h * ys[2] + wv) * 4 + c)], 1e-5);
}

TEST(TfImport, ReshapeOfNhwcKeepsTfElementOrder) {
  // 1x1 identity conv (channels 2): the conv output equals the input, so a Reshape of it to
  // (1, H*W*C) must be the input flattened in NHWC order (not the canonical NCHW order).
  Shape xs{1, 3, 4, 2};
  auto x = iota_vals(24, 1.0f, 0.0f);
  std::string g =
      placeholder("x", xs) + fconst("w", {1, 1, 2, 2}, {1, 0, 0, 1}) +
      node("conv", "Conv2D", {"x", "w"}, a_s("padding", "SAME") + a_ints("strides", {1, 1, 1, 1})) +
      node("relu", "Relu", {"conv"}) + iconst("shape", {2}, {1, -1}) +
      node("flat", "Reshape", {"relu", "shape"});
  auto out = run(g, {{"x", Tensor::from_vector<float>(xs, x)}}, {"flat", "relu"});
  std::vector<double> want(x.begin(), x.end());
  for (auto& v : want) v = std::max(v, 0.0);
  expect_near(out["flat"], want, {1, 24});
  expect_near(out["relu"], want, xs);  // a tap comes back in TF's NHWC layout too
}

TEST(TfImport, StridedSliceMasks) {
  // x (2, 3, 4) = 0..23; y = x[1, ::-1, 1:3][tf.newaxis]  -> (1, 3, 2)
  std::vector<float> x(24);
  for (int i = 0; i < 24; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i);
  std::string g = fconst("x", {2, 3, 4}, x) + iconst("b", {4}, {0, 1, 0, 1}) +
                  iconst("e", {4}, {0, 2, 0, 3}) + iconst("s", {4}, {1, 1, -1, 1}) +
                  node("y", "StridedSlice", {"x", "b", "e", "s"},
                       a_i("begin_mask", 4) + a_i("end_mask", 4) + a_i("ellipsis_mask", 0) +
                           a_i("new_axis_mask", 1) + a_i("shrink_axis_mask", 2));
  auto out = run(g, {});
  std::vector<double> want;
  for (int j = 2; j >= 0; --j)
    for (int k = 1; k < 3; ++k) want.push_back(12 + j * 4 + k);
  expect_near(out["y"], want, {1, 3, 2});
  // x[..., -1] (ellipsis + shrink of the last dim)
  std::string g2 = fconst("x", {2, 3, 4}, x) + iconst("b", {2}, {0, -1}) +
                   iconst("e", {2}, {0, 0}) + iconst("s", {2}, {1, 1}) +
                   node("y", "StridedSlice", {"x", "b", "e", "s"},
                        a_i("ellipsis_mask", 1) + a_i("shrink_axis_mask", 2));
  auto o2 = run(g2, {});
  std::vector<double> w2;
  for (int i = 0; i < 6; ++i) w2.push_back(i * 4 + 3);
  expect_near(o2["y"], w2, {2, 3});
}

TEST(TfImport, FusedBatchNormEpsilon) {
  // Inference mode; a large epsilon (0.5) against a small variance so it matters.
  Shape xs{1, 2, 2, 3};
  auto x = iota_vals(12);
  std::vector<float> scale{1.5f, -0.5f, 2.0f}, offset{0.1f, 0.2f, -0.3f}, mean{0.2f, -0.1f, 0.05f},
      var{0.01f, 0.2f, 0.0f};
  for (double eps : {0.5, 0.001}) {
    std::string g =
        placeholder("x", xs) + fconst("g", {3}, scale) + fconst("b", {3}, offset) +
        fconst("m", {3}, mean) + fconst("v", {3}, var) +
        node("bn", "FusedBatchNormV3", {"x", "g", "b", "m", "v"},
             a_f("epsilon", eps) + a_b("is_training", false) + a_s("data_format", "NHWC"));
    auto out = run(g, {{"x", Tensor::from_vector<float>(xs, x)}});
    std::vector<double> want;
    for (size_t i = 0; i < x.size(); ++i) {
      size_t c = i % 3;
      want.push_back((x[i] - mean[c]) /
                         std::sqrt(static_cast<double>(var[c]) +
                                   static_cast<double>(static_cast<float>(eps))) *
                         scale[c] +
                     offset[c]);
    }
    ASSERT_EQ(out.size(), 1u);  // inference: only y is an output
    expect_near(out["bn"], want, xs, 1e-4);
  }
}

TEST(TfImport, AvgPoolSameExcludesPadding) {
  // Average of ones over SAME windows is 1 everywhere when padding is not counted.
  Shape xs{1, 5, 5, 1};
  std::string g = placeholder("x", xs) +
                  node("p", "AvgPool", {"x"},
                       a_ints("ksize", {1, 3, 3, 1}) + a_ints("strides", {1, 2, 2, 1}) +
                           a_s("padding", "SAME")) +
                  node("m", "MaxPool", {"x"},
                       a_ints("ksize", {1, 2, 2, 1}) + a_ints("strides", {1, 2, 2, 1}) +
                           a_s("padding", "SAME"));
  std::vector<float> ones(25, 1.0f);
  auto out = run(g, {{"x", Tensor::from_vector<float>(xs, ones)}});
  expect_near(out["p"], std::vector<double>(9, 1.0), {1, 3, 3, 1});
  // negative input: the max over SAME windows must not see padding zeros
  std::vector<float> neg(25);
  for (int i = 0; i < 25; ++i) neg[static_cast<size_t>(i)] = -1.0f - static_cast<float>(i);
  auto o2 = run(g, {{"x", Tensor::from_vector<float>(xs, neg)}});
  // windows start at rows/cols 0, 2, 4 (pad only at the end): max = the window's first cell
  std::vector<double> want;
  for (int r : {0, 2, 4})
    for (int c : {0, 2, 4}) want.push_back(-1.0 - (r * 5 + c));
  expect_near(o2["m"], want, {1, 3, 3, 1});
}

TEST(TfImport, DepthwiseConv) {
  Shape xs{1, 5, 4, 2}, ws{3, 3, 2, 2};  // multiplier 2
  auto x = iota_vals(anvil::shape_numel(xs));
  auto w = iota_vals(anvil::shape_numel(ws), 0.05f, -0.5f);
  std::string g = placeholder("x", xs) + fconst("w", ws, w) +
                  node("d", "DepthwiseConv2dNative", {"x", "w"},
                       a_s("padding", "SAME") + a_ints("strides", {1, 2, 2, 1}));
  auto out = run(g, {{"x", Tensor::from_vector<float>(xs, x)}});
  // output channel c*M + m reads input channel c with filter [:, :, c, m]
  const int64_t H = 5, W = 4, OH = 3, OW = 2;
  const int64_t pt = std::max<int64_t>((OH - 1) * 2 + 3 - H, 0) / 2,
                pl = std::max<int64_t>((OW - 1) * 2 + 3 - W, 0) / 2;
  std::vector<double> want;
  for (int64_t oh = 0; oh < OH; ++oh)
    for (int64_t ow = 0; ow < OW; ++ow)
      for (int64_t c = 0; c < 2; ++c)
        for (int64_t m = 0; m < 2; ++m) {
          double acc = 0;
          for (int64_t kh = 0; kh < 3; ++kh)
            for (int64_t kw = 0; kw < 3; ++kw) {
              int64_t ih = oh * 2 + kh - pt, iw = ow * 2 + kw - pl;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              acc += x[static_cast<size_t>((ih * W + iw) * 2 + c)] *
                     w[static_cast<size_t>(((kh * 3 + kw) * 2 + c) * 2 + m)];
            }
          want.push_back(acc);
        }
  expect_near(out["d"], want, {1, OH, OW, 4});
}

TEST(TfImport, Conv2DBackpropInputIsTheConvGradient) {
  // <conv(x), dy> == <x, conv_transpose(dy)> for every x: check with x = unit vectors.
  Shape xs{1, 7, 6, 2}, ws{3, 3, 2, 3};
  auto w = iota_vals(anvil::shape_numel(ws), 0.05f, -0.5f);
  for (std::string pad : {"SAME", "VALID"}) {
    SCOPED_TRACE(pad);
    Shape ys;
    conv_nhwc(std::vector<float>(84, 0.f), xs, w, ws, 2, pad == "SAME", ys);
    auto dy = iota_vals(anvil::shape_numel(ys), 0.3f, -2.0f);
    std::string g = iconst("sizes", {4}, {1, 7, 6, 2}) + fconst("w", ws, w) +
                    placeholder("dy", ys) +
                    node("t", "Conv2DBackpropInput", {"sizes", "w", "dy"},
                         a_s("padding", pad) + a_ints("strides", {1, 2, 2, 1}));
    auto out = run(g, {{"dy", Tensor::from_vector<float>(ys, dy)}});
    ASSERT_EQ(out["t"].shape(), xs);
    auto got = out["t"].to_doubles();
    for (int64_t i = 0; i < 84; ++i) {
      std::vector<float> e(84, 0.f);
      e[static_cast<size_t>(i)] = 1.f;
      Shape s2;
      auto y = conv_nhwc(e, xs, w, ws, 2, pad == "SAME", s2);
      double dot = 0;
      for (size_t k = 0; k < y.size(); ++k) dot += y[k] * dy[k];
      EXPECT_NEAR(got[static_cast<size_t>(i)], dot, 1e-4) << "element " << i;
    }
  }
}

TEST(TfImport, ResizeBilinearModes) {
  // 1-D in effect: (1, 1, 3, 1) -> (1, 1, 5, 1); TF's source coordinate per mode.
  std::vector<float> x{0.f, 10.f, 40.f};
  auto interp = [&](double c) {
    c = std::max(0.0, c);
    int64_t lo = static_cast<int64_t>(std::floor(c)), hi = std::min<int64_t>(lo + 1, 2);
    lo = std::min<int64_t>(lo, 2);
    double f = c - std::floor(c);
    return x[static_cast<size_t>(lo)] +
           (x[static_cast<size_t>(hi)] - x[static_cast<size_t>(lo)]) * f;
  };
  struct Mode {
    bool ac, hp;
  };
  for (Mode m : {Mode{false, false}, Mode{true, false}, Mode{false, true}}) {
    std::string g = fconst("x", {1, 1, 3, 1}, x) + iconst("size", {2}, {1, 5}) +
                    node("r", "ResizeBilinear", {"x", "size"},
                         a_b("align_corners", m.ac) + a_b("half_pixel_centers", m.hp));
    auto out = run(g, {});
    std::vector<double> want;
    for (int i = 0; i < 5; ++i) {
      double c = m.ac ? i * (2.0 / 4.0) : m.hp ? (i + 0.5) * (3.0 / 5.0) - 0.5 : i * (3.0 / 5.0);
      want.push_back(interp(c));
    }
    expect_near(out["r"], want, {1, 1, 5, 1}, 1e-4);
  }
}

TEST(TfImport, OutputsNamesAndAnyNodeFetch) {
  // Split's second output, a Transpose (layout only) and a Const are fetchable by TF name.
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i);
  std::string g = placeholder("x", {3, 4}) + iconst("axis", {}, {1}) +
                  node("sp", "Split", {"axis", "x"}, a_i("num_split", 2)) +
                  iconst("perm", {2}, {1, 0}) + node("tr", "Transpose", {"sp:1", "perm"}) +
                  node("neg", "Neg", {"tr"}) + node("out", "Identity", {"sp"});
  anvil::Graph graph = anvil::import_model({write_graph(g)});
  EXPECT_EQ(graph.framework, "tensorflow");
  anvil::Session s(graph);
  auto outs = s.outputs();
  ASSERT_EQ(outs.size(), 2u);  // the sinks: neg, out
  EXPECT_EQ(outs[0].source_name, "neg");
  EXPECT_EQ(outs[1].source_name, "out");
  auto r = s.run({{"x", Tensor::from_vector<float>({3, 4}, x)}}, {"sp:1", "tr", "perm", "neg:0"});
  expect_near(r["sp:1"], {2, 3, 6, 7, 10, 11}, {3, 2});
  expect_near(r["tr"], {2, 6, 10, 3, 7, 11}, {2, 3});
  expect_near(r["neg:0"], {-2, -6, -10, -3, -7, -11}, {2, 3});
  expect_near(r["perm"], {1, 0}, {2});
}

TEST(TfImport, PlaceholderShapeFromOptions) {
  std::string g =
      "node { name: 'x' op: 'Placeholder' attr { key: 'dtype' value { type: DT_FLOAT } } "
      "attr { key: 'shape' value { shape { dim { size: -1 } dim { size: 2 } } } } }\n" +
      node("y", "Relu", {"x"});
  anvil::ImportOptions opt;
  opt.input_shapes["x"] = {3, 2};
  anvil::Session s(anvil::import_model({write_graph(g)}, opt));
  EXPECT_EQ(s.inputs()[0].shape, (Shape{3, 2}));
  anvil::Session d(anvil::import_model({write_graph(g)}));  // unknown batch: default_dim 1
  EXPECT_EQ(d.inputs()[0].shape, (Shape{1, 2}));
  anvil::ImportOptions bad;
  bad.input_shapes["nope"] = {1};
  EXPECT_THROW(anvil::import_model({write_graph(g)}, bad), anvil::Error);
}

TEST(TfImport, UnsupportedOpsListedTogether) {
  std::string g = placeholder("x", {2, 2}) + node("a", "FancyOp", {"x"}) +
                  node("b", "FancyOp", {"a"}) + node("c", "OtherOp", {"x"}) +
                  node("d", "Relu", {"x"});
  try {
    anvil::import_model({write_graph(g)});
    FAIL() << "expected an error";
  } catch (const anvil::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("FancyOp ('a')"), std::string::npos) << m;  // b depends on a: not repeated
    EXPECT_NE(m.find("OtherOp ('c')"), std::string::npos) << m;
  }
}

TEST(TfImport, MalformedInputsNameNodeAndField) {
  auto err = [](const std::string& text, const std::string& ext = ".pbtxt") -> std::string {
    try {
      anvil::import_model({write_graph(text, ext)});
    } catch (const anvil::Error& e) {
      return e.what();
    }
    return "";
  };
  // Conv2D with 3 strides
  std::string m = err(
      placeholder("x", {1, 4, 4, 1}) + fconst("w", {1, 1, 1, 1}, {1}) +
      node("conv", "Conv2D", {"x", "w"}, a_s("padding", "SAME") + a_ints("strides", {1, 1, 1})));
  EXPECT_NE(m.find("conv"), std::string::npos) << m;
  EXPECT_NE(m.find("strides"), std::string::npos) << m;
  // unknown padding
  m = err(
      placeholder("x", {1, 4, 4, 1}) + fconst("w", {1, 1, 1, 1}, {1}) +
      node("conv", "Conv2D", {"x", "w"}, a_s("padding", "HALF") + a_ints("strides", {1, 1, 1, 1})));
  EXPECT_NE(m.find("padding"), std::string::npos) << m;
  // dangling input
  m = err(node("r", "Relu", {"missing"}));
  EXPECT_NE(m.find("'r'"), std::string::npos) << m;
  EXPECT_NE(m.find("missing"), std::string::npos) << m;
  // tensor_content of the wrong size is caught; a Reshape to an impossible shape too
  m = err(fconst("x", {2, 3}, {1, 2, 3, 4, 5, 6, 7}) + node("r", "Relu", {"x"}));
  EXPECT_NE(m.find("value"), std::string::npos) << m;
  m = err(fconst("x", {2, 3}, {1}) + iconst("s", {1}, {4}) + node("r", "Reshape", {"x", "s"}));
  EXPECT_NE(m.find("shape"), std::string::npos) << m;
  // a text file that is not a GraphDef
  m = err("node { name: 'x' op: 'Const' garbage garbage");
  EXPECT_NE(m.find("text GraphDef"), std::string::npos) << m;
}

TEST(TfImport, BinaryAndTextFormatsDetectedByContent) {
  // The same graph as binary (written from the text by the fixture test data is real TF
  // binary; here a fixture .pb renamed without extension is recognised by content).
  fs::path src =
      fs::path(ANVIL_SOURCE_DIR) / "tests/data/fixtures/tensorflow/bias_add/frozen_model.pb";
  fs::path dst = fs::temp_directory_path() / ("anvil_tf_graph_" + std::to_string(::getpid()));
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
  EXPECT_EQ(anvil::import_model({dst.string()}).framework, "tensorflow");
  // An ONNX model is not taken for a GraphDef.
  EXPECT_EQ(anvil::import_model({std::string(ANVIL_SOURCE_DIR) + "/models/demo/digits_cnn.onnx"})
                .framework,
            "onnx");
}

}  // namespace
