// Strict address parsing and sender-pattern matching: the defence against
// the open-relay tricks (percent hack, quoted '@', source routes, bang
// paths, address literals, double '@') is that nothing is ever matched on a
// substring, only on the parsed parts.
#include "policy/address.hpp"

#include "base/text.hpp"

namespace sg::policy {
namespace {

constexpr std::size_t kMaxAddress = 254;  // RFC 5321 path (256) minus "<>"
constexpr std::size_t kMaxLocal = 64;
constexpr std::size_t kMaxDomain = 255;
constexpr std::size_t kMaxLabel = 63;

bool is_utf8_byte(char c) {
  return static_cast<unsigned char>(c) >= 0x80;
}

bool is_atext(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  if (is_utf8_byte(c)) return true;  // SMTPUTF8
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

Error bad(std::string_view address, std::string_view why) {
  return make_error(Errc::invalid_input,
                    "address <" + printable(address) + ">: " + std::string(why));
}

bool valid_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.' && prev == '.') return false;
    if (c != '.' && !is_atext(c)) return false;
    prev = c;
  }
  return true;
}

// "..." with printable ASCII, UTF-8 and backslash pairs inside.
bool valid_quoted(std::string_view s) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    char c = s[i];
    if (c == '\\') {
      if (++i + 1 >= s.size()) return false;
      c = s[i];
      if ((c < 0x20 || c == 0x7f) && !is_utf8_byte(c)) return false;
      continue;
    }
    if (c == '"') return false;
    if ((c < 0x20 || c == 0x7f) && !is_utf8_byte(c)) return false;
  }
  return true;
}

bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomain) return false;
  for (std::string_view label : split(d, '.')) {
    if (label.empty() || label.size() > kMaxLabel) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || is_utf8_byte(c);
      if (!ok) return false;
    }
  }
  return true;
}

// Position of the last '@' outside a quoted string, or npos; false when the
// quotes do not balance.
bool last_unquoted_at(std::string_view s, std::size_t& at) {
  at = std::string_view::npos;
  bool quoted = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (quoted && s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      quoted = !quoted;
    } else if (!quoted && s[i] == '@') {
      at = i;
    }
  }
  return !quoted;
}

// Plain local parts may match wildcard patterns (see SenderPattern).
bool plain_local(const Mailbox& m) {
  return !m.quoted && m.local.find_first_of("%!") == std::string::npos;
}

}  // namespace

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (text.size() > max) out += "...";
  return out;
}

Result<Mailbox> parse_mailbox(std::string_view address) {
  if (address.empty()) return bad(address, "empty address");
  if (address.size() > kMaxAddress) return bad(address, "longer than 254 octets");
  if (address.front() == '@') return bad(address, "source routes are not accepted");
  if (address.front() == '<' || address.back() == '>')
    return bad(address, "expected local@domain without angle brackets");
  std::size_t at = 0;
  if (!last_unquoted_at(address, at)) return bad(address, "unbalanced quotes");
  if (at == std::string_view::npos) return bad(address, "no @domain");
  Mailbox m;
  m.local = std::string(address.substr(0, at));
  m.domain = std::string(address.substr(at + 1));
  if (m.local.empty()) return bad(address, "empty local part");
  if (m.local.size() > kMaxLocal) return bad(address, "local part longer than 64 octets");
  m.quoted = m.local.front() == '"';
  if (m.quoted ? !valid_quoted(m.local) : !valid_dot_atom(m.local))
    return bad(address, m.local.find('@') != std::string::npos
                            ? "more than one @ (quote the local part if you mean it)"
                            : "invalid local part");
  if (!m.domain.empty() && m.domain.front() == '[')
    return bad(address, "address literals are not accepted");
  if (!valid_domain(m.domain)) return bad(address, "invalid domain");
  return m;
}

Result<SenderPattern> SenderPattern::parse(std::string_view text) {
  SenderPattern p;
  p.text_ = std::string(text);
  if (text == "<>") {
    p.kind_ = Kind::null_sender;
    return p;
  }
  auto fail = [&](std::string_view why) {
    return make_error(Errc::invalid_input,
                      "allowed sender \"" + printable(text) + "\": " + std::string(why));
  };
  if (text.rfind("*@", 0) == 0) {
    std::string_view domain = text.substr(2);
    p.kind_ = Kind::domain;
    if (domain.rfind("*.", 0) == 0) {
      domain.remove_prefix(2);
      p.kind_ = Kind::subdomains;
    }
    if (!valid_domain(domain))
      return fail("expected *@domain, *@*.domain, <> or an address (domain is not a host name)");
    p.domain_ = to_lower(domain);
    return p;
  }
  if (text.find('*') != std::string_view::npos)
    return fail("'*' only as \"*@domain\" or \"*@*.domain\"");
  auto m = parse_mailbox(text);
  if (!m) return fail(m.error().message);
  p.kind_ = Kind::exact;
  p.local_ = std::move(m->local);
  p.domain_ = to_lower(m->domain);
  return p;
}

bool SenderPattern::matches(std::string_view address) const {
  if (kind_ == Kind::null_sender) return address.empty();
  auto m = parse_mailbox(address);
  if (!m) return false;
  const std::string domain = to_lower(m->domain);
  switch (kind_) {
    case Kind::exact:
      return m->local == local_ && domain == domain_;
    case Kind::domain:
      return plain_local(*m) && domain == domain_;
    case Kind::subdomains:
      return plain_local(*m) && domain.size() > domain_.size() + 1 &&
             domain.compare(domain.size() - domain_.size(), domain_.size(), domain_) == 0 &&
             domain[domain.size() - domain_.size() - 1] == '.';
    case Kind::null_sender:
      break;
  }
  return false;
}

bool any_matches(const std::vector<SenderPattern>& patterns, std::string_view address) {
  for (const auto& p : patterns)
    if (p.matches(address)) return true;
  return false;
}

}  // namespace sg::policy
