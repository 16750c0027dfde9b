// anvil::sanitize_tensor_name: the file-name rule of `anvil run` outputs.
#include <gtest/gtest.h>

#include <string>

#include "anvil/names.h"

namespace {

std::string long_name() {
  // 250 characters: "layer/000:layer/001:...layer/024:"
  std::string s;
  char buf[16];
  for (int i = 0; i < 25; ++i) {
    std::snprintf(buf, sizeof buf, "layer/%03d:", i);
    s += buf;
  }
  return s;
}

TEST(NamesSanitize, KeepsSafeCharacters) {
  EXPECT_EQ(anvil::sanitize_tensor_name("probs"), "probs");
  EXPECT_EQ(anvil::sanitize_tensor_name("A-z_0.9"), "A-z_0.9");
}

TEST(NamesSanitize, ReplacesEveryOtherCharacter) {
  EXPECT_EQ(anvil::sanitize_tensor_name("/conv1/Conv_output_0"), "_conv1_Conv_output_0");
  EXPECT_EQ(anvil::sanitize_tensor_name("dense/BiasAdd:0"), "dense_BiasAdd_0");
  EXPECT_EQ(anvil::sanitize_tensor_name("a b\tc\\d"), "a_b_c_d");
  EXPECT_EQ(anvil::sanitize_tensor_name("x+y=z?*"), "x_y_z__");
  // Non-ASCII: each byte of the UTF-8 encoding becomes '_' ("é" is 2 bytes).
  EXPECT_EQ(anvil::sanitize_tensor_name("caf\xc3\xa9"), "caf__");
  EXPECT_EQ(anvil::sanitize_tensor_name(""), "_");
}

TEST(NamesSanitize, Crc32MatchesZlibCheckValue) {
  // The standard CRC-32 check value: zlib.crc32(b"123456789") == 0xcbf43926.
  EXPECT_EQ(anvil::crc32_of("123456789"), 0xcbf43926u);
  EXPECT_EQ(anvil::crc32_of(""), 0u);
}

TEST(NamesSanitize, TwoHundredCharactersAreKept) {
  std::string n(200, 'a');
  EXPECT_EQ(anvil::sanitize_tensor_name(n), n);
  std::string m(200, '/');
  EXPECT_EQ(anvil::sanitize_tensor_name(m), std::string(200, '_'));
}

TEST(NamesSanitize, LongNameGetsPrefixAndCrcOfOriginal) {
  std::string name = long_name();
  ASSERT_EQ(name.size(), 250u);
  // From Python (independent of this code):
  //   import zlib, re
  //   name = ''.join('layer/%03d:' % i for i in range(25))
  //   '%08x' % zlib.crc32(name.encode())          -> '6dee7555'
  //   re.sub(r'[^A-Za-z0-9._-]', '_', name)[:191]  -> the prefix below
  EXPECT_EQ(anvil::crc32_of(name), 0x6dee7555u);
  const std::string expected =
      "layer_000_layer_001_layer_002_layer_003_layer_004_layer_005_layer_006_layer_007_"
      "layer_008_layer_009_layer_010_layer_011_layer_012_layer_013_layer_014_layer_015_"
      "layer_016_layer_017_layer_018_l_6dee7555";
  std::string got = anvil::sanitize_tensor_name(name);
  EXPECT_EQ(got.size(), 200u);
  EXPECT_EQ(got, expected);
}

TEST(NamesSanitize, LongNamesDifferingOnlyAtTheEndStayDistinct) {
  std::string a(230, 'x'), b(230, 'x');
  b.back() = 'y';
  EXPECT_NE(anvil::sanitize_tensor_name(a), anvil::sanitize_tensor_name(b));
  // The CRC is of the original name, not the sanitized one: "x/" and "x:" differ.
  std::string c = std::string(220, 'x') + "/", d = std::string(220, 'x') + ":";
  EXPECT_NE(anvil::sanitize_tensor_name(c), anvil::sanitize_tensor_name(d));
}

}  // namespace

#include "anvil/graph.h"

namespace {

// Graph::find_value_by_any_name: a bare source name is the layer's output 0 even when its other
// outputs come later in the graph (a Keras LSTM with return_state: "lstm", "lstm:1", "lstm:2").
TEST(GraphNames, BareSourceNameIsOutputZero) {
  anvil::Graph g;
  const int x = g.add_input("x", anvil::DType::f32, {1, 2});
  const int n = g.add_node("Split", "split", {x}, {}, 3);
  const auto outs = g.nodes[static_cast<size_t>(n)].outputs;
  for (int k = 0; k < 3; ++k) {
    auto& p = g.values[static_cast<size_t>(outs[static_cast<size_t>(k)])].prov;
    p.source_name = "lstm";
    p.output_index = k;
  }
  EXPECT_EQ(g.find_value_by_any_name("lstm"), outs[0]);
  EXPECT_EQ(g.find_value_by_any_name("lstm:1"), outs[1]);
  EXPECT_EQ(g.find_value_by_any_name("lstm:2"), outs[2]);
  EXPECT_EQ(g.find_value_by_any_name("lstm:3"), -1);
}

}  // namespace
