// Caffe layers that bring data in: Input (with its transform_param, for tools that feed
// images) and Parameter; and layer types mapped by the user to a registered op.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>

#include "anvil/ops.h"
#include "import/caffe/caffe_builder.h"

namespace anvil::caffe_import {

namespace {

void convert_input(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 0, 0);
  const auto& ip = L.p->input_param();
  const int nt = L.p->top_size();
  if (ip.shape_size() != 0 && ip.shape_size() != 1 && ip.shape_size() != nt)
    fail("input_param.shape", "give 0, 1 or " + std::to_string(nt) + " shapes, found " +
                                  std::to_string(ip.shape_size()));
  for (int i = 0; i < nt; ++i) {
    const std::string& name = L.p->top(i);
    Shape s;
    if (auto it = cb.options().input_shapes.find(name); it != cb.options().input_shapes.end()) {
      s = it->second;
    } else if (ip.shape_size() > 0) {
      for (int64_t d : ip.shape(ip.shape_size() == 1 ? 0 : i).dim()) s.push_back(d);
    } else {
      fail("input_param.shape", "input '" + name +
                                    "' has no shape (give input_param.shape, or the shape as an "
                                    "import option)");
    }
    for (int64_t d : s)
      if (d < 0)
        fail("input_param.shape", "input '" + name + "' has a negative dimension " + dims_str(s));
    const std::string& vn = L.top_names[static_cast<size_t>(i)];
    cb.use_name(vn);
    int v = cb.graph().add_input(vn, DType::f32, s);
    L.tops[static_cast<size_t>(i)] = v;
  }
  // An input layer's transform_param (Caffe's DataTransformer), for tools that feed images.
  if (L.p->has_transform_param() && !cb.graph().metadata.count("caffe.transform.inputs")) {
    const auto& tp = L.p->transform_param();
    std::string tops, means;
    for (int i = 0; i < nt; ++i) tops += (i ? "," : "") + L.p->top(i);
    for (float m : tp.mean_value()) means += (means.empty() ? "" : ",") + fmt_float(m);
    auto& md = cb.graph().metadata;
    md["caffe.transform.inputs"] = tops;
    if (tp.has_scale()) md["caffe.transform.scale"] = fmt_float(tp.scale());
    if (!means.empty()) md["caffe.transform.mean_value"] = means;
    if (tp.has_mean_file()) md["caffe.transform.mean_file"] = tp.mean_file();
    if (tp.crop_size()) md["caffe.transform.crop_size"] = std::to_string(tp.crop_size());
    if (tp.force_color()) md["caffe.transform.force_color"] = "1";
    if (tp.force_gray()) md["caffe.transform.force_gray"] = "1";
  }
}

// Parameter: its blob, as a top.
void convert_parameter(CaffeBuilder& cb, CaffeLayer& L) {
  cb.expect_bottoms(L, 0, 0);
  cb.expect_tops(L, 1, 1);
  Shape s(L.p->parameter_param().shape().dim().begin(), L.p->parameter_param().shape().dim().end());
  cb.expect_blobs(L, 1);
  cb.emit_top(L, "Identity", {cb.constant(L, "value", cb.blob(L, 0, s, "value"))}, {});
}

const ConverterRegistrar registrar({
    {"Input", convert_input},
    {"Parameter", convert_parameter},
});

}  // namespace

namespace {

using google::protobuf::FieldDescriptor;

/// The layer's *_param messages (other than transform_param and loss_param).
std::vector<const google::protobuf::Message*> param_messages(const pb::LayerParameter& p) {
  std::vector<const google::protobuf::Message*> params;
  const auto* refl = p.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  refl->ListFields(p, &fields);
  for (const auto* f : fields)
    if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated() && f->name().size() > 6 &&
        f->name().substr(f->name().size() - 6) == "_param" && f->name() != "transform_param" &&
        f->name() != "loss_param")
      params.push_back(&refl->GetMessage(p, f));
  return params;
}

/// Attribute `spec` from field `f` of message `m`, when the field's type fits; false when the
/// field is not set (the next *_param message is tried).
bool set_from_field(Attributes& a, const AttrSpec& spec, const google::protobuf::Message* m,
                    const FieldDescriptor* f) {
  const auto* r = m->GetReflection();
  auto num = [&](int idx) -> double {
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return idx < 0 ? r->GetInt32(*m, f) : r->GetRepeatedInt32(*m, f, idx);
      case FieldDescriptor::CPPTYPE_INT64:
        return static_cast<double>(idx < 0 ? r->GetInt64(*m, f) : r->GetRepeatedInt64(*m, f, idx));
      case FieldDescriptor::CPPTYPE_UINT32:
        return idx < 0 ? r->GetUInt32(*m, f) : r->GetRepeatedUInt32(*m, f, idx);
      case FieldDescriptor::CPPTYPE_UINT64:
        return static_cast<double>(idx < 0 ? r->GetUInt64(*m, f)
                                           : r->GetRepeatedUInt64(*m, f, idx));
      case FieldDescriptor::CPPTYPE_FLOAT:
        return idx < 0 ? r->GetFloat(*m, f) : r->GetRepeatedFloat(*m, f, idx);
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return idx < 0 ? r->GetDouble(*m, f) : r->GetRepeatedDouble(*m, f, idx);
      case FieldDescriptor::CPPTYPE_BOOL:
        return idx < 0 ? r->GetBool(*m, f) : r->GetRepeatedBool(*m, f, idx);
      case FieldDescriptor::CPPTYPE_ENUM:
        return idx < 0 ? r->GetEnumValue(*m, f) : r->GetRepeatedEnumValue(*m, f, idx);
      default:
        return 0;
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
  if (f->is_repeated() && count == 0) return false;
  if (!f->is_repeated() && !r->HasField(*m, f) && !f->has_default_value()) return false;
  switch (spec.type) {
    case AttrType::Int:
      if (!is_str) a.set(spec.name, static_cast<int64_t>(num(f->is_repeated() ? 0 : -1)));
      break;
    case AttrType::Float:
      if (!is_str) a.set(spec.name, num(f->is_repeated() ? 0 : -1));
      break;
    case AttrType::String:
      if (is_str || f->cpp_type() == FieldDescriptor::CPPTYPE_ENUM)
        a.set(spec.name, str(f->is_repeated() ? 0 : -1));
      break;
    case AttrType::Ints: {
      std::vector<int64_t> v;
      for (int k = 0; k < count && !is_str; ++k)
        v.push_back(static_cast<int64_t>(num(f->is_repeated() ? k : -1)));
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
    case AttrType::Tensor:
      break;
  }
  return true;
}

}  // namespace

// A layer type mapped by the user to a registered op: bottoms then parameter blobs as
// inputs, tops as outputs, and the op's declared attributes filled by name from the layer's
// *_param messages.
void convert_mapped(CaffeBuilder& cb, CaffeLayer& L, const std::string& op_name) {
  const OpDef* def = OpRegistry::global().find(op_name);
  if (!def)
    fail("type",
         "layer type '" + L.type + "' is mapped to op '" + op_name + "', which is not registered");
  std::vector<int> ins = L.in;
  for (int i = 0; i < cb.blob_count(L); ++i) {
    const pb::BlobProto& b = L.w->blobs(i);
    Shape s;
    if (b.has_shape())
      s.assign(b.shape().dim().begin(), b.shape().dim().end());
    else if (b.has_num() || b.has_channels() || b.has_height() || b.has_width())
      s = {b.num(), b.channels(), b.height(), b.width()};
    else
      s = {static_cast<int64_t>(std::max(b.data_size(), b.double_data_size()))};
    for (int64_t d : s)
      if (d < 0) fail("blobs[" + std::to_string(i) + "]", "negative blob dimension");
    ins.push_back(cb.constant(L, "blob" + std::to_string(i), cb.blob(L, i, s, "blob")));
  }
  std::vector<const google::protobuf::Message*> params = param_messages(*L.p);
  Attributes a;
  for (const AttrSpec& spec : def->attrs) {
    for (const auto* m : params) {
      const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(spec.name);
      if (!f || f->type() == FieldDescriptor::TYPE_MESSAGE) continue;
      if (set_from_field(a, spec, m, f)) break;
    }
  }
  const int nt = L.p->top_size();
  if (nt < def->min_outputs || (def->max_outputs >= 0 && nt > def->max_outputs))
    fail("top", "op '" + op_name + "' has " + std::to_string(def->min_outputs) + ".." +
                    std::to_string(def->max_outputs) + " outputs, the layer has " +
                    std::to_string(nt) + " tops");
  int ni = cb.add_node(L, op_name, ins, a, L.top_names, "");
  const Node& node = cb.graph().nodes[static_cast<size_t>(ni)];
  for (int i = 0; i < nt; ++i)
    L.tops[static_cast<size_t>(i)] = node.outputs[static_cast<size_t>(i)];
}

}  // namespace anvil::caffe_import
