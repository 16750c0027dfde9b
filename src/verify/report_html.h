// Internal helpers of report_html() (src/verify/report_html.cpp), declared for the unit tests,
// and the page's static text; both are defined in src/verify/report_html_assets.cpp.
#pragma once

#include <string>
#include <string_view>

namespace anvil::html {

/// Text for HTML element content and quoted attribute values: & < > " ' escaped, invalid
/// UTF-8 and control characters (other than tab and newline) replaced by U+FFFD.
std::string escape(std::string_view s);

/// At most `max_chars` code points of `s` (the last one an ellipsis when cut); never splits a
/// UTF-8 sequence. Invalid UTF-8 bytes count as one character each.
std::string truncate_chars(std::string_view s, size_t max_chars);

/// A JSON string literal (quotes included) that is safe inside an HTML <script> element:
/// ASCII only (so U+2028/U+2029 are \u escapes), `<`, `>` and `&` written as \u003c, \u003e,
/// \u0026 (no "</script" or "<!--" can appear), invalid UTF-8 replaced by U+FFFD.
std::string script_json_string(std::string_view s);

/// The page's static text: its CSS, the script that runs first (any script error becomes a
/// visible marker element) and the script that adds hover details, selection and scrolling.
extern const char* const kStyle;
extern const char* const kErrorHook;
extern const char* const kScript;

}  // namespace anvil::html
