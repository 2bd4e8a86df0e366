// Pure parsers for doctor: /proc/net/tcp*, php.ini sendmail_path, firewall
// rule text. Input is untrusted: every field is checked, nothing throws.
#include <arpa/inet.h>

#include <array>
#include <bit>
#include <charconv>
#include <cstring>

#include "base/text.hpp"
#include "doctor/doctor.hpp"

namespace sg::doctor {
namespace {

constexpr std::size_t kMaxLines = 1'000'000;  // bounded whatever the input

bool parse_hex(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 16) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

// The kernel prints each 32-bit word of the address as the native integer
// holding network-order bytes ("0100007F" is 127.0.0.1 on little-endian).
bool word_bytes(std::string_view hex8, unsigned char* out) {
  std::uint64_t v = 0;
  if (hex8.size() != 8 || !parse_hex(hex8, v)) return false;
  auto w = static_cast<std::uint32_t>(v);
  for (int i = 0; i < 4; ++i) {
    int shift = std::endian::native == std::endian::little ? 8 * i : 8 * (3 - i);
    out[i] = static_cast<unsigned char>((w >> shift) & 0xff);
  }
  return true;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size() && out.size() < 32) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool has_smtp_port(std::string_view line) {
  // "dport 25", "dport { 25, 587 }", "--dport 587", "--dports 25,465,587"
  auto at = line.find("dport");
  if (at == std::string_view::npos) return false;
  std::string_view rest = line.substr(at);
  std::size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && !(rest[i] >= '0' && rest[i] <= '9')) ++i;
    std::size_t start = i;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
    auto num = rest.substr(start, i - start);
    if (num == "25" || num == "465" || num == "587") return true;
  }
  return false;
}

}  // namespace

std::vector<ListenSocket> parse_proc_net_tcp(std::string_view text, bool v6) {
  std::vector<ListenSocket> out;
  std::size_t n = 0;
  for (auto line : split(text, '\n')) {
    if (++n > kMaxLines) break;
    auto f = fields(line);
    // sl local rem st tx:rx tr:when retr uid timeout inode
    if (f.size() < 10 || f[3] != "0A") continue;
    auto colon = f[1].find(':');
    if (colon == std::string_view::npos) continue;
    auto addr_hex = f[1].substr(0, colon);
    std::uint64_t port = 0, inode = 0;
    if (!parse_hex(f[1].substr(colon + 1), port) || port > 0xffff) continue;
    auto [p, ec] = std::from_chars(f[9].data(), f[9].data() + f[9].size(), inode);
    if (ec != std::errc() || p != f[9].data() + f[9].size()) continue;
    ListenSocket s;
    s.port = static_cast<std::uint16_t>(port);
    s.inode = inode;
    char buf[INET6_ADDRSTRLEN] = {};
    if (!v6) {
      unsigned char b[4];
      if (addr_hex.size() != 8 || !word_bytes(addr_hex, b)) continue;
      ::inet_ntop(AF_INET, b, buf, sizeof buf);
      s.loopback = b[0] == 127;
    } else {
      std::array<unsigned char, 16> b{};
      if (addr_hex.size() != 32) continue;
      bool ok = true;
      for (int w = 0; w < 4 && ok; ++w)
        ok = word_bytes(addr_hex.substr(8 * w, 8), b.data() + 4 * w);
      if (!ok) continue;
      ::inet_ntop(AF_INET6, b.data(), buf, sizeof buf);
      static constexpr unsigned char kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      s.loopback = std::memcmp(b.data(), kLoop, 16) == 0 ||
                   (std::memcmp(b.data(), kMapped, 12) == 0 && b[12] == 127);
    }
    s.address = buf;
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<std::uint64_t> socket_inode(std::string_view link) {
  if (!link.starts_with("socket:[") || !link.ends_with("]")) return std::nullopt;
  auto digits = link.substr(8, link.size() - 9);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size())
    return std::nullopt;
  return v;
}

std::optional<std::string> ini_sendmail_path(std::string_view text, bool pool) {
  std::optional<std::string> found;
  std::size_t n = 0;
  for (auto line : split(text, '\n')) {
    if (++n > kMaxLines) break;
    line = trim(line);
    if (line.empty() || line.front() == ';' || line.front() == '#' || line.front() == '[') continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    bool match =
        pool ? (key == "php_admin_value[sendmail_path]" || key == "php_value[sendmail_path]")
             : key == "sendmail_path";
    if (!match) continue;
    // A trailing "; comment" outside quotes ends the value, as in PHP's parser.
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      auto close = value.find(value.front(), 1);
      value = close == std::string_view::npos ? value.substr(1) : value.substr(1, close - 1);
    } else if (auto semi = value.find(';'); semi != std::string_view::npos) {
      value = trim(value.substr(0, semi));
    }
    found = std::string(value);
  }
  return found;
}

EgressRules analyse_firewall(std::string_view ruleset) {
  EgressRules r;
  std::size_t n = 0;
  for (auto line : split(ruleset, '\n')) {
    if (++n > kMaxLines) break;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.find("skuid") != std::string_view::npos ||
        line.find("uid-owner") != std::string_view::npos)
      r.matches_owner = true;
    const std::string lower = to_lower(line);
    if (has_smtp_port(line) &&
        (lower.find("reject") != std::string::npos || lower.find("drop") != std::string::npos))
      r.blocks_smtp_ports = true;
  }
  return r;
}

}  // namespace sg::doctor
