// .env files, read as phpdotenv 5 (what Laravel uses) reads them: optional
// "export", NAME = value; '...' is literal; "..." takes \" \\ \$ \f \n \r
// \t \v; an unquoted value ends at white space or '#'. ${VAR} references
// are not literal credentials. Multi-line quoted values are not read.
#include "integrate/import.hpp"
#include "integrate/import_lines.hpp"

namespace sg::integrate {
namespace {

using detail::Line;
using detail::Role;

struct Var {
  std::string name, group, value;
  Role role = Role::none;
  std::size_t line = 0, begin = 0, end = 0;
  std::string prefix;  // the line up to and including '='
  bool crlf = false;
  bool literal = true;
};

// Decodes the value part; false (with a warning) when phpdotenv would reject it.
bool decode_value(std::string_view v, Var& var, std::size_t line, ParseResult& out) {
  v = detail::trim_blanks(v);
  std::string& val = var.value;
  std::size_t i = 0;
  auto rest_ok = [&](std::size_t j) {
    while (j < v.size() && detail::is_space(v[j])) ++j;
    return j >= v.size() || v[j] == '#';
  };
  if (!v.empty() && v[0] == '\'') {
    std::size_t close = v.find('\'', 1);
    if (close == std::string_view::npos) {
      out.warnings.push_back(
          detail::at_line(line, "unterminated quote (multi-line values are not read)"));
      return false;
    }
    val = std::string(v.substr(1, close - 1));
    return rest_ok(close + 1) ||
           (out.warnings.push_back(detail::at_line(line, "text after the closing quote")), false);
  }
  if (!v.empty() && v[0] == '"') {
    for (i = 1; i < v.size() && v[i] != '"'; ++i) {
      char c = v[i];
      if (c == '$' && i + 1 < v.size() && v[i + 1] == '{') var.literal = false;
      if (c != '\\') {
        val += c;
        continue;
      }
      if (++i >= v.size()) break;
      switch (v[i]) {
        case '"':
        case '\\':
        case '$':
          val += v[i];
          break;
        case 'f':
          val += '\f';
          break;
        case 'n':
          val += '\n';
          break;
        case 'r':
          val += '\r';
          break;
        case 't':
          val += '\t';
          break;
        case 'v':
          val += '\v';
          break;
        default:
          out.warnings.push_back(detail::at_line(line, "unexpected escape sequence"));
          return false;
      }
    }
    if (i >= v.size()) {
      out.warnings.push_back(
          detail::at_line(line, "unterminated quote (multi-line values are not read)"));
      return false;
    }
    return rest_ok(i + 1) ||
           (out.warnings.push_back(detail::at_line(line, "text after the closing quote")), false);
  }
  for (i = 0; i < v.size() && v[i] != '#' && !detail::is_space(v[i]); ++i) {
    if (v[i] == '$' && i + 1 < v.size() && v[i + 1] == '{') var.literal = false;
    val += v[i];
  }
  if (!rest_ok(i)) {
    out.warnings.push_back(detail::at_line(line, "unquoted value with white space"));
    return false;
  }
  return true;
}

}  // namespace

ParseResult parse_dotenv(std::string_view text) {
  ParseResult out;
  std::vector<Var> vars;
  for (const Line& l : detail::split_lines(text)) {
    std::string_view raw = text.substr(l.begin, l.end - l.begin);
    std::string_view s = detail::trim_blanks(raw);
    if (s.empty() || s[0] == '#') continue;
    std::size_t eq = s.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = detail::trim_blanks(s.substr(0, eq));
    if (name.size() > 7 && name.substr(0, 6) == "export" && detail::is_blank(name[6]))
      name = detail::trim_blanks(name.substr(7));
    if (name.size() >= 3 && (name[0] == '"' || name[0] == '\'') && name.back() == name[0])
      name = name.substr(1, name.size() - 2);
    auto role = detail::classify_name(name);
    if (role.role == Role::none) continue;
    Var var;
    var.name = std::string(name);
    var.group = role.group;
    var.role = role.role;
    var.line = l.number;
    var.begin = l.begin;
    var.end = l.end;
    var.crlf = l.crlf;
    var.prefix = std::string(raw.substr(0, raw.find('=') + 1));
    if (!decode_value(s.substr(eq + 1), var, l.number, out)) {
      wipe(var.value.data(), var.value.size());
      continue;
    }
    vars.push_back(std::move(var));
  }
  for (auto& pw : vars) {
    if (pw.role != Role::password) continue;
    Finding f;
    f.kind = "dotenv";
    f.line = pw.line;
    for (const auto& v : vars) {
      if (v.role == Role::user && v.group == pw.group && v.literal) f.username = v.value;
      if (v.role == Role::host && detail::host_matches(v.group, pw.group) && v.literal)
        f.host = v.value;
    }
    f.begin = pw.begin;
    f.end = pw.end;
    std::string indent = pw.prefix.substr(0, pw.prefix.find_first_not_of(" \t"));
    f.scrub_before = indent + "# " + pw.name + " moved to smtpguard vault entry ";
    f.scrub_after = " (smtpguard import)" + std::string(pw.crlf ? "\r\n" : "\n") + pw.prefix;
    if (!pw.literal) {
      wipe(pw.value.data(), pw.value.size());
      continue;
    }
    detail::add_finding(out, std::move(f), pw.value);
  }
  for (auto& v : vars) wipe(v.value.data(), v.value.size());
  return out;
}

}  // namespace sg::integrate
