// anvil run MODEL [MORE_FILES...] [--input NAME=FILE]... [--output NAME]... [--output-dir DIR]
//           [--shape NAME=D1,D2,...]... [--backend B] [--threads N]
//           [--precision fp32|fp16|bf16] [image flags]
// Writes DIR/<sanitized source name>.npy for every model output (or each --output), in the
// source framework's layout, and prints one line per file (+ top-5 classes of 2-D outputs).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "anvil/error.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "cli_util.h"
#include "commands.h"

namespace anvil::cli {
namespace {

// True when a 2-D float output looks like a classifier's scores, so its top-k classes mean
// something: every row a probability distribution (values in [0, 1] summing to ~1), or the
// tensor comes (through bias adds, reshapes, casts) from Softmax, LogSoftmax, Sigmoid, a
// fully connected layer (Gemm, MatMul) or a global average pool (SqueezeNet-style heads).
bool looks_like_class_scores(const Graph& g, const std::string& name, const Tensor& t) {
  if (t.rank() != 2 || !is_float(t.dtype()) || t.dim(1) < 2) return false;
  bool probabilities = true;
  for (int64_t r = 0; r < t.dim(0) && probabilities; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < t.dim(1); ++c) {
      const double v = t.get(r * t.dim(1) + c);
      if (!(v >= 0 && v <= 1)) probabilities = false;
      sum += v;
    }
    if (std::fabs(sum - 1) > 1e-3) probabilities = false;
  }
  if (probabilities) return true;
  int v = g.find_value_by_any_name(name);
  for (int step = 0; step < 6 && v >= 0; ++step) {
    const int p = g.values[static_cast<size_t>(v)].producer;
    if (p < 0) return false;
    const Node& n = g.nodes[static_cast<size_t>(p)];
    static const std::set<std::string> heads = {"Softmax", "LogSoftmax",        "Sigmoid",   "Gemm",
                                                "MatMul",  "GlobalAveragePool", "ReduceMean"};
    static const std::set<std::string> through = {"Add",  "Reshape", "Flatten", "Identity",
                                                  "Cast", "Squeeze", "Dropout", "Transpose"};
    if (heads.count(n.op)) return true;
    if (!through.count(n.op) || n.inputs.empty()) return false;
    v = n.inputs[0];
    for (int in : n.inputs)  // a bias add: follow the computed operand
      if (in >= 0 && !g.values[static_cast<size_t>(in)].is_constant()) {
        v = in;
        break;
      }
  }
  return false;
}

// `-o result.npy`: -o names a tensor, not a file. Throws with that hint and the model's
// nearest tensor names when a fetch looks like a file name and names no tensor.
void check_fetch_names(const Graph& g, const std::vector<std::string>& fetch,
                       const std::string& model) {
  for (const auto& f : fetch) {
    if (g.find_value_by_any_name(f) >= 0) continue;
    const bool file_like = f.find('/') != std::string::npos ||
                           (f.size() > 4 && f.compare(f.size() - 4, 4, ".npy") == 0) ||
                           (f.size() > 4 && f.compare(f.size() - 4, 4, ".npz") == 0);
    std::string near;
    for (const auto& n : nearest_tensor_names(g, f, 3))
      near += (near.empty() ? "'" : ", '") + n + "'";
    std::string m = "no tensor named '" + f + "' in the model";
    if (file_like)
      m += "; -o/--output names a tensor to write, not a file (each is written to --output-dir "
           "as <tensor>.npy)";
    if (!near.empty()) m += "; nearest tensor names: " + near;
    throw Error(m, model, {}, "output");
  }
}

int run_main(int argc, char** argv) {
  CLI::App app{
      "Run a model on inputs and write every output (or any tensor) as a .npy file.\n"
      "--shape NAME=D1,D2,... imports the model at another input shape (batch, image "
      "size), also over dims the model fixes (e.g. a Caffe deploy's batch). Image inputs "
      "of Caffe models are fed BGR (--rgb to override) with the input layer's "
      "transform_param (scale, mean_value, mean_file) unless --mean/--mean-file/--scale "
      "say otherwise; a line 'preprocess ...' tells what was applied.",
      "anvil run"};
  std::vector<std::string> files;
  InputArgs in;
  std::vector<std::string> outputs;
  std::string dir = ".";
  std::string backend = default_backend();
  std::string precision = "fp32";
  int threads = 1;
  int top = 5;
  app.add_option("model", files, "the model file, then any further files it needs")->required();
  in.add_to(app);
  app.add_option("-o,--output", outputs,
                 "a tensor to write (source or canonical name; default: the model outputs); "
                 "repeat for several")
      ->allow_extra_args(false);
  app.add_option("--output-dir", dir, "where to write <name>.npy files (default: .)");
  app.add_option("--backend", backend, backend_help(backend));
  app.add_option("--threads", threads, "threads (default: 1)")->check(whole_number(1, 1024));
  app.add_option("--precision", precision,
                 "fp32, fp16 or bf16: storage precision of weights and activations (default: fp32; "
                 "outputs are cast back to the model's dtypes)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  app.add_option("--top", top, "classes printed per row of 2-D float outputs (default: 5)")
      ->check(whole_number(0, 1000));
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;

  check_backend(backend);  // fail early, listing the backends that exist
  PreparedModel pm = prepare_model(files, in, /*random_fill=*/false);
  for (const auto& note : pm.notes) std::printf("%s\n", note.c_str());
  // NaN/Inf in an input propagates (as in the source frameworks): say so, one line per input.
  for (const auto& mi : pm.inputs) {
    auto it = pm.feed.find(mi.name);
    if (it == pm.feed.end() || !is_float(it->second.dtype())) continue;
    const Tensor& t = it->second;
    int64_t nan = 0, inf = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double v = t.get(i);
      nan += std::isnan(v) ? 1 : 0;
      inf += std::isinf(v) ? 1 : 0;
    }
    if (nan || inf)
      std::fprintf(stderr,
                   "anvil run: warning: input '%s' holds %lld NaN and %lld Inf of %lld values; "
                   "the outputs that depend on them will be NaN or Inf\n",
                   mi.source_name.c_str(), static_cast<long long>(nan), static_cast<long long>(inf),
                   static_cast<long long>(t.numel()));
  }

  // Unique fetch list, as asked.
  std::vector<std::string> fetch;
  for (const auto& o : outputs)
    if (std::find(fetch.begin(), fetch.end(), o) == fetch.end()) fetch.push_back(o);

  check_fetch_names(pm.graph, fetch, files.front());

  SessionOptions so;
  so.backend = backend;
  so.threads = threads;
  so.precision = parse_precision(precision);
  so.taps = fetch;
  Session session(std::move(pm.graph), so);
  std::map<std::string, Tensor> results = session.run(pm.feed, fetch);

  // (source name, tensor) in a stable order: model outputs in order, or --output in order.
  std::vector<std::pair<std::string, Tensor>> items;
  if (fetch.empty()) {
    for (const auto& o : session.outputs()) {
      auto it = results.find(o.source_name);
      if (it == results.end()) it = results.find(o.name);
      if (it == results.end())
        throw Error("the backend returned no value for output '" + o.source_name + "'",
                    files.front());
      items.emplace_back(o.source_name, it->second);
    }
  } else {
    const Graph& src = session.source_graph();
    for (const auto& f : fetch) {
      std::string name = f;
      int v = src.find_value_by_any_name(f);
      if (v >= 0 && !src.values[static_cast<size_t>(v)].prov.source_name.empty())
        name = src.values[static_cast<size_t>(v)].prov.source_name;
      items.emplace_back(name, results.at(f));
    }
  }

  std::map<std::string, std::string> path_owner;
  for (const auto& [name, t] : items) {
    std::string p = output_path(dir, name);
    auto [it, inserted] = path_owner.emplace(p, name);
    if (!inserted && it->second != name)
      throw Error("tensors '" + it->second + "' and '" + name + "' would both be written to " + p,
                  {}, {}, "output");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("cannot create the output directory: " + ec.message(), dir, {}, "output-dir");

  std::set<std::string> written;
  for (const auto& [name, t] : items) {
    std::string p = output_path(dir, name);
    if (!written.insert(p).second) continue;
    write_npy(p, t);
    std::printf("%s %s %s -> %s\n", name.c_str(), shape_str(t.shape()).c_str(),
                numpy_dtype_name(t.dtype()).c_str(), p.c_str());
    if (top > 0 && looks_like_class_scores(session.source_graph(), name, t)) {
      const int64_t rows = t.dim(0), shown = std::min<int64_t>(rows, 32);
      for (int64_t r = 0; r < shown; ++r)
        std::printf("  [%lld] top-%d: %s\n", static_cast<long long>(r),
                    static_cast<int>(std::min<int64_t>(top, t.dim(1))),
                    top_k_row(t, r, top).c_str());
      if (rows > shown) std::printf("  ... %lld more rows\n", static_cast<long long>(rows - shown));
    }
  }
  std::fflush(stdout);
  return 0;
}

const CommandRegistrar reg{
    Command{"run", "run a model on .npy/image inputs, write outputs as .npy", run_main}};

}  // namespace
}  // namespace anvil::cli
