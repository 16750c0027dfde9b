// anvil/preprocess.h (Caffe mean files, per-pixel mean subtraction) and the Caffe importer's
// graph metadata (channel order, transform_param). Expected values are worked out by hand.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/preprocess.h"

namespace {
namespace fs = std::filesystem;

std::string tmp_path(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("anvil_preprocess_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return (d / name).string();
}

std::string write(const std::string& name, const std::string& bytes) {
  std::string p = tmp_path(name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

// Protobuf wire format by hand: a varint field, and a packed float field.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void int_field(std::string& out, int field, uint64_t v) {
  varint(out, static_cast<uint64_t>(field) << 3);  // wire type 0
  varint(out, v);
}
void packed_floats(std::string& out, int field, const std::vector<float>& v) {
  varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  varint(out, v.size() * 4);
  for (float f : v) {
    char b[4];
    std::memcpy(b, &f, 4);  // little-endian host
    out.append(b, 4);
  }
}
// A legacy BlobProto: num 1 (field 1), channels (2), height (3), width (4), data (5).
std::string legacy_blob(int c, int h, int w, const std::vector<float>& data) {
  std::string b;
  int_field(b, 1, 1);
  int_field(b, 2, static_cast<uint64_t>(c));
  int_field(b, 3, static_cast<uint64_t>(h));
  int_field(b, 4, static_cast<uint64_t>(w));
  packed_floats(b, 5, data);
  return b;
}

TEST(Preprocess, ReadCaffeMeanLegacyShape) {
  std::vector<float> d(2 * 2 * 3);
  for (size_t i = 0; i < d.size(); ++i) d[i] = 0.5f * static_cast<float>(i);
  anvil::Tensor m = anvil::read_caffe_mean(write("m.binaryproto", legacy_blob(2, 2, 3, d)));
  ASSERT_EQ(m.shape(), (anvil::Shape{2, 2, 3}));
  EXPECT_EQ(m.get(0), 0.0);
  EXPECT_EQ(m.get(7), 3.5);
  EXPECT_EQ(m.get(11), 5.5);
}

TEST(Preprocess, ReadCaffeMeanShapeField) {
  // shape (field 7) = BlobShape { dim: [3, 1, 1] } (packed int64, field 1), data 10, 20, 30.
  std::string shape;
  varint(shape, (1 << 3) | 2);
  varint(shape, 3);
  shape += '\x03';
  shape += '\x01';
  shape += '\x01';
  std::string b;
  varint(b, (7 << 3) | 2);
  varint(b, shape.size());
  b += shape;
  packed_floats(b, 5, {10, 20, 30});
  anvil::Tensor m = anvil::read_caffe_mean(write("s.binaryproto", b));
  ASSERT_EQ(m.shape(), (anvil::Shape{3, 1, 1}));
  EXPECT_EQ(m.get(2), 30.0);
}

TEST(Preprocess, ReadCaffeMeanRejectsBadFiles) {
  // 2x2x2 declared, 3 values stored.
  EXPECT_THROW(anvil::read_caffe_mean(write("short.binaryproto", legacy_blob(2, 2, 2, {1, 2, 3}))),
               anvil::Error);
  EXPECT_THROW(anvil::read_caffe_mean(write("junk.binaryproto", "\xff\xff\xff")), anvil::Error);
  EXPECT_THROW(anvil::read_caffe_mean(write("empty.binaryproto", "")), anvil::Error);
  try {
    anvil::read_caffe_mean(write("short2.binaryproto", legacy_blob(1, 2, 2, {1})));
    FAIL() << "no error";
  } catch (const anvil::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds 1 values"), std::string::npos) << e.what();
  }
}

TEST(Preprocess, SubtractMeanImageCenterCropNchw) {
  // Image (1, 1, 2, 2) = [[10, 20], [30, 40]]; mean (1, 4, 4) with m[y][x] = 4y + x;
  // center crop offset (1, 1): mean used = [[5, 6], [9, 10]]; scale 0.5.
  anvil::Tensor img(anvil::DType::f32, {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) img.set(i, 10.0 * (i + 1));
  anvil::Tensor mean(anvil::DType::f32, {1, 4, 4});
  for (int i = 0; i < 16; ++i) mean.set(i, i);
  anvil::Tensor out = anvil::subtract_mean_image(img, mean, {0.5f}, true);
  ASSERT_EQ(out.shape(), img.shape());
  EXPECT_EQ(out.get(0), (10 - 5) * 0.5);
  EXPECT_EQ(out.get(1), (20 - 6) * 0.5);
  EXPECT_EQ(out.get(2), (30 - 9) * 0.5);
  EXPECT_EQ(out.get(3), (40 - 10) * 0.5);
}

TEST(Preprocess, SubtractMeanImageNhwcPerChannelScale) {
  // Image (1, 1, 2, 2) NHWC (H=1, W=2, C=2): pixels (1, 2), (3, 4). Mean (2, 1, 2):
  // channel 0 = [100, 200], channel 1 = [300, 400]. Scale per channel (1, 10).
  anvil::Tensor img(anvil::DType::f32, {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) img.set(i, i + 1);
  anvil::Tensor mean(anvil::DType::f32, {2, 1, 2});
  for (int i = 0; i < 4; ++i) mean.set(i, 100.0 * (i + 1));
  anvil::Tensor out = anvil::subtract_mean_image(img, mean, {1.0f, 10.0f}, false);
  EXPECT_EQ(out.get(0), 1 - 100);           // y0 x0 c0
  EXPECT_EQ(out.get(1), (2 - 300) * 10.0);  // y0 x0 c1
  EXPECT_EQ(out.get(2), 3 - 200);           // y0 x1 c0
  EXPECT_EQ(out.get(3), (4 - 400) * 10.0);  // y0 x1 c1
}

TEST(Preprocess, SubtractMeanImageErrors) {
  anvil::Tensor img(anvil::DType::f32, {1, 3, 4, 4});
  // Smaller than the image.
  EXPECT_THROW(anvil::subtract_mean_image(img, anvil::Tensor(anvil::DType::f32, {3, 3, 4})),
               anvil::Error);
  // Channel mismatch (2 vs 3).
  EXPECT_THROW(anvil::subtract_mean_image(img, anvil::Tensor(anvil::DType::f32, {2, 4, 4})),
               anvil::Error);
  // Wrong number of scale values.
  EXPECT_THROW(
      anvil::subtract_mean_image(img, anvil::Tensor(anvil::DType::f32, {3, 4, 4}), {1.0f, 2.0f}),
      anvil::Error);
  // A one-channel mean broadcasts: no error, (0 - 0) * 1 = 0.
  anvil::Tensor out = anvil::subtract_mean_image(img, anvil::Tensor(anvil::DType::f32, {1, 4, 4}));
  EXPECT_EQ(out.get(47), 0.0);
}

TEST(Preprocess, CaffeImporterRecordsTransformParam) {
  const std::string proto = R"(name: "t"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } }
  transform_param { scale: 0.0078125 mean_value: 104 mean_value: 117 mean_value: 123
                    mean_file: "m.binaryproto" crop_size: 4 force_color: true } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
)";
  anvil::Graph g = anvil::import_model({write("tp.prototxt", proto)});
  EXPECT_EQ(g.metadata.at("image.channel_order"), "BGR");
  EXPECT_EQ(g.metadata.at("caffe.transform.inputs"), "data");
  EXPECT_EQ(g.metadata.at("caffe.transform.scale"), "0.0078125");
  EXPECT_EQ(g.metadata.at("caffe.transform.mean_value"), "104,117,123");
  EXPECT_EQ(g.metadata.at("caffe.transform.mean_file"), "m.binaryproto");
  EXPECT_EQ(g.metadata.at("caffe.transform.crop_size"), "4");
  EXPECT_EQ(g.metadata.at("caffe.transform.force_color"), "1");
  // Without transform_param: only the channel order; input_shapes overrides the fixed batch.
  const std::string plain = R"(name: "p"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 8 dim: 1 dim: 2 dim: 2 } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
)";
  anvil::ImportOptions o;
  o.input_shapes["data"] = {3, 1, 2, 2};
  anvil::Graph p = anvil::import_model({write("plain.prototxt", plain)}, o);
  EXPECT_EQ(p.metadata.count("caffe.transform.inputs"), 0u);
  EXPECT_EQ(p.metadata.at("image.channel_order"), "BGR");
  EXPECT_EQ(p.values[static_cast<size_t>(p.inputs.at(0))].shape, (anvil::Shape{3, 1, 2, 2}));
}

}  // namespace
