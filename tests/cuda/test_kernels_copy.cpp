// The cuda backend's copy kernels (kernels.h, kernels_copy.cu) against host oracles:
// strided copies (layout changes, permutations, slices, concat, broadcast, casts) and fill,
// plus the throughput report of the elementwise kernels. Helpers: elementwise_test_util.h;
// the unary/binary/affine kernels are tested in test_kernels_elementwise.cpp.
//
#include "cuda/elementwise_test_util.h"

namespace anvil::cuda {
namespace {

// ---- strided copy ---------------------------------------------------------------------------

TEST(CudaElementwise, CopyTransposeNchwNhwc) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 6000;
  for (DType t : kFloatTypes)
    for (const Shape& s : {Shape{2, 5, 7, 9}, Shape{2, 16, 4, 6}, Shape{1, 3, 11, 13},
                           Shape{2, 64, 14, 14}, Shape{3, 40, 9, 7}}) {
      const int64_t N = s[0], C = s[1], H = s[2], W = s[3];
      const std::vector<double> x =
          rounded(t, random_vec(static_cast<size_t>(N * C * H * W), -4, 4, seed++));
      const size_t es = element_size(t), n = x.size();
      DeviceBuffer xd = upload_bytes(encode(t, x)), yd(n * es), zd(n * es);
      // NCHW -> NHWC, iterating the source's shape.
      Strided d;
      d.rank = 4;
      const int64_t shp[4] = {N, C, H, W};
      const int64_t src[4] = {C * H * W, H * W, W, 1};
      const int64_t dst[4] = {H * W * C, 1, W * C, C};
      for (int i = 0; i < 4; ++i) {
        d.shape[i] = shp[i];
        d.src_stride[i] = src[i];
        d.dst_stride[i] = dst[i];
      }
      poison(yd.get(), yd.size());
      strided_copy(t, xd.get(), t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), n * es));
      std::vector<double> want(n);
      for (int64_t a = 0; a < N; ++a)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w)
              want[((a * H + h) * W + w) * C + c] = x[((a * C + c) * H + h) * W + w];
      expect_close(y, want, DType::f32, "NCHW->NHWC " + shape_str(s));  // bit copies: exact
      // And back, NHWC -> NCHW, iterating the destination's shape [N, C, H, W].
      Strided e;
      e.rank = 4;
      for (int i = 0; i < 4; ++i) {
        e.shape[i] = shp[i];
        e.src_stride[i] = dst[i];
        e.dst_stride[i] = src[i];
      }
      poison(zd.get(), zd.size());
      strided_copy(t, yd.get(), t, zd.get(), e, nullptr);
      expect_close(decode(t, download_bytes(zd.get(), n * es)), x, DType::f32,
                   "NHWC->NCHW " + shape_str(s));
    }
}

// y = x.permute(perm) (y dim k is x dim perm[k]), y contiguous; expected by explicit
// multi-index loops. Values are small integers, exact in every dtype.
void check_permute(DType t, const Shape& xs, const std::vector<int>& perm, uint32_t seed) {
  const int r = static_cast<int>(xs.size());
  const size_t n = static_cast<size_t>(shape_numel(xs)), es = element_size(t);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, 100);
  std::vector<double> x(n);
  for (auto& v : x) v = u(rng);
  Shape ys(static_cast<size_t>(r));
  for (int k = 0; k < r; ++k) ys[k] = xs[perm[k]];
  const auto xst = contiguous_strides(xs), yst = contiguous_strides(ys);
  Strided d;
  d.rank = r;
  for (int k = 0; k < r; ++k) {
    d.shape[k] = ys[k];
    d.src_stride[k] = xst[perm[k]];
    d.dst_stride[k] = yst[k];
  }
  std::vector<double> want(n);
  for (size_t i = 0; i < n; ++i) {  // i: linear index of y
    size_t rem = i, xo = 0;
    for (int k = r - 1; k >= 0; --k) {
      const size_t ik = rem % static_cast<size_t>(ys[k]);
      rem /= static_cast<size_t>(ys[k]);
      xo += ik * static_cast<size_t>(xst[perm[k]]);
    }
    want[i] = x[xo];
  }
  DeviceBuffer xd = upload_bytes(encode(t, x)), yd(n * es);
  poison(yd.get(), yd.size());
  strided_copy(t, xd.get(), t, yd.get(), d, nullptr);
  const auto y = decode(t, download_bytes(yd.get(), n * es));
  int bad = 0;
  for (size_t i = 0; i < n; ++i) bad += !(y[i] == want[i]);
  EXPECT_EQ(bad, 0) << "permute " << shape_str(xs) << " " << dtype_name(t);
}

TEST(CudaElementwise, CopyPermutationsTiledAndNot) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 6500;
  auto all = [&] {
    for (DType t : {DType::f32, DType::f16, DType::i64, DType::u8, DType::bf16}) {
      check_permute(t, {2, 64, 14, 14}, {0, 2, 3, 1}, seed++);       // NCHW -> NHWC (tiled)
      check_permute(t, {2, 14, 14, 64}, {0, 3, 1, 2}, seed++);       // NHWC -> NCHW (tiled)
      check_permute(t, {33, 47}, {1, 0}, seed++);                    // 2-D, partial tiles
      check_permute(t, {2, 3, 17, 4, 19}, {1, 4, 0, 3, 2}, seed++);  // batch dims around the tile
      check_permute(t, {1, 3, 20, 21}, {0, 2, 3, 1}, seed++);        // C = 3: not tiled
      check_permute(t, {4, 5, 6}, {2, 0, 1}, seed++);                // small: not tiled
      check_permute(t, {3, 70, 2, 40}, {0, 3, 2, 1}, seed++);  // two-dim swap around a middle dim
    }
  };
  all();
  Index64Guard g;  // the same through the 64-bit index kernels
  all();
}

TEST(CudaElementwise, CopySliceStepsAndNegativeSteps) {
  SKIP_WITHOUT_GPU();
  for (DType t : {DType::f32, DType::f16, DType::i64, DType::u8}) {
    const int64_t R = 9, Cc = 11;
    std::vector<double> x(static_cast<size_t>(R * Cc));
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 37) % 101);
    const size_t es = element_size(t);
    DeviceBuffer xd = upload_bytes(encode(t, x));
    const uint8_t* base = static_cast<const uint8_t*>(xd.get());
    {  // x[1::2, 0::3] -> [4, 4]
      Strided d;
      d.rank = 2;
      d.shape[0] = 4;
      d.shape[1] = 4;
      d.src_stride[0] = 2 * Cc;
      d.src_stride[1] = 3;
      d.dst_stride[0] = 4;
      d.dst_stride[1] = 1;
      DeviceBuffer yd(16 * es);
      poison(yd.get(), yd.size());
      strided_copy(t, base + 1 * Cc * es, t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), 16 * es));
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          EXPECT_EQ(y[i * 4 + j], x[(1 + 2 * i) * Cc + 3 * j]) << dtype_name(t) << " step 2/3";
    }
    {  // x[8::-2, ::-1] -> [5, 11]
      Strided d;
      d.rank = 2;
      d.shape[0] = 5;
      d.shape[1] = Cc;
      d.src_stride[0] = -2 * Cc;
      d.src_stride[1] = -1;
      d.dst_stride[0] = Cc;
      d.dst_stride[1] = 1;
      DeviceBuffer yd(5 * Cc * es);
      poison(yd.get(), yd.size());
      strided_copy(t, base + (8 * Cc + Cc - 1) * es, t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), 5 * Cc * es));
      for (int i = 0; i < 5; ++i)
        for (int j = 0; j < Cc; ++j)
          EXPECT_EQ(y[i * Cc + j], x[(8 - 2 * i) * Cc + (Cc - 1 - j)])
              << dtype_name(t) << " negative steps";
    }
    {  // whole array reversed (rows and columns): merges into one contiguous reversed run
      Strided d;
      d.rank = 2;
      d.shape[0] = R;
      d.shape[1] = Cc;
      d.src_stride[0] = -Cc;
      d.src_stride[1] = -1;
      d.dst_stride[0] = Cc;
      d.dst_stride[1] = 1;
      DeviceBuffer yd(x.size() * es);
      poison(yd.get(), yd.size());
      strided_copy(t, base + (x.size() - 1) * es, t, yd.get(), d, nullptr);
      const auto y = decode(t, download_bytes(yd.get(), x.size() * es));
      for (size_t i = 0; i < x.size(); ++i)
        EXPECT_EQ(y[i], x[x.size() - 1 - i]) << dtype_name(t) << " reversed";
    }
  }
}

TEST(CudaElementwise, CopyConcatIntoNhwcChannelSlices) {
  SKIP_WITHOUT_GPU();
  uint32_t seed = 7000;
  // (channels of each input): odd splits (element copies) and 16+8 (16-byte words for f32).
  for (const std::vector<int64_t>& parts :
       {std::vector<int64_t>{5, 6}, std::vector<int64_t>{16, 8}, std::vector<int64_t>{3, 1, 4}})
    for (DType t : kFloatTypes) {
      const int64_t N = 2, H = 3, W = 5;
      int64_t Ct = 0;
      for (int64_t c : parts) Ct += c;
      const size_t es = element_size(t), ny = static_cast<size_t>(N * H * W * Ct);
      DeviceBuffer yd(ny * es);
      poison(yd.get(), yd.size());
      std::vector<double> want(ny);
      std::vector<DeviceBuffer> keep;
      int64_t c0 = 0;
      for (int64_t Ci : parts) {
        const auto x = rounded(t, random_vec(static_cast<size_t>(N * H * W * Ci), -4, 4, seed++));
        for (int64_t p = 0; p < N * H * W; ++p)
          for (int64_t c = 0; c < Ci; ++c) want[p * Ct + c0 + c] = x[p * Ci + c];
        keep.push_back(upload_bytes(encode(t, x)));
        Strided d;
        d.rank = 4;
        const int64_t shp[4] = {N, H, W, Ci};
        const int64_t src[4] = {H * W * Ci, W * Ci, Ci, 1};
        const int64_t dst[4] = {H * W * Ct, W * Ct, Ct, 1};
        for (int i = 0; i < 4; ++i) {
          d.shape[i] = shp[i];
          d.src_stride[i] = src[i];
          d.dst_stride[i] = dst[i];
        }
        strided_copy(t, keep.back().get(), t, static_cast<uint8_t*>(yd.get()) + c0 * es, d,
                     nullptr);
        c0 += Ci;
      }
      expect_close(decode(t, download_bytes(yd.get(), ny * es)), want, DType::f32,
                   "concat NHWC channels " + std::to_string(parts.size()) +
                       " parts, C=" + std::to_string(Ct));
    }
}

TEST(CudaElementwise, CopyBroadcastExpand) {
  SKIP_WITHOUT_GPU();
  // [1, 3] expanded to [4, 3] (src stride 0), f32 -> f16 at the same time.
  const std::vector<double> x = {1.5, -2.25, 3.0};
  DeviceBuffer xd = upload_bytes(encode(DType::f32, x)), yd(12 * 2);
  Strided d;
  d.rank = 2;
  d.shape[0] = 4;
  d.shape[1] = 3;
  d.src_stride[0] = 0;
  d.src_stride[1] = 1;
  d.dst_stride[0] = 3;
  d.dst_stride[1] = 1;
  poison(yd.get(), yd.size());
  strided_copy(DType::f32, xd.get(), DType::f16, yd.get(), d, nullptr);
  const auto y = decode(DType::f16, download_bytes(yd.get(), 24));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(y[i], x[i % 3]);
}

std::vector<uint16_t> cast_f32_to_16(const std::vector<float>& x, DType to) {
  DeviceBuffer xd = upload_vec(x), yd(x.size() * 2);
  poison(yd.get(), yd.size());
  Strided d;
  d.rank = 1;
  d.shape[0] = static_cast<int64_t>(x.size());
  d.src_stride[0] = d.dst_stride[0] = 1;
  strided_copy(DType::f32, xd.get(), to, yd.get(), d, nullptr);
  return download_vec<uint16_t>(yd.get(), x.size());
}

TEST(CudaElementwise, CastF32ToF16RoundsToNearestEven) {
  SKIP_WITHOUT_GPU();
  const float e10 = std::ldexp(1.f, -10), e11 = std::ldexp(1.f, -11);
  // value -> IEEE binary16 bits, worked out by hand.
  const std::vector<std::pair<float, uint16_t>> cases = {
      {1.f, 0x3C00},
      {1.f + e10, 0x3C01},                         // exact
      {1.f + e11, 0x3C00},                         // halfway 1 | 1+2^-10: to even (1)
      {1.f + 3 * e11, 0x3C02},                     // halfway 1+2^-10 | 1+2^-9: to even
      {1.f + e11 + std::ldexp(1.f, -20), 0x3C01},  // just above halfway: up
      {-1.5f, 0xBE00},
      {0.f, 0x0000},
      {-0.f, 0x8000},
      {65504.f, 0x7BFF},                   // largest finite
      {65519.f, 0x7BFF},                   // below halfway to 65536: stays finite
      {65520.f, 0x7C00},                   // halfway to 2^16: to even -> infinity
      {std::ldexp(1.f, -24), 0x0001},      // smallest subnormal
      {std::ldexp(1.f, -25), 0x0000},      // halfway 0 | 2^-24: to even (0)
      {3 * std::ldexp(1.f, -25), 0x0002},  // halfway 2^-24 | 2^-23: to even
      {std::ldexp(1.f, -14), 0x0400},      // smallest normal
      {std::numeric_limits<float>::infinity(), 0x7C00},
      {1000.25f, 0x63D0},  // 1000.25: halfway 1000 | 1000.5 (spacing 0.5): to even 1000
      {1000.75f, 0x63D2},  // halfway 1000.5 | 1001: to even 1001 (0x63D2)
  };
  std::vector<float> x;
  for (const auto& c : cases) x.push_back(c.first);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  const auto h = cast_f32_to_16(x, DType::f16);
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(h[i], cases[i].second) << "f32 " << cases[i].first << " -> f16";
  EXPECT_TRUE((h.back() & 0x7C00) == 0x7C00 && (h.back() & 0x03FF) != 0) << "NaN -> f16 NaN";
  // Random values against the host's round-to-nearest-even, then back to f32 exactly.
  std::vector<float> r;
  for (double v : random_vec(5003, -70000, 70000, 8000)) r.push_back(static_cast<float>(v));
  for (double v : random_vec(2001, -1e-4, 1e-4, 8001)) r.push_back(static_cast<float>(v));
  const auto hr = cast_f32_to_16(r, DType::f16);
  int bad = 0;
  for (size_t i = 0; i < r.size(); ++i) bad += hr[i] != float_to_half(r[i]);
  EXPECT_EQ(bad, 0) << "f32 -> f16 differs from round-to-nearest-even";
  DeviceBuffer hd = upload_vec(hr), fd(hr.size() * 4);
  poison(fd.get(), fd.size());
  Strided d;
  d.rank = 1;
  d.shape[0] = static_cast<int64_t>(hr.size());
  d.src_stride[0] = d.dst_stride[0] = 1;
  strided_copy(DType::f16, hd.get(), DType::f32, fd.get(), d, nullptr);
  const auto back = download_vec<float>(fd.get(), hr.size());
  bad = 0;
  for (size_t i = 0; i < hr.size(); ++i) bad += !(back[i] == half_to_float(hr[i]));
  EXPECT_EQ(bad, 0) << "f16 -> f32 not exact";
}

TEST(CudaElementwise, CastF32ToBf16RoundsToNearestEven) {
  SKIP_WITHOUT_GPU();
  const float e7 = std::ldexp(1.f, -7), e8 = std::ldexp(1.f, -8);
  const std::vector<std::pair<float, uint16_t>> cases = {
      {1.f, 0x3F80},          {1.f + e7, 0x3F81},  // exact
      {1.f + e8, 0x3F80},                          // halfway: to even
      {1.f + 3 * e8, 0x3F82},                      // halfway: to even
      {-2.f, 0xC000},         {0.f, 0x0000},      {std::numeric_limits<float>::infinity(), 0x7F80},
  };
  std::vector<float> x;
  for (const auto& c : cases) x.push_back(c.first);
  const auto h = cast_f32_to_16(x, DType::bf16);
  for (size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(h[i], cases[i].second) << "f32 " << cases[i].first << " -> bf16";
  std::vector<float> r;
  for (double v : random_vec(4001, -1e6, 1e6, 8100)) r.push_back(static_cast<float>(v));
  const auto hr = cast_f32_to_16(r, DType::bf16);
  int bad = 0;
  for (size_t i = 0; i < r.size(); ++i) bad += hr[i] != float_to_bf16(r[i]);
  EXPECT_EQ(bad, 0) << "f32 -> bf16 differs from round-to-nearest-even";
}

// One contiguous cast of x (dtype from) to dtype to; returns the decoded result.
std::vector<double> cast_1d(DType from, const std::vector<uint8_t>& x, DType to) {
  const size_t n = x.size() / element_size(from);
  DeviceBuffer xd = upload_bytes(x), yd(n * element_size(to));
  poison(yd.get(), yd.size());
  Strided d;
  d.rank = 1;
  d.shape[0] = static_cast<int64_t>(n);
  d.src_stride[0] = d.dst_stride[0] = 1;
  strided_copy(from, xd.get(), to, yd.get(), d, nullptr);
  return decode(to, download_bytes(yd.get(), n * element_size(to)));
}

TEST(CudaElementwise, CastIntegersBoolsAndFloats) {
  SKIP_WITHOUT_GPU();
  {  // i64 -> f32: (float)(double)v, as the reference Cast
    const std::vector<int64_t> v = {0,
                                    1,
                                    -7,
                                    123456789,
                                    (int64_t{1} << 40) + 1,
                                    -(int64_t{1} << 53) - 1,
                                    std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min()};
    std::vector<uint8_t> b(v.size() * 8);
    std::memcpy(b.data(), v.data(), b.size());
    const auto y = cast_1d(DType::i64, b, DType::f32);
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(y[i], static_cast<float>(static_cast<double>(v[i]))) << "i64 " << v[i] << " -> f32";
    const auto h = cast_1d(DType::i64, b, DType::f16);  // 2^40+1 etc. overflow f16: inf
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(h[i], half_to_float(float_to_half(static_cast<float>(static_cast<double>(v[i])))))
          << "i64 " << v[i] << " -> f16";
  }
  {  // f32 -> integers: truncation toward zero, saturation, NaN -> 0; -> bool: != 0
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> f = {3.9f, -3.9f, 0.f, 300.f, -300.f, 3e9f, -3e9f, 1e20f, nan, 0.5f};
    std::vector<uint8_t> b(f.size() * 4);
    std::memcpy(b.data(), f.data(), b.size());
    const std::vector<double> i32 = {3, -3, 0, 300, -300, 2147483647.0, -2147483648.0, 2147483647.0,
                                     0, 0};
    const std::vector<double> i64 = {3, -3, 0, 300, -300, 3e9, -3e9, 9223372036854775807.0, 0, 0};
    const std::vector<double> u8 = {3, 0, 0, 255, 0, 255, 0, 255, 0, 0};
    const std::vector<double> i8 = {3, -3, 0, 127, -128, 127, -128, 127, 0, 0};
    const std::vector<double> bo = {1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_EQ(cast_1d(DType::f32, b, DType::i32), i32);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::i64), i64);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::u8), u8);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::i8), i8);
    EXPECT_EQ(cast_1d(DType::f32, b, DType::boolean), bo);
  }
  {  // integer -> integer wraps; -> bool is != 0; bool / u8 sources are 0/1 and 0..255
    const std::vector<int64_t> v = {0, 1, -1, 255, 256, 300, -129, (int64_t{1} << 33) + 5};
    std::vector<uint8_t> b(v.size() * 8);
    std::memcpy(b.data(), v.data(), b.size());
    EXPECT_EQ(cast_1d(DType::i64, b, DType::i32),
              (std::vector<double>{0, 1, -1, 255, 256, 300, -129, 5}));
    EXPECT_EQ(cast_1d(DType::i64, b, DType::u8),
              (std::vector<double>{0, 1, 255, 255, 0, 44, 127, 5}));
    EXPECT_EQ(cast_1d(DType::i64, b, DType::i8),
              (std::vector<double>{0, 1, -1, -1, 0, 44, 127, 5}));
    EXPECT_EQ(cast_1d(DType::i64, b, DType::boolean),
              (std::vector<double>{0, 1, 1, 1, 1, 1, 1, 1}));
    const std::vector<uint8_t> bools = {0, 1, 1, 0, 2};  // a stored 2 still reads as true
    EXPECT_EQ(cast_1d(DType::boolean, bools, DType::f32), (std::vector<double>{0, 1, 1, 0, 1}));
    EXPECT_EQ(cast_1d(DType::boolean, bools, DType::i64), (std::vector<double>{0, 1, 1, 0, 1}));
    const std::vector<uint8_t> u8 = {0, 7, 200, 255};
    EXPECT_EQ(cast_1d(DType::u8, u8, DType::f16), (std::vector<double>{0, 7, 200, 255}));
    EXPECT_EQ(cast_1d(DType::u8, u8, DType::i32), (std::vector<double>{0, 7, 200, 255}));
    const std::vector<int8_t> s8 = {0, -7, 100, -128};
    std::vector<uint8_t> sb(s8.size());
    std::memcpy(sb.data(), s8.data(), sb.size());
    EXPECT_EQ(cast_1d(DType::i8, sb, DType::bf16), (std::vector<double>{0, -7, 100, -128}));
    const std::vector<int32_t> i32 = {-5, 16777217, 2147483647};
    std::vector<uint8_t> ib(i32.size() * 4);
    std::memcpy(ib.data(), i32.data(), ib.size());
    const auto f = cast_1d(DType::i32, ib, DType::f32);
    for (size_t i = 0; i < i32.size(); ++i) EXPECT_EQ(f[i], static_cast<float>(i32[i]));
  }
  {  // f16 -> bf16 and bf16 -> f32
    const std::vector<double> v = rounded(DType::f16, random_vec(257, -100, 100, 8200));
    const auto bf = cast_1d(DType::f16, encode(DType::f16, v), DType::bf16);
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(bf[i], bf16_to_float(float_to_bf16(static_cast<float>(v[i]))));
    const auto back = cast_1d(DType::bf16, encode(DType::bf16, bf), DType::f32);
    EXPECT_EQ(back, bf);
  }
}

// ---- fill -----------------------------------------------------------------------------------

TEST(CudaElementwise, Fill) {
  SKIP_WITHOUT_GPU();
  struct C {
    DType t;
    float v;
    double want;
  };
  const C cases[] = {{DType::f32, 1.5f, 1.5},   {DType::f16, -2.75f, -2.75},
                     {DType::bf16, 3.0f, 3.0},  {DType::f16, 1.f + std::ldexp(1.f, -11), 1.0},
                     {DType::i64, -3.7f, -3},   {DType::i32, 5e9f, 2147483647.0},
                     {DType::u8, 300.f, 255},   {DType::i8, -7.f, -7},
                     {DType::boolean, 0.5f, 1}, {DType::boolean, 0.f, 0}};
  for (const C& c : cases)
    for (size_t n : {size_t{1}, size_t{7}, size_t{1001}, size_t{100003}})
      for (size_t off : {size_t{0}, size_t{1}}) {
        const size_t es = element_size(c.t);
        DeviceBuffer yd((n + off) * es);
        poison(yd.get(), yd.size());
        void* yp = static_cast<uint8_t*>(yd.get()) + off * es;
        fill(c.t, yp, static_cast<int64_t>(n), c.v, nullptr);
        const auto y = decode(c.t, download_bytes(yp, n * es));
        int bad = 0;
        for (double v : y) bad += v != c.want;
        EXPECT_EQ(bad, 0) << dtype_name(c.t) << " fill " << c.v << " n=" << n << " off=" << off;
        if (off) {  // the element before stays poisoned
          const auto before = download_bytes(yd.get(), es);
          for (uint8_t byte : before) EXPECT_EQ(byte, 0xFF);
        }
      }
}

// ---- throughput report (no assertion: prints effective GB/s for the lead's GPU run) ------

TEST(CudaElementwise, ThroughputReport) {
  SKIP_WITHOUT_GPU();
  const int64_t P = 64 * 56 * 56;  // ResNet-50 stage 1 at batch 64
  DeviceBuffer a(static_cast<size_t>(P) * 256 * 4), b(static_cast<size_t>(P) * 256 * 4),
      y(static_cast<size_t>(P) * 256 * 4), sc(256 * 4), sh(256 * 4);
  ANVIL_CUDA_CHECK(cudaMemset(a.get(), 0, a.size()));
  ANVIL_CUDA_CHECK(cudaMemset(b.get(), 0, b.size()));
  ANVIL_CUDA_CHECK(cudaMemset(sc.get(), 0, sc.size()));
  ANVIL_CUDA_CHECK(cudaMemset(sh.get(), 0, sh.size()));
  cudaEvent_t e0, e1;
  ANVIL_CUDA_CHECK(cudaEventCreate(&e0));
  ANVIL_CUDA_CHECK(cudaEventCreate(&e1));
  auto time = [&](const char* what, double bytes, const std::function<void()>& f) {
    f();  // warm-up
    ANVIL_CUDA_CHECK(cudaDeviceSynchronize());
    const int iters = 20;
    ANVIL_CUDA_CHECK(cudaEventRecord(e0));
    for (int i = 0; i < iters; ++i) f();
    ANVIL_CUDA_CHECK(cudaEventRecord(e1));
    ANVIL_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0;
    ANVIL_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    ms /= iters;
    std::printf("[ throughput ] %-58s %8.3f ms  %7.1f GB/s\n", what, ms, bytes / (ms * 1e6));
  };
  const double n = static_cast<double>(P) * 256;
  time("binary Add+Relu f16 same shape [64,56,56,256]", 3 * 2 * n, [&] {
    binary(Binary::Add, DType::f16, a.get(), b.get(), y.get(), make_broadcast({P, 256}, {P, 256}),
           Unary::Relu, 0, 0, nullptr);
  });
  time("binary Add f32 NHWC per-channel [64,56,56,64]+[64]", 2 * 4 * n / 4, [&] {
    binary(Binary::Add, DType::f32, a.get(), b.get(), y.get(), make_broadcast({P, 64}, {1, 64}),
           Unary::Identity, 0, 0, nullptr);
  });
  time("binary Mul f16 NCHW per-channel [64,256,7,7]*[256,1,1]", 2 * 2 * (64.0 * 256 * 49), [&] {
    binary(Binary::Mul, DType::f16, a.get(), b.get(), y.get(),
           make_broadcast({64, 256, 7, 7}, {1, 256, 1, 1}), Unary::Identity, 0, 0, nullptr);
  });
  time("channel_affine+Relu f16 NHWC [64*56*56, 256]", 2 * 2 * n, [&] {
    channel_affine(DType::f16, a.get(), y.get(), static_cast<const float*>(sc.get()),
                   static_cast<const float*>(sh.get()), P, 256, 1, Unary::Relu, 0, 0, nullptr);
  });
  time("channel_affine+Relu f32 NCHW [64, 64, 56*56]", 2 * 4 * n / 4, [&] {
    channel_affine(DType::f32, a.get(), y.get(), static_cast<const float*>(sc.get()),
                   static_cast<const float*>(sh.get()), 64, 64, 56 * 56, Unary::Relu, 0, 0,
                   nullptr);
  });
  time("unary Relu f16 [64,56,56,256]", 2 * 2 * n, [&] {
    unary(Unary::Relu, 0, 0, DType::f16, a.get(), y.get(), static_cast<int64_t>(n), nullptr);
  });
  time("unary Sigmoid f32 [64,56,56,64]", 2 * 4 * n / 4, [&] {
    unary(Unary::Sigmoid, 0, 0, DType::f32, a.get(), y.get(), static_cast<int64_t>(n / 4), nullptr);
  });
  auto permute = [&](DType t, const Shape& xs, const std::vector<int>& perm) {
    const auto xst = contiguous_strides(xs);
    Shape ys(xs.size());
    for (size_t k = 0; k < xs.size(); ++k) ys[k] = xs[perm[k]];
    const auto yst = contiguous_strides(ys);
    Strided d;
    d.rank = static_cast<int>(xs.size());
    for (int k = 0; k < d.rank; ++k) {
      d.shape[k] = ys[k];
      d.src_stride[k] = xst[perm[k]];
      d.dst_stride[k] = yst[k];
    }
    strided_copy(t, a.get(), t, y.get(), d, nullptr);
  };
  time("strided_copy NCHW->NHWC f32 [64,3,224,224]", 2 * 4 * (64.0 * 3 * 224 * 224), [&] {
    permute(DType::f32, {64, 3, 224, 224}, {0, 2, 3, 1});
  });
  time("strided_copy NCHW->NHWC f16 [64,256,14,14] (tiled)", 2 * 2 * (64.0 * 256 * 196), [&] {
    permute(DType::f16, {64, 256, 14, 14}, {0, 2, 3, 1});
  });
  time("strided_copy NHWC->NCHW f32 [64,7,7,2048] (tiled)", 2 * 4 * (64.0 * 49 * 2048), [&] {
    permute(DType::f32, {64, 7, 7, 2048}, {0, 3, 1, 2});
  });
  time("strided_copy concat slice f16 [64,28,28,128] into C=512", 2 * 2 * (64.0 * 784 * 128), [&] {
    Strided d;
    d.rank = 2;
    d.shape[0] = 64 * 784;
    d.shape[1] = 128;
    d.src_stride[0] = 128;
    d.src_stride[1] = 1;
    d.dst_stride[0] = 512;
    d.dst_stride[1] = 1;
    strided_copy(DType::f16, a.get(), DType::f16, static_cast<uint8_t*>(y.get()) + 128 * 2, d,
                 nullptr);
  });
  time("strided_copy cast f32->f16 [64,56,56,64]", (4 + 2) * n / 4, [&] {
    Strided d;
    d.rank = 1;
    d.shape[0] = static_cast<int64_t>(n / 4);
    d.src_stride[0] = d.dst_stride[0] = 1;
    strided_copy(DType::f32, a.get(), DType::f16, y.get(), d, nullptr);
  });
  time("fill f32 [64,56,56,256]", 4 * n,
       [&] { fill(DType::f32, y.get(), static_cast<int64_t>(n), 0.5f, nullptr); });
  ANVIL_CUDA_CHECK(cudaEventDestroy(e0));
  ANVIL_CUDA_CHECK(cudaEventDestroy(e1));
}

}  // namespace
}  // namespace anvil::cuda
