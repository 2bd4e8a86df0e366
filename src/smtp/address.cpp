// RFC 5321 path parser (Path / Mailbox / Local-part / Domain / address-literal)
// with the RFC 6531 extensions (UTF-8 in atext, qtext and sub-domains).
#include "smtp/address.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "base/text.hpp"

namespace sg::smtp {

namespace {

unsigned char octet(char c) {
  return static_cast<unsigned char>(c);
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_8bit(char c) {
  return octet(c) >= 0x80;
}

// RFC 5322 atext; UTF-8 octets count too (the input was validated as UTF-8
// before, and non-ASCII is only present when SMTPUTF8 allows it).
bool is_atext(char c) {
  return is_alpha(c) || is_digit(c) || is_8bit(c) ||
         (c != '\0' && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

// qtextSMTP: printable ASCII except '"' and '\\', plus UTF-8.
bool is_qtext(char c) {
  const unsigned char u = octet(c);
  return (u >= 32 && u <= 126 && c != '"' && c != '\\') || u >= 0x80;
}

bool is_dot_string(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s[i + 1] == '.') return false;
    } else if (!is_atext(s[i])) {
      return false;
    }
  }
  return true;
}

// RFC 5321 sub-domain (Let-dig [Ldh-str]); U-label octets count as letters.
// Labels are also held to the DNS limit of 63 octets.
bool is_domain(std::string_view domain) {
  if (domain.empty()) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = domain.find('.', start);
    const std::string_view label = domain.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!is_alpha(c) && !is_digit(c) && !is_8bit(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool is_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t digits = 0;
    int value = 0;
    while (i < s.size() && is_digit(s[i]) && digits < 4)
      value = value * 10 + (s[i++] - '0'), ++digits;
    if (digits == 0 || digits > 3 || value > 255) return false;
    if (++parts == 4) return i == s.size();
    if (i >= s.size() || s[i] != '.') return false;
    ++i;
  }
}

// "[...]" with an IPv4 literal, "IPv6:" + IPv6-addr, or a General-address-literal.
bool is_address_literal(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
  const std::string_view inner = s.substr(1, s.size() - 2);
  if (is_ipv4(inner)) return true;
  if (istarts_with(inner, "IPv6:")) {
    const std::string address(inner.substr(5));
    // inet_pton would stop at a NUL; only hex digits, ':' and '.' belong here.
    if (address.size() > 45 ||
        address.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos)
      return false;
    unsigned char buffer[16];
    return inet_pton(AF_INET6, address.c_str(), buffer) == 1;
  }
  // Standardized-tag ":" 1*dcontent; the tag is an Ldh-str.
  const std::size_t colon = inner.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == inner.size()) return false;
  const std::string_view tag = inner.substr(0, colon);
  if (tag.back() == '-') return false;
  for (char c : tag)
    if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
  // dcontent, less '<' and '>': they would make the path's end ambiguous.
  for (char c : inner.substr(colon + 1)) {
    const unsigned char u = octet(c);
    if (u < 33 || u > 126 || c == '[' || c == '\\' || c == ']' || c == '<' || c == '>')
      return false;
  }
  return true;
}

PathError syntax_error(std::string text) {
  return PathError{501, "5.1.3", std::move(text)};
}

// Length of the UTF-8 sequence starting at s[i], 0 when malformed.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const unsigned char b0 = octet(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (octet(s[i + 1]) < lo || octet(s[i + 1]) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((octet(s[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

}  // namespace

bool valid_utf8(std::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    const std::size_t n = utf8_sequence(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string Mailbox::str() const {
  if (null()) return {};
  if (is_dot_string(local)) return local + "@" + domain;
  std::string out = "\"";
  for (char c : local) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"@" + domain;
}

std::string Mailbox::domain_lower() const {
  return to_lower(domain);
}

std::size_t path_length(std::string_view text) {
  if (text.empty() || text.front() != '<') return std::string_view::npos;
  std::size_t from = 1;
  // Only a quoted local part, right after '<', can hide a '>'.
  if (text.size() > 1 && text[1] == '"') {
    for (from = 2; from < text.size() && text[from] != '"'; ++from)
      if (text[from] == '\\') ++from;  // quoted-pair: the next octet is literal
    if (from >= text.size()) return std::string_view::npos;
  }
  const std::size_t end = text.find('>', from);
  return end == std::string_view::npos ? end : end + 1;
}

PathResult parse_path(std::string_view text, bool null_allowed, bool utf8_allowed) {
  if (text.size() < 2 || text.front() != '<' || text.back() != '>')
    return syntax_error("Bad address syntax: expected <address>");
  if (text.size() > kMaxPath) return syntax_error("Path too long (at most 256 octets)");
  const std::string_view inner = text.substr(1, text.size() - 2);
  if (inner.empty()) {
    if (null_allowed) return Mailbox{};
    return syntax_error("Null address not allowed here");
  }
  if (inner.front() == '@') return PathError{553, "5.1.0", "Source routes are not accepted"};
  bool eight_bit = false;
  for (char c : inner) eight_bit = eight_bit || is_8bit(c);
  if (eight_bit) {
    if (!utf8_allowed)
      return PathError{553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter"};
    if (!valid_utf8(inner)) return syntax_error("Bad address syntax: invalid UTF-8");
  }

  Mailbox mailbox;
  std::size_t at = 0;  // index of the '@' ending the local part
  if (inner.front() == '"') {
    std::size_t i = 1;
    for (; i < inner.size() && inner[i] != '"'; ++i) {
      if (inner[i] == '\\') {
        if (++i == inner.size() || octet(inner[i]) < 32 || octet(inner[i]) > 126)
          return syntax_error("Bad address syntax: invalid quoted-pair in local part");
      } else if (!is_qtext(inner[i])) {
        return syntax_error("Bad address syntax: invalid character in quoted local part");
      }
      mailbox.local.push_back(inner[i]);
    }
    if (i == inner.size()) return syntax_error("Bad address syntax: unterminated quoted string");
    at = i + 1;
    if (at == inner.size() || inner[at] != '@')
      return syntax_error("Bad address syntax: '@' domain must follow the quoted local part");
  } else {
    at = inner.find('@');
    if (at == std::string_view::npos) return syntax_error("Bad address syntax: missing @domain");
    mailbox.local = inner.substr(0, at);
    if (!is_dot_string(mailbox.local))
      return syntax_error("Bad address syntax: invalid local part");
  }
  if (at > kMaxLocalPart) return syntax_error("Local part too long (at most 64 octets)");

  const std::string_view domain = inner.substr(at + 1);
  if (domain.empty()) return syntax_error("Bad address syntax: missing domain");
  if (domain.size() > kMaxDomain) return syntax_error("Domain too long (at most 255 octets)");
  if (domain.find('@') != std::string_view::npos)
    return syntax_error("Bad address syntax: more than one '@' (quote the local part)");
  if (domain.front() == '[') {
    if (!is_address_literal(domain))
      return syntax_error("Bad address syntax: invalid address literal");
  } else if (!is_domain(domain)) {
    return syntax_error("Bad address syntax: invalid domain");
  }
  mailbox.domain = domain;
  return mailbox;
}

}  // namespace sg::smtp
