// Internal to the import parsers: physical lines with byte offsets, the
// variable-name roles shared by .env and PHP define(), and small helpers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

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

// "line N: what"
std::string at_line(std::size_t line, std::string_view what);

// Appends a finding unless the password is a placeholder (then wipes it).
void add_finding(ParseResult& out, Finding f, std::string& password);

}  // namespace sg::integrate::detail
