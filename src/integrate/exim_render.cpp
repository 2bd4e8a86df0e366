// What `integrate exim` writes into Exim's files, and the parsers of those
// files and of its own backup manifest. No I/O here (fuzzed).
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/encoding.hpp"
#include "base/text.hpp"
#include "integrate/exim.hpp"

namespace sg::integrate::exim {
namespace {

constexpr std::size_t kMaxLines = 200000;  // bounds every line loop
constexpr std::string_view kBase64Tag = "{base64}";
constexpr std::string_view kEntryMarker =
    "# smtpguard: upstream credential (smtpguard integrate exim)";

// Bytes that Exim's expansion of client_send or a header must not see raw:
// they become '_' (';' separates our header's fields).
constexpr std::string_view kHeaderSafe = "\\N[^\\x21-\\x3a\\x3c-\\x7e]\\N";

std::string marker_comment() {
  return std::string(kBeginMarker) +
         ": managed by `smtpguard integrate exim`; `--undo` restores the previous files\n";
}

std::string wrap(std::string_view body) {
  return marker_comment() + std::string(body) + std::string(kEndMarker) + "\n";
}

std::string domains_line(bool has_local_domains_list) {
  return has_local_domains_list ? "  domains = ! +local_domains\n"
                                : "  domains = ! @ : ! localhost\n";
}

std::vector<std::string_view> lines_of(std::string_view text) {  // each keeps its '\n'
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < text.size() && out.size() < kMaxLines) {
    std::size_t end = text.find('\n', pos);
    end = end == std::string_view::npos ? text.size() : end + 1;
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  if (pos < text.size()) out.push_back(text.substr(pos));  // beyond the bound: one piece
  return out;
}

std::string_view without_eol(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

bool is_section_start(std::string_view line, std::string_view section) {
  auto t = trim(without_eol(line));
  if (!istarts_with(t, "begin")) return false;
  t.remove_prefix(5);
  if (t.empty() || (t.front() != ' ' && t.front() != '\t')) return false;
  return iequals(trim(t), section);
}

bool safe_path(std::string_view p) {  // used verbatim inside ${readfile{}} and lookups
  if (p.empty() || p.front() != '/') return false;
  for (char c : p)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '.' || c == '_' ||
          c == '-' || c == '+' || c == '@' || c == ','))
      return false;
  return true;
}

bool safe_host(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
          c == ':'))
      return false;
  return true;
}

// The lsearch key of a passwd.client line ("" for comments, blank and
// continuation lines).
std::string lsearch_key(std::string_view line) {
  line = without_eol(line);
  if (line.empty() || line.front() == '#' || line.front() == ' ' || line.front() == '\t') return {};
  if (line.front() == '"') {
    std::string key;
    for (std::size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size())
        key += line[++i];
      else if (line[i] == '"')
        break;
      else
        key += line[i];
    }
    return key;
  }
  const std::size_t end = line.find_first_of(": \t");
  return std::string(line.substr(0, end));
}

std::string_view lsearch_data(std::string_view line) {
  line = without_eol(line);
  std::size_t pos = 0;
  if (!line.empty() && line.front() == '"') {
    for (pos = 1; pos < line.size() && line[pos] != '"'; ++pos)
      if (line[pos] == '\\') ++pos;
    ++pos;
  } else {
    pos = line.find_first_of(": \t");
    if (pos == std::string_view::npos) return {};
  }
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  if (pos < line.size() && line[pos] == ':') ++pos;
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  return pos < line.size() ? line.substr(pos) : std::string_view{};
}

bool needs_encoding(std::string_view pw) {
  if (pw.starts_with(kBase64Tag)) return true;
  if (pw.back() == ' ' || pw.back() == '\t') return true;
  for (char c : pw) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

}  // namespace

std::string_view layout_name(Layout layout) {
  switch (layout) {
    case Layout::debian_split:
      return "Debian split configuration (conf.d)";
    case Layout::debian_unsplit:
      return "Debian unsplit configuration (exim4.conf.template)";
    case Layout::cpanel:
      return "cPanel-style /etc/exim.conf";
    case Layout::single_file:
      return "configuration file";
  }
  return "?";
}

Blocks smarthost_blocks(const SmarthostParams& p) {
  Blocks b;
  b.router =
      wrap(fmt::format("# Mail for other domains goes to the smtpguard relay on 127.0.0.1:{0}.\n"
                       "smtpguard_relay:\n"
                       "  driver = manualroute\n"
                       "{1}"
                       "  route_list = * 127.0.0.1\n"
                       "  self = send\n"
                       "  transport = smtpguard_relay_smtp\n"
                       "  no_more\n",
                       p.port, domains_line(p.has_local_domains_list)));
  // The relay trusts the submitter header only from this identity; one a
  // client supplied is removed first. Who: the SMTP AUTH id, else the
  // caller's login name for local submissions ($sender_ident; Exim has no
  // uid-to-name variable), else the unauthenticated SMTP client's address.
  const std::string clean = std::string(kHeaderSafe);
  b.transport = wrap(fmt::format(
      "smtpguard_relay_smtp:\n"
      "  driver = smtp\n"
      "  port = {0}\n"
      "  hosts_require_auth = *\n"
      "  hosts_avoid_tls = *\n"
      "  headers_remove = {1}\n"
      "  headers_add = {1}: ${{if def:authenticated_id "
      "{{auth:${{sg{{$authenticated_id}}{{{2}}}{{_}}}}}}"
      "{{${{if def:sender_host_address {{host:$sender_host_address}}"
      "{{local:${{sg{{$sender_ident}}{{{2}}}{{_}}}}}}}}}}}}"
      "${{if def:h_X-PHP-Script: {{;script=${{sg{{$h_X-PHP-Script:}}{{{2}}}{{_}}}}}}}}\n",
      p.port, kSubmitterHeader, clean));
  switch (p.login) {
    case LocalLogin::debian_passwd_client:
      // Debian's plain/login client authenticators send only over TLS unless
      // this macro is set; the passwd.client entry names 127.0.0.1 only.
      b.main = wrap(
          "# Debian's client authenticators may log in to the relay on loopback without TLS.\n"
          ".ifndef AUTH_CLIENT_ALLOW_NOTLS_PASSWORDS\n"
          "AUTH_CLIENT_ALLOW_NOTLS_PASSWORDS = 1\n"
          ".endif\n");
      break;
    case LocalLogin::own_plain:
    case LocalLogin::own_login: {
      const bool plain = p.login == LocalLogin::own_plain;
      const std::string pw = "${sg{${readfile{" + p.secret_path + "}}}{\\N\\^\\N}{^^}}";
      b.auth = wrap(fmt::format(
          "# The local password of smtpguard's identity '{0}' (not the upstream secret).\n"
          "smtpguard_relay_login:\n"
          "  driver = plaintext\n"
          "  public_name = {1}\n"
          "  client_condition = ${{if eq{{$transport_name}}{{smtpguard_relay_smtp}}}}\n"
          "  client_send = {2}\n",
          kIdentity, plain ? "PLAIN" : "LOGIN",
          plain ? "^" + std::string(kIdentity) + "^" + pw
                : "<; ; " + std::string(kIdentity) + " ; " + pw));
      break;
    }
  }
  return b;
}

Result<Blocks> passwd_client_blocks(const PasswdClientParams& p) {
  if (!safe_host(p.host))
    return make_error(Errc::invalid_input,
                      "upstream host '" + p.host + "' cannot be used in Exim's files");
  if (!safe_path(p.passwd_client_path))
    return make_error(Errc::invalid_input,
                      "path '" + p.passwd_client_path + "' has characters Exim would expand");
  if (!p.ca_file.empty() && !safe_path(p.ca_file))
    return make_error(Errc::invalid_input,
                      "ca_file '" + p.ca_file + "' has characters Exim would expand");
  const bool tls = p.tls != config::TlsMode::none;
  Blocks b;
  b.router =
      // byname: the system resolver (/etc/hosts first), as Debian's own
      // smarthost router does; a DNS-only lookup fails for hosts-file names.
      wrap(fmt::format("# Mail for other domains goes straight to the upstream {0}:{1}.\n"
                       "smtpguard_upstream:\n"
                       "  driver = manualroute\n"
                       "{2}"
                       "  route_list = * {0} byname\n"
                       "  self = send\n"
                       "  transport = smtpguard_upstream_smtp\n"
                       "  no_more\n",
                       p.host, p.port, domains_line(p.has_local_domains_list)));
  std::string t = fmt::format(
      "smtpguard_upstream_smtp:\n"
      "  driver = smtp\n"
      "  port = {}\n"
      "  hosts_require_auth = *\n"
      "  headers_remove = {}\n",
      p.port, kSubmitterHeader);
  if (p.tls == config::TlsMode::implicit) t += "  protocol = smtps\n";
  if (tls) {
    t += "  hosts_require_tls = *\n  tls_verify_hosts = *\n  tls_sni = " + p.host + "\n";
    t += "  tls_verify_certificates = " + (p.ca_file.empty() ? std::string("system") : p.ca_file) +
         "\n";
  }
  b.transport = wrap(t);
  // The entry is "HOST:LOGIN:PASSWORD" (the password is everything after
  // the login's colon) or "HOST:LOGIN:{base64}B64"; '^' is doubled for
  // client_send, a list whose separator is set to ';' (none occurs here)
  // so that the colons of the expansion stay.
  const std::string line =
      fmt::format("${{lookup{{$host}}nwildlsearch{{{}}}{{$value}}fail}}", p.passwd_client_path);
  const std::string raw = "${sg{" + line + "}{\\N^[^:]*:\\N}{}}";
  const std::string pass = "${if match{" + raw + "}{\\N^\\{base64\\}\\N}{${base64d:${sg{" + raw +
                           "}{\\N^\\{base64\\}\\N}{}}}}{" + raw + "}}";
  if (p.login == LocalLogin::debian_passwd_client) return b;
  const bool plain = p.login == LocalLogin::own_plain;
  const std::string user = "${extract{1}{:}{" + line + "}}";
  const std::string pw = "${sg{" + pass + "}{\\N\\^\\N}{^^}}";
  b.auth = wrap(fmt::format(
      "# The upstream login from {0}.\n"
      "smtpguard_upstream_login:\n"
      "  driver = plaintext\n"
      "  public_name = {1}\n"
      "  client_condition = ${{if {2}}}\n"
      "  client_send = {3}\n",
      p.passwd_client_path, plain ? "PLAIN" : "LOGIN",
      tls ? "and{{eq{$transport_name}{smtpguard_upstream_smtp}}{!eq{$tls_out_cipher}{}}}"
          : "eq{$transport_name}{smtpguard_upstream_smtp}",
      plain ? "<; ^" + user + "^" + pw : "<; ; " + user + " ; " + pw));
  return b;
}

Result<std::string> strip_blocks(std::string_view text, std::string_view source) {
  std::string out;
  out.reserve(text.size());
  bool inside = false;
  std::size_t begin_line = 0, n = 0;
  for (auto line : lines_of(text)) {
    ++n;
    const auto t = trim(without_eol(line));
    if (t.starts_with(kBeginMarker)) {
      if (inside)
        return make_error(Errc::invalid_input, fmt::format("{} line {}: '{}' inside another block",
                                                           source, n, kBeginMarker));
      inside = true;
      begin_line = n;
      continue;
    }
    if (t == kEndMarker) {
      if (!inside)
        return make_error(Errc::invalid_input, fmt::format("{} line {}: '{}' without '{}'", source,
                                                           n, kEndMarker, kBeginMarker));
      inside = false;
      continue;
    }
    if (!inside) out += line;
  }
  if (inside)
    return make_error(Errc::invalid_input, fmt::format("{} line {}: '{}' without '{}'", source,
                                                       begin_line, kBeginMarker, kEndMarker));
  return out;
}

Result<std::string> apply_to_config(std::string_view config, const Blocks& blocks,
                                    std::string_view source) {
  auto stripped = strip_blocks(config, source);
  if (!stripped) return stripped.error();
  struct Slot {
    std::string_view section;
    const std::string* block;
    bool done = false;
  };
  Slot slots[] = {{"routers", &blocks.router},
                  {"transports", &blocks.transport},
                  {"authenticators", &blocks.auth}};
  std::string out = blocks.main;  // macros and main options first
  out.reserve(stripped->size() + 4096);
  for (auto line : lines_of(*stripped)) {
    out += line;
    for (auto& s : slots) {
      if (s.done || s.block->empty() || !is_section_start(line, s.section)) continue;
      if (!out.ends_with('\n')) out += '\n';
      out += *s.block;  // exactly the block: stripping it gives the original back
      s.done = true;
    }
  }
  for (auto& s : slots) {
    if (s.done || s.block->empty()) continue;
    if (!out.empty() && !out.ends_with('\n')) out += '\n';
    out += "\nbegin " + std::string(s.section) + "\n" + *s.block;
  }
  return out;
}

Result<std::string> apply_to_cpanel_local(std::string_view local, const Blocks& blocks,
                                          std::string_view source) {
  auto stripped = strip_blocks(local, source);
  if (!stripped) return stripped.error();
  struct Slot {
    std::string_view tag;
    const std::string* block;
    bool done = false;
  };
  Slot slots[] = {{"@ROUTERSTART@", &blocks.router},
                  {"@TRANSPORTSTART@", &blocks.transport},
                  {"@AUTH@", &blocks.auth}};
  std::string out;
  for (auto line : lines_of(*stripped)) {
    out += line;
    for (auto& s : slots) {
      if (s.done || s.block->empty() || trim(without_eol(line)) != s.tag) continue;
      if (!out.ends_with('\n')) out += '\n';
      out += *s.block;
      s.done = true;
    }
  }
  for (auto& s : slots) {
    if (s.done || s.block->empty()) continue;
    if (!out.empty() && !out.ends_with('\n')) out += '\n';
    out += std::string(s.tag) + "\n" + *s.block;
  }
  return out;
}

std::vector<std::string> client_public_names(std::string_view config, bool whole_is_auth) {
  std::vector<std::string> out;
  auto stripped = strip_blocks(config, "");
  const std::string text = stripped ? std::move(stripped).value() : std::string(config);
  bool in_auth = whole_is_auth;
  std::string name;  // public name of the current instance
  bool client = false;
  auto finish = [&] {
    if (client && !name.empty() && std::find(out.begin(), out.end(), name) == out.end())
      out.push_back(name);
    name.clear();
    client = false;
  };
  for (auto line : lines_of(text)) {
    const auto raw = without_eol(line);
    const auto t = trim(raw);
    if (t.empty() || t.front() == '#' || t.front() == '.') continue;
    if (istarts_with(t, "begin") && t.size() > 5 && (t[5] == ' ' || t[5] == '\t')) {
      finish();
      in_auth = is_section_start(line, "authenticators");
      continue;
    }
    if (!in_auth) continue;
    if (raw.front() != ' ' && raw.front() != '\t' && t.back() == ':') {  // a new instance
      finish();
      continue;
    }
    const std::size_t eq = t.find('=');
    if (eq == std::string_view::npos) continue;
    const auto key = trim(t.substr(0, eq));
    if (key.starts_with("client_")) client = true;
    if (key == "public_name") {
      auto v = trim(t.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      name.clear();
      for (char ch : v) name += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
  }
  finish();
  return out;
}

bool defines_local_domains(std::string_view config) {
  for (auto line : lines_of(config)) {
    auto t = trim(without_eol(line));
    if (!t.starts_with("domainlist")) continue;
    t.remove_prefix(10);
    if (t.empty() || (t.front() != ' ' && t.front() != '\t')) continue;
    t = trim(t);
    if (t.starts_with("local_domains") &&
        (t.size() == 13 || t[13] == ' ' || t[13] == '\t' || t[13] == '='))
      return true;
  }
  return false;
}

Result<Secret> render_passwd_client(std::string_view existing, std::string_view host,
                                    std::string_view login, const Secret& password) {
  if (!safe_host(host) || host.find('*') != std::string_view::npos)
    return make_error(Errc::invalid_input,
                      "upstream host '" + std::string(host) + "' cannot be a passwd.client key");
  if (login.empty() || login.size() > 256)
    return make_error(Errc::invalid_input, "the upstream login is empty or too long");
  for (char c : login) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ':' || c == ' ' || c == '\t' || u < 0x20 || u == 0x7f)
      return make_error(Errc::invalid_input,
                        "the upstream login has ':', white space or a control character, which "
                        "passwd.client cannot hold");
  }
  const auto pw = password.view();
  if (pw.empty()) return make_error(Errc::invalid_input, "the upstream password is empty");
  if (pw.find('\0') != std::string_view::npos)
    return make_error(Errc::invalid_input,
                      "the upstream password has a NUL byte (AUTH PLAIN cannot send it)");
  const bool quoted = host.find(':') != std::string_view::npos;  // an IPv6 address
  std::string entry = std::string(kEntryMarker) + "\n" + (quoted ? "\"" : "") + std::string(host) +
                      (quoted ? "\"" : "") + ":" + std::string(login) + ":";
  std::string encoded;
  if (needs_encoding(pw)) encoded = std::string(kBase64Tag) + base64_encode(pw);
  Secret out(0);
  std::string text;
  bool skipping = false;  // inside an entry being replaced (continuation lines)
  bool after_marker = false;
  for (auto line : lines_of(existing)) {
    if (without_eol(line) == kEntryMarker) {
      after_marker = true;
      continue;
    }
    const bool continuation = !line.empty() && (line.front() == ' ' || line.front() == '\t') &&
                              !trim(without_eol(line)).empty();
    if (continuation && skipping) continue;
    skipping = false;
    const std::string key = lsearch_key(line);
    if (after_marker || (!key.empty() && iequals(key, host))) {
      after_marker = false;
      if (!key.empty()) {
        skipping = true;
        continue;
      }
    }
    text += line;
  }
  if (!text.empty() && !text.ends_with('\n')) text += '\n';
  // Assembled in guarded memory; the plain copies are wiped.
  const std::string_view secret_part = encoded.empty() ? pw : std::string_view(encoded);
  out = Secret(text.size() + entry.size() + secret_part.size() + 1);
  std::size_t at = 0;
  for (std::string_view piece :
       {std::string_view(text), std::string_view(entry), secret_part, std::string_view("\n")}) {
    std::copy(piece.begin(), piece.end(), out.data() + at);
    at += piece.size();
  }
  wipe(text.data(), text.size());
  wipe(encoded.data(), encoded.size());
  return out;
}

Result<Secret> passwd_client_password(const Secret& file, std::string_view host) {
  for (auto line : lines_of(file.view())) {
    if (!iequals(lsearch_key(line), host)) continue;
    auto data = lsearch_data(line);
    const std::size_t colon = data.find(':');
    if (colon == std::string_view::npos)
      return make_error(Errc::corrupt, "entry without a password");
    auto pw = data.substr(colon + 1);
    if (!pw.starts_with(kBase64Tag)) return Secret::copy_of(pw);
    auto decoded = base64_decode(pw.substr(kBase64Tag.size()));
    if (!decoded) return make_error(Errc::corrupt, "bad base64 in the passwd.client entry");
    Secret s = Secret::copy_of(*decoded);
    wipe(decoded->data(), decoded->size());
    return s;
  }
  return make_error(Errc::not_found, "no passwd.client entry for " + std::string(host));
}

Result<std::string> format_manifest(const Manifest& m) {
  std::string out = "smtpguard-exim-backup 1\n";
  if (m.layout.find('\n') != std::string::npos ||
      m.identity_created.find_first_of(" \n") != std::string::npos)
    return make_error(Errc::invalid_input, "manifest field with a line break");
  if (!m.layout.empty()) out += "layout " + m.layout + "\n";
  if (!m.identity_created.empty()) out += "identity-created " + m.identity_created + "\n";
  for (const auto& f : m.files) {
    if (f.path.empty() || f.path.find('\n') != std::string::npos ||
        f.backup_name.find_first_of(" \n/") != std::string::npos)
      return make_error(Errc::invalid_input, "cannot record path '" + f.path + "' in a backup");
    if (f.existed)
      out += fmt::format("present {:04o} {} {} {} {}\n", static_cast<unsigned>(f.mode & 07777),
                         f.uid, f.gid, f.backup_name, f.path);
    else
      out += "absent - - - - " + f.path + "\n";
  }
  return out;
}

Result<Manifest> parse_manifest(std::string_view text) {
  auto lines = lines_of(text);
  if (lines.empty() || without_eol(lines[0]) != "smtpguard-exim-backup 1")
    return make_error(Errc::unsupported, "not an smtpguard Exim backup manifest (version 1)");
  Manifest m;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto line = without_eol(lines[i]);
    auto bad = [&] {
      return make_error(Errc::corrupt, fmt::format("manifest line {} is malformed", i + 1));
    };
    if (line.empty()) continue;
    if (line.starts_with("layout ")) {
      m.layout = std::string(line.substr(7));
      continue;
    }
    if (line.starts_with("identity-created ")) {
      m.identity_created = std::string(line.substr(17));
      continue;
    }
    std::vector<std::string_view> f;
    std::size_t pos = 0;
    for (int k = 0; k < 5; ++k) {  // five words, then the path (which may hold spaces)
      const std::size_t sp = line.find(' ', pos);
      if (sp == std::string_view::npos) return bad();
      f.push_back(line.substr(pos, sp - pos));
      pos = sp + 1;
    }
    ManifestEntry e;
    e.path = std::string(line.substr(pos));
    if (e.path.empty() || e.path.front() != '/') return bad();
    if (f[0] == "absent") {
      m.files.push_back(std::move(e));
      continue;
    }
    if (f[0] != "present" || f[4].empty() || f[4].find('/') != std::string_view::npos ||
        f[4] == "." || f[4] == "..")
      return bad();
    auto number = [](std::string_view s, int base, unsigned long max, unsigned long& v) {
      if (s.empty() || s.size() > 10) return false;
      char* end = nullptr;
      const std::string copy(s);
      v = std::strtoul(copy.c_str(), &end, base);
      return *end == '\0' && v <= max && std::isdigit(static_cast<unsigned char>(copy[0]));
    };
    unsigned long mode = 0, uid = 0, gid = 0;
    if (!number(f[1], 8, 07777, mode) || !number(f[2], 10, 0xfffffffeUL, uid) ||
        !number(f[3], 10, 0xfffffffeUL, gid))
      return bad();
    e.existed = true;
    e.mode = static_cast<mode_t>(mode);
    e.uid = static_cast<uid_t>(uid);
    e.gid = static_cast<gid_t>(gid);
    e.backup_name = std::string(f[4]);
    m.files.push_back(std::move(e));
  }
  return m;
}

}  // namespace sg::integrate::exim
