// The fixed parts of report_html()'s page (src/verify/report_html.cpp builds the rest): the
// html:: text helpers declared in report_html.h (HTML escaping of untrusted strings, truncation
// by code points, JSON string literals safe inside <script>) and the page's static text (CSS,
// the error hook that runs first, and the script that adds hover details, selection and
// scrolling to the drawn page).
#include <fmt/format.h>

#include <string>
#include <string_view>

#include "verify/report_html.h"

namespace anvil {
namespace html {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// Decodes the code point at s[i] and advances i. Invalid or overlong sequences, surrogates and
// values above U+10FFFF give U+FFFD and advance by one byte.
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = 0;
  char32_t cp = 0, min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++i;
    return kReplacement;
  }
  if (i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return kReplacement;
  }
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return kReplacement;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return kReplacement;
  }
  i += static_cast<size_t>(len);
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    char32_t cp = next_code_point(s, i);
    switch (cp) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if ((cp < 0x20 && cp != '\t' && cp != '\n') || (cp >= 0x7F && cp <= 0x9F))
          cp = kReplacement;
        append_utf8(out, cp);
    }
  }
  return out;
}

std::string truncate_chars(std::string_view s, size_t max_chars) {
  if (max_chars == 0) return "";
  size_t i = 0, count = 0, cut = 0;
  while (i < s.size()) {
    next_code_point(s, i);
    ++count;
    if (count == max_chars - 1) cut = i;
    if (count > max_chars) return std::string(s.substr(0, cut)) + "\u2026";
  }
  return std::string(s);
}

std::string script_json_string(std::string_view s) {
  std::string out = "\"";
  out.reserve(s.size() + 2);
  for (size_t i = 0; i < s.size();) {
    const char32_t cp = next_code_point(s, i);
    if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp >= 0x20 && cp < 0x7F && cp != '<' && cp != '>' && cp != '&') {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
    } else {  // UTF-16 surrogate pair
      const char32_t v = cp - 0x10000;
      out += fmt::format("\\u{:04x}\\u{:04x}", static_cast<unsigned>(0xD800 + (v >> 10)),
                         static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
    }
  }
  return out + "\"";
}

// ---- page assets ----

const char* const kStyle = R"CSS(
:root { font-family: system-ui, "DejaVu Sans", sans-serif; font-size: 14px; color: #111827; }
body { margin: 0; background: #f3f4f6; }
main { max-width: 1320px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 22px; margin: 4px 0 12px; }
h2 { font-size: 17px; margin: 0 0 10px; }
section { background: #fff; border: 1px solid #d1d5db; border-radius: 8px; padding: 14px 16px;
  margin-bottom: 16px; }
.mono, td.name, .nm, .op, pre { font-family: "DejaVu Sans Mono", monospace; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 12px; font-weight: 600;
  font-size: 13px; vertical-align: middle; }
.b-match, .b-ok { background: #dcfce7; color: #166534; }
.b-mismatch, .b-differs, .b-nan, .b-shape { background: #fee2e2; color: #991b1b; }
.b-absent, .b-unchecked, .b- { background: #e5e7eb; color: #374151; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0; }
dl.meta dt { color: #6b7280; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
pre { background: #f9fafb; border: 1px solid #e5e7eb; padding: 8px; margin: 6px 0 0;
  white-space: pre-wrap; overflow-wrap: anywhere; max-height: 220px; overflow: auto; }
ul.diag { margin: 0; padding-left: 18px; } ul.diag li { margin: 4px 0; }
.cause { font-family: "DejaVu Sans Mono", monospace; font-weight: 600; }
a.layer { color: #1d4ed8; cursor: pointer; text-decoration: underline dotted; }
.scroll-x { overflow-x: auto; }
#chart .grid line { stroke: #e5e7eb; } #chart .frame { fill: none; stroke: #9ca3af; }
#chart text { font-size: 11px; fill: #374151; } #chart .yl { text-anchor: end; }
#chart .xl, #chart .axis { text-anchor: middle; } #chart .axis { font-size: 12px; fill: #6b7280; }
#chart .ser { fill: none; stroke-width: 1.6; } .ser.abs, .pt.abs { stroke: #2563eb; }
.ser.rel, .pt.rel { stroke: #ea580c; } #chart .ser.prec { stroke: #7c3aed; stroke-dasharray: 2 2; } .pt.abs { fill: #2563eb; } .pt.rel { fill: #ea580c; }
#chart .tol { stroke-dasharray: 6 4; stroke-width: 1.2; } .tol.abs { stroke: #2563eb; }
.tol.rel { stroke: #ea580c; } #chart .dots { fill: none; stroke-width: 3; stroke-linecap: round; } .toll.abs { fill: #2563eb; }
.toll.rel { fill: #ea580c; } .strip rect, rect.strip { fill: #dc2626; } .inf { fill: #7f1d1d; }
#chart .firstl { stroke: #b91c1c; stroke-width: 1.5; stroke-dasharray: 3 3; }
#chart .firstt { fill: #b91c1c; font-weight: 600; font-size: 12px; }
#cursor { stroke: #111827; stroke-width: 1; }
.graphbox { display: flex; gap: 14px; align-items: flex-start; }
#graphwrap { flex: 1; max-height: 72vh; overflow: auto; border: 1px solid #e5e7eb;
  border-radius: 6px; background: #fcfcfd; }
#details { width: 300px; flex: none; font-size: 13px; border: 1px solid #e5e7eb; border-radius: 6px;
  padding: 10px; background: #f9fafb; overflow-wrap: anywhere; }
#details table { border-collapse: collapse; width: 100%; } #details td { padding: 2px 4px;
  vertical-align: top; } #details td:first-child { color: #6b7280; width: 84px; }
#graph .e { fill: none; stroke: #9ca3af; stroke-width: 1.2; marker-end: url(#arrow); }
#graph .e.hl { stroke: #111827; stroke-width: 2.2; }
#graph .n { cursor: pointer; } #graph .nm { font-size: 11px; fill: #111827; }
#graph .op { font-size: 10px; fill: #374151; }
#graph .halo { fill: none; stroke: #b91c1c; stroke-width: 3; stroke-dasharray: 6 3; }
#graph .n.sel > rect:not(.halo) { stroke: #111827; stroke-width: 3; }
.legend-row { display: flex; gap: 14px; flex-wrap: wrap; font-size: 12px; color: #374151;
  margin: 0 0 8px; } .sw { display: inline-block; width: 14px; height: 10px; border-radius: 2px;
  border: 1px solid #6b7280; vertical-align: middle; margin-right: 4px; }
#tablewrap { max-height: 60vh; overflow: auto; border: 1px solid #e5e7eb; border-radius: 6px; }
table.layers { border-collapse: collapse; width: 100%; font-size: 12.5px; }
table.layers th { position: sticky; top: 0; background: #f3f4f6; text-align: left;
  padding: 5px 8px; border-bottom: 1px solid #d1d5db; z-index: 1; }
table.layers td { padding: 3px 8px; border-bottom: 1px solid #f3f4f6; white-space: nowrap; }
table.layers td.name { white-space: normal; overflow-wrap: anywhere; max-width: 420px; }
table.layers td.r { text-align: right; font-variant-numeric: tabular-nums; }
table.layers tr { cursor: pointer; } table.layers tr:hover td { background: #eff6ff; }
table.layers tr.first td { background: #fef2f2; font-weight: 600; }
table.layers tr.sel td { background: #dbeafe; }
#tip { position: fixed; pointer-events: none; background: #111827; color: #f9fafb;
  font-size: 12px; padding: 6px 8px; border-radius: 5px; max-width: 420px; z-index: 10;
  overflow-wrap: anywhere; display: none; white-space: pre-line; }
#report-error { background: #fee2e2; color: #991b1b; padding: 8px 12px; font-weight: 600; }
.note { color: #6b7280; font-size: 12px; margin: 6px 0 0; }
)CSS";

// Runs before anything else: any script error on the page becomes a visible marker element.
const char* const kErrorHook = R"JS(
window.onerror = function (msg, src, line, col) {
  var d = document.getElementById('report-error');
  if (!d) {
    d = document.createElement('div');
    d.id = 'report-error';
    (document.body || document.documentElement).insertBefore(d, (document.body || document.documentElement).firstChild);
  }
  d.textContent = 'report-' + 'error: ' + msg + ' (line ' + line + ':' + col + ')';
  var s = document.getElementById('report-status');
  if (s) s.textContent = 'report-' + 'error';
  return false;
};
)JS";

const char* const kScript = R"JS(
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var L = data.layers;
  function $(id) { return document.getElementById(id); }
  function fmt(v, d) {
    if (typeof v === 'string') return v === 'Infinity' ? 'inf' : v === '-Infinity' ? '-inf' : v;
    if (v === 0) return '0';
    return String(Number(v.toPrecision(d || 4)));
  }
  function rows(l) {
    var r = [['name', l.name], ['op', l.op], ['shape', l.shape], ['status', l.status]];
    if (l.reference_key && l.reference_key !== l.name) r.push(['reference', l.reference_key]);
    if (l.reference_shape) r.push(['ref shape', l.reference_shape]);
    if (l.status !== 'unchecked' && l.status !== 'shape') {
      r.push(['max abs', fmt(l.max_abs)], ['max rel', fmt(l.max_rel)],
             ['cosine', fmt(l.cosine, 8)], ['outside tol', l.mismatches + ' of ' + l.count]);
      if (l.first_mismatch >= 0) r.push(['first bad', 'flat index ' + l.first_mismatch]);
    }
    if ('precision_rel' in l)
      r.push([data.precision + ' err', l.precision_overflow ? 'overflow (inf/NaN)' : fmt(l.precision_rel)]);
    r.push(['inputs', l.inputs.length ? l.inputs.join(', ') : '(none)']);
    return r;
  }
  var tip = $('tip');
  function showTip(i, ev) {
    var l = L[i];
    tip.textContent = '#' + i + ' ' + rows(l).map(function (p) { return p[0] + ': ' + p[1]; }).join('\n');
    tip.style.display = 'block';
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth - 4) x = ev.clientX - w - 10;
    if (y + h > window.innerHeight - 4) y = ev.clientY - h - 10;
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }
  function hideTip() { tip.style.display = 'none'; }

  var nodes = [], trs = [];
  Array.prototype.forEach.call(document.querySelectorAll('#graph g.n'), function (g) { nodes[+g.getAttribute('data-i')] = g; });
  Array.prototype.forEach.call(document.querySelectorAll('#layers tbody tr'), function (t) { trs[+t.getAttribute('data-i')] = t; });
  var edges = document.querySelectorAll('#graph path.e');
  var hover = $('hover'), cursor = $('cursor');
  var x0 = +hover.getAttribute('data-x0'), step = +hover.getAttribute('data-step');
  var sel = -1;

  function centerIn(box, el, horizontalToo) {
    var b = box.getBoundingClientRect(), r = el.getBoundingClientRect();
    box.scrollTop += (r.top - b.top) - (box.clientHeight - r.height) / 2;
    if (horizontalToo) box.scrollLeft += (r.left - b.left) - (box.clientWidth - r.width) / 2;
  }
  function select(i, scroll) {
    if (i < 0 || i >= L.length) return;
    if (sel >= 0) { nodes[sel].classList.remove('sel'); trs[sel].classList.remove('sel'); }
    sel = i;
    nodes[i].classList.add('sel'); trs[i].classList.add('sel');
    Array.prototype.forEach.call(edges, function (e) {
      var on = +e.getAttribute('data-f') === i || +e.getAttribute('data-t') === i;
      e.classList.toggle('hl', on);
    });
    var x = x0 + (i + 0.5) * step;
    cursor.setAttribute('x1', x); cursor.setAttribute('x2', x);
    cursor.setAttribute('visibility', 'visible');
    var tb = $('details-body');
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    $('details-title').textContent = 'Layer #' + i + (i === data.first ? ' (first divergence)' : '');
    rows(L[i]).forEach(function (p) {
      var tr = document.createElement('tr'), a = document.createElement('td'), b = document.createElement('td');
      a.textContent = p[0]; b.textContent = p[1];
      tr.appendChild(a); tr.appendChild(b); tb.appendChild(tr);
    });
    if (scroll) { centerIn($('graphwrap'), nodes[i], true); centerIn($('tablewrap'), trs[i], false); }
  }
  function nodeIndex(ev) {
    var g = ev.target.closest ? ev.target.closest('g.n') : null;
    return g ? +g.getAttribute('data-i') : -1;
  }
  var graph = $('graph');
  graph.addEventListener('mousemove', function (ev) { var i = nodeIndex(ev); if (i >= 0) showTip(i, ev); else hideTip(); });
  graph.addEventListener('mouseleave', hideTip);
  graph.addEventListener('click', function (ev) { var i = nodeIndex(ev); if (i >= 0) select(i, false); });
  function chartIndex(ev) {
    var r = hover.getBoundingClientRect();
    var i = Math.floor((ev.clientX - r.left) / step);
    return Math.max(0, Math.min(L.length - 1, i));
  }
  hover.addEventListener('mousemove', function (ev) { showTip(chartIndex(ev), ev); });
  hover.addEventListener('mouseleave', hideTip);
  hover.addEventListener('click', function (ev) { select(chartIndex(ev), true); });
  $('layers').addEventListener('click', function (ev) {
    var t = ev.target.closest ? ev.target.closest('tr[data-i]') : null;
    if (t) { var i = +t.getAttribute('data-i'); select(i, false); centerIn($('graphwrap'), nodes[i], true); }
  });
  Array.prototype.forEach.call(document.querySelectorAll('a.layer[data-i]'), function (a) {
    a.addEventListener('click', function () { select(+a.getAttribute('data-i'), true); });
  });
  var start = data.first >= 0 ? data.first : 0;
  if (L.length) select(start, true);
  // file://...#selftest (the tests): drive hover and clicks as a user would; any failure
  // throws, and window.onerror reports it instead of report-ok.
  if (location.hash === '#selftest' && L.length) {
    var last = L.length - 1;
    nodes[last].dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: 20, clientY: 20 }));
    if (tip.style.display !== 'block' || tip.textContent.indexOf(L[last].name) < 0)
      throw new Error('selftest: hovering a node shows no details');
    var hr = hover.getBoundingClientRect();
    hover.dispatchEvent(new MouseEvent('click', { bubbles: true, clientX: hr.left + step / 2, clientY: hr.top + 5 }));
    if (sel !== 0) throw new Error('selftest: a click on the chart\'s first layer selected ' + sel);
    trs[last].firstChild.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    if (sel !== last || $('details-body').textContent.indexOf(L[last].name) < 0)
      throw new Error('selftest: a click on the last table row did not select it');
    graph.dispatchEvent(new MouseEvent('mouseleave'));
    if (tip.style.display !== 'none') throw new Error('selftest: the tooltip stays');
    select(start, true);
    $('report-status').setAttribute('data-selftest', 'passed');
  }
  $('report-status').textContent = 'report-' + 'ok';
})();
)JS";

}  // namespace html
}  // namespace anvil
