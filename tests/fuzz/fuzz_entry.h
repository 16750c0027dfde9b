// Shared entry logic of the libFuzzer targets (tests/fuzz/fuzz_*.cpp) and of the regression
// replay test (tests/unit/test_fuzz_regressions.cpp): the fuzzer and CI run the same code.
//
// Each entry writes the bytes to a per-process temp file (the importers take paths), imports
// the model, and when that succeeds and the model is small, runs it once on zero inputs on the
// reference backend. Only anvil::Error is an accepted outcome; anything else escapes (and is a
// finding: libFuzzer reports the uncaught exception as a crash).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "anvil/error.h"
#include "anvil/image.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "anvil/tensor.h"

namespace anvil_fuzz {

/// Inputs larger than this (elements, any one input) are not run (import only).
constexpr int64_t kMaxInputElements = 100000;
/// Graphs with more nodes than this are not run.
constexpr size_t kMaxNodes = 512;

/// A per-process scratch directory, created on first use (in /dev/shm when present).
inline const std::string& work_dir() {
  static const std::string dir = [] {
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string d = base + "/anvil-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write_file(const std::string& name, const uint8_t* data, size_t size) {
  std::string path = work_dir() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  f.close();
  return path;
}

/// Runs the graph once on zero inputs when it is small; anvil::Error is fine.
inline void run_small(anvil::Graph g) {
  if (g.nodes.size() > kMaxNodes) return;
  try {
    // The reference backend, as documented above: its kernels are built with the
    // sanitizers of the fuzz configuration; oneDNN (the cpu backend) is not instrumented.
    anvil::SessionOptions so;
    so.backend = "reference";
    anvil::Session s(std::move(g), so);
    std::map<std::string, anvil::Tensor> in;
    for (const auto& i : s.inputs()) {
      int64_t n = 1;
      for (int64_t d : i.shape) {
        if (d < 0 || d > kMaxInputElements) return;
        n *= d;
        if (n > kMaxInputElements) return;
      }
      in.emplace(i.name, anvil::Tensor(i.dtype, i.shape));
    }
    (void)s.run(in);
  } catch (const anvil::Error&) {
  }
}

/// Imports `files` and runs the model when it imported; anvil::Error is fine.
inline void import_and_run(const std::vector<std::string>& files) {
  anvil::Graph g;
  try {
    g = anvil::import_model(files);
  } catch (const anvil::Error&) {
    return;
  }
  run_small(std::move(g));
}

inline void fuzz_onnx(const uint8_t* data, size_t size) {
  import_and_run({write_file("model.onnx", data, size)});
}

inline void fuzz_keras_h5(const uint8_t* data, size_t size) {
  // libhdf5 loops forever on some corrupt files; the Keras reader kills its child process after
  // ANVIL_KERAS_H5_TIMEOUT_S (20 s by default): 5 s keeps the fuzzer and the replay test fast.
  ::setenv("ANVIL_KERAS_H5_TIMEOUT_S", "5", 0);
  import_and_run({write_file("model.h5", data, size)});
}

/// The fixed weights file paired with a fuzzed model config (split Keras form: JSON + HDF5).
/// ANVIL_FUZZ_KERAS_WEIGHTS overrides it.
inline std::string keras_weights_file() {
  if (const char* e = std::getenv("ANVIL_FUZZ_KERAS_WEIGHTS")) return e;
  return std::string(ANVIL_SOURCE_DIR) + "/tests/data/fixtures/keras/resnet_small/model.h5";
}

inline void fuzz_keras_json(const uint8_t* data, size_t size) {
  static const std::string weights = [] {
    std::string dst = work_dir() + "/weights.h5";
    std::filesystem::copy_file(keras_weights_file(), dst,
                               std::filesystem::copy_options::overwrite_existing);
    return dst;
  }();
  import_and_run({write_file("config.json", data, size), weights});
}

/// A prototxt alone (definition-only nets are accepted; layers needing weights fail cleanly).
inline void fuzz_caffe_prototxt(const uint8_t* data, size_t size) {
  import_and_run({write_file("deploy.prototxt", data, size)});
}

/// A caffemodel alone (real ones carry the net definition too).
inline void fuzz_caffemodel(const uint8_t* data, size_t size) {
  import_and_run({write_file("model.caffemodel", data, size)});
}

inline void fuzz_npy(const uint8_t* data, size_t size) {
  try {
    anvil::Tensor t = anvil::parse_npy(data, size, "fuzz.npy");
    // Touch every element through the generic accessor to catch bad sizes.
    double acc = 0;
    for (int64_t i = 0; i < t.numel() && i < 4096; ++i) acc += t.get(i);
    (void)acc;
    (void)anvil::encode_npy(t);
  } catch (const anvil::Error&) {
  }
}

inline void fuzz_npz(const uint8_t* data, size_t size) {
  try {
    auto m = anvil::read_npz(write_file("arrays.npz", data, size));
    for (const auto& [k, t] : m) (void)anvil::encode_npy(t);
  } catch (const anvil::Error&) {
  }
}

/// An image file (any format stb_image decodes): decoded at its own size, then resized to
/// 224x224 and to a size taken from the input's length (enlarging and shrinking), as `anvil
/// run` does for an image input.
inline void fuzz_image(const uint8_t* data, size_t size) {
  const std::string path = write_file("image.bin", data, size);
  try {
    anvil::Tensor t = anvil::load_image(path);
    if (t.numel() > (int64_t{1} << 22)) return;  // keep each run fast
    anvil::ImagePreprocess p;
    p.width = p.height = 224;
    (void)anvil::load_image(path, p);
    p.width = 1 + static_cast<int>(size % 331);
    p.height = 1 + static_cast<int>((size / 331) % 257);
    p.channels = 3;
    p.nchw = (size & 1) != 0;
    (void)anvil::load_image(path, p);
  } catch (const anvil::Error&) {
  }
}

}  // namespace anvil_fuzz
