// summary(): one row per source layer in the framework's own terms (Graph::source_layers), or
// else a Keras-like table with one row per node, to check shapes against the source model.
#include "anvil/summary.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "anvil/error.h"

namespace anvil {

Shape source_shape(const Value& v) {
  const auto& p = v.prov.to_source;
  if (p.empty() || p.size() != v.shape.size()) return v.shape;
  Shape s(v.shape.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int k = p[i];
    if (k < 0 || static_cast<size_t>(k) >= v.shape.size()) return v.shape;
    s[i] = v.shape[static_cast<size_t>(k)];
  }
  return s;
}

namespace {

std::string shape_cell(const Value& v) {
  if (!v.shape_known) return "?";
  std::string s = shape_str(source_shape(v));
  if (!v.prov.source_layout.empty() && v.shape.size() == v.prov.source_layout.size())
    s += " " + v.prov.source_layout;
  return s;
}

std::string source_name(const Value& v) {
  if (v.prov.source_name.empty()) return v.name;
  if (v.prov.output_index != 0)
    return v.prov.source_name + ":" + std::to_string(v.prov.output_index);
  return v.prov.source_name;
}

std::string pads_cell(const Node& n) {
  if (!n.attrs.has("pads")) return "";
  std::vector<int64_t> p;
  try {
    p = n.attrs.get_ints("pads");
  } catch (const Error&) {
    return n.attrs.to_string("pads");
  }
  std::string s = "[";
  for (size_t i = 0; i < p.size(); ++i) s += (i ? "," : "") + std::to_string(p[i]);
  return s + "]";
}

// Weights count as parameters; operator arguments held as constants (integer shapes, pads,
// axes, sizes, and scalar bounds such as Clip's min/max) do not, as in Keras's model.summary().
// Quantized TFLite layers (TFLiteQuantized* ops) count their integer weights and biases.
bool is_parameter(const Value& v, const Node& n) {
  if (!v.is_constant() || v.shape.empty()) return false;
  return is_float(v.dtype) || n.op.rfind("TFLiteQuantized", 0) == 0;
}

// ---- one row per source layer (Graph::source_layers) ----

std::string with_commas(int64_t n) {  // Python's '{:,}'
  std::string d = std::to_string(n < 0 ? -n : n), r;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0) r += ',';
    r += d[i];
  }
  return (n < 0 ? "-" : "") + r;
}

std::string dims_text(const Shape& s, bool keras_tuple) {
  std::string t = "(";
  for (size_t k = 0; k < s.size(); ++k)
    t += (k ? ", " : "") + (s[k] < 0 ? std::string("None") : std::to_string(s[k]));
  return t + (keras_tuple && s.size() == 1 ? ",)" : ")");
}

// Keras's model.summary() (Keras 2 / tf.keras layout: "Layer (type)", "Output Shape",
// "Param #" at columns of at least 29, 26 and 10 characters, rows between "_" lines, totals
// with thousands separators).
std::string keras_table(const Graph& g) {
  using Row = std::vector<std::string>;
  std::vector<Row> rows;
  int64_t trainable = 0, non_trainable = 0;
  bool connections = false;
  for (const SourceLayer& l : g.source_layers) connections |= !l.connected_to.empty();
  std::vector<size_t> row_end;  // rows.size() after each layer (a layer may take several rows)
  for (const SourceLayer& l : g.source_layers) {
    std::string shape = l.shape_text;
    if (shape.empty()) {
      if (l.output_shapes.size() == 1) {
        shape = dims_text(l.output_shapes[0], true);
      } else {
        shape = "[";
        for (size_t k = 0; k < l.output_shapes.size(); ++k)
          shape += (k ? ", " : "") + dims_text(l.output_shapes[k], true);
        shape += "]";
      }
    }
    rows.push_back({l.name + " (" + l.type + ")", shape,
                    std::to_string(l.trainable_params + l.non_trainable_params)});
    if (connections) {
      rows.back().push_back(l.connected_to.empty() ? std::string() : l.connected_to[0]);
      for (size_t k = 1; k < l.connected_to.size(); ++k)
        rows.push_back({"", "", "", l.connected_to[k]});
    }
    trainable += l.trainable_params;
    non_trainable += l.non_trainable_params;
    row_end.push_back(rows.size());
  }
  // Keras's column widths: sequential-like (65 wide) or with connections (98 wide)
  std::vector<size_t> width =
      connections ? std::vector<size_t>{32, 21, 12, 33} : std::vector<size_t>{29, 26, 10};
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c)
      width[c] = std::max(width[c], r[c].size() + (c + 1 < r.size() ? 1 : 0));
  size_t line_length = 0;
  for (size_t w : width) line_length += w;
  auto line = [&](const Row& r) {
    std::string s;
    for (size_t c = 0; c < r.size(); ++c)
      s += r[c] + std::string(width[c] - std::min(width[c], r[c].size()), ' ');
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = "Model: \"" + (g.name.empty() ? std::string("model") : g.name) + "\"\n";
  out += std::string(line_length, '_') + "\n";
  out += line(connections ? Row{"Layer (type)", "Output Shape", "Param #", "Connected to"}
                          : Row{"Layer (type)", "Output Shape", "Param #"});
  out += std::string(line_length, '=') + "\n";
  size_t next = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    out += line(rows[i]);
    while (next < row_end.size() && row_end[next] <= i) ++next;
    if (next < row_end.size() && row_end[next] == i + 1)
      out += std::string(line_length, i + 1 == rows.size() ? '=' : '_') + "\n";
  }
  if (rows.empty()) out += std::string(line_length, '=') + "\n";
  out += "Total params: " + with_commas(trainable + non_trainable) + "\n";
  out += "Trainable params: " + with_commas(trainable) + "\n";
  out += "Non-trainable params: " + with_commas(non_trainable) + "\n";
  out += std::string(line_length, '_') + "\n";
  return out;
}

// Other frameworks (Caffe): layer name and type, top blob(s), their shapes in the source's own
// layout (Caffe: NCHW) and the numbers the framework stores for the layer.
std::string source_table(const Graph& g) {
  using Row = std::vector<std::string>;
  const Row header{"Layer (type)", "Top blob(s)", "Output shape", "Params"};
  std::vector<Row> rows;
  int64_t total = 0;
  for (const SourceLayer& l : g.source_layers) {
    std::string tops, shapes;
    for (size_t k = 0; k < l.outputs.size(); ++k) tops += (k ? ", " : "") + l.outputs[k];
    if (!l.shape_text.empty())
      shapes = l.shape_text;
    else
      for (size_t k = 0; k < l.output_shapes.size(); ++k)
        shapes += (k ? ", " : "") + dims_text(l.output_shapes[k], false);
    int64_t n = l.trainable_params + l.non_trainable_params;
    total += n;
    rows.push_back({l.name + " (" + l.type + ")", tops, shapes, std::to_string(n)});
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const Row& r) {
    std::string s;
    for (size_t c = 0; c < r.size(); ++c) {
      std::string pad(width[c] - r[c].size(), ' ');
      s += c + 1 == r.size() ? pad + r[c] : r[c] + pad;
      if (c + 1 < r.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  size_t total_width = 2 * (width.size() - 1);
  for (size_t w : width) total_width += w;
  std::string out = "Model: " + (g.name.empty() ? std::string("(unnamed)") : g.name);
  if (!g.framework.empty()) out += " (" + g.framework + ")";
  out += "\n" + std::string(total_width, '=') + "\n";
  out += line(header);
  out += std::string(total_width, '-') + "\n";
  for (const auto& r : rows) out += line(r);
  out += std::string(total_width, '=') + "\n";
  out += "Total params: " + std::to_string(total) + "\n";
  return out;
}

}  // namespace

int64_t node_parameter_count(const Graph& g, const Node& n) {
  int64_t count = 0;
  std::set<int> seen;
  for (int in : n.inputs) {
    if (in < 0 || static_cast<size_t>(in) >= g.values.size() || !seen.insert(in).second) continue;
    const Value& v = g.values[static_cast<size_t>(in)];
    if (is_parameter(v, n)) count += v.constant.numel();
  }
  return count;
}

std::string summary(const Graph& g, const SummaryOptions& options) {
  // The source framework's own view, one row per source layer, when the importer recorded it.
  if (!g.source_layers.empty() && !options.show_constants)
    return g.framework == "keras" ? keras_table(g) : source_table(g);
  using Row = std::vector<std::string>;
  std::vector<Row> rows;
  Row header{"Layer (source name)", "Op", "Output shape", "Padding", "Params"};
  for (int i : g.inputs) {
    const Value& v = g.values[static_cast<size_t>(i)];
    rows.push_back({source_name(v), "Input", shape_cell(v), "", "0"});
  }
  std::set<int> counted;
  int64_t total = 0;
  // Grouping by source layer: a helper node whose outputs carry no source name and whose name
  // is "<layer>/..." for a layer that has its own row (importers name the extra nodes of one
  // source layer so, e.g. a Keras Conv2D's layout Transpose and Conv before its activation)
  // is not listed; its parameters go to that layer's row.
  std::set<std::string> source_names;
  for (const Node& n : g.nodes)
    for (int o : n.outputs)
      if (!n.dead && o >= 0 && static_cast<size_t>(o) < g.values.size() &&
          !g.values[static_cast<size_t>(o)].prov.source_name.empty())
        source_names.insert(g.values[static_cast<size_t>(o)].prov.source_name);
  std::map<std::string, int64_t> grouped_params;
  std::map<std::string, std::string> grouped_pads;
  for (const Node& n : g.nodes) {
    if (n.dead) continue;
    bool has_source = false;
    for (int o : n.outputs)
      if (o >= 0 && static_cast<size_t>(o) < g.values.size() &&
          !g.values[static_cast<size_t>(o)].prov.source_name.empty())
        has_source = true;
    auto slash = n.name.rfind('/');
    if (!has_source && slash != std::string::npos && source_names.count(n.name.substr(0, slash))) {
      grouped_params[n.name.substr(0, slash)] += node_parameter_count(g, n);
      if (n.attrs.has("pads")) grouped_pads[n.name.substr(0, slash)] = pads_cell(n);
      for (int in : n.inputs)
        if (in >= 0 && static_cast<size_t>(in) < g.values.size() &&
            is_parameter(g.values[static_cast<size_t>(in)], n) && counted.insert(in).second)
          total += g.values[static_cast<size_t>(in)].constant.numel();
      continue;
    }
  }
  for (const Node& n : g.nodes) {
    if (n.dead) continue;
    {
      bool has_source = false;
      for (int o : n.outputs)
        if (o >= 0 && static_cast<size_t>(o) < g.values.size() &&
            !g.values[static_cast<size_t>(o)].prov.source_name.empty())
          has_source = true;
      auto slash = n.name.rfind('/');
      if (!has_source && slash != std::string::npos && source_names.count(n.name.substr(0, slash)))
        continue;
    }
    std::string name = n.name, shapes;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      int o = n.outputs[k];
      if (o < 0 || static_cast<size_t>(o) >= g.values.size()) continue;
      const Value& v = g.values[static_cast<size_t>(o)];
      if (k == 0) name = v.prov.source_name.empty() ? n.name : source_name(v);
      shapes += (shapes.empty() ? "" : ", ") + shape_cell(v);
    }
    for (int in : n.inputs) {
      if (in < 0 || static_cast<size_t>(in) >= g.values.size()) continue;
      if (is_parameter(g.values[static_cast<size_t>(in)], n) && counted.insert(in).second)
        total += g.values[static_cast<size_t>(in)].constant.numel();
    }
    int64_t params = node_parameter_count(g, n);
    if (auto it = grouped_params.find(name); it != grouped_params.end()) {
      params += it->second;
      grouped_params.erase(it);
    }
    std::string pads = pads_cell(n);
    if (auto it = grouped_pads.find(name); it != grouped_pads.end()) {
      if (pads.empty()) pads = it->second;
      grouped_pads.erase(it);
    }
    rows.push_back(
        {name, n.source_op.empty() ? n.op : n.source_op, shapes, pads, std::to_string(params)});
  }
  if (options.show_constants) {
    for (const Value& v : g.values) {
      if (!v.is_constant()) continue;
      rows.push_back(
          {source_name(v), "Constant", shape_str(v.shape), "", std::to_string(v.constant.numel())});
    }
  }

  // TFLite: each quantized tensor's scale and zero point (recorded by the importer)
  const auto q = g.metadata.lower_bound("tflite.quantization.");
  if (q != g.metadata.end() && q->first.rfind("tflite.quantization.", 0) == 0 &&
      !options.show_constants) {
    for (auto& r : rows) {
      auto it = g.metadata.find("tflite.quantization." + r[0]);
      r.insert(r.end() - 1, it == g.metadata.end() ? "" : it->second);
    }
    header.insert(header.end() - 1, "Quantization");
  }
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  auto line = [&](const Row& r) {
    std::string s;
    for (size_t c = 0; c < r.size(); ++c) {
      bool right = c + 1 == r.size();  // numbers right-aligned
      std::string cell = r[c];
      std::string pad(width[c] - cell.size(), ' ');
      s += right ? pad + cell : cell + pad;
      if (c + 1 < r.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  size_t total_width = 0;
  for (size_t w : width) total_width += w;
  total_width += 2 * (width.size() - 1);

  std::string out = "Model: " + (g.name.empty() ? std::string("(unnamed)") : g.name);
  if (!g.framework.empty()) out += " (" + g.framework + ")";
  out += "\n" + std::string(total_width, '=') + "\n";
  out += line(header);
  out += std::string(total_width, '-') + "\n";
  for (const auto& r : rows) out += line(r);
  out += std::string(total_width, '=') + "\n";
  out += "Total params: " + std::to_string(total) + "\n";
  return out;
}

}  // namespace anvil
