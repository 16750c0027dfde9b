// The Caffe importer: .prototxt (+ .caffemodel) -> anvil::Graph with canonical ops.
//
// Files: a `.prototxt` net definition with a `.caffemodel` (weights; either order), or a
// `.caffemodel` alone when it carries the net definition (Caffe's Net::ToProto writes the
// whole net with its blobs). Both the current `layer` and the legacy V1 `layers` forms are
// read; layers are filtered for the TEST phase (include/exclude NetStateRules). Weights are
// matched to layers by layer name, as Caffe's CopyTrainedLayersFrom does, and every blob's
// shape is checked against what the layer needs (legacy 4-D num/channels/height/width blob
// shapes compare as the needed shape padded with leading 1s, as Blob::ShapeEquals does).
//
// Blob names. Each top blob becomes one value whose provenance is {framework "caffe",
// source_name = top blob name, layout NCHW}. In-place layers (top == bottom, e.g. ReLU or
// BatchNorm/Scale rewriting a conv output) get their OWN canonical value per write: the
// LAST writer of a blob is named after the blob, earlier writers "<blob>@<layer>". So
// fetching a blob by name gives what Caffe's net.blobs[name] holds after forward() (the last
// writer's value); the earlier values stay reachable by their "<blob>@<layer>" names. (A net
// input rewritten in place keeps the bare name for the input itself.)
//
// Caffe rules kept exactly (each with a test): symmetric conv/pool padding; pooling output
// size rounds up (round_mode CEIL, clipped so the last window starts inside the input or
// its begin padding) or down (FLOOR); AVE pooling divides by the window cells inside
// [-pad, in + pad) (padding counts, the ceil overhang does not); BatchNorm mean/variance are
// divided by the moving-average factor blob[2] (factor 0 -> 0); InnerProduct flattens from
// `axis` in C,H,W order (natural in NCHW); LRN WITHIN_CHANNEL is Caffe's own composition
// (square -> padded AVE pool -> (1 + alpha * .)^-beta -> multiply).
//
// Unsupported layers (unless mapped with anvil::map_source_op("caffe", type, op)) and layer
// problems (bad parameters, blob shapes that do not fit) are collected and reported together
// in one anvil::Error naming each layer.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "import/caffe/caffe_net.h"

namespace anvil::caffe_import {
namespace {

constexpr size_t kMaxPrototxtBytes = size_t{64} << 20;
constexpr size_t kMaxCaffemodelBytes = size_t{2047} << 20;

struct Problem {
  std::string type, layer, field, reason;
};

// A float as the shortest text that reads back the same float.
std::string fmt_float(float f) {
  char buf[32];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return buf;
}

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// Thrown inside a layer's conversion; recorded as that layer's problem.
struct LayerError {
  std::string field, message;
};
[[noreturn]] void fail(const std::string& field, const std::string& message) {
  throw LayerError{field, message};
}

// Element count with overflow and negative-dimension checks (hostile files).
int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail("shape", "negative dimension in " + ints_str(s));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail("shape", "element count of " + ints_str(s) + " overflows");
    n *= d;
  }
  return n;
}

class CaffeBuilder {
 public:
  CaffeBuilder(const pb::NetParameter& def, const pb::NetParameter* weights, std::string file,
               const ImportOptions& opt)
      : def_(def), weights_net_(weights), file_(std::move(file)), opt_(opt) {}

  Graph build();

 private:
  // ---- per-layer state ----
  struct Layer {
    const pb::LayerParameter* p = nullptr;
    const pb::LayerParameter* w = nullptr;  // where its blobs come from (or nullptr)
    std::string name, type;
    std::vector<int> in;       // bottom values
    std::vector<Shape> shape;  // bottom shapes
    std::vector<std::string> top_names;  // canonical value name per top
    std::vector<int> tops;     // resulting top values
    bool node_named = false;   // the layer name has been given to a node
  };

  // ---- graph helpers ----
  std::string fresh(const std::string& base);
  Provenance prov(const std::string& source_name, int index) const;
  int add_node(Layer& L, const std::string& op, const std::vector<int>& ins, Attributes a,
               const std::vector<std::string>& out_names, const std::string& suffix);
  int emit(Layer& L, const std::string& op, const std::vector<int>& ins, Attributes a,
           const std::string& suffix);
  int emit_top(Layer& L, const std::string& op, const std::vector<int>& ins, Attributes a,
               size_t top = 0);
  int constant(Layer& L, const std::string& role, Tensor t);
  int scalar(Layer& L, const std::string& role, double v);
  int i64s(Layer& L, const std::string& role, const std::vector<int64_t>& v);
  const Shape& shape_of(int v) const { return g_.values[static_cast<size_t>(v)].shape; }

  // ---- blobs (weights) ----
  int blob_count(const Layer& L) const { return L.w ? L.w->blobs_size() : 0; }
  void expect_blobs(const Layer& L, int n) const;
  Tensor blob(const Layer& L, int i, const Shape& expected, const std::string& role) const;

  // ---- checks ----
  void expect_bottoms(const Layer& L, int lo, int hi) const;
  void expect_tops(const Layer& L, int lo, int hi) const;
  int canonical_axis(int64_t axis, int rank, const std::string& field) const;

  // ---- conversion ----
  void convert(Layer& L);
  void add_net_inputs();
  void convert_input(Layer& L);
  void convert_conv(Layer& L, bool deconv);
  void convert_pool(Layer& L);
  void convert_inner_product(Layer& L);
  void convert_batchnorm(Layer& L);
  void convert_scale_bias(Layer& L, bool scale);
  void convert_lrn(Layer& L);
  void convert_relu(Layer& L);
  void convert_prelu(Layer& L);
  void convert_unary(Layer& L, const std::string& op, Attributes a = {});
  void convert_power(Layer& L);
  void convert_exp(Layer& L);
  void convert_log(Layer& L);
  void convert_threshold(Layer& L);
  void convert_softmax(Layer& L);
  void convert_eltwise(Layer& L);
  void convert_concat(Layer& L);
  void convert_slice(Layer& L);
  void convert_split(Layer& L);
  void convert_flatten(Layer& L);
  void convert_reshape(Layer& L);
  void convert_crop(Layer& L);
  void convert_argmax(Layer& L);
  void convert_permute(Layer& L);
  void convert_clip(Layer& L);
  void convert_mvn(Layer& L);
  void convert_reduction(Layer& L);
  void convert_tile(Layer& L);
  void convert_swish(Layer& L);
  void convert_normalize(Layer& L);
  void convert_parameter(Layer& L);
  void convert_embed(Layer& L);
  int reduce(Layer& L, const std::string& op, int v, const std::vector<int64_t>& axes, bool keep,
             const std::string& suffix);
  int batch_normalize(Layer& L, int x, const std::vector<int64_t>& axes, double eps,
                      bool eps_outside_sqrt, bool subtract_mean_only, bool final_node);
  void convert_mapped(Layer& L, const std::string& op);

  int broadcast_operand(Layer& L, int v, const Shape& s, int axis, int rank,
                        const std::string& role);
  std::pair<int, Shape> scale_operand(Layer& L, int blob_index, const std::string& role,
                                      int axis, int64_t num_axes);

  const pb::NetParameter& def_;
  const pb::NetParameter* weights_net_;
  std::string file_;
  const ImportOptions& opt_;
  Graph g_;
  std::map<std::string, const pb::LayerParameter*> weights_;  // layer name -> blobs holder
  std::map<std::string, int> blobs_;                          // blob name -> current value
  std::set<std::string> failed_blobs_;
  std::set<std::string> used_names_;                          // values and helper nodes
  std::set<std::string> node_names_;
  std::set<std::string> reserved_;                            // planned top value names
  std::map<std::string, std::vector<const pb::LayerParameter*>> writers_;
  std::set<std::string> net_inputs_;
  std::vector<Problem> problems_;
};

// ---------------------------------------------------------------------------------------
// graph helpers

std::string CaffeBuilder::fresh(const std::string& base) {
  std::string b = base.empty() ? std::string("v") : base;
  if (!used_names_.count(b) && !reserved_.count(b)) return b;
  for (int i = 1;; ++i) {
    std::string c = b + "_" + std::to_string(i);
    if (!used_names_.count(c) && !reserved_.count(c)) return c;
  }
}

Provenance CaffeBuilder::prov(const std::string& source_name, int index) const {
  Provenance p;
  p.framework = "caffe";
  p.source_name = source_name;
  p.output_index = index;
  p.source_layout = "NCHW";
  return p;
}

int CaffeBuilder::add_node(Layer& L, const std::string& op, const std::vector<int>& ins,
                           Attributes a, const std::vector<std::string>& out_names,
                           const std::string& suffix) {
  // Node names are unique among nodes (a layer's node shares its name with its top blob,
  // as in Caffe); helper nodes get fresh names unused by any node or value.
  std::string nn;
  if (suffix.empty() && !L.node_named && !node_names_.count(L.name)) {
    nn = L.name;
    L.node_named = true;
  } else if (!out_names.empty() && !suffix.empty() && !node_names_.count(out_names[0]) &&
             out_names[0].rfind(L.name + "/", 0) == 0) {
    nn = out_names[0];  // a helper node is named like its (fresh) output value
  } else {
    nn = fresh(L.name + "/" + (suffix.empty() ? op : suffix));
    while (node_names_.count(nn)) nn = fresh(nn + "_");
    used_names_.insert(nn);
  }
  node_names_.insert(nn);
  for (const auto& o : out_names) used_names_.insert(o);
  int ni = g_.add_node(op, nn, ins, std::move(a), static_cast<int>(out_names.size()), out_names);
  Node& node = g_.nodes[static_cast<size_t>(ni)];
  node.source_op = L.type;
  for (int o : node.outputs) g_.values[static_cast<size_t>(o)].prov = prov("", 0);
  try {
    g_.infer_node(ni);
  } catch (const Error& e) {
    fail(e.field().empty() ? "shape" : e.field(), e.message());
  }
  return ni;
}

int CaffeBuilder::emit(Layer& L, const std::string& op, const std::vector<int>& ins,
                       Attributes a, const std::string& suffix) {
  std::string vn = fresh(L.name + "/" + suffix);
  used_names_.insert(vn);
  int ni = add_node(L, op, ins, std::move(a), {vn}, suffix);
  return g_.nodes[static_cast<size_t>(ni)].outputs[0];
}

int CaffeBuilder::emit_top(Layer& L, const std::string& op, const std::vector<int>& ins,
                           Attributes a, size_t top) {
  const std::string& vn = L.top_names[top];
  int ni = add_node(L, op, ins, std::move(a), {vn}, L.node_named ? L.p->top(static_cast<int>(top)) : "");
  int v = g_.nodes[static_cast<size_t>(ni)].outputs[0];
  L.tops[top] = v;
  return v;
}

int CaffeBuilder::constant(Layer& L, const std::string& role, Tensor t) {
  std::string n = fresh(L.name + "/" + role);
  used_names_.insert(n);
  int v = g_.add_constant(n, std::move(t));
  g_.values[static_cast<size_t>(v)].prov = prov(n, 0);
  return v;
}

int CaffeBuilder::scalar(Layer& L, const std::string& role, double v) {
  return constant(L, role, Tensor::scalar<float>(static_cast<float>(v)));
}

int CaffeBuilder::i64s(Layer& L, const std::string& role, const std::vector<int64_t>& v) {
  return constant(L, role,
                  Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v));
}

// ---------------------------------------------------------------------------------------
// checks and blobs

void CaffeBuilder::expect_bottoms(const Layer& L, int lo, int hi) const {
  int n = static_cast<int>(L.in.size());
  if (n < lo || (hi >= 0 && n > hi)) {
    std::string want = lo == hi ? std::to_string(lo)
                       : hi < 0 ? "at least " + std::to_string(lo)
                                : std::to_string(lo) + " to " + std::to_string(hi);
    fail("bottom", "expects " + want + " bottom blob(s), found " + std::to_string(n));
  }
}

void CaffeBuilder::expect_tops(const Layer& L, int lo, int hi) const {
  int n = L.p->top_size();
  if (n < lo || (hi >= 0 && n > hi)) {
    std::string want = lo == hi ? std::to_string(lo)
                       : hi < 0 ? "at least " + std::to_string(lo)
                                : std::to_string(lo) + " to " + std::to_string(hi);
    fail("top", "expects " + want + " top blob(s), found " + std::to_string(n));
  }
}

int CaffeBuilder::canonical_axis(int64_t axis, int rank, const std::string& field) const {
  if (axis < -rank || axis >= rank)
    fail(field, "axis " + std::to_string(axis) + " is out of range for a blob of " +
                    std::to_string(rank) + " axes");
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

void CaffeBuilder::expect_blobs(const Layer& L, int n) const {
  int have = blob_count(L);
  if (have == n) return;
  if (have == 0)
    fail("blobs", "needs " + std::to_string(n) +
                      " parameter blob(s) but none were found (no layer of this name in the "
                      "caffemodel" +
                      (weights_net_ ? std::string() : std::string(", and no caffemodel was given")) +
                      ")");
  fail("blobs", "has " + std::to_string(have) + " parameter blob(s), expected " +
                    std::to_string(n));
}

Tensor CaffeBuilder::blob(const Layer& L, int i, const Shape& expected,
                          const std::string& role) const {
  const pb::BlobProto& b = L.w->blobs(i);
  const std::string field = "blobs[" + std::to_string(i) + "] (" + role + ")";
  Shape have;
  bool legacy = false;
  if (b.has_shape()) {
    for (int64_t d : b.shape().dim()) have.push_back(d);
  } else if (b.has_num() || b.has_channels() || b.has_height() || b.has_width()) {
    have = {b.num(), b.channels(), b.height(), b.width()};
    legacy = true;
  } else {
    have = {static_cast<int64_t>(std::max(b.data_size(), b.double_data_size()))};
  }
  bool match = false;
  if (legacy) {
    if (expected.size() <= 4) {
      Shape padded(4 - expected.size(), 1);
      padded.insert(padded.end(), expected.begin(), expected.end());
      match = padded == have;
    }
  } else if (b.has_shape()) {
    match = have == expected;
  } else {
    match = have[0] == numel_of(expected);  // shapeless blob: only the count is known
  }
  if (!match)
    fail(field, "blob shape " + ints_str(have) + " does not match the layer, which needs " +
                    ints_str(expected));
  // The value count is checked before allocating: it is bounded by the file's size.
  const int64_t n = numel_of(expected);
  if (b.data_size() != n && b.double_data_size() != n)
    fail(field, "blob holds " + std::to_string(std::max(b.data_size(), b.double_data_size())) +
                    " values, its shape " + ints_str(expected) + " needs " + std::to_string(n));
  Tensor t(DType::f32, expected);
  float* dst = t.data<float>();
  if (b.data_size() == n)
    std::copy(b.data().begin(), b.data().end(), dst);
  else
    for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<float>(b.double_data(static_cast<int>(k)));
  return t;
}

// ---------------------------------------------------------------------------------------
// the build

void CaffeBuilder::add_net_inputs() {
  const int n = def_.input_size();
  if (def_.input_shape_size() > 0 && def_.input_shape_size() != n)
    problems_.push_back({"input", "", "input_shape",
                         std::to_string(n) + " net inputs but " +
                             std::to_string(def_.input_shape_size()) + " input_shape entries"});
  if (def_.input_dim_size() > 0 && def_.input_dim_size() != 4 * n)
    problems_.push_back({"input", "", "input_dim",
                         std::to_string(n) + " net inputs need " + std::to_string(4 * n) +
                             " input_dim values, found " +
                             std::to_string(def_.input_dim_size())});
  for (int i = 0; i < n; ++i) {
    const std::string& name = def_.input(i);
    Shape s;
    bool have = false;
    if (auto it = opt_.input_shapes.find(name); it != opt_.input_shapes.end()) {
      s = it->second;
      have = true;
    } else if (i < def_.input_shape_size() && def_.input_shape_size() == n) {
      for (int64_t d : def_.input_shape(i).dim()) s.push_back(d);
      have = true;
    } else if (def_.input_dim_size() == 4 * n) {
      for (int k = 0; k < 4; ++k) s.push_back(def_.input_dim(4 * i + k));
      have = true;
    }
    if (!have) {
      problems_.push_back({"input", name, "input_shape",
                           "net input '" + name +
                               "' has no shape (give input_shape/input_dim, or the shape "
                               "as an import option)"});
      failed_blobs_.insert(name);
      continue;
    }
    for (int64_t d : s)
      if (d < 0) {
        problems_.push_back({"input", name, "input_shape",
                             "net input '" + name + "' has a negative dimension " + ints_str(s)});
        failed_blobs_.insert(name);
        have = false;
        break;
      }
    if (!have) continue;
    used_names_.insert(name);
    int v = g_.add_input(name, DType::f32, s);
    g_.values[static_cast<size_t>(v)].prov = prov(name, 0);
    blobs_[name] = v;
    net_inputs_.insert(name);
  }
}

Graph CaffeBuilder::build() {
  g_.name = def_.name();
  g_.framework = "caffe";
  g_.source_file = file_;
  g_.metadata["image.channel_order"] = "BGR";  // Caffe models are trained on BGR images

  // Weights by layer name (the last layer of a name wins, as in CopyTrainedLayersFrom).
  if (weights_net_)
    for (const auto& l : weights_net_->layer()) weights_[l.name()] = &l;

  std::vector<const pb::LayerParameter*> layers = test_phase_layers(def_);

  // Plan the canonical name of every top: the last writer of a blob gets the blob's name.
  for (int i = 0; i < def_.input_size(); ++i) writers_[def_.input(i)].push_back(nullptr);
  for (const auto* l : layers)
    for (const auto& t : l->top()) writers_[t].push_back(l);
  for (const auto& [blob, ws] : writers_) reserved_.insert(blob);

  add_net_inputs();
  // Source layers (for summaries): the legacy net inputs first, then one per layer.
  for (int i = 0; i < def_.input_size(); ++i) {
    auto it = blobs_.find(def_.input(i));
    if (it == blobs_.end()) continue;
    SourceLayer sl;
    sl.name = def_.input(i);
    sl.type = "Input";
    sl.outputs = {def_.input(i)};
    sl.output_shapes = {shape_of(it->second)};
    g_.source_layers.push_back(std::move(sl));
  }

  std::set<std::string> available;  // Caffe's rule for net outputs
  for (int i = 0; i < def_.input_size(); ++i) available.insert(def_.input(i));

  for (const auto* lp : layers) {
    Layer L;
    L.p = lp;
    L.name = lp->name();
    L.type = lp->type();
    if (L.name.empty()) L.name = L.type.empty() ? "layer" : L.type;
    for (const auto& b : lp->bottom()) available.erase(b);
    for (const auto& t : lp->top()) available.insert(t);

    // Canonical top names (in-place: earlier writers are "<blob>@<layer>").
    for (const auto& t : lp->top()) {
      // The blob's name goes to its last writer, or to the net input it starts as.
      const auto& ws = writers_[t];
      const pb::LayerParameter* owner = ws.back();
      if (ws.size() > 1 && (ws.front() == nullptr || ws.front()->type() == "Input"))
        owner = ws.front();
      std::string n = owner == lp ? t : fresh(t + "@" + L.name);
      if (n != t) reserved_.insert(n);
      L.top_names.push_back(n);
    }
    L.tops.assign(L.top_names.size(), -1);

    bool upstream_failed = false;
    std::string missing;
    for (const auto& b : lp->bottom()) {
      if (failed_blobs_.count(b)) {
        upstream_failed = true;
        continue;
      }
      auto it = blobs_.find(b);
      if (it == blobs_.end()) {
        if (missing.empty()) missing = b;
        continue;
      }
      L.in.push_back(it->second);
      L.shape.push_back(shape_of(it->second));
    }
    auto mark_failed = [&] {
      for (const auto& t : lp->top()) {
        failed_blobs_.insert(t);
        blobs_.erase(t);
      }
    };
    if (!missing.empty()) {
      problems_.push_back({L.type, L.name, "bottom",
                           "bottom blob '" + missing +
                               "' is not produced by any earlier layer or net input"});
      mark_failed();
      continue;
    }
    if (upstream_failed) {
      mark_failed();
      continue;
    }
    auto wit = weights_.find(L.name);
    if (wit != weights_.end() && wit->second->blobs_size() > 0)
      L.w = wit->second;
    else if (lp->blobs_size() > 0)
      L.w = lp;
    else if (wit != weights_.end())
      L.w = wit->second;

    try {
      if (lp->include_size() > 0 && lp->exclude_size() > 0)
        fail("include", "specify either include rules or exclude rules, not both");
      convert(L);
      for (size_t i = 0; i < L.tops.size(); ++i) {
        if (L.tops[i] < 0) fail("top", "internal: top '" + lp->top(static_cast<int>(i)) + "' was not produced");
        Value& v = g_.values[static_cast<size_t>(L.tops[i])];
        v.prov = prov(lp->top(static_cast<int>(i)), static_cast<int>(i));
        blobs_[lp->top(static_cast<int>(i))] = L.tops[i];
        failed_blobs_.erase(lp->top(static_cast<int>(i)));
      }
      // What Caffe stores for the layer: its tops (shapes NCHW, as Caffe's blobs) and the
      // numbers in its parameter blobs (BatchNorm: mean, variance and the scale factor); a
      // blob with lr_mult 0 (and every BatchNorm blob) is not learned.
      SourceLayer sl;
      sl.name = L.name;
      sl.type = L.type;
      for (size_t i = 0; i < L.tops.size(); ++i) {
        sl.outputs.push_back(lp->top(static_cast<int>(i)));
        sl.output_shapes.push_back(shape_of(L.tops[i]));
      }
      for (int i = 0; i < blob_count(L); ++i) {
        const pb::BlobProto& b = L.w->blobs(i);
        int64_t n = std::max<int64_t>(b.data_size(), b.double_data_size());
        if (n == 0) {
          Shape bs;
          if (b.has_shape())
            for (int64_t d : b.shape().dim()) bs.push_back(d);
          else if (b.has_num() || b.has_channels() || b.has_height() || b.has_width())
            bs = {b.num(), b.channels(), b.height(), b.width()};
          if (!bs.empty()) n = numel_of(bs);
        }
        bool frozen = L.type == "BatchNorm" || (i < lp->param_size() && lp->param(i).has_lr_mult() &&
                                                lp->param(i).lr_mult() == 0.0f);
        (frozen ? sl.non_trainable_params : sl.trainable_params) += n;
      }
      g_.source_layers.push_back(std::move(sl));
    } catch (const LayerError& e) {
      problems_.push_back({L.type, L.name, e.field, e.message});
      mark_failed();
    } catch (const Error& e) {
      problems_.push_back({L.type, L.name, e.field(), e.message()});
      mark_failed();
    }
  }

  if (!problems_.empty()) {
    if (problems_.size() == 1) {
      const auto& p = problems_[0];
      throw Error(p.type + ": " + p.reason, file_, p.layer, p.field);
    }
    std::string msg = std::to_string(problems_.size()) + " problems importing the Caffe model:";
    for (const auto& p : problems_)
      msg += "\n  - " + p.type + (p.layer.empty() ? std::string() : " (layer '" + p.layer + "')") +
             (p.field.empty() ? std::string() : " [" + p.field + "]") + ": " + p.reason;
    throw Error(msg, file_);
  }

  // Net outputs: blobs produced and never consumed afterwards (std::set order, as Caffe).
  for (const auto& b : available) {
    auto it = blobs_.find(b);
    if (it != blobs_.end()) g_.outputs.push_back(it->second);
  }
  if (g_.outputs.empty()) throw Error("the Caffe net has no output blob", file_);
  g_.validate();
  return std::move(g_);
}

void CaffeBuilder::convert(Layer& L) {
  static const std::map<std::string, std::function<void(CaffeBuilder&, Layer&)>> table = {
      {"Input", [](CaffeBuilder& b, Layer& l) { b.convert_input(l); }},
      {"Convolution", [](CaffeBuilder& b, Layer& l) { b.convert_conv(l, false); }},
      {"Deconvolution", [](CaffeBuilder& b, Layer& l) { b.convert_conv(l, true); }},
      {"Pooling", [](CaffeBuilder& b, Layer& l) { b.convert_pool(l); }},
      {"InnerProduct", [](CaffeBuilder& b, Layer& l) { b.convert_inner_product(l); }},
      {"BatchNorm", [](CaffeBuilder& b, Layer& l) { b.convert_batchnorm(l); }},
      {"Scale", [](CaffeBuilder& b, Layer& l) { b.convert_scale_bias(l, true); }},
      {"Bias", [](CaffeBuilder& b, Layer& l) { b.convert_scale_bias(l, false); }},
      {"LRN", [](CaffeBuilder& b, Layer& l) { b.convert_lrn(l); }},
      {"ReLU", [](CaffeBuilder& b, Layer& l) { b.convert_relu(l); }},
      {"PReLU", [](CaffeBuilder& b, Layer& l) { b.convert_prelu(l); }},
      {"ELU",
       [](CaffeBuilder& b, Layer& l) {
         Attributes a;
         a.set("alpha", static_cast<double>(l.p->elu_param().alpha()));
         b.convert_unary(l, "Elu", a);
       }},
      {"Sigmoid", [](CaffeBuilder& b, Layer& l) { b.convert_unary(l, "Sigmoid"); }},
      {"TanH", [](CaffeBuilder& b, Layer& l) { b.convert_unary(l, "Tanh"); }},
      {"AbsVal", [](CaffeBuilder& b, Layer& l) { b.convert_unary(l, "Abs"); }},
      {"BNLL", [](CaffeBuilder& b, Layer& l) { b.convert_unary(l, "Softplus"); }},
      {"Dropout", [](CaffeBuilder& b, Layer& l) { b.convert_unary(l, "Identity"); }},
      {"Power", [](CaffeBuilder& b, Layer& l) { b.convert_power(l); }},
      {"Exp", [](CaffeBuilder& b, Layer& l) { b.convert_exp(l); }},
      {"Log", [](CaffeBuilder& b, Layer& l) { b.convert_log(l); }},
      {"Threshold", [](CaffeBuilder& b, Layer& l) { b.convert_threshold(l); }},
      {"Softmax", [](CaffeBuilder& b, Layer& l) { b.convert_softmax(l); }},
      {"Eltwise", [](CaffeBuilder& b, Layer& l) { b.convert_eltwise(l); }},
      {"Concat", [](CaffeBuilder& b, Layer& l) { b.convert_concat(l); }},
      {"Slice", [](CaffeBuilder& b, Layer& l) { b.convert_slice(l); }},
      {"Split", [](CaffeBuilder& b, Layer& l) { b.convert_split(l); }},
      {"Flatten", [](CaffeBuilder& b, Layer& l) { b.convert_flatten(l); }},
      {"Reshape", [](CaffeBuilder& b, Layer& l) { b.convert_reshape(l); }},
      {"Crop", [](CaffeBuilder& b, Layer& l) { b.convert_crop(l); }},
      {"ArgMax", [](CaffeBuilder& b, Layer& l) { b.convert_argmax(l); }},
      {"Permute", [](CaffeBuilder& b, Layer& l) { b.convert_permute(l); }},
      {"Clip", [](CaffeBuilder& b, Layer& l) { b.convert_clip(l); }},
      {"Silence", [](CaffeBuilder& b, Layer& l) { b.expect_tops(l, 0, 0); }},
      {"MVN", [](CaffeBuilder& b, Layer& l) { b.convert_mvn(l); }},
      {"Reduction", [](CaffeBuilder& b, Layer& l) { b.convert_reduction(l); }},
      {"Tile", [](CaffeBuilder& b, Layer& l) { b.convert_tile(l); }},
      {"Swish", [](CaffeBuilder& b, Layer& l) { b.convert_swish(l); }},
      {"Normalize", [](CaffeBuilder& b, Layer& l) { b.convert_normalize(l); }},
      {"Parameter", [](CaffeBuilder& b, Layer& l) { b.convert_parameter(l); }},
      {"Embed", [](CaffeBuilder& b, Layer& l) { b.convert_embed(l); }},
  };
  auto it = table.find(L.type);
  if (it != table.end()) {
    it->second(*this, L);
    return;
  }
  if (auto mapped = mapped_source_op("caffe", L.type)) {
    convert_mapped(L, *mapped);
    return;
  }
  fail("type", "unsupported Caffe layer type '" + L.type +
                   "' (map it to a registered op with anvil::map_source_op(\"caffe\", \"" +
                   L.type + "\", op))");
}

// ---------------------------------------------------------------------------------------
// layers

void CaffeBuilder::convert_input(Layer& L) {
  expect_bottoms(L, 0, 0);
  const auto& ip = L.p->input_param();
  const int nt = L.p->top_size();
  if (ip.shape_size() != 0 && ip.shape_size() != 1 && ip.shape_size() != nt)
    fail("input_param.shape", "give 0, 1 or " + std::to_string(nt) + " shapes, found " +
                                  std::to_string(ip.shape_size()));
  for (int i = 0; i < nt; ++i) {
    const std::string& name = L.p->top(i);
    Shape s;
    if (auto it = opt_.input_shapes.find(name); it != opt_.input_shapes.end()) {
      s = it->second;
    } else if (ip.shape_size() > 0) {
      for (int64_t d : ip.shape(ip.shape_size() == 1 ? 0 : i).dim()) s.push_back(d);
    } else {
      fail("input_param.shape", "input '" + name +
                                    "' has no shape (give input_param.shape, or the shape as an "
                                    "import option)");
    }
    for (int64_t d : s)
      if (d < 0) fail("input_param.shape", "input '" + name + "' has a negative dimension " + ints_str(s));
    const std::string& vn = L.top_names[static_cast<size_t>(i)];
    used_names_.insert(vn);
    int v = g_.add_input(vn, DType::f32, s);
    L.tops[static_cast<size_t>(i)] = v;
  }
  // An input layer's transform_param (Caffe's DataTransformer), for tools that feed images.
  if (L.p->has_transform_param() && !g_.metadata.count("caffe.transform.inputs")) {
    const auto& tp = L.p->transform_param();
    std::string tops, means;
    for (int i = 0; i < nt; ++i) tops += (i ? "," : "") + L.p->top(i);
    for (float m : tp.mean_value()) means += (means.empty() ? "" : ",") + fmt_float(m);
    auto& md = g_.metadata;
    md["caffe.transform.inputs"] = tops;
    if (tp.has_scale()) md["caffe.transform.scale"] = fmt_float(tp.scale());
    if (!means.empty()) md["caffe.transform.mean_value"] = means;
    if (tp.has_mean_file()) md["caffe.transform.mean_file"] = tp.mean_file();
    if (tp.crop_size()) md["caffe.transform.crop_size"] = std::to_string(tp.crop_size());
    if (tp.force_color()) md["caffe.transform.force_color"] = "1";
    if (tp.force_gray()) md["caffe.transform.force_gray"] = "1";
  }
}

// Convolution / Deconvolution (BaseConvolutionLayer parameters).
void CaffeBuilder::convert_conv(Layer& L, bool deconv) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& cp = L.p->convolution_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  int axis = canonical_axis(cp.axis(), rank, "axis");
  if (axis != 1)
    fail("axis", "only channel axis 1 (N, C, spatial...) is supported, found " + std::to_string(cp.axis()));
  const int nsp = rank - 2;
  if (nsp < 1 || nsp > 3)
    fail("bottom", "expects an input with 1 to 3 spatial axes, found shape " + ints_str(x));
  auto per_axis = [&](const google::protobuf::RepeatedField<uint32_t>& v, bool has_hw, uint32_t h,
                      uint32_t w, int64_t dflt, const std::string& field) {
    std::vector<int64_t> r;
    if (has_hw) {
      if (nsp != 2) fail(field + "_h", field + "_h/_w are for 2-D convolution only");
      if (v.size() != 0) fail(field, "give either " + field + " or " + field + "_h/_w, not both");
      return std::vector<int64_t>{h, w};
    }
    if (v.size() == 0) return std::vector<int64_t>(static_cast<size_t>(nsp), dflt);
    if (v.size() != 1 && v.size() != nsp)
      fail(field, "expects 1 or " + std::to_string(nsp) + " values, found " + std::to_string(v.size()));
    for (int i = 0; i < nsp; ++i) r.push_back(v[v.size() == 1 ? 0 : i]);
    return r;
  };
  if (cp.has_kernel_h() != cp.has_kernel_w())
    fail("kernel_h", "kernel_h and kernel_w must be given together");
  if (!cp.has_kernel_h() && cp.kernel_size_size() == 0)
    fail("kernel_size", "kernel size is missing");
  auto k = per_axis(cp.kernel_size(), cp.has_kernel_h(), cp.kernel_h(), cp.kernel_w(), 1, "kernel_size");
  auto s = per_axis(cp.stride(), cp.has_stride_h() || cp.has_stride_w(),
                    cp.has_stride_h() ? cp.stride_h() : 1, cp.has_stride_w() ? cp.stride_w() : 1, 1, "stride");
  auto p = per_axis(cp.pad(), cp.has_pad_h() || cp.has_pad_w(), cp.pad_h(), cp.pad_w(), 0, "pad");
  std::vector<int64_t> d;
  if (cp.dilation_size() == 0) d.assign(static_cast<size_t>(nsp), 1);
  else if (cp.dilation_size() == 1 || cp.dilation_size() == nsp)
    for (int i = 0; i < nsp; ++i) d.push_back(cp.dilation(cp.dilation_size() == 1 ? 0 : i));
  else fail("dilation", "expects 1 or " + std::to_string(nsp) + " values");
  for (int i = 0; i < nsp; ++i) {
    if (k[static_cast<size_t>(i)] < 1) fail("kernel_size", "kernel dimensions must be > 0");
    if (s[static_cast<size_t>(i)] < 1) fail("stride", "stride dimensions must be > 0");
    if (d[static_cast<size_t>(i)] < 1) fail("dilation", "dilation dimensions must be > 0");
  }
  const int64_t group = cp.group();
  const int64_t num_output = cp.num_output();
  const int64_t C = x[1];
  if (num_output < 1) fail("num_output", "num_output must be > 0");
  if (group < 1) fail("group", "group must be > 0");
  if (C % group != 0)
    fail("group", "input channels " + std::to_string(C) + " are not a multiple of group " + std::to_string(group));
  if (num_output % group != 0)
    fail("group", "num_output " + std::to_string(num_output) + " is not a multiple of group " + std::to_string(group));
  Shape wshape = deconv ? Shape{C, num_output / group} : Shape{num_output, C / group};
  wshape.insert(wshape.end(), k.begin(), k.end());
  expect_blobs(L, cp.bias_term() ? 2 : 1);
  std::vector<int> ins = {L.in[0], constant(L, "weights", blob(L, 0, wshape, "weights"))};
  if (cp.bias_term()) ins.push_back(constant(L, "bias", blob(L, 1, {num_output}, "bias")));
  std::vector<int64_t> pads = p;
  pads.insert(pads.end(), p.begin(), p.end());
  Attributes a;
  a.set("kernel_shape", k);
  a.set("strides", s);
  a.set("pads", pads);
  a.set("dilations", d);
  a.set("group", group);
  emit_top(L, deconv ? "ConvTranspose" : "Conv", ins, a);
}

void CaffeBuilder::convert_pool(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 2);
  if (L.p->top_size() == 2) fail("top", "the second (mask) top of MAX pooling is not supported");
  const auto& pp = L.p->pooling_param();
  const Shape& x = L.shape[0];
  if (x.size() != 4) fail("bottom", "Caffe pooling expects a 4-axis blob, found shape " + ints_str(x));
  if (pp.pool() == pb::PoolingParameter::STOCHASTIC)
    fail("pool", "STOCHASTIC pooling is not supported");
  const bool max = pp.pool() == pb::PoolingParameter::MAX;
  if (pp.global_pooling()) {
    if (pp.has_kernel_size() || pp.has_kernel_h() || pp.has_kernel_w())
      fail("global_pooling", "with global_pooling the kernel size cannot be given");
    if (pp.pad() != 0 || pp.pad_h() != 0 || pp.pad_w() != 0)
      fail("pad", "with global_pooling the padding must be 0");
    if ((pp.has_stride() && pp.stride() != 1) || (pp.has_stride_h() && pp.stride_h() != 1) ||
        (pp.has_stride_w() && pp.stride_w() != 1))
      fail("stride", "with global_pooling the stride must be 1");
    emit_top(L, max ? "GlobalMaxPool" : "GlobalAveragePool", {L.in[0]}, {});
    return;
  }
  if (pp.has_kernel_size() == (pp.has_kernel_h() || pp.has_kernel_w()))
    fail("kernel_size", "give either kernel_size or kernel_h and kernel_w");
  if (pp.has_kernel_h() != pp.has_kernel_w())
    fail("kernel_h", "kernel_h and kernel_w must be given together");
  const int64_t kh = pp.has_kernel_size() ? pp.kernel_size() : pp.kernel_h();
  const int64_t kw = pp.has_kernel_size() ? pp.kernel_size() : pp.kernel_w();
  if (pp.has_pad() && (pp.has_pad_h() || pp.has_pad_w()))
    fail("pad", "give either pad or pad_h and pad_w");
  const int64_t ph = pp.has_pad_h() ? pp.pad_h() : pp.pad();
  const int64_t pw = pp.has_pad_w() ? pp.pad_w() : pp.pad();
  if (pp.has_stride() && (pp.has_stride_h() || pp.has_stride_w()))
    fail("stride", "give either stride or stride_h and stride_w");
  const int64_t sh = pp.has_stride_h() ? pp.stride_h() : pp.stride();
  const int64_t sw = pp.has_stride_w() ? pp.stride_w() : pp.stride();
  if (kh < 1 || kw < 1) fail("kernel_size", "kernel dimensions must be > 0");
  if (sh < 1 || sw < 1) fail("stride", "stride dimensions must be > 0");
  if (ph >= kh || pw >= kw) fail("pad", "padding must be smaller than the kernel");
  const bool ceil = pp.round_mode() == pb::PoolingParameter::CEIL;
  // Caffe's output size, and the canonical ceil/floor rule's, must agree.
  auto caffe_out = [&](int64_t in, int64_t k, int64_t p, int64_t s) {
    const int64_t span = in + 2 * p - k;
    int64_t o = ceil ? (span >= 0 ? (span + s - 1) / s : -((-span) / s)) + 1
                     : (span >= 0 ? span / s : -((-span + s - 1) / s)) + 1;
    if (p > 0 && (o - 1) * s >= in + p) --o;
    return o;
  };
  auto canonical_out = [&](int64_t in, int64_t k, int64_t p, int64_t s) {
    const int64_t span = in + 2 * p - k;
    if (!ceil) return span / s + 1;
    int64_t o = (span + s - 1) / s + 1;
    if ((o - 1) * s >= in + p) --o;
    return o;
  };
  const int64_t H = x[2], W = x[3];
  if (H + 2 * ph < kh || W + 2 * pw < kw)
    fail("kernel_size", "the kernel " + ints_str({kh, kw}) + " is larger than the padded input " +
                            ints_str({H + 2 * ph, W + 2 * pw}));
  if (caffe_out(H, kh, ph, sh) != canonical_out(H, kh, ph, sh) ||
      caffe_out(W, kw, pw, sw) != canonical_out(W, kw, pw, sw))
    fail("stride", "Caffe would make a pooling window that starts past the input (stride "
                   "larger than kernel without padding); not supported");
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{kh, kw});
  a.set("strides", std::vector<int64_t>{sh, sw});
  a.set("pads", std::vector<int64_t>{ph, pw, ph, pw});
  a.set("ceil_mode", int64_t{ceil ? 1 : 0});
  if (!max) a.set("count_include_pad", int64_t{1});
  emit_top(L, max ? "MaxPool" : "AveragePool", {L.in[0]}, a);
}

void CaffeBuilder::convert_inner_product(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& ip = L.p->inner_product_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  const int axis = canonical_axis(ip.axis(), rank, "axis");
  const int64_t N = ip.num_output();
  if (N < 1) fail("num_output", "num_output must be > 0");
  const int64_t K = numel_of(Shape(x.begin() + axis, x.end()));
  expect_blobs(L, ip.bias_term() ? 2 : 1);
  // Caffe's weights are (N, K), or (K, N) with transpose: true.
  Tensor w = blob(L, 0, ip.transpose() ? Shape{K, N} : Shape{N, K}, "weights");
  int wv = constant(L, "weights", w);
  int bv = ip.bias_term() ? constant(L, "bias", blob(L, 1, {N}, "bias")) : -1;
  // Flatten from `axis` (C,H,W order: NCHW is Caffe's own layout), then Gemm.
  int flat = L.in[0];
  if (!(rank == 2 && axis == 1)) {
    Attributes fa;
    fa.set("axis", static_cast<int64_t>(axis));
    flat = emit(L, "Flatten", {L.in[0]}, fa, "flatten");
  }
  Attributes ga;
  ga.set("transB", int64_t{ip.transpose() ? 0 : 1});
  std::vector<int> gin = {flat, wv};
  if (bv >= 0) gin.push_back(bv);
  if (axis == 1) {
    emit_top(L, "Gemm", gin, ga);
    return;
  }
  int y = emit(L, "Gemm", gin, ga, "gemm");
  std::vector<int64_t> out(x.begin(), x.begin() + axis);  // x[:axis] + [N]
  if (!out.empty()) out[0] = -1;                           // the batch may change
  out.push_back(N);
  emit_top(L, "Reshape", {y, i64s(L, "shape", out)}, {});
}

void CaffeBuilder::convert_batchnorm(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& bp = L.p->batch_norm_param();
  const Shape& x = L.shape[0];
  if (x.size() < 2) fail("bottom", "expects a blob of at least 2 axes (N, C, ...), found " + ints_str(x));
  if (bp.has_use_global_stats() && !bp.use_global_stats()) {
    // Caffe then normalizes with the statistics of the batch itself, per channel over N and
    // the spatial axes: (x - E[x]) / sqrt(E[(x - E[x])^2] + eps). The stored blobs are unused.
    std::vector<int64_t> axes = {0};
    for (int64_t i = 2; i < static_cast<int64_t>(x.size()); ++i) axes.push_back(i);
    batch_normalize(L, L.in[0], axes, bp.eps(), false, false, true);
    return;
  }
  const int64_t C = x[1];
  expect_blobs(L, 3);
  Tensor mean = blob(L, 0, {C}, "mean (scaled)");
  Tensor var = blob(L, 1, {C}, "variance (scaled)");
  Tensor factor = blob(L, 2, {1}, "moving-average factor");
  // Caffe: scale_factor = blob2 == 0 ? 0 : 1 / blob2; mean = blob0 * s, var = blob1 * s (float).
  const float f = factor.data<float>()[0];
  const float sf = f == 0.0f ? 0.0f : 1.0f / f;
  for (int64_t c = 0; c < C; ++c) {
    mean.data<float>()[c] *= sf;
    var.data<float>()[c] *= sf;
  }
  Tensor ones(DType::f32, {C}), zeros(DType::f32, {C});
  for (int64_t c = 0; c < C; ++c) ones.data<float>()[c] = 1.0f;
  Attributes a;
  a.set("epsilon", static_cast<double>(bp.eps()));
  emit_top(L, "BatchNormalization",
           {L.in[0], constant(L, "scale", ones), constant(L, "bias", zeros), constant(L, "mean", mean),
            constant(L, "var", var)},
           a);
}

// A tensor of shape `s` applied to axes [axis, axis + rank(s)) of a blob of rank `rank`:
// reshaped to s + trailing 1s so that numpy broadcasting lines it up.
int CaffeBuilder::broadcast_operand(Layer& L, int v, const Shape& s, int axis, int rank,
                                    const std::string& role) {
  const int trailing = rank - axis - static_cast<int>(s.size());
  if (s.empty() || trailing == 0) return v;
  Shape t = s;
  t.insert(t.end(), static_cast<size_t>(trailing), 1);
  const Value& val = g_.values[static_cast<size_t>(v)];
  if (val.is_constant()) return constant(L, role, val.constant.reshaped(t));
  return emit(L, "Reshape", {v, i64s(L, role + "_shape", t)}, {}, role + "_reshape");
}

void CaffeBuilder::convert_scale_bias(Layer& L, bool is_scale) {
  expect_bottoms(L, 1, 2);
  expect_tops(L, 1, 1);
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  const int64_t axis_param = is_scale ? L.p->scale_param().axis() : L.p->bias_param().axis();
  const int64_t num_axes = is_scale ? L.p->scale_param().num_axes() : L.p->bias_param().num_axes();
  const bool bias_term = is_scale && L.p->scale_param().bias_term();
  const std::string role = is_scale ? "scale" : "bias";
  int operand = -1;
  Shape os;
  int axis = 0;
  int next_blob = 0;
  if (L.in.size() == 2) {
    os = L.shape[1];
    axis = os.empty() ? 0 : canonical_axis(axis_param, rank, "axis");
    if (axis + os.size() > x.size())
      fail("bottom", "the " + role + " blob " + ints_str(os) + " does not fit the input " + ints_str(x) +
                         " from axis " + std::to_string(axis));
    for (size_t i = 0; i < os.size(); ++i)
      if (os[i] != x[static_cast<size_t>(axis) + i])
        fail("bottom", "the " + role + " blob " + ints_str(os) + " does not match the input " +
                           ints_str(x) + " from axis " + std::to_string(axis));
    operand = L.in[1];
  } else {
    if (num_axes < -1) fail("num_axes", "num_axes must be >= -1");
    axis = canonical_axis(axis_param, rank == 0 ? 1 : rank, "axis");
    const int64_t end = num_axes == -1 ? rank : axis + num_axes;
    if (end > rank)
      fail("num_axes", "axis " + std::to_string(axis) + " + num_axes " + std::to_string(num_axes) +
                           " exceeds the input's " + std::to_string(rank) + " axes");
    os.assign(x.begin() + axis, x.begin() + end);
    if (os.empty()) axis = 0;
    expect_blobs(L, bias_term ? 2 : 1);
    operand = constant(L, role, blob(L, 0, os, role));
    next_blob = 1;
  }
  if (L.in.size() == 2) expect_blobs(L, bias_term ? 1 : 0);
  int op = broadcast_operand(L, operand, os, axis, rank, role);
  if (!bias_term) {
    emit_top(L, is_scale ? "Mul" : "Add", {L.in[0], op}, {});
    return;
  }
  int y = emit(L, "Mul", {L.in[0], op}, {}, "mul");
  int bias = constant(L, "bias", blob(L, next_blob, os, "bias"));
  emit_top(L, "Add", {y, broadcast_operand(L, bias, os, axis, rank, "bias")}, {});
}

void CaffeBuilder::convert_lrn(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& lp = L.p->lrn_param();
  const Shape& x = L.shape[0];
  if (x.size() != 4) fail("bottom", "LRN expects a 4-axis blob, found " + ints_str(x));
  const int64_t size = lp.local_size();
  if (size % 2 != 1) fail("local_size", "LRN supports only odd local_size, found " + std::to_string(size));
  if (lp.norm_region() == pb::LRNParameter::ACROSS_CHANNELS) {
    Attributes a;
    a.set("size", size);
    a.set("alpha", static_cast<double>(lp.alpha()));
    a.set("beta", static_cast<double>(lp.beta()));
    a.set("bias", static_cast<double>(lp.k()));
    emit_top(L, "LRN", {L.in[0]}, a);
    return;
  }
  // WITHIN_CHANNEL, as Caffe builds it: y = x * (1 + alpha * avgpool_{size x size}(x^2))^-beta
  // where the pool pads (size-1)/2 and divides by size^2 (padding counts); k is not used.
  const int64_t pad = (size - 1) / 2;
  int sq = emit(L, "Mul", {L.in[0], L.in[0]}, {}, "square");
  Attributes pa;
  pa.set("kernel_shape", std::vector<int64_t>{size, size});
  pa.set("strides", std::vector<int64_t>{1, 1});
  pa.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
  pa.set("ceil_mode", int64_t{1});
  pa.set("count_include_pad", int64_t{1});
  int avg = emit(L, "AveragePool", {sq}, pa, "pool");
  int sc = emit(L, "Mul", {avg, scalar(L, "alpha", lp.alpha())}, {}, "alpha");
  int sh = emit(L, "Add", {sc, scalar(L, "one", 1.0)}, {}, "shift");
  int pw = emit(L, "Pow", {sh, scalar(L, "neg_beta", -static_cast<double>(lp.beta()))}, {}, "power");
  emit_top(L, "Mul", {L.in[0], pw}, {});
}

void CaffeBuilder::convert_relu(Layer& L) {
  const float slope = L.p->relu_param().negative_slope();
  if (slope == 0.0f) {
    convert_unary(L, "Relu");
    return;
  }
  Attributes a;
  a.set("alpha", static_cast<double>(slope));
  convert_unary(L, "LeakyRelu", a);
}

void CaffeBuilder::convert_unary(Layer& L, const std::string& op, Attributes a) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  emit_top(L, op, {L.in[0]}, std::move(a));
}

void CaffeBuilder::convert_prelu(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const Shape& x = L.shape[0];
  if (x.size() < 2) fail("bottom", "PReLU expects a blob of at least 2 axes, found " + ints_str(x));
  expect_blobs(L, 1);
  int slope;
  if (L.p->prelu_param().channel_shared()) {
    slope = constant(L, "slope", blob(L, 0, {}, "slope"));
  } else {
    Tensor t = blob(L, 0, {x[1]}, "slope");
    Shape s = {x[1]};
    s.insert(s.end(), x.size() - 2, 1);
    slope = constant(L, "slope", t.reshaped(s));
  }
  emit_top(L, "PRelu", {L.in[0], slope}, {});
}

// y = (shift + scale * x) ^ power
void CaffeBuilder::convert_power(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& pp = L.p->power_param();
  const float power = pp.power(), scale = pp.scale(), shift = pp.shift();
  if (power * scale == 0.0f) {
    // Caffe writes the constant (power == 0 ? 1 : shift^power) whatever x is.
    const float value = power == 0.0f ? 1.0f : std::pow(shift, power);
    int shp = emit(L, "Shape", {L.in[0]}, {}, "shape");
    Attributes a;
    a.set("value", Tensor::from_vector<float>({1}, {value}));
    emit_top(L, "ConstantOfShape", {shp}, a);
    return;
  }
  int v = L.in[0];
  const bool do_scale = scale != 1.0f, do_shift = shift != 0.0f, do_pow = power != 1.0f;
  if (!do_scale && !do_shift && !do_pow) {
    emit_top(L, "Identity", {v}, {});
    return;
  }
  if (do_scale) {
    int s = scalar(L, "scale", scale);
    v = (do_shift || do_pow) ? emit(L, "Mul", {v, s}, {}, "scale") : emit_top(L, "Mul", {v, s}, {});
  }
  if (do_shift) {
    int s = scalar(L, "shift", shift);
    v = do_pow ? emit(L, "Add", {v, s}, {}, "shift") : emit_top(L, "Add", {v, s}, {});
  }
  if (do_pow) emit_top(L, "Pow", {v, scalar(L, "power", power)}, {});
}

// y = base ^ (shift + scale * x) = outer * exp(inner * x), as Caffe computes it.
void CaffeBuilder::convert_exp(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& ep = L.p->exp_param();
  const float base = ep.base();
  if (base != -1.0f && !(base > 0.0f)) fail("base", "base must be > 0 (or -1 for e)");
  const float log_base = base == -1.0f ? 1.0f : std::log(base);
  const float inner = log_base * ep.scale();
  const float outer = ep.shift() == 0.0f ? 1.0f
                      : base == -1.0f    ? std::exp(ep.shift())
                                         : std::pow(base, ep.shift());
  int v = L.in[0];
  if (inner != 1.0f) v = emit(L, "Mul", {v, scalar(L, "inner_scale", inner)}, {}, "scale");
  if (outer == 1.0f) {
    emit_top(L, "Exp", {v}, {});
    return;
  }
  v = emit(L, "Exp", {v}, {}, "exp");
  emit_top(L, "Mul", {v, scalar(L, "outer_scale", outer)}, {});
}

// y = log_base(shift + scale * x) = ln(shift + scale * x) / ln(base)
void CaffeBuilder::convert_log(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& lp = L.p->log_param();
  const float base = lp.base();
  if (base != -1.0f && !(base > 0.0f)) fail("base", "base must be > 0 (or -1 for e)");
  const float base_scale = base == -1.0f ? 1.0f : 1.0f / std::log(base);
  int v = L.in[0];
  if (lp.scale() != 1.0f) v = emit(L, "Mul", {v, scalar(L, "scale", lp.scale())}, {}, "scale");
  if (lp.shift() != 0.0f) v = emit(L, "Add", {v, scalar(L, "shift", lp.shift())}, {}, "shift");
  if (base_scale == 1.0f) {
    emit_top(L, "Log", {v}, {});
    return;
  }
  v = emit(L, "Log", {v}, {}, "log");
  emit_top(L, "Mul", {v, scalar(L, "base_scale", base_scale)}, {});
}

// y = x > threshold ? 1 : 0
void CaffeBuilder::convert_threshold(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  int gt = emit(L, "Greater", {L.in[0], scalar(L, "threshold", L.p->threshold_param().threshold())}, {},
                "greater");
  Attributes a;
  a.set("to", int64_t{1});  // ONNX FLOAT
  emit_top(L, "Cast", {gt}, a);
}

void CaffeBuilder::convert_softmax(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  Attributes a;
  a.set("axis", static_cast<int64_t>(
                    canonical_axis(L.p->softmax_param().axis(), static_cast<int>(L.shape[0].size()), "axis")));
  emit_top(L, "Softmax", {L.in[0]}, a);
}

void CaffeBuilder::convert_eltwise(Layer& L) {
  expect_bottoms(L, 2, -1);
  expect_tops(L, 1, 1);
  const auto& ep = L.p->eltwise_param();
  for (size_t i = 1; i < L.shape.size(); ++i)
    if (L.shape[i] != L.shape[0])
      fail("bottom", "Eltwise needs bottoms of one shape, found " + ints_str(L.shape[0]) + " and " +
                         ints_str(L.shape[i]));
  const int n = static_cast<int>(L.in.size());
  if (ep.coeff_size() != 0 && ep.operation() != pb::EltwiseParameter::SUM)
    fail("coeff", "Eltwise takes coefficients only for SUM");
  if (ep.coeff_size() != 0 && ep.coeff_size() != n)
    fail("coeff", "Eltwise SUM needs one coefficient per bottom (" + std::to_string(n) + "), found " +
                      std::to_string(ep.coeff_size()));
  switch (ep.operation()) {
    case pb::EltwiseParameter::SUM: {
      std::vector<int> terms;
      for (int i = 0; i < n; ++i) {
        const float c = ep.coeff_size() ? ep.coeff(i) : 1.0f;
        if (c == 1.0f) terms.push_back(L.in[static_cast<size_t>(i)]);
        else
          terms.push_back(emit(L, "Mul", {L.in[static_cast<size_t>(i)], scalar(L, "coeff" + std::to_string(i), c)},
                               {}, "coeff" + std::to_string(i)));
      }
      emit_top(L, n == 2 ? "Add" : "Sum", terms, {});
      return;
    }
    case pb::EltwiseParameter::PROD: {
      int v = L.in[0];
      for (int i = 1; i < n; ++i)
        v = i + 1 == n ? emit_top(L, "Mul", {v, L.in[static_cast<size_t>(i)]}, {})
                       : emit(L, "Mul", {v, L.in[static_cast<size_t>(i)]}, {}, "prod" + std::to_string(i));
      return;
    }
    case pb::EltwiseParameter::MAX:
      emit_top(L, "Max", L.in, {});
      return;
  }
  fail("operation", "unknown Eltwise operation");
}

void CaffeBuilder::convert_concat(Layer& L) {
  expect_bottoms(L, 1, -1);
  expect_tops(L, 1, 1);
  const auto& cp = L.p->concat_param();
  const int rank = static_cast<int>(L.shape[0].size());
  int axis;
  if (cp.has_concat_dim()) {
    if (static_cast<int>(cp.concat_dim()) >= rank) fail("concat_dim", "concat_dim is out of range");
    axis = static_cast<int>(cp.concat_dim());
  } else {
    axis = canonical_axis(cp.axis(), rank, "axis");
  }
  Attributes a;
  a.set("axis", static_cast<int64_t>(axis));
  emit_top(L, "Concat", L.in, a);
}

void CaffeBuilder::convert_slice(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, -1);
  const auto& sp = L.p->slice_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  int axis;
  if (sp.has_slice_dim()) {
    if (static_cast<int>(sp.slice_dim()) >= rank) fail("slice_dim", "slice_dim is out of range");
    axis = static_cast<int>(sp.slice_dim());
  } else {
    axis = canonical_axis(sp.axis(), rank, "axis");
  }
  const int64_t dim = x[static_cast<size_t>(axis)];
  const int nt = L.p->top_size();
  std::vector<int64_t> sizes;
  if (sp.slice_point_size() > 0) {
    if (sp.slice_point_size() != nt - 1)
      fail("slice_point", std::to_string(nt) + " tops need " + std::to_string(nt - 1) +
                              " slice points, found " + std::to_string(sp.slice_point_size()));
    int64_t prev = 0;
    for (int i = 0; i < sp.slice_point_size(); ++i) {
      const int64_t p = sp.slice_point(i);
      if (p <= prev || p >= dim)
        fail("slice_point", "slice points must increase strictly inside (0, " + std::to_string(dim) + ")");
      sizes.push_back(p - prev);
      prev = p;
    }
    sizes.push_back(dim - prev);
  } else {
    if (dim % nt != 0)
      fail("top", "axis " + std::to_string(axis) + " of size " + std::to_string(dim) +
                      " does not split evenly into " + std::to_string(nt) + " tops");
    sizes.assign(static_cast<size_t>(nt), dim / nt);
  }
  if (nt == 1) {
    emit_top(L, "Identity", {L.in[0]}, {});
    return;
  }
  Attributes a;
  a.set("axis", static_cast<int64_t>(axis));
  int ni = add_node(L, "Split", {L.in[0], i64s(L, "split", sizes)}, a, L.top_names, "");
  const Node& node = g_.nodes[static_cast<size_t>(ni)];
  for (int i = 0; i < nt; ++i) L.tops[static_cast<size_t>(i)] = node.outputs[static_cast<size_t>(i)];
}

void CaffeBuilder::convert_split(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, -1);
  for (size_t i = 0; i < L.top_names.size(); ++i) emit_top(L, "Identity", {L.in[0]}, {}, i);
}

void CaffeBuilder::convert_flatten(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& fp = L.p->flatten_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  const int start = canonical_axis(fp.axis(), rank, "axis");
  const int end = canonical_axis(fp.end_axis(), rank, "end_axis");
  if (end < start) fail("end_axis", "end_axis comes before axis");
  std::vector<int64_t> out(static_cast<size_t>(start), 0);  // leading dims kept (0 = copy)
  out.push_back(-1);
  for (int i = end + 1; i < rank; ++i) out.push_back(x[static_cast<size_t>(i)]);
  emit_top(L, "Reshape", {L.in[0], i64s(L, "shape", out)}, {});
}

void CaffeBuilder::convert_reshape(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& rp = L.p->reshape_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  // Caffe's ReshapeLayer: axis may be in [-rank-1, rank]; num_axes -1 = to the end.
  const int64_t ax = rp.axis();
  if (ax < -rank - 1 || ax > rank) fail("axis", "axis " + std::to_string(ax) + " is out of range");
  const int start = static_cast<int>(ax < 0 ? ax + rank + 1 : ax);
  if (rp.num_axes() < -1) fail("num_axes", "num_axes must be >= -1");
  const int end = rp.num_axes() == -1 ? rank : start + static_cast<int>(rp.num_axes());
  if (end > rank) fail("num_axes", "axis + num_axes exceeds the input's axes");
  std::vector<int64_t> spec(rp.shape().dim().begin(), rp.shape().dim().end());
  Shape out(x.begin(), x.begin() + start);
  std::vector<int64_t> code(static_cast<size_t>(start), 0);  // 0 = copy (same position)
  int inferred = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    const int64_t d = spec[i];
    if (d == 0) {
      if (start + static_cast<int>(i) >= rank) fail("shape", "dim " + std::to_string(i) + " is 0 (copy) but the input has no such axis");
      out.push_back(x[static_cast<size_t>(start) + i]);
      code.push_back(start + static_cast<int>(i) < rank ? 0 : out.back());
    } else if (d == -1) {
      if (inferred >= 0) fail("shape", "only one dim may be -1");
      inferred = static_cast<int>(out.size());
      out.push_back(1);
      code.push_back(-1);
    } else if (d < -1) {
      fail("shape", "dims must be >= -1, found " + std::to_string(d));
    } else {
      out.push_back(d);
      code.push_back(d);
    }
  }
  for (int i = end; i < rank; ++i) {
    out.push_back(x[static_cast<size_t>(i)]);
    code.push_back(x[static_cast<size_t>(i)]);
  }
  const int64_t known = numel_of(out);  // the -1 slot counts as 1 here
  const int64_t total = numel_of(x);
  if (inferred >= 0) {
    if (known == 0 || total % known != 0)
      fail("shape", "cannot infer the -1 dim: " + std::to_string(total) + " values into " + ints_str(out));
    out[static_cast<size_t>(inferred)] = total / known;
  }
  if (numel_of(out) != total)
    fail("shape", "reshape of " + ints_str(x) + " (" + std::to_string(total) + " values) into " +
                      ints_str(out) + " changes the count");
  // Positions before `start` and 0-copies map to the same input position (ONNX 0 = copy);
  // trailing kept dims shift position, so they are explicit.
  emit_top(L, "Reshape", {L.in[0], i64s(L, "shape", code)}, {});
}

void CaffeBuilder::convert_crop(Layer& L) {
  expect_bottoms(L, 2, 2);
  expect_tops(L, 1, 1);
  const auto& cp = L.p->crop_param();
  const Shape& x = L.shape[0];
  const Shape& ref = L.shape[1];
  const int rank = static_cast<int>(x.size());
  if (ref.size() != x.size())
    fail("bottom", "Crop needs bottoms of one rank, found " + ints_str(x) + " and " + ints_str(ref));
  const int start = canonical_axis(cp.axis(), rank, "axis");
  if (cp.offset_size() > 1 && cp.offset_size() != rank - start)
    fail("offset", "give 0, 1 or " + std::to_string(rank - start) + " offsets, found " +
                       std::to_string(cp.offset_size()));
  std::vector<int64_t> starts, ends, axes;
  for (int i = start; i < rank; ++i) {
    const int64_t off = cp.offset_size() == 0 ? 0 : cp.offset(cp.offset_size() == 1 ? 0 : i - start);
    const int64_t size = ref[static_cast<size_t>(i)];
    if (off + size > x[static_cast<size_t>(i)])
      fail("offset", "crop of axis " + std::to_string(i) + " (offset " + std::to_string(off) + ", size " +
                         std::to_string(size) + ") exceeds the input's " +
                         std::to_string(x[static_cast<size_t>(i)]));
    starts.push_back(off);
    ends.push_back(off + size);
    axes.push_back(i);
  }
  emit_top(L, "Slice",
           {L.in[0], i64s(L, "starts", starts), i64s(L, "ends", ends), i64s(L, "axes", axes)}, {});
}

void CaffeBuilder::convert_argmax(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& ap = L.p->argmax_param();
  Attributes a;
  if (ap.has_axis())
    a.set("axis", static_cast<int64_t>(canonical_axis(ap.axis(), static_cast<int>(L.shape[0].size()), "axis")));
  a.set("top_k", static_cast<int64_t>(ap.top_k()));
  a.set("out_max_val", int64_t{ap.out_max_val() ? 1 : 0});
  emit_top(L, "CaffeArgMax", {L.in[0]}, a);
}

void CaffeBuilder::convert_permute(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const int rank = static_cast<int>(L.shape[0].size());
  std::vector<int64_t> perm;
  std::set<int64_t> seen;
  for (uint32_t o : L.p->permute_param().order()) {
    if (static_cast<int>(o) >= rank) fail("order", "order " + std::to_string(o) + " is out of range");
    if (!seen.insert(o).second) fail("order", "order " + std::to_string(o) + " is repeated");
    perm.push_back(o);
  }
  for (int i = 0; i < rank; ++i)
    if (!seen.count(i)) perm.push_back(i);  // unlisted axes follow in order (Caffe's rule)
  Attributes a;
  a.set("perm", perm);
  emit_top(L, "Transpose", {L.in[0]}, a);
}

void CaffeBuilder::convert_clip(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& cp = L.p->clip_param();
  emit_top(L, "Clip", {L.in[0], scalar(L, "min", cp.min()), scalar(L, "max", cp.max())}, {});
}

int CaffeBuilder::reduce(Layer& L, const std::string& op, int v, const std::vector<int64_t>& axes,
                         bool keep, const std::string& suffix) {
  Attributes a;
  a.set("keepdims", int64_t{keep ? 1 : 0});
  return emit(L, op, {v, i64s(L, suffix + "_axes", axes)}, a, suffix);
}

// (x - mean) / sqrt(var + eps), or / (sqrt(var) + eps) (MVN), or x - mean only; mean and var
// over `axes` (kept as size 1).
int CaffeBuilder::batch_normalize(Layer& L, int x, const std::vector<int64_t>& axes, double eps,
                                  bool eps_outside_sqrt, bool subtract_mean_only,
                                  bool final_node) {
  int mean = reduce(L, "ReduceMean", x, axes, true, "mean");
  if (subtract_mean_only)
    return final_node ? emit_top(L, "Sub", {x, mean}, {}) : emit(L, "Sub", {x, mean}, {}, "centered");
  int d = emit(L, "Sub", {x, mean}, {}, "centered");
  int sq = emit(L, "Mul", {d, d}, {}, "square");
  int var = reduce(L, "ReduceMean", sq, axes, true, "var");
  int den;
  if (eps_outside_sqrt) {
    int sd = emit(L, "Sqrt", {var}, {}, "std");
    den = emit(L, "Add", {sd, scalar(L, "eps", eps)}, {}, "std_eps");
  } else {
    int ve = emit(L, "Add", {var, scalar(L, "eps", eps)}, {}, "var_eps");
    den = emit(L, "Sqrt", {ve}, {}, "std");
  }
  return final_node ? emit_top(L, "Div", {d, den}, {}) : emit(L, "Div", {d, den}, {}, "normalized");
}

// MVN: per item (and per channel unless across_channels), x - mean, divided by
// (sqrt(var) + eps) when normalize_variance (Caffe adds eps after the square root).
void CaffeBuilder::convert_mvn(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& mp = L.p->mvn_param();
  const int rank = static_cast<int>(L.shape[0].size());
  if (rank < 2) fail("bottom", "MVN expects a blob of at least 2 axes, found " + ints_str(L.shape[0]));
  std::vector<int64_t> axes;
  for (int i = mp.across_channels() ? 1 : 2; i < rank; ++i) axes.push_back(i);
  if (axes.empty()) fail("bottom", "MVN needs axes to normalize over, the blob is " + ints_str(L.shape[0]));
  batch_normalize(L, L.in[0], axes, mp.eps(), true, !mp.normalize_variance(), true);
}

// Reduction: axes [axis, end) reduced to nothing (output shape x[:axis]), times coeff.
void CaffeBuilder::convert_reduction(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& rp = L.p->reduction_param();
  const int rank = static_cast<int>(L.shape[0].size());
  const int axis = canonical_axis(rp.axis(), rank, "axis");
  std::vector<int64_t> axes;
  for (int i = axis; i < rank; ++i) axes.push_back(i);
  std::string op;
  switch (rp.operation()) {
    case pb::ReductionParameter::SUM: op = "ReduceSum"; break;
    case pb::ReductionParameter::ASUM: op = "ReduceL1"; break;
    case pb::ReductionParameter::SUMSQ: op = "ReduceSumSquare"; break;
    case pb::ReductionParameter::MEAN: op = "ReduceMean"; break;
  }
  Attributes a;
  a.set("keepdims", int64_t{0});
  if (rp.coeff() == 1.0f) {
    emit_top(L, op, {L.in[0], i64s(L, "axes", axes)}, a);
    return;
  }
  int r = emit(L, op, {L.in[0], i64s(L, "axes", axes)}, a, "reduce");
  emit_top(L, "Mul", {r, scalar(L, "coeff", rp.coeff())}, {});
}

void CaffeBuilder::convert_tile(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& tp = L.p->tile_param();
  const int rank = static_cast<int>(L.shape[0].size());
  const int axis = canonical_axis(tp.axis(), rank, "axis");
  if (tp.tiles() < 1) fail("tiles", "tiles must be >= 1, found " + std::to_string(tp.tiles()));
  std::vector<int64_t> reps(static_cast<size_t>(rank), 1);
  reps[static_cast<size_t>(axis)] = tp.tiles();
  emit_top(L, "Tile", {L.in[0], i64s(L, "repeats", reps)}, {});
}

// Swish: x * sigmoid(beta * x)
void CaffeBuilder::convert_swish(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const float beta = L.p->swish_param().beta();
  int t = beta == 1.0f ? L.in[0] : emit(L, "Mul", {L.in[0], scalar(L, "beta", beta)}, {}, "beta");
  int sg = emit(L, "Sigmoid", {t}, {}, "sigmoid");
  emit_top(L, "Mul", {L.in[0], sg}, {});
}

// SSD Normalize: x / sqrt(sum x^2 + eps) over (C, H, W) per item (across_spatial) or over C
// per position, times a learned scale (one value, or one per channel).
void CaffeBuilder::convert_normalize(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& np = L.p->norm_param();
  const Shape& x = L.shape[0];
  const int rank = static_cast<int>(x.size());
  if (rank < 2) fail("bottom", "Normalize expects a blob of at least 2 axes, found " + ints_str(x));
  std::vector<int64_t> axes;
  if (np.across_spatial())
    for (int i = 1; i < rank; ++i) axes.push_back(i);
  else
    axes.push_back(1);
  expect_blobs(L, 1);
  int sq = emit(L, "Mul", {L.in[0], L.in[0]}, {}, "square");
  int sum = reduce(L, "ReduceSum", sq, axes, true, "sum");
  int se = emit(L, "Add", {sum, scalar(L, "eps", np.eps())}, {}, "sum_eps");
  int norm = emit(L, "Sqrt", {se}, {}, "norm");
  int y = emit(L, "Div", {L.in[0], norm}, {}, "normalized");
  int scale;
  if (np.channel_shared()) {
    // SSD stores the shared scale as a 0-axis blob; accept a 1-element (1,) blob too.
    const auto& b0 = L.w->blobs(0);
    const bool one_axis = b0.has_shape() && b0.shape().dim_size() == 1;
    scale = constant(L, "scale", blob(L, 0, one_axis ? Shape{1} : Shape{}, "scale").reshaped({}));
  } else {
    Shape s = {x[1]};
    s.insert(s.end(), x.size() - 2, 1);
    scale = constant(L, "scale", blob(L, 0, {x[1]}, "scale").reshaped(s));
  }
  emit_top(L, "Mul", {y, scale}, {});
}

// Parameter: its blob, as a top.
void CaffeBuilder::convert_parameter(Layer& L) {
  expect_bottoms(L, 0, 0);
  expect_tops(L, 1, 1);
  Shape s(L.p->parameter_param().shape().dim().begin(), L.p->parameter_param().shape().dim().end());
  expect_blobs(L, 1);
  emit_top(L, "Identity", {constant(L, "value", blob(L, 0, s, "value"))}, {});
}

// Embed: rows of the (input_dim, num_output) table picked by the (float) indices, plus bias.
void CaffeBuilder::convert_embed(Layer& L) {
  expect_bottoms(L, 1, 1);
  expect_tops(L, 1, 1);
  const auto& ep = L.p->embed_param();
  const int64_t K = ep.input_dim(), N = ep.num_output();
  if (K < 1 || N < 1) fail("num_output", "input_dim and num_output must be > 0");
  expect_blobs(L, ep.bias_term() ? 2 : 1);
  int table = constant(L, "weights", blob(L, 0, {K, N}, "weights"));
  Attributes ca;
  ca.set("to", int64_t{7});  // ONNX INT64: Caffe truncates the float index to int
  int idx = emit(L, "Cast", {L.in[0]}, ca, "index");
  Attributes ga;
  ga.set("axis", int64_t{0});
  if (!ep.bias_term()) {
    emit_top(L, "Gather", {table, idx}, ga);
    return;
  }
  int rows = emit(L, "Gather", {table, idx}, ga, "gather");
  emit_top(L, "Add", {rows, constant(L, "bias", blob(L, 1, {N}, "bias"))}, {});
}

// A layer type mapped by the user to a registered op: bottoms then parameter blobs as
// inputs, tops as outputs, and the op's declared attributes filled by name from the layer's
// *_param messages.
void CaffeBuilder::convert_mapped(Layer& L, const std::string& op_name) {
  const OpDef* def = OpRegistry::global().find(op_name);
  if (!def) fail("type", "layer type '" + L.type + "' is mapped to op '" + op_name + "', which is not registered");
  std::vector<int> ins = L.in;
  for (int i = 0; i < blob_count(L); ++i) {
    const pb::BlobProto& b = L.w->blobs(i);
    Shape s;
    if (b.has_shape()) s.assign(b.shape().dim().begin(), b.shape().dim().end());
    else if (b.has_num() || b.has_channels() || b.has_height() || b.has_width())
      s = {b.num(), b.channels(), b.height(), b.width()};
    else s = {static_cast<int64_t>(std::max(b.data_size(), b.double_data_size()))};
    for (int64_t d : s)
      if (d < 0) fail("blobs[" + std::to_string(i) + "]", "negative blob dimension");
    ins.push_back(constant(L, "blob" + std::to_string(i), blob(L, i, s, "blob")));
  }
  using google::protobuf::FieldDescriptor;
  std::vector<const google::protobuf::Message*> params;
  {
    const auto* refl = L.p->GetReflection();
    std::vector<const FieldDescriptor*> fields;
    refl->ListFields(*L.p, &fields);
    for (const auto* f : fields)
      if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated() &&
          f->name().size() > 6 && f->name().substr(f->name().size() - 6) == "_param" &&
          f->name() != "transform_param" && f->name() != "loss_param")
        params.push_back(&refl->GetMessage(*L.p, f));
  }
  Attributes a;
  for (const AttrSpec& spec : def->attrs) {
    for (const auto* m : params) {
      const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(spec.name);
      if (!f || f->type() == FieldDescriptor::TYPE_MESSAGE) continue;
      const auto* r = m->GetReflection();
      auto num = [&](int idx) -> double {
        switch (f->cpp_type()) {
          case FieldDescriptor::CPPTYPE_INT32: return idx < 0 ? r->GetInt32(*m, f) : r->GetRepeatedInt32(*m, f, idx);
          case FieldDescriptor::CPPTYPE_INT64: return static_cast<double>(idx < 0 ? r->GetInt64(*m, f) : r->GetRepeatedInt64(*m, f, idx));
          case FieldDescriptor::CPPTYPE_UINT32: return idx < 0 ? r->GetUInt32(*m, f) : r->GetRepeatedUInt32(*m, f, idx);
          case FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(idx < 0 ? r->GetUInt64(*m, f) : r->GetRepeatedUInt64(*m, f, idx));
          case FieldDescriptor::CPPTYPE_FLOAT: return idx < 0 ? r->GetFloat(*m, f) : r->GetRepeatedFloat(*m, f, idx);
          case FieldDescriptor::CPPTYPE_DOUBLE: return idx < 0 ? r->GetDouble(*m, f) : r->GetRepeatedDouble(*m, f, idx);
          case FieldDescriptor::CPPTYPE_BOOL: return idx < 0 ? r->GetBool(*m, f) : r->GetRepeatedBool(*m, f, idx);
          case FieldDescriptor::CPPTYPE_ENUM: return idx < 0 ? r->GetEnumValue(*m, f) : r->GetRepeatedEnumValue(*m, f, idx);
          default: return 0;
        }
      };
      auto str = [&](int idx) -> std::string {
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING)
          return idx < 0 ? r->GetString(*m, f) : r->GetRepeatedString(*m, f, idx);
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM)
          return idx < 0 ? r->GetEnum(*m, f)->name() : r->GetRepeatedEnum(*m, f, idx)->name();
        return {};
      };
      const bool is_str = f->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
      const int count = f->is_repeated() ? r->FieldSize(*m, f) : 1;
      if (f->is_repeated() && count == 0) continue;
      if (!f->is_repeated() && !r->HasField(*m, f) && !f->has_default_value()) continue;
      switch (spec.type) {
        case AttrType::Int:
          if (!is_str) a.set(spec.name, static_cast<int64_t>(num(f->is_repeated() ? 0 : -1)));
          break;
        case AttrType::Float:
          if (!is_str) a.set(spec.name, num(f->is_repeated() ? 0 : -1));
          break;
        case AttrType::String:
          if (is_str || f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) a.set(spec.name, str(f->is_repeated() ? 0 : -1));
          break;
        case AttrType::Ints: {
          std::vector<int64_t> v;
          for (int k = 0; k < count && !is_str; ++k) v.push_back(static_cast<int64_t>(num(f->is_repeated() ? k : -1)));
          if (!is_str) a.set(spec.name, v);
          break;
        }
        case AttrType::Floats: {
          std::vector<double> v;
          for (int k = 0; k < count && !is_str; ++k) v.push_back(num(f->is_repeated() ? k : -1));
          if (!is_str) a.set(spec.name, v);
          break;
        }
        case AttrType::Strings: {
          std::vector<std::string> v;
          for (int k = 0; k < count; ++k) v.push_back(str(f->is_repeated() ? k : -1));
          a.set(spec.name, v);
          break;
        }
        case AttrType::Tensor: break;
      }
      break;
    }
  }
  const int nt = L.p->top_size();
  if (nt < def->min_outputs || (def->max_outputs >= 0 && nt > def->max_outputs))
    fail("top", "op '" + op_name + "' has " + std::to_string(def->min_outputs) + ".." +
                    std::to_string(def->max_outputs) + " outputs, the layer has " + std::to_string(nt) + " tops");
  int ni = add_node(L, op_name, ins, a, L.top_names, "");
  const Node& node = g_.nodes[static_cast<size_t>(ni)];
  for (int i = 0; i < nt; ++i) L.tops[static_cast<size_t>(i)] = node.outputs[static_cast<size_t>(i)];
}

// ---------------------------------------------------------------------------------------
// files and registration

std::string lower_ext(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e;
}

// Only .prototxt: .pbtxt is TensorFlow's text GraphDef.
bool is_prototxt(const std::string& f) { return lower_ext(f) == ".prototxt"; }
bool is_caffemodel(const std::string& f) { return lower_ext(f) == ".caffemodel"; }

bool accepts(const std::vector<std::string>& files) {
  if (files.size() == 1) return is_prototxt(files[0]) || is_caffemodel(files[0]);
  if (files.size() == 2)
    return (is_prototxt(files[0]) && is_caffemodel(files[1])) ||
           (is_caffemodel(files[0]) && is_prototxt(files[1]));
  return false;
}

Graph load(const std::vector<std::string>& files, const ImportOptions& options) {
  std::string proto_path, model_path;
  for (const auto& f : files) {
    if (is_prototxt(f) && proto_path.empty()) proto_path = f;
    else if (is_caffemodel(f) && model_path.empty()) model_path = f;
    else
      throw Error("a Caffe model is a .prototxt with a .caffemodel (or a .caffemodel that carries "
                  "the net); unexpected file",
                  f);
  }
  pb::NetParameter def, weights;
  bool have_weights = false;
  if (!model_path.empty()) {
    weights = parse_caffemodel(read_file_bytes(model_path, kMaxCaffemodelBytes), model_path);
    upgrade_v1_layers(weights, model_path);
    have_weights = true;
  }
  std::string main_file;
  if (!proto_path.empty()) {
    def = parse_prototxt(read_file_bytes(proto_path, kMaxPrototxtBytes), proto_path);
    upgrade_v1_layers(def, proto_path);
    main_file = proto_path;
  } else {
    bool carries_net = false;
    for (const auto& l : weights.layer())
      if (!l.type().empty() && l.top_size() > 0) carries_net = true;
    if (!carries_net)
      throw Error("this caffemodel holds weights only, not the net definition; give the "
                  ".prototxt too",
                  model_path);
    def = weights;
    main_file = model_path;
  }
  if (def.layer_size() == 0 && def.input_size() == 0)
    throw Error("the Caffe net has no layers", main_file);
  CaffeBuilder b(def, have_weights ? &weights : nullptr, main_file, options);
  return b.build();
}

const bool registered = [] {
  register_importer(anvil::Importer{"caffe", accepts, load});
  return true;
}();

}  // namespace
}  // namespace anvil::caffe_import
