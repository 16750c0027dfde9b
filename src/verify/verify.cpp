// verify_model(): run a model with every tensor kept, compare with a reference layer by layer
// (in the source layout, matched by the aliasing rules of match_reference_key), find the first
// divergent layer and diagnose it (src/verify/diagnose*.cpp).
#include "anvil/verify.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "anvil/error.h"
#include "anvil/names.h"
#include "anvil/npy.h"
#include "anvil/session.h"
#include "core/strings.h"
#include "passes/passes.h"
#include "verify/diagnose.h"

namespace anvil {
namespace fs = std::filesystem;

std::map<std::string, Tensor> read_reference(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::map<std::string, Tensor> r;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (!e.is_regular_file() || e.path().extension() != ".npy") continue;
      r[e.path().stem().string()] = read_npy(e.path().string());
    }
    if (ec) throw Error("cannot read the reference folder: " + ec.message(), path, {}, "reference");
    if (r.empty()) throw Error("the reference folder holds no .npy files", path, {}, "reference");
    return r;
  }
  if (!fs::is_regular_file(path, ec))
    throw Error("no such reference file or folder", path, {}, "reference");
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0) {
    // one tensor: keyed by its file name
    return {{fs::path(path).stem().string(), read_npy(path)}};
  }
  return read_npz(path);
}

namespace {

std::string fmt(double x) {
  char b[48];
  std::snprintf(b, sizeof b, "%.6g", x);
  return b;
}

std::string cos8(double x) {
  char b[48];
  std::snprintf(b, sizeof b, "%.8f", x);
  return b;
}

std::string first_values(const Tensor& t, int n) {
  std::string s = "[";
  for (int64_t i = 0; i < std::min<int64_t>(n, t.numel()); ++i)
    s += (i ? ", " : "") + fmt(t.get(i));
  if (t.numel() > n) s += ", ...";
  return s + "]";
}

bool has_nonfinite_where_finite(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) return false;
  for (int64_t i = 0; i < got.numel(); ++i)
    if (!std::isfinite(got.get(i)) && std::isfinite(want.get(i))) return true;
  return false;
}

// The reference tensor in the value's source shape: equal shapes, or the same elements with
// size-1 dims added or dropped (a batch of one stored without its batch axis).
Tensor fit_shape(const Tensor& ref, const Shape& want) {
  if (ref.shape() == want) return ref;
  if (ref.numel() != shape_numel(want)) return {};
  auto squeeze = [](const Shape& s) {
    Shape r;
    for (auto d : s)
      if (d != 1) r.push_back(d);
    return r;
  };
  if (squeeze(ref.shape()) == squeeze(want)) return ref.reshaped(want);
  return {};
}

// "'k1', 'k2', ... (N keys)" for at most `show` keys.
std::string keys_str(const std::vector<std::string>& keys, size_t show) {
  std::string s;
  for (size_t i = 0; i < keys.size() && i < show; ++i) s += (i ? ", '" : "'") + keys[i] + "'";
  if (keys.size() > show) s += ", ... (" + std::to_string(keys.size()) + " keys)";
  return s.empty() ? "none" : s;
}

// A comparison of no layer output proves nothing: an error naming the reference's keys and,
// for the first few, the model's nearest tensor names.
[[noreturn]] void throw_nothing_compared(const Graph& g, const std::vector<int>& layers,
                                         const std::vector<bool>& computed,
                                         const std::map<std::string, Tensor>& reference) {
  std::vector<std::string> keys, inputs_matched, names;
  for (const auto& [k, t] : reference) keys.push_back(k);
  for (int v : layers) {
    const Value& val = g.values[static_cast<size_t>(v)];
    if (computed[static_cast<size_t>(v)])
      names.push_back(source_key(val));
    else if (!val.is_constant() && !match_reference_key(g, v, reference).empty())
      inputs_matched.push_back(source_key(val));
  }
  std::string m =
      "the reference matches no layer output of the model, so nothing would be "
      "compared";
  if (!inputs_matched.empty()) m += " (only the input " + keys_str(inputs_matched, 3) + ")";
  m += "; reference keys: " + keys_str(keys, 8);
  std::string near;
  size_t shown = 0;
  for (const auto& k : keys) {
    if (shown == 3 || names.empty()) break;
    bool is_input =
        std::find(inputs_matched.begin(), inputs_matched.end(), k) != inputs_matched.end();
    if (is_input) continue;
    const std::string* best = &names.front();
    size_t bd = edit_distance_ci(k, *best);
    for (const auto& n : names)
      if (size_t d = edit_distance_ci(k, n); d < bd) bd = d, best = &n;
    near += (shown++ ? ", '" : "'") + k + "' -> '" + *best + "'";
  }
  if (!near.empty())
    m += "; nearest tensor names of the model: " + near;
  else if (!names.empty())
    m += "; the model's tensors: " + keys_str(names, 5);
  throw Error(m + " (names as in 'anvil summary' or 'anvil dump')", g.source_file, {}, "reference");
}

}  // namespace

std::string source_key(const Value& v) {
  if (v.prov.source_name.empty()) return v.name;
  return v.prov.output_index > 0 ? v.prov.source_name + ":" + std::to_string(v.prov.output_index)
                                 : v.prov.source_name;
}

std::vector<int> source_tensors(const Graph& g) {
  std::vector<int> r;
  std::vector<bool> taken(g.values.size(), false);
  std::map<std::string, int> last_of;  // key -> value index (the last one)
  bool any_prov = false;
  for (const auto& v : g.values) any_prov |= !v.prov.source_name.empty();
  for (size_t i = 0; i < g.values.size(); ++i)
    if (!g.values[i].prov.source_name.empty() || !any_prov)
      last_of[source_key(g.values[i])] = static_cast<int>(i);
  for (int v : g.inputs) {
    taken[static_cast<size_t>(v)] = true;
    r.push_back(v);
  }
  for (const auto& n : g.nodes)
    for (int out : n.outputs) {
      if (n.dead) continue;  // folded into a constant
      const Value& val = g.values[static_cast<size_t>(out)];
      if (any_prov && val.prov.source_name.empty()) continue;
      if (last_of[source_key(val)] != out || taken[static_cast<size_t>(out)]) continue;
      taken[static_cast<size_t>(out)] = true;
      r.push_back(out);
    }
  return r;
}

std::string match_reference_key(const Graph& g, int v,
                                const std::map<std::string, Tensor>& reference) {
  const Value& val = g.values[static_cast<size_t>(v)];
  std::vector<std::string> names;
  std::string key = source_key(val);
  names.push_back(key);
  if (!val.prov.source_name.empty() && val.prov.output_index == 0) names.push_back(key + ":0");
  names.push_back(val.name);
  const size_t n = names.size();
  for (size_t i = 0; i < n; ++i) names.push_back(sanitize_tensor_name(names[i]));
  for (const auto& nm : names)
    if (reference.count(nm)) return nm;
  return {};
}

VerifyReport verify_model(const Graph& graph, const std::map<std::string, Tensor>& reference,
                          const VerifyOptions& o) {
  if (o.precision != "fp32" && o.precision != "fp16" && o.precision != "bf16")
    throw Error("precision must be fp32, fp16 or bf16, not '" + o.precision + "'",
                graph.source_file, {}, "precision");
  VerifyReport r;
  r.backend = o.backend;
  r.precision = o.precision;
  r.rtol = o.rtol;
  r.atol = o.atol;
  r.keep_fp32 = o.keep_fp32;
  r.criterion = o.per_element ? "per-element" : "scale";

  SessionOptions so;
  so.backend = o.backend;
  so.threads = o.threads;
  so.keep_all = true;
  so.precision = parse_precision(o.precision);
  so.keep_fp32 = o.keep_fp32;
  Session session(graph, so);
  // The graph as the session sees it before compiling (toposorted, shapes inferred, constant
  // subgraphs folded), but keeping every folded value: a reference may hold tensors that Anvil
  // computes at compile time (TensorFlow graphs with a frozen input: everything is constant).
  // Canonical names are the session's, so tensors are fetched by name.
  Graph folded = graph;
  folded.toposort();
  passes::fold_constants(folded, {});
  const Graph& g = folded;

  // 1. Layers: graph inputs, then every node output carrying a source name (the last value
  //    of each source name and output index), in graph order.
  std::vector<bool> is_layer(g.values.size(), false);
  std::vector<int> layers;
  for (int v : g.inputs) {
    is_layer[static_cast<size_t>(v)] = true;
    layers.push_back(v);
  }
  // constants only when the reference has them (e.g. TensorFlow Const nodes)
  for (size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].is_constant() && !g.values[i].prov.source_name.empty() &&
        !match_reference_key(g, static_cast<int>(i), reference).empty()) {
      is_layer[i] = true;
      layers.push_back(static_cast<int>(i));
    }
  for (int v : source_tensors(g))
    if (!is_layer[static_cast<size_t>(v)]) {
      is_layer[static_cast<size_t>(v)] = true;
      layers.push_back(v);
    }

  // Nothing but inputs (or nothing at all) to compare: not a pass, an error.
  {
    // a node's output (folded into a constant or not) counts; inputs and weights do not
    std::vector<bool> computed(g.values.size(), false);
    for (const auto& n : g.nodes)
      for (int out : n.outputs)
        if (out >= 0) computed[static_cast<size_t>(out)] = true;
    bool any = false;
    for (int v : layers) {
      if (computed[static_cast<size_t>(v)] && !match_reference_key(g, v, reference).empty()) {
        any = true;
        break;
      }
    }
    if (!any) throw_nothing_compared(g, layers, computed, reference);
  }

  // 2. Inputs: given, or from the reference.
  std::map<std::string, Tensor> feed;
  std::vector<std::string> input_states;
  std::string input_message;
  std::vector<std::pair<int, Tensor>> differing_inputs;  // (value, reference tensor)
  for (int v : g.inputs) {
    const Value& val = g.values[static_cast<size_t>(v)];
    const std::string key = source_key(val);
    const std::string rk = match_reference_key(g, v, reference);
    const Tensor* given = nullptr;
    for (const auto& nm : {val.name, val.prov.source_name}) {
      auto it = o.inputs.find(nm);
      if (!nm.empty() && it != o.inputs.end()) {
        given = &it->second;
        break;
      }
    }
    if (!given && g.inputs.size() == 1 && o.inputs.size() == 1) given = &o.inputs.begin()->second;
    if (!given) {
      if (!o.inputs.empty())
        throw Error("input '" + key + "' is not given", graph.source_file, {}, "input");
      if (rk.empty())
        throw Error("input '" + key + "' is neither given nor in the reference (give --input)",
                    graph.source_file, {}, "input");
      feed[val.name] = reference.at(rk);
      input_states.push_back("ok");
      continue;
    }
    feed[val.name] = *given;
    if (rk.empty()) {
      input_states.push_back("absent");
      continue;
    }
    const Tensor& ref = reference.at(rk);
    Comparison c = compare_tensors(*given, ref, o.rtol, o.atol, o.per_element);
    if (c.ok()) {
      input_states.push_back("ok");
      continue;
    }
    input_states.push_back("differs");
    differing_inputs.emplace_back(v, ref);
    std::string m = "input '" + key + "' differs from the reference's ";
    if (!c.shape_match)
      m += "(shape " + shape_str(given->shape()) + ", reference " + shape_str(ref.shape()) + ")";
    else
      m += "(" + c.describe() + ")";
    m +=
        ": first values, ours " + first_values(*given, 8) + " vs reference " + first_values(ref, 8);
    input_message += (input_message.empty() ? "" : "\n") + m;
  }
  auto any_state = [&](const char* s) {
    return std::find(input_states.begin(), input_states.end(), s) != input_states.end();
  };
  r.input_check = any_state("differs") ? "differs" : any_state("absent") ? "absent" : "ok";
  r.input_message = input_message;

  // 3. Run, keeping every layer's tensor.
  std::vector<std::string> fetch;
  for (int v : layers)
    if (!g.values[static_cast<size_t>(v)].is_constant())
      fetch.push_back(g.values[static_cast<size_t>(v)].name);
  std::map<std::string, Tensor> got = session.run(feed, fetch);
  std::map<std::string, Tensor> got32;
  if (o.precision != "fp32") {
    SessionOptions s32 = so;
    s32.precision = Precision::fp32;
    s32.keep_fp32.clear();
    Session full(graph, s32);
    got32 = full.run(feed, fetch);
  }
  auto ours = [&](int v) -> Tensor {
    const Value& val = g.values[static_cast<size_t>(v)];
    if (val.is_constant()) return diag::to_source(val, val.constant);
    return got.at(val.name);
  };

  // 4. Compare.
  std::set<std::string> matched;
  std::map<int, size_t> result_of;  // value -> index in r.layers
  std::map<int, Tensor> ref_of;     // value -> reference tensor (source layout, fitted shape)
  for (int v : layers) {
    const Value& val = g.values[static_cast<size_t>(v)];
    LayerResult lr;
    lr.name = source_key(val);
    lr.op = val.producer >= 0 ? g.nodes[static_cast<size_t>(val.producer)].op
                              : (val.is_constant() ? "Constant" : "Input");
    for (int in : diag::layer_nodes(g, v, is_layer).inputs)
      lr.inputs.push_back(source_key(g.values[static_cast<size_t>(in)]));
    Tensor mine = ours(v);
    lr.shape = mine.shape();
    lr.reference_key = match_reference_key(g, v, reference);
    if (lr.reference_key.empty()) {
      lr.status = "unchecked";
    } else {
      matched.insert(lr.reference_key);
      const Tensor& raw = reference.at(lr.reference_key);
      Tensor ref = fit_shape(raw, mine.shape());
      if (!ref.defined()) {
        lr.status = "shape";
        lr.reference_shape = raw.shape();
      } else {
        ref_of[v] = ref;
        Comparison c = compare_tensors(mine, ref, o.rtol, o.atol, o.per_element);
        lr.scale = c.scale;
        lr.max_abs = c.max_abs;
        lr.max_rel = c.max_rel;
        lr.cosine = c.cosine;
        lr.mismatches = c.mismatches;
        lr.count = c.count;
        lr.first_mismatch = c.first_mismatch;
        lr.status = c.ok() ? "ok" : has_nonfinite_where_finite(mine, ref) ? "nan" : "mismatch";
      }
    }
    if (o.precision != "fp32" && !val.is_constant() && got32.count(val.name)) {
      const Tensor& full = got32.at(val.name);
      lr.precision_checked = true;
      double maxv = 0, maxd = 0;
      for (int64_t i = 0; i < full.numel() && i < mine.numel(); ++i) {
        const double a = mine.get(i), b = full.get(i);
        if (std::isfinite(b)) maxv = std::max(maxv, std::fabs(b));
        if (std::isfinite(a) && std::isfinite(b)) maxd = std::max(maxd, std::fabs(a - b));
      }
      lr.precision_rel = maxv > 0 ? maxd / maxv : maxd;
      lr.precision_overflow = has_nonfinite_where_finite(mine, full);
    }
    result_of[v] = r.layers.size();
    r.layers.push_back(std::move(lr));
  }
  for (const auto& [k, _] : reference)
    if (!matched.count(k)) r.unmatched_reference.push_back(k);

  int first = -1;
  for (int v : layers) {
    const auto& st = r.layers[result_of[v]].status;
    if (st == "mismatch" || st == "shape" || st == "nan") {
      first = v;
      break;
    }
  }
  r.status = first < 0 && r.input_check != "differs" ? "match" : "mismatch";
  if (first >= 0) r.first_divergent = r.layers[result_of[first]].name;

  // 5. Reduced precision: layers to keep in fp32 (the first of each chain to overflow or to
  //    lose most of its precision, > 10% of its range).
  if (o.precision != "fp32") {
    for (int v : layers) {
      const LayerResult& lr = r.layers[result_of[v]];
      if (!lr.precision_checked) continue;
      const bool bad = lr.precision_overflow || lr.precision_rel > 0.1;
      if (!bad) continue;
      bool inputs_bad = false;
      for (int in : diag::layer_nodes(g, v, is_layer).inputs) {
        const LayerResult& il = r.layers[result_of[in]];
        inputs_bad |= il.precision_overflow || il.precision_rel > 0.1;
      }
      if (!inputs_bad) r.suggest_keep_fp32.push_back(lr.name);
    }
  }

  // 6. Diagnosis.
  if (!o.diagnose) return r;
  for (auto& [v, ref] : differing_inputs) {
    const Value& val = g.values[static_cast<size_t>(v)];
    Tensor mine = feed.at(val.name);
    auto f = diag::diagnose_input(source_key(val), mine, ref, diag::channels_last_of(g, val),
                                  o.rtol, o.atol);
    if (!f.empty())
      r.diagnosis.push_back(f.front().diagnosis);
    else
      r.diagnosis.push_back(
          {"unknown", source_key(val),
           "the input differs from the reference's and no simple transformation (channel "
           "order, x255 or /255, mean, NHWC/NCHW) explains it"});
  }
  if (first < 0) return r;
  const LayerResult& fl = r.layers[result_of[first]];
  if (o.precision != "fp32") {
    bool overflow = fl.precision_overflow;
    bool fp32_ok = false;
    const Value& val = g.values[static_cast<size_t>(first)];
    if (got32.count(val.name) && ref_of.count(first))
      fp32_ok =
          compare_tensors(got32.at(val.name), ref_of.at(first), o.rtol, o.atol, o.per_element).ok();
    if (overflow || fp32_ok) {
      std::string names;
      for (const auto& s : r.suggest_keep_fp32) names += " " + s;
      std::string m = std::string("in ") + o.precision + " this layer " +
                      (overflow ? "overflows to inf/NaN"
                                : "differs by " + o.precision + " rounding (max relative error " +
                                      fmt(fl.precision_rel) + " against the fp32 run)") +
                      (fp32_ok ? " while the fp32 run matches the reference here" : "");
      if (!names.empty())
        m +=
            "; keep the layers that overflow or lose most of their precision in fp32: --keep-fp32" +
            names;
      else
        m += "; no layer overflows or loses most of its precision: compare with a tolerance fit "
             "for " +
             o.precision +
             " (e.g. --rtol 1e-2 --atol 1e-2), or keep sensitive layers in fp32 (--keep-fp32 NAME)";
      r.diagnosis.push_back({"precision", fl.name, m});
      return r;
    }
  }
  // Float rounding: the tensors point the same way and differ by ~1e-6 of their scale (values
  // near zero after long sums, compared per element or at a tight tolerance).
  if (fl.status == "mismatch" && fl.scale > 0 && fl.cosine >= 1 - 1e-6 &&
      fl.max_abs <= 1e-5 * fl.scale) {
    const double suggest = std::pow(10.0, std::ceil(std::log10(fl.max_abs * 1.0001)));
    r.diagnosis.push_back(
        {"float_rounding", fl.name,
         "float rounding, not an import mistake: cosine " + cos8(fl.cosine) + ", max error " +
             fmt(fl.max_abs) + " = " + fmt(fl.max_abs / fl.scale) +
             " of the tensor's scale (max |ref| " + fmt(fl.scale) + "), " +
             std::to_string(fl.mismatches) + " of " + std::to_string(fl.count) +
             " elements outside " +
             (o.per_element ? "the per-element tolerance" : "the tolerance") + "; compare " +
             (o.per_element ? "at the tensor's scale (the default, without --per-element) or "
                            : "") +
             "with --atol " + fmt(suggest)});
    return r;
  }
  diag::Probe p;
  p.graph = &g;
  p.layer = diag::layer_nodes(g, first, is_layer);
  p.rtol = o.rtol;
  p.atol = o.atol;
  p.want = fit_shape(reference.at(fl.reference_key), reference.at(fl.reference_key).shape());
  int graph_input = -1;
  bool uses_reference_inputs = true;
  for (int in : p.layer.inputs) {
    const Value& iv = g.values[static_cast<size_t>(in)];
    if (iv.producer < 0 && !iv.is_constant()) graph_input = in;
    Tensor t;
    auto rit = ref_of.find(in);
    if (rit != ref_of.end() && r.layers[result_of[in]].status != "shape")
      t = rit->second;
    else {
      t = ours(in);
      uses_reference_inputs = false;
    }
    p.inputs[in] = diag::to_canonical(iv, t.to(iv.dtype));
  }
  if (graph_input >= 0 && r.input_check != "absent")
    graph_input = -1;  // input hypotheses done above
  std::vector<diag::Finding> found;
  if (!p.layer.nodes.empty() && p.init())
    found = diag::diagnose_layer(
        p, graph_input,
        graph_input >= 0 && diag::channels_last_of(g, g.values[static_cast<size_t>(graph_input)]));
  if (!found.empty()) {
    r.diagnosis.push_back(found.front().diagnosis);
  } else if (r.input_check != "differs") {
    std::string m;
    if (p.layer.nodes.empty())
      m = "no classic import mistake explains this tensor";
    else if (std::isfinite(p.before) && p.before < 1e-5 && uses_reference_inputs)
      m = "float rounding: re-run alone on the reference's own inputs this layer matches (relative "
          "error " +
          fmt(p.before) +
          "): small differences upstream, within tolerance there, are amplified here; loosen "
          "--rtol/--atol "
          "or compare the inputs' precision";
    else
      m = "none of the classic import mistakes (flipped or transposed weights, padding, pooling "
          "rounding, "
          "flatten order, batch-norm epsilon" +
          std::string(graph_input >= 0 ? ", input channel order/scale/mean/layout" : "") +
          ") explains it; re-run alone on " +
          (uses_reference_inputs ? "the reference's inputs" : "our inputs") +
          " the layer's relative error is " + fmt(p.before);
    r.diagnosis.push_back(
        {m.rfind("float rounding", 0) == 0 ? "float_rounding" : "unknown", fl.name, m});
  }
  return r;
}

}  // namespace anvil
