// The one list of values that are not secrets: empty values, templates,
// examples from documentation, and references to somewhere else.
#include <algorithm>
#include <array>

#include "scan/internal.hpp"

namespace sg::scan::detail {
namespace {

// Whole values (compared case-insensitively, ignoring - and _).
constexpr std::array<std::string_view, 30> kWords = {
    "password",     "passwd",    "pass",         "pwd",        "secret",
    "changeme",     "changeit",  "yourpassword", "mypassword", "yoursmtppassword",
    "smtppassword", "smtppass",  "mailpassword", "example",    "null",
    "none",         "nil",       "undefined",    "true",       "false",
    "empty",        "redacted",  "hidden",       "todo",       "fixme",
    "placeholder",  "secretkey", "apppassword",  "test",       "dummy"};
// Prefixes of the normalised value.
constexpr std::array<std::string_view, 7> kPrefixes = {
    "your", "insertyour", "enteryour", "replacewith", "replaceme", "putyour", "changeme"};
// Anywhere in the normalised value.
constexpr std::array<std::string_view, 7> kInfixes = {
    "example", "placeholder", "changeme", "redacted", "passwordhere", "secrethere", "xxxx"};
// Templates and lookups, as written.
constexpr std::array<std::string_view, 16> kMarkers = {
    "${",        "{$",          "{{",         "%(",   "%env(", "env(", "getenv(", "$_ENV[",
    "$_SERVER[", "process.env", "os.environ", "ENV[", "<%=",   "#{",   "@@",      "******"};

std::string normalise(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '-' || c == '_' || c == ' ') continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

}  // namespace

bool is_template(std::string_view v) {
  while (!v.empty() && is_blank(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_blank(v.back())) v.remove_suffix(1);
  if (v.empty()) return true;
  if (v.front() == '<' && v.back() == '>') return true;
  if (v.front() == '[' && v.back() == ']') return true;
  if (v.front() == '%' && v.back() == '%') return true;  // %MAIL_PASSWORD%
  if (v.front() == '$' && v.size() > 1 &&
      std::all_of(v.begin() + 1, v.end(), [](char c) { return is_ident(c); }))
    return true;  // $var, $SMTP_PASS
  for (std::string_view m : kMarkers)
    if (v.find(m) != std::string_view::npos) return true;
  return false;
}

bool is_placeholder(std::string_view v) {
  while (!v.empty() && is_blank(v.front())) v.remove_prefix(1);
  while (!v.empty() && is_blank(v.back())) v.remove_suffix(1);
  if (is_template(v)) return true;
  if (std::all_of(v.begin(), v.end(), [&](char c) { return c == v.front(); }))
    return true;  // "xxxxxxxx", "********", "..."
  const std::string n = normalise(v);
  if (n.empty()) return true;
  for (std::string_view w : kWords)
    if (n == w) return true;
  for (std::string_view p : kPrefixes)
    if (n.starts_with(p)) return true;
  for (std::string_view i : kInfixes)
    if (n.find(i) != std::string::npos) return true;
  return false;
}

bool is_code_reference(std::string_view v) {
  if (v.empty()) return true;
  if (v.front() == '$' || v.front() == '@') return true;   // $var, @var
  if (v.find('(') != std::string_view::npos) return true;  // call()
  if (v.find("->") != std::string_view::npos || v.find("::") != std::string_view::npos) return true;
  const bool ident_chars = std::all_of(v.begin(), v.end(), [](char c) {
    return is_ident(static_cast<unsigned char>(c)) || c == '.' || c == '[' || c == ']';
  });
  if (!ident_chars) return false;
  if (v.front() >= '0' && v.front() <= '9') return false;
  // obj.attr, config[key], or a CONSTANT_NAME: references, not values.
  if (v.find('.') != std::string_view::npos || v.find('[') != std::string_view::npos) return true;
  const bool upper = std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
  return upper && v.find('_') != std::string_view::npos;
}

}  // namespace sg::scan::detail
