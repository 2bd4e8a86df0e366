// Turns candidates into findings: merges candidates that cover the same bytes
// (the earlier rule in rules() names the finding, the others add what they
// know), then adds line and column, redaction and the fingerprint. The secret
// itself never leaves this function.
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "scan/internal.hpp"

namespace sg::scan::detail {
namespace {

std::size_t priority(std::string_view rule) {
  const auto& all = rules();
  for (std::size_t i = 0; i < all.size(); ++i)
    if (all[i].id == rule) return i;
  return all.size();
}

void absorb(Candidate& into, const Candidate& from) {
  into.severity = std::max(into.severity, from.severity);
  if (into.username.empty()) into.username = from.username;
  if (into.host.empty()) into.host = from.host;
  if (into.port == 0) into.port = from.port;
}

// Keyed (personalised) BLAKE2b over rule, path and secret: stable across runs,
// reveals nothing about the secret that the secret's own hash would not.
std::string fingerprint(std::string_view rule, std::string_view path, std::string_view secret) {
  static constexpr unsigned char personal[crypto_generichash_blake2b_PERSONALBYTES] = {
      's', 'g', '-', 's', 'c', 'a', 'n', '-', 'f', 'p', '-', 'v', '1', 0, 0, 0};
  crypto_generichash_blake2b_state st;
  crypto_generichash_blake2b_init_salt_personal(&st, nullptr, 0, 32, nullptr, personal);
  auto feed = [&](std::string_view s) {
    crypto_generichash_blake2b_update(&st, reinterpret_cast<const unsigned char*>(s.data()),
                                      s.size());
    const unsigned char nul = 0;
    crypto_generichash_blake2b_update(&st, &nul, 1);
  };
  feed(rule);
  feed(path);
  feed(secret);
  unsigned char out[32];
  crypto_generichash_blake2b_final(&st, out, sizeof out);
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, out, sizeof out);
  return std::string(hex, 64);
}

// A field that would repeat the secret is dropped (never happens by design).
void drop_if_leaks(std::string& field, std::string_view secret) {
  if (!field.empty() && secret.size() >= 8 && field.find(secret) != std::string::npos)
    field.clear();
}

}  // namespace

std::vector<Finding> finalize(std::vector<Candidate>& cands, std::string_view content,
                              std::string_view path) {
  ensure_sodium();
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    if (a.rule != b.rule) return priority(a.rule) < priority(b.rule);
    return a.length > b.length;  // base64 with its padding before the bare form
  });
  std::vector<Candidate> merged;
  for (Candidate& c : cands) {
    if (c.length == 0 || c.offset + c.length > content.size()) continue;
    if (!merged.empty() && c.offset < merged.back().offset + merged.back().length) {
      Candidate& last = merged.back();
      if (priority(c.rule) < priority(last.rule)) {
        absorb(c, last);
        last = std::move(c);
      } else {
        absorb(last, c);
      }
      continue;
    }
    merged.push_back(std::move(c));
  }

  std::vector<Finding> out;
  out.reserve(merged.size());
  std::size_t pos = 0, line = 1, line_start = 0;
  for (Candidate& c : merged) {
    while (pos < c.offset) {  // count newlines lazily, only up to findings
      const void* nl = std::memchr(content.data() + pos, '\n', c.offset - pos);
      if (!nl) {
        pos = c.offset;
        break;
      }
      pos = static_cast<std::size_t>(static_cast<const char*>(nl) - content.data()) + 1;
      ++line;
      line_start = pos;
    }
    const std::string_view secret = content.substr(c.offset, c.length);
    Finding f;
    f.rule_id = std::string(c.rule);
    f.severity = c.severity;
    f.path = std::string(path);
    f.line = line;
    f.column = c.offset - line_start + 1;
    f.offset = c.offset;
    f.length = c.length;
    f.redacted = redact(secret);
    f.fingerprint = fingerprint(c.rule, path, secret);
    f.username = std::move(c.username);
    f.host = std::move(c.host);
    f.port = c.port;
    f.message = c.message.empty() ? std::string(find_rule(c.rule)->description) : c.message;
    drop_if_leaks(f.username, secret);
    drop_if_leaks(f.host, secret);
    drop_if_leaks(f.message, secret);
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace sg::scan::detail
