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
//
// Layout of the importer: this file is the driver (files, net inputs, the walk over the
// TEST-phase layers, top naming, problems); caffe_builder.cpp holds the services converters
// use; layers_*.cpp hold the converters, registered by layer type in one table.
#include <algorithm>
#include <set>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/ops.h"
#include "core/file_io.h"
#include "core/strings.h"
#include "import/caffe/caffe_builder.h"

namespace anvil::caffe_import {

void CaffeBuilder::add_net_inputs() {
  const int n = def_.input_size();
  if (def_.input_shape_size() > 0 && def_.input_shape_size() != n)
    problems_.add(imp::Problem{"input", "", "input_shape",
                               std::to_string(n) + " net inputs but " +
                                   std::to_string(def_.input_shape_size()) +
                                   " input_shape entries"});
  if (def_.input_dim_size() > 0 && def_.input_dim_size() != 4 * n)
    problems_.add(imp::Problem{"input", "", "input_dim",
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
      problems_.add(imp::Problem{"input", name, "input_shape",
                                 "net input '" + name +
                                     "' has no shape (give input_shape/input_dim, or the shape "
                                     "as an import option)"});
      failed_blobs_.insert(name);
      continue;
    }
    for (int64_t d : s)
      if (d < 0) {
        problems_.add(
            imp::Problem{"input", name, "input_shape",
                         "net input '" + name + "' has a negative dimension " + dims_str(s)});
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

// Source layers (for summaries): the legacy net inputs come first.
void CaffeBuilder::add_input_source_layers() {
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
}

// Canonical top names (in-place: earlier writers are "<blob>@<layer>").
void CaffeBuilder::plan_top_names(CaffeLayer& L) {
  for (const auto& t : L.p->top()) {
    // The blob's name goes to its last writer, or to the net input it starts as.
    const auto& ws = writers_[t];
    const pb::LayerParameter* owner = ws.back();
    if (ws.size() > 1 && (ws.front() == nullptr || ws.front()->type() == "Input"))
      owner = ws.front();
    std::string n = owner == L.p ? t : fresh(t + "@" + L.name);
    if (n != t) reserved_.insert(n);
    L.top_names.push_back(n);
  }
  L.tops.assign(L.top_names.size(), -1);
}

// The layer's tops will not be produced: layers reading them are skipped.
void CaffeBuilder::mark_failed(const CaffeLayer& L) {
  for (const auto& t : L.p->top()) {
    failed_blobs_.insert(t);
    blobs_.erase(t);
  }
}

// The layer's bottom values and shapes, and where its blobs come from (the caffemodel's layer
// of the same name, else the net's own). False (and the tops marked failed) when a bottom is
// missing (a problem) or comes from a failed layer.
bool CaffeBuilder::bind_bottoms(CaffeLayer& L) {
  const pb::LayerParameter* lp = L.p;
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
  if (!missing.empty()) {
    problems_.add(imp::Problem{
        L.type, L.name, "bottom",
        "bottom blob '" + missing + "' is not produced by any earlier layer or net input"});
    mark_failed(L);
    return false;
  }
  if (upstream_failed) {
    mark_failed(L);
    return false;
  }
  auto wit = weights_.find(L.name);
  if (wit != weights_.end() && wit->second->blobs_size() > 0)
    L.w = wit->second;
  else if (lp->blobs_size() > 0)
    L.w = lp;
  else if (wit != weights_.end())
    L.w = wit->second;
  return true;
}

void CaffeBuilder::convert(CaffeLayer& L) {
  if (LayerConverter convert_layer = find_converter(L.type)) {
    convert_layer(*this, L);
    return;
  }
  if (auto mapped = mapped_source_op("caffe", L.type)) {
    convert_mapped(*this, L, *mapped);
    return;
  }
  fail("type", "unsupported Caffe layer type '" + L.type +
                   "' (map it to a registered op with anvil::map_source_op(\"caffe\", \"" + L.type +
                   "\", op))");
}

// After a layer converted: its tops become the blobs' values, and what Caffe stores for the
// layer is recorded: its tops (shapes NCHW, as Caffe's blobs) and the numbers in its
// parameter blobs (BatchNorm: mean, variance and the scale factor); a blob with lr_mult 0
// (and every BatchNorm blob) is not learned.
void CaffeBuilder::finish_layer(CaffeLayer& L) {
  const pb::LayerParameter* lp = L.p;
  for (size_t i = 0; i < L.tops.size(); ++i) {
    if (L.tops[i] < 0)
      fail("top", "internal: top '" + lp->top(static_cast<int>(i)) + "' was not produced");
    Value& v = g_.values[static_cast<size_t>(L.tops[i])];
    v.prov = prov(lp->top(static_cast<int>(i)), static_cast<int>(i));
    blobs_[lp->top(static_cast<int>(i))] = L.tops[i];
    failed_blobs_.erase(lp->top(static_cast<int>(i)));
  }
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
}

void CaffeBuilder::throw_problems() const {
  problems_.throw_if_any(file_, {imp::ProblemList::Style::Listed, "the Caffe model", "layer"});
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
  add_input_source_layers();

  std::set<std::string> available;  // Caffe's rule for net outputs
  for (int i = 0; i < def_.input_size(); ++i) available.insert(def_.input(i));

  for (const auto* lp : layers) {
    CaffeLayer L;
    L.p = lp;
    L.name = lp->name();
    L.type = lp->type();
    if (L.name.empty()) L.name = L.type.empty() ? "layer" : L.type;
    for (const auto& b : lp->bottom()) available.erase(b);
    for (const auto& t : lp->top()) available.insert(t);
    plan_top_names(L);

    if (!bind_bottoms(L)) continue;
    try {
      if (lp->include_size() > 0 && lp->exclude_size() > 0)
        fail("include", "specify either include rules or exclude rules, not both");
      convert(L);
      finish_layer(L);
    } catch (const LayerError& e) {
      problems_.add(imp::Problem{L.type, L.name, e.field, e.message});
      mark_failed(L);
    } catch (const Error& e) {
      problems_.add(imp::Problem{L.type, L.name, e.field(), e.message()});
      mark_failed(L);
    }
  }
  throw_problems();

  // Net outputs: blobs produced and never consumed afterwards (std::set order, as Caffe).
  for (const auto& b : available) {
    auto it = blobs_.find(b);
    if (it != blobs_.end()) g_.outputs.push_back(it->second);
  }
  if (g_.outputs.empty()) throw Error("the Caffe net has no output blob", file_);
  g_.validate();
  return std::move(g_);
}

// ---------------------------------------------------------------------------------------
// files and registration

namespace {

constexpr size_t kMaxPrototxtBytes = size_t{64} << 20;
constexpr size_t kMaxCaffemodelBytes = size_t{2047} << 20;

// Only .prototxt: .pbtxt is TensorFlow's text GraphDef.
bool is_prototxt(const std::string& f) { return ends_with_ci(f, ".prototxt"); }
bool is_caffemodel(const std::string& f) { return ends_with_ci(f, ".caffemodel"); }

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
    if (is_prototxt(f) && proto_path.empty())
      proto_path = f;
    else if (is_caffemodel(f) && model_path.empty())
      model_path = f;
    else
      throw Error(
          "a Caffe model is a .prototxt with a .caffemodel (or a .caffemodel that carries "
          "the net); unexpected file",
          f);
  }
  pb::NetParameter def, weights;
  bool have_weights = false;
  if (!model_path.empty()) {
    weights =
        parse_caffemodel(read_file(model_path, "a caffemodel", kMaxCaffemodelBytes), model_path);
    upgrade_v1_layers(weights, model_path);
    have_weights = true;
  }
  std::string main_file;
  if (!proto_path.empty()) {
    def = parse_prototxt(read_file(proto_path, "a Caffe prototxt", kMaxPrototxtBytes), proto_path);
    upgrade_v1_layers(def, proto_path);
    main_file = proto_path;
  } else {
    bool carries_net = false;
    for (const auto& l : weights.layer())
      if (!l.type().empty() && l.top_size() > 0) carries_net = true;
    if (!carries_net)
      throw Error(
          "this caffemodel holds weights only, not the net definition; give the "
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
