// GPU tests of src/backend/cuda/kernels_nn.cu: pool2d_nhwc, global_pool_nhwc, lrn_nhwc,
// resize_nhwc, softmax (and log-softmax) and reduce, each in f32, f16 and bf16, against plain
// double-precision host loops written here from the ONNX definitions, on random data with odd
// sizes. Outputs are poisoned with NaN before each launch, so an element the kernel does not
// write fails. Every test skips itself where there is no CUDA device.
//
// Inputs are rounded to the tested dtype first and the host reference uses those rounded values,
// so the only differences are the device's float arithmetic and the final rounding of the
// output to the dtype. Tolerances, |got - want| <= rel * |want| + abs:
//   * max pooling, global max, ReduceMax/Min and nearest resize: exact (a copied input);
//   * f32: rel 1e-4 (the suite's bound) and abs 1e-5 times the size of what is summed (the sum
//     of |x| for sums, max |x| otherwise), which covers float summation of up to a few thousand
//     terms (sqrt(n) * 6e-8 typical, far below) and the rounding of x - max in softmax
//     (0.5 ulp of 200 = 7.6e-6 relative for inputs of +-100);
//   * f16 / bf16: the f32 bound plus one rounding of the result to the dtype: rel += unit
//     roundoff (2^-11 for f16, 2^-8 for bf16), abs += half the f16 subnormal spacing (2^-25).
// softmax, reductions, zero sizes and bad arguments: test_kernels_rows.cpp; helpers:
// nn_test_util.h. softmax, reductions, zero sizes and bad arguments: test_kernels_rows.cpp;
// helpers: nn_test_util.h.
#include "cuda/nn_test_util.h"

namespace anvil::cuda {
namespace {

// ---- 2-D pooling ----------------------------------------------------------------------------

/// ONNX output size; ceil mode drops a last window that would start in the end padding.
int pool_out(int in, int k, int s, int d, int pb, int pe, bool ceil_mode) {
  const int span = in + pb + pe - ((k - 1) * d + 1);
  if (!ceil_mode) return span / s + 1;
  int o = (span + s - 1) / s + 1;
  if ((o - 1) * s >= in + pb) --o;
  return o;
}

/// ONNX MaxPool / AveragePool on NHWC data, in double.
std::vector<double> ref_pool(const Pool2d& p, const std::vector<double>& x) {
  std::vector<double> y(static_cast<size_t>(p.n) * p.oh * p.ow * p.c);
  size_t o = 0;
  for (int n = 0; n < p.n; ++n)
    for (int oy = 0; oy < p.oh; ++oy)
      for (int ox = 0; ox < p.ow; ++ox)
        for (int ch = 0; ch < p.c; ++ch) {
          double acc = p.max ? -kInf : 0.0;
          int n_in = 0, n_pad = 0;
          for (int ky = 0; ky < p.kh; ++ky)
            for (int kx = 0; kx < p.kw; ++kx) {
              const int iy = oy * p.sh - p.pad_top + ky * p.dh;
              const int ix = ox * p.sw - p.pad_left + kx * p.dw;
              if (iy >= -p.pad_top && iy < p.h + p.pad_bottom && ix >= -p.pad_left &&
                  ix < p.w + p.pad_right)
                ++n_pad;
              if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
              ++n_in;
              const double v = x[((static_cast<size_t>(n) * p.h + iy) * p.w + ix) * p.c + ch];
              acc = p.max ? std::max(acc, v) : acc + v;
            }
          if (!p.max) {
            const int div = p.count_include_pad ? n_pad : n_in;
            acc = div ? acc / div : 0.0;
          }
          y[o++] = acc;
        }
  return y;
}

struct PoolCase {
  const char* name;
  int n, h, w, c, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  bool ceil_mode;
  size_t offset = 0;  // 1: misaligned pointers (the one-element path)
};

void run_pool_case(const PoolCase& pc, uint32_t seed) {
  Pool2d p;
  p.n = pc.n, p.h = pc.h, p.w = pc.w, p.c = pc.c;
  p.kh = pc.kh, p.kw = pc.kw, p.sh = pc.sh, p.sw = pc.sw, p.dh = pc.dh, p.dw = pc.dw;
  p.pad_top = pc.pt, p.pad_left = pc.pl, p.pad_bottom = pc.pb, p.pad_right = pc.pr;
  p.oh = pool_out(pc.h, pc.kh, pc.sh, pc.dh, pc.pt, pc.pb, pc.ceil_mode);
  p.ow = pool_out(pc.w, pc.kw, pc.sw, pc.dw, pc.pl, pc.pr, pc.ceil_mode);
  for (DType dt : kTypes) {
    const auto x = random_values(dt, static_cast<size_t>(p.n) * p.h * p.w * p.c, -1, 1, seed++);
    const DevArray dx = upload_values(dt, x, pc.offset);
    for (int variant = 0; variant < 3; ++variant) {  // max, avg, avg counting pads
      p.max = variant == 0;
      p.count_include_pad = variant == 2;
      const std::string what = std::string(pc.name) + " " + dt_str(dt) +
                               (variant == 0   ? " max"
                                : variant == 1 ? " avg"
                                               : " avg+pad");
      DevArray dy = poisoned(dt, static_cast<size_t>(p.n) * p.oh * p.ow * p.c, pc.offset);
      pool2d_nhwc(p, dt, dx.ptr(), dy.ptr(), nullptr);
      const auto want = ref_pool(p, x);
      // avg: at most kh*kw terms of |x| <= 1, divided by the count
      expect_close(download(dy), want, p.max ? kExact : for_dtype(dt, {1e-4, 1e-5}), what);
    }
  }
}

TEST(CudaKernelsNN, PoolOutputSizesFollowOnnx) {
  // Independent checks of the helper the pooling tests use (no GPU needed).
  EXPECT_EQ(pool_out(112, 3, 2, 1, 0, 0, true), 56);  // GoogLeNet pool1
  EXPECT_EQ(pool_out(112, 3, 2, 1, 0, 0, false), 55);
  EXPECT_EQ(pool_out(13, 3, 2, 1, 0, 0, true), 6);
  EXPECT_EQ(pool_out(14, 3, 2, 1, 1, 1, true), 8);
  EXPECT_EQ(pool_out(5, 2, 2, 1, 1, 1, true), 3);  // a 4th window would start in the end pad
}

TEST(CudaKernelsNN, Pool3x3Stride2CeilMode) {
  SKIP_WITHOUT_GPU();
  // GoogLeNet pool1 (112 -> 56, the last window hangs one cell over the edge) and SqueezeNet's
  // 13x13 / 14x14 pools; 64 channels take the 16-byte path, 37 the one-element path.
  run_pool_case({"googlenet_112", 1, 112, 112, 64, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true}, 100);
  run_pool_case({"squeeze_13", 2, 13, 13, 37, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true}, 200);
  run_pool_case({"squeeze_14", 2, 14, 14, 24, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true}, 300);
  // pads 1 and ceil mode: the last window covers a real row, the end pad and a ceil-mode cell
  // that count_include_pad must not count.
  run_pool_case({"pad1_ceil", 1, 14, 15, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true}, 400);
}

TEST(CudaKernelsNN, PoolAsymmetricPadsDilationAndOneByOne) {
  SKIP_WITHOUT_GPU();
  run_pool_case({"asym_pads", 2, 15, 16, 24, 3, 3, 2, 2, 1, 1, 0, 1, 1, 0, false}, 500);
  run_pool_case({"asym_pads_ceil", 1, 15, 16, 21, 3, 2, 2, 3, 1, 1, 0, 1, 1, 0, true}, 600);
  run_pool_case({"dilation2", 1, 11, 9, 16, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, false}, 700);
  run_pool_case({"dilation2_s2_ceil", 2, 12, 13, 40, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, true}, 800);
  run_pool_case({"1x1_s2", 2, 9, 11, 40, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, false}, 900);
  run_pool_case({"2x2_s2_ceil_pads", 1, 7, 5, 8, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, true}, 1000);
  run_pool_case({"7x7_avg", 2, 7, 7, 32, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, false}, 1100);
  run_pool_case({"misaligned", 1, 9, 9, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, 1}, 1200);
}

// ---- global pooling --------------------------------------------------------------------------

TEST(CudaKernelsNN, GlobalPool) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int n;
    int64_t hw;
    int c;
  };
  // ResNet-50 (7x7x2048, batch 1 and 2), SqueezeNet-like 1x1xC, odd 5x3x37, a long 56x56x64
  // axis (the many-threads path) and 13x13x1000.
  const Case cases[] = {{1, 49, 2048}, {2, 49, 2048},  {2, 1, 1000}, {3, 15, 37},
                        {1, 3136, 64}, {2, 169, 1000}, {5, 49, 1280}};
  uint32_t seed = 2000;
  for (const Case& cs : cases)
    for (DType dt : kTypes) {
      const auto x = random_values(dt, static_cast<size_t>(cs.n) * cs.hw * cs.c, -1, 1, seed++);
      const DevArray dx = upload_values(dt, x);
      std::vector<double> mx(static_cast<size_t>(cs.n) * cs.c, -kInf), mean(mx.size(), 0.0);
      for (int n = 0; n < cs.n; ++n)
        for (int64_t p = 0; p < cs.hw; ++p)
          for (int c = 0; c < cs.c; ++c) {
            const double v = x[(static_cast<size_t>(n) * cs.hw + p) * cs.c + c];
            const size_t o = static_cast<size_t>(n) * cs.c + c;
            mx[o] = std::max(mx[o], v);
            mean[o] += v / static_cast<double>(cs.hw);
          }
      const std::string what = std::to_string(cs.n) + "x" + std::to_string(cs.hw) + "x" +
                               std::to_string(cs.c) + " " + dt_str(dt);
      DevArray dmax = poisoned(dt, mx.size()), dmean = poisoned(dt, mx.size());
      global_pool_nhwc(true, cs.n, cs.hw, cs.c, dt, dx.ptr(), dmax.ptr(), nullptr);
      global_pool_nhwc(false, cs.n, cs.hw, cs.c, dt, dx.ptr(), dmean.ptr(), nullptr);
      expect_close(download(dmax), mx, kExact, what + " max");
      // mean of |x| <= 1: abs 1e-5 of the largest term
      expect_close(download(dmean), mean, for_dtype(dt, {1e-4, 1e-5}), what + " mean");
    }
}

// ---- LRN -------------------------------------------------------------------------------------

TEST(CudaKernelsNN, Lrn) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int64_t pixels;
    int c, size;
    float alpha, beta, bias;
    double range;
  };
  // GoogLeNet's LRN (size 5, alpha 1e-4, beta 0.75, bias 1) on values large enough for the
  // normalization to matter (~1%); an even size (window 1 before, 2 after); strong
  // normalization; a window wider than the channels; size 1.
  const Case cases[] = {{2 * 7 * 9, 64, 5, 1e-4f, 0.75f, 1.f, 20},
                        {2 * 7 * 9, 192, 5, 1e-4f, 0.75f, 1.f, 20},
                        {3 * 5, 37, 4, 2.f, 0.75f, 2.f, 3},
                        {50, 5, 9, 1.f, 0.5f, 1.f, 3},
                        {40, 13, 1, 0.5f, 0.6f, 1.5f, 3}};
  uint32_t seed = 3000;
  for (const Case& cs : cases)
    for (DType dt : kTypes) {
      const auto x =
          random_values(dt, static_cast<size_t>(cs.pixels) * cs.c, -cs.range, cs.range, seed++);
      std::vector<double> want(x.size());
      const int lo = (cs.size - 1) / 2, hi = cs.size - 1 - lo;  // ONNX: floor / ceil of (size-1)/2
      for (int64_t p = 0; p < cs.pixels; ++p)
        for (int c = 0; c < cs.c; ++c) {
          double sq = 0;
          for (int cc = std::max(0, c - lo); cc <= std::min(cs.c - 1, c + hi); ++cc) {
            const double v = x[static_cast<size_t>(p * cs.c + cc)];
            sq += v * v;
          }
          const size_t i = static_cast<size_t>(p * cs.c + c);
          want[i] =
              x[i] / std::pow(double{cs.bias} + double{cs.alpha} / cs.size * sq, double{cs.beta});
        }
      const DevArray dx = upload_values(dt, x);
      DevArray dy = poisoned(dt, x.size());
      lrn_nhwc(cs.pixels, cs.c, cs.size, cs.alpha, cs.beta, cs.bias, dt, dx.ptr(), dy.ptr(),
               nullptr);
      expect_close(
          download(dy), want, for_dtype(dt, {1e-4, 1e-6 * cs.range}),
          "lrn c=" + std::to_string(cs.c) + " size=" + std::to_string(cs.size) + " " + dt_str(dt));
    }
}

// ---- Resize ----------------------------------------------------------------------------------

enum class Coord { HalfPixel, Asymmetric, AlignCorners };

/// ONNX input coordinate of output index xo (scale = output / input as given to Resize).
double onnx_coord(Coord m, double xo, double scale, int in) {
  switch (m) {
    case Coord::HalfPixel:
      return (xo + 0.5) / scale - 0.5;
    case Coord::Asymmetric:
      return xo / scale;
    case Coord::AlignCorners: {
      const double len = scale * in;  // unrounded resized length (ONNX reference)
      return len == 1 ? 0.0 : xo * (in - 1) / (len - 1);
    }
  }
  return 0;
}

/// The executor's per-axis (scale, offset) for the kernel: in_coord = dst * scale + offset.
void kernel_affine(Coord m, double scale, int in, float& s, float& off) {
  switch (m) {
    case Coord::HalfPixel:
      s = static_cast<float>(1 / scale);
      off = static_cast<float>(0.5 / scale - 0.5);
      return;
    case Coord::Asymmetric:
      s = static_cast<float>(1 / scale);
      off = 0;
      return;
    case Coord::AlignCorners: {
      const double len = scale * in;
      s = static_cast<float>(len == 1 ? 0.0 : (in - 1) / (len - 1));
      off = 0;
      return;
    }
  }
}

/// Nearest indices of ONNX coordinate v (0 floor, 1 round_prefer_floor, 2 round_prefer_ceil,
/// 3 ceil), clamped; two candidates when v is within `slack` of a rounding boundary (the kernel
/// gets the coordinate map as floats, so a tie may land on either side), else one twice.
std::pair<int, int> nearest_candidates(double v, int mode, int n, double slack) {
  auto pick = [&](double u) {
    const double f = std::floor(u), fr = u - f;
    double r = mode == 0   ? f
               : mode == 3 ? std::ceil(u)
               : mode == 1 ? (fr > 0.5 ? f + 1 : f)
                           : (fr >= 0.5 ? f + 1 : f);
    return std::clamp(static_cast<int>(r), 0, n - 1);
  };
  return {pick(v - slack), pick(v + slack)};
}

struct ResizeCase {
  const char* name;
  int n, h, w, c;
  double scale_h, scale_w;  // ONNX scales (output / input)
  Coord coord;
  bool exact;  // scales are powers of two: the float coordinate map is exact, no tie slack
  size_t offset = 0;
};

void run_resize_case(const ResizeCase& rc, int mode, int nearest_round, uint32_t seed) {
  Resize2d r;
  r.n = rc.n, r.h = rc.h, r.w = rc.w, r.c = rc.c;
  r.oh = static_cast<int>(std::floor(rc.h * rc.scale_h));
  r.ow = static_cast<int>(std::floor(rc.w * rc.scale_w));
  kernel_affine(rc.coord, rc.scale_h, rc.h, r.scale_h, r.offset_h);
  kernel_affine(rc.coord, rc.scale_w, rc.w, r.scale_w, r.offset_w);
  r.mode = mode;
  r.nearest_round = nearest_round;
  const double slack = rc.exact ? 0.0 : 1e-4;
  for (DType dt : kTypes) {
    const auto x = random_values(dt, static_cast<size_t>(r.n) * r.h * r.w * r.c, -1, 1, seed++);
    const DevArray dx = upload_values(dt, x, rc.offset);
    DevArray dy = poisoned(dt, static_cast<size_t>(r.n) * r.oh * r.ow * r.c, rc.offset);
    resize_nhwc(r, dt, dx.ptr(), dy.ptr(), nullptr);
    const auto got = download(dy);
    const std::string what = std::string(rc.name) + (mode ? " bilinear " : " nearest") +
                             (mode ? "" : std::to_string(nearest_round) + " ") + dt_str(dt);
    auto X = [&](int n, int y, int x_, int ch) {
      return x[((static_cast<size_t>(n) * r.h + y) * r.w + x_) * r.c + ch];
    };
    std::vector<double> want(got.size());
    size_t bad = 0, o = 0;
    std::ostringstream first;
    for (int n = 0; n < r.n; ++n)
      for (int oy = 0; oy < r.oh; ++oy)
        for (int ox = 0; ox < r.ow; ++ox) {
          const double fy = onnx_coord(rc.coord, oy, rc.scale_h, r.h);
          const double fx = onnx_coord(rc.coord, ox, rc.scale_w, r.w);
          for (int ch = 0; ch < r.c; ++ch, ++o) {
            if (mode == 0) {
              const auto [y0, y1] = nearest_candidates(fy, nearest_round, r.h, slack);
              const auto [x0, x1] = nearest_candidates(fx, nearest_round, r.w, slack);
              const double g = got[o];
              const bool ok = g == X(n, y0, x0, ch) || g == X(n, y0, x1, ch) ||
                              g == X(n, y1, x0, ch) || g == X(n, y1, x1, ch);
              if (!ok && bad++ < 5)
                first << "\n  [" << n << "," << oy << "," << ox << "," << ch << "] got " << g
                      << " want " << X(n, y0, x0, ch);
              continue;
            }
            // bilinear: taps floor(v), floor(v) + 1 clamped to the edge
            auto taps = [](double v, int len, int& i0, int& i1, double& t) {
              const double f = std::floor(v);
              t = v - f;
              i0 = std::clamp(static_cast<int>(f), 0, len - 1);
              i1 = std::clamp(static_cast<int>(f) + 1, 0, len - 1);
            };
            int y0, y1, x0, x1;
            double ty, tx;
            taps(fy, r.h, y0, y1, ty);
            taps(fx, r.w, x0, x1, tx);
            want[o] = (1 - ty) * ((1 - tx) * X(n, y0, x0, ch) + tx * X(n, y0, x1, ch)) +
                      ty * ((1 - tx) * X(n, y1, x0, ch) + tx * X(n, y1, x1, ch));
          }
        }
    if (mode == 0)
      EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " differ" << first.str();
    else  // |x| <= 1; float weights off by ~1e-7 at most
      expect_close(got, want, for_dtype(dt, {1e-4, 1e-5}), what);
  }
}

TEST(CudaKernelsNN, ResizeNearest) {
  SKIP_WITHOUT_GPU();
  const ResizeCase up2{"x2 asymmetric", 2, 7, 9, 64, 2, 2, Coord::Asymmetric, true};
  const ResizeCase up2h{"x2 half_pixel", 1, 7, 9, 37, 2, 2, Coord::HalfPixel, true};
  // 0.5 with half_pixel: every coordinate is an exact tie (2x + 0.5), so prefer_floor and
  // prefer_ceil pick different pixels.
  const ResizeCase down2{"x0.5 half_pixel", 2, 12, 10, 24, 0.5, 0.5, Coord::HalfPixel, true};
  const ResizeCase up15{"x1.5 half_pixel", 1, 7, 11, 16, 1.5, 1.5, Coord::HalfPixel, false};
  const ResizeCase up15a{"x1.5 asymmetric", 2, 8, 5, 13, 1.5, 1.5, Coord::Asymmetric, false};
  const ResizeCase mis{"x2 misaligned", 1, 5, 6, 64, 2, 2, Coord::HalfPixel, true, 1};
  uint32_t seed = 4000;
  for (int round = 0; round < 4; ++round) {
    for (const ResizeCase* rc : {&up2, &up2h, &down2, &up15, &up15a, &mis})
      run_resize_case(*rc, 0, round, seed += 10);
  }
}

TEST(CudaKernelsNN, ResizeBilinear) {
  SKIP_WITHOUT_GPU();
  const ResizeCase cases[] = {
      {"x2 half_pixel", 2, 7, 9, 64, 2, 2, Coord::HalfPixel, true},
      {"x2 half_pixel odd c", 1, 7, 9, 37, 2, 2, Coord::HalfPixel, true},
      {"x0.5 half_pixel", 2, 12, 10, 24, 0.5, 0.5, Coord::HalfPixel, true},
      {"x1.5 half_pixel", 1, 7, 11, 16, 1.5, 1.5, Coord::HalfPixel, false},
      {"x1.5 align_corners", 1, 7, 11, 16, 1.5, 1.5, Coord::AlignCorners, false},
      {"x2 asymmetric", 2, 6, 5, 8, 2, 2, Coord::Asymmetric, true},
      {"x2 x3 half_pixel", 1, 5, 4, 40, 2, 3, Coord::HalfPixel, false},
      {"x2 misaligned", 1, 5, 6, 64, 2, 2, Coord::HalfPixel, true, 1},
  };
  uint32_t seed = 5000;
  for (const ResizeCase& rc : cases) run_resize_case(rc, 1, 0, seed += 10);
}

// ---- the host oracles against Anvil's reference backend (no GPU needed) ---------------------

/// NHWC values as an NCHW f32 tensor, and back.
Tensor nchw_tensor(const std::vector<double>& v, int n, int h, int w, int c) {
  Tensor t(DType::f32, {n, c, h, w});
  for (int b = 0; b < n; ++b)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int ch = 0; ch < c; ++ch)
          t.set(((int64_t{b} * c + ch) * h + y) * w + x,
                v[((static_cast<size_t>(b) * h + y) * w + x) * c + ch]);
  return t;
}
std::vector<double> nhwc_values(const Tensor& t) {
  const auto& s = t.shape();
  const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          v[static_cast<size_t>(((b * h + y) * w + x) * c + ch)] =
              t.get(((b * c + ch) * h + y) * w + x);
  return v;
}

/// One `op` node on the reference backend: input x, then constant inputs (undefined: omitted).
Tensor run_reference(const std::string& op, const Tensor& x, const Attributes& a,
                     const std::vector<Tensor>& consts = {}) {
  Graph g;
  std::vector<int> ins{g.add_input("x", DType::f32, x.shape())};
  for (size_t i = 0; i < consts.size(); ++i)
    ins.push_back(consts[i].defined() ? g.add_constant("c" + std::to_string(i), consts[i]) : -1);
  const int node = g.add_node(op, "n", ins, a);
  g.outputs.push_back(g.nodes[static_cast<size_t>(node)].outputs[0]);
  SessionOptions o;
  o.backend = "reference";
  Session sess(std::move(g), o);
  auto out = sess.run({{"x", x}});
  return out.begin()->second;
}

TEST(CudaKernelsNN, HostOraclesAgreeWithReferenceBackend) {
  // The pooling and resize oracles above against the reference backend's MaxPool /
  // AveragePool / Resize (ONNX semantics) on the same cases; runs without a GPU.
  const PoolCase pools[] = {{"squeeze_14", 1, 14, 14, 3, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, true},
                            {"pad1_ceil", 1, 14, 15, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true},
                            {"asym_pads_ceil", 1, 15, 16, 2, 3, 2, 2, 3, 1, 1, 0, 1, 1, 0, true},
                            {"dilation2_s2_ceil", 2, 12, 13, 2, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, true},
                            {"2x2_s2_ceil_pads", 1, 7, 5, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, true}};
  uint32_t seed = 11000;
  for (const PoolCase& pc : pools) {
    Pool2d p;
    p.n = pc.n, p.h = pc.h, p.w = pc.w, p.c = pc.c;
    p.kh = pc.kh, p.kw = pc.kw, p.sh = pc.sh, p.sw = pc.sw, p.dh = pc.dh, p.dw = pc.dw;
    p.pad_top = pc.pt, p.pad_left = pc.pl, p.pad_bottom = pc.pb, p.pad_right = pc.pr;
    p.oh = pool_out(pc.h, pc.kh, pc.sh, pc.dh, pc.pt, pc.pb, pc.ceil_mode);
    p.ow = pool_out(pc.w, pc.kw, pc.sw, pc.dw, pc.pl, pc.pr, pc.ceil_mode);
    const auto x =
        random_values(DType::f32, static_cast<size_t>(p.n) * p.h * p.w * p.c, -1, 1, seed++);
    for (int variant = 0; variant < 3; ++variant) {
      p.max = variant == 0;
      p.count_include_pad = variant == 2;
      Attributes a;
      a.set("kernel_shape", std::vector<int64_t>{pc.kh, pc.kw});
      a.set("strides", std::vector<int64_t>{pc.sh, pc.sw});
      a.set("dilations", std::vector<int64_t>{pc.dh, pc.dw});
      a.set("pads", std::vector<int64_t>{pc.pt, pc.pl, pc.pb, pc.pr});
      a.set("ceil_mode", int64_t{pc.ceil_mode});
      if (!p.max) a.set("count_include_pad", int64_t{p.count_include_pad});
      const Tensor r =
          run_reference(p.max ? "MaxPool" : "AveragePool", nchw_tensor(x, p.n, p.h, p.w, p.c), a);
      ASSERT_EQ(r.shape(), (Shape{p.n, p.c, p.oh, p.ow})) << pc.name;
      // the reference stores its f32 output: one float rounding
      expect_close(ref_pool(p, x), nhwc_values(r), {1e-7, 1e-7},
                   std::string(pc.name) + " oracle variant " + std::to_string(variant));
    }
  }
  struct RCase {
    double scale;
    Coord coord;
    const char* coord_name;
    const char* mode;
    const char* nearest;
    int round;
  };
  const RCase resizes[] = {
      {2, Coord::HalfPixel, "half_pixel", "linear", "floor", 0},
      {1.5, Coord::HalfPixel, "half_pixel", "linear", "floor", 0},
      {1.5, Coord::AlignCorners, "align_corners", "linear", "floor", 0},
      {0.5, Coord::HalfPixel, "half_pixel", "linear", "floor", 0},
      {0.5, Coord::HalfPixel, "half_pixel", "nearest", "round_prefer_floor", 1},
      {0.5, Coord::HalfPixel, "half_pixel", "nearest", "round_prefer_ceil", 2},
      {2, Coord::Asymmetric, "asymmetric", "nearest", "floor", 0},
      {2, Coord::HalfPixel, "half_pixel", "nearest", "ceil", 3}};
  const int h = 12, w = 10, c = 2;
  size_t checked = 0;
  for (const RCase& rc : resizes) {
    const auto x = random_values(DType::f32, static_cast<size_t>(h) * w * c, -1, 1, seed++);
    Attributes a;
    a.set("mode", std::string(rc.mode));
    a.set("coordinate_transformation_mode", std::string(rc.coord_name));
    a.set("nearest_mode", std::string(rc.nearest));
    const Tensor scales = Tensor::from_vector<float>(
        {4}, {1.f, 1.f, static_cast<float>(rc.scale), static_cast<float>(rc.scale)});
    const Tensor r = run_reference("Resize", nchw_tensor(x, 1, h, w, c), a, {Tensor(), scales});
    const int oh = static_cast<int>(std::floor(h * rc.scale)),
              ow = static_cast<int>(std::floor(w * rc.scale));
    ASSERT_EQ(r.shape(), (Shape{1, c, oh, ow})) << rc.coord_name << " " << rc.scale;
    const auto ref = nhwc_values(r);
    size_t o = 0, bad = 0;
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        for (int ch = 0; ch < c; ++ch, ++o) {
          const double fy = onnx_coord(rc.coord, oy, rc.scale, h);
          const double fx = onnx_coord(rc.coord, ox, rc.scale, w);
          double want;
          if (std::string(rc.mode) == "nearest") {
            const int iy = nearest_candidates(fy, rc.round, h, 0).first;
            const int ix = nearest_candidates(fx, rc.round, w, 0).first;
            want = x[(static_cast<size_t>(iy) * w + ix) * c + ch];
          } else {
            const double y0 = std::floor(fy), x0 = std::floor(fx), ty = fy - y0, tx = fx - x0;
            auto X = [&](double yy, double xx) {
              const int iy = std::clamp(static_cast<int>(yy), 0, h - 1);
              const int ix = std::clamp(static_cast<int>(xx), 0, w - 1);
              return x[(static_cast<size_t>(iy) * w + ix) * c + ch];
            };
            want = (1 - ty) * ((1 - tx) * X(y0, x0) + tx * X(y0, x0 + 1)) +
                   ty * ((1 - tx) * X(y0 + 1, x0) + tx * X(y0 + 1, x0 + 1));
          }
          ++checked;
          if (std::abs(want - ref[o]) > 1e-6 && bad++ < 5)
            ADD_FAILURE() << rc.mode << " " << rc.coord_name << " x" << rc.scale << " [" << oy
                          << "," << ox << "," << ch << "] oracle " << want << " reference "
                          << ref[o];
        }
  }
  EXPECT_EQ(checked, size_t{(24 * 20 + 18 * 15 * 2 + 6 * 5 * 3 + 24 * 20 * 2) * c});
}

// ---- device time (informational) ------------------------------------------------------------

TEST(CudaKernelsNN, PerfReport) {
  SKIP_WITHOUT_GPU();
  // Not pass/fail: prints the device time and effective bandwidth (bytes read once + written)
  // of the shapes that matter in ResNet / GoogLeNet / SqueezeNet / MobileNet inference.
  cudaStream_t s;
  ANVIL_CUDA_CHECK(cudaStreamCreate(&s));
  DeviceBuffer a(size_t{64} * 112 * 112 * 64 * 4), b(size_t{64} * 112 * 112 * 64 * 4);
  ANVIL_CUDA_CHECK(cudaMemset(a.get(), 0, a.size()));
  cudaEvent_t e0, e1;
  ANVIL_CUDA_CHECK(cudaEventCreate(&e0));
  ANVIL_CUDA_CHECK(cudaEventCreate(&e1));
  auto report = [&](const std::string& name, double bytes, const auto& launch) {
    for (int i = 0; i < 3; ++i) launch();
    const int iters = 20;
    ANVIL_CUDA_CHECK(cudaEventRecord(e0, s));
    for (int i = 0; i < iters; ++i) launch();
    ANVIL_CUDA_CHECK(cudaEventRecord(e1, s));
    ANVIL_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    const double us = 1000.0 * ms / iters;
    std::printf("[perf] %-44s %9.2f us %8.0f GB/s\n", name.c_str(), us, bytes / (us * 1e3));
  };
  for (const int n : {1, 64}) {
    const std::string N = std::to_string(n);
    Pool2d p;
    p.n = n, p.h = 112, p.w = 112, p.c = 64, p.oh = 56, p.ow = 56, p.kh = 3, p.kw = 3;
    p.sh = 2, p.sw = 2, p.pad_top = 1, p.pad_left = 1, p.pad_bottom = 1, p.pad_right = 1;
    report("maxpool 3x3 s2 " + N + "x112x112x64 f16", 2.0 * n * 64 * (112 * 112 + 56 * 56),
           [&] { pool2d_nhwc(p, DType::f16, a.get(), b.get(), s); });
    p.max = false;
    report("avgpool 3x3 s2 " + N + "x112x112x64 f16", 2.0 * n * 64 * (112 * 112 + 56 * 56),
           [&] { pool2d_nhwc(p, DType::f16, a.get(), b.get(), s); });
    report("global avg " + N + "x7x7x2048 f16", 2.0 * n * 2048 * 50,
           [&] { global_pool_nhwc(false, n, 49, 2048, DType::f16, a.get(), b.get(), s); });
    report("global avg " + N + "x7x7x2048 f32", 4.0 * n * 2048 * 50,
           [&] { global_pool_nhwc(false, n, 49, 2048, DType::f32, a.get(), b.get(), s); });
    report("global avg " + N + "x13x13x1000 f16", 2.0 * n * 1000 * 170,
           [&] { global_pool_nhwc(false, n, 169, 1000, DType::f16, a.get(), b.get(), s); });
    report("global avg " + N + "x56x56x64 f16", 2.0 * n * 64 * (3136 + 1),
           [&] { global_pool_nhwc(false, n, 3136, 64, DType::f16, a.get(), b.get(), s); });
    report("softmax " + N + "x1000 f32", 8.0 * n * 1000,
           [&] { softmax(false, DType::f32, a.get(), b.get(), n, 1000, 1, s); });
    report("softmax " + N + "x1000 f16", 4.0 * n * 1000,
           [&] { softmax(false, DType::f16, a.get(), b.get(), n, 1000, 1, s); });
    report("lrn size 5 " + N + "x56x56x192 f16", 4.0 * n * 56 * 56 * 192, [&] {
      lrn_nhwc(int64_t{n} * 56 * 56, 192, 5, 1e-4f, 0.75f, 1.f, DType::f16, a.get(), b.get(), s);
    });
    Resize2d r;
    r.n = n, r.h = 28, r.w = 28, r.c = 256, r.oh = 56, r.ow = 56, r.mode = 1;
    r.scale_h = r.scale_w = 0.5f, r.offset_h = r.offset_w = -0.25f;
    report("resize bilinear x2 " + N + "x28x28x256 f16", 2.0 * n * 256 * (28 * 28 + 56 * 56),
           [&] { resize_nhwc(r, DType::f16, a.get(), b.get(), s); });
    report("reduce mean " + N + "x49x2048 f32", 4.0 * n * 2048 * 50,
           [&] { reduce(1, DType::f32, a.get(), b.get(), n, 49, 2048, s); });
  }
  ANVIL_CUDA_CHECK(cudaEventDestroy(e0));
  ANVIL_CUDA_CHECK(cudaEventDestroy(e1));
  ANVIL_CUDA_CHECK(cudaStreamDestroy(s));
}

}  // namespace
}  // namespace anvil::cuda
