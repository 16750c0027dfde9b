#include "import/common/node_emitter.h"

#include "anvil/error.h"

namespace anvil::imp {

int64_t checked_numel(const Shape& s, const std::string& field, int64_t max) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("negative dimension in " + shape_str(s), {}, {}, field);
    if (d != 0 && n > max / d) throw Error("hostile tensor size " + shape_str(s), {}, {}, field);
    n *= d;
  }
  return n;
}

NodeEmitter::NodeEmitter(Graph& g, Namer namer, Options o)
    : g_(g), namer_(std::move(namer)), opt_(o) {}

std::vector<int> NodeEmitter::emit(const std::string& op, const std::vector<int>& ins, Attributes a,
                                   int num_outputs) {
  const int ni = g_.add_node(op, namer_(op), ins, std::move(a), num_outputs);
  g_.nodes[static_cast<size_t>(ni)].source_op = source_op_;
  try {
    g_.infer_node(ni);
  } catch (const Error& e) {
    const std::string field = e.field().empty() && opt_.field_defaults_to_op ? op : e.field();
    fail(field, opt_.op_in_errors ? op + ": " + e.message() : e.message());
  }
  std::vector<int> outs = g_.nodes[static_cast<size_t>(ni)].outputs;
  for (int o : outs) {
    try {
      checked_numel(g_.values[static_cast<size_t>(o)].shape, "shape");
    } catch (const Error& e) {
      fail(e.field(), e.message());
    }
  }
  if (after_emit) after_emit(ni);
  return outs;
}

int NodeEmitter::constant(const std::string& what, Tensor t) {
  return g_.add_constant(namer_(what), std::move(t));
}

void NodeEmitter::fail(const std::string& field, const std::string& message) const {
  throw Error(message, g_.source_file, label_, field);
}

}  // namespace anvil::imp
