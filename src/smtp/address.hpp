// Envelope addresses of MAIL FROM / RCPT TO (RFC 5321 section 4.1.2, with
// RFC 6531 SMTPUTF8). The input is untrusted client text: every error is a
// PathError carrying the SMTP reply to send, never a throw or an abort.
//
// Parsing is syntactic only and deliberately literal: a quoted local part
// with '@' inside, the percent hack (a%b@c), bang paths (a!b@c) and address
// literals stay exactly what RFC 5321 says they are (the local part is opaque
// to us; the relay's policy decides who may use which address). Source routes
// (<@a,@b:u@c>) are refused rather than silently stripped, because a
// submission server must not let a client pick the route.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sg::smtp {

struct Mailbox {
  std::string local;   // unquoted: "a b"@x gives `a b`; case preserved
  std::string domain;  // as sent: host name or address literal with brackets "[1.2.3.4]"

  // local@domain with the local part quoted again when it is not a dot-string;
  // "" for the null path (callers add the angle brackets).
  std::string str() const;
  bool null() const { return local.empty() && domain.empty(); }
  // Domains compare case-insensitively (ASCII only; U-labels are left as they are).
  std::string domain_lower() const;
  bool address_literal() const { return !domain.empty() && domain.front() == '['; }
  bool operator==(const Mailbox&) const = default;
};

// An SMTP reply for a refused path, e.g. {501, "5.1.3", "Bad address syntax"}.
struct PathError {
  int code = 501;
  std::string enhanced;
  std::string text;
};

class PathResult {
 public:
  PathResult(Mailbox mailbox) : v_(std::move(mailbox)) {}
  PathResult(PathError error) : v_(std::move(error)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const Mailbox& value() const& { return std::get<0>(v_); }
  Mailbox&& value() && { return std::get<0>(std::move(v_)); }
  const PathError& error() const { return std::get<1>(v_); }

 private:
  std::variant<Mailbox, PathError> v_;
};

// RFC 5321 limits (section 4.5.3.1), in octets; the path counts its brackets.
inline constexpr std::size_t kMaxLocalPart = 64;
inline constexpr std::size_t kMaxDomain = 255;
inline constexpr std::size_t kMaxPath = 256;

// Parses "<...>" (the whole text, nothing before or after). `<>` is the null
// path, allowed only when null_allowed. Non-ASCII (well-formed UTF-8 only) is
// allowed only when utf8_allowed, else 553 5.6.7. Syntax errors give 501 5.1.3,
// source routes 553 5.1.0. `<postmaster>` without a domain is refused like any
// address without a domain (a submission relay has no local mailboxes).
PathResult parse_path(std::string_view text, bool null_allowed, bool utf8_allowed);

// Length of the "<...>" path at the start of `text` (a '>' inside a quoted
// local part does not end it), or npos when `text` does not start with a
// complete one. Used to split "MAIL FROM:<path> PARAMS".
std::size_t path_length(std::string_view text);

// True when `bytes` is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF).
bool valid_utf8(std::string_view bytes);

}  // namespace sg::smtp
