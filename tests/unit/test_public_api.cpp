// The public API the tools are built on (include/anvil/session.h, pipeline.h,
// summary.h): precision names, the backends of this build, the named pipeline (prepare_graph,
// graph_with_shapes), source shapes and permutations; and core's one ONNX dtype-code table.
#include <gtest/gtest.h>

#include <algorithm>

#include "anvil/error.h"
#include "anvil/pipeline.h"
#include "anvil/session.h"
#include "anvil/summary.h"
#include "core/onnx_dtype.h"
#include "core/permutation.h"

namespace anvil {
namespace {

TEST(PublicApi, PrecisionNamesRoundTrip) {
  for (Precision p : {Precision::fp32, Precision::fp16, Precision::bf16})
    EXPECT_EQ(parse_precision(precision_name(p)), p);
  EXPECT_STREQ(precision_name(Precision::bf16), "bf16");
  EXPECT_EQ(SessionOptions{}.precision, Precision::fp32);
}

TEST(PublicApi, UnknownPrecisionNamesTheField) {
  try {
    parse_precision("fp8");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "precision");
    EXPECT_NE(std::string(e.what()).find("fp32, fp16 or bf16, not 'fp8'"), std::string::npos)
        << e.what();
  }
}

TEST(PublicApi, BackendNamesAndCheck) {
  std::vector<std::string> names = backend_names();
  for (const char* b : {"reference", "cpu"})
    EXPECT_NE(std::find(names.begin(), names.end(), b), names.end()) << b;
  EXPECT_NO_THROW(check_backend("reference"));
  try {
    check_backend("no-such-backend");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.field(), "backend");
    EXPECT_NE(std::string(e.what()).find("available: "), std::string::npos) << e.what();
  }
}

// x (2, 3) -> Shape -> Reshape(x, shape): the Reshape's shape is computed, so plain shape
// inference fails and graph_with_shapes folds the Shape node away.
Graph computed_shape_graph() {
  Graph g;
  int x = g.add_input("x", DType::f32, {2, 3});
  int s = g.nodes[static_cast<size_t>(g.add_node("Shape", "shape", {x}))].outputs[0];
  int r = g.nodes[static_cast<size_t>(g.add_node("Reshape", "reshape", {x, s}))].outputs[0];
  g.outputs = {g.nodes[static_cast<size_t>(g.add_node("Relu", "relu", {r}))].outputs[0]};
  return g;
}

TEST(PublicApi, GraphWithShapesInfersOrFolds) {
  Graph plain;
  int x = plain.add_input("x", DType::f32, {2, 3});
  plain.outputs = {
      plain.nodes[static_cast<size_t>(plain.add_node("Relu", "relu", {x}))].outputs[0]};
  Graph a = graph_with_shapes(plain);
  ASSERT_EQ(a.nodes.size(), 1u);
  EXPECT_TRUE(a.values[static_cast<size_t>(a.outputs[0])].shape_known);
  EXPECT_EQ(a.values[static_cast<size_t>(a.outputs[0])].shape, (Shape{2, 3}));

  Graph b = graph_with_shapes(computed_shape_graph());
  for (const auto& n : b.nodes) EXPECT_NE(n.op, "Shape") << "the Shape node is folded";
  EXPECT_EQ(b.values[static_cast<size_t>(b.outputs[0])].shape, (Shape{2, 3}));
}

TEST(PublicApi, PrepareGraphSortsValidatesAndFolds) {
  Graph g = computed_shape_graph();
  std::swap(g.nodes[0], g.nodes[2]);  // out of order: prepare sorts it again
  g.relink();
  prepare_graph(g);
  EXPECT_EQ(g.values[static_cast<size_t>(g.outputs[0])].shape, (Shape{2, 3}));
  EXPECT_EQ(g.nodes.back().name, "relu");

  Graph bad = computed_shape_graph();
  bad.nodes[2].op = "NoSuchOp";
  try {
    prepare_graph(bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.node(), "relu");
  }
}

TEST(PublicApi, SourceShapeAndInversePermutation) {
  Value v;
  v.shape = {1, 3, 8, 6};           // canonical NCHW
  v.prov.to_source = {0, 2, 3, 1};  // -> NHWC
  EXPECT_EQ(source_shape(v), (Shape{1, 8, 6, 3}));
  v.prov.to_source = {0, 2, 3, 4};  // an index out of range: the canonical shape
  EXPECT_EQ(source_shape(v), v.shape);
  EXPECT_EQ(inverse_permutation({0, 2, 3, 1}), (std::vector<int>{0, 3, 1, 2}));
  EXPECT_THROW(inverse_permutation({0, 0}), Error);
  Tensor t(DType::f32, {2, 3, 4});
  for (int64_t i = 0; i < t.numel(); ++i) t.set(i, static_cast<double>(i));
  Tensor back = transpose(transpose(t, {2, 0, 1}), inverse_permutation({2, 0, 1}));
  ASSERT_EQ(back.shape(), t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(back.get(i), t.get(i));
}

TEST(CoreOnnxDType, CodesRoundTrip) {
  for (DType d : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i8, DType::u8, DType::i16,
                  DType::i32, DType::i64, DType::boolean})
    EXPECT_EQ(dtype_from_onnx_code(onnx_dtype_code(d)), d) << dtype_name(d);
  EXPECT_EQ(onnx_dtype_code(DType::f32), 1);
  EXPECT_EQ(onnx_dtype_code(DType::bf16), 16);
  EXPECT_FALSE(dtype_from_onnx_code(8).has_value());  // STRING
  EXPECT_FALSE(dtype_from_onnx_code(0).has_value());
}

}  // namespace
}  // namespace anvil
