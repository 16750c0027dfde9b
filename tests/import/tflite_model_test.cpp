// TFLite models built in the test with the flatbuffers builder API and our generated schema:
//  - a float32 CNN (CONV_2D SAME stride 2 + fused RELU, AVERAGE_POOL_2D SAME, MAX_POOL_2D VALID,
//    DEPTHWISE_CONV_2D multiplier 2 + RELU6, ADD of a per-channel constant, MEAN over H, W,
//    RESHAPE, FULLY_CONNECTED, SOFTMAX) checked against plain NHWC loops written here from TF's
//    definitions (not through Anvil), outputs and intermediate tensors by TFLite name;
//  - malformed files: truncated, corrupt offsets, indices out of range, hostile sizes, buffer
//    size mismatches, unsupported operators (all listed at once): each an anvil::Error naming
//    the operator or tensor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/session.h"
#include "import/tflite/tflite_schema_generated.h"

namespace {

namespace fb = anvil_tflite;
using i128_t = __int128;
using anvil::Shape;
using anvil::Tensor;

// ---- a small model builder ----------------------------------------------------------------

struct ModelBuilder {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers;
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  std::vector<flatbuffers::Offset<fb::Operator>> ops;
  std::vector<flatbuffers::Offset<fb::OperatorCode>> codes;
  std::map<int, int> code_index;

  ModelBuilder() { buffers.push_back(fb::CreateBuffer(b)); }  // buffer 0: the empty sentinel

  int buffer(const void* data, size_t n) {
    b.ForceVectorAlignment(n, 1, 16);
    auto v = b.CreateVector(static_cast<const uint8_t*>(data), n);
    buffers.push_back(fb::CreateBuffer(b, v));
    return static_cast<int>(buffers.size()) - 1;
  }
  int tensor(const std::string& name, std::vector<int32_t> shape,
             fb::TensorType type = fb::TensorType_FLOAT32, int buf = 0) {
    tensors.push_back(
        fb::CreateTensorDirect(b, &shape, type, static_cast<uint32_t>(buf), name.c_str()));
    return static_cast<int>(tensors.size()) - 1;
  }
  int ftensor(const std::string& name, std::vector<int32_t> shape, const std::vector<float>& v) {
    return tensor(name, std::move(shape), fb::TensorType_FLOAT32, buffer(v.data(), v.size() * 4));
  }
  int itensor(const std::string& name, std::vector<int32_t> shape, const std::vector<int32_t>& v) {
    return tensor(name, std::move(shape), fb::TensorType_INT32, buffer(v.data(), v.size() * 4));
  }
  int qtensor(const std::string& name, std::vector<int32_t> shape, fb::TensorType type, int buf,
              std::vector<float> scale, std::vector<int64_t> zp, int dim = 0) {
    auto qp = fb::CreateQuantizationParametersDirect(b, nullptr, nullptr, &scale, &zp,
                                                     fb::QuantizationDetails_NONE, 0, dim);
    tensors.push_back(
        fb::CreateTensorDirect(b, &shape, type, static_cast<uint32_t>(buf), name.c_str(), qp));
    return static_cast<int>(tensors.size()) - 1;
  }
  int opcode(int code) {
    auto it = code_index.find(code);
    if (it != code_index.end()) return it->second;
    codes.push_back(fb::CreateOperatorCode(b, static_cast<int8_t>(std::min(code, 127)), 0, 1,
                                           static_cast<fb::BuiltinOperator>(code)));
    return code_index[code] = static_cast<int>(codes.size()) - 1;
  }
  void op(int code, std::vector<int32_t> in, std::vector<int32_t> out,
          fb::BuiltinOptions type = fb::BuiltinOptions_NONE, flatbuffers::Offset<void> opts = 0,
          int opcode_override = -1) {
    const int oc = opcode_override >= 0 ? opcode_override : opcode(code);
    ops.push_back(fb::CreateOperatorDirect(b, static_cast<uint32_t>(oc), &in, &out, type, opts));
  }
  std::vector<uint8_t> finish(std::vector<int32_t> in, std::vector<int32_t> out,
                              uint32_t version = 3) {
    std::vector<flatbuffers::Offset<fb::SubGraph>> sgs = {
        fb::CreateSubGraphDirect(b, &tensors, &in, &out, &ops, "main")};
    auto m = fb::CreateModelDirect(b, version, &codes, &sgs, "anvil test", &buffers);
    fb::FinishModelBuffer(b, m);
    return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  }
};

std::string write_model(const std::string& name, const std::vector<uint8_t>& bytes) {
  std::string path = ::testing::TempDir() + "/anvil_tflite_" + name + ".tflite";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<float> ramp(size_t n, float a, float b) {  // deterministic values
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = a * std::sin(0.37f * static_cast<float>(i) + b);
  return v;
}

// ---- independent NHWC reference math (TF definitions) --------------------------------------

struct NHWC {
  int n, h, w, c;
  std::vector<double> v;
  double at(int a, int y, int x, int ch) const {
    return v[static_cast<size_t>(((a * h + y) * w + x) * c + ch)];
  }
  double& at(int a, int y, int x, int ch) {
    return v[static_cast<size_t>(((a * h + y) * w + x) * c + ch)];
  }
};
NHWC make(int n, int h, int w, int c) {
  return NHWC{n, h, w, c, std::vector<double>(static_cast<size_t>(n * h * w * c), 0.0)};
}

// TF SAME: out = ceil(in / s), pad_before = floor(total / 2)
int same_out(int in, int s) { return (in + s - 1) / s; }
int same_before(int in, int k, int s) {
  return std::max((same_out(in, s) - 1) * s + k - in, 0) / 2;
}

NHWC conv_ref(const NHWC& x, const std::vector<float>& w_ohwi, const std::vector<float>& bias,
              int O, int K, int s, bool same) {
  const int oh = same ? same_out(x.h, s) : (x.h - K) / s + 1,
            ow = same ? same_out(x.w, s) : (x.w - K) / s + 1;
  const int pt = same ? same_before(x.h, K, s) : 0, pl = same ? same_before(x.w, K, s) : 0;
  NHWC y = make(x.n, oh, ow, O);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      for (int o = 0; o < O; ++o) {
        double acc = bias[static_cast<size_t>(o)];
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            const int iy = oy * s - pt + ky, ix = ox * s - pl + kx;
            if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
            for (int ci = 0; ci < x.c; ++ci)
              acc += w_ohwi[static_cast<size_t>(((o * K + ky) * K + kx) * x.c + ci)] *
                     x.at(0, iy, ix, ci);
          }
        y.at(0, oy, ox, o) = acc;
      }
  return y;
}

NHWC dwconv_ref(const NHWC& x, const std::vector<float>& w_1hwo, const std::vector<float>& bias,
                int mult, int K) {
  const int O = x.c * mult;
  const int pt = same_before(x.h, K, 1), pl = same_before(x.w, K, 1);
  NHWC y = make(x.n, x.h, x.w, O);
  for (int oy = 0; oy < x.h; ++oy)
    for (int ox = 0; ox < x.w; ++ox)
      for (int ci = 0; ci < x.c; ++ci)
        for (int m = 0; m < mult; ++m) {
          const int o = ci * mult + m;
          double acc = bias[static_cast<size_t>(o)];
          for (int ky = 0; ky < K; ++ky)
            for (int kx = 0; kx < K; ++kx) {
              const int iy = oy - pt + ky, ix = ox - pl + kx;
              if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;
              acc += w_1hwo[static_cast<size_t>((ky * K + kx) * O + o)] * x.at(0, iy, ix, ci);
            }
          y.at(0, oy, ox, o) = acc;
        }
  return y;
}

NHWC pool_ref(const NHWC& x, int K, int s, bool same, bool max) {
  const int oh = same ? same_out(x.h, s) : (x.h - K) / s + 1,
            ow = same ? same_out(x.w, s) : (x.w - K) / s + 1;
  const int pt = same ? same_before(x.h, K, s) : 0, pl = same ? same_before(x.w, K, s) : 0;
  NHWC y = make(x.n, oh, ow, x.c);
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      for (int ch = 0; ch < x.c; ++ch) {
        double acc = max ? -1e300 : 0;
        int count = 0;
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            const int iy = oy * s - pt + ky, ix = ox * s - pl + kx;
            if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w) continue;  // TF: padding is not counted
            acc = max ? std::max(acc, x.at(0, iy, ix, ch)) : acc + x.at(0, iy, ix, ch);
            ++count;
          }
        y.at(0, oy, ox, ch) = max ? acc : acc / count;
      }
  return y;
}

void expect_close(const Tensor& got, const std::vector<double>& want, const Shape& shape,
                  const std::string& what) {
  ASSERT_EQ(got.dtype(), anvil::DType::f32) << what;
  ASSERT_EQ(got.shape(), shape) << what;
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got.data<float>()[i], want[i], 1e-4 + 1e-4 * std::fabs(want[i]))
        << what << " element " << i;
}

TEST(TfliteFloatModel, CnnMatchesIndependentMath) {
  ModelBuilder mb;
  const auto wconv = ramp(4 * 3 * 3 * 2, 0.5f, 0.1f), bconv = ramp(4, 0.2f, 1.0f);
  const auto wdw = ramp(3 * 3 * 8, 0.6f, 0.7f), bdw = ramp(8, 0.1f, 2.0f);
  const auto chan = ramp(8, 0.3f, 0.4f);
  const auto wfc = ramp(5 * 32, 0.4f, 0.3f), bfc = ramp(5, 0.05f, 0.9f);
  const auto xin = ramp(6 * 6 * 2, 1.0f, 0.0f);
  const int t_in = mb.tensor("input", {1, 6, 6, 2});
  const int t_wc = mb.ftensor("conv/kernel", {4, 3, 3, 2}, wconv),
            t_bc = mb.ftensor("conv/bias", {4}, bconv);
  const int t_conv = mb.tensor("conv", {1, 3, 3, 4});
  const int t_avg = mb.tensor("avg", {1, 3, 3, 4});
  const int t_max = mb.tensor("max", {1, 2, 2, 4});
  const int t_wd = mb.ftensor("dw/kernel", {1, 3, 3, 8}, wdw),
            t_bd = mb.ftensor("dw/bias", {8}, bdw);
  const int t_dw = mb.tensor("dw", {1, 2, 2, 8});
  const int t_ch = mb.ftensor("chan", {8}, chan);
  const int t_dwb = mb.tensor("dw_plus", {1, 2, 2, 8});
  const int t_axes = mb.itensor("axes", {2}, {1, 2});
  const int t_gap = mb.tensor("gap", {1, 1, 1, 4});
  const int t_shape = mb.itensor("flat/shape", {2}, {1, -1});
  const int t_flat = mb.tensor("flat", {1, 32});
  const int t_wf = mb.ftensor("fc/kernel", {5, 32}, wfc), t_bf = mb.ftensor("fc/bias", {5}, bfc);
  const int t_fc = mb.tensor("fc", {1, 5});
  const int t_prob = mb.tensor("prob", {1, 5});
  auto& b = mb.b;
  mb.op(
      fb::BuiltinOperator_CONV_2D, {t_in, t_wc, t_bc}, {t_conv}, fb::BuiltinOptions_Conv2DOptions,
      fb::CreateConv2DOptions(b, fb::Padding_SAME, 2, 2, fb::ActivationFunctionType_RELU).Union());
  mb.op(fb::BuiltinOperator_AVERAGE_POOL_2D, {t_conv}, {t_avg}, fb::BuiltinOptions_Pool2DOptions,
        fb::CreatePool2DOptions(b, fb::Padding_SAME, 1, 1, 2, 2).Union());
  mb.op(fb::BuiltinOperator_MAX_POOL_2D, {t_avg}, {t_max}, fb::BuiltinOptions_Pool2DOptions,
        fb::CreatePool2DOptions(b, fb::Padding_VALID, 1, 1, 2, 2).Union());
  mb.op(fb::BuiltinOperator_DEPTHWISE_CONV_2D, {t_max, t_wd, t_bd}, {t_dw},
        fb::BuiltinOptions_DepthwiseConv2DOptions,
        fb::CreateDepthwiseConv2DOptions(b, fb::Padding_SAME, 1, 1, 2,
                                         fb::ActivationFunctionType_RELU6)
            .Union());
  mb.op(fb::BuiltinOperator_ADD, {t_dw, t_ch}, {t_dwb}, fb::BuiltinOptions_AddOptions,
        fb::CreateAddOptions(b).Union());
  mb.op(fb::BuiltinOperator_MEAN, {t_max, t_axes}, {t_gap}, fb::BuiltinOptions_ReducerOptions,
        fb::CreateReducerOptions(b, true).Union());
  mb.op(fb::BuiltinOperator_RESHAPE, {t_dwb, t_shape}, {t_flat});
  mb.op(fb::BuiltinOperator_FULLY_CONNECTED, {t_flat, t_wf, t_bf}, {t_fc},
        fb::BuiltinOptions_FullyConnectedOptions, fb::CreateFullyConnectedOptions(b).Union());
  mb.op(fb::BuiltinOperator_SOFTMAX, {t_fc}, {t_prob}, fb::BuiltinOptions_SoftmaxOptions,
        fb::CreateSoftmaxOptions(b, 1.0f).Union());
  const std::string path = write_model("float_cnn", mb.finish({t_in}, {t_prob, t_gap}));

  // independent math
  NHWC x = make(1, 6, 6, 2);
  for (size_t i = 0; i < xin.size(); ++i) x.v[i] = xin[i];
  NHWC conv = conv_ref(x, wconv, bconv, 4, 3, 2, true);
  for (double& v : conv.v) v = std::max(v, 0.0);
  NHWC avg = pool_ref(conv, 2, 1, true, false);
  NHWC mx = pool_ref(avg, 2, 1, false, true);
  NHWC dw = dwconv_ref(mx, wdw, bdw, 2, 3);
  for (double& v : dw.v) v = std::min(std::max(v, 0.0), 6.0);
  NHWC dwb = dw;
  for (size_t i = 0; i < dwb.v.size(); ++i) dwb.v[i] += chan[i % 8];
  std::vector<double> gap(4, 0.0);
  for (int y = 0; y < 2; ++y)
    for (int xx = 0; xx < 2; ++xx)
      for (int ch = 0; ch < 4; ++ch) gap[static_cast<size_t>(ch)] += mx.at(0, y, xx, ch) / 4.0;
  std::vector<double> fc(5), prob(5);
  double mxv = -1e300, sum = 0;
  for (int o = 0; o < 5; ++o) {
    double acc = bfc[static_cast<size_t>(o)];
    for (int k = 0; k < 32; ++k)
      acc += wfc[static_cast<size_t>(o * 32 + k)] * dwb.v[static_cast<size_t>(k)];
    fc[static_cast<size_t>(o)] = acc;
    mxv = std::max(mxv, acc);
  }
  for (int o = 0; o < 5; ++o) sum += std::exp(fc[static_cast<size_t>(o)] - mxv);
  for (int o = 0; o < 5; ++o)
    prob[static_cast<size_t>(o)] = std::exp(fc[static_cast<size_t>(o)] - mxv) / sum;

  anvil::Graph g = anvil::import_model({path});
  EXPECT_EQ(g.framework, "tflite");
  anvil::SessionOptions so;
  so.taps = {"conv", "avg", "max", "dw", "dw_plus", "fc"};
  anvil::Session s(g, so);
  std::map<std::string, Tensor> feed = {{"input", Tensor::from_vector<float>({1, 6, 6, 2}, xin)}};
  auto outs = s.run(feed);
  ASSERT_EQ(outs.size(), 2u);
  expect_close(outs.at("prob"), prob, {1, 5}, "prob");
  expect_close(outs.at("gap"), gap, {1, 1, 1, 4}, "gap");
  auto taps = s.run(feed, so.taps);
  expect_close(taps.at("conv"), conv.v, {1, 3, 3, 4}, "conv (NHWC)");
  expect_close(taps.at("avg"), avg.v, {1, 3, 3, 4}, "avg");
  expect_close(taps.at("max"), mx.v, {1, 2, 2, 4}, "max");
  expect_close(taps.at("dw"), dw.v, {1, 2, 2, 8}, "dw");
  expect_close(taps.at("dw_plus"), dwb.v, {1, 2, 2, 8}, "dw_plus");
  expect_close(taps.at("fc"), fc, {1, 5}, "fc");
  // provenance: NHWC layout and TFLite names
  const int v = g.find_value_by_any_name("conv");
  ASSERT_GE(v, 0);
  EXPECT_EQ(g.values[static_cast<size_t>(v)].prov.framework, "tflite");
  EXPECT_EQ(g.values[static_cast<size_t>(v)].prov.source_layout, "NHWC");
}

// ---- an int8 model against an independent emulation of TFLite's int8 reference kernels -----

i128_t floor_div(i128_t a, i128_t b) {
  i128_t r = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --r;
  return r;
}
// MultiplyByQuantizedMultiplier from its definition: floor(x*2^ls*m/2^31 + 1/2), then divide by
// 2^rs rounding half away from zero
int32_t mbqm(int64_t x, int32_t m, int shift) {
  const int ls = shift > 0 ? shift : 0, rs = shift > 0 ? 0 : -shift;
  const i128_t hi = floor_div(2 * static_cast<i128_t>(x) * (static_cast<i128_t>(1) << ls) * m +
                                  (static_cast<i128_t>(1) << 31),
                              static_cast<i128_t>(1) << 32);
  if (rs == 0) return static_cast<int32_t>(hi);
  const i128_t a = hi < 0 ? -hi : hi;
  const i128_t r =
      floor_div(a + (static_cast<i128_t>(1) << (rs - 1)), static_cast<i128_t>(1) << rs);
  return static_cast<int32_t>(hi < 0 ? -r : r);
}
// real = m * 2^(shift - 31), m in [2^30, 2^31)
std::pair<int32_t, int> quant_mult(double real) {
  int e = 0;
  const double q = std::frexp(real, &e);
  int64_t m = static_cast<int64_t>(std::round(q * 2147483648.0));
  if (m == (int64_t{1} << 31)) m /= 2, ++e;
  return {static_cast<int32_t>(m), e};
}
int32_t clampi(int64_t v, int64_t lo, int64_t hi) {
  return static_cast<int32_t>(std::min(hi, std::max(lo, v)));
}

std::vector<int8_t> ramp_i8(size_t n, int seed) {
  std::vector<int8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<int8_t>(static_cast<int>((i * 37 + static_cast<size_t>(seed) * 11) % 255) -
                               127);
  return v;
}

TEST(TfliteInt8Model, MatchesIntegerEmulation) {
  ModelBuilder mb;
  const float sx = 0.02f, sc = 0.05f, sd = 0.04f, sa = 0.06f, sf = 0.1f, swf = 0.01f;
  const int64_t zx = 3, zc = -20, zd = -128, za = 5, zf = 2;
  const std::vector<float> swc = {0.01f, 0.02f, 0.015f, 0.03f}, swd = {0.02f, 0.01f, 0.03f, 0.025f};
  const auto wc = ramp_i8(4 * 3 * 3 * 3, 1), wd = ramp_i8(3 * 3 * 4, 2), wf = ramp_i8(3 * 16, 3);
  const std::vector<int32_t> bc = {100, -250, 37, 900}, bd = {-40, 77, 0, 300},
                             bf = {1000, -500, 20};
  const auto xin = ramp(5 * 5 * 3, 1.5f, 0.2f);
  auto i8buf = [&](const std::vector<int8_t>& v) { return mb.buffer(v.data(), v.size()); };
  auto i32buf = [&](const std::vector<int32_t>& v) { return mb.buffer(v.data(), v.size() * 4); };
  const int t_x = mb.tensor("x", {1, 5, 5, 3});
  const int t_xq = mb.qtensor("xq", {1, 5, 5, 3}, fb::TensorType_INT8, 0, {sx}, {zx});
  std::vector<float> sbc, sbd;
  for (size_t c = 0; c < 4; ++c) sbc.push_back(sx * swc[c]), sbd.push_back(sc * swd[c]);
  const int t_wc =
      mb.qtensor("conv/w", {4, 3, 3, 3}, fb::TensorType_INT8, i8buf(wc), swc, {0, 0, 0, 0}, 0);
  const int t_bc =
      mb.qtensor("conv/b", {4}, fb::TensorType_INT32, i32buf(bc), sbc, {0, 0, 0, 0}, 0);
  const int t_c = mb.qtensor("c", {1, 3, 3, 4}, fb::TensorType_INT8, 0, {sc}, {zc});
  const int t_wd =
      mb.qtensor("dw/w", {1, 3, 3, 4}, fb::TensorType_INT8, i8buf(wd), swd, {0, 0, 0, 0}, 3);
  const int t_bd = mb.qtensor("dw/b", {4}, fb::TensorType_INT32, i32buf(bd), sbd, {0, 0, 0, 0}, 0);
  const int t_d = mb.qtensor("d", {1, 3, 3, 4}, fb::TensorType_INT8, 0, {sd}, {zd});
  const int t_a = mb.qtensor("a", {1, 3, 3, 4}, fb::TensorType_INT8, 0, {sa}, {za});
  const int t_p = mb.qtensor("p", {1, 2, 2, 4}, fb::TensorType_INT8, 0, {sa}, {za});
  const int t_shape = mb.itensor("r/shape", {2}, {1, 16});
  const int t_r = mb.qtensor("r", {1, 16}, fb::TensorType_INT8, 0, {sa}, {za});
  const int t_wf = mb.qtensor("fc/w", {3, 16}, fb::TensorType_INT8, i8buf(wf), {swf}, {0});
  const int t_bf = mb.qtensor("fc/b", {3}, fb::TensorType_INT32, i32buf(bf), {sa * swf}, {0});
  const int t_f = mb.qtensor("f", {1, 3}, fb::TensorType_INT8, 0, {sf}, {zf});
  const int t_out = mb.tensor("out", {1, 3});
  auto& b = mb.b;
  mb.op(fb::BuiltinOperator_QUANTIZE, {t_x}, {t_xq});
  mb.op(
      fb::BuiltinOperator_CONV_2D, {t_xq, t_wc, t_bc}, {t_c}, fb::BuiltinOptions_Conv2DOptions,
      fb::CreateConv2DOptions(b, fb::Padding_SAME, 2, 2, fb::ActivationFunctionType_RELU).Union());
  mb.op(fb::BuiltinOperator_DEPTHWISE_CONV_2D, {t_c, t_wd, t_bd}, {t_d},
        fb::BuiltinOptions_DepthwiseConv2DOptions,
        fb::CreateDepthwiseConv2DOptions(b, fb::Padding_SAME, 1, 1, 1,
                                         fb::ActivationFunctionType_RELU6)
            .Union());
  mb.op(fb::BuiltinOperator_ADD, {t_c, t_d}, {t_a}, fb::BuiltinOptions_AddOptions,
        fb::CreateAddOptions(b).Union());
  mb.op(fb::BuiltinOperator_AVERAGE_POOL_2D, {t_a}, {t_p}, fb::BuiltinOptions_Pool2DOptions,
        fb::CreatePool2DOptions(b, fb::Padding_VALID, 1, 1, 2, 2).Union());
  mb.op(fb::BuiltinOperator_RESHAPE, {t_p, t_shape}, {t_r});
  mb.op(fb::BuiltinOperator_FULLY_CONNECTED, {t_r, t_wf, t_bf}, {t_f},
        fb::BuiltinOptions_FullyConnectedOptions, fb::CreateFullyConnectedOptions(b).Union());
  mb.op(fb::BuiltinOperator_DEQUANTIZE, {t_f}, {t_out});
  const std::string path = write_model("int8_cnn", mb.finish({t_x}, {t_out}));

  // ---- emulation (NHWC, TFLite's reference-kernel formulas) ----
  std::vector<int32_t> xq(75);
  for (size_t i = 0; i < 75; ++i)
    xq[i] = clampi(static_cast<int64_t>(std::round(xin[i] / sx)) + zx, -128, 127);
  auto q_of = [](float f, float s, int64_t z) {
    return z + static_cast<int64_t>(std::round(f / s));
  };
  // conv 3x3 stride 2 SAME on 5x5: out 3, total pad 2 -> 1 before
  std::vector<int32_t> c(36), d(36), a(36), p(16), f(3);
  for (int oy = 0; oy < 3; ++oy)
    for (int ox = 0; ox < 3; ++ox)
      for (int o = 0; o < 4; ++o) {
        int64_t acc = bc[static_cast<size_t>(o)];
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
            if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
            for (int ci = 0; ci < 3; ++ci)
              acc += int64_t{wc[static_cast<size_t>(((o * 3 + ky) * 3 + kx) * 3 + ci)]} *
                     (xq[static_cast<size_t>((iy * 5 + ix) * 3 + ci)] - zx);
          }
        auto [m, s] =
            quant_mult(static_cast<double>(sx) * static_cast<double>(swc[static_cast<size_t>(o)]) /
                       static_cast<double>(sc));
        c[static_cast<size_t>((oy * 3 + ox) * 4 + o)] =
            clampi(mbqm(acc, m, s) + zc, std::max<int64_t>(-128, zc), 127);
      }
  for (int oy = 0; oy < 3; ++oy)
    for (int ox = 0; ox < 3; ++ox)
      for (int o = 0; o < 4; ++o) {
        int64_t acc = bd[static_cast<size_t>(o)];
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = oy - 1 + ky, ix = ox - 1 + kx;
            if (iy < 0 || iy >= 3 || ix < 0 || ix >= 3) continue;
            acc += int64_t{wd[static_cast<size_t>((ky * 3 + kx) * 4 + o)]} *
                   (c[static_cast<size_t>((iy * 3 + ix) * 4 + o)] - zc);
          }
        auto [m, s] =
            quant_mult(static_cast<double>(sc) * static_cast<double>(swd[static_cast<size_t>(o)]) /
                       static_cast<double>(sd));
        d[static_cast<size_t>((oy * 3 + ox) * 4 + o)] =
            clampi(mbqm(acc, m, s) + zd, std::max<int64_t>(-128, q_of(0.f, sd, zd)),
                   std::min<int64_t>(127, q_of(6.f, sd, zd)));
      }
  {
    const double twice = 2.0 * std::max(sc, sd);
    auto [m1, s1] = quant_mult(sc / twice);
    auto [m2, s2] = quant_mult(sd / twice);
    auto [mo, so] = quant_mult(twice / (static_cast<double>(1 << 20) * sa));
    for (size_t i = 0; i < 36; ++i) {
      const int32_t v1 = mbqm((c[i] - zc) * (1 << 20), m1, s1),
                    v2 = mbqm((d[i] - zd) * (1 << 20), m2, s2);
      a[i] = clampi(mbqm(int64_t{v1} + v2, mo, so) + za, -128, 127);
    }
  }
  for (int oy = 0; oy < 2; ++oy)
    for (int ox = 0; ox < 2; ++ox)
      for (int ch = 0; ch < 4; ++ch) {
        int32_t acc = 0;
        for (int ky = 0; ky < 2; ++ky)
          for (int kx = 0; kx < 2; ++kx)
            acc += a[static_cast<size_t>(((oy + ky) * 3 + ox + kx) * 4 + ch)];
        acc = acc > 0 ? (acc + 2) / 4 : (acc - 2) / 4;
        p[static_cast<size_t>((oy * 2 + ox) * 4 + ch)] = clampi(acc, -128, 127);
      }
  {
    auto [m, s] = quant_mult(static_cast<double>(sa * swf) / static_cast<double>(sf));
    for (int o = 0; o < 3; ++o) {
      int64_t acc = bf[static_cast<size_t>(o)];
      for (int k = 0; k < 16; ++k)
        acc += int64_t{wf[static_cast<size_t>(o * 16 + k)]} * (p[static_cast<size_t>(k)] - za);
      f[static_cast<size_t>(o)] = clampi(mbqm(acc, m, s) + zf, -128, 127);
    }
  }

  anvil::SessionOptions so;
  so.taps = {"xq", "c", "d", "a", "p", "f"};
  anvil::Session sess(anvil::import_model({path}), so);
  std::map<std::string, Tensor> feed = {{"x", Tensor::from_vector<float>({1, 5, 5, 3}, xin)}};
  auto got = sess.run(feed, so.taps);
  auto check = [&](const std::string& n, const std::vector<int32_t>& want, const Shape& shape) {
    const Tensor& t = got.at(n);
    ASSERT_EQ(t.dtype(), anvil::DType::i8) << n;
    ASSERT_EQ(t.shape(), shape) << n;
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(int{t.data<int8_t>()[i]}, want[i]) << n << " element " << i;
  };
  check("xq", xq, {1, 5, 5, 3});
  check("c", c, {1, 3, 3, 4});
  check("d", d, {1, 3, 3, 4});
  check("a", a, {1, 3, 3, 4});
  check("p", p, {1, 2, 2, 4});
  check("f", f, {1, 3});
  auto outs = sess.run(feed);
  const Tensor& o = outs.at("out");
  ASSERT_EQ(o.dtype(), anvil::DType::f32);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(o.data<float>()[i], static_cast<float>(static_cast<double>(sf) * (f[i] - zf)));
  // a value that is not trivially clamped: the pipeline is not all zeros
  int distinct = 0;
  for (size_t i = 1; i < 36; ++i) distinct += a[i] != a[0];
  EXPECT_GT(distinct, 10);
}

// ---- malformed files ------------------------------------------------------------------------

/// A valid one-op float model (input -> CONV_2D 1x1 -> output), for corrupting.
std::vector<uint8_t> small_model() {
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 2, 2, 1});
  const int w = mb.ftensor("w", {1, 1, 1, 1}, {2.0f});
  const int y = mb.tensor("y", {1, 2, 2, 1});
  mb.op(fb::BuiltinOperator_CONV_2D, {x, w}, {y}, fb::BuiltinOptions_Conv2DOptions,
        fb::CreateConv2DOptions(mb.b, fb::Padding_VALID, 1, 1).Union());
  return mb.finish({x}, {y});
}

std::string import_error(const std::string& name, const std::vector<uint8_t>& bytes) {
  try {
    anvil::import_model({write_model(name, bytes)});
  } catch (const anvil::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TfliteFloat16Weights, DequantizeToFloat32) {
  // float16-quantized models store weights as FLOAT16 and DEQUANTIZE them to float32
  ModelBuilder mb;
  const std::vector<uint16_t> half{0x3C00, 0x4000, 0xB800, 0x4400};  // 1, 2, -0.5, 4
  const int x = mb.tensor("x", {1, 4});
  const int w = mb.tensor("w", {1, 4}, fb::TensorType_FLOAT16, mb.buffer(half.data(), 8));
  const int wf = mb.tensor("w_f32", {1, 4});
  const int y = mb.tensor("y", {1, 4});
  mb.op(fb::BuiltinOperator_DEQUANTIZE, {w}, {wf});
  mb.op(fb::BuiltinOperator_ADD, {x, wf}, {y}, fb::BuiltinOptions_AddOptions,
        fb::CreateAddOptions(mb.b).Union());
  anvil::Session s(anvil::import_model({write_model("f16_weights", mb.finish({x}, {y}))}));
  auto out = s.run({{"x", Tensor::from_vector<float>({1, 4}, {1, 1, 1, 1})}});
  const Tensor& t = out.at("y");
  ASSERT_EQ(t.dtype(), anvil::DType::f32);
  EXPECT_EQ(t.to_doubles(), (std::vector<double>{2, 3, 0.5, 5}));
}

TEST(TfliteMalformed, SmallModelIsValid) {
  anvil::Session s(anvil::import_model({write_model("small", small_model())}));
  auto out = s.run({{"x", Tensor::from_vector<float>({1, 2, 2, 1}, {1, 2, 3, 4})}});
  EXPECT_EQ(out.at("y").data<float>()[3], 8.0f);
}

TEST(TfliteMalformed, TruncatedFiles) {
  const auto good = small_model();
  for (size_t n : {size_t{0}, size_t{4}, size_t{7}, size_t{12}, good.size() / 3, good.size() / 2,
                   good.size() - 9}) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string e = import_error("truncated", cut);
    EXPECT_NE(e, "(no error)") << n;
  }
}

TEST(TfliteMalformed, CorruptOffsets) {
  auto bytes = small_model();
  // the root table offset points past the end
  auto bad = bytes;
  const uint32_t huge = 0x7FFFFFF0u;
  std::memcpy(bad.data(), &huge, 4);
  EXPECT_NE(import_error("root", bad).find("verifier"), std::string::npos);
  // flip every 4-byte word in turn into a large value: never a crash, always an anvil::Error
  // or a model that still imports
  for (size_t i = 8; i + 4 <= bytes.size(); i += 4) {
    auto c = bytes;
    const uint32_t v = 0x40000000u + static_cast<uint32_t>(i);
    std::memcpy(c.data() + i, &v, 4);
    try {
      anvil::import_model({write_model("flip", c)});
    } catch (const anvil::Error&) {
    }
  }
}

TEST(TfliteMalformed, NotATfliteFile) {
  std::vector<uint8_t> bytes(64, 0);
  std::memcpy(bytes.data() + 4, "XXXX", 4);
  EXPECT_NE(import_error("notflite", bytes).find("TFL3"), std::string::npos);
}

TEST(TfliteMalformed, TensorIndexOutOfRange) {
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 2, 2, 1});
  const int y = mb.tensor("y", {1, 2, 2, 1});
  mb.op(fb::BuiltinOperator_RELU, {x, 99}, {y});
  const std::string e = import_error("tensor_index", mb.finish({x}, {y}));
  EXPECT_NE(e.find("tensor index 99"), std::string::npos) << e;
  EXPECT_NE(e.find("operator 0"), std::string::npos) << e;
}

TEST(TfliteMalformed, OpcodeIndexOutOfRange) {
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 2});
  const int y = mb.tensor("y", {1, 2});
  mb.opcode(fb::BuiltinOperator_RELU);
  mb.op(fb::BuiltinOperator_RELU, {x}, {y}, fb::BuiltinOptions_NONE, 0, 7);
  const std::string e = import_error("opcode", mb.finish({x}, {y}));
  EXPECT_NE(e.find("opcode index 7"), std::string::npos) << e;
}

TEST(TfliteMalformed, BufferIndexAndSize) {
  {
    ModelBuilder mb;
    const int x = mb.tensor("x", {1, 2});
    const int c = mb.tensor("weights", {1, 2}, fb::TensorType_FLOAT32, 42);
    const int y = mb.tensor("y", {1, 2});
    mb.op(fb::BuiltinOperator_ADD, {x, c}, {y});
    const std::string e = import_error("buffer_index", mb.finish({x}, {y}));
    EXPECT_NE(e.find("buffer index 42"), std::string::npos) << e;
    EXPECT_NE(e.find("'weights'"), std::string::npos) << e;
  }
  {
    ModelBuilder mb;
    const int x = mb.tensor("x", {1, 2});
    const float one = 1.0f;
    const int c = mb.tensor("short_weights", {1, 2}, fb::TensorType_FLOAT32, mb.buffer(&one, 4));
    const int y = mb.tensor("y", {1, 2});
    mb.op(fb::BuiltinOperator_ADD, {x, c}, {y});
    const std::string e = import_error("buffer_size", mb.finish({x}, {y}));
    EXPECT_NE(e.find("'short_weights'"), std::string::npos) << e;
    EXPECT_NE(e.find("holds 4 bytes"), std::string::npos) << e;
  }
}

TEST(TfliteMalformed, HostileSizes) {
  ModelBuilder mb;
  const int x = mb.tensor("huge_input", {1 << 30, 1 << 30, 16});
  const int y = mb.tensor("y", {1 << 30, 1 << 30, 16});
  mb.op(fb::BuiltinOperator_RELU, {x}, {y});
  const std::string e = import_error("hostile", mb.finish({x}, {y}));
  EXPECT_NE(e.find("hostile"), std::string::npos) << e;
  EXPECT_NE(e.find("huge_input"), std::string::npos) << e;
}

TEST(TfliteMalformed, DeclaredShapeMismatch) {
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 4, 4, 1});
  const int y = mb.tensor("pooled", {1, 3, 3, 1});  // MAX_POOL 2x2 stride 2 VALID gives 2x2
  mb.op(fb::BuiltinOperator_MAX_POOL_2D, {x}, {y}, fb::BuiltinOptions_Pool2DOptions,
        fb::CreatePool2DOptions(mb.b, fb::Padding_VALID, 2, 2, 2, 2).Union());
  const std::string e = import_error("shape_mismatch", mb.finish({x}, {y}));
  EXPECT_NE(e.find("'pooled'"), std::string::npos) << e;
  EXPECT_NE(e.find("MAX_POOL_2D"), std::string::npos) << e;
}

TEST(TfliteMalformed, UnsupportedOperatorsListedTogether) {
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 4});
  const int a = mb.tensor("a", {1, 4});
  const int b2 = mb.tensor("b", {1, 4});
  const int y = mb.tensor("y", {1, 4});
  mb.op(fb::BuiltinOperator_LSH_PROJECTION, {x}, {a});
  mb.op(fb::BuiltinOperator_RELU, {a}, {b2});  // fed by an unsupported op: not listed itself
  mb.op(fb::BuiltinOperator_SKIP_GRAM, {x}, {y});
  const std::string e = import_error("unsupported", mb.finish({x}, {b2, y}));
  EXPECT_NE(e.find("2 unsupported operators:"), std::string::npos) << e;
  EXPECT_NE(e.find("unsupported operator LSH_PROJECTION (operator 0, output 'a')"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("unsupported operator SKIP_GRAM (operator 2, output 'y')"), std::string::npos)
      << e;
  EXPECT_EQ(e.find("RELU"), std::string::npos) << e;
  EXPECT_EQ(e.find("builtin_code"), std::string::npos) << e;
}

TEST(TfliteMalformed, UnsupportedOperatorNamedOnce) {
  // one message naming the operator, its index and its output, the long name only once
  const std::string name(120, 'n');
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 4});
  const int y = mb.tensor(name, {1, 4});
  mb.op(fb::BuiltinOperator_HASHTABLE_LOOKUP, {x}, {y});
  const std::string path = write_model("unsupported_one", mb.finish({x}, {y}));
  try {
    anvil::import_model({path});
    FAIL() << "imported";
  } catch (const anvil::Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": unsupported operator HASHTABLE_LOOKUP (operator 0, output '" + name + "')");
  }
}

TEST(TfliteMalformed, SeveralUnsupportedOperatorsWithReasons) {
  // every unsupported operator in one message, each with its reason when it has one
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 4});
  const int a = mb.tensor("a", {1, 4});
  const int c = mb.tensor("c", {1, 4});
  const int y = mb.tensor("y", {1, 4});
  mb.op(fb::BuiltinOperator_HASHTABLE_LOOKUP, {x}, {a});
  mb.op(fb::BuiltinOperator_EMBEDDING_LOOKUP_SPARSE, {x}, {c});
  mb.op(fb::BuiltinOperator_ADD, {x, x}, {y}, fb::BuiltinOptions_AddOptions,
        fb::CreateAddOptions(mb.b, fb::ActivationFunctionType_SIGN_BIT).Union());
  const std::string e = import_error("unsupported_three", mb.finish({x}, {a, c, y}));
  EXPECT_NE(e.find("3 unsupported operators:"), std::string::npos) << e;
  EXPECT_NE(e.find("  - unsupported operator HASHTABLE_LOOKUP (operator 0, output 'a')\n"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("  - unsupported operator EMBEDDING_LOOKUP_SPARSE (operator 1, output 'c')\n"),
            std::string::npos)
      << e;
  EXPECT_NE(
      e.find("  - unsupported operator ADD (operator 2, output 'y'): fused activation SIGN_BIT"),
      std::string::npos)
      << e;
}

TEST(TfliteMalformed, ReadBeforeWritten) {
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 4});
  const int ghost = mb.tensor("ghost", {1, 4});
  const int y = mb.tensor("y", {1, 4});
  mb.op(fb::BuiltinOperator_ADD, {x, ghost}, {y});
  const std::string e = import_error("ghost", mb.finish({x}, {y}));
  EXPECT_NE(e.find("'ghost'"), std::string::npos) << e;
}

TEST(TfliteMalformed, WrongSchemaVersion) {
  ModelBuilder mb;
  const int x = mb.tensor("x", {1, 4});
  const int y = mb.tensor("y", {1, 4});
  mb.op(fb::BuiltinOperator_RELU, {x}, {y});
  EXPECT_NE(import_error("version", mb.finish({x}, {y}, 2)).find("version 2"), std::string::npos);
}

}  // namespace
