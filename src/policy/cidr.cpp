#include "policy/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sg::policy {
namespace {

struct Ip {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
};

// Textual IPv4/IPv6 (no zone ids); v4-mapped v6 is turned into v4.
bool parse_ip(std::string_view text, Ip& ip) {
  if (text.empty() || text.size() > 45) return false;
  const std::string s(text);
  if (::inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.v4 = true;
    return true;
  }
  if (::inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) != 1) return false;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(ip.bytes.data(), kMapped, 12) == 0) {
    std::memmove(ip.bytes.data(), ip.bytes.data() + 12, 4);
    std::memset(ip.bytes.data() + 4, 0, 12);
    ip.v4 = true;
  }
  return true;
}

bool prefix_equal(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                  unsigned bits) {
  for (unsigned i = 0; i < bits / 8; ++i)
    if (a[i] != b[i]) return false;
  if (bits % 8 == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - bits % 8));
  return (a[bits / 8] & mask) == (b[bits / 8] & mask);
}

}  // namespace

Result<Cidr> Cidr::parse(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return make_error(Errc::invalid_input,
                      "network \"" + std::string(text.substr(0, 60)) + "\": " + std::string(why));
  };
  std::size_t slash = text.find('/');
  Ip ip;
  if (!parse_ip(text.substr(0, slash), ip))
    return fail("expected an IPv4 or IPv6 address, optionally /PREFIX");
  Cidr c;
  c.v4_ = ip.v4;
  c.bytes_ = ip.bytes;
  const unsigned max = ip.v4 ? 32 : 128;
  c.prefix_ = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || value > max)
      return fail("prefix must be 0-" + std::to_string(max));
    c.prefix_ = value;
  }
  Cidr zeroed = c;
  zeroed.bytes_ = {};
  for (unsigned i = 0; i < c.prefix_; ++i)
    if (c.bytes_[i / 8] & (0x80 >> (i % 8))) zeroed.bytes_[i / 8] |= (0x80 >> (i % 8));
  if (zeroed.bytes_ != c.bytes_)
    return fail("host bits are set (did you mean " + zeroed.str() + "?)");
  return c;
}

bool Cidr::contains(std::string_view text) const {
  Ip ip;
  if (!parse_ip(text, ip) || ip.v4 != v4_) return false;
  return prefix_equal(ip.bytes, bytes_, prefix_);
}

std::string Cidr::str() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_);
}

}  // namespace sg::policy
