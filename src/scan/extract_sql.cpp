// SMTP plugin options in database dumps: WP Mail SMTP, FluentSMTP and Post
// SMTP keep their settings in wp_options as serialized PHP (s:4:"pass";s:N:"...")
// or JSON, usually inside an SQL string where quotes are backslash-escaped.
#include <algorithm>
#include <array>

#include "scan/internal.hpp"

namespace sg::scan::detail {
namespace {

constexpr std::size_t kAround = 2048;  // bytes each side searched for host/user/port

constexpr std::array<std::string_view, 7> kPasswordKeys = {
    "pass",          "password",          "smtp_pass", "smtp_password", "basic_auth_password",
    "mail_password", "smtp_auth_password"};

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// After `pos` (just past a key's closing quote): ;s:N:"value" or :"value"
// (either with \" quotes). Returns the value's span.
bool value_after_key(std::string_view t, std::size_t pos, Span& out) {
  std::size_t i = pos;
  if (i < t.size() && t[i] == '\\') ++i;
  if (i < t.size() && t[i] == '"') ++i;
  if (i + 1 < t.size() && t[i] == ';' && (t[i + 1] == 's' || t[i + 1] == 'i')) {
    const bool integer = t[i + 1] == 'i';
    i += 2;
    if (i >= t.size() || t[i] != ':') return false;
    ++i;
    const std::size_t nb = i;
    while (i < t.size() && i < nb + 6 && t[i] >= '0' && t[i] <= '9') ++i;
    if (i == nb || i >= t.size()) return false;
    if (integer) {  // i:587;
      out = {nb, i};
      return t[i] == ';';
    }
    std::size_t n = 0;
    for (std::size_t k = nb; k < i; ++k) n = n * 10 + static_cast<std::size_t>(t[k] - '0');
    if (t[i] != ':') return false;
    ++i;
    if (i < t.size() && t[i] == '\\') ++i;
    if (i >= t.size() || t[i] != '"') return false;
    ++i;
    // The declared length counts unescaped bytes; inside SQL escapes may add some.
    if (i + n <= t.size() && (i + n == t.size() || t[i + n] == '"' || t[i + n] == '\\')) {
      out = {i, i + n};
      return true;
    }
    const std::size_t stop = std::min(t.size(), i + n + 64);
    for (std::size_t k = i; k + 1 < stop; ++k)
      if (t[k] == '\\' && t[k + 1] == '"') {
        out = {i, k};
        return true;
      }
    return false;
  }
  if (i < t.size() && t[i] == ':') {
    Value v;
    if (!read_value(t, i + 1, false, v)) return false;
    out = v.span;
    return true;
  }
  return false;
}

// The value of the first "KEY" (serialized or JSON) in [from, to).
std::string_view keyed_value(std::string_view t, std::size_t from, std::size_t to,
                             std::string_view key) {
  for (int n = 0; n < 32; ++n) {
    const std::size_t at = ifind(t, key, from, to);
    if (at == std::string_view::npos || at == 0) return {};
    from = at + 1;
    if (t[at - 1] != '"') continue;
    Span s;
    if (value_after_key(t, at + key.size(), s)) return t.substr(s.begin, s.size());
  }
  return {};
}

}  // namespace

void extract_sql(const Ctx& ctx, std::size_t start, std::size_t end) {
  const std::string_view t = ctx.text;
  // The key's name: back from the trigger to its opening quote.
  std::size_t kb = start;
  if (kb < t.size() && t[kb] == '\\') ++kb;
  if (kb < t.size() && t[kb] == '"') ++kb;
  while (kb > 0 && start - kb < 32 && is_ident(t[kb - 1])) --kb;
  if (kb == 0 || t[kb - 1] != '"') return;
  std::size_t ke = kb;
  while (ke < t.size() && is_ident(t[ke])) ++ke;
  std::string key;
  for (std::size_t k = kb; k < ke; ++k) key += lower(t[k]);
  if (std::find(kPasswordKeys.begin(), kPasswordKeys.end(), key) == kPasswordKeys.end()) return;
  Span s;
  if (!value_after_key(t, ke, s) || end > s.begin) return;
  const std::string_view val = t.substr(s.begin, s.size());
  if (is_placeholder(val)) return;
  const std::size_t from = s.begin > kAround ? s.begin - kAround : 0;
  const std::size_t to = std::min(t.size(), s.end + kAround);
  if (ifind(t, "smtp", from, to) == std::string_view::npos) return;
  Candidate c{"smtp-plugin-option-sql", Severity::high, s.begin, s.size()};
  c.message = "SMTP plugin password in stored options";
  for (std::string_view k : {"host", "hostname", "smtp_host", "smtp_server"})
    if (c.host.empty()) c.host = clean_host(keyed_value(t, from, to, k));
  for (std::string_view k : {"user", "username", "basic_auth_username", "smtp_user"})
    if (c.username.empty()) c.username = clean_field(keyed_value(t, from, to, k));
  for (std::string_view k : {"port", "smtp_port"})
    if (c.port == 0) c.port = parse_port(keyed_value(t, from, to, k));
  ctx.add(std::move(c));
}

}  // namespace sg::scan::detail
