// The TensorFlow importer: a frozen GraphDef (.pb binary or .pbtxt text) -> anvil::Graph.
//
// Files: one GraphDef, read with our own proto subset (graph.proto, package anvil_tf). The
// format is recognised by content: a binary or text GraphDef whose nodes all have a valid
// name and op.
//
// Layout. TF graphs are NHWC (data_format may say NCHW per op). Canonical ops are NCHW, so
// every TF tensor is held as (canonical value, perm): TF's view of it is
// transpose(value, perm). Layout-sensitive ops (Conv2D, pools, FusedBatchNorm, Resize*,
// DepthToSpace, LRN, ...) read their input channels-first (a Transpose is inserted only when
// the held value is not already in that order) and leave a channels-first result with perm
// NHWC. Elementwise ops, reductions, Softmax, Concat, Split, Slice, Pad, Tile, Cast work on
// the held layout (axes and constants are mapped through perm), so chains of them add no
// Transposes. Ops whose meaning depends on element order (Reshape, Squeeze, ExpandDims,
// StridedSlice, Pack, Gather, MatMul, ...) first bring the value back to TF's own layout: a
// Reshape of NHWC data keeps TF's element order. TF's Transpose only changes perm.
//
// Names. Every TF tensor gets its own canonical value named as TF names it ("node" for output
// 0, "node:i" for output i) with Provenance {framework "tensorflow", source_name that name,
// output_index i, to_source perm}, so any node can be fetched (Session::run, anvil run
// --output NODE[:i]) and comes back in TF's layout. Helper values and nodes carry '#' in their
// names, which TF node names cannot contain. Default outputs are the graph's sinks: nodes
// whose outputs no node reads (Const, NoOp, Placeholder and the like excepted).
//
// Shape-only subgraphs (Shape -> StridedSlice -> Pack -> Reshape, Rank -> Range, ...) are
// evaluated at import with the reference kernels (shapes are static), so parameters that TF
// computes at run time become constants of the canonical ops.
//
// Ops. This file is the driver (reading the file, ordering and walking the nodes, naming,
// constants and placeholders, the default outputs); every op is one converter in a
// tf_ops_*.cpp file, registered under its TF name in the table of converters(), which is also
// the list of supported ops (ops a user mapped with map_source_op("tensorflow", ...) come
// after it). Unsupported ops and node problems are collected and reported together in one
// anvil::Error naming each node (and the attribute or input at fault).
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <filesystem>
#include <limits>

#include "anvil/error.h"
#include "core/file_io.h"
#include "import/common/topo_order.h"
#include "import/tensorflow/tf_builder.h"

namespace anvil::tf_import {

constexpr uint64_t kMaxFileBytes = uint64_t{2047} << 20;

const ConverterTable& converters() {
  static const ConverterTable table = [] {
    ConverterTable t;
    t["Const"] = [](TfBuilder& b) {
      const auto* a = b.attr("value");
      if (!a || a->value_case() != anvil_tf::AttrValue::kTensor)
        fail("value", "Const without a tensor 'value'");
      Tensor c = tensor_from_proto(a->tensor(), "value");
      return std::vector<TT>{TT{b.g.add_constant(b.helper_name("const"), c), {}}};
    };
    t["Placeholder"] = [](TfBuilder& b) { return b.placeholder(); };
    add_nn_converters(t);
    add_math_converters(t);
    add_shape_converters(t);
    add_slice_converters(t);
    add_image_converters(t);
    add_3d_converters(t);
    add_extra_converters(t);
    add_array_converters(t);
    add_imgproc_converters(t);
    add_misc_converters(t);
    return t;
  }();
  return table;
}

namespace {

// ------------------------------------------------------------------------------ names

bool valid_node_name(const std::string& s) {
  if (s.empty()) return false;
  auto ok_first = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_';
  };
  auto ok = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
           c == '-' || c == '>';
  };
  if (!ok_first(s[0])) return false;
  return std::all_of(s.begin() + 1, s.end(), ok);
}

bool valid_op_name(const std::string& s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

std::string tensor_key(const std::string& node, int i) {
  return i == 0 ? node : node + ":" + std::to_string(i);
}

// "node", "node:i", "^node" -> (node, index, control)
struct InputRef {
  std::string node;
  int index = 0;
  bool control = false;
};
bool parse_input(const std::string& s, InputRef& r) {
  std::string t = s;
  if (!t.empty() && t[0] == '^') {
    r.control = true;
    t = t.substr(1);
  }
  auto colon = t.rfind(':');
  if (colon != std::string::npos) {
    std::string tail = t.substr(colon + 1);
    if (tail.empty() || tail.size() > 6 || !std::all_of(tail.begin(), tail.end(), ::isdigit))
      return false;
    r.index = std::stoi(tail);
    t = t.substr(0, colon);
  }
  r.node = t;
  return !t.empty();
}

}  // namespace

// ------------------------------------------------------------------------------ the driver

TfBuilder::TfBuilder(const anvil_tf::GraphDef& gd, std::string file, const ImportOptions& o)
    : opt(o),
      gd_(gd),
      file_(std::move(file)),
      emitter_(
          g, [this](const std::string& what) { return helper_name(what); },
          imp::NodeEmitter::Options{true, true}),
      views_(emitter_, false) {
  emitter_.after_emit = [this](int node) { fold(node); };
}

// Gives each TF output its own value named after the TF tensor, with TF provenance.
void TfBuilder::bind(const std::vector<TT>& outs) {
  for (size_t i = 0; i < outs.size(); ++i) {
    TT t = outs[i];
    if (t.v < 0) continue;
    if (!t.perm.empty() && is_identity_perm(t.perm)) t.perm.clear();
    const std::string key = tensor_key(n->name(), static_cast<int>(i));
    const bool fresh = static_cast<size_t>(t.v) >= first_value_ && !bound_.count(t.v);
    // Cached views may be reused by later nodes; they keep working under the TF name.
    if (fresh) {
      g.values[static_cast<size_t>(t.v)].name = key;
      int p = val(t.v).producer;
      if (p >= 0 && static_cast<size_t>(p) >= first_node_ &&
          !named_nodes_.count(static_cast<size_t>(p)) &&
          g.nodes[static_cast<size_t>(p)].outputs.size() == 1) {
        bool taken = false;
        for (size_t k : named_nodes_) taken |= g.nodes[k].name == n->name();
        if (!taken) {
          g.nodes[static_cast<size_t>(p)].name = n->name();
          named_nodes_.insert(static_cast<size_t>(p));
        }
      }
    } else {
      bool taken = false;
      for (size_t k : named_nodes_) taken |= g.nodes[k].name == n->name();
      std::string nn = taken ? helper_name("Identity") : n->name();
      int ni = g.add_node("Identity", nn, {t.v}, {}, 1, {key});
      g.nodes[static_cast<size_t>(ni)].source_op = n->op();
      g.infer_node(ni);
      if (!taken) named_nodes_.insert(static_cast<size_t>(ni));
      if (const Tensor* c = const_of(t.v)) known_[g.nodes[static_cast<size_t>(ni)].outputs[0]] = *c;
      t.v = g.nodes[static_cast<size_t>(ni)].outputs[0];
    }
    Value& v = g.values[static_cast<size_t>(t.v)];
    v.prov.framework = "tensorflow";
    v.prov.source_name = key;  // "node" or "node:i", as TF names tensors
    v.prov.output_index = static_cast<int>(i);
    v.prov.to_source.assign(t.perm.begin(), t.perm.end());
    v.prov.source_layout.clear();
    const int r = static_cast<int>(t.perm.size());
    if (r >= 3 && t.perm == channels_last_perm(r))
      v.prov.source_layout = r == 3 ? "NWC" : r == 4 ? "NHWC" : "NDHWC";
    bound_.insert(t.v);
    tensors_[key] = t;
  }
}

std::vector<TT> TfBuilder::placeholder() {
  const std::string& name = n->name();
  DType dt = attr_dtype("dtype");
  Shape s;
  auto given = opt.input_shapes.find(name);
  const auto* sh = attr("shape");
  if (given != opt.input_shapes.end()) {
    s = given->second;
    if (sh && sh->value_case() == anvil_tf::AttrValue::kShape && !sh->shape().unknown_rank() &&
        sh->shape().dim_size() != static_cast<int>(s.size()))
      fail("shape", "the placeholder has rank " + std::to_string(sh->shape().dim_size()) +
                        ", the shape given is " + shape_str(s));
  } else {
    if (!sh || sh->value_case() != anvil_tf::AttrValue::kShape || sh->shape().unknown_rank())
      fail("shape", "placeholder '" + name +
                        "' has no shape (unknown rank) in the graph; give one in "
                        "ImportOptions::input_shapes");
    for (const auto& d : sh->shape().dim()) {
      if (d.size() < -1) fail("shape", "bad dimension " + std::to_string(d.size()));
      s.push_back(d.size() == -1 ? opt.default_dim : d.size());
    }
  }
  checked_numel(s, "shape");
  int v = g.add_input(name, dt, s);
  return {TT{v, {}}};
}

// The converter of the current node: the table's, else an op the user mapped.
std::vector<TT> TfBuilder::convert() {
  const std::string& op = n->op();
  const auto& table = converters();
  if (auto it = table.find(op); it != table.end()) return it->second(*this);
  if (op == "VariableV2" || op == "Variable" || op == "VarHandleOp" || op == "ReadVariableOp")
    fail("op",
         "variables are not supported: freeze the graph first (convert_variables_to_constants)");
  if (auto mapped = mapped_source_op("tensorflow", op)) {
    std::vector<int> ins;
    for (const auto& t : in) ins.push_back(src(t));
    Attributes a;
    for (const auto& [k, v] : n->attr()) {
      switch (v.value_case()) {
        case anvil_tf::AttrValue::kI:
          a.set(k, static_cast<int64_t>(v.i()));
          break;
        case anvil_tf::AttrValue::kF:
          a.set(k, static_cast<double>(v.f()));
          break;
        case anvil_tf::AttrValue::kS:
          a.set(k, v.s());
          break;
        case anvil_tf::AttrValue::kB:
          a.set(k, static_cast<int64_t>(v.b()));
          break;
        case anvil_tf::AttrValue::kList:
          if (v.list().i_size())
            a.set(k, std::vector<int64_t>(v.list().i().begin(), v.list().i().end()));
          else if (v.list().f_size())
            a.set(k, std::vector<double>(v.list().f().begin(), v.list().f().end()));
          break;
        default:
          break;
      }
    }
    const OpDef* def = OpRegistry::global().find(*mapped);
    if (def)
      for (auto it = a.all().begin(); it != a.all().end();) {
        const std::string k = it->first;
        ++it;
        if (std::none_of(def->attrs.begin(), def->attrs.end(),
                         [&](const AttrSpec& s) { return s.name == k; }))
          a.erase(k);
      }
    return {TT{emit1(*mapped, ins, a), {}}};
  }
  static const std::set<std::string> random_ops = {"RandomUniform",
                                                   "RandomUniformInt",
                                                   "RandomStandardNormal",
                                                   "TruncatedNormal",
                                                   "ParameterizedTruncatedNormal",
                                                   "Multinomial",
                                                   "RandomShuffle",
                                                   "RandomGamma",
                                                   "RandomPoisson",
                                                   "RandomPoissonV2",
                                                   "RandomCrop",
                                                   "RandomGammaGrad"};
  if (random_ops.count(op) || op.rfind("StatelessRandom", 0) == 0 ||
      op.rfind("StatelessTruncated", 0) == 0 || op == "StatelessMultinomial")
    fail("op", "op '" + op +
                   "' is not supported: it samples random numbers, whose values no other engine "
                   "reproduces (freeze the sampled values into a Const, or feed them as an input)");
  fail("op", "op '" + op + "' is not supported");
}

// One problem of the current node. "op 'X' is not supported" problems are listed together.
void TfBuilder::record(const std::string& field, const std::string& reason) {
  const bool unsupported = field == "op" && reason.find("is not supported") != std::string::npos;
  problems_.add(n->op(), n->name(), field, reason, unsupported);
  failed_.insert(n->name());
}

Graph TfBuilder::build() {
  g.framework = "tensorflow";
  g.source_file = file_;
  g.name = std::filesystem::path(file_).stem().string();
  const int nn = gd_.node_size();
  // Names and producers.
  imp::ProblemList names;
  for (int i = 0; i < nn; ++i) {
    const auto& nd = gd_.node(i);
    if (!valid_node_name(nd.name()))
      names.add(nd.op(), nd.name(), "name", "invalid node name '" + nd.name() + "'");
    else if (!valid_op_name(nd.op()))
      names.add(nd.op(), nd.name(), "op", "invalid op '" + nd.op() + "'");
    else if (!producers_.emplace(nd.name(), i).second)
      names.add(nd.op(), nd.name(), "name", "node name '" + nd.name() + "' is used twice");
  }
  if (!names.empty()) {
    const auto& p = names.all()[0];
    throw Error(
        p.reason + (names.size() > 1 ? " (and " + std::to_string(names.size() - 1) + " more)" : ""),
        file_, p.node, p.field);
  }
  for (const auto& [name, shape] : opt.input_shapes) {
    auto it = producers_.find(name);
    if (it == producers_.end() || gd_.node(it->second).op() != "Placeholder")
      problems_.add("input", name, "input",
                    "a shape is given for '" + name + "', which is not a Placeholder of the graph");
  }
  // Kahn's order over data and control inputs; ties keep the file's order.
  std::vector<std::set<int>> deps(static_cast<size_t>(nn));
  std::set<std::string> consumed;  // node names whose outputs a node reads
  for (int i = 0; i < nn; ++i) {
    for (const auto& s : gd_.node(i).input()) {
      InputRef r;
      if (!parse_input(s, r)) continue;  // reported at conversion
      if (!r.control) consumed.insert(r.node);
      auto it = producers_.find(r.node);
      if (it != producers_.end()) deps[static_cast<size_t>(i)].insert(it->second);
    }
  }
  std::vector<bool> placed;
  std::vector<int> order = stable_topo_order(deps, placed);
  for (int i = 0; i < nn; ++i)
    if (!placed[static_cast<size_t>(i)]) {
      n = &gd_.node(i);
      record("input", "part of a cycle (control flow loops are not supported)");
    }
  // Assert checks a condition and produces nothing an inference result depends on: it is
  // dropped, with the constants (message strings) that only it reads. A node reading a
  // dropped node's data fails as reading a missing tensor.
  std::map<std::string, bool> only_assert;  // node -> every data consumer is an Assert
  for (int i = 0; i < nn; ++i) {
    const bool is_assert = gd_.node(i).op() == "Assert";
    for (const auto& s : gd_.node(i).input()) {
      InputRef r;
      if (!parse_input(s, r) || r.control) continue;
      auto [it, fresh] = only_assert.emplace(r.node, is_assert);
      if (!fresh) it->second = it->second && is_assert;
    }
  }
  // tf.debugging.assert_* guard their Assert with a cond named AssertGuard (Switch / Merge on
  // the condition): the whole guard goes with it; results read it by control edges only.
  auto dropped = [&](const anvil_tf::NodeDef& nd) {
    if (nd.op() == "Assert") return true;
    const std::string& nm = nd.name();
    if (nm.rfind("AssertGuard/", 0) == 0 || nm.find("/AssertGuard/") != std::string::npos)
      return true;
    auto it = only_assert.find(nd.name());
    return nd.op() == "Const" && it != only_assert.end() && it->second;
  };
  for (int idx : order) {
    n = &gd_.node(idx);
    if (dropped(*n)) continue;
    try {
      if (gather_inputs()) bind(convert());
    } catch (const Error& e) {
      record(e.field(), e.message());
    } catch (const std::exception& e) {
      record("", std::string("internal error while importing: ") + e.what());
    }
  }
  problems_.throw_if_any(file_, {imp::ProblemList::Style::Grouped, "the graph", "node"});
  add_source_layers(order);
  add_default_outputs(order, consumed);
  if (g.outputs.empty())
    throw Error("the graph has no outputs (no node other than constants and placeholders)", file_);
  // Values were renamed after their nodes were added: refresh Graph's name cache.
  g.add_value("#");
  g.values.pop_back();
  g.validate();
  return std::move(g);
}

// The current node's data inputs; false (and the node marked failed) when one comes from a
// node that failed.
bool TfBuilder::gather_inputs() {
  in.clear();
  in_names.clear();
  emitter_.begin(n->op(), n->name());
  bool skip = false;
  for (int k = 0; k < n->input_size(); ++k) {
    InputRef r;
    if (!parse_input(n->input(k), r)) fail("input", "malformed input '" + n->input(k) + "'");
    if (r.control) continue;
    if (failed_.count(r.node)) {
      skip = true;
      continue;
    }
    auto it = tensors_.find(tensor_key(r.node, r.index));
    if (it == tensors_.end()) {
      if (!producers_.count(r.node))
        fail("input", "input '" + n->input(k) + "' is not produced by any node");
      fail("input", "input '" + n->input(k) + "' refers to output " + std::to_string(r.index) +
                        " of '" + r.node + "', which it does not have");
    }
    in.push_back(it->second);
    in_names.push_back(n->input(k));
  }
  if (skip) {
    failed_.insert(n->name());
    return false;
  }
  first_value_ = g.values.size();
  first_node_ = g.nodes.size();
  return true;
}

// One summary row per TF node as TF has it (Const nodes and their '/read' Identities are
// counted as the parameters of the nodes that read them).
void TfBuilder::add_source_layers(const std::vector<int>& order) {
  auto const_source = [&](std::string input) -> const anvil_tf::NodeDef* {
    for (int hops = 0; hops < 8; ++hops) {
      InputRef r;
      if (!parse_input(input, r) || r.control) return nullptr;
      auto it = producers_.find(r.node);
      if (it == producers_.end()) return nullptr;
      const auto& p = gd_.node(it->second);
      if (p.op() == "Const") return &p;
      if (p.op() != "Identity" || p.input_size() < 1) return nullptr;
      input = p.input(0);
    }
    return nullptr;
  };
  for (int idx : order) {
    const auto& nd = gd_.node(idx);
    if (nd.op() == "Const" || nd.op() == "NoOp") continue;
    if (nd.op() == "Identity" && nd.input_size() >= 1 && const_source(nd.input(0)))
      continue;  // a variable's read
    SourceLayer l;
    l.name = nd.name();
    l.type = nd.op();
    for (int i = 0; tensors_.count(tensor_key(nd.name(), i)); ++i) {
      const TT& t = tensors_[tensor_key(nd.name(), i)];
      l.outputs.push_back(tensor_key(nd.name(), i));
      l.output_shapes.push_back(tf_shape(t));
    }
    std::set<const anvil_tf::NodeDef*> counted;
    for (const auto& input : nd.input()) {
      const anvil_tf::NodeDef* c = const_source(input);
      if (!c || !counted.insert(c).second) continue;
      auto it = tensors_.find(c->name());
      if (it != tensors_.end()) l.trainable_params += shape_numel(shape(it->second.v));
    }
    g.source_layers.push_back(std::move(l));
  }
}

// Default outputs: the sinks.
void TfBuilder::add_default_outputs(const std::vector<int>& order,
                                    const std::set<std::string>& consumed) {
  static const std::set<std::string> not_outputs = {
      "Const", "NoOp",    "Placeholder", "Assert",   "SaveV2", "RestoreV2",
      "Save",  "Restore", "VariableV2",  "Variable", "Assign"};
  for (int idx : order) {
    const auto& nd = gd_.node(idx);
    if (consumed.count(nd.name()) || not_outputs.count(nd.op()) || failed_.count(nd.name()))
      continue;
    int count = 0;
    while (tensors_.count(tensor_key(nd.name(), count))) ++count;
    if (nd.op().rfind("FusedBatchNorm", 0) == 0) {
      // y; in training mode also the batch mean and variance (the rest is scratch space)
      auto it = nd.attr().find("is_training");
      const bool training = it == nd.attr().end() || it->second.b();
      count = std::min(count, training ? 3 : 1);
    }
    for (int i = 0; i < count; ++i) g.outputs.push_back(tensors_[tensor_key(nd.name(), i)].v);
  }
  // A graph TF folded to constants (zeros_like of a known shape, ...): its sink Consts.
  if (g.outputs.empty())
    for (int idx : order) {
      const auto& nd = gd_.node(idx);
      if (nd.op() == "Const" && !consumed.count(nd.name()) && tensors_.count(nd.name()))
        g.outputs.push_back(tensors_[nd.name()].v);
    }
}

// ------------------------------------------------------------------------------ files

namespace {

bool has_ext(const std::string& path, const std::vector<std::string>& exts) {
  return std::any_of(exts.begin(), exts.end(),
                     [&](const std::string& e) { return ends_with_ci(path, e); });
}

std::string read_graph_file(const std::string& path) {
  return read_file(path, "a GraphDef", kMaxFileBytes);
}

class SilentErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first.empty())
      first = "line " + std::to_string(line + 1) + ", column " + std::to_string(column + 1) + ": " +
              message;
  }
  void AddWarning(int, int, const std::string&) override {}
  std::string first;
};

bool parse_text(const std::string& bytes, anvil_tf::GraphDef& g, std::string* error) {
  google::protobuf::TextFormat::Parser p;
  SilentErrors errs;
  p.RecordErrorsTo(&errs);
  p.AllowUnknownField(true);  // fields of the full format this subset leaves out
  p.AllowUnknownExtension(true);
  bool ok = p.ParseFromString(bytes, &g);
  if (!ok && error) *error = errs.first;
  return ok;
}

bool parse_binary(const std::string& bytes, anvil_tf::GraphDef& g) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) return false;
  // Corrupt files make libprotobuf log (invalid UTF-8 in names) on stderr; the importer
  // reports problems itself, as one error.
  google::protobuf::LogSilencer quiet;
  return g.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
}

bool looks_like_text(const std::string& bytes) {
  for (char c : bytes.substr(0, 4096)) {
    if (c == 0 || (static_cast<unsigned char>(c) < 32 && c != '\n' && c != '\r' && c != '\t'))
      return false;
  }
  return true;
}

// A GraphDef with at least one node, all with a valid name and op: what a TF graph is.
bool plausible(const anvil_tf::GraphDef& g) {
  if (g.node_size() == 0) return false;
  for (const auto& n : g.node())
    if (!valid_node_name(n.name()) || !valid_op_name(n.op())) return false;
  return true;
}

bool accepts(const std::vector<std::string>& files) {
  if (files.size() != 1) return false;
  const std::string& f = files[0];
  if (has_ext(f, {".onnx", ".h5", ".hdf5", ".keras", ".caffemodel", ".prototxt", ".tflite", ".json",
                  ".npy", ".npz"}))
    return false;
  if (has_ext(f, {".pbtxt", ".pbtext"})) return true;
  try {
    std::string bytes = read_graph_file(f);
    anvil_tf::GraphDef g;
    if (parse_binary(bytes, g) && plausible(g)) return true;
    anvil_tf::GraphDef t;
    return looks_like_text(bytes) && parse_text(bytes, t, nullptr) && plausible(t);
  } catch (...) {
    return false;
  }
}

Graph load(const std::vector<std::string>& files, const ImportOptions& options) {
  if (files.size() != 1)
    throw Error("a TensorFlow graph is one frozen GraphDef file (.pb or .pbtxt)",
                files.empty() ? "" : files[0]);
  const std::string& path = files[0];
  std::string bytes = read_graph_file(path);
  if (bytes.empty()) throw Error("the file is empty, not a GraphDef", path);
  anvil_tf::GraphDef g;
  const bool text_ext = has_ext(path, {".pbtxt", ".pbtext"});
  bool ok = false;
  std::string text_error;
  if (!text_ext) ok = parse_binary(bytes, g) && plausible(g);
  if (!ok) {
    g.Clear();
    if (looks_like_text(bytes)) ok = parse_text(bytes, g, &text_error);
    if (!ok)
      throw Error(text_ext || looks_like_text(bytes)
                      ? "not a valid text GraphDef: " + text_error
                      : "not a valid TensorFlow GraphDef: the protobuf could not be parsed "
                        "(truncated or corrupt file, " +
                            std::to_string(bytes.size()) + " bytes)",
                  path);
  }
  if (g.node_size() == 0) throw Error("the GraphDef has no nodes", path, {}, "node");
  TfBuilder b(g, path, options);
  return b.build();
}

const bool registered = [] {
  register_importer(anvil::Importer{"tensorflow", accepts, load});
  return true;
}();

}  // namespace
}  // namespace anvil::tf_import
