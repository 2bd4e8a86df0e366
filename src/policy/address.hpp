// Envelope and header addresses as plain "local@domain" strings, and the
// allowed_senders patterns they are matched against. Input is untrusted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace sg::policy {

// An address split at its last unquoted '@'. The local part is a dot-atom
// or one quoted string (kept with its quotes, as written); the domain is a
// host name (letters, digits, '-', UTF-8, dot-separated labels). Source
// routes, address literals, bang paths without '@', a second unquoted '@',
// control characters and over-long parts are errors.
struct Mailbox {
  std::string local;
  std::string domain;
  bool quoted = false;  // local part is a quoted string
};
Result<Mailbox> parse_mailbox(std::string_view address);

// One allowed_senders entry:
//   "<>"              the null sender (bounces); "" never matches otherwise
//   "a@example.com"   exactly this address: local part byte for byte, domain
//                     case-insensitively
//   "*@example.com"   any plain local part at exactly this domain
//   "*@*.example.com" any plain local part at a subdomain (not the domain
//                     itself: list both for both)
// A "plain" local part is an unquoted dot-atom without '%' or '!': quoted
// local parts and percent-hack/bang-path forms match exact entries only, so
// no downstream MTA can re-route them to a domain the pattern did not name.
class SenderPattern {
 public:
  enum class Kind { null_sender, exact, domain, subdomains };
  static Result<SenderPattern> parse(std::string_view text);
  bool matches(std::string_view address) const;
  Kind kind() const { return kind_; }
  const std::string& text() const { return text_; }

 private:
  Kind kind_ = Kind::exact;
  std::string text_;
  std::string local_;   // exact only
  std::string domain_;  // lower case
};

bool any_matches(const std::vector<SenderPattern>& patterns, std::string_view address);

// `text` made safe to quote in a one-line SMTP reply or log: control bytes
// become '?', and at most `max` bytes are kept ("..." marks a cut).
std::string printable(std::string_view text, std::size_t max = 100);

}  // namespace sg::policy
