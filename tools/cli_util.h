// Shared pieces of the `anvil` subcommands: argument parsing, model inputs (.npy, .npz,
// images, random), output files. Every function throws anvil::Error on bad input (-> exit 2).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/image.h"
#include "anvil/import.h"
#include "anvil/session.h"
#include "anvil/summary.h"
#include "anvil/tensor.h"

namespace anvil::cli {

/// Parses a subcommand's arguments with CLI11. Returns -1 to go on, or the exit code to
/// return now: 0 after printing --help, 2 after a usage error (one line on stderr: "anvil run:
/// error: <what is wrong>; run 'anvil run --help'").
int parse_args(CLI::App& app, int argc, char** argv);

/// CLI11 checks whose messages say what is expected: a finite number >= 0 ("expected a
/// number >= 0, e.g. 1e-4, got '-1'"), and a whole number in [lo, hi] ("expected a whole
/// number from 1 to 1024, got 'abc'").
CLI::Validator non_negative_number(const std::string& example);
CLI::Validator whole_number(long long lo, long long hi);

/// Splits "NAME=FILE" or "FILE". A string that is itself an existing file is a FILE; else it
/// is split at the first '=' whose right side is an existing file, else at the first '='.
struct InputArg {
  std::string name;  // empty: the model's only input (or the keys of an .npz)
  std::string path;
};
InputArg parse_input_arg(const std::string& spec);

/// True for file names the image loader reads (png, jpg, jpeg, bmp, gif, tga, ppm, pgm,
/// pnm, psd, hdr, pic), by extension.
bool is_image_file(const std::string& path);

/// What an --input file is: "npy", "npz" or "image", by extension, else by content (the
/// .npy magic, image signatures). Throws anvil::Error (field "input") listing the supported
/// types for anything else (.webp, .tiff, text...).
std::string input_file_kind(const std::string& path);

/// Image preprocessing flags (see anvil/image.h), shared by run, bench and verify.
struct ImageArgs {
  std::string size;       // "WxH"
  bool bgr = false;       // --bgr (the default for Caffe models)
  bool rgb = false;       // --rgb: keep RGB even for a Caffe model
  std::string mean_file;  // Caffe .binaryproto mean image (C, H, W), subtracted per pixel
  std::string mean;       // "a" or "a,b,c"
  std::string scale;      // "s" or "a,b,c"
  float divide = 1.0f;
  std::string layout;  // "", "nchw" or "nhwc"
  int channels = 0;    // 0: the model's (1 or 3) or else the file's
  void add_to(CLI::App& app);
};

/// Input flags shared by run, bench and verify: --input (repeatable) and the image flags.
struct InputArgs {
  std::vector<std::string> specs;
  std::vector<std::string> shapes;  // --shape NAME=D1,D2,... or D1,D2,... (single input)
  bool dequantize = false;          // --dequantize: ImportOptions::dequantize_outputs
  ImageArgs image;
  void add_to(CLI::App& app);
};

/// A graph input as the source framework sees it.
struct ModelInput {
  std::string name;         // canonical value name
  std::string source_name;  // name in the source framework (== name when unknown)
  DType dtype = DType::f32;
  Shape shape;                // in the source layout
  std::string layout;         // "NHWC", "NCHW", ...: the provenance's label, else (rank 4) the
                              // framework's convention (NHWC for keras/tensorflow/tflite)
  std::vector<bool> dynamic;  // per dim: the model leaves it open (filled by the importer)
};

std::vector<ModelInput> model_inputs(const Graph& g);

/// A model imported for running, with the inputs to feed it.
struct PreparedModel {
  Graph graph;
  std::vector<ModelInput> inputs;
  std::map<std::string, Tensor> feed;  // keyed by canonical input name
  std::vector<std::string> notes;      // one line per image input: the preprocessing applied
};

/// Parses one --shape value: "NAME=D1,D2,..." or "D1,D2,..." (name empty). Dims are
/// integers >= 0. Throws anvil::Error (field "shape") naming --shape on bad syntax.
std::pair<std::string, Shape> parse_shape_arg(const std::string& spec);

/// The --shape values `specs` for a model with these inputs, keyed by source input name: a
/// name-less value needs a single-input model; the rank must be the input's. Throws
/// anvil::Error (field "shape") naming the input.
std::map<std::string, Shape> shape_overrides(const std::vector<std::string>& specs,
                                             const std::vector<ModelInput>& inputs,
                                             const std::string& model);

/// Imports `files` (with the --shape overrides, which may change any dimension: the graph is
/// imported at that shape), reads the inputs named by `args` (.npy, .npz, images), and
/// re-imports with the inputs' shapes when they differ from the model's only in dynamic
/// dimensions (e.g. a batch of 8 for a model with a free batch dimension); a fixed dimension
/// that differs is an error naming the input and dimension (give --shape to override it).
/// Image inputs of a Caffe model get BGR order and its input layer's transform_param
/// (scale, mean_value, mean_file, force_color/gray) unless flags say otherwise; `notes`
/// says what each image got. With `random_fill`, inputs
/// not given are filled with seeded random values (uniform [0, 1) floats, zero integers);
/// otherwise every input must be given. Throws anvil::Error naming the file and field.
PreparedModel prepare_model(const std::vector<std::string>& files, const InputArgs& args,
                            bool random_fill, uint32_t seed = 0);

/// A seeded random tensor (uniform [0, 1) for floats, zeros for integers and booleans).
Tensor random_tensor(DType dtype, const Shape& shape, uint32_t seed);

/// NumPy's name of the dtype as written to .npy ("float32", "int64", "bool"; bf16 -> float32).
std::string numpy_dtype_name(DType t);

/// The file `anvil run` writes for a tensor: DIR/<sanitize_tensor_name(name)>.npy.
std::string output_path(const std::string& dir, const std::string& tensor_name);

/// "2 (0.9981)  8 (0.0012)  ..." for the k largest values of row `row` of a 2-D tensor.
std::string top_k_row(const Tensor& t, int64_t row, int k);

/// The backend `run` and `bench` use when --backend is not given: cpu when built, else reference.
std::string default_backend();

/// Help text of a --backend option: the backends of this build (backend_names(), so "cuda"
/// only in -DANVIL_CUDA=ON builds) and the default. An unknown name is rejected by
/// check_backend() ("unknown backend 'cuda' (available: ...)", exit 2).
std::string backend_help(const std::string& default_name);

}  // namespace anvil::cli
