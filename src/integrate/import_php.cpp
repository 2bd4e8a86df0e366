// PHP: define('WPMS_SMTP_PASS', '...') style constants (wp-config.php) and
// PHPMailer property assignments ($mail->Password = '...';). A small lexer
// skips inline HTML, comments, heredocs and backtick strings, and decodes
// string literals: '...' takes \' and \\; "..." takes PHP's escapes and is
// not a literal when it interpolates a variable.
#include "base/text.hpp"
#include "integrate/import.hpp"
#include "integrate/import_lines.hpp"

namespace sg::integrate {
namespace {

using detail::Role;

enum class Tok { ident, var, str, op, other };
struct Token {
  Tok type = Tok::other;
  std::string text;     // identifier/operator text, or the decoded string
  bool literal = true;  // str: no interpolation
  std::size_t begin = 0, end = 0, line = 0;
};

bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) {
  return ident_start(c) || (c >= '0' && c <= '9');
}
int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void put_utf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | ((cp >> 18) & 0x07));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes the body of a double-quoted string (without the quotes).
void decode_double(std::string_view s, Token& t) {
  std::string& out = t.text;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '$' && i + 1 < s.size() && (ident_start(s[i + 1]) || s[i + 1] == '{'))
      t.literal = false;
    if (c != '\\' || i + 1 >= s.size()) {
      out += c;
      continue;
    }
    char n = s[i + 1];
    switch (n) {
      case 'n':
        out += '\n';
        ++i;
        continue;
      case 't':
        out += '\t';
        ++i;
        continue;
      case 'r':
        out += '\r';
        ++i;
        continue;
      case 'v':
        out += '\v';
        ++i;
        continue;
      case 'e':
        out += '\x1b';
        ++i;
        continue;
      case 'f':
        out += '\f';
        ++i;
        continue;
      case '\\':
      case '$':
      case '"':
        out += n;
        ++i;
        continue;
      default:
        break;
    }
    if (n >= '0' && n <= '7') {
      int v = 0, k = 0;
      for (++i; k < 3 && i < s.size() && s[i] >= '0' && s[i] <= '7'; ++k, ++i)
        v = v * 8 + (s[i] - '0');
      out += static_cast<char>(v & 0xff);
      --i;
    } else if (n == 'x' && i + 2 < s.size() && hexv(s[i + 2]) >= 0) {
      int v = 0, k = 0;
      for (i += 2; k < 2 && i < s.size() && hexv(s[i]) >= 0; ++k, ++i) v = v * 16 + hexv(s[i]);
      out += static_cast<char>(v);
      --i;
    } else if (n == 'u' && i + 2 < s.size() && s[i + 2] == '{' &&
               s.find('}', i + 3) != std::string_view::npos) {
      std::size_t close = s.find('}', i + 3);
      unsigned long cp = 0;
      bool ok = close > i + 3 && close - (i + 3) <= 6;
      for (std::size_t j = i + 3; ok && j < close; ++j) {
        ok = hexv(s[j]) >= 0;
        if (ok) cp = cp * 16 + static_cast<unsigned long>(hexv(s[j]));
      }
      if (!ok || cp > 0x10FFFF) {
        out += c;  // PHP rejects it; keep the text so nothing is invented
        continue;
      }
      put_utf8(out, cp);
      i = close;
    } else {
      out += c;  // unknown escape: the backslash stays
    }
  }
}

std::vector<Token> lex(std::string_view s) {
  std::vector<Token> toks;
  std::size_t i = 0, line = 1;
  auto advance_to = [&](std::size_t j) {
    for (; i < j && i < s.size(); ++i)
      if (s[i] == '\n') ++line;
    i = std::min(j, s.size());
  };
  bool php = false;
  while (i < s.size()) {
    if (!php) {
      std::size_t open = s.find("<?", i);
      if (open == std::string_view::npos) break;
      std::size_t after = open + 2;
      if (s.substr(after, 3) == "php" || s.substr(after, 3) == "PHP")
        after += 3;
      else if (after < s.size() && s[after] == '=')
        after += 1;
      advance_to(after);
      php = true;
      continue;
    }
    char c = s[i];
    if (detail::is_space(c)) {
      advance_to(i + 1);
    } else if (c == '?' && i + 1 < s.size() && s[i + 1] == '>') {
      advance_to(i + 2);
      php = false;
    } else if ((c == '#' && !(i + 1 < s.size() && s[i + 1] == '[')) ||
               (c == '/' && i + 1 < s.size() && s[i + 1] == '/')) {
      // A line comment ends at the newline or at "?>", whichever comes first.
      std::size_t nl = std::min(s.find('\n', i), s.size());
      std::size_t close = s.substr(0, nl).find("?>", i);
      advance_to(std::min(nl, close));
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      std::size_t close = s.find("*/", i + 2);
      advance_to(close == std::string_view::npos ? s.size() : close + 2);
    } else if (c == '\'' || c == '"' || c == '`') {
      Token t;
      t.type = c == '`' ? Tok::other : Tok::str;
      t.begin = i;
      t.line = line;
      std::size_t j = i + 1;
      while (j < s.size() && s[j] != c) j += (s[j] == '\\') ? 2 : 1;
      std::size_t close = std::min(j, s.size());
      std::string_view body = s.substr(i + 1, close - (i + 1));
      if (c == '\'') {
        for (std::size_t k = 0; k < body.size(); ++k) {
          if (body[k] == '\\' && k + 1 < body.size() &&
              (body[k + 1] == '\'' || body[k + 1] == '\\'))
            ++k;
          t.text += body[k];
        }
      } else if (c == '"') {
        decode_double(body, t);
      }
      if (close >= s.size()) t.type = Tok::other;  // unterminated
      advance_to(close + 1);
      t.end = i;
      toks.push_back(std::move(t));
    } else if (c == '<' && s.substr(i, 3) == "<<<") {
      // Heredoc/nowdoc: skip to a line that starts (after blanks) with the label.
      std::size_t j = i + 3;
      while (j < s.size() && (detail::is_blank(s[j]) || s[j] == '"' || s[j] == '\'')) ++j;
      std::size_t k = j;
      while (k < s.size() && ident_char(s[k])) ++k;
      std::string label(s.substr(j, k - j));
      std::size_t pos = s.find('\n', k), end = s.size();
      while (!label.empty() && pos != std::string_view::npos) {
        std::size_t b = pos + 1;
        while (b < s.size() && detail::is_blank(s[b])) ++b;
        if (s.substr(b, label.size()) == label &&
            (b + label.size() >= s.size() || !ident_char(s[b + label.size()]))) {
          end = b + label.size();
          break;
        }
        pos = s.find('\n', b);
      }
      toks.push_back(Token{Tok::other, "", false, i, end, line});
      advance_to(end);
    } else if (c == '$' && i + 1 < s.size() && ident_start(s[i + 1])) {
      std::size_t j = i + 1;
      while (j < s.size() && ident_char(s[j])) ++j;
      toks.push_back(Token{Tok::var, std::string(s.substr(i, j - i)), true, i, j, line});
      advance_to(j);
    } else if (ident_start(c) || c == '\\') {
      std::size_t j = i + 1;
      while (j < s.size() && (ident_char(s[j]) || s[j] == '\\')) ++j;
      toks.push_back(Token{Tok::ident, std::string(s.substr(i, j - i)), true, i, j, line});
      advance_to(j);
    } else {
      std::size_t len = (s.substr(i, 2) == "->" || s.substr(i, 2) == "::" ||
                         s.substr(i, 2) == "=>" || s.substr(i, 2) == "==")
                            ? 2
                            : 1;
      toks.push_back(Token{Tok::op, std::string(s.substr(i, len)), true, i, i + len, line});
      advance_to(i + len);
    }
  }
  return toks;
}

bool is_op(const std::vector<Token>& t, std::size_t i, std::string_view op) {
  return i < t.size() && t[i].type == Tok::op && t[i].text == op;
}

// A string literal that is the whole value: followed by ) , or ;
bool whole_literal(const std::vector<Token>& t, std::size_t i) {
  return i < t.size() && t[i].type == Tok::str && t[i].literal &&
         (is_op(t, i + 1, ")") || is_op(t, i + 1, ",") || is_op(t, i + 1, ";"));
}

Finding php_finding(const Token& value, std::string_view kind) {
  Finding f;
  f.kind = std::string(kind);
  f.line = value.line;
  f.begin = value.begin;
  f.end = value.end;
  f.scrub_before = "'' /* moved to smtpguard vault ";
  f.scrub_after = " */";
  return f;
}

}  // namespace

ParseResult parse_php(std::string_view text) {
  ParseResult out;
  std::vector<Token> t = lex(text);
  // define('NAME', 'value') constants, by role.
  struct Const {
    detail::NameRole role;
    std::size_t value;
  };
  std::vector<Const> consts;
  // $obj->Username/Password/Host = 'value';
  struct Prop {
    std::string receiver, name;
    std::size_t value;
  };
  std::vector<Prop> props;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i].type == Tok::ident && iequals(t[i].text, "define") && is_op(t, i + 1, "(") &&
        !(i > 0 && (is_op(t, i - 1, "->") || is_op(t, i - 1, "::"))) && i + 4 < t.size() &&
        t[i + 2].type == Tok::str && is_op(t, i + 3, ",") && whole_literal(t, i + 4)) {
      auto role = detail::classify_name(t[i + 2].text);
      if (role.role != Role::none) consts.push_back({role, i + 4});
    }
    if (is_op(t, i, "->") && i > 0 && i + 3 < t.size() && t[i + 1].type == Tok::ident &&
        (t[i + 1].text == "Username" || t[i + 1].text == "Password" || t[i + 1].text == "Host") &&
        is_op(t, i + 2, "=") && whole_literal(t, i + 3)) {
      props.push_back({t[i - 1].text, t[i + 1].text, i + 3});
    }
  }
  for (const auto& c : consts) {
    if (c.role.role != Role::password) continue;
    Finding f = php_finding(t[c.value], "wp-config");
    for (const auto& o : consts) {
      if (o.role.role == Role::user && o.role.group == c.role.group) f.username = t[o.value].text;
      if (o.role.role == Role::host && detail::host_matches(o.role.group, c.role.group))
        f.host = t[o.value].text;
    }
    std::string password = t[c.value].text;
    detail::add_finding(out, std::move(f), password);
  }
  for (const auto& p : props) {
    if (p.name != "Password") continue;
    Finding f = php_finding(t[p.value], "phpmailer");
    // The receiver's Username and Host: the last set before, else the first after.
    for (const auto& o : props) {
      if (o.receiver != p.receiver) continue;
      bool before = o.value < p.value;
      if (o.name == "Username" && (before || f.username.empty())) f.username = t[o.value].text;
      if (o.name == "Host" && (before || f.host.empty())) f.host = t[o.value].text;
    }
    std::string password = t[p.value].text;
    detail::add_finding(out, std::move(f), password);
  }
  for (auto& tok : t)
    if (tok.type == Tok::str) wipe(tok.text.data(), tok.text.size());
  return out;
}

}  // namespace sg::integrate
