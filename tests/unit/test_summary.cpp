// summary(): header, one row per node (source name, op, shape in the source layout, pads,
// params) and the total, with parameter counts derived by hand.
#include <gtest/gtest.h>

#include <sstream>

#include "anvil/builder.h"
#include "anvil/summary.h"

using namespace anvil;

namespace {
std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> r;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) r.push_back(l);
  return r;
}

const std::string* row_starting(const std::vector<std::string>& lines, const std::string& name) {
  for (const auto& l : lines)
    if (l.rfind(name + " ", 0) == 0) return &l;
  return nullptr;
}
}  // namespace

TEST(Summary, BuilderModelRowsAndTotals) {
  Builder b("small");
  auto x = b.input("image", {1, 3, 8, 8});
  auto y = x >> b.conv2d(4, 3, {.padding = Padding::same, .stride = 2, .name = "conv1"}) >>
           b.relu("act") >> b.flatten("flat") >> b.dense(5, {.name = "fc"});
  b.output(y);
  b.initialize_random(1);
  std::string s = summary(b.build());
  auto lines = lines_of(s);
  ASSERT_GE(lines.size(), 9u) << s;
  EXPECT_NE(lines[0].find("small"), std::string::npos);
  // header, then a separator line of dashes
  bool header = false;
  size_t header_at = 0;
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find("Output shape") != std::string::npos && lines[i].find("Params") != std::string::npos) {
      header = true;
      header_at = i;
      break;
    }
  ASSERT_TRUE(header) << s;
  ASSERT_LT(header_at + 1, lines.size());
  EXPECT_EQ(lines[header_at + 1].find_first_not_of('-'), std::string::npos);
  // conv1: 4 * 3 * 3 * 3 + 4 = 112 params; TF 'same' on 8 with k 3, s 2: total pad 1 -> [0,0,1,1]
  const std::string* conv = row_starting(lines, "conv1");
  ASSERT_NE(conv, nullptr) << s;
  EXPECT_NE(conv->find("Conv2D"), std::string::npos);
  EXPECT_NE(conv->find("(1, 4, 4, 4)"), std::string::npos);
  EXPECT_NE(conv->find("[0,0,1,1]"), std::string::npos);
  EXPECT_EQ(conv->substr(conv->size() - 4), " 112");
  // fc: 4 * 4 * 4 = 64 inputs -> 64 * 5 + 5 = 325 params
  const std::string* fc = row_starting(lines, "fc");
  ASSERT_NE(fc, nullptr) << s;
  EXPECT_NE(fc->find("Dense"), std::string::npos);
  EXPECT_NE(fc->find("(1, 5)"), std::string::npos);
  EXPECT_EQ(fc->substr(fc->size() - 4), " 325");
  const std::string* act = row_starting(lines, "act");
  ASSERT_NE(act, nullptr);
  EXPECT_EQ(act->back(), '0');
  EXPECT_NE(s.find("Total params: 437\n"), std::string::npos) << s;  // 112 + 325
  EXPECT_EQ(lines.back(), "Total params: 437");
}

TEST(Summary, ShapesInTheSourceLayoutAndSourceNames) {
  Graph g;
  g.name = "nhwc";
  int x = g.add_input("x", DType::f32, {1, 3, 4, 5});
  g.values[static_cast<size_t>(x)].prov.to_source = {0, 2, 3, 1};
  g.values[static_cast<size_t>(x)].prov.source_layout = "NHWC";
  g.values[static_cast<size_t>(x)].prov.source_name = "input_1";
  int w = g.add_constant("w", Tensor(DType::f32, {2, 3, 1, 1}));
  int n = g.add_node("Conv", "node_7", {x, w});
  g.nodes[static_cast<size_t>(n)].source_op = "Conv2D";
  Value& out = g.values[static_cast<size_t>(g.nodes[static_cast<size_t>(n)].outputs[0])];
  out.shape = {1, 2, 4, 5};
  out.shape_known = true;
  out.prov.to_source = {0, 2, 3, 1};
  out.prov.source_layout = "NHWC";
  out.prov.source_name = "keras_conv";
  int r = g.add_node("Relu", "relu_node", {g.nodes[static_cast<size_t>(n)].outputs[0]});
  Value& rv = g.values[static_cast<size_t>(g.nodes[static_cast<size_t>(r)].outputs[0])];
  rv.shape = {1, 2, 4, 5};
  rv.shape_known = true;
  g.outputs = {g.nodes[static_cast<size_t>(r)].outputs[0]};
  std::string s = summary(g);
  auto lines = lines_of(s);
  const std::string* in = row_starting(lines, "input_1");
  ASSERT_NE(in, nullptr) << s;
  EXPECT_NE(in->find("(1, 4, 5, 3)"), std::string::npos) << s;
  const std::string* conv = row_starting(lines, "keras_conv");
  ASSERT_NE(conv, nullptr) << s;
  EXPECT_NE(conv->find("Conv2D"), std::string::npos);  // the source op
  EXPECT_NE(conv->find("(1, 4, 5, 2)"), std::string::npos);
  EXPECT_EQ(conv->find("[0"), std::string::npos);  // no pads attribute: no padding cell
  const std::string* relu = row_starting(lines, "relu_node");  // no provenance: node name
  ASSERT_NE(relu, nullptr) << s;
  EXPECT_NE(relu->find("Relu"), std::string::npos);  // no source op: canonical op
  EXPECT_NE(relu->find("(1, 2, 4, 5)"), std::string::npos);
  EXPECT_NE(s.find("Total params: 6\n"), std::string::npos);
  EXPECT_EQ(node_parameter_count(g, g.nodes[0]), 6);
  EXPECT_EQ(node_parameter_count(g, g.nodes[1]), 0);
  SummaryOptions o;
  o.show_constants = true;
  std::string with_w = summary(g, o);
  EXPECT_NE(with_w.find("Constant"), std::string::npos);
}

TEST(Summary, SharedWeightsCountOnceInTheTotal) {
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3});
  int w = g.add_constant("w", Tensor(DType::f32, {3, 3}));
  int a = g.add_node("MatMul", "a", {x, w});
  int b = g.add_node("MatMul", "b", {g.nodes[static_cast<size_t>(a)].outputs[0], w});
  g.outputs = {g.nodes[static_cast<size_t>(b)].outputs[0]};
  g.infer_shapes();
  EXPECT_EQ(node_parameter_count(g, g.nodes[0]), 9);
  EXPECT_EQ(node_parameter_count(g, g.nodes[1]), 9);
  EXPECT_NE(summary(g).find("Total params: 9\n"), std::string::npos) << summary(g);
}
