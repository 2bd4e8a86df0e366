// Postfix main.cf as Postfix reads it (postconf(5)): a logical line starts
// with non-whitespace; lines starting with whitespace continue it; comment
// and blank lines anywhere are skipped and do not end a logical line. The
// editor replaces whole logical lines by byte offsets so the rest of the
// file is untouched.
#include <algorithm>
#include <string>
#include <vector>

#include "integrate/mta.hpp"

namespace sg::integrate {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

enum class Kind { blank, comment, continuation, start };

struct Line {
  std::size_t begin = 0, end = 0;  // end: before '\n' (and before a '\r' that precedes it)
  Kind kind = Kind::blank;
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t stop = nl == std::string_view::npos ? text.size() : nl;
    Line line{pos, stop, Kind::blank};
    if (line.end > line.begin && text[line.end - 1] == '\r') --line.end;
    std::string_view s = text.substr(pos, stop - pos);
    std::size_t first = 0;
    while (first < s.size() && is_space(s[first])) ++first;
    if (first == s.size())
      line.kind = Kind::blank;
    else if (s[first] == '#')
      line.kind = Kind::comment;
    else
      line.kind = first > 0 ? Kind::continuation : Kind::start;
    lines.push_back(line);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return lines;
}

// Words separated by single spaces.
void append_words(std::string& out, std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    std::size_t j = i;
    while (j < s.size() && !is_space(s[j])) ++j;
    if (j > i) {
      if (!out.empty()) out += ' ';
      out.append(s.substr(i, j - i));
    }
    i = j;
  }
}

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace

Result<std::vector<MainCfEntry>> parse_main_cf(std::string_view text, std::string_view source) {
  if (text.size() > kMaxMainCfSize)
    return make_error(Errc::invalid_input, std::string(source) + ": larger than 4 MiB");
  if (text.find('\0') != std::string_view::npos)
    return make_error(Errc::invalid_input, std::string(source) + ": contains a NUL byte");
  const std::vector<Line> lines = split_lines(text);
  std::vector<MainCfEntry> entries;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].kind != Kind::start) continue;  // a leading continuation belongs to nothing
    std::string_view first = text.substr(lines[i].begin, lines[i].end - lines[i].begin);
    std::size_t n = 0;
    while (n < first.size() && !is_space(first[n]) && first[n] != '=') ++n;
    std::size_t eq = n;
    while (eq < first.size() && is_space(first[eq])) ++eq;
    if (n == 0 || eq >= first.size() || first[eq] != '=')
      return make_error(Errc::invalid_input, std::string(source) + ":" + std::to_string(i + 1) +
                                                 ": missing '=' after parameter name: \"" +
                                                 shown(first) + "\"");
    MainCfEntry e;
    e.name = std::string(first.substr(0, n));
    append_words(e.value, first.substr(eq + 1));
    std::size_t last = i;
    for (std::size_t j = i + 1; j < lines.size() && lines[j].kind != Kind::start; ++j) {
      if (lines[j].kind != Kind::continuation) continue;
      append_words(e.value, text.substr(lines[j].begin, lines[j].end - lines[j].begin));
      last = j;
    }
    e.begin = lines[i].begin;
    e.end = lines[last].end;
    e.first_line = i + 1;
    e.last_line = last + 1;
    entries.push_back(std::move(e));
  }
  return entries;
}

std::optional<std::string> main_cf_value(const std::vector<MainCfEntry>& entries,
                                         std::string_view name) {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->name == name) return it->value;
  return std::nullopt;
}

Result<MainCfEdit> edit_main_cf(std::string_view text, const std::vector<MainCfSetting>& settings,
                                std::string_view source) {
  for (const auto& s : settings) {
    if (!valid_name(s.name) || s.value.find_first_of("\r\n") != std::string::npos)
      return make_error(Errc::invalid_input, "invalid main.cf setting '" + shown(s.name) + "'");
  }
  auto entries = parse_main_cf(text, source);
  if (!entries) return entries.error();
  const std::vector<Line> lines = split_lines(text);
  auto line_text = [&](std::size_t index) {
    return std::string(text.substr(lines[index].begin, lines[index].end - lines[index].begin));
  };

  struct Replacement {
    std::size_t begin, end;
    std::string with;
    MainCfChange change;
  };
  std::vector<Replacement> replacements;
  std::vector<const MainCfSetting*> missing;
  for (const auto& s : settings) {
    bool present = false;
    for (const auto& e : *entries) {
      if (e.name != s.name) continue;
      present = true;
      std::string want;
      append_words(want, s.value);
      if (e.value == want) continue;
      // Keep "name =" (and the blanks after '=') as written.
      std::string_view first = text.substr(e.begin, lines[e.first_line - 1].end - e.begin);
      std::size_t eq = first.find('=');
      std::size_t v = eq + 1;
      while (v < first.size() && (first[v] == ' ' || first[v] == '\t')) ++v;
      std::string with(first.substr(0, eq + 1));
      with += v < first.size() ? std::string(first.substr(eq + 1, v - eq - 1)) : std::string(" ");
      with += s.value;
      MainCfChange change;
      change.old_line = e.first_line;
      for (std::size_t l = e.first_line - 1; l < e.last_line; ++l)
        change.removed.push_back(line_text(l));
      change.added.push_back(with);
      replacements.push_back({e.begin, e.end, std::move(with), std::move(change)});
    }
    if (!present) missing.push_back(&s);
  }
  std::sort(replacements.begin(), replacements.end(),
            [](const Replacement& a, const Replacement& b) { return a.begin < b.begin; });

  MainCfEdit out;
  out.text.reserve(text.size() + 256);
  std::size_t pos = 0;
  for (auto& r : replacements) {
    out.text.append(text.substr(pos, r.begin - pos));
    out.text += r.with;
    pos = r.end;
    out.changes.push_back(std::move(r.change));
  }
  out.text.append(text.substr(pos));
  if (!missing.empty()) {
    MainCfChange change;
    change.old_line = lines.size() + 1;
    if (!out.text.empty() && out.text.back() != '\n') out.text += '\n';
    const std::string comment = "# smtpguard integrate postfix: relay through the local smtpguard";
    out.text += comment + "\n";
    change.added.push_back(comment);
    for (const MainCfSetting* s : missing) {
      std::string line = s->name + " = " + s->value;
      out.text += line + "\n";
      change.added.push_back(std::move(line));
    }
    out.changes.push_back(std::move(change));
  }
  return out;
}

std::string render_main_cf_diff(const MainCfEdit& edit, std::string_view label) {
  std::string out;
  if (!edit.changed()) return out;
  out += "--- " + std::string(label) + "\n+++ " + std::string(label) + "\n";
  long delta = 0;
  for (const auto& c : edit.changes) {
    const long old_start =
        c.removed.empty() ? static_cast<long>(c.old_line) - 1 : static_cast<long>(c.old_line);
    const long new_start =
        c.added.empty() ? old_start + delta - 1 : static_cast<long>(c.old_line) + delta;
    out += "@@ -" + std::to_string(old_start) + "," + std::to_string(c.removed.size()) + " +" +
           std::to_string(new_start) + "," + std::to_string(c.added.size()) + " @@\n";
    for (const auto& l : c.removed) out += "-" + l + "\n";
    for (const auto& l : c.added) out += "+" + l + "\n";
    delta += static_cast<long>(c.added.size()) - static_cast<long>(c.removed.size());
  }
  return out;
}

MainCfEdit line_diff(std::string_view from, std::string_view to) {
  MainCfEdit out;
  out.text = std::string(to);
  if (from == to) return out;
  auto lines_of = [](std::string_view t) {
    std::vector<std::string_view> v;
    for (const Line& l : split_lines(t)) v.push_back(t.substr(l.begin, l.end - l.begin));
    return v;
  };
  const auto a = lines_of(from), b = lines_of(to);
  std::size_t head = 0;
  while (head < a.size() && head < b.size() && a[head] == b[head]) ++head;
  std::size_t tail = 0;
  while (tail < a.size() - head && tail < b.size() - head &&
         a[a.size() - 1 - tail] == b[b.size() - 1 - tail])
    ++tail;
  const std::size_t n = a.size() - head - tail, m = b.size() - head - tail;
  // Walk the LCS table; each maximal run of non-common lines is a hunk.
  std::vector<std::pair<std::size_t, std::size_t>> common;  // (i, j) into the middles
  if (n <= 2000 && m <= 2000) {
    std::vector<std::vector<std::uint16_t>> lcs(n + 1, std::vector<std::uint16_t>(m + 1, 0));
    for (std::size_t i = n; i-- > 0;)
      for (std::size_t j = m; j-- > 0;)
        lcs[i][j] = a[head + i] == b[head + j] ? lcs[i + 1][j + 1] + 1
                                               : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    for (std::size_t i = 0, j = 0; i < n && j < m;) {
      if (a[head + i] == b[head + j])
        common.emplace_back(i++, j++);
      else if (lcs[i + 1][j] >= lcs[i][j + 1])
        ++i;
      else
        ++j;
    }
  }
  common.emplace_back(n, m);  // sentinel
  std::size_t i = 0, j = 0;
  for (auto [ci, cj] : common) {
    if (ci > i || cj > j) {
      MainCfChange c;
      c.old_line = head + i + 1;
      for (; i < ci; ++i) c.removed.emplace_back(a[head + i]);
      for (; j < cj; ++j) c.added.emplace_back(b[head + j]);
      out.changes.push_back(std::move(c));
    }
    i = ci + 1;
    j = cj + 1;
  }
  if (out.changes.empty()) out.changes.push_back({head + 1, {}, {}});  // line endings only
  return out;
}

Result<std::string> postfix_relayhost(const config::Config& cfg) {
  for (const auto& entry : cfg.relay.listen) {
    auto addr = config::parse_listen_address(entry);
    if (!addr) continue;
    std::string host = addr->host == "localhost" ? "127.0.0.1" : addr->host;
    if (host.rfind("127.", 0) == 0 && config::is_loopback_host(host))
      return "[" + host + "]:" + std::to_string(addr->port);
  }
  return make_error(Errc::config,
                    "[relay] listen has no IPv4 loopback address (127.0.0.1:PORT) for Postfix's "
                    "relayhost");
}

std::vector<MainCfSetting> postfix_settings(const std::vector<MainCfEntry>& current,
                                            std::string_view relayhost,
                                            const std::filesystem::path& map_path,
                                            bool relay_has_tls) {
  std::vector<MainCfSetting> out = {
      {"relayhost", std::string(relayhost)},
      {"smtp_sasl_auth_enable", "yes"},
      {"smtp_sasl_password_maps", "hash:" + map_path.string()},
      {"smtp_sasl_security_options", "noanonymous"},
  };
  // A level that insists on TLS (and, for most, on a certificate naming the
  // host) cannot be met by the loopback hop; the relay does TLS upstream.
  auto level = main_cf_value(current, "smtp_tls_security_level");
  if (level && !level->empty()) {
    const bool verifies = *level == "verify" || *level == "secure" || *level == "dane-only" ||
                          *level == "fingerprint";
    if (verifies || (*level == "encrypt" && !relay_has_tls))
      out.push_back({"smtp_tls_security_level", "may"});
  } else if (main_cf_value(current, "smtp_enforce_tls").value_or("no") == "yes" && !relay_has_tls) {
    out.push_back({"smtp_tls_security_level", "may"});
  }
  return out;
}

Secret render_sasl_map(std::string_view nexthop, std::string_view user, const Secret& password) {
  const std::size_t size = nexthop.size() + 1 + user.size() + 1 + password.size() + 1;
  Secret out(size);
  auto* p = reinterpret_cast<char*>(out.data());
  p = std::copy(nexthop.begin(), nexthop.end(), p);
  *p++ = ' ';
  p = std::copy(user.begin(), user.end(), p);
  *p++ = ':';
  std::string_view pw = password.view();
  p = std::copy(pw.begin(), pw.end(), p);
  *p = '\n';
  return out;
}

std::optional<Secret> sasl_map_password(std::string_view map_text, std::string_view nexthop,
                                        std::string_view user) {
  std::size_t pos = 0;
  while (pos < map_text.size()) {
    std::size_t nl = map_text.find('\n', pos);
    std::string_view line =
        map_text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? map_text.size() : nl + 1;
    std::size_t a = 0;
    while (a < line.size() && is_space(line[a])) ++a;
    std::size_t b = a;
    while (b < line.size() && !is_space(line[b])) ++b;
    if (line.substr(a, b - a) != nexthop) continue;
    std::size_t v = b;
    while (v < line.size() && is_space(line[v])) ++v;
    std::size_t end = line.size();
    while (end > v && is_space(line[end - 1])) --end;
    std::string_view value = line.substr(v, end - v);
    std::size_t colon = value.find(':');
    if (colon == std::string_view::npos || value.substr(0, colon) != user) return std::nullopt;
    return Secret::copy_of(value.substr(colon + 1));
  }
  return std::nullopt;
}

}  // namespace sg::integrate
