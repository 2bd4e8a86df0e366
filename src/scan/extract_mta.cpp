// Extractors for mail transfer agent files: msmtprc accounts, Postfix
// sasl_passwd, Exim passwd.client lines and client_send authenticators.
#include "scan/internal.hpp"

namespace sg::scan::detail {
namespace {

constexpr std::size_t kMaxNamedFile = 1 << 20;  // whole-file formats are small

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// "KEY value" lines (msmtprc) in span s: the value of the first line whose
// first word is `key`.
std::string_view keyword_value(std::string_view t, Span s, std::string_view key) {
  std::size_t i = s.begin;
  for (int n = 0; n < 200 && i < s.end; ++n) {
    const std::size_t e = line_end(t, i);
    std::string_view line = trimmed(t.substr(i, std::min(e, s.end) - i));
    if (line.starts_with(key) && line.size() > key.size() && is_blank(line[key.size()]))
      return trimmed(line.substr(key.size()));
    i = e;
    while (i < s.end && (t[i] == '\r' || t[i] == '\n')) ++i;
  }
  return {};
}

void msmtp(const Ctx& ctx, std::size_t end) {
  const std::string_view t = ctx.text;
  if (end == 0) return;
  std::size_t b = end - 1;
  std::size_t e = line_end(t, b);
  const bool quoted = t[b] == '"';
  if (quoted) {
    const std::size_t q = t.find('"', b + 1);
    if (q == std::string_view::npos || q > e) return;
    ++b;
    e = q;
  }
  while (e > b && is_blank(t[e - 1])) --e;
  const std::string_view val = t.substr(b, e - b);
  // msmtp quotes arguments with blanks; an unquoted phrase is prose, not a password.
  if (is_placeholder(val) || (!quoted && val.find_first_of(" \t") != std::string_view::npos))
    return;
  // Cheap checks first: the account block around it is looked at only now.
  const Span near = lines_around(t, end, 15, 15);
  const std::string_view host = keyword_value(t, near, "host");
  if (!ctx.file.msmtprc && (host.empty() || (keyword_value(t, near, "user").empty() &&
                                             keyword_value(t, near, "account").empty())))
    return;
  Candidate c{"msmtprc-password", Severity::high, b, e - b};
  c.message = "msmtp account password";
  c.host = clean_host(host);
  c.username = clean_field(keyword_value(t, near, "user"));
  c.port = parse_port(keyword_value(t, near, "port"));
  ctx.add(std::move(c));
}

// "[host]:port user:pass" (brackets optional in a file named sasl_passwd).
void postfix_line(const Ctx& ctx, std::size_t lb, std::size_t le, bool need_brackets) {
  const std::string_view t = ctx.text;
  std::string_view line = t.substr(lb, le - lb);
  std::size_t i = 0;
  while (i < line.size() && is_blank(line[i])) ++i;
  if (i >= line.size() || line[i] == '#' || (need_brackets && line[i] != '[')) return;
  const std::size_t host_b = i;
  while (i < line.size() && !is_blank(line[i])) ++i;
  const std::string_view target = line.substr(host_b, i - host_b);
  while (i < line.size() && is_blank(line[i])) ++i;
  const std::size_t cred_b = i;
  while (i < line.size() && !is_blank(line[i])) ++i;
  const std::string_view cred = line.substr(cred_b, i - cred_b);
  const std::size_t colon = cred.find(':');
  if (colon == std::string_view::npos || colon == 0) return;
  const std::string_view pass = cred.substr(colon + 1);
  if (is_placeholder(pass)) return;
  Candidate c{"postfix-sasl-passwd", Severity::high, lb + cred_b + colon + 1, pass.size()};
  c.message = "Postfix sasl_passwd entry";
  c.username = clean_field(cred.substr(0, colon));
  if (!target.starts_with('@')) c.host = clean_host(target);
  const std::size_t close = target.find(']');
  const std::size_t pc = target.find(':', close == std::string_view::npos ? 0 : close);
  if (pc != std::string_view::npos) c.port = parse_port(target.substr(pc + 1));
  ctx.add(std::move(c));
}

// "host:user:password" (Exim passwd.client).
void exim_line(const Ctx& ctx, std::size_t lb, std::size_t le) {
  const std::string_view t = ctx.text;
  std::string_view line = t.substr(lb, le - lb);
  std::size_t i = 0;
  while (i < line.size() && is_blank(line[i])) ++i;
  if (i >= line.size() || line[i] == '#') return;
  const std::size_t c1 = line.find(':', i);
  if (c1 == std::string_view::npos || c1 == i) return;
  const std::size_t c2 = line.find(':', c1 + 1);
  if (c2 == std::string_view::npos || c2 == c1 + 1) return;
  const std::string_view host = line.substr(i, c1 - i);
  if (host.find_first_of(" \t[") != std::string_view::npos) return;
  std::size_t e = line.size();
  while (e > c2 + 1 && is_blank(line[e - 1])) --e;
  const std::string_view pass = line.substr(c2 + 1, e - c2 - 1);
  if (is_placeholder(pass)) return;
  Candidate c{"exim-passwd-client", Severity::high, lb + c2 + 1, pass.size()};
  c.message = "Exim passwd.client entry";
  c.username = clean_field(trimmed(line.substr(c1 + 1, c2 - c1 - 1)));
  if (host.find('*') == std::string_view::npos) c.host = clean_host(host);
  ctx.add(std::move(c));
}

// A line that starts with an email-smtp.* host: Postfix or Exim format.
void mail_host(const Ctx& ctx, std::size_t end) {
  const std::string_view t = ctx.text;
  const std::size_t lb = line_begin(t, end), le = line_end(t, end);
  std::size_t i = lb;
  while (i < le && is_blank(t[i])) ++i;
  if (i < le && (t[i] == '[' || t[i] == '*')) ++i;
  if (end < 11 || end - 11 < i) return;
  for (std::size_t k = i; k < end - 11; ++k)  // the host must be the line's first word
    if (!(is_alnum(t[k]) || t[k] == '.' || t[k] == '-')) return;
  std::size_t h = end;
  while (h < le && (is_alnum(t[h]) || t[h] == '.' || t[h] == '-' || t[h] == ']')) ++h;
  if (h < le && t[h] == ':' && t.substr(h, le - h).find_first_of(" \t") == std::string_view::npos)
    exim_line(ctx, lb, le);
  else
    postfix_line(ctx, lb, le, false);
}

// client_send = : user : pass   |   client_send = ^user^pass   (Exim lists)
void exim_send(const Ctx& ctx, std::size_t end) {
  const std::string_view t = ctx.text;
  std::size_t i = end;
  while (i < t.size() && is_blank(t[i])) ++i;
  if (i >= t.size() || t[i] != '=') return;
  ++i;
  while (i < t.size() && is_blank(t[i])) ++i;
  std::size_t e = line_end(t, i);
  while (e > i && is_blank(t[e - 1])) --e;
  if (e > i + 1 && t[i] == '"' && t[e - 1] == '"') {
    ++i;
    --e;
  }
  char sep = ':';
  if (i < e && t[i] == '^') {
    sep = '^';
  } else if (i + 1 < e && t[i] == '<' && !is_blank(t[i + 1])) {
    sep = t[i + 1];
    i += 2;
  }
  // Elements: "", user, pass.
  std::vector<Span> parts;
  std::size_t b = i;
  for (std::size_t k = i; k <= e && parts.size() < 4; ++k) {
    if (k == e || t[k] == sep) {
      std::size_t pb = b, pe = k;
      while (pb < pe && is_blank(t[pb])) ++pb;
      while (pe > pb && is_blank(t[pe - 1])) --pe;
      parts.push_back({pb, pe});
      b = k + 1;
    }
  }
  if (parts.size() != 3 || parts[0].size() != 0) return;
  const std::string_view pass = t.substr(parts[2].begin, parts[2].size());
  if (is_placeholder(pass) || pass.find('$') != std::string_view::npos) return;
  Candidate c{"exim-client-send", Severity::high, parts[2].begin, parts[2].size()};
  c.message = "Exim client_send with a literal password";
  c.username = clean_field(t.substr(parts[1].begin, parts[1].size()));
  ctx.add(std::move(c));
}

}  // namespace

void extract_mta(const Ctx& ctx, Kind kind, std::size_t end) {
  switch (kind) {
    case Kind::msmtp:
      msmtp(ctx, end);
      break;
    case Kind::postfix:
      if (end > 0) postfix_line(ctx, line_begin(ctx.text, end - 1), line_end(ctx.text, end), true);
      break;
    case Kind::mail_host:
      mail_host(ctx, end);
      break;
    case Kind::exim_send:
      exim_send(ctx, end);
      break;
    default:
      break;
  }
}

void extract_named_files(const Ctx& ctx) {
  if (!ctx.file.sasl_passwd && !ctx.file.passwd_client) return;
  const std::string_view t = ctx.text.substr(0, std::min(ctx.text.size(), kMaxNamedFile));
  std::size_t i = 0;
  while (i < t.size()) {
    const std::size_t e = line_end(t, i);
    if (ctx.file.sasl_passwd) postfix_line(ctx, i, e, false);
    if (ctx.file.passwd_client) exim_line(ctx, i, e);
    i = e;
    if (i < t.size() && t[i] == '\r') ++i;
    if (i < t.size() && t[i] == '\n') ++i;
    if (i == e) ++i;  // a line longer than line_end's bound: step on
  }
}

}  // namespace sg::scan::detail
