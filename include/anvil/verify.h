// Comparing tensors the way verification needs: allclose, error magnitudes, cosine.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "anvil/graph.h"
#include "anvil/tensor.h"

namespace anvil {

/// How `got` differs from `want` (the reference), element by element.
struct Comparison {
  bool shape_match = true;
  int64_t count = 0;            // elements compared
  int64_t mismatches = 0;       // elements outside atol + rtol * |want| (NaN vs number counts)
  int64_t first_mismatch = -1;  // flat index, -1 when none
  int64_t worst_index = -1;     // flat index of the largest excess over the tolerance
  double max_abs = 0;           // max |got - want| over non-NaN pairs
  double max_rel = 0;           // max |got - want| / |want| over pairs with want != 0
  double cosine = 1;            // cosine similarity of the two tensors (1 when both are zero)
  double scale = 0;             // the tensor's scale: max |want| over finite elements

  /// Within tolerance: no element outside it (by the criterion compared with), equal shapes.
  bool ok() const { return shape_match && mismatches == 0; }
  /// One line: "max_abs 1.2e-07, max_rel 3e-06, cosine 1, 0 of 96 outside tolerance".
  std::string describe() const;
};

/// Compares any two tensors of equal shape (any dtypes; values read as double), element by
/// element as numpy.allclose: an element is outside tolerance when
/// |got - want| > atol + rtol * |want| (NaN equals NaN; an infinity must be equal).
Comparison compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol);

/// The same with a choice of criterion. per_element = false: relative to the tensor's scale
/// S = max |want| (finite elements): an element is outside tolerance when
/// |got - want| > atol + rtol * S, so float rounding of values near zero after long sums
/// (errors ~1e-6 of S) is not a mismatch (Polygraphy's --check-error-stat max, the fixture
/// checks). per_element = true: numpy.allclose, as the overload above.
Comparison compare_tensors(const Tensor& got, const Tensor& want, double rtol, double atol,
                           bool per_element);

/// One compared tensor of a verification run, in graph order.
struct LayerResult {
  std::string name;                 // source-framework tensor name (the reference key)
  std::string op;                   // op that produced it (canonical op; "Input" for inputs)
  std::vector<std::string> inputs;  // source names of the producing node's inputs (graph edges)
  std::vector<int64_t> shape;       // in the source layout
  double max_abs = 0, max_rel = 0, cosine = 1;
  int64_t mismatches = 0, count = 0;
  /// "ok", "mismatch", "shape" (shapes differ), "nan" (NaN/Inf where the reference has
  /// none) or "unchecked" (no reference tensor; still listed so the graph is whole).
  std::string status;
  std::string reference_key;             // the reference's key that matched (empty: none)
  std::vector<int64_t> reference_shape;  // when the shapes differ
  double scale = 0;                      // max |reference| (finite elements) when compared
  int64_t first_mismatch = -1;           // flat index of the first element outside tolerance
  /// With --precision fp16/bf16: this tensor in reduced precision against the fp32 run
  /// (max relative error = max |x16 - x32| / max |x32|), and whether it holds inf/NaN where
  /// the fp32 run has none. precision_checked is false for fp32 runs.
  bool precision_checked = false;
  double precision_rel = 0;
  bool precision_overflow = false;
};

/// One hypothesis that explains a divergence (see docs/verifying.md).
struct Diagnosis {
  /// input_channel_order, input_scale, input_mean, input_layout, weights_transposed,
  /// weights_flipped, padding, pooling_rounding, flatten_order, batchnorm_epsilon,
  /// precision, float_rounding or unknown.
  std::string cause;
  std::string layer;    // source name of the layer it concerns
  std::string message;  // one or two sentences for a person
};

/// Everything `anvil verify` found; report_json() is the stable contract for scripts.
struct VerifyReport {
  std::string model;      // model file as given
  std::string reference;  // .npz or folder as given
  std::string backend = "reference";
  std::string precision = "fp32";
  double rtol = 0, atol = 0;
  /// "scale" (|ours - ref| <= atol + rtol * max|ref| per tensor, the default) or
  /// "per-element" (numpy.allclose: atol + rtol * |ref| per element).
  std::string criterion = "scale";
  std::string status;           // "match" or "mismatch"
  std::string input_check;      // "ok", "differs" or "absent"
  std::string input_message;    // first values side by side when the input differs
  std::string first_divergent;  // source tensor name; empty means none (null in JSON)
  std::vector<LayerResult> layers;
  std::vector<Diagnosis> diagnosis;
  std::vector<std::string> keep_fp32;            // as asked (--keep-fp32)
  std::vector<std::string> suggest_keep_fp32;    // layers that overflow or lose most precision
  std::vector<std::string> unmatched_reference;  // reference keys no tensor of the model matches
};

/// What verify_model() runs and how it compares.
struct VerifyOptions {
  /// Inputs keyed by input name (canonical or source name), in the source layout. Empty:
  /// every input is taken from the reference (matched by the aliasing rules below).
  std::map<std::string, Tensor> inputs;
  /// "reference" by default, unlike SessionOptions (cpu): verify proves the import, and the
  /// reference backend's double accumulation leaves only the framework's own rounding in the
  /// differences. "cpu" (fp32 accumulation) adds its own, up to ~1e-6 of a layer's scale
  /// (2.3e-5 on values up to 22 in tests/data/fixtures/keras/resnet_small): within the
  /// defaults below on every fixture, not always within a tighter rtol (docs/cpu_backend.md).
  std::string backend = "reference";
  std::string precision = "fp32";      // "fp32", "fp16" or "bf16" (SessionOptions::precision)
  std::vector<std::string> keep_fp32;  // layers kept in fp32 under fp16/bf16
  double rtol = 1e-4, atol = 1e-5;
  /// false (default): tolerance relative to each tensor's scale (max |ref|), robust to the
  /// frameworks' own float32 rounding; true: numpy.allclose per element (strict).
  bool per_element = false;
  bool diagnose = true;  // test the classic import mistakes at the first divergence
  int threads = 1;
};

/// Reads a reference: an .npz (keys as stored, without ".npy") or a folder of .npy files
/// (keys = file names without ".npy"). Throws anvil::Error naming the path.
std::map<std::string, Tensor> read_reference(const std::string& path);

/// The reference key for one tensor of the graph (value index `v`), by the aliasing rules,
/// tried in this order: the source name as the framework writes it ("conv1", Keras layer
/// name, Caffe top blob, ONNX value name; "name:i" for output i > 0 of a layer); the same
/// with ":0" appended (TensorFlow "node:0" == "node"); the canonical value name; and each of
/// those through sanitize_tensor_name() (the file names `anvil run`/`anvil dump` and the
/// python dumpers write, e.g. "dense/BiasAdd:0" -> "dense_BiasAdd_0"). Empty when none matches.
std::string match_reference_key(const Graph& g, int v,
                                const std::map<std::string, Tensor>& reference);

/// The key of a graph value in the source framework's terms: its source name, with ":i" for
/// output i > 0 of a layer; the canonical name when it has no source name.
std::string source_key(const Value& v);

/// The tensors a source-framework user sees, in graph order: the graph inputs, then every
/// node output carrying a source name (a source layer made of several canonical nodes is its
/// last value); every node output when the graph has no provenance at all. Value indices.
/// Outputs of nodes marked dead (folded into constants) are left out.
std::vector<int> source_tensors(const Graph& g);

/// Runs `g` with every tensor kept, compares each tensor the reference has (in the source
/// layout) and, at the first divergent layer, tests the classic import mistakes. Layers are
/// the graph's inputs and every node output carrying a source name (a source-framework layer
/// made of several canonical nodes is one layer: its last value), in graph order.
/// Throws anvil::Error (bad options, an input that is neither given nor in the reference).
VerifyReport verify_model(const Graph& g, const std::map<std::string, Tensor>& reference,
                          const VerifyOptions& options);

/// {"status", "input_check", "first_divergent", "layers": [{name, op, max_abs, max_rel,
/// cosine, status, ...}], "diagnosis": [{cause, layer, message}], ...} (non-finite numbers
/// are written as null).
std::string report_json(const VerifyReport& r);
/// One self-contained HTML page (no network): per-layer error chart (log scale) and the
/// graph with nodes coloured by error, the first divergence highlighted.
std::string report_html(const VerifyReport& r);

namespace diag {
/// Whether value `v` of `g` is channels-last in its source framework, as the diagnosis reads
/// it (and `anvil inspect` shows it): its provenance layout ends in 'C' ("NHWC", "NWC"), else
/// its framework is keras, tensorflow or tflite.
bool channels_last_of(const Graph& g, const Value& v);
}  // namespace diag

}  // namespace anvil
