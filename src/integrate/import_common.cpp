// Shared parts of the import parsers: kinds, detection, placeholders,
// redaction and rendering of scrub edits.
#include <algorithm>
#include <array>

#include "base/text.hpp"
#include "integrate/import.hpp"
#include "integrate/import_lines.hpp"

namespace sg::integrate {
namespace detail {

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> lines;
  std::size_t pos = 0, number = 1;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    Line l;
    l.begin = pos;
    l.number = number++;
    l.end = nl == std::string_view::npos ? text.size() : nl;
    if (l.end > l.begin && text[l.end - 1] == '\r') {
      --l.end;
      l.crlf = true;
    }
    lines.push_back(l);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return lines;
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (is_blank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

NameRole classify_name(std::string_view name) {
  std::string upper;
  for (char c : name) upper += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
  static constexpr std::array<std::pair<std::string_view, Role>, 11> kSuffixes{{
      {"_PASSWORD", Role::password},
      {"_PASSWD", Role::password},
      {"_PASS", Role::password},
      {"_PWD", Role::password},
      {"_USERNAME", Role::user},
      {"_USER", Role::user},
      {"_LOGIN", Role::user},
      {"_HOSTNAME", Role::host},
      {"_HOST", Role::host},
      {"_SERVER", Role::host},
      {"_SMARTHOST", Role::host},
  }};
  for (const auto& [suffix, role] : kSuffixes) {
    if (upper.size() <= suffix.size() ||
        upper.compare(upper.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string group = upper.substr(0, upper.size() - suffix.size());
    if (group.find("MAIL") == std::string::npos && group.find("SMTP") == std::string::npos &&
        group.find("SES") == std::string::npos)
      return {};
    return {role, group};
  }
  return {};
}

bool host_matches(std::string_view host_group, std::string_view group) {
  if (host_group == group) return true;
  return group.size() == host_group.size() + 5 &&
         group.substr(0, host_group.size()) == host_group &&
         group.substr(host_group.size()) == "_HOST";
}

std::string at_line(std::size_t line, std::string_view what) {
  return "line " + std::to_string(line) + ": " + std::string(what);
}

void add_finding(ParseResult& out, Finding f, std::string& password) {
  if (is_placeholder(password)) {
    wipe(password.data(), password.size());
    password.clear();
    return;
  }
  f.password = take_secret(password);
  out.findings.push_back(std::move(f));
}

}  // namespace detail

std::string_view source_kind_name(SourceKind kind) {
  switch (kind) {
    case SourceKind::exim_passwd_client:
      return "exim-passwd-client";
    case SourceKind::exim_config:
      return "exim-config";
    case SourceKind::postfix_sasl_passwd:
      return "postfix-sasl-passwd";
    case SourceKind::msmtprc:
      return "msmtprc";
    case SourceKind::dotenv:
      return "dotenv";
    case SourceKind::php:
      return "php";
  }
  return "unknown";
}

ParseResult parse_source(SourceKind kind, std::string_view text) {
  switch (kind) {
    case SourceKind::exim_passwd_client:
      return parse_exim_passwd_client(text);
    case SourceKind::exim_config:
      return parse_exim_config(text);
    case SourceKind::postfix_sasl_passwd:
      return parse_sasl_passwd(text);
    case SourceKind::msmtprc:
      return parse_msmtprc(text);
    case SourceKind::dotenv:
      return parse_dotenv(text);
    case SourceKind::php:
      return parse_php(text);
  }
  return {};
}

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Content sniffing for files whose name says nothing.
std::optional<SourceKind> detect_by_content(std::string_view text) {
  if (text.find("<?php") != std::string_view::npos) return SourceKind::php;
  if (text.find("client_send") != std::string_view::npos ||
      text.find("begin authenticators") != std::string_view::npos ||
      text.find("driver = plaintext") != std::string_view::npos)
    return SourceKind::exim_config;
  bool env = false, msmtp = false;
  for (const auto& l : detail::split_lines(text)) {
    std::string_view s = detail::trim_blanks(text.substr(l.begin, l.end - l.begin));
    if (s.empty() || s[0] == '#') continue;
    std::string_view word = s.substr(0, s.find_first_of(" \t="));
    if (word == "account" || word == "passwordeval" || word == "defaults" || word == "auth") {
      msmtp = true;
    } else if (s.find('=') != std::string_view::npos &&
               detail::classify_name(detail::trim_blanks(s.substr(0, s.find('=')))).role !=
                   detail::Role::none) {
      env = true;
    }
  }
  if (msmtp) return SourceKind::msmtprc;
  if (env) return SourceKind::dotenv;
  return std::nullopt;
}

}  // namespace

std::optional<SourceKind> detect_kind(const std::filesystem::path& path, std::string_view text) {
  const std::string name = path.filename().string();
  const std::string full = path.generic_string();
  if (name == "passwd.client" || name.rfind("passwd.client.", 0) == 0)
    return SourceKind::exim_passwd_client;
  if (name == "sasl_passwd" || name.rfind("sasl_passwd.", 0) == 0 ||
      ends_with(name, "_sasl_passwd"))
    return SourceKind::postfix_sasl_passwd;
  if (name == "msmtprc" || name == ".msmtprc" || ends_with(full, "/msmtp/config"))
    return SourceKind::msmtprc;
  if (name == ".env" || name.rfind(".env.", 0) == 0 || ends_with(name, ".env"))
    return SourceKind::dotenv;
  if (ends_with(name, ".php") || ends_with(name, ".phtml") || ends_with(name, ".inc"))
    return SourceKind::php;
  if (name == "exim.conf" || name == "exim4.conf" || name == "exim4.conf.template" ||
      name == "exim.conf.local" || full.find("/exim4/conf.d/") != std::string::npos ||
      full.find("/exim/") != std::string::npos)
    return SourceKind::exim_config;
  return detect_by_content(text);
}

bool is_placeholder(std::string_view value) {
  std::string v = to_lower(trim(value));
  if (v.empty()) return true;
  static constexpr std::array<std::string_view, 16> kWords{
      "null", "none",   "nil",     "changeme", "change_me", "change-me", "password",  "passwd",
      "pass", "secret", "example", "todo",     "xxx",       "...",       "undefined", "smtp_pass"};
  if (std::find(kWords.begin(), kWords.end(), v) != kWords.end()) return true;
  if (v.find("${") != std::string::npos || v.find("{{") != std::string::npos) return true;
  if (v.rfind("env(", 0) == 0 || v.rfind("getenv(", 0) == 0 || v.rfind("$_env", 0) == 0 ||
      v.rfind("$_server", 0) == 0)
    return true;
  if (v.rfind("your", 0) == 0 || v.rfind("<", 0) == 0 || v.rfind("[", 0) == 0) return true;
  if (std::all_of(v.begin(), v.end(), [&](char c) { return c == v[0]; }) &&
      (v[0] == 'x' || v[0] == '*' || v[0] == '.' || v[0] == '-' || v[0] == '#'))
    return true;
  // "smtp_password", "my-mail-pass": letters and separators around a "pass" word.
  if (v.find("pass") != std::string::npos && std::all_of(v.begin(), v.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || c == '_' || c == '-';
      }))
    return true;
  return false;
}

std::string redact(std::string_view password) {
  auto shown = [](char c) { return c > 0x20 && c < 0x7f ? c : '?'; };
  const std::string ellipsis = "\xE2\x80\xA6";  // …
  std::size_t keep = password.size() >= 16 ? 2 : password.size() >= 8 ? 1 : 0;
  std::string out;
  for (std::size_t i = 0; i < keep; ++i) out += shown(password[i]);
  out += ellipsis;
  for (std::size_t i = password.size() - keep; i < password.size(); ++i) out += shown(password[i]);
  return out;
}

std::string scrub_replacement(const Finding& finding, std::string_view entry) {
  return finding.scrub_before + std::string(entry) + finding.scrub_after;
}

Result<std::string> apply_edits(std::string_view text, std::vector<Edit> edits) {
  std::sort(edits.begin(), edits.end(),
            [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  std::string out;
  std::size_t pos = 0;
  for (const auto& e : edits) {
    if (e.begin < pos || e.end < e.begin || e.end > text.size())
      return make_error(Errc::invalid_input, "scrub edits overlap or fall outside the file");
    out.append(text.substr(pos, e.begin - pos));
    out += e.replacement;
    pos = e.end;
  }
  out.append(text.substr(pos));
  return out;
}

Secret take_secret(std::string& value) {
  Secret s = Secret::copy_of(value);
  wipe(value.data(), value.size());
  value.clear();
  return s;
}

}  // namespace sg::integrate
