// report_html(): the verification report as one self-contained HTML page (inline CSS, SVG and
// JavaScript; nothing is fetched). Sections: header (model, reference, backend, precision,
// tolerance, status, input check), diagnosis, per-layer error chart (log scale), the graph as a
// layered DAG with nodes coloured by error, and the per-layer table. The chart and the graph are
// drawn here as SVG, so the page reads without JavaScript; the script only adds hover details,
// selection (click) and scrolling to the first divergence. Every string from the model or the
// reference (untrusted) is HTML-escaped; the data for the script is JSON with `<`, `>`, `&`,
// U+2028 and U+2029 escaped so it cannot leave its <script> element.
// The escaping helpers (html::) and the page's static CSS and script are in
// report_html_assets.cpp.
#include "verify/report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "anvil/verify.h"

namespace anvil {
namespace {

using html::escape;
using html::kErrorHook;
using html::kScript;
using html::kStyle;
using html::truncate_chars;

bool checked(const LayerResult& l) { return l.status != "unchecked"; }

// A number for the page: 4 significant digits, "NaN"/"inf" spelled out.
std::string num(double v, int digits = 4) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}g}", v, digits);
}

std::string json_num(double v) {
  if (std::isnan(v)) return "\"NaN\"";
  if (std::isinf(v)) return v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  return fmt::format("{}", v);
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  if (s.size() == 1) out += ",";
  return out + ")";
}

// ---- colours ----

// Fill and stroke of a node / table cell by the layer's error: green within tolerance
// (yellower as the error approaches the tolerance), orange to red by the fraction of elements
// outside it, red for NaN/Inf and shape mismatches, grey when there is no reference tensor.
struct Colour {
  std::string fill, stroke;
};

Colour layer_colour(const LayerResult& l, double rtol, double atol) {
  if (l.status == "unchecked") return {"#e5e7eb", "#9ca3af"};
  double hue;
  if (l.status == "ok") {
    double q = -4;  // log10 of the error relative to the tolerance, in [-4, 0]
    if (atol > 0)
      q = std::log10(std::max(l.max_abs, 1e-300) / atol);
    else if (rtol > 0)
      q = std::log10(std::max(l.max_rel, 1e-300) / rtol);
    if (!std::isfinite(q)) q = -4;
    q = std::clamp(q, -4.0, 0.0);
    hue = 75 - (q / 4) * 55;  // 130 (green, 4 decades below) .. 75 (yellow-green, at it)
  } else if (l.status == "mismatch") {
    const double frac = l.count > 0 ? static_cast<double>(l.mismatches) / l.count : 1;
    hue = 38 * (1 - std::sqrt(std::clamp(frac, 0.0, 1.0)));  // 38 (orange) .. 0 (red)
  } else {                                                   // nan, shape
    return {"hsl(0,85%,62%)", "hsl(0,80%,30%)"};
  }
  return {fmt::format("hsl({:.0f},70%,78%)", hue), fmt::format("hsl({:.0f},60%,32%)", hue)};
}

// ---- graph layout: layers by longest path, order within a layer by predecessors' positions --

constexpr double kNodeW = 172, kNodeH = 34, kGapX = 20, kLevelH = 62, kMargin = 24;

struct GraphLayout {
  std::vector<std::vector<int>> preds;  // resolved producers (earlier layers) per layer
  std::vector<int> level;
  std::vector<double> x, y;            // top-left of each node
  std::vector<std::vector<int>> rows;  // the nodes of each level
  double width = 0, height = 0;

  // Whether no node of the levels strictly between `from` and `to` overlaps the column of
  // width kNodeW at x (a vertical edge there crosses no node).
  bool column_free(double x, int from, int to) const;
};

GraphLayout layout_graph(const std::vector<LayerResult>& layers) {
  const int n = static_cast<int>(layers.size());
  GraphLayout g;
  g.preds.resize(static_cast<size_t>(n));
  g.level.assign(static_cast<size_t>(n), 0);
  g.x.assign(static_cast<size_t>(n), 0);
  g.y.assign(static_cast<size_t>(n), 0);
  // An input names the latest earlier layer of that name (graph order is topological); names
  // not produced earlier (absent from the report, or later: not a DAG edge) are not drawn.
  std::map<std::string, int> seen;
  int levels = 0;
  for (int i = 0; i < n; ++i) {
    auto& p = g.preds[static_cast<size_t>(i)];
    for (const auto& in : layers[static_cast<size_t>(i)].inputs) {
      auto it = seen.find(in);
      if (it != seen.end() && std::find(p.begin(), p.end(), it->second) == p.end())
        p.push_back(it->second);
    }
    int lv = 0;
    for (int j : p) lv = std::max(lv, g.level[static_cast<size_t>(j)] + 1);
    g.level[static_cast<size_t>(i)] = lv;
    levels = std::max(levels, lv + 1);
    seen[layers[static_cast<size_t>(i)].name] = i;
  }
  auto& rows = g.rows;
  rows.assign(static_cast<size_t>(levels), {});
  for (int i = 0; i < n; ++i)
    rows[static_cast<size_t>(g.level[static_cast<size_t>(i)])].push_back(i);
  const double step = kNodeW + kGapX;
  for (auto& row : rows) {
    // Desired x: mean of the predecessors' x (sources: their order in the row).
    std::vector<std::pair<double, int>> want;
    for (size_t k = 0; k < row.size(); ++k) {
      const auto& p = g.preds[static_cast<size_t>(row[k])];
      double d = static_cast<double>(k) * step;
      if (!p.empty()) {
        d = 0;
        for (int j : p) d += g.x[static_cast<size_t>(j)];
        d /= static_cast<double>(p.size());
      }
      want.push_back({d, row[k]});
    }
    std::stable_sort(want.begin(), want.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    // Pack left to right without overlap, then shift the row back by its mean displacement.
    std::vector<double> xs(want.size());
    double shift = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      xs[k] = k == 0 ? want[k].first : std::max(want[k].first, xs[k - 1] + step);
      shift += xs[k] - want[k].first;
    }
    shift /= static_cast<double>(std::max<size_t>(want.size(), 1));
    for (size_t k = 0; k < want.size(); ++k)
      g.x[static_cast<size_t>(want[k].second)] = xs[k] - shift;
  }
  double minx = 0, maxx = 0;
  for (int i = 0; i < n; ++i) {
    minx = i == 0 ? g.x[0] : std::min(minx, g.x[static_cast<size_t>(i)]);
    maxx = i == 0 ? g.x[0] : std::max(maxx, g.x[static_cast<size_t>(i)]);
  }
  for (int i = 0; i < n; ++i) {
    g.x[static_cast<size_t>(i)] += kMargin - minx;
    g.y[static_cast<size_t>(i)] = kMargin + g.level[static_cast<size_t>(i)] * kLevelH;
  }
  g.width = (maxx - minx) + kNodeW + 2 * kMargin + 90;  // room for edges bowing to the right
  g.height = levels * kLevelH + 2 * kMargin - (kLevelH - kNodeH);
  return g;
}

bool GraphLayout::column_free(double cx, int from, int to) const {
  for (int l = from + 1; l < to; ++l)
    for (int i : rows[static_cast<size_t>(l)])
      if (std::fabs(x[static_cast<size_t>(i)] - cx) < kNodeW + 4) return false;
  return true;
}

std::string graph_svg(const VerifyReport& r, int first, const GraphLayout& g) {
  const auto& L = r.layers;
  std::string s = fmt::format(
      "<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\">"
      "<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" markerWidth=\"8\" "
      "markerHeight=\"8\" markerUnits=\"userSpaceOnUse\" orient=\"auto-start-reverse\"><path "
      "d=\"M0,0 L8,4 L0,8 z\" "
      "fill=\"#6b7280\"/></marker></defs><g class=\"edges\">",
      std::max(g.width, 200.0), std::max(g.height, 60.0));
  for (size_t t = 0; t < L.size(); ++t) {
    for (int f : g.preds[t]) {
      const auto fi = static_cast<size_t>(f);
      const int span = g.level[t] - g.level[fi];
      std::string d;
      if (span <= 1) {  // adjacent levels: an S-curve from the bottom to the top
        const double x1 = g.x[fi] + kNodeW / 2, y1 = g.y[fi] + kNodeH;
        const double x2 = g.x[t] + kNodeW / 2, y2 = g.y[t];
        const double my = (y1 + y2) / 2;
        d = fmt::format("M{:.1f},{:.1f} C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}", x1, y1, x1, my,
                        x2, my, x2, y2 - 1);
      } else if (g.column_free(g.x[fi], g.level[fi], g.level[t])) {
        // skips levels, nothing below the source: straight down, then into the target
        const double x1 = g.x[fi] + kNodeW / 2, y1 = g.y[fi] + kNodeH;
        const double x2 = g.x[t] + kNodeW / 2, y2 = g.y[t];
        const double yb = y2 - (kLevelH - kNodeH), my = (yb + y2) / 2;
        d = fmt::format("M{:.1f},{:.1f} L{:.1f},{:.1f} C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}",
                        x1, y1, x1, yb, x1, my, x2, my, x2, y2 - 1);
      } else {  // skips levels: bow out to the right of the nodes in between
        const double x1 = g.x[fi] + kNodeW, y1 = g.y[fi] + kNodeH / 2;
        const double x2 = g.x[t] + kNodeW, y2 = g.y[t] + kNodeH / 2;
        const double bx = std::max(x1, x2) + 18 + 5 * std::min(span, 12);
        d = fmt::format("M{:.1f},{:.1f} C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}", x1, y1, bx, y1,
                        bx, y2, x2 + 1, y2);
      }
      s += fmt::format("<path class=\"e\" data-f=\"{}\" data-t=\"{}\" d=\"{}\"/>", f, t, d);
    }
  }
  s += "</g><g class=\"nodes\">";
  for (size_t i = 0; i < L.size(); ++i) {
    const auto& l = L[i];
    const Colour c = layer_colour(l, r.rtol, r.atol);
    const bool is_first = static_cast<int>(i) == first;
    s += fmt::format("<g class=\"n{}\" data-i=\"{}\" transform=\"translate({:.1f},{:.1f})\">",
                     is_first ? " first" : "", i, g.x[i], g.y[i]);
    if (is_first)
      s += fmt::format(
          "<rect class=\"halo\" x=\"-5\" y=\"-5\" width=\"{:.0f}\" height=\"{:.0f}\" "
          "rx=\"9\"/>",
          kNodeW + 10, kNodeH + 10);
    s += fmt::format(
        "<rect width=\"{:.0f}\" height=\"{:.0f}\" rx=\"5\" fill=\"{}\" stroke=\"{}\"{}/>", kNodeW,
        kNodeH, c.fill, c.stroke, l.status == "shape" ? " stroke-dasharray=\"4 2\"" : "");
    s += "<text class=\"nm\" x=\"6\" y=\"14\">" + escape(truncate_chars(l.name, 24)) + "</text>";
    std::string sub = l.op + " \u00b7 " + l.status;
    if (l.status == "mismatch" || l.status == "ok") sub += " \u00b7 " + num(l.max_abs, 2);
    s += "<text class=\"op\" x=\"6\" y=\"28\">" + escape(truncate_chars(sub, 30)) + "</text></g>";
  }
  return s + "</g></svg>";
}

// ---- error chart ----

constexpr double kChartW = 1240, kChartH = 318, kPlotX0 = 66, kPlotX1 = 1150, kPlotY0 = 58,
                 kPlotY1 = 262;

std::string chart_svg(const VerifyReport& r, int first) {
  const auto& L = r.layers;
  const size_t n = L.size();
  std::string s = fmt::format(
      "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\">",
      kChartW, kChartH);
  if (n == 0) return s + "<text x=\"20\" y=\"40\">No layers.</text></svg>";

  auto plotted = [](const LayerResult& l) { return checked(l) && l.status != "shape"; };
  double vmin = INFINITY, vmax = 0;
  auto see = [&](double v) {
    if (v > 0 && std::isfinite(v)) vmin = std::min(vmin, v), vmax = std::max(vmax, v);
  };
  bool any_precision = false;
  for (const auto& l : L) {
    if (plotted(l)) see(l.max_abs), see(l.max_rel);
    if (l.precision_checked) see(l.precision_rel), any_precision = true;
  }
  see(r.atol);
  see(r.rtol);
  int lo = -8, hi = 0;
  if (vmax > 0) {
    lo = static_cast<int>(std::floor(std::log10(vmin)));
    hi = static_cast<int>(std::ceil(std::log10(vmax)));
    lo -= 1;  // a decade below the smallest value, so that 0 (bottom line) stands apart
    if (hi <= lo) hi = lo + 1;
    lo = std::max(lo, hi - 18);
  }
  const double step = (kPlotX1 - kPlotX0) / static_cast<double>(n);
  auto X = [&](size_t i) { return kPlotX0 + (static_cast<double>(i) + 0.5) * step; };
  auto Y = [&](double v) {  // zero and tiny at the bottom; NaN/Inf above the plot
    if (!std::isfinite(v)) return kPlotY0 - 12;
    if (v <= 0) return kPlotY1;
    const double t = (std::log10(v) - lo) / (hi - lo);
    return kPlotY1 - std::clamp(t, 0.0, 1.0) * (kPlotY1 - kPlotY0);
  };

  // Grid and axes.
  s += "<g class=\"grid\">";
  const int dstep = std::max(1, (hi - lo + 7) / 8);
  for (int e = lo; e <= hi; e += dstep) {
    const double y = Y(std::pow(10.0, e));
    s += fmt::format("<line x1=\"{:.0f}\" y1=\"{:.1f}\" x2=\"{:.0f}\" y2=\"{:.1f}\"/>", kPlotX0, y,
                     kPlotX1, y);
    s += fmt::format("<text class=\"yl\" x=\"{:.0f}\" y=\"{:.1f}\">{}1e{}</text>", kPlotX0 - 6,
                     y + 4, e == lo ? "0, \u2264" : "", e);
  }
  // x ticks every 1, 2, 5, 10, 20, 50, ... layers: the smallest step giving at most 12.
  size_t xt = 0;
  for (size_t p = 1; !xt; p *= 10)
    for (size_t m : {1, 2, 5})
      if (!xt && n / (m * p) <= 12) xt = m * p;
  for (size_t i = 0; i < n; i += xt)
    s += fmt::format("<text class=\"xl\" x=\"{:.1f}\" y=\"{:.0f}\">{}</text>", X(i), kPlotY1 + 30,
                     i);
  s += fmt::format(
      "<rect class=\"frame\" x=\"{:.0f}\" y=\"{:.0f}\" width=\"{:.0f}\" "
      "height=\"{:.0f}\"/>",
      kPlotX0, kPlotY0, kPlotX1 - kPlotX0, kPlotY1 - kPlotY0);
  s += fmt::format("<text class=\"axis\" x=\"{:.0f}\" y=\"{:.0f}\">layer (graph order)</text>",
                   (kPlotX0 + kPlotX1) / 2, kChartH - 8);
  s += fmt::format(
      "<text class=\"axis\" transform=\"translate(16,{:.0f}) rotate(-90)\">error "
      "(log scale)</text>",
      (kPlotY0 + kPlotY1) / 2);
  s += fmt::format("<text class=\"yl\" x=\"{:.0f}\" y=\"{:.0f}\">NaN/inf</text>", kPlotX0 - 6,
                   kPlotY0 - 8);
  s += "</g>";

  // Tolerance lines.
  auto tol_line = [&](double v, const char* cls, const char* label) {
    if (!(v > 0) || !std::isfinite(v)) return;
    const double y = Y(v);
    s += fmt::format(
        "<line class=\"tol {}\" x1=\"{:.0f}\" y1=\"{:.1f}\" x2=\"{:.0f}\" "
        "y2=\"{:.1f}\"/><text class=\"toll {}\" x=\"{:.0f}\" y=\"{:.1f}\">{} {}</text>",
        cls, kPlotX0, y, kPlotX1, y, cls, kPlotX1 + 4, y + 4, label, num(v, 3));
  };
  tol_line(r.atol, "abs", "atol");
  tol_line(r.rtol, "rel", "rtol");

  // Mismatch strip under the plot: one red tick per layer outside tolerance.
  s += "<g class=\"strip\">";
  for (size_t i = 0; i < n; ++i)
    if (checked(L[i]) && L[i].status != "ok")
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.0f}\" width=\"{:.1f}\" height=\"7\"/>",
                       X(i) - std::clamp(step * 0.4, 0.5, 5.0), kPlotY1 + 4,
                       std::clamp(step * 0.8, 1.0, 10.0));
  s += "</g>";

  // First divergence: a vertical line with its name.
  if (first >= 0) {
    const double x = X(static_cast<size_t>(first));
    s += fmt::format(
        "<line class=\"firstl\" x1=\"{:.1f}\" y1=\"{:.0f}\" x2=\"{:.1f}\" "
        "y2=\"{:.0f}\"/>",
        x, kPlotY0 - 18, x, kPlotY1);
    const bool right = x > (kPlotX0 + kPlotX1) / 2;
    s += fmt::format(
        "<text class=\"firstt\" x=\"{:.1f}\" y=\"{:.0f}\" text-anchor=\"{}\">first "
        "divergence: {}</text>",
        right ? x - 6 : x + 6, kPlotY0 - 22, right ? "end" : "start",
        escape(truncate_chars(L[static_cast<size_t>(first)].name, 48)));
  }

  // The two series. Sparse (at least 4 px per layer): polylines broken where a layer has no
  // plotted value, with a dot per layer. Dense: dots only (a line would zigzag into a band).
  const bool lines = step >= 4;
  auto series = [&](double LayerResult::*field, const char* cls) {
    std::string d;
    bool open = false;
    for (size_t i = 0; i < n; ++i) {
      const double v = L[i].*field;
      if (!plotted(L[i]) || !std::isfinite(v)) {
        open = false;
        continue;
      }
      if (lines)
        d += fmt::format("{}{:.1f},{:.1f} ", open ? "L" : "M", X(i), Y(v));
      else  // a zero-length segment with round caps is a dot
        d += fmt::format("M{:.1f},{:.1f}h0", X(i), Y(v));
      open = true;
    }
    s += fmt::format("<path class=\"{} {}\" d=\"{}\"/>", lines ? "ser" : "ser dots", cls, d);
    for (size_t i = 0; i < n; ++i) {
      const double v = L[i].*field;
      if (!plotted(L[i])) continue;
      if (!std::isfinite(v))
        s +=
            fmt::format("<path class=\"inf\" d=\"M{:.1f},{:.1f} l-4,-7 l8,0 z\"/>", X(i), Y(v) + 3);
      else if ((lines && step >= 8) || static_cast<int>(i) == first)
        s += fmt::format("<circle class=\"pt {}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\"/>", cls,
                         X(i), Y(v), static_cast<int>(i) == first ? 4.5 : 2.5);
    }
  };
  series(&LayerResult::max_abs, "abs");
  series(&LayerResult::max_rel, "rel");
  if (any_precision) {  // reduced precision against the fp32 run; overflow above the plot
    std::string d;
    bool open = false;
    for (size_t i = 0; i < n; ++i) {
      const auto& l = L[i];
      if (!l.precision_checked) {
        open = false;
        continue;
      }
      const double v = l.precision_overflow ? INFINITY : l.precision_rel;
      if (!std::isfinite(v)) {
        s += fmt::format("<path class=\"inf prec\" d=\"M{:.1f},{:.1f} l-4,-7 l8,0 z\"/>", X(i),
                         Y(v) + 3);
        open = false;
        continue;
      }
      d += fmt::format("{}{:.1f},{:.1f} ", open ? "L" : "M", X(i), Y(v));
      open = true;
    }
    s += fmt::format("<path class=\"ser prec\" d=\"{}\"/>", d);
    s += fmt::format(
        "<g class=\"legend\" transform=\"translate({:.0f},12)\"><line class=\"ser "
        "prec\" x1=\"0\" y1=\"0\" x2=\"22\" y2=\"0\"/><text x=\"28\" y=\"4\">{} "
        "against the fp32 run (max |x\u2212x32| / max |x32|)</text></g>",
        kPlotX0 + 660, escape(r.precision));
  }

  // Legend.
  s += fmt::format(
      "<g class=\"legend\" transform=\"translate({:.0f},12)\">"
      "<line class=\"ser abs\" x1=\"0\" y1=\"0\" x2=\"22\" y2=\"0\"/><text x=\"28\" y=\"4\">max "
      "abs error</text>"
      "<line class=\"ser rel\" x1=\"130\" y1=\"0\" x2=\"152\" y2=\"0\"/><text x=\"158\" "
      "y=\"4\">max rel error</text>"
      "<line class=\"tol abs\" x1=\"260\" y1=\"0\" x2=\"282\" y2=\"0\"/><text x=\"288\" "
      "y=\"4\">atol</text>"
      "<line class=\"tol rel\" x1=\"326\" y1=\"0\" x2=\"348\" y2=\"0\"/><text x=\"354\" "
      "y=\"4\">rtol</text>"
      "<rect class=\"strip\" x=\"392\" y=\"-4\" width=\"4\" height=\"8\"/><text x=\"402\" "
      "y=\"4\">outside tolerance (strip under the plot)</text></g>",
      kPlotX0);

  // Hover target and cursor (used by the script).
  s += fmt::format(
      "<line id=\"cursor\" x1=\"0\" y1=\"{:.0f}\" x2=\"0\" y2=\"{:.0f}\" "
      "visibility=\"hidden\"/>",
      kPlotY0, kPlotY1 + 11);
  s += fmt::format(
      "<rect id=\"hover\" x=\"{:.0f}\" y=\"{:.0f}\" width=\"{:.0f}\" "
      "height=\"{:.0f}\" data-x0=\"{:.3f}\" data-step=\"{:.6f}\" fill=\"transparent\"/>",
      kPlotX0, kPlotY0 - 20, kPlotX1 - kPlotX0, kPlotY1 - kPlotY0 + 32, kPlotX0, step);
  return s + "</svg>";
}

// ---- data for the script ----

std::string script_data(const VerifyReport& r, int first, const GraphLayout& g) {
  using html::script_json_string;
  std::string s = "{\"first\":" + std::to_string(first) +
                  ",\"precision\":" + script_json_string(r.precision) + ",\"layers\":[";
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const auto& l = r.layers[i];
    s += i ? "," : "";
    s += "{\"name\":" + script_json_string(l.name) + ",\"op\":" + script_json_string(l.op) +
         ",\"shape\":" + script_json_string(shape_text(l.shape)) + ",\"inputs\":[";
    for (size_t k = 0; k < l.inputs.size(); ++k)
      s += (k ? "," : "") + script_json_string(l.inputs[k]);
    s += "],\"preds\":[";
    for (size_t k = 0; k < g.preds[i].size(); ++k)
      s += (k ? "," : "") + std::to_string(g.preds[i][k]);
    s += fmt::format(
        "],\"max_abs\":{},\"max_rel\":{},\"cosine\":{},\"mismatches\":{},\"count\":{},"
        "\"first_mismatch\":{},\"status\":{},\"reference_key\":{},"
        "\"reference_shape\":{}",
        json_num(l.max_abs), json_num(l.max_rel), json_num(l.cosine), l.mismatches, l.count,
        l.first_mismatch, script_json_string(l.status), script_json_string(l.reference_key),
        script_json_string(l.reference_shape.empty() ? std::string()
                                                     : shape_text(l.reference_shape)));
    if (l.precision_checked)
      s += fmt::format(",\"precision_rel\":{},\"precision_overflow\":{}", json_num(l.precision_rel),
                       l.precision_overflow ? "true" : "false");
    s += "}";
  }
  return s + "]}";
}

}  // namespace

// ---- page ----

std::string report_html(const VerifyReport& r) {
  const auto& L = r.layers;
  int first = -1;
  if (!r.first_divergent.empty()) {
    for (size_t i = 0; i < L.size() && first < 0; ++i)
      if (L[i].name == r.first_divergent) first = static_cast<int>(i);
  }
  size_t n_ok = 0, n_bad = 0, n_unchecked = 0;
  for (const auto& l : L) {
    if (l.status == "ok")
      ++n_ok;
    else if (l.status == "unchecked")
      ++n_unchecked;
    else
      ++n_bad;
  }
  auto layer_link = [&](const std::string& name) {
    for (size_t i = 0; i < L.size(); ++i)
      if (L[i].name == name)
        return fmt::format("<a class=\"layer mono\" data-i=\"{}\">{}</a>", i, escape(name));
    return "<span class=\"mono\">" + escape(name) + "</span>";
  };
  const GraphLayout g = layout_graph(L);

  std::string h;
  h.reserve(4096 + L.size() * 900);
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  // No network: nothing may be fetched, whatever the data says.
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  h += "<title>anvil verify: " + escape(r.model) + " \u2014 " + escape(r.status) + "</title>";
  h += "<script>" + std::string(kErrorHook) + "</script>";
  h += "<style>" + std::string(kStyle) + "</style></head><body><main>";
  h += "<span id=\"report-status\" hidden>script-not-run</span>";

  // Header.
  h += "<section><h1>anvil verify <span class=\"badge b-" + escape(r.status) + "\">" +
       escape(r.status.empty() ? "no status" : r.status) + "</span></h1><dl class=\"meta\">";
  h += "<dt>model</dt><dd class=\"mono\">" + escape(r.model) + "</dd>";
  h += "<dt>reference</dt><dd class=\"mono\">" + escape(r.reference) + "</dd>";
  h += "<dt>backend</dt><dd>" + escape(r.backend) + "</dd>";
  h += "<dt>precision</dt><dd>" + escape(r.precision) + "</dd>";
  h += fmt::format(
      "<dt>tolerance</dt><dd>|got \u2212 ref| \u2264 atol + rtol \u00b7 {}, "
      "rtol {}, atol {}</dd>",
      r.criterion == "per-element" ? "|ref| (per element)" : "max |ref| (the tensor's scale)",
      num(r.rtol, 3), num(r.atol, 3));
  h += fmt::format(
      "<dt>layers</dt><dd>{} tensors: {} within tolerance, {} outside, {} without "
      "reference</dd>",
      L.size(), n_ok, n_bad, n_unchecked);
  h += "<dt>first divergence</dt><dd>" +
       (r.first_divergent.empty() ? std::string("none") : layer_link(r.first_divergent)) + "</dd>";
  h += "<dt>input check</dt><dd><span class=\"badge b-" + escape(r.input_check) + "\">" +
       escape(r.input_check.empty() ? "not run" : r.input_check) + "</span>";
  if (r.input_check == "ok")
    h += " the input equals the reference input";
  else if (r.input_check == "absent")
    h += " the reference holds no input tensor: make sure both ran on the same input";
  else if (r.input_check == "differs")
    h += " <b>the input differs from the reference input: the comparison below is not "
         "meaningful</b>";
  if (!r.input_message.empty()) h += "<pre>" + escape(r.input_message) + "</pre>";
  h += "</dd>";
  auto name_list = [&](const std::vector<std::string>& names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + layer_link(names[i]);
    return out;
  };
  if (!r.keep_fp32.empty()) h += "<dt>kept in fp32</dt><dd>" + name_list(r.keep_fp32) + "</dd>";
  if (!r.suggest_keep_fp32.empty())
    h += "<dt>suggest --keep-fp32</dt><dd>" + name_list(r.suggest_keep_fp32) +
         " <span class=\"note\">(overflow to inf/NaN or lose most precision in " +
         escape(r.precision) + ")</span></dd>";
  if (!r.unmatched_reference.empty()) {
    h += fmt::format(
        "<dt>unmatched</dt><dd><details><summary>{} reference tensor{} match no "
        "tensor of the model</summary><span class=\"mono\">",
        r.unmatched_reference.size(), r.unmatched_reference.size() == 1 ? "" : "s");
    for (size_t i = 0; i < r.unmatched_reference.size(); ++i)
      h += (i ? ", " : "") + escape(r.unmatched_reference[i]);
    h += "</span></details></dd>";
  }
  h += "</dl></section>";

  // Diagnosis.
  h += "<section id=\"diagnosis\"><h2>Diagnosis</h2>";
  if (r.diagnosis.empty()) {
    h += "<p class=\"note\">" +
         std::string(first >= 0 || !r.first_divergent.empty()
                         ? "No hypothesis explains the divergence."
                         : "Nothing to diagnose.") +
         "</p>";
  } else {
    h += "<ul class=\"diag\">";
    for (const auto& d : r.diagnosis) {
      h += "<li><span class=\"cause\">" + escape(d.cause) + "</span>";
      if (!d.layer.empty()) h += " at " + layer_link(d.layer);
      h += ": " + escape(d.message) + "</li>";
    }
    h += "</ul>";
  }
  h += "</section>";

  // Chart.
  h += "<section><h2>Error per layer</h2><div class=\"scroll-x\">" + chart_svg(r, first) +
       "</div><p class=\"note\">Hover for a layer's numbers, click to select it. Errors of 0 "
       "sit on the bottom line; layers without a reference tensor are gaps.</p></section>";

  // Graph.
  h += "<section><h2>Graph</h2><div class=\"legend-row\">"
       "<span><span class=\"sw\" style=\"background:hsl(130,70%,78%)\"></span>within tolerance"
       "</span><span><span class=\"sw\" style=\"background:hsl(75,70%,78%)\"></span>close to the "
       "tolerance</span><span><span class=\"sw\" style=\"background:hsl(38,70%,78%)\"></span>"
       "few elements outside</span><span><span class=\"sw\" style=\"background:hsl(0,70%,78%)"
       "\"></span>most elements outside</span><span><span class=\"sw\" style=\"background:"
       "hsl(0,85%,62%)\"></span>NaN/Inf or shape differs</span><span><span class=\"sw\" "
       "style=\"background:#e5e7eb\"></span>no reference tensor</span><span><span class=\"sw\" "
       "style=\"border:2px dashed #b91c1c\"></span>first divergence</span></div>"
       "<div class=\"graphbox\"><div id=\"graphwrap\">" +
       graph_svg(r, first, g) +
       "</div><div id=\"details\"><b id=\"details-title\">Layer</b><table><tbody "
       "id=\"details-body\"><tr><td colspan=\"2\">Click a node, a table row or the chart.</td>"
       "</tr></tbody></table></div></div></section>";

  // Table.
  h += "<section><h2>Layers</h2><div id=\"tablewrap\"><table class=\"layers\" id=\"layers\">"
       "<thead><tr><th>#</th><th>name</th><th>op</th><th>shape</th><th>max abs</th>"
       "<th>max rel</th><th>cosine</th><th>outside tol</th>";
  const bool any_precision =
      std::any_of(L.begin(), L.end(), [](const LayerResult& l) { return l.precision_checked; });
  if (any_precision) h += "<th>" + escape(r.precision) + " vs fp32</th>";
  h += "<th>status</th></tr></thead><tbody>";
  for (size_t i = 0; i < L.size(); ++i) {
    const auto& l = L[i];
    const bool has_numbers = checked(l) && l.status != "shape";
    h += fmt::format("<tr data-i=\"{}\"{}><td class=\"r\">{}</td>", i,
                     static_cast<int>(i) == first ? " class=\"first\"" : "", i);
    h += "<td class=\"name\">" + escape(l.name) + "</td><td>" + escape(l.op) + "</td><td>" +
         escape(shape_text(l.shape)) + "</td>";
    if (has_numbers)
      h += fmt::format(
          "<td class=\"r\">{}</td><td class=\"r\">{}</td><td class=\"r\">{}</td>"
          "<td class=\"r\">{} / {}</td>",
          num(l.max_abs), num(l.max_rel), num(l.cosine, 8), l.mismatches, l.count);
    else
      h += "<td class=\"r\">\u2014</td><td class=\"r\">\u2014</td><td class=\"r\">\u2014</td>"
           "<td class=\"r\">\u2014</td>";
    if (any_precision) {
      if (!l.precision_checked)
        h += "<td class=\"r\">\u2014</td>";
      else if (l.precision_overflow)
        h += "<td class=\"r\"><span class=\"badge b-nan\">overflow</span></td>";
      else
        h += "<td class=\"r\">" + num(l.precision_rel, 3) + "</td>";
    }
    h += "<td><span class=\"badge b-" + escape(l.status) + "\">" + escape(l.status) +
         "</span></td></tr>";
  }
  h += "</tbody></table></div></section>";

  h += "<div id=\"tip\"></div></main>";
  h += "<script type=\"application/json\" id=\"report-data\">" + script_data(r, first, g) +
       "</script>";
  h += "<script>" + std::string(kScript) + "</script></body></html>\n";
  return h;
}

}  // namespace anvil
