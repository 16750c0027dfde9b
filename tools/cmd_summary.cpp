// anvil summary MODEL [MORE_FILES...]: the model's format, inputs and outputs on one line,
// then a table of every node with its output shape in the source framework's layout.
#include <cstdio>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/pipeline.h"
#include "anvil/summary.h"
#include "cli_util.h"
#include "commands.h"

namespace anvil::cli {
namespace {

std::string describe(const Graph& g, const std::vector<int>& ids) {
  std::string r;
  for (int i : ids) {
    const Value& v = g.values[static_cast<size_t>(i)];
    if (!r.empty()) r += ", ";
    r += (v.prov.source_name.empty() ? v.name : v.prov.source_name) + " " +
         (v.shape_known ? shape_str(source_shape(v)) : std::string("(?)")) + " " +
         numpy_dtype_name(v.dtype);
    if (!v.prov.source_layout.empty() && v.prov.source_layout.size() == v.shape.size())
      r += " " + v.prov.source_layout;
  }
  return r.empty() ? "none" : r;
}

int summary_main(int argc, char** argv) {
  CLI::App app{"Print a model's format, inputs, outputs and a table of its layers.",
               "anvil summary"};
  std::vector<std::string> files;
  SummaryOptions opt;
  app.add_option("model", files, "the model file, then any further files it needs")->required();
  app.add_flag("--constants", opt.show_constants, "list the weight tensors too");
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;

  Graph g = graph_with_shapes(import_model(files));
  std::string format = g.framework.empty() ? "unknown" : g.framework;
  std::printf("%s: format %s%s | inputs: %s | outputs: %s\n", files.front().c_str(), format.c_str(),
              g.name.empty() ? "" : (", graph '" + g.name + "'").c_str(),
              describe(g, g.inputs).c_str(), describe(g, g.outputs).c_str());
  std::string table = summary(g, opt);
  std::fputs(table.c_str(), stdout);
  if (!table.empty() && table.back() != '\n') std::fputc('\n', stdout);
  return 0;
}

const CommandRegistrar reg{Command{
    "summary", "print a model's inputs, outputs and layers with their shapes", summary_main}};

}  // namespace
}  // namespace anvil::cli
