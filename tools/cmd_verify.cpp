// anvil verify MODEL [MORE_FILES...] --reference REF [--input NAME=FILE]... [--backend B]
//              [--precision fp32|fp16|bf16] [--keep-fp32 NAME...] [--rtol R] [--atol A]
//              [--report FILE.html|FILE.json]
// Runs the model with every tensor kept and compares each tensor of REF (an .npz or a folder
// of .npy keyed by source-framework names) in the source layout; prints the table in graph
// order, the first divergent layer with its inputs' status, and the diagnosis.
// Exit 0 when everything is within tolerance, 1 when not, 2 on bad input.
#include <cmath>
#include <cstdio>
#include <fstream>

#include "anvil/error.h"
#include "anvil/import.h"
#include "anvil/npy.h"
#include "anvil/verify.h"
#include "cli_util.h"
#include "commands.h"

namespace anvil::cli {
namespace {

std::string num(double x) {
  if (std::isnan(x)) return "nan";
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", x);
  return b;
}

std::string ends(const std::string& s) {
  auto dot = s.rfind('.');
  return dot == std::string::npos ? "" : s.substr(dot);
}

// The graph with inputs from the reference: imported again at the reference inputs' shapes
// when they differ (a batch of 2, say).
Graph import_for_reference(const std::vector<std::string>& files, const InputArgs& in,
                           const std::map<std::string, Tensor>& ref) {
  ImportOptions io;
  for (const auto& spec : in.shapes) {
    auto [name, shape] = parse_shape_arg(spec);
    if (name.empty()) {
      Graph g0 = import_model(files, {});
      if (g0.inputs.size() != 1)
        throw Error("--shape without a NAME needs a single-input model", files.front(), {},
                    "shape");
      name = source_key(g0.values[static_cast<size_t>(g0.inputs[0])]);
    }
    io.input_shapes[name] = shape;
  }
  Graph g = import_model(files, io);
  bool again = false;
  for (int v : g.inputs) {
    std::string k = match_reference_key(g, v, ref);
    if (k.empty()) continue;
    const Value& val = g.values[static_cast<size_t>(v)];
    Shape want = source_shape(val);
    const std::string name = val.prov.source_name.empty() ? val.name : val.prov.source_name;
    if (ref.at(k).shape() != want && !io.input_shapes.count(name) &&
        ref.at(k).rank() == static_cast<int>(want.size())) {
      io.input_shapes[name] = ref.at(k).shape();
      again = true;
    }
  }
  if (again) {
    try {
      g = import_model(files, io);
    } catch (const Error& e) {
      throw Error("the model cannot be imported at the reference inputs' shapes: " + e.message(),
                  e.file(), e.node(), "reference");
    }
  }
  return g;
}

void print_report(const VerifyReport& r, bool show_all) {
  std::printf("verify %s against %s (backend %s, %s, rtol %s, atol %s)\n", r.model.c_str(),
              r.reference.c_str(), r.backend.c_str(), r.precision.c_str(), num(r.rtol).c_str(),
              num(r.atol).c_str());
  if (r.criterion == "per-element")
    std::printf(
        "criterion: per element, |ours - ref| <= atol + rtol * |ref| (numpy.allclose; "
        "--per-element)\n");
  else
    std::printf(
        "criterion: |ours - ref| <= atol + rtol * max|ref| of each tensor (its scale; "
        "--per-element "
        "for numpy.allclose per element)\n");
  if (r.input_check == "differs")
    std::printf("input: DIFFERS from the reference's\n  %s\n", r.input_message.c_str());
  else if (r.input_check == "absent")
    std::printf("input: absent from the reference (not checked)\n");
  else
    std::printf("input: ok\n");
  size_t w = 4;
  for (const auto& l : r.layers) w = std::max(w, l.name.size());
  w = std::min<size_t>(w, 48);
  const bool prec = r.precision != "fp32";
  std::printf("%-*s  %-18s  %-18s  %-9s  %-9s  %-11s  %s%s\n", static_cast<int>(w), "name", "op",
              "shape", "max_abs", "max_rel", "cosine", "status", prec ? "  vs_fp32" : "");
  int ok = 0, checked = 0, hidden = 0;
  for (const auto& l : r.layers) {
    if (l.status != "unchecked") ++checked;
    if (l.status == "ok") ++ok;
    if (l.status == "unchecked" && !show_all) {
      ++hidden;
      continue;
    }
    std::string shape = shape_str(l.shape);
    bool has = l.status != "unchecked" && l.status != "shape";
    char cos[32];
    std::snprintf(cos, sizeof cos, "%.8f", l.cosine);
    std::string st = l.status;
    if (l.status == "shape") st += " (reference " + shape_str(l.reference_shape) + ")";
    if (l.name == r.first_divergent) st += "  <- first divergence";
    std::string pv;
    if (l.precision_checked)
      pv = "  " + (l.precision_overflow ? std::string("inf/nan") : num(l.precision_rel));
    std::printf("%-*s  %-18s  %-18s  %-9s  %-9s  %-11s  %s%s\n", static_cast<int>(w),
                l.name.c_str(), l.op.c_str(), shape.c_str(), has ? num(l.max_abs).c_str() : "-",
                has ? num(l.max_rel).c_str() : "-", has ? cos : "-", st.c_str(), pv.c_str());
  }
  if (hidden)
    std::printf("(%d layer%s without a reference tensor not shown; --all lists them)\n", hidden,
                hidden == 1 ? "" : "s");
  if (!r.first_divergent.empty()) {
    for (const auto& l : r.layers) {
      if (l.name != r.first_divergent) continue;
      std::printf("\nfirst divergent layer: %s (%s)", l.name.c_str(), l.op.c_str());
      if (l.status == "shape")
        std::printf(": shape %s, reference %s\n", shape_str(l.shape).c_str(),
                    shape_str(l.reference_shape).c_str());
      else
        std::printf(
            ": max_abs %s, max_rel %s, %lld of %lld outside tolerance (first at flat index %lld)\n",
            num(l.max_abs).c_str(), num(l.max_rel).c_str(), static_cast<long long>(l.mismatches),
            static_cast<long long>(l.count), static_cast<long long>(l.first_mismatch));
      for (const auto& in : l.inputs) {
        std::string st = "not in the model's layers";
        for (const auto& x : r.layers)
          if (x.name == in) st = x.status;
        std::printf("  input %s: %s\n", in.c_str(), st.c_str());
      }
    }
  }
  if (!r.diagnosis.empty()) {
    std::printf("\ndiagnosis:\n");
    for (const auto& d : r.diagnosis)
      std::printf("  %s at %s: %s\n", d.cause.c_str(), d.layer.c_str(), d.message.c_str());
  }
  if (!r.suggest_keep_fp32.empty()) {
    std::printf("\nlayers that overflow or lose most of their precision in %s:",
                r.precision.c_str());
    for (const auto& s : r.suggest_keep_fp32) std::printf(" %s", s.c_str());
    std::printf("\n  try: --keep-fp32");
    for (const auto& s : r.suggest_keep_fp32) std::printf(" %s", s.c_str());
    std::printf("\n");
  }
  if (!r.unmatched_reference.empty()) {
    std::printf("\nreference tensors matching no tensor of the model (%zu):",
                r.unmatched_reference.size());
    size_t shown = 0;
    for (const auto& k : r.unmatched_reference) {
      if (++shown > 10) {
        std::printf(" ...");
        break;
      }
      std::printf(" %s", k.c_str());
    }
    std::printf("\n");
  }
  std::printf("\nresult: %s (%d of %d compared tensors within tolerance)\n", r.status.c_str(), ok,
              checked);
}

int verify_main(int argc, char** argv) {
  CLI::App app{
      "Compare every tensor of a model with a reference (.npz or folder of .npy keyed by the "
      "source "
      "framework's tensor names), find the first divergent layer and diagnose it.\n"
      "Names match exactly, with ':0' added or dropped (TensorFlow), or as sanitized file names "
      "(anvil run/dump). Inputs come from the reference unless --input is given.\n"
      "Exit 0: everything within tolerance; 1: a mismatch; 2: bad input.",
      "anvil verify"};
  std::vector<std::string> files;
  std::string reference, report, backend = "reference", precision = "fp32";
  std::vector<std::string> keep_fp32;
  InputArgs in;
  double rtol = 1e-4, atol = 1e-5;
  int threads = 1;
  bool no_diagnose = false, per_element = false, show_all = false;
  app.add_option("model", files, "the model file, then any further files it needs")->required();
  app.add_option("--reference,-r", reference, "the reference: an .npz or a folder of .npy files")
      ->required();
  in.add_to(app);
  app.add_option("--backend", backend, backend_help(backend));
  app.add_option("--threads", threads, "threads (default: 1)")->check(whole_number(1, 1024));
  app.add_option("--precision", precision, "fp32, fp16 or bf16 (default: fp32)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  app.add_option("--keep-fp32", keep_fp32, "layers kept in fp32 under --precision fp16/bf16")
      ->allow_extra_args(true);
  app.add_option("--rtol", rtol,
                 "relative tolerance (default: 1e-4), of each tensor's scale max|ref| (or of |ref| "
                 "per element with --per-element)")
      ->check(non_negative_number("1e-4"));
  app.add_option("--atol", atol, "absolute tolerance (default: 1e-5)")
      ->check(non_negative_number("1e-5"));
  app.add_flag("--per-element", per_element,
               "strict criterion: numpy.allclose per element, |ours - ref| <= atol + rtol * |ref| "
               "(default: atol + rtol * max|ref| of the tensor, robust to float rounding of values "
               "near zero)");
  app.add_flag("--all", show_all, "list every layer, also those the reference does not have");
  app.add_option("--report", report,
                 "also write the report: FILE.json (stable fields) or FILE.html");
  app.add_flag("--no-diagnose", no_diagnose, "skip the diagnosis of the first divergence");
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  if (!report.empty() && ends(report) != ".json" && ends(report) != ".html")
    throw Error("--report must name a .json or .html file", report, {}, "report");
  if (!keep_fp32.empty() && precision == "fp32")
    throw Error("--keep-fp32 needs --precision fp16 or bf16", {}, {}, "keep-fp32");
  check_backend(backend);

  const auto ref = read_reference(reference);
  VerifyOptions o;
  o.backend = backend;
  o.threads = threads;
  o.precision = precision;
  o.keep_fp32 = keep_fp32;
  o.rtol = rtol;
  o.atol = atol;
  o.per_element = per_element;
  o.diagnose = !no_diagnose;
  Graph g;
  if (!in.specs.empty()) {
    PreparedModel pm = prepare_model(files, in, /*random_fill=*/false);
    for (const auto& note : pm.notes) std::printf("%s\n", note.c_str());
    g = std::move(pm.graph);
    o.inputs = pm.feed;
  } else {
    g = import_for_reference(files, in, ref);
  }
  VerifyReport r = verify_model(g, ref, o);
  r.model = files.front();
  r.reference = reference;
  print_report(r, show_all);
  if (!report.empty()) {
    std::ofstream f(report, std::ios::binary);
    if (!f) throw Error("cannot write the report", report, {}, "report");
    f << (ends(report) == ".json" ? report_json(r) : report_html(r));
    if (!f) throw Error("cannot write the report", report, {}, "report");
    std::printf("report written to %s\n", report.c_str());
  }
  std::fflush(stdout);
  return r.status == "match" ? 0 : 1;
}

const CommandRegistrar reg{Command{
    "verify", "compare every layer with a reference, find and diagnose the first divergence",
    verify_main}};

}  // namespace
}  // namespace anvil::cli
