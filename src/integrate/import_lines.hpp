// Internal to the import parsers: physical lines with byte offsets, the
// variable-name roles shared by .env and PHP define(), and small helpers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.hpp"
#include "integrate/import.hpp"

namespace sg::integrate::detail {

struct Line {
  std::size_t begin = 0, end = 0;  // end excludes "\n" and a "\r" before it
  std::size_t number = 0;          // 1-based
  bool crlf = false;
};
std::vector<Line> split_lines(std::string_view text);

inline bool is_blank(char c) {
  return c == ' ' || c == '\t';
}
inline bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}
std::string_view trim_blanks(std::string_view s);  // spaces and tabs (and a stray \r)

// What an environment variable or constant name says about its value:
// MAIL_PASSWORD -> {password, "MAIL"}, WPMS_SMTP_USER -> {user, "WPMS_SMTP"};
// only names whose group mentions MAIL, SMTP or SES count.
enum class Role { none, user, password, host };
struct NameRole {
  Role role = Role::none;
  std::string group;  // upper case
};
NameRole classify_name(std::string_view name);
// Whether a host variable of `host_group` belongs with a password of `group`
// (EMAIL_HOST goes with EMAIL_HOST_PASSWORD).
bool host_matches(std::string_view host_group, std::string_view group);

// One entry of a line-based table whose entries continue on the lines after
// it that start with a blank (Exim's lsearch files, postmap(1) sources).
struct ContinuedEntry {
  std::string_view first;  // the entry's first line, as written
  // The continuation lines, blanks trimmed, each after one space. It may
  // hold a password: for_each_continued_entry wipes it after the callback.
  std::string more;
  std::size_t begin = 0, end = 0;  // bytes of all its lines in the text
  std::size_t line = 0;            // number of its first line
};
// Calls on_entry(const ContinuedEntry&) for each entry in order. Empty lines
// and lines `is_comment(raw line)` says are comments are skipped, also
// between an entry's lines; blank-only lines add nothing.
template <class IsComment, class OnEntry>
void for_each_continued_entry(std::string_view text, IsComment is_comment, OnEntry on_entry) {
  ContinuedEntry entry;
  bool open = false;
  auto finish = [&] {
    if (!open) return;
    open = false;
    on_entry(static_cast<const ContinuedEntry&>(entry));
    wipe(entry.more.data(), entry.more.size());
    entry.more.clear();
  };
  for (const Line& l : split_lines(text)) {
    std::string_view s = text.substr(l.begin, l.end - l.begin);
    if (s.empty() || is_comment(s)) continue;
    if (is_blank(s[0])) {
      std::string_view more = trim_blanks(s);
      if (open && !more.empty()) {
        entry.more += ' ';
        entry.more.append(more);
        entry.end = l.end;
      }
      continue;
    }
    finish();
    open = true;
    entry.first = s;
    entry.begin = l.begin;
    entry.end = l.end;
    entry.line = l.number;
  }
  finish();
}

// "line N: what"
std::string at_line(std::size_t line, std::string_view what);

// Appends a finding unless the password is a placeholder (then wipes it).
void add_finding(ParseResult& out, Finding f, std::string& password);

}  // namespace sg::integrate::detail
