// Model file formats by content and by name, and the reasons given when no importer accepts
// a set of files (issue 19, "Messages"): a directory (a SavedModel folder is named as such),
// a file whose content contradicts its name (an HDF5 file named .onnx), a Keras JSON config
// without its weights, an unexpected extra file.
#pragma once

#include <string>
#include <vector>

namespace anvil::imp {

/// What a file's first bytes say it is: "hdf5", "tflite", "zip", "npy", "png", "jpeg",
/// "gif", "webp", or "" when the signature is none of these (protobuf and text formats
/// have no signature). Unreadable files give "".
std::string sniff_signature(const std::string& path);

/// "an HDF5 file (a Keras .h5 model?)", "a TensorFlow Lite flatbuffer (TFL3)", ... for a
/// sniff_signature() result.
std::string describe_signature(const std::string& kind);

/// The importer a file's extension names: "onnx", "tensorflow", "caffe", "tflite", "keras",
/// or "" for any other name.
std::string importer_by_extension(const std::string& path);

/// Checks every model file before any importer sees it, throwing anvil::Error naming the
/// file: a directory ("is a directory", or a TensorFlow SavedModel folder, which is not
/// supported yet), and a file whose signature contradicts its extension (an HDF5 file
/// named .onnx is named for what it is, with the extension to give it).
void check_model_files(const std::vector<std::string>& files);

/// The reason a single file no importer accepted is not a model, when its name or content
/// tells more than "no importer recognises": a Keras JSON config alone, an image or .npy
/// given as the model, a known signature under an unknown name. Empty when nothing is known.
std::string unrecognised_reason(const std::string& path);

}  // namespace anvil::imp
