// report_html(): escaping of untrusted names (HTML and the JSON inside <script>), the layered
// graph layout, and pages for 0, 1 and 1500 layers. tests/cli/verify_html.sh loads rendered
// pages in headless Chromium.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "anvil/verify.h"
#include "verify/report_html.h"

namespace {

using anvil::LayerResult;
using anvil::VerifyReport;

LayerResult layer(std::string name, std::string op, std::vector<std::string> inputs,
                  std::string status, double max_abs = 0, double max_rel = 0) {
  LayerResult l;
  l.name = std::move(name);
  l.op = std::move(op);
  l.inputs = std::move(inputs);
  l.shape = {1, 4};
  l.status = std::move(status);
  l.max_abs = max_abs;
  l.max_rel = max_rel;
  l.cosine = l.status == "mismatch" ? 0.5 : 1;
  l.count = 4;
  l.mismatches = l.status == "mismatch" ? 3 : 0;
  return l;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

size_t graph_nodes(const std::string& page) {
  return count(page, "<g class=\"n\" data-i=") + count(page, "<g class=\"n first\" data-i=");
}

// The text of <script type="application/json" id="report-data">...</script>.
std::string data_json(const std::string& page) {
  const std::string open = "<script type=\"application/json\" id=\"report-data\">";
  const size_t a = page.find(open);
  EXPECT_NE(a, std::string::npos);
  const size_t b = page.find("</script>", a);
  return page.substr(a + open.size(), b - a - open.size());
}

const std::string kHostile = "</script><img src=x onerror=alert(1)>&amp;\"'<!--";
const std::string kLineSep = "a\u2028b\u2029c";  // JavaScript line terminators in a name

VerifyReport hostile_report() {
  VerifyReport r;
  r.model = "m<b>odel</b>.onnx";
  r.reference = "ref\"'.npz";
  r.rtol = 1e-4;
  r.atol = 1e-5;
  r.status = "mismatch";
  r.input_check = "differs";
  r.input_message = "input[0]: anvil 0.5 reference <script>alert(1)</script>";
  r.layers.push_back(layer("in", "Input", {}, "ok"));
  r.layers.push_back(layer(kHostile, "Conv</style>", {"in"}, "mismatch", 0.5, 2));
  r.layers.push_back(layer(kLineSep, "Relu", {kHostile}, "unchecked"));
  r.layers.push_back(layer("bad\xff\xfe utf8", "Add", {kLineSep, "in"}, "nan", NAN, INFINITY));
  r.first_divergent = kHostile;
  r.diagnosis.push_back({"unknown", kHostile, "message with <b>tags</b> & \"quotes\""});
  return r;
}

TEST(VerifyHtml, EscapeHelpers) {
  using namespace anvil::html;
  EXPECT_EQ(escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(escape("caf\u00e9 \u2028"), "caf\u00e9 \u2028");  // valid UTF-8 kept
  EXPECT_EQ(escape("a\xff"
                   "b"),
            "a\uFFFD"
            "b");                                           // invalid byte replaced
  EXPECT_EQ(escape("\xc0\xaf"), "\uFFFD\uFFFD");            // overlong '/' is not '/'
  EXPECT_EQ(escape("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");  // UTF-16 surrogate
  EXPECT_EQ(escape(std::string("a\0b\x01", 4)),
            "a\uFFFD"
            "b\uFFFD");
  EXPECT_EQ(escape("tab\tnl\n"), "tab\tnl\n");

  EXPECT_EQ(script_json_string("</script>"), "\"\\u003c/script\\u003e\"");
  EXPECT_EQ(script_json_string("<!--&"), "\"\\u003c!--\\u0026\"");
  EXPECT_EQ(script_json_string(kLineSep), "\"a\\u2028b\\u2029c\"");
  EXPECT_EQ(script_json_string("q\"\\\n"), "\"q\\\"\\\\\\u000a\"");
  EXPECT_EQ(script_json_string("\xf0\x9f\x98\x80"), "\"\\ud83d\\ude00\"");  // U+1F600
  EXPECT_EQ(script_json_string("x\xff"), "\"x\\ufffd\"");
  // Whatever goes in, the JSON parses back to the same (valid) text.
  for (std::string s : {kHostile, kLineSep, std::string("caf\u00e9 \xf0\x9f\x98\x80")})
    EXPECT_EQ(nlohmann::json::parse(script_json_string(s)).get<std::string>(), s);

  EXPECT_EQ(truncate_chars("abcdef", 6), "abcdef");
  EXPECT_EQ(truncate_chars("abcdefg", 6), "abcde\u2026");
  EXPECT_EQ(truncate_chars("\u00e9\u00e9\u00e9\u00e9", 3),
            "\u00e9\u00e9\u2026");  // never mid-sequence
  EXPECT_EQ(truncate_chars("abc", 0), "");
}

TEST(VerifyHtml, HostileNamesAreEscaped) {
  const std::string page = anvil::report_html(hostile_report());
  // Exactly the page's own elements: the error hook, the data and the script; one <img>: none.
  EXPECT_EQ(count(page, "<script"), 3u);
  EXPECT_EQ(count(page, "</script>"), 3u);
  EXPECT_EQ(count(page, "<img"), 0u);
  EXPECT_EQ(count(page, "<b>odel"), 0u);
  EXPECT_EQ(page.find("Conv</style>"), std::string::npos);
  EXPECT_EQ(page.find("<!--"), std::string::npos);
  EXPECT_NE(page.find("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;&quot;&#39;"),
            std::string::npos);
  EXPECT_NE(page.find("ref&quot;&#39;.npz"), std::string::npos);
  EXPECT_NE(page.find("reference &lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(page.find("message with &lt;b&gt;tags&lt;/b&gt; &amp; &quot;quotes&quot;"),
            std::string::npos);
  // Raw U+2028/2029 may appear in HTML text, never inside the script data.
  const std::string json = data_json(page);
  EXPECT_EQ(json.find("</"), std::string::npos);
  EXPECT_EQ(json.find("\u2028"), std::string::npos);
  EXPECT_EQ(json.find("\u2029"), std::string::npos);
  for (unsigned char c : json) EXPECT_LT(c, 0x80) << "the data is ASCII";
  // The data round-trips: names, the resolved edges, non-finite numbers as strings.
  const auto j = nlohmann::json::parse(json);
  ASSERT_EQ(j["layers"].size(), 4u);
  EXPECT_EQ(j["first"], 1);
  EXPECT_EQ(j["layers"][1]["name"], kHostile);
  EXPECT_EQ(j["layers"][1]["op"], "Conv</style>");
  EXPECT_EQ(j["layers"][2]["name"], kLineSep);
  EXPECT_EQ(j["layers"][3]["name"], "bad\uFFFD\uFFFD utf8");
  EXPECT_EQ(j["layers"][3]["preds"], nlohmann::json::parse("[2,0]"));
  EXPECT_EQ(j["layers"][3]["max_abs"], "NaN");
  EXPECT_EQ(j["layers"][3]["max_rel"], "Infinity");
  EXPECT_EQ(j["layers"][1]["max_abs"], 0.5);
  // The first divergence is marked in the graph, the chart and the table.
  EXPECT_NE(page.find("<g class=\"n first\" data-i=\"1\""), std::string::npos);
  EXPECT_NE(page.find("<tr data-i=\"1\" class=\"first\">"), std::string::npos);
  EXPECT_NE(page.find("first divergence: &lt;/script&gt;"), std::string::npos);
}

VerifyReport resnet_like() {  // 1501 layers: residual blocks (conv, relu, conv, add with a skip)
  VerifyReport r;
  r.model = "resnet_like.onnx";
  r.reference = "resnet_like.npz";
  r.status = "mismatch";
  r.input_check = "ok";
  r.rtol = 1e-4;
  r.atol = 1e-5;
  r.layers.push_back(layer("x", "Input", {}, "ok"));
  std::string prev = "x";
  while (r.layers.size() < 1500) {
    const std::string k = std::to_string(r.layers.size());
    const bool bad = r.layers.size() > 1000;
    r.layers.push_back(layer("c1_" + k, "Conv", {prev}, "ok", 1e-7, 1e-6));
    r.layers.push_back(layer("r_" + k, "Relu", {"c1_" + k}, "unchecked"));
    r.layers.push_back(layer("c2_" + k, "Conv", {"r_" + k}, bad ? "mismatch" : "ok",
                             bad ? 1e-2 : 2e-7, bad ? 1e-1 : 1e-6));
    r.layers.push_back(layer("add_" + k, "Add", {"c2_" + k, prev}, bad ? "mismatch" : "ok",
                             bad ? 1e-2 : 0, bad ? 1e-1 : 0));
    prev = "add_" + k;
    if (bad && r.first_divergent.empty()) r.first_divergent = "c2_" + k;
  }
  return r;
}

// Node i's top-left corner in the graph (from its transform).
std::pair<double, double> node_pos(const std::string& page, int i) {
  std::smatch m;
  const std::regex re("<g class=\"n[^\"]*\" data-i=\"" + std::to_string(i) +
                      "\" transform=\"translate\\(([-0-9.]+),([-0-9.]+)\\)\"");
  EXPECT_TRUE(std::regex_search(page, m, re)) << "node " << i;
  return {std::stod(m[1]), std::stod(m[2])};
}

TEST(VerifyHtml, GraphLayersByLongestPath) {
  // a -> b -> c -> d, a -> d (skip), a -> e (side branch), unknown input ignored.
  VerifyReport r;
  r.status = "match";
  r.rtol = 1e-5;
  r.layers = {layer("a", "Input", {}, "ok"), layer("b", "Conv", {"a"}, "ok"),
              layer("c", "Relu", {"b"}, "ok"), layer("d", "Add", {"c", "a", "weights"}, "ok"),
              layer("e", "Relu", {"a"}, "unchecked")};
  const std::string page = anvil::report_html(r);
  const double y0 = node_pos(page, 0).second;
  EXPECT_GT(node_pos(page, 1).second, y0);
  EXPECT_GT(node_pos(page, 2).second, node_pos(page, 1).second);
  EXPECT_GT(node_pos(page, 3).second, node_pos(page, 2).second);  // below c, not next to b
  EXPECT_EQ(node_pos(page, 4).second, node_pos(page, 1).second);  // e beside b
  EXPECT_NE(node_pos(page, 4).first, node_pos(page, 1).first);
  EXPECT_EQ(count(page, "<path class=\"e\""), 5u);  // edges; the unknown input has none
  EXPECT_NE(page.find("data-f=\"0\" data-t=\"3\""), std::string::npos);
  EXPECT_EQ(page.find("class=\"n first\""), std::string::npos);  // no divergence
}

TEST(VerifyHtml, SizesFromNoneToResNet) {
  VerifyReport r0;
  EXPECT_NE(anvil::report_html(r0).find("No layers."), std::string::npos);

  VerifyReport r1;
  r1.status = "match";
  r1.layers = {layer("only", "Input", {}, "ok")};
  const std::string p1 = anvil::report_html(r1);
  EXPECT_EQ(graph_nodes(p1), 1u);

  const VerifyReport r = resnet_like();
  const std::string page = anvil::report_html(r);
  EXPECT_EQ(graph_nodes(page), r.layers.size());
  EXPECT_EQ(count(page, "<tr data-i="), r.layers.size());
  EXPECT_LT(page.size(), 2'000'000u);  // about 1 KB per layer
  // A chain: 4 levels per block, so the graph is tall and narrow (it scrolls vertically).
  const auto last = node_pos(page, static_cast<int>(r.layers.size()) - 1);
  EXPECT_GT(last.second, 1499 * 50.0);
  EXPECT_LT(last.first, 400.0);
  if (const char* out = std::getenv("ANVIL_HTML_OUT")) {  // for looking at it in a browser
    std::ofstream(std::string(out) + "/resnet_like.html") << page;
    std::ofstream(std::string(out) + "/hostile.html") << anvil::report_html(hostile_report());
    std::ofstream(std::string(out) + "/one.html") << p1;
  }
}

// The page as headless Chromium leaves it after its scripts ran (--dump-dom).
std::string chromium_dom(const std::filesystem::path& dir, const std::string& name,
                         const std::string& page) {
  const auto file = dir / (name + ".html");
  std::ofstream(file) << page;
  const std::string cmd =
      "timeout 120 chromium --headless --no-sandbox --disable-gpu "
      "--user-data-dir='" +
      (dir / "profile").string() + "' --dump-dom 'file://" + file.string() +
      "#selftest' 2>/dev/null";
  std::string dom;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[65536];
    for (size_t k; (k = fread(buf, 1, sizeof buf, f)) > 0;) dom.append(buf, k);
    EXPECT_EQ(pclose(f), 0) << cmd;
  }
  return dom;
}

// The page's scripts ran to the end without an error: they write "report-ok" into the status
// element last; window.onerror (installed first) writes "report-error: ..." instead. With
// #selftest the script also hovers a node, clicks the chart and a table row, and checks that
// the details follow.
TEST(VerifyHtml, RunsInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  const auto dir =
      std::filesystem::temp_directory_path() / ("anvil_verify_html_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string ok =
      "<span id=\"report-status\" hidden=\"\" data-selftest=\"passed\">report-ok</span>";

  const std::string hostile = chromium_dom(dir, "hostile", anvil::report_html(hostile_report()));
  EXPECT_NE(hostile.find(ok), std::string::npos) << hostile.substr(0, 2000);
  EXPECT_EQ(hostile.find("id=\"report-error\""), std::string::npos);
  EXPECT_EQ(hostile.find("<img"), std::string::npos);  // the name stayed text
  // The details panel, filled by the script from the JSON data, shows the hostile name as text.
  EXPECT_NE(hostile.find("Layer #1 (first divergence)"), std::string::npos);
  EXPECT_NE(
      hostile.find("<td>&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;amp;\"'&lt;!--</td>"),
      std::string::npos);

  const std::string big = chromium_dom(dir, "resnet_like", anvil::report_html(resnet_like()));
  EXPECT_NE(big.find(ok), std::string::npos) << big.substr(0, 2000);
  EXPECT_NE(big.find("Layer #1003 (first divergence)"), std::string::npos);

  VerifyReport one;  // one layer, no edges, no divergence
  one.status = "match";
  one.layers = {layer("only", "Input", {}, "ok")};
  const std::string single = chromium_dom(dir, "one", anvil::report_html(one));
  EXPECT_NE(single.find(ok), std::string::npos) << single.substr(0, 2000);

  // Control: a page whose script fails shows the error marker, not report-ok.
  std::string broken = anvil::report_html(hostile_report());
  const size_t at = broken.find("JSON.parse(");
  ASSERT_NE(at, std::string::npos);
  broken.replace(at, 11, "JSON.parze(");
  const std::string bad = chromium_dom(dir, "broken", broken);
  EXPECT_EQ(bad.find(ok), std::string::npos);
  EXPECT_NE(bad.find("report-error: "), std::string::npos) << bad.substr(0, 2000);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
