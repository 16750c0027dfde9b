// The shared importer toolkit (src/import/common/): padding rules against cases worked out by
// hand from TF's formula (out = ceil(in / s), total = max((out - 1) * s + (k - 1) * d + 1 -
// in, 0), begin = total / 2), permutations, the problem list's messages, the node emitter and
// the layout-tracking tensor's views.
#include <gtest/gtest.h>

#include "anvil/error.h"
#include "import/common/layout_tensor.h"
#include "import/common/node_emitter.h"
#include "import/common/padding.h"
#include "import/common/perm.h"
#include "import/common/problems.h"
#include "import/common/topo_order.h"

using namespace anvil;
using anvil::imp::Pads;

namespace {

struct PadCase {
  int64_t in, k, s, d;
  Pads upper;  // SAME (TF/Keras/TFLite, ONNX SAME_UPPER)
  int64_t out;
};

}  // namespace

TEST(ImportCommonPadding, SameTable) {
  const PadCase cases[] = {
      // in  k  s  d   pads     out    (total = (out-1)*s + (k-1)*d + 1 - in)
      {7, 3, 2, 1, {1, 1}, 4},      // out 4: 6 + 3 - 7 = 2
      {8, 3, 2, 1, {0, 1}, 4},      // out 4: 6 + 3 - 8 = 1, the extra cell at the end
      {9, 3, 2, 1, {1, 1}, 5},      // out 5: 8 + 3 - 9 = 2
      {5, 2, 1, 1, {0, 1}, 5},      // even kernel: 4 + 2 - 5 = 1
      {5, 4, 1, 1, {1, 2}, 5},      // 4 + 4 - 5 = 3
      {10, 5, 3, 1, {2, 2}, 4},     // 9 + 5 - 10 = 4
      {10, 4, 3, 1, {1, 2}, 4},     // 9 + 4 - 10 = 3
      {6, 1, 2, 1, {0, 0}, 3},      // 4 + 1 - 6 < 0
      {5, 3, 1, 2, {2, 2}, 5},      // keff 5: 4 + 5 - 5 = 4
      {4, 12, 12, 1, {4, 4}, 1},    // window larger than the input: 0 + 12 - 4 = 8
      {224, 7, 2, 1, {2, 3}, 112},  // ResNet stem: 222 + 7 - 224 = 5
      {1, 3, 1, 3, {3, 3}, 1},      // keff 7: 0 + 7 - 1 = 6
      {0, 3, 1, 1, {1, 1}, 0},      // empty input: out 0, (-1)*1 + 3 - 0 = 2
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("in " + std::to_string(c.in) + " k " + std::to_string(c.k) + " s " +
                 std::to_string(c.s) + " d " + std::to_string(c.d));
    EXPECT_EQ(imp::same_pads(c.in, c.k, c.s, c.d), c.upper);
    EXPECT_EQ(imp::same_pads(c.in, c.k, c.s, c.d, false), (Pads{c.upper.end, c.upper.begin}));
    EXPECT_EQ(imp::resolve_pads(imp::Padding::SameUpper, c.in, c.k, c.s, c.d), c.upper);
    EXPECT_EQ(imp::resolve_pads(imp::Padding::SameLower, c.in, c.k, c.s, c.d),
              (Pads{c.upper.end, c.upper.begin}));
    EXPECT_EQ(imp::window_output(c.in, c.k, c.s, c.d, true), c.out);
  }
}

TEST(ImportCommonPadding, ValidExplicitAndBadWindows) {
  EXPECT_EQ(imp::resolve_pads(imp::Padding::Valid, 7, 3, 2), (Pads{0, 0}));
  EXPECT_EQ(imp::resolve_pads(imp::Padding::Explicit, 7, 3, 2, 1, {2, 1}), (Pads{2, 1}));
  EXPECT_THROW(imp::resolve_pads(imp::Padding::Explicit, 7, 3, 2, 1, {-1, 0}), Error);
  EXPECT_EQ(imp::window_output(7, 3, 2, 1, false), 3);  // ceil((7 - 3 + 1) / 2)
  EXPECT_EQ(imp::window_output(8, 3, 2, 1, false), 3);
  EXPECT_EQ(imp::window_output(2, 3, 1, 1, false), 0);  // the window does not fit
  EXPECT_EQ(imp::window_output(9, 3, 1, 2, false), 5);  // keff 5
  EXPECT_THROW(imp::same_pads(5, 0, 1), Error);
  EXPECT_THROW(imp::same_pads(5, 3, 0), Error);
  EXPECT_THROW(imp::same_pads(5, 3, 1, 0), Error);
  EXPECT_THROW(imp::same_pads(-1, 3, 1), Error);
  EXPECT_THROW(imp::same_pads(int64_t{1} << 50, 3, 1), Error);
  try {
    imp::same_pads(5, 0, 1);
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "padding");
  }
}

TEST(ImportCommonPadding, TheanoSame) {
  // conv "half": pad keff/2 both sides, output cropped to ceil(in / s)
  EXPECT_EQ(imp::theano_same_conv_pads(7, 3, 1), (Pads{1, 1}));     // out 7
  EXPECT_EQ(imp::theano_same_conv_pads(8, 3, 2), (Pads{1, 0}));     // out 4: 6 + 3 - 8 - 1 = 0
  EXPECT_EQ(imp::theano_same_conv_pads(7, 4, 1), (Pads{2, 1}));     // even kernel: 6 + 4 - 7 - 2
  EXPECT_EQ(imp::theano_same_conv_pads(7, 3, 1, 2), (Pads{2, 2}));  // keff 5
  // pool: pad k-2 (odd k > 2) or k-1, ignore_border, crop to ceil(in / s)
  EXPECT_EQ(imp::theano_same_pool_pads(7, 3, 1), (Pads{1, 1}));  // pad 1, out 7
  EXPECT_EQ(imp::theano_same_pool_pads(8, 2, 2), (Pads{1, 0}));  // pad 1, out 4: 6 + 2 - 8 - 1 < 0
  EXPECT_EQ(imp::theano_same_pool_pads(7, 5, 2), (Pads{3, 1}));  // pad 3, out 4: 6 + 5 - 7 - 3 = 1
}

TEST(ImportCommonPadding, TransposedConvolution) {
  // Keras deconv_length and the pads giving that length
  EXPECT_EQ(imp::deconv_length(4, 3, 2, "same", -1), 8);
  EXPECT_EQ(imp::deconv_length(4, 3, 2, "valid", -1), 9);  // 8 + max(3 - 2, 0)
  EXPECT_EQ(imp::deconv_length(4, 3, 2, "full", -1), 5);   // 8 - (2 + 3 - 2)
  EXPECT_EQ(imp::deconv_length(4, 3, 2, "same", 1), 8);    // 6 + 3 - 2 + 1
  EXPECT_THROW(imp::deconv_length(4, 3, 2, "bogus", -1), Error);
  auto a = imp::conv_transpose_pads(4, 3, 2, 1, 8, false, "same");  // full 9, total 1
  EXPECT_EQ(a.pads, (Pads{0, 1}));
  EXPECT_EQ(a.output_padding, 0);
  auto b = imp::conv_transpose_pads(4, 3, 2, 1, 10, false, "valid");  // total -1
  EXPECT_EQ(b.pads, (Pads{0, 0}));
  EXPECT_EQ(b.output_padding, 1);
  auto c = imp::conv_transpose_pads(4, 3, 2, 1, 8, true, "same");  // begin 1, end 9 - 1 - 8 = 0
  EXPECT_EQ(c.pads, (Pads{1, 0}));
  EXPECT_EQ(c.output_padding, 0);
  // TF Conv2DBackpropInput: SAME pads of the forward conv from the requested size
  auto d = imp::backprop_input_pads(4, 8, 3, 2, 1, true);
  EXPECT_EQ(d.pads, (Pads{0, 1}));
  EXPECT_EQ(d.output_padding, 0);
  auto e = imp::backprop_input_pads(3, 8, 3, 2, 1, false);  // VALID: 2*2 + 3 = 7, one more
  EXPECT_EQ(e.pads, (Pads{0, 0}));
  EXPECT_EQ(e.output_padding, 1);
  // explicit (1, 1): the forward conv from 10 gives (10 + 2 - 3) / 2 + 1 = 5; transposed from
  // 5: 2*4 + 3 - 2 = 9, one cell short of 10
  auto f = imp::backprop_input_pads(5, 10, 3, 2, 1, false, {1, 1});
  EXPECT_EQ(f.pads, (Pads{1, 1}));
  EXPECT_EQ(f.output_padding, 1);
  EXPECT_THROW(imp::backprop_input_pads(3, 20, 3, 2, 1, false), Error);
}

TEST(ImportCommonPerm, Helpers) {
  EXPECT_EQ(imp::identity_perm(3), (imp::Perm{0, 1, 2}));
  EXPECT_TRUE(imp::is_identity_perm({}));
  EXPECT_TRUE(imp::is_identity_perm({0, 1, 2}));
  EXPECT_FALSE(imp::is_identity_perm({1, 0}));
  EXPECT_EQ(imp::inverse_perm({0, 2, 3, 1}), (imp::Perm{0, 3, 1, 2}));
  EXPECT_EQ(imp::inverse_perm({2, 0, 1}), (imp::Perm{1, 2, 0}));
  EXPECT_EQ(imp::channels_last_perm(4), (imp::Perm{0, 2, 3, 1}));
  EXPECT_EQ(imp::channels_last_perm(3), (imp::Perm{0, 2, 1}));
  EXPECT_EQ(imp::channels_last_perm(5), (imp::Perm{0, 2, 3, 4, 1}));
  EXPECT_EQ(imp::apply_perm({2, 3, 4, 5}, {0, 2, 3, 1}), (Shape{2, 4, 5, 3}));
  EXPECT_EQ(imp::apply_perm({2, 3}, {}), (Shape{2, 3}));
  // transpose by a then by b = transpose by compose(a, b)
  const imp::Perm a{0, 2, 3, 1}, b{0, 3, 1, 2};
  EXPECT_TRUE(imp::is_identity_perm(imp::compose_perm(a, b)));
  EXPECT_EQ(imp::compose_perm({1, 2, 0}, {1, 2, 0}), (imp::Perm{2, 0, 1}));
  EXPECT_EQ(imp::apply_perm(imp::apply_perm({2, 3, 4}, {1, 2, 0}), {2, 1, 0}),
            imp::apply_perm({2, 3, 4}, imp::compose_perm({1, 2, 0}, {2, 1, 0})));
  EXPECT_EQ(imp::compose_perm({}, {1, 0}), (imp::Perm{1, 0}));
  EXPECT_TRUE(imp::is_perm({2, 0, 1}, 3));
  EXPECT_FALSE(imp::is_perm({2, 0, 0}, 3));
  EXPECT_FALSE(imp::is_perm({0, 1}, 3));
  EXPECT_FALSE(imp::is_perm({0, 3, 1}, 3));
}

TEST(ImportCommonProblems, OneProblemNamesNodeAndField) {
  imp::ProblemList p;
  EXPECT_NO_THROW(p.throw_if_any("m.pb", {}));
  p.add("Conv2D", "conv", "strides", "strides must have 4 values");
  try {
    p.throw_if_any("m.pb", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), "m.pb");
    EXPECT_EQ(e.node(), "conv");
    EXPECT_EQ(e.field(), "strides");
    EXPECT_EQ(e.message(), "Conv2D: strides must have 4 values");
  }
}

TEST(ImportCommonProblems, Styles) {
  imp::ProblemList p;
  p.add("FancyOp", "a", "op", "op 'FancyOp' is not supported", true);
  p.add("FancyOp", "b", "op", "op 'FancyOp' is not supported", true);
  p.add("Conv2D", "c", "padding", "unknown padding 'X'");
  const std::string listed = p.message({imp::ProblemList::Style::Listed, "the ONNX model", "node"});
  EXPECT_EQ(listed,
            "3 problems importing the ONNX model:\n"
            "  - FancyOp (node 'a') [op]: op 'FancyOp' is not supported\n"
            "  - FancyOp (node 'b') [op]: op 'FancyOp' is not supported\n"
            "  - Conv2D (node 'c') [padding]: unknown padding 'X'");
  const std::string grouped = p.message({imp::ProblemList::Style::Grouped, "", ""});
  EXPECT_EQ(grouped,
            "unsupported ops:\n  - FancyOp ('a', 'b')\n"
            "1 problem(s) importing the graph:\n  - node 'c' (Conv2D): field 'padding': unknown "
            "padding 'X'");
  imp::ProblemList u;
  u.add("FLOOR", "operator 0, output 'a'", "", "unsupported operator", true);
  u.add("DIV", "operator 2, output 'y'", "", "quantized DIV", true);
  const imp::ProblemList::Format located{imp::ProblemList::Style::Located, "", "operator"};
  EXPECT_EQ(u.message(located),
            "2 unsupported operators:\n"
            "  - unsupported operator FLOOR (operator 0, output 'a')\n"
            "  - unsupported operator DIV (operator 2, output 'y'): quantized DIV");
  try {
    u.throw_if_any("m.tflite", located);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.file(), "m.tflite");
    EXPECT_TRUE(e.node().empty());
  }
}

TEST(ImportCommonEmitter, NamesShapesAndErrors) {
  Graph g;
  g.source_file = "m.pb";
  int counter = 0;
  imp::NodeEmitter e(
      g, [&](const std::string& what) { return "n#" + what + std::to_string(counter++); },
      {true, true});
  e.begin("SourceRelu", "n");
  const int x = g.add_input("x", DType::f32, {1, 2, 3, 4});
  const int y = e.emit1("Relu", {x});
  EXPECT_EQ(g.values[static_cast<size_t>(y)].shape, (Shape{1, 2, 3, 4}));
  EXPECT_EQ(g.nodes.back().name, "n#Relu0");
  EXPECT_EQ(g.nodes.back().source_op, "SourceRelu");
  int seen = -1;
  e.after_emit = [&](int node) { seen = node; };
  e.emit1("Relu", {y});
  EXPECT_EQ(seen, 1);
  // a shape error names the file, the source node, the op
  try {
    e.emit1("Add", {x, g.add_input("z", DType::f32, {5})});
    FAIL();
  } catch (const Error& err) {
    EXPECT_EQ(err.file(), "m.pb");
    EXPECT_EQ(err.node(), "n");
    EXPECT_EQ(err.message().rfind("Add: ", 0), 0u) << err.what();
  }
  EXPECT_EQ(imp::checked_numel({2, 3}, "shape"), 6);
  EXPECT_THROW(imp::checked_numel({1 << 20, 1 << 20, 1 << 20}, "shape"), Error);
  EXPECT_THROW(imp::checked_numel({2, -1}, "shape"), Error);
}

TEST(ImportCommonLayout, ViewsAreCachedAndFolded) {
  Graph g;
  imp::NodeEmitter e(g, [&](const std::string& what) { return g.unique_name("op/" + what); }, {});
  e.begin("CONV_2D", "operator 0");
  imp::LayoutViews views(e, /*fold_constants=*/true);
  const int x = g.add_input("x", DType::f32, {1, 3, 4, 5});  // canonical NCHW
  imp::LayoutTensor t{x, imp::channels_last_perm(4)};        // the source sees NHWC
  EXPECT_EQ(views.source_shape(t), (Shape{1, 4, 5, 3}));
  EXPECT_EQ(views.channels_first(t, true), x);  // already channels-first
  const int s = views.source(t);
  EXPECT_EQ(g.values[static_cast<size_t>(s)].shape, (Shape{1, 4, 5, 3}));
  EXPECT_EQ(views.source(t), s);  // cached
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(views.in_layout(t, imp::channels_last_perm(4)), x);
  EXPECT_EQ(imp::LayoutViews::canon_axis(t, 3), 1);  // source channels = canonical axis 1
  // constants are transposed at import
  const int c = g.add_constant("w", Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6}));
  const int ct = views.view(imp::LayoutTensor{c, {}}, {1, 0});
  ASSERT_TRUE(g.values[static_cast<size_t>(ct)].is_constant());
  EXPECT_EQ(g.values[static_cast<size_t>(ct)].shape, (Shape{3, 2}));
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_THROW(views.view(t, {0, 1}), Error);  // wrong rank
  auto r = imp::LayoutViews::channels_first_result(x, 4, true);
  EXPECT_EQ(r.perm, imp::channels_last_perm(4));
  EXPECT_TRUE(imp::LayoutViews::channels_first_result(x, 2, true).perm.empty());
}

TEST(ImportCommonTopoOrder, StableAndCycles) {
  // 0 <- 2, 1 free, 2 <- 3, 3 free; 4 <-> 5 a cycle, 6 behind it; ties in file order
  std::vector<std::set<int>> deps{{2}, {}, {3}, {}, {5}, {4}, {5}};
  std::vector<bool> placed;
  EXPECT_EQ(stable_topo_order(deps, placed), (std::vector<int>{1, 3, 2, 0}));
  EXPECT_EQ(placed, (std::vector<bool>{true, true, true, true, false, false, false}));
  std::vector<std::set<int>> self{{0}, {0}};  // self-edges are ignored
  EXPECT_EQ(stable_topo_order(self, placed), (std::vector<int>{0, 1}));
}
