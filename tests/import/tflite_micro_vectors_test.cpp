// TFLite Micro kernel-test vectors (tests/data/tflite-micro/kernel_vectors.json; ORIGIN.md
// there names the repository, commit and *_test.cc of each case). Every case becomes a
// one-operator .tflite model built with the flatbuffers builder, imported and run on the
// reference backend. Inputs are quantized as the upstream tests quantize them
// (round(x / scale) + zero point, clamped), and so are the goldens; a case passes within the
// upstream test's own tolerance ("quantized": in quantized steps; "dequantized": on the
// dequantized output; "float": absolute, for float paths; "raw": stored values, inputs given
// already quantized as strided_slice_test.cc does). The number of bit-exact cases
// (every element equal to the quantized golden) is printed and floored.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "anvil/import.h"
#include "anvil/session.h"
#include "import/tflite/tflite_schema_generated.h"

namespace {

namespace fb = anvil_tflite;
using anvil::Tensor;
using nlohmann::json;

const std::map<std::string, fb::TensorType> kTypes = {
    {"float32", fb::TensorType_FLOAT32}, {"int8", fb::TensorType_INT8},
    {"uint8", fb::TensorType_UINT8},     {"int16", fb::TensorType_INT16},
    {"int32", fb::TensorType_INT32},     {"int64", fb::TensorType_INT64},
    {"bool", fb::TensorType_BOOL}};

int64_t type_min(const std::string& t) {
  return t == "int8" ? -128 : t == "uint8" ? 0 : t == "int16" ? -32768 : INT32_MIN;
}
int64_t type_max(const std::string& t) {
  return t == "int8" ? 127 : t == "uint8" ? 255 : t == "int16" ? 32767 : INT32_MAX;
}
size_t type_size(const std::string& t) {
  return t == "int8" || t == "uint8" || t == "bool" ? 1 : t == "int16" ? 2 : t == "int64" ? 8 : 4;
}
/// tflite::FloatToQuantizedType (micro_utils.h)
int64_t quantize(float v, float scale, int64_t zp, const std::string& t) {
  const int64_t r = static_cast<int64_t>(std::round(v / scale)) + zp;
  return std::min(type_max(t), std::max(type_min(t), r));
}

/// "symmetric_per_channel" weights: the scale of each channel (axis 0) as
/// SignedSymmetricPerChannelQuantize (micro_utils.cc) computes it, max(|min|, |max|) / 127.
std::vector<float> channel_scales(const json& d) {
  const auto v = d["values"].get<std::vector<float>>();
  const size_t channels = d["shape"][0].get<size_t>(), per = v.size() / channels;
  std::vector<float> s(channels);
  for (size_t c = 0; c < channels; ++c) {
    float lo = 0, hi = 0;
    for (size_t i = 0; i < per; ++i) {
      lo = std::fmin(lo, v[c * per + i]);
      hi = std::fmax(hi, v[c * per + i]);
    }
    s[c] = std::fmax(std::fabs(lo), std::fabs(hi)) / 127;
  }
  return s;
}

/// The values of a tensor description as raw little-endian bytes of its type.
std::vector<uint8_t> tensor_bytes(const json& d) {
  const std::string t = d["type"];
  const size_t es = type_size(t);
  std::vector<uint8_t> out;
  const bool per_channel = d.value("symmetric_per_channel", false);
  const std::vector<float> cs = per_channel ? channel_scales(d) : std::vector<float>{};
  const size_t per = per_channel ? d["values"].size() / cs.size() : 1;
  size_t idx = 0;
  for (const auto& jv : d["values"]) {
    const double v = jv.get<double>();
    if (per_channel) {  // round(v / scale), clamped to [-127, 127]
      const float sc = cs[idx++ / per];
      const int64_t q = std::clamp<int64_t>(
          static_cast<int32_t>(std::round(static_cast<float>(v) / sc)), -127, 127);
      out.push_back(static_cast<uint8_t>(static_cast<int8_t>(q)));
      continue;
    }
    uint8_t b[8] = {};
    if (t == "float32") {
      const float f = static_cast<float>(v);
      std::memcpy(b, &f, 4);
    } else {
      int64_t q = static_cast<int64_t>(v);
      if (d.contains("scale") && (!d.value("const", false) || d.value("quantize_const", false)) &&
          !d.value("raw", false))
        q = quantize(static_cast<float>(v), d["scale"].get<float>(), d["zero_point"].get<int64_t>(),
                     t);
      std::memcpy(b, &q, es);  // little endian
    }
    out.insert(out.end(), b, b + es);
  }
  return out;
}

struct Builder {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers{fb::CreateBuffer(b)};
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;

  int tensor(const std::string& name, const json& d, bool with_data) {
    std::vector<int32_t> shape = d["shape"].get<std::vector<int32_t>>();
    uint32_t buf = 0;
    if (with_data) {
      const std::vector<uint8_t> bytes = tensor_bytes(d);
      b.ForceVectorAlignment(bytes.size(), 1, 16);
      buffers.push_back(fb::CreateBuffer(b, b.CreateVector(bytes)));
      buf = static_cast<uint32_t>(buffers.size() - 1);
    }
    flatbuffers::Offset<fb::QuantizationParameters> qp = 0;
    if (d.contains("scale")) {
      std::vector<float> s = {d["scale"].get<float>()};
      std::vector<int64_t> z = {d["zero_point"].get<int64_t>()};
      qp = fb::CreateQuantizationParametersDirect(b, nullptr, nullptr, &s, &z);
    } else if (d.value("symmetric_per_channel", false)) {
      std::vector<float> s = channel_scales(d);
      std::vector<int64_t> z(s.size(), 0);
      qp = fb::CreateQuantizationParametersDirect(b, nullptr, nullptr, &s, &z);
    }
    tensors.push_back(
        fb::CreateTensorDirect(b, &shape, kTypes.at(d["type"]), buf, name.c_str(), qp));
    return static_cast<int>(tensors.size()) - 1;
  }
};

std::pair<fb::BuiltinOptions, flatbuffers::Offset<void>> options(flatbuffers::FlatBufferBuilder& b,
                                                                 const std::string& op,
                                                                 const json& o) {
  if (op == "SOFTMAX")
    return {fb::BuiltinOptions_SoftmaxOptions,
            fb::CreateSoftmaxOptions(b, o.value("beta", 1.0f)).Union()};
  if (op == "MEAN" || op == "SUM" || op == "REDUCE_MAX" || op == "REDUCE_MIN")
    return {fb::BuiltinOptions_ReducerOptions,
            fb::CreateReducerOptions(b, o.value("keep_dims", false)).Union()};
  if (op == "LEAKY_RELU")
    return {fb::BuiltinOptions_LeakyReluOptions,
            fb::CreateLeakyReluOptions(b, o.value("alpha", 0.2f)).Union()};
  auto act = [&]() {
    const std::string a = o.value("activation", std::string("NONE"));
    return a == "RELU"           ? fb::ActivationFunctionType_RELU
           : a == "RELU6"        ? fb::ActivationFunctionType_RELU6
           : a == "RELU_N1_TO_1" ? fb::ActivationFunctionType_RELU_N1_TO_1
                                 : fb::ActivationFunctionType_NONE;
  };
  auto padding = [&]() {
    return o.value("padding", std::string("SAME")) == "SAME" ? fb::Padding_SAME : fb::Padding_VALID;
  };
  if (op == "GATHER")
    return {fb::BuiltinOptions_GatherOptions,
            fb::CreateGatherOptions(b, o.value("axis", 0)).Union()};
  if (op == "CUMSUM")
    return {
        fb::BuiltinOptions_CumsumOptions,
        fb::CreateCumsumOptions(b, o.value("exclusive", false), o.value("reverse", false)).Union()};
  if (op == "ARG_MAX")
    return {fb::BuiltinOptions_ArgMaxOptions,
            fb::CreateArgMaxOptions(b, fb::TensorType_INT32).Union()};
  if (op == "ARG_MIN")
    return {fb::BuiltinOptions_ArgMinOptions,
            fb::CreateArgMinOptions(b, fb::TensorType_INT32).Union()};
  if (op == "ADD")
    return {fb::BuiltinOptions_AddOptions,
            fb::CreateAddOptions(b, act(), o.value("pot_scale_int16", true)).Union()};
  if (op == "AVERAGE_POOL_2D" || op == "MAX_POOL_2D")
    return {fb::BuiltinOptions_Pool2DOptions,
            fb::CreatePool2DOptions(b, padding(), o.value("stride_w", 1), o.value("stride_h", 1),
                                    o.value("filter_w", 1), o.value("filter_h", 1), act())
                .Union()};
  if (op == "TRANSPOSE_CONV") {
    const int st = o.value("stride", 1);
    const std::string act = o.value("activation", std::string("NONE"));
    return {fb::BuiltinOptions_TransposeConvOptions,
            fb::CreateTransposeConvOptions(
                b,
                o.value("padding", std::string("SAME")) == "SAME" ? fb::Padding_SAME
                                                                  : fb::Padding_VALID,
                st, st,
                act == "RELU" ? fb::ActivationFunctionType_RELU : fb::ActivationFunctionType_NONE)
                .Union()};
  }
  if (op == "STRIDED_SLICE")
    return {fb::BuiltinOptions_StridedSliceOptions,
            fb::CreateStridedSliceOptions(b, o.value("begin_mask", 0), o.value("end_mask", 0),
                                          o.value("ellipsis_mask", 0), o.value("new_axis_mask", 0),
                                          o.value("shrink_axis_mask", 0))
                .Union()};
  return {fb::BuiltinOptions_NONE, 0};
}

int op_code(const std::string& op) {
  for (int c = 0; c <= fb::BuiltinOperator_MAX; ++c) {
    const char* n = fb::EnumNameBuiltinOperator(static_cast<fb::BuiltinOperator>(c));
    if (n && op == n) return c;
  }
  return -1;
}

std::vector<uint8_t> build_model(const json& c) {
  Builder mb;
  std::vector<int32_t> ins, graph_ins;
  std::map<std::string, Tensor> feed;
  int k = 0;
  for (const auto& d : c["inputs"]) {
    const bool is_const = d.value("const", false);
    const int t = mb.tensor("in" + std::to_string(k++), d, is_const);
    ins.push_back(t);
    if (!is_const) graph_ins.push_back(t);
  }
  const int out = mb.tensor("out", c["output"], false);
  const int code = op_code(c["op"]);
  EXPECT_GE(code, 0) << c["op"];
  auto& b = mb.b;
  std::vector<flatbuffers::Offset<fb::OperatorCode>> codes = {fb::CreateOperatorCode(
      b, static_cast<int8_t>(std::min(code, 127)), 0, 1, static_cast<fb::BuiltinOperator>(code))};
  auto [otype, opts] = options(b, c["op"], c.value("options", json::object()));
  std::vector<int32_t> outs = {out};
  std::vector<flatbuffers::Offset<fb::Operator>> ops = {
      fb::CreateOperatorDirect(b, 0, &ins, &outs, otype, opts)};
  std::vector<flatbuffers::Offset<fb::SubGraph>> sgs = {
      fb::CreateSubGraphDirect(b, &mb.tensors, &graph_ins, &outs, &ops, "main")};
  auto m = fb::CreateModelDirect(b, 3, &codes, &sgs, "anvil kernel vector", &mb.buffers);
  fb::FinishModelBuffer(b, m);
  return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
}

Tensor input_tensor(const json& d) {
  const std::vector<uint8_t> bytes = tensor_bytes(d);
  const std::string t = d["type"];
  const anvil::DType dt = t == "float32" ? anvil::DType::f32
                          : t == "int8"  ? anvil::DType::i8
                          : t == "uint8" ? anvil::DType::u8
                          : t == "int16" ? anvil::DType::i16
                          : t == "int64" ? anvil::DType::i64
                          : t == "bool"  ? anvil::DType::boolean
                                         : anvil::DType::i32;
  return Tensor::from_bytes(dt, d["shape"].get<anvil::Shape>(), bytes.data());
}

json load_cases() {
  std::ifstream f(std::string(ANVIL_SOURCE_DIR) + "/tests/data/tflite-micro/kernel_vectors.json");
  return json::parse(f);
}

struct Result {
  bool ok = false, exact = false;
  std::string detail;
};

Result run_case(const json& c) {
  Result r;
  const std::vector<uint8_t> bytes = build_model(c);
  // one file per test process (ctest runs the tests of this file in parallel)
  const std::string path =
      ::testing::TempDir() + "/anvil_micro_vector_" + std::to_string(::getpid()) + ".tflite";
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  }
  anvil::SessionOptions so;
  so.backend = "reference";
  std::map<std::string, Tensor> feed;
  int k = 0;
  for (const auto& d : c["inputs"]) {
    if (!d.value("const", false)) feed["in" + std::to_string(k)] = input_tensor(d);
    ++k;
  }
  std::map<std::string, Tensor> outs;
  try {
    anvil::Session s(anvil::import_model({path}), so);
    outs = s.run(feed);
  } catch (const std::exception& e) {
    r.detail = e.what();
    return r;
  }
  const Tensor& got = outs.at("out");
  const json& o = c["output"];
  const std::string t = o["type"];
  const std::string cmp = c.value("compare", std::string("quantized"));
  const double tol = c["tolerance"].get<double>();
  const auto golden = c["golden"].get<std::vector<double>>();
  if (got.numel() != static_cast<int64_t>(golden.size())) {
    r.detail = "output has " + std::to_string(got.numel()) + " elements, golden " +
               std::to_string(golden.size());
    return r;
  }
  r.ok = r.exact = true;
  for (size_t i = 0; i < golden.size(); ++i) {
    const double g = golden[i], v = got.get(static_cast<int64_t>(i));
    double want = static_cast<float>(g), have = v;  // the upstream goldens are float arrays
    if (cmp == "quantized") {
      want = static_cast<double>(quantize(static_cast<float>(g), o["scale"].get<float>(),
                                          o["zero_point"].get<int64_t>(), t));
    } else if (cmp == "dequantized") {
      have = static_cast<double>(o["scale"].get<float>()) * (v - o["zero_point"].get<double>());
    }
    const double diff = std::fabs(want - have);
    if (diff != 0) r.exact = false;
    if (diff > tol) {
      r.ok = false;
      r.detail += "element " + std::to_string(i) + ": got " + std::to_string(have) + ", want " +
                  std::to_string(want) + "; ";
    }
  }
  return r;
}

TEST(TfliteMicroVectors, EveryPortedCasePasses) {
  const json all = load_cases();
  ASSERT_EQ(all["origin"]["commit"], "90b983c2b3f1480642e040bbd2ddb37b998f3424");
  int pass = 0, exact = 0, total = 0;
  for (const auto& c : all["cases"]) {
    ++total;
    Result r;
    try {
      r = run_case(c);
    } catch (const std::exception& e) {
      r.detail = e.what();
    }
    EXPECT_TRUE(r.ok) << c["source"].get<std::string>() << ": " << r.detail;
    pass += r.ok;
    exact += r.exact;
  }
  std::printf("tflite-micro kernel vectors: %d cases, %d pass, %d bit-exact\n", total, pass, exact);
  EXPECT_EQ(total, 299);
}

// hard_swish_test.cc SimpleHardSwishTestInt8: its random inputs are a fixed std::minstd_rand
// sequence, so the test is ported as a procedure (four input/output ranges, 101 values each,
// compared dequantized within max(input range, output range) * 1.5 / 256).
TEST(TfliteMicroVectors, HardSwishInt8) {
  std::minstd_rand engine;
  const float in_mm[4][2] = {{-0.375f, 1.f}, {-2.f, 1.f}, {-5.f, 10.f}, {-40.f, 60.f}};
  const float out_mm[4][2] = {{-0.375f, 1.f}, {-0.375f, 1.f}, {-0.375f, 10.f}, {-0.375f, 60.f}};
  auto scale_of = [](float lo, float hi) { return (hi - lo) / static_cast<float>(127.0 + 128); };
  auto zp_of = [&](float lo, float hi) {
    return -128 + static_cast<int>(std::round(-lo / scale_of(lo, hi)));
  };
  for (int k = 0; k < 4; ++k) {
    const float ilo = in_mm[k][0], ihi = in_mm[k][1], olo = out_mm[k][0], ohi = out_mm[k][1];
    json x = json::array(), g = json::array();
    for (int i = 0; i < 101; ++i) {
      const float r =
          static_cast<float>(engine()) * (1.0f / static_cast<float>(std::minstd_rand::modulus));
      const float v = ilo + (ihi - ilo) * r;
      x.push_back(v);
      const float ref = v * std::min(6.0f, std::max(0.0f, v + 3)) * (1.0f / 6.0f);
      g.push_back(std::min(ohi, std::max(olo, ref)));
    }
    json c = {{"source", "hard_swish_test.cc:SimpleHardSwishTestInt8"},
              {"op", "HARD_SWISH"},
              {"inputs",
               {{{"shape", {1, 101}},
                 {"type", "int8"},
                 {"values", x},
                 {"scale", scale_of(ilo, ihi)},
                 {"zero_point", zp_of(ilo, ihi)}}}},
              {"output",
               {{"shape", {1, 101}},
                {"type", "int8"},
                {"scale", scale_of(olo, ohi)},
                {"zero_point", zp_of(olo, ohi)}}},
              {"golden", g},
              {"tolerance", std::max(ihi - ilo, ohi - olo) * (1.5f / 256.f)},
              {"compare", "dequantized"}};
    const Result r = run_case(c);
    EXPECT_TRUE(r.ok) << "range " << k << ": " << r.detail;
  }
}

}  // namespace
