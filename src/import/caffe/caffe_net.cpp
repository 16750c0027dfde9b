// Caffe model files: parsing, V1 upgrade and phase filtering (see caffe_net.h).
#include "import/caffe/caffe_net.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <limits>
#include <set>

#include "anvil/error.h"

namespace anvil::caffe_import {
namespace {

class CollectErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (errors.size() < 10)
      errors.push_back("line " + std::to_string(line + 1) + ", column " +
                       std::to_string(column + 1) + ": " + message);
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    // With unknown fields allowed, the parser reports each skipped field as a warning:
    // "Message type \"anvil_caffe.X\" has no field named \"f\"." Only parameter messages
    // of layer types from Caffe forks (LayerParameter.*_param) may be skipped; their layers
    // are then reported as unsupported types. Any other unknown field is an error (typo).
    const std::string layer_type = "\"anvil_caffe.LayerParameter\"";
    const auto named = message.find("has no field named \"");
    if (named == std::string::npos) return;
    std::string field = message.substr(named + 20);
    field = field.substr(0, field.find('"'));
    const bool fork_param = message.find(layer_type) != std::string::npos && field.size() > 6 &&
                            field.compare(field.size() - 6, 6, "_param") == 0;
    if (!fork_param) AddError(line, column, message);
  }
  std::vector<std::string> errors;
};

}  // namespace

pb::NetParameter parse_prototxt(const std::string& text, const std::string& file) {
  pb::NetParameter net;
  if (text.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw Error("the prototxt is too large", file);
  google::protobuf::TextFormat::Parser parser;
  CollectErrors errors;
  parser.RecordErrorsTo(&errors);
  parser.AllowUnknownField(true);  // see CollectErrors::AddWarning
  google::protobuf::io::ArrayInputStream stream(text.data(), static_cast<int>(text.size()));
  if (!parser.Parse(&stream, &net) || !errors.errors.empty()) {
    std::string msg = "not a valid Caffe prototxt (NetParameter text format)";
    if (errors.errors.empty()) msg += ": parse failed";
    for (size_t i = 0; i < errors.errors.size(); ++i)
      msg += (i == 0 ? ": " : "; ") + errors.errors[i];
    throw Error(msg, file);
  }
  return net;
}

pb::NetParameter parse_caffemodel(const std::string& bytes, const std::string& file) {
  if (bytes.empty()) throw Error("the caffemodel is empty", file);
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw Error("the caffemodel is larger than 2 GiB, which protobuf cannot parse", file);
  pb::NetParameter net;
  if (!net.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(
        "not a valid caffemodel: the binary NetParameter could not be parsed "
        "(truncated or corrupt file, " +
            std::to_string(bytes.size()) + " bytes)",
        file);
  return net;
}

pb::BlobProto parse_binaryproto(const std::string& bytes, const std::string& file) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw Error("the blob file is larger than 2 GiB", file);
  pb::BlobProto blob;
  if (bytes.empty() || !blob.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error("not a valid .binaryproto blob (truncated or corrupt file)", file);
  return blob;
}

std::string v1_type_name(pb::V1LayerParameter::LayerType t) {
  using L = pb::V1LayerParameter;
  switch (t) {
    case L::NONE:
      return "";
    case L::ABSVAL:
      return "AbsVal";
    case L::ACCURACY:
      return "Accuracy";
    case L::ARGMAX:
      return "ArgMax";
    case L::BNLL:
      return "BNLL";
    case L::CONCAT:
      return "Concat";
    case L::CONTRASTIVE_LOSS:
      return "ContrastiveLoss";
    case L::CONVOLUTION:
      return "Convolution";
    case L::DECONVOLUTION:
      return "Deconvolution";
    case L::DATA:
      return "Data";
    case L::DROPOUT:
      return "Dropout";
    case L::DUMMY_DATA:
      return "DummyData";
    case L::EUCLIDEAN_LOSS:
      return "EuclideanLoss";
    case L::ELTWISE:
      return "Eltwise";
    case L::EXP:
      return "Exp";
    case L::FLATTEN:
      return "Flatten";
    case L::HDF5_DATA:
      return "HDF5Data";
    case L::HDF5_OUTPUT:
      return "HDF5Output";
    case L::HINGE_LOSS:
      return "HingeLoss";
    case L::IM2COL:
      return "Im2col";
    case L::IMAGE_DATA:
      return "ImageData";
    case L::INFOGAIN_LOSS:
      return "InfogainLoss";
    case L::INNER_PRODUCT:
      return "InnerProduct";
    case L::LRN:
      return "LRN";
    case L::MEMORY_DATA:
      return "MemoryData";
    case L::MULTINOMIAL_LOGISTIC_LOSS:
      return "MultinomialLogisticLoss";
    case L::MVN:
      return "MVN";
    case L::POOLING:
      return "Pooling";
    case L::POWER:
      return "Power";
    case L::RELU:
      return "ReLU";
    case L::SIGMOID:
      return "Sigmoid";
    case L::SIGMOID_CROSS_ENTROPY_LOSS:
      return "SigmoidCrossEntropyLoss";
    case L::SILENCE:
      return "Silence";
    case L::SOFTMAX:
      return "Softmax";
    case L::SOFTMAX_LOSS:
      return "SoftmaxWithLoss";
    case L::SPLIT:
      return "Split";
    case L::SLICE:
      return "Slice";
    case L::TANH:
      return "TanH";
    case L::WINDOW_DATA:
      return "WindowData";
    case L::THRESHOLD:
      return "Threshold";
  }
  return "";
}

void upgrade_v1_layers(pb::NetParameter& net, const std::string& file) {
  if (net.layers_size() == 0) return;
  if (net.layer_size() > 0)
    throw Error("the net mixes current `layer` and legacy V1 `layers` definitions", file, {},
                "layers");
  for (const pb::V1LayerParameter& v1 : net.layers()) {
    pb::LayerParameter* l = net.add_layer();
    l->set_name(v1.name());
    std::string type = v1_type_name(v1.type());
    if (type.empty())
      throw Error("legacy V1 layer has no type (or type NONE)", file, v1.name(), "type");
    l->set_type(type);
    for (const auto& b : v1.bottom()) l->add_bottom(b);
    for (const auto& t : v1.top()) l->add_top(t);
    for (const auto& r : v1.include()) *l->add_include() = r;
    for (const auto& r : v1.exclude()) *l->add_exclude() = r;
    for (const auto& b : v1.blobs()) *l->add_blobs() = b;
    for (float w : v1.loss_weight()) l->add_loss_weight(w);
    if (v1.has_accuracy_param()) *l->mutable_accuracy_param() = v1.accuracy_param();
    if (v1.has_argmax_param()) *l->mutable_argmax_param() = v1.argmax_param();
    if (v1.has_concat_param()) *l->mutable_concat_param() = v1.concat_param();
    if (v1.has_contrastive_loss_param())
      *l->mutable_contrastive_loss_param() = v1.contrastive_loss_param();
    if (v1.has_convolution_param()) *l->mutable_convolution_param() = v1.convolution_param();
    if (v1.has_data_param()) *l->mutable_data_param() = v1.data_param();
    if (v1.has_dropout_param()) *l->mutable_dropout_param() = v1.dropout_param();
    if (v1.has_dummy_data_param()) *l->mutable_dummy_data_param() = v1.dummy_data_param();
    if (v1.has_eltwise_param()) *l->mutable_eltwise_param() = v1.eltwise_param();
    if (v1.has_exp_param()) *l->mutable_exp_param() = v1.exp_param();
    if (v1.has_hdf5_data_param()) *l->mutable_hdf5_data_param() = v1.hdf5_data_param();
    if (v1.has_hdf5_output_param()) *l->mutable_hdf5_output_param() = v1.hdf5_output_param();
    if (v1.has_hinge_loss_param()) *l->mutable_hinge_loss_param() = v1.hinge_loss_param();
    if (v1.has_image_data_param()) *l->mutable_image_data_param() = v1.image_data_param();
    if (v1.has_infogain_loss_param()) *l->mutable_infogain_loss_param() = v1.infogain_loss_param();
    if (v1.has_inner_product_param()) *l->mutable_inner_product_param() = v1.inner_product_param();
    if (v1.has_lrn_param()) *l->mutable_lrn_param() = v1.lrn_param();
    if (v1.has_memory_data_param()) *l->mutable_memory_data_param() = v1.memory_data_param();
    if (v1.has_mvn_param()) *l->mutable_mvn_param() = v1.mvn_param();
    if (v1.has_pooling_param()) *l->mutable_pooling_param() = v1.pooling_param();
    if (v1.has_power_param()) *l->mutable_power_param() = v1.power_param();
    if (v1.has_relu_param()) *l->mutable_relu_param() = v1.relu_param();
    if (v1.has_sigmoid_param()) *l->mutable_sigmoid_param() = v1.sigmoid_param();
    if (v1.has_softmax_param()) *l->mutable_softmax_param() = v1.softmax_param();
    if (v1.has_slice_param()) *l->mutable_slice_param() = v1.slice_param();
    if (v1.has_tanh_param()) *l->mutable_tanh_param() = v1.tanh_param();
    if (v1.has_threshold_param()) *l->mutable_threshold_param() = v1.threshold_param();
    if (v1.has_window_data_param()) *l->mutable_window_data_param() = v1.window_data_param();
    if (v1.has_transform_param()) *l->mutable_transform_param() = v1.transform_param();
    if (v1.has_loss_param()) *l->mutable_loss_param() = v1.loss_param();
  }
  net.clear_layers();
}

namespace {

bool state_meets_rule(const pb::NetParameter& net, const pb::NetStateRule& rule) {
  const pb::Phase phase = pb::TEST;
  const int level = net.has_state() ? net.state().level() : 0;
  std::set<std::string> stages;
  if (net.has_state())
    for (const auto& s : net.state().stage()) stages.insert(s);
  if (rule.has_phase() && rule.phase() != phase) return false;
  if (rule.has_min_level() && level < rule.min_level()) return false;
  if (rule.has_max_level() && level > rule.max_level()) return false;
  for (const auto& s : rule.stage())
    if (!stages.count(s)) return false;
  for (const auto& s : rule.not_stage())
    if (stages.count(s)) return false;
  return true;
}

}  // namespace

std::vector<const pb::LayerParameter*> test_phase_layers(const pb::NetParameter& net) {
  std::vector<const pb::LayerParameter*> kept;
  for (const auto& l : net.layer()) {
    bool include = l.include_size() == 0;  // no include rules: included unless excluded
    for (const auto& r : l.exclude())
      if (state_meets_rule(net, r)) include = false;
    for (const auto& r : l.include())
      if (state_meets_rule(net, r)) include = true;
    if (include) kept.push_back(&l);
  }
  return kept;
}

}  // namespace anvil::caffe_import
