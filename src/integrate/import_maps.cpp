// Postfix sasl_passwd (a postmap(1) source table) and msmtprc (msmtp's
// conf.c rules: command, blanks, argument; one pair of surrounding double
// quotes removed, no escapes).
#include <map>

#include "base/text.hpp"
#include "integrate/import.hpp"
#include "integrate/import_lines.hpp"

namespace sg::integrate {
namespace {

using detail::is_blank;
using detail::Line;

// "[host]:port", "host:port", "host" -> host; "@domain" or "user@domain"
// (sender-dependent keys) -> empty.
std::string host_of_key(std::string_view key) {
  if (key.find('@') != std::string_view::npos) return {};
  if (!key.empty() && key[0] == '[') {
    std::size_t close = key.find(']');
    return std::string(key.substr(1, close == std::string_view::npos ? key.size() - 1 : close - 1));
  }
  return std::string(key.substr(0, key.find(':')));
}

}  // namespace

ParseResult parse_sasl_passwd(std::string_view text) {
  ParseResult out;
  auto is_comment = [](std::string_view s) {
    std::string_view t = detail::trim_blanks(s);
    return t.empty() || t[0] == '#';
  };
  detail::for_each_continued_entry(text, is_comment, [&](const detail::ContinuedEntry& e) {
    std::string_view t = detail::trim_blanks(e.first);
    std::size_t sp = t.find_first_of(" \t");
    std::string key(t.substr(0, sp));
    std::string joined =
        (sp == std::string_view::npos ? std::string() : std::string(trim(t.substr(sp)))) + e.more;
    std::string value(trim(joined));
    wipe(joined.data(), joined.size());
    std::size_t colon = value.find(':');
    if (value.empty() || colon == std::string::npos || colon == 0) {
      out.warnings.push_back(detail::at_line(e.line, "value is not user:password"));
      wipe(value.data(), value.size());
      return;
    }
    Finding f;
    f.kind = "postfix-sasl-passwd";
    f.line = e.line;
    f.host = host_of_key(key);
    f.username = value.substr(0, colon);
    if (f.host.empty()) f.note = "sender-dependent entry for " + key;
    f.begin = e.begin;
    f.end = e.end;
    f.scrub_before = "# " + key + " " + f.username + ":<password moved to smtpguard vault entry ";
    f.scrub_after = "> (run postmap on this file again)";
    std::string password = value.substr(colon + 1);
    wipe(value.data(), value.size());
    detail::add_finding(out, std::move(f), password);
  });
  return out;
}

ParseResult parse_msmtprc(std::string_view text) {
  ParseResult out;
  struct Block {
    std::string name, host, user;
  };
  struct Pending {
    Finding f;
    std::string password;
    std::size_t block = 0;
  };
  std::vector<Block> blocks{{"defaults", "", ""}};
  std::map<std::string, std::size_t> by_name;
  std::vector<Pending> pending;
  std::size_t current = 0;
  for (const Line& l : detail::split_lines(text)) {
    std::string_view raw = text.substr(l.begin, l.end - l.begin);
    std::string_view s = detail::trim_blanks(raw);
    if (s.empty() || s[0] == '#') continue;
    std::size_t sp = s.find_first_of(" \t");
    std::string_view cmd = s.substr(0, sp);
    std::string_view arg = sp == std::string_view::npos ? "" : detail::trim_blanks(s.substr(sp));
    if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"')
      arg = arg.substr(1, arg.size() - 2);
    if (cmd == "defaults") {
      current = 0;
    } else if (cmd == "account") {
      // "account NAME : PARENT, ..." starts from the defaults, then the parents.
      std::string_view name = trim(arg.substr(0, arg.find(':')));
      Block b{std::string(name), blocks[0].host, blocks[0].user};
      if (arg.find(':') != std::string_view::npos) {
        for (auto parent : split(arg.substr(arg.find(':') + 1), ',')) {
          auto it = by_name.find(std::string(trim(parent)));
          if (it == by_name.end()) continue;
          if (!blocks[it->second].host.empty()) b.host = blocks[it->second].host;
          if (!blocks[it->second].user.empty()) b.user = blocks[it->second].user;
        }
      }
      blocks.push_back(std::move(b));
      current = blocks.size() - 1;
      by_name[blocks[current].name] = current;
    } else if (cmd == "host") {
      blocks[current].host = std::string(arg);
    } else if (cmd == "user") {
      blocks[current].user = std::string(arg);
    } else if (cmd == "password" || cmd == "passwordeval") {
      Pending p;
      p.block = current;
      p.f.kind = "msmtprc";
      p.f.line = l.number;
      p.f.begin = l.begin;
      p.f.end = l.end;
      std::string indent(raw.substr(0, raw.find_first_not_of(" \t")));
      p.f.scrub_before = indent + "# password moved to smtpguard vault entry ";
      p.f.scrub_after = " (smtpguard import)";
      if (cmd == "passwordeval") {
        if (arg.empty()) continue;
        p.f.importable = false;
        p.f.note = "passwordeval runs a command for the password; nothing to import";
      } else {
        p.password = std::string(arg);
      }
      pending.push_back(std::move(p));
    }
  }
  // Host and user may come after the password within the account.
  for (auto& p : pending) {
    const Block& b = blocks[p.block];
    p.f.host = b.host;
    p.f.username = b.user;
    if (p.f.note.empty()) p.f.note = "account " + b.name;
    if (!p.f.importable) {
      out.findings.push_back(std::move(p.f));
    } else {
      detail::add_finding(out, std::move(p.f), p.password);
    }
  }
  return out;
}

}  // namespace sg::integrate
