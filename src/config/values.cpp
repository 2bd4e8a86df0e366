// Scalar value syntaxes used by the configuration: sizes, listen addresses,
// loopback hosts. Pure functions over untrusted text; errors, never throws.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <limits>

#include "base/text.hpp"
#include "config/config.hpp"
#include "config/quote.hpp"

namespace sg::config {

std::string detail::in_quotes(std::string_view text) {
  constexpr std::size_t kMaxShown = 64;
  std::string out = "\"";
  for (char c : text.substr(0, kMaxShown)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += '?';
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  if (text.size() > kMaxShown) out += "...";
  return out + "\"";
}

namespace {

using detail::in_quotes;

constexpr std::string_view kSizeHint =
    "expected a size such as \"40MB\", \"512k\", \"1GiB\" or a number of bytes";

Error size_error(std::string_view text) {
  return make_error(Errc::invalid_input, std::string(kSizeHint) + ", got " + in_quotes(text));
}

// Multiplier for a unit suffix; 0 when unknown. Decimal SI units, binary IEC units.
std::uint64_t unit_multiplier(std::string_view unit) {
  const std::string u = to_lower(unit);
  if (u.empty() || u == "b") return 1;
  if (u == "k" || u == "kb") return 1000ull;
  if (u == "m" || u == "mb") return 1000ull * 1000;
  if (u == "g" || u == "gb") return 1000ull * 1000 * 1000;
  if (u == "kib") return 1ull << 10;
  if (u == "mib") return 1ull << 20;
  if (u == "gib") return 1ull << 30;
  return 0;
}

bool parse_port(std::string_view text, std::uint16_t& port) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > 65535) return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

bool is_ipv6_literal(std::string_view host) {
  if (host.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, host.data(), host.size());
  in6_addr addr{};
  return ::inet_pton(AF_INET6, buf, &addr) == 1;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
  std::string_view t = trim(text);
  std::size_t digits = 0;
  while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
  if (digits == 0) return size_error(text);
  std::uint64_t number = 0;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t i = 0; i < digits; ++i) {
    auto d = static_cast<std::uint64_t>(t[i] - '0');
    if (number > (kMax - d) / 10) return size_error(text);
    number = number * 10 + d;
  }
  std::uint64_t multiplier = unit_multiplier(trim(t.substr(digits)));
  if (multiplier == 0) return size_error(text);
  if (number != 0 && multiplier > kMax / number) return size_error(text);
  return number * multiplier;
}

Result<std::uint64_t> parse_duration(std::string_view text) {
  auto error = [&] {
    return make_error(Errc::invalid_input,
                      "expected a duration such as \"30s\", \"15m\", \"2h\", \"5d\", \"1w\" or a "
                      "number of seconds, got " +
                          in_quotes(text));
  };
  std::string_view t = trim(text);
  std::size_t digits = 0;
  while (digits < t.size() && t[digits] >= '0' && t[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return error();
  std::uint64_t number = 0;
  for (std::size_t i = 0; i < digits; ++i) number = number * 10 + static_cast<unsigned>(t[i] - '0');
  std::string_view unit = trim(t.substr(digits));
  std::uint64_t multiplier = unit.empty() || unit == "s" ? 1
                             : unit == "m"               ? 60
                             : unit == "h"               ? 3600
                             : unit == "d"               ? 86400
                             : unit == "w"               ? 7 * 86400
                                                         : 0;
  if (multiplier == 0) return error();
  return number * multiplier;
}

bool is_loopback_host(std::string_view host) {
  if (iequals(host, "localhost") || iequals(host, "localhost.")) return true;
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, host.data(), host.size());
  in_addr v4{};
  if (::inet_pton(AF_INET, buf, &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, buf, &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return make_error(Errc::invalid_input, "expected HOST:PORT or [IPV6]:PORT, got " +
                                               in_quotes(text) + " (" + std::string(why) + ")");
  };
  ListenAddress out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    std::string_view host = text.substr(1, close - 1);
    if (!is_ipv6_literal(host)) return bad("not an IPv6 address inside []");
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("missing :PORT");
    out.host = std::string(host);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing :PORT");
    std::string_view host = text.substr(0, colon);
    if (host.empty()) return bad("missing host");
    if (host.find(':') != std::string_view::npos) return bad("write IPv6 addresses as [ADDR]:PORT");
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == '_';
      if (!ok) return bad("invalid character in host");
    }
    out.host = std::string(host);
    port_text = text.substr(colon + 1);
  }
  if (!parse_port(port_text, out.port)) return bad("port must be 1-65535");
  return out;
}

}  // namespace sg::config
