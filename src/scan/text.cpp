// Bounded text helpers for the extractors: lines around an offset, the value
// assigned after a key, and sibling settings (user, host, port) nearby.
#include <algorithm>
#include <charconv>

#include "scan/internal.hpp"

namespace sg::scan::detail {
namespace {

constexpr std::size_t kMaxLine = 4096;  // a longer line is cut here
constexpr std::size_t kLineStep = 400;  // per neighbouring line in lines_around
constexpr std::size_t kMaxValue = 1024;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::size_t back_to_newline(std::string_view t, std::size_t pos, std::size_t limit) {
  const std::size_t stop = pos > limit ? pos - limit : 0;
  while (pos > stop && t[pos - 1] != '\n') --pos;
  return pos;
}
std::size_t on_to_newline(std::string_view t, std::size_t pos, std::size_t limit) {
  const std::size_t stop = std::min(t.size(), pos + limit);
  while (pos < stop && t[pos] != '\n' && t[pos] != '\r') ++pos;
  return pos;
}

}  // namespace

std::size_t line_begin(std::string_view t, std::size_t pos) {
  return back_to_newline(t, std::min(pos, t.size()), kMaxLine);
}
std::size_t line_end(std::string_view t, std::size_t pos) {
  return on_to_newline(t, pos, kMaxLine);
}

Span lines_around(std::string_view t, std::size_t pos, int before, int after) {
  pos = std::min(pos, t.size());
  std::size_t b = back_to_newline(t, pos, kLineStep);
  for (int i = 0; i < before && b > 0; ++i) b = back_to_newline(t, b - 1, kLineStep);
  std::size_t e = on_to_newline(t, pos, kLineStep);
  for (int i = 0; i < after && e < t.size(); ++i) {
    if (t[e] == '\r' && e + 1 < t.size() && t[e + 1] == '\n') ++e;
    e = on_to_newline(t, e + 1, kLineStep);
  }
  return {b, e};
}

bool assigned_value(std::string_view t, std::size_t pos, Value& v) {
  const std::size_t n = t.size();
  std::size_t i = pos;
  for (int k = 0;
       k < 4 && i < n &&
       (t[i] == '\'' || t[i] == '"' || t[i] == '`' || t[i] == ']' || t[i] == '\\' || t[i] == ')');
       ++k)
    ++i;
  while (i < n && is_blank(t[i])) ++i;
  if (i >= n) return false;
  bool xml = false;
  if (t[i] == '=' && i + 1 < n && t[i + 1] == '>') {
    i += 2;
  } else if (t[i] == ':' && i + 1 < n && t[i + 1] == '=') {
    i += 2;
  } else if (t[i] == '=' || t[i] == ':' || t[i] == ',') {
    ++i;
  } else if (t[i] == '>') {
    xml = true;
    ++i;
  } else {
    return false;
  }
  return read_value(t, i, xml, v);
}

bool read_value(std::string_view t, std::size_t i, bool xml, Value& v) {
  const std::size_t n = t.size();
  while (i < n && is_blank(t[i])) ++i;
  if (i >= n) {
    v = Value{{i, i}, false, 0};
    return true;
  }
  const std::size_t stop = std::min(n, i + kMaxValue);
  if (xml) {
    std::size_t e = i;
    while (e < stop && t[e] != '<' && t[e] != '\n' && t[e] != '\r') ++e;
    if (e >= stop || t[e] != '<') return false;
    v = Value{{i, e}, true, '<'};
    return true;
  }
  char q = t[i];
  bool escaped_quote = false;
  if (q == '\\' && i + 1 < n && (t[i + 1] == '"' || t[i + 1] == '\'')) {
    escaped_quote = true;  // \"value\" inside an SQL string
    q = t[i + 1];
    ++i;
  }
  if (q == '\'' || q == '"' || q == '`') {
    const std::size_t b = i + 1;
    for (std::size_t e = b; e < stop; ++e) {
      if (t[e] == '\n' || t[e] == '\r') return false;
      if (escaped_quote) {
        if (t[e] == '\\' && e + 1 < n && t[e + 1] == q) {
          v = Value{{b, e}, true, q};
          return true;
        }
        continue;
      }
      if (t[e] == '\\') {
        ++e;
        continue;
      }
      if (t[e] == q) {
        v = Value{{b, e}, true, q};
        return true;
      }
    }
    return false;
  }
  if (q == '#') {  // a comment: nothing assigned
    v = Value{{i, i}, false, 0};
    return true;
  }
  std::size_t e = i;
  while (e < stop) {
    const char c = t[e];
    if (is_blank(c) || c == '\r' || c == '\n' || c == ',' || c == ';' || c == ')' || c == ']' ||
        c == '}' || c == '<' || c == '"' || c == '\'' || c == '\0')
      break;
    ++e;
  }
  if (e >= stop && e < n) return false;
  v = Value{{i, e}, false, 0};
  return true;
}

bool value_is_secret(const Ctx& ctx, std::string_view t, const Value& v) {
  const std::string_view val = t.substr(v.span.begin, v.span.size());
  if (is_placeholder(val)) return false;
  if (!v.quoted && !ctx.file.literal_config && is_code_reference(val)) return false;
  return true;
}

std::size_t ifind(std::string_view t, std::string_view needle, std::size_t from, std::size_t to) {
  to = std::min(to, t.size());
  if (needle.empty() || from >= to || to - from < needle.size()) return std::string_view::npos;
  const auto b = t.begin() + static_cast<std::ptrdiff_t>(from);
  const auto e = t.begin() + static_cast<std::ptrdiff_t>(to);
  const auto it = std::search(b, e, needle.begin(), needle.end(),
                              [](char a, char c) { return lower(a) == lower(c); });
  return it == e ? std::string_view::npos : static_cast<std::size_t>(it - t.begin());
}

bool icontains(std::string_view t, std::string_view needle) {
  return ifind(t, needle, 0, t.size()) != std::string_view::npos;
}

std::string_view find_setting(std::string_view t, Span s,
                              const std::vector<std::string_view>& keys) {
  for (std::string_view key : keys) {
    std::size_t from = s.begin;
    for (int k = 0; k < 16; ++k) {
      const std::size_t at = ifind(t, key, from, s.end);
      if (at == std::string_view::npos) break;
      from = at + 1;
      const std::size_t after = at + key.size();
      if (is_ident(key.front()) && at > 0 && is_ident(t[at - 1])) continue;
      if (is_ident(key.back()) && after < t.size() && is_ident(t[after])) continue;
      Value v;
      if (!assigned_value(t, after, v)) continue;
      const std::string_view val = t.substr(v.span.begin, v.span.size());
      if (is_template(val)) continue;
      return val;
    }
  }
  return {};
}

std::string clean_field(std::string_view s) {
  if (s.empty() || s.size() > 255) return {};
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return {};
  }
  return std::string(s);
}

std::uint16_t parse_port(std::string_view s) {
  unsigned v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data() || v == 0 || v > 65535) return 0;
  return static_cast<std::uint16_t>(v);
}

std::string clean_host(std::string_view s) {
  if (const std::size_t p = s.find("://"); p != std::string_view::npos) s.remove_prefix(p + 3);
  const std::size_t cut = s.find_first_of(";, \t");
  if (cut != std::string_view::npos) s = s.substr(0, cut);
  if (!s.empty() && s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return {};
    return clean_field(s.substr(1, close - 1));
  }
  if (const std::size_t colon = s.find(':'); colon != std::string_view::npos)
    s = s.substr(0, colon);
  return clean_field(s);
}

}  // namespace sg::scan::detail
