#include "import/detect.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "anvil/error.h"
#include "core/strings.h"

namespace anvil::imp {
namespace fs = std::filesystem;

namespace {

bool has_any_ext(const std::string& path, std::initializer_list<const char*> exts) {
  for (const char* e : exts)
    if (ends_with_ci(path, e)) return true;
  return false;
}

// The signatures a model file named for another format may carry, with the names to give it.
struct Signature {
  const char* kind;
  const char* importer;  // the importer for this content, "" for inputs (images, .npy)
  const char* rename;    // the extension(s) to give the file
};
const Signature kSignatures[] = {
    {"hdf5", "keras", ".h5"},   {"tflite", "tflite", ".tflite"},
    {"zip", "keras", ".keras"}, {"npy", "", ".npy"},
    {"png", "", ".png"},        {"jpeg", "", ".jpg"},
    {"gif", "", ".gif"},        {"webp", "", ".webp"},
};

const Signature* find_signature(const std::string& kind) {
  for (const auto& s : kSignatures)
    if (kind == s.kind) return &s;
  return nullptr;
}

std::string importer_title(const std::string& importer, const std::string& path) {
  if (importer == "keras")
    return ends_with_ci(path, ".keras") ? "a Keras .keras (zip) archive" : "a Keras HDF5 file";
  if (importer == "onnx") return "an ONNX model";
  if (importer == "tensorflow") return "a TensorFlow GraphDef";
  if (importer == "caffe") return "a Caffe model";
  if (importer == "tflite") return "a TensorFlow Lite model";
  return "a model";
}

void check_directory(const std::string& dir) {
  std::error_code ec;
  for (const char* f : {"saved_model.pb", "saved_model.pbtxt"})
    if (fs::exists(fs::path(dir) / f, ec))
      throw Error(std::string("a TensorFlow SavedModel folder (it holds ") + f +
                      "): SavedModel is not supported yet; freeze it to a GraphDef .pb, or "
                      "convert it to ONNX (tf2onnx) or TFLite",
                  dir);
  throw Error("is a directory, not a model file (give the model's file(s))", dir);
}

}  // namespace

std::string sniff_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char h[16] = {};
  if (!in) return {};
  in.read(reinterpret_cast<char*>(h), sizeof h);
  const auto n = static_cast<size_t>(in.gcount());
  auto starts = [&](const char* sig, size_t len, size_t at = 0) {
    return n >= at + len && std::memcmp(h + at, sig, len) == 0;
  };
  if (starts("\x89HDF\r\n\x1a\n", 8)) return "hdf5";
  if (starts("TFL3", 4, 4)) return "tflite";
  if (starts("PK\x03\x04", 4) || starts("PK\x05\x06", 4)) return "zip";
  if (starts("\x93NUMPY", 6)) return "npy";
  if (starts("\x89PNG\r\n\x1a\n", 8)) return "png";
  if (starts("\xff\xd8\xff", 3)) return "jpeg";
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return "gif";
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return "webp";
  return {};
}

std::string describe_signature(const std::string& kind) {
  if (kind == "hdf5") return "an HDF5 file (a Keras .h5 model?)";
  if (kind == "tflite") return "a TensorFlow Lite flatbuffer (TFL3)";
  if (kind == "zip") return "a zip archive (a Keras .keras model?)";
  if (kind == "npy") return "a NumPy .npy array";
  if (kind == "png") return "a PNG image";
  if (kind == "jpeg") return "a JPEG image";
  if (kind == "gif") return "a GIF image";
  if (kind == "webp") return "a WebP image";
  return "a file of unknown type";
}

std::string importer_by_extension(const std::string& path) {
  if (has_any_ext(path, {".onnx"})) return "onnx";
  if (has_any_ext(path, {".pb", ".pbtxt", ".pbtext", ".graphdef"})) return "tensorflow";
  if (has_any_ext(path, {".prototxt", ".caffemodel"})) return "caffe";
  if (has_any_ext(path, {".tflite"})) return "tflite";
  if (has_any_ext(path, {".h5", ".hdf5", ".keras"})) return "keras";
  return {};
}

void check_model_files(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    std::error_code ec;
    if (fs::is_directory(f, ec)) check_directory(f);
    const std::string by_name = importer_by_extension(f);
    if (by_name.empty()) continue;
    const Signature* sig = find_signature(sniff_signature(f));
    if (!sig) continue;
    // Content that agrees with the name: HDF5 .h5/.hdf5, zip .keras, TFL3 .tflite.
    if (sig->importer == by_name &&
        (by_name != "keras" || (std::string(sig->kind) == "zip") == ends_with_ci(f, ".keras")))
      continue;
    std::string what = describe_signature(sig->kind);
    if (*sig->importer)
      throw Error("this is " + what + ", but its name says " + importer_title(by_name, f) +
                      ": rename it to " + sig->rename,
                  f);
    throw Error("this is " + what + ", not " + importer_title(by_name, f) +
                    " (images and .npy/.npz arrays are inputs: give them with --input)",
                f);
  }
}

std::string unrecognised_reason(const std::string& path) {
  if (has_any_ext(path, {".npy", ".npz", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm"}))
    return "this is an input file, not a model (images and .npy/.npz arrays are inputs: give "
           "them with --input)";
  if (ends_with_ci(path, ".json"))
    return "a Keras JSON config needs its weights .h5: give both files (e.g. anvil summary "
           "model.json model.h5)";
  const std::string kind = sniff_signature(path);
  if (kind.empty()) return {};
  const Signature* sig = find_signature(kind);
  if (sig && *sig->importer)
    return "this is " + describe_signature(kind) + ", but its name does not say so: rename it to " +
           sig->rename;
  return "this is " + describe_signature(kind) +
         ", not a model (images and .npy/.npz arrays are inputs: give them with --input)";
}

}  // namespace anvil::imp
