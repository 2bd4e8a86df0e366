// Shared helpers for the scan unit tests: one compiled Scanner, and
// deterministic credentials of each shape (real SES derivations where it matters).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "scan/scan.hpp"
#include "ses/ses.hpp"

namespace sg::scan::test {

inline const Scanner& default_scanner() {
  static Scanner s = [] {
    auto r = Scanner::create();
    if (!r) std::abort();
    return std::move(r.value());
  }();
  return s;
}

inline std::vector<Finding> scan_with(const Scanner& s, std::string_view text,
                                      std::string_view path) {
  auto scratch = s.make_scratch();
  if (!scratch) return {};
  return s.scan(text, path, *scratch);
}

inline std::vector<Finding> scan_text(std::string_view text, std::string_view path = "app.php") {
  return scan_with(default_scanner(), text, path);
}

inline std::vector<Finding> with_rule(const std::vector<Finding>& all, std::string_view rule) {
  std::vector<Finding> out;
  for (const Finding& f : all)
    if (f.rule_id == rule) out.push_back(f);
  return out;
}

inline std::string_view value_of(std::string_view text, const Finding& f) {
  return text.substr(f.offset, f.length);
}

// Deterministic strings from an alphabet (a small LCG; same output every run).
inline std::string pseudo(std::string_view alphabet, std::size_t n, unsigned seed) {
  std::string out;
  std::uint32_t x = seed * 2654435761u + 12345u;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    out += alphabet[(x >> 8) % alphabet.size()];
  }
  return out;
}
inline constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

inline std::string key_id(unsigned seed = 1) {
  return "AKIA" + pseudo("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, seed);
}
inline std::string aws_secret(unsigned seed = 1) {
  std::string s = pseudo(kB64, 40, seed);
  s[0] = 'Q';  // mixed case and a digit, whatever the seed
  s[1] = 'q';
  s[2] = '7';
  return s;
}
// Real SES SMTP passwords derived from a deterministic IAM secret.
inline std::string ses_v4(unsigned seed = 1) {
  const Secret iam = Secret::copy_of(aws_secret(seed));
  return std::string(ses::smtp_password_v4(iam, "us-east-1").view());
}
inline std::string ses_v2(unsigned seed = 1) {
  const Secret iam = Secret::copy_of(aws_secret(seed));
  return std::string(ses::smtp_password_v2(iam).view());
}

// No field of any finding holds `secret`.
inline void expect_no_plaintext(const std::vector<Finding>& all, std::string_view secret) {
  for (const Finding& f : all) {
    for (const std::string* s :
         {&f.rule_id, &f.path, &f.redacted, &f.fingerprint, &f.username, &f.host, &f.message})
      EXPECT_EQ(s->find(secret), std::string::npos) << f.rule_id << ": " << *s;
  }
}

}  // namespace sg::scan::test
