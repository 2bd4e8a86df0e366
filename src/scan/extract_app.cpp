// Extractors for application settings: PHPMailer, SMTP URLs and Symfony /
// SwiftMailer, Laravel .env, WP Mail SMTP constants and generic smtp_pass
// style assignments, each picking up the username, host and port it sits
// with (for --verify).
#include <array>

#include "scan/internal.hpp"

namespace sg::scan::detail {
namespace {

using Keys = std::vector<std::string_view>;

void fill_settings(const Ctx& ctx, Candidate& c, Span near, const Keys& user, const Keys& host,
                   const Keys& port) {
  const std::string_view t = ctx.text;
  if (c.username.empty()) c.username = clean_field(find_setting(t, near, user));
  if (c.host.empty()) c.host = clean_host(find_setting(t, near, host));
  if (c.port == 0) c.port = parse_port(find_setting(t, near, port));
}

// A quoted (or literal-config) value assigned after `key_end`, as a candidate.
bool literal_after(const Ctx& ctx, std::size_t key_end, bool need_quotes, Value& v) {
  if (!assigned_value(ctx.text, key_end, v)) return false;
  if (need_quotes && !v.quoted) return false;
  return value_is_secret(ctx, ctx.text, v);
}

void phpmailer(const Ctx& ctx, std::size_t end) {
  if (end < ctx.text.size() && is_ident(ctx.text[end])) return;  // ->PasswordHash
  Value v;
  if (!literal_after(ctx, end, true, v)) return;
  Candidate c{"phpmailer-password", Severity::high, v.span.begin, v.span.size()};
  c.message = "PHPMailer SMTP password";
  fill_settings(ctx, c, lines_around(ctx.text, end, 25, 25), {"->Username"}, {"->Host"},
                {"->Port"});
  ctx.add(std::move(c));
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char h) -> int {
      if (h >= '0' && h <= '9') return h - '0';
      if (h >= 'a' && h <= 'f') return h - 'a' + 10;
      if (h >= 'A' && h <= 'F') return h - 'A' + 10;
      return -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void smtp_url(const Ctx& ctx, std::size_t end) {
  const std::string_view t = ctx.text;
  const std::size_t stop = std::min(t.size(), end + 512);
  std::size_t at = end, colon = std::string_view::npos;
  for (; at < stop; ++at) {
    const char c = t[at];
    if (c == '@') break;
    if (c == ':' && colon == std::string_view::npos) colon = at;
    if (is_blank(c) || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '/' || c == '?' ||
        c == '#' || c == '<' || c == '>' || c == '\0' || c == '`')
      return;
  }
  if (at >= stop || colon == std::string_view::npos) return;
  const std::string_view pass = t.substr(colon + 1, at - colon - 1);
  if (is_placeholder(pass) || is_placeholder(url_decode(pass))) return;
  Candidate c{"smtp-url-credentials", Severity::high, colon + 1, pass.size()};
  c.message = "Credentials in an SMTP URL";
  c.username = clean_field(url_decode(t.substr(end, colon - end)));
  std::size_t h = at + 1;
  while (h < t.size() && h < at + 256 && (is_alnum(t[h]) || t[h] == '.' || t[h] == '-')) ++h;
  const std::string host = clean_field(t.substr(at + 1, h - at - 1));
  if (host != "default") c.host = host;
  if (h < t.size() && t[h] == ':') {
    std::size_t p = h + 1;
    while (p < t.size() && p < h + 6 && t[p] >= '0' && t[p] <= '9') ++p;
    c.port = parse_port(t.substr(h + 1, p - h - 1));
  }
  ctx.add(std::move(c));
}

// Swift_SmtpTransport('host', 587) / ->setUsername('user') / ->setPassword('pass')
void swift(const Ctx& ctx, std::size_t end) {
  const std::string_view t = ctx.text;
  Value v;
  if (!read_value(t, end, false, v) || !v.quoted || !value_is_secret(ctx, t, v)) return;
  Candidate c{"smtp-url-credentials", Severity::high, v.span.begin, v.span.size()};
  c.message = "SwiftMailer setPassword";
  const Span near = lines_around(t, end, 10, 10);
  for (std::string_view call : {"->setUsername(", "Transport("}) {
    const std::size_t at = ifind(t, call, near.begin, near.end);
    Value w;
    if (at == std::string_view::npos || !read_value(t, at + call.size(), false, w) || !w.quoted)
      continue;
    const std::string_view val = t.substr(w.span.begin, w.span.size());
    if (call[0] == '-') {
      c.username = clean_field(val);
      continue;
    }
    c.host = clean_host(val);
    std::size_t p = w.span.end + 1;
    while (p < near.end && (is_blank(t[p]) || t[p] == ',')) ++p;
    std::size_t q = p;
    while (q < near.end && q < p + 5 && t[q] >= '0' && t[q] <= '9') ++q;
    c.port = parse_port(t.substr(p, q - p));
  }
  ctx.add(std::move(c));
}

void laravel(const Ctx& ctx, std::size_t start, std::size_t end) {
  const std::string_view t = ctx.text;
  std::string_view head = t.substr(line_begin(t, start), start - line_begin(t, start));
  while (!head.empty() && is_blank(head.front())) head.remove_prefix(1);
  if (head.starts_with("export")) head.remove_prefix(6);
  while (!head.empty() && is_blank(head.front())) head.remove_prefix(1);
  if (!head.empty() || end >= t.size() || t[end] != '=') return;
  Value v;
  if (!assigned_value(t, end, v)) return;
  if (!v.quoted) {  // dotenv: the rest of the line up to a " #" comment
    std::size_t e = v.span.begin;
    const std::size_t le = line_end(t, e);
    while (e < le && !(t[e] == '#' && e > v.span.begin && is_blank(t[e - 1]))) ++e;
    while (e > v.span.begin && is_blank(t[e - 1])) --e;
    v.span.end = e;
  }
  Ctx literal = ctx;
  literal.file.literal_config = true;
  if (!value_is_secret(literal, t, v)) return;
  Candidate c{"laravel-mail-password", Severity::high, v.span.begin, v.span.size()};
  c.message = "Laravel MAIL_PASSWORD";
  fill_settings(ctx, c, lines_around(t, end, 40, 40), {"MAIL_USERNAME"}, {"MAIL_HOST"},
                {"MAIL_PORT"});
  ctx.add(std::move(c));
}

void wpms(const Ctx& ctx, std::size_t end) {
  if (end < ctx.text.size() && is_ident(ctx.text[end])) return;
  Value v;
  if (!literal_after(ctx, end, true, v)) return;
  Candidate c{"wp-mail-smtp-password", Severity::high, v.span.begin, v.span.size()};
  c.message = "WP Mail SMTP password constant";
  fill_settings(ctx, c, lines_around(ctx.text, end, 30, 30), {"WPMS_SMTP_USER"}, {"WPMS_SMTP_HOST"},
                {"WPMS_SMTP_PORT"});
  ctx.add(std::move(c));
}

// smtp_pass, smtp_password, smtp_passwd; not smtp_pass_enabled.
bool pass_suffix_ok(std::string_view suffix) {
  for (std::string_view s : {"", "word", "wd"})
    if (suffix.size() == s.size() && ifind(suffix, s, 0, suffix.size()) == 0) return true;
  return suffix.empty();
}

void generic(const Ctx& ctx, std::size_t start, std::size_t end) {
  const std::string_view t = ctx.text;
  std::size_t b = start, e = end;
  while (b > 0 && start - b < 64 && (is_ident(t[b - 1]) || t[b - 1] == '-')) --b;
  while (e < t.size() && e - end < 8 && is_ident(t[e])) ++e;
  if (!pass_suffix_ok(t.substr(end, e - end))) return;
  Value v;
  if (!literal_after(ctx, e, false, v)) return;
  Candidate c{"generic-smtp-password", Severity::medium, v.span.begin, v.span.size()};
  c.message = "SMTP password assignment";
  // Sibling settings share the key's prefix: smtp_ / MAIL_ / EMAIL_HOST_.
  const std::string_view key = t.substr(b, e - b);
  const std::size_t p = ifind(key, "pass", 0, key.size());
  const std::string prefix(key.substr(0, p == std::string_view::npos ? 0 : p));
  const std::string user1 = prefix + "user", user2 = prefix + "username", host = prefix + "host",
                    server = prefix + "server", port = prefix + "port";
  fill_settings(ctx, c, lines_around(t, end, 20, 20),
                {user2, user1, "smtp_user", "smtp_username", "mail_username", "email_host_user"},
                {host, server, "smtp_host", "smtp_server", "mail_host", "email_host"},
                {port, "smtp_port", "mail_port", "email_port"});
  ctx.add(std::move(c));
}

}  // namespace

void extract_app(const Ctx& ctx, Kind kind, std::size_t start, std::size_t end) {
  switch (kind) {
    case Kind::phpmailer:
      phpmailer(ctx, end);
      break;
    case Kind::smtp_url:
      smtp_url(ctx, end);
      break;
    case Kind::swift:
      swift(ctx, end);
      break;
    case Kind::laravel:
      laravel(ctx, start, end);
      break;
    case Kind::wpms:
      wpms(ctx, end);
      break;
    case Kind::generic:
      generic(ctx, start, end);
      break;
    default:
      break;
  }
}

}  // namespace sg::scan::detail
