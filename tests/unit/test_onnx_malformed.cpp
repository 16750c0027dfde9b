// The ONNX importer on malformed, hostile and legacy inputs: every problem is an
// anvil::Error that names the file, node and field; nothing crashes.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "anvil/error.h"
#include "anvil/graph.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "anvil/session.h"
#include "import/onnx/onnx_builder.h"

namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("anvil_onnx_malformed_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

onnx::ModelProto new_model(int opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.set_producer_name("anvil-test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

void add_value_info(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                    const std::string& name, const std::vector<int64_t>& dims,
                    int elem = onnx::TensorProto::FLOAT) {
  auto* v = list->Add();
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* sh = tt->mutable_shape();
  for (int64_t d : dims) sh->add_dim()->set_dim_value(d);
}

onnx::NodeProto* add_node(onnx::ModelProto& m, const std::string& op, const std::string& name,
                          const std::vector<std::string>& ins,
                          const std::vector<std::string>& outs) {
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& i : ins) n->add_input(i);
  for (const auto& o : outs) n->add_output(o);
  return n;
}

void set_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void set_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
void set_float(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void set_string(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

onnx::TensorProto* add_float_init(onnx::ModelProto& m, const std::string& name,
                                  const std::vector<int64_t>& dims, const std::vector<float>& v) {
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (float x : v) t->add_float_data(x);
  return t;
}

std::string save(const onnx::ModelProto& m, const std::string& name) {
  std::string path = temp_path(name);
  std::string bytes;
  m.SerializeToString(&bytes);
  write_bytes(path, bytes);
  return path;
}

// x (2,3) + y (2,3) -> z
onnx::ModelProto add_model() {
  auto m = new_model();
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2, 3});
  add_value_info(m.mutable_graph()->mutable_input(), "y", {2, 3});
  add_value_info(m.mutable_graph()->mutable_output(), "z", {2, 3});
  add_node(m, "Add", "add0", {"x", "y"}, {"z"});
  return m;
}

// Imports and returns the error message; fails the test when no anvil::Error is thrown.
std::string import_error(const std::string& path) {
  try {
    anvil::import_model({path});
  } catch (const anvil::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an anvil::Error: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "import of " << path << " succeeded, expected an anvil::Error";
  return {};
}

bool has_op(const std::string& op) { return anvil::OpRegistry::global().find(op) != nullptr; }

TEST(OnnxMalformed, ValidModelRunsAndKeepsProvenance) {
  if (!has_op("Add")) GTEST_SKIP() << "op Add not registered yet";
  std::string path = save(add_model(), "add.onnx");
  anvil::Graph g = anvil::import_model({path});
  EXPECT_EQ(g.framework, "onnx");
  ASSERT_EQ(g.inputs.size(), 2u);
  ASSERT_EQ(g.outputs.size(), 1u);
  const anvil::Value& z = g.values[static_cast<size_t>(g.outputs[0])];
  EXPECT_EQ(z.name, "z");
  EXPECT_EQ(z.prov.framework, "onnx");
  EXPECT_EQ(z.prov.source_name, "z");
  EXPECT_TRUE(z.prov.to_source.empty());
  ASSERT_EQ(g.find_node("add0") >= 0, true);
  anvil::Session s(std::move(g));
  auto x = anvil::Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto y = anvil::Tensor::from_vector<float>({2, 3}, {10, 20, 30, 40, 50, 60});
  auto out = s.run({{"x", x}, {"y", y}});
  ASSERT_EQ(out.count("z"), 1u);
  std::vector<double> want = {11, 22, 33, 44, 55, 66};
  EXPECT_EQ(out["z"].to_doubles(), want);
}

TEST(OnnxMalformed, TruncatedFile) {
  auto m = add_model();
  add_float_init(m, "w", {64}, std::vector<float>(64, 1.0f));
  std::string bytes;
  m.SerializeToString(&bytes);
  std::string path = temp_path("truncated.onnx");
  write_bytes(path, bytes.substr(0, bytes.size() * 2 / 3));
  std::string msg = import_error(path);
  EXPECT_NE(msg.find("truncated.onnx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(OnnxMalformed, GarbageBytes) {
  std::mt19937 rng(42);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  std::string path = temp_path("garbage.onnx");
  write_bytes(path, bytes);
  std::string msg = import_error(path);
  EXPECT_NE(msg.find("garbage.onnx"), std::string::npos) << msg;
  // Also: an empty file, and text.
  write_bytes(path, "");
  EXPECT_NE(import_error(path).find("empty"), std::string::npos);
  write_bytes(path, "this is not a protobuf at all\n");
  EXPECT_NE(import_error(path).find("garbage.onnx"), std::string::npos);
}

TEST(OnnxMalformed, MissingGraphInputOnRun) {
  if (!has_op("Add")) GTEST_SKIP() << "op Add not registered yet";
  anvil::Session s(anvil::import_model({save(add_model(), "add_missing.onnx")}));
  auto x = anvil::Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  try {
    s.run({{"x", x}});
    FAIL() << "expected an anvil::Error";
  } catch (const anvil::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'y'"), std::string::npos) << e.what();
  }
}

TEST(OnnxMalformed, WrongInputShapeOnRun) {
  if (!has_op("Add")) GTEST_SKIP() << "op Add not registered yet";
  anvil::Session s(anvil::import_model({save(add_model(), "add_shape.onnx")}));
  auto x = anvil::Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  auto y = anvil::Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  try {
    s.run({{"x", x}, {"y", y}});
    FAIL() << "expected an anvil::Error";
  } catch (const anvil::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("(3, 2)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(2, 3)"), std::string::npos) << msg;
  }
}

// An ONNX op is supported when a canonical op of its name is registered or the converter
// table has it; the table only adds the ops that have no canonical op of their own name
// (Constant, and Scatter which becomes ScatterElements).
TEST(OnnxConverterTable, OnlyConstantAndScatterAddSupportedOps) {
  std::vector<std::string> extra;
  for (const auto& op : anvil::onnx_import::converter_ops())
    if (!anvil::OpRegistry::global().find(op)) extra.push_back(op);
  EXPECT_EQ(extra, (std::vector<std::string>{"Constant", "Scatter"}));
  EXPECT_NE(anvil::onnx_import::find_converter("Upsample"), nullptr);
  EXPECT_EQ(anvil::onnx_import::find_converter("Relu"), nullptr);  // the generic attribute copy
}

TEST(OnnxMalformed, UnknownOpNamesNode) {
  auto m = new_model();
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {2});
  add_node(m, "NoSuchOpAnywhere", "mystery_node", {"x"}, {"y"});
  std::string msg = import_error(save(m, "unknown1.onnx"));
  EXPECT_NE(msg.find("NoSuchOpAnywhere"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mystery_node"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown1.onnx"), std::string::npos) << msg;
}

TEST(OnnxMalformed, TwoUnknownOpsBothListed) {
  auto m = new_model();
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2});
  add_value_info(m.mutable_graph()->mutable_output(), "z", {2});
  add_node(m, "FirstMissingOp", "first_node", {"x"}, {"y"});
  add_node(m, "SecondMissingOp", "second_node", {"y"}, {"z"});
  std::string msg = import_error(save(m, "unknown2.onnx"));
  for (const char* s : {"FirstMissingOp", "first_node", "SecondMissingOp", "second_node"})
    EXPECT_NE(msg.find(s), std::string::npos) << s << " missing from: " << msg;
  // The second node's input comes from the failed first node: no extra "dangling" noise.
  EXPECT_EQ(msg.find("not produced"), std::string::npos) << msg;
}

TEST(OnnxMalformed, MappedSourceOpIsHonoured) {
  if (!has_op("Relu")) GTEST_SKIP() << "op Relu not registered yet";
  anvil::map_source_op("onnx", "MyCustomRelu", "Relu");
  auto m = new_model();
  add_value_info(m.mutable_graph()->mutable_input(), "x", {3});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {3});
  auto* n = add_node(m, "MyCustomRelu", "custom", {"x"}, {"y"});
  n->set_domain("com.example");
  anvil::Graph g = anvil::import_model({save(m, "mapped.onnx")});
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "Relu");
  EXPECT_EQ(g.nodes[0].source_op, "MyCustomRelu");
  anvil::Session s(std::move(g));
  auto out = s.run({{"x", anvil::Tensor::from_vector<float>({3}, {-1, 0, 2})}});
  EXPECT_EQ(out["y"].to_doubles(), (std::vector<double>{0, 0, 2}));
}

TEST(OnnxMalformed, RawDataSizeMismatch) {
  auto m = add_model();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("weights");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(2);
  t->add_dims(3);
  t->set_raw_data(std::string(20, '\0'));  // 6 floats need 24 bytes
  std::string msg = import_error(save(m, "rawsize.onnx"));
  EXPECT_NE(msg.find("weights"), std::string::npos) << msg;
  EXPECT_NE(msg.find("raw_data"), std::string::npos) << msg;
  EXPECT_NE(msg.find("20"), std::string::npos) << msg;
  EXPECT_NE(msg.find("24"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rawsize.onnx"), std::string::npos) << msg;
}

TEST(OnnxMalformed, TypedFieldCountMismatch) {
  auto m = add_model();
  add_float_init(m, "bias", {4}, {1, 2, 3});
  std::string msg = import_error(save(m, "typedsize.onnx"));
  EXPECT_NE(msg.find("bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("float_data"), std::string::npos) << msg;
}

TEST(OnnxMalformed, HostileDims) {
  {
    auto m = add_model();
    auto* t = add_float_init(m, "neg", {}, {});
    t->add_dims(-5);
    std::string msg = import_error(save(m, "negdim.onnx"));
    EXPECT_NE(msg.find("neg"), std::string::npos) << msg;
    EXPECT_NE(msg.find("negative"), std::string::npos) << msg;
  }
  {
    auto m = add_model();
    auto* t = add_float_init(m, "huge", {}, {});
    for (int i = 0; i < 4; ++i) t->add_dims(int64_t{1} << 20);  // 2^80 elements
    std::string msg = import_error(save(m, "overflow.onnx"));
    EXPECT_NE(msg.find("huge"), std::string::npos) << msg;
  }
  {
    auto m = add_model();
    auto* t = m.mutable_graph()->add_initializer();
    t->set_name("big");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(int64_t{1} << 40);  // plausible-looking but no data behind it
    t->set_raw_data("abcd");
    std::string msg = import_error(save(m, "bigdim.onnx"));
    EXPECT_NE(msg.find("big"), std::string::npos) << msg;
  }
  {
    auto m = new_model();
    add_value_info(m.mutable_graph()->mutable_input(), "x", {2, -7});
    add_value_info(m.mutable_graph()->mutable_output(), "y", {2});
    add_node(m, "Relu", "r", {"x"}, {"y"});
    std::string msg = import_error(save(m, "neginput.onnx"));
    EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("negative"), std::string::npos) << msg;
  }
}

TEST(OnnxMalformed, DanglingNodeInput) {
  auto m = new_model();
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {2});
  add_node(m, "Add", "adder", {"x", "nowhere"}, {"y"});
  std::string msg = import_error(save(m, "dangling.onnx"));
  EXPECT_NE(msg.find("adder"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nowhere"), std::string::npos) << msg;
}

TEST(OnnxMalformed, MissingGraphOutput) {
  auto m = add_model();
  add_value_info(m.mutable_graph()->mutable_output(), "ghost", {2});
  std::string msg = import_error(save(m, "ghost.onnx"));
  EXPECT_NE(msg.find("ghost"), std::string::npos) << msg;
}

TEST(OnnxMalformed, ExternalDataMissingAndPresent) {
  auto m = add_model();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("ext");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(2);
  t->add_dims(3);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value("ext_weights.bin");
  // Use it: z2 = z + ext.
  add_node(m, "Add", "add_ext", {"z", "ext"}, {"z2"});
  m.mutable_graph()->mutable_output()->Clear();
  add_value_info(m.mutable_graph()->mutable_output(), "z2", {2, 3});
  std::string path = save(m, "external.onnx");
  fs::remove(fs::path(path).parent_path() / "ext_weights.bin");
  std::string msg = import_error(path);
  EXPECT_NE(msg.find("ext_weights.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ext"), std::string::npos) << msg;

  std::vector<float> w = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f};
  write_bytes((fs::path(path).parent_path() / "ext_weights.bin").string(),
              std::string(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float)));
  if (!has_op("Add")) GTEST_SKIP() << "op Add not registered yet";
  anvil::Session s(anvil::import_model({path}));
  auto one = anvil::Tensor::from_vector<float>({2, 3}, {1, 1, 1, 1, 1, 1});
  auto out = s.run({{"x", one}, {"y", one}});
  EXPECT_EQ(out["z2"].to_doubles(), (std::vector<double>{2.5, 3.5, 4.5, 5.5, 6.5, 7.5}));

  // A location escaping the model's folder is refused.
  kv->set_value("../escape.bin");
  EXPECT_NE(import_error(save(m, "external2.onnx")).find("relative path"), std::string::npos);
}

TEST(OnnxMalformed, UnsupportedAttributeListed) {
  if (!has_op("Relu")) GTEST_SKIP() << "op Relu not registered yet";
  auto m = new_model();
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {2});
  auto* n = add_node(m, "Relu", "relu_weird", {"x"}, {"y"});
  set_int(n, "bogus_attribute", 3);
  std::string msg = import_error(save(m, "badattr.onnx"));
  EXPECT_NE(msg.find("bogus_attribute"), std::string::npos) << msg;
  EXPECT_NE(msg.find("relu_weird"), std::string::npos) << msg;
}

// ---- legacy forms and auto_pad, checked against hand-computed values ----

TEST(OnnxMalformed, AutoPadSameUpperBecomesExplicitPads) {
  if (!has_op("MaxPool")) GTEST_SKIP() << "op MaxPool not registered yet";
  auto m = new_model(11);
  add_value_info(m.mutable_graph()->mutable_input(), "x", {1, 1, 5, 5});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {1, 1, 3, 3});
  auto* n = add_node(m, "MaxPool", "pool", {"x"}, {"y"});
  set_ints(n, "kernel_shape", {2, 3});
  set_ints(n, "strides", {2, 2});
  set_string(n, "auto_pad", "SAME_UPPER");
  anvil::Graph g = anvil::import_model({save(m, "autopad.onnx")});
  int ni = g.find_node("pool");
  ASSERT_GE(ni, 0);
  const auto& a = g.nodes[static_cast<size_t>(ni)].attrs;
  EXPECT_FALSE(a.has("auto_pad"));
  // out = ceil(5/2) = 3; total = (3-1)*2 + k - 5: k=2 -> 1 (0 before, 1 after); k=3 -> 2 (1, 1).
  EXPECT_EQ(a.get_ints("pads"), (std::vector<int64_t>{0, 1, 1, 1}));
}

TEST(OnnxMalformed, AutoPadSameLowerPutsExtraPadFirst) {
  if (!has_op("Conv")) GTEST_SKIP() << "op Conv not registered yet";
  auto m = new_model(11);
  add_value_info(m.mutable_graph()->mutable_input(), "x", {1, 1, 4, 4});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {1, 1, 4, 4});
  add_float_init(m, "w", {1, 1, 2, 2}, {1, 1, 1, 1});
  auto* n = add_node(m, "Conv", "conv", {"x", "w"}, {"y"});
  set_string(n, "auto_pad", "SAME_LOWER");
  anvil::Graph g = anvil::import_model({save(m, "autopad_lower.onnx")});
  const auto& a = g.nodes[static_cast<size_t>(g.find_node("conv"))].attrs;
  // k=2, s=1: total = 1 per axis; SAME_LOWER puts it at the beginning.
  EXPECT_EQ(a.get_ints("pads"), (std::vector<int64_t>{1, 1, 0, 0}));
}

TEST(OnnxMalformed, LegacySoftmaxCoercesTo2D) {
  if (!has_op("Softmax") || !has_op("Flatten") || !has_op("Reshape"))
    GTEST_SKIP() << "Softmax/Flatten/Reshape not registered yet";
  auto m = new_model(11);
  add_value_info(m.mutable_graph()->mutable_input(), "x", {1, 2, 2});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {1, 2, 2});
  auto* n = add_node(m, "Softmax", "sm", {"x"}, {"y"});
  set_int(n, "axis", 1);  // softmax over the 4 values of each batch row
  anvil::Session s(anvil::import_model({save(m, "softmax11.onnx")}));
  auto out = s.run({{"x", anvil::Tensor::from_vector<float>({1, 2, 2}, {0, 1, 2, 3})}});
  const auto& y = out["y"];
  ASSERT_EQ(y.shape(), (anvil::Shape{1, 2, 2}));
  double den = 1 + std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.get(i), std::exp(double(i)) / den, 1e-6);
}

TEST(OnnxMalformed, LegacyClipAndBroadcastAttributes) {
  if (!has_op("Clip") || !has_op("Add")) GTEST_SKIP() << "Clip/Add not registered yet";
  // opset 6: Add(broadcast=1, axis=1) of a (2,3,2) tensor and a (3) vector, then Clip(min, max).
  auto m = new_model(6);
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2, 3, 2});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {2, 3, 2});
  add_float_init(m, "b", {3}, {10, 20, 30});
  auto* add = add_node(m, "Add", "add", {"x", "b"}, {"s"});
  set_int(add, "broadcast", 1);
  set_int(add, "axis", 1);
  auto* clip = add_node(m, "Clip", "clip", {"s"}, {"y"});
  set_float(clip, "min", 15.0f);
  set_float(clip, "max", 31.0f);
  anvil::Session s(anvil::import_model({save(m, "legacy6.onnx")}));
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i);
  auto out = s.run({{"x", anvil::Tensor::from_vector<float>({2, 3, 2}, x)}});
  // x[n,c,w] + b[c], clipped to [15, 31]:
  // n=0: c0 {10,11} c1 {22,23} c2 {34,35}; n=1: c0 {16,17} c1 {28,29} c2 {40,41}
  std::vector<double> want = {15, 15, 22, 23, 31, 31, 16, 17, 28, 29, 31, 31};
  EXPECT_EQ(out["y"].to_doubles(), want);
}

TEST(OnnxMalformed, LegacyReshapeAndSqueezeAttributes) {
  if (!has_op("Reshape") || !has_op("Squeeze"))
    GTEST_SKIP() << "Reshape/Squeeze not registered yet";
  auto m = new_model(1);
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2, 3});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {3, 2});
  auto* r = add_node(m, "Reshape", "reshape", {"x"}, {"r"});
  set_ints(r, "shape", {3, 1, 2});
  auto* sq = add_node(m, "Squeeze", "squeeze", {"r"}, {"y"});
  set_ints(sq, "axes", {1});
  anvil::Session s(anvil::import_model({save(m, "legacy1.onnx")}));
  auto out = s.run({{"x", anvil::Tensor::from_vector<float>({2, 3}, {1, 2, 3, 4, 5, 6})}});
  EXPECT_EQ(out["y"].shape(), (anvil::Shape{3, 2}));
  EXPECT_EQ(out["y"].to_doubles(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(OnnxMalformed, LegacyUpsampleScalesAttribute) {
  if (!has_op("Resize")) GTEST_SKIP() << "op Resize not registered yet";
  auto m = new_model(7);
  add_value_info(m.mutable_graph()->mutable_input(), "x", {1, 1, 2, 2});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {1, 1, 4, 4});
  auto* n = add_node(m, "Upsample", "up", {"x"}, {"y"});
  auto* a = n->add_attribute();
  a->set_name("scales");
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float f : {1.0f, 1.0f, 2.0f, 2.0f}) a->add_floats(f);
  set_string(n, "mode", "nearest");
  anvil::Session s(anvil::import_model({save(m, "upsample7.onnx")}));
  auto out = s.run({{"x", anvil::Tensor::from_vector<float>({1, 1, 2, 2}, {1, 2, 3, 4})}});
  // Nearest upsampling: out[i][j] = in[i / 2][j / 2].
  std::vector<double> want = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
  EXPECT_EQ(out["y"].to_doubles(), want);
}

TEST(OnnxMalformed, LegacyDropoutAndReduceAttributes) {
  if (!has_op("ReduceMean") || !has_op("Dropout"))
    GTEST_SKIP() << "ReduceMean/Dropout not registered yet";
  // opset 6: Dropout(is_test=1, ratio) then ReduceMean(axes=[1], keepdims=0) with axes as
  // attribute.
  auto m = new_model(6);
  add_value_info(m.mutable_graph()->mutable_input(), "x", {2, 3});
  add_value_info(m.mutable_graph()->mutable_output(), "y", {2});
  auto* d = add_node(m, "Dropout", "drop", {"x"}, {"d"});
  set_int(d, "is_test", 1);
  set_float(d, "ratio", 0.25f);
  auto* r = add_node(m, "ReduceMean", "mean", {"d"}, {"y"});
  set_ints(r, "axes", {1});
  set_int(r, "keepdims", 0);
  anvil::Session s(anvil::import_model({save(m, "legacy_dropout.onnx")}));
  auto out = s.run({{"x", anvil::Tensor::from_vector<float>({2, 3}, {1, 2, 6, 4, 5, 9})}});
  EXPECT_EQ(out["y"].to_doubles(), (std::vector<double>{3, 6}));
}

TEST(OnnxMalformed, SubgraphAttributeIsListedNotCrashed) {
  auto m = new_model();
  add_value_info(m.mutable_graph()->mutable_input(), "c", {1}, onnx::TensorProto::BOOL);
  add_value_info(m.mutable_graph()->mutable_output(), "y", {1});
  auto* n = add_node(m, "If", "branchy", {"c"}, {"y"});
  auto* a = n->add_attribute();
  a->set_name("then_branch");
  a->set_type(onnx::AttributeProto::GRAPH);
  a->mutable_g()->set_name("then");
  std::string msg = import_error(save(m, "if.onnx"));
  EXPECT_NE(msg.find("branchy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("then_branch"), std::string::npos) << msg;
}

TEST(OnnxMalformed, RecognisedByContentWithoutExtension) {
  if (!has_op("Add")) GTEST_SKIP() << "op Add not registered yet";
  anvil::Graph g = anvil::import_model({save(add_model(), "model_without_extension.bin")});
  EXPECT_EQ(g.framework, "onnx");
  EXPECT_EQ(g.nodes.size(), 1u);
}

TEST(OnnxMalformed, HalfAndBfloat16InInt32Data) {
  if (!has_op("Identity")) GTEST_SKIP() << "op Identity not registered yet";
  auto m = new_model();
  auto* h = m.mutable_graph()->add_initializer();
  h->set_name("h");
  h->set_data_type(onnx::TensorProto::FLOAT16);
  h->add_dims(2);
  h->add_int32_data(0x3C00);  // 1.0
  h->add_int32_data(0xC000);  // -2.0
  auto* b = m.mutable_graph()->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::BFLOAT16);
  b->add_dims(1);
  b->add_int32_data(0x3FC0);  // 1.5
  add_node(m, "Identity", "id_h", {"h"}, {"yh"});
  add_node(m, "Identity", "id_b", {"b"}, {"yb"});
  add_value_info(m.mutable_graph()->mutable_output(), "yh", {2}, onnx::TensorProto::FLOAT16);
  add_value_info(m.mutable_graph()->mutable_output(), "yb", {1}, onnx::TensorProto::BFLOAT16);
  anvil::Session s(anvil::import_model({save(m, "halfs.onnx")}));
  auto out = s.run({});
  EXPECT_EQ(out["yh"].dtype(), anvil::DType::f16);
  EXPECT_EQ(out["yh"].to_doubles(), (std::vector<double>{1.0, -2.0}));
  EXPECT_EQ(out["yb"].dtype(), anvil::DType::bf16);
  EXPECT_EQ(out["yb"].to_doubles(), (std::vector<double>{1.5}));
}

}  // namespace
