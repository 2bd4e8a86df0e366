// Extractors for credentials recognisable by shape: AWS access key ids, AWS
// secret access keys, and SES SMTP passwords (v4 and legacy v2), with more
// severity next to an access key id or SMTP settings.
#include <algorithm>

#include "scan/internal.hpp"

namespace sg::scan::detail {
namespace {

bool is_base32(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7');
}

bool key_id_at(std::string_view t, std::size_t at) {
  if (at + 20 > t.size()) return false;
  const std::string_view p = t.substr(at, 4);
  if (p != "AKIA" && p != "ASIA") return false;
  for (std::size_t i = at + 4; i < at + 20; ++i)
    if (!is_base32(t[i])) return false;
  if (at > 0 && is_alnum(t[at - 1])) return false;
  return at + 20 == t.size() || !is_alnum(t[at + 20]);
}

// An access key id in span `s`, or empty.
std::string_view key_id_in(std::string_view t, Span s) {
  for (std::string_view p : {"AKIA", "ASIA"}) {
    std::size_t from = s.begin;
    for (int k = 0; k < 32; ++k) {
      const std::size_t at = t.find(p, from);
      if (at == std::string_view::npos || at >= s.end) break;
      if (key_id_at(t, at) && !is_placeholder(t.substr(at, 20))) return t.substr(at, 20);
      from = at + 1;
    }
  }
  return {};
}

// Looks random enough for a 40-character AWS secret: mixed case and digits
// (or + and /), not hex (a SHA-1), not an example.
bool plausible_aws_secret(std::string_view v) {
  if (v.size() != 40 || !std::all_of(v.begin(), v.end(), [](char c) { return is_b64(c); }))
    return false;
  bool up = false, low = false, digit = false, sym = false, hex = true;
  for (char c : v) {
    up |= c >= 'A' && c <= 'Z';
    low |= c >= 'a' && c <= 'z';
    digit |= c >= '0' && c <= '9';
    sym |= c == '+' || c == '/';
    hex &= (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }
  return !hex && up && low && (digit || sym) && !is_placeholder(v);
}

// The SES endpoint named near a finding (email-smtp.REGION.amazonaws.com).
std::string ses_host_in(std::string_view t, Span s) {
  const std::size_t at = ifind(t, "email-smtp.", s.begin, s.end);
  if (at == std::string_view::npos) return {};
  std::size_t e = at;
  while (e < s.end && (is_alnum(t[e]) || t[e] == '.' || t[e] == '-')) ++e;
  return clean_field(t.substr(at, e - at));
}

void ses_token(const Ctx& ctx, Kind kind, std::size_t start) {
  const std::string_view t = ctx.text;
  const std::size_t end = start + 44;
  if (end > t.size() || (end < t.size() && (is_b64(t[end]) || t[end] == '='))) return;
  if (start > 0 && is_b64(t[start - 1])) return;
  const std::string_view token = t.substr(start, 44);
  if (is_placeholder(token)) return;
  const bool v4 = kind == Kind::ses_v4;
  Candidate c{v4 ? "ses-smtp-password-v4" : "ses-smtp-password-v2",
              v4 ? Severity::high : Severity::medium, start, 44};
  c.message = v4 ? "Amazon SES SMTP password (SigV4)" : "Amazon SES SMTP password (SigV2)";
  const Span near = lines_around(t, start, 1, 1);
  const std::string_view key_id = key_id_in(t, near);
  const std::string_view line = t.substr(near.begin, near.size());
  if (!key_id.empty()) {
    c.username = std::string(key_id);
    c.message += " next to an access key id";
  } else if (icontains(line, "smtp") || icontains(line, "mail") || icontains(line, "pass")) {
    c.message += " in an SMTP setting";
  } else {
    ctx.add(std::move(c));
    return;
  }
  c.severity = v4 ? Severity::critical : Severity::high;
  c.host = ses_host_in(t, lines_around(t, start, 4, 4));
  ctx.add(std::move(c));
}

void aws_key_id(const Ctx& ctx, std::size_t end) {
  const std::string_view t = ctx.text;
  if (end < 20) return;
  const std::size_t start = end - 20;
  if (!key_id_at(t, start) || is_placeholder(t.substr(start, 20))) return;
  ctx.add(Candidate{"aws-access-key-id", Severity::low, start, 20, {}, {}, 0, "AWS access key id"});
  // Its secret key in the same or neighbouring lines: a whole 40-char token.
  const Span near = lines_around(t, start, 2, 2);
  std::size_t i = near.begin;
  while (i < near.end) {
    while (i < near.end && !is_b64(t[i])) ++i;
    const std::size_t b = i;
    while (i < near.end && is_b64(t[i])) ++i;
    if (i - b != 40 || (i < t.size() && t[i] == '=')) continue;
    if (!plausible_aws_secret(t.substr(b, 40))) continue;
    ctx.add(Candidate{"aws-secret-access-key",
                      Severity::critical,
                      b,
                      40,
                      std::string(t.substr(start, 20)),
                      {},
                      0,
                      "AWS secret access key next to its access key id"});
  }
}

void aws_secret_assignment(const Ctx& ctx, std::size_t end) {
  const std::string_view t = ctx.text;
  std::size_t k = end;
  while (k < t.size() && k < end + 8 && is_ident(t[k])) ++k;  // aws_secret_access_key_v2
  Value v;
  if (!assigned_value(t, k, v) || v.span.size() != 40) return;
  const std::string_view val = t.substr(v.span.begin, 40);
  if (!plausible_aws_secret(val)) return;
  Candidate c{"aws-secret-access-key", Severity::high, v.span.begin, 40};
  c.message = "AWS secret access key";
  const std::string_view key_id = key_id_in(t, lines_around(t, end, 3, 3));
  if (!key_id.empty()) {
    c.severity = Severity::critical;
    c.username = std::string(key_id);
    c.message += " next to its access key id";
  }
  ctx.add(std::move(c));
}

}  // namespace

void extract_keys(const Ctx& ctx, Kind kind, std::size_t end) {
  switch (kind) {
    case Kind::aws_key_id:
      aws_key_id(ctx, end);
      break;
    case Kind::ses_v4:
    case Kind::ses_v2:
      if (end >= 44) ses_token(ctx, kind, end - 44);
      break;
    case Kind::aws_secret_key:
      aws_secret_assignment(ctx, end);
      break;
    default:
      break;
  }
}

void check_ses_at_start(const Ctx& ctx) {
  const std::string_view t = ctx.text;
  if (t.size() < 44) return;
  for (std::size_t i = 2; i < 44; ++i)
    if (!is_b64(t[i])) return;
  if (t[0] == 'B' && t[1] >= 'A' && t[1] <= 'P') ses_token(ctx, Kind::ses_v4, 0);
  if (t[0] == 'A' && t[1] >= 'g' && t[1] <= 'v') ses_token(ctx, Kind::ses_v2, 0);
}

}  // namespace sg::scan::detail
