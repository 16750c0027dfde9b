// anvil dump MODEL [MORE_FILES...] [--input NAME=FILE]... (--npz FILE | --output-dir DIR)
//            [--tensor NAME]... [--backend B] [--precision fp32|fp16|bf16]
// Runs the model with every tensor kept and writes every tensor the source framework names
// (graph inputs and each layer's output; or only the --tensor ones), in the source layout,
// keyed by source names: as .npz keys as they are, or as DIR/<sanitized name>.npy (the file
// names `anvil run` writes; anvil::sanitize_tensor_name). `anvil verify --reference` reads both.
#include <cstdio>
#include <filesystem>
#include <set>

#include "anvil/error.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "anvil/verify.h"
#include "cli_util.h"
#include "commands.h"

namespace anvil::cli {
namespace {

int dump_main(int argc, char** argv) {
  CLI::App app{
      "Write every intermediate tensor (or the named ones) in the source framework's layout, keyed "
      "by "
      "source names: one .npz, or a folder of .npy named as anvil run names files.",
      "anvil dump"};
  std::vector<std::string> files, tensors;
  InputArgs in;
  std::string npz, dir, backend = "reference", precision = "fp32";
  bool random = false;
  app.add_option("model", files, "the model file, then any further files it needs")->required();
  in.add_to(app);
  auto* o_npz = app.add_option("--npz", npz, "write one .npz (keys: source names)");
  auto* o_dir =
      app.add_option("--output-dir", dir, "write DIR/<sanitized source name>.npy per tensor");
  o_npz->excludes(o_dir);
  app.add_option("--tensor,-t", tensors,
                 "only these tensors (source or canonical names); repeatable");
  app.add_option("--backend", backend, backend_help(backend));
  app.add_option("--precision", precision,
                 "fp32, fp16 or bf16: storage precision of weights and activations (default: fp32; "
                 "reduced-precision tensors are written as float32)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  app.add_flag("--random", random, "fill inputs not given with seeded random values");
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  if (npz.empty() && dir.empty())
    throw Error("give --npz FILE or --output-dir DIR", {}, {}, "output");
  check_backend(backend);

  PreparedModel pm = prepare_model(files, in, random);
  for (const auto& note : pm.notes) std::printf("%s\n", note.c_str());
  SessionOptions so;
  so.backend = backend;
  so.precision = parse_precision(precision);
  so.keep_all = true;
  Session s(std::move(pm.graph), so);
  const Graph& g = s.source_graph();  // constant subgraphs folded: what runs
  // (key, canonical name) in graph order
  std::vector<std::pair<std::string, std::string>> items;
  if (tensors.empty()) {
    for (int v : source_tensors(g))
      items.emplace_back(source_key(g.values[static_cast<size_t>(v)]),
                         g.values[static_cast<size_t>(v)].name);
  } else {
    std::set<std::string> seen;
    for (const auto& t : tensors) {
      int v = g.find_value_by_any_name(t);
      if (v < 0)
        throw Error("no tensor named '" + t + "' in the model (or it is computed at compile time)",
                    files.front(), {}, "tensor");
      const Value& val = g.values[static_cast<size_t>(v)];
      std::string key = val.prov.source_name.empty() ? val.name : source_key(val);
      if (seen.insert(key).second) items.emplace_back(key, val.name);
    }
  }
  std::vector<std::string> fetch;
  for (const auto& [k, name] : items) fetch.push_back(name);
  auto got = s.run(pm.feed, fetch);

  std::map<std::string, Tensor> out;
  for (const auto& [k, name] : items) {
    Tensor t = got.at(name);
    if (t.dtype() == DType::f16 || t.dtype() == DType::bf16) t = t.to(DType::f32);
    out[k] = t;
  }
  if (!npz.empty()) {
    write_npz(npz, out);
    std::printf("%zu tensors -> %s\n", out.size(), npz.c_str());
  } else {
    std::map<std::string, std::string> owner;
    for (const auto& [k, _] : items) {
      auto [it, fresh] = owner.emplace(output_path(dir, k), k);
      if (!fresh && it->second != k)
        throw Error(
            "tensors '" + it->second + "' and '" + k + "' would both be written to " + it->first,
            {}, {}, "output-dir");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      throw Error("cannot create the output directory: " + ec.message(), dir, {}, "output-dir");
    for (const auto& [k, _] : items) write_npy(output_path(dir, k), out.at(k));
    std::printf("%zu tensors -> %s/\n", out.size(), dir.c_str());
  }
  for (const auto& [k, _] : items)
    std::printf("  %s %s\n", k.c_str(), shape_str(out.at(k).shape()).c_str());
  std::fflush(stdout);
  return 0;
}

const CommandRegistrar reg{
    Command{"dump", "write every intermediate tensor (source layout, source names) as .npz or .npy",
            dump_main}};

}  // namespace
}  // namespace anvil::cli
