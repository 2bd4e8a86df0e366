// toml++ 3.3.0 (Debian 12) reaches __builtin_unreachable() when it meets
// certain non-ASCII code points (e.g. U+00A1..U+0499) where it looks for
// whitespace: outside strings and comments, while reading ahead through a
// bare value (numbers, dates: 0["..." is read past the quote), and after a
// line-ending backslash in a """ string (upstream marzer/tomlplusplus#190,
// #295). Such text is almost always a syntax error anyway, so a small TOML
// lexer finds non-ASCII text that toml++ could reach that way and reports it
// itself; toml++ never sees it. The price: a string or comment glued to a
// bare value ("x=1#é") may not hold non-ASCII text.
#include "config/sections.hpp"
#include "config/toml_reader.hpp"

namespace sg::config::detail {
namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}
bool is_ascii_space(char c) {
  return is_blank(c) || c == '\n';
}
bool non_ascii(char c) {
  return static_cast<unsigned char>(c) >= 0x80;
}

class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  // Offset of the first byte toml++ must not see, or npos.
  std::size_t find_unsafe() {
    if (at("\xEF\xBB\xBF")) i_ += 3;  // UTF-8 byte order mark
    while (i_ < text_.size() && bad_ == npos) step();
    return bad_;
  }

 private:
  static constexpr std::size_t npos = std::string_view::npos;

  void step() {
    const char c = text_[i_];
    // A string or comment glued to a bare value may be read ahead by toml++.
    const bool tainted = in_bare_value_;
    if (c == '#') {
      comment(tainted);
    } else if (at("\"\"\"") || at("'''")) {
      multiline(c, tainted);
    } else if (c == '"' || c == '\'') {
      single_line(c, tainted);
    } else if (non_ascii(c)) {
      bad_ = i_;
    } else {
      if (c == '\n') {
        seen_equals_on_line_ = false;
        in_bare_value_ = false;
      } else if (is_blank(c) || c == ',' || c == ']' || c == '}') {
        in_bare_value_ = false;
      } else if (c == '=' && !seen_equals_on_line_) {
        seen_equals_on_line_ = true;  // end of the key; the value starts fresh
        in_bare_value_ = false;
      } else if (c != '[' && c != '{') {
        in_bare_value_ = true;
      }
      ++i_;
    }
  }

  bool at(std::string_view s) const { return text_.substr(i_, s.size()) == s; }
  void check(bool tainted) {
    if (tainted && non_ascii(text_[i_]) && bad_ == npos) bad_ = i_;
  }

  void comment(bool tainted) {
    while (i_ < text_.size() && text_[i_] != '\n') {
      check(tainted);
      ++i_;
    }
  }
  void single_line(char quote, bool tainted) {
    ++i_;
    while (i_ < text_.size() && text_[i_] != quote && text_[i_] != '\n') {
      check(tainted);
      i_ += (quote == '"' && text_[i_] == '\\') ? 2 : 1;
    }
    if (i_ < text_.size() && text_[i_] == quote) ++i_;
  }
  void multiline(char quote, bool tainted) {
    const std::string_view delimiter = quote == '"' ? "\"\"\"" : "'''";
    i_ += 3;
    while (i_ < text_.size() && bad_ == npos) {
      if (at(delimiter)) {
        i_ += 3;  // up to two more quotes belong to the content
        for (int extra = 0; extra < 2 && i_ < text_.size() && text_[i_] == quote; ++extra) ++i_;
        return;
      }
      check(tainted);
      if (quote == '"' && text_[i_] == '\\' && i_ + 1 < text_.size() &&
          is_ascii_space(text_[i_ + 1])) {
        ++i_;  // line-ending backslash: toml++ tests each following code point for whitespace
        while (i_ < text_.size() && is_ascii_space(text_[i_])) ++i_;
        if (i_ < text_.size() && non_ascii(text_[i_])) bad_ = i_;
        continue;
      }
      i_ += (quote == '"' && text_[i_] == '\\') ? 2 : 1;
    }
  }

  std::string_view text_;
  std::size_t i_ = 0;
  std::size_t bad_ = npos;
  bool in_bare_value_ = false;
  bool seen_equals_on_line_ = false;
};

}  // namespace

void reject_unsafe_non_ascii(std::string_view text, std::string_view file) {
  std::size_t bad = Scanner(text).find_unsafe();
  if (bad == std::string_view::npos) return;
  std::size_t line = 1, column = 1;
  for (std::size_t k = 0; k < bad; ++k) {
    if (text[k] == '\n') {
      ++line;
      column = 1;
    } else if ((static_cast<unsigned char>(text[k]) & 0xC0) != 0x80) {
      ++column;  // count code points, not UTF-8 continuation bytes
    }
  }
  throw ConfigFailure{std::string(file) + ":" + std::to_string(line) + ":" +
                      std::to_string(column) +
                      ": TOML syntax error: unexpected non-ASCII character outside a quoted "
                      "string or comment"};
}

}  // namespace sg::config::detail
