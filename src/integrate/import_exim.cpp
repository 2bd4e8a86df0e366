// Exim: passwd.client (an nwildlsearch file, as Debian's authenticators read
// it) and authenticators with literal client_send / client_secret, decoded
// the way Exim reads them (spec 6.17 quoted strings, 6.20 lists, 11.1-11.2
// expansion escapes, plaintext's circumflex-to-NUL rule).
#include <cctype>
#include <optional>

#include "base/text.hpp"
#include "integrate/import.hpp"
#include "integrate/import_lines.hpp"

namespace sg::integrate {
namespace {

using detail::is_blank;
using detail::Line;

bool is_odigit(char c) {
  return c >= '0' && c <= '7';
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One backslash escape (s[i] == '\\'), Exim style; appends the character
// and returns the index after the sequence.
std::size_t exim_escape(std::string_view s, std::size_t i, std::string& out) {
  if (i + 1 >= s.size()) {
    out += '\\';
    return i + 1;
  }
  char c = s[i + 1];
  if (c == 'n' || c == 'r' || c == 't') {
    out += c == 'n' ? '\n' : c == 'r' ? '\r' : '\t';
    return i + 2;
  }
  if (is_odigit(c)) {
    int v = 0;
    std::size_t j = i + 1;
    for (int k = 0; k < 3 && j < s.size() && is_odigit(s[j]); ++k, ++j) v = v * 8 + (s[j] - '0');
    out += static_cast<char>(v & 0xff);
    return j;
  }
  if (c == 'x' && i + 2 < s.size() && hex_value(s[i + 2]) >= 0) {
    int v = 0;
    std::size_t j = i + 2;
    for (int k = 0; k < 2 && j < s.size() && hex_value(s[j]) >= 0; ++k, ++j)
      v = v * 16 + hex_value(s[j]);
    out += static_cast<char>(v);
    return j;
  }
  out += c;
  return i + 2;
}

// A quoted config string (6.17) starting at s[0] == '"'.
std::string exim_unquote(std::string_view s) {
  std::string out;
  for (std::size_t i = 1; i < s.size();) {
    if (s[i] == '"') break;
    if (s[i] == '\\') {
      i = exim_escape(s, i, out);
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Expands a string that must be literal: escapes and \N...\N; nullopt when
// it holds an expansion ($...), which only Exim can evaluate.
std::optional<std::string> exim_expand_literal(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'N') {
      std::size_t close = s.find("\\N", i + 2);
      std::size_t stop = close == std::string_view::npos ? s.size() : close;
      out.append(s.substr(i + 2, stop - i - 2));
      i = close == std::string_view::npos ? s.size() : close + 2;
    } else if (s[i] == '\\') {
      i = exim_escape(s, i, out);
    } else if (s[i] == '$') {
      wipe(out.data(), out.size());
      return std::nullopt;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Splits an Exim list (6.20-6.22): "<X" changes the separator, a doubled
// separator is a literal one, items are trimmed, a trailing empty item dropped.
std::vector<std::string> exim_list(std::string_view s) {
  char sep = ':';
  s = trim(s);
  if (s.size() >= 2 && s[0] == '<' && std::ispunct(static_cast<unsigned char>(s[1]))) {
    sep = s[1];
    s.remove_prefix(2);
  }
  std::vector<std::string> items;
  std::string cur;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == sep) {
      if (i + 1 < s.size() && s[i + 1] == sep) {
        cur += sep;
        ++i;
        continue;
      }
      items.emplace_back(trim(cur));
      wipe(cur.data(), cur.size());
      cur.clear();
    } else {
      cur += s[i];
    }
  }
  std::string last(trim(cur));
  wipe(cur.data(), cur.size());
  if (!last.empty() || items.empty()) items.push_back(std::move(last));
  return items;
}

// plaintext's rule: a single ^ is NUL, ^^ is a literal ^.
std::string circumflex(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '^' && i + 1 < s.size() && s[i + 1] == '^') {
      out += '^';
      ++i;
    } else {
      out += s[i] == '^' ? '\0' : s[i];
    }
  }
  return out;
}

void wipe_all(std::vector<std::string>& v) {
  for (auto& s : v) wipe(s.data(), s.size());
}

// A logical config line: physical lines joined at trailing backslashes.
struct Logical {
  std::string text;  // leading/trailing white space removed
  std::size_t begin = 0, end = 0, line = 0;
  std::string indent;
};

std::vector<Logical> exim_logical_lines(std::string_view text) {
  std::vector<Logical> out;
  auto lines = detail::split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view raw = text.substr(lines[i].begin, lines[i].end - lines[i].begin);
    std::string_view s = detail::trim_blanks(raw);
    if (s.empty() || s[0] == '#') continue;
    Logical l;
    l.begin = lines[i].begin;
    l.line = lines[i].number;
    l.indent = std::string(raw.substr(0, raw.find_first_not_of(" \t")));
    l.end = lines[i].end;
    while (!s.empty() && s.back() == '\\' && i + 1 < lines.size()) {
      l.text.append(s.substr(0, s.size() - 1));
      // Comment lines may sit inside a continuation; an empty line ends it.
      std::size_t j = i + 1;
      while (j < lines.size()) {
        std::string_view n =
            detail::trim_blanks(text.substr(lines[j].begin, lines[j].end - lines[j].begin));
        if (n.empty() || n[0] != '#') break;
        ++j;
      }
      if (j >= lines.size()) break;
      std::string_view n =
          detail::trim_blanks(text.substr(lines[j].begin, lines[j].end - lines[j].begin));
      if (n.empty()) break;
      i = j;
      s = n;
      l.end = lines[i].end;
    }
    if (!s.empty() && s.back() == '\\') s.remove_suffix(1);
    l.text.append(s);
    out.push_back(std::move(l));
  }
  return out;
}

struct Option {
  std::string value;
  std::size_t begin = 0, end = 0, line = 0;
  std::string indent;
  bool set = false;
};

struct Driver {
  std::string driver, public_name;
  Option client_send, client_name, client_secret;
};

// The option value as Exim reads it (6.17).
std::string option_value(std::string_view raw) {
  raw = trim(raw);
  if (!raw.empty() && raw[0] == '"') return exim_unquote(raw);
  return std::string(raw);
}

Finding option_finding(const Option& o, std::string_view option, std::string_view host) {
  Finding f;
  f.kind = "exim-config";
  f.line = o.line;
  f.host = std::string(host);
  f.begin = o.begin;
  f.end = o.end;
  f.scrub_before = o.indent + "# " + std::string(option) + " moved to smtpguard vault entry ";
  f.scrub_after = " (smtpguard import)";
  return f;
}

// Exim replaces macros (upper-case names defined as NAME = value) before
// anything else; a value that uses one is not read here.
bool uses_macro(std::string_view value, const std::vector<std::string>& macros) {
  for (const auto& m : macros)
    if (value.find(m) != std::string_view::npos) return true;
  return false;
}

void finish_driver(Driver& d, std::string_view host, const std::vector<std::string>& macros,
                   ParseResult& out) {
  for (Option* o : {&d.client_send, &d.client_secret}) {
    if (o->set && uses_macro(o->value, macros)) {
      out.warnings.push_back(detail::at_line(o->line, "uses a macro; not imported"));
      o->set = false;
    }
  }
  if (d.client_send.set) {
    const Option& o = d.client_send;
    std::vector<std::string> items = exim_list(o.value);
    std::vector<std::string> expanded;
    bool literal = true;
    for (auto& item : items) {
      auto e = exim_expand_literal(item);
      if (!e) {
        literal = false;
        break;
      }
      expanded.push_back(circumflex(*e));
      wipe(e->data(), e->size());
    }
    wipe_all(items);
    std::string user, password;
    bool plain =
        iequals(d.public_name, "PLAIN") || (d.public_name.empty() && expanded.size() == 1 &&
                                            expanded[0].find('\0') != std::string::npos);
    if (!literal) {
      // Computed (a lookup such as Debian's passwd.client one): nothing literal here.
    } else if (plain && !expanded.empty()) {
      auto parts = split(expanded[0], '\0');
      if (parts.size() == 3) {
        user = std::string(parts[1]);
        password = std::string(parts[2]);
      } else {
        out.warnings.push_back(
            detail::at_line(o.line, "client_send for PLAIN is not ^user^password"));
      }
    } else if (expanded.size() >= 3) {
      user = expanded[1];
      password = expanded[2];
    } else {
      out.warnings.push_back(detail::at_line(o.line, "client_send has no username and password"));
    }
    wipe_all(expanded);
    if (literal && !user.empty()) {
      Finding f = option_finding(o, "client_send", host);
      f.username = user;
      detail::add_finding(out, std::move(f), password);
    }
    wipe(password.data(), password.size());
  }
  if (d.client_secret.set && iequals(d.driver, "cram_md5")) {
    auto secret = exim_expand_literal(d.client_secret.value);
    auto name = exim_expand_literal(d.client_name.value);
    if (secret && name && !name->empty()) {
      Finding f = option_finding(d.client_secret, "client_secret", host);
      f.username = *name;
      detail::add_finding(out, std::move(f), *secret);
    }
    if (secret) wipe(secret->data(), secret->size());
  }
  for (Option* o : {&d.client_send, &d.client_name, &d.client_secret})
    wipe(o->value.data(), o->value.size());
  d = Driver{};
}

bool is_driver_header(std::string_view s) {
  if (s.size() < 2 || s.back() != ':') return false;
  std::string_view name = trim(s.substr(0, s.size() - 1));
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

// The smarthost from a manualroute router ("route_list = * host::587 byname").
std::string smarthost(const std::vector<Logical>& lines) {
  for (const auto& l : lines) {
    std::string_view s = l.text;
    if (s.rfind("route_list", 0) != 0) continue;
    std::size_t eq = s.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view v = trim(s.substr(eq + 1));
    if (v.empty() || v[0] != '*') continue;
    v = trim(v.substr(1));
    std::string_view host = v.substr(0, v.find_first_of(" \t;"));
    host = host.substr(0, host.find("::"));
    if (!host.empty() && host.find('$') == std::string_view::npos) return std::string(host);
  }
  return {};
}

}  // namespace

ParseResult parse_exim_passwd_client(std::string_view text) {
  ParseResult out;
  auto is_comment = [](std::string_view s) { return s[0] == '#'; };  // even inside an entry
  detail::for_each_continued_entry(text, is_comment, [&](const detail::ContinuedEntry& e) {
    std::string_view s = e.first;
    std::string key;
    std::size_t i = 0;
    if (s[0] == '"') {  // quoted key, Exim escapes (lsearch, spec 9.3)
      for (i = 1; i < s.size() && s[i] != '"';) {
        if (s[i] == '\\') {
          i = exim_escape(s, i, key);
        } else {
          key += s[i++];
        }
      }
      if (i < s.size()) ++i;
    } else {
      while (i < s.size() && s[i] != ':' && !is_blank(s[i])) key += s[i++];
    }
    while (i < s.size() && is_blank(s[i])) ++i;
    if (i < s.size() && s[i] == ':') ++i;
    std::string joined = std::string(s.substr(i)) + e.more;
    std::string data(trim(joined));
    wipe(joined.data(), joined.size());
    std::size_t colon = data.find(':');
    if (data.empty()) return;
    if (colon == std::string::npos || colon == 0) {
      out.warnings.push_back(detail::at_line(e.line, "not host:user:password"));
      wipe(data.data(), data.size());
      return;
    }
    Finding f;
    f.kind = "exim-passwd-client";
    f.line = e.line;
    f.host = key;
    f.username = data.substr(0, colon);
    f.begin = e.begin;
    f.end = e.end;
    f.scrub_before = "# " + key + ":" + f.username + ":<password moved to smtpguard vault entry ";
    f.scrub_after = ">";
    std::string password = data.substr(colon + 1);
    wipe(data.data(), data.size());
    detail::add_finding(out, std::move(f), password);
  });
  return out;
}

ParseResult parse_exim_config(std::string_view text) {
  ParseResult out;
  auto lines = exim_logical_lines(text);
  const std::string host = smarthost(lines);
  std::vector<std::string> macros;
  for (const auto& l : lines) {
    std::size_t n = 0;
    while (n < l.text.size() &&
           (std::isalnum(static_cast<unsigned char>(l.text[n])) || l.text[n] == '_'))
      ++n;
    std::size_t eq = l.text.find_first_not_of(" \t", n);
    if (n > 0 && l.text[0] >= 'A' && l.text[0] <= 'Z' && eq != std::string::npos &&
        l.text[eq] == '=')
      macros.push_back(l.text.substr(0, n));
  }
  Driver d;
  for (auto& l : lines) {
    std::string_view s = l.text;
    if (s[0] == '.' || s.rfind("begin ", 0) == 0 || is_driver_header(s)) {
      if (s[0] != '.') finish_driver(d, host, macros, out);
      continue;
    }
    std::size_t eq = s.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = trim(s.substr(0, eq));
    if (name.rfind("hide ", 0) == 0) name = trim(name.substr(5));
    Option* o = name == "client_send"     ? &d.client_send
                : name == "client_name"   ? &d.client_name
                : name == "client_secret" ? &d.client_secret
                                          : nullptr;
    if (name == "driver") d.driver = option_value(s.substr(eq + 1));
    if (name == "public_name") d.public_name = option_value(s.substr(eq + 1));
    if (o != nullptr) {
      wipe(o->value.data(), o->value.size());
      o->value = option_value(s.substr(eq + 1));
      o->begin = l.begin;
      o->end = l.end;
      o->line = l.line;
      o->indent = l.indent;
      o->set = true;
    }
    wipe(l.text.data(), l.text.size());
  }
  finish_driver(d, host, macros, out);
  for (auto& l : lines) wipe(l.text.data(), l.text.size());
  return out;
}

}  // namespace sg::integrate
