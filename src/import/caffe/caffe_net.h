// Caffe model files: parsing (text .prototxt, binary .caffemodel / .binaryproto), the legacy
// V1 layer upgrade and the TEST-phase layer filter. Private to the library.
#pragma once

#include <string>
#include <vector>

#include "src/import/caffe/caffe.pb.h"

namespace anvil::caffe_import {

namespace pb = ::anvil_caffe;

/// Parses NetParameter text; syntax errors throw anvil::Error "line L, column C: ..." (1-based).
pb::NetParameter parse_prototxt(const std::string& text, const std::string& file);
/// Parses a binary NetParameter (.caffemodel); truncated/corrupt input throws anvil::Error.
pb::NetParameter parse_caffemodel(const std::string& bytes, const std::string& file);
/// Parses a binary BlobProto (.binaryproto mean file).
pb::BlobProto parse_binaryproto(const std::string& bytes, const std::string& file);

/// Moves legacy V1 `layers` into `layer` (type enum -> type string, parameters copied);
/// throws anvil::Error when a net mixes both forms or a V1 type has no current equivalent.
void upgrade_v1_layers(pb::NetParameter& net, const std::string& file);

/// Caffe's V1 type enum -> current type string ("" when none).
std::string v1_type_name(pb::V1LayerParameter::LayerType t);

/// The layers Caffe keeps in the TEST phase (NetState phase TEST, the net's level and stages),
/// by Caffe's NetStateRule logic (include: any rule met; exclude: no rule met).
std::vector<const pb::LayerParameter*> test_phase_layers(const pb::NetParameter& net);

}  // namespace anvil::caffe_import
