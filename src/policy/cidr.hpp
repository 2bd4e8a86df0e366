// IPv4 and IPv6 networks for address identities ("10.0.0.0/8", "::1").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace sg::policy {

class Cidr {
 public:
  // "ADDR" (a single host) or "ADDR/PREFIX"; host bits must be zero.
  static Result<Cidr> parse(std::string_view text);
  // `ip` in textual form; an IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a
  // dual-stack listener reports IPv4 peers) counts as IPv4. Unparsable: false.
  bool contains(std::string_view ip) const;
  unsigned prefix() const { return prefix_; }
  bool v4() const { return v4_; }
  std::string str() const;
  bool operator==(const Cidr&) const = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
  bool v4_ = false;
  unsigned prefix_ = 0;
};

}  // namespace sg::policy
