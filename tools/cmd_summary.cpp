// anvil summary MODEL [MORE_FILES...]: the model's format, inputs and outputs on one line,
// then a table of every node with its output shape in the source framework's layout.
#include <cstdio>
#include <memory>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/pipeline.h"
#include "anvil/summary.h"
#include "cli_util.h"
#include "commands.h"

namespace anvil::cli {
namespace {

// "(?, 3, 224, 224)": the source-layout shape with the dims that differ in `other` (the
// model imported with another default for its free dims) shown as '?'.
std::string free_shape_str(const Value& v, const Value* other) {
  if (!v.shape_known) return "(?)";
  const Shape s = source_shape(v);
  Shape o;
  if (other && other->shape_known) o = source_shape(*other);
  if (o.size() != s.size()) return shape_str(s);
  std::string r = "(";
  for (size_t d = 0; d < s.size(); ++d)
    r += (d ? ", " : "") + (s[d] != o[d] ? std::string("?") : std::to_string(s[d]));
  return r + (s.size() == 1 ? ",)" : ")");
}

std::string describe(const Graph& g, const std::vector<int>& ids, const Graph* other,
                     const std::vector<int>* other_ids) {
  std::string r;
  for (size_t k = 0; k < ids.size(); ++k) {
    const Value& v = g.values[static_cast<size_t>(ids[k])];
    const Value* o = other && other_ids && other_ids->size() == ids.size()
                         ? &other->values[static_cast<size_t>((*other_ids)[k])]
                         : nullptr;
    if (!r.empty()) r += ", ";
    r += (v.prov.source_name.empty() ? v.name : v.prov.source_name) + " " + free_shape_str(v, o) +
         " " + numpy_dtype_name(v.dtype);
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
  std::vector<std::string> shape_specs;
  app.add_flag("--constants", opt.show_constants, "list the weight tensors too");
  app.add_option("--shape", shape_specs,
                 "import at this input shape: NAME=D1,D2,... or D1,D2,... (single input); "
                 "repeat per input. Dims the model leaves free show as '?'");
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;

  ImportOptions io;
  if (!shape_specs.empty())
    io.input_shapes =
        shape_overrides(shape_specs, model_inputs(import_model(files)), files.front());
  Graph g = graph_with_shapes(import_model(files, io));
  // The free dims: those that change when the importer fills them with another default.
  std::unique_ptr<Graph> other;
  try {
    ImportOptions io3 = io;
    io3.default_dim = 3;
    other = std::make_unique<Graph>(graph_with_shapes(import_model(files, io3)));
    if (other->inputs.size() != g.inputs.size() || other->outputs.size() != g.outputs.size())
      other.reset();
  } catch (const Error&) {
    other.reset();  // shapes are then shown as imported
  }
  std::string format = g.framework.empty() ? "unknown" : g.framework;
  std::printf("%s: format %s%s | inputs: %s | outputs: %s\n", files.front().c_str(), format.c_str(),
              g.name.empty() ? "" : (", graph '" + g.name + "'").c_str(),
              describe(g, g.inputs, other.get(), other ? &other->inputs : nullptr).c_str(),
              describe(g, g.outputs, other.get(), other ? &other->outputs : nullptr).c_str());
  std::string table = summary(g, opt);
  std::fputs(table.c_str(), stdout);
  if (!table.empty() && table.back() != '\n') std::fputc('\n', stdout);
  return 0;
}

const CommandRegistrar reg{Command{
    "summary", "print a model's inputs, outputs and layers with their shapes", summary_main}};

}  // namespace
}  // namespace anvil::cli
